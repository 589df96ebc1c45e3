/* sw-claim — a work queue for shell scripts: add items, claim each exactly
 * once, renew, finish.  See sw-claim(1); the queue itself is lib/queue.c. */
#include "clock.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "cmd.h"
#include "num.h"
#include "opt.h"
#include "queue.h"
#include "span.h"
#include "ws.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
"usage: sw-claim VERB [options] [args]\n"
"\n"
"  add [PAYLOAD]        add one item (PAYLOAD is JSON), or JSON Lines items from stdin\n"
"      -q, --queue Q  -p, --priority 0-9  -r, --role ROLE  --id ID\n"
"      --max-attempts N  --timeout DUR  --delay DUR  --after ID[,ID...]\n"
"      --lines          PAYLOAD / each stdin line is a plain string payload\n"
"  next                 claim the most urgent, oldest claimable item (75: none)\n"
"      -q Q  --roles R[,R...]  --ttl DUR  --wait[=DUR]\n"
"  renew ID --token T [--ttl DUR]        extend a claim\n"
"  done ID --token T [--result JSON]     finish a claim\n"
"  fail ID --token T [--error MSG] [--retry-in DUR]\n"
"                       retry later (exponential backoff), or dead after max attempts\n"
"  release ID --token T                  back to pending, attempt not counted\n"
"  cancel ID            pending or claimed -> cancelled\n"
"  requeue ID           dead or cancelled -> pending\n"
"  show ID              the item, wherever it is\n"
"  list [--state S[,S...]]   items (pending, claimed, done, dead, cancelled, all),\n"
"                       or entries moved aside as damaged (damaged)\n"
"  stats                counts per state, per queue\n"
"  reap                 expired claims back to pending (or dead), delayed items due\n"
"  purge --state S --older-than DUR      delete done/dead/cancelled/damaged entries\n"
"\n"
"common options:\n"
"  -q, --queue Q        queue name (default $SW_QUEUE, else \"default\"; list, stats,\n"
"                       reap and purge without either cover every queue)\n"
"  -d, --dir DIR        workspace (default $SW_DIR, else $XDG_STATE_HOME/sw)\n"
"  --spans[=DEST]       write an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"exit: 0 ok, 1 no such item or stale token, 64 usage, 65 bad data,\n"
"      69 workspace unavailable, 70 internal error, 73 cannot create,\n"
"      74 I/O error, 75 nothing to claim / timed out, 77 permission denied\n";

enum {
	O_ID = SW_OPT_FIRST_FREE, O_MAXATT, O_TIMEOUT, O_DELAY, O_AFTER, O_LINES,
	O_ROLES, O_TTL, O_WAIT, O_TOKEN, O_RESULT, O_ERROR, O_RETRY, O_STATE, O_OLDER
};

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"queue", required_argument, 0, 'q'},
	{"priority", required_argument, 0, 'p'},
	{"role", required_argument, 0, 'r'},
	{"id", required_argument, 0, O_ID},
	{"max-attempts", required_argument, 0, O_MAXATT},
	{"timeout", required_argument, 0, O_TIMEOUT},
	{"delay", required_argument, 0, O_DELAY},
	{"after", required_argument, 0, O_AFTER},
	{"lines", no_argument, 0, O_LINES},
	{"roles", required_argument, 0, O_ROLES},
	{"ttl", required_argument, 0, O_TTL},
	{"wait", optional_argument, 0, O_WAIT},
	{"token", required_argument, 0, O_TOKEN},
	{"result", required_argument, 0, O_RESULT},
	{"error", required_argument, 0, O_ERROR},
	{"retry-in", required_argument, 0, O_RETRY},
	{"state", required_argument, 0, O_STATE},
	{"older-than", required_argument, 0, O_OLDER},
	{0, 0, 0, 0}
};

struct opts {
	bool quiet;               /* --quiet, from the command line */
	const char *queue;
	bool queue_given;
	struct sw_item_defaults d;
	bool lines;
	char *roles[64];
	size_t nroles;
	int64_t ttl_ns;
	bool wait;
	int64_t wait_ns;          /* with wait: how long; -1 forever */
	uint64_t token;
	bool token_given;
	json_t *result;
	const char *error;
	int64_t retry_ns;
	int state_mask;
	int64_t older_ns;
	bool older_given;
	const char *arg;          /* the verb's one argument (ID, PAYLOAD), or NULL */
};

