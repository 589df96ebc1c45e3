#include "affinity.h"
#include "agent.h"
#include "err.h"
#include "json.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The same set: each of ours is in rec's and it has no more (a record
 * lists each role once, as --roles gave it). */
static bool same_roles(const json_t *rec, const char *const *roles, size_t nroles)
{
	const json_t *theirs = json_object_get(rec, "roles");
	if (!json_is_array(theirs) || json_array_size(theirs) != nroles)
		return false;
	for (size_t i = 0; i < nroles; i++)
		if (!sw_agent_has_role(rec, roles[i]))
			return false;
	return true;
}

/* Whether agent record rec is alive and serves queue. */
static bool live_in_queue(const json_t *rec, const char *queue)
{
	const char *q = sw_json_str(rec, "queue");
	return q && !strcmp(q, queue) && json_is_true(json_object_get(rec, "alive")) && sw_json_str(rec, "id");
}

struct member_of { const char *queue; const char *const *roles; size_t nroles; };

/* Whether rec is one of the ring's: alive, serving queue with exactly
 * these roles (in any order). */
static bool member(const json_t *rec, const void *arg)
{
	const struct member_of *m = arg;
	return live_in_queue(rec, m->queue) && same_roles(rec, m->roles, m->nroles);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ring over ids (sorted, as @agents gives them: the ring does not
 * depend on their order, but a listing of it does). */
static int ring_of(struct sw_aff_ring *ar, char **ids, size_t n)
{
	struct sw_err err;
	if (n)
		qsort(ids, n, sizeof *ids, cmp_strp);
	for (size_t i = 0; i < n; i++)
		if (sw_nodes_add(&ar->nodes, ids[i], strlen(ids[i]), NULL, &err))
			return errno = EBADMSG, -1;   /* an id the name rule let through */
	if (!n)
		return 0;
	if (sw_placer_init(&ar->pl, &ar->nodes, SW_ALGO_RING, SW_SHARD_VNODES_DEFAULT, 0, SIZE_MAX,
			   &err))
		return errno = ENOMEM, -1;
	ar->have = true;
	return 0;
}

/* Whether ring ar is over exactly ids (sorted, as ring_of adds them). */
static bool same_members(const struct sw_aff_ring *ar, char **ids, size_t n)
{
	if (ar->nodes.n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ar->nodes.v[i].name, ids[i]))
			return false;
	return true;
}

int sw_aff_ring_update(struct sw_aff_ring *ar, const struct sw_ws *ws, const char *queue,
		       const char *const *roles, size_t nroles)
{
	struct member_of m = { queue, roles, nroles };
	char **ids;
	size_t n;
	if (sw_agent_ids(ws, member, &m, &ids, &n) < 0)
		return -1;
	/* the same members place every key as before: no new ring */
	if (same_members(ar, ids, n)) {
		sw_agent_ids_free(ids, n);
		return 0;
	}
	struct sw_aff_ring fresh = { 0 };
	int rc = ring_of(&fresh, ids, n);
	int e = errno;
	sw_agent_ids_free(ids, n);
	if (rc) {
		sw_aff_ring_free(&fresh);
		errno = e;
		return -1;
	}
	sw_aff_ring_free(ar);
	*ar = fresh;
	return 0;
}

int sw_aff_ring_load(struct sw_aff_ring *ar, const struct sw_ws *ws, const char *queue,
		     const char *const *roles, size_t nroles)
{
	memset(ar, 0, sizeof *ar);
	return sw_aff_ring_update(ar, ws, queue, roles, nroles);
}

long sw_aff_owner(const struct sw_aff_ring *ar, uint64_t h)
{
	return ar->have ? (long)sw_place(&ar->pl, h) : -1;
}

void sw_aff_ring_free(struct sw_aff_ring *ar)
{
	if (ar->have)
		sw_placer_free(&ar->pl);
	sw_nodes_free(&ar->nodes);
	memset(ar, 0, sizeof *ar);
}

/* ---- counting owners -------------------------------------------------- */

/* One ring: the agents of one set of roles. */
struct group {
	const char **rv;
	size_t nr;
	struct sw_aff_ring ring;
	size_t *slot;             /* ring node -> index in the counts */
};

struct counting {
	struct sw_queue *q;
	struct group *g;
	size_t ng;
	json_t *recs;             /* the live agents of the queue */
	struct sw_aff_counts *c;
	bool owned;               /* the current item has an owner somewhere */
};

static int keep_rec(json_t *rec, void *arg)
{
	struct counting *k = arg;
	if (live_in_queue(rec, k->q->name) && json_is_array(json_object_get(rec, "roles")))
		json_array_append(k->recs, rec);
	return 0;
}

static bool role_allowed(const struct group *g, const char *part)
{
	if (!g->nr || !strcmp(part, "-"))
		return true;
	for (size_t i = 0; i < g->nr; i++)
		if (!strcmp(part, g->rv[i]))
			return true;
	return false;
}

static int count_key(const char *part, bool keyed, uint64_t h, void *arg)
{
	struct counting *k = arg;
	if (!keyed) {
		k->c->unkeyed++;
		return 0;
	}
	k->c->keyed++;
	bool owned = false;
	for (size_t i = 0; i < k->ng; i++) {
		long o = role_allowed(&k->g[i], part) ? sw_aff_owner(&k->g[i].ring, h) : -1;
		if (o >= 0) {
			k->c->v[k->g[i].slot[o]].owns++;
			owned = true;
		}
	}
	k->c->unowned += !owned;
	return 0;
}

