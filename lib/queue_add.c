/* queue_add.c — adding items, all-or-nothing as far as the disk allows,
 * and ids given by users, added once even across crashes and stalls.
 *
 * An item with a generated id is written under a temporary name in stage/
 * and renamed into place: it exists once it is placed.  An item with an
 * id a user gave is written as stage/<nonce>.a.<id>, then hard-linked as
 * ids/<id>: that link is the exclusive decision (EEXIST: the id was added
 * before), and the stage file is then placed.  A crash or a stall after
 * the link leaves the stage file, which recovery places (the adder's own
 * rename then finds it gone: the same outcome); before the link, recovery
 * takes the stage file away first, so a stalled adder's link fails and it
 * tries again.  ids/<id> stays as the marker until the item is purged. */
#include "queue_int.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "hash.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What was added, to take it back if the batch fails: compact, because a
 * batch may hold millions. */
struct added {
	char *rel;              /* below the state directory d: "[sub/]name" */
	char *marker;           /* the id whose marker we made, or NULL */
	unsigned char d;
	bool placed;            /* false: recovery placed it, we know not where */
};

/* Ids a batch will hold (open addressing; only filled on request). */
struct idset { char **slot; size_t cap, n; };

struct sw_batch {
	struct sw_queue *q;
	int sfd, idsfd;
	struct bucket b;
	struct added *rec;
	size_t n, cap;
	struct idset expect;
};

static size_t idset_pos(const struct idset *s, const char *id)
{
	size_t i = (size_t)sw_xxh64(id, strlen(id), 0) & (s->cap - 1);
	while (s->slot[i] && strcmp(s->slot[i], id))
		i = (i + 1) & (s->cap - 1);
	return i;
}

static bool idset_has(const struct idset *s, const char *id)
{
	return s->cap && s->slot[idset_pos(s, id)];
}

static int idset_add(struct idset *s, const char *id)
{
	if (2 * (s->n + 1) > s->cap) {
		struct idset bigger = { calloc(s->cap ? 2 * s->cap : 64, sizeof(char *)), s->cap ? 2 * s->cap : 64, s->n };
		if (!bigger.slot)
			return -1;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				bigger.slot[idset_pos(&bigger, s->slot[i])] = s->slot[i];
		free(s->slot);
		*s = bigger;
	}
	size_t i = idset_pos(s, id);
	if (!s->slot[i]) {
		if (!(s->slot[i] = strdup(id)))
			return -1;
		s->n++;
	}
	return 0;
}

static void idset_free(struct idset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
}

int sw_batch_expect(struct sw_batch *bt, const char *id)
{
	return idset_add(&bt->expect, id) < 0 ? qerr(bt->q, EX_SOFTWARE, "out of memory") : 0;
}

/* An item may wait only for ids that are in the queue or in its batch,
 * unless the caller allows otherwise: a typo in --after would wait for
 * ever. */
static int after_known(struct sw_batch *bt, const json_t *item)
{
	struct sw_queue *q = bt->q;
	if (q->after_missing_ok)
		return 0;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(item, "after"), i, e) {
		const char *dep = json_string_value(e);
		if (dep && !idset_has(&bt->expect, dep) && !item_exists(q, dep))
			return qerr(q, EX_DATAERR, "after %s, which is not in queue '%s'", dep, q->name);
	}
	return 0;
}

struct sw_batch *sw_batch_new(struct sw_queue *q)
{
	struct sw_batch *bt = calloc(1, sizeof *bt);
	if (!bt) {
		qerr(q, EX_SOFTWARE, "out of memory");
		return NULL;
	}
	bt->q = q;
	bucket_init(&bt->b);
	bt->sfd = qdir(q, QD_STAGE);
	bt->idsfd = qdir(q, QD_IDS);
	if (bt->sfd < 0 || bt->idsfd < 0) {
		qerr_errno(q, "cannot open queue");
		free(bt);
		return NULL;
	}
	return bt;
}

