/* sw-breaker — a circuit breaker around a command, shared by every host
 * of the workspace: closed (run, count failures), open (refuse at once),
 * half-open (exactly K probe runs across all hosts).  check and record
 * serve scripts that make the call themselves.  See sw-breaker(1); the
 * breaker is lib/breaker.c, the run loop lib/hold.c. */
#include "breaker.h"
#include "clock.h"
#include "cmd.h"
#include "err.h"
#include "hold.h"
#include "id.h"
#include "json.h"
#include "lease.h"
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
"usage: sw-breaker VERB [options] [args]\n"
"\n"
"  run NAME [POLICY] [--timeout DUR] [--fail-on CODES] [-E CODE] [-g DUR] [--] COMMAND [ARG...]\n"
"                       closed: run COMMAND and count its failure (non-zero exit,\n"
"                       a code in --fail-on, past --timeout); open: exit 75 (-E\n"
"                       CODE) at once; half-open: one of K probe runs, or 75\n"
"  check NAME [POLICY]  0 may call (half-open: a probe token is printed), 75 open\n"
"  record NAME --ok|--fail [--token T] [POLICY]\n"
"                       record the outcome of a call (1: stale probe token)\n"
"  show NAME            the breaker's state (1: no such breaker)\n"
"  list                 every breaker, one line each\n"
"  reset NAME           close it and forget its failures\n"
"  trip NAME [--cooldown DUR]   open it now\n"
"\n"
"POLICY (the same for every caller of a breaker):\n"
"  --failures N         open after N failures within --window (default 5)\n"
"  --window DUR         the window failures are counted in (default 60s)\n"
"  --ratio R            open when failures/calls in the window reach R (0-1)...\n"
"  --min-calls M        ...over at least M calls (default 10)\n"
"  --cooldown DUR       open this long before probing (default 30s)\n"
"  --max-cooldown DUR   a failed probe doubles the cooldown up to this (default\n"
"                       10 x --cooldown)\n"
"  --probes K           probe runs in half-open; K successes close it (default 1)\n"
"  --ttl DUR            a probe's lease, renewed while it runs (default 30s)\n"
"options:\n"
"  --timeout DUR        run: stop COMMAND and what it started after DUR (a\n"
"                       failure; exit 124)\n"
"  --fail-on CODES      run: only these exit codes fail (1,2,64-78); default any\n"
"                       but 0\n"
"  --ok, --fail         record: the outcome\n"
"  --token T            record: the probe token check printed\n"
"  -E, --conflict-exit-code CODE   run: exit status when refused (default 75)\n"
"  -g, --grace DUR      run: SIGTERM to SIGKILL of the command's processes (5s)\n"
"  -d, --dir DIR        workspace (default $SW_DIR, else $XDG_STATE_HOME/sw)\n"
"  --spans[=DEST]       an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"environment: SW_CLOCK_SKEW (probe expiry margin, default 2s), SW_SYNC, SW_DIR\n"
"exit: 0 ok, 1 stale probe token / no such breaker, 64 usage, 65 bad data,\n"
"      69 workspace unavailable, 74 I/O error, 75 open / probes out / probe\n"
"      lost; run: else COMMAND's status (124: timed out)\n";

enum { O_FAILURES = SW_OPT_FIRST_FREE, O_WINDOW, O_RATIO, O_MINCALLS, O_COOLDOWN, O_MAXCOOL, O_PROBES,
       O_TTL, O_TIMEOUT, O_FAILON, O_OK, O_FAIL, O_TOKEN };

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"failures", required_argument, 0, O_FAILURES},
	{"window", required_argument, 0, O_WINDOW},
	{"ratio", required_argument, 0, O_RATIO},
	{"min-calls", required_argument, 0, O_MINCALLS},
	{"cooldown", required_argument, 0, O_COOLDOWN},
	{"max-cooldown", required_argument, 0, O_MAXCOOL},
	{"probes", required_argument, 0, O_PROBES},
	{"ttl", required_argument, 0, O_TTL},
	{"timeout", required_argument, 0, O_TIMEOUT},
	{"fail-on", required_argument, 0, O_FAILON},
	{"ok", no_argument, 0, O_OK},
	{"fail", no_argument, 0, O_FAIL},
	{"token", required_argument, 0, O_TOKEN},
	{"conflict-exit-code", required_argument, 0, 'E'},
	{"grace", required_argument, 0, 'g'},
	{0, 0, 0, 0}
};

