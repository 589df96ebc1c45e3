/* agent_out.c — what `sw-agent run` writes (agent_run_int.h): a line per
 * item on stdout, the commands' stderr passed on line by line, and the
 * status line. */
#include "agent_run_int.h"
#include "clock.h"
#include "json.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_CAP 4096             /* a longer stderr line is passed on in pieces */

/* Result lines (stdout) and the commands' stderr lines.  Into a pipe they
 * are written only as the reader takes them (at most PIPE_BUF bytes when
 * poll says there is room, which never blocks), so a slow reader cannot
 * stall the renewals; they wait in the buffer meanwhile.  A reader that
 * went away (| head) must not stop the work either: the lines stop, the
 * agent goes on. */
#define OUT_MAX (64u << 20)

void run_ob_init(struct obuf *b, int fd)
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

void run_ob_write(struct run *r, struct obuf *b, bool all)
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
			run_ob_write(r, b, true);   /* a reader this far behind: wait for it */
			if (b->lost)
				return;
		}
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n)
			cap *= 2;
		char *nb = realloc(b->b, cap);
		if (!nb) {
			run_out_of_memory(r);
			return;
		}
		b->b = nb;
		b->cap = cap;
	}
	memcpy(b->b + b->len, line, n);
	b->len += n;
	if (!b->pipe)
		run_ob_write(r, b, true);   /* a file or terminal takes it at once */
}

/* stdout and stderr may share the terminal with the status line: it goes
 * before anything else is written there, and the next run_progress() draws it
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
void run_pass_err(struct run *r, struct slot *s, const char *p, size_t n)
{
	if (r->err.lost)
		return;
	if (!s->line && !(s->line = malloc(LINE_CAP))) {
		run_out_of_memory(r);
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
void run_pass_end(struct run *r, struct slot *s)
{
	if (s->linelen)
		pass_line(r, s, s->line, s->linelen);
	s->linelen = 0;
}

/* Item b's line on stdout (it ran in slot s). */
void run_report(struct run *r, const struct slot *s, const struct bitem *b, const char *state,
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
	/* the progress line is on a terminal: cleared before a result
	 * goes to it (asked only then: not one ioctl an item) */
	if (!r->o->quiet && r->progress && isatty(1))
		progress_clear(r);
	if (!r->o->quiet) {
		size_t n;
		char *line = sw_json_line(j, &n);
		if (line)
			ob_add(r, &r->out, line, n);
		else
			run_out_of_memory(r);
		free(line);
	}
	json_decref(j);
}

/* ---- progress ---------------------------------------------------------- */

void run_progress(struct run *r, int64_t now, bool last)
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
