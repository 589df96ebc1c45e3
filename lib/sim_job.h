/* sim_job.h — the simulated job of sw-sim run, and the ledger it keeps.
 *
 * Every item of a simulated swarm is run by `sw-sim job`, which sw-agent
 * starts like any command.  The job appends two lines to the ledger file
 * of its agent ($SW_SIM_LEDGER/$SW_AGENT_ID, opened O_APPEND, one write
 * a line, on host-local disk):
 *
 *   S <id> <token> <attempt> <host> <pid> <unix-ns>            started
 *   E <id> <token> <attempt> <host> <pid> <unix-ns> ok|fail    ended
 *
 * then sleeps its job time, and exits 0 (printing
 * {"token":T,"attempt":A,"agent":"ID"}, which becomes the done item's
 * result) or 1.  Its time and outcome depend only on the seed, the item's
 * number (its payload) and the attempt (SW_SIM_JOB: "MIN_NS MAX_NS
 * FAIL_PPM SEED"), so a run is repeatable.  A run cut short (its agent
 * killed) has an S line and no E line.  The ledger is what sw-sim checks
 * the queue against: which runs there were, which succeeded, whose done
 * the queue kept. */
#ifndef SW_SIM_JOB_H
#define SW_SIM_JOB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_ENV_LEDGER "SW_SIM_LEDGER"
#define SIM_ENV_JOB "SW_SIM_JOB"
#define SIM_ID_MAX 200          /* as SW_NAME_MAX */
#define SIM_LINE_MAX 512

struct sim_ledger_line {
	char kind;              /* 'S' or 'E' */
	char id[SIM_ID_MAX + 1];
	uint64_t token;
	int64_t attempt;
	int64_t pid;
	int64_t ns;
	bool ok;                /* E: the job succeeded */
};

/* The job's parameters, as sw-sim run passes them in SW_SIM_JOB. */
struct sim_job_params {
	int64_t min_ns, max_ns;
	uint32_t fail_ppm;      /* failures per million runs */
	uint64_t seed;
};

/* Formats params for the environment (buf of at least 96 bytes). */
void sim_job_env(const struct sim_job_params *p, char *buf, size_t n);
/* Parses SW_SIM_JOB: 0 or -1. */
int sim_job_params_parse(const char *s, struct sim_job_params *p);
/* Parses one ledger line (without its newline): 0, or -1 when it is not
 * one (a torn or foreign line). */
int sim_ledger_parse(const char *line, size_t len, struct sim_ledger_line *out);
/* The job itself: `sw-sim job`.  Returns its exit status. */
int sim_job_main(void);
#endif
