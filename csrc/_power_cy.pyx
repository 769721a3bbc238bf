# Application loops of the Jacobian of the matrix power and of matrix polynomials.
#
# For A m-by-m, the derivative of A ↦ Aⁿ in the direction E is
#
#     d(Aⁿ)[E] = Σ_{k=0}^{n-1} A^k E A^{n-1-k}
#
# and every method here evaluates it with a fixed sequence of m-by-m GEMMs whose
# E-independent operands (powers of A, eigenvectors, divided differences) were computed once
# by the Python layer (matkron/_power.py) when the operator was built:
#
#     horner   L_1 = E, L_{j+1} = A L_j + W_j with W_j = E A^j carried as a running product
#              (W_{j+1} = W_j A): 2(n-1) GEMMs, no stored powers
#     binary   (P, D) pairs with P = A^a, D = d(A^a)[E], left-to-right binary powering:
#              squaring D <- P D + D P, multiplication D <- A D + E P, the P precomputed:
#              2 GEMMs per bit
#     oneshot  the same recurrence with the powers computed along the way (P <- P P or
#              A P after each step but the last): 3 GEMMs per step, one fewer in all, and
#              nothing stored; for a single product (matkron.frechet_power)
#     stored   T <- alpha E, then T <- A T + E R_s for precomputed R_s (the Horner scheme of a
#              polynomial, R_s the partial Horner sums of p(A)): 2 GEMMs per degree
#     eig      A = V Λ Vᴴ: V (Γ ∘ (Vᴴ E V)) Vᴴ, 4 GEMMs whatever n
#     dense    the m²-by-m² matrix times all right-hand sides: one GEMM
#
# Matrices are column-major with leading dimension m; each right-hand side of x is vec(E),
# one contiguous column. Intermediates live on the stack for small m and in the calling
# thread's workspace otherwise, so one plan may be applied from several threads at once.
# All loops and GEMMs run inside one `with nogil:` block, watched for Ctrl-C
# (_interrupt.pxd).

cimport numpy as cnp
from libc.string cimport memcpy

from _blas cimport (
    BLAS_INT_MAX,
    blas_t,
    complex64_t,
    complex128_t,
    is_blas_array,
    is_blas_type,
)
from _blas_int cimport blas_int
from _interrupt cimport Watch, gemm_watched, raise_pending, watch_start
from matkron._workspace_cy cimport workspace_give, workspace_take

import threading

import numpy as np


cnp.import_array()

cdef unsigned long _main_thread = threading.main_thread().ident


cdef enum:
    ZERO = 0
    COPY = 1
    HORNER = 2
    BINARY = 3
    EIG = 4
    DENSE = 5
    STORED = 6
    ONESHOT = 7

# Workspaces up to this many doubles (16 KiB) live on the stack.
cdef enum:
    STACK_DOUBLES = 2048

_METHODS = {"zero": ZERO, "copy": COPY, "horner": HORNER, "binary": BINARY, "eig": EIG,
            "dense": DENSE, "stored": STORED, "oneshot": ONESHOT}


cdef struct Plan:
    int method
    blas_int m
    Py_ssize_t mm          # m * m
    Py_ssize_t count       # horner: n; binary, stored: number of steps
    char* a                # A, column-major
    char* mats             # binary: P per step; stored: R per step; eig: V; dense: the matrix
    char* gamma            # eig: Γ
    const char* codes      # binary: 0 = squaring, 1 = multiplication by (A, E)
    double complex alpha   # stored: the scale of the first Horner term
    char a_trans           # oneshot: 'N', or 'T' when `a` holds A row by row (Aᵀ)


cdef inline bint _gemm(Watch* w, char ta, char tb, blas_int m, blas_int n, blas_int k,
                       const blas_t* a, blas_int lda, const blas_t* b, blas_int ldb,
                       blas_t beta, blas_t* c, blas_int ldc) noexcept nogil:
    """c = op(a) @ op(b) + beta c, watched (see _interrupt.pxd); whether to stop."""
    cdef blas_t one = 1
    return gemm_watched(w, ta, tb, m, n, k, one, a, lda, b, ldb, beta, c, ldc)


cdef inline void _swap(blas_t** a, blas_t** b) noexcept nogil:
    cdef blas_t* t = a[0]
    a[0] = b[0]
    b[0] = t


