/* breaker.c — circuit breakers as version chains; see breaker.h for the
 * states and sw-breaker(1) INTERNALS for the protocol.
 *
 * Every operation is one read-decide-write round on the breaker's chain:
 * read the newest version, apply the change to the state it holds (by
 * this host's clock), create the next version.  A round that changes
 * nothing (a call admitted while closed, a success in failures mode)
 * writes nothing, so a healthy breaker costs a call one read. */
#include "breaker.h"
#include "chain.h"
#include "clock.h"
#include "fs.h"
#include "hostlock.h"
#include "id.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BREAKERS_DIR "breakers"
#define MAX_BYTES (1 << 20)
#define RETRIES 2000
#define QUANTA 64               /* ratio mode: the window's outcomes in this many steps */
#define COUNT_MAX (INT64_C(1) << 53)

/* fn results of a round, besides exit codes */
enum { UNCHANGED = -10, CHANGED, CHANGED_DURABLE };

const char *sw_breaker_state_name(enum sw_breaker_state s)
{
	switch (s) {
	case SW_BREAKER_OPEN: return "open";
	case SW_BREAKER_HALF_OPEN: return "half_open";
	default: return "closed";
	}
}

const char *sw_breaker_spec_problem(const struct sw_breaker_spec *s)
{
	if (!s->ratio_mode && (s->failures < 1 || s->failures > SW_BREAKER_FAILURES_MAX))
		return "--failures is from 1 to 10000";
	if (s->ratio_mode && !(s->ratio > 0 && s->ratio <= 1))
		return "--ratio is a fraction above 0, at most 1";
	if (s->ratio_mode && (s->min_calls < 1 || s->min_calls > SW_BREAKER_CALLS_MAX))
		return "--min-calls is from 1 to 1000000";
	if (s->window_ns < 1000000 || s->window_ns > SW_DURATION_MAX_NS)
		return "--window is from 1ms to 100 years";
	if (s->cooldown_ns < 1000000 || s->cooldown_ns > s->max_cooldown_ns || s->max_cooldown_ns > SW_DURATION_MAX_NS)
		return "--cooldown is from 1ms to --max-cooldown";
	if (s->probes < 1 || s->probes > SW_BREAKER_PROBES_MAX)
		return "--probes is from 1 to 100";
	if (s->probe_ttl_ns < 1000000 || s->probe_ttl_ns > SW_DURATION_MAX_NS)
		return "--ttl is from 1ms to 100 years";
	return NULL;
}

static int64_t add_sat(int64_t t, int64_t d)
{
	return d > 0 && t > INT64_MAX - d ? INT64_MAX : t + d;
}

void sw_breaker_ver_free(struct sw_breaker_ver *v)
{
	sw_tlist_free(&v->fails);
	sw_tlist_free(&v->oks);
}

/* ---- versions ------------------------------------------------------------ */

static bool get_tlist(const json_t *j, const char *key, struct sw_tlist *l)
{
	const json_t *v = json_object_get(j, key);
	return json_is_string(v) &&
	       sw_tlist_parse(json_string_value(v), json_string_length(v), SW_BREAKER_CALLS_MAX, l) == 0;
}

static int probe_fields(const json_t *a, uint64_t last_token, struct sw_breaker_ver *v)
{
	if (!json_is_array(a) || json_array_size(a) > SW_BREAKER_PROBES_MAX)
		return -1;
	bool seen[SW_BREAKER_PROBES_MAX + 1] = {0};
	size_t i;
	const json_t *p;
	json_array_foreach(a, i, p) {
		int64_t slot, token, exp;
		const json_t *ok = json_object_get(p, "ok");
		if (!sw_chain_int(p, "slot", 1, SW_BREAKER_PROBES_MAX, &slot) || seen[slot] ||
		    !sw_chain_int(p, "token", 1, (int64_t)last_token, &token) ||
		    !sw_chain_int(p, "expires_unix_ns", 0, SW_TIME_MAX_NS, &exp) || !json_is_boolean(ok))
			return -1;
		seen[slot] = true;
		v->probes[v->nprobes++] = (struct sw_breaker_probe){ (unsigned)slot, (uint64_t)token, exp,
								      json_is_true(ok) };
	}
	return 0;
}

