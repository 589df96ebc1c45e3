/* agent.c — the agent registry: one JSON record per agent whose mtime is
 * its last heartbeat (see agent.h and sw-workspace(5)).
 *
 * Records are untrusted input: another user or host may have written any
 * of them.  A record's name comes from its directory entry and is checked
 * as an id; it is read without blocking, only when it is a regular file,
 * and only up to RECORD_MAX; every field sw uses is checked before use.
 * A record that fails is skipped with a warning by readers, and moved to
 * agents/damaged/ by reap. */
#include "agent.h"
#include "queue.h"
#include "aside.h"
#include "atomic.h"
#include "clock.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "opt.h"
#include "owner.h"
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
	while ((de = sw_readdir(d))) {
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
	while ((de = sw_readdir(d))) {
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

/* The id a directory entry "<id>.json" names: 1 with id set, 0 when the
 * entry is no record (another kind of file), -1 when it looks like one
 * but its id fails the name rule. */
static int rec_name_id(const char *name, char id[NAME_LEN])
{
	size_t n = strlen(name);
	if (n <= 5 || strcmp(name + n - 5, ".json"))
		return 0;
	if (n - 5 >= NAME_LEN)
		return -1;
	memcpy(id, name, n - 5);
	id[n - 5] = 0;
	return sw_name_problem(id) ? -1 : 1;
}

/* The agents directory, and in name the record's name of id: -1 with
 * errno (EINVAL: id fails the name rule). */
static int rec_dir(const struct sw_ws *ws, const char *id, bool create, char name[NAME_LEN])
{
	if (sw_name_problem(id)) {
		errno = EINVAL;
		return -1;
	}
	rec_name(name, id);
	return agents_dir(ws, create);
}

/* A temporary name for a record being reaped: readers skip it. */
static void reap_name(char out[SW_TMPNAME_LEN])
{
	char rnd[17];
	sw_rand_hex(rnd, 8);
	snprintf(out, SW_TMPNAME_LEN, SW_TMP_PREFIX "reap.%s", rnd);
}

static int set_mtime(int dfd, const char *name, int64_t ns)
{
	struct timespec ts[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = ns / SW_NS_PER_SEC, .tv_nsec = ns % SW_NS_PER_SEC },
	};
	return (int)SW_NOINTR(utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW));
}

int sw_agent_put(const struct sw_ws *ws, const char *id, const json_t *rec)
{
	char name[NAME_LEN];
	int dfd = rec_dir(ws, id, true, name);
	if (dfd < 0)
		return -1;
	size_t len;
	char *buf = sw_json_line(rec, &len);
	int rc = buf ? sw_replace(dfd, name, buf, len, ws->sync, false) : -1;
	/* ENOENT: a reaper took our temporary file, older than a minute, for
	 * a crashed writer's (we stalled that long): write it again */
	if (rc < 0 && errno == ENOENT && buf)
		rc = sw_replace(dfd, name, buf, len, ws->sync, false);
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
	char name[NAME_LEN];
	int dfd = rec_dir(ws, id, false, name);
	if (dfd < 0)
		return -1;
	int rc = set_mtime(dfd, name, sw_now_ns());
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

int sw_agent_remove(const struct sw_ws *ws, const char *id)
{
	char name[NAME_LEN];
	int dfd = rec_dir(ws, id, false, name);
	if (dfd < 0)
		return -1;
	int rc = (int)SW_NOINTR(unlinkat(dfd, name, 0));
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

/* Clamped: a file's time may be anything, and a TTL is added to it. */
static int64_t mtime_ns(const struct stat *st)
{
	if (st->st_mtim.tv_sec < 0)
		return 0;
	if (st->st_mtim.tv_sec >= SW_TIME_MAX_NS / SW_NS_PER_SEC)
		return SW_TIME_MAX_NS;
	return (int64_t)st->st_mtim.tv_sec * SW_NS_PER_SEC + st->st_mtim.tv_nsec;
}

static int64_t rec_ttl_ns(const json_t *rec)
{
	json_t *t = json_object_get(rec, "ttl");
	double v = json_number_value(t);
	if (json_is_number(t) && v > 0 && v <= (double)(SW_DURATION_MAX_NS / SW_NS_PER_SEC))
		return (int64_t)(v * 1e9);
	return SW_AGENT_TTL_DEFAULT_NS;
}

static bool alive_at(const struct sw_ws *ws, int64_t beat_ns, int64_t ttl_ns, int64_t now)
{
	return beat_ns + ttl_ns + ws->skew_ns >= now;
}

/* Whether the process a record names under key is dead for certain (see
 * owner.h); false when the record names none or it cannot be told. */
static bool proc_dead(const json_t *rec, const char *key)
{
	const json_t *v = json_object_get(rec, key);
	const char *s = json_string_value(v);
	return s && sw_owner_alive(s, json_string_length(v)) == SW_OWNER_DEAD;
}

/* The agent's processes are gone: its owner, and its guardian if it has
 * one (whose death comes after it has killed what the agent ran). */
static bool procs_gone(const json_t *rec)
{
	return proc_dead(rec, "owner") && (!json_object_get(rec, "guardian") || proc_dead(rec, "guardian"));
}

/* ---- checking what was read -------------------------------------------- */

static bool name_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	return s && strlen(s) == json_string_length(v) && !sw_name_problem(s);
}

/* A string a table may print: valid UTF-8 with no control character, so
 * that nothing in a record reaches a terminal as an escape sequence. */
static bool text_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v) || strlen(s) > 1024)
		return false;
	char clean[4 * 1024 + 8];
	sw_sanitize(s, clean, sizeof clean);
	return !strcmp(s, clean);
}

