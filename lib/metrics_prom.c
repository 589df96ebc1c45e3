#include "metrics_prom.h"
#include "metrics_model.h"
#include <string.h>

void sw_prom_label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\') fputs("\\\\", f);
		else if (*v == '"') fputs("\\\"", f);
		else if (*v == '\n') fputs("\\n", f);
		else fputc(*v, f);
	}
}

void sw_prom_help_text(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\') fputs("\\\\", f);
		else if (*v == '\n') fputs("\\n", f);
		else fputc(*v, f);
	}
}

void sw_prom_family(struct sw_prom *w, const char *name, const char *type, const char *help)
{
	if (!strcmp(w->family, name))
		return;
	snprintf(w->family, sizeof w->family, "%s", name);
	fprintf(w->f, "# HELP %s ", name);
	sw_prom_help_text(w->f, help && *help ? help : "recorded by sw-metrics");
	fprintf(w->f, "\n# TYPE %s %s\n", name, type);
}

void sw_prom_sample(struct sw_prom *w, const char *name, const json_t *labels, const char *le,
		    double value)
{
	const char *key;
	json_t *v;
	bool first = true;
	fputs(name, w->f);
	json_object_foreach((json_t *)labels, key, v) {
		const char *s = json_string_value(v);
		if (!s)
			continue;
		fprintf(w->f, "%s%s=\"", first ? "{" : ",", key);
		sw_prom_label_value(w->f, s);
		fputc('"', w->f);
		first = false;
	}
	if (le)
		fprintf(w->f, "%sle=\"%s\"", first ? "{" : ",", le);
	if (!first || le)
		fputc('}', w->f);
	char num[32];
	sw_m_fmt_double(value, num);
	fprintf(w->f, " %s\n", num);
}
