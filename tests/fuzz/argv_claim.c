/* argv_claim — sw-claim's argument vector (see argv.h). */
#define main sw_claim_main
#include "../../src/sw-claim.c"
#undef main

static void fz_opts_init(struct opts *o)
{
	*o = (struct opts){
		.d = { .priority = SW_PRIO_DEFAULT, .max_attempts = SW_ATTEMPTS_DEFAULT,
		       .timeout_ns = SW_TIMEOUT_DEFAULT_NS },
		.retry_ns = -1, .queue = SW_QUEUE_DEFAULT,
	};
}

static void fz_opts_free(struct opts *o)
{
	json_decref(o->result);
	json_decref(o->d.after);
}

#include "argv.h"