#define GRACE_DEFAULT_NS (5 * SW_NS_PER_SEC)
#define TIMEOUT_STATUS 124      /* as timeout(1) */

struct opts {
	bool quiet;
	struct sw_breaker_spec spec;
	bool failures_given, ratio_given, min_calls_given, max_cool_given;
	int64_t timeout_ns;
	bool fail_on_given;
	bool fail_on[256];
	int outcome;              /* record: 1 ok, 2 fail */
	uint64_t token;
	int conflict;
	int64_t grace_ns;
	const char *name;
	char **cmd;
};

/* ---- helpers ---------------------------------------------------------- */

static void span_state(struct sw_span *sp, enum sw_breaker_state st, uint64_t trips)
{
	sw_span_str(sp, "sw.breaker.state", sw_breaker_state_name(st));
	sw_span_int(sp, "sw.breaker.trips", (int64_t)trips);
}

/* A state change as an attribute of the operation's span: "closed->open". */
static void span_change(struct sw_span *sp, enum sw_breaker_state a, enum sw_breaker_state b)
{
	char ch[40];
	if (a == b)
		return;
	snprintf(ch, sizeof ch, "%s->%s", sw_breaker_state_name(a), sw_breaker_state_name(b));
	sw_span_str(sp, "sw.breaker.state_change", ch);
}

static json_t *pass_json(const struct opts *o, const struct sw_breaker_pass *p)
{
	json_t *j = json_pack("{s:s,s:s,s:b,s:I}", "name", o->name, "state", sw_breaker_state_name(p->state),
			      "allowed", p->allowed, "trips", (json_int_t)p->trips);
	if (!j)
		return NULL;
	if (p->probe.slot) {
		json_t *pr = json_pack("{s:I,s:I}", "slot", (json_int_t)p->probe.slot, "token",
				       (json_int_t)p->probe.token);
		sw_json_set_time(pr, "expires_at", p->probe.expires_ns);
		json_object_set_new(j, "probe", pr);
	}
	if (!p->allowed)
		sw_json_set_time(j, "retry_at", p->retry_ns);
	return j;
}

/* ---- verbs ------------------------------------------------------------ */

static int cmd_check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_breaker_pass p = {0};
	struct sw_err err;
	int rc = sw_breaker_admit(&c->ws, o->name, &o->spec, &p, &err);
	/* a refusal is an answer, printed; "keeps changing, try again" is not */
	if (rc && !(rc == EX_TEMPFAIL && p.retry_ns)) {
		sw_warn("%s", err.msg);
		return rc;
	}
	span_state(&c->sp, p.state, p.trips);
	if (p.probe.slot)
		sw_span_int(&c->sp, "sw.breaker.probe.token", (int64_t)p.probe.token);
	sw_cmd_print(c, pass_json(o, &p));
	return rc;
}

static int cmd_record(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_breaker_rec r = {0};
	struct sw_err err;
	sw_span_str(&c->sp, "sw.breaker.outcome", o->outcome == 1 ? "ok" : "fail");
	int rc = sw_breaker_record(&c->ws, o->name, &o->spec, o->outcome == 1, o->token, &r, &err);
	if (rc) {
		sw_warn("%s", err.msg);
		return rc;
	}
	span_state(&c->sp, r.after, r.trips);
	span_change(&c->sp, r.before, r.after);
	json_t *j = json_pack("{s:s,s:s,s:b,s:I}", "name", o->name, "state", sw_breaker_state_name(r.after),
			      "counted", r.counted, "trips", (json_int_t)r.trips);
	if (j && r.after != SW_BREAKER_CLOSED)
		sw_json_set_time(j, "open_until", r.open_until_ns);
	sw_cmd_print(c, j);
	return 0;
}

static int cmd_show(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	json_t *j = NULL;
	int rc = sw_breaker_show(&c->ws, o->name, &j, &err);
	if (!rc)
		sw_span_str(&c->sp, "sw.breaker.state", sw_json_str(j, "state"));
	return sw_cmd_reply(c, rc, j, &err);
}

