#include "metrics_db.h"
#include "metrics_journal.h"
#include "clock.h"
#include "err.h"
#include "id.h"
#include "ws.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prepared statements, cached in m->st by these indexes. */
enum {
	ST_METRIC_GET, ST_METRIC_ADD, ST_METRIC_HELP, ST_COUNTER, ST_GAUGE, ST_HIST_GET,
	ST_HIST_UPD, ST_HIST_ADD, ST_OBS, ST_N
};
static const char *const st_sql[ST_N] = {
	[ST_METRIC_GET] = "SELECT kind, bounds FROM metric WHERE name=?1",
	[ST_METRIC_ADD] = "INSERT INTO metric(name, kind, help, bounds) VALUES(?1, ?2, ?3, ?4)",
	[ST_METRIC_HELP] = "UPDATE metric SET help=?2 WHERE name=?1",
	[ST_COUNTER] = "INSERT INTO series(name, labels, value, created_ns, updated_ns) "
		"VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(name, labels) DO UPDATE SET "
		"value=value+excluded.value, updated_ns=excluded.updated_ns RETURNING value",
	[ST_GAUGE] = "INSERT INTO series(name, labels, value, created_ns, updated_ns) "
		"VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(name, labels) DO UPDATE SET "
		"value=CASE WHEN ?5 THEN value+excluded.value ELSE excluded.value END, "
		"updated_ns=excluded.updated_ns RETURNING value",
	[ST_HIST_GET] = "SELECT id, buckets FROM series WHERE name=?1 AND labels=?2",
	[ST_HIST_UPD] = "UPDATE series SET value=value+?2, count=count+?3, buckets=?4, "
		"updated_ns=?5 WHERE id=?1",
	[ST_HIST_ADD] = "INSERT INTO series(name, labels, value, count, buckets, created_ns, "
		"updated_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6)",
	[ST_OBS] = "INSERT INTO obs(series, t_ns, value) VALUES(?1, ?2, ?3)",
};

static const char schema_sql[] =
	"PRAGMA journal_mode=WAL;"
	"BEGIN;"
	"CREATE TABLE metric(name TEXT PRIMARY KEY, kind INTEGER NOT NULL, help TEXT, "
	"  bounds TEXT) WITHOUT ROWID;"
	"CREATE TABLE series(id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL, "
	"  value REAL NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0, buckets TEXT, "
	"  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, UNIQUE(name, labels));"
	"CREATE TABLE obs(series INTEGER NOT NULL, t_ns INTEGER NOT NULL, value REAL NOT NULL);"
	"CREATE INDEX obs_series_t ON obs(series, t_ns);"
	"CREATE TABLE fold_applied(name TEXT PRIMARY KEY, ino INTEGER NOT NULL);"
	"PRAGMA user_version=2;"
	"COMMIT;";

/* ---- errors ---- */

static int ex_sqlite(struct sw_mdb *m, int rc, const char *what)
{
	const char *msg = m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED:
		sw_err_msg(&m->err, "%s: %s: database stayed busy, try again later",
			 m->path, what);
		return EX_TEMPFAIL;
	case SQLITE_NOTADB: case SQLITE_CORRUPT:
		sw_err_msg(&m->err, "%s: not a usable sw-metrics database: %s", m->path, msg);
		return EX_DATAERR;
	case SQLITE_ERROR:
		/* "no such table": some other SQLite file */
		if (strstr(msg, "no such")) {
			sw_err_msg(&m->err, "%s: not a sw-metrics database: %s", m->path, msg);
			return EX_DATAERR;
		}
		break;
	default:
		break;
	}
	sw_err_msg(&m->err, "%s: %s: %s", m->path, what, msg);
	switch (rc & 0xff) {
	case SQLITE_FULL: case SQLITE_IOERR: return EX_IOERR;
	case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH: return EX_NOPERM;
	case SQLITE_CANTOPEN: return EX_CANTCREAT;
	case SQLITE_NOMEM: return EX_SOFTWARE;
	default: return EX_SOFTWARE;
	}
}

int sw_m_sqlerr(struct sw_mdb *m, int rc, const char *what)
{
	return ex_sqlite(m, rc, what);
}

static int ex_errno(struct sw_mdb *m, const char *what, const char *path)
{
	int e = errno;
	sw_err_msg(&m->err, "%s %s: %s", what, path, strerror(e));
	return sw_ex_errno(e);
}

