/* queue_batch.c — transitions committed together: the finishes of a batch
 * (done, fail, release, many from standard input; sw-agent run's group
 * commit and --batch).
 *
 * A transition alone (queue_txn.c) writes the new content to a file of its
 * own and removes the old one at the end.  On ext4 a new inode costs about
 * 70 µs and freeing one whose data is on disk about 150 µs: more than all
 * its renames.  A batch moves the claims it finishes as a group G instead,
 * whose new contents are written into the files they replace.  Only a
 * finish into done, dead or cancelled joins the group (a release, or a
 * failure with attempts left, goes alone): a file written in place then
 * never changes again, so the late bytes of a stalled writer are the
 * bytes already there.
 *
 *
 *   1. create  stage/<G>.uC  the group, uncommitted (empty)
 *   2. rename  claimed/<name> -> stage/<G>.mC.<i>  decides, member by
 *              member, as step 1 of a transition does
 *   3. write   <G>.uC  every member's new content, a JSON line each:
 *              {"m":<i>,"item":{…}}; sync (SW_SYNC)
 *   4. rename  <G>.uC -> <G>.cC  commits every member at once: only the
 *              holder of <G>.uC can, and a recoverer renames it away first
 *   5. write   each member's new content over its old one, in place; sync
 *   6. rename  each member to where its new state says
 *   7. sync; unlink <G>.cC
 *
 * Recovery (the owner dead, or the grace passed, as in queue_txn.c):
 *   <G>.uC  uncommitted: renamed away, so that the original's commit
 *           fails and it reports every member stale; every member is then
 *           taken over and put back as it was;
 *   <G>.cC  committed: each member still in stage/ gets the bytes of its
 *           line in the group file written over it, the very bytes the
 *           original writes, and is placed (racing the original's step 6:
 *           one rename wins, the outcome is the same); then <G>.cC goes;
 *   a member with neither marker: its group was aborted; put back.
 * Every writer of a member writes the same bytes, and only after the
 * commit; the member is then placed in done/, dead/ or cancelled/, which
 * it leaves only through a transition that makes a new file.  So a
 * stalled writer's late bytes are the ones already there, and nothing is
 * done twice. */
#include "queue_int.h"
#include "atomic.h"
#include "err.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A transition of the batch, made but not committed. */
struct txn_pend {
	char nonce[96];         /* alone: its nonce */
	int member;             /* in the group: its number; -1 alone */
	char src;
	int back_dfd;
	char back_name[NAME_LEN];
	json_t *next;
	char *buf;              /* a member's new content, dumped */
	size_t len;
	off_t old_len;          /* a member's file's size before */
	bool durable;
	size_t slot;            /* the caller's index of the item */
	bool placed;            /* put in done, dead or cancelled by this process */
	int werr;               /* a member's in-place write failed: errno */
};

enum group { G_NONE, G_OPEN, G_FAILED };

struct txn_batch {
	size_t n, cap;
	bool durable;           /* some transition asks for a sync */
	struct txn_pend *p;
	enum group g;
	char gnonce[96];
	int gfd;                /* <G>.uC, open for step 3 */
	unsigned members;       /* member numbers given */
	uid_t euid;
};

enum outcome { GO_NONE, GO_COMMITTED, GO_STALE, GO_UNDONE, GO_UNKNOWN };

/* The next free entry of b, grown as needed; NULL when out of memory. */
static struct txn_pend *batch_room(struct txn_batch *b)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct txn_pend *np = realloc(b->p, cap * sizeof *np);
		if (!np)
			return NULL;
		b->p = np;
		b->cap = cap;
	}
	return &b->p[b->n];
}

static bool finished_state(const json_t *item)
{
	const char *s = sw_json_str(item, "state");
	return s && (!strcmp(s, "done") || !strcmp(s, "dead") || !strcmp(s, "cancelled"));
}

static void member_name(char out[NAME_LEN], const char *gnonce, unsigned i)
{
	snprintf(out, NAME_LEN, "%s.m%c.%x", gnonce, SRC_CLAIMED, i);
}

