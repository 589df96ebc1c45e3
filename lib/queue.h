/* queue.h — the work queue behind sw-claim and sw-agent.
 *
 * One file per item, below queues/<q>/ (see sw-workspace(5)):
 *   pending/<p>/<part>/<bucket>/<key>  claimable; <part> is "-" for items
 *                                      without a role, else the role;
 *                                      <bucket> a number, <key> order.id
 *   pending/<p>/<part>/head, tail      symlink hints: lowest, newest bucket
 *   timed/<due>.<id>                   pending, not before <due>
 *   blocked/<id>, deps/<dep>/<id>      pending, waiting for `after` items
 *   claimed/<id>.<token>.<expiry>      claimed until <expiry> (unix ms)
 *   done/<id>, dead/<id>, cancelled/<id>
 *   stage/<nonce>.<kind>               transitions in flight
 *   ids/<id>                           ids given by users (idempotent add)
 *   damaged/                           entries that failed a check
 * An item is one file that moves by rename; its content is never edited.
 * A claim is one rename of a pending entry to a claimed/ name only the
 * claimer produces; a renewal renames it to a later expiry, so a reaper
 * that saw the old expiry can no longer take it.  Every other change moves
 * the file into stage/, writes the new content beside it, and commits by a
 * second rename, so that a process stalled at any point, for any time, can
 * neither finish an item twice nor lose it (see queue_txn.c).
 *
 * Functions return 0 on success or a sysexits code (SW_EX_FALSE for a
 * stale token or missing item, EX_TEMPFAIL for nothing to claim), with the
 * code and a one-line reason in q->err (err.h). */
#ifndef SW_QUEUE_H
#define SW_QUEUE_H
#include "hash.h"
#include "ws.h"
#include <jansson.h>
#include <string.h>
#include <stdbool.h>
#include <stdint.h>

#define SW_QUEUE_DEFAULT "default"
#define SW_PRIO_MAX 9
#define SW_PRIO_DEFAULT 5
#define SW_ATTEMPTS_DEFAULT 5
#define SW_TIMEOUT_DEFAULT_NS (300 * INT64_C(1000000000))
#define SW_ITEM_MAX_DEFAULT SW_ITEM_MAX_BYTES_DEFAULT
/* What a claimed or finished item may grow past SW_MAX_ITEM_BYTES (its
 * token, times, result, error); a transition past it is refused (65). */
#define SW_ITEM_SLACK 65536
/* The longest key an item may have (any UTF-8 text without control
 * characters: it never names a file). */
#define SW_KEY_MAX 1024

struct sw_claim_cache;
struct txn_batch;
struct sw_waiter;

struct sw_queue {
	const struct sw_ws *ws;
	char name[256];
	int fd;                 /* queues/<name> */
	int dfd[12];            /* its state directories, opened on first use */
	struct sw_waiter *waiter;   /* for sw_queue_wait, made on first use */
	int end_ifd;            /* for sw_queue_wait_end: inotify, or -1 */
	size_t item_max;        /* SW_MAX_ITEM_BYTES */
	char owner[48];         /* this process (owner.h), read on first use */
	struct sw_claim_cache *claims;   /* claims this process made or renewed */
	struct sw_err err;      /* the last call's error */
	struct txn_batch *batch;    /* transitions waiting to commit together */
	size_t batch_slot;          /* the caller's index of the one in hand */
	bool sync_deferred;         /* syncs wait for the end of a batch ... */
	bool sync_owed;             /* ... which then owes one */
	bool deps_deferred;         /* a batch releases dependents at its end */
	bool after_missing_ok;  /* the caller's choice: an added item may wait
				 * for ids not (yet) in the queue */
	bool keep_claimed;      /* the caller's choice (a long-lived claimer,
				 * an agent): the content of each claim it makes
				 * is kept, so that renewing or finishing it needs
				 * a stat of its file, not a read and a parse */
};

/* Defaults for fields an added item does not set itself. */
struct sw_item_defaults {
	int priority;
	const char *role;
	int max_attempts;
	int64_t timeout_ns;
	int64_t delay_ns;
	json_t *after;          /* array of ids, or NULL */
	int on_dep_fail;        /* enum sw_dep_fail */
	const char *key;        /* for affinity, or NULL */
	const char *id;         /* for a single item only */
	size_t item_max;        /* SW_MAX_ITEM_BYTES (settings); 0: the default */
};

