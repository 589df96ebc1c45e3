/* floor DIR N SYNC: the file operations of N claim+done cycles, 100 at a
 * time, done as sw-claim does them (next -n 100, then done from stdin as
 * one group: sw-workspace(5) "Transitions") and nothing else: no JSON, no
 * exec, no lock, no lookup.  Prints the items a second.  make bench sets
 * sw's batched cycle against it: what is left above this floor is what
 * sw's own code can still win; the floor itself only a different layout
 * (fewer files an item) could lower.  SYNC 1 syncs as SW_SYNC=normal does
 * for a group (three syncfs), 0 as off. */
#define _GNU_SOURCE
#include <dirent.h>
#include <err.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 100

static char item[218], done_item[310];

static int dir_at(int top, const char *name)
{
	if (mkdirat(top, name, 0700) < 0)
		err(1, "mkdir %s", name);
	int fd = openat(top, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		err(1, "open %s", name);
	return fd;
}

static void put(int dfd, const char *name, const char *buf, size_t len, int flags)
{
	int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | flags, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		err(1, "write %s", name);
}

static void get(int dfd, const char *name)
{
	char buf[4096];
	struct stat st;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || read(fd, buf, sizeof buf) < 0 || close(fd) < 0)
		err(1, "read %s", name);
}

static void move(int ofd, const char *o, int nfd, const char *n, unsigned flags)
{
	if (renameat2(ofd, o, nfd, n, flags) < 0)
		err(1, "rename %s", o);
}

static void sync_if(int fd, int sync)
{
	if (sync && syncfs(fd) < 0)
		err(1, "syncfs");
}

static void stat_at(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		err(1, "stat %s", name);
}

/* One batch: items first..first+BATCH-1 claimed, then finished as a group. */
static void cycle(int p, int c, int s, int d, long first, int sync)
{
	char name[64], cname[64], mname[64];
	for (long i = first; i < first + BATCH; i++) {
		snprintf(name, sizeof name, "%020ld", i);
		snprintf(cname, sizeof cname, "%020ld.1234567.1796359660374", i);
		get(p, name);
		move(p, name, c, cname, 0);
	}
	put(s, "g.u", "", 0, O_CREAT | O_EXCL);
	int gfd = openat(s, "g.u", O_WRONLY | O_APPEND | O_CLOEXEC);
	if (gfd < 0)
		err(1, "group");
	for (long i = first; i < first + BATCH; i++) {
		snprintf(cname, sizeof cname, "%020ld.1234567.1796359660374", i);
		snprintf(mname, sizeof mname, "g.m.%ld", i - first);
		get(c, cname);
		move(c, cname, s, mname, 0);
		stat_at(s, mname);
	}
	static char lines[BATCH * (sizeof done_item + 16)];
	size_t len = 0;
	for (int i = 0; i < BATCH; i++)
		len += (size_t)sprintf(lines + len, "{\"m\":%d,\"item\":%s}\n", i, done_item);
	if (write(gfd, lines, len) != (ssize_t)len || close(gfd) < 0)
		err(1, "group write");
	sync_if(s, sync);
	move(s, "g.u", s, "g.c", 0);
	for (long i = 0; i < BATCH; i++) {
		snprintf(mname, sizeof mname, "g.m.%ld", i);
		put(s, mname, done_item, sizeof done_item - 1, 0);
	}
	sync_if(s, sync);
	for (long i = first; i < first + BATCH; i++) {
		snprintf(mname, sizeof mname, "g.m.%ld", i - first);
		snprintf(name, sizeof name, "%020ld", i);
		stat_at(s, mname);
		move(s, mname, d, name, RENAME_NOREPLACE);
	}
	sync_if(s, sync);
	if (unlinkat(s, "g.c", 0) < 0)
		err(1, "unlink");
}

int main(int argc, char **argv)
{
	if (argc != 4)
		errx(64, "usage: floor DIR N SYNC");
	long n = strtol(argv[2], NULL, 10) / BATCH * BATCH;
	int sync = atoi(argv[3]);
	if (mkdir(argv[1], 0700) < 0)
		err(1, "mkdir %s", argv[1]);
	int top = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (top < 0)
		err(1, "%s", argv[1]);
	int p = dir_at(top, "pending"), c = dir_at(top, "claimed"), s = dir_at(top, "stage"),
	    d = dir_at(top, "done");
	memset(item, 'x', sizeof item - 1);
	memset(done_item, 'y', sizeof done_item - 1);
	char name[64];
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%020ld", i);
		put(p, name, item, sizeof item - 1, O_CREAT | O_EXCL);
	}
	if (syncfs(top) < 0)
		err(1, "syncfs");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i += BATCH)
		cycle(p, c, s, d, i, sync);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.0f\n", (double)n / secs);
	return 0;
}