/* ---- helpers ---------------------------------------------------------- */

static void print(const struct opts *o, json_t *j)
{
	if (!o->quiet && sw_json_print(j) < 0)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
}

static void open_queue(struct sw_queue *q, struct sw_ws *ws, const struct opts *o, bool create)
{
	int rc = sw_queue_open(q, ws, o->queue, create);
	if (rc)
		sw_die(rc, "%s", q->err.msg);
}

static int finish(struct sw_queue *q, int rc, const struct opts *o, json_t *out)
{
	if (rc) {
		sw_warn("%s", q->err.msg);
	} else if (out) {
		print(o, out);
	}
	json_decref(out);
	sw_queue_close(q);
	return rc;
}

static const char *need_id(struct opts *o)
{
	return o->arg;   /* checked as a name with the options */
}

/* ---- add -------------------------------------------------------------- */

/* stdin read whole: a batch is checked completely before anything is
 * added, so a bad line on line 90,000 adds nothing. */
/* stdin, whole; a line longer than an item may be (item_max plus the
 * slack) stops the reading there. */
static char *read_stdin(size_t *len, size_t item_max)
{
	size_t cap = 1 << 16, n = 0, line_start = 0, lineno = 1, max = item_max + SW_ITEM_SLACK;
	char *buf = malloc(cap);
	if (!buf)
		sw_die(EX_SOFTWARE, "out of memory");
	for (;;) {
		if (n == cap) {
			cap *= 2;
			char *b = realloc(buf, cap);
			if (!b)
				sw_die(EX_SOFTWARE, "out of memory");
			buf = b;
		}
		ssize_t r = read(0, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			sw_die(EX_IOERR, "reading stdin: %s", strerror(errno));
		if (r == 0)
			break;
		for (size_t i = n; i < n + (size_t)r; i++)
			if (buf[i] == '\n') {
				line_start = i + 1;
				lineno++;
			}
		n += (size_t)r;
		if (n - line_start > max)
			sw_die(EX_DATAERR, "line %zu: longer than an item may be (SW_MAX_ITEM_BYTES + %d); "
			       "nothing added", lineno, SW_ITEM_SLACK);
	}
	*len = n;
	return buf;
}

static json_t *line_spec(const struct opts *o, const char *line, size_t len, char *err, size_t errlen)
{
	if (o->lines) {
		if (!sw_utf8_valid(line, len)) {
			snprintf(err, errlen, "invalid UTF-8");
			return NULL;
		}
		return json_pack("{s:s%}", "payload", line, len);
	}
	return sw_json_parse(line, len, err, errlen);
}

/* Calls fn for each non-empty line; stops at the first non-zero. */
static int each_line(char *buf, size_t len, int (*fn)(const char *line, size_t n, size_t lineno, void *arg), void *arg)
{
	size_t lineno = 0;
	for (char *p = buf, *end = buf + len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0) {
			int rc = fn(p, n, lineno, arg);
			if (rc)
				return rc;
		}
		p = nl ? nl + 1 : end;   /* past the line as read, \r and all */
	}
	return 0;
}

struct added_line { char *id; bool existed; };

struct adder {
	struct opts *o;
	struct sw_queue *q;
	struct sw_batch *bt;      /* NULL: checking only */
	size_t count, total;
	int64_t last_progress;
	struct added_line *out;   /* printed once the batch is committed */
	size_t nout;
};

static json_t *build_item(struct adder *a, const char *line, size_t n, size_t lineno)
{
	char err[300], why[400];
	json_t *spec = line_spec(a->o, line, n, err, sizeof err);
	json_t *item = NULL;
	if (spec) {
		item = sw_item_new(spec, &a->o->d, a->o->queue, why, sizeof why);
		if (!item)
			snprintf(err, sizeof err, "%s", why);
	}
	json_decref(spec);
	if (!item)
		sw_die(EX_DATAERR, "line %zu: %s; nothing added", lineno, err);
	return item;
}

