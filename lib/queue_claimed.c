/* queue_claimed.c — what happens to a claim (renew, done, fail, release),
 * and to items found by id (show, cancel, requeue).
 *
 * A claim is claimed/<id>.<token>.<expiry ms>.  A process that made or
 * renewed a claim remembers its name; anyone else finds it by reading
 * claimed/ (as many entries as there are claims, whatever is pending). */
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

#define BACKOFF_CAP_NS (3600 * SW_NS_PER_SEC)

struct cached {
	char id[SW_NAME_MAX + 1];
	uint64_t token;
	int64_t expiry_ns;
	json_t *item;           /* keep_claimed: the content, as read; else NULL */
	dev_t dev;              /* ... and the file's identity then */
	ino_t ino;
};

struct sw_claim_cache {
	size_t n, cap;
	struct cached e[];
};

static struct cached *cache_get(struct sw_queue *q, const char *id, uint64_t token)
{
	struct sw_claim_cache *c = q->claims;
	for (size_t i = 0; c && i < c->n; i++)
		if (c->e[i].token == token && !strcmp(c->e[i].id, id))
			return &c->e[i];
	return NULL;
}

static struct cached *cache_put(struct sw_queue *q, const char *id, uint64_t token, int64_t expiry_ns)
{
	struct cached *e = cache_get(q, id, token);
	if (!e) {
		struct sw_claim_cache *c = q->claims;
		if (!c || c->n == c->cap) {
			size_t cap = c ? c->cap * 2 : 16;
			c = realloc(c, sizeof *c + cap * sizeof c->e[0]);
			if (!c)
				return NULL;   /* a cache only: lookups read claimed/ instead */
			if (!q->claims)
				c->n = 0;
			c->cap = cap;
			q->claims = c;
		}
		e = &c->e[c->n++];
		snprintf(e->id, sizeof e->id, "%s", id);
		e->token = token;
		e->item = NULL;
	}
	e->expiry_ns = expiry_ns;
	return e;
}

void claim_cache_put(struct sw_queue *q, const char *id, uint64_t token, int64_t expiry_ns)
{
	(void)cache_put(q, id, token, expiry_ns);
}

void claim_cache_keep(struct sw_queue *q, const char *id, uint64_t token, int64_t expiry_ns,
		      json_t *item, const struct stat *st)
{
	struct cached *e = cache_put(q, id, token, expiry_ns);
	if (!e) {
		json_decref(item);
		return;
	}
	json_decref(e->item);
	e->item = item;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
}

void claim_cache_drop(struct sw_queue *q, const char *id, uint64_t token)
{
	struct cached *e = cache_get(q, id, token);
	if (e) {
		json_decref(e->item);
		*e = q->claims->e[--q->claims->n];
	}
}

void claim_cache_free(struct sw_queue *q)
{
	for (size_t i = 0; q->claims && i < q->claims->n; i++)
		json_decref(q->claims->e[i].item);
	free(q->claims);
	q->claims = NULL;
}

struct finder { const char *id; uint64_t token; char *name; bool found; };

static int match_claim(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct finder *f = arg;
	char id[NAME_LEN];
	uint64_t token;
	int64_t exp;
	if (claim_name_parse(name, id, &token, &exp) && token == f->token && !strcmp(id, f->id)) {
		snprintf(f->name, NAME_LEN, "%s", name);
		return f->found = true;
	}
	return 0;
}

/* claimed/ read for the claim id/token: 0 and its name, SW_EX_FALSE when
 * there is none. */
static int claim_scan(struct sw_queue *q, const char *id, uint64_t token, char name[NAME_LEN])
{
	int cfd = qdir(q, QD_CLAIMED);
	if (cfd < 0)
		return qerr_errno(q, "claimed");
	struct finder f = { id, token, name, false };
	if (each_entry(cfd, match_claim, &f) < 0)
		return qerr_errno(q, "reading claimed");
	return f.found ? 0 : SW_EX_FALSE;
}

