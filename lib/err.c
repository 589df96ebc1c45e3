#include "err.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog_name = "sw";
static const char *verb_name;
static void (*die_fn)(int, const char *, void *);
static void *die_arg;

void sw_on_die(void (*fn)(int, const char *, void *), void *arg)
{
	die_fn = fn;
	die_arg = arg;
}

void sw_prog_set(const char *prog) { prog_name = prog; }
void sw_verb_set(const char *verb) { verb_name = verb; }
const char *sw_prog(void) { return prog_name; }

static void vwarn_line(const char *fmt, va_list ap, char msg[1024])
{
	vsnprintf(msg, 1024, fmt, ap);
	/* one write, so concurrent processes' lines do not interleave */
	if (verb_name)
		fprintf(stderr, "%s: %s: %s\n", prog_name, verb_name, msg);
	else
		fprintf(stderr, "%s: %s\n", prog_name, msg);
}

void sw_warn(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vwarn_line(fmt, ap, msg);
	va_end(ap);
}

_Noreturn void sw_die(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vwarn_line(fmt, ap, msg);
	va_end(ap);
	if (die_fn) {
		void (*fn)(int, const char *, void *) = die_fn;
		die_fn = NULL;      /* a failure inside fn must not recurse */
		fn(code, msg, die_arg);
	}
	fflush(stdout);
	exit(code);
}

int sw_ex_errno(int err)
{
	switch (err) {
	case EACCES: case EPERM: case EROFS: return EX_NOPERM;
	case ENOSPC: case EDQUOT: case EIO: case EFBIG: return EX_IOERR;
	case ENOENT: case ENOTDIR: case ENOTCONN: case ESTALE: return EX_UNAVAILABLE;
	case EEXIST: case ENAMETOOLONG: case EMLINK: return EX_CANTCREAT;
	case EAGAIN: case EBUSY: case EINTR: return EX_TEMPFAIL;
	case ENOMEM: return EX_SOFTWARE;
	default: return EX_IOERR;
	}
}
