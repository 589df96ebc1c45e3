/* sw-claim — a work queue for shell scripts: add items, claim each exactly
 * once, renew, finish.  See sw-claim(1); the queue itself is lib/queue.c. */
#include "affinity.h"
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
"      -q, --queue Q  -p, --priority 0-9  -r, --role ROLE  --id ID  --key KEY\n"
"      --max-attempts N  --timeout DUR  --delay DUR  --after ID[,ID...]\n"
"      --on-dep-fail dead|cancel|run   when an --after item dies or is cancelled\n"
"      --after-missing ok   allow --after ids not (yet) in the queue\n"
"      --lines          PAYLOAD / each stdin line is a plain string payload\n"
"  next                 claim the most urgent, oldest claimable item (75: none)\n"
"      -q Q  --roles R[,R...]  --ttl DUR  --wait[=DUR]  --format json|tsv|sh\n"
"      -n N             up to N items, one line each (--wait: for the first)\n"
"      --affinity AGENT  claim as agent AGENT of the queue's ring would (sw-agent\n"
"                       run --affinity): its keys, keyless items, and others' once\n"
"                       they have waited --steal-after DUR (10s)\n"
"  renew ID --token T [--ttl DUR]        extend a claim\n"
"  done ID --token T [--result JSON]     finish a claim\n"
"  fail ID --token T [--error MSG] [--retry-in DUR]\n"
"                       retry later (exponential backoff), or dead after max attempts\n"
"  release ID --token T                  back to pending, attempt not counted\n"
"  renew, done, fail, release without ID: one claim per stdin line, as next -n\n"
"                       printed it (with \"result\" or \"error\" fields, or the\n"
"                       options' values); a line of outcome each (\"ok\");\n"
"                       exit 1 when some were stale, the others still applied\n"
"  cancel ID            pending, blocked or claimed -> cancelled\n"
"  cancel --state S[,S...] [--older-than DUR]   every such item of the queue\n"
"  requeue ID           dead or cancelled -> pending, attempts from zero\n"
"  requeue --state S[,S...] [--older-than DUR]  every such item of the queue\n"
"  show ID              the item, wherever it is\n"
"  deps ID              the items ID waits for (--after), with their results\n"
"  wait ID... [--timeout DUR]   until each item is done (0), dead or cancelled (1);\n"
"                       75 when DUR passes first\n"
"  list [--state S[,S...]] [--limit N] [--table]\n"
"                       items (pending, blocked, claimed, done, dead, cancelled, all),\n"
"                       or entries moved aside as damaged (damaged)\n"
"  stats [--table] [--keys]  counts per state, per queue; --keys: pending keyed\n"
"                       items per owning agent (sw-agent run --affinity's ring)\n"
"  reap                 expired claims back to pending (or dead), delayed items due\n"
"  purge --state S --older-than DUR      delete done/dead/cancelled/damaged entries\n"
"  drop QUEUE [--force] delete a queue and its items (75 while items are claimed)\n"
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
	O_ROLES, O_TTL, O_WAIT, O_TOKEN, O_RESULT, O_ERROR, O_RETRY, O_STATE, O_OLDER,
	O_DEPFAIL, O_MISSING, O_FORCE, O_FORMAT, O_LIMIT, O_TABLE, O_KEY, O_AFFINITY, O_STEAL, O_KEYS
};

enum format { FMT_JSON, FMT_TSV, FMT_SH };

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"count", required_argument, 0, 'n'},
	{"queue", required_argument, 0, 'q'},
	{"priority", required_argument, 0, 'p'},
	{"role", required_argument, 0, 'r'},
	{"id", required_argument, 0, O_ID},
	{"max-attempts", required_argument, 0, O_MAXATT},
	{"timeout", required_argument, 0, O_TIMEOUT},
	{"delay", required_argument, 0, O_DELAY},
	{"after", required_argument, 0, O_AFTER},
	{"key", required_argument, 0, O_KEY},
	{"keys", no_argument, 0, O_KEYS},
	{"affinity", required_argument, 0, O_AFFINITY},
	{"steal-after", required_argument, 0, O_STEAL},
	{"on-dep-fail", required_argument, 0, O_DEPFAIL},
	{"after-missing", required_argument, 0, O_MISSING},
	{"force", no_argument, 0, O_FORCE},
	{"format", required_argument, 0, O_FORMAT},
	{"limit", required_argument, 0, O_LIMIT},
	{"table", no_argument, 0, O_TABLE},
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
	bool after_missing_ok;    /* --after-missing ok */
	bool force;               /* drop --force */
	enum format format;       /* next --format */
	bool table;               /* list, stats --table */
	long long limit;          /* list --limit; 0: none */
	long long listed;         /* list: items printed so far */
	char *roles[64];
	size_t nroles;
	int64_t ttl_ns;
	bool wait;
	int64_t wait_ns;          /* with wait: how long; -1 forever; wait --timeout */
	bool wait_given;          /* wait --timeout */
	uint64_t token;
	bool token_given;
	json_t *result;
	const char *error;
	int64_t retry_ns;
	int state_mask;
	int64_t older_ns;
	bool older_given;
	long long count;          /* next -n */
	const char *affinity;     /* next --affinity: the agent claimed as */
	int64_t steal_after_ns;   /* next --steal-after; -1: not given */
	bool keys;                /* stats --keys */
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

/* The queue an item is looked for in: without it, the item is not there
 * either (the -q forgotten), which is what the user needs to hear. */
static void open_queue_of(struct sw_queue *q, struct sw_ws *ws, const struct opts *o, const char *id)
{
	int rc = sw_queue_open(q, ws, o->queue, false);
	if (rc == SW_EX_FALSE)
		sw_die(rc, "no item %s in queue '%s'", id, o->queue);
	if (rc)
		sw_die(rc, "%s", q->err.msg);
}

