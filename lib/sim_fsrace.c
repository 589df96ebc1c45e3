#include "sim_fsrace.h"
#include "atomic.h"
#include "clock.h"
#include "fs.h"
#include "num.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const sim_prim_names[PRIM_N] = { "rename", "excl", "link", "mkdir", "noreplace" };

#define RACE_TIMEOUT (120 * SW_NS_PER_SEC)
#define SEEN_TIMEOUT (10 * SW_NS_PER_SEC)

enum { LOSE = 0, WIN = 1, ERR = -1 };

struct shared {
	pthread_barrier_t bar;
	int first_errno;
	int8_t res[];           /* [round * racers + racer] */
};

struct race {
	enum sim_prim prim;
	int dfd[2];             /* the primitive's directory on each mount */
	int nmounts, racers, rounds;
	bool broken;
	struct shared *sh;
};

/* ---- files ---------------------------------------------------------------- */

static int put(int dfd, const char *name, const char *mark, int flags)
{
	int fd = SW_NOINTR(openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600));
	if (fd < 0)
		return -1;
	size_t n = strlen(mark);
	int rc = SW_NOINTR(write(fd, mark, n)) == (ssize_t)n ? 0 : -1;
	int e = errno;
	if (close(fd) < 0 && !rc)
		return -1;
	errno = e;
	return rc;
}

