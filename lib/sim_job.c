#include "sim_job.h"
#include "clock.h"
#include "fs.h"
#include "id.h"
#include "num.h"
#include "sim_opt.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

void sim_job_env(const struct sim_job_params *p, char *buf, size_t n)
{
	snprintf(buf, n, "%lld %lld %u %llu", (long long)p->min_ns, (long long)p->max_ns,
		 (unsigned)p->fail_ppm, (unsigned long long)p->seed);
}

/* Splits s at spaces into at most max fields (in place); how many. */
static int fields(char *s, char **f, int max)
{
	int n = 0;
	for (char *save = NULL, *t = strtok_r(s, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == max)
			return max + 1;
		f[n++] = t;
	}
	return n;
}

int sim_job_params_parse(const char *s, struct sim_job_params *p)
{
	char buf[128], *f[4];
	if (!s || strlen(s) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", s);
	uint64_t ppm;
	if (fields(buf, f, 4) != 4 || sw_parse_i64(f[0], 0, SW_DURATION_MAX_NS, &p->min_ns) < 0 ||
	    sw_parse_i64(f[1], p->min_ns, SW_DURATION_MAX_NS, &p->max_ns) < 0 ||
	    sw_parse_u64(f[2], 1000000, &ppm) < 0 || sw_parse_u64(f[3], UINT64_MAX, &p->seed) < 0)
		return -1;
	p->fail_ppm = (uint32_t)ppm;
	return 0;
}

int sim_ledger_parse(const char *line, size_t len, struct sim_ledger_line *out)
{
	char buf[SIM_LINE_MAX], *f[9];
	if (len >= sizeof buf || memchr(line, 0, len))
		return -1;
	memcpy(buf, line, len);
	buf[len] = 0;
	int n = fields(buf, f, 8);
	if (n < 7 || strlen(f[0]) != 1 || (f[0][0] != 'S' && f[0][0] != 'E'))
		return -1;
	out->kind = f[0][0];
	if ((out->kind == 'S') != (n == 7))
		return -1;
	if (sw_name_problem(f[1]) || strlen(f[1]) > SIM_ID_MAX)
		return -1;
	snprintf(out->id, sizeof out->id, "%s", f[1]);
	if (sw_parse_u64(f[2], UINT64_MAX, &out->token) < 0 ||
	    sw_parse_i64(f[3], 0, INT64_MAX, &out->attempt) < 0 ||
	    sw_parse_i64(f[5], 0, INT64_MAX, &out->pid) < 0 ||
	    sw_parse_i64(f[6], 0, INT64_MAX, &out->ns) < 0)
		return -1;
	out->ok = false;
	if (out->kind == 'E') {
		if (!strcmp(f[7], "ok"))
			out->ok = true;
		else if (strcmp(f[7], "fail"))
			return -1;
	}
	return 0;
}

/* ---- the job ------------------------------------------------------------ */

struct job {
	const char *id, *token, *attempt, *agent;
	char host[64];
	uint64_t n;             /* the item's number: its payload */
	int64_t attempt_n;
	int fd;                 /* the ledger */
};

/* One line, one write: O_APPEND keeps lines of concurrent jobs whole. */
static int ledger_write(const struct job *j, const char *kind, const char *outcome)
{
	char line[SIM_LINE_MAX];
	int n = snprintf(line, sizeof line, "%s %s %s %s %s %ld %lld%s%s\n", kind, j->id, j->token,
			 j->attempt, j->host, (long)getpid(), (long long)sw_now_ns(),
			 outcome ? " " : "", outcome ? outcome : "");
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;
	return SW_NOINTR(write(j->fd, line, (size_t)n)) == n ? 0 : -1;
}

/* The payload (the item's number) from stdin. */
static int read_number(uint64_t *n)
{
	char buf[32];
	size_t len = 0;
	for (;;) {
		ssize_t r = SW_NOINTR(read(0, buf + len, sizeof buf - 1 - len));
		if (r < 0)
			return -1;
		if (r == 0 || (len += (size_t)r) == sizeof buf - 1)
			break;
	}
	buf[len] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return sw_parse_u64(buf, UINT64_MAX, n);
}

static int job_setup(struct job *j, struct sim_job_params *p)
{
	j->id = getenv("SW_ITEM_ID");
	j->token = getenv("SW_ITEM_TOKEN");
	j->attempt = getenv("SW_ATTEMPT");
	j->agent = getenv("SW_AGENT_ID");
	const char *dir = getenv(SIM_ENV_LEDGER);
	uint64_t tok;
	if (!j->id || sw_name_problem(j->id) || !j->token || sw_parse_u64(j->token, UINT64_MAX, &tok) < 0 ||
	    !j->attempt || sw_parse_i64(j->attempt, 0, INT64_MAX, &j->attempt_n) < 0 ||
	    !j->agent || sw_name_problem(j->agent) || strpbrk(j->agent, "\"\\") || !dir || !*dir ||
	    sim_job_params_parse(getenv(SIM_ENV_JOB), p) < 0) {
		fprintf(stderr, "sw-sim job: run by sw-sim run only (SW_ITEM_ID, SW_ITEM_TOKEN, "
			"SW_ATTEMPT, SW_AGENT_ID, %s, %s)\n", SIM_ENV_LEDGER, SIM_ENV_JOB);
		return EX_USAGE;
	}
	if (read_number(&j->n) < 0) {
		fprintf(stderr, "sw-sim job: the payload is not an item number\n");
		return EX_DATAERR;
	}
	if (gethostname(j->host, sizeof j->host) < 0)
		snprintf(j->host, sizeof j->host, "localhost");
	j->host[sizeof j->host - 1] = 0;
	/* a host name with a space would split the line's fields */
	for (char *c = j->host; *c; c++)
		if (*c == ' ' || (unsigned char)*c < 0x21)
			*c = '_';
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, j->agent);
	j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		fprintf(stderr, "sw-sim job: cannot open the ledger %s: %s\n", path, strerror(errno));
		return EX_CANTCREAT;
	}
	return 0;
}

int sim_job_main(void)
{
	struct job j;
	struct sim_job_params p;
	int rc = job_setup(&j, &p);
	if (rc)
		return rc;
	if (ledger_write(&j, "S", NULL) < 0) {
		fprintf(stderr, "sw-sim job: writing the ledger: %s\n", strerror(errno));
		return EX_IOERR;
	}
	uint64_t attempt = (uint64_t)j.attempt_n;
	double t = sim_unit_of(p.seed, j.n, attempt, 1);
	bool fails = sim_unit_of(p.seed, j.n, attempt, 2) * 1e6 < (double)p.fail_ppm;
	sw_sleep_ns(p.min_ns + (int64_t)(t * (double)(p.max_ns - p.min_ns)));
	if (ledger_write(&j, "E", fails ? "fail" : "ok") < 0) {
		fprintf(stderr, "sw-sim job: writing the ledger: %s\n", strerror(errno));
		return EX_IOERR;
	}
	if (fails) {
		fprintf(stderr, "simulated failure (--job-fail)\n");
		return 1;
	}
	/* the result of the done item: the run that finished it (the agent
	 * id has no quote or backslash: checked in job_setup) */
	printf("{\"token\":%s,\"attempt\":%s,\"agent\":\"%s\"}\n", j.token, j.attempt, j.agent);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
