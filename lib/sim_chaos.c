/* sim_chaos.c — the faults of `sw-sim run`, on a schedule drawn from the
 * seed: every kind from a stream of its own, each event drawing the same
 * numbers whether it lands or not (the victim may be restarting: the
 * event is then "missed"), so that one seed gives one schedule.
 *
 *   kill       SIGKILL of an agent's worker (a crash; the guardian then
 *              kills its commands and exits, and the slot gets a new agent)
 *   stall      SIGSTOP of a worker for DUR/10..DUR, then SIGCONT
 *   latency    without --lab: SIGSTOP of a worker for --min-latency..
 *              --max-latency, each agent about once every 5 s (a process
 *              whose filesystem calls are slow, seen from outside)
 *   delay      with --lab: the lab's link of one client delayed by
 *              --min-latency..--max-latency, drawn again every 5 s
 *   partition  each second with the probability that makes
 *              --partition-probability per minute: every agent of one
 *              host stopped (or, with --lab, its link taken down) for
 *              --partition-time/2..--partition-time
 *
 * A partition of the lab blocks every call on that mount until it heals,
 * even SIGKILL waits: no agent of a host cut off is killed or started,
 * nothing is added or asked through its mount, and the links are healed
 * before anything else at the end, on a signal, or on a fatal error. */
#include "sim_int.h"
#include "clock.h"
#include "err.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC INT64_C(1000000000)
#define LATENCY_PER_AGENT 0.2   /* pauses a second, each agent */
#define DELAY_EVERY (5 * SEC)
#define HEAL_TRIES 5

static pid_t worker(struct sim *s, int slot)
{
	struct sim_slot *sl = &s->slots[slot];
	if (!sl->worker && sl->pid) {
		pid_t w = sim_worker_of(sl->pid, "sw-agent");
		sl->worker = w > 0 ? w : 0;
	}
	return sl->worker;
}

/* A fault that hit: recorded for the report (at its real time) and in
 * the event log (at the time the schedule gave it, s->planned, so that
 * two runs of one seed log the same schedule). */
static int record(struct sim *s, enum sim_fault_kind kind, int slot, int host, int64_t at, int64_t until)
{
	struct sim_fault f = { .kind = kind, .slot = slot, .host = host, .at_ns = at, .end_ns = until,
			       .agent = slot >= 0 ? s->slots[slot].agent : -1 };
	if (sim_fault_add(&s->book, &f) < 0) {
		sim_fatal(s, EX_SOFTWARE, "out of memory");
		return -1;
	}
	s->applied[kind]++;
	sim_event(s, sim_fault_names[kind], slot, host, s->planned, s->planned + (until - at), false);
	return (int)s->book.nfaults - 1;
}

/* A fault the schedule gave that found its victim restarting, cut off
 * or gone: logged, not recorded. */
static void missed(struct sim *s, enum sim_fault_kind kind, int slot, int host, int64_t dur)
{
	s->missed[kind]++;
	sim_event(s, sim_fault_names[kind], slot, host, s->planned, s->planned + dur, true);
}

/* A fault is lifted: its span, with its real length. */
static void lifted(struct sim *s, int fault, int64_t now)
{
	if (fault < 0)
		return;
	struct sim_fault *f = &s->book.faults[fault];
	f->end_ns = now;
	sim_fault_span(s, f);
}

static void kill_slot(struct sim *s, int slot, int64_t now)
{
	struct sim_slot *sl = &s->slots[slot];
	pid_t w;
	if (!sl->pid || sl->killed || sim_host_cut(s, sl->host, now) || (w = worker(s, slot)) <= 0 ||
	    kill(w, SIGKILL) < 0) {
		missed(s, SIM_F_KILL, slot, sl->host, 0);
		return;
	}
	sl->killed = true;
	sl->stopped = false;
	lifted(s, sl->fault, now);
	sl->fault = -1;
	int f = record(s, SIM_F_KILL, slot, sl->host, now, now);
	lifted(s, f, now);
}

/* SIGSTOP until `until`, or longer when it is stopped already.  The
 * fault recorded (not for a partition, which is the host's) is lifted
 * with the SIGCONT. */
