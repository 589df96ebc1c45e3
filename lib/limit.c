/* limit.c — rate limits (a GCRA token bucket, an exact sliding window)
 * and concurrency slots, shared through the workspace.  See limit.h for
 * the files and sw-limit(1) INTERNALS for the protocol.
 *
 * A take reads the newest version of the limit's chain, decides by this
 * host's clock, and creates the next version holding the new state; the
 * loser of that race reads again at once (its attempt costs a few system
 * calls, so contention does not starve the limiter).  A refusal writes no
 * version.  The slots are leases (lease.c) below the limit's directory:
 * lease.c's functions run with the limit's directory as their workspace. */
#include "limit.h"
#include "breaker.h"
#include "chain.h"
#include "clock.h"
#include "fs.h"
#include "hash.h"
#include "hostlock.h"
#include "json.h"
#include "lock.h"
#include "num.h"
#include "tlist.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIMITS_DIR "limits"
#define BUCKET_MAX_BYTES 4096
#define WINDOW_MAX_BYTES (4 << 20)   /* SW_LIMIT_WINDOW_MAX entries of up to 40 bytes */
#define RETRIES 2000                 /* lost races before giving up (75) */
#define TALLY_MAX_BYTES 1024

/* ---- rates and specs ------------------------------------------------- */

int sw_rate_parse(const char *s, struct sw_rate *r, const char **why)
{
	const char *slash = strchr(s, '/');
	char num[32];
	uint64_t n;
	*why = "want N/s, N/m, N/h or N/d, N a whole number";
	if (!slash || (size_t)(slash - s) >= sizeof num)
		return -1;
	memcpy(num, s, (size_t)(slash - s));
	num[slash - s] = 0;
	if (sw_parse_u64(num, UINT64_MAX, &n) < 0)
		return -1;
	const char *u = slash + 1;
	int64_t per = !strcmp(u, "s") ? 1 : !strcmp(u, "m") ? 60 : !strcmp(u, "h") ? 3600 :
		      !strcmp(u, "d") ? 86400 : 0;
	if (!per) {
		*why = "the period is s, m, h or d";
		return -1;
	}
	if (n == 0) {
		*why = "the count must be at least 1";
		return -1;
	}
	r->period_ns = per * SW_NS_PER_SEC;
	/* one grant a microsecond at most: finer is beyond what a file
	 * system round trip can tell apart, and keeps the arithmetic exact */
	if (n > (uint64_t)(r->period_ns / 1000)) {
		*why = "more than 1000000 a second";
		return -1;
	}
	r->n = n;
	return 0;
}

void sw_rate_format(const struct sw_rate *r, char out[SW_RATE_LEN])
{
	int64_t s = r->period_ns / SW_NS_PER_SEC;
	snprintf(out, SW_RATE_LEN, "%llu/%s", (unsigned long long)r->n,
		 s == 1 ? "s" : s == 60 ? "m" : s == 3600 ? "h" : "d");
}

/* a * period / n, rounded up or down, saturated at INT64_MAX: n, a and
 * the period are bounded, but a product may pass 2^63. */
static int64_t scale(uint64_t a, const struct sw_rate *r, bool up)
{
	unsigned __int128 x = (unsigned __int128)a * (uint64_t)r->period_ns;
	unsigned __int128 q = x / r->n + (up && x % r->n != 0);
	return q > INT64_MAX ? INT64_MAX : (int64_t)q;
}

/* The grants a duration is worth (rounded down). */
static uint64_t grants_in(int64_t ns, const struct sw_rate *r)
{
	if (ns <= 0)
		return 0;
	return (uint64_t)((unsigned __int128)ns * r->n / (uint64_t)r->period_ns);
}

/* How far ahead of now the TAT may run: burst grants' worth. */
static int64_t tolerance(const struct sw_limit_spec *s)
{
	return scale(s->burst, &s->rate, false);
}

const char *sw_limit_spec_problem(const struct sw_limit_spec *s, uint64_t count)
{
	if (s->kind == SW_LIMIT_BUCKET) {
		if (s->burst < 1 || s->burst > SW_LIMIT_BURST_MAX)
			return "--burst is from 1 to 1000000";
		if (tolerance(s) > SW_DURATION_MAX_NS)
			return "--burst is worth more than 100 years at that rate";
		if (count < 1 || count > s->burst)
			return "-n is from 1 to the burst: more can never be granted at once";
		return NULL;
	}
	if (s->window_ns < 1000000 || s->window_ns > SW_DURATION_MAX_NS)
		return "--window is from 1ms to 100 years";
	if (s->max < 1 || s->max > SW_LIMIT_WINDOW_MAX)
		return "--max is from 1 to 100000";
	if (count < 1 || count > s->max)
		return "-n is from 1 to --max: more can never be granted at once";
	return NULL;
}

static int64_t add_sat(int64_t t, int64_t d)
{
	return d > 0 && t > INT64_MAX - d ? INT64_MAX : t + d;
}

/* ---- directories ------------------------------------------------------ */

