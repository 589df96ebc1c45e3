/* agent_run_int.h — what the modules of `sw-agent run`'s engine share;
 * programs use agent_run.h.
 *
 * agent_run.c      the run's state, renewals, heartbeats, stopping, the
 *                  loop, and sw_agent_run
 * agent_slot.c     one job slot's command: its environment and spawning,
 *                  its pipes, its process tree
 * agent_claim.c    claiming and starting items and batches, --affinity
 * agent_outcome.c  what each item's command came to, told to the queue
 *                  (one item's, a batch's)
 * agent_out.c      the result lines, the commands' stderr, the status line
 * agent_joblog.c   --joblog
 *
 * Their functions that cross modules are named run_*: not libsw's API. */
#ifndef SW_AGENT_RUN_INT_H
#define SW_AGENT_RUN_INT_H
#include "agent_run.h"
#include "affinity.h"
#include "id.h"
#include "proc.h"
#include "queue.h"
#include "waiter.h"
#include <limits.h>
#include <sys/types.h>
#include <time.h>

#define ERR_TAIL 2048             /* stderr tail kept as the error */

/* A claimed item: a slot's only one, or one of its batch (--batch). */
struct bitem {
	json_t *item;             /* owned */
	const char *id;           /* in item */
	uint64_t token;
	long long attempt;
	int64_t ttl_ns;           /* its lease */
	bool lost;                /* a renewal found its claim gone */
};

struct slot {
	pid_t pid;                /* 0: free */
	struct bitem *b;          /* its items (owned): one, or a batch */
	size_t nb;
	/* the first item's, which logs, --tag and the span name */
	json_t *item;
	const char *id;
	uint64_t token;
	long long attempt;
	char batch_id[17];        /* --batch: SW_BATCH_ID, which says whose a process is */
	size_t outcap, outmax;    /* s->out's size, and the most it may grow to */
	int fin, fout, ferr;      /* our ends of the child's stdin/stdout/stderr */
	char *in;
	size_t inlen, inoff;
	char *out;
	size_t outlen;
	bool truncated;
	char err[2 * ERR_TAIL];
	size_t errlen;
	char *line;               /* stderr since its last newline, not passed on yet */
	size_t linelen;
	int flog;                 /* --log-dir: this attempt's log, or -1 */
	char *logname;            /* its path */
	char **argv;              /* the command line, when {} {id} {attempt} were replaced */
	char *deps_path;          /* SW_DEPS_RESULTS: what the item waited for, or NULL */
	long long seq;            /* its number among the commands this agent started */
	int64_t renew_at, started_ns, kill_at;
	bool exited;              /* the command has been reaped: status says how */
	bool group_gone;          /* its process group is empty: its id may be reused */
	bool killed;              /* SIGKILL sent, and sent again to what is left */
	/* "released" (told to the queue once the tree is gone) or "lost" (the
	 * claim is someone else's): the command's own outcome is not reported */
	const char *abandoned;
	int status;
	struct sw_span sp;
};

/* Lines on their way to stdout or stderr (ob_add, agent_out.c). */
struct obuf {
	int fd;
	char *b;
	size_t len, cap;
	bool pipe;                /* a pipe or socket: written as poll allows */
	bool lost;                /* the reader went away */
};

