/* agent.c — the agent registry: one JSON record per agent whose mtime is
 * its last heartbeat (see agent.h and sw-workspace(5)). */
#include "agent.h"
#include "atomic.h"
#include "clock.h"
#include "id.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define RECORD_MAX (256 * 1024)
#define NAME_LEN (SW_NAME_MAX + 16)

/* ---- hardware ---------------------------------------------------------- */

static void hw_path(char *out, size_t n, const char *path)
{
	const char *root = getenv("SW_HW_ROOT");
	snprintf(out, n, "%s%s", root && *root ? root : "", path);
}

static FILE *hw_open(const char *path)
{
	char p[PATH_MAX];
	hw_path(p, sizeof p, path);
	return fopen(p, "re");
}

static long long mem_total(void)
{
	FILE *f = hw_open("/proc/meminfo");
	if (!f)
		return -1;
	char line[256];
	long long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* The value of KEY= in os-release, unquoted. */
static json_t *os_release(void)
{
	FILE *f = hw_open("/etc/os-release");
	if (!f)
		return json_null();
	char line[512];
	json_t *v = json_null();
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "PRETTY_NAME=", 12))
			continue;
		char *s = line + 12, *e = s + strcspn(s, "\n");
		if (*s == '"' || *s == '\'') {
			s++;
			if (e > s && (e[-1] == '"' || e[-1] == '\''))
				e--;
		}
		json_decref(v);
		v = json_stringn(s, (size_t)(e - s));
		if (!v)
			v = json_null();
		break;
	}
	fclose(f);
	return v;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
	return s;
}

/* NVIDIA's driver lists each GPU under /proc/driver/nvidia/gpus/<bus id>/
 * with a "Model:" line; without the driver's proc files, the device nodes
 * /dev/nvidiaN still say how many there are. */
static json_t *gpus_proc(void)
{
	char p[PATH_MAX];
	hw_path(p, sizeof p, "/proc/driver/nvidia/gpus");
	DIR *d = opendir(p);
	if (!d)
		return NULL;
	json_t *a = json_array();
	struct dirent *de;
	while ((de = readdir(d))) {
		if (sw_hidden(de->d_name))
			continue;
		char f[PATH_MAX + 300], line[512];
		snprintf(f, sizeof f, "/proc/driver/nvidia/gpus/%s/information", de->d_name);
		FILE *fp = hw_open(f);
		json_t *g = json_pack("{s:s}", "bus_id", de->d_name);
		while (fp && fgets(line, sizeof line, fp)) {
			if (!strncmp(line, "Model:", 6)) {
				json_t *m = json_string(trim(line + 6));
				if (m)
					json_object_set_new(g, "model", m);
			}
		}
		if (fp)
			fclose(fp);
		json_array_append_new(a, g);
	}
	closedir(d);
	return a;
}

static json_t *gpus_dev(void)
{
	char p[PATH_MAX];
	hw_path(p, sizeof p, "/dev");
	json_t *a = json_array();
	DIR *d = opendir(p);
	if (!d)
		return a;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (strncmp(n, "nvidia", 6) || !n[6] || strspn(n + 6, "0123456789") != strlen(n + 6))
			continue;
		char dev[300];
		snprintf(dev, sizeof dev, "/dev/%s", n);
		json_array_append_new(a, json_pack("{s:s}", "device", dev));
	}
	closedir(d);
	return a;
}

json_t *sw_agent_hw(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof u);
	char os[sizeof u.sysname + sizeof u.release + sizeof u.machine + 3];
	snprintf(os, sizeof os, "%s %s %s", u.sysname, u.release, u.machine);
	json_t *gpus = gpus_proc();
	if (!gpus || json_array_size(gpus) == 0) {
		json_decref(gpus);
		gpus = gpus_dev();
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long long mem = mem_total();
	json_t *host = json_string(u.nodename);
	json_t *osj = json_string(os);
	return json_pack("{s:o,s:o,s:o,s:I,s:o,s:o}",
		"hostname", host ? host : json_string("unknown"),
		"os", osj ? osj : json_null(),
		"os_release", os_release(),
		"cpus", (json_int_t)(cpus > 0 ? cpus : 1),
		"memory_bytes", mem >= 0 ? json_integer(mem) : json_null(),
		"gpus", gpus);
}

