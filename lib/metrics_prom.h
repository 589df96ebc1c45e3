/* metrics_prom.h — the Prometheus text exposition format (version 0.0.4),
 * as node_exporter's textfile collector and promtool read it: one HELP and
 * one TYPE line per metric family, all of a family's samples together,
 * label values with backslash, double quote and newline escaped, no
 * timestamps. */
#ifndef SW_METRICS_PROM_H
#define SW_METRICS_PROM_H
#include <jansson.h>
#include <stdio.h>

struct sw_prom {
	FILE *f;
	char family[256];   /* the family whose HELP/TYPE was written last */
};

/* Writes HELP and TYPE unless name is the family written last. */
void sw_prom_family(struct sw_prom *w, const char *name, const char *type, const char *help);
/* name{labels[,le="le"]} value; labels a JSON object of strings (or NULL);
 * le NULL for none. */
void sw_prom_sample(struct sw_prom *w, const char *name, const json_t *labels, const char *le,
		    double value);
/* Escaped forms, written to f. */
void sw_prom_label_value(FILE *f, const char *v);
void sw_prom_help_text(FILE *f, const char *v);
#endif
