#include "metrics_journal.h"
#include "err.h"
#include "lock.h"
#include "num.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A folder holds LOCK_EX only while it reads the journal; a minute is
 * far beyond that and only bounds a wait on a wedged host. */
#define LOCK_WAIT_NS (60 * INT64_C(1000000000))
/* Each retry follows a folder's rename; this many in a row is a bug. */
#define APPEND_TRIES 1000

bool sw_m_path_of(char out[PATH_MAX], const char *db, const char *suffix)
{
	return snprintf(out, PATH_MAX, "%s%s", db, suffix) < PATH_MAX;
}

/* ---- records ---- */

static int put(char **buf, size_t *len, char type, int64_t t_ns, double v, const char *name,
	       const char *json)
{
	char num[32];
	sw_m_fmt_double(v, num);
	size_t room = strlen(name) + strlen(json) + 80;
	char *nb = realloc(*buf, *len + room);
	if (!nb)
		return -1;
	*buf = nb;
	int n = snprintf(nb + *len, room, "%c%c %" PRId64 " %s %s %s\n", SW_M_RS, type, t_ns, num,
			 name, json);
	if (n < 0 || (size_t)n >= room) {
		errno = ENOMEM;
		return -1;
	}
	*len += (size_t)n;
	return 0;
}

int sw_m_record(char **buf, size_t *len, char type, int64_t t_ns, double v, const char *name,
		 const char *labels, const char *help, enum sw_mkind kind)
{
	if (help) {
		json_t *s = json_string(help);
		char *js = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		json_decref(s);
		if (!js) {
			errno = ENOMEM;
			return -1;
		}
		int r = put(buf, len, 'H', t_ns, (double)kind, name, js);
		free(js);
		if (r < 0)
			return -1;
	}
	return put(buf, len, type, t_ns, v, name, labels);
}

/* Next space-terminated field of [*p, end); NULL when there is none. */
static const char *field(const char **p, const char *end, size_t *n)
{
	const char *s = *p, *sp = memchr(s, ' ', (size_t)(end - s));
	if (!sp || sp == s)
		return NULL;
	*n = (size_t)(sp - s);
	*p = sp + 1;
	return s;
}

const char *sw_m_record_parse(const char *line, size_t len, struct sw_mrec *r)
{
	const char *rs = memrchr(line, SW_M_RS, len);
	if (!rs)
		return "no record start";
	const char *p = rs + 1, *end = line + len;
	if (end - p < 2 || p[1] != ' ' || !strchr("CGOH", p[0]))
		return "bad record type";
	r->type = p[0];
	p += 2;
	size_t n;
	char num[64], *e;
	const char *f = field(&p, end, &n);
	if (!f || n >= sizeof num)
		return "bad time";
	memcpy(num, f, n);
	num[n] = 0;
	int64_t t;
	if (sw_parse_i64(num, INT64_MIN, INT64_MAX, &t) < 0)
		return "bad time";
	r->t_ns = t;
	if (!(f = field(&p, end, &n)) || n >= sizeof num)
		return "bad value";
	memcpy(num, f, n);
	num[n] = 0;
	/* as sw_m_fmt_double wrote it ("1e-05" too): not the user's form */
	errno = 0;
	r->value = strtod(num, &e);
	if (*e || errno || !isfinite(r->value))
		return "bad value";
	if (!(f = field(&p, end, &n)) || n > SW_M_NAME_MAX + 8)
		return "bad name";
	r->name = f;   /* the caller copies it out: it ends at a space */
	r->json = p;
	r->json_len = (size_t)(end - p);
	if (!r->json_len)
		return "no labels";
	return NULL;
}

/* ---- appending ---- */

static int fail(int e, struct sw_err *err, const char *what, const char *path)
{
	sw_err_msg(err, "%s %s: %s", what, path, strerror(e));
	return sw_ex_errno(e);
}

/* fsyncs the directory holding path (best effort: the data is synced). */
static void sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		sw_fsync_dir(fd);
		close(fd);
	}
}

int sw_m_append(const char *db, const void *rec, size_t len, enum sw_sync sync, bool *fold_due,
		 struct sw_err *err)
{
	char path[PATH_MAX];
	*fold_due = false;
	if (!sw_m_path_of(path, db, SW_M_JOURNAL)) {
		sw_err_msg(err, "%s: path too long", db);
		return EX_USAGE;
	}
	for (int tries = 0; tries < APPEND_TRIES; tries++) {
		/* O_RDWR, not O_WRONLY: NFSv4 emulates flock with fcntl locks,
		 * and a shared one wants a descriptor open for reading */
		int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0664);
		if (fd < 0)
			return fail(errno, err, "cannot open journal", path);
		if (sw_lock_fd(fd, LOCK_SH, LOCK_WAIT_NS) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK) {
				sw_err_msg(err, "%s: a fold held the journal for a minute, try again "
					 "later", path);
				return EX_TEMPFAIL;
			}
			return fail(e, err, "cannot lock journal", path);
		}
		struct stat fst, pst;
		if (fstat(fd, &fst) < 0) {
			int e = errno;
			close(fd);
			return fail(e, err, "cannot stat journal", path);
		}
		if (stat(path, &pst) < 0 || pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev) {
			/* a folder renamed it away before we locked it: what we
			 * wrote now might land after it was read */
			close(fd);
			continue;
		}
		ssize_t w = write(fd, rec, len);
		int e = errno;
		if (w >= 0 && (size_t)w != len)
			e = ENOSPC;   /* a short write to a regular file: the disk is full */
		if (w >= 0 && (size_t)w == len && sync == SW_SYNC_FULL && fdatasync(fd) < 0)
			e = errno, w = -1;
		close(fd);
		if (w < 0 || (size_t)w != len)
			/* a torn record ends without its newline and is skipped
			 * by the folder (see the header) */
			return fail(e, err, "cannot write journal", path);
		if (sync == SW_SYNC_FULL && fst.st_size == 0)
			sync_parent(path);   /* most likely a new journal: its name too */
		*fold_due = fst.st_size >= SW_M_FOLD_BYTES;
		return 0;
	}
	sw_err_msg(err, "%s: renamed away %d times in a row", path, APPEND_TRIES);
	return EX_SOFTWARE;
}

