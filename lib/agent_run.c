/* agent_run.c — the engine of `sw-agent run` (agent_run.h): job slots,
 * batches, the joblog, renewals, the finish path with group commit, the
 * affinity ring, and the loop that drives them. */
#include "agent_run.h"
#include "affinity.h"
#include "agent.h"
#include "clock.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "owner.h"
#include "proc.h"
#include "queue.h"
#include "waiter.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RESULT_MAX (64 * 1024)    /* stdout kept as the result */
#define ERR_TAIL 2048             /* stderr tail kept as the error */
#define GROUP_MAX 64              /* finished items committed together at most */
#define GROUP_WAIT_NS (5 * INT64_C(1000000))   /* how long one waits for others */
#define LINE_CAP 4096             /* a longer stderr line is passed on in pieces */
#define KILL_AFTER_NS (5 * SW_NS_PER_SEC)
#define DUE_MIN_NS (50 * 1000000)        /* looks for due items no more often */
/* --affinity reads the agents again when their directory changed, no more
 * often than this plus RING_PER_NODE_NS a member (a big ring costs more) */
#define RING_MIN_NS (SW_NS_PER_SEC / 4)
#define RING_PER_NODE_NS (5 * 1000000)

/* A claimed item: a slot's only one, or one of its batch (--batch). */
struct bitem {
	json_t *item;             /* owned */
	const char *id;           /* in item */
	uint64_t token;
	long long attempt;
	int64_t ttl_ns;           /* its lease */
	bool lost;                /* a renewal found its claim gone */
};

struct slot {
	pid_t pid;                /* 0: free */
	struct bitem *b;          /* its items (owned): one, or a batch */
	size_t nb;
	/* the first item's, which logs, --tag and the span name */
	json_t *item;
	const char *id;
	uint64_t token;
	long long attempt;
	char batch_id[17];        /* --batch: SW_BATCH_ID, which says whose a process is */
	size_t outcap, outmax;    /* s->out's size, and the most it may grow to */
	int fin, fout, ferr;      /* our ends of the child's stdin/stdout/stderr */
	char *in;
	size_t inlen, inoff;
	char *out;
	size_t outlen;
	bool truncated;
	char err[2 * ERR_TAIL];
	size_t errlen;
	char *line;               /* stderr since its last newline, not passed on yet */
	size_t linelen;
	int flog;                 /* --log-dir: this attempt's log, or -1 */
	char *logname;            /* its path */
	char **argv;              /* the command line, when {} {id} {attempt} were replaced */
	char *deps_path;          /* SW_DEPS_RESULTS: what the item waited for, or NULL */
	long long seq;            /* its number among the commands this agent started */
	int64_t renew_at, started_ns, kill_at;
	bool exited;              /* the command has been reaped: status says how */
	bool group_gone;          /* its process group is empty: its id may be reused */
	bool killed;              /* SIGKILL sent, and sent again to what is left */
	/* "released" (told to the queue once the tree is gone) or "lost" (the
	 * claim is someone else's): the command's own outcome is not reported */
	const char *abandoned;
	int status;
	struct sw_span sp;
};

/* Lines on their way to stdout or stderr (ob_add). */
struct obuf {
	int fd;
	char *b;
	size_t len, cap;
	bool pipe;                /* a pipe or socket: written as poll allows */
	bool lost;                /* the reader went away */
};

struct run {
	struct sw_agent_run_opts *o;   /* &oc */
	struct sw_agent_run_opts oc;  /* a copy: a lost stdout makes it quiet */
	struct sw_ws *ws;
	struct sw_queue q;
	struct sw_span *sp;
	char id[SW_NAME_MAX + 1];
	json_t *rec;
	int64_t agent_ttl_ns;
	struct slot *slots;
	struct slot *fin;         /* tree gone, outcome not yet told */
	size_t nfin;              /* how many: they wait to commit together */
	int64_t fin_since;        /* since when the first of them waits */
	/* --batch-wait: items claimed for the next batch, which starts when
	 * it is full or at gather_until */
	struct bitem *gb;
	size_t gn;
	int64_t gather_until, gather_renew_at;
	struct slot **pick;       /* scratch: the slots one signal goes to */
	struct sw_guard g;
	bool orphaned;            /* the guardian was killed */
	bool stray_warned;        /* about a process that is no item's */
	int64_t next_check;       /* look at trees that outlived their command */
	int running;
	int sfd;
	struct sw_waiter w;
	char **env;               /* environ without our variables, + OUR_VARS free */
	size_t nenv;
	long long claimed, done, failed, released, lost;
	int stop_sig;             /* the first SIGTERM/SIGINT */
	bool draining, forced;
	int64_t drain_deadline;
	int64_t next_beat, next_poll, poll_ns, idle_since, next_progress, started_ns;
	int64_t next_lead;        /* when a waiting non-watcher tries to lead */
	bool claims_dirty;        /* the record's "claims" are out of date */
	struct obuf out;          /* result lines not yet written */
	struct obuf err;          /* the commands' stderr lines not yet written */
	int logdir;               /* --log-dir, or -1 */
	int joblog;               /* --joblog, or -1 */
	long long seq;            /* commands started: the joblog's Seq */
	bool subst;               /* the command's words hold {} {id} or {attempt} */
	bool payload_arg;         /* ... {}: the payload is an argument, not stdin */
	char logpath[PATH_MAX];   /* its absolute path, for the result lines */
	int64_t next_record;      /* rewritten at most once a second */
	/* --affinity: the ring of the queue's agents, read again when the
	 * agents directory changed and every third of the heartbeat ttl (a
	 * death changes nothing there) */
	struct sw_aff_ring ring;
	struct sw_affinity aff;
	int64_t ring_loaded, ring_at, steal_at;
	struct timespec agents_mtime;
	bool progress, want_claim, empty;
	int once_status;
	int exit_code;
	bool q_open, w_open;       /* for run_free */
	/* why the run must stop at once (code 0: it need not) */
	struct sw_err fail;
};

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

