/* test_limit — lib/tlist, lib/chain, lib/limit and lib/breaker through
 * their APIs: the list encoding on good and bad strings, rates and specs,
 * the chain's compare-and-swap (one winner, a stale writer undone, a
 * damaged newest version), the token bucket and the sliding window
 * against their definitions, four processes taking flat out (never more
 * than the rate allows, and nearly all it allows), slots as leases, and
 * the breaker's transitions with racing recorders. */
#include "tap.h"
#include "breaker.h"
#include "chain.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include "limit.h"
#include "tlist.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS INT64_C(1000000)

static int tlist_roundtrip(const char *s)
{
	struct sw_tlist l;
	if (sw_tlist_parse(s, strlen(s), 1000, &l) < 0)
		return -1;
	char *f = sw_tlist_format(&l);
	int same = f && !strcmp(f, s);
	free(f);
	sw_tlist_free(&l);
	return same ? 0 : 1;
}

static void test_tlist(void)
{
	ok(tlist_roundtrip("") == 0, "tlist: the empty list");
	ok(tlist_roundtrip("1767225600000000,250000x3,1000") == 0, "tlist: times, deltas and counts round-trip");
	static const char *const bad[] = { ",", "1,", ",1", "1,,2", "1,0", "1x0", "1x", "x2", "-1", "1 ,2", "1.5",
					   "99999999999999999999", "1,2x1001", "9223372036854775807", "01", "1x1", "1,02" };
	int nbad = 0;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sw_tlist l;
		if (sw_tlist_parse(bad[i], strlen(bad[i]), 1000, &l) < 0)
			nbad++;
		sw_tlist_free(&l);
	}
	ok(nbad == (int)(sizeof bad / sizeof bad[0]), "tlist: %d of %zu bad lists refused", nbad,
	   sizeof bad / sizeof bad[0]);
	struct sw_tlist l = {0};
	sw_tlist_add(&l, 10, 2);
	sw_tlist_add(&l, 20, 3);
	sw_tlist_add(&l, 20, 1);
	sw_tlist_add(&l, 30, 1);
	ok(l.n == 3 && l.total == 7 && sw_tlist_count_after(&l, 15) == 5, "tlist: equal times join, counts after");
	sw_tlist_keep_last(&l, 3);
	ok(l.total == 3 && l.n == 2 && l.t[0] == 20 && l.c[0] == 2, "tlist: keep_last cuts into the oldest entry");
	sw_tlist_drop_until(&l, 20);
	ok(l.total == 1 && l.n == 1 && l.t[0] == 30, "tlist: drop_until");
	sw_tlist_free(&l);
}

static void test_rates(void)
{
	struct sw_rate r;
	const char *why;
	ok(sw_rate_parse("100/s", &r, &why) == 0 && r.n == 100 && r.period_ns == SW_NS_PER_SEC, "rate 100/s");
	ok(sw_rate_parse("5000/h", &r, &why) == 0 && r.n == 5000 && r.period_ns == 3600 * SW_NS_PER_SEC,
	   "rate 5000/h");
	static const char *const bad[] = { "0/s", "-1/s", "5/fortnight", "1.5/s", "/s", "5", "5/", "5/S", "+5/s",
					   "1000001/s", "99999999999999999999999/s", "5/s ", " 5/s", "0x10/s" };
	int nbad = 0;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		nbad += sw_rate_parse(bad[i], &r, &why) < 0;
	ok(nbad == (int)(sizeof bad / sizeof bad[0]), "rates: %d of %zu bad ones refused", nbad,
	   sizeof bad / sizeof bad[0]);
	struct sw_limit_spec s = { .kind = SW_LIMIT_BUCKET, .rate = { 1, 86400 * SW_NS_PER_SEC }, .burst = 1000000 };
	ok(sw_limit_spec_problem(&s, 1) != NULL, "a burst worth more than 100 years is refused");
	s.burst = 10;
	ok(sw_limit_spec_problem(&s, 11) != NULL && sw_limit_spec_problem(&s, 10) == NULL,
	   "a count above the burst is refused");
}

static struct sw_chain chain_at(int dfd)
{
	return (struct sw_chain){ .dfd = dfd, .sync = SW_SYNC_OFF, .max_bytes = 4096, .keep = 4, .hint_every = 2 };
}