static int not_claimed(struct sw_queue *q, const char *id, uint64_t token)
{
	return qerr(q, SW_EX_FALSE, "item %s is not claimed with token %llu (stale token, or not claimed)",
		    id, (unsigned long long)token);
}

/* Reads the claim whose name the cache knows (no look first: the open
 * says whether it is there); RD_GONE when the cache has none or it moved
 * (renewed by another process, or taken). */
static enum rd claim_read_cached(struct sw_queue *q, const char *id, uint64_t token, char name[NAME_LEN],
				 json_t **item, struct stat *st, char why[128])
{
	struct cached *e = cache_get(q, id, token);
	if (!e || qdir(q, QD_CLAIMED) < 0)
		return RD_GONE;
	claim_name_make(name, id, token, e->expiry_ns);
	/* the file the claim read, under the name only its claimer makes: a
	 * claim's content is never written over, so it is what was read
	 * (the caller edits its copy) */
	struct stat sbuf, *sp = st ? st : &sbuf;
	if (e->item && SW_NOINTR(fstatat(q->dfd[QD_CLAIMED], name, sp, AT_SYMLINK_NOFOLLOW)) == 0 &&
	    S_ISREG(sp->st_mode) && sp->st_dev == e->dev && sp->st_ino == e->ino)
		return (*item = json_deep_copy(e->item)) ? RD_OK : (errno = ENOMEM, RD_ERROR);
	enum rd rd = item_read(q, q->dfd[QD_CLAIMED], name, id, item, st, why);
	if (rd == RD_GONE)
		claim_cache_drop(q, id, token);
	return rd;
}

/* The claim id/token: its name and content.  SW_EX_FALSE when there is
 * none. */
static int claim_open(struct sw_queue *q, const char *id, uint64_t token, char name[NAME_LEN],
		      json_t **item, struct stat *st)
{
	const char *why = sw_name_problem(id);
	if (why)
		return qerr(q, EX_DATAERR, "bad id: %s", why);
	char bad[128];
	enum rd rd = claim_read_cached(q, id, token, name, item, st, bad);
	if (rd == RD_GONE) {
		int rc = claim_scan(q, id, token, name);
		/* an id the queue never had (the -q forgotten) is not a stale token */
		if (rc == SW_EX_FALSE && !item_exists(q, id))
			return qerr(q, SW_EX_FALSE, "no item %s in queue '%s'", id, q->name);
		if (rc)
			return rc == SW_EX_FALSE ? not_claimed(q, id, token) : rc;
		rd = item_read(q, q->dfd[QD_CLAIMED], name, id, item, st, bad);
	}
	switch (rd) {
	case RD_OK:
		return 0;
	case RD_GONE:
		return not_claimed(q, id, token);
	case RD_DAMAGED:
		quarantine_quiet(q, q->dfd[QD_CLAIMED], name, "claimed", bad);
		return qerr(q, EX_DATAERR, "item %s is damaged (%s) and was moved aside", id, bad);
	case RD_SKIP:
		return qerr(q, EX_NOPERM, "item %s cannot be read: %s", id, strerror(EACCES));
	default:
		return qerr_errno(q, "reading claim");
	}
}

static int64_t expiry_after(int64_t ttl_ns)
{
	int64_t e = sw_now_ns() + ttl_ns;
	return (e + 999999) / 1000000 * 1000000;
}

