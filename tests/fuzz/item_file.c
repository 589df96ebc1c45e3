/* item_file — item files as read from the workspace (queues/<q>/pending/…,
 * claimed/<id>.<token>.<expiry>, done/<id>, …), which any host, user or
 * damaged disk may have written: sw_item_check, the check every reader
 * runs before it trusts a stored item.
 *
 * The input is "ID\nFILE": the id line as a directory entry would give
 * it (a file's name is its identity, never its content), then the file. */
#include "fuzz.h"
#include "id.h"
#include "json.h"
#include "queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl)
		return 0;
	char *id = fz_str(data, (size_t)(nl - data));
	size_t len = size - (size_t)(nl + 1 - data);
	char *buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	memcpy(buf, nl + 1, len);
	const char *why = sw_item_check(buf, len, id);
	if (!why) {
		/* a stored item that passed names itself by its file's name and
		 * holds only fields in range */
		json_t *item = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
		fz_check(item && !sw_name_problem(id) && !strcmp(sw_json_str(item, "id"), id));
		int64_t prio = sw_json_int(item, "priority", -1);
		fz_check(prio >= 0 && prio <= SW_PRIO_MAX);
		fz_check(sw_json_int(item, "attempt", -1) >= 0 && sw_json_int(item, "max_attempts", 0) >= 1);
		json_decref(item);
	}
	free(buf);
	free(id);
	return 0;
}
