/* test_shard — the placement algorithms of lib/shard.c: the hash against
 * xxhsum's published values, node list parsing, and the movement and
 * balance properties sw-shard(1) promises, over 1,000,000 keys. */
#include "tap.h"
#include "shard.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 1000000

static uint64_t *keys;          /* hashes of "key0" … "key999999", seed 0 */

static void nodes_make(struct sw_nodes *ns, int n, const char *skip)
{
	struct sw_err err;
	char name[32];
	memset(ns, 0, sizeof *ns);
	for (int i = 0; i < n; i++) {
		int l = snprintf(name, sizeof name, "node%d", i);
		if (skip && !strcmp(name, skip))
			continue;
		if (sw_nodes_add(ns, name, (size_t)l, NULL, &err) != 0) {
			printf("Bail out! %s\n", err.msg);
			exit(1);
		}
	}
}

/* Placements computed so far: the suite also runs under ASan, and the
 * same 100-node placement serves the join, leave and balance tests. */
static struct cached {
	const struct sw_nodes *ns;
	size_t n;
	enum sw_algo algo;
	unsigned vnodes;
	double load;
	uint32_t *out;
} cache[64];
static size_t ncache;

static bool cached_same(const struct cached *c, const struct sw_nodes *ns, enum sw_algo algo,
			unsigned vnodes, double load)
{
	if (c->n != ns->n || c->algo != algo || c->vnodes != vnodes || c->load != load)
		return false;
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(c->ns->v[i].name, ns->v[i].name) || c->ns->v[i].weight != ns->v[i].weight)
			return false;
	return true;
}

/* placement of every key, by node index into ns; owned by the cache */
static uint32_t *place(const struct sw_nodes *ns, enum sw_algo algo, unsigned vnodes, double load)
{
	for (size_t i = 0; i < ncache; i++)
		if (cached_same(&cache[i], ns, algo, vnodes, load))
			return cache[i].out;
	struct sw_placer pl;
	struct sw_err err = {0};
	uint32_t *out = malloc(NKEYS * sizeof *out);
	if (!out || sw_placer_init(&pl, ns, algo, vnodes, 0, SIZE_MAX, &err) != 0 ||
	    sw_place_all(&pl, keys, NKEYS, load, out) < 0) {
		printf("Bail out! placing: %s\n", err.msg);
		exit(1);
	}
	sw_placer_free(&pl);
	if (ncache == sizeof cache / sizeof *cache) {
		printf("Bail out! placement cache full\n");
		exit(1);
	}
	/* the cache keeps its own copy of the node list */
	struct sw_nodes *copy = calloc(1, sizeof *copy);
	for (size_t i = 0; i < ns->n; i++) {
		sw_nodes_add(copy, ns->v[i].name, strlen(ns->v[i].name), NULL, &err);
		copy->v[i].weight = ns->v[i].weight;
	}
	cache[ncache++] = (struct cached){ copy, ns->n, algo, vnodes, load, out };
	return out;
}

static void cache_free(void)
{
	for (size_t i = 0; i < ncache; i++) {
		sw_nodes_free((struct sw_nodes *)cache[i].ns);
		free((void *)cache[i].ns);
		free(cache[i].out);
	}
}

static size_t max_count(const struct sw_nodes *ns, const uint32_t *out)
{
	size_t *cnt = calloc(ns->n, sizeof *cnt), mx = 0;
	for (size_t i = 0; i < NKEYS; i++)
		cnt[out[i]]++;
	for (size_t i = 0; i < ns->n; i++)
		if (cnt[i] > mx)
			mx = cnt[i];
	free(cnt);
	return mx;
}

/* keys whose node (by name) differs between the two placements */
static size_t moved(const struct sw_nodes *a, const uint32_t *pa, const struct sw_nodes *b,
		    const uint32_t *pb)
{
	long *map = malloc(a->n * sizeof *map);   /* a's node -> b's node */
	for (size_t i = 0; i < a->n; i++)
		map[i] = sw_nodes_find(b, a->v[i].name);
	size_t m = 0;
	for (size_t i = 0; i < NKEYS; i++)
		m += map[pa[i]] != (long)pb[i];
	free(map);
	return m;
}

