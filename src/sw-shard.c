/* sw-shard — split work into shards plus a combiner, and map keys to nodes
 * so that adding, removing or restarting a node moves as few keys as
 * possible.  Stateless: it reads stdin and node lists; only split
 * --enqueue (through the queue engine), ring (rings/<name>.json) and the
 * @agents and @ring:NAME node sources touch the workspace.  The placement
 * algorithms and the hash live in lib/shard.c. */
#include "agent.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "opt.h"
#include "queue.h"
#include "shard.h"
#include "span.h"
#include "clock.h"
#include "cmd.h"
#include "fs.h"
#include "ws.h"
#include <bsd/stdlib.h>   /* strtonum */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"usage: sw-shard VERB [options]\n"
	"  split  [--items-per-shard N] [--min-items N] [--max-shards N] [--id TASK]\n"
	"         [--lines] [--priority P] [--role ROLE] [-q QUEUE --enqueue]\n"
	"         items on stdin -> one record per shard, then the combiner\n"
	"  assign --nodes NODES [--algo ALGO] [--vnodes N] [--max-load F] [--seed S] [--tsv]\n"
	"         keys on stdin (one a line) -> {\"key\",\"node\"} per key\n"
	"  plan   --from NODES --to NODES [--algo …] [--keys N] [--summary]\n"
	"         keys that move between two node lists, and the moved fraction\n"
	"  balance --nodes NODES [--algo …] [--keys N] [--summary]\n"
	"         keys per node and max/mean\n"
	"  ring NAME [--nodes NODES [--algo …] [--vnodes N] [--seed S] | --delete]\n"
	"         keep (or show, or delete) a node list in the workspace: @ring:NAME\n"
	"NODES: a file (one 'name [weight]' a line), a list 'a,b=2,c', @agents[:ROLE]\n"
	"       or @ring:NAME.\n"
	"ALGO: ring (default), rendezvous, jump, mod.  Common options:\n"
	"  -d, --dir DIR  --spans[=DEST]  --quiet  -h, --help  -V, --version\n";

enum {
	O_NODES = SW_OPT_FIRST_FREE, O_ALGO, O_VNODES, O_MAXLOAD, O_SEED, O_TSV, O_FROM, O_TO,
	O_SUMMARY, O_KEYS, O_LINES, O_IPS, O_MINITEMS, O_MAXSHARDS, O_ID, O_QUEUE, O_ENQUEUE,
	O_PRIORITY, O_ROLE, O_DELETE, O_END
};

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"nodes", required_argument, 0, O_NODES},
	{"algo", required_argument, 0, O_ALGO},
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
	{"queue", required_argument, 0, O_QUEUE},
	{"enqueue", no_argument, 0, O_ENQUEUE},
	{"priority", required_argument, 0, O_PRIORITY},
	{"role", required_argument, 0, O_ROLE},
	{"delete", no_argument, 0, O_DELETE},
	{0, 0, 0, 0}
};

struct opts {
	struct sw_common co;
	bool seen[O_END - SW_OPT_FIRST_FREE];
	const char *nodes, *from, *to, *id, *queue, *role;
	enum sw_algo algo;
	unsigned vnodes;
	double max_load;        /* 0: plain placement */
	uint64_t seed;
	bool tsv, summary, lines, enqueue, delete;
	const char *name;       /* ring NAME */
	long long keys;         /* synthetic keys; 0: read stdin */
	long long ips, min_items, max_shards;
	int priority;           /* -1: not given */
};

/* ---- spans and fatal errors ---- */

static void on_die(int code, const char *msg, void *arg)
{
	sw_span_end(arg, code != SW_EX_FALSE && code != EX_TEMPFAIL, msg);
}

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

/* a JSON string body (no quotes) of valid UTF-8 */
static void out_json_esc(struct out *o, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		out_put(o, s + start, i - start);
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\'; esc[1] = (char)c;
			out_put(o, esc, 2);
		} else if (c == '\t') {
			out_put(o, "\\t", 2);
		} else {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			out_put(o, esc, 6);
		}
		start = i + 1;
	}
	out_put(o, s + start, len - start);
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
	json_t *j = json_string(s);
	char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!q)
		sw_die(EX_SOFTWARE, "cannot format node name");
	return q;
}

static void out_end(struct out *o)
{
	out_flush(o);
	if (fflush(stdout) != 0 || ferror(stdout))
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
}

