/* sim_int.h — the state of one `sw-sim run`, shared by sim_swarm.c (the
 * loop, the agents, the producer), sim_chaos.c (faults and the lab) and
 * sim_report.c (live view, stats lines, the final check). */
#ifndef SW_SIM_INT_H
#define SW_SIM_INT_H
#include "sim.h"
#include "sim_items.h"
#include "sim_opt.h"
#include "sim_proc.h"
#include "proc.h"
#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#define SIM_HOSTS_MAX SIM_DIRS_MAX
#define SIM_CHILDREN 16
#define SIM_WINDOW 2048         /* latencies the live view looks at */

enum sim_phase { PH_START, PH_RUN, PH_HEAL, PH_DRAIN, PH_STOP, PH_DONE };

enum sim_child_kind { CH_ADD, CH_STATS, CH_REAP, CH_LAB };

struct sim_child {
	pid_t pid;              /* 0: free */
	enum sim_child_kind kind;
	int host;
	int in;                 /* add: its stdin, while lines are left */
	char *inbuf;
	size_t inlen, inoff;
	struct sim_lines out;   /* add, stats: its stdout */
	bool out_open;
	char *acc;              /* add: what it printed, kept until it exits */
	size_t acclen, acccap;
	long long count;        /* add: lines in the batch */
	int64_t started_ns;
	char what[64];          /* lab: the verb and its arguments */
	int lab_verb, lab_host;
	int64_t lab_arg_ns;
};

struct sim_slot {
	pid_t pid;              /* the agent's guardian; 0: none running */
	pid_t worker;           /* found when first needed */
	int host;
	int inc;                /* incarnations so far */
	int agent;              /* the current incarnation (book), -1: none */
	int64_t stop_until;     /* SIGSTOPped by us until then */
	bool stopped, killed, termed;
	int fault;              /* the stall or pause it is stopped by, or -1 */
	int64_t restart_at;     /* 0: no restart due */
};

struct sim_tail {               /* an agent's ledger, read as it grows */
	int fd;
	struct sim_lines l;
};

struct sim_stats {              /* the queue as sw-claim stats last saw it */
	long long pending, delayed, blocked, claimed, done, dead, cancelled, in_flight;
	bool valid;
	int64_t at_ns;
};

/* what the lab's links are doing */
enum { LAB_PARTITION, LAB_HEAL, LAB_DELAY };

struct sim {
	const struct sim_run_opts *o;
	struct sw_span *sp;
	struct sim_book book;
	struct sim_slot *slots;
	int nslots, nhosts;
	char dirs[SIM_HOSTS_MAX][PATH_MAX];   /* the workspace per host */
	char labsub[PATH_MAX];  /* --lab: the run's directory on mount A */
	char scratch[PATH_MAX];
	bool scratch_made;      /* made by us: removed unless --keep */
	int scratch_fd, ledger_fd, agents_fd;
	char runid[16], queue[32];
	char agent_prog[PATH_MAX], claim_prog[PATH_MAX], self_prog[PATH_MAX], lab_prog[PATH_MAX];
	char **env;             /* the children's */
	char **env_poll;        /* the agents' past the inotify budget */
	char *envadd[4];
	int inotify_agents;     /* slots below this wait with inotify */
	int sfd, ifd;
	uint64_t seed;
	struct sim_rng rng_kill, rng_stall, rng_lat, rng_part, rng_delay;
	enum sim_phase phase;
	int64_t t_start, t0, t_end, t_heal, t_stop, drain_deadline, stop_deadline;
	int next_spawn_slot;
	int64_t next_spawn;
	double rate;
	long long produced, acked, unacked_batches;
	int64_t next_produce;
	int64_t held_ns;        /* the default rate held back: the swarm fell behind */
	int next_add_host;
	struct sim_child ch[SIM_CHILDREN];
	struct sim_stats st;
	int64_t next_stats, next_live, next_stats_every;
	bool reaped_once;       /* the drain's final reap has run */
	int64_t drain_stats_after; /* only stats taken after this count */
	/* chaos */
	int64_t next_kill, next_stall, next_lat, next_part, next_delay;
	int64_t planned;        /* when the schedule gave the fault at hand */
	int64_t host_part_until[SIM_HOSTS_MAX];
	int part_fault;         /* the open partition's fault, -1: none */
	bool lab_part[2];
	int64_t lab_delay[2];
	struct sim_labcmd { int verb, host; int64_t arg_ns; } labq[32];   /* waiting their turn */
	int nlabq;
	int delay_fault[2];     /* the links' current delays, or -1 */
	int lab_failed;         /* heals that failed */
	long long applied[SIM_F_KINDS], missed[SIM_F_KINDS];
	long long restarts, exits, job_fails, runs_started, runs_ok;
	/* live */
	int64_t win_wait[SIM_WINDOW], win_done[SIM_WINDOW];
	size_t nwin_wait, nwin_done;
	long long prev_done;
	int64_t prev_done_at;
	double items_per_s;
	struct sim_tail *tails; /* by agent index */
	size_t ntails;
	FILE *events;
	bool tty, live;
	int signals;            /* SIGINT/SIGTERM so far */
	bool orphaned;
	int fatal;              /* an exit code when the run cannot go on */
	char fatal_msg[512];
	struct sw_guard *guard;
};

/* sim_swarm.c */
int64_t sim_now(void);
void sim_fatal(struct sim *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Spawns a child of kind on host's workspace with args after the
 * program (NULL-ended); lines: stdin for an add.  The child, or NULL. */
struct sim_child *sim_child_start(struct sim *s, enum sim_child_kind kind, int host, char *const *argv,
				  char *lines, size_t len);
bool sim_host_cut(const struct sim *s, int host, int64_t now);
void sim_event(struct sim *s, const char *kind, int slot, int host, int64_t at, int64_t until, bool missed);
void sim_fault_span(struct sim *s, const struct sim_fault *f);

/* Everything the ledger holds, at the end. */
void sim_ledger_finish(struct sim *s);

/* sim_chaos.c */
void sim_chaos_start(struct sim *s, int64_t now);
void sim_chaos_step(struct sim *s, int64_t now);
/* Lifts every fault: SIGCONT, heal and undelay the lab.  Returns true
 * when nothing is left to lift (the lab's commands have run). */
bool sim_chaos_lift(struct sim *s, int64_t now);
int64_t sim_chaos_next(const struct sim *s);
void sim_lab_exited(struct sim *s, struct sim_child *c, int status);
void sim_lab_next(struct sim *s);
/* The last resort: heal the lab's links synchronously. */
void sim_lab_heal_now(struct sim *s);
void sim_stop_slot(struct sim *s, int slot, int64_t until, enum sim_fault_kind kind, int64_t now);

/* sim_report.c */
void sim_live(struct sim *s, int64_t now, bool last);
void sim_stats_line(struct sim *s, int64_t now);
void sim_window_add(int64_t *win, size_t *n, int64_t v);
int sim_report(struct sim *s);
#endif
