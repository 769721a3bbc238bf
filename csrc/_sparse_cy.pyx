# Sparse matrices applied along the modes of a tensor: one CSR matrix along one mode,
# Y = alpha op(F) ×₂ X (+ Y) (sparse_mode_apply), and a Kronecker sum of square CSR
# matrices along all modes at once, Y = alpha Σ_t A_t ×_t X (+ Y) (kronsum_apply).
#
# sparse_mode_apply:
# F is p × q in CSR form (indptr, indices, data); X and Y are Fortran-ordered 3-tensors
# X[L, n_in, R] and Y[L, n_out, R] (l fastest, then the mode, then r), so that for every r
#
#     Y[:, :, r] (+)= alpha X[:, :, r] op(F)ᵀ,      op(F) = F, conj(F), Fᵀ or Fᴴ.
#
# op(F) = F or conj(F) reads the CSR arrays as rows (gather): for L == 1 one sparse dot
# product per row, contiguous in k; for L > 1 one axpy of length L per nonzero, over
# contiguous slabs of X and Y. op(F) = Fᵀ or Fᴴ reads the same arrays as the CSC form of
# op(F) (scatter): Y[:, :, r] is zeroed first (unless accumulating), then every nonzero adds
# a multiple of a slab (L > 1) or of one element (L == 1) of X into Y.
#
# kronsum_apply makes one pass over Y, column by column of the fastest mode: A_1 is a
# gather within the column (or, when it has a full narrow band, a sum of diagonals), every
# other term adds multiples of neighbouring columns of X, four per pass over the column; a
# band of constant diagonals (a real stencil) takes every term in one pass per eight, in
# C (kronsum_terms.h). See its docstring.
#
# Each kernel is fused over the value type (float32, float64, complex64, complex128) and the
# index type (int32, int64). Elementwise complex products in the slab loops are written
# out in real arithmetic (so the compiler vectorizes them and no NaN fallback of C99 complex
# multiplication sits in the loop). All loops run inside one `with nogil:` block, watched
# for Ctrl-C (_interrupt.pxd). The Python layer validates F (its column indices checked
# to be in range, in matkron._factors.as_factor) and the shapes; the entry point checks only what would make the kernel
# read or write out of bounds, except the column indices, which it trusts.

cimport numpy as cnp
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

from _blas cimport blas_t, complex64_t, complex128_t, is_blas_array, is_blas_type
from _interrupt cimport Watch, raise_pending, watch_start, watch_tick

cdef extern from "kronsum_terms.h" nogil:
    enum: MATKRON_KRONSUM_TERMS
    void matkron_kronsum_terms_f32(bint add, Py_ssize_t n, int count, const float* c,
                                   const float** x, float* y)
    void matkron_kronsum_terms_f64(bint add, Py_ssize_t n, int count, const double* c,
                                   const double** x, double* y)

import threading

cnp.import_array()

cdef unsigned long _main_thread = threading.main_thread().ident

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


ctypedef fused index_t:
    cnp.int32_t
    cnp.int64_t

ctypedef fused real_t:
    float
    double


cdef struct Shape:
    Py_ssize_t p          # rows of F (and of the CSR arrays)
    Py_ssize_t n_in       # mode length of X: q, or p when transposed
    Py_ssize_t n_out      # mode length of Y: p, or q when transposed
    Py_ssize_t L
    Py_ssize_t R
    bint transpose
    bint conjugate
    bint accumulate
    double complex alpha


# -- slab leaves: y[:n] (+)= c x[:n]; complex values as (re, im) pairs of real_t ---------

cdef inline void _raxpy(Py_ssize_t n, real_t c, const real_t* x, real_t* y) noexcept nogil:
    cdef Py_ssize_t l
    for l in range(n):
        y[l] += c * x[l]


cdef inline void _rscal(Py_ssize_t n, real_t c, const real_t* x, real_t* y) noexcept nogil:
    cdef Py_ssize_t l
    for l in range(n):
        y[l] = c * x[l]


cdef inline void _zaxpy(Py_ssize_t n, real_t cr, real_t ci, const real_t* x,
                        real_t* y) noexcept nogil:
    cdef Py_ssize_t l
    cdef real_t xr, xi
    for l in range(n):
        xr = x[2 * l]
        xi = x[2 * l + 1]
        y[2 * l] += cr * xr - ci * xi
        y[2 * l + 1] += cr * xi + ci * xr


cdef inline void _zscal(Py_ssize_t n, real_t cr, real_t ci, const real_t* x,
                        real_t* y) noexcept nogil:
    cdef Py_ssize_t l
    cdef real_t xr, xi
    for l in range(n):
        xr = x[2 * l]
        xi = x[2 * l + 1]
        y[2 * l] = cr * xr - ci * xi
        y[2 * l + 1] = cr * xi + ci * xr


cdef inline void _slab(bint add, Py_ssize_t n, blas_t c, const blas_t* x,
                       blas_t* y) noexcept nogil:
    """y[:n] += c x[:n] (add) or y[:n] = c x[:n]."""
    if blas_t is float or blas_t is double:
        if add:
            _raxpy(n, c, x, y)
        else:
            _rscal(n, c, x, y)
    elif blas_t is complex64_t:
        if add:
            _zaxpy(n, c.real, c.imag, <const float*>x, <float*>y)
        else:
            _zscal(n, c.real, c.imag, <const float*>x, <float*>y)
    else:
        if add:
            _zaxpy(n, c.real, c.imag, <const double*>x, <double*>y)
        else:
            _zscal(n, c.real, c.imag, <const double*>x, <double*>y)


# -- fused leaves of the Kronecker sum: four terms in one pass over a block -------------
#
# y[:n] (+)= Σ_{m<4} v_m[:n] * x_m[:n] (a vector coefficient per term: diagonals of A_1) or
# y[:n] += Σ_{m<4} c_m x_m[:n] (a scalar per term: nonzeros of A_t, t >= 2), summed left to
# right after y, so that each element sees the additions in the order of the terms.

cdef inline void _rdiagonals4(bint add, Py_ssize_t n, const real_t** v, const real_t** x,
                              real_t* y) noexcept nogil:
    cdef Py_ssize_t l
    cdef const real_t* v0 = v[0]
    cdef const real_t* v1 = v[1]
    cdef const real_t* v2 = v[2]
    cdef const real_t* v3 = v[3]
    cdef const real_t* x0 = x[0]
    cdef const real_t* x1 = x[1]
    cdef const real_t* x2 = x[2]
    cdef const real_t* x3 = x[3]
    if add:
        for l in range(n):
            y[l] = y[l] + v0[l] * x0[l] + v1[l] * x1[l] + v2[l] * x2[l] + v3[l] * x3[l]
    else:
        for l in range(n):
            y[l] = v0[l] * x0[l] + v1[l] * x1[l] + v2[l] * x2[l] + v3[l] * x3[l]


