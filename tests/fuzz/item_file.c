/* item_file — PENDING (not built): item files as read from the workspace
 * (queues/<q>/pending/…, claimed/<id>.<token>, done/<id>, …), which any
 * host, user or damaged disk may have written.
 *
 * Needs, from the lib/queue.c rewrite, the checker every reader runs
 * before it trusts a stored item, without a workspace:
 *   json_t *sw_item_check(const char *buf, size_t len, const char *id,
 *                         char *err, size_t errlen);
 * buf: the file's bytes; id: the id its directory entry names (a file
 * name is the identity, never its content).  The item, or NULL with the
 * reason (the caller quarantines the file).  Once it is there: move
 * item_file from FUZZ_PENDING to FUZZ_TARGETS in the Makefile.
 *
 * The input is "ID\nFILE": the id line as a directory entry would give
 * it, then the file. */
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
	char *buf = malloc(len ? len : 1), err[512];
	if (!buf)
		abort();
	memcpy(buf, nl + 1, len);
	json_t *item = sw_item_check(buf, len, id, err, sizeof err);
	if (item) {
		/* a stored item that passed is one sw_item_new could have made */
		fz_check(!sw_name_problem(id) && !strcmp(sw_json_str(item, "id"), id));
		int64_t prio = sw_json_int(item, "priority", -1);
		fz_check(prio >= 0 && prio <= SW_PRIO_MAX);
		fz_check(sw_json_int(item, "attempt", -1) >= 0 && sw_json_int(item, "max_attempts", 0) >= 1);
		size_t n;
		char *line = sw_json_line(item, &n);
		fz_check(line);
		free(line);
		json_decref(item);
	} else {
		fz_check(err[0]);
	}
	free(buf);
	free(id);
	return 0;
}
