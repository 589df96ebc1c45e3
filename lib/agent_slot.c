/* agent_slot.c — one job slot's command for `sw-agent run`
 * (agent_run_int.h): its environment and spawning, its pipes, and its
 * process tree. */
#include "agent_run_int.h"
#include "clock.h"
#include "fs.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define KILL_AFTER_NS (5 * SW_NS_PER_SEC)

/* ---- the child's environment and spawning ---------------------------- */

static const char *const our_vars[] = {
	"SW_ITEM_ID=", "SW_ITEM_TOKEN=", "SW_ATTEMPT=", "SW_QUEUE=", "SW_AGENT_ID=",
	"TRACEPARENT=", "SW_DIR=", "SW_DEPS_RESULTS=", "SW_BATCH_ID=", "SW_BATCH_SIZE=", NULL
};
#define OUR_VARS 10

/* The command's file, looked up in PATH once, as execvp would (the first
 * executable regular file): posix_spawn holds the agent until the child
 * has exec'd, and a search tries every directory before the right one
 * for every item.  Empty when not found or not a bare name: then
 * posix_spawnp searches, and says what it finds. */
static void run_resolve(struct run *r)
{
	const char *cmd = r->o->args ? r->o->args[0] : NULL, *path = getenv("PATH");
	r->exe[0] = 0;
	if (!cmd || !*cmd || strchr(cmd, '/') || !path)
		return;
	for (const char *p = path;; p++) {
		size_t n = strcspn(p, ":");
		char f[PATH_MAX];
		struct stat st;
		int w = snprintf(f, sizeof f, "%.*s%s%s", (int)n, n ? p : ".", "/", cmd);
		if (w > 0 && (size_t)w < sizeof f && stat(f, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(f, X_OK) == 0) {
			memcpy(r->exe, f, (size_t)w + 1);
			return;
		}
		p += n;
		if (!*p)
			return;
	}
}

int run_env_init(struct run *r)
{
	run_resolve(r);
	size_t n = 0;
	while (environ[n])
		n++;
	r->env = calloc(n + OUR_VARS + 1, sizeof *r->env);
	if (!r->env)
		return sw_err_set(&r->fail, EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < n; i++) {
		bool ours = false;
		for (int k = 0; our_vars[k]; k++)
			ours |= !strncmp(environ[i], our_vars[k], strlen(our_vars[k]));
		if (!ours)
			r->env[r->nenv++] = environ[i];
	}
	return 0;
}

/* The payload as the child's stdin: a string's own bytes (no quotes, no
 * newline added); anything else as one line of compact JSON. */
int run_payload_bytes(const json_t *item, char **buf, size_t *len)
{
	json_t *p = json_object_get(item, "payload");
	if (!p || json_is_null(p)) {
		*buf = NULL;
		*len = 0;
		return 0;
	}
	if (json_is_string(p)) {
		*len = json_string_length(p);
		*buf = malloc(*len ? *len : 1);
		if (!*buf)
			return -1;
		memcpy(*buf, json_string_value(p), *len);
		return 0;
	}
	*buf = sw_json_line(p, len);
	return *buf ? 0 : -1;
}

/* An empty slot: nothing in it, no descriptor. */
void run_slot_reset(struct slot *s)
{
	memset(s, 0, sizeof *s);
	s->fin = s->fout = s->ferr = s->flog = -1;
}

static void items_free(struct bitem *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(b[i].item);
	free(b);
}

void run_slot_clear(struct slot *s)
{
	if (s->fin >= 0) close(s->fin);
	if (s->fout >= 0) close(s->fout);
	if (s->ferr >= 0) close(s->ferr);
	if (s->flog >= 0) close(s->flog);
	items_free(s->b, s->nb);
	free(s->in);
	free(s->out);
	free(s->line);
	free(s->logname);
	if (s->deps_path)
		unlink(s->deps_path);
	free(s->deps_path);
	for (char **a = s->argv; a && *a; a++)
		free(*a);
	free(s->argv);
	run_slot_reset(s);
}

/* The item's span: a child of the run's span, made by hand so that an
 * invalid TRACEPARENT is warned about once, not per item. */
void run_item_span(struct run *r, struct slot *s)
{
	struct sw_span *sp = &s->sp;
	memset(sp, 0, sizeof *sp);
	sp->on = r->sp->on;
	sp->dest = r->sp->dest;
	snprintf(sp->name, sizeof sp->name, "sw-agent item");
	memcpy(sp->trace, r->sp->trace, sizeof sp->trace);
	memcpy(sp->parent, r->sp->id, sizeof sp->parent);
	do sw_rand_hex(sp->id, 8); while (!strcmp(sp->id, "0000000000000000"));
	sp->start_ns = sw_now_ns();
	if (sp->on)
		sp->attrs = json_array();
	sw_span_str(sp, "sw.queue", r->q.name);
	sw_span_str(sp, "sw.item.id", s->id);
	sw_span_str(sp, "sw.agent.id", r->id);
	sw_span_int(sp, "sw.item.attempt", s->attempt);
}

int run_spawn_child(struct run *r, struct slot *s)
{
	int pin[2], pout[2], perr[2];
	if (pipe2(pin, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pout, O_CLOEXEC) < 0) {
		close(pin[0]); close(pin[1]);
		return -1;
	}
	if (pipe2(perr, O_CLOEXEC) < 0) {
		close(pin[0]); close(pin[1]); close(pout[0]); close(pout[1]);
		return -1;
	}
	char v[OUR_VARS][SW_NAME_MAX + PATH_MAX + 32], tp[SW_TRACEPARENT_LEN];
	int nv = 0;
	sw_span_child_env(&s->sp, tp);
	if (r->o->batch) {
		/* no item of its own: a batch id says whose its processes are */
		snprintf(v[nv++], sizeof v[0], "SW_BATCH_ID=%s", s->batch_id);
		snprintf(v[nv++], sizeof v[0], "SW_BATCH_SIZE=%zu", s->nb);
	} else {
		snprintf(v[nv++], sizeof v[0], "SW_ITEM_ID=%s", s->id);
		snprintf(v[nv++], sizeof v[0], "SW_ITEM_TOKEN=%llu", (unsigned long long)s->token);
		snprintf(v[nv++], sizeof v[0], "SW_ATTEMPT=%lld", s->attempt);
	}
	snprintf(v[nv++], sizeof v[0], "SW_QUEUE=%s", r->q.name);
	snprintf(v[nv++], sizeof v[0], "SW_AGENT_ID=%s", r->id);
	snprintf(v[nv++], sizeof v[0], "TRACEPARENT=%s", tp);
	snprintf(v[nv++], sizeof v[0], "SW_DIR=%s", r->ws->path);
	if (s->deps_path)
		snprintf(v[nv++], sizeof v[0], "SW_DEPS_RESULTS=%s", s->deps_path);
	for (int i = 0; i < nv; i++)
		r->env[r->nenv + (size_t)i] = v[i];
	r->env[r->nenv + (size_t)nv] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE); sigaddset(&dfl, SIGHUP); sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT); sigaddset(&dfl, SIGCHLD);
	sw_guard_sigdefault(&r->g, &dfl);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	posix_spawnattr_init(&at);
	/* its own process group: a Ctrl-C at the terminal drains the agent
	 * instead of killing the items, and a stop reaches grandchildren */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	pid_t pid;
	/* the command gets the umask sw was started with, not the workspace's */
	mode_t ours = umask(sw_ws_user_umask(r->ws));
	char **argv = s->argv ? s->argv : r->o->args;
	int rc = r->exe[0] && !strcmp(argv[0], r->o->args[0])
		 ? posix_spawn(&pid, r->exe, &fa, &at, argv, r->env)
		 : posix_spawnp(&pid, argv[0], &fa, &at, argv, r->env);
	umask(ours);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pin[0]); close(pout[1]); close(perr[1]);
	if (rc) {
		close(pin[1]); close(pout[0]); close(perr[0]);
		errno = rc;
		return -1;
	}
	/* a lingering item's group had this id: it is empty, then */
	for (int i = 0; i < r->o->jobs; i++)
		if (r->slots[i].pid == pid)
			r->slots[i].group_gone = true;
	s->pid = pid;
	s->fin = pin[1];
	s->fout = pout[0];
	s->ferr = perr[0];
	fcntl(s->fin, F_SETFL, O_NONBLOCK);
	fcntl(s->fout, F_SETFL, O_NONBLOCK);
	fcntl(s->ferr, F_SETFL, O_NONBLOCK);
	if (s->inlen == 0) {
		close(s->fin);
		s->fin = -1;
	}
	return 0;
}

