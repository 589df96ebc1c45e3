/* sim_report.c — what a run shows while it goes (a status line on a
 * terminal, --stats-every JSON lines) and the report at its end.
 *
 * The final check reads the queue (every item, in every state) once every
 * fault is healed and every agent has left, and sets it against what the
 * run knows by itself:
 *   lost            acknowledged by sw-claim add, found in no state
 *   unfinished      acknowledged, still pending or claimed after the drain
 *   finished twice  in two states at once, or reported done (or dead) by
 *                   two agents, or done by one and dead by another
 *   done by a stale run
 *                   done, but its result (written by the job that
 *                   succeeded) names another attempt than the item's
 *                   last claim, or a run the ledger does not show
 * Runs that ran twice (a stalled agent's job, a killed agent's retried
 * one) are counted, not faulted: execution is at least once. */
#include "sim_int.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include "queue.h"
#include "ws.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define REASONS 4               /* example ids named per problem */

void sim_window_add(int64_t *win, size_t *n, int64_t v)
{
	win[*n % SIM_WINDOW] = v < 0 ? 0 : v;
	(*n)++;
}

static int64_t window_pct(const int64_t *win, size_t n, double p)
{
	int64_t tmp[SIM_WINDOW];
	size_t k = n < SIM_WINDOW ? n : SIM_WINDOW;
	memcpy(tmp, win, k * sizeof *tmp);
	return sim_percentile(tmp, k, p);
}

/* ---- while it runs ------------------------------------------------------ */

struct live {
	int alive, stopped, down;
	double t, items_per_s;
	int64_t wait50, wait99, done50, done99;
};

static void live_fill(struct sim *s, int64_t now, struct live *l)
{
	memset(l, 0, sizeof *l);
	for (int i = 0; i < s->nslots; i++) {
		const struct sim_slot *sl = &s->slots[i];
		if (!sl->pid || sl->killed)
			l->down++;
		else if (sl->stopped)
			l->stopped++;
		else
			l->alive++;
	}
	l->t = s->t0 ? (double)(now - s->t0) / 1e9 : 0;
	/* items/s over the last second or so, from the ledger's successes */
	if (now - s->prev_done_at >= SW_NS_PER_SEC / 2) {
		double r = (double)(s->runs_ok - s->prev_done) * 1e9 / (double)(now - s->prev_done_at);
		s->items_per_s = s->items_per_s ? 0.5 * s->items_per_s + 0.5 * r : r;
		s->prev_done = s->runs_ok;
		s->prev_done_at = now;
	}
	l->items_per_s = s->items_per_s;
	l->wait50 = window_pct(s->win_wait, s->nwin_wait, 50);
	l->wait99 = window_pct(s->win_wait, s->nwin_wait, 99);
	l->done50 = window_pct(s->win_done, s->nwin_done, 50);
	l->done99 = window_pct(s->win_done, s->nwin_done, 99);
}

static const char *phase_name(enum sim_phase p)
{
	static const char *const n[] = { "starting", "running", "healing", "draining", "stopping", "done" };
	return n[p];
}

void sim_live(struct sim *s, int64_t now, bool last)
{
	struct live l;
	live_fill(s, now, &l);
	const struct sim_stats *st = &s->st;
	char line[512];
	int n = snprintf(line, sizeof line,
		"\rsw-sim %s %.0fs: agents %d up %d stopped %d down | pending %lld claimed %lld done %lld dead %lld"
		" | %.0f/s | wait p50 %lldms p99 %lldms, done p99 %lldms | kill %lld stall %lld part %lld lat %lld"
		"\033[K%s",
		phase_name(s->phase), l.t, l.alive, l.stopped, l.down, st->pending + st->delayed + st->blocked,
		st->claimed, st->done, st->dead, l.items_per_s, (long long)(l.wait50 / MS),
		(long long)(l.wait99 / MS), (long long)(l.done99 / MS), s->applied[SIM_F_KILL],
		s->applied[SIM_F_STALL], s->applied[SIM_F_PARTITION],
		s->applied[SIM_F_LATENCY] + s->applied[SIM_F_DELAY], last ? "\n" : "");
	if (n > 0 && write(2, line, (size_t)n) < 0)
		s->live = false;
}