int batch_add(struct sw_queue *q, const char *nonce, const struct txn_in *in, json_t *next, json_t **out)
{
	struct txn_batch *b = q->batch;
	struct txn_pend *p = batch_room(b);
	if (!p) {
		char oname[NAME_LEN], nname[NAME_LEN];
		int sfd = qdir(q, QD_STAGE);
		sname_make(oname, nonce, 'o', in->src);
		sname_make(nname, nonce, 'n', in->src);
		SW_NOINTR(unlinkat(sfd, nname, 0));
		put_back(sfd, oname, in->back_dfd, in->back_name);
		json_decref(next);
		return qerr(q, EX_SOFTWARE, "out of memory");
	}
	*p = (struct txn_pend){ .member = -1, .src = in->src, .back_dfd = in->back_dfd, .next = next,
				.durable = in->durable, .slot = q->batch_slot };
	snprintf(p->nonce, sizeof p->nonce, "%s", nonce);
	snprintf(p->back_name, sizeof p->back_name, "%s", in->back_name ? in->back_name : "");
	b->n++;
	b->durable |= in->durable;
	/* the caller's view is its own: the views edit what they get */
	if (out && !(*out = json_deep_copy(next)))
		return qerr(q, EX_SOFTWARE, "out of memory");
	return 0;
}

/* ---- the group ---------------------------------------------------------- */

