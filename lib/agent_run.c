/* agent_run.c — the engine of `sw-agent run` (agent_run.h): the run's
 * state, renewals, heartbeats, stopping, and the loop that drives the job
 * slots (agent_slot.c), claims (agent_claim.c), the finish path with group
 * commit (agent_outcome.c) and the output (agent_out.c). */
#include "agent_run_int.h"
#include "agent.h"
#include "clock.h"
#include "owner.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define GROUP_MAX 64              /* finished items committed together at most */
#define GROUP_WAIT_NS (5 * INT64_C(1000000))   /* how long one waits for others */

/* The run cannot go on (out of memory, poll failing): the first reason
 * is kept, nothing more is claimed, and the loop ends at its next step,
 * so that the caller says it and exits as it would have at once. */
static void run_fail(struct run *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void run_fail(struct run *r, int code, const char *fmt, ...)
{
	if (r->fail.code)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->fail.msg, sizeof r->fail.msg, fmt, ap);
	va_end(ap);
	r->fail.code = code;
}

void run_out_of_memory(struct run *r) { run_fail(r, EX_SOFTWARE, "out of memory"); }

/* How often to look for work when nothing says so. */
static int64_t default_poll(struct run *r)
{
	return r->o->poll_ns > 0 ? r->o->poll_ns : sw_poll_interval(&r->q);
}

int run_free_slots(const struct run *r) { return r->o->jobs - r->running; }
/* Idle with room for work: one of those who wait for it. */
static bool waits(const struct run *r) { return r->empty && run_free_slots(r) > 0 && run_may_claim(r); }

bool run_may_claim(const struct run *r)
{
	if (r->draining || r->fail.code)
		return false;
	if (r->o->max_items && r->claimed >= r->o->max_items)
		return false;
	/* --once: one command, of one item or one batch */
	return !(r->o->once && (r->o->batch ? r->seq >= 1 : r->claimed >= 1));
}

/* ---- renewals, heartbeats, stopping --------------------------------- */

/* Renews the claims of the n items of b not lost yet, committed together:
 * how many are still held.  One found gone is marked lost: what the
 * command does with it counts for nothing.  *at: when to renew next. */
static size_t renew_items(struct run *r, struct bitem *b, size_t n, int64_t now, int64_t *at)
{
	struct sw_fin *f = calloc(n ? n : 1, sizeof *f);
	size_t *ix = calloc(n ? n : 1, sizeof *ix);
	if (!f || !ix) {
		free(f);
		free(ix);
		run_out_of_memory(r);
		*at = now + SW_NS_PER_SEC;
		return n;
	}
	size_t m = 0, held = 0;
	for (size_t i = 0; i < n; i++)
		if (!b[i].lost) {
			ix[m] = i;
			f[m++] = (struct sw_fin){ .id = b[i].id, .token = b[i].token, .ttl_ns = b[i].ttl_ns };
		}
	sw_queue_apply(&r->q, SW_FIN_RENEW, f, m);
	bool again = false;
	for (size_t k = 0; k < m; k++) {
		json_decref(f[k].out);
		if (f[k].rc == SW_EX_FALSE) {
			b[ix[k]].lost = true;
			r->claims_dirty = true;
		} else {
			held++;
			again |= f[k].rc != 0;   /* not now: try again soon */
		}
		if (f[k].rc)
			sw_warn("item %s: %s%s", f[k].id, f[k].err.msg,
				f[k].rc == SW_EX_FALSE && n == 1 ? "; stopping its command" : "");
	}
	*at = again ? now + SW_NS_PER_SEC : run_renew_time(b, n, now);
	free(f);
	free(ix);
	return held;
}