static void test_hash(void)
{
	/* expected values from xxhsum -H64 (the xxHash reference tool) */
	static const struct { const char *s; uint64_t h; } v[] = {
		{"", UINT64_C(0xef46db3751d8e999)},
		{"a", UINT64_C(0xd24ec4f1a98c6e5b)},
		{"abc", UINT64_C(0x44bc2cf5ad770999)},
		{"node-7#12", UINT64_C(0x4c4ec7baf3384f0f)},
		{"The quick brown fox jumps over the lazy dog, twice: The quick brown fox!",
		 UINT64_C(0xdcae8c06489b06c4)},
	};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		ok(sw_xxh64(v[i].s, strlen(v[i].s), 0) == v[i].h, "XXH64(\"%.12s…\") matches xxhsum", v[i].s);
	ok(sw_xxh64("abc", 3, 1) != sw_xxh64("abc", 3, 0), "the seed changes the hash");

	int bad = 0;
	for (uint64_t k = 0; k < 10000; k++) {
		uint64_t h = sw_fmix64(k);
		uint32_t a = sw_jump_hash(h, 10), b = sw_jump_hash(h, 11);
		if (a >= 10 || (b != a && b != 10))
			bad++;
	}
	ok(bad == 0, "jump: a key stays or moves to the new bucket");
}

static void test_nodes(void)
{
	struct sw_nodes ns = {0};
	struct sw_err err;
	ok(sw_nodes_parse_list(&ns, "a, b=2,c=0.5", &err) == 0 && ns.n == 3 &&
	   ns.v[1].weight == 2 && ns.v[2].weight == 0.5 && ns.total == 3.5 && ns.weighted,
	   "list with weights parses");
	sw_nodes_free(&ns);
	const char *text = "# nodes\nx 3\n\n  y\nz=2\n";
	ok(sw_nodes_parse_text(&ns, text, strlen(text), &err) == 0 && ns.n == 3 &&
	   ns.v[0].weight == 3 && ns.v[1].weight == 1 && ns.v[2].weight == 2, "file form parses");
	sw_nodes_free(&ns);
	static const char *const bad[] = {
		"a,,b", "a,b=0", "a=-1", "a=abc", "a=inf", "a=nan", "a=0x10", "a=2000000",
		"a b", "a/b", "..", "-a", "a,b=", "a=1e3", "a= 1", "a=+1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int rc = sw_nodes_parse_list(&ns, bad[i], &err);
		ok(rc == 65 && err.msg[0], "refused (65): '%s' (%s)", bad[i], rc ? err.msg : "accepted");
		sw_nodes_free(&ns);
	}
	ok(sw_nodes_parse_list(&ns, "a,b,a", &err) == 0 &&
	   sw_nodes_check(&ns, &err) == 65 && strstr(err.msg, "duplicate"),
	   "duplicate names refused");
	sw_nodes_free(&ns);
	ok(sw_nodes_check(&ns, &err) == 65 && strstr(err.msg, "empty"), "empty list refused");
	text = "a 1 2\n";
	ok(sw_nodes_parse_text(&ns, text, strlen(text), &err) == 65 && strstr(err.msg, "line 1"),
	   "a file line with extra fields is refused with its number");
	sw_nodes_free(&ns);

	struct sw_placer pl;
	ok(sw_nodes_parse_list(&ns, "a=1,b=2", &err) == 0 &&
	   sw_placer_init(&pl, &ns, SW_ALGO_JUMP, 0, 0, SIZE_MAX, &err) == 64 &&
	   sw_placer_init(&pl, &ns, SW_ALGO_MOD, 0, 0, SIZE_MAX, &err) == 64,
	   "jump and mod refuse weights (64)");
	struct sw_nodes f = {0}, t = {0};
	struct sw_plan plan;
	ok(sw_nodes_parse_list(&f, "a,b,c", &err) == 0 &&
	   sw_nodes_parse_list(&t, "c,a,d", &err) == 0 &&
	   sw_plan_init(&plan, &f, &t, &err) == 0 && !sw_plan_moves(&plan, 0, 1) &&
	   sw_plan_moves(&plan, 1, 0) && !sw_plan_moves(&plan, 2, 0) && sw_plan_moves(&plan, 0, 2),
	   "plan: a key moves when its node's name changes, not its index");
	sw_plan_free(&plan);
	sw_nodes_free(&f);
	sw_nodes_free(&t);
	ok(sw_placer_init(&pl, &ns, SW_ALGO_RING, 1000000, 0, SIZE_MAX, &err) == 0 &&
	   pl.npt == 3000000, "ring points follow vnodes × weight");
	sw_placer_free(&pl);
	sw_nodes_free(&ns);

	struct sw_nodes a, b;
	nodes_make(&a, 100, NULL);
	nodes_make(&b, 101, NULL);
	double add = sw_nodes_ideal_moved(&a, &b), rm = sw_nodes_ideal_moved(&b, &a);
	ok(add > 1 / 101.0 - 1e-12 && add < 1 / 101.0 + 1e-12, "ideal move for a join is 1/(N+1)");
	ok(rm > 1 / 101.0 - 1e-12 && rm < 1 / 101.0 + 1e-12, "ideal move for a leave is 1/N");
	sw_nodes_free(&a);
	sw_nodes_free(&b);
	ok(sw_bounded_cap(1.1, 1000000, 1, 100) == 11000 && sw_bounded_cap(1.25, 10, 1, 3) == 5,
	   "bounded capacity is ceil(F × fair share)");
}

