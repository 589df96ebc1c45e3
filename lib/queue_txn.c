/* queue_txn.c — transitions through stage/, safe against a process that
 * is killed or stalls (a hung network filesystem, SIGSTOP) at any point,
 * for any time, and then goes on.
 *
 * An item is one file that moves by rename.  Changing its state moves it
 * through stage/ under names that carry a nonce ("<owner>-<ms>-<rand>",
 * owner.h) and the state it came from (S: P pending, C claimed, D dead,
 * X cancelled):
 *
 *   1. rename  <state>/<name> -> stage/<N>.o<S>  decides: of two processes
 *              moving the same file one gets ENOENT and changes nothing
 *   2. write   stage/<N>.n<S>  the new content
 *   3. rename  <N>.o<S> -> <N>.k<S>  commits: only the holder of <N>.o<S>
 *              can, and a recoverer takes a transition over by renaming
 *              <N>.o<S> away first; so exactly one of them goes on
 *   4. rename  <N>.n<S> -> where its state says (done/<id>, a bucket…)
 *   5. unlink  <N>.k<S>
 *
 * Recovery (maintenance) acts on a nonce whose owner is dead (same boot:
 * pid gone), or whatever its owner is doing once STAGE_GRACE plus the skew
 * margin have passed since the nonce's time:
 *   <N>.o<S>  uncommitted: rename it to its own <M>.o<S> (the original's
 *             step 3 now fails: it reports a stale token and changes
 *             nothing), drop <N>.n<S>, and put the item back as it was
 *             (a claim counts as an attempt, as when a lease runs out);
 *   <N>.k<S>  committed: place <N>.n<S> (racing the original's step 4,
 *             whose rename then finds it gone: the outcome is the same),
 *             or put the old content back if the new one is damaged;
 *   <N>.n<S>  alone: an uncommitted leftover after a takeover: dropped.
 * No step ever writes a name that a stalled process could still produce,
 * so nothing is done twice and nothing is lost. */
#include "queue_int.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool valid_src(char c)
{
	return c == SRC_PENDING || c == SRC_CLAIMED || c == SRC_DEAD || c == SRC_CANCELLED;
}

/* The member number: 1 to 8 lowercase hex digits, no leading zero. */
static bool member_parse(const char *s, struct sname *sn)
{
	size_t n = strspn(s, "0123456789abcdef");
	if (n == 0 || n > 8 || s[n] || (s[0] == '0' && n > 1))
		return false;
	sn->src = SRC_CLAIMED;
	sn->member = (unsigned)strtoul(s, NULL, 16);
	return true;
}

bool sname_parse(const char *name, struct sname *sn)
{
	const char *dot = strchr(name, '.');
	size_t n = dot ? (size_t)(dot - name) : 0;
	if (!dot || n == 0 || n >= sizeof sn->nonce || strspn(name, "0123456789abcdef-") != n)
		return false;
	memcpy(sn->nonce, name, n);
	sn->nonce[n] = 0;
	char *r = strrchr(sn->nonce, '-');
	if (!r || r == sn->nonce)
		return false;
	char *m = r - 1;
	while (m > sn->nonce && *m != '-')
		m--;
	if (*m != '-' || m == r - 1)
		return false;
	sn->ms = strtoll(m + 1, NULL, 10);
	sn->owner_len = (size_t)(m - sn->nonce);
	sn->kind = dot[1];
	sn->id = NULL;
	sn->member = 0;
	if ((sn->kind == 'o' || sn->kind == 'n' || sn->kind == 'k') && valid_src(dot[2]) && !dot[3]) {
		sn->src = dot[2];
		return true;
	}
	/* a group's marker (uncommitted, committed) and its members */
	if ((sn->kind == 'u' || sn->kind == 'c') && dot[2] == SRC_CLAIMED && !dot[3]) {
		sn->src = dot[2];
		return true;
	}
	if (sn->kind == 'm' && dot[2] == SRC_CLAIMED && dot[3] == '.')
		return member_parse(dot + 4, sn);
	if (sn->kind == 'a' && dot[2] == '.' && !sw_name_problem(dot + 3)) {
		sn->id = dot + 3;
		return true;
	}
	return false;
}

void sname_make(char out[NAME_LEN], const char *nonce, char kind, char src)
{
	snprintf(out, NAME_LEN, "%s.%c%c", nonce, kind, src);
}

