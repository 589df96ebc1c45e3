#include "metrics_fold.h"
#include "metrics_db.h"
#include "clock.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "lock.h"
#include "metrics_journal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writers hold LOCK_SH for one write(2); a minute only bounds a wedge. */
#define LOCK_WAIT_NS (60 * INT64_C(1000000000))
#define PIECE_NAME_MAX 64

struct fold {
	struct sw_mdb *m;
	int dfd;                          /* <db>.fold */
	char **names;                     /* pieces, in folding order */
	size_t n, cap;
	bool obs;                         /* an observation was applied */
	char last[SW_M_NAME_MAX + 9];     /* the metric made sure of last */
	enum sw_mkind last_kind;
	double b[SW_M_BUCKETS_MAX];       /* its buckets */
	size_t nb;
	char first_bad[160];
};

static int oom(struct sw_mdb *m)
{
	sw_err_msg(&m->err, "out of memory");
	return EX_SOFTWARE;
}

static int ex_errno(struct sw_mdb *m, const char *what, const char *name)
{
	int e = errno;
	sw_err_msg(&m->err, "%s %s%s/%s: %s", what, m->path, SW_M_FOLD, name, strerror(e));
	return sw_ex_errno(e);
}

static int add_name(struct fold *f, const char *name)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 8;
		char **nn = realloc(f->names, nc * sizeof *nn);
		if (!nn)
			return oom(f->m);
		f->names = nn;
		f->cap = nc;
	}
	if (!(f->names[f->n] = strdup(name)))
		return oom(f->m);
	f->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The pieces in <db>.fold (hidden names are not pieces), oldest first:
 * their names start with the time of their rename in fixed-width hex. */
static int list_pieces(struct fold *f)
{
	int fd = dup(f->dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return ex_errno(f->m, "cannot read", "");
	}
	rewinddir(d);
	struct dirent *e;
	int code = 0;
	while (!code && (e = readdir(d)))
		if (!sw_hidden(e->d_name))
			code = add_name(f, e->d_name);
	closedir(d);
	if (f->n > 1)
		qsort(f->names, f->n, sizeof *f->names, cmp_str);
	return code;
}

static bool has_piece(const struct fold *f, const char *name)
{
	return f->n && bsearch(&name, f->names, f->n, sizeof *f->names, cmp_str);
}

/* Rows of fold_applied whose pieces are gone were unlinked after their
 * commit: they can never be seen again (piece names are not reused). */
static int forget_unlinked(struct fold *f)
{
	sqlite3 *db = f->m->db;
	sqlite3_stmt *s, *del;
	int rc = sqlite3_prepare_v2(db, "SELECT name FROM fold_applied", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sw_m_sqlerr(f->m, rc, "read fold_applied");
	rc = sqlite3_prepare_v2(db, "DELETE FROM fold_applied WHERE name=?1", -1, &del, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(s);
		return sw_m_sqlerr(f->m, rc, "prune fold_applied");
	}
	int code = 0;
	while (!code && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		if (!name || has_piece(f, name))
			continue;
		sqlite3_bind_text(del, 1, name, -1, SQLITE_TRANSIENT);
		if ((rc = sqlite3_step(del)) != SQLITE_DONE)
			code = sw_m_sqlerr(f->m, rc, "prune fold_applied");
		sqlite3_reset(del);
	}
	if (!code && rc != SQLITE_DONE)
		code = sw_m_sqlerr(f->m, rc, "read fold_applied");
	sqlite3_finalize(s);
	sqlite3_finalize(del);
	return code;
}

static int applied(struct fold *f, const char *name, long long ino, bool insert, bool *found)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(f->m->db, insert ?
		"INSERT OR REPLACE INTO fold_applied(name, ino) VALUES(?1, ?2)" :
		"SELECT 1 FROM fold_applied WHERE name=?1 AND ino=?2", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sw_m_sqlerr(f->m, rc, "fold_applied");
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, ino);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (found)
		*found = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sw_m_sqlerr(f->m, rc, "fold_applied");
}

static void bad(struct fold *f, const char *piece, const char *why)
{
	if (f->m->fold_bad++ == 0)
		snprintf(f->first_bad, sizeof f->first_bad, "%s in %.40s", why, piece);
}

/* The canonical label set of a record (malloc'd), or NULL with why. */
static char *record_labels(const struct sw_mrec *r, const char **why)
{
	json_error_t je;
	json_t *o = json_loadb(r->json, r->json_len, 0, &je);
	*why = "bad labels";
	if (!json_is_object(o) || json_object_size(o) > SW_M_LABELS_MAX) {
		json_decref(o);
		return NULL;
	}
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		struct sw_label l = {k, json_string_value(v)};
		if (!l.value || sw_m_label_problem(&l)) {
			json_decref(o);
			return NULL;
		}
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		*why = "out of memory";
	return s;
}

