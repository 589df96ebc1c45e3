/* journal — metrics journal records (lib/metrics_journal.h) as a fold
 * reads them from <db>.journal: one line a record, each parsed from its
 * last RS byte.  What the fold then checks with public functions (the
 * name, the labels) is checked too, and a record that passes is written
 * again with sw_m_record and must parse back the same. */
#include "fuzz.h"
#include "metrics.h"
#include "metrics_journal.h"
#include <jansson.h>
#include <math.h>

/* The canonical label set of a record's JSON as the fold builds it, or
 * NULL when the fold would skip the record. */
static char *labels_of(const struct sw_mrec *r)
{
	json_t *o = json_loadb(r->json, r->json_len, 0, NULL);
	struct sw_label l[SW_M_LABELS_MAX];
	size_t n = 0;
	char *canon = NULL;
	struct sw_err err;
	if (!json_is_object(o) || json_object_size(o) > SW_M_LABELS_MAX)
		goto out;
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		l[n] = (struct sw_label){k, json_string_value(v)};
		if (!l[n].value || sw_m_label_problem(&l[n]))
			goto out;
		n++;
	}
	canon = sw_m_labels_json(l, n, &err);
out:
	json_decref(o);
	return canon;
}

static void round_trip(const struct sw_mrec *r, const char *name, const char *labels)
{
	char *buf = NULL;
	size_t len = 0;
	struct sw_mrec r2;
	fz_check(sw_m_record(&buf, &len, r->type, r->t_ns, r->value, name, labels, NULL,
			      SW_M_COUNTER) == 0);
	fz_check(len > 0 && buf[len - 1] == '\n' && memchr(buf, '\n', len) == buf + len - 1);
	fz_check(!sw_m_record_parse(buf, len - 1, &r2));
	fz_check(r2.type == r->type && r2.t_ns == r->t_ns && r2.value == r->value);
	fz_check(!strncmp(r2.name, name, strlen(name)) && r2.name[strlen(name)] == ' ');
	fz_check(r2.json_len == strlen(labels) && !memcmp(r2.json, labels, r2.json_len));
	free(buf);
}

static bool one_record(const char *line, size_t len, void *arg)
{
	(void)arg;
	struct sw_mrec r;
	if (sw_m_record_parse(line, len, &r))
		return true;
	fz_check(strchr("CGOH", r.type) && isfinite(r.value));
	fz_check(r.name > line && r.json >= r.name && r.json + r.json_len == line + len);
	fz_check(r.json_len > 0);
	/* the name ends at a space inside the line, as the fold copies it */
	char name[SW_M_NAME_MAX + 9];
	size_t nl = strcspn(r.name, " ");
	fz_check(r.name + nl < r.json);
	if (nl >= sizeof name)
		return true;
	memcpy(name, r.name, nl);
	name[nl] = 0;
	if (sw_m_name_problem(name))
		return true;
	if (r.type == 'H') {
		json_t *h = json_loadb(r.json, r.json_len, JSON_DECODE_ANY, NULL);
		char *js = json_is_string(h) ? json_dumps(h, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		/* an H record holds the kind as its value: 1, 2 or 3 */
		if (js && (r.value == SW_M_COUNTER || r.value == SW_M_GAUGE || r.value == SW_M_HISTOGRAM)) {
			char *buf = NULL;
			size_t blen = 0;
			struct sw_mrec h2;
			fz_check(sw_m_record(&buf, &blen, 'G', r.t_ns, 0, name, "{}",
					      json_string_value(h), (enum sw_mkind)(int)r.value) == 0);
			const char *nl2 = memchr(buf, '\n', blen);
			fz_check(nl2 && !sw_m_record_parse(buf, (size_t)(nl2 - buf), &h2));
			fz_check(h2.type == 'H' && h2.value == r.value && h2.t_ns == r.t_ns);
			fz_check(h2.json_len == strlen(js) && !memcmp(h2.json, js, h2.json_len));
			free(buf);
		}
		free(js);
		json_decref(h);
		return true;
	}
	char *labels = labels_of(&r);
	if (labels)
		round_trip(&r, name, labels);
	free(labels);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_lines(data, size, false, one_record, NULL);
	return 0;
}
