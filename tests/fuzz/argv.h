/* argv.h — the argument vector of one program, fuzzed through the command
 * skeleton's parser (lib/cmd.h sw_cmd_parse), which never exits and never
 * prints.  An argv_<program>.c target includes the program's own source
 * with its main renamed, defines fz_opts_init/fz_opts_free for its
 * options, and includes this file.
 *
 * The input is NUL-separated arguments, as execve passes them (argv[0]
 * is the program's name). */
#ifndef SW_FUZZ_ARGV_H
#define SW_FUZZ_ARGV_H
#include "fuzz.h"
#include "cmd.h"
#include "err.h"

#define ARGS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fz_str(data, size), *argv[ARGS_MAX + 2];
	int argc = 0;
	argv[argc++] = (char *)prog.name;
	for (size_t i = 0; i < size && argc <= ARGS_MAX; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;
	struct opts o;
	fz_opts_init(&o);
	struct sw_cmd c;
	int rc = sw_cmd_parse(&c, &prog, argc, argv, &o);
	/* an answer, or a refusal that names what is wrong, in one line once
	 * sw_die has made it safe for a terminal (it may quote the input) */
	char line[2048];
	sw_sanitize(c.err.msg, line, sizeof line);
	fz_check(rc == 0 || rc == SW_CMD_HELP || rc == SW_CMD_VERSION ||
		 ((rc == 64 || rc == 65) && line[0] && !strchr(line, '\n') && !strchr(line, '\033')));
	if (rc == 0)
		fz_check(c.verb && c.nargs >= c.verb->min_args && c.nargs <= c.verb->max_args);
	sw_cmd_done(&c);
	fz_opts_free(&o);
	free(buf);
	return 0;
}
#endif
