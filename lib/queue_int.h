/* queue_int.h — what the queue modules share; programs use queue.h.
 *
 * queue.c          opening a queue, its directories, names, quarantine
 * queue_item.c     the item schema: building, checking, reading, views
 * queue_pending.c  buckets and their hints, placing pending items, claims
 * queue_txn.c      transitions through stage/ and their recovery
 * queue_batch.c    transitions committed together: batches, groups
 * queue_deps.c     `after` dependencies
 * queue_add.c      adding items, ids given by users
 * queue_claimed.c  renew, done, fail, release, cancel, requeue, show
 * queue_maint.c    maintenance (reap), purge, listing and counting
 * queue_wait.c     waiting for work
 *
 * Every directory below the queue is opened through qdir() with
 * O_NOFOLLOW, and every operation names one component in an open
 * directory: no path below the queue is ever resolved through a symlink.
 * Every name is read from a directory entry and checked before use;
 * nothing read from a file becomes a path. */
#ifndef SW_QUEUE_INT_H
#define SW_QUEUE_INT_H
#include "queue.h"
#include "fs.h"
#include "id.h"
#include "owner.h"
#include <sys/stat.h>

#define PATH_LEN 1024
#define NAME_LEN 256                       /* one directory entry's name */
#define STAGE_GRACE_NS (30 * SW_NS_PER_SEC) /* a transition is abandoned after */
#define TMP_GRACE_NS (3600 * SW_NS_PER_SEC) /* a temporary file is a leftover after */
#define TOKEN_RAND_BITS 20                 /* tokens stay below 2^53 (jq) */

enum qdir {
	QD_PENDING, QD_TIMED, QD_BLOCKED, QD_DEPS, QD_CLAIMED, QD_DONE, QD_DEAD,
	QD_CANCELLED, QD_STAGE, QD_IDS, QD_DAMAGED, QD_N
};
extern const char *const sw_qdir_names[QD_N];

