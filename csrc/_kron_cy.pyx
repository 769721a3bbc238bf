# Kronecker-product application: y = Σ_t alpha_t (F1 ⊗ … ⊗ Fk)_t x without forming products.
#
# The entry points of the Kronecker kernel: operands checked and described for BLAS
# (Factor, Operand; see _kron_types.pxd for the tensor view), then planned
# (_kron_plan_cy.plan_product) and run (_kron_exec_cy.execute_threads) without the GIL,
# on the threads the executor's policy gives the product (exec_threads: one for small
# products, no pool call). Intermediate tensors live in a reused per-thread workspace
# (sized for those threads); inputs are never written.
#
# The Python layer (matkron/_kron.py) does coercion, dtype policy and shape checks; this
# module trusts its inputs and never calls back into it.

cimport numpy as cnp
from libc.stdlib cimport free, malloc

from _blas cimport BLAS_INT_MAX, blas_matrix, is_blas_array, max_size as _max
from _blas_int cimport blas_int
from _interrupt cimport Watch, raise_pending, watch_start
from _kron_types cimport (
    MAX_FACTORS,
    NORMAL,
    ROTATE_BACK,
    ROTATE_FRONT,
    STACK_WORKSPACE_BYTES,
    Factor,
    Operand,
    Plan,
    matkron_step_kernel,
    timer_start,
    timer_stop,
)
from matkron._kron_exec_cy cimport exec_threads, exec_workspace, execute_threads, force_threads
from matkron._kron_plan_cy cimport constrain, inspect_plan, kernel_row, plan_product, plan_timed
from matkron._workspace_cy cimport workspace_give, workspace_take

import threading

import numpy as np


cnp.import_array()

cdef unsigned long _main_thread = threading.main_thread().ident


# -- loading operands --------------------------------------------------------------------

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
    cdef Py_ssize_t p, q, s0, s1, ld
    if type(f) is int:
        factor.data = NULL
        factor.p = factor.q = <Py_ssize_t>f
        return factor.p >= 0
    if type(f) is not cnp.ndarray:
        return False
    a = <cnp.ndarray>f
    if (cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_TYPE(a) != type_num
            or not is_blas_array(a)):
        return False
    p = factor.p = cnp.PyArray_DIM(a, 0)
    q = factor.q = cnp.PyArray_DIM(a, 1)
    factor.data = cnp.PyArray_BYTES(a)
    s0 = cnp.PyArray_STRIDE(a, 0)
    s1 = cnp.PyArray_STRIDE(a, 1)
    if not blas_matrix(p, q, s0, s1, itemsize, &factor.trans, &ld):
        return False
    factor.ld = <blas_int>ld
    return True


# -- entry points --------------------------------------------------------------------------

