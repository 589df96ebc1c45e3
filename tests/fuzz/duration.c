/* duration — durations and timestamps (lib/clock.h): option values such
 * as --ttl 5m, SW_CLOCK_OFFSET, SW_CLOCK_SKEW, and RFC 3339 times read
 * back from items and lease versions. */
#include "fuzz.h"
#include "clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_str(data, size);
	int64_t ns = -1, sns = -1, t;
	int r = sw_parse_duration(s, &ns);
	if (r == 0)
		fz_check(ns >= 0 && ns <= SW_DURATION_MAX_NS);
	int rs = sw_parse_duration_signed(s, &sns);
	if (rs == 0)
		fz_check(sns >= -SW_DURATION_MAX_NS && sns <= SW_DURATION_MAX_NS);
	if (r == 0)   /* the signed form takes every unsigned one, unchanged */
		fz_check(rs == 0 && sns == ns);
	if (sw_parse_time(s, &t) == 0 && t >= 0) {
		/* what sw_fmt_time writes reads back, to the millisecond */
		char buf[SW_TIME_LEN];
		int64_t t2 = -1;
		sw_fmt_time(t, buf);
		fz_check(sw_parse_time(buf, &t2) == 0 && t2 == t - t % 1000000);
	}
	free(s);
	return 0;
}
