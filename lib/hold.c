/* hold.c — a command's tree run under a renewable grant; see hold.h.
 *
 * The tree is the command's process group plus every process reparented
 * to this one (a child subreaper: proc.h): everything that is still our
 * child.  The grant is held, and renewed, until none of it is left, and
 * between two runs of the command. */
#include "hold.h"
#include "clock.h"
#include "fs.h"
#include "proc.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define KILL_LEAD_NS (200 * 1000000)   /* SIGKILL at most this long before expiry */
/* A takeover request is looked for every second (a read, no write), not
 * only at renewals, so that a takeover takes seconds whatever the TTL. */
#define LOOK_NS SW_NS_PER_SEC

struct tree {
	const struct sw_hold *h;
	const struct sw_guard *g;
	pid_t pid;                    /* the command, leader of its process group */
	bool exited;                  /* reaped; status says how it ended */
	int status;
	bool group_gone;              /* its group is empty: its id may be reused */
	int64_t ttl_ns, expires_ns;   /* the grant; ttl 0: none to renew */
	int64_t next_renew;           /* monotonic */
	int64_t timeout_at;           /* monotonic; 0: none */
	bool lost, timed_out;
	bool held_late;               /* lost, though the late renewal succeeded */
	bool failing;                 /* the last renewal failed (and may again) */
	bool stopping;                /* the tree has been told to stop */
	bool killing;                 /* SIGKILL sent, and sent again to what is left */
	int64_t kill_at;              /* monotonic: SIGKILL due; 0: none */
	bool said_waiting;
	bool orphaned;                /* the guardian was killed */
	bool idle;                    /* between two runs: no tree */
	bool yielding;                /* asked for: stop, then give it up */
	int stop_sig;                 /* the SIGTERM or SIGINT that ends the runs */
	int64_t next_look;            /* monotonic: look for a request (h->look) */
	int64_t watch_at;             /* monotonic: the guardian's deadline; 0: none */
	struct sw_err wait_err;       /* code not 0: waiting failed, the runs given up */
	int env_err;                  /* setting h->env failed: no run can start */
	struct io *io;                /* renewals and looks; NULL: no grant */
	int64_t asked_was;            /* watch_at when the renewal in flight was asked */
};

/* ---- renewals and looks, apart from the watch ------------------------- */
/* A renewal or a look touches the workspace, which may hang (a hung
 * network filesystem).  The thread that waits for signals and kills the
 * tree must not hang with it: stuck in a renewal when the guardian is
 * SIGKILLed, it would kill the tree only once the call returned, perhaps
 * after the grant expired.  So they run in a thread of their own, one at
 * a time, and its answer comes back as IO_SIG; meanwhile the deadlines
 * stand as if the call were still going on (it is). */
#define IO_SIG (SIGRTMIN + 3)
#define IO_POLL_NS (100 * 1000000)

enum io_kind { IO_NONE, IO_RENEW, IO_LOOK, IO_QUIT };

struct io {
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* a request for the thread, an answer for us */
	pthread_t th, main;
	const struct sw_hold *h;
	enum io_kind want;            /* the request not yet taken */
	enum io_kind busy;            /* the request not yet answered (ours to read) */
	bool answered;
	int64_t ttl_ns, expires_ns;   /* renew's input; its answer */
	int rc;
	struct sw_err err;
};

static void *io_main(void *arg)
{
	struct io *io = arg;
	/* a umask of its own: spawn sets the user's for a moment, and files
	 * this thread creates meanwhile must get the workspace's (paths go
	 * through directory descriptors: the working directory is not used).
	 * It cannot fail but for want of memory, and then the moment stays. */
	(void)unshare(CLONE_FS);
	pthread_mutex_lock(&io->mu);
	for (;;) {
		while (io->want == IO_NONE)
			pthread_cond_wait(&io->cv, &io->mu);
		enum io_kind k = io->want;
		if (k == IO_QUIT)
			break;
		io->want = IO_NONE;
		int64_t ttl = io->ttl_ns, exp = io->expires_ns;
		pthread_mutex_unlock(&io->mu);
		struct sw_err err = { 0 };
		int rc = k == IO_RENEW ? io->h->renew(io->h->arg, ttl, &exp, &err)
				       : io->h->look(io->h->arg, &err);
		pthread_mutex_lock(&io->mu);
		io->rc = rc;
		io->expires_ns = exp;
		io->err = err;
		io->answered = true;
		pthread_cond_broadcast(&io->cv);
		(void)pthread_kill(io->main, IO_SIG);   /* wakes step's sigtimedwait */
	}
	pthread_mutex_unlock(&io->mu);
	return NULL;
}

