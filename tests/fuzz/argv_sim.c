/* argv_sim — sw-sim's argument vector (see argv.h): rates, ranges,
 * durations and the options that exclude or need each other are judged
 * while parsing; several -d are gathered by a second pass of getopt. */
#define main sw_sim_main
#include "../../src/sw-sim.c"
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