static int ver_fields(const json_t *j, struct sw_breaker_ver *v)
{
	const char *st = sw_json_str(j, "state");
	int64_t trips, ptok, until, cool, changed;
	memset(v, 0, sizeof *v);
	if (!st || !sw_chain_int(j, "trips", 0, COUNT_MAX, &trips) || !sw_chain_int(j, "probe_token", 0, COUNT_MAX, &ptok) ||
	    !sw_chain_int(j, "open_until_unix_ns", 0, SW_TIME_MAX_NS, &until) ||
	    !sw_chain_int(j, "cooldown_ms", 0, SW_DURATION_MAX_NS / 1000000, &cool) ||
	    !sw_chain_int(j, "changed_at_unix_ns", 0, SW_TIME_MAX_NS, &changed))
		return -1;
	if (!strcmp(st, "closed")) v->state = SW_BREAKER_CLOSED;
	else if (!strcmp(st, "open")) v->state = SW_BREAKER_OPEN;
	else if (!strcmp(st, "half_open")) v->state = SW_BREAKER_HALF_OPEN;
	else return -1;
	v->trips = (uint64_t)trips;
	v->probe_token = (uint64_t)ptok;
	v->open_until_ns = until;
	v->cooldown_ns = cool * 1000000;
	v->changed_ns = changed;
	if (!get_tlist(j, "fails", &v->fails) || !get_tlist(j, "oks", &v->oks) ||
	    probe_fields(json_object_get(j, "probes"), v->probe_token, v) < 0) {
		sw_breaker_ver_free(v);
		return -1;
	}
	return 0;
}

int sw_breaker_parse(const char *buf, size_t len, uint64_t seq, struct sw_breaker_ver *out)
{
	json_t *j;
	char vid[33];
	memset(out, 0, sizeof *out);
	if (sw_chain_parse(buf, len, seq, &j, vid) < 0)
		return -1;
	int rc = ver_fields(j, out);
	json_decref(j);
	return rc;
}

/* The policy of the last writer, kept for show: who trips it, when. */
static json_t *policy_json(const struct sw_breaker_spec *s)
{
	json_t *p = json_pack("{s:I,s:I,s:I,s:I}", "window_ms", (json_int_t)(s->window_ns / 1000000),
			      "cooldown_ms", (json_int_t)(s->cooldown_ns / 1000000), "max_cooldown_ms",
			      (json_int_t)(s->max_cooldown_ns / 1000000), "probes", (json_int_t)s->probes);
	if (p && s->ratio_mode) {
		json_object_set_new(p, "ratio", json_real(s->ratio));
		json_object_set_new(p, "min_calls", json_integer((json_int_t)s->min_calls));
	} else if (p) {
		json_object_set_new(p, "failures", json_integer((json_int_t)s->failures));
	}
	return p;
}

static json_t *ver_json(const struct sw_breaker_ver *v, const struct sw_breaker_spec *s)
{
	char *fails = sw_tlist_format(&v->fails), *oks = sw_tlist_format(&v->oks);
	json_t *probes = json_array(), *j = NULL;
	for (unsigned i = 0; probes && i < v->nprobes; i++)
		json_array_append_new(probes, json_pack("{s:I,s:I,s:o,s:b}", "slot", (json_int_t)v->probes[i].slot,
			"token", (json_int_t)v->probes[i].token, "expires_unix_ns",
			sw_json_ns(v->probes[i].expires_ns), "ok", v->probes[i].ok));
	if (fails && oks && probes)
		j = json_pack("{s:s,s:I,s:I,s:o,s:I,s:o,s:s,s:s,s:O,s:o}", "state", sw_breaker_state_name(v->state),
			      "trips", (json_int_t)v->trips, "probe_token", (json_int_t)v->probe_token,
			      "open_until_unix_ns", sw_json_ns(v->open_until_ns),
			      "cooldown_ms", (json_int_t)(v->cooldown_ns / 1000000),
			      "changed_at_unix_ns", sw_json_ns(v->changed_ns), "fails", fails, "oks", oks,
			      "probes", probes, "policy", policy_json(s));
	json_decref(probes);
	free(fails);
	free(oks);
	return j;
}

/* The newest version before seq that reads, for a damaged one. */
static bool readable_before(const struct sw_chain *c, uint64_t seq, struct sw_breaker_ver *v)
{
	for (unsigned back = 1; back <= c->keep && back < seq; back++) {
		struct sw_chain_ver cv;
		bool ok = sw_chain_read(c, seq - back, &cv) == 0 && ver_fields(cv.j, v) == 0;
		sw_chain_ver_free(&cv);
		if (ok)
			return true;
	}
	return false;
}

