/* sim_swarm.c — `sw-sim run`: N real sw-agent processes on a queue, a
 * producer that adds items through sw-claim, and the chaos of
 * sim_chaos.c, all driven by one process with poll(2), a signalfd and
 * inotify on the ledger.  The phases:
 *
 *   start  the agents are started, a few at a time
 *   run    items are added (--rate, or --items at once) and faults
 *          injected, for --duration (or until --items are finished)
 *   heal   every fault is lifted: stopped agents go on, the lab's links
 *          come back; adds blocked by a partition finish
 *   drain  until the queue has nothing pending or claimed (sw-claim stats),
 *          then a final reap (sw-claim reap), or until --drain runs out
 *   stop   SIGTERM to every agent, which finishes what it runs and leaves
 *
 * then sim_report.c checks the queue against the ledger. */
#include "sim_int.h"
#include "clock.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "opt.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define SPAWN_BATCH 25                  /* agents started per tick */
#define SPAWN_EVERY (20 * MS)
#define PRODUCE_EVERY (100 * MS)
#define ADD_BATCH_MAX 10000
#define ADDS_AT_ONCE 4
#define STATS_EVERY (1000 * MS)
#define DRAIN_STATS_EVERY (500 * MS)
#define STOP_WAIT (40 * INT64_C(1000000000))
#define QUICK_EXIT (2 * INT64_C(1000000000))   /* an agent gone this soon refused to run */

int64_t sim_now(void) { return sw_now_ns(); }

void sim_fatal(struct sim *s, int code, const char *fmt, ...)
{
	if (s->fatal)
		return;   /* the first reason is the one to tell */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->fatal_msg, sizeof s->fatal_msg, fmt, ap);
	va_end(ap);
	s->fatal = code;
}

bool sim_host_cut(const struct sim *s, int host, int64_t now)
{
	return host >= 0 && host < s->nhosts && now < s->host_part_until[host];
}

/* ---- the event log ---------------------------------------------------- */

void sim_event(struct sim *s, const char *kind, int slot, int host, int64_t at, int64_t until, bool missed)
{
	if (!s->events)
		return;
	json_t *j = json_pack("{s:s,s:I,s:I}", "event", kind, "at_ms", (json_int_t)((at - s->t0) / MS),
			      "host", (json_int_t)host);
	if (!j)
		return;
	if (slot >= 0) {
		json_object_set_new(j, "slot", json_integer(slot));
		int a = s->slots[slot].agent;
		if (a >= 0)
			json_object_set_new(j, "agent", json_string(s->book.agents[a].id));
	}
	if (until > at)
		json_object_set_new(j, "for_ms", json_integer((until - at) / MS));
	if (missed)
		json_object_set_new(j, "missed", json_true());
	size_t n;
	char *line = sw_json_line(j, &n);
	if (line && fwrite(line, 1, n, s->events) != n)
		sw_warn("writing the event log: %s", strerror(errno));
	free(line);
	json_decref(j);
}

/* A fault as a span, a child of the run's: sw-metrics ingest counts them
 * by kind and gives their durations. */
void sim_fault_span(struct sim *s, const struct sim_fault *f)
{
	struct sw_span sp;
	if (!s->sp->on)
		return;
	memset(&sp, 0, sizeof sp);
	sp.on = true;
	sp.dest = s->sp->dest;
	snprintf(sp.name, sizeof sp.name, "sw-sim fault");
	memcpy(sp.trace, s->sp->trace, sizeof sp.trace);
	memcpy(sp.parent, s->sp->id, sizeof sp.parent);
	do sw_rand_hex(sp.id, 8); while (!strcmp(sp.id, "0000000000000000"));
	sp.start_ns = f->at_ns;
	sp.attrs = json_array();
	sw_span_str(&sp, "sw.sim.fault", sim_fault_names[f->kind]);
	sw_span_int(&sp, "sw.sim.host", f->host);
	if (f->agent >= 0)
		sw_span_str(&sp, "sw.agent.id", s->book.agents[f->agent].id);
	if (f->kind == SIM_F_DELAY)
		sw_span_int(&sp, "sw.sim.delay_ms", f->delay_ns / MS);
	sw_span_end(&sp, false, NULL);
}

/* ---- children: sw-claim add/stats/reap, the lab --------------------------- */

static struct sim_child *child_free(struct sim *s)
{
	for (int i = 0; i < SIM_CHILDREN; i++)
		if (!s->ch[i].pid)
			return &s->ch[i];
	return NULL;
}

static int count_children(const struct sim *s, enum sim_child_kind k)
{
	int n = 0;
	for (int i = 0; i < SIM_CHILDREN; i++)
		n += s->ch[i].pid && s->ch[i].kind == k;
	return n;
}

