/* queue_wait.c — waiting for work without burning CPU.  Adders touch the
 * queue's `wake` file; waiters on this host watch it with inotify, which
 * does not see other hosts' changes on a network filesystem, so everyone
 * also polls, with jitter, and looks again when a delayed item falls due
 * or a lease runs out (nothing touches `wake` then). */
#include "queue_int.h"
#include "waiter.h"
#include "clock.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

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

void sw_queue_wait(struct sw_queue *q, const char *const *roles, size_t nroles, int64_t deadline_ns)
{
	int64_t now = sw_now_ns();
	if (deadline_ns <= now)
		return;
	if (!q->waiter) {
		/* first call: set the watch up and return at once, so the caller
		 * looks again with the watch in place and misses nothing */
		q->waiter = malloc(sizeof *q->waiter);
		if (q->waiter) {
			sw_waiter_init(q->waiter, q, roles, nroles);
			sw_waiter_lead(q->waiter);
			return;
		}
	}
	struct sw_waiter *w = q->waiter;
	int64_t base = sw_poll_interval(q);
	/* no inotify to be had (the user's instances all in use): only a look
	 * finds work, so look as often as on a network filesystem */
	if ((!w || w->ifd < 0) && q->ws->set.poll_ns <= 0 && base > SW_NS_PER_SEC)
		base = SW_NS_PER_SEC;
	int64_t iv = sw_jitter(base);
	/* nothing touches `wake` when a delayed item falls due or a lease
	 * runs out: look again by then */
	int64_t due = sw_queue_next_due(q);
	if (due > 0 && due - now < iv)
		iv = due - now > 50000000 ? due - now : 50000000;
	/* a watcher that was SIGKILLed told nobody: try to lead now and then */
	bool leads = w && sw_waiter_watching(w);
	if (w && !leads && sw_waiter_shared(w) && iv > SW_WAITER_LEAD_RETRY_NS)
		iv = sw_jitter(SW_WAITER_LEAD_RETRY_NS);
	if (deadline_ns - now < iv)
		iv = deadline_ns - now;
	if (!w || w->ifd < 0) {
		sw_sleep_ns(iv);
		return;
	}
	struct pollfd pfd = { .fd = w->ifd, .events = POLLIN };
	int ms = (int)((iv + 999999) / 1000000);
	bool wake = false, baton = false;
	if (poll(&pfd, 1, ms) > 0)
		sw_waiter_events(w, &wake, &baton);
	if (!leads)
		sw_waiter_lead(w);
}

/* Watches the directories items end in; -1 when inotify cannot be had. */
static int end_watch(struct sw_queue *q)
{
	if (q->end_ifd >= 0)
		return q->end_ifd;
	int ifd = q->ws->set.no_inotify ? -1 : inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return -1;
	static const enum qdir ends[] = { QD_DONE, QD_DEAD, QD_CANCELLED };
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		char path[64];
		int dfd = qdir(q, ends[i]);
		snprintf(path, sizeof path, "/proc/self/fd/%d", dfd);
		if (dfd < 0 || inotify_add_watch(ifd, path, IN_MOVED_TO | IN_CREATE | IN_ONLYDIR) < 0) {
			close(ifd);
			return -1;
		}
	}
	return q->end_ifd = ifd;
}

void sw_queue_wait_end(struct sw_queue *q, int64_t deadline_ns)
{
	int64_t now = sw_now_ns();
	if (deadline_ns <= now)
		return;
	bool first = q->end_ifd < 0;
	int ifd = end_watch(q);
	if (first && ifd >= 0)
		return;   /* the watch is in place now: the caller looks again */
	int64_t iv = sw_poll_interval(q);
	if (ifd < 0 && q->ws->set.poll_ns <= 0 && iv > SW_NS_PER_SEC)
		iv = SW_NS_PER_SEC;
	iv = sw_jitter(iv);
	if (deadline_ns - now < iv)
		iv = deadline_ns - now;
	if (ifd < 0) {
		sw_sleep_ns(iv);
		return;
	}
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };
	if (SW_NOINTR(poll(&pfd, 1, (int)((iv + 999999) / 1000000))) > 0) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		while (read(ifd, buf, sizeof buf) > 0)
			;    /* drained: what ended is looked up by name */
	}
}