static int by_count_id(const void *a, const void *b)
{
	return strcmp(((const struct sw_aff_count *)a)->id, ((const struct sw_aff_count *)b)->id);
}

/* Group g's ring over the agents of its roles, and where each of its
 * nodes counts. */
static int group_ring(struct counting *k, struct group *g)
{
	size_t n = json_array_size(k->recs), m = 0;
	char **ids = calloc(n ? n : 1, sizeof *ids);
	if (!ids)
		return errno = ENOMEM, -1;
	for (size_t i = 0; i < n; i++) {
		json_t *rec = json_array_get(k->recs, i);
		if (same_roles(rec, g->rv, g->nr))
			ids[m++] = (char *)sw_json_str(rec, "id");
	}
	int rc = ring_of(&g->ring, ids, m);
	free(ids);
	if (rc == 0 && !(g->slot = calloc(m ? m : 1, sizeof *g->slot)))
		rc = (errno = ENOMEM, -1);
	for (size_t i = 0; rc == 0 && i < m; i++) {
		struct sw_aff_count key;
		snprintf(key.id, sizeof key.id, "%s", g->ring.nodes.v[i].name);
		const struct sw_aff_count *at = bsearch(&key, k->c->v, k->c->n, sizeof key, by_count_id);
		g->slot[i] = at ? (size_t)(at - k->c->v) : 0;
	}
	return rc;
}

/* The groups of roles among k->recs, each with its ring. */
static int make_groups(struct counting *k)
{
	size_t n = json_array_size(k->recs);
	k->g = calloc(n ? n : 1, sizeof *k->g);
	k->c->v = calloc(n ? n : 1, sizeof *k->c->v);
	if (!k->g || !k->c->v)
		return errno = ENOMEM, -1;
	k->c->n = n;
	for (size_t i = 0; i < n; i++)
		snprintf(k->c->v[i].id, sizeof k->c->v[i].id, "%s", sw_json_str(json_array_get(k->recs, i), "id"));
	qsort(k->c->v, n, sizeof *k->c->v, by_count_id);
	for (size_t i = 0; i < n; i++) {
		json_t *rec = json_array_get(k->recs, i), *roles = json_object_get(rec, "roles");
		size_t j = 0;
		while (j < k->ng && !same_roles(rec, k->g[j].rv, k->g[j].nr))
			j++;
		if (j < k->ng)
			continue;
		struct group *g = &k->g[k->ng++];
		g->nr = json_array_size(roles);
		if (!(g->rv = calloc(g->nr ? g->nr : 1, sizeof *g->rv)))
			return errno = ENOMEM, -1;
		for (size_t r = 0; r < g->nr; r++) {
			const char *s = json_string_value(json_array_get(roles, r));
			g->rv[r] = s ? s : "";
		}
		if (group_ring(k, g) < 0)
			return -1;
	}
	return 0;
}

static void groups_free(struct counting *k)
{
	for (size_t i = 0; i < k->ng; i++) {
		free(k->g[i].rv);
		free(k->g[i].slot);
		sw_aff_ring_free(&k->g[i].ring);
	}
	free(k->g);
}

int sw_aff_count_of(struct sw_queue *q, const json_t *recs, struct sw_aff_counts *c)
{
	memset(c, 0, sizeof *c);
	struct counting k = { .q = q, .c = c, .recs = json_array() };
	int rc = 0;
	size_t i;
	json_t *rec;
	if (!k.recs) {
		rc = sw_err_set(&q->err, EX_SOFTWARE, "out of memory");
	} else {
		json_array_foreach(recs, i, rec)
			keep_rec(rec, &k);
		if (make_groups(&k) < 0)
			rc = sw_err_set(&q->err, sw_ex_errno(errno), "reading agents: %s", strerror(errno));
		else
			rc = sw_queue_keys(q, count_key, &k);
	}
	groups_free(&k);
	json_decref(k.recs);
	if (rc)
		sw_aff_counts_free(c);
	return rc;
}

static int append_rec(json_t *rec, void *arg)
{
	return json_array_append(arg, rec) < 0 ? (errno = ENOMEM, -1) : 0;
}

int sw_aff_count(struct sw_queue *q, const struct sw_ws *ws, struct sw_aff_counts *c)
{
	memset(c, 0, sizeof *c);
	json_t *recs = json_array();
	int rc;
	if (!recs)
		rc = sw_err_set(&q->err, EX_SOFTWARE, "out of memory");
	else if (sw_agent_each(ws, append_rec, recs) < 0)
		rc = sw_err_set(&q->err, sw_ex_errno(errno), "reading agents: %s", strerror(errno));
	else
		rc = sw_aff_count_of(q, recs, c);
	json_decref(recs);
	return rc;
}

long long sw_aff_owns(const struct sw_aff_counts *c, const char *id)
{
	struct sw_aff_count key;
	snprintf(key.id, sizeof key.id, "%s", id);
	const struct sw_aff_count *at = c->n ? bsearch(&key, c->v, c->n, sizeof key, by_count_id) : NULL;
	return at ? at->owns : 0;
}

void sw_aff_counts_free(struct sw_aff_counts *c)
{
	free(c->v);
	memset(c, 0, sizeof *c);
}
