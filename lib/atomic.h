/* atomic.h — the only ways sw changes shared files.
 * A file is never edited in place: it is written whole under a temporary
 * name (".tmp.*", which readers skip) in the same directory and renamed or
 * linked into place.  On NFS a rename or link can report failure after it
 * succeeded (a retransmitted request), so results are checked by inode. */
#ifndef SW_ATOMIC_H
#define SW_ATOMIC_H
#include "fs.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum sw_sync { SW_SYNC_OFF, SW_SYNC_NORMAL, SW_SYNC_FULL };

#define SW_TMP_PREFIX ".tmp."
#define SW_TMPNAME_LEN 64

/* Creates a new temporary file in dirfd holding buf; fsyncs it when sync.
 * Its name is returned in tmp.  Returns 0, or -1 with errno (nothing left). */
int sw_tmp_write(int dirfd, char tmp[SW_TMPNAME_LEN], const void *buf, size_t len, bool sync);
/* Replaces dirfd/name with buf (temp + rename).  SW_SYNC_FULL also fsyncs
 * the directory; durable says whether NORMAL fsyncs this kind of change. */
int sw_replace(int dirfd, const char *name, const void *buf, size_t len, enum sw_sync s, bool durable);
/* Creates dirfd/name holding buf only if no such name exists (temp + link):
 * -1 with errno EEXIST when it does. */
int sw_create_excl(int dirfd, const char *name, const void *buf, size_t len, enum sw_sync s, bool durable);
/* rename(2) whose success is checked by inode when it reports an error, so a
 * retransmitted NFS rename that in fact succeeded counts as success. */
int sw_rename(int ofd, const char *oldname, int nfd, const char *newname);
/* rename(2) to a name that only this caller can produce (it carries a
 * nonce): no look before, since after a reported error the new name's
 * existence alone says whether the rename happened. */
int sw_rename_fresh(int ofd, const char *oldname, int nfd, const char *newname);
/* sw_rename, failing with EEXIST when newname exists (renameat2
 * RENAME_NOREPLACE, or a look first where the filesystem lacks it), and
 * with ENOENT when oldname is gone (moved by another process meanwhile,
 * maybe to newname). */
int sw_rename_noreplace(int ofd, const char *oldname, int nfd, const char *newname);
/* write(2) of all len bytes, going on after EINTR and short writes. */
int sw_write_all(int fd, const void *buf, size_t len);
int sw_fsync_dir(int dirfd);
/* Whether a change of this kind is fsynced under s. */
bool sw_sync_wanted(enum sw_sync s, bool durable);
/* Whether a directory entry name is a temporary or otherwise hidden file. */
static inline bool sw_hidden(const char *name) { return name[0] == '.'; }
#endif
