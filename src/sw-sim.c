/* sw-sim — the swarm simulator on the real programs (`run`: sw-agent
 * processes killed, stalled, cut off and slowed down, and a report that
 * counts lost and finished-twice items), and `fs`: whether a filesystem
 * keeps the promises sw relies on.  See sw-sim(1); the work is in
 * lib/sim*.c (sim.h says which file does what). */
#include "clock.h"
#include "cmd.h"
#include "err.h"
#include "id.h"
#include "num.h"
#include "opt.h"
#include "sim.h"
#include "sim_job.h"
#include "sim_opt.h"
#include "span.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
"usage: sw-sim VERB [options] [args]\n"
"\n"
"  run [options]        a swarm of real sw-agent processes under faults; a report\n"
"                       of what was added, finished, lost and finished twice\n"
"      --agents N         agents (default 5; also --nodes)\n"
"      --duration DUR     how long items are added and faults injected (60s)\n"
"      --items M          add M items at the start instead of a rate\n"
"      --rate R/s         items added per second (default: half what the agents\n"
"                         can do by job time, at most 200/s)\n"
"      --job-time MIN..MAX  each run's time, uniform (default 10ms..2s)\n"
"      --job-fail P       a run fails with probability P (also --failure-rate)\n"
"      --kill-rate K/s    SIGKILL of a random agent's worker, K a second\n"
"      --stall-rate S/s   SIGSTOP of a random agent, S a second, for\n"
"      --stall-time DUR     a tenth of DUR to DUR (default 10s)\n"
"      --partition-probability P   a host cut off, P a minute, for\n"
"      --partition-time DUR        half of DUR to DUR (default 5s)\n"
"      --max-latency L  --min-latency L   agents paused (with --lab: a link\n"
"                         delayed) for L at random\n"
"      --lab[=SCRIPT]     on the test lab's two mounts, latency and partitions real\n"
"      -d, --dir DIR      a workspace to run in (repeat for mounts of one\n"
"                         filesystem; default a scratch one)\n"
"      -j, --jobs N  --ttl DUR  --batch N  --affinity   for each sw-agent run\n"
"      --max-attempts N   of each item (default 5)\n"
"      --seed S           the fault schedule and job times repeat for one S\n"
"      --stats-every DUR  a JSON line of the live figures every DUR\n"
"      --drain DUR        at most this long for the queue to empty (default 120s)\n"
"      --keep DIR         keep the ledger, the agents' output and the event log\n"
"  fs DIR [DIR2]        race and measure the primitives sw relies on in DIR (and\n"
"                       between DIR and DIR2, the same directory on another\n"
"                       mount); a verdict and recommended settings\n"
"      --racers N  --rounds N\n"
"\n"
"common options:\n"
"  --json               JSON even on a terminal\n"
"  --spans[=DEST]       write an OTLP JSON span per operation to stdout (default),\n"
"                       stderr or a file; also SW_SPANS\n"
"  --quiet              print no results and no progress line\n"
"  -h, --help           this text;  -V, --version\n"
"\n"
"exit: 0 ok (run: nothing lost, nothing finished twice, everything finished;\n"
"      fs: sw's guarantees hold), 1 not so, 64 usage, 69 cannot run (a program\n"
"      or the lab missing), 70 internal error, 73 cannot create, 74 I/O error,\n"
"      128+N stopped by a second signal N\n";

enum {
	O_AGENTS = SW_OPT_FIRST_FREE, O_DURATION, O_ITEMS, O_RATE, O_JOBTIME, O_JOBFAIL, O_KILL,
	O_STALL, O_STALLTIME, O_PART, O_PARTTIME, O_MAXLAT, O_MINLAT, O_BATCH, O_AFFINITY, O_LAB,
	O_SEED, O_TTL, O_ATTEMPTS, O_STATSEVERY, O_DRAIN, O_KEEP, O_JSON, O_RACERS, O_ROUNDS
};