/* ---- queue.c ---- */
int qerr(struct sw_queue *q, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int qerr_errno(struct sw_queue *q, const char *what);
/* The state directory d, opened (and made when missing) on first use and
 * kept open; a symlink or file in its place is quarantined first.  -1 with
 * errno. */
int qdir(struct sw_queue *q, enum qdir d);
/* Moves dfd/name (anything: a file, a directory, a symlink, a FIFO) into
 * damaged/ with the reason, and says so on stderr.  from names where it
 * was, for the warning and the listing. */
void quarantine(struct sw_queue *q, int dfd, const char *name, const char *from, const char *why);
/* The same without the warning, for a caller whose own error says it. */
void quarantine_quiet(struct sw_queue *q, int dfd, const char *name, const char *from, const char *why);
/* This process's owner string (owner.h), read once per queue. */
const char *queue_owner(struct sw_queue *q);
/* A fresh transition nonce "<owner>-<ms>-<rand>" (no '.'). */
void queue_nonce(struct sw_queue *q, char out[96]);
/* Calls fn(dfd, name, arg) for each entry of dfd that does not start
 * with '.'; stops when fn returns non-zero and returns that.  -1 with
 * errno when dfd cannot be read. */
int each_entry(int dfd, int (*fn)(int dfd, const char *name, void *arg), void *arg);
/* The same for dfd/name, a subdirectory (0 when it is missing). */
int each_entry_in(int dfd, const char *name, int (*fn)(int, const char *, void *), void *arg);
void wake_waiters(struct sw_queue *q);
/* Hints are symlinks, because replacing one by rename is cheap and
 * readlink is one call; their value is a number, 0 when missing or bad. */
long long read_hint(int dfd, const char *name);
void write_hint(int dfd, const char *name, long long v);
/* SW_SYNC=full flushes what normal leaves to chance (a claim, a move back
 * to pending): one syncfs.  Best effort: the change is made already. */
void sync_full(struct sw_queue *q);
/* fsync of state directory d, when s and durable say so. */
void sync_dir(struct sw_queue *q, enum qdir d, bool durable);

/* ---- names (queue.c) ---- */
/* "<id>.<token>.<expiry ms>" of a claim. */
bool claim_name_parse(const char *name, char id[NAME_LEN], uint64_t *token, int64_t *expiry_ns);
void claim_name_make(char out[NAME_LEN], const char *id, uint64_t token, int64_t expiry_ns);
/* "<16 hex>.<id>": a pending key or a timed entry; *t the number.  A
 * pending entry of an item with a key has its key's hash too:
 * "<16 hex>.-<16 hex hash>.<id>", so that claimers with affinity know its
 * owner without reading it. */
bool keyed_name_parse(const char *name, int64_t *t, const char **id);
bool keyed_name_split(const char *name, int64_t *t, uint64_t *key, bool *has_key, const char **id);
void keyed_name_make(char out[NAME_LEN], int64_t t, const json_t *item);

/* ---- queue_item.c ---- */
enum rd { RD_OK, RD_GONE, RD_SKIP, RD_DAMAGED, RD_ERROR };
/* Reads and checks the item file dfd/name whose id (from its name) is id.
 * RD_OK: *item (and *st when not NULL); RD_GONE: not there; RD_SKIP: not
 * readable by us (another user's); RD_DAMAGED: not a valid item, reason in
 * why (the caller quarantines); RD_ERROR: an I/O error, errno set. */
enum rd item_read(struct sw_queue *q, int dfd, const char *name, const char *id, json_t **item,
		  struct stat *st, char why[128]);
/* Whether j is an item sw wrote: NULL, or why not. */
const char *item_check(const json_t *j, const char *id);
const char *item_id(const json_t *item);
/* The public view: internal fields go, state and queue come from where
 * the file was found. */
json_t *item_view(struct sw_queue *q, json_t *item, const char *state);
json_t *claim_view(struct sw_queue *q, json_t *item, uint64_t token, int64_t expiry_ns);
char *item_dump(const json_t *item, size_t *len);
/* item as it is finished by the holder of token: attempt counted, state. */
json_t *finished(json_t *item, uint64_t token, const char *state);
/* The next state of a claim that did not succeed: pending again (after
 * retry_ns) while attempts are left, else dead.  gen: the claim's. */
json_t *retry_or_dead(json_t *item, uint64_t gen, const char *error, int64_t retry_ns);
uint64_t item_gen(const json_t *item);

/* ---- queue_pending.c ---- */
/* Where place_pending put an item, so that a failed batch can take it
 * back: state directory d, below it sub ("" or "<p>/<part>/<bucket>"),
 * entry name. */
struct place {
	enum qdir d;
	char sub[PATH_LEN];
	char name[NAME_LEN];
};

struct bucket {
	int pfd;                /* pending/<p>/<part> */
	int prio;
	char part[SW_NAME_MAX + 1];
	long long n;            /* bucket number, 0: none yet */
	int used;
};
void bucket_init(struct bucket *b);
void bucket_done(struct bucket *b);
/* Moves dfd/name (holding item) to timed/, blocked/ or a bucket; where,
 * when not NULL, gets the place it went (for taking it back). */
int place_pending(struct sw_queue *q, struct bucket *b, int dfd, const char *name,
		  const json_t *item, struct place *where);
/* Head hints of every partition back down to their lowest bucket. */
void heads_repair(struct sw_queue *q);

/* ---- queue_txn.c ---- */
/* Source states of a transition, as stage/ names carry them. */
enum { SRC_PENDING = 'P', SRC_CLAIMED = 'C', SRC_DEAD = 'D', SRC_CANCELLED = 'X' };
/* Computes the next content from the item as it is now (owned by the
 * transition); NULL refuses (reason in q->err, code in *rc). */
typedef json_t *(*txn_next_fn)(struct sw_queue *q, json_t *item, void *arg, int *rc);
/* Moves the item dfd/name, last in state src, to the state next_fn's
 * result says.  pre (may be NULL) is the content the caller read, with
 * its fstat in pre_st: used when the file is still that inode.  It takes
 * the caller's reference to pre (edited into the new content rather
 * than copied: a batch of finishes copied every item twice).  0, or
 * SW_EX_FALSE when the file is gone or the transition was taken over
 * (nothing changed), or another code with q->err.  *out (may be NULL)
 * gets the new content. */
int txn_move(struct sw_queue *q, int dfd, const char *name, char src, json_t *pre,
	     const struct stat *pre_st, txn_next_fn next_fn, void *arg, bool durable, json_t **out);
/* Moves dfd/name, holding item, where its "state" says. */
int place(struct sw_queue *q, int dfd, const char *name, const json_t *item, bool durable);
/* What a transition starts from and how it goes on. */
struct txn_in {
	char src;
	int back_dfd;               /* where an undone item goes back; -1: nowhere */
	const char *back_name;
	json_t *pre;                /* the content the caller read (may be NULL), */
	const struct stat *pre_st;  /* ... with its fstat */
	txn_next_fn next_fn;
	void *arg;
	bool durable;
};
/* A stage/ name: "<nonce>.<kind><S>" (kind o, n, k; u, c of a group),
 * "<nonce>.mC.<hex>" (a group's member) or "<nonce>.a.<id>" (an add). */
struct sname {
	char nonce[96];
	char kind;
	char src;
	const char *id;             /* of an add */
	unsigned member;            /* of a member */
	int64_t ms;                 /* the nonce's time */
	size_t owner_len;           /* the nonce's first bytes name its owner */
};
bool sname_parse(const char *name, struct sname *sn);
void sname_make(char out[NAME_LEN], const char *nonce, char kind, char src);
const char *src_state(char src);
/* Writes a new file stage/name whole (fdatasync when sync); removed
 * again on failure. */
int stage_write(int sfd, const char *name, const char *buf, size_t len, bool sync);
/* Whether stage/<nonce>.<kind><src> exists. */
bool stage_has(int sfd, const char *nonce, char kind, char src);
/* Gives an uncommitted item back (back_dfd < 0: leaves it). */
void put_back(int sfd, const char *oname, int back_dfd, const char *back_name);
/* The item in stage/oname, which this transition owns: *pre itself
 * when it is still that inode (taken: *pre becomes NULL, so that a
 * second read reads the file), else read.  *size: the file's size when
 * pre was used, else -1. */
int txn_read_owned(struct sw_queue *q, int sfd, const char *oname, json_t **pre,
		   const struct stat *pre_st, json_t **cur, off_t *size);
/* The next content of stage/oname, dumped into *buf (malloc'd), and the
 * file's size as txn_read_owned says; on failure the item is put back
 * and the code returned. */
int txn_next_content(struct sw_queue *q, int sfd, const char *oname, struct txn_in *in,
		     json_t **next, char **buf, size_t *len, off_t *old_len);
/* Steps 3 to 5 of a transition whose new content is written. */
int txn_commit(struct sw_queue *q, const char *nonce, char src, const json_t *next, bool durable, bool *placed);
/* Takes stage/name over and puts its item back as it was. */
int txn_takeover(struct sw_queue *q, int sfd, const char *name, char src);
/* Finishes or undoes the transitions of dead owners, and of any owner
 * after the grace.  *n counts them. */
void stage_recover(struct sw_queue *q, int64_t now, long long *n);
/* Items in stage/, for listing and counting: fn(item, state). */
int stage_items(struct sw_queue *q, int (*fn)(json_t *item, const char *state, void *arg), void *arg);

/* ---- queue_batch.c ---- */
/* Transitions made between these two are written (step 2) but committed
 * together at the end, after one sync for all: a batch costs two syncs,
 * not two an item.  stale(slot) is called for each taken over meanwhile
 * (slot: q->batch_slot when it was made).  The end returns 0 or the code
 * of a failed sync; then nothing was committed. */
void txn_batch_begin(struct sw_queue *q);
int txn_batch_end(struct sw_queue *q, void (*stale)(size_t slot, void *arg), void *arg);
/* A transition of the batch whose new content is written (step 2). */
int batch_add(struct sw_queue *q, const char *nonce, const struct txn_in *in, json_t *next, json_t **out);
/* Whether a transition can join the batch's group (made on first use). */
bool group_ok(struct sw_queue *q, const struct txn_in *in);
/* Moves in's item into the group; committed at the batch's end.
 * GROUP_DECLINED: its new state is not final, and it is back where it
 * was, for a transition alone. */
enum { GROUP_DECLINED = -1 };
int group_move(struct sw_queue *q, int sfd, struct txn_in *in, json_t **out);
/* A member of a group stage/name as listed: where it goes once its group
 * is committed, else where it comes from. */
enum rd group_member_read(struct sw_queue *q, int sfd, const char *name, const struct sname *sn,
			  json_t **item, const char **state);
/* Recovery of a group's entry stage/name: how many items it moved. */
long long group_recover(struct sw_queue *q, int sfd, const char *name, const struct sname *sn);

/* ---- queue_deps.c ---- */
/* Whether item may be claimed now (READY), waits on (WAIT), or goes dead
 * or cancelled because dependency failed (in failed) ended as *how. */
enum deps { DEPS_WAIT, DEPS_READY, DEPS_FAILED };
enum deps deps_verdict(struct sw_queue *q, const json_t *item, char failed[NAME_LEN], const char **how);
int deps_mark(struct sw_queue *q, const json_t *item);
int promote_blocked(struct sw_queue *q, struct bucket *b, const char *id);
void deps_release(struct sw_queue *q, const char *id);
/* Whether no item waits for another (deps/ has no entry), known for sure
 * only on a local filesystem whose link counts count subdirectories
 * (ext4, XFS, tmpfs: a network one's can be stale); false when unsure. */
bool deps_none(struct sw_queue *q);
/* deps_release for each of ids (items just placed in a final state),
 * with one read of deps/ for all when that is small. */
void deps_release_many(struct sw_queue *q, const char *const *ids, size_t n);

/* ---- queue_claimed.c ---- */
/* Whether an item id is in the queue, in any state or in a transition
 * (false on an error too). */
bool item_exists(struct sw_queue *q, const char *id);
/* Claims this process made or renewed, by id and token: the expiry in
 * their file's name, and with keep_claimed, what the claim read (item,
 * taken, and st: the file's identity, which a rename keeps). */
void claim_cache_put(struct sw_queue *q, const char *id, uint64_t token, int64_t expiry_ns);
void claim_cache_keep(struct sw_queue *q, const char *id, uint64_t token, int64_t expiry_ns,
		      json_t *item, const struct stat *st);
void claim_cache_drop(struct sw_queue *q, const char *id, uint64_t token);
void claim_cache_free(struct sw_queue *q);

/* ---- queue_maint.c ---- */
void maybe_maintain(struct sw_queue *q);
/* An item's entry as each_item_entry finds it: the directory it is in,
 * its name there, its id, its state (timed items are "pending"), the
 * directory's name (for quarantine), and a claim's token and expiry. */
struct entry {
	int dfd;
	const char *name, *id, *state, *from;
	uint64_t token;
	int64_t expiry;
};
typedef int (*entry_fn)(struct sw_queue *q, const struct entry *e, void *arg);
/* Calls fn for each item entry in the states of mask (not those in a
 * transition); stops at fn's non-zero and returns it; -1 with errno when
 * a directory cannot be read. */
int each_item_entry(struct sw_queue *q, int mask, entry_fn fn, void *arg);
/* Removes dfd/name and, when it is a directory, all below it (depth
 * levels at most), following no symlink. */
void remove_tree(int dfd, const char *name, int depth);
#endif
