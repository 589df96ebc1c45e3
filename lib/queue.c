/* queue.c — opening a queue and its directories, names, quarantine.  The
 * layout and the protocol are described in queue.h and sw-workspace(5);
 * queue_int.h says which module holds what. */
#include "queue_int.h"
#include "waiter.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include <bsd/stdlib.h>   /* strtonum */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const sw_qdir_names[QD_N] = {
	"pending", "timed", "blocked", "deps", "claimed", "done", "dead",
	"cancelled", "stage", "ids", "damaged"
};

static const char *const state_names[] = {
	"pending", "claimed", "done", "dead", "cancelled", "damaged", "blocked"
};

int qerr(struct sw_queue *q, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->err.msg, sizeof q->err.msg, fmt, ap);
	va_end(ap);
	q->err.code = code;
	return code;
}

int qerr_errno(struct sw_queue *q, const char *what)
{
	int e = errno;
	return qerr(q, sw_ex_errno(e) == EX_UNAVAILABLE ? EX_IOERR : sw_ex_errno(e),
		    "%s: %s", what, strerror(e));
}

int sw_state_mask(const char *list)
{
	int mask = 0;
	char buf[256];
	if (strlen(list) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int bit = 0;
		for (int i = 0; i < (int)(sizeof state_names / sizeof state_names[0]); i++)
			if (!strcmp(t, state_names[i]))
				bit = 1 << i;
		if (!strcmp(t, "all"))
			bit = SW_ST_ALL;
		if (!bit)
			return -1;
		mask |= bit;
	}
	return mask ? mask : -1;
}

static bool parse_digits(const char *s, size_t n, uint64_t *v)
{
	if (n == 0 || n > 20)
		return false;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return true;
}

bool sw_token_parse(const char *s, uint64_t *token)
{
	return s && parse_digits(s, strlen(s), token) && *token > 0;
}

/* ---- names ---------------------------------------------------------- */

bool claim_name_parse(const char *name, char id[NAME_LEN], uint64_t *token, int64_t *expiry_ns)
{
	const char *d2 = strrchr(name, '.');
	if (!d2 || d2 == name)
		return false;
	const char *d1 = d2 - 1;
	while (d1 > name && *d1 != '.')
		d1--;
	uint64_t exp_ms;
	if (*d1 != '.' || d1 == name || !parse_digits(d1 + 1, (size_t)(d2 - d1 - 1), token) ||
	    *token == 0 || !parse_digits(d2 + 1, strlen(d2 + 1), &exp_ms) ||
	    exp_ms > (uint64_t)(INT64_MAX / 1000000) || (size_t)(d1 - name) >= NAME_LEN)
		return false;
	memcpy(id, name, (size_t)(d1 - name));
	id[d1 - name] = 0;
	*expiry_ns = (int64_t)exp_ms * 1000000;
	return sw_name_problem(id) == NULL;
}

void claim_name_make(char out[NAME_LEN], const char *id, uint64_t token, int64_t expiry_ns)
{
	snprintf(out, NAME_LEN, "%s.%llu.%lld", id, (unsigned long long)token,
		 (long long)(expiry_ns / 1000000));
}

/* 16 lower-case hex digits. */
static bool hex16(const char *s, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		*v = *v << 4 | (uint64_t)d;
	}
	return true;
}

/* "<16 hex>.[-<16 hex>.]<id>": an id never starts with '-', so the key
 * part cannot be mistaken for one. */
bool keyed_name_split(const char *name, int64_t *t, uint64_t *key, bool *has_key, const char **id)
{
	uint64_t v;
	if (strlen(name) < 18 || name[16] != '.' || !hex16(name, &v) || v > (uint64_t)INT64_MAX)
		return false;
	const char *rest = name + 17;
	*has_key = false;
	if (rest[0] == '-') {
		if (strlen(rest) < 19 || rest[17] != '.' || !hex16(rest + 1, key))
			return false;
		*has_key = true;
		rest += 18;
	}
	if (sw_name_problem(rest))
		return false;
	*t = (int64_t)v;
	*id = rest;
	return true;
}

bool keyed_name_parse(const char *name, int64_t *t, const char **id)
{
	uint64_t key;
	bool has_key;
	return keyed_name_split(name, t, &key, &has_key, id);
}