struct run {
	struct sw_agent_run_opts *o;   /* &oc */
	struct sw_agent_run_opts oc;  /* a copy: a lost stdout makes it quiet */
	struct sw_ws *ws;
	struct sw_queue q;
	struct sw_span *sp;
	char id[SW_NAME_MAX + 1];
	json_t *rec;
	int64_t agent_ttl_ns;
	struct slot *slots;
	struct slot *fin;         /* tree gone, outcome not yet told */
	size_t nfin;              /* how many: they wait to commit together */
	int64_t fin_since;        /* since when the first of them waits */
	/* --batch-wait: items claimed for the next batch, which starts when
	 * it is full or at gather_until */
	struct bitem *gb;
	size_t gn;
	int64_t gather_until, gather_renew_at;
	struct slot **pick;       /* scratch: the slots one signal goes to */
	struct sw_guard g;
	bool orphaned;            /* the guardian was killed */
	bool stray_warned;        /* about a process that is no item's */
	int64_t next_check;       /* look at trees that outlived their command */
	int running;
	int sfd;
	struct sw_waiter w;
	char **env;               /* environ without our variables, + OUR_VARS free */
	char exe[PATH_MAX];       /* the command found in PATH at the start, or "" */
	size_t nenv;
	long long claimed, done, failed, released, lost;
	int stop_sig;             /* the first SIGTERM/SIGINT */
	bool draining, forced;
	int64_t drain_deadline;
	int64_t next_beat, next_poll, poll_ns, idle_since, next_progress, started_ns;
	int64_t next_lead;        /* when a waiting non-watcher tries to lead */
	bool claims_dirty;        /* the record's "claims" are out of date */
	struct obuf out;          /* result lines not yet written */
	struct obuf err;          /* the commands' stderr lines not yet written */
	int logdir;               /* --log-dir, or -1 */
	int joblog;               /* --joblog, or -1 */
	long long seq;            /* commands started: the joblog's Seq */
	bool subst;               /* the command's words hold {} {id} or {attempt} */
	bool payload_arg;         /* ... {}: the payload is an argument, not stdin */
	char logpath[PATH_MAX];   /* its absolute path, for the result lines */
	int64_t next_record;      /* rewritten at most once a second */
	/* --affinity: the ring of the queue's agents, read again when the
	 * agents directory changed and every third of the heartbeat ttl (a
	 * death changes nothing there) */
	struct sw_aff_ring ring;
	struct sw_affinity aff;
	int64_t ring_loaded, ring_at, steal_at;
	struct timespec agents_mtime;
	bool progress, want_claim, empty;
	int once_status;
	int exit_code;
	bool q_open, w_open;       /* for run_free */
	/* why the run must stop at once (code 0: it need not) */
	struct sw_err fail;
};

/* ---- agent_run.c ---- */
void run_out_of_memory(struct run *r);
int run_free_slots(const struct run *r);
bool run_may_claim(const struct run *r);

/* ---- agent_slot.c ---- */
int run_env_init(struct run *r);
int run_payload_bytes(const json_t *item, char **buf, size_t *len);
void run_slot_reset(struct slot *s);
void run_slot_clear(struct slot *s);
void run_item_span(struct run *r, struct slot *s);
int run_spawn_child(struct run *r, struct slot *s);
void run_read_out(struct run *r, struct slot *s);
void run_read_err(struct run *r, struct slot *s);
void run_write_in(struct slot *s);
bool run_holds_claim(const struct slot *s);
bool run_group_alive(struct slot *s);
struct slot *run_command_slot(struct run *r, pid_t pid);
struct slot *run_owner_of(struct run *r, pid_t pid);
void run_signal_trees(struct run *r, struct slot *const *t, size_t n, int sig);
void run_stop_trees(struct run *r, struct slot *const *t, size_t n, int64_t now);
void run_kill_all(struct run *r);

/* ---- agent_claim.c ---- */
int run_open_log_dir(struct run *r);
int64_t run_renew_time(const struct bitem *b, size_t n, int64_t now);
void run_release_items(struct run *r, struct bitem *b, size_t n);
void run_claim_some(struct run *r);

/* ---- agent_outcome.c ---- */
json_t *run_utf8_string(const char *s, size_t n);
void run_finish_group(struct run *r);

/* ---- agent_out.c ---- */
void run_ob_init(struct obuf *b, int fd);
void run_ob_write(struct run *r, struct obuf *b, bool all);
void run_pass_err(struct run *r, struct slot *s, const char *p, size_t n);
void run_pass_end(struct run *r, struct slot *s);
void run_report(struct run *r, const struct slot *s, const struct bitem *b, const char *state,
		int code, const char *err);
void run_progress(struct run *r, int64_t now, bool last);

/* ---- agent_joblog.c ---- */
int run_open_joblog(struct run *r);
void run_joblog_line(struct run *r, const struct slot *s);
#endif