cdef class _Terms:
    """C descriptions of the factors of one or more Kronecker products (heap storage)."""
    cdef Factor* factors
    cdef int* k
    cdef double complex* alpha
    cdef Plan* plans
    cdef int* threads   # each term's threads (exec_threads)
    cdef int n_terms
    # The factor arrays, referenced for as long as their pointers are in use (a caller's
    # list may change while the kernel runs without the GIL).
    cdef tuple held

    def __cinit__(self, tuple terms, int type_num, Py_ssize_t itemsize):
        cdef int total_k = 0, t, i, fi = 0
        self.held = tuple([tuple(term[1]) for term in terms])
        self.n_terms = len(terms)
        for mats in self.held:
            total_k += len(mats)
        self.factors = <Factor*>malloc(_max(total_k, 1) * sizeof(Factor))
        self.k = <int*>malloc(_max(self.n_terms, 1) * sizeof(int))
        self.alpha = <double complex*>malloc(_max(self.n_terms, 1) * sizeof(double complex))
        self.plans = <Plan*>malloc(_max(self.n_terms, 1) * sizeof(Plan))
        self.threads = <int*>malloc(_max(self.n_terms, 1) * sizeof(int))
        if (self.factors == NULL or self.k == NULL or self.alpha == NULL
                or self.plans == NULL or self.threads == NULL):
            raise MemoryError()
        for t in range(self.n_terms):
            alpha = terms[t][0]
            mats = self.held[t]
            self.alpha[t] = alpha
            self.k[t] = len(mats)
            if self.k[t] > MAX_FACTORS:
                raise ValueError(f"kron_apply: term {t} has {self.k[t]} factors; at most "
                                 f"{MAX_FACTORS} are supported")
            for i in range(self.k[t]):
                if not _load_factor(mats[i], &self.factors[fi + i], type_num, itemsize):
                    raise ValueError(f"kron_apply: factor {i} of term {t} is not a "
                                     "BLAS-readable array of the dtype of x")
            fi += self.k[t]

    def __dealloc__(self):
        free(self.factors)
        free(self.k)
        free(self.alpha)
        free(self.plans)
        free(self.threads)

    cdef int check_shapes(self, const Operand* x, const Operand* out) except -1:
        """Raise unless every term maps x's length to out's (the kernel trusts them)."""
        cdef int t, i, fi = 0
        cdef Py_ssize_t n_in, n_out
        for t in range(self.n_terms):
            n_in = n_out = 1
            for i in range(self.k[t]):
                n_in *= self.factors[fi + i].q
                n_out *= self.factors[fi + i].p
            if n_in != x.n or n_out != out.n or x.m != out.m:
                raise ValueError(f"kron_apply: term {t} maps length {n_in} to {n_out}; "
                                 f"x has {x.n} rows and out {out.n}")
            fi += self.k[t]
        return 0

    cdef Py_ssize_t plan(self, const Operand* x, const Operand* out, int type_num,
                         Py_ssize_t itemsize) noexcept:
        """Plan every term and choose its threads; return the workspace bytes the largest
        one needs."""
        cdef int t, fi = 0
        cdef Py_ssize_t need = 0
        for t in range(self.n_terms):
            plan_product(self.factors + fi, self.k[t], x, out, type_num, &self.plans[t])
            if self.plans[t].largest > BLAS_INT_MAX:
                return -1
            self.threads[t] = exec_threads(self.factors + fi, self.k[t], &self.plans[t],
                                           x.m, type_num)
            need = _max(need, exec_workspace(&self.plans[t], self.threads[t], itemsize))
            fi += self.k[t]
        return need

    cdef void run(self, int type_num, const Operand* x, const Operand* out, char* ws,
                  bint accumulate, Watch* watch) noexcept nogil:
        """out (+)= Σ_t alpha_t kron(term t) @ x, accumulating after the first term, until
        `watch` stops."""
        cdef int t, fi = 0
        for t in range(self.n_terms):
            timer_start(&self.plans[t])
            execute_threads(type_num, self.factors + fi, self.k[t], &self.plans[t], x, out,
                            ws, self.alpha[t], accumulate or t > 0, watch, self.threads[t])
            timer_stop(&self.plans[t])
            if watch.stopped:
                return
            fi += self.k[t]


def kron_apply(tuple terms, cnp.ndarray x, cnp.ndarray out, bint accumulate=False):
    """Write Σ_t alpha_t (F1 ⊗ … ⊗ Fk)_t x into `out`, or add it when `accumulate`.

    Parameters
    ----------
    terms : tuple of (complex, tuple)
        One (alpha, mats) pair per Kronecker product. `mats` are its factors in Kronecker
        order: aligned 2-D arrays of the dtype of `x` with a unit stride along one axis and
        a stride of at least the other dimension along the other, or a Python int n for
        the n-by-n identity (applied without a GEMM); at most 32 factors.
        Real dtypes use alpha.real.
    x, out : ndarray
        Both 1-D (lengths N and N') or both 2-D (shapes (N, m) and (N', m)), of one of the
        four BLAS dtypes, aligned, with N and N' the products of every term's factor column
        and row counts, N, N', m > 0 and N m, N' m < 2**31; `out` does not overlap `x` or
        a factor. Any strides.

    Returns
    -------
    ndarray
        `out`.
    """
    cdef int type_num = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x), need
    cdef char stack_ws[STACK_WORKSPACE_BYTES]
    cdef char* ws = stack_ws
    cdef Operand xo, oo
    cdef _Terms c_terms
    cdef char* heap_ws = NULL
    cdef int heap_own = 0
    cdef Watch watch
    cdef int t
    if not is_blas_array(x) or not is_blas_array(out) or cnp.PyArray_TYPE(out) != type_num:
        raise TypeError("kron_apply: x and out must be aligned, native-order arrays of one "
                        "BLAS dtype")
    if (cnp.PyArray_NDIM(x) not in (1, 2) or cnp.PyArray_NDIM(out) != cnp.PyArray_NDIM(x)
            or (cnp.PyArray_NDIM(x) == 2
                and cnp.PyArray_DIM(x, 1) != cnp.PyArray_DIM(out, 1))):
        raise ValueError("kron_apply: x and out must both be 1-D, or 2-D with equal columns")
    if not terms:
        if not accumulate:
            out.fill(0)
        return out
    c_terms = _Terms(terms, type_num, itemsize)
    _load_operand(x, &xo)
    _load_operand(out, &oo)
    c_terms.check_shapes(&xo, &oo)
    need = c_terms.plan(&xo, &oo, type_num, itemsize)
    if need < 0:
        raise ValueError("an intermediate tensor of the product has more elements than the "
                         "BLAS integer type can index")
    watch_start(&watch, _main_thread)
    with nogil:
        if need > STACK_WORKSPACE_BYTES:
            ws = heap_ws = workspace_take(need, &heap_own)
        if ws != NULL:
            c_terms.run(type_num, &xo, &oo, ws, accumulate, &watch)
        workspace_give(heap_ws, heap_own)
    if ws == NULL:
        raise MemoryError(f"kron_apply: cannot allocate a {need}-byte workspace")
    if watch.stopped:
        raise_pending()
    for t in range(c_terms.n_terms):
        plan_timed(&c_terms.plans[t])
    return out


