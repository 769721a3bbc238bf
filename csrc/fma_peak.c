/* The FMA peak probe (see fma_peak.h). Each round updates acc <- acc * a + b on every
 * chain; with 0 < a < 1 the values converge to b / (1 - a), so they neither overflow nor
 * turn subnormal, whatever the number of rounds. */
#include "fma_peak.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FMA_PEAK_X86 1
#include <immintrin.h>
#endif

static const double A = 0.999999, B = 1e-6;

static double run_scalar(long rounds)
{
    double acc[FMA_PEAK_CHAINS];
    int j;
    for (j = 0; j < FMA_PEAK_CHAINS; j++)
        acc[j] = j;
    for (long r = 0; r < rounds; r++)
        for (j = 0; j < FMA_PEAK_CHAINS; j++)
            acc[j] = acc[j] * A + B;
    double sum = 0.0;
    for (j = 0; j < FMA_PEAK_CHAINS; j++)
        sum += acc[j];
    return sum;
}

#ifdef FMA_PEAK_X86

/* One variant per vector type: CHAINS accumulators kept in registers, written out so that
 * the compiler neither spills nor reassociates them. */
#define FMA_PEAK_BODY(VEC, SET1, FMADD, ADD, STORE, LANES)                                  \
    VEC a = SET1(A), b = SET1(B);                                                           \
    VEC c0 = SET1(0.0), c1 = SET1(1.0), c2 = SET1(2.0), c3 = SET1(3.0), c4 = SET1(4.0),    \
        c5 = SET1(5.0), c6 = SET1(6.0), c7 = SET1(7.0), c8 = SET1(8.0), c9 = SET1(9.0),     \
        c10 = SET1(10.0), c11 = SET1(11.0);                                                 \
    for (long r = 0; r < rounds; r++) {                                                     \
        c0 = FMADD(c0, a, b); c1 = FMADD(c1, a, b); c2 = FMADD(c2, a, b);                   \
        c3 = FMADD(c3, a, b); c4 = FMADD(c4, a, b); c5 = FMADD(c5, a, b);                   \
        c6 = FMADD(c6, a, b); c7 = FMADD(c7, a, b); c8 = FMADD(c8, a, b);                   \
        c9 = FMADD(c9, a, b); c10 = FMADD(c10, a, b); c11 = FMADD(c11, a, b);               \
    }                                                                                       \
    VEC s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));              \
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));                                            \
    double lanes[LANES];                                                                    \
    STORE(lanes, s);                                                                        \
    double sum = 0.0;                                                                       \
    for (int j = 0; j < LANES; j++)                                                         \
        sum += lanes[j];                                                                    \
    return sum;

#if FMA_PEAK_CHAINS != 12
#error "the vector variants are written out for 12 chains"
#endif

__attribute__((target("avx2,fma"))) static double run_avx2(long rounds)
{
    FMA_PEAK_BODY(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_storeu_pd, 4)
}

__attribute__((target("avx512f"))) static double run_avx512(long rounds)
{
    FMA_PEAK_BODY(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_storeu_pd, 8)
}

static int has(int isa)
{
    __builtin_cpu_init();
    if (isa == FMA_PEAK_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == FMA_PEAK_AVX512)
        return __builtin_cpu_supports("avx512f");
    return isa == FMA_PEAK_SCALAR;
}

#else

static int has(int isa) { return isa == FMA_PEAK_SCALAR; }

#endif

int matkron_fma_peak_best(void)
{
    if (has(FMA_PEAK_AVX512))
        return FMA_PEAK_AVX512;
    if (has(FMA_PEAK_AVX2))
        return FMA_PEAK_AVX2;
    return FMA_PEAK_SCALAR;
}

int matkron_fma_peak_run(int isa, long rounds, double *flops, double *sink)
{
    static const int lanes[] = {1, 4, 8};
    if (isa < FMA_PEAK_SCALAR || isa > FMA_PEAK_AVX512 || !has(isa) || rounds < 0)
        return -1;
#ifdef FMA_PEAK_X86
    if (isa == FMA_PEAK_AVX512)
        *sink = run_avx512(rounds);
    else if (isa == FMA_PEAK_AVX2)
        *sink = run_avx2(rounds);
    else
#endif
        *sink = run_scalar(rounds);
    *flops = 2.0 * FMA_PEAK_CHAINS * lanes[isa] * (double)rounds;
    return 0;
}