static void out_of_memory(struct run *r) { run_fail(r, EX_SOFTWARE, "out of memory"); }

/* How often to look for work when nothing says so. */
static int64_t default_poll(struct run *r)
{
	return r->o->poll_ns > 0 ? r->o->poll_ns : sw_poll_interval(&r->q);
}

static int free_slots(const struct run *r) { return r->o->jobs - r->running; }
static bool may_claim(const struct run *r);
/* Idle with room for work: one of those who wait for it. */
static bool waits(const struct run *r) { return r->empty && free_slots(r) > 0 && may_claim(r); }

static bool may_claim(const struct run *r)
{
	if (r->draining || r->fail.code)
		return false;
	if (r->o->max_items && r->claimed >= r->o->max_items)
		return false;
	/* --once: one command, of one item or one batch */
	return !(r->o->once && (r->o->batch ? r->seq >= 1 : r->claimed >= 1));
}

/* ---- the child's environment and spawning ---------------------------- */

static const char *const our_vars[] = {
	"SW_ITEM_ID=", "SW_ITEM_TOKEN=", "SW_ATTEMPT=", "SW_QUEUE=", "SW_AGENT_ID=",
	"TRACEPARENT=", "SW_DIR=", "SW_DEPS_RESULTS=", "SW_BATCH_ID=", "SW_BATCH_SIZE=", NULL
};
#define OUR_VARS 10

static int env_init(struct run *r)
{
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
static int payload_bytes(const json_t *item, char **buf, size_t *len)
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
static void slot_reset(struct slot *s)
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

static void slot_clear(struct slot *s)
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
	slot_reset(s);
}

/* The item's span: a child of the run's span, made by hand so that an
 * invalid TRACEPARENT is warned about once, not per item. */
static void item_span(struct run *r, struct slot *s)
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

static int spawn_child(struct run *r, struct slot *s)
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
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, r->env);
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

/* ---- outcomes ----------------------------------------------------------- */

/* Replaces bytes that are not UTF-8 by U+FFFD, so any output can be kept
 * as a JSON string. */
