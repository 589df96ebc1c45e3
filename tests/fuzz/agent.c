/* agent — agent records as read from the workspace (lib/agent.h): the
 * input is written as agents/fz.json in a scratch workspace and read
 * back with sw_agent_get and sw_agent_count, the way sw-agent list and
 * sw-metrics export read records another host wrote.  The record parser
 * itself (rec_read) is static, so this goes through the files; the
 * scratch directory ($TMPDIR/sw-fuzz-agent.<pid>) is the only thing kept
 * between inputs, and every input replaces the one file in it. */
#include "scratch.h"
#include "agent.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scratch_open("agent", SW_AGENT_DIR);
	scratch_put(data, size);
	json_t *rec = sw_agent_get(&ws, "fz");
	if (rec) {
		fz_check(json_is_object(rec) && json_is_boolean(json_object_get(rec, "alive")));
		fz_check(sw_json_str(rec, "last_heartbeat_at") && sw_json_str(rec, "expires_at"));
		int64_t beat = sw_json_int(rec, "last_heartbeat_at_unix_ns", -1);
		int64_t exp = sw_json_int(rec, "expires_at_unix_ns", -1);
		/* a record expires no sooner than its last heartbeat */
		fz_check(beat > 0 && exp >= beat);
	}
	struct sw_agent_counts c;
	fz_check(sw_agent_count(&ws, &c) == 0);
	fz_check(c.alive + c.dead == (rec != NULL));
	json_decref(rec);
	return 0;
}
