/* The reference Kronecker step: plain C loops for all four dtypes, any strides.
 *
 * The slow, obviously correct kernel of the registry (rows "reference_*", flagged
 * `reference`): the planner never picks it by itself; tests force it (see _set_planner)
 * to run the registry's pack/step dispatch on every CPU, and as the template of a new
 * kernel: one file like this plus one row in registry.c.
 */
#include <complex.h>

#include "kernels.h"

int matkron_reference_detect(void)
{
    return 1;
}

int matkron_reference_copies(ptrdiff_t p, ptrdiff_t x_sk)
{
    (void)p;
    (void)x_sk;
    return 0;
}

ptrdiff_t matkron_reference_pack_size(ptrdiff_t p, ptrdiff_t q, ptrdiff_t size)
{
    (void)size;
    return p * q;
}

/* F packed column by column (pack[k * p + i] = F[i, k]); Y = alpha F X + beta Y with
 * beta 0 (Y not read) or 1, X not read when alpha is 0 (as BLAS). */
#define REFERENCE(T, SFX)                                                                   \
    void matkron_reference_pack_##SFX(ptrdiff_t p, ptrdiff_t q, const void *f,            \
                                      ptrdiff_t f_si, ptrdiff_t f_sk, void *pack)          \
    {                                                                                       \
        const T *src = (const T *)f;                                                        \
        T *dst = (T *)pack;                                                                 \
        ptrdiff_t i, k;                                                                     \
        for (k = 0; k < q; k++)                                                             \
            for (i = 0; i < p; i++)                                                         \
                dst[k * p + i] = src[i * f_si + k * f_sk];                                  \
    }                                                                                       \
    int matkron_reference_step_##SFX(ptrdiff_t p, ptrdiff_t q, ptrdiff_t n,               \
                                     const void *alpha, const void *x, ptrdiff_t x_sk,     \
                                     ptrdiff_t x_sr, const void *beta, void *y,            \
                                     ptrdiff_t y_si, ptrdiff_t y_sr, void *pack,           \
                                     ptrdiff_t pack_size)                                  \
    {                                                                                       \
        const T a = *(const T *)alpha, b = *(const T *)beta, *xs = (const T *)x;            \
        const T *fp = (const T *)pack;                                                      \
        T *ys = (T *)y, acc;                                                                \
        ptrdiff_t i, k, r;                                                                  \
        if ((b != 0 && b != 1) || pack_size < p * q)                                        \
            return -1;                                                                      \
        for (r = 0; r < n; r++)                                                             \
            for (i = 0; i < p; i++) {                                                       \
                acc = 0;                                                                    \
                if (a != 0)                                                                 \
                    for (k = 0; k < q; k++)                                                 \
                        acc += fp[k * p + i] * xs[k * x_sk + r * x_sr];                     \
                acc *= a;                                                                   \
                if (b != 0)                                                                 \
                    acc += ys[i * y_si + r * y_sr];                                         \
                ys[i * y_si + r * y_sr] = acc;                                              \
            }                                                                               \
        return 0;                                                                           \
    }
REFERENCE(float, f32)
REFERENCE(double, f64)
REFERENCE(float _Complex, c64)
REFERENCE(double _Complex, c128)
