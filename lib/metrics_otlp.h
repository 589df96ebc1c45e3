/* metrics_otlp.h — reading OTLP JSON span lines fast, for sw-metrics ingest.
 *
 * A line is a span line when it is a JSON object with a top-level
 * "resourceSpans" key: what every sw program's --spans writes and what the
 * OpenTelemetry Collector's file exporter writes (resourceSpans[] ->
 * scopeSpans[] (or the older instrumentationLibrarySpans[]) -> spans[]).
 * jansson parses ~130,000 such lines a second, too slow for the ingest
 * target, so this is a small validating tokenizer (jsmn-like, every value
 * checked against the JSON grammar) plus a walk of just those keys. */
#ifndef SW_METRICS_OTLP_H
#define SW_METRICS_OTLP_H
#include <stddef.h>
#include <stdint.h>

enum { SW_OTLP_UNSET = 0, SW_OTLP_OK = 1, SW_OTLP_ERROR = 2 };
enum { SW_OTLP_BAD = -1, SW_OTLP_OTHER = 0, SW_OTLP_SPANS = 1 };

struct sw_otlp_span {
	const char *name, *service;     /* unescaped, valid UTF-8 */
	int64_t start_ns, end_ns;
	int status;
};

struct sw_otlp_tok;
struct sw_otlp {
	struct sw_otlp_tok *tok;
	size_t ntok, captok;
	char *str;                      /* unescaped strings of this line */
	size_t nstr, capstr;
	struct sw_otlp_span *span;      /* spans of this line */
	size_t nspan, capspan;
	const char *line;
	size_t len, pos;
	char why[160];
};

/* Classifies and parses one line (without its newline): SW_OTLP_OTHER (not
 * a span line: pass it on), SW_OTLP_SPANS (p->span[0..nspan) hold the
 * spans, valid until the next call), or SW_OTLP_BAD with p->why. */
int sw_otlp_line(struct sw_otlp *p, const char *line, size_t len);
void sw_otlp_free(struct sw_otlp *p);
#endif