static json_t *faults_json(const long long *counts)
{
	json_t *j = json_object();
	for (int k = 0; k < SIM_F_KINDS; k++)
		json_object_set_new(j, sim_fault_names[k], json_integer(counts[k]));
	return j;
}

void sim_stats_line(struct sim *s, int64_t now)
{
	struct live l;
	live_fill(s, now, &l);
	const struct sim_stats *st = &s->st;
	json_t *j = json_pack("{s:s,s:s,s:f,s:{s:i,s:i,s:i},s:{s:I,s:I,s:I,s:I,s:I},s:f,s:{s:I,s:I},s:{s:I,s:I}}",
		"type", "stats", "phase", phase_name(s->phase), "t_s", l.t,
		"agents", "up", l.alive, "stopped", l.stopped, "down", l.down,
		"queue", "pending", (json_int_t)(st->pending + st->delayed + st->blocked),
		"claimed", (json_int_t)st->claimed, "done", (json_int_t)st->done, "dead", (json_int_t)st->dead,
		"in_flight", (json_int_t)st->in_flight,
		"items_per_s", l.items_per_s,
		"wait_ms", "p50", (json_int_t)(l.wait50 / MS), "p99", (json_int_t)(l.wait99 / MS),
		"completion_ms", "p50", (json_int_t)(l.done50 / MS), "p99", (json_int_t)(l.done99 / MS));
	if (!j)
		return;
	json_object_set_new(j, "faults", faults_json(s->applied));
	json_object_set_new(j, "added", json_integer(s->acked));
	if (sw_json_print(j) < 0 || fflush(stdout) == EOF)
		sw_warn("writing output: %s", strerror(errno));
	json_decref(j);
}

/* ---- the queue at the end ------------------------------------------------- */

static int state_bit(const char *st)
{
	if (!st) return SIM_IN_PENDING;
	if (!strcmp(st, "claimed")) return SIM_IN_CLAIMED;
	if (!strcmp(st, "done")) return SIM_IN_DONE;
	if (!strcmp(st, "dead")) return SIM_IN_DEAD;
	if (!strcmp(st, "cancelled")) return SIM_IN_CANCELLED;
	return SIM_IN_PENDING;   /* pending, delayed, blocked */
}

static int listed(json_t *item, void *arg)
{
	struct sim *s = arg;
	const char *id = sw_json_str(item, "id");
	int k = id ? sim_item_find(&s->book, id, true) : -1;
	if (k < 0)
		return 0;
	struct sim_item *it = &s->book.items[k];
	int bit = state_bit(sw_json_str(item, "state"));
	if (it->states)
		it->listed_twice = true;
	it->states |= (uint8_t)bit;
	it->created_ns = sw_json_int(item, "created_at_unix_ns", 0);
	it->attempt = sw_json_int(item, "attempt", 0);
	const char *at = bit == SIM_IN_DONE ? "done_at_unix_ns" : bit == SIM_IN_DEAD ? "dead_at_unix_ns" :
			 bit == SIM_IN_CANCELLED ? "cancelled_at_unix_ns" : NULL;
	if (at)
		it->finished_ns = sw_json_int(item, at, 0);
	json_t *res = json_object_get(item, "result");
	if (bit == SIM_IN_DONE && json_is_object(res)) {
		it->result_token = (uint64_t)sw_json_int(res, "token", 0);
		it->result_attempt = sw_json_int(res, "attempt", -1);
		it->has_result = true;
	}
	return 0;
}

static int list_queue(struct sim *s, long long *damaged)
{
	struct sw_ws ws;
	struct sw_err e;
	struct sw_queue q;
	*damaged = 0;
	int rc = sw_ws_open(&ws, s->dirs[0], false, &e);
	if (rc) {
		sw_warn("the final check: %s", e.msg);
		return rc;
	}
	rc = sw_queue_open(&q, &ws, s->queue, false);
	if (rc == SW_EX_FALSE) {
		sw_ws_close(&ws);
		return 0;   /* nothing was ever added */
	}
	if (!rc)
		rc = sw_queue_list(&q, SW_ST_ALL, listed, s);
	struct sw_queue_stats st;
	if (!rc && !(rc = sw_queue_stats(&q, &st)))
		*damaged = st.damaged;
	if (rc)
		sw_warn("the final check: %s", q.err.msg);
	sw_queue_close(&q);
	sw_ws_close(&ws);
	return rc;
}

