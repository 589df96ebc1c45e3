#include "sim_items.h"
#include "hash.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_fault_names[SIM_F_KINDS] = { "kill", "stall", "latency", "partition", "delay" };

/* Grows *p (of *cap elements of size sz) to hold n + 1. */
static int grow(void **p, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	void *q = realloc(*p, c * sz);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

void sim_book_free(struct sim_book *b)
{
	for (size_t i = 0; i < b->nagents; i++)
		free(b->agents[i].runs);
	free(b->items);
	free(b->slots);
	free(b->runs);
	free(b->agents);
	free(b->faults);
	memset(b, 0, sizeof *b);
}

/* ---- items: an open-addressing table of indexes ------------------------ */

static size_t slot_of(const struct sim_book *b, const char *id)
{
	size_t mask = b->nslots - 1, i = (size_t)sw_xxh64(id, SIM_ULID_LEN, 0) & mask;
	while (b->slots[i] && strcmp(b->items[b->slots[i] - 1].id, id))
		i = (i + 1) & mask;
	return i;
}

/* Keeps the table at most half full. */
static int rehash(struct sim_book *b)
{
	if (b->nslots && b->nitems * 2 < b->nslots)
		return 0;
	size_t n = b->nslots ? b->nslots * 2 : 1024;
	int *old = b->slots;
	size_t oldn = b->nslots;
	if (!(b->slots = calloc(n, sizeof *b->slots))) {
		b->slots = old;
		return -1;
	}
	b->nslots = n;
	for (size_t i = 0; i < oldn; i++)
		if (old[i])
			b->slots[slot_of(b, b->items[old[i] - 1].id)] = old[i];
	free(old);
	return 0;
}

/* Crockford base32, as sw_ulid writes: the only ids our queue has. */
static bool ulid_like(const char *id)
{
	if (strlen(id) != SIM_ULID_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *p))
			return false;
	return true;
}

int sim_item_find(struct sim_book *b, const char *id, bool create)
{
	if (!ulid_like(id)) {
		b->foreign++;
		return -1;
	}
	if (b->nslots) {
		size_t s = slot_of(b, id);
		if (b->slots[s])
			return b->slots[s] - 1;
	}
	if (!create || rehash(b) < 0 ||
	    grow((void **)&b->items, &b->capitems, b->nitems, sizeof *b->items) < 0)
		return -1;
	struct sim_item *it = &b->items[b->nitems];
	memset(it, 0, sizeof *it);
	memcpy(it->id, id, SIM_ULID_LEN + 1);
	b->slots[slot_of(b, id)] = (int)++b->nitems;
	return (int)b->nitems - 1;
}

/* ---- agents, runs, faults ------------------------------------------------ */

int sim_agent_new(struct sim_book *b, const char *id, int slot, int host, int inc, int prev, int64_t now)
{
	if (grow((void **)&b->agents, &b->capagents, b->nagents, sizeof *b->agents) < 0)
		return -1;
	struct sim_agent *a = &b->agents[b->nagents];
	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "%s", id);
	a->slot = slot;
	a->host = host;
	a->inc = inc;
	a->prev = prev;
	a->start_ns = now;
	return (int)b->nagents++;
}

int sim_agent_by_id(const struct sim_book *b, int last, const char *name)
{
	for (int a = last; a >= 0; a = b->agents[a].prev)
		if (!strcmp(b->agents[a].id, name))
			return a;
	return -1;
}

static int run_start(struct sim_book *b, int agent, const struct sim_ledger_line *l)
{
	struct sim_agent *a = &b->agents[agent];
	if (grow((void **)&b->runs, &b->capruns, b->nruns, sizeof *b->runs) < 0 ||
	    grow((void **)&a->runs, &a->caprun, a->nruns, sizeof *a->runs) < 0)
		return -1;
	int item = sim_item_find(b, l->id, true);
	b->runs[b->nruns] = (struct sim_run){ .item = item, .agent = agent, .token = l->token,
					      .attempt = l->attempt, .start_ns = l->ns };
	a->runs[a->nruns++] = (int)b->nruns++;
	if (item >= 0) {
		struct sim_item *it = &b->items[item];
		it->runs++;
		if (!it->first_start_ns || l->ns < it->first_start_ns)
			it->first_start_ns = l->ns;
	}
	return 0;
}

/* The run an E line ends: the agent's last run of that item and token
 * still open. */
static void run_end(struct sim_book *b, int agent, const struct sim_ledger_line *l)
{
	struct sim_agent *a = &b->agents[agent];
	for (size_t k = a->nruns; k-- > 0;) {
		struct sim_run *r = &b->runs[a->runs[k]];
		if (r->end_ns || r->token != l->token)
			continue;
		r->end_ns = l->ns;
		r->ok = l->ok;
		if (l->ok && r->item >= 0)
			b->items[r->item].runs_ok++;
		return;
	}
	b->ledger_bad++;   /* an end without its start */
}

int sim_book_ledger(struct sim_book *b, int agent, const struct sim_ledger_line *l)
{
	if (l->kind == 'S')
		return run_start(b, agent, l);
	run_end(b, agent, l);
	return 0;
}

int sim_fault_add(struct sim_book *b, const struct sim_fault *f)
{
	if (grow((void **)&b->faults, &b->capfaults, b->nfaults, sizeof *b->faults) < 0)
		return -1;
	b->faults[b->nfaults++] = *f;
	return 0;
}

static int cmp64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, c = *(const int64_t *)y;
	return a < c ? -1 : a > c;
}

int64_t sim_percentile(int64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp64);
	/* nearest rank */
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}