static void stop_slot(struct sim *s, int slot, int64_t until, enum sim_fault_kind kind, int64_t now, bool rec)
{
	struct sim_slot *sl = &s->slots[slot];
	pid_t w;
	if (!sl->pid || sl->killed || (w = worker(s, slot)) <= 0 || (!sl->stopped && kill(w, SIGSTOP) < 0)) {
		if (rec)
			missed(s, kind, slot, sl->host, until - now);
		return;
	}
	if (!sl->stopped) {
		sl->stopped = true;
		sl->stop_until = until;
	} else if (until > sl->stop_until) {
		sl->stop_until = until;
	}
	if (rec) {
		/* a new stop of a stopped agent takes over from the old one */
		lifted(s, sl->fault, now);
		sl->fault = record(s, kind, slot, sl->host, now, until);
	}
}

void sim_stop_slot(struct sim *s, int slot, int64_t until, enum sim_fault_kind kind, int64_t now)
{
	stop_slot(s, slot, until, kind, now, true);
}

static void cont_due(struct sim *s, int64_t now, bool all)
{
	for (int i = 0; i < s->nslots; i++) {
		struct sim_slot *sl = &s->slots[i];
		if (!sl->stopped || (!all && now < sl->stop_until))
			continue;
		if (sl->worker > 0)
			(void)kill(sl->worker, SIGCONT);   /* ESRCH: killed meanwhile */
		sl->stopped = false;
		sl->stop_until = 0;
		lifted(s, sl->fault, now);
		sl->fault = -1;
	}
}

/* ---- the lab ------------------------------------------------------------ */

static void lab_queue(struct sim *s, int verb, int host, int64_t arg_ns)
{
	if (s->nlabq == (int)(sizeof s->labq / sizeof s->labq[0])) {
		/* only delays pile up: drop the oldest, a newer one follows */
		memmove(s->labq, s->labq + 1, (size_t)(s->nlabq - 1) * sizeof s->labq[0]);
		s->nlabq--;
	}
	s->labq[s->nlabq++] = (struct sim_labcmd){ verb, host, arg_ns };
	sim_lab_next(s);
}

static bool lab_busy(const struct sim *s)
{
	for (int i = 0; i < SIM_CHILDREN; i++)
		if (s->ch[i].pid && s->ch[i].kind == CH_LAB)
			return true;
	return false;
}

static void lab_argv(struct sim *s, const struct sim_labcmd *c, char *host, char *dur, char *argv[5])
{
	static char *const verbs[] = { "partition", "heal", "delay" };
	host[0] = (char)('a' + c->host);
	host[1] = 0;
	snprintf(dur, 24, c->arg_ns ? "%lldus" : "0", (long long)(c->arg_ns / 1000));
	argv[0] = s->lab_prog;
	argv[1] = verbs[c->verb];
	argv[2] = host;
	argv[3] = c->verb == LAB_DELAY ? dur : NULL;
	argv[4] = NULL;
}

void sim_lab_next(struct sim *s)
{
	if (!s->nlabq || lab_busy(s))
		return;
	struct sim_labcmd c = s->labq[0];
	memmove(s->labq, s->labq + 1, (size_t)(s->nlabq - 1) * sizeof s->labq[0]);
	s->nlabq--;
	char host[2], dur[24], *argv[5];
	lab_argv(s, &c, host, dur, argv);
	struct sim_child *ch = sim_child_start(s, CH_LAB, c.host, argv, NULL, 0);
	if (!ch) {
		sim_fatal(s, EX_UNAVAILABLE, "cannot run %s", s->lab_prog);
		return;
	}
	ch->lab_verb = c.verb;
	ch->lab_host = c.host;
	ch->lab_arg_ns = c.arg_ns;
	snprintf(ch->what, sizeof ch->what, "%s %s%s%s", argv[1], host, argv[3] ? " " : "", argv[3] ? dur : "");
}

void sim_lab_exited(struct sim *s, struct sim_child *c, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	sw_warn("lab %s failed (status %d), see %s/lab.log", c->what,
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), s->scratch);
	if (c->lab_verb != LAB_HEAL)
		return;
	/* a link left down stalls that mount for good: try again, first */
	if (++s->lab_failed > HEAL_TRIES) {
		sim_fatal(s, EX_UNAVAILABLE, "the lab's link %c could not be healed: run %s heal %c",
			  'a' + c->lab_host, s->lab_prog, 'a' + c->lab_host);
		return;
	}
	memmove(s->labq + 1, s->labq, (size_t)s->nlabq * sizeof s->labq[0]);
	s->labq[0] = (struct sim_labcmd){ LAB_HEAL, c->lab_host, 0 };
	s->nlabq++;
}

