# Kronecker-product application: y = (F1 ⊗ … ⊗ Fk) x without forming the product.
#
# With vec = column stacking, a vector x of length q1*…*qk is the Fortran-ordered tensor
# X[qk, …, q1] (the last factor varies fastest), and applying Fi is a product along the mode
# of length qi. The kernel keeps the tensor in memory order, so each factor costs one GEMM
# when its mode is the first one (L = 1 below) and one GEMM per slice of the following modes
# otherwise, with operands and results read and written through their strides:
#
#     mode 0:      Y(p, cols)   = F   @ X(q, cols)        one GEMM over all merged columns
#     mode j > 0:  Y_r(L, p)    = X_r(L, q) @ F.T         one GEMM per outer index r
#
# The m right-hand sides of a 2-D x are one more mode (last for a Fortran-ordered x, first
# for a C-ordered one) to which no factor is applied. Intermediate tensors live in a
# caller-provided workspace; inputs are never written.
#
# The Python layer (matkron/_kron.py) does all coercion, dtype policy, shape checks and the
# choice of order; this module trusts its inputs.

cimport numpy as cnp
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from _blas cimport blas_t, complex64_t, complex128_t, gemm
from _blas_int cimport blas_int

from matkron._workspace import workspace as _workspace

cnp.import_array()


cdef struct Factor:
    # A factor as BLAS sees it: the column-major matrix at `data` is F ('N') or F.T ('T').
    char* data
    char trans
    blas_int ld
    Py_ssize_t p
    Py_ssize_t q