static void renew_due(struct run *r, int64_t now)
{
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (!run_holds_claim(s) || now < s->renew_at)
			continue;
		if (renew_items(r, s->b, s->nb, now, &s->renew_at) == 0) {
			/* every claim is gone: stop the command */
			if (s->nb > 1)
				sw_warn("every item of the batch of %s is lost; stopping its command", s->id);
			s->abandoned = "lost";
			run_stop_trees(r, &s, 1, now);
		}
	}
	if (r->gn && now >= r->gather_renew_at) {
		renew_items(r, r->gb, r->gn, now, &r->gather_renew_at);
		/* the gathered items that were lost leave the batch */
		size_t k = 0;
		for (size_t i = 0; i < r->gn; i++) {
			if (r->gb[i].lost) {
				json_decref(r->gb[i].item);
				r->claimed--;
			} else {
				r->gb[k++] = r->gb[i];
			}
		}
		r->gn = k;
	}
}

/* Gives back the items gathered for a batch that is not going to start
 * (the agent is stopping). */
static void drop_gather(struct run *r)
{
	if (!r->gn)
		return;
	run_release_items(r, r->gb, r->gn);
	for (size_t i = 0; i < r->gn; i++)
		json_decref(r->gb[i].item);
	r->claimed -= (long long)r->gn;
	r->gn = 0;
	r->claims_dirty = true;
}

static void claims_add(json_t *a, const char *q, const struct bitem *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!b[i].lost)
			json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "queue", q, "id", b[i].id,
							   "token", (json_int_t)b[i].token));
}

/* The record names what this agent holds, so that `sw-agent reap` can
 * free it at once when the agent dies.  A rewrite costs a file replace:
 * at most one a second, whatever the rate of items. */
static void record_claims(struct run *r, int64_t now)
{
	json_t *a = json_array();
	for (int i = 0; i < r->o->jobs; i++) {
		const struct slot *s = &r->slots[i];
		if (run_holds_claim(s))
			claims_add(a, r->q.name, s->b, s->nb);
	}
	claims_add(a, r->q.name, r->gb, r->gn);
	json_object_set_new(r->rec, "claims", a);
	json_object_set_new(r->rec, "running", json_integer(r->running));
	r->claims_dirty = false;
	r->next_record = now + SW_NS_PER_SEC;
	if (sw_agent_put(r->ws, r->id, r->rec) < 0)
		sw_warn("writing the agent record: %s", strerror(errno));
	else
		r->next_beat = now + r->agent_ttl_ns / 3;   /* a put is a heartbeat */
}

static void beat(struct run *r, int64_t now)
{
	if (r->claims_dirty && now >= r->next_record)
		record_claims(r, now);
	if (now < r->next_beat)
		return;
	r->next_beat = now + r->agent_ttl_ns / 3;
	if (sw_agent_heartbeat(r->ws, r->id) == 0)
		return;
	if (errno == ENOENT && sw_agent_put(r->ws, r->id, r->rec) == 0)
		return;   /* reaped while we stalled: register again */
	sw_warn("heartbeat: %s", strerror(errno));
}

/* Stops every running item's tree, and gives the item back once the tree
 * is gone. */
static void release_all(struct run *r, int64_t now)
{
	size_t n = 0;
	struct slot **t = calloc((size_t)r->o->jobs, sizeof *t);
	if (!t) {
		run_out_of_memory(r);
		return;
	}
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (!s->pid)
			continue;
		if (!s->abandoned)
			s->abandoned = "released";
		t[n++] = s;
	}
	run_stop_trees(r, t, n, now);
	free(t);
}

/* The guardian (the process the user started) was SIGKILLed: whoever did
 * it wants the agent gone, and nothing passes signals on now. */
static void guardian_gone(struct run *r)
{
	if (r->orphaned)
		return;
	r->orphaned = true;
	sw_warn("process %ld was killed; killing the commands and releasing their items",
		(long)r->g.guardian);
	r->draining = r->forced = true;
	r->exit_code = 128 + SIGKILL;
	for (int i = 0; i < r->o->jobs; i++)
		if (r->slots[i].pid && !r->slots[i].abandoned)
			r->slots[i].abandoned = "released";
	run_kill_all(r);
}

