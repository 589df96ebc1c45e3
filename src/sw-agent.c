/* sw-agent — agents with roles and detected hardware, their heartbeats,
 * and `run`: the claim -> exec -> renew -> done/fail loop that turns any
 * command into a queue consumer without a master.  See sw-agent(1); the
 * registry is lib/agent.c, the run engine lib/agent_run.c (its modules
 * listed in lib/agent_run_int.h), the queue lib/queue.c. */
#include "affinity.h"
#include "agent.h"
#include "agent_run.h"
#include "clock.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include "cmd.h"
#include "opt.h"
#include "owner.h"
#include "proc.h"
#include "queue.h"
#include "span.h"
#include "waiter.h"
#include "ws.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static const char usage[] =
"usage: sw-agent VERB [options] [args]\n"
"\n"
"  register [-q Q] [--id ID] [--roles R,...] [--heartbeat-ttl DUR] [--pid PID] [--label K=V]...\n"
"                       record this agent with its detected hardware; with --pid,\n"
"                       it is dead as soon as process PID is gone\n"
"  heartbeat ID         mark agent ID alive now (1: no such agent)\n"
"  deregister ID        remove agent ID's record (1: no such agent)\n"
"  list [--alive|--dead] [--table]\n"
"                       agents as JSON Lines (a table with --table or on a terminal)\n"
"  reap [--force ID...] forget dead agents and free their claims (an agent on this\n"
"                       host whose process is gone is dead at once); expired claims\n"
"                       back to pending; --force ID: forget agent ID, alive or not\n"
"  run [options] -- COMMAND [ARGS...]\n"
"                       register, then claim items and run COMMAND for each, the\n"
"                       payload on its stdin, renewing the claim until it and\n"
"                       every process it started have exited\n"
"      -q, --queue Q      queue (default $SW_QUEUE, else \"default\")\n"
"      --roles R,...      claim only items of these roles (and record them)\n"
"      -j, --jobs N       up to N items at once (default 1)\n"
"      --ttl DUR          claim lease (default: the item's timeout)\n"
"      --heartbeat-ttl DUR  the agent is dead this long after its last heartbeat\n"
"                         (default 30s; it heartbeats every third of it)\n"
"      --max-items N      claim at most N items, then drain and exit\n"
"      --idle-exit DUR    exit when nothing was claimable for DUR and nothing\n"
"                         is claimed or in flight in the queue\n"
"      --once             one item (one batch); exit with COMMAND's status (75: none)\n"
"      --batch N          up to N items per command: on its stdin as JSON Lines (one\n"
"                         item object a line); it may print {\"id\":...,\"ok\":true,\n"
"                         \"result\":...} or {\"id\":...,\"ok\":false,\"error\":...} per\n"
"                         item, the others take its exit status\n"
"      --batch-wait DUR   with fewer than N claimable, wait this long for more (0)\n"
"      --affinity         items of this agent's keys first: a key belongs to one of the\n"
"                         live agents of the queue and roles (sw-shard's ring over\n"
"                         their ids, as its @agents shows); others' keys once\n"
"                         they have waited --steal-after; no key: anyone's\n"
"      --steal-after DUR  take another agent's keyed item after it waited DUR (10s)\n"
"      --grace DUR        on SIGTERM/SIGINT, let items finish this long (30s)\n"
"      --poll DUR         look for work at least this often (default $SW_POLL,\n"
"                         else 1s on a network filesystem, 30s locally)\n"
"      --tag              put the item id and a tab before each line the command\n"
"                         writes to stderr (which is passed through)\n"
"      --log-dir DIR      keep each attempt's stderr in DIR/ID.ATTEMPT.log\n"
"      --joblog [+]FILE   a line per command run, in GNU parallel's joblog format\n"
"                         (+FILE: appended to, else emptied first)\n"
"      {} {id} {attempt}  in ARGS: the payload (then not on stdin), the item id,\n"
"                         the attempt number; never through a shell\n"
"      --id ID  --label K=V\n"
"\n"
"common options:\n"
"  -d, --dir DIR        workspace (default $SW_DIR, else $XDG_STATE_HOME/sw)\n"
"  --spans[=DEST]       write an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results, no progress line, nothing for an answer (1, 75)\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"exit: 0 ok, 1 no such agent, 64 usage, 65 bad data, 69 workspace or COMMAND\n"
"      unavailable, 70 internal error, 73 cannot create (--log-dir, --joblog),\n"
"      74 I/O error, 75 nothing to claim (--once), 77 permission denied;\n"
"      run --once passes COMMAND's exit status through (128+N: killed by signal N);\n"
"      run stopped by a second SIGTERM/SIGINT exits 128+N (a third SIGKILLs)\n";

