#include "json.h"
#include "atomic.h"
#include "clock.h"
#include "num.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *sw_json_line(const json_t *j, size_t *len)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (!t) { free(s); return NULL; }
	t[n] = '\n';
	t[n + 1] = 0;
	if (len) *len = n + 1;
	return t;
}

int sw_json_print(const json_t *j)
{
	size_t n;
	char *s = sw_json_line(j, &n);
	if (!s)
		return -1;
	size_t w = fwrite(s, 1, n, stdout);
	free(s);
	return w == n ? 0 : -1;
}

json_t *sw_json_parse(const char *buf, size_t len, struct sw_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!j && err)
		sw_err_set(err, EX_DATAERR, "%s (column %d)", je.text, je.column);
	return j;
}

json_t *sw_json_read(int dirfd, const char *name, size_t max)
{
	char *buf;
	size_t len;
	if (sw_read_file(dirfd, name, &buf, &len, max) < 0)
		return NULL;
	json_t *j = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	free(buf);
	if (!j)
		errno = EBADMSG;
	return j;
}

const char *sw_json_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

bool sw_json_i64(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	/* a decimal string: how integers past 2^53 travel (jq reads numbers
	 * as doubles) */
	return json_is_string(v) && json_string_length(v) == strlen(json_string_value(v)) &&
	       sw_parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, out) == 0;
}

bool sw_json_time_key(const char *key)
{
	size_t n = strlen(key);
	return n >= 8 && !strcmp(key + n - 8, "_unix_ns");
}

int64_t sw_json_int(const json_t *o, const char *key, int64_t dflt)
{
	int64_t v;
	return sw_json_i64(json_object_get(o, key), &v) ? v : dflt;
}

json_t *sw_json_ns(int64_t ns)
{
	char digits[24];
	snprintf(digits, sizeof digits, "%lld", (long long)ns);
	return json_string(digits);
}

void sw_json_set_time(json_t *o, const char *key, int64_t ns)
{
	char t[SW_TIME_LEN], k[128];
	sw_fmt_time(ns, t);
	json_object_set_new(o, key, json_string(t));
	snprintf(k, sizeof k, "%s_unix_ns", key);
	json_object_set_new(o, k, sw_json_ns(ns));
}

size_t sw_json_escape(char *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		/* runs that need nothing are copied whole */
		memcpy(o, s + start, i - start);
		o += i - start;
		start = i + 1;
		*o++ = '\\';
		if (c == '"' || c == '\\') {
			*o++ = (char)c;
		} else if (c == '\t') {
			*o++ = 't';
		} else {
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
	}
	memcpy(o, s + start, len - start);
	return (size_t)(o - out) + len - start;
}
