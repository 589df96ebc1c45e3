#include "metrics.h"
#include "clock.h"
#include "err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The facade's error: what the database said, with the code. */
static int copy_err(struct sw_err *err, const struct sw_err *m, int code)
{
	*err = *m;
	err->code = code;
	return code;
}

/* Folds the journal into an open database. */
static int fold_in(struct sw_mdb *m)
{
	int code = sw_m_fold(m);
	if (code == EX_NOPERM) {
		/* a reader without write access still reads what is folded */
		sw_warn("%s; pending writes not folded", m->err.msg);
		code = 0;
	}
	if (code)
		sw_m_close(m);
	return code;
}

static int connect_fold(struct sw_mdb *m, enum sw_sync sync, bool create)
{
	int code = sw_m_connect(m, sync, create);
	return code ? code : fold_in(m);
}

int sw_m_open(struct sw_mdb *m, const char *opt_db, enum sw_sync sync, bool create)
{
	bool missing;
	int code = sw_m_locate(m, opt_db, &missing);
	return code ? code : connect_fold(m, sync, create);
}

int sw_m_exists(const char *opt_db, bool *exists, struct sw_err *err)
{
	char path[PATH_MAX], j[PATH_MAX];
	int code = sw_m_db_path(opt_db, path, err);
	if (code)
		return code;
	*exists = access(path, F_OK) == 0 ||
		  (sw_m_path_of(j, path, SW_M_JOURNAL) && access(j, F_OK) == 0);
	return 0;
}

/* ---- writes ---- */

static char record_type(enum sw_mkind kind)
{
	return kind == SW_M_COUNTER ? 'C' : kind == SW_M_GAUGE ? 'G' : 'O';
}

/* The kind claimed in the registry; a database that has none yet is
 * opened once, which makes it. */
static int claim_kind(struct sw_mdb *m, const struct sw_mwrite *w, bool missing)
{
	const double *want = w->kind == SW_M_HISTOGRAM ? w->bounds : NULL;
	for (int tries = 0;; tries++) {
		if (!missing) {
			int code = sw_m_kind_claim(m->path, w->name, w->kind, want, w->nbounds, want != NULL,
						   w->sync, NULL, NULL, &m->err);
			if (code != SW_M_NOREG)
				return code;
		}
		if (tries) {
			sw_err_msg(&m->err, "%s%s: no kinds registry after opening the database",
				 m->path, SW_M_KINDS);
			return EX_SOFTWARE;
		}
		int code = connect_fold(m, w->sync, true);
		if (code)
			return code;
		sw_m_close(m);
		missing = false;
	}
}

static int append(struct sw_mdb *m, const struct sw_mwrite *w)
{
	char *rec = NULL;
	size_t len = 0;
	bool fold;
	if (sw_m_record(&rec, &len, record_type(w->kind), sw_now_ns(), w->value, w->name, w->labels,
			w->help, w->kind) < 0) {
		free(rec);
		sw_err_msg(&m->err, "out of memory");
		return EX_SOFTWARE;
	}
	int code = sw_m_append(m->path, rec, len, w->sync, &fold, &m->err);
	free(rec);
	if (code || !fold)
		return code;
	/* written already: a fold that fails is for the next reader */
	if (connect_fold(m, w->sync, true))
		sw_warn("%s", m->err.msg);
	else
		sw_m_close(m);
	return 0;
}

int sw_m_write(const struct sw_mwrite *w, struct sw_err *err)
{
	struct sw_mdb m;
	bool missing;
	int code = sw_m_locate(&m, w->db, &missing);
	if (!code)
		code = claim_kind(&m, w, missing);
	if (!code)
		code = append(&m, w);
	return code ? copy_err(err, &m.err, code) : 0;
}

/* Runs fn inside one write transaction of an open database. */
static int in_transaction(struct sw_mdb *m, int (*fn)(struct sw_mdb *m, void *arg), void *arg)
{
	int code = sw_m_begin(m);
	if (!code && (code = fn(m, arg)))
		sw_m_rollback(m);
	if (!code)
		code = sw_m_commit(m);
	return code;
}

struct total {
	const struct sw_mwrite *w;
	double value;
};

static int add_total(struct sw_mdb *m, void *arg)
{
	struct total *t = arg;
	int code = sw_m_metric(m, t->w->name, SW_M_COUNTER, t->w->help, NULL, 0, false, NULL, NULL);
	return code ? code : sw_m_counter_add(m, t->w->name, t->w->labels, t->w->value, sw_now_ns(),
					      &t->value);
}

