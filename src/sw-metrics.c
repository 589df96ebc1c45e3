/* sw-metrics — counters, gauges and histograms in a host-local WAL SQLite
 * database; span ingestion from a pipe; percentiles; Prometheus export.
 * The store, the journal write protocol and the naming rules are the
 * metrics library (lib/metrics.h); this file holds the verbs. */
#include "clock.h"
#include "cmd.h"
#include "err.h"
#include "hash.h"
#include "id.h"
#include "json.h"
#include "metrics.h"
#include "metrics_otlp.h"
#include "metrics_prom.h"
#include "metrics_ws.h"
#include "num.h"
#include "opt.h"
#include "span.h"
#include "ws.h"
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: sw-metrics VERB [options] [args]\n"
	"  inc NAME [N] [-l KEY=VALUE]...     add N (default 1) to a counter\n"
	"  set NAME VALUE [-l KEY=VALUE]...   set a gauge\n"
	"  observe NAME VALUE [-l KEY=VALUE]... [--buckets LIST]\n"
	"                                     add an observation to a histogram\n"
	"  time NAME [-l KEY=VALUE]... [--buckets LIST] -- COMMAND [ARGS...]\n"
	"                                     run COMMAND (no shell) and exit with its\n"
	"                                     status; its seconds go to histogram NAME\n"
	"                                     with label exit_code (128+N: signal N)\n"
	"  ingest [--tee] [--buckets LIST]    span lines on stdin -> span metrics\n"
	"  summary NAME [-l KEY=VALUE]... [--since DURATION]\n"
	"                                     count, sum, min, max, mean, p50 ... p99\n"
	"  export [--format prom|json] [-o FILE] [--no-workspace]\n"
	"  prune [--older-than DURATION]      drop old observations and series\n"
	"                                     (default: SW_METRICS_RETENTION, 7d)\n"
	"N, VALUE and --buckets bounds are decimal numbers (12, 0.5; a negative\n"
	"VALUE after --).  A DURATION is a number and a unit: 250ms, 30s, 5m, 24h, 7d.\n"
	"options: --db PATH, --describe TEXT (HELP text), -d/--dir DIR, --spans[=DEST],\n"
	"         --quiet, -h/--help, -V/--version.  See sw-metrics(1).\n";

enum {
	OPT_DB = SW_OPT_FIRST_FREE, OPT_BUCKETS, OPT_TEE, OPT_SINCE, OPT_FORMAT, OPT_OLDER,
	OPT_DESCRIBE, OPT_NO_WS
};

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

struct opts {
	bool quiet;
	enum sw_sync sync;
	const char *db, *describe, *out, *dir;
	struct sw_label labels[SW_M_LABELS_MAX];
	size_t nlabels;
	double bounds[SW_M_BUCKETS_MAX];
	size_t nbounds;
	bool has_bounds, tee, no_ws, json;
	int64_t since_ns, older_ns;     /* older_ns < 0: the retention */
	bool has_since;
	char **args;
	int nargs;
};


/* ---- small helpers ---- */

static void open_db(struct sw_mdb *m, const struct opts *o)
{
	int code = sw_m_open(m, o->db, o->sync, true);
	if (code)
		sw_die(code, "%s", m->err.msg);
}

