#include "num.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The digits of s (after an optional '-' when neg), at least one; false
 * for anything else. */
static bool digits_only(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int fail(int e)
{
	errno = e;
	return -1;
}

int sw_parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	if (!s || !digits_only(s, strlen(s)))
		return fail(EINVAL);
	uint64_t x = 0;
	for (const char *p = s; *p; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (x > UINT64_MAX / 10 || (x == UINT64_MAX / 10 && d > UINT64_MAX % 10))
			return fail(ERANGE);
		x = x * 10 + d;
	}
	if (x > max)
		return fail(ERANGE);
	*v = x;
	return 0;
}

int sw_parse_i64(const char *s, int64_t min, int64_t max, int64_t *v)
{
	bool neg = s && *s == '-';
	if (!s || (neg && min >= 0))
		return fail(EINVAL);
	uint64_t mag;
	if (sw_parse_u64(s + neg, (uint64_t)INT64_MAX + neg, &mag) < 0)
		return -1;
	int64_t x = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
	if (x < min || x > max)
		return fail(ERANGE);
	*v = x;
	return 0;
}

int sw_parse_real(const char *s, double min, double max, double *v)
{
	if (!s)
		return fail(EINVAL);
	const char *p = s + (*s == '-' && min < 0);
	size_t ip = strspn(p, "0123456789");
	size_t fp = p[ip] == '.' ? strspn(p + ip + 1, "0123456789") : 0;
	size_t len = ip + (p[ip] == '.' ? 1 + fp : 0);
	/* "1.", ".5" and "1.5" are decimals; ".", "-", "1e3", "0x1" are not */
	if (ip + fp == 0 || p[len] || len > 64)
		return fail(EINVAL);
	errno = 0;
	char *end;
	double x = strtod(s, &end);
	if (errno || *end)
		return fail(ERANGE);
	if (!(x >= min && x <= max))
		return fail(ERANGE);
	*v = x;
	return 0;
}

int sw_parse_size(const char *s, uint64_t max, uint64_t *v)
{
	if (!s)
		return fail(EINVAL);
	size_t n = strlen(s);
	uint64_t mul = 1;
	if (n > 1) {
		switch (s[n - 1]) {
		case 'K': mul = 1ULL << 10; break;
		case 'M': mul = 1ULL << 20; break;
		case 'G': mul = 1ULL << 30; break;
		case 'T': mul = 1ULL << 40; break;
		}
	}
	char num[32];
	size_t dn = mul == 1 ? n : n - 1;
	if (dn == 0 || dn >= sizeof num)
		return fail(EINVAL);
	memcpy(num, s, dn);
	num[dn] = 0;
	uint64_t x;
	if (sw_parse_u64(num, UINT64_MAX / mul, &x) < 0)
		return -1;
	if (x * mul > max)
		return fail(ERANGE);
	*v = x * mul;
	return 0;
}