static bool names_ok(const json_t *v)
{
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, e)
		if (!name_ok(e))
			return false;
	return true;
}

/* An owner string as owner.h writes it: hex digits, digits and '-'. */
static bool owner_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	return s && n < SW_OWNER_LEN && strlen(s) == n && strspn(s, "0123456789abcdef-") == n;
}

static bool claims_ok(const json_t *v)
{
	size_t i;
	json_t *c;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, c) {
		json_t *t = json_object_get(c, "token");
		if (!json_is_object(c) || !name_ok(json_object_get(c, "queue")) ||
		    !name_ok(json_object_get(c, "id")) || !json_is_integer(t) || json_integer_value(t) < 1)
			return false;
	}
	return true;
}

/* Why a record named for id cannot be used, or NULL.  Every field that
 * sw acts on or prints in a table is checked: the id (which must be the
 * one its name says), ttl, roles, claims (reap fails them), hostname,
 * queue and jobs (tables print them), owner and guardian. */
static const char *rec_check(const json_t *rec, const char *id)
{
	if (!json_is_object(rec))
		return "not a JSON object";
	json_t *v = json_object_get(rec, "id");
	if (!name_ok(v) || strcmp(json_string_value(v), id))
		return "its id is not the one its name says";
	v = json_object_get(rec, "ttl");
	if (v && (!json_is_number(v) || !(json_number_value(v) > 0) ||
		  json_number_value(v) > (double)(SW_DURATION_MAX_NS / SW_NS_PER_SEC)))
		return "bad ttl";
	v = json_object_get(rec, "roles");
	if (v && !names_ok(v))
		return "bad roles";
	v = json_object_get(rec, "claims");
	if (v && !claims_ok(v))
		return "bad claims";
	v = json_object_get(rec, "hostname");
	if (v && !json_is_null(v) && !text_ok(v))
		return "bad hostname";
	/* list --table prints these two */
	if ((v = json_object_get(rec, "queue")) && !name_ok(v))
		return "bad queue";
	if ((v = json_object_get(rec, "jobs")) && (!json_is_integer(v) || json_integer_value(v) < 1 ||
						    json_integer_value(v) > 1000000))
		return "bad jobs";
	if ((v = json_object_get(rec, "owner")) && !owner_ok(v))
		return "bad owner";
	if ((v = json_object_get(rec, "guardian")) && !owner_ok(v))
		return "bad guardian";
	return NULL;
}

enum rec_rd { REC_OK, REC_GONE, REC_SKIP, REC_DAMAGED, REC_ERROR };

