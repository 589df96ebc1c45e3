/* proc.c — process trees: the guardian, /proc walks, attribution by
 * environment.  See proc.h for what the tree of a command is. */
#include "proc.h"
#include "clock.h"
#include "fs.h"
#include "err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- /proc ---------------------------------------------------------- */

/* procfd: an open /proc, or AT_FDCWD. */
static int stat_at(int procfd, pid_t pid, struct sw_proc *p)
{
	char path[40], buf[1024];
	snprintf(path, sizeof path, procfd == AT_FDCWD ? "/proc/%ld/stat" : "%ld/stat", (long)pid);
	int fd = SW_NOINTR(openat(procfd, path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	int e = errno;
	close(fd);
	if (r <= 0) {
		errno = r < 0 ? e : ENOENT;
		return -1;
	}
	buf[r] = 0;
	/* the name in parentheses may hold anything, ')' included: the last
	 * ')' ends it, numbers follow */
	const char *c = strrchr(buf, ')');
	long ppid, pgid;
	char state;
	if (!c || sscanf(c + 1, " %c %ld %ld", &state, &ppid, &pgid) != 3) {
		errno = EINVAL;
		return -1;
	}
	*p = (struct sw_proc){ .pid = pid, .ppid = (pid_t)ppid, .pgid = (pid_t)pgid, .state = state };
	return 0;
}

int sw_proc_stat(pid_t pid, struct sw_proc *p)
{
	return stat_at(AT_FDCWD, pid, p);
}

/* Every process /proc lists now. */
static int proc_all(struct sw_proc **out, size_t *n)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	size_t cap = 512, k = 0;
	struct sw_proc *v = malloc(cap * sizeof *v);
	if (!v) {
		closedir(d);
		errno = ENOMEM;
		return -1;
	}
	struct dirent *e;
	while ((e = sw_readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (k == cap) {
			struct sw_proc *w = realloc(v, 2 * cap * sizeof *v);
			if (!w) {
				free(v);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			v = w;
			cap *= 2;
		}
		if (stat_at(dirfd(d), (pid_t)pid, &v[k]) == 0)
			k++;        /* else it has just exited */
	}
	closedir(d);
	*out = v;
	*n = k;
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct sw_proc *)a)->pid, y = ((const struct sw_proc *)b)->pid;
	return x < y ? -1 : x > y;
}

static const struct sw_proc *find(const struct sw_proc *v, size_t n, pid_t pid)
{
	struct sw_proc key = { .pid = pid };
	return bsearch(&key, v, n, sizeof *v, by_pid);
}

/* Sets each process's top: the child of self it descends from, or 0.
 * Each chain up is walked once; a walk longer than n is a loop that a
 * racy snapshot made up, and counts as not ours. */
static int set_tops(struct sw_proc *v, size_t n, pid_t self)
{
	size_t *chain = malloc((n + 1) * sizeof *chain);
	if (!chain) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		v[i].top = -1;          /* not known yet */
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		pid_t top = 0;
		const struct sw_proc *p = &v[i];
		while (p && p->top == -1 && p->pid != self && len < n) {
			chain[len++] = (size_t)(p - v);
			if (p->ppid == self) {
				top = p->pid;
				p = NULL;
				break;
			}
			p = find(v, n, p->ppid);
		}
		if (p && p->top > 0)
			top = p->top;
		for (size_t c = 0; c < len; c++)
			v[chain[c]].top = top;
	}
	free(chain);
	return 0;
}

int sw_proc_descendants(struct sw_proc **out, size_t *n)
{
	struct sw_proc *v;
	size_t all;
	if (proc_all(&v, &all) < 0)
		return -1;
	qsort(v, all, sizeof *v, by_pid);
	if (set_tops(v, all, getpid()) < 0) {
		free(v);
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < all; i++)
		if (v[i].top > 0)
			v[k++] = v[i];
	if (!k) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = k;
	return 0;
}

