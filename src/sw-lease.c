/* sw-lease — named leases with a TTL and fencing tokens for shell scripts:
 * acquire, renew, release, check, and `run` a command under a lease (a
 * cron singleton across hosts).  See sw-lease(1); the leases themselves
 * are lib/lease.c. */
#include "clock.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "lease.h"
#include "cmd.h"
#include "opt.h"
#include "proc.h"
#include "span.h"
#include "ws.h"
#include <bsd/stdlib.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char usage[] =
"usage: sw-lease VERB [options] [args]\n"
"\n"
"  acquire NAME [--ttl DUR] [--owner ID] [--wait[=DUR]]\n"
"                       take the lease if free or expired (75: held by another)\n"
"  renew NAME --token T [--ttl DUR]      extend it (1: lost or expired)\n"
"  release NAME --token T                give it back (1: not the holder)\n"
"  check NAME --token T                  0 if T holds NAME now, else 1\n"
"  show NAME            the lease's state (1: no such lease)\n"
"  list                 every lease, one line each\n"
"  run NAME [--ttl DUR] [--owner ID] [--wait[=DUR]] [-E CODE] [-g DUR]\n"
"      [--takeover] [--until-success | --keep-running] [--] COMMAND [ARG...]\n"
"                       run COMMAND holding the lease, renewing it every TTL/3,\n"
"                       until it and every process it started have exited;\n"
"                       exit with its status, or 75 (-E CODE) when busy, 75 when lost\n"
"                       or taken over\n"
"\n"
"options:\n"
"  --ttl DUR            lease lifetime (default 30s; renew: the lease's own)\n"
"  --owner ID           who holds it, for show and list (default $SW_OWNER, else\n"
"                       HOST:PID of the caller, for run HOST:PID of run itself)\n"
"  --wait[=DUR]         wait for the lease, at most DUR (default forever; 0: one try)\n"
"  --token T            the fencing token acquire printed\n"
"  -E, --conflict-exit-code CODE   run: exit status when busy (default 75)\n"
"  -g, --grace DUR      run: SIGTERM to SIGKILL of the command's processes when\n"
"                       the lease is lost or run is told to stop (default 5s)\n"
"  --takeover           run: when busy, ask the holder's run to stop its command\n"
"                       and give the lease up; wait for it (--wait DUR, else\n"
"                       at most twice its TTL plus the skew margin)\n"
"  --until-success      run: start COMMAND again, holding the lease, until it exits 0\n"
"  --keep-running       run: start COMMAND again whenever it exits, holding the lease\n"
"                       (after 1s, or after a failure 2s, 4s ... 60s; SW_BACKOFF_BASE)\n"
"  -d, --dir DIR        workspace (default $SW_DIR, else $XDG_STATE_HOME/sw)\n"
"  --spans[=DEST]       write an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results, and nothing for an answer (1, 75)\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"environment: SW_CLOCK_SKEW (expiry margin, default 2s), SW_SYNC, SW_DIR, SW_OWNER\n"
"exit: 0 ok, 1 not held / stale token / no such lease, 64 usage, 65 bad data,\n"
"      69 workspace unavailable, 71 system error, 74 I/O error,\n"
"      75 held by another / timed out / lost; run: else COMMAND's status\n";

enum { O_TTL = SW_OPT_FIRST_FREE, O_OWNER, O_WAIT, O_TOKEN, O_TAKEOVER, O_UNTIL, O_KEEP };

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"ttl", required_argument, 0, O_TTL},
	{"owner", required_argument, 0, O_OWNER},
	{"wait", optional_argument, 0, O_WAIT},
	{"token", required_argument, 0, O_TOKEN},
	{"conflict-exit-code", required_argument, 0, 'E'},
	{"grace", required_argument, 0, 'g'},
	{"takeover", no_argument, 0, O_TAKEOVER},
	{"until-success", no_argument, 0, O_UNTIL},
	{"keep-running", no_argument, 0, O_KEEP},
	{0, 0, 0, 0}
};

#define TTL_DEFAULT_NS (30 * SW_NS_PER_SEC)
#define GRACE_DEFAULT_NS (5 * SW_NS_PER_SEC)
#define KILL_LEAD_NS (200 * 1000000)   /* SIGKILL at most this long before expiry */