const char *src_state(char src)
{
	return src == SRC_CLAIMED ? "claimed" : src == SRC_DEAD ? "dead"
	     : src == SRC_CANCELLED ? "cancelled" : "pending";
}

/* ---- placing ------------------------------------------------------------ */

static int final_dir(const char *state)
{
	return !strcmp(state, "done") ? QD_DONE : !strcmp(state, "dead") ? QD_DEAD
	     : !strcmp(state, "cancelled") ? QD_CANCELLED : -1;
}

int place(struct sw_queue *q, int dfd, const char *name, const json_t *item, bool durable)
{
	const char *state = sw_json_str(item, "state");
	if (!state || !strcmp(state, "pending")) {
		struct bucket b;
		bucket_init(&b);
		int rc = place_pending(q, &b, dfd, name, item, NULL);
		int e = errno;
		bucket_done(&b);
		if (rc == 0) {
			sync_full(q);
			wake_waiters(q);
		}
		errno = e;
		return rc;
	}
	int d = final_dir(state);
	int tfd = d < 0 ? -1 : qdir(q, (enum qdir)d);
	if (tfd < 0) {
		errno = d < 0 ? EINVAL : errno;
		return -1;
	}
	/* an item finishes once: a file already there under its id was put
	 * there outside the protocol, and goes aside, never over ours */
	int rc;
	for (int tries = 0; (rc = sw_rename_noreplace(dfd, name, tfd, item_id(item))) < 0 &&
	     errno == EEXIST && tries < 3; tries++)
		quarantine(q, tfd, item_id(item), state, "found where an item was being finished");
	if (rc < 0)
		return -1;
	sync_dir(q, (enum qdir)d, durable);
	/* the items waiting for this one: free to run, or failed with it
	 * (a batch looks once it has placed all its items) */
	if (!q->deps_deferred)
		deps_release(q, item_id(item));
	return 0;
}

/* ---- the transition ------------------------------------------------------ */

