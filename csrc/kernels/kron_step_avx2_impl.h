/* The AVX2 Kronecker step for one real type, included by kron_step_avx2.c once per type.
 *
 * The includer defines: REAL (the element type), VEC (its 256-bit vector), L (lanes per
 * vector), ROUNDV(n) (n rounded up to whole vectors), SETZERO, SET1, BROADCAST (from
 * memory), LOADU, MASKLOAD, STOREU, FMADD, MUL (the intrinsics), LANE_MASK(n) (the mask
 * vector of the first n lanes, n <= L, for MASKLOAD), XF_LD (the row stride of the XF
 * copy, in elements), SFX(name) (the type's suffix), SFX(scaled)(v, alpha, mode, dst)
 * (v times alpha for SCALE, plus the vector at dst for ACCUMULATE) and
 * TRANSPOSED_STORE(v0, v1, v2, v3, out, s_vec, vecs, alpha, mode), which writes the 4
 * vectors transposed: lane l of vj, by `mode`, to out[l * s_vec + j], for l < vecs.
 *
 * Tiles are up to 3 vectors by 4 broadcasts (see kron_step_avx2.c). Their accumulators
 * are indexed by constants only (loops of constant bounds, unrolled) and passed on by
 * value, never addressed: an array of vectors whose address is taken stays in memory.
 */

/* dst[l * stride] = v[l] by `mode` (SCALE: times alpha; ACCUMULATE: plus dst[l * stride]),
 * for l < count (at most L): through a buffer, element by element. */
TARGET void SFX(store_lanes)(REAL *dst, ptrdiff_t stride, ptrdiff_t count, VEC v,
                             VEC alpha, int mode)
{
    REAL part[L];
    ptrdiff_t l, end = count < L ? count : L;
    STOREU(part, mode & SCALE ? MUL(v, alpha) : v);
    for (l = 0; l < end; l++)
        dst[l * stride] = mode & ACCUMULATE ? dst[l * stride] + part[l] : part[l];
}

/* Write one vector's row of a tile, r0 .. r3 (broadcasts j < B), whose lanes run along the
 * "vector index" from `out`: to out[vec * s_vec + j * s_bc] for vec < vecs and j < bcs.
 * One of s_vec, s_bc is 1; where s_bc is, the output runs along the broadcasts and whole
 * rows of 4 are written transposed, other rows (the factor's last rows, or columns past
 * the end) element by element. */
TARGET void SFX(store_row)(int B, VEC r0, VEC r1, VEC r2, VEC r3, REAL *out,
                           ptrdiff_t s_vec, ptrdiff_t s_bc, ptrdiff_t vecs, ptrdiff_t bcs,
                           VEC alpha, int mode)
{
    VEC r[4] = {r0, r1, r2, r3};
    int j;
    if (s_vec == 1) {
        for (j = 0; j < B; j++) {
            if (j < bcs) {
                REAL *dst = out + j * s_bc;
                if (vecs >= L)
                    STOREU(dst, SFX(scaled)(r[j], alpha, mode, dst));
                else
                    SFX(store_lanes)(dst, 1, vecs, r[j], alpha, mode);
            }
        }
    } else if (B == 4 && bcs >= 4) {
        TRANSPOSED_STORE(r0, r1, r2, r3, out, s_vec, vecs, alpha, mode);
    } else {
        for (j = 0; j < B; j++)
            if (j < bcs)
                SFX(store_lanes)(out + j, s_vec, vecs, r[j], alpha, mode);
    }
}

/* Write the tile c[v][j] (vector v along the vector index from L v, broadcast j along the
 * broadcast index from 0, both counted from the tile's corner `out`) to
 * out[vec * s_vec + bc * s_bc] for vec < vecs and bc < bcs. Written out, not a loop. */
#define STORE_ROW(v, V, B, c, out, s_vec, s_bc, vecs, bcs, alpha, mode)                    \
    if ((V) > (v) && (vecs) > L * (v))                                                      \
    SFX(store_row)(B, c[v][0], c[v][1], c[v][2], c[v][3], (out) + L * (v) * (s_vec), s_vec, \
                   s_bc, (vecs) - L * (v), bcs, alpha, mode)