static char *bounds_text(const double *b, size_t n)
{
	char *s = malloc(n * 32 + 1);
	if (!s)
		return NULL;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		char num[32];
		sw_m_fmt_double(b[i], num);
		off += (size_t)sprintf(s + off, "%s%s", i ? "," : "", num);
	}
	s[off] = 0;
	return s;
}

/* "3,0,1" -> counts[n]; false when the text does not hold exactly n. */
static bool counts_parse(const char *s, long long *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *end;
		if (!s)
			return false;
		c[i] = strtoll(s, &end, 10);
		if (end == s || (*end && *end != ',') || (i + 1 < n) != (*end == ','))
			return false;
		s = end + 1;
	}
	return true;
}

static char *counts_text(const long long *c, size_t n)
{
	char *s = malloc(n * 21 + 1);
	if (!s)
		return NULL;
	size_t off = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)sprintf(s + off, "%s%lld", i ? "," : "", c[i]);
	s[off] = 0;
	return s;
}

/* ---- opening ---- */

/* Whether the nearest existing ancestor of dir is on a network
 * filesystem: checked before creating directories there. */
static bool ancestor_netfs(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", dir);
	for (;;) {
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			bool net = sw_is_netfs(fd);
			close(fd);
			return net;
		}
		char *slash = strrchr(p, '/');
		if (!slash)
			strcpy(p, ".");
		else if (slash == p)
			strcpy(p, "/");
		else
			*slash = 0;
		if (!slash || slash == p) {
			fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			bool net = fd >= 0 && sw_is_netfs(fd);
			if (fd >= 0)
				close(fd);
			return net;
		}
	}
}

int sw_m_db_path(const char *opt_db, char out[PATH_MAX], struct sw_err *err)
{
	const char *env = getenv("SW_METRICS_DB");
	if (opt_db && *opt_db) {
		snprintf(out, PATH_MAX, "%s", opt_db);
		return 0;
	}
	if (env && *env) {
		snprintf(out, PATH_MAX, "%s", env);
		return 0;
	}
	char host[256];
	if (gethostname(host, sizeof host) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof host - 1] = 0;
	for (char *p = host; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20)
			*p = '_';
	char dir[PATH_MAX];
	int code = sw_state_path(dir, "sw-metrics", "--db or SW_METRICS_DB", err);
	if (code)
		return code;
	/* a home on NFS is common; the default must stay host-local: then a
	 * private directory of ours in /var/tmp (which others can write, so
	 * one they made for us is refused) */
	if (ancestor_netfs(dir)) {
		struct stat st;
		snprintf(dir, sizeof dir, "/var/tmp/sw-metrics-%ld", (long)getuid());
		if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || lstat(dir, &st) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
			return sw_err_set(err, EX_UNAVAILABLE, "the home is on a network filesystem and "
					  "%s is not a private directory of this user: set --db or "
					  "SW_METRICS_DB", dir);
		}
	}
	snprintf(out, PATH_MAX, "%s/%s.db", dir, host);
	return 0;
}

/* Waits out a busy database with growing, jittered sleeps (so many
 * writers do not wake in step) for about 10 s per statement. */
static int busy_wait(void *arg, int n)
{
	(void)arg;
	if (n >= 5000)
		return 0;
	int64_t cap = n < 8 ? (INT64_C(20000) << n) : 2000000;   /* 20 µs … 2 ms */
	if (cap > 2000000)
		cap = 2000000;
	uint64_t r = (uint64_t)sw_now_ns() * 6364136223846793005u + (uint64_t)getpid();
	sw_sleep_ns(cap / 2 + (int64_t)((r >> 33) % (uint64_t)(cap / 2 + 1)));
	return 1;
}

/* Builds a new database under a temporary name and links it into place,
 * so no process ever opens a half-made one; losing the race is fine. */