static json_t *utf8_string(const char *s, size_t n)
{
	if (sw_utf8_valid(s, n))
		return json_stringn(s, n);
	char *b = malloc(n * 3 + 1);
	if (!b)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = 1;
		while (k <= 4 && i + k <= n && !sw_utf8_valid(s + i, k))
			k++;
		if (k <= 4 && i + k <= n) {
			memcpy(b + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(b + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(b, o);
	free(b);
	return j;
}

/* stdout as the result: JSON when it parses, else the text with one
 * trailing newline removed; nothing for empty output.  room: the bytes of
 * JSON the item can still take (see SW_ITEM_SLACK); a result over it is
 * cut as if the output had been longer than RESULT_MAX. */
static json_t *result_of(struct slot *s, size_t room)
{
	if (!s->outlen)
		return NULL;
	if (s->outlen + 2 > room) {
		/* an escaped byte takes at most 6 */
		s->outlen = room > 16 ? (room - 16) / 6 : 0;
		s->truncated = true;
		if (!s->outlen)
			return NULL;
	}
	json_t *j = s->truncated ? NULL : sw_json_parse(s->out, s->outlen, NULL);
	if (j)
		return j;
	size_t n = s->outlen;
	if (!s->truncated && s->out[n - 1] == '\n')
		n--;
	return utf8_string(s->out, n);
}

static void error_of(struct slot *s, char *buf, size_t n)
{
	int st = s->status;
	char what[64];
	if (WIFSIGNALED(st))
		snprintf(what, sizeof what, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(what, sizeof what, "exit status %d", WEXITSTATUS(st));
	size_t len = s->errlen;
	const char *tail = s->err;
	if (len > ERR_TAIL) {
		tail += len - ERR_TAIL;
		len = ERR_TAIL;
	}
	while (len && (tail[len - 1] == '\n' || tail[len - 1] == '\r'))
		len--;
	/* the tail may start inside a character, or hold any bytes at all:
	 * the error is kept as a JSON string, so make it valid UTF-8 */
	json_t *t = utf8_string(tail, len);
	size_t tl = t ? json_string_length(t) : 0;
	int off = snprintf(buf, n, "%s%s", what, tl ? ": " : "");
	if (t && off > 0 && (size_t)off < n) {
		memcpy(buf + off, json_string_value(t), tl < n - (size_t)off ? tl + 1 : n - (size_t)off);
		buf[n - 1] = 0;
		for (char *p = buf + off; p < buf + n - 1 && p < buf + off + tl; p++)
			if (!*p)
				*p = ' ';   /* a NUL would end the C string early */
	}
	json_decref(t);
}

/* Result lines (stdout) and the commands' stderr lines.  Into a pipe they
 * are written only as the reader takes them (at most PIPE_BUF bytes when
 * poll says there is room, which never blocks), so a slow reader cannot
 * stall the renewals; they wait in the buffer meanwhile.  A reader that
 * went away (| head) must not stop the work either: the lines stop, the
 * agent goes on. */
#define OUT_MAX (64u << 20)

static void ob_init(struct obuf *b, int fd)
{
	struct stat st;
	memset(b, 0, sizeof *b);
	b->fd = fd;
	b->pipe = fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

static void ob_lost(struct run *r, struct obuf *b)
{
	b->lost = true;
	b->len = 0;
	if (b->fd != 1)
		return;   /* stderr gone: there is nobody to tell */
	sw_warn("writing output: %s; printing no more results", strerror(errno));
	r->o->quiet = true;
	r->progress = r->progress && isatty(2);
}

static void ob_write(struct run *r, struct obuf *b, bool all)
{
	while (b->len) {
		size_t n = b->len;
		if (!all && b->pipe && n > PIPE_BUF) {
			/* whole lines where it can: another writer of the same
			 * pipe (our own warnings) then cannot land inside one */
			n = PIPE_BUF;
			const char *nl = memrchr(b->b, '\n', n);
			if (nl)
				n = (size_t)(nl - b->b) + 1;
		}
		ssize_t w = write(b->fd, b->b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ob_lost(r, b);
			return;
		}
		memmove(b->b, b->b + w, b->len - (size_t)w);
		b->len -= (size_t)w;
		if (!all && b->pipe)
			return;   /* poll again before more */
	}
}

static void ob_add(struct run *r, struct obuf *b, const char *line, size_t n)
{
	if (b->lost)
		return;
	if (b->len + n > b->cap) {
		if (b->len + n > OUT_MAX) {
			ob_write(r, b, true);   /* a reader this far behind: wait for it */
			if (b->lost)
				return;
		}
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n)
			cap *= 2;
		char *nb = realloc(b->b, cap);
		if (!nb) {
			out_of_memory(r);
			return;
		}
		b->b = nb;
		b->cap = cap;
	}
	memcpy(b->b + b->len, line, n);
	b->len += n;
	if (!b->pipe)
		ob_write(r, b, true);   /* a file or terminal takes it at once */
}

/* stdout and stderr may share the terminal with the status line: it goes
 * before anything else is written there, and the next progress() draws it
 * again below. */
static void progress_clear(struct run *r)
{
	if (!r->progress)
		return;
	if (write(2, "\r\033[K", 4) < 0)
		r->progress = false;
	r->next_progress = 0;
}

/* One line (or a piece of an overlong one) of a command's stderr, passed
 * on whole, after the item's id and a tab with --tag (GNU parallel's
 * --tag), so that lines of items running at once never mix. */
static void pass_line(struct run *r, struct slot *s, const char *p, size_t n)
{
	if (r->err.lost)
		return;
	progress_clear(r);
	if (r->o->tag) {
		ob_add(r, &r->err, s->id, strlen(s->id));
		ob_add(r, &r->err, "\t", 1);
	}
	ob_add(r, &r->err, p, n);
	ob_add(r, &r->err, "\n", 1);
}

/* Bytes of a command's stderr: every complete line is passed on; the rest
 * waits for its newline (or for the end of the stream), a line longer
 * than LINE_CAP goes on in pieces of that size. */
static void pass_err(struct run *r, struct slot *s, const char *p, size_t n)
{
	if (r->err.lost)
		return;
	if (!s->line && !(s->line = malloc(LINE_CAP))) {
		out_of_memory(r);
		return;
	}
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) : n, room = LINE_CAP - s->linelen;
		if (k > room) {
			memcpy(s->line + s->linelen, p, room);
			pass_line(r, s, s->line, LINE_CAP);
			s->linelen = 0;
			p += room;
			n -= room;
			continue;
		}
		memcpy(s->line + s->linelen, p, k);
		s->linelen += k;
		if (!nl)
			return;
		pass_line(r, s, s->line, s->linelen);
		s->linelen = 0;
		p += k + 1;
		n -= k + 1;
	}
}

/* The end of a command's stderr: a last line without its newline is
 * passed on with one. */
static void pass_end(struct run *r, struct slot *s)
{
	if (s->linelen)
		pass_line(r, s, s->line, s->linelen);
	s->linelen = 0;
}

/* Item b's line on stdout (it ran in slot s). */
static void report(struct run *r, const struct slot *s, const struct bitem *b, const char *state,
		   int code, const char *err)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:s,s:I}", "id", b->id, "queue", r->q.name,
		"agent_id", r->id, "attempt", (json_int_t)b->attempt, "state", state,
		"duration_ms", (json_int_t)((sw_now_ns() - s->started_ns) / 1000000));
	if (code >= 0)
		json_object_set_new(j, "exit_code", json_integer(code));
	if (err && *err)
		json_object_set_new(j, "error", json_string(err));
	if (s->flog >= 0)
		json_object_set_new(j, "log", json_string(s->logname));
	if (!r->o->quiet && isatty(1))
		progress_clear(r);
	if (!r->o->quiet) {
		size_t n;
		char *line = sw_json_line(j, &n);
		if (line)
			ob_add(r, &r->out, line, n);
		else
			out_of_memory(r);
		free(line);
	}
	json_decref(j);
}

/* ---- --joblog ------------------------------------------------------------ */

/* Opened as GNU parallel does: emptied first, or appended to for
 * "+FILE"; the header line when it is empty.  Lines are appended with one
 * write each, so agents sharing a file (with +) do not cut into each
 * other's lines. */
