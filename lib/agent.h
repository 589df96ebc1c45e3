/* agent.h — the agent registry behind sw-agent, and the counts sw-metrics
 * reads from it.
 *
 * One file per agent, agents/<id>.json, replaced whole (temp + rename) when
 * its content changes.  A heartbeat only sets the record's mtime (one
 * utimensat, no rewrite), so an agent is alive while
 *   mtime + ttl + the workspace's skew margin >= now,
 * unless its record names the process that is the agent ("owner", an
 * owner.h string) and that process is dead for certain (this host, this
 * boot, the pid gone or another process's now): then it is dead at once.
 * A record may name a second process, "guardian", which must be dead too:
 * sw-agent run's guardian outlives its worker only to kill the commands'
 * trees, and the claims are not the next agent's until those are gone.
 * Reaping renames a dead record away first and looks again, so an agent
 * that heartbeats at that moment is put back, not forgotten.
 *
 * Records are untrusted: names come from directory entries (checked as
 * ids), reads are bounded and never block on a FIFO, and every field sw
 * uses is checked; readers skip a record that fails with a warning, reap
 * moves it to agents/damaged/. */
#ifndef SW_AGENT_H
#define SW_AGENT_H
#include "id.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SW_AGENT_TTL_DEFAULT_NS (30 * INT64_C(1000000000))
#define SW_AGENT_DIR "agents"
/* Records that failed a check, moved aside by reap: damaged/<ms>.<rand>/
 * holds the record as it was and a .why line (name, reason). */
#define SW_AGENT_DAMAGED "damaged"

/* Detected hardware and host: {"hostname","os","os_release","cpus",
 * "memory_bytes","gpus":[…]}.  $SW_HW_ROOT (for tests) prefixes the /proc,
 * /dev and /etc paths read. */
json_t *sw_agent_hw(void);

/* A new agent's id when none is given: hostname-8hex (hw: sw_agent_hw),
 * with the bytes a name may not hold replaced by '_'. */
void sw_agent_default_id(char out[SW_NAME_MAX + 1], const json_t *hw);
/* The agent record: id, roles, labels (NULL: none), "pid" (this
 * process), "ttl" (the heartbeat ttl), the hardware hw, "registered_at"
 * and sw's version.  NULL when out of memory. */
json_t *sw_agent_record(const char *id, const char *const *roles, size_t nroles, json_t *labels, json_t *hw,
			int64_t ttl_ns);

/* Writes agents/<id>.json holding rec (whose "id" must be id); its mtime
 * is the first heartbeat.  0 or -1 with errno. */
int sw_agent_put(const struct sw_ws *ws, const char *id, const json_t *rec);
/* Sets the record's mtime to now.  -1 with errno ENOENT when it is gone
 * (reaped, deregistered): the caller registers again. */
int sw_agent_heartbeat(const struct sw_ws *ws, const char *id);
/* Removes the record.  -1 with errno ENOENT when there is none. */
int sw_agent_remove(const struct sw_ws *ws, const char *id);
/* The record of id with its liveness fields added ("alive",
 * "last_heartbeat_at", "expires_at"), or NULL with errno (EBADMSG: the
 * record failed a check, which is warned about). */
json_t *sw_agent_get(const struct sw_ws *ws, const char *id);

/* Calls fn for each record (with liveness fields), in no particular
 * order; stops when fn returns non-zero and returns that. */
int sw_agent_each(const struct sw_ws *ws, int (*fn)(json_t *rec, void *arg), void *arg);

/* Whether record rec lists role among its roles. */
bool sw_agent_has_role(const json_t *rec, const char *role);
/* The ids of the live agents whose records keep (NULL: every one) keeps,
 * sorted: *ids a malloc'd array of *n malloc'd strings (free with
 * sw_agent_ids_free).  0, or -1 with errno. */
int sw_agent_ids(const struct sw_ws *ws, bool (*keep)(const json_t *rec, const void *arg), const void *arg,
		 char ***ids, size_t *n);
void sw_agent_ids_free(char **ids, size_t n);

struct sw_agent_counts { long long alive, dead; };
/* Live and dead agents, for gauges (one small read per record). */
int sw_agent_count(const struct sw_ws *ws, struct sw_agent_counts *c);

/* Forgets dead agents: fn (may be NULL) sees each record before it goes;
 * when fn returns 1 the record stays (its claims could not all be freed:
 * the next reap tries again).  *n counts the records that went. */
int sw_agent_reap(const struct sw_ws *ws, int (*fn)(json_t *rec, void *arg), void *arg, long long *n);
/* Forgets agent id whether it is alive or not (reap --force): fn (may be
 * NULL) sees its record before it goes (it stays when fn returns 1).  0
 * when it went, 1 when fn kept it, or -1 with errno (ENOENT: no such
 * agent; EBADMSG: its record failed a check and was moved aside). */
int sw_agent_forget(const struct sw_ws *ws, const char *id, int (*fn)(json_t *rec, void *arg), void *arg);
/* A dead agent's recorded claims fail now (the attempt counted, as when
 * a lease runs out) instead of when their leases run out; a claim that
 * was finished meanwhile has another token by now and is left alone.
 * How many were freed; *code: 0, or the exit code of a claim that could
 * not be (an I/O error: it is still claimed, and warned about). */
long long sw_agent_free_claims(const struct sw_ws *ws, const json_t *rec, int *code);
#endif
