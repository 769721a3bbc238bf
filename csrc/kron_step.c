/* One Kronecker step in float64 with AVX-512 (see kron_step.h).
 *
 * Register tiles are V vectors of 8 doubles (V <= 3) by 8 broadcast scalars: 24
 * accumulators, each step of the k loop being V vector loads, 8 broadcasts and 8 V fused
 * multiply-adds. Which operand gives the vectors depends on the tensor's layout:
 *
 *   x_sk == 1 ("FX"): vectors along i from the packed factor, broadcasts of X[k, r];
 *   x_sr == 1 ("XF"): vectors along r straight from X, broadcasts of the packed factor.
 *
 * The tensor is never packed or copied: its reads stream along its unit stride. Only
 * the factor, which is small, is packed (zero-padded to whole vectors, so edge tiles need
 * no masks on its side). An output that runs along the broadcast index is written by
 * transposing 8x8 blocks of the tile in registers.
 */
#include "kron_step.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATKRON_HAVE_AVX512 1
#include <immintrin.h>
#else
#define MATKRON_HAVE_AVX512 0
#endif

#define ROUND8(n) (((n) + 7) / 8 * 8)
/* Rows of X the XF path copies together, and their stride in the copy: 264 doubles keep
 * successive k off the same L1 sets. */
#define XF_BLOCK 256
/* Columns of X the FX path takes together (for runs of output rows). */
#define FX_BLOCK 64
#define XF_BLOCK_LD 264

int matkron_kron_step_copies(ptrdiff_t p, ptrdiff_t x_sk)
{
    return p > 8 && (x_sk > XF_BLOCK_LD || (x_sk >= 32 && x_sk % 32 == 0));
}

ptrdiff_t matkron_kron_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size)
{
    /* A copy (see matkron_kron_step_copies) needs p > 8 and a stride of 32 or more,
     * which takes 32 q elements in X when its modes are dense (a step given a larger
     * stride declines: see pack_size in matkron_kron_step_f64). */
    int may_copy = p > 8 && size >= 32 * q;
    return (ROUND8(p) + (may_copy ? XF_BLOCK_LD : 0)) * q;
}

#if MATKRON_HAVE_AVX512

int matkron_kron_step_available(void)
{
    static int available = -1;
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return available;
}

#define TARGET __attribute__((target("avx512f"), always_inline)) static inline
#define TARGET_FN __attribute__((target("avx512f"))) static

/* Mask of the first `count` lanes (count may exceed 8). */
TARGET __mmask8 lanes(ptrdiff_t count)
{
    return count >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (count > 0 ? count : 0)) - 1u);
}

/* Transpose the 8x8 block rows[0..7] (row a holds M[a][0..7]) into cols (col b holds
 * M[0..7][b]). */
TARGET void transpose8(const __m512d rows[8], __m512d cols[8])
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

/* dst = alpha * v (+ dst when accumulating), on the lanes of `mask`. */
TARGET void store_lanes(double *dst, __mmask8 mask, __m512d v, __m512d alpha, int accumulate)
{
    if (accumulate)
        v = _mm512_fmadd_pd(v, alpha, _mm512_maskz_loadu_pd(mask, dst));
    else
        v = _mm512_mul_pd(v, alpha);
    _mm512_mask_storeu_pd(dst, mask, v);
}

/* Write the tile acc[v][j] (vector v runs along the "vector index" from vec0 + 8 v,
 * broadcast j is the "broadcast index" bc0 + j) to out[vec * s_vec + bc * s_bc], for
 * vec < n_vec and bc < n_bc. One of s_vec, s_bc is 1. */
TARGET void store_tile(int V, __m512d acc[3][8], double *out, ptrdiff_t s_vec,
                       ptrdiff_t s_bc, ptrdiff_t vec0, ptrdiff_t n_vec, ptrdiff_t bc0,
                       ptrdiff_t n_bc, __m512d alpha, int accumulate)
{
    int v, j;
    ptrdiff_t bcs = n_bc - bc0 < 8 ? n_bc - bc0 : 8;
    if (s_vec == 1) {
        for (v = 0; v < V; v++) {
            __mmask8 mask = lanes(n_vec - vec0 - 8 * v);
            for (j = 0; j < 8; j++)  /* constant bounds keep acc in registers */
                if (j < bcs)
                    store_lanes(out + (vec0 + 8 * v) + (bc0 + j) * s_bc, mask, acc[v][j],
                                alpha, accumulate);
        }
    } else {
        __mmask8 mask = lanes(bcs);
        for (v = 0; v < V; v++) {
            __m512d cols[8];
            ptrdiff_t vecs = n_vec - vec0 - 8 * v;
            transpose8(acc[v], cols);
            for (j = 0; j < 8; j++)
                if (j < vecs)
                    store_lanes(out + (vec0 + 8 * v + j) * s_vec + bc0, mask, cols[j],
                                alpha, accumulate);
        }
    }
}