bool group_ok(struct sw_queue *q, const struct txn_in *in)
{
	struct txn_batch *b = q->batch;
	/* a member is written in place: only a finish into a final state
	 * (durable says so before the new content is known; group_move
	 * checks), of a claim whose file the caller read and can write
	 * (another user's item in a shared workspace may be readable only) */
	if (in->src != SRC_CLAIMED || !in->durable || !in->pre || !in->pre_st || b->g == G_FAILED ||
	    (b->euid != 0 && in->pre_st->st_uid != b->euid))
		return false;
	if (b->g == G_OPEN)
		return true;
	int sfd = qdir(q, QD_STAGE);
	char uname[NAME_LEN];
	queue_nonce(q, b->gnonce);
	sname_make(uname, b->gnonce, 'u', SRC_CLAIMED);
	b->gfd = sfd < 0 ? -1
			 : SW_NOINTR(openat(sfd, uname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
	b->g = b->gfd < 0 ? G_FAILED : G_OPEN;   /* failed: one transition at a time */
	return b->g == G_OPEN;
}

int group_move(struct sw_queue *q, int sfd, struct txn_in *in, json_t **out)
{
	struct txn_batch *b = q->batch;
	struct txn_pend *p = batch_room(b);
	if (!p)
		return qerr(q, EX_SOFTWARE, "out of memory");
	char mname[NAME_LEN];
	member_name(mname, b->gnonce, b->members);
	if (sw_rename_fresh(in->back_dfd, in->back_name, sfd, mname) < 0)
		return errno == ENOENT ? qerr(q, SW_EX_FALSE, "no longer there") : qerr_errno(q, "moving item");
	unsigned i = b->members++;
	json_t *next;
	char *buf;
	size_t len;
	off_t old_len;
	int rc = txn_next_content(q, sfd, mname, in, &next, &buf, &len, &old_len);
	if (rc)
		return rc;
	if (!finished_state(next)) {
		/* not final after all (the file changed since the caller read
		 * it): back, to go alone */
		free(buf);
		json_decref(next);
		if (sw_rename(sfd, mname, in->back_dfd, in->back_name) < 0)
			return qerr_errno(q, "moving item back");
		return GROUP_DECLINED;
	}
	*p = (struct txn_pend){ .member = (int)i, .src = in->src, .back_dfd = in->back_dfd, .next = next,
				.buf = buf, .len = len, .old_len = old_len, .durable = in->durable,
				.slot = q->batch_slot };
	snprintf(p->back_name, sizeof p->back_name, "%s", in->back_name);
	b->n++;
	b->durable |= in->durable;
	/* the caller's view is this very item: its content is dumped
	 * already, and all the batch reads of it from here on is its id and
	 * its final state, which a view keeps (item_view) */
	if (out)
		*out = json_incref(next);
	return 0;
}

/* Step 3: every member's new content into <G>.uC, in one write. */
static int group_seal(struct txn_batch *b)
{
	size_t len = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->p[i].member >= 0)
			len += b->p[i].len + 32;
	char *all = malloc(len + 1), *w = all;
	if (!all)
		return -1;
	for (size_t i = 0; i < b->n; i++) {
		struct txn_pend *p = &b->p[i];
		if (p->member < 0)
			continue;
		w += sprintf(w, "{\"m\":%d,\"item\":", p->member);
		memcpy(w, p->buf, p->len);
		w += p->len;
		w += sprintf(w, "}\n");
	}
	int rc = sw_write_all(b->gfd, all, (size_t)(w - all));
	free(all);
	return rc;
}

/* Step 5 for one member: its new content over the old, in place (a file
 * no longer than that needs no truncation: old_len, or -1 unknown). */
static int member_rewrite(int sfd, const char *mname, const char *buf, size_t len, off_t old_len)
{
	int fd = SW_NOINTR(openat(sfd, mname, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
	if (fd < 0)
		return -1;
	/* a fresh descriptor writes from the start */
	int rc = sw_write_all(fd, buf, len);
	if (rc == 0 && (old_len < 0 || old_len > (off_t)len) && SW_NOINTR(ftruncate(fd, (off_t)len)) < 0)
		rc = -1;
	int e = errno;
	if (close(fd) < 0 && rc == 0)
		return -1;
	errno = e;
	return rc;
}

/* Steps 3 to 5.  rc (when not 0) is the code for every member. */
static enum outcome group_commit(struct sw_queue *q, struct txn_batch *b, bool sync, int *rc)
{
	int sfd = qdir(q, QD_STAGE);
	char uname[NAME_LEN], cname[NAME_LEN];
	sname_make(uname, b->gnonce, 'u', SRC_CLAIMED);
	sname_make(cname, b->gnonce, 'c', SRC_CLAIMED);
	int sealed = group_seal(b);
	int e = errno;
	if (close(b->gfd) < 0 && sealed == 0) {
		sealed = -1;
		e = errno;
	}
	b->gfd = -1;
	if (sealed < 0) {
		errno = e;
		*rc = qerr_errno(q, "writing the batch");
		return GO_UNDONE;
	}
	if (sync && SW_NOINTR(syncfs(q->fd)) < 0) {
		*rc = qerr_errno(q, "syncing");
		return GO_UNDONE;
	}
	if (sw_rename_fresh(sfd, uname, sfd, cname) < 0) {
		if (errno == ENOENT)
			return GO_STALE;   /* aborted by a recoverer while this process stalled */
		/* maybe made, maybe not: recovery knows, from the names */
		*rc = qerr_errno(q, "committing");
		return GO_UNKNOWN;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct txn_pend *p = &b->p[i];
		char mname[NAME_LEN];
		if (p->member < 0)
			continue;
		member_name(mname, b->gnonce, (unsigned)p->member);
		if (member_rewrite(sfd, mname, p->buf, p->len, p->old_len) < 0) {
			p->werr = errno;
			p->member = -2;   /* not placed here: recovery places it */
		}
	}
	/* the members' new contents are durable before any is placed: a
	 * crash leaves each either in stage/, where recovery writes it
	 * again, or placed whole */
	if (sync && SW_NOINTR(syncfs(q->fd)) < 0) {
		*rc = qerr_errno(q, "syncing");
		return GO_UNKNOWN;
	}
	return GO_COMMITTED;
}

/* Step 6 for one member.  false: left for recovery (said why). */
static bool member_place(struct sw_queue *q, const struct txn_batch *b, struct txn_pend *p, bool *placed)
{
	int sfd = qdir(q, QD_STAGE);
	char mname[NAME_LEN];
	*placed = false;
	if (p->member == -2) {
		if (p->werr == ENOENT)
			return true;   /* a recoverer has it: the outcome is the same */
		sw_warn("queue '%s': item %s is finished but could not be written (%s); "
			"maintenance will place it", q->name, item_id(p->next), strerror(p->werr));
		return false;
	}
	member_name(mname, b->gnonce, (unsigned)p->member);
	if (place(q, sfd, mname, p->next, p->durable) == 0) {
		*placed = true;
		return true;
	}
	if (errno == ENOENT)
		return true;   /* a recoverer placed it: the outcome is the same */
	sw_warn("queue '%s': item %s is finished but could not be placed (%s); maintenance will place it",
		q->name, item_id(p->next), strerror(errno));
	return false;
}

/* ---- batches ------------------------------------------------------------ */

/* An uncommitted transition of a batch given back as it was. */
static void txn_undo(struct sw_queue *q, const struct txn_batch *b, const struct txn_pend *p)
{
	int sfd = qdir(q, QD_STAGE);
	char oname[NAME_LEN], nname[NAME_LEN];
	if (p->member >= 0) {
		member_name(oname, b->gnonce, (unsigned)p->member);
		put_back(sfd, oname, p->back_dfd, p->back_name);
		return;
	}
	sname_make(oname, p->nonce, 'o', p->src);
	sname_make(nname, p->nonce, 'n', p->src);
	SW_NOINTR(unlinkat(sfd, nname, 0));
	put_back(sfd, oname, p->back_dfd, p->back_name);
}

/* The items waiting for the batch's finished ones: one look at deps/
 * for all. */
static void batch_release(struct sw_queue *q, const struct txn_batch *b)
{
	const char **ids = malloc(b->n * sizeof *ids);
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->p[i].placed) {
			if (!ids) {   /* no memory for the list: one look each */
				deps_release(q, item_id(b->p[i].next));
				continue;
			}
			ids[n++] = item_id(b->p[i].next);
		}
	deps_release_many(q, ids, n);
	free(ids);
}

void txn_batch_begin(struct sw_queue *q)
{
	struct txn_batch *b = calloc(1, sizeof *b);
	if (b) {
		b->gfd = -1;
		b->euid = geteuid();
	}
	q->batch = b;   /* NULL (no memory): one transition at a time */
}

/* One transition of the batch, committed or given back. */
static void batch_finish_one(struct sw_queue *q, struct txn_batch *b, struct txn_pend *p, int rc,
			     enum outcome g, bool *keep, void (*stale)(size_t slot, void *arg), void *arg)
{
	bool placed = false;
	if (p->member == -1) {
		if (rc)   /* nothing is committed unless its content is durable */
			txn_undo(q, b, p);
		else if (txn_commit(q, p->nonce, p->src, p->next, p->durable, &placed) == SW_EX_FALSE)
			stale(p->slot, arg);
	} else if (g == GO_STALE) {
		stale(p->slot, arg);
	} else if (g == GO_UNDONE) {
		txn_undo(q, b, p);
	} else if (g == GO_COMMITTED && !member_place(q, b, p, &placed)) {
		*keep = true;
	}
	/* finished and placed here: its waiters are this batch's to free
	 * (an item this process could not place, maintenance places, and
	 * frees them then) */
	p->placed = placed && finished_state(p->next);
}

/* Commits a batch: one sync for every new content (a group's: one more
 * for its members' contents written in place), the commits and placings,
 * one sync for all of them.  stale(slot, arg) is called for a
 * transition taken over meanwhile.  0, or the code of a failed sync (the
 * transitions are made, but not known to be durable). */
int txn_batch_end(struct sw_queue *q, void (*stale)(size_t slot, void *arg), void *arg)
{
	struct txn_batch *b = q->batch;
	if (!b)
		return 0;
	q->batch = NULL;
	int rc = 0;
	bool sync = b->n && sw_sync_wanted(q->ws->sync, b->durable);
	size_t members = 0;
	for (size_t i = 0; i < b->n; i++)
		members += b->p[i].member >= 0;
	enum outcome g = b->g == G_OPEN && members ? group_commit(q, b, sync, &rc) : GO_NONE;
	/* the group's sync covered the others' new contents */
	if (g == GO_NONE && sync && SW_NOINTR(syncfs(q->fd)) < 0)
		rc = qerr_errno(q, "syncing");
	q->sync_deferred = true;
	q->deps_deferred = true;
	bool keep = false;
	for (size_t i = 0; i < b->n; i++)
		batch_finish_one(q, b, &b->p[i], rc, g, &keep, stale, arg);
	q->deps_deferred = false;
	batch_release(q, b);
	q->sync_deferred = false;
	if (!rc && (sync || q->sync_owed) && SW_NOINTR(syncfs(q->fd)) < 0)
		rc = qerr_errno(q, "syncing");
	q->sync_owed = false;
	int sfd = qdir(q, QD_STAGE);
	char gname[NAME_LEN];
	if (g == GO_COMMITTED && !keep) {
		sname_make(gname, b->gnonce, 'c', SRC_CLAIMED);
		SW_NOINTR(unlinkat(sfd, gname, 0));
	} else if (g == GO_UNDONE || (b->g == G_OPEN && !members)) {
		sname_make(gname, b->gnonce, 'u', SRC_CLAIMED);
		SW_NOINTR(unlinkat(sfd, gname, 0));
	}
	if (b->gfd >= 0)
		close(b->gfd);
	for (size_t i = 0; i < b->n; i++) {
		json_decref(b->p[i].next);
		free(b->p[i].buf);
	}
	free(b->p);
	free(b);
	return rc;
}

/* ---- recovery ----------------------------------------------------------- */

static long long group_forward(struct sw_queue *q, int sfd, const char *gnonce);

struct members { struct sw_queue *q; const char *gnonce; long long n; };

/* An aborted group's member, put back as it was. */
static int abort_member(int sfd, const char *name, void *arg)
{
	struct members *m = arg;
	struct sname sn;
	if (sname_parse(name, &sn) && sn.kind == 'm' && !strcmp(sn.nonce, m->gnonce) &&
	    txn_takeover(m->q, sfd, name, SRC_CLAIMED) == 0)
		m->n++;
	return 0;
}

/* An uncommitted group: its marker renamed away (the original cannot
 * commit any more), its members put back. */
static long long group_abort(struct sw_queue *q, int sfd, const char *gnonce)
{
	char uname[NAME_LEN], gone[NAME_LEN], nonce[96];
	sname_make(uname, gnonce, 'u', SRC_CLAIMED);
	queue_nonce(q, nonce);
	snprintf(gone, sizeof gone, ".tmp.%s", nonce);
	if (sw_rename(sfd, uname, sfd, gone) < 0) {
		if (errno != ENOENT)
			return 0;   /* next time */
		/* committed meanwhile, or aborted by another: its members
		 * go forward, or back */
		if (stage_has(sfd, gnonce, 'c', SRC_CLAIMED))
			return group_forward(q, sfd, gnonce);
	}
	SW_NOINTR(unlinkat(sfd, gone, 0));
	struct members m = { q, gnonce, 0 };
	each_entry(sfd, abort_member, &m);
	return m.n;
}

/* What a group file's line gives: its member's number, the item's bytes
 * (as group_seal wrote them) and the item, checked. */
struct gline {
	unsigned m;
	const char *raw;
	size_t len;
	json_t *item;
};

/* One line {"m":<i>,"item":{…}}\n; false when it is not that. */
static bool gline_parse(const char *line, size_t l, struct gline *g)
{
	static const char pre[] = "{\"m\":", mid[] = ",\"item\":", end[] = "}\n";
	if (l < sizeof pre + sizeof mid + sizeof end || memcmp(line, pre, sizeof pre - 1))
		return false;
	const char *d = line + sizeof pre - 1;
	size_t nd = strspn(d, "0123456789");
	if (nd == 0 || nd > 9 || (d[0] == '0' && nd > 1) || memcmp(d + nd, mid, sizeof mid - 1) ||
	    memcmp(line + l - (sizeof end - 1), end, sizeof end - 1))
		return false;
	g->m = (unsigned)strtoul(d, NULL, 10);
	g->raw = d + nd + sizeof mid - 1;
	g->len = (size_t)(line + l - (sizeof end - 1) - g->raw);
	g->item = json_loadb(g->raw, g->len, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(g->item) && !item_check(g->item, NULL) && finished_state(g->item))
		return true;
	json_decref(g->item);
	return false;
}

/* Calls fn for each line of <G>.cC until it returns true (the item is
 * fn's to keep then).  1 when a line is damaged, 0 when all were read
 * or fn stopped, -1 with errno when the file cannot be read. */
static int each_gline(struct sw_queue *q, int sfd, const char *gnonce,
		      bool (*fn)(struct gline *g, void *arg), void *arg)
{
	char cname[NAME_LEN];
	sname_make(cname, gnonce, 'c', SRC_CLAIMED);
	struct stat st;
	int fd = sw_open_file(sfd, cname, &st);
	if (fd < 0)
		return -1;
	FILE *f = fdopen(fd, "r");
	size_t max = q->item_max + SW_ITEM_SLACK + 64;
	char *line = malloc(max + 2);
	if (!f || !line) {
		free(line);
		f ? fclose(f) : close(fd);
		errno = ENOMEM;
		return -1;
	}
	int rc = 0;
	struct gline g;
	while (rc == 0 && fgets(line, (int)(max + 2), f)) {
		size_t l = strlen(line);
		/* a line is whole, ends in a newline, and is one item's size */
		if (l == 0 || line[l - 1] != '\n' || !gline_parse(line, l, &g)) {
			rc = 1;
		} else if (fn(&g, arg)) {
			break;
		} else {
			json_decref(g.item);
		}
	}
	int e = errno;
	if (rc == 0 && ferror(f))
		rc = -1;
	fclose(f);
	free(line);
	errno = e;
	return rc;
}

struct forward { struct sw_queue *q; int sfd; const char *gnonce; long long n; bool left, wrong; };

/* Whether member file mname holds the item of the line (or cannot tell:
 * torn by a crash in its owner's write over it).  A damaged group file
 * must not put one item's content over another's. */
static bool member_matches(struct forward *fw, const char *mname, const json_t *item)
{
	json_t *cur;
	char why[128];
	if (item_read(fw->q, fw->sfd, mname, NULL, &cur, NULL, why) != RD_OK)
		return true;   /* gone (the rewrite says ENOENT), or torn */
	bool same = !strcmp(item_id(cur), item_id(item));
	json_decref(cur);
	return same;
}

/* A committed group's member: its line's bytes written over it (the
 * bytes its owner writes) and placed. */
static bool forward_member(struct gline *g, void *arg)
{
	struct forward *fw = arg;
	char mname[NAME_LEN];
	member_name(mname, fw->gnonce, g->m);
	if (!member_matches(fw, mname, g->item)) {
		fw->wrong = true;   /* stop: the file is not to be trusted */
		json_decref(g->item);
		return true;
	}
	if (member_rewrite(fw->sfd, mname, g->raw, g->len, -1) < 0 ||
	    place(fw->q, fw->sfd, mname, g->item, true) < 0)
		fw->left |= errno != ENOENT;   /* ENOENT: placed, by its owner or another */
	else
		fw->n++;
	return false;
}

/* A committed group: every member still in stage/ placed as its line in
 * the group file says.  A damaged file is moved aside: its members not
 * placed yet are then put back. */
static long long group_forward(struct sw_queue *q, int sfd, const char *gnonce)
{
	char cname[NAME_LEN];
	sname_make(cname, gnonce, 'c', SRC_CLAIMED);
	struct forward fw = { q, sfd, gnonce, 0, false, false };
	int rc = each_gline(q, sfd, gnonce, forward_member, &fw);
	const char *why = rc < 0 && errno != ENOENT && sw_errno_damaged(errno) ? "not a regular file"
			: rc == 1 ? "a batch's file that is not whole"
			: fw.wrong ? "a batch's file naming a member of another item" : NULL;
	if (why) {
		/* its members not placed yet go back, as when it is not committed */
		quarantine(q, sfd, cname, "stage", why);
		struct members m = { q, gnonce, 0 };
		each_entry(sfd, abort_member, &m);
		return fw.n + m.n;
	}
	if (rc == 0 && !fw.left)
		SW_NOINTR(unlinkat(sfd, cname, 0));
	return fw.n;
}

struct find_member { unsigned m; json_t *item; };

static bool is_member(struct gline *g, void *arg)
{
	struct find_member *fm = arg;
	if (g->m != fm->m)
		return false;
	fm->item = g->item;
	return true;
}

enum rd group_member_read(struct sw_queue *q, int sfd, const char *name, const struct sname *sn,
			  json_t **item, const char **state)
{
	/* committed: it counts where it goes, as its group file says */
	struct find_member fm = { sn->member, NULL };
	if (stage_has(sfd, sn->nonce, 'c', SRC_CLAIMED) &&
	    each_gline(q, sfd, sn->nonce, is_member, &fm) == 0 && fm.item) {
		*item = fm.item;
		*state = sw_json_str(fm.item, "state");
		return RD_OK;
	}
	char why[128];
	*state = src_state(sn->src);
	return item_read(q, sfd, name, NULL, item, NULL, why);
}

long long group_recover(struct sw_queue *q, int sfd, const char *name, const struct sname *sn)
{
	switch (sn->kind) {
	case 'u':
		return group_abort(q, sfd, sn->nonce);
	case 'c':
		return group_forward(q, sfd, sn->nonce);
	default:
		/* looked at in the order the original renames them */
		if (stage_has(sfd, sn->nonce, 'u', SRC_CLAIMED))
			return group_abort(q, sfd, sn->nonce);
		if (stage_has(sfd, sn->nonce, 'c', SRC_CLAIMED))
			return group_forward(q, sfd, sn->nonce);
		return txn_takeover(q, sfd, name, SRC_CLAIMED) == 0;
	}
}