static int open_log(struct sim *s, const char *name)
{
	return openat(s->scratch_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static void close_pair(int p[2])
{
	if (p[0] >= 0) close(p[0]);
	if (p[1] >= 0) close(p[1]);
}

struct sim_child *sim_child_start(struct sim *s, enum sim_child_kind kind, int host, char *const *argv,
				  char *lines, size_t len)
{
	struct sim_child *c = child_free(s);
	if (!c) {
		free(lines);
		return NULL;
	}
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	bool piped_out = kind == CH_ADD || kind == CH_STATS;
	int log = open_log(s, kind == CH_LAB ? "lab.log" : "sw-claim.err");
	if (log < 0 || (kind == CH_ADD && pipe2(in, O_CLOEXEC) < 0) || (piped_out && pipe2(out, O_CLOEXEC) < 0)) {
		sw_warn("cannot start %s: %s", argv[0], strerror(errno));
		if (log >= 0)
			close(log);
		close_pair(in);
		close_pair(out);
		free(lines);
		return NULL;
	}
	pid_t pid = sim_spawn(argv, s->env, in[0], piped_out ? out[1] : log, log, true);
	int e = errno;
	close(log);
	if (in[0] >= 0) close(in[0]);
	if (out[1] >= 0) close(out[1]);
	if (pid < 0) {
		sw_warn("cannot start %s: %s", argv[0], strerror(e));
		if (in[1] >= 0) close(in[1]);
		if (out[0] >= 0) close(out[0]);
		free(lines);
		return NULL;
	}
	memset(c, 0, sizeof *c);
	c->pid = pid;
	c->kind = kind;
	c->host = host;
	c->started_ns = sim_now();
	c->in = in[1];
	c->inbuf = lines;
	c->inlen = len;
	if (c->in >= 0 && fcntl(c->in, F_SETFL, O_NONBLOCK) < 0)
		sw_warn("fcntl: %s", strerror(errno));
	if (piped_out) {
		if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0)
			sw_warn("fcntl: %s", strerror(errno));
		sim_lines_init(&c->out, out[0], 1 << 20);
		c->out_open = true;
	} else {
		c->out.fd = -1;
	}
	return c;
}

static void child_close(struct sim_child *c)
{
	if (c->in >= 0)
		close(c->in);
	if (c->out_open)
		close(c->out.fd);
	sim_lines_free(&c->out);
	free(c->inbuf);
	free(c->acc);
	memset(c, 0, sizeof *c);
	c->in = c->out.fd = -1;
}

static void child_write(struct sim_child *c)
{
	/* EPIPE: it died; its exit status tells */
	if (sw_write_more(c->in, c->inbuf, c->inlen, &c->inoff))
		return;
	close(c->in);
	c->in = -1;
}

/* Keeps a line the child printed; what is kept stays a string (the
 * lines are split with strtok_r). */
static int keep_line(const char *line, size_t n, void *arg)
{
	struct sim_child *c = arg;
	if (c->acclen + n + 2 > c->acccap) {
		size_t cap = c->acccap ? c->acccap * 2 : 4096;
		while (cap < c->acclen + n + 2)
			cap *= 2;
		char *b = realloc(c->acc, cap);
		if (!b)
			return -1;
		c->acc = b;
		c->acccap = cap;
	}
	memcpy(c->acc + c->acclen, line, n);
	c->acc[c->acclen + n] = '\n';
	c->acclen += n + 1;
	c->acc[c->acclen] = 0;
	return 0;
}

static void child_read(struct sim_child *c)
{
	int rc = sim_lines_read(&c->out, keep_line, c);
	if (rc != 0) {
		sim_lines_flush(&c->out, keep_line, c);
		close(c->out.fd);
		c->out.fd = -1;
		c->out_open = false;
	}
}

/* ---- the producer ------------------------------------------------------- */

/* The items an add that exited 0 printed are acknowledged: they must be
 * found at the end. */
static void add_done(struct sim *s, struct sim_child *c, int status)
{
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!ok) {
		s->unacked_batches++;
		sw_warn("an add of %lld items failed (exit %d): they count as not acknowledged",
			c->count, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return;
	}
	/* what was printed, whole, for whoever checks the run (--keep) */
	int fd = open_log(s, "added.jsonl");
	if (fd < 0 || (c->acclen && write(fd, c->acc, c->acclen) != (ssize_t)c->acclen))
		sw_warn("writing added.jsonl: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	char *save = NULL;
	for (char *line = c->acclen ? strtok_r(c->acc, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *j = sw_json_parse(line, strlen(line), NULL);
		const char *id = j ? sw_json_str(j, "id") : NULL;
		int k = id ? sim_item_find(&s->book, id, true) : -1;
		if (k >= 0 && !s->book.items[k].acked) {
			s->book.items[k].acked = true;
			s->book.items[k].added_ns = c->started_ns;
			s->acked++;
		}
		json_decref(j);
	}
}

static int next_host(struct sim *s, int64_t now)
{
	for (int k = 0; k < s->nhosts; k++) {
		int h = (s->next_add_host + k) % s->nhosts;
		if (!s->o->lab || !sim_host_cut(s, h, now)) {
			s->next_add_host = h + 1;
			return h;
		}
	}
	return -1;
}

static void produce(struct sim *s, int64_t now, long long n)
{
	if (n <= 0 || count_children(s, CH_ADD) >= ADDS_AT_ONCE)
		return;
	int h = next_host(s, now);
	if (h < 0)
		return;
	if (n > ADD_BATCH_MAX)
		n = ADD_BATCH_MAX;
	size_t cap = (size_t)n * 21 + 1, len = 0;
	char *lines = malloc(cap);
	if (!lines) {
		sim_fatal(s, EX_SOFTWARE, "out of memory");
		return;
	}
	for (long long i = 1; i <= n; i++)
		len += (size_t)snprintf(lines + len, cap - len, "%lld\n", s->produced + i);
	char attempts[24];
	snprintf(attempts, sizeof attempts, "%d", s->o->max_attempts);
	char *argv[] = { s->claim_prog, "add", "-d", s->dirs[h], "-q", s->queue, "--lines",
			 "--max-attempts", attempts, NULL };
	struct sim_child *c = sim_child_start(s, CH_ADD, h, argv, lines, len);
	if (!c)
		return;
	c->count = n;
	s->produced += n;
}

/* Without --rate, the producer waits while the queue's backlog is more
 * than a quarter of what the agents can hold: the run then measures what
 * this swarm sustains on this machine instead of drowning it (the time
 * held is reported).  A --rate given is kept, whatever the backlog. */
static bool held(struct sim *s)
{
	if (s->o->rate > 0 || !s->st.valid)
		return false;
	long long limit = (long long)s->nslots * s->o->jobs / 4;
	return s->st.pending + s->st.delayed > (limit < 10 ? 10 : limit);
}

static void producer_step(struct sim *s, int64_t now)
{
	if (s->phase != PH_RUN || now < s->next_produce)
		return;
	int64_t step = now - (s->next_produce - PRODUCE_EVERY);
	s->next_produce = now + PRODUCE_EVERY;
	if (!s->o->items && held(s)) {
		s->held_ns += step;
		return;
	}
	long long want;
	if (s->o->items)
		want = s->o->items;
	else
		want = (long long)(s->rate * (double)(now - s->t0 - s->held_ns) / 1e9);
	produce(s, now, want - s->produced);
}

/* ---- agents ------------------------------------------------------------- */

static const char *agent_id(const struct sim *s, int slot, int inc, char *buf, size_t n)
{
	snprintf(buf, n, "%s-%d-%d", s->runid, slot, inc);
	return buf;
}

static int tail_for(struct sim *s, int agent)
{
	if ((size_t)agent < s->ntails)
		return 0;
	size_t n = s->ntails ? s->ntails * 2 : 1024;
	while (n <= (size_t)agent)
		n *= 2;
	struct sim_tail *t = realloc(s->tails, n * sizeof *t);
	if (!t)
		return -1;
	for (size_t i = s->ntails; i < n; i++) {
		t[i].fd = -1;
		sim_lines_init(&t[i].l, -1, SIM_LINE_MAX);
	}
	s->tails = t;
	s->ntails = n;
	return 0;
}

static void spawn_agent(struct sim *s, int slot, int64_t now)
{
	struct sim_slot *sl = &s->slots[slot];
	char id[64], name[80], ttl[32], jobs[16], batch[16];
	agent_id(s, slot, sl->inc, id, sizeof id);
	int a = sim_agent_new(&s->book, id, slot, sl->host, sl->inc, sl->agent, now);
	if (a < 0 || tail_for(s, a) < 0) {
		sim_fatal(s, EX_SOFTWARE, "out of memory");
		return;
	}
	snprintf(name, sizeof name, "%s.out", id);
	int out = openat(s->agents_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	snprintf(name, sizeof name, "%s.err", id);
	int err = openat(s->agents_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	snprintf(ttl, sizeof ttl, "%lldms", (long long)(s->o->ttl_ns / MS));
	snprintf(jobs, sizeof jobs, "%d", s->o->jobs);
	snprintf(batch, sizeof batch, "%d", s->o->batch);
	char *argv[24];
	int k = 0;
	argv[k++] = s->agent_prog;
	argv[k++] = "run";
	argv[k++] = "-d"; argv[k++] = s->dirs[sl->host % s->nhosts];
	argv[k++] = "-q"; argv[k++] = s->queue;
	argv[k++] = "--id"; argv[k++] = id;
	argv[k++] = "--ttl"; argv[k++] = ttl;
	argv[k++] = "-j"; argv[k++] = jobs;
	if (s->o->batch) { argv[k++] = "--batch"; argv[k++] = batch; }
	if (s->o->affinity) argv[k++] = "--affinity";
	argv[k++] = "--";
	argv[k++] = s->self_prog;
	argv[k++] = "job";
	argv[k] = NULL;
	char **env = slot < s->inotify_agents ? s->env : s->env_poll;
	pid_t pid = out < 0 || err < 0 ? -1 : sim_spawn(argv, env, -1, out, err, true);
	int e = errno;
	if (out >= 0) close(out);
	if (err >= 0) close(err);
	if (pid < 0) {
		sim_fatal(s, EX_UNAVAILABLE, "cannot start %s: %s", s->agent_prog, strerror(e));
		return;
	}
	sl->pid = pid;
	sl->worker = 0;
	sl->agent = a;
	sl->inc++;
	sl->stopped = sl->killed = sl->termed = false;
	sl->stop_until = 0;
	sl->restart_at = 0;
	sl->fault = -1;
}

static void spawn_step(struct sim *s, int64_t now)
{
	if (s->phase == PH_START && now >= s->next_spawn) {
		for (int k = 0; k < SPAWN_BATCH && s->next_spawn_slot < s->nslots && !s->fatal; k++)
			spawn_agent(s, s->next_spawn_slot++, now);
		s->next_spawn = now + SPAWN_EVERY;
	}
	if (s->phase >= PH_STOP)
		return;
	for (int i = 0; i < s->nslots && !s->fatal; i++) {
		struct sim_slot *sl = &s->slots[i];
		if (!sl->pid && sl->restart_at && now >= sl->restart_at && !sim_host_cut(s, sl->host, now)) {
			s->restarts++;
			spawn_agent(s, i, now);
		}
	}
}

/* The last line of an agent's stderr, to say why it left. */
static void last_err_line(struct sim *s, int agent, char *out, size_t n)
{
	char name[80], buf[2048];
	snprintf(name, sizeof name, "%s.err", s->book.agents[agent].id);
	out[0] = 0;
	int fd = openat(s->agents_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
	ssize_t r = pread(fd, buf, sizeof buf - 1, from);
	close(fd);
	if (r <= 0)
		return;
	buf[r] = 0;
	while (r > 0 && buf[r - 1] == '\n')
		buf[--r] = 0;
	char *nl = strrchr(buf, '\n');
	snprintf(out, n, "%s", nl ? nl + 1 : buf);
}

static void agent_exited(struct sim *s, int slot, int status, int64_t now)
{
	struct sim_slot *sl = &s->slots[slot];
	struct sim_agent *a = &s->book.agents[sl->agent];
	a->end_ns = now;
	sl->pid = 0;
	sl->worker = 0;
	sl->stopped = false;
	if (s->phase >= PH_STOP)
		return;
	if (!sl->killed) {
		s->exits++;
		char why[512];
		last_err_line(s, sl->agent, why, sizeof why);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (now - a->start_ns < QUICK_EXIT && (code == EX_USAGE || code == EX_UNAVAILABLE ||
						       code == EX_SOFTWARE || code == EX_OSERR)) {
			sim_fatal(s, EX_UNAVAILABLE, "sw-agent %s exited at once with status %d: %s", a->id, code,
				  *why ? why : "(nothing on its stderr)");
			return;
		}
		sw_warn("agent %s exited by itself (status %d): %s; starting another", a->id, code, why);
	}
	/* a host cut off starts nothing until it is back */
	sl->restart_at = now > s->host_part_until[sl->host] ? now : s->host_part_until[sl->host];
}

/* ---- the ledger ----------------------------------------------------------- */

struct ledger_arg { struct sim *s; int agent; };

static int ledger_line(const char *line, size_t n, void *arg)
{
	struct ledger_arg *la = arg;
	struct sim *s = la->s;
	struct sim_ledger_line l;
	if (sim_ledger_parse(line, n, &l) < 0) {
		s->book.ledger_bad++;
		return 0;
	}
	if (sim_book_ledger(&s->book, la->agent, &l) < 0) {
		sim_fatal(s, EX_SOFTWARE, "out of memory");
		return -1;
	}
	int k = sim_item_find(&s->book, l.id, false);
	const struct sim_item *it = k >= 0 ? &s->book.items[k] : NULL;
	if (l.kind == 'S') {
		s->runs_started++;
		if (it && it->added_ns && it->runs == 1)
			sim_window_add(s->win_wait, &s->nwin_wait, l.ns - it->added_ns);
	} else if (l.ok) {
		s->runs_ok++;
		if (it && it->added_ns)
			sim_window_add(s->win_done, &s->nwin_done, l.ns - it->added_ns);
	} else {
		s->job_fails++;
	}
	return 0;
}

/* Reads what agent a's ledger has gained. */
static void tail_read(struct sim *s, int a)
{
	struct sim_tail *t = &s->tails[a];
	if (t->fd < 0) {
		t->fd = openat(s->ledger_fd, s->book.agents[a].id, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (t->fd < 0)
			return;
		t->l.fd = t->fd;
	}
	struct ledger_arg la = { s, a };
	if (sim_lines_read(&t->l, ledger_line, &la) < 0)
		sw_warn("reading the ledger of %s: %s", s->book.agents[a].id, strerror(errno));
}

/* The agent a ledger file is named after: "<runid>-<slot>-<inc>". */
static int agent_of_name(const struct sim *s, const char *name)
{
	size_t rl = strlen(s->runid);
	if (strncmp(name, s->runid, rl) || name[rl] != '-')
		return -1;
	char *end;
	long slot = strtol(name + rl + 1, &end, 10);
	if (*end != '-' || slot < 0 || slot >= s->nslots)
		return -1;
	return sim_agent_by_id(&s->book, s->slots[slot].agent, name);
}

static void inotify_events(struct sim *s)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(s->ifd, buf, sizeof buf);
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				for (size_t a = 0; a < s->book.nagents; a++)
					tail_read(s, (int)a);
				continue;
			}
			int a = ev->len ? agent_of_name(s, ev->name) : -1;
			if (a >= 0)
				tail_read(s, a);
		}
	}
}

void sim_ledger_finish(struct sim *s)
{
	for (size_t a = 0; a < s->book.nagents; a++) {
		tail_read(s, (int)a);
		struct ledger_arg la = { s, (int)a };
		sim_lines_flush(&s->tails[a].l, ledger_line, &la);
	}
}

/* ---- stats, reap ------------------------------------------------------- */

static int stats_host(struct sim *s, int64_t now)
{
	for (int h = 0; h < s->nhosts; h++)
		if (!s->o->lab || !sim_host_cut(s, h, now))
			return h;
	return -1;
}

static void stats_start(struct sim *s, int64_t now)
{
	int h = stats_host(s, now);
	if (h < 0 || count_children(s, CH_STATS))
		return;
	char *argv[] = { s->claim_prog, "stats", "-d", s->dirs[h], "-q", s->queue, NULL };
	sim_child_start(s, CH_STATS, h, argv, NULL, 0);
}

static void stats_done(struct sim *s, struct sim_child *c, int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !c->acclen)
		return;
	json_t *j = sw_json_parse(c->acc, strcspn(c->acc, "\n"), NULL);
	if (!j)
		return;
	struct sim_stats *st = &s->st;
	st->pending = sw_json_int(j, "pending", 0);
	st->delayed = sw_json_int(j, "delayed", 0);
	st->blocked = sw_json_int(j, "blocked", 0);
	st->claimed = sw_json_int(j, "claimed", 0);
	st->done = sw_json_int(j, "done", 0);
	st->dead = sw_json_int(j, "dead", 0);
	st->cancelled = sw_json_int(j, "cancelled", 0);
	st->in_flight = sw_json_int(j, "in_flight", 0);
	st->valid = true;
	st->at_ns = c->started_ns;
	json_decref(j);
}

static bool queue_empty(const struct sim *s)
{
	const struct sim_stats *st = &s->st;
	return st->valid && st->at_ns >= s->drain_stats_after &&
	       st->pending + st->delayed + st->blocked + st->claimed + st->in_flight == 0;
}

/* ---- reaping children ---------------------------------------------------- */

static void child_exited(struct sim *s, struct sim_child *c, int status)
{
	enum sim_child_kind kind = c->kind;
	if (c->out_open)
		child_read(c);
	switch (c->kind) {
	case CH_ADD: add_done(s, c, status); break;
	case CH_STATS: stats_done(s, c, status); break;
	case CH_REAP:
		s->reaped_once = true;
		s->drain_stats_after = sim_now();
		break;
	case CH_LAB: sim_lab_exited(s, c, status); break;
	}
	child_close(c);
	if (kind == CH_LAB)
		sim_lab_next(s);
}

static void reap(struct sim *s, bool block)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, block ? 0 : WNOHANG)) > 0) {
		int64_t now = sim_now();
		bool found = false;
		for (int i = 0; i < SIM_CHILDREN && !found; i++) {
			if (s->ch[i].pid == pid) {
				found = true;
				struct sim_child c = s->ch[i];
				s->ch[i].pid = 0;
				/* the copy holds the buffers; the slot is free for
				 * what the handler starts (the next lab command) */
				memset(&s->ch[i], 0, sizeof s->ch[i]);
				s->ch[i].in = s->ch[i].out.fd = -1;
				child_exited(s, &c, st);
			}
		}
		for (int i = 0; i < s->nslots && !found; i++)
			if (s->slots[i].pid == pid) {
				found = true;
				agent_exited(s, i, st, now);
			}
		/* else: a process reparented to us (we are a subreaper) */
	}
}