cdef bint _horner(const Plan* p, const blas_t* e, blas_t* out, blas_t* ws,
                  Watch* watch) noexcept nogil:
    """out = d(Aⁿ)[E] by L_{j+1} = A L_j + E A^j (n = p.count >= 2); whether stopped."""
    cdef blas_int m = p.m
    cdef Py_ssize_t mm = p.mm, j, n = p.count
    cdef const blas_t* a = <const blas_t*>p.a
    cdef const blas_t* l = e
    cdef blas_t* l_next = ws
    cdef blas_t* l_spare = ws + mm
    cdef blas_t* w = ws + 2 * mm
    cdef blas_t* w_next = ws + 3 * mm
    cdef blas_t* dst
    if _gemm(watch, c'N', c'N', m, m, m, e, m, a, m, 0, w, m):           # W_1 = E A
        return True
    for j in range(1, n):
        dst = out if j == n - 1 else l_next
        memcpy(dst, w, mm * sizeof(blas_t))
        if _gemm(watch, c'N', c'N', m, m, m, a, m, l, m, 1, dst, m):     # L_{j+1} = A L_j + W_j
            return True
        if j < n - 1:
            if _gemm(watch, c'N', c'N', m, m, m, w, m, a, m, 0, w_next, m):  # W_{j+1} = W_j A
                return True
            _swap(&w, &w_next)
            l = dst
            _swap(&l_next, &l_spare)
    return False


cdef bint _binary(const Plan* p, const blas_t* e, blas_t* out, blas_t* ws,
                  Watch* watch) noexcept nogil:
    """out = d(Aⁿ)[E] by binary powering of (A, E) with precomputed powers P; whether
    stopped."""
    cdef blas_int m = p.m
    cdef Py_ssize_t mm = p.mm, s
    cdef const blas_t* a = <const blas_t*>p.a
    cdef const blas_t* mats = <const blas_t*>p.mats
    cdef const blas_t* pw
    cdef const blas_t* d = e
    cdef blas_t* dst
    for s in range(p.count):
        pw = mats + s * mm
        dst = out if s == p.count - 1 else ws + (s % 2) * mm
        if p.codes[s] == 0:
            if (_gemm(watch, c'N', c'N', m, m, m, pw, m, d, m, 0, dst, m)       # P D
                    or _gemm(watch, c'N', c'N', m, m, m, d, m, pw, m, 1, dst, m)):  # + D P
                return True
        else:
            if (_gemm(watch, c'N', c'N', m, m, m, a, m, d, m, 0, dst, m)        # A D
                    or _gemm(watch, c'N', c'N', m, m, m, e, m, pw, m, 1, dst, m)):  # + E P
                return True
        d = dst
    return False


cdef bint _oneshot(const Plan* p, const blas_t* e, blas_t* out, blas_t* ws,
                   Watch* watch) noexcept nogil:
    """out = d(Aⁿ)[E] by binary powering of (A, E), the powers computed as it goes (ws
    holds 4 m² entries: two for P, two for D); whether stopped. GEMM reads A through
    p.a_trans (a row-major A, as a C-ordered array holds it, is read transposed, not
    copied); the powers it computes are column-major."""
    cdef blas_int m = p.m
    cdef Py_ssize_t mm = p.mm, s
    cdef const blas_t* a = <const blas_t*>p.a
    cdef const blas_t* pw = a
    cdef const blas_t* d = e
    cdef blas_t* dst
    cdef blas_t* pnext
    cdef char ta = p.a_trans
    cdef char tp = ta          # how pw is read: as A until the first power is computed
    for s in range(p.count):
        dst = out if s == p.count - 1 else ws + (s % 2) * mm
        pnext = ws + (2 + s % 2) * mm
        if p.codes[s] == 0:
            if (_gemm(watch, tp, c'N', m, m, m, pw, m, d, m, 0, dst, m)         # P D
                    or _gemm(watch, c'N', tp, m, m, m, d, m, pw, m, 1, dst, m)):  # + D P
                return True
            if s < p.count - 1 and _gemm(watch, tp, tp, m, m, m, pw, m, pw, m, 0,
                                         pnext, m):                             # P P
                return True
        else:
            if (_gemm(watch, ta, c'N', m, m, m, a, m, d, m, 0, dst, m)        # A D
                    or _gemm(watch, c'N', tp, m, m, m, e, m, pw, m, 1, dst, m)):  # + E P
                return True
            if s < p.count - 1 and _gemm(watch, ta, tp, m, m, m, a, m, pw, m, 0,
                                         pnext, m):                             # A P
                return True
        pw = pnext
        tp = c'N'
        d = dst
    return False


