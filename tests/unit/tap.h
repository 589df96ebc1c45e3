/* tap.h — the one TAP harness every libsw unit test shares: ok() prints
 * a numbered result line, tap_done() prints the plan and gives the exit
 * status.  Each test program is one translation unit, so the counters
 * live here as statics. */
#ifndef SW_TAP_H
#define SW_TAP_H
#include <stdarg.h>
#include <stdio.h>

static int tap_tests, tap_failures;

__attribute__((format(printf, 2, 3), unused))
static void ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", cond ? "" : "not ", ++tap_tests);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	if (!cond)
		tap_failures++;
}

/* The plan goes last: the count is known only after the tests ran. */
__attribute__((unused))
static int tap_done(void)
{
	printf("1..%d\n", tap_tests);
	return tap_failures != 0;
}
#endif
