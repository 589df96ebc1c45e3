/* argv_agent — sw-agent's argument vector (see argv.h). */
#define main sw_agent_main
#include "../../src/sw-agent.c"
#undef main

static void fz_opts_init(struct opts *o)
{
	*o = (struct opts){ .run = { .jobs = 1, .idle_ns = -1, .grace_ns = 30 * SW_NS_PER_SEC,
				     .queue = SW_QUEUE_DEFAULT } };
	o->run.roles = o->roles;
}

static void fz_opts_free(struct opts *o)
{
	json_decref(o->run.labels);
}

#include "argv.h"