static void on_signal(struct run *r, int sig, int64_t now)
{
	if (sig == r->g.sig) {
		if (sw_guard_lost(&r->g))
			guardian_gone(r);
		return;
	}
	if (sig == SIGCHLD || sig == SIGHUP || r->orphaned)
		return;
	if (!r->draining) {
		r->draining = true;
		r->stop_sig = sig;
		r->drain_deadline = now + r->o->grace_ns;
		return;
	}
	if (r->forced && r->exit_code >= 128) {
		/* a third signal: the commands that ignored SIGTERM go now */
		run_kill_all(r);
		return;
	}
	r->forced = true;
	r->exit_code = 128 + sig;
	release_all(r, now);
}

/* Slots whose command has exited go to r->fin once nothing of their tree
 * is left; the others linger, are looked at again on the next reap or
 * check, and SIGKILLed again if they are being killed.  How many went. */
static int settle(struct run *r, int64_t now)
{
	bool lingering = false;
	for (int i = 0; i < r->o->jobs; i++)
		lingering |= r->slots[i].pid && r->slots[i].exited;
	r->next_check = INT64_MAX;
	if (!lingering)
		return 0;
	pid_t *kids = NULL;
	size_t nk = 0;
	bool *busy = calloc((size_t)r->o->jobs, sizeof *busy);
	if (!busy) {
		run_out_of_memory(r);
		return 0;
	}
	if (sw_proc_children(&kids, &nk) < 0)
		sw_warn("listing the commands' processes: %s", strerror(errno));
	for (size_t k = 0; k < nk; k++) {
		struct slot *s = run_owner_of(r, kids[k]);
		if (s)
			busy[s - r->slots] = true;
	}
	free(kids);
	int nfin = 0;
	size_t nkill = 0;
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (!s->pid || !s->exited)
			continue;
		if (busy[i] || run_group_alive(s)) {
			/* a tree being killed is watched closely: a dying
			 * process may hand us orphans to kill */
			int64_t again = now + (s->killed ? 100 : 1000) * INT64_C(1000000);
			if (again < r->next_check)
				r->next_check = again;
			if (s->killed)
				r->pick[nkill++] = s;
			continue;
		}
		if (s->fout >= 0) run_read_out(r, s);
		if (s->ferr >= 0) run_read_err(r, s);
		r->fin[r->nfin++] = *s;   /* what it owns goes with it */
		nfin++;
		run_slot_reset(s);
		r->running--;
	}
	free(busy);
	run_signal_trees(r, r->pick, nkill, SIGKILL);
	return nfin;
}

/* Whether the finished items should be committed now.  They wait a
 * little for others to share their sync (group commit): until GROUP_MAX
 * are waiting, or the first has waited GROUP_WAIT_NS, or no command runs
 * that could join them; not at all when nothing is synced (SW_SYNC=off)
 * or with --batch (whose items commit together already). */
static bool group_due(const struct run *r, int64_t now)
{
	return r->nfin && (r->o->batch || r->ws->sync == SW_SYNC_OFF || r->nfin >= GROUP_MAX ||
			   !r->running || r->draining || now >= r->fin_since + GROUP_WAIT_NS);
}

static void commit_due(struct run *r, int64_t now)
{
	if (!group_due(r, now))
		return;
	run_finish_group(r);
	/* a finished item may have let others through (`after`) */
	r->want_claim = r->empty && run_free_slots(r) > 0;
}

/* Items whose whole tree is gone: their slots are refilled before the
 * queue hears how they went, which keeps the -j slots busy while this
 * process does the bookkeeping. */
static void finish_settled(struct run *r)
{
	int64_t now = sw_now_ns();
	bool waiting = r->nfin > 0;
	if (!settle(r, now))
		return;
	if (!waiting)
		r->fin_since = now;
	if (run_may_claim(r))
		run_claim_some(r);
	commit_due(r, sw_now_ns());
}

