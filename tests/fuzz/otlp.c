/* otlp — span lines as sw-metrics ingest reads them from a pipe
 * (lib/metrics_otlp.h): the input is split into lines as ingest splits
 * its stdin, and one parser state serves every line, as in ingest. */
#include "fuzz.h"
#include "id.h"
#include "metrics_otlp.h"

static bool one_line(const char *line, size_t len, void *arg)
{
	struct sw_otlp *p = arg;
	int r = sw_otlp_line(p, line, len);
	fz_check(r == SW_OTLP_BAD || r == SW_OTLP_OTHER || r == SW_OTLP_SPANS);
	if (r == SW_OTLP_BAD)
		fz_check(p->why[0]);
	if (r != SW_OTLP_SPANS)
		return true;
	for (size_t i = 0; i < p->nspan; i++) {
		const struct sw_otlp_span *s = &p->span[i];
		fz_check(s->name && s->service);
		fz_check(sw_utf8_valid(s->name, strlen(s->name)));
		fz_check(sw_utf8_valid(s->service, strlen(s->service)));
		fz_check(s->start_ns >= 0 && s->end_ns >= s->start_ns);
		fz_check(s->status >= SW_OTLP_UNSET && s->status <= SW_OTLP_ERROR);
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_otlp p = {0};
	fz_lines(data, size, false, one_line, &p);
	sw_otlp_free(&p);
	return 0;
}