static void test_join(enum sw_algo algo, int n)
{
	struct sw_nodes a, b;
	nodes_make(&a, n, NULL);
	nodes_make(&b, n + 1, NULL);
	uint32_t *pa = place(&a, algo, SW_SHARD_VNODES_DEFAULT, 0);
	uint32_t *pb = place(&b, algo, SW_SHARD_VNODES_DEFAULT, 0);
	double ratio = (double)moved(&a, pa, &b, pb) / (NKEYS / (n + 1.0));
	ok(ratio <= 1.1, "%s: one node joining %d moves %.3f× the ideal 1/(N+1) (<= 1.1)",
	   sw_algo_name(algo), n, ratio);
	sw_nodes_free(&a);
	sw_nodes_free(&b);
}

static void test_leave(enum sw_algo algo)
{
	struct sw_nodes a, b;
	nodes_make(&a, 100, NULL);
	nodes_make(&b, 100, "node37");
	uint32_t *pa = place(&a, algo, SW_SHARD_VNODES_DEFAULT, 0);
	uint32_t *pb = place(&b, algo, SW_SHARD_VNODES_DEFAULT, 0);
	size_t wrong = 0, gone = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		bool was37 = !strcmp(a.v[pa[i]].name, "node37");
		gone += was37;
		if (!was37 && strcmp(a.v[pa[i]].name, b.v[pb[i]].name))
			wrong++;
	}
	ok(wrong == 0 && gone > 0, "%s: a leaving node moves only its own %zu keys (%zu others moved)",
	   sw_algo_name(algo), gone, wrong);
	sw_nodes_free(&a);
	sw_nodes_free(&b);
}

