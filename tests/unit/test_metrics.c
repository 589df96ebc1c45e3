/* test_metrics — the pure parts of sw-metrics' library: name, label and
 * bucket rules, number formatting, nearest-rank percentiles, Prometheus
 * escaping, the journal's records and kinds-registry targets, and the
 * OTLP span-line reader against well-formed, truncated and tricky lines. */
#include "tap.h"
#include "metrics.h"
#include "metrics_journal.h"
#include "metrics_otlp.h"
#include "metrics_prom.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void names(void)
{
	ok(!sw_m_name_problem("jobs_total"), "snake_case name accepted");
	ok(!sw_m_name_problem("_x9"), "leading underscore accepted");
	ok(sw_m_name_problem("") != NULL, "empty name refused");
	ok(sw_m_name_problem("Jobs") != NULL, "capital refused");
	ok(sw_m_name_problem("9x") != NULL, "leading digit refused");
	ok(sw_m_name_problem("a:b") != NULL, "colon refused");
	ok(sw_m_name_problem("__x") != NULL, "__ prefix refused");
	struct sw_label l = {"le", "1"};
	ok(sw_m_label_problem(&l) != NULL, "label le refused");
	l = (struct sw_label){"Path", "a\"b\\c\nd"};
	ok(!sw_m_label_problem(&l), "label value with quote, backslash, newline accepted");
	l = (struct sw_label){"p", "\xff"};
	ok(sw_m_label_problem(&l) != NULL, "invalid UTF-8 value refused");
	char kv[] = "k=v=w";
	ok(!sw_m_label_parse(kv, &l) && !strcmp(l.key, "k") && !strcmp(l.value, "v=w"),
	   "key=value splits at the first =");
	struct sw_label two[] = {{"b", "2"}, {"a", "1"}}, dup[] = {{"a", "1"}, {"a", "2"}};
	struct sw_err err;
	char *j = sw_m_labels_json(two, 2, &err);
	ok(j && !strcmp(j, "{\"a\":\"1\",\"b\":\"2\"}"), "labels are canonical: sorted keys (%s)", j);
	free(j);
	ok(!sw_m_labels_json(dup, 2, &err), "duplicate label key refused");
}

static void numbers(void)
{
	double b[SW_M_BUCKETS_MAX];
	size_t n;
	ok(!sw_m_bounds_parse("0.1,1,10", b, &n) && n == 3 && b[2] == 10, "bucket list parsed");
	ok(sw_m_bounds_parse("1,1", b, &n) != NULL, "equal bounds refused");
	ok(sw_m_bounds_parse("1,,2", b, &n) != NULL, "empty bound refused");
	ok(sw_m_bounds_parse("1,inf", b, &n) != NULL, "infinite bound refused");
	ok(sw_m_bounds_parse("0x1,0x2", b, &n) != NULL && sw_m_bounds_parse("1e-3", b, &n) != NULL &&
	   sw_m_bounds_parse(" 1", b, &n) != NULL, "hex, exponents and spaces refused, as everywhere");
	ok(!sw_m_bounds_read("1e-05,0.5", b, &n) && n == 2 && b[0] == 1e-05,
	   "stored bounds (sw_m_fmt_double's) read back");
	char mn[SW_M_NAME_MAX + 8];
	struct sw_err why;
	ok(sw_m_metric_name(mn, "jobs", SW_M_COUNTER, &why) == 0 && !strcmp(mn, "jobs_total") &&
	   sw_m_metric_name(mn, "jobs_total", SW_M_COUNTER, &why) == 0 &&
	   !strcmp(mn, "jobs_total"), "counters are stored with _total, once");
	ok(sw_m_metric_name(mn, "lat_count", SW_M_GAUGE, &why) == 65 &&
	   sw_m_metric_name(mn, "x_total", SW_M_HISTOGRAM, &why) == 65 &&
	   sw_m_metric_name(mn, "sw_queue_x", SW_M_GAUGE, &why) == 65,
	   "histogram series, _total and reserved names refused (65)");
	ok(sw_m_series_of("lat_count", mn) && !strcmp(mn, "lat") && sw_m_series_of("lat_bucket", mn) &&
	   !strcmp(mn, "lat") && sw_m_series_of("a_sum", mn) && !strcmp(mn, "a") &&
	   !sw_m_series_of("_count", mn) && !sw_m_series_of("lat", mn) && !sw_m_series_of("counts", mn),
	   "a histogram's series names lead to the histogram");
	ok(sw_m_workspace_gauge("sw_queue_items") && sw_m_workspace_gauge("sw_leases_held") &&
	   !sw_m_workspace_gauge("sw_span_duration_seconds") && sw_m_reserved("sw_span_duration_seconds"),
	   "workspace gauges are reserved names; span metrics are reserved and stored");
	char buf[32];
	sw_m_fmt_double(0.1, buf);
	ok(!strcmp(buf, "0.1"), "0.1 prints as 0.1 (%s)", buf);
	sw_m_fmt_double(10, buf);
	ok(!strcmp(buf, "10"), "10 prints as 10 (%s)", buf);
	sw_m_fmt_double(0.1 + 0.2, buf);
	ok(strtod(buf, NULL) == 0.1 + 0.2, "0.1+0.2 round-trips (%s)", buf);
	sw_m_fmt_double(1.0 / 0.0, buf);
	ok(!strcmp(buf, "+Inf"), "infinity prints as +Inf");
	double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	ok(sw_m_percentile(v, 10, 50) == 5, "p50 of 1..10 is 5 (nearest rank)");
	ok(sw_m_percentile(v, 10, 90) == 9, "p90 of 1..10 is 9");
	ok(sw_m_percentile(v, 10, 99) == 10, "p99 of 1..10 is 10");
	ok(sw_m_percentile(v, 1, 50) == 1, "p50 of one value is that value");
}