static const struct option longopts[] = {
	SW_COMMON_LONGOPTS,
	{"agents", required_argument, 0, O_AGENTS},
	{"nodes", required_argument, 0, O_AGENTS},
	{"duration", required_argument, 0, O_DURATION},
	{"items", required_argument, 0, O_ITEMS},
	{"rate", required_argument, 0, O_RATE},
	{"job-time", required_argument, 0, O_JOBTIME},
	{"job-fail", required_argument, 0, O_JOBFAIL},
	{"failure-rate", required_argument, 0, O_JOBFAIL},
	{"kill-rate", required_argument, 0, O_KILL},
	{"stall-rate", required_argument, 0, O_STALL},
	{"stall-time", required_argument, 0, O_STALLTIME},
	{"partition-probability", required_argument, 0, O_PART},
	{"partition-time", required_argument, 0, O_PARTTIME},
	{"max-latency", required_argument, 0, O_MAXLAT},
	{"min-latency", required_argument, 0, O_MINLAT},
	{"batch", required_argument, 0, O_BATCH},
	{"affinity", no_argument, 0, O_AFFINITY},
	{"jobs", required_argument, 0, 'j'},
	{"lab", optional_argument, 0, O_LAB},
	{"seed", required_argument, 0, O_SEED},
	{"ttl", required_argument, 0, O_TTL},
	{"max-attempts", required_argument, 0, O_ATTEMPTS},
	{"stats-every", required_argument, 0, O_STATSEVERY},
	{"drain", required_argument, 0, O_DRAIN},
	{"keep", required_argument, 0, O_KEEP},
	{"json", no_argument, 0, O_JSON},
	{"racers", required_argument, 0, O_RACERS},
	{"rounds", required_argument, 0, O_ROUNDS},
	{0, 0, 0, 0}
};

#define RATE_MAX 1000.0         /* kills or stalls a second: more is no test */

struct opts {
	struct sim_run_opts run;
	struct sim_fs_opts fs;
	bool rate_given, min_lat_given, stall_time_given, part_time_given;
};

/* ---- verbs -------------------------------------------------------------- */

static int v_run(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	return sim_run(&o->run, &c->sp);
}

static int v_fs(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	return sim_fs(&o->fs, &c->sp);
}

static const int o_run[] = {
	O_AGENTS, O_DURATION, O_ITEMS, O_RATE, O_JOBTIME, O_JOBFAIL, O_KILL, O_STALL, O_STALLTIME, O_PART,
	O_PARTTIME, O_MAXLAT, O_MINLAT, O_BATCH, O_AFFINITY, 'j', O_LAB, O_SEED, O_TTL, O_ATTEMPTS,
	O_STATSEVERY, O_DRAIN, O_KEEP, O_JSON, 0
};
static const int o_fs[] = { O_RACERS, O_ROUNDS, O_JSON, 0 };

static const struct sw_verb verbs[] = {
	{ "run", v_run, "", 0, 0, o_run, 0 },
	{ "fs", v_fs, "a directory DIR (and DIR2, the same on another mount)", 1, 2, o_fs, 0 },
	{ 0 }
};

/* ---- options ------------------------------------------------------------ */

static int rate_opt(struct sw_cmd *c, const char *what, const char *arg, double max, double *v)
{
	if (sim_parse_rate(arg, v) == 0 && *v <= max)
		return 0;
	return sw_cmd_err(c, EX_USAGE, "bad %s '%.40s': want a rate such as 5/s, 0.5/s, 30/m (at most %g/s)",
			  what, arg, max);
}

static int positive_duration(struct sw_cmd *c, const char *what, const char *arg, int64_t *ns)
{
	int rc = sw_cmd_duration(c, what, arg, ns);
	if (!rc && *ns <= 0)
		return sw_cmd_err(c, EX_USAGE, "bad %s '%.40s': want more than 0", what, arg);
	return rc;
}

static int int_opt(struct sw_cmd *c, const char *what, const char *arg, int64_t min, int64_t max, int *v)
{
	int64_t x;
	int rc = sw_cmd_int(c, what, arg, min, max, &x);
	if (!rc)
		*v = (int)x;
	return rc;
}

