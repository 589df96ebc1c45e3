/* sw-shard — split work into shards plus a combiner, and map keys to nodes
 * so that adding, removing or restarting a node moves as few keys as
 * possible.  Stateless: it reads stdin and node lists; only split
 * --enqueue (through the queue engine), ring (rings/<name>.json) and the
 * @agents and @ring:NAME node sources touch the workspace.  The placement
 * algorithms and the hash live in lib/shard.c, the node sources and the
 * rings store in lib/ring.c. */
#include "clock.h"
#include "cmd.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "num.h"
#include "opt.h"
#include "queue.h"
#include "ring.h"
#include "shard.h"
#include "span.h"
#include "ws.h"
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: sw-shard VERB [options]\n"
	"  split  [--items-per-shard N] [--min-items N] [--max-shards N] [--id TASK]\n"
	"         [--lines] [--priority P] [--role ROLE] [--max-attempts N] [--timeout DUR]\n"
	"         [-q QUEUE --enqueue]\n"
	"         items on stdin -> one record per shard, then the combiner\n"
	"  assign --nodes NODES [--algo ALGO] [--vnodes N] [--max-load F] [--seed S] [--tsv]\n"
	"         keys on stdin (one a line) -> {\"key\",\"node\"} per key\n"
	"  plan   --from NODES --to NODES [--algo …] [--keys N] [--summary]\n"
	"         keys that move between two node lists, and the moved fraction\n"
	"  balance --nodes NODES [--algo …] [--keys N] [--summary]\n"
	"         keys per node and max/mean\n"
	"  ring NAME [--nodes NODES [--algo …] [--vnodes N] [--seed S] | --delete]\n"
	"         keep (or show, or delete) a node list in the workspace: @ring:NAME\n"
	"NODES: a list 'a,b=2,c' (or @list:LIST: one node with a '.' in its name\n"
	"       needs it), a file as ./PATH, /PATH or @file:PATH (one 'name [weight]'\n"
	"       a line), @agents[:ROLE] or @ring:NAME.\n"
	"Numbers are decimal digits (weights and F may have a fraction).\n"
	"ALGO: ring (default), rendezvous, jump, mod.  Common options:\n"
	"  -d, --dir DIR  --spans[=DEST]  --quiet  -h, --help  -V, --version\n";

enum {
	O_VNODES = SW_OPT_FIRST_FREE, O_MAXLOAD, O_SEED, O_TSV, O_FROM, O_TO, O_SUMMARY, O_KEYS,
	O_LINES, O_IPS, O_MINITEMS, O_MAXSHARDS, O_ID, O_ENQUEUE, O_PRIORITY, O_ROLE, O_DELETE,
	O_MAXATT, O_TIMEOUT
};

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"nodes", required_argument, 0, 'n'},
	{"algo", required_argument, 0, 'a'},
	{"vnodes", required_argument, 0, O_VNODES},
	{"max-load", required_argument, 0, O_MAXLOAD},
	{"seed", required_argument, 0, O_SEED},
	{"tsv", no_argument, 0, O_TSV},
	{"from", required_argument, 0, O_FROM},
	{"to", required_argument, 0, O_TO},
	{"summary", no_argument, 0, O_SUMMARY},
	{"keys", required_argument, 0, O_KEYS},
	{"lines", no_argument, 0, O_LINES},
	{"items-per-shard", required_argument, 0, O_IPS},
	{"min-items", required_argument, 0, O_MINITEMS},
	{"max-shards", required_argument, 0, O_MAXSHARDS},
	{"id", required_argument, 0, O_ID},
	{"queue", required_argument, 0, 'q'},
	{"enqueue", no_argument, 0, O_ENQUEUE},
	{"priority", required_argument, 0, O_PRIORITY},
	{"role", required_argument, 0, O_ROLE},
	{"delete", no_argument, 0, O_DELETE},
	{"max-attempts", required_argument, 0, O_MAXATT},
	{"timeout", required_argument, 0, O_TIMEOUT},
	{0, 0, 0, 0}
};

struct opts {
	bool quiet;
	const char *nodes, *from, *to, *id, *queue, *role;
	struct sw_ring_cfg cfg;  /* --algo, --vnodes, --seed (or a ring's) */
	double max_load;         /* 0: plain placement */
	bool tsv, summary, lines, enqueue, delete;
	const char *name;        /* ring NAME */
	int64_t keys;            /* synthetic keys; 0: read stdin */
	int64_t ips, min_items, max_shards;
	int priority;            /* -1: not given */
	int64_t max_attempts;    /* 0: not given */
	int64_t timeout_ns;      /* -1: not given */
};

/* ---- output: one big buffer, since assign prints a line per key ---- */

struct out {
	char *b;
	size_t n, cap;
	bool quiet;
};

static void out_flush(struct out *o)
{
	if (o->n && fwrite(o->b, 1, o->n, stdout) != o->n)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
	o->n = 0;
}

static void out_put(struct out *o, const char *s, size_t len)
{
	if (o->quiet)
		return;
	if (o->n + len > o->cap) {
		out_flush(o);
		if (len > o->cap) {
			if (fwrite(s, 1, len, stdout) != len)
				sw_die(EX_IOERR, "writing output: %s", strerror(errno));
			return;
		}
	}
	memcpy(o->b + o->n, s, len);
	o->n += len;
}

static void out_str(struct out *o, const char *s) { out_put(o, s, strlen(s)); }

