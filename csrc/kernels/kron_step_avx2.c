/* One Kronecker step in float64 or float32 with AVX2 and FMA: the kernel of the registry
 * rows "avx2_f64" and "avx2_f32" (see registry.c for its facts, kernels.h for the step).
 *
 * Register tiles are 3 vectors (4 doubles or 8 floats each) by 4 broadcast scalars: 12
 * accumulators, which with the 3 vectors and a broadcast fill the 16 ymm registers; each
 * step of the k loop is 3 vector loads, 4 broadcasts and 12 fused multiply-adds. Which
 * operand gives the vectors depends on the tensor's layout (as in the AVX-512 kernel,
 * kron_step_avx512.c):
 *
 *   x_sk == 1 ("FX"): vectors along i from the packed factor, broadcasts of X[k, r];
 *   x_sr == 1 ("XF"): vectors along r straight from X, broadcasts of the packed factor.
 *
 * Measured on an AMD EPYC (Zen 3), 3x4 tiles ran as fast as 2x6 ones or faster (up to
 * 1.3x with 2 vectors, where 2x4 beat 2x6; 4 broadcasts also match the pack's panels), so
 * FX covers the factor's rows with 3x4 tiles, but 2x4 where 2 or 4 vectors are left and
 * 1x4 for 1, and XF its rows 4 at a time (the last 1 to 3 as a narrower tile).
 *
 * The tensor is never packed: its reads stream along its unit stride. Only the factor,
 * which is small, is packed, in zero-padded panels of one vector's rows (so FX's edge
 * tiles need no masks on its side, and every tile reads its panels in sequence). XF's last
 * vectors along r are read with masked loads; at strides that alias in L1 it copies X in
 * blocks of rows first. Stores of whole vectors are plain; a partial vector goes through
 * a buffer, element by element (AVX's masked stores are slow on AMD's cores). An output
 * that runs along the broadcast index is written by transposing the tile in registers:
 * 4x4 blocks of doubles, 8x4 of floats.
 *
 * The code for one type is kron_step_avx2_impl.h, included here once per type.
 */
#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATKRON_HAVE_AVX2 1
#include <immintrin.h>
#else
#define MATKRON_HAVE_AVX2 0
#endif

#define ROUND8(n) (((n) + 7) / 8 * 8)
/* Bytes of X's columns the FX path takes together (see run_fx). */
#define FX_BYTES 16384
/* Rows of X the XF path takes together (a multiple of every tile's 3 L), and their stride
 * in the copy: 200 doubles or 208 floats, an odd number of cache lines. */
#define XF_BLOCK 192
/* The factor's columns the XF path takes at a time: a block of X's rows, 128 by 192,
 * stays in L2 (with all of them at once, XF steps of 181x181 and 16x512 factors ran up to
 * 1.3x slower). */
#define XF_KC 128
#define XF_LD_F64 200
#define XF_LD_F32 208

int matkron_avx2_copies(ptrdiff_t p, ptrdiff_t x_sk)
{
    /* Measured: X's rows read in place at a stride of a multiple of 512 bytes evict each
     * other from L1, and at strides beyond a block's rows (many short runs, one per k)
     * the prefetcher falls behind: from 96x96 factors on, the XF step ran at half the
     * speed of the copying one. With at most 8 factor rows, X's tiles are read once or
     * twice: the copy costs more than it saves. */
    return p > 8 && (x_sk > XF_LD_F64 || (x_sk >= 64 && x_sk % 64 == 0));
}

ptrdiff_t matkron_avx2_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size)
{
    /* Rows rounded to whole vectors of either type, and room for a copy of X's rows
     * (see matkron_avx2_copies) when a stride of 64 or more fits in `size` (a step
     * given a larger stride than its tensor's size suggests declines). */
    int may_copy = p > 8 && size >= 64 * q;
    return (ROUND8(p) + (may_copy ? XF_LD_F32 : 0)) * q;
}

#if MATKRON_HAVE_AVX2

int matkron_avx2_detect(void)
{
    /* Cached here too: the step checks it on every call (the registry asks once). */
    static int available = -1;
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return available;
}

