/* The registry's table (see registry.h). Rows are in order of preference per dtype. */
#include "registry.h"

#include "kernels.h"

static const matkron_step_kernel rows[] = {
    /* Tiles of up to 3 vectors by 8 broadcasts. Measured against SciPy's OpenBLAS in
     * float64 on a Skylake-X: about twice as fast (per_multiply is half the BLAS rate of
     * 5e-5), a call a tenth of a BLAS call; 8 rows run at about 0.7x, 16 at 0.9x
     * (short_vector); a copied element of X costs 0.5 ns per 8 bytes. */
    {"avx512_f64", "avx512f,avx2,fma", MATKRON_F64, 0, matkron_avx512_detect, 8, 3, 16,
     32768, {0.02, 2.5e-5, 0.4, 1.0, 5e-4},
     matkron_avx512_copies, matkron_avx512_pack_size, matkron_avx512_pack_f64,
     matkron_avx512_step_f64},
    /* Twice the lanes, so twice the rate of float64 (the BLAS estimate stays that of
     * float64: sgemm's lead over dgemm varies); a rotated front step, whose 8x8
     * transposes write half cache lines, measured about 0.6x. */
    {"avx512_f32", "avx512f,avx2,fma", MATKRON_F32, 0, matkron_avx512_detect, 16, 3, 16,
     32768, {0.02, 1.25e-5, 0.4, 1.6, 2.5e-4},
     matkron_avx512_copies, matkron_avx512_pack_size, matkron_avx512_pack_f32,
     matkron_avx512_step_f32},
    /* AVX2 and FMA, after the AVX-512 rows (a CPU with both takes AVX-512). Tiles of up
     * to 3 vectors by 4 broadcasts. Measured against SciPy's OpenBLAS 0.3.30 (Haswell
     * kernels, one thread) on an AMD EPYC (Zen 3), one step of a p x q factor on tensors
     * of 2^14 to 2^20 elements in each of the four layouts: for p, q <= 64 it took 0.4 to
     * 1.0 of dgemm's time, 0.8 typically (per_multiply 4e-5 against BLAS's 5e-5; BLAS's
     * estimate of a GEMM of few rows is slower than dgemm is here, which favours the own
     * step there), but up to 1.4 in normal steps along a later mode of tensors beyond L2.
     * FX steps of 4- and 8-row factors ran at about 0.3 and 0.6 of the speed of 16-row
     * ones (short_vector). From square factors of about 96 on it took 0.8 to 1.25 of
     * dgemm's time, and for 8192-entry factors of other shapes (64x128, 16x512, 512x16)
     * 0.55 to 1.35 by layout, which the cost model does not tell apart: a factor of more
     * than 4096 (rounded) entries, a pack beyond L1's 32 KiB, is left to BLAS (over the
     * steps measured, that choice lost least against the faster of the two). The copy of
     * X's rows (p > 8) does not overlap the arithmetic: rotated-back steps of 16x16 and
     * 32x32 factors took 1.1 to 1.3x their rotated-front twins (about 0.3 ns a copied
     * element). */
    {"avx2_f64", "avx2,fma", MATKRON_F64, 0, matkron_avx2_detect, 4, 3, 8, 4096,
     {0.02, 4e-5, 1.0, 1.0, 3e-4},
     matkron_avx2_copies, matkron_avx2_pack_size, matkron_avx2_pack_f64,
     matkron_avx2_step_f64},
    /* Twice the lanes, so twice the rate (the BLAS estimate stays that of float64, as for
     * avx512_f32). Against sgemm the step took 0.3 to 1.0 of its time in most shapes, but
     * FX steps of factors of at most 8 rows (one vector) 1.1 to 2.3x (short_vector 1.5,
     * where lanes / p is 1), and of 512x16 factors up to 1.4x. */
    {"avx2_f32", "avx2,fma", MATKRON_F32, 0, matkron_avx2_detect, 8, 3, 8, 4096,
     {0.02, 2e-5, 1.5, 1.0, 1.5e-4},
     matkron_avx2_copies, matkron_avx2_pack_size, matkron_avx2_pack_f32,
     matkron_avx2_step_f32},
    /* The reference rows (kron_step_reference.c): forced only, so their cost is nil, and
     * a forced row runs every step it admits. */
#define REFERENCE_ROW(NAME, DTYPE, SFX)                                                     \
    {NAME, "reference", DTYPE, 1, matkron_reference_detect, 1, 1, 1, (ptrdiff_t)1 << 20,            \
     {0, 0, 0, 1, 0}, matkron_reference_copies, matkron_reference_pack_size,                \
     matkron_reference_pack_##SFX, matkron_reference_step_##SFX}
    REFERENCE_ROW("reference_f32", MATKRON_F32, f32),
    REFERENCE_ROW("reference_f64", MATKRON_F64, f64),
    REFERENCE_ROW("reference_c64", MATKRON_C64, c64),
    REFERENCE_ROW("reference_c128", MATKRON_C128, c128),
};

#define NROWS ((int)(sizeof rows / sizeof rows[0]))

/* Per row: 0 until detected, then 1 (unavailable) or 2 (available). Written once; threads
 * racing on the first use write the same value. */
static int state[NROWS];

int matkron_step_kernel_count(void)
{
    return NROWS;
}

const matkron_step_kernel *matkron_step_kernel_row(int i)
{
    return i >= 0 && i < NROWS ? &rows[i] : NULL;
}

int matkron_step_kernel_available(const matkron_step_kernel *kernel)
{
    int i = (int)(kernel - rows);
    if (state[i] == 0)
        state[i] = kernel->detect() ? 2 : 1;
    return state[i] == 2;
}

const matkron_step_kernel *matkron_step_kernel_for(int dtype)
{
    int i;
    for (i = 0; i < NROWS; i++)
        if (rows[i].dtype == dtype && !rows[i].reference
                && matkron_step_kernel_available(&rows[i]))
            return &rows[i];
    return NULL;
}

int matkron_step_kernel_admits(const matkron_step_kernel *kernel, ptrdiff_t p, ptrdiff_t q)
{
    return p > 0 && q > 0
           && (p + kernel->pack_round - 1) / kernel->pack_round * kernel->pack_round * q
                  <= kernel->max_pack;
}
