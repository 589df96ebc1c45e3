/* replay.c — feeds files to a fuzz target without libFuzzer, so the same
 * target builds with gcc and ASan+UBSan and make check can replay the
 * seed corpus and every kept crash input in seconds.
 *   replay FILE|DIR...   (a directory: each regular file in it, sorted)
 * Prints "replay: N inputs" and exits 0, or dies in the sanitizer (or
 * fz_check) on the input that fails, whose name it printed first. */
#include "fuzz.h"
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static long replayed;

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		exit(66);
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	if (!buf || ferror(f)) {
		fprintf(stderr, "replay: %s: cannot read\n", path);
		exit(74);
	}
	fclose(f);
	/* the name first: a sanitizer report ends the process */
	fprintf(stderr, "replay: %s\n", path);
	/* exactly n bytes, as libFuzzer passes them */
	uint8_t *in = malloc(n ? n : 1);
	if (n)
		memcpy(in, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	replayed++;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		exit(66);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names)))
			abort();
		if (!(names[n++] = strdup(e->d_name)))
			abort();
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_name);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			run_file(path);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			run_dir(argv[i]);
		else
			run_file(argv[i]);
	}
	printf("replay: %ld inputs\n", replayed);
	return 0;
}