/* ---- pipes -------------------------------------------------------------- */

/* Room in s->out for n more bytes, up to s->outmax: how many fit. */
static size_t out_room(struct run *r, struct slot *s, size_t n)
{
	if (s->outlen + n > s->outmax) {
		n = s->outmax - s->outlen;
		s->truncated = true;
	}
	if (s->outlen + n > s->outcap) {
		size_t cap = s->outcap ? s->outcap : 16384;
		while (cap < s->outlen + n)
			cap *= 2;
		char *b = realloc(s->out, cap < s->outmax ? cap : s->outmax);
		if (!b) {
			run_out_of_memory(r);
			return 0;
		}
		s->out = b;
		s->outcap = cap < s->outmax ? cap : s->outmax;
	}
	return n;
}

void run_read_out(struct run *r, struct slot *s)
{
	char buf[16384];
	for (;;) {
		ssize_t n = read(s->fout, buf, sizeof buf);
		if (n > 0) {
			size_t keep = out_room(r, s, (size_t)n);
			if (keep) {
				memcpy(s->out + s->outlen, buf, keep);
				s->outlen += keep;
			}
			continue;
		}
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(s->fout);
			s->fout = -1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return;
	}
}

/* The last ERR_TAIL bytes of stderr, for the error. */
static void keep_tail(struct slot *s, const char *buf, size_t k)
{
	if (k > ERR_TAIL) {
		memcpy(s->err, buf + k - ERR_TAIL, ERR_TAIL);
		s->errlen = ERR_TAIL;
		return;
	}
	if (s->errlen + k > sizeof s->err) {
		size_t drop = s->errlen + k - ERR_TAIL;
		memmove(s->err, s->err + drop, s->errlen - drop);
		s->errlen -= drop;
	}
	memcpy(s->err + s->errlen, buf, k);
	s->errlen += k;
}

