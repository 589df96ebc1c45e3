/* test_lib.c — unit tests for libsw: durations, timestamps, ULIDs, the
 * name rule, W3C traceparent, atomic file helpers, tokens, state masks.
 * Prints TAP; exits non-zero when anything failed. */
#include "tap.h"
#include "atomic.h"
#include "clock.h"
#include "fs.h"
#include "id.h"
#include "num.h"
#include "queue.h"
#include "span.h"
#include "ws.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- durations ------------------------------------------------------- */

static void dur_is(const char *s, int64_t want)
{
	int64_t ns = -42;
	int rc = sw_parse_duration(s, &ns);
	ok(rc == 0 && ns == want, "duration '%s' = %lld ns (got rc %d, %lld)", s, (long long)want, rc,
	   (long long)ns);
}

static void dur_bad(const char *s)
{
	int64_t ns = -42;
	ok(sw_parse_duration(s, &ns) < 0 && ns == -42, "duration '%s' refused, result untouched", s);
}

static void test_durations(void)
{
	const int64_t S = SW_NS_PER_SEC;
	dur_is("30", 30 * S);
	dur_is("30s", 30 * S);
	dur_is("0", 0);
	dur_is("250ms", 250 * INT64_C(1000000));
	dur_is("1.5s", 1500 * INT64_C(1000000));
	dur_is("5m", 300 * S);
	dur_is("2h", 7200 * S);
	dur_is("7d", 7 * 86400 * S);
	dur_bad("");
	dur_bad("-1");
	dur_bad("-1s");
	dur_bad("+1s");
	dur_bad("5x");
	dur_bad("s");
	dur_bad("abc");
	dur_bad("1 s");
	dur_bad("5mm");
	dur_bad("1e30d");
	dur_bad("nan");
	dur_bad("inf");
	dur_bad("0x10");
	dur_bad(" 1s");
	dur_bad("1e3");
	dur_bad("36501d");          /* over 100 years: now + it would overflow */
	dur_is("36500d", SW_DURATION_MAX_NS);
	int64_t ns = 0;
	{
		static const struct { int64_t ns; const char *s; } fmt[] = {
			{ 0, "0s" }, { 250 * 1000000LL, "250ms" }, { 1500 * 1000000LL, "1.5s" },
			{ 300 * S, "5m" }, { 90 * S, "1.5m" }, { 7200 * S, "2h" }, { 3 * 86400 * S, "3d" },
			{ -2 * S, "-2s" }, { 150 * 86400 * S, "150d" },
		};
		for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
			char b[SW_DUR_LEN];
			int64_t back;
			sw_fmt_duration(fmt[i].ns, b);
			ok(!strcmp(b, fmt[i].s) && sw_parse_duration_signed(b, &back) == 0 && back == fmt[i].ns,
			   "duration %lld ns prints as '%s' (got '%s') and parses back", (long long)fmt[i].ns, fmt[i].s, b);
		}
	}
	ok(sw_parse_duration_signed("-2s", &ns) == 0 && ns == -2 * S, "signed duration '-2s' = -2 s");
	ok(sw_parse_duration_signed("3m", &ns) == 0 && ns == 180 * S, "signed duration '3m' = 180 s");
	ok(sw_parse_duration_signed("--2s", &ns) < 0, "signed duration '--2s' refused");
}

/* ---- RFC 3339 ---------------------------------------------------------- */

