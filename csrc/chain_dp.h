/* The C of the matrix-chain dynamic program (_chain_cy.pyx): exact wide integers for its
 * costs, and the SIMD inner loop of its float64 variant.
 */
#ifndef MATKRON_CHAIN_DP_H
#define MATKRON_CHAIN_DP_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 matkron_u128;
#define MATKRON_HAVE_U128 1
static inline uint64_t matkron_u128_hi(matkron_u128 x) { return (uint64_t)(x >> 64); }
#else
/* Placeholder so that the code compiles; the Python layer never selects the 128- and
   256-bit kernels when MATKRON_HAVE_U128 is 0 and uses exact Python integers instead. */
typedef unsigned long long matkron_u128;
#define MATKRON_HAVE_U128 0
static inline uint64_t matkron_u128_hi(matkron_u128 x) { (void)x; return 0; }
#endif

/* Unsigned 256-bit integers as two 128-bit halves: enough for every DP value, which
   is at most (k - 1) max(d)^3 < 2^67 * 2^189. */
typedef struct { matkron_u128 lo, hi; } matkron_u256;

static inline matkron_u256 matkron_u256_of(uint64_t x) {
    matkron_u256 r;
    r.lo = x;
    r.hi = 0;
    return r;
}
static inline matkron_u256 matkron_u256_add(matkron_u256 a, matkron_u256 b) {
    matkron_u256 r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo);
    return r;
}
/* a * b for a 128-bit a and a 64-bit b */
static inline matkron_u256 matkron_u256_mul(matkron_u128 a, uint64_t b) {
    matkron_u256 r;
#if MATKRON_HAVE_U128
    matkron_u128 low = (matkron_u128)(uint64_t)a * b;
    matkron_u128 mid = (a >> 64) * (matkron_u128)b;
    r.lo = low + (mid << 64);
    r.hi = (mid >> 64) + (r.lo < low);
#else
    r.lo = a * b;
    r.hi = 0;
#endif
    return r;
}
static inline int matkron_u256_lt(matkron_u256 a, matkron_u256 b) {
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}
static inline int matkron_u256_eq(matkron_u256 a, matkron_u256 b) {
    return a.hi == b.hi && a.lo == b.lo;
}

/* The inner loop of the DP in doubles, min over s < n of r[s] + c[s] + dij * q[s] (n >= 1),
 * in chain_dp.c. */
typedef double (*matkron_minrun_t)(const double *, const double *, const double *, double,
                                   ptrdiff_t);

/* 0: the fastest for this CPU; 1: scalar; 2: the baseline SIMD of the target (or
   scalar); 3: AVX2, or NULL where the CPU or compiler has none. */
matkron_minrun_t matkron_minrun_get(int which);

#endif