/* Reads the record dfd/name of agent id and adds the liveness fields
 * (from the fstat of the very file read).  REC_DAMAGED: why says what is
 * wrong; REC_SKIP: not ours to read (another user's); REC_ERROR: errno. */
static enum rec_rd rec_load(const struct sw_ws *ws, int dfd, const char *name, const char *id,
			    json_t **out, char why[96])
{
	struct stat st;
	char *buf;
	size_t len;
	*out = NULL;
	int fd = sw_open_file(dfd, name, &st);
	if (fd < 0) {
		if (errno == ENOENT)
			return REC_GONE;
		if (errno == EACCES || errno == EPERM)
			return REC_SKIP;
		if (!sw_errno_damaged(errno))
			return REC_ERROR;
		snprintf(why, 96, "%s", errno == ELOOP ? "a symlink" : "not a regular file");
		return REC_DAMAGED;
	}
	/* a sparse 1 GiB file is refused by its size, before any read */
	int rc = st.st_size > RECORD_MAX ? -1 : sw_read_fd(fd, &buf, &len, RECORD_MAX);
	int e = st.st_size > RECORD_MAX ? EFBIG : errno;
	close(fd);
	if (rc < 0 && e == EFBIG) {
		snprintf(why, 96, "over %d bytes", RECORD_MAX);
		return REC_DAMAGED;
	}
	if (rc < 0) {
		errno = e;
		return REC_ERROR;
	}
	json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	const char *bad = rec ? rec_check(rec, id) : "not JSON";
	if (bad) {
		snprintf(why, 96, "%s", bad);
		json_decref(rec);
		return REC_DAMAGED;
	}
	int64_t beat = mtime_ns(&st), ttl = rec_ttl_ns(rec);
	bool beating = alive_at(ws, beat, ttl, sw_now_ns()), gone = procs_gone(rec);
	json_object_set_new(rec, "alive", json_boolean(beating && !gone));
	if (gone || !beating)
		json_object_set_new(rec, "dead_reason", json_string(gone ? "process_gone" : "heartbeat_expired"));
	sw_json_set_time(rec, "last_heartbeat_at", beat);
	sw_json_set_time(rec, "expires_at", beat + ttl);
	*out = rec;
	return REC_OK;
}

json_t *sw_agent_get(const struct sw_ws *ws, const char *id)
{
	char name[NAME_LEN];
	int dfd = rec_dir(ws, id, false, name);
	if (dfd < 0)
		return NULL;
	char why[96];
	json_t *rec;
	enum rec_rd rd = rec_load(ws, dfd, name, id, &rec, why);
	int e = rd == REC_GONE ? ENOENT : rd == REC_SKIP ? EACCES : rd == REC_DAMAGED ? EBADMSG : errno;
	if (rd == REC_DAMAGED)
		sw_warn("agent record %s/%s: %s", SW_AGENT_DIR, name, why);
	close(dfd);
	errno = e;
	return rec;
}

/* Moves dfd/name aside into agents/damaged/ (aside.h), and says so. */
static void rec_quarantine(int dfd, const char *name, const char *why)
{
	char box[SW_BOX_LEN];
	int dmg = sw_open_dir(dfd, SW_AGENT_DAMAGED, true);
	json_t *j = json_pack("{s:s,s:s}", "name", name, "reason", why);
	int rc = dmg >= 0 && j ? sw_move_aside(dfd, name, dmg, j, box) : -1;
	int e = j ? errno : ENOMEM;
	json_decref(j);
	if (dmg >= 0)
		close(dmg);
	if (rc == 0)
		sw_warn("moved agent record %s/%s aside (%s) to %s/%s/%s", SW_AGENT_DIR, name, why,
			SW_AGENT_DIR, SW_AGENT_DAMAGED, box);
	else if (e != ENOENT)   /* gone meanwhile: nothing to say */
		sw_warn("agent record %s/%s is damaged (%s) and cannot be moved aside: %s",
			SW_AGENT_DIR, name, why, strerror(e));
}

