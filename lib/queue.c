/* queue.c — the work queue: one file per item, moved between directories
 * by rename.  Layout and the protocol are described in queue.h and in
 * sw-workspace(5); the comments here say why each step is where it is. */
#include "queue.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "id.h"
#include "json.h"
#include "lock.h"
#include <bsd/stdlib.h>   /* strtonum */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUCKET_MAX 256                  /* entries an adder puts in one bucket */
#define PROBE_MAX 64                    /* missing bucket numbers skipped over */
#define STAGE_GRACE_NS (30 * SW_NS_PER_SEC)  /* a transition is abandoned after */
#define TMP_GRACE_NS (3600 * SW_NS_PER_SEC)  /* a temporary file is a leftover after */
#define MAINT_EVERY_NS SW_NS_PER_SEC    /* lazy maintenance by `next` at most */
#define BACKOFF_CAP_NS (3600 * SW_NS_PER_SEC)
#define PATH_LEN 1024

static const char *const state_names[] = { "pending", "claimed", "done", "dead", "cancelled" };

static int qerr(struct sw_queue *q, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int qerr(struct sw_queue *q, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->err, sizeof q->err, fmt, ap);
	va_end(ap);
	return code;
}

static int qerr_errno(struct sw_queue *q, const char *what)
{
	int e = errno;
	return qerr(q, sw_ex_errno(e) == EX_UNAVAILABLE ? EX_IOERR : sw_ex_errno(e),
		    "%s: %s", what, strerror(e));
}

