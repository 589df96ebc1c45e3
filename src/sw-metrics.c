/* sw-metrics — counters, gauges and histograms in a host-local WAL SQLite
 * database; span ingestion from a pipe; percentiles; Prometheus export. */
#include "clock.h"
#include "cmd.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "metrics.h"
#include "metrics_journal.h"
#include "metrics_otlp.h"
#include "metrics_prom.h"
#include "metrics_ws.h"
#include "opt.h"
#include "span.h"
#include "ws.h"
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
	"usage: sw-metrics VERB [options] [args]\n"
	"  inc NAME [N] [-l KEY=VALUE]...     add N (default 1) to a counter\n"
	"  set NAME VALUE [-l KEY=VALUE]...   set a gauge\n"
	"  observe NAME VALUE [-l KEY=VALUE]... [--buckets LIST]\n"
	"                                     add an observation to a histogram\n"
	"  ingest [--tee] [--buckets LIST]    span lines on stdin -> span metrics\n"
	"  summary NAME [-l KEY=VALUE]... [--since DURATION]\n"
	"                                     count, sum, min, max, mean, p50 ... p99\n"
	"  export [--format prom|json] [-o FILE] [--no-workspace]\n"
	"  prune [--older-than DURATION]      drop old observations and series\n"
	"options: --db PATH, --describe TEXT (HELP text), -d/--dir DIR, --spans[=DEST],\n"
	"         --quiet, -h/--help, -V/--version.  See sw-metrics(1).\n";

enum {
	OPT_DB = SW_OPT_FIRST_FREE, OPT_BUCKETS, OPT_TEE, OPT_SINCE, OPT_FORMAT, OPT_OLDER,
	OPT_DESCRIBE, OPT_NO_WS
};

struct opts {
	struct sw_common co;
	const char *db, *describe, *format, *out;
	struct sw_label labels[SW_M_LABELS_MAX];
	size_t nlabels;
	double bounds[SW_M_BUCKETS_MAX];
	size_t nbounds;
	bool has_bounds, tee, no_ws;
	int64_t since_ns, older_ns;
	bool has_since, has_older;
	char **args;
	int nargs;
};

/* ---- small helpers ---- */

static void die_span(int code, const char *msg, void *arg)
{
	sw_span_int(arg, "sw.exit_code", code);
	sw_span_end(arg, code != SW_EX_FALSE && code != EX_TEMPFAIL, msg);
}

static enum sw_sync sync_setting(void)
{
	const char *s = getenv("SW_SYNC");
	if (!s || !*s || !strcmp(s, "normal")) return SW_SYNC_NORMAL;
	if (!strcmp(s, "off")) return SW_SYNC_OFF;
	if (!strcmp(s, "full")) return SW_SYNC_FULL;
	sw_die(EX_USAGE, "bad SW_SYNC '%s': use off, normal or full", s);
}

static void open_db(struct sw_mdb *m, const struct opts *o)
{
	int code = sw_mdb_open(m, o->db, sync_setting(), true);
	if (code)
		sw_die(code, "%s", m->err);
}

/* Whether there is a database (or a journal waiting for one) to read:
 * verbs that only read create nothing, so that completing a name at the
 * shell makes no database. */
static bool db_exists(const struct opts *o)
{
	char path[PATH_MAX], j[PATH_MAX + 16], err[512];
	int code = sw_mdb_path(o->db, path, err, sizeof err);
	if (code)
		sw_die(code, "%s", err);
	snprintf(j, sizeof j, "%s.journal", path);
	return access(path, F_OK) == 0 || access(j, F_OK) == 0;
}

static void check(struct sw_mdb *m, int code)
{
	if (code) {
		sw_mdb_rollback(m);
		sw_die(code, "%s", m->err);
	}
}

/* Integral values print as integers, others with 15 significant digits
 * (jansson's default of 17 prints 0.1 as 0.10000000000000001). */