int sw_queue_renew(struct sw_queue *q, const char *id, uint64_t token, int64_t ttl_ns, json_t **out)
{
	char name[NAME_LEN], id2[NAME_LEN], next[NAME_LEN];
	json_t *item;
	struct stat st;
	int rc = claim_open(q, id, token, name, &item, &st);
	if (rc)
		return rc;
	uint64_t tok;
	int64_t expiry;
	claim_name_parse(name, id2, &tok, &expiry);
	/* past expiry (by this clock), a reaper on a host whose clock runs
	 * ahead may take it any moment: renewing then would promise what we
	 * cannot keep */
	if (sw_now_ns() >= expiry) {
		json_decref(item);
		return qerr(q, SW_EX_FALSE, "the claim on %s has expired", id);
	}
	int64_t ttl = ttl_ns > 0 ? ttl_ns : sw_json_int(item, "timeout", 300) * SW_NS_PER_SEC;
	int64_t later = expiry_after(ttl);
	claim_name_make(next, id, token, later);
	/* the rename is the renewal: a reaper that saw the old expiry renames
	 * the old name, which is then gone */
	int cfd = q->dfd[QD_CLAIMED];
	if (strcmp(name, next) && sw_rename(cfd, name, cfd, next) < 0) {
		json_decref(item);
		return errno == ENOENT ? not_claimed(q, id, token) : qerr_errno(q, "renewing");
	}
	claim_cache_put(q, id, token, later);
	*out = claim_view(q, item, token, later);
	return 0;
}

/* ---- finishing a claim ------------------------------------------------ */

struct finish_arg {
	uint64_t token;
	json_t *result;
	const char *error;
	int64_t retry_ns;
};

static json_t *done_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)rc;
	struct finish_arg *a = arg;
	finished(item, a->token, "done");
	if (a->result)
		json_object_set(item, "result", a->result);
	sw_json_set_time(item, "done_at", sw_now_ns());
	return item;
}

static int64_t backoff_ns(const struct sw_queue *q, int64_t attempt)
{
	double b = (double)q->ws->set.backoff_ns;
	for (int64_t i = 1; i < attempt && b < (double)BACKOFF_CAP_NS; i++)
		b *= 2;
	if (b > (double)BACKOFF_CAP_NS)
		b = (double)BACKOFF_CAP_NS;
	/* "equal jitter": between half and all of the exponential delay */
	return (int64_t)(b * (0.5 + sw_rand_below(1000001) / 2e6));
}

static json_t *fail_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)rc;
	struct finish_arg *a = arg;
	int64_t used = sw_json_int(item, "attempt", 0) + 1;
	int64_t retry = a->retry_ns >= 0 ? a->retry_ns : backoff_ns(q, used);
	return retry_or_dead(item, a->token >> TOKEN_RAND_BITS, a->error ? a->error : "failed", retry);
}

static json_t *release_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)rc;
	struct finish_arg *a = arg;
	/* a release does not count as an attempt */
	json_object_set_new(item, "gen", json_integer((json_int_t)(a->token >> TOKEN_RAND_BITS)));
	json_object_set_new(item, "state", json_string("pending"));
	return item;
}

static int finish_claim(struct sw_queue *q, const char *id, struct finish_arg *a, txn_next_fn fn,
			bool (*durable)(const json_t *item, const struct finish_arg *a), json_t **out)
{
	char name[NAME_LEN];
	json_t *item, *next = NULL;
	struct stat st;
	int rc = claim_open(q, id, a->token, name, &item, &st);
	if (rc)
		return rc;
	rc = txn_move(q, q->dfd[QD_CLAIMED], name, SRC_CLAIMED, item, &st, fn, a, durable(item, a), &next);
	if (rc == SW_EX_FALSE)
		rc = not_claimed(q, id, a->token);
	/* finished, or taken over: the claim is no more (a long-lived
	 * claimer must not keep what it read of every claim it lost) */
	if (rc == 0 || rc == SW_EX_FALSE)
		claim_cache_drop(q, id, a->token);
	if (rc == 0 && out)
		*out = item_view(q, next, sw_json_str(next, "state"));
	else
		json_decref(next);
	return rc;
}

static bool always(const json_t *item, const struct finish_arg *a) { (void)item; (void)a; return true; }
static bool never(const json_t *item, const struct finish_arg *a) { (void)item; (void)a; return false; }

/* A failure is worth an fsync when it makes the item dead. */
static bool if_dead(const json_t *item, const struct finish_arg *a)
{
	(void)a;
	return sw_json_int(item, "attempt", 0) + 1 >= sw_json_int(item, "max_attempts", SW_ATTEMPTS_DEFAULT);
}

