/* lease_version — lease version files leases/<name>/v.<seq> as read
 * from the workspace, through sw_lease_version_parse.
 *
 * The seq is the one the file name says, taken from the input's first
 * byte so both a match and a mismatch with the "seq" inside are tried. */
#include "fuzz.h"
#include "clock.h"
#include "lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint64_t seq = data[0] % 4;   /* 0 is never a version: always refused */
	struct sw_lease l;
	char vid[33];
	/* exactly the file's bytes, no NUL after them: sw_read_file adds one,
	 * the parser must not need it */
	char *buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	if (sw_lease_version_parse(buf, size - 1, seq, &l, vid) == 0) {
		fz_check(seq > 0 && l.seq == seq && l.token >= 1 && l.token <= (uint64_t)INT64_MAX);
		fz_check(memchr(l.name, 0, sizeof l.name) && memchr(l.owner, 0, sizeof l.owner));
		fz_check(memchr(vid, 0, 33));
		fz_check(l.ttl_ns >= 0 && l.ttl_ns <= SW_DURATION_MAX_NS);
		fz_check(l.expires_ns >= 0 && l.expires_ns <= SW_TIME_MAX_NS);
		/* what the parser took, sw_lease_json can always show */
		json_t *j = sw_lease_json(&l);
		fz_check(j);
		json_decref(j);
	}
	free(buf);
	return 0;
}