static int limit_dir(const struct sw_ws *ws, const char *name, bool create, int *fd, struct sw_err *err)
{
	const char *why = sw_name_problem(name);
	if (why)
		return sw_err_set(err, EX_DATAERR, "bad limit name '%.60s': %s", name, why);
	char rel[sizeof LIMITS_DIR + SW_NAME_MAX + 2];
	snprintf(rel, sizeof rel, LIMITS_DIR "/%s", name);
	*fd = sw_ws_dir(ws, rel, create);
	if (*fd >= 0)
		return 0;
	if (errno == ENOENT && !create)
		return sw_err_set(err, SW_EX_FALSE, "no limit '%s'", name);
	return sw_err_set(err, errno == ENOENT ? EX_CANTCREAT : sw_ex_errno(errno), "limit directory %s: %s",
			  rel, strerror(errno));
}

/* The chain of kind (bucket/ or window/) below the limit's directory; 1
 * when it does not exist and create is false. */
static int open_chain(const struct sw_ws *ws, int ldfd, enum sw_limit_kind kind, bool create,
		      struct sw_chain *c, struct sw_err *err)
{
	const char *sub = kind == SW_LIMIT_BUCKET ? "bucket" : "window";
	*c = (struct sw_chain){ .sync = ws->sync, .keep = 16, .hint_every = 4,
		.max_bytes = kind == SW_LIMIT_BUCKET ? BUCKET_MAX_BYTES : WINDOW_MAX_BYTES };
	c->dfd = sw_open_dir(ldfd, sub, create);
	if (c->dfd >= 0)
		return 0;
	if (errno == ENOENT && !create)
		return SW_EX_FALSE;
	return sw_err_set(err, sw_ex_errno(errno), "%s directory: %s", sub, strerror(errno));
}

/* ---- versions ------------------------------------------------------------ */

#define COUNT_MAX (INT64_C(1) << 53)   /* counts stay exact in any JSON reader */

static int bucket_fields(const json_t *j, struct sw_limit_bucket_ver *b)
{
	const char *rate = sw_json_str(j, "rate"), *why;
	int64_t burst, tat, granted;
	if (!rate || strlen(rate) >= SW_RATE_LEN || sw_rate_parse(rate, &b->rate, &why) < 0 ||
	    !sw_chain_int(j, "burst", 1, SW_LIMIT_BURST_MAX, &burst) ||
	    !sw_chain_int(j, "tat_unix_ns", 0, SW_TIME_MAX_NS, &tat) ||
	    !sw_chain_int(j, "granted", 0, COUNT_MAX, &granted))
		return -1;
	b->burst = (uint64_t)burst;
	b->tat_ns = tat;
	b->granted = (uint64_t)granted;
	return 0;
}

struct window_ver {
	int64_t window_ns;
	uint64_t max, granted;
	struct sw_tlist times;
};

static int window_fields(const json_t *j, struct window_ver *w)
{
	const json_t *t = json_object_get(j, "times");
	int64_t wms, max, granted;
	memset(w, 0, sizeof *w);
	if (!json_is_string(t) || !sw_chain_int(j, "window_ms", 1, SW_DURATION_MAX_NS / 1000000, &wms) ||
	    !sw_chain_int(j, "max", 1, SW_LIMIT_WINDOW_MAX, &max) || !sw_chain_int(j, "granted", 0, COUNT_MAX, &granted) ||
	    sw_tlist_parse(json_string_value(t), json_string_length(t), SW_LIMIT_WINDOW_MAX, &w->times) < 0)
		return -1;
	w->window_ns = wms * 1000000;
	w->max = (uint64_t)max;
	w->granted = (uint64_t)granted;
	return 0;
}

int sw_limit_bucket_parse(const char *buf, size_t len, uint64_t seq, struct sw_limit_bucket_ver *out)
{
	json_t *j;
	char vid[33];
	if (sw_chain_parse(buf, len, seq, &j, vid) < 0)
		return -1;
	int rc = bucket_fields(j, out);
	json_decref(j);
	return rc;
}

int sw_limit_window_parse(const char *buf, size_t len, uint64_t seq, int64_t *window_ns, uint64_t *max,
			  uint64_t *granted, uint64_t *in_list)
{
	json_t *j;
	char vid[33];
	struct window_ver w = {0};
	if (sw_chain_parse(buf, len, seq, &j, vid) < 0)
		return -1;
	int rc = window_fields(j, &w);
	json_decref(j);
	if (rc == 0) {
		*window_ns = w.window_ns;
		*max = w.max;
		*granted = w.granted;
		*in_list = w.times.total;
	}
	sw_tlist_free(&w.times);
	return rc;
}

/* The all-time count of a damaged version: the newest readable version
 * before it says how many had been granted (a few grants may go
 * uncounted; none is granted twice for that). */
static uint64_t granted_before(const struct sw_chain *c, uint64_t seq, enum sw_limit_kind kind)
{
	for (unsigned back = 1; back <= c->keep && back < seq; back++) {
		struct sw_chain_ver v;
		uint64_t g = 0;
		bool ok = false;
		if (sw_chain_read(c, seq - back, &v) == 0) {
			struct sw_limit_bucket_ver b;
			struct window_ver w = {0};
			if (kind == SW_LIMIT_BUCKET && bucket_fields(v.j, &b) == 0)
				ok = true, g = b.granted;
			else if (kind == SW_LIMIT_WINDOW && window_fields(v.j, &w) == 0)
				ok = true, g = w.granted;
			if (kind == SW_LIMIT_WINDOW)
				sw_tlist_free(&w.times);
		}
		sw_chain_ver_free(&v);
		if (ok)
			return g;
	}
	return 0;
}