int sw_queue_done(struct sw_queue *q, const char *id, uint64_t token, json_t *result, json_t **out)
{
	struct finish_arg a = { .token = token, .result = result };
	return finish_claim(q, id, &a, done_next, always, out);
}

int sw_queue_fail(struct sw_queue *q, const char *id, uint64_t token, const char *error,
		  int64_t retry_in_ns, json_t **out)
{
	struct finish_arg a = { .token = token, .error = error, .retry_ns = retry_in_ns };
	return finish_claim(q, id, &a, fail_next, if_dead, out);
}

int sw_queue_release(struct sw_queue *q, const char *id, uint64_t token, json_t **out)
{
	struct finish_arg a = { .token = token };
	return finish_claim(q, id, &a, release_next, never, out);
}

/* ---- many at once ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct known { const uint64_t *tokens; size_t n; struct sw_queue *q; };

static int know_claim(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct known *k = arg;
	char id[NAME_LEN];
	uint64_t token;
	int64_t exp;
	if (claim_name_parse(name, id, &token, &exp) && bsearch(&token, k->tokens, k->n, sizeof token, cmp_u64))
		claim_cache_put(k->q, id, token, exp);
	return 0;
}

/* One read of claimed/ finds every claim of the batch, instead of one
 * read an item. */
static void know_claims(struct sw_queue *q, const struct sw_fin *f, size_t n)
{
	size_t known = 0;
	while (known < n && cache_get(q, f[known].id, f[known].token))
		known++;
	if (known == n)
		return;   /* its own claims (an agent's): no need to read */
	uint64_t *tokens = malloc(n * sizeof *tokens);
	int cfd = qdir(q, QD_CLAIMED);
	if (!tokens || cfd < 0) {
		free(tokens);
		return;   /* each lookup reads claimed/ itself */
	}
	for (size_t i = 0; i < n; i++)
		tokens[i] = f[i].token;
	qsort(tokens, n, sizeof *tokens, cmp_u64);
	struct known k = { tokens, n, q };
	each_entry(cfd, know_claim, &k);
	free(tokens);
}

static void fin_taken_over(size_t slot, void *arg)
{
	struct sw_fin *f = (struct sw_fin *)arg + slot;
	json_decref(f->out);
	f->out = NULL;
	f->rc = sw_err_set(&f->err, SW_EX_FALSE, "item %s: taken over while this process stalled", f->id);
}

int sw_queue_apply_one(struct sw_queue *q, enum sw_fin_verb verb, struct sw_fin *f)
{
	switch (verb) {
	case SW_FIN_RENEW: return sw_queue_renew(q, f->id, f->token, f->ttl_ns, &f->out);
	case SW_FIN_DONE: return sw_queue_done(q, f->id, f->token, f->result, &f->out);
	case SW_FIN_FAIL: return sw_queue_fail(q, f->id, f->token, f->error, f->retry_ns, &f->out);
	case SW_FIN_RELEASE: return sw_queue_release(q, f->id, f->token, &f->out);
	}
	return qerr(q, EX_SOFTWARE, "no such verb");
}

/* A batch of finishes, each with its own verb (each[i]) or all with one. */
static int apply(struct sw_queue *q, const enum sw_fin_verb *each, enum sw_fin_verb one, struct sw_fin *f,
		 size_t n)
{
	know_claims(q, f, n);
	txn_batch_begin(q);
	for (size_t i = 0; i < n; i++) {
		q->batch_slot = i;
		f[i].out = NULL;
		if ((f[i].rc = sw_queue_apply_one(q, each ? each[i] : one, &f[i])) != 0)
			f[i].err = q->err;
	}
	int rc = txn_batch_end(q, fin_taken_over, f);
	for (size_t i = 0; rc && i < n; i++)
		if (f[i].rc == 0 && (each ? each[i] : one) != SW_FIN_RENEW) {
			json_decref(f[i].out);
			f[i].out = NULL;
			f[i].rc = rc;
			f[i].err = q->err;
		}
	return rc;
}

