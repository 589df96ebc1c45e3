/* json.h — JSON helpers on jansson: compact one-line output written with a
 * single write, parsing with a one-line reason, UTF-8 checks. */
#ifndef SW_JSON_H
#define SW_JSON_H
#include "err.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Compact JSON plus '\n', malloc'd (any value, not only objects and
 * arrays); NULL on failure. */
char *sw_json_line(const json_t *j, size_t *len);
/* Writes j as one line to stdout (stdio-buffered; flushed at exit). */
int sw_json_print(const json_t *j);
/* Parses one JSON text; on failure NULL and why (with column; code 65) in err, which may be NULL. */
json_t *sw_json_parse(const char *buf, size_t len, struct sw_err *err);
/* Reads and parses a whole JSON file; NULL with errno (EBADMSG: bad JSON). */
json_t *sw_json_read(int dirfd, const char *name, size_t max);
/* An integer, or a decimal string of one: 64 bits whole. */
bool sw_json_i64(const json_t *v, int64_t *out);
/* Whether key names a time twin ("*_unix_ns"), the fields written as
 * decimal strings: other integers must be JSON integers. */
bool sw_json_time_key(const char *key);
/* Getters that tolerate absence (sw_json_int: an integer or a decimal
 * string). */
const char *sw_json_str(const json_t *o, const char *key);
int64_t sw_json_int(const json_t *o, const char *key, int64_t dflt);
/* The body of a JSON string (no quotes) for s[len], which must be valid
 * UTF-8, written to out: '"' and '\\' escaped, a tab as \t and other
 * control bytes as \u00XX.  out holds at least SW_JSON_ESC_MAX(len)
 * bytes; returns how many were written.  For output made in bulk (a
 * million keys), where a jansson string per value costs too much. */
#define SW_JSON_ESC_MAX(len) ((len) * 6)
size_t sw_json_escape(char *out, const char *s, size_t len);
/* Sets key to the RFC 3339 form of ns and key_unix_ns to its exact value,
 * a decimal string: nanoseconds since the epoch are past 2^53, which jq
 * and every double-based reader would round. */
void sw_json_set_time(json_t *o, const char *key, int64_t ns);
/* ns as a decimal string, the form of a *_unix_ns field (NULL: out of
 * memory). */
json_t *sw_json_ns(int64_t ns);
#endif