/* ---- input: lines of stdin, one at a time and bounded ---- */

/* The longest line taken, a key or an item: SW_MAX_ITEM_BYTES (as the
 * queue reads it), so that one endless line cannot take all memory. */
static size_t line_max(void)
{
	const char *s = getenv("SW_MAX_ITEM_BYTES");
	long long v = s && *s ? strtonum(s, 64, 1LL << 40, NULL) : 0;
	if (s && *s && v <= 0)
		sw_usage_error("bad SW_MAX_ITEM_BYTES '%s'", s);
	return v > 0 ? (size_t)v : SW_ITEM_MAX_DEFAULT;
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
	long long syn, nsyn;
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
		*len = (size_t)snprintf(k->sbuf, sizeof k->sbuf, "key%lld", k->syn++);
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
	char err[512];
	if (sw_placer_init(pl, ns, o->algo, o->vnodes, o->seed, o->max_load > 0 ? SIZE_MAX : nkeys,
			   err, sizeof err) < 0)
		sw_die(strstr(err, "memory") ? EX_SOFTWARE : EX_USAGE, "%s", err);
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

struct agents_arg {
	const char *role;       /* NULL: any */
	char **ids;
	size_t n, cap;
};

static int agent_one(json_t *rec, void *arg)
{
	struct agents_arg *a = arg;
	const char *id = sw_json_str(rec, "id");
	if (!id || !json_is_true(json_object_get(rec, "alive")))
		return 0;
	if (a->role) {
		bool has = false;
		size_t i;
		json_t *r;
		json_array_foreach(json_object_get(rec, "roles"), i, r)
			has |= json_is_string(r) && !strcmp(json_string_value(r), a->role);
		if (!has)
			return 0;
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		a->ids = realloc(a->ids, a->cap * sizeof *a->ids);
	}
	if (!a->ids || !(a->ids[a->n] = strdup(id)))
		sw_die(EX_SOFTWARE, "out of memory");
	a->n++;
	return 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @agents[:ROLE]: the live agents of the workspace (with that role), in
 * name order, weight 1 each. */
static void nodes_agents(struct sw_nodes *ns, const char *spec, const char *opt, const char *dir)
{
	struct agents_arg a = { .role = spec[7] == ':' ? spec + 8 : NULL };
	if (a.role)
		sw_name_check("role", a.role);
	struct sw_ws ws;
	sw_ws_open_or_die(&ws, dir, false);
	if (sw_agent_each(&ws, agent_one, &a) < 0)
		sw_die(sw_ex_errno(errno), "%s %s: reading agents: %s", opt, spec, strerror(errno));
	sw_ws_close(&ws);
	if (a.n == 0)
		sw_die(EX_TEMPFAIL, "%s %s: no live agents%s%s", opt, spec, a.role ? " with role " : "",
		       a.role ? a.role : "");
	qsort(a.ids, a.n, sizeof *a.ids, cmp_strp);
	for (size_t i = 0; i < a.n; i++) {
		char err[512];
		if (sw_nodes_add(ns, a.ids[i], strlen(a.ids[i]), NULL, err, sizeof err) < 0)
			sw_die(EX_DATAERR, "%s %s: %s", opt, spec, err);
		free(a.ids[i]);
	}
	free(a.ids);
}

/* ---- rings kept in the workspace: rings/<name>.json ---- */

#define RING_DIR "rings"
#define RING_MAX (64 * 1024 * 1024)

static int rings_dir(struct sw_ws *ws, const char *dir, bool create)
{
	sw_ws_open_or_die(ws, dir, create);
	int fd = sw_ws_dir(ws, RING_DIR, create);
	if (fd < 0 && !(errno == ENOENT && !create))
		sw_die(sw_ex_errno(errno), "%s/%s: %s", ws->path, RING_DIR, strerror(errno));
	return fd;
}

/* The stored ring, or NULL when there is none. */
static json_t *ring_read(const char *name, const char *dir)
{
	struct sw_ws ws;
	char file[SW_NAME_MAX + 8];
	sw_name_check("ring", name);
	snprintf(file, sizeof file, "%s.json", name);
	int fd = rings_dir(&ws, dir, false);
	json_t *r = fd < 0 ? NULL : sw_json_read(fd, file, RING_MAX);
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (!r && fd >= 0 && e != ENOENT)
		sw_die(e == EBADMSG ? EX_DATAERR : sw_ex_errno(e), "ring %s: %s", name,
		       e == EBADMSG ? "not valid JSON" : strerror(e));
	sw_ws_close(&ws);
	return r;
}

/* @ring:NAME: its nodes, and its algo, vnodes and seed where the command
 * line did not set them. */
static void nodes_ring(struct sw_nodes *ns, const char *name, const char *opt, struct opts *o)
{
	json_t *r = ring_read(name, o->co.dir);
	if (!r)
		sw_die(SW_EX_FALSE, "%s @ring:%s: no such ring", opt, name);
	char err[512];
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(r, "nodes"), i, n) {
		const char *nm = sw_json_str(n, "name");
		json_t *w = json_object_get(n, "weight");
		char wbuf[64];
		snprintf(wbuf, sizeof wbuf, "%.17g", json_is_number(w) ? json_number_value(w) : 1.0);
		if (!nm || sw_nodes_add(ns, nm, strlen(nm), wbuf, err, sizeof err) < 0)
			sw_die(EX_DATAERR, "%s @ring:%s: node %zu: %s", opt, name, i + 1, nm ? err : "no name");
	}
	int a = sw_algo_parse(sw_json_str(r, "algo") ? sw_json_str(r, "algo") : "ring");
	if (a < 0)
		sw_die(EX_DATAERR, "%s @ring:%s: unknown algo", opt, name);
	if (!o->seen[O_ALGO - SW_OPT_FIRST_FREE])
		o->algo = (enum sw_algo)a;
	json_int_t v = sw_json_int(r, "vnodes", SW_SHARD_VNODES_DEFAULT);
	if (!o->seen[O_VNODES - SW_OPT_FIRST_FREE] && v >= 1 && v <= 1000000)
		o->vnodes = (unsigned)v;
	if (!o->seen[O_SEED - SW_OPT_FIRST_FREE])
		o->seed = (uint64_t)sw_json_int(r, "seed", 0);
	/* the first ring read sets them; a second (plan --to) must not differ */
	o->seen[O_ALGO - SW_OPT_FIRST_FREE] = o->seen[O_VNODES - SW_OPT_FIRST_FREE] =
		o->seen[O_SEED - SW_OPT_FIRST_FREE] = true;
	json_decref(r);
}

#define NODES_FILE_MAX RING_MAX

/* A node file the user named: any kind of file (a pipe from <(...) too),
 * read up to NODES_FILE_MAX. */
static void nodes_file(struct sw_nodes *ns, const char *path, const char *spec, const char *opt)
{
	char err[512], *text;
	size_t len;
	int fd = (int)SW_NOINTR(open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC));
	if (fd < 0)
		sw_die(errno == ENOENT ? EX_NOINPUT : sw_ex_errno(errno), "%s %s: %s", opt, spec,
		       strerror(errno));
	if (sw_read_fd(fd, &text, &len, NODES_FILE_MAX) < 0)
		sw_die(errno == EFBIG ? EX_DATAERR : errno == ENOMEM ? EX_SOFTWARE : EX_IOERR,
		       "%s %s: %s", opt, spec, errno == EFBIG ? "over 64 MiB" : strerror(errno));
	close(fd);
	int rc = sw_nodes_parse_text(ns, text, len, err, sizeof err);
	free(text);
	if (rc < 0)
		sw_die(EX_DATAERR, "%s %s: %s", opt, spec, err);
}