/* FX tile: V vectors along i (packed factor rows i0..) by 8 columns r0.. of X (x_sk = 1). */
TARGET void tile_fx(int V, ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                    const double *pack, const double *x, ptrdiff_t x_sr, double *y,
                    ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                    __m512d alpha, int accumulate)
{
    __m512d c[3][8], acc[3][8];  /* c is never addressed: it stays in registers */
    const double *col[8];
    ptrdiff_t k;
    int v, j;
    for (j = 0; j < 8; j++) {
        /* Columns past the end repeat the last one (their results are not stored). */
        ptrdiff_t r = r0 + j < n ? r0 + j : n - 1;
        col[j] = x + r * x_sr;
    }
    for (v = 0; v < 3; v++)
        for (j = 0; j < 8; j++)
            c[v][j] = _mm512_setzero_pd();
    const double *a = pack + i0;
    for (k = 0; k < q; k++) {
        __m512d av[3];
        for (v = 0; v < V; v++)
            av[v] = _mm512_loadu_pd(a + 8 * v);
        for (j = 0; j < 8; j++) {
            __m512d b = _mm512_set1_pd(col[j][k]);
            for (v = 0; v < V; v++)
                c[v][j] = _mm512_fmadd_pd(av[v], b, c[v][j]);
        }
        a += ldp;
    }
    for (v = 0; v < 3; v++)
        for (j = 0; j < 8; j++)
            acc[v][j] = c[v][j];
    store_tile(V, acc, y, y_si, y_sr, i0, p, r0, n, alpha, accumulate);
}

/* XF tile: V vectors along r (rows r0.. of X, x_sr = 1, starting at xr) by 8 factor
 * rows i0... */
TARGET void tile_xf(int V, ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                    const double *pack, const double *xr, ptrdiff_t x_sk, double *y,
                    ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                    __m512d alpha, int accumulate)
{
    __m512d c[3][8], acc[3][8];  /* c is never addressed: it stays in registers */
    __mmask8 mask[3];
    ptrdiff_t k;
    int v, j;
    for (v = 0; v < 3; v++) {
        mask[v] = lanes(n - r0 - 8 * v);
        for (j = 0; j < 8; j++)
            c[v][j] = _mm512_setzero_pd();
    }
    const double *b = pack + i0;
    const double *a = xr;
    for (k = 0; k < q; k++) {
        __m512d av[3];
        for (v = 0; v < V; v++)
            av[v] = _mm512_maskz_loadu_pd(mask[v], a + 8 * v);
        for (j = 0; j < 8; j++) {
            __m512d bj = _mm512_set1_pd(b[j]);
            for (v = 0; v < V; v++)
                c[v][j] = _mm512_fmadd_pd(av[v], bj, c[v][j]);
        }
        a += x_sk;
        b += ldp;
    }
    for (v = 0; v < 3; v++)
        for (j = 0; j < 8; j++)
            acc[v][j] = c[v][j];
    store_tile(V, acc, y, y_sr, y_si, r0, n, i0, p, alpha, accumulate);
}

/* The FX tiles with vectors along i (covering p) for columns r0 .. r0 + 7. */
TARGET void fx_column_block(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                            const double *pack, const double *x, ptrdiff_t x_sr, double *y,
                            ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                            __m512d va, int accumulate)
{
    if (p - i0 > 16)
        tile_fx(3, p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0, va, accumulate);
    else if (p - i0 > 8)
        tile_fx(2, p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0, va, accumulate);
    else
        tile_fx(1, p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0, va, accumulate);
}

TARGET_FN void run_fx(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                      const double *pack, const double *x, ptrdiff_t x_sr, double *y,
                      ptrdiff_t y_si, ptrdiff_t y_sr, double alpha, int accumulate)
{
    __m512d va = _mm512_set1_pd(alpha);
    ptrdiff_t b0, r0, i0, end;
    for (b0 = 0; b0 < n; b0 += FX_BLOCK) {
        end = n - b0 < FX_BLOCK ? n : b0 + FX_BLOCK;
        if (y_si == 1) {
            /* Output columns are contiguous: finish each before the next. */
            for (r0 = b0; r0 < end; r0 += 8)
                for (i0 = 0; i0 < p; i0 += 24)
                    fx_column_block(p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0,
                                    va, accumulate);
        } else {
            /* Output rows are contiguous: write FX_BLOCK of each in one run. */
            for (i0 = 0; i0 < p; i0 += 24)
                for (r0 = b0; r0 < end; r0 += 8)
                    fx_column_block(p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0,
                                    va, accumulate);
        }
    }
}

/* The XF tile for rows r0 .. r0 + 23 (fewer at the end) and factor rows i0 .. i0 + 7. */
TARGET void xf_row_block(ptrdiff_t p, ptrdiff_t q, ptrdiff_t rows, ptrdiff_t ldp,
                         const double *pack, const double *xs, ptrdiff_t sk, double *y,
                         ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                         __m512d va, int accumulate)
{
    if (rows - r0 > 16)
        tile_xf(3, p, q, rows, ldp, pack, xs + r0, sk, y, y_si, y_sr, i0, r0, va, accumulate);
    else if (rows - r0 > 8)
        tile_xf(2, p, q, rows, ldp, pack, xs + r0, sk, y, y_si, y_sr, i0, r0, va, accumulate);
    else
        tile_xf(1, p, q, rows, ldp, pack, xs + r0, sk, y, y_si, y_sr, i0, r0, va, accumulate);
}