/* --log-dir: the whole of stderr.  A log that cannot be written is given
 * up with a warning; the item goes on. */
static void log_err(struct slot *s, const char *buf, size_t k)
{
	while (s->flog >= 0 && k) {
		ssize_t w = write(s->flog, buf, k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			sw_warn("writing %s: %s; its log stops here", s->logname, strerror(errno));
			close(s->flog);
			s->flog = -1;
			return;
		}
		buf += w;
		k -= (size_t)w;
	}
}

/* What the command writes on stderr goes on to ours, to its log, and its
 * tail is kept for the error. */
void run_read_err(struct run *r, struct slot *s)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(s->ferr, buf, sizeof buf);
		if (n > 0) {
			log_err(s, buf, (size_t)n);
			run_pass_err(r, s, buf, (size_t)n);
			keep_tail(s, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(s->ferr);
			s->ferr = -1;
			run_pass_end(r, s);
		}
		if (n < 0 && errno == EINTR)
			continue;
		return;
	}
}

void run_write_in(struct slot *s)
{
	if (sw_write_more(s->fin, s->in, s->inlen, &s->inoff))
		return;
	close(s->fin);
	s->fin = -1;
}

/* ---- process trees ------------------------------------------------------ */
/* An item's tree is its command's process group plus the processes
 * reparented to this agent (a child subreaper) that are its: in its group,
 * or with its SW_ITEM_ID and SW_ITEM_TOKEN in their environment.  Its
 * claim is held, and renewed, until nothing of the tree runs; only then is
 * its outcome told and its slot reused. */

/* The slot still holds its claim: running, lingering, or stopping to be
 * released. */
bool run_holds_claim(const struct slot *s)
{
	return s->pid && (!s->abandoned || !strcmp(s->abandoned, "released"));
}

/* Whether s's process group has members.  An empty one is never
 * signalled again: its id may be reused. */
bool run_group_alive(struct slot *s)
{
	if (s->group_gone)
		return false;
	if (kill(-s->pid, 0) == 0 || errno != ESRCH)
		return true;    /* EPERM: a member became another user's */
	s->group_gone = true;
	return false;
}

struct slot *run_command_slot(struct run *r, pid_t pid)
{
	for (int i = 0; i < r->o->jobs; i++)
		if (r->slots[i].pid == pid && !r->slots[i].exited)
			return &r->slots[i];
	return NULL;
}

