/* chain.h — shared state as a chain of immutable version files, the
 * compare-and-swap that limits and breakers are built on.
 *
 * A chain is one directory of files v.<seq> (seq 1, 2, 3…, 20 digits),
 * each a JSON object written once and never changed.  A change reads the
 * newest version v.S and creates v.S+1 exclusively (temp + link): of any
 * number of writers on any number of hosts that read the same v.S exactly
 * one wins, and the losers read again.  That is the only thing that
 * decides.  It is lib/lease.c's protocol (see its top comment and
 * sw-lease(1) INTERNALS) for any content: old versions are deleted lowest
 * first, a writer re-reads v.S after its create to catch a stale write (a
 * version deleted and re-created under a writer that stalled), and a
 * `head` file names a recent seq as a hint for readers, never for
 * decisions.
 *
 * The chain checks only that a version is a JSON object with the seq of
 * its name and a random "vid"; what the rest means, and what a damaged
 * version stands for, is the caller's (limit.c, breaker.c). */
#ifndef SW_CHAIN_H
#define SW_CHAIN_H
#include "atomic.h"
#include "err.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* sw_chain_write: another writer won (or this write was stale). */
#define SW_CHAIN_LOST (-2)

struct sw_chain {
	int dfd;                /* the chain's directory */
	enum sw_sync sync;
	size_t max_bytes;       /* the largest version file read */
	unsigned keep;          /* versions kept behind the newest (at least 2) */
	unsigned hint_every;    /* `head` is rewritten every this many versions */
};

struct sw_chain_ver {
	uint64_t seq;           /* 0: no version yet */
	json_t *j;              /* its object, "seq" and "vid" included; NULL when none or damaged */
	bool damaged;           /* v.seq exists but is not a version (unreadable, not an
				 * object of that seq, a FIFO, too large) */
	int64_t written_ns;     /* its mtime, bounded by SW_TIME_MAX_NS: what a damaged
				 * version is known by */
	char vid[33];           /* "-" when damaged */
};

/* The newest version into v (seq 0 and j NULL when there is none): 0, or
 * an exit code with err.  Free v with sw_chain_ver_free. */
int sw_chain_latest(const struct sw_chain *c, struct sw_chain_ver *v, struct sw_err *err);
/* Version seq (an older one, for a caller recovering from a damaged
 * newest): 0, or -1 with errno (ENOENT: deleted; EBADMSG: damaged, and v
 * says so). */
int sw_chain_read(const struct sw_chain *c, uint64_t seq, struct sw_chain_ver *v);
/* Creates v.(cur->seq + 1) holding body (an object; "seq" and a fresh
 * "vid" are set in it).  0 when it is in place, SW_CHAIN_LOST when
 * another change won (read again), else an exit code with err
 * (EX_TEMPFAIL when this process stalled past its own version's cleanup:
 * whether the change counted is not known; do not make it again).
 * durable: whether SW_SYNC=normal fsyncs it. */
int sw_chain_write(const struct sw_chain *c, const struct sw_chain_ver *cur, json_t *body,
		   bool durable, struct sw_err *err);
void sw_chain_ver_free(struct sw_chain_ver *v);
/* Parses the len bytes of version file v.<seq> (any bytes at all: they
 * come from the workspace): the object in *j and its vid, or -1. */
int sw_chain_parse(const char *buf, size_t len, uint64_t seq, json_t **j, char vid[33]);

/* A version's integer member key in [lo, hi]: false when it is absent
 * or not such an integer (the caller reads the version as damaged). */
bool sw_chain_int(const json_t *j, const char *key, int64_t lo, int64_t hi, int64_t *out);

/* The names of the directories below the workspace's rel that pass the
 * name rule (the limits, the breakers), sorted: a malloc'd array of *n
 * malloc'd strings (free with sw_chain_names_free).  None when rel does
 * not exist.  0, or a code with err. */
struct sw_ws;
int sw_chain_names(const struct sw_ws *ws, const char *rel, char ***names, size_t *n, struct sw_err *err);
void sw_chain_names_free(char **names, size_t n);

/* A pause of 0 to max_ns, uniformly at random: losers of a race spread
 * out before they try again. */
void sw_chain_jitter(int64_t max_ns);
#endif