int sw_proc_children(pid_t **out, size_t *n)
{
	char path[64], buf[65536];
	snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)gettid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return -1;
	if (fd < 0) {
		/* a kernel without CONFIG_PROC_CHILDREN: walk /proc instead */
		struct sw_proc *v;
		size_t k = 0;
		if (sw_proc_descendants(&v, n) < 0)
			return -1;
		pid_t *p = *n ? malloc(*n * sizeof *p) : NULL;
		if (*n && !p) {
			free(v);
			errno = ENOMEM;
			return -1;
		}
		for (size_t i = 0; i < *n; i++)
			if (v[i].top == v[i].pid)
				p[k++] = v[i].pid;
		free(v);
		*out = p;
		*n = k;
		return 0;
	}
	size_t len = 0;
	ssize_t r;
	while (len < sizeof buf - 1 && ((r = read(fd, buf + len, sizeof buf - 1 - len)) > 0 ||
					(r < 0 && errno == EINTR)))
		len += r > 0 ? (size_t)r : 0;
	close(fd);
	buf[len] = 0;
	/* "pid pid pid ": at most one per two bytes */
	pid_t *p = malloc((len / 2 + 1) * sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	size_t k = 0;
	for (char *t = buf, *end; *t; t = end) {
		long pid = strtol(t, &end, 10);
		if (end == t)
			break;
		if (pid > 0)
			p[k++] = (pid_t)pid;
	}
	if (!k) {
		free(p);
		p = NULL;
	}
	*out = p;
	*n = k;
	return 0;
}

/* ---- environment --------------------------------------------------- */

struct env_want {
	size_t n, cap;
	const char *const *names;
	char **vals;
	unsigned found;
};

static void env_entry(const char *e, size_t len, struct env_want *w)
{
	for (size_t k = 0; k < w->n; k++) {
		size_t nl = strlen(w->names[k]);
		if (w->found & (1u << k) || len <= nl || e[nl] != '=' || memcmp(e, w->names[k], nl) ||
		    len - nl - 1 >= w->cap)
			continue;
		memcpy(w->vals[k], e + nl + 1, len - nl - 1);
		w->vals[k][len - nl - 1] = 0;
		w->found |= 1u << k;   /* the first one counts, as for getenv */
	}
}

/* Read in pieces, since an environment can be megabytes: an entry longer
 * than any wanted one can be is skipped, not kept. */
static int env_scan(int fd, struct env_want *w, size_t longest)
{
	char buf[65536];
	size_t have = 0;            /* bytes of an unfinished entry at buf's start */
	bool skip = false;          /* the unfinished entry is too long to be wanted */
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof buf - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		size_t end = have + (size_t)r, start = 0;
		for (size_t i = have; i < end; i++) {
			if (buf[i])
				continue;
			if (!skip)
				env_entry(buf + start, i - start, w);
			skip = false;
			start = i + 1;
		}
		if (end - start > longest) {
			skip = true;
			have = 0;
		} else {
			memmove(buf, buf + start, end - start);
			have = end - start;
		}
	}
	if (have && !skip)
		env_entry(buf, have, w);
	return 0;
}

int sw_proc_environ_get(pid_t pid, size_t n, const char *const names[], char *vals[], size_t cap)
{
	size_t longest = 0;
	for (size_t k = 0; k < n; k++) {
		vals[k][0] = 0;
		if (strlen(names[k]) + 1 + cap > longest)
			longest = strlen(names[k]) + 1 + cap;
	}
	if (n > 8 || longest >= 65536) {
		errno = EINVAL;
		return -1;
	}
	char path[48];
	snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct env_want w = { .n = n, .cap = cap, .names = names, .vals = vals };
	int rc = env_scan(fd, &w, longest);
	int e = errno;
	close(fd);
	if (rc < 0) {
		errno = e;
		return -1;
	}
	return __builtin_popcount(w.found);
}

void sw_proc_kill(pid_t pgid, const struct sw_proc *procs, size_t n, int sig)
{
	/* a failure is ESRCH, nobody left to signal (or EPERM, a process
	 * that became another user's): nothing to do about either */
	for (size_t i = 0; i < n; i++)
		if (pgid <= 0 || procs[i].pgid != pgid)
			(void)kill(procs[i].pid, sig);
}

/* ---- the guardian ---------------------------------------------------- */