/* ---- phases --------------------------------------------------------------- */

static bool all_finished_items(const struct sim *s)
{
	return s->o->items && s->acked == s->o->items && s->st.valid &&
	       s->st.done + s->st.dead + s->st.cancelled >= s->o->items &&
	       s->st.pending + s->st.claimed + s->st.delayed + s->st.in_flight == 0;
}

static void stop_agents(struct sim *s, int64_t now)
{
	s->phase = PH_STOP;
	s->t_stop = now;
	s->stop_deadline = now + STOP_WAIT;
	for (int i = 0; i < s->nslots; i++) {
		struct sim_slot *sl = &s->slots[i];
		sl->restart_at = 0;
		if (!sl->pid)
			continue;
		if (sl->stopped && sl->worker > 0)
			(void)kill(sl->worker, SIGCONT);
		sl->stopped = false;
		(void)kill(sl->pid, SIGTERM);   /* ESRCH: it just exited */
		sl->termed = true;
	}
}

/* SIGKILL to everything: an agent's worker is in a process group of its
 * own, so it is killed by its pid, before its guardian. */
static void kill_all(struct sim *s)
{
	for (int i = 0; i < s->nslots; i++) {
		struct sim_slot *sl = &s->slots[i];
		if (!sl->pid)
			continue;
		pid_t w = sl->worker ? sl->worker : sim_worker_of(sl->pid, "sw-agent");
		if (w > 0)
			(void)kill(w, SIGKILL);
		(void)kill(sl->pid, SIGKILL);
	}
	for (int i = 0; i < SIM_CHILDREN; i++)
		if (s->ch[i].pid)
			(void)kill(-s->ch[i].pid, SIGKILL);
}

