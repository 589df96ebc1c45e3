/* queue_deps.c — items that wait for others (`after`).
 *
 * blocked/<id> holds the waiting item; deps/<dep>/<id> marks that id
 * waits for dep.  Marks go first, then the item, then a second look:
 * whoever finishes a dependency either sees the mark or has already
 * finished when we look again, so no item waits for ever.  The ids come
 * from the item's content, so each was checked as a name (item_check)
 * before it names a directory entry here. */
#include "queue_int.h"
#include "clock.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool dep_done(struct sw_queue *q, const char *id)
{
	int dfd = qdir(q, QD_DONE);
	return dfd >= 0 && !sw_name_problem(id) && SW_NOINTR(faccessat(dfd, id, F_OK, AT_SYMLINK_NOFOLLOW)) == 0;
}

bool deps_done(struct sw_queue *q, const json_t *item)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e)
		if (!json_is_string(e) || !dep_done(q, json_string_value(e)))
			return false;
	return true;
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
	if (deps_done(q, item)) {
		/* not_before stays as the file says: a delayed item waits on */
		rc = place_pending(q, b, bl, id, item, NULL);
		if (rc < 0 && errno == ENOENT)
			rc = 0;      /* someone else promoted it */
		else if (rc == 0)
			wake_waiters(q);
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
	struct release r = { .q = q };
	bucket_init(&r.b);
	if (each_entry_in(deps, id, release_one, &r) < 0 && (errno == ELOOP || errno == ENOTDIR))
		quarantine(q, deps, id, "deps", "not a directory");
	bucket_done(&r.b);
	SW_NOINTR(unlinkat(deps, id, AT_REMOVEDIR));
}