/* SIGKILLs every descendant and reaps them, until none is left.  Each
 * death may hand us the next generation of orphans, so look again after
 * each one; with none left at all (the usual case) /proc is not read. */
static void reap_all(void)
{
	int st;
	for (;;) {
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w > 0 || (w < 0 && errno == EINTR))
			continue;
		if (w < 0)
			return;     /* ECHILD: no child, so no descendant either */
		struct sw_proc *ps;
		size_t n;
		if (sw_proc_descendants(&ps, &n) == 0) {
			sw_proc_kill(0, ps, n, SIGKILL);
			free(ps);
		}
		if (waitpid(-1, &st, 0) < 0 && errno != EINTR)
			return;
	}
}

/* The newest deadline the worker sent (they come in order), or was. */
static int64_t read_deadline(int fd, int64_t was)
{
	int64_t d;
	while (read(fd, &d, sizeof d) == (ssize_t)sizeof d)
		was = d;
	return was;   /* EAGAIN: none more; EOF: the worker is exiting */
}

/* The worker's deadline passed: it is stalled (or its renewals hang) and
 * the grant may be another's soon.  SIGKILLs every descendant but the
 * worker, each group leader's whole group first, and walks again until
 * nothing of them is alive (a zombie waits for the stalled worker); at
 * most a second of walks, should one be stuck in the kernel. */
static void kill_trees(pid_t worker)
{
	for (int walk = 0; walk < 100; walk++) {
		struct sw_proc *ps;
		size_t n, live = 0;
		if (sw_proc_descendants(&ps, &n) < 0)
			return;
		for (size_t i = 0; i < n; i++) {
			if (ps[i].pid == worker || ps[i].state == 'Z')
				continue;
			live++;
			/* a leader still ours: its group id cannot be anyone else's */
			if (ps[i].pgid == ps[i].pid)
				(void)kill(-ps[i].pid, SIGKILL);
			(void)kill(ps[i].pid, SIGKILL);
		}
		free(ps);
		if (!live)
			return;
		struct timespec ts = { 0, 10000000 };
		(void)nanosleep(&ts, NULL);
	}
}

/* Until the deadline, or forever (NULL) when there is none. */
static struct timespec *until(int64_t deadline, struct timespec *ts)
{
	if (!deadline)
		return NULL;
	int64_t d = deadline - sw_mono_ns();
	if (d < 0)
		d = 0;
	*ts = (struct timespec){ d / 1000000000, d % 1000000000 };
	return ts;
}

/* A new deadline from the worker, or the time: kills the trees when the
 * newest deadline has passed.  Returns the deadline left (0: none). */
static int64_t watch_tick(pid_t worker, int watch_fd, int64_t deadline)
{
	deadline = read_deadline(watch_fd, deadline);
	if (!deadline || sw_mono_ns() < deadline)
		return deadline;
	sw_warn("process %ld has not renewed its grant in time (stalled?); killing its commands",
		(long)worker);
	kill_trees(worker);
	return 0;
}

static _Noreturn void guard(pid_t worker, const sigset_t *forward, int watch_fd, int watch_sig)
{
	/* a warning written to a closed stderr must not kill the guardian
	 * (these cannot fail with a valid signal) */
	struct sigaction ign = { .sa_handler = SIG_IGN };
	(void)sigaction(SIGPIPE, &ign, NULL);
	sigset_t wake = *forward;
	(void)sigaddset(&wake, SIGCHLD);
	(void)sigaddset(&wake, watch_sig);
	(void)sigaddset(&wake, SIGIO);   /* watch_sig's stand-in when the queue is full */
	int st = W_EXITCODE(EX_SOFTWARE, 0);
	int64_t deadline = 0;
	for (bool gone = false; !gone;) {
		struct timespec ts;
		int sig = sigtimedwait(&wake, NULL, until(deadline, &ts));
		if (sig == watch_sig || sig == SIGIO || (sig < 0 && errno == EAGAIN)) {
			deadline = watch_tick(worker, watch_fd, deadline);
			continue;
		}
		if (sig > 0 && sig != SIGCHLD) {
			(void)kill(worker, sig);   /* ESRCH: its SIGCHLD is on the way */
			continue;
		}
		pid_t w;
		int wst;
		while ((w = waitpid(-1, &wst, WNOHANG)) > 0 && w != worker)
			;           /* an orphan of the worker's tree, if any */
		if (w == worker)
			st = wst;
		gone = w == worker || (w < 0 && errno == ECHILD);
	}
	reap_all();
	if (WIFSIGNALED(st)) {
		sw_warn("process %ld was killed by signal %d; its commands were killed too",
			(long)worker, WTERMSIG(st));
		_exit(128 + WTERMSIG(st));
	}
	/* _exit: stdio and the span are the worker's to flush, not ours */
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE);
}

