/* id.h — identifiers: ULIDs for new items, and the one rule every name that
 * becomes part of a file name must pass. */
#ifndef SW_ID_H
#define SW_ID_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SW_ULID_LEN 26
#define SW_NAME_MAX 200

/* 26 Crockford base32 chars + NUL; time-ordered, 80 random bits. */
void sw_ulid(char out[SW_ULID_LEN + 1], int64_t now_ns);
/* Why a name is refused, or NULL when it is fine.  Refused: empty, over
 * 200 bytes, '/', "..", control bytes or DEL, invalid UTF-8, a leading '.'
 * or '-' (hidden files and option look-alikes). */
const char *sw_name_problem(const char *s);
/* Valid UTF-8 (no overlongs, no surrogates) of n bytes. */
bool sw_utf8_valid(const char *s, size_t n);
/* Randomness from getrandom(2), no file to open; small requests come from
 * a pool refilled 256 bytes at a time (forgotten in a forked child).
 * Cannot fail (id.c says why; the impossible case aborts). */
void sw_rand_buf(void *buf, size_t n);
uint32_t sw_rand32(void);
/* Uniform in [0, bound). */
uint32_t sw_rand_below(uint32_t bound);
/* 2n lowercase hex chars of randomness + NUL (n at most 32). */
void sw_rand_hex(char *out, size_t nbytes);
#endif