static int run_option(struct sw_cmd *c, struct sim_run_opts *r, struct opts *o, int code, char *arg)
{
	int64_t v;
	int rc;
	switch (code) {
	case O_AGENTS: return int_opt(c, "--agents", arg, 1, SIM_AGENTS_MAX, &r->agents);
	case 'j': return int_opt(c, "--jobs", arg, 1, 1024, &r->jobs);
	case O_DURATION: return positive_duration(c, "--duration", arg, &r->duration_ns);
	case O_ITEMS:
		if (!(rc = sw_cmd_int(c, "--items", arg, 1, 100000000, &v)))
			r->items = v;
		return rc;
	case O_RATE:
		o->rate_given = true;
		if ((rc = rate_opt(c, "--rate", arg, 100000, &r->rate)))
			return rc;
		return r->rate > 0 ? 0 : sw_cmd_err(c, EX_USAGE, "bad --rate '%.40s': want more than 0", arg);
	case O_JOBTIME:
		if (sim_parse_range(arg, &r->job_min_ns, &r->job_max_ns) == 0)
			return 0;
		return sw_cmd_err(c, EX_USAGE, "bad --job-time '%.40s': want MIN..MAX (10ms..2s) or one "
				  "duration, MIN at most MAX", arg);
	case O_JOBFAIL: return sw_cmd_real(c, "--job-fail", arg, 0, 1, &r->job_fail);
	case O_KILL: return rate_opt(c, "--kill-rate", arg, RATE_MAX, &r->kill_rate);
	case O_STALL: return rate_opt(c, "--stall-rate", arg, RATE_MAX, &r->stall_rate);
	case O_STALLTIME:
		o->stall_time_given = true;
		return positive_duration(c, "--stall-time", arg, &r->stall_ns);
	case O_PART: return sw_cmd_real(c, "--partition-probability", arg, 0, 1, &r->partition_p);
	case O_PARTTIME:
		o->part_time_given = true;
		return positive_duration(c, "--partition-time", arg, &r->partition_ns);
	case O_MAXLAT: return sw_cmd_duration(c, "--max-latency", arg, &r->lat_max_ns);
	case O_MINLAT:
		o->min_lat_given = true;
		return sw_cmd_duration(c, "--min-latency", arg, &r->lat_min_ns);
	case O_BATCH: return int_opt(c, "--batch", arg, 1, 1024, &r->batch);
	case O_AFFINITY: r->affinity = true; return 0;
	case O_LAB:
		r->lab = true;
		r->lab_script = arg;
		return 0;
	case O_SEED: {
		uint64_t s;
		if (sw_parse_u64(arg, (UINT64_C(1) << 53) - 1, &s) < 0)
			return sw_cmd_err(c, EX_USAGE, "bad --seed '%.40s': want a whole number below 2^53", arg);
		r->seed = s;
		r->seeded = true;
		return 0;
	}
	case O_TTL:
		if ((rc = sw_cmd_duration(c, "--ttl", arg, &r->ttl_ns)))
			return rc;
		return r->ttl_ns < SW_NS_PER_SEC ? sw_cmd_err(c, EX_USAGE, "--ttl must be at least 1s") : 0;
	case O_ATTEMPTS: return int_opt(c, "--max-attempts", arg, 1, 1000000, &r->max_attempts);
	case O_STATSEVERY: return positive_duration(c, "--stats-every", arg, &r->stats_every_ns);
	case O_DRAIN: return sw_cmd_duration(c, "--drain", arg, &r->drain_ns);
	case O_KEEP:
		if (!*arg)
			return sw_cmd_err(c, EX_USAGE, "--keep needs a directory");
		r->keep = arg;
		return 0;
	}
	return sw_cmd_err(c, EX_SOFTWARE, "option %d not handled", code);
}

static int option(struct sw_cmd *c, int code, char *arg)
{
	struct opts *o = c->opts;
	switch (code) {
	case O_JSON: o->run.json = o->fs.json = true; return 0;
	case O_RACERS: return int_opt(c, "--racers", arg, 2, 64, &o->fs.racers);
	case O_ROUNDS: return int_opt(c, "--rounds", arg, 1, 100000, &o->fs.rounds);
	}
	return run_option(c, &o->run, o, code, arg);
}

/* Every -d/--dir of the verb: the skeleton keeps the last one only, and
 * run takes several (mounts of one filesystem).  A second pass of getopt
 * over the same vector finds them exactly as the first did. */
