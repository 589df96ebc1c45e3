#include "metrics_ws.h"
#include "err.h"
#include "agent.h"
#include "lease.h"
#include "limit.h"
#include "queue.h"
#include <stdlib.h>
#include <string.h>

struct qstat {
	char name[256];
	struct sw_queue_stats st;
};

struct qlist {
	const struct sw_ws *ws;
	struct qstat *q;
	size_t n, cap;
};

static int add_queue(const char *name, void *arg)
{
	struct qlist *l = arg;
	struct sw_queue q;
	struct sw_queue_stats st;
	int code = sw_queue_open(&q, l->ws, name, false);
	if (code == 0)
		code = sw_queue_stats(&q, &st);
	if (code) {
		sw_warn("queue %s: %s (left out of the export)", name, q.err.msg);
		sw_queue_close(&q);
		return 0;
	}
	sw_queue_close(&q);
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct qstat *nq = realloc(l->q, nc * sizeof *nq);
		if (!nq)
			return -1;
		l->q = nq;
		l->cap = nc;
	}
	snprintf(l->q[l->n].name, sizeof l->q[l->n].name, "%s", name);
	l->q[l->n++].st = st;
	return 0;
}

static int cmp_queue(const void *a, const void *b)
{
	return strcmp(((const struct qstat *)a)->name, ((const struct qstat *)b)->name);
}

/* Each item in one state: the states of a queue add up to its items. */
static const char *const states[] = {"pending", "delayed", "blocked", "claimed", "done", "dead",
				     "cancelled"};

static long long state_count(const struct sw_queue_stats *st, size_t i)
{
	switch (i) {
	case 0: return st->pending;
	case 1: return st->delayed;
	case 2: return st->blocked;
	case 3: return st->claimed;
	case 4: return st->done;
	case 5: return st->dead;
	default: return st->cancelled;
	}
}

static int queue_gauges(const struct sw_ws *ws, int64_t now, sw_gauge_fn fn, void *arg)
{
	struct qlist l = {.ws = ws};
	int rc = 0;
	if (sw_queue_names(ws, add_queue, &l) < 0) {
		sw_warn("cannot list queues in %s (left out of the export)", ws->path);
		free(l.q);
		return 0;
	}
	if (l.n)   /* qsort of a NULL array is undefined, even of none */
		qsort(l.q, l.n, sizeof *l.q, cmp_queue);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		for (size_t s = 0; rc == 0 && s < sizeof states / sizeof states[0]; s++) {
			json_t *lab = json_pack("{s:s,s:s}", "queue", l.q[i].name, "state", states[s]);
			rc = fn("sw_queue_items", "Items in a queue by state.", lab,
				(double)state_count(&l.q[i].st, s), arg);
			json_decref(lab);
		}
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		int64_t oldest = l.q[i].st.oldest_pending_ns;
		double age = oldest > 0 && now > oldest ? (double)(now - oldest) / 1e9 : 0;
		json_t *lab = json_pack("{s:s}", "queue", l.q[i].name);
		rc = fn("sw_queue_oldest_pending_age_seconds",
			"Age of the oldest claimable item (0 when none).", lab, age, arg);
		json_decref(lab);
	}
	free(l.q);
	return rc;
}

static int agent_gauges(const struct sw_ws *ws, sw_gauge_fn fn, void *arg)
{
	struct sw_agent_counts c;
	if (sw_agent_count(ws, &c) < 0) {
		sw_warn("cannot count agents in %s (left out of the export)", ws->path);
		return 0;
	}
	static const char help[] = "Registered agents: live (heartbeat within its ttl) or dead.";
	json_t *lab = json_pack("{s:s}", "state", "dead");
	int rc = fn("sw_agents", help, lab, (double)c.dead, arg);
	json_decref(lab);
	if (rc)
		return rc;
	lab = json_pack("{s:s}", "state", "live");
	rc = fn("sw_agents", help, lab, (double)c.alive, arg);
	json_decref(lab);
	return rc;
}

static int count_held(const struct sw_lease *l, void *arg)
{
	if (l->state == SW_LEASE_HELD)
		++*(long long *)arg;
	return 0;
}

static int lease_gauges(const struct sw_ws *ws, sw_gauge_fn fn, void *arg)
{
	struct sw_err err;
	long long held = 0;
	if (sw_lease_list(ws, count_held, &held, &err) != 0) {
		sw_warn("%s (leases left out of the export)", err.msg);
		return 0;
	}
	return fn("sw_leases_held", "Leases held and not expired by this host's clock.", NULL,
		  (double)held, arg);
}

int sw_m_ws_gauges(const struct sw_ws *ws, int64_t now_ns, sw_gauge_fn fn, void *arg)
{
	int rc = queue_gauges(ws, now_ns, fn, arg);
	if (!rc)
		rc = agent_gauges(ws, fn, arg);
	if (!rc)
		rc = lease_gauges(ws, fn, arg);
	if (!rc)
		rc = sw_limit_breaker_gauges(ws, fn, arg);
	return rc;
}