/* a JSON string body (no quotes) of valid UTF-8, escaped straight into
 * the buffer: a million keys, no allocation each */
static void out_json_esc(struct out *o, const char *s, size_t len)
{
	/* in pieces the buffer can hold escaped: escaping goes byte by byte */
	size_t piece = o->cap / SW_JSON_ESC_MAX(1);
	for (size_t at = 0; at < len && !o->quiet; at += piece) {
		size_t n = len - at < piece ? len - at : piece;
		if (o->n + SW_JSON_ESC_MAX(n) > o->cap)
			out_flush(o);
		o->n += sw_json_escape(o->b + o->n, s + at, n);
	}
}
/* ten significant digits: 0.009992, not 0.0099919999999999991 */
static void out_json(struct out *o, const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (!s)
		sw_die(EX_SOFTWARE, "cannot format output");
	out_put(o, s, strlen(s));
	out_put(o, "\n", 1);
	free(s);
}

/* s as a JSON string with its quotes, malloc'd */
static char *json_quoted(const char *s)
{
	size_t len = strlen(s);
	char *q = malloc(SW_JSON_ESC_MAX(len) + 3);
	if (!q)
		sw_die(EX_SOFTWARE, "out of memory");
	size_t n = sw_json_escape(q + 1, s, len);
	q[0] = q[n + 1] = '"';
	q[n + 2] = 0;
	return q;
}

static void out_init(struct out *o, size_t cap, bool quiet)
{
	*o = (struct out){ .cap = cap, .quiet = quiet, .b = malloc(cap) };
	if (!o->b)
		sw_die(EX_SOFTWARE, "out of memory");
}

static void out_end(struct out *o)
{
	out_flush(o);
	if (fflush(stdout) != 0 || ferror(stdout))
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
}/* ---- input: lines of stdin, one at a time and bounded ---- */

/* The longest line taken, a key or an item: SW_MAX_ITEM_BYTES (as the
 * queue reads it), so that one endless line cannot take all memory. */
static size_t line_max(void)
{
	struct sw_settings st;
	struct sw_err e;
	if (sw_settings_read(&st, &e))
		sw_die(e.code, "%s", e.msg);
	return st.item_max;
}

struct lines {
	int fd;
	char *buf;
	size_t cap, start, end;   /* unread input is buf[start, end) */
	size_t max, lineno;
	bool eof;
	struct out *flush;        /* sent out before a read that would wait */
};

static void lines_init(struct lines *l, int fd, struct out *flush)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
	l->max = line_max();
	l->flush = flush;
	l->cap = 1 << 16;
	l->buf = malloc(l->cap);
	if (!l->buf)
		sw_die(EX_SOFTWARE, "out of memory reading stdin");
}

static void lines_free(struct lines *l)
{
	free(l->buf);
	l->buf = NULL;
}

/* Output held back is sent when the input pauses, so that a slow producer
 * (tail -f) gets its answers as its lines come, and a fast one in large
 * writes. */
static void out_push(struct out *o)
{
	out_flush(o);
	if (fflush(stdout) != 0)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
}

/* The next line, without its '\n', valid until the next call; false at
 * the end of input.  A line over the limit stops everything (65) without
 * being read whole. */
static bool line_next(struct lines *l, const char **p, size_t *len)
{
	for (;;) {
		char *at = l->buf + l->start;
		char *nl = memchr(at, '\n', l->end - l->start);
		if (nl || (l->eof && l->end > l->start)) {
			*p = at;
			*len = nl ? (size_t)(nl - at) : l->end - l->start;
			l->start = nl ? (size_t)(nl - l->buf) + 1 : l->end;
			l->lineno++;
			return true;
		}
		if (l->end - l->start > l->max)
			sw_die(EX_DATAERR, "line %zu: longer than %zu bytes (SW_MAX_ITEM_BYTES)",
			       l->lineno + 1, l->max);
		if (l->eof)
			return false;
		memmove(l->buf, at, l->end - l->start);
		l->end -= l->start;
		l->start = 0;
		if (l->end == l->cap) {
			size_t cap = l->cap * 2 < l->max + 2 ? l->cap * 2 : l->max + 2;
			char *b = realloc(l->buf, cap);
			if (!b)
				sw_die(EX_SOFTWARE, "out of memory reading stdin");
			l->buf = b;
			l->cap = cap;
		}
		struct pollfd pf = { .fd = l->fd, .events = POLLIN };
		if (l->flush && SW_NOINTR(poll(&pf, 1, 0)) == 0)
			out_push(l->flush);
		ssize_t r = SW_NOINTR(read(l->fd, l->buf + l->end, l->cap - l->end));
		if (r < 0)
			sw_die(EX_IOERR, "reading stdin: %s", strerror(errno));
		if (r == 0)
			l->eof = true;
		l->end += (size_t)r;
	}
}

/* Whether the next line_next would wait for a producer that is slow. */
static bool lines_waiting(struct lines *l)
{
	struct pollfd pf = { .fd = l->fd, .events = POLLIN };
	return l->buf && !l->eof && !memchr(l->buf + l->start, '\n', l->end - l->start) &&
	       SW_NOINTR(poll(&pf, 1, 0)) == 0;
}

/* Keys: stdin, one a line (empty lines skipped), or key0 … keyN-1 with
 * --keys. */
struct keysrc {
	int64_t syn, nsyn;
	char sbuf[32];
	struct lines in;
	bool json;                /* printed as JSON strings: UTF-8 only */
};

