/* agent_claim.c — claiming and starting for `sw-agent run`
 * (agent_run_int.h): one item or a batch to a free slot, --log-dir,
 * SW_DEPS_RESULTS, and the --affinity ring. */
#include "agent_run_int.h"
#include "agent.h"
#include "clock.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESULT_MAX (64 * 1024)    /* stdout kept as the result */
#define DUE_MIN_NS (50 * 1000000)        /* looks for due items no more often */
/* --affinity reads the agents again when their directory changed, no more
 * often than this plus RING_PER_NODE_NS a member (a big ring costs more) */
#define RING_MIN_NS (SW_NS_PER_SEC / 4)
#define RING_PER_NODE_NS (5 * 1000000)

/* ---- claiming and starting ------------------------------------------- */

/* --log-dir: made if missing, with the umask sw was started with (the
 * logs are the user's, not the workspace's); its absolute path goes into
 * the result lines. */
int run_open_log_dir(struct run *r)
{
	const char *d = r->o->log_dir;
	char cwd[PATH_MAX];
	if (d[0] == '/' || !getcwd(cwd, sizeof cwd))
		snprintf(r->logpath, sizeof r->logpath, "%s", d);
	else
		snprintf(r->logpath, sizeof r->logpath, "%s/%s", cwd, d);
	mode_t ours = umask(sw_ws_user_umask(r->ws));
	if (mkdir(d, 0777) < 0 && errno != EEXIST) {
		int e = errno;
		umask(ours);
		return sw_err_set(&r->fail, sw_ex_errno(e) == EX_NOPERM ? EX_NOPERM : EX_CANTCREAT,
				  "--log-dir %s: %s", r->logpath, strerror(e));
	}
	umask(ours);
	r->logdir = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->logdir < 0)
		return sw_err_set(&r->fail, sw_ex_errno(errno), "--log-dir %s: %s", r->logpath, strerror(errno));
	return 0;
}

/* DIR/<id>.<attempt>.log, appended to: an attempt that runs again (its
 * item released, which counts no attempt) adds to the same log. */
static void open_log(struct run *r, struct slot *s)
{
	char name[SW_NAME_MAX + 32];
	snprintf(name, sizeof name, "%s.%lld.log", s->id, s->attempt);
	if (asprintf(&s->logname, "%s/%s", r->logpath, name) < 0) {
		s->logname = NULL;
		run_out_of_memory(r);
		return;
	}
	mode_t ours = umask(sw_ws_user_umask(r->ws));
	s->flog = openat(r->logdir, name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0666);
	umask(ours);
	if (s->flog < 0)
		sw_warn("item %s: cannot write its log %s: %s", s->id, s->logname, strerror(errno));
}

static struct slot *free_slot(struct run *r)
{
	for (int i = 0; i < r->o->jobs; i++)
		if (!r->slots[i].pid)
			return &r->slots[i];
	return NULL;
}

/* An item whose command cannot be started for a reason of its own (its
 * payload) fails alone, and the agent goes on with the next. */
static void fail_alone(struct run *r, struct slot *s, const char *reason)
{
	char why[256];
	json_t *out = NULL;
	snprintf(why, sizeof why, "its payload cannot be given to the command: %s", reason);
	sw_warn("item %s: %s", s->id, why);
	const char *state = "lost";
	if (sw_queue_fail(&r->q, s->id, s->token, why, -1, &out))
		sw_warn("item %s: %s", s->id, r->q.err.msg);
	else
		state = out ? sw_json_str(out, "state") : "pending";
	sw_span_end(&s->sp, true, why);
	run_report(r, s, &s->b[0], state ? state : "pending", -1, why);
	json_decref(out);
	run_slot_clear(s);
	r->failed++;
	if (r->o->once)
		r->once_status = EX_DATAERR;   /* no command ran: the item was bad */
}

/* {} (the payload, as stdin would get it), {id} and {attempt} replaced in
 * a word of the command, like xargs -I and parallel, never through a
 * shell.  NULL when out of memory. */
