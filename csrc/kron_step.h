/* One Kronecker step in float64 or float32 with AVX-512, for CPUs that have it.
 *
 *     Y[i, r] = alpha * sum_k F[i, k] X[k, r] + beta * Y[i, r]
 *
 * for i < p, k < q, r < n, every operand addressed through element strides. It is the
 * GEMM of one factor along its mode of the tensor, without packing the tensor: one
 * operand is read as vectors along its unit-stride dimension, the other as broadcast
 * scalars, and a tile whose output runs the other way is transposed in registers.
 */
#ifndef MATKRON_KRON_STEP_H
#define MATKRON_KRON_STEP_H

#include <stddef.h>

/* Whether this build and this CPU run the steps below (checked once). */
int matkron_kron_step_available(void);

/* Whether a step reading X with x_sr == 1 (and x_sk != 1) copies X in blocks of rows
 * first, which the planner counts as an extra pass over X. */
int matkron_kron_step_copies(ptrdiff_t p, ptrdiff_t x_sk);

/* Elements of the workspace `pack` (of either type) for a p-by-q factor applied to a
 * tensor of `size` elements (which bounds the strides the step can meet). */
ptrdiff_t matkron_kron_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size);

/* Pack F[i, k] = f[i * f_si + k * f_sk] into the head of `pack` for the step. */
void matkron_kron_pack_f64(ptrdiff_t p, ptrdiff_t q, const double *f, ptrdiff_t f_si,
                           ptrdiff_t f_sk, double *pack);

/* The step above with F packed in `pack`, which holds pack_size elements. X[k, r] =
 * x[k * x_sk + r * x_sr] and Y[i, r] = y[i * y_si + r * y_sr]; needs x_sk == 1 or
 * x_sr == 1, y_si == 1 or y_sr == 1, and beta 0 (Y is not read) or 1. With alpha 0, X is
 * not read (as in BLAS). Returns 0, or -1 without writing anything when the CPU, the
 * layout or the room in `pack` does not serve. */
int matkron_kron_step_f64(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, double alpha,
                          const double *x, ptrdiff_t x_sk, ptrdiff_t x_sr,
                          double beta, double *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                          double *pack, ptrdiff_t pack_size);

/* The same in float32. */
void matkron_kron_pack_f32(ptrdiff_t p, ptrdiff_t q, const float *f, ptrdiff_t f_si,
                           ptrdiff_t f_sk, float *pack);
int matkron_kron_step_f32(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, float alpha,
                          const float *x, ptrdiff_t x_sk, ptrdiff_t x_sr,
                          float beta, float *y, ptrdiff_t y_si, ptrdiff_t y_sr,
                          float *pack, ptrdiff_t pack_size);

#endif
