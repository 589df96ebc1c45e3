/* name — the rules for names from outside: queue, lease, agent and node
 * names and ids that become file names (lib/id.h sw_name_problem), UTF-8
 * (sw_utf8_valid, checked against jansson's own validator), and metric
 * names and key=value labels (lib/metrics.h). */
#include "fuzz.h"
#include "id.h"
#include "metrics.h"
#include "metrics_ws.h"
#include <jansson.h>

static void file_name(const char *s)
{
	const char *why = sw_name_problem(s);
	size_t n = strlen(s);
	bool ok = n >= 1 && n <= SW_NAME_MAX && s[0] != '.' && s[0] != '-' && !strchr(s, '/') &&
		  !strstr(s, "..") && sw_utf8_valid(s, n);
	for (size_t i = 0; i < n; i++)
		ok &= (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
	fz_check(!why == ok);
}

static void metric_name(char *s)
{
	if (!sw_m_name_problem(s)) {
		size_t n = strlen(s);
		fz_check(n >= 1 && n <= SW_M_NAME_MAX && strncmp(s, "__", 2));
		fz_check(strspn(s, "abcdefghijklmnopqrstuvwxyz_0123456789") == n && !(*s >= '0' && *s <= '9'));
	}
	(void)sw_m_reserved(s);
	struct sw_label l;
	if (!sw_m_label_parse(s, &l)) {   /* cuts s at its '=' */
		fz_check(!sw_m_label_problem(&l) && *l.key && strlen(l.value) <= SW_M_LABEL_VALUE_MAX);
		struct sw_err err;
		char *js = sw_m_labels_json(&l, 1, &err);
		fz_check(js);
		json_t *o = json_loads(js, 0, NULL);
		fz_check(json_is_object(o) && json_object_size(o) == 1 &&
			 !strcmp(json_string_value(json_object_get(o, l.key)), l.value));
		json_decref(o);
		free(js);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* jansson takes a string only when it is valid UTF-8 */
	json_t *j = json_stringn((const char *)data, size);
	fz_check(sw_utf8_valid((const char *)data, size) == (j != NULL));
	json_decref(j);
	char *s = fz_str(data, size);
	file_name(s);
	metric_name(s);
	free(s);
	return 0;
}