struct opts {
	bool quiet;
	int64_t ttl_ns;           /* 0: default */
	const char *owner;        /* --owner, else $SW_OWNER; NULL: the default */
	bool wait;
	int64_t wait_ns;          /* with wait: -1 forever; 0 one try, as without */
	uint64_t token;
	bool token_given;
	int conflict;
	int64_t grace_ns;
	bool takeover;            /* run: ask the holder to give the lease up */
	enum { ONCE, UNTIL_SUCCESS, KEEP_RUNNING } mode;   /* run: when to start it again */
	const char *name;
	char **cmd;               /* run: the command and its arguments */
};

/* ---- helpers ---------------------------------------------------------- */

static void print(const struct opts *o, json_t *j)
{
	if (!j)
		sw_die(EX_OSERR, "out of memory");
	if (!o->quiet && sw_json_print(j) < 0)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
	json_decref(j);
}

/* A refusal: its one line, unless it is an answer (1: not held, no such
 * lease; 75: busy, try later) and --quiet asked for silence; the exit
 * status still says it.  Real errors are always said.  Returns rc. */
static int refuse(const struct opts *o, int rc, const struct sw_err *err)
{
	if (!(o->quiet && (rc == SW_EX_FALSE || rc == EX_TEMPFAIL)))
		sw_warn("%s", err->msg);
	return rc;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SW_NS_PER_SEC + ts.tv_nsec;
}

static void span_lease(struct sw_span *sp, const struct sw_lease *l)
{
	if (l->token)
		sw_span_int(sp, "sw.lease.token", (int64_t)l->token);
	sw_span_str(sp, "sw.lease.state", sw_lease_state_name(l->state));
}

/* --takeover: asks the holder seen in l to give the lease up to us, once
 * per holder (a new holder in the meantime is asked again: the last to
 * ask wins, as with run-this-one).  until_ns: when we stop waiting, by
 * the wall clock (0: never), so that a request we gave up on is not
 * obeyed later. */
static void ask_holder(const struct opts *o, struct sw_ws *ws, const char *owner,
		       const struct sw_lease *l, int64_t until_ns, uint64_t *asked)
{
	if (l->state != SW_LEASE_HELD || l->token == *asked)
		return;
	struct sw_lease now;
	struct sw_err err;
	int rc = sw_lease_ask(ws, o->name, owner, until_ns, &now, &err);
	if (rc) {
		sw_warn("asking for '%s': %s", o->name, err.msg);
		return;
	}
	*asked = l->token;
	if (!o->quiet && now.state == SW_LEASE_HELD)
		sw_warn("asked %s (token %llu) to give '%s' up", now.owner, (unsigned long long)now.token,
			o->name);
}

/* Acquires, polling with jitter while --wait allows: a release or expiry
 * on another host wakes nobody here, so waiting is a bounded poll that
 * sleeps until the lease could be takeable, at most 200 ms at a time;
 * inotify cuts the sleep short for a release on this host.  With
 * takeover, a busy lease's holder is asked to give it up, and the wait
 * without --wait lasts at most twice its TTL plus the skew margin: the
 * holder's run sees the request within a second, and gives the lease
 * back once its command is gone (SIGKILL at most a TTL after SIGTERM); a
 * holder that cannot see it lets it expire. */
static int acquire_waiting(const struct opts *o, struct sw_ws *ws, const char *owner,
			   struct sw_lease *l, struct sw_err *err, bool takeover)
{
	int64_t ttl = o->ttl_ns ? o->ttl_ns : TTL_DEFAULT_NS;
	int64_t deadline = !o->wait ? 0 : o->wait_ns >= 0 ? mono_ns() + o->wait_ns : INT64_MAX;
	uint64_t asked = 0;
	int watch = -1;
	for (;;) {
		int rc = sw_lease_acquire(ws, o->name, owner, ttl, l, err);
		if (rc != EX_TEMPFAIL || (!o->wait && !takeover)) {
			if (watch >= 0)
				close(watch);
			return rc;
		}
		int64_t now = mono_ns();
		if (!deadline)
			deadline = now + 2 * l->ttl_ns + ws->skew_ns;
		if (takeover)
			ask_holder(o, ws, owner, l, deadline == INT64_MAX ? 0 : sw_now_ns() + (deadline - now), &asked);
		if (watch == -1) {
			/* set up after the first try, then try again before
			 * sleeping: a release in between is not missed */
			if ((watch = sw_lease_watch(ws, o->name)) >= 0)
				continue;
			watch = -2;     /* no inotify: poll only */
		}
		if (now >= deadline) {
			if (watch >= 0)
				close(watch);
			char why[sizeof err->msg];
			snprintf(why, sizeof why, "%s: %s", takeover ? "not given up in time" : "timed out waiting",
				 err->msg);
			sw_err_msg(err, "%s", why);
			return EX_TEMPFAIL;
		}
		int64_t d = 200000000;
		if (l->state == SW_LEASE_EXPIRED || l->state == SW_LEASE_HELD) {
			int64_t until = l->takeable_ns - sw_now_ns();
			if (until < d)
				d = until;
		}
		if (d < 5000000)
			d = 5000000;
		d += (int64_t)(arc4random_uniform(20000)) * 1000;   /* 0-20 ms jitter */
		if (d > deadline - now)
			d = deadline - now;
		sw_lease_watch_sleep(watch >= 0 ? watch : -1, d);
	}
}