static void progress(struct adder *a, bool last)
{
	if (!isatty(2) || a->o->quiet)
		return;
	int64_t now = sw_now_ns();
	if (!last && now - a->last_progress < 200000000)
		return;
	a->last_progress = now;
	fprintf(stderr, "\rsw-claim: add: %zu/%zu items%s", a->count, a->total, last ? "\n" : "");
}

static void print_added_id(struct adder *a, const char *id, bool existed)
{
	json_t *r = json_pack("{s:s,s:s,s:b}", "id", id, "queue", a->q->name, "added", !existed);
	if (!existed)
		json_object_set_new(r, "state", json_string("pending"));
	print(a->o, r);
	json_decref(r);
}

static void print_added(struct adder *a, const json_t *item, bool existed)
{
	print_added_id(a, sw_json_str(item, "id"), existed);
}

static int check_line(const char *line, size_t n, size_t lineno, void *arg)
{
	struct adder *a = arg;
	json_decref(build_item(a, line, n, lineno));
	a->total++;
	return 0;
}

static int add_line(const char *line, size_t n, size_t lineno, void *arg)
{
	struct adder *a = arg;
	json_t *item = build_item(a, line, n, lineno);
	bool existed;
	int rc = sw_batch_add(a->bt, item, &existed);
	if (rc == 0) {
		a->count++;
		if (!a->o->quiet) {
			/* a->total lines were checked: the array never grows */
			if (!a->out && !(a->out = calloc(a->total ? a->total : 1, sizeof *a->out)))
				sw_die(EX_SOFTWARE, "out of memory");
			if (!(a->out[a->nout].id = strdup(sw_json_str(item, "id"))))
				sw_die(EX_SOFTWARE, "out of memory");
			a->out[a->nout++].existed = existed;
		}
		progress(a, false);
	}
	json_decref(item);
	return rc;
}

/* The item of a PAYLOAD argument, or a one-line error (65). */
static json_t *arg_item(const struct opts *o)
{
	const char *arg = o->arg;
	char err[300];
	json_t *payload = o->lines ? json_string(arg) : sw_json_parse(arg, strlen(arg), err, sizeof err);
	if (!payload && o->lines)
		sw_die(EX_DATAERR, "PAYLOAD is not valid UTF-8");
	if (!payload)
		sw_die(EX_DATAERR, "PAYLOAD is not JSON: %s (use --lines for a plain string)", err);
	json_t *spec = json_pack("{s:o}", "payload", payload);
	json_t *item = sw_item_new(spec, &o->d, o->queue, err, sizeof err);
	json_decref(spec);
	if (!item)
		sw_die(EX_DATAERR, "%s; nothing added", err);
	return item;
}

static int add_arg(struct adder *a, json_t *item, struct sw_span *sp)
{
	bool existed;
	int rc = sw_queue_add(a->q, &item, 1, &existed);
	if (rc == 0) {
		print_added(a, item, existed);
		sw_span_str(sp, "sw.item.id", sw_json_str(item, "id"));
	}
	json_decref(item);
	return rc;
}

/* Every item is checked before the workspace is opened (and made, when
 * missing): bad input writes nothing, not even an empty queue. */
static int cmd_add(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_queue q;
	struct adder a = { .o = o, .q = &q };
	json_t *item = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;
	if (o->arg) {
		item = arg_item(o);
	} else {
		if (o->d.id)
			sw_usage_error("--id goes with a PAYLOAD argument; give ids in the input lines");
		if (isatty(0))
			sw_usage_error("give a PAYLOAD, or items on stdin");
		buf = read_stdin(&len, o->d.item_max);
		each_line(buf, len, check_line, &a);
	}
	sw_cmd_open_ws(c, true);
	open_queue(&q, ws, o, true);
	if (item) {
		rc = add_arg(&a, item, sp);
	} else {
		a.bt = sw_batch_new(&q);
		if (!a.bt)
			sw_die(EX_IOERR, "%s", q.err.msg);
		rc = each_line(buf, len, add_line, &a);
		if (rc)
			sw_batch_abort(a.bt);
		else
			rc = sw_batch_commit(a.bt);
		progress(&a, true);
		/* what is printed as added is in the queue */
		for (size_t i = 0; i < a.nout; i++) {
			if (rc == 0)
				print_added_id(&a, a.out[i].id, a.out[i].existed);
			free(a.out[i].id);
		}
		free(a.out);
		sw_span_int(sp, "sw.items", (int64_t)a.count);
		free(buf);
	}
	return finish(&q, rc, o, NULL);
}