static bool anything_left(const struct sim *s)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].pid)
			return true;
	for (int i = 0; i < SIM_CHILDREN; i++)
		if (s->ch[i].pid)
			return true;
	return false;
}

static void phase_step(struct sim *s, int64_t now)
{
	switch (s->phase) {
	case PH_START:
		if (s->next_spawn_slot == s->nslots) {
			s->phase = PH_RUN;
			s->t0 = now;
			s->t_end = now + s->o->duration_ns;
			s->next_produce = now;
			s->prev_done_at = now;
			sim_chaos_start(s, now);
		}
		break;
	case PH_RUN:
		if (now >= s->t_end || s->signals || all_finished_items(s)) {
			s->phase = PH_HEAL;
			s->t_heal = now;
		}
		break;
	case PH_HEAL:
		if (sim_chaos_lift(s, now) && !count_children(s, CH_ADD)) {
			if (s->signals) {
				stop_agents(s, now);
				break;
			}
			s->phase = PH_DRAIN;
			s->drain_deadline = now + s->o->drain_ns;
			s->drain_stats_after = now;
			s->next_stats = now;
		}
		break;
	case PH_DRAIN:
		if (s->signals || now >= s->drain_deadline) {
			stop_agents(s, now);
		} else if (queue_empty(s) && !count_children(s, CH_REAP)) {
			if (s->reaped_once) {
				stop_agents(s, now);
			} else {
				char *argv[] = { s->claim_prog, "reap", "-d", s->dirs[0], "-q", s->queue, NULL };
				if (!sim_child_start(s, CH_REAP, 0, argv, NULL, 0))
					s->reaped_once = true;
			}
		}
		break;
	case PH_STOP:
		if (!anything_left(s))
			s->phase = PH_DONE;
		else if (now >= s->stop_deadline) {
			sw_warn("agents still running %llds after SIGTERM: killing them",
				(long long)(STOP_WAIT / SW_NS_PER_SEC));
			kill_all(s);
			s->stop_deadline = INT64_MAX;
		}
		break;
	case PH_DONE:
		break;
	}
}

