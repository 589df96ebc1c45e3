#include "ws.h"
#include "clock.h"
#include "err.h"
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

/* Returns whether the path was named by the user (-d or SW_DIR).  The XDG
 * base directory spec: a relative XDG_STATE_HOME is invalid and ignored;
 * a relative HOME cannot be used either (it would put the workspace below
 * whatever directory a command happens to run in). */
static bool resolve_path(char out[PATH_MAX], const char *dir)
{
	const char *env = getenv("SW_DIR");
	if (dir && *dir) {
		absolute(out, dir);
		return true;
	}
	if (env && *env) {
		absolute(out, env);
		return true;
	}
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (xdg && xdg[0] == '/')
		snprintf(out, PATH_MAX, "%s/sw", xdg);
	else if (home && home[0] == '/')
		snprintf(out, PATH_MAX, "%s/.local/state/sw", home);
	else if (home && *home)
		sw_die(EX_USAGE, "HOME '%s' is not an absolute path: set -d DIR or SW_DIR", home);
	else
		sw_die(EX_USAGE, "no workspace: set -d DIR, SW_DIR or HOME");
	return false;
}

static enum sw_sync parse_sync(void)
{
	const char *s = getenv("SW_SYNC");
	if (!s || !*s || !strcmp(s, "normal")) return SW_SYNC_NORMAL;
	if (!strcmp(s, "off")) return SW_SYNC_OFF;
	if (!strcmp(s, "full")) return SW_SYNC_FULL;
	sw_die(EX_USAGE, "bad SW_SYNC '%s': use off, normal or full", s);
}

static int64_t parse_skew(void)
{
	const char *s = getenv("SW_CLOCK_SKEW");
	int64_t ns;
	if (!s || !*s) return SW_SKEW_DEFAULT_NS;
	if (sw_parse_duration(s, &ns) < 0)
		sw_die(EX_USAGE, "bad SW_CLOCK_SKEW '%s': want a duration such as 2s", s);
	return ns;
}

/* Duration settings read elsewhere, checked once here so that a typo is
 * a usage error and not a silent default. */
static void check_durations(void)
{
	static const char *const vars[] = { "SW_POLL", "SW_BACKOFF_BASE", NULL };
	int64_t ns;
	for (int i = 0; vars[i]; i++) {
		const char *s = getenv(vars[i]);
		if (s && *s && sw_parse_duration(s, &ns) < 0)
			sw_die(EX_USAGE, "bad %s '%s': want a duration such as 2s", vars[i], s);
	}
	const char *off = getenv("SW_CLOCK_OFFSET");
	if (off && *off && sw_parse_duration_signed(off, &ns) < 0)
		sw_die(EX_USAGE, "bad SW_CLOCK_OFFSET '%s': want a duration such as -2s", off);
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

/* SW_UMASK: the umask for what sw creates in the workspace, in octal.
 * Unset: the group may do what the workspace directory lets it do (a
 * group-writable, setgid workspace is shared by its group), others
 * nothing.  Never world-writable. */
static mode_t ws_umask(const struct stat *root)
{
	const char *s = getenv("SW_UMASK");
	if (s && *s) {
		char *end;
		long v = strtol(s, &end, 8);
		if (*end || v < 0 || v > 0777 || s[0] == '-' || s[0] == '+' || s[0] == ' ')
			sw_die(EX_USAGE, "bad SW_UMASK '%s': want an octal umask such as 027", s);
		return (mode_t)v | 002;
	}
	return (mode_t)(0707 & ~0700) | (~root->st_mode & 070);
}

void sw_ws_open(struct sw_ws *ws, const char *dir, bool create)
{
	check_durations();
	bool named = resolve_path(ws->path, dir);
	ws->sync = parse_sync();
	ws->skew_ns = parse_skew();
	ws->fd = open(ws->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ws->fd < 0 && errno == ENOENT && create) {
		/* a workspace the user named is created only where its parent
		 * exists: an unmounted network filesystem must not turn into a
		 * fresh local workspace that nobody else sees.  A new workspace
		 * is private until its owner shares it (chmod g+rwxs). */
		int rc = named ? mkdir(ws->path, 0700) : mkdir_private(ws->path);
		if (rc < 0 && errno == ENOENT)
			sw_die(EX_UNAVAILABLE, "workspace %s: parent directory does not exist", ws->path);
		if (rc < 0 && errno != EEXIST)
			sw_die(sw_ex_errno(errno) == EX_NOPERM ? EX_NOPERM : EX_CANTCREAT,
			       "cannot create workspace %s: %s", ws->path, strerror(errno));
		ws->fd = open(ws->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (ws->fd < 0)   /* gone or unmounted: 69; no permission: 77; I/O: 74 */
		sw_die(sw_ex_errno(errno), "workspace %s: %s", ws->path, strerror(errno));
	struct stat st;
	if (fstat(ws->fd, &st) < 0)
		sw_die(EX_UNAVAILABLE, "workspace %s: %s", ws->path, strerror(errno));
	/* new files and directories take their mode from the workspace, not
	 * from this process's umask (kept for the commands sw runs) */
	ws->user_umask = umask(ws_umask(&st));
	ws->dmode = 0777;
	ws->fmode = 0666;
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
