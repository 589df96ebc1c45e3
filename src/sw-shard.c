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
#include "ws.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

/* ---- input ---- */

static char *read_fd(int fd, const char *what, size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	char *b = malloc(cap + 1);
	if (!b)
		sw_die(EX_SOFTWARE, "out of memory reading %s", what);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			char *t = realloc(b, cap + 1);
			if (!t)
				sw_die(EX_SOFTWARE, "out of memory reading %s", what);
			b = t;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			sw_die(EX_IOERR, "reading %s: %s", what, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	b[n] = 0;
	*len = n;
	return b;
}

/* Keys: one a line (empty lines skipped), or key0 … keyN-1 with --keys. */
struct keys {
	char *buf;
	const char **p;
	uint32_t *len;
	uint64_t *h;
	size_t n, cap;
};

static void keys_push(struct keys *k, const char *p, size_t len)
{
	if (len > UINT32_MAX)
		sw_die(EX_DATAERR, "key %zu: over 4 GiB", k->n + 1);
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 4096;
		k->p = realloc(k->p, k->cap * sizeof *k->p);
		k->len = realloc(k->len, k->cap * sizeof *k->len);
		if (!k->p || !k->len)
			sw_die(EX_SOFTWARE, "out of memory for keys");
	}
	k->p[k->n] = p;
	k->len[k->n] = (uint32_t)len;
	k->n++;
}

/* json: the keys will be printed as JSON strings, so they must be UTF-8 */
static void keys_load(struct keys *k, const struct opts *o, bool json)
{
	memset(k, 0, sizeof *k);
	size_t len;
	if (o->keys) {
		k->buf = malloc((size_t)o->keys * 24 + 1);
		if (!k->buf)
			sw_die(EX_SOFTWARE, "out of memory for keys");
		char *w = k->buf;
		for (long long i = 0; i < o->keys; i++) {
			int l = sprintf(w, "key%lld", i);
			keys_push(k, w, (size_t)l);
			w += l + 1;
		}
	} else {
		k->buf = read_fd(0, "stdin", &len);
		char *p = k->buf, *end = p + len;
		for (size_t line = 1; p < end; line++) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			char *le = nl ? nl : end;
			if (le > p) {
				if (json && !sw_utf8_valid(p, (size_t)(le - p)))
					sw_die(EX_DATAERR, "line %zu: key is not valid UTF-8", line);
				keys_push(k, p, (size_t)(le - p));
			}
			p = le + 1;
		}
	}
	k->h = malloc((k->n ? k->n : 1) * sizeof *k->h);
	if (!k->h)
		sw_die(EX_SOFTWARE, "out of memory for keys");
}

static void keys_hash(struct keys *k, const struct sw_placer *pl)
{
	for (size_t i = 0; i < k->n; i++)
		k->h[i] = sw_key_hash(pl, k->p[i], k->len[i]);
}

