/* fs.h — opening and reading below the workspace without trusting it.
 *
 * Anything in the workspace may have been written by another user, another
 * host or a damaged disk.  So below the workspace directory:
 *  - no symlink is ever followed, on the last component or any other
 *    (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the kernel has it,
 *    else one component at a time with O_NOFOLLOW);
 *  - files are opened O_NONBLOCK (a planted FIFO cannot hang a reader)
 *    and used only when fstat says they are regular files;
 *  - every read stops at a limit the caller gives.
 * Functions return 0 or an fd, or -1 with errno.  A symlink where a file or
 * directory was expected gives ELOOP (or ENOTDIR), a FIFO, device, socket
 * or directory where a file was expected gives EINVAL. */
#ifndef SW_FS_H
#define SW_FS_H
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Opens directory dfd/name (one component), creating it first when create.
 * A symlink there is not followed: ELOOP or ENOTDIR. */
int sw_open_dir(int dfd, const char *name, bool create);
/* Opens dfd/rel (components separated by '/', no "..", no leading '/')
 * with flags, following no symlink on the way. */
int sw_open_beneath(int dfd, const char *rel, int flags, mode_t mode);
/* mkdir -p of rel below dfd, following no symlink. */
int sw_mkdirs(int dfd, const char *rel, mode_t mode);
/* Opens the regular file dfd/rel for reading (O_NONBLOCK, no symlink on
 * the way); *st gets its fstat.  EINVAL when it is not a regular file. */
int sw_open_file(int dfd, const char *rel, struct stat *st);
/* Reads an open file whole into a NUL-terminated malloc'd buffer; EFBIG
 * when it holds more than max bytes (it stops reading there). */
int sw_read_fd(int fd, char **buf, size_t *len, size_t max);
/* The same for a file whose size fstat gave (0: unknown): it stops once
 * it has that many bytes, without the read that would find the end.  A
 * file that grew since holds more: a caller that finds the bytes bad
 * reads again with sw_read_fd before it calls the file damaged. */
int sw_read_fd_sized(int fd, size_t size, char **buf, size_t *len, size_t max);
/* sw_open_file + sw_read_fd. */
int sw_read_file(int dfd, const char *rel, char **buf, size_t *len, size_t max);
/* Writes buf[*off..len) to a non-blocking fd (a child's stdin), moving
 * *off on: true when it would block with some left, to be called again
 * when fd is writable; false when all is written or the reader is gone
 * (EPIPE) or the write failed: then the caller closes fd. */
bool sw_write_more(int fd, const char *buf, size_t len, size_t *off);
/* Retries a system call that failed with EINTR (a signal, or an NFS
 * mount's intr option): interruptions are not errors. */
#define SW_NOINTR(call) ({ long sw_r_; do sw_r_ = (long)(call); while (sw_r_ == -1 && errno == EINTR); sw_r_; })
/* readdir(3) that goes on after EINTR; NULL at the end (errno 0) or on an
 * error (errno set). */
struct dirent *sw_readdir(DIR *d);
/* Whether errno from the functions above means the entry is not what it
 * should be (a symlink, a FIFO, a directory, too large) rather than absent
 * or unreadable: such an entry is quarantined, not retried. */
bool sw_errno_damaged(int err);
#endif