static int create_db(struct sw_mdb *m, int dirfd, const char *dir, const char *base)
{
	char tmp[SW_TMPNAME_LEN], rnd[17], tpath[PATH_MAX + 80], fpath[PATH_MAX + 8];
	sw_rand_hex(rnd, 8);
	snprintf(tmp, sizeof tmp, SW_TMP_PREFIX "%ld.%s", (long)getpid(), rnd);
	snprintf(tpath, sizeof tpath, "%s/%s", dir, tmp);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(tpath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sw_err_msg(&m->err, "cannot create %s: %s", m->path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		unlinkat(dirfd, tmp, 0);
		return (rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR ? EX_IOERR :
		       (rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_PERM ? EX_NOPERM :
		       EX_CANTCREAT;
	}
	sqlite3_close(db);   /* checkpoints: everything is in the main file now */
	int r = linkat(dirfd, tmp, dirfd, base, 0);
	int e = errno;
	unlinkat(dirfd, tmp, 0);
	if (r < 0 && e != EEXIST) {
		errno = e;
		snprintf(fpath, sizeof fpath, "%s", m->path);
		return ex_errno(m, "cannot create", fpath);
	}
	return 0;
}

/* mkdir -p of a host-local path of the user's own choosing (symlinks on
 * the way are the user's and are followed), each directory it makes with
 * mode. */
static int mkdir_path(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
		errno = ENAMETOOLONG;
		return -1;
	}
	size_t n = strlen(p);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		p[i] = 0;
		int rc = mkdir(p, mode);
		p[i] = i < n ? '/' : 0;
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int refuse_netfs(struct sw_mdb *m)
{
	sw_err_msg(&m->err, "%s is on a network filesystem, where a WAL database "
		 "breaks; set SW_METRICS_DB to a local path (or --db to insist)", m->path);
	return EX_UNAVAILABLE;
}

/* Opens the directory that holds the database (into *fd), creating it
 * when create, and applies the network-filesystem rule. */
static int open_dir(struct sw_mdb *m, bool explicit_db, bool create, char *dir, const char **base,
		    int *fdp, bool *missing)
{
	char *slash = strrchr(m->path, '/');
	if (slash == m->path) {
		strcpy(dir, "/");
		*base = m->path + 1;
	} else if (slash) {
		memcpy(dir, m->path, (size_t)(slash - m->path));
		dir[slash - m->path] = 0;
		*base = slash + 1;
	} else {
		strcpy(dir, ".");
		*base = m->path;
	}
	if (!**base) {
		sw_err_msg(&m->err, "bad database path '%s'", m->path);
		return EX_USAGE;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && missing) {
		*missing = true;
		*fdp = -1;
		return 0;
	}
	if (fd < 0 && errno == ENOENT && create) {
		if (!explicit_db && ancestor_netfs(dir))
			return refuse_netfs(m);
		/* the default directory is private, whatever the umask (the
		 * XDG spec asks 0700 of the directories it makes); one the user
		 * named gets what the umask gives */
		if (mkdir_path(dir, explicit_db ? 0777 : 0700) < 0)
			return ex_errno(m, "cannot create directory", dir);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0) {
		int code = ex_errno(m, "database directory", dir);
		return code == EX_NOPERM ? code : EX_UNAVAILABLE;
	}
	if (sw_is_netfs(fd)) {
		if (!explicit_db) {
			close(fd);
			return refuse_netfs(m);
		}
		if (!m->warned)
			sw_warn("%s is on a network filesystem: use it from one host only", m->path);
		m->warned = true;
	}
	*fdp = fd;
	return 0;
}

/* After every commit: once the WAL holds WAL_FRAMES_MAX pages, copy them
 * into the database and truncate the WAL (skipped quietly when a reader
 * is in the way; a later commit does it). */
#define WAL_FRAMES_MAX 32
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)arg;
	if (frames < WAL_FRAMES_MAX)
		return SQLITE_OK;
	/* no waiting: with other connections busy the WAL restarts from its
	 * beginning on its own, and the next commit tries again */
	sqlite3_busy_handler(db, NULL, NULL);
	sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_handler(db, busy_wait, NULL);
	return SQLITE_OK;
}

static int configure(struct sw_mdb *m, enum sw_sync sync)
{
	sqlite3_busy_handler(m->db, busy_wait, NULL);
	/* Every sw-metrics process is a database's first and last
	 * connection, and SQLite's default is expensive for exactly that:
	 * the last close checkpoints (two fsyncs under synchronous=NORMAL)
	 * and deletes the WAL and its index, which the next process creates
	 * again.  Instead the WAL stays, and a commit that leaves it over 32
	 * pages checkpoints and truncates it: a first connection rebuilds
	 * its index from at most that many pages, and the fsyncs of a
	 * checkpoint are paid once per ~10 one-shot writes. */
	sqlite3_db_config(m->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_wal_hook(m->db, wal_hook, NULL);
	const char *pragma = sync == SW_SYNC_FULL ? "PRAGMA synchronous=FULL" :
			     sync == SW_SYNC_OFF ? "PRAGMA synchronous=OFF" :
			     "PRAGMA synchronous=NORMAL";
	int rc = sqlite3_exec(m->db, pragma, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : ex_sqlite(m, rc, "configure");
}

int sw_m_locate(struct sw_mdb *m, const char *opt_db, bool *missing)
{
	memset(m, 0, sizeof *m);
	*missing = false;
	m->retention_ns = SW_M_RETENTION_DEFAULT_NS;
	m->explicit_db = opt_db && *opt_db;
	const char *ret = getenv("SW_METRICS_RETENTION");
	if (ret && *ret && sw_parse_duration(ret, &m->retention_ns) < 0) {
		sw_err_msg(&m->err, "bad SW_METRICS_RETENTION '%.40s': want a duration "
			 "such as 30, 30s, 5m, 2h, 7d", ret);
		return EX_USAGE;
	}
	int code = sw_m_db_path(opt_db, m->path, &m->err);
	if (code)
		return code;
	char dir[PATH_MAX];
	const char *base;
	int dirfd = -1;
	code = open_dir(m, m->explicit_db, false, dir, &base, &dirfd, missing);
	if (dirfd >= 0)
		close(dirfd);
	return code;
}

/* Removes a directory made by make_kinds and what it holds. */
static void remove_tmp_dir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(fd, e->d_name, 0);
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* The kinds registry (metrics_journal.h) of a database that has none yet:
 * a new one, or one made before the registry existed.  It is filled from
 * the metric table under a temporary name and renamed into place, so no
 * writer registers a kind that contradicts the database; when another
 * process was first, its registry stays. */
static int make_kinds(struct sw_mdb *m, int dirfd, const char *base)
{
	char name[NAME_MAX + 1], tmp[SW_TMPNAME_LEN], rnd[17];
	if (snprintf(name, sizeof name, "%s%s", base, SW_M_KINDS) >= (int)sizeof name) {
		sw_err_msg(&m->err, "%s: name too long", m->path);
		return EX_USAGE;
	}
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return ex_errno(m, "kinds registry of", m->path);
	sw_rand_hex(rnd, 8);
	snprintf(tmp, sizeof tmp, SW_TMP_PREFIX "%ld.%s", (long)getpid(), rnd);
	if (mkdirat(dirfd, tmp, 0775) < 0)
		return ex_errno(m, "cannot create kinds registry of", m->path);
	int fd = openat(dirfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int code = ex_errno(m, "cannot create kinds registry of", m->path);
		remove_tmp_dir(dirfd, tmp);
		return code;
	}
	sqlite3_stmt *s;
	int code = 0, rc = sqlite3_prepare_v2(m->db, "SELECT name, kind, bounds FROM metric", -1, &s,
					      NULL);
	if (rc != SQLITE_OK)
		code = ex_sqlite(m, rc, "read metrics");
	while (!code && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *mname = (const char *)sqlite3_column_text(s, 0);
		const char *bt = (const char *)sqlite3_column_text(s, 2);
		enum sw_mkind k = (enum sw_mkind)sqlite3_column_int(s, 1);
		double b[SW_M_BUCKETS_MAX];
		size_t nb = 0;
		char target[SW_M_KIND_TARGET_MAX];
		if (!mname || sw_m_name_problem(mname) ||
		    (k != SW_M_COUNTER && k != SW_M_GAUGE && k != SW_M_HISTOGRAM) ||
		    (k == SW_M_HISTOGRAM && (!bt || sw_m_bounds_read(bt, b, &nb))) ||
		    !sw_m_kind_target(k, b, nb, target)) {
			sw_err_msg(&m->err, "%s: bad metric row '%.80s'", m->path,
				 mname ? mname : "");
			code = EX_DATAERR;
		} else if (symlinkat(target, fd, mname) < 0) {
			code = ex_errno(m, "cannot create kinds registry of", m->path);
		}
	}
	if (!code && rc != SQLITE_DONE)
		code = ex_sqlite(m, rc, "read metrics");
	sqlite3_finalize(s);
	close(fd);
	if (!code && renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
		if (errno == EINVAL)   /* no RENAME_NOREPLACE here: over an empty one at most */
			code = renameat(dirfd, tmp, dirfd, name) < 0 && errno != ENOTEMPTY &&
			       errno != EEXIST ? ex_errno(m, "cannot create kinds registry of", m->path) : 0;
		else if (errno != EEXIST)
			code = ex_errno(m, "cannot create kinds registry of", m->path);
	}
	remove_tmp_dir(dirfd, tmp);   /* when it is still there */
	if (!code && m->sync == SW_SYNC_FULL)
		sw_fsync_dir(dirfd);
	return code;
}

int sw_m_connect(struct sw_mdb *m, enum sw_sync sync, bool create)
{
	m->sync = sync;
	/* SQLite's page cache starts with a bulk allocation of 20 pages whose
	 * every page it touches: ~40 page faults, a third of a one-shot inc.
	 * Pages allocated one by one cost nothing measurable.  (Refused,
	 * harmlessly, when SQLite is already initialized.) */
	sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
	char dir[PATH_MAX];
	const char *base;
	int dirfd = -1;
	int code = open_dir(m, m->explicit_db, create, dir, &base, &dirfd, NULL);
	if (code)
		return code;
	struct stat st;
	if (fstatat(dirfd, base, &st, 0) < 0) {
		if (errno != ENOENT || !create)
			code = ex_errno(m, "database", m->path);
		else
			code = create_db(m, dirfd, dir, base);
	} else if (!S_ISREG(st.st_mode)) {
		sw_err_msg(&m->err, "%s: not a regular file", m->path);
		code = EX_DATAERR;
	}
	if (code) {
		close(dirfd);
		return code;
	}
	int rc = sqlite3_open_v2(m->path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
				 SQLITE_OPEN_EXRESCODE, NULL);
	if (rc != SQLITE_OK)
		code = ex_sqlite(m, rc, "open");
	if (!code)
		code = configure(m, sync);
	if (!code)
		code = make_kinds(m, dirfd, base);
	close(dirfd);
	if (code)
		sw_m_close(m);
	return code;
}

void sw_m_close(struct sw_mdb *m)
{
	for (size_t i = 0; i < sizeof m->st / sizeof m->st[0]; i++) {
		sqlite3_finalize(m->st[i]);
		m->st[i] = NULL;
	}
	if (m->db)
		sqlite3_close(m->db);
	m->db = NULL;
}

/* ---- statements and transactions ---- */

static sqlite3_stmt *stmt(struct sw_mdb *m, int which, int *code)
{
	sqlite3_stmt *s = m->st[which];
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	int rc = sqlite3_prepare_v3(m->db, st_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		*code = ex_sqlite(m, rc, "prepare");
		return NULL;
	}
	m->st[which] = s;
	return s;
}

static int exec(struct sw_mdb *m, const char *sql, const char *what)
{
	int rc = sqlite3_exec(m->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : ex_sqlite(m, rc, what);
}

int sw_m_begin(struct sw_mdb *m)
{
	int64_t deadline = sw_now_ns() + 60 * SW_NS_PER_SEC;
	for (int attempt = 0;; attempt++) {
		int rc = sqlite3_exec(m->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return 0;
		if ((rc & 0xff) != SQLITE_BUSY || sw_now_ns() > deadline)
			return ex_sqlite(m, rc, "begin");
		busy_wait(NULL, attempt < 8 ? attempt : 8);
	}
}

int sw_m_commit(struct sw_mdb *m)
{
	int code = exec(m, "COMMIT", "commit");
	if (code)
		sw_m_rollback(m);
	return code;
}

void sw_m_rollback(struct sw_mdb *m)
{
	if (!sqlite3_get_autocommit(m->db))
		sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Steps a statement expecting no row (SQLITE_DONE): 0 or a code. */
static int step_done(struct sw_mdb *m, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int code = rc == SQLITE_DONE ? 0 : ex_sqlite(m, rc, what);
	sqlite3_reset(s);
	return code;
}

/* ---- writes ---- */

int sw_m_metric(struct sw_mdb *m, const char *name, enum sw_mkind kind, const char *help,
		  const double *want, size_t nwant, bool strict, double *b, size_t *nb)
{
	double rb[SW_M_BUCKETS_MAX];
	size_t rnb = 0;
	/* the registry decides, as it does for the journal's writers */
	int code = sw_m_kind_claim(m->path, name, kind, want, nwant, strict, m->sync, rb, &rnb, &m->err);
	if (code == SW_M_NOREG) {
		sw_err_msg(&m->err, "%s%s: kinds registry vanished", m->path, SW_M_KINDS);
		return EX_SOFTWARE;
	}
	if (code)
		return code;
	if (kind == SW_M_HISTOGRAM) {
		memcpy(b, rb, rnb * sizeof *b);
		*nb = rnb;
	}
	sqlite3_stmt *s = stmt(m, ST_METRIC_GET, &code);
	if (!s)
		return code;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int k = sqlite3_column_int(s, 0);
		const char *bt = (const char *)sqlite3_column_text(s, 1);
		double have[SW_M_BUCKETS_MAX];
		size_t nhave = 0;
		if (k != (int)kind) {
			sw_err_msg(&m->err, "%s is a %s in the database but a %s in its kinds "
				 "registry", name, sw_m_kind_name((enum sw_mkind)k), sw_m_kind_name(kind));
			code = EX_DATAERR;
		} else if (kind == SW_M_HISTOGRAM && (!bt || sw_m_bounds_read(bt, have, &nhave) ||
						      !sw_m_same_bounds(have, nhave, rb, rnb))) {
			sw_err_msg(&m->err, "%s: the database's buckets differ from its kinds "
				 "registry's", name);
			code = EX_DATAERR;
		}
		sqlite3_reset(s);   /* frees bt */
		if (code || !help)
			return code;
		if (!(s = stmt(m, ST_METRIC_HELP, &code)))
			return code;
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, help, -1, SQLITE_STATIC);
		return step_done(m, s, "set help");
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return ex_sqlite(m, rc, "read metric");
	char *bt = NULL;
	if (kind == SW_M_HISTOGRAM && !(bt = bounds_text(rb, rnb))) {
		sw_err_msg(&m->err, "out of memory");
		return EX_SOFTWARE;
	}
	if (!(s = stmt(m, ST_METRIC_ADD, &code))) {
		free(bt);
		return code;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)kind);
	if (help)
		sqlite3_bind_text(s, 3, help, -1, SQLITE_STATIC);
	if (bt)
		sqlite3_bind_text(s, 4, bt, -1, SQLITE_STATIC);
	code = step_done(m, s, "add metric");
	free(bt);
	return code;
}

/* Steps an upsert ... RETURNING value. */
static int step_value(struct sw_mdb *m, sqlite3_stmt *s, double *out)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		int code = ex_sqlite(m, rc, "update");
		sqlite3_reset(s);
		return code;
	}
	if (out)
		*out = sqlite3_column_double(s, 0);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : ex_sqlite(m, rc, "update");
}

/* One counter or gauge upsert (add: the gauge is added to, not set). */
static int upsert(struct sw_mdb *m, int which, const char *name, const char *labels, double v,
		  bool add, int64_t now, double *out)
{
	int code = 0;
	sqlite3_stmt *s = stmt(m, which, &code);
	if (!s)
		return code;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, labels, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, v);
	sqlite3_bind_int64(s, 4, now);
	if (which == ST_GAUGE)
		sqlite3_bind_int(s, 5, add);
	return step_value(m, s, out);
}

int sw_m_counter_add(struct sw_mdb *m, const char *name, const char *labels, double delta,
		     int64_t now, double *out)
{
	return upsert(m, ST_COUNTER, name, labels, delta, true, now, out);
}

int sw_m_gauge_set(struct sw_mdb *m, const char *name, const char *labels, double v, bool add,
		   int64_t now, double *out)
{
	return upsert(m, ST_GAUGE, name, labels, v, add, now, out);
}

int sw_m_hist_add(struct sw_mdb *m, const char *name, const char *labels, size_t nb,
		    const long long *counts, long long count, double sum, int64_t now, long long *id)
{
	int code = 0;
	long long c[SW_M_BUCKETS_MAX + 1];
	sqlite3_stmt *s = stmt(m, ST_HIST_GET, &code);
	if (!s)
		return code;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, labels, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	bool found = rc == SQLITE_ROW;
	if (found) {
		*id = sqlite3_column_int64(s, 0);
		if (!counts_parse((const char *)sqlite3_column_text(s, 1), c, nb + 1)) {
			sqlite3_reset(s);
			sw_err_msg(&m->err, "%s: stored bucket counts do not match its "
				 "buckets", name);
			return EX_DATAERR;
		}
		for (size_t i = 0; i <= nb; i++)
			c[i] += counts[i];
	} else if (rc == SQLITE_DONE) {
		memcpy(c, counts, (nb + 1) * sizeof *c);
	} else {
		code = ex_sqlite(m, rc, "read series");
	}
	sqlite3_reset(s);
	if (code)
		return code;
	char *ct = counts_text(c, nb + 1);
	if (!ct) {
		sw_err_msg(&m->err, "out of memory");
		return EX_SOFTWARE;
	}
	if (!(s = stmt(m, found ? ST_HIST_UPD : ST_HIST_ADD, &code))) {
		free(ct);
		return code;
	}
	if (found) {
		sqlite3_bind_int64(s, 1, *id);
		sqlite3_bind_double(s, 2, sum);
		sqlite3_bind_int64(s, 3, count);
		sqlite3_bind_text(s, 4, ct, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, now);
	} else {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, labels, -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 3, sum);
		sqlite3_bind_int64(s, 4, count);
		sqlite3_bind_text(s, 5, ct, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 6, now);
	}
	code = step_done(m, s, "update series");
	free(ct);
	if (!code && !found)
		*id = sqlite3_last_insert_rowid(m->db);
	return code;
}