static int worker_setup(struct sw_guard *g)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, was;
	if (setpgid(0, 0) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ||
	    prctl(PR_SET_PDEATHSIG, g->sig) < 0 || sigaction(SIGTTOU, &ign, &was) < 0)
		return -1;
	g->ttou_ignored = was.sa_handler == SIG_IGN;
	/* a guardian that died before PR_SET_PDEATHSIG was set sent nothing:
	 * say it ourselves (blocked, so it waits for the caller's loop) */
	if (getppid() != g->guardian && kill(getpid(), g->sig) < 0)
		return -1;
	return 0;
}

int sw_guard_start(struct sw_guard *g, const sigset_t *forward, sigset_t *old)
{
	g->guardian = getpid();
	/* a real-time signal nobody else sends; a stray one is told apart by
	 * sw_guard_lost */
	g->sig = SIGRTMIN + 1;
	g->ttou_ignored = false;
	/* the worker's deadlines come through a pipe whose every write wakes
	 * the guardian with watch_sig */
	int watch_sig = SIGRTMIN + 2;
	sigset_t block = *forward;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	if (sigaddset(&block, SIGCHLD) < 0 || sigaddset(&block, g->sig) < 0 ||
	    sigaddset(&block, watch_sig) < 0 || sigaddset(&block, SIGIO) < 0 ||
	    sigprocmask(SIG_BLOCK, &block, old) < 0 ||
	    /* waitpid must see our children even if our parent ignored SIGCHLD */
	    sigaction(SIGCHLD, &dfl, NULL) < 0 ||
	    /* the worker's orphans come to the guardian once the worker is gone */
	    prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return -1;
	int watch[2];
	if (pipe2(watch, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	if (fcntl(watch[0], F_SETOWN, getpid()) < 0 || fcntl(watch[0], F_SETSIG, watch_sig) < 0 ||
	    fcntl(watch[0], F_SETFL, O_NONBLOCK | O_ASYNC) < 0) {
		int e = errno;
		close(watch[0]);
		close(watch[1]);
		errno = e;
		return -1;
	}
	/* what stdio holds now would be written twice; a failure to write it
	 * shows again when the worker flushes at exit */
	(void)fflush(stdout);
	(void)fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(watch[0]);
		close(watch[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		/* the worker keeps the read end too (never read; closed on
		 * exec): a write after the guardian died must not raise
		 * SIGPIPE, which would kill the worker before it kills the
		 * tree and gives the grant back */
		g->watch_fd = watch[1];
		return worker_setup(g);
	}
	close(watch[1]);
	/* here too, so that no signal to our group reaches the worker before
	 * its own setpgid; EACCES or ESRCH mean it is done or dead already */
	(void)setpgid(pid, pid);
	guard(pid, forward, watch[0], watch_sig);
}

bool sw_guard_lost(const struct sw_guard *g)
{
	return getppid() != g->guardian;
}

int sw_guard_signalfd(const struct sw_guard *g)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, g->sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -1;
	/* SIG_IGN on a valid signal cannot fail */
	(void)signal(SIGHUP, SIG_IGN);
	(void)signal(SIGPIPE, SIG_IGN);
	return fd;
}

void sw_guard_watch(const struct sw_guard *g, int64_t mono_ns)
{
	(void)!write(g->watch_fd, &mono_ns, sizeof mono_ns);
}

void sw_guard_sigdefault(const struct sw_guard *g, sigset_t *set)
{
	if (!g->ttou_ignored)
		(void)sigaddset(set, SIGTTOU);     /* cannot fail: a valid signal */
}