static void keysrc_init(struct keysrc *k, const struct opts *o, bool json, struct out *flush)
{
	memset(k, 0, sizeof *k);
	k->nsyn = o->keys;
	k->json = json;
	if (!o->keys)
		lines_init(&k->in, 0, flush);
}

static bool key_next(struct keysrc *k, const char **p, size_t *len)
{
	if (k->nsyn) {
		if (k->syn == k->nsyn)
			return false;
		*len = (size_t)snprintf(k->sbuf, sizeof k->sbuf, "key%lld", (long long)k->syn++);
		*p = k->sbuf;
		return true;
	}
	do {
		if (!line_next(&k->in, p, len))
			return false;
	} while (*len == 0);
	if (k->json && !sw_utf8_valid(*p, *len))
		sw_die(EX_DATAERR, "line %zu: key is not valid UTF-8", k->in.lineno);
	if (*len > UINT32_MAX)
		sw_die(EX_DATAERR, "line %zu: key over 4 GiB", k->in.lineno);
	return true;
}

/* Keys held: all of them for bounded loads (a node's cap depends on how
 * many there are), else the few read ahead. */
struct keys {
	char *buf;
	size_t used, cap;
	size_t *off;
	uint32_t *len;
	size_t n, ncap;
};

static void keys_push(struct keys *k, const char *p, size_t len)
{
	if (k->n == k->ncap) {
		k->ncap = k->ncap ? 2 * k->ncap : 64;
		k->off = realloc(k->off, k->ncap * sizeof *k->off);
		k->len = realloc(k->len, k->ncap * sizeof *k->len);
		if (!k->off || !k->len)
			sw_die(EX_SOFTWARE, "out of memory for keys");
	}
	if (k->used + len > k->cap) {
		k->cap = (k->used + len) * 2 + 4096;
		if (!(k->buf = realloc(k->buf, k->cap)))
			sw_die(EX_SOFTWARE, "out of memory for keys");
	}
	memcpy(k->buf + k->used, p, len);
	k->off[k->n] = k->used;
	k->len[k->n] = (uint32_t)len;
	k->used += len;
	k->n++;
}

static void keys_free(struct keys *k)
{
	free(k->buf);
	free(k->off);
	free(k->len);
}

/* ---- placing keys ---- */

/* Called per key in input order with its node under each placer (b is 0
 * without a second one). */
typedef void (*key_fn)(void *ctx, const char *key, size_t len, uint32_t a, uint32_t b);

struct placing {
	const struct opts *o;
	bool json;                /* keys must be UTF-8 */
	struct out *out;
	const struct sw_nodes *ns, *ns2;   /* ns2: plan's --to, else NULL */
	struct sw_placer pl, pl2;
};

static void placer_init(struct sw_placer *pl, const struct sw_nodes *ns, const struct opts *o,
			size_t nkeys)
{
	struct sw_err err;
	const struct sw_ring_cfg *c = &o->cfg;
	int code = sw_placer_init(pl, ns, c->algo, c->vnodes, c->seed, o->max_load > 0 ? SIZE_MAX : nkeys,
				  &err);
	if (code)
		sw_die(code, "%s", err.msg);
}

static uint32_t *alloc_out(size_t n)
{
	uint32_t *v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		sw_die(EX_SOFTWARE, "out of memory");
	return v;
}

/* Bounded loads: every key first, then placed together. */
static void place_held(struct placing *pg, struct keys *k, key_fn fn, void *ctx)
{
	uint64_t *h = malloc((k->n ? k->n : 1) * sizeof *h);
	uint32_t *a = alloc_out(k->n), *b = pg->ns2 ? alloc_out(k->n) : NULL;
	if (!h)
		sw_die(EX_SOFTWARE, "out of memory for keys");
	for (size_t i = 0; i < k->n; i++)
		h[i] = sw_key_hash(&pg->pl, k->buf + k->off[i], k->len[i]);
	if (sw_place_all(&pg->pl, h, k->n, pg->o->max_load, a) < 0 ||
	    (b && sw_place_all(&pg->pl2, h, k->n, pg->o->max_load, b) < 0))
		sw_die(EX_SOFTWARE, "out of memory placing keys");
	for (size_t i = 0; i < k->n; i++)
		fn(ctx, k->buf + k->off[i], k->len[i], a[i], b ? b[i] : 0);
	free(h);
	free(a);
	free(b);
}

static void place_one(struct placing *pg, const char *p, size_t len, key_fn fn, void *ctx)
{
	uint64_t h = sw_key_hash(&pg->pl, p, len);   /* the seed is shared: one hash serves both */
	fn(ctx, p, len, sw_place(&pg->pl, h), pg->ns2 ? sw_place(&pg->pl2, h) : 0);
}

/* Sets the placers up and calls fn for every key; returns how many.
 * Plain placement streams: memory does not grow with the input.  The
 * first few keys are read ahead so that a handful of lookups scan the
 * ring instead of building it. */