static int all_dirs(struct sw_cmd *c, struct sim_run_opts *r)
{
	char shortopts[64];
	snprintf(shortopts, sizeof shortopts, "+:%sj:", SW_COMMON_SHORTOPTS);
	optind = 0;
	opterr = 0;
	int code;
	while ((code = getopt_long(c->argc, c->argv, shortopts, longopts, NULL)) != -1) {
		if (code != 'd')
			continue;
		if (r->ndirs == SIM_DIRS_MAX)
			return sw_cmd_err(c, EX_USAGE, "too many --dir (at most %d)", SIM_DIRS_MAX);
		if (!*optarg)
			return sw_cmd_err(c, EX_USAGE, "--dir needs a directory");
		r->dirs[r->ndirs++] = optarg;
	}
	return 0;
}

/* Options that cannot go together, or one without the other it needs:
 * util-linux's table of exclusive options, in the form of a list. */
static int check_run(struct sw_cmd *c, struct opts *o)
{
	struct sim_run_opts *r = &o->run;
	const struct { bool bad; const char *why; } rules[] = {
		{ r->items && o->rate_given, "--items and --rate exclude each other" },
		{ r->lab && r->ndirs, "--lab runs on the lab's two mounts: give no --dir" },
		{ r->lab && r->agents < 2, "--lab needs at least 2 agents (half on each mount)" },
		{ o->min_lat_given && !r->lat_max_ns, "--min-latency needs --max-latency" },
		{ r->lat_min_ns > r->lat_max_ns, "--min-latency is above --max-latency" },
		{ o->stall_time_given && !r->stall_rate, "--stall-time needs --stall-rate" },
		{ o->part_time_given && !r->partition_p, "--partition-time needs --partition-probability" },
		{ r->lab && r->partition_ns >= 60 * SW_NS_PER_SEC,
		  "--partition-time of a minute or more on the lab: its calls would fail with EIO, not stall" },
	};
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (rules[i].bad)
			return sw_cmd_err(c, EX_USAGE, "%s", rules[i].why);
	if (!r->drain_ns)
		r->drain_ns = 120 * SW_NS_PER_SEC;
	return 0;
}

static int check(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	o->run.quiet = o->fs.quiet = c->co.quiet;
	o->run.spans = c->co.spans;
	if (!strcmp(c->verb->name, "fs")) {
		if (c->co.dir)
			return sw_cmd_err(c, EX_USAGE, "fs takes its directories as arguments, not --dir");
		o->fs.dir = c->args[0];
		o->fs.dir2 = c->nargs > 1 ? c->args[1] : NULL;
		return 0;
	}
	int rc = all_dirs(c, &o->run);
	return rc ? rc : check_run(c, o);
}

static void begin(struct sw_cmd *c)
{
	struct opts *o = c->opts;
	if (!strcmp(c->verb->name, "run")) {
		sw_span_int(&c->sp, "sw.sim.agents", o->run.agents);
		sw_span_int(&c->sp, "sw.sim.duration_ms", o->run.duration_ns / 1000000);
	} else {
		sw_span_str(&c->sp, "sw.sim.dir", o->fs.dir);
	}
}

static const struct sw_prog prog = {
	.name = "sw-sim", .usage = usage, .longopts = longopts, .shortopts = "j:",
	.verbs = verbs, .option = option, .check = check, .begin = begin,
};

static void opts_init(struct opts *o)
{
	memset(o, 0, sizeof *o);
	struct sim_run_opts *r = &o->run;
	r->agents = 5;
	r->jobs = 1;
	r->duration_ns = 60 * SW_NS_PER_SEC;
	r->job_min_ns = 10 * 1000000;
	r->job_max_ns = 2 * SW_NS_PER_SEC;
	r->stall_ns = 10 * SW_NS_PER_SEC;
	r->partition_ns = 5 * SW_NS_PER_SEC;
	r->ttl_ns = 5 * SW_NS_PER_SEC;
	r->max_attempts = 5;
	o->fs.racers = 8;
	o->fs.rounds = 200;
}

int main(int argc, char **argv)
{
	/* the simulated job, run by sw-agent for every item: not a verb of
	 * the skeleton, which would open a span for every run */
	if (argc == 2 && !strcmp(argv[1], "job"))
		return sim_job_main();
	struct opts o;
	opts_init(&o);
	return sw_cmd_main(&prog, argc, argv, &o);
}
