/* lease.h — named leases with a TTL and fencing tokens, in the workspace
 * under leases/<name>/.
 *
 * A lease's history is a chain of immutable version files v.<seq>
 * (seq 1, 2, 3…, 20 digits).  Every change — acquire, renew, release —
 * reads the newest version v.S and creates v.S+1 with O_EXCL semantics
 * (sw_create_excl: temp + link).  Two changes based on the same v.S
 * compete for the same name and exactly one wins: that is the only thing
 * that decides who holds a lease.  Each version carries the token; an
 * acquisition writes the newest token plus one, so tokens only grow.
 * `head` holds a recent seq as a hint for readers, never for decisions.
 * See sw-lease(1) INTERNALS. */
#ifndef SW_LEASE_H
#define SW_LEASE_H
#include "err.h"
#include "id.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum sw_lease_state {
	SW_LEASE_FREE,          /* never taken */
	SW_LEASE_HELD,          /* held and not expired by this clock */
	SW_LEASE_EXPIRED,       /* expired by this clock; takeable after the skew margin */
	SW_LEASE_RELEASED       /* given back by its holder */
};

#define SW_LEASE_OWNER_MAX 200
/* HOST:PID: who holds a lease or slot when --owner does not say. */
void sw_lease_default_owner(char out[SW_LEASE_OWNER_MAX + 1]);
/* The owner of a version that could not be read (see sw-lease(1)). */
#define SW_LEASE_OWNER_UNKNOWN "?"

struct sw_lease {
	char name[SW_NAME_MAX + 1];
	char owner[SW_LEASE_OWNER_MAX + 1];
	uint64_t seq;           /* version number; 0: no version yet */
	uint64_t token;         /* fencing token; 0: never acquired */
	bool released;
	int64_t acquired_ns, renewed_ns, expires_ns, released_ns, ttl_ns;
	enum sw_lease_state state;   /* as of the reader's clock */
	int64_t takeable_ns;    /* expires_ns + skew: when another may take it */
	/* A takeover request (sw_lease_ask): who wants the lease, "" for
	 * nobody, and until when (0: no limit).  Renewals carry it on; a new
	 * acquisition starts without one. */
	char takeover[SW_LEASE_OWNER_MAX + 1];
	int64_t takeover_until_ns;
};

/* Results: 0 done; SW_EX_FALSE (1) not held / stale token / no such
 * lease; EX_TEMPFAIL (75) held by another; other sysexits codes; with the
 * reason in one line in err (err.h). */

/* Current state of name (0, 1 when it never existed, or an error). */
int sw_lease_read(const struct sw_ws *ws, const char *name, struct sw_lease *out,
		  struct sw_err *err);
int sw_lease_acquire(const struct sw_ws *ws, const char *name, const char *owner,
		     int64_t ttl_ns, struct sw_lease *out, struct sw_err *err);
/* Extends token's lease to now + ttl.  Refused (1) when token is not the
 * newest holder or its lease has expired by this clock. */
int sw_lease_renew(const struct sw_ws *ws, const char *name, uint64_t token,
		   int64_t ttl_ns, struct sw_lease *out, struct sw_err *err);
int sw_lease_release(const struct sw_ws *ws, const char *name, uint64_t token,
		     struct sw_lease *out, struct sw_err *err);
/* Asks the holder of name to give it up to requester (sw-lease run
 * --takeover): a new version that is the newest one with the request
 * added, competing like any change; the holder sees it when it renews (or
 * reads) and decides.  0 with out the lease as it is now: with the
 * request, or without one when it is not held (nothing to ask). */
int sw_lease_ask(const struct sw_ws *ws, const char *name, const char *requester,
		 int64_t until_ns, struct sw_lease *out, struct sw_err *err);
/* Whether l carries a takeover request that is still meant (its time
 * not past by this clock). */
bool sw_lease_asked(const struct sw_lease *l);
/* 0 when token holds name and the lease has not expired by this clock. */
int sw_lease_check(const struct sw_ws *ws, const char *name, uint64_t token,
		   struct sw_lease *out, struct sw_err *err);
/* Calls fn for every lease in the workspace (sorted by name) until it
 * returns non-zero, which is returned.  For sw-metrics: count what is held. */
int sw_lease_list(const struct sw_ws *ws, int (*fn)(const struct sw_lease *l, void *arg),
		  void *arg, struct sw_err *err);

/* For waiters: an inotify descriptor (O_CLOEXEC) that wakes on changes
 * made to name on this host (creating its directory), or -1 where inotify
 * is unavailable.  Other hosts' changes are not seen: always poll too. */
int sw_lease_watch(const struct sw_ws *ws, const char *name);
/* Sleeps ns, or less when watch (may be -1) reports a change. */
void sw_lease_watch_sleep(int watch, int64_t ns);

const char *sw_lease_state_name(enum sw_lease_state s);
/* The output object: name, state, owner, token, acquired_at, renewed_at,
 * expires_at, released_at or takeable_at (each with _unix_ns), ttl_ms,
 * and takeover_requested_by while a request is meant. */
json_t *sw_lease_json(const struct sw_lease *l);
/* Parses the len bytes of version file v.<seq> (any bytes at all: they
 * come from the workspace) into out (state left FREE) and its vid: 0, or
 * -1 when they are not a lease version of that seq: strings bounded and
 * valid names, integers in range, times and TTL that cannot overflow the
 * arithmetic done on them. */
int sw_lease_version_parse(const char *buf, size_t len, uint64_t seq, struct sw_lease *out,
			   char vid[33]);
/* Decimal token 1..2^64-1 ("0", signs, spaces refused). */
bool sw_lease_token_parse(const char *s, uint64_t *token);
#endif