static size_t place_keys(struct placing *pg, key_fn fn, void *ctx)
{
	struct keysrc src;
	struct keys k = { 0 };
	const char *p;
	size_t len, n = 0;
	bool more = true, held = pg->o->max_load > 0;
	keysrc_init(&src, pg->o, pg->json, held ? NULL : pg->out);
	/* a producer that pauses gets its first answers now, not after the
	 * read-ahead */
	while ((held || (k.n <= SW_SHARD_SCAN_MAX && !(k.n && lines_waiting(&src.in)))) &&
	       (more = key_next(&src, &p, &len)))
		keys_push(&k, p, len);
	placer_init(&pg->pl, pg->ns, pg->o, more ? SIZE_MAX : k.n);
	if (pg->ns2)
		placer_init(&pg->pl2, pg->ns2, pg->o, more ? SIZE_MAX : k.n);
	if (held) {
		place_held(pg, &k, fn, ctx);
	} else {
		for (size_t i = 0; i < k.n; i++)
			place_one(pg, k.buf + k.off[i], k.len[i], fn, ctx);
		for (n = 0; more && key_next(&src, &p, &len); n++)
			place_one(pg, p, len, fn, ctx);
	}
	n += k.n;
	keys_free(&k);
	lines_free(&src.in);
	return n;
}

static void placing_free(struct placing *pg)
{
	sw_placer_free(&pg->pl);
	if (pg->ns2)
		sw_placer_free(&pg->pl2);
}
/* ---- node lists ---- */

/* The nodes spec names (the workspace opened first when they live there). */
static void load_nodes(struct sw_cmd *c, struct sw_nodes *ns, const char *what, const char *spec)
{
	struct opts *o = c->opts;
	struct sw_err err;
	if (sw_nodes_need_ws(spec) && c->ws.fd < 0)
		sw_cmd_open_ws(c, false);
	int code = sw_nodes_load(ns, what, spec, &c->ws, &o->cfg, &err);
	if (code)
		sw_die(code, "%s", err.msg);
}

static void span_placing(struct sw_span *sp, const struct opts *o, size_t nodes, size_t keys)
{
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->cfg.algo));
	if (nodes)
		sw_span_int(sp, "sw.shard.nodes", (int64_t)nodes);
	sw_span_int(sp, "sw.shard.keys", (int64_t)keys);
}

/* ---- assign ---- */

struct assigner {
	struct out *out;
	bool tsv;
	char **ends;              /* each node's line ending, made once */
	size_t *endlen;
};

static void assign_one(void *ctx, const char *key, size_t len, uint32_t node, uint32_t unused)
{
	(void)unused;
	struct assigner *as = ctx;
	if (as->tsv) {
		out_put(as->out, key, len);
	} else {
		out_put(as->out, "{\"key\":\"", 8);
		out_json_esc(as->out, key, len);
	}
	out_put(as->out, as->ends[node], as->endlen[node]);
}

/* "\tNODE\n", or "\",\"node\":\"NODE\"}\n" */
static void assign_ends(struct assigner *as, const struct sw_nodes *ns)
{
	as->ends = calloc(ns->n, sizeof *as->ends);
	as->endlen = calloc(ns->n, sizeof *as->endlen);
	if (!as->ends || !as->endlen)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < ns->n; i++) {
		char *q = as->tsv ? NULL : json_quoted(ns->v[i].name);
		if (asprintf(&as->ends[i], as->tsv ? "\t%s\n" : "\",\"node\":%s}\n",
			     as->tsv ? ns->v[i].name : q) < 0)
			sw_die(EX_SOFTWARE, "out of memory");
		as->endlen[i] = strlen(as->ends[i]);
		free(q);
	}
}

static int cmd_assign(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_nodes ns;
	struct out out;
	load_nodes(c, &ns, "--nodes", o->nodes);
	struct assigner as = { .tsv = o->tsv, .out = &out };
	assign_ends(&as, &ns);
	out_init(&out, 1 << 20, o->quiet);
	struct placing pg = { .o = o, .json = !o->tsv, .out = &out, .ns = &ns };
	size_t n = place_keys(&pg, assign_one, &as);
	out_end(&out);
	span_placing(&c->sp, o, ns.n, n);
	for (size_t i = 0; i < ns.n; i++)
		free(as.ends[i]);
	free(as.ends);
	free(as.endlen);
	free(out.b);
	placing_free(&pg);
	sw_nodes_free(&ns);
	return 0;
}

/* ---- plan ---- */

struct planner {
	struct out *out;
	bool summary;
	struct sw_plan plan;
	char **qf, **qt;          /* node names as JSON strings */
	size_t moved;
};

static void plan_one(void *ctx, const char *key, size_t len, uint32_t a, uint32_t b)
{
	struct planner *pn = ctx;
	if (!sw_plan_moves(&pn->plan, a, b))
		return;
	pn->moved++;
	if (pn->summary)
		return;
	out_str(pn->out, "{\"key\":\"");
	out_json_esc(pn->out, key, len);
	out_str(pn->out, "\",\"from\":");
	out_str(pn->out, pn->qf[a]);
	out_str(pn->out, ",\"to\":");
	out_str(pn->out, pn->qt[b]);
	out_str(pn->out, "}\n");
}

static char **quoted_names(const struct sw_nodes *ns)
{
	char **q = calloc(ns->n, sizeof *q);
	if (!q)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < ns->n; i++)
		q[i] = json_quoted(ns->v[i].name);
	return q;
}

static void free_names(char **q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(q[i]);
	free(q);
}