/* Collects what has exited: a command (its slot then waits for the rest
 * of its tree), or a process reparented to us, which may have been the
 * last of some tree. */
static void reap_children(struct run *r)
{
	int st;
	pid_t pid;
	bool any = false;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		any = true;
		struct slot *s = run_command_slot(r, pid);
		if (!s)
			continue;
		s->exited = true;
		s->status = st;
		/* what the command wrote before exiting is in the pipes */
		if (s->fout >= 0) run_read_out(r, s);
		if (s->ferr >= 0) run_read_err(r, s);
	}
	if (any)
		finish_settled(r);
}

/* ---- the loop -------------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t next_deadline(struct run *r, int64_t now)
{
	int64_t t = r->next_beat;
	if (r->claims_dirty)
		t = min64(t, r->next_record);
	if (!r->draining && run_free_slots(r) > 0 && run_may_claim(r))
		t = min64(t, r->next_poll);
	if (sw_waiter_shared(&r->w) && !sw_waiter_watching(&r->w) && waits(r))
		t = min64(t, r->next_lead);
	if (r->gn)
		t = min64(t, r->gather_renew_at);
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (!s->pid)
			continue;
		if (run_holds_claim(s))
			t = min64(t, s->renew_at);
		if (s->kill_at)
			t = min64(t, s->kill_at);
	}
	t = min64(t, r->next_check);
	if (r->nfin)
		t = min64(t, r->fin_since + GROUP_WAIT_NS);
	if (r->draining && !r->forced)
		t = min64(t, r->drain_deadline);
	if (r->o->idle_ns >= 0 && r->idle_since >= 0)
		t = min64(t, r->idle_since + r->o->idle_ns);
	if (r->progress)
		t = min64(t, r->next_progress);
	return t < now ? now : t;
}

static bool finished(struct run *r, int64_t now)
{
	if (r->draining)
		drop_gather(r);
	if (r->running || r->gn || r->nfin)
		return false;
	if (r->draining)
		return true;
	if (!run_may_claim(r))
		return true;   /* --once or --max-items used up */
	if (r->o->idle_ns < 0 || r->idle_since < 0 || now < r->idle_since + r->o->idle_ns)
		return false;
	/* idle for long enough; but a claim that runs out, or a transition
	 * left half-way, brings work back: --idle-exit waits for those too */
	if (!r->o->once && sw_queue_busy(&r->q)) {
		r->idle_since = now;
		return false;
	}
	return true;
}

static void timers(struct run *r, int64_t now)
{
	renew_due(r, now);
	beat(r, now);
	size_t n = 0;
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (s->pid && s->kill_at && now >= s->kill_at) {
			s->kill_at = INT64_MAX;
			r->pick[n++] = s;
		}
	}
	run_signal_trees(r, r->pick, n, SIGKILL);
	if (now >= r->next_check)
		finish_settled(r);
	commit_due(r, now);
	if (r->draining && !r->forced && now >= r->drain_deadline && r->running) {
		r->forced = true;
		release_all(r, now);
	}
	if (!r->draining && now >= r->next_poll)
		r->want_claim = true;
	/* a watcher that was SIGKILLed told nobody: its lock is free now */
	if (sw_waiter_shared(&r->w) && !sw_waiter_watching(&r->w) && waits(r) && now >= r->next_lead) {
		r->next_lead = now + sw_jitter(SW_WAITER_LEAD_RETRY_NS);
		if (sw_waiter_lead(&r->w))
			r->want_claim = true;
	}
}