cdef inline Py_ssize_t _max(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef void _copy_2d(const char* src, Py_ssize_t ss0, Py_ssize_t ss1,
                   char* dst, Py_ssize_t ds0, Py_ssize_t ds1,
                   Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t itemsize,
                   bint accumulate, int type_num) noexcept nogil:
    """dst[i, j] (+)= src[i, j] for byte strides (ss0, ss1) and (ds0, ds1)."""
    cdef Py_ssize_t i, j
    cdef const char* s
    cdef char* d
    for j in range(n1):
        s = src + j * ss1
        d = dst + j * ds1
        if not accumulate:
            for i in range(n0):
                memcpy(d + i * ds0, s + i * ss0, itemsize)
        elif type_num == cnp.NPY_FLOAT32:
            for i in range(n0):
                (<float*>(d + i * ds0))[0] += (<const float*>(s + i * ss0))[0]
        elif type_num == cnp.NPY_FLOAT64:
            for i in range(n0):
                (<double*>(d + i * ds0))[0] += (<const double*>(s + i * ss0))[0]
        elif type_num == cnp.NPY_COMPLEX64:
            for i in range(n0):
                (<complex64_t*>(d + i * ds0))[0] += (<const complex64_t*>(s + i * ss0))[0]
        else:
            for i in range(n0):
                (<complex128_t*>(d + i * ds0))[0] += (<const complex128_t*>(s + i * ss0))[0]


cdef void _apply_mode(const Factor* f, const blas_t* x, const Py_ssize_t* xstr,
                      blas_t* y, const Py_ssize_t* ystr, const Py_ssize_t* dims,
                      int nmodes, int j, blas_t beta) noexcept nogil:
    """Y = X ×_j F for tensors whose modes 0..j-1 are contiguous from unit stride.

    `dims` are the input dimensions (dims[j] = q; the output has p there). Strides are in
    elements. The modes after the merged GEMM dimension are walked by index arithmetic.
    """
    cdef blas_int p = <blas_int>f.p, q = <blas_int>f.q
    cdef char flipped = c'T' if f.trans == c'N' else c'N'
    cdef Py_ssize_t L = 1, cols = 1, n_outer = 1, r, rem, c, off_x, off_y
    cdef Py_ssize_t ldx, ldy
    cdef int u, first_outer
    if j == 0:
        # Merge the following modes into GEMM columns while both tensors stay contiguous.
        first_outer = 1
        cols = dims[1]
        while (first_outer + 1 < nmodes
               and xstr[first_outer + 1] == xstr[first_outer] * dims[first_outer]
               and ystr[first_outer + 1] == ystr[first_outer] * dims[first_outer]):
            first_outer += 1
            cols *= dims[first_outer]
        first_outer += 1
        ldx = xstr[1] if cols > 1 else q
        ldy = ystr[1] if cols > 1 else p
    else:
        for u in range(j):
            L *= dims[u]
        first_outer = j + 1
        ldx = xstr[j]
        ldy = ystr[j]
    for u in range(first_outer, nmodes):
        n_outer *= dims[u]
    for r in range(n_outer):
        off_x = 0
        off_y = 0
        rem = r
        for u in range(first_outer, nmodes):
            c = rem % dims[u]
            rem = rem // dims[u]
            off_x += c * xstr[u]
            off_y += c * ystr[u]
        if j == 0:
            gemm(f.trans, c'N', p, <blas_int>cols, q, <blas_t*>f.data, f.ld,
                 x + off_x, <blas_int>_max(ldx, 1), beta, y + off_y, <blas_int>_max(ldy, 1))
        else:
            gemm(c'N', flipped, <blas_int>L, p, q, x + off_x, <blas_int>ldx,
                 <blas_t*>f.data, f.ld, beta, y + off_y, <blas_int>ldy)


cdef void _contiguous_strides(const Py_ssize_t* dims, int nmodes, Py_ssize_t* strides) noexcept nogil:
    cdef int u
    cdef Py_ssize_t s = 1
    for u in range(nmodes):
        strides[u] = s
        s *= dims[u]


cdef blas_t* _run(const Factor* factors, const Py_ssize_t* order, int nsteps, int k,
                 bint c_kind, Py_ssize_t m,
                 const blas_t* x, Py_ssize_t x_rhs_stride,
                 blas_t* out, Py_ssize_t out_rhs_stride, bint out_direct, bint accumulate,
                 blas_t* spare, blas_t* other,
                 Py_ssize_t* dims, Py_ssize_t* xstr, Py_ssize_t* ystr) noexcept nogil:
    """Apply the factors in `order` (nsteps >= 1); return where the last step wrote.

    Intermediates alternate between `spare` and `other`; the last step writes `out`
    when `out_direct`, else the next buffer in turn.
    """
    cdef int nmodes = k + 1, t, i, j, u, rhs = 0 if c_kind else k
    cdef const blas_t* src = x
    cdef blas_t* dst
    cdef blas_t* swap
    cdef blas_t beta
    for i in range(k):
        dims[k - i if c_kind else k - 1 - i] = factors[i].q
    dims[rhs] = m
    _contiguous_strides(dims, nmodes, xstr)
    if not c_kind:
        xstr[rhs] = x_rhs_stride
    for t in range(nsteps):
        i = <int>order[t]
        j = k - i if c_kind else k - 1 - i
        dims[j] = factors[i].p
        _contiguous_strides(dims, nmodes, ystr)
        dims[j] = factors[i].q
        beta = 0
        if t == nsteps - 1 and out_direct:
            dst = out
            if not c_kind:
                ystr[rhs] = out_rhs_stride
            if accumulate:
                beta = 1
        else:
            dst = spare
            swap = spare
            spare = other
            other = swap
        _apply_mode(&factors[i], src, xstr, dst, ystr, dims, nmodes, j, beta)
        dims[j] = factors[i].p
        for u in range(nmodes):
            xstr[u] = ystr[u]
        src = dst
    return dst


cdef char* _run_typed(int type_num, const Factor* factors, const Py_ssize_t* order,
                      int nsteps, int k, bint c_kind, Py_ssize_t m,
                      const char* x, Py_ssize_t x_rhs_stride,
                      char* out, Py_ssize_t out_rhs_stride, bint out_direct, bint accumulate,
                      char* spare, char* other, Py_ssize_t* ints) noexcept nogil:
    cdef Py_ssize_t* dims = ints
    cdef Py_ssize_t* xstr = ints + (k + 1)
    cdef Py_ssize_t* ystr = ints + 2 * (k + 1)
    if type_num == cnp.NPY_FLOAT32:
        return <char*>_run[float](factors, order, nsteps, k, c_kind, m, <const float*>x,
                                  x_rhs_stride, <float*>out, out_rhs_stride, out_direct,
                                  accumulate, <float*>spare, <float*>other, dims, xstr, ystr)
    elif type_num == cnp.NPY_FLOAT64:
        return <char*>_run[double](factors, order, nsteps, k, c_kind, m, <const double*>x,
                                   x_rhs_stride, <double*>out, out_rhs_stride, out_direct,
                                   accumulate, <double*>spare, <double*>other, dims, xstr, ystr)
    elif type_num == cnp.NPY_COMPLEX64:
        return <char*>_run[complex64_t](
            factors, order, nsteps, k, c_kind, m, <const complex64_t*>x, x_rhs_stride,
            <complex64_t*>out, out_rhs_stride, out_direct, accumulate,
            <complex64_t*>spare, <complex64_t*>other, dims, xstr, ystr)
    else:
        return <char*>_run[complex128_t](
            factors, order, nsteps, k, c_kind, m, <const complex128_t*>x, x_rhs_stride,
            <complex128_t*>out, out_rhs_stride, out_direct, accumulate,
            <complex128_t*>spare, <complex128_t*>other, dims, xstr, ystr)


cdef struct Operand:
    # x or out as the kernel sees it: n rows and m columns (m = 1 for 1-D), byte strides.
    char* data
    Py_ssize_t n
    Py_ssize_t m
    Py_ssize_t s0
    Py_ssize_t s1


cdef inline bint _is_blas_type(int type_num) noexcept:
    return (type_num == cnp.NPY_FLOAT32 or type_num == cnp.NPY_FLOAT64
            or type_num == cnp.NPY_COMPLEX64 or type_num == cnp.NPY_COMPLEX128)


cdef void _load_operand(cnp.ndarray a, Operand* op) noexcept:
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(a)
    op.data = cnp.PyArray_BYTES(a)
    op.n = cnp.PyArray_DIM(a, 0)
    op.s0 = cnp.PyArray_STRIDE(a, 0)
    if cnp.PyArray_NDIM(a) == 2:
        op.m = cnp.PyArray_DIM(a, 1)
        op.s1 = cnp.PyArray_STRIDE(a, 1)
    else:
        op.m = 1
    # A dimension of length 1 has no meaningful stride.
    if op.n == 1:
        op.s0 = itemsize
    if op.m == 1:
        op.s1 = op.n * itemsize


cdef bint _load_factor(object f, Factor* factor, int type_num, Py_ssize_t itemsize) noexcept:
    """Describe factor `f` (an int n for the identity, or a 2-D array) for BLAS.

    Returns False when `f` is not of `type_num` or its strides are not BLAS-readable.
    """
    cdef cnp.ndarray a
    cdef Py_ssize_t p, q, s0, s1
    if type(f) is int:
        factor.data = NULL
        factor.p = factor.q = <Py_ssize_t>f
        return factor.p >= 0
    if type(f) is not cnp.ndarray:
        return False
    a = <cnp.ndarray>f
    if (cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_TYPE(a) != type_num
            or not cnp.PyArray_ISALIGNED(a)):
        return False
    p = factor.p = cnp.PyArray_DIM(a, 0)
    q = factor.q = cnp.PyArray_DIM(a, 1)
    factor.data = cnp.PyArray_BYTES(a)
    s0 = cnp.PyArray_STRIDE(a, 0)
    s1 = cnp.PyArray_STRIDE(a, 1)
    if p <= 1:
        s0 = itemsize if q <= 1 else q * itemsize
    if q <= 1:
        s1 = itemsize if p <= 1 else p * itemsize
    if s0 == itemsize and s1 >= p * itemsize and s1 % itemsize == 0:
        factor.trans = c'N'
        factor.ld = <blas_int>_max(s1 // itemsize, 1)
    elif s1 == itemsize and s0 >= q * itemsize and s0 % itemsize == 0:
        factor.trans = c'T'
        factor.ld = <blas_int>_max(s0 // itemsize, 1)
    else:
        return False
    return True


cdef Py_ssize_t _execute(const Factor* factors, int k, const Py_ssize_t* order, int nsteps,
                         const Operand* x, Operand* out, Py_ssize_t itemsize, int type_num,
                         char* ws, Py_ssize_t ws_bytes, bint accumulate,
                         Py_ssize_t* ints) noexcept nogil:
    """out (+)= kron(factors) @ x; returns 0, or the workspace bytes needed (nothing done).

    `ints` has room for 3 * (k + 1) entries. Sizes are non-zero.
    """
    cdef Py_ssize_t m = x.m, n_in = x.n, n_out = out.n
    cdef Py_ssize_t xs0 = x.s0, xs1 = x.s1, ys0 = out.s0, ys1 = out.s1
    cdef Py_ssize_t size, largest, need
    cdef int resident, i, f_i
    cdef bint c_kind = False, x_direct, out_direct
    cdef const char* src
    cdef char* spare
    cdef char* other
    cdef char* result

    # Memory-order kind: "F" keeps the right-hand-side mode last (its stride may be padded),
    # "C" keeps it first (contiguous only). Any other x is copied once into the workspace,
    # any other out is written through a workspace buffer.
    x_direct = xs0 == itemsize and xs1 >= n_in * itemsize and xs1 % itemsize == 0
    if not x_direct and m > 1 and xs1 == itemsize and xs0 == m * itemsize:
        x_direct = c_kind = True
    if c_kind:
        out_direct = ys1 == itemsize and ys0 == m * itemsize
    else:
        out_direct = ys0 == itemsize and ys1 >= n_out * itemsize and ys1 % itemsize == 0
        if not x_direct and m > 1 and ys1 == itemsize and ys0 == m * itemsize:
            # x is copied anyway: copy it into the layout that `out` takes directly.
            c_kind = out_direct = True

    if nsteps == 0:
        _copy_2d(x.data, xs0, xs1, out.data, ys0, ys1, n_in, m, itemsize, accumulate, type_num)
        return 0

    # Every tensor of the sequence x, T1, ..., out that is not x or out itself lives in one
    # of two workspace buffers, taken in turn.
    size = n_in * m
    largest = 0 if x_direct else size
    resident = 0 if x_direct else 1
    for i in range(nsteps):
        f_i = <int>order[i]
        size = size // factors[f_i].q * factors[f_i].p
        if i < nsteps - 1 or not out_direct:
            largest = _max(largest, size)
            resident += 1
    need = (resident if resident < 2 else 2) * largest * itemsize
    if need > ws_bytes:
        return need

    src = x.data
    spare = ws
    other = ws + largest * itemsize
    if not x_direct:
        if c_kind:
            _copy_2d(x.data, xs0, xs1, spare, m * itemsize, itemsize, n_in, m, itemsize,
                     False, type_num)
        else:
            _copy_2d(x.data, xs0, xs1, spare, itemsize, n_in * itemsize, n_in, m, itemsize,
                     False, type_num)
        src = spare
        xs1 = n_in * itemsize
        spare = other
        other = ws
    result = _run_typed(type_num, factors, order, nsteps, k, c_kind, m, src, xs1 // itemsize,
                        out.data, ys1 // itemsize, out_direct, accumulate, spare, other, ints)
    if not out_direct:
        if c_kind:
            _copy_2d(result, m * itemsize, itemsize, out.data, ys0, ys1, n_out, m, itemsize,
                     accumulate, type_num)
        else:
            _copy_2d(result, itemsize, n_out * itemsize, out.data, ys0, ys1, n_out, m,
                     itemsize, accumulate, type_num)
    return 0


# Problems up to this many factors, and workspaces up to this many doubles, run on the stack.
cdef enum:
    STACK_FACTORS = 8
    STACK_WORKSPACE_DOUBLES = 2048


def kron_apply(tuple mats, tuple order, cnp.ndarray x, cnp.ndarray out,
               cnp.ndarray workspace, bint accumulate=False):
    """Write (F1 ⊗ … ⊗ Fk) x into `out`, or add it to `out` when `accumulate`.

    Parameters
    ----------
    mats : tuple
        The factors in Kronecker order: aligned 2-D arrays of the dtype of `x` with a unit
        stride along one axis and a stride of at least the other dimension along the other,
        or a Python int n for the n-by-n identity (applied without a GEMM).
    order : tuple of int
        The indices of the non-identity factors, in the order they are applied.
    x, out : ndarray
        Both 1-D (lengths N and N') or both 2-D (shapes (N, m) and (N', m)), of one of the
        four BLAS dtypes, aligned, with N and N' the products of the factors' column and row
        counts, N, N', m > 0; `out` does not overlap `x` or a factor. Any strides.
    workspace : ndarray
        A contiguous array used for intermediate tensors.

    Returns
    -------
    int
        0 when the product was written; otherwise the number of workspace bytes needed,
        and nothing was written.
    """
    cdef int k = len(mats), nsteps = len(order), type_num = cnp.PyArray_TYPE(x), i
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x), need
    cdef Py_ssize_t ws_bytes = cnp.PyArray_NBYTES(workspace)
    cdef char* ws = cnp.PyArray_BYTES(workspace)
    cdef Operand xo, oo
    cdef Factor* factors
    cdef Py_ssize_t* ints
    cdef Py_ssize_t* steps
    if not _is_blas_type(type_num) or cnp.PyArray_TYPE(out) != type_num:
        raise TypeError("kron_apply: x and out must share one BLAS dtype")
    _load_operand(x, &xo)
    _load_operand(out, &oo)
    factors = <Factor*>malloc(k * sizeof(Factor) + (3 * (k + 1) + nsteps) * sizeof(Py_ssize_t))
    if factors == NULL:
        raise MemoryError()
    ints = <Py_ssize_t*>(factors + k)
    steps = ints + 3 * (k + 1)
    try:
        for i in range(k):
            if not _load_factor(mats[i], &factors[i], type_num, itemsize):
                raise ValueError(f"kron_apply: factor {i} is not a BLAS-readable array "
                                 "of the dtype of x")
        for i in range(nsteps):
            steps[i] = order[i]
        with nogil:
            need = _execute(factors, k, steps, nsteps, &xo, &oo, itemsize, type_num, ws,
                            ws_bytes, accumulate, ints)
    finally:
        free(factors)
    return need


cdef inline bint _cheaper_first(const Factor* a, const Factor* b) noexcept:
    # Applying a before b costs fewer flops iff 1/q_a - 1/p_a < 1/q_b - 1/p_b.
    return (a.p - a.q) * b.p * b.q < (b.p - b.q) * a.p * a.q


def kron_matvec_fast(object mats, object x, bint ints_are_identities=False):
    """The common case of kron_matvec, with no Python-level overhead, or None.

    Handles a list or tuple of at most 8 factors that are aligned, BLAS-readable arrays of
    one BLAS dtype with all dimensions in [1, 2**20), and an aligned 1-D or 2-D `x` of that
    dtype and matching length. Returns None (having done nothing) for anything else, which
    the caller then validates and runs in full. With `ints_are_identities`, a Python int n
    in `mats` stands for the n-by-n identity.
    """
    cdef Factor factors[STACK_FACTORS]
    cdef Py_ssize_t steps[STACK_FACTORS]
    cdef Py_ssize_t ints[3 * (STACK_FACTORS + 1)]
    cdef double stack_ws[STACK_WORKSPACE_DOUBLES]
    cdef Py_ssize_t n_in = 1, n_out = 1, itemsize, need, key
    cdef int k, nsteps = 0, i, j, type_num, ndim
    cdef bint square = True
    cdef Operand xo, oo
    cdef cnp.ndarray xa, out, ws
    cdef cnp.npy_intp shape[2]
    if type(x) is not cnp.ndarray or (type(mats) is not tuple and type(mats) is not list):
        return None
    xa = <cnp.ndarray>x
    type_num = cnp.PyArray_TYPE(xa)
    ndim = cnp.PyArray_NDIM(xa)
    k = len(mats)
    if (k == 0 or k > STACK_FACTORS or not _is_blas_type(type_num) or ndim < 1 or ndim > 2
            or not cnp.PyArray_ISALIGNED(xa) or cnp.PyArray_SIZE(xa) == 0):
        return None
    itemsize = cnp.PyArray_ITEMSIZE(xa)
    for i in range(k):
        f = mats[i]
        if type(f) is int and not ints_are_identities:
            return None
        if not _load_factor(f, &factors[i], type_num, itemsize):
            return None
        if (factors[i].p <= 0 or factors[i].q <= 0 or factors[i].p >= 1048576
                or factors[i].q >= 1048576):
            return None
        n_in *= factors[i].q
        n_out *= factors[i].p
        if n_in > 2147483647 or n_out > 2147483647:
            return None
        if factors[i].data != NULL:
            steps[nsteps] = i
            nsteps += 1
            square = square and factors[i].p == factors[i].q
    if cnp.PyArray_DIM(xa, 0) != n_in:
        return None
    # Insertion sort by the exchange-argument key (stable, so square factors keep order).
    if not square:
        for i in range(1, nsteps):
            key = steps[i]
            j = i - 1
            while j >= 0 and _cheaper_first(&factors[key], &factors[steps[j]]):
                steps[j + 1] = steps[j]
                j -= 1
            steps[j + 1] = key
    _load_operand(xa, &xo)
    if xo.m * n_in > 2147483647 or xo.m * n_out > 2147483647:
        return None
    shape[0] = n_out
    shape[1] = xo.m
    out = cnp.PyArray_EMPTY(ndim, shape, type_num,
                            ndim == 2 and xo.m > 1 and xo.s0 == itemsize)
    _load_operand(out, &oo)
    with nogil:
        need = _execute(factors, k, steps, nsteps, &xo, &oo, itemsize, type_num,
                        <char*>stack_ws, sizeof(stack_ws), False, ints)
    if need:
        ws = <cnp.ndarray>_workspace(need)
        with nogil:
            _execute(factors, k, steps, nsteps, &xo, &oo, itemsize, type_num,
                     cnp.PyArray_BYTES(ws), need, False, ints)
    return out

