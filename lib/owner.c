#include "owner.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The first 12 hex digits of the boot id; "" when it cannot be read. */
static void boot_id(char out[13])
{
	char buf[64];
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	size_t k = 0;
	for (ssize_t i = 0; i < n && k < 12; i++)
		if ((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f'))
			out[k++] = buf[i];
	out[k < 12 ? 0 : 12] = 0;
}

/* Field 22 of /proc/PID/stat, the start time; 0 when the process is gone,
 * a zombie included: a SIGKILLed agent whose parent does not wait for it
 * (a container's init that reaps nothing, a parent killed with it) is
 * dead all the same.  The command name (field 2) may hold spaces and
 * parentheses: fields are counted from the last ')'. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	/* after ')': state is field 3, start time field 22 */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

void sw_owner_of(pid_t pid, char out[SW_OWNER_LEN])
{
	char boot[13];
	unsigned long long st = start_time(pid);
	boot_id(boot);
	if (!st || !*boot)
		out[0] = 0;
	else
		snprintf(out, SW_OWNER_LEN, "%s-%ld-%llu", boot, (long)pid, st);
}

void sw_owner_self(char out[SW_OWNER_LEN])
{
	sw_owner_of(getpid(), out);
}

static bool digits(const char *s, size_t n)
{
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

enum sw_liveness sw_owner_alive(const char *s, size_t len)
{
	char boot[13];
	const char *d1 = memchr(s, '-', len);
	if (!d1 || d1 - s != 12)
		return SW_OWNER_UNKNOWN;
	const char *d2 = memchr(d1 + 1, '-', len - (size_t)(d1 + 1 - s));
	if (!d2)
		return SW_OWNER_UNKNOWN;
	size_t npid = (size_t)(d2 - d1 - 1), nst = len - (size_t)(d2 + 1 - s);
	if (!digits(d1 + 1, npid) || !digits(d2 + 1, nst))
		return SW_OWNER_UNKNOWN;
	boot_id(boot);
	if (!*boot || memcmp(boot, s, 12))
		return SW_OWNER_UNKNOWN;
	long pid = strtol(d1 + 1, NULL, 10);
	if (pid <= 0 || pid > 4194304)
		return SW_OWNER_UNKNOWN;
	unsigned long long st = start_time((pid_t)pid);
	return st && st == strtoull(d2 + 1, NULL, 10) ? SW_OWNER_ALIVE : SW_OWNER_DEAD;
}