/* ---- the kinds registry ---- */

bool sw_m_kind_target(enum sw_mkind kind, const double *b, size_t nb, char out[SW_M_KIND_TARGET_MAX])
{
	size_t off = (size_t)snprintf(out, SW_M_KIND_TARGET_MAX, "%s", sw_m_kind_name(kind));
	if (kind != SW_M_HISTOGRAM)
		return true;
	for (size_t i = 0; i < nb; i++) {
		char num[32];
		sw_m_fmt_double(b[i], num);
		int n = snprintf(out + off, SW_M_KIND_TARGET_MAX - off, "%c%s", i ? ',' : ':', num);
		if (n < 0 || (size_t)n >= SW_M_KIND_TARGET_MAX - off)
			return false;
		off += (size_t)n;
	}
	return true;
}

bool sw_m_kind_parse(const char *t, enum sw_mkind *kind, double *b, size_t *nb)
{
	if (!strcmp(t, "counter"))
		*kind = SW_M_COUNTER;
	else if (!strcmp(t, "gauge"))
		*kind = SW_M_GAUGE;
	else if (!strncmp(t, "histogram:", 10))
		*kind = SW_M_HISTOGRAM;
	else
		return false;
	*nb = 0;
	return *kind != SW_M_HISTOGRAM || !sw_m_bounds_read(t + 10, b, nb);
}

/* Checks what the registry says (have) against what is asked. */
static int kind_check(const char *name, const char *have, enum sw_mkind kind, const double *want,
		      size_t nwant, bool strict, double *b, size_t *nb, struct sw_err *err)
{
	enum sw_mkind hk;
	double hb[SW_M_BUCKETS_MAX];
	size_t hn;
	if (!sw_m_kind_parse(have, &hk, hb, &hn)) {
		sw_err_msg(err, "%s: bad kinds registry entry '%.80s'", name, have);
		return EX_DATAERR;
	}
	if (hk != kind) {
		sw_err_msg(err, "%s is a %s, not a %s", name, sw_m_kind_name(hk), sw_m_kind_name(kind));
		return EX_DATAERR;
	}
	if (kind == SW_M_HISTOGRAM && strict && want && !sw_m_same_bounds(want, nwant, hb, hn)) {
		sw_err_msg(err, "%s already has buckets %s", name, have + 10);
		return EX_DATAERR;
	}
	if (b) {
		memcpy(b, hb, hn * sizeof *b);
		*nb = hn;
	}
	return 0;
}

int sw_m_kind_claim(const char *db, const char *name, enum sw_mkind kind, const double *want,
		   size_t nwant, bool strict, enum sw_sync sync, double *b, size_t *nb, struct sw_err *err)
{
	char path[PATH_MAX], dir[PATH_MAX], have[SW_M_KIND_TARGET_MAX], mine[SW_M_KIND_TARGET_MAX];
	if (!sw_m_path_of(dir, db, SW_M_KINDS) || snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    (int)sizeof path) {
		sw_err_msg(err, "%s: path too long", db);
		return EX_USAGE;
	}
	if (kind == SW_M_HISTOGRAM && !want) {
		want = sw_m_default_bounds;
		nwant = sw_m_default_nbounds;
	}
	if (!sw_m_kind_target(kind, want, nwant, mine)) {
		sw_err_msg(err, "%s: bucket list too long", name);
		return EX_DATAERR;
	}
	/* readlink first: after its first use a name costs one system call */
	for (int tries = 0; tries < 3; tries++) {
		ssize_t n = readlink(path, have, sizeof have - 1);
		if (n >= 0) {
			have[n] = 0;
			return kind_check(name, have, kind, want, nwant, strict, b, nb, err);
		}
		if (errno == EINVAL) {
			sw_err_msg(err, "%s: not a symbolic link", path);
			return EX_DATAERR;
		}
		if (errno != ENOENT)
			return fail(errno, err, "cannot read", path);
		if (symlink(mine, path) == 0) {
			if (sync == SW_SYNC_FULL) {
				int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (fd >= 0) {
					sw_fsync_dir(fd);
					close(fd);
				}
			}
			return kind_check(name, mine, kind, want, nwant, strict, b, nb, err);
		}
		if (errno == ENOENT)
			return SW_M_NOREG;
		if (errno != EEXIST)   /* EEXIST: another writer was first; read its */
			return fail(errno, err, "cannot register", path);
	}
	sw_err_msg(err, "%s: kinds registry entry keeps vanishing", path);
	return EX_SOFTWARE;
}
