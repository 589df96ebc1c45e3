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
"  run NAME [--ttl DUR] [--owner ID] [--wait[=DUR]] [-E CODE] [-g DUR] [--] COMMAND [ARG...]\n"
"                       run COMMAND holding the lease, renewing it every TTL/3,\n"
"                       until it and every process it started have exited;\n"
"                       exit with its status, or 75 (-E CODE) when busy, 75 when lost\n"
"\n"
"options:\n"
"  --ttl DUR            lease lifetime (default 30s; renew: the lease's own)\n"
"  --owner ID           who holds it, for show and list (default HOST:PID)\n"
"  --wait[=DUR]         wait for the lease, at most DUR (default forever)\n"
"  --token T            the fencing token acquire printed\n"
"  -E, --conflict-exit-code CODE   run: exit status when busy (default 75)\n"
"  -g, --grace DUR      run: SIGTERM to SIGKILL of the command's processes when\n"
"                       the lease is lost or run is told to stop (default 5s)\n"
"  -d, --dir DIR        workspace (default $SW_DIR, else $XDG_STATE_HOME/sw)\n"
"  --spans[=DEST]       write an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"environment: SW_CLOCK_SKEW (expiry margin, default 2s), SW_SYNC, SW_DIR\n"
"exit: 0 ok, 1 not held / stale token / no such lease, 64 usage, 65 bad data,\n"
"      69 workspace unavailable, 71 system error, 74 I/O error,\n"
"      75 held by another / timed out / lost; run: else COMMAND's status\n";

enum { O_TTL = SW_OPT_FIRST_FREE, O_OWNER, O_WAIT, O_TOKEN };

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"ttl", required_argument, 0, O_TTL},
	{"owner", required_argument, 0, O_OWNER},
	{"wait", optional_argument, 0, O_WAIT},
	{"token", required_argument, 0, O_TOKEN},
	{"conflict-exit-code", required_argument, 0, 'E'},
	{"grace", required_argument, 0, 'g'},
	{0, 0, 0, 0}
};

#define TTL_DEFAULT_NS (30 * SW_NS_PER_SEC)
#define GRACE_DEFAULT_NS (5 * SW_NS_PER_SEC)

