/* One Kronecker step in float64 or float32 with AVX-512: the kernel of the registry rows
 * "avx512_f64" and "avx512_f32" (see registry.c for its facts, kernels.h for the step).
 *
 * Register tiles are V vectors (V <= 3; 8 doubles or 16 floats each) by 8 broadcast
 * scalars: 24 accumulators, each step of the k loop being V vector loads, 8 broadcasts
 * and 8 V fused multiply-adds. Which operand gives the vectors depends on the tensor's layout:
 *
 *   x_sk == 1 ("FX"): vectors along i from the packed factor, broadcasts of X[k, r];
 *   x_sr == 1 ("XF"): vectors along r straight from X, broadcasts of the packed factor.
 *
 * The tensor is never packed or copied: its reads stream along its unit stride. Only
 * the factor, which is small, is packed (zero-padded to whole vectors, so edge tiles need
 * no masks on its side). An output that runs along the broadcast index is written by
 * transposing 8x8 blocks of the tile in registers.
 *
 * The code for one type is kron_step_avx512_impl.h, included here once per type.
 */
#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATKRON_HAVE_AVX512 1
#include <immintrin.h>
#else
#define MATKRON_HAVE_AVX512 0
#endif

#define ROUND8(n) (((n) + 7) / 8 * 8)
#define ROUND16(n) (((n) + 15) / 16 * 16)
/* Rows of X the XF path copies together, and their stride in the copy: 264 doubles or
 * 272 floats (an odd number of cache lines) keep successive k off the same L1 sets. */
#define XF_BLOCK 256
#define XF_LD_F64 264
#define XF_LD_F32 272
/* Columns of X the FX path takes together (for runs of output rows). */
#define FX_BLOCK 64

int matkron_avx512_copies(ptrdiff_t p, ptrdiff_t x_sk)
{
    return p > 8 && (x_sk > XF_LD_F64 || (x_sk >= 32 && x_sk % 32 == 0));
}

ptrdiff_t matkron_avx512_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size)
{
    /* Enough for either type. A copy (see matkron_avx512_copies) needs p > 8 and a
     * stride of 32 or more, which takes 32 q elements in X when its modes are dense (a
     * step given a larger stride declines: see pack_size in step_typed_f64). */
    int may_copy = p > 8 && size >= 32 * q;
    return (ROUND16(p) + (may_copy ? XF_LD_F32 : 0)) * q;
}

#if MATKRON_HAVE_AVX512

int matkron_avx512_detect(void)
{
    /* Cached here too: the step checks it on every call (the registry asks once). */
    static int available = -1;
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
                    && __builtin_cpu_supports("fma");
    }
    return available;
}

#define TARGET __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline
#define TARGET_FN __attribute__((target("avx512f,avx2,fma"))) static

/* Masks of the first `count` lanes (count may exceed the lanes). */
TARGET __mmask8 lanes8(ptrdiff_t count)
{
    return count >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (count > 0 ? count : 0)) - 1u);
}

TARGET __mmask16 lanes16(ptrdiff_t count)
{
    return count >= 16 ? (__mmask16)0xFFFF
                       : (__mmask16)((1u << (count > 0 ? count : 0)) - 1u);
}

/* Transpose the 8x8 block rows[0..7] (row a holds M[a][0..7]) into cols (col b holds
 * M[0..7][b]). */
