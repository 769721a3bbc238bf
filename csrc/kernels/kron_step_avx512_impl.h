/* The AVX-512 Kronecker step for one real type, included by kron_step_avx512.c once per
 * type.
 *
 * The includer defines: REAL (the element type), VEC (its 512-bit vector), L (lanes per
 * vector), MASK and LANES(n) (a mask of the first n lanes), SETZERO, SET1, LOADU,
 * MASKZ_LOADU, MASK_STOREU, STOREU, FMADD, MUL (the intrinsics), XF_LD (the row stride of
 * the XF copy, in elements), SFX(name) (the type's suffix) and
 * TRANSPOSED_STORE(rows, out, s_vec, vec0, vecs, bc0, bcs, alpha, accumulate), which
 * writes the 8 vectors `rows` (vector j at broadcast index bc0 + j) transposed: lane l to
 * out[(vec0 + l) * s_vec + bc0 + j], for l < vecs and j < bcs.
 *
 * Tiles are V vectors (V <= 3) by 8 broadcasts, 24 accumulators (see kron_step_avx512.c).
 */

/* dst = alpha * v (+ dst when accumulating), on the lanes of `mask`. */
TARGET void SFX(store_lanes)(REAL *dst, MASK mask, VEC v, VEC alpha, int accumulate)
{
    if (accumulate)
        v = FMADD(v, alpha, MASKZ_LOADU(mask, dst));
    else
        v = MUL(v, alpha);
    MASK_STOREU(dst, mask, v);
}

/* Write the tile acc[v][j] (vector v runs along the "vector index" from vec0 + L v,
 * broadcast j is the "broadcast index" bc0 + j) to out[vec * s_vec + bc * s_bc], for
 * vec < n_vec and bc < n_bc. One of s_vec, s_bc is 1. */
TARGET void SFX(store_tile)(int V, VEC acc[3][8], REAL *out, ptrdiff_t s_vec,
                            ptrdiff_t s_bc, ptrdiff_t vec0, ptrdiff_t n_vec, ptrdiff_t bc0,
                            ptrdiff_t n_bc, VEC alpha, int accumulate)
{
    int v, j;
    ptrdiff_t bcs = n_bc - bc0 < 8 ? n_bc - bc0 : 8;
    if (s_vec == 1) {
        for (v = 0; v < V; v++) {
            MASK mask = LANES(n_vec - vec0 - L * v);
            for (j = 0; j < 8; j++)  /* constant bounds keep acc in registers */
                if (j < bcs)
                    SFX(store_lanes)(out + (vec0 + L * v) + (bc0 + j) * s_bc, mask,
                                     acc[v][j], alpha, accumulate);
        }
    } else {
        for (v = 0; v < V; v++)
            TRANSPOSED_STORE(acc[v], out, s_vec, vec0 + L * v, n_vec - vec0 - L * v, bc0,
                             bcs, alpha, accumulate);
    }
}

/* FX tile: V vectors along i (packed factor rows i0..) by 8 columns r0.. of X (x_sk = 1). */
TARGET void SFX(tile_fx)(int V, ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                         const REAL *pack, const REAL *x, ptrdiff_t x_sr, REAL *y,
                         ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                         VEC alpha, int accumulate)
{
    VEC c[3][8], acc[3][8];  /* c is never addressed: it stays in registers */
    const REAL *col[8];
    ptrdiff_t k;
    int v, j;
    for (j = 0; j < 8; j++) {
        /* Columns past the end repeat the last one (their results are not stored). */
        ptrdiff_t r = r0 + j < n ? r0 + j : n - 1;
        col[j] = x + r * x_sr;
    }
    for (v = 0; v < 3; v++)
        for (j = 0; j < 8; j++)
            c[v][j] = SETZERO();
    const REAL *a = pack + i0;
    for (k = 0; k < q; k++) {
        VEC av[3];
        for (v = 0; v < V; v++)
            av[v] = LOADU(a + L * v);
        for (j = 0; j < 8; j++) {
            VEC b = SET1(col[j][k]);
            for (v = 0; v < V; v++)
                c[v][j] = FMADD(av[v], b, c[v][j]);
        }
        a += ldp;
    }
    for (v = 0; v < 3; v++)
        for (j = 0; j < 8; j++)
            acc[v][j] = c[v][j];
    SFX(store_tile)(V, acc, y, y_si, y_sr, i0, p, r0, n, alpha, accumulate);
}