static void timers(struct sim *s, int64_t now)
{
	spawn_step(s, now);
	producer_step(s, now);
	if (s->phase == PH_RUN)
		sim_chaos_step(s, now);
	if ((s->phase == PH_RUN || s->phase == PH_DRAIN || s->phase == PH_HEAL) && now >= s->next_stats) {
		s->next_stats = now + (s->phase == PH_DRAIN ? DRAIN_STATS_EVERY : STATS_EVERY);
		stats_start(s, now);
	}
	if (s->ifd < 0 && s->phase >= PH_RUN)
		for (size_t a = 0; a < s->book.nagents; a++)
			tail_read(s, (int)a);
	if (s->o->stats_every_ns && s->phase >= PH_RUN && s->phase < PH_DONE && now >= s->next_stats_every) {
		s->next_stats_every = now + s->o->stats_every_ns;
		sim_stats_line(s, now);
	}
	if (s->live && now >= s->next_live) {
		s->next_live = now + 250 * MS;
		sim_live(s, now, false);
	}
	phase_step(s, now);
}

static int64_t next_deadline(const struct sim *s, int64_t now)
{
	int64_t t = now + 250 * MS;
	if (s->phase == PH_START && s->next_spawn < t)
		t = s->next_spawn;
	if (s->phase == PH_RUN) {
		if (s->next_produce < t) t = s->next_produce;
		int64_t c = sim_chaos_next(s);
		if (c < t) t = c;
	}
	for (int i = 0; i < s->nslots; i++) {
		const struct sim_slot *sl = &s->slots[i];
		if (sl->stopped && sl->stop_until < t) t = sl->stop_until;
		if (!sl->pid && sl->restart_at && sl->restart_at < t) t = sl->restart_at;
	}
	return t < now ? now : t;
}