static void test_chain(const char *dir)
{
	char p[256];
	snprintf(p, sizeof p, "%s/chain", dir);
	mkdir(p, 0700);
	int dfd = open(p, O_RDONLY | O_DIRECTORY);
	struct sw_chain c = chain_at(dfd);
	struct sw_chain_ver a, b, v;
	struct sw_err err;
	ok(sw_chain_latest(&c, &a, &err) == 0 && a.seq == 0, "chain: empty");
	json_t *j = json_pack("{s:i}", "x", 1);
	ok(sw_chain_write(&c, &a, j, false, &err) == 0, "chain: first version");
	ok(sw_chain_write(&c, &a, j, false, &err) == SW_CHAIN_LOST, "chain: a second writer from the same base loses");
	for (int i = 0; i < 10; i++) {
		sw_chain_latest(&c, &b, &err);
		sw_chain_write(&c, &b, j, false, &err);
		sw_chain_ver_free(&b);
	}
	ok(sw_chain_latest(&c, &b, &err) == 0 && b.seq == 11 && sw_json_int(b.j, "x", 0) == 1, "chain: v.11 newest");
	/* a writer that read v.1 long ago: v.2 was cleaned up, so its create
	 * of v.2 succeeds, and its re-read of v.1 (gone) undoes it */
	ok(sw_chain_write(&c, &a, j, false, &err) == SW_CHAIN_LOST && faccessat(dfd, "v.00000000000000000002", F_OK, 0) < 0,
	   "chain: a stale writer's version is undone");
	int fd = openat(dfd, "v.00000000000000000012", O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd >= 0 && write(fd, "{\"seq\":12", 9) == 9, "chain: plant a torn v.12");
	close(fd);
	ok(sw_chain_latest(&c, &v, &err) == 0 && v.seq == 12 && v.damaged && !v.j && v.written_ns > 0,
	   "chain: a torn newest version is damaged, known by its time");
	ok(sw_chain_write(&c, &v, j, false, &err) == 0, "chain: a write over a damaged version");
	sw_chain_ver_free(&b);
	sw_chain_ver_free(&v);
	json_decref(j);
	close(dfd);
}

static int take(const struct sw_ws *ws, const char *name, const struct sw_limit_spec *s, uint64_t n,
		struct sw_limit_grant *g)
{
	struct sw_err err;
	return sw_limit_take(ws, name, s, n, -1, g, &err);
}

