#include "shard.h"
#include "id.h"
#include "num.h"
#include "err.h"
#include <stdarg.h>
#include <sysexits.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^64 / golden ratio: spreads the probe hashes of bounded loads */
#define PHI64 UINT64_C(0x9E3779B97F4A7C15)

uint32_t sw_jump_hash(uint64_t key, uint32_t buckets)
{
	int64_t b = -1, j = 0;
	while (j < (int64_t)buckets) {
		b = j;
		key = key * UINT64_C(2862933555777941757) + 1;
		j = (int64_t)((double)(b + 1) * ((double)(INT64_C(1) << 31) / (double)((key >> 33) + 1)));
	}
	return (uint32_t)b;
}

/* ---- algorithms by name ---- */

static const char *const algo_names[] = { "ring", "rendezvous", "jump", "mod" };

int sw_algo_parse(const char *s)
{
	for (size_t i = 0; i < sizeof algo_names / sizeof *algo_names; i++)
		if (!strcmp(s, algo_names[i]))
			return (int)i;
	return -1;
}

const char *sw_algo_name(enum sw_algo a) { return algo_names[a]; }

/* ---- node lists ---- */

static int oom(struct sw_err *err)
{
	return sw_err_set(err, EX_SOFTWARE, "out of memory");
}

static int parse_weight(const char *s, double *w, struct sw_err *err)
{
	/* the number family's decimals: no "1e3", "inf", "0x1" or spaces */
	if (sw_parse_real(s, 0, SW_SHARD_WEIGHT_MAX, w) == 0 && *w > 0)
		return 0;
	if (errno == EINVAL)
		return sw_err_set(err, EX_DATAERR, "bad weight '%.40s': want a positive decimal number", s);
	return sw_err_set(err, EX_DATAERR, "bad weight '%.40s': want a number above 0 and at most 1e6", s);
}

/* Why name (len bytes) cannot be a node, or NULL. */
static const char *node_name_problem(const char *name, size_t len)
{
	if (strlen(name) != len)
		return "holds a NUL byte";
	const char *why = sw_name_problem(name);
	if (!why && strpbrk(name, " \t\r\v\f,="))
		why = "holds whitespace, ',' or '='";
	return why;
}

/* Adds name (len bytes) with the weight text wtext, or with w when wtext
 * is NULL; a bad name is reported before a bad weight. */
static int add_node(struct sw_nodes *ns, const char *name, size_t len, const char *wtext, double w,
		    struct sw_err *err)
{
	if (len == 0)
		return sw_err_set(err, EX_DATAERR, "empty node name");
	if (len > SW_NAME_MAX)
		return sw_err_set(err, EX_DATAERR, "node name '%.40s…' is over %d bytes", name, SW_NAME_MAX);
	char *copy = strndup(name, len);
	if (!copy)
		return oom(err);
	const char *why = node_name_problem(copy, len);
	int code = 0;
	if (why)
		code = sw_err_set(err, EX_DATAERR, "bad node name '%.60s': %s", copy, why);
	else if (wtext)
		code = parse_weight(wtext, &w, err);
	else if (!(w > 0 && w <= SW_SHARD_WEIGHT_MAX))
		code = sw_err_set(err, EX_DATAERR, "bad weight of '%.60s': want a number above 0 and "
			    "at most 1e6", copy);
	if (!code && ns->n >= SW_SHARD_NODES_MAX)
		code = sw_err_set(err, EX_DATAERR, "more than %d nodes", SW_SHARD_NODES_MAX);
	if (!code && ns->n == ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 16;
		struct sw_node *v = realloc(ns->v, cap * sizeof *v);
		if (v) {
			ns->v = v;
			ns->cap = cap;
		} else {
			code = oom(err);
		}
	}
	if (code) {
		free(copy);
		return code;
	}
	if (ns->n && w != ns->v[0].weight)
		ns->weighted = true;
	ns->v[ns->n].name = copy;
	ns->v[ns->n].weight = w;
	ns->n++;
	ns->total += w;
	return 0;
}

int sw_nodes_add(struct sw_nodes *ns, const char *name, size_t len, const char *weight,
		 struct sw_err *err)
{
	return add_node(ns, name, len, weight, 1, err);
}

int sw_nodes_add_weight(struct sw_nodes *ns, const char *name, size_t len, double w, struct sw_err *err)
{
	return add_node(ns, name, len, NULL, w, err);
}

