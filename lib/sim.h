/* sim.h — sw-sim: a swarm of real sw-agent processes under faults, and a
 * check of a filesystem's primitives.  src/sw-sim.c parses the options
 * into these structs; the modules below do the work:
 *
 *   sim_opt.c     rates, ranges, the seeded generator
 *   sim_job.c     the simulated job (`sw-sim job`) and its ledger lines
 *   sim_proc.c    spawning children, their pipes and lines, a worker's pid
 *   sim_items.c   what the run learns: items, runs, agents, faults
 *   sim_swarm.c   the run: agents, producer, chaos, lab, live view
 *   sim_report.c  the final check against the queue, and the report
 *   sim_fs.c      `sw-sim fs`: races and measurements of a directory
 *
 * The run's driver never makes a call on the workspace while faults are
 * injected: every such call is a child's (sw-agent, sw-claim, the job),
 * so a stalled mount stalls children, never the process that must heal
 * it.  Only the final check, after every fault is healed, reads the queue
 * itself. */
#ifndef SW_SIM_H
#define SW_SIM_H
#include "span.h"
#include <stdbool.h>
#include <stdint.h>

#define SIM_DIRS_MAX 16
#define SIM_AGENTS_MAX 10000

struct sim_run_opts {
	int agents;
	int jobs;                       /* -j of each agent */
	int64_t duration_ns;
	long long items;                /* 0: --rate */
	double rate;                    /* items/s; 0: the default, held back
					 * while the swarm falls behind */
	int64_t job_min_ns, job_max_ns;
	double job_fail;                /* 0..1 */
	double kill_rate, stall_rate;   /* per second */
	int64_t stall_ns;               /* a stall lasts DUR/10..DUR */
	double partition_p;             /* per minute, as Shortlist */
	int64_t partition_ns;           /* a partition lasts DUR/2..DUR */
	int64_t lat_min_ns, lat_max_ns; /* 0, 0: no latency */
	int batch;                      /* 0: not given */
	bool affinity;
	const char *dirs[SIM_DIRS_MAX];
	int ndirs;
	bool lab;
	const char *lab_script;         /* NULL: found beside the program */
	uint64_t seed;
	bool seeded;
	int64_t ttl_ns;
	int max_attempts;
	int64_t stats_every_ns;         /* 0: none */
	int64_t drain_ns;               /* 0: the default */
	const char *keep;               /* NULL: a scratch directory, removed */
	bool json;                      /* JSON even on a terminal */
	bool quiet;
	const char *spans;              /* --spans, for the agents when a file */
};

struct sim_fs_opts {
	const char *dir, *dir2;         /* dir2: NULL, or a second mount */
	int racers;
	int rounds;
	bool json;
	bool quiet;
};

/* The test hook of `sw-sim fs` (see sw-sim(1), TEST HOOK): the name of a
 * primitive to break on purpose, so that tests see the verdict fail. */
#define SIM_ENV_FS_BREAK "SW_SIM_FS_BREAK"

/* sw-sim run: returns the exit status (0: nothing lost, nothing finished
 * twice, everything finished; 1: not so; 64, 69, 70: could not run). */
int sim_run(const struct sim_run_opts *o, struct sw_span *sp);
/* sw-sim fs: 0 when sw's guarantees hold in dir, 1 when not, 64/69/73/74
 * when it could not be checked. */
int sim_fs(const struct sim_fs_opts *o, struct sw_span *sp);
#endif
