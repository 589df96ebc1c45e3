/* cmd.h — the one skeleton of every sw program.
 *
 * A program is its usage text, its long options, a table of verbs and the
 * verbs themselves, each of the form parse -> lib call -> print.  The
 * skeleton does the rest the same way for all of them: --help and
 * --version before a verb, the options each verb takes, one wording for
 * every refusal (one line, exit 64, "did you mean" for a near miss),
 * opening the workspace, the span of the operation (1 and 75 are answers,
 * not failures), and flushing the output.
 *
 * Parsing never exits and never prints (sw_cmd_parse), so that the fuzz
 * target of each program's argument vector can call it. */
#ifndef SW_CMD_H
#define SW_CMD_H
#include "err.h"
#include "opt.h"
#include "span.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Verb flags. */
enum {
	SW_CMD_WS = 1,          /* opens the workspace before the verb runs */
	SW_CMD_WS_CREATE = 2,   /* ... and makes it when missing */
	SW_CMD_COMMAND = 4,     /* after its arguments (or "--"): a command */
};

struct sw_cmd;

struct sw_verb {
	const char *name;
	int (*run)(struct sw_cmd *c);
	const char *args;       /* its arguments, for refusals: "ID", "NAME", "[PAYLOAD]" */
	int min_args, max_args; /* positional arguments (before a command) */
	const int *opts;        /* the options it takes besides the common ones, 0-ended */
	unsigned flags;
};

struct sw_prog {
	const char *name;       /* "sw-claim" */
	const char *usage;      /* --help */
	const struct option *longopts;   /* SW_COMMON_LONGOPTS and the program's, {0}-ended */
	const char *shortopts;  /* the program's own short options ("q:p:") */
	const struct sw_verb *verbs;     /* {0}-ended */
	/* Takes one option of the verb: 0, or an exit code with sw_cmd_err. */
	int (*option)(struct sw_cmd *c, int code, char *arg);
	/* Checks what needs all the options (may be NULL): 0 or a code. */
	int (*check)(struct sw_cmd *c);
	/* Once the span has started, before the verb (may be NULL): the
	 * program's attributes of every span. */
	void (*begin)(struct sw_cmd *c);
	/* The span attribute that names the verb's first argument, when it
	 * has one ("sw.lease.name"); NULL: none. */
	const char *name_attr;
};

struct sw_cmd {
	const struct sw_prog *prog;
	const struct sw_verb *verb;
	struct sw_common co;    /* -d, --spans, --quiet */
	char **args;            /* positional arguments */
	int nargs;
	char **command;         /* SW_CMD_COMMAND: the command and its arguments */
	struct sw_ws ws;        /* open when the verb has SW_CMD_WS */
	struct sw_span sp;
	void *opts;             /* the program's own options */
	int argc;               /* the verb's argument vector, for options */
	char **argv;            /* that look ahead (--wait DUR) */
	struct sw_err err;      /* why the last sw_cmd_* check refused */
};

enum { SW_CMD_HELP = -1, SW_CMD_VERSION = -2 };

/* Sets c->err and returns code. */
int sw_cmd_err(struct sw_cmd *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A usage error a verb finds as it runs (two options that exclude each
 * other...): one line "... (see PROG --help)", exit 64.  The program's
 * exit, like sw_cmd_main's: for verbs, never for the library below. */
_Noreturn void sw_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses argv (argv[1] the verb) into c and opts: 0, SW_CMD_HELP,
 * SW_CMD_VERSION, or 64/65 with c->err.  Never exits, never prints. */
int sw_cmd_parse(struct sw_cmd *c, const struct sw_prog *p, int argc, char **argv, void *opts);
/* The whole program: parse (a refusal is one line and its code), open the
 * workspace, start the span, run the verb, end the span, flush stdout.
 * Returns the exit status. */
int sw_cmd_main(const struct sw_prog *p, int argc, char **argv, void *opts);
/* For a verb that opens the workspace itself (after checking its input):
 * dies with the one-line error when it cannot. */
void sw_cmd_open_ws(struct sw_cmd *c, bool create);
/* The same for any program's top level. */
void sw_ws_open_or_die(struct sw_ws *ws, const char *dir, bool create);
/* Frees what parsing allocated (the command vector). */
void sw_cmd_done(struct sw_cmd *c);

/* Values of options, for the program's option function: 0, or 64 (65 for
 * a name) with the refusal in c->err naming the option. */
int sw_cmd_int(struct sw_cmd *c, const char *what, const char *s, int64_t min, int64_t max, int64_t *v);
int sw_cmd_real(struct sw_cmd *c, const char *what, const char *s, double min, double max, double *v);
int sw_cmd_duration(struct sw_cmd *c, const char *what, const char *s, int64_t *ns);
/* A lease length: a duration of at least min_ns ("--ttl 0" means the
 * same, a refusal, in every program). */
int sw_cmd_ttl(struct sw_cmd *c, const char *what, const char *s, int64_t min_ns, int64_t *ns);
int sw_cmd_name(struct sw_cmd *c, const char *what, const char *s);
/* An optional duration that may also come as the next argument
 * (`--wait 30s` as well as `--wait=30s`), when it parses as one: *given
 * says whether there was one.  0 or 64. */
int sw_cmd_opt_duration(struct sw_cmd *c, const char *what, const char *arg, int64_t *ns, bool *given);
/* A result line: prints j unless --quiet, and drops it (NULL: out of
 * memory, exit 71; a failed write: exit 74). */
void sw_cmd_print(const struct sw_cmd *c, json_t *j);
/* For a library's walk of a list (arg: the sw_cmd): each entry a line. */
int sw_cmd_print_each(json_t *j, void *arg);
/* The end of a verb that is one lib call: 0 with j printed (as
 * sw_cmd_print), or rc with err's one line. */
int sw_cmd_reply(const struct sw_cmd *c, int rc, json_t *j, const struct sw_err *err);
/* A refusal: err's one line, unless it is an answer (1: no, 75: busy,
 * try later) and --quiet asked for silence; the exit status still says
 * it.  Real errors are always said.  Returns rc. */
int sw_cmd_refuse(const struct sw_cmd *c, int rc, const struct sw_err *err);
/* The verb's NAME argument (NULL when it takes none), checked as a name
 * ("bad lease name: ..."): 0 or 65. */
int sw_cmd_named(struct sw_cmd *c, const char *what, const char **name);
/* -E, --conflict-exit-code CODE: 0 to 255.  0 or 64. */
int sw_cmd_exit_code(struct sw_cmd *c, const char *arg, int *code);

/* A run verb's command held under a grant (sw-lease, sw-limit and
 * sw-breaker run; cmd_run.c): h->cmd, env, umask and quiet are set from
 * c, the environment being env (name, value..., NULL; at most 8 pairs)
 * plus TRACEPARENT, a child of the operation's span, and SW_DIR, the
 * workspace absolute (the sw programs the command runs use it from any
 * directory); the span gets process.exit.code.  sw_hold_run's answer;
 * exits 71 when waiting on the tree failed. */
struct sw_hold;
struct sw_hold_result;
int sw_cmd_hold(struct sw_cmd *c, struct sw_hold *h, const char *const *env, struct sw_hold_result *res);

/* The option's long name (for messages). */
const char *sw_cmd_opt_name(const struct sw_cmd *c, int code);
#endif