/* "name" or "name=weight" of len bytes */
static int add_entry(struct sw_nodes *ns, const char *s, size_t len, struct sw_err *err)
{
	const char *eq = memchr(s, '=', len);
	if (!eq)
		return sw_nodes_add(ns, s, len, NULL, err);
	char wbuf[64];
	size_t wl = len - (size_t)(eq + 1 - s);
	if (wl >= sizeof wbuf)
		return sw_err_set(err, EX_DATAERR, "bad weight '%.40s': too long", eq + 1);
	memcpy(wbuf, eq + 1, wl);
	wbuf[wl] = 0;
	return sw_nodes_add(ns, s, (size_t)(eq - s), wbuf, err);
}

int sw_nodes_parse_list(struct sw_nodes *ns, const char *list, struct sw_err *err)
{
	const char *p = list;
	if (!list[strspn(list, ", \t")])
		return sw_err_set(err, EX_DATAERR, "empty node list");
	for (;;) {
		size_t len = strcspn(p, ",");
		/* tolerate spaces around entries: "a, b=2" */
		const char *s = p, *e = p + len;
		while (s < e && isspace((unsigned char)*s)) s++;
		while (e > s && isspace((unsigned char)e[-1])) e--;
		int code = add_entry(ns, s, (size_t)(e - s), err);
		if (code)
			return code;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int sw_nodes_parse_text(struct sw_nodes *ns, const char *text, size_t len, struct sw_err *err)
{
	const char *p = text, *end = text + len;
	for (long line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *s = p, *e = le;
		p = nl ? nl + 1 : end;
		while (s < e && isspace((unsigned char)*s)) s++;
		while (e > s && isspace((unsigned char)e[-1])) e--;
		if (s == e || *s == '#')
			continue;
		struct sw_err m;
		int rc;
		const char *ws = s;
		while (ws < e && !isspace((unsigned char)*ws)) ws++;
		if (ws == e) {
			rc = add_entry(ns, s, (size_t)(e - s), &m);
		} else {
			const char *w = ws;
			while (w < e && isspace((unsigned char)*w)) w++;
			char wbuf[64];
			size_t wl = (size_t)(e - w);
			if (memchr(w, ' ', wl) || memchr(w, '\t', wl) || wl >= sizeof wbuf) {
				rc = sw_err_set(&m, EX_DATAERR, "want 'name' or 'name weight'");
			} else {
				memcpy(wbuf, w, wl);
				wbuf[wl] = 0;
				rc = sw_nodes_add(ns, s, (size_t)(ws - s), wbuf, &m);
			}
		}
		if (rc)
			return sw_err_set(err, rc, "line %ld: %s", line, m.msg);
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sw_nodes_check(const struct sw_nodes *ns, struct sw_err *err)
{
	if (ns->n == 0)
		return sw_err_set(err, EX_DATAERR, "empty node list");
	const char **names = malloc(ns->n * sizeof *names);
	if (!names)
		return oom(err);
	for (size_t i = 0; i < ns->n; i++)
		names[i] = ns->v[i].name;
	qsort(names, ns->n, sizeof *names, cmp_str);   /* equal names side by side */
	int rc = 0;
	for (size_t i = 1; i < ns->n && !rc; i++)
		if (!strcmp(names[i - 1], names[i]))
			rc = sw_err_set(err, EX_DATAERR, "duplicate node name '%.60s'", names[i]);
	free(names);
	return rc;
}

void sw_nodes_free(struct sw_nodes *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].name);
	free(ns->v);
	memset(ns, 0, sizeof *ns);
}

long sw_nodes_find(const struct sw_nodes *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->v[i].name, name))
			return (long)i;
	return -1;
}

double sw_nodes_ideal_moved(const struct sw_nodes *a, const struct sw_nodes *b)
{
	/* total variation distance: the positive parts of the share changes */
	double moved = 0;
	for (size_t i = 0; i < b->n; i++) {
		long j = sw_nodes_find(a, b->v[i].name);
		double sb = b->v[i].weight / b->total;
		double sa = j < 0 ? 0 : a->v[j].weight / a->total;
		if (sb > sa)
			moved += sb - sa;
	}
	return moved;
}

static int cmp_name(const void *a, const void *b, void *nodes)
{
	const struct sw_nodes *ns = nodes;
	return strcmp(ns->v[*(const uint32_t *)a].name, ns->v[*(const uint32_t *)b].name);
}