int sw_m_obs(struct sw_mdb *m, long long series, int64_t t_ns, double v)
{
	int code = 0;
	sqlite3_stmt *s = stmt(m, ST_OBS, &code);
	if (!s)
		return code;
	sqlite3_bind_int64(s, 1, series);
	sqlite3_bind_int64(s, 2, t_ns);
	sqlite3_bind_double(s, 3, v);
	return step_done(m, s, "keep observation");
}

static int exec_count(struct sw_mdb *m, const char *sql, int64_t before, long long *n)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(m->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return ex_sqlite(m, rc, "prune");
	if (sqlite3_bind_parameter_count(s) > 0)
		sqlite3_bind_int64(s, 1, before);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return ex_sqlite(m, rc, "prune");
	if (n)
		*n += sqlite3_changes(m->db);
	return 0;
}

int sw_m_prune(struct sw_mdb *m, int64_t before_ns, bool series, long long *obs_n, long long *series_n)
{
	int code;
	*obs_n = 0;
	if (series_n)
		*series_n = 0;
	/* per series, so the (series, t_ns) index does the work */
	code = exec_count(m, "DELETE FROM obs WHERE series IN (SELECT id FROM series) AND t_ns < ?1",
			  before_ns, obs_n);
	if (code || !series)
		return code;
	if ((code = exec_count(m, "DELETE FROM obs WHERE series IN "
			       "(SELECT id FROM series WHERE updated_ns < ?1)", before_ns, obs_n)))
		return code;
	if ((code = exec_count(m, "DELETE FROM series WHERE updated_ns < ?1", before_ns, series_n)))
		return code;
	return exec_count(m, "DELETE FROM metric WHERE name NOT IN (SELECT name FROM series)",
			  before_ns, NULL);
}