/* XF tile: V vectors along r (rows r0.. of X, x_sr = 1, starting at xr) by 8 factor
 * rows i0... */
TARGET void SFX(tile_xf)(int V, ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                         const REAL *pack, const REAL *xr, ptrdiff_t x_sk, REAL *y,
                         ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                         VEC alpha, int accumulate)
{
    VEC c[3][8], acc[3][8];  /* c is never addressed: it stays in registers */
    MASK mask[3];
    ptrdiff_t k;
    int v, j;
    for (v = 0; v < 3; v++) {
        mask[v] = LANES(n - r0 - L * v);
        for (j = 0; j < 8; j++)
            c[v][j] = SETZERO();
    }
    const REAL *b = pack + i0;
    const REAL *a = xr;
    for (k = 0; k < q; k++) {
        VEC av[3];
        for (v = 0; v < V; v++)
            av[v] = MASKZ_LOADU(mask[v], a + L * v);
        for (j = 0; j < 8; j++) {
            VEC bj = SET1(b[j]);
            for (v = 0; v < V; v++)
                c[v][j] = FMADD(av[v], bj, c[v][j]);
        }
        a += x_sk;
        b += ldp;
    }
    for (v = 0; v < 3; v++)
        for (j = 0; j < 8; j++)
            acc[v][j] = c[v][j];
    SFX(store_tile)(V, acc, y, y_sr, y_si, r0, n, i0, p, alpha, accumulate);
}

/* The FX tiles with vectors along i (covering p from i0) for columns r0 .. r0 + 7. */
TARGET void SFX(fx_column_block)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                                 const REAL *pack, const REAL *x, ptrdiff_t x_sr, REAL *y,
                                 ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                                 VEC va, int accumulate)
{
    if (p - i0 > 2 * L)
        SFX(tile_fx)(3, p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0, va, accumulate);
    else if (p - i0 > L)
        SFX(tile_fx)(2, p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0, va, accumulate);
    else
        SFX(tile_fx)(1, p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0, r0, va, accumulate);
}

TARGET_FN void SFX(run_fx)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                           const REAL *pack, const REAL *x, ptrdiff_t x_sr, REAL *y,
                           ptrdiff_t y_si, ptrdiff_t y_sr, REAL alpha, int accumulate)
{
    VEC va = SET1(alpha);
    ptrdiff_t b0, r0, i0, end;
    for (b0 = 0; b0 < n; b0 += FX_BLOCK) {
        end = n - b0 < FX_BLOCK ? n : b0 + FX_BLOCK;
        if (y_si == 1) {
            /* Output columns are contiguous: finish each before the next. */
            for (r0 = b0; r0 < end; r0 += 8)
                for (i0 = 0; i0 < p; i0 += 3 * L)
                    SFX(fx_column_block)(p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0,
                                         r0, va, accumulate);
        } else {
            /* Output rows are contiguous: write FX_BLOCK of each in one run. */
            for (i0 = 0; i0 < p; i0 += 3 * L)
                for (r0 = b0; r0 < end; r0 += 8)
                    SFX(fx_column_block)(p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, i0,
                                         r0, va, accumulate);
        }
    }
}

/* The XF tile for rows r0 .. r0 + 3 L - 1 (fewer at the end) and factor rows i0 .. i0 + 7. */
TARGET void SFX(xf_row_block)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t rows, ptrdiff_t ldp,
                              const REAL *pack, const REAL *xs, ptrdiff_t sk, REAL *y,
                              ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r0,
                              VEC va, int accumulate)
{
    if (rows - r0 > 2 * L)
        SFX(tile_xf)(3, p, q, rows, ldp, pack, xs + r0, sk, y, y_si, y_sr, i0, r0, va,
                     accumulate);
    else if (rows - r0 > L)
        SFX(tile_xf)(2, p, q, rows, ldp, pack, xs + r0, sk, y, y_si, y_sr, i0, r0, va,
                     accumulate);
    else
        SFX(tile_xf)(1, p, q, rows, ldp, pack, xs + r0, sk, y, y_si, y_sr, i0, r0, va,
                     accumulate);
}