/* ---- records ----------------------------------------------------------- */

static int agents_dir(const struct sw_ws *ws, bool create)
{
	return sw_ws_dir(ws, SW_AGENT_DIR, create);
}

static void rec_name(char out[NAME_LEN], const char *id)
{
	snprintf(out, NAME_LEN, "%s.json", id);
}

static int set_mtime(int dfd, const char *name, int64_t ns)
{
	struct timespec ts[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = ns / SW_NS_PER_SEC, .tv_nsec = ns % SW_NS_PER_SEC },
	};
	return utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

int sw_agent_put(const struct sw_ws *ws, const char *id, const json_t *rec)
{
	if (sw_name_problem(id)) {
		errno = EINVAL;
		return -1;
	}
	int dfd = agents_dir(ws, true);
	if (dfd < 0)
		return -1;
	size_t len;
	char *buf = sw_json_line(rec, &len), name[NAME_LEN];
	rec_name(name, id);
	int rc = buf ? sw_replace(dfd, name, buf, len, ws->sync, false) : -1;
	if (rc == 0)
		set_mtime(dfd, name, sw_now_ns());   /* honours SW_CLOCK_OFFSET */
	int e = errno;
	free(buf);
	close(dfd);
	errno = e;
	return rc;
}

int sw_agent_heartbeat(const struct sw_ws *ws, const char *id)
{
	int dfd = agents_dir(ws, false);
	if (dfd < 0)
		return -1;
	char name[NAME_LEN];
	rec_name(name, id);
	int rc = set_mtime(dfd, name, sw_now_ns());
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

int sw_agent_remove(const struct sw_ws *ws, const char *id)
{
	int dfd = agents_dir(ws, false);
	if (dfd < 0)
		return -1;
	char name[NAME_LEN];
	rec_name(name, id);
	int rc = unlinkat(dfd, name, 0);
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * SW_NS_PER_SEC + st->st_mtim.tv_nsec;
}

static int64_t rec_ttl_ns(const json_t *rec)
{
	json_t *t = json_object_get(rec, "ttl");
	if (json_is_number(t) && json_number_value(t) > 0)
		return (int64_t)(json_number_value(t) * 1e9);
	return SW_AGENT_TTL_DEFAULT_NS;
}

static bool alive_at(const struct sw_ws *ws, int64_t beat_ns, int64_t ttl_ns, int64_t now)
{
	return beat_ns + ttl_ns + ws->skew_ns >= now;
}

/* Reads dfd/name and adds the liveness fields; NULL with errno. */
static json_t *rec_read(const struct sw_ws *ws, int dfd, const char *name)
{
	struct stat st;
	json_t *rec = sw_json_read(dfd, name, RECORD_MAX);
	if (!rec)
		return NULL;
	if (!json_is_object(rec) || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int e = json_is_object(rec) ? errno : EBADMSG;
		json_decref(rec);
		errno = e;
		return NULL;
	}
	int64_t beat = mtime_ns(&st), ttl = rec_ttl_ns(rec);
	json_object_set_new(rec, "alive", json_boolean(alive_at(ws, beat, ttl, sw_now_ns())));
	sw_json_set_time(rec, "last_heartbeat_at", beat);
	sw_json_set_time(rec, "expires_at", beat + ttl);
	return rec;
}

json_t *sw_agent_get(const struct sw_ws *ws, const char *id)
{
	int dfd = agents_dir(ws, false);
	if (dfd < 0)
		return NULL;
	char name[NAME_LEN];
	rec_name(name, id);
	json_t *rec = rec_read(ws, dfd, name);
	int e = errno;
	close(dfd);
	errno = e;
	return rec;
}

/* Calls fn(dfd, name, id) for each record file name "<id>.json". */
static int each_record(const struct sw_ws *ws, int (*fn)(int dfd, const char *name, void *arg), void *arg)
{
	int dfd = agents_dir(ws, false);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	int d2 = dup(dfd);
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (!d) {
		if (d2 >= 0)
			close(d2);
		close(dfd);
		return -1;
	}
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (sw_hidden(de->d_name) || n <= 5 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		rc = fn(dfd, de->d_name, arg);
	}
	closedir(d);
	close(dfd);
	return rc;
}

struct each_arg {
	const struct sw_ws *ws;
	int (*fn)(json_t *rec, void *arg);
	void *arg;
	struct sw_agent_counts *c;
	long long *n;
};

static int each_one(int dfd, const char *name, void *arg)
{
	struct each_arg *a = arg;
	json_t *rec = rec_read(a->ws, dfd, name);
	if (!rec)
		return 0;   /* deregistered meanwhile, or not ours to judge */
	int rc = a->fn(rec, a->arg);
	json_decref(rec);
	return rc;
}

int sw_agent_each(const struct sw_ws *ws, int (*fn)(json_t *rec, void *arg), void *arg)
{
	struct each_arg a = { .ws = ws, .fn = fn, .arg = arg };
	return each_record(ws, each_one, &a);
}

static int count_one(int dfd, const char *name, void *arg)
{
	struct each_arg *a = arg;
	json_t *rec = rec_read(a->ws, dfd, name);
	if (!rec)
		return 0;
	if (json_is_true(json_object_get(rec, "alive")))
		a->c->alive++;
	else
		a->c->dead++;
	json_decref(rec);
	return 0;
}

int sw_agent_count(const struct sw_ws *ws, struct sw_agent_counts *c)
{
	c->alive = c->dead = 0;
	struct each_arg a = { .ws = ws, .c = c };
	return each_record(ws, count_one, &a);
}

/* Moves a dead record aside, then judges it again: a heartbeat that came
 * between the first look and the rename shows in the mtime, and the
 * record goes back (unless the agent registered anew meanwhile). */
static int reap_one(int dfd, const char *name, void *arg)
{
	struct each_arg *a = arg;
	json_t *rec = rec_read(a->ws, dfd, name);
	if (!rec || json_is_true(json_object_get(rec, "alive"))) {
		json_decref(rec);
		return 0;
	}
	char aside[SW_TMPNAME_LEN], rnd[17];
	sw_rand_hex(rnd, 8);
	snprintf(aside, sizeof aside, SW_TMP_PREFIX "reap.%s", rnd);
	if (sw_rename(dfd, name, dfd, aside) < 0) {
		json_decref(rec);
		return 0;
	}
	struct stat st;
	if (fstatat(dfd, aside, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    alive_at(a->ws, mtime_ns(&st), rec_ttl_ns(rec), sw_now_ns())) {
		if (linkat(dfd, aside, dfd, name, 0) < 0 && errno != EEXIST)
			sw_rename(dfd, aside, dfd, name);
		unlinkat(dfd, aside, 0);
		json_decref(rec);
		return 0;
	}
	int rc = a->fn ? a->fn(rec, a->arg) : 0;
	unlinkat(dfd, aside, 0);
	(*a->n)++;
	json_decref(rec);
	return rc;
}

/* Temporary files of writers that crashed, older than a minute. */
static void clean_tmp(const struct sw_ws *ws)
{
	int dfd = agents_dir(ws, false);
	if (dfd < 0)
		return;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	struct stat st;
	int64_t now = sw_now_ns();
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now - mtime_ns(&st) > 60 * SW_NS_PER_SEC)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

int sw_agent_reap(const struct sw_ws *ws, int (*fn)(json_t *rec, void *arg), void *arg, long long *n)
{
	*n = 0;
	struct each_arg a = { .ws = ws, .fn = fn, .arg = arg, .n = n };
	int rc = each_record(ws, reap_one, &a);
	clean_tmp(ws);
	return rc;
}