cdef inline void _zdiagonals4(bint add, Py_ssize_t n, const real_t** v, const real_t** x,
                              real_t* y) noexcept nogil:
    cdef Py_ssize_t l, m
    cdef real_t sr, si, vr, vi, xr, xi
    for l in range(n):
        sr = y[2 * l] if add else 0
        si = y[2 * l + 1] if add else 0
        for m in range(4):
            vr = v[m][2 * l]
            vi = v[m][2 * l + 1]
            xr = x[m][2 * l]
            xi = x[m][2 * l + 1]
            sr = sr + (vr * xr - vi * xi)
            si = si + (vr * xi + vi * xr)
        y[2 * l] = sr
        y[2 * l + 1] = si


cdef inline void _raxpy4(Py_ssize_t n, const real_t* c, const real_t** x,
                         real_t* y) noexcept nogil:
    cdef Py_ssize_t l
    cdef real_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3]
    cdef const real_t* x0 = x[0]
    cdef const real_t* x1 = x[1]
    cdef const real_t* x2 = x[2]
    cdef const real_t* x3 = x[3]
    for l in range(n):
        y[l] = y[l] + c0 * x0[l] + c1 * x1[l] + c2 * x2[l] + c3 * x3[l]


cdef inline void _zaxpy4(Py_ssize_t n, const real_t* c, const real_t** x,
                         real_t* y) noexcept nogil:
    cdef Py_ssize_t l, m
    cdef real_t sr, si, xr, xi
    for l in range(n):
        sr = y[2 * l]
        si = y[2 * l + 1]
        for m in range(4):
            xr = x[m][2 * l]
            xi = x[m][2 * l + 1]
            sr = sr + (c[2 * m] * xr - c[2 * m + 1] * xi)
            si = si + (c[2 * m] * xi + c[2 * m + 1] * xr)
        y[2 * l] = sr
        y[2 * l + 1] = si


cdef inline void _diagonals4(bint add, Py_ssize_t n, const blas_t** v, const blas_t** x,
                             blas_t* y) noexcept nogil:
    """y[:n] (+)= Σ_{m<4} v[m][:n] * x[m][:n] elementwise."""
    if blas_t is float or blas_t is double:
        _rdiagonals4(add, n, v, x, y)
    elif blas_t is complex64_t:
        _zdiagonals4(add, n, <const float**>v, <const float**>x, <float*>y)
    else:
        _zdiagonals4(add, n, <const double**>v, <const double**>x, <double*>y)


cdef inline void _slab4(Py_ssize_t n, const blas_t* c, const blas_t** x,
                        blas_t* y) noexcept nogil:
    """y[:n] += Σ_{m<4} c[m] x[m][:n]."""
    if blas_t is float or blas_t is double:
        _raxpy4(n, c, x, y)
    elif blas_t is complex64_t:
        _zaxpy4(n, <const float*>c, <const float**>x, <float*>y)
    else:
        _zaxpy4(n, <const double*>c, <const double**>x, <double*>y)


cdef inline blas_t _op(blas_t d, bint conjugate) noexcept nogil:
    """d, or its complex conjugate."""
    if blas_t is float or blas_t is double:
        return d
    else:
        return d.conjugate() if conjugate else d


# -- the kernel --------------------------------------------------------------------------

cdef void _gather(const index_t* indptr, const index_t* indices, const blas_t* data,
                  const blas_t* x, blas_t* y, const Shape* s, blas_t alpha,
                  Watch* watch) noexcept nogil:
    """Y[:, i, r] (+)= alpha Σ_j op(F)[i, k_j] X[:, k_j, r], row by row of the CSR arrays."""
    cdef Py_ssize_t L = s.L, p = s.p, r, i, j, js, je
    cdef bint conj = s.conjugate, acc = s.accumulate
    cdef double work = (<double>(indptr[p] - indptr[0]) + p) * L
    cdef const blas_t* xr
    cdef blas_t* yr
    cdef blas_t* ys
    cdef blas_t dot
    for r in range(s.R):
        xr = x + L * s.n_in * r
        yr = y + L * p * r
        if L == 1:
            for i in range(p):
                dot = 0
                for j in range(indptr[i], indptr[i + 1]):
                    dot = dot + _op(data[j], conj) * xr[indices[j]]
                if acc:
                    yr[i] = yr[i] + alpha * dot
                else:
                    yr[i] = alpha * dot
        else:
            for i in range(p):
                ys = yr + L * i
                js = indptr[i]
                je = indptr[i + 1]
                if not acc:
                    if js >= je:
                        memset(ys, 0, L * sizeof(blas_t))
                        continue
                    _slab(False, L, alpha * _op(data[js], conj), xr + L * indices[js], ys)
                    js += 1
                for j in range(js, je):
                    _slab(True, L, alpha * _op(data[j], conj), xr + L * indices[j], ys)
        if watch_tick(watch, work):
            return


cdef void _scatter(const index_t* indptr, const index_t* indices, const blas_t* data,
                   const blas_t* x, blas_t* y, const Shape* s, blas_t alpha,
                   Watch* watch) noexcept nogil:
    """Y[:, k_j, r] += alpha op(F[i, k_j]) X[:, i, r] for every nonzero (i, k_j) of F."""
    cdef Py_ssize_t L = s.L, p = s.p, r, i, j
    cdef bint conj = s.conjugate
    cdef double work = (<double>(indptr[p] - indptr[0]) + p) * L
    cdef const blas_t* xr
    cdef blas_t* yr
    cdef blas_t xi
    for r in range(s.R):
        xr = x + L * p * r
        yr = y + L * s.n_out * r
        if not s.accumulate:
            memset(yr, 0, L * s.n_out * sizeof(blas_t))
        if L == 1:
            for i in range(p):
                xi = alpha * xr[i]
                for j in range(indptr[i], indptr[i + 1]):
                    yr[indices[j]] = yr[indices[j]] + _op(data[j], conj) * xi
        else:
            for i in range(p):
                for j in range(indptr[i], indptr[i + 1]):
                    _slab(True, L, alpha * _op(data[j], conj), xr + L * i,
                          yr + L * indices[j])
        if watch_tick(watch, work):
            return


cdef bint _indptr_ok(const index_t* indptr, Py_ssize_t p, Py_ssize_t nnz) noexcept nogil:
    """0 <= indptr[0] <= indptr[1] <= ... <= indptr[p] <= nnz."""
    cdef Py_ssize_t i
    if indptr[0] < 0 or indptr[p] > nnz:
        return False
    for i in range(p):
        if indptr[i] > indptr[i + 1]:
            return False
    return True


