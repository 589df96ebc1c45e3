#include "waiter.h"
#include "clock.h"
#include "fs.h"
#include "hash.h"
#include "id.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

int64_t sw_poll_interval(const struct sw_queue *q)
{
	if (q->ws->set.poll_ns > 0)
		return q->ws->set.poll_ns;
	return sw_is_netfs(q->fd) ? SW_NS_PER_SEC : 30 * SW_NS_PER_SEC;
}

int64_t sw_jitter(int64_t iv)
{
	return iv / 2 + (int64_t)sw_rand_below(1000000) * (iv / 2000000);
}

/* The private host-local directory of this user; false when unusable. */
static bool runtime_dir(char dir[4096])
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	snprintf(dir, 4096, "%s/sw-agent-%ld", base && base[0] == '/' ? base : "/tmp", (long)getuid());
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return false;
	/* somebody else's, or a symlink: not ours to use */
	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
	       !(st.st_mode & 077);
}

void sw_waiter_init(struct sw_waiter *w, const struct sw_queue *q, const char *const *roles, size_t nroles)
{
	memset(w, 0, sizeof *w);
	w->lockfd = w->wake_wd = w->baton_wd = -1;
	w->queue_fd = q->fd;
	w->ifd = q->ws->set.no_inotify ? -1 : inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char dir[4096];
	if (w->ifd < 0 || !runtime_dir(dir))
		return;
	/* one watcher per workspace, queue and set of roles: a watcher that
	 * cannot take an item must not be the one told about it */
	uint64_t h = sw_xxh64(q->ws->path, strlen(q->ws->path), 0);
	h = sw_xxh64(q->name, strlen(q->name), h);
	for (size_t i = 0; i < nroles; i++)
		h = sw_xxh64(roles[i], strlen(roles[i]), h);
	snprintf(w->lock, sizeof w->lock, "%s/%016llx.lock", dir, (unsigned long long)h);
	snprintf(w->baton, sizeof w->baton, "%s/%016llx.baton", dir, (unsigned long long)h);
	int fd = open(w->baton, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return;
	close(fd);
	w->baton_wd = inotify_add_watch(w->ifd, w->baton, IN_ATTRIB | IN_DONT_FOLLOW);
	w->shared = w->baton_wd >= 0;
}

void sw_waiter_close(struct sw_waiter *w)
{
	sw_waiter_resign(w);
	if (w->ifd >= 0)
		close(w->ifd);
	w->ifd = -1;
}

bool sw_waiter_watching(const struct sw_waiter *w) { return w->wake_wd >= 0; }
bool sw_waiter_shared(const struct sw_waiter *w) { return w->shared; }

bool sw_waiter_lead(struct sw_waiter *w)
{
	if (w->ifd < 0 || sw_waiter_watching(w))
		return false;
	if (w->shared) {
		int fd = open(w->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
		if (fd < 0)
			return false;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			return false;
		}
		w->lockfd = fd;
	}
	/* through the open queue directory, and not through a symlink */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d/wake", w->queue_fd);
	w->wake_wd = inotify_add_watch(w->ifd, path, IN_ATTRIB | IN_MODIFY | IN_DONT_FOLLOW);
	if (w->wake_wd < 0 && w->lockfd >= 0) {
		close(w->lockfd);
		w->lockfd = -1;
	}
	return w->wake_wd >= 0;
}

void sw_waiter_resign(struct sw_waiter *w)
{
	if (!sw_waiter_watching(w))
		return;
	inotify_rm_watch(w->ifd, w->wake_wd);
	w->wake_wd = -1;
	if (w->lockfd >= 0) {
		close(w->lockfd);
		w->lockfd = -1;
		utimensat(AT_FDCWD, w->baton, NULL, AT_SYMLINK_NOFOLLOW);   /* next one, please */
	}
}

void sw_waiter_events(struct sw_waiter *w, bool *wake, bool *baton)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(w->ifd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
		for (char *p = buf; n > 0 && p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->wd == w->wake_wd && w->wake_wd >= 0)
				*wake = true;
			else if (ev->wd == w->baton_wd)
				*baton = true;
			p += sizeof *ev + ev->len;
		}
	}
}
