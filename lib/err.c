#include "err.h"
#include "id.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog_name = "sw";
static const char *verb_name;
static void (*die_fn)(int, const char *, void *);
static void *die_arg;

void sw_on_die(void (*fn)(int, const char *, void *), void *arg)
{
	die_fn = fn;
	die_arg = arg;
}

/* stdout through a write that goes on after EINTR and short writes: stdio
 * would report an interrupted write as an error and drop what it held. */
static ssize_t out_write(void *cookie, const char *buf, size_t n)
{
	(void)cookie;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(1, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static void stdout_init(void)
{
	cookie_io_functions_t io = { .write = out_write };
	FILE *f = fopencookie(NULL, "w", io);
	if (!f)
		return;   /* plain stdio then */
	setvbuf(f, NULL, isatty(1) ? _IOLBF : _IOFBF, 65536);
	stdout = f;
}

void sw_prog_set(const char *prog)
{
	prog_name = prog;
	stdout_init();
}
void sw_verb_set(const char *verb) { verb_name = verb; }
const char *sw_prog(void) { return prog_name; }

/* Length of the UTF-8 sequence at s (at most n bytes) when it is valid and
 * not a C1 control (U+0080-U+009F: a terminal reads 0xc2 0x9b as CSI),
 * else 0. */
static size_t printable_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (!len || len > n || !sw_utf8_valid((const char *)s, len))
		return 0;
	if (len == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		return 0;
	return len;
}

void sw_sanitize(const char *in, char *out, size_t n)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, left = strlen(in);
	while (*s && o + 5 < n) {
		size_t k = *s >= 0x80 ? printable_seq(s, left) : (*s >= 0x20 && *s != 0x7f);
		if (k && o + k < n) {
			memcpy(out + o, s, k);
			o += k;
		} else {
			k = 1;
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", *s);
		}
		s += k;
		left -= k;
	}
	out[o] = 0;
}

static void vwarn_line(const char *fmt, va_list ap, char msg[1024])
{
	char raw[1024];
	vsnprintf(raw, sizeof raw, fmt, ap);
	/* names, ids and paths in messages may come from anywhere: no byte of
	 * them reaches the terminal as a control sequence or a second line */
	sw_sanitize(raw, msg, 1024);
	/* one write, so concurrent processes' lines do not interleave */
	if (verb_name)
		fprintf(stderr, "%s: %s: %s\n", prog_name, verb_name, msg);
	else
		fprintf(stderr, "%s: %s\n", prog_name, msg);
}

/* Formats into out[n] as sw_sanitize writes it: a name read from the
 * workspace (a ring's node, an item's id) may hold a newline or an escape
 * sequence, and a message is one line wherever it ends up (stderr, a
 * JSON outcome, a span), not only when sw_warn prints it. */
static void vformat_line(char *out, size_t n, const char *fmt, va_list ap)
{
	char raw[sizeof ((struct sw_err *)0)->msg];
	vsnprintf(raw, sizeof raw, fmt, ap);
	sw_sanitize(raw, out, n);
}

int sw_err_vset(struct sw_err *e, int code, const char *fmt, va_list ap)
{
	vformat_line(e->msg, sizeof e->msg, fmt, ap);
	e->code = code;
	return code;
}

int sw_err_set(struct sw_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sw_err_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

void sw_err_msg(struct sw_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat_line(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

void sw_err_append(struct sw_err *e, const char *fmt, ...)
{
	size_t len = strnlen(e->msg, sizeof e->msg - 1);
	va_list ap;
	va_start(ap, fmt);
	vformat_line(e->msg + len, sizeof e->msg - len, fmt, ap);
	va_end(ap);
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