/* The state a version holds.  A damaged one stands for the worst it may
 * have been: a trip when it was written (so an open breaker for one
 * cooldown, then probes), starting an episode no probe of it could have
 * belonged to, with probe tokens beyond any it could have handed out. */
static void load(const struct sw_chain *c, const struct sw_chain_ver *cv, const char *name,
		 const struct sw_breaker_spec *spec, struct sw_breaker_ver *v)
{
	memset(v, 0, sizeof *v);
	if (cv->seq == 0 || (cv->j && ver_fields(cv->j, v) == 0))
		return;
	struct sw_breaker_ver prev;
	uint64_t trips = 0, ptok = 0;
	if (readable_before(c, cv->seq, &prev)) {
		trips = prev.trips;
		ptok = prev.probe_token;
		sw_breaker_ver_free(&prev);
	}
	memset(v, 0, sizeof *v);
	v->state = SW_BREAKER_OPEN;
	v->trips = trips + 1;
	v->probe_token = ptok + SW_BREAKER_PROBES_MAX;
	v->cooldown_ns = spec->cooldown_ns;
	v->open_until_ns = add_sat(cv->written_ns, spec->cooldown_ns);
	v->changed_ns = cv->written_ns;
	char t[SW_TIME_LEN];
	sw_fmt_time(cv->written_ns, t);
	sw_warn("breaker '%s': version v.%llu (written %s) is damaged; read as a trip at that time", name,
		(unsigned long long)cv->seq, t);
}

/* ---- the state machine ------------------------------------------------- */

static enum sw_breaker_state effective(const struct sw_breaker_ver *v, int64_t now)
{
	return v->state == SW_BREAKER_OPEN && now >= v->open_until_ns ? SW_BREAKER_HALF_OPEN : v->state;
}

/* Forgets the outcomes that have left the window (and, in failures mode,
 * all but the last N failures: the N-th last one says it all). */
static void prune(struct sw_breaker_ver *v, const struct sw_breaker_spec *s, int64_t now)
{
	int64_t cutoff = now / 1000 - s->window_ns / 1000;
	sw_tlist_drop_until(&v->fails, cutoff);
	sw_tlist_drop_until(&v->oks, cutoff);
	if (!s->ratio_mode)
		sw_tlist_keep_last(&v->fails, s->failures);
}

static bool over_threshold(const struct sw_breaker_ver *v, const struct sw_breaker_spec *s)
{
	if (!s->ratio_mode)
		return v->fails.total >= s->failures;
	uint64_t calls = v->fails.total + v->oks.total;
	return calls >= s->min_calls && (double)v->fails.total >= s->ratio * (double)calls;
}

static void clear_window(struct sw_breaker_ver *v)
{
	sw_tlist_free(&v->fails);
	sw_tlist_free(&v->oks);
	v->nprobes = 0;
}

static void to_open(struct sw_breaker_ver *v, int64_t now, int64_t cooldown)
{
	clear_window(v);
	v->state = SW_BREAKER_OPEN;
	v->trips++;
	v->cooldown_ns = cooldown;
	v->open_until_ns = add_sat(now, cooldown);
	v->changed_ns = now;
}

static void to_closed(struct sw_breaker_ver *v, int64_t now)
{
	clear_window(v);
	v->state = SW_BREAKER_CLOSED;
	v->cooldown_ns = 0;
	v->open_until_ns = 0;
	v->changed_ns = now;
}

/* One outcome into the window (ratio mode: in steps of 1/QUANTA of it,
 * so the list stays short however many calls there are). */
static int add_outcome(struct sw_breaker_ver *v, const struct sw_breaker_spec *s, bool ok, int64_t now)
{
	int64_t t = now / 1000;
	if (s->ratio_mode) {
		int64_t q = s->window_ns / 1000 / QUANTA;
		if (q > 1)
			t -= t % q;
	}
	struct sw_tlist *l = ok ? &v->oks : &v->fails;
	if (sw_tlist_add(l, t, 1) < 0)
		return -1;
	sw_tlist_keep_last(l, SW_BREAKER_CALLS_MAX);
	return 0;
}

typedef int (*round_fn)(struct sw_breaker_ver *v, int64_t now, void *arg);