static void test_times(void)
{
	char buf[SW_TIME_LEN];
	const int64_t t = INT64_C(1795434566) * SW_NS_PER_SEC + 123456789;
	sw_fmt_time(t, buf);
	ok(!strcmp(buf, "2026-11-23T11:49:26.123Z"), "fmt_time gives RFC 3339 UTC with ms: %s", buf);
	int64_t back = 0;
	ok(sw_parse_time(buf, &back) == 0 && back == t - 456789, "parse_time(fmt_time(t)) = t to the ms");
	sw_fmt_time(0, buf);
	ok(!strcmp(buf, "1970-01-01T00:00:00.000Z"), "fmt_time(0) is the epoch: %s", buf);
	ok(sw_parse_time("2026-11-23T11:49:26Z", &back) == 0 && back == INT64_C(1795434566) * SW_NS_PER_SEC,
	   "parse_time takes whole seconds");
	ok(sw_parse_time("2026-11-23T11:49:26.5Z", &back) == 0 &&
	   back == INT64_C(1795434566) * SW_NS_PER_SEC + SW_NS_PER_SEC / 2, "parse_time takes a short fraction");
	/* leap day and end of year survive the round trip */
	const int64_t days[] = { INT64_C(1709164800), INT64_C(1767225599), INT64_C(4102444800) };
	for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
		int64_t v = days[i] * SW_NS_PER_SEC + 999 * INT64_C(1000000);
		sw_fmt_time(v, buf);
		ok(sw_parse_time(buf, &back) == 0 && back == v, "round trip %s", buf);
	}
	int64_t untouched = 7;
	ok(sw_parse_time("2026-11-23 11:49:26Z", &untouched) < 0, "parse_time refuses a space for T");
	ok(sw_parse_time("2026-11-23T11:49:26+01:00", &untouched) < 0, "parse_time refuses a zone offset");
	ok(sw_parse_time("2026-11-23T11:49:26", &untouched) < 0, "parse_time refuses no zone");
	ok(sw_parse_time("yesterday", &untouched) < 0, "parse_time refuses garbage");
	ok(untouched == 7, "a refused time leaves the result untouched");
	int64_t a = sw_now_ns(), b = sw_now_ns();
	ok(a > INT64_C(1700000000) * SW_NS_PER_SEC && b >= a, "now is after 2023 and does not go back");
	setenv("SW_CLOCK_OFFSET", "-1h", 1);
	int64_t c = sw_now_ns();
	unsetenv("SW_CLOCK_OFFSET");
	ok(a - c > 3599 * SW_NS_PER_SEC && a - c < 3601 * SW_NS_PER_SEC, "SW_CLOCK_OFFSET=-1h shifts now");
}

/* ---- ULIDs ----------------------------------------------------------- */

