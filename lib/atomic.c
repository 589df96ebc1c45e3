#include "atomic.h"
#include "id.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool sw_sync_wanted(enum sw_sync s, bool durable)
{
	return s == SW_SYNC_FULL || (s == SW_SYNC_NORMAL && durable);
}

int sw_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sw_tmp_write(int dirfd, char tmp[SW_TMPNAME_LEN], const void *buf, size_t len, bool sync)
{
	char rnd[17];
	sw_rand_hex(rnd, 8);
	snprintf(tmp, SW_TMPNAME_LEN, SW_TMP_PREFIX "%ld.%s", (long)getpid(), rnd);
	int fd = SW_NOINTR(openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
	if (fd < 0)
		return -1;
	if (sw_write_all(fd, buf, len) < 0 || (sync && SW_NOINTR(fdatasync(fd)) < 0)) {
		int e = errno;
		close(fd);
		SW_NOINTR(unlinkat(dirfd, tmp, 0));
		errno = e;
		return -1;
	}
	if (close(fd) < 0) {
		int e = errno;
		SW_NOINTR(unlinkat(dirfd, tmp, 0));
		errno = e;
		return -1;
	}
	return 0;
}

int sw_fsync_dir(int dirfd)
{
	return SW_NOINTR(fsync(dirfd)) < 0 && errno != EINVAL ? -1 : 0;
}

static int same_inode(int dfd1, const char *n1, int dfd2, const char *n2)
{
	struct stat a, b;
	if (SW_NOINTR(fstatat(dfd1, n1, &a, AT_SYMLINK_NOFOLLOW)) < 0 ||
	    SW_NOINTR(fstatat(dfd2, n2, &b, AT_SYMLINK_NOFOLLOW)) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int sw_rename(int ofd, const char *oldname, int nfd, const char *newname)
{
	struct stat before;
	if (SW_NOINTR(fstatat(ofd, oldname, &before, AT_SYMLINK_NOFOLLOW)) < 0)
		return -1;
	if (SW_NOINTR(renameat(ofd, oldname, nfd, newname)) == 0)
		return 0;
	int e = errno;
	/* a retransmitted rename answers ENOENT although the first one moved
	 * the file: it is ours if the new name now has the inode we saw */
	struct stat after;
	if (SW_NOINTR(fstatat(nfd, newname, &after, AT_SYMLINK_NOFOLLOW)) == 0 &&
	    after.st_ino == before.st_ino && after.st_dev == before.st_dev &&
	    SW_NOINTR(faccessat(ofd, oldname, F_OK, AT_SYMLINK_NOFOLLOW)) < 0)
		return 0;
	errno = e;
	return -1;
}

int sw_rename_fresh(int ofd, const char *oldname, int nfd, const char *newname)
{
	if (SW_NOINTR(renameat(ofd, oldname, nfd, newname)) == 0)
		return 0;
	int e = errno;
	/* nobody else makes newname: when it exists, this rename made it
	 * (a retransmitted one answers ENOENT) */
	if (e == ENOENT && SW_NOINTR(faccessat(nfd, newname, F_OK, AT_SYMLINK_NOFOLLOW)) == 0 &&
	    SW_NOINTR(faccessat(ofd, oldname, F_OK, AT_SYMLINK_NOFOLLOW)) < 0)
		return 0;
	errno = e;
	return -1;
}

int sw_rename_noreplace(int ofd, const char *oldname, int nfd, const char *newname)
{
	struct stat before;
	if (SW_NOINTR(fstatat(ofd, oldname, &before, AT_SYMLINK_NOFOLLOW)) < 0)
		return -1;
	/* a filesystem without it says so every time: asked once a process
	 * (a network one's round trip costs as much as the rename) */
	static dev_t lacking;
	static bool lacking_known;
	int rc = -1;
	errno = EINVAL;
	if (!lacking_known || lacking != before.st_dev)
		rc = SW_NOINTR(renameat2(ofd, oldname, nfd, newname, RENAME_NOREPLACE));
	if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
		lacking = before.st_dev;
		lacking_known = true;
		/* NFS and some FUSE filesystems have no RENAME_NOREPLACE: look
		 * first (a narrow race, where the protocol already excludes one).
		 * newname there and oldname gone is not a file in the way: it is
		 * what another process moved there while this one stalled since
		 * its look at oldname (a recovery placing the item this process
		 * was placing), and the answer is the one a rename that lost
		 * that race gets, ENOENT; only with oldname still there is
		 * newname in the way (EEXIST) */
		if (SW_NOINTR(faccessat(nfd, newname, F_OK, AT_SYMLINK_NOFOLLOW)) == 0) {
			if (SW_NOINTR(faccessat(ofd, oldname, F_OK, AT_SYMLINK_NOFOLLOW)) == 0)
				errno = EEXIST;
			return -1;
		}
		rc = SW_NOINTR(renameat(ofd, oldname, nfd, newname));
	}
	if (rc == 0)
		return 0;
	int e = errno;
	/* a retransmitted rename finds its own work done: EEXIST or ENOENT,
	 * the old name gone and the new one holding the inode we moved */
	struct stat after;
	if ((e == EEXIST || e == ENOENT) &&
	    SW_NOINTR(fstatat(nfd, newname, &after, AT_SYMLINK_NOFOLLOW)) == 0 &&
	    after.st_ino == before.st_ino && after.st_dev == before.st_dev &&
	    SW_NOINTR(faccessat(ofd, oldname, F_OK, AT_SYMLINK_NOFOLLOW)) < 0)
		return 0;
	errno = e;
	return -1;
}

int sw_replace(int dirfd, const char *name, const void *buf, size_t len, enum sw_sync s, bool durable)
{
	char tmp[SW_TMPNAME_LEN];
	bool sync = sw_sync_wanted(s, durable);
	if (sw_tmp_write(dirfd, tmp, buf, len, sync) < 0)
		return -1;
	if (sw_rename(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		SW_NOINTR(unlinkat(dirfd, tmp, 0));
		errno = e;
		return -1;
	}
	if (s == SW_SYNC_FULL && sw_fsync_dir(dirfd) < 0)
		return -1;
	return 0;
}

int sw_create_excl(int dirfd, const char *name, const void *buf, size_t len, enum sw_sync s, bool durable)
{
	char tmp[SW_TMPNAME_LEN];
	bool sync = sw_sync_wanted(s, durable);
	if (sw_tmp_write(dirfd, tmp, buf, len, sync) < 0)
		return -1;
	int rc = SW_NOINTR(linkat(dirfd, tmp, dirfd, name, 0));
	int e = errno;
	/* NFS: link may report EEXIST after creating the link itself */
	if (rc < 0 && e == EEXIST && same_inode(dirfd, tmp, dirfd, name))
		rc = 0;
	SW_NOINTR(unlinkat(dirfd, tmp, 0));
	if (rc < 0) {
		errno = e;
		return -1;
	}
	if (sync && sw_fsync_dir(dirfd) < 0)
		return -1;
	return 0;
}