cdef bint _run(const index_t* indptr, const index_t* indices, const blas_t* data,
               const blas_t* x, blas_t* y, const Shape* s, Py_ssize_t nnz,
               Watch* watch) noexcept nogil:
    """Check indptr, then apply; False (nothing written) when indptr is out of bounds."""
    cdef blas_t alpha
    if not _indptr_ok(indptr, s.p, nnz):
        return False
    if s.L == 0 or s.R == 0 or s.n_out == 0:
        return True
    if s.n_in == 0:
        if not s.accumulate:
            memset(y, 0, s.L * s.n_out * s.R * sizeof(blas_t))
        return True
    if blas_t is float or blas_t is double:
        alpha = <blas_t>s.alpha.real
    else:
        alpha = <blas_t>s.alpha
    if s.transpose:
        _scatter(indptr, indices, data, x, y, s, alpha, watch)
    else:
        _gather(indptr, indices, data, x, y, s, alpha, watch)
    return True


cdef bint _run_values(int type_num, const index_t* indptr, const index_t* indices,
                      const void* data, const void* x, void* y, const Shape* s,
                      Py_ssize_t nnz, Watch* watch) noexcept nogil:
    if type_num == cnp.NPY_FLOAT32:
        return _run(indptr, indices, <const float*>data, <const float*>x, <float*>y, s, nnz,
                    watch)
    elif type_num == cnp.NPY_FLOAT64:
        return _run(indptr, indices, <const double*>data, <const double*>x, <double*>y, s,
                    nnz, watch)
    elif type_num == cnp.NPY_COMPLEX64:
        return _run(indptr, indices, <const complex64_t*>data, <const complex64_t*>x,
                    <complex64_t*>y, s, nnz, watch)
    else:
        return _run(indptr, indices, <const complex128_t*>data, <const complex128_t*>x,
                    <complex128_t*>y, s, nnz, watch)


# -- the Kronecker sum: Y (+)= alpha Σ_t A_t ×_t X in one pass -----------------------------

cdef enum:
    KRONSUM_MAX_FACTORS = 32
    # Elements of an output column handled at once: every term adds into this block while
    # it stays in cache (a column of the fastest mode longer than this is split).
    KRONSUM_ROW_BLOCK = 4096
    # The widest band of A_1 applied by diagonals (see _band).
    KRONSUM_MAX_BAND = 64
    # What _kronsum_run returns besides the index of a factor whose indptr is wrong.
    KRONSUM_DONE = -1
    KRONSUM_NO_MEMORY = -2


cdef struct KronSum:
    Py_ssize_t k                                # the number of factors, 1..32
    Py_ssize_t n[KRONSUM_MAX_FACTORS + 1]       # their orders n_1, ..., n_k, then R
    Py_ssize_t nnz[KRONSUM_MAX_FACTORS]         # the lengths of indices[t] and data[t]
    const void* indptr[KRONSUM_MAX_FACTORS]     # CSR arrays of A_t, of index_t ...
    const void* indices[KRONSUM_MAX_FACTORS]
    const void* data[KRONSUM_MAX_FACTORS]       # ... and of blas_t
    bint accumulate
    double complex alpha


cdef Py_ssize_t _band(const index_t* indptr, const index_t* indices, Py_ssize_t n,
                      Py_ssize_t* lo) noexcept nogil:
    """The width w of a full band of the n × n CSR matrix, or 0 if it has none.

    A full band: some lo and w such that every row i holds exactly the columns
    max(0, i + lo), ..., min(n, i + lo + w) - 1, in ascending order (so a row may be empty
    only where the band leaves the matrix). The gather then sums the same products in the
    same order as the diagonals do, one after the other.
    """
    cdef Py_ssize_t i, j, js, je, first, last, hi = -n, w
    lo[0] = n
    for i in range(n):
        if indptr[i] < indptr[i + 1]:
            if indices[indptr[i]] - i < lo[0]:
                lo[0] = indices[indptr[i]] - i
            if indices[indptr[i + 1] - 1] - i > hi:
                hi = indices[indptr[i + 1] - 1] - i
    w = hi - lo[0] + 1
    if w < 1 or w > KRONSUM_MAX_BAND:
        return 0
    for i in range(n):
        first = i + lo[0] if i + lo[0] > 0 else 0
        last = i + hi if i + hi < n - 1 else n - 1
        js = indptr[i]
        je = indptr[i + 1]
        if je - js != (last - first + 1 if last >= first else 0):
            return 0
        for j in range(js, je):
            if indices[j] != first + (j - js):
                return 0
    return w


cdef inline void _gather_rows(Py_ssize_t i0, Py_ssize_t i1, const index_t* indptr,
                              const index_t* indices, const blas_t* data, const blas_t* x,
                              blas_t* y) noexcept nogil:
    """y[i - i0] = Σ_j data[j] x[indices[j]] over row i of the CSR arrays, i0 <= i < i1.

    Rows of up to four nonzeros are summed without a loop (in the same order)."""
    cdef Py_ssize_t i, j, js, je
    cdef blas_t dot
    for i in range(i0, i1):
        js = indptr[i]
        je = indptr[i + 1]
        if je - js == 3:
            dot = (data[js] * x[indices[js]] + data[js + 1] * x[indices[js + 1]]
                   + data[js + 2] * x[indices[js + 2]])
        elif je - js == 2:
            dot = data[js] * x[indices[js]] + data[js + 1] * x[indices[js + 1]]
        elif je - js == 4:
            dot = (data[js] * x[indices[js]] + data[js + 1] * x[indices[js + 1]]
                   + data[js + 2] * x[indices[js + 2]] + data[js + 3] * x[indices[js + 3]])
        else:
            dot = 0
            for j in range(js, je):
                dot = dot + data[j] * x[indices[j]]
        y[i - i0] = dot


