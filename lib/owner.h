/* owner.h — which process, on which boot of which host, owns something in
 * the workspace, and whether it is known to be dead.
 *
 * An owner is "<boot>-<pid>-<start>": 12 hex digits of the kernel's boot
 * id, the pid, and the process's start time in clock ticks since boot.
 * On the same boot, a pid that is gone, or that now belongs to a process
 * started at another time, is dead for certain; on another boot (another
 * host, or this one rebooted) nothing is certain and callers wait out a
 * grace period instead. */
#ifndef SW_OWNER_H
#define SW_OWNER_H
#include <stdbool.h>
#include <sys/types.h>

#define SW_OWNER_LEN 48

enum sw_liveness { SW_OWNER_ALIVE, SW_OWNER_DEAD, SW_OWNER_UNKNOWN };

/* This process's owner string; "" when /proc cannot tell. */
void sw_owner_self(char out[SW_OWNER_LEN]);
/* Another process's owner string (this boot); "" when it is gone. */
void sw_owner_of(pid_t pid, char out[SW_OWNER_LEN]);
/* Whether the owner named by s (its first len bytes) lives. */
enum sw_liveness sw_owner_alive(const char *s, size_t len);
#endif
