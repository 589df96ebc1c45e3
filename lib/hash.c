#include "hash.h"
/* Compiled into this file rather than linked: the programs stay free of
 * another shared library, and a static libxxhash is not needed. */
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t sw_xxh64(const void *p, size_t len, uint64_t seed)
{
	return XXH64(p, len, seed);
}
