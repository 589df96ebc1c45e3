/* lease.c — leases as a chain of exclusively created version files.
 *
 * leases/<name>/v.<seq> is written once and never changed.  A change reads
 * the newest version v.S and creates v.S+1 (temp + link, which fails with
 * EEXIST when the name exists: exactly one of any number of contenders on
 * any number of hosts wins).  So a renewer of token T and an acquirer that
 * saw T expired cannot both succeed: both want v.S+1.  The loser re-reads
 * and learns the truth (the renewer: "token T is not the holder", exit 1;
 * the acquirer: "held until …", exit 75).
 *
 * Old versions are deleted to keep the directory small (all but the newest
 * KEEP), lowest first.  A process paused between reading v.S and creating
 * v.S+1 could then re-create a deleted name; so after every create the
 * writer re-reads v.S and compares its random "vid": if v.S is gone or is
 * another file, the write was stale and is undone.  Deletion goes lowest
 * first, so v.S+1 can only have been deleted after v.S was. */
#include "lease.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEASES_DIR "leases"
#define HEAD_NAME "head"
#define KEEP 64                 /* versions kept behind the newest */
#define VERSION_MAX 16384       /* bytes of one version file */
#define RETRIES 1000            /* lost CAS rounds before giving up (75) */
#define VNAME_LEN 32

struct ver {
	struct sw_lease l;
	char vid[33];
};

enum { CAS_LOST = -2 };

static void vname(char buf[VNAME_LEN], uint64_t seq)
{
	snprintf(buf, VNAME_LEN, "v.%020llu", (unsigned long long)seq);
}

static bool parse_u64(const char *s, uint64_t *v)
{
	if (!s || !*s || strlen(s) > 20)
		return false;
	uint64_t n = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*v = n;
	return true;
}

bool sw_lease_token_parse(const char *s, uint64_t *token)
{
	return parse_u64(s, token) && *token > 0 && *token <= (uint64_t)INT64_MAX;
}

/* Sequence numbers stop at INT64_MAX: they are JSON integers in a version. */
static bool vname_parse(const char *name, uint64_t *seq)
{
	return name[0] == 'v' && name[1] == '.' && strlen(name) == 22 && parse_u64(name + 2, seq) &&
	       *seq <= (uint64_t)INT64_MAX;
}

/* t + d for a time and a duration, both at least 0, without overflow:
 * a version file can say any time at all. */
static int64_t add_sat(int64_t t, int64_t d)
{
	return t > INT64_MAX - d ? INT64_MAX : t + d;
}

const char *sw_lease_state_name(enum sw_lease_state s)
{
	switch (s) {
	case SW_LEASE_HELD: return "held";
	case SW_LEASE_EXPIRED: return "expired";
	case SW_LEASE_RELEASED: return "released";
	default: return "free";
	}
}

static void set_state(const struct sw_ws *ws, struct sw_lease *l, int64_t now)
{
	l->takeable_ns = add_sat(l->expires_ns, ws->skew_ns);
	if (l->seq == 0)
		l->state = SW_LEASE_FREE;
	else if (l->released)
		l->state = SW_LEASE_RELEASED;
	else if (now < l->expires_ns)
		l->state = SW_LEASE_HELD;
	else
		l->state = SW_LEASE_EXPIRED;
}

/* ---- version files ---------------------------------------------------- */

static json_t *ver_json(const struct ver *v)
{
	const struct sw_lease *l = &v->l;
	json_t *j = json_pack("{s:s,s:I,s:I,s:s,s:s,s:I,s:s}",
		"name", l->name, "seq", (json_int_t)l->seq, "token", (json_int_t)l->token,
		"owner", l->owner, "state", l->released ? "released" : "held",
		"ttl_ms", (json_int_t)(l->ttl_ns / 1000000), "vid", v->vid);
	if (!j)
		return NULL;
	sw_json_set_time(j, "acquired_at", l->acquired_ns);
	sw_json_set_time(j, "renewed_at", l->renewed_ns);
	sw_json_set_time(j, "expires_at", l->expires_ns);
	if (l->released)
		sw_json_set_time(j, "released_at", l->released_ns);
	if (l->takeover[0]) {
		json_object_set_new(j, "takeover", json_string(l->takeover));
		if (l->takeover_until_ns)   /* absent: the asker waits for ever */
			sw_json_set_time(j, "takeover_until", l->takeover_until_ns);
	}
	return j;
}

