/* queue_pending.c — pending items in numbered buckets, and claiming them.
 *
 * pending/<p>/<part>/<n>/<order>.<id>: an adder fills bucket n up to
 * BUCKET_MAX entries, then makes n+1; a claimer reads only the lowest
 * non-empty bucket (the head hint says where to start) and renames one
 * entry out of it, so a claim costs the same with a thousand or a million
 * items pending.  Keys start with the time they were queued: within a
 * priority, the smallest key is the oldest. */
#include "queue_int.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include "shard.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUCKET_MAX 256          /* entries an adder puts in one bucket */
#define PROBE_MAX 64            /* missing bucket numbers skipped over */
#define PICK_MAX 8              /* candidates read from the head bucket */
#define KEEP_MAX 1024           /* ... when claiming many at once */
#define AFF_WALK_MAX 16         /* buckets of others' keys walked past */
#define SKIP_MAX 64             /* unreadable entries a claim walks past */

void bucket_init(struct bucket *b)
{
	b->pfd = -1;
	b->n = 0;
	b->used = 0;
	b->part[0] = 0;
	b->prio = -1;
}

void bucket_done(struct bucket *b)
{
	if (b->pfd >= 0)
		close(b->pfd);
	bucket_init(b);
}

static const char *item_part(const json_t *item)
{
	const char *role = sw_json_str(item, "role");
	return role ? role : "-";
}

/* Opens dfd/name, a directory of pending/; something else in its place
 * (a symlink, a file) is moved aside first, and a directory made anew. */
static int pending_dir(struct sw_queue *q, int dfd, const char *name, const char *from, bool create)
{
	int fd = sw_open_dir(dfd, name, create);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		quarantine(q, dfd, name, from, "not a directory");
		fd = sw_open_dir(dfd, name, create);
	}
	return fd;
}

static int part_open(struct sw_queue *q, int prio, const char *part, bool create)
{
	char p[8], from[32];
	snprintf(p, sizeof p, "%d", prio);
	snprintf(from, sizeof from, "pending/%d", prio);
	int pd = qdir(q, QD_PENDING);
	int prfd = pd < 0 ? -1 : pending_dir(q, pd, p, "pending", create);
	if (prfd < 0)
		return -1;
	int fd = pending_dir(q, prfd, part, from, create);
	int e = errno;
	close(prfd);
	errno = e;
	return fd;
}

/* A new bucket for an adder: the lowest free number at or above the tail
 * hint.  Bucket names are never knowingly reused: one below the head hint
 * is given up again, because claimers never look there. */