/* The slot whose environment a process carries. */
static struct slot *slot_by_environ(struct run *r, pid_t pid)
{
	static const char *const names[] = { "SW_ITEM_ID", "SW_ITEM_TOKEN", "SW_BATCH_ID" };
	char id[SW_NAME_MAX + 1], tok[SW_NAME_MAX + 1], batch[SW_NAME_MAX + 1];
	char *vals[] = { id, tok, batch };
	if (sw_proc_environ_get(pid, 3, names, vals, sizeof id) < 1)
		return NULL;
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		char t[24];
		snprintf(t, sizeof t, "%llu", (unsigned long long)s->token);
		if (!s->pid)
			continue;
		if (r->o->batch ? !strcmp(s->batch_id, batch) : !strcmp(s->id, id) && !strcmp(t, tok))
			return s;
	}
	return NULL;
}

/* The slot a child of ours belongs to: its command's, or the one whose
 * group it is in or whose item its environment names.  NULL for one that
 * is exiting (it is reaped next) or that is no item's: left alone, warned
 * about once. */
struct slot *run_owner_of(struct run *r, pid_t pid)
{
	struct slot *s = run_command_slot(r, pid);
	struct sw_proc p;
	if (s || sw_proc_stat(pid, &p) < 0 || p.state == 'Z')
		return s;
	for (int i = 0; i < r->o->jobs; i++)
		if (r->slots[i].pid && !r->slots[i].group_gone && p.pgid == r->slots[i].pid)
			return &r->slots[i];
	if ((s = slot_by_environ(r, pid)))
		return s;
	if (!r->stray_warned) {
		sw_warn("process %ld left its item's process group and environment: "
			"it cannot be told whose it is, and is left alone", (long)pid);
		r->stray_warned = true;
	}
	return NULL;
}

static bool picked(struct slot *const *t, size_t n, const struct slot *s)
{
	for (size_t k = 0; k < n; k++)
		if (t[k] == s)
			return true;
	return false;
}

static int by_top(const void *a, const void *b)
{
	pid_t x = ((const struct sw_proc *)a)->top, y = ((const struct sw_proc *)b)->top;
	return x < y ? -1 : x > y;
}

/* The descendants of ours that belong to the slots in t and are not in
 * their process groups (which are signalled as a whole): each child of
 * ours is attributed once, for all the processes below it. */
static size_t tree_members(struct run *r, struct slot *const *t, size_t n, struct sw_proc *ps, size_t np)
{
	qsort(ps, np, sizeof *ps, by_top);
	size_t keep = 0;
	struct slot *owner = NULL;
	for (size_t i = 0; i < np; i++) {
		if (i == 0 || ps[i].top != ps[i - 1].top)
			owner = run_owner_of(r, ps[i].top);
		if (owner && picked(t, n, owner) && (owner->group_gone || ps[i].pgid != owner->pid))
			ps[keep++] = ps[i];
	}
	return keep;
}

/* Sends sig to the trees of the n slots in t: their process groups first
 * (at once: the walk of /proc takes a while), then every other process of
 * theirs.  A stopped process is woken to act on anything but SIGKILL. */
void run_signal_trees(struct run *r, struct slot *const *t, size_t n, int sig)
{
	if (!n)
		return;
	for (size_t k = 0; k < n; k++) {
		if (run_group_alive(t[k]))
			(void)kill(-t[k]->pid, sig);   /* ESRCH: emptied meanwhile */
		t[k]->killed |= sig == SIGKILL;
	}
	struct sw_proc *ps = NULL;
	size_t np = 0;
	if (sw_proc_descendants(&ps, &np) < 0)
		sw_warn("listing the commands' processes: %s", strerror(errno));
	np = tree_members(r, t, n, ps, np);
	sw_proc_kill(0, ps, np, sig);
	if (sig != SIGKILL) {
		for (size_t k = 0; k < n; k++)
			if (run_group_alive(t[k]))
				(void)kill(-t[k]->pid, SIGCONT);
		sw_proc_kill(0, ps, np, SIGCONT);
	}
	free(ps);
}

/* SIGTERM now, SIGKILL after the kill delay, to the slots not stopping yet. */
void run_stop_trees(struct run *r, struct slot *const *t, size_t n, int64_t now)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i]->kill_at)
			continue;
		t[i]->kill_at = now + KILL_AFTER_NS;
		r->pick[k++] = t[i];
	}
	run_signal_trees(r, r->pick, k, SIGTERM);
}

/* SIGKILL to every tree, now. */
void run_kill_all(struct run *r)
{
	size_t n = 0;
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (s->pid) {
			s->kill_at = INT64_MAX;
			r->pick[n++] = s;
		}
	}
	run_signal_trees(r, r->pick, n, SIGKILL);
}
