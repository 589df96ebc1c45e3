/* aside.h — moving an entry that failed a check out of the way, so that
 * readers go on and a person can look at it later.
 *
 * dfd/name, whatever it is (a file, a directory, a symlink, a FIFO), is
 * renamed, never followed or opened, into a new box
 *   <damaged>/<unix ms>.<8 hex>/<name>
 * beside a file .why holding one JSON line: what the caller says about it
 * (at least its name and the reason).  The box's name sorts by time and
 * tells when it was moved. */
#ifndef SW_ASIDE_H
#define SW_ASIDE_H
#include <jansson.h>

#define SW_BOX_LEN 48

/* 0 with the box's name in box, or -1 with errno (ENOENT: the entry was
 * gone meanwhile; nothing is left behind then). */
int sw_move_aside(int dfd, const char *name, int damaged_dfd, const json_t *why, char box[SW_BOX_LEN]);
#endif