#define STORE_TILE(V, B, c, out, s_vec, s_bc, vecs, bcs, alpha, mode)                      \
    do {                                                                                    \
        STORE_ROW(0, V, B, c, out, s_vec, s_bc, vecs, bcs, alpha, mode);                    \
        STORE_ROW(1, V, B, c, out, s_vec, s_bc, vecs, bcs, alpha, mode);                    \
        STORE_ROW(2, V, B, c, out, s_vec, s_bc, vecs, bcs, alpha, mode);                    \
    } while (0)

/* FX tile: V vectors along i (the pack's panels from `a`, q L apart, L elements per k) by
 * 4 columns of X (x_sk = 1) from `x`, x_sr apart; `cols` columns are left from x (those
 * past them repeat the last one, and are not stored), `rows` factor rows from a. `y` is
 * the output's corner Y[i0, r0]. */
TARGET void SFX(tile_fx)(int V, ptrdiff_t q, const REAL *a, const REAL *x, ptrdiff_t x_sr,
                         ptrdiff_t cols, REAL *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                         ptrdiff_t rows, VEC alpha, int mode)
{
    VEC z = SETZERO(), c[3][4] = {{z, z, z, z}, {z, z, z, z}, {z, z, z, z}};
    const REAL *col[4];
    ptrdiff_t k, panel = q * L;
    int v, j;
    for (j = 0; j < 4; j++)
        col[j] = x + (j < cols ? j : cols - 1) * x_sr;
    for (k = 0; k < q; k++) {
        VEC av[3];
        for (v = 0; v < V; v++)
            av[v] = LOADU(a + v * panel);
        for (j = 0; j < 4; j++) {
            VEC b = BROADCAST(col[j] + k);
            for (v = 0; v < V; v++)
                c[v][j] = FMADD(av[v], b, c[v][j]);
        }
        a += L;
    }
    STORE_TILE(V, 4, c, y, y_si, y_sr, rows, cols, alpha, mode);
}

/* XF tile: 3 vectors along r (X's rows from `x`, x_sr = 1, x_sk apart per k) by B factor
 * rows (broadcasts from the pack at `b`, L apart per k: B rows of one panel). `rows`
 * elements are left along r; with `masked`, the vectors are read with masks of them (an
 * edge tile). `y` is the output's corner Y[i0, r0]. */
TARGET void SFX(tile_xf)(int B, int masked, ptrdiff_t q, const REAL *b, const REAL *x,
                         ptrdiff_t x_sk, ptrdiff_t rows, REAL *y, ptrdiff_t y_si,
                         ptrdiff_t y_sr, VEC alpha, int mode)
{
    VEC z = SETZERO(), c[3][4] = {{z, z, z, z}, {z, z, z, z}, {z, z, z, z}};
    __m256i mask[3];
    ptrdiff_t k;
    int v, j;
    if (masked) {
        mask[0] = LANE_MASK(rows < L ? rows : L);
        mask[1] = LANE_MASK(rows < L ? 0 : rows < 2 * L ? rows - L : L);
        mask[2] = LANE_MASK(rows < 2 * L ? 0 : rows < 3 * L ? rows - 2 * L : L);
    }
    for (k = 0; k < q; k++) {
        VEC av[3];
        for (v = 0; v < 3; v++)
            av[v] = masked ? MASKLOAD(x + L * v, mask[v]) : LOADU(x + L * v);
        for (j = 0; j < B; j++) {
            VEC bj = BROADCAST(b + j);
            for (v = 0; v < 3; v++)
                c[v][j] = FMADD(av[v], bj, c[v][j]);
        }
        x += x_sk;
        b += L;
    }
    STORE_TILE(3, B, c, y, y_sr, y_si, rows, B, alpha, mode);
}

/* The FX tiles' vectors by the vectors left along i: 3, but 2 for 2 or 4 left (two 2x4
 * tiles measured faster than a 3x4 and a 1x4) and 1 for 1. */
static inline int SFX(fx_vectors)(ptrdiff_t left)
{
    return left == 1 ? 1 : left == 2 || left == 4 ? 2 : 3;
}

