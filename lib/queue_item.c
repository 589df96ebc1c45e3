/* queue_item.c — the item schema: items built from what users add, item
 * files checked as they are read from the workspace (untrusted: another
 * user, host or a damaged disk may have written them), and the views the
 * programs print. */
#include "queue_int.h"
#include "clock.h"
#include "err.h"
#include "json.h"
#include <bsd/stdlib.h>   /* strtonum */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_CAP_NS (3600 * SW_NS_PER_SEC)
#define GEN_MAX (INT64_C(1) << 32)    /* token = gen << 20 | random, below 2^53 */

static bool clean_string(const json_t *v)
{
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int spec_duration(const json_t *v, int64_t *ns)
{
	/* at most SW_DURATION_MAX_NS, as a duration string: no overflow */
	const json_int_t max_s = SW_DURATION_MAX_NS / SW_NS_PER_SEC;
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max_s) {
		*ns = (int64_t)json_integer_value(v) * SW_NS_PER_SEC;
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= (double)max_s) {
		*ns = (int64_t)(json_real_value(v) * 1e9);
		return 0;
	}
	if (clean_string(v))
		return sw_parse_duration(json_string_value(v), ns);
	return -1;
}

static json_t *after_list(const json_t *v, struct sw_err *err)
{
	json_t *out = json_array();
	if (json_is_string(v)) {
		char *buf = strdup(json_string_value(v));
		if (!clean_string(v) || !buf) {
			free(buf);
			sw_err_set(err, EX_DATAERR, "after: want ids as strings, without NUL");
			json_decref(out);
			return NULL;
		}
		for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(out, json_string(t));
		free(buf);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (!clean_string(e)) {
				sw_err_set(err, EX_DATAERR, "after: want ids as strings");
				json_decref(out);
				return NULL;
			}
			json_array_append(out, e);
		}
	} else {
		sw_err_set(err, EX_DATAERR, "after: want an array of ids");
		json_decref(out);
		return NULL;
	}
	size_t i;
	json_t *e;
	json_array_foreach(out, i, e) {
		const char *why = sw_name_problem(json_string_value(e));
		if (why) {
			sw_err_set(err, EX_DATAERR, "bad id in after: %s", why);
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static const char *const spec_keys[] = {
	"id", "payload", "priority", "role", "max_attempts", "timeout", "delay", "after",
	"on_dep_fail", "key", NULL
};

/* A key: text of 1 to SW_KEY_MAX bytes, valid UTF-8, no control
 * characters.  NULL when fine, else why not. */
static const char *key_problem(const json_t *v)
{
	if (!clean_string(v))
		return "key: want a string without NUL";
	const char *k = json_string_value(v);
	size_t n = strlen(k);
	if (n == 0 || n > SW_KEY_MAX)
		return "key: want 1 to 1024 bytes";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return "key: contains a control character";
	return sw_utf8_valid(k, n) ? NULL : "key: not valid UTF-8";
}

static const char *const dep_fail_names[] = { "dead", "cancel", "run" };

int sw_dep_fail_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (s && !strcmp(s, dep_fail_names[i]))
			return i;
	return -1;
}

static bool known_key(const char *k)
{
	for (int i = 0; spec_keys[i]; i++)
		if (!strcmp(k, spec_keys[i]))
			return true;
	return false;
}


json_t *sw_item_new(const json_t *spec, const struct sw_item_defaults *d, const char *queue,
		    struct sw_err *err)
{
	if (!json_is_object(spec)) {
		sw_err_set(err, EX_DATAERR, "an item must be a JSON object");
		return NULL;
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)spec, k, v) {
		if (!known_key(k)) {
			sw_err_set(err, EX_DATAERR, "unknown field '%.40s' (fields: id, payload, priority, role, "
				 "max_attempts, timeout, delay, after, on_dep_fail, key)", k);
			return NULL;
		}
	}
	int64_t now = sw_now_ns();
	json_t *item = json_object();
	char ulid[SW_ULID_LEN + 1];
	const char *id = d->id;
	v = json_object_get(spec, "id");
	if (v && !clean_string(v)) { sw_err_set(err, EX_DATAERR, "id: want a string without NUL"); goto bad; }
	if (v) id = json_string_value(v);
	if (id) {
		const char *why = sw_name_problem(id);
		if (why) { sw_err_set(err, EX_DATAERR, "bad id: %s", why); goto bad; }
		json_object_set_new(item, "given_id", json_true());
	} else {
		sw_ulid(ulid, now);
		id = ulid;
	}
	json_object_set_new(item, "id", json_string(id));
	json_object_set_new(item, "queue", json_string(queue));

	json_int_t prio = d->priority;
	v = json_object_get(spec, "priority");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > SW_PRIO_MAX)) {
		sw_err_set(err, EX_DATAERR, "priority: want an integer from 0 to 9"); goto bad;
	}
	if (v) prio = json_integer_value(v);
	json_object_set_new(item, "priority", json_integer(prio));

	const char *role = d->role;
	v = json_object_get(spec, "role");
	if (v && !json_is_null(v) && !clean_string(v)) { sw_err_set(err, EX_DATAERR, "role: want a string"); goto bad; }
	if (v) role = json_is_null(v) ? NULL : json_string_value(v);
	if (role) {
		const char *why = sw_name_problem(role);
		if (why) { sw_err_set(err, EX_DATAERR, "bad role: %s", why); goto bad; }
		json_object_set_new(item, "role", json_string(role));
	}

	v = json_object_get(spec, "key");
	json_t *key = v ? json_incref(v) : d->key ? json_string(d->key) : NULL;
	if (key || d->key) {
		const char *why = key_problem(key);
		if (why) { json_decref(key); sw_err_set(err, EX_DATAERR, "%s", why); goto bad; }
		json_object_set_new(item, "key", key);
	}

	v = json_object_get(spec, "payload");
	json_object_set(item, "payload", v ? v : json_null());
	json_object_set_new(item, "attempt", json_integer(0));

	json_int_t maxa = d->max_attempts;
	v = json_object_get(spec, "max_attempts");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000)) {
		sw_err_set(err, EX_DATAERR, "max_attempts: want an integer from 1 to 1000000"); goto bad;
	}
	if (v) maxa = json_integer_value(v);
	json_object_set_new(item, "max_attempts", json_integer(maxa));

	int64_t timeout = d->timeout_ns;
	v = json_object_get(spec, "timeout");
	if (v && spec_duration(v, &timeout) < 0) { sw_err_set(err, EX_DATAERR, "timeout: want seconds or a duration"); goto bad; }
	if (timeout < SW_NS_PER_SEC) timeout = SW_NS_PER_SEC;
	json_object_set_new(item, "timeout", json_integer((timeout + SW_NS_PER_SEC - 1) / SW_NS_PER_SEC));

	int64_t delay = d->delay_ns;
	v = json_object_get(spec, "delay");
	if (v && spec_duration(v, &delay) < 0) { sw_err_set(err, EX_DATAERR, "delay: want seconds or a duration"); goto bad; }

	v = json_object_get(spec, "after");
	json_t *after = v ? after_list(v, err) : d->after ? json_incref(d->after) : NULL;
	if (v && !after) goto bad;
	int policy = d->on_dep_fail;
	v = json_object_get(spec, "on_dep_fail");
	if (v && (policy = sw_dep_fail_parse(json_string_value(v))) < 0) {
		sw_err_set(err, EX_DATAERR, "on_dep_fail: want dead, cancel or run");
		json_decref(after);
		goto bad;
	}
	if (after && json_array_size(after) > 0) {
		json_object_set_new(item, "after", after);
		json_object_set_new(item, "on_dep_fail", json_string(dep_fail_names[policy]));
	} else {
		json_decref(after);
	}

	sw_json_set_time(item, "created_at", now);
	if (delay > 0)
		sw_json_set_time(item, "not_before", now + delay);
	json_object_set_new(item, "gen", json_integer(0));

	size_t len = json_dumpb(item, NULL, 0, JSON_COMPACT), max = d->item_max ? d->item_max : SW_ITEM_MAX_DEFAULT;
	if (len > max) {
		sw_err_set(err, EX_DATAERR, "item is %zu bytes, over the limit of %zu (SW_MAX_ITEM_BYTES)", len, max);
		goto bad;
	}
	return item;