static int open_chain(const struct sw_ws *ws, const char *name, bool create, struct sw_chain *c,
		      struct sw_err *err)
{
	const char *why = sw_name_problem(name);
	if (why)
		return sw_err_set(err, EX_DATAERR, "bad breaker name '%.60s': %s", name, why);
	char rel[sizeof BREAKERS_DIR + SW_NAME_MAX + 2];
	snprintf(rel, sizeof rel, BREAKERS_DIR "/%s", name);
	*c = (struct sw_chain){ .sync = ws->sync, .keep = 16, .hint_every = 4, .max_bytes = MAX_BYTES };
	c->dfd = sw_ws_dir(ws, rel, create);
	if (c->dfd >= 0)
		return 0;
	if (errno == ENOENT && !create)
		return sw_err_set(err, SW_EX_FALSE, "no breaker '%s'", name);
	return sw_err_set(err, errno == ENOENT ? EX_CANTCREAT : sw_ex_errno(errno), "breaker directory %s: %s",
			  rel, strerror(errno));
}

/* Read, apply fn, write when it changed something; again when another
 * writer won.  fn's code, 0 after a write, or a code of the chain. */
static int round_trip(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		      round_fn fn, void *arg, struct sw_err *err)
{
	struct sw_chain c;
	int rc = open_chain(ws, name, true, &c, err);
	if (rc)
		return rc;
	struct sw_hostlock_lazy lk = SW_HOSTLOCK_LAZY(ws->path, "breaker", name, "");
	for (int i = 0; i < RETRIES; i++) {
		struct sw_chain_ver cv;
		struct sw_breaker_ver v;
		if ((rc = sw_chain_latest(&c, &cv, err)))
			break;
		load(&c, &cv, name, spec, &v);
		/* now is read after the newest version: a change seen there
		 * happened before this one */
		rc = fn(&v, sw_now_ns(), arg);
		if (rc == CHANGED || rc == CHANGED_DURABLE) {
			json_t *body = ver_json(&v, spec);
			sw_hostlock_once(&lk);     /* only other hosts race with this write */
			rc = body ? sw_chain_write(&c, &cv, body, rc == CHANGED_DURABLE, err)
				  : sw_err_set(err, EX_OSERR, "out of memory");
			json_decref(body);
		} else if (rc == UNCHANGED) {
			rc = 0;
		}
		sw_breaker_ver_free(&v);
		sw_chain_ver_free(&cv);
		if (rc != SW_CHAIN_LOST)
			break;
		if (i >= 3)
			sw_chain_jitter((i < 20 ? i : 20) * INT64_C(100000));
		rc = sw_err_set(err, EX_TEMPFAIL, "breaker '%s' keeps changing; try again", name);
	}
	sw_hostunlock(lk.fd);
	close(c.dfd);
	return rc;
}

/* ---- admit -------------------------------------------------------------- */

struct admit {
	const struct sw_breaker_spec *spec;
	int64_t skew_ns;
	struct sw_breaker_pass *out;
};

/* A probe slot that is free: never granted in this episode, or granted
 * to a prober that neither reported nor renewed (dead) for its TTL and
 * the skew margin.  0 when none is. */
static unsigned free_slot(const struct sw_breaker_ver *v, unsigned k, int64_t now, int64_t skew,
			  int64_t *retry, size_t *idx)
{
	*retry = INT64_MAX;
	for (unsigned slot = 1; slot <= k; slot++) {
		size_t i = 0;
		while (i < v->nprobes && v->probes[i].slot != slot)
			i++;
		*idx = i;
		if (i == v->nprobes)
			return slot;
		const struct sw_breaker_probe *p = &v->probes[i];
		int64_t free_at = add_sat(p->expires_ns, skew);
		if (!p->ok && now >= free_at)
			return slot;
		if (!p->ok && free_at < *retry)
			*retry = free_at;
	}
	return 0;
}