cdef inline Py_ssize_t _add_other_terms(const index_t* index_type, const KronSum* s,
                                        const Py_ssize_t* digit,
                                        const Py_ssize_t* stride, const blas_t* x,
                                        Py_ssize_t n, blas_t* buf,
                                        const blas_t* zeros) noexcept nogil:
    """buf[:n] += Σ_{t >= 2} Σ_c A_t[j_t, c] X[:, ..., c, ...] over n rows of the column
    that starts at x (the column j_2, ..., j_k given by digit), four axpys per pass (missing
    ones are zeros times `zeros`). Returns the number of nonzeros added. `index_type` only
    selects the index type of the CSR arrays; it is not read."""
    cdef Py_ssize_t t, j, jt, q = 0, terms = 0
    cdef const index_t* ip
    cdef const index_t* ix
    cdef const blas_t* d
    cdef const blas_t* xs[4]
    cdef blas_t cs[4]
    for t in range(1, s.k):
        ip = <const index_t*>s.indptr[t]
        ix = <const index_t*>s.indices[t]
        d = <const blas_t*>s.data[t]
        jt = digit[t]
        terms += ip[jt + 1] - ip[jt]
        for j in range(ip[jt], ip[jt + 1]):
            cs[q] = d[j]
            xs[q] = x + (ix[j] - jt) * stride[t]
            q += 1
            if q == 4:
                _slab4(n, cs, xs, buf)
                q = 0
    if q:
        while q < 4:
            cs[q] = 0
            xs[q] = zeros
            q += 1
        _slab4(n, cs, xs, buf)
    return terms


cdef inline void _flush_terms(bint add, Py_ssize_t n, int count, const blas_t* cs,
                              const blas_t** xs, blas_t* buf) noexcept nogil:
    """buf[:n] (+)= Σ_{m < count} cs[m] xs[m][:n] in one pass (real dtypes)."""
    if blas_t is double:
        matkron_kronsum_terms_f64(add, n, count, cs, xs, buf)
    elif blas_t is float:
        matkron_kronsum_terms_f32(add, n, count, cs, xs, buf)


cdef inline void _sum_terms(const index_t* index_type, const KronSum* s,
                            const Py_ssize_t* digit,
                            const Py_ssize_t* stride, const blas_t* x, Py_ssize_t n,
                            const blas_t* coef, Py_ssize_t lo, Py_ssize_t w,
                            blas_t* buf) noexcept nogil:
    """buf[:n] = A_1 X + Σ_{t >= 2} Σ_c A_t[j_t, c] X[:, ..., c, ...] over n rows of the
    column that starts at x, where the band of A_1 lies inside the matrix and its w
    diagonals are the constants coef: every term a scalar times a shifted column, up to
    MATKRON_KRONSUM_TERMS of them per pass over buf, in the order of the other paths (A_1's
    diagonals, then the factors t = 2, ..., k). `index_type` as in _add_other_terms."""
    cdef Py_ssize_t t, j, jt, m
    cdef int q = 0
    cdef bint add = False
    cdef const index_t* ip
    cdef const index_t* ix
    cdef const blas_t* d
    cdef const blas_t* xs[MATKRON_KRONSUM_TERMS]
    cdef blas_t cs[MATKRON_KRONSUM_TERMS]
    for m in range(w):
        cs[q] = coef[m]
        xs[q] = x + lo + m
        q += 1
        if q == MATKRON_KRONSUM_TERMS:
            _flush_terms(add, n, q, cs, xs, buf)
            add = True
            q = 0
    for t in range(1, s.k):
        ip = <const index_t*>s.indptr[t]
        ix = <const index_t*>s.indices[t]
        d = <const blas_t*>s.data[t]
        jt = digit[t]
        for j in range(ip[jt], ip[jt + 1]):
            cs[q] = d[j]
            xs[q] = x + (ix[j] - jt) * stride[t]
            q += 1
            if q == MATKRON_KRONSUM_TERMS:
                _flush_terms(add, n, q, cs, xs, buf)
                add = True
                q = 0
    if q:
        _flush_terms(add, n, q, cs, xs, buf)


cdef bint _constant_band(const blas_t* diagonals, Py_ssize_t n1, Py_ssize_t w,
                         Py_ssize_t i0, Py_ssize_t i1, blas_t* coef) noexcept nogil:
    """Whether each of the w diagonals is one value over the rows i0 <= i < i1 (then in
    coef[m]); real dtypes only (the complex ones keep the vector coefficients)."""
    cdef Py_ssize_t m, i
    if not (blas_t is float or blas_t is double) or i1 <= i0:
        return False
    for m in range(w):
        coef[m] = diagonals[m * n1 + i0]
        for i in range(i0 + 1, i1):
            if diagonals[m * n1 + i] != coef[m]:
                return False
    return True


