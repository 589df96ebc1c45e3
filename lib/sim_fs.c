/* sim_fs.c — `sw-sim fs DIR [DIR2]`: whether a filesystem keeps the
 * promises sw's correctness rests on (DESIGN.md §2), measured in a
 * scratch directory made in DIR and removed at the end:
 *
 *   the races of sim_fsrace.c, between processes and between the mounts
 *   visibility: how long a create, a rename and a replace made through DIR
 *     take to be seen through DIR2
 *   timestamps: the resolution of mtime, and how far the filesystem's
 *     clock (the mtime it gives a new file) is from this host's
 *   inotify: whether a watch sees a change made on this mount, and one
 *     made through the other
 *   locks: whether flock and fcntl locks exclude between processes, and
 *     between the mounts (sw never relies on them: information)
 *   fsync: what one costs
 *
 * Each finding is a line (JSON, or words on a terminal) with its numbers
 * and a verdict: "ok", "fail" (sw's guarantees do not hold: exit 1) or
 * "info".  Then the verdict and the settings recommended for here. */
#include "sim.h"
#include "sim_fsrace.h"
#include "sim_proc.h"
#include "sim_items.h"
#include "clock.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "ws.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define SEEN_MAX (10 * SW_NS_PER_SEC)
#define SAMPLES 20

struct fsck {
	const struct sim_fs_opts *o;
	char path[2][PATH_MAX];  /* the scratch directory through each mount */
	char name[96];
	int fd[2];
	int nmounts;
	bool tty;
	bool fail;
	json_t *reasons;
	struct sw_settings set;
	int64_t vis_max_ns;     /* the slowest change seen across */
	int64_t skew_ns, res_ns;
	bool netfs, tmpfs, inotify_local, inotify_cross;
	char fstype[32];
};

/* ---- output ------------------------------------------------------------- */

static void finding(struct fsck *f, const char *check, const char *verdict, json_t *j, const char *words)
{
	if (!strcmp(verdict, "fail")) {
		f->fail = true;
		char why[512];
		snprintf(why, sizeof why, "%s: %s", check, words);
		json_array_append_new(f->reasons, json_string(why));
	}
	if (f->o->quiet) {
		json_decref(j);
		return;
	}
	if (f->tty) {
		printf("  %-14s %-5s %s\n", check, verdict, words);
	} else {
		json_object_set_new(j, "type", json_string("finding"));
		json_object_set_new(j, "check", json_string(check));
		json_object_set_new(j, "verdict", json_string(verdict));
		json_object_set_new(j, "detail", json_string(words));
		if (sw_json_print(j) < 0)
			sw_warn("writing output: %s", strerror(errno));
	}
	json_decref(j);
	fflush(stdout);
}

static void fmt_ns(char *buf, size_t n, int64_t ns)
{
	if (ns < 0) ns = -ns;
	if (ns >= SW_NS_PER_SEC) snprintf(buf, n, "%.1fs", (double)ns / 1e9);
	else if (ns >= 10 * MS) snprintf(buf, n, "%lldms", (long long)(ns / MS));
	else if (ns >= MS / 10) snprintf(buf, n, "%.2fms", (double)ns / 1e6);
	else if (ns >= 1000) snprintf(buf, n, "%lldus", (long long)(ns / 1000));
	else snprintf(buf, n, "%lldns", (long long)ns);
}

/* ---- races ------------------------------------------------------------- */

/* Whether renameat2(RENAME_NOREPLACE) is the filesystem's own on every
 * mount: where it is not (EINVAL: NFS, MooseFS and other FUSE ones),
 * sw_rename_noreplace looks before it renames, which two racers can pass
 * together. */
