/* agent — agent records as read from the workspace (lib/agent.h): the
 * input is written as agents/fz.json in a scratch workspace and read
 * back with sw_agent_get and sw_agent_count, the way sw-agent list and
 * sw-metrics export read records another host wrote.  The record parser
 * itself (rec_read) is static, so this goes through the files; the
 * scratch directory ($TMPDIR/sw-fuzz-agent.<pid>) is the only thing kept
 * between inputs, and every input replaces the one file in it. */
#include "fuzz.h"
#include "agent.h"
#include "clock.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sw_ws ws = { .fd = -1 };

#define SCRATCH "sw-fuzz-agent."

/* Removes dir/name's scratch workspace (which holds only agents/fz.json). */
static void scratch_rm(int dir, const char *name)
{
	int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	int afd = openat(fd, SW_AGENT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (afd >= 0) {
		unlinkat(afd, "fz.json", 0);
		close(afd);
	}
	unlinkat(fd, SW_AGENT_DIR, AT_REMOVEDIR);
	close(fd);
	unlinkat(dir, name, AT_REMOVEDIR);
}

static void scratch_remove(void)
{
	char *slash = strrchr(ws.path, '/');
	*slash = 0;
	int dir = open(ws.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*slash = '/';
	close(ws.fd);
	if (dir >= 0) {
		scratch_rm(dir, slash + 1);
		close(dir);
	}
}

/* A crash ends the process without atexit: the scratch workspaces of
 * processes that are gone are swept when the next one starts. */
static void scratch_sweep(const char *tmp)
{
	DIR *d = opendir(tmp);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		if (strncmp(e->d_name, SCRATCH, strlen(SCRATCH)))
			continue;
		long pid = strtol(e->d_name + strlen(SCRATCH), &end, 10);
		if (!*end && pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			scratch_rm(dirfd(d), e->d_name);
	}
	closedir(d);
}

static void scratch_open(void)
{
	const char *tmp = getenv("TMPDIR");
	tmp = tmp && *tmp ? tmp : "/tmp";
	scratch_sweep(tmp);
	snprintf(ws.path, sizeof ws.path, "%s/" SCRATCH "%ld", tmp, (long)getpid());
	if ((mkdir(ws.path, 0700) < 0 && errno != EEXIST) ||
	    (ws.fd = open(ws.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    (mkdirat(ws.fd, SW_AGENT_DIR, 0700) < 0 && errno != EEXIST)) {
		perror("agent: scratch workspace");
		abort();
	}
	ws.sync = SW_SYNC_OFF;
	ws.skew_ns = SW_SKEW_DEFAULT_NS;
	ws.dmode = 0700;
	ws.fmode = 0600;
	atexit(scratch_remove);
}

static void put(const uint8_t *data, size_t size)
{
	int fd = openat(ws.fd, SW_AGENT_DIR "/fz.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) < 0) {
		perror("agent: writing the record");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ws.fd < 0)
		scratch_open();
	put(data, size);
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