static void plan_summary(struct out *out, const struct opts *o, size_t n, size_t moved, double ideal)
{
	double frac = n ? (double)moved / (double)n : 0;
	json_t *sum = json_pack("{s:s,s:I,s:I,s:f,s:f}", "algo", sw_algo_name(o->cfg.algo),
				"keys", (json_int_t)n, "moved", (json_int_t)moved,
				"moved_fraction", frac, "ideal_fraction", ideal);
	if (!sum)
		sw_die(EX_SOFTWARE, "out of memory");
	json_object_set_new(sum, "ratio", ideal > 0 ? json_real(frac / ideal) : json_null());
	out_json(out, sum);
	json_decref(sum);
}

static int cmd_plan(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_nodes from, to;
	struct out out;
	struct sw_err err;
	load_nodes(c, &from, "--from", o->from);
	load_nodes(c, &to, "--to", o->to);
	out_init(&out, 1 << 20, o->quiet);
	struct planner pn = { .out = &out, .summary = o->summary };
	int code = sw_plan_init(&pn.plan, &from, &to, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	pn.qf = quoted_names(&from);
	pn.qt = quoted_names(&to);
	struct placing pg = { .o = o, .json = true, .out = &out, .ns = &from, .ns2 = &to };
	size_t n = place_keys(&pg, plan_one, &pn);
	plan_summary(&out, o, n, pn.moved, sw_nodes_ideal_moved(&from, &to));
	out_end(&out);
	span_placing(&c->sp, o, 0, n);
	sw_span_int(&c->sp, "sw.shard.moved", (int64_t)pn.moved);
	free_names(pn.qf, from.n);
	free_names(pn.qt, to.n);
	sw_plan_free(&pn.plan);
	free(out.b);
	placing_free(&pg);
	sw_nodes_free(&from);
	sw_nodes_free(&to);
	return 0;
}

/* ---- balance ---- */

static void count_one(void *ctx, const char *key, size_t len, uint32_t node, uint32_t unused)
{
	(void)key;
	(void)len;
	(void)unused;
	((uint64_t *)ctx)[node]++;
}

/* One line per node (unless --summary), then the summary. */
static void balance_print(struct out *out, const struct opts *o, const struct sw_nodes *ns,
			  const uint64_t *cnt, size_t nk)
{
	double mean = (double)nk / (double)ns->n, var = 0, over_ideal = 0;
	uint64_t mn = UINT64_MAX, mx = 0;
	for (size_t i = 0; i < ns->n; i++) {
		double ideal = ns->v[i].weight / ns->total;
		if (cnt[i] < mn) mn = cnt[i];
		if (cnt[i] > mx) mx = cnt[i];
		var += ((double)cnt[i] - mean) * ((double)cnt[i] - mean);
		if (nk && (double)cnt[i] / ((double)nk * ideal) > over_ideal)
			over_ideal = (double)cnt[i] / ((double)nk * ideal);
		if (o->summary)
			continue;
		json_t *j = json_pack("{s:s,s:f,s:I,s:f,s:f}", "node", ns->v[i].name,
				      "weight", ns->v[i].weight, "keys", (json_int_t)cnt[i],
				      "share", nk ? (double)cnt[i] / (double)nk : 0.0, "ideal_share", ideal);
		out_json(out, j);
		json_decref(j);
	}
	json_t *sum = json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:f}", "algo", sw_algo_name(o->cfg.algo),
				"nodes", (json_int_t)ns->n, "keys", (json_int_t)nk,
				"min", (json_int_t)mn, "max", (json_int_t)mx, "mean", mean,
				"stddev", sqrt(var / (double)ns->n));
	if (!sum)
		sw_die(EX_SOFTWARE, "out of memory");
	json_object_set_new(sum, "max_over_mean", nk ? json_real((double)mx / mean) : json_null());
	json_object_set_new(sum, "max_over_ideal", nk ? json_real(over_ideal) : json_null());
	out_json(out, sum);
	json_decref(sum);
}

static int cmd_balance(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_nodes ns;
	struct out out;
	load_nodes(c, &ns, "--nodes", o->nodes);
	uint64_t *cnt = calloc(ns.n, sizeof *cnt);
	if (!cnt)
		sw_die(EX_SOFTWARE, "out of memory");
	struct placing pg = { .o = o, .ns = &ns };
	size_t nk = place_keys(&pg, count_one, cnt);
	out_init(&out, 1 << 16, o->quiet);
	balance_print(&out, o, &ns, cnt, nk);
	out_end(&out);
	span_placing(&c->sp, o, ns.n, nk);
	free(out.b);
	free(cnt);
	placing_free(&pg);
	sw_nodes_free(&ns);
	return 0;
}
/* ---- split ---- */

/* Items from stdin: JSON Lines, or with --lines each line as a string.
 * Blank lines are skipped; a bad line fails the whole batch (65), and so
 * does one over SW_MAX_ITEM_BYTES.  The items are held: how they are
 * dealt depends on how many there are. */
static json_t *read_items(const struct opts *o)
{
	struct lines in;
	const char *p;
	size_t l;
	json_t *items = json_array();
	lines_init(&in, 0, NULL);
	while (line_next(&in, &p, &l)) {
		size_t blank = 0;
		while (blank < l && (p[blank] == ' ' || p[blank] == '\t' || p[blank] == '\r'))
			blank++;
		if (blank == l)
			continue;
		json_t *it;
		struct sw_err err;
		if (o->lines) {
			if (!sw_utf8_valid(p, l))
				sw_die(EX_DATAERR, "line %zu: not valid UTF-8", in.lineno);
			it = json_stringn(p, l);
		} else if (!(it = sw_json_parse(p, l, &err))) {
			sw_die(EX_DATAERR, "line %zu: %s", in.lineno, err.msg);
		}
		if (!it || json_array_append_new(items, it) < 0)
			sw_die(EX_SOFTWARE, "out of memory reading items");
	}
	lines_free(&in);
	return items;
}