static bool noreplace_native(const struct fsck *f)
{
	bool native = true;
	for (int m = 0; m < f->nmounts; m++) {
		char a[64], b[64];
		snprintf(a, sizeof a, "probe.%ld.%d", (long)getpid(), m);
		snprintf(b, sizeof b, "probe.%ld.%d.to", (long)getpid(), m);
		int fd = openat(f->fd[m], a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		close(fd);
		if (renameat2(f->fd[m], a, f->fd[m], b, RENAME_NOREPLACE) < 0 && (errno == EINVAL || errno == ENOSYS))
			native = false;
		unlinkat(f->fd[m], a, 0);
		unlinkat(f->fd[m], b, 0);
	}
	return native;
}

static void races(struct fsck *f)
{
	const char *brk = getenv(SIM_ENV_FS_BREAK);
	bool native = noreplace_native(f);
	for (int p = 0; p < PRIM_N; p++) {
		struct sim_race r;
		bool broken = brk && !strcmp(brk, sim_prim_names[p]);
		char words[512];
		if (sim_race_run((enum sim_prim)p, f->fd, f->nmounts, f->o->racers, f->o->rounds, broken, &r) < 0) {
			snprintf(words, sizeof words, "could not race: %s", *r.detail ? r.detail : strerror(errno));
			finding(f, sim_prim_names[p], "fail", json_object(), words);
			continue;
		}
		bool ok = r.one == r.rounds;
		if (ok)
			snprintf(words, sizeof words, "%d of %d rounds had exactly one winner (%d racers, %d mount%s)",
				 r.one, r.rounds, f->o->racers, f->nmounts, f->nmounts > 1 ? "s" : "");
		else
			snprintf(words, sizeof words, "%d of %d rounds went wrong: %d with several winners, %d "
				 "with none, %d not as on disk; first: %s", r.rounds - r.one, r.rounds, r.several,
				 r.none, r.wrong, r.detail);
		json_t *j = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "rounds", r.rounds, "one_winner", r.one,
				      "several_winners", r.several, "no_winner", r.none, "not_on_disk", r.wrong,
				      "errors", r.errors, "racers", f->o->racers, "mounts", f->nmounts);
		const char *verdict = ok ? "ok" : "fail";
		if (p == PRIM_NOREPLACE) {
			json_object_set_new(j, "native", json_boolean(native));
			/* sw decides no winner by it (DESIGN.md: rename, O_EXCL
			 * create, link): without the filesystem's own, a race of
			 * it is no broken promise */
			if (!ok && !native && !broken) {
				verdict = "info";
				snprintf(words, sizeof words, "no RENAME_NOREPLACE here (EINVAL): sw looks before it "
					 "renames, and %d of %d rounds had several winners; sw decides no claim by it, "
					 "only keeps a finished item off a file put there outside the protocol",
					 r.several, r.rounds);
			}
		}
		finding(f, sim_prim_names[p], verdict, j, words);
	}
}

/* ---- visibility across the mounts ------------------------------------------ */

