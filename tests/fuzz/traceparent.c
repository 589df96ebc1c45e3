/* traceparent — the W3C TRACEPARENT every program reads from its
 * environment (lib/span.h). */
#include "fuzz.h"
#include "span.h"

static bool lower_hex(const char *s, size_t n)
{
	return strspn(s, "0123456789abcdef") >= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_str(data, size);
	char trace[33], parent[17];
	if (sw_traceparent_parse(s, trace, parent)) {
		size_t n = strlen(s);
		fz_check(n >= 55 && s[2] == '-' && s[35] == '-' && s[52] == '-');
		fz_check(lower_hex(s, 2) && strncmp(s, "ff", 2) && lower_hex(s + 53, 2));
		fz_check(strncmp(s, "00", 2) || n == 55);   /* version 00 has no more fields */
		fz_check(strlen(trace) == 32 && !memcmp(trace, s + 3, 32) && lower_hex(trace, 32));
		fz_check(strlen(parent) == 16 && !memcmp(parent, s + 36, 16) && lower_hex(parent, 16));
		fz_check(strspn(trace, "0") < 32 && strspn(parent, "0") < 16);
	}
	free(s);
	return 0;
}
