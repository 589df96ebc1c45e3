/* limit_version — version files of limits and breakers as read from the
 * workspace (limits/<name>/bucket/v.<seq>, window/v.<seq>,
 * breakers/<name>/v.<seq>): any bytes are refused or taken with every
 * number in the range the arithmetic on it needs.
 *
 * The first byte picks the kind (its low two bits) and the seq the file
 * name says (the next two bits), so that a seq that differs from the one
 * inside is tried too. */
#include "fuzz.h"
#include "breaker.h"
#include "clock.h"
#include "limit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int kind = data[0] & 3;
	uint64_t seq = (data[0] >> 2) & 3;   /* 0 is never a version: always refused */
	char *buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	if (kind == 0) {
		struct sw_limit_bucket_ver b;
		if (sw_limit_bucket_parse(buf, size - 1, seq, &b) == 0)
			fz_check(seq > 0 && b.burst >= 1 && b.burst <= SW_LIMIT_BURST_MAX && b.rate.n >= 1 &&
				 b.tat_ns >= 0 && b.tat_ns <= SW_TIME_MAX_NS);
	} else if (kind == 1) {
		int64_t w;
		uint64_t max, granted, in;
		if (sw_limit_window_parse(buf, size - 1, seq, &w, &max, &granted, &in) == 0)
			fz_check(seq > 0 && w >= 1000000 && w <= SW_DURATION_MAX_NS && max >= 1 &&
				 max <= SW_LIMIT_WINDOW_MAX && in <= SW_LIMIT_WINDOW_MAX);
	} else {
		struct sw_breaker_ver v;
		if (sw_breaker_parse(buf, size - 1, seq, &v) == 0) {
			fz_check(seq > 0 && v.open_until_ns >= 0 && v.open_until_ns <= SW_TIME_MAX_NS);
			fz_check(v.cooldown_ns >= 0 && v.cooldown_ns <= SW_DURATION_MAX_NS);
			fz_check(v.nprobes <= SW_BREAKER_PROBES_MAX);
			for (unsigned i = 0; i < v.nprobes; i++)
				fz_check(v.probes[i].slot >= 1 && v.probes[i].slot <= SW_BREAKER_PROBES_MAX &&
					 v.probes[i].token >= 1 && v.probes[i].token <= v.probe_token);
		}
		sw_breaker_ver_free(&v);
	}
	free(buf);
	return 0;
}
