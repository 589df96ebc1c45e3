/* metrics_model.h — what sw-metrics stores, apart from where: the kinds of
 * metric, the rules for names, labels and buckets, and the arithmetic of
 * histograms.  The bottom layer of the metrics library (model -> journal
 * -> database -> fold -> facade, metrics.h): it calls none of the others.
 *
 * Every public function of the library starts with sw_m_. */
#ifndef SW_METRICS_MODEL_H
#define SW_METRICS_MODEL_H
#include "err.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sw_mkind { SW_M_COUNTER = 1, SW_M_GAUGE = 2, SW_M_HISTOGRAM = 3 };

#define SW_M_NAME_MAX 200
#define SW_M_LABELS_MAX 32
#define SW_M_LABEL_VALUE_MAX 2048
#define SW_M_BUCKETS_MAX 64
#define SW_M_RETENTION_DEFAULT_NS (7 * 86400 * INT64_C(1000000000))

/* Prometheus' default buckets, for `observe` (seconds). */
extern const double sw_m_default_bounds[];
extern const size_t sw_m_default_nbounds;
/* Finer buckets for span durations (`ingest`): 100 µs … 60 s. */
extern const double sw_m_span_bounds[];
extern const size_t sw_m_span_nbounds;

struct sw_label {
	const char *key, *value;
};

/* "counter", "gauge", "histogram" ("unknown" for anything else). */
const char *sw_m_kind_name(enum sw_mkind kind);

/* Name rules: [a-z_][a-z0-9_]* (Prometheus names in the snake_case that
 * promtool's lint wants), at most 200 bytes, no leading "__".  Label keys:
 * [a-zA-Z_][a-zA-Z0-9_]*, no leading "__", not "le" or "quantile"; values
 * valid UTF-8 up to 2048 bytes.  NULL when fine, else why. */
const char *sw_m_name_problem(const char *name);
const char *sw_m_label_problem(const struct sw_label *l);
/* "key=value" -> label (pointing into s, which is modified); NULL or why. */
const char *sw_m_label_parse(char *s, struct sw_label *l);
/* Canonical label set: a compact JSON object with sorted keys (malloc'd);
 * NULL on duplicate keys (why in err). */
char *sw_m_labels_json(const struct sw_label *l, size_t n, struct sw_err *err);

/* Names user metrics may not take: the workspace gauges of export
 * (sw_queue_*, sw_agents*, sw_leases*, sw_limit_*, sw_breaker_*) and what
 * ingest writes (sw_span*). */
bool sw_m_reserved(const char *name);
/* The stored name of a metric a user names for kind: the name rule, no
 * reserved name, "_total" only on counters and added to them (the
 * OpenMetrics rule: inc x and inc x_total are one counter), no _bucket,
 * _sum or _count but on histograms' own series.  0, or 65 with err. */
int sw_m_metric_name(char out[SW_M_NAME_MAX + 8], const char *name, enum sw_mkind kind, struct sw_err *err);
/* The histogram whose series name is (lat for lat_bucket, lat_sum and
 * lat_count) into out; false when name is no such name. */
bool sw_m_series_of(const char *name, char out[SW_M_NAME_MAX + 8]);
/* Whether name is one of the workspace gauges that export reads at
 * export time (stored nowhere). */
bool sw_m_workspace_gauge(const char *name);

/* "0.1,1,10" from a user -> strictly increasing bounds, each a decimal
 * number as lib/num.h reads them ("1e-3", "inf", "0x1" refused); NULL or
 * why. */
const char *sw_m_bounds_parse(const char *s, double *b, size_t *n);
/* The same for bounds sw stored itself (sw_m_fmt_double: "1e-05"). */
const char *sw_m_bounds_read(const char *s, double *b, size_t *n);
bool sw_m_same_bounds(const double *a, size_t na, const double *b, size_t nb);
/* Shortest text that reads back as the same double ("0.1", "1e-05"). */
void sw_m_fmt_double(double v, char buf[32]);
/* Index of the bucket of v among bounds b[nb] (nb: the +Inf bucket). */
size_t sw_m_bucket_of(const double *b, size_t nb, double v);
/* Nearest-rank percentile of sorted v[n] (n > 0): v[ceil(p/100*n) - 1]. */
double sw_m_percentile(const double *v, size_t n, double p);
#endif