int sw_queue_apply_each(struct sw_queue *q, const enum sw_fin_verb *verb, struct sw_fin *f, size_t n)
{
	return apply(q, verb, SW_FIN_RENEW, f, n);
}

int sw_queue_apply(struct sw_queue *q, enum sw_fin_verb verb, struct sw_fin *f, size_t n)
{
	return apply(q, NULL, verb, f, n);
}

/* ---- finding items by id -------------------------------------------- */

struct find {
	const char *id;
	int found;
	char name[NAME_LEN];
	int dfd;                  /* dup of the directory it is in */
};

static int match_keyed(int dfd, const char *name, void *arg)
{
	struct find *f = arg;
	int64_t t;
	const char *id;
	if (keyed_name_parse(name, &t, &id) && !strcmp(id, f->id)) {
		f->dfd = dup(dfd);
		snprintf(f->name, sizeof f->name, "%s", name);
		return f->found = 1;
	}
	return 0;
}

static int match_claimed(int dfd, const char *name, void *arg)
{
	struct find *f = arg;
	char id[NAME_LEN];
	uint64_t token;
	int64_t exp;
	if (claim_name_parse(name, id, &token, &exp) && !strcmp(id, f->id)) {
		f->dfd = dup(dfd);
		snprintf(f->name, sizeof f->name, "%s", name);
		return f->found = 1;
	}
	return 0;
}

static int walk_bucket(int dfd, const char *name, void *arg)
{
	if (strspn(name, "0123456789") != strlen(name))
		return 0;   /* the head and tail hints */
	return each_entry_in(dfd, name, match_keyed, arg) > 0;
}

static int walk_part(int dfd, const char *name, void *arg)
{
	return each_entry_in(dfd, name, walk_bucket, arg) > 0;
}

static int walk_prio(int dfd, const char *name, void *arg)
{
	return each_entry_in(dfd, name, walk_part, arg) > 0;
}

/* Where item id is: its state, and an open directory + name.  SW_EX_FALSE
 * if nowhere.  Pending items are found by walking the buckets: it costs
 * what the queue holds, which is why claims never do it. */
static int locate(struct sw_queue *q, const char *id, const char **state, struct find *f)
{
	const char *why = sw_name_problem(id);
	if (why)
		return qerr(q, EX_DATAERR, "bad id: %s", why);
	memset(f, 0, sizeof *f);
	f->id = id;
	f->dfd = -1;
	static const struct { enum qdir d; const char *state; } direct[] = {
		{ QD_DONE, "done" }, { QD_DEAD, "dead" }, { QD_CANCELLED, "cancelled" },
		{ QD_BLOCKED, "blocked" },
	};
	for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++) {
		int dfd = qdir(q, direct[i].d);
		if (dfd >= 0 && SW_NOINTR(faccessat(dfd, id, F_OK, AT_SYMLINK_NOFOLLOW)) == 0) {
			*state = direct[i].state;
			f->dfd = dup(dfd);
			snprintf(f->name, sizeof f->name, "%s", id);
			return f->dfd < 0 ? qerr_errno(q, "dup") : 0;
		}
	}
	int cfd = qdir(q, QD_CLAIMED), tfd = qdir(q, QD_TIMED), pfd = qdir(q, QD_PENDING);
	if (cfd >= 0 && each_entry(cfd, match_claimed, f) > 0) { *state = "claimed"; return 0; }
	if (tfd >= 0 && each_entry(tfd, match_keyed, f) > 0) { *state = "pending"; return 0; }
	if (pfd >= 0 && each_entry(pfd, walk_prio, f) > 0) { *state = "pending"; return 0; }
	return qerr(q, SW_EX_FALSE, "no item %s in queue '%s'", id, q->name);
}