/* ---- what the agents said -------------------------------------------------- */

static int agent_line(const char *line, size_t n, void *arg)
{
	struct sim *s = arg;
	json_t *j = sw_json_parse(line, n, NULL);
	if (!j || json_object_get(j, "resourceSpans")) {
		json_decref(j);
		return 0;
	}
	const char *id = sw_json_str(j, "id"), *st = sw_json_str(j, "state");
	int k = id && st ? sim_item_find(&s->book, id, false) : -1;
	if (k >= 0 && !strcmp(st, "done"))
		s->book.items[k].done_reports++;
	else if (k >= 0 && !strcmp(st, "dead"))
		s->book.items[k].dead_reports++;
	json_decref(j);
	return 0;
}

static void read_agent_outputs(struct sim *s)
{
	for (size_t a = 0; a < s->book.nagents; a++) {
		char name[80];
		snprintf(name, sizeof name, "%s.out", s->book.agents[a].id);
		int fd = openat(s->agents_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct sim_lines l;
		sim_lines_init(&l, fd, 1 << 20);
		if (sim_lines_read(&l, agent_line, s) < 0)
			sw_warn("reading %s: %s", name, strerror(errno));
		sim_lines_flush(&l, agent_line, s);
		sim_lines_free(&l);
		close(fd);
	}
}

/* ---- the counts ------------------------------------------------------------ */

struct counts {
	long long added, present, finished, done, dead, cancelled, lost, unfinished, twice, stale, unacked;
	long long runs, runs_ok, runs_failed, runs_cut, run_again, ok_twice, damaged;
	char why[4][512];       /* example ids: lost, unfinished, twice, stale */
	double throughput;
	int64_t first_ns, last_ns;
};

/* Adds id to a problem's examples: the first REASONS, then "...". */
static void note(char *why, size_t n, const char *id)
{
	size_t l = strlen(why);
	int ids = l ? 1 : 0;
	for (const char *p = why; *p; p++)
		ids += *p == ' ';
	if (ids < REASONS && l + strlen(id) + 2 < n)
		snprintf(why + l, n - l, "%s%s", l ? " " : "", id);
	else if (ids == REASONS && l + 5 < n)
		snprintf(why + l, n - l, " ...");
}

static void check_results(struct sim *s, bool *matched)
{
	for (size_t r = 0; r < s->book.nruns; r++) {
		const struct sim_run *run = &s->book.runs[r];
		if (run->item < 0 || !run->ok)
			continue;
		const struct sim_item *it = &s->book.items[run->item];
		if (it->has_result && run->token == it->result_token)
			matched[run->item] = true;
	}
}

static void count_item(struct counts *c, const struct sim_item *it, bool matched)
{
	int fin = __builtin_popcount(it->states & SIM_IN_FINISHED);
	c->present += it->states != 0;
	c->added += it->acked;
	c->unacked += !it->acked && it->states;
	c->finished += fin > 0;
	c->done += (it->states & SIM_IN_DONE) != 0;
	c->dead += (it->states & SIM_IN_DEAD) != 0;
	c->cancelled += (it->states & SIM_IN_CANCELLED) != 0;
	c->run_again += it->runs > 1;
	c->ok_twice += it->runs_ok > 1;
	if (it->acked && !it->states) {
		c->lost++;
		note(c->why[0], sizeof c->why[0], it->id);
	} else if (it->acked && !fin) {
		c->unfinished++;
		note(c->why[1], sizeof c->why[1], it->id);
	}
	bool both = ((it->states & SIM_IN_DONE) && it->dead_reports) || ((it->states & SIM_IN_DEAD) && it->done_reports);
	if (fin > 1 || it->listed_twice || it->done_reports + it->dead_reports > 1 || both) {
		c->twice++;
		note(c->why[2], sizeof c->why[2], it->id);
	}
	if ((it->states & SIM_IN_DONE) && (!it->has_result || it->result_attempt != it->attempt || !matched)) {
		c->stale++;
		note(c->why[3], sizeof c->why[3], it->id);
	}
	if (it->created_ns && (!c->first_ns || it->created_ns < c->first_ns))
		c->first_ns = it->created_ns;
	if (fin && it->finished_ns > c->last_ns)
		c->last_ns = it->finished_ns;
}

static int count_all(struct sim *s, struct counts *c)
{
	bool *matched = calloc(s->book.nitems + 1, sizeof *matched);
	if (!matched)
		return -1;
	check_results(s, matched);
	for (size_t i = 0; i < s->book.nitems; i++)
		count_item(c, &s->book.items[i], matched[i]);
	free(matched);
	for (size_t r = 0; r < s->book.nruns; r++) {
		const struct sim_run *run = &s->book.runs[r];
		c->runs++;
		c->runs_ok += run->end_ns && run->ok;
		c->runs_failed += run->end_ns && !run->ok;
		c->runs_cut += !run->end_ns;
	}
	if (c->last_ns > c->first_ns)
		c->throughput = (double)c->finished * 1e9 / (double)(c->last_ns - c->first_ns);
	return 0;
}

/* ---- latencies and recovery ------------------------------------------------ */

static json_t *pcts(int64_t *v, size_t n)
{
	json_t *j = json_object();
	json_object_set_new(j, "n", json_integer((json_int_t)n));
	static const double ps[] = { 50, 95, 99, 100 };
	static const char *const names[] = { "p50", "p95", "p99", "max" };
	for (int k = 0; k < 4; k++)
		json_object_set_new(j, names[k], json_integer(sim_percentile(v, n, ps[k]) / MS));
	return j;
}

static json_t *latencies(const struct sim *s, bool completion)
{
	int64_t *v = malloc((s->book.nitems + 1) * sizeof *v);
	size_t n = 0;
	if (!v)
		return json_null();
	for (size_t i = 0; i < s->book.nitems; i++) {
		const struct sim_item *it = &s->book.items[i];
		if (!it->created_ns)
			continue;
		if (!completion && it->first_start_ns)
			v[n++] = it->first_start_ns - it->created_ns;
		else if (completion && (it->states & (SIM_IN_DONE | SIM_IN_DEAD)) && it->finished_ns)
			v[n++] = it->finished_ns - it->created_ns;
	}
	json_t *j = pcts(v, n);
	free(v);
	return j;
}

static bool agent_hit(const struct sim *s, const struct sim_fault *f, int a)
{
	const struct sim_agent *ag = &s->book.agents[a];
	if (f->kind != SIM_F_PARTITION)
		return a == f->agent;
	return ag->host == f->host && ag->start_ns <= f->at_ns && (!ag->end_ns || ag->end_ns > f->at_ns);
}

/* How long after fault f the items its victims were running were all
 * finished; -1 when it hit no running item, -2 when one never was. */
static int64_t recovery_of(const struct sim *s, const struct sim_fault *f)
{
	int64_t worst = -1;
	for (size_t a = 0; a < s->book.nagents; a++) {
		if (!agent_hit(s, f, (int)a))
			continue;
		const struct sim_agent *ag = &s->book.agents[a];
		for (size_t k = 0; k < ag->nruns; k++) {
			const struct sim_run *r = &s->book.runs[ag->runs[k]];
			if (r->item < 0 || r->start_ns > f->at_ns || (r->end_ns && r->end_ns <= f->at_ns))
				continue;
			const struct sim_item *it = &s->book.items[r->item];
			if (!(it->states & SIM_IN_FINISHED))
				return -2;
			if (it->finished_ns > f->at_ns && it->finished_ns - f->at_ns > worst)
				worst = it->finished_ns - f->at_ns;
		}
	}
	return worst;
}

static json_t *recovery(const struct sim *s)
{
	json_t *j = json_object();
	int64_t *v = malloc((s->book.nfaults + 1) * sizeof *v);
	if (!v)
		return j;
	for (int kind = 0; kind < SIM_F_KINDS; kind++) {
		if (kind == SIM_F_DELAY)
			continue;   /* a slower link stops no item */
		size_t n = 0;
		long long never = 0;
		for (size_t i = 0; i < s->book.nfaults; i++) {
			const struct sim_fault *f = &s->book.faults[i];
			if ((int)f->kind != kind)
				continue;
			int64_t r = recovery_of(s, f);
			if (r >= 0)
				v[n++] = r;
			never += r == -2;
		}
		if (!n && !never)
			continue;
		json_t *p = pcts(v, n);
		json_object_set_new(p, "unrecovered", json_integer(never));
		json_object_set_new(j, sim_fault_names[kind], p);
	}
	free(v);
	return j;
}

/* ---- the report ------------------------------------------------------------ */

static json_t *report_json(struct sim *s, const struct counts *c, bool ok)
{
	const struct sim_run_opts *o = s->o;
	json_t *dirs = json_array();
	for (int h = 0; h < (o->lab ? 2 : o->ndirs ? o->ndirs : 1); h++)
		json_array_append_new(dirs, json_string(s->dirs[h]));
	json_t *j = json_pack("{s:s,s:b,s:s,s:o,s:i,s:f,s:I,s:f}",
		"type", "report", "ok", ok, "queue", s->queue, "dirs", dirs, "agents", o->agents,
		"duration_s", s->t0 ? (double)((s->t_heal ? s->t_heal : sim_now()) - s->t0) / 1e9 : 0.0,
		"seed", (json_int_t)(s->seed & ((UINT64_C(1) << 53) - 1)), "rate", s->rate);
	/* the seed stays within 2^53 in JSON: sw-sim makes its own so */
	json_t *items = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"added", (json_int_t)c->added, "finished", (json_int_t)c->finished, "done", (json_int_t)c->done,
		"dead", (json_int_t)c->dead, "cancelled", (json_int_t)c->cancelled,
		"finished_twice", (json_int_t)c->twice, "done_by_stale_run", (json_int_t)c->stale,
		"lost", (json_int_t)c->lost, "unfinished", (json_int_t)c->unfinished,
		"unacknowledged", (json_int_t)c->unacked, "damaged", (json_int_t)c->damaged);
	json_t *runs = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "started", (json_int_t)c->runs,
		"ok", (json_int_t)c->runs_ok, "failed", (json_int_t)c->runs_failed,
		"cut_short", (json_int_t)c->runs_cut, "items_run_again", (json_int_t)c->run_again,
		"items_succeeded_twice", (json_int_t)c->ok_twice);
	json_object_set_new(j, "items", items);
	json_object_set_new(j, "runs", runs);
	json_object_set_new(j, "throughput_per_s", json_real(c->throughput));
	json_object_set_new(j, "wait_ms", latencies(s, false));
	json_object_set_new(j, "completion_ms", latencies(s, true));
	json_object_set_new(j, "recovery_ms", recovery(s));
	json_object_set_new(j, "faults", faults_json(s->applied));
	json_object_set_new(j, "faults_missed", faults_json(s->missed));
	json_object_set_new(j, "producer_held_s", json_real((double)s->held_ns / 1e9));
	if (s->t_stop && s->t_heal)
		json_object_set_new(j, "drain_s", json_real((double)(s->t_stop - s->t_heal) / 1e9));
	json_object_set_new(j, "agents_started", json_integer((json_int_t)s->book.nagents));
	json_object_set_new(j, "agents_inotify", json_integer(s->inotify_agents < o->agents ? s->inotify_agents
											   : o->agents));
	json_object_set_new(j, "agent_exits", json_integer(s->exits));
	if (s->signals)
		json_object_set_new(j, "interrupted", json_true());
	if (s->book.ledger_bad || s->book.foreign)
		json_object_set_new(j, "unreadable", json_pack("{s:I,s:I}", "ledger_lines",
			(json_int_t)s->book.ledger_bad, "foreign_ids", (json_int_t)s->book.foreign));
	return j;
}