static void handle_fds(struct run *r, struct pollfd *pf, int n, int *owner)
{
	for (int k = 0; k < n; k++) {
		if (!pf[k].revents)
			continue;
		if (owner[k] == -1) {
			struct signalfd_siginfo si;
			while (read(r->sfd, &si, sizeof si) == sizeof si)
				on_signal(r, (int)si.ssi_signo, sw_now_ns());
			continue;
		}
		if (owner[k] == -3 || owner[k] == -4) {
			run_ob_write(r, owner[k] == -3 ? &r->out : &r->err, false);
			continue;
		}
		if (owner[k] == -2) {
			bool wake = false, baton = false;
			sw_waiter_events(&r->w, &wake, &baton);
			if (wake)
				r->want_claim = true;
			if (baton && waits(r) && sw_waiter_lead(&r->w))
				r->want_claim = true;
			continue;
		}
		struct slot *s = &r->slots[owner[k] / 3];
		switch (owner[k] % 3) {
		case 0: if (s->fin >= 0) run_write_in(s); break;
		case 1: if (s->fout >= 0) run_read_out(r, s); break;
		case 2: if (s->ferr >= 0) run_read_err(r, s); break;
		}
	}
}

static void loop(struct run *r)
{
	int maxfd = 4 + 3 * r->o->jobs;
	struct pollfd *pf = calloc((size_t)maxfd, sizeof *pf);
	int *owner = calloc((size_t)maxfd, sizeof *owner);
	if (!pf || !owner)
		run_out_of_memory(r);
	r->want_claim = true;
	/* a failure stops the loop at once, as an exit would have: the
	 * caller exits, and nothing more is written or told */
	while (!r->fail.code) {
		int64_t now = sw_now_ns();
		bool looked = r->want_claim && run_may_claim(r);
		if (looked)
			run_claim_some(r);
		if (r->fail.code)
			break;
		/* the watcher is one of those who wait; a busy agent lets go */
		if (!waits(r))
			sw_waiter_resign(&r->w);
		else if (looked && !sw_waiter_watching(&r->w) && sw_waiter_lead(&r->w)) {
			run_claim_some(r);   /* what came before the watch was set */
			continue;
		}
		if (r->empty && !r->running && !r->gn && r->idle_since < 0)
			r->idle_since = now;
		if (!r->empty || r->running)
			r->idle_since = -1;
		run_progress(r, now, false);
		commit_due(r, now);
		if (finished(r, now))
			break;
		int n = 0;
		pf[n] = (struct pollfd){ .fd = r->sfd, .events = POLLIN }; owner[n++] = -1;
		if (r->w.ifd >= 0) {
			pf[n] = (struct pollfd){ .fd = r->w.ifd, .events = POLLIN }; owner[n++] = -2;
		}
		if (r->out.len) {
			pf[n] = (struct pollfd){ .fd = 1, .events = POLLOUT }; owner[n++] = -3;
		}
		if (r->err.len) {
			pf[n] = (struct pollfd){ .fd = 2, .events = POLLOUT }; owner[n++] = -4;
		}
		for (int i = 0; i < r->o->jobs; i++) {
			struct slot *s = &r->slots[i];
			if (!s->pid)
				continue;
			if (s->fin >= 0) { pf[n] = (struct pollfd){ .fd = s->fin, .events = POLLOUT }; owner[n++] = 3 * i; }
			if (s->fout >= 0) { pf[n] = (struct pollfd){ .fd = s->fout, .events = POLLIN }; owner[n++] = 3 * i + 1; }
			if (s->ferr >= 0) { pf[n] = (struct pollfd){ .fd = s->ferr, .events = POLLIN }; owner[n++] = 3 * i + 2; }
		}
		int64_t wait_ns = next_deadline(r, now) - now;
		int ms = wait_ns >= INT32_MAX * INT64_C(1000000) ? -1 : (int)((wait_ns + 999999) / 1000000);
		if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) {
			run_fail(r, EX_SOFTWARE, "poll: %s", strerror(errno));
			break;
		}
		handle_fds(r, pf, n, owner);
		if (!r->fail.code)
			reap_children(r);
		if (!r->fail.code)
			timers(r, sw_now_ns());
	}
	if (r->fail.code) {
		free(pf);
		free(owner);
		return;
	}
	run_ob_write(r, &r->err, true);
	run_ob_write(r, &r->out, true);
	run_progress(r, sw_now_ns(), true);
	sw_waiter_resign(&r->w);
	free(pf);
	free(owner);
}