/* How many shards n items (at least one) make: one below --min-items,
 * else ceil(n / items-per-shard) capped at --max-shards. */
static size_t shard_count(size_t n, const struct opts *o)
{
	if ((int64_t)n < o->min_items)
		return 1;
	size_t k = (n + (size_t)o->ips - 1) / (size_t)o->ips;
	if (o->max_shards && k > (size_t)o->max_shards)
		k = (size_t)o->max_shards;
	return k;
}

/* A duration as an item's JSON takes it: seconds, whole when they are. */
static json_t *seconds_json(int64_t ns)
{
	if (ns % SW_NS_PER_SEC == 0)
		return json_integer(ns / SW_NS_PER_SEC);
	return json_real((double)ns / 1e9);
}

/* What every record carries from the options, in sw-claim add's item
 * fields: the records then mean the same through --enqueue as through a
 * pipe to sw-claim add. */
static void add_common(json_t *rec, const struct opts *o)
{
	if (o->priority >= 0)
		json_object_set_new(rec, "priority", json_integer(o->priority));
	if (o->role)
		json_object_set_new(rec, "role", json_string(o->role));
	if (o->max_attempts)
		json_object_set_new(rec, "max_attempts", json_integer(o->max_attempts));
	if (o->timeout_ns >= 0)
		json_object_set_new(rec, "timeout", seconds_json(o->timeout_ns));
}

/* The records: shard i holds a contiguous run of items (sizes differ by
 * at most one), in input order; the combiner comes last, after all. */
static json_t *split_records(json_t *items, const char *task, const struct opts *o)
{
	size_t n = json_array_size(items), k = shard_count(n, o), at = 0;
	json_t *recs = json_array(), *ids = json_array();
	for (size_t s = 0; s < k; s++) {
		size_t c = n / k + (s < n % k);
		char id[SW_NAME_MAX + 32];
		snprintf(id, sizeof id, "%s_shard_%zu", task, s);
		json_t *part = json_array();
		for (size_t i = 0; i < c; i++)
			json_array_append(part, json_array_get(items, at + i));
		json_t *rec = json_pack("{s:s,s:{s:s,s:I,s:I,s:I,s:o}}", "id", id, "payload",
					"task", task, "shard", (json_int_t)s, "shards", (json_int_t)k,
					"first", (json_int_t)at, "items", part);
		add_common(rec, o);
		json_array_append_new(recs, rec);
		json_array_append_new(ids, json_string(id));
		at += c;
	}
	char cid[SW_NAME_MAX + 32];
	snprintf(cid, sizeof cid, "%s_combine", task);
	json_t *comb = json_pack("{s:s,s:O,s:{s:s,s:b,s:O,s:I}}", "id", cid, "after", ids,
				 "payload", "task", task, "combine", 1, "shards", ids,
				 "items", (json_int_t)n);
	add_common(comb, o);
	json_array_append_new(recs, comb);
	json_decref(ids);
	return recs;
}

/* The state an item added just now is in: a shard is claimable; the
 * combiner waits for its shards unless all of them had finished before
 * (the same --id again), so it is looked up. */
static const char *added_state(struct sw_queue *q, const json_t *item, bool combiner, json_t **shown)
{
	*shown = NULL;
	if (!combiner)
		return "pending";
	if (sw_queue_show(q, json_string_value(json_object_get(item, "id")), shown))
		return NULL;   /* not known: left out rather than guessed */
	return json_string_value(json_object_get(*shown, "state"));
}

/* One line per record, in sw-claim add's words: "added" says whether the
 * item was added now (false: an item of that id was there already), and
 * an added item's "state" follows. */
static void print_added(struct out *out, struct sw_queue *q, const json_t *item, bool added,
			bool combiner)
{
	json_t *shown = NULL;
	json_t *j = json_pack("{s:O,s:s,s:b}", "id", json_object_get(item, "id"), "queue", q->name,
			      "added", added);
	const char *state = added ? added_state(q, item, combiner, &shown) : NULL;
	if (!j || (state && json_object_set_new(j, "state", json_string(state)) < 0))
		sw_die(EX_SOFTWARE, "out of memory");
	out_json(out, j);
	json_decref(j);
	json_decref(shown);
}

/* The records as items of the queue, all or nothing; one line each. */
static void enqueue(struct sw_cmd *c, json_t *recs, struct out *out)
{
	struct opts *o = c->opts;
	struct sw_queue q;
	sw_cmd_open_ws(c, true);
	int rc = sw_queue_open(&q, &c->ws, o->queue, true);
	if (rc)
		sw_die(rc, "%s", q.err.msg);
	sw_span_str(&c->sp, "sw.queue", o->queue);
	struct sw_item_defaults d = {
		.priority = o->priority >= 0 ? o->priority : SW_PRIO_DEFAULT, .role = o->role,
		.max_attempts = SW_ATTEMPTS_DEFAULT, .timeout_ns = SW_TIMEOUT_DEFAULT_NS,
		.item_max = c->ws.set.item_max,
	};
	size_t n = json_array_size(recs);
	json_t **items = calloc(n, sizeof *items);
	bool *existed = calloc(n, sizeof *existed);
	if (!items || !existed)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct sw_err err;
		items[i] = sw_item_new(json_array_get(recs, i), &d, o->queue, &err);
		if (!items[i])
			sw_die(EX_DATAERR, "%s: %s", json_string_value(json_object_get(json_array_get(recs, i), "id")), err.msg);
	}
	rc = sw_queue_add(&q, items, n, existed);
	if (rc)
		sw_die(rc, "%s", q.err.msg);
	for (size_t i = 0; i < n; i++) {
		print_added(out, &q, items[i], !existed[i], i == n - 1);
		json_decref(items[i]);
	}
	free(items);
	free(existed);
	sw_queue_close(&q);
}