/* to's index of name among byname (to's indexes in name order), or
 * UINT32_MAX. */
static uint32_t find_sorted(const struct sw_nodes *to, const uint32_t *byname, const char *name)
{
	size_t lo = 0, hi = to->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(to->v[byname[mid]].name, name);
		if (c == 0)
			return byname[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return UINT32_MAX;
}

int sw_plan_init(struct sw_plan *p, const struct sw_nodes *from, const struct sw_nodes *to,
		 struct sw_err *err)
{
	p->same = malloc((from->n ? from->n : 1) * sizeof *p->same);
	uint32_t *byname = malloc((to->n ? to->n : 1) * sizeof *byname);
	if (!p->same || !byname) {
		free(byname);
		sw_plan_free(p);
		return oom(err);
	}
	for (size_t i = 0; i < to->n; i++)
		byname[i] = (uint32_t)i;
	/* sorted once, then one binary search per node: lists of a million */
	qsort_r(byname, to->n, sizeof *byname, cmp_name, (void *)to);
	for (size_t i = 0; i < from->n; i++)
		p->same[i] = find_sorted(to, byname, from->v[i].name);
	free(byname);
	return 0;
}

void sw_plan_free(struct sw_plan *p)
{
	free(p->same);
	p->same = NULL;
}

/* ---- placement ---- */

/* rank[i]: position of node i in name order, so ties never depend on the
 * order nodes were listed in */
static int make_rank(struct sw_placer *pl)
{
	const struct sw_nodes *ns = pl->nodes;
	uint32_t *order = malloc(ns->n * sizeof *order);
	pl->rank = malloc(ns->n * sizeof *pl->rank);
	pl->byrank = NULL;
	if (!order || !pl->rank) {
		free(order);
		return -1;
	}
	for (size_t i = 0; i < ns->n; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, ns->n, sizeof *order, cmp_name, (void *)ns);
	for (size_t i = 0; i < ns->n; i++)
		pl->rank[order[i]] = (uint32_t)i;
	pl->byrank = order;
	return 0;
}

/* Stable LSD radix sort of n (hash, value) pairs by hash, 16 bits a pass:
 * equal hashes keep their input order. */
struct hv { uint64_t h; uint32_t v; };

static int radix_sort(struct hv *a, size_t n)
{
	struct hv *b = malloc((n ? n : 1) * sizeof *b);
	size_t *cnt = malloc(65536 * sizeof *cnt);
	if (!b || !cnt) {
		free(b); free(cnt);
		errno = ENOMEM;
		return -1;
	}
	struct hv *src = a, *dst = b;
	for (int shift = 0; shift < 64; shift += 16) {
		memset(cnt, 0, 65536 * sizeof *cnt);
		for (size_t i = 0; i < n; i++)
			cnt[(src[i].h >> shift) & 0xffff]++;
		size_t sum = 0;
		for (size_t d = 0; d < 65536; d++) {
			size_t c = cnt[d];
			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(src[i].h >> shift) & 0xffff]++] = src[i];
		struct hv *t = src; src = dst; dst = t;
	}
	/* four passes: the sorted data is back in a */
	free(b); free(cnt);
	return 0;
}

static size_t vnode_count(unsigned vnodes, double weight)
{
	double v = round((double)vnodes * weight);
	return v < 1 ? 1 : v > (double)SW_SHARD_POINTS_MAX ? (size_t)SW_SHARD_POINTS_MAX + 1 : (size_t)v;
}

/* Point j of a node: fmix64(node hash + (j+1)·φ64), splitmix-style: one
 * multiply-mix per point instead of hashing a string, so building the ring
 * costs little more than exec for a one-key lookup. */
static inline uint64_t ring_point(uint64_t nh, size_t j)
{
	return sw_fmix64(nh + (uint64_t)(j + 1) * PHI64);
}

/* Up to 8 points a bucket on average, insertion sort inside the buckets
 * is cheapest; bigger rings are radix sorted whole. */
#define RING_SMALL (8u * 65536)

static void ring_tab(struct sw_placer *pl, size_t total)
{
	/* tab[t]: the first point whose top 16 bits are >= t */
	pl->tab_bits = 16;
	size_t i = 0;
	for (uint32_t t = 0; t <= 65536; t++) {
		while (i < total && (pl->pt[i] >> 48) < t)
			i++;
		pl->tab[t] = (uint32_t)i;
	}
}

