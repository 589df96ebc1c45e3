#include "id.h"
#include "err.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void sw_ulid(char out[SW_ULID_LEN + 1], int64_t now_ns)
{
	uint64_t ms = (uint64_t)(now_ns / 1000000);
	unsigned char r[10];
	sw_rand_buf(r, sizeof r);
	for (int i = 9; i >= 0; i--) {   /* 48-bit time, 10 chars */
		out[i] = crockford[ms & 31];
		ms >>= 5;
	}
	/* 80 random bits -> 16 chars, 5 bits each */
	uint64_t hi = 0, lo = 0;
	for (int i = 0; i < 5; i++) hi = hi << 8 | r[i];
	for (int i = 5; i < 10; i++) lo = lo << 8 | r[i];
	for (int i = 17; i >= 10; i--) { out[i] = crockford[hi & 31]; hi >>= 5; }
	for (int i = 25; i >= 18; i--) { out[i] = crockford[lo & 31]; lo >>= 5; }
	out[SW_ULID_LEN] = 0;
}

bool sw_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		unsigned min;
		if (c < 0x80) { i++; continue; }
		else if ((c & 0xe0) == 0xc0) { len = 2; min = 0x80; c &= 0x1f; }
		else if ((c & 0xf0) == 0xe0) { len = 3; min = 0x800; c &= 0x0f; }
		else if ((c & 0xf8) == 0xf0) { len = 4; min = 0x10000; c &= 0x07; }
		else return false;
		if (i + len > n) return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80) return false;
			c = c << 6 | (s[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

const char *sw_name_problem(const char *s)
{
	size_t n = strlen(s);
	if (n == 0) return "is empty";
	if (n > SW_NAME_MAX) return "is longer than 200 bytes";
	if (s[0] == '.') return "starts with '.'";
	if (s[0] == '-') return "starts with '-'";
	if (strchr(s, '/')) return "contains '/'";
	if (strstr(s, "..")) return "contains '..'";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "contains a control character";
	if (!sw_utf8_valid(s, n)) return "is not valid UTF-8";
	return NULL;
}

/* getrandom(2) without flags blocks until the kernel's pool is ready and
 * then cannot fail but with EINTR (retried), EFAULT or EINVAL (a bug
 * here) or ENOSYS (Linux before 3.17, older than sw runs on): no caller
 * could do anything sensible with "no randomness" (a token, a nonce, an
 * id), so that impossible case aborts, saying why, rather than return an
 * error every caller would have to carry. */
static void getrandom_all(void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR) continue;
			sw_warn("getrandom: %s", strerror(errno));
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

/* Random bytes fetched 256 at a time: a batch of a thousand items takes
 * a few getrandom calls, not one a nonce and one a token.  A forked child
 * forgets them, so that parent and child never hand out the same. */
static _Thread_local struct { unsigned char b[256]; size_t left; } pool;
static bool pool_hooked;

static void pool_forget(void)
{
	pool.left = 0;
}

void sw_rand_buf(void *buf, size_t n)
{
	if (n > sizeof pool.b / 4) {
		getrandom_all(buf, n);
		return;
	}
	if (!pool_hooked && pthread_atfork(NULL, NULL, pool_forget) == 0)
		pool_hooked = true;
	if (!pool_hooked) {   /* no fork hook: no pool either */
		getrandom_all(buf, n);
		return;
	}
	if (pool.left < n) {
		getrandom_all(pool.b, sizeof pool.b);
		pool.left = sizeof pool.b;
	}
	memcpy(buf, pool.b + sizeof pool.b - pool.left, n);
	memset(pool.b + sizeof pool.b - pool.left, 0, n);
	pool.left -= n;
}

uint32_t sw_rand32(void)
{
	uint32_t v;
	sw_rand_buf(&v, sizeof v);
	return v;
}

uint32_t sw_rand_below(uint32_t bound)
{
	if (bound < 2)
		return 0;
	/* rejection sampling: no modulo bias */
	uint32_t min = -bound % bound, r;
	do r = sw_rand32(); while (r < min);
	return r % bound;
}

void sw_rand_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[32];
	if (nbytes > sizeof b) nbytes = sizeof b;
	sw_rand_buf(b, nbytes);
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * nbytes] = 0;
}