static int open_joblog(struct run *r)
{
	const char *f = r->o->joblog;
	bool append = f[0] == '+';
	f += append;
	mode_t ours = umask(sw_ws_user_umask(r->ws));
	r->joblog = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC), 0666);
	umask(ours);
	if (r->joblog < 0)
		return sw_err_set(&r->fail, sw_ex_errno(errno) == EX_NOPERM ? EX_NOPERM : EX_CANTCREAT,
				  "--joblog %s: %s", f, strerror(errno));
	static const char head[] = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";
	struct stat st;
	if (fstat(r->joblog, &st) < 0 || (st.st_size == 0 && write(r->joblog, head, sizeof head - 1) < 0))
		return sw_err_set(&r->fail, sw_ex_errno(errno), "--joblog %s: %s", f, strerror(errno));
	return 0;
}

/* A word of the command as a shell would read it back, quoted the way
 * GNU parallel quotes; one with a control character as $'...', so that a
 * tab or a newline cannot break the joblog's line. */
static void shell_word(FILE *f, const char *w)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-";
	bool ctl = false;
	for (const char *p = w; *p; p++)
		ctl |= (unsigned char)*p < 0x20 || *p == 0x7f;
	if (*w && strspn(w, safe) == strlen(w)) {
		fputs(w, f);
	} else if (!ctl) {
		fputc('\'', f);
		for (const char *p = w; *p; p++) {
			if (*p == '\'')
				fputs("'\"'\"'", f);
			else
				fputc(*p, f);
		}
		fputc('\'', f);
	} else {
		fputs("$'", f);
		for (const char *p = w; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '\t') fputs("\\t", f);
			else if (c == '\n') fputs("\\n", f);
			else if (c == '\\' || c == '\'') fprintf(f, "\\%c", c);
			else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
			else fputc(c, f);
		}
		fputc('\'', f);
	}
}

/* Seq Host Starttime JobRuntime Send Receive Exitval Signal Command, as
 * parallel --joblog writes them: Host ":" (this host), nothing sent or
 * received, a command killed by a signal has Exitval 0 and that Signal. */
static void joblog_line(struct run *r, const struct slot *s)
{
	if (r->joblog < 0)
		return;
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (!f) {
		out_of_memory(r);
		return;
	}
	int st = s->status;
	fprintf(f, "%lld\t:\t%.3f\t%10.3f\t0\t0\t%d\t%d\t", s->seq, (double)s->started_ns / 1e9,
		(double)(sw_now_ns() - s->started_ns) / 1e9, WIFEXITED(st) ? WEXITSTATUS(st) : 0,
		WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	char **argv = s->argv ? s->argv : r->o->args;
	for (int i = 0; argv[i]; i++) {
		if (i)
			fputc(' ', f);
		shell_word(f, argv[i]);
	}
	fputc('\n', f);
	if (ferror(f) | fclose(f)) {
		free(line);
		out_of_memory(r);
		return;
	}
	ssize_t w;
	do
		w = write(r->joblog, line, len);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)len) {
		sw_warn("writing the joblog: %s; no more lines go there", w < 0 ? strerror(errno) : "short write");
		close(r->joblog);
		r->joblog = -1;
	}
	free(line);
}