/* A value is a file only when it says so: it starts with "/", "./" or
 * "../", or is @file:PATH.  Anything else is a list "a,b=2,c", even when
 * a file of that name happens to exist in the current directory (which
 * could be anyone's: `--nodes web1` must mean the node web1). */
static void nodes_load(struct sw_nodes *ns, const char *spec, const char *opt, struct opts *o)
{
	char err[512];
	const char *dir = o->co.dir;
	memset(ns, 0, sizeof *ns);
	if (!strncmp(spec, "@ring:", 6)) {
		nodes_ring(ns, spec + 6, opt, o);
	} else if (!strncmp(spec, "@file:", 6)) {
		if (!spec[6])
			sw_usage_error("%s @file: names no file", opt);
		nodes_file(ns, spec + 6, spec, opt);
	} else if (spec[0] == '@') {
		if (strncmp(spec, "@agents", 7) || (spec[7] && spec[7] != ':'))
			sw_usage_error("%s %s: unknown node source (want a list, a file as ./PATH, /PATH or "
				       "@file:PATH, @agents[:ROLE] or @ring:NAME)", opt, spec);
		nodes_agents(ns, spec, opt, dir);
	} else if (spec[0] == '/' || !strncmp(spec, "./", 2) || !strncmp(spec, "../", 3)) {
		nodes_file(ns, spec, spec, opt);
	} else if (strchr(spec, '/')) {
		sw_usage_error("%s %s: a node name holds no '/'; name a file as ./%s or @file:%s", opt,
			       spec, spec, spec);
	} else if (sw_nodes_parse_list(ns, spec, err, sizeof err) < 0) {
		sw_die(EX_DATAERR, "%s: %s", opt, err);
	}
	if (sw_nodes_check(ns, err, sizeof err) < 0)
		sw_die(EX_DATAERR, "%s %s: %s", opt, strchr(spec, ',') ? "list" : spec, err);
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

static int cmd_assign(struct opts *o, struct sw_span *sp)
{
	struct sw_nodes ns;
	nodes_load(&ns, o->nodes, "--nodes", o);
	struct assigner as = { .tsv = o->tsv };
	as.ends = calloc(ns.n, sizeof *as.ends);
	as.endlen = calloc(ns.n, sizeof *as.endlen);
	if (!as.ends || !as.endlen)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < ns.n; i++) {
		char *q = o->tsv ? NULL : json_quoted(ns.v[i].name);
		if (asprintf(&as.ends[i], o->tsv ? "\t%s\n" : "\",\"node\":%s}\n", o->tsv ? ns.v[i].name : q) < 0)
			sw_die(EX_SOFTWARE, "out of memory");
		as.endlen[i] = strlen(as.ends[i]);
		free(q);
	}
	struct out out = { .cap = 1 << 20, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	as.out = &out;
	struct placing pg = { .o = o, .json = !o->tsv, .out = &out, .ns = &ns };
	size_t n = place_keys(&pg, assign_one, &as);
	out_end(&out);
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->algo));
	sw_span_int(sp, "sw.shard.nodes", (int64_t)ns.n);
	sw_span_int(sp, "sw.shard.keys", (int64_t)n);
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

