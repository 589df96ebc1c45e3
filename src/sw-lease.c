/* sw-lease — named leases with a TTL and fencing tokens for shell scripts:
 * acquire, renew, release, check, and `run` a command under a lease (a
 * cron singleton across hosts).  See sw-lease(1); the leases themselves
 * are lib/lease.c, the run loop lib/hold.c. */
#include "clock.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "lease.h"
#include "cmd.h"
#include "hold.h"
#include "opt.h"
#include "span.h"
#include "ws.h"
#include <bsd/stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	int64_t deadline = !o->wait ? 0 : o->wait_ns >= 0 ? sw_mono_ns() + o->wait_ns : INT64_MAX;
	uint64_t asked = 0;
	int watch = -1;
	for (;;) {
		int rc = sw_lease_acquire(ws, o->name, owner, ttl, l, err);
		if (rc != EX_TEMPFAIL || (!o->wait && !takeover)) {
			if (watch >= 0)
				close(watch);
			return rc;
		}
		int64_t now = sw_mono_ns();
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
		return sw_cmd_refuse(c, rc, &err);
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
		return sw_cmd_refuse(c, rc, &err);
	if (sw_lease_asked(&l)) {
		/* a leader loop (while renew; do ...) steps down: the lease is
		 * still its own until it releases it or it expires */
		sw_err_msg(&err, "'%s' is asked for by %s (takeover): finish, then release it", o->name,
			   l.takeover);
		return sw_cmd_refuse(c, SW_EX_FALSE, &err);
	}
	sw_cmd_print(c, sw_lease_json(&l));
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
		return sw_cmd_refuse(c, rc, &err);
	sw_cmd_print(c, sw_lease_json(&l));
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
	sw_cmd_print(c, j);
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
		return sw_cmd_refuse(c, rc, &err);
	span_lease(sp, &l);
	sw_cmd_print(c, sw_lease_json(&l));
	return 0;
}

static int list_one(const struct sw_lease *l, void *arg)
{
	sw_cmd_print(arg, sw_lease_json(l));
	return 0;
}

static int cmd_list(struct sw_cmd *c)
{
	struct sw_err err;
	int rc = sw_lease_list(&c->ws, list_one, c, &err);
	if (rc)
		sw_warn("%s", err.msg);
	return rc;
}

/* ---- run -------------------------------------------------------------- */

/* What lib/hold needs of the lease run holds. */
struct lease_hold {
	const struct opts *o;
	struct sw_ws *ws;
	uint64_t token;
	int fails;                /* runs that failed in a row (--keep-running) */
};

/* Who asks for the lease, as hold says it: "'svc' is asked for by W (takeover)". */
static int asked_by(const struct lease_hold *lh, const struct sw_lease *l, struct sw_err *err)
{
	sw_err_msg(err, "'%s' is asked for by %s (takeover)", lh->o->name, l->takeover);
	return SW_HOLD_YIELD;
}

static int renew_lease(void *arg, int64_t ttl_ns, int64_t *expires_ns, struct sw_err *err)
{
	struct lease_hold *lh = arg;
	struct sw_lease l;
	int rc = sw_lease_renew(lh->ws, lh->o->name, lh->token, ttl_ns, &l, err);
	if (rc)
		return rc;
	*expires_ns = l.expires_ns;
	return sw_lease_asked(&l) ? asked_by(lh, &l, err) : 0;
}

static int look_lease(void *arg, struct sw_err *err)
{
	struct lease_hold *lh = arg;
	struct sw_lease l;
	if (sw_lease_read(lh->ws, lh->o->name, &l, err) == 0 && l.token == lh->token && sw_lease_asked(&l))
		return asked_by(lh, &l, err);
	return 0;
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

/* --until-success and --keep-running: whether, and after how long, the
 * command is started again. */
static int64_t run_again(void *arg, int status)
{
	struct lease_hold *lh = arg;
	const struct opts *o = lh->o;
	if (o->mode == ONCE || (o->mode == UNTIL_SUCCESS && status == 0))
		return -1;
	int64_t d = restart_delay(lh->ws, status, &lh->fails);
	if (status && !o->quiet) {
		char in[SW_DUR_LEN];
		sw_fmt_duration(d, in);   /* as durations print everywhere */
		sw_warn("%s exited with status %d; starting it again in %s", o->cmd[0], status, in);
	}
	return d;
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
		sw_cmd_refuse(c, rc, &err);
		return o->conflict;
	}
	if (rc)
		return sw_cmd_refuse(c, rc, &err);
	char tok[24], what[SW_NAME_MAX + 16];
	snprintf(tok, sizeof tok, "%llu", (unsigned long long)l.token);
	snprintf(what, sizeof what, "lease '%s'", o->name);
	const char *env[] = { "SW_LEASE_NAME", o->name, "SW_LEASE_TOKEN", tok, NULL };
	struct lease_hold lh = { o, ws, l.token, 0 };
	struct sw_hold h = {
		.grace_ns = o->grace_ns, .ttl_ns = l.ttl_ns, .expires_ns = l.expires_ns, .what = what,
		.renew = renew_lease, .look = look_lease, .again = run_again, .arg = &lh,
	};
	struct sw_hold_result res;
	if (sw_cmd_hold(c, &h, env, &res) < 0) {
		int e = errno;
		sw_lease_release(ws, o->name, l.token, &l, &err);
		sw_die(EX_OSERR, "starting the guardian process: %s", strerror(e));
	}
	sw_span_int(sp, "sw.lease.runs", res.runs);
	struct sw_lease rel;
	if ((!res.lost || res.held_late) && sw_lease_release(ws, o->name, l.token, &rel, &err))
		sw_warn("releasing: %s", err.msg);
	return res.lost || res.yielded ? EX_TEMPFAIL : res.status;
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
	case 'E': return sw_cmd_exit_code(c, arg, &o->conflict);
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
	o->cmd = c->command;
	if ((rc = sw_cmd_named(c, "lease name", &o->name)))
		return rc;
	const int *p = c->verb->opts;
	if (p == o_token || p == o_renew) {
		if (!o->token_given)
			return sw_cmd_err(c, EX_USAGE, "--token is required");
	}
	return 0;
}

static const struct sw_prog prog = {
	.name = "sw-lease", .usage = usage, .longopts = longopts, .shortopts = "E:g:",
	.verbs = verbs, .option = option, .check = check,
	.name_attr = "sw.lease.name",
};

int main(int argc, char **argv)
{
	struct opts o = { .conflict = EX_TEMPFAIL, .grace_ns = GRACE_DEFAULT_NS };
	return sw_cmd_main(&prog, argc, argv, &o);
}