int sw_state_mask(const char *list)
{
	int mask = 0;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int bit = 0;
		for (int i = 0; i < 5; i++)
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

bool sw_token_parse(const char *s, uint64_t *token)
{
	if (!s || !*s || strlen(s) > 20)
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*token = v;
	return v > 0;
}

/* ---- opening ---------------------------------------------------------- */

static const char *const queue_dirs[] = {
	"pending", "timed", "blocked", "deps", "claimed", "done", "dead",
	"cancelled", "stage", "ids", NULL
};

int sw_queue_open(struct sw_queue *q, const struct sw_ws *ws, const char *name, bool create)
{
	memset(q, 0, sizeof *q);
	q->ws = ws;
	q->fd = q->ifd = -1;
	snprintf(q->name, sizeof q->name, "%s", name);
	const char *why = sw_name_problem(name);
	if (why)
		return qerr(q, EX_DATAERR, "bad queue name: %s", why);
	const char *max = getenv("SW_MAX_ITEM_BYTES");
	q->item_max = SW_ITEM_MAX_DEFAULT;
	if (max && *max) {
		long long v = strtonum(max, 64, 1LL << 40, NULL);
		if (v <= 0)
			return qerr(q, EX_USAGE, "bad SW_MAX_ITEM_BYTES '%s'", max);
		q->item_max = (size_t)v;
	}
	char rel[PATH_LEN];
	snprintf(rel, sizeof rel, "queues/%s", name);
	q->fd = sw_ws_dir(ws, rel, false);
	if (q->fd < 0 && errno == ENOENT && !create)
		return qerr(q, SW_EX_FALSE, "no queue '%s'", name);
	if (q->fd < 0 && errno == ENOENT) {
		/* made whole under a temporary name, then renamed into place, so
		 * nobody sees a queue without its directories */
		char tmp[PATH_LEN], sub[PATH_LEN], rnd[17];
		sw_rand_hex(rnd, 8);
		snprintf(tmp, sizeof tmp, "queues/.tmp.%s.%s", name, rnd);
		for (int i = 0; queue_dirs[i]; i++) {
			snprintf(sub, sizeof sub, "%s/%s", tmp, queue_dirs[i]);
			if (sw_mkdirs(ws->fd, sub, ws->dmode) < 0)
				return qerr_errno(q, "cannot create queue");
		}
		snprintf(sub, sizeof sub, "%s/wake", tmp);
		int fd = openat(ws->fd, sub, O_WRONLY | O_CREAT | O_CLOEXEC, ws->fmode);
		if (fd >= 0)
			close(fd);
		if (renameat(ws->fd, tmp, ws->fd, rel) < 0) {
			/* another process made it first: ours goes */
			for (int i = 0; queue_dirs[i]; i++) {
				snprintf(sub, sizeof sub, "%s/%s", tmp, queue_dirs[i]);
				unlinkat(ws->fd, sub, AT_REMOVEDIR);
			}
			snprintf(sub, sizeof sub, "%s/wake", tmp);
			unlinkat(ws->fd, sub, 0);
			unlinkat(ws->fd, tmp, AT_REMOVEDIR);
		}
		q->fd = sw_ws_dir(ws, rel, false);
	}
	if (q->fd < 0)
		return qerr_errno(q, "cannot open queue");
	return 0;
}

void sw_queue_close(struct sw_queue *q)
{
	if (q->fd >= 0)
		close(q->fd);
	if (q->ifd >= 0)
		close(q->ifd);
	q->fd = q->ifd = -1;
}

static int subdir(struct sw_queue *q, const char *rel)
{
	int fd = openat(q->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (sw_mkdirs(q->fd, rel, q->ws->dmode) < 0)
			return -1;
		fd = openat(q->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd;
}

static void wake_waiters(struct sw_queue *q)
{
	/* waiters on this host watch `wake` with inotify; others poll */
	utimensat(q->fd, "wake", NULL, 0);
}

/* ---- hints: symlinks, because replacing one by rename is cheap -------- */

static long long read_hint(int dfd, const char *name)
{
	char buf[32];
	ssize_t n = readlinkat(dfd, name, buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

static void write_hint(int dfd, const char *name, long long v)
{
	char val[32], tmp[SW_TMPNAME_LEN], rnd[17];
	snprintf(val, sizeof val, "%lld", v);
	sw_rand_hex(rnd, 8);
	snprintf(tmp, sizeof tmp, SW_TMP_PREFIX "%s.%s", name, rnd);
	if (symlinkat(val, dfd, tmp) < 0)
		return;
	if (renameat(dfd, tmp, dfd, name) < 0)
		unlinkat(dfd, tmp, 0);
}

/* ---- items -------------------------------------------------------------- */

static bool clean_string(const json_t *v)
{
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int spec_duration(const json_t *v, int64_t *ns)
{
	/* at most SW_DURATION_MAX_NS, as a duration string: no overflow */
	const json_int_t max_s = SW_DURATION_MAX_NS / SW_NS_PER_SEC;
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max_s) {
		*ns = (int64_t)json_integer_value(v) * SW_NS_PER_SEC;
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= (double)max_s) {
		*ns = (int64_t)(json_real_value(v) * 1e9);
		return 0;
	}
	if (clean_string(v))
		return sw_parse_duration(json_string_value(v), ns);
	return -1;
}

static json_t *after_list(const json_t *v, char *err, size_t errlen)
{
	json_t *out = json_array();
	if (json_is_string(v)) {
		char *buf = strdup(json_string_value(v));
		if (!clean_string(v) || !buf) {
			free(buf);
			snprintf(err, errlen, "after: want ids as strings, without NUL");
			json_decref(out);
			return NULL;
		}
		for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(out, json_string(t));
		free(buf);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (!clean_string(e)) {
				snprintf(err, errlen, "after: want ids as strings");
				json_decref(out);
				return NULL;
			}
			json_array_append(out, e);
		}
	} else {
		snprintf(err, errlen, "after: want an array of ids");
		json_decref(out);
		return NULL;
	}
	size_t i;
	json_t *e;
	json_array_foreach(out, i, e) {
		const char *why = sw_name_problem(json_string_value(e));
		if (why) {
			snprintf(err, errlen, "bad id in after: %s", why);
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static const char *const spec_keys[] = {
	"id", "payload", "priority", "role", "max_attempts", "timeout", "delay", "after", NULL
};

static bool known_key(const char *k)
{
	for (int i = 0; spec_keys[i]; i++)
		if (!strcmp(k, spec_keys[i]))
			return true;
	return false;
}

json_t *sw_item_new(const json_t *spec, const struct sw_item_defaults *d, const char *queue,
		    char *err, size_t errlen)
{
	if (!json_is_object(spec)) {
		snprintf(err, errlen, "an item must be a JSON object");
		return NULL;
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)spec, k, v) {
		if (!known_key(k)) {
			snprintf(err, errlen, "unknown field '%.40s' (fields: id, payload, priority, role, max_attempts, timeout, delay, after)", k);
			return NULL;
		}
	}
	int64_t now = sw_now_ns();
	json_t *item = json_object();
	char ulid[SW_ULID_LEN + 1];
	const char *id = d->id;
	v = json_object_get(spec, "id");
	if (v && !clean_string(v)) { snprintf(err, errlen, "id: want a string without NUL"); goto bad; }
	if (v) id = json_string_value(v);
	if (id) {
		const char *why = sw_name_problem(id);
		if (why) { snprintf(err, errlen, "bad id: %s", why); goto bad; }
		json_object_set_new(item, "given_id", json_true());
	} else {
		sw_ulid(ulid, now);
		id = ulid;
	}
	json_object_set_new(item, "id", json_string(id));
	json_object_set_new(item, "queue", json_string(queue));

	json_int_t prio = d->priority;
	v = json_object_get(spec, "priority");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > SW_PRIO_MAX)) {
		snprintf(err, errlen, "priority: want an integer from 0 to 9"); goto bad;
	}
	if (v) prio = json_integer_value(v);
	json_object_set_new(item, "priority", json_integer(prio));

	const char *role = d->role;
	v = json_object_get(spec, "role");
	if (v && !json_is_null(v) && !clean_string(v)) { snprintf(err, errlen, "role: want a string"); goto bad; }
	if (v) role = json_is_null(v) ? NULL : json_string_value(v);
	if (role) {
		const char *why = sw_name_problem(role);
		if (why) { snprintf(err, errlen, "bad role: %s", why); goto bad; }
		json_object_set_new(item, "role", json_string(role));
	}

	v = json_object_get(spec, "payload");
	json_object_set(item, "payload", v ? v : json_null());
	json_object_set_new(item, "attempt", json_integer(0));

	json_int_t maxa = d->max_attempts;
	v = json_object_get(spec, "max_attempts");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000)) {
		snprintf(err, errlen, "max_attempts: want an integer from 1 to 1000000"); goto bad;
	}
	if (v) maxa = json_integer_value(v);
	json_object_set_new(item, "max_attempts", json_integer(maxa));

	int64_t timeout = d->timeout_ns;
	v = json_object_get(spec, "timeout");
	if (v && spec_duration(v, &timeout) < 0) { snprintf(err, errlen, "timeout: want seconds or a duration"); goto bad; }
	if (timeout < SW_NS_PER_SEC) timeout = SW_NS_PER_SEC;
	json_object_set_new(item, "timeout", json_integer((timeout + SW_NS_PER_SEC - 1) / SW_NS_PER_SEC));

	int64_t delay = d->delay_ns;
	v = json_object_get(spec, "delay");
	if (v && spec_duration(v, &delay) < 0) { snprintf(err, errlen, "delay: want seconds or a duration"); goto bad; }

	v = json_object_get(spec, "after");
	json_t *after = v ? after_list(v, err, errlen) : d->after ? json_incref(d->after) : NULL;
	if (v && !after) goto bad;
	if (after && json_array_size(after) > 0)
		json_object_set_new(item, "after", after);
	else
		json_decref(after);

	sw_json_set_time(item, "created_at", now);
	if (delay > 0)
		sw_json_set_time(item, "not_before", now + delay);
	json_object_set_new(item, "gen", json_integer(0));

	char *s = json_dumps(item, JSON_COMPACT);
	size_t len = s ? strlen(s) : 0;
	free(s);
	size_t max = SW_ITEM_MAX_DEFAULT;
	const char *mx = getenv("SW_MAX_ITEM_BYTES");
	if (mx && *mx && strtonum(mx, 64, 1LL << 40, NULL) > 0)
		max = (size_t)strtonum(mx, 64, 1LL << 40, NULL);
	if (len > max) {
		snprintf(err, errlen, "item is %zu bytes, over the limit of %zu (SW_MAX_ITEM_BYTES)", len, max);
		goto bad;
	}
	return item;
bad:
	json_decref(item);
	return NULL;
}

static const char *item_id(const json_t *item) { return sw_json_str(item, "id"); }

/* The public view of a stored item: internal fields go, state comes from
 * where the file was found. */
static json_t *item_view(json_t *item, const char *state)
{
	json_object_del(item, "gen");
	json_object_del(item, "given_id");
	json_object_set_new(item, "state", json_string(state));
	return item;
}

static char *item_dump(const json_t *item, size_t *len)
{
	char *s = json_dumps(item, JSON_COMPACT);
	if (s && len)
		*len = strlen(s);
	return s;
}

/* ---- pending buckets ------------------------------------------------- */

struct bucket {
	int pfd;                /* pending/<p>/<part> */
	int prio;
	char part[SW_NAME_MAX + 1];
	long long n;            /* bucket number, 0: none yet */
	int used;
};

static void bucket_init(struct bucket *b) { b->pfd = -1; b->n = 0; b->used = 0; b->part[0] = 0; b->prio = -1; }
static void bucket_done(struct bucket *b) { if (b->pfd >= 0) close(b->pfd); bucket_init(b); }

static const char *item_part(const json_t *item)
{
	const char *role = sw_json_str(item, "role");
	return role ? role : "-";
}

static int part_open(struct sw_queue *q, int prio, const char *part, bool create)
{
	char rel[PATH_LEN];
	snprintf(rel, sizeof rel, "pending/%d/%s", prio, part);
	if (!create)
		return openat(q->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return subdir(q, rel);
}

/* A new bucket for an adder: the lowest free number at or above the tail
 * hint.  Bucket names are never knowingly reused: one below the head hint
 * is given up again, because claimers never look there. */
static int bucket_new(struct sw_queue *q, struct bucket *b)
{
	long long head = read_hint(b->pfd, "head");
	long long n = read_hint(b->pfd, "tail");
	if (head < 1) head = 1;
	if (n < head) n = head;
	for (;;) {
		char name[32];
		snprintf(name, sizeof name, "%lld", n);
		if (mkdirat(b->pfd, name, q->ws->dmode) == 0) {
			long long h = read_hint(b->pfd, "head");
			if (h > n) {
				unlinkat(b->pfd, name, AT_REMOVEDIR);
				n = h;
				continue;
			}
			write_hint(b->pfd, "tail", n);
			b->n = n;
			b->used = 0;
			return 0;
		}
		if (errno != EEXIST)
			return -1;
		n++;
	}
}

static int bucket_for(struct sw_queue *q, struct bucket *b, const json_t *item)
{
	int prio = (int)sw_json_int(item, "priority", SW_PRIO_DEFAULT);
	const char *part = item_part(item);
	if (b->pfd >= 0 && (b->prio != prio || strcmp(b->part, part)))
		bucket_done(b);
	if (b->pfd < 0) {
		b->pfd = part_open(q, prio, part, true);
		if (b->pfd < 0)
			return -1;
		b->prio = prio;
		snprintf(b->part, sizeof b->part, "%s", part);
	}
	if (b->n == 0 || b->used >= BUCKET_MAX)
		return bucket_new(q, b);
	return 0;
}

/* Renames dirfd/name (holding item) into a pending bucket.  A bucket that
 * a claimer removed meanwhile (ENOENT) is replaced by a new one. */
static int bucket_put(struct sw_queue *q, struct bucket *b, int dirfd, const char *name,
		      const json_t *item, char key[PATH_LEN])
{
	for (int tries = 0; tries < 100; tries++) {
		if (bucket_for(q, b, item) < 0)
			return -1;
		snprintf(key, PATH_LEN, "%lld/%016llx.%s", b->n,
			 (unsigned long long)sw_now_ns(), item_id(item));
		if (sw_rename(dirfd, name, b->pfd, key) == 0) {
			b->used++;
			return 0;
		}
		if (errno != ENOENT || faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			return -1;
		b->n = 0;   /* the bucket went away under us */
	}
	errno = EAGAIN;
	return -1;
}

/* ---- placing an item file where its state says ---------------------- */

static bool dep_done(struct sw_queue *q, const char *id)
{
	char rel[PATH_LEN];
	snprintf(rel, sizeof rel, "done/%s", id);
	return faccessat(q->fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool deps_done(struct sw_queue *q, const json_t *item)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e)
		if (!dep_done(q, json_string_value(e)))
			return false;
	return true;
}

/* Marks item as waiting for each of its unfinished `after` ids.  Marks go
 * first, then the item, then a second look: whoever finishes a dependency
 * either sees the mark or has already finished when we look again. */
static int deps_mark(struct sw_queue *q, const json_t *item)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e) {
		char rel[PATH_LEN];
		snprintf(rel, sizeof rel, "deps/%s", json_string_value(e));
		int dfd = subdir(q, rel);
		if (dfd < 0)
			return -1;
		int fd = openat(dfd, item_id(item), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, q->ws->fmode);
		if (fd < 0 && errno == EEXIST)   /* NFS O_CREAT race: it exists */
			fd = openat(dfd, item_id(item), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		close(dfd);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return 0;
}

static int place_pending(struct sw_queue *q, struct bucket *b, int dirfd, const char *name,
			 json_t *item, char *where);

static int promote_blocked(struct sw_queue *q, struct bucket *b, const char *id)
{
	char rel[PATH_LEN];
	snprintf(rel, sizeof rel, "blocked/%s", id);
	json_t *item = sw_json_read(q->fd, rel, q->item_max + SW_ITEM_SLACK);
	if (!item)
		return errno == ENOENT ? 0 : -1;
	int rc = 0;
	if (deps_done(q, item)) {
		char key[PATH_LEN];
		rc = bucket_put(q, b, q->fd, rel, item, key);
		if (rc < 0 && errno == ENOENT)
			rc = 0;      /* someone else promoted it */
		if (rc == 0)
			wake_waiters(q);
	}
	json_decref(item);
	return rc;
}

/* After id is done: its waiters whose dependencies are all done now become
 * claimable. */
static void deps_release(struct sw_queue *q, const char *id)
{
	char rel[PATH_LEN];
	snprintf(rel, sizeof rel, "deps/%s", id);
	int dfd = openat(q->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	DIR *d = fdopendir(dfd);
	if (!d) { close(dfd); return; }
	struct bucket b;
	bucket_init(&b);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (sw_hidden(de->d_name))
			continue;
		if (promote_blocked(q, &b, de->d_name) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	bucket_done(&b);
	closedir(d);
	unlinkat(q->fd, rel, AT_REMOVEDIR);
}

/* SW_SYNC=full flushes every change, those normal leaves to chance too (a
 * claim, a move back to pending): one syncfs covers the directories both
 * ends of the rename are in.  Best effort: the change is made already. */
static void sync_full(struct sw_queue *q)
{
	if (q->ws->sync == SW_SYNC_FULL)
		syncfs(q->fd);
}

/* Moves dirfd/name (holding item) to timed/, blocked/ or a bucket; where,
 * if not NULL, gets the path it went to (relative to the queue). */
static int place_pending(struct sw_queue *q, struct bucket *b, int dirfd, const char *name,
			 json_t *item, char *where)
{
	char rel[PATH_LEN];
	int64_t nb = sw_json_int(item, "not_before_unix_ns", 0);
	if (nb > sw_now_ns()) {
		snprintf(rel, sizeof rel, "timed/%016llx.%s", (unsigned long long)nb, item_id(item));
		if (where) snprintf(where, PATH_LEN, "%s", rel);
		return sw_rename(dirfd, name, q->fd, rel);
	}
	if (json_array_size(json_object_get(item, "after")) > 0 && !deps_done(q, item)) {
		if (deps_mark(q, item) < 0)
			return -1;
		snprintf(rel, sizeof rel, "blocked/%s", item_id(item));
		if (sw_rename(dirfd, name, q->fd, rel) < 0)
			return -1;
		if (where) snprintf(where, PATH_LEN, "%s", rel);
		return promote_blocked(q, b, item_id(item));
	}
	char key[PATH_LEN];
	if (bucket_put(q, b, dirfd, name, item, key) < 0)
		return -1;
	if (where)
		snprintf(where, PATH_LEN, "pending/%d/%s/%s", b->prio, b->part, key);
	return 0;
}

/* Moves dirfd/name, holding item whose "state" field says where it goes. */
static int place(struct sw_queue *q, int dirfd, const char *name, json_t *item)
{
	const char *state = sw_json_str(item, "state");
	if (!state || !strcmp(state, "pending")) {
		struct bucket b;
		bucket_init(&b);
		int rc = place_pending(q, &b, dirfd, name, item, NULL);
		bucket_done(&b);
		if (rc == 0) {
			sync_full(q);
			wake_waiters(q);
		}
		return rc;
	}
	char rel[PATH_LEN];
	snprintf(rel, sizeof rel, "%s/%s", state, item_id(item));
	if (sw_rename(dirfd, name, q->fd, rel) < 0)
		return -1;
	if (q->ws->sync == SW_SYNC_FULL || (q->ws->sync == SW_SYNC_NORMAL && strcmp(state, "cancelled"))) {
		int sfd = subdir(q, state);
		if (sfd >= 0) {
			sw_fsync_dir(sfd);
			close(sfd);
		}
	}
	if (!strcmp(state, "done"))
		deps_release(q, item_id(item));
	return 0;
}

/* ---- transitions: crash-safe moves through stage/ --------------------- */

/* Moves the file dirfd/src to the state next describes, replacing its
 * content.  The rename of src into stage/ decides: of two processes moving
 * the same file, one gets ENOENT (SW_EX_FALSE here) and changes nothing.
 * A crash leaves stage/<nonce>.old and/or .new, finished by reap. */
static int transition(struct sw_queue *q, int dirfd, const char *src, json_t *next, bool durable)
{
	int sfd = subdir(q, "stage");
	if (sfd < 0)
		return qerr_errno(q, "stage");
	size_t len;
	char *buf = item_dump(next, &len);
	char tmp[SW_TMPNAME_LEN], rnd[17], old[40], new[40];
	if (!buf) { close(sfd); return qerr(q, EX_SOFTWARE, "cannot encode item"); }
	/* readers stop at item_max + SW_ITEM_SLACK: a bigger file would be an
	 * item nobody can read, so a result or error that large changes nothing */
	if (len > q->item_max + SW_ITEM_SLACK) {
		free(buf);
		close(sfd);
		return qerr(q, EX_DATAERR, "the item would be %zu bytes with this result or error, over "
			    "SW_MAX_ITEM_BYTES (%zu) + %d", len, q->item_max, SW_ITEM_SLACK);
	}
	int rc = sw_tmp_write(sfd, tmp, buf, len, sw_sync_wanted(q->ws->sync, durable));
	free(buf);
	if (rc < 0) { rc = qerr_errno(q, "writing item"); close(sfd); return rc; }
	sw_rand_hex(rnd, 8);
	snprintf(old, sizeof old, "%s.old", rnd);
	snprintf(new, sizeof new, "%s.new", rnd);
	if (sw_rename(dirfd, src, sfd, old) < 0) {
		int e = errno;
		unlinkat(sfd, tmp, 0);
		close(sfd);
		errno = e;
		return e == ENOENT ? qerr(q, SW_EX_FALSE, "no longer there") : qerr_errno(q, "moving item");
	}
	utimensat(sfd, old, NULL, 0);   /* the grace period counts from here */
	if (sw_rename(sfd, tmp, sfd, new) < 0) {
		rc = qerr_errno(q, "staging item");
		close(sfd);
		return rc;   /* reap puts .old back where it was */
	}
	unlinkat(sfd, old, 0);
	rc = place(q, sfd, new, next) < 0 ? qerr_errno(q, "placing item") : 0;
	close(sfd);
	return rc;
}

/* ---- adding ------------------------------------------------------------ */

struct added { char *rel; char *marker; /* the id whose marker we made */ };

struct sw_batch {
	struct sw_queue *q;
	int sfd, idsfd;
	struct bucket b;
	struct added *rec;       /* what was added, to take it back on failure */
	size_t n, cap;
};

struct sw_batch *sw_batch_new(struct sw_queue *q)
{
	struct sw_batch *bt = calloc(1, sizeof *bt);
	if (!bt) { qerr(q, EX_SOFTWARE, "out of memory"); return NULL; }
	bt->q = q;
	bt->sfd = subdir(q, "stage");
	bt->idsfd = subdir(q, "ids");
	bucket_init(&bt->b);
	if (bt->sfd < 0 || bt->idsfd < 0) {
		qerr_errno(q, "cannot open queue");
		sw_batch_abort(bt);
		return NULL;
	}
	return bt;
}

static int batch_record(struct sw_batch *bt, const char *rel, const char *marker)
{
	if (bt->n == bt->cap) {
		size_t cap = bt->cap ? bt->cap * 2 : 64;
		struct added *r = realloc(bt->rec, cap * sizeof *r);
		if (!r) return -1;
		bt->rec = r;
		bt->cap = cap;
	}
	bt->rec[bt->n].rel = strdup(rel);
	bt->rec[bt->n].marker = marker ? strdup(marker) : NULL;
	bt->n++;
	return 0;
}

static int id_reserve(struct sw_batch *bt, const char *id, bool *existed);
static void id_commit(struct sw_batch *bt, const char *id);

int sw_batch_add(struct sw_batch *bt, json_t *item, bool *existed)
{
	struct sw_queue *q = bt->q;
	bool marker = false;
	*existed = false;
	if (json_is_true(json_object_get(item, "given_id"))) {
		/* a user's id is added once: the marker is the exclusive create */
		if (id_reserve(bt, item_id(item), existed) < 0)
			return qerr_errno(q, "cannot add item");
		if (*existed)
			return 0;
		marker = true;
	}
	size_t len;
	char *buf = item_dump(item, &len);
	char tmp[SW_TMPNAME_LEN], where[PATH_LEN];
	int rc = buf ? sw_tmp_write(bt->sfd, tmp, buf, len, false) : -1;
	free(buf);
	if (rc == 0 && place_pending(q, &bt->b, bt->sfd, tmp, item, where) < 0) {
		int e = errno;
		unlinkat(bt->sfd, tmp, 0);
		errno = e;
		rc = -1;
	}
	if (rc == 0 && batch_record(bt, where, marker ? item_id(item) : NULL) < 0)
		errno = ENOMEM, rc = -1;
	if (rc == 0 && marker)
		id_commit(bt, item_id(item));
	if (rc < 0) {
		rc = qerr_errno(q, "cannot add item");
		if (marker)
			unlinkat(bt->idsfd, item_id(item), 0);
	}
	return rc;
}

static void batch_free(struct sw_batch *bt)
{
	for (size_t i = 0; i < bt->n; i++) {
		free(bt->rec[i].rel);
		free(bt->rec[i].marker);
	}
	free(bt->rec);
	bucket_done(&bt->b);
	if (bt->sfd >= 0) close(bt->sfd);
	if (bt->idsfd >= 0) close(bt->idsfd);
	free(bt);
}

void sw_batch_abort(struct sw_batch *bt)
{
	/* an item already claimed by someone cannot be taken back; the rest
	 * of the batch goes */
	for (size_t i = 0; i < bt->n; i++) {
		unlinkat(bt->q->fd, bt->rec[i].rel, 0);
		if (bt->rec[i].marker)
			unlinkat(bt->idsfd, bt->rec[i].marker, 0);
	}
	batch_free(bt);
}

int sw_batch_commit(struct sw_batch *bt)
{
	struct sw_queue *q = bt->q;
	int rc = 0;
	/* one syncfs for the whole batch instead of an fsync per item */
	if (q->ws->sync != SW_SYNC_OFF && syncfs(q->fd) < 0) {
		rc = qerr_errno(q, "syncing");
		sw_batch_abort(bt);
		return rc;
	}
	batch_free(bt);
	wake_waiters(q);
	return 0;
}

int sw_queue_add(struct sw_queue *q, json_t **items, size_t n, bool *existed)
{
	struct sw_batch *bt = sw_batch_new(q);
	if (!bt)
		return EX_IOERR;
	for (size_t i = 0; i < n; i++) {
		int rc = sw_batch_add(bt, items[i], &existed[i]);
		if (rc) {
			sw_batch_abort(bt);
			return rc;
		}
	}
	return sw_batch_commit(bt);
}

/* ---- claiming -------------------------------------------------------- */

struct cand {
	int pfd;                      /* pending/<p>/<part>, owned */
	long long bucket;
	char key[PATH_LEN];           /* entry name in the bucket */
};

/* The first bucket numbered from or above that exists, 0 if none: holes
 * left by removed buckets are skipped up to the tail hint, and PROBE_MAX
 * beyond it (the hint may lag behind an adder). */
static long long next_bucket(int pfd, long long from)
{
	char name[32];
	long long tail = read_hint(pfd, "tail"), end = from + PROBE_MAX;
	if (tail + PROBE_MAX > end)
		end = tail + PROBE_MAX;
	for (long long n = from; n < end; n++) {
		snprintf(name, sizeof name, "%lld", n);
		if (faccessat(pfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return n;
	}
	return 0;
}

/* The smallest entry name in bucket n (or, when spread, a random one of
 * the first few, so racing claimers on other hosts do not all chase the
 * same entry).  0: found; 1: empty; -1: the bucket is gone. */
static int bucket_pick(int pfd, long long n, char key[PATH_LEN], bool spread)
{
	char name[32];
	snprintf(name, sizeof name, "%lld", n);
	int bfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (bfd < 0)
		return -1;
	DIR *d = fdopendir(bfd);
	if (!d) { close(bfd); return -1; }
	char best[8][256];
	int nbest = 0, keep = spread ? 8 : 1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (sw_hidden(de->d_name) || strlen(de->d_name) >= 256)
			continue;
		/* insertion into the sorted list of the `keep` smallest */
		int i = nbest < keep ? nbest++ : keep;
		if (i == keep && strcmp(de->d_name, best[keep - 1]) >= 0)
			continue;
		if (i == keep) i = keep - 1;
		while (i > 0 && strcmp(de->d_name, best[i - 1]) < 0) {
			memcpy(best[i], best[i - 1], 256);
			i--;
		}
		snprintf(best[i], 256, "%s", de->d_name);
	}
	closedir(d);
	if (nbest == 0)
		return 1;
	int pick = spread ? (int)sw_rand_below((uint32_t)nbest) : 0;
	snprintf(key, PATH_LEN, "%s", best[pick]);
	return 0;
}

/* Raises the head hint from `from` to n.  An adder whose tail hint lags
 * may have made a bucket in between again after it was removed; it checks
 * the head after its mkdir, this checks the buckets after its write, so
 * one of the two sees the other and no item is left below the head.
 * Returns the head written. */
static long long head_raise(int pfd, long long from, long long n)
{
	write_hint(pfd, "head", n);
	for (long long k = from < 1 ? 1 : from; k < n; k++) {
		char name[32];
		snprintf(name, sizeof name, "%lld", k);
		int bfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (bfd >= 0) {
			close(bfd);
			write_hint(pfd, "head", k);
			return k;
		}
	}
	return n;
}

/* Finds the head entry of one partition, walking past (and removing)
 * buckets that are empty while a later one exists. */
static int part_head(int pfd, char key[PATH_LEN], long long *bucket, bool spread)
{
	long long hint = read_hint(pfd, "head"), n = hint < 1 ? 1 : hint;
	bool lowered = false;
	for (int steps = 0; steps < 100000; steps++) {
		int r = bucket_pick(pfd, n, key, spread);
		if (r == 0) {
			/* one came back below: walk once more from there (once: a
			 * bucket that cannot be removed must not keep us here) */
			if (n != hint && head_raise(pfd, hint, n) != n && !lowered) {
				lowered = true;
				hint = n = read_hint(pfd, "head");
				continue;
			}
			*bucket = n;
			return 0;
		}
		long long m = next_bucket(pfd, n + 1);
		if (!m) {
			/* remember how far the removed buckets go, or the next
			 * claimer walks the same holes again */
			if (n != hint && r == 1)
				head_raise(pfd, hint, n);
			return 1;
		}
		if (r == 1) {
			char name[32];
			snprintf(name, sizeof name, "%lld", n);
			/* ENOTEMPTY: an adder just put something in: look again */
			if (unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno == ENOTEMPTY)
				continue;
		}
		n = m;
	}
	return 1;
}

static bool role_allowed(const char *part, const char *const *roles, size_t nroles)
{
	if (nroles == 0 || !strcmp(part, "-"))
		return true;
	for (size_t i = 0; i < nroles; i++)
		if (!strcmp(part, roles[i]))
			return true;
	return false;
}

/* The best candidate of one priority over the partitions roles allow:
 * the smallest key, i.e. the oldest.  0 found, 1 none. */
static int prio_best(struct sw_queue *q, int prio, const char *const *roles, size_t nroles,
		     struct cand *best, bool spread)
{
	char rel[32];
	snprintf(rel, sizeof rel, "pending/%d", prio);
	int dfd = openat(q->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return 1;
	DIR *d = fdopendir(dfd);
	if (!d) { close(dfd); return 1; }
	int found = 1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (sw_hidden(de->d_name) || !role_allowed(de->d_name, roles, nroles))
			continue;
		int pfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0)
			continue;
		struct cand c = { .pfd = pfd };
		/* keys start with the time they were queued: smaller is older */
		if (part_head(pfd, c.key, &c.bucket, spread) == 0 &&
		    (found || strcmp(c.key, best->key) < 0)) {
			if (!found) close(best->pfd);
			*best = c;
			found = 0;
		} else
			close(pfd);
	}
	closedir(d);
	return found;
}

static int64_t expiry_for(int64_t ttl_ns)
{
	/* whole seconds: some network filesystems keep no finer mtime */
	int64_t e = sw_now_ns() + ttl_ns;
	return (e + SW_NS_PER_SEC - 1) / SW_NS_PER_SEC * SW_NS_PER_SEC;
}

/* The lease is the file's mtime.  Setting it takes the file's owner (or
 * root): an item added by another user cannot be leased, and must not be
 * claimed with a lease that silently did not stick.  -1 with errno. */
static int set_expiry(int dfd, const char *name, int64_t expiry_ns)
{
	struct timespec ts[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = expiry_ns / SW_NS_PER_SEC, .tv_nsec = 0 },
	};
	return utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int lease_err(struct sw_queue *q, const char *id)
{
	if (errno == EPERM || errno == EACCES)
		return qerr(q, EX_NOPERM, "cannot set the lease on item %s: it belongs to another user "
			    "(claim as the user who added it, or as root)", id);
	return qerr_errno(q, "setting the lease");
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * SW_NS_PER_SEC + st->st_mtim.tv_nsec;
}

static json_t *claim_view(json_t *item, uint64_t token, int64_t expiry_ns)
{
	json_object_set_new(item, "attempt", json_integer(sw_json_int(item, "attempt", 0) + 1));
	json_object_set_new(item, "token", json_integer((json_int_t)token));
	sw_json_set_time(item, "lease_expires_at", expiry_ns);
	return item_view(item, "claimed");
}

static uint64_t new_token(const json_t *item)
{
	/* the claim count in the high bits makes tokens grow claim by claim;
	 * the random low bits make the claimed name one only we produce */
	uint64_t gen = (uint64_t)sw_json_int(item, "gen", 0) + 1;
	return gen << 32 | (sw_rand32() | 1u);
}

static void maybe_maintain(struct sw_queue *q);

/* Tries to take the entry c names.  0 won, 1 lost the race, -1 error. */
static int claim_entry(struct sw_queue *q, struct cand *c, int64_t ttl_ns, json_t **out)
{
	char rel[PATH_LEN], claimed[PATH_LEN];
	snprintf(rel, sizeof rel, "%lld/%s", c->bucket, c->key);
	/* the content of a pending entry never changes: reading it before
	 * the rename is safe, and gives the claim count for the token */
	json_t *item = sw_json_read(c->pfd, rel, q->item_max + SW_ITEM_SLACK);
	if (!item)
		return errno == ENOENT ? 1 : -1;
	int64_t ttl = ttl_ns > 0 ? ttl_ns : sw_json_int(item, "timeout", 300) * SW_NS_PER_SEC;
	int64_t expiry = expiry_for(ttl);
	uint64_t token = new_token(item);
	snprintf(claimed, sizeof claimed, "claimed/%s.%llu", item_id(item), (unsigned long long)token);
	/* the lease is on the file before it is claimed, so no reaper can see
	 * a fresh claim as expired */
	if (set_expiry(c->pfd, rel, expiry) < 0) {
		int e = errno;
		json_decref(item);
		errno = e;
		return e == ENOENT ? 1 : -2;
	}
	if (sw_rename(c->pfd, rel, q->fd, claimed) < 0) {
		int e = errno;
		json_decref(item);
		errno = e;
		return e == ENOENT ? 1 : -1;
	}
	(void)set_expiry(q->fd, claimed, expiry);   /* a loser may have touched it */
	sync_full(q);
	*out = claim_view(item, token, expiry);
	return 0;
}

int sw_queue_claim(struct sw_queue *q, const char *const *roles, size_t nroles,
		   int64_t ttl_ns, json_t **out)
{
	maybe_maintain(q);
	bool spread = false;
	for (int round = 0; round < 1000; round++) {
		struct cand best = { .pfd = -1 };
		int found = 1;
		for (int p = 0; p <= SW_PRIO_MAX && found; p++)
			found = prio_best(q, p, roles, nroles, &best, spread);
		if (found)
			return qerr(q, EX_TEMPFAIL, "nothing to claim in queue '%s'", q->name);
		int r = claim_entry(q, &best, ttl_ns, out);
		close(best.pfd);
		if (r == 0)
			return 0;
		if (r == -2) {
			const char *dot = strchr(best.key, '.');   /* <order>.<id> */
			return lease_err(q, dot ? dot + 1 : best.key);
		}
		if (r < 0)
			return qerr_errno(q, "claiming");
		spread = true;   /* lost a race: spread out over the next entries */
	}
	return qerr(q, EX_TEMPFAIL, "too much contention in queue '%s'", q->name);
}

/* ---- waiting ----------------------------------------------------------- */

static int64_t poll_interval(const struct sw_queue *q)
{
	const char *s = getenv("SW_POLL");
	int64_t ns;
	if (s && *s && sw_parse_duration(s, &ns) == 0 && ns > 0)
		return ns;
	/* inotify sees only this host's changes: poll often where other
	 * hosts can add work, rarely where inotify sees everything */
	return sw_is_netfs(q->fd) ? SW_NS_PER_SEC : 30 * SW_NS_PER_SEC;
}

struct due { int64_t min, skew; };

static void due_min(struct due *d, int64_t t)
{
	if (t > 0 && (d->min == 0 || t < d->min))
		d->min = t;
}

static int due_timed(int dfd, const char *name, void *arg)
{
	(void)dfd;
	if (strlen(name) > 17 && name[16] == '.')
		due_min(arg, (int64_t)strtoull(name, NULL, 16));
	return 0;
}

static int due_claim(int dfd, const char *name, void *arg)
{
	struct due *d = arg;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		due_min(d, mtime_ns(&st) + d->skew + SW_NS_PER_SEC);
	return 0;
}

static int each_entry(int base, const char *rel, int (*fn)(int dfd, const char *name, void *arg), void *arg);

/* When the next delayed item falls due or the next lease can be reaped;
 * 0 when neither. */
int64_t sw_queue_next_due(struct sw_queue *q)
{
	struct due d = { 0, q->ws->skew_ns };
	each_entry(q->fd, "timed", due_timed, &d);
	each_entry(q->fd, "claimed", due_claim, &d);
	return d.min;
}

static int wake_watch(struct sw_queue *q)
{
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return -1;
	char path[PATH_LEN + 300];
	snprintf(path, sizeof path, "%s/queues/%s/wake", q->ws->path, q->name);
	if (inotify_add_watch(ifd, path, IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF) < 0) {
		close(ifd);
		return -1;
	}
	return ifd;
}

void sw_queue_wait(struct sw_queue *q, int64_t deadline_ns)
{
	int64_t now = sw_now_ns();
	if (deadline_ns <= now)
		return;
	if (q->ifd < 0) {
		/* first call: set the watch up and return at once, so the caller
		 * looks again with the watch in place and misses nothing */
		q->ifd = wake_watch(q);
		if (q->ifd >= 0)
			return;
	}
	int64_t iv = poll_interval(q);
	/* jitter, so that pollers on many hosts do not arrive together */
	iv = iv / 2 + (int64_t)sw_rand_below(1000000) * (iv / 2000000);
	/* nothing touches `wake` when a delayed item falls due or a lease
	 * runs out: look again by then */
	int64_t due = sw_queue_next_due(q);
	if (due > 0 && due - now < iv)
		iv = due - now > 50000000 ? due - now : 50000000;
	if (deadline_ns - now < iv)
		iv = deadline_ns - now;
	if (q->ifd < 0) {
		sw_sleep_ns(iv);
		return;
	}
	struct pollfd pfd = { .fd = q->ifd, .events = POLLIN };
	int ms = (int)((iv + 999999) / 1000000);
	if (poll(&pfd, 1, ms) > 0) {
		char buf[4096];
		while (read(q->ifd, buf, sizeof buf) > 0)
			;
	}
}

/* ---- claimed items: renew, done, fail, release -------------------- */

static void claim_rel(char rel[PATH_LEN], const char *id, uint64_t token)
{
	snprintf(rel, PATH_LEN, "claimed/%s.%llu", id, (unsigned long long)token);
}

static int not_claimed(struct sw_queue *q, const char *id, uint64_t token)
{
	return qerr(q, SW_EX_FALSE, "item %s is not claimed with token %llu (stale token, or not claimed)",
		    id, (unsigned long long)token);
}

/* Reads the claim id/token; SW_EX_FALSE when there is none. */
static int claim_read(struct sw_queue *q, const char *id, uint64_t token, json_t **item)
{
	char rel[PATH_LEN];
	const char *why = sw_name_problem(id);
	if (why)
		return qerr(q, EX_DATAERR, "bad id: %s", why);
	claim_rel(rel, id, token);
	*item = sw_json_read(q->fd, rel, q->item_max + SW_ITEM_SLACK);
	if (!*item)
		return errno == ENOENT ? not_claimed(q, id, token) : qerr_errno(q, "reading claim");
	return 0;
}

int sw_queue_renew(struct sw_queue *q, const char *id, uint64_t token, int64_t ttl_ns, json_t **out)
{
	json_t *item;
	int rc = claim_read(q, id, token, &item);
	if (rc)
		return rc;
	char rel[PATH_LEN];
	struct stat st;
	claim_rel(rel, id, token);
	if (fstatat(q->fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		json_decref(item);
		return not_claimed(q, id, token);
	}
	/* past expiry (by this clock), a reaper on a host whose clock runs
	 * ahead may take it any moment: renewing then would promise what we
	 * cannot keep */
	if (sw_now_ns() > mtime_ns(&st)) {
		json_decref(item);
		return qerr(q, SW_EX_FALSE, "the claim on %s has expired", id);
	}
	int64_t ttl = ttl_ns > 0 ? ttl_ns : sw_json_int(item, "timeout", 300) * SW_NS_PER_SEC;
	int64_t expiry = expiry_for(ttl);
	if (set_expiry(q->fd, rel, expiry) < 0) {
		json_decref(item);
		return errno == ENOENT ? not_claimed(q, id, token) : lease_err(q, id);
	}
	if (fstatat(q->fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		json_decref(item);
		return not_claimed(q, id, token);
	}
	*out = claim_view(item, token, expiry);
	return 0;
}

static json_t *finished(json_t *item, uint64_t token, const char *state)
{
	json_object_set_new(item, "attempt", json_integer(sw_json_int(item, "attempt", 0) + 1));
	json_object_set_new(item, "gen", json_integer((json_int_t)(token >> 32)));
	json_object_set_new(item, "state", json_string(state));
	return item;
}

static int finish_claim(struct sw_queue *q, const char *id, uint64_t token, json_t *next,
			bool durable, json_t **out)
{
	char rel[PATH_LEN];
	claim_rel(rel, id, token);
	int rc = transition(q, q->fd, rel, next, durable);
	if (rc == SW_EX_FALSE)
		rc = not_claimed(q, id, token);
	if (rc == 0 && out)
		*out = item_view(json_incref(next), sw_json_str(next, "state"));
	json_decref(next);
	return rc;
}

int sw_queue_done(struct sw_queue *q, const char *id, uint64_t token, json_t *result, json_t **out)
{
	json_t *item;
	int rc = claim_read(q, id, token, &item);
	if (rc)
		return rc;
	finished(item, token, "done");
	if (result)
		json_object_set(item, "result", result);
	sw_json_set_time(item, "done_at", sw_now_ns());
	return finish_claim(q, id, token, item, true, out);
}

static int64_t backoff_ns(int64_t attempt)
{
	int64_t base = SW_NS_PER_SEC, d;
	const char *s = getenv("SW_BACKOFF_BASE");
	if (s && *s && sw_parse_duration(s, &d) == 0)
		base = d;
	double b = (double)base;
	for (int64_t i = 1; i < attempt && b < (double)BACKOFF_CAP_NS; i++)
		b *= 2;
	if (b > (double)BACKOFF_CAP_NS)
		b = (double)BACKOFF_CAP_NS;
	/* "equal jitter": between half and all of the exponential delay */
	return (int64_t)(b * (0.5 + sw_rand_below(1000001) / 2e6));
}

/* The next state of a claim that did not succeed: pending again (after
 * retry_ns) while attempts are left, else dead. */
static json_t *retry_or_dead(json_t *item, uint64_t token, const char *error, int64_t retry_ns)
{
	int64_t used = sw_json_int(item, "attempt", 0) + 1;
	bool dead = used >= sw_json_int(item, "max_attempts", SW_ATTEMPTS_DEFAULT);
	finished(item, token, dead ? "dead" : "pending");
	if (error)
		json_object_set_new(item, "last_error", json_string(error));
	int64_t now = sw_now_ns();
	sw_json_set_time(item, dead ? "dead_at" : "failed_at", now);
	json_object_del(item, "not_before");
	json_object_del(item, "not_before_unix_ns");
	if (!dead && retry_ns > 0)
		sw_json_set_time(item, "not_before", now + retry_ns);
	return item;
}

int sw_queue_fail(struct sw_queue *q, const char *id, uint64_t token, const char *error,
		  int64_t retry_in_ns, json_t **out)
{
	json_t *item;
	int rc = claim_read(q, id, token, &item);
	if (rc)
		return rc;
	int64_t used = sw_json_int(item, "attempt", 0) + 1;
	int64_t retry = retry_in_ns >= 0 ? retry_in_ns : backoff_ns(used);
	retry_or_dead(item, token, error ? error : "failed", retry);
	bool dead = !strcmp(sw_json_str(item, "state"), "dead");
	return finish_claim(q, id, token, item, dead, out);
}

int sw_queue_release(struct sw_queue *q, const char *id, uint64_t token, json_t **out)
{
	json_t *item;
	int rc = claim_read(q, id, token, &item);
	if (rc)
		return rc;
	/* a release does not count as an attempt */
	json_object_set_new(item, "gen", json_integer((json_int_t)(token >> 32)));
	json_object_set_new(item, "state", json_string("pending"));
	return finish_claim(q, id, token, item, false, out);
}

/* ---- finding items by id -------------------------------------------- */

/* Splits a claimed/ name "<id>.<token>" into its token; false for other
 * names (staging leftovers, temporary files). */
static bool claim_name(const char *name, char id[PATH_LEN], uint64_t *token)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name || sw_hidden(name) || !sw_token_parse(dot + 1, token))
		return false;
	snprintf(id, PATH_LEN, "%.*s", (int)(dot - name), name);
	return true;
}

/* Calls fn(dirfd, name) for each visible entry of dirfd/rel. */
static int each_entry(int base, const char *rel, int (*fn)(int dfd, const char *name, void *arg), void *arg)
{
	int fd = openat(base, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) { close(fd); return -1; }
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)))
		if (!sw_hidden(de->d_name))
			rc = fn(dirfd(d), de->d_name, arg);
	closedir(d);
	return rc;
}

/* Walks every pending bucket: fn(bucket dirfd, entry name, arg). */
struct walk { int (*fn)(int dfd, const char *name, void *arg); void *arg; };

static int walk_bucket(int pfd, const char *name, void *arg)
{
	if (strspn(name, "0123456789") != strlen(name))
		return 0;   /* the head and tail hints */
	struct walk *w = arg;
	return each_entry(pfd, name, w->fn, w->arg);
}
static int walk_part(int dfd, const char *name, void *arg) { return each_entry(dfd, name, walk_bucket, arg); }
static int walk_prio(int dfd, const char *name, void *arg) { return each_entry(dfd, name, walk_part, arg); }

static int walk_pending(struct sw_queue *q, int (*fn)(int dfd, const char *name, void *arg), void *arg)
{
	struct walk w = { fn, arg };
	return each_entry(q->fd, "pending", walk_prio, &w);
}

struct find { const char *id; int found; char name[PATH_LEN]; int dfd; };

/* An entry "<16 hex>.<id>" (bucket or timed) of the id sought. */
static int match_keyed(int dfd, const char *name, void *arg)
{
	struct find *f = arg;
	if (strlen(name) > 17 && name[16] == '.' && !strcmp(name + 17, f->id)) {
		f->dfd = dup(dfd);
		snprintf(f->name, sizeof f->name, "%s", name);
		return f->found = 1;
	}
	return 0;
}

static int match_claim(int dfd, const char *name, void *arg)
{
	struct find *f = arg;
	char id[PATH_LEN];
	uint64_t token;
	if (claim_name(name, id, &token) && !strcmp(id, f->id)) {
		f->dfd = dup(dfd);
		snprintf(f->name, sizeof f->name, "%s", name);
		return f->found = 1;
	}
	return 0;
}

/* Where item id is: *state and an open dir + name.  SW_EX_FALSE if nowhere.
 * Pending items are found by walking the buckets: it costs what the queue
 * holds, which is why claims never do it. */
static int locate(struct sw_queue *q, const char *id, const char **state, struct find *f)
{
	const char *why = sw_name_problem(id);
	if (why)
		return qerr(q, EX_DATAERR, "bad id: %s", why);
	memset(f, 0, sizeof *f);
	f->id = id;
	f->dfd = -1;
	static const char *const direct[] = { "done", "dead", "cancelled", "blocked" };
	for (int i = 0; i < 4; i++) {
		char rel[PATH_LEN];
		snprintf(rel, sizeof rel, "%s/%s", direct[i], id);
		if (faccessat(q->fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			*state = i == 3 ? "pending" : direct[i];
			f->dfd = dup(q->fd);
			snprintf(f->name, sizeof f->name, "%s", rel);
			return 0;
		}
	}
	if (each_entry(q->fd, "claimed", match_claim, f) > 0) { *state = "claimed"; return 0; }
	if (each_entry(q->fd, "timed", match_keyed, f) > 0) { *state = "pending"; return 0; }
	if (walk_pending(q, match_keyed, f) > 0) { *state = "pending"; return 0; }
	return qerr(q, SW_EX_FALSE, "no item %s in queue '%s'", id, q->name);
}

/* ---- ids given by users: added once, even across crashes ------------ */

/* ids/<id> is created empty and exclusively before the item is placed,
 * and filled once it is placed.  An empty marker is an add in progress or
 * one that crashed in between: the item may then exist or not, so after
 * the stage grace it is looked for, and when it is nowhere the marker is
 * taken over (else a retry would say "added: false" for an item that
 * never was).  Of racing retries, the one whose exclusive create of
 * .tmp.take.<inode>.<id> succeeds takes over; the rest report the id as
 * existing, as the winner adds it. */
static void id_commit(struct sw_batch *bt, const char *id)
{
	/* best effort: an empty marker costs a look-up later, no more */
	sw_replace(bt->idsfd, id, "1\n", 2, SW_SYNC_OFF, false);
}

static int stage_has(int dfd, const char *name, void *arg)
{
	struct find *f = arg;
	size_t n = strlen(name);
	if (n < 4 || (strcmp(name + n - 4, ".old") && strcmp(name + n - 4, ".new")))
		return 0;
	json_t *item = sw_json_read(dfd, name, SIZE_MAX / 2);
	int found = item && sw_json_str(item, "id") && !strcmp(sw_json_str(item, "id"), f->id);
	json_decref(item);
	return f->found = found;
}

static bool id_somewhere(struct sw_queue *q, const char *id)
{
	const char *state;
	struct find f;
	if (locate(q, id, &state, &f) == 0) {
		close(f.dfd);
		return true;
	}
	/* in a transition a crash interrupted: reap will put it back */
	memset(&f, 0, sizeof f);
	f.id = id;
	return each_entry(q->fd, "stage", stage_has, &f) > 0;
}

static int id_reserve(struct sw_batch *bt, const char *id, bool *existed)
{
	struct sw_queue *q = bt->q;
	for (int tries = 0; tries < 10; tries++) {
		if (sw_create_excl(bt->idsfd, id, "", 0, SW_SYNC_OFF, false) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
		struct stat st;
		if (fstatat(bt->idsfd, id, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;   /* purged meanwhile */
			return -1;
		}
		if (st.st_size > 0 || sw_now_ns() - mtime_ns(&st) <= STAGE_GRACE_NS + q->ws->skew_ns) {
			*existed = true;
			return 0;
		}
		if (id_somewhere(q, id)) {
			id_commit(bt, id);
			*existed = true;
			return 0;
		}
		char take[PATH_LEN];
		snprintf(take, sizeof take, SW_TMP_PREFIX "take.%llu.%s", (unsigned long long)st.st_ino, id);
		if (sw_create_excl(bt->idsfd, take, "", 0, SW_SYNC_OFF, false) < 0) {
			if (errno != EEXIST)
				return -1;
			*existed = true;    /* another retry took it over */
			return 0;
		}
		/* only the winner removes the orphan; a marker made after that is
		 * a normal add's, found by the next create */
		struct stat now;
		if (fstatat(bt->idsfd, id, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == st.st_ino)
			unlinkat(bt->idsfd, id, 0);
	}
	errno = EAGAIN;
	return -1;
}

/* The public view of the item in dfd/name, found in state. */
static json_t *view_at(struct sw_queue *q, int dfd, const char *name, const char *state)
{
	json_t *item = sw_json_read(dfd, name, q->item_max + SW_ITEM_SLACK);
	if (!item)
		return NULL;
	if (!strcmp(state, "claimed")) {
		char id[PATH_LEN];
		uint64_t token;
		struct stat st;
		const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
		if (claim_name(base, id, &token) && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return claim_view(item, token, mtime_ns(&st));
	}
	return item_view(item, state);
}

int sw_queue_show(struct sw_queue *q, const char *id, json_t **out)
{
	const char *state;
	struct find f;
	int rc = locate(q, id, &state, &f);
	if (rc)
		return rc;
	*out = view_at(q, f.dfd, f.name, state);
	close(f.dfd);
	if (!*out)
		return errno == ENOENT ? qerr(q, SW_EX_FALSE, "item %s moved while read; try again", id)
				       : qerr_errno(q, "reading item");
	return 0;
}

int sw_queue_cancel(struct sw_queue *q, const char *id, json_t **out)
{
	const char *state;
	struct find f;
	int rc = locate(q, id, &state, &f);
	if (rc)
		return rc;
	if (strcmp(state, "pending") && strcmp(state, "claimed")) {
		close(f.dfd);
		return qerr(q, SW_EX_FALSE, "item %s is %s: only pending or claimed items can be cancelled", id, state);
	}
	json_t *item = sw_json_read(f.dfd, f.name, q->item_max + SW_ITEM_SLACK);
	if (!item) {
		close(f.dfd);
		return qerr(q, SW_EX_FALSE, "item %s moved while being cancelled; try again", id);
	}
	json_object_set_new(item, "state", json_string("cancelled"));
	sw_json_set_time(item, "cancelled_at", sw_now_ns());
	char cid[PATH_LEN];
	uint64_t token;
	if (!strcmp(state, "claimed") && claim_name(strrchr(f.name, '/') ? strrchr(f.name, '/') + 1 : f.name, cid, &token))
		json_object_set_new(item, "gen", json_integer((json_int_t)(token >> 32)));
	rc = transition(q, f.dfd, f.name, item, false);
	close(f.dfd);
	if (rc == SW_EX_FALSE)
		rc = qerr(q, SW_EX_FALSE, "item %s moved while being cancelled; try again", id);
	if (rc == 0 && out)
		*out = item_view(json_incref(item), "cancelled");
	json_decref(item);
	return rc;
}

int sw_queue_requeue(struct sw_queue *q, const char *id, json_t **out)
{
	const char *state;
	struct find f;
	int rc = locate(q, id, &state, &f);
	if (rc)
		return rc;
	if (strcmp(state, "dead") && strcmp(state, "cancelled")) {
		close(f.dfd);
		return qerr(q, SW_EX_FALSE, "item %s is %s: only dead or cancelled items can be requeued", id, state);
	}
	json_t *item = sw_json_read(f.dfd, f.name, q->item_max + SW_ITEM_SLACK);
	if (!item) {
		close(f.dfd);
		return qerr(q, SW_EX_FALSE, "item %s moved while being requeued; try again", id);
	}
	json_object_set_new(item, "state", json_string("pending"));
	json_object_set_new(item, "attempt", json_integer(0));
	json_object_del(item, "not_before");
	json_object_del(item, "not_before_unix_ns");
	rc = transition(q, f.dfd, f.name, item, true);
	close(f.dfd);
	if (rc == SW_EX_FALSE)
		rc = qerr(q, SW_EX_FALSE, "item %s moved while being requeued; try again", id);
	if (rc == 0 && out)
		*out = item_view(json_incref(item), "pending");
	json_decref(item);
	return rc;
}

/* ---- listing and counting ------------------------------------------ */

struct lister {
	struct sw_queue *q;
	const char *state;
	int (*fn)(json_t *item, void *arg);
	void *arg;
};

static int list_one(int dfd, const char *name, void *arg)
{
	struct lister *l = arg;
	json_t *item = view_at(l->q, dfd, name, l->state);
	if (!item)
		return 0;   /* moved on while we looked */
	int rc = l->fn(item, l->arg);
	json_decref(item);
	return rc;
}

static int list_claim(int dfd, const char *name, void *arg)
{
	char id[PATH_LEN];
	uint64_t token;
	return claim_name(name, id, &token) ? list_one(dfd, name, arg) : 0;
}

int sw_queue_list(struct sw_queue *q, int mask, int (*fn)(json_t *item, void *arg), void *arg)
{
	struct lister l = { q, "pending", fn, arg };
	int rc = 0;
	if (mask & SW_ST_PENDING) {
		rc = walk_pending(q, list_one, &l);
		if (rc == 0) rc = each_entry(q->fd, "timed", list_one, &l);
		if (rc == 0) rc = each_entry(q->fd, "blocked", list_one, &l);
	}
	if (rc == 0 && (mask & SW_ST_CLAIMED)) {
		l.state = "claimed";
		rc = each_entry(q->fd, "claimed", list_claim, &l);
	}
	for (int i = 2; i < 5 && rc == 0; i++)
		if (mask & (1 << i)) {
			l.state = state_names[i];
			rc = each_entry(q->fd, state_names[i], list_one, &l);
		}
	if (rc < 0)
		return qerr_errno(q, "listing");
	return rc;
}

struct counter { long long n; int64_t oldest; };

static int count_entry(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct counter *c = arg;
	c->n++;
	if (strlen(name) > 17 && name[16] == '.') {
		int64_t t = (int64_t)strtoull(name, NULL, 16);
		if (t > 0 && (c->oldest == 0 || t < c->oldest))
			c->oldest = t;
	}
	return 0;
}

static int count_claim(int dfd, const char *name, void *arg)
{
	char id[PATH_LEN];
	uint64_t token;
	return claim_name(name, id, &token) ? count_entry(dfd, name, arg) : 0;
}

static long long count_dir(struct sw_queue *q, const char *rel, int (*fn)(int, const char *, void *))
{
	struct counter c = {0, 0};
	each_entry(q->fd, rel, fn, &c);
	return c.n;
}

int sw_queue_stats(struct sw_queue *q, struct sw_queue_stats *st)
{
	memset(st, 0, sizeof *st);
	struct counter c = {0, 0};
	if (walk_pending(q, count_entry, &c) < 0)
		return qerr_errno(q, "counting");
	st->delayed = count_dir(q, "timed", count_entry);
	st->blocked = count_dir(q, "blocked", count_entry);
	st->pending = c.n + st->delayed + st->blocked;
	st->oldest_pending_ns = c.oldest;
	st->claimed = count_dir(q, "claimed", count_claim);
	st->done = count_dir(q, "done", count_entry);
	st->dead = count_dir(q, "dead", count_entry);
	st->cancelled = count_dir(q, "cancelled", count_entry);
	return 0;
}

int sw_queue_names(const struct sw_ws *ws, int (*fn)(const char *name, void *arg), void *arg)
{
	int fd = openat(ws->fd, "queues", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) { close(fd); return -1; }
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)))
		if (!sw_hidden(de->d_name))
			rc = fn(de->d_name, arg);
	closedir(d);
	return rc;
}

/* ---- maintenance: reaping, recovery, promotion ---------------------- */

struct maint { struct sw_queue *q; int64_t now; long long reaped; struct bucket b; bool full; };

static int reap_claim(int dfd, const char *name, void *arg)
{
	struct maint *m = arg;
	char id[PATH_LEN];
	uint64_t token;
	struct stat st;
	if (!claim_name(name, id, &token) || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	/* the holder believes in its lease until expiry by its own clock;
	 * we wait out the skew margin on top */
	if (mtime_ns(&st) + m->q->ws->skew_ns >= m->now)
		return 0;
	json_t *item = sw_json_read(dfd, name, m->q->item_max + SW_ITEM_SLACK);
	if (!item)
		return 0;
	retry_or_dead(item, token, "lease expired", 0);
	bool dead = !strcmp(sw_json_str(item, "state"), "dead");
	if (transition(m->q, dfd, name, item, dead) == 0)
		m->reaped++;
	json_decref(item);
	return 0;
}

static int stage_entry(int dfd, const char *name, void *arg);

/* Finishes a transition whose process died: .new goes where it says; an
 * .old alone (the new content never got written) goes back to the state
 * its content describes, a claim thus back to pending. */
static int recover_stage(struct maint *m, int sfd, const char *name)
{
	size_t n = strlen(name);
	bool is_new = n > 4 && !strcmp(name + n - 4, ".new");
	bool is_old = n > 4 && !strcmp(name + n - 4, ".old");
	if (!is_new && !is_old)
		return 0;
	char other[PATH_LEN];
	snprintf(other, sizeof other, "%.*s.new", (int)(n - 4), name);
	if (is_old && faccessat(sfd, other, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;   /* the .new will be handled on its own */
	json_t *item = sw_json_read(sfd, name, m->q->item_max + SW_ITEM_SLACK);
	if (!item)
		return 0;
	if (is_new) {
		snprintf(other, sizeof other, "%.*s.old", (int)(n - 4), name);
		unlinkat(sfd, other, 0);
	}
	if (!sw_json_str(item, "state"))
		json_object_set_new(item, "state", json_string("pending"));
	if (is_old) {
		/* it may have been a claim, whose token used gen + 1: the
		 * content is rewritten, so the next token is larger still */
		json_object_set_new(item, "gen", json_integer(sw_json_int(item, "gen", 0) + 1));
		transition(m->q, sfd, name, item, false);
	} else
		place(m->q, sfd, name, item);
	json_decref(item);
	return 0;
}

static int stage_entry(int dfd, const char *name, void *arg)
{
	struct maint *m = arg;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	int64_t age = m->now - mtime_ns(&st);
	if (age > STAGE_GRACE_NS + m->q->ws->skew_ns)
		recover_stage(m, dfd, name);
	return 0;
}

/* Temporary files are hidden from each_entry: this looks at them. */
static void clean_tmp(struct maint *m, const char *rel)
{
	int fd = openat(m->q->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) { close(fd); return; }
	struct dirent *de;
	struct stat st;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    m->now - mtime_ns(&st) > TMP_GRACE_NS)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static int promote_timed(int dfd, const char *name, void *arg)
{
	struct maint *m = arg;
	if (strlen(name) < 18 || name[16] != '.')
		return 0;
	if ((int64_t)strtoull(name, NULL, 16) > m->now)
		return 0;
	json_t *item = sw_json_read(dfd, name, m->q->item_max + SW_ITEM_SLACK);
	if (!item)
		return 0;
	/* place_pending, not a bucket: a delayed item may also wait for
	 * its `after` items */
	json_object_del(item, "not_before");
	json_object_del(item, "not_before_unix_ns");
	if (place_pending(m->q, &m->b, dfd, name, item, NULL) == 0)
		wake_waiters(m->q);
	json_decref(item);
	return 0;
}

static int promote_one(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct maint *m = arg;
	promote_blocked(m->q, &m->b, name);
	return 0;
}

/* The head hint of one partition back down to its lowest bucket, when a
 * bucket below it exists: items there would never be claimed. */
static int head_repair(int dfd, const char *part, void *arg)
{
	(void)arg;
	int pfd = openat(dfd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return 0;
	DIR *d = fdopendir(pfd);
	if (!d) {
		close(pfd);
		return 0;
	}
	long long low = 0, head = read_hint(pfd, "head");
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long long n = strtoll(de->d_name, &end, 10);
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && !*end && (!low || n < low))
			low = n;
	}
	if (low && low < head)
		write_hint(pfd, "head", low);
	closedir(d);
	return 0;
}

static void maintain(struct sw_queue *q, struct maint *m)
{
	m->q = q;
	m->now = sw_now_ns();
	bucket_init(&m->b);
	each_entry(q->fd, "claimed", reap_claim, m);
	each_entry(q->fd, "stage", stage_entry, m);
	each_entry(q->fd, "timed", promote_timed, m);
	each_entry(q->fd, "blocked", promote_one, m);
	clean_tmp(m, "stage");
	if (m->full) {
		clean_tmp(m, "ids");
		clean_tmp(m, "claimed");
		for (int p = 0; p <= SW_PRIO_MAX; p++) {
			char rel[32];
			snprintf(rel, sizeof rel, "pending/%d", p);
			each_entry(q->fd, rel, head_repair, NULL);
		}
	}
	bucket_done(&m->b);
}

/* `next` does the maintenance lazily, at most once a second per queue, by
 * whichever claimer finds it due first. */
static void maybe_maintain(struct sw_queue *q)
{
	int64_t now = sw_now_ns();
	long long due = read_hint(q->fd, "maint");
	/* a hint further ahead than one period came from a host whose clock
	 * is fast: it must not stop maintenance here until our clock gets
	 * there */
	if (due > now / SW_NS_PER_SEC && due <= (now + MAINT_EVERY_NS + q->ws->skew_ns) / SW_NS_PER_SEC)
		return;
	int lk = sw_lock(q->fd, "maint.lock", LOCK_EX, 0);
	if (lk < 0)
		return;
	write_hint(q->fd, "maint", (now + MAINT_EVERY_NS) / SW_NS_PER_SEC);
	struct maint m = { .full = false };
	maintain(q, &m);
	sw_unlock(lk);
}

int sw_queue_reap(struct sw_queue *q, long long *reaped)
{
	int lk = sw_lock(q->fd, "maint.lock", LOCK_EX, SW_NS_PER_SEC);
	struct maint m = { .full = true };
	maintain(q, &m);
	if (lk >= 0)
		sw_unlock(lk);
	*reaped = m.reaped;
	return 0;
}

struct purger { struct sw_queue *q; int64_t cutoff; long long n; };

static int purge_one(int dfd, const char *name, void *arg)
{
	struct purger *p = arg;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || mtime_ns(&st) > p->cutoff)
		return 0;
	if (unlinkat(dfd, name, 0) == 0) {
		char rel[PATH_LEN];
		snprintf(rel, sizeof rel, "ids/%s", name);
		unlinkat(p->q->fd, rel, 0);   /* the id may be used again */
		p->n++;
	}
	return 0;
}

int sw_queue_purge(struct sw_queue *q, int mask, int64_t older_than_ns, long long *purged)
{
	if (mask & (SW_ST_PENDING | SW_ST_CLAIMED))
		return qerr(q, EX_USAGE, "only done, dead and cancelled items can be purged");
	struct purger p = { q, sw_now_ns() - older_than_ns, 0 };
	for (int i = 2; i < 5; i++)
		if ((mask & (1 << i)) && each_entry(q->fd, state_names[i], purge_one, &p) < 0)
			return qerr_errno(q, "purging");
	*purged = p.n;
	return 0;
}
