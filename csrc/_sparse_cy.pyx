# A sparse matrix applied along one mode of a tensor: Y = alpha op(F) ×₂ X (+ Y).
#
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
# One kernel is fused over the value type (float32, float64, complex64, complex128) and the
# index type (int32, int64). Elementwise complex products in the slab loops are written
# out in real arithmetic (so the compiler vectorizes them and no NaN fallback of C99 complex
# multiplication sits in the loop). All loops run inside one `with nogil:` block, watched
# for Ctrl-C (_interrupt.pxd). The Python layer validates F (scipy.sparse after
# check_format) and the shapes; the entry point checks only what would make the kernel
# read or write out of bounds, except the column indices, which it trusts.

cimport numpy as cnp
from libc.string cimport memset

from _blas cimport blas_t, complex64_t, complex128_t, is_blas_array, is_blas_type
from _interrupt cimport Watch, raise_pending, watch_start, watch_tick

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
    to lie in [0, q) (the Python layer passes arrays of scipy.sparse after
    ``check_format``), and duplicates are summed. Without `accumulate` every element of Y
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
