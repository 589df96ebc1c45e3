#include "lock.h"
#include "clock.h"
#include "fs.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int lock_fd(int fd, int op)
{
	if (SW_NOINTR(flock(fd, op | LOCK_NB)) == 0)
		return 0;
	return -1;
}

int sw_lock_fd(int fd, int op, int64_t timeout_ns)
{
	int64_t deadline = sw_now_ns() + timeout_ns, pause = 100000;
	while (lock_fd(fd, op) < 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || sw_now_ns() >= deadline)
			return -1;
		sw_sleep_ns(pause);
		if (pause < 5000000) pause *= 2;
	}
	return 0;
}

/* The lock file, created when missing; only a regular file will do (a
 * FIFO planted there must not hang us; O_NONBLOCK makes its open return). */
static int lock_open(int dirfd, const char *name)
{
	int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = SW_NOINTR(openat(dirfd, name, flags, 0666));
	if (fd < 0 && errno == EEXIST)   /* NFS: racing O_CREAT from two hosts */
		fd = SW_NOINTR(openat(dirfd, name, flags, 0666));
	if (fd < 0)
		return -1;
	struct stat st;
	if (SW_NOINTR(fstat(fd, &st)) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

int sw_lock(int dirfd, const char *name, int op, int64_t timeout_ns)
{
	int fd = lock_open(dirfd, name);
	if (fd < 0)
		return -1;
	int64_t deadline = sw_now_ns() + timeout_ns, pause = 100000;
	for (;;) {
		if (lock_fd(fd, op) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			/* like flock(1): NFSv4 emulates flock with fcntl locks,
			 * which some servers refuse; go on without the lock */
			if (errno == EIO || errno == EBADF || errno == ENOLCK || errno == EINVAL)
				return fd;
			close(fd);
			return -1;
		}
		if (sw_now_ns() >= deadline) {
			close(fd);
			errno = EWOULDBLOCK;
			return -1;
		}
		sw_sleep_ns(pause);
		if (pause < 5000000) pause *= 2;
	}
}

void sw_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