int stage_write(int sfd, const char *name, const char *buf, size_t len, bool sync)
{
	int fd = SW_NOINTR(openat(sfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
	if (fd < 0)
		return -1;
	if (sw_write_all(fd, buf, len) < 0 || (sync && SW_NOINTR(fdatasync(fd)) < 0))
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	SW_NOINTR(unlinkat(sfd, name, 0));
	errno = e;
	return -1;
}

/* Gives the uncommitted item back to where it was (back_dfd/back_name),
 * or, with no such place (a recovery's own transition), leaves it for the
 * next recovery. */
void put_back(int sfd, const char *oname, int back_dfd, const char *back_name)
{
	if (back_dfd >= 0)
		sw_rename(sfd, oname, back_dfd, back_name);
}

struct txn {
	char nonce[96];
	struct txn_in in;
};

int txn_read_owned(struct sw_queue *q, int sfd, const char *oname, json_t **pre,
		   const struct stat *pre_st, json_t **cur, off_t *size)
{
	struct stat st;
	if (*pre && SW_NOINTR(fstatat(sfd, oname, &st, AT_SYMLINK_NOFOLLOW)) == 0 &&
	    st.st_ino == pre_st->st_ino && st.st_dev == pre_st->st_dev) {
		*size = st.st_size;
		*cur = *pre;
		*pre = NULL;
		return 0;
	}
	char why[128];
	*size = -1;
	switch (item_read(q, sfd, oname, NULL, cur, NULL, why)) {
	case RD_OK:
		return 0;
	case RD_GONE:
		return qerr(q, SW_EX_FALSE, "taken over while this process stalled");
	case RD_DAMAGED:
		quarantine_quiet(q, sfd, oname, "stage", why);
		return qerr(q, EX_DATAERR, "the item is damaged (%s) and was moved aside", why);
	case RD_SKIP:
		errno = EACCES;
		/* fall through */
	default:
		return qerr_errno(q, "reading item");
	}
}

/* Steps 3 to 5 of a transition whose new content is written: commit,
 * place, clean up.  0, or SW_EX_FALSE when it was taken over meanwhile;
 * *placed (when given) says whether this process put it in its new
 * state's directory (a batch then frees the items waiting for it). */
int txn_commit(struct sw_queue *q, const char *nonce, char src, const json_t *next, bool durable,
	       bool *placed)
{
	int sfd = qdir(q, QD_STAGE);
	char oname[NAME_LEN], nname[NAME_LEN], kname[NAME_LEN];
	sname_make(oname, nonce, 'o', src);
	sname_make(nname, nonce, 'n', src);
	sname_make(kname, nonce, 'k', src);
	if (sw_rename_fresh(sfd, oname, sfd, kname) < 0) {
		int e = errno;
		SW_NOINTR(unlinkat(sfd, nname, 0));
		errno = e;
		return e == ENOENT ? qerr(q, SW_EX_FALSE, "taken over while this process stalled")
				   : qerr_errno(q, "committing");
	}
	/* committed: from here on the outcome stands, whoever places it */
	int prc = place(q, sfd, nname, next, durable);
	if (placed)
		*placed = prc == 0;
	if (prc < 0 && errno != ENOENT)
		sw_warn("queue '%s': item %s is finished but could not be placed (%s); "
			"maintenance will place it", q->name, item_id(next), strerror(errno));
	else
		SW_NOINTR(unlinkat(sfd, kname, 0));
	return 0;
}

int txn_next_content(struct sw_queue *q, int sfd, const char *oname, struct txn_in *in,
		     json_t **next, char **buf, size_t *len, off_t *old_len)
{
	json_t *cur;
	int rc = txn_read_owned(q, sfd, oname, &in->pre, in->pre_st, &cur, old_len);
	if (rc) {
		if (rc != SW_EX_FALSE && rc != EX_DATAERR)
			put_back(sfd, oname, in->back_dfd, in->back_name);
		return rc;
	}
	*next = in->next_fn(q, cur, in->arg, &rc);
	if (!*next) {
		json_decref(cur);
		put_back(sfd, oname, in->back_dfd, in->back_name);
		return rc ? rc : qerr(q, EX_SOFTWARE, "no next state");
	}
	*buf = item_dump(*next, len);
	/* readers stop at item_max + SW_ITEM_SLACK: a bigger file would be an
	 * item nobody can read, so a result or error that large changes nothing */
	if (!*buf || *len > q->item_max + SW_ITEM_SLACK) {
		rc = *buf ? qerr(q, EX_DATAERR, "the item would be %zu bytes with this result or error, "
				 "over SW_MAX_ITEM_BYTES (%zu) + %d", *len, q->item_max, SW_ITEM_SLACK)
			  : qerr(q, EX_SOFTWARE, "cannot encode item");
		free(*buf);
		json_decref(*next);
		put_back(sfd, oname, in->back_dfd, in->back_name);
		return rc;
	}
	return 0;
}

/* Steps 2 to 5, once <N>.o<S> is ours; in a batch, step 2 only. */
static int txn_finish(struct sw_queue *q, struct txn *t, json_t **out)
{
	int sfd = qdir(q, QD_STAGE);
	char oname[NAME_LEN], nname[NAME_LEN];
	sname_make(oname, t->nonce, 'o', t->in.src);
	sname_make(nname, t->nonce, 'n', t->in.src);
	json_t *next;
	char *buf;
	size_t len;
	off_t old_len;
	int rc = txn_next_content(q, sfd, oname, &t->in, &next, &buf, &len, &old_len);
	if (rc)
		return rc;
	/* a batch syncs every new content at once before any commit */
	rc = stage_write(sfd, nname, buf, len, !q->batch && sw_sync_wanted(q->ws->sync, t->in.durable));
	free(buf);
	if (rc < 0) {
		rc = qerr_errno(q, "writing item");
		json_decref(next);
		put_back(sfd, oname, t->in.back_dfd, t->in.back_name);
		return rc;
	}
	if (q->batch)
		return batch_add(q, t->nonce, &t->in, next, out);
	rc = txn_commit(q, t->nonce, t->in.src, next, t->in.durable, NULL);
	if (rc == 0 && out)
		*out = next;
	else
		json_decref(next);
	return rc;
}

/* txn_move once the caller's reference to in->pre is in; the caller
 * drops what of it was not taken. */
static int txn_move_in(struct sw_queue *q, int sfd, struct txn *t, json_t **out)
{
	struct txn_in *in = &t->in;
	/* a batch's finishes of claims move as a group, whose commit is one
	 * rename for all and whose new contents need no file of their own */
	if (q->batch && group_ok(q, in)) {
		int rc = group_move(q, sfd, in, out);
		if (rc != GROUP_DECLINED)
			return rc;
	}
	queue_nonce(q, t->nonce);
	char oname[NAME_LEN];
	sname_make(oname, t->nonce, 'o', in->src);
	if (sw_rename_fresh(in->back_dfd, in->back_name, sfd, oname) < 0)
		return errno == ENOENT ? qerr(q, SW_EX_FALSE, "no longer there") : qerr_errno(q, "moving item");
	return txn_finish(q, t, out);
}

int txn_move(struct sw_queue *q, int dfd, const char *name, char src, json_t *pre,
	     const struct stat *pre_st, txn_next_fn next_fn, void *arg, bool durable, json_t **out)
{
	int sfd = qdir(q, QD_STAGE);
	struct txn t = { .in = { .src = src, .back_dfd = dfd, .back_name = name, .pre = pre,
				 .pre_st = pre_st, .next_fn = next_fn, .arg = arg, .durable = durable } };
	int rc = sfd < 0 ? qerr_errno(q, "stage") : txn_move_in(q, sfd, &t, out);
	json_decref(t.in.pre);
	return rc;
}

/* ---- recovery ----------------------------------------------------------- */

static json_t *rollback_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)rc;
	char src = *(char *)arg;
	uint64_t gen = item_gen(item) + 1;   /* a claim's token used gen + 1 */
	if (src == SRC_CLAIMED)
		return retry_or_dead(item, gen, "abandoned in a transition (its process stalled or died)", 0);
	json_object_set_new(item, "gen", json_integer((json_int_t)gen));
	json_object_set_new(item, "state", json_string(src_state(src)));
	return item;
}