static int exit_code_of(int st)
{
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* The bytes of JSON a result of item may take (see SW_ITEM_SLACK). */
static size_t result_room(const struct run *r, const json_t *item)
{
	size_t have = json_dumpb(item, NULL, 0, JSON_COMPACT);
	size_t cap = r->q.item_max + SW_ITEM_SLACK;
	return cap > have + 1024 ? cap - have - 1024 : 0;
}

static void count_state(struct run *r, const char *state)
{
	if (!strcmp(state, "done")) r->done++;
	else if (!strcmp(state, "released")) r->released++;
	else if (!strcmp(state, "lost")) r->lost++;
	else r->failed++;
}

/* What the queue is told of one item whose command and tree are gone,
 * and what it answered. */
struct told {
	bool call;                /* the queue is told (not for a lost claim) */
	enum sw_fin_verb verb;
	json_t *res;              /* done: its result (owned) */
	const char *state;
	int code;
	char err[3 * ERR_TAIL + 64];   /* U+FFFD takes 3 bytes */
};

/* The item's outcome, from how its command ended. */
static void plan_item(struct run *r, struct slot *s, struct told *t)
{
	t->code = exit_code_of(s->status);
	t->call = true;
	if (s->abandoned && !strcmp(s->abandoned, "released")) {
		t->verb = SW_FIN_RELEASE;
		t->state = "released";
	} else if (s->abandoned) {
		t->call = false;
		t->state = s->abandoned;
	} else if (WIFEXITED(s->status) && t->code == 0) {
		size_t room = result_room(r, s->item);
		json_t *res = result_of(s, room);
		if (res && json_dumpb(res, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) > room) {
			/* escaping made it larger than its bytes: cut it further */
			json_decref(res);
			s->outlen = room > 16 ? (room - 16) / 6 : 0;
			s->truncated = true;
			res = s->outlen ? result_of(s, room) : NULL;
		}
		t->verb = SW_FIN_DONE;
		t->res = res;
		t->state = "done";
	} else if (WIFEXITED(s->status) && t->code == EX_TEMPFAIL) {
		t->verb = SW_FIN_RELEASE;
		t->state = "released";
	} else {
		error_of(s, t->err, sizeof t->err);
		t->verb = SW_FIN_FAIL;
		t->state = "pending";
	}
}

/* The queue has the item's outcome (f: what it answered): count it, log
 * it, end its span, print its line. */
static void told_item(struct run *r, struct slot *s, struct told *t, const struct sw_fin *f)
{
	if (t->call && f->rc) {
		/* the lease ran out (this agent stalled) and someone else may
		 * have the item now: its outcome is theirs to report */
		sw_warn("item %s: %s", s->id, f->err.msg);
		t->state = "lost";
	} else if (t->call && t->verb == SW_FIN_FAIL && f->out) {
		t->state = sw_json_str(f->out, "state");
	}
	count_state(r, t->state);
	if (r->o->once)
		r->once_status = t->code;
	joblog_line(r, s);
	sw_span_int(&s->sp, "sw.exit_code", t->code);
	sw_span_str(&s->sp, "sw.item.state", t->state);
	sw_span_end(&s->sp, strcmp(t->state, "done") != 0, *t->err ? t->err : NULL);
	report(r, s, &s->b[0], t->state, t->code, t->err);
	slot_clear(s);
	r->claims_dirty = true;
}

static void finish_batch(struct run *r, struct slot *s);

/* The items of r->fin, whose commands and trees are gone: their outcomes
 * go to the queue in one commit (group commit: one sync for all of them,
 * every one durable before any is reported), then each is reported. */
static void finish_group(struct run *r)
{
	size_t n = r->nfin, m = 0;
	r->nfin = 0;
	if (r->o->batch) {   /* a batch commits its items together already */
		for (size_t i = 0; i < n; i++)
			finish_batch(r, &r->fin[i]);
		return;
	}
	struct told *t = calloc(n, sizeof *t);
	struct sw_fin *f = calloc(n, sizeof *f);
	enum sw_fin_verb *v = calloc(n, sizeof *v);
	size_t *ix = calloc(n, sizeof *ix);
	if (!t || !f || !v || !ix) {
		free(t);
		free(f);
		free(v);
		free(ix);
		out_of_memory(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &r->fin[i];
		plan_item(r, s, &t[i]);
		if (!t[i].call)
			continue;
		f[m] = (struct sw_fin){ .id = s->id, .token = s->token, .result = t[i].res,
					.error = t[i].err, .retry_ns = -1 };
		v[m] = t[i].verb;
		ix[i] = m++;
	}
	/* one item alone commits as the one-item verbs do (an fsync of its
	 * file and directory, not of the whole filesystem) */
	if (m == 1 && (f[0].rc = sw_queue_apply_one(&r->q, v[0], &f[0])) != 0)
		f[0].err = r->q.err;
	else if (m > 1)
		sw_queue_apply_each(&r->q, v, f, m);
	for (size_t i = 0; i < n; i++)
		told_item(r, &r->fin[i], &t[i], &f[ix[i]]);
	for (size_t k = 0; k < m; k++) {
		json_decref(f[k].out);
		json_decref(f[k].result);
	}
	free(t);
	free(f);
	free(v);
	free(ix);
}

/* ---- a batch's outcomes ------------------------------------------------ */

enum { OUT_DONE, OUT_FAIL, OUT_RELEASE, OUT_LOST };

/* What the command said of each item of its batch: the lines of its
 * stdout that are a JSON object with the id of one of them and "ok" true
 * or false (the last such line of an item counts).  Other lines are no
 * item's, and left alone. */
static int batch_lines(const struct slot *s, int *verb, json_t **said)
{
	json_t *ix = json_object();
	if (!ix)
		return -1;
	for (size_t i = 0; i < s->nb; i++)
		json_object_set_new(ix, s->b[i].id, json_integer((json_int_t)i));
	const char *p = s->out, *end = s->out + s->outlen;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *j = len ? sw_json_parse(p, len, NULL) : NULL;
		const char *id = sw_json_str(j, "id");
		json_t *k = id ? json_object_get(ix, id) : NULL, *ok = json_object_get(j, "ok");
		if (k && json_is_boolean(ok)) {
			size_t i = (size_t)json_integer_value(k);
			json_decref(said[i]);
			said[i] = json_incref(j);
			verb[i] = json_is_true(ok) ? OUT_DONE : OUT_FAIL;
		}
		json_decref(j);
		p += len + 1;
	}
	json_decref(ix);
	return 0;
}

/* A result the item has room for: res, or its JSON text cut to fit, as
 * a string (as output too long is kept).  NULL for none. */
static json_t *fit_result(const struct run *r, const json_t *item, json_t *res)
{
	if (!res)
		return NULL;
	size_t room = result_room(r, item);
	if (json_dumpb(res, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) <= room)
		return json_incref(res);
	char *t = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t keep = room > 16 ? (room - 16) / 6 : 0;   /* an escaped byte takes at most 6 */
	json_t *cut = t && keep ? utf8_string(t, keep < strlen(t) ? keep : strlen(t)) : NULL;
	free(t);
	return cut;
}

/* Tells the queue how the items of s whose verb is v went, in one
 * commit, and prints their lines.  err: the error of an item the command
 * said nothing of. */
static void apply_outcome(struct run *r, struct slot *s, int v, const int *verb, json_t **said,
			  int code, const char *err)
{
	static const enum sw_fin_verb fv[] = { SW_FIN_DONE, SW_FIN_FAIL, SW_FIN_RELEASE };
	struct sw_fin *f = calloc(s->nb, sizeof *f);
	size_t *ix = calloc(s->nb, sizeof *ix), m = 0;
	if (!f || !ix) {
		free(f);
		free(ix);
		out_of_memory(r);
		return;
	}
	for (size_t i = 0; i < s->nb; i++) {
		if (verb[i] != v)
			continue;
		ix[m] = i;
		f[m] = (struct sw_fin){ .id = s->b[i].id, .token = s->b[i].token, .retry_ns = -1, .error = err };
		if (v == OUT_DONE)
			f[m].result = fit_result(r, s->b[i].item, json_object_get(said[i], "result"));
		if (v == OUT_FAIL && said[i])
			f[m].error = json_is_string(json_object_get(said[i], "error")) ?
				sw_json_str(said[i], "error") : "the command said it failed";
		m++;
	}
	if (m && v != OUT_LOST)
		sw_queue_apply(&r->q, fv[v], f, m);
	for (size_t k = 0; k < m; k++) {
		static const char *const name[] = { "done", "pending", "released", "lost" };
		const char *state = name[v];
		if (v == OUT_FAIL && f[k].out)
			state = sw_json_str(f[k].out, "state");
		if (f[k].rc) {
			/* the lease ran out: the item's outcome is its new holder's */
			sw_warn("item %s: %s", f[k].id, f[k].err.msg);
			state = "lost";
		}
		count_state(r, state ? state : "pending");
		report(r, s, &s->b[ix[k]], state ? state : "pending", code, v == OUT_FAIL ? f[k].error : NULL);
		json_decref(f[k].out);
		json_decref(f[k].result);
	}
	free(f);
	free(ix);
}

/* A batch's command and tree are gone: each item it printed an outcome
 * for goes that way, the others the way its exit status says; one verb
 * at a time, each committed with one sync. */
static void finish_batch(struct run *r, struct slot *s)
{
	int code = exit_code_of(s->status), all;
	char err[3 * ERR_TAIL + 64] = "";   /* U+FFFD takes 3 bytes */
	int *verb = calloc(s->nb, sizeof *verb);
	json_t **said = calloc(s->nb, sizeof *said);
	if (!verb || !said) {
		free(verb);
		free(said);
		out_of_memory(r);
		return;
	}
	if (s->abandoned)
		all = strcmp(s->abandoned, "released") ? OUT_LOST : OUT_RELEASE;
	else if (WIFEXITED(s->status) && code == 0)
		all = OUT_DONE;
	else if (WIFEXITED(s->status) && code == EX_TEMPFAIL)
		all = OUT_RELEASE;
	else {
		all = OUT_FAIL;
		error_of(s, err, sizeof err);
	}
	for (size_t i = 0; i < s->nb; i++)
		verb[i] = all;
	if (!s->abandoned) {
		if (batch_lines(s, verb, said) < 0) {
			free(verb);
			free(said);
			out_of_memory(r);
			return;
		}
		if (s->truncated)
			sw_warn("batch of %s: its output was cut at %zu bytes: the items it names no further "
				"went as its exit status says", s->id, s->outmax);
	}
	bool all_done = true;
	for (size_t i = 0; i < s->nb; i++) {
		if (s->b[i].lost)
			verb[i] = OUT_LOST;
		all_done &= verb[i] == OUT_DONE;
	}
	for (int v = OUT_DONE; v <= OUT_LOST; v++)
		apply_outcome(r, s, v, verb, said, code, err);
	if (r->o->once)
		r->once_status = code;
	joblog_line(r, s);
	sw_span_int(&s->sp, "sw.exit_code", code);
	sw_span_end(&s->sp, !all_done, *err ? err : NULL);
	for (size_t i = 0; i < s->nb; i++)
		json_decref(said[i]);
	free(said);
	free(verb);
	slot_clear(s);
	r->claims_dirty = true;
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
			out_of_memory(r);
			return 0;
		}
		s->out = b;
		s->outcap = cap < s->outmax ? cap : s->outmax;
	}
	return n;
}