static int ring_build_big(struct sw_placer *pl, size_t total)
{
	const struct sw_nodes *ns = pl->nodes;
	struct hv *p = malloc(total * sizeof *p);
	if (!p) {
		return -1;
	}
	size_t k = 0;
	for (size_t r = 0; r < ns->n; r++) {   /* name order: the stable sort keeps it for ties */
		uint32_t i = pl->byrank[r];
		for (size_t j = 0; j < pl->nv[i]; j++) {
			p[k].h = ring_point(pl->nhash[i], j);
			p[k++].v = i;
		}
	}
	if (radix_sort(p, total) < 0) {
		free(p);
		return -1;
	}
	for (size_t i = 0; i < total; i++) {
		pl->pt[i] = p[i].h;
		pl->pnode[i] = p[i].v;
	}
	free(p);
	pl->npt = total;
	ring_tab(pl, total);
	return 0;
}

static int ring_build(struct sw_placer *pl)
{
	const struct sw_nodes *ns = pl->nodes;
	size_t total = 0;
	for (size_t i = 0; i < ns->n; i++)
		total += pl->nv[i];
	const uint32_t *byrank = pl->byrank;
	/* a bucket per point or so: a small ring (a few agents' for one
	 * claim) is not worth 65536 of them */
	unsigned bits = 8;
	while (bits < 16 && (size_t)1 << bits < total)
		bits++;
	size_t ntab = (size_t)1 << bits, shift = 64 - bits;
	pl->tab_bits = bits;
	pl->pt = malloc(total * sizeof *pl->pt);
	pl->pnode = malloc(total * sizeof *pl->pnode);
	pl->tab = calloc(ntab + 1, sizeof *pl->tab);
	if (!pl->pt || !pl->pnode || !pl->tab) {
		return -1;
	}
	if (total > RING_SMALL)
		return ring_build_big(pl, total);
	/* counting sort on the top bits (which also yields tab), then
	 * insertion sort inside each bucket of a few points; points are
	 * generated in name order and both sorts are stable, so equal hashes
	 * stay in name order whatever order the nodes were listed in */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t r = 0; r < ns->n; r++) {
			uint32_t i = byrank[r];
			for (size_t j = 0; j < pl->nv[i]; j++) {
				uint64_t h = ring_point(pl->nhash[i], j);
				if (pass == 0) {
					pl->tab[(h >> shift) + 1]++;
				} else {
					uint32_t at = pl->tab[h >> shift]++;
					pl->pt[at] = h;
					pl->pnode[at] = i;
				}
			}
		}
		if (pass == 0)
			for (size_t t = 1; t <= ntab; t++)
				pl->tab[t] += pl->tab[t - 1];
	}
	/* the scatter advanced tab[t] to the start of bucket t+1: shift back */
	memmove(pl->tab + 1, pl->tab, ntab * sizeof *pl->tab);
	pl->tab[0] = 0;
	for (size_t t = 0; t < ntab; t++) {
		for (size_t x = pl->tab[t] + 1; x < pl->tab[t + 1]; x++) {
			uint64_t h = pl->pt[x];
			uint32_t nd = pl->pnode[x];
			size_t y = x;
			for (; y > pl->tab[t] && pl->pt[y - 1] > h; y--) {
				pl->pt[y] = pl->pt[y - 1];
				pl->pnode[y] = pl->pnode[y - 1];
			}
			pl->pt[y] = h;
			pl->pnode[y] = nd;
		}
	}
	pl->npt = total;
	return 0;
}

/* The ring's points per node; 0, or 64 when there would be too many. */
static int ring_points(struct sw_placer *pl, unsigned vnodes, struct sw_err *err)
{
	const struct sw_nodes *ns = pl->nodes;
	if (vnodes == 0)
		return sw_err_set(err, EX_USAGE, "vnodes must be at least 1");
	pl->nv = malloc(ns->n * sizeof *pl->nv);
	if (!pl->nv)
		return oom(err);
	size_t total = 0;
	for (size_t i = 0; i < ns->n; i++) {
		total += pl->nv[i] = (uint32_t)vnode_count(vnodes, ns->v[i].weight);
		if (total > SW_SHARD_POINTS_MAX)
			return sw_err_set(err, EX_USAGE, "ring would have over %u points: lower --vnodes "
				    "or the weights", SW_SHARD_POINTS_MAX);
	}
	return 0;
}