static int cmp_name(const void *a, const void *b, void *nodes)
{
	const struct sw_nodes *ns = nodes;
	return strcmp(ns->v[*(const uint32_t *)a].name, ns->v[*(const uint32_t *)b].name);
}

struct planner {
	struct out *out;
	bool summary;
	const uint32_t *same;     /* from's node i -> its index in `to`, or UINT32_MAX */
	char **qf, **qt;          /* node names as JSON strings */
	size_t moved;
};

static void plan_one(void *ctx, const char *key, size_t len, uint32_t a, uint32_t b)
{
	struct planner *pn = ctx;
	if (pn->same[a] == b)
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

static int cmd_plan(struct opts *o, struct sw_span *sp)
{
	struct sw_nodes from, to;
	nodes_load(&from, o->from, "--from", o);
	nodes_load(&to, o->to, "--to", o);

	/* same[i]: the index in `to` of from's node i, or UINT32_MAX */
	uint32_t *same = alloc_out(from.n), *byname = alloc_out(to.n);
	for (size_t i = 0; i < to.n; i++)
		byname[i] = (uint32_t)i;
	qsort_r(byname, to.n, sizeof *byname, cmp_name, &to);
	for (size_t i = 0; i < from.n; i++) {
		size_t lo = 0, hi = to.n;
		same[i] = UINT32_MAX;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			int c = strcmp(to.v[byname[mid]].name, from.v[i].name);
			if (c == 0) {
				same[i] = byname[mid];
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	struct out out = { .cap = 1 << 20, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	struct planner pn = { .out = &out, .summary = o->summary, .same = same,
			      .qf = quoted_names(&from), .qt = quoted_names(&to) };
	struct placing pg = { .o = o, .json = true, .out = &out, .ns = &from, .ns2 = &to };
	size_t n = place_keys(&pg, plan_one, &pn);
	double ideal = sw_nodes_ideal_moved(&from, &to);
	double frac = n ? (double)pn.moved / (double)n : 0;
	json_t *sum = json_pack("{s:s,s:I,s:I,s:f,s:f}", "algo", sw_algo_name(o->algo),
				"keys", (json_int_t)n, "moved", (json_int_t)pn.moved,
				"moved_fraction", frac, "ideal_fraction", ideal);
	json_object_set_new(sum, "ratio", ideal > 0 ? json_real(frac / ideal) : json_null());
	out_json(&out, sum);
	json_decref(sum);
	out_end(&out);
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->algo));
	sw_span_int(sp, "sw.shard.keys", (int64_t)n);
	sw_span_int(sp, "sw.shard.moved", (int64_t)pn.moved);
	free_names(pn.qf, from.n);
	free_names(pn.qt, to.n);
	free(out.b);
	free(same);
	free(byname);
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

static int cmd_balance(struct opts *o, struct sw_span *sp)
{
	struct sw_nodes ns;
	nodes_load(&ns, o->nodes, "--nodes", o);
	uint64_t *cnt = calloc(ns.n, sizeof *cnt);
	if (!cnt)
		sw_die(EX_SOFTWARE, "out of memory");
	struct placing pg = { .o = o, .ns = &ns };
	size_t nk = place_keys(&pg, count_one, cnt);
	struct out out = { .cap = 1 << 16, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	double mean = (double)nk / (double)ns.n, var = 0, over_ideal = 0;
	uint64_t mn = UINT64_MAX, mx = 0;
	for (size_t i = 0; i < ns.n; i++) {
		double ideal = ns.v[i].weight / ns.total;
		if (cnt[i] < mn) mn = cnt[i];
		if (cnt[i] > mx) mx = cnt[i];
		var += ((double)cnt[i] - mean) * ((double)cnt[i] - mean);
		if (nk && (double)cnt[i] / ((double)nk * ideal) > over_ideal)
			over_ideal = (double)cnt[i] / ((double)nk * ideal);
		if (o->summary)
			continue;
		json_t *j = json_pack("{s:s,s:f,s:I,s:f,s:f}", "node", ns.v[i].name,
				      "weight", ns.v[i].weight, "keys", (json_int_t)cnt[i],
				      "share", nk ? (double)cnt[i] / (double)nk : 0.0, "ideal_share", ideal);
		out_json(&out, j);
		json_decref(j);
	}
	json_t *sum = json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:f}", "algo", sw_algo_name(o->algo),
				"nodes", (json_int_t)ns.n, "keys", (json_int_t)nk,
				"min", (json_int_t)mn, "max", (json_int_t)mx, "mean", mean,
				"stddev", sqrt(var / (double)ns.n));
	json_object_set_new(sum, "max_over_mean", nk ? json_real((double)mx / mean) : json_null());
	json_object_set_new(sum, "max_over_ideal", nk ? json_real(over_ideal) : json_null());
	out_json(&out, sum);
	json_decref(sum);
	out_end(&out);
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->algo));
	sw_span_int(sp, "sw.shard.nodes", (int64_t)ns.n);
	sw_span_int(sp, "sw.shard.keys", (int64_t)nk);
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
		char err[256];
		if (o->lines) {
			if (!sw_utf8_valid(p, l))
				sw_die(EX_DATAERR, "line %zu: not valid UTF-8", in.lineno);
			it = json_stringn(p, l);
		} else if (!(it = sw_json_parse(p, l, err, sizeof err))) {
			sw_die(EX_DATAERR, "line %zu: %s", in.lineno, err);
		}
		if (!it || json_array_append_new(items, it) < 0)
			sw_die(EX_SOFTWARE, "out of memory reading items");
	}
	lines_free(&in);
	return items;
}