TARGET_FN void SFX(run_xf)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, ptrdiff_t ldp,
                           const REAL *pack, const REAL *x, ptrdiff_t x_sk, REAL *y,
                           ptrdiff_t y_si, ptrdiff_t y_sr, REAL alpha, int accumulate,
                           REAL *xbuf)
{
    VEC va = SET1(alpha);
    ptrdiff_t b0, r0, i0, k, rows;
    for (b0 = 0; b0 < n; b0 += XF_BLOCK) {
        /* X's rows b0.. are read once per 8 factor rows. When its columns lie far apart
         * they would defeat the prefetcher in short runs, and at a stride of a multiple
         * of 256 bytes they would evict each other from L1: copy a block of rows in long
         * runs first. */
        const REAL *xs = x + b0;
        ptrdiff_t sk = x_sk;
        rows = n - b0 < XF_BLOCK ? n - b0 : XF_BLOCK;
        if (matkron_avx512_copies(p, x_sk)) {
            for (k = 0; k < q; k++)
                for (r0 = 0; r0 < rows; r0 += L)
                    STOREU(xbuf + XF_LD * k + r0,
                           MASKZ_LOADU(LANES(rows - r0), x + k * x_sk + b0 + r0));
            xs = xbuf;
            sk = XF_LD;
        }
        if (y_sr == 1) {
            /* Output rows are contiguous: write the block of each in one run. */
            for (i0 = 0; i0 < p; i0 += 8)
                for (r0 = 0; r0 < rows; r0 += 3 * L)
                    SFX(xf_row_block)(p, q, rows, ldp, pack, xs, sk, y + b0 * y_sr, y_si,
                                      y_sr, i0, r0, va, accumulate);
        } else {
            for (r0 = 0; r0 < rows; r0 += 3 * L)
                for (i0 = 0; i0 < p; i0 += 8)
                    SFX(xf_row_block)(p, q, rows, ldp, pack, xs, sk, y + b0 * y_sr, y_si,
                                      y_sr, i0, r0, va, accumulate);
        }
    }
}

static void SFX(pack_typed)(ptrdiff_t p, ptrdiff_t q, const REAL *f, ptrdiff_t f_si,
                            ptrdiff_t f_sk, REAL *pack)
{
    ptrdiff_t ldp = ROUNDV(p), i, k;
    for (k = 0; k < q; k++) {
        for (i = 0; i < p; i++)
            pack[k * ldp + i] = f[i * f_si + k * f_sk];
        for (; i < ldp; i++)
            pack[k * ldp + i] = 0;
    }
}

static int SFX(step_typed)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, REAL alpha,
                           const REAL *x, ptrdiff_t x_sk, ptrdiff_t x_sr,
                           REAL beta, REAL *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                           REAL *pack, ptrdiff_t pack_size)
{
    ptrdiff_t ldp = ROUNDV(p), i, r;
    int accumulate = beta != 0, by_rows = x_sr == 1 && !(x_sk == 1 && n == 1);
    if (!matkron_avx512_detect() || (beta != 0 && beta != 1)
            || (x_sk != 1 && x_sr != 1) || (y_si != 1 && y_sr != 1)
            || pack_size < (ldp + (by_rows && matkron_avx512_copies(p, x_sk)
                                   ? XF_LD : 0)) * q)
        return -1;
    if (p <= 0 || n <= 0)
        return 0;
    if (alpha == 0) {
        /* As BLAS: X is not read (so an inf or nan in it does not reach Y). */
        if (!accumulate)
            for (r = 0; r < n; r++)
                for (i = 0; i < p; i++)
                    y[i * y_si + r * y_sr] = 0;
        return 0;
    }
    if (by_rows)
        SFX(run_xf)(p, q, n, ldp, pack, x, x_sk, y, y_si, y_sr, alpha, accumulate,
                    pack + ldp * q);
    else
        SFX(run_fx)(p, q, n, ldp, pack, x, x_sr, y, y_si, y_sr, alpha, accumulate);
    return 0;
}