def kron_plan(tuple mats, cnp.ndarray x):
    """The order and step variants the kernel uses for kron(mats) @ x, for inspection.

    Returns
    -------
    order : tuple of int
        Factor indices in the order they are applied.
    variants : tuple of str
        "normal", "rotate-front" or "rotate-back" for each step.
    c_ordered : bool
        Whether a result the kernel allocates is C-ordered.
    by_column : bool
        Whether the columns of a 2-D x are applied one at a time (by this plan).
    """
    cdef Factor factors[MAX_FACTORS]
    cdef Plan plan
    cdef Operand xo
    cdef int i, k = len(mats)
    names = ("normal", "rotate-front", "rotate-back")
    if k > MAX_FACTORS:
        raise ValueError(f"kron_plan: at most {MAX_FACTORS} factors are supported")
    for i in range(k):
        if not _load_factor(mats[i], &factors[i], cnp.PyArray_TYPE(x), cnp.PyArray_ITEMSIZE(x)):
            raise ValueError(f"kron_plan: factor {i} is not a BLAS-readable array of the "
                             "dtype of x")
    _load_operand(x, &xo)
    inspect_plan(factors, k, &xo, NULL, cnp.PyArray_TYPE(x), &plan)
    return (tuple(plan.order[i] for i in range(plan.nsteps)),
            tuple(names[plan.variant[i]] for i in range(plan.nsteps)),
            bool(plan.out_c_kind), bool(plan.by_column))


cdef void _bounds(cnp.ndarray a, char** lo, char** hi) noexcept:
    """The byte range [lo, hi) that a non-empty array's elements occupy."""
    cdef char* start = cnp.PyArray_BYTES(a)
    cdef char* end = start + cnp.PyArray_ITEMSIZE(a)
    cdef int d
    cdef Py_ssize_t extent
    for d in range(cnp.PyArray_NDIM(a)):
        extent = (cnp.PyArray_DIM(a, d) - 1) * cnp.PyArray_STRIDE(a, d)
        if extent < 0:
            start += extent
        else:
            end += extent
    lo[0] = start
    hi[0] = end


