#include "opt.h"
#include <stddef.h>

const char *sw_opt_name(const struct option *longopts, int c)
{
	for (const struct option *lo = longopts; lo->name; lo++)
		if (lo->val == c)
			return lo->name;
	return NULL;
}