/* How many shards n items make: one below --min-items (and for none at
 * all), else ceil(n / items-per-shard) capped at --max-shards. */
static size_t shard_count(size_t n, const struct opts *o)
{
	if (n == 0 || (long long)n < o->min_items)
		return 1;
	size_t k = (n + (size_t)o->ips - 1) / (size_t)o->ips;
	if (o->max_shards && k > (size_t)o->max_shards)
		k = (size_t)o->max_shards;
	return k;
}

static void add_common(json_t *rec, const struct opts *o)
{
	if (o->priority >= 0)
		json_object_set_new(rec, "priority", json_integer(o->priority));
	if (o->role)
		json_object_set_new(rec, "role", json_string(o->role));
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

static void enqueue(json_t *recs, const struct opts *o, struct sw_span *sp, struct out *out)
{
	struct sw_ws ws;
	struct sw_queue q;
	const char *qname = o->queue ? o->queue : getenv("SW_QUEUE") ? getenv("SW_QUEUE") : SW_QUEUE_DEFAULT;
	sw_name_check("queue", qname);
	sw_ws_open_or_die(&ws, o->co.dir, true);
	int rc = sw_queue_open(&q, &ws, qname, true);
	if (rc)
		sw_die(rc, "%s", q.err.msg);
	sw_span_str(sp, "sw.queue", qname);
	struct sw_item_defaults d = {
		.priority = o->priority >= 0 ? o->priority : SW_PRIO_DEFAULT, .role = o->role,
		.max_attempts = SW_ATTEMPTS_DEFAULT, .timeout_ns = SW_TIMEOUT_DEFAULT_NS,
		.item_max = ws.set.item_max,
	};
	size_t n = json_array_size(recs);
	json_t **items = calloc(n, sizeof *items);
	bool *existed = calloc(n, sizeof *existed);
	if (!items || !existed)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char err[512];
		items[i] = sw_item_new(json_array_get(recs, i), &d, qname, err, sizeof err);
		if (!items[i])
			sw_die(EX_DATAERR, "%s: %s", json_string_value(json_object_get(json_array_get(recs, i), "id")), err);
	}
	rc = sw_queue_add(&q, items, n, existed);
	if (rc)
		sw_die(rc, "%s", q.err.msg);
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_pack("{s:O,s:s,s:b}", "id", json_object_get(items[i], "id"),
				      "queue", qname, "existed", existed[i]);
		out_json(out, j);
		json_decref(j);
		json_decref(items[i]);
	}
	free(items);
	free(existed);
	sw_queue_close(&q);
	sw_ws_close(&ws);
}

