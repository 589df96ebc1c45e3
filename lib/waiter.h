/* waiter.h — waiting for work without a stampede, for every waiter of a
 * queue on this host (`sw-claim next --wait`, `sw-agent run`).
 *
 * Of the idle waiters on this host for the same workspace, queue and set
 * of roles, one — the holder of a host-local flock — watches the queue's
 * wake file with inotify; the others watch a baton file.  When the
 * watcher is woken and takes work, it resigns and touches the baton, and
 * one of the others takes over.  An added item thus wakes one waiter, not
 * all.  inotify does not see other hosts' changes, and a watcher can be
 * SIGKILLed without a word, so everyone still polls, with jitter, and a
 * waiting non-watcher tries to lead every few seconds.  The host-local
 * files live in $XDG_RUNTIME_DIR (or /tmp)/sw-agent-UID/, private to the
 * user, where flock and inotify are trustworthy. */
#ifndef SW_WAITER_H
#define SW_WAITER_H
#include "queue.h"
#include <stdbool.h>
#include <stdint.h>

#define SW_WAITER_LEAD_RETRY_NS (6 * INT64_C(1000000000))  /* a dead watcher is replaced within */

struct sw_waiter {
	int ifd;                /* inotify, for poll(2); -1 when unavailable */
	int wake_wd, baton_wd;
	int lockfd;             /* >= 0: we are the watcher */
	bool shared;            /* the host-local files are usable */
	int queue_fd;           /* for the wake file's path through /proc */
	char lock[4096], baton[4096];
};

/* Sets w up for q and roles (nroles 0: any). */
void sw_waiter_init(struct sw_waiter *w, const struct sw_queue *q, const char *const *roles, size_t nroles);
void sw_waiter_close(struct sw_waiter *w);
/* Whether w watches the wake file now. */
bool sw_waiter_watching(const struct sw_waiter *w);
/* Becomes the watcher when nobody on this host is; true when it did. */
bool sw_waiter_lead(struct sw_waiter *w);
/* Stops watching, and passes the baton on. */
void sw_waiter_resign(struct sw_waiter *w);
/* Reads what inotify reported: the wake file, the baton. */
void sw_waiter_events(struct sw_waiter *w, bool *wake, bool *baton);
/* Whether others on this host can take over from a watcher. */
bool sw_waiter_shared(const struct sw_waiter *w);

/* How often to look for work when nothing says so: $SW_POLL, else 1 s on
 * a network filesystem (inotify sees only this host), 30 s locally. */
int64_t sw_poll_interval(const struct sw_queue *q);
/* Between half and all of iv, so that pollers on many hosts spread out. */
int64_t sw_jitter(int64_t iv);
#endif
