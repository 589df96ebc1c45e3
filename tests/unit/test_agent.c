/* test_agent — lib/agent.c through its API (what sw-metrics will call):
 * records, heartbeats by mtime, liveness with the skew margin, counts,
 * and reaping that spares an agent which heartbeats in time. */
#include "tap.h"
#include "agent.h"
#include "clock.h"
#include "json.h"
#include "owner.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* A record naming processes: owner and, when given, guardian. */
static int put_owned(struct sw_ws *ws, const char *id, const char *owner, const char *guardian)
{
	json_t *r = rec(id, 3600);
	json_object_set_new(r, "owner", json_string(owner));
	if (guardian)
		json_object_set_new(r, "guardian", json_string(guardian));
	int rc = sw_agent_put(ws, id, r);
	json_decref(r);
	return rc;
}

static bool alive(struct sw_ws *ws, const char *id)
{
	json_t *r = sw_agent_get(ws, id);
	bool a = r && json_is_true(json_object_get(r, "alive"));
	json_decref(r);
	return a;
}

/* The owner string of a process that has exited: reaped, or left a
 * zombie (its pid in *zombie, for the caller to reap) when zombie is
 * not NULL. */
static void dead_owner(char out[SW_OWNER_LEN], pid_t *zombie)
{
	int p[2];
	out[0] = 0;
	if (pipe(p) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(p[1]);
		(void)!read(p[0], &c, 1);   /* until the parent has its owner string */
		_exit(0);
	}
	close(p[0]);
	if (pid > 0)
		sw_owner_of(pid, out);
	close(p[1]);
	if (pid > 0 && zombie) {
		*zombie = pid;
		siginfo_t si;   /* until it has exited, leaving it a zombie */
		waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
	} else if (pid > 0) {
		waitpid(pid, NULL, 0);
	}
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

	/* a process that is gone on this host: dead at once, whatever the ttl */
	char self[SW_OWNER_LEN], gone[SW_OWNER_LEN];
	sw_owner_self(self);
	dead_owner(gone, NULL);
	ok(*self && *gone, "owner strings of this process and of a dead one");
	ok(put_owned(&ws, "mine", self, NULL) == 0 && alive(&ws, "mine"), "owner alive: alive");
	ok(put_owned(&ws, "lost", gone, NULL) == 0 && !alive(&ws, "lost"), "owner gone: dead, heartbeat fresh");
	r = sw_agent_get(&ws, "lost");
	ok(r && !strcmp(sw_json_str(r, "dead_reason"), "process_gone"), "dead_reason says why");
	json_decref(r);
	ok(put_owned(&ws, "guarded", gone, self) == 0 && alive(&ws, "guarded"),
	   "owner gone, guardian alive: alive (it is still killing the trees)");
	ok(put_owned(&ws, "both", gone, gone) == 0 && !alive(&ws, "both"), "owner and guardian gone: dead");
	char zombie[SW_OWNER_LEN];
	pid_t zpid = 0;
	dead_owner(zombie, &zpid);
	ok(*zombie && put_owned(&ws, "zombie", zombie, NULL) == 0 && !alive(&ws, "zombie"),
	   "an owner that exited but was not waited for (a zombie): dead");
	if (zpid > 0)
		waitpid(zpid, NULL, 0);
	sw_agent_remove(&ws, "zombie");
	ok(put_owned(&ws, "far", "0123456789ab-1-1", NULL) == 0 && alive(&ws, "far"),
	   "an owner of another boot or host: the heartbeat decides");
	ok(put_owned(&ws, "bad", "x/y", NULL) == 0 && sw_agent_get(&ws, "bad") == NULL && errno == EBADMSG,
	   "an owner that is no owner string: the record fails its check");
	sw_agent_remove(&ws, "bad");
	n = -1;
	reaped = 0;
	ok(sw_agent_reap(&ws, seen, &reaped, &n) == 0 && n == 2 && reaped == 2, "reap forgets the two whose processes are gone");
	ok(alive(&ws, "mine") && alive(&ws, "guarded") && alive(&ws, "far"), "and spares the others");
	reaped = 0;
	ok(sw_agent_forget(&ws, "mine", seen, &reaped) == 0 && reaped == 1 && sw_agent_get(&ws, "mine") == NULL,
	   "forget: a live agent goes too");
	ok(sw_agent_forget(&ws, "mine", seen, &reaped) < 0 && errno == ENOENT && reaped == 1, "forget: ENOENT after");

	sw_ws_close(&ws);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
