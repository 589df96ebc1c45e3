/* span.h — one OpenTelemetry span per operation, as one line of the OTLP
 * file-exporter JSON format ({"resourceSpans":[…]}).  Destination from
 * --spans or SW_SPANS: stdout, stderr, off, or a file appended to under a
 * lock.  A valid W3C TRACEPARENT makes the span its child; an invalid one
 * is ignored with a warning.  Telemetry never fails the operation: a span
 * that cannot be written is a warning. */
#ifndef SW_SPAN_H
#define SW_SPAN_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sw_span {
	bool on;
	char trace[33], id[17], parent[17];
	int64_t start_ns;
	char name[96];
	const char *dest;       /* "stdout", "stderr" or a path */
	json_t *attrs;          /* OTLP attribute array */
};

#define SW_TRACEPARENT_LEN 56   /* "00-" 32 "-" 16 "-01" + NUL */

/* dest: the --spans value or NULL for SW_SPANS; "off"/empty disables. */
void sw_span_start(struct sw_span *sp, const char *dest, const char *name);
void sw_span_str(struct sw_span *sp, const char *key, const char *val);
void sw_span_int(struct sw_span *sp, const char *key, int64_t val);
/* Ends and writes the span; status is an error when exit_code is neither 0
 * nor in ok_codes' sense (1 and 75 are answers, not failures: pass
 * error=false for them).  msg may be NULL. */
void sw_span_end(struct sw_span *sp, bool error, const char *msg);
/* W3C traceparent for a command run under this span (a fresh trace when
 * spans are off and no valid TRACEPARENT was given). */
void sw_span_child_env(const struct sw_span *sp, char out[SW_TRACEPARENT_LEN]);
/* Parses a W3C traceparent; false when invalid (length, non-hex, version
 * ff, all-zero ids). */
bool sw_traceparent_parse(const char *s, char trace[33], char parent[17]);
#endif
