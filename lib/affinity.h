/* affinity.h — which agent owns a key: the ring sw-agent run --affinity
 * claims by, and sw-agent list and sw-claim stats --keys count by.
 *
 * The agents that share a ring serve one queue with the same roles: live
 * records whose "queue" names it and whose "roles" are the same set.  The
 * ring is sw-shard's with its defaults (--algo ring, 2000 vnodes, seed 0)
 * over their ids, weight 1 each, so `sw-shard assign --nodes @agents`
 * (@agents:ROLE) shows the same owners when those are the live agents.
 * Being over ids, it moves no key when an agent comes back with its id,
 * and about 1/N of them when one joins or leaves. */
#ifndef SW_AFFINITY_H
#define SW_AFFINITY_H
#include "id.h"
#include "queue.h"
#include "shard.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>

/* --steal-after's default: a slow owner's keys wait no longer (a dead
 * one's leave the ring sooner: at once on its host, else after its ttl). */
#define SW_AFF_STEAL_AFTER_DEFAULT_NS (10 * INT64_C(1000000000))

struct sw_aff_ring {
	struct sw_nodes nodes;
	struct sw_placer pl;
	bool have;              /* some node: pl is set up */
};

/* The ring of queue for roles, from the live agents that serve queue
 * with exactly these roles (in any order): 0, or -1 with errno. */
int sw_aff_ring_load(struct sw_aff_ring *ar, const struct sw_ws *ws, const char *queue,
		     const char *const *roles, size_t nroles);
/* The same into a ring that holds one already (or is zeroed), kept as it
 * is when its members did not change: 0 (ar updated or the same), or -1
 * with errno (ar as it was). */
int sw_aff_ring_update(struct sw_aff_ring *ar, const struct sw_ws *ws, const char *queue,
		       const char *const *roles, size_t nroles);
/* The owner's index in ar->nodes of key hash h, or -1 when the ring is empty. */
long sw_aff_owner(const struct sw_aff_ring *ar, uint64_t h);
void sw_aff_ring_free(struct sw_aff_ring *ar);

/* Owners of a queue's pending keyed items, one ring per set of roles its
 * live agents claim with: for each agent, how many pending keyed items it
 * owns.  An item two rings can claim counts for its owner in each. */
struct sw_aff_count {
	char id[SW_NAME_MAX + 1];
	long long owns;
};
struct sw_aff_counts {
	struct sw_aff_count *v;   /* by id */
	size_t n;
	long long keyed, unkeyed; /* pending items with a key, without */
	long long unowned;        /* keyed, in no live agent's ring */
};
/* 0, or a sysexits code with q->err set. */
int sw_aff_count(struct sw_queue *q, const struct sw_ws *ws, struct sw_aff_counts *c);
/* The same from agent records read already (with their liveness fields). */
int sw_aff_count_of(struct sw_queue *q, const json_t *recs, struct sw_aff_counts *c);
/* How many of them agent id owns (0 when it is not among them). */
long long sw_aff_owns(const struct sw_aff_counts *c, const char *id);
void sw_aff_counts_free(struct sw_aff_counts *c);
#endif