static int crockford_val(char c)
{
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	const char *p = c ? strchr(alpha, c) : NULL;
	return p ? (int)(p - alpha) : -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void test_ulid(void)
{
	char u[SW_ULID_LEN + 1];
	const int64_t t = INT64_C(1795434566123) * 1000000;
	sw_ulid(u, t);
	int shape = strlen(u) == SW_ULID_LEN;
	for (int i = 0; i < SW_ULID_LEN; i++)
		shape = shape && crockford_val(u[i]) >= 0;
	ok(shape, "ULID is 26 Crockford base32 characters: %s", u);
	uint64_t ms = 0;
	for (int i = 0; i < 10; i++)
		ms = ms * 32 + (uint64_t)crockford_val(u[i]);
	ok(ms == UINT64_C(1795434566123), "ULID's first 10 characters are the milliseconds");
	ok(sw_name_problem(u) == NULL, "a ULID passes the name rule");

	char prev[SW_ULID_LEN + 1];
	int ordered = 1;
	sw_ulid(prev, t);
	for (int i = 1; i < 1000; i++) {
		sw_ulid(u, t + (int64_t)i * 1000000);
		ordered = ordered && strcmp(prev, u) < 0;
		memcpy(prev, u, sizeof u);
	}
	ok(ordered, "ULIDs of later milliseconds sort after earlier ones");

	enum { N = 20000 };
	static char many[N][SW_ULID_LEN + 1];
	for (int i = 0; i < N; i++)
		sw_ulid(many[i], t);   /* the same millisecond: only randomness differs */
	qsort(many, N, sizeof many[0], cmp_str);
	int uniq = 1;
	for (int i = 1; i < N; i++)
		uniq = uniq && strcmp(many[i - 1], many[i]) != 0;
	ok(uniq, "20000 ULIDs in one millisecond are distinct");
}

/* ---- the name rule ------------------------------------------------------- */

static void name_ok(const char *s, const char *what)
{
	const char *why = sw_name_problem(s);
	ok(why == NULL, "name accepted: %s%s%s", what, why ? " -- " : "", why ? why : "");
}

static void name_bad(const char *s, const char *what)
{
	ok(sw_name_problem(s) != NULL, "name refused: %s", what);
}

static void test_names(void)
{
	char buf[512];
	name_ok("job-1", "job-1");
	name_ok("a.b_c:d@e", "dots, underscores, colons, at signs");
	name_ok("01M844Y0ZTG3A5KA6NVJMSSJ90", "a ULID");
	name_ok("\xc3\xbcnic\xc3\xb6" "de-\xe2\x82\xac-\xf0\x9f\x98\x80", "UTF-8 (2, 3 and 4 byte sequences)");
	name_ok("a.", "a trailing dot");
	memset(buf, 'x', 200); buf[200] = 0;
	name_ok(buf, "200 bytes");
	memset(buf, 'x', 201); buf[201] = 0;
	name_bad(buf, "201 bytes");
	/* 67 three-byte characters: 201 bytes though 67 characters */
	buf[0] = 0;
	for (int i = 0; i < 67; i++) strcat(buf, "\xe2\x82\xac");
	name_bad(buf, "201 bytes of multi-byte characters");
	name_bad("", "empty");
	name_bad("a/b", "contains '/'");
	name_bad("/", "is '/'");
	name_bad("..", "is '..'");
	name_bad("a..b", "contains '..'");
	name_bad("x/../y", "a path climbing up");
	name_bad(".hidden", "a leading '.'");
	name_bad(".", "is '.'");
	name_bad("-rf", "a leading '-'");
	name_bad("a\tb", "a tab");
	name_bad("a\nb", "a newline");
	name_bad("\x01", "control byte 0x01");
	name_bad("a\x1f", "control byte 0x1f");
	name_bad("a\x7f", "DEL");
	name_bad("a\xff", "byte 0xff (invalid UTF-8)");
	name_bad("\xc0\xaf", "overlong '/' (invalid UTF-8)");
	name_bad("\xe2\x82", "truncated sequence");
	name_bad("\xed\xa0\x80", "a UTF-16 surrogate");
	name_bad("\xf4\x90\x80\x80", "above U+10FFFF");
	name_bad("\x80" "abc", "a lone continuation byte");
	/* NUL cannot be inside a C string: the JSON \u0000 case is in the bats
	 * suite; here, what is after a NUL is never seen */
	ok(sw_utf8_valid("ab\0cd", 5), "utf8_valid counts NUL as valid UTF-8 (the name rule stops at it)");
	ok(!sw_utf8_valid("\xc3", 1), "utf8_valid refuses a sequence cut by the length");
	ok(sw_utf8_valid("\xc3\xa9", 2), "utf8_valid takes a 2-byte sequence");
}

/* ---- W3C traceparent --------------------------------------------------- */

#define TP_TRACE "0af7651916cd43dd8448eb211c80319c"
#define TP_PARENT "b7ad6b7169203331"

static void tp_bad(const char *s, const char *what)
{
	char tr[33] = "untouched", pa[17] = "untouched";
	ok(!sw_traceparent_parse(s, tr, pa), "traceparent refused: %s", what);
}

static void test_traceparent(void)
{
	char tr[33], pa[17];
	ok(sw_traceparent_parse("00-" TP_TRACE "-" TP_PARENT "-01", tr, pa) &&
	   !strcmp(tr, TP_TRACE) && !strcmp(pa, TP_PARENT), "valid traceparent gives trace and parent ids");
	ok(sw_traceparent_parse("00-" TP_TRACE "-" TP_PARENT "-00", tr, pa), "flags 00 (not sampled) is valid");
	ok(sw_traceparent_parse("cc-" TP_TRACE "-" TP_PARENT "-01-future", tr, pa) && !strcmp(tr, TP_TRACE),
	   "a future version may carry more fields");
	tp_bad("", "empty");
	tp_bad("00-" TP_TRACE "-" TP_PARENT "-0", "one character short");
	tp_bad("00-" TP_TRACE "-" TP_PARENT "-011", "one character long (version 00)");
	tp_bad("00-" TP_TRACE "-" TP_PARENT "-01-x", "extra fields on version 00");
	tp_bad("00-0af7651916cd43dd8448eb211c80319-" TP_PARENT "-01", "trace id 31 characters");
	tp_bad("00-" TP_TRACE "-" TP_PARENT "-0g", "non-hex flags");
	tp_bad("00-0af7651916cd43dd8448eb211c80319z-" TP_PARENT "-01", "non-hex trace id");
	tp_bad("00-" TP_TRACE "-b7ad6b716920333x-01", "non-hex parent id");
	tp_bad("0x-" TP_TRACE "-" TP_PARENT "-01", "non-hex version");
	tp_bad("00-0AF7651916CD43DD8448EB211C80319C-" TP_PARENT "-01", "uppercase trace id");
	tp_bad("00-" TP_TRACE "-B7AD6B7169203331-01", "uppercase parent id");
	tp_bad("ff-" TP_TRACE "-" TP_PARENT "-01", "version ff");
	tp_bad("00-00000000000000000000000000000000-" TP_PARENT "-01", "all-zero trace id");
	tp_bad("00-" TP_TRACE "-0000000000000000-01", "all-zero parent id");
	tp_bad("00_" TP_TRACE "_" TP_PARENT "_01", "wrong separators");
}

/* ---- atomic files ------------------------------------------------------ */

static int count_hidden(int dfd)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)))
			n++;
	closedir(d);
	return n;
}