/* --quiet silences "nothing to claim" too: the exit status says it */
static void say(const struct opts *o, int rc, const char *msg)
{
	if (!(rc == EX_TEMPFAIL && o->quiet))
		sw_warn("%s", msg);
}

/* A permission problem is fixed where it is: the queue's directory is
 * named, as sw-agent names it. */
static void say_q(const struct opts *o, int rc, const struct sw_queue *q)
{
	if (rc == EX_NOPERM && q->ws)
		sw_warn("queue %s/queues/%s: %s", q->ws->path, q->name, q->err.msg);
	else
		say(o, rc, q->err.msg);
}

static int finish(struct sw_queue *q, int rc, const struct opts *o, json_t *out)
{
	if (rc) {
		say_q(o, rc, q);
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

static json_t *line_spec(const struct opts *o, const char *line, size_t len, struct sw_err *err)
{
	if (o->lines) {
		if (!sw_utf8_valid(line, len)) {
			sw_err_set(err, EX_DATAERR, "invalid UTF-8");
			return NULL;
		}
		return json_pack("{s:s%}", "payload", line, len);
	}
	return sw_json_parse(line, len, err);
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

struct added_line { char *id; bool existed; char state[16]; };

struct adder {
	struct opts *o;
	struct sw_queue *q;
	struct sw_batch *bt;      /* NULL: checking only */
	size_t count, total;
	bool any_after;           /* some item waits for others */
	int64_t last_progress;
	struct added_line *out;   /* printed once the batch is committed */
	size_t nout;
};

static json_t *build_item(struct adder *a, const char *line, size_t n, size_t lineno)
{
	struct sw_err err;
	json_t *spec = line_spec(a->o, line, n, &err);
	json_t *item = spec ? sw_item_new(spec, &a->o->d, a->o->queue, &err) : NULL;
	/* a line of plain text (`seq 10 | sw-claim add`) is the usual slip */
	bool hint = !a->o->lines && (!spec || !json_is_object(spec));
	json_decref(spec);
	if (!item)
		sw_die(EX_DATAERR, "line %zu: %s; nothing added%s", lineno, err.msg,
		       hint ? " (each line is an item object; --lines takes plain lines as payloads)" : "");
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

static void print_added_id(struct adder *a, const char *id, bool existed, const char *state)
{
	json_t *r = json_pack("{s:s,s:s,s:b}", "id", id, "queue", a->q->name, "added", !existed);
	if (!existed)
		json_object_set_new(r, "state", json_string(state));
	print(a->o, r);
	json_decref(r);
}

static const char *added_state(const json_t *item)
{
	const char *s = sw_json_str(item, "state");
	return s ? s : "pending";
}

static int check_line(const char *line, size_t n, size_t lineno, void *arg)
{
	struct adder *a = arg;
	json_t *item = build_item(a, line, n, lineno);
	a->any_after |= json_object_get(item, "after") != NULL;
	json_decref(item);
	a->total++;
	return 0;
}

/* An item may wait for one on a later line: the batch learns their ids
 * first (a pass only made when some item waits). */
static int expect_line(const char *line, size_t n, size_t lineno, void *arg)
{
	struct adder *a = arg;
	json_t *item = build_item(a, line, n, lineno);
	int rc = json_is_true(json_object_get(item, "given_id")) ? sw_batch_expect(a->bt, sw_json_str(item, "id")) : 0;
	json_decref(item);
	return rc;
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
			snprintf(a->out[a->nout].state, sizeof a->out[a->nout].state, "%s", added_state(item));
			a->out[a->nout++].existed = existed;
		}
		progress(a, false);
	} else {
		/* which line, for the one-line error (what stayed: the abort says) */
		char msg[sizeof a->q->err.msg];
		snprintf(msg, sizeof msg, "line %zu: %s", lineno, a->q->err.msg);
		snprintf(a->q->err.msg, sizeof a->q->err.msg, "%s", msg);
	}
	json_decref(item);
	return rc;
}

/* The item of a PAYLOAD argument, or a one-line error (65). */
static json_t *arg_item(const struct opts *o)
{
	const char *arg = o->arg;
	struct sw_err err;
	json_t *payload = o->lines ? json_string(arg) : sw_json_parse(arg, strlen(arg), &err);
	if (!payload && o->lines)
		sw_die(EX_DATAERR, "PAYLOAD is not valid UTF-8");
	if (!payload)
		sw_die(EX_DATAERR, "PAYLOAD is not JSON: %s (use --lines for a plain string)", err.msg);
	json_t *spec = json_pack("{s:o}", "payload", payload);
	json_t *item = sw_item_new(spec, &o->d, o->queue, &err);
	json_decref(spec);
	if (!item)
		sw_die(EX_DATAERR, "%s; nothing added", err.msg);
	return item;
}

static int add_arg(struct adder *a, json_t *item, struct sw_span *sp)
{
	bool existed;
	int rc = sw_queue_add(a->q, &item, 1, &existed);
	if (rc == 0) {
		print_added_id(a, sw_json_str(item, "id"), existed, added_state(item));
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
	q.after_missing_ok = o->after_missing_ok;
	if (item) {
		rc = add_arg(&a, item, sp);
	} else {
		a.bt = sw_batch_new(&q);
		if (!a.bt)
			sw_die(EX_IOERR, "%s", q.err.msg);
		rc = a.any_after ? each_line(buf, len, expect_line, &a) : 0;
		if (rc)
			sw_batch_abort(a.bt);
		else if ((rc = each_line(buf, len, add_line, &a)) != 0) {
			/* else the abort said how many added items stayed */
			if (sw_batch_abort(a.bt) == 0)
				sw_err_append(&q.err, "; nothing added");
		} else {
			rc = sw_batch_commit(a.bt);
		}
		progress(&a, true);
		/* what is printed as added is in the queue */
		for (size_t i = 0; i < a.nout; i++) {
			if (rc == 0)
				print_added_id(&a, a.out[i].id, a.out[i].existed, a.out[i].state);
			free(a.out[i].id);
		}
		free(a.out);
		sw_span_int(sp, "sw.items", (int64_t)a.count);
		free(buf);
	}
	return finish(&q, rc, o, NULL);
}

/* ---- next ------------------------------------------------------------- */

/* A payload for a shell: a string as itself, anything else as compact
 * JSON; NULL when it cannot be (a NUL byte, or no memory). */
static char *payload_text(const json_t *payload, size_t *len)
{
	if (json_is_string(payload)) {
		*len = json_string_length(payload);
		return memchr(json_string_value(payload), 0, *len) ? NULL : strndup(json_string_value(payload), *len);
	}
	char *s = json_dumps(payload ? payload : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
	if (s)
		*len = strlen(s);
	return s;
}

/* As jq's @tsv: a tab, newline, carriage return or backslash escaped. */
static void put_tsv(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		switch (s[i]) {
		case '\t': fputs("\\t", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\\': fputs("\\\\", f); break;
		default: fputc(s[i], f);
		}
}

/* As jq's @sh: in single quotes, a quote as '\''. */
static void put_sh(FILE *f, const char *name, const char *s, size_t n)
{
	fprintf(f, "%s='", name);
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\'')
			fputs("'\\''", f);
		else
			fputc(s[i], f);
	fputs("'", f);
}

/* The claim in the format asked for: 0, or -1 with errno (EILSEQ: the
 * payload cannot be put in a shell variable). */
static int print_claim(const struct opts *o, const json_t *item)
{
	if (o->format == FMT_JSON)
		return sw_json_print(item);
	size_t plen, n;
	char *payload = payload_text(json_object_get(item, "payload"), &plen), *buf = NULL;
	if (!payload) {
		errno = EILSEQ;
		return -1;
	}
	char token[24], attempt[24];
	snprintf(token, sizeof token, "%lld", (long long)sw_json_int(item, "token", 0));
	snprintf(attempt, sizeof attempt, "%lld", (long long)sw_json_int(item, "attempt", 0));
	const char *id = sw_json_str(item, "id");
	FILE *f = open_memstream(&buf, &n);
	if (!f) {
		free(payload);
		return -1;
	}
	if (o->format == FMT_TSV) {
		fprintf(f, "%s\t%s\t", id, token);
		put_tsv(f, payload, plen);
	} else {
		put_sh(f, "id", id, strlen(id));
		fputc(' ', f);
		put_sh(f, "token", token, strlen(token));
		fputc(' ', f);
		put_sh(f, "attempt", attempt, strlen(attempt));
		fputc(' ', f);
		put_sh(f, "payload", payload, plen);
	}
	fputc('\n', f);
	free(payload);
	int rc = fclose(f) == 0 && fwrite(buf, 1, n, stdout) == n ? 0 : -1;
	free(buf);
	return rc;
}

static int collect(json_t *item, void *arg)
{
	return json_array_append_new(arg, item) ? EX_SOFTWARE : 0;
}

/* Every claim in the format asked for, in one write: 0, or -1 with errno. */
static int print_claims(const struct opts *o, json_t *items)
{
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
		if (print_claim(o, it) < 0)
			return -1;
	return fflush(stdout) == 0 ? 0 : -1;
}

/* next --affinity AGENT: the ring of the queue's live agents of these
 * roles, AGENT's place in it (none: only keyless items and others' that
 * waited).  NULL without --affinity or when the ring is empty. */
static const struct sw_affinity *affinity_of(struct sw_cmd *c, struct sw_queue *q, struct sw_aff_ring *ring,
					     struct sw_affinity *aff)
{
	const struct opts *o = c->opts;
	if (!o->affinity)
		return NULL;
	if (sw_aff_ring_load(ring, &c->ws, q->name, (const char *const *)o->roles, o->nroles) < 0)
		sw_die(sw_ex_errno(errno), "--affinity: reading the agents: %s", strerror(errno));
	if (!ring->have)
		return NULL;
	long me = sw_nodes_find(&ring->nodes, o->affinity);
	*aff = (struct sw_affinity){ &ring->pl, me < 0 ? UINT32_MAX : (uint32_t)me,
				     o->steal_after_ns >= 0 ? o->steal_after_ns : SW_AFF_STEAL_AFTER_DEFAULT_NS, NULL };
	return aff;
}

static int cmd_next(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_span *sp = &c->sp;
	struct sw_queue q;
	int rc = sw_queue_open(&q, &c->ws, o->queue, o->wait);
	if (rc == SW_EX_FALSE)   /* no queue yet: nothing to claim */
		rc = EX_TEMPFAIL, snprintf(q.err.msg, sizeof q.err.msg, "nothing to claim in queue '%s'", o->queue);
	if (rc) {
		say_q(o, rc, &q);
		return rc;
	}
	int64_t deadline = o->wait_ns >= 0 ? sw_now_ns() + o->wait_ns : INT64_MAX;
	struct sw_aff_ring ring = { 0 };
	struct sw_affinity aff;
	struct sw_claim_opts co = { (const char *const *)o->roles, o->nroles, o->ttl_ns,
				    o->count ? (size_t)o->count : 1, affinity_of(c, &q, &ring, &aff) };
	json_t *items = json_array();
	size_t n = 0;
	if (!items)
		sw_die(EX_SOFTWARE, "out of memory");
	for (;;) {
		rc = sw_queue_claim_many(&q, &co, collect, items, &n);
		if (rc != EX_TEMPFAIL || !o->wait || sw_now_ns() >= deadline)
			break;
		sw_queue_wait(&q, (const char *const *)o->roles, o->nroles, deadline);
	}
	if (n == 1) {
		json_t *out = json_array_get(items, 0);
		sw_span_str(sp, "sw.item.id", sw_json_str(out, "id"));
		sw_span_int(sp, "sw.item.token", sw_json_int(out, "token", 0));
		sw_span_int(sp, "sw.item.attempt", sw_json_int(out, "attempt", 0));
	}
	if (n > 0)
		sw_span_int(sp, "sw.items", (int64_t)n);
	if (rc == EX_TEMPFAIL && o->wait)
		snprintf(q.err.msg, sizeof q.err.msg, "nothing to claim in queue '%s' (waited)", o->queue);
	if (rc == 0 && !o->quiet && print_claims(o, items) < 0) {
		/* nobody learnt the tokens: give the items back rather than
		 * leave them claimed until their leases run out */
		int e = errno;
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it)
			sw_queue_release(&q, sw_json_str(it, "id"), (uint64_t)sw_json_int(it, "token", 0), NULL);
		if (e == EILSEQ)
			sw_die(EX_DATAERR, "an item's payload holds a NUL byte, which a shell cannot hold "
			       "(--format json can); the claims were given back");
		sw_die(EX_IOERR, "writing output: %s; the claims were given back", strerror(e));
	}
	json_decref(items);
	sw_aff_ring_free(&ring);
	return finish(&q, rc, o, NULL);
}

/* ---- verbs on claimed items ------------------------------------------- */

/* What the options say of a finish or renewal: a stdin line may say
 * otherwise for its item. */
static struct sw_fin fin_defaults(const struct opts *o)
{
	return (struct sw_fin){ .result = o->result, .error = o->error, .retry_ns = o->retry_ns,
				.ttl_ns = o->ttl_ns };
}

static int claimed_one(struct sw_cmd *c, enum sw_fin_verb verb)
{
	struct opts *o = c->opts;
	const char *id = need_id(o);
	sw_span_str(&c->sp, "sw.item.id", id);
	sw_span_int(&c->sp, "sw.item.token", (int64_t)o->token);
	struct sw_queue q;
	open_queue_of(&q, &c->ws, o, id);
	struct sw_fin f = fin_defaults(o);
	f.id = id;
	f.token = o->token;
	int rc = sw_queue_apply_one(&q, verb, &f);
	return finish(&q, rc, o, f.out);
}

/* Claims from stdin: taken a chunk at a time, so that a long stream
 * finds each claim with one read of claimed/ a chunk and commits with two
 * syncs a chunk. */
#define CHUNK 512

struct fin_line {
	struct sw_fin f;
	json_t *line;             /* holds what f points into */
	const char *queue;
	size_t lineno;
};

/* One stdin line as a claim: 0, or 65 with why in err. */
static int fin_parse(const struct opts *o, enum sw_fin_verb verb, const char *text, size_t len,
		     struct fin_line *l, struct sw_err *err)
{
	*l = (struct fin_line){ .f = fin_defaults(o), .queue = o->queue };
	if (!(l->line = sw_json_parse(text, len, err)))
		return EX_DATAERR;
	const char *id = sw_json_str(l->line, "id"), *q = sw_json_str(l->line, "queue");
	json_t *tok = json_object_get(l->line, "token");
	const char *why = !json_is_object(l->line) ? "not an object with id and token"
			: !id ? "no \"id\"" : sw_name_problem(id) ? "bad \"id\""
			: q && sw_name_problem(q) ? "bad \"queue\"" : NULL;
	int64_t t = 0;
	if (!why && !(sw_json_i64(tok, &t) && t > 0))
		why = "no \"token\" (a positive integer)";
	if (why)
		return sw_err_set(err, EX_DATAERR, "%s", why);
	l->f.id = id;
	l->f.token = (uint64_t)t;
	if (q)
		l->queue = q;
	json_t *v;
	if (verb == SW_FIN_DONE && (v = json_object_get(l->line, "result")))
		l->f.result = v;
	if (verb == SW_FIN_FAIL && (v = json_object_get(l->line, "error"))) {
		if (!json_is_string(v))
			return sw_err_set(err, EX_DATAERR, "\"error\" is not a string");
		l->f.error = json_string_value(v);
	}
	return 0;
}

/* Worse codes win: a usage or data error over a stale token (1). */
static int worse(int a, int b)
{
	return !a ? b : !b ? a : a == SW_EX_FALSE ? b : a;
}

static void print_outcome(const struct opts *o, const struct fin_line *l)
{
	json_t *j = l->f.rc == 0 ? json_incref(l->f.out) : json_object();
	if (!j)
		sw_die(EX_SOFTWARE, "out of memory");
	if (l->f.rc == 0) {
		json_object_set_new(j, "ok", json_true());
	} else {
		/* the id (or the line) first, for a reader's eye */
		if (l->f.id)
			json_object_set_new(j, "id", json_string(l->f.id));
		else
			json_object_set_new(j, "line", json_integer((json_int_t)l->lineno));
		json_object_set_new(j, "queue", json_string(l->queue));
		json_object_set_new(j, "ok", json_false());
		json_object_set_new(j, "code", json_integer(l->f.rc));
		json_object_set_new(j, "message", json_string(l->f.err.msg));
	}
	print(o, j);
	json_decref(j);
}

/* Applies one chunk, queue by queue; returns the worst code. */
static int apply_chunk(struct sw_cmd *c, enum sw_fin_verb verb, struct fin_line *l, size_t n, size_t *failed)
{
	struct opts *o = c->opts;
	struct sw_fin f[CHUNK];
	int rc = 0;
	bool *seen = calloc(n, sizeof *seen);
	if (!seen)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (seen[i] || l[i].f.rc)
			continue;
		/* the lines of l[i]'s queue */
		size_t idx[CHUNK], m = 0;
		for (size_t j = i; j < n; j++)
			if (!seen[j] && !l[j].f.rc && !strcmp(l[j].queue, l[i].queue)) {
				seen[j] = true;
				idx[m] = j;
				f[m++] = l[j].f;
			}
		struct sw_queue q;
		int orc = sw_queue_open(&q, &c->ws, l[i].queue, false);
		if (orc == SW_EX_FALSE)
			orc = sw_err_set(&q.err, SW_EX_FALSE, "no queue '%s'", l[i].queue);
		if (!orc)
			sw_queue_apply(&q, verb, f, m);
		for (size_t k = 0; k < m; k++) {
			if (orc) {
				f[k].rc = orc;
				f[k].err = q.err;
			}
			l[idx[k]].f = f[k];
		}
		sw_queue_close(&q);
	}
	for (size_t i = 0; i < n; i++) {
		print_outcome(o, &l[i]);
		rc = worse(rc, l[i].f.rc);
		*failed += l[i].f.rc != 0;
		json_decref(l[i].f.out);
		json_decref(l[i].line);
	}
	free(seen);
	return rc;
}

struct fin_reader {
	struct sw_cmd *c;
	enum sw_fin_verb verb;
	struct fin_line l[CHUNK];
	size_t n, lines, failed;
	int rc;
};

static int fin_line(const char *line, size_t n, size_t lineno, void *arg)
{
	struct fin_reader *r = arg;
	struct sw_err err;
	struct fin_line *l = &r->l[r->n++];
	int rc = fin_parse(r->c->opts, r->verb, line, n, l, &err);
	l->lineno = lineno;
	r->lines++;
	if (rc)
		l->f.rc = sw_err_set(&l->f.err, rc, "line %zu: %s", lineno, err.msg);
	if (r->n == CHUNK) {
		r->rc = worse(r->rc, apply_chunk(r->c, r->verb, r->l, r->n, &r->failed));
		r->n = 0;
	}
	return 0;
}

static int claimed_many(struct sw_cmd *c, enum sw_fin_verb verb)
{
	struct opts *o = c->opts;
	size_t len;
	char *buf = read_stdin(&len, o->d.item_max);
	struct fin_reader *r = calloc(1, sizeof *r);
	if (!r)
		sw_die(EX_SOFTWARE, "out of memory");
	r->c = c;
	r->verb = verb;
	each_line(buf, len, fin_line, r);
	if (r->n)
		r->rc = worse(r->rc, apply_chunk(c, verb, r->l, r->n, &r->failed));
	int rc = r->rc;
	/* the lines say which and why; stderr says that some did not */
	if (r->failed && !o->quiet)
		sw_warn("%zu of %zu claims not applied (\"ok\": false lines)", r->failed, r->lines);
	free(r);
	free(buf);
	return rc;
}

static int claimed_verb(struct sw_cmd *c, enum sw_fin_verb verb)
{
	struct opts *o = c->opts;
	return o->arg ? claimed_one(c, verb) : claimed_many(c, verb);
}

static int cmd_renew(struct sw_cmd *c) { return claimed_verb(c, SW_FIN_RENEW); }
static int cmd_done(struct sw_cmd *c) { return claimed_verb(c, SW_FIN_DONE); }
static int cmd_fail(struct sw_cmd *c) { return claimed_verb(c, SW_FIN_FAIL); }
static int cmd_release(struct sw_cmd *c) { return claimed_verb(c, SW_FIN_RELEASE); }

static int by_id(struct sw_cmd *c, int (*fn)(struct sw_queue *, const char *, json_t **))
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	const char *id = need_id(o);
	sw_span_str(sp, "sw.item.id", id);
	struct sw_queue q;
	open_queue_of(&q, ws, o, id);
	json_t *out = NULL;
	int rc = fn(&q, id, &out);
	return finish(&q, rc, o, out);
}

static int cmd_show(struct sw_cmd *c) { return by_id(c, sw_queue_show); }

static int print_item(json_t *item, void *arg)
{
	print(arg, item);
	return 0;
}

/* requeue/cancel: one ID, or every item of --state in the queue. */
static int by_id_or_state(struct sw_cmd *c, int (*one)(struct sw_queue *, const char *, json_t **),
			  int (*all)(struct sw_queue *, int, int64_t, int (*)(json_t *, void *), void *,
				     long long *))
{
	struct opts *o = c->opts;
	if (o->arg)
		return by_id(c, one);
	struct sw_queue q;
	int rc = sw_queue_open(&q, &c->ws, o->queue, false);
	if (rc == SW_EX_FALSE)
		return 0;   /* no queue: nothing in it */
	if (rc)
		sw_die(rc, "%s", q.err.msg);
	long long n = 0;
	rc = all(&q, o->state_mask, o->older_ns, print_item, o, &n);
	sw_span_int(&c->sp, "sw.items", n);
	return finish(&q, rc, o, NULL);
}

static int cmd_cancel(struct sw_cmd *c) { return by_id_or_state(c, sw_queue_cancel, sw_queue_cancel_all); }
static int cmd_requeue(struct sw_cmd *c) { return by_id_or_state(c, sw_queue_requeue, sw_queue_requeue_all); }

static int print_dep(json_t *dep, void *arg)
{
	print(arg, dep);
	return 0;
}

static int cmd_deps(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	sw_span_str(&c->sp, "sw.item.id", o->arg);
	struct sw_queue q;
	open_queue_of(&q, &c->ws, o, o->arg);
	json_t *item = NULL;
	int rc = sw_queue_show(&q, o->arg, &item);
	if (rc == 0)
		rc = sw_queue_deps(&q, item, print_dep, o);
	json_decref(item);
	return finish(&q, rc, o, NULL);
}

/* ---- wait ------------------------------------------------------------- */

/* Prints each item as it ends; 0 when all are done, 1 when one is dead
 * or cancelled (or not in the queue), 75 when the time is up first. */
static int cmd_wait(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_queue q;
	open_queue_of(&q, &c->ws, o, c->args[0]);
	size_t n = c->nargs, left = n;
	bool *ended = calloc(n, sizeof *ended);
	if (!ended)
		sw_die(EX_SOFTWARE, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *item = NULL;
		int src = sw_queue_show(&q, c->args[i], &item);   /* is it there at all? */
		json_decref(item);
		if (src)
			sw_die(src, "%s", q.err.msg);
	}
	int64_t deadline = o->wait_given ? sw_now_ns() + o->wait_ns : INT64_MAX;
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			const char *end = ended[i] ? NULL : sw_queue_ended(&q, c->args[i]);
			json_t *item = NULL;
			if (!end || sw_queue_show(&q, c->args[i], &item))
				continue;   /* on its way, or purged the moment it ended */
			ended[i] = true;
			left--;
			if (strcmp(end, "done"))
				rc = SW_EX_FALSE;
			print(o, item);
			json_decref(item);
			fflush(stdout);
		}
		if (!left || sw_now_ns() >= deadline)
			break;
		sw_queue_wait_end(&q, deadline);
	}
	if (left) {
		rc = EX_TEMPFAIL;
		snprintf(q.err.msg, sizeof q.err.msg, "%zu of %zu item%s not ended yet", left, n, n == 1 ? "" : "s");
	} else if (rc) {
		snprintf(q.err.msg, sizeof q.err.msg, "not every item is done");
	}
	free(ended);
	return finish(&q, rc, o, NULL);
}

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


