/* tlist.c — event times with counts; see tlist.h for the string form. */
#include "tlist.h"
#include "clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_MAX_US (SW_TIME_MAX_NS / 1000)

void sw_tlist_free(struct sw_tlist *l)
{
	free(l->t);
	free(l->c);
	memset(l, 0, sizeof *l);
}

static int grow(struct sw_tlist *l)
{
	if (l->n < l->cap)
		return 0;
	size_t nc = l->cap ? l->cap * 2 : 16;
	int64_t *t = realloc(l->t, nc * sizeof *t);
	if (!t)
		return -1;
	l->t = t;
	uint64_t *c = realloc(l->c, nc * sizeof *c);
	if (!c)
		return -1;
	l->c = c;
	l->cap = nc;
	return 0;
}

int sw_tlist_add(struct sw_tlist *l, int64_t t, uint64_t count)
{
	if (l->n && t <= l->t[l->n - 1]) {
		/* the same time (or, by a clock that went back, an earlier one:
		 * kept at the last time, so the list never goes backwards) */
		l->c[l->n - 1] += count;
		l->total += count;
		return 0;
	}
	if (grow(l) < 0)
		return -1;
	l->t[l->n] = t;
	l->c[l->n++] = count;
	l->total += count;
	return 0;
}

static void drop_first(struct sw_tlist *l, size_t k)
{
	for (size_t i = 0; i < k; i++)
		l->total -= l->c[i];
	memmove(l->t, l->t + k, (l->n - k) * sizeof *l->t);
	memmove(l->c, l->c + k, (l->n - k) * sizeof *l->c);
	l->n -= k;
}

void sw_tlist_drop_until(struct sw_tlist *l, int64_t cutoff)
{
	size_t k = 0;
	while (k < l->n && l->t[k] <= cutoff)
		k++;
	if (k)
		drop_first(l, k);
}

void sw_tlist_keep_last(struct sw_tlist *l, uint64_t keep)
{
	if (l->total <= keep)
		return;
	uint64_t excess = l->total - keep;
	size_t k = 0;
	while (k < l->n && l->c[k] <= excess)
		excess -= l->c[k++];
	drop_first(l, k);
	if (excess) {
		/* part of the oldest entry left goes */
		l->c[0] -= excess;
		l->total -= excess;
	}
}

uint64_t sw_tlist_count_after(const struct sw_tlist *l, int64_t cutoff)
{
	uint64_t n = 0;
	for (size_t i = l->n; i > 0 && l->t[i - 1] > cutoff; i--)
		n += l->c[i - 1];
	return n;
}

/* A decimal number of 1 to 19 digits at *p (before end), without leading
 * zeros (one list, one spelling); advances *p. */
static bool number(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	while (*p < end && **p >= '0' && **p <= '9' && *p - s < 19)
		x = x * 10 + (uint64_t)(*(*p)++ - '0');
	if (*p == s || (*p < end && **p >= '0' && **p <= '9') || (*s == '0' && *p - s > 1))
		return false;
	*v = x;
	return true;
}

int sw_tlist_parse(const char *s, size_t len, uint64_t max, struct sw_tlist *out)
{
	memset(out, 0, sizeof *out);
	const char *p = s, *end = s + len;
	int64_t t = 0;
	while (p < end) {
		uint64_t v, c = 1;
		if (!number(&p, end, &v) || v > (uint64_t)T_MAX_US || (uint64_t)t > (uint64_t)T_MAX_US - v)
			goto bad;
		if (p < end && *p == 'x') {
			p++;
			/* a count of 1 is written without "x1" */
			if (!number(&p, end, &c) || c < 2 || c > max)
				goto bad;
		}
		if (out->n && v == 0)
			goto bad;          /* equal times are one entry */
		t = out->n ? t + (int64_t)v : (int64_t)v;
		if (out->n >= max || out->total + c > max || sw_tlist_add(out, t, c) < 0)
			goto bad;
		if (p < end && (*p++ != ',' || p == end))
			goto bad;
	}
	return 0;
bad:
	sw_tlist_free(out);
	return -1;
}

char *sw_tlist_format(const struct sw_tlist *l)
{
	size_t cap = l->n * 42 + 1;
	char *s = malloc(cap), *p = s;
	if (!s)
		return NULL;
	*p = 0;
	for (size_t i = 0; i < l->n; i++) {
		int64_t v = i ? l->t[i] - l->t[i - 1] : l->t[i];
		p += sprintf(p, "%s%lld", i ? "," : "", (long long)v);
		if (l->c[i] > 1)
			p += sprintf(p, "x%llu", (unsigned long long)l->c[i]);
	}
	return s;
}