cdef void _kronsum_columns(const KronSum* s, const index_t* indptr1,
                           const index_t* indices1, const blas_t* data1,
                           const blas_t* diagonals, Py_ssize_t lo, Py_ssize_t w,
                           const blas_t* x, blas_t* y, blas_t alpha, blas_t* tmp,
                           const blas_t* zeros, Watch* watch) noexcept nogil:
    """Y[:, j_2, ..., j_k, r] (+)= alpha (A_1 X[:, j_2, ..., j_k, r]
    + Σ_{t >= 2} Σ_c A_t[j_t, c] X[:, j_2, ..., c, ..., j_k, r]), column by column.

    The columns (j_2, ..., j_k, r) are walked in memory order by an odometer. A block of
    a column is summed in `tmp` (or directly in Y when `tmp` is NULL): A_1 as a gather,
    or, when w > 0, as w diagonals (the band from offset lo, `diagonals` of w n_1 values)
    over the rows where the whole band lies inside the matrix (if at least 16: on fewer,
    the setup of the vectorized passes costs more than it saves) and a gather over the
    others; every other term as axpys of neighbouring columns of X. Four diagonals or
    four axpys share one pass over the block (missing ones are zeros times `zeros`). When
    each diagonal is constant over those rows (a constant-coefficient stencil, real
    dtypes), the rows where the band lies inside take every term, the diagonals as
    scalars, in passes of up to MATKRON_KRONSUM_TERMS (_sum_terms): one pass instead of
    two for the grid Laplacian, and no vector of coefficients read. The block of Y is
    then written once: alpha tmp (+ Y).
    """
    cdef Py_ssize_t k = s.k, n1 = s.n[0], t, ib, nb, i0, i1, m, q, col
    cdef Py_ssize_t terms
    cdef Py_ssize_t ncols = 1
    cdef Py_ssize_t digit[KRONSUM_MAX_FACTORS + 1]      # j_2, ..., j_k, r at [1..k]
    cdef Py_ssize_t stride[KRONSUM_MAX_FACTORS]         # n_1 ... n_t at [t]
    # The rows where the band lies inside: 0 <= i + lo and i + lo + w - 1 < n_1.
    cdef Py_ssize_t inner_lo = -lo if lo < 0 else 0
    cdef Py_ssize_t inner_hi = n1 - (lo + w - 1) if lo + w - 1 > 0 else n1
    cdef bint acc = s.accumulate
    cdef double work1 = <double>(w * n1 if w else indptr1[n1] - indptr1[0])
    cdef blas_t coef[KRONSUM_MAX_BAND]
    cdef bint constant = w > 0 and _constant_band(diagonals, n1, w, inner_lo, inner_hi,
                                                   coef)
    cdef const blas_t* xc = x
    cdef const blas_t* vs[4]
    cdef const blas_t* xs[4]
    cdef blas_t* yc = y
    cdef blas_t* buf
    stride[0] = 1
    for t in range(1, k + 1):
        digit[t] = 0
        ncols *= s.n[t]
        if t < k:
            stride[t] = stride[t - 1] * s.n[t - 1]
    for col in range(ncols):
        terms = 0
        ib = 0
        while ib < n1:
            nb = n1 - ib if n1 - ib < KRONSUM_ROW_BLOCK else KRONSUM_ROW_BLOCK
            buf = yc + ib if tmp == NULL else tmp
            i0 = ib if ib > inner_lo else inner_lo
            i1 = ib + nb if ib + nb < inner_hi else inner_hi
            if w == 0 or i1 - i0 < 16:
                _gather_rows(ib, ib + nb, indptr1, indices1, data1, xc, buf)
                terms += _add_other_terms(indptr1, s, digit, stride, xc + ib, nb, buf,
                                          zeros)
            elif constant:
                _gather_rows(ib, i0, indptr1, indices1, data1, xc, buf)
                terms += _add_other_terms(indptr1, s, digit, stride, xc + ib, i0 - ib, buf,
                                          zeros)
                _sum_terms(indptr1, s, digit, stride, xc + i0, i1 - i0, coef, lo, w,
                           buf + (i0 - ib))
                _gather_rows(i1, ib + nb, indptr1, indices1, data1, xc, buf + (i1 - ib))
                _add_other_terms(indptr1, s, digit, stride, xc + i1, ib + nb - i1,
                                 buf + (i1 - ib), zeros)
            else:
                _gather_rows(ib, i0, indptr1, indices1, data1, xc, buf)
                for m in range(0, w, 4):
                    for q in range(4):
                        if m + q < w:
                            vs[q] = diagonals + (m + q) * n1 + i0
                            xs[q] = xc + i0 + lo + m + q
                        else:
                            vs[q] = zeros
                            xs[q] = zeros
                    _diagonals4(m > 0, i1 - i0, vs, xs, buf + (i0 - ib))
                _gather_rows(i1, ib + nb, indptr1, indices1, data1, xc, buf + (i1 - ib))
                terms += _add_other_terms(indptr1, s, digit, stride, xc + ib, nb, buf,
                                          zeros)
            if tmp != NULL:
                _slab(acc, nb, alpha, tmp, yc + ib)
            ib += nb
        xc += n1
        yc += n1
        for t in range(1, k + 1):
            digit[t] += 1
            if digit[t] < s.n[t]:
                break
            digit[t] = 0
        if watch_tick(watch, work1 + <double>(terms + 1) * n1):
            return


cdef Py_ssize_t _kronsum_run(const KronSum* s, const index_t* indptr1, const blas_t* x,
                             blas_t* y, Watch* watch) noexcept nogil:
    """Check every indptr, then apply. KRONSUM_DONE, KRONSUM_NO_MEMORY, or the first
    factor whose indptr is out of bounds (nothing is then written)."""
    cdef Py_ssize_t t, i, j, w, lo = 0, n1 = s.n[0]
    cdef Py_ssize_t block = n1 if n1 < KRONSUM_ROW_BLOCK else KRONSUM_ROW_BLOCK
    cdef const index_t* indices1 = <const index_t*>s.indices[0]
    cdef const blas_t* data1 = <const blas_t*>s.data[0]
    cdef blas_t alpha
    cdef blas_t* diagonals = NULL
    cdef blas_t* tmp = NULL
    cdef blas_t* zeros = NULL
    cdef Py_ssize_t status = KRONSUM_NO_MEMORY
    for t in range(s.k):
        if not _indptr_ok(<const index_t*>s.indptr[t], s.n[t], s.nnz[t]):
            return t
    for t in range(s.k + 1):
        if s.n[t] == 0:
            return KRONSUM_DONE
    if blas_t is float or blas_t is double:
        alpha = <blas_t>s.alpha.real
    else:
        alpha = <blas_t>s.alpha
    w = _band(indptr1, indices1, n1, &lo)
    zeros = <blas_t*>calloc(block, sizeof(blas_t))
    if zeros == NULL:
        return KRONSUM_NO_MEMORY
    if w:
        # Diagonal m of the band: A_1[i, i + lo + m] at diagonals[m n_1 + i].
        diagonals = <blas_t*>malloc(w * n1 * sizeof(blas_t))
        if diagonals == NULL:
            w = 0
        else:
            for i in range(n1):
                for j in range(indptr1[i], indptr1[i + 1]):
                    diagonals[(indices1[j] - i - lo) * n1 + i] = data1[j]
    if s.accumulate or alpha != 1:
        tmp = <blas_t*>malloc(block * sizeof(blas_t))
    if tmp != NULL or not (s.accumulate or alpha != 1):
        _kronsum_columns(s, indptr1, indices1, data1, diagonals, lo, w, x, y, alpha, tmp,
                         zeros, watch)
        status = KRONSUM_DONE
    free(tmp)
    free(diagonals)
    free(zeros)
    return status


cdef Py_ssize_t _kronsum_values(int type_num, const KronSum* s, const index_t* indptr1,
                                const void* x, void* y, Watch* watch) noexcept nogil:
    if type_num == cnp.NPY_FLOAT32:
        return _kronsum_run(s, indptr1, <const float*>x, <float*>y, watch)
    elif type_num == cnp.NPY_FLOAT64:
        return _kronsum_run(s, indptr1, <const double*>x, <double*>y, watch)
    elif type_num == cnp.NPY_COMPLEX64:
        return _kronsum_run(s, indptr1, <const complex64_t*>x, <complex64_t*>y, watch)
    else:
        return _kronsum_run(s, indptr1, <const complex128_t*>x, <complex128_t*>y, watch)


# -- the entry point ---------------------------------------------------------------------

cdef inline bint _contiguous(cnp.ndarray a) noexcept:
    return cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_IS_F_CONTIGUOUS(a)


cdef Py_ssize_t _tensor_size(Py_ssize_t L, Py_ssize_t n, Py_ssize_t R) noexcept:
    """L n R, or -1 when it exceeds PY_SSIZE_T_MAX (all three are >= 0)."""
    if L == 0 or n == 0 or R == 0:
        return 0
    if n > PY_SSIZE_T_MAX // L or R > PY_SSIZE_T_MAX // (L * n):
        return -1
    return L * n * R