static int run_setup_signals(struct run *r)
{
	if ((r->sfd = sw_guard_signalfd(&r->g)) < 0)
		return sw_err_set(&r->fail, EX_SOFTWARE, "signalfd: %s", strerror(errno));
	return 0;
}

/* The record of the running agent: who it is, what it runs, and which
 * processes must be gone for it to be dead. */
static json_t *run_record(struct run *r, json_t *hw)
{
	const struct sw_agent_run_opts *o = r->o;
	json_t *rec = sw_agent_record(r->id, (const char *const *)o->roles, o->nroles, o->labels, hw,
				      r->agent_ttl_ns);
	json_object_set_new(rec, "pid", json_integer(r->g.guardian));   /* the one the user sees */
	/* the agent is this process, the worker, which holds the claims; it
	 * is dead at once when it and the guardian are gone (the guardian
	 * lives on only to kill the commands' trees) */
	char own[SW_OWNER_LEN], guard[SW_OWNER_LEN];
	sw_owner_self(own);
	sw_owner_of(r->g.guardian, guard);
	if (*own)
		json_object_set_new(rec, "owner", json_string(own));
	if (*own && *guard)
		json_object_set_new(rec, "guardian", json_string(guard));
	json_object_set_new(rec, "queue", json_string(r->q.name));
	json_object_set_new(rec, "jobs", json_integer(o->jobs));
	if (o->batch)
		json_object_set_new(rec, "batch", json_integer((json_int_t)o->batch));
	if (o->affinity)
		json_object_set_new(rec, "steal_after", json_real((double)o->steal_after_ns / 1e9));
	json_t *cmd = json_array();
	for (int i = 0; i < o->nargs; i++)
		json_array_append_new(cmd, run_utf8_string(o->args[i], strlen(o->args[i])));
	json_object_set_new(rec, "command", cmd);
	return rec;
}

/* Everything up to the loop, in the order a mistake is best reported:
 * where the logs go (the caller's typo), the queue, then the fork and
 * the record.  0, or the code of r->fail. */
