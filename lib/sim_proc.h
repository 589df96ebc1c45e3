/* sim_proc.h — the children of sw-sim: spawning them with chosen
 * descriptors, finding an agent's worker, reading lines without blocking,
 * removing a tree. */
#ifndef SW_SIM_PROC_H
#define SW_SIM_PROC_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Spawns argv[0] (a path, or a name looked up in PATH) with envp; its
 * stdin, stdout and stderr are in, out and err (-1: /dev/null), in a
 * process group of its own when own_group (a Ctrl-C at the terminal then
 * reaches sw-sim only, which stops the swarm in order), with the signal
 * mask empty and default dispositions.  The pid, or -1 with errno. */
pid_t sim_spawn(char *const argv[], char *const envp[], int in, int out, int err, bool own_group);

/* The child of guardian whose command name (/proc/PID/comm) is comm: an
 * agent's worker.  0 when there is none (yet), -1 with errno. */
pid_t sim_worker_of(pid_t guardian, const char *comm);

/* Lines read from a descriptor as they come (a pipe, or a file that grows). */
struct sim_lines {
	int fd;
	char *buf;
	size_t len, cap;
	size_t max;             /* a longer line is cut there (and counted) */
	long long cut;
};
void sim_lines_init(struct sim_lines *l, int fd, size_t max);
/* Reads what there is and calls fn for every whole line (without its
 * newline); fn returns 0 to go on.  1 at the end of the input (a pipe
 * closed), 0 when there may be more later, -1 with errno. */
int sim_lines_read(struct sim_lines *l, int (*fn)(const char *line, size_t n, void *arg), void *arg);
/* The last piece, when the input ended without a newline. */
void sim_lines_flush(struct sim_lines *l, int (*fn)(const char *line, size_t n, void *arg), void *arg);
void sim_lines_free(struct sim_lines *l);

/* Removes dfd/name and everything below it, following no symlink.
 * 0 or -1 with errno (ENOENT counts as done). */
int sim_rmtree(int dfd, const char *name);

/* The program `name` beside this one (same directory), when it is
 * there and executable; else name itself, for a PATH look-up. */
void sim_prog_path(const char *name, char out[PATH_MAX]);

/* environ without the variables named in drop (each "NAME="), plus add
 * (each "NAME=VALUE"); NULL-ended, malloc'd (the strings are not copied). */
char **sim_env(const char *const *drop, char *const *add, size_t nadd);
#endif
