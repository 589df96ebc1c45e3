/* lock.h — flock(2) on a separate lock file, to cut contention only.
 * Correctness never depends on it: on a network filesystem a crashed
 * client's lock can outlive it, so every wait is bounded. */
#ifndef SW_LOCK_H
#define SW_LOCK_H
#include <stdint.h>

/* Opens (creating) dirfd/name and takes op (LOCK_EX or LOCK_SH) within
 * timeout_ns (0: try once).  Returns the fd, or -1 with errno
 * (EWOULDBLOCK when the time ran out). */
int sw_lock(int dirfd, const char *name, int op, int64_t timeout_ns);
void sw_unlock(int fd);
/* The same on an open fd; 0, or -1 with errno (EWOULDBLOCK: timed out). */
int sw_lock_fd(int fd, int op, int64_t timeout_ns);
#endif
