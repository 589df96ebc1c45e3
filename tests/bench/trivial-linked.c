/* The exec floor for sw-metrics' one-shot verbs: a program that does
 * nothing, linked like bin/ (SQLite, jansson and libbsd in the binary), so
 * the ratio measures our work, not the linker's. */
#include <bsd/stdlib.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1000)   /* never: keeps the libraries linked in */
		printf("%s %s %lld\n", sqlite3_libversion(), jansson_version_str(),
		       strtonum("1", 0, 1, NULL));
	return 0;
}