/* ---- reads ---- */

static bool labels_match(const char *labels, const struct sw_label *want, size_t n)
{
	if (n == 0)
		return true;
	json_t *o = json_loads(labels, 0, NULL);
	bool ok = o != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		const char *v = json_string_value(json_object_get(o, want[i].key));
		ok = v && !strcmp(v, want[i].value);
	}
	json_decref(o);
	return ok;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int push(struct sw_mdb *m, struct sw_msummary *o, size_t *cap, double v)
{
	if (o->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		double *nv = realloc(o->v, nc * sizeof *nv);
		if (!nv) {
			sw_err_msg(&m->err, "out of memory");
			return EX_SOFTWARE;
		}
		o->v = nv;
		*cap = nc;
	}
	o->v[o->n++] = v;
	return 0;
}

static int collect_obs(struct sw_mdb *m, long long id, int64_t since, struct sw_msummary *o,
		       size_t *cap)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(m->db, "SELECT value FROM obs WHERE series=?1 AND t_ns>=?2",
				    -1, &s, NULL);
	if (rc != SQLITE_OK)
		return ex_sqlite(m, rc, "read observations");
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, since);
	int code = 0;
	while (!code && (rc = sqlite3_step(s)) == SQLITE_ROW)
		code = push(m, o, cap, sqlite3_column_double(s, 0));
	if (!code && rc != SQLITE_DONE)
		code = ex_sqlite(m, rc, "read observations");
	sqlite3_finalize(s);
	return code;
}

