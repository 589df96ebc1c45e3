/* nodes — node lists and weights (lib/shard.h): --nodes "a,b=3", node
 * files one node a line, and rings read back from the workspace.  Small
 * lists are also placed with every algorithm: a ring scanned per key and
 * the same ring built must agree, and bounded loads must hold. */
#include "fuzz.h"
#include "id.h"
#include "shard.h"
#include <math.h>

#define VNODES 4          /* few points a node: the ring stays tiny */
#define NKEYS 40

static void check_list(const struct sw_nodes *ns)
{
	double total = 0;
	bool weighted = false;
	for (size_t i = 0; i < ns->n; i++) {
		const struct sw_node *v = &ns->v[i];
		fz_check(!sw_name_problem(v->name) && !strpbrk(v->name, " \t\r\v\f,="));
		fz_check(isfinite(v->weight) && v->weight > 0 && v->weight <= 1e6);
		total += v->weight;
		weighted |= v->weight != ns->v[0].weight;
	}
	fz_check(total == ns->total && weighted == ns->weighted);
}

static void place(const struct sw_nodes *ns, enum sw_algo algo, const uint64_t *h)
{
	char err[256];
	struct sw_placer scan, built;
	uint32_t plain[NKEYS], bounded[NKEYS];
	if (sw_placer_init(&scan, ns, algo, VNODES, 0, 1, err, sizeof err) < 0) {
		fz_check(ns->weighted && (algo == SW_ALGO_JUMP || algo == SW_ALGO_MOD));
		return;
	}
	fz_check(sw_placer_init(&built, ns, algo, VNODES, 0, SIZE_MAX, err, sizeof err) == 0);
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
	char err[512];
	struct sw_nodes text = {0}, list = {0};
	int rt = sw_nodes_parse_text(&text, (const char *)data, size, err, sizeof err);
	check_list(&text);
	if (rt == 0)
		rt = sw_nodes_check(&text, err, sizeof err);
	char *s = fz_str(data, size);
	int rl = sw_nodes_parse_list(&list, s, err, sizeof err);
	check_list(&list);
	if (rl == 0)
		rl = sw_nodes_check(&list, err, sizeof err);
	free(s);
	if (rt == 0 && rl == 0) {
		double moved = sw_nodes_ideal_moved(&text, &list);
		fz_check(moved >= 0 && moved <= 1 + 1e-9);
	}
	if (rt == 0 && text.n <= 64 && text.total * VNODES <= 1024) {
		uint64_t h[NKEYS];
		for (uint64_t k = 0; k < NKEYS; k++)
			h[k] = sw_xxh64(&k, sizeof k, 0);
		for (int a = SW_ALGO_RING; a <= SW_ALGO_MOD; a++)
			place(&text, (enum sw_algo)a, h);
	}
	sw_nodes_free(&text);
	sw_nodes_free(&list);
	return 0;
}