/* ---- next ------------------------------------------------------------- */

static int cmd_next(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct sw_queue q;
	int rc = sw_queue_open(&q, ws, o->queue, o->wait);
	if (rc == SW_EX_FALSE)   /* no queue yet: nothing to claim */
		rc = EX_TEMPFAIL, snprintf(q.err.msg, sizeof q.err.msg, "nothing to claim in queue '%s'", o->queue);
	if (rc) {
		sw_warn("%s", q.err.msg);
		return rc;
	}
	int64_t deadline = o->wait_ns >= 0 ? sw_now_ns() + o->wait_ns : INT64_MAX;
	json_t *out = NULL;
	for (;;) {
		rc = sw_queue_claim(&q, (const char *const *)o->roles, o->nroles, o->ttl_ns, &out);
		if (rc != EX_TEMPFAIL || !o->wait || sw_now_ns() >= deadline)
			break;
		sw_queue_wait(&q, (const char *const *)o->roles, o->nroles, deadline);
	}
	if (rc == 0) {
		sw_span_str(sp, "sw.item.id", sw_json_str(out, "id"));
		sw_span_int(sp, "sw.item.token", sw_json_int(out, "token", 0));
		sw_span_int(sp, "sw.item.attempt", sw_json_int(out, "attempt", 0));
	}
	if (rc == EX_TEMPFAIL && o->wait)
		snprintf(q.err.msg, sizeof q.err.msg, "nothing to claim in queue '%s' (waited)", o->queue);
	if (rc == 0 && !o->quiet && (sw_json_print(out) < 0 || fflush(stdout) != 0)) {
		/* nobody learnt the token: give the item back rather than leave
		 * it claimed until its lease runs out */
		int e = errno;
		sw_queue_release(&q, sw_json_str(out, "id"), (uint64_t)sw_json_int(out, "token", 0), NULL);
		sw_die(EX_IOERR, "writing output: %s; the claim was given back", strerror(e));
	}
	if (rc == 0) {
		json_decref(out);
		out = NULL;
	}
	return finish(&q, rc, o, out);
}

/* ---- verbs on one claimed item ---------------------------------------- */

static int claimed_verb(struct sw_cmd *c, const char *verb)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	const char *id = need_id(o);
	sw_span_str(sp, "sw.item.id", id);
	sw_span_int(sp, "sw.item.token", (int64_t)o->token);
	struct sw_queue q;
	open_queue(&q, ws, o, false);
	json_t *out = NULL;
	int rc;
	if (!strcmp(verb, "renew"))
		rc = sw_queue_renew(&q, id, o->token, o->ttl_ns, &out);
	else if (!strcmp(verb, "done"))
		rc = sw_queue_done(&q, id, o->token, o->result, &out);
	else if (!strcmp(verb, "fail"))
		rc = sw_queue_fail(&q, id, o->token, o->error, o->retry_ns, &out);
	else
		rc = sw_queue_release(&q, id, o->token, &out);
	return finish(&q, rc, o, out);
}

static int cmd_renew(struct sw_cmd *c) { return claimed_verb(c, "renew"); }
static int cmd_done(struct sw_cmd *c) { return claimed_verb(c, "done"); }
static int cmd_fail(struct sw_cmd *c) { return claimed_verb(c, "fail"); }
static int cmd_release(struct sw_cmd *c) { return claimed_verb(c, "release"); }

static int by_id(struct sw_cmd *c, int (*fn)(struct sw_queue *, const char *, json_t **))
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	const char *id = need_id(o);
	sw_span_str(sp, "sw.item.id", id);
	struct sw_queue q;
	open_queue(&q, ws, o, false);
	json_t *out = NULL;
	int rc = fn(&q, id, &out);
	return finish(&q, rc, o, out);
}

static int cmd_show(struct sw_cmd *c) { return by_id(c, sw_queue_show); }
static int cmd_cancel(struct sw_cmd *c) { return by_id(c, sw_queue_cancel); }
static int cmd_requeue(struct sw_cmd *c) { return by_id(c, sw_queue_requeue); }

/* ---- verbs over queues ------------------------------------------------ */

