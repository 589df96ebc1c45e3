/* test_agent — lib/agent.c through its API (what sw-metrics will call):
 * records, heartbeats by mtime, liveness with the skew margin, counts,
 * and reaping that spares an agent which heartbeats in time. */
#include "tap.h"
#include "agent.h"
#include "clock.h"
#include "json.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *rec(const char *id, double ttl)
{
	return json_pack("{s:s,s:f}", "id", id, "ttl", ttl);
}

static int put(struct sw_ws *ws, const char *id, double ttl)
{
	json_t *r = rec(id, ttl);
	int rc = sw_agent_put(ws, id, r);
	json_decref(r);
	return rc;
}

static int seen(json_t *r, void *arg)
{
	(void)r;
	++*(int *)arg;
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/test_agent.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	setenv("SW_SYNC", "off", 1);
	unsetenv("SW_CLOCK_OFFSET");
	unsetenv("SW_CLOCK_SKEW");
	struct sw_ws ws;
	{ struct sw_err e; if (sw_ws_open(&ws, dir, true, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; } }

	struct sw_agent_counts c;
	ok(sw_agent_count(&ws, &c) == 0 && c.alive == 0 && c.dead == 0, "no agents directory: 0 alive, 0 dead");
	ok(sw_agent_heartbeat(&ws, "nobody") < 0 && errno == ENOENT, "heartbeat of an unknown agent: ENOENT");
	ok(put(&ws, "../x", 1) < 0 && errno == EINVAL, "a bad id is refused");

	json_t *hw = sw_agent_hw();
	ok(json_integer_value(json_object_get(hw, "cpus")) == sysconf(_SC_NPROCESSORS_ONLN), "cpus detected");
	ok(json_integer_value(json_object_get(hw, "memory_bytes")) > 0, "memory detected");
	ok(json_is_array(json_object_get(hw, "gpus")), "gpus is an array");
	json_decref(hw);

	ok(put(&ws, "short", 1) == 0 && put(&ws, "long", 3600) == 0, "two records written");
	json_t *r = sw_agent_get(&ws, "short");
	ok(r && json_is_true(json_object_get(r, "alive")), "a fresh record is alive");
	json_decref(r);
	ok(sw_agent_count(&ws, &c) == 0 && c.alive == 2 && c.dead == 0, "2 alive");

	/* 1s ttl + 2s skew: alive 2.5s on, dead 3.5s on */
	setenv("SW_CLOCK_OFFSET", "2500ms", 1);
	ok(sw_agent_count(&ws, &c) == 0 && c.alive == 2, "within ttl + skew: still alive");
	setenv("SW_CLOCK_OFFSET", "3500ms", 1);
	ok(sw_agent_count(&ws, &c) == 0 && c.alive == 1 && c.dead == 1, "past ttl + skew: 1 alive, 1 dead");
	r = sw_agent_get(&ws, "short");
	ok(r && json_is_false(json_object_get(r, "alive")), "get says dead too");
	json_decref(r);

	/* a heartbeat (at the offset clock) revives it; reap then spares it */
	ok(sw_agent_heartbeat(&ws, "short") == 0, "heartbeat");
	long long n = -1;
	int reaped = 0;
	ok(sw_agent_reap(&ws, seen, &reaped, &n) == 0 && n == 0 && reaped == 0, "reap spares agents that beat");
	setenv("SW_CLOCK_OFFSET", "10s", 1);
	ok(sw_agent_reap(&ws, seen, &reaped, &n) == 0 && n == 1 && reaped == 1, "reap forgets the dead one");
	unsetenv("SW_CLOCK_OFFSET");
	ok(sw_agent_get(&ws, "short") == NULL && errno == ENOENT, "its record is gone");
	r = sw_agent_get(&ws, "long");
	ok(r != NULL, "the live one stays");
	json_decref(r);
	int all = 0;
	ok(sw_agent_each(&ws, seen, &all) == 0 && all == 1, "each sees one record");
	ok(sw_agent_remove(&ws, "long") == 0 && sw_agent_remove(&ws, "long") < 0 && errno == ENOENT,
	   "remove, then ENOENT");

	sw_ws_close(&ws);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
