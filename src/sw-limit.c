/* sw-limit — rate limits (token bucket, exact sliding window) and
 * concurrency limits (N slots) shared by every host of the workspace:
 * take, run a command under them, acquire and release slots from
 * scripts.  See sw-limit(1); the limits themselves are lib/limit.c, the
 * run loop lib/hold.c. */
#include "clock.h"
#include "cmd.h"
#include "err.h"
#include "hold.h"
#include "id.h"
#include "json.h"
#include "lease.h"
#include "limit.h"
#include "num.h"
#include "opt.h"
#include "span.h"
#include "ws.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
"usage: sw-limit VERB [options] [args]\n"
"\n"
"  take NAME (--rate N/s [--burst B] | --window DUR --max M) [-n COUNT] [--wait[=DUR]]\n"
"                       take COUNT grants (default 1): 0 granted, 75 limited\n"
"                       (retry_after_ms printed); --wait reserves the next\n"
"                       free time and sleeps until it (a smooth shaper)\n"
"  run NAME [--rate R [--burst B] | --window DUR --max M] [--concurrency N]\n"
"      [--ttl DUR] [--owner ID] [--wait[=DUR]] [-E CODE] [-g DUR] [--] COMMAND [ARG...]\n"
"                       take, then run COMMAND holding one of N slots (renewed\n"
"                       every TTL/3) until it and every process it started have\n"
"                       exited; exit with its status, 75 (-E CODE) when limited\n"
"  acquire NAME --concurrency N [--ttl DUR] [--owner ID] [--wait[=DUR]]\n"
"                       hold one of N slots (75: all held); prints slot and token\n"
"  renew NAME --slot I --token T [--ttl DUR]    extend a slot (1: lost)\n"
"  release NAME --slot I --token T              give a slot back (1: not held)\n"
"  show NAME            the limit's state (1: no such limit)\n"
"  list                 every limit, one line each\n"
"  reset NAME           forget the grants of its rate limits (1: no such limit)\n"
"\n"
"options:\n"
"  --rate N/s|N/m|N/h|N/d   token bucket rate\n"
"  --burst B            grants at once on top of the rate (default 1)\n"
"  --window DUR --max M at most M grants in any window of DUR (exact)\n"
"  -n, --count COUNT    grants to take at once (default 1)\n"
"  --wait[=DUR]         wait for the grant or slot, at most DUR (default forever)\n"
"  --concurrency N      slots (at most N holders at once)\n"
"  --ttl DUR            slot lease (default 30s; renew: the slot's own)\n"
"  --owner ID           who holds a slot, for show (default HOST:PID)\n"
"  --slot I, --token T  the slot and fencing token acquire printed\n"
"  -E, --conflict-exit-code CODE   run: exit status when limited (default 75)\n"
"  -g, --grace DUR      run: SIGTERM to SIGKILL of the command's processes (5s)\n"
"  -d, --dir DIR        workspace (default $SW_DIR, else $XDG_STATE_HOME/sw)\n"
"  --spans[=DEST]       an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"environment: SW_CLOCK_SKEW (slot expiry margin, default 2s), SW_SYNC, SW_DIR\n"
"exit: 0 ok, 1 not held / stale token / no such limit, 64 usage, 65 bad data,\n"
"      69 workspace unavailable, 74 I/O error, 75 limited / all slots held /\n"
"      timed out / slot lost; run: else COMMAND's status\n";

enum { O_RATE = SW_OPT_FIRST_FREE, O_BURST, O_WINDOW, O_MAX, O_WAIT, O_CONC, O_TTL, O_OWNER,
       O_SLOT, O_TOKEN };

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"rate", required_argument, 0, O_RATE},
	{"burst", required_argument, 0, O_BURST},
	{"window", required_argument, 0, O_WINDOW},
	{"max", required_argument, 0, O_MAX},
	{"count", required_argument, 0, 'n'},
	{"wait", optional_argument, 0, O_WAIT},
	{"concurrency", required_argument, 0, O_CONC},
	{"ttl", required_argument, 0, O_TTL},
	{"owner", required_argument, 0, O_OWNER},
	{"slot", required_argument, 0, O_SLOT},
	{"token", required_argument, 0, O_TOKEN},
	{"conflict-exit-code", required_argument, 0, 'E'},
	{"grace", required_argument, 0, 'g'},
	{0, 0, 0, 0}
};

#define TTL_DEFAULT_NS (30 * SW_NS_PER_SEC)
#define GRACE_DEFAULT_NS (5 * SW_NS_PER_SEC)

