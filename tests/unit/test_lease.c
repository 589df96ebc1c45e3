/* test_lease — lib/lease.c through its API (what sw-metrics will use):
 * return codes, states, listing, tokens that only grow past the deleted
 * versions, readers that ignore a stray old version, a damaged version
 * read as a grant of the next token, a lease that expires before its
 * writer can report it, the version parser on any bytes, and four
 * processes hammering one lease with a short TTL: no two belief
 * intervals overlap; and sw_hold_run told a renewal that came past the
 * guardian's deadline apart from one that found the grant gone. */
#include "tap.h"
#include "clock.h"
#include "err.h"
#include "hold.h"
#include "lease.h"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int count_held(const struct sw_lease *l, void *arg)
{
	if (l->state == SW_LEASE_HELD)
		++*(int *)arg;
	return 0;
}

struct interval { uint64_t token; int64_t start, end; };

static int cmp_iv(const void *a, const void *b)
{
	const struct interval *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* One contender: records [acquired, last expiry or release) per token. */
static void contend(struct sw_ws *ws, int fd, unsigned seed)
{
	struct sw_err err;
	char line[96];
	struct sw_lease l;
	int64_t until = sw_now_ns() + 1500 * INT64_C(1000000);
	srand(seed);
	while (sw_now_ns() < until) {
		if (sw_lease_acquire(ws, "hot", "t", 20 * 1000000, &l, &err)) {
			sw_sleep_ns(rand() % 2000000);
			continue;
		}
		int64_t start = l.acquired_ns, end = l.expires_ns;
		uint64_t token = l.token;
		int renews = rand() % 3;
		for (int i = 0; i < renews; i++) {
			sw_sleep_ns((rand() % 4 == 0 ? 25 : 6) * 1000000);
			if (sw_lease_renew(ws, "hot", token, 20 * 1000000, &l, &err))
				break;
			end = l.expires_ns;
		}
		if (rand() % 3 && sw_lease_release(ws, "hot", token, &l, &err) == 0 && l.released_ns < end)
			end = l.released_ns;
		int n = snprintf(line, sizeof line, "%llu %lld %lld\n", (unsigned long long)token,
				 (long long)start, (long long)end);
		if (write(fd, line, (size_t)n) != n)
			_exit(2);
	}
}

/* A version file as lease.c writes it, with the given token and ttl_ms. */
static int version_line(char *buf, size_t n, uint64_t seq, const char *token, const char *ttl_ms)
{
	return snprintf(buf, n, "{\"name\":\"v\",\"seq\":%llu,\"token\":%s,\"owner\":\"h:1\","
			"\"state\":\"held\",\"ttl_ms\":%s,\"vid\":\"0af7\",\"acquired_at_unix_ns\":1,"
			"\"renewed_at_unix_ns\":1,\"expires_at_unix_ns\":2}\n", (unsigned long long)seq, token, ttl_ms);
}

static int parses(const char *s, uint64_t seq)
{
	struct sw_lease l;
	char vid[33];
	return sw_lease_version_parse(s, strlen(s), seq, &l, vid) == 0;
}

/* Random bytes and random mutations of a good version: never a crash,
 * and whatever parses is within the bounds the rest of lease.c assumes. */
static void parse_fuzz(void)
{
	char good[512], buf[512];
	int n = version_line(good, sizeof good, 7, "3", "1000");
	size_t bad = 0, parsed = 0;
	srand(42);
	for (int i = 0; i < 20000; i++) {
		size_t len;
		if (i % 2) {
			len = (size_t)(rand() % (int)sizeof buf);
			for (size_t k = 0; k < len; k++)
				buf[k] = (char)(rand() % 256);
		} else {
			memcpy(buf, good, (size_t)n);
			len = (size_t)n;
			for (int k = rand() % 4; k >= 0; k--)
				buf[rand() % n] = "0123456789-\"{}[],:e.\\u\0"[rand() % 24];
		}
		struct sw_lease l;
		char vid[33];
		if (sw_lease_version_parse(buf, len, 7, &l, vid) < 0)
			continue;
		parsed++;
		if (l.token < 1 || l.token > (uint64_t)INT64_MAX || l.seq != 7 || l.ttl_ns < 0 ||
		    l.ttl_ns > SW_DURATION_MAX_NS || l.expires_ns < 0 || strlen(l.owner) > SW_LEASE_OWNER_MAX ||
		    strlen(vid) > 32 || strlen(vid) < 1)
			bad++;
	}
	ok(bad == 0 && parsed > 0, "parser on 20000 random and mutated inputs: %zu parsed, %zu out of bounds",
	   parsed, bad);
}

static void parse_cases(void)
{
	char b[512];
	version_line(b, sizeof b, 7, "3", "1000");
	ok(parses(b, 7), "parser: a good version");
	ok(!parses(b, 8), "parser: another seq's version is refused");
	version_line(b, sizeof b, 7, "0", "1000");
	ok(!parses(b, 7), "parser: token 0 refused");
	version_line(b, sizeof b, 7, "9223372036854775808", "1000");
	ok(!parses(b, 7), "parser: token past 2^63-1 refused");
	version_line(b, sizeof b, 7, "-4", "1000");
	ok(!parses(b, 7), "parser: negative token refused");
	version_line(b, sizeof b, 7, "3", "9223372036854775807");
	ok(!parses(b, 7), "parser: a ttl_ms whose nanoseconds overflow is refused");
	version_line(b, sizeof b, 7, "\"3\"", "1000");
	ok(!parses(b, 7), "parser: a token that is a string is refused");
	ok(!parses("", 7) && !parses("[]", 7) && !parses("7", 7) && !parses("null", 7),
	   "parser: empty input and JSON that is not an object are refused");
	ok(!parses("{\"name\":\"v\",\"seq\":7,\"token\":3,\"owner\":\"a\\u0000b\",\"state\":\"held\","
		   "\"vid\":\"x\"}", 7), "parser: a NUL inside a string is refused");
	ok(!parses("{\"name\":\"../v\",\"seq\":7,\"token\":3,\"owner\":\"a\",\"state\":\"held\",\"vid\":\"x\"}", 7),
	   "parser: a bad name is refused");
	ok(!parses("{\"name\":\"v\",\"seq\":7,\"token\":3,\"owner\":\"a\",\"state\":\"held\",\"vid\":\"x\","
		   "\"expires_at_unix_ns\":-5}", 7), "parser: a negative time is refused");
	ok(!parses("{\"name\":\"v\",\"seq\":7,\"token\":3,\"token\":4,\"owner\":\"a\",\"state\":\"held\","
		   "\"vid\":\"x\"}", 7), "parser: a duplicate key is refused");
	ok(!parses("{\"name\":\"v\",\"seq\":7,\"token\":3,\"owner\":\"a\",\"state\":\"gone\",\"vid\":\"x\"}", 7),
	   "parser: an unknown state is refused");
	ok(parses("{\"name\":\"v\",\"seq\":7,\"token\":3,\"owner\":\"?\",\"state\":\"released\",\"vid\":\"x\","
		  "\"expires_at_unix_ns\":6069665436854775807}", 7), "parser: owner '?' and the latest time parse");
	ok(!parses("{\"name\":\"v\",\"seq\":7,\"token\":3,\"owner\":\"a\",\"state\":\"held\",\"vid\":\"x\","
		   "\"expires_at_unix_ns\":9223372036854775807}", 7), "parser: a time a margin cannot be added to is refused");
	parse_fuzz();
}

/* A damaged newest version (empty: a grant whose data a power loss took)
 * is a grant of the token after the one before it, to an unknown owner,
 * held one TTL from the file's time. */
static void damaged(struct sw_ws *ws, const char *dir)
{
	struct sw_err err;
	char path[160];
	struct sw_lease l;
	sw_lease_acquire(ws, "dmg", "o", SW_NS_PER_SEC, &l, &err);
	sw_lease_release(ws, "dmg", l.token, &l, &err);
	snprintf(path, sizeof path, "%s/leases/dmg/v.%020d", dir, 3);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	close(fd);
	int rc = sw_lease_read(ws, "dmg", &l, &err);
	ok(rc == 0 && l.token == 2 && !strcmp(l.owner, "?") && l.state == SW_LEASE_HELD &&
	   l.expires_ns - l.acquired_ns == SW_NS_PER_SEC,
	   "a damaged newest version: token 2 held by '?' for the TTL before it (token %llu, owner %s)",
	   (unsigned long long)l.token, l.owner);
	ok(sw_lease_acquire(ws, "dmg", "p", SW_NS_PER_SEC, &l, &err) == EX_TEMPFAIL,
	   "while it lasts the lease is busy (%s)", err.msg);
	struct timespec old[2] = { { time(NULL) - 10, 0 }, { time(NULL) - 10, 0 } };
	utimensat(AT_FDCWD, path, old, 0);
	ok(sw_lease_acquire(ws, "dmg", "p", SW_NS_PER_SEC, &l, &err) == 0 && l.token == 3,
	   "a TTL after its write time it is taken with token 3, never 2 again (%llu)", (unsigned long long)l.token);
}

/* A writer that reports a lease only while it is valid by its clock:
 * here the TTL is over before the write is. */
static void expired_on_arrival(struct sw_ws *ws)
{
	struct sw_err err;
	struct sw_lease l;
	ok(sw_lease_acquire(ws, "eoa", "o", 1, &l, &err) == EX_TEMPFAIL && strstr(err.msg, "expired"),
	   "an acquisition whose lease expired before it was in place: 75 (%s)", err.msg);
	sw_sleep_ns(6000000);
	ok(sw_lease_acquire(ws, "eoa", "o", SW_NS_PER_SEC, &l, &err) == 0 && l.token == 2,
	   "the next acquisition gets the next token (%llu)", (unsigned long long)l.token);
	ok(sw_lease_renew(ws, "eoa", 2, 1, &l, &err) == SW_EX_FALSE && strstr(err.msg, "expired"),
	   "a renewal whose lease expired before it was in place: 1 (%s)", err.msg);
}

/* ---- a renewal past the guardian's deadline ----------------------------- */

/* The first renewal returns rc just before the grant expires: past the
 * deadline the guardian kills the tree by (the expiry less a tenth of
 * the TTL), before the expiry itself. */
struct late_renew { int rc; };

static int renew_late(void *arg, int64_t ttl_ns, int64_t *expires_ns, struct sw_err *err)
{
	struct late_renew *lr = arg;
	int64_t left = *expires_ns - sw_now_ns() - ttl_ns / 40;
	if (left > 0)
		sw_sleep_ns(left);
	if (lr->rc) {
		sw_err_set(err, lr->rc, "gone");
		return lr->rc;
	}
	*expires_ns = sw_now_ns() + ttl_ns;
	return 0;
}

/* Runs sleep 30 under a 2 s grant whose first renewal is late and returns
 * rc; the worker (the guardian is its parent, our child) writes the
 * result on a pipe: lost, held_late. */
static int hold_late(int rc, bool *lost, bool *held_late)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	fflush(stdout);    /* the TAP lines so far are not the child's to print again */
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		/* the guardian's and the loss's words are expected here */
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2);
		char *cmd[] = { "sleep", "30", NULL };
		struct late_renew lr = { rc };
		struct sw_hold h = {
			.cmd = cmd, .umask = 022, .grace_ns = SW_NS_PER_SEC / 10, .ttl_ns = 2 * SW_NS_PER_SEC,
			.expires_ns = sw_now_ns() + 2 * SW_NS_PER_SEC, .what = "grant", .renew = renew_late,
			.arg = &lr, .quiet = true,
		};
		struct sw_hold_result res;
		char out[2] = { 'x', 'x' };
		if (sw_hold_run(&h, &res) == 0) {
			out[0] = res.lost ? 'L' : '-';
			out[1] = res.held_late ? 'H' : '-';
		}
		_exit(write(p[1], out, 2) == 2 ? 0 : 1);
	}
	close(p[1]);
	char in[2];
	ssize_t n = read(p[0], in, 2);
	close(p[0]);
	waitpid(pid, NULL, 0);
	if (n != 2 || in[0] == 'x')
		return -1;
	*lost = in[0] == 'L';
	*held_late = in[1] == 'H';
	return 0;
}