/* Item states as bits, for list/purge filters.  Damaged entries are not
 * items: "all" does not include them.  Blocked items are pending ones
 * waiting for their `after` items. */
enum {
	SW_ST_PENDING = 1, SW_ST_CLAIMED = 2, SW_ST_DONE = 4, SW_ST_DEAD = 8,
	SW_ST_CANCELLED = 16, SW_ST_DAMAGED = 32, SW_ST_BLOCKED = 64,
	SW_ST_ALL = SW_ST_PENDING | SW_ST_CLAIMED | SW_ST_DONE | SW_ST_DEAD | SW_ST_CANCELLED | SW_ST_BLOCKED
};
/* What an item does when one of its `after` items dies or is cancelled. */
enum sw_dep_fail { SW_DEP_FAIL_DEAD, SW_DEP_FAIL_CANCEL, SW_DEP_FAIL_RUN };
/* "dead", "cancel", "run" -> the policy; -1 otherwise. */
int sw_dep_fail_parse(const char *s);
/* "pending,done" -> bits; -1 on an unknown name. */
int sw_state_mask(const char *list);

/* Each item is counted once.  pending: claimable now, delayed items and
 * retries whose time has come included (due whether or not a worker has
 * moved them yet); delayed: not yet due; blocked: waiting for `after`. */
struct sw_queue_stats {
	long long pending, delayed, blocked, claimed, done, dead, cancelled;
	long long in_flight;         /* of those, in a transition right now */
	long long damaged;           /* entries in quarantine (not items) */
	int64_t oldest_pending_ns;   /* when the longest-waiting claimable item
				      * became claimable, 0 if none */
};

/* The queue of a command given no -q: SW_QUEUE when set and not empty
 * (then *from_env, which may be NULL, is true), else SW_QUEUE_DEFAULT.
 * The one place SW_QUEUE is read; the name is not checked here: each
 * program refuses a bad one as it refuses a bad -q. */
const char *sw_queue_env(bool *from_env);
/* Opens queues/<name>; with create, makes it.  ENOENT-style absence gives
 * SW_EX_FALSE when !create. */
int sw_queue_open(struct sw_queue *q, const struct sw_ws *ws, const char *name, bool create);
void sw_queue_close(struct sw_queue *q);

/* Builds a validated item from spec (an object with payload and optional
 * id, priority, role, max_attempts, timeout, delay, after) and defaults.
 * NULL with the reason in err (code 65). */
json_t *sw_item_new(const json_t *spec, const struct sw_item_defaults *d, const char *queue,
		    struct sw_err *err);

/* Adds items (built by sw_item_new) all-or-nothing as far as the disk
 * allows: on an I/O error what was added is taken back.  existed[i] is set
 * when an item's id was already in the queue (not added again).  An item
 * `after` an id that is neither in the queue nor among the items is
 * refused (65), unless q->after_missing_ok. */
int sw_queue_add(struct sw_queue *q, json_t **items, size_t n, bool *existed);
/* The same for batches too large to hold at once: add items one by one,
 * then commit (fsync per SW_SYNC, wake waiters) or abort (take back what
 * was added).  Both free the batch.  sw_batch_expect names an id a later
 * item of the batch will have, so that an earlier one may wait for it. */
struct sw_batch;
struct sw_batch *sw_batch_new(struct sw_queue *q);
int sw_batch_expect(struct sw_batch *bt, const char *id);
/* Sets the item's "state" to where it went: "pending", or for an item
 * that waits, "blocked" (or "dead", "cancelled" with what it waits for). */
int sw_batch_add(struct sw_batch *bt, json_t *item, bool *existed);
int sw_batch_commit(struct sw_batch *bt);
/* Takes back what the batch added; how many items could not be (then
 * also said in q->err instead of "nothing added"). */
size_t sw_batch_abort(struct sw_batch *bt);

/* Claims the most urgent, oldest claimable item whose role is in roles
 * (nroles 0: any role).  ttl_ns 0: the item's timeout.  *out is the item
 * with token, attempt and lease_expires_at. */
