#include "cmd.h"
#include "clock.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "num.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_cmd_err(struct sw_cmd *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sw_err_vset(&c->err, code, fmt, ap);
	va_end(ap);
	return code;
}

_Noreturn void sw_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sw_die(EX_USAGE, "%s (see %s --help)", msg, sw_prog());
}

/* ---- "did you mean" ------------------------------------------------------ */

/* Edit distance (insert, delete, replace, swap of neighbours), at most 9. */
static int distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > 32 || m > 32)
		return 99;
	int d[34][34];
	for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[n][m];
}

/* The one candidate close to s (at most 2 edits, and fewer than half its
 * length), or NULL when none or several are. */
static const char *nearest(const char *s, const char *const *cand, size_t n)
{
	const char *best = NULL;
	int bd = 3;
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		int d = distance(s, cand[i]);
		if (d < bd) {
			bd = d;
			best = cand[i];
			tie = false;
		} else if (d == bd) {
			tie = true;
		}
	}
	return best && !tie && (size_t)bd * 2 < strlen(best) ? best : NULL;
}

static void did_you_mean(char *buf, size_t n, const char *prefix, const char *s,
			 const char *const *cand, size_t ncand)
{
	const char *near = nearest(s, cand, ncand);
	if (near)
		snprintf(buf, n, " (did you mean '%s%s'?)", prefix, near);
	else
		buf[0] = 0;
}

static int unknown_verb(struct sw_cmd *c, const char *s)
{
	const char *names[64];
	size_t n = 0;
	for (const struct sw_verb *v = c->prog->verbs; v->name && n < 64; v++)
		names[n++] = v->name;
	char hint[96];
	did_you_mean(hint, sizeof hint, "", s, names, n);
	return sw_cmd_err(c, EX_USAGE, "unknown verb '%.60s'%s", s, hint);
}

static int unknown_option(struct sw_cmd *c, const char *arg)
{
	const char *names[128];
	size_t n = 0;
	for (const struct option *o = c->prog->longopts; o->name && n < 128; o++)
		names[n++] = o->name;
	char hint[96] = "";
	if (!strncmp(arg, "--", 2)) {
		char bare[64];
		snprintf(bare, sizeof bare, "%s", arg + 2);
		bare[strcspn(bare, "=")] = 0;
		did_you_mean(hint, sizeof hint, "--", bare, names, n);
	}
	return sw_cmd_err(c, EX_USAGE, "unknown option '%.60s'%s", arg, hint);
}

/* ---- parsing ------------------------------------------------------------- */

const char *sw_cmd_opt_name(const struct sw_cmd *c, int code)
{
	const char *n = sw_opt_name(c->prog->longopts, code);
	return n ? n : "?";
}

static bool verb_takes(const struct sw_verb *v, int code)
{
	for (const int *o = v->opts; o && *o; o++)
		if (*o == code)
			return true;
	return false;
}

