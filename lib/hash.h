/* hash.h — the one hash of sw: XXH64 (the published xxHash 64-bit
 * algorithm, from Debian's libxxhash-dev) with a seed, and MurmurHash3's
 * fmix64 finalizer where two values are combined.  Everything that hashes
 * uses these: key placement (shard.h), which must give the same answer on
 * every host and after every upgrade, and in-memory tables (sw-metrics
 * ingest), which only need a good spread. */
#ifndef SW_HASH_H
#define SW_HASH_H
#include <stddef.h>
#include <stdint.h>

uint64_t sw_xxh64(const void *p, size_t len, uint64_t seed);

/* MurmurHash3 fmix64: a bijective 64-bit mixer. */
static inline uint64_t sw_fmix64(uint64_t x)
{
	x ^= x >> 33; x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33; x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}
#endif