enum {
	O_ID = SW_OPT_FIRST_FREE, O_ROLES, O_TTL, O_LABEL, O_ALIVE, O_DEAD, O_TABLE,
	O_MAXITEMS, O_IDLE, O_ONCE, O_GRACE, O_POLL, O_HBTTL, O_PID, O_FORCE, O_TAG, O_LOGDIR, O_JOBLOG,
	O_BATCH, O_BATCHWAIT, O_AFFINITY, O_STEAL
};

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"queue", required_argument, 0, 'q'},
	{"jobs", required_argument, 0, 'j'},
	{"id", required_argument, 0, O_ID},
	{"roles", required_argument, 0, O_ROLES},
	{"ttl", required_argument, 0, O_TTL},
	{"label", required_argument, 0, O_LABEL},
	{"alive", no_argument, 0, O_ALIVE},
	{"dead", no_argument, 0, O_DEAD},
	{"table", no_argument, 0, O_TABLE},
	{"max-items", required_argument, 0, O_MAXITEMS},
	{"idle-exit", required_argument, 0, O_IDLE},
	{"once", no_argument, 0, O_ONCE},
	{"grace", required_argument, 0, O_GRACE},
	{"poll", required_argument, 0, O_POLL},
	{"heartbeat-ttl", required_argument, 0, O_HBTTL},
	{"pid", required_argument, 0, O_PID},
	{"force", no_argument, 0, O_FORCE},
	{"tag", no_argument, 0, O_TAG},
	{"log-dir", required_argument, 0, O_LOGDIR},
	{"joblog", required_argument, 0, O_JOBLOG},
	{"batch", required_argument, 0, O_BATCH},
	{"batch-wait", required_argument, 0, O_BATCHWAIT},
	{"affinity", no_argument, 0, O_AFFINITY},
	{"steal-after", required_argument, 0, O_STEAL},
	{0, 0, 0, 0}
};

#define MAX_ROLES 64

struct opts {
	/* what run takes, filled here and passed on as is (lib/agent_run.h);
	 * register, list and reap use its queue, id, roles, labels, ttls and
	 * quiet too.  run.steal_after_ns is -1 until check(): not given;
	 * run.roles points at roles */
	struct sw_agent_run_opts run;
	bool queue_given;         /* -q: register records it (a ring's member) */
	char *roles[MAX_ROLES];
	long pid;                 /* register --pid; 0: none */
	bool force;               /* reap --force */
	bool alive, dead, table;
	const char *arg;          /* the verb's first argument (an agent id) */
	char **ids;               /* reap --force: the agent ids */
	int nids;
};

/* ---- helpers ---------------------------------------------------------- */

static void print(const struct opts *o, const json_t *j)
{
	/* one write per line, flushed: lines of an agent killed a moment later
	 * are not lost in a buffer */
	if (o->run.quiet)
		return;
	if (sw_json_print(j) < 0 || fflush(stdout) == EOF)
		sw_die(EX_IOERR, "writing output: %s", strerror(errno));
}

