/* sim_fsrace.h — races of the primitives sw decides with, for `sw-sim fs`.
 *
 * Racer processes (half of them on each mount when two are given) meet at
 * a barrier before every round and then all try the same exclusive
 * operation at once; afterwards the directory is read to see who really
 * won.  A round is right when exactly one racer says it won and the disk
 * agrees (the file holds that racer's mark).  The primitives:
 *
 *   rename      every racer renames one source to a name of its own (a
 *               claim): one succeeds, the others find the source gone
 *   excl        open(O_CREAT|O_EXCL) of one name
 *   link        link(2) of each racer's file to one name (a winner told
 *               EEXIST is recognised by inode, as sw does)
 *   mkdir       mkdir(2) of one name
 *   noreplace   renameat2(RENAME_NOREPLACE) of each racer's file to one
 *               name (as sw_rename_noreplace, with its fallback)
 *
 * SW_SIM_FS_BREAK=PRIM (a test hook) replaces PRIM by a broken version
 * (rename by copy-then-unlink, excl without O_EXCL, link over the old
 * name, mkdir taking EEXIST as success, noreplace by a plain rename), so
 * that the tests see the verdict fail and name the primitive. */
#ifndef SW_SIM_FSRACE_H
#define SW_SIM_FSRACE_H
#include <stdbool.h>

enum sim_prim { PRIM_RENAME, PRIM_EXCL, PRIM_LINK, PRIM_MKDIR, PRIM_NOREPLACE, PRIM_N };
extern const char *const sim_prim_names[PRIM_N];

struct sim_race {
	int rounds, one, several, none, wrong, errors;
	int first_errno;
	char detail[256];       /* the first bad round, in words; or why the
				 * race could not be run */
};

/* Races prim in a new subdirectory of the scratch directory, open as
 * fd[0] (and as fd[1] on the second mount when nmounts is 2).  0, or -1
 * when the race could not be run: why in r->detail, or else errno. */
int sim_race_run(enum sim_prim prim, const int fd[2], int nmounts, int racers, int rounds, bool broken,
		 struct sim_race *r);
#endif