int sw_m_summary(struct sw_mdb *m, const char *name, const struct sw_label *want, size_t n,
		   int64_t since_ns, struct sw_msummary *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s;
	int code = exec(m, "BEGIN", "begin");
	if (code)
		return code;
	int rc = sqlite3_prepare_v2(m->db, "SELECT m.kind, s.id, s.labels, s.value FROM metric m "
				    "LEFT JOIN series s ON s.name = m.name WHERE m.name=?1", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		code = ex_sqlite(m, rc, "read series");
		sw_m_rollback(m);
		return code;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	size_t cap = 0;
	bool any = false;
	while (!code && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		any = true;
		out->kind = (enum sw_mkind)sqlite3_column_int(s, 0);
		const char *labels = (const char *)sqlite3_column_text(s, 2);
		if (!labels || !labels_match(labels, want, n))
			continue;
		out->series++;
		out->value += sqlite3_column_double(s, 3);
		if (out->kind == SW_M_HISTOGRAM)
			code = collect_obs(m, sqlite3_column_int64(s, 1), since_ns, out, &cap);
	}
	if (!code && rc != SQLITE_DONE && rc != SQLITE_ROW)
		code = ex_sqlite(m, rc, "read series");
	sqlite3_finalize(s);
	sw_m_rollback(m);
	if (!code && !any) {
		sw_err_msg(&m->err, "no metric %s", name);
		code = SW_EX_FALSE;
	}
	if (code) {
		free(out->v);
		out->v = NULL;
		return code;
	}
	if (out->n)
		qsort(out->v, out->n, sizeof *out->v, cmp_double);
	return 0;
}

int sw_m_walk(struct sw_mdb *m, int (*fn)(const struct sw_mseries *s, void *arg), void *arg)
{
	sqlite3_stmt *s;
	int code = exec(m, "BEGIN", "begin");
	if (code)
		return code;
	int rc = sqlite3_prepare_v2(m->db, "SELECT s.name, m.kind, m.help, m.bounds, s.labels, "
				    "s.value, s.count, s.buckets, s.updated_ns FROM series s JOIN "
				    "metric m ON m.name = s.name ORDER BY s.name, s.labels", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		code = ex_sqlite(m, rc, "read series");
		sw_m_rollback(m);
		return code;
	}
	double b[SW_M_BUCKETS_MAX];
	long long c[SW_M_BUCKETS_MAX + 1];
	while (!code && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct sw_mseries ser = {
			.name = (const char *)sqlite3_column_text(s, 0),
			.kind = (enum sw_mkind)sqlite3_column_int(s, 1),
			.help = (const char *)sqlite3_column_text(s, 2),
			.labels = (const char *)sqlite3_column_text(s, 4),
			.value = sqlite3_column_double(s, 5),
			.count = sqlite3_column_int64(s, 6),
			.updated_ns = sqlite3_column_int64(s, 8),
		};
		if (ser.kind == SW_M_HISTOGRAM) {
			const char *bt = (const char *)sqlite3_column_text(s, 3);
			if (!bt || sw_m_bounds_read(bt, b, &ser.nb) ||
			    !counts_parse((const char *)sqlite3_column_text(s, 7), c, ser.nb + 1)) {
				sw_warn("%s: skipping a histogram series with bad buckets", ser.name);
				continue;
			}
			ser.bounds = b;
			ser.counts = c;
		}
		code = fn(&ser, arg);
	}
	if (!code && rc != SQLITE_DONE && rc != SQLITE_ROW)
		code = ex_sqlite(m, rc, "read series");
	sqlite3_finalize(s);
	sw_m_rollback(m);
	return code;
}