cdef bint _apart(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether two non-empty arrays' memory ranges are disjoint (a sufficient test)."""
    cdef char* a_lo
    cdef char* a_hi
    cdef char* b_lo
    cdef char* b_hi
    _bounds(a, &a_lo, &a_hi)
    _bounds(b, &b_lo, &b_hi)
    return a_hi <= b_lo or b_hi <= a_lo


def kron_matvec_fast(object mats, object x, bint ints_are_identities=False, object out=None):
    """kron(mats) @ x into `out` or a new array, or None where the caller must validate.

    See _matvec_fast.
    """
    return _matvec_fast(mats, x, ints_are_identities, out)


cdef object _matvec_fast(object mats, object x, bint ints_are_identities, object out):
    """kron(mats) @ x into `out` or a new array, or None where the caller must validate.

    Runs without Python-level overhead when `mats` is a list or tuple of at most 32
    aligned, BLAS-readable arrays of one BLAS dtype, `x` is an aligned, non-empty 1-D or
    2-D array of that dtype and matching length, with N m and N' m below 2**31, and `out`
    is None or a writeable, aligned array of the result's exact shape and dtype whose
    memory range is apart from those of x and the factors. Returns None, having done
    nothing, for anything else. With `ints_are_identities`, a Python int n in `mats` stands
    for the n-by-n identity. A new result is 1-D for a 1-D x; for a 2-D x it is C- or
    Fortran-ordered, whichever the kernel writes with the fewest BLAS calls.
    """
    cdef Factor factors[MAX_FACTORS]
    cdef char stack_ws[STACK_WORKSPACE_BYTES]
    cdef Py_ssize_t n_in = 1, n_out = 1, itemsize, need
    cdef int k, i, type_num, ndim, threads
    cdef char* ws = stack_ws
    cdef Operand xo, oo
    cdef Plan plan
    cdef cnp.ndarray xa, result
    cdef char* heap_ws = NULL
    cdef int heap_own = 0
    cdef cnp.npy_intp shape[2]
    cdef Watch watch
    if type(x) is not cnp.ndarray or (type(mats) is not tuple and type(mats) is not list):
        return None
    # Our own references: the pointers taken below must outlive the GEMMs, which run
    # without the GIL while another thread may replace the elements of the caller's list.
    mats = tuple(mats)
    xa = <cnp.ndarray>x
    type_num = cnp.PyArray_TYPE(xa)
    ndim = cnp.PyArray_NDIM(xa)
    k = len(mats)
    if (k == 0 or k > MAX_FACTORS or not is_blas_array(xa) or ndim < 1 or ndim > 2
            or cnp.PyArray_SIZE(xa) == 0):
        return None
    itemsize = cnp.PyArray_ITEMSIZE(xa)
    for i in range(k):
        f = mats[i]
        if type(f) is int and not ints_are_identities:
            return None
        if not _load_factor(f, &factors[i], type_num, itemsize):
            return None
        if factors[i].p <= 0 or factors[i].q <= 0:
            return None
        n_in *= factors[i].q
        n_out *= factors[i].p
        if n_in > BLAS_INT_MAX or n_out > BLAS_INT_MAX:
            return None
    if cnp.PyArray_DIM(xa, 0) != n_in:
        return None
    _load_operand(xa, &xo)
    if xo.m * n_in > BLAS_INT_MAX or xo.m * n_out > BLAS_INT_MAX:
        return None
    if out is not None:
        if (type(out) is not cnp.ndarray or cnp.PyArray_TYPE(<cnp.ndarray>out) != type_num
                or cnp.PyArray_NDIM(<cnp.ndarray>out) != ndim
                or cnp.PyArray_DIM(<cnp.ndarray>out, 0) != n_out
                or (ndim == 2 and cnp.PyArray_DIM(<cnp.ndarray>out, 1) != xo.m)
                or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out)
                or not is_blas_array(<cnp.ndarray>out)
                or not _apart(<cnp.ndarray>out, xa)):
            return None
        for i in range(k):
            if factors[i].data != NULL and not _apart(<cnp.ndarray>out, <cnp.ndarray>mats[i]):
                return None
        result = <cnp.ndarray>out
        _load_operand(result, &oo)
        plan_product(factors, k, &xo, &oo, type_num, &plan)
    else:
        plan_product(factors, k, &xo, NULL, type_num, &plan)
    if plan.largest > BLAS_INT_MAX:
        return None
    if out is None:
        shape[0] = n_out
        shape[1] = xo.m
        result = cnp.PyArray_EMPTY(ndim, shape, type_num, ndim == 2 and not plan.out_c_kind)
        _load_operand(result, &oo)
    threads = exec_threads(factors, k, &plan, xo.m, type_num)
    need = exec_workspace(&plan, threads, itemsize)
    watch_start(&watch, _main_thread)
    with nogil:
        if need > STACK_WORKSPACE_BYTES:
            ws = heap_ws = workspace_take(need, &heap_own)
        if ws != NULL:
            timer_start(&plan)
            execute_threads(type_num, factors, k, &plan, &xo, &oo, ws, 1, False, &watch,
                            threads)
            timer_stop(&plan)
        workspace_give(heap_ws, heap_own)
    if ws == NULL:
        raise MemoryError(f"kron_matvec: cannot allocate a {need}-byte workspace")
    if watch.stopped:
        raise_pending()
    plan_timed(&plan)
    return result