static void test_balance(void)
{
	struct sw_nodes ns;
	nodes_make(&ns, 100, NULL);
	static const struct { enum sw_algo algo; double limit; } b[] = {
		{SW_ALGO_RING, 1.15}, {SW_ALGO_RENDEZVOUS, 1.05}, {SW_ALGO_JUMP, 1.05},
	};
	for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
		uint32_t *p = place(&ns, b[i].algo, SW_SHARD_VNODES_DEFAULT, 0);
		double r = (double)max_count(&ns, p) / (NKEYS / 100.0);
		ok(r <= b[i].limit, "%s: max/mean %.4f over 100 nodes (<= %.2f)", sw_algo_name(b[i].algo),
		   r, b[i].limit);
	}
	/* bounded loads hold exactly, also where plain placement is far off
	 * (a 10-vnode ring) or already close (F 1.01 for the others) */
	static const struct { enum sw_algo algo; unsigned vnodes; double f; size_t cap; } c[] = {
		{SW_ALGO_RING, 10, 1.10, 11000}, {SW_ALGO_RING, SW_SHARD_VNODES_DEFAULT, 1.01, 10100},
		{SW_ALGO_RENDEZVOUS, 0, 1.01, 10100}, {SW_ALGO_JUMP, 0, 1.01, 10100},
		{SW_ALGO_MOD, 0, 1.01, 10100},
	};
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		uint32_t *p = place(&ns, c[i].algo, c[i].vnodes, c[i].f);
		size_t mx = max_count(&ns, p);
		ok(mx <= c[i].cap, "%s (vnodes %u) --max-load %.2f: max %zu <= %zu",
		   sw_algo_name(c[i].algo), c[i].vnodes, c[i].f, mx, c[i].cap);
	}
	sw_nodes_free(&ns);

	struct sw_err err;
	struct sw_nodes w = {0};
	sw_nodes_parse_list(&w, "a=1,b=2,c=3", &err);
	static const enum sw_algo wa[] = { SW_ALGO_RING, SW_ALGO_RENDEZVOUS };
	for (size_t i = 0; i < 2; i++) {
		uint32_t *p = place(&w, wa[i], SW_SHARD_VNODES_DEFAULT, 0);
		size_t cnt[3] = {0};
		for (size_t k = 0; k < NKEYS; k++)
			cnt[p[k]]++;
		double worst = 0;
		for (int j = 0; j < 3; j++) {
			double dev = (double)cnt[j] / (NKEYS * (j + 1) / 6.0) - 1;
			if (dev < 0) dev = -dev;
			if (dev > worst) worst = dev;
		}
		ok(worst <= 0.05, "%s: weights 1:2:3 get their shares within %.2f%% (<= 5%%)",
		   sw_algo_name(wa[i]), 100 * worst);
		/* bounded loads with weights: caps follow the weights */
		p = place(&w, wa[i], SW_SHARD_VNODES_DEFAULT, 1.001);
		memset(cnt, 0, sizeof cnt);
		for (size_t k = 0; k < NKEYS; k++)
			cnt[p[k]]++;
		ok(cnt[0] <= sw_bounded_cap(1.001, NKEYS, 1, 6) && cnt[1] <= sw_bounded_cap(1.001, NKEYS, 2, 6) &&
		   cnt[2] <= sw_bounded_cap(1.001, NKEYS, 3, 6),
		   "%s: weighted bounded loads keep each node under its cap", sw_algo_name(wa[i]));
	}
	sw_nodes_free(&w);
}

/* The same names listed in another order place every key the same way
 * (ring, rendezvous), and bounded placement does not depend on the order
 * keys come in. */
static void test_order(void)
{
	struct sw_nodes a = {0}, b = {0};
	struct sw_err err;
	sw_nodes_parse_list(&a, "n1,n2,n3,n4,n5", &err);
	sw_nodes_parse_list(&b, "n4,n2,n5,n1,n3", &err);
	static const enum sw_algo al[] = { SW_ALGO_RING, SW_ALGO_RENDEZVOUS };
	for (size_t i = 0; i < 2; i++) {
		uint32_t *pa = place(&a, al[i], 100, 0), *pb = place(&b, al[i], 100, 0);
		ok(moved(&a, pa, &b, pb) == 0, "%s: node order does not matter", sw_algo_name(al[i]));
		}
	struct sw_placer pl;
	sw_placer_init(&pl, &a, SW_ALGO_RING, 10, 0, SIZE_MAX, &err);
	enum { M = 10000 };
	uint64_t h[M], r[M];
	uint32_t o1[M], o2[M];
	for (size_t i = 0; i < M; i++) {
		h[i] = keys[i];
		r[i] = keys[M - 1 - i];
	}
	sw_place_all(&pl, h, M, 1.05, o1);
	sw_place_all(&pl, r, M, 1.05, o2);
	size_t diff = 0;
	for (size_t i = 0; i < M; i++)
		diff += o1[i] != o2[M - 1 - i];
	ok(diff == 0, "bounded loads: input order does not change placement");
	sw_placer_free(&pl);
	sw_nodes_free(&a);
	sw_nodes_free(&b);
}

