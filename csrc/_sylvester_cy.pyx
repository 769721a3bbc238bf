# Triangular Sylvester equations A Z + Z B = D for small upper quasi-triangular A and B
# (real Schur forms, with 1×1 and 2×2 diagonal blocks; complex Schur forms, triangular):
# the leaves of matkron's recursive blocked solver (matkron/_kronsum_solve.py).
#
# Bartels–Stewart back substitution, as LAPACK's trsyl, ordered so that every inner loop is
# an axpy down a contiguous column of A or Z, which the compiler vectorizes; trsyl takes a
# dot product (a BLAS call) per entry instead, which at orders of about 100 costs several
# times the arithmetic. Each diagonal block pair is a system of 1, 2 or 4 unknowns, solved
# by Gaussian elimination with partial pivoting; a pivot below `smin` is replaced by
# `smin` and reported (trsyl's info = 1: A and -B have close eigenvalues). There is no
# scaling against overflow: the caller checks the result and falls back to trsyl.
from _blas cimport blas_t, complex64_t, complex128_t


cdef inline double _magnitude(blas_t v) noexcept nogil:
    if blas_t is float or blas_t is double:
        return v if v >= 0 else -v
    else:
        return abs(v)


cdef bint _small_solve(int n, blas_t* m, blas_t* x, double smin) noexcept nogil:
    """Solve M u = x for u, written over x (M n×n column-major, n <= 4, overwritten), by
    Gaussian elimination with partial pivoting. Whether a pivot was raised to smin."""
    cdef int i, j, k, p
    cdef bint perturbed = False
    cdef blas_t t, f
    for k in range(n):
        p = k
        for i in range(k + 1, n):
            if _magnitude(m[i + k * n]) > _magnitude(m[p + k * n]):
                p = i
        if p != k:
            for j in range(n):
                t = m[k + j * n]
                m[k + j * n] = m[p + j * n]
                m[p + j * n] = t
            t = x[k]
            x[k] = x[p]
            x[p] = t
        if _magnitude(m[k + k * n]) < smin:
            m[k + k * n] = smin
            perturbed = True
        for i in range(k + 1, n):
            f = m[i + k * n] / m[k + k * n]
            for j in range(k + 1, n):
                m[i + j * n] -= f * m[k + j * n]
            x[i] -= f * x[k]
    for k in range(n - 1, -1, -1):
        t = x[k]
        for j in range(k + 1, n):
            t -= m[k + j * n] * x[j]
        x[k] = t / m[k + k * n]
    return perturbed


cdef inline void _axpy(Py_ssize_t n, blas_t alpha, const blas_t* x, blas_t* y) noexcept nogil:
    """y -= alpha x (contiguous)."""
    cdef Py_ssize_t r
    for r in range(n):
        y[r] -= alpha * x[r]


cdef int _solve(Py_ssize_t na, Py_ssize_t nb, const blas_t* a, Py_ssize_t lda,
                const blas_t* b, Py_ssize_t ldb, blas_t* d, Py_ssize_t ldd,
                double smin) noexcept nogil:
    """Overwrite D (na×nb, column-major) with Z solving A Z + Z B = D; 1 if a pivot was
    raised to smin, else 0."""
    cdef Py_ssize_t j, i, k, top, r
    cdef int width, h, size, rr, cc, s, t, info = 0
    cdef blas_t m[16]
    cdef blas_t x[4]
    cdef blas_t pivot, coef
    j = 0
    while j < nb:
        width = 2 if j + 1 < nb and b[(j + 1) + j * ldb] != 0 else 1
        # The right-hand side of columns j.. once the earlier columns are known.
        for cc in range(width):
            for i in range(j):
                coef = b[i + (j + cc) * ldb]
                if coef != 0:
                    _axpy(na, coef, d + i * ldd, d + (j + cc) * ldd)
        # Back substitution over the diagonal blocks of A, from the last.
        k = na - 1
        while k >= 0:
            h = 2 if k > 0 and a[k + (k - 1) * lda] != 0 else 1
            top = k - h + 1
            if h == 1 and width == 1:
                pivot = a[k + k * lda] + b[j + j * ldb]
                if _magnitude(pivot) < smin:
                    pivot = smin
                    info = 1
                d[k + j * ldd] = d[k + j * ldd] / pivot
                if k:
                    _axpy(k, d[k + j * ldd], a + k * lda, d + j * ldd)
                k -= 1
                continue
            # The block Zb = Z[top:k+1, j:j+width], unknowns in column-major order:
            # A_kk Zb + Zb B_jj = Db, (I ⊗ A_kk + B_jjᵀ ⊗ I) vec(Zb) = vec(Db).
            size = h * width
            for r in range(size * size):
                m[r] = 0
            for cc in range(width):
                for rr in range(h):
                    x[rr + cc * h] = d[(top + rr) + (j + cc) * ldd]
                    for s in range(h):
                        m[(rr + cc * h) + (s + cc * h) * size] += a[(top + rr) + (top + s) * lda]
                    for t in range(width):
                        m[(rr + cc * h) + (rr + t * h) * size] += b[(j + t) + (j + cc) * ldb]
            if _small_solve(size, m, x, smin):
                info = 1
            for cc in range(width):
                for rr in range(h):
                    d[(top + rr) + (j + cc) * ldd] = x[rr + cc * h]
                if top:
                    for s in range(h):
                        _axpy(top, x[s + cc * h], a + (top + s) * lda, d + (j + cc) * ldd)
            k = top - 1
        j += width
    return info


def triangular_sylvester(const blas_t[::1, :] a, const blas_t[::1, :] b, blas_t[:, :, ::1] d,
                         double smin):
    """Solve A Z + Z B = D[i] in place for every i, D[i] read as the column-major
    matrix of shape (D.shape[2], D.shape[1]).

    A and B are upper quasi-triangular and Fortran-ordered, of orders D.shape[2] and
    D.shape[1]. Returns 1 when a pivot smaller than `smin` was raised to it (the equation
    is singular to working precision), else 0. Results are not scaled: overflow shows as
    non-finite entries.
    """
    cdef Py_ssize_t na = d.shape[2], nb = d.shape[1], i
    cdef int info = 0
    if a.shape[0] != na or a.shape[1] != na or b.shape[0] != nb or b.shape[1] != nb:
        raise ValueError("triangular_sylvester: A, B and D do not conform")
    if na == 0 or nb == 0:
        return 0
    with nogil:
        for i in range(d.shape[0]):
            info |= _solve(na, nb, &a[0, 0], a.strides[1] // sizeof(blas_t), &b[0, 0],
                           b.strides[1] // sizeof(blas_t), &d[i, 0, 0], na, smin)
    return info