void keyed_name_make(char out[NAME_LEN], int64_t t, const json_t *item)
{
	const char *key = sw_json_str(item, "key");
	if (key)
		snprintf(out, NAME_LEN, "%016llx.-%016llx.%s", (unsigned long long)t,
			 (unsigned long long)sw_key_hash64(key), item_id(item));
	else
		snprintf(out, NAME_LEN, "%016llx.%s", (unsigned long long)t, item_id(item));
}

/* ---- opening -------------------------------------------------------- */

static const char *const queue_dirs[] = {
	"pending", "timed", "blocked", "deps", "claimed", "done", "dead",
	"cancelled", "stage", "ids", "damaged", NULL
};

/* A new queue is made whole under a temporary name, then renamed into
 * place, so that nobody sees a queue without its directories. */
static int queue_create(struct sw_queue *q, int qsfd, const char *name)
{
	char tmp[NAME_LEN], rnd[17];
	sw_rand_hex(rnd, 8);
	snprintf(tmp, sizeof tmp, SW_TMP_PREFIX "%.200s.%s", name, rnd);
	int tfd = sw_open_dir(qsfd, tmp, true);
	if (tfd < 0)
		return qerr_errno(q, "cannot create queue");
	for (int i = 0; queue_dirs[i]; i++)
		if (SW_NOINTR(mkdirat(tfd, queue_dirs[i], 0777)) < 0) {
			close(tfd);
			return qerr_errno(q, "cannot create queue");
		}
	int fd = SW_NOINTR(openat(tfd, "wake", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
	if (fd >= 0)
		close(fd);
	if (SW_NOINTR(renameat(qsfd, tmp, qsfd, name)) < 0) {
		/* another process made it first: ours goes */
		for (int i = 0; queue_dirs[i]; i++)
			SW_NOINTR(unlinkat(tfd, queue_dirs[i], AT_REMOVEDIR));
		SW_NOINTR(unlinkat(tfd, "wake", 0));
		SW_NOINTR(unlinkat(qsfd, tmp, AT_REMOVEDIR));
	}
	close(tfd);
	return 0;
}

const char *sw_queue_env(bool *from_env)
{
	const char *env = getenv("SW_QUEUE");
	bool set = env && *env;
	if (from_env)
		*from_env = set;
	return set ? env : SW_QUEUE_DEFAULT;
}

int sw_queue_open(struct sw_queue *q, const struct sw_ws *ws, const char *name, bool create)
{
	memset(q, 0, sizeof *q);
	q->ws = ws;
	q->fd = q->end_ifd = -1;
	for (int i = 0; i < QD_N; i++)
		q->dfd[i] = -1;
	snprintf(q->name, sizeof q->name, "%s", name);
	const char *why = sw_name_problem(name);
	if (why)
		return qerr(q, EX_DATAERR, "bad queue name: %s", why);
	q->item_max = ws->set.item_max;
	int qsfd = sw_open_dir(ws->fd, "queues", create);
	if (qsfd < 0 && errno == ENOENT)
		return qerr(q, SW_EX_FALSE, "no queue '%s'", name);
	if (qsfd < 0)
		return qerr_errno(q, "cannot open the queues directory");
	q->fd = sw_open_dir(qsfd, name, false);
	if (q->fd < 0 && errno == ENOENT && create) {
		int rc = queue_create(q, qsfd, name);
		if (rc) {
			close(qsfd);
			return rc;
		}
		q->fd = sw_open_dir(qsfd, name, false);
	}
	int e = errno;
	close(qsfd);
	if (q->fd < 0 && e == ENOENT)
		return qerr(q, SW_EX_FALSE, "no queue '%s'", name);
	if (q->fd < 0) {
		errno = e;
		return qerr_errno(q, e == ELOOP || e == ENOTDIR ? "queue is not a directory"
								: "cannot open queue");
	}
	return 0;
}

void sw_queue_close(struct sw_queue *q)
{
	if (q->fd >= 0)
		close(q->fd);
	if (q->end_ifd >= 0)
		close(q->end_ifd);
	if (q->waiter) {
		sw_waiter_close(q->waiter);
		free(q->waiter);
		q->waiter = NULL;
	}
	for (int i = 0; i < QD_N; i++)
		if (q->dfd[i] >= 0)
			close(q->dfd[i]);
	claim_cache_free(q);
	q->fd = -1;
}

int qdir(struct sw_queue *q, enum qdir d)
{
	if (q->dfd[d] >= 0)
		return q->dfd[d];
	const char *name = sw_qdir_names[d];
	int fd = sw_open_dir(q->fd, name, true);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR) && d != QD_DAMAGED) {
		/* something else where a state directory belongs: it goes
		 * aside, a real directory takes its place */
		quarantine(q, q->fd, name, ".", "not a directory");
		fd = sw_open_dir(q->fd, name, true);
	}
	if (fd >= 0)
		q->dfd[d] = fd;
	return fd;
}