/* ---- verbs ------------------------------------------------------------ */

static int cmd_acquire(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	int rc = acquire_waiting(o, ws, o->owner, &l, &err, false);
	span_lease(sp, &l);
	if (rc)
		return refuse(o, rc, &err);
	json_t *j = sw_lease_json(&l);
	if (!j)
		sw_die(EX_OSERR, "out of memory");
	if (!o->quiet && (sw_json_print(j) < 0 || fflush(stdout) != 0)) {
		/* nobody learnt the token: give the lease back rather than leave
		 * it held, by no one, until it expires */
		int e = errno;
		struct sw_lease back;
		sw_lease_release(ws, o->name, l.token, &back, &err);
		sw_die(EX_IOERR, "writing output: %s; the lease was given back", strerror(e));
	}
	json_decref(j);
	return 0;
}

static int cmd_renew(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	sw_span_int(sp, "sw.lease.token", (int64_t)o->token);
	int rc = sw_lease_renew(ws, o->name, o->token, o->ttl_ns, &l, &err);
	if (rc)
		return refuse(o, rc, &err);
	if (sw_lease_asked(&l)) {
		/* a leader loop (while renew; do ...) steps down: the lease is
		 * still its own until it releases it or it expires */
		sw_err_msg(&err, "'%s' is asked for by %s (takeover): finish, then release it", o->name,
			   l.takeover);
		return refuse(o, SW_EX_FALSE, &err);
	}
	print(o, sw_lease_json(&l));
	return 0;
}

static int cmd_release(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	sw_span_int(sp, "sw.lease.token", (int64_t)o->token);
	int rc = sw_lease_release(ws, o->name, o->token, &l, &err);
	if (rc)
		return refuse(o, rc, &err);
	print(o, sw_lease_json(&l));
	return 0;
}

/* The answer is the exit status; "no" is not an error, so it is not
 * reported on stderr (like test(1)), only in the printed object. */
static int cmd_check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	sw_span_int(sp, "sw.lease.token", (int64_t)o->token);
	int rc = sw_lease_check(ws, o->name, o->token, &l, &err);
	if (rc && rc != SW_EX_FALSE) {
		sw_warn("%s", err.msg);
		return rc;
	}
	json_t *j = json_pack("{s:s,s:I,s:b}", "name", o->name, "token", (json_int_t)o->token,
			      "valid", rc == 0);
	if (j && rc)
		json_object_set_new(j, "reason", json_string(err.msg));
	if (j && l.seq) {
		json_object_set_new(j, "holder_token", json_integer((json_int_t)l.token));
		sw_json_set_time(j, "expires_at", l.expires_ns);
	}
	print(o, j);
	return rc;
}

static int cmd_show(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	int rc = sw_lease_read(ws, o->name, &l, &err);
	if (rc)
		return refuse(o, rc, &err);
	span_lease(sp, &l);
	print(o, sw_lease_json(&l));
	return 0;
}

static int list_one(const struct sw_lease *l, void *arg)
{
	print(arg, sw_lease_json(l));
	return 0;
}

static int cmd_list(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_err err;
	(void)sp;
	int rc = sw_lease_list(ws, list_one, o, &err);
	if (rc)
		sw_warn("%s", err.msg);
	return rc;
}

/* ---- run -------------------------------------------------------------- */

/* The signals run passes on to the command (through the guardian). */
static void forward_sigset(sigset_t *set)
{
	sigemptyset(set);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(set, sigs[i]);
}

/* The command, in a process group of its own, with the signal mask run
 * was started with and SW_LEASE_NAME, SW_LEASE_TOKEN, TRACEPARENT and
 * SW_DIR.
 * posix_spawn, not fork: the guardian took the one fork run may cost.
 * 0, or an errno value. */
