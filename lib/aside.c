#include "aside.h"
#include "atomic.h"
#include "clock.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int sw_move_aside(int dfd, const char *name, int damaged_dfd, const json_t *why, char box[SW_BOX_LEN])
{
	char rnd[9];
	sw_rand_hex(rnd, 4);
	snprintf(box, SW_BOX_LEN, "%lld.%s", (long long)(sw_now_ns() / 1000000), rnd);
	int bfd = sw_open_dir(damaged_dfd, box, true);
	if (bfd < 0)
		return -1;
	size_t len;
	char *line = sw_json_line(why, &len);
	/* the reason is a courtesy: the entry goes aside even without it */
	if (line)
		sw_replace(bfd, ".why", line, len, SW_SYNC_OFF, false);
	free(line);
	int rc = (int)SW_NOINTR(renameat(dfd, name, bfd, name));
	int e = errno;
	if (rc < 0) {
		SW_NOINTR(unlinkat(bfd, ".why", 0));
		SW_NOINTR(unlinkat(damaged_dfd, box, AT_REMOVEDIR));
	}
	close(bfd);
	errno = e;
	return rc;
}
