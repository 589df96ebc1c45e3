/* fuzz.h — what the fuzz targets share.
 *
 * Each tests/fuzz/<target>.c defines LLVMFuzzerTestOneInput and is built
 * twice: with clang's libFuzzer (make fuzz) and with gcc against replay.c
 * (make fuzz-replay, which make check runs over the corpus and the kept
 * regressions).  A target keeps no state from one input to the next and
 * frees all it allocates: libFuzzer runs millions of inputs in one
 * process, with leak detection on.
 *
 * A property a parser promises and breaks is a crash too: fz_check
 * aborts, so libFuzzer keeps the input like any other finding. */
#ifndef SW_FUZZ_H
#define SW_FUZZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fz_check(cond) \
	((cond) ? (void)0 : (fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
				     #cond), abort()))

/* The input as a NUL-terminated string (malloc'd, exactly size + 1 bytes,
 * so ASan sees a read past its end): what a parser of argv, environment
 * variables or link targets gets.  An embedded NUL cuts it short there,
 * as it would in the real source. */
static inline char *fz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/* Calls fn for every line of data (split at '\n', without it; with
 * strip_cr also without one '\r' before it), each as a buffer of exactly
 * its length, so a read past a line's end is an ASan error.  A last line
 * without a newline counts too.  fn returns false to stop. */
static inline void fz_lines(const uint8_t *data, size_t size, bool strip_cr,
			    bool (*fn)(const char *line, size_t len, void *arg), void *arg)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t len = strip_cr && n > 0 && p[n - 1] == '\r' ? n - 1 : n;
		char *line = malloc(len ? len : 1);
		if (!line)
			abort();
		if (len)
			memcpy(line, p, len);
		bool more = fn(line, len, arg);
		free(line);
		if (!more)
			return;
		p += n + (nl != NULL);
	}
}
#endif