/* The FX tile of V vectors (factor rows from i0) by columns r .. r + 3. */
TARGET_FN void SFX(fx_tile)(int V, ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const REAL *pack,
                            const REAL *x, ptrdiff_t x_sr, REAL *y, ptrdiff_t y_si,
                            ptrdiff_t y_sr, ptrdiff_t i0, ptrdiff_t r, VEC va, int mode)
{
    const REAL *a = pack + i0 * q, *xr = x + r * x_sr;  /* i0 / L panels of q L */
    REAL *yr = y + i0 * y_si + r * y_sr;
    if (V == 3)
        SFX(tile_fx)(3, q, a, xr, x_sr, n - r, yr, y_si, y_sr, p - i0, va, mode);
    else if (V == 2)
        SFX(tile_fx)(2, q, a, xr, x_sr, n - r, yr, y_si, y_sr, p - i0, va, mode);
    else
        SFX(tile_fx)(1, q, a, xr, x_sr, n - r, yr, y_si, y_sr, p - i0, va, mode);
}

TARGET_FN void SFX(run_fx)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const REAL *pack,
                           const REAL *x, ptrdiff_t x_sr, REAL *y, ptrdiff_t y_si,
                           ptrdiff_t y_sr, REAL alpha, int mode)
{
    VEC va = SET1(alpha);
    ptrdiff_t b0, i0, r, end, nv = ROUNDV(p) / L;
    /* Columns at a time: about FX_BYTES of X (16 to 96 columns, a multiple of 4), which
     * each block of factor rows sweeps in turn from L1. */
    ptrdiff_t width = FX_BYTES / ((ptrdiff_t)sizeof(REAL) * q) / 4 * 4;
    int V = 1;
    width = width < 16 ? 16 : width > 96 ? 96 : width;
    for (b0 = 0; b0 < n; b0 += width) {
        end = n - b0 < width ? n : b0 + width;
        if (y_si == 1) {
            /* Output columns are contiguous: finish 4 before the next (the block's columns
             * of a tall factor's output would not stay in cache between its rows). */
            for (r = b0; r < end; r += 4)
                for (i0 = 0; i0 < p; i0 += V * L) {
                    V = SFX(fx_vectors)(nv - i0 / L);
                    SFX(fx_tile)(V, p, q, n, pack, x, x_sr, y, y_si, y_sr, i0, r, va, mode);
                }
        } else {
            /* Output rows are contiguous: write the block's run of each in turn. */
            for (i0 = 0; i0 < p; i0 += V * L) {
                V = SFX(fx_vectors)(nv - i0 / L);
                for (r = b0; r < end; r += 4)
                    SFX(fx_tile)(V, p, q, n, pack, x, x_sr, y, y_si, y_sr, i0, r, va, mode);
            }
        }
    }
}

/* The XF tile at rows r .. of the block (3 vectors, masked past `rows`) and factor rows
 * i0 .. i0 + 3 (fewer at the end of the factor), for k0 .. k0 + kc - 1 of the factor's q
 * columns (X's rows at xs are those). */
TARGET_FN void SFX(xf_tile)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t k0, ptrdiff_t kc,
                            const REAL *pack, const REAL *xs, ptrdiff_t sk, ptrdiff_t rows,
                            REAL *y, ptrdiff_t y_si, ptrdiff_t y_sr, ptrdiff_t i0,
                            ptrdiff_t r, VEC va, int mode)
{
    const REAL *b = pack + i0 / L * L * q + k0 * L + i0 % L, *x = xs + r;
    y += i0 * y_si + r * y_sr;
    rows -= r;
    if (p - i0 >= 4) {
        if (rows < 3 * L)
            SFX(tile_xf)(4, 1, kc, b, x, sk, rows, y, y_si, y_sr, va, mode);
        else
            SFX(tile_xf)(4, 0, kc, b, x, sk, rows, y, y_si, y_sr, va, mode);
    } else if (p - i0 == 3) {
        SFX(tile_xf)(3, 1, kc, b, x, sk, rows, y, y_si, y_sr, va, mode);
    } else if (p - i0 == 2) {
        SFX(tile_xf)(2, 1, kc, b, x, sk, rows, y, y_si, y_sr, va, mode);
    } else {
        SFX(tile_xf)(1, 1, kc, b, x, sk, rows, y, y_si, y_sr, va, mode);
    }
}