static int cmd_split(struct opts *o, struct sw_span *sp)
{
	char ulid[SW_ULID_LEN + 1];
	const char *task = o->id;
	if (!task) {
		sw_ulid(ulid, sw_now_ns());
		task = ulid;
	}
	sw_name_check("task id", task);
	/* the longest id it makes must pass the name rule too */
	if (strlen(task) + strlen("_shard_") + 20 > SW_NAME_MAX)
		sw_die(EX_DATAERR, "task id '%.40s…' is too long for its shard ids", task);
	json_t *items = read_items(o);
	json_t *recs = split_records(items, task, o);
	struct out out = { .cap = 1 << 20, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	sw_span_str(sp, "sw.task.id", task);
	sw_span_int(sp, "sw.shard.items", (int64_t)json_array_size(items));
	sw_span_int(sp, "sw.shard.shards", (int64_t)json_array_size(recs) - 1);
	if (o->enqueue) {
		enqueue(recs, o, sp, &out);
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

static int cmd_ring(struct opts *o, struct sw_span *sp)
{
	struct sw_ws ws;
	char file[SW_NAME_MAX + 8];
	sw_name_check("ring", o->name);
	snprintf(file, sizeof file, "%s.json", o->name);
	sw_span_str(sp, "sw.ring", o->name);
	struct out out = { .cap = 1 << 16, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	if (o->delete) {
		int fd = rings_dir(&ws, o->co.dir, false);
		if (fd < 0 || unlinkat(fd, file, 0) < 0) {
			if (fd < 0 || errno == ENOENT)
				sw_die(SW_EX_FALSE, "no ring '%s'", o->name);
			sw_die(sw_ex_errno(errno), "ring %s: %s", o->name, strerror(errno));
		}
		if (sw_sync_wanted(ws.sync, true))
			sw_fsync_dir(fd);
		close(fd);
		sw_ws_close(&ws);
		free(out.b);
		return 0;
	}
	if (!o->nodes) {
		json_t *r = ring_read(o->name, o->co.dir);
		if (!r)
			sw_die(SW_EX_FALSE, "no ring '%s'", o->name);
		out_json(&out, r);
		out_end(&out);
		json_decref(r);
		free(out.b);
		return 0;
	}
	struct sw_nodes ns;
	struct sw_placer pl;
	char err[512];
	nodes_load(&ns, o->nodes, "--nodes", o);
	/* refuse settings no placement could use (jump with weights …) */
	if (sw_placer_init(&pl, &ns, o->algo, o->vnodes, o->seed, 1, err, sizeof err) < 0)
		sw_die(EX_USAGE, "%s", err);
	sw_placer_free(&pl);
	json_t *nodes = json_array();
	for (size_t i = 0; i < ns.n; i++)
		json_array_append_new(nodes, json_pack("{s:s,s:f}", "name", ns.v[i].name,
						       "weight", ns.v[i].weight));
	json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:o}", "name", o->name, "algo", sw_algo_name(o->algo),
			      "vnodes", (json_int_t)o->vnodes, "seed", (json_int_t)o->seed,
			      "nodes", nodes);
	sw_json_set_time(r, "updated_at", sw_now_ns());
	char *buf = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17));
	if (!buf)
		sw_die(EX_SOFTWARE, "cannot format ring");
	size_t len = strlen(buf);
	buf[len] = 0;
	int fd = rings_dir(&ws, o->co.dir, true);
	if (sw_replace(fd, file, buf, len, ws.sync, true) < 0)
		sw_die(sw_ex_errno(errno), "writing ring %s: %s", o->name, strerror(errno));
	close(fd);
	sw_ws_close(&ws);
	free(buf);
	out_json(&out, r);
	out_end(&out);
	sw_span_int(sp, "sw.shard.nodes", (int64_t)ns.n);
	json_decref(r);
	free(out.b);
	sw_nodes_free(&ns);
	return 0;
}

