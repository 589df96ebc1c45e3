/* shard.h — placing keys on nodes: a stable hash, node lists with weights,
 * and four placement algorithms (consistent-hash ring with virtual nodes,
 * rendezvous, jump, modulo), each optionally with bounded loads.
 *
 * Stable identity: every hash here is XXH64 (the published xxHash 64-bit
 * algorithm, hash.h) with a fixed seed (0 unless --seed says otherwise) followed,
 * where two values are combined, by MurmurHash3's fmix64 finalizer.  There
 * is no per-process randomness: the same node names and keys give the same
 * placement in every process, on every host, after every restart.
 *
 *   key hash      XXH64(key bytes, seed)
 *   node hash     XXH64(node name, seed)
 *   ring point j  fmix64(node hash + (j+1) × φ64), j = 0 … round(vnodes ×
 *                 weight)-1 (at least 1), φ64 = 0x9E3779B97F4A7C15; a key
 *                 belongs to the first point at or after its hash
 *                 (wrapping), equal points ordered by node name
 *   rendezvous    score = fmix64(key hash ^ node hash); the highest wins;
 *                 with weights, u = (top 53 bits of score + 0.5) / 2^53 and
 *                 the highest -weight / ln(u) wins
 *   jump          Lamping & Veach's jump consistent hash of the key hash
 *                 over the nodes in the order given
 *   mod           key hash mod number of nodes, nodes in the order given
 *
 * Bounded loads: over a set of m keys, node i takes at most
 * ceil(F × m × weight_i / total weight) keys.  Keys are placed in order of
 * their hash (so the result does not depend on input order); a key whose
 * node is full walks on: along the ring (ring), down its score ranking
 * (rendezvous), or through the probe hashes fmix64(key hash + j×φ64),
 * j = 1, 2, … (jump, mod). */
#ifndef SW_SHARD_H
#define SW_SHARD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "hash.h"

/* 2000 points per unit of weight keep max/mean near 1.06 over 100 nodes
 * (the spread is about 1/sqrt(vnodes)) for 12 bytes per point. */
#define SW_SHARD_VNODES_DEFAULT 2000
/* Upper bound on ring points (about 12 bytes each). */
#define SW_SHARD_POINTS_MAX (16u * 1024 * 1024)
#define SW_SHARD_NODES_MAX 1000000
#define SW_SHARD_WEIGHT_MAX 1e6

/* Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm". */
uint32_t sw_jump_hash(uint64_t key, uint32_t buckets);

enum sw_algo { SW_ALGO_RING, SW_ALGO_RENDEZVOUS, SW_ALGO_JUMP, SW_ALGO_MOD };
/* "ring" … -> algo; -1 when unknown. */
int sw_algo_parse(const char *s);
const char *sw_algo_name(enum sw_algo a);

struct sw_node {
	char *name;
	double weight;
};

struct sw_nodes {
	struct sw_node *v;
	size_t n, cap;
	double total;           /* sum of weights */
	bool weighted;          /* some weight differs from the others */
};

/* Node lists: 0, or 65 (bad name, bad weight, duplicate name, empty list;
 * 70 out of memory) with a one-line reason in err.  A name must pass the
 * sw name rule and hold no whitespace, ',' or '='; a weight is a decimal
 * number above 0 and at most 1e6 (num.h: no exponent, no "inf"), default 1. */
int sw_nodes_add(struct sw_nodes *ns, const char *name, size_t len, const char *weight,
		 struct sw_err *err);
/* The same with the weight as a number (a ring file's, already parsed). */
int sw_nodes_add_weight(struct sw_nodes *ns, const char *name, size_t len, double w, struct sw_err *err);
/* "a,b=3,c" */
int sw_nodes_parse_list(struct sw_nodes *ns, const char *list, struct sw_err *err);
/* One node a line: "name", "name weight" or "name=weight"; blank lines and
 * lines starting with '#' are skipped.  Errors name the line. */
int sw_nodes_parse_text(struct sw_nodes *ns, const char *text, size_t len, struct sw_err *err);
/* After parsing: refuses an empty list and duplicate names. */
int sw_nodes_check(const struct sw_nodes *ns, struct sw_err *err);
void sw_nodes_free(struct sw_nodes *ns);
/* Index of name, or -1. */
long sw_nodes_find(const struct sw_nodes *ns, const char *name);
/* The fraction of keys an ideal algorithm moves going from a to b: the
 * total variation distance between their weight shares. */
double sw_nodes_ideal_moved(const struct sw_nodes *a, const struct sw_nodes *b);

/* Going from one node list to another (sw-shard plan): a key moves when
 * its node in `to` is not the node of the same name it had in `from`. */
struct sw_plan {
	uint32_t *same;         /* from's node i -> its index in `to`, or UINT32_MAX */
};
/* 0, or 70 (out of memory) with err. */
int sw_plan_init(struct sw_plan *p, const struct sw_nodes *from, const struct sw_nodes *to,
		 struct sw_err *err);
static inline bool sw_plan_moves(const struct sw_plan *p, uint32_t from_node, uint32_t to_node)
{
	return p->same[from_node] != to_node;
}
void sw_plan_free(struct sw_plan *p);

struct sw_placer {
	enum sw_algo algo;
	uint64_t seed;
	const struct sw_nodes *nodes;
	uint64_t *nhash;        /* node hashes */
	uint32_t *rank;         /* node index -> rank by name (tie breaks) */
	uint32_t *byrank;       /* rank -> node index */
	uint32_t *nv;           /* ring: points of each node */
	/* ring */
	uint64_t *pt;           /* sorted point hashes */
	uint32_t *pnode;        /* node of each point */
	size_t npt;
	uint32_t *tab;          /* 2^tab_bits + 1 entries: first point per top bits */
	unsigned tab_bits;      /* 8 to 16: about one bucket per point */
};

/* Up to this many plain lookups scan the ring instead of building it. */
#define SW_SHARD_SCAN_MAX 8

/* 0, or 64 (weights with jump or mod, vnodes 0, too many ring points),
 * 65 (an empty list) or 70 (out of memory) with a reason in err.  nkeys: how many
 * plain lookups will follow (SIZE_MAX when unknown or for bounded loads);
 * a ring for a handful is scanned per key rather than built and sorted,
 * with the same answers. */
int sw_placer_init(struct sw_placer *pl, const struct sw_nodes *ns, enum sw_algo algo,
		   unsigned vnodes, uint64_t seed, size_t nkeys, struct sw_err *err);
void sw_placer_free(struct sw_placer *pl);

static inline uint64_t sw_key_hash(const struct sw_placer *pl, const void *key, size_t len)
{
	return sw_xxh64(key, len, pl->seed);
}
/* The node index for a key hash. */
uint32_t sw_place(const struct sw_placer *pl, uint64_t h);
/* Places m key hashes into out[]: plainly when factor is 0, else with
 * bounded loads (factor >= 1).  0, or -1 with errno ENOMEM. */
int sw_place_all(const struct sw_placer *pl, const uint64_t *h, size_t m, double factor,
		 uint32_t *out);
/* ceil(factor × m × w / total), robust to rounding (1.1 × 10000 is 11000). */
uint64_t sw_bounded_cap(double factor, size_t m, double w, double total);
#endif
