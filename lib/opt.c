#include "opt.h"
#include "clock.h"
#include "err.h"
#include <bsd/stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

bool sw_common_opt(int c, const char *arg, struct sw_common *co, const char *usage)
{
	switch (c) {
	case 'd': co->dir = arg; return true;
	case SW_OPT_SPANS: co->spans = arg ? arg : "stdout"; return true;
	case SW_OPT_QUIET: co->quiet = true; return true;
	case 'h': fputs(usage, stdout); exit(0);
	case 'V': printf("%s %s\n", sw_prog(), SW_VERSION); exit(0);
	default: return false;
	}
}

_Noreturn void sw_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sw_die(EX_USAGE, "%s (see %s --help)", msg, sw_prog());
}

long long sw_opt_num(const char *what, const char *s, long long min, long long max)
{
	const char *err;
	long long v = strtonum(s, min, max, &err);
	if (err)
		sw_usage_error("bad %s '%s': %s (want %lld to %lld)", what, s, err, min, max);
	return v;
}

int64_t sw_opt_duration(const char *what, const char *s)
{
	int64_t ns;
	if (sw_parse_duration(s, &ns) < 0)
		sw_usage_error("bad %s '%s': want a duration such as 30, 30s, 5m, 2h, 7d", what, s);
	return ns;
}

const char *sw_opt_name(const struct option *longopts, int c)
{
	for (const struct option *lo = longopts; lo->name; lo++)
		if (lo->val == c)
			return lo->name;
	return NULL;
}
