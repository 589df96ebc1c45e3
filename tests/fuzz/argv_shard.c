/* argv_shard — sw-shard's argument vector (see argv.h): node sources,
 * placement settings and counts are judged while parsing. */
#define main sw_shard_main
#include "../../src/sw-shard.c"
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