static int split_roles(struct sw_cmd *c, struct opts *o, char *list)
{
	o->run.nroles = 0;
	for (char *save = NULL, *r = strtok_r(list, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		if (o->run.nroles == MAX_ROLES)
			return sw_cmd_err(c, EX_USAGE, "too many roles (at most %d)", MAX_ROLES);
		int rc = sw_cmd_name(c, "role", r);
		if (rc)
			return rc;
		o->roles[o->run.nroles++] = r;
	}
	return 0;
}

static int add_label(struct sw_cmd *c, struct opts *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return sw_cmd_err(c, EX_USAGE, "bad label '%.60s': want KEY=VALUE", kv);
	char key[256];
	snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
	json_t *v = json_string(eq + 1);
	if (!v || !sw_utf8_valid(key, strlen(key))) {
		json_decref(v);
		return sw_cmd_err(c, EX_DATAERR, "label '%.60s' is not valid UTF-8", kv);
	}
	if (!o->run.labels)
		o->run.labels = json_object();
	json_object_set_new(o->run.labels, key, v);
	return 0;
}

/* "<workspace>/agents/<id>.json: <reason>": an error that names the file,
 * so that a permission problem says where it is. */
static const char *agent_errstr(const struct sw_ws *ws, const char *id, int e)
{
	static char buf[PATH_MAX + 2 * SW_NAME_MAX + 128];
	snprintf(buf, sizeof buf, "%s/%s/%s.json: %s", ws->path, SW_AGENT_DIR, id, strerror(e));
	return buf;
}

/* "<workspace>/queues/<q>", for errors about a queue as a whole. */
static const char *queue_path(const struct sw_ws *ws, const char *q)
{
	static char buf[PATH_MAX + SW_NAME_MAX + 16];
	snprintf(buf, sizeof buf, "%s/queues/%s", ws->path, q);
	return buf;
}

static void put_record(struct sw_ws *ws, const char *id, const json_t *rec)
{
	if (sw_agent_put(ws, id, rec) < 0)
		sw_die(sw_ex_errno(errno), "cannot write agent record %s", agent_errstr(ws, id, errno));
}

/* ---- register, heartbeat, deregister --------------------------------- */

/* "No such agent" is an answer (1), not an error: --quiet silences it. */
static int no_agent(const struct opts *o, const char *id)
{
	if (!o->run.quiet)
		sw_warn("no agent '%s'", id);
	return SW_EX_FALSE;
}

static int v_register(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	char id[SW_NAME_MAX + 1];
	json_t *hw = sw_agent_hw();
	if (o->run.id)
		snprintf(id, sizeof id, "%s", o->run.id);
	else
		sw_agent_default_id(id, hw);
	sw_span_str(sp, "sw.agent.id", id);
	json_t *rec = sw_agent_record(id, (const char *const *)o->run.roles, o->run.nroles, o->run.labels, hw,
				       o->run.hb_ttl_ns ? o->run.hb_ttl_ns : SW_AGENT_TTL_DEFAULT_NS);
	json_object_del(rec, "pid");   /* the registering process is gone soon */
	if (o->queue_given)   /* it claims from there: a member of its rings */
		json_object_set_new(rec, "queue", json_string(o->run.queue));
	if (o->pid) {
		/* the process that is the agent (the script that heartbeats):
		 * once it is gone, on this host, the agent is dead at once */
		char own[SW_OWNER_LEN];
		sw_owner_of((pid_t)o->pid, own);
		if (!*own)
			sw_die(EX_USAGE, "--pid %ld: no such process on this host", o->pid);
		json_object_set_new(rec, "pid", json_integer(o->pid));
		json_object_set_new(rec, "owner", json_string(own));
	}
	put_record(ws, id, rec);
	json_t *out = sw_agent_get(ws, id);
	print(o, out ? out : rec);
	json_decref(out);
	json_decref(rec);
	json_decref(hw);
	return 0;
}

static int v_heartbeat(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	const char *id = o->arg;
	if (sw_cmd_name(c, "id", id))
		sw_die(EX_DATAERR, "%s", c->err.msg);
	sw_span_str(sp, "sw.agent.id", id);
	if (sw_agent_heartbeat(ws, id) < 0) {
		if (errno == ENOENT)
			return no_agent(o, id);
		sw_die(sw_ex_errno(errno), "cannot heartbeat %s", agent_errstr(ws, id, errno));
	}
	json_t *rec = sw_agent_get(ws, id);
	if (rec)
		print(o, rec);
	json_decref(rec);
	return 0;
}

static int v_deregister(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	const char *id = o->arg;
	if (sw_cmd_name(c, "id", id))
		sw_die(EX_DATAERR, "%s", c->err.msg);
	sw_span_str(sp, "sw.agent.id", id);
	json_t *rec = sw_agent_get(ws, id);
	if (sw_agent_remove(ws, id) < 0) {
		json_decref(rec);
		if (errno == ENOENT)
			return no_agent(o, id);
		sw_die(sw_ex_errno(errno), "cannot deregister %s", agent_errstr(ws, id, errno));
	}
	if (rec) {
		json_object_set_new(rec, "deregistered", json_true());
		print(o, rec);
	}
	json_decref(rec);
	return 0;
}

/* ---- list and reap ---------------------------------------------------- */

struct list_arg { const struct opts *o; json_t *rows; };

static int list_one(json_t *rec, void *arg)
{
	struct list_arg *a = arg;
	bool alive = json_is_true(json_object_get(rec, "alive"));
	if ((a->o->alive && !alive) || (a->o->dead && alive))
		return 0;
	json_array_append(a->rows, rec);
	return 0;
}

static int by_id(const void *x, const void *y)
{
	const char *a = sw_json_str(*(json_t *const *)x, "id"), *b = sw_json_str(*(json_t *const *)y, "id");
	return strcmp(a ? a : "", b ? b : "");
}

static void human_bytes(char *out, size_t n, json_t *v)
{
	if (!json_is_integer(v)) {
		snprintf(out, n, "-");
		return;
	}
	double b = (double)json_integer_value(v);
	const char *u = "BKMGTP";
	while (b >= 1024 && u[1]) {
		b /= 1024;
		u++;
	}
	snprintf(out, n, "%.1f%c", b, *u);
}

/* A number of the row's, or "-" when it has none. */
static void count_cell(char *out, size_t n, const json_t *r, const char *key)
{
	json_t *v = json_object_get(r, key);
	if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else
		snprintf(out, n, "-");
}

static void print_table(json_t *rows)
{
	printf("%-28s %-5s %-20s %-16s %7s %6s %6s %5s %8s %4s %-16s %s\n", "ID", "ALIVE", "HOST", "QUEUE",
	       "RUNNING", "CLAIMS", "OWNS", "CPUS", "MEMORY", "GPUS", "ROLES", "LAST HEARTBEAT");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		char mem[32], roles[256] = "";
		human_bytes(mem, sizeof mem, json_object_get(r, "memory_bytes"));
		size_t k;
		json_t *role;
		json_array_foreach(json_object_get(r, "roles"), k, role) {
			size_t l = strlen(roles);
			snprintf(roles + l, sizeof roles - l, "%s%s", l ? "," : "", json_string_value(role));
		}
		const char *id = sw_json_str(r, "id"), *host = sw_json_str(r, "hostname");
		const char *beat = sw_json_str(r, "last_heartbeat_at"), *queue = sw_json_str(r, "queue");
		/* commands running of its -j slots and the items it holds (a
		 * batch is one command of many items), as its record last said
		 * (at most a second old); "-" for a registered agent */
		char running[48] = "-", claims[24] = "-", owns[24];
		if (json_object_get(r, "jobs")) {
			snprintf(running, sizeof running, "%lld/%lld", (long long)sw_json_int(r, "running", 0),
				 (long long)sw_json_int(r, "jobs", 1));
			snprintf(claims, sizeof claims, "%zu", json_array_size(json_object_get(r, "claims")));
		}
		count_cell(owns, sizeof owns, r, "owns");
		printf("%-28s %-5s %-20s %-16s %7s %6s %6s %5lld %8s %4zu %-16s %s\n", id ? id : "?",
		       json_is_true(json_object_get(r, "alive")) ? "yes" : "no", host ? host : "-",
		       queue ? queue : "-", running, claims, owns, (long long)sw_json_int(r, "cpus", 0), mem,
		       json_array_size(json_object_get(r, "gpus")), *roles ? roles : "-", beat ? beat : "-");
	}
}

