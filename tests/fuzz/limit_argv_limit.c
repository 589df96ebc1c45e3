/* limit_argv_limit — sw-limit's argument vector (see argv.h). */
#define main sw_limit_main
#include "../../src/sw-limit.c"
#undef main

static void fz_opts_init(struct opts *o)
{
	*o = (struct opts){ .conflict = EX_TEMPFAIL, .grace_ns = GRACE_DEFAULT_NS, .owner = "fuzz:1" };
}

static void fz_opts_free(struct opts *o)
{
	(void)o;
}

#include "argv.h"