struct opts {
	bool quiet;
	bool rate_given, burst_given, window_given, max_given;
	struct sw_limit_spec spec;
	int64_t count;
	bool wait;
	int64_t wait_ns;          /* 0 with wait: forever */
	int64_t conc;             /* 0: no slots */
	int64_t ttl_ns;           /* 0: default */
	const char *owner;
	int64_t slot;
	uint64_t token;
	bool token_given;
	int conflict;
	int64_t grace_ns;
	const char *name;
	char **cmd;
};

/* ---- helpers ---------------------------------------------------------- */

/* ns as "250ms" or "1.5s", rounded up to the millisecond. */
static void fmt_dur(int64_t ns, char out[32])
{
	int64_t ms = ns <= 0 ? 0 : (ns + 999999) / 1000000;
	if (ms < 1000)
		snprintf(out, 32, "%lldms", (long long)ms);
	else
		snprintf(out, 32, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
}

/* --wait as a time budget: -1 none, else ns (INT64_MAX: forever). */
static int64_t wait_budget(const struct opts *o)
{
	return !o->wait ? -1 : o->wait_ns ? o->wait_ns : INT64_MAX;
}

static bool has_rate(const struct opts *o)
{
	return o->rate_given || o->window_given;
}

static void span_grant(struct sw_span *sp, const struct sw_limit_grant *g)
{
	sw_span_str(sp, "sw.limit.kind", "rate");
	sw_span_int(sp, "sw.limit.count", (int64_t)g->count);
	sw_span_str(sp, "sw.limit.granted", g->granted ? "true" : "false");
	if (g->granted)
		sw_span_int(sp, "sw.limit.wait_ms", (g->at_ns - g->now_ns) / 1000000);
	else
		sw_span_int(sp, "sw.limit.retry_after_ms", (g->retry_ns - g->now_ns + 999999) / 1000000);
}

static json_t *grant_json(const struct opts *o, const struct sw_limit_grant *g)
{
	json_t *j = json_pack("{s:s,s:b,s:I}", "name", o->name, "granted", g->granted, "count",
			      (json_int_t)g->count);
	if (!j)
		return NULL;
	if (g->granted) {
		json_object_set_new(j, "available", json_integer((json_int_t)g->available));
		json_object_set_new(j, "waited_ms", json_integer((g->at_ns - g->now_ns) / 1000000));
		sw_json_set_time(j, "granted_at", g->recorded_ns);
	} else {
		json_object_set_new(j, "retry_after_ms", json_integer((g->retry_ns - g->now_ns + 999999) / 1000000));
		sw_json_set_time(j, "retry_at", g->retry_ns);
	}
	return j;
}

/* Takes (reserving within --wait) and sleeps until the grant is due.
 * 0 granted, 75 limited, else a code; the reason in err. */
static int take_and_wait(const struct opts *o, const struct sw_ws *ws, int64_t budget,
			 struct sw_limit_grant *g, struct sw_err *err)
{
	int rc = sw_limit_take(ws, o->name, &o->spec, (uint64_t)o->count, budget, g, err);
	if (rc == EX_TEMPFAIL && g->retry_ns) {
		char d[32];
		fmt_dur(g->retry_ns - g->now_ns, d);
		sw_err_msg(err, "limit '%s' is limited; retry after %s", o->name, d);
	}
	if (rc)
		return rc;
	/* a reservation: the grant is ours from its time on */
	int64_t left = g->at_ns - sw_now_ns();
	if (left > 0)
		sw_sleep_ns(left);
	return 0;
}

/* Acquires a slot, polling with jitter while the budget allows: a
 * release on another host wakes nobody here. */
static int acquire_waiting(const struct opts *o, const struct sw_ws *ws, int64_t deadline,
			   struct sw_limit_slot *s, struct sw_err *err)
{
	int64_t ttl = o->ttl_ns ? o->ttl_ns : TTL_DEFAULT_NS;
	for (;;) {
		int64_t free_ns;
		int rc = sw_limit_acquire(ws, o->name, (unsigned)o->conc, o->owner, ttl, s, &free_ns, err);
		int64_t now = sw_now_ns();
		if (rc != EX_TEMPFAIL || now >= deadline)
			return rc;
		int64_t d = free_ns - now;
		if (d > 200000000)
			d = 200000000;
		if (d < 5000000)
			d = 5000000;
		d += (int64_t)sw_rand_below(20000) * 1000;   /* 0-20 ms jitter */
		if (d > deadline - now)
			d = deadline - now;
		sw_sleep_ns(d);
	}
}

static int64_t deadline_of(int64_t budget)
{
	if (budget < 0)
		return 0;
	int64_t now = sw_now_ns();
	return budget > INT64_MAX - now ? INT64_MAX : now + budget;
}

static json_t *slot_json(const struct opts *o, const struct sw_limit_slot *s)
{
	json_t *j = sw_lease_json(&s->lease);
	if (!j)
		return NULL;
	json_object_set_new(j, "name", json_string(o->name));
	json_object_set_new(j, "slot", json_integer(s->slot));
	return j;
}

static void span_slot(struct sw_span *sp, unsigned slot, const struct sw_lease *l)
{
	sw_span_str(sp, "sw.limit.kind", "slot");
	if (slot)
		sw_span_int(sp, "sw.limit.slot", slot);
	if (l->token)
		sw_span_int(sp, "sw.limit.token", (int64_t)l->token);
}

/* ---- verbs ------------------------------------------------------------ */

static int cmd_take(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_limit_grant g = {0};
	struct sw_err err;
	int rc = take_and_wait(o, &c->ws, wait_budget(o), &g, &err);
	/* a refusal is an answer, printed; "keeps changing, try again" is not */
	if (rc && !(rc == EX_TEMPFAIL && g.retry_ns)) {
		sw_warn("%s", err.msg);
		return rc;
	}
	span_grant(&c->sp, &g);
	if (rc && !o->quiet)
		sw_warn("%s", err.msg);
	sw_cmd_print(c, grant_json(o, &g));
	return rc;
}

static int cmd_acquire(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_limit_slot s = {0};
	struct sw_err err;
	int rc = acquire_waiting(o, &c->ws, deadline_of(wait_budget(o)), &s, &err);
	span_slot(&c->sp, s.slot, &s.lease);
	if (rc)
		return sw_cmd_refuse(c, rc, &err);   /* 75 is an answer */
	json_t *j = slot_json(o, &s);
	if (!j)
		sw_die(EX_OSERR, "out of memory");
	if (!o->quiet && (sw_json_print(j) < 0 || fflush(stdout) != 0)) {
		/* nobody learnt the token: give the slot back */
		int e = errno;
		struct sw_lease back;
		sw_limit_release(&c->ws, o->name, s.slot, s.lease.token, &back, &err);
		sw_die(EX_IOERR, "writing output: %s; the slot was given back", strerror(e));
	}
	json_decref(j);
	return 0;
}

/* renew and release: the slot and token given, lease.c's answer. */
static int slot_verb(struct sw_cmd *c, bool renew)
{
	struct opts *o = c->opts;
	struct sw_limit_slot s = { .slot = (unsigned)o->slot };
	struct sw_err err;
	sw_span_int(&c->sp, "sw.limit.slot", o->slot);
	sw_span_int(&c->sp, "sw.limit.token", (int64_t)o->token);
	int rc = renew ? sw_limit_renew(&c->ws, o->name, s.slot, o->token, o->ttl_ns, &s.lease, &err)
		       : sw_limit_release(&c->ws, o->name, s.slot, o->token, &s.lease, &err);
	return sw_cmd_reply(c, rc, rc ? NULL : slot_json(o, &s), &err);
}

static int cmd_renew(struct sw_cmd *c)
{
	return slot_verb(c, true);
}

static int cmd_release(struct sw_cmd *c)
{
	return slot_verb(c, false);
}

static int cmd_show(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	json_t *j = NULL;
	int rc = sw_limit_show(&c->ws, o->name, &j, &err);
	return sw_cmd_reply(c, rc, j, &err);
}

static int cmd_list(struct sw_cmd *c)
{
	struct sw_err err;
	int rc = sw_limit_list(&c->ws, sw_cmd_print_each, c, &err);
	if (rc)
		sw_warn("%s", err.msg);
	return rc;
}

static int cmd_reset(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	json_t *j = NULL;
	int rc = sw_limit_reset(&c->ws, o->name, &err);
	if (!rc)
		rc = sw_limit_show(&c->ws, o->name, &j, &err);
	return sw_cmd_reply(c, rc, j, &err);
}

/* ---- run -------------------------------------------------------------- */

struct slot_hold {
	const struct sw_ws *ws;
	const char *name;
	unsigned slot;
	uint64_t token;
};

static int renew_slot(void *arg, int64_t ttl_ns, int64_t *expires_ns, struct sw_err *err)
{
	struct slot_hold *h = arg;
	struct sw_lease l;
	int rc = sw_limit_renew(h->ws, h->name, h->slot, h->token, ttl_ns, &l, err);
	if (rc == 0)
		*expires_ns = l.expires_ns;
	return rc;
}

/* The rate first, then a slot: a command starts only with both, and the
 * rate counts starts.  (A slot refused after the grant wastes the grant:
 * the rate is an upper bound.) */
static int run_admit(struct sw_cmd *c, struct sw_limit_slot *s, struct sw_err *err)
{
	struct opts *o = c->opts;
	int64_t budget = wait_budget(o), deadline = deadline_of(budget);
	int rc = 0;
	if (has_rate(o)) {
		struct sw_limit_grant g = {0};
		rc = take_and_wait(o, &c->ws, budget, &g, err);
		span_grant(&c->sp, &g);
		if (rc)
			return rc;
	}
	if (o->conc) {
		rc = acquire_waiting(o, &c->ws, deadline, s, err);
		span_slot(&c->sp, s->slot, &s->lease);
	}
	return rc;
}

static int cmd_run(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_limit_slot s = {0};
	struct sw_err err;
	int rc = run_admit(c, &s, &err);
	if (rc)
		return sw_cmd_refuse(c, rc, &err) == EX_TEMPFAIL ? o->conflict : rc;
	char slot[16] = "", tok[24] = "", what[SW_NAME_MAX + 64];
	const char *env[] = { "SW_LIMIT_NAME", o->name, "SW_LIMIT_SLOT", slot, "SW_LIMIT_TOKEN", tok, NULL };
	if (o->conc) {
		snprintf(slot, sizeof slot, "%u", s.slot);
		snprintf(tok, sizeof tok, "%llu", (unsigned long long)s.lease.token);
	} else {
		env[2] = NULL;     /* no slot: neither variable */
		unsetenv("SW_LIMIT_SLOT");
		unsetenv("SW_LIMIT_TOKEN");
	}
	snprintf(what, sizeof what, "slot %u of limit '%s'", s.slot, o->name);
	struct slot_hold sh = { &c->ws, o->name, s.slot, s.lease.token };
	struct sw_hold h = {
		.grace_ns = o->grace_ns, .ttl_ns = o->conc ? s.lease.ttl_ns : 0,
		.expires_ns = s.lease.expires_ns, .what = what, .renew = renew_slot, .arg = &sh,
	};
	struct sw_hold_result res;
	if (sw_cmd_hold(c, &h, env, &res) < 0) {
		int e = errno;
		if (o->conc)
			sw_limit_release(&c->ws, o->name, s.slot, s.lease.token, &s.lease, &err);
		sw_die(EX_OSERR, "starting the guardian process: %s", strerror(e));
	}
	if (o->conc && (!res.lost || res.held_late) &&
	    sw_limit_release(&c->ws, o->name, s.slot, s.lease.token, &s.lease, &err))
		sw_warn("releasing: %s", err.msg);
	return res.lost ? EX_TEMPFAIL : res.status;
}

/* ---- options and main ------------------------------------------------- */

static const int o_take[] = { O_RATE, O_BURST, O_WINDOW, O_MAX, 'n', O_WAIT, 0 };
static const int o_run[] = { O_RATE, O_BURST, O_WINDOW, O_MAX, 'n', O_WAIT, O_CONC, O_TTL, O_OWNER,
			     'E', 'g', 0 };
static const int o_acquire[] = { O_CONC, O_TTL, O_OWNER, O_WAIT, 0 };
static const int o_renew[] = { O_SLOT, O_TOKEN, O_TTL, 0 };
static const int o_release[] = { O_SLOT, O_TOKEN, 0 };
static const int o_none[] = { 0 };

static const struct sw_verb verbs[] = {
	{ "take", cmd_take, "a limit NAME", 1, 1, o_take, SW_CMD_WS | SW_CMD_WS_CREATE },
	/* the first argument after NAME, or everything after "--", is the
	 * command; getopt's leading '+' leaves its own options alone */
	{ "run", cmd_run, "a limit NAME", 1, 1, o_run, SW_CMD_WS | SW_CMD_WS_CREATE | SW_CMD_COMMAND },
	{ "acquire", cmd_acquire, "a limit NAME", 1, 1, o_acquire, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "renew", cmd_renew, "a limit NAME", 1, 1, o_renew, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "release", cmd_release, "a limit NAME", 1, 1, o_release, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "show", cmd_show, "a limit NAME", 1, 1, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "list", cmd_list, "", 0, 0, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "reset", cmd_reset, "a limit NAME", 1, 1, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ 0 }
};

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	const char *why;
	int64_t v;
	int rc;
	switch (code) {
	case O_RATE:
		if (sw_rate_parse(arg, &o->spec.rate, &why) < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --rate '%.40s': %s", arg, why);
		o->rate_given = true;
		return 0;
	case O_BURST:
		if ((rc = sw_cmd_int(c, "--burst", arg, 1, SW_LIMIT_BURST_MAX, &v)))
			return rc;
		o->spec.burst = (uint64_t)v;
		o->burst_given = true;
		return 0;
	case O_WINDOW:
		if ((rc = sw_cmd_duration(c, "--window", arg, &o->spec.window_ns)))
			return rc;
		if (o->spec.window_ns < 1000000)
			return sw_cmd_err(c, EX_USAGE, "bad --window '%s': want at least 1ms", arg);
		o->window_given = true;
		return 0;
	case O_MAX:
		if ((rc = sw_cmd_int(c, "--max", arg, 1, SW_LIMIT_WINDOW_MAX, &v)))
			return rc;
		o->spec.max = (uint64_t)v;
		o->max_given = true;
		return 0;
	case 'n': return sw_cmd_int(c, "-n", arg, 1, SW_LIMIT_BURST_MAX, &o->count);
	case O_WAIT: {
		bool given;
		o->wait = true;
		return sw_cmd_opt_duration(c, "--wait", arg, &o->wait_ns, &given);
	}
	case O_CONC: return sw_cmd_int(c, "--concurrency", arg, 1, SW_LIMIT_SLOTS_MAX, &o->conc);
	case O_TTL: return sw_cmd_ttl(c, "--ttl", arg, 1000000, &o->ttl_ns);
	case O_OWNER:
		if (!(rc = sw_cmd_name(c, "owner", arg)))
			o->owner = arg;
		return rc;
	case O_SLOT: return sw_cmd_int(c, "--slot", arg, 1, SW_LIMIT_SLOTS_MAX, &o->slot);
	case O_TOKEN:
		if (!sw_lease_token_parse(arg, &o->token))
			return sw_cmd_err(c, EX_DATAERR, "bad token '%.40s': want the number acquire printed", arg);
		o->token_given = true;
		return 0;
	case 'E': return sw_cmd_exit_code(c, arg, &o->conflict);
	case 'g': return sw_cmd_duration(c, "--grace", arg, &o->grace_ns);
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

/* Which limit the options describe: a bucket or a window, never both. */
static int check_spec(struct sw_cmd *c, struct opts *o)
{
	if (o->rate_given && o->window_given)
		return sw_cmd_err(c, EX_USAGE, "--rate and --window exclude each other");
	if (o->burst_given && !o->rate_given)
		return sw_cmd_err(c, EX_USAGE, "--burst goes with --rate");
	if (o->window_given != o->max_given)
		return sw_cmd_err(c, EX_USAGE, "--window and --max go together");
	if (o->count && !has_rate(o))
		return sw_cmd_err(c, EX_USAGE, "-n goes with --rate or --window");
	if (!o->count)
		o->count = 1;
	if (!has_rate(o))
		return 0;
	o->spec.kind = o->rate_given ? SW_LIMIT_BUCKET : SW_LIMIT_WINDOW;
	if (!o->burst_given)
		o->spec.burst = 1;
	const char *why = sw_limit_spec_problem(&o->spec, (uint64_t)o->count);
	return why ? sw_cmd_err(c, EX_USAGE, "%s", why) : 0;
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	o->quiet = c->co.quiet;
	o->cmd = c->command;
	int rc;
	if ((rc = sw_cmd_named(c, "limit name", &o->name)))
		return rc;
	if ((rc = check_spec(c, o)))
		return rc;
	const int *p = c->verb->opts;
	if (p == o_take && !has_rate(o))
		return sw_cmd_err(c, EX_USAGE, "take needs --rate or --window and --max");
	if (p == o_run && !has_rate(o) && !o->conc)
		return sw_cmd_err(c, EX_USAGE, "run needs --rate, --window and --max, or --concurrency");
	if (p == o_acquire && !o->conc)
		return sw_cmd_err(c, EX_USAGE, "--concurrency is required");
	if ((p == o_renew || p == o_release) && (!o->slot || !o->token_given))
		return sw_cmd_err(c, EX_USAGE, "--slot and --token are required");
	return 0;
}

static const struct sw_prog prog = {
	.name = "sw-limit", .usage = usage, .longopts = longopts, .shortopts = "n:E:g:",
	.verbs = verbs, .option = option, .check = check,
	.name_attr = "sw.limit.name",
};

int main(int argc, char **argv)
{
	struct opts o = { .conflict = EX_TEMPFAIL, .grace_ns = GRACE_DEFAULT_NS };
	char owner[SW_LEASE_OWNER_MAX + 1];
	sw_lease_default_owner(owner);
	o.owner = owner;
	return sw_cmd_main(&prog, argc, argv, &o);
}
