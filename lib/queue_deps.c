/* queue_deps.c — items that wait for others (`after`).
 *
 * blocked/<id> holds the waiting item; deps/<dep>/<id> marks that id
 * waits for dep.  Marks go first, then the item, then a second look:
 * whoever finishes a dependency (done, dead or cancelled) either sees the
 * mark or has already finished when we look again, so no item waits for
 * ever; maintenance looks at every blocked item too, for a finisher that
 * died between its move and its look.  An item whose dependency dies or
 * is cancelled does what its on_dep_fail says: dead (the default) or
 * cancel, at once, or run once every dependency has finished either way.
 * The ids come from the item's content, so each was checked as a name
 * (item_check) before it names a directory entry here. */
#include "queue_int.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool in_dir(struct sw_queue *q, enum qdir d, const char *id)
{
	int dfd = qdir(q, d);
	return dfd >= 0 && SW_NOINTR(faccessat(dfd, id, F_OK, AT_SYMLINK_NOFOLLOW)) == 0;
}

const char *sw_queue_ended(struct sw_queue *q, const char *id)
{
	if (!id || sw_name_problem(id))
		return NULL;
	return in_dir(q, QD_DONE, id) ? "done" : in_dir(q, QD_DEAD, id) ? "dead"
	     : in_dir(q, QD_CANCELLED, id) ? "cancelled" : NULL;
}

enum deps deps_verdict(struct sw_queue *q, const json_t *item, char failed[NAME_LEN], const char **how)
{
	bool run = sw_dep_fail_parse(sw_json_str(item, "on_dep_fail")) == SW_DEP_FAIL_RUN;
	bool waiting = false;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e) {
		const char *end = sw_queue_ended(q, json_string_value(e));
		if (!end) {
			waiting = true;
		} else if (strcmp(end, "done") && !run) {
			snprintf(failed, NAME_LEN, "%s", json_string_value(e));
			*how = end;
			return DEPS_FAILED;
		}
	}
	return waiting ? DEPS_WAIT : DEPS_READY;
}

int deps_mark(struct sw_queue *q, const json_t *item)
{
	int deps = qdir(q, QD_DEPS);
	if (deps < 0)
		return -1;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e) {
		const char *dep = json_string_value(e);
		if (!dep || sw_name_problem(dep)) {
			errno = EINVAL;
			return -1;
		}
		int dfd = sw_open_dir(deps, dep, true);
		if (dfd < 0)
			return -1;
		int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
		int fd = SW_NOINTR(openat(dfd, item_id(item), flags, 0666));
		if (fd < 0 && errno == EEXIST)   /* NFS O_CREAT race: it exists */
			fd = SW_NOINTR(openat(dfd, item_id(item), flags, 0666));
		int err = errno;
		close(dfd);
		if (fd < 0) {
			errno = err;
			return -1;
		}
		close(fd);
	}
	return 0;
}

int sw_queue_deps(struct sw_queue *q, const json_t *item, int (*fn)(json_t *dep, void *arg), void *arg)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e) {
		const char *id = json_string_value(e);
		json_t *dep = NULL;
		int rc = sw_queue_show(q, id, &dep);
		if (rc == SW_EX_FALSE)
			dep = json_pack("{s:s,s:s,s:s}", "id", id, "queue", q->name, "state", "missing");
		else if (rc)
			return rc;
		rc = fn(dep, arg);
		json_decref(dep);
		if (rc)
			return rc;
	}
	return 0;
}

struct dep_failure { const char *dep, *how; };

static json_t *dep_failed_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)rc;
	const struct dep_failure *f = arg;
	bool cancel = sw_dep_fail_parse(sw_json_str(item, "on_dep_fail")) == SW_DEP_FAIL_CANCEL;
	char why[NAME_LEN + 64];
	snprintf(why, sizeof why, "after %s, which %s", f->dep, !strcmp(f->how, "dead") ? "is dead" : "was cancelled");
	json_object_set_new(item, "state", json_string(cancel ? "cancelled" : "dead"));
	json_object_set_new(item, "last_error", json_string(why));
	sw_json_set_time(item, cancel ? "cancelled_at" : "dead_at", sw_now_ns());
	return item;
}