static char *subst_word(const char *w, const struct slot *s)
{
	char *buf = NULL, att[24];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	snprintf(att, sizeof att, "%lld", s->attempt);
	while (*w) {
		if (!strncmp(w, "{}", 2)) {
			fwrite(s->in ? s->in : "", 1, s->inlen, f);
			w += 2;
		} else if (!strncmp(w, "{id}", 4)) {
			fputs(s->id, f);
			w += 4;
		} else if (!strncmp(w, "{attempt}", 9)) {
			fputs(att, f);
			w += 9;
		} else {
			fputc(*w++, f);
		}
	}
	if (ferror(f) | fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The item's command line, when the command's words hold {} {id}
 * {attempt}: NULL, or why the item cannot have one.  With {} the payload
 * is in the arguments, and stdin gets nothing (as with xargs -I): a
 * command that reads its terminal's commands from stdin (ffmpeg, ssh)
 * must not read the payload as such. */
static const char *command_line(struct run *r, struct slot *s)
{
	if (r->payload_arg && s->inlen && memchr(s->in, 0, s->inlen))
		return "it holds a NUL byte, which no argument can";
	/* JSON that is not a string is one line on stdin; as an argument,
	 * without the newline */
	json_t *p = json_object_get(s->item, "payload");
	if (p && !json_is_string(p) && s->inlen && s->in[s->inlen - 1] == '\n')
		s->inlen--;
	s->argv = calloc((size_t)r->o->nargs + 1, sizeof *s->argv);
	if (!s->argv)
		return strerror(ENOMEM);
	for (int i = 0; i < r->o->nargs; i++)
		if (!(s->argv[i] = subst_word(r->o->args[i], s)))
			return strerror(ENOMEM);
	if (r->payload_arg) {
		free(s->in);
		s->in = NULL;
		s->inlen = 0;
	}
	return NULL;
}

/* b for a claimed item (which it then owns). */
static void bitem_of(struct run *r, json_t *item, struct bitem *b)
{
	b->item = item;
	b->id = sw_json_str(item, "id");
	b->token = (uint64_t)sw_json_int(item, "token", 0);
	b->attempt = sw_json_int(item, "attempt", 1);
	b->ttl_ns = r->o->ttl_ns ? r->o->ttl_ns : sw_json_int(item, "timeout", 300) * SW_NS_PER_SEC;
	b->lost = false;
}

/* When the first of n claims wants renewing. */
int64_t run_renew_time(const struct bitem *b, size_t n, int64_t now)
{
	int64_t ttl = INT64_MAX;
	for (size_t i = 0; i < n; i++)
		if (!b[i].lost && b[i].ttl_ns < ttl)
			ttl = b[i].ttl_ns;
	return ttl == INT64_MAX ? INT64_MAX : now + ttl / 3;
}

/* Slot s takes the n items of b (and owns them). */
static void slot_take(struct run *r, struct slot *s, struct bitem *b, size_t n)
{
	s->b = b;
	s->nb = n;
	s->item = b[0].item;
	s->id = b[0].id;
	s->token = b[0].token;
	s->attempt = b[0].attempt;
	s->outmax = RESULT_MAX * n;
	s->started_ns = sw_now_ns();
	s->renew_at = run_renew_time(b, n, s->started_ns);
	run_item_span(r, s);
}

/* Gives the n claims of b back at once (two syncs for all). */
void run_release_items(struct run *r, struct bitem *b, size_t n)
{
	struct sw_fin *f = calloc(n ? n : 1, sizeof *f);
	if (!f) {
		run_out_of_memory(r);
		return;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!b[i].lost)
			f[m++] = (struct sw_fin){ .id = b[i].id, .token = b[i].token };
	sw_queue_apply(&r->q, SW_FIN_RELEASE, f, m);
	for (size_t i = 0; i < m; i++) {
		if (f[i].rc)
			sw_warn("item %s: %s", f[i].id, f[i].err.msg);
		json_decref(f[i].out);
	}
	free(f);
}

/* The command of slot s could not be started (errno e): a command that
 * cannot start will not start for the next items either: stop, leaving
 * the queue as it was. */
static void cannot_start(struct run *r, struct slot *s, int e)
{
	sw_warn("cannot run '%s': %s", r->o->args[0], strerror(e));
	run_release_items(r, s->b, s->nb);
	sw_span_end(&s->sp, true, strerror(e));
	r->claimed -= (long long)s->nb;
	run_slot_clear(s);
	r->draining = true;
	r->drain_deadline = sw_now_ns();
	r->exit_code = e == ENOMEM ? EX_SOFTWARE : EX_UNAVAILABLE;
}

/* dep is sw_queue_deps's: it frees it after this */
static int put_dep(json_t *dep, void *arg)
{
	size_t n;
	char *line = sw_json_line(dep, &n);
	int rc = line && fwrite(line, 1, n, arg) == n ? 0 : -1;
	free(line);
	return rc;
}

/* An item that waited for others (--after, a combiner of shards) gets
 * their outcomes, as `sw-claim deps` prints them, in a file of its own
 * named by SW_DEPS_RESULTS: no `show` per shard.  NULL, or why not. */
static const char *deps_file(struct run *r, struct slot *s)
{
	const json_t *after = json_object_get(s->item, "after");
	if (!json_is_array(after) || json_array_size(after) == 0)
		return NULL;
	const char *tmp = getenv("TMPDIR");
	if (asprintf(&s->deps_path, "%s/sw-deps.XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp") < 0) {
		s->deps_path = NULL;
		return strerror(ENOMEM);
	}
	int fd = mkstemp(s->deps_path);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	int e = errno;
	if (!f) {
		if (fd >= 0)
			close(fd);
		free(s->deps_path);
		s->deps_path = NULL;
		return strerror(e);
	}
	/* put_dep's -1 is a write that failed; a code is the queue's error */
	int rc = sw_queue_deps(&r->q, s->item, put_dep, f);
	e = errno;
	if (fclose(f) != 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	return rc > 0 ? r->q.err.msg : rc < 0 ? strerror(e) : NULL;
}

static void start_item(struct run *r, json_t *item)
{
	struct slot *s = free_slot(r);
	struct bitem *b = calloc(1, sizeof *b);
	if (!b) {
		json_decref(item);
		run_out_of_memory(r);
		return;
	}
	bitem_of(r, item, b);
	slot_take(r, s, b, 1);
	r->claimed++;
	const char *why = NULL;
	if (run_payload_bytes(item, &s->in, &s->inlen) < 0)
		why = strerror(errno);
	else if (r->subst)
		why = command_line(r, s);
	if (why) {
		fail_alone(r, s, why);
		return;
	}
	if ((why = deps_file(r, s)))
		sw_warn("item %s: the results of what it waited for cannot be written (%s); "
			"SW_DEPS_RESULTS is not set", s->id, why);
	if (why && s->deps_path) {
		unlink(s->deps_path);
		free(s->deps_path);
		s->deps_path = NULL;
	}
	if (r->logdir >= 0)
		open_log(r, s);
	if (run_spawn_child(r, s) < 0) {
		int e = errno;
		if (e == E2BIG && r->subst) {
			fail_alone(r, s, "its command line is too long (E2BIG)");
			return;
		}
		cannot_start(r, s, e);
		return;
	}
	s->seq = ++r->seq;
	r->running++;
	r->claims_dirty = true;
}

/* ---- --batch ---------------------------------------------------------- */

static int gather_one(json_t *item, void *arg)
{
	struct run *r = arg;
	bitem_of(r, item, &r->gb[r->gn++]);
	return 0;
}

/* Each item of the batch as one line of JSON, as `sw-claim next -n
 * --format json` prints it: the command's stdin. */
static int batch_input(struct slot *s)
{
	FILE *f = open_memstream(&s->in, &s->inlen);
	if (!f)
		return -1;
	bool ok = true;
	for (size_t i = 0; ok && i < s->nb; i++) {
		size_t n;
		char *line = sw_json_line(s->b[i].item, &n);
		ok = line && fwrite(line, 1, n, f) == n;
		free(line);
	}
	return (ferror(f) | fclose(f)) || !ok ? -1 : 0;
}

/* The gathered items go to a free slot as one batch, to one command. */
static void start_batch(struct run *r)
{
	struct slot *s = free_slot(r);
	struct bitem *b = r->gb;
	size_t n = r->gn;
	struct bitem *next = calloc(r->o->batch, sizeof *next);
	if (!next) {
		run_out_of_memory(r);
		return;
	}
	r->gb = next;
	r->gn = 0;
	r->gather_until = 0;
	slot_take(r, s, b, n);
	sw_span_int(&s->sp, "sw.items", (int64_t)n);
	sw_rand_hex(s->batch_id, 8);
	if (batch_input(s) < 0) {
		run_out_of_memory(r);
		run_slot_clear(s);   /* its claims run out: the run stops */
		return;
	}
	if (r->logdir >= 0)
		open_log(r, s);
	if (run_spawn_child(r, s) < 0) {
		cannot_start(r, s, errno);
		return;
	}
	s->seq = ++r->seq;
	r->running++;
	r->claims_dirty = true;
}

/* ---- --affinity ------------------------------------------------------- */

/* Reads the agents again; the ring is built anew only when its members
 * changed (our own record's renewals change the directory too). */
static void ring_load(struct run *r, int64_t now, const struct timespec *mtime)
{
	r->ring_loaded = now;
	r->ring_at = now + r->agent_ttl_ns / 3;
	if (sw_aff_ring_update(&r->ring, r->ws, r->q.name, (const char *const *)r->o->roles, r->o->nroles) < 0) {
		sw_warn("reading the agents of queue '%s' (the ring kept as it was): %s", r->q.name,
			strerror(errno));
		return;
	}
	r->agents_mtime = *mtime;
	long me = r->ring.have ? sw_nodes_find(&r->ring.nodes, r->id) : -1;
	r->aff = (struct sw_affinity){ &r->ring.pl, me < 0 ? UINT32_MAX : (uint32_t)me,
				       r->o->steal_after_ns, &r->steal_at };
}

/* What a claim goes by: NULL without --affinity, or while the ring is
 * empty (our own record unreadable: nobody to prefer). */
static const struct sw_affinity *affinity(struct run *r)
{
	if (!r->o->affinity)
		return NULL;
	int64_t now = sw_now_ns();
	struct stat st;
	struct timespec m = { 0, 0 };
	if (fstatat(r->ws->fd, SW_AGENT_DIR, &st, 0) == 0)
		m = st.st_mtim;
	bool changed = m.tv_sec != r->agents_mtime.tv_sec || m.tv_nsec != r->agents_mtime.tv_nsec;
	int64_t gap = RING_MIN_NS + (int64_t)r->ring.nodes.n * RING_PER_NODE_NS;
	if (now >= r->ring_at || (changed && now >= r->ring_loaded + gap))
		ring_load(r, now, &m);
	else if (changed && r->ring_at > r->ring_loaded + gap)
		r->ring_at = r->ring_loaded + gap;
	r->steal_at = INT64_MAX;
	return r->ring.have ? &r->aff : NULL;
}

/* Nothing of ours was claimable: look again when another's item may be
 * stolen, or when the ring is read again (a member gone gives us keys). */
static void affinity_poll(struct run *r, int64_t now)
{
	if (!r->o->affinity)
		return;
	int64_t t = r->steal_at < r->ring_at ? r->steal_at : r->ring_at;
	if (t < r->next_poll)
		r->next_poll = t > now + DUE_MIN_NS ? t : now + DUE_MIN_NS;
}

/* Claims into the batch being gathered, as many as it has room for (and
 * --max-items allows).  Whether the queue had fewer. */
static bool gather(struct run *r)
{
	size_t want = r->o->batch - r->gn;
	if (r->o->max_items && (long long)want > r->o->max_items - r->claimed)
		want = (size_t)(r->o->max_items - r->claimed);
	struct sw_claim_opts co = { (const char *const *)r->o->roles, r->o->nroles, r->o->ttl_ns, want,
				    affinity(r) };
	size_t n = 0, had = r->gn;
	int rc = sw_queue_claim_many(&r->q, &co, gather_one, r, &n);
	if (rc && rc != EX_TEMPFAIL)
		sw_warn("%s", r->q.err.msg);
	n = r->gn - had;
	r->claimed += (long long)n;
	if (n) {
		r->claims_dirty = true;
		r->idle_since = -1;
		if (!had) {
			r->gather_until = sw_now_ns() + r->o->batch_wait_ns;
			r->gather_renew_at = run_renew_time(r->gb, r->gn, sw_now_ns());
		}
	}
	return n < want;
}

/* --batch: fills the free slots with batches of up to --batch items; with
 * --batch-wait, a batch short of that waits for more until its time is
 * up.  The queue is looked at again when something is added (the waiter)
 * and at the poll, which is then no later than the batch's start. */
static void claim_batches(struct run *r)
{
	r->want_claim = false;
	bool empty = false;
	while (run_free_slots(r) > 0) {
		if (run_may_claim(r) && r->gn < r->o->batch)
			empty = gather(r);
		if (!r->gn)
			break;
		bool full = r->gn == r->o->batch || !run_may_claim(r);
		if (!full && sw_now_ns() < r->gather_until)
			break;
		start_batch(r);
		if (empty)
			break;
	}
	int64_t now = sw_now_ns();
	r->empty = empty;
	if (empty) {
		r->next_poll = now + sw_jitter(r->poll_ns);
		int64_t due = sw_waiter_watching(&r->w) || !sw_waiter_shared(&r->w) ? sw_queue_next_due(&r->q) : 0;
		if (due > 0 && due < r->next_poll)
			r->next_poll = due > now + DUE_MIN_NS ? due : now + DUE_MIN_NS;
		affinity_poll(r, now);
	}
	if (run_free_slots(r) == 0 || !run_may_claim(r))
		r->next_poll = INT64_MAX;
	if (r->gn && run_free_slots(r) > 0 && r->gather_until < r->next_poll)
		r->next_poll = r->gather_until;
}

static int take_item(json_t *item, void *arg)
{
	*(json_t **)arg = item;
	return 0;
}

void run_claim_some(struct run *r)
{
	if (r->o->batch) {
		claim_batches(r);
		return;
	}
	r->want_claim = false;
	while (run_may_claim(r) && run_free_slots(r) > 0) {
		json_t *item = NULL;
		struct sw_claim_opts co = { (const char *const *)r->o->roles, r->o->nroles, r->o->ttl_ns, 1,
					    affinity(r) };
		size_t n;
		int rc = sw_queue_claim_many(&r->q, &co, take_item, &item, &n);
		int64_t now = sw_now_ns();
		if (rc) {
			if (rc != EX_TEMPFAIL)
				sw_warn("%s", r->q.err.msg);
			r->empty = true;
			r->next_poll = now + sw_jitter(r->poll_ns);
			/* a retry falling due or a lease running out touches no
			 * file: the host's watcher (or an agent alone) looks again
			 * then; the others hear of it from the watcher's baton */
			int64_t due = sw_waiter_watching(&r->w) || !sw_waiter_shared(&r->w) ? sw_queue_next_due(&r->q) : 0;
			if (due > 0 && due < r->next_poll)
				r->next_poll = due > now + DUE_MIN_NS ? due : now + DUE_MIN_NS;
			affinity_poll(r, now);
			return;
		}
		r->empty = false;
		r->idle_since = -1;
		start_item(r, item);
	}
	if (run_free_slots(r) == 0 || !run_may_claim(r))
		r->next_poll = INT64_MAX;
}
