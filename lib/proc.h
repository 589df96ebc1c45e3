/* proc.h — a command's whole process tree, so that none of it outlives
 * the lease or the claim it runs under.
 *
 * A command runs in a process group of its own under a process that is a
 * child subreaper (PR_SET_CHILD_SUBREAPER): a descendant that leaves the
 * group (setsid, a double fork) is reparented to that process when its
 * parent dies, so it can still be waited for and signalled.  The tree of
 * a command is its process group plus every process reparented to us;
 * waitpid's ECHILD says that nothing of any tree is left.  A process that
 * is not a descendant at all (started through a daemon: at, systemd-run,
 * ssh) is out of reach.
 *
 * The guardian covers a SIGKILL of the process the user started: that
 * process forks once, at the start, and keeps nothing but watch; the
 * child, the worker, does the work.  Whichever of the two dies first, the
 * other kills the trees: the guardian, a subreaper too, SIGKILLs every
 * descendant left once the worker is gone, and the worker is told of the
 * guardian's death (PR_SET_PDEATHSIG) and SIGKILLs its trees at once.
 * Only both killed at once (kill -9 of both) leaves the trees running.
 * A worker must not wait for the filesystem in the thread that watches
 * for the guardian's death (hold.c renews in a thread of its own): stuck
 * in a hung call, it would kill the trees only once the call returned.
 * The guardian is also a watchdog (sw_guard_watch): should the worker
 * hang while its commands run on, it kills them by the worker's deadline. */
#ifndef SW_PROC_H
#define SW_PROC_H
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the guardian ---------------------------------------------------- */

struct sw_guard {
	pid_t guardian;         /* the process the user started, and sees */
	int sig;                /* what the worker gets when the guardian dies */
	bool ttou_ignored;      /* SIGTTOU was ignored before the worker was */
	int watch_fd;           /* the worker's end of the deadline pipe */
};

/* Forks once.  The parent becomes the guardian and never returns: it
 * passes the signals in forward on to the worker, waits for it, SIGKILLs
 * and reaps whatever descendants it left, and exits with its status
 * (128 + N when signal N killed it).  The child, the worker, returns 0
 * with g filled in: a child subreaper in a process group of its own (so
 * that a signal to the caller's group reaches it once, through the
 * guardian), ignoring SIGTTOU (a background group writing to a terminal),
 * and with forward, SIGCHLD and g->sig blocked: it must watch for g->sig
 * (sigtimedwait, signalfd) and then ask sw_guard_lost.  old, when not
 * NULL, gets the signal mask from before.  -1 with errno when the fork or
 * the worker's setup fails (the latter in the worker). */
int sw_guard_start(struct sw_guard *g, const sigset_t *forward, sigset_t *old);
/* In the worker: whether the guardian has died (g->sig can also come from
 * a plain kill). */
bool sw_guard_lost(const struct sw_guard *g);
/* Adds to set the signals the worker changed that a command it starts
 * must get back as they were (posix_spawnattr_setsigdefault). */
void sw_guard_sigdefault(const struct sw_guard *g, sigset_t *set);
/* In the worker: has the guardian SIGKILL every descendant of the worker
 * (its command's trees) at mono_ns by CLOCK_MONOTONIC unless a later call
 * moves it on first; 0 disarms.  The guardian touches no file, so the
 * tree dies on time even while the worker hangs (a stalled filesystem, a
 * SIGSTOP).  A failed write (the pipe holds thousands; it fills only
 * once the guardian is gone) leaves the last deadline, which only kills
 * sooner.  It never raises SIGPIPE: the worker holds the read end too. */
void sw_guard_watch(const struct sw_guard *g, int64_t mono_ns);
/* In a worker that waits with poll(2): blocks SIGCHLD, SIGINT, SIGTERM
 * and g->sig, and returns a signalfd for them (close-on-exec,
 * non-blocking); SIGHUP and SIGPIPE are ignored.  -1 with errno. */
int sw_guard_signalfd(const struct sw_guard *g);

/* ---- processes -------------------------------------------------------- */

struct sw_proc {
	pid_t pid, ppid, pgid;
	pid_t top;              /* the child of ours it descends from (itself for a child) */
	char state;             /* as in /proc/PID/stat: 'Z' is a zombie */
};

/* One process as /proc/PID/stat shows it (top left 0).  -1 with errno
 * (ENOENT: it is gone). */
int sw_proc_stat(pid_t pid, struct sw_proc *p);
/* Every living descendant of this process, from a walk of /proc: a
 * snapshot (a process forked during the walk is seen by the next one).
 * A malloc'd array in *out (NULL when *n is 0); -1 with errno. */
int sw_proc_descendants(struct sw_proc **out, size_t *n);
/* Our children (from /proc/self/task/TID/children, else a walk of /proc):
 * a malloc'd array in *out (NULL when *n is 0); -1 with errno. */
int sw_proc_children(pid_t **out, size_t *n);
/* The values of the n variables names (n at most 8) in process pid's
 * environment, each into vals[k] (cap bytes; "" when absent or longer):
 * how many were found, or -1 with errno. */
int sw_proc_environ_get(pid_t pid, size_t n, const char *const names[], char *vals[], size_t cap);
/* Sends sig to each of the n procs that is not in process group pgid
 * (0: to all), for a caller that has signalled that group as a whole
 * already: no process gets it twice. */
void sw_proc_kill(pid_t pgid, const struct sw_proc *procs, size_t n, int sig);
#endif