static void warn_damaged(const char *name, const char *kind, const struct sw_chain_ver *v, const char *as)
{
	char t[SW_TIME_LEN];
	sw_fmt_time(v->written_ns, t);
	sw_warn("limit '%s': %s version v.%llu (written %s) is damaged; read as %s", name, kind,
		(unsigned long long)v->seq, t, as);
}

/* The bucket's state from its newest version.  A damaged one stands for
 * the worst it may have been: a bucket emptied when it was written. */
static void bucket_state(const struct sw_chain *c, const struct sw_chain_ver *v, const char *name,
			 const struct sw_limit_spec *spec, struct sw_limit_bucket_ver *b)
{
	memset(b, 0, sizeof *b);
	b->rate = spec->rate;
	b->burst = spec->burst;
	if (v->seq == 0 || (v->j && bucket_fields(v->j, b) == 0))
		return;
	b->rate = spec->rate;
	b->burst = spec->burst;
	b->tat_ns = add_sat(v->written_ns, tolerance(spec));
	b->granted = granted_before(c, v->seq, SW_LIMIT_BUCKET);
	warn_damaged(name, "bucket", v, "an empty bucket at that time");
}

/* The window's state; a damaged version stands for a window filled when
 * it was written. */
static int window_state(const struct sw_chain *c, const struct sw_chain_ver *v, const char *name,
			const struct sw_limit_spec *spec, struct window_ver *w)
{
	if (v->seq == 0 || (v->j && window_fields(v->j, w) == 0))
		return 0;
	memset(w, 0, sizeof *w);
	w->granted = granted_before(c, v->seq, SW_LIMIT_WINDOW);
	warn_damaged(name, "window", v, "a full window at that time");
	return sw_tlist_add(&w->times, (v->written_ns + 999) / 1000, spec->max);
}

/* ---- deciding ------------------------------------------------------------ */

/* GCRA: a grant of count at time t moves the TAT from max(TAT, t) on by
 * count emission intervals, and conforms when the new TAT is at most one
 * burst's tolerance ahead of t.  So the earliest time for count is
 * (max(TAT, now) + count·T) - tolerance. */
static void bucket_decide(const struct sw_limit_spec *s, int64_t tat, int64_t now, uint64_t count,
			  int64_t wait_ns, struct sw_limit_grant *g, int64_t *new_tat)
{
	int64_t base = tat > now ? tat : now;
	*new_tat = add_sat(base, scale(count, &s->rate, true));
	int64_t due = *new_tat - tolerance(s);
	g->now_ns = now;
	g->count = count;
	g->granted = due <= now || (wait_ns >= 0 && due - now <= wait_ns);
	g->at_ns = due > now ? due : now;
	g->recorded_ns = g->at_ns;
	g->retry_ns = g->at_ns;
	/* what is left once this grant is made: the slack left at at_ns */
	g->available = g->granted ? grants_in(g->at_ns + tolerance(s) - *new_tat, &s->rate) : 0;
}

/* The sliding window: a grant at time g (µs) fits when the grants after
 * g - W plus count are at most max.  Grants are appended in time order
 * (a reserved one is in the list before its time comes, and nobody goes
 * before it), so only windows that end at g need checking. */
static void window_decide(const struct sw_limit_spec *s, struct sw_tlist *l, int64_t now, uint64_t count,
			  int64_t wait_ns, struct sw_limit_grant *g, int64_t *at_us)
{
	int64_t w_us = (s->window_ns + 999) / 1000, now_us = (now + 999) / 1000;
	sw_tlist_drop_until(l, now_us - w_us);
	int64_t t = l->n && l->t[l->n - 1] > now_us ? l->t[l->n - 1] : now_us;
	uint64_t cut = 0;
	if (l->total + count > s->max) {
		/* the grants that must leave the window first, oldest first */
		uint64_t excess = l->total + count - s->max;
		for (size_t k = 0; k < l->n; k++) {
			cut += l->c[k];
			if (cut >= excess) {
				if (l->t[k] + w_us > t)
					t = l->t[k] + w_us;
				break;
			}
		}
	}
	*at_us = t;
	int64_t due = t * 1000;
	g->now_ns = now;
	g->count = count;
	/* due now when it falls in this microsecond: the grant is recorded
	 * at its end, never before the time it is made */
	g->granted = t <= now_us || (wait_ns >= 0 && due - now <= wait_ns);
	g->at_ns = t <= now_us ? now : due;
	g->recorded_ns = due;
	g->retry_ns = g->at_ns;
	uint64_t in = sw_tlist_count_after(l, t - w_us) + count;
	g->available = g->granted && in < s->max ? s->max - in : 0;
}

/* ---- take ---------------------------------------------------------------- */

static json_t *bucket_json(const struct sw_limit_spec *s, int64_t tat, uint64_t granted)
{
	char rate[SW_RATE_LEN];
	sw_rate_format(&s->rate, rate);
	return json_pack("{s:s,s:I,s:o,s:I}", "rate", rate, "burst", (json_int_t)s->burst,
			 "tat_unix_ns", sw_json_ns(tat), "granted", (json_int_t)granted);
}

static json_t *window_json(const struct sw_limit_spec *s, const struct sw_tlist *l, uint64_t granted)
{
	char *times = sw_tlist_format(l);
	json_t *j = times ? json_pack("{s:I,s:I,s:I,s:s}", "window_ms", (json_int_t)(s->window_ns / 1000000),
				      "max", (json_int_t)s->max, "granted", (json_int_t)granted, "times", times)
			  : NULL;
	free(times);
	return j;
}

