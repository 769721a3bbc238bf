# Matrix chains: the optimal parenthesization of M0 M1 … M_{k-1} and its execution.
#
# M_i has shape d_i × d_{i+1}. The classic O(k³) dynamic program computes m[i][j], the least
# number of scalar multiplications for M_i … M_j:
#
#     m[i][i] = 0,   m[i][j] = min_{i <= s < j}  m[i][s] + m[s+1][j] + d_i d_{s+1} d_{j+1}.
#
# The table lives in one k × k array T with m[i][j] (i < j) stored twice: at T[i, j] (upper
# triangle, so the row m[i][i..j-1] is contiguous) and at T[j, i] (lower triangle, so the
# column m[i+1..j][j] is contiguous as well). Filling it column by column (j ascending, i
# descending) keeps row j hot in cache, and the inner loop is a min-reduction over two
# contiguous runs with four independent accumulators. Splits are not stored: the tree is
# recovered afterwards by re-scanning the k - 1 nodes of the optimal tree only, taking the
# smallest split that attains the optimum (so ties are broken deterministically).
#
# Costs are exact. The Python layer picks the narrowest cost type in which no value can
# overflow: every candidate is at most (k - 1) max(d)³, so doubles are exact below 2⁵³,
# then uint64 below 2⁶⁴, unsigned __int128 below 2¹²⁸ and pairs of them below 2²⁵⁶, which
# covers every dimension below 2⁶³ (where the compiler has a 128-bit integer).
#
# The executor evaluates the tree in post-order with one GEMM per node; intermediates live
# in a caller-provided workspace, placed first-fit among the live ones, and the root writes
# the result directly. The Python layer (matkron/_chain.py) does all coercion, dtype policy
# and shape checks; the kernels trust their inputs.

cimport numpy as cnp
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint64_t

from _blas cimport (
    BLAS_INT_MAX,
    blas_matrix,
    blas_t,
    complex64_t,
    complex128_t,
    is_blas_array,
    is_blas_type,
    max_size,
)
from _blas_int cimport blas_int
from _interrupt cimport Watch, gemm_watched, raise_pending, watch_start, watch_tick
from matkron._workspace_cy cimport workspace_give, workspace_take

import threading


cnp.import_array()

cdef unsigned long _main_thread = threading.main_thread().ident

cdef extern from "chain_dp.h":
    # Declared to Cython as a type distinct from uint64_t; only C operators and casts touch it.
    ctypedef unsigned long u128 "matkron_u128"
    ctypedef struct u256 "matkron_u256":
        u128 lo
        u128 hi
    const int MATKRON_HAVE_U128
    uint64_t u128_hi "matkron_u128_hi"(u128 x) noexcept nogil
    u256 u256_of "matkron_u256_of"(uint64_t x) noexcept nogil
    u256 u256_add "matkron_u256_add"(u256 a, u256 b) noexcept nogil
    u256 u256_mul "matkron_u256_mul"(u128 a, uint64_t b) noexcept nogil
    bint u256_lt "matkron_u256_lt"(u256 a, u256 b) noexcept nogil
    bint u256_eq "matkron_u256_eq"(u256 a, u256 b) noexcept nogil

HAVE_INT128 = bool(MATKRON_HAVE_U128)

# The inner loop of the DP in doubles, min over s < n of r[s] + c[s] + dij * q[s], with
# SIMD intrinsics chosen at run time (chain_dp.c).
cdef extern from "chain_dp.h":
    ctypedef double (*minrun_t "matkron_minrun_t")(const double*, const double*, const double*,
                                                   double, Py_ssize_t) noexcept nogil
    minrun_t minrun_get "matkron_minrun_get"(int which) noexcept nogil

ctypedef fused cost_t:
    double
    uint64_t
    u128
    u256


# ---------------------------------------------------------------------------------------
# The dynamic program


cdef inline cost_t _min(cost_t a, cost_t b) noexcept nogil:
    if cost_t is u256:
        return b if u256_lt(b, a) else a
    else:
        return b if b < a else a


cdef inline cost_t _term(cost_t r, cost_t c, cost_t dij, cost_t q) noexcept nogil:
    """r + c + dij * q: the cost of one split (for u256, dij < 2**128 and q < 2**64)."""
    if cost_t is u256:
        return u256_add(u256_add(r, c), u256_mul(dij.lo, <uint64_t>q.lo))
    else:
        return r + c + dij * q