static int cmd_split(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	char ulid[SW_ULID_LEN + 1];
	const char *task = o->id;
	if (!task) {
		sw_ulid(ulid, sw_now_ns());
		task = ulid;
	}
	json_t *items = read_items(o);
	sw_span_str(&c->sp, "sw.task.id", task);
	sw_span_int(&c->sp, "sw.shard.items", (int64_t)json_array_size(items));
	if (json_array_size(items) == 0) {
		/* as xargs -r and GNU parallel run nothing: no shard, and no
		 * combiner that would run over nothing */
		if (!o->quiet)
			sw_warn("no items on stdin; nothing %s", o->enqueue ? "enqueued" : "printed");
		json_decref(items);
		return 0;
	}
	json_t *recs = split_records(items, task, o);
	struct out out;
	out_init(&out, 1 << 20, o->quiet);
	sw_span_int(&c->sp, "sw.shard.shards", (int64_t)json_array_size(recs) - 1);
	if (o->enqueue) {
		enqueue(c, recs, &out);
	} else {
		size_t i;
		json_t *r;
		json_array_foreach(recs, i, r)
			out_json(&out, r);
	}
	out_end(&out);
	free(out.b);
	json_decref(recs);
	json_decref(items);
	return 0;
}

/* ---- ring: keep a node list and its placement settings ---- */

/* Prints the ring (and lets go of it). */
static void print_ring(const struct opts *o, json_t *r)
{
	struct out out;
	out_init(&out, 1 << 16, o->quiet);
	out_json(&out, r);
	out_end(&out);
	json_decref(r);
	free(out.b);
}