/* A failure inside a transaction: rolled back, and the end. */
static void db_check(struct sw_mdb *m, int code)
{
	if (code) {
		sw_m_rollback(m);
		sw_die(code, "%s", m->err.msg);
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
	if (!o->quiet && j) {
		char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
		if (!s || printf("%s\n", s) < 0)
			sw_die(EX_IOERR, "cannot write output: %s", strerror(errno));
		free(s);
	}
	json_decref(j);
}

/* A value from the command line: a decimal number (num.h), else 65. */
static double value_arg(const char *what, const char *s)
{
	double v;
	if (sw_parse_real(s, -DBL_MAX, DBL_MAX, &v) < 0)
		sw_die(EX_DATAERR, "bad %s '%.40s': want a decimal number such as 12 or 0.5", what, s);
	return v;
}

static void metric_name(char out[SW_M_NAME_MAX + 8], const char *name, enum sw_mkind kind)
{
	struct sw_err err;
	int code = sw_m_metric_name(out, name, kind, &err);
	if (code)
		sw_die(code, "%s", err.msg);
}

static char *labels_json(const struct opts *o)
{
	struct sw_err err;
	char *l = sw_m_labels_json(o->labels, o->nlabels, &err);
	if (!l)
		sw_die(EX_DATAERR, "bad labels: %s", err.msg);
	return l;
}

static json_t *labels_obj(const char *labels)
{
	json_t *j = json_loads(labels, 0, NULL);
	return j ? j : json_object();
}

/* ---- inc, set, observe ---- */

/* NAME [VALUE] as a write of kind (without its value). */
static void write_of(const struct opts *o, enum sw_mkind kind, struct sw_mwrite *w,
		     char name[SW_M_NAME_MAX + 8])
{
	metric_name(name, o->args[0], kind);
	*w = (struct sw_mwrite){
		.db = o->db, .sync = o->sync, .kind = kind, .name = name, .help = o->describe,
		.bounds = kind == SW_M_HISTOGRAM && o->has_bounds ? o->bounds : NULL,
		.nbounds = o->nbounds,
	};
}

static int verb_inc(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	char name[SW_M_NAME_MAX + 8];
	struct sw_err err;
	struct sw_mwrite w;
	write_of(o, SW_M_COUNTER, &w, name);
	w.value = o->nargs > 1 ? value_arg("increment", o->args[1]) : 1;
	if (w.value < 0)
		sw_die(EX_DATAERR, "bad increment '%s': counters only go up", o->args[1]);
	char *labels = labels_json(o);
	w.labels = labels;
	sw_span_str(&c->sp, "sw.metric", name);
	double total = 0;
	/* --quiet: nothing to print, no need to know the total (the journal);
	 * else fold, then add in the database */
	int code = o->quiet ? sw_m_write(&w, &err) : sw_m_write_total(&w, &total, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	print(o, json_pack("{s:s,s:o,s:o}", "name", name, "labels", labels_obj(labels),
			   "value", num(total)));
	free(labels);
	return 0;
}

/* set and observe: NAME VALUE, one journal record. */
static int record_value(struct sw_cmd *c, enum sw_mkind kind)
{
	struct opts *o = c->opts;
	char name[SW_M_NAME_MAX + 8];
	struct sw_err err;
	struct sw_mwrite w;
	write_of(o, kind, &w, name);
	w.value = value_arg("value", o->args[1]);
	char *labels = labels_json(o);
	w.labels = labels;
	sw_span_str(&c->sp, "sw.metric", name);
	int code = sw_m_write(&w, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	print(o, json_pack("{s:s,s:o,s:o}", "name", name, "labels", labels_obj(labels),
			   "value", num(w.value)));
	free(labels);
	return 0;
}

static int verb_set(struct sw_cmd *c)
{
	return record_value(c, SW_M_GAUGE);
}

static int verb_observe(struct sw_cmd *c)
{
	return record_value(c, SW_M_HISTOGRAM);
}

/* ---- time ---- */

/* The label time puts on each observation: the command's exit status as
 * a shell gives it ("0", "1", "130" for SIGINT, "127" not found), so
 * that job_seconds_count{exit_code!="0"} counts the failures. */
#define EXIT_LABEL "exit_code"

/* What is wrong with the command line is refused before the command
 * runs, like any usage error; what depends on the database (a kind
 * conflict, a full disk) is only a warning after it. */
static void time_check(const struct opts *o, char name[SW_M_NAME_MAX + 8])
{
	metric_name(name, o->args[0], SW_M_HISTOGRAM);
	for (size_t i = 0; i < o->nlabels; i++)
		if (!strcmp(o->labels[i].key, EXIT_LABEL))
			sw_die(EX_DATAERR, "bad label '%s': time sets it to the command's exit status",
			       EXIT_LABEL);
	if (o->nlabels == SW_M_LABELS_MAX)
		sw_die(EX_DATAERR, "more than %d labels with time's %s", SW_M_LABELS_MAX - 1, EXIT_LABEL);
	free(labels_json(o));   /* duplicate keys, before anything runs */
}

/* The signals passed on to the command: those sent to this process with
 * kill (by a supervisor, a user, timeout(1)). */
static void forwarded_signals(sigset_t *set)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD };
	sigemptyset(set);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(set, sigs[i]);
}

/* The command, in this process group (it may read the terminal), with
 * the signal mask time was started with and the span's TRACEPARENT.
 * 0 or an errno value. */
static int spawn_timed(char **cmd, const sigset_t *mask, const char *traceparent, pid_t *pid)
{
	if (setenv("TRACEPARENT", traceparent, 1) < 0)
		return errno;
	posix_spawnattr_t at;
	int rc = posix_spawnattr_init(&at);
	if (rc)
		return rc;
	if (!(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK)) &&
	    !(rc = posix_spawnattr_setsigmask(&at, mask)))
		rc = posix_spawnp(pid, cmd[0], NULL, &at, cmd, environ);
	posix_spawnattr_destroy(&at);
	return rc;
}