static int placer_setup(struct sw_placer *pl, unsigned vnodes, size_t nkeys, struct sw_err *err)
{
	const struct sw_nodes *ns = pl->nodes;
	if (ns->n == 0)
		return sw_err_set(err, EX_DATAERR, "empty node list");
	if (ns->weighted && (pl->algo == SW_ALGO_JUMP || pl->algo == SW_ALGO_MOD))
		return sw_err_set(err, EX_USAGE, "%s cannot weigh nodes: use ring or rendezvous",
			    sw_algo_name(pl->algo));
	pl->nhash = malloc(ns->n * sizeof *pl->nhash);
	if (make_rank(pl) < 0 || !pl->nhash)
		return oom(err);
	for (size_t i = 0; i < ns->n; i++)
		pl->nhash[i] = sw_xxh64(ns->v[i].name, strlen(ns->v[i].name), pl->seed);
	if (pl->algo != SW_ALGO_RING)
		return 0;
	int code = ring_points(pl, vnodes, err);
	/* a few plain lookups cost less than sorting the ring: scan it */
	if (!code && nkeys > SW_SHARD_SCAN_MAX && ring_build(pl) < 0)
		code = oom(err);
	return code;
}

int sw_placer_init(struct sw_placer *pl, const struct sw_nodes *ns, enum sw_algo algo,
		   unsigned vnodes, uint64_t seed, size_t nkeys, struct sw_err *err)
{
	memset(pl, 0, sizeof *pl);
	pl->algo = algo;
	pl->seed = seed;
	pl->nodes = ns;
	int code = placer_setup(pl, vnodes, nkeys, err);
	if (code)
		sw_placer_free(pl);
	return code;
}

void sw_placer_free(struct sw_placer *pl)
{
	free(pl->nhash);
	free(pl->nv);
	free(pl->rank);
	free(pl->byrank);
	free(pl->pt);
	free(pl->pnode);
	free(pl->tab);
	memset(pl, 0, sizeof *pl);
}