struct each_q {
	struct opts *o;
	struct sw_ws *ws;
	int (*fn)(struct each_q *e, struct sw_queue *q);
	int rc;
	long long total;
};

static int visit_queue(const char *name, void *arg)
{
	struct each_q *e = arg;
	struct sw_queue q;
	int rc = sw_queue_open(&q, e->ws, name, false);
	if (rc == 0)
		rc = e->fn(e, &q);
	if (rc && rc != SW_EX_FALSE)
		sw_warn("%s", q.err.msg);
	if (rc && !e->rc)
		e->rc = rc;
	sw_queue_close(&q);
	return 0;
}

/* fn on the -q queue, or on every queue when none was named. */
static int for_queues(struct opts *o, struct sw_ws *ws, int (*fn)(struct each_q *, struct sw_queue *),
		      struct each_q *e)
{
	e->o = o;
	e->ws = ws;
	e->fn = fn;
	if (o->queue_given) {
		struct sw_queue q;
		int rc = sw_queue_open(&q, ws, o->queue, false);
		if (rc == SW_EX_FALSE)
			return 0;   /* an unknown queue is an empty one */
		if (rc)
			sw_die(rc, "%s", q.err.msg);
		rc = fn(e, &q);
		if (rc)
			sw_warn("%s", q.err.msg);
		sw_queue_close(&q);
		return rc;
	}
	if (sw_queue_names(ws, visit_queue, e) < 0)
		sw_die(EX_IOERR, "listing queues: %s", strerror(errno));
	return e->rc;
}

static int print_item(json_t *item, void *arg)
{
	print(arg, item);
	return 0;
}

static int list_queue(struct each_q *e, struct sw_queue *q)
{
	return sw_queue_list(q, e->o->state_mask ? e->o->state_mask : SW_ST_ALL, print_item, e->o);
}

static int cmd_list(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	(void)sp;
	struct each_q e = {0};
	return for_queues(o, ws, list_queue, &e);
}

static int stats_queue(struct each_q *e, struct sw_queue *q)
{
	struct sw_queue_stats st;
	int rc = sw_queue_stats(q, &st);
	if (rc)
		return rc;
	json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "queue", q->name,
		"pending", (json_int_t)st.pending, "delayed", (json_int_t)st.delayed,
		"blocked", (json_int_t)st.blocked, "claimed", (json_int_t)st.claimed,
		"done", (json_int_t)st.done, "dead", (json_int_t)st.dead,
		"cancelled", (json_int_t)st.cancelled, "in_flight", (json_int_t)st.in_flight,
		"damaged", (json_int_t)st.damaged);
	if (st.oldest_pending_ns) {
		sw_json_set_time(j, "oldest_pending_at", st.oldest_pending_ns);
		json_object_set_new(j, "oldest_pending_age_ms",
			json_integer((sw_now_ns() - st.oldest_pending_ns) / 1000000));
	}
	print(e->o, j);
	json_decref(j);
	return 0;
}

static int cmd_stats(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	(void)sp;
	struct each_q e = {0};
	return for_queues(o, ws, stats_queue, &e);
}

static int reap_queue(struct each_q *e, struct sw_queue *q)
{
	long long n = 0;
	int rc = sw_queue_reap(q, &n);
	if (rc == 0) {
		json_t *j = json_pack("{s:s,s:I}", "queue", q->name, "reaped", (json_int_t)n);
		print(e->o, j);
		json_decref(j);
		e->total += n;
	}
	return rc;
}

static int cmd_reap(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	struct each_q e = {0};
	int rc = for_queues(o, ws, reap_queue, &e);
	sw_span_int(sp, "sw.reaped", e.total);
	return rc;
}

static int purge_queue(struct each_q *e, struct sw_queue *q)
{
	long long n = 0;
	int rc = sw_queue_purge(q, e->o->state_mask, e->o->older_ns, &n);
	if (rc == 0) {
		json_t *j = json_pack("{s:s,s:I}", "queue", q->name, "purged", (json_int_t)n);
		print(e->o, j);
		json_decref(j);
	}
	return rc;
}