static int batch_record(struct sw_batch *bt, const struct place *w, bool placed, const char *marker)
{
	if (bt->n == bt->cap) {
		size_t cap = bt->cap ? bt->cap * 2 : 64;
		struct added *r = realloc(bt->rec, cap * sizeof *r);
		if (!r)
			return -1;
		bt->rec = r;
		bt->cap = cap;
	}
	char rel[PATH_LEN + NAME_LEN + 2];
	snprintf(rel, sizeof rel, "%s%s%s", placed ? w->sub : "", placed && w->sub[0] ? "/" : "",
		 placed ? w->name : "");
	struct added *a = &bt->rec[bt->n];
	a->rel = strdup(rel);
	a->marker = marker ? strdup(marker) : NULL;
	a->d = placed ? (unsigned char)w->d : 0;
	a->placed = placed;
	if (!a->rel || (marker && !a->marker)) {
		free(a->rel);
		free(a->marker);
		return -1;
	}
	bt->n++;
	return 0;
}

static int add_generated(struct sw_batch *bt, const json_t *item, const char *buf, size_t len)
{
	struct place w;
	char tmp[SW_TMPNAME_LEN];
	if (sw_tmp_write(bt->sfd, tmp, buf, len, false) < 0)
		return -1;
	if (place_pending(bt->q, &bt->b, bt->sfd, tmp, item, &w) < 0) {
		int e = errno;
		SW_NOINTR(unlinkat(bt->sfd, tmp, 0));
		errno = e;
		return -1;
	}
	return batch_record(bt, &w, true, NULL);
}