/* Applies one record.  A record that cannot be applied is counted and
 * skipped (0); other failures (the disk, the database) are returned. */
static int apply(struct fold *f, const char *piece, const struct sw_mrec *r)
{
	struct sw_mdb *m = f->m;
	char name[SW_M_NAME_MAX + 9];
	size_t nl = strcspn(r->name, " ");
	if (nl >= sizeof name) {
		bad(f, piece, "name too long");
		return 0;
	}
	memcpy(name, r->name, nl);
	name[nl] = 0;
	if (sw_m_name_problem(name)) {
		bad(f, piece, "bad name");
		return 0;
	}
	/* an H record's value names the kind: checked before it is one */
	bool known = r->type != 'H' || r->value == SW_M_COUNTER || r->value == SW_M_GAUGE ||
		     r->value == SW_M_HISTOGRAM;
	enum sw_mkind kind = r->type == 'C' ? SW_M_COUNTER : r->type == 'G' ? SW_M_GAUGE :
			     r->type == 'O' ? SW_M_HISTOGRAM : known ? (enum sw_mkind)(int)r->value : SW_M_COUNTER;
	if (!known || (kind != SW_M_COUNTER && kind != SW_M_GAUGE && kind != SW_M_HISTOGRAM)) {
		bad(f, piece, "bad kind");
		return 0;
	}
	int code = 0;
	if (r->type == 'H') {
		json_t *h = json_loadb(r->json, r->json_len, JSON_DECODE_ANY, NULL);
		if (!json_is_string(h)) {
			json_decref(h);
			bad(f, piece, "bad help text");
			return 0;
		}
		code = sw_m_metric(m, name, kind, json_string_value(h), NULL, 0, false, f->b, &f->nb);
		json_decref(h);
		f->last[0] = 0;
		if (code == EX_DATAERR) {
			bad(f, piece, m->err.msg);
			code = 0;
		}
		return code;
	}
	const char *why;
	char *labels = record_labels(r, &why);
	if (!labels) {
		if (!strcmp(why, "out of memory"))
			return oom(m);
		bad(f, piece, why);
		return 0;
	}
	if (strcmp(f->last, name) || f->last_kind != kind) {
		f->last[0] = 0;
		code = sw_m_metric(m, name, kind, NULL, NULL, 0, false, f->b, &f->nb);
		if (!code) {
			strcpy(f->last, name);
			f->last_kind = kind;
		}
	}
	if (!code && kind == SW_M_COUNTER) {
		if (r->value < 0)
			code = EX_DATAERR, sw_err_msg(&m->err, "negative increment");
		else
			code = sw_m_counter_add(m, name, labels, r->value, r->t_ns, NULL);
	} else if (!code && kind == SW_M_GAUGE) {
		code = sw_m_gauge_set(m, name, labels, r->value, false, r->t_ns, NULL);
	} else if (!code) {
		long long counts[SW_M_BUCKETS_MAX + 1] = {0}, id;
		counts[sw_m_bucket_of(f->b, f->nb, r->value)] = 1;
		code = sw_m_hist_add(m, name, labels, f->nb, counts, 1, r->value, r->t_ns, &id);
		if (!code)
			code = sw_m_obs(m, id, r->t_ns, r->value);
		f->obs = true;
	}
	free(labels);
	if (code == EX_DATAERR) {
		bad(f, piece, m->err.msg);
		f->last[0] = 0;
		code = 0;
	}
	return code;
}