static void fmt_ms(char *buf, size_t n, json_t *pct, const char *key)
{
	int64_t ms = sw_json_int(pct, key, 0);
	if (ms >= 10000)
		snprintf(buf, n, "%.1fs", (double)ms / 1000);
	else
		snprintf(buf, n, "%lldms", (long long)ms);
}

static void print_pcts(const char *label, json_t *p)
{
	char a[32], b[32], c[32], d[32];
	fmt_ms(a, sizeof a, p, "p50");
	fmt_ms(b, sizeof b, p, "p95");
	fmt_ms(c, sizeof c, p, "p99");
	fmt_ms(d, sizeof d, p, "max");
	printf("  %-22s p50 %-8s p95 %-8s p99 %-8s max %-8s (n %lld)\n", label, a, b, c, d,
	       (long long)sw_json_int(p, "n", 0));
}

static void print_summary(const struct sim *s, const struct counts *c, json_t *rep, bool ok)
{
	const struct sim_run_opts *o = s->o;
	printf("sw-sim run: %d agents for %.1f s, seed %llu, queue %s in %s\n", o->agents,
	       json_real_value(json_object_get(rep, "duration_s")), (unsigned long long)json_integer_value(
	       json_object_get(rep, "seed")), s->queue, s->dirs[0]);
	printf("  items                  added %lld, finished %lld (done %lld, dead %lld), unfinished %lld\n",
	       c->added, c->finished, c->done, c->dead, c->unfinished);
	printf("  lost                   %lld\n  finished twice         %lld\n", c->lost, c->twice);
	if (c->stale)
		printf("  done by a stale run    %lld\n", c->stale);
	printf("  runs                   %lld (ok %lld, failed %lld, cut short %lld); %lld items ran again, "
	       "%lld succeeded twice\n", c->runs, c->runs_ok, c->runs_failed, c->runs_cut, c->run_again, c->ok_twice);
	printf("  throughput             %.1f items/s\n", c->throughput);
	print_pcts("wait (add -> claim)", json_object_get(rep, "wait_ms"));
	print_pcts("completion (add -> done)", json_object_get(rep, "completion_ms"));
	printf("  faults                 ");
	for (int k = 0; k < SIM_F_KINDS; k++)
		printf("%s %lld%s", sim_fault_names[k], s->applied[k], k + 1 < SIM_F_KINDS ? ", " : "\n");
	const char *key;
	json_t *p;
	json_object_foreach(json_object_get(rep, "recovery_ms"), key, p) {
		char label[48];
		snprintf(label, sizeof label, "recovery after %s", key);
		print_pcts(label, p);
	}
	printf("  verdict                %s\n", ok ? "ok: nothing lost, nothing finished twice, all finished"
						  : "FAILED (see the lines above on stderr)");
}

