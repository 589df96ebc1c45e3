#include "opt.h"
#include "err.h"
#include <stdarg.h>
#include <stdio.h>

_Noreturn void sw_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sw_die(EX_USAGE, "%s (see %s --help)", msg, sw_prog());
}

const char *sw_opt_name(const struct option *longopts, int c)
{
	for (const struct option *lo = longopts; lo->name; lo++)
		if (lo->val == c)
			return lo->name;
	return NULL;
}
