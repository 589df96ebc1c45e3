/* opt.h — option conventions every sw program shares.
 * -d/--dir DIR, --spans[=DEST], --quiet, -h/--help, -V/--version.
 * Their values are parsed by lib/cmd.h (sw_cmd_int, sw_cmd_duration...). */
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

/* The long name of the option whose val is c in longopts, or NULL: for
 * errors about an option given to a verb it does not belong to. */
const char *sw_opt_name(const struct option *longopts, int c);
#endif