cdef inline cost_t _product(cost_t a, cost_t b) noexcept nogil:
    """a * b for two dimensions (below 2**63)."""
    cdef cost_t p
    if cost_t is u256:
        p.lo = a.lo * b.lo
        p.hi = 0
        return p
    else:
        return a * b


cdef inline cost_t _minrun(const cost_t* r, const cost_t* c, const cost_t* q, cost_t dij,
                           Py_ssize_t n) noexcept nogil:
    """min over s < n of r[s] + c[s] + dij * q[s] (n >= 1), with four accumulators."""
    cdef cost_t b0 = _term(r[0], c[0], dij, q[0]), b1 = b0, b2 = b0, b3 = b0
    cdef Py_ssize_t s = 1
    while s + 4 <= n:
        b0 = _min(b0, _term(r[s], c[s], dij, q[s]))
        b1 = _min(b1, _term(r[s + 1], c[s + 1], dij, q[s + 1]))
        b2 = _min(b2, _term(r[s + 2], c[s + 2], dij, q[s + 2]))
        b3 = _min(b3, _term(r[s + 3], c[s + 3], dij, q[s + 3]))
        s += 4
    while s < n:
        b0 = _min(b0, _term(r[s], c[s], dij, q[s]))
        s += 1
    return _min(_min(b0, b1), _min(b2, b3))


cdef bint _dp_fill(cost_t* T, const cost_t* d, Py_ssize_t k, minrun_t minrun,
                   Watch* watch) noexcept nogil:
    """Fill T (k × k) with m[i][j] at T[i, j] and T[j, i]; `d` holds the k + 1 dims.

    `minrun` is the inner loop used for doubles. Returns whether `watch` stopped it.
    """
    cdef Py_ssize_t i, j
    cdef cost_t best
    for i in range(k):
        if cost_t is u256:
            T[i * k + i] = u256_of(0)
        else:
            T[i * k + i] = 0
    for j in range(1, k):
        for i in range(j - 1, -1, -1):
            # r = m[i][s] and c = m[s+1][j] for s = i .. j-1, both contiguous; q = d[s+1].
            if cost_t is double:
                best = minrun(T + i * k + i, T + j * k + i + 1, d + i + 1, d[i] * d[j + 1],
                              j - i)
            else:
                best = _minrun(T + i * k + i, T + j * k + i + 1, d + i + 1,
                               _product(d[i], d[j + 1]), j - i)
            T[i * k + j] = best
            T[j * k + i] = best
        if watch_tick(watch, 0.5 * <double>j * j):
            return True
    return False