/* Waits for the command, passing on what is sent to this process (set:
 * those signals and SIGCHLD, all blocked); its wait status.  A signal
 * from the terminal (^C, ^\) comes from the kernel to the whole
 * foreground group, the command included: passed on, it would get it
 * twice. */
static int wait_command(pid_t pid, const sigset_t *set)
{
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		if (w < 0 && errno != EINTR)
			sw_die(EX_OSERR, "waiting for the command: %s", strerror(errno));
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig > 0 && sig != SIGCHLD && si.si_code != SI_KERNEL)
			(void)kill(pid, sig);   /* ESRCH: it has just exited */
	}
}

/* One observation of a run, labelled with its exit status.  Any failure
 * is a warning: the command's status is time's answer. */
static void record_run(const struct opts *o, const char *name, int64_t ns, int status)
{
	double secs = (double)ns / 1e9;
	struct sw_label l[SW_M_LABELS_MAX];
	char code[16];
	struct sw_err err;
	snprintf(code, sizeof code, "%d", status);
	memcpy(l, o->labels, o->nlabels * sizeof *l);
	l[o->nlabels] = (struct sw_label){ EXIT_LABEL, code };
	char *labels = sw_m_labels_json(l, o->nlabels + 1, &err);
	struct sw_mwrite w = {
		.db = o->db, .sync = o->sync, .kind = SW_M_HISTOGRAM, .name = name, .labels = labels,
		.help = o->describe, .value = secs, .bounds = o->has_bounds ? o->bounds : NULL,
		.nbounds = o->nbounds,
	};
	int rc = labels ? sw_m_write(&w, &err) : EX_SOFTWARE;
	if (rc) {
		char took[SW_DUR_LEN];
		sw_fmt_duration(ns, took);   /* as every sw program prints one */
		sw_warn("%s; this run (%s, exit %d) is not recorded", err.msg, took, status);
	}
	free(labels);
}

/* time NAME -- COMMAND: a shell's status (128 + N when signal N killed
 * it, 127 not found, 126 not executable), whatever becomes of the
 * observation. */