static const struct sw_verb *find_verb(const struct sw_prog *p, const char *name)
{
	for (const struct sw_verb *v = p->verbs; v->name; v++)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

static int common_option(struct sw_cmd *c, int code, char *arg, bool *taken)
{
	*taken = true;
	switch (code) {
	case 'd': c->co.dir = arg; return 0;
	case SW_OPT_SPANS: c->co.spans = arg ? arg : "stdout"; return 0;
	case SW_OPT_QUIET: c->co.quiet = true; return 0;
	case 'h': return SW_CMD_HELP;
	case 'V': return SW_CMD_VERSION;
	default: *taken = false; return 0;
	}
}

static int take_arg(struct sw_cmd *c, char *arg)
{
	const struct sw_verb *v = c->verb;
	if (c->nargs >= v->max_args) {
		if (v->max_args == 0)
			return sw_cmd_err(c, EX_USAGE, "%s takes no arguments (got '%.60s')", v->name, arg);
		return sw_cmd_err(c, EX_USAGE, "%s takes %s, not '%.60s' too", v->name, v->args, arg);
	}
	c->args[c->nargs++] = arg;
	return 0;
}

/* Options may come after arguments (`done ID --token T`); after "--"
 * everything is an argument, or the command. */
static int parse_verb(struct sw_cmd *c, const char *shortopts)
{
	const struct sw_verb *v = c->verb;
	optind = 0;      /* a full reset, for callers that parse again */
	opterr = 0;
	for (;;) {
		int code = getopt_long(c->argc, c->argv, shortopts, c->prog->longopts, NULL);
		if (code == -1) {
			if (optind >= c->argc)
				break;
			bool dashdash = optind > 1 && !strcmp(c->argv[optind - 1], "--");
			if ((v->flags & SW_CMD_COMMAND) && (dashdash || c->nargs >= v->max_args)) {
				/* `run -- NAME COMMAND`: the arguments the verb needs
				 * come first */
				while (c->nargs < v->min_args && optind < c->argc)
					c->args[c->nargs++] = c->argv[optind++];
				c->command = c->argv + optind;
				break;
			}
			int rc = take_arg(c, c->argv[optind++]);
			if (rc)
				return rc;
			while (dashdash && optind < c->argc && rc == 0)
				rc = take_arg(c, c->argv[optind++]);
			if (rc)
				return rc;
			if (dashdash)
				break;   /* the count and prog.check, as for any arguments */
			continue;
		}
		if (code == '?')
			return unknown_option(c, c->argv[optind - 1]);
		if (code == ':')
			return sw_cmd_err(c, EX_USAGE, "option '%.60s' needs a value", c->argv[optind - 1]);
		bool taken;
		int rc = common_option(c, code, optarg, &taken);
		if (rc)
			return rc;
		if (taken)
			continue;
		if (!verb_takes(v, code))
			return sw_cmd_err(c, EX_USAGE, "option --%s does not go with %s",
					  sw_cmd_opt_name(c, code), v->name);
		if ((rc = c->prog->option(c, code, optarg)))
			return rc;
	}
	if (c->nargs < v->min_args)
		return sw_cmd_err(c, EX_USAGE, "%s needs %s", v->name, v->args);
	if ((v->flags & SW_CMD_COMMAND) && (!c->command || !c->command[0]))
		return sw_cmd_err(c, EX_USAGE, "%s needs a COMMAND (%s %s [options] %s%s-- COMMAND [ARGS...])",
				  v->name, c->prog->name, v->name, v->args, *v->args ? " " : "");
	return c->prog->check ? c->prog->check(c) : 0;
}

int sw_cmd_parse(struct sw_cmd *c, const struct sw_prog *p, int argc, char **argv, void *opts)
{
	memset(c, 0, sizeof *c);
	c->prog = p;
	c->opts = opts;
	c->ws.fd = -1;
	if (argc < 2)
		return sw_cmd_err(c, EX_USAGE, "no verb");
	if (argv[1][0] == '-') {
		if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
			return SW_CMD_HELP;
		if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
			return SW_CMD_VERSION;
		return sw_cmd_err(c, EX_USAGE, "no verb before '%.60s'", argv[1]);
	}
	c->verb = find_verb(p, argv[1]);
	if (!c->verb)
		return unknown_verb(c, argv[1]);
	c->argc = argc - 1;
	c->argv = argv + 1;
	c->args = calloc((size_t)argc, sizeof *c->args);
	if (!c->args)
		return sw_cmd_err(c, EX_SOFTWARE, "out of memory");
	char shortopts[128];
	snprintf(shortopts, sizeof shortopts, "+:%s%s", SW_COMMON_SHORTOPTS, p->shortopts);
	return parse_verb(c, shortopts);
}

void sw_cmd_done(struct sw_cmd *c)
{
	free(c->args);
	c->args = NULL;
}

/* ---- option values ----------------------------------------------------- */

int sw_cmd_int(struct sw_cmd *c, const char *what, const char *s, int64_t min, int64_t max, int64_t *v)
{
	if (sw_parse_i64(s, min, max, v) == 0)
		return 0;
	return sw_cmd_err(c, EX_USAGE, "bad %s '%.40s': want a whole number from %lld to %lld", what, s,
			  (long long)min, (long long)max);
}

int sw_cmd_real(struct sw_cmd *c, const char *what, const char *s, double min, double max, double *v)
{
	if (sw_parse_real(s, min, max, v) == 0)
		return 0;
	return sw_cmd_err(c, EX_USAGE, "bad %s '%.40s': want a decimal number from %g to %g", what, s, min, max);
}

int sw_cmd_duration(struct sw_cmd *c, const char *what, const char *s, int64_t *ns)
{
	if (sw_parse_duration(s, ns) == 0)
		return 0;
	return sw_cmd_err(c, EX_USAGE, "bad %s '%.40s': want a duration such as 30, 30s, 5m, 2h, 7d", what, s);
}

int sw_cmd_ttl(struct sw_cmd *c, const char *what, const char *s, int64_t min_ns, int64_t *ns)
{
	int rc = sw_cmd_duration(c, what, s, ns);
	if (rc || *ns >= min_ns)
		return rc;
	char min[SW_DUR_LEN];
	sw_fmt_duration(min_ns, min);
	return sw_cmd_err(c, EX_USAGE, "bad %s '%.40s': want at least %s", what, s, min);
}

int sw_cmd_name(struct sw_cmd *c, const char *what, const char *s)
{
	const char *why = sw_name_problem(s);
	return why ? sw_cmd_err(c, EX_DATAERR, "bad %s: %s", what, why) : 0;
}

int sw_cmd_opt_duration(struct sw_cmd *c, const char *what, const char *arg, int64_t *ns, bool *given)
{
	*given = false;
	if (!arg && optind < c->argc) {
		int64_t probe;
		if (sw_parse_duration(c->argv[optind], &probe) == 0)
			arg = c->argv[optind++];
	}
	if (!arg)
		return 0;
	*given = true;
	return sw_cmd_duration(c, what, arg, ns);
}

/* ---- the program ------------------------------------------------------- */

static void end_span_on_die(int code, const char *msg, void *arg)
{
	sw_span_end(arg, code != SW_EX_FALSE && code != EX_TEMPFAIL, msg);
}

void sw_ws_open_or_die(struct sw_ws *ws, const char *dir, bool create)
{
	struct sw_err e;
	if (sw_ws_open(ws, dir, create, &e))
		sw_die(e.code, "%s", e.msg);
}

void sw_cmd_open_ws(struct sw_cmd *c, bool create)
{
	sw_ws_open_or_die(&c->ws, c->co.dir, create);
}

int sw_cmd_main(const struct sw_prog *p, int argc, char **argv, void *opts)
{
	sw_prog_set(p->name);
	struct sw_cmd c;
	int rc = sw_cmd_parse(&c, p, argc, argv, opts);
	if (c.verb)
		sw_verb_set(c.verb->name);
	if (rc == SW_CMD_HELP || rc == SW_CMD_VERSION) {
		sw_cmd_done(&c);     /* VERB --help parsed the verb's arguments */
		if (rc == SW_CMD_HELP)
			fputs(p->usage, stdout);
		else
			printf("%s %s\n", p->name, SW_VERSION);
		return fflush(stdout) == 0 ? 0 : EX_IOERR;
	}
	if (rc == EX_USAGE)
		sw_die(rc, "%s (see %s --help)", c.err.msg, p->name);
	if (rc)
		sw_die(rc, "%s", c.err.msg);
	const struct sw_verb *v = c.verb;
	if (v->flags & SW_CMD_WS)
		sw_cmd_open_ws(&c, v->flags & SW_CMD_WS_CREATE);
	char name[96];
	snprintf(name, sizeof name, "%s %s", p->name, v->name);
	sw_span_start(&c.sp, c.co.spans, name);
	sw_on_die(end_span_on_die, &c.sp);
	if (p->name_attr && c.nargs)
		sw_span_str(&c.sp, p->name_attr, c.args[0]);
	if (p->begin)
		p->begin(&c);
	rc = v->run(&c);
	sw_on_die(NULL, NULL);
	/* 1 (the asked condition is false) and 75 (try later) are answers */
	sw_span_end(&c.sp, rc != 0 && rc != SW_EX_FALSE && rc != EX_TEMPFAIL, rc ? "failed" : NULL);
	sw_ws_close(&c.ws);
	sw_cmd_done(&c);
	if (fflush(stdout) != 0)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
	return rc;
}

void sw_cmd_print(const struct sw_cmd *c, json_t *j)
{
	if (!j)
		sw_die(EX_OSERR, "out of memory");
	if (!c->co.quiet && sw_json_print(j) < 0)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
	json_decref(j);
}

int sw_cmd_print_each(json_t *j, void *arg)
{
	sw_cmd_print(arg, json_incref(j));
	return 0;
}

int sw_cmd_reply(const struct sw_cmd *c, int rc, json_t *j, const struct sw_err *err)
{
	if (rc) {
		sw_warn("%s", err->msg);
		return rc;
	}
	sw_cmd_print(c, j);
	return 0;
}

int sw_cmd_refuse(const struct sw_cmd *c, int rc, const struct sw_err *err)
{
	if (!(c->co.quiet && (rc == SW_EX_FALSE || rc == EX_TEMPFAIL)))
		sw_warn("%s", err->msg);
	return rc;
}

int sw_cmd_named(struct sw_cmd *c, const char *what, const char **name)
{
	*name = c->nargs ? c->args[0] : NULL;
	return *name ? sw_cmd_name(c, what, *name) : 0;
}

int sw_cmd_exit_code(struct sw_cmd *c, const char *arg, int *code)
{
	int64_t v;
	int rc = sw_cmd_int(c, "exit code", arg, 0, 255, &v);
	if (!rc)
		*code = (int)v;
	return rc;
}