static void keys_free(struct keys *k)
{
	free(k->buf);
	free(k->p);
	free(k->len);
	free(k->h);
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
	sw_ws_open(&ws, dir, false);
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
	sw_ws_open(ws, dir, create);
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

/* A value names a file when such a file exists or it holds a '/';
 * otherwise it is a list "a,b=2,c". */
static void nodes_load(struct sw_nodes *ns, const char *spec, const char *opt, struct opts *o)
{
	char err[512];
	struct stat st;
	const char *dir = o->co.dir;
	memset(ns, 0, sizeof *ns);
	if (!strncmp(spec, "@ring:", 6)) {
		nodes_ring(ns, spec + 6, opt, o);
	} else if (spec[0] == '@') {
		if (strncmp(spec, "@agents", 7) || (spec[7] && spec[7] != ':'))
			sw_usage_error("%s %s: unknown node source (want a file, a list, @agents[:ROLE] or @ring:NAME)",
				       opt, spec);
		nodes_agents(ns, spec, opt, dir);
	} else if (stat(spec, &st) == 0 || strchr(spec, '/')) {
		int fd = open(spec, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			sw_die(errno == ENOENT ? EX_NOINPUT : sw_ex_errno(errno), "%s %s: %s", opt, spec,
			       strerror(errno));
		size_t len;
		char *text = read_fd(fd, spec, &len);
		close(fd);
		int rc = sw_nodes_parse_text(ns, text, len, err, sizeof err);
		free(text);
		if (rc < 0)
			sw_die(EX_DATAERR, "%s %s: %s", opt, spec, err);
	} else if (sw_nodes_parse_list(ns, spec, err, sizeof err) < 0) {
		sw_die(EX_DATAERR, "%s: %s", opt, err);
	}
	if (sw_nodes_check(ns, err, sizeof err) < 0)
		sw_die(EX_DATAERR, "%s %s: %s", opt, strchr(spec, ',') ? "list" : spec, err);
}

/* after the keys are read: a ring for a handful of keys is not built */
static void placer_init(struct sw_placer *pl, const struct sw_nodes *ns, const struct opts *o,
			size_t nkeys)
{
	char err[512];
	if (sw_placer_init(pl, ns, o->algo, o->vnodes, o->seed, o->max_load > 0 ? SIZE_MAX : nkeys,
			   err, sizeof err) < 0)
		sw_die(strstr(err, "memory") ? EX_SOFTWARE : EX_USAGE, "%s", err);
}

static void place(const struct sw_placer *pl, const struct keys *k, double factor, uint32_t *out)
{
	if (sw_place_all(pl, k->h, k->n, factor, out) < 0)
		sw_die(EX_SOFTWARE, "out of memory placing keys");
}

static uint32_t *alloc_out(size_t n)
{
	uint32_t *v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		sw_die(EX_SOFTWARE, "out of memory");
	return v;
}

/* ---- assign ---- */

static int cmd_assign(struct opts *o, struct sw_span *sp)
{
	struct sw_nodes ns;
	struct sw_placer pl;
	struct keys k;
	nodes_load(&ns, o->nodes, "--nodes", o);
	keys_load(&k, o, !o->tsv);
	placer_init(&pl, &ns, o, k.n);
	keys_hash(&k, &pl);
	uint32_t *node = alloc_out(k.n);
	place(&pl, &k, o->max_load, node);

	/* each node's line ending, made once */
	char **ends = calloc(ns.n, sizeof *ends);
	size_t *endlen = calloc(ns.n, sizeof *endlen);
	if (!ends || !endlen)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < ns.n; i++) {
		char *q = o->tsv ? NULL : json_quoted(ns.v[i].name);
		if (asprintf(&ends[i], o->tsv ? "\t%s\n" : "\",\"node\":%s}\n", o->tsv ? ns.v[i].name : q) < 0)
			sw_die(EX_SOFTWARE, "out of memory");
		endlen[i] = strlen(ends[i]);
		free(q);
	}
	struct out out = { .cap = 1 << 20, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < k.n; i++) {
		if (o->tsv) {
			out_put(&out, k.p[i], k.len[i]);
		} else {
			out_put(&out, "{\"key\":\"", 8);
			out_json_esc(&out, k.p[i], k.len[i]);
		}
		out_put(&out, ends[node[i]], endlen[node[i]]);
	}
	out_end(&out);
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->algo));
	sw_span_int(sp, "sw.shard.nodes", (int64_t)ns.n);
	sw_span_int(sp, "sw.shard.keys", (int64_t)k.n);
	for (size_t i = 0; i < ns.n; i++)
		free(ends[i]);
	free(ends);
	free(endlen);
	free(out.b);
	free(node);
	keys_free(&k);
	sw_placer_free(&pl);
	sw_nodes_free(&ns);
	return 0;
}

/* ---- plan ---- */

static int cmp_name(const void *a, const void *b, void *nodes)
{
	const struct sw_nodes *ns = nodes;
	return strcmp(ns->v[*(const uint32_t *)a].name, ns->v[*(const uint32_t *)b].name);
}

static int cmd_plan(struct opts *o, struct sw_span *sp)
{
	struct sw_nodes from, to;
	struct sw_placer pf, pt;
	struct keys k;
	nodes_load(&from, o->from, "--from", o);
	nodes_load(&to, o->to, "--to", o);
	keys_load(&k, o, true);
	placer_init(&pf, &from, o, k.n);
	placer_init(&pt, &to, o, k.n);
	keys_hash(&k, &pf);     /* the seed is shared: one hash serves both */
	uint32_t *a = alloc_out(k.n), *b = alloc_out(k.n);
	place(&pf, &k, o->max_load, a);
	place(&pt, &k, o->max_load, b);

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
	char **qf = calloc(from.n, sizeof *qf), **qt = calloc(to.n, sizeof *qt);
	if (!qf || !qt)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < from.n; i++)
		qf[i] = json_quoted(from.v[i].name);
	for (size_t i = 0; i < to.n; i++)
		qt[i] = json_quoted(to.v[i].name);
	size_t moved = 0;
	for (size_t i = 0; i < k.n; i++) {
		if (same[a[i]] == b[i])
			continue;
		moved++;
		if (o->summary)
			continue;
		out_str(&out, "{\"key\":\"");
		out_json_esc(&out, k.p[i], k.len[i]);
		out_str(&out, "\",\"from\":");
		out_str(&out, qf[a[i]]);
		out_str(&out, ",\"to\":");
		out_str(&out, qt[b[i]]);
		out_str(&out, "}\n");
	}
	double ideal = sw_nodes_ideal_moved(&from, &to);
	double frac = k.n ? (double)moved / (double)k.n : 0;
	json_t *sum = json_pack("{s:s,s:I,s:I,s:f,s:f}", "algo", sw_algo_name(o->algo),
				"keys", (json_int_t)k.n, "moved", (json_int_t)moved,
				"moved_fraction", frac, "ideal_fraction", ideal);
	json_object_set_new(sum, "ratio", ideal > 0 ? json_real(frac / ideal) : json_null());
	out_json(&out, sum);
	json_decref(sum);
	out_end(&out);
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->algo));
	sw_span_int(sp, "sw.shard.keys", (int64_t)k.n);
	sw_span_int(sp, "sw.shard.moved", (int64_t)moved);
	for (size_t i = 0; i < from.n; i++)
		free(qf[i]);
	for (size_t i = 0; i < to.n; i++)
		free(qt[i]);
	free(qf);
	free(qt);
	free(out.b);
	free(same);
	free(byname);
	free(a);
	free(b);
	keys_free(&k);
	sw_placer_free(&pf);
	sw_placer_free(&pt);
	sw_nodes_free(&from);
	sw_nodes_free(&to);
	return 0;
}

