/* sim_items.h — what a run learns, from its own children and files only:
 * the items sw-claim add acknowledged, the runs the jobs' ledger shows,
 * the agents started, the faults injected.  The final check (sim_report)
 * adds what the queue says at the end. */
#ifndef SW_SIM_ITEMS_H
#define SW_SIM_ITEMS_H
#include "sim_job.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_ULID_LEN 26

/* States an item was found in by the final listing, as bits. */
enum { SIM_IN_PENDING = 1, SIM_IN_CLAIMED = 2, SIM_IN_DONE = 4, SIM_IN_DEAD = 8, SIM_IN_CANCELLED = 16 };
#define SIM_IN_FINISHED (SIM_IN_DONE | SIM_IN_DEAD | SIM_IN_CANCELLED)

struct sim_item {
	char id[SIM_ULID_LEN + 1];
	bool acked;             /* an add that exited 0 printed it */
	bool listed_twice;      /* the listing found it in two places */
	uint8_t states;         /* SIM_IN_* from the final listing */
	uint16_t done_reports;  /* agents' lines saying done, or dead */
	uint16_t dead_reports;
	uint32_t runs, runs_ok;
	int64_t added_ns;       /* when the add was acknowledged (live view) */
	int64_t created_ns;     /* created_at from the listing */
	int64_t first_start_ns; /* its first run's start (ledger) */
	int64_t finished_ns;    /* done_at / dead_at / cancelled_at (listing) */
	int64_t attempt;        /* the item's attempt at the end */
	uint64_t result_token;  /* a done item's result: the run that did it */
	int64_t result_attempt;
	bool has_result;
};

struct sim_run {
	int item;               /* index, or -1 for an id not ours */
	int agent;
	uint64_t token;
	int64_t attempt;
	int64_t start_ns, end_ns;   /* end 0: cut short */
	bool ok;
};

struct sim_agent {
	char id[64];
	int slot, host, inc;
	int64_t start_ns, end_ns;
	int *runs;              /* indexes into runs, in order */
	size_t nruns, caprun;
	int prev;               /* this slot's previous incarnation, or -1 */
};

enum sim_fault_kind { SIM_F_KILL, SIM_F_STALL, SIM_F_LATENCY, SIM_F_PARTITION, SIM_F_DELAY, SIM_F_KINDS };
extern const char *const sim_fault_names[SIM_F_KINDS];

struct sim_fault {
	enum sim_fault_kind kind;
	int slot;               /* -1 for a host's fault */
	int agent;              /* the incarnation hit, or -1 */
	int host;
	int64_t at_ns, end_ns;  /* end: when it was lifted (kill: at) */
	int64_t delay_ns;       /* SIM_F_DELAY: the link's delay */
};

struct sim_book {
	struct sim_item *items;
	size_t nitems, capitems;
	int *slots;             /* open addressing: index+1, 0 empty */
	size_t nslots;
	struct sim_run *runs;
	size_t nruns, capruns;
	struct sim_agent *agents;
	size_t nagents, capagents;
	struct sim_fault *faults;
	size_t nfaults, capfaults;
	long long ledger_bad;   /* lines that were not ledger lines */
	long long foreign;      /* ids that are no item of ours */
};

void sim_book_free(struct sim_book *b);
/* The item with this id, added when create; -1 when absent (or not an id
 * of the queue's form, counted as foreign) or out of memory. */
int sim_item_find(struct sim_book *b, const char *id, bool create);
/* A new agent incarnation: its index, or -1. */
int sim_agent_new(struct sim_book *b, const char *id, int slot, int host, int inc, int prev, int64_t now);
/* The agent whose id is name among the incarnations of one slot, from
 * its last (an index, or -1) back: -1 when none. */
int sim_agent_by_id(const struct sim_book *b, int last, const char *name);
/* One ledger line of agent a: a run started or ended.  0, or -1 out of
 * memory. */
int sim_book_ledger(struct sim_book *b, int agent, const struct sim_ledger_line *l);
int sim_fault_add(struct sim_book *b, const struct sim_fault *f);

/* Percentiles of n values (sorted in place): p in [0, 100]. */
int64_t sim_percentile(int64_t *v, size_t n, double p);
#endif