TARGET_FN void SFX(run_xf)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const REAL *pack,
                           const REAL *x, ptrdiff_t x_sk, REAL *y, ptrdiff_t y_si,
                           ptrdiff_t y_sr, REAL alpha, int mode, REAL *xbuf)
{
    VEC va = SET1(alpha);
    ptrdiff_t b0, k0, kc, r, i0, k, rows;
    int m;
    for (b0 = 0; b0 < n; b0 += XF_BLOCK) {
        rows = n - b0 < XF_BLOCK ? n - b0 : XF_BLOCK;
        /* XF_KC of the factor's columns at a time (those after the first add to Y), so
         * that the block of X's rows they read, XF_KC by XF_BLOCK, stays in L2. */
        for (k0 = 0; k0 < q; k0 += XF_KC) {
            /* X's rows, read once per 4 factor rows. At a stride of a multiple of 512
             * bytes they evict each other from L1, and at a stride beyond the block's
             * rows the prefetcher falls behind: then (xbuf) the block is copied first, in
             * long runs, at a stride of an odd number of lines. */
            const REAL *xs = x + k0 * x_sk + b0;
            ptrdiff_t sk = x_sk;
            kc = q - k0 < XF_KC ? q - k0 : XF_KC;
            m = k0 == 0 ? mode : mode | ACCUMULATE;
            if (xbuf != NULL) {
                for (k = 0; k < kc; k++) {
                    for (r = 0; r + L <= rows; r += L)
                        STOREU(xbuf + XF_LD * k + r, LOADU(xs + k * x_sk + r));
                    if (r < rows)
                        STOREU(xbuf + XF_LD * k + r,
                               MASKLOAD(xs + k * x_sk + r, LANE_MASK(rows - r)));
                }
                xs = xbuf;
                sk = XF_LD;
            }
            if (y_sr == 1) {
                /* Output rows are contiguous: write the block of each in one run. */
                for (i0 = 0; i0 < p; i0 += 4)
                    for (r = 0; r < rows; r += 3 * L)
                        SFX(xf_tile)(p, q, k0, kc, pack, xs, sk, rows, y + b0 * y_sr, y_si,
                                     y_sr, i0, r, va, m);
            } else {
                /* Output columns are contiguous: all factor rows of X's rows r .., which
                 * stay in L1 meanwhile. */
                for (r = 0; r < rows; r += 3 * L)
                    for (i0 = 0; i0 < p; i0 += 4)
                        SFX(xf_tile)(p, q, k0, kc, pack, xs, sk, rows, y + b0 * y_sr, y_si,
                                     y_sr, i0, r, va, m);
            }
        }
    }
}

/* F in panels of L rows: pack[(i / L) q L + k L + i % L] = F[i, k], the rows past p zero.
 * A tile reads each of its panels in one run over k. */
static void SFX(pack_typed)(ptrdiff_t p, ptrdiff_t q, const REAL *f, ptrdiff_t f_si,
                            ptrdiff_t f_sk, REAL *pack)
{
    ptrdiff_t i0, i, k;
    for (i0 = 0; i0 < p; i0 += L)
        for (k = 0; k < q; k++)
            for (i = i0; i < i0 + L; i++)
                *pack++ = i < p ? f[i * f_si + k * f_sk] : 0;
}

static int SFX(step_typed)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, REAL alpha,
                           const REAL *x, ptrdiff_t x_sk, ptrdiff_t x_sr,
                           REAL beta, REAL *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                           REAL *pack, ptrdiff_t pack_size)
{
    ptrdiff_t packed = ROUNDV(p) * q, i, r;
    int by_rows = x_sr == 1 && !(x_sk == 1 && n == 1);
    int copy = by_rows && matkron_avx2_copies(p, x_sk);
    int mode = (beta != 0 ? ACCUMULATE : 0) | (alpha != 1 ? SCALE : 0);
    if (!matkron_avx2_detect() || (beta != 0 && beta != 1)
            || (x_sk != 1 && x_sr != 1) || (y_si != 1 && y_sr != 1)
            || pack_size < packed + (copy ? XF_LD * q : 0))
        return -1;
    if (p <= 0 || n <= 0)
        return 0;
    if (alpha == 0 || q <= 0) {
        /* As BLAS: X is not read (so an inf or nan in it does not reach Y). */
        if (beta == 0)
            for (r = 0; r < n; r++)
                for (i = 0; i < p; i++)
                    y[i * y_si + r * y_sr] = 0;
        return 0;
    }
    if (by_rows)
        SFX(run_xf)(p, q, n, pack, x, x_sk, y, y_si, y_sr, alpha, mode,
                    copy ? pack + packed : NULL);
    else
        SFX(run_fx)(p, q, n, pack, x, x_sr, y, y_si, y_sr, alpha, mode);
    return 0;
}