static int spawn_command(const struct opts *o, const struct sw_ws *ws, const struct sw_lease *l,
			 const char *traceparent, const sigset_t *mask, const struct sw_guard *g, pid_t *pid)
{
	char tok[24];
	snprintf(tok, sizeof tok, "%llu", (unsigned long long)l->token);
	/* SW_DIR: the workspace, absolute (a relative -d named it from our
	 * directory, which need not be the command's), so that the sw
	 * programs the command runs use the same one */
	if (setenv("SW_LEASE_NAME", o->name, 1) < 0 || setenv("SW_LEASE_TOKEN", tok, 1) < 0 ||
	    setenv("TRACEPARENT", traceparent, 1) < 0 || setenv("SW_DIR", ws->path, 1) < 0)
		return errno;
	posix_spawnattr_t at;
	sigset_t dfl;
	sigemptyset(&dfl);
	sw_guard_sigdefault(g, &dfl);
	int rc = posix_spawnattr_init(&at);
	if (rc)
		return rc;
	if (!(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						 POSIX_SPAWN_SETPGROUP)) &&
	    !(rc = posix_spawnattr_setsigmask(&at, mask)) &&
	    !(rc = posix_spawnattr_setsigdefault(&at, &dfl)) &&
	    !(rc = posix_spawnattr_setpgroup(&at, 0))) {
		/* the command gets the umask sw was started with, not the
		 * workspace's */
		mode_t ours = umask(sw_ws_user_umask(ws));
		rc = posix_spawnp(pid, o->cmd[0], NULL, &at, o->cmd, environ);
		umask(ours);
	}
	posix_spawnattr_destroy(&at);
	return rc;
}

/* The command's tree is its process group plus every process reparented
 * to this one (a child subreaper): everything that is still our child.
 * The lease is held, and renewed, until none is left. */
struct runstate {
	const struct sw_guard *g;
	pid_t pid;                    /* the command, leader of its process group */
	bool exited;                  /* reaped; status says how it ended */
	int status;
	bool group_gone;              /* its group is empty: its id may be reused */
	int64_t ttl_ns, expires_ns;   /* expires_ns by this host's clock */
	int64_t next_renew;           /* monotonic */
	bool lost;
	bool failing;                 /* the last renewal failed (and may again) */
	bool stopping;                /* the tree has been told to stop */
	bool killing;                 /* SIGKILL sent, and sent again to what is left */
	int64_t kill_at;              /* monotonic: SIGKILL due; 0: none */
	bool said_waiting;
	bool orphaned;                /* the guardian was killed */
	bool idle;                    /* between two runs (--keep-running...): no tree */
	bool yielding;                /* a takeover was asked: stop, then give it up */
	int stop_sig;                 /* the SIGTERM or SIGINT that stops run */
	int64_t next_look;            /* monotonic: look for a takeover request */
};

/* Sends sig to the whole tree: the command's group while it has members
 * (first: the /proc walk takes a while), then every descendant outside it,
 * which the walk finds even in a session of its own whose leader is not
 * our child yet.  A stopped process is woken to act on anything but
 * SIGKILL. */
static void tree_signal(struct runstate *r, int sig)
{
	if (r->idle)
		return;   /* nothing runs; the old group's id may be another's now */
	if (r->exited && !r->group_gone && kill(-r->pid, 0) < 0 && errno == ESRCH)
		r->group_gone = true;
	pid_t pgid = r->group_gone ? 0 : r->pid;
	/* ESRCH: the group is empty; what is left is found below */
	if (pgid)
		(void)kill(-pgid, sig);
	struct sw_proc *ps = NULL;
	size_t n = 0;
	if (sw_proc_descendants(&ps, &n) < 0)
		sw_warn("listing the command's processes: %s", strerror(errno));
	sw_proc_kill(pgid, ps, n, sig);
	if (sig != SIGKILL) {
		if (pgid)
			(void)kill(-pgid, SIGCONT);
		sw_proc_kill(pgid, ps, n, SIGCONT);
	}
	free(ps);
}

/* Tells the tree to stop with sig, and SIGKILLs it within ns. */
static void tree_stop(struct runstate *r, int sig, int64_t ns)
{
	if (!r->stopping) {
		r->stopping = true;
		tree_signal(r, sig);
	}
	int64_t at = mono_ns() + ns;
	if (!r->kill_at || at < r->kill_at)
		r->kill_at = at;
}