static int ring_show(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	json_t *r;
	sw_cmd_open_ws(c, false);
	int code = sw_ring_read(&c->ws, o->name, &r, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	print_ring(o, r);
	return 0;
}

static int ring_delete(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	sw_cmd_open_ws(c, false);
	int code = sw_ring_delete(&c->ws, o->name, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	return 0;
}

static int cmd_ring(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	sw_span_str(&c->sp, "sw.ring", o->name);
	if (o->delete)
		return ring_delete(c);
	if (!o->nodes)
		return ring_show(c);
	struct sw_nodes ns;
	struct sw_err err;
	json_t *r;
	load_nodes(c, &ns, "--nodes", o->nodes);
	if (c->ws.fd < 0)
		sw_cmd_open_ws(c, true);
	int code = sw_ring_write(&c->ws, o->name, &ns, &o->cfg, sw_now_ns(), &r, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	print_ring(o, r);
	sw_span_int(&c->sp, "sw.shard.nodes", (int64_t)ns.n);
	sw_nodes_free(&ns);
	return 0;
}

/* ---- options and main ---- */

static const int o_split[] = { O_IPS, O_MINITEMS, O_MAXSHARDS, O_ID, O_LINES, 'q', O_ENQUEUE,
			       O_PRIORITY, O_ROLE, O_MAXATT, O_TIMEOUT, 0 };
static const int o_assign[] = { 'n', 'a', O_VNODES, O_MAXLOAD, O_SEED, O_TSV, 0 };
static const int o_plan[] = { O_FROM, O_TO, 'a', O_VNODES, O_MAXLOAD, O_SEED, O_KEYS, O_SUMMARY, 0 };
static const int o_balance[] = { 'n', 'a', O_VNODES, O_MAXLOAD, O_SEED, O_KEYS, O_SUMMARY, 0 };
static const int o_ring[] = { 'n', 'a', O_VNODES, O_SEED, O_DELETE, 0 };

/* split --enqueue, ring and the workspace node sources open the
 * workspace themselves: only they know whether they need it. */
static const struct sw_verb verbs[] = {
	{ "split", cmd_split, "", 0, 0, o_split, 0 },
	{ "assign", cmd_assign, "", 0, 0, o_assign, 0 },
	{ "plan", cmd_plan, "", 0, 0, o_plan, 0 },
	{ "balance", cmd_balance, "", 0, 0, o_balance, 0 },
	{ "ring", cmd_ring, "a ring NAME", 1, 1, o_ring, 0 },
	{ 0 }
};

/* A node source is checked as it is given (an unknown @source, a path
 * that is not written as one), before any input is read. */
static int nodes_option(struct sw_cmd *c, const char *what, char *arg, const char **to)
{
	enum sw_nodes_kind kind;
	struct sw_err err;
	int code = sw_nodes_kind(what, arg, &kind, &err);
	if (code)
		return sw_cmd_err(c, code, "%s", err.msg);
	*to = arg;
	return 0;
}

/* Counts: decimal digits, from min to max. */
static int count_option(struct sw_cmd *c, int code, const char *arg, int64_t min, int64_t max,
			int64_t *v)
{
	char what[64];
	snprintf(what, sizeof what, "--%s", sw_cmd_opt_name(c, code));
	return sw_cmd_int(c, what, arg, min, max, v);
}

static int placement_option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	int64_t v;
	int rc;
	switch (code) {
	case 'a': {
		int a = sw_algo_parse(arg);
		if (a < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --algo '%.40s': want ring, rendezvous, jump or mod", arg);
		o->cfg.algo = (enum sw_algo)a;
		o->cfg.algo_set = true;
		return 0;
	}
	case O_VNODES:
		if (!(rc = count_option(c, code, arg, 1, 1000000, &v)))
			o->cfg.vnodes = (unsigned)v;
		o->cfg.vnodes_set = true;
		return rc;
	case O_SEED:
		if (!(rc = count_option(c, code, arg, 0, INT64_MAX, &v)))
			o->cfg.seed = (uint64_t)v;
		o->cfg.seed_set = true;
		return rc;
	case O_MAXLOAD: return sw_cmd_real(c, "--max-load", arg, 1, 1e6, &o->max_load);
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	int64_t v;
	int rc;
	switch (code) {
	case 'n': return nodes_option(c, "--nodes", arg, &o->nodes);
	case O_FROM: return nodes_option(c, "--from", arg, &o->from);
	case O_TO: return nodes_option(c, "--to", arg, &o->to);
	case 'a': case O_VNODES: case O_SEED: case O_MAXLOAD: return placement_option(c, code, arg);
	case O_TSV: o->tsv = true; return 0;
	case O_SUMMARY: o->summary = true; return 0;
	case O_KEYS: return count_option(c, code, arg, 1, 10000000, &o->keys);
	case O_LINES: o->lines = true; return 0;
	case O_IPS: return count_option(c, code, arg, 1, 1000000000, &o->ips);
	case O_MINITEMS: return count_option(c, code, arg, 0, 1000000000, &o->min_items);
	case O_MAXSHARDS: return count_option(c, code, arg, 1, 1000000000, &o->max_shards);
	case O_PRIORITY:
		if (!(rc = count_option(c, code, arg, 0, SW_PRIO_MAX, &v)))
			o->priority = (int)v;
		return rc;
	case O_ID:
		if ((rc = sw_cmd_name(c, "task id", arg)))
			return rc;
		/* the longest id it makes must pass the name rule too */
		if (strlen(arg) + strlen("_shard_") + 20 > SW_NAME_MAX)
			return sw_cmd_err(c, EX_DATAERR, "task id '%.40s…' is too long for its shard ids", arg);
		o->id = arg;
		return 0;
	case 'q':
		o->queue = arg;
		return sw_cmd_name(c, "queue", arg);
	case O_ENQUEUE: o->enqueue = true; return 0;
	case O_ROLE:
		o->role = arg;
		return sw_cmd_name(c, "role", arg);
	/* as sw-claim add takes them */
	case O_MAXATT: return sw_cmd_int(c, "--max-attempts", arg, 1, 1000000, &o->max_attempts);
	case O_TIMEOUT: return sw_cmd_duration(c, "--timeout", arg, &o->timeout_ns);
	case O_DELETE: o->delete = true; return 0;
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int check_ring(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	const struct sw_ring_cfg *g = &o->cfg;
	int rc = sw_cmd_name(c, "ring", o->name);
	if (rc)
		return rc;
	if (o->delete && (o->nodes || g->algo_set || g->vnodes_set || g->seed_set))
		return sw_cmd_err(c, EX_USAGE, "--delete takes no other option");
	if (!o->nodes && (g->algo_set || g->vnodes_set || g->seed_set))
		return sw_cmd_err(c, EX_USAGE, "--algo, --vnodes and --seed need --nodes");
	return 0;
}

/* What needs all the options, before any input is read. */
static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	const int *opts = c->verb->opts;
	o->quiet = c->co.quiet;
	o->name = c->nargs ? c->args[0] : NULL;
	if ((opts == o_assign || opts == o_balance) && !o->nodes)
		return sw_cmd_err(c, EX_USAGE, "--nodes is required");
	if (opts == o_plan && (!o->from || !o->to))
		return sw_cmd_err(c, EX_USAGE, "--from and --to are required");
	if (o->cfg.vnodes_set && o->cfg.algo != SW_ALGO_RING)
		return sw_cmd_err(c, EX_USAGE, "--vnodes applies to --algo ring only");
	if (opts == o_ring)
		return check_ring(c);
	if (o->queue && !o->enqueue)
		return sw_cmd_err(c, EX_USAGE, "-q QUEUE needs --enqueue");
	if (o->enqueue && !o->queue) {
		/* SW_QUEUE counts as -q, as for sw-claim */
		o->queue = sw_queue_env(NULL);
		return sw_cmd_name(c, "queue (SW_QUEUE)", o->queue);
	}
	return 0;
}

static const struct sw_prog prog = {
	.name = "sw-shard", .usage = usage, .longopts = longopts, .shortopts = "n:a:q:",
	.verbs = verbs, .option = option, .check = check,
};

static void opts_init(struct opts *o)
{
	*o = (struct opts){
		.cfg = { .algo = SW_ALGO_RING, .vnodes = SW_SHARD_VNODES_DEFAULT },
		.ips = 1000, .priority = -1, .timeout_ns = -1,
	};
}

int main(int argc, char **argv)
{
	struct opts o;
	opts_init(&o);
	return sw_cmd_main(&prog, argc, argv, &o);
}
