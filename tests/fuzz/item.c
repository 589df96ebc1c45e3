/* item — what `sw-claim add` makes of its stdin (and `sw-shard split
 * --enqueue` of its records): JSON Lines, each parsed with sw_json_parse
 * and built into an item by sw_item_new (lib/queue.h) with add's
 * defaults; and with --lines each line as a string payload. */
#include "fuzz.h"
#include "id.h"
#include "json.h"
#include "queue.h"

static const struct sw_item_defaults defaults = {
	.priority = SW_PRIO_DEFAULT, .max_attempts = SW_ATTEMPTS_DEFAULT,
	.timeout_ns = SW_TIMEOUT_DEFAULT_NS,
};

static void check_item(const json_t *item)
{
	fz_check(json_is_object(item));
	const char *id = sw_json_str(item, "id");
	fz_check(id && !sw_name_problem(id));
	fz_check(!strcmp(sw_json_str(item, "queue"), SW_QUEUE_DEFAULT));
	int64_t prio = sw_json_int(item, "priority", -1);
	fz_check(prio >= 0 && prio <= SW_PRIO_MAX);
	fz_check(sw_json_int(item, "attempt", -1) == 0);
	int64_t maxa = sw_json_int(item, "max_attempts", -1);
	fz_check(maxa >= 1 && maxa <= 1000000);
	fz_check(sw_json_int(item, "timeout", -1) >= 1);
	const char *role = sw_json_str(item, "role");
	fz_check(!json_object_get(item, "role") || (role && !sw_name_problem(role)));
	json_t *after = json_object_get(item, "after"), *e;
	size_t i;
	fz_check(!after || (json_is_array(after) && json_array_size(after) > 0));
	json_array_foreach(after, i, e)
		fz_check(json_is_string(e) && !sw_name_problem(json_string_value(e)));
	size_t len;
	char *line = sw_json_line(item, &len);
	fz_check(line && len <= SW_ITEM_MAX_DEFAULT + 1);
	free(line);
}

static bool one_line(const char *line, size_t len, void *arg)
{
	(void)arg;
	struct sw_err err = {0}, why = {0};
	if (!len)   /* add skips empty lines */
		return true;
	json_t *spec = sw_json_parse(line, len, &err);
	if (spec) {
		json_t *item = sw_item_new(spec, &defaults, SW_QUEUE_DEFAULT, &why);
		if (item)
			check_item(item);
		else
			fz_check(why.msg[0] && why.code == 65);
		json_decref(item);
		json_decref(spec);
	} else {
		fz_check(err.msg[0] && err.code == 65);
	}
	/* --lines: any valid UTF-8 line is a payload, and always an item */
	if (sw_utf8_valid(line, len)) {
		spec = json_pack("{s:s%}", "payload", line, len);
		fz_check(spec);
		json_t *item = sw_item_new(spec, &defaults, SW_QUEUE_DEFAULT, &why);
		fz_check(item);
		check_item(item);
		json_decref(item);
		json_decref(spec);
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_lines(data, size, true, one_line, NULL);
	return 0;
}