/* ns until test(fd[1], name, want) holds, or -1 after SEEN_MAX. */
static int64_t until_seen(struct fsck *f, const char *name, const char *want, int64_t t0)
{
	for (;;) {
		int64_t now = sw_now_ns();
		char buf[64] = "";
		int fd = SW_NOINTR(openat(f->fd[1], name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
		if (fd >= 0) {
			ssize_t n = SW_NOINTR(read(fd, buf, sizeof buf - 1));
			buf[n > 0 ? n : 0] = 0;
			close(fd);
			if (!strcmp(buf, want))
				return now - t0;
		}
		if (now - t0 > SEEN_MAX)
			return -1;
		sw_sleep_ns(100000);
	}
}

static int write_file(int dfd, const char *name, const char *content)
{
	int fd = SW_NOINTR(openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	if (fd < 0)
		return -1;
	ssize_t n = SW_NOINTR(write(fd, content, strlen(content)));
	int rc = close(fd);
	return n == (ssize_t)strlen(content) && rc == 0 ? 0 : -1;
}

/* One change of kind k (create, rename, replace) made through DIR and
 * awaited through DIR2. */
static int64_t one_change(struct fsck *f, int k, int i)
{
	char a[32], b[32], c[32];
	snprintf(a, sizeof a, "v%d", i);
	snprintf(b, sizeof b, "w%d", i);
	snprintf(c, sizeof c, "c%d", i);
	if (k == 0) {
		int64_t t0 = sw_now_ns();
		return write_file(f->fd[0], a, "1") < 0 ? -2 : until_seen(f, a, "1", t0);
	}
	if (k == 1) {
		int64_t t0 = sw_now_ns();
		return renameat(f->fd[0], a, f->fd[0], b) < 0 ? -2 : until_seen(f, b, "1", t0);
	}
	/* a replace, as sw writes a record: a new file renamed over the old */
	if (write_file(f->fd[0], c, "2") < 0)
		return -2;
	int64_t t0 = sw_now_ns();
	return renameat(f->fd[0], c, f->fd[0], b) < 0 ? -2 : until_seen(f, b, "2", t0);
}

static void visibility(struct fsck *f)
{
	static const char *const kinds[] = { "create", "rename", "replace" };
	int64_t v[3][SAMPLES];
	int n[3] = { 0 };
	bool lost = false, broke = false;
	for (int i = 0; i < SAMPLES && !lost && !broke; i++)
		for (int k = 0; k < 3; k++) {
			int64_t t = one_change(f, k, i);
			lost |= t == -1;
			broke |= t == -2;
			if (t >= 0)
				v[k][n[k]++] = t;
		}
	char words[512] = "", a[16], b[16];
	json_t *j = json_object();
	for (int k = 0; k < 3; k++) {
		int64_t p50 = sim_percentile(v[k], (size_t)n[k], 50), mx = sim_percentile(v[k], (size_t)n[k], 100);
		if (mx > f->vis_max_ns)
			f->vis_max_ns = mx;
		fmt_ns(a, sizeof a, p50);
		fmt_ns(b, sizeof b, mx);
		size_t l = strlen(words);
		snprintf(words + l, sizeof words - l, "%s%s p50 %s max %s", l ? "; " : "", kinds[k], a, b);
		json_object_set_new(j, kinds[k], json_pack("{s:f,s:f}", "p50_ms", (double)p50 / 1e6,
							   "max_ms", (double)mx / 1e6));
	}
	if (lost || broke) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s (%s)", lost ? "a change made through DIR was not seen through DIR2 "
			 "within 10 s: is DIR2 the same directory?" : "a change could not be made", words);
		finding(f, "visibility", "fail", j, msg);
		return;
	}
	finding(f, "visibility", "ok", j, words);
}

/* ---- timestamps ------------------------------------------------------------ */

static int64_t resolution(const int64_t *nsec, int n)
{
	int64_t r = SW_NS_PER_SEC;
	while (r > 1) {
		bool all = true;
		for (int i = 0; i < n; i++)
			all &= nsec[i] % r == 0;
		if (all)
			return r;
		r /= 10;
	}
	return 1;
}

static void timestamps(struct fsck *f)
{
	int64_t nsec[SAMPLES], skew[SAMPLES], spread = 0;
	int n = 0;
	for (int i = 0; i < SAMPLES; i++) {
		char name[32];
		struct stat st;
		snprintf(name, sizeof name, "ts%d", i);
		int64_t before = sw_now_ns();
		if (write_file(f->fd[0], name, "t") < 0 || fstatat(f->fd[0], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			break;
		int64_t after = sw_now_ns();
		int64_t m = (int64_t)st.st_mtim.tv_sec * SW_NS_PER_SEC + st.st_mtim.tv_nsec;
		nsec[n] = st.st_mtim.tv_nsec;
		skew[n++] = m - (before + after) / 2;
		if (after - before > spread)
			spread = after - before;
		sw_sleep_ns(3 * MS + (int64_t)sw_rand_below(1000) * 1000);
	}
	if (!n) {
		finding(f, "timestamps", "fail", json_object(), "cannot create a file");
		return;
	}
	f->res_ns = resolution(nsec, n);
	f->skew_ns = sim_percentile(skew, (size_t)n, 50);
	/* a coarse mtime is truncated: the skew is known to within it */
	int64_t err = f->res_ns + spread / 2;
	int64_t lo = f->skew_ns < 0 ? -f->skew_ns : f->skew_ns;
	int64_t margin = lo > err ? lo - err : 0;
	char a[16], b[16], c[16], words[256];
	fmt_ns(a, sizeof a, f->res_ns);
	fmt_ns(b, sizeof b, f->skew_ns);
	fmt_ns(c, sizeof c, err);
	snprintf(words, sizeof words, "mtime resolution %s; the filesystem's clock is %s%s from this host's (±%s)",
		 a, f->skew_ns < 0 ? "-" : "+", b, c);
	json_t *j = json_pack("{s:I,s:f,s:f}", "resolution_ns", (json_int_t)f->res_ns, "skew_ms",
			      (double)f->skew_ns / 1e6, "uncertainty_ms", (double)err / 1e6);
	if (margin > f->set.skew_ns) {
		char msg[512];
		fmt_ns(a, sizeof a, f->set.skew_ns);
		snprintf(msg, sizeof msg, "%s: more than SW_CLOCK_SKEW (%s), so heartbeats and expiries are "
			 "misjudged", words, a);
		finding(f, "timestamps", "fail", j, msg);
		return;
	}
	finding(f, "timestamps", "ok", j, words);
}

/* ---- inotify ----------------------------------------------------------------- */

/* Whether a watch on watch_path sees a file created through dfd. */
static int sees(const char *watch_path, int dfd, const char *name)
{
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return -1;
	if (inotify_add_watch(ifd, watch_path, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(ifd);
		return -1;
	}
	int rc = write_file(dfd, name, "i");
	struct pollfd p = { .fd = ifd, .events = POLLIN };
	if (rc == 0)
		rc = SW_NOINTR(poll(&p, 1, 1500)) > 0 ? 1 : 0;
	close(ifd);
	return rc;
}

static void inotify(struct fsck *f)
{
	int here = sees(f->path[0], f->fd[0], "in0");
	int across = f->nmounts > 1 ? sees(f->path[1], f->fd[0], "in1") : -2;
	f->inotify_local = here == 1;
	f->inotify_cross = across == 1;
	char words[256];
	snprintf(words, sizeof words, "a watch sees a change on this mount: %s%s%s", here == 1 ? "yes" : here == 0 ? "no" : "cannot watch",
		 across == -2 ? "" : "; made through the other mount: ",
		 across == -2 ? "" : across == 1 ? "yes" : across == 0 ? "no (agents there find new items by polling)" : "cannot watch");
	json_t *j = json_pack("{s:b}", "this_mount", here == 1);
	if (across != -2)
		json_object_set_new(j, "other_mount", json_boolean(across == 1));
	finding(f, "inotify", "info", j, words);
}

/* ---- locks -------------------------------------------------------------------- */

static int lock_fd(int fd, bool posix, bool wait)
{
	if (!posix)
		return flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	return fcntl(fd, wait ? F_SETLKW : F_SETLK, &l);
}

/* Whether a lock taken through mount 0 keeps a process out through
 * mount m: 1 yes, 0 no, -1 cannot tell. */
static int excludes(struct fsck *f, bool posix, int m)
{
	int fd = SW_NOINTR(openat(f->fd[0], "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
	if (fd < 0 || lock_fd(fd, posix, true) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int g = SW_NOINTR(openat(f->fd[m], "lock", O_RDWR | O_CLOEXEC));
		if (g < 0)
			_exit(2);
		_exit(lock_fd(g, posix, false) == 0 ? 1 : errno == EWOULDBLOCK || errno == EAGAIN || errno == EACCES ? 0 : 2);
	}
	int st = 0;
	int rc = pid < 0 || waitpid(pid, &st, 0) < 0 ? -1 : !WIFEXITED(st) ? -1 :
		 WEXITSTATUS(st) == 0 ? 1 : WEXITSTATUS(st) == 1 ? 0 : -1;
	close(fd);
	return rc;
}

static void locks(struct fsck *f)
{
	static const char *const yes[] = { "cannot tell", "no", "yes" };
	int fl = excludes(f, false, 0), fc = excludes(f, true, 0);
	int xfl = f->nmounts > 1 ? excludes(f, false, 1) : -2, xfc = f->nmounts > 1 ? excludes(f, true, 1) : -2;
	char words[256];
	snprintf(words, sizeof words, "flock excludes another process: %s, fcntl: %s%s%s%s%s (sw uses locks only "
		 "to cut contention)", yes[fl + 1], yes[fc + 1], xfl == -2 ? "" : "; across the mounts flock: ",
		 xfl == -2 ? "" : yes[xfl + 1], xfl == -2 ? "" : ", fcntl: ", xfc == -2 ? "" : yes[xfc + 1]);
	json_t *j = json_pack("{s:i,s:i}", "flock", fl, "fcntl", fc);
	if (xfl != -2) {
		json_object_set_new(j, "flock_across", json_integer(xfl));
		json_object_set_new(j, "fcntl_across", json_integer(xfc));
	}
	finding(f, "locks", "info", j, words);
}

/* ---- fsync and the filesystem ---------------------------------------------------- */

static void fsync_cost(struct fsck *f, int64_t *median)
{
	int64_t t[10];
	int n = 0;
	char buf[4096];
	memset(buf, 'f', sizeof buf);
	for (int i = 0; i < 10; i++) {
		int fd = SW_NOINTR(openat(f->fd[0], "sync", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
		if (fd < 0)
			break;
		int64_t t0 = sw_now_ns();
		bool ok = SW_NOINTR(write(fd, buf, sizeof buf)) == (ssize_t)sizeof buf && fsync(fd) == 0;
		t[n] = sw_now_ns() - t0;
		n += ok;
		close(fd);
	}
	*median = sim_percentile(t, (size_t)n, 50);
}

static void fs_type(struct fsck *f)
{
	struct statfs sf;
	f->netfs = sw_is_netfs(f->fd[0]);
	snprintf(f->fstype, sizeof f->fstype, "unknown");
	if (fstatfs(f->fd[0], &sf) < 0)
		return;
	static const struct { unsigned long magic; const char *name; } names[] = {
		{ 0xef53, "ext4" }, { 0x01021994, "tmpfs" }, { 0x58465342, "xfs" }, { 0x9123683e, "btrfs" },
		{ 0x6969, "nfs" }, { 0xff534d42, "cifs" }, { 0xfe534d42, "smb2" }, { 0x65735546, "fuse" },
		{ 0x00c36400, "ceph" }, { 0x0bd00bd0, "lustre" }, { 0x47504653, "gpfs" }, { 0x01021997, "9p" },
		{ 0x794c7630, "overlay" }, { 0x2fc12fc1, "zfs" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if ((unsigned long)sf.f_type == names[i].magic)
			snprintf(f->fstype, sizeof f->fstype, "%s", names[i].name);
	f->tmpfs = (unsigned long)sf.f_type == 0x01021994;
}

/* ---- the verdict ---------------------------------------------------------------- */

static void secs(char *buf, size_t n, int64_t ns)
{
	int64_t s = (ns + SW_NS_PER_SEC - 1) / SW_NS_PER_SEC;
	snprintf(buf, n, "%llds", (long long)(s < 1 ? 1 : s));
}

static json_t *recommend(struct fsck *f, int64_t fsync_ns, char *words, size_t n)
{
	char poll[16], skew[16], ms[16];
	/* another host's items are found by polling where no watch sees them */
	bool polls = f->netfs || !f->inotify_local || (f->nmounts > 1 && !f->inotify_cross);
	if (polls)
		secs(poll, sizeof poll, f->vis_max_ns > SW_NS_PER_SEC ? f->vis_max_ns : SW_NS_PER_SEC);
	else
		snprintf(poll, sizeof poll, "30s");
	/* the margin covers the clocks' difference twice (two hosts, each
	 * off the filesystem's), its uncertainty and the slowest change */
	int64_t abs_skew = f->skew_ns < 0 ? -f->skew_ns : f->skew_ns;
	int64_t need = 2 * abs_skew + f->res_ns + f->vis_max_ns;
	secs(skew, sizeof skew, need > SW_SKEW_DEFAULT_NS ? need : SW_SKEW_DEFAULT_NS);
	const char *sync = f->tmpfs ? "off" : "normal";
	fmt_ns(ms, sizeof ms, fsync_ns);
	snprintf(words, n, "SW_POLL=%s SW_CLOCK_SKEW=%s SW_SYNC=%s (%s%s; an fsync takes %s)", poll, skew, sync,
		 f->fstype, f->netfs ? ", a network filesystem" : "", ms);
	return json_pack("{s:s,s:s,s:s}", "SW_POLL", poll, "SW_CLOCK_SKEW", skew, "SW_SYNC", sync);
}

static int verdict(struct fsck *f, int64_t fsync_ns)
{
	char words[256];
	json_t *rec = recommend(f, fsync_ns, words, sizeof words);
	if (f->o->quiet) {
		json_decref(rec);
	} else if (f->tty) {
		printf("verdict: %s\nrecommended: %s\n", f->fail ? "FAIL: sw's guarantees do not hold here" :
		       "ok: sw's guarantees hold here", words);
		json_decref(rec);
	} else {
		json_t *j = json_pack("{s:s,s:b,s:O,s:o,s:s,s:b}", "type", "verdict", "ok", !f->fail, "reasons",
				      f->reasons, "recommend", rec, "filesystem", f->fstype, "network", f->netfs);
		if (sw_json_print(j) < 0)
			sw_warn("writing output: %s", strerror(errno));
		json_decref(j);
	}
	size_t i;
	json_t *r;
	json_array_foreach(f->reasons, i, r)
		sw_warn("%s", json_string_value(r));
	return f->fail ? SW_EX_FALSE : 0;
}

/* ---- the scratch directory -------------------------------------------------------- */

/* One mount never shows a directory under two inode numbers: dir2 on
 * dir's device with another inode is another directory, known at once
 * (a second mount of one filesystem has a device of its own). */
static bool other_dir_same_mount(const char *dir, const char *dir2)
{
	struct stat a, b;
	return stat(dir, &a) == 0 && stat(dir2, &b) == 0 && a.st_dev == b.st_dev && a.st_ino != b.st_ino;
}

static int setup(struct fsck *f, struct sw_err *e)
{
	const struct sim_fs_opts *o = f->o;
	char host[64], rnd[9];
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "host");
	host[sizeof host - 1] = 0;
	for (char *c = host; *c; c++)
		if (*c == '/' || (unsigned char)*c < 0x21)
			*c = '_';
	sw_rand_hex(rnd, 4);
	snprintf(f->name, sizeof f->name, "sw-sim-fs.%.40s.%ld.%s", host, (long)getpid(), rnd);
	int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sw_err_set(e, errno == ENOENT || errno == ENOTDIR ? EX_USAGE : sw_ex_errno(errno),
				  "%s: %s", o->dir, strerror(errno));
	int rc = mkdirat(dfd, f->name, 0700);
	int err = errno;
	f->fd[0] = rc < 0 ? -1 : openat(dfd, f->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	close(dfd);
	if (f->fd[0] < 0)
		return sw_err_set(e, rc < 0 ? sw_ex_errno(err) == EX_IOERR ? EX_IOERR : EX_CANTCREAT : EX_OSERR,
				  "cannot make a scratch directory in %s: %s", o->dir, strerror(rc < 0 ? err : errno));
	snprintf(f->path[0], sizeof f->path[0], "%s/%s", o->dir, f->name);
	f->nmounts = 1;
	if (!o->dir2)
		return 0;
	snprintf(f->path[1], sizeof f->path[1], "%s/%s", o->dir2, f->name);
	if (other_dir_same_mount(o->dir, o->dir2))
		return sw_err_set(e, SW_EX_FALSE, "%s: a directory made in %s does not appear in %s: it is another "
				  "directory of the same mount, not a second mount of it", o->dir2, o->dir, o->dir2);
	int64_t end = sw_now_ns() + SEEN_MAX;
	while ((f->fd[1] = open(f->path[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (sw_now_ns() > end)
			return sw_err_set(e, SW_EX_FALSE, "%s: a directory made in %s does not appear in %s within "
					  "10 s: is it the same directory on another mount?", o->dir2, o->dir, o->dir2);
		sw_sleep_ns(10 * MS);
	}
	f->nmounts = 2;
	return 0;
}

static void cleanup(struct fsck *f)
{
	if (f->fd[0] >= 0) {
		close(f->fd[0]);
		int dfd = open(f->o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || sim_rmtree(dfd, f->name) < 0)
			sw_warn("cannot remove %s: %s", f->path[0], strerror(errno));
		if (dfd >= 0)
			close(dfd);
	}
	if (f->fd[1] >= 0)
		close(f->fd[1]);
	json_decref(f->reasons);
}

int sim_fs(const struct sim_fs_opts *o, struct sw_span *sp)
{
	struct fsck f = { .o = o, .fd = { -1, -1 }, .tty = isatty(1) && !o->json, .reasons = json_array() };
	struct sw_err e;
	/* a reader gone (| head) must not leave the scratch directory behind */
	signal(SIGPIPE, SIG_IGN);
	int rc = sw_settings_read(&f.set, &e);
	if (!rc)
		rc = setup(&f, &e);
	if (rc) {
		sw_warn("%s", e.msg);
		cleanup(&f);
		return rc;
	}
	fs_type(&f);
	sw_span_str(sp, "sw.sim.fs_type", f.fstype);
	if (f.tty && !o->quiet)
		printf("sw-sim fs %s%s%s (%s%s)\n", o->dir, o->dir2 ? " and " : "", o->dir2 ? o->dir2 : "",
		       f.fstype, f.netfs ? ", a network filesystem" : "");
	races(&f);
	if (f.nmounts > 1)
		visibility(&f);
	timestamps(&f);
	inotify(&f);
	locks(&f);
	int64_t fsync_ns = 0;
	fsync_cost(&f, &fsync_ns);
	rc = verdict(&f, fsync_ns);
	sw_span_int(sp, "sw.sim.fs_ok", rc == 0);
	cleanup(&f);
	return rc;
}