/* The payload in one line of at most width characters. */
static void payload_cell(char *out, size_t width, const json_t *payload)
{
	char *s = json_dumps(payload ? payload : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = s ? strlen(s) : 0;
	if (n > width)
		snprintf(out, width + 1, "%.*s...", (int)width - 3, s);
	else
		snprintf(out, width + 1, "%s", s ? s : "?");
	free(s);
}

static void age_cell(char out[SW_DUR_LEN], const json_t *item, const char *field)
{
	int64_t t = sw_json_int(item, field, 0);
	if (t > 0)
		sw_fmt_duration(sw_now_ns() - t, out);
	else
		snprintf(out, SW_DUR_LEN, "-");
}

#define LIST_HEAD "%-12s %-26s %-9s %3s %7s %7s  %s\n"

static int list_item(json_t *item, void *arg)
{
	struct opts *o = arg;
	if (o->limit && o->listed >= o->limit)
		return 1;    /* enough: stop the walk */
	o->listed++;
	if (!o->table) {
		print(o, item);
		return 0;
	}
	char payload[41], age[SW_DUR_LEN], att[24], prio[8];
	payload_cell(payload, 40, json_object_get(item, "payload"));
	age_cell(age, item, "created_at_unix_ns");
	snprintf(att, sizeof att, "%lld/%lld", (long long)sw_json_int(item, "attempt", 0),
		 (long long)sw_json_int(item, "max_attempts", 0));
	snprintf(prio, sizeof prio, "%lld", (long long)sw_json_int(item, "priority", 0));
	/* a damaged entry has a name and a reason, not an id and a payload */
	const char *id = sw_json_str(item, "id");
	if (!id) {
		id = sw_json_str(item, "name");
		snprintf(payload, sizeof payload, "%.40s", sw_json_str(item, "reason") ? sw_json_str(item, "reason") : "");
		age_cell(age, item, "damaged_at_unix_ns");
	}
	if (!o->quiet)
		printf(LIST_HEAD, sw_json_str(item, "queue"), id ? id : "-", sw_json_str(item, "state"),
		       prio, att, age, payload);
	return 0;
}

static int list_queue(struct each_q *e, struct sw_queue *q)
{
	int rc = sw_queue_list(q, e->o->state_mask ? e->o->state_mask : SW_ST_ALL, list_item, e->o);
	return rc == 1 ? 0 : rc;   /* the limit reached */
}

static int cmd_list(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	(void)sp;
	struct each_q e = {0};
	if (o->table && !o->quiet)
		printf(LIST_HEAD, "QUEUE", "ID", "STATE", "PRI", "ATTEMPT", "AGE", "PAYLOAD");
	return for_queues(o, ws, list_queue, &e);
}

#define STATS_HEAD "%-12s %8s %8s %8s %8s %8s %8s %9s %8s  %s\n"
#define STATS_ROW "%-12s %8lld %8lld %8lld %8lld %8lld %8lld %9lld %8lld  %s\n"

#define KEYS_HEAD "%-12s %-28s %8s\n"
#define KEYS_ROW "%-12s %-28s %8lld\n"

/* stats --keys: the pending keyed items each live agent of the queue owns
 * (affinity.h), those no live agent owns, and those without a key. */
static int keys_queue(struct each_q *e, struct sw_queue *q, struct sw_ws *ws, json_t *j)
{
	struct sw_aff_counts k;
	int rc = sw_aff_count(q, ws, &k);
	if (rc)
		return rc;
	json_t *owners = json_object();
	for (size_t i = 0; i < k.n; i++)
		json_object_set_new(owners, k.v[i].id, json_integer(k.v[i].owns));
	json_object_set_new(j, "keys", json_pack("{s:I,s:I,s:I,s:o}", "keyed", (json_int_t)k.keyed,
		"unkeyed", (json_int_t)k.unkeyed, "unowned", (json_int_t)k.unowned, "owners", owners));
	if (e->o->table && !e->o->quiet) {
		for (size_t i = 0; i < k.n; i++)
			printf(KEYS_ROW, q->name, k.v[i].id, k.v[i].owns);
		printf(KEYS_ROW, q->name, "(no live owner)", k.unowned);
		printf(KEYS_ROW, q->name, "(no key)", k.unkeyed);
	}
	sw_aff_counts_free(&k);
	return 0;
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
	if (e->o->keys && (rc = keys_queue(e, q, e->ws, j))) {
		json_decref(j);
		return rc;
	}
	if (e->o->table && e->o->keys) {
		/* the owners' table stands instead of the states' */
	} else if (e->o->table) {
		char age[SW_DUR_LEN];
		age_cell(age, j, "oldest_pending_at_unix_ns");
		if (!e->o->quiet)
			printf(STATS_ROW, q->name, st.pending, st.delayed, st.blocked, st.claimed, st.done, st.dead,
			       st.cancelled, st.damaged, age);
	} else {
		print(e->o, j);
	}
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
	if (o->table && !o->quiet && o->keys)
		printf(KEYS_HEAD, "QUEUE", "OWNER", "PENDING");
	else if (o->table && !o->quiet)
		printf(STATS_HEAD, "QUEUE", "PENDING", "DELAYED", "BLOCKED", "CLAIMED", "DONE", "DEAD", "CANCELLED",
		       "DAMAGED", "OLDEST");
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
	if (o->state_mask & (SW_ST_PENDING | SW_ST_BLOCKED | SW_ST_CLAIMED))
		sw_usage_error("only done, dead, cancelled and damaged entries can be purged");
	struct each_q e = {0};
	return for_queues(o, ws, purge_queue, &e);
}

static int cmd_drop(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err e;
	sw_span_str(&c->sp, "sw.queue", o->arg);
	int rc = sw_queue_drop(&c->ws, o->arg, o->force, &e);
	if (rc) {
		say(o, rc, e.msg);
		return rc;
	}
	json_t *j = json_pack("{s:s,s:b}", "queue", o->arg, "dropped", 1);
	print(o, j);
	json_decref(j);
	return 0;
}

/* ---- options and main ------------------------------------------------- */

static const int o_add[] = { 'q', 'p', 'r', O_ID, O_KEY, O_MAXATT, O_TIMEOUT, O_DELAY, O_AFTER, O_DEPFAIL, O_MISSING,
			     O_LINES, 0 };
static const int o_next[] = { 'q', 'n', O_ROLES, O_TTL, O_WAIT, O_FORMAT, O_AFFINITY, O_STEAL, 0 };
static const int o_renew[] = { 'q', O_TOKEN, O_TTL, 0 };
static const int o_done[] = { 'q', O_TOKEN, O_RESULT, 0 };
static const int o_fail[] = { 'q', O_TOKEN, O_ERROR, O_RETRY, 0 };
static const int o_release[] = { 'q', O_TOKEN, 0 };
static const int o_q[] = { 'q', 0 };
static const int o_list[] = { 'q', O_STATE, O_LIMIT, O_TABLE, 0 };
static const int o_stats[] = { 'q', O_TABLE, O_KEYS, 0 };
static const int o_purge[] = { 'q', O_STATE, O_OLDER, 0 };
static const int o_bulk[] = { 'q', O_STATE, O_OLDER, 0 };
static const int o_drop[] = { O_FORCE, 0 };
static const int o_wait[] = { 'q', O_TIMEOUT, 0 };

static const struct sw_verb verbs[] = {
	{ "add", cmd_add, "at most one PAYLOAD", 0, 1, o_add, 0 },
	{ "next", cmd_next, "", 0, 0, o_next, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "renew", cmd_renew, "one ID", 0, 1, o_renew, SW_CMD_WS },
	{ "done", cmd_done, "one ID", 0, 1, o_done, SW_CMD_WS },
	{ "fail", cmd_fail, "one ID", 0, 1, o_fail, SW_CMD_WS },
	{ "release", cmd_release, "one ID", 0, 1, o_release, SW_CMD_WS },
	{ "cancel", cmd_cancel, "one ID", 0, 1, o_bulk, SW_CMD_WS },
	{ "requeue", cmd_requeue, "one ID", 0, 1, o_bulk, SW_CMD_WS },
	{ "show", cmd_show, "one ID", 1, 1, o_q, SW_CMD_WS },
	{ "deps", cmd_deps, "one ID", 1, 1, o_q, SW_CMD_WS },
	{ "wait", cmd_wait, "ID...", 1, 65536, o_wait, SW_CMD_WS },
	{ "list", cmd_list, "", 0, 0, o_list, SW_CMD_WS },
	{ "stats", cmd_stats, "", 0, 0, o_stats, SW_CMD_WS },
	{ "reap", cmd_reap, "", 0, 0, o_q, SW_CMD_WS },
	{ "purge", cmd_purge, "", 0, 0, o_purge, SW_CMD_WS },
	{ "drop", cmd_drop, "a QUEUE", 1, 1, o_drop, SW_CMD_WS },
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
	struct sw_err err;
	json_t *spec = json_pack("{s:s}", "after", arg);
	json_t *item = sw_item_new(spec, &(struct sw_item_defaults){ .priority = 5, .max_attempts = 1 },
				   "x", &err);
	json_decref(spec);
	if (!item)
		return sw_cmd_err(c, EX_DATAERR, "--after: %s", err.msg);
	json_decref(o->d.after);
	o->d.after = json_incref(json_object_get(item, "after"));
	json_decref(item);
	return 0;
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	struct sw_err err;
	int64_t v;
	int rc = 0;
	switch (code) {
	case 'q':
		if (!(rc = sw_cmd_name(c, "queue name", arg))) {
			o->queue = arg;
			o->queue_given = true;
		}
		return rc;
	case 'n':
		if (!(rc = sw_cmd_int(c, "-n", arg, 1, 1000000, &v)))
			o->count = v;
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
	case O_KEY:
		o->d.key = arg;   /* checked with the item */
		return 0;
	case O_MAXATT:
		if (!(rc = sw_cmd_int(c, "--max-attempts", arg, 1, 1000000, &v)))
			o->d.max_attempts = (int)v;
		return rc;
	case O_TIMEOUT:
		/* add: the item's timeout; wait: how long to wait */
		o->wait_given = true;
		rc = sw_cmd_duration(c, "--timeout", arg, &o->wait_ns);
		o->d.timeout_ns = o->wait_ns;
		return rc;
	case O_DELAY: return sw_cmd_duration(c, "--delay", arg, &o->d.delay_ns);
	case O_AFTER: return parse_after(c, o, arg);
	case O_DEPFAIL:
		if ((o->d.on_dep_fail = sw_dep_fail_parse(arg)) < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --on-dep-fail '%.40s': want dead, cancel or run", arg);
		return 0;
	case O_MISSING:
		if (strcmp(arg, "ok") && strcmp(arg, "refuse"))
			return sw_cmd_err(c, EX_USAGE, "bad --after-missing '%.40s': want ok or refuse", arg);
		o->after_missing_ok = !strcmp(arg, "ok");
		return 0;
	case O_LINES: o->lines = true; return 0;
	case O_KEYS: o->keys = true; return 0;
	case O_AFFINITY: return (rc = sw_cmd_name(c, "agent id", arg)) ? rc : (o->affinity = arg, 0);
	case O_STEAL: return sw_cmd_duration(c, "--steal-after", arg, &o->steal_after_ns);
	case O_ROLES: return parse_roles(c, o, arg);
	case O_TTL: return sw_cmd_ttl(c, "--ttl", arg, 1000000, &o->ttl_ns);
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
		o->result = sw_json_parse(arg, strlen(arg), &err);
		return o->result ? 0 : sw_cmd_err(c, EX_DATAERR, "--result is not JSON: %s", err.msg);
	case O_ERROR:
		if (!sw_utf8_valid(arg, strlen(arg)))
			return sw_cmd_err(c, EX_DATAERR, "--error is not valid UTF-8");
		o->error = arg;
		return 0;
	case O_RETRY: return sw_cmd_duration(c, "--retry-in", arg, &o->retry_ns);
	case O_STATE:
		if ((o->state_mask = sw_state_mask(arg)) < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --state '%.60s': want pending, blocked, claimed, done, "
					  "dead, cancelled, all or damaged", arg);
		return 0;
	case O_FORCE: o->force = true; return 0;
	case O_TABLE: o->table = true; return 0;
	case O_LIMIT:
		if (!(rc = sw_cmd_int(c, "--limit", arg, 1, INT64_MAX, &v)))
			o->limit = v;
		return rc;
	case O_FORMAT:
		if (!strcmp(arg, "json")) o->format = FMT_JSON;
		else if (!strcmp(arg, "tsv")) o->format = FMT_TSV;
		else if (!strcmp(arg, "sh")) o->format = FMT_SH;
		else return sw_cmd_err(c, EX_USAGE, "bad --format '%.40s': want json, tsv or sh", arg);
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
		int rc = sw_cmd_name(c, c->verb->run == cmd_drop ? "queue name" : "id", o->arg);
		if (rc)
			return rc;
	}
	if (c->verb->run == cmd_cancel || c->verb->run == cmd_requeue) {
		if (!o->arg == !o->state_mask)
			return sw_cmd_err(c, EX_USAGE, "%s takes an ID or --state, one of them", c->verb->name);
		if (o->older_given && !o->state_mask)
			return sw_cmd_err(c, EX_USAGE, "--older-than goes with --state");
		int allowed = c->verb->run == cmd_cancel ? SW_ST_PENDING | SW_ST_BLOCKED | SW_ST_CLAIMED
							 : SW_ST_DEAD | SW_ST_CANCELLED;
		if (o->state_mask & ~allowed)
			return sw_cmd_err(c, EX_USAGE, "%s --state takes %s", c->verb->name,
					  c->verb->run == cmd_cancel ? "pending, blocked or claimed" : "dead or cancelled");
	}
	if (o->steal_after_ns >= 0 && !o->affinity)
		return sw_cmd_err(c, EX_USAGE, "--steal-after needs --affinity");
	if (o->keys && o->table && o->quiet)
		o->keys = false;   /* nothing would be shown: no reason to count */
	bool takes_token = false;
	for (const int *p = c->verb->opts; *p; p++)
		takes_token |= *p == O_TOKEN;
	if (takes_token && o->arg && !o->token_given)
		return sw_cmd_err(c, EX_USAGE, "--token is required");
	if (takes_token && !o->arg && isatty(0))
		return sw_cmd_err(c, EX_USAGE, "an ID and --token, or claims as JSON Lines on stdin "
				  "(as next -n prints them)");
	if (takes_token && !o->arg && o->token_given)
		return sw_cmd_err(c, EX_USAGE, "--token goes with an ID; without one, each stdin line has its own");
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
	.name = "sw-claim", .usage = usage, .longopts = longopts, .shortopts = "q:p:r:n:",
	.verbs = verbs, .option = option, .check = check, .begin = begin,
};

int main(int argc, char **argv)
{
	struct opts o = {
		.d = { .priority = SW_PRIO_DEFAULT, .max_attempts = SW_ATTEMPTS_DEFAULT,
		       .timeout_ns = SW_TIMEOUT_DEFAULT_NS },
		.retry_ns = -1, .steal_after_ns = -1,
	};
	/* SW_QUEUE counts as -q: a flag's environment variable stands for it */
	o.queue = sw_queue_env(&o.queue_given);
	const char *why = o.queue_given ? sw_name_problem(o.queue) : NULL;
	if (why) {
		sw_prog_set("sw-claim");
		sw_die(EX_DATAERR, "bad queue name (SW_QUEUE): %s", why);
	}
	int rc = sw_cmd_main(&prog, argc, argv, &o);
	json_decref(o.result);
	json_decref(o.d.after);
	return rc;
}