/* The thread, with every signal blocked (they are the main thread's to
 * take); IO_SIG is blocked here, waited for by step.  An errno value. */
static int io_start(struct io *io, const struct sw_hold *h)
{
	*io = (struct io){ .h = h, .main = pthread_self() };
	sigset_t all, was, one;
	sigfillset(&all);
	sigemptyset(&one);
	sigaddset(&one, IO_SIG);
	int rc = pthread_sigmask(SIG_BLOCK, &one, NULL);
	if (rc)
		return rc;
	if ((rc = pthread_mutex_init(&io->mu, NULL)))
		return rc;
	if ((rc = pthread_cond_init(&io->cv, NULL))) {
		pthread_mutex_destroy(&io->mu);
		return rc;
	}
	(void)pthread_sigmask(SIG_BLOCK, &all, &was);
	rc = pthread_create(&io->th, NULL, io_main, io);
	(void)pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (rc) {
		pthread_cond_destroy(&io->cv);
		pthread_mutex_destroy(&io->mu);
	}
	return rc;
}

/* Asks the thread for a renewal (ttl, the expiry known) or a look. */
static void io_ask(struct io *io, enum io_kind k, int64_t ttl_ns, int64_t expires_ns)
{
	pthread_mutex_lock(&io->mu);
	io->want = io->busy = k;
	io->answered = false;
	io->ttl_ns = ttl_ns;
	io->expires_ns = expires_ns;
	pthread_cond_broadcast(&io->cv);
	pthread_mutex_unlock(&io->mu);
}

/* The answer, if it has come (wait: until it does): what was asked, or
 * IO_NONE. */
static enum io_kind io_take(struct io *io, bool wait, int *rc, int64_t *exp, struct sw_err *err)
{
	enum io_kind k = IO_NONE;
	pthread_mutex_lock(&io->mu);
	while (wait && io->busy && !io->answered)
		pthread_cond_wait(&io->cv, &io->mu);
	if (io->busy && io->answered) {
		k = io->busy;
		*rc = io->rc;
		*exp = io->expires_ns;
		*err = io->err;
		io->busy = IO_NONE;
	}
	pthread_mutex_unlock(&io->mu);
	return k;
}

static bool io_busy(struct io *io)
{
	if (!io)
		return false;
	pthread_mutex_lock(&io->mu);
	bool b = io->busy != IO_NONE;
	pthread_mutex_unlock(&io->mu);
	return b;
}

/* Ends the thread once it has nothing in flight. */
static void io_end(struct io *io)
{
	pthread_mutex_lock(&io->mu);
	io->want = IO_QUIT;
	pthread_cond_broadcast(&io->cv);
	pthread_mutex_unlock(&io->mu);
	(void)pthread_join(io->th, NULL);
	pthread_cond_destroy(&io->cv);
	pthread_mutex_destroy(&io->mu);
}

/* The signals passed on to the command (through the guardian). */
static void forward_sigset(sigset_t *set)
{
	sigemptyset(set);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(set, sigs[i]);
}

/* The command, in a process group of its own, with the signal mask we
 * were started with and our environment (h->env set in it by
 * sw_hold_run).  posix_spawn, not fork: the guardian took the one fork a
 * run may cost.  0, or an errno value. */
