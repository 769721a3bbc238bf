# Kronecker-product application: y = (F1 ⊗ … ⊗ Fk) x without forming the product.
#
# With vec = column stacking, a vector x of length q1*…*qk is the Fortran-ordered tensor
# X[qk, …, q1] (the last factor varies fastest), and applying Fi is a product along the mode
# of length qi. The kernel keeps the tensor in memory order, so each factor costs one GEMM
# when its mode is the first one and one GEMM per slice of the following modes otherwise,
# with operands and results read and written through their strides:
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

from _blas cimport blas_t, complex64_t, complex128_t, gemm_scaled
from _blas_int cimport blas_int

from matkron._workspace import workspace as _workspace

cnp.import_array()


cdef struct Factor:
    # A factor as BLAS sees it: the column-major matrix at `data` is F ('N') or F.T ('T');
    # data is NULL for the identity.
    char* data
    char trans
    blas_int ld
    Py_ssize_t p
    Py_ssize_t q


cdef struct Operand:
    # x or out as the kernel sees it: n rows and m columns (m = 1 for 1-D), byte strides.
    char* data
    Py_ssize_t n
    Py_ssize_t m
    Py_ssize_t s0
    Py_ssize_t s1


cdef struct Layout:
    # How one product runs: the memory-order kind of the tensors, whether x and out are
    # used in place, and the workspace it needs (two buffers of `largest` elements at most).
    bint c_kind
    bint x_direct
    bint out_direct
    Py_ssize_t largest
    Py_ssize_t need