static int cmd_list(struct sw_cmd *c)
{
	struct sw_err err;
	int rc = sw_breaker_list(&c->ws, sw_cmd_print_each, c, &err);
	if (rc)
		sw_warn("%s", err.msg);
	return rc;
}

/* trip and reset: the change, then what show says. */
static int change_verb(struct sw_cmd *c, bool trip)
{
	struct opts *o = c->opts;
	struct sw_err err;
	json_t *j = NULL;
	int rc = trip ? sw_breaker_trip(&c->ws, o->name, &o->spec, &err)
		      : sw_breaker_reset(&c->ws, o->name, &o->spec, &err);
	if (!rc)
		rc = sw_breaker_show(&c->ws, o->name, &j, &err);
	if (!rc)
		sw_span_str(&c->sp, "sw.breaker.state", sw_json_str(j, "state"));
	return sw_cmd_reply(c, rc, j, &err);
}

static int cmd_trip(struct sw_cmd *c)
{
	return change_verb(c, true);
}

static int cmd_reset(struct sw_cmd *c)
{
	return change_verb(c, false);
}

/* ---- run -------------------------------------------------------------- */

struct probe_hold {
	const struct sw_ws *ws;
	const struct opts *o;
	uint64_t episode, token;
};

static int renew_probe(void *arg, int64_t ttl_ns, int64_t *expires_ns, struct sw_err *err)
{
	struct probe_hold *h = arg;
	(void)ttl_ns;    /* the spec's probe TTL */
	int rc = sw_breaker_probe_renew(h->ws, h->o->name, &h->o->spec, h->episode, h->token, expires_ns, err);
	return rc == SW_BREAKER_EPISODE_OVER ? SW_HOLD_DONE : rc;
}

static bool failed(const struct opts *o, const struct sw_hold_result *res)
{
	if (res->timed_out || res->spawn_errno)
		return true;
	if (o->fail_on_given)
		return res->status > 0 && res->status < 256 && o->fail_on[res->status];
	return res->status != 0;
}

/* The outcome into the breaker; a failure to record is a warning (the
 * command's status is what the caller asked for). */
static void record_run(struct sw_cmd *c, const struct sw_breaker_pass *p, bool ok)
{
	struct opts *o = c->opts;
	struct sw_breaker_rec r;
	struct sw_err err;
	sw_span_str(&c->sp, "sw.breaker.outcome", ok ? "ok" : "fail");
	/* a success in closed failures mode changes nothing: no round trip */
	if (ok && !p->probe.slot && !o->spec.ratio_mode)
		return;
	int rc = sw_breaker_record(&c->ws, o->name, &o->spec, ok, p->probe.token, &r, &err);
	if (rc == SW_EX_FALSE)
		return;     /* a probe whose half-open period ended meanwhile */
	if (rc) {
		sw_warn("recording the outcome: %s", err.msg);
		return;
	}
	span_state(&c->sp, r.after, r.trips);
	span_change(&c->sp, p->state, r.after);
	if (r.after == SW_BREAKER_OPEN && r.before != SW_BREAKER_OPEN && !o->quiet) {
		char t[SW_TIME_LEN];
		sw_fmt_time(r.open_until_ns, t);
		sw_warn("breaker '%s' is now open (trip %llu) until %s", o->name, (unsigned long long)r.trips, t);
	}
}