cdef bint _stored(const Plan* p, const blas_t* e, blas_t* out, blas_t* ws,
                  Watch* watch) noexcept nogil:
    """out = alpha-scaled Horner scheme T <- A T + E R_s over the stored R_s; whether
    stopped."""
    cdef blas_int m = p.m
    cdef Py_ssize_t mm = p.mm, s, i
    cdef const blas_t* a = <const blas_t*>p.a
    cdef const blas_t* mats = <const blas_t*>p.mats
    cdef blas_t alpha
    cdef blas_t* t = out if p.count == 0 else ws + mm
    cdef blas_t* dst
    if blas_t is float or blas_t is double:
        alpha = <blas_t>p.alpha.real
    else:
        alpha = <blas_t>p.alpha
    for i in range(mm):
        t[i] = alpha * e[i]
    for s in range(p.count):
        dst = out if s == p.count - 1 else ws + (s % 2) * mm
        if (_gemm(watch, c'N', c'N', m, m, m, a, m, t, m, 0, dst, m)                 # A T
                or _gemm(watch, c'N', c'N', m, m, m, e, m, mats + s * mm, m, 1, dst, m)):
            return True                                                              # + E R_s
        t = dst
    return False


cdef bint _eig(const Plan* p, const blas_t* e, blas_t* out, blas_t* ws,
               Watch* watch) noexcept nogil:
    """out = V (Γ ∘ (Vᴴ E V)) Vᴴ; whether stopped."""
    cdef blas_int m = p.m
    cdef Py_ssize_t mm = p.mm, i
    cdef const blas_t* v = <const blas_t*>p.mats
    cdef const blas_t* gamma = <const blas_t*>p.gamma
    cdef blas_t* t1 = ws
    cdef blas_t* t2 = ws + mm
    cdef char h = c'T' if (blas_t is float or blas_t is double) else c'C'
    if (_gemm(watch, h, c'N', m, m, m, v, m, e, m, 0, t1, m)
            or _gemm(watch, c'N', c'N', m, m, m, t1, m, v, m, 0, t2, m)):
        return True
    for i in range(mm):
        t2[i] = t2[i] * gamma[i]
    return (_gemm(watch, c'N', c'N', m, m, m, v, m, t2, m, 0, t1, m)
            or _gemm(watch, c'N', h, m, m, m, t1, m, v, m, 0, out, m))


cdef void _run(const Plan* p, const blas_t* xs, blas_t* os, Py_ssize_t r,
               char* ws, Watch* watch) noexcept nogil:
    """os[:, t] = J xs[:, t] for the r contiguous columns of length m² of xs and os, until
    `watch` stops."""
    cdef Py_ssize_t t, mm = p.mm, i
    cdef blas_int n2 = <blas_int>mm
    cdef bint stop = False
    if p.method == ZERO:
        for i in range(mm * r):
            os[i] = 0
        return
    if p.method == COPY:
        memcpy(os, xs, mm * r * sizeof(blas_t))
        return
    if p.method == DENSE:
        _gemm(watch, c'N', c'N', n2, <blas_int>r, n2, <const blas_t*>p.mats, n2, xs, n2, 0,
              os, n2)
        return
    for t in range(r):
        if p.method == HORNER:
            stop = _horner(p, xs + t * mm, os + t * mm, <blas_t*>ws, watch)
        elif p.method == BINARY:
            stop = _binary(p, xs + t * mm, os + t * mm, <blas_t*>ws, watch)
        elif p.method == ONESHOT:
            stop = _oneshot(p, xs + t * mm, os + t * mm, <blas_t*>ws, watch)
        elif p.method == STORED:
            stop = _stored(p, xs + t * mm, os + t * mm, <blas_t*>ws, watch)
        else:
            stop = _eig(p, xs + t * mm, os + t * mm, <blas_t*>ws, watch)
        if stop:
            return


cdef void _run_any(int type_num, const Plan* p, const char* x, char* out, Py_ssize_t r,
                   char* ws, Watch* watch) noexcept nogil:
    if type_num == cnp.NPY_FLOAT32:
        _run(p, <const float*>x, <float*>out, r, ws, watch)
    elif type_num == cnp.NPY_FLOAT64:
        _run(p, <const double*>x, <double*>out, r, ws, watch)
    elif type_num == cnp.NPY_COMPLEX64:
        _run(p, <const complex64_t*>x, <complex64_t*>out, r, ws, watch)
    else:
        _run(p, <const complex128_t*>x, <complex128_t*>out, r, ws, watch)