static void read_out(struct run *r, struct slot *s)
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
static void read_err(struct run *r, struct slot *s)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(s->ferr, buf, sizeof buf);
		if (n > 0) {
			log_err(s, buf, (size_t)n);
			pass_err(r, s, buf, (size_t)n);
			keep_tail(s, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(s->ferr);
			s->ferr = -1;
			pass_end(r, s);
		}
		if (n < 0 && errno == EINTR)
			continue;
		return;
	}
}

static void write_in(struct slot *s)
{
	if (sw_write_more(s->fin, s->in, s->inlen, &s->inoff))
		return;
	close(s->fin);
	s->fin = -1;
}

/* ---- claiming and starting ------------------------------------------- */

/* --log-dir: made if missing, with the umask sw was started with (the
 * logs are the user's, not the workspace's); its absolute path goes into
 * the result lines. */
static int open_log_dir(struct run *r)
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
		out_of_memory(r);
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
	report(r, s, &s->b[0], state ? state : "pending", -1, why);
	json_decref(out);
	slot_clear(s);
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
static int64_t renew_time(const struct bitem *b, size_t n, int64_t now)
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
	s->renew_at = renew_time(b, n, s->started_ns);
	item_span(r, s);
}

/* Gives the n claims of b back at once (two syncs for all). */
static void release_items(struct run *r, struct bitem *b, size_t n)
{
	struct sw_fin *f = calloc(n ? n : 1, sizeof *f);
	if (!f) {
		out_of_memory(r);
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
	release_items(r, s->b, s->nb);
	sw_span_end(&s->sp, true, strerror(e));
	r->claimed -= (long long)s->nb;
	slot_clear(s);
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
		out_of_memory(r);
		return;
	}
	bitem_of(r, item, b);
	slot_take(r, s, b, 1);
	r->claimed++;
	const char *why = NULL;
	if (payload_bytes(item, &s->in, &s->inlen) < 0)
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
	if (spawn_child(r, s) < 0) {
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
		out_of_memory(r);
		return;
	}
	r->gb = next;
	r->gn = 0;
	r->gather_until = 0;
	slot_take(r, s, b, n);
	sw_span_int(&s->sp, "sw.items", (int64_t)n);
	sw_rand_hex(s->batch_id, 8);
	if (batch_input(s) < 0) {
		out_of_memory(r);
		slot_clear(s);   /* its claims run out: the run stops */
		return;
	}
	if (r->logdir >= 0)
		open_log(r, s);
	if (spawn_child(r, s) < 0) {
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
			r->gather_renew_at = renew_time(r->gb, r->gn, sw_now_ns());
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
	while (free_slots(r) > 0) {
		if (may_claim(r) && r->gn < r->o->batch)
			empty = gather(r);
		if (!r->gn)
			break;
		bool full = r->gn == r->o->batch || !may_claim(r);
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
	if (free_slots(r) == 0 || !may_claim(r))
		r->next_poll = INT64_MAX;
	if (r->gn && free_slots(r) > 0 && r->gather_until < r->next_poll)
		r->next_poll = r->gather_until;
}

static int take_item(json_t *item, void *arg)
{
	*(json_t **)arg = item;
	return 0;
}

static void claim_some(struct run *r)
{
	if (r->o->batch) {
		claim_batches(r);
		return;
	}
	r->want_claim = false;
	while (may_claim(r) && free_slots(r) > 0) {
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
	if (free_slots(r) == 0 || !may_claim(r))
		r->next_poll = INT64_MAX;
}

/* ---- process trees ------------------------------------------------------ */
/* An item's tree is its command's process group plus the processes
 * reparented to this agent (a child subreaper) that are its: in its group,
 * or with its SW_ITEM_ID and SW_ITEM_TOKEN in their environment.  Its
 * claim is held, and renewed, until nothing of the tree runs; only then is
 * its outcome told and its slot reused. */

/* The slot still holds its claim: running, lingering, or stopping to be
 * released. */
static bool holds_claim(const struct slot *s)
{
	return s->pid && (!s->abandoned || !strcmp(s->abandoned, "released"));
}

/* Whether s's process group has members.  An empty one is never
 * signalled again: its id may be reused. */
static bool group_alive(struct slot *s)
{
	if (s->group_gone)
		return false;
	if (kill(-s->pid, 0) == 0 || errno != ESRCH)
		return true;    /* EPERM: a member became another user's */
	s->group_gone = true;
	return false;
}

static struct slot *command_slot(struct run *r, pid_t pid)
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
static struct slot *owner_of(struct run *r, pid_t pid)
{
	struct slot *s = command_slot(r, pid);
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
			owner = owner_of(r, ps[i].top);
		if (owner && picked(t, n, owner) && (owner->group_gone || ps[i].pgid != owner->pid))
			ps[keep++] = ps[i];
	}
	return keep;
}

/* Sends sig to the trees of the n slots in t: their process groups first
 * (at once: the walk of /proc takes a while), then every other process of
 * theirs.  A stopped process is woken to act on anything but SIGKILL. */
static void signal_trees(struct run *r, struct slot *const *t, size_t n, int sig)
{
	if (!n)
		return;
	for (size_t k = 0; k < n; k++) {
		if (group_alive(t[k]))
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
			if (group_alive(t[k]))
				(void)kill(-t[k]->pid, SIGCONT);
		sw_proc_kill(0, ps, np, SIGCONT);
	}
	free(ps);
}

/* SIGTERM now, SIGKILL after the kill delay, to the slots not stopping yet. */
static void stop_trees(struct run *r, struct slot *const *t, size_t n, int64_t now)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i]->kill_at)
			continue;
		t[i]->kill_at = now + KILL_AFTER_NS;
		r->pick[k++] = t[i];
	}
	signal_trees(r, r->pick, k, SIGTERM);
}