static int spawn(const struct sw_hold *h, const sigset_t *mask, const struct sw_guard *g, pid_t *pid)
{
	posix_spawnattr_t at;
	sigset_t dfl;
	sigemptyset(&dfl);
	if (g)
		sw_guard_sigdefault(g, &dfl);
	int rc = posix_spawnattr_init(&at);
	if (rc)
		return rc;
	if (!(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						 POSIX_SPAWN_SETPGROUP)) &&
	    !(rc = posix_spawnattr_setsigmask(&at, mask)) &&
	    !(rc = posix_spawnattr_setsigdefault(&at, &dfl)) &&
	    !(rc = posix_spawnattr_setpgroup(&at, 0))) {
		/* the command gets the user's umask, not the workspace's */
		mode_t ours = umask(h->umask);
		rc = posix_spawnp(pid, h->cmd[0], NULL, &at, h->cmd, environ);
		umask(ours);
	}
	posix_spawnattr_destroy(&at);
	return rc;
}

/* Sends sig to the whole tree: the command's group while it has members
 * (first: the /proc walk takes a while), then every descendant outside
 * it, which the walk finds even in a session of its own whose leader is
 * not our child yet.  A stopped process is woken to act on anything but
 * SIGKILL. */
static void tree_signal(struct tree *r, int sig)
{
	if (r->idle)
		return;   /* nothing runs; the old group's id may be another's now */
	if (r->exited && !r->group_gone && kill(-r->pid, 0) < 0 && errno == ESRCH)
		r->group_gone = true;
	pid_t pgid = r->group_gone ? 0 : r->pid;
	if (pgid)
		(void)kill(-pgid, sig);   /* ESRCH: the group is empty; the rest is found below */
	struct sw_proc *ps = NULL;
	size_t n = 0;
	if (sw_proc_descendants(&ps, &n) < 0)
		sw_warn("listing the command's processes: %s", strerror(errno));
	sw_proc_kill(pgid, ps, n, sig);
	if (sig != SIGKILL) {
		if (pgid)
			(void)kill(-pgid, SIGCONT);
		sw_proc_kill(pgid, ps, n, SIGCONT);
	}
	free(ps);
}

/* Tells the tree to stop with sig, and SIGKILLs it within ns. */
static void tree_stop(struct tree *r, int sig, int64_t ns)
{
	if (!r->stopping) {
		r->stopping = true;
		tree_signal(r, sig);
	}
	int64_t at = sw_mono_ns() + ns;
	if (!r->kill_at || at < r->kill_at)
		r->kill_at = at;
}

static void tree_kill(struct tree *r)
{
	r->stopping = r->killing = true;
	tree_signal(r, SIGKILL);
}

/* How long before the grant expires a command whose renewals keep
 * failing is sent SIGTERM: the grace, at most a third of the TTL; its
 * SIGKILL then comes at the expiry, before anyone else may take it. */
static int64_t stop_window(const struct tree *r)
{
	return r->h->grace_ns < r->ttl_ns / 3 ? r->h->grace_ns : r->ttl_ns / 3;
}

/* The time by this host's clock when the command must be stopped. */
static int64_t stop_by(const struct tree *r)
{
	return r->failing ? r->expires_ns - stop_window(r) : r->expires_ns;
}

/* How long before the expiry the tree is SIGKILLed: time for the walk of
 * /proc and the scheduler. */
static int64_t kill_lead(const struct tree *r)
{
	return r->ttl_ns / 10 < KILL_LEAD_NS ? r->ttl_ns / 10 : KILL_LEAD_NS;
}

/* Tells the guardian when to kill the tree should this process not get
 * there first (it hangs, say in a renewal on a stalled filesystem, or is
 * stopped): at the point where a loss would have it killed, the lead
 * before the expiry by this host's clock.  Another host takes the grant
 * only SW_CLOCK_SKEW after the expiry by its own clock, which is no
 * sooner than the expiry by ours.  The expiry is turned into monotonic
 * time now, as next_timeout does. */
static void watch(struct tree *r)
{
	if (!r->g)
		return;      /* no guardian, no grant */
	r->watch_at = r->ttl_ns ? sw_mono_ns() + (r->expires_ns - kill_lead(r) - sw_now_ns()) : 0;
	if (r->ttl_ns && r->watch_at <= 0)
		r->watch_at = 1;     /* long past, not "none" */
	sw_guard_watch(r->g, r->watch_at);
}

