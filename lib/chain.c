/* chain.c — version chains: exclusively created, immutable version files.
 * The protocol is lib/lease.c's (see chain.h); what differs is that the
 * content is the caller's, and that a reader finds the newest version by
 * looking names up rather than reading each one on the way: a limit's
 * chain grows by one version per grant, and a reader should pay for one
 * read, not for every version written since the hint. */
#include "chain.h"
#include "clock.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "num.h"
#include "ws.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEAD_NAME "head"
#define VNAME_LEN 32
#define VID_DAMAGED "-"
#define FIND_TRIES 400          /* versions vanishing under a reader, 1-5 ms apart */

static void vname(char buf[VNAME_LEN], uint64_t seq)
{
	snprintf(buf, VNAME_LEN, "v.%020llu", (unsigned long long)seq);
}

/* Sequence numbers stop at INT64_MAX: they are JSON integers too. */
static bool vname_parse(const char *name, uint64_t *seq)
{
	return name[0] == 'v' && name[1] == '.' && strlen(name) == 22 &&
	       sw_parse_u64(name + 2, (uint64_t)INT64_MAX, seq) == 0;
}

void sw_chain_jitter(int64_t max_ns)
{
	if (max_ns > 0)
		sw_sleep_ns((int64_t)sw_rand_below((uint32_t)(max_ns / 1000 + 1)) * 1000);
}

static bool vid_ok(const char *vid, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((vid[i] >= '0' && vid[i] <= '9') || (vid[i] >= 'a' && vid[i] <= 'z') ||
		      (vid[i] >= 'A' && vid[i] <= 'Z')))
			return false;
	return true;
}

int sw_chain_parse(const char *buf, size_t len, uint64_t seq, json_t **out, char vid[33])
{
	/* no JSON_ALLOW_NUL: a string with a NUL in it is no version */
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t *s = json_object_get(j, "seq"), *id = json_object_get(j, "vid");
	if (!json_is_object(j) || !json_is_integer(s) || json_integer_value(s) < 1 ||
	    (uint64_t)json_integer_value(s) != seq || !json_is_string(id) ||
	    !vid_ok(json_string_value(id), json_string_length(id))) {
		json_decref(j);
		return -1;
	}
	snprintf(vid, 33, "%s", json_string_value(id));
	*out = j;
	return 0;
}

static int64_t mtime_ns(const struct stat *st)
{
	if (st->st_mtim.tv_sec < 0)
		return 0;
	if (st->st_mtim.tv_sec >= SW_TIME_MAX_NS / SW_NS_PER_SEC)
		return SW_TIME_MAX_NS;
	return (int64_t)st->st_mtim.tv_sec * SW_NS_PER_SEC + st->st_mtim.tv_nsec;
}

/* v as damaged: whatever sits at v.seq (a FIFO, a symlink, an empty file
 * after a power loss) is known by its write time only.  0, or -1 with
 * errno (ENOENT: it is gone after all). */
static int mark_damaged(const struct sw_chain *c, uint64_t seq, struct sw_chain_ver *v)
{
	char fn[VNAME_LEN];
	struct stat st;
	vname(fn, seq);
	if (SW_NOINTR(fstatat(c->dfd, fn, &st, AT_SYMLINK_NOFOLLOW)) < 0)
		return -1;
	v->seq = seq;
	v->j = NULL;
	v->damaged = true;
	v->written_ns = mtime_ns(&st);
	snprintf(v->vid, sizeof v->vid, VID_DAMAGED);
	errno = EBADMSG;
	return -1;
}