int sw_queue_claim(struct sw_queue *q, const char *const *roles, size_t nroles,
		   int64_t ttl_ns, json_t **out);

/* Keys and their owners: an item with a key belongs to the node the ring
 * places its key hash on (sw_key_hash64, shard.h's sw_place).  A claimer
 * takes items of its own keys and items without a key; another node's
 * only once they have waited steal_after_ns. */
struct sw_placer;
struct sw_affinity {
	const struct sw_placer *ring;
	uint32_t me;                /* this claimer's node in the ring */
	int64_t steal_after_ns;
	/* out, may be NULL: lowered to when an item passed over because it
	 * is another's may be taken (its time + steal_after_ns) */
	int64_t *steal_at;
};

struct sw_claim_opts {
	const char *const *roles;
	size_t nroles;
	int64_t ttl_ns;                 /* 0: each item's timeout */
	size_t max;                     /* items at most (0: 1) */
	const struct sw_affinity *aff;  /* NULL: any item */
};
/* Claims up to o->max items, most urgent and oldest first, calling fn
 * with each (fn owns it); fn's non-zero stops the claiming (what was
 * claimed stays claimed) and is returned.  0 when at least one was
 * claimed (*n says how many), EX_TEMPFAIL when none was claimable. */
int sw_queue_claim_many(struct sw_queue *q, const struct sw_claim_opts *o,
			int (*fn)(json_t *item, void *arg), void *arg, size_t *n);
/* When the next delayed item falls due or the next lease runs out (plus
 * the skew margin), in unix ns; 0 when neither waits.  Nothing touches
 * the wake file then, so a waiter must look again by this time. */
int64_t sw_queue_next_due(struct sw_queue *q);
/* Blocks until something may have become claimable for roles, or until
 * deadline_ns; one waiter of a host watches the queue, the others wait
 * for its baton (waiter.h), and all poll. */
void sw_queue_wait(struct sw_queue *q, const char *const *roles, size_t nroles, int64_t deadline_ns);

/* How item id ended: "done", "dead" or "cancelled"; NULL while it has not
 * (or there is no such item: sw_queue_show tells). */
const char *sw_queue_ended(struct sw_queue *q, const char *id);
/* Blocks until some item may have ended, or until deadline_ns: woken at
 * once by ends on this host (inotify), and looking again every SW_POLL
 * for other hosts' (every second when inotify cannot be had). */
void sw_queue_wait_end(struct sw_queue *q, int64_t deadline_ns);

int sw_queue_renew(struct sw_queue *q, const char *id, uint64_t token, int64_t ttl_ns, json_t **out);
int sw_queue_done(struct sw_queue *q, const char *id, uint64_t token, json_t *result, json_t **out);
/* retry_in_ns < 0: exponential backoff with jitter. */
int sw_queue_fail(struct sw_queue *q, const char *id, uint64_t token, const char *error,
		  int64_t retry_in_ns, json_t **out);
int sw_queue_release(struct sw_queue *q, const char *id, uint64_t token, json_t **out);
/* One item of a batch of renewals or finishes. */
enum sw_fin_verb { SW_FIN_RENEW, SW_FIN_DONE, SW_FIN_FAIL, SW_FIN_RELEASE };
struct sw_fin {
	const char *id;
	uint64_t token;
	json_t *result;         /* done (borrowed) */
	const char *error;      /* fail */
	int64_t retry_ns;       /* fail: < 0 for the backoff */
	int64_t ttl_ns;         /* renew: 0 for the item's timeout */
	int rc;                 /* out: 0, SW_EX_FALSE (stale, no such item) or a code */
	struct sw_err err;      /* out: why not, when rc */
	json_t *out;            /* out: the item's new view, when 0 (owned) */
};
/* Applies verb to each of f[0..n) on its own, as the one-item calls do,
 * but the finishes commit together: two syncs for the batch, every one
 * durable before this returns.  0, or the code of a failure of the whole
 * (a sync failed: no finish stands, each item's rc says so too). */