struct each_arg {
	const struct sw_ws *ws;
	int (*fn)(json_t *rec, void *arg);
	void *arg;
	struct sw_agent_counts *c;
	long long *n;
	bool reap;              /* damaged records go aside, not just skipped */
};

/* Calls fn(dfd, name, rec, a) for each record that reads and checks
 * well.  One that does not is skipped with a warning, or moved aside when
 * reaping, and the walk goes on. */
static int each_record(struct each_arg *a, int (*fn)(int dfd, const char *name, json_t *rec,
						      struct each_arg *a))
{
	int dfd = agents_dir(a->ws, false);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	int d2 = (int)SW_NOINTR(dup(dfd));
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (!d) {
		int e = errno;
		if (d2 >= 0)
			close(d2);
		close(dfd);
		errno = e;
		return -1;
	}
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = sw_readdir(d))) {
		char id[NAME_LEN], why[96];
		json_t *rec;
		enum rec_rd rd = REC_DAMAGED;
		int named = sw_hidden(de->d_name) ? 0 : rec_name_id(de->d_name, id);
		if (named == 0)
			continue;   /* not a record: temporary files, damaged/ */
		if (named < 0)
			snprintf(why, sizeof why, "not an agent id");
		else
			rd = rec_load(a->ws, dfd, de->d_name, id, &rec, why);
		if (rd == REC_OK) {
			rc = fn(dfd, de->d_name, rec, a);
			json_decref(rec);
		} else if (rd == REC_DAMAGED && a->reap) {
			rec_quarantine(dfd, de->d_name, why);
		} else if (rd == REC_DAMAGED) {
			sw_warn("skipping agent record %s/%s: %s", SW_AGENT_DIR, de->d_name, why);
		} else if (rd == REC_ERROR) {
			sw_warn("skipping agent record %s/%s: %s", SW_AGENT_DIR, de->d_name, strerror(errno));
		}
		/* REC_GONE: deregistered meanwhile; REC_SKIP: not ours to judge */
	}
	int e = errno;
	closedir(d);
	close(dfd);
	if (!rc && e) {
		errno = e;
		return -1;
	}
	return rc;
}

static int each_one(int dfd, const char *name, json_t *rec, struct each_arg *a)
{
	(void)dfd;
	(void)name;
	return a->fn(rec, a->arg);
}

int sw_agent_each(const struct sw_ws *ws, int (*fn)(json_t *rec, void *arg), void *arg)
{
	struct each_arg a = { .ws = ws, .fn = fn, .arg = arg };
	return each_record(&a, each_one);
}

bool sw_agent_has_role(const json_t *rec, const char *role)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(rec, "roles"), i, r)
		if (json_is_string(r) && !strcmp(json_string_value(r), role))
			return true;
	return false;
}

struct ids {
	bool (*keep)(const json_t *rec, const void *arg);
	const void *arg;
	char **v;
	size_t n, cap;
};

static int id_one(json_t *rec, void *arg)
{
	struct ids *a = arg;
	const char *id = sw_json_str(rec, "id");
	if (!id || !json_is_true(json_object_get(rec, "alive")) || (a->keep && !a->keep(rec, a->arg)))
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		char **v = realloc(a->v, cap * sizeof *v);
		if (!v)
			return errno = ENOMEM, -1;
		a->v = v;
		a->cap = cap;
	}
	if (!(a->v[a->n] = strdup(id)))
		return errno = ENOMEM, -1;
	a->n++;
	return 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sw_agent_ids(const struct sw_ws *ws, bool (*keep)(const json_t *rec, const void *arg), const void *arg,
		 char ***ids, size_t *n)
{
	struct ids a = { .keep = keep, .arg = arg };
	if (sw_agent_each(ws, id_one, &a) < 0) {
		int e = errno;
		sw_agent_ids_free(a.v, a.n);
		errno = e;
		return -1;
	}
	if (a.n)
		qsort(a.v, a.n, sizeof *a.v, cmp_strp);
	*ids = a.v;
	*n = a.n;
	return 0;
}

