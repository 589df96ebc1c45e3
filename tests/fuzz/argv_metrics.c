/* argv_metrics — sw-metrics' argument vector (see argv.h): labels,
 * --buckets, durations and formats are judged while parsing. */
#define main sw_metrics_main
#include "../../src/sw-metrics.c"
#undef main

static void fz_opts_init(struct opts *o)
{
	*o = (struct opts){ .older_ns = -1 };
}

static void fz_opts_free(struct opts *o)
{
	(void)o;
}

#include "argv.h"