static int cmd_purge(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	(void)sp;
	if (!o->state_mask || !o->older_given)
		sw_usage_error("purge needs --state and --older-than");
	if (o->state_mask & (SW_ST_PENDING | SW_ST_CLAIMED))
		sw_usage_error("only done, dead, cancelled and damaged entries can be purged");
	struct each_q e = {0};
	return for_queues(o, ws, purge_queue, &e);
}

/* ---- options and main ------------------------------------------------- */

static const int o_add[] = { 'q', 'p', 'r', O_ID, O_MAXATT, O_TIMEOUT, O_DELAY, O_AFTER, O_LINES, 0 };
static const int o_next[] = { 'q', O_ROLES, O_TTL, O_WAIT, 0 };
static const int o_renew[] = { 'q', O_TOKEN, O_TTL, 0 };
static const int o_done[] = { 'q', O_TOKEN, O_RESULT, 0 };
static const int o_fail[] = { 'q', O_TOKEN, O_ERROR, O_RETRY, 0 };
static const int o_release[] = { 'q', O_TOKEN, 0 };
static const int o_q[] = { 'q', 0 };
static const int o_list[] = { 'q', O_STATE, 0 };
static const int o_purge[] = { 'q', O_STATE, O_OLDER, 0 };

static const struct sw_verb verbs[] = {
	{ "add", cmd_add, "at most one PAYLOAD", 0, 1, o_add, 0 },
	{ "next", cmd_next, "", 0, 0, o_next, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "renew", cmd_renew, "one ID", 1, 1, o_renew, SW_CMD_WS },
	{ "done", cmd_done, "one ID", 1, 1, o_done, SW_CMD_WS },
	{ "fail", cmd_fail, "one ID", 1, 1, o_fail, SW_CMD_WS },
	{ "release", cmd_release, "one ID", 1, 1, o_release, SW_CMD_WS },
	{ "cancel", cmd_cancel, "one ID", 1, 1, o_q, SW_CMD_WS },
	{ "requeue", cmd_requeue, "one ID", 1, 1, o_q, SW_CMD_WS },
	{ "show", cmd_show, "one ID", 1, 1, o_q, SW_CMD_WS },
	{ "list", cmd_list, "", 0, 0, o_list, SW_CMD_WS },
	{ "stats", cmd_stats, "", 0, 0, o_q, SW_CMD_WS },
	{ "reap", cmd_reap, "", 0, 0, o_q, SW_CMD_WS },
	{ "purge", cmd_purge, "", 0, 0, o_purge, SW_CMD_WS },
	{ 0 }
};

static int parse_roles(struct sw_cmd *c, struct opts *o, char *arg)
{
	for (char *save, *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int rc = sw_cmd_name(c, "role", t);
		if (rc)
			return rc;
		if (o->nroles == sizeof o->roles / sizeof o->roles[0])
			return sw_cmd_err(c, EX_USAGE, "too many roles");
		o->roles[o->nroles++] = t;
	}
	return 0;
}