static int content_is(int dfd, const char *name, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	if (sw_read_file(dfd, name, &buf, &len, 1 << 20) < 0)
		return 0;
	int same = len == strlen(want) && !memcmp(buf, want, len);
	free(buf);
	return same;
}

static void test_atomic(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ok(dfd >= 0, "open the scratch directory %s", dir);
	if (dfd < 0)
		return;

	ok(sw_create_excl(dfd, "one", "first", 5, SW_SYNC_OFF, false) == 0, "create_excl makes a new file");
	errno = 0;
	int rc = sw_create_excl(dfd, "one", "second", 6, SW_SYNC_FULL, true);
	ok(rc < 0 && errno == EEXIST, "create_excl of an existing name: -1, EEXIST");
	ok(content_is(dfd, "one", "first"), "create_excl left the existing file as it was");
	ok(count_hidden(dfd) == 0, "create_excl leaves no temporary file behind");

	ok(sw_replace(dfd, "one", "replaced", 8, SW_SYNC_FULL, true) == 0 && content_is(dfd, "one", "replaced"),
	   "replace puts new content over an existing file");
	ok(sw_replace(dfd, "two", "new", 3, SW_SYNC_NORMAL, false) == 0 && content_is(dfd, "two", "new"),
	   "replace creates a missing file");
	ok(count_hidden(dfd) == 0, "replace leaves no temporary file behind");
	errno = 0;
	ok(mkdirat(dfd, "adir", 0700) == 0 && sw_replace(dfd, "adir", "x", 1, SW_SYNC_OFF, false) < 0 &&
	   errno == EISDIR, "replace over a directory fails with EISDIR, never reports success");
	ok(count_hidden(dfd) == 0, "a failed replace leaves no temporary file behind");
	struct stat st;
	ok(fstatat(dfd, "two", &st, 0) == 0 && !(st.st_mode & S_IWOTH), "a replaced file is not world-writable");

	char tmp[SW_TMPNAME_LEN];
	ok(sw_tmp_write(dfd, tmp, "t", 1, false) == 0 && sw_hidden(tmp) &&
	   !strncmp(tmp, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)), "tmp_write names its file .tmp.* (hidden): %s", tmp);
	ok(sw_rename(dfd, tmp, dfd, "three") == 0 && content_is(dfd, "three", "t") &&
	   faccessat(dfd, tmp, F_OK, AT_SYMLINK_NOFOLLOW) < 0, "rename moves the file");
	ok(sw_rename(dfd, "three", dfd, "one") == 0 && content_is(dfd, "one", "t"), "rename replaces the target");
	errno = 0;
	rc = sw_rename(dfd, "three", dfd, "four");
	ok(rc < 0 && errno == ENOENT, "rename of a missing file: -1, ENOENT (the loser of a race)");

	char *buf = NULL;
	errno = 0;
	ok(sw_read_file(dfd, "one", &buf, NULL, 0) < 0 && errno == EFBIG, "read_file over max: EFBIG");
	ok(symlinkat("one", dfd, "link") == 0 && sw_read_file(dfd, "link", &buf, NULL, 100) < 0,
	   "read_file does not follow a symlink");
	ok(sw_mkdirs(dfd, "a/b/c", 0777) == 0 && sw_mkdirs(dfd, "a/b/c", 0777) == 0 &&
	   fstatat(dfd, "a/b/c", &st, 0) == 0 && S_ISDIR(st.st_mode), "mkdirs makes a path, twice is fine");
	ok(sw_sync_wanted(SW_SYNC_FULL, false) && sw_sync_wanted(SW_SYNC_NORMAL, true) &&
	   !sw_sync_wanted(SW_SYNC_NORMAL, false) && !sw_sync_wanted(SW_SYNC_OFF, true),
	   "SW_SYNC policy: full always, normal for durable changes, off never");
	close(dfd);
}