static int admit_fn(struct sw_breaker_ver *v, int64_t now, void *arg)
{
	struct admit *a = arg;
	struct sw_breaker_pass *out = a->out;
	memset(out, 0, sizeof *out);
	out->state = effective(v, now);
	out->trips = v->trips;
	out->open_until_ns = v->open_until_ns;
	out->episode = v->trips;
	if (out->state == SW_BREAKER_CLOSED) {
		prune(v, a->spec, now);
		out->failures = v->fails.total;
		out->allowed = true;
		return UNCHANGED;
	}
	if (out->state == SW_BREAKER_OPEN) {
		out->retry_ns = v->open_until_ns;
		return EX_TEMPFAIL;
	}
	size_t idx;
	int64_t retry;
	unsigned slot = free_slot(v, a->spec->probes, now, a->skew_ns, &retry, &idx);
	if (!slot) {
		/* every probe is out: the next chance is a prober that dies */
		out->retry_ns = retry != INT64_MAX ? retry : add_sat(now, SW_NS_PER_SEC);
		return EX_TEMPFAIL;
	}
	if (v->probe_token >= (uint64_t)COUNT_MAX)
		return EX_DATAERR;
	struct sw_breaker_probe p = { slot, ++v->probe_token, add_sat(now, a->spec->probe_ttl_ns), false };
	if (idx == v->nprobes)
		v->nprobes++;
	v->probes[idx] = p;
	if (v->state != SW_BREAKER_HALF_OPEN) {
		v->state = SW_BREAKER_HALF_OPEN;
		v->changed_ns = now;
	}
	out->allowed = true;
	out->probe = p;
	return CHANGED_DURABLE;
}

int sw_breaker_admit(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		     struct sw_breaker_pass *out, struct sw_err *err)
{
	struct admit a = { spec, ws->skew_ns, out };
	int rc = round_trip(ws, name, spec, admit_fn, &a, err);
	if (rc)
		out->allowed = false;   /* a decision whose write lost its last race */
	if (rc == EX_TEMPFAIL && out->retry_ns) {
		char t[SW_TIME_LEN];
		sw_fmt_time(out->retry_ns, t);
		if (out->state == SW_BREAKER_OPEN)
			sw_err_msg(err, "breaker '%s' is open (trip %llu); next try at %s", name,
				   (unsigned long long)out->trips, t);
		else
			sw_err_msg(err, "breaker '%s' is half-open and its %u probes are running (a dead "
				   "one's slot frees at %s)", name, spec->probes, t);
	} else if (rc == EX_DATAERR) {
		sw_err_msg(err, "breaker '%s' has used up its probe tokens", name);
	}
	return rc;
}

/* ---- record ------------------------------------------------------------- */

struct record {
	const struct sw_breaker_spec *spec;
	bool ok;
	uint64_t token;
	struct sw_breaker_rec *out;
};

static struct sw_breaker_probe *find_probe(struct sw_breaker_ver *v, uint64_t token)
{
	for (unsigned i = 0; i < v->nprobes; i++)
		if (v->probes[i].token == token)
			return &v->probes[i];
	return NULL;
}

/* A probe's outcome: K successes close the breaker, a failure opens it
 * again for a longer cooldown. */
static int probe_outcome(struct sw_breaker_ver *v, const struct record *r, int64_t now)
{
	struct sw_breaker_probe *p = v->state == SW_BREAKER_HALF_OPEN ? find_probe(v, r->token) : NULL;
	if (!p || p->ok)
		return SW_EX_FALSE;
	r->out->counted = true;
	if (!r->ok) {
		int64_t base = v->cooldown_ns > r->spec->cooldown_ns ? v->cooldown_ns : r->spec->cooldown_ns;
		int64_t next = base > r->spec->max_cooldown_ns / 2 ? r->spec->max_cooldown_ns : 2 * base;
		to_open(v, now, next);
		return CHANGED_DURABLE;
	}
	p->ok = true;
	unsigned oks = 0;
	for (unsigned i = 0; i < v->nprobes; i++)
		oks += v->probes[i].ok;
	if (oks >= r->spec->probes)
		to_closed(v, now);
	return CHANGED_DURABLE;
}

static int record_fn(struct sw_breaker_ver *v, int64_t now, void *arg)
{
	struct record *r = arg;
	struct sw_breaker_rec *out = r->out;
	memset(out, 0, sizeof *out);
	out->before = effective(v, now);
	int rc;
	if (r->token) {
		rc = probe_outcome(v, r, now);
	} else if (out->before != SW_BREAKER_CLOSED) {
		rc = UNCHANGED;      /* a call begun before the trip: it no longer counts */
	} else if (r->ok && !r->spec->ratio_mode) {
		out->counted = true;
		rc = UNCHANGED;      /* failures mode counts failures only */
	} else {
		out->counted = true;
		prune(v, r->spec, now);
		if (add_outcome(v, r->spec, r->ok, now) < 0)
			return EX_OSERR;
		prune(v, r->spec, now);
		rc = CHANGED;
		if (!r->ok && over_threshold(v, r->spec)) {
			to_open(v, now, r->spec->cooldown_ns);
			rc = CHANGED_DURABLE;
		}
	}
	out->after = effective(v, now);
	out->trips = v->trips;
	out->open_until_ns = v->open_until_ns;
	return rc;
}

