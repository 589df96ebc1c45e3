/* metrics.h — the sw-metrics library, and its facade: what each verb of
 * sw-metrics asks of it in one call.
 *
 * The library is layered, each layer calling only those before it:
 *   metrics_model.h    kinds, names, labels, buckets, percentiles
 *   metrics_journal.h  the journal records and the kinds registry
 *   metrics_db.h       the SQLite database
 *   metrics_fold.h     folding the journal into the database
 *   metrics.h          this facade: open (with the fold), the journal
 *                      write protocol, and the verbs' reads and writes
 * Beside them, used by sw-metrics alone: metrics_otlp.h (span lines),
 * metrics_prom.h (the exposition format), metrics_ws.h (workspace
 * gauges).  Every public function starts with sw_m_.
 *
 * One-shot writes (inc --quiet, set, observe) do not open the database:
 * they append to a journal beside it, and opening the database folds that
 * in first.  Settings come from the caller (sync: SW_SYNC, read once by
 * the program); the library reads only its own, SW_METRICS_DB and
 * SW_METRICS_RETENTION.  Functions return 0 or a sysexits code with a
 * one-line reason, and never exit. */
#ifndef SW_METRICS_H
#define SW_METRICS_H
#include "metrics_db.h"
#include "metrics_fold.h"
#include "metrics_journal.h"
#include "metrics_model.h"

/* Locates and opens the database (creating it when create), then folds
 * the journal in; a reader without write access gets what was folded
 * before (with a warning).  0 or a code with m->err. */
int sw_m_open(struct sw_mdb *m, const char *opt_db, enum sw_sync sync, bool create);
/* Whether there is a database, or a journal waiting for one: verbs that
 * only read create nothing (completing a name at the shell makes no
 * database).  0 with *exists, or a code with err. */
int sw_m_exists(const char *opt_db, bool *exists, struct sw_err *err);

/* One write. */
struct sw_mwrite {
	const char *db;             /* --db, or NULL */
	enum sw_sync sync;
	enum sw_mkind kind;         /* counter add, gauge set, histogram observation */
	const char *name;           /* as stored (sw_m_metric_name) */
	const char *labels;         /* canonical (sw_m_labels_json) */
	const char *help;           /* new HELP text, or NULL */
	double value;
	const double *bounds;       /* histograms: --buckets, or NULL */
	size_t nbounds;
};
/* The journal write protocol: the kind claimed in the kinds registry
 * (the first write to a database opens it, to make database and
 * registry), one record appended to the journal, and the journal folded
 * when the append found it over SW_M_FOLD_BYTES (a failed fold is only a
 * warning: the write is in).  0, or a code with err. */
int sw_m_write(const struct sw_mwrite *w, struct sw_err *err);
/* A counter add made in the database, for its new total (*total). */
int sw_m_write_total(const struct sw_mwrite *w, double *total, struct sw_err *err);

/* The summary of a metric (counters also found without their _total): 1
 * when there is none, or no database yet.  out->v is malloc'd. */
int sw_m_summarize(const char *opt_db, enum sw_sync sync, const char *name, const struct sw_label *want,
		   size_t n, int64_t since_ns, struct sw_msummary *out, struct sw_err *err);
/* Every series to fn (nothing when there is no database). */
int sw_m_each_series(const char *opt_db, enum sw_sync sync,
		     int (*fn)(const struct sw_mseries *s, void *arg), void *arg, struct sw_err *err);
/* Drops observations older than older_ns (the retention when negative)
 * and series not updated since; the counts come back. */
int sw_m_prune_older(const char *opt_db, enum sw_sync sync, int64_t older_ns, long long *nobs,
		     long long *nseries, struct sw_err *err);
#endif