/* ---- tokens and state masks ------------------------------------------- */

static void test_tokens(void)
{
	uint64_t t = 0;
	ok(sw_token_parse("123", &t) && t == 123, "token '123'");
	ok(sw_token_parse("18446744073709551599", &t) && t == UINT64_C(18446744073709551599), "a 20-digit token");
	ok(!sw_token_parse("0", &t), "token 0 refused (never issued)");
	ok(!sw_token_parse("", &t), "empty token refused");
	ok(!sw_token_parse(NULL, &t), "no token refused");
	ok(!sw_token_parse("-5", &t), "negative token refused");
	ok(!sw_token_parse("12a", &t), "token with a letter refused");
	ok(!sw_token_parse(" 12", &t), "token with a space refused");
	ok(!sw_token_parse("18446744073709551616", &t), "token over 2^64 refused");
	ok(!sw_token_parse("123456789012345678901", &t), "21-digit token refused");

	ok(sw_state_mask("pending") == SW_ST_PENDING, "state mask pending");
	ok(sw_state_mask("done,dead") == (SW_ST_DONE | SW_ST_DEAD), "state mask done,dead");
	ok(sw_state_mask("claimed,cancelled,pending") == (SW_ST_CLAIMED | SW_ST_CANCELLED | SW_ST_PENDING),
	   "state mask of three");
	ok(sw_state_mask("all") == SW_ST_ALL, "state mask all");
	ok(sw_state_mask("bogus") == -1, "unknown state refused");
	ok(sw_state_mask("pending,bogus") == -1, "one unknown state in a list refused");
	ok(sw_state_mask("") == -1, "empty state list refused");
	ok(sw_state_mask(",") == -1, "state list of commas refused");
	ok(sw_state_mask("Pending") == -1, "state names are lowercase");
}

static void test_numbers(void)
{
	int64_t i;
	uint64_t u;
	double d;
	ok(sw_parse_i64("42", 0, 100, &i) == 0 && i == 42, "integer in range");
	ok(sw_parse_i64("-5", -10, 10, &i) == 0 && i == -5, "negative integer where allowed");
	ok(sw_parse_i64("-5", 0, 10, &i) < 0 && errno == EINVAL, "negative refused where not allowed");
	ok(sw_parse_i64("101", 0, 100, &i) < 0 && errno == ERANGE, "integer over the range: ERANGE");
	ok(sw_parse_i64("-9223372036854775808", INT64_MIN, 0, &i) == 0 && i == INT64_MIN, "INT64_MIN");
	ok(sw_parse_i64("9223372036854775808", 0, INT64_MAX, &i) < 0, "INT64_MAX + 1 refused");
	const char *bad[] = { "", "0x10", "1e3", " 1", "1 ", "+1", "1.0", "nan", "inf", "--1", "1-", NULL };
	bool all = true;
	for (int k = 0; bad[k]; k++)
		all &= sw_parse_i64(bad[k], -100, 100, &i) < 0;
	ok(all, "integers: hex, exponent, spaces, '+', fractions, nan, inf refused");
	ok(sw_parse_u64("18446744073709551615", UINT64_MAX, &u) == 0 && u == UINT64_MAX, "u64 max");
	ok(sw_parse_u64("18446744073709551616", UINT64_MAX, &u) < 0 && errno == ERANGE, "u64 overflow");
	ok(sw_parse_real("0.5", 0, 1, &d) == 0 && d == 0.5, "decimal");
	ok(sw_parse_real("-3.25", -10, 10, &d) == 0 && d == -3.25, "negative decimal");
	ok(sw_parse_real("1.", 0, 10, &d) == 0 && d == 1 && sw_parse_real(".5", 0, 1, &d) == 0, "1. and .5");
	const char *badr[] = { "", ".", "-", "0x1", "1e3", "inf", "nan", " 1", "1 ", "+1", "1..2", "1,5", NULL };
	all = true;
	for (int k = 0; badr[k]; k++)
		all &= sw_parse_real(badr[k], -100, 100, &d) < 0;
	ok(all, "decimals: hex, exponent, inf, nan, spaces, '+', two points refused");
	ok(sw_parse_real("-1", 0, 10, &d) < 0, "negative decimal refused where not allowed");
	ok(sw_parse_size("64K", UINT64_MAX, &u) == 0 && u == 65536, "size 64K");
	ok(sw_parse_size("1M", UINT64_MAX, &u) == 0 && u == 1048576, "size 1M");
	ok(sw_parse_size("4096", UINT64_MAX, &u) == 0 && u == 4096, "size in bytes");
	ok(sw_parse_size("K", UINT64_MAX, &u) < 0 && sw_parse_size("1k", UINT64_MAX, &u) < 0, "size needs digits, K is upper case");
	ok(sw_parse_size("2G", 1ULL << 30, &u) < 0 && errno == ERANGE, "size over the range");
}