static void tree_kill(struct runstate *r)
{
	r->stopping = r->killing = true;
	tree_signal(r, SIGKILL);
}

/* How long before the lease expires a command whose renewals keep
 * failing is sent SIGTERM: the grace, at most a third of the TTL; its
 * SIGKILL then comes at the expiry, before anyone else may take the lease. */
static int64_t stop_window(const struct runstate *r, const struct opts *o)
{
	return o->grace_ns < r->ttl_ns / 3 ? o->grace_ns : r->ttl_ns / 3;
}

/* The time by this host's clock when the command must be stopped. */
static int64_t stop_by(const struct runstate *r, const struct opts *o)
{
	return r->failing ? r->expires_ns - stop_window(r, o) : r->expires_ns;
}

/* The lease is gone or going: the tree is dead by its expiry (SIGKILL a
 * little before it, for the walk of /proc and the scheduler), and at once
 * when that has passed (this process was stopped or stalled: another
 * holder may be running already). */
static void lose(struct runstate *r, const struct opts *o, const char *why)
{
	sw_warn("lease '%s' lost (%s); stopping the command", o->name, why);
	r->lost = true;
	int64_t lead = r->ttl_ns / 10 < KILL_LEAD_NS ? r->ttl_ns / 10 : KILL_LEAD_NS;
	int64_t left = r->expires_ns - lead - sw_now_ns();
	if (left <= 0) {
		tree_kill(r);
		return;
	}
	int64_t w = r->failing ? stop_window(r, o) : o->grace_ns;
	tree_stop(r, SIGTERM, w < left ? w : left);
}

/* Someone asked for the lease (sw-lease run --takeover): the command is
 * stopped as for SIGTERM, SIGKILLed after the grace period (at most a
 * TTL, which the asker's wait allows for), and the lease, renewed
 * meanwhile, is given back once nothing of the tree is left: the asker's
 * command never runs beside ours. */
static void yield(struct runstate *r, const struct opts *o, const char *who)
{
	if (r->yielding)
		return;
	r->yielding = true;
	if (!o->quiet)
		sw_warn("'%s' is asked for by %s (takeover); stopping the command and giving it up",
			o->name, who);
	tree_stop(r, SIGTERM, o->grace_ns < r->ttl_ns ? o->grace_ns : r->ttl_ns);
}

/* A takeover request is looked for every second (a read, no write), not
 * only at renewals, so that a takeover takes seconds whatever the TTL. */
#define LOOK_NS SW_NS_PER_SEC

static void look_tick(struct runstate *r, const struct opts *o, struct sw_ws *ws, uint64_t token)
{
	struct sw_lease l;
	struct sw_err err;
	r->next_look = mono_ns() + (r->ttl_ns / 3 < LOOK_NS ? r->ttl_ns / 3 : LOOK_NS);
	/* a lease lost or unreadable is the renewal's to find */
	if (sw_lease_read(ws, o->name, &l, &err) == 0 && l.token == token && sw_lease_asked(&l))
		yield(r, o, l.takeover);
}

/* One renewal at TTL/3.  Failing for a reason other than "lost" (an I/O
 * error, a busy filesystem) is retried until stop_by(); then the command
 * is stopped, dead by the time the lease expires. */
static void renew_tick(struct runstate *r, const struct opts *o, struct sw_ws *ws, uint64_t token)
{
	struct sw_lease l;
	struct sw_err err;
	int rc = sw_lease_renew(ws, o->name, token, r->ttl_ns, &l, &err);
	if (rc == 0) {
		r->expires_ns = l.expires_ns;
		r->next_renew = mono_ns() + r->ttl_ns / 3;
		r->failing = false;
		if (sw_lease_asked(&l))
			yield(r, o, l.takeover);
		return;
	}
	if (rc == SW_EX_FALSE) {
		lose(r, o, err.msg);
		return;
	}
	r->failing = true;
	if (sw_now_ns() >= stop_by(r, o)) {
		lose(r, o, err.msg);
		return;
	}
	sw_warn("renewing '%s' (will retry): %s", o->name, err.msg);
	int64_t retry = r->ttl_ns / 10;
	r->next_renew = mono_ns() + (retry > SW_NS_PER_SEC ? SW_NS_PER_SEC : retry);
}

/* Reaps what has exited; true when nothing of the tree is left. */
static bool reap(struct runstate *r, const struct opts *o)
{
	int st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
		if (w == r->pid && !r->exited) {
			r->exited = true;
			r->status = st;
		}
	}
	if (w < 0 && errno == ECHILD)
		return true;
	if (w < 0 && errno != EINTR)
		sw_die(EX_OSERR, "waiting for %s: %s", o->cmd[0], strerror(errno));
	return false;
}

