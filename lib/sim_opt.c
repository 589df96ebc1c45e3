#include "sim_opt.h"
#include "clock.h"
#include "hash.h"
#include "num.h"
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

static int fail(int e)
{
	errno = e;
	return -1;
}

int sim_parse_rate(const char *s, double *per_sec)
{
	if (!s)
		return fail(EINVAL);
	char num[72];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof num)
		return fail(EINVAL);
	memcpy(num, s, n);
	num[n] = 0;
	double per = 1;
	if (slash) {
		if (!strcmp(slash + 1, "s")) per = 1;
		else if (!strcmp(slash + 1, "m")) per = 60;
		else if (!strcmp(slash + 1, "h")) per = 3600;
		else return fail(EINVAL);
	}
	double v;
	/* sw_parse_real keeps num.h's rules; its range check is the
	 * per-second one after the unit is applied */
	if (sw_parse_real(num, 0, SIM_RATE_MAX * per, &v) < 0)
		return -1;
	*per_sec = v / per;
	return 0;
}

int sim_parse_range(const char *s, int64_t *lo, int64_t *hi)
{
	if (!s)
		return fail(EINVAL);
	const char *dots = strstr(s, "..");
	if (!dots) {
		if (sw_parse_duration(s, lo) < 0)
			return fail(EINVAL);
		*hi = *lo;
		return 0;
	}
	char a[72];
	size_t n = (size_t)(dots - s);
	if (n == 0 || n >= sizeof a)
		return fail(EINVAL);
	memcpy(a, s, n);
	a[n] = 0;
	int64_t x, y;
	if (sw_parse_duration(a, &x) < 0 || sw_parse_duration(dots + 2, &y) < 0)
		return fail(EINVAL);
	if (x > y)
		return fail(EINVAL);
	*lo = x;
	*hi = y;
	return 0;
}

/* ---- the generator ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

int64_t sim_rng_between(struct sim_rng *r, int64_t lo, int64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (int64_t)(sim_rng_unit(r) * (double)(hi - lo));
}

uint32_t sim_rng_below(struct sim_rng *r, uint32_t n)
{
	return (uint32_t)(((sim_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

int64_t sim_rng_gap(struct sim_rng *r, double per_sec)
{
	if (!(per_sec > 0))
		return INT64_MAX;
	/* 1 - u is in (0, 1]: the log is finite */
	double secs = -log(1.0 - sim_rng_unit(r)) / per_sec;
	double ns = secs * 1e9;
	return ns >= (double)SW_DURATION_MAX_NS ? SW_DURATION_MAX_NS : (int64_t)ns;
}

double sim_unit_of(uint64_t seed, uint64_t a, uint64_t b, uint64_t which)
{
	uint64_t in[3] = { a, b, which };
	return (double)(sw_xxh64(in, sizeof in, seed) >> 11) * 0x1.0p-53;
}