/* ---- options and main ---- */

static double parse_load(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v) || v < 1 || v > 1e6 || strspn(s, "0123456789.eE+") != strlen(s))
		sw_usage_error("bad --max-load '%s': want a number of at least 1 (such as 1.25)", s);
	return v;
}

/* Which options each verb takes (besides the common ones). */
static const struct {
	const char *verb;
	int (*fn)(struct opts *, struct sw_span *);
	const int ok[16];
} verbs[] = {
	{"split", cmd_split, {O_IPS, O_MINITEMS, O_MAXSHARDS, O_ID, O_LINES, O_QUEUE, O_ENQUEUE,
			      O_PRIORITY, O_ROLE}},
	{"assign", cmd_assign, {O_NODES, O_ALGO, O_VNODES, O_MAXLOAD, O_SEED, O_TSV}},
	{"plan", cmd_plan, {O_FROM, O_TO, O_ALGO, O_VNODES, O_MAXLOAD, O_SEED, O_KEYS, O_SUMMARY}},
	{"balance", cmd_balance, {O_NODES, O_ALGO, O_VNODES, O_MAXLOAD, O_SEED, O_KEYS, O_SUMMARY}},
	{"ring", cmd_ring, {O_NODES, O_ALGO, O_VNODES, O_SEED, O_DELETE}},
};

static bool verb_takes(size_t v, int opt)
{
	for (size_t i = 0; i < 16 && verbs[v].ok[i]; i++)
		if (verbs[v].ok[i] == opt)
			return true;
	return false;
}