# The kernel's limit on the factors of one Kronecker product, for the Python layer.
MAX_KRON_FACTORS = MAX_FACTORS


def _set_planner(variants=None, own_kernel=None):
    """Constrain the planner, for tests and measurements (not thread-safe; not public).

    `variants` is a sequence of "normal", "rotate-front", "rotate-back" or None (any), one
    per step, or None for no constraint; products no plan with those variants can compute
    are planned freely. `own_kernel` False makes every step call BLAS, True lets the
    planner use the registered kernels available here (plans are cached apart for the
    two), and a registry row's name (see kernel_registry) forces that row for its dtype:
    it runs every step it admits, whatever the cost model estimates (reference rows run
    only so). Returns whether a registered kernel other than a reference one is in use.
    Cached plans are dropped when `variants` or the forced row change (not for
    `own_kernel` True or False alone: the kernel is part of a plan's key).
    """
    names = {"normal": NORMAL, "rotate-front": ROTATE_FRONT, "rotate-back": ROTATE_BACK,
             None: -1}
    cdef int forced[MAX_FACTORS]
    cdef int i, n = 0, own = -1, row = -2
    if variants is not None:
        if len(variants) > MAX_FACTORS:
            raise ValueError(f"_set_planner: at most {MAX_FACTORS} steps")
        for i, v in enumerate(variants):
            forced[i] = names[v]
        n = len(variants)
    if isinstance(own_kernel, str):
        rows = [r["name"] for r in kernel_registry()]
        if own_kernel not in rows:
            raise ValueError(f"_set_planner: no registry row {own_kernel!r}; rows: {rows}")
        own, row = 1, rows.index(own_kernel)
    elif own_kernel is not None:
        own, row = bool(own_kernel), -1
    return constrain(forced, n, own, row)


def _force_threads(int n):
    """Test hook: run every Kronecker product on `n` of matkron's threads, however small
    (the splits are then exercised on tiny shapes); 0 restores the policy (threads_for of
    the product's flops and matkron.get_num_threads()). Not thread-safe; not public."""
    if n < 0:
        raise ValueError(f"_force_threads: n must be >= 0; got {n}")
    force_threads(n)


def kernel_registry():
    """The rows of the own step kernels' registry (csrc/kernels/registry.c), available
    here or not: a list of dicts with name, isa, dtype, available, reference (a row the
    planner uses only when forced), lanes, pack_round and max_pack (a p-by-q factor is
    taken when ceil(p / pack_round) * pack_round * q <= max_pack)."""
    cdef const matkron_step_kernel* row
    cdef bint available
    cdef int i = 0
    dtypes = ("float32", "float64", "complex64", "complex128")
    rows = []
    while True:
        row = kernel_row(i, &available)
        if row == NULL:
            return rows
        i += 1
        rows.append({
            "name": row.name.decode(), "isa": row.isa.decode(), "dtype": dtypes[row.dtype],
            "available": bool(available), "reference": bool(row.reference),
            "lanes": row.lanes,
            "pack_round": row.pack_round, "max_pack": row.max_pack,
        })