static void run_signal(struct runstate *r, const struct opts *o, int sig)
{
	if (sig == SIGCHLD)
		return;
	if (sig == r->g->sig) {
		if (!sw_guard_lost(r->g) || r->orphaned)
			return;
		/* the process the user started was SIGKILLed: whoever did it
		 * wants the command gone, and nothing passes signals on now */
		sw_warn("process %ld was killed; killing the command", (long)r->g->guardian);
		r->orphaned = true;
		tree_kill(r);
		return;
	}
	if (sig == SIGTERM || sig == SIGINT) {
		if (!r->stop_sig)
			r->stop_sig = sig;    /* and no run after this one */
		if (!r->stopping) {
			tree_stop(r, sig, o->grace_ns);
			return;
		}
	}
	if (!r->exited && !r->idle)
		(void)kill(r->pid, sig);   /* the command decides what it means; ESRCH: just exited */
}

/* Until the next thing to do: a renewal, the stop deadline, a SIGKILL,
 * or (while killing) a look for processes that appeared meanwhile. */
static struct timespec run_timeout(const struct runstate *r, const struct opts *o)
{
	int64_t now = mono_ns(), until = INT64_MAX;
	if (r->killing)
		until = now + 50000000;
	else if (r->kill_at)
		until = r->kill_at;
	if (!r->lost) {
		int64_t exp = now + (stop_by(r, o) - sw_now_ns());
		if (r->next_renew < until)
			until = r->next_renew;
		if (exp < until)
			until = exp;
		if (!r->yielding && r->next_look < until)
			until = r->next_look;
	}
	int64_t d = until - now < 0 ? 0 : until - now;
	return (struct timespec){ d / SW_NS_PER_SEC, d % SW_NS_PER_SEC };
}

static void run_timers(struct runstate *r, const struct opts *o, struct sw_ws *ws, uint64_t token)
{
	if (!r->lost) {
		/* checked first: after a stall the renewal is pointless */
		if (sw_now_ns() >= r->expires_ns)
			lose(r, o, "it expired before it could be renewed: was this process stopped?");
		else if (sw_now_ns() >= stop_by(r, o))
			lose(r, o, "it would expire before a renewal succeeded");
		else if (mono_ns() >= r->next_renew)
			renew_tick(r, o, ws, token);
		else if (!r->yielding && mono_ns() >= r->next_look)
			look_tick(r, o, ws, token);
	}
	if (r->kill_at && !r->killing && mono_ns() >= r->kill_at)
		tree_kill(r);
}

/* Waits for a signal until ts, acts on it and on what falls due. */
static void run_step(struct runstate *r, const struct opts *o, struct sw_ws *ws, uint64_t token,
		     struct timespec ts)
{
	sigset_t set;
	forward_sigset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, r->g->sig);
	int sig = sigtimedwait(&set, NULL, &ts);
	if (sig > 0)
		run_signal(r, o, sig);
	else if (errno != EAGAIN && errno != EINTR)
		sw_die(EX_OSERR, "sigtimedwait: %s", strerror(errno));
	run_timers(r, o, ws, token);
}

/* Waits until nothing of the tree is left, renewing the lease meanwhile. */
static void wait_tree(struct runstate *r, const struct opts *o, struct sw_ws *ws, uint64_t token)
{
	while (!reap(r, o)) {
		if (r->killing)
			tree_signal(r, SIGKILL);    /* what was reparented or forked since */
		else if (r->exited && !r->stopping && !r->said_waiting) {
			sw_warn("%s has exited; holding '%s' until the processes it left behind exit",
				o->cmd[0], o->name);
			r->said_waiting = true;
		}
		run_step(r, o, ws, token, run_timeout(r, o));
	}
}

/* Whether run is to stop: the lease lost or asked for, a SIGTERM or
 * SIGINT, the guardian killed. */
static bool run_over(const struct runstate *r)
{
	return r->lost || r->yielding || r->stop_sig || r->orphaned;
}

/* Between two runs of --keep-running or --until-success: holds and
 * renews the lease for ns, or until run is to stop. */
