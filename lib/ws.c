#include "ws.h"
#include "clock.h"
#include "err.h"
#include "num.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* An absolute form of p: a relative -d or SW_DIR is taken from the current
 * directory once, so that commands run elsewhere get the same workspace. */
static void absolute(char out[PATH_MAX], const char *p)
{
	char cwd[PATH_MAX];
	if (p[0] == '/' || !getcwd(cwd, sizeof cwd))
		snprintf(out, PATH_MAX, "%s", p);
	else
		snprintf(out, PATH_MAX, "%s/%s", strcmp(cwd, "/") ? cwd : "", p);
}

/* The XDG base directory spec: a relative XDG_STATE_HOME is invalid and
 * ignored; a relative HOME cannot be used either (it would put what we
 * keep below whatever directory a command happens to run in). */
int sw_state_path(char out[PATH_MAX], const char *leaf, const char *how, struct sw_err *e)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (xdg && xdg[0] == '/')
		snprintf(out, PATH_MAX, "%s/%s", xdg, leaf);
	else if (home && home[0] == '/')
		snprintf(out, PATH_MAX, "%s/.local/state/%s", home, leaf);
	else if (home && *home)
		return sw_err_set(e, EX_USAGE, "HOME '%s' is not an absolute path: set %s", home, how);
	else
		return sw_err_set(e, EX_USAGE, "HOME is not set: set %s", how);
	return 0;
}

/* *named says whether the path was named by the user (-d or SW_DIR). */
static int resolve_path(char out[PATH_MAX], const char *dir, bool *named, struct sw_err *e)
{
	const char *env = getenv("SW_DIR");
	*named = true;
	if (dir && *dir) {
		absolute(out, dir);
		return 0;
	}
	if (env && *env) {
		absolute(out, env);
		return 0;
	}
	*named = false;
	return sw_state_path(out, "sw", "-d DIR or SW_DIR", e);
}

int sw_ws_path(char out[PATH_MAX], const char *dir, struct sw_err *e)
{
	bool named;
	return resolve_path(out, dir, &named, e);
}

static int parse_sync(struct sw_settings *st, struct sw_err *e)
{
	const char *s = getenv("SW_SYNC");
	if (!s || !*s || !strcmp(s, "normal")) st->sync = SW_SYNC_NORMAL;
	else if (!strcmp(s, "off")) st->sync = SW_SYNC_OFF;
	else if (!strcmp(s, "full")) st->sync = SW_SYNC_FULL;
	else return sw_err_set(e, EX_USAGE, "bad SW_SYNC '%s': use off, normal or full", s);
	return 0;
}

/* SW_INOTIFY=off: no inotify instance for waiting, only polls.  The
 * instances are few and per user (fs.inotify.max_user_instances, often
 * 128): a thousand agents of one user on one host would take them all. */
static int parse_inotify(struct sw_settings *st, struct sw_err *e)
{
	const char *s = getenv("SW_INOTIFY");
	if (!s || !*s || !strcmp(s, "on"))
		return 0;
	if (strcmp(s, "off"))
		return sw_err_set(e, EX_USAGE, "bad SW_INOTIFY '%s': use on or off", s);
	st->no_inotify = true;
	return 0;
}

/* A duration setting: 0 (and *ns untouched) when unset. */
static int env_duration(const char *var, int64_t *ns, struct sw_err *e)
{
	const char *s = getenv(var);
	if (s && *s && sw_parse_duration(s, ns) < 0)
		return sw_err_set(e, EX_USAGE, "bad %s '%s': want a duration such as 2s", var, s);
	return 0;
}

/* SW_UMASK: the umask for what sw creates in the workspace, in octal;
 * never one that makes anything world-writable. */
static int parse_umask(struct sw_settings *st, struct sw_err *e)
{
	const char *s = getenv("SW_UMASK");
	if (!s || !*s)
		return 0;
	char *end;
	long v = strtol(s, &end, 8);
	if (*end || v < 0 || v > 0777 || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		return sw_err_set(e, EX_USAGE, "bad SW_UMASK '%s': want an octal umask such as 027", s);
	st->umask_given = true;
	st->umask = (mode_t)v | 002;
	return 0;
}

int sw_settings_read(struct sw_settings *st, struct sw_err *e)
{
	memset(st, 0, sizeof *st);
	st->skew_ns = SW_SKEW_DEFAULT_NS;
	st->backoff_ns = SW_NS_PER_SEC;
	st->item_max = SW_ITEM_MAX_BYTES_DEFAULT;
	int64_t off;
	const char *o = getenv("SW_CLOCK_OFFSET"), *mx = getenv("SW_MAX_ITEM_BYTES");
	uint64_t max;
	int rc;
	if ((rc = parse_sync(st, e)) || (rc = env_duration("SW_CLOCK_SKEW", &st->skew_ns, e)) ||
	    (rc = env_duration("SW_POLL", &st->poll_ns, e)) ||
	    (rc = env_duration("SW_BACKOFF_BASE", &st->backoff_ns, e)) || (rc = parse_umask(st, e)) ||
	    (rc = parse_inotify(st, e)))
		return rc;
	if (o && *o && sw_parse_duration_signed(o, &off) < 0)
		return sw_err_set(e, EX_USAGE, "bad SW_CLOCK_OFFSET '%s': want a duration such as -2s", o);
	if (mx && *mx) {
		if (sw_parse_size(mx, UINT64_C(1) << 40, &max) < 0 || max < 64)
			return sw_err_set(e, EX_USAGE, "bad SW_MAX_ITEM_BYTES '%s': want a size from 64 to 1T", mx);
		st->item_max = (size_t)max;
	}
	return 0;
}

/* mkdir -p of an absolute path, each directory it makes private (0700):
 * the default workspace and its parents, as the XDG spec asks. */
static int mkdir_private(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = c;
		if (!c)
			return 0;
	}
}