/* One attempt: read, decide, write.  0 granted (or refused: g says),
 * SW_CHAIN_LOST, or a code. */
static int take_once(const struct sw_chain *c, const char *name, const struct sw_limit_spec *s,
		     uint64_t count, int64_t wait_ns, struct sw_hostlock_lazy *lk, struct sw_limit_grant *g,
		     struct sw_err *err)
{
	struct sw_chain_ver v;
	int rc = sw_chain_latest(c, &v, err);
	if (rc)
		return rc;
	json_t *body = NULL;
	if (s->kind == SW_LIMIT_BUCKET) {
		struct sw_limit_bucket_ver b;
		int64_t tat;
		bucket_state(c, &v, name, s, &b);
		/* now is read after the newest version: a grant seen there was
		 * made before this decision */
		bucket_decide(s, b.tat_ns, sw_now_ns(), count, wait_ns, g, &tat);
		g->granted_total = b.granted + (g->granted ? count : 0);
		if (g->granted && !(body = bucket_json(s, tat, g->granted_total)))
			rc = sw_err_set(err, EX_OSERR, "out of memory");
	} else {
		struct window_ver w = {0};
		int64_t at_us;
		if (window_state(c, &v, name, s, &w) < 0) {
			rc = sw_err_set(err, EX_OSERR, "out of memory");
		} else {
			window_decide(s, &w.times, sw_now_ns(), count, wait_ns, g, &at_us);
			g->granted_total = w.granted + (g->granted ? count : 0);
			if (g->granted) {
				/* what no window ending at or after the grant holds goes */
				sw_tlist_drop_until(&w.times, at_us - (s->window_ns + 999) / 1000);
				if (sw_tlist_add(&w.times, at_us, count) < 0 ||
				    !(body = window_json(s, &w.times, g->granted_total)))
					rc = sw_err_set(err, EX_OSERR, "out of memory");
			}
		}
		sw_tlist_free(&w.times);
	}
	if (body && rc == 0) {
		/* this host's writers one at a time: only other hosts race
		 * with this write (a write that waited for the lock was likely
		 * beaten by the writer it waited for: it reads again) */
		sw_hostlock_once(lk);
		rc = sw_chain_write(c, &v, body, false, err);
	}
	json_decref(body);
	sw_chain_ver_free(&v);
	return rc;
}

int sw_limit_take(const struct sw_ws *ws, const char *name, const struct sw_limit_spec *spec,
		  uint64_t count, int64_t wait_ns, struct sw_limit_grant *out, struct sw_err *err)
{
	const char *why = sw_limit_spec_problem(spec, count);
	if (why)
		return sw_err_set(err, EX_USAGE, "%s", why);
	int ldfd, rc = limit_dir(ws, name, true, &ldfd, err);
	if (rc)
		return rc;
	struct sw_chain c;
	rc = open_chain(ws, ldfd, spec->kind, true, &c, err);
	close(ldfd);
	if (rc)
		return rc;
	memset(out, 0, sizeof *out);
	struct sw_hostlock_lazy lk = SW_HOSTLOCK_LAZY(ws->path, "limit", name,
						       spec->kind == SW_LIMIT_BUCKET ? "bucket" : "window");
	for (int i = 0; i < RETRIES; i++) {
		rc = take_once(&c, name, spec, count, wait_ns, &lk, out, err);
		if (rc != SW_CHAIN_LOST)
			break;
		/* another taker won: read again at once, then spread out */
		if (i >= 3)
			sw_chain_jitter((i < 20 ? i : 20) * INT64_C(100000));
		rc = sw_err_set(err, EX_TEMPFAIL, "limit '%s' keeps changing; try again", name);
	}
	sw_hostunlock(lk.fd);
	close(c.dfd);
	if (rc)
		out->granted = false;   /* a decision whose write lost its last race */
	if (rc == 0 && !out->granted) {
		char t[SW_TIME_LEN];
		sw_fmt_time(out->retry_ns, t);
		rc = sw_err_set(err, EX_TEMPFAIL, "limit '%s': %llu not granted before %s", name,
				(unsigned long long)count, t);
		sw_limit_count_refusal(ws, name, "rate");
	}
	return rc;
}

/* ---- the tally of refusals ------------------------------------------- */

#define CLIENT_LEN 80

/* This client of the workspace's filesystem as a file name: the host's
 * name ("host" when it will not do) and a hash of its machine id and the
 * workspace's path here.  Appends from two clients of a network
 * filesystem to one file wait on each other (seconds on MooseFS) and may
 * lose bytes: two hosts of one name, or two mounts on one machine, must
 * not share a log. */
