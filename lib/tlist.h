/* tlist.h — a short list of event times with counts, kept inside a
 * version file: the grants of a sliding window (limit.c) and the outcomes
 * of a circuit breaker's window (breaker.c).
 *
 * Times are microseconds since the epoch, never decreasing; an entry
 * holds a count of events at that time.  In a file the list is one
 * string: the first time, then each next one as the difference from the
 * one before, "xN" after an entry whose count is N > 1:
 *     "1767225600000000,250000x3,1000"
 * Read from the workspace, it is untrusted: digits only, without leading
 * zeros, times bounded by SW_TIME_MAX_NS, at most max entries and a total
 * of at most max; a list has one spelling, the one sw_tlist_format
 * writes. */
#ifndef SW_TLIST_H
#define SW_TLIST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sw_tlist {
	size_t n, cap;
	int64_t *t;             /* µs since the epoch, never decreasing */
	uint64_t *c;            /* count at t[i], at least 1 */
	uint64_t total;         /* sum of c */
};

/* Bounds of a list read from a file. */
#define SW_TLIST_MAX 1000000

/* Parses s (len bytes, no NUL needed): 0, or -1 (bad list, or more than
 * max entries or a total over max).  out is empty on failure; free it
 * with sw_tlist_free either way. */
int sw_tlist_parse(const char *s, size_t len, uint64_t max, struct sw_tlist *out);
/* The string form (malloc'd), or NULL when out of memory. */
char *sw_tlist_format(const struct sw_tlist *l);
/* Appends count events at t (not before the last entry, which it joins
 * when equal): 0, or -1 when out of memory. */
int sw_tlist_add(struct sw_tlist *l, int64_t t, uint64_t count);
/* Drops the entries at or before cutoff. */
void sw_tlist_drop_until(struct sw_tlist *l, int64_t cutoff);
/* Drops the oldest entries until at most keep events are left. */
void sw_tlist_keep_last(struct sw_tlist *l, uint64_t keep);
/* Events after cutoff. */
uint64_t sw_tlist_count_after(const struct sw_tlist *l, int64_t cutoff);
void sw_tlist_free(struct sw_tlist *l);
#endif