/* The grant is gone or going: the tree is dead by its expiry (SIGKILL a
 * little before it, for the walk of /proc and the scheduler), and at once
 * when that has passed (this process was stopped or stalled: another
 * holder may be running already). */
static void lose(struct tree *r, const char *why)
{
	sw_warn("%s lost (%s); stopping the command", r->h->what, why);
	r->lost = true;
	int64_t left = r->expires_ns - kill_lead(r) - sw_now_ns();
	if (left <= 0) {
		tree_kill(r);
		return;
	}
	int64_t w = r->failing ? stop_window(r) : r->h->grace_ns;
	tree_stop(r, SIGTERM, w < left ? w : left);
}

/* Another asks for the grant: the tree is stopped as for SIGTERM,
 * SIGKILLed after the grace period (at most a TTL, which the asker's wait
 * allows for), and the grant, renewed meanwhile, is given back by the
 * caller once nothing of the tree is left: the asker's command never runs
 * beside ours. */
static void yield(struct tree *r, const char *who)
{
	if (r->yielding)
		return;
	r->yielding = true;
	if (!r->h->quiet)
		sw_warn("%s; stopping the command and giving it up", who);
	tree_stop(r, SIGTERM, r->h->grace_ns < r->ttl_ns ? r->h->grace_ns : r->ttl_ns);
}

static void look_tick(struct tree *r)
{
	r->next_look = sw_mono_ns() + (r->ttl_ns / 3 < LOOK_NS ? r->ttl_ns / 3 : LOOK_NS);
	io_ask(r->io, IO_LOOK, 0, 0);
}

static void look_done(struct tree *r, int rc, const struct sw_err *err)
{
	/* a grant lost or unreadable is the renewal's to find */
	if (rc == SW_HOLD_YIELD && !r->lost)
		yield(r, err->msg);
}

/* One renewal at TTL/3, asked of the thread; renew_done takes its
 * answer. */
static void renew_tick(struct tree *r)
{
	r->asked_was = r->watch_at;
	io_ask(r->io, IO_RENEW, r->ttl_ns, r->expires_ns);
}

/* Failing for a reason other than "lost" (an I/O error, a busy
 * filesystem) is retried until stop_by(); then the command is stopped,
 * dead by the time the grant expires. */
static void renew_done(struct tree *r, int rc, int64_t exp, const struct sw_err *err)
{
	int64_t was = r->asked_was;
	bool renewed = rc == 0 || rc == SW_HOLD_YIELD;
	if (r->lost || !r->ttl_ns) {
		/* lost while it was going on (the deadlines passed): renewed, the
		 * grant is still ours to give back once the tree is gone */
		r->held_late |= r->lost && renewed;
		return;
	}
	if (renewed) {
		r->expires_ns = exp;
		watch(r);
	}
	/* checked after the new deadline is sent: before the old one, the
	 * guardian has it when it looks */
	if (was && sw_mono_ns() >= was) {
		/* too late, however it went: the guardian may have killed the tree;
		 * renewed, the grant is still ours to give back once it is gone */
		r->held_late = renewed;
		lose(r, "renewing it took until it was about to expire");
		return;
	}
	if (renewed) {
		r->next_renew = sw_mono_ns() + r->ttl_ns / 3;
		r->failing = false;
		if (rc == SW_HOLD_YIELD)
			yield(r, err->msg);
		return;
	}
	if (rc == SW_HOLD_DONE) {
		r->ttl_ns = 0;
		watch(r);
		return;
	}
	if (rc == SW_EX_FALSE) {
		lose(r, err->msg);
		return;
	}
	r->failing = true;
	if (sw_now_ns() >= stop_by(r)) {
		lose(r, err->msg);
		return;
	}
	sw_warn("renewing %s (will retry): %s", r->h->what, err->msg);
	int64_t retry = r->ttl_ns / 10;
	r->next_renew = sw_mono_ns() + (retry > SW_NS_PER_SEC ? SW_NS_PER_SEC : retry);
}

