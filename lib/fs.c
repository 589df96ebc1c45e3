#include "fs.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int sw_open_dir(int dfd, const char *name, bool create)
{
	int fd = SW_NOINTR(openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd < 0 && errno == ENOENT && create) {
		if (SW_NOINTR(mkdirat(dfd, name, 0777)) < 0 && errno != EEXIST)
			return -1;
		fd = SW_NOINTR(openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	}
	return fd;
}

static bool bad_component(const char *c, size_t n)
{
	return n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.');
}

/* The fallback where openat2 is missing (kernels before 5.6, seccomp
 * filters): every directory on the way opened with O_NOFOLLOW. */
static int open_walk(int dfd, const char *rel, int flags, mode_t mode)
{
	int cur = dfd;
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char comp[256];
		if (bad_component(p, n) || n >= sizeof comp) {
			if (cur != dfd) close(cur);
			errno = EINVAL;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		int fd = slash ? SW_NOINTR(openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
			       : SW_NOINTR(openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode));
		int e = errno;
		if (cur != dfd) close(cur);
		if (fd < 0) {
			errno = e;
			return -1;
		}
		if (!slash)
			return fd;
		cur = fd;
		p = slash + 1;
	}
}

int sw_open_beneath(int dfd, const char *rel, int flags, mode_t mode)
{
	if (!*rel || rel[0] == '/') {
		errno = EINVAL;
		return -1;
	}
	if (!strchr(rel, '/'))   /* one component: O_NOFOLLOW is enough */
		return (int)SW_NOINTR(openat(dfd, rel, flags | O_NOFOLLOW | O_CLOEXEC, mode));
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = SW_NOINTR(syscall(SYS_openat2, dfd, rel, &how, sizeof how));
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return (int)fd;
	return open_walk(dfd, rel, flags, mode);
}

int sw_mkdirs(int dfd, const char *rel, mode_t mode)
{
	int cur = dfd;
	const char *p = rel;
	if (*p == '/') {   /* below dfd, always */
		errno = EINVAL;
		return -1;
	}
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char comp[256];
		if (bad_component(p, n) || n >= sizeof comp) {
			if (cur != dfd) close(cur);
			errno = EINVAL;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		if (SW_NOINTR(mkdirat(cur, comp, mode)) < 0 && errno != EEXIST) {
			int e = errno;
			if (cur != dfd) close(cur);
			errno = e;
			return -1;
		}
		int fd = SW_NOINTR(openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		int e = errno;
		if (cur != dfd) close(cur);
		if (fd < 0) {
			errno = e;
			return -1;
		}
		cur = fd;
		p = slash ? slash + 1 : p + n;
		while (*p == '/')
			p++;
	}
	if (cur != dfd)
		close(cur);
	return 0;
}

int sw_open_file(int dfd, const char *rel, struct stat *st)
{
	int fd = sw_open_beneath(dfd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return -1;
	if (SW_NOINTR(fstat(fd, st)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* sw_read_fd, stopping after stop_at bytes when it is not 0. */
static int read_upto(int fd, char **buf, size_t *len, size_t max, size_t stop_at)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		if (n + 1 >= cap) {
			if (n > max) {
				free(p);
				errno = EFBIG;
				return -1;
			}
			size_t want = cap * 2 > max + 2 ? max + 2 : cap * 2;
			char *q = realloc(p, want);
			if (!q) {
				free(p);
				errno = ENOMEM;
				return -1;
			}
			p = q;
			cap = want;
		}
		ssize_t r = read(fd, p + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(p);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == stop_at)
			break;
	}
	if (n > max) {
		free(p);
		errno = EFBIG;
		return -1;
	}
	p[n] = 0;
	*buf = p;
	if (len)
		*len = n;
	return 0;
}

int sw_read_fd(int fd, char **buf, size_t *len, size_t max)
{
	return read_upto(fd, buf, len, max, 0);
}

int sw_read_fd_sized(int fd, size_t size, char **buf, size_t *len, size_t max)
{
	return read_upto(fd, buf, len, max, size);
}

int sw_read_file(int dfd, const char *rel, char **buf, size_t *len, size_t max)
{
	struct stat st;
	int fd = sw_open_file(dfd, rel, &st);
	if (fd < 0)
		return -1;
	if ((size_t)st.st_size > max) {   /* a sparse 1 GiB file is not read */
		close(fd);
		errno = EFBIG;
		return -1;
	}
	int rc = sw_read_fd(fd, buf, len, max);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

bool sw_errno_damaged(int err)
{
	return err == ELOOP || err == ENOTDIR || err == EINVAL || err == EFBIG ||
	       err == EISDIR || err == EBADMSG || err == ENXIO;
}

struct dirent *sw_readdir(DIR *d)
{
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de || errno != EINTR)
			return de;
	}
}

bool sw_write_more(int fd, const char *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = write(fd, buf + *off, len - *off);
		if (n > 0)
			*off += (size_t)n;
		else if (n < 0 && errno == EAGAIN)
			return true;
		else if (!(n < 0 && errno == EINTR))
			return false;   /* EPIPE: the reader does not want the rest */
	}
	return false;
}