/* The public view of the item in dfd/name, found in state. */
static int view_at(struct sw_queue *q, int dfd, const char *name, const char *id, const char *state,
		   json_t **out)
{
	char why[128];
	switch (item_read(q, dfd, name, id, out, NULL, why)) {
	case RD_OK:
		break;
	case RD_GONE:
		return qerr(q, SW_EX_FALSE, "item %s moved while read; try again", id);
	case RD_DAMAGED:
		quarantine_quiet(q, dfd, name, state, why);
		return qerr(q, EX_DATAERR, "item %s is damaged (%s) and was moved aside", id, why);
	case RD_SKIP:
		return qerr(q, EX_NOPERM, "item %s cannot be read: %s", id, strerror(EACCES));
	default:
		return qerr_errno(q, "reading item");
	}
	char cid[NAME_LEN];
	uint64_t token;
	int64_t exp;
	if (!strcmp(state, "claimed") && claim_name_parse(name, cid, &token, &exp))
		claim_view(q, *out, token, exp);
	else
		item_view(q, *out, state);
	return 0;
}

struct inflight_find { const char *id; json_t *item; };

static int match_inflight(json_t *item, const char *state, void *arg)
{
	struct inflight_find *f = arg;
	if (!f->item && !strcmp(item_id(item), f->id)) {
		f->item = json_incref(item);
		json_object_set_new(f->item, "state", json_string(state));
	}
	return 0;
}

bool item_exists(struct sw_queue *q, const char *id)
{
	int ids = qdir(q, QD_IDS);
	if (ids >= 0 && !sw_name_problem(id) && SW_NOINTR(faccessat(ids, id, F_OK, AT_SYMLINK_NOFOLLOW)) == 0)
		return true;   /* a given id, added and not purged */
	json_t *item = NULL;
	struct sw_err saved = q->err;
	bool found = sw_queue_show(q, id, &item) == 0;
	json_decref(item);
	q->err = saved;
	return found;
}

int sw_queue_show(struct sw_queue *q, const char *id, json_t **out)
{
	const char *state;
	struct find f;
	int rc = locate(q, id, &state, &f);
	if (rc == SW_EX_FALSE) {
		/* in a transition: shown in the state it moves from or to */
		struct inflight_find in = { id, NULL };
		stage_items(q, match_inflight, &in);
		if (in.item) {
			item_view(q, in.item, sw_json_str(in.item, "state"));
			json_object_set_new(in.item, "in_transition", json_true());
			*out = in.item;
			return 0;
		}
	}
	if (rc)
		return rc;
	rc = view_at(q, f.dfd, f.name, id, state, out);
	close(f.dfd);
	return rc;
}

static json_t *cancel_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)rc;
	const char *name = arg;
	char cid[NAME_LEN];
	uint64_t token;
	int64_t exp;
	/* a cancelled claim used gen + 1: tokens keep growing after a requeue */
	if (name && claim_name_parse(name, cid, &token, &exp))
		json_object_set_new(item, "gen", json_integer((json_int_t)(token >> TOKEN_RAND_BITS)));
	json_object_set_new(item, "state", json_string("cancelled"));
	sw_json_set_time(item, "cancelled_at", sw_now_ns());
	return item;
}

int sw_queue_cancel(struct sw_queue *q, const char *id, json_t **out)
{
	const char *state;
	struct find f;
	int rc = locate(q, id, &state, &f);
	if (rc)
		return rc;
	if (strcmp(state, "pending") && strcmp(state, "blocked") && strcmp(state, "claimed")) {
		close(f.dfd);
		return qerr(q, SW_EX_FALSE, "item %s is %s: only pending, blocked or claimed items can be cancelled",
			    id, state);
	}
	bool claimed = !strcmp(state, "claimed");
	json_t *next = NULL;
	rc = txn_move(q, f.dfd, f.name, claimed ? SRC_CLAIMED : SRC_PENDING, NULL, NULL, cancel_next,
		      claimed ? f.name : NULL, false, &next);
	close(f.dfd);
	if (rc == SW_EX_FALSE)
		rc = qerr(q, SW_EX_FALSE, "item %s moved while being cancelled; try again", id);
	if (rc == 0 && out)
		*out = item_view(q, next, "cancelled");
	else
		json_decref(next);
	return rc;
}

