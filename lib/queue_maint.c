/* queue_maint.c — maintenance (expired claims back, delayed items due,
 * transitions of dead processes finished, leftovers removed), purging,
 * and listing and counting what a queue holds. */
#include "queue_int.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include "lock.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MAINT_EVERY_NS SW_NS_PER_SEC    /* lazy maintenance by `next` at most */
#define MAINT_STUCK_S 5                 /* a maintainer this late holds the lock in vain */

struct maint { struct sw_queue *q; int64_t now; long long reaped; struct bucket b; };

static json_t *reap_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)rc;
	return retry_or_dead(item, *(uint64_t *)arg, "lease expired", 0);
}

static int reap_claim(int dfd, const char *name, void *arg)
{
	struct maint *m = arg;
	char id[NAME_LEN], why[128];
	uint64_t token;
	int64_t expiry;
	if (!claim_name_parse(name, id, &token, &expiry)) {
		quarantine(m->q, dfd, name, "claimed", "not a claim name");
		return 0;
	}
	/* the holder believes in its lease until expiry by its own clock;
	 * we wait out the skew margin on top */
	if (expiry + m->q->ws->skew_ns >= m->now)
		return 0;
	json_t *item;
	struct stat st;
	enum rd rd = item_read(m->q, dfd, name, id, &item, &st, why);
	if (rd == RD_DAMAGED)
		quarantine(m->q, dfd, name, "claimed", why);
	if (rd != RD_OK)
		return 0;
	uint64_t gen = token >> TOKEN_RAND_BITS;
	bool dead = sw_json_int(item, "attempt", 0) + 1 >= sw_json_int(item, "max_attempts", SW_ATTEMPTS_DEFAULT);
	/* the rename of this very name decides: a renewal since we read the
	 * directory renamed it, and then nothing happens here */
	if (txn_move(m->q, dfd, name, SRC_CLAIMED, item, &st, reap_next, &gen, dead, NULL) == 0)
		m->reaped++;
	return 0;
}

/* Temporary files are hidden from each_entry: this looks at them. */
static void clean_tmp(struct maint *m, int dfd)
{
	int fd = SW_NOINTR(openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	struct stat st;
	while ((de = sw_readdir(d)))
		if (!strncmp(de->d_name, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)) &&
		    SW_NOINTR(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) == 0 &&
		    m->now - (int64_t)st.st_mtim.tv_sec * SW_NS_PER_SEC > TMP_GRACE_NS)
			SW_NOINTR(unlinkat(dirfd(d), de->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0));
	closedir(d);
}

static int promote_timed(int dfd, const char *name, void *arg)
{
	struct maint *m = arg;
	int64_t due;
	const char *id;
	char why[128];
	if (!keyed_name_parse(name, &due, &id)) {
		quarantine(m->q, dfd, name, "timed", "not a delayed item name");
		return 0;
	}
	if (due > m->now)
		return 0;
	json_t *item;
	enum rd rd = item_read(m->q, dfd, name, id, &item, NULL, why);
	if (rd == RD_DAMAGED)
		quarantine(m->q, dfd, name, "timed", why);
	if (rd != RD_OK)
		return 0;
	/* place_pending, not a bucket: a delayed item may also wait for its
	 * `after` items.  The file keeps its not_before: it has passed. */
	json_object_del(item, "not_before_unix_ns");
	if (place_pending(m->q, &m->b, dfd, name, item, NULL) == 0)
		wake_waiters(m->q);
	json_decref(item);
	return 0;
}

static int promote_one(int dfd, const char *name, void *arg)
{
	struct maint *m = arg;
	if (sw_name_problem(name))
		quarantine(m->q, dfd, name, "blocked", "not an item id");
	else
		promote_blocked(m->q, &m->b, name);
	return 0;
}

static void maintain(struct sw_queue *q, struct maint *m, bool full)
{
	m->q = q;
	m->now = sw_now_ns();
	bucket_init(&m->b);
	int cfd = qdir(q, QD_CLAIMED), tfd = qdir(q, QD_TIMED), bfd = qdir(q, QD_BLOCKED);
	int sfd = qdir(q, QD_STAGE);
	if (cfd >= 0)
		each_entry(cfd, reap_claim, m);
	stage_recover(q, m->now, &m->reaped);
	if (tfd >= 0)
		each_entry(tfd, promote_timed, m);
	if (bfd >= 0)
		each_entry(bfd, promote_one, m);
	if (sfd >= 0)
		clean_tmp(m, sfd);
	/* a claimer that read an old head can raise it past a bucket an adder
	 * made again below: items there would wait for a full reap */
	heads_repair(q);
	if (full) {
		if (qdir(q, QD_IDS) >= 0)
			clean_tmp(m, q->dfd[QD_IDS]);
		if (cfd >= 0)
			clean_tmp(m, cfd);
	}
	bucket_done(&m->b);
}

