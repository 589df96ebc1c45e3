/* limit_tlist — the lists of event times that sliding windows and
 * breakers keep in their versions (lib/tlist.h), as read from the
 * workspace: a list taken has times that never go back, counts of at
 * least 1, at most max entries and events, and formats back to the very
 * same string; dropping and keeping the last never break that. */
#include "fuzz.h"
#include "tlist.h"

#define MAX 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly the bytes, no NUL after them: a version's JSON string */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	if (size)
		memcpy(buf, data, size);
	struct sw_tlist l;
	if (sw_tlist_parse(buf, size, MAX, &l) == 0) {
		uint64_t total = 0;
		for (size_t i = 0; i < l.n; i++) {
			fz_check(l.c[i] >= 1 && l.t[i] >= 0 && (i == 0 || l.t[i] > l.t[i - 1]));
			total += l.c[i];
		}
		fz_check(total == l.total && l.total <= MAX && l.n <= MAX);
		char *f = sw_tlist_format(&l);
		fz_check(f && strlen(f) == size && !memcmp(f, buf, size));
		free(f);
		if (l.n) {
			sw_tlist_keep_last(&l, l.total / 2);
			fz_check(l.total == total / 2 || (total / 2 == 0 && l.total == 0));
			sw_tlist_drop_until(&l, l.n ? l.t[l.n / 2] : 0);
			uint64_t t2 = 0;
			for (size_t i = 0; i < l.n; i++)
				t2 += l.c[i];
			fz_check(t2 == l.total);
		}
	}
	sw_tlist_free(&l);
	free(buf);
	return 0;
}