const char *queue_owner(struct sw_queue *q)
{
	if (!q->owner[0])
		sw_owner_self(q->owner);
	return q->owner[0] ? q->owner : "0-0-0";
}

void queue_nonce(struct sw_queue *q, char out[96])
{
	char rnd[9];
	sw_rand_hex(rnd, 4);
	snprintf(out, 96, "%s-%lld-%s", queue_owner(q), (long long)(sw_now_ns() / 1000000), rnd);
}

/* ---- walking directories ------------------------------------------ */

int each_entry(int dfd, int (*fn)(int dfd, const char *name, void *arg), void *arg)
{
	int fd = SW_NOINTR(openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while (rc == 0 && (de = sw_readdir(d)))
		if (!sw_hidden(de->d_name))
			rc = fn(dirfd(d), de->d_name, arg);
	if (rc == 0 && errno)
		rc = -1;
	int e = errno;
	closedir(d);
	errno = e;
	return rc;
}

int each_entry_in(int dfd, const char *name, int (*fn)(int, const char *, void *), void *arg)
{
	int fd = sw_open_dir(dfd, name, false);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	int rc = each_entry(fd, fn, arg);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Claims or transitions: work someone holds. */
static long long held(struct sw_queue *q)
{
	struct sw_queue_stats st;
	if (sw_queue_stats(q, &st))
		return -1;
	return st.claimed + st.in_flight;
}

int sw_queue_drop(const struct sw_ws *ws, const char *name, bool force, struct sw_err *e)
{
	struct sw_queue q;
	int rc = sw_queue_open(&q, ws, name, false);
	long long n = rc ? 0 : held(&q);
	if (rc == 0 && n < 0)
		rc = q.err.code;
	if (rc == 0 && n > 0 && !force)
		rc = qerr(&q, EX_TEMPFAIL, "queue '%s' has %lld claimed item%s: drop it anyway with --force",
			  name, n, n == 1 ? "" : "s");
	int qsfd = rc ? -1 : sw_open_dir(ws->fd, "queues", false);
	if (rc == 0 && qsfd < 0)
		rc = qerr_errno(&q, "cannot open the queues directory");
	/* one rename takes the queue away whole: whoever opens it next finds
	 * none (or makes a new, empty one); the rest is cleaning up */
	char gone[NAME_LEN], rnd[17];
	sw_rand_hex(rnd, 8);
	snprintf(gone, sizeof gone, SW_TMP_PREFIX "drop.%.200s.%s", name, rnd);
	if (rc == 0 && SW_NOINTR(renameat(qsfd, name, qsfd, gone)) < 0)
		rc = errno == ENOENT ? qerr(&q, SW_EX_FALSE, "no queue '%s'", name) : qerr_errno(&q, "dropping");
	/* a claim made between the count and the rename: give the queue back */
	if (rc == 0 && !force && (n = held(&q)) != 0 &&
	    sw_rename_noreplace(qsfd, gone, qsfd, name) == 0)
		rc = qerr(&q, EX_TEMPFAIL, "queue '%s' got claimed items while being dropped: try again, or --force",
			  name);
	if (rc == 0)
		remove_tree(qsfd, gone, 0);
	if (qsfd >= 0)
		close(qsfd);
	*e = q.err;
	sw_queue_close(&q);
	return rc;
}

int sw_queue_names(const struct sw_ws *ws, int (*fn)(const char *name, void *arg), void *arg)
{
	int fd = sw_open_dir(ws->fd, "queues", false);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = sw_readdir(d)))
		if (!sw_hidden(de->d_name) && !sw_name_problem(de->d_name))
			rc = fn(de->d_name, arg);
	closedir(d);
	return rc;
}

/* ---- hints ------------------------------------------------------------ */