static int run_wait(char *const argv[], char **env)
{
	pid_t pid = sim_spawn(argv, env, -1, -1, -1, true);
	int st;
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void sim_lab_heal_now(struct sim *s)
{
	if (!s->o->lab || !*s->lab_prog)
		return;
	/* a partition still being made would come after the heal */
	for (int i = 0; i < SIM_CHILDREN; i++) {
		struct sim_child *c = &s->ch[i];
		int st;
		if (c->pid && c->kind == CH_LAB && waitpid(c->pid, &st, 0) == c->pid)
			c->pid = 0;
	}
	s->nlabq = 0;
	for (int h = 0; h < 2; h++) {
		struct sim_labcmd c = { LAB_HEAL, h, 0 };
		char host[2], dur[24], *argv[5];
		lab_argv(s, &c, host, dur, argv);
		if (run_wait(argv, s->env) != 0)
			sw_warn("could not heal the lab's link %s: run %s heal %s", host, s->lab_prog, host);
		s->lab_part[h] = false;
		s->lab_delay[h] = 0;
	}
}

/* ---- partitions --------------------------------------------------------- */

static void partition_start(struct sim *s, int host, int64_t dur, int64_t now)
{
	int64_t end = now + dur;
	s->host_part_until[host] = end;
	s->part_fault = record(s, SIM_F_PARTITION, -1, host, now, end);
	if (s->o->lab) {
		s->lab_part[host] = true;
		/* a partition takes the delay away */
		s->lab_delay[host] = 0;
		lifted(s, s->delay_fault[host], now);
		s->delay_fault[host] = -1;
		lab_queue(s, LAB_PARTITION, host, 0);
		return;
	}
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].host == host)
			stop_slot(s, i, end, SIM_F_PARTITION, now, false);
}

static void partition_end(struct sim *s, int64_t now)
{
	if (s->part_fault < 0)
		return;
	int host = s->book.faults[s->part_fault].host;
	lifted(s, s->part_fault, now);
	s->part_fault = -1;
	s->host_part_until[host] = now;
	if (s->o->lab && s->lab_part[host]) {
		s->lab_part[host] = false;
		lab_queue(s, LAB_HEAL, host, 0);
	}
}

/* The chance of a partition starting in one second, from Shortlist's
 * probability per minute. */
static double part_per_sec(double per_min)
{
	return per_min >= 1 ? 1 : 1 - pow(1 - per_min, 1.0 / 60);
}

/* ---- the schedule ----------------------------------------------------- */

/* t + gap, where a gap of INT64_MAX (a rate of 0) means never. */
static int64_t after(int64_t t, int64_t gap)
{
	return gap > INT64_MAX - t ? INT64_MAX : t + gap;
}

void sim_chaos_start(struct sim *s, int64_t now)
{
	const struct sim_run_opts *o = s->o;
	s->next_kill = after(now, sim_rng_gap(&s->rng_kill, o->kill_rate));
	s->next_stall = after(now, sim_rng_gap(&s->rng_stall, o->stall_rate));
	s->next_lat = s->next_delay = s->next_part = INT64_MAX;
	if (o->lat_max_ns > 0 && !o->lab)
		s->next_lat = after(now, sim_rng_gap(&s->rng_lat, LATENCY_PER_AGENT * s->nslots));
	if (o->lat_max_ns > 0 && o->lab)
		s->next_delay = now;
	if (o->partition_p > 0)
		s->next_part = now + SEC;
}

static void set_delay(struct sim *s, int host, int64_t d, int64_t now)
{
	lifted(s, s->delay_fault[host], now);
	s->delay_fault[host] = -1;
	s->lab_delay[host] = d;
	if (d) {
		int f = record(s, SIM_F_DELAY, -1, host, now, now + DELAY_EVERY);
		if (f >= 0)
			s->book.faults[f].delay_ns = d;
		s->delay_fault[host] = f;
	}
	lab_queue(s, LAB_DELAY, host, d);
}

