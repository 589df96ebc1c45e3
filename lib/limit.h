/* limit.h — rate limits and concurrency limits shared by every host that
 * shares the workspace, under limits/<name>/ (see sw-limit(1) INTERNALS):
 *
 *   bucket/v.<seq>   a token bucket as GCRA: one "theoretical arrival
 *                    time" (TAT) per limit, a version chain (chain.h)
 *   window/v.<seq>   an exact sliding window: the grant times of the
 *                    current window (tlist.h), a version chain
 *   leases/<i>/      concurrency slot i (1..N), an sw-lease lease each
 *                    (lease.h), so a slot has a fencing token and a TTL
 *   tally/<host>     refusals counted by each host, for sw-metrics
 *
 * Every decision is an exclusive create in a chain (or lease.c's); a
 * refusal writes nothing but its host's tally. */
#ifndef SW_LIMIT_H
#define SW_LIMIT_H
#include "err.h"
#include "id.h"
#include "lease.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* N per period: "100/s", "5000/h" (s, m, h, d). */
struct sw_rate {
	uint64_t n;
	int64_t period_ns;
};

#define SW_RATE_LEN 40
/* The fastest rate taken: one grant a microsecond. */
#define SW_RATE_MAX_PER_S 1000000
#define SW_LIMIT_BURST_MAX 1000000
#define SW_LIMIT_WINDOW_MAX 100000      /* --max of a sliding window */
#define SW_LIMIT_SLOTS_MAX 1000         /* --concurrency */

/* "N/s", "N/m", "N/h" or "N/d", N a positive integer (lib/num.h) at most
 * SW_RATE_MAX_PER_S a second: 0, or -1 with why (a static string). */
int sw_rate_parse(const char *s, struct sw_rate *r, const char **why);
void sw_rate_format(const struct sw_rate *r, char out[SW_RATE_LEN]);

enum sw_limit_kind { SW_LIMIT_BUCKET, SW_LIMIT_WINDOW };

struct sw_limit_spec {
	enum sw_limit_kind kind;
	struct sw_rate rate;    /* bucket */
	uint64_t burst;         /* bucket: grants at once (default 1) */
	int64_t window_ns;      /* window */
	uint64_t max;           /* window: grants in any window */
};

/* NULL when spec is usable for count grants at a time, else why not
 * (burst or count out of range, a burst worth more than 100 years…). */
const char *sw_limit_spec_problem(const struct sw_limit_spec *s, uint64_t count);

struct sw_limit_grant {
	bool granted;
	uint64_t count;
	int64_t now_ns;         /* when it was decided */
	int64_t at_ns;          /* granted: when the grant is due (now, or later when reserved) */
	int64_t recorded_ns;    /* granted: the time the limit keeps it under (a window's
				 * to the microsecond, rounded up: never before at_ns) */
	int64_t retry_ns;       /* refused: the earliest time count could be granted */
	uint64_t available;     /* grants left at at_ns after this one */
	uint64_t granted_total; /* of the limit's bucket or window, all time */
};

/* Takes count grants from name's bucket or window.  wait_ns < 0: now or
 * never; else a grant due within wait_ns is reserved (its time is in
 * out->at_ns; the caller waits until then: a leaky-bucket shaper).  0
 * granted, 75 refused (out->retry_ns says when), else a code with err. */
int sw_limit_take(const struct sw_ws *ws, const char *name, const struct sw_limit_spec *spec,
		  uint64_t count, int64_t wait_ns, struct sw_limit_grant *out, struct sw_err *err);

/* ---- concurrency slots ------------------------------------------------ */

struct sw_limit_slot {
	unsigned slot;          /* 1..N */
	struct sw_lease lease;  /* its token is the slot's fencing token */
};

/* Acquires one of slots 1..n for ttl_ns: 0, 75 when all are held (with
 * *free_ns the earliest time one may be free), else a code. */
int sw_limit_acquire(const struct sw_ws *ws, const char *name, unsigned n, const char *owner,
		     int64_t ttl_ns, struct sw_limit_slot *out, int64_t *free_ns, struct sw_err *err);
/* lease.c's renew, release and check of one slot (codes as there). */
int sw_limit_renew(const struct sw_ws *ws, const char *name, unsigned slot, uint64_t token,
		   int64_t ttl_ns, struct sw_lease *out, struct sw_err *err);
int sw_limit_release(const struct sw_ws *ws, const char *name, unsigned slot, uint64_t token,
		     struct sw_lease *out, struct sw_err *err);

/* ---- the whole limit -------------------------------------------------- */

/* Counts a refusal in this host's tally (kind "rate" or "slot"); a
 * failure is a warning: the count is telemetry. */
void sw_limit_count_refusal(const struct sw_ws *ws, const char *name, const char *kind);
/* What name holds now, as the object show prints: 0, 1 when there is no
 * such limit, else a code. */
int sw_limit_show(const struct sw_ws *ws, const char *name, json_t **out, struct sw_err *err);
/* Calls fn with show's object of every limit (sorted by name) until it
 * returns non-zero, which is returned. */
int sw_limit_list(const struct sw_ws *ws, int (*fn)(json_t *j, void *arg), void *arg,
		  struct sw_err *err);
/* Forgets the grants of the bucket and the window (not the slots, which
 * their holders give back); counts are kept.  0, 1 no such limit, code. */
int sw_limit_reset(const struct sw_ws *ws, const char *name, struct sw_err *err);

/* For sw-metrics export (metrics_ws.h's gauge function): per limit,
 * sw_limit_granted_total and sw_limit_limited_total {name, kind} and
 * sw_limit_slots_in_use {name}.  Problems are warnings. */
typedef int (*sw_limit_gauge_fn)(const char *name, const char *help, const json_t *labels, double v,
				 void *arg);
int sw_limit_gauges(const struct sw_ws *ws, sw_limit_gauge_fn fn, void *arg);
/* sw_limit_gauges, then breaker.h's sw_breaker_gauges: the one call
 * metrics_ws.c makes for both programs. */
int sw_limit_breaker_gauges(const struct sw_ws *ws, sw_limit_gauge_fn fn, void *arg);

/* Version parsers, for the fuzz targets: the len bytes of a bucket or
 * window version v.<seq> into its fields.  0 or -1. */
struct sw_limit_bucket_ver {
	struct sw_rate rate;
	uint64_t burst, granted;
	int64_t tat_ns;
};
int sw_limit_bucket_parse(const char *buf, size_t len, uint64_t seq, struct sw_limit_bucket_ver *out);
int sw_limit_window_parse(const char *buf, size_t len, uint64_t seq, int64_t *window_ns, uint64_t *max,
			  uint64_t *granted, uint64_t *in_list);
#endif