int sw_chain_read(const struct sw_chain *c, uint64_t seq, struct sw_chain_ver *v)
{
	char fn[VNAME_LEN], *buf;
	size_t len;
	struct stat st;
	memset(v, 0, sizeof *v);
	vname(fn, seq);
	int fd = sw_open_file(c->dfd, fn, &st);
	if (fd < 0)
		return sw_errno_damaged(errno) ? mark_damaged(c, seq, v) : -1;
	if ((size_t)st.st_size > c->max_bytes) {
		close(fd);
		return mark_damaged(c, seq, v);
	}
	int rc = sw_read_fd(fd, &buf, &len, c->max_bytes);
	int e = errno;
	close(fd);
	if (rc < 0) {
		errno = e;
		return sw_errno_damaged(e) ? mark_damaged(c, seq, v) : -1;
	}
	rc = sw_chain_parse(buf, len, seq, &v->j, v->vid);
	free(buf);
	v->seq = seq;
	v->written_ns = mtime_ns(&st);
	if (rc < 0)
		return mark_damaged(c, seq, v);
	return 0;
}

void sw_chain_ver_free(struct sw_chain_ver *v)
{
	json_decref(v->j);
	v->j = NULL;
}

static bool ver_exists(const struct sw_chain *c, uint64_t seq)
{
	char fn[VNAME_LEN];
	vname(fn, seq);
	return SW_NOINTR(faccessat(c->dfd, fn, F_OK, AT_SYMLINK_NOFOLLOW)) == 0;
}

/* The highest seq in a directory listing (a hint: listings can lag by a
 * second on a network filesystem); 0 when there is none. */