static void client_name(const struct sw_ws *ws, char out[CLIENT_LEN])
{
	char host[65], id[64] = "";
	if (gethostname(host, sizeof host) < 0)
		host[0] = 0;
	host[64] = 0;
	if (sw_name_problem(host))
		snprintf(host, sizeof host, "host");
	int fd = SW_NOINTR(open("/etc/machine-id", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
	if (fd >= 0) {
		ssize_t n = SW_NOINTR(read(fd, id, sizeof id - 1));
		id[n > 0 ? n : 0] = 0;
		close(fd);
	}
	uint64_t h = sw_xxh64(id, strlen(id), 0);
	h = sw_xxh64(ws->path, strlen(ws->path), h);
	snprintf(out, CLIENT_LEN, "%s-%08x", host, (unsigned)(h >> 32));
}

/* Refusals are counted without a lock and without rewriting a file: each
 * appends one byte to tally/<client>.<kind>, so the count is the file's
 * size, and a refusal costs an open and a write however many processes
 * refuse at once.  Only this client appends to its logs.  Past
 * TALLY_FOLD_BYTES one process of the client (the one that gets the
 * client's lock without waiting) folds the log into tally/<client>.<kind>.base
 * (rename the log away, add its size to the base, delete it): the count
 * dips while it does, and a byte appended through a descriptor opened
 * before the rename may be lost. */
#define TALLY_FOLD_BYTES (1 << 20)

struct tally {
	int64_t rate, slot;
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && !strcmp(s + n - m, suffix);
}

static int64_t base_read(int dfd, const char *fn)
{
	char *buf;
	size_t len;
	uint64_t v = 0;
	if (sw_read_file(dfd, fn, &buf, &len, TALLY_MAX_BYTES) < 0)
		return 0;
	buf[strcspn(buf, "\n")] = 0;
	if (sw_parse_u64(buf, COUNT_MAX, &v) < 0)
		v = 0;
	free(buf);
	return (int64_t)v;
}

/* Adds what file from holds (its size) to base, and deletes it. */
static void fold_into(int dfd, const char *from, const char *base)
{
	struct stat st;
	if (SW_NOINTR(fstatat(dfd, from, &st, AT_SYMLINK_NOFOLLOW)) < 0 || !S_ISREG(st.st_mode))
		return;
	int64_t b = base_read(dfd, base) + (int64_t)st.st_size;
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%lld\n", (long long)(b > COUNT_MAX ? COUNT_MAX : b));
	if (sw_replace(dfd, base, buf, (size_t)n, SW_SYNC_OFF, false) == 0)
		SW_NOINTR(unlinkat(dfd, from, 0));
}

static void tally_fold(int dfd, const char *client, const char *log)
{
	char lockname[CLIENT_LEN + 16], fold[CLIENT_LEN + 32], base[CLIENT_LEN + 32];
	snprintf(lockname, sizeof lockname, ".lock.%s", client);
	snprintf(fold, sizeof fold, ".fold.%s", log);
	snprintf(base, sizeof base, "%s.base", log);
	int lk = sw_lock(dfd, lockname, LOCK_EX, 0);
	if (lk < 0)
		return;           /* another process of this host is at it */
	fold_into(dfd, fold, base);     /* one a crash left behind */
	if (SW_NOINTR(renameat(dfd, log, dfd, fold)) == 0) {
		/* appenders that opened the log just before have written */
		sw_sleep_ns(10000000);
		fold_into(dfd, fold, base);
	}
	sw_unlock(lk);
}

void sw_limit_count_refusal(const struct sw_ws *ws, const char *name, const char *kind)
{
	struct sw_err err;
	char client[CLIENT_LEN], log[CLIENT_LEN + 16];
	int ldfd;
	if (limit_dir(ws, name, true, &ldfd, &err))
		return;
	int dfd = sw_open_dir(ldfd, "tally", true);
	close(ldfd);
	client_name(ws, client);
	snprintf(log, sizeof log, "%s.%s", client, kind);
	int fd = dfd < 0 ? -1 : SW_NOINTR(openat(dfd, log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
						 O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666));
	struct stat st;
	if (fd < 0 || SW_NOINTR(fstat(fd, &st)) < 0 || !S_ISREG(st.st_mode) || SW_NOINTR(write(fd, ".", 1)) != 1)
		sw_warn("limit '%s': tally %s: %s (refusal not counted)", name, log, strerror(errno));
	else if (st.st_size + 1 >= TALLY_FOLD_BYTES)
		tally_fold(dfd, client, log);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
}

static void tally_add(int64_t *sum, int64_t v)
{
	*sum = *sum > COUNT_MAX - v ? COUNT_MAX : *sum + v;
}

/* Every host's refusals of name: the logs' sizes and the bases. */
static void tally_sum(int ldfd, struct tally *sum)
{
	memset(sum, 0, sizeof *sum);
	int dfd = sw_open_dir(ldfd, "tally", false);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	struct dirent *e;
	struct stat st;
	while ((e = sw_readdir(d))) {
		const char *n = e->d_name;
		if (sw_hidden(n) || sw_name_problem(n))
			continue;
		bool slot = ends_with(n, ".slot") || ends_with(n, ".slot.base");
		int64_t *to = slot ? &sum->slot : &sum->rate;
		if (ends_with(n, ".rate.base") || ends_with(n, ".slot.base"))
			tally_add(to, base_read(dfd, n));
		else if ((ends_with(n, ".rate") || slot) &&
			 SW_NOINTR(fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW)) == 0 && S_ISREG(st.st_mode))
			tally_add(to, st.st_size < COUNT_MAX ? (int64_t)st.st_size : COUNT_MAX);
	}
	closedir(d);
}

/* ---- slots ---------------------------------------------------------------- */

/* The limit's directory as the workspace lease.c works in: slot i is
 * then the lease named i, in limits/<name>/leases/<i>/. */
static int slot_ws(const struct sw_ws *ws, const char *name, bool create, struct sw_ws *sub,
		   struct sw_err *err)
{
	*sub = *ws;
	return limit_dir(ws, name, create, &sub->fd, err);
}

/* Prefixes err's line with which slot it is about. */
static int slot_err(struct sw_err *err, int rc, const char *name, unsigned slot)
{
	if (rc) {
		char why[sizeof err->msg];
		snprintf(why, sizeof why, "%s", err->msg);
		sw_err_msg(err, "limit '%s' slot %u: %s", name, slot, why);
	}
	return rc;
}

int sw_limit_acquire(const struct sw_ws *ws, const char *name, unsigned n, const char *owner,
		     int64_t ttl_ns, struct sw_limit_slot *out, int64_t *free_ns, struct sw_err *err)
{
	if (n < 1 || n > SW_LIMIT_SLOTS_MAX)
		return sw_err_set(err, EX_USAGE, "--concurrency is from 1 to %d", SW_LIMIT_SLOTS_MAX);
	struct sw_ws sub;
	int rc = slot_ws(ws, name, true, &sub, err);
	if (rc)
		return rc;
	*free_ns = INT64_MAX;
	/* from a random slot on, so that takers spread over the slots
	 * instead of all racing for slot 1 */
	unsigned first = sw_rand_below(n);
	rc = EX_TEMPFAIL;
	for (unsigned k = 0; k < n && rc == EX_TEMPFAIL; k++) {
		unsigned slot = (first + k) % n + 1;
		char ln[16];
		snprintf(ln, sizeof ln, "%u", slot);
		rc = sw_lease_acquire(&sub, ln, owner, ttl_ns, &out->lease, err);
		if (rc == 0)
			out->slot = slot;
		else if (rc == EX_TEMPFAIL && out->lease.takeable_ns < *free_ns)
			*free_ns = out->lease.takeable_ns;
	}
	close(sub.fd);
	if (rc == EX_TEMPFAIL) {
		char t[SW_TIME_LEN];
		sw_fmt_time(*free_ns, t);
		sw_err_msg(err, "limit '%s': all %u slots are held; one is free at %s at the latest", name, n, t);
		sw_limit_count_refusal(ws, name, "slot");
	} else if (rc) {
		slot_err(err, rc, name, out->slot);
	}
	return rc;
}

int sw_limit_renew(const struct sw_ws *ws, const char *name, unsigned slot, uint64_t token,
		   int64_t ttl_ns, struct sw_lease *out, struct sw_err *err)
{
	struct sw_ws sub;
	char ln[16];
	int rc = slot_ws(ws, name, false, &sub, err);
	if (rc)
		return rc;
	snprintf(ln, sizeof ln, "%u", slot);
	rc = sw_lease_renew(&sub, ln, token, ttl_ns, out, err);
	close(sub.fd);
	return slot_err(err, rc, name, slot);
}

int sw_limit_release(const struct sw_ws *ws, const char *name, unsigned slot, uint64_t token,
		     struct sw_lease *out, struct sw_err *err)
{
	struct sw_ws sub;
	char ln[16];
	int rc = slot_ws(ws, name, false, &sub, err);
	if (rc)
		return rc;
	snprintf(ln, sizeof ln, "%u", slot);
	rc = sw_lease_release(&sub, ln, token, out, err);
	close(sub.fd);
	return slot_err(err, rc, name, slot);
}

/* ---- show, list, reset ------------------------------------------------- */

static int show_bucket(const struct sw_ws *ws, int ldfd, json_t *o, struct sw_err *err)
{
	struct sw_chain c;
	struct sw_chain_ver v;
	int rc = open_chain(ws, ldfd, SW_LIMIT_BUCKET, false, &c, err);
	if (rc)
		return rc == SW_EX_FALSE ? 0 : rc;
	rc = sw_chain_latest(&c, &v, err);
	if (rc == 0 && v.seq > 0) {
		struct sw_limit_bucket_ver b;
		bool bad = !v.j || bucket_fields(v.j, &b) != 0;
		json_t *j = json_object();
		if (bad) {
			json_object_set_new(j, "damaged", json_true());
			json_object_set_new(j, "granted", json_integer((json_int_t)granted_before(&c, v.seq, SW_LIMIT_BUCKET)));
		} else {
			struct sw_limit_spec s = { .kind = SW_LIMIT_BUCKET, .rate = b.rate, .burst = b.burst };
			char rate[SW_RATE_LEN];
			int64_t now = sw_now_ns(), tat = b.tat_ns > now ? b.tat_ns : now;
			sw_rate_format(&b.rate, rate);
			json_object_set_new(j, "rate", json_string(rate));
			json_object_set_new(j, "burst", json_integer((json_int_t)b.burst));
			json_object_set_new(j, "available", json_integer((json_int_t)grants_in(now + tolerance(&s) - tat, &b.rate)));
			json_object_set_new(j, "granted", json_integer((json_int_t)b.granted));
			sw_json_set_time(j, "tat", b.tat_ns);
		}
		json_object_set_new(o, "bucket", j);
	}
	sw_chain_ver_free(&v);
	close(c.dfd);
	return rc;
}

static int show_window(const struct sw_ws *ws, int ldfd, json_t *o, struct sw_err *err)
{
	struct sw_chain c;
	struct sw_chain_ver v;
	int rc = open_chain(ws, ldfd, SW_LIMIT_WINDOW, false, &c, err);
	if (rc)
		return rc == SW_EX_FALSE ? 0 : rc;
	rc = sw_chain_latest(&c, &v, err);
	if (rc == 0 && v.seq > 0) {
		struct window_ver w = {0};
		json_t *j = json_object();
		if (!v.j || window_fields(v.j, &w) != 0) {
			json_object_set_new(j, "damaged", json_true());
			json_object_set_new(j, "granted", json_integer((json_int_t)granted_before(&c, v.seq, SW_LIMIT_WINDOW)));
		} else {
			int64_t now_us = (sw_now_ns() + 999) / 1000, w_us = w.window_ns / 1000;
			uint64_t in = sw_tlist_count_after(&w.times, now_us - w_us);
			json_object_set_new(j, "window_ms", json_integer(w.window_ns / 1000000));
			json_object_set_new(j, "max", json_integer((json_int_t)w.max));
			json_object_set_new(j, "in_window", json_integer((json_int_t)in));
			json_object_set_new(j, "available", json_integer(in < w.max ? (json_int_t)(w.max - in) : 0));
			json_object_set_new(j, "granted", json_integer((json_int_t)w.granted));
			/* the oldest grant in the window leaves it first */
			for (size_t i = 0; i < w.times.n; i++)
				if (w.times.t[i] > now_us - w_us) {
					sw_json_set_time(j, "next_free", (w.times.t[i] + w_us) * 1000);
					break;
				}
		}
		sw_tlist_free(&w.times);
		json_object_set_new(o, "window", j);
	}
	sw_chain_ver_free(&v);
	close(c.dfd);
	return rc;
}

struct slot_list {
	json_t *arr;
	long long held;
	long long acquired;     /* every slot's newest token: acquisitions so far */
};

static int slot_one(const struct sw_lease *l, void *arg)
{
	struct slot_list *s = arg;
	json_t *j = sw_lease_json(l);
	if (!j)
		return -1;
	json_object_del(j, "name");
	json_object_set_new(j, "slot", json_integer(atoi(l->name)));
	json_array_append_new(s->arr, j);
	if (l->state == SW_LEASE_HELD)
		s->held++;
	s->acquired += (long long)l->token;
	return 0;
}

static int show_slots(const struct sw_ws *ws, const char *name, json_t *o, struct sw_err *err)
{
	struct sw_ws sub;
	int rc = slot_ws(ws, name, false, &sub, err);
	if (rc)
		return rc;
	struct slot_list s = { .arr = json_array() };
	int fd = sw_open_dir(sub.fd, "leases", false);
	if (fd >= 0) {
		close(fd);
		rc = sw_lease_list(&sub, slot_one, &s, err);
		if (rc == 0)
			json_object_set_new(o, "slots", json_pack("{s:I,s:I,s:O}", "held", (json_int_t)s.held,
					    "acquired", (json_int_t)s.acquired, "slots", s.arr));
	}
	json_decref(s.arr);
	close(sub.fd);
	return rc;
}

int sw_limit_show(const struct sw_ws *ws, const char *name, json_t **out, struct sw_err *err)
{
	int ldfd, rc = limit_dir(ws, name, false, &ldfd, err);
	if (rc)
		return rc;
	json_t *o = json_pack("{s:s}", "name", name);
	struct tally t;
	if (!o) {
		close(ldfd);
		return sw_err_set(err, EX_OSERR, "out of memory");
	}
	if (!(rc = show_bucket(ws, ldfd, o, err)) && !(rc = show_window(ws, ldfd, o, err)))
		rc = show_slots(ws, name, o, err);
	tally_sum(ldfd, &t);
	close(ldfd);
	json_object_set_new(o, "limited", json_pack("{s:I,s:I}", "rate", (json_int_t)t.rate, "slot",
						     (json_int_t)t.slot));
	if (rc) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

int sw_limit_list(const struct sw_ws *ws, int (*fn)(json_t *j, void *arg), void *arg, struct sw_err *err)
{
	char **names;
	size_t n;
	int rc = sw_chain_names(ws, LIMITS_DIR, &names, &n, err);
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *j;
		int r = sw_limit_show(ws, names[i], &j, err);
		if (r == SW_EX_FALSE)      /* removed meanwhile */
			continue;
		if (r) {
			/* one limit that cannot be read stops no listing */
			sw_warn("%s", err->msg);
			continue;
		}
		rc = fn(j, arg);
		json_decref(j);
	}
	sw_chain_names_free(names, n);
	return rc;
}

/* Writes an empty state over the newest version of kind's chain,
 * keeping its all-time count. */
static int reset_chain(const struct sw_ws *ws, int ldfd, enum sw_limit_kind kind, struct sw_err *err)
{
	struct sw_chain c;
	int rc = open_chain(ws, ldfd, kind, false, &c, err);
	if (rc)
		return rc == SW_EX_FALSE ? 0 : rc;
	for (int i = 0; i < RETRIES; i++) {
		struct sw_chain_ver v;
		if ((rc = sw_chain_latest(&c, &v, err)))
			break;
		json_t *body = NULL;
		if (v.seq == 0) {
			sw_chain_ver_free(&v);
			break;
		}
		struct sw_limit_bucket_ver b;
		struct window_ver w = {0};
		if (kind == SW_LIMIT_BUCKET) {
			struct sw_limit_spec s = { .kind = kind, .rate = { 1, SW_NS_PER_SEC }, .burst = 1 };
			uint64_t g = granted_before(&c, v.seq + 1, kind);
			if (v.j && bucket_fields(v.j, &b) == 0) {
				s.rate = b.rate;
				s.burst = b.burst;
			}
			body = bucket_json(&s, 0, g);
		} else {
			struct sw_limit_spec s = { .kind = kind, .window_ns = SW_NS_PER_SEC, .max = 1 };
			struct sw_tlist none = {0};
			uint64_t g = granted_before(&c, v.seq + 1, kind);
			if (v.j && window_fields(v.j, &w) == 0) {
				s.window_ns = w.window_ns;
				s.max = w.max;
				sw_tlist_free(&w.times);
			}
			body = window_json(&s, &none, g);
		}
		rc = body ? sw_chain_write(&c, &v, body, true, err) : sw_err_set(err, EX_OSERR, "out of memory");
		json_decref(body);
		sw_chain_ver_free(&v);
		if (rc != SW_CHAIN_LOST)
			break;
		rc = sw_err_set(err, EX_TEMPFAIL, "the limit keeps changing; try again");
	}
	close(c.dfd);
	return rc;
}

int sw_limit_reset(const struct sw_ws *ws, const char *name, struct sw_err *err)
{
	int ldfd, rc = limit_dir(ws, name, false, &ldfd, err);
	if (rc)
		return rc;
	if (!(rc = reset_chain(ws, ldfd, SW_LIMIT_BUCKET, err)))
		rc = reset_chain(ws, ldfd, SW_LIMIT_WINDOW, err);
	close(ldfd);
	return rc;
}

/* ---- gauges ------------------------------------------------------------- */

enum { G_GRANTED_RATE, G_GRANTED_SLOT, G_LIMITED_RATE, G_LIMITED_SLOT, G_SLOTS, G_N };

struct gauge_row {
	char name[SW_NAME_MAX + 1];
	double v[G_N];
};

struct gauge_rows {
	struct gauge_row *r;
	size_t n, cap;
};

static double member_num(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(json_object_get(o, a), b);
	return json_is_integer(v) ? (double)json_integer_value(v) : 0;
}

static int gauge_collect(json_t *j, void *arg)
{
	struct gauge_rows *g = arg;
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 16;
		struct gauge_row *nr = realloc(g->r, nc * sizeof *nr);
		if (!nr)
			return -1;
		g->r = nr;
		g->cap = nc;
	}
	struct gauge_row *r = &g->r[g->n++];
	snprintf(r->name, sizeof r->name, "%s", sw_json_str(j, "name"));
	r->v[G_GRANTED_RATE] = member_num(j, "bucket", "granted") + member_num(j, "window", "granted");
	r->v[G_GRANTED_SLOT] = member_num(j, "slots", "acquired");
	r->v[G_LIMITED_RATE] = member_num(j, "limited", "rate");
	r->v[G_LIMITED_SLOT] = member_num(j, "limited", "slot");
	r->v[G_SLOTS] = member_num(j, "slots", "held");
	return 0;
}