struct opts {
	bool quiet;
	int64_t ttl_ns;           /* 0: default */
	const char *owner;
	bool wait;
	int64_t wait_ns;          /* 0 with wait: forever */
	uint64_t token;
	bool token_given;
	int conflict;
	int64_t grace_ns;
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

/* Acquires, polling with jitter while --wait allows: a release or expiry
 * on another host wakes nobody here, so waiting is a bounded poll that
 * sleeps until the lease could be takeable, at most 200 ms at a time;
 * inotify cuts the sleep short for a release on this host. */
static int acquire_waiting(const struct opts *o, struct sw_ws *ws, const char *owner,
			   struct sw_lease *l, struct sw_err *err)
{
	int64_t ttl = o->ttl_ns ? o->ttl_ns : TTL_DEFAULT_NS;
	int64_t deadline = o->wait && o->wait_ns ? mono_ns() + o->wait_ns : INT64_MAX;
	int watch = -1;
	for (;;) {
		int rc = sw_lease_acquire(ws, o->name, owner, ttl, l, err);
		if (rc != EX_TEMPFAIL || !o->wait) {
			if (watch >= 0)
				close(watch);
			return rc;
		}
		if (watch == -1) {
			/* set up after the first try, then try again before
			 * sleeping: a release in between is not missed */
			if ((watch = sw_lease_watch(ws, o->name)) >= 0)
				continue;
			watch = -2;     /* no inotify: poll only */
		}
		int64_t now = mono_ns();
		if (now >= deadline) {
			if (watch >= 0)
				close(watch);
			char why[sizeof err->msg];
			snprintf(why, sizeof why, "timed out waiting: %s", err->msg);
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
	int rc = acquire_waiting(o, ws, o->owner, &l, &err);
	span_lease(sp, &l);
	if (rc) {
		if (!(rc == EX_TEMPFAIL && o->quiet))
			sw_warn("%s", err.msg);
		return rc;
	}
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
	if (rc) {
		sw_warn("%s", err.msg);
		return rc;
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
	if (rc) {
		sw_warn("%s", err.msg);
		return rc;
	}
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
	if (rc) {
		sw_warn("%s", err.msg);
		return rc;
	}
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

struct lease_hold {
	struct sw_ws *ws;
	const char *name;
	uint64_t token;
};

static int renew_lease(void *arg, int64_t ttl_ns, int64_t *expires_ns, struct sw_err *err)
{
	struct lease_hold *h = arg;
	struct sw_lease l;
	int rc = sw_lease_renew(h->ws, h->name, h->token, ttl_ns, &l, err);
	if (rc == 0)
		*expires_ns = l.expires_ns;
	return rc;
}

static void release_quietly(struct sw_ws *ws, const struct opts *o, uint64_t token)
{
	struct sw_lease rel;
	struct sw_err err;
	if (sw_lease_release(ws, o->name, token, &rel, &err))
		sw_warn("releasing: %s", err.msg);
}

/* The command's whole tree holds the lease (lib/hold.c): SW_LEASE_NAME,
 * SW_LEASE_TOKEN and TRACEPARENT in its environment, renewed every TTL/3,
 * stopped before the lease can expire once it is lost. */
static int cmd_run(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_lease l = {0};
	struct sw_err err;
	int rc = acquire_waiting(o, ws, o->owner, &l, &err);
	span_lease(sp, &l);
	if (rc == EX_TEMPFAIL) {
		if (!o->quiet)
			sw_warn("%s", err.msg);
		return o->conflict;
	}
	if (rc) {
		sw_warn("%s", err.msg);
		return rc;
	}
	char tp[SW_TRACEPARENT_LEN], tok[24], what[SW_NAME_MAX + 16];
	sw_span_child_env(sp, tp);
	snprintf(tok, sizeof tok, "%llu", (unsigned long long)l.token);
	snprintf(what, sizeof what, "lease '%s'", o->name);
	const char *env[] = { "SW_LEASE_NAME", o->name, "SW_LEASE_TOKEN", tok, "TRACEPARENT", tp, NULL };
	struct lease_hold lh = { ws, o->name, l.token };
	struct sw_hold h = {
		.cmd = o->cmd, .env = env, .umask = sw_ws_user_umask(ws), .grace_ns = o->grace_ns,
		.ttl_ns = l.ttl_ns, .expires_ns = l.expires_ns, .what = what, .renew = renew_lease, .arg = &lh,
	};
	struct sw_hold_result res;
	if (sw_hold_run(&h, &res) < 0) {
		int e = errno;
		release_quietly(ws, o, l.token);
		sw_die(EX_OSERR, "starting the guardian process: %s", strerror(e));
	}
	/* from here on this is the guardian's worker, signals blocked: one
	 * that came late must not kill us before the lease is released and
	 * the command's status passed on */
	if (res.spawn_errno) {
		release_quietly(ws, o, l.token);
		return res.status;
	}
	sw_span_int(sp, "process.exit.code", res.status);
	if (res.lost)
		return EX_TEMPFAIL;
	release_quietly(ws, o, l.token);
	return res.status;
}

/* ---- options and main ------------------------------------------------- */

static const int o_acquire[] = { O_TTL, O_OWNER, O_WAIT, 0 };
static const int o_renew[] = { O_TTL, O_TOKEN, 0 };
static const int o_token[] = { O_TOKEN, 0 };
static const int o_none[] = { 0 };
static const int o_run[] = { O_TTL, O_OWNER, O_WAIT, 'E', 'g', 0 };

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
		if ((rc = sw_cmd_duration(c, "--ttl", arg, &o->ttl_ns)))
			return rc;
		return o->ttl_ns < 1000000 ? sw_cmd_err(c, EX_USAGE, "bad --ttl '%s': want at least 1ms", arg) : 0;
	case O_OWNER:
		if (!(rc = sw_cmd_name(c, "owner", arg)))
			o->owner = arg;
		return rc;
	case O_WAIT: {
		/* `--wait 30s` as well as `--wait=30s`: a lease name that parses
		 * as a duration needs `--wait=DUR` or `--wait` after it */
		bool given;
		o->wait = true;
		return sw_cmd_opt_duration(c, "--wait", arg, &o->wait_ns, &given);
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
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	o->quiet = c->co.quiet;
	o->name = c->nargs ? c->args[0] : NULL;
	o->cmd = c->command;
	if (o->name) {
		int rc = sw_cmd_name(c, "lease name", o->name);
		if (rc)
			return rc;
	}
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
	char owner[SW_LEASE_OWNER_MAX + 1];
	sw_lease_default_owner(owner);
	o.owner = owner;
	return sw_cmd_main(&prog, argc, argv, &o);
}