int sw_breaker_record(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		      bool ok, uint64_t probe_token, struct sw_breaker_rec *out, struct sw_err *err)
{
	struct record r = { spec, ok, probe_token, out };
	int rc = round_trip(ws, name, spec, record_fn, &r, err);
	if (rc == SW_EX_FALSE)
		sw_err_msg(err, "probe token %llu of breaker '%s' is stale (its half-open period is over, "
			   "or it reported already): outcome not counted", (unsigned long long)probe_token, name);
	else if (rc == EX_OSERR)
		sw_err_msg(err, "out of memory");
	return rc;
}

/* ---- probe renewal, trip, reset --------------------------------------- */

struct renew {
	const struct sw_breaker_spec *spec;
	uint64_t episode, token;
	int64_t *expires_ns;
};

static int renew_fn(struct sw_breaker_ver *v, int64_t now, void *arg)
{
	struct renew *r = arg;
	if (v->trips != r->episode || v->state != SW_BREAKER_HALF_OPEN)
		return SW_BREAKER_EPISODE_OVER;
	struct sw_breaker_probe *p = find_probe(v, r->token);
	if (p && p->ok)
		return SW_BREAKER_EPISODE_OVER;
	/* an expired probe stays lost even if nobody took its slot: its
	 * command has been stopped already */
	if (!p || now >= p->expires_ns)
		return SW_EX_FALSE;
	p->expires_ns = add_sat(now, r->spec->probe_ttl_ns);
	*r->expires_ns = p->expires_ns;
	return CHANGED;
}

int sw_breaker_probe_renew(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
			   uint64_t episode, uint64_t token, int64_t *expires_ns, struct sw_err *err)
{
	struct renew r = { spec, episode, token, expires_ns };
	int rc = round_trip(ws, name, spec, renew_fn, &r, err);
	if (rc == SW_EX_FALSE)
		sw_err_msg(err, "probe token %llu of breaker '%s' has expired", (unsigned long long)token, name);
	return rc;
}

static int trip_fn(struct sw_breaker_ver *v, int64_t now, void *arg)
{
	to_open(v, now, ((const struct sw_breaker_spec *)arg)->cooldown_ns);
	return CHANGED_DURABLE;
}

static int reset_fn(struct sw_breaker_ver *v, int64_t now, void *arg)
{
	(void)arg;
	to_closed(v, now);
	return CHANGED_DURABLE;
}

int sw_breaker_trip(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		    struct sw_err *err)
{
	return round_trip(ws, name, spec, trip_fn, (void *)spec, err);
}

int sw_breaker_reset(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		     struct sw_err *err)
{
	return round_trip(ws, name, spec, reset_fn, NULL, err);
}

/* ---- show, list, gauges ------------------------------------------------- */

/* The policy a version keeps, checked member by member: only numbers in
 * range reach the output. */
static json_t *policy_show(const json_t *p)
{
	static const char *const ints[] = { "window_ms", "cooldown_ms", "max_cooldown_ms", "probes",
					    "failures", "min_calls" };
	json_t *o = json_object();
	int64_t v;
	for (size_t i = 0; o && i < sizeof ints / sizeof ints[0]; i++)
		if (sw_chain_int(p, ints[i], 0, SW_DURATION_MAX_NS / 1000000, &v))
			json_object_set_new(o, ints[i], json_integer(v));
	double r = json_real_value(json_object_get(p, "ratio"));
	if (o && r > 0 && r <= 1)
		json_object_set_new(o, "ratio", json_real(r));
	return o;
}