cdef inline Py_ssize_t _max(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


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


cdef void _plan_layout(const Factor* factors, const Py_ssize_t* order, int nsteps,
                       const Operand* x, const Operand* out, Py_ssize_t itemsize,
                       Layout* layout) noexcept nogil:
    """Choose the memory-order kind and size the workspace for one product.

    Kind "F" keeps the right-hand-side mode last (its stride may be padded), kind "C" keeps
    it first (contiguous only). Any other x is copied once into the workspace, any other
    out is written through a workspace buffer. Every tensor of the sequence
    x, T1, …, out that is not x or out itself lives in one of two buffers, taken in turn.
    """
    cdef Py_ssize_t m = x.m, size, largest
    cdef int resident, i
    cdef bint c_kind = False, x_direct, out_direct
    x_direct = (x.s0 == itemsize and x.s1 >= x.n * itemsize and x.s1 % itemsize == 0)
    if not x_direct and m > 1 and x.s1 == itemsize and x.s0 == m * itemsize:
        x_direct = c_kind = True
    if c_kind:
        out_direct = out.s1 == itemsize and out.s0 == m * itemsize
    else:
        out_direct = (out.s0 == itemsize and out.s1 >= out.n * itemsize
                      and out.s1 % itemsize == 0)
        if not x_direct and m > 1 and out.s1 == itemsize and out.s0 == m * itemsize:
            # x is copied anyway: copy it into the layout that `out` takes directly.
            c_kind = out_direct = True
    size = x.n * m
    largest = 0 if x_direct else size
    resident = 0 if x_direct else 1
    for i in range(nsteps):
        size = size // factors[order[i]].q * factors[order[i]].p
        if i < nsteps - 1 or not out_direct:
            largest = _max(largest, size)
            resident += 1
    if nsteps == 0:
        largest = resident = 0
    layout.c_kind = c_kind
    layout.x_direct = x_direct
    layout.out_direct = out_direct
    layout.largest = largest
    layout.need = (resident if resident < 2 else 2) * largest * itemsize


cdef void _scale_copy(const char* src, Py_ssize_t ss0, Py_ssize_t ss1,
                      char* dst, Py_ssize_t ds0, Py_ssize_t ds1,
                      Py_ssize_t n0, Py_ssize_t n1, blas_t alpha,
                      bint accumulate) noexcept nogil:
    """dst[i, j] = alpha * src[i, j] (+ dst[i, j] when accumulating); byte strides."""
    cdef Py_ssize_t i, j
    cdef const char* s
    cdef char* d
    for j in range(n1):
        s = src + j * ss1
        d = dst + j * ds1
        if accumulate:
            for i in range(n0):
                (<blas_t*>(d + i * ds0))[0] += alpha * (<const blas_t*>(s + i * ss0))[0]
        elif alpha == 1:
            for i in range(n0):
                (<blas_t*>(d + i * ds0))[0] = (<const blas_t*>(s + i * ss0))[0]
        else:
            for i in range(n0):
                (<blas_t*>(d + i * ds0))[0] = alpha * (<const blas_t*>(s + i * ss0))[0]


cdef void _apply_mode(const Factor* f, const blas_t* x, const Py_ssize_t* xstr,
                      blas_t* y, const Py_ssize_t* ystr, const Py_ssize_t* dims,
                      int nmodes, int j, blas_t alpha, blas_t beta) noexcept nogil:
    """Y = alpha X ×_j F + beta Y for tensors whose modes 0..j-1 are contiguous from unit
    stride.

    `dims` are the input dimensions (dims[j] = q; the output has p there). Strides are in
    elements. The modes after the merged GEMM dimension are walked by index arithmetic.
    """
    cdef blas_int p = <blas_int>f.p, q = <blas_int>f.q
    cdef char flipped = c'T' if f.trans == c'N' else c'N'
    cdef Py_ssize_t L = 1, cols = 1, n_outer = 1, r, rem, c, off_x, off_y, ldx, ldy
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
            gemm_scaled(f.trans, c'N', p, <blas_int>cols, q, alpha, <blas_t*>f.data, f.ld,
                        x + off_x, <blas_int>_max(ldx, 1), beta, y + off_y,
                        <blas_int>_max(ldy, 1))
        else:
            gemm_scaled(c'N', flipped, <blas_int>L, p, q, alpha, x + off_x, <blas_int>ldx,
                        <blas_t*>f.data, f.ld, beta, y + off_y, <blas_int>ldy)


cdef void _contiguous_strides(const Py_ssize_t* dims, int nmodes,
                              Py_ssize_t* strides) noexcept nogil:
    cdef int u
    cdef Py_ssize_t s = 1
    for u in range(nmodes):
        strides[u] = s
        s *= dims[u]


cdef void _execute(const Factor* factors, int k, const Py_ssize_t* order, int nsteps,
                   const Operand* x, const Operand* out, const Layout* layout, char* ws,
                   blas_t alpha, bint accumulate, Py_ssize_t* ints) noexcept nogil:
    """out = alpha kron(factors) @ x (+ out when accumulating), as planned by `layout`.

    `ws` holds layout.need bytes; `ints` has room for 3 * (k + 1) entries. Sizes are
    non-zero.
    """
    cdef Py_ssize_t itemsize = sizeof(blas_t), m = x.m
    cdef Py_ssize_t* dims = ints
    cdef Py_ssize_t* xstr = ints + (k + 1)
    cdef Py_ssize_t* ystr = ints + 2 * (k + 1)
    cdef bint c_kind = layout.c_kind, out_direct = layout.out_direct
    cdef int nmodes = k + 1, t, i, j, u, rhs = 0 if c_kind else k
    cdef const blas_t* src = <const blas_t*>x.data
    cdef blas_t* dst = NULL
    cdef blas_t* spare = <blas_t*>ws
    cdef blas_t* other = <blas_t*>ws + layout.largest
    cdef blas_t* swap
    cdef blas_t one = 1, zero = 0
    cdef blas_t beta = 1 if accumulate and out_direct else 0

    if nsteps == 0:
        _scale_copy(x.data, x.s0, x.s1, out.data, out.s0, out.s1, x.n, m, alpha, accumulate)
        return
    for i in range(k):
        dims[k - i if c_kind else k - 1 - i] = factors[i].q
    dims[rhs] = m
    _contiguous_strides(dims, nmodes, xstr)
    if layout.x_direct:
        if not c_kind:
            xstr[rhs] = x.s1 // itemsize
    else:
        if c_kind:
            _scale_copy(x.data, x.s0, x.s1, <char*>spare, m * itemsize, itemsize, x.n, m,
                        one, False)
        else:
            _scale_copy(x.data, x.s0, x.s1, <char*>spare, itemsize, x.n * itemsize, x.n, m,
                        one, False)
        src = spare
        spare = other
        other = <blas_t*>ws

    for t in range(nsteps):
        i = <int>order[t]
        j = k - i if c_kind else k - 1 - i
        dims[j] = factors[i].p
        _contiguous_strides(dims, nmodes, ystr)
        dims[j] = factors[i].q
        if t == nsteps - 1 and out_direct:
            dst = <blas_t*>out.data
            if not c_kind:
                ystr[rhs] = out.s1 // itemsize
        else:
            dst = spare
            swap = spare
            spare = other
            other = swap
        if t < nsteps - 1:
            _apply_mode(&factors[i], src, xstr, dst, ystr, dims, nmodes, j, one, zero)
        else:
            _apply_mode(&factors[i], src, xstr, dst, ystr, dims, nmodes, j, alpha, beta)
        dims[j] = factors[i].p
        for u in range(nmodes):
            xstr[u] = ystr[u]
        src = dst

    if not out_direct:
        if c_kind:
            _scale_copy(<char*>dst, m * itemsize, itemsize, out.data, out.s0, out.s1, out.n,
                        m, one, accumulate)
        else:
            _scale_copy(<char*>dst, itemsize, out.n * itemsize, out.data, out.s0, out.s1,
                        out.n, m, one, accumulate)


cdef void _execute_any(int type_num, const Factor* factors, int k, const Py_ssize_t* order,
                       int nsteps, const Operand* x, const Operand* out,
                       const Layout* layout, char* ws, double complex alpha,
                       bint accumulate, Py_ssize_t* ints) noexcept nogil:
    """_execute for the dtype `type_num` (alpha's imaginary part is dropped for reals)."""
    if type_num == cnp.NPY_FLOAT32:
        _execute[float](factors, k, order, nsteps, x, out, layout, ws, <float>alpha.real,
                        accumulate, ints)
    elif type_num == cnp.NPY_FLOAT64:
        _execute[double](factors, k, order, nsteps, x, out, layout, ws, alpha.real,
                         accumulate, ints)
    elif type_num == cnp.NPY_COMPLEX64:
        _execute[complex64_t](factors, k, order, nsteps, x, out, layout, ws,
                              <complex64_t>alpha, accumulate, ints)
    else:
        _execute[complex128_t](factors, k, order, nsteps, x, out, layout, ws, alpha,
                               accumulate, ints)


cdef class _Terms:
    """C descriptions of the factors of one or more Kronecker products (heap storage)."""
    cdef Factor* factors
    cdef Py_ssize_t* steps
    cdef Py_ssize_t* ints
    cdef int* k
    cdef int* nsteps
    cdef double complex* alpha
    cdef Layout* layouts
    cdef int n_terms
    cdef int max_k

    def __cinit__(self, tuple terms, int type_num, Py_ssize_t itemsize):
        cdef int total_k = 0, total_steps = 0, t, i, fi = 0, si = 0
        self.n_terms = len(terms)
        self.max_k = 0
        for term in terms:
            total_k += len(term[1])
            total_steps += len(term[2])
            self.max_k = max(self.max_k, len(term[1]))
        self.factors = <Factor*>malloc(_max(total_k, 1) * sizeof(Factor))
        self.steps = <Py_ssize_t*>malloc(_max(total_steps, 1) * sizeof(Py_ssize_t))
        self.ints = <Py_ssize_t*>malloc(3 * (self.max_k + 1) * sizeof(Py_ssize_t))
        self.k = <int*>malloc(2 * _max(self.n_terms, 1) * sizeof(int))
        self.nsteps = self.k + self.n_terms
        self.alpha = <double complex*>malloc(_max(self.n_terms, 1) * sizeof(double complex))
        self.layouts = <Layout*>malloc(_max(self.n_terms, 1) * sizeof(Layout))
        if (self.factors == NULL or self.steps == NULL or self.ints == NULL
                or self.k == NULL or self.alpha == NULL or self.layouts == NULL):
            raise MemoryError()
        for t in range(self.n_terms):
            alpha, mats, order = terms[t]
            self.alpha[t] = alpha
            self.k[t] = len(mats)
            self.nsteps[t] = len(order)
            for i in range(self.k[t]):
                if not _load_factor(mats[i], &self.factors[fi + i], type_num, itemsize):
                    raise ValueError(f"kron_apply: factor {i} of term {t} is not a "
                                     "BLAS-readable array of the dtype of x")
            for i in range(self.nsteps[t]):
                self.steps[si + i] = order[i]
            fi += self.k[t]
            si += self.nsteps[t]

    def __dealloc__(self):
        free(self.factors)
        free(self.steps)
        free(self.ints)
        free(self.k)
        free(self.alpha)
        free(self.layouts)

    cdef Py_ssize_t plan(self, const Operand* x, const Operand* out,
                         Py_ssize_t itemsize) noexcept nogil:
        """Lay out every term; return the workspace bytes the largest one needs."""
        cdef int t, fi = 0, si = 0
        cdef Py_ssize_t need = 0
        for t in range(self.n_terms):
            _plan_layout(self.factors + fi, self.steps + si, self.nsteps[t], x, out,
                         itemsize, &self.layouts[t])
            need = _max(need, self.layouts[t].need)
            fi += self.k[t]
            si += self.nsteps[t]
        return need

    cdef void run(self, int type_num, const Operand* x, const Operand* out, char* ws,
                  bint accumulate) noexcept nogil:
        """out (+)= Σ_t alpha_t kron(term t) @ x, accumulating after the first term."""
        cdef int t, fi = 0, si = 0
        for t in range(self.n_terms):
            _execute_any(type_num, self.factors + fi, self.k[t], self.steps + si,
                         self.nsteps[t], x, out, &self.layouts[t], ws, self.alpha[t],
                         accumulate or t > 0, self.ints)
            fi += self.k[t]
            si += self.nsteps[t]


def kron_apply(tuple terms, cnp.ndarray x, cnp.ndarray out, cnp.ndarray workspace,
               bint accumulate=False):
    """Write Σ_t alpha_t (F1 ⊗ … ⊗ Fk)_t x into `out`, or add it when `accumulate`.

    Parameters
    ----------
    terms : tuple of (complex, tuple, tuple)
        One (alpha, mats, order) triple per Kronecker product. `mats` are the factors in
        Kronecker order: aligned 2-D arrays of the dtype of `x` with a unit stride along one
        axis and a stride of at least the other dimension along the other, or a Python int n
        for the n-by-n identity (applied without a GEMM). `order` lists the indices of the
        non-identity factors in the order they are applied. Real dtypes use alpha.real.
    x, out : ndarray
        Both 1-D (lengths N and N') or both 2-D (shapes (N, m) and (N', m)), of one of the
        four BLAS dtypes, aligned, with N and N' the products of every term's factor column
        and row counts, N, N', m > 0; `out` does not overlap `x` or a factor. Any strides.
    workspace : ndarray
        A contiguous array for intermediate tensors.

    Returns
    -------
    int
        0 when the result was written; otherwise the number of workspace bytes needed,
        and nothing was written.
    """
    cdef int type_num = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x), need
    cdef char* ws = cnp.PyArray_BYTES(workspace)
    cdef Operand xo, oo
    cdef _Terms c_terms
    if not _is_blas_type(type_num) or cnp.PyArray_TYPE(out) != type_num:
        raise TypeError("kron_apply: x and out must share one BLAS dtype")
    c_terms = _Terms(terms, type_num, itemsize)
    _load_operand(x, &xo)
    _load_operand(out, &oo)
    with nogil:
        need = c_terms.plan(&xo, &oo, itemsize)
        if need <= cnp.PyArray_NBYTES(workspace):
            c_terms.run(type_num, &xo, &oo, ws, accumulate)
            need = 0
    return need