/* ---- writing to a child's stdin ---------------------------------------- */

static void test_write_more(void)
{
	int p[2];
	size_t len = 1 << 20, off = 0;
	char *buf = calloc(1, len), *sink = malloc(len);
	if (!buf || !sink || pipe2(p, O_NONBLOCK) < 0) {
		ok(0, "write_more: set-up");
		free(buf);
		free(sink);
		return;
	}
	signal(SIGPIPE, SIG_IGN);
	bool more = sw_write_more(p[1], buf, len, &off);
	ok(more && off > 0 && off < len, "write_more: a full pipe leaves the rest for later (%zu of %zu written)",
	   off, len);
	size_t was = off;
	while (read(p[0], sink, len) > 0)
		;
	bool again = sw_write_more(p[1], buf, len, &off);
	ok(off > was, "write_more: goes on from where it was once the pipe drains");
	while (again) {
		while (read(p[0], sink, len) > 0)
			;
		again = sw_write_more(p[1], buf, len, &off);
	}
	ok(off == len, "write_more: false once all is written");
	off = 0;
	close(p[0]);
	ok(!sw_write_more(p[1], buf, len, &off) && off == 0, "write_more: false when the reader is gone (EPIPE)");
	close(p[1]);
	free(buf);
	free(sink);
}

/* ---- the XDG state directory (the workspace, the metrics database) ----- */

static void test_state_path(void)
{
	char out[PATH_MAX];
	struct sw_err e;
	setenv("XDG_STATE_HOME", "/x/state", 1);
	setenv("HOME", "/h", 1);
	ok(sw_state_path(out, "sw", "-d DIR or SW_DIR", &e) == 0 && !strcmp(out, "/x/state/sw"),
	   "state path: in an absolute XDG_STATE_HOME (%s)", out);
	setenv("XDG_STATE_HOME", "rel", 1);
	ok(sw_state_path(out, "sw-metrics", "--db", &e) == 0 && !strcmp(out, "/h/.local/state/sw-metrics"),
	   "state path: a relative XDG_STATE_HOME is ignored for HOME's (%s)", out);
	setenv("HOME", "h", 1);
	ok(sw_state_path(out, "sw", "-d DIR or SW_DIR", &e) == EX_USAGE &&
	   !strcmp(e.msg, "HOME 'h' is not an absolute path: set -d DIR or SW_DIR"),
	   "state path: a relative HOME is refused, saying what to set (%s)", e.msg);
	unsetenv("HOME");
	ok(sw_state_path(out, "sw", "--db", &e) == EX_USAGE && !strcmp(e.msg, "HOME is not set: set --db"),
	   "state path: no HOME is refused, saying what to set (%s)", e.msg);
	unsetenv("XDG_STATE_HOME");
}

int main(void)
{
	char dir[] = "/tmp/sw-test-lib.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_durations();
	test_times();
	test_ulid();
	test_names();
	test_traceparent();
	test_atomic(dir);
	test_tokens();
	test_numbers();
	test_write_more();
	test_state_path();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return tap_done();
}
