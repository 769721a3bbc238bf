/* The registry of matkron's own step kernels: one row per (kernel, dtype), holding every
 * fact the planner and the executor use about it (as BLIS's bli_cntx_init_<arch>.c and
 * OpenBLAS's KERNEL.<arch> name the kernel and block sizes of each operation).
 *
 * A new kernel is one file in csrc/kernels/ (its entry points declared in kernels.h) plus
 * one row in registry.c. Availability is detected once per process, on first use.
 */
#ifndef MATKRON_REGISTRY_H
#define MATKRON_REGISTRY_H

#include <stddef.h>

/* The dtypes, in the order of NumPy's float32, float64, complex64, complex128. */
enum { MATKRON_F32 = 0, MATKRON_F64 = 1, MATKRON_C64 = 2, MATKRON_C128 = 3 };

/* The planner's estimate of one step on the kernel, in microseconds, in the units of its
 * BLAS estimate (see _step_cost in _kron_plan_cy.pyx):
 *
 *     per_call * calls
 *     + per_multiply * multiplies * (1 + short_vector * s^2) / used * front
 *     + per_copied * copied
 *
 * with s = min(1, lanes / v) for a vector dimension v (short runs wait on their additions),
 * used = the share of lanes a dimension below tile_vectors * lanes fills, and front =
 * rotated_front for a rotated front step (else 1). */
typedef struct {
    double per_call;
    double per_multiply;
    double short_vector;
    double rotated_front;
    double per_copied;
} matkron_step_cost;

typedef struct {
    const char *name;       /* "<isa>_<dtype>", as in the file name kron_step_<isa>.c */
    const char *isa;        /* the CPU flags it needs, comma-separated, as /proc/cpuinfo
                               names them ("avx2,fma"; its detect checks the same) */
    int dtype;              /* MATKRON_F32 ... MATKRON_C128 */
    int reference;          /* 1: never chosen by the planner unless forced (tests) */
    int (*detect)(void);    /* whether build and CPU run it (the registry calls it once) */
    int lanes;              /* elements per vector */
    int tile_vectors;       /* vectors along the vector dimension of a register tile */
    ptrdiff_t pack_round;   /* factor rows are counted in multiples of this ... */
    ptrdiff_t max_pack;     /* ... and a factor of at most this many (rounded) entries is
                               taken: its pack stays in L2, read once per 8 columns */
    matkron_step_cost cost;
    int (*copies)(ptrdiff_t p, ptrdiff_t x_sk);
    ptrdiff_t (*pack_size)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size);
    void (*pack)(ptrdiff_t p, ptrdiff_t q, const void *f, ptrdiff_t f_si, ptrdiff_t f_sk,
                 void *pack);
    int (*step)(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n, const void *alpha, const void *x,
                ptrdiff_t x_sk, ptrdiff_t x_sr, const void *beta, void *y, ptrdiff_t y_si,
                ptrdiff_t y_sr, void *pack, ptrdiff_t pack_size);
} matkron_step_kernel;

/* The rows, available or not (for inspection and tests). */
int matkron_step_kernel_count(void);
const matkron_step_kernel *matkron_step_kernel_row(int i);

/* Whether a row's kernel runs here (detected once per row). */
int matkron_step_kernel_available(const matkron_step_kernel *kernel);

/* The first available row for a dtype that is not a reference row, or NULL: the kernel
 * the planner considers. */
const matkron_step_kernel *matkron_step_kernel_for(int dtype);

/* Whether the kernel takes a p-by-q factor (its pack limit). */
int matkron_step_kernel_admits(const matkron_step_kernel *kernel, ptrdiff_t p, ptrdiff_t q);

#endif