static void pause_renewing(struct runstate *r, const struct opts *o, struct sw_ws *ws, uint64_t token,
			   int64_t ns)
{
	int64_t until = mono_ns() + ns;
	r->idle = true;
	while (!run_over(r) && mono_ns() < until) {
		struct timespec ts = run_timeout(r, o);
		int64_t left = until - mono_ns();
		if (left < 0)
			left = 0;
		if ((int64_t)ts.tv_sec * SW_NS_PER_SEC + ts.tv_nsec > left)
			ts = (struct timespec){ left / SW_NS_PER_SEC, left % SW_NS_PER_SEC };
		run_step(r, o, ws, token, ts);
	}
}

/* How long until the next run, as run-one-constantly waits: the backoff
 * base (SW_BACKOFF_BASE, 1s) after a run that exited 0, doubled for
 * each failure in a row (2s, 4s, ...), at most a minute. */
#define RESTART_MAX_NS (60 * SW_NS_PER_SEC)
static int64_t restart_delay(const struct sw_ws *ws, int status, int *fails)
{
	int64_t d = ws->set.backoff_ns, cap = d > RESTART_MAX_NS ? d : RESTART_MAX_NS;
	*fails = status ? *fails + 1 : 0;
	for (int k = 0; k < *fails && d < cap; k++)
		d *= 2;
	return d < cap ? d : cap;
}

static int cmd_run(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	int rc = acquire_waiting(o, ws, o->owner, &l, &err, o->takeover);
	span_lease(sp, &l);
	if (rc == EX_TEMPFAIL) {
		refuse(o, rc, &err);
		return o->conflict;
	}
	if (rc)
		return refuse(o, rc, &err);
	char tp[SW_TRACEPARENT_LEN];
	sw_span_child_env(sp, tp);
	sigset_t fwd, old;
	forward_sigset(&fwd);
	struct sw_guard g;
	struct runstate r = { .g = &g, .ttl_ns = l.ttl_ns, .expires_ns = l.expires_ns };
	if (sw_guard_start(&g, &fwd, &old) < 0) {
		int e = errno;
		sw_lease_release(ws, o->name, l.token, &l, &err);
		sw_die(EX_OSERR, "starting the guardian process: %s", strerror(e));
	}
	/* from here on this is the worker; the guardian passes our exit on */
	r.next_renew = mono_ns() + l.ttl_ns / 3;
	r.next_look = mono_ns();
	int status = 0, fails = 0;
	int64_t runs = 0;
	for (;;) {
		r.idle = r.exited = r.group_gone = r.stopping = r.killing = r.said_waiting = false;
		r.kill_at = 0;
		int e = spawn_command(o, ws, &l, tp, &old, &g, &r.pid);
		if (e) {
			sw_warn("cannot run %s: %s", o->cmd[0], strerror(e));
			status = e == ENOENT ? 127 : 126;
			break;
		}
		runs++;
		wait_tree(&r, o, ws, l.token);
		/* signals stay blocked: one that came late must not kill us
		 * before the lease is released and the command's status passed
		 * on */
		int st = r.status;
		status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EX_SOFTWARE;
		if (run_over(&r) || o->mode == ONCE || (o->mode == UNTIL_SUCCESS && status == 0))
			break;
		int64_t d = restart_delay(ws, status, &fails);
		if (status && !o->quiet) {
			char in[SW_DUR_LEN];
			sw_fmt_duration(d, in);   /* as durations print everywhere */
			sw_warn("%s exited with status %d; starting it again in %s", o->cmd[0], status, in);
		}
		pause_renewing(&r, o, ws, l.token, d);
		if (run_over(&r)) {
			if (r.stop_sig)
				status = 128 + r.stop_sig;   /* stopped between runs */
			break;
		}
	}
	sw_span_int(sp, "process.exit.code", status);
	sw_span_int(sp, "sw.lease.runs", runs);
	if (r.lost)
		return EX_TEMPFAIL;
	struct sw_lease rel;
	if (sw_lease_release(ws, o->name, l.token, &rel, &err))
		sw_warn("releasing: %s", err.msg);
	return r.yielding ? EX_TEMPFAIL : status;
}

/* ---- options and main ------------------------------------------------- */

static const int o_acquire[] = { O_TTL, O_OWNER, O_WAIT, 0 };
static const int o_renew[] = { O_TTL, O_TOKEN, 0 };
static const int o_token[] = { O_TOKEN, 0 };
static const int o_none[] = { 0 };
static const int o_run[] = { O_TTL, O_OWNER, O_WAIT, 'E', 'g', O_TAKEOVER, O_UNTIL, O_KEEP, 0 };