#define TARGET __attribute__((target("avx2,fma"), always_inline)) static inline
#define TARGET_FN __attribute__((target("avx2,fma"))) static

/* The modes of a step's stores: times alpha (not 1), plus the old value (beta 1). */
#define SCALE 2
#define ACCUMULATE 1

TARGET __m256d scaled_f64(__m256d v, __m256d alpha, int mode, const double *dst)
{
    if (mode & SCALE)
        return mode & ACCUMULATE ? _mm256_fmadd_pd(v, alpha, _mm256_loadu_pd(dst))
                                 : _mm256_mul_pd(v, alpha);
    return mode & ACCUMULATE ? _mm256_add_pd(v, _mm256_loadu_pd(dst)) : v;
}

TARGET __m256 scaled_f32(__m256 v, __m256 alpha, int mode, const float *dst)
{
    if (mode & SCALE)
        return mode & ACCUMULATE ? _mm256_fmadd_ps(v, alpha, _mm256_loadu_ps(dst))
                                 : _mm256_mul_ps(v, alpha);
    return mode & ACCUMULATE ? _mm256_add_ps(v, _mm256_loadu_ps(dst)) : v;
}

/* Transpose the 4x4 doubles rows[0..3] (row a holds M[a][0..3]) into cols (col b holds
 * M[0..3][b]). */