/* "owns": the pending keyed items of its queue that its ring gives each
 * live agent serving one (affinity.h), counted once per queue. */
static void add_owns(const struct sw_ws *ws, json_t *rows)
{
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		const char *qn = sw_json_str(r, "queue");
		if (!qn || !json_is_true(json_object_get(r, "alive")) || json_object_get(r, "owns"))
			continue;
		struct sw_queue q;
		struct sw_aff_counts c = { 0 };
		/* a queue not made yet: its agents own nothing */
		if (sw_queue_open(&q, ws, qn, false) == 0 && sw_aff_count_of(&q, rows, &c)) {
			sw_warn("queue %s: counting its keys' owners: %s", qn, q.err.msg);
			sw_queue_close(&q);
			continue;
		}
		size_t k;
		json_t *o;
		json_array_foreach(rows, k, o) {
			const char *oq = sw_json_str(o, "queue"), *id = sw_json_str(o, "id");
			if (!oq || strcmp(oq, qn) || !id || !json_is_true(json_object_get(o, "alive")))
				continue;
			json_object_set_new(o, "owns", json_integer(sw_aff_owns(&c, id)));
		}
		sw_aff_counts_free(&c);
		sw_queue_close(&q);
	}
}

static int v_list(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	if (o->alive && o->dead)
		sw_usage_error("--alive and --dead exclude each other");
	struct list_arg a = { .o = o, .rows = json_array() };
	if (sw_agent_each(ws, list_one, &a) < 0)
		sw_die(sw_ex_errno(errno), "cannot read agents: %s", strerror(errno));
	/* sorted so that two listings of the same registry compare equal */
	size_t n = json_array_size(a.rows);
	json_t **v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		sw_die(EX_SOFTWARE, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(a.rows, i);
	qsort(v, n, sizeof *v, by_id);
	json_t *sorted = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	sw_span_int(sp, "sw.agents", (int64_t)n);
	add_owns(ws, sorted);
	if (!o->run.quiet && (o->table || isatty(1)))
		print_table(sorted);
	else
		for (size_t i = 0; i < n; i++)
			print(o, json_array_get(sorted, i));
	json_decref(sorted);
	json_decref(a.rows);
	return 0;
}

struct qreap { struct opts *o; struct sw_ws *ws; int rc; };

/* Frees a dead agent's claims and says so; a claim that could not be
 * freed keeps the record (1) for the next reap, and the exit says why. */
static int reap_print(json_t *rec, void *arg)
{
	struct qreap *a = arg;
	int code;
	long long n = sw_agent_free_claims(a->ws, rec, &code);
	json_object_set_new(rec, "reaped", json_boolean(!code));
	json_object_set_new(rec, "claims_freed", json_integer(n));
	print(a->o, rec);
	if (code)
		a->rc = a->rc ? a->rc : code;
	return code ? 1 : 0;
}

static int reap_queue(const char *name, void *arg)
{
	struct qreap *a = arg;
	struct sw_queue q;
	long long n = 0;
	int rc = sw_queue_open(&q, a->ws, name, false);
	if (!rc)
		rc = sw_queue_reap(&q, &n);
	if (rc) {
		sw_warn("queue %s: %s", queue_path(a->ws, name), q.err.msg);
		a->rc = rc;
	} else if (n) {
		json_t *j = json_pack("{s:s,s:I}", "queue", name, "claims_reaped", (json_int_t)n);
		print(a->o, j);
		json_decref(j);
	}
	sw_queue_close(&q);
	return 0;
}

/* A dead agent's claims that its record names are freed at once; the
 * rest (taken in its last second) when their lease runs out, which
 * reaping every queue then makes happen. */
static int v_reap(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	struct sw_ws *ws = &c->ws;
	struct sw_span *sp = &c->sp;
	long long n = 0;
	struct qreap a = { .o = o, .ws = ws };
	if (o->force) {
		/* named agents, alive or not: what the operator says is dead */
		for (int i = 0; i < o->nids; i++) {
			int rc = sw_agent_forget(ws, o->ids[i], reap_print, &a);
			if (rc >= 0) {
				n += rc == 0;    /* kept (1): reap_print said why */
			} else if (errno == ENOENT) {
				a.rc = a.rc ? a.rc : no_agent(o, o->ids[i]);
			} else {
				sw_warn("cannot reap agent '%s': %s", o->ids[i], agent_errstr(ws, o->ids[i], errno));
				a.rc = sw_ex_errno(errno);
			}
		}
	} else if (sw_agent_reap(ws, reap_print, &a, &n) < 0) {
		sw_die(sw_ex_errno(errno), "cannot reap agents: %s", strerror(errno));
	}
	sw_span_int(sp, "sw.agents.reaped", n);
	if (sw_queue_names(ws, reap_queue, &a) < 0 && errno != ENOENT)
		sw_die(sw_ex_errno(errno), "cannot list queues: %s", strerror(errno));
	return a.rc;
}

/* ---- run: the engine is lib/agent_run.c ------------------------------ */

static int v_run(struct sw_cmd *c)
{
	const struct opts *o = c->opts;
	if (o->run.nargs < 1)
		sw_usage_error("run needs a COMMAND (sw-agent run [options] -- COMMAND [ARGS...])");
	struct sw_err e = { 0 };
	int code = sw_agent_run(&o->run, &c->ws, &c->sp, &e);
	if (e.code)
		sw_die(e.code, "%s", e.msg);
	return code;
}

/* ---- main ---------------------------------------------------------------- */

static const int o_register[] = { 'q', O_ID, O_ROLES, O_TTL, O_HBTTL, O_PID, O_LABEL, 0 };
static const int o_none[] = { 0 };
static const int o_reap[] = { O_FORCE, 0 };
static const int o_list[] = { O_ALIVE, O_DEAD, O_TABLE, 0 };
static const int o_run[] = { 'q', 'j', O_ID, O_ROLES, O_TTL, O_HBTTL, O_LABEL, O_MAXITEMS, O_IDLE,
			     O_ONCE, O_GRACE, O_POLL, O_TAG, O_LOGDIR, O_JOBLOG, O_BATCH, O_BATCHWAIT,
			     O_AFFINITY, O_STEAL, 0 };

static const struct sw_verb verbs[] = {
	{ "register", v_register, "", 0, 0, o_register, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "heartbeat", v_heartbeat, "an agent ID", 1, 1, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "deregister", v_deregister, "an agent ID", 1, 1, o_none, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "list", v_list, "", 0, 0, o_list, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "reap", v_reap, "agent IDs (with --force)", 0, 4096, o_reap, SW_CMD_WS | SW_CMD_WS_CREATE },
	{ "run", v_run, "", 0, 0, o_run, SW_CMD_WS | SW_CMD_WS_CREATE | SW_CMD_COMMAND },
	{ 0 }
};

/* A lease or a heartbeat ttl: 0 would be over before it began, so it is
 * refused like any ttl under a second, with the same words everywhere. */
/* renewed a third of the way through: less than a second is no lease */
static int ttl_option(struct sw_cmd *c, const char *what, const char *arg, int64_t *ns)
{
	return sw_cmd_ttl(c, what, arg, SW_NS_PER_SEC, ns);
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	int64_t v;
	int rc = 0;
	switch (code) {
	case 'q': o->run.queue = arg; o->queue_given = true; return 0;
	case 'j':
		if (!(rc = sw_cmd_int(c, "--jobs", arg, 1, 1024, &v)))
			o->run.jobs = (int)v;
		return rc;
	case O_ID: o->run.id = arg; return 0;
	case O_ROLES: return split_roles(c, o, arg);
	case O_TTL:
		/* register has no claim: its --ttl is the heartbeat ttl, as
		 * it always was */
		if (c->verb->opts == o_register)
			return ttl_option(c, "--ttl", arg, &o->run.hb_ttl_ns);
		return ttl_option(c, "--ttl", arg, &o->run.ttl_ns);
	case O_HBTTL: return ttl_option(c, "--heartbeat-ttl", arg, &o->run.hb_ttl_ns);
	case O_PID:
		if (!(rc = sw_cmd_int(c, "--pid", arg, 1, 4194304, &v)))
			o->pid = (long)v;
		return rc;
	case O_FORCE: o->force = true; return 0;
	case O_TAG: o->run.tag = true; return 0;
	case O_LOGDIR:
		if (!*arg)
			return sw_cmd_err(c, EX_USAGE, "--log-dir needs a directory");
		o->run.log_dir = arg;
		return 0;
	case O_JOBLOG:
		if (!arg[arg[0] == '+'])
			return sw_cmd_err(c, EX_USAGE, "--joblog needs a file");
		o->run.joblog = arg;
		return 0;
	case O_LABEL: return add_label(c, o, arg);
	case O_ALIVE: o->alive = true; return 0;
	case O_DEAD: o->dead = true; return 0;
	case O_TABLE: o->table = true; return 0;
	case O_MAXITEMS:
		if (!(rc = sw_cmd_int(c, "--max-items", arg, 1, INT64_MAX, &v)))
			o->run.max_items = v;
		return rc;
	case O_IDLE: return sw_cmd_duration(c, "--idle-exit", arg, &o->run.idle_ns);
	case O_ONCE: o->run.once = true; return 0;
	case O_BATCH:
		if (!(rc = sw_cmd_int(c, "--batch", arg, 1, 100000, &v)))
			o->run.batch = (size_t)v;
		return rc;
	case O_BATCHWAIT: return sw_cmd_duration(c, "--batch-wait", arg, &o->run.batch_wait_ns);
	case O_AFFINITY: o->run.affinity = true; return 0;
	case O_STEAL: return sw_cmd_duration(c, "--steal-after", arg, &o->run.steal_after_ns);
	case O_GRACE: return sw_cmd_duration(c, "--grace", arg, &o->run.grace_ns);
	case O_POLL:
		if ((rc = sw_cmd_duration(c, "--poll", arg, &o->run.poll_ns)))
			return rc;
		return o->run.poll_ns <= 0 ? sw_cmd_err(c, EX_USAGE, "bad --poll '%.40s': want more than 0", arg) : 0;
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	int rc;
	o->run.quiet = c->co.quiet;
	o->arg = c->nargs ? c->args[0] : NULL;
	o->ids = c->args;
	o->nids = c->nargs;
	if (c->verb->opts == o_reap) {
		/* plain reap judges by liveness; only named agents are forced */
		if (o->force && !c->nargs)
			return sw_cmd_err(c, EX_USAGE, "--force needs the agent IDs to reap");
		if (!o->force && c->nargs)
			return sw_cmd_err(c, EX_USAGE, "reap ID reaps a named agent even if alive: "
					  "say so with --force (plain reap forgets every dead agent)");
		for (int i = 0; i < c->nargs; i++)
			if ((rc = sw_cmd_name(c, "id", c->args[i])))
				return rc;
	}
	o->run.args = c->command;
	for (o->run.nargs = 0; o->run.args && o->run.args[o->run.nargs]; o->run.nargs++)
		;
	if (o->run.batch_wait_ns && !o->run.batch)
		return sw_cmd_err(c, EX_USAGE, "--batch-wait needs --batch");
	if (o->run.steal_after_ns >= 0 && !o->run.affinity)
		return sw_cmd_err(c, EX_USAGE, "--steal-after needs --affinity");
	if (o->run.steal_after_ns < 0)
		o->run.steal_after_ns = SW_AFF_STEAL_AFTER_DEFAULT_NS;
	for (int i = 0; o->run.batch && i < o->run.nargs; i++)
		if (strstr(o->run.args[i], "{}") || strstr(o->run.args[i], "{id}") || strstr(o->run.args[i], "{attempt}"))
			return sw_cmd_err(c, EX_USAGE, "--batch gives the command its items on stdin: "
					  "{} {id} {attempt} have no one item to stand for");
	if (o->run.once && o->run.idle_ns < 0)
		o->run.idle_ns = 0;   /* --once does not wait unless told to */
	if (o->arg && (rc = sw_cmd_name(c, "id", o->arg)))
		return rc;
	if (o->run.id && (rc = sw_cmd_name(c, "id", o->run.id)))
		return rc;
	return sw_cmd_name(c, "queue", o->run.queue);
}

static const struct sw_prog prog = {
	.name = "sw-agent", .usage = usage, .longopts = longopts, .shortopts = "q:j:",
	.verbs = verbs, .option = option, .check = check,
};

/* A child must get our pipes as 0, 1, 2: fds 0-2 closed at startup would
 * otherwise be reused by them. */
static void std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			exit(EX_SOFTWARE);
}

int main(int argc, char **argv)
{
	std_fds();
	struct opts o = { .run = { .jobs = 1, .idle_ns = -1, .grace_ns = 30 * SW_NS_PER_SEC, .steal_after_ns = -1 } };
	o.run.queue = sw_queue_env(NULL);
	o.run.roles = o.roles;
	int rc = sw_cmd_main(&prog, argc, argv, &o);
	json_decref(o.run.labels);
	return rc;
}
