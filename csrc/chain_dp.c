/* The inner loop of the chain DP in doubles, min over s < n of r[s] + c[s] + dij * q[s]:
 * written with SIMD intrinsics (SSE2 on x86-64, AVX2 chosen at run time where the CPU has
 * it, NEON on 64-bit ARM) because compilers do not vectorize a floating-point min-reduction
 * without -ffast-math. All values are exact integers below 2**53, so every variant gives
 * the same, exact result. Reached through matkron_minrun_get (a function pointer chosen
 * once per DP), so it costs nothing to live outside the Cython module.
 */
#include "chain_dp.h"

static double matkron_minrun_scalar(const double* r, const double* c, const double* q,
                                    double dij, ptrdiff_t n) {
    double b0 = r[0] + c[0] + dij * q[0], b1 = b0, b2 = b0, b3 = b0, v;
    ptrdiff_t s = 1;
    for (; s + 4 <= n; s += 4) {
        v = r[s] + c[s] + dij * q[s];             b0 = v < b0 ? v : b0;
        v = r[s + 1] + c[s + 1] + dij * q[s + 1]; b1 = v < b1 ? v : b1;
        v = r[s + 2] + c[s + 2] + dij * q[s + 2]; b2 = v < b2 ? v : b2;
        v = r[s + 3] + c[s + 3] + dij * q[s + 3]; b3 = v < b3 ? v : b3;
    }
    for (; s < n; s++) {
        v = r[s] + c[s] + dij * q[s];             b0 = v < b0 ? v : b0;
    }
    b0 = b1 < b0 ? b1 : b0;
    b2 = b3 < b2 ? b3 : b2;
    return b2 < b0 ? b2 : b0;
}

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define MATKRON_SIMD_MINRUN matkron_minrun_sse2
#define MATKRON_TERM2(s) _mm_add_pd(_mm_add_pd(_mm_loadu_pd(r + (s)), _mm_loadu_pd(c + (s))), \
                                    _mm_mul_pd(d, _mm_loadu_pd(q + (s))))
static double matkron_minrun_sse2(const double* r, const double* c, const double* q,
                                  double dij, ptrdiff_t n) {
    __m128d d, b0, b1, b2, b3;
    double t[2], best;
    ptrdiff_t s;
    if (n < 8) return matkron_minrun_scalar(r, c, q, dij, n);
    d = _mm_set1_pd(dij);
    b0 = b1 = b2 = b3 = MATKRON_TERM2(0);
    for (s = 0; s + 8 <= n; s += 8) {
        b0 = _mm_min_pd(b0, MATKRON_TERM2(s));
        b1 = _mm_min_pd(b1, MATKRON_TERM2(s + 2));
        b2 = _mm_min_pd(b2, MATKRON_TERM2(s + 4));
        b3 = _mm_min_pd(b3, MATKRON_TERM2(s + 6));
    }
    b0 = _mm_min_pd(_mm_min_pd(b0, b1), _mm_min_pd(b2, b3));
    _mm_storeu_pd(t, b0);
    best = t[1] < t[0] ? t[1] : t[0];
    if (s < n) {
        double rest = matkron_minrun_scalar(r + s, c + s, q + s, dij, n - s);
        best = rest < best ? rest : best;
    }
    return best;
}
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define MATKRON_SIMD_MINRUN matkron_minrun_neon
#define MATKRON_TERM2(s) vaddq_f64(vaddq_f64(vld1q_f64(r + (s)), vld1q_f64(c + (s))), \
                                   vmulq_f64(d, vld1q_f64(q + (s))))
static double matkron_minrun_neon(const double* r, const double* c, const double* q,
                                  double dij, ptrdiff_t n) {
    float64x2_t d, b0, b1, b2, b3;
    double best;
    ptrdiff_t s;
    if (n < 8) return matkron_minrun_scalar(r, c, q, dij, n);
    d = vdupq_n_f64(dij);
    b0 = b1 = b2 = b3 = MATKRON_TERM2(0);
    for (s = 0; s + 8 <= n; s += 8) {
        b0 = vminq_f64(b0, MATKRON_TERM2(s));
        b1 = vminq_f64(b1, MATKRON_TERM2(s + 2));
        b2 = vminq_f64(b2, MATKRON_TERM2(s + 4));
        b3 = vminq_f64(b3, MATKRON_TERM2(s + 6));
    }
    best = vminvq_f64(vminq_f64(vminq_f64(b0, b1), vminq_f64(b2, b3)));
    if (s < n) {
        double rest = matkron_minrun_scalar(r + s, c + s, q + s, dij, n - s);
        best = rest < best ? rest : best;
    }
    return best;
}
#else
#define MATKRON_SIMD_MINRUN matkron_minrun_scalar
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define MATKRON_TERM4(s) _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(r + (s)), \
                                                     _mm256_loadu_pd(c + (s))), \
                                       _mm256_mul_pd(d, _mm256_loadu_pd(q + (s))))
/* All of it is compiled for AVX2, the scalar tail included, and it clears the upper
   halves of the vector registers before returning: SSE code run while they are dirty
   (here, or anywhere in the process afterwards) is several times slower. */
__attribute__((target("avx2")))
static double matkron_minrun_avx2(const double* r, const double* c, const double* q,
                                  double dij, ptrdiff_t n) {
    __m256d d, b0, b1, b2, b3;
    __m128d h;
    double t[2], best, v;
    ptrdiff_t s = 0;
    best = r[0] + c[0] + dij * q[0];
    if (n >= 16) {
        d = _mm256_set1_pd(dij);
        b0 = b1 = b2 = b3 = MATKRON_TERM4(0);
        for (; s + 16 <= n; s += 16) {
            b0 = _mm256_min_pd(b0, MATKRON_TERM4(s));
            b1 = _mm256_min_pd(b1, MATKRON_TERM4(s + 4));
            b2 = _mm256_min_pd(b2, MATKRON_TERM4(s + 8));
            b3 = _mm256_min_pd(b3, MATKRON_TERM4(s + 12));
        }
        b0 = _mm256_min_pd(_mm256_min_pd(b0, b1), _mm256_min_pd(b2, b3));
        h = _mm_min_pd(_mm256_castpd256_pd128(b0), _mm256_extractf128_pd(b0, 1));
        _mm_storeu_pd(t, h);
        best = t[1] < t[0] ? t[1] : t[0];
    }
    for (; s < n; s++) {
        v = r[s] + c[s] + dij * q[s];
        best = v < best ? v : best;
    }
    _mm256_zeroupper();
    return best;
}
#define MATKRON_AVX2_MINRUN (__builtin_cpu_supports("avx2") ? matkron_minrun_avx2 : NULL)
#else
#define MATKRON_AVX2_MINRUN NULL
#endif

matkron_minrun_t matkron_minrun_get(int which) {
    matkron_minrun_t avx2 = MATKRON_AVX2_MINRUN;
    if (which == 1) return matkron_minrun_scalar;
    if (which == 2) return MATKRON_SIMD_MINRUN;
    if (which == 3) return avx2;
    return avx2 != NULL ? avx2 : MATKRON_SIMD_MINRUN;
}