def _run_step_kernel(str name, cnp.ndarray f, cnp.ndarray x, Py_ssize_t n, Py_ssize_t x_sk,
                     Py_ssize_t x_sr, cnp.ndarray y, Py_ssize_t y_si, Py_ssize_t y_sr,
                     alpha, beta, Py_ssize_t pack_size=-1):
    """Test hook: one step of the registry row `name` (the contract of
    csrc/kernels/kernels.h), Y = alpha F X + beta Y with F the 2-D array f, X[k, r] =
    x[k * x_sk + r * x_sr] and Y[i, r] = y[i * y_si + r * y_sr] for r < n (elements of the
    contiguous 1-D x and y). F is packed by the row into a pack of the row's pack_size for
    a tensor of x.size elements, which the step is told has that many elements or
    `pack_size`. Returns the step's status: 0, or -1 when the row declines (y not
    written). Not public."""
    cdef const matkron_step_kernel* row = NULL
    cdef const matkron_step_kernel* r
    cdef bint available = False, found
    cdef int i = 0
    cdef cnp.ndarray pack, a, b
    cdef Py_ssize_t p, q, itemsize, f_si, f_sk, size
    while True:
        r = kernel_row(i, &found)
        if r == NULL:
            break
        if r.name.decode() == name:
            row, available = r, found
        i += 1
    if row == NULL or not available:
        raise ValueError(f"_run_step_kernel: no registry row {name!r} runs here")
    dtype = np.dtype(("float32", "float64", "complex64", "complex128")[row.dtype])
    if (f.ndim != 2 or x.ndim != 1 or y.ndim != 1 or f.dtype != dtype or x.dtype != dtype
            or y.dtype != dtype or not x.flags.c_contiguous or not y.flags.c_contiguous
            or not y.flags.writeable):
        raise ValueError(f"_run_step_kernel: f 2-D, x and y contiguous 1-D, all {dtype}")
    p, q, itemsize = f.shape[0], f.shape[1], dtype.itemsize
    f_si, f_sk = f.strides[0] // itemsize, f.strides[1] // itemsize
    if (min(n, x_sk, x_sr, y_si, y_sr, f_si, f_sk) < 0
            or f.strides[0] % itemsize or f.strides[1] % itemsize
            or (n > 0 and q > 0 and (q - 1) * x_sk + (n - 1) * x_sr >= x.size)
            or (n > 0 and p > 0 and (p - 1) * y_si + (n - 1) * y_sr >= y.size)):
        raise ValueError("_run_step_kernel: strides outside x, y or f")
    size = row.pack_size(p, q, x.size)
    if pack_size < 0:
        pack_size = size
    pack = np.empty(max(pack_size, size, 1), dtype)
    a = np.array(alpha, dtype)
    b = np.array(beta, dtype)
    if p > 0 and q > 0:
        row.pack(p, q, cnp.PyArray_DATA(f), f_si, f_sk, cnp.PyArray_DATA(pack))
    with nogil:
        i = row.step(p, q, n, cnp.PyArray_DATA(a), cnp.PyArray_DATA(x), x_sk, x_sr,
                     cnp.PyArray_DATA(b), cnp.PyArray_DATA(y), y_si, y_sr,
                     cnp.PyArray_DATA(pack), pack_size)
    return i


def _plan_kernels(tuple mats, cnp.ndarray x):
    """For inspection: the kernel of each step of kron(mats) @ x (into a new result), the
    registry row's name or "blas", in the order of kron_plan."""
    cdef Factor factors[MAX_FACTORS]
    cdef Plan plan
    cdef Operand xo
    cdef int i, k = len(mats)
    if k > MAX_FACTORS:
        raise ValueError(f"_plan_kernels: at most {MAX_FACTORS} factors are supported")
    for i in range(k):
        if not _load_factor(mats[i], &factors[i], cnp.PyArray_TYPE(x), cnp.PyArray_ITEMSIZE(x)):
            raise ValueError(f"_plan_kernels: factor {i} is not a BLAS-readable array of the "
                             "dtype of x")
    _load_operand(x, &xo)
    inspect_plan(factors, k, &xo, NULL, cnp.PyArray_TYPE(x), &plan)
    return tuple(plan.kernel.name.decode() if plan.own[i] else "blas"
                 for i in range(plan.nsteps))


def is_blas_matrix(cnp.ndarray a):
    """Whether BLAS reads the 2-D array `a` as it is: one of the four BLAS dtypes, native
    byte order, aligned, and strides of the one stride rule (_blas.pxd, blas_matrix)."""
    cdef char trans
    cdef Py_ssize_t ld
    return (cnp.PyArray_NDIM(a) == 2 and is_blas_array(a)
            and blas_matrix(cnp.PyArray_DIM(a, 0), cnp.PyArray_DIM(a, 1),
                            cnp.PyArray_STRIDE(a, 0), cnp.PyArray_STRIDE(a, 1),
                            cnp.PyArray_ITEMSIZE(a), &trans, &ld))