/* ---- balance ---- */

static int cmd_balance(struct opts *o, struct sw_span *sp)
{
	struct sw_nodes ns;
	struct sw_placer pl;
	struct keys k;
	nodes_load(&ns, o->nodes, "--nodes", o);
	keys_load(&k, o, false);
	placer_init(&pl, &ns, o, k.n);
	keys_hash(&k, &pl);
	uint32_t *node = alloc_out(k.n);
	place(&pl, &k, o->max_load, node);
	uint64_t *cnt = calloc(ns.n, sizeof *cnt);
	if (!cnt)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < k.n; i++)
		cnt[node[i]]++;
	struct out out = { .cap = 1 << 16, .quiet = o->co.quiet };
	out.b = malloc(out.cap);
	if (!out.b)
		sw_die(EX_SOFTWARE, "out of memory");
	double mean = (double)k.n / (double)ns.n, var = 0, over_ideal = 0;
	uint64_t mn = UINT64_MAX, mx = 0;
	for (size_t i = 0; i < ns.n; i++) {
		double ideal = ns.v[i].weight / ns.total;
		if (cnt[i] < mn) mn = cnt[i];
		if (cnt[i] > mx) mx = cnt[i];
		var += ((double)cnt[i] - mean) * ((double)cnt[i] - mean);
		if (k.n && (double)cnt[i] / ((double)k.n * ideal) > over_ideal)
			over_ideal = (double)cnt[i] / ((double)k.n * ideal);
		if (o->summary)
			continue;
		json_t *j = json_pack("{s:s,s:f,s:I,s:f,s:f}", "node", ns.v[i].name,
				      "weight", ns.v[i].weight, "keys", (json_int_t)cnt[i],
				      "share", k.n ? (double)cnt[i] / (double)k.n : 0.0, "ideal_share", ideal);
		out_json(&out, j);
		json_decref(j);
	}
	json_t *sum = json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:f}", "algo", sw_algo_name(o->algo),
				"nodes", (json_int_t)ns.n, "keys", (json_int_t)k.n,
				"min", (json_int_t)mn, "max", (json_int_t)mx, "mean", mean,
				"stddev", sqrt(var / (double)ns.n));
	json_object_set_new(sum, "max_over_mean", k.n ? json_real((double)mx / mean) : json_null());
	json_object_set_new(sum, "max_over_ideal", k.n ? json_real(over_ideal) : json_null());
	out_json(&out, sum);
	json_decref(sum);
	out_end(&out);
	sw_span_str(sp, "sw.shard.algo", sw_algo_name(o->algo));
	sw_span_int(sp, "sw.shard.nodes", (int64_t)ns.n);
	sw_span_int(sp, "sw.shard.keys", (int64_t)k.n);
	free(out.b);
	free(cnt);
	free(node);
	keys_free(&k);
	sw_placer_free(&pl);
	sw_nodes_free(&ns);
	return 0;
}

/* ---- split ---- */

/* Items from stdin: JSON Lines, or with --lines each line as a string.
 * Blank lines are skipped; a bad line fails the whole batch (65). */
static json_t *read_items(const struct opts *o)
{
	size_t len;
	char *buf = read_fd(0, "stdin", &len);
	json_t *items = json_array();
	char *p = buf, *end = buf + len;
	for (size_t line = 1; p < end; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;
		size_t l = (size_t)(le - p);
		if (strspn(p, " \t\r") < l) {
			json_t *it;
			char err[256];
			if (o->lines) {
				if (!sw_utf8_valid(p, l))
					sw_die(EX_DATAERR, "line %zu: not valid UTF-8", line);
				it = json_stringn(p, l);
			} else if (!(it = sw_json_parse(p, l, err, sizeof err))) {
				sw_die(EX_DATAERR, "line %zu: %s", line, err);
			}
			if (!it || json_array_append_new(items, it) < 0)
				sw_die(EX_SOFTWARE, "out of memory reading items");
		}
		p = le + 1;
	}
	free(buf);
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
	sw_ws_open(&ws, o->co.dir, true);
	int rc = sw_queue_open(&q, &ws, qname, true);
	if (rc)
		sw_die(rc, "%s", q.err);
	sw_span_str(sp, "sw.queue", qname);
	struct sw_item_defaults d = {
		.priority = o->priority >= 0 ? o->priority : SW_PRIO_DEFAULT, .role = o->role,
		.max_attempts = SW_ATTEMPTS_DEFAULT, .timeout_ns = SW_TIMEOUT_DEFAULT_NS,
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
		sw_die(rc, "%s", q.err);
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