cdef Py_ssize_t _dp_split(const cost_t* T, const cost_t* d, Py_ssize_t k,
                          Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """The smallest split s of M_i … M_j (i < j) that attains m[i][j]."""
    cdef Py_ssize_t s
    cdef cost_t target = T[i * k + j], dij = _product(d[i], d[j + 1]), value
    for s in range(i, j - 1):
        value = _term(T[i * k + s], T[j * k + s + 1], dij, d[s + 1])
        if cost_t is u256:
            if u256_eq(value, target):
                return s
        else:
            if value == target:
                return s
    return j - 1


cdef void _dp_steps(const cost_t* T, const cost_t* d, Py_ssize_t k, Py_ssize_t* steps,
                    Py_ssize_t* stack) noexcept nogil:
    """Write the k - 1 products of the optimal tree in post-order as (i, s, j) triples.

    Each triple multiplies the product of M_i … M_s by that of M_{s+1} … M_j. The tree is
    walked as node, right, left with an explicit stack (room for 2k entries) and the nodes
    are written from the end, which gives left, right, node: post-order.
    """
    cdef Py_ssize_t top = 0, pos = k - 1, i, j, s
    stack[0] = 0
    stack[1] = k - 1
    top = 2
    while top > 0:
        top -= 2
        i = stack[top]
        j = stack[top + 1]
        if i == j:
            continue
        s = _dp_split(T, d, k, i, j)
        pos -= 1
        steps[3 * pos] = i
        steps[3 * pos + 1] = s
        steps[3 * pos + 2] = j
        stack[top] = i
        stack[top + 1] = s
        stack[top + 2] = s + 1
        stack[top + 3] = j
        top += 4


cdef int _dp_solve(const uint64_t* dims, Py_ssize_t k, Py_ssize_t* steps, cost_t* cost,
                   cost_t* T, minrun_t minrun, Watch* watch) noexcept nogil:
    """Optimal cost and post-order steps for the chain with dims[0..k]; returns 0, -1 on
    no memory, -2 when `watch` stopped it.

    `T` is a k × k table (or NULL to allocate one).
    """
    cdef int status = 0
    cdef cost_t* d = <cost_t*>malloc((k + 1) * sizeof(cost_t))
    cdef Py_ssize_t* stack = <Py_ssize_t*>malloc(2 * (k + 1) * sizeof(Py_ssize_t))
    cdef bint own = T == NULL
    cdef Py_ssize_t i
    if own:
        T = <cost_t*>malloc(k * k * sizeof(cost_t))
    if d == NULL or stack == NULL or T == NULL:
        free(d)
        free(stack)
        if own:
            free(T)
        return -1
    for i in range(k + 1):
        if cost_t is u256:
            d[i] = u256_of(dims[i])
        else:
            d[i] = <cost_t>dims[i]
    if _dp_fill(T, d, k, minrun, watch):
        status = -2
    else:
        cost[0] = T[k - 1]
        _dp_steps(T, d, k, steps, stack)
    free(d)
    free(stack)
    if own:
        free(T)
    return status


def dp_plan(object dims, int tier, int kernel=0):
    """Optimal cost and order of the chain with the given dims, by the O(k³) DP.

    Parameters
    ----------
    dims : sequence of int
        d_0 … d_k (k >= 1), each in [0, 2**63).
    tier : int
        The cost type: 0 double, 1 uint64, 2 unsigned 128-bit, 3 unsigned 256-bit; the
        caller guarantees that (k - 1) max(dims)³ fits it (below 2**53, 2**64, 2**128,
        2**256 respectively). Tiers 2 and 3 need HAVE_INT128.
    kernel : int, optional
        The inner loop of tier 0, for tests: 0 the fastest for this CPU, 1 scalar, 2 the
        baseline SIMD of the target, 3 AVX2 (ValueError where there is none).

    Returns
    -------
    cost : int
        The optimal number of scalar multiplications, exact.
    steps : ndarray of intp, shape (k - 1, 3)
        The products in post-order as rows (i, s, j): the product of M_i … M_s times that
        of M_{s+1} … M_j. Among optimal splits the smallest is taken.
    """
    cdef Py_ssize_t k = len(dims) - 1, i
    cdef uint64_t* d
    cdef cnp.npy_intp shape[2]
    cdef cnp.ndarray steps
    cdef Py_ssize_t* sp
    cdef int status = 0
    cdef double c_double = 0
    cdef uint64_t c_u64 = 0
    cdef u128 c_u128 = 0
    cdef u256 c_u256 = u256_of(0)
    cdef minrun_t minrun = minrun_get(kernel)
    cdef Watch watch
    if k < 1 or not 0 <= tier <= 3 or (tier >= 2 and not MATKRON_HAVE_U128):
        raise ValueError("dp_plan: need k >= 1 and a supported tier")
    if minrun == NULL or not 0 <= kernel <= 3:
        raise ValueError(f"dp_plan: kernel {kernel} is not available")
    shape[0] = k - 1
    shape[1] = 3
    steps = cnp.PyArray_EMPTY(2, shape, cnp.NPY_INTP, 0)
    if k == 1:
        return 0, steps
    d = <uint64_t*>malloc((k + 1) * sizeof(uint64_t))
    if d == NULL:
        raise MemoryError()
    try:
        for i in range(k + 1):
            d[i] = <uint64_t>dims[i]
        sp = <Py_ssize_t*>cnp.PyArray_DATA(steps)
        watch_start(&watch, _main_thread)
        with nogil:
            if tier == 0:
                status = _dp_solve[double](d, k, sp, &c_double, NULL, minrun, &watch)
            elif tier == 1:
                status = _dp_solve[uint64_t](d, k, sp, &c_u64, NULL, minrun, &watch)
            elif tier == 2:
                status = _dp_solve[u128](d, k, sp, &c_u128, NULL, minrun, &watch)
            else:
                status = _dp_solve[u256](d, k, sp, &c_u256, NULL, minrun, &watch)
    finally:
        free(d)
    if status == -2:
        raise_pending()
    if status:
        raise MemoryError(f"no memory for the {k} x {k} cost table of the chain DP")
    if tier == 0:
        return int(c_double), steps
    if tier == 1:
        return int(c_u64), steps
    if tier == 2:
        return _to_int(c_u128), steps
    return (_to_int(c_u256.hi) << 128) | _to_int(c_u256.lo), steps


cdef object _to_int(u128 x):
    return (int(u128_hi(x)) << 64) | int(<uint64_t>x)


# ---------------------------------------------------------------------------------------
# Executing a plan


cdef struct Mat:
    # A matrix as BLAS sees it: the column-major matrix at `data` is M ('N') or M.T ('T').
    char* data
    char trans
    blas_int ld
    Py_ssize_t rows
    Py_ssize_t cols


cdef bint _describe(char* data, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t s0,
                    Py_ssize_t s1, Py_ssize_t itemsize, Mat* m) noexcept nogil:
    """Describe a rows × cols matrix with byte strides (s0, s1); False if BLAS cannot read it
    (neither stride unit, or the leading dimension beyond the BLAS integer)."""
    cdef Py_ssize_t ld
    m.data = data
    m.rows = rows
    m.cols = cols
    if not blas_matrix(rows, cols, s0, s1, itemsize, &m.trans, &ld):
        return False
    m.ld = <blas_int>ld
    return True


cdef bint _load(cnp.ndarray a, Py_ssize_t rows, Py_ssize_t cols, Mat* m) noexcept:
    """Describe the 1-D or 2-D array `a` as a rows × cols matrix (a 1-D array is a row
    when rows == 1, else a column)."""
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(a), s0, s1
    if cnp.PyArray_NDIM(a) == 2:
        s0 = cnp.PyArray_STRIDE(a, 0)
        s1 = cnp.PyArray_STRIDE(a, 1)
    elif rows == 1:
        s0 = itemsize
        s1 = cnp.PyArray_STRIDE(a, 0)
    else:
        s0 = cnp.PyArray_STRIDE(a, 0)
        s1 = itemsize
    return _describe(cnp.PyArray_BYTES(a), rows, cols, s0, s1, itemsize, m)


cdef bint _gemm_typed(int type_num, char ta, char tb, blas_int m, blas_int n, blas_int kk,
                      const char* a, blas_int lda, const char* b, blas_int ldb,
                      char* c, blas_int ldc, Watch* watch) noexcept nogil:
    """c = op(a) @ op(b) in the dtype `type_num`, watched; whether to stop."""
    cdef float one_s = 1, zero_s = 0
    cdef double one_d = 1, zero_d = 0
    cdef complex64_t one_c = 1, zero_c = 0
    cdef complex128_t one_z = 1, zero_z = 0
    if type_num == cnp.NPY_FLOAT32:
        return gemm_watched[float](watch, ta, tb, m, n, kk, one_s, <const float*>a, lda,
                                   <const float*>b, ldb, zero_s, <float*>c, ldc)
    elif type_num == cnp.NPY_FLOAT64:
        return gemm_watched[double](watch, ta, tb, m, n, kk, one_d, <const double*>a, lda,
                                    <const double*>b, ldb, zero_d, <double*>c, ldc)
    elif type_num == cnp.NPY_COMPLEX64:
        return gemm_watched[complex64_t](watch, ta, tb, m, n, kk, one_c,
                                         <const complex64_t*>a, lda, <const complex64_t*>b,
                                         ldb, zero_c, <complex64_t*>c, ldc)
    else:
        return gemm_watched[complex128_t](watch, ta, tb, m, n, kk, one_z,
                                          <const complex128_t*>a, lda,
                                          <const complex128_t*>b, ldb, zero_z,
                                          <complex128_t*>c, ldc)


cdef bint _multiply(int type_num, const Mat* x, const Mat* y, const Mat* p,
                    Watch* watch) noexcept nogil:
    """p = x @ y, with p either column-major ('N') or row-major ('T', via p.T = y.T @ x.T);
    whether `watch` stopped."""
    cdef char tx = c'T' if x.trans == c'N' else c'N'
    cdef char ty = c'T' if y.trans == c'N' else c'N'
    if p.trans == c'N':
        return _gemm_typed(type_num, x.trans, y.trans, <blas_int>x.rows, <blas_int>y.cols,
                           <blas_int>x.cols, x.data, x.ld, y.data, y.ld, p.data, p.ld,
                           watch)
    return _gemm_typed(type_num, ty, tx, <blas_int>y.cols, <blas_int>x.rows,
                       <blas_int>x.cols, y.data, y.ld, x.data, x.ld, p.data, p.ld, watch)


cdef Py_ssize_t _place(Py_ssize_t* live, Py_ssize_t* nlive, Py_ssize_t size) noexcept nogil:
    """First-fit placement of `size` elements among the live intervals (sorted pairs
    [start, end) in `live`); records the new interval and returns its start."""
    cdef Py_ssize_t n = nlive[0], t, u, start = 0
    for t in range(n + 1):
        if t == n or live[2 * t] - start >= size:
            break
        start = live[2 * t + 1]
    for u in range(n, t, -1):
        live[2 * u] = live[2 * u - 2]
        live[2 * u + 1] = live[2 * u - 1]
    live[2 * t] = start
    live[2 * t + 1] = start + size
    nlive[0] = n + 1
    return start


cdef void _release(Py_ssize_t* live, Py_ssize_t* nlive, Py_ssize_t start) noexcept nogil:
    cdef Py_ssize_t n = nlive[0], t, u
    for t in range(n):
        if live[2 * t] == start:
            for u in range(t, n - 1):
                live[2 * u] = live[2 * u + 2]
                live[2 * u + 1] = live[2 * u + 3]
            nlive[0] = n - 1
            return


cdef Py_ssize_t _layout(const Mat* mats, const Py_ssize_t* steps, Py_ssize_t k,
                        Py_ssize_t* offsets, Py_ssize_t* live,
                        Py_ssize_t* start_of) noexcept nogil:
    """Place the intermediates of `steps`; return the workspace size in elements.

    offsets[t] is where step t (t < k - 2; the last step writes the result) puts its
    product. `live` has room for 2k entries, `start_of` for k.
    """
    cdef Py_ssize_t nlive = 0, t, i, s, j, need = 0, size
    for i in range(k):
        start_of[i] = -1
    for t in range(k - 2):
        i = steps[3 * t]
        s = steps[3 * t + 1]
        j = steps[3 * t + 2]
        size = mats[i].rows * mats[j].cols
        offsets[t] = _place(live, &nlive, size)
        need = max_size(need, offsets[t] + size)
        if start_of[i] >= 0:
            _release(live, &nlive, start_of[i])
        if start_of[s + 1] >= 0:
            _release(live, &nlive, start_of[s + 1])
        start_of[i] = offsets[t]
    return need


cdef void _run(int type_num, Py_ssize_t itemsize, Mat* vals, const Py_ssize_t* steps,
               Py_ssize_t k, const Py_ssize_t* offsets, char* ws, const Mat* out,
               Watch* watch) noexcept nogil:
    """Evaluate the steps, until `watch` stops; vals[i] starts as M_i and holds the latest
    product from i on."""
    cdef Py_ssize_t t, i, s
    cdef Mat p
    for t in range(k - 1):
        i = steps[3 * t]
        s = steps[3 * t + 1]
        if t == k - 2:
            _multiply(type_num, &vals[i], &vals[s + 1], out, watch)
            return
        p.rows = vals[i].rows
        p.cols = vals[s + 1].cols
        p.trans = c'N'
        p.ld = <blas_int>max_size(p.rows, 1)
        p.data = ws + offsets[t] * itemsize
        if _multiply(type_num, &vals[i], &vals[s + 1], &p, watch):
            return
        vals[i] = p


cdef Py_ssize_t _execute(int type_num, Py_ssize_t itemsize, Mat* vals, const Py_ssize_t* steps,
                         Py_ssize_t k, const Mat* out, char* ws, Py_ssize_t ws_bytes,
                         Py_ssize_t* ints, Watch* watch) noexcept nogil:
    """Compute the product into `out`; returns 0, or the workspace bytes needed (nothing
    done). `ints` has room for 4k entries; all dimensions are non-zero. When `watch`
    stops, `out` is incomplete (the caller raises)."""
    cdef Py_ssize_t* offsets = ints
    cdef Py_ssize_t* live = ints + k
    cdef Py_ssize_t* start_of = ints + 3 * k
    cdef Py_ssize_t need = _layout(vals, steps, k, offsets, live, start_of) * itemsize
    if need > ws_bytes:
        return need
    _run(type_num, itemsize, vals, steps, k, offsets, ws, out, watch)
    return 0


def execute(tuple mats, cnp.ndarray steps, cnp.ndarray out, cnp.ndarray workspace):
    """Write the product M_0 … M_{k-1} into `out`, multiplying in the order of `steps`.

    Parameters
    ----------
    mats : tuple of ndarray
        k >= 2 aligned, native-byte-order 2-D arrays of the dtype of `out` (one of the four
        BLAS dtypes), with chained non-zero shapes, each with a unit stride along one axis
        and a stride of at least the other dimension along the other.
    steps : ndarray of intp, shape (k - 1, 3)
        C-contiguous post-order products (i, s, j), as returned by :func:`dp_plan`.
    out : ndarray
        Aligned, native-byte-order 2-D array of the result shape with such strides, not
        overlapping `mats`.
    workspace : ndarray
        A contiguous array used for the intermediate products.

    Returns
    -------
    int
        0 when the product was written; otherwise the number of workspace bytes needed,
        and nothing was written.
    """
    cdef Py_ssize_t k = len(mats), i, need
    cdef int type_num = cnp.PyArray_TYPE(out)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(out)
    cdef Mat* vals
    cdef Mat o
    cdef cnp.ndarray a
    cdef Watch watch
    if (k < 2 or cnp.PyArray_NDIM(steps) != 2
            or cnp.PyArray_DIM(steps, 0) != k - 1 or cnp.PyArray_DIM(steps, 1) != 3
            or cnp.PyArray_TYPE(steps) != cnp.NPY_INTP
            or not cnp.PyArray_IS_C_CONTIGUOUS(steps)):
        raise ValueError("execute: need k >= 2 matrices and a (k - 1, 3) intp step array")
    if not is_blas_array(out) or cnp.PyArray_NDIM(out) != 2:
        raise ValueError("execute: out must be an aligned, native-byte-order 2-D array of "
                         "a BLAS dtype")
    if not _load(out, cnp.PyArray_DIM(out, 0), cnp.PyArray_DIM(out, 1), &o):
        raise ValueError("execute: out is not BLAS-writable")
    vals = <Mat*>malloc(k * sizeof(Mat) + 4 * k * sizeof(Py_ssize_t))
    if vals == NULL:
        raise MemoryError()
    try:
        for i in range(k):
            a = <cnp.ndarray?>mats[i]
            if (cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_TYPE(a) != type_num
                    or not is_blas_array(a)
                    or not _load(a, cnp.PyArray_DIM(a, 0), cnp.PyArray_DIM(a, 1), &vals[i])):
                raise ValueError(f"execute: mats[{i}] is not a BLAS-readable 2-D array of "
                                 "the dtype of out")
        watch_start(&watch, _main_thread)
        with nogil:
            need = _execute(type_num, itemsize, vals, <Py_ssize_t*>cnp.PyArray_DATA(steps),
                            k, &o, cnp.PyArray_BYTES(workspace),
                            cnp.PyArray_NBYTES(workspace), <Py_ssize_t*>(vals + k), &watch)
    finally:
        free(vals)
    if watch.stopped:
        raise_pending()
    return need


# ---------------------------------------------------------------------------------------
# multi_dot without Python-level overhead


# Chains up to this many matrices, and workspaces up to this many doubles, run on the stack.
cdef enum:
    STACK_CHAIN = 32
    STACK_WORKSPACE_DOUBLES = 2048


def multi_dot_fast(object arrays):
    """The common case of multi_dot, with no Python-level overhead, or None.

    Handles a list or tuple of 2 to 32 exact ndarrays of one BLAS dtype, aligned, in native
    byte order and BLAS-readable, 2-D except that the first and the last may be 1-D, with chained shapes,
    every dimension in [1, 2**31) and (k - 1) max(d)³ < 2**52. Returns None (having done
    nothing) for anything else, which the caller then validates and runs in full.
    """
    cdef Mat vals[STACK_CHAIN]
    cdef Mat o
    cdef uint64_t d[STACK_CHAIN + 1]
    cdef double table[STACK_CHAIN * STACK_CHAIN]
    cdef Py_ssize_t steps[3 * STACK_CHAIN]
    cdef Py_ssize_t ints[4 * STACK_CHAIN]
    cdef double stack_ws[STACK_WORKSPACE_DOUBLES]
    cdef double cost = 0, dmax = 0
    cdef Py_ssize_t k, i, rows, cols, itemsize, need
    cdef int type_num, ndim, first_ndim = 2, last_ndim = 2, status
    cdef cnp.ndarray a, out
    cdef char* ws = NULL
    cdef int ws_own = 0
    cdef cnp.npy_intp shape[2]
    cdef char* data
    cdef Watch watch
    if type(arrays) is not list and type(arrays) is not tuple:
        return None
    # Our own references: the pointers below must outlive the GEMMs, run without the GIL
    # while another thread may empty the caller's list.
    arrays = tuple(arrays)
    k = len(arrays)
    if k < 2 or k > STACK_CHAIN:
        return None
    obj = arrays[0]
    if type(obj) is not cnp.ndarray:
        return None
    type_num = cnp.PyArray_TYPE(<cnp.ndarray>obj)
    if not is_blas_type(type_num):
        return None
    itemsize = cnp.PyArray_ITEMSIZE(<cnp.ndarray>obj)
    for i in range(k):
        obj = arrays[i]
        if type(obj) is not cnp.ndarray:
            return None
        a = <cnp.ndarray>obj
        ndim = cnp.PyArray_NDIM(a)
        if cnp.PyArray_TYPE(a) != type_num or not is_blas_array(a):
            return None
        if ndim == 2:
            rows = cnp.PyArray_DIM(a, 0)
            cols = cnp.PyArray_DIM(a, 1)
        elif ndim == 1 and i == 0:
            rows = 1
            cols = cnp.PyArray_DIM(a, 0)
            first_ndim = 1
        elif ndim == 1 and i == k - 1:
            rows = cnp.PyArray_DIM(a, 0)
            cols = 1
            last_ndim = 1
        else:
            return None
        if rows < 1 or cols < 1 or rows > BLAS_INT_MAX or cols > BLAS_INT_MAX:
            return None
        if i > 0 and <uint64_t>rows != d[i]:
            return None
        d[i] = <uint64_t>rows
        d[i + 1] = <uint64_t>cols
        if not _load(a, rows, cols, &vals[i]):
            return None
    for i in range(k + 1):
        if d[i] > dmax:
            dmax = <double>d[i]
    if (k - 1) * dmax * dmax * dmax >= 4503599627370496.0:   # 2**52
        return None
    ndim = first_ndim + last_ndim - 2
    shape[0] = <cnp.npy_intp>(d[0] if first_ndim == 2 else d[k])
    shape[1] = <cnp.npy_intp>d[k]
    out = cnp.PyArray_EMPTY(ndim, shape, type_num, 0)
    data = cnp.PyArray_BYTES(out)
    # The result is C-ordered: its transpose is column-major with leading dimension d[k].
    _describe(data, <Py_ssize_t>d[0], <Py_ssize_t>d[k], <Py_ssize_t>d[k] * itemsize,
              itemsize, itemsize, &o)
    watch_start(&watch, _main_thread)
    with nogil:
        status = _dp_solve[double](d, k, steps, &cost, table, minrun_get(0), &watch)
    if status == -2:
        raise_pending()
    if status:
        raise MemoryError()
    with nogil:
        need = _execute(type_num, itemsize, vals, steps, k, &o, <char*>stack_ws,
                        sizeof(stack_ws), ints, &watch)
        if need:
            ws = workspace_take(need, &ws_own)
            if ws != NULL:
                _execute(type_num, itemsize, vals, steps, k, &o, ws, need, ints, &watch)
            workspace_give(ws, ws_own)
    if need and ws == NULL:
        raise MemoryError(f"chain: cannot allocate a {need}-byte workspace")
    if watch.stopped:
        raise_pending()
    if ndim == 0:
        return out[()]
    return out