static inline size_t ring_index(const struct sw_placer *pl, uint64_t h)
{
	size_t lo = pl->tab[h >> (64 - pl->tab_bits)], hi = pl->tab[(h >> (64 - pl->tab_bits)) + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pl->pt[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == pl->npt ? 0 : lo;
}

/* -ln(u)/w, smaller is better: the weighted rendezvous score inverted so
 * the division goes away */
static inline double weighted_cost(uint64_t s, double w)
{
	double u = ((double)(s >> 11) + 0.5) * 0x1p-53;
	return -log(u) / w;
}

/* The best node for h among those not full (full may be NULL). */
static uint32_t rendezvous(const struct sw_placer *pl, uint64_t h, const uint64_t *load,
			   const uint64_t *cap)
{
	const struct sw_nodes *ns = pl->nodes;
	uint32_t best = UINT32_MAX;
	if (!ns->weighted) {
		uint64_t bs = 0;
		for (size_t i = 0; i < ns->n; i++) {
			if (load && load[i] >= cap[i])
				continue;
			uint64_t s = sw_fmix64(h ^ pl->nhash[i]);
			if (best == UINT32_MAX || s > bs || (s == bs && pl->rank[i] < pl->rank[best])) {
				best = (uint32_t)i;
				bs = s;
			}
		}
		return best;
	}
	double bc = 0;
	for (size_t i = 0; i < ns->n; i++) {
		if (load && load[i] >= cap[i])
			continue;
		double c = weighted_cost(sw_fmix64(h ^ pl->nhash[i]), ns->v[i].weight);
		if (best == UINT32_MAX || c < bc || (c == bc && pl->rank[i] < pl->rank[best])) {
			best = (uint32_t)i;
			bc = c;
		}
	}
	return best;
}

/* The ring's answer without building it: the lowest point at or after h,
 * else the lowest point; nodes visited in name order and only a strictly
 * lower point replaces the best, so ties go as in the sorted ring. */
static uint32_t ring_scan(const struct sw_placer *pl, uint64_t h)
{
	uint64_t ge = 0, mn = 0;
	uint32_t nge = UINT32_MAX, nmn = UINT32_MAX;
	for (size_t r = 0; r < pl->nodes->n; r++) {
		uint32_t i = pl->byrank[r];
		for (size_t j = 0; j < pl->nv[i]; j++) {
			uint64_t p = ring_point(pl->nhash[i], j);
			if (p >= h && (nge == UINT32_MAX || p < ge)) {
				ge = p;
				nge = i;
			}
			if (nmn == UINT32_MAX || p < mn) {
				mn = p;
				nmn = i;
			}
		}
	}
	return nge != UINT32_MAX ? nge : nmn;
}

uint32_t sw_place(const struct sw_placer *pl, uint64_t h)
{
	switch (pl->algo) {
	case SW_ALGO_RING: return pl->pt ? pl->pnode[ring_index(pl, h)] : ring_scan(pl, h);
	case SW_ALGO_RENDEZVOUS: return rendezvous(pl, h, NULL, NULL);
	case SW_ALGO_JUMP: return sw_jump_hash(h, (uint32_t)pl->nodes->n);
	case SW_ALGO_MOD: return (uint32_t)(h % pl->nodes->n);
	}
	return 0;
}

uint64_t sw_bounded_cap(double factor, size_t m, double w, double total)
{
	double c = factor * (double)m * w / total;
	/* 1.1 × 1e6 / 100 comes out as 11000.000000000002: do not round that up */
	return (uint64_t)ceil(c - c * 1e-12);
}

/* order[]: key indexes in hash order (equal hashes in input order), so
 * bounded placement does not depend on the order keys came in */
static int sort_by_hash(const uint64_t *h, size_t m, uint32_t *order)
{
	struct hv *a = malloc((m ? m : 1) * sizeof *a);
	if (!a)
		return -1;
	for (size_t i = 0; i < m; i++) {
		a[i].h = h[i];
		a[i].v = (uint32_t)i;
	}
	if (radix_sort(a, m) < 0) {
		free(a);
		return -1;
	}
	for (size_t i = 0; i < m; i++)
		order[i] = a[i].v;
	free(a);
	return 0;
}

static uint32_t bounded_one(const struct sw_placer *pl, uint64_t h, const uint64_t *load,
			    const uint64_t *cap)
{
	size_t n = pl->nodes->n;
	if (pl->algo == SW_ALGO_RING) {
		size_t i = ring_index(pl, h);
		for (size_t steps = 0; steps < pl->npt; steps++) {
			uint32_t node = pl->pnode[i];
			if (load[node] < cap[node])
				return node;
			i = i + 1 == pl->npt ? 0 : i + 1;
		}
	} else if (pl->algo == SW_ALGO_RENDEZVOUS) {
		/* the unconstrained loop is cheaper, and its answer usually has room */
		uint32_t b = rendezvous(pl, h, NULL, NULL);
		if (load[b] < cap[b])
			return b;
		b = rendezvous(pl, h, load, cap);
		if (b != UINT32_MAX)
			return b;
	} else {
		uint32_t b = sw_place(pl, h);
		for (uint64_t j = 1; load[b] >= cap[b] && j <= 64 * (uint64_t)n; j++)
			b = sw_place(pl, sw_fmix64(h + j * PHI64));
		if (load[b] < cap[b])
			return b;
		for (size_t i = 0; i < n; i++)   /* unlucky probes: any node with room */
			if (load[i] < cap[i])
				return (uint32_t)i;
	}
	return sw_place(pl, h);   /* unreachable while the caps sum to >= m */
}

int sw_place_all(const struct sw_placer *pl, const uint64_t *h, size_t m, double factor,
		 uint32_t *out)
{
	if (factor <= 0) {
		for (size_t i = 0; i < m; i++)
			out[i] = sw_place(pl, h[i]);
		return 0;
	}
	const struct sw_nodes *ns = pl->nodes;
	if (pl->algo == SW_ALGO_RING && !pl->pt) {
		errno = EINVAL;     /* bounded loads walk the built ring */
		return -1;
	}
	uint32_t *order = malloc((m ? m : 1) * sizeof *order);
	uint64_t *load = calloc(ns->n, sizeof *load), *cap = malloc(ns->n * sizeof *cap);
	if (!order || !load || !cap || sort_by_hash(h, m, order) < 0) {
		free(order); free(load); free(cap);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < ns->n; i++)
		cap[i] = sw_bounded_cap(factor, m, ns->v[i].weight, ns->total);
	for (size_t k = 0; k < m; k++) {
		uint32_t i = order[k];
		uint32_t node = bounded_one(pl, h[i], load, cap);
		load[node]++;
		out[i] = node;
	}
	free(order); free(load); free(cap);
	return 0;
}
