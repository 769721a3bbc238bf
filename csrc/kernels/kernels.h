/* The entry points of matkron's own step kernels, one block per kernel file (as BLIS's
 * bli_kernels_<arch>.h). The registry (registry.c) holds one row per (kernel, dtype) and is
 * the only caller; the planner and the executor reach a kernel through its row.
 *
 * Every kernel computes one Kronecker step,
 *
 *     Y[i, r] = alpha * sum_k F[i, k] X[k, r] + beta * Y[i, r]
 *
 * for i < p, k < q, r < n, with X[k, r] = x[k * x_sk + r * x_sr] and Y[i, r] =
 * y[i * y_si + r * y_sr] (element strides): the GEMM of one factor along its mode of the
 * tensor, without packing the tensor. The signatures are those of the registry's function
 * pointers (matkron_step_kernel in registry.h): elements and scalars are passed as void
 * pointers to the row's dtype.
 *
 *   detect()            whether this build and this CPU run the kernel.
 *   copies(p, x_sk)     whether a step reading X with x_sr == 1 (and x_sk != 1) copies X in
 *                       blocks of rows first (an extra pass over X, for the cost model).
 *   pack_size(p, q, size)  elements of workspace the step needs for a p-by-q factor applied
 *                       to a tensor of `size` elements (which bounds the strides it meets).
 *   pack(p, q, f, f_si, f_sk, pack)  pack F[i, k] = f[i * f_si + k * f_sk] for the step.
 *   step(...)           the step above with F packed in `pack` (pack_size elements); needs
 *                       x_sk == 1 or x_sr == 1, y_si == 1 or y_sr == 1, and beta 0 (Y is
 *                       not read) or 1. With alpha 0, X is not read (as in BLAS). Returns 0,
 *                       or -1 without writing anything when the CPU, the layout or the
 *                       room in `pack` does not serve.
 */
#ifndef MATKRON_KERNELS_H
#define MATKRON_KERNELS_H

#include <stddef.h>

/* kron_step_avx512.c: float64 and float32 with AVX-512F (register tiles of up to 3 vectors
 * by 8 broadcasts; the tensor read along its unit stride, only the factor packed). */
int matkron_avx512_detect(void);
int matkron_avx512_copies(ptrdiff_t p, ptrdiff_t x_sk);
ptrdiff_t matkron_avx512_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size);
void matkron_avx512_pack_f64(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si,
                             ptrdiff_t f_sk, void *pack);
int matkron_avx512_step_f64(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha,
                            const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr, const void *beta,
                            void *y, ptrdiff_t y_si, ptrdiff_t y_sr, void *pack,
                            ptrdiff_t pack_size);
void matkron_avx512_pack_f32(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si,
                             ptrdiff_t f_sk, void *pack);
int matkron_avx512_step_f32(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha,
                            const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr, const void *beta,
                            void *y, ptrdiff_t y_si, ptrdiff_t y_sr, void *pack,
                            ptrdiff_t pack_size);

/* kron_step_avx2.c: float64 and float32 with AVX2 and FMA (register tiles of up to 12
 * accumulators: 3 vectors by 4 broadcasts, 2 by 6, 1 by 8; the tensor read along its unit
 * stride, only the factor packed). */
int matkron_avx2_detect(void);
int matkron_avx2_copies(ptrdiff_t p, ptrdiff_t x_sk);
ptrdiff_t matkron_avx2_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size);
void matkron_avx2_pack_f64(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si,
                           ptrdiff_t f_sk, void *pack);
int matkron_avx2_step_f64(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha,
                          const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr, const void *beta,
                          void *y, ptrdiff_t y_si, ptrdiff_t y_sr, void *pack,
                          ptrdiff_t pack_size);
void matkron_avx2_pack_f32(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si,
                           ptrdiff_t f_sk, void *pack);
int matkron_avx2_step_f32(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha,
                          const void *x, ptrdiff_t x_sk, ptrdiff_t x_sr, const void *beta,
                          void *y, ptrdiff_t y_si, ptrdiff_t y_sr, void *pack,
                          ptrdiff_t pack_size);

/* kron_step_reference.c: plain loops for every dtype, any strides (a reference row: the
 * planner uses it only when a test forces it). */
int matkron_reference_detect(void);
int matkron_reference_copies(ptrdiff_t p, ptrdiff_t x_sk);
ptrdiff_t matkron_reference_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size);
#define MATKRON_REFERENCE_DECLARE(SFX)                                                      \
    void matkron_reference_pack_##SFX(ptrdiff_t p, ptrdiff_t q, const void *f,            \
                                      ptrdiff_t f_si, ptrdiff_t f_sk, void *pack);         \
    int matkron_reference_step_##SFX(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n,               \
                                     const void *alpha, const void *x, ptrdiff_t x_sk,     \
                                     ptrdiff_t x_sr, const void *beta, void *y,            \
                                     ptrdiff_t y_si, ptrdiff_t y_sr, void *pack,           \
                                     ptrdiff_t pack_size);
MATKRON_REFERENCE_DECLARE(f32)
MATKRON_REFERENCE_DECLARE(f64)
MATKRON_REFERENCE_DECLARE(c64)
MATKRON_REFERENCE_DECLARE(c128)

#endif