/* `next` does the maintenance lazily, at most once a second per queue, by
 * whichever claimer finds it due first.  The lock only spares the others
 * the work: a holder that does not come back (stalled, or an outsider
 * holding the lock file) stops nobody for longer than MAINT_STUCK_S. */
void maybe_maintain(struct sw_queue *q)
{
	int64_t now = sw_now_ns();
	long long due = read_hint(q->fd, "maint");
	/* a hint further ahead than one period came from a host whose clock
	 * is fast: it must not stop maintenance here until our clock gets
	 * there */
	if (due > now / SW_NS_PER_SEC && due <= (now + MAINT_EVERY_NS + q->ws->skew_ns) / SW_NS_PER_SEC)
		return;
	int lk = sw_lock(q->fd, "maint.lock", LOCK_EX, 0);
	if (lk < 0 && now / SW_NS_PER_SEC - due < MAINT_STUCK_S)
		return;
	write_hint(q->fd, "maint", (now + MAINT_EVERY_NS) / SW_NS_PER_SEC);
	struct maint m = { 0 };
	maintain(q, &m, false);
	sw_unlock(lk);
}

int sw_queue_reap(struct sw_queue *q, long long *reaped)
{
	int lk = sw_lock(q->fd, "maint.lock", LOCK_EX, SW_NS_PER_SEC);
	struct maint m = { 0 };
	maintain(q, &m, true);
	if (lk >= 0)
		sw_unlock(lk);
	*reaped = m.reaped;
	return 0;
}

/* ---- purging ------------------------------------------------------------- */

struct purger { struct sw_queue *q; int64_t cutoff; long long n; };

static int purge_one(int dfd, const char *name, void *arg)
{
	struct purger *p = arg;
	struct stat st;
	if (SW_NOINTR(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) < 0 ||
	    (int64_t)st.st_mtim.tv_sec * SW_NS_PER_SEC + st.st_mtim.tv_nsec > p->cutoff)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		quarantine(p->q, dfd, name, "done", "a directory where an item belongs");
		return 0;
	}
	if (SW_NOINTR(unlinkat(dfd, name, 0)) == 0) {
		int ids = qdir(p->q, QD_IDS);
		if (ids >= 0 && !sw_name_problem(name))
			SW_NOINTR(unlinkat(ids, name, 0));   /* the id may be used again */
		p->n++;
	}
	return 0;
}

