/* place — node lists put to work (lib/shard.h): a node file (one node a
 * line, with weights) small enough for a tiny ring is placed with one
 * algorithm, picked by the input's hash.  A ring scanned per key and the
 * same ring built must agree, and bounded loads must keep every node
 * within its cap.  Apart from the parser (nodes.c) because the placers'
 * fixed 64 Ki-entry tables cost milliseconds an input under ASan. */
#include "fuzz.h"
#include "shard.h"

#define VNODES 4          /* few points a node: the ring stays tiny */
#define NKEYS 40

static void place(const struct sw_nodes *ns, enum sw_algo algo, const uint64_t *h)
{
	struct sw_err err;
	struct sw_placer scan, built;
	uint32_t plain[NKEYS], bounded[NKEYS];
	if (sw_placer_init(&scan, ns, algo, VNODES, 0, 1, &err) != 0) {
		fz_check(ns->weighted && (algo == SW_ALGO_JUMP || algo == SW_ALGO_MOD));
		return;
	}
	fz_check(sw_placer_init(&built, ns, algo, VNODES, 0, SIZE_MAX, &err) == 0);
	fz_check(sw_place_all(&built, h, NKEYS, 0, plain) == 0);
	for (size_t k = 0; k < NKEYS; k++) {
		uint32_t node = sw_place(&scan, h[k]);
		fz_check(node < ns->n && node == plain[k]);
	}
	fz_check(sw_place_all(&built, h, NKEYS, 1.25, bounded) == 0);
	uint64_t load[64] = {0};
	for (size_t k = 0; k < NKEYS; k++)
		fz_check(bounded[k] < ns->n), load[bounded[k]]++;
	for (size_t i = 0; i < ns->n; i++)
		fz_check(load[i] <= sw_bounded_cap(1.25, NKEYS, ns->v[i].weight, ns->total));
	sw_placer_free(&scan);
	sw_placer_free(&built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_err err;
	struct sw_nodes ns = {0};
	if (sw_nodes_parse_text(&ns, (const char *)data, size, &err) == 0 &&
	    sw_nodes_check(&ns, &err) == 0 && ns.n <= 64 && ns.total * VNODES <= 1024) {
		uint64_t h[NKEYS];
		for (uint64_t k = 0; k < NKEYS; k++)
			h[k] = sw_xxh64(&k, sizeof k, 0);
		/* one algorithm an input, by its hash: each costs milliseconds */
		place(&ns, (enum sw_algo)(sw_xxh64(data, size, 0) % 4), h);
	}
	sw_nodes_free(&ns);
	return 0;
}