TARGET void transpose8_pd(const __m512d rows[8], __m512d cols[8])
{
    __m512d t0 = _mm512_unpacklo_pd(rows[0], rows[1]);
    __m512d t1 = _mm512_unpackhi_pd(rows[0], rows[1]);
    __m512d t2 = _mm512_unpacklo_pd(rows[2], rows[3]);
    __m512d t3 = _mm512_unpackhi_pd(rows[2], rows[3]);
    __m512d t4 = _mm512_unpacklo_pd(rows[4], rows[5]);
    __m512d t5 = _mm512_unpackhi_pd(rows[4], rows[5]);
    __m512d t6 = _mm512_unpacklo_pd(rows[6], rows[7]);
    __m512d t7 = _mm512_unpackhi_pd(rows[6], rows[7]);
    __m512d u0 = _mm512_shuffle_f64x2(t0, t2, 0x88);
    __m512d u1 = _mm512_shuffle_f64x2(t0, t2, 0xDD);
    __m512d u2 = _mm512_shuffle_f64x2(t4, t6, 0x88);
    __m512d u3 = _mm512_shuffle_f64x2(t4, t6, 0xDD);
    __m512d w0 = _mm512_shuffle_f64x2(t1, t3, 0x88);
    __m512d w1 = _mm512_shuffle_f64x2(t1, t3, 0xDD);
    __m512d w2 = _mm512_shuffle_f64x2(t5, t7, 0x88);
    __m512d w3 = _mm512_shuffle_f64x2(t5, t7, 0xDD);
    cols[0] = _mm512_shuffle_f64x2(u0, u2, 0x88);
    cols[4] = _mm512_shuffle_f64x2(u0, u2, 0xDD);
    cols[2] = _mm512_shuffle_f64x2(u1, u3, 0x88);
    cols[6] = _mm512_shuffle_f64x2(u1, u3, 0xDD);
    cols[1] = _mm512_shuffle_f64x2(w0, w2, 0x88);
    cols[5] = _mm512_shuffle_f64x2(w0, w2, 0xDD);
    cols[3] = _mm512_shuffle_f64x2(w1, w3, 0x88);
    cols[7] = _mm512_shuffle_f64x2(w1, w3, 0xDD);
}

/* The doubles' TRANSPOSED_STORE (see kron_step_avx512_impl.h). */
TARGET void transposed_store_f64(const __m512d rows[8], double *out, ptrdiff_t s_vec,
                                 ptrdiff_t vec0, ptrdiff_t vecs, ptrdiff_t bc0, ptrdiff_t bcs,
                                 __m512d alpha, int accumulate)
{
    __m512d cols[8], v;
    __mmask8 mask = lanes8(bcs);
    double *dst;
    int l;
    transpose8_pd(rows, cols);
    for (l = 0; l < 8; l++) {
        if (l < vecs) {
            dst = out + (vec0 + l) * s_vec + bc0;
            v = accumulate ? _mm512_fmadd_pd(cols[l], alpha, _mm512_maskz_loadu_pd(mask, dst))
                           : _mm512_mul_pd(cols[l], alpha);
            _mm512_mask_storeu_pd(dst, mask, v);
        }
    }
}

