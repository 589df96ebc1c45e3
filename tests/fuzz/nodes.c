/* nodes — node lists and weights (lib/shard.h): --nodes "a,b=3" and node
 * files one node a line; the input is read both ways.  (place.c puts
 * small lists to work.) */
#include "fuzz.h"
#include "id.h"
#include "shard.h"
#include <math.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_err err;
	struct sw_nodes text = {0}, list = {0};
	int rt = sw_nodes_parse_text(&text, (const char *)data, size, &err);
	check_list(&text);
	if (rt == 0)
		rt = sw_nodes_check(&text, &err);
	char *s = fz_str(data, size);
	int rl = sw_nodes_parse_list(&list, s, &err);
	check_list(&list);
	if (rl == 0)
		rl = sw_nodes_check(&list, &err);
	free(s);
	if (rt == 0 && rl == 0) {
		double moved = sw_nodes_ideal_moved(&text, &list);
		fz_check(moved >= 0 && moved <= 1 + 1e-9);
	}
	sw_nodes_free(&text);
	sw_nodes_free(&list);
	return 0;
}
