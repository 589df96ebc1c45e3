/* metrics_db.h — the sw-metrics store: one SQLite database in WAL mode on
 * host-local disk (WAL needs shared memory that network filesystems do not
 * give across hosts).  The database layer of the metrics library: it uses
 * the model and the kinds registry (metrics_journal.h), and is used by the
 * fold and the facade (metrics.h), which also folds the journal in when it
 * opens a database.
 *
 * Path: --db, else $SW_METRICS_DB, else
 * ${XDG_STATE_HOME:-$HOME/.local/state}/sw-metrics/<hostname>.db.  A
 * database on a network filesystem is refused (69) unless --db names it,
 * which only warns.
 *
 * Tables: metric (name, kind, help, bucket bounds), series (one row per
 * name + label set: counter total, gauge value, or histogram sum, count and
 * per-bucket counts), obs (raw histogram observations, kept
 * SW_METRICS_RETENTION, default 7d, for exact percentiles), fold_applied
 * (the journal pieces folded, metrics_fold.h).
 *
 * Every write is one BEGIN IMMEDIATE transaction, retried on SQLITE_BUSY
 * with jittered back-off for up to a minute, so concurrent writers never
 * see "database is locked"; only then 75.  Functions return 0 or a
 * sysexits code with a one-line reason in m->err. */
#ifndef SW_METRICS_DB_H
#define SW_METRICS_DB_H
#include "atomic.h"
#include "metrics_model.h"
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

struct sw_mdb {
	struct sqlite3 *db;
	char path[PATH_MAX];
	bool explicit_db;              /* --db named it */
	bool warned;                   /* the network-filesystem warning is out */
	enum sw_sync sync;
	int64_t retention_ns;
	struct sqlite3_stmt *st[16];   /* prepared once per process */
	long long folded, fold_bad;    /* journal records the last fold applied, skipped */
	struct sw_err err;
};

/* Resolves the database path (see above).  0 or a sysexits code. */
int sw_m_db_path(const char *opt_db, char out[PATH_MAX], struct sw_err *err);
/* What a journal writer needs without SQLite: the path, SW_METRICS_RETENTION
 * checked, and the network-filesystem rule applied to the database's
 * directory when it exists (*missing when it does not).  0 or a code. */
int sw_m_locate(struct sw_mdb *m, const char *opt_db, bool *missing);
/* Opens a located database (creating it, its directory and its kinds
 * registry when create).  The journal is not folded in: that is the
 * facade's open (metrics.h), the one every reader and writer uses.  0 or
 * a code. */
int sw_m_connect(struct sw_mdb *m, enum sw_sync sync, bool create);
void sw_m_close(struct sw_mdb *m);

/* A SQLite result code as a sysexits code, with the reason in m->err. */
int sw_m_sqlerr(struct sw_mdb *m, int rc, const char *what);

/* Write transactions: BEGIN IMMEDIATE (so a writer waits at the start,
 * where waiting is safe, never half-way), waiting and retrying with
 * jittered back-off up to a minute before giving up with 75.  After a
 * failure inside, call rollback. */
int sw_m_begin(struct sw_mdb *m);
int sw_m_commit(struct sw_mdb *m);
void sw_m_rollback(struct sw_mdb *m);

/* Inside a transaction: claims name for kind in the kinds registry
 * (metrics_journal.h), which has the last word, then makes sure metric
 * name exists with kind (and, for
 * histograms, bounds: with strict, given ones must match what the metric
 * has; otherwise want only seeds a new metric, and NULL means the
 * defaults).  help, when not NULL, replaces the
 * HELP text.  The bounds in force come back in b and nb (b holds
 * SW_M_BUCKETS_MAX). */
int sw_m_metric(struct sw_mdb *m, const char *name, enum sw_mkind kind, const char *help,
		  const double *want, size_t nwant, bool strict, double *b, size_t *nb);
/* Inside a transaction: counter += delta; gauge = value (or += when add).
 * *out gets the new value. */
int sw_m_counter_add(struct sw_mdb *m, const char *name, const char *labels, double delta,
		       int64_t now, double *out);
int sw_m_gauge_set(struct sw_mdb *m, const char *name, const char *labels, double v, bool add,
		     int64_t now, double *out);
/* Inside a transaction: adds count observations summing to sum with
 * per-bucket (not cumulative) counts[nb + 1] to a histogram series; *id
 * gets the series id (for sw_m_obs). */
int sw_m_hist_add(struct sw_mdb *m, const char *name, const char *labels, size_t nb,
		    const long long *counts, long long count, double sum, int64_t now, long long *id);
/* Inside a transaction: keeps one raw observation. */
int sw_m_obs(struct sw_mdb *m, long long series, int64_t t_ns, double v);
/* Inside a transaction: removes observations older than before_ns, and
 * with series also series not updated since then (and metrics left
 * without series).  Counts come back. */
int sw_m_prune(struct sw_mdb *m, int64_t before_ns, bool series, long long *obs_n, long long *series_n);

/* Series of name whose labels include every one of want (n may be 0):
 * kind, and for histograms the observations since since_ns, sorted. */
struct sw_msummary {
	enum sw_mkind kind;
	long long series;
	double value;            /* counters and gauges: sum over series */
	double *v;               /* histograms: sorted observations */
	size_t n;
};
int sw_m_summary(struct sw_mdb *m, const char *name, const struct sw_label *want, size_t n,
		   int64_t since_ns, struct sw_msummary *out);
/* Walks every series in name and label order for export. */
struct sw_mseries {
	const char *name, *help, *labels;   /* labels: canonical JSON */
	enum sw_mkind kind;
	double value;                       /* counter, gauge, histogram sum */
	long long count;                    /* histogram */
	const double *bounds;
	size_t nb;
	const long long *counts;            /* per bucket, nb + 1 */
	int64_t updated_ns;
};
int sw_m_walk(struct sw_mdb *m, int (*fn)(const struct sw_mseries *s, void *arg), void *arg);
#endif