/* Takes over dfd/name (another owner's uncommitted or damaged-committed
 * transition) and puts its item back as it was. */
int txn_takeover(struct sw_queue *q, int sfd, const char *name, char src)
{
	struct txn t = { .in = { .src = src, .back_dfd = -1, .next_fn = rollback_next, .arg = &t.in.src,
				 .durable = true } };
	queue_nonce(q, t.nonce);
	char oname[NAME_LEN];
	sname_make(oname, t.nonce, 'o', src);
	if (sw_rename(sfd, name, sfd, oname) < 0)
		return -1;
	return txn_finish(q, &t, NULL);
}

/* A transition may be finished or undone by others once its owner is
 * known dead, or after the grace whatever its owner is doing (stalled
 * processes are the point); this process's own are leftovers (a
 * placement that failed), since it runs one transition at a time. */
static bool recoverable(struct sw_queue *q, const struct sname *sn, int64_t now)
{
	const char *me = queue_owner(q);
	if (strlen(me) == sn->owner_len && !strncmp(sn->nonce, me, sn->owner_len))
		return true;
	if (sw_owner_alive(sn->nonce, sn->owner_len) == SW_OWNER_DEAD)
		return true;
	return now - sn->ms * 1000000 > STAGE_GRACE_NS + q->ws->skew_ns;
}

bool stage_has(int sfd, const char *nonce, char kind, char src)
{
	char name[NAME_LEN];
	sname_make(name, nonce, kind, src);
	return SW_NOINTR(faccessat(sfd, name, F_OK, AT_SYMLINK_NOFOLLOW)) == 0;
}

/* A committed transition: place its new content, or put the old back
 * when the new one is damaged. */
static void recover_committed(struct sw_queue *q, int sfd, const char *name, const struct sname *sn)
{
	char nname[NAME_LEN], why[128];
	sname_make(nname, sn->nonce, 'n', sn->src);
	json_t *item;
	switch (item_read(q, sfd, nname, NULL, &item, NULL, why)) {
	case RD_OK:
		if (place(q, sfd, nname, item, true) == 0 || errno == ENOENT)
			SW_NOINTR(unlinkat(sfd, name, 0));
		json_decref(item);
		return;
	case RD_GONE:
		SW_NOINTR(unlinkat(sfd, name, 0));   /* placed */
		return;
	case RD_DAMAGED:
		quarantine(q, sfd, nname, "stage", why);
		txn_takeover(q, sfd, name, sn->src);
		return;
	default:
		return;   /* unreadable now: next time */
	}
}

/* An add under a user's id: placed when the id is taken by it, else
 * dropped (the adder never got the id). */
