#include "clock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

static int64_t clock_offset(void)
{
	/* read each call: cheap, and keeps no global state */
	const char *s = getenv("SW_CLOCK_OFFSET");
	int64_t off;
	if (!s || !*s || sw_parse_duration_signed(s, &off) < 0)
		return 0;
	return off;
}

int64_t sw_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SW_NS_PER_SEC + ts.tv_nsec + clock_offset();
}

int64_t sw_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SW_NS_PER_SEC + ts.tv_nsec;
}

int sw_parse_duration(const char *s, int64_t *ns)
{
	/* decimal digits only: strtod would also take "nan", "inf", hex and
	 * leading spaces */
	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return -1;
	size_t digits = strspn(s, "0123456789.");
	if (s[digits] == 'e' || s[digits] == 'E' || s[digits] == 'x' || s[digits] == 'X')
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end != s + digits || v < 0)
		return -1;
	double mul;
	if (!*end || !strcmp(end, "s")) mul = 1e9;
	else if (!strcmp(end, "ms")) mul = 1e6;
	else if (!strcmp(end, "m")) mul = 60e9;
	else if (!strcmp(end, "h")) mul = 3600e9;
	else if (!strcmp(end, "d")) mul = 86400e9;
	else return -1;
	double r = v * mul;
	if (!(r <= (double)SW_DURATION_MAX_NS))
		return -1;   /* now + a duration must not overflow */
	*ns = (int64_t)r;
	return 0;
}

int sw_parse_duration_signed(const char *s, int64_t *ns)
{
	if (s && *s == '-') {
		if (sw_parse_duration(s + 1, ns) < 0)
			return -1;
		*ns = -*ns;
		return 0;
	}
	return sw_parse_duration(s, ns);
}

void sw_fmt_duration(int64_t ns, char buf[SW_DUR_LEN])
{
	static const struct { double ns; const char *unit; } units[] = {
		{ 86400e9, "d" }, { 3600e9, "h" }, { 60e9, "m" }, { 1e9, "s" }, { 1e6, "ms" },
	};
	const char *sign = ns < 0 ? "-" : "";
	double v = ns < 0 ? -(double)ns : (double)ns;
	size_t i = 0;
	while (i + 1 < sizeof units / sizeof units[0] && v < units[i].ns)
		i++;
	double x = v / units[i].ns;
	char num[20];
	/* ms are whole, as are large numbers; "2.0" is "2" */
	snprintf(num, sizeof num, x >= 100 || i + 1 == sizeof units / sizeof units[0] ? "%.0f" : "%.1f", x);
	size_t n = strlen(num);
	if (n > 2 && !strcmp(num + n - 2, ".0"))
		num[n - 2] = 0;
	if (ns == 0)
		snprintf(buf, SW_DUR_LEN, "0s");
	else
		snprintf(buf, SW_DUR_LEN, "%s%s%s", sign, num, units[i].unit);
}

void sw_fmt_time(int64_t ns, char buf[SW_TIME_LEN])
{
	time_t sec = (time_t)(ns / SW_NS_PER_SEC);
	long ms = (long)((ns % SW_NS_PER_SEC) / 1000000);
	if (ns < 0) { sec = 0; ms = 0; }
	struct tm tm;
	gmtime_r(&sec, &tm);
	/* not strftime: it reads /etc/localtime on every process's first call */
	snprintf(buf, SW_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int sw_parse_time(const char *s, int64_t *ns)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	int64_t frac = 0;
	if (*p == '.') {
		int64_t scale = SW_NS_PER_SEC;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			scale /= 10;
			frac += (*p - '0') * scale;
		}
	}
	if (strcmp(p, "Z"))
		return -1;
	time_t sec = timegm(&tm);
	/* before 1970 or past what nanoseconds in 64 bits hold: not a time */
	if (sec < 0 || sec > (time_t)(SW_TIME_MAX_NS / SW_NS_PER_SEC))
		return -1;
	*ns = (int64_t)sec * SW_NS_PER_SEC + frac;
	return 0;
}

void sw_sleep_ns(int64_t ns)
{
	if (ns <= 0)
		return;
	struct timespec ts = { ns / SW_NS_PER_SEC, ns % SW_NS_PER_SEC };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