/* SIGKILL to every tree, now. */
static void kill_all(struct run *r)
{
	size_t n = 0;
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (s->pid) {
			s->kill_at = INT64_MAX;
			r->pick[n++] = s;
		}
	}
	signal_trees(r, r->pick, n, SIGKILL);
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
		out_of_memory(r);
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
	*at = again ? now + SW_NS_PER_SEC : renew_time(b, n, now);
	free(f);
	free(ix);
	return held;
}

static void renew_due(struct run *r, int64_t now)
{
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (!holds_claim(s) || now < s->renew_at)
			continue;
		if (renew_items(r, s->b, s->nb, now, &s->renew_at) == 0) {
			/* every claim is gone: stop the command */
			if (s->nb > 1)
				sw_warn("every item of the batch of %s is lost; stopping its command", s->id);
			s->abandoned = "lost";
			stop_trees(r, &s, 1, now);
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
	release_items(r, r->gb, r->gn);
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
		if (holds_claim(s))
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
		out_of_memory(r);
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
	stop_trees(r, t, n, now);
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
	kill_all(r);
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
		kill_all(r);
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
		out_of_memory(r);
		return 0;
	}
	if (sw_proc_children(&kids, &nk) < 0)
		sw_warn("listing the commands' processes: %s", strerror(errno));
	for (size_t k = 0; k < nk; k++) {
		struct slot *s = owner_of(r, kids[k]);
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
		if (busy[i] || group_alive(s)) {
			/* a tree being killed is watched closely: a dying
			 * process may hand us orphans to kill */
			int64_t again = now + (s->killed ? 100 : 1000) * INT64_C(1000000);
			if (again < r->next_check)
				r->next_check = again;
			if (s->killed)
				r->pick[nkill++] = s;
			continue;
		}
		if (s->fout >= 0) read_out(r, s);
		if (s->ferr >= 0) read_err(r, s);
		r->fin[r->nfin++] = *s;   /* what it owns goes with it */
		nfin++;
		slot_reset(s);
		r->running--;
	}
	free(busy);
	signal_trees(r, r->pick, nkill, SIGKILL);
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
	finish_group(r);
	/* a finished item may have let others through (`after`) */
	r->want_claim = r->empty && free_slots(r) > 0;
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
	if (may_claim(r))
		claim_some(r);
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
		struct slot *s = command_slot(r, pid);
		if (!s)
			continue;
		s->exited = true;
		s->status = st;
		/* what the command wrote before exiting is in the pipes */
		if (s->fout >= 0) read_out(r, s);
		if (s->ferr >= 0) read_err(r, s);
	}
	if (any)
		finish_settled(r);
}

