/* limit_rate — rates as sw-limit --rate takes them (lib/limit.h
 * sw_rate_parse), and the spec checks on top: a rate taken is N/unit with
 * N from 1 to one a microsecond, and it formats back to itself; a spec
 * taken never lets the GCRA arithmetic overflow.
 *
 * The input is the --rate string, then after a NUL the --burst and -n
 * values (8 bytes each, little-endian), when given. */
#include "fuzz.h"
#include "clock.h"
#include "limit.h"

static uint64_t le64(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_str(data, size);
	struct sw_rate r;
	const char *why = NULL;
	if (sw_rate_parse(s, &r, &why) == 0) {
		fz_check(r.n >= 1 && r.period_ns >= SW_NS_PER_SEC && r.period_ns <= 86400 * SW_NS_PER_SEC);
		fz_check(r.n <= (uint64_t)(r.period_ns / 1000));
		char out[SW_RATE_LEN];
		struct sw_rate back;
		sw_rate_format(&r, out);
		fz_check(sw_rate_parse(out, &back, &why) == 0 && back.n == r.n && back.period_ns == r.period_ns);
		size_t n = strlen(s) + 1;
		struct sw_limit_spec spec = { .kind = SW_LIMIT_BUCKET, .rate = r,
			.burst = n < size ? le64(data + n, size - n) : 1 };
		uint64_t count = n + 8 < size ? le64(data + n + 8, size - n - 8) : 1;
		if (!sw_limit_spec_problem(&spec, count))
			fz_check(spec.burst >= 1 && spec.burst <= SW_LIMIT_BURST_MAX && count >= 1 && count <= spec.burst);
	} else {
		fz_check(why && *why);
	}
	free(s);
	return 0;
}