static bool same_file(int d1, const char *n1, int d2, const char *n2)
{
	struct stat a, b;
	return SW_NOINTR(fstatat(d1, n1, &a, AT_SYMLINK_NOFOLLOW)) == 0 && SW_NOINTR(fstatat(d2, n2, &b, AT_SYMLINK_NOFOLLOW)) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int write_excl(int dfd, const char *name, const char *buf, size_t len)
{
	int fd = SW_NOINTR(openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			SW_NOINTR(unlinkat(dfd, name, 0));
			errno = e;
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0) {
		int e = errno;
		SW_NOINTR(unlinkat(dfd, name, 0));
		errno = e;
		return -1;
	}
	return 0;
}

static int add_given(struct sw_batch *bt, const json_t *item, const char *buf, size_t len, bool *existed)
{
	struct sw_queue *q = bt->q;
	const char *id = item_id(item);
	for (int tries = 0; tries < 5; tries++) {
		char nonce[96], name[NAME_LEN];
		queue_nonce(q, nonce);
		snprintf(name, sizeof name, "%s.a.%s", nonce, id);
		if (write_excl(bt->sfd, name, buf, len) < 0)
			return -1;
		if (SW_NOINTR(linkat(bt->sfd, name, bt->idsfd, id, 0)) < 0) {
			int e = errno;
			/* NFS: a retransmitted link answers EEXIST for its own work */
			if (e == EEXIST && same_file(bt->sfd, name, bt->idsfd, id))
				goto linked;
			SW_NOINTR(unlinkat(bt->sfd, name, 0));
			if (e == EEXIST) {
				*existed = true;
				return 0;
			}
			if (e == ENOENT)
				continue;   /* recovery took our stage file: stalled too long */
			errno = e;
			return -1;
		}
	linked:;
		struct place w;
		if (place_pending(q, &bt->b, bt->sfd, name, item, &w) == 0)
			return batch_record(bt, &w, true, id);
		if (errno == ENOENT)   /* recovery placed it for us */
			return batch_record(bt, &w, false, id);
		/* not placed: the id must not stay taken by an item nowhere */
		int e = errno;
		if (same_file(bt->sfd, name, bt->idsfd, id))
			SW_NOINTR(unlinkat(bt->idsfd, id, 0));
		SW_NOINTR(unlinkat(bt->sfd, name, 0));
		errno = e;
		return -1;
	}
	errno = EAGAIN;
	return -1;
}

/* For the caller to print: where an item just added is (a moment ago:
 * it may move on).  One that waits may be blocked, or dead or cancelled
 * already with an item it waits for. */
static const char *state_now(struct sw_queue *q, const json_t *item)
{
	static const struct { enum qdir d; const char *state; } where[] = {
		{ QD_BLOCKED, "blocked" }, { QD_DEAD, "dead" }, { QD_CANCELLED, "cancelled" },
	};
	for (size_t i = 0; json_object_get(item, "after") && i < sizeof where / sizeof where[0]; i++) {
		int dfd = qdir(q, where[i].d);
		if (dfd >= 0 && SW_NOINTR(faccessat(dfd, item_id(item), F_OK, AT_SYMLINK_NOFOLLOW)) == 0)
			return where[i].state;
	}
	return "pending";
}

int sw_batch_add(struct sw_batch *bt, json_t *item, bool *existed)
{
	*existed = false;
	int known = after_known(bt, item);
	if (known)
		return known;
	size_t len;
	char *buf = item_dump(item, &len);
	if (!buf)
		return qerr(bt->q, EX_SOFTWARE, "cannot encode item");
	int rc = json_is_true(json_object_get(item, "given_id"))
		       ? add_given(bt, item, buf, len, existed)
		       : add_generated(bt, item, buf, len);
	free(buf);
	if (rc < 0)
		return qerr_errno(bt->q, "cannot add item");
	json_object_set_new(item, "state", json_string(state_now(bt->q, item)));
	return 0;
}

static void batch_free(struct sw_batch *bt)
{
	for (size_t i = 0; i < bt->n; i++) {
		free(bt->rec[i].rel);
		free(bt->rec[i].marker);
	}
	free(bt->rec);
	bucket_done(&bt->b);
	idset_free(&bt->expect);
	free(bt);
}

/* Unlinks one item the batch placed: 1, 0 when it is gone already
 * (claimed meanwhile: moved, with its directory maybe), or -1 when it is
 * still there.  Tried twice: a transient error (ESTALE on a network
 * filesystem) must not leave behind an item its adder is told is not. */
static int take_back(struct sw_batch *bt, struct added *a)
{
	int dfd = qdir(bt->q, (enum qdir)a->d);
	char *slash = strrchr(a->rel, '/');
	const char *name = slash ? slash + 1 : a->rel;
	int rc = -1;
	if (slash)
		*slash = 0;
	for (int try = 0; dfd >= 0 && rc < 0 && try < 2; try++) {
		int fd = slash ? sw_open_beneath(dfd, a->rel, O_RDONLY | O_DIRECTORY, 0) : dfd;
		if (fd >= 0 && SW_NOINTR(unlinkat(fd, name, 0)) == 0)
			rc = 1;
		else if (errno == ENOENT)
			rc = 0;
		if (fd >= 0 && fd != dfd)
			close(fd);
	}
	if (slash)
		*slash = '/';
	return rc;
}

/* Takes back what the batch added: an item that was claimed meanwhile
 * cannot be, and keeps its id.  Returns how many items could not be
 * taken back (they stay, with their ids), and says so in q's error. */
size_t sw_batch_abort(struct sw_batch *bt)
{
	size_t left = 0;
	for (size_t i = 0; i < bt->n; i++) {
		struct added *a = &bt->rec[i];
		if (!a->placed)
			continue;
		int rc = take_back(bt, a);
		if (rc < 0)
			left++;
		else if (rc > 0 && a->marker)
			SW_NOINTR(unlinkat(bt->idsfd, a->marker, 0));
	}
	if (left)
		sw_err_append(&bt->q->err, "; %zu added item%s could not be taken back", left, left == 1 ? "" : "s");
	batch_free(bt);
	return left;
}

int sw_batch_commit(struct sw_batch *bt)
{
	struct sw_queue *q = bt->q;
	/* one syncfs for the whole batch instead of an fsync per item */
	if (q->ws->sync != SW_SYNC_OFF && SW_NOINTR(syncfs(q->fd)) < 0) {
		int rc = qerr_errno(q, "syncing");
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
	for (size_t i = 0; i < n; i++)
		if (json_is_true(json_object_get(items[i], "given_id")) && sw_batch_expect(bt, item_id(items[i]))) {
			batch_free(bt);
			return EX_SOFTWARE;
		}
	for (size_t i = 0; i < n; i++) {
		int rc = sw_batch_add(bt, items[i], &existed[i]);
		if (rc) {
			sw_batch_abort(bt);
			return rc;
		}
	}
	return sw_batch_commit(bt);
}