/* ---- progress ---------------------------------------------------------- */

static void progress(struct run *r, int64_t now, bool last)
{
	if (!r->progress || (!last && now < r->next_progress))
		return;
	r->next_progress = now + 200 * 1000000;
	double secs = (double)(now - r->started_ns) / 1e9;
	char line[512];
	int n = snprintf(line, sizeof line,
		"\rsw-agent %s: %lld done, %lld failed, %lld released, %d/%d running, %.1f items/s%s\033[K%s",
		r->id, r->done, r->failed, r->released, r->running, r->o->jobs,
		secs > 0 ? (double)(r->done + r->failed) / secs : 0.0,
		r->draining ? ", draining" : r->empty && !r->running ? ", waiting" : "", last ? "\n" : "");
	if (n > 0 && write(2, line, (size_t)n) < 0)
		r->progress = false;
}

/* ---- the loop -------------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t next_deadline(struct run *r, int64_t now)
{
	int64_t t = r->next_beat;
	if (r->claims_dirty)
		t = min64(t, r->next_record);
	if (!r->draining && free_slots(r) > 0 && may_claim(r))
		t = min64(t, r->next_poll);
	if (sw_waiter_shared(&r->w) && !sw_waiter_watching(&r->w) && waits(r))
		t = min64(t, r->next_lead);
	if (r->gn)
		t = min64(t, r->gather_renew_at);
	for (int i = 0; i < r->o->jobs; i++) {
		struct slot *s = &r->slots[i];
		if (!s->pid)
			continue;
		if (holds_claim(s))
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
	if (!may_claim(r))
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
	signal_trees(r, r->pick, n, SIGKILL);
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
			ob_write(r, owner[k] == -3 ? &r->out : &r->err, false);
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
		case 0: if (s->fin >= 0) write_in(s); break;
		case 1: if (s->fout >= 0) read_out(r, s); break;
		case 2: if (s->ferr >= 0) read_err(r, s); break;
		}
	}
}

static void loop(struct run *r)
{
	int maxfd = 4 + 3 * r->o->jobs;
	struct pollfd *pf = calloc((size_t)maxfd, sizeof *pf);
	int *owner = calloc((size_t)maxfd, sizeof *owner);
	if (!pf || !owner)
		out_of_memory(r);
	r->want_claim = true;
	/* a failure stops the loop at once, as an exit would have: the
	 * caller exits, and nothing more is written or told */
	while (!r->fail.code) {
		int64_t now = sw_now_ns();
		bool looked = r->want_claim && may_claim(r);
		if (looked)
			claim_some(r);
		if (r->fail.code)
			break;
		/* the watcher is one of those who wait; a busy agent lets go */
		if (!waits(r))
			sw_waiter_resign(&r->w);
		else if (looked && !sw_waiter_watching(&r->w) && sw_waiter_lead(&r->w)) {
			claim_some(r);   /* what came before the watch was set */
			continue;
		}
		if (r->empty && !r->running && !r->gn && r->idle_since < 0)
			r->idle_since = now;
		if (!r->empty || r->running)
			r->idle_since = -1;
		progress(r, now, false);
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
	ob_write(r, &r->err, true);
	ob_write(r, &r->out, true);
	progress(r, sw_now_ns(), true);
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
		json_array_append_new(cmd, utf8_string(o->args[i], strlen(o->args[i])));
	json_object_set_new(rec, "command", cmd);
	return rec;
}

/* Everything up to the loop, in the order a mistake is best reported:
 * where the logs go (the caller's typo), the queue, then the fork and
 * the record.  0, or the code of r->fail. */
static int run_start(struct run *r)
{
	const struct sw_agent_run_opts *o = r->o;
	if (o->log_dir && open_log_dir(r))
		return r->fail.code;
	if (o->joblog && open_joblog(r))
		return r->fail.code;
	int rc = sw_queue_open(&r->q, r->ws, o->queue, true);
	if (rc)
		return sw_err_set(&r->fail, rc, "queue %s/queues/%s: %s", r->ws->path, o->queue, r->q.err.msg);
	r->q_open = true;
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
		slot_reset(&r->slots[i]);
	if (env_init(r) || run_setup_signals(r))
		return r->fail.code;
	ob_init(&r->out, 1);
	ob_init(&r->err, 2);
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
