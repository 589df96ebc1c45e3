/* sim_opt.h — what sw-sim parses that no other program does, and its
 * random numbers.
 *
 * Rates ("5/s", "0.5/s", "30/m", "2/h", or a bare "5" per second) and
 * duration ranges ("10ms..2s", or one duration for a fixed value) follow
 * num.h's rules: decimal digits only, no exponent, no sign, a range.
 * They return 0, or -1 with errno EINVAL (not such a value) or ERANGE.
 *
 * The generator is xoshiro256** seeded through splitmix64: the same seed
 * gives the same sequence on every machine, which is what makes a fault
 * schedule repeatable (--seed).  Each kind of fault draws from a stream
 * of its own, so that changing one rate leaves the others' schedules as
 * they were. */
#ifndef SW_SIM_OPT_H
#define SW_SIM_OPT_H
#include <stdint.h>

/* The highest rate taken: a million events a second. */
#define SIM_RATE_MAX 1e6

/* "R/s", "R/m", "R/h" or "R" -> events per second, in [0, SIM_RATE_MAX]. */
int sim_parse_rate(const char *s, double *per_sec);
/* "MIN..MAX" or "DUR" -> [*lo, *hi] in ns, MIN <= MAX (EINVAL when
 * MIN > MAX). */
int sim_parse_range(const char *s, int64_t *lo, int64_t *hi);

struct sim_rng { uint64_t s[4]; };

/* Seeds rng from seed and a stream number. */
void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, 1). */
double sim_rng_unit(struct sim_rng *r);
/* Uniform in [lo, hi] (ns). */
int64_t sim_rng_between(struct sim_rng *r, int64_t lo, int64_t hi);
/* Uniform in [0, n); n > 0. */
uint32_t sim_rng_below(struct sim_rng *r, uint32_t n);
/* The gap to the next event of a Poisson process of rate per_sec, in ns
 * (INT64_MAX for a rate of 0). */
int64_t sim_rng_gap(struct sim_rng *r, double per_sec);
/* A value in [0, 1) that depends only on its inputs: a job's time and
 * outcome from the seed, the item's number and its attempt. */
double sim_unit_of(uint64_t seed, uint64_t a, uint64_t b, uint64_t which);
#endif