static void test_bucket(const struct sw_ws *ws)
{
	struct sw_limit_spec s = { .kind = SW_LIMIT_BUCKET, .rate = { 10, SW_NS_PER_SEC }, .burst = 3 };
	struct sw_limit_grant g;
	int granted = 0;
	for (int i = 0; i < 5; i++)
		granted += take(ws, "b", &s, 1, &g) == 0;
	ok(granted == 3 && !g.granted && g.retry_ns - g.now_ns > 50 * MS && g.retry_ns - g.now_ns <= 100 * MS,
	   "bucket: the burst at once, then refused for about one interval (%lld ms)",
	   (long long)((g.retry_ns - g.now_ns) / MS));
	sw_sleep_ns(g.retry_ns - sw_now_ns() + MS);
	ok(take(ws, "b", &s, 1, &g) == 0 && take(ws, "b", &s, 1, &g) == EX_TEMPFAIL, "bucket: one more per 100 ms");
	/* exact whatever the machine's delays: one more was due at due1, two
	 * are one interval later (or now, if that has passed) */
	int64_t due1 = g.retry_ns;
	struct sw_err err;
	int rc = sw_limit_take(ws, "b", &s, 2, 10 * SW_NS_PER_SEC, &g, &err);
	int64_t want = due1 + 100 * MS > g.now_ns ? due1 + 100 * MS : g.now_ns, at2 = g.at_ns;
	ok(rc == 0 && g.at_ns >= want - MS && g.at_ns <= want + MS,
	   "bucket: a wait reserves the time two are due (%lld ms ahead, %lld ms off)",
	   (long long)((g.at_ns - g.now_ns) / MS), (long long)((g.at_ns - want) / MS));
	rc = sw_limit_take(ws, "b", &s, 1, 50 * MS, &g, &err);
	ok((rc == EX_TEMPFAIL) == (g.at_ns - g.now_ns > 50 * MS) && g.at_ns > at2,
	   "bucket: a wait too short is refused, due behind the reservation (%lld ms)",
	   (long long)((g.retry_ns - g.now_ns) / MS));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_window(const struct sw_ws *ws)
{
	struct sw_limit_spec s = { .kind = SW_LIMIT_WINDOW, .window_ns = 200 * MS, .max = 4 };
	struct sw_limit_grant g;
	int64_t times[64];
	int n = 0;
	int64_t until = sw_now_ns() + 700 * MS;
	while (sw_now_ns() < until && n < 64)
		if (take(ws, "w", &s, 1, &g) == 0)
			times[n++] = g.recorded_ns;
	qsort(times, (size_t)n, sizeof *times, cmp_i64);
	int worst = 0;
	for (int i = 0; i + 4 < n; i++)
		if (times[i + 4] - times[i] < s.window_ns)
			worst++;
	ok(n >= 12 && n <= 16 && worst == 0, "window: %d grants in 700 ms under 4 per 200 ms, no window over", n);
	struct sw_err err;
	ok(sw_limit_take(ws, "w", &s, 5, -1, &g, &err) == EX_USAGE, "window: a count above max is refused (64)");
}

/* Four processes take flat out for a second under 100/s burst 5: at
 * most 105 granted, and, with contention, at least 60 of them (make
 * check runs this beside three lanes of suites on two cores, where four
 * takers may not get a second of CPU; the >= 95% figure is make
 * check-long's and make bench's). */
static void test_contention(const struct sw_ws *ws)
{
	struct sw_limit_spec s = { .kind = SW_LIMIT_BUCKET, .rate = { 100, SW_NS_PER_SEC }, .burst = 5 };
	int pfd[2];
	if (pipe(pfd) < 0)
		return;
	int64_t start = sw_now_ns() + 50 * MS, end = start + SW_NS_PER_SEC;
	for (int k = 0; k < 4; k++) {
		if (fork() == 0) {
			struct sw_limit_grant g;
			int n = 0;
			sw_sleep_ns(start - sw_now_ns());
			while (sw_now_ns() < end)
				if (take(ws, "hot", &s, 1, &g) == 0 && g.recorded_ns < end)
					n++;
			_exit(write(pfd[1], &n, sizeof n) == sizeof n ? 0 : 1);
		}
	}
	close(pfd[1]);
	int total = 0, n;
	while (read(pfd[0], &n, sizeof n) == sizeof n)
		total += n;
	close(pfd[0]);
	while (wait(NULL) > 0)
		;
	ok(total <= 105 && total >= 60, "contention: 4 takers for 1 s under 100/s burst 5: %d granted", total);
}

static void test_slots(const struct sw_ws *ws)
{
	struct sw_limit_slot a = {0}, b = {0}, c = {0};
	struct sw_err err;
	int64_t free_ns;
	struct sw_lease l;
	int ra = sw_limit_acquire(ws, "pg", 2, "t", SW_NS_PER_SEC, &a, &free_ns, &err);
	int rb = sw_limit_acquire(ws, "pg", 2, "t", SW_NS_PER_SEC, &b, &free_ns, &err);
	ok(ra == 0 && rb == 0 && a.slot != b.slot, "slots: two of two, distinct (%u, %u)", a.slot, b.slot);
	ok(sw_limit_acquire(ws, "pg", 2, "t", SW_NS_PER_SEC, &c, &free_ns, &err) == EX_TEMPFAIL && free_ns > sw_now_ns(),
	   "slots: a third is refused (%s)", err.msg);
	ok(sw_limit_release(ws, "pg", a.slot, a.lease.token + 1, &l, &err) == SW_EX_FALSE,
	   "slots: release with another token: 1");
	ok(sw_limit_release(ws, "pg", a.slot, a.lease.token, &l, &err) == 0 &&
	   sw_limit_acquire(ws, "pg", 2, "t", SW_NS_PER_SEC, &c, &free_ns, &err) == 0 && c.slot == a.slot &&
	   c.lease.token == a.lease.token + 1, "slots: a released slot is taken again with the next token");
}

static struct sw_breaker_spec bspec(void)
{
	return (struct sw_breaker_spec){ .failures = 3, .window_ns = 10 * SW_NS_PER_SEC, .cooldown_ns = 100 * MS,
		.max_cooldown_ns = 300 * MS, .probes = 2, .probe_ttl_ns = SW_NS_PER_SEC };
}

static void test_breaker(const struct sw_ws *ws)
{
	struct sw_breaker_spec s = bspec();
	struct sw_breaker_pass p, q, r;
	struct sw_breaker_rec rec;
	struct sw_err err;
	ok(sw_breaker_admit(ws, "br", &s, &p, &err) == 0 && p.state == SW_BREAKER_CLOSED, "breaker: closed");
	for (int i = 0; i < 3; i++)
		sw_breaker_record(ws, "br", &s, false, 0, &rec, &err);
	ok(rec.before == SW_BREAKER_CLOSED && rec.after == SW_BREAKER_OPEN && rec.trips == 1,
	   "breaker: the third failure opens it");
	ok(sw_breaker_admit(ws, "br", &s, &p, &err) == EX_TEMPFAIL && p.state == SW_BREAKER_OPEN,
	   "breaker: open refuses (%s)", err.msg);
	sw_sleep_ns(110 * MS);
	ok(sw_breaker_admit(ws, "br", &s, &p, &err) == 0 && p.probe.slot && sw_breaker_admit(ws, "br", &s, &q, &err) == 0 &&
	   q.probe.slot && q.probe.slot != p.probe.slot && sw_breaker_admit(ws, "br", &s, &r, &err) == EX_TEMPFAIL,
	   "breaker: half-open hands out exactly two probes");
	ok(sw_breaker_record(ws, "br", &s, true, p.probe.token, &rec, &err) == 0 && rec.after == SW_BREAKER_HALF_OPEN &&
	   sw_breaker_record(ws, "br", &s, true, p.probe.token, &rec, &err) == SW_EX_FALSE,
	   "breaker: one probe's success; its token then stale");
	ok(sw_breaker_record(ws, "br", &s, false, q.probe.token, &rec, &err) == 0 && rec.after == SW_BREAKER_OPEN &&
	   rec.trips == 2 && rec.open_until_ns - sw_now_ns() > 150 * MS,
	   "breaker: a probe's failure opens it again, cooldown doubled");
	sw_sleep_ns(210 * MS);
	ok(sw_breaker_admit(ws, "br", &s, &p, &err) == 0 && sw_breaker_admit(ws, "br", &s, &q, &err) == 0 &&
	   sw_breaker_record(ws, "br", &s, true, p.probe.token, &rec, &err) == 0 &&
	   sw_breaker_record(ws, "br", &s, true, q.probe.token, &rec, &err) == 0 && rec.after == SW_BREAKER_CLOSED,
	   "breaker: two successes close it");
	/* racing recorders: 3 processes × 5 failures with --failures 15:
	 * open exactly at the last one, none lost */
	s.failures = 15;
	sw_breaker_reset(ws, "race", &s, &err);
	for (int k = 0; k < 3; k++)
		if (fork() == 0) {
			for (int i = 0; i < 5; i++)
				sw_breaker_record(ws, "race", &s, false, 0, &rec, &err);
			_exit(0);
		}
	while (wait(NULL) > 0)
		;
	int rc = sw_breaker_admit(ws, "race", &s, &p, &err);
	ok(rc == EX_TEMPFAIL && p.trips == 1, "breaker: 15 racing failures open it once (trips %llu)",
	   (unsigned long long)p.trips);
	struct sw_breaker_spec rs = { .ratio_mode = true, .ratio = 0.5, .min_calls = 4, .window_ns = 10 * SW_NS_PER_SEC,
		.cooldown_ns = SW_NS_PER_SEC, .max_cooldown_ns = SW_NS_PER_SEC, .probes = 1, .probe_ttl_ns = SW_NS_PER_SEC };
	for (int i = 0; i < 3; i++)
		sw_breaker_record(ws, "ratio", &rs, i != 1, 0, &rec, &err);
	ok(rec.after == SW_BREAKER_CLOSED, "breaker: 1 of 3 failed, under min-calls: closed");
	sw_breaker_record(ws, "ratio", &rs, false, 0, &rec, &err);
	ok(rec.after == SW_BREAKER_OPEN, "breaker: 2 of 4 failed at ratio 0.5: open");
}

int main(void)
{
	char dir[] = "/tmp/test_limit.XXXXXX";
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	setenv("SW_SYNC", "off", 1);
	setenv("SW_CLOCK_SKEW", "5ms", 1);
	unsetenv("SW_CLOCK_OFFSET");
	struct sw_ws ws;
	struct sw_err e;
	if (sw_ws_open(&ws, dir, true, &e)) {
		printf("Bail out! %s\n", e.msg);
		return 1;
	}
	test_tlist();
	test_rates();
	test_chain(dir);
	test_bucket(&ws);
	test_window(&ws);
	test_contention(&ws);
	test_slots(&ws);
	test_breaker(&ws);
	sw_ws_close(&ws);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