static int parse_after(struct sw_cmd *c, struct opts *o, const char *arg)
{
	char err[300];
	json_t *spec = json_pack("{s:s}", "after", arg);
	json_t *item = sw_item_new(spec, &(struct sw_item_defaults){ .priority = 5, .max_attempts = 1 },
				   "x", err, sizeof err);
	json_decref(spec);
	if (!item)
		return sw_cmd_err(c, EX_DATAERR, "--after: %s", err);
	json_decref(o->d.after);
	o->d.after = json_incref(json_object_get(item, "after"));
	json_decref(item);
	return 0;
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	char err[300];
	int64_t v;
	int rc = 0;
	switch (code) {
	case 'q':
		if (!(rc = sw_cmd_name(c, "queue name", arg))) {
			o->queue = arg;
			o->queue_given = true;
		}
		return rc;
	case 'p':
		if (!(rc = sw_cmd_int(c, "--priority", arg, 0, SW_PRIO_MAX, &v)))
			o->d.priority = (int)v;
		return rc;
	case 'r':
		if (!(rc = sw_cmd_name(c, "role", arg)))
			o->d.role = arg;
		return rc;
	case O_ID:
		if (!(rc = sw_cmd_name(c, "id", arg)))
			o->d.id = arg;
		return rc;
	case O_MAXATT:
		if (!(rc = sw_cmd_int(c, "--max-attempts", arg, 1, 1000000, &v)))
			o->d.max_attempts = (int)v;
		return rc;
	case O_TIMEOUT: return sw_cmd_duration(c, "--timeout", arg, &o->d.timeout_ns);
	case O_DELAY: return sw_cmd_duration(c, "--delay", arg, &o->d.delay_ns);
	case O_AFTER: return parse_after(c, o, arg);
	case O_LINES: o->lines = true; return 0;
	case O_ROLES: return parse_roles(c, o, arg);
	case O_TTL: return sw_cmd_duration(c, "--ttl", arg, &o->ttl_ns);
	case O_WAIT: {
		/* `--wait 30s` as well as `--wait=30s`: next takes no arguments,
		 * so a duration after --wait can only be meant for it */
		bool given;
		o->wait = true;
		rc = sw_cmd_opt_duration(c, "--wait", arg, &o->wait_ns, &given);
		if (!given)
			o->wait_ns = -1;
		return rc;
	}
	case O_TOKEN:
		if (!sw_token_parse(arg, &o->token))
			return sw_cmd_err(c, EX_DATAERR, "bad token '%.40s': want the number `next` printed", arg);
		o->token_given = true;
		return 0;
	case O_RESULT:
		json_decref(o->result);
		o->result = sw_json_parse(arg, strlen(arg), err, sizeof err);
		return o->result ? 0 : sw_cmd_err(c, EX_DATAERR, "--result is not JSON: %s", err);
	case O_ERROR:
		if (!sw_utf8_valid(arg, strlen(arg)))
			return sw_cmd_err(c, EX_DATAERR, "--error is not valid UTF-8");
		o->error = arg;
		return 0;
	case O_RETRY: return sw_cmd_duration(c, "--retry-in", arg, &o->retry_ns);
	case O_STATE:
		if ((o->state_mask = sw_state_mask(arg)) < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --state '%.60s': want pending, claimed, done, dead, "
					  "cancelled, all or damaged", arg);
		return 0;
	case O_OLDER:
		o->older_given = true;
		return sw_cmd_duration(c, "--older-than", arg, &o->older_ns);
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

/* What needs all the options, before the workspace is looked at. */
static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_settings st;
	struct sw_err e;
	if (sw_settings_read(&st, &e))
		return sw_cmd_err(c, e.code, "%s", e.msg);
	o->d.item_max = st.item_max;
	o->quiet = c->co.quiet;
	o->arg = c->nargs ? c->args[0] : NULL;
	if (o->arg && c->verb->max_args == 1 && strcmp(c->verb->name, "add")) {
		int rc = sw_cmd_name(c, "id", o->arg);
		if (rc)
			return rc;
	}
	bool takes_token = false;
	for (const int *p = c->verb->opts; *p; p++)
		takes_token |= *p == O_TOKEN;
	if (takes_token && !o->token_given)
		return sw_cmd_err(c, EX_USAGE, "--token is required");
	return 0;
}

/* Every span names the queue, when one is meant. */
static void begin(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	if (o->queue_given || c->verb->run == cmd_add || c->verb->run == cmd_next)
		sw_span_str(&c->sp, "sw.queue", o->queue);
}

static const struct sw_prog prog = {
	.name = "sw-claim", .usage = usage, .longopts = longopts, .shortopts = "q:p:r:",
	.verbs = verbs, .option = option, .check = check, .begin = begin,
};

int main(int argc, char **argv)
{
	struct opts o = {
		.d = { .priority = SW_PRIO_DEFAULT, .max_attempts = SW_ATTEMPTS_DEFAULT,
		       .timeout_ns = SW_TIMEOUT_DEFAULT_NS },
		.retry_ns = -1,
	};
	/* SW_QUEUE counts as -q: a flag's environment variable stands for it */
	const char *envq = getenv("SW_QUEUE");
	o.queue = envq && *envq ? envq : SW_QUEUE_DEFAULT;
	o.queue_given = envq && *envq;
	if (o.queue_given && sw_name_problem(envq)) {
		sw_prog_set("sw-claim");
		sw_name_check("queue name (SW_QUEUE)", envq);
	}
	int rc = sw_cmd_main(&prog, argc, argv, &o);
	json_decref(o.result);
	json_decref(o.d.after);
	return rc;
}