bad:
	json_decref(item);
	return NULL;
}

/* ---- checking what was read ------------------------------------------ */

static bool int_in(const json_t *j, const char *key, json_int_t lo, json_int_t hi, bool required)
{
	json_t *v = json_object_get(j, key);
	int64_t x;
	if (!v)
		return !required;
	return (json_is_integer(v) || sw_json_time_key(key)) && sw_json_i64(v, &x) && x >= lo && x <= hi;
}

static bool name_list(const json_t *v)
{
	if (!json_is_array(v))
		return false;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
		if (!clean_string(e) || sw_name_problem(json_string_value(e)))
			return false;
	return true;
}

const char *item_check(const json_t *j, const char *id)
{
	if (!json_is_object(j))
		return "not a JSON object";
	json_t *v = json_object_get(j, "id");
	if (!clean_string(v) || sw_name_problem(json_string_value(v)))
		return "no valid id";
	if (id && strcmp(json_string_value(v), id))
		return "its id is not the one its name says";
	if (!int_in(j, "priority", 0, SW_PRIO_MAX, true))
		return "bad priority";
	if (!int_in(j, "attempt", 0, INT32_MAX, true) || !int_in(j, "max_attempts", 1, 1000000, true))
		return "bad attempt or max_attempts";
	if (!int_in(j, "timeout", 1, SW_DURATION_MAX_NS / SW_NS_PER_SEC, true))
		return "bad timeout";
	if (!int_in(j, "gen", 0, GEN_MAX - 2, true))
		return "bad gen";
	if (!int_in(j, "not_before_unix_ns", 0, INT64_MAX, false))
		return "bad not_before";
	v = json_object_get(j, "role");
	if (v && !json_is_null(v) && (!clean_string(v) || sw_name_problem(json_string_value(v))))
		return "bad role";
	v = json_object_get(j, "after");
	if (v && !name_list(v))
		return "bad after";
	v = json_object_get(j, "on_dep_fail");
	if (v && sw_dep_fail_parse(json_string_value(v)) < 0)
		return "bad on_dep_fail";
	v = json_object_get(j, "key");
	if (v && key_problem(v))
		return "bad key";
	v = json_object_get(j, "state");
	if (v) {
		const char *s = json_string_value(v);
		if (!s || (strcmp(s, "pending") && strcmp(s, "done") && strcmp(s, "dead") &&
			   strcmp(s, "cancelled")))
			return "bad state";
	}
	return NULL;
}