static int verb_time(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	char name[SW_M_NAME_MAX + 8], tp[SW_TRACEPARENT_LEN];
	time_check(o, name);
	sw_span_str(&c->sp, "sw.metric", name);
	sw_span_child_env(&c->sp, tp);
	sigset_t set, old;
	forwarded_signals(&set);
	/* blocked from before the spawn to the end: a late signal must not
	 * kill time before the run is recorded and its status passed on */
	if (sigprocmask(SIG_BLOCK, &set, &old) < 0 || signal(SIGCHLD, SIG_DFL) == SIG_ERR)
		sw_die(EX_OSERR, "setting up signals: %s", strerror(errno));
	int64_t start = sw_mono_ns();
	pid_t pid;
	int status, e = spawn_timed(c->command, &old, tp, &pid);
	if (e) {
		sw_warn("cannot run %s: %s", c->command[0], strerror(e));
		status = e == ENOENT ? 127 : 126;
	} else {
		int st = wait_command(pid, &set);
		status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	record_run(o, name, sw_mono_ns() - start, status);
	sw_span_int(&c->sp, "process.exit.code", status);
	return status;
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

static char *span_labels(const char *span, const char *service, const char *status)
{
	struct sw_label l[3] = {{"service", service}, {"span", span}, {"status", status}};
	struct sw_err err;
	char *s = sw_m_labels_json(l, status ? 3 : 2, &err);
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
	uint64_t h = sw_xxh64(key, kl, 0) % AGG_HASH;
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
	db_check(m, sw_m_metric(m, SPAN_HIST, SW_M_HISTOGRAM, "Duration of spans ingested from "
			       "OTLP JSON lines, by span name and service.", want, nwant, strict, b, &nb));
	db_check(m, sw_m_metric(m, SPAN_COUNT, SW_M_COUNTER, "Spans ingested, by span name, service "
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
	db_check(m, sw_m_begin(m));
	ensure_metrics(in);
	for (size_t h = 0; h < AGG_HASH; h++) {
		for (struct agg *a = in->hash[h]; a; a = a->next) {
			if (!a->dirty)
				continue;
			db_check(m, sw_m_hist_add(m, SPAN_HIST, a->lab_hist, in->nb, a->counts, a->count,
						 a->sum, now, &a->series));
			for (int s = 0; s < 3; s++)
				if (a->st_count[s])
					db_check(m, sw_m_counter_add(m, SPAN_COUNT, a->lab_status[s],
								    (double)a->st_count[s], now, NULL));
		}
	}
	for (size_t i = 0; i < in->nobs; i++)
		db_check(m, sw_m_obs(m, in->obs[i].a->series, in->obs[i].t, in->obs[i].v));
	db_check(m, sw_m_commit(m));
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

static int verb_ingest(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_span *sp = &c->sp;
	struct ingest *in = calloc(1, sizeof *in);
	if (!in || !(in->obs = malloc(BATCH_SPANS * sizeof *in->obs)))
		sw_die(EX_SOFTWARE, "out of memory");
	in->o = o;
	open_db(&in->m, o);
	db_check(&in->m, sw_m_begin(&in->m));
	ensure_metrics(in);
	db_check(&in->m, sw_m_commit(&in->m));
	read_input(in);
	flush(in);
	long long pruned;
	int64_t now = sw_now_ns();
	db_check(&in->m, sw_m_begin(&in->m));
	db_check(&in->m, sw_m_prune(&in->m, now - in->m.retention_ns, false, &pruned, NULL));
	db_check(&in->m, sw_m_commit(&in->m));
	sw_m_close(&in->m);
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

static json_t *summary_json(const struct opts *o, const struct sw_msummary *s, int64_t since)
{
	json_t *j = json_pack("{s:s,s:s,s:I}", "name", o->args[0], "type", sw_m_kind_name(s->kind),
			      "series", (json_int_t)s->series);
	if (!j)
		sw_die(EX_SOFTWARE, "out of memory");
	if (s->kind != SW_M_HISTOGRAM) {
		json_object_set_new(j, "value", num(s->value));
	} else {
		double sum = 0;
		for (size_t i = 0; i < s->n; i++)
			sum += s->v[i];
		json_object_set_new(j, "count", json_integer((json_int_t)s->n));
		json_object_set_new(j, "sum", num(sum));
		static const struct { const char *k; double p; } pc[] = {
			{"p50", 50}, {"p90", 90}, {"p95", 95}, {"p99", 99}};
		json_object_set_new(j, "min", s->n ? num(s->v[0]) : json_null());
		json_object_set_new(j, "max", s->n ? num(s->v[s->n - 1]) : json_null());
		json_object_set_new(j, "mean", s->n ? num(sum / (double)s->n) : json_null());
		for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++)
			json_object_set_new(j, pc[i].k, s->n ? num(sw_m_percentile(s->v, s->n, pc[i].p)) :
					    json_null());
	}
	if (o->has_since)
		sw_json_set_time(j, "since", since);
	return j;
}

static int verb_summary(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	const char *why = sw_m_name_problem(o->args[0]);
	if (why)
		sw_die(EX_DATAERR, "bad metric name '%.80s': %s", o->args[0], why);
	sw_span_str(&c->sp, "sw.metric", o->args[0]);
	struct sw_msummary s;
	int64_t since = o->has_since ? sw_now_ns() - o->since_ns : INT64_MIN;
	int code = sw_m_summarize(o->db, o->sync, o->args[0], o->labels, o->nlabels, since, &s, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	json_t *j = summary_json(o, &s, since);
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
		json_t *j = json_pack("{s:s,s:s,s:O}", "name", s->name, "type", sw_m_kind_name(s->kind),
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
	sw_prom_family(&e->w, s->name, sw_m_kind_name(s->kind), s->help);
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
	struct sw_err e;
	if (sw_ws_path(out, dir, &e))
		return false;
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
		sw_die(EX_USAGE, "bad -o '%s': want a file name", o->out);
	if (slash == o->out) strcpy(dir, "/");
	else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - o->out), o->out);
	else strcpy(dir, ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		sw_die(errno == EACCES ? EX_NOPERM : EX_CANTCREAT, "cannot open directory %s: %s", dir,
		       strerror(errno));
	/* temp + rename: node_exporter never reads a half-written file */
	if (sw_replace(fd, base, buf, len, o->sync, true) < 0)
		sw_die(sw_ex_errno(errno), "cannot write %s: %s", o->out, strerror(errno));
	close(fd);
}

static int verb_export(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct exporter e = {.o = o, .json = o->json};
	struct sw_err err;
	sw_span_str(&c->sp, "sw.format", e.json ? "json" : "prom");
	char *buf = NULL;
	size_t len = 0;
	if (!(e.f = open_memstream(&buf, &len)))
		sw_die(EX_SOFTWARE, "out of memory");
	e.w.f = e.f;
	int code = sw_m_each_series(o->db, o->sync, export_series, &e, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	char wsdir[PATH_MAX];
	if (!o->no_ws && workspace_exists(o->dir, wsdir) && access(wsdir, R_OK | X_OK) < 0) {
		/* the metrics are still worth exporting without the gauges */
		sw_warn("workspace gauges left out: %s: %s", wsdir, strerror(errno));
	} else if (!o->no_ws && workspace_exists(o->dir, wsdir)) {
		sw_cmd_open_ws(c, false);
		sw_m_ws_gauges(&c->ws, sw_now_ns(), export_gauge, &e);
	}
	if (fclose(e.f) == EOF)
		sw_die(EX_SOFTWARE, "out of memory");
	write_out(o, buf, len);
	free(buf);
	return 0;
}


/* ---- prune ---- */

static int verb_prune(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_err err;
	long long nobs, nseries;
	int code = sw_m_prune_older(o->db, o->sync, o->older_ns, &nobs, &nseries, &err);
	if (code)
		sw_die(code, "%s", err.msg);
	sw_span_int(&c->sp, "sw.pruned.observations", nobs);
	print(o, json_pack("{s:I,s:I}", "observations", (json_int_t)nobs, "series",
			   (json_int_t)nseries));
	return 0;
}

/* ---- options and main ---- */

static const int o_write[] = { OPT_DB, 'l', OPT_DESCRIBE, 0 };
static const int o_observe[] = { OPT_DB, 'l', OPT_DESCRIBE, OPT_BUCKETS, 0 };
static const int o_ingest[] = { OPT_DB, OPT_TEE, OPT_BUCKETS, 0 };
static const int o_summary[] = { OPT_DB, 'l', OPT_SINCE, 0 };
static const int o_export[] = { OPT_DB, OPT_FORMAT, 'o', OPT_NO_WS, 0 };
static const int o_prune[] = { OPT_DB, OPT_OLDER, 0 };

/* None opens the workspace first: the database is host-local, and only
 * export reads the workspace, when there is one. */
static const struct sw_verb verbs[] = {
	{ "inc", verb_inc, "NAME [N]", 1, 2, o_write, 0 },
	{ "set", verb_set, "NAME VALUE", 2, 2, o_write, 0 },
	{ "observe", verb_observe, "NAME VALUE", 2, 2, o_observe, 0 },
	{ "ingest", verb_ingest, "", 0, 0, o_ingest, 0 },
	{ "summary", verb_summary, "a metric NAME", 1, 1, o_summary, 0 },
	{ "export", verb_export, "", 0, 0, o_export, 0 },
	{ "prune", verb_prune, "", 0, 0, o_prune, 0 },
	/* the first argument after NAME, or everything after "--", is the
	 * command */
	{ "time", verb_time, "a histogram NAME", 1, 1, o_observe, SW_CMD_COMMAND },
	{ 0 }
};

static int label_option(struct sw_cmd *c, char *arg)
{
	struct opts *o = c->opts;
	if (o->nlabels == SW_M_LABELS_MAX)
		return sw_cmd_err(c, EX_DATAERR, "more than %d labels", SW_M_LABELS_MAX);
	char shown[96];
	snprintf(shown, sizeof shown, "%.80s", arg);   /* before parsing cuts it at '=' */
	const char *why = sw_m_label_parse(arg, &o->labels[o->nlabels]);
	if (why)
		return sw_cmd_err(c, EX_DATAERR, "bad label '%s': %s", shown, why);
	o->nlabels++;
	return 0;
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	const char *why;
	switch (code) {
	case OPT_DB: o->db = arg; return 0;
	case 'l': return label_option(c, arg);
	case OPT_BUCKETS:
		if ((why = sw_m_bounds_parse(arg, o->bounds, &o->nbounds)))
			return sw_cmd_err(c, EX_DATAERR, "bad --buckets '%.80s': %s", arg, why);
		o->has_bounds = true;
		return 0;
	case OPT_DESCRIBE:
		if (!sw_utf8_valid(arg, strlen(arg)))
			return sw_cmd_err(c, EX_DATAERR, "bad --describe: not valid UTF-8");
		o->describe = arg;
		return 0;
	case OPT_TEE: o->tee = true; return 0;
	case OPT_SINCE:
		o->has_since = true;
		return sw_cmd_duration(c, "--since", arg, &o->since_ns);
	case OPT_FORMAT:
		if (strcmp(arg, "prom") && strcmp(arg, "json"))
			return sw_cmd_err(c, EX_USAGE, "bad --format '%.40s': use prom or json", arg);
		o->json = !strcmp(arg, "json");
		return 0;
	case 'o':
		if (!*(strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg))
			return sw_cmd_err(c, EX_USAGE, "bad -o '%.80s': want a file name", arg);
		o->out = arg;
		return 0;
	case OPT_NO_WS: o->no_ws = true; return 0;
	case OPT_OLDER: return sw_cmd_duration(c, "--older-than", arg, &o->older_ns);
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	o->quiet = c->co.quiet;
	o->dir = c->co.dir;
	o->args = c->args;
	o->nargs = c->nargs;
	/* SW_SYNC for the metrics database, which lives outside the
	 * workspace: sw-metrics needs none (and must not make one) */
	struct sw_settings st;
	struct sw_err e;
	if (sw_settings_read(&st, &e))
		return sw_cmd_err(c, e.code, "%s", e.msg);
	o->sync = st.sync;
	return 0;
}

static const struct sw_prog prog = {
	.name = "sw-metrics", .usage = usage, .longopts = longopts, .shortopts = "l:o:",
	.verbs = verbs, .option = option, .check = check,
};

int main(int argc, char **argv)
{
	struct opts o = { .older_ns = -1 };
	return sw_cmd_main(&prog, argc, argv, &o);
}