/* The runs are over and the tree is gone: waits for the answer to a
 * renewal or look still going on; a renewal's decides only whether the
 * grant is still ours to give back (nothing is left to stop). */
static void io_settle(struct tree *r)
{
	int rc;
	int64_t exp;
	struct sw_err err;
	if (io_take(r->io, true, &rc, &exp, &err) != IO_RENEW)
		return;
	if (rc == SW_EX_FALSE && !r->lost) {
		/* another's now (it expired while the command ran): not ours
		 * to give back, and the command's status not its own to report */
		sw_warn("%s lost (%s)", r->h->what, err.msg);
		r->lost = true;
	} else if (r->lost && (rc == 0 || rc == SW_HOLD_YIELD)) {
		r->held_late = true;
	}
}

/* The thread's answer, if it has come (wait: until it does). */
static void io_answer(struct tree *r, bool wait)
{
	int rc;
	int64_t exp;
	struct sw_err err;
	enum io_kind k = r->io ? io_take(r->io, wait, &rc, &exp, &err) : IO_NONE;
	if (k == IO_RENEW)
		renew_done(r, rc, exp, &err);
	else if (k == IO_LOOK)
		look_done(r, rc, &err);
}

/* Reaps what has exited; true when nothing of the tree is left. */
static bool reap(struct tree *r)
{
	int st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
		if (w == r->pid && !r->exited) {
			r->exited = true;
			r->status = st;
		}
	}
	if (w < 0 && errno == ECHILD)
		return true;
	/* cannot happen (the options are right, ECHILD and EINTR handled);
	 * should it, no more can be waited for: the caller says why */
	if (w < 0 && errno != EINTR)
		sw_err_set(&r->wait_err, EX_OSERR, "waiting for %s: %s", r->h->cmd[0], strerror(errno));
	return r->wait_err.code != 0;
}

static void on_signal(struct tree *r, int sig)
{
	/* SIGCHLD and IO_SIG only wake us: wait_tree reaps, and timers,
	 * which step runs after every signal, takes the thread's answer */
	if (sig == SIGCHLD || sig == IO_SIG)
		return;
	if (r->g && sig == r->g->sig) {
		if (!sw_guard_lost(r->g) || r->orphaned)
			return;
		/* the process the user started was SIGKILLed: whoever did it
		 * wants the command gone, and nothing passes signals on now */
		sw_warn("process %ld was killed; killing the command", (long)r->g->guardian);
		r->orphaned = true;
		tree_kill(r);
		return;
	}
	if (sig == SIGTERM || sig == SIGINT) {
		if (!r->stop_sig)
			r->stop_sig = sig;    /* and no run after this one */
		if (!r->stopping) {
			tree_stop(r, sig, r->h->grace_ns);
			return;
		}
	}
	if (!r->exited && !r->idle)
		(void)kill(r->pid, sig);   /* the command decides what it means; ESRCH: just exited */
}

/* Until the next thing to do: a renewal, the stop deadline, the timeout,
 * a SIGKILL, or (while killing) a look for processes that appeared
 * meanwhile. */
static struct timespec next_timeout(const struct tree *r)
{
	int64_t now = sw_mono_ns(), until = INT64_MAX;
	if (r->killing)
		until = now + 50000000;
	else if (r->kill_at)
		until = r->kill_at;
	if (r->timeout_at && !r->timed_out && !r->stopping && r->timeout_at < until)
		until = r->timeout_at;
	if (!r->lost && r->ttl_ns) {
		int64_t exp = now + (stop_by(r) - sw_now_ns());
		/* one in flight: its answer wakes us (IO_SIG), or is found by a
		 * look every IO_POLL_NS should that signal be lost */
		bool idle = !io_busy(r->io);
		if (idle && r->next_renew < until)
			until = r->next_renew;
		if (!idle && now + IO_POLL_NS < until)
			until = now + IO_POLL_NS;
		if (exp < until)
			until = exp;
		if (r->watch_at && r->watch_at < until)
			until = r->watch_at;     /* the guardian kills the tree then */
		if (idle && r->h->look && !r->yielding && r->next_look < until)
			until = r->next_look;
	}
	int64_t d = until - now < 0 ? 0 : until - now;
	return (struct timespec){ d / SW_NS_PER_SEC, d % SW_NS_PER_SEC };
}