/* Scanning the ring for a few keys answers exactly as the built ring,
 * also across the wrap-around and for weighted nodes. */
static void test_scan(void)
{
	struct sw_nodes ns = {0};
	struct sw_err err;
	sw_nodes_parse_list(&ns, "a=1,b=2.5,c=0.3,d", &err);
	struct sw_placer built, scan;
	int rc = sw_placer_init(&built, &ns, SW_ALGO_RING, 50, 0, SIZE_MAX, &err) |
		 sw_placer_init(&scan, &ns, SW_ALGO_RING, 50, 0, 1, &err);
	size_t diff = 0;
	for (size_t i = 0; i < 20000; i++)
		diff += sw_place(&built, keys[i]) != sw_place(&scan, keys[i]);
	/* past the last point: wraps to the first */
	diff += sw_place(&built, UINT64_MAX) != sw_place(&scan, UINT64_MAX);
	diff += sw_place(&built, 0) != sw_place(&scan, 0);
	ok(rc == 0 && !scan.pt && built.pt && diff == 0, "a scanned ring answers as the built one");
	uint32_t out;
	ok(sw_place_all(&scan, keys, 1, 1.5, &out) < 0, "bounded loads refuse an unbuilt ring");
	sw_placer_free(&built);
	sw_placer_free(&scan);
	/* a big ring is sorted another way: same answers */
	rc = sw_placer_init(&built, &ns, SW_ALGO_RING, 200000, 0, SIZE_MAX, &err) |
	     sw_placer_init(&scan, &ns, SW_ALGO_RING, 200000, 0, 1, &err);
	diff = 0;
	for (size_t i = 0; i < 50; i++)
		diff += sw_place(&built, keys[i]) != sw_place(&scan, keys[i]);
	diff += sw_place(&built, UINT64_MAX) != sw_place(&scan, UINT64_MAX);
	int sorted = 1;
	for (size_t i = 1; i < built.npt; i++)
		sorted &= built.pt[i - 1] <= built.pt[i];
	ok(rc == 0 && built.npt > 8 * 65536 && sorted && diff == 0,
	   "a big ring (%zu points) answers as the scan", built.npt);
	sw_placer_free(&built);
	sw_placer_free(&scan);
	sw_nodes_free(&ns);
}

int main(void)
{
	keys = malloc(NKEYS * sizeof *keys);
	if (!keys)
		return 1;
	for (size_t i = 0; i < NKEYS; i++) {
		char k[24];
		int l = snprintf(k, sizeof k, "key%zu", i);
		keys[i] = sw_xxh64(k, (size_t)l, 0);
	}
	test_hash();
	test_nodes();
	for (int n = 10; n <= 100; n += 15)
		test_join(SW_ALGO_RING, n);
	for (int n = 10; n <= 100; n += 45)
		test_join(SW_ALGO_JUMP, n);
	test_join(SW_ALGO_RENDEZVOUS, 10);
	test_join(SW_ALGO_RENDEZVOUS, 100);
	test_leave(SW_ALGO_RING);
	test_leave(SW_ALGO_RENDEZVOUS);
	test_balance();
	test_order();
	test_scan();
	cache_free();
	free(keys);
	return tap_done();
}
