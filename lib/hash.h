/* hash.h — the one hash of sw: XXH64 from libxxhash (Debian's
 * libxxhash-dev), inlined so that the static programs need no library
 * for it.  Placements (lib/shard.h) and host-local file names use it. */
#ifndef SW_HASH_H
#define SW_HASH_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t sw_hash64(const void *p, size_t n, uint64_t seed)
{
	return XXH64(p, n, seed);
}

static inline uint64_t sw_hash_str(const char *s, uint64_t seed)
{
	return XXH64(s, strlen(s), seed);
}
#endif
