/* rng.h — counter-based random numbers: every draw is a pure function of (key, counter).
 * Streams are keyed by (seed, purpose, epoch/step, ...), so results do not depend on thread
 * count or timing, and a resumed run reproduces exactly what an uninterrupted one would draw. */
#ifndef CNN_CORE_RNG_H
#define CNN_CORE_RNG_H
#include <stdint.h>

/* Purposes, so that streams for different uses never collide. */
enum rng_purpose {
    RNG_INIT = 1,     /* parameter initialization */
    RNG_SHUFFLE = 2,  /* epoch permutation */
    RNG_AUGMENT = 3,  /* per-sample augmentation */
    RNG_DROPOUT = 4,  /* dropout masks and drop-path */
    RNG_SPLIT = 5,    /* anything else a tool needs */
};

static inline uint64_t rng_mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A stream key from a seed and up to three integers (purpose, epoch, index...). */
static inline uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    return rng_mix(rng_mix(rng_mix(rng_mix(seed) ^ a) ^ b) ^ c);
}

/* The i-th 64-bit draw of a stream. */
static inline uint64_t rng_at(uint64_t key, uint64_t i) { return rng_mix(key ^ rng_mix(i)); }

/* Uniform in [0, 1) with 24 random bits (exact in float). */
static inline float rng_uniform_at(uint64_t key, uint64_t i) {
    return (float)(rng_at(key, i) >> 40) * (1.0f / 16777216.0f);
}

/* A sequential view of a stream. */
typedef struct rng {
    uint64_t key, ctr;
} rng;

static inline rng rng_stream(uint64_t key) { rng r = {key, 0}; return r; }
static inline uint64_t rng_next(rng *r) { return rng_at(r->key, r->ctr++); }
static inline float rng_uniform(rng *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }
static inline double rng_uniform_d(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
/* Uniform integer in [0, n), unbiased (Lemire's method). */
uint32_t rng_below(rng *r, uint32_t n);
/* Standard normal (Box-Muller, double precision inside). */
float rng_normal(rng *r);
/* In-place Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(rng *r, int32_t *idx, int64_t n);

#endif
