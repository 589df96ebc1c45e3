/* hold.h — run a command's whole process tree while holding a grant that
 * must be renewed (a lease, a concurrency slot, a circuit breaker's
 * probe): the guardian and the tree of proc.h,
 * a renewal every TTL/3, and the tree stopped before the grant can
 * expire when renewals keep failing or the grant is lost — SIGKILLed at
 * once when this process finds it has already expired (it was stopped or
 * stalled: another holder may be running).  A grant with no TTL is not
 * renewed and never lost: the tree is still run, signalled, timed and
 * waited for as a whole.
 *
 * renew and look run in a thread of their own, one call at a time, so
 * that a hung filesystem holds up neither the signals nor the kill of
 * the tree: they may run beside again, and must share no state with it
 * that either writes.
 *
 * sw-lease run, sw-limit run and sw-breaker run use it; sw-lease adds
 * the runs after the first (--keep-running, --until-success: the grant
 * held between them) and takeovers (a look for a request every second,
 * and a grant given up once the tree is gone). */
#ifndef SW_HOLD_H
#define SW_HOLD_H
#include "err.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* From renew: the grant needs no holding any more (the command goes on,
 * unrenewed and never lost). */
#define SW_HOLD_DONE (-3)
/* From renew (the grant renewed, *expires_ns set) or look: another asks
 * for the grant (a takeover).  The tree is stopped as for SIGTERM,
 * SIGKILLed after the grace (at most a TTL), and no run follows; err
 * says who asks. */
#define SW_HOLD_YIELD (-4)

struct sw_hold {
	char **cmd;             /* the command and its arguments */
	const char *const *env; /* name, value, name, value…, NULL: set for the command */
	mode_t umask;           /* the command's (sw_ws_user_umask) */
	int64_t grace_ns;       /* SIGTERM to SIGKILL */
	int64_t timeout_ns;     /* 0: none; else the tree is stopped after it */
	/* the grant: ttl_ns 0 when there is none */
	int64_t ttl_ns;
	int64_t expires_ns;     /* by this host's clock */
	const char *what;       /* "slot 2 of limit 'x'": for messages */
	/* Renews the grant for ttl_ns: 0 with *expires_ns set; SW_EX_FALSE
	 * when it is lost; SW_HOLD_DONE; anything else a failure that may
	 * pass (retried until the tree must stop).  err says why. */
	int (*renew)(void *arg, int64_t ttl_ns, int64_t *expires_ns, struct sw_err *err);
	void *arg;
	/* No guardian: this process is the subreaper and signals reach it
	 * directly, a fork cheaper; a SIGKILL of it then leaves the command
	 * running.  Only for a run that holds no grant. */
	bool no_guardian;
	/* Looks whether another asks for the grant (a read, no write), at
	 * once and then every second (at most every TTL/3) between
	 * renewals: SW_HOLD_YIELD, else 0.  NULL: never. */
	int (*look)(void *arg, struct sw_err *err);
	/* After a run that ended by itself (not stopped, lost or asked
	 * for): how long until the command is started again, the grant
	 * held and renewed meanwhile and no signal passed on; -1: no more
	 * runs.  NULL: one run. */
	int64_t (*again)(void *arg, int status);
	bool quiet;             /* no word of a takeover on stderr */
};

struct sw_hold_result {
	int status;             /* as a shell has it: the exit code, 128 + a signal */
	bool lost;              /* the grant was lost and the tree stopped */
	bool held_late;         /* lost only because a renewal came too late for the
				 * guardian's deadline, yet succeeded: the grant is
				 * still held, to be given back (the tree is gone) */
	bool timed_out;         /* the timeout stopped the tree */
	int spawn_errno;        /* not 0: the command did not start (status 127 or 126) */
	bool yielded;           /* asked for: the tree was stopped to give the grant up */
	int64_t runs;           /* how many times the command was started */
	struct sw_err wait_err; /* code not 0: waiting on the tree failed (cannot
				 * happen), the runs given up; status is not known */
};

/* Starts the guardian (this process returns as its worker; see
 * no_guardian), runs the command (again while h->again says so), and
 * returns when nothing of its tree is left: 0 with res (a SIGTERM or
 * SIGINT between two runs: status 128 + it), or -1 with errno when the
 * guardian could not be started (then nothing ran).  Signals stay
 * blocked after it returns, so that one that comes late cannot kill the
 * caller before it has given the grant back. */
int sw_hold_run(struct sw_hold *h, struct sw_hold_result *res);
#endif