static int cmd_run(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_breaker_pass p = {0};
	struct sw_err err;
	int rc = sw_breaker_admit(&c->ws, o->name, &o->spec, &p, &err);
	span_state(&c->sp, p.state, p.trips);
	if (rc == EX_TEMPFAIL) {
		if (!o->quiet)
			sw_warn("%s; not running %s", err.msg, o->cmd[0]);
		return o->conflict;
	}
	if (rc) {
		sw_warn("%s", err.msg);
		return rc;
	}
	char tok[24], what[SW_NAME_MAX + 64];
	snprintf(tok, sizeof tok, "%llu", (unsigned long long)p.probe.token);
	const char *env[] = { "SW_BREAKER_NAME", o->name, "SW_BREAKER_STATE", sw_breaker_state_name(p.state),
			      "SW_BREAKER_PROBE_TOKEN", tok, NULL };
	if (!p.probe.slot) {
		env[4] = NULL;
		unsetenv("SW_BREAKER_PROBE_TOKEN");
	} else {
		sw_span_int(&c->sp, "sw.breaker.probe.token", (int64_t)p.probe.token);
	}
	snprintf(what, sizeof what, "probe %llu of breaker '%s'", (unsigned long long)p.probe.token, o->name);
	struct probe_hold ph = { &c->ws, o, p.episode, p.probe.token };
	struct sw_hold h = {
		.grace_ns = o->grace_ns,
		.timeout_ns = o->timeout_ns, .ttl_ns = p.probe.slot ? o->spec.probe_ttl_ns : 0,
		.expires_ns = p.probe.expires_ns, .what = what, .renew = renew_probe, .arg = &ph,
		/* a call let through while closed holds nothing that outlives
		 * it: it is spared the guardian's fork */
		.no_guardian = !p.probe.slot,
	};
	struct sw_hold_result res;
	if (sw_cmd_hold(c, &h, env, &res) < 0)
		sw_die(EX_OSERR, "starting the guardian process: %s", strerror(errno));
	/* a lost probe's slot has gone to another prober: its outcome is not
	 * this run's to report */
	if (res.lost)
		return EX_TEMPFAIL;
	record_run(c, &p, !failed(o, &res));
	return res.timed_out ? TIMEOUT_STATUS : res.status;
}

/* ---- options and main ------------------------------------------------- */

#define POLICY O_FAILURES, O_WINDOW, O_RATIO, O_MINCALLS, O_COOLDOWN, O_MAXCOOL, O_PROBES, O_TTL
static const int o_run[] = { POLICY, O_TIMEOUT, O_FAILON, 'E', 'g', 0 };
static const int o_check[] = { POLICY, 0 };
static const int o_record[] = { POLICY, O_OK, O_FAIL, O_TOKEN, 0 };
static const int o_trip[] = { POLICY, 0 };
static const int o_none[] = { 0 };

static const struct sw_verb verbs[] = {
	/* the first argument after NAME, or everything after "--", is the
	 * command; getopt's leading '+' leaves its own options alone */
	{ "run", cmd_run, "a breaker NAME", 1, 1, o_run, SW_CMD_WS | SW_CMD_WS_CREATE | SW_CMD_COMMAND },
	{ "check", cmd_check, "a breaker NAME", 1, 1, o_check, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "record", cmd_record, "a breaker NAME", 1, 1, o_record, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "show", cmd_show, "a breaker NAME", 1, 1, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "list", cmd_list, "", 0, 0, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "reset", cmd_reset, "a breaker NAME", 1, 1, o_trip, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "trip", cmd_trip, "a breaker NAME", 1, 1, o_trip, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ 0 }
};

