/* limit_argv_breaker — sw-breaker's argument vector (see argv.h). */
#define main sw_breaker_main
#include "../../src/sw-breaker.c"
#undef main

static void fz_opts_init(struct opts *o)
{
	opts_init(o);
}

static void fz_opts_free(struct opts *o)
{
	(void)o;
}

#include "argv.h"