cdef int _check_values(str func, cnp.ndarray a, str name, int type_num,
                       str reference) except -1:
    """a has dtype type_num (that of `reference`), is contiguous, aligned and native."""
    if cnp.PyArray_TYPE(a) != type_num:
        raise TypeError(f"{func}: {name} has dtype {a.dtype}; expected "
                        f"{cnp.PyArray_DescrFromType(type_num)}, the dtype of {reference}")
    if not is_blas_array(a) or not _contiguous(a):
        raise ValueError(f"{func}: {name} must be contiguous, aligned and in native byte "
                         "order")
    return 0


cdef int _check_index(str func, cnp.ndarray a, str name, Py_ssize_t itemsize,
                      str rule) except -1:
    """a is a 1-D contiguous, aligned, native array of signed integers of `itemsize`
    (4 or 8) bytes; `rule` states the requirement in the TypeError."""
    if (not cnp.PyArray_ISSIGNED(a) or cnp.PyArray_ITEMSIZE(a) != itemsize
            or itemsize not in (4, 8)):
        raise TypeError(f"{func}: {name} has dtype {a.dtype}; {rule}")
    if (cnp.PyArray_NDIM(a) != 1 or not cnp.PyArray_ISNOTSWAPPED(a)
            or not cnp.PyArray_ISALIGNED(a) or not _contiguous(a)):
        raise ValueError(f"{func}: {name} must be 1-D, contiguous, aligned and in native "
                         "byte order")
    return 0


def sparse_mode_apply(cnp.ndarray indptr not None, cnp.ndarray indices not None,
                      cnp.ndarray data not None, Py_ssize_t p, Py_ssize_t q,
                      cnp.ndarray x not None, cnp.ndarray out not None, Py_ssize_t L,
                      Py_ssize_t R, bint transpose=False, bint conjugate=False,
                      double complex alpha=1, bint accumulate=False):
    """Apply a CSR matrix along the middle mode of a Fortran-ordered 3-tensor.

    Computes, for op(F) the n_out × n_in matrix F, conj(F), Fᵀ or Fᴴ,

        Y[l, i, r] = alpha Σ_k op(F)[i, k] X[l, k, r]   (+ Y[l, i, r] if accumulate)

    for all l < L and r < R at once.

    Parameters
    ----------
    indptr, indices, data : ndarray
        F (p × q) in CSR form, as held by a scipy.sparse CSR array: `indptr` of length
        p + 1, `indices` and `data` of equal length >= indptr[p]. `indptr` and `indices`
        are both int32 or both int64; `data` is float32, float64, complex64 or complex128.
    p, q : int
        The shape of F.
    x : ndarray
        X[L, n_in, R], Fortran order (l fastest, then the mode, then r), in any array whose
        memory is contiguous (only the first L n_in R elements are read); the dtype of
        `data`. n_in = q, or p when `transpose`.
    out : ndarray
        Y[L, n_out, R] likewise (n_out = p, or q when `transpose`); writeable, not
        overlapping `x` or F. Only its first L n_out R elements are written.
    L, R : int
        The sizes of the leading and trailing modes.
    transpose : bool
        Apply Fᵀ (Fᴴ with `conjugate`) instead of F; the CSR arrays of F are then read as
        the CSC arrays of Fᵀ.
    conjugate : bool
        Conjugate the entries of F (no effect for real dtypes).
    alpha : complex
        The scale; real dtypes use alpha.real.
    accumulate : bool
        Add to `out` instead of overwriting it.

    Returns
    -------
    ndarray
        `out`.

    Raises
    ------
    TypeError
        If the dtypes differ or are not among those listed above.
    ValueError
        If a size is negative, an array is too short, not contiguous, misaligned,
        byte-swapped or (out) read-only, or indptr is not non-decreasing within
        [0, len(indices)].

    Notes
    -----
    The kernel trusts its inputs beyond these checks: the column indices are not checked
    to lie in [0, q) (matkron's Python layer checks them once, when a factor is made),
    and duplicates are summed. Without `accumulate` every element of Y
    is written (rows of F without nonzeros give zeros), so `out` may hold anything. For
    L == 1 each row of op(F) = F is a sparse dot product, contiguous in k; for L > 1 each
    nonzero adds a multiple of a contiguous slab X[:, k, r] to Y[:, i, r]. The transposed
    forms scatter in the same way. The GIL is released; a long call can be interrupted
    with Ctrl-C.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from matkron._sparse_cy import sparse_mode_apply
    >>> F = sp.csr_array(np.array([[1.0, 2.0], [0.0, 3.0]]))
    >>> X = np.arange(6.0)  # X[1, 2, 3]: three vectors of length 2
    >>> sparse_mode_apply(F.indptr, F.indices, F.data, 2, 2, X, np.empty(6), 1, 3)
    array([ 2.,  3.,  8.,  9., 14., 15.])
    >>> sparse_mode_apply(F.indptr, F.indices, F.data, 2, 2, X, np.empty(6), 1, 3,
    ...                   transpose=True)
    array([ 0.,  3.,  2., 13.,  4., 23.])
    """
    cdef int type_num = cnp.PyArray_TYPE(data)
    cdef Shape s
    cdef Py_ssize_t nnz, need_x, need_out
    cdef Watch watch
    cdef bint ok
    cdef const void* ip = cnp.PyArray_DATA(indptr)
    cdef const void* ix = cnp.PyArray_DATA(indices)
    cdef const void* dp = cnp.PyArray_DATA(data)
    cdef const void* xp = cnp.PyArray_DATA(x)
    cdef void* op = cnp.PyArray_DATA(out)
    cdef bint wide = cnp.PyArray_ITEMSIZE(indptr) == 8
    cdef str func = "sparse_mode_apply"
    cdef str rule = "indptr and indices must both be int32 or both int64"

    if p < 0 or q < 0 or L < 0 or R < 0:
        raise ValueError(f"sparse_mode_apply: sizes must be >= 0; got p={p}, q={q}, L={L}, "
                         f"R={R}")
    if not is_blas_type(type_num):
        raise TypeError(f"sparse_mode_apply: data has dtype {data.dtype}; expected float32, "
                        "float64, complex64 or complex128")
    _check_values(func, data, "data", type_num, "data")
    _check_values(func, x, "x", type_num, "data")
    _check_values(func, out, "out", type_num, "data")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("sparse_mode_apply: out is read-only")
    _check_index(func, indptr, "indptr", cnp.PyArray_ITEMSIZE(indptr), rule)
    _check_index(func, indices, "indices", cnp.PyArray_ITEMSIZE(indptr), rule)
    if cnp.PyArray_SIZE(indptr) != p + 1:
        raise ValueError(f"sparse_mode_apply: indptr has length {cnp.PyArray_SIZE(indptr)}; "
                         f"expected {p + 1} = p + 1")
    nnz = cnp.PyArray_SIZE(data)
    if cnp.PyArray_SIZE(indices) != nnz:
        raise ValueError(f"sparse_mode_apply: indices has length "
                         f"{cnp.PyArray_SIZE(indices)} but data has length {nnz}")

    s.p = p
    s.n_in = p if transpose else q
    s.n_out = q if transpose else p
    s.L = L
    s.R = R
    s.transpose = transpose
    s.conjugate = conjugate
    s.accumulate = accumulate
    s.alpha = alpha
    need_x = _tensor_size(L, s.n_in, R)
    need_out = _tensor_size(L, s.n_out, R)
    if need_x < 0 or need_out < 0:
        raise ValueError(f"sparse_mode_apply: the tensors of L={L}, p={p}, q={q}, R={R} "
                         "have more elements than an array can hold")
    if cnp.PyArray_SIZE(x) < need_x:
        raise ValueError(f"sparse_mode_apply: x has {cnp.PyArray_SIZE(x)} elements; expected "
                         f"at least {need_x} = {L}*{s.n_in}*{R} (L*{'p' if transpose else 'q'}*R)")
    if cnp.PyArray_SIZE(out) < need_out:
        raise ValueError(f"sparse_mode_apply: out has {cnp.PyArray_SIZE(out)} elements; "
                         f"expected at least {need_out} = {L}*{s.n_out}*{R} "
                         f"(L*{'q' if transpose else 'p'}*R)")

    watch_start(&watch, _main_thread)
    with nogil:
        if wide:
            ok = _run_values(type_num, <const cnp.int64_t*>ip, <const cnp.int64_t*>ix, dp, xp,
                             op, &s, nnz, &watch)
        else:
            ok = _run_values(type_num, <const cnp.int32_t*>ip, <const cnp.int32_t*>ix, dp, xp,
                             op, &s, nnz, &watch)
    if watch.stopped:
        raise_pending()
    if not ok:
        raise ValueError(f"sparse_mode_apply: indptr must be non-decreasing with indptr[0] "
                         f">= 0 and indptr[p] <= {nnz}, the length of indices")
    return out