TARGET_FN void run_xf(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                      const double *pack, const double *x, ptrdiff_t x_sk, double *y,
                      ptrdiff_t y_si, ptrdiff_t y_sr, double alpha, int accumulate,
                      double *xbuf)
{
    __m512d va = _mm512_set1_pd(alpha);
    ptrdiff_t b0, r0, i0, k, rows;
    for (b0 = 0; b0 < n; b0 += XF_BLOCK) {
        /* X's rows b0.. are read once per 8 factor rows. When its columns lie far apart
         * they would defeat the prefetcher in short runs, and at a stride of a multiple
         * of 256 bytes they would evict each other from L1: copy a block of rows in long
         * runs first. */
        const double *xs = x + b0;
        ptrdiff_t sk = x_sk;
        rows = n - b0 < XF_BLOCK ? n - b0 : XF_BLOCK;
        if (matkron_kron_step_copies(p, x_sk)) {
            for (k = 0; k < q; k++)
                for (r0 = 0; r0 < rows; r0 += 8)
                    _mm512_storeu_pd(xbuf + XF_BLOCK_LD * k + r0, _mm512_maskz_loadu_pd(
                        lanes(rows - r0), x + k * x_sk + b0 + r0));
            xs = xbuf;
            sk = XF_BLOCK_LD;
        }
        if (y_sr == 1) {
            /* Output rows are contiguous: write the block of each in one run. */
            for (i0 = 0; i0 < p; i0 += 8)
                for (r0 = 0; r0 < rows; r0 += 24)
                    xf_row_block(p, q, rows, ldp, pack, xs, sk, y + b0 * y_sr, y_si, y_sr,
                                 i0, r0, va, accumulate);
        } else {
            for (r0 = 0; r0 < rows; r0 += 24)
                for (i0 = 0; i0 < p; i0 += 8)
                    xf_row_block(p, q, rows, ldp, pack, xs, sk, y + b0 * y_sr, y_si, y_sr,
                                 i0, r0, va, accumulate);
        }
    }
}

void matkron_kron_pack_f64(ptrdiff_t p, ptrdiff_t q, const double *f, ptrdiff_t f_si,
                           ptrdiff_t f_sk, double *pack)
{
    ptrdiff_t ldp = ROUND8(p), i, k;
    for (k = 0; k < q; k++) {
        for (i = 0; i < p; i++)
            pack[k * ldp + i] = f[i * f_si + k * f_sk];
        for (; i < ldp; i++)
            pack[k * ldp + i] = 0.0;
    }
}

int matkron_kron_step_f64(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, double alpha,
                          const double *x, ptrdiff_t x_sk, ptrdiff_t x_sr,
                          double beta, double *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                          double *pack, ptrdiff_t pack_size)
{
    ptrdiff_t ldp = ROUND8(p), i, r;
    int accumulate = beta != 0, by_rows = x_sr == 1 && !(x_sk == 1 && n == 1);
    if (!matkron_kron_step_available() || (beta != 0 && beta != 1)
            || (x_sk != 1 && x_sr != 1) || (y_si != 1 && y_sr != 1)
            || pack_size < (ldp + (by_rows && matkron_kron_step_copies(p, x_sk)
                                   ? XF_BLOCK_LD : 0)) * q)
        return -1;
    if (p <= 0 || n <= 0)
        return 0;
    if (alpha == 0) {
        /* As BLAS: X is not read (so an inf or nan in it does not reach Y). */
        if (!accumulate)
            for (r = 0; r < n; r++)
                for (i = 0; i < p; i++)
                    y[i * y_si + r * y_sr] = 0.0;
        return 0;
    }
    if (by_rows)
        run_xf(p, q, n, ldp, pack, x, x_sk, y, y_si, y_sr, alpha, accumulate,
               pack + ldp * q);
    else
        run_fx(p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, alpha, accumulate);
    return 0;
}

#else  /* no AVX-512 in this build */

int matkron_kron_step_available(void)
{
    return 0;
}

void matkron_kron_pack_f64(ptrdiff_t p, ptrdiff_t q, const double *f, ptrdiff_t f_si,
                           ptrdiff_t f_sk, double *pack)
{
    (void)p; (void)q; (void)f; (void)f_si; (void)f_sk; (void)pack;
}

int matkron_kron_step_f64(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, double alpha,
                          const double *x, ptrdiff_t x_sk, ptrdiff_t x_sr,
                          double beta, double *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                          double *pack, ptrdiff_t pack_size)
{
    (void)p; (void)q; (void)n; (void)alpha; (void)x; (void)x_sk; (void)x_sr; (void)beta;
    (void)y; (void)y_si; (void)y_sr; (void)pack; (void)pack_size;
    return -1;
}

#endif