int sw_m_write_total(const struct sw_mwrite *w, double *total, struct sw_err *err)
{
	struct sw_mdb m;
	struct total t = { .w = w };
	int code = sw_m_open(&m, w->db, w->sync, true);
	if (code)
		return copy_err(err, &m.err, code);
	code = in_transaction(&m, add_total, &t);
	if (code)
		copy_err(err, &m.err, code);
	sw_m_close(&m);
	*total = t.value;
	return code;
}

/* ---- reads ---- */

/* Opens a database that exists: 0, or 1 when there is none (*m closed). */
static int open_existing(struct sw_mdb *m, const char *opt_db, enum sw_sync sync, struct sw_err *err)
{
	bool exists;
	int code = sw_m_exists(opt_db, &exists, err);
	if (code || !exists)
		return code ? code : SW_EX_FALSE;
	code = sw_m_open(m, opt_db, sync, true);
	return code ? copy_err(err, &m->err, code) : 0;
}

/* Why there is no metric name, in the words the user typed (not the
 * name tried last, which may have a _total they never wrote), with what
 * they may have meant. */
static void no_metric(struct sw_mdb *m, const char *name, struct sw_err *err)
{
	char hist[SW_M_NAME_MAX + 8];
	struct sw_msummary s;
	/* no observation is read: only whether the histogram exists */
	if (sw_m_series_of(name, hist) && sw_m_summary(m, hist, NULL, 0, INT64_MAX, &s) == 0) {
		free(s.v);
		if (s.kind == SW_M_HISTOGRAM) {
			sw_err_msg(err, "no metric '%s': it is a series of the histogram '%s' "
				 "(summary %s)", name, hist, hist);
			return;
		}
	}
	sw_err_msg(err, "no metric '%s'%s", name, sw_m_workspace_gauge(name) ?
		 " (export reads the workspace gauges at export time; none is stored)" : "");
}

int sw_m_summarize(const char *opt_db, enum sw_sync sync, const char *name, const struct sw_label *want,
		   size_t n, int64_t since_ns, struct sw_msummary *out, struct sw_err *err)
{
	struct sw_mdb m;
	int code = open_existing(&m, opt_db, sync, err);
	if (code == SW_EX_FALSE)
		sw_err_msg(err, "no metric '%s' (no database yet)", name);
	if (code)
		return code;
	code = sw_m_summary(&m, name, want, n, since_ns, out);
	size_t len = strlen(name);
	if (code == SW_EX_FALSE && !(len >= 6 && !strcmp(name + len - 6, "_total"))) {
		/* counters are stored with their _total */
		char total[SW_M_NAME_MAX + 8];
		snprintf(total, sizeof total, "%s_total", name);
		code = sw_m_summary(&m, total, want, n, since_ns, out);
	}
	if (code == SW_EX_FALSE)
		no_metric(&m, name, err);
	else if (code)
		copy_err(err, &m.err, code);
	sw_m_close(&m);
	return code;
}

int sw_m_each_series(const char *opt_db, enum sw_sync sync,
		     int (*fn)(const struct sw_mseries *s, void *arg), void *arg, struct sw_err *err)
{
	struct sw_mdb m;
	int code = open_existing(&m, opt_db, sync, err);
	if (code)
		return code == SW_EX_FALSE ? 0 : code;
	if ((code = sw_m_walk(&m, fn, arg)))
		copy_err(err, &m.err, code);
	sw_m_close(&m);
	return code;
}

struct prune {
	int64_t older_ns;
	long long nobs, nseries;
};

static int prune(struct sw_mdb *m, void *arg)
{
	struct prune *p = arg;
	int64_t older = p->older_ns >= 0 ? p->older_ns : m->retention_ns;
	return sw_m_prune(m, sw_now_ns() - older, true, &p->nobs, &p->nseries);
}

int sw_m_prune_older(const char *opt_db, enum sw_sync sync, int64_t older_ns, long long *nobs,
		     long long *nseries, struct sw_err *err)
{
	struct sw_mdb m;
	struct prune p = { .older_ns = older_ns };
	int code = sw_m_open(&m, opt_db, sync, true);
	if (code)
		return copy_err(err, &m.err, code);
	if ((code = in_transaction(&m, prune, &p)))
		copy_err(err, &m.err, code);
	sw_m_close(&m);
	*nobs = p.nobs;
	*nseries = p.nseries;
	return code;
}
