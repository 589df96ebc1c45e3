/* err.h — diagnostics and exit codes shared by every sw program.
 * Diagnostics are one line on stderr: "PROG: VERB: what went wrong".
 * Exit codes follow sysexits(3); SW_EX_FALSE means "the asked condition is
 * false" (lease not held, item not found, stale token). */
#ifndef SW_ERR_H
#define SW_ERR_H
#include <stdarg.h>
#include <stddef.h>
#include <sysexits.h>

#define SW_EX_FALSE 1

/* main sets these once; they prefix messages.  sw_prog_set also makes
 * stdout go on after interrupted writes (EINTR), which stdio would
 * otherwise report as errors. */
void sw_prog_set(const char *prog);
void sw_verb_set(const char *verb);
const char *sw_prog(void);

/* The one error of lib: an exit code (sysexits) and one line saying why.
 * A lib function that can fail returns 0 or that code and fills either
 * the struct sw_err it was given or its handle's (a queue's).  Syscall
 * wrappers keep -1 and errno; lib never exits the process. */
struct sw_err {
	int code;
	char msg[512];
};
/* Fills e and returns code.  These write the line as sw_sanitize
 * does: one line, safe on a terminal, whatever names went into it. */
int sw_err_set(struct sw_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with a va_list, for a function of its own that takes a format. */
int sw_err_vset(struct sw_err *e, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/* Sets e's line only, for a function that returns the code itself. */
void sw_err_msg(struct sw_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds to the end of e's line (as much as fits). */
void sw_err_append(struct sw_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sw_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void sw_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies in to out (n bytes) with control characters, C1 controls and
 * bytes that are not UTF-8 written as \xNN: safe on a terminal, one line.
 * sw_warn and sw_die do this to every message. */
void sw_sanitize(const char *in, char *out, size_t n);
/* errno value -> sysexits code: ENOSPC/EIO -> 74, EACCES -> 77, ... */
int sw_ex_errno(int err);
/* main may register one function that sw_die calls before exiting (to
 * close the operation's span with an error status). */
void sw_on_die(void (*fn)(int code, const char *msg, void *arg), void *arg);
#endif
