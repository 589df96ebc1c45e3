/* breaker.h — circuit breakers shared by every host of the workspace,
 * under breakers/<name>/ as one version chain (chain.h): each version
 * holds the whole state, and every change (an outcome that counts, a
 * trip, a probe handed out or renewed) is one exclusive create of the
 * next version, retried until it lands, so no outcome that changes the
 * state is lost to a race.  See sw-breaker(1) INTERNALS.
 *
 *   closed     calls go ahead; failures in the window are counted
 *              (--failures N --window DUR, or --ratio R --min-calls M
 *              over the window); past the threshold: open
 *   open       calls are refused until open_until (now + the cooldown)
 *   half-open  from open_until on: K probe grants, each a lease inside
 *              the version (slot, token, expiry, renewed while its call
 *              runs); K successes close it, one failure opens it again
 *              with the cooldown doubled (at most --max-cooldown)
 *
 * A version read from the workspace is untrusted: a damaged one stands
 * for an open breaker from its write time for one cooldown. */
#ifndef SW_BREAKER_H
#define SW_BREAKER_H
#include "err.h"
#include "tlist.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum sw_breaker_state { SW_BREAKER_CLOSED, SW_BREAKER_HALF_OPEN, SW_BREAKER_OPEN };

#define SW_BREAKER_PROBES_MAX 100
#define SW_BREAKER_FAILURES_MAX 10000
#define SW_BREAKER_CALLS_MAX 1000000

struct sw_breaker_spec {
	bool ratio_mode;
	uint64_t failures;      /* failures mode: N in the window trip it */
	double ratio;           /* ratio mode: failures / calls at least this… */
	uint64_t min_calls;     /* …over at least this many calls in the window */
	int64_t window_ns;
	int64_t cooldown_ns, max_cooldown_ns;
	unsigned probes;        /* K */
	int64_t probe_ttl_ns;   /* a probe grant's lease */
};

/* NULL when s is usable, else why not. */
const char *sw_breaker_spec_problem(const struct sw_breaker_spec *s);
const char *sw_breaker_state_name(enum sw_breaker_state s);

struct sw_breaker_probe {
	unsigned slot;          /* 1..K; 0: no probe */
	uint64_t token;         /* grows over all probes of the breaker */
	int64_t expires_ns;
	bool ok;                /* succeeded */
};

/* A breaker's whole state, as one version holds it. */
struct sw_breaker_ver {
	enum sw_breaker_state state;    /* as written: OPEN from the trip to the first probe */
	uint64_t trips;                 /* transitions to open, all time: the episode */
	uint64_t probe_token;           /* the last one handed out */
	int64_t open_until_ns, cooldown_ns, changed_ns;
	struct sw_tlist fails, oks;     /* the window's outcomes (oks: ratio mode only) */
	unsigned nprobes;
	struct sw_breaker_probe probes[SW_BREAKER_PROBES_MAX];
};

/* What a caller may do now. */
struct sw_breaker_pass {
	enum sw_breaker_state state;    /* as of now: open past open_until is half-open */
	bool allowed;
	struct sw_breaker_probe probe;  /* allowed in half-open: the probe granted */
	uint64_t episode;               /* the trips count the probe belongs to */
	int64_t retry_ns;               /* refused: when to try again */
	int64_t open_until_ns;
	uint64_t trips;
	uint64_t failures;              /* closed: failures in the window */
};

/* Whether a call may go ahead: 0 yes (in half-open with a probe grant of
 * spec->probe_ttl_ns), 75 no (out says until when), else a code. */
int sw_breaker_admit(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		     struct sw_breaker_pass *out, struct sw_err *err);

struct sw_breaker_rec {
	enum sw_breaker_state before, after;
	bool counted;           /* false: an outcome of a call begun before the state changed */
	uint64_t trips;
	int64_t open_until_ns;
};

/* Records an outcome (probe_token: the probe's, or 0): 0 recorded (out
 * says whether it counted and what it changed), 1 a stale probe token,
 * else a code. */
int sw_breaker_record(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		      bool ok, uint64_t probe_token, struct sw_breaker_rec *out, struct sw_err *err);
/* Renews probe token of episode for spec->probe_ttl_ns: 0 (*expires_ns
 * set), 1 lost (the slot went to another prober), 2 the episode is over
 * (no more renewing needed), else a code. */
#define SW_BREAKER_EPISODE_OVER 2
int sw_breaker_probe_renew(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
			   uint64_t episode, uint64_t token, int64_t *expires_ns, struct sw_err *err);
/* Opens it now for spec->cooldown_ns, or closes it, forgetting its
 * window and probes.  0, or a code. */
int sw_breaker_trip(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		    struct sw_err *err);
int sw_breaker_reset(const struct sw_ws *ws, const char *name, const struct sw_breaker_spec *spec,
		     struct sw_err *err);

/* show's object: 0, 1 no such breaker, else a code. */
int sw_breaker_show(const struct sw_ws *ws, const char *name, json_t **out, struct sw_err *err);
int sw_breaker_list(const struct sw_ws *ws, int (*fn)(json_t *j, void *arg), void *arg,
		    struct sw_err *err);
/* sw_breaker_state {name} (0 closed, 1 half-open, 2 open) and
 * sw_breaker_trips_total {name}, for sw-metrics export. */
typedef int (*sw_breaker_gauge_fn)(const char *name, const char *help, const json_t *labels, double v,
				   void *arg);
int sw_breaker_gauges(const struct sw_ws *ws, sw_breaker_gauge_fn fn, void *arg);

/* The len bytes of version v.<seq> (any bytes: they come from the
 * workspace) into out: 0, or -1.  Free with sw_breaker_ver_free. */
int sw_breaker_parse(const char *buf, size_t len, uint64_t seq, struct sw_breaker_ver *out);
void sw_breaker_ver_free(struct sw_breaker_ver *v);
#endif