static void parse_opts(int argc, char **argv, size_t v, struct opts *o)
{
	int c;
	while ((c = getopt_long(argc, argv, SW_COMMON_SHORTOPTS "n:a:q:", longopts, NULL)) != -1) {
		if (sw_common_opt(c, optarg, &o->co, usage))
			continue;
		if (c == 'n') c = O_NODES;
		if (c == 'a') c = O_ALGO;
		if (c == 'q') c = O_QUEUE;
		if (c < SW_OPT_FIRST_FREE || c >= O_END)
			sw_usage_error("bad option");
		const char *name = sw_opt_name(longopts, c);
		if (!name)
			name = "?";
		if (!verb_takes(v, c))
			sw_usage_error("--%s does not apply to %s", name, verbs[v].verb);
		o->seen[c - SW_OPT_FIRST_FREE] = true;
		switch (c) {
		case O_NODES: o->nodes = optarg; break;
		case O_FROM: o->from = optarg; break;
		case O_TO: o->to = optarg; break;
		case O_ALGO: {
			int a = sw_algo_parse(optarg);
			if (a < 0)
				sw_usage_error("bad --algo '%s': want ring, rendezvous, jump or mod", optarg);
			o->algo = (enum sw_algo)a;
			break;
		}
		case O_VNODES: o->vnodes = (unsigned)sw_opt_num("--vnodes", optarg, 1, 1000000); break;
		case O_MAXLOAD: o->max_load = parse_load(optarg); break;
		case O_SEED: o->seed = (uint64_t)sw_opt_num("--seed", optarg, 0, INT64_MAX); break;
		case O_TSV: o->tsv = true; break;
		case O_SUMMARY: o->summary = true; break;
		case O_KEYS: o->keys = sw_opt_num("--keys", optarg, 1, 10000000); break;
		case O_LINES: o->lines = true; break;
		case O_IPS: o->ips = sw_opt_num("--items-per-shard", optarg, 1, 1000000000); break;
		case O_MINITEMS: o->min_items = sw_opt_num("--min-items", optarg, 0, 1000000000); break;
		case O_MAXSHARDS: o->max_shards = sw_opt_num("--max-shards", optarg, 1, 1000000000); break;
		case O_ID: o->id = optarg; break;
		case O_QUEUE: o->queue = optarg; break;
		case O_ENQUEUE: o->enqueue = true; break;
		case O_PRIORITY: o->priority = (int)sw_opt_num("--priority", optarg, 0, SW_PRIO_MAX); break;
		case O_ROLE: o->role = optarg; break;
		case O_DELETE: o->delete = true; break;
		}
	}
	if (!strcmp(verbs[v].verb, "ring") && optind < argc)
		o->name = argv[optind++];
	if (optind < argc)
		sw_usage_error("unexpected argument '%s'", argv[optind]);
}

static void check_opts(const char *verb, struct opts *o)
{
	if ((!strcmp(verb, "assign") || !strcmp(verb, "balance")) && !o->nodes)
		sw_usage_error("--nodes is required");
	if (!strcmp(verb, "plan") && (!o->from || !o->to))
		sw_usage_error("--from and --to are required");
	if (o->seen[O_VNODES - SW_OPT_FIRST_FREE] && o->algo != SW_ALGO_RING)
		sw_usage_error("--vnodes applies to --algo ring only");
	if (!strcmp(verb, "ring")) {
		if (!o->name)
			sw_usage_error("missing NAME");
		if (o->delete && (o->nodes || o->seen[O_ALGO - SW_OPT_FIRST_FREE] ||
				  o->seen[O_VNODES - SW_OPT_FIRST_FREE] || o->seen[O_SEED - SW_OPT_FIRST_FREE]))
			sw_usage_error("--delete takes no other option");
		if (!o->nodes && (o->seen[O_ALGO - SW_OPT_FIRST_FREE] ||
				  o->seen[O_VNODES - SW_OPT_FIRST_FREE] || o->seen[O_SEED - SW_OPT_FIRST_FREE]))
			sw_usage_error("--algo, --vnodes and --seed need --nodes");
	}
	if (o->queue && !o->enqueue)
		sw_usage_error("-q QUEUE needs --enqueue");
	if (o->role)
		sw_name_check("role", o->role);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.algo = SW_ALGO_RING, .vnodes = SW_SHARD_VNODES_DEFAULT, .ips = 1000, .priority = -1,
	};
	sw_prog_set("sw-shard");
	if (argc < 2)
		sw_usage_error("missing verb");
	size_t v = 0;
	while (v < sizeof verbs / sizeof *verbs && strcmp(argv[1], verbs[v].verb))
		v++;
	if (v == sizeof verbs / sizeof *verbs) {
		if (argv[1][0] == '-') {   /* sw-shard --help / --version */
			int c;
			while ((c = getopt_long(argc, argv, SW_COMMON_SHORTOPTS, longopts, NULL)) != -1)
				sw_common_opt(c, optarg, &o.co, usage);
		}
		sw_usage_error("unknown verb '%s'", argv[1]);
	}
	sw_verb_set(verbs[v].verb);
	parse_opts(argc - 1, argv + 1, v, &o);
	check_opts(verbs[v].verb, &o);

	struct sw_span sp;
	char name[64];
	snprintf(name, sizeof name, "sw-shard %s", verbs[v].verb);
	sw_span_start(&sp, o.co.spans, name);
	sw_on_die(on_die, &sp);
	int rc = verbs[v].fn(&o, &sp);
	sw_on_die(NULL, NULL);
	sw_span_end(&sp, rc != 0, NULL);
	return rc;
}
