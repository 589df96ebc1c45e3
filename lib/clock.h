/* clock.h — time, durations and timestamps.
 * All times are int64 nanoseconds since the Unix epoch.  SW_CLOCK_OFFSET
 * (a duration, may be negative: "-2s") shifts this process's idea of now;
 * it exists to simulate a host whose clock is wrong, and is documented in
 * sw(7) for that use only. */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H
#include <stdint.h>
#include <stddef.h>

#define SW_NS_PER_SEC INT64_C(1000000000)

int64_t sw_now_ns(void);
/* The monotonic clock, for intervals and deadlines inside one process
 * (SW_CLOCK_OFFSET does not move it). */
int64_t sw_mono_ns(void);
/* The longest duration taken: 100 years, so that now + a duration (and a
 * skew margin on top) never overflows int64 nanoseconds. */
#define SW_DURATION_MAX_NS (INT64_C(36500) * 86400 * SW_NS_PER_SEC)
/* The latest time taken from outside (a file, a name): one duration
 * (or skew margin) may still be added to it without overflow. */
#define SW_TIME_MAX_NS (INT64_MAX - SW_DURATION_MAX_NS)
/* "30", "30s", "1.5s", "250ms", "5m", "2h", "7d" -> ns; decimal only,
 * at most SW_DURATION_MAX_NS.  -1 on bad input. */
int sw_parse_duration(const char *s, int64_t *ns);
/* The same with an optional leading '-'. */
int sw_parse_duration_signed(const char *s, int64_t *ns);
/* A duration as people read it and sw_parse_duration_signed takes it back:
 * one unit, the largest the value fills, with at most one decimal
 * ("250ms", "1.5s", "5m", "2h", "3.5d"). */
#define SW_DUR_LEN 24
void sw_fmt_duration(int64_t ns, char buf[SW_DUR_LEN]);
/* RFC 3339 UTC with milliseconds: 2026-11-23T11:49:26.123Z */
#define SW_TIME_LEN 32
void sw_fmt_time(int64_t ns, char buf[SW_TIME_LEN]);
/* Parses what sw_fmt_time writes (and whole seconds); -1 on bad input. */
int sw_parse_time(const char *s, int64_t *ns);
/* Sleeps ns (restarting on EINTR only if restart). */
void sw_sleep_ns(int64_t ns);
#endif