static int listing_max(const struct sw_chain *c, uint64_t *max)
{
	int fd = SW_NOINTR(openat(c->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
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

static uint64_t head_hint(const struct sw_chain *c)
{
	char *buf;
	size_t len;
	uint64_t s = 0;
	if (sw_read_file(c->dfd, HEAD_NAME, &buf, &len, 64) < 0)
		return 0;
	buf[strcspn(buf, "\n")] = 0;
	if (sw_parse_u64(buf, (uint64_t)INT64_MAX, &s) < 0)
		s = 0;
	free(buf);
	return s;
}

/* Where the newest version is: from the head hint (else, or when the
 * hint led nowhere last time, from the listing), step forward by name
 * while the next one exists.  Lookups by name go to the server; only the
 * absence of v.S+1 makes v.S the newest. */
static int newest_seq(const struct sw_chain *c, bool listing, uint64_t *m)
{
	*m = listing ? 0 : head_hint(c);
	if (*m == 0 && listing_max(c, m) < 0)
		return -1;
	while (*m < (uint64_t)INT64_MAX && ver_exists(c, *m + 1))
		++*m;
	return 0;
}

int sw_chain_latest(const struct sw_chain *c, struct sw_chain_ver *v, struct sw_err *err)
{
	for (int attempt = 0; attempt < FIND_TRIES; attempt++) {
		uint64_t m;
		if (newest_seq(c, attempt > 0, &m) < 0)
			return sw_err_set(err, sw_ex_errno(errno), "listing versions: %s", strerror(errno));
		if (m == 0) {
			memset(v, 0, sizeof *v);
			return 0;
		}
		if (sw_chain_read(c, m, v) == 0 || errno == EBADMSG)
			return 0;
		if (errno != ENOENT)
			return sw_err_set(err, sw_ex_errno(errno), "reading v.%llu: %s",
					  (unsigned long long)m, strerror(errno));
		/* deleted by a cleanup since it was seen (the chain has moved
		 * on), a stale hint or a stale listing: look again */
		if (attempt > 0) {
			sw_chain_jitter(4000000);
			sw_sleep_ns(1000000);
		}
	}
	return sw_err_set(err, EX_TEMPFAIL, "versions keep vanishing; try again");
}

/* Temporary files of writers that crashed between writing and linking;
 * an hour old is far beyond any live writer. */
static void clean_tmp(const struct sw_chain *c)
{
	int fd = SW_NOINTR(openat(c->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
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
		    SW_NOINTR(fstatat(c->dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) == 0 && st.st_mtime < old)
			SW_NOINTR(unlinkat(c->dfd, e->d_name, 0));
	closedir(d);
}

/* Deletes the versions more than keep behind seq, lowest first, looking
 * down for any a writer that died before its cleanup left: a writer that
 * stalled after reading v.S then finds v.S gone whenever v.S+1 was
 * deleted, which is what its re-read checks.  Failures only leave files. */
static void cleanup(const struct sw_chain *c, uint64_t seq)
{
	if (seq <= (uint64_t)c->keep + 1)
		return;
	uint64_t top = seq - c->keep, low = top;
	for (unsigned steps = 0; low > 1 && steps < 4 * c->keep && ver_exists(c, low - 1); steps++)
		low--;
	char fn[VNAME_LEN];
	for (uint64_t k = low; k <= top; k++) {
		vname(fn, k);
		SW_NOINTR(unlinkat(c->dfd, fn, 0));
	}
	if (seq % 1024 == 0)
		clean_tmp(c);
}

/* Whether v.seq is a version built on the one whose vid is mine: its
 * writer read mine as the newest. */
static bool built_on(const struct sw_chain *c, uint64_t seq, const char *mine)
{
	struct sw_chain_ver next;
	const char *base = sw_chain_read(c, seq, &next) == 0 ? sw_json_str(next.j, "base") : NULL;
	bool on = base && !strcmp(base, mine);
	sw_chain_ver_free(&next);
	return on;
}

/* After creating v.S+1: whether it looks like a stale re-creation (SW_CHAIN_LOST;
 * 0 when not, else an exit code).  A writer that read v.S, stalled while
 * the chain moved on and cleanup deleted v.S+1, could create v.S+1 again;
 * v.S went first, so its absence (or another file in its place) gives
 * that away. */
static int looks_stale(const struct sw_chain *c, const struct sw_chain_ver *cur, struct sw_err *err)
{
	if (cur->seq == 0) {
		/* a first version by a writer that saw none and stalled while
		 * the chain lived on and cleanup removed its v.1: a later
		 * version says so, the one the head hint names (looked up by
		 * name) or one in the listing (which may lag) */
		uint64_t m = 0, h = head_hint(c);
		return (h > 1 && ver_exists(c, h)) || listing_max(c, &m) < 0 || m > 1 ? SW_CHAIN_LOST : 0;
	}
	struct sw_chain_ver again;
	int rc = sw_chain_read(c, cur->seq, &again);
	int e = errno;
	sw_chain_ver_free(&again);
	if (rc < 0 && e == ENOENT)
		return SW_CHAIN_LOST;
	if (rc < 0 && e != EBADMSG)
		return sw_err_set(err, sw_ex_errno(e), "re-reading v.%llu: %s", (unsigned long long)cur->seq,
				  strerror(e));
	/* a damaged v.S is as it was when it is still damaged */
	return strcmp(again.vid, cur->vid) ? SW_CHAIN_LOST : 0;
}

/* Whether v.seq is still the version whose vid is mine. */
static bool still_mine(const struct sw_chain *c, uint64_t seq, const char *mine)
{
	struct sw_chain_ver v;
	bool is = sw_chain_read(c, seq, &v) == 0 && !strcmp(v.vid, mine);
	sw_chain_ver_free(&v);
	return is;
}

/* After creating v.S+1 (vid mine): whether it was based on the real v.S.
 * What gives a stale re-creation away (looks_stale) also comes of a
 * chain that moved on from a real v.S+1 quickly: a writer that lost the
 * race for it may build v.S+2 on it before this check, and a first
 * version has no v.S at all.  A v.S+2 whose base is mine settles it:
 * nobody builds on a stale re-creation, whose v.S+2 is long gone or names
 * another base.  Calling a real version stale would apply a change twice
 * (a failure counted twice trips a breaker early).
 *
 * A writer stalled between its create and this check while the chain
 * moved keep + 2 versions on finds v.S, v.S+1 and v.S+2 all gone: its
 * version was real and cleaned up after others built on it, or (rarely)
 * a stale one that a cleanup took with the versions above it.  Nobody
 * can tell, so the outcome is not known and the change is not made again
 * (EX_TEMPFAIL, saying so).  A stale re-creation is otherwise still
 * there, mine, when it is checked. */
static int still_based(const struct sw_chain *c, const struct sw_chain_ver *cur, const char *mine,
		       struct sw_err *err)
{
	int rc = looks_stale(c, cur, err);
	if (rc != SW_CHAIN_LOST)
		return rc;
	if (built_on(c, cur->seq + 2, mine))
		return 0;
	if (!still_mine(c, cur->seq + 1, mine))
		return sw_err_set(err, EX_TEMPFAIL, "v.%llu was written, then cleaned up under this "
				  "stalled process before it could check it: whether the change counted "
				  "is not known, and it is not made again", (unsigned long long)cur->seq + 1);
	return SW_CHAIN_LOST;
}

int sw_chain_write(const struct sw_chain *c, const struct sw_chain_ver *cur, json_t *body,
		   bool durable, struct sw_err *err)
{
	if (cur->seq >= (uint64_t)INT64_MAX)
		return sw_err_set(err, EX_DATAERR, "versions used up at v.%llu", (unsigned long long)cur->seq);
	uint64_t seq = cur->seq + 1;
	char vid[33], fn[VNAME_LEN];
	sw_rand_hex(vid, 16);
	if (json_object_set_new(body, "seq", json_integer((json_int_t)seq)) < 0 ||
	    json_object_set_new(body, "vid", json_string(vid)) < 0 ||
	    json_object_set_new(body, "base", json_string(cur->seq ? cur->vid : "")) < 0)
		return sw_err_set(err, EX_OSERR, "out of memory");
	size_t len;
	char *buf = sw_json_line(body, &len);
	if (!buf)
		return sw_err_set(err, EX_OSERR, "out of memory");
	if (len > c->max_bytes) {
		free(buf);
		return sw_err_set(err, EX_SOFTWARE, "a version of %zu bytes is more than the %zu a reader takes",
				  len, c->max_bytes);
	}
	vname(fn, seq);
	int rc = sw_create_excl(c->dfd, fn, buf, len, c->sync, durable);
	int e = errno;
	free(buf);
	if (rc < 0 && e == EEXIST)
		return SW_CHAIN_LOST;
	if (rc < 0)
		return sw_err_set(err, sw_ex_errno(e), "creating %s: %s", fn, strerror(e));
	if ((rc = still_based(c, cur, vid, err))) {
		if (rc == SW_CHAIN_LOST)
			SW_NOINTR(unlinkat(c->dfd, fn, 0));
		return rc;
	}
	if (seq % c->hint_every == 0 || seq == 1) {
		char hint[24];
		int n = snprintf(hint, sizeof hint, "%llu\n", (unsigned long long)seq);
		/* a hint only: a failure costs readers a few more lookups */
		(void)sw_replace(c->dfd, HEAD_NAME, hint, (size_t)n, SW_SYNC_OFF, false);
	}
	cleanup(c, seq);
	return 0;
}

bool sw_chain_int(const json_t *j, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
	int64_t x;
	if (!sw_json_i64(json_object_get(j, key), &x) || x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sw_chain_names(const struct sw_ws *ws, const char *rel, char ***names, size_t *n, struct sw_err *err)
{
	*names = NULL;
	*n = 0;
	int dfd = sw_ws_dir(ws, rel, false);
	if (dfd < 0 && errno == ENOENT)
		return 0;
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return sw_err_set(err, sw_ex_errno(e), "listing %s: %s", rel, strerror(e));
	}
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = sw_readdir(d))) {
		if (sw_hidden(e->d_name) || sw_name_problem(e->d_name) ||
		    (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(*names, cap * sizeof **names);
			if (!nn) { rc = EX_OSERR; break; }
			*names = nn;
		}
		if (!((*names)[*n] = strdup(e->d_name))) { rc = EX_OSERR; break; }
		++*n;
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof **names, cmp_str);
	return rc ? sw_err_set(err, rc, "out of memory") : 0;
}

void sw_chain_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

