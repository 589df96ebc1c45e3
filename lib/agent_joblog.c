/* agent_joblog.c — `sw-agent run --joblog` (agent_run_int.h): a line per
 * command, as GNU parallel --joblog writes them. */
#include "agent_run_int.h"
#include "clock.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- --joblog ------------------------------------------------------------ */

/* Opened as GNU parallel does: emptied first, or appended to for
 * "+FILE"; the header line when it is empty.  Lines are appended with one
 * write each, so agents sharing a file (with +) do not cut into each
 * other's lines. */
int run_open_joblog(struct run *r)
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
void run_joblog_line(struct run *r, const struct slot *s)
{
	if (r->joblog < 0)
		return;
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (!f) {
		run_out_of_memory(r);
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
		run_out_of_memory(r);
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
