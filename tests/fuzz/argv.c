/* argv — PENDING (not built): each program's argument vector.
 *
 * Today the option parsing of every program lives in its main file
 * (src/sw-*.c, not linked into libsw) and ends in sw_die/exit on bad
 * input (sw_usage_error, sw_opt_num, sw_opt_duration, sw_common_opt on
 * -h/-V, sw_name_check), so it cannot be fuzzed in one process.
 *
 * Needs, for each program, a non-exiting entry point in a file the fuzz
 * build can link (for example src/sw-claim-opts.c, or lib/):
 *   int sw_claim_args(int argc, char **argv, struct sw_claim_opts *o,
 *                     char *err, size_t errlen);
 *   void sw_claim_opts_free(struct sw_claim_opts *o);
 * (and sw_lease_args, sw_shard_args, sw_agent_args, sw_metrics_args):
 * 0, or a sysexits code (64, 65) with the one-line reason in err; -h and
 * -V answer with a code, print nothing and do not exit; getopt state is
 * reset inside (optind = 0) so one call never sees the last.  Once they
 * are there: fill in the table below and move argv from FUZZ_PENDING to
 * FUZZ_TARGETS in the Makefile.
 *
 * The input is the program (first byte, modulo the table's size) and
 * then NUL-separated arguments, as execve passes them. */
#include "fuzz.h"
#include <getopt.h>

#define ARGS_MAX 64

typedef int (*args_fn)(int argc, char **argv, char *err, size_t errlen);
/* Each entry parses into its own options and frees them again. */
static const struct { const char *prog; args_fn fn; } progs[] = {
	{ "sw-claim", NULL }, { "sw-lease", NULL }, { "sw-shard", NULL },
	{ "sw-agent", NULL }, { "sw-metrics", NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t p = data[0] % (sizeof progs / sizeof *progs);
	char *buf = fz_str(data + 1, size - 1), *argv[ARGS_MAX + 2], err[512] = "";
	int argc = 0;
	argv[argc++] = (char *)progs[p].prog;
	for (size_t i = 0; i < size - 1 && argc <= ARGS_MAX; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;
	opterr = 0;
	int rc = progs[p].fn ? progs[p].fn(argc, argv, err, sizeof err) : 0;
	fz_check(rc == 0 || ((rc == 64 || rc == 65) && err[0]));
	free(buf);
	return 0;
}
