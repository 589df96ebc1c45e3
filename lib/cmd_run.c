/* cmd_run.c — the part of the command skeleton the run verbs share
 * (sw-lease, sw-limit and sw-breaker run): the command's environment and
 * lib/hold.  Apart from cmd.c so that a program without a run verb does
 * not link the guardian and the process tree in. */
#include "cmd.h"
#include "err.h"
#include "hold.h"
#include "span.h"
#include "ws.h"
#include <errno.h>

#define ENV_PAIRS 8

int sw_cmd_hold(struct sw_cmd *c, struct sw_hold *h, const char *const *env, struct sw_hold_result *res)
{
	char tp[SW_TRACEPARENT_LEN];
	const char *all[2 * (ENV_PAIRS + 2) + 1];
	size_t n = 0;
	for (; env && env[n] && n < 2 * ENV_PAIRS; n += 2) {
		all[n] = env[n];
		all[n + 1] = env[n + 1];
	}
	if (env && env[n]) {
		errno = E2BIG;     /* a program's table outgrew ENV_PAIRS */
		return -1;
	}
	sw_span_child_env(&c->sp, tp);
	all[n++] = "TRACEPARENT";
	all[n++] = tp;
	all[n++] = "SW_DIR";
	all[n++] = c->ws.path;
	all[n] = NULL;
	h->cmd = c->command;
	h->env = all;
	h->umask = sw_ws_user_umask(&c->ws);
	h->quiet = c->co.quiet;
	int rc = sw_hold_run(h, res);
	h->env = NULL;     /* all is gone with this frame */
	if (rc == 0 && res->wait_err.code)
		sw_die(res->wait_err.code, "%s", res->wait_err.msg);
	if (rc == 0)
		sw_span_int(&c->sp, "process.exit.code", res->status);
	return rc;
}