static void late_renewals(void)
{
	bool lost = false, held = false;
	int rc = hold_late(0, &lost, &held);
	ok(rc == 0 && lost && held, "a renewal that succeeds past the guardian's deadline: the tree is "
	   "stopped (lost) and the grant is still held, to give back (rc %d lost %d held_late %d)", rc, lost, held);
	rc = hold_late(SW_EX_FALSE, &lost, &held);
	ok(rc == 0 && lost && !held, "one that finds the grant gone as late: lost, nothing to give back "
	   "(rc %d lost %d held_late %d)", rc, lost, held);
}

int main(void)
{
	char dir[] = "/tmp/test_lease.XXXXXX", path[128];
	struct sw_err err;
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	setenv("SW_SYNC", "off", 1);
	setenv("SW_CLOCK_SKEW", "5ms", 1);
	unsetenv("SW_CLOCK_OFFSET");
	struct sw_ws ws;
	{ struct sw_err e; if (sw_ws_open(&ws, dir, true, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; } }
	struct sw_lease l;

	ok(sw_lease_read(&ws, "a", &l, &err) == SW_EX_FALSE, "read of an unknown lease: 1");
	ok(sw_lease_acquire(&ws, "../x", "o", SW_NS_PER_SEC, &l, &err) == EX_DATAERR, "bad name: 65 (%s)", err.msg);
	ok(sw_lease_acquire(&ws, "a", "o", 10 * SW_NS_PER_SEC, &l, &err) == 0 && l.token == 1 &&
	   l.state == SW_LEASE_HELD, "acquire: token 1, held");
	ok(sw_lease_acquire(&ws, "a", "p", SW_NS_PER_SEC, &l, &err) == EX_TEMPFAIL && !strcmp(l.owner, "o"),
	   "acquire of a held lease: 75 and the holder (%s)", err.msg);
	ok(sw_lease_renew(&ws, "a", 2, SW_NS_PER_SEC, &l, &err) == SW_EX_FALSE, "renew with a wrong token: 1");
	ok(sw_lease_check(&ws, "a", 1, &l, &err) == 0, "check of the holder: 0");
	ok(sw_lease_acquire(&ws, "b", "o", SW_NS_PER_SEC, &l, &err) == 0, "second lease");
	ok(sw_lease_release(&ws, "b", 1, &l, &err) == 0 && l.state == SW_LEASE_RELEASED, "release");
	ok(sw_lease_acquire(&ws, "c", "o", 50000000, &l, &err) == 0, "third lease, 50ms");
	sw_sleep_ns(60000000);
	ok(sw_lease_read(&ws, "c", &l, &err) == 0 && l.state == SW_LEASE_EXPIRED, "expired after its ttl");
	int held = 0, lrc = sw_lease_list(&ws, count_held, &held, &err);
	ok(lrc == 0 && held == 1, "list: one of three held (%d)", held);
	ok(!strcmp(sw_lease_state_name(SW_LEASE_HELD), "held") &&
	   !strcmp(sw_lease_state_name(SW_LEASE_FREE), "free"), "state names");
	uint64_t t;
	ok(sw_lease_token_parse("42", &t) && t == 42 && !sw_lease_token_parse("0", &t) &&
	   !sw_lease_token_parse("-1", &t) && !sw_lease_token_parse("1x", &t) &&
	   !sw_lease_token_parse("99999999999999999999", &t), "token parsing");

	/* 150 versions: the oldest are deleted, tokens keep growing */
	uint64_t last = 0;
	int grew = 1;
	for (int i = 0; i < 50; i++) {
		if (sw_lease_acquire(&ws, "d", "o", SW_NS_PER_SEC, &l, &err) || l.token <= last)
			grew = 0;
		last = l.token;
		if (sw_lease_renew(&ws, "d", last, 0, &l, &err) || sw_lease_release(&ws, "d", last, &l, &err))
			grew = 0;
	}
	ok(grew && last == 50, "50 acquisitions over 150 versions: tokens 1..50 (%llu)", (unsigned long long)last);
	snprintf(path, sizeof path, "%s/leases/d/v.%020d", dir, 1);
	ok(access(path, F_OK) < 0, "old versions deleted");
	/* a stray old version (a stale writer that died before undoing its
	 * write) and a missing head hint do not fool readers */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	dprintf(fd, "{\"name\":\"d\",\"seq\":1,\"token\":99,\"owner\":\"x\",\"state\":\"held\",\"vid\":\"z\","
		"\"expires_at_unix_ns\":%lld}\n", (long long)(sw_now_ns() + 3600 * SW_NS_PER_SEC));
	close(fd);
	snprintf(path, sizeof path, "%s/leases/d/head", dir);
	unlink(path);
	ok(sw_lease_read(&ws, "d", &l, &err) == 0 && l.token == 50 && l.seq == 150,
	   "reader finds v.150 by listing, not the stray (token %llu seq %llu)",
	   (unsigned long long)l.token, (unsigned long long)l.seq);
	ok(sw_lease_acquire(&ws, "d", "o", SW_NS_PER_SEC, &l, &err) == 0 && l.token == 51, "next token 51");
	damaged(&ws, dir);
	expired_on_arrival(&ws);
	parse_cases();
	late_renewals();

	/* four processes, 20ms TTL, 5ms margin, 1.5s */
	snprintf(path, sizeof path, "%s/intervals", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		if ((pids[i] = fork()) == 0) {
			contend(&ws, fd, (unsigned)i + 1);
			_exit(0);
		}
	}
	int clean = 1;
	for (int i = 0; i < 4; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	close(fd);
	ok(clean, "contenders exited cleanly");
	FILE *f = fopen(path, "r");
	static struct interval iv[100000];
	size_t n = 0;
	unsigned long long tk;
	long long s, e;
	while (f && n < 100000 && fscanf(f, "%llu %lld %lld", &tk, &s, &e) == 3)
		iv[n++] = (struct interval){ tk, s, e };
	if (f)
		fclose(f);
	qsort(iv, n, sizeof iv[0], cmp_iv);
	size_t overlaps = 0, order = 0;
	for (size_t i = 1; i < n; i++) {
		if (iv[i].start < iv[i - 1].end)
			overlaps++;
		if (iv[i].token <= iv[i - 1].token)
			order++;
	}
	ok(n > 20, "%zu acquisitions", n);
	ok(overlaps == 0, "no two holders at once (%zu overlaps)", overlaps);
	ok(order == 0, "tokens grow in order of acquisition (%zu out of order)", order);

	sw_ws_close(&ws);
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