/* The umask for the workspace: SW_UMASK, else the group may do what the
 * workspace directory lets it do (a group-writable, setgid workspace is
 * shared by its group), others nothing. */
static mode_t ws_umask(const struct sw_settings *st, const struct stat *root)
{
	if (st->umask_given)
		return st->umask;
	return (mode_t)(0707 & ~0700) | (~root->st_mode & 070);
}

int sw_ws_open(struct sw_ws *ws, const char *dir, bool create, struct sw_err *e)
{
	bool named;
	int rc;
	ws->fd = -1;
	if ((rc = sw_settings_read(&ws->set, e)) || (rc = resolve_path(ws->path, dir, &named, e)))
		return rc;
	ws->sync = ws->set.sync;
	ws->skew_ns = ws->set.skew_ns;
	ws->fd = open(ws->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ws->fd < 0 && errno == ENOENT && create) {
		/* a workspace the user named is created only where its parent
		 * exists: an unmounted network filesystem must not turn into a
		 * fresh local workspace that nobody else sees.  A new workspace
		 * is private until its owner shares it (chmod g+rwxs). */
		rc = named ? mkdir(ws->path, 0700) : mkdir_private(ws->path);
		/* cron runs jobs without the SW_DIR of the user's shell: a job
		 * that makes a fresh workspace of its own is usually that */
		if (rc == 0 && !named && !getenv("TERM") && !isatty(0))
			sw_warn("no SW_DIR (or -d) here, as under cron: made a new workspace %s; "
				"set SW_DIR in the crontab if the others use another", ws->path);
		if (rc < 0 && errno == ENOENT)
			return sw_err_set(e, EX_UNAVAILABLE, "workspace %s: parent directory does not exist", ws->path);
		if (rc < 0 && errno != EEXIST)
			return sw_err_set(e, sw_ex_errno(errno) == EX_NOPERM ? EX_NOPERM : EX_CANTCREAT,
					  "cannot create workspace %s: %s", ws->path, strerror(errno));
		ws->fd = open(ws->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (ws->fd < 0)   /* gone or unmounted: 69; no permission: 77; I/O: 74 */
		return sw_err_set(e, sw_ex_errno(errno), "workspace %s: %s", ws->path, strerror(errno));
	struct stat st;
	if (fstat(ws->fd, &st) < 0)
		return sw_err_set(e, sw_ex_errno(errno), "workspace %s: %s", ws->path, strerror(errno));
	/* new files and directories take their mode from the workspace, not
	 * from this process's umask (kept for the commands sw runs) */
	ws->user_umask = umask(ws_umask(&ws->set, &st));
	ws->dmode = 0777;
	ws->fmode = 0666;
	return 0;
}

mode_t sw_ws_user_umask(const struct sw_ws *ws)
{
	return ws->user_umask;
}

void sw_ws_close(struct sw_ws *ws)
{
	if (ws->fd >= 0)
		close(ws->fd);
	ws->fd = -1;
}

int sw_ws_dir(const struct sw_ws *ws, const char *rel, bool create)
{
	int fd = sw_open_beneath(ws->fd, rel, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0 && errno == ENOENT && create) {
		if (sw_mkdirs(ws->fd, rel, ws->dmode) < 0)
			return -1;
		fd = sw_open_beneath(ws->fd, rel, O_RDONLY | O_DIRECTORY, 0);
	}
	return fd;
}

bool sw_is_netfs(int fd)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case 0x6969:      /* NFS */
	case 0xff534d42:  /* CIFS */
	case 0xfe534d42:  /* SMB2 */
	case 0x517b:      /* SMB */
	case 0x65735546:  /* FUSE */
	case 0x00c36400:  /* CephFS */
	case 0x0bd00bd0:  /* Lustre */
	case 0x47504653:  /* GPFS */
	case 0x564c:      /* NCP */
	case 0x6b414653:  /* AFS */
	case 0x5346414f:  /* OpenAFS */
	case 0x01021997:  /* 9P */
		return true;
	default:
		return false;
	}
}

bool sw_nlink_counts_subdirs(int fd)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case 0xef53:      /* ext2, ext3, ext4 (1 past 65000 of them: not 2) */
	case 0x58465342:  /* XFS */
	case 0x01021994:  /* tmpfs */
		return true;
	default:
		return false;
	}
}