cdef cnp.ndarray _array_item(tuple items, str name, Py_ssize_t t):
    """items[t], which must be an ndarray."""
    a = items[t]
    if not isinstance(a, cnp.ndarray):
        raise TypeError(f"kronsum_apply: {name}[{t}] is {type(a).__name__}; expected an "
                        "ndarray")
    return <cnp.ndarray>a


def kronsum_apply(tuple indptrs not None, tuple indices not None, tuple datas not None,
                  tuple dims not None, cnp.ndarray x not None, cnp.ndarray out not None,
                  Py_ssize_t R, double complex alpha=1, bint accumulate=False):
    """Apply a Kronecker sum of sparse matrices to a Fortran-ordered tensor in one pass.

    Computes, for square CSR matrices A_1 (n_1 × n_1), ..., A_k (n_k × n_k),

        Y = alpha Σ_t A_t ×_t X   (+ Y if accumulate),

    that is, Y[:, :, …, r] = alpha L X[:, :, …, r] for every r < R, with the Kronecker sum

        L = A_1 ⊕ … ⊕ A_k = Σ_t I_{n_k} ⊗ … ⊗ A_t ⊗ … ⊗ I_{n_1}

    acting on vectors whose index j_1 varies fastest: the order of
    ``matkron.kronsum(A_1, …, A_k)`` and of ``scipy.sparse.kronsum``, for which
    kronsum(A, B) = I_n ⊗ A + B ⊗ I_m (A m × m, B n × n).

    Parameters
    ----------
    indptrs, indices, datas : tuple of ndarray
        The CSR arrays of A_1, …, A_k, as held by scipy.sparse CSR arrays: ``indptrs[t]``
        of length n_t + 1, ``indices[t]`` and ``datas[t]`` of equal length >=
        ``indptrs[t][n_t]``. All index arrays are int32 or all int64; all data arrays
        have one dtype, float32, float64, complex64 or complex128.
    dims : tuple of int
        The orders n_1, …, n_k (1 <= k <= 32).
    x : ndarray
        X[n_1, …, n_k, R], Fortran order (n_1 fastest, R slowest), in any array whose
        memory is contiguous (only the first n_1 ⋯ n_k R elements are read); the dtype of
        the data arrays.
    out : ndarray
        Y, likewise; writeable, not overlapping `x` or the factors. Only its first
        n_1 ⋯ n_k R elements are written.
    R : int
        The size of the trailing mode (the number of vectors).
    alpha : complex
        The scale; real dtypes use alpha.real.
    accumulate : bool
        Add to `out` instead of overwriting it.

    Returns
    -------
    ndarray
        `out`.

    Raises
    ------
    TypeError
        If an element of the tuples is not an ndarray, or the dtypes differ or are not
        among those listed above.
    ValueError
        If k is not in 1..32, the tuples differ in length, a size is negative, an array
        is too short, not contiguous, misaligned, byte-swapped or (out) read-only, or an
        indptr is not non-decreasing within [0, len(indices[t])].

    Notes
    -----
    One pass over memory reads X once and writes Y once, instead of one pass per term.
    For every column (j_2, …, j_k, r) of the fastest mode, in memory order,

        Y[:, j_2, …, j_k, r] = alpha (A_1 X[:, j_2, …, j_k, r]
                               + Σ_{t >= 2} Σ_c A_t[j_t, c] X[:, j_2, …, c, …, j_k, r])

    (+ Y[:, j_2, …, j_k, r]): A_1 as one sparse dot product per element (a gather within
    the column), every nonzero of row j_t of A_t (t >= 2) as an axpy of a contiguous
    column of X at distance (c - j_t) n_1 ⋯ n_{t-1}, four axpys per pass over the
    column. The column indices are walked by an odometer; a column longer than 4096
    elements is done in blocks of that length, so that the block stays in cache while
    every term adds into it. The block is summed, then written to Y once, with alpha
    and `accumulate` applied there.

    When A_1 has a full band (every row i holds exactly the columns i + lo, …, i + lo +
    w - 1 that lie inside the matrix, in ascending order, for some lo and w <= 64), the
    rows where the whole band lies inside (if there are 16 or more in a block) are
    computed by diagonals instead, four per vectorized pass: the same products, summed in the same order, as the gather (up to
    the sign of a zero sum; a structural zero is never multiplied, so an inf or nan of
    X stays in its rows). This
    copies the w diagonals of A_1 (w n_1 values) once per call; the grid Laplacian
    (A_1 tridiagonal) is such a case. When, besides, A_1 is real and each diagonal holds one
    value over those rows (a constant-coefficient stencil; the first and last rows may
    differ), the diagonals become scalars and those rows take every term in one pass per
    eight terms (kronsum_terms.h), summed in the same order: one pass over the block
    instead of two for the 2-D grid Laplacian. Besides, the call allocates a block of zeros and,
    when alpha != 1 or `accumulate`, a block in which a column is summed (4096 values
    each at most).

    The kernel trusts its inputs beyond the checks above: the column indices are not
    checked to lie in [0, n_t) (matkron's Python layer checks them once, when a factor
    is made), and duplicates are summed. Without `accumulate` every element of
    Y is written, so `out` may hold anything. The GIL is released; a long call can be
    interrupted with Ctrl-C.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from matkron._sparse_cy import kronsum_apply
    >>> A = sp.csr_array(np.array([[2.0, -1.0], [-1.0, 2.0]]))
    >>> B = sp.csr_array(np.diag([1.0, 2.0, 3.0]))
    >>> x = np.arange(6.0)  # X[2, 3], Fortran order
    >>> y = kronsum_apply((A.indptr, B.indptr), (A.indices, B.indices), (A.data, B.data),
    ...                   (2, 3), x, np.empty(6), 1)
    >>> y
    array([-1.,  3.,  5., 10., 15., 21.])
    >>> np.allclose(y, sp.kronsum(A, B) @ x)
    True
    """
    cdef str func = "kronsum_apply"
    cdef str rule = "indptrs and indices must all be int32 or all int64"
    cdef Py_ssize_t k = len(dims), t, n, need, bad
    cdef Py_ssize_t itemsize
    cdef int type_num
    cdef cnp.ndarray ip, ix, d
    cdef KronSum s
    cdef Watch watch
    cdef const void* ip1
    cdef const void* xp = cnp.PyArray_DATA(x)
    cdef void* op = cnp.PyArray_DATA(out)
    cdef bint wide

    if k < 1 or k > KRONSUM_MAX_FACTORS:
        raise ValueError(f"kronsum_apply: dims has length {k}; expected 1 to "
                         f"{KRONSUM_MAX_FACTORS} factors")
    if len(indptrs) != k or len(indices) != k or len(datas) != k:
        raise ValueError(f"kronsum_apply: indptrs, indices and datas have lengths "
                         f"{len(indptrs)}, {len(indices)} and {len(datas)}; expected {k}, "
                         "the length of dims")
    for t in range(k):
        s.n[t] = dims[t]
        if s.n[t] < 0:
            raise ValueError(f"kronsum_apply: sizes must be >= 0; got dims={dims}, R={R}")
    if R < 0:
        raise ValueError(f"kronsum_apply: sizes must be >= 0; got dims={dims}, R={R}")
    s.n[k] = R

    d = _array_item(datas, "datas", 0)
    type_num = cnp.PyArray_TYPE(d)
    if not is_blas_type(type_num):
        raise TypeError(f"kronsum_apply: datas[0] has dtype {d.dtype}; expected float32, "
                        "float64, complex64 or complex128")
    itemsize = cnp.PyArray_ITEMSIZE(_array_item(indptrs, "indptrs", 0))
    for t in range(k):
        d = _array_item(datas, "datas", t)
        _check_values(func, d, f"datas[{t}]", type_num, "datas[0]")
    _check_values(func, x, "x", type_num, "datas[0]")
    _check_values(func, out, "out", type_num, "datas[0]")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("kronsum_apply: out is read-only")
    for t in range(k):
        ip = _array_item(indptrs, "indptrs", t)
        ix = _array_item(indices, "indices", t)
        d = <cnp.ndarray>datas[t]
        _check_index(func, ip, f"indptrs[{t}]", itemsize, rule)
        _check_index(func, ix, f"indices[{t}]", itemsize, rule)
        if cnp.PyArray_SIZE(ip) != s.n[t] + 1:
            raise ValueError(f"kronsum_apply: indptrs[{t}] has length "
                             f"{cnp.PyArray_SIZE(ip)}; expected {s.n[t] + 1} = dims[{t}] + 1")
        s.nnz[t] = cnp.PyArray_SIZE(d)
        if cnp.PyArray_SIZE(ix) != s.nnz[t]:
            raise ValueError(f"kronsum_apply: indices[{t}] has length "
                             f"{cnp.PyArray_SIZE(ix)} but datas[{t}] has length {s.nnz[t]}")
        s.indptr[t] = cnp.PyArray_DATA(ip)
        s.indices[t] = cnp.PyArray_DATA(ix)
        s.data[t] = cnp.PyArray_DATA(d)

    need = 1
    for t in range(k + 1):
        if s.n[t] == 0:
            need = 0
    for t in range(k + 1):
        n = s.n[t]
        if need <= 0:
            break
        need = -1 if n > PY_SSIZE_T_MAX // need else need * n
    if need < 0:
        raise ValueError(f"kronsum_apply: the tensors of dims={dims}, R={R} have more "
                         "elements than an array can hold")
    shape = "*".join([str(s.n[t]) for t in range(k + 1)])
    if cnp.PyArray_SIZE(x) < need:
        raise ValueError(f"kronsum_apply: x has {cnp.PyArray_SIZE(x)} elements; expected "
                         f"at least {need} = {shape} (n_1*...*n_k*R)")
    if cnp.PyArray_SIZE(out) < need:
        raise ValueError(f"kronsum_apply: out has {cnp.PyArray_SIZE(out)} elements; "
                         f"expected at least {need} = {shape} (n_1*...*n_k*R)")

    s.k = k
    s.accumulate = accumulate
    s.alpha = alpha
    ip1 = s.indptr[0]
    wide = itemsize == 8
    watch_start(&watch, _main_thread)
    with nogil:
        if wide:
            bad = _kronsum_values(type_num, &s, <const cnp.int64_t*>ip1, xp, op, &watch)
        else:
            bad = _kronsum_values(type_num, &s, <const cnp.int32_t*>ip1, xp, op, &watch)
    if watch.stopped:
        raise_pending()
    if bad == KRONSUM_NO_MEMORY:
        raise MemoryError("kronsum_apply: no memory for a block of a column")
    if bad >= 0:
        raise ValueError(f"kronsum_apply: indptrs[{bad}] must be non-decreasing with "
                         f"indptrs[{bad}][0] >= 0 and indptrs[{bad}][dims[{bad}]] <= "
                         f"{s.nnz[bad]}, the length of indices[{bad}]")
    return out
