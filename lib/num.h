/* num.h — the one family of number parsers, for every number a user or a
 * file gives: decimal digits only (no hex, no exponent, no "inf" or "nan",
 * no spaces, no '+'), a '-' only where negatives are allowed, and a range.
 * Each returns 0, or -1 with errno EINVAL (not such a number) or ERANGE
 * (out of range).  Durations (clock.h) follow the same rules. */
#ifndef SW_NUM_H
#define SW_NUM_H
#include <stdbool.h>
#include <stdint.h>

int sw_parse_i64(const char *s, int64_t min, int64_t max, int64_t *v);
int sw_parse_u64(const char *s, uint64_t max, uint64_t *v);
/* "12", "0.5", "-3.25" (the '-' only when min < 0). */
int sw_parse_real(const char *s, double min, double max, double *v);
/* Bytes: "4096", "64K", "1M", "2G" (powers of 1024). */
int sw_parse_size(const char *s, uint64_t max, uint64_t *v);
#endif