void sw_agent_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static int count_one(int dfd, const char *name, json_t *rec, struct each_arg *a)
{
	(void)dfd;
	(void)name;
	if (json_is_true(json_object_get(rec, "alive")))
		a->c->alive++;
	else
		a->c->dead++;
	return 0;
}

int sw_agent_count(const struct sw_ws *ws, struct sw_agent_counts *c)
{
	c->alive = c->dead = 0;
	struct each_arg a = { .ws = ws, .c = c };
	return each_record(&a, count_one);
}

/* A record renamed aside whose claims could not all be freed goes back,
 * unless the agent registered anew meanwhile: the next reap tries again. */
static int keep_record(int dfd, const char *aside, const char *name)
{
	if (SW_NOINTR(linkat(dfd, aside, dfd, name, 0)) < 0 && errno != EEXIST)
		return sw_rename(dfd, aside, dfd, name) < 0 ? -1 : 0;
	SW_NOINTR(unlinkat(dfd, aside, 0));
	return 0;
}

/* Moves a dead record aside, then judges it again: a heartbeat that came
 * between the first look and the rename shows in the mtime, and the
 * record goes back (unless the agent registered anew meanwhile). */
static int reap_one(int dfd, const char *name, json_t *rec, struct each_arg *a)
{
	if (json_is_true(json_object_get(rec, "alive")))
		return 0;
	char aside[SW_TMPNAME_LEN];
	reap_name(aside);
	if (sw_rename(dfd, name, dfd, aside) < 0) {
		/* ENOENT: another reaper has it; anything else stays until the
		 * next reap, said once here */
		if (errno != ENOENT)
			sw_warn("cannot move dead agent record %s aside: %s", name, strerror(errno));
		return 0;
	}
	/* what was renamed may be a record written since the first look (the
	 * agent registered anew, with another process): judged by itself */
	struct stat st;
	char id[NAME_LEN], why[96];
	json_t *again = NULL;
	bool alive = false;
	if (rec_name_id(name, id) == 1 && rec_load(a->ws, dfd, aside, id, &again, why) == REC_OK)
		alive = json_is_true(json_object_get(again, "alive"));
	else if (SW_NOINTR(fstatat(dfd, aside, &st, AT_SYMLINK_NOFOLLOW)) == 0)
		alive = alive_at(a->ws, mtime_ns(&st), rec_ttl_ns(rec), sw_now_ns()) && !procs_gone(rec);
	json_decref(again);
	if (alive) {
		if (SW_NOINTR(linkat(dfd, aside, dfd, name, 0)) < 0 && errno != EEXIST)
			sw_rename(dfd, aside, dfd, name);
		SW_NOINTR(unlinkat(dfd, aside, 0));
		return 0;
	}
	int rc = a->fn ? a->fn(rec, a->arg) : 0;
	if (rc == 1)
		return keep_record(dfd, aside, name);
	SW_NOINTR(unlinkat(dfd, aside, 0));
	(*a->n)++;
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
	while ((de = sw_readdir(d)))
		if (!strncmp(de->d_name, SW_TMP_PREFIX, strlen(SW_TMP_PREFIX)) &&
		    SW_NOINTR(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) == 0 &&
		    now - mtime_ns(&st) > 60 * SW_NS_PER_SEC)
			SW_NOINTR(unlinkat(dirfd(d), de->d_name, 0));
	closedir(d);
}

int sw_agent_reap(const struct sw_ws *ws, int (*fn)(json_t *rec, void *arg), void *arg, long long *n)
{
	*n = 0;
	struct each_arg a = { .ws = ws, .fn = fn, .arg = arg, .n = n, .reap = true };
	int rc = each_record(&a, reap_one);
	int e = errno;
	clean_tmp(ws);
	errno = e;   /* the reap's error, not the cleaning's */
	return rc;
}