# Problems up to this many factors, and workspaces up to this many doubles, run on the stack.
cdef enum:
    STACK_FACTORS = 8
    STACK_WORKSPACE_DOUBLES = 2048


cdef inline bint _cheaper_first(const Factor* a, const Factor* b) noexcept:
    # Applying a before b costs fewer flops iff 1/q_a - 1/p_a < 1/q_b - 1/p_b.
    return (a.p - a.q) * b.p * b.q < (b.p - b.q) * a.p * a.q


def kron_matvec_fast(object mats, object x, bint ints_are_identities=False):
    """The common case of kron_matvec, with no Python-level overhead, or None.

    Handles a list or tuple of at most 8 factors that are aligned, BLAS-readable arrays of
    one BLAS dtype with all dimensions in [1, 2**20), and an aligned, non-empty 1-D or 2-D
    `x` of that dtype and matching length. Returns None (having done nothing) for anything
    else, which the caller then validates and runs in full. With `ints_are_identities`, a
    Python int n in `mats` stands for the n-by-n identity.
    """
    cdef Factor factors[STACK_FACTORS]
    cdef Py_ssize_t steps[STACK_FACTORS]
    cdef Py_ssize_t ints[3 * (STACK_FACTORS + 1)]
    cdef double stack_ws[STACK_WORKSPACE_DOUBLES]
    cdef Py_ssize_t n_in = 1, n_out = 1, itemsize, key
    cdef int k, nsteps = 0, i, j, type_num, ndim
    cdef bint square = True
    cdef char* ws = <char*>stack_ws
    cdef Operand xo, oo
    cdef Layout layout
    cdef cnp.ndarray xa, out, heap_ws
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
    _plan_layout(factors, steps, nsteps, &xo, &oo, itemsize, &layout)
    if layout.need > sizeof(stack_ws):
        heap_ws = <cnp.ndarray>_workspace(layout.need)
        ws = cnp.PyArray_BYTES(heap_ws)
    with nogil:
        _execute_any(type_num, factors, k, steps, nsteps, &xo, &oo, &layout, ws, 1, False,
                     ints)
    return out