/* The racer whose mark a file holds, or -1. */
static int mark_of(int dfd, const char *name)
{
	char buf[32];
	int fd = SW_NOINTR(openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
	if (fd < 0)
		return -1;
	ssize_t n = SW_NOINTR(read(fd, buf, sizeof buf - 1));
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	int64_t v;
	return sw_parse_i64(buf, 0, 1000, &v) == 0 ? (int)v : -1;
}

static bool same_inode(int dfd, const char *a, const char *b)
{
	struct stat x, y;
	return fstatat(dfd, a, &x, AT_SYMLINK_NOFOLLOW) == 0 && fstatat(dfd, b, &y, AT_SYMLINK_NOFOLLOW) == 0 &&
	       x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

/* ---- one racer's try ---------------------------------------------------- */

static int outcome(int rc, int lose_errno, struct shared *sh)
{
	if (rc == 0)
		return WIN;
	if (errno == lose_errno)
		return LOSE;
	__atomic_compare_exchange_n(&sh->first_errno, &(int){0}, errno, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	return ERR;
}

/* A rename that is not atomic: read, create the new name, remove the
 * old one, with room between for another to do the same. */
static int broken_rename(int dfd, const char *from, const char *to)
{
	if (faccessat(dfd, from, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	sw_sleep_ns(2000000);
	if (put(dfd, to, "", O_TRUNC) < 0)
		return -1;
	if (unlinkat(dfd, from, 0) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

static int try_rename(const struct race *ra, int dfd, int r, int i)
{
	char from[32], to[48];
	snprintf(from, sizeof from, "s%d", r);
	snprintf(to, sizeof to, "d%d.%d", r, i);
	int rc = ra->broken ? broken_rename(dfd, from, to) : sw_rename(dfd, from, dfd, to);
	return outcome(rc, ENOENT, ra->sh);
}

static int try_excl(const struct race *ra, int dfd, int r, int i)
{
	char name[32], mark[16];
	snprintf(name, sizeof name, "x%d", r);
	snprintf(mark, sizeof mark, "%d", i);
	return outcome(put(dfd, name, mark, ra->broken ? O_TRUNC : O_EXCL), EEXIST, ra->sh);
}

static int try_link(const struct race *ra, int dfd, int r, int i)
{
	char from[32], to[32];
	snprintf(from, sizeof from, "t%d.%d", r, i);
	snprintf(to, sizeof to, "l%d", r);
	if (ra->broken)
		(void)unlinkat(dfd, to, 0);
	int rc = SW_NOINTR(linkat(dfd, from, dfd, to, 0));
	/* NFS may report EEXIST for a link it made: sw checks the inode */
	if (rc < 0 && errno == EEXIST && same_inode(dfd, from, to))
		rc = 0;
	return outcome(rc, EEXIST, ra->sh);
}

static int try_mkdir(const struct race *ra, int dfd, int r, int i)
{
	char name[32], mark[48];
	snprintf(name, sizeof name, "m%d", r);
	int rc = SW_NOINTR(mkdirat(dfd, name, 0700));
	if (rc < 0 && errno == EEXIST && ra->broken)
		rc = 0;
	int o = outcome(rc, EEXIST, ra->sh);
	if (o == WIN) {
		/* the winner's mark inside, for the check on disk */
		snprintf(mark, sizeof mark, "m%d/w%d", r, i);
		if (put(dfd, mark, "", O_EXCL) < 0)
			o = outcome(-1, 0, ra->sh);
	}
	return o;
}

static int try_noreplace(const struct race *ra, int dfd, int r, int i)
{
	char from[32], to[32];
	snprintf(from, sizeof from, "n%d.%d", r, i);
	snprintf(to, sizeof to, "t%d", r);
	int rc = ra->broken ? SW_NOINTR(renameat(dfd, from, dfd, to)) : sw_rename_noreplace(dfd, from, dfd, to);
	return outcome(rc, EEXIST, ra->sh);
}

static _Noreturn void racer(const struct race *ra, int i)
{
	int (*const tries[PRIM_N])(const struct race *, int, int, int) = {
		try_rename, try_excl, try_link, try_mkdir, try_noreplace
	};
	int dfd = ra->dfd[i % ra->nmounts];
	for (int r = 0; r < ra->rounds; r++) {
		int rc = pthread_barrier_wait(&ra->sh->bar);
		if (rc && rc != PTHREAD_BARRIER_SERIAL_THREAD)
			_exit(70);
		ra->sh->res[r * ra->racers + i] = (int8_t)tries[ra->prim](ra, dfd, r, i);
	}
	_exit(0);
}

/* ---- before and after ---------------------------------------------------- */

/* The files each round needs, made through the first mount. */
static int prepare(const struct race *ra)
{
	char name[48], mark[16];
	for (int r = 0; r < ra->rounds; r++) {
		if (ra->prim == PRIM_RENAME) {
			snprintf(name, sizeof name, "s%d", r);
			if (put(ra->dfd[0], name, "s", O_EXCL) < 0)
				return -1;
			continue;
		}
		if (ra->prim != PRIM_LINK && ra->prim != PRIM_NOREPLACE)
			return 0;
		for (int i = 0; i < ra->racers; i++) {
			snprintf(name, sizeof name, ra->prim == PRIM_LINK ? "t%d.%d" : "n%d.%d", r, i);
			snprintf(mark, sizeof mark, "%d", i);
			if (put(ra->dfd[0], name, mark, O_EXCL) < 0)
				return -1;
		}
	}
	return 0;
}

/* Waits until the other mount sees name: the racers there must find the
 * files prepared through the first. */
static int seen(int dfd, const char *name)
{
	int64_t end = sw_now_ns() + SEEN_TIMEOUT;
	while (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		if (sw_now_ns() > end) {
			errno = ETIMEDOUT;
			return -1;
		}
		sw_sleep_ns(1000000);
	}
	return 0;
}

/* How many entries of dfd start with prefix, and the racer of the last
 * one ("<prefix><racer>"). */
static int count_prefixed(int dfd, const char *sub, const char *prefix, int *who)
{
	int fd = sub ? SW_NOINTR(openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) : dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rewinddir(d);
	int n = 0;
	size_t pl = strlen(prefix);
	struct dirent *e;
	while ((e = sw_readdir(d)))
		if (!strncmp(e->d_name, prefix, pl)) {
			n++;
			int64_t v;
			*who = sw_parse_i64(e->d_name + pl, 0, 1000, &v) == 0 ? (int)v : -1;
		}
	closedir(d);
	return n;
}

/* What the disk says of round r: how many won there, and who (-1: none
 * or unknown). */
static int on_disk(const struct race *ra, int r, int *who)
{
	char name[48];
	int dfd = ra->dfd[0];
	*who = -1;
	switch (ra->prim) {
	case PRIM_RENAME:
		snprintf(name, sizeof name, "d%d.", r);
		return count_prefixed(dfd, NULL, name, who);
	case PRIM_MKDIR:
		snprintf(name, sizeof name, "m%d", r);
		return count_prefixed(dfd, name, "w", who);
	case PRIM_EXCL: snprintf(name, sizeof name, "x%d", r); break;
	case PRIM_LINK: snprintf(name, sizeof name, "l%d", r); break;
	case PRIM_NOREPLACE: snprintf(name, sizeof name, "t%d", r); break;
	default: return 0;
	}
	*who = mark_of(dfd, name);
	return *who >= 0;
}

static void judge(const struct race *ra, struct sim_race *out)
{
	for (int r = 0; r < ra->rounds; r++) {
		int claims = 0, claimer = -1, errs = 0, who;
		for (int i = 0; i < ra->racers; i++) {
			int v = ra->sh->res[r * ra->racers + i];
			claims += v == WIN;
			errs += v == ERR;
			if (v == WIN)
				claimer = i;
		}
		int disk = on_disk(ra, r, &who);
		out->errors += errs;
		const char *bad = NULL;
		if (claims > 1 || disk > 1) {
			out->several++;
			bad = "several winners";
		} else if (claims == 0) {
			out->none++;
			bad = "no winner";
		} else if (disk != 1 || who != claimer) {
			out->wrong++;
			bad = "the winner's mark is not on disk";
		} else {
			out->one++;
		}
		if (bad && !*out->detail)
			snprintf(out->detail, sizeof out->detail, "round %d: %s (%d said they won, %d on disk%s%s)",
				 r + 1, bad, claims, disk, errs ? ", errors: " : "",
				 errs ? strerror(ra->sh->first_errno) : "");
	}
}

/* ---- the race ------------------------------------------------------------- */

static int open_sub(int dfd, const char *name, bool create)
{
	if (create && mkdirat(dfd, name, 0700) < 0)
		return -1;
	if (!create && seen(dfd, name) < 0)
		return -1;
	return SW_NOINTR(openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

static void kill_racers(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		(void)kill(pids[i], SIGKILL);
}

/* Reaps the n racers: 0 when all finished, else -1 with the first
 * reason in why (the others are killed, as they would wait at the
 * barrier for ever). */
static int wait_racers(const pid_t *pids, int n, char *why, size_t len)
{
	int64_t end = sw_now_ns() + RACE_TIMEOUT;
	int left = n;
	*why = 0;
	while (left) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p < 0 && errno != EINTR) {
			snprintf(why, len, "waiting for the racers: %s", strerror(errno));
			return -1;
		}
		if (p > 0) {
			left--;
			if ((!WIFEXITED(st) || WEXITSTATUS(st)) && !*why) {
				if (WIFEXITED(st))
					snprintf(why, len, "a racer exited with status %d", WEXITSTATUS(st));
				else
					snprintf(why, len, "a racer was killed by signal %d", WTERMSIG(st));
				kill_racers(pids, n);
			}
			continue;
		}
		if (sw_now_ns() > end && !*why) {
			snprintf(why, len, "a racer was still in a call on the filesystem after %lld s",
				 (long long)(RACE_TIMEOUT / SW_NS_PER_SEC));
			kill_racers(pids, n);
		}
		sw_sleep_ns(5000000);
	}
	return *why ? -1 : 0;
}

static int race(struct race *ra, char *why, size_t len)
{
	pthread_barrierattr_t at;
	if (pthread_barrierattr_init(&at) || pthread_barrierattr_setpshared(&at, PTHREAD_PROCESS_SHARED) ||
	    pthread_barrier_init(&ra->sh->bar, &at, (unsigned)ra->racers)) {
		snprintf(why, len, "cannot make a process-shared barrier");
		return -1;
	}
	pid_t pids[64];
	int n = 0;
	for (; n < ra->racers; n++) {
		pids[n] = fork();
		if (pids[n] == 0)
			racer(ra, n);
		if (pids[n] < 0)
			break;
	}
	int rc = 0;
	if (n < ra->racers) {
		snprintf(why, len, "fork: %s", strerror(errno));
		kill_racers(pids, n);
		rc = -1;
	}
	char died[128];
	if (wait_racers(pids, n, died, sizeof died) < 0 && !rc) {
		snprintf(why, len, "%s", died);
		rc = -1;
	}
	/* glibc's destroy waits for every racer to have left the barrier:
	 * one killed inside never does.  The mapping goes away anyway. */
	if (!rc)
		pthread_barrier_destroy(&ra->sh->bar);
	pthread_barrierattr_destroy(&at);
	return rc;
}

int sim_race_run(enum sim_prim prim, const int fd[2], int nmounts, int racers, int rounds, bool broken,
		 struct sim_race *r)
{
	memset(r, 0, sizeof *r);
	r->rounds = rounds;
	struct race ra = { .prim = prim, .nmounts = nmounts, .racers = racers, .rounds = rounds,
			   .broken = broken, .dfd = { -1, -1 } };
	size_t shsz = sizeof *ra.sh + (size_t)rounds * (size_t)racers;
	ra.sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ra.sh == MAP_FAILED)
		return -1;
	int rc = -1;
	char last[48];
	snprintf(last, sizeof last, prim == PRIM_RENAME ? "s%d" : prim == PRIM_LINK ? "t%d.%d" : "n%d.%d",
		 rounds - 1, racers - 1);
	if ((ra.dfd[0] = open_sub(fd[0], sim_prim_names[prim], true)) >= 0 && prepare(&ra) == 0 &&
	    (nmounts < 2 || (ra.dfd[1] = open_sub(fd[1], sim_prim_names[prim], false)) >= 0) &&
	    (nmounts < 2 || prim == PRIM_EXCL || prim == PRIM_MKDIR || seen(ra.dfd[1], last) == 0) &&
	    race(&ra, r->detail, sizeof r->detail) == 0) {
		judge(&ra, r);
		r->first_errno = ra.sh->first_errno;
		rc = 0;
	}
	int e = errno;
	if (ra.dfd[0] >= 0) close(ra.dfd[0]);
	if (ra.dfd[1] >= 0) close(ra.dfd[1]);
	munmap(ra.sh, shsz);
	errno = e;
	return rc;
}