static void prom(void)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	sw_prom_label_value(f, "a\"b\\c\nd");
	fputc('|', f);
	sw_prom_help_text(f, "h\\\"\n");
	fclose(f);
	ok(!strcmp(out, "a\\\"b\\\\c\\nd|h\\\\\"\\n"), "label and HELP escaping (%s)", out);
	free(out);
}

static void journal(void)
{
	char *buf = NULL;
	size_t len = 0;
	ok(!sw_m_record(&buf, &len, 'C', 1234567890123456789, 0.1, "jobs_total", "{\"a\":\"x y\"}",
			 "help\nwith \x1e", SW_M_COUNTER), "records encoded");
	const char *nl = buf ? memchr(buf, '\n', len) : NULL;
	ok(nl && buf[len - 1] == '\n' && memchr(buf, '\n', len - 1) == nl, "two records, two lines");
	ok(buf && memchr(buf, SW_M_RS, len) == buf && !memchr(buf + 1, SW_M_RS, (size_t)(nl - buf)),
	   "RS starts a record and never occurs inside one (a help text with RS is escaped)");
	struct sw_mrec r;
	const char *why = nl ? sw_m_record_parse(buf, (size_t)(nl - buf), &r) : "no line";
	ok(!why && r.type == 'H' && r.value == SW_M_COUNTER && r.json[0] == '"',
	   "HELP record parsed (%s)", why ? why : "");
	const char *second = nl + 1;
	why = sw_m_record_parse(second, (size_t)(buf + len - 1 - second), &r);
	ok(!why && r.type == 'C' && r.t_ns == 1234567890123456789 && r.value == 0.1 &&
	   !strncmp(r.name, "jobs_total ", 11) && r.json_len == 11 && !memcmp(r.json, "{\"a\":\"x y\"}", 11),
	   "sample record round-trips (%s)", why ? why : "");
	/* a record cut short, then the next writer's record glued to it */
	char glued[256];
	int n = snprintf(glued, sizeof glued, "\036C 5 7 cut_total {\"a\"\036G 9 -2.5 g {}");
	why = sw_m_record_parse(glued, (size_t)n, &r);
	ok(!why && r.type == 'G' && r.t_ns == 9 && r.value == -2.5, "a torn record spoils nothing after it");
	static const char *const refused[][2] = {
		{"C 5 7 x {}", "no RS"}, {"\036C 5 nan x {}", "a value that is not finite"},
		{"\036X 5 1 x {}", "an unknown record type"}, {"\036C 5 1 x ", "no labels"},
		{"\036C 5x 1 x {}", "a bad time"}, {"\036C 5 1 {}", "no name"}};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		ok(sw_m_record_parse(refused[i][0], strlen(refused[i][0]), &r) != NULL, "%s: refused",
		   refused[i][1]);
	free(buf);

	char t[SW_M_KIND_TARGET_MAX];
	double b[SW_M_BUCKETS_MAX], bounds[] = {0.1, 1, 2.5};
	size_t nb;
	enum sw_mkind k;
	ok(sw_m_kind_target(SW_M_HISTOGRAM, bounds, 3, t) && !strcmp(t, "histogram:0.1,1,2.5"),
	   "histogram target names its buckets (%s)", t);
	ok(sw_m_kind_parse(t, &k, b, &nb) && k == SW_M_HISTOGRAM && nb == 3 && b[2] == 2.5,
	   "histogram target read back");
	ok(sw_m_kind_target(SW_M_COUNTER, NULL, 0, t) && sw_m_kind_parse(t, &k, b, &nb) &&
	   k == SW_M_COUNTER && !strcmp(t, "counter"), "counter target");
	ok(!sw_m_kind_parse("histogram:1,1", &k, b, &nb) && !sw_m_kind_parse("meter", &k, b, &nb),
	   "foreign targets refused");
	ok(sw_m_bucket_of(bounds, 3, 0.1) == 0 && sw_m_bucket_of(bounds, 3, 0.2) == 1 &&
	   sw_m_bucket_of(bounds, 3, 9) == 3, "bucket of a value: le bounds, +Inf last");
}

