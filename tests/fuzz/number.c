/* number — the small number and word parsers of outside input: fencing
 * tokens (lib/queue.h, lib/lease.h) from argv and claim file names,
 * --state lists, --algo, histogram bucket lists and the kinds registry's
 * link targets (lib/metrics.h, lib/metrics_journal.h), which are read
 * back from disk. */
#include "fuzz.h"
#include "lease.h"
#include "metrics.h"
#include "metrics_journal.h"
#include "queue.h"
#include "shard.h"
#include <errno.h>
#include <math.h>

static const char *const states[] = { "pending", "claimed", "done", "dead", "cancelled", "all", "damaged", "blocked" };

/* A decimal token a parser took must be what strtoull reads. */
static void check_token(const char *s, uint64_t v)
{
	char *end;
	errno = 0;
	unsigned long long u = strtoull(s, &end, 10);
	fz_check(*s >= '0' && *s <= '9' && !*end && !errno && u == v && v > 0);
}

static void tokens(const char *s)
{
	uint64_t v;
	size_t n = strlen(s);
	bool plain = n >= 1 && n <= 19 && strspn(s, "0123456789") == n && strspn(s, "0") < n;
	if (sw_token_parse(s, &v))
		check_token(s, v);
	else   /* every positive decimal below 10^19 is a token */
		fz_check(!plain);
	if (sw_lease_token_parse(s, &v))
		check_token(s, v), fz_check(v <= (uint64_t)INT64_MAX);
	else
		fz_check(!plain || strtoull(s, NULL, 10) > (unsigned long long)INT64_MAX);
}

static void state_list(const char *s)
{
	int mask = sw_state_mask(s);
	fz_check(mask == -1 || (mask >= 1 && mask <= (SW_ST_ALL | SW_ST_DAMAGED)));
	if (mask < 0)
		return;
	/* a list taken must hold only state names, however long it is */
	char *copy = strdup(s);
	if (!copy)
		abort();
	for (char *save, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool known = false;
		for (size_t i = 0; i < sizeof states / sizeof *states; i++)
			known |= !strcmp(t, states[i]);
		fz_check(known);
	}
	free(copy);
}

static void check_bounds(const double *b, size_t n)
{
	fz_check(n >= 1 && n <= SW_M_BUCKETS_MAX);
	for (size_t i = 0; i < n; i++)
		fz_check(isfinite(b[i]) && (i == 0 || b[i] > b[i - 1]));
}

/* A registry target written from what was parsed parses back the same. */
static void kind_round_trip(enum sw_mkind kind, const double *b, size_t nb)
{
	char t[SW_M_KIND_TARGET_MAX];
	double b2[SW_M_BUCKETS_MAX];
	size_t nb2 = 0;
	enum sw_mkind k2;
	if (!sw_m_kind_target(kind, b, nb, t))
		return;
	fz_check(sw_m_kind_parse(t, &k2, b2, &nb2) && k2 == kind && nb2 == nb);
	for (size_t i = 0; i < nb; i++)
		fz_check(b2[i] == b[i]);
}

static void buckets(const char *s)
{
	double b[SW_M_BUCKETS_MAX];
	size_t n = 0;
	if (!sw_m_bounds_parse(s, b, &n)) {
		check_bounds(b, n);
		kind_round_trip(SW_M_HISTOGRAM, b, n);
	}
	enum sw_mkind kind;
	n = 0;
	if (sw_m_kind_parse(s, &kind, b, &n)) {
		fz_check(kind == SW_M_COUNTER || kind == SW_M_GAUGE || kind == SW_M_HISTOGRAM);
		if (kind == SW_M_HISTOGRAM)
			check_bounds(b, n);
		kind_round_trip(kind, b, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_str(data, size);
	tokens(s);
	state_list(s);
	buckets(s);
	int a = sw_algo_parse(s);
	fz_check(a == -1 || !strcmp(sw_algo_name((enum sw_algo)a), s));
	free(s);
	return 0;
}