int promote_blocked(struct sw_queue *q, struct bucket *b, const char *id)
{
	int bl = qdir(q, QD_BLOCKED);
	if (bl < 0)
		return -1;
	json_t *item;
	char why[128];
	switch (item_read(q, bl, id, id, &item, NULL, why)) {
	case RD_OK:
		break;
	case RD_GONE:
	case RD_SKIP:
		return 0;
	case RD_DAMAGED:
		quarantine(q, bl, id, "blocked", why);
		return 0;
	default:
		return -1;
	}
	int rc = 0;
	char dep[NAME_LEN];
	struct dep_failure f = { dep, NULL };
	switch (deps_verdict(q, item, dep, &f.how)) {
	case DEPS_READY:
		/* not_before stays as the file says: a delayed item waits on */
		rc = place_pending(q, b, bl, id, item, NULL);
		if (rc < 0 && errno == ENOENT)
			rc = 0;      /* someone else promoted it */
		else if (rc == 0)
			wake_waiters(q);
		break;
	case DEPS_FAILED:
		/* SW_EX_FALSE: someone else moved it; another code: it stays
		 * blocked for the next look */
		if (txn_move(q, bl, id, SRC_PENDING, NULL, NULL, dep_failed_next, &f, true, NULL) != 0 &&
		    q->err.code != SW_EX_FALSE)
			sw_warn("%s", q->err.msg);
		break;
	case DEPS_WAIT:
		break;
	}
	json_decref(item);
	return rc;
}

struct release { struct sw_queue *q; struct bucket b; };

static int release_one(int dfd, const char *name, void *arg)
{
	struct release *r = arg;
	if (sw_name_problem(name))
		quarantine(r->q, dfd, name, "deps", "not an item id");
	else if (promote_blocked(r->q, &r->b, name) == 0)
		SW_NOINTR(unlinkat(dfd, name, 0));
	return 0;
}

void deps_release(struct sw_queue *q, const char *id)
{
	int deps = qdir(q, QD_DEPS);
	if (deps < 0 || sw_name_problem(id))
		return;
	int fd = sw_open_dir(deps, id, false);
	if (fd < 0) {   /* none waits for it (ENOENT): nothing to remove either */
		if (errno == ELOOP || errno == ENOTDIR)
			quarantine(q, deps, id, "deps", "not a directory");
		return;
	}
	struct release r = { .q = q };
	bucket_init(&r.b);
	each_entry(fd, release_one, &r);
	close(fd);
	bucket_done(&r.b);
	SW_NOINTR(unlinkat(deps, id, AT_REMOVEDIR));
}

bool deps_none(struct sw_queue *q)
{
	int deps = qdir(q, QD_DEPS);
	struct stat st;
	/* "." and its name in the queue: no deps/<id> below */
	return deps >= 0 && sw_nlink_counts_subdirs(deps) && fstat(deps, &st) == 0 && st.st_nlink == 2;
}

/* At most this many entries of deps/ are read to learn which ids are
 * waited for; more, and each id is looked up on its own. */
#define DEPS_WALK_MAX 1024

struct dep_names { char **v; size_t n; };

static int collect_dep(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct dep_names *d = arg;
	if (d->n == DEPS_WALK_MAX)
		return 1;
	if (!(d->v[d->n] = strdup(name)))
		return -1;
	d->n++;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* deps/'s entries, sorted: 0, or -1 when they are too many or cannot
 * be read (the caller then looks at each id). */
static int dep_names_read(struct sw_queue *q, struct dep_names *d)
{
	int deps = qdir(q, QD_DEPS);
	d->n = 0;
	d->v = deps < 0 ? NULL : malloc(DEPS_WALK_MAX * sizeof *d->v);
	if (!d->v || each_entry(deps, collect_dep, d) != 0)
		return -1;
	qsort(d->v, d->n, sizeof *d->v, cmp_name);
	return 0;
}

static void dep_names_free(struct dep_names *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i]);
	free(d->v);
}

void deps_release_many(struct sw_queue *q, const char *const *ids, size_t n)
{
	if (!n || deps_none(q))
		return;
	/* one walk of deps/ instead of a look at deps/<id> for each (on a
	 * network filesystem each look is a round trip).  An item that marks
	 * itself after the walk looks again at its dependency, which is
	 * placed already (see the top of this file). */
	struct dep_names d;
	bool walked = dep_names_read(q, &d) == 0;
	for (size_t i = 0; i < n; i++)
		if (!walked || bsearch(&ids[i], d.v, d.n, sizeof *d.v, cmp_name))
			deps_release(q, ids[i]);
	dep_names_free(&d);
}