static void timers(struct tree *r)
{
	/* an answer whose IO_SIG could not be queued (RLIMIT_SIGPENDING) is
	 * taken here all the same: IO_SIG only wakes us sooner */
	io_answer(r, false);
	if (!r->lost && r->ttl_ns) {
		/* checked first: after a stall the renewal is pointless */
		if (sw_now_ns() >= r->expires_ns)
			lose(r, "it expired before it could be renewed: was this process stopped?");
		else if (sw_now_ns() >= stop_by(r))
			lose(r, "it would expire before a renewal succeeded");
		else if (r->watch_at && sw_mono_ns() >= r->watch_at)
			lose(r, "it was about to expire before it could be renewed");
		else if (io_busy(r->io))
			;   /* a renewal or look is going on: the deadlines above stand */
		else if (sw_mono_ns() >= r->next_renew)
			renew_tick(r);
		else if (r->h->look && !r->yielding && sw_mono_ns() >= r->next_look)
			look_tick(r);
	}
	/* the whole tree's time: what the command left behind counts too */
	if (r->timeout_at && !r->timed_out && !r->stopping && sw_mono_ns() >= r->timeout_at) {
		sw_warn("%s timed out; stopping it", r->h->cmd[0]);
		r->timed_out = true;
		tree_stop(r, SIGTERM, r->h->grace_ns);
	}
	if (r->kill_at && !r->killing && sw_mono_ns() >= r->kill_at)
		tree_kill(r);
}

/* Waits for a signal until ts, acts on it and on what falls due. */
static void step(struct tree *r, struct timespec ts)
{
	sigset_t set;
	forward_sigset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, IO_SIG);
	if (r->g)
		sigaddset(&set, r->g->sig);
	int sig = sigtimedwait(&set, NULL, &ts);
	if (sig > 0)
		on_signal(r, sig);
	else if (errno != EAGAIN && errno != EINTR)   /* cannot happen, as in reap */
		sw_err_set(&r->wait_err, EX_OSERR, "sigtimedwait: %s", strerror(errno));
	timers(r);
}

/* The tree is gone.  Should the grant's deadline have passed meanwhile
 * (this process was stopped, say in a look for a takeover, and went on
 * to reap the tree before its timers ran), the guardian may have
 * SIGKILLed the command and another may hold the grant: the status is
 * not the command's own to report, and the grant is lost. */
static void check_held(struct tree *r)
{
	if (r->lost || !r->ttl_ns)
		return;
	if (sw_now_ns() >= r->expires_ns || (r->watch_at && sw_mono_ns() >= r->watch_at))
		lose(r, "it was about to expire before it could be renewed: was this process stopped?");
}

/* Waits until nothing of the tree is left, renewing the grant meanwhile. */
static void wait_tree(struct tree *r)
{
	while (!reap(r)) {
		if (r->killing)
			tree_signal(r, SIGKILL);    /* what was reparented or forked since */
		else if (r->exited && !r->stopping && !r->said_waiting) {
			if (r->ttl_ns)
				sw_warn("%s has exited; holding %s until the processes it left behind exit",
					r->h->cmd[0], r->h->what);
			else
				sw_warn("%s has exited; waiting for the processes it left behind",
					r->h->cmd[0]);
			r->said_waiting = true;
		}
		step(r, next_timeout(r));
	}
	check_held(r);
}

/* Whether no run is to follow: the grant lost or asked for, a SIGTERM or
 * SIGINT, the guardian killed, waiting failed. */
static bool runs_over(const struct tree *r)
{
	return r->lost || r->yielding || r->stop_sig || r->orphaned || r->wait_err.code;
}

/* Between two runs: holds and renews the grant for ns, or until no run
 * is to follow. */