/* "1,2,64-78": exit codes 1 to 255. */
static int parse_codes(struct sw_cmd *c, struct opts *o, const char *arg)
{
	char buf[256];
	if (strlen(arg) >= sizeof buf)
		return sw_cmd_err(c, EX_USAGE, "bad --fail-on: too long");
	snprintf(buf, sizeof buf, "%s", arg);
	char *save, *tok = strtok_r(buf, ",", &save);
	if (!tok)
		return sw_cmd_err(c, EX_USAGE, "bad --fail-on '%s': want codes such as 1,2,64-78", arg);
	for (; tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		int64_t lo, hi;
		if (dash)
			*dash = 0;
		if (sw_parse_i64(tok, 1, 255, &lo) < 0 || sw_parse_i64(dash ? dash + 1 : tok, lo, 255, &hi) < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --fail-on '%.60s': want codes from 1 to 255 such as "
					  "1,2,64-78", arg);
		for (int64_t k = lo; k <= hi; k++)
			o->fail_on[k] = true;
	}
	o->fail_on_given = true;
	return 0;
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	struct sw_breaker_spec *s = &o->spec;
	int64_t v;
	int rc;
	switch (code) {
	case O_FAILURES:
		o->failures_given = true;
		rc = sw_cmd_int(c, "--failures", arg, 1, SW_BREAKER_FAILURES_MAX, &v);
		s->failures = (uint64_t)v;
		return rc;
	case O_WINDOW: return sw_cmd_duration(c, "--window", arg, &s->window_ns);
	case O_RATIO:
		o->ratio_given = true;
		if ((rc = sw_cmd_real(c, "--ratio", arg, 0, 1, &s->ratio)))
			return rc;
		return s->ratio > 0 ? 0 : sw_cmd_err(c, EX_USAGE, "bad --ratio '%s': want a fraction above 0", arg);
	case O_MINCALLS:
		o->min_calls_given = true;
		rc = sw_cmd_int(c, "--min-calls", arg, 1, SW_BREAKER_CALLS_MAX, &v);
		s->min_calls = (uint64_t)v;
		return rc;
	case O_COOLDOWN: return sw_cmd_duration(c, "--cooldown", arg, &s->cooldown_ns);
	case O_MAXCOOL:
		o->max_cool_given = true;
		return sw_cmd_duration(c, "--max-cooldown", arg, &s->max_cooldown_ns);
	case O_PROBES:
		rc = sw_cmd_int(c, "--probes", arg, 1, SW_BREAKER_PROBES_MAX, &v);
		s->probes = (unsigned)v;
		return rc;
	case O_TTL: return sw_cmd_ttl(c, "--ttl", arg, 1000000, &s->probe_ttl_ns);
	case O_TIMEOUT:
		if ((rc = sw_cmd_duration(c, "--timeout", arg, &o->timeout_ns)))
			return rc;
		return o->timeout_ns > 0 ? 0 : sw_cmd_err(c, EX_USAGE, "bad --timeout '%s': want more than 0", arg);
	case O_FAILON: return parse_codes(c, o, arg);
	case O_OK:
	case O_FAIL:
		if (o->outcome && o->outcome != (code == O_OK ? 1 : 2))
			return sw_cmd_err(c, EX_USAGE, "--ok and --fail exclude each other");
		o->outcome = code == O_OK ? 1 : 2;
		return 0;
	case O_TOKEN:
		if (!sw_lease_token_parse(arg, &o->token))
			return sw_cmd_err(c, EX_DATAERR, "bad token '%.40s': want the probe token check printed", arg);
		return 0;
	case 'E': return sw_cmd_exit_code(c, arg, &o->conflict);
	case 'g': return sw_cmd_duration(c, "--grace", arg, &o->grace_ns);
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int check_spec(struct sw_cmd *c, struct opts *o)
{
	struct sw_breaker_spec *s = &o->spec;
	if (o->failures_given && (o->ratio_given || o->min_calls_given))
		return sw_cmd_err(c, EX_USAGE, "--failures and --ratio/--min-calls exclude each other");
	if (o->min_calls_given && !o->ratio_given)
		return sw_cmd_err(c, EX_USAGE, "--min-calls goes with --ratio");
	s->ratio_mode = o->ratio_given;
	if (!o->max_cool_given)
		s->max_cooldown_ns = s->cooldown_ns > SW_DURATION_MAX_NS / 10 ? SW_DURATION_MAX_NS : 10 * s->cooldown_ns;
	const char *why = sw_breaker_spec_problem(s);
	return why ? sw_cmd_err(c, EX_USAGE, "%s", why) : 0;
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	o->quiet = c->co.quiet;
	o->cmd = c->command;
	int rc;
	if ((rc = sw_cmd_named(c, "breaker name", &o->name)))
		return rc;
	if ((rc = check_spec(c, o)))
		return rc;
	if (c->verb->opts == o_record && !o->outcome)
		return sw_cmd_err(c, EX_USAGE, "record needs --ok or --fail");
	return 0;
}

static const struct sw_prog prog = {
	.name = "sw-breaker", .usage = usage, .longopts = longopts, .shortopts = "E:g:",
	.verbs = verbs, .option = option, .check = check,
	.name_attr = "sw.breaker.name",
};

static void opts_init(struct opts *o)
{
	*o = (struct opts){ .conflict = EX_TEMPFAIL, .grace_ns = GRACE_DEFAULT_NS };
	o->spec = (struct sw_breaker_spec){ .failures = 5, .min_calls = 10, .window_ns = 60 * SW_NS_PER_SEC,
		.cooldown_ns = 30 * SW_NS_PER_SEC, .probes = 1, .probe_ttl_ns = 30 * SW_NS_PER_SEC };
}

int main(int argc, char **argv)
{
	struct opts o;
	opts_init(&o);
	return sw_cmd_main(&prog, argc, argv, &o);
}