static json_t *num(double v)
{
	if (isfinite(v) && v == trunc(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return isfinite(v) ? json_real(v) : json_null();
}

static void print(const struct opts *o, json_t *j)
{
	if (!o->co.quiet && j) {
		char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
		if (!s || printf("%s\n", s) < 0)
			sw_die(EX_IOERR, "cannot write output: %s", strerror(errno));
		free(s);
	}
	json_decref(j);
}

static double value_arg(const char *what, const char *s)
{
	char *end;
	errno = 0;
	/* decimal only: strtod would also take hex, "infinity" and spaces */
	double v = strspn(s, "0123456789.eE+-") == strlen(s) ? strtod(s, &end) : (end = (char *)s, 0);
	if (end == s || *end || errno == ERANGE || !isfinite(v))
		sw_die(EX_DATAERR, "bad %s '%s': want a finite number", what, s);
	return v;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* Checks a user metric name for its kind; counters get "_total" added
 * (the OpenMetrics rule), so inc x and inc x_total are one counter. */
static void metric_name(char out[SW_M_NAME_MAX + 8], const char *name, enum sw_mkind kind)
{
	const char *why = sw_m_name_problem(name);
	if (why)
		sw_die(EX_DATAERR, "bad metric name '%.80s': %s", name, why);
	if (sw_metrics_ws_reserved(name))
		sw_die(EX_DATAERR, "bad metric name '%s': sw_queue_*, sw_agents*, sw_leases* and "
		       "sw_span* are export's workspace gauges and ingest's span metrics", name);
	if (kind == SW_M_COUNTER) {
		snprintf(out, SW_M_NAME_MAX + 8, "%s%s", name, ends_with(name, "_total") ? "" : "_total");
		if (strlen(out) > SW_M_NAME_MAX)
			sw_die(EX_DATAERR, "bad metric name '%.80s': over 200 bytes with _total", name);
		return;
	}
	if (ends_with(name, "_total"))
		sw_die(EX_DATAERR, "bad metric name '%s': only counters end in _total", name);
	/* a gauge lat_count would collide with histogram lat's series */
	if (ends_with(name, "_bucket") || ends_with(name, "_sum") || ends_with(name, "_count"))
		sw_die(EX_DATAERR, "bad metric name '%s': _bucket, _sum and _count are the series "
		       "of histograms", name);
	snprintf(out, SW_M_NAME_MAX + 8, "%s", name);
}

static char *labels_json(const struct opts *o)
{
	char err[256];
	char *l = sw_m_labels_json(o->labels, o->nlabels, err, sizeof err);
	if (!l)
		sw_die(EX_DATAERR, "bad labels: %s", err);
	return l;
}

static json_t *labels_obj(const char *labels)
{
	json_t *j = json_loads(labels, 0, NULL);
	return j ? j : json_object();
}

static void want_args(const struct opts *o, int min, int max, const char *what)
{
	if (o->nargs < min || o->nargs > max)
		sw_usage_error("%s", what);
}

/* ---- inc, set, observe ---- */

/* One write without SQLite (metrics_journal.h): the kind checked against
 * the registry, one record appended to the journal.  Only the first write
 * to a database opens it, to create it and its registry; and a write that
 * finds the journal grown past SW_MJ_FOLD_BYTES folds it. */
static void journal_write(const struct opts *o, char type, enum sw_mkind kind, const char *name,
			  const char *labels, double v)
{
	struct sw_mdb m;
	enum sw_sync sync = sync_setting();
	bool missing;
	int code = sw_mdb_locate(&m, o->db, &missing);
	if (code)
		sw_die(code, "%s", m.err);
	const double *want = kind == SW_M_HISTOGRAM && o->has_bounds ? o->bounds : NULL;
	for (int tries = 0;; tries++) {
		if (!missing) {
			code = sw_mkind_claim(m.path, name, kind, want, o->nbounds, want != NULL, sync,
					      NULL, NULL, m.err, sizeof m.err);
			if (code != SW_MKIND_NOREG)
				break;
		}
		if (tries)
			sw_die(EX_SOFTWARE, "%s%s: no kinds registry after opening the database", m.path,
			       SW_MJ_KINDS);
		if ((code = sw_mdb_connect(&m, sync, true)))
			sw_die(code, "%s", m.err);
		sw_mdb_close(&m);
		missing = false;
	}
	if (code)
		sw_die(code, "%s", m.err);
	char *rec = NULL;
	size_t len = 0;
	if (sw_mj_record(&rec, &len, type, sw_now_ns(), v, name, labels, o->describe, kind) < 0)
		sw_die(EX_SOFTWARE, "out of memory");
	bool fold;
	code = sw_mj_append(m.path, rec, len, sync, &fold, m.err, sizeof m.err);
	free(rec);
	if (code)
		sw_die(code, "%s", m.err);
	if (fold) {
		/* written already: a fold that fails is for the next reader */
		if ((code = sw_mdb_connect(&m, sync, true)))
			sw_warn("%s", m.err);
		sw_mdb_close(&m);
	}
}

static int verb_inc(struct opts *o, struct sw_span *sp)
{
	want_args(o, 1, 2, "want NAME [N]");
	char name[SW_M_NAME_MAX + 8];
	metric_name(name, o->args[0], SW_M_COUNTER);
	double n = o->nargs > 1 ? value_arg("increment", o->args[1]) : 1;
	if (n < 0)
		sw_die(EX_DATAERR, "bad increment '%s': counters only go up", o->args[1]);
	char *labels = labels_json(o);
	sw_span_str(sp, "sw.metric", name);
	if (o->co.quiet) {
		/* nothing to print: no need to know the total */
		journal_write(o, 'C', SW_M_COUNTER, name, labels, n);
		free(labels);
		return 0;
	}
	/* the new total is asked for: fold, then add in the database */
	struct sw_mdb m;
	open_db(&m, o);
	double total;
	int64_t now = sw_now_ns();
	check(&m, sw_mdb_begin(&m));
	check(&m, sw_mdb_metric(&m, name, SW_M_COUNTER, o->describe, NULL, 0, false, NULL, NULL));
	check(&m, sw_mdb_counter_add(&m, name, labels, n, now, &total));
	check(&m, sw_mdb_commit(&m));
	sw_mdb_close(&m);
	print(o, json_pack("{s:s,s:o,s:o}", "name", name, "labels", labels_obj(labels),
			   "value", num(total)));
	free(labels);
	return 0;
}

/* set and observe: NAME VALUE, one journal record of type rec. */
static int record_value(struct opts *o, struct sw_span *sp, enum sw_mkind kind, char rec)
{
	want_args(o, 2, 2, "want NAME VALUE");
	char name[SW_M_NAME_MAX + 8];
	metric_name(name, o->args[0], kind);
	double v = value_arg("value", o->args[1]);
	char *labels = labels_json(o);
	sw_span_str(sp, "sw.metric", name);
	journal_write(o, rec, kind, name, labels, v);
	print(o, json_pack("{s:s,s:o,s:o}", "name", name, "labels", labels_obj(labels),
			   "value", num(v)));
	free(labels);
	return 0;
}

static int verb_set(struct opts *o, struct sw_span *sp)
{
	return record_value(o, sp, SW_M_GAUGE, 'G');
}

static int verb_observe(struct opts *o, struct sw_span *sp)
{
	return record_value(o, sp, SW_M_HISTOGRAM, 'O');
}

/* ---- ingest ---- */

#define SPAN_HIST "sw_span_duration_seconds"
#define SPAN_COUNT "sw_spans_total"
#define BATCH_SPANS 50000
#define AGG_HASH 4096

struct agg {
	struct agg *next;
	char *key;                     /* span NUL service */
	size_t keylen;
	char *lab_hist, *lab_status[3];
	long long counts[SW_M_BUCKETS_MAX + 1], count, st_count[3];
	double sum;
	long long series;
	bool dirty;
};

struct pending_obs {
	struct agg *a;
	int64_t t;
	double v;
};

struct ingest {
	struct opts *o;
	struct sw_mdb m;
	double b[SW_M_BUCKETS_MAX];
	size_t nb;
	struct agg *hash[AGG_HASH];
	struct pending_obs *obs;
	size_t nobs;
	long long lines, spans, other, malformed, first_bad_line;
	char first_bad[200];
};

static const char *const status_names[3] = {"unset", "ok", "error"};

static uint64_t hash_key(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211u;
	return h;
}

static char *span_labels(const char *span, const char *service, const char *status)
{
	struct sw_label l[3] = {{"service", service}, {"span", span}, {"status", status}};
	char err[128];
	char *s = sw_m_labels_json(l, status ? 3 : 2, err, sizeof err);
	if (!s)
		sw_die(EX_SOFTWARE, "out of memory");
	return s;
}

static struct agg *agg_get(struct ingest *in, const struct sw_otlp_span *s)
{
	size_t ln = strlen(s->name), ls = strlen(s->service);
	char key[ln + ls + 2];
	memcpy(key, s->name, ln + 1);
	memcpy(key + ln + 1, s->service, ls + 1);
	size_t kl = ln + ls + 2;
	uint64_t h = hash_key(key, kl) % AGG_HASH;
	for (struct agg *a = in->hash[h]; a; a = a->next)
		if (a->keylen == kl && !memcmp(a->key, key, kl))
			return a;
	struct agg *a = calloc(1, sizeof *a);
	if (!a || !(a->key = malloc(kl)))
		sw_die(EX_SOFTWARE, "out of memory");
	memcpy(a->key, key, kl);
	a->keylen = kl;
	a->lab_hist = span_labels(s->name, s->service, NULL);
	for (int i = 0; i < 3; i++)
		a->lab_status[i] = span_labels(s->name, s->service, status_names[i]);
	a->next = in->hash[h];
	in->hash[h] = a;
	return a;
}

static void ensure_metrics(struct ingest *in)
{
	struct sw_mdb *m = &in->m;
	const double *want = in->o->has_bounds ? in->o->bounds : sw_m_span_bounds;
	size_t nwant = in->o->has_bounds ? in->o->nbounds : sw_m_span_nbounds;
	bool strict = in->o->has_bounds || in->nb;   /* later batches: what we count with */
	if (in->nb) {
		want = in->b;
		nwant = in->nb;
	}
	double b[SW_M_BUCKETS_MAX];
	size_t nb = 0;
	check(m, sw_mdb_metric(m, SPAN_HIST, SW_M_HISTOGRAM, "Duration of spans ingested from "
			       "OTLP JSON lines, by span name and service.", want, nwant, strict, b, &nb));
	check(m, sw_mdb_metric(m, SPAN_COUNT, SW_M_COUNTER, "Spans ingested, by span name, service "
			       "and status.", NULL, 0, false, NULL, NULL));
	if (!in->nb) {
		memcpy(in->b, b, nb * sizeof *b);
		in->nb = nb;
	}
}

static void flush(struct ingest *in)
{
	struct sw_mdb *m = &in->m;
	if (in->nobs == 0)
		return;
	int64_t now = sw_now_ns();
	check(m, sw_mdb_begin(m));
	ensure_metrics(in);
	for (size_t h = 0; h < AGG_HASH; h++) {
		for (struct agg *a = in->hash[h]; a; a = a->next) {
			if (!a->dirty)
				continue;
			check(m, sw_mdb_hist_add(m, SPAN_HIST, a->lab_hist, in->nb, a->counts, a->count,
						 a->sum, now, &a->series));
			for (int s = 0; s < 3; s++)
				if (a->st_count[s])
					check(m, sw_mdb_counter_add(m, SPAN_COUNT, a->lab_status[s],
								    (double)a->st_count[s], now, NULL));
		}
	}
	for (size_t i = 0; i < in->nobs; i++)
		check(m, sw_mdb_obs(m, in->obs[i].a->series, in->obs[i].t, in->obs[i].v));
	check(m, sw_mdb_commit(m));
	for (size_t h = 0; h < AGG_HASH; h++) {
		for (struct agg *a = in->hash[h]; a; a = a->next) {
			if (!a->dirty)
				continue;
			memset(a->counts, 0, sizeof a->counts);
			memset(a->st_count, 0, sizeof a->st_count);
			a->count = 0;
			a->sum = 0;
			a->dirty = false;
		}
	}
	in->nobs = 0;
}

static void add_span(struct ingest *in, const struct sw_otlp_span *s)
{
	struct agg *a = agg_get(in, s);
	double v = (double)(s->end_ns - s->start_ns) / 1e9;
	a->counts[sw_m_bucket_of(in->b, in->nb, v)]++;
	a->count++;
	a->sum += v;
	a->st_count[s->status]++;
	a->dirty = true;
	in->obs[in->nobs++] = (struct pending_obs){a, s->end_ns, v};
	in->spans++;
}

/* A last line without a newline passes on without one: --tee is byte-exact. */
static void out_line(const char *line, size_t len, bool newline)
{
	if (fwrite(line, 1, len, stdout) != len || (newline && putchar('\n') == EOF))
		sw_die(EX_IOERR, "cannot write output: %s", strerror(errno));
}

static void ingest_line(struct ingest *in, struct sw_otlp *p, const char *line, size_t len,
			bool newline)
{
	in->lines++;
	int r = sw_otlp_line(p, line, len);
	if (r == SW_OTLP_SPANS) {
		if (in->nobs + p->nspan > BATCH_SPANS)
			flush(in);
		for (size_t i = 0; i < p->nspan; i++) {
			if (in->nobs == BATCH_SPANS)
				flush(in);
			add_span(in, &p->span[i]);
		}
		return;
	}
	if (r == SW_OTLP_BAD) {
		if (in->malformed++ == 0) {
			in->first_bad_line = in->lines;
			snprintf(in->first_bad, sizeof in->first_bad, "%s", p->why);
		}
	} else {
		in->other++;
	}
	/* what is not a span passes on untouched, malformed span lines too:
	 * nothing is lost downstream */
	if (in->o->tee)
		out_line(line, len, newline);
}

/* Whether more input is ready without blocking. */
static bool input_ready(void)
{
	struct pollfd pf = {.fd = 0, .events = POLLIN};
	return poll(&pf, 1, 0) > 0;
}

#define LINE_MAX_BYTES (64u << 20)

static void read_input(struct ingest *in)
{
	struct sw_otlp p = {0};
	size_t cap = 1 << 20, have = 0;
	char *buf = malloc(cap);
	bool skipping = false;   /* inside a line over LINE_MAX_BYTES */
	if (!buf)
		sw_die(EX_SOFTWARE, "out of memory");
	for (;;) {
		if (!input_ready()) {
			/* about to wait: let what came so far reach the store and
			 * the next program in the pipe */
			flush(in);
			if (fflush(stdout) == EOF)
				sw_die(EX_IOERR, "cannot write output: %s", strerror(errno));
		}
		if (have == cap) {
			if (cap >= LINE_MAX_BYTES) {
				skipping = true;
				have = 0;
			} else {
				char *nb = realloc(buf, cap *= 2);
				if (!nb)
					sw_die(EX_SOFTWARE, "out of memory");
				buf = nb;
			}
		}
		ssize_t n = read(0, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			sw_die(EX_IOERR, "cannot read stdin: %s", strerror(errno));
		if (n == 0)
			break;
		have += (size_t)n;
		size_t start = 0;
		char *nl;
		while ((nl = memchr(buf + start, '\n', have - start))) {
			size_t len = (size_t)(nl - (buf + start));
			if (skipping) {
				in->lines++;
				if (in->malformed++ == 0) {
					in->first_bad_line = in->lines;
					snprintf(in->first_bad, sizeof in->first_bad, "line over 64 MiB");
				}
				skipping = false;
			} else {
				ingest_line(in, &p, buf + start, len, true);
			}
			start += len + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	if (have && !skipping)
		ingest_line(in, &p, buf, have, false);
	free(buf);
	sw_otlp_free(&p);
}

static int verb_ingest(struct opts *o, struct sw_span *sp)
{
	want_args(o, 0, 0, "ingest takes no arguments");
	struct ingest *in = calloc(1, sizeof *in);
	if (!in || !(in->obs = malloc(BATCH_SPANS * sizeof *in->obs)))
		sw_die(EX_SOFTWARE, "out of memory");
	in->o = o;
	open_db(&in->m, o);
	check(&in->m, sw_mdb_begin(&in->m));
	ensure_metrics(in);
	check(&in->m, sw_mdb_commit(&in->m));
	read_input(in);
	flush(in);
	long long pruned;
	int64_t now = sw_now_ns();
	check(&in->m, sw_mdb_begin(&in->m));
	check(&in->m, sw_mdb_prune(&in->m, now - in->m.retention_ns, false, &pruned, NULL));
	check(&in->m, sw_mdb_commit(&in->m));
	sw_mdb_close(&in->m);
	if (in->malformed)
		sw_warn("%lld malformed span line%s, the first at line %lld: %s", in->malformed,
			in->malformed == 1 ? "" : "s", in->first_bad_line, in->first_bad);
	sw_span_int(sp, "sw.ingest.spans", in->spans);
	sw_span_int(sp, "sw.ingest.malformed", in->malformed);
	if (!o->tee)
		print(o, json_pack("{s:I,s:I,s:I,s:I}", "lines", (json_int_t)in->lines,
				   "spans", (json_int_t)in->spans, "other", (json_int_t)in->other,
				   "malformed", (json_int_t)in->malformed));
	for (size_t h = 0; h < AGG_HASH; h++) {
		for (struct agg *a = in->hash[h], *next; a; a = next) {
			next = a->next;
			free(a->key);
			free(a->lab_hist);
			for (int i = 0; i < 3; i++)
				free(a->lab_status[i]);
			free(a);
		}
	}
	free(in->obs);
	free(in);
	return 0;
}

/* ---- summary ---- */

static int verb_summary(struct opts *o, struct sw_span *sp)
{
	want_args(o, 1, 1, "want NAME");
	const char *why = sw_m_name_problem(o->args[0]);
	if (why)
		sw_die(EX_DATAERR, "bad metric name '%.80s': %s", o->args[0], why);
	sw_span_str(sp, "sw.metric", o->args[0]);
	if (!db_exists(o))
		sw_die(SW_EX_FALSE, "no metric '%s' (no database yet)", o->args[0]);
	struct sw_mdb m;
	open_db(&m, o);
	struct sw_msummary s;
	int64_t since = o->has_since ? sw_now_ns() - o->since_ns : INT64_MIN;
	int code = sw_mdb_summary(&m, o->args[0], o->labels, o->nlabels, since, &s);
	if (code == SW_EX_FALSE && !ends_with(o->args[0], "_total")) {
		/* counters are stored with their _total */
		char name[SW_M_NAME_MAX + 8];
		snprintf(name, sizeof name, "%s_total", o->args[0]);
		code = sw_mdb_summary(&m, name, o->labels, o->nlabels, since, &s);
	}
	if (code)
		sw_die(code, "%s", m.err);
	sw_mdb_close(&m);
	json_t *j = json_pack("{s:s,s:s,s:I}", "name", o->args[0], "type",
			      s.kind == SW_M_COUNTER ? "counter" : s.kind == SW_M_GAUGE ? "gauge" :
			      "histogram", "series", (json_int_t)s.series);
	if (s.kind != SW_M_HISTOGRAM) {
		json_object_set_new(j, "value", num(s.value));
	} else {
		double sum = 0;
		for (size_t i = 0; i < s.n; i++)
			sum += s.v[i];
		json_object_set_new(j, "count", json_integer((json_int_t)s.n));
		json_object_set_new(j, "sum", num(sum));
		static const struct { const char *k; double p; } pc[] = {
			{"p50", 50}, {"p90", 90}, {"p95", 95}, {"p99", 99}};
		json_object_set_new(j, "min", s.n ? num(s.v[0]) : json_null());
		json_object_set_new(j, "max", s.n ? num(s.v[s.n - 1]) : json_null());
		json_object_set_new(j, "mean", s.n ? num(sum / (double)s.n) : json_null());
		for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++)
			json_object_set_new(j, pc[i].k, s.n ? num(sw_m_percentile(s.v, s.n, pc[i].p)) :
					    json_null());
	}
	if (o->has_since)
		sw_json_set_time(j, "since", since);
	free(s.v);
	print(o, j);
	return 0;
}

/* ---- export ---- */

struct exporter {
	const struct opts *o;
	struct sw_prom w;
	FILE *f;
	bool json;
};

static const char *type_name(enum sw_mkind k)
{
	return k == SW_M_COUNTER ? "counter" : k == SW_M_GAUGE ? "gauge" : "histogram";
}

static void json_out(struct exporter *e, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	if (!s)   /* a sample left out silently would be a lie */
		sw_die(EX_SOFTWARE, "cannot encode an exported sample");
	fprintf(e->f, "%s\n", s);
	free(s);
	json_decref(j);
}

static int export_series(const struct sw_mseries *s, void *arg)
{
	struct exporter *e = arg;
	json_t *labels = labels_obj(s->labels);
	if (e->json) {
		json_t *j = json_pack("{s:s,s:s,s:O}", "name", s->name, "type", type_name(s->kind),
				      "labels", labels);
		if (s->kind != SW_M_HISTOGRAM) {
			json_object_set_new(j, "value", num(s->value));
		} else {
			json_t *b = json_array();
			long long cum = 0;
			for (size_t i = 0; i <= s->nb; i++) {
				cum += s->counts[i];
				json_array_append_new(b, json_pack("{s:o,s:I}", "le", i < s->nb ?
					num(s->bounds[i]) : json_string("+Inf"), "count", (json_int_t)cum));
			}
			json_object_set_new(j, "count", json_integer(s->count));
			json_object_set_new(j, "sum", num(s->value));
			json_object_set_new(j, "buckets", b);
		}
		sw_json_set_time(j, "updated_at", s->updated_ns);
		json_out(e, j);
		json_decref(labels);
		return 0;
	}
	sw_prom_family(&e->w, s->name, type_name(s->kind), s->help);
	if (s->kind != SW_M_HISTOGRAM) {
		sw_prom_sample(&e->w, s->name, labels, NULL, s->value);
	} else {
		char n[SW_M_NAME_MAX + 16], le[32];
		long long cum = 0;
		snprintf(n, sizeof n, "%s_bucket", s->name);
		for (size_t i = 0; i <= s->nb; i++) {
			cum += s->counts[i];
			if (i < s->nb)
				sw_m_fmt_double(s->bounds[i], le);
			else
				strcpy(le, "+Inf");
			sw_prom_sample(&e->w, n, labels, le, (double)cum);
		}
		snprintf(n, sizeof n, "%s_sum", s->name);
		sw_prom_sample(&e->w, n, labels, NULL, s->value);
		snprintf(n, sizeof n, "%s_count", s->name);
		sw_prom_sample(&e->w, n, labels, NULL, (double)s->count);
	}
	json_decref(labels);
	return 0;
}

static int export_gauge(const char *name, const char *help, const json_t *labels, double v, void *arg)
{
	struct exporter *e = arg;
	if (e->json) {
		json_out(e, json_pack("{s:s,s:s,s:o,s:o}", "name", name, "type", "gauge",
				      "labels", labels ? json_incref((json_t *)labels) : json_object(),
				      "value", num(v)));
		return 0;
	}
	sw_prom_family(&e->w, name, "gauge", help);
	sw_prom_sample(&e->w, name, labels, NULL, v);
	return 0;
}

/* Workspace gauges need the workspace, but only when there is one:
 * export without a workspace is still an export. */
static bool workspace_exists(const char *dir, char out[PATH_MAX])
{
	const char *env = getenv("SW_DIR"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	if (dir && *dir) snprintf(out, PATH_MAX, "%s", dir);
	else if (env && *env) snprintf(out, PATH_MAX, "%s", env);
	/* as sw_ws_open finds it: a relative XDG_STATE_HOME is ignored, a
	 * relative HOME names no workspace */
	else if (xdg && xdg[0] == '/') snprintf(out, PATH_MAX, "%s/sw", xdg);
	else if (home && home[0] == '/') snprintf(out, PATH_MAX, "%s/.local/state/sw", home);
	else return false;
	struct stat st;
	return stat(out, &st) == 0 && S_ISDIR(st.st_mode);
}

static void write_out(const struct opts *o, const char *buf, size_t len)
{
	if (!o->out) {
		if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) == EOF)
			sw_die(EX_IOERR, "cannot write output: %s", strerror(errno));
		return;
	}
	char dir[PATH_MAX];
	const char *slash = strrchr(o->out, '/');
	const char *base = slash ? slash + 1 : o->out;
	if (!*base)
		sw_usage_error("bad -o '%s': want a file name", o->out);
	if (slash == o->out) strcpy(dir, "/");
	else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - o->out), o->out);
	else strcpy(dir, ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		sw_die(errno == EACCES ? EX_NOPERM : EX_CANTCREAT, "cannot open directory %s: %s", dir,
		       strerror(errno));
	/* temp + rename: node_exporter never reads a half-written file */
	if (sw_replace(fd, base, buf, len, sync_setting(), true) < 0)
		sw_die(sw_ex_errno(errno), "cannot write %s: %s", o->out, strerror(errno));
	close(fd);
}

static int verb_export(struct opts *o, struct sw_span *sp)
{
	want_args(o, 0, 0, "export takes no arguments");
	struct exporter e = {.o = o};
	if (!o->format || !strcmp(o->format, "prom"))
		e.json = false;
	else if (!strcmp(o->format, "json"))
		e.json = true;
	else
		sw_usage_error("bad --format '%s': use prom or json", o->format);
	sw_span_str(sp, "sw.format", e.json ? "json" : "prom");
	char *buf = NULL;
	size_t len = 0;
	if (!(e.f = open_memstream(&buf, &len)))
		sw_die(EX_SOFTWARE, "out of memory");
	e.w.f = e.f;
	struct sw_mdb m;
	if (db_exists(o)) {
		open_db(&m, o);
		check(&m, sw_mdb_walk(&m, export_series, &e));
		sw_mdb_close(&m);
	}
	char wsdir[PATH_MAX];
	if (!o->no_ws && workspace_exists(o->co.dir, wsdir) && access(wsdir, R_OK | X_OK) < 0) {
		/* the metrics are still worth exporting without the gauges */
		sw_warn("workspace gauges left out: %s: %s", wsdir, strerror(errno));
	} else if (!o->no_ws && workspace_exists(o->co.dir, wsdir)) {
		struct sw_ws ws;
		sw_ws_open_or_die(&ws, o->co.dir, false);
		sw_metrics_ws_gauges(&ws, sw_now_ns(), export_gauge, &e);
		sw_ws_close(&ws);
	}
	if (fclose(e.f) == EOF)
		sw_die(EX_SOFTWARE, "out of memory");
	write_out(o, buf, len);
	free(buf);
	return 0;
}

/* ---- prune ---- */

static int verb_prune(struct opts *o, struct sw_span *sp)
{
	want_args(o, 0, 0, "prune takes no arguments");
	struct sw_mdb m;
	open_db(&m, o);
	int64_t older = o->has_older ? o->older_ns : m.retention_ns;
	long long nobs, nseries;
	check(&m, sw_mdb_begin(&m));
	check(&m, sw_mdb_prune(&m, sw_now_ns() - older, true, &nobs, &nseries));
	check(&m, sw_mdb_commit(&m));
	sw_mdb_close(&m);
	sw_span_int(sp, "sw.pruned.observations", nobs);
	print(o, json_pack("{s:I,s:I}", "observations", (json_int_t)nobs, "series",
			   (json_int_t)nseries));
	return 0;
}

/* ---- main ---- */

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"db", required_argument, 0, OPT_DB},
	{"label", required_argument, 0, 'l'},
	{"buckets", required_argument, 0, OPT_BUCKETS},
	{"describe", required_argument, 0, OPT_DESCRIBE},
	{"tee", no_argument, 0, OPT_TEE},
	{"since", required_argument, 0, OPT_SINCE},
	{"format", required_argument, 0, OPT_FORMAT},
	{"output", required_argument, 0, 'o'},
	{"no-workspace", no_argument, 0, OPT_NO_WS},
	{"older-than", required_argument, 0, OPT_OLDER},
	{0, 0, 0, 0},
};

/* The long name of a verb's own option c, for the check below. */
static const char *opt_name(int c)
{
	return sw_opt_name(longopts, c);
}

/* Whether the option c means something to this verb (allowed: its options'
 * long names, each between spaces): an option a verb ignores would be a
 * silent surprise. */
static bool opt_applies(const char *allowed, int c)
{
	const char *name = opt_name(c);
	char word[32];
	if (!name || !allowed)
		return true;   /* unknown options are reported by the switch */
	snprintf(word, sizeof word, " %s ", name);
	return strstr(allowed, word) != NULL;
}

static void parse(int argc, char **argv, struct opts *o, const char *allowed)
{
	int c;
	const char *why;
	opterr = 0;   /* one line of ours instead of getopt's */
	while ((c = getopt_long(argc, argv, SW_COMMON_SHORTOPTS "l:o:", longopts, NULL)) != -1) {
		if (sw_common_opt(c, optarg, &o->co, usage))
			continue;
		if (!opt_applies(allowed, c))
			sw_usage_error("--%s is not an option of this verb", opt_name(c));
		switch (c) {
		case OPT_DB: o->db = optarg; break;
		case 'l':
			if (o->nlabels == SW_M_LABELS_MAX)
				sw_die(EX_DATAERR, "more than %d labels", SW_M_LABELS_MAX);
			if ((why = sw_m_label_parse(optarg, &o->labels[o->nlabels])))
				sw_die(EX_DATAERR, "bad label '%.80s': %s", optarg, why);
			o->nlabels++;
			break;
		case OPT_BUCKETS:
			if ((why = sw_m_bounds_parse(optarg, o->bounds, &o->nbounds)))
				sw_die(EX_DATAERR, "bad --buckets '%.80s': %s", optarg, why);
			o->has_bounds = true;
			break;
		case OPT_DESCRIBE:
			if (!sw_utf8_valid(optarg, strlen(optarg)))
				sw_die(EX_DATAERR, "bad --describe: not valid UTF-8");
			o->describe = optarg;
			break;
		case OPT_TEE: o->tee = true; break;
		case OPT_SINCE: o->since_ns = sw_opt_duration("--since", optarg); o->has_since = true; break;
		case OPT_FORMAT: o->format = optarg; break;
		case 'o': o->out = optarg; break;
		case OPT_NO_WS: o->no_ws = true; break;
		case OPT_OLDER:
			o->older_ns = sw_opt_duration("--older-than", optarg);
			o->has_older = true;
			break;
		default:
			if (optopt && optopt < 0x100)
				sw_usage_error("unknown option '-%c' (a negative value goes after --)", optopt);
			sw_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
}

static const struct {
	const char *name;
	int (*fn)(struct opts *, struct sw_span *);
	const char *opts;   /* its own options, see opt_applies */
} verbs[] = {
	{"inc", verb_inc, " db label describe "},
	{"set", verb_set, " db label describe "},
	{"observe", verb_observe, " db label describe buckets "},
	{"ingest", verb_ingest, " db tee buckets "},
	{"summary", verb_summary, " db label since "},
	{"export", verb_export, " db format output no-workspace "},
	{"prune", verb_prune, " db older-than "},
};


int main(int argc, char **argv)
{
	sw_prog_set("sw-metrics");
	struct opts o = {0};
	if (argc < 2)
		sw_usage_error("no verb");
	const char *verb = argv[1];
	if (verb[0] == '-') {
		/* sw-metrics --help / --version before a verb */
		parse(argc, argv, &o, NULL);
		sw_usage_error("no verb");
	}
	int (*fn)(struct opts *, struct sw_span *) = NULL;
	const char *allowed = NULL;
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (!strcmp(verbs[i].name, verb)) {
			fn = verbs[i].fn;
			allowed = verbs[i].opts;
		}
	if (!fn)
		sw_usage_error("unknown verb '%.40s'", verb);
	sw_verb_set(verb);
	parse(argc - 1, argv + 1, &o, allowed);
	char spname[64];
	snprintf(spname, sizeof spname, "sw-metrics %s", verb);
	struct sw_span sp;
	sw_span_start(&sp, o.co.spans, spname);
	sw_on_die(die_span, &sp);
	int code = fn(&o, &sp);
	sw_span_end(&sp, false, NULL);
	if (fflush(stdout) == EOF)
		sw_die(EX_IOERR, "cannot write output: %s", strerror(errno));
	return code;
}
