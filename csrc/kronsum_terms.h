/* The inner leaf of matkron's fused Kronecker-sum kernel (kronsum_apply in
 * _sparse_cy.pyx) where every term has a scalar coefficient: for 1 <= count <=
 * MATKRON_KRONSUM_TERMS,
 *
 *     y[l] = (y[l] +) c[0] x[0][l] + c[1] x[1][l] + ... + c[count - 1] x[count - 1][l]
 *
 * for l < n, summed left to right (the order of the terms) in one pass over y. The x[m]
 * are columns of the tensor at different shifts and may overlap each other; none overlaps
 * y. One loop per count, so that the compiler keeps every coefficient and pointer in
 * registers and vectorizes the pass (a loop over the terms inside the loop over l would
 * not vectorize).
 *
 * Instantiated for float and double by MATKRON_KRONSUM_TERMS_FOR(name, type), as
 * PyWavelets instantiates its convolution template per type.
 */
#ifndef MATKRON_KRONSUM_TERMS_H
#define MATKRON_KRONSUM_TERMS_H

#include <stddef.h>

#define MATKRON_KRONSUM_TERMS 8

#define MATKRON_TERMS_1 c0 * x0[l]
#define MATKRON_TERMS_2 MATKRON_TERMS_1 + c1 * x1[l]
#define MATKRON_TERMS_3 MATKRON_TERMS_2 + c2 * x2[l]
#define MATKRON_TERMS_4 MATKRON_TERMS_3 + c3 * x3[l]
#define MATKRON_TERMS_5 MATKRON_TERMS_4 + c4 * x4[l]
#define MATKRON_TERMS_6 MATKRON_TERMS_5 + c5 * x5[l]
#define MATKRON_TERMS_7 MATKRON_TERMS_6 + c6 * x6[l]
#define MATKRON_TERMS_8 MATKRON_TERMS_7 + c7 * x7[l]

#define MATKRON_TERMS_CASE(count, sum)                                                  \
    case count:                                                                         \
        if (add)                                                                        \
            for (l = 0; l < n; l++)                                                     \
                y[l] = y[l] + sum;                                                      \
        else                                                                            \
            for (l = 0; l < n; l++)                                                     \
                y[l] = sum;                                                             \
        break;

/* Terms past `count` read term 0 (never used) so that every pointer is valid. */
#define MATKRON_KRONSUM_TERMS_FOR(name, type)                                           \
    static inline void name(int add, ptrdiff_t n, int count, const type *c,             \
                            const type **x, type *restrict y)                           \
    {                                                                                   \
        const type c0 = c[0], c1 = c[count > 1], c2 = c[count > 2 ? 2 : 0],             \
                   c3 = c[count > 3 ? 3 : 0], c4 = c[count > 4 ? 4 : 0],                \
                   c5 = c[count > 5 ? 5 : 0], c6 = c[count > 6 ? 6 : 0],                \
                   c7 = c[count > 7 ? 7 : 0];                                           \
        const type *restrict x0 = x[0];                                                 \
        const type *restrict x1 = x[count > 1];                                         \
        const type *restrict x2 = x[count > 2 ? 2 : 0];                                 \
        const type *restrict x3 = x[count > 3 ? 3 : 0];                                 \
        const type *restrict x4 = x[count > 4 ? 4 : 0];                                 \
        const type *restrict x5 = x[count > 5 ? 5 : 0];                                 \
        const type *restrict x6 = x[count > 6 ? 6 : 0];                                 \
        const type *restrict x7 = x[count > 7 ? 7 : 0];                                 \
        ptrdiff_t l;                                                                    \
        switch (count) {                                                                \
            MATKRON_TERMS_CASE(1, MATKRON_TERMS_1)                                      \
            MATKRON_TERMS_CASE(2, MATKRON_TERMS_2)                                      \
            MATKRON_TERMS_CASE(3, MATKRON_TERMS_3)                                      \
            MATKRON_TERMS_CASE(4, MATKRON_TERMS_4)                                      \
            MATKRON_TERMS_CASE(5, MATKRON_TERMS_5)                                      \
            MATKRON_TERMS_CASE(6, MATKRON_TERMS_6)                                      \
            MATKRON_TERMS_CASE(7, MATKRON_TERMS_7)                                      \
            MATKRON_TERMS_CASE(8, MATKRON_TERMS_8)                                      \
            default:                                                                    \
                break;                                                                  \
        }                                                                               \
    }

MATKRON_KRONSUM_TERMS_FOR(matkron_kronsum_terms_f32, float)
MATKRON_KRONSUM_TERMS_FOR(matkron_kronsum_terms_f64, double)

#endif