static void say_problems(const struct counts *c)
{
	if (c->lost)
		sw_warn("%lld items lost (added, in no state at the end): %s", c->lost, c->why[0]);
	if (c->twice)
		sw_warn("%lld items finished twice: %s", c->twice, c->why[2]);
	if (c->stale)
		sw_warn("%lld items done by a run that no longer held them: %s", c->stale, c->why[3]);
	if (c->unfinished)
		sw_warn("%lld items not finished when the drain ended (--drain): %s", c->unfinished, c->why[1]);
}

int sim_report(struct sim *s)
{
	struct counts c;
	memset(&c, 0, sizeof c);
	if (list_queue(s, &c.damaged))
		return EX_UNAVAILABLE;
	read_agent_outputs(s);
	if (count_all(s, &c) < 0) {
		sw_warn("out of memory");
		return EX_SOFTWARE;
	}
	/* a run that added nothing proved nothing */
	bool none = s->produced > 0 && c.added == 0;
	bool ok = !c.lost && !c.twice && !c.stale && !c.unfinished && !none;
	json_t *rep = report_json(s, &c, ok);
	if (!rep) {
		sw_warn("out of memory");
		return EX_SOFTWARE;
	}
	sw_span_int(s->sp, "sw.sim.added", c.added);
	sw_span_int(s->sp, "sw.sim.finished", c.finished);
	sw_span_int(s->sp, "sw.sim.lost", c.lost);
	sw_span_int(s->sp, "sw.sim.finished_twice", c.twice);
	sw_span_int(s->sp, "sw.sim.faults", (int64_t)s->book.nfaults);
	if (!s->o->quiet) {
		if (s->tty)
			print_summary(s, &c, rep, ok);
		else if (sw_json_print(rep) < 0)
			sw_warn("writing output: %s", strerror(errno));
		if (fflush(stdout) == EOF)
			sw_warn("writing output: %s", strerror(errno));
	}
	json_decref(rep);
	say_problems(&c);
	if (none)
		sw_warn("no add succeeded: see %s/sw-claim.err (--keep DIR keeps it)", s->scratch);
	return ok ? 0 : SW_EX_FALSE;
}