static int bucket_new(struct bucket *b)
{
	long long head = read_hint(b->pfd, "head");
	long long n = read_hint(b->pfd, "tail");
	if (head < 1) head = 1;
	if (n < head) n = head;
	for (;;) {
		char name[32];
		snprintf(name, sizeof name, "%lld", n);
		if (SW_NOINTR(mkdirat(b->pfd, name, 0777)) == 0) {
			long long h = read_hint(b->pfd, "head");
			if (h > n) {
				SW_NOINTR(unlinkat(b->pfd, name, AT_REMOVEDIR));
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
		return bucket_new(b);
	return 0;
}

/* Renames dfd/name (holding item) into a pending bucket.  A bucket that
 * a claimer removed meanwhile (ENOENT) is replaced by a new one. */
static int bucket_put(struct sw_queue *q, struct bucket *b, int dfd, const char *name,
		      const json_t *item, struct place *where)
{
	for (int tries = 0; tries < 100; tries++) {
		if (bucket_for(q, b, item) < 0)
			return -1;
		char bn[32], key[NAME_LEN];
		snprintf(bn, sizeof bn, "%lld", b->n);
		keyed_name_make(key, sw_now_ns(), item);
		int bfd = sw_open_dir(b->pfd, bn, false);
		if (bfd >= 0 && sw_rename(dfd, name, bfd, key) == 0) {
			close(bfd);
			b->used++;
			if (where) {
				where->d = QD_PENDING;
				snprintf(where->sub, sizeof where->sub, "%d/%s/%s", b->prio, b->part, bn);
				snprintf(where->name, sizeof where->name, "%s", key);
			}
			return 0;
		}
		int e = errno;
		if (bfd >= 0)
			close(bfd);
		/* the source gone is the caller's news; a bucket gone (or not a
		 * directory) means: take another */
		if (SW_NOINTR(faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW)) < 0) {
			errno = ENOENT;
			return -1;
		}
		if (e != ENOENT && e != ELOOP && e != ENOTDIR) {
			errno = e;
			return -1;
		}
		b->n = 0;
	}
	errno = EAGAIN;
	return -1;
}

int place_pending(struct sw_queue *q, struct bucket *b, int dfd, const char *name,
		  const json_t *item, struct place *where)
{
	char key[NAME_LEN];
	int64_t nb = sw_json_int(item, "not_before_unix_ns", 0);
	if (nb > sw_now_ns()) {
		int tfd = qdir(q, QD_TIMED);
		snprintf(key, sizeof key, "%016llx.%s", (unsigned long long)nb, item_id(item));
		if (tfd < 0 || sw_rename(dfd, name, tfd, key) < 0)
			return -1;
		if (where) {
			where->d = QD_TIMED;
			where->sub[0] = 0;
			snprintf(where->name, sizeof where->name, "%s", key);
		}
		return 0;
	}
	char dep[NAME_LEN];
	const char *how;
	if (json_array_size(json_object_get(item, "after")) > 0 && deps_verdict(q, item, dep, &how) != DEPS_READY) {
		int bl = qdir(q, QD_BLOCKED);
		if (bl < 0 || deps_mark(q, item) < 0 || sw_rename(dfd, name, bl, item_id(item)) < 0)
			return -1;
		if (where) {
			where->d = QD_BLOCKED;
			where->sub[0] = 0;
			snprintf(where->name, sizeof where->name, "%s", item_id(item));
		}
		/* a dependency may have finished between the check and the
		 * rename: look again now that the item is where finishers look */
		return promote_blocked(q, b, item_id(item));
	}
	return bucket_put(q, b, dfd, name, item, where);
}

/* ---- the head of a partition ---------------------------------------- */

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
		if (SW_NOINTR(faccessat(pfd, name, F_OK, AT_SYMLINK_NOFOLLOW)) == 0)
			return n;
	}
	return 0;
}

struct skips {
	char names[SKIP_MAX][NAME_LEN];
	int n;
};

static bool skipped(const struct skips *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return true;
	return false;
}

struct cand {
	int pfd;                        /* pending/<p>/<part>, owned */
	int bfd;                        /* its bucket, opened by the first claim, owned */
	int prio;
	char part[NAME_LEN];
	long long bucket;
	char (*keys)[NAME_LEN];         /* the smallest entries, sorted */
	int nkeys;
};

/* Keeps name among the `keep` smallest of c->keys. */
static void keep_smallest(struct cand *c, const char *name, int keep)
{
	int i = c->nkeys < keep ? c->nkeys++ : keep;
	if (i == keep && strcmp(name, c->keys[keep - 1]) >= 0)
		return;
	if (i == keep)
		i = keep - 1;
	while (i > 0 && strcmp(name, c->keys[i - 1]) < 0) {
		memcpy(c->keys[i], c->keys[i - 1], NAME_LEN);
		i--;
	}
	snprintf(c->keys[i], NAME_LEN, "%s", name);
}

struct want {
	const char *const *roles;
	size_t nroles;
	struct skips *sk;
	bool spread;
	int err;                /* an errno the search met, other than absence */
	int keep;               /* candidates kept per bucket */
	char (*spare)[NAME_LEN];   /* keys buffer for the next candidate */
	const struct sw_affinity *aff;
	int64_t now;
};

