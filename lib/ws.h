/* ws.h — the workspace: the one directory that holds all shared state.
 * Found from -d/--dir, else $SW_DIR, else
 * ${XDG_STATE_HOME:-$HOME/.local/state}/sw.  Settings read from the
 * environment once, here: SW_SYNC (off|normal|full), SW_CLOCK_SKEW. */
#ifndef SW_WS_H
#define SW_WS_H
#include "atomic.h"
#include "err.h"
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/* Every setting sw takes from the environment, read and checked once:
 * a typo is a usage error, not a silent default. */
struct sw_settings {
	enum sw_sync sync;      /* SW_SYNC */
	int64_t skew_ns;        /* SW_CLOCK_SKEW: margin on every expiry */
	int64_t poll_ns;        /* SW_POLL; 0: the default for the filesystem */
	bool no_inotify;        /* SW_INOTIFY=off: waiters only poll */
	int64_t backoff_ns;     /* SW_BACKOFF_BASE: first retry delay */
	size_t item_max;        /* SW_MAX_ITEM_BYTES */
	bool umask_given;       /* SW_UMASK */
	mode_t umask;
};

/* Reads the settings (SW_CLOCK_OFFSET is checked too): 0, or 64. */
int sw_settings_read(struct sw_settings *s, struct sw_err *e);
/* The workspace's path as sw_ws_open finds it (-d DIR, SW_DIR,
 * XDG_STATE_HOME, HOME), without looking at it: 0, or 64 with e. */
int sw_ws_path(char out[PATH_MAX], const char *dir, struct sw_err *e);
/* LEAF in the XDG state directory ($XDG_STATE_HOME/LEAF, else
 * $HOME/.local/state/LEAF), where sw keeps what no option or variable
 * names (the workspace "sw", the metrics database "sw-metrics"): 0, or
 * 64 with e saying why not, to be set with HOW ("-d DIR or SW_DIR"). */
int sw_state_path(char out[PATH_MAX], const char *leaf, const char *how, struct sw_err *e);

struct sw_ws {
	int fd;                 /* the workspace directory */
	char path[PATH_MAX];
	struct sw_settings set;
	enum sw_sync sync;      /* = set.sync */
	int64_t skew_ns;        /* = set.skew_ns: clock skew margin for expiry decisions */
	mode_t dmode, fmode;    /* modes for new directories and files */
	mode_t user_umask;      /* the umask sw was started with */
};

#define SW_SKEW_DEFAULT_NS (2 * INT64_C(1000000000))
#define SW_ITEM_MAX_BYTES_DEFAULT (1024 * 1024)

/* Resolves and opens the workspace, creating it (0700) when create: 0, or
 * 69 (unavailable), 77 (permission), 73 (cannot create), 74 (I/O), 64 (a
 * bad setting) with e.  Sets the process umask so that what sw creates
 * there takes the workspace's group permissions and no "other" bits
 * (SW_UMASK overrides); a command sw runs gets sw_ws_user_umask back. */
int sw_ws_open(struct sw_ws *ws, const char *dir, bool create, struct sw_err *e);
mode_t sw_ws_user_umask(const struct sw_ws *ws);
void sw_ws_close(struct sw_ws *ws);
/* Opens dir rel below the workspace, following no symlink, creating the
 * missing parts when create.  -1 with errno. */
int sw_ws_dir(const struct sw_ws *ws, const char *rel, bool create);
/* Whether fd lives on a network filesystem (NFS, CIFS, FUSE, Ceph, Lustre…). */
bool sw_is_netfs(int fd);
/* Whether fd's filesystem counts a directory's subdirectories in its link
 * count, so that 2 means it has none (ext4, XFS, tmpfs). */
bool sw_nlink_counts_subdirs(int fd);
#endif