/* Every DELAY_EVERY one link's delay is drawn again; the first event
 * sets both. */
static void delay_event(struct sim *s, int64_t now)
{
	const struct sim_run_opts *o = s->o;
	int h = (int)sim_rng_below(&s->rng_delay, 2);
	int64_t d = sim_rng_between(&s->rng_delay, o->lat_min_ns, o->lat_max_ns);
	bool first = s->next_delay == s->t0;
	s->next_delay += DELAY_EVERY;
	s->planned = s->next_delay - DELAY_EVERY;
	for (int k = first ? 0 : h; k <= (first ? 1 : h); k++) {
		if (s->lab_part[k])
			missed(s, SIM_F_DELAY, -1, k, DELAY_EVERY);
		else
			set_delay(s, k, d, now);
	}
}

void sim_chaos_step(struct sim *s, int64_t now)
{
	const struct sim_run_opts *o = s->o;
	uint32_t n = (uint32_t)s->nslots;
	while (now >= s->next_kill) {
		int slot = (int)sim_rng_below(&s->rng_kill, n);
		s->planned = s->next_kill;
		s->next_kill = after(s->next_kill, sim_rng_gap(&s->rng_kill, o->kill_rate));
		kill_slot(s, slot, now);
	}
	while (now >= s->next_stall) {
		int slot = (int)sim_rng_below(&s->rng_stall, n);
		int64_t d = sim_rng_between(&s->rng_stall, o->stall_ns / 10, o->stall_ns);
		s->planned = s->next_stall;
		s->next_stall = after(s->next_stall, sim_rng_gap(&s->rng_stall, o->stall_rate));
		stop_slot(s, slot, now + d, SIM_F_STALL, now, true);
	}
	while (now >= s->next_lat) {
		int slot = (int)sim_rng_below(&s->rng_lat, n);
		int64_t d = sim_rng_between(&s->rng_lat, o->lat_min_ns, o->lat_max_ns);
		s->planned = s->next_lat;
		s->next_lat = after(s->next_lat, sim_rng_gap(&s->rng_lat, LATENCY_PER_AGENT * s->nslots));
		stop_slot(s, slot, now + d, SIM_F_LATENCY, now, true);
	}
	if (now >= s->next_delay)
		delay_event(s, now);
	if (s->part_fault >= 0 && now >= s->book.faults[s->part_fault].end_ns)
		partition_end(s, now);
	while (now >= s->next_part) {
		double u = sim_rng_unit(&s->rng_part);
		int host = (int)sim_rng_below(&s->rng_part, (uint32_t)s->nhosts);
		int64_t d = sim_rng_between(&s->rng_part, o->partition_ns / 2, o->partition_ns);
		s->planned = s->next_part;
		s->next_part += SEC;
		if (s->part_fault < 0 && u < part_per_sec(o->partition_p))
			partition_start(s, host, d, now);
	}
	cont_due(s, now, false);
}

int64_t sim_chaos_next(const struct sim *s)
{
	int64_t t = s->next_kill;
	if (s->next_stall < t) t = s->next_stall;
	if (s->next_lat < t) t = s->next_lat;
	if (s->next_delay < t) t = s->next_delay;
	if (s->next_part < t) t = s->next_part;
	if (s->part_fault >= 0 && s->book.faults[s->part_fault].end_ns < t)
		t = s->book.faults[s->part_fault].end_ns;
	return t;
}

bool sim_chaos_lift(struct sim *s, int64_t now)
{
	if (s->next_kill != INT64_MAX || s->next_part != INT64_MAX || s->next_delay != INT64_MAX ||
	    s->next_stall != INT64_MAX || s->next_lat != INT64_MAX) {
		s->next_kill = s->next_stall = s->next_lat = s->next_delay = s->next_part = INT64_MAX;
		partition_end(s, now);
		cont_due(s, now, true);
		for (int h = 0; h < 2 && s->o->lab; h++)
			if (s->lab_delay[h])
				set_delay(s, h, 0, now);
		for (int h = 0; h < s->nhosts; h++)
			if (s->host_part_until[h] > now)
				s->host_part_until[h] = now;
	}
	return !s->nlabq && !lab_busy(s);
}