static json_t *show_json(const char *name, const struct sw_breaker_ver *v, const json_t *policy, int64_t now)
{
	enum sw_breaker_state st = effective(v, now);
	json_t *j = json_pack("{s:s,s:s,s:I}", "name", name, "state", sw_breaker_state_name(st), "trips",
			      (json_int_t)v->trips);
	if (!j)
		return NULL;
	if (st == SW_BREAKER_CLOSED) {
		int64_t w = json_integer_value(json_object_get(policy, "window_ms")) * 1000;
		json_object_set_new(j, "failures_in_window",
				    json_integer((json_int_t)sw_tlist_count_after(&v->fails, now / 1000 - w)));
		if (v->oks.n)
			json_object_set_new(j, "successes_in_window",
					    json_integer((json_int_t)sw_tlist_count_after(&v->oks, now / 1000 - w)));
	} else {
		sw_json_set_time(j, "open_until", v->open_until_ns);
		json_object_set_new(j, "cooldown_ms", json_integer(v->cooldown_ns / 1000000));
	}
	json_t *probes = json_array();
	for (unsigned i = 0; probes && i < v->nprobes; i++) {
		const struct sw_breaker_probe *p = &v->probes[i];
		json_t *o = json_pack("{s:I,s:I,s:s}", "slot", (json_int_t)p->slot, "token", (json_int_t)p->token,
				      "state", p->ok ? "ok" : now < p->expires_ns ? "running" : "expired");
		sw_json_set_time(o, "expires_at", p->expires_ns);
		json_array_append_new(probes, o);
	}
	if (st == SW_BREAKER_HALF_OPEN)
		json_object_set_new(j, "probes", probes);
	else
		json_decref(probes);
	if (v->changed_ns)
		sw_json_set_time(j, "changed_at", v->changed_ns);
	json_object_set_new(j, "policy", policy_show(policy));
	return j;
}

int sw_breaker_show(const struct sw_ws *ws, const char *name, json_t **out, struct sw_err *err)
{
	struct sw_chain c;
	int rc = open_chain(ws, name, false, &c, err);
	if (rc)
		return rc;
	struct sw_chain_ver cv;
	if ((rc = sw_chain_latest(&c, &cv, err))) {
		close(c.dfd);
		return rc;
	}
	struct sw_breaker_spec dflt = { .cooldown_ns = 30 * SW_NS_PER_SEC };
	struct sw_breaker_ver v;
	load(&c, &cv, name, &dflt, &v);
	*out = show_json(name, &v, json_object_get(cv.j, "policy"), sw_now_ns());
	if (!*out)
		rc = sw_err_set(err, EX_OSERR, "out of memory");
	sw_breaker_ver_free(&v);
	sw_chain_ver_free(&cv);
	close(c.dfd);
	return rc;
}

int sw_breaker_list(const struct sw_ws *ws, int (*fn)(json_t *j, void *arg), void *arg, struct sw_err *err)
{
	char **names;
	size_t n;
	int rc = sw_chain_names(ws, BREAKERS_DIR, &names, &n, err);
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *j;
		int r = sw_breaker_show(ws, names[i], &j, err);
		if (r == SW_EX_FALSE)      /* removed meanwhile */
			continue;
		if (r) {
			sw_warn("%s", err->msg);   /* one bad breaker stops no listing */
			continue;
		}
		rc = fn(j, arg);
		json_decref(j);
	}
	sw_chain_names_free(names, n);
	return rc;
}

struct gauge_rows {
	json_t *rows;
};

static int gauge_collect(json_t *j, void *arg)
{
	return json_array_append(((struct gauge_rows *)arg)->rows, j);
}

static double state_value(const char *s)
{
	return !strcmp(s, "open") ? 2 : !strcmp(s, "half_open") ? 1 : 0;
}

int sw_breaker_gauges(const struct sw_ws *ws, sw_breaker_gauge_fn fn, void *arg)
{
	struct gauge_rows g = { json_array() };
	struct sw_err err;
	int rc = g.rows ? sw_breaker_list(ws, gauge_collect, &g, &err) : -1;
	if (rc) {
		sw_warn("breakers left out of the export: %s", rc < 0 ? "out of memory" : err.msg);
		json_decref(g.rows);
		return 0;
	}
	size_t i;
	json_t *j;
	json_array_foreach(g.rows, i, j) {
		json_t *lab = json_pack("{s:s}", "name", sw_json_str(j, "name"));
		rc = fn("sw_breaker_state", "A breaker's state: 0 closed, 1 half-open, 2 open.", lab,
			state_value(sw_json_str(j, "state")), arg);
		json_decref(lab);
		if (rc)
			break;
	}
	json_array_foreach(g.rows, i, j) {
		if (rc)
			break;
		json_t *lab = json_pack("{s:s}", "name", sw_json_str(j, "name"));
		rc = fn("sw_breaker_trips_total", "Times a breaker has opened.", lab,
			(double)json_integer_value(json_object_get(j, "trips")), arg);
		json_decref(lab);
	}
	json_decref(g.rows);
	return rc;
}