/* Whether this claimer may take the entry: without affinity, any; with
 * it, one without a key, one of its own keys, or another's that has
 * waited long enough. */
static bool eligible(const struct want *w, const char *name)
{
	int64_t t;
	uint64_t h;
	bool has_key;
	const char *id;
	if (!w->aff || !keyed_name_split(name, &t, &h, &has_key, &id) || !has_key)
		return true;
	if (sw_place(w->aff->ring, h) == w->aff->me || t <= w->now - w->aff->steal_after_ns)
		return true;
	if (w->aff->steal_at && t + w->aff->steal_after_ns < *w->aff->steal_at)
		*w->aff->steal_at = t + w->aff->steal_after_ns;
	return false;
}

/* Notes an error that is not a vanished entry: the search goes on, but an
 * empty result is then an I/O error, not "nothing to claim". */
static void search_err(struct want *w)
{
	if (errno != ENOENT && errno != ESTALE && !w->err)
		w->err = errno ? errno : EIO;
}

/* Reads bucket n's smallest entries into c.  0: found some; 1: empty;
 * 2: only entries this claim skips; -1: the bucket is gone.  An entry
 * that is not a valid key, or a bucket that is not a directory, goes to
 * quarantine. */
static int bucket_pick(struct sw_queue *q, struct cand *c, long long n, struct want *w)
{
	const struct skips *sk = w->sk;
	char name[32], from[PATH_LEN];
	snprintf(name, sizeof name, "%lld", n);
	snprintf(from, sizeof from, "pending/%d/%s", c->prio, c->part);
	int bfd = sw_open_dir(c->pfd, name, false);
	if (bfd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			quarantine(q, c->pfd, name, from, "a bucket that is not a directory");
		else
			search_err(w);
		return -1;
	}
	DIR *d = fdopendir(bfd);
	if (!d) {
		search_err(w);
		close(bfd);
		return -1;
	}
	snprintf(from + strlen(from), sizeof from - strlen(from), "/%s", name);
	c->nkeys = 0;
	bool others = false;
	struct dirent *de;
	int64_t t;
	const char *id;
	while ((de = sw_readdir(d))) {
		if (sw_hidden(de->d_name))
			continue;
		if (!keyed_name_parse(de->d_name, &t, &id)) {
			quarantine(q, dirfd(d), de->d_name, from, "not a pending entry name");
			continue;
		}
		if (skipped(sk, de->d_name) || !eligible(w, de->d_name)) {
			others = true;
			continue;
		}
		keep_smallest(c, de->d_name, w->keep);
	}
	if (errno)
		search_err(w);
	closedir(d);
	c->bucket = n;
	return c->nkeys ? 0 : others ? 2 : 1;
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
		int bfd = SW_NOINTR(openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (bfd >= 0) {
			close(bfd);
			write_hint(pfd, "head", k);
			return k;
		}
	}
	return n;
}

/* Finds the head entries of one partition, walking past (and removing)
 * buckets that are empty while a later one exists.  0 found, 1 none. */