static json_t *requeue_next(struct sw_queue *q, json_t *item, void *arg, int *rc)
{
	(void)q;
	(void)arg;
	(void)rc;
	json_object_set_new(item, "state", json_string("pending"));
	json_object_set_new(item, "attempt", json_integer(0));
	json_object_del(item, "not_before");
	json_object_del(item, "not_before_unix_ns");
	return item;
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
	json_t *next = NULL;
	rc = txn_move(q, f.dfd, f.name, !strcmp(state, "dead") ? SRC_DEAD : SRC_CANCELLED, NULL, NULL,
		      requeue_next, NULL, true, &next);
	close(f.dfd);
	if (rc == SW_EX_FALSE)
		rc = qerr(q, SW_EX_FALSE, "item %s moved while being requeued; try again", id);
	if (rc == 0 && out)
		*out = item_view(q, next, "pending");
	else
		json_decref(next);
	return rc;
}

/* ---- in bulk ------------------------------------------------------------- */

struct bulk {
	int64_t cutoff;           /* entries written after this stay */
	bool requeue;             /* else cancel */
	int (*fn)(json_t *item, void *arg);
	void *arg;
	long long n;
};

static char src_of(const char *state)
{
	return !strcmp(state, "claimed") ? SRC_CLAIMED : !strcmp(state, "dead") ? SRC_DEAD
	     : !strcmp(state, "cancelled") ? SRC_CANCELLED : SRC_PENDING;
}

static int bulk_one(struct sw_queue *q, const struct entry *e, void *arg)
{
	struct bulk *b = arg;
	struct stat st;
	/* the file is written when the item gets to its state (a rename
	 * keeps the time): its age there */
	if (SW_NOINTR(fstatat(e->dfd, e->name, &st, AT_SYMLINK_NOFOLLOW)) < 0 ||
	    (int64_t)st.st_mtim.tv_sec * SW_NS_PER_SEC + st.st_mtim.tv_nsec > b->cutoff)
		return 0;
	json_t *next = NULL;
	bool claimed = !strcmp(e->state, "claimed");
	int rc = b->requeue
		? txn_move(q, e->dfd, e->name, src_of(e->state), NULL, NULL, requeue_next, NULL, true, &next)
		: txn_move(q, e->dfd, e->name, src_of(e->state), NULL, NULL, cancel_next,
			   claimed ? (void *)e->name : NULL, false, &next);
	if (rc == SW_EX_FALSE)
		return 0;    /* it moved on meanwhile: not ours to change */
	if (rc)
		return rc;
	b->n++;
	rc = b->fn ? b->fn(item_view(q, next, b->requeue ? "pending" : "cancelled"), b->arg) : 0;
	json_decref(next);
	return rc;
}

static int bulk(struct sw_queue *q, int mask, struct bulk *b, long long *n)
{
	int rc = each_item_entry(q, mask, bulk_one, b);
	*n = b->n;
	if (rc < 0)
		return qerr_errno(q, "reading the queue");
	return rc;
}

int sw_queue_requeue_all(struct sw_queue *q, int mask, int64_t older_than_ns,
			 int (*fn)(json_t *item, void *arg), void *arg, long long *n)
{
	if (mask & ~(SW_ST_DEAD | SW_ST_CANCELLED))
		return qerr(q, EX_USAGE, "only dead and cancelled items can be requeued");
	struct bulk b = { sw_now_ns() - older_than_ns, true, fn, arg, 0 };
	return bulk(q, mask, &b, n);
}

int sw_queue_cancel_all(struct sw_queue *q, int mask, int64_t older_than_ns,
			int (*fn)(json_t *item, void *arg), void *arg, long long *n)
{
	if (mask & ~(SW_ST_PENDING | SW_ST_BLOCKED | SW_ST_CLAIMED))
		return qerr(q, EX_USAGE, "only pending, blocked and claimed items can be cancelled");
	struct bulk b = { sw_now_ns() - older_than_ns, false, fn, arg, 0 };
	return bulk(q, mask, &b, n);
}