cdef char* _matrix_data(object arr, str name, int type_num, Py_ssize_t min_size) except? NULL:
    """The data pointer of a Fortran-contiguous, aligned, native-byte-order array of
    `type_num` with >= min_size items."""
    cdef cnp.ndarray a
    if arr is None:
        if min_size == 0:
            return NULL
        raise ValueError(f"PowerPlan: {name} is required for this method")
    if type(arr) is not cnp.ndarray:
        raise TypeError(f"PowerPlan: {name} must be a numpy.ndarray")
    a = <cnp.ndarray>arr
    if (cnp.PyArray_TYPE(a) != type_num or not is_blas_array(a)
            or not cnp.PyArray_ISFARRAY_RO(a) or cnp.PyArray_SIZE(a) < min_size):
        raise ValueError(f"PowerPlan: {name} must be a Fortran-contiguous, aligned, "
                         "native-byte-order array of the plan dtype with at least "
                         f"{min_size} elements")
    return cnp.PyArray_BYTES(a)


cdef class PowerPlan:
    """A prepared application of d(Aⁿ) or of the Jacobian of a matrix polynomial.

    Parameters
    ----------
    method : str
        One of "zero", "copy", "horner", "binary", "oneshot", "stored", "eig", "dense".
    m : int
        The order of A; the operator acts on vectors of length m².
    dtype_array : ndarray
        Any array of the plan dtype (only its dtype is used).
    a : ndarray or None
        A, m-by-m Fortran-contiguous (horner, binary, oneshot, stored); oneshot also takes
        it C-contiguous (2-D), read transposed by GEMM instead of copied.
    mats : ndarray or None
        binary and stored: `count` m-by-m matrices back to back in one Fortran-contiguous
        array; eig: V; dense: the m²-by-m² matrix.
    gamma : ndarray or None
        eig: the m-by-m divided differences Γ.
    codes : bytes
        binary, oneshot: one byte per step, 0 for squaring, 1 for multiplication by (A, E).
    count : int
        horner: n >= 2; binary, oneshot, stored: the number of steps.
    alpha : complex
        stored: the scale of the first term (the real part for real dtypes).

    Notes
    -----
    The plan keeps references to its arrays, which must not be modified afterwards. The
    Python layer validates everything; this class checks only what would make the kernel
    read out of bounds.
    """

    cdef Plan plan
    cdef int type_num
    cdef Py_ssize_t itemsize
    cdef Py_ssize_t ws_items
    cdef readonly str method
    cdef readonly Py_ssize_t m
    cdef object _refs

    def __init__(self, str method, Py_ssize_t m, cnp.ndarray dtype_array, a=None,
                 mats=None, gamma=None, bytes codes=b"", Py_ssize_t count=0,
                 double complex alpha=1):
        cdef int code
        cdef int type_num = cnp.PyArray_TYPE(dtype_array)
        cdef Py_ssize_t mm = m * m
        if method not in _METHODS:
            raise ValueError(f"PowerPlan: unknown method {method!r}")
        if not is_blas_array(dtype_array):
            raise TypeError("PowerPlan: the dtype must be float32, float64, complex64 or "
                            "complex128, in native byte order")
        if m <= 0 or mm > BLAS_INT_MAX:
            raise ValueError(f"PowerPlan: m = {m} is out of range")
        code = _METHODS[method]
        self.method = method
        self.m = m
        self.type_num = type_num
        self.itemsize = cnp.PyArray_ITEMSIZE(dtype_array)
        self.plan.method = code
        self.plan.m = <blas_int>m
        self.plan.mm = mm
        self.plan.count = count
        self.plan.alpha = alpha
        self.plan.a = NULL
        self.plan.mats = NULL
        self.plan.gamma = NULL
        self.plan.codes = NULL
        self.plan.a_trans = c'N'
        self.ws_items = 0
        if code == HORNER:
            if count < 2:
                raise ValueError("PowerPlan: horner needs count >= 2")
            self.plan.a = _matrix_data(a, "a", type_num, mm)
            self.ws_items = 4 * mm
        elif code == BINARY or code == STORED:
            if count < 0 or (code == BINARY and (count < 1 or len(codes) != count)):
                raise ValueError("PowerPlan: codes must give one byte per step")
            self.plan.a = _matrix_data(a, "a", type_num, mm)
            self.plan.mats = _matrix_data(mats, "mats", type_num, count * mm)
            self.plan.codes = codes
            self.ws_items = 2 * mm
        elif code == ONESHOT:
            if count < 1 or len(codes) != count:
                raise ValueError("PowerPlan: codes must give one byte per step")
            if (type(a) is cnp.ndarray and cnp.PyArray_NDIM(<cnp.ndarray>a) == 2
                    and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>a)
                    and not cnp.PyArray_ISFARRAY_RO(<cnp.ndarray>a)):
                # Row-major A: its Fortran-ordered transpose, read transposed by GEMM.
                self.plan.a = _matrix_data(a.T, "a", type_num, mm)
                self.plan.a_trans = c'T'
            else:
                self.plan.a = _matrix_data(a, "a", type_num, mm)
            self.plan.codes = codes
            self.ws_items = 4 * mm
        elif code == EIG:
            self.plan.mats = _matrix_data(mats, "mats", type_num, mm)
            self.plan.gamma = _matrix_data(gamma, "gamma", type_num, mm)
            self.ws_items = 2 * mm
        elif code == DENSE:
            if mm * mm > BLAS_INT_MAX:
                raise ValueError(f"PowerPlan: the dense matrix of m = {m} is too large")
            self.plan.mats = _matrix_data(mats, "mats", type_num, mm * mm)
        self._refs = (method, m, dtype_array, a, mats, gamma, codes, count, alpha)

    def __reduce__(self):
        # Rebuilt from its arrays, which pickle may hand back unaligned (out-of-band
        # buffers): _rebuild_plan copies those once.
        return (_rebuild_plan, self._refs)

    cdef int _execute(self, cnp.ndarray x, cnp.ndarray out) except -1:
        cdef double stack_ws[STACK_DOUBLES]
        cdef char* ws = <char*>stack_ws
        cdef char* heap_ws = NULL
        cdef int heap_own = 0
        cdef Py_ssize_t need = self.ws_items * self.itemsize
        cdef Py_ssize_t r = 1 if cnp.PyArray_NDIM(x) == 1 else cnp.PyArray_DIM(x, 1)
        cdef const char* xd = cnp.PyArray_BYTES(x)
        cdef char* od = cnp.PyArray_BYTES(out)
        cdef Watch watch
        if r == 0:
            return 0
        watch_start(&watch, _main_thread)
        with nogil:
            if need > <Py_ssize_t>sizeof(stack_ws):
                ws = heap_ws = workspace_take(need, &heap_own)
            if ws != NULL:
                _run_any(self.type_num, &self.plan, xd, od, r, ws, &watch)
            workspace_give(heap_ws, heap_own)
        if ws == NULL:
            raise MemoryError(f"power_jacobian: cannot allocate a {need}-byte workspace")
        if watch.stopped:
            raise_pending()
        return 0

    cdef bint _accepts(self, cnp.ndarray a) noexcept:
        cdef int nd = cnp.PyArray_NDIM(a)
        if (cnp.PyArray_TYPE(a) != self.type_num or nd < 1 or nd > 2 or not is_blas_array(a)
                or not cnp.PyArray_ISFARRAY_RO(a) or cnp.PyArray_DIM(a, 0) != self.plan.mm):
            return False
        if nd == 2 and cnp.PyArray_DIM(a, 1) > BLAS_INT_MAX // self.plan.mm:
            return False
        return True

    def apply(self, cnp.ndarray x, cnp.ndarray out):
        """Write J x into `out`.

        `x` and `out` are both 1-D of length m², or both 2-D (m², r), Fortran-contiguous,
        aligned, of the plan dtype, not overlapping. Returns `out`.
        """
        if not self._accepts(x) or not self._accepts(out) or not cnp.PyArray_ISWRITEABLE(out):
            raise ValueError("PowerPlan.apply: x and out must be Fortran-contiguous arrays "
                             f"of the plan dtype with {self.plan.mm} rows")
        if (cnp.PyArray_NDIM(x) != cnp.PyArray_NDIM(out)
                or cnp.PyArray_SIZE(x) != cnp.PyArray_SIZE(out)):
            raise ValueError("PowerPlan.apply: x and out must have the same shape")
        self._execute(x, out)
        return out

    def matvec_fast(self, object x):
        """J x for a 1-D contiguous aligned x of the plan dtype and length m², else None."""
        cdef cnp.ndarray xa, out
        cdef cnp.npy_intp shape[1]
        if type(x) is not cnp.ndarray:
            return None
        xa = <cnp.ndarray>x
        if cnp.PyArray_NDIM(xa) != 1 or not self._accepts(xa):
            return None
        shape[0] = self.plan.mm
        out = cnp.PyArray_EMPTY(1, shape, self.type_num, 0)
        self._execute(xa, out)
        return out


def _rebuild_plan(method, m, dtype_array, a, mats, gamma, codes, count, alpha):
    """A PowerPlan from pickled arguments, its arrays made Fortran-contiguous and aligned
    (copied only where pickle returned them otherwise)."""
    def aligned(arr):
        return None if arr is None else np.require(arr, requirements=["F", "A"])
    return PowerPlan(method, m, np.empty(0, dtype=dtype_array.dtype), aligned(a),
                     aligned(mats), aligned(gamma), codes, count, alpha)