static int part_head(struct sw_queue *q, struct cand *c, struct want *w)
{
	long long hint = read_hint(c->pfd, "head"), n = hint < 1 ? 1 : hint;
	bool lowered = false;
	int passed = 0;          /* buckets of entries this claim may not take */
	for (int steps = 0; steps < 100000; steps++) {
		int r = bucket_pick(q, c, n, w);
		if (r == 0) {
			/* one came back below: walk once more from there (once: a
			 * bucket that cannot be removed must not keep us here).
			 * The head stays below buckets others may take from. */
			if (n != hint && !passed && head_raise(c->pfd, hint, n) != n && !lowered) {
				lowered = true;
				hint = n = read_hint(c->pfd, "head");
				continue;
			}
			return 0;
		}
		/* with affinity, a claim walks past a few buckets of others'
		 * keys, not the whole queue: those become its own to take once
		 * they have waited --steal-after */
		if (r == 2 && ++passed > AFF_WALK_MAX && w->aff)
			return 1;
		long long m = next_bucket(c->pfd, n + 1);
		if (!m) {
			/* remember how far the removed buckets go, or the next
			 * claimer walks the same holes again */
			if (n != hint && r == 1 && !passed)
				head_raise(c->pfd, hint, n);
			return 1;
		}
		if (r == 1) {
			char name[32];
			snprintf(name, sizeof name, "%lld", n);
			/* ENOTEMPTY: an adder just put something in: look again */
			if (SW_NOINTR(unlinkat(c->pfd, name, AT_REMOVEDIR)) < 0 && errno == ENOTEMPTY)
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
static int prio_best(struct sw_queue *q, int prio, struct want *w, struct cand *best)
{
	char p[8];
	snprintf(p, sizeof p, "%d", prio);
	int pd = qdir(q, QD_PENDING);
	int dfd = pd < 0 ? -1 : pending_dir(q, pd, p, "pending", false);
	if (dfd < 0) {
		search_err(w);
		return 1;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		search_err(w);
		close(dfd);
		return 1;
	}
	int found = 1;
	struct dirent *de;
	struct cand c = { .bfd = -1, .keys = w->spare };
	while ((de = sw_readdir(d))) {
		if (sw_hidden(de->d_name) || !role_allowed(de->d_name, w->roles, w->nroles))
			continue;
		if (strcmp(de->d_name, "-") && sw_name_problem(de->d_name))
			continue;
		char from[32];
		snprintf(from, sizeof from, "pending/%d", prio);
		c.pfd = pending_dir(q, dirfd(d), de->d_name, from, false);
		if (c.pfd < 0) {
			search_err(w);
			continue;
		}
		c.prio = prio;
		snprintf(c.part, sizeof c.part, "%s", de->d_name);
		if (part_head(q, &c, w) == 0 &&
		    (found || strcmp(c.keys[0], best->keys[0]) < 0)) {
			if (!found)
				close(best->pfd);
			/* the old best's keys buffer reads the next partition */
			char (*free_keys)[NAME_LEN] = best->keys;
			*best = c;
			c.keys = w->spare = free_keys;
			found = 0;
		} else
			close(c.pfd);
	}
	/* a priority's directory is never removed: a stale handle here is
	 * an error, not a bucket that went away */
	if (errno == ESTALE && !w->err)
		w->err = ESTALE;
	else if (errno)
		search_err(w);
	closedir(d);
	return found;
}

static int64_t expiry_for(int64_t ttl_ns)
{
	/* whole milliseconds: the claim's name carries it */
	int64_t e = sw_now_ns() + ttl_ns;
	return (e + 999999) / 1000000 * 1000000;
}

static uint64_t new_token(const json_t *item)
{
	/* the claim count in the high bits makes tokens grow claim by claim;
	 * the low bits are random, so that two claims of one generation (one
	 * of which lost the rename) still differ */
	uint64_t r = sw_rand32() & ((1u << TOKEN_RAND_BITS) - 1);
	return (item_gen(item) + 1) << TOKEN_RAND_BITS | r | 1;
}

enum { CL_WON, CL_LOST, CL_SKIP, CL_ERR };

/* Tries to take entry key of c's bucket. */
static int claim_entry(struct sw_queue *q, struct cand *c, const char *key, int64_t ttl_ns,
		       json_t **out)
{
	char bn[32], why[128], from[PATH_LEN], cname[NAME_LEN];
	int64_t t;
	const char *id;
	if (!keyed_name_parse(key, &t, &id))
		return CL_SKIP;
	snprintf(bn, sizeof bn, "%lld", c->bucket);
	/* one open of the bucket for all the claims of a pass */
	if (c->bfd < 0)
		c->bfd = sw_open_dir(c->pfd, bn, false);
	int bfd = c->bfd, cfd = qdir(q, QD_CLAIMED);
	if (bfd < 0 || cfd < 0)
		return bfd < 0 && errno == ENOENT ? CL_LOST : CL_ERR;
	/* the content of a pending entry never changes: reading it before
	 * the rename is safe, and gives the claim count for the token */
	json_t *item;
	struct stat st;
	enum rd rd = item_read(q, bfd, key, id, &item, &st, why);
	if (rd != RD_OK) {
		if (rd == RD_DAMAGED) {
			snprintf(from, sizeof from, "pending/%d/%s/%s", c->prio, c->part, bn);
			quarantine(q, bfd, key, from, why);
		}
		return rd == RD_GONE ? CL_LOST : rd == RD_ERROR ? CL_ERR : CL_SKIP;
	}
	int64_t ttl = ttl_ns > 0 ? ttl_ns : sw_json_int(item, "timeout", 300) * SW_NS_PER_SEC;
	int64_t expiry = expiry_for(ttl);
	uint64_t token = new_token(item);
	claim_name_make(cname, id, token, expiry);
	int rc = sw_rename_fresh(bfd, key, cfd, cname);   /* the token makes it new */
	int e = errno;
	if (rc < 0) {
		json_decref(item);
		errno = e;
		return e == ENOENT ? CL_LOST : CL_ERR;
	}
	/* the rename keeps the file: a keeping claimer's renewal or finish
	 * checks that it is still this one and needs no read */
	json_t *kept = q->keep_claimed ? json_deep_copy(item) : NULL;
	if (kept)
		claim_cache_keep(q, id, token, expiry, kept, &st);
	else
		claim_cache_put(q, id, token, expiry);
	*out = claim_view(q, item, token, expiry);
	return CL_WON;
}

/* Why nothing was claimed: q->err says. */
static int none_claimable(struct sw_queue *q, const struct skips *sk)
{
	if (sk->n >= SKIP_MAX)
		return qerr(q, EX_TEMPFAIL, "nothing claimable in queue '%s' (at least %d items of "
			    "other users cannot be read)", q->name, SKIP_MAX);
	if (sk->n)
		return qerr(q, EX_TEMPFAIL, "nothing claimable in queue '%s' (%d items of other users "
			    "cannot be read)", q->name, sk->n);
	return qerr(q, EX_TEMPFAIL, "nothing to claim in queue '%s'", q->name);
}

/* One pass over the best candidates: claims them in order (from a random
 * one of them after a lost race, so that claimers on other hosts do not
 * all chase one entry).  CL_WON when it claimed at least one, CL_LOST
 * when a race was lost and the bucket must be read again, CL_SKIP when
 * its entries could not be taken, CL_ERR (rc set) on an error or when fn
 * stopped it. */
static int claim_pass(struct sw_queue *q, struct cand *best, struct want *w, const struct sw_claim_opts *o,
		      size_t want_n, size_t *got, int (*fn)(json_t *, void *), void *arg, int *rc)
{
	int start = w->spread ? (int)sw_rand_below((uint32_t)best->nkeys) : 0, res = CL_SKIP;
	for (int k = 0; k < best->nkeys && *got < want_n; k++) {
		const char *key = best->keys[(start + k) % best->nkeys];
		json_t *item = NULL;
		int r = claim_entry(q, best, key, o->ttl_ns, &item);
		if (r == CL_WON) {
			(*got)++;
			res = CL_WON;
			/* fn's 0 must not end the claiming: *rc stays "not yet" */
			int frc = fn(item, arg);
			if (frc) {
				*rc = frc;
				return CL_ERR;
			}
		} else if (r == CL_ERR) {
			*rc = qerr_errno(q, "claiming");
			return CL_ERR;
		} else if (r == CL_SKIP && w->sk->n < SKIP_MAX) {
			snprintf(w->sk->names[w->sk->n++], NAME_LEN, "%s", key);
		} else if (r == CL_LOST) {
			w->spread = true;
			if (want_n == 1)
				return CL_LOST;   /* the bucket moved on: read it again */
			if (res != CL_WON)
				res = CL_LOST;
		}
	}
	return res;
}

int sw_queue_claim_many(struct sw_queue *q, const struct sw_claim_opts *o,
			int (*fn)(json_t *item, void *arg), void *arg, size_t *n)
{
	maybe_maintain(q);
	size_t want_n = o->max ? o->max : 1, got = 0;
	int keep = want_n > KEEP_MAX ? KEEP_MAX : want_n > 2 ? (int)want_n : 2;
	struct skips *sk = calloc(1, sizeof *sk);
	char (*bufs)[NAME_LEN] = calloc(2 * (size_t)(keep > PICK_MAX ? keep : PICK_MAX), NAME_LEN);
	*n = 0;
	if (!sk || !bufs) {
		free(sk);
		free(bufs);
		return qerr(q, EX_SOFTWARE, "out of memory");
	}
	struct want w = { o->roles, o->nroles, sk, false, 0, keep, bufs + (keep > PICK_MAX ? keep : PICK_MAX),
			  o->aff, sw_now_ns() };
	int rc = -1;
	for (int round = 0; round < 1000 && rc < 0; round++) {
		struct cand best = { .pfd = -1, .bfd = -1, .keys = bufs };
		if (w.spread && w.keep < PICK_MAX)
			w.keep = PICK_MAX;   /* racing: more to choose from */
		int found = 1;
		for (int p = 0; p <= SW_PRIO_MAX && found; p++)
			found = prio_best(q, p, &w, &best);
		if (found && w.err && !got) {
			errno = w.err;
			rc = qerr_errno(q, "looking for items");
		} else if (found) {
			rc = got ? 0 : none_claimable(q, sk);
		} else {
			int r = claim_pass(q, &best, &w, o, want_n, &got, fn, arg, &rc);
			close(best.pfd);
			if (best.bfd >= 0)
				close(best.bfd);
			if (r != CL_ERR && got == want_n)
				rc = 0;
			else if (r != CL_ERR && sk->n >= SKIP_MAX)
				rc = got ? 0 : none_claimable(q, sk);
		}
	}
	free(sk);
	free(bufs);
	if (got)
		sync_full(q);
	*n = got;
	if (rc < 0)
		rc = got ? 0 : qerr(q, EX_TEMPFAIL, "too much contention in queue '%s'", q->name);
	return rc;
}

static int take_one(json_t *item, void *arg)
{
	*(json_t **)arg = item;
	return 0;
}

int sw_queue_claim(struct sw_queue *q, const char *const *roles, size_t nroles,
		   int64_t ttl_ns, json_t **out)
{
	struct sw_claim_opts o = { roles, nroles, ttl_ns, 1, NULL };
	size_t n;
	return sw_queue_claim_many(q, &o, take_one, out, &n);
}

/* ---- repairing head hints --------------------------------------------- */

/* The head hint of one partition back down to its lowest bucket, when a
 * bucket below it exists: items there would never be claimed. */
static int head_repair(int dfd, const char *part, void *arg)
{
	(void)arg;
	int pfd = sw_open_dir(dfd, part, false);
	if (pfd < 0)
		return 0;
	DIR *d = fdopendir(pfd);
	if (!d) {
		close(pfd);
		return 0;
	}
	long long low = 0, head = read_hint(pfd, "head");
	struct dirent *de;
	while ((de = sw_readdir(d))) {
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

void heads_repair(struct sw_queue *q)
{
	int pd = qdir(q, QD_PENDING);
	if (pd < 0)
		return;
	for (int p = 0; p <= SW_PRIO_MAX; p++) {
		char rel[8];
		snprintf(rel, sizeof rel, "%d", p);
		each_entry_in(pd, rel, head_repair, NULL);
	}
}
