/* ring — ring files rings/<name>.json as read from the workspace
 * (lib/ring.h): the input is written as rings/fz.json in a scratch
 * workspace (scratch.h) and read the ways sw-shard reads a ring another
 * user or host wrote: `ring fz` shows it (sw_ring_read), @ring:fz takes
 * its nodes and settings (sw_nodes_load), and the settings taken go to
 * the placer.  Anything is refused with a one-line reason or taken with
 * nodes and settings a placement can use. */
#include "scratch.h"
#include "id.h"
#include "ring.h"
#include <math.h>

#define VNODES_CHEAP 1024   /* ring points beyond which placing costs too much an input */

static bool one_line(const char *err)
{
	return err[0] && !strchr(err, '\n');
}

/* The settings a ring gave, placed with: a few keys land on real nodes
 * (or the settings are refused, as a --algo on the command line would be). */
static void place(const struct sw_nodes *ns, const struct sw_ring_cfg *cfg)
{
	struct sw_err err = {0};
	struct sw_placer pl;
	fz_check(cfg->algo_set && cfg->vnodes_set && cfg->seed_set);
	fz_check(cfg->vnodes >= 1 && cfg->vnodes <= 1000000);
	if ((cfg->algo == SW_ALGO_RING ? ns->total * cfg->vnodes : ns->total) > VNODES_CHEAP)
		return;
	if (sw_placer_init(&pl, ns, cfg->algo, cfg->vnodes, cfg->seed, 1, &err) != 0) {
		fz_check(one_line(err.msg));
		return;
	}
	for (uint64_t k = 0; k < 8; k++)
		fz_check(sw_place(&pl, sw_key_hash(&pl, &k, sizeof k)) < ns->n);
	sw_placer_free(&pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_err err = {0};
	scratch_open("ring", SW_RING_DIR);
	scratch_put(data, size);
	json_t *r;
	int code = sw_ring_read(&ws, "fz", &r, &err);
	fz_check(code == 0 ? r != NULL : r == NULL && (code == 65 || code == 74) && one_line(err.msg));
	json_decref(r);

	struct sw_nodes ns = {0};
	struct sw_ring_cfg cfg = { .algo = SW_ALGO_RING, .vnodes = SW_SHARD_VNODES_DEFAULT };
	err.msg[0] = 0;
	code = sw_nodes_load(&ns, "--nodes", "@ring:fz", &ws, &cfg, &err);
	if (code == 0) {
		fz_check(ns.n >= 1);
		for (size_t i = 0; i < ns.n; i++)
			fz_check(!sw_name_problem(ns.v[i].name) && isfinite(ns.v[i].weight) &&
				 ns.v[i].weight > 0);
		place(&ns, &cfg);
	} else {
		fz_check((code == 64 || code == 65 || code == 74) && one_line(err.msg));
	}
	sw_nodes_free(&ns);
	return 0;
}
