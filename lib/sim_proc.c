#include "sim_proc.h"
#include "fs.h"
#include "num.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* posix_spawn's file actions report nothing until the spawn itself: a
 * failed one makes the spawn fail, which is what we want. */
static int add_fd(posix_spawn_file_actions_t *fa, int fd, int to)
{
	if (fd >= 0)
		return posix_spawn_file_actions_adddup2(fa, fd, to);
	return posix_spawn_file_actions_addopen(fa, to, "/dev/null", to ? O_WRONLY : O_RDONLY, 0);
}

pid_t sim_spawn(char *const argv[], char *const envp[], int in, int out, int err, bool own_group)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc) {
		errno = rc;
		return -1;
	}
	if ((rc = posix_spawnattr_init(&at))) {
		posix_spawn_file_actions_destroy(&fa);
		errno = rc;
		return -1;
	}
	sigemptyset(&none);
	sigfillset(&dfl);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (own_group ? POSIX_SPAWN_SETPGROUP : 0);
	pid_t pid = -1;
	if (!(rc = add_fd(&fa, in, 0)) && !(rc = add_fd(&fa, out, 1)) && !(rc = add_fd(&fa, err, 2)) &&
	    !(rc = posix_spawnattr_setflags(&at, flags)) && !(rc = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(rc = posix_spawnattr_setsigdefault(&at, &dfl)) && !(rc = posix_spawnattr_setpgroup(&at, 0)))
		rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		errno = rc;
		return -1;
	}
	return pid;
}

static bool comm_is(pid_t pid, const char *comm)
{
	char path[64], buf[64];
	snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = SW_NOINTR(read(fd, buf, sizeof buf - 1));
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return !strcmp(buf, comm);
}

pid_t sim_worker_of(pid_t guardian, const char *comm)
{
	char path[80], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)guardian, (long)guardian);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t n = SW_NOINTR(read(fd, buf, sizeof buf - 1));
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = 0;
	/* the guardian's children: the worker, and for a moment the trees a
	 * dead worker left, which the guardian is killing */
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		int64_t pid;
		if (sw_parse_i64(t, 1, INT32_MAX, &pid) == 0 && comm_is((pid_t)pid, comm))
			return (pid_t)pid;
	}
	return 0;
}

/* ---- lines ------------------------------------------------------------ */

void sim_lines_init(struct sim_lines *l, int fd, size_t max)
{
	*l = (struct sim_lines){ .fd = fd, .max = max };
}

static int emit(struct sim_lines *l, int (*fn)(const char *, size_t, void *), void *arg)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(l->buf + start, '\n', l->len - start);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (l->buf + start));
		int rc = fn(l->buf + start, n, arg);
		start += n + 1;
		if (rc)
			break;
	}
	memmove(l->buf, l->buf + start, l->len - start);
	l->len -= start;
	if (l->len >= l->max) {
		/* a line longer than any we write: cut it, it is not ours */
		l->cut++;
		l->len = 0;
	}
	return 0;
}

int sim_lines_read(struct sim_lines *l, int (*fn)(const char *line, size_t n, void *arg), void *arg)
{
	for (;;) {
		if (l->cap - l->len < 4096) {
			size_t cap = l->cap ? l->cap * 2 : 8192;
			char *b = realloc(l->buf, cap);
			if (!b)
				return -1;
			l->buf = b;
			l->cap = cap;
		}
		ssize_t n = read(l->fd, l->buf + l->len, l->cap - l->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			return 1;
		l->len += (size_t)n;
		emit(l, fn, arg);
	}
}

void sim_lines_flush(struct sim_lines *l, int (*fn)(const char *line, size_t n, void *arg), void *arg)
{
	if (l->len)
		fn(l->buf, l->len, arg);
	l->len = 0;
}

void sim_lines_free(struct sim_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = l->cap = 0;
}

/* ---- removing a tree ---------------------------------------------------- */

int sim_rmtree(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = sw_readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (sim_rmtree(dirfd(d), e->d_name) < 0)
			rc = -1;
	}
	if (errno)
		rc = -1;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

void sim_prog_path(const char *name, char out[PATH_MAX])
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(out, PATH_MAX, "%s/%s", self, name);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, PATH_MAX, "%s", name);
}

char **sim_env(const char *const *drop, char *const *add, size_t nadd)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + nadd + 1, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool dropped = false;
		for (size_t d = 0; drop && drop[d]; d++)
			dropped |= !strncmp(environ[i], drop[d], strlen(drop[d]));
		if (!dropped)
			env[k++] = environ[i];
	}
	for (size_t i = 0; i < nadd; i++)
		env[k++] = add[i];
	env[k] = NULL;
	return env;
}
