/* ws.h — the workspace: the one directory that holds all shared state.
 * Found from -d/--dir, else $SW_DIR, else
 * ${XDG_STATE_HOME:-$HOME/.local/state}/sw.  Settings read from the
 * environment once, here: SW_SYNC (off|normal|full), SW_CLOCK_SKEW. */
#ifndef SW_WS_H
#define SW_WS_H
#include "atomic.h"
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct sw_ws {
	int fd;                 /* the workspace directory */
	char path[PATH_MAX];
	enum sw_sync sync;
	int64_t skew_ns;        /* clock skew margin for expiry decisions */
	mode_t dmode, fmode;    /* modes for new directories and files */
	mode_t user_umask;      /* the umask sw was started with */
};

#define SW_SKEW_DEFAULT_NS (2 * INT64_C(1000000000))

/* Resolves and opens the workspace, creating it (0700) when create.  Dies
 * with a one-line error (69 unavailable, 77 permission, 64 bad setting).
 * Sets the process umask so that what sw creates there takes the
 * workspace's group permissions and no "other" bits (SW_UMASK overrides);
 * a command sw runs gets sw_ws_user_umask back. */
void sw_ws_open(struct sw_ws *ws, const char *dir, bool create);
mode_t sw_ws_user_umask(const struct sw_ws *ws);
void sw_ws_close(struct sw_ws *ws);
/* Opens dir rel below the workspace, following no symlink, creating the
 * missing parts when create.  -1 with errno. */
int sw_ws_dir(const struct sw_ws *ws, const char *rel, bool create);
/* Whether fd lives on a network filesystem (NFS, CIFS, FUSE, Ceph, Lustre…). */
bool sw_is_netfs(int fd);
#endif