/* A string member of at most max bytes, with no NUL in it; NULL if not. */
static const char *member_str(const json_t *j, const char *key, size_t max)
{
	const json_t *v = json_object_get(j, key);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	return s && n <= max && strlen(s) == n ? s : NULL;
}

/* An integer member in [lo, hi], or dflt when it is absent; false when it
 * is there but not such an integer. */
static bool member_int(const json_t *j, const char *key, int64_t lo, int64_t hi, int64_t dflt,
		       int64_t *out)
{
	const json_t *v = json_object_get(j, key);
	if (!v) {
		*out = dflt;
		return true;
	}
	int64_t x;
	if ((!json_is_integer(v) && !sw_json_time_key(key)) || !sw_json_i64(v, &x) || x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static bool vid_ok(const char *vid)
{
	if (!vid || !*vid)
		return false;
	for (const char *p = vid; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

static int version_fields(const json_t *j, uint64_t seq, struct sw_lease *out, char vid[33])
{
	const char *name = member_str(j, "name", SW_NAME_MAX), *owner = member_str(j, "owner", SW_LEASE_OWNER_MAX);
	const char *state = member_str(j, "state", 16), *id = member_str(j, "vid", 32);
	const char *takeover = member_str(j, "takeover", SW_LEASE_OWNER_MAX);
	int64_t token, jseq, ttl_ms, acq, ren, exp, rel, until;
	if (!json_is_object(j) || !name || sw_name_problem(name) || !owner || sw_name_problem(owner) ||
	    !state ||
	    (strcmp(state, "held") && strcmp(state, "released")) || !vid_ok(id) ||
	    !json_object_get(j, "seq") || !member_int(j, "seq", 1, INT64_MAX, 0, &jseq) ||
	    (uint64_t)jseq != seq || !json_object_get(j, "token") ||
	    !member_int(j, "token", 1, INT64_MAX, 0, &token) ||
	    !member_int(j, "ttl_ms", 0, SW_DURATION_MAX_NS / 1000000, 0, &ttl_ms) ||
	    !member_int(j, "acquired_at_unix_ns", 0, SW_TIME_MAX_NS, 0, &acq) ||
	    !member_int(j, "renewed_at_unix_ns", 0, SW_TIME_MAX_NS, 0, &ren) ||
	    !member_int(j, "expires_at_unix_ns", 0, SW_TIME_MAX_NS, 0, &exp) ||
	    !member_int(j, "released_at_unix_ns", 0, SW_TIME_MAX_NS, 0, &rel) ||
	    (json_object_get(j, "takeover") && (!takeover || sw_name_problem(takeover))) ||
	    !member_int(j, "takeover_until_unix_ns", 0, SW_TIME_MAX_NS, 0, &until))
		return -1;
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", name);
	snprintf(out->owner, sizeof out->owner, "%s", owner);
	snprintf(vid, 33, "%s", id);
	out->seq = seq;
	out->token = (uint64_t)token;
	out->released = !strcmp(state, "released");
	out->acquired_ns = acq;
	out->renewed_ns = ren;
	out->expires_ns = exp;
	out->released_ns = rel;
	out->ttl_ns = ttl_ms * 1000000;
	snprintf(out->takeover, sizeof out->takeover, "%s", takeover ? takeover : "");
	out->takeover_until_ns = until;
	return 0;
}

int sw_lease_version_parse(const char *buf, size_t len, uint64_t seq, struct sw_lease *out, char vid[33])
{
	/* no JSON_ALLOW_NUL: a string with a NUL in it is not a version */
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return -1;
	int rc = version_fields(j, seq, out, vid);
	json_decref(j);
	return rc;
}

/* 0, or -1 with errno (ENOENT: no such version; EBADMSG: not ours). */
static int ver_read(int dfd, uint64_t seq, struct ver *v)
{
	char fn[VNAME_LEN], *buf;
	size_t len;
	vname(fn, seq);
	if (sw_read_file(dfd, fn, &buf, &len, VERSION_MAX) < 0) {
		/* too big, a FIFO, a symlink, a directory: not a version, damaged */
		if (sw_errno_damaged(errno))
			errno = EBADMSG;
		return -1;
	}
	int rc = sw_lease_version_parse(buf, len, seq, &v->l, v->vid);
	free(buf);
	if (rc < 0)
		errno = EBADMSG;
	return rc;
}

/* The highest seq in a directory listing (a hint: listings can be cached
 * for a second on a network filesystem); 0 when there is none. */
static int listing_max(int dfd, uint64_t *max)
{
	int fd = SW_NOINTR(openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	*max = 0;
	struct dirent *e;
	uint64_t s;
	while ((e = sw_readdir(d)))
		if (vname_parse(e->d_name, &s) && s > *max)
			*max = s;
	closedir(d);
	return 0;
}

static uint64_t head_hint(int dfd)
{
	char *buf;
	uint64_t s = 0;
	if (sw_read_file(dfd, HEAD_NAME, &buf, NULL, 64) < 0)
		return 0;
	buf[strcspn(buf, "\n")] = 0;
	if (!parse_u64(buf, &s))
		s = 0;
	free(buf);
	return s;
}

/* A version file that cannot be read (a power loss can leave a version
 * empty: under SW_SYNC=off any, under normal a renewal or a release; or
 * someone put a FIFO, a symlink, garbage there) stands for the worst it
 * may have been: a grant, of the token after prev's, to an unknown owner
 * whose host went down with the data, held one TTL (prev's: the only one
 * known) from the file's write time.  With no readable version before it,
 * its token is its seq (no version raises the token by more than one)
 * and its TTL the default.  So no token is ever given twice, and a
 * damaged file blocks the lease for one TTL at most.  0, or -1 with
 * errno. */
#define VID_DAMAGED "-"
#define DAMAGED_TTL_NS (30 * SW_NS_PER_SEC)
static int ver_damaged(int dfd, uint64_t seq, const struct ver *prev, struct ver *v)
{
	char fn[VNAME_LEN];
	struct stat st;
	vname(fn, seq);
	if ((prev && prev->l.token >= (uint64_t)INT64_MAX) || seq > (uint64_t)INT64_MAX) {
		errno = EBADMSG;
		return -1;
	}
	if (SW_NOINTR(fstatat(dfd, fn, &st, AT_SYMLINK_NOFOLLOW)) < 0)
		return -1;
	int64_t written = st.st_mtim.tv_sec < 0 ? 0 :
		st.st_mtim.tv_sec >= SW_TIME_MAX_NS / SW_NS_PER_SEC ? SW_TIME_MAX_NS :
		(int64_t)st.st_mtim.tv_sec * SW_NS_PER_SEC + st.st_mtim.tv_nsec;
	if (prev) {
		*v = *prev;
	} else {
		memset(v, 0, sizeof *v);
		v->l.ttl_ns = DAMAGED_TTL_NS;
	}
	v->l.seq = seq;
	v->l.token = prev ? prev->l.token + 1 : seq;
	snprintf(v->l.owner, sizeof v->l.owner, SW_LEASE_OWNER_UNKNOWN);
	v->l.takeover[0] = 0;   /* a grant starts without a request */
	v->l.takeover_until_ns = 0;
	v->l.released = false;
	v->l.released_ns = 0;
	v->l.acquired_ns = v->l.renewed_ns = written;
	v->l.expires_ns = add_sat(written, v->l.ttl_ns);
	snprintf(v->vid, sizeof v->vid, "%s", VID_DAMAGED);
	return 0;
}

static bool ver_exists(int dfd, uint64_t seq)
{
	char fn[VNAME_LEN];
	vname(fn, seq);
	return faccessat(dfd, fn, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

enum { FOUND, AGAIN, BAD = -1 };

/* Where to start looking: the head hint (a damaged hinted version is
 * read from the good one before it), else the listing.  *have says
 * whether cur holds v.*m; with no version at all, *m is 0.  FOUND, AGAIN
 * (a version vanished under us) or BAD with errno. */
static int start_point(int dfd, struct ver *cur, uint64_t *m, bool *have)
{
	*have = false;
	*m = head_hint(dfd);
	for (int back = 0; *m > 0 && back < KEEP; back++, --*m) {
		if (ver_read(dfd, *m, cur) == 0) {
			*have = true;
			return FOUND;
		}
		if (errno == ENOENT)
			break;
		if (errno != EBADMSG)
			return BAD;
	}
	if (listing_max(dfd, m) < 0)
		return BAD;
	if (*m == 0) {
		memset(cur, 0, sizeof *cur);
		return FOUND;
	}
	/* the newest listed, else the newest readable one before it (the
	 * damaged ones after it are then read as ver_damaged says) */
	uint64_t top = *m;
	for (int back = 0; *m > 0 && back < KEEP; back++, --*m) {
		if (ver_read(dfd, *m, cur) == 0) {
			*have = true;
			return FOUND;
		}
		if (errno == ENOENT)
			return *m == top ? AGAIN : BAD;
		if (errno != EBADMSG)
			return BAD;
	}
	/* nothing readable at all: the newest stands as damaged, alone */
	*m = top;
	if (ver_damaged(dfd, top, NULL, cur) < 0)
		return errno == ENOENT ? AGAIN : BAD;
	*have = true;
	return FOUND;
}

/* Steps from v.*m to v.*m+1 while it exists (a damaged one read as
 * ver_damaged says).  Lookups by name go to the server; only the absence
 * of v.S+1 makes v.S the newest, and only while v.S is still there:
 * deletion goes lowest first, so a v.S+1 deleted while this process
 * stalled took v.S with it.  FOUND, AGAIN or BAD with errno and *m the
 * version that could not be read. */
static int walk_forward(int dfd, struct ver *cur, uint64_t *m, bool have)
{
	struct ver next;
	for (;;) {
		if (ver_read(dfd, *m + 1, &next) < 0) {
			if (errno == ENOENT)
				return !have || ver_exists(dfd, *m) ? FOUND : AGAIN;
			if (errno != EBADMSG || ver_damaged(dfd, *m + 1, have ? cur : NULL, &next) < 0) {
				++*m;
				return BAD;
			}
		}
		*cur = next;
		have = true;
		++*m;
	}
}

/* "<workspace>/leases/<name>": errors name the directory they are about,
 * so that a permission problem says where it is. */
static const char *lease_path(const struct sw_ws *ws, const char *name)
{
	static char buf[PATH_MAX + SW_NAME_MAX + 16];
	snprintf(buf, sizeof buf, "%s/" LEASES_DIR "/%s", ws->path, name);
	return buf;
}

/* The newest version: start at the head hint (or the listing), then step
 * forward by name while the next version exists. */
static int find_latest(const struct sw_ws *ws, const char *name, int dfd, struct ver *cur,
		       struct sw_err *err)
{
	for (int attempt = 0; attempt < 200; attempt++) {
		uint64_t m;
		bool have;
		int rc = start_point(dfd, cur, &m, &have);
		if (rc == FOUND)
			rc = walk_forward(dfd, cur, &m, have);
		if (rc == FOUND)
			return 0;
		if (rc == AGAIN) {
			sw_sleep_ns(5000000);
			continue;
		}
		if (errno == EBADMSG) {
			sw_err_msg(err, "version file near %s/v.%llu is not a lease version",
				 lease_path(ws, name), (unsigned long long)m);
			return EX_DATAERR;
		}
		sw_err_msg(err, "reading %s: %s", lease_path(ws, name), strerror(errno));
		return sw_ex_errno(errno);
	}
	sw_err_msg(err, "lease versions keep vanishing; try again");
	return EX_TEMPFAIL;
}

/* Temporary files of writers that crashed between writing and linking;
 * an hour old is far beyond any live writer. */
static void clean_tmp(int dfd)
{
	int fd = SW_NOINTR(openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	time_t old = time(NULL) - 3600;
	struct dirent *e;
	struct stat st;
	while ((e = sw_readdir(d)))
		if (!strncmp(e->d_name, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)) &&
		    SW_NOINTR(fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) == 0 && st.st_mtime < old)
			SW_NOINTR(unlinkat(dfd, e->d_name, 0));
	closedir(d);
}

/* Deletes versions more than KEEP behind seq, lowest first (see the top of
 * this file for why the order matters).  Failures only leave files. */
static void cleanup(int dfd, uint64_t seq)
{
	if (seq <= KEEP + 1)
		return;
	uint64_t top = seq - KEEP, low = top;
	for (int steps = 0; low > 1 && steps < 4 * KEEP && ver_exists(dfd, low - 1); steps++)
		low--;
	char fn[VNAME_LEN];
	for (uint64_t k = low; k <= top; k++) {
		vname(fn, k);
		SW_NOINTR(unlinkat(dfd, fn, 0));
	}
	if (seq % (4 * KEEP) == 0)
		clean_tmp(dfd);
}

/* Creates v.(cur->seq + 1) holding next.  CAS_LOST when another change won
 * (or this one turned out stale), 0 when it is in place, else an exit code. */
static int write_next(const struct sw_ws *ws, int dfd, const struct ver *cur, struct ver *next,
		      struct sw_err *err)
{
	if (cur->l.seq >= (uint64_t)INT64_MAX) {
		sw_err_msg(err, "lease versions used up at v.%llu", (unsigned long long)cur->l.seq);
		return EX_DATAERR;
	}
	next->l.seq = cur->l.seq + 1;
	sw_rand_hex(next->vid, 16);
	json_t *j = ver_json(next);
	size_t len;
	char *buf = j ? sw_json_line(j, &len) : NULL;
	json_decref(j);
	if (!buf) {
		sw_err_msg(err, "out of memory");
		return EX_OSERR;
	}
	char fn[VNAME_LEN];
	vname(fn, next->l.seq);
	/* a grant is worth a directory fsync under "normal"; a renewal is not */
	bool durable = cur->l.token != next->l.token;
	int rc = sw_create_excl(dfd, fn, buf, len, ws->sync, durable);
	int e = errno;
	free(buf);
	if (rc < 0 && e == EEXIST)
		return CAS_LOST;
	if (rc < 0) {
		sw_err_msg(err, "creating %s/%s: %s", lease_path(ws, next->l.name), fn, strerror(e));
		return sw_ex_errno(e);
	}
	if (cur->l.seq == 0) {
		/* a first version by a writer that saw no versions and stalled:
		 * meanwhile the lease may have lived on and cleanup removed its
		 * v.1, which would let this one in.  A later version says so: the
		 * one the head hint names (looked up by name, never stale), or one
		 * in the listing (which may lag). */
		uint64_t m = 0, h = head_hint(dfd);
		if ((h > 1 && ver_exists(dfd, h)) || listing_max(dfd, &m) < 0 || m > 1) {
			SW_NOINTR(unlinkat(dfd, fn, 0));
			return CAS_LOST;
		}
	} else {
		struct ver again;
		bool gone = false;
		if (ver_read(dfd, cur->l.seq, &again) < 0) {
			if (errno == EBADMSG && !strcmp(cur->vid, VID_DAMAGED)) {
				snprintf(again.vid, sizeof again.vid, "%s", VID_DAMAGED);   /* as it was */
			} else if (errno == ENOENT) {
				gone = true;
			} else {
				sw_err_msg(err, "re-reading %s/v.%llu: %s", lease_path(ws, next->l.name),
					 (unsigned long long)cur->l.seq, strerror(errno));
				return sw_ex_errno(errno);
			}
		}
		if (gone || strcmp(again.vid, cur->vid)) {
			/* stale: v.S was deleted, so v.S+1 had been too */
			SW_NOINTR(unlinkat(dfd, fn, 0));
			return CAS_LOST;
		}
	}
	char hint[24];
	int n = snprintf(hint, sizeof hint, "%llu\n", (unsigned long long)next->l.seq);
	sw_replace(dfd, HEAD_NAME, hint, (size_t)n, SW_SYNC_OFF, false);
	cleanup(dfd, next->l.seq);
	return 0;
}

/* ---- verbs -------------------------------------------------------------- */

static int open_lease(const struct sw_ws *ws, const char *name, bool create, int *dfd,
		      struct sw_err *err)
{
	const char *why = sw_name_problem(name);
	if (why) {
		sw_err_msg(err, "bad lease name '%.60s': %s", name, why);
		return EX_DATAERR;
	}
	char rel[sizeof LEASES_DIR + SW_NAME_MAX + 2];
	snprintf(rel, sizeof rel, LEASES_DIR "/%s", name);
	*dfd = sw_ws_dir(ws, rel, create);
	if (*dfd >= 0)
		return 0;
	if (errno == ENOENT && !create) {
		sw_err_msg(err, "no lease '%s'", name);
		return SW_EX_FALSE;
	}
	sw_err_msg(err, "lease directory %s: %s", lease_path(ws, name), strerror(errno));
	return errno == ENOENT ? EX_CANTCREAT : sw_ex_errno(errno);
}

static void fill_out(const struct sw_ws *ws, const char *name, const struct ver *v,
		     struct sw_lease *out, int64_t now)
{
	*out = v->l;
	snprintf(out->name, sizeof out->name, "%s", name);
	set_state(ws, out, now);
}

int sw_lease_read(const struct sw_ws *ws, const char *name, struct sw_lease *out,
		  struct sw_err *err)
{
	int dfd, rc = open_lease(ws, name, false, &dfd, err);
	if (rc)
		return rc;
	struct ver cur;
	rc = find_latest(ws, name, dfd, &cur, err);
	close(dfd);
	if (rc)
		return rc;
	fill_out(ws, name, &cur, out, sw_now_ns());
	return 0;
}

/* A version in place is only as good as the time it is told: a writer
 * stalled anywhere after reading the clock (before, in or after the link,
 * the vid re-read, the head hint, the cleanup) may be past the expiry it
 * wrote, and another holder may have the lease by now.  So success is
 * reported only while the lease written is still valid by this clock. */
static bool still_valid(const struct ver *v, struct sw_err *err)
{
	if (sw_now_ns() < v->l.expires_ns)
		return true;
	char t[SW_TIME_LEN];
	sw_fmt_time(v->l.expires_ns, t);
	sw_err_msg(err, "token %llu's lease on '%s' expired at %s, before this process "
		 "could say so (was it stopped?)", (unsigned long long)v->l.token, v->l.name, t);
	return false;
}

static void held_msg(struct sw_err *err, const struct sw_lease *l)
{
	char t[SW_TIME_LEN];
	sw_fmt_time(l->takeable_ns, t);
	sw_err_msg(err, "'%s' is held by %s (token %llu); free at %s at the latest",
		 l->name, l->owner, (unsigned long long)l->token, t);
}

/* ---- changes: read the newest version, make the next, create it ---------- */

struct change {
	const char *name;
	struct ver cur, next;
	int64_t now;            /* read after cur: what cur says happened before */
	/* the answer when the version written has expired by the time it is
	 * in place (a writer stalled), or 0 for a change that grants nothing */
	int stale_rc;
	const char *owner;      /* acquire, ask */
	uint64_t token;         /* renew, release */
	int64_t ns;             /* acquire, renew: the TTL; ask: until when */
};

enum { WRITE = -3 };

/* The one shape of every change: decide reads the newest version into
 * c->cur and either answers (0 with out filled, or a code with err) or
 * makes c->next and asks for it to be written (WRITE).  A change that
 * lost the race for v.S+1 reads again, RETRIES times at most. */
static int change(const struct sw_ws *ws, const char *name, bool create, struct change *c,
		  int (*decide)(const struct sw_ws *ws, int dfd, struct change *c, struct sw_lease *out,
				struct sw_err *err),
		  struct sw_lease *out, struct sw_err *err)
{
	int dfd, rc = open_lease(ws, name, create, &dfd, err);
	if (rc)
		return rc;
	c->name = name;
	for (int i = 0; i < RETRIES; i++) {
		if ((rc = decide(ws, dfd, c, out, err)) != WRITE)
			break;
		rc = write_next(ws, dfd, &c->cur, &c->next, err);
		if (rc == CAS_LOST) {
			rc = EX_TEMPFAIL;
			sw_err_msg(err, "'%s' keeps changing; try again", name);
			continue;
		}
		if (rc == 0 && c->stale_rc && !still_valid(&c->next, err))
			rc = c->stale_rc;
		if (rc == 0)
			fill_out(ws, name, &c->next, out, c->now);
		break;
	}
	close(dfd);
	return rc;
}

static int decide_acquire(const struct sw_ws *ws, int dfd, struct change *c, struct sw_lease *out,
			  struct sw_err *err)
{
	int rc = find_latest(ws, c->name, dfd, &c->cur, err);
	if (rc)
		return rc;
	/* now is read after the newest version: a release seen here
	 * happened before this acquisition's start */
	c->now = sw_now_ns();
	const struct sw_lease *cur = &c->cur.l;
	if (cur->seq > 0 && !cur->released && c->now < add_sat(cur->expires_ns, ws->skew_ns)) {
		fill_out(ws, c->name, &c->cur, out, c->now);
		held_msg(err, out);
		return EX_TEMPFAIL;
	}
	if (cur->token >= (uint64_t)INT64_MAX) {
		sw_err_msg(err, "'%s' has used up its fencing tokens", c->name);
		return EX_DATAERR;
	}
	struct sw_lease *next = &c->next.l;
	memset(&c->next, 0, sizeof c->next);
	snprintf(next->name, sizeof next->name, "%s", c->name);
	snprintf(next->owner, sizeof next->owner, "%s", c->owner);
	next->token = cur->token + 1;
	next->acquired_ns = next->renewed_ns = c->now;
	next->expires_ns = c->now + c->ns;
	next->ttl_ns = c->ns;
	return WRITE;
}

int sw_lease_acquire(const struct sw_ws *ws, const char *name, const char *owner,
		     int64_t ttl_ns, struct sw_lease *out, struct sw_err *err)
{
	struct change c = { .owner = owner, .ns = ttl_ns, .stale_rc = EX_TEMPFAIL };
	return change(ws, name, true, &c, decide_acquire, out, err);
}

/* The newest version, when token holds it; 1 with a reason otherwise. */
static int holder(const struct sw_ws *ws, int dfd, const char *name, uint64_t token,
		  struct ver *cur, struct sw_lease *out, struct sw_err *err)
{
	int rc = find_latest(ws, name, dfd, cur, err);
	if (rc)
		return rc;
	fill_out(ws, name, cur, out, sw_now_ns());
	if (cur->l.seq == 0) {
		sw_err_msg(err, "'%s' has never been acquired", name);
		return SW_EX_FALSE;
	}
	if (cur->l.token != token) {
		sw_err_msg(err, "token %llu no longer holds '%s' (token %llu does)",
			 (unsigned long long)token, name, (unsigned long long)cur->l.token);
		return SW_EX_FALSE;
	}
	if (cur->l.released) {
		sw_err_msg(err, "token %llu has released '%s'", (unsigned long long)token, name);
		return SW_EX_FALSE;
	}
	return 0;
}

static int decide_renew(const struct sw_ws *ws, int dfd, struct change *c, struct sw_lease *out,
			struct sw_err *err)
{
	int rc = holder(ws, dfd, c->name, c->token, &c->cur, out, err);
	if (rc)
		return rc;
	c->now = sw_now_ns();
	/* an expired lease stays lost even if nobody took it yet: its
	 * holder has already stopped believing it holds it */
	if (c->now >= c->cur.l.expires_ns) {
		char t[SW_TIME_LEN];
		sw_fmt_time(c->cur.l.expires_ns, t);
		sw_err_msg(err, "token %llu's lease on '%s' expired at %s",
			 (unsigned long long)c->token, c->name, t);
		return SW_EX_FALSE;
	}
	c->next = c->cur;   /* a takeover request goes on with it */
	c->next.l.renewed_ns = c->now;
	c->next.l.ttl_ns = c->ns > 0 ? c->ns : c->cur.l.ttl_ns;
	c->next.l.expires_ns = c->now + c->next.l.ttl_ns;
	return WRITE;
}

int sw_lease_renew(const struct sw_ws *ws, const char *name, uint64_t token,
		   int64_t ttl_ns, struct sw_lease *out, struct sw_err *err)
{
	struct change c = { .token = token, .ns = ttl_ns, .stale_rc = SW_EX_FALSE };
	return change(ws, name, false, &c, decide_renew, out, err);
}

static int decide_release(const struct sw_ws *ws, int dfd, struct change *c, struct sw_lease *out,
			  struct sw_err *err)
{
	int rc = holder(ws, dfd, c->name, c->token, &c->cur, out, err);
	if (rc)
		return rc;
	/* still the newest version, so nobody took it even if it has
	 * expired: giving it back lets the next one in without waiting */
	c->now = sw_now_ns();
	c->next = c->cur;
	c->next.l.released = true;
	c->next.l.released_ns = c->now;
	return WRITE;
}

int sw_lease_release(const struct sw_ws *ws, const char *name, uint64_t token,
		     struct sw_lease *out, struct sw_err *err)
{
	struct change c = { .token = token };
	return change(ws, name, false, &c, decide_release, out, err);
}

bool sw_lease_asked(const struct sw_lease *l)
{
	return l->takeover[0] && !l->released &&
	       (l->takeover_until_ns == 0 || sw_now_ns() < l->takeover_until_ns);
}

static int decide_ask(const struct sw_ws *ws, int dfd, struct change *c, struct sw_lease *out,
		      struct sw_err *err)
{
	int rc = find_latest(ws, c->name, dfd, &c->cur, err);
	if (rc)
		return rc;
	c->now = sw_now_ns();
	fill_out(ws, c->name, &c->cur, out, c->now);
	const struct sw_lease *cur = &c->cur.l;
	/* nothing held, or asked already: nothing to write.  A lease
	 * expired by this clock is not renewed by its holder any more: it
	 * comes free without asking */
	if (cur->seq == 0 || cur->released || c->now >= cur->expires_ns ||
	    (!strcmp(cur->takeover, c->owner) && cur->takeover_until_ns == c->ns))
		return 0;
	c->next = c->cur;
	snprintf(c->next.l.takeover, sizeof c->next.l.takeover, "%s", c->owner);
	c->next.l.takeover_until_ns = c->ns;
	return WRITE;
}

int sw_lease_ask(const struct sw_ws *ws, const char *name, const char *requester,
		 int64_t until_ns, struct sw_lease *out, struct sw_err *err)
{
	if (sw_name_problem(requester) || strlen(requester) > SW_LEASE_OWNER_MAX) {
		sw_err_msg(err, "bad requester '%.60s'", requester);
		return EX_DATAERR;
	}
	struct change c = { .owner = requester, .ns = until_ns };
	return change(ws, name, false, &c, decide_ask, out, err);
}

int sw_lease_check(const struct sw_ws *ws, const char *name, uint64_t token,
		   struct sw_lease *out, struct sw_err *err)
{
	int dfd, rc = open_lease(ws, name, false, &dfd, err);
	if (rc)
		return rc;
	struct ver cur;
	rc = holder(ws, dfd, name, token, &cur, out, err);
	close(dfd);
	if (rc)
		return rc;
	if (out->state != SW_LEASE_HELD) {
		sw_err_msg(err, "token %llu's lease on '%s' has expired",
			 (unsigned long long)token, name);
		return SW_EX_FALSE;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sw_lease_list(const struct sw_ws *ws, int (*fn)(const struct sw_lease *l, void *arg),
		  void *arg, struct sw_err *err)
{
	int dfd = sw_ws_dir(ws, LEASES_DIR, false);
	if (dfd < 0 && errno == ENOENT)
		return 0;
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		sw_err_msg(err, "listing %s/" LEASES_DIR ": %s", ws->path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return sw_ex_errno(errno);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = sw_readdir(d))) {
		if (sw_hidden(e->d_name) || sw_name_problem(e->d_name) ||
		    (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof *names);
			if (!nn) { rc = EX_OSERR; break; }
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name))) { rc = EX_OSERR; break; }
		n++;
	}
	closedir(d);
	if (rc)
		sw_err_msg(err, "out of memory");
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && !rc; i++) {
		struct sw_lease l;
		int r = sw_lease_read(ws, names[i], &l, err);
		if (r == SW_EX_FALSE || (r && errno == ENOTDIR))   /* removed meanwhile, or no lease */
			continue;
		if (r) {
			/* one lease that cannot be read stops no listing: it is
			 * named, and the rest are listed */
			sw_warn("lease '%s': %s", names[i], err->msg);
			continue;
		}
		rc = fn(&l, arg);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

json_t *sw_lease_json(const struct sw_lease *l)
{
	json_t *j = json_pack("{s:s,s:s}", "name", l->name, "state", sw_lease_state_name(l->state));
	if (!j || l->seq == 0)
		return j;
	json_object_set_new(j, "owner", json_string(l->owner));
	json_object_set_new(j, "token", json_integer((json_int_t)l->token));
	sw_json_set_time(j, "acquired_at", l->acquired_ns);
	sw_json_set_time(j, "renewed_at", l->renewed_ns);
	sw_json_set_time(j, "expires_at", l->expires_ns);
	if (l->released)
		sw_json_set_time(j, "released_at", l->released_ns);
	else
		sw_json_set_time(j, "takeable_at", l->takeable_ns);
	json_object_set_new(j, "ttl_ms", json_integer(l->ttl_ns / 1000000));
	if (sw_lease_asked(l))
		json_object_set_new(j, "takeover_requested_by", json_string(l->takeover));
	return j;
}

int sw_lease_watch(const struct sw_ws *ws, const char *name)
{
	struct sw_err err;
	int dfd;
	if (open_lease(ws, name, true, &dfd, &err))
		return -1;
	int fd = ws->set.no_inotify ? -1 : inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", dfd);
	if (fd >= 0 && inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO) < 0) {
		close(fd);
		fd = -1;
	}
	close(dfd);
	return fd;
}

void sw_lease_watch_sleep(int watch, int64_t ns)
{
	if (watch < 0) {
		sw_sleep_ns(ns);
		return;
	}
	struct pollfd p = { .fd = watch, .events = POLLIN };
	int ms = (int)((ns + 999999) / 1000000);
	if (poll(&p, 1, ms) > 0) {
		char buf[4096];
		while (read(watch, buf, sizeof buf) > 0)
			;
	}
}

void sw_lease_default_owner(char out[SW_LEASE_OWNER_MAX + 1])
{
	char host[128];
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	snprintf(out, SW_LEASE_OWNER_MAX + 1, "%s:%ld", host, (long)getpid());
}
