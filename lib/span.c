#include "span.h"
#include "clock.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "lock.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SW_VERSION_STR "0.1.0"

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

bool sw_traceparent_parse(const char *s, char trace[33], char parent[17])
{
	/* version-traceid-parentid-flags: 2-32-16-2 lowercase hex */
	if (strlen(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return false;
	if (!all_hex(s, 2) || !strncmp(s, "ff", 2))
		return false;
	if (!strncmp(s, "00", 2) && strlen(s) != 55)
		return false;
	if (strlen(s) > 55 && s[55] != '-')
		return false;
	if (!all_hex(s + 3, 32) || !all_hex(s + 36, 16) || !all_hex(s + 53, 2))
		return false;
	if (all_zero(s + 3, 32) || all_zero(s + 36, 16))
		return false;
	memcpy(trace, s + 3, 32); trace[32] = 0;
	memcpy(parent, s + 36, 16); parent[16] = 0;
	return true;
}

static void inherit_context(struct sw_span *sp, bool warn)
{
	const char *tp = getenv("TRACEPARENT");
	sp->parent[0] = 0;
	if (tp && *tp && sw_traceparent_parse(tp, sp->trace, sp->parent))
		return;
	if (tp && *tp && warn)
		sw_warn("ignoring invalid TRACEPARENT '%.60s'", tp);
	do sw_rand_hex(sp->trace, 16); while (all_zero(sp->trace, 32));
}

void sw_span_start(struct sw_span *sp, const char *dest, const char *name)
{
	memset(sp, 0, sizeof *sp);
	if (!dest)
		dest = getenv("SW_SPANS");
	sp->on = dest && *dest && strcmp(dest, "off");
	sp->dest = dest;
	snprintf(sp->name, sizeof sp->name, "%s", name);
	inherit_context(sp, true);
	do sw_rand_hex(sp->id, 8); while (all_zero(sp->id, 16));
	sp->start_ns = sw_now_ns();
	if (sp->on)
		sp->attrs = json_array();
}

static void add_attr(struct sw_span *sp, const char *key, json_t *value)
{
	json_array_append_new(sp->attrs, json_pack("{s:s,s:o}", "key", key, "value", value));
}

void sw_span_str(struct sw_span *sp, const char *key, const char *val)
{
	if (sp->on && val)
		add_attr(sp, key, json_pack("{s:s}", "stringValue", val));
}

void sw_span_int(struct sw_span *sp, const char *key, int64_t val)
{
	char buf[24];
	if (!sp->on)
		return;
	snprintf(buf, sizeof buf, "%lld", (long long)val);
	add_attr(sp, key, json_pack("{s:s}", "intValue", buf));
}

static json_t *span_json(const struct sw_span *sp, bool error, const char *msg)
{
	char start[24], end[24];
	snprintf(start, sizeof start, "%lld", (long long)sp->start_ns);
	snprintf(end, sizeof end, "%lld", (long long)sw_now_ns());
	json_t *span = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:O}",
		"traceId", sp->trace, "spanId", sp->id, "name", sp->name,
		"kind", 1, "startTimeUnixNano", start, "endTimeUnixNano", end,
		"attributes", sp->attrs);
	if (sp->parent[0])
		json_object_set_new(span, "parentSpanId", json_string(sp->parent));
	json_t *status = json_pack("{s:i}", "code", error ? 2 : 1);
	if (error && msg)
		json_object_set_new(status, "message", json_string(msg));
	json_object_set_new(span, "status", status);
	return json_pack("{s:[{s:{s:[{s:s,s:{s:s}}]},s:[{s:{s:s,s:s},s:[o]}]}]}",
		"resourceSpans", "resource", "attributes", "key", "service.name",
		"value", "stringValue", sw_prog(), "scopeSpans", "scope",
		"name", "sw", "version", SW_VERSION_STR, "spans", span);
}

static int write_span_line(const char *dest, const char *line, size_t len)
{
	if (!strcmp(dest, "stdout")) {
		/* data lines share stdout: keep the order they were printed in */
		return fwrite(line, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
	}
	if (!strcmp(dest, "stderr"))
		return SW_NOINTR(write(2, line, len)) == (ssize_t)len ? 0 : -1;
	/* the destination may sit in a directory others can write: a FIFO
	 * planted there must not hang us after the work is done (O_NONBLOCK
	 * makes its open return), and only a regular file is appended to */
	int fd = SW_NOINTR(open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
				O_NONBLOCK | O_NOCTTY, 0666));
	if (fd < 0)
		return -1;
	struct stat st;
	int bad = SW_NOINTR(fstat(fd, &st)) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
	if (bad) {
		close(fd);
		errno = bad;
		return -1;
	}
	/* appends from many processes stay whole lines under the lock; the
	 * wait is bounded, since a lock is never proof its holder lives (one
	 * O_APPEND write is whole on a local disk even without it) */
	int lk = sw_lock_fd(fd, LOCK_EX, SW_NS_PER_SEC);
	ssize_t w = SW_NOINTR(write(fd, line, len));
	(void)lk;
	int e = errno;
	close(fd);
	errno = e;
	return w == (ssize_t)len ? 0 : -1;
}

void sw_span_end(struct sw_span *sp, bool error, const char *msg)
{
	if (!sp->on)
		return;
	sp->on = false;
	json_t *j = span_json(sp, error, msg);
	size_t len;
	char *line = j ? sw_json_line(j, &len) : NULL;
	if (!line || write_span_line(sp->dest, line, len) < 0)
		sw_warn("cannot write span to %s: %s", sp->dest,
			errno == ELOOP ? "a symlink (not followed)" :
			errno == EINVAL || errno == ENXIO ? "not a regular file" : strerror(errno));
	free(line);
	json_decref(j);
	json_decref(sp->attrs);
	sp->attrs = NULL;
}

void sw_span_child_env(const struct sw_span *sp, char out[SW_TRACEPARENT_LEN])
{
	snprintf(out, SW_TRACEPARENT_LEN, "00-%s-%s-01", sp->trace, sp->id);
}