/* Transpose the 8x8 floats rows[0..7] into cols (see transpose8_pd). */
TARGET void transpose8_ps(const __m256 rows[8], __m256 cols[8])
{
    __m256 t0 = _mm256_unpacklo_ps(rows[0], rows[1]);
    __m256 t1 = _mm256_unpackhi_ps(rows[0], rows[1]);
    __m256 t2 = _mm256_unpacklo_ps(rows[2], rows[3]);
    __m256 t3 = _mm256_unpackhi_ps(rows[2], rows[3]);
    __m256 t4 = _mm256_unpacklo_ps(rows[4], rows[5]);
    __m256 t5 = _mm256_unpackhi_ps(rows[4], rows[5]);
    __m256 t6 = _mm256_unpacklo_ps(rows[6], rows[7]);
    __m256 t7 = _mm256_unpackhi_ps(rows[6], rows[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    cols[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    cols[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    cols[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    cols[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    cols[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    cols[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    cols[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    cols[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* The floats' TRANSPOSED_STORE: each 16-lane vector is two 8x8 blocks, whose columns are
 * written as 8 floats (a partial row, at the end of the broadcast index, element by
 * element: AVX's masked stores are slow on some CPUs). */
TARGET void transposed_store_f32(const __m512 rows[8], float *out, ptrdiff_t s_vec,
                                 ptrdiff_t vec0, ptrdiff_t vecs, ptrdiff_t bc0, ptrdiff_t bcs,
                                 __m512 alpha, int accumulate)
{
    __m256 half[8], cols[8], v, a8 = _mm512_castps512_ps256(alpha);
    float *dst, part[8];
    int h, j, l;
    for (h = 0; h < 2; h++) {
        for (j = 0; j < 8; j++)
            half[j] = h == 0 ? _mm512_castps512_ps256(rows[j])
                             : _mm256_castpd_ps(_mm512_extractf64x4_pd(
                                   _mm512_castps_pd(rows[j]), 1));
        transpose8_ps(half, cols);
        for (l = 0; l < 8; l++) {
            if (8 * h + l >= vecs)
                break;
            dst = out + (vec0 + 8 * h + l) * s_vec + bc0;
            v = _mm256_mul_ps(cols[l], a8);
            if (bcs == 8) {
                if (accumulate)
                    v = _mm256_add_ps(v, _mm256_loadu_ps(dst));
                _mm256_storeu_ps(dst, v);
            } else {
                _mm256_storeu_ps(part, v);
                for (j = 0; j < bcs; j++)
                    dst[j] = accumulate ? dst[j] + part[j] : part[j];
            }
        }
    }
}

/* float64 */
#define REAL double
#define VEC __m512d
#define L 8
#define MASK __mmask8
#define LANES(n) lanes8(n)
#define ROUNDV(n) ROUND8(n)
#define SETZERO() _mm512_setzero_pd()
#define SET1(a) _mm512_set1_pd(a)
#define LOADU(p) _mm512_loadu_pd(p)
#define MASKZ_LOADU(m, p) _mm512_maskz_loadu_pd(m, p)
#define MASK_STOREU(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define STOREU(p, v) _mm512_storeu_pd(p, v)
#define FMADD(a, b, c) _mm512_fmadd_pd(a, b, c)
#define MUL(a, b) _mm512_mul_pd(a, b)
#define XF_LD XF_LD_F64
#define SFX(name) name##_f64
#define TRANSPOSED_STORE transposed_store_f64
#include "kron_step_avx512_impl.h"
#undef REAL
#undef VEC
#undef L
#undef MASK
#undef LANES
#undef ROUNDV
#undef SETZERO
#undef SET1
#undef LOADU
#undef MASKZ_LOADU
#undef MASK_STOREU
#undef STOREU
#undef FMADD
#undef MUL
#undef XF_LD
#undef SFX
#undef TRANSPOSED_STORE

/* float32 */
#define REAL float
#define VEC __m512
#define L 16
#define MASK __mmask16
#define LANES(n) lanes16(n)
#define ROUNDV(n) ROUND16(n)
#define SETZERO() _mm512_setzero_ps()
#define SET1(a) _mm512_set1_ps(a)
#define LOADU(p) _mm512_loadu_ps(p)
#define MASKZ_LOADU(m, p) _mm512_maskz_loadu_ps(m, p)
#define MASK_STOREU(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define STOREU(p, v) _mm512_storeu_ps(p, v)
#define FMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MUL(a, b) _mm512_mul_ps(a, b)
#define XF_LD XF_LD_F32
#define SFX(name) name##_f32
#define TRANSPOSED_STORE transposed_store_f32
#include "kron_step_avx512_impl.h"


/* The registry's entry points: the typed step behind the type-erased signature. */
#define EXPORT(REAL, SFX)                                                                   \
    void matkron_avx512_pack_##SFX(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si, \
                                   ptrdiff_t f_sk, void *pack)                              \
    {                                                                                        \
        pack_typed_##SFX(p, q, (const REAL *)f, f_si, f_sk, (REAL *)pack);                  \
    }                                                                                        \
    int matkron_avx512_step_##SFX(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha, \
                                  const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr,            \
                                  const void *beta, void *y, ptrdiff_t y_si,                \
                                  ptrdiff_t y_sr, void *pack, ptrdiff_t pack_size)          \
    {                                                                                        \
        return step_typed_##SFX(p, q, n, *(const REAL *)alpha, (const REAL *)x, x_sk, x_sr,  \
                                *(const REAL *)beta, (REAL *)y, y_si, y_sr, (REAL *)pack,   \
                                pack_size);                                                  \
    }
EXPORT(double, f64)
EXPORT(float, f32)

#else  /* no AVX-512 in this build: the rows stay, and report the kernel unavailable */

int matkron_avx512_detect(void)
{
    return 0;
}

#define NO_STEP(SFX)                                                                        \
    void matkron_avx512_pack_##SFX(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si, \
                                   ptrdiff_t f_sk, void *pack)                              \
    {                                                                                        \
        (void)p; (void)q; (void)f; (void)f_si; (void)f_sk; (void)pack;                       \
    }                                                                                        \
    int matkron_avx512_step_##SFX(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha, \
                                  const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr,            \
                                  const void *beta, void *y, ptrdiff_t y_si,                \
                                  ptrdiff_t y_sr, void *pack, ptrdiff_t pack_size)          \
    {                                                                                        \
        (void)p; (void)q; (void)n; (void)alpha; (void)x; (void)x_sk; (void)x_sr;             \
        (void)beta; (void)y; (void)y_si; (void)y_sr; (void)pack; (void)pack_size;            \
        return -1;                                                                           \
    }
NO_STEP(f64)
NO_STEP(f32)

#endif