static int fold_piece(struct fold *f, const char *piece)
{
	struct sw_mdb *m = f->m;
	int fd = openat(f->dfd, piece, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	/* gone since the listing: a folder that committed before our write
	 * lock removes its pieces after its commit, so this one is applied */
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return ex_errno(m, "cannot open", piece);
	/* waits for the writers that locked it before the rename */
	if (sw_lock_fd(fd, LOCK_EX, LOCK_WAIT_NS) < 0) {
		int code = errno == EWOULDBLOCK ? EX_TEMPFAIL : sw_ex_errno(errno);
		sw_err_msg(&m->err, "cannot lock %s%s/%s: %s", m->path, SW_M_FOLD, piece,
			 errno == EWOULDBLOCK ? "a writer held it for a minute" : strerror(errno));
		close(fd);
		return code;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int code = ex_errno(m, "cannot stat", piece);
		close(fd);
		return code;
	}
	if (!S_ISREG(st.st_mode)) {
		sw_err_msg(&m->err, "%s%s/%s: not a regular file", m->path, SW_M_FOLD, piece);
		close(fd);
		return EX_DATAERR;
	}
	bool done;
	int code = applied(f, piece, (long long)st.st_ino, false, &done);
	if (code || done) {   /* done: its folder died between commit and unlink */
		close(fd);
		return code;
	}
	char *buf = NULL;
	size_t len = 0;
	/* the whole piece, however long: what the writers appended is folded */
	if (sw_read_fd(fd, &buf, &len, SIZE_MAX / 2) < 0)
		code = errno == ENOMEM ? oom(m) : ex_errno(m, "cannot read", piece);
	close(fd);   /* writers that find it now see it renamed and move on */
	if (code)
		return code;
	size_t start = 0;
	while (!code && start < len) {
		char *nl = memchr(buf + start, '\n', len - start);
		if (!nl) {   /* a write cut short: never completed, never acknowledged */
			bad(f, piece, "torn record at the end");
			break;
		}
		struct sw_mrec r;
		const char *why = sw_m_record_parse(buf + start, (size_t)(nl - (buf + start)), &r);
		if (why)
			bad(f, piece, why);
		else
			code = apply(f, piece, &r);
		if (!code && !why)
			m->folded++;
		start = (size_t)(nl - buf) + 1;
	}
	free(buf);
	return code ? code : applied(f, piece, (long long)st.st_ino, true, NULL);
}

/* Whether a fold has anything to do: a non-empty journal, or a piece. */
static bool fold_due(const char *jpath, int dfd)
{
	struct stat st;
	if (stat(jpath, &st) == 0 ? st.st_size > 0 : errno != ENOENT)
		return true;
	if (dfd < 0)
		return false;
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return true;   /* let the fold report it */
	}
	struct dirent *e;
	bool any = false;
	while (!any && (e = readdir(d)))
		any = !sw_hidden(e->d_name);
	closedir(d);
	return any;
}

static void fold_free(struct fold *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	if (f->dfd >= 0)
		close(f->dfd);
}

int sw_m_fold(struct sw_mdb *m)
{
	char jpath[PATH_MAX], fpath[PATH_MAX];
	m->folded = m->fold_bad = 0;
	if (!sw_m_path_of(jpath, m->path, SW_M_JOURNAL) || !sw_m_path_of(fpath, m->path, SW_M_FOLD)) {
		sw_err_msg(&m->err, "%s: path too long", m->path);
		return EX_USAGE;
	}
	struct fold f = {.m = m};
	f.dfd = open(fpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f.dfd < 0 && errno != ENOENT)
		return ex_errno(m, "cannot open", "");
	if (!fold_due(jpath, f.dfd)) {
		fold_free(&f);
		return 0;
	}
	int code = sw_m_begin(m);
	if (code) {
		fold_free(&f);
		return code;
	}
	if (f.dfd < 0) {
		if (mkdir(fpath, 0775) < 0 && errno != EEXIST)
			code = ex_errno(m, "cannot create", "");
		else if ((f.dfd = open(fpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			code = ex_errno(m, "cannot open", "");
	}
	if (!code) {
		int rc = sqlite3_exec(m->db, "CREATE TABLE IF NOT EXISTS fold_applied(name TEXT "
				      "PRIMARY KEY, ino INTEGER NOT NULL)", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			code = sw_m_sqlerr(m, rc, "create fold_applied");
	}
	/* listed under the write lock: no other folder adds or removes one now */
	if (!code)
		code = list_pieces(&f);
	if (!code)
		code = forget_unlinked(&f);
	if (!code) {
		char piece[PIECE_NAME_MAX], rnd[9];
		sw_rand_hex(rnd, 4);
		snprintf(piece, sizeof piece, "%016" PRIx64 ".%ld.%s", (uint64_t)sw_now_ns(),
			 (long)getpid(), rnd);
		if (renameat(AT_FDCWD, jpath, f.dfd, piece) == 0)
			code = add_name(&f, piece);   /* the newest: last */
		else if (errno != ENOENT)
			code = ex_errno(m, "cannot rename the journal to", piece);
	}
	for (size_t i = 0; !code && i < f.n; i++)
		code = fold_piece(&f, f.names[i]);
	long long pruned;
	/* retention, so that no cron job is needed for it */
	if (!code && f.obs)
		code = sw_m_prune(m, sw_now_ns() - m->retention_ns, false, &pruned, NULL);
	if (!code)
		code = sw_m_commit(m);
	else
		sw_m_rollback(m);
	/* after the commit: a piece left by a death here is in fold_applied */
	for (size_t i = 0; !code && i < f.n; i++)
		if (unlinkat(f.dfd, f.names[i], 0) < 0 && errno != ENOENT)
			sw_warn("cannot remove %s%s/%s: %s", m->path, SW_M_FOLD, f.names[i],
				strerror(errno));
	if (!code && m->fold_bad)
		sw_warn("%s: skipped %lld journal record%s that could not be applied, the first: %s",
			m->path, m->fold_bad, m->fold_bad == 1 ? "" : "s", f.first_bad);
	fold_free(&f);
	return code;
}
