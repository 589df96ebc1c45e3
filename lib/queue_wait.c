/* queue_wait.c — waiting for work without burning CPU.  Adders touch the
 * queue's `wake` file; waiters on this host watch it with inotify, which
 * does not see other hosts' changes on a network filesystem, so everyone
 * also polls, with jitter, and looks again when a delayed item falls due
 * or a lease runs out (nothing touches `wake` then). */
#include "queue_int.h"
#include "clock.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static int64_t poll_interval(const struct sw_queue *q)
{
	const char *s = getenv("SW_POLL");
	int64_t ns;
	if (s && *s && sw_parse_duration(s, &ns) == 0 && ns > 0)
		return ns;
	/* inotify sees only this host's changes: poll often where other
	 * hosts can add work, rarely where inotify sees everything */
	return sw_is_netfs(q->fd) ? SW_NS_PER_SEC : 30 * SW_NS_PER_SEC;
}

struct due { int64_t min, skew; };

static void due_min(struct due *d, int64_t t)
{
	if (t > 0 && (d->min == 0 || t < d->min))
		d->min = t;
}

static int due_timed(int dfd, const char *name, void *arg)
{
	(void)dfd;
	int64_t t;
	const char *id;
	if (keyed_name_parse(name, &t, &id))
		due_min(arg, t);
	return 0;
}

static int due_claim(int dfd, const char *name, void *arg)
{
	(void)dfd;
	struct due *d = arg;
	char id[NAME_LEN];
	uint64_t token;
	int64_t expiry;
	if (claim_name_parse(name, id, &token, &expiry))
		due_min(d, expiry + d->skew + SW_NS_PER_SEC);
	return 0;
}

int64_t sw_queue_next_due(struct sw_queue *q)
{
	struct due d = { 0, q->ws->skew_ns };
	if (qdir(q, QD_TIMED) >= 0)
		each_entry(q->dfd[QD_TIMED], due_timed, &d);
	if (qdir(q, QD_CLAIMED) >= 0)
		each_entry(q->dfd[QD_CLAIMED], due_claim, &d);
	return d.min;
}

static int wake_watch(struct sw_queue *q)
{
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return -1;
	/* through the open queue directory, and not through a symlink */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d/wake", q->fd);
	if (inotify_add_watch(ifd, path, IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_DONT_FOLLOW) < 0) {
		close(ifd);
		return -1;
	}
	return ifd;
}

void sw_queue_wait(struct sw_queue *q, int64_t deadline_ns)
{
	int64_t now = sw_now_ns();
	if (deadline_ns <= now)
		return;
	if (q->ifd < 0) {
		/* first call: set the watch up and return at once, so the caller
		 * looks again with the watch in place and misses nothing */
		q->ifd = wake_watch(q);
		if (q->ifd >= 0)
			return;
	}
	int64_t iv = poll_interval(q);
	/* jitter, so that pollers on many hosts do not arrive together */
	iv = iv / 2 + (int64_t)sw_rand_below(1000000) * (iv / 2000000);
	int64_t due = sw_queue_next_due(q);
	if (due > 0 && due - now < iv)
		iv = due - now > 50000000 ? due - now : 50000000;
	if (deadline_ns - now < iv)
		iv = deadline_ns - now;
	if (q->ifd < 0) {
		sw_sleep_ns(iv);
		return;
	}
	struct pollfd pfd = { .fd = q->ifd, .events = POLLIN };
	int ms = (int)((iv + 999999) / 1000000);
	if (poll(&pfd, 1, ms) > 0) {
		char buf[4096];
		while (read(q->ifd, buf, sizeof buf) > 0)
			;
	}
}