void remove_tree(int dfd, const char *name, int depth)
{
	if (SW_NOINTR(unlinkat(dfd, name, 0)) == 0 || (errno != EISDIR && errno != EPERM) || depth > 16)
		return;
	int fd = sw_open_dir(dfd, name, false);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *de;
	while ((de = sw_readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			remove_tree(dirfd(d), de->d_name, depth + 1);
	closedir(d);
	SW_NOINTR(unlinkat(dfd, name, AT_REMOVEDIR));
}

static int purge_damaged(int dfd, const char *name, void *arg)
{
	struct purger *p = arg;
	long long ms = strtoll(name, NULL, 10);
	if (ms > 0 && ms * 1000000 <= p->cutoff) {
		remove_tree(dfd, name, 0);
		p->n++;
	}
	return 0;
}

int sw_queue_purge(struct sw_queue *q, int mask, int64_t older_than_ns, long long *purged)
{
	if (mask & (SW_ST_PENDING | SW_ST_CLAIMED | SW_ST_BLOCKED))
		return qerr(q, EX_USAGE, "only done, dead, cancelled and damaged entries can be purged");
	struct purger p = { q, sw_now_ns() - older_than_ns, 0 };
	static const struct { int bit; enum qdir d; } dirs[] = {
		{ SW_ST_DONE, QD_DONE }, { SW_ST_DEAD, QD_DEAD }, { SW_ST_CANCELLED, QD_CANCELLED },
	};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if ((mask & dirs[i].bit) && (qdir(q, dirs[i].d) < 0 || each_entry(q->dfd[dirs[i].d], purge_one, &p) < 0))
			return qerr_errno(q, "purging");
	if ((mask & SW_ST_DAMAGED) && (qdir(q, QD_DAMAGED) < 0 || each_entry(q->dfd[QD_DAMAGED], purge_damaged, &p) < 0))
		return qerr_errno(q, "purging");
	*purged = p.n;
	return 0;
}

/* ---- walking the items of some states ------------------------------------ */

struct walker {
	struct sw_queue *q;
	entry_fn fn;
	void *arg;
	struct entry e;
};

static int walk_found(struct walker *w, int dfd, const char *name, const char *id)
{
	w->e.dfd = dfd;
	w->e.name = name;
	w->e.id = id;
	return w->fn(w->q, &w->e, w->arg);
}

static int walk_keyed(int dfd, const char *name, void *arg)
{
	int64_t t;
	const char *id;
	return keyed_name_parse(name, &t, &id) ? walk_found(arg, dfd, name, id) : 0;
}

static int walk_named(int dfd, const char *name, void *arg)
{
	return sw_name_problem(name) ? 0 : walk_found(arg, dfd, name, name);
}

static int walk_claim(int dfd, const char *name, void *arg)
{
	struct walker *w = arg;
	char id[NAME_LEN];
	return claim_name_parse(name, id, &w->e.token, &w->e.expiry) ? walk_found(w, dfd, name, id) : 0;
}

static int walk_bucket(int dfd, const char *name, void *arg)
{
	if (strspn(name, "0123456789") != strlen(name))
		return 0;   /* the head and tail hints */
	return each_entry_in(dfd, name, walk_keyed, arg);
}

static int walk_part(int dfd, const char *name, void *arg) { return each_entry_in(dfd, name, walk_bucket, arg); }
static int walk_prio(int dfd, const char *name, void *arg) { return each_entry_in(dfd, name, walk_part, arg); }

int each_item_entry(struct sw_queue *q, int mask, entry_fn fn, void *arg)
{
	static const struct {
		int bit; enum qdir d; const char *state, *from; int (*walk)(int, const char *, void *);
	} dirs[] = {
		{ SW_ST_PENDING, QD_PENDING, "pending", "pending", walk_prio },
		{ SW_ST_PENDING, QD_TIMED, "pending", "timed", walk_keyed },
		{ SW_ST_BLOCKED, QD_BLOCKED, "blocked", "blocked", walk_named },
		{ SW_ST_CLAIMED, QD_CLAIMED, "claimed", "claimed", walk_claim },
		{ SW_ST_DONE, QD_DONE, "done", "done", walk_named },
		{ SW_ST_DEAD, QD_DEAD, "dead", "dead", walk_named },
		{ SW_ST_CANCELLED, QD_CANCELLED, "cancelled", "cancelled", walk_named },
	};
	struct walker w = { .q = q, .fn = fn, .arg = arg };
	int rc = 0;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && rc == 0; i++) {
		if (!(mask & dirs[i].bit) || qdir(q, dirs[i].d) < 0)
			continue;
		w.e = (struct entry){ .state = dirs[i].state, .from = dirs[i].from };
		rc = each_entry(q->dfd[dirs[i].d], dirs[i].walk, &w);
	}
	return rc;
}

/* ---- listing ------------------------------------------------------------- */

struct lister {
	int (*fn)(json_t *item, void *arg);
	void *arg;
};

static int list_entry(struct sw_queue *q, const struct entry *e, void *arg)
{
	struct lister *l = arg;
	json_t *item;
	char why[128];
	enum rd rd = item_read(q, e->dfd, e->name, e->id, &item, NULL, why);
	if (rd == RD_DAMAGED)
		quarantine(q, e->dfd, e->name, e->from, why);
	if (rd != RD_OK)
		return 0;   /* moved on while we looked, or not ours to read */
	if (!strcmp(e->state, "claimed"))
		claim_view(q, item, e->token, e->expiry);
	else
		item_view(q, item, e->state);
	int rc = l->fn(item, l->arg);
	json_decref(item);
	return rc;
}

struct inflight_list { int mask; int (*fn)(json_t *, void *); void *arg; struct sw_queue *q; };

static int list_inflight(json_t *item, const char *state, void *arg)
{
	struct inflight_list *f = arg;
	int bit = sw_state_mask(state);
	if (bit < 0 || !(f->mask & bit))
		return 0;
	item_view(f->q, item, state);
	json_object_set_new(item, "in_transition", json_true());
	return f->fn(item, f->arg);
}

struct damaged_list { struct sw_queue *q; int (*fn)(json_t *, void *); void *arg; };

static int list_damaged(int dfd, const char *name, void *arg)
{
	struct damaged_list *l = arg;
	int bfd = sw_open_dir(dfd, name, false);
	if (bfd < 0)
		return 0;
	char *buf = NULL;
	json_t *why = NULL;
	if (sw_read_file(bfd, ".why", &buf, NULL, 4096) == 0)
		why = json_loads(buf, 0, NULL);
	free(buf);
	const char *orig = sw_json_str(why, "name");
	struct stat st;
	json_t *j = json_pack("{s:s,s:s}", "queue", l->q->name, "state", "damaged");
	if (orig && !sw_name_problem(orig) && SW_NOINTR(fstatat(bfd, orig, &st, AT_SYMLINK_NOFOLLOW)) == 0) {
		const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory"
				 : S_ISLNK(st.st_mode) ? "symlink" : S_ISFIFO(st.st_mode) ? "fifo" : "other";
		json_object_set_new(j, "name", json_string(orig));
		json_object_set_new(j, "type", json_string(type));
		json_object_set_new(j, "size", json_integer((json_int_t)st.st_size));
	}
	if (json_is_string(json_object_get(why, "from")))
		json_object_set(j, "from", json_object_get(why, "from"));
	if (json_is_string(json_object_get(why, "reason")))
		json_object_set(j, "reason", json_object_get(why, "reason"));
	long long ms = strtoll(name, NULL, 10);
	if (ms > 0)
		sw_json_set_time(j, "damaged_at", ms * 1000000);
	json_object_set_new(j, "entry", json_string(name));
	json_decref(why);
	close(bfd);
	int rc = l->fn(j, l->arg);
	json_decref(j);
	return rc;
}

int sw_queue_list(struct sw_queue *q, int mask, int (*fn)(json_t *item, void *arg), void *arg)
{
	struct lister l = { fn, arg };
	int rc = each_item_entry(q, mask, list_entry, &l);
	if (rc == 0 && (mask & SW_ST_ALL)) {
		struct inflight_list f = { mask, fn, arg, q };
		rc = stage_items(q, list_inflight, &f);
	}
	if (rc == 0 && (mask & SW_ST_DAMAGED) && qdir(q, QD_DAMAGED) >= 0) {
		struct damaged_list d = { q, fn, arg };
		rc = each_entry(q->dfd[QD_DAMAGED], list_damaged, &d);
	}
	if (rc < 0)
		return qerr_errno(q, "listing");
	return rc;
}

/* ---- counting -------------------------------------------------------- */

/* n: entries counted; with due set, timed entries are split into those
 * due by then (n) and those not yet (later). */
struct counter { long long n, later; int64_t oldest, due; };

static int count_keyed(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct counter *c = arg;
	int64_t t;
	const char *id;
	if (!keyed_name_parse(name, &t, &id))
		return 0;
	if (c->due && t > c->due) {
		c->later++;
		return 0;
	}
	c->n++;
	if (t > 0 && (c->oldest == 0 || t < c->oldest))
		c->oldest = t;
	return 0;
}

static int count_named(int dfd, const char *name, void *arg)
{
	(void)dfd;
	if (!sw_name_problem(name))
		((struct counter *)arg)->n++;
	return 0;
}

static int count_claim(int dfd, const char *name, void *arg)
{
	(void)dfd;
	char id[NAME_LEN];
	uint64_t token;
	int64_t exp;
	if (claim_name_parse(name, id, &token, &exp))
		((struct counter *)arg)->n++;
	return 0;
}

static int count_any(int dfd, const char *name, void *arg)
{
	(void)dfd;
	(void)name;
	((struct counter *)arg)->n++;
	return 0;
}

static int count_bucket(int dfd, const char *name, void *arg)
{
	if (strspn(name, "0123456789") != strlen(name))
		return 0;
	return each_entry_in(dfd, name, count_keyed, arg);
}

static int count_part(int dfd, const char *name, void *arg) { return each_entry_in(dfd, name, count_bucket, arg); }
static int count_prio(int dfd, const char *name, void *arg) { return each_entry_in(dfd, name, count_part, arg); }

static long long count_dir(struct sw_queue *q, enum qdir d, int (*fn)(int, const char *, void *))
{
	struct counter c = { 0 };
	if (qdir(q, d) >= 0)
		each_entry(q->dfd[d], fn, &c);
	return c.n;
}

static int count_inflight(json_t *item, const char *state, void *arg)
{
	(void)item;
	struct sw_queue_stats *st = arg;
	st->in_flight++;
	if (!strcmp(state, "pending")) st->pending++;
	else if (!strcmp(state, "claimed")) st->claimed++;
	else if (!strcmp(state, "done")) st->done++;
	else if (!strcmp(state, "dead")) st->dead++;
	else if (!strcmp(state, "cancelled")) st->cancelled++;
	return 0;
}

int sw_queue_stats(struct sw_queue *q, struct sw_queue_stats *st)
{
	memset(st, 0, sizeof *st);
	/* a pending key's time is when it became claimable, a timed entry's
	 * when it becomes so: once due, it waits like the others */
	struct counter c = { 0 }, t = { .due = sw_now_ns() };
	if (qdir(q, QD_PENDING) < 0 || each_entry(q->dfd[QD_PENDING], count_prio, &c) < 0)
		return qerr_errno(q, "counting");
	if (qdir(q, QD_TIMED) >= 0)
		each_entry(q->dfd[QD_TIMED], count_keyed, &t);
	st->pending = c.n + t.n;
	st->delayed = t.later;
	st->blocked = count_dir(q, QD_BLOCKED, count_named);
	st->oldest_pending_ns = c.oldest && (!t.oldest || c.oldest < t.oldest) ? c.oldest : t.oldest;
	st->claimed = count_dir(q, QD_CLAIMED, count_claim);
	st->done = count_dir(q, QD_DONE, count_named);
	st->dead = count_dir(q, QD_DEAD, count_named);
	st->cancelled = count_dir(q, QD_CANCELLED, count_named);
	st->damaged = count_dir(q, QD_DAMAGED, count_any);
	stage_items(q, count_inflight, st);
	return 0;
}

/* ---- keys of pending items (sw_queue_keys) ---- */

struct keywalk {
	int (*fn)(const char *part, bool keyed, uint64_t h, void *arg);
	void *arg;
	const char *part;
};

static int key_entry(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct keywalk *k = arg;
	int64_t t;
	uint64_t h = 0;
	bool keyed;
	const char *id;
	if (!keyed_name_split(name, &t, &h, &keyed, &id))
		return 0;
	return k->fn(k->part, keyed, h, k->arg);
}

static int key_bucket(int dfd, const char *name, void *arg)
{
	if (strspn(name, "0123456789") != strlen(name))
		return 0;
	return each_entry_in(dfd, name, key_entry, arg);
}

static int key_part(int dfd, const char *name, void *arg)
{
	struct keywalk *k = arg;
	if (strcmp(name, "-") && sw_name_problem(name))
		return 0;
	k->part = name;
	return each_entry_in(dfd, name, key_bucket, arg);
}

static int key_prio(int dfd, const char *name, void *arg) { return each_entry_in(dfd, name, key_part, arg); }

int sw_queue_keys(struct sw_queue *q, int (*fn)(const char *part, bool keyed, uint64_t h, void *arg),
		  void *arg)
{
	struct keywalk k = { fn, arg, NULL };
	if (qdir(q, QD_PENDING) < 0)
		return qerr_errno(q, "reading pending items");
	int rc = each_entry(q->dfd[QD_PENDING], key_prio, &k);
	if (rc < 0)
		return qerr_errno(q, "reading pending items");
	return rc;
}

static int any_entry(int dfd, const char *name, void *arg)
{
	(void)dfd;
	(void)name;
	(void)arg;
	return 1;
}

bool sw_queue_busy(struct sw_queue *q)
{
	/* an error counts as busy: better to wait once more than to leave
	 * work behind */
	return qdir(q, QD_CLAIMED) < 0 || each_entry(q->dfd[QD_CLAIMED], any_entry, NULL) != 0 ||
	       qdir(q, QD_STAGE) < 0 || each_entry(q->dfd[QD_STAGE], any_entry, NULL) != 0;
}