static void recover_add(struct sw_queue *q, int sfd, const char *name, const struct sname *sn)
{
	char mine[NAME_LEN], nonce[96], why[128];
	queue_nonce(q, nonce);
	snprintf(mine, sizeof mine, "%s.a.%s", nonce, sn->id);
	if (sw_rename(sfd, name, sfd, mine) < 0)
		return;
	struct stat a, b;
	int ids = qdir(q, QD_IDS);
	bool taken = ids >= 0 && SW_NOINTR(fstatat(sfd, mine, &a, AT_SYMLINK_NOFOLLOW)) == 0 &&
		     SW_NOINTR(fstatat(ids, sn->id, &b, AT_SYMLINK_NOFOLLOW)) == 0 &&
		     a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	if (!taken) {
		SW_NOINTR(unlinkat(sfd, mine, 0));
		return;
	}
	json_t *item;
	enum rd rd = item_read(q, sfd, mine, sn->id, &item, NULL, why);
	if (rd == RD_DAMAGED)
		quarantine(q, sfd, mine, "stage", why);
	if (rd != RD_OK)
		return;
	place(q, sfd, mine, item, true);
	json_decref(item);
}

struct recov { struct sw_queue *q; int64_t now; long long n; };

static int recover_one(int sfd, const char *name, void *arg)
{
	struct recov *r = arg;
	struct sname sn;
	if (!sname_parse(name, &sn)) {
		quarantine(r->q, sfd, name, "stage", "not a transition name");
		return 0;
	}
	if (!recoverable(r->q, &sn, r->now))
		return 0;
	switch (sn.kind) {
	case 'o': {
		char nname[NAME_LEN];
		sname_make(nname, sn.nonce, 'n', sn.src);
		if (txn_takeover(r->q, sfd, name, sn.src) == 0)
			r->n++;
		SW_NOINTR(unlinkat(sfd, nname, 0));   /* the original's uncommitted content */
		break;
	}
	case 'k':
		recover_committed(r->q, sfd, name, &sn);
		r->n++;
		break;
	case 'n':
		/* a leftover only when neither its old nor its committed copy
		 * exists (looked at in the order the original renames them) */
		if (!stage_has(sfd, sn.nonce, 'o', sn.src) && !stage_has(sfd, sn.nonce, 'k', sn.src))
			SW_NOINTR(unlinkat(sfd, name, 0));
		break;
	case 'a':
		recover_add(r->q, sfd, name, &sn);
		r->n++;
		break;
	case 'u':
	case 'c':
	case 'm':
		r->n += group_recover(r->q, sfd, name, &sn);
		break;
	}
	return 0;
}

void stage_recover(struct sw_queue *q, int64_t now, long long *n)
{
	struct recov r = { q, now, 0 };
	int sfd = qdir(q, QD_STAGE);
	if (sfd >= 0)
		each_entry(sfd, recover_one, &r);
	if (n)
		*n += r.n;
}

/* ---- what is in flight --------------------------------------------------- */

struct inflight {
	struct sw_queue *q;
	int (*fn)(json_t *item, const char *state, void *arg);
	void *arg;
};

static int inflight_one(int sfd, const char *name, void *arg)
{
	struct inflight *f = arg;
	struct sname sn;
	char nname[NAME_LEN], why[128];
	const char *read_name = name, *state = NULL;
	if (!sname_parse(name, &sn) || sn.kind == 'n' || sn.kind == 'u' || sn.kind == 'c')
		return 0;
	json_t *item;
	if (sn.kind == 'm') {
		if (group_member_read(f->q, sfd, name, &sn, &item, &state) != RD_OK)
			return 0;
		int rc = f->fn(item, state, f->arg);
		json_decref(item);
		return rc;
	}
	if (sn.kind == 'o')
		state = src_state(sn.src);
	else if (sn.kind == 'a')
		state = "pending";
	else {   /* committed: it counts where it goes */
		sname_make(nname, sn.nonce, 'n', sn.src);
		read_name = nname;
	}
	if (item_read(f->q, sfd, read_name, sn.id, &item, NULL, why) != RD_OK)
		return 0;
	if (!state) {
		state = sw_json_str(item, "state");
		if (!state)
			state = "pending";
	}
	int rc = f->fn(item, state, f->arg);
	json_decref(item);
	return rc;
}

int stage_items(struct sw_queue *q, int (*fn)(json_t *item, const char *state, void *arg), void *arg)
{
	int sfd = qdir(q, QD_STAGE);
	if (sfd < 0)
		return -1;
	struct inflight f = { q, fn, arg };
	return each_entry(sfd, inflight_one, &f);
}
