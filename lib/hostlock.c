/* hostlock.c — host-local flocks; see hostlock.h. */
#include "hostlock.h"
#include "fs.h"
#include "hash.h"
#include "lock.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int sw_hostlock(const char *const *keys, size_t n, int64_t timeout_ns)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	char dir[4096], path[4200];
	struct stat st;
	snprintf(dir, sizeof dir, "%s/sw-agent-%ld", base && base[0] == '/' ? base : "/tmp", (long)getuid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	/* somebody else's, or a symlink: not ours to use */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return -1;
	uint64_t h = 0;
	for (size_t i = 0; i < n; i++)
		h = sw_xxh64(keys[i], strlen(keys[i]), h);
	snprintf(path, sizeof path, "%s/%016llx.lock", dir, (unsigned long long)h);
	int fd = SW_NOINTR(open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
	if (fd < 0)
		return -1;
	if (sw_lock_fd(fd, LOCK_EX, timeout_ns) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void sw_hostunlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

void sw_hostlock_once(struct sw_hostlock_lazy *h)
{
	if (!h->tried)
		h->fd = sw_hostlock(h->keys, 4, SW_HOSTLOCK_WAIT_NS);
	h->tried = 1;
}