static const char *line_ok =
	"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
	"{\"stringValue\":\"s\\u00e9\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"sw\"},\"spans\":["
	"{\"name\":\"a\\\"b\",\"startTimeUnixNano\":\"100\",\"endTimeUnixNano\":\"350\","
	"\"attributes\":[{\"x\":[1,-2.5e3,true,false,null]}],\"status\":{\"code\":2}},"
	"{\"name\":\"c\",\"startTimeUnixNano\":5,\"endTimeUnixNano\":5,\"status\":{\"code\":"
	"\"STATUS_CODE_OK\"}}]}]}]}";

static void otlp(void)
{
	struct sw_otlp p = {0};
	int r = sw_otlp_line(&p, line_ok, strlen(line_ok));
	ok(r == SW_OTLP_SPANS && p.nspan == 2, "span line with two spans");
	if (r == SW_OTLP_SPANS && p.nspan == 2) {
		ok(!strcmp(p.span[0].name, "a\"b") && !strcmp(p.span[0].service, "s\xc3\xa9"),
		   "names unescaped (%s, %s)", p.span[0].name, p.span[0].service);
		ok(p.span[0].end_ns - p.span[0].start_ns == 250 && p.span[0].status == SW_OTLP_ERROR,
		   "times and numeric status");
		ok(p.span[1].status == SW_OTLP_OK && p.span[1].end_ns == 5, "numeric times, named status");
	}
	int bad = 0;
	size_t n = strlen(line_ok);
	for (size_t i = 16; i < n; i++)
		bad += sw_otlp_line(&p, line_ok, i) == SW_OTLP_BAD;
	ok(bad == (int)(n - 16), "every truncation of a span line is malformed (%d of %zu)", bad, n - 16);
	const char *other = "{\"payload\":\"mentions \\\"resourceSpans\\\"\"}";
	ok(sw_otlp_line(&p, other, strlen(other)) == SW_OTLP_OTHER, "data line naming the key is other");
	ok(sw_otlp_line(&p, "plain", 5) == SW_OTLP_OTHER, "plain text is other");
	const char *sur = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\\ud800\","
			  "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"}]}]}]}";
	ok(sw_otlp_line(&p, sur, strlen(sur)) == SW_OTLP_BAD, "lone surrogate in a name is malformed");
	const char *trail = "{\"resourceSpans\":[]} x";
	ok(sw_otlp_line(&p, trail, strlen(trail)) == SW_OTLP_BAD, "trailing garbage is malformed");
	char deep[400];
	memset(deep, '[', sizeof deep);
	memcpy(deep, "{\"resourceSpans\":", 17);
	ok(sw_otlp_line(&p, deep, sizeof deep) == SW_OTLP_BAD, "deep nesting refused, no overflow");
	sw_otlp_free(&p);
}

int main(void)
{
	names();
	numbers();
	prom();
	journal();
	otlp();
	return tap_done();
}
