/* opt.h — option conventions every sw program shares.
 * -d/--dir DIR, --spans[=DEST], --quiet, -h/--help, -V/--version.
 * Numbers and durations that fail to parse are usage errors (64). */
#ifndef SW_OPT_H
#define SW_OPT_H
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#define SW_VERSION "0.1.0"

enum { SW_OPT_SPANS = 0x1000, SW_OPT_QUIET, SW_OPT_FIRST_FREE = 0x1100 };

struct sw_common {
	const char *dir;
	const char *spans;      /* NULL: SW_SPANS decides */
	bool quiet;
};

#define SW_COMMON_LONGOPTS \
	{"dir", required_argument, 0, 'd'}, \
	{"spans", optional_argument, 0, SW_OPT_SPANS}, \
	{"quiet", no_argument, 0, SW_OPT_QUIET}, \
	{"help", no_argument, 0, 'h'}, \
	{"version", no_argument, 0, 'V'}
#define SW_COMMON_SHORTOPTS "d:hV"

/* Handles a common option; returns false when c is not one.  -h prints
 * usage and exits 0; -V prints the version and exits 0. */
bool sw_common_opt(int c, const char *arg, struct sw_common *co, const char *usage);
/* Reports a getopt '?' or a stray argument: one line, exit 64. */
_Noreturn void sw_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Integer in [min,max] or exit 64 naming what. */
long long sw_opt_num(const char *what, const char *s, long long min, long long max);
/* The long name of the option whose val is c in longopts, or NULL: for
 * errors about an option given to a verb it does not belong to. */
const char *sw_opt_name(const struct option *longopts, int c);
/* Duration (see clock.h) or exit 64 naming what. */
int64_t sw_opt_duration(const char *what, const char *s);
#endif