long long read_hint(int dfd, const char *name)
{
	char buf[32];
	ssize_t n = SW_NOINTR(readlinkat(dfd, name, buf, sizeof buf - 1));
	if (n <= 0)
		return 0;
	buf[n] = 0;
	long long v = strtonum(buf, 0, INT64_MAX / 4, NULL);
	return v;
}

void write_hint(int dfd, const char *name, long long v)
{
	char val[32], tmp[SW_TMPNAME_LEN], rnd[17];
	snprintf(val, sizeof val, "%lld", v);
	sw_rand_hex(rnd, 8);
	snprintf(tmp, sizeof tmp, SW_TMP_PREFIX "%s.%s", name, rnd);
	if (SW_NOINTR(symlinkat(val, dfd, tmp)) < 0)
		return;
	if (SW_NOINTR(renameat(dfd, tmp, dfd, name)) < 0)
		SW_NOINTR(unlinkat(dfd, tmp, 0));
}

/* ---- waking and syncing ------------------------------------------- */

void wake_waiters(struct sw_queue *q)
{
	/* waiters on this host watch `wake` with inotify; others poll.  Not
	 * followed if someone made it a symlink */
	if (SW_NOINTR(utimensat(q->fd, "wake", NULL, AT_SYMLINK_NOFOLLOW)) < 0 && errno == ENOENT) {
		int fd = SW_NOINTR(openat(q->fd, "wake", O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666));
		if (fd >= 0)
			close(fd);
	}
}

/* In a batch's commit, syncs wait for the one at its end. */
static bool sync_now(struct sw_queue *q, bool wanted)
{
	if (wanted && q->sync_deferred) {
		q->sync_owed = true;
		return false;
	}
	return wanted;
}

void sync_full(struct sw_queue *q)
{
	if (sync_now(q, q->ws->sync == SW_SYNC_FULL))
		SW_NOINTR(syncfs(q->fd));
}

void sync_dir(struct sw_queue *q, enum qdir d, bool durable)
{
	if (sync_now(q, sw_sync_wanted(q->ws->sync, durable)) && qdir(q, d) >= 0)
		sw_fsync_dir(q->dfd[d]);
}

/* ---- quarantine ------------------------------------------------------ */

static void quarantine_as(struct sw_queue *q, int dfd, const char *name, const char *from,
			  const char *why, bool say)
{
	char box[NAME_LEN], rnd[9];
	sw_rand_hex(rnd, 4);
	snprintf(box, sizeof box, "%lld.%s", (long long)(sw_now_ns() / 1000000), rnd);
	int dmg = qdir(q, QD_DAMAGED);
	int bfd = dmg < 0 ? -1 : sw_open_dir(dmg, box, true);
	if (bfd < 0) {
		sw_warn("queue '%s': %s/%s is damaged (%s) and cannot be moved aside: %s", q->name,
			from, name, why, strerror(errno));
		return;
	}
	/* the reason and where it came from, for `list --state damaged` */
	json_t *j = json_pack("{s:s,s:s,s:s}", "name", name, "from", from, "reason", why);
	size_t len;
	char *line = j ? sw_json_line(j, &len) : NULL;
	json_decref(j);
	if (line)
		sw_replace(bfd, ".why", line, len, SW_SYNC_OFF, false);
	free(line);
	if (SW_NOINTR(renameat(dfd, name, bfd, name)) < 0) {
		int e = errno;
		SW_NOINTR(unlinkat(bfd, ".why", 0));
		SW_NOINTR(unlinkat(dmg, box, AT_REMOVEDIR));
		close(bfd);
		if (e != ENOENT)   /* gone meanwhile: nothing to say */
			sw_warn("queue '%s': %s/%s is damaged (%s) and cannot be moved aside: %s",
				q->name, from, name, why, strerror(e));
		return;
	}
	close(bfd);
	if (say)
		sw_warn("queue '%s': moved %s/%s aside (%s); see: sw-claim list -q %s --state damaged",
			q->name, from, name, why, q->name);
}

void quarantine(struct sw_queue *q, int dfd, const char *name, const char *from, const char *why)
{
	quarantine_as(q, dfd, name, from, why, true);
}

void quarantine_quiet(struct sw_queue *q, int dfd, const char *name, const char *from, const char *why)
{
	quarantine_as(q, dfd, name, from, why, false);
}
