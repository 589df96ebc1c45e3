/* metrics_ws.h — gauges sw-metrics export reads from the workspace at
 * export time (nothing is stored): they come from the other programs'
 * libraries, one small function per source.
 *   sw_queue_items{queue,state}                  lib/queue.h sw_queue_stats
 *   sw_queue_oldest_pending_age_seconds{queue}   lib/queue.h sw_queue_stats
 *   sw_agents{state="live"|"dead"}               lib/agent.h sw_agent_count
 *   sw_leases_held                               lib/lease.h sw_lease_list
 *   sw_limit_granted_total, sw_limit_limited_total{name,kind},
 *   sw_limit_slots_in_use{name}, sw_breaker_state{name},
 *   sw_breaker_trips_total{name}                 lib/limit.h sw_limit_breaker_gauges
 * Reading them costs a directory walk per queue and one small read per
 * agent and lease: export is meant for a scrape a minute, not a loop. */
#ifndef SW_METRICS_WS_H
#define SW_METRICS_WS_H
#include "ws.h"
#include <jansson.h>

/* Called once per sample, a family's samples together. */
typedef int (*sw_gauge_fn)(const char *name, const char *help, const json_t *labels, double v,
			   void *arg);

/* The names user metrics may not take because of these: sw_m_reserved
 * (metrics_model.h). */
/* Every workspace gauge; problems with one source are warnings.  Returns
 * what fn returned when non-zero. */
int sw_m_ws_gauges(const struct sw_ws *ws, int64_t now_ns, sw_gauge_fn fn, void *arg);
#endif
