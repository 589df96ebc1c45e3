/* scratch.h — a scratch workspace for the targets whose parser is static
 * and is reached through a file (agent.c, ring.c): each input is written
 * as SUBDIR/fz.json in $TMPDIR/sw-fuzz-TARGET.<pid> and read back the way
 * the programs read it.  That one file is the only thing kept between
 * inputs, and every input replaces it. */
#ifndef SW_FUZZ_SCRATCH_H
#define SW_FUZZ_SCRATCH_H
#include "fuzz.h"
#include "clock.h"
#include "ws.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sw_ws ws = { .fd = -1 };
static const char *scratch_sub;     /* the workspace directory of the file */

/* Removes dir/name's scratch workspace (which holds only SUBDIR/fz.json). */
static void scratch_rm(int dir, const char *name)
{
	int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	int sub = openat(fd, scratch_sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub >= 0) {
		unlinkat(sub, "fz.json", 0);
		close(sub);
	}
	unlinkat(fd, scratch_sub, AT_REMOVEDIR);
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
static void scratch_sweep(const char *tmp, const char *prefix)
{
	DIR *d = opendir(tmp);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		long pid = strtol(e->d_name + strlen(prefix), &end, 10);
		if (!*end && pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			scratch_rm(dirfd(d), e->d_name);
	}
	closedir(d);
}

/* Opens (once) the scratch workspace of target, with its directory sub. */
static void scratch_open(const char *target, const char *sub)
{
	if (ws.fd >= 0)
		return;
	char prefix[64];
	const char *tmp = getenv("TMPDIR");
	tmp = tmp && *tmp ? tmp : "/tmp";
	scratch_sub = sub;
	snprintf(prefix, sizeof prefix, "sw-fuzz-%s.", target);
	scratch_sweep(tmp, prefix);
	snprintf(ws.path, sizeof ws.path, "%s/%s%ld", tmp, prefix, (long)getpid());
	if ((mkdir(ws.path, 0700) < 0 && errno != EEXIST) ||
	    (ws.fd = open(ws.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    (mkdirat(ws.fd, sub, 0700) < 0 && errno != EEXIST)) {
		perror("scratch workspace");
		abort();
	}
	ws.sync = SW_SYNC_OFF;
	ws.skew_ns = SW_SKEW_DEFAULT_NS;
	ws.dmode = 0700;
	ws.fmode = 0600;
	atexit(scratch_remove);
}

/* The input as SUBDIR/fz.json, exactly its bytes. */
static void scratch_put(const uint8_t *data, size_t size)
{
	char path[128];
	snprintf(path, sizeof path, "%s/fz.json", scratch_sub);
	int fd = openat(ws.fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) < 0) {
		perror("scratch: writing the input");
		abort();
	}
}
#endif