const char *sw_item_check(const char *buf, size_t len, const char *id)
{
	json_t *j = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	const char *why = j ? item_check(j, id) : "not JSON";
	json_decref(j);
	return why;
}

static json_t *parse_buf(char *buf, size_t len)
{
	json_error_t je;
	json_t *j = json_loadb(buf, len, JSON_ALLOW_NUL, &je);
	free(buf);
	return j;
}

/* The JSON in fd, whose fstat said size bytes: read that many and parse;
 * only when that fails, read it whole again (it grew since, or the size
 * was wrong) before it counts as bad.  -1 with errno on a read error, else
 * 1 when anything was read and 0 when the file is empty, with *j NULL
 * when it is not JSON. */
static int item_parse(int fd, size_t size, size_t max, json_t **j)
{
	char *buf;
	size_t len;
	if (sw_read_fd_sized(fd, size, &buf, &len, max) < 0)
		return -1;
	if ((*j = parse_buf(buf, len)) || len != size || size == 0)
		return len > 0;
	if (SW_NOINTR(lseek(fd, 0, SEEK_SET)) < 0 || sw_read_fd(fd, &buf, &len, max) < 0)
		return -1;
	*j = parse_buf(buf, len);
	return len > 0;
}

enum rd item_read(struct sw_queue *q, int dfd, const char *name, const char *id, json_t **item,
		  struct stat *st, char why[128])
{
	struct stat sbuf, *sp = st ? st : &sbuf;
	*item = NULL;
	int fd = sw_open_file(dfd, name, sp);
	if (fd < 0) {
		if (errno == ENOENT)
			return RD_GONE;
		if (errno == EACCES || errno == EPERM)
			return RD_SKIP;
		if (sw_errno_damaged(errno)) {
			snprintf(why, 128, "%s", errno == ELOOP ? "a symlink" : "not a regular file");
			return RD_DAMAGED;
		}
		return RD_ERROR;
	}
	/* a sparse 1 GiB file is refused by its size, before any read */
	size_t max = q->item_max + SW_ITEM_SLACK;
	json_t *j = NULL;
	int rc = (size_t)sp->st_size > max ? -1 : item_parse(fd, (size_t)sp->st_size, max, &j);
	int e = (size_t)sp->st_size > max ? EFBIG : errno;
	close(fd);
	if (rc < 0 && e == EFBIG) {
		snprintf(why, 128, "over SW_MAX_ITEM_BYTES + %d bytes", SW_ITEM_SLACK);
		return RD_DAMAGED;
	}
	if (rc < 0) {
		errno = e;
		return RD_ERROR;
	}
	if (!j) {
		snprintf(why, 128, rc ? "not JSON" : "empty");
		return RD_DAMAGED;
	}
	const char *bad = item_check(j, id);
	if (bad) {
		snprintf(why, 128, "%s", bad);
		json_decref(j);
		return RD_DAMAGED;
	}
	*item = j;
	return RD_OK;
}