/* ---- signals ---------------------------------------------------------------- */

static void on_signal(struct sim *s, int sig)
{
	if (sig == SIGCHLD)
		return;
	if (sig == s->guard->sig) {
		if (!sw_guard_lost(s->guard) || s->orphaned)
			return;
		/* the process the user started was killed: whoever did it
		 * wants the swarm gone now */
		s->orphaned = true;
		s->signals = 2;
	} else if (sig == SIGINT || sig == SIGTERM) {
		s->signals++;
	} else {
		return;
	}
	if (s->signals == 1) {
		sw_warn("stopping: faults lifted, agents told to finish (again to kill them now)");
		return;
	}
	s->phase = PH_STOP;   /* what dies now is not restarted */
	kill_all(s);
	sim_lab_heal_now(s);
	if (s->orphaned)
		sim_fatal(s, 128 + SIGKILL, "the process started (%ld) was killed: the swarm was killed too",
			  (long)s->guard->guardian);
	else
		sim_fatal(s, 128 + sig, "stopped by a second signal %d: the swarm was killed", sig);
}

/* ---- the loop ------------------------------------------------------------ */

static void handle(struct sim *s, struct pollfd *pf, struct sim_child **who, int n)
{
	for (int k = 0; k < n; k++) {
		if (!pf[k].revents)
			continue;
		if (k == 0) {
			struct signalfd_siginfo si;
			while (read(s->sfd, &si, sizeof si) == sizeof si)
				on_signal(s, (int)si.ssi_signo);
		} else if (who[k] == NULL) {
			inotify_events(s);
		} else if (pf[k].events & POLLOUT) {
			if (who[k]->in >= 0)
				child_write(who[k]);
		} else if (who[k]->out_open) {
			child_read(who[k]);
		}
	}
}

static void loop(struct sim *s)
{
	struct pollfd pf[2 + 2 * SIM_CHILDREN];
	struct sim_child *who[2 + 2 * SIM_CHILDREN];
	while (s->phase != PH_DONE && !s->fatal) {
		int64_t now = sim_now();
		timers(s, now);
		if (s->phase == PH_DONE || s->fatal)
			break;
		int n = 0;
		pf[n] = (struct pollfd){ .fd = s->sfd, .events = POLLIN }; who[n++] = NULL;
		if (s->ifd >= 0) {
			pf[n] = (struct pollfd){ .fd = s->ifd, .events = POLLIN }; who[n++] = NULL;
		}
		for (int i = 0; i < SIM_CHILDREN; i++) {
			struct sim_child *c = &s->ch[i];
			if (!c->pid)
				continue;
			if (c->in >= 0) {
				pf[n] = (struct pollfd){ .fd = c->in, .events = POLLOUT }; who[n++] = c;
			}
			if (c->out_open) {
				pf[n] = (struct pollfd){ .fd = c->out.fd, .events = POLLIN }; who[n++] = c;
			}
		}
		int64_t wait = next_deadline(s, now) - sim_now();
		int ms = wait <= 0 ? 0 : (int)((wait + MS - 1) / MS);
		if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) {
			sim_fatal(s, EX_OSERR, "poll: %s", strerror(errno));
			break;
		}
		handle(s, pf, who, n);
		reap(s, false);
	}
}

/* ---- setting up --------------------------------------------------------- */