TARGET void transpose4_pd(__m256d r0, __m256d r1, __m256d r2, __m256d r3, __m256d cols[4])
{
    __m256d t0 = _mm256_unpacklo_pd(r0, r1);  /* M00 M10 M02 M12 */
    __m256d t1 = _mm256_unpackhi_pd(r0, r1);  /* M01 M11 M03 M13 */
    __m256d t2 = _mm256_unpacklo_pd(r2, r3);
    __m256d t3 = _mm256_unpackhi_pd(r2, r3);
    cols[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    cols[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    cols[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    cols[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* The doubles' TRANSPOSED_STORE (see kron_step_avx2_impl.h). */
TARGET void transposed_store_f64(__m256d v0, __m256d v1, __m256d v2, __m256d v3,
                                 double *out, ptrdiff_t s_vec, ptrdiff_t vecs,
                                 __m256d alpha, int mode)
{
    __m256d cols[4];
    double *dst;
    int l;
    transpose4_pd(v0, v1, v2, v3, cols);
    for (l = 0; l < 4; l++) {
        if (l < vecs) {
            dst = out + l * s_vec;
            _mm256_storeu_pd(dst, scaled_f64(cols[l], alpha, mode, dst));
        }
    }
}

/* The floats' TRANSPOSED_STORE: an 8x4 block gives each lane a run of 4 floats. */
TARGET void transposed_store_f32(__m256 v0, __m256 v1, __m256 v2, __m256 v3, float *out,
                                 ptrdiff_t s_vec, ptrdiff_t vecs, __m256 alpha, int mode)
{
    __m256 t0 = _mm256_unpacklo_ps(v0, v1);  /* lanes 0 1 | 4 5 of v0 and v1 */
    __m256 t1 = _mm256_unpackhi_ps(v0, v1);  /* lanes 2 3 | 6 7 */
    __m256 t2 = _mm256_unpacklo_ps(v2, v3);
    __m256 t3 = _mm256_unpackhi_ps(v2, v3);
    __m256 u[4];
    __m128 w;
    float *dst;
    int l;
    u[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    u[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    u[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    u[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    if (mode & SCALE)
        for (l = 0; l < 4; l++)
            u[l] = _mm256_mul_ps(u[l], alpha);
    /* u[l] holds lane l in its low half, lane l + 4 in its high half. */
    for (l = 0; l < 8; l++) {
        if (l < vecs) {
            dst = out + l * s_vec;
            w = l < 4 ? _mm256_castps256_ps128(u[l]) : _mm256_extractf128_ps(u[l - 4], 1);
            if (mode & ACCUMULATE)
                w = _mm_add_ps(w, _mm_loadu_ps(dst));
            _mm_storeu_ps(dst, w);
        }
    }
}

/* float64 */
#define REAL double
#define VEC __m256d
#define L 4
#define ROUNDV(n) (((n) + 3) / 4 * 4)
#define SETZERO() _mm256_setzero_pd()
#define SET1(a) _mm256_set1_pd(a)
#define BROADCAST(p) _mm256_broadcast_sd(p)
#define LOADU(p) _mm256_loadu_pd(p)
#define MASKLOAD(p, m) _mm256_maskload_pd(p, m)
#define LANE_MASK(n) \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
#define STOREU(p, v) _mm256_storeu_pd(p, v)
#define FMADD(a, b, c) _mm256_fmadd_pd(a, b, c)
#define MUL(a, b) _mm256_mul_pd(a, b)
#define SFX(name) name##_f64
#define XF_LD XF_LD_F64
#define TRANSPOSED_STORE transposed_store_f64
#include "kron_step_avx2_impl.h"
#undef REAL
#undef VEC
#undef L
#undef ROUNDV
#undef SETZERO
#undef SET1
#undef BROADCAST
#undef LOADU
#undef MASKLOAD
#undef LANE_MASK
#undef STOREU
#undef FMADD
#undef MUL
#undef SFX
#undef XF_LD
#undef TRANSPOSED_STORE

/* float32 */
#define REAL float
#define VEC __m256
#define L 8
#define ROUNDV(n) ROUND8(n)
#define SETZERO() _mm256_setzero_ps()
#define SET1(a) _mm256_set1_ps(a)
#define BROADCAST(p) _mm256_broadcast_ss(p)
#define LOADU(p) _mm256_loadu_ps(p)
#define MASKLOAD(p, m) _mm256_maskload_ps(p, m)
#define LANE_MASK(n) \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define STOREU(p, v) _mm256_storeu_ps(p, v)
#define FMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MUL(a, b) _mm256_mul_ps(a, b)
#define SFX(name) name##_f32
#define XF_LD XF_LD_F32
#define TRANSPOSED_STORE transposed_store_f32
#include "kron_step_avx2_impl.h"


/* The registry's entry points: the typed step behind the type-erased signature. */
#define EXPORT(REAL, SFX)                                                                   \
    void matkron_avx2_pack_##SFX(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si,   \
                                 ptrdiff_t f_sk, void *pack)                                \
    {                                                                                        \
        pack_typed_##SFX(p, q, (const REAL *)f, f_si, f_sk, (REAL *)pack);                  \
    }                                                                                        \
    int matkron_avx2_step_##SFX(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha,   \
                                const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr,              \
                                const void *beta, void *y, ptrdiff_t y_si, ptrdiff_t y_sr,  \
                                void *pack, ptrdiff_t pack_size)                            \
    {                                                                                        \
        return step_typed_##SFX(p, q, n, *(const REAL *)alpha, (const REAL *)x, x_sk, x_sr,  \
                                *(const REAL *)beta, (REAL *)y, y_si, y_sr, (REAL *)pack,   \
                                pack_size);                                                  \
    }
EXPORT(double, f64)
EXPORT(float, f32)

#else  /* not x86-64 with GCC or Clang: the rows stay, and report the kernel unavailable */

int matkron_avx2_detect(void)
{
    return 0;
}

#define NO_STEP(SFX)                                                                        \
    void matkron_avx2_pack_##SFX(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si,   \
                                 ptrdiff_t f_sk, void *pack)                                \
    {                                                                                        \
        (void)p; (void)q; (void)f; (void)f_si; (void)f_sk; (void)pack;                       \
    }                                                                                        \
    int matkron_avx2_step_##SFX(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha,   \
                                const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr,              \
                                const void *beta, void *y, ptrdiff_t y_si, ptrdiff_t y_sr,  \
                                void *pack, ptrdiff_t pack_size)                            \
    {                                                                                        \
        (void)p; (void)q; (void)n; (void)alpha; (void)x; (void)x_sk; (void)x_sr;             \
        (void)beta; (void)y; (void)y_si; (void)y_sr; (void)pack; (void)pack_size;            \
        return -1;                                                                           \
    }
NO_STEP(f64)
NO_STEP(f32)

#endif
