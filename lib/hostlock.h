/* hostlock.h — a flock shared by the processes of this host only, to cut
 * contention, never to decide: the takers of a limit or the recorders of
 * a breaker on one host go one at a time, so that each host has one
 * process in a chain's race instead of a stampede that a faster host's
 * stampede keeps beating.  The lock files live in the private host-local
 * directory lib/waiter.c uses, $XDG_RUNTIME_DIR (or /tmp)/sw-agent-UID/,
 * where flock is trustworthy and dies with its holder. */
#ifndef SW_HOSTLOCK_H
#define SW_HOSTLOCK_H
#include <stddef.h>
#include <stdint.h>

/* Locks the host-local lock named by the n strings keys (hashed), waiting
 * at most timeout_ns: its fd, or -1 (no usable directory, or the wait ran
 * out: a holder that is stopped or stalled; go on without it). */
int sw_hostlock(const char *const *keys, size_t n, int64_t timeout_ns);
void sw_hostunlock(int fd);

/* The lock a read-decide-write round takes only once it has something to
 * write, so that readers (and refusals) never wait: asked for at most
 * once, through sw_hostlock_once, and given back with sw_hostunlock(fd). */
struct sw_hostlock_lazy {
	const char *keys[4];
	int fd;                 /* -1: not held */
	int tried;
};
#define SW_HOSTLOCK_LAZY(a, b, c, d) { { (a), (b), (c), (d) }, -1, 0 }
/* A writer of this host stopped or descheduled while it holds the lock
 * delays the others this long at most; then they race without it. */
#define SW_HOSTLOCK_WAIT_NS (50 * INT64_C(1000000))
void sw_hostlock_once(struct sw_hostlock_lazy *h);
#endif