static int run_start(struct run *r)
{
	const struct sw_agent_run_opts *o = r->o;
	if (o->log_dir && run_open_log_dir(r))
		return r->fail.code;
	if (o->joblog && run_open_joblog(r))
		return r->fail.code;
	int rc = sw_queue_open(&r->q, r->ws, o->queue, true);
	if (rc)
		return sw_err_set(&r->fail, rc, "queue %s/queues/%s: %s", r->ws->path, o->queue, r->q.err.msg);
	r->q_open = true;
	r->q.keep_claimed = true;   /* its claims are renewed and finished here */
	for (int i = 0; i < o->nargs; i++) {
		r->payload_arg |= strstr(o->args[i], "{}") != NULL;
		r->subst |= strstr(o->args[i], "{}") || strstr(o->args[i], "{id}") ||
			    strstr(o->args[i], "{attempt}");
	}
	/* the one fork: from here on this is the worker, and the process the
	 * user started passes signals on and cleans up if we are killed */
	sigset_t fwd;
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGHUP);
	if (sw_guard_start(&r->g, &fwd, NULL) < 0)
		return sw_err_set(&r->fail, EX_SOFTWARE, "starting the guardian process: %s", strerror(errno));
	json_t *hw = sw_agent_hw();
	if (o->id)
		snprintf(r->id, sizeof r->id, "%s", o->id);
	else
		sw_agent_default_id(r->id, hw);
	sw_span_str(r->sp, "sw.agent.id", r->id);
	sw_span_str(r->sp, "sw.queue", r->q.name);
	r->agent_ttl_ns = o->hb_ttl_ns ? o->hb_ttl_ns : SW_AGENT_TTL_DEFAULT_NS;
	r->rec = run_record(r, hw);
	json_decref(hw);
	if (sw_agent_put(r->ws, r->id, r->rec) < 0)
		return sw_err_set(&r->fail, sw_ex_errno(errno), "cannot write agent record %s/%s/%s.json: %s",
				  r->ws->path, SW_AGENT_DIR, r->id, strerror(errno));
	r->slots = calloc((size_t)o->jobs, sizeof *r->slots);
	r->fin = calloc((size_t)o->jobs + GROUP_MAX, sizeof *r->fin);
	r->pick = calloc((size_t)o->jobs, sizeof *r->pick);
	r->gb = calloc(o->batch ? o->batch : 1, sizeof *r->gb);
	if (!r->slots || !r->fin || !r->pick || !r->gb)
		return sw_err_set(&r->fail, EX_SOFTWARE, "out of memory");
	for (int i = 0; i < o->jobs; i++)
		run_slot_reset(&r->slots[i]);
	if (run_env_init(r) || run_setup_signals(r))
		return r->fail.code;
	run_ob_init(&r->out, 1);
	run_ob_init(&r->err, 2);
	sw_waiter_init(&r->w, &r->q, (const char *const *)o->roles, o->nroles);
	r->w_open = true;
	r->poll_ns = default_poll(r);
	r->started_ns = sw_now_ns();
	r->next_beat = r->started_ns + r->agent_ttl_ns / 3;
	r->progress = !o->quiet && isatty(2);
	r->next_poll = 0;
	return 0;
}

/* What the run leaves: the agent deregistered, its counts on the span,
 * and its exit status. */
static int run_end(struct run *r)
{
	const struct sw_agent_run_opts *o = r->o;
	if (sw_agent_remove(r->ws, r->id) < 0 && errno != ENOENT)
		sw_warn("deregister: %s", strerror(errno));
	sw_span_int(r->sp, "sw.items.done", r->done);
	sw_span_int(r->sp, "sw.items.failed", r->failed);
	sw_span_int(r->sp, "sw.items.released", r->released);
	int code = r->exit_code;
	if (!code && o->once)
		code = r->claimed ? r->once_status : EX_TEMPFAIL;
	/* an answer, like sw-claim next's 75: --quiet silences it */
	if (code == EX_TEMPFAIL && o->once && !r->claimed && !o->quiet)
		sw_warn("nothing to claim in queue '%s'", r->q.name);
	return code;
}

/* Frees what run_start and the loop left, however far they got. */
static void run_free(struct run *r)
{
	json_decref(r->rec);
	sw_aff_ring_free(&r->ring);
	free(r->out.b);
	free(r->err.b);
	if (r->logdir >= 0)
		close(r->logdir);
	if (r->joblog >= 0)
		close(r->joblog);
	free(r->slots);
	free(r->fin);
	free(r->pick);
	free(r->gb);
	free(r->env);
	if (r->w_open)
		sw_waiter_close(&r->w);
	if (r->sfd >= 0)
		close(r->sfd);
	if (r->q_open)
		sw_queue_close(&r->q);
}

int sw_agent_run(const struct sw_agent_run_opts *o, struct sw_ws *ws, struct sw_span *sp, struct sw_err *e)
{
	struct run r = { .oc = *o, .ws = ws, .sp = sp, .sfd = -1, .idle_since = -1,
			 .next_check = INT64_MAX, .logdir = -1, .joblog = -1 };
	r.o = &r.oc;
	int code = run_start(&r);
	if (!code) {
		loop(&r);
		code = r.fail.code ? r.fail.code : run_end(&r);
	}
	if (r.fail.code)
		*e = r.fail;
	run_free(&r);
	return code;
}
