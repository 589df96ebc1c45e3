/* agent_run.h — the engine of `sw-agent run`: the claim -> exec -> renew
 * -> done/fail loop that turns any command into a queue consumer without
 * a master (see sw-agent(1) for what users see of it).
 *
 * One call does the whole run: it registers the agent (lib/agent.c),
 * forks the guardian (lib/proc.h), claims items (lib/queue.h; --affinity
 * through lib/affinity.h, waiting through lib/waiter.h), runs the command
 * for each item or batch in job slots with the payload on its stdin,
 * renews the claims until the command and every process it started are
 * gone, tells the queue the outcomes (those finishing together in one
 * commit), prints one JSON line per item on stdout, and deregisters.
 * Signals: the first SIGTERM/SIGINT drains (grace), a second releases
 * the items, a third SIGKILLs the trees. */
#ifndef SW_AGENT_RUN_H
#define SW_AGENT_RUN_H
#include "err.h"
#include "span.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What `sw-agent run` was asked; the options of the same names. */
struct sw_agent_run_opts {
	const char *queue;
	const char *id;           /* NULL: hostname-8hex */
	char **roles;             /* claims only these (nroles 0: any), and records them */
	size_t nroles;
	json_t *labels;           /* the record's "labels" (NULL: none); not taken */
	int64_t ttl_ns;           /* the claim lease; 0: the item's timeout */
	int64_t hb_ttl_ns;        /* the record's heartbeat ttl; 0: the default */
	bool quiet;               /* no result lines, no status line, no answer said */
	bool tag;                 /* the item id before each stderr line */
	const char *log_dir;      /* one log per item attempt there, or NULL */
	const char *joblog;       /* GNU parallel's joblog ("+FILE": appended to), or NULL */
	int jobs;                 /* slots, at least 1 */
	long long max_items;      /* 0: no limit */
	int64_t idle_ns;          /* -1: never */
	bool once;
	size_t batch;             /* items per command; 0: one, on its own */
	int64_t batch_wait_ns;
	bool affinity;
	int64_t steal_after_ns;
	int64_t grace_ns;
	int64_t poll_ns;          /* 0: sw_poll_interval */
	char **args;              /* the command and its arguments, NULL-ended */
	int nargs;                /* at least 1 */
};

/* Runs the agent over the workspace ws (open), with the run's span sp
 * (started; gets the agent's attributes and counts).  The exit status of
 * the run: 0, --once's command status (75: nothing claimed, said unless
 * quiet), EX_UNAVAILABLE when the command cannot be started, 128+N when
 * stopped by a second signal N.  Or, when the run cannot start or must
 * stop at once (out of memory, a poll that fails), the code of e with its
 * line: the caller says it and exits; the agent's record is left in
 * place then, so that reap frees its claims, and the guardian kills the
 * commands' trees when this process exits.
 *
 * Once the checks before it pass (the logs' places, the queue), it forks
 * and returns only in the worker: the process that called it becomes the
 * guardian, which exits with the worker's status. */
int sw_agent_run(const struct sw_agent_run_opts *o, struct sw_ws *ws, struct sw_span *sp, struct sw_err *e);
#endif
