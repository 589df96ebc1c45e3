#include "metrics_model.h"
#include "id.h"
#include "num.h"
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

const double sw_m_default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const size_t sw_m_default_nbounds = sizeof sw_m_default_bounds / sizeof sw_m_default_bounds[0];
const double sw_m_span_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				   0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
const size_t sw_m_span_nbounds = sizeof sw_m_span_bounds / sizeof sw_m_span_bounds[0];

/* ---- names, labels, numbers ---- */

const char *sw_m_name_problem(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return "empty name";
	if (n > SW_M_NAME_MAX)
		return "name over 200 bytes";
	if (!strncmp(s, "__", 2))
		return "names starting with __ are reserved";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return "a name is lowercase letters, digits and _, not starting with a digit";
	}
	return NULL;
}

const char *sw_m_label_problem(const struct sw_label *l)
{
	const char *k = l->key;
	size_t n = strlen(k);
	if (n == 0)
		return "empty label name";
	if (n > SW_M_NAME_MAX)
		return "label name over 200 bytes";
	if (!strncmp(k, "__", 2))
		return "label names starting with __ are reserved";
	if (!strcmp(k, "le") || !strcmp(k, "quantile"))
		return "label names le and quantile are reserved";
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return "a label name is letters, digits and _, not starting with a digit";
	}
	size_t vn = strlen(l->value);
	if (vn > SW_M_LABEL_VALUE_MAX)
		return "label value over 2048 bytes";
	if (!sw_utf8_valid(l->value, vn))
		return "label value is not valid UTF-8";
	return NULL;
}

const char *sw_m_label_parse(char *s, struct sw_label *l)
{
	char *eq = strchr(s, '=');
	if (!eq)
		return "a label is key=value";
	*eq = 0;
	l->key = s;
	l->value = eq + 1;
	return sw_m_label_problem(l);
}

char *sw_m_labels_json(const struct sw_label *l, size_t n, struct sw_err *err)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (json_object_get(o, l[i].key)) {
			sw_err_set(err, EX_DATAERR, "label '%s' given twice", l[i].key);
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, l[i].key, json_string(l[i].value));
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		sw_err_set(err, EX_SOFTWARE, "out of memory");
	return s;
}

/* Bounds separated by commas, each read by num: strictly increasing,
 * finite, at most SW_M_BUCKETS_MAX. */
static const char *bounds_split(const char *s, double *b, size_t *n,
				bool (*num)(const char *tok, double *v))
{
	size_t k = 0;
	if (!*s)
		return "empty bucket list";
	for (const char *p = s;; p++) {
		char tok[72];
		size_t len = strcspn(p, ",");
		double v;
		if (len >= sizeof tok)
			return "buckets are decimal numbers separated by commas";
		memcpy(tok, p, len);
		tok[len] = 0;
		if (!num(tok, &v))
			return "buckets are decimal numbers separated by commas";
		if (k == SW_M_BUCKETS_MAX)
			return "more than 64 buckets";
		if (k > 0 && v <= b[k - 1])
			return "bucket bounds must increase strictly";
		b[k++] = v;
		p += len;
		if (!*p)
			break;
	}
	*n = k;
	return NULL;
}

/* What a user writes: the number family's decimals (num.h). */
static bool user_number(const char *tok, double *v)
{
	return sw_parse_real(tok, -DBL_MAX, DBL_MAX, v) == 0;
}

/* What sw_m_fmt_double wrote ("1e-05" among them). */
static bool stored_number(const char *tok, double *v)
{
	char *end;
	errno = 0;
	*v = strtod(tok, &end);
	return *tok && !*end && !errno && isfinite(*v) && strspn(tok, "0123456789.e+-") == strlen(tok);
}

const char *sw_m_bounds_parse(const char *s, double *b, size_t *n)
{
	return bounds_split(s, b, n, user_number);
}

const char *sw_m_bounds_read(const char *s, double *b, size_t *n)
{
	return bounds_split(s, b, n, stored_number);
}

bool sw_m_same_bounds(const double *a, size_t na, const double *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

const char *sw_m_kind_name(enum sw_mkind kind)
{
	return kind == SW_M_COUNTER ? "counter" : kind == SW_M_GAUGE ? "gauge" :
	       kind == SW_M_HISTOGRAM ? "histogram" : "unknown";
}

void sw_m_fmt_double(double v, char buf[32])
{
	if (isnan(v)) { strcpy(buf, "NaN"); return; }
	if (isinf(v)) { strcpy(buf, v > 0 ? "+Inf" : "-Inf"); return; }
	if (v == trunc(v) && fabs(v) < 1e15) {   /* "10", not "1e+01" */
		snprintf(buf, 32, "%.0f", v);
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, 32, "%.*g", p, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

size_t sw_m_bucket_of(const double *b, size_t nb, double v)
{
	size_t lo = 0, hi = nb;   /* the first bound >= v; nb is +Inf */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (b[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

double sw_m_percentile(const double *v, size_t n, double p)
{
	double r = ceil(p / 100.0 * (double)n);
	size_t i = r < 1 ? 0 : (size_t)r - 1;
	return v[i < n ? i : n - 1];
}

/* ---- the names users give ---- */

bool sw_m_workspace_gauge(const char *name)
{
	return !strncmp(name, "sw_queue_", 9) || !strncmp(name, "sw_agents", 9) ||
	       !strncmp(name, "sw_leases", 9) || !strncmp(name, "sw_limit_", 9) ||
	       !strncmp(name, "sw_breaker_", 11);
}

bool sw_m_reserved(const char *name)
{
	return sw_m_workspace_gauge(name) || !strncmp(name, "sw_span", 7);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

bool sw_m_series_of(const char *name, char out[SW_M_NAME_MAX + 8])
{
	static const char *const series[] = {"_bucket", "_sum", "_count"};
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
		size_t k = strlen(series[i]);
		if (n > k && n - k <= SW_M_NAME_MAX && ends_with(name, series[i])) {
			snprintf(out, SW_M_NAME_MAX + 8, "%.*s", (int)(n - k), name);
			return true;
		}
	}
	return false;
}

int sw_m_metric_name(char out[SW_M_NAME_MAX + 8], const char *name, enum sw_mkind kind, struct sw_err *err)
{
	const char *why = sw_m_name_problem(name);
	const char *what = NULL;
	if (why)
		return sw_err_set(err, EX_DATAERR, "bad metric name '%.80s': %s", name, why);
	if (sw_m_reserved(name))
		what = "sw_queue_*, sw_agents*, sw_leases*, sw_limit_* and sw_breaker_* are export's "
		       "workspace gauges, sw_span* ingest's span metrics";
	else if (kind != SW_M_COUNTER && ends_with(name, "_total"))
		what = "only counters end in _total";
	/* a gauge lat_count would collide with histogram lat's series */
	else if (kind != SW_M_COUNTER && (ends_with(name, "_bucket") || ends_with(name, "_sum") ||
					  ends_with(name, "_count")))
		what = "_bucket, _sum and _count are the series of histograms";
	if (what)
		return sw_err_set(err, EX_DATAERR, "bad metric name '%s': %s", name, what);
	/* counters get "_total" (the OpenMetrics rule): inc x and inc x_total
	 * are one counter */
	bool total = kind == SW_M_COUNTER && !ends_with(name, "_total");
	snprintf(out, SW_M_NAME_MAX + 8, "%s%s", name, total ? "_total" : "");
	if (strlen(out) > SW_M_NAME_MAX)
		return sw_err_set(err, EX_DATAERR, "bad metric name '%.80s': over 200 bytes with _total", name);
	return 0;
}