const char *item_id(const json_t *item) { return sw_json_str(item, "id"); }

uint64_t item_gen(const json_t *item)
{
	return (uint64_t)sw_json_int(item, "gen", 0);
}

/* ---- views -------------------------------------------------------------- */

json_t *item_view(struct sw_queue *q, json_t *item, const char *state)
{
	json_object_del(item, "gen");
	json_object_del(item, "given_id");
	json_object_set_new(item, "queue", json_string(q->name));
	json_object_set_new(item, "state", json_string(state));
	return item;
}

json_t *claim_view(struct sw_queue *q, json_t *item, uint64_t token, int64_t expiry_ns)
{
	json_object_set_new(item, "attempt", json_integer(sw_json_int(item, "attempt", 0) + 1));
	json_object_set_new(item, "token", json_integer((json_int_t)token));
	sw_json_set_time(item, "lease_expires_at", expiry_ns);
	return item_view(q, item, "claimed");
}

char *item_dump(const json_t *item, size_t *len)
{
	char *s = json_dumps(item, JSON_COMPACT);
	if (s && len)
		*len = strlen(s);
	return s;
}

json_t *finished(json_t *item, uint64_t token, const char *state)
{
	json_object_set_new(item, "attempt", json_integer(sw_json_int(item, "attempt", 0) + 1));
	json_object_set_new(item, "gen", json_integer((json_int_t)(token >> TOKEN_RAND_BITS)));
	json_object_set_new(item, "state", json_string(state));
	return item;
}

json_t *retry_or_dead(json_t *item, uint64_t gen, const char *error, int64_t retry_ns)
{
	int64_t used = sw_json_int(item, "attempt", 0) + 1;
	bool dead = used >= sw_json_int(item, "max_attempts", SW_ATTEMPTS_DEFAULT);
	finished(item, gen << TOKEN_RAND_BITS, dead ? "dead" : "pending");
	if (error)
		json_object_set_new(item, "last_error", json_string(error));
	int64_t now = sw_now_ns();
	sw_json_set_time(item, dead ? "dead_at" : "failed_at", now);
	json_object_del(item, "not_before");
	json_object_del(item, "not_before_unix_ns");
	if (!dead && retry_ns > 0)
		sw_json_set_time(item, "not_before", now + retry_ns);
	return item;
}