int sw_queue_apply(struct sw_queue *q, enum sw_fin_verb verb, struct sw_fin *f, size_t n);
/* The same with a verb for each item (verb[i] for f[i]): one commit for
 * items that end in different ways. */
int sw_queue_apply_each(struct sw_queue *q, const enum sw_fin_verb *verb, struct sw_fin *f, size_t n);
/* One of them, committed on its own (the one-item verbs): 0 or a code
 * with q->err; f->out as above, f->rc and f->err untouched. */
int sw_queue_apply_one(struct sw_queue *q, enum sw_fin_verb verb, struct sw_fin *f);
int sw_queue_cancel(struct sw_queue *q, const char *id, json_t **out);
int sw_queue_requeue(struct sw_queue *q, const char *id, json_t **out);
int sw_queue_show(struct sw_queue *q, const char *id, json_t **out);
/* requeue and cancel for every item in the states of mask (dead and
 * cancelled; pending, blocked and claimed) that has been in it longer than
 * older_than_ns; fn (may be NULL) gets each one's new view, *n the count.
 * An item that moves on meanwhile is left alone. */
int sw_queue_requeue_all(struct sw_queue *q, int mask, int64_t older_than_ns,
			 int (*fn)(json_t *item, void *arg), void *arg, long long *n);
int sw_queue_cancel_all(struct sw_queue *q, int mask, int64_t older_than_ns,
			int (*fn)(json_t *item, void *arg), void *arg, long long *n);
/* Calls fn with each item that item waits for (its `after`), as show
 * prints it, in the order given; one not in the queue (purged) as
 * {"id","queue","state":"missing"}.  Stops at fn's non-zero and returns
 * it; an error reading one stops with its code. */
int sw_queue_deps(struct sw_queue *q, const json_t *item, int (*fn)(json_t *dep, void *arg), void *arg);

/* Calls fn for every item in the states of mask (items in a transition
 * in the state they move from or to); stops when fn returns non-zero and
 * returns that.  SW_ST_DAMAGED lists quarantined entries instead:
 * {"queue","state":"damaged","name","from","reason","type","size",
 * "damaged_at"}. */
int sw_queue_list(struct sw_queue *q, int mask, int (*fn)(json_t *item, void *arg), void *arg);
int sw_queue_stats(struct sw_queue *q, struct sw_queue_stats *st);
/* Calls fn with each pending item's partition (role, "-": none) and
 * whether it has a key and the key's hash (sw_key_hash64), from the
 * entries' names alone; stops at fn's non-zero and returns it. */
int sw_queue_keys(struct sw_queue *q, int (*fn)(const char *part, bool keyed, uint64_t h, void *arg),
		  void *arg);
/* Expired claims back to pending (or dead), due delayed items to pending,
 * transitions of dead processes (and any after a grace) finished or
 * undone, old temporary files removed. */
int sw_queue_reap(struct sw_queue *q, long long *reaped);
/* Whether any item is claimed or in a transition: work that may still
 * come back to pending (a lease that runs out, a transition undone). */
bool sw_queue_busy(struct sw_queue *q);
/* Deletes done, dead, cancelled (and damaged) entries older than
 * older_than_ns. */
int sw_queue_purge(struct sw_queue *q, int mask, int64_t older_than_ns, long long *purged);

/* Deletes queue name and every item in it.  Refused (75) while an item
 * is claimed or in a transition, unless force: their holders would find
 * them gone.  SW_EX_FALSE when there is no such queue. */
int sw_queue_drop(const struct sw_ws *ws, const char *name, bool force, struct sw_err *e);
/* Calls fn with each queue name in the workspace. */
int sw_queue_names(const struct sw_ws *ws, int (*fn)(const char *name, void *arg), void *arg);
/* The hash of an item's key, as sw-shard places keys (XXH64, seed 0). */
static inline uint64_t sw_key_hash64(const char *key)
{
	return sw_xxh64(key, strlen(key), 0);
}
/* "123" -> token; false on bad input. */
bool sw_token_parse(const char *s, uint64_t *token);
/* Checks an item file's content as read from the workspace (for fuzzing
 * and tests): NULL when valid for an item named id, else why not. */
const char *sw_item_check(const char *buf, size_t len, const char *id);
#endif