static void pause_renewing(struct tree *r, int64_t ns)
{
	int64_t until = sw_mono_ns() + ns;
	r->idle = true;
	while (!runs_over(r) && sw_mono_ns() < until) {
		struct timespec ts = next_timeout(r);
		int64_t left = until - sw_mono_ns();
		if (left < 0)
			left = 0;
		if ((int64_t)ts.tv_sec * SW_NS_PER_SEC + ts.tv_nsec > left)
			ts = (struct timespec){ left / SW_NS_PER_SEC, left % SW_NS_PER_SEC };
		step(r, ts);
	}
}

/* One run: the command started, and waited for until nothing of its
 * tree is left.  Its status as a shell has it, or 127/126 with
 * res->spawn_errno when it could not be started. */
static int run_once(struct tree *r, const sigset_t *old, struct sw_hold_result *res)
{
	r->idle = r->exited = r->group_gone = r->stopping = r->killing = r->said_waiting = false;
	r->timed_out = false;
	r->kill_at = 0;
	r->timeout_at = r->h->timeout_ns ? sw_mono_ns() + r->h->timeout_ns : 0;
	int e = r->env_err ? r->env_err : spawn(r->h, old, r->g, &r->pid);
	if (e) {
		sw_warn("cannot run %s: %s", r->h->cmd[0], strerror(e));
		res->spawn_errno = e;
		return e == ENOENT ? 127 : 126;
	}
	res->runs++;
	wait_tree(r);
	int st = r->status;
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EX_SOFTWARE;
}

/* Without a guardian, what sw_guard_start does for its worker: the
 * signals to pass on and SIGCHLD blocked (waited for with sigtimedwait),
 * and a child subreaper, so that the tree's orphans stay ours. */
static int solo_start(const sigset_t *forward, sigset_t *old)
{
	sigset_t block = *forward;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	if (sigaddset(&block, SIGCHLD) < 0 || sigprocmask(SIG_BLOCK, &block, old) < 0 ||
	    /* waitpid must see our children even if our parent ignored SIGCHLD */
	    sigaction(SIGCHLD, &dfl, NULL) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return -1;
	return 0;
}

int sw_hold_run(struct sw_hold *h, struct sw_hold_result *res)
{
	sigset_t fwd, old;
	forward_sigset(&fwd);
	struct sw_guard g;
	memset(res, 0, sizeof *res);
	if (h->no_guardian ? solo_start(&fwd, &old) < 0 : sw_guard_start(&g, &fwd, &old) < 0)
		return -1;
	/* from here on this is the worker; the guardian passes our exit on */
	struct tree r = { .h = h, .g = h->no_guardian ? NULL : &g, .ttl_ns = h->ttl_ns,
			  .expires_ns = h->expires_ns };
	/* set once, before the thread reads the environment (sw_now_ns) */
	for (const char *const *e = h->env; e && e[0] && !r.env_err; e += 2)
		if (setenv(e[0], e[1], 1) < 0)
			r.env_err = errno;
	struct io io;
	if (h->ttl_ns) {
		int e = io_start(&io, h);
		if (e) {
			errno = e;
			return -1;
		}
		r.io = &io;
	}
	r.next_renew = sw_mono_ns() + h->ttl_ns / 3;
	r.next_look = sw_mono_ns();
	watch(&r);
	for (;;) {
		res->status = run_once(&r, &old, res);
		if (res->spawn_errno || runs_over(&r) || !h->again)
			break;
		int64_t d = h->again(h->arg, res->status);
		if (d < 0)
			break;
		pause_renewing(&r, d);
		if (runs_over(&r)) {
			if (r.stop_sig)
				res->status = 128 + r.stop_sig;   /* stopped between runs */
			break;
		}
	}
	/* the runs are over and the tree is gone: what follows (the answer to
	 * a call still going on, a release) may take its time */
	if (r.g)
		sw_guard_watch(r.g, 0);
	if (r.io) {
		io_settle(&r);
		io_end(r.io);
	}
	res->lost = r.lost;
	res->held_late = r.held_late;
	res->timed_out = r.timed_out;
	res->yielded = r.yielding;
	res->wait_err = r.wait_err;
	return 0;
}