int sw_agent_forget(const struct sw_ws *ws, const char *id, int (*fn)(json_t *rec, void *arg), void *arg)
{
	char name[NAME_LEN];
	int dfd = rec_dir(ws, id, false, name);
	if (dfd < 0)
		return -1;
	char why[96], aside[SW_TMPNAME_LEN];
	json_t *rec;
	enum rec_rd rd = rec_load(ws, dfd, name, id, &rec, why);
	int rc = -1, e = rd == REC_GONE ? ENOENT : rd == REC_SKIP ? EACCES : EBADMSG;
	bool kept = false;
	if (rd == REC_DAMAGED)
		rec_quarantine(dfd, name, why);
	if (rd == REC_ERROR)
		e = errno;
	if (rd == REC_OK) {
		/* renamed away first: the one who renames it is the one who
		 * frees its claims, even with two reapers at once */
		reap_name(aside);
		if (sw_rename(dfd, name, dfd, aside) < 0) {
			e = errno;
		} else {
			rc = fn ? fn(rec, arg) : 0;
			kept = rc == 1;
			if (kept)
				rc = keep_record(dfd, aside, name);
			else
				SW_NOINTR(unlinkat(dfd, aside, 0));
		}
		json_decref(rec);
	}
	close(dfd);
	if (rc < 0)
		errno = e;
	return rc < 0 ? -1 : kept ? 1 : 0;
}

/* ---- a dead agent's claims ------------------------------------------- */

long long sw_agent_free_claims(const struct sw_ws *ws, const json_t *rec, int *code)
{
	long long n = 0;
	*code = 0;
	size_t i;
	json_t *c;
	char why[SW_NAME_MAX + 64];
	const char *agent = sw_json_str(rec, "id");
	/* a live agent's record comes here only from reap --force */
	snprintf(why, sizeof why, json_is_true(json_object_get(rec, "alive")) ?
		 "agent %s was reaped by force" : "agent %s is dead (reaped)",
		 agent && !sw_name_problem(agent) ? agent : "?");
	/* the record is anyone's writing: its names are checked as names, and
	 * a token only acts where it is the item's current claim */
	json_array_foreach(json_object_get(rec, "claims"), i, c) {
		const char *qn = sw_json_str(c, "queue"), *id = sw_json_str(c, "id");
		int64_t token = sw_json_int(c, "token", 0);
		struct sw_queue q;
		if (!qn || !id || token <= 0 || sw_name_problem(qn) || sw_name_problem(id) ||
		    sw_queue_open(&q, ws, qn, false))
			continue;
		int rc = sw_queue_fail(&q, id, (uint64_t)token, why, 0, NULL);
		if (rc == 0)
			n++;
		else if (rc != SW_EX_FALSE) {
			sw_warn("queue '%s': %s", qn, q.err.msg);
			*code = *code ? *code : rc;
		}
		sw_queue_close(&q);
	}
	return n;
}

/* hostname-8hex, with bytes the name rule refuses replaced by '_' */
void sw_agent_default_id(char out[SW_NAME_MAX + 1], const json_t *hw)
{
	const char *h = sw_json_str(hw, "hostname");
	char rnd[9];
	sw_rand_hex(rnd, 4);
	snprintf(out, SW_NAME_MAX + 1, "%.150s-%s", h && *h ? h : "agent", rnd);
	for (char *p = out; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '_';
	if (out[0] == '.' || out[0] == '-')
		out[0] = '_';
	if (sw_name_problem(out))
		snprintf(out, SW_NAME_MAX + 1, "agent-%s", rnd);
}

static json_t *roles_json(const char *const *roles, size_t nroles)
{
	json_t *a = json_array();
	for (size_t i = 0; i < nroles; i++)
		json_array_append_new(a, json_string(roles[i]));
	return a;
}

json_t *sw_agent_record(const char *id, const char *const *roles, size_t nroles, json_t *labels, json_t *hw,
			int64_t ttl_ns)
{
	json_t *rec = json_pack("{s:s,s:o,s:o,s:I,s:f}", "id", id, "roles", roles_json(roles, nroles),
		"labels", labels ? json_incref(labels) : json_object(),
		"pid", (json_int_t)getpid(), "ttl", (double)ttl_ns / 1e9);
	json_object_update(rec, hw);
	sw_json_set_time(rec, "registered_at", sw_now_ns());
	json_object_set_new(rec, "version", json_string(SW_VERSION));
	return rec;
}