/* One family: a sample per limit (v[a]), or per limit and kind (v[a]
 * for kind="rate", v[b] for kind="slot") when b >= 0. */
static int gauge_family(const struct gauge_rows *g, const char *metric, const char *help, int a, int b,
			sw_limit_gauge_fn fn, void *arg)
{
	int rc = 0;
	for (size_t i = 0; i < g->n && !rc; i++) {
		for (int k = 0; k < (b >= 0 ? 2 : 1) && !rc; k++) {
			json_t *lab = b >= 0 ? json_pack("{s:s,s:s}", "name", g->r[i].name, "kind", k ? "slot" : "rate")
					     : json_pack("{s:s}", "name", g->r[i].name);
			rc = fn(metric, help, lab, g->r[i].v[k ? b : a], arg);
			json_decref(lab);
		}
	}
	return rc;
}

int sw_limit_gauges(const struct sw_ws *ws, sw_limit_gauge_fn fn, void *arg)
{
	struct gauge_rows g = {0};
	struct sw_err err;
	int rc = sw_limit_list(ws, gauge_collect, &g, &err);
	if (rc) {
		sw_warn("limits left out of the export: %s", rc < 0 ? "out of memory" : err.msg);
		free(g.r);
		return 0;
	}
	rc = gauge_family(&g, "sw_limit_granted_total",
			  "Grants of a limit: tokens (kind=rate) and slots acquired (kind=slot).",
			  G_GRANTED_RATE, G_GRANTED_SLOT, fn, arg);
	if (!rc)
		rc = gauge_family(&g, "sw_limit_limited_total", "Refusals of a limit, by kind.",
				  G_LIMITED_RATE, G_LIMITED_SLOT, fn, arg);
	if (!rc)
		rc = gauge_family(&g, "sw_limit_slots_in_use", "Concurrency slots of a limit held now.",
				  G_SLOTS, -1, fn, arg);
	free(g.r);
	return rc;
}

int sw_limit_breaker_gauges(const struct sw_ws *ws, sw_limit_gauge_fn fn, void *arg)
{
	int rc = sw_limit_gauges(ws, fn, arg);
	return rc ? rc : sw_breaker_gauges(ws, fn, arg);
}