static const struct sw_verb verbs[] = {
	{ "acquire", cmd_acquire, "a lease NAME", 1, 1, o_acquire, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "renew", cmd_renew, "a lease NAME", 1, 1, o_renew, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "release", cmd_release, "a lease NAME", 1, 1, o_token, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "check", cmd_check, "a lease NAME", 1, 1, o_token, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "show", cmd_show, "a lease NAME", 1, 1, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "list", cmd_list, "", 0, 0, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	/* the first argument after NAME, or everything after "--", is the
	 * command; getopt's leading '+' leaves its own options alone */
	{ "run", cmd_run, "a lease NAME", 1, 1, o_run, SW_CMD_WS | SW_CMD_WS_CREATE | SW_CMD_COMMAND },
	{ 0 }
};

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	int64_t v;
	int rc;
	switch (code) {
	case O_TTL:
		return sw_cmd_ttl(c, "--ttl", arg, 1000000, &o->ttl_ns);
	case O_OWNER:
		if (!(rc = sw_cmd_name(c, "owner", arg)))
			o->owner = arg;
		return rc;
	case O_WAIT: {
		/* `--wait 30s` as well as `--wait=30s`: a lease name that parses
		 * as a duration needs `--wait=DUR` or `--wait` after it */
		/* --wait 0 tries once, like flock -w 0 and sw-claim next
		 * --wait 0; only --wait without a duration waits forever */
		bool given;
		o->wait = true;
		rc = sw_cmd_opt_duration(c, "--wait", arg, &o->wait_ns, &given);
		if (!given)
			o->wait_ns = -1;
		return rc;
	}
	case O_TOKEN:
		if (!sw_lease_token_parse(arg, &o->token))
			return sw_cmd_err(c, EX_DATAERR, "bad token '%.40s': want the number acquire printed", arg);
		o->token_given = true;
		return 0;
	case 'E':
		if (!(rc = sw_cmd_int(c, "exit code", arg, 0, 255, &v)))
			o->conflict = (int)v;
		return rc;
	case 'g': return sw_cmd_duration(c, "--grace", arg, &o->grace_ns);
	case O_TAKEOVER: o->takeover = true; return 0;
	case O_UNTIL:
	case O_KEEP:
		if (o->mode != ONCE && o->mode != (code == O_UNTIL ? UNTIL_SUCCESS : KEEP_RUNNING))
			return sw_cmd_err(c, EX_USAGE, "--until-success and --keep-running exclude each other");
		o->mode = code == O_UNTIL ? UNTIL_SUCCESS : KEEP_RUNNING;
		return 0;
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

/* The default owner: $SW_OWNER, else host:pid of a process that outlives
 * the verb: the caller (the shell or script that acquires, then renews
 * and releases), or for run, run itself, which holds the lease as long as
 * it lives. */
static int default_owner(struct sw_cmd *c, struct opts *o)
{
	static char owner[SW_LEASE_OWNER_MAX + 1];
	const char *env = getenv("SW_OWNER");
	if (env && *env) {
		const char *why = sw_name_problem(env);
		if (why)
			return sw_cmd_err(c, EX_DATAERR, "bad SW_OWNER: %s", why);
		o->owner = env;
		return 0;
	}
	char host[128];
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	pid_t pid = c->verb->flags & SW_CMD_COMMAND ? getpid() : getppid();
	snprintf(owner, sizeof owner, "%s:%ld", host, (long)pid);
	o->owner = owner;
	return 0;
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	int rc;
	o->quiet = c->co.quiet;
	if (!o->owner && (rc = default_owner(c, o)))
		return rc;
	o->name = c->nargs ? c->args[0] : NULL;
	o->cmd = c->command;
	if (o->name && (rc = sw_cmd_name(c, "lease name", o->name)))
		return rc;
	const int *p = c->verb->opts;
	if (p == o_token || p == o_renew) {
		if (!o->token_given)
			return sw_cmd_err(c, EX_USAGE, "--token is required");
	}
	return 0;
}

static void begin(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	if (o->name)
		sw_span_str(&c->sp, "sw.lease.name", o->name);
}

static const struct sw_prog prog = {
	.name = "sw-lease", .usage = usage, .longopts = longopts, .shortopts = "E:g:",
	.verbs = verbs, .option = option, .check = check, .begin = begin,
};

int main(int argc, char **argv)
{
	struct opts o = { .conflict = EX_TEMPFAIL, .grace_ns = GRACE_DEFAULT_NS };
	return sw_cmd_main(&prog, argc, argv, &o);
}