static int mkdir_in(int dfd, const char *name)
{
	return mkdirat(dfd, name, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static int setup_scratch(struct sim *s)
{
	const struct sim_run_opts *o = s->o;
	if (o->keep) {
		if (mkdir(o->keep, 0700) < 0 && errno != EEXIST)
			return -1;
		snprintf(s->scratch, sizeof s->scratch, "%s", o->keep);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(s->scratch, sizeof s->scratch, "%s/sw-sim.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(s->scratch))
			return -1;
		s->scratch_made = true;
	}
	s->scratch_fd = open(s->scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->scratch_fd < 0 || mkdir_in(s->scratch_fd, "ledger") < 0 || mkdir_in(s->scratch_fd, "agents") < 0)
		return -1;
	s->ledger_fd = openat(s->scratch_fd, "ledger", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->agents_fd = openat(s->scratch_fd, "agents", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->ledger_fd < 0 || s->agents_fd < 0)
		return -1;
	s->events = fdopen(openat(s->scratch_fd, "events.jsonl", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600), "a");
	if (!s->events)
		return -1;
	setvbuf(s->events, NULL, _IOLBF, 0);
	return 0;
}

/* Whether path is a mount point: its device differs from its parent's. */
static bool mount_point(const char *path)
{
	char parent[PATH_MAX + 4];
	struct stat a, b;
	snprintf(parent, sizeof parent, "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static void lab_mount(char *out, size_t n, const char *env, const char *leaf)
{
	const char *v = getenv(env), *dir = getenv("SW_MH_DIR"), *name = getenv("SW_LAB_NAME");
	if (v && *v)
		snprintf(out, n, "%s", v);
	else if (dir && *dir)
		snprintf(out, n, "%s/%s", dir, leaf);
	else
		snprintf(out, n, "/tmp/%s/%s", name && *name ? name : "sw-mh", leaf);
}

static int setup_lab(struct sim *s)
{
	const struct sim_run_opts *o = s->o;
	if (o->lab_script) {
		snprintf(s->lab_prog, sizeof s->lab_prog, "%s", o->lab_script);
	} else {
		char self[PATH_MAX];
		sim_prog_path("sw-sim", self);
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = 0;
		snprintf(s->lab_prog, sizeof s->lab_prog, "%s/../tests/lab/lab", slash ? self : ".");
	}
	if (access(s->lab_prog, X_OK) < 0) {
		sim_fatal(s, EX_UNAVAILABLE, "--lab: no lab script at %s (--lab=SCRIPT names it)", s->lab_prog);
		return -1;
	}
	char a[PATH_MAX], b[PATH_MAX];
	lab_mount(a, sizeof a, "SW_MH_A", "mnt-a");
	lab_mount(b, sizeof b, "SW_MH_B", "mnt-b");
	if (!mount_point(a) || !mount_point(b)) {
		sim_fatal(s, EX_UNAVAILABLE, "--lab: %s and %s are not mounted: is the lab up "
			  "(SW_LAB_NAME=NAME tests/lab/lab up)?", a, b);
		return -1;
	}
	snprintf(s->labsub, sizeof s->labsub, "%s/sw-sim.%s", a, s->runid);
	if (mkdir(s->labsub, 0700) < 0) {
		sim_fatal(s, sw_ex_errno(errno), "--lab: cannot make %s: %s", s->labsub, strerror(errno));
		return -1;
	}
	snprintf(s->dirs[0], sizeof s->dirs[0], "%s/ws", s->labsub);
	snprintf(s->dirs[1], sizeof s->dirs[1], "%s/sw-sim.%s/ws", b, s->runid);
	s->nhosts = 2;
	return 0;
}

static void setup_dirs(struct sim *s)
{
	const struct sim_run_opts *o = s->o;
	if (o->ndirs) {
		for (int i = 0; i < o->ndirs; i++)
			snprintf(s->dirs[i], sizeof s->dirs[i], "%s", o->dirs[i]);
		s->nhosts = o->ndirs;
	} else {
		snprintf(s->dirs[0], sizeof s->dirs[0], "%s/ws", s->scratch);
		s->nhosts = 1;
	}
	/* one workspace: the agents still form two "hosts" for partitions */
	if (s->nhosts == 1 && o->agents >= 2) {
		snprintf(s->dirs[1], sizeof s->dirs[1], "%s", s->dirs[0]);
		s->nhosts = 2;
	}
}

/* How many agents may wait with inotify: an eighth of the instances one
 * user may have (fs.inotify.max_user_instances, 128 by default), so that
 * a swarm of a thousand leaves the rest to the user's other programs.
 * The others poll, as agents do where inotify is to be had no more. */
static int inotify_budget(void)
{
	long max = 128;
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_instances", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 128;
		fclose(f);
	}
	return max >= 16 ? (int)(max / 8) : 1;
}

static int setup_env(struct sim *s)
{
#define DROP "SW_SPANS=", "TRACEPARENT=", SIM_ENV_LEDGER "=", SIM_ENV_JOB "=", "SW_DIR=", "SW_QUEUE="
	static const char *const drop[] = { DROP, NULL }, *const drop_poll[] = { DROP, "SW_INOTIFY=", NULL };
#undef DROP
	const struct sim_run_opts *o = s->o;
	struct sim_job_params p = { o->job_min_ns, o->job_max_ns, (uint32_t)(o->job_fail * 1e6 + 0.5), s->seed };
	char job[128], tp[SW_TRACEPARENT_LEN];
	sim_job_env(&p, job, sizeof job);
	size_t n = 0;
	if (asprintf(&s->envadd[n++], "%s=%s/ledger", SIM_ENV_LEDGER, s->scratch) < 0 ||
	    asprintf(&s->envadd[n++], "%s=%s", SIM_ENV_JOB, job) < 0)
		return -1;
	/* the agents' spans join the run's trace, when they go to a file
	 * (on stdout they would mix with the agents' result lines) */
	if (s->sp->on && s->sp->dest && strcmp(s->sp->dest, "stdout") && strcmp(s->sp->dest, "stderr")) {
		sw_span_child_env(s->sp, tp);
		if (asprintf(&s->envadd[n++], "SW_SPANS=%s", s->sp->dest) < 0 ||
		    asprintf(&s->envadd[n++], "TRACEPARENT=%s", tp) < 0)
			return -1;
	}
	s->env = sim_env(drop, s->envadd, n);
	if (!s->env)
		return -1;
	/* the agents past the budget poll: the same environment, with
	 * SW_INOTIFY=off */
	static char off[] = "SW_INOTIFY=off";
	char *add[sizeof s->envadd / sizeof s->envadd[0] + 1];
	memcpy(add, s->envadd, n * sizeof *add);
	add[n] = off;
	s->env_poll = sim_env(drop_poll, add, n + 1);
	s->inotify_agents = inotify_budget();
	return s->env_poll ? 0 : -1;
}

static int setup_signals(struct sim *s)
{
	return (s->sfd = sw_guard_signalfd(s->guard)) < 0 ? -1 : 0;
}

static double default_rate(const struct sim_run_opts *o)
{
	/* half of what the agents can do by job time alone, so that the
	 * queue stays short and the drain quick; at most 200/s */
	double mean = (double)(o->job_min_ns + o->job_max_ns) / 2e9;
	if (mean < 0.001)
		mean = 0.001;
	double r = (double)o->agents * o->jobs / mean / 2;
	return r > 200 ? 200 : r < 0.5 ? 0.5 : r;
}

static int setup(struct sim *s)
{
	const struct sim_run_opts *o = s->o;
	char rnd[7];
	sw_rand_hex(rnd, 3);
	snprintf(s->runid, sizeof s->runid, "sim%s", rnd);
	snprintf(s->queue, sizeof s->queue, "%s", s->runid);
	s->seed = o->seeded ? o->seed : ((uint64_t)sw_rand32() << 32 | sw_rand32());
	sim_rng_seed(&s->rng_kill, s->seed, 1);
	sim_rng_seed(&s->rng_stall, s->seed, 2);
	sim_rng_seed(&s->rng_lat, s->seed, 3);
	sim_rng_seed(&s->rng_part, s->seed, 4);
	sim_rng_seed(&s->rng_delay, s->seed, 5);
	s->rate = o->rate > 0 ? o->rate : default_rate(o);
	s->part_fault = s->delay_fault[0] = s->delay_fault[1] = -1;
	sim_prog_path("sw-agent", s->agent_prog);
	sim_prog_path("sw-claim", s->claim_prog);
	ssize_t n = readlink("/proc/self/exe", s->self_prog, sizeof s->self_prog - 1);
	if (n <= 0) {
		sim_fatal(s, EX_OSERR, "cannot find this program (/proc/self/exe): %s", strerror(errno));
		return -1;
	}
	s->self_prog[n] = 0;
	if (setup_scratch(s) < 0) {
		sim_fatal(s, sw_ex_errno(errno), "cannot make the scratch directory %s: %s", s->scratch,
			  strerror(errno));
		return -1;
	}
	if (o->lab) {
		if (setup_lab(s) < 0)
			return -1;
	} else {
		setup_dirs(s);
	}
	if (!o->ndirs && !o->lab && mkdir(s->dirs[0], 0700) < 0 && errno != EEXIST) {
		sim_fatal(s, sw_ex_errno(errno), "cannot make %s: %s", s->dirs[0], strerror(errno));
		return -1;
	}
	s->nslots = o->agents;
	s->slots = calloc((size_t)s->nslots, sizeof *s->slots);
	if (!s->slots || setup_env(s) < 0) {
		sim_fatal(s, EX_SOFTWARE, "out of memory");
		return -1;
	}
	for (int i = 0; i < s->nslots; i++) {
		s->slots[i].agent = s->slots[i].fault = -1;
		s->slots[i].host = i % s->nhosts;
	}
	if (setup_signals(s) < 0) {
		sim_fatal(s, EX_OSERR, "signals: %s", strerror(errno));
		return -1;
	}
	s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ifd >= 0) {
		char led[PATH_MAX + 8];
		snprintf(led, sizeof led, "%s/ledger", s->scratch);
		if (inotify_add_watch(s->ifd, led, IN_MODIFY | IN_CREATE) < 0) {
			close(s->ifd);
			s->ifd = -1;   /* then the ledger is read on every tick */
		}
	}
	s->tty = isatty(1) && !o->json;
	s->live = isatty(2) && !o->quiet;
	s->t_start = sim_now();
	s->next_spawn = s->t_start;
	return 0;
}

static void teardown(struct sim *s)
{
	if (s->events)
		fclose(s->events);
	for (size_t a = 0; a < s->ntails; a++) {
		if (s->tails[a].fd >= 0)
			close(s->tails[a].fd);
		sim_lines_free(&s->tails[a].l);
	}
	free(s->tails);
	if (s->scratch_made && sim_rmtree(AT_FDCWD, s->scratch) < 0)
		sw_warn("cannot remove %s: %s", s->scratch, strerror(errno));
	if (s->o->lab && *s->labsub && !s->o->keep && sim_rmtree(AT_FDCWD, s->labsub) < 0)
		sw_warn("cannot remove %s: %s", s->labsub, strerror(errno));
	if (s->ledger_fd > 0) close(s->ledger_fd);
	if (s->agents_fd > 0) close(s->agents_fd);
	if (s->scratch_fd > 0) close(s->scratch_fd);
	if (s->ifd >= 0) close(s->ifd);
	if (s->sfd >= 0) close(s->sfd);
	for (size_t i = 0; i < sizeof s->envadd / sizeof s->envadd[0]; i++)
		free(s->envadd[i]);
	free(s->env);
	free(s->env_poll);
	free(s->slots);
	sim_book_free(&s->book);
}

int sim_run(const struct sim_run_opts *o, struct sw_span *sp)
{
	struct sw_guard g;
	sigset_t fwd;
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGHUP);
	/* the one fork: the process the user started passes signals on, and
	 * kills the swarm should this one be killed */
	if (sw_guard_start(&g, &fwd, NULL) < 0) {
		sw_warn("starting the guardian process: %s", strerror(errno));
		return EX_OSERR;
	}
	struct sim *s = calloc(1, sizeof *s);
	if (!s) {
		sw_warn("out of memory");
		return EX_SOFTWARE;
	}
	s->o = o;
	s->sp = sp;
	s->guard = &g;
	s->sfd = s->ifd = -1;
	for (int i = 0; i < SIM_CHILDREN; i++)
		s->ch[i].in = s->ch[i].out.fd = -1;
	int rc = 0;
	if (setup(s) == 0) {
		loop(s);
		if (s->fatal) {
			s->phase = PH_STOP;
			kill_all(s);
			sim_lab_heal_now(s);
			while (anything_left(s))
				reap(s, true);
		}
		if (s->live)
			sim_live(s, sim_now(), true);
		sim_ledger_finish(s);
		rc = s->fatal && s->fatal < 128 ? 0 : sim_report(s);
	}
	if (s->fatal) {
		sw_warn("%s", s->fatal_msg);
		rc = s->fatal;
	}
	teardown(s);
	free(s);
	return rc;
}
