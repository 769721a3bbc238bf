# Kronecker-product application: y = Σ_t alpha_t (F1 ⊗ … ⊗ Fk)_t x without forming products.
#
# With vec = column stacking, a vector x of length q1*…*qk is the Fortran-ordered tensor
# X[qk, …, q1] (the last factor varies fastest), and applying Fi is a product along the mode
# of length qi. The m right-hand sides of a 2-D x are one more mode, last for a
# Fortran-ordered x ("F kind") and first for a C-ordered one ("C kind"), to which no factor
# is applied.
#
# Each factor is applied by one GEMM on the tensor viewed as a matrix, reading and writing
# through strides. With the factor's mode first (j = 0) or last (j = n-1) in memory, the
# rest of the tensor is one GEMM dimension, and the result can keep the mode where it was
# ("normal") or write it at the other end ("rotated", a GEMM with a transposed operand):
#
#     normal,  j = 0:    Y(p, rest)  = F @ X(q, rest)
#     rotated, j = 0:    Y(rest, p)  = X(q, rest).T @ F.T
#     normal,  j = n-1:  Y(rest, p)  = X(rest, q) @ F.T
#     rotated, j = n-1:  Y(p, rest)  = F @ X(rest, q).T
#     normal,  0<j<n-1:  Y_r(L, p)   = X_r(L, q) @ F.T      one GEMM per outer index r
#
# A planner picks, for the order of fewest flops, the variant of every step that needs the
# fewest BLAS calls and leaves the result in the layout of `out` (or in a layout numpy can
# hold, when the kernel allocates `out`). Intermediate tensors live in a reused workspace;
# inputs are never written.
#
# The Python layer (matkron/_kron.py) does coercion, dtype policy and shape checks; this
# module trusts its inputs.

cimport numpy as cnp
from libc.math cimport ceil
from libc.stdlib cimport malloc, free
from libc.string cimport memcmp, memcpy

from _blas cimport (
    BLAS_INT_MAX,
    blas_t,
    complex64_t,
    complex128_t,
    is_blas_array,
    max_size as _max,
)
from _blas_int cimport blas_int
from _interrupt cimport (
    CALL_WORK,
    Watch,
    gemm_watched,
    raise_pending,
    watch_start,
    watch_tick,
)

import threading

from matkron._workspace import workspace as _workspace

cnp.import_array()

cdef unsigned long _main_thread = threading.main_thread().ident

cdef extern from *:
    # Exact comparisons of flop keys: products of three dimensions below 2**31.
    ctypedef long long int128_t "__int128"

cdef extern from "kron_step.h" nogil:
    int matkron_kron_step_available()
    Py_ssize_t matkron_kron_pack_size(Py_ssize_t p, Py_ssize_t q, Py_ssize_t size)
    int matkron_kron_step_copies(Py_ssize_t p, Py_ssize_t x_sk)
    void matkron_kron_pack_f64(Py_ssize_t p, Py_ssize_t q, const double* f, Py_ssize_t f_si,
                               Py_ssize_t f_sk, double* pack)
    int matkron_kron_step_f64(Py_ssize_t p, Py_ssize_t q, Py_ssize_t n, double alpha,
                              const double* x, Py_ssize_t x_sk, Py_ssize_t x_sr,
                              double beta, double* y, Py_ssize_t y_si, Py_ssize_t y_sr,
                              double* pack, Py_ssize_t pack_size)
    void matkron_kron_pack_f32(Py_ssize_t p, Py_ssize_t q, const float* f, Py_ssize_t f_si,
                               Py_ssize_t f_sk, float* pack)
    int matkron_kron_step_f32(Py_ssize_t p, Py_ssize_t q, Py_ssize_t n, float alpha,
                              const float* x, Py_ssize_t x_sk, Py_ssize_t x_sr,
                              float beta, float* y, Py_ssize_t y_si, Py_ssize_t y_sr,
                              float* pack, Py_ssize_t pack_size)

# Whether real steps run matkron's own AVX-512 kernel (kron_step.c) instead of BLAS.
cdef bint _own_kernel = matkron_kron_step_available() != 0


cdef enum:
    MAX_FACTORS = 32             # factors of one Kronecker product
    MAX_MODES = MAX_FACTORS + 1  # the factors' modes and the right-hand-side mode
    MAX_STATES = 64              # layouts the planner tracks per step
    OWN_KERNEL_MAX_PACK = 32768  # elements of a packed factor the own kernel takes
    BY_COLUMN_MIN_BYTES = 262144 # one column's tensor from which columns run one at a time
    BY_COLUMN_COPY_MIN_BYTES = 6291456  # ... and all of x, when x must be copied for it
    STACK_WORKSPACE_BYTES = 16384
    NORMAL = 0
    ROTATE_FRONT = 1
    ROTATE_BACK = 2

# For tests and measurements: variants the planner must use at each step (-1: any), and
# whether the own kernel is used. Set with the GIL held, through _set_planner.
cdef int _forced_variant[MAX_FACTORS]
cdef int _forced_steps = 0


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


cdef struct Plan:
    # How one Kronecker product runs.
    int nsteps
    int order[MAX_FACTORS]       # factor applied at each step
    char variant[MAX_FACTORS]    # NORMAL, ROTATE_FRONT or ROTATE_BACK
    char own[MAX_FACTORS]        # whether the step runs the own kernel (real types)
    bint x_direct                # step 0 reads x in place (else a copy in the workspace)
    bint x_c_kind                # kind of the tensor step 0 reads
    bint out_direct              # the last step writes out in place (else copy at the end)
    bint out_c_kind              # kind of the final tensor
    bint by_column               # run as m products with one column each (this plan's)
    Py_ssize_t column_copy       # bytes at the start of the workspace for x copied to
                                 # Fortran order first (0: x is read in place)
    double cost                  # BLAS calls, plus a penalty for a copy of the result
    Py_ssize_t largest           # elements in each of the (at most two) workspace buffers
    Py_ssize_t pack              # doubles for a packed factor after the buffers (float64)
    Py_ssize_t need              # workspace bytes


cdef struct Search:
    # One candidate layout sequence of the planner.
    int perm[MAX_MODES]          # mode ids in memory order, fastest first (rhs id = k)
    char variant[MAX_FACTORS]
    char own[MAX_FACTORS]
    double cost


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
    # The stride along an axis of length 1 is never used; BLAS wants ld >= rows.
    if ((p <= 1 or s0 == itemsize)
            and (q <= 1 or (s1 >= p * itemsize and s1 % itemsize == 0))):
        factor.trans = c'N'
        ld = s1 // itemsize if q > 1 else _max(p, 1)
    elif ((q <= 1 or s1 == itemsize)
            and (p <= 1 or (s0 >= q * itemsize and s0 % itemsize == 0))):
        factor.trans = c'T'
        ld = s0 // itemsize if p > 1 else _max(q, 1)
    else:
        return False
    if ld > BLAS_INT_MAX or p > BLAS_INT_MAX or q > BLAS_INT_MAX:
        return False
    factor.ld = <blas_int>ld
    return True


# -- planning ------------------------------------------------------------------------------

cdef inline int _compare_keys(const Factor* a, const Factor* b) noexcept nogil:
    """Sign of key(a) - key(b), key = 1/q - 1/p: applying a first is cheaper iff < 0."""
    cdef int128_t lhs = <int128_t>(a.p - a.q) * b.p * b.q
    cdef int128_t rhs = <int128_t>(b.p - b.q) * a.p * a.q
    return -1 if lhs < rhs else (1 if lhs > rhs else 0)


cdef int _flop_order(const Factor* factors, int k, int* order, bint ties_reversed) noexcept nogil:
    """Non-identity factors sorted by the exchange-argument key; returns their count.

    Any order of equal keys has the same flops; `ties_reversed` takes them by descending
    index instead of ascending, which can spare BLAS calls for some layouts.
    """
    cdef int n = 0, i, j, key, c
    for i in range(k):
        if factors[i].data != NULL:
            order[n] = i
            n += 1
    for i in range(1, n):
        key = order[i]
        j = i - 1
        while j >= 0:
            c = _compare_keys(&factors[key], &factors[order[j]])
            if c < 0 or (c == 0 and ties_reversed):
                order[j + 1] = order[j]
                j -= 1
            else:
                break
        order[j + 1] = key
    return n


cdef int _compact(const int* perm, int nmodes, const Py_ssize_t* dims, int keep,
                  int* ids) noexcept nogil:
    """The mode ids of `perm` with a dimension above 1 (and `keep`), in memory order."""
    cdef int u, n = 0
    for u in range(nmodes):
        if dims[perm[u]] > 1 or perm[u] == keep:
            ids[n] = perm[u]
            n += 1
    return n


cdef void _kind_perm(int k, bint c_kind, int* perm) noexcept nogil:
    """Memory order of the modes for a tensor of the given kind (rhs id = k)."""
    cdef int i
    for i in range(k):
        perm[i + 1 if c_kind else i] = k - 1 - i
    perm[0 if c_kind else k] = k


cdef bint _same_layout(const int* a, const int* b, int nmodes,
                       const Py_ssize_t* dims) noexcept nogil:
    """Whether two mode orders agree on every mode of dimension above 1."""
    cdef int ca[MAX_MODES]
    cdef int cb[MAX_MODES]
    cdef int n = _compact(a, nmodes, dims, -1, ca), u
    if _compact(b, nmodes, dims, -1, cb) != n:
        return False
    for u in range(n):
        if ca[u] != cb[u]:
            return False
    return True


cdef void _move(const int* perm, int nmodes, int mode, bint to_front, int* out) noexcept nogil:
    cdef int u, n = 0
    if to_front:
        out[0] = mode
        n = 1
    for u in range(nmodes):
        if perm[u] != mode:
            out[n] = perm[u]
            n += 1
    if not to_front:
        out[n] = mode


cdef inline double _step_cost(double calls, double multiplies, double rows,
                              bint rotated) noexcept nogil:
    """Estimated microseconds of one BLAS step: call overhead plus its flops, at a rate
    that is lower when the GEMM has few rows (measured with SciPy's OpenBLAS, a 64-row
    GEMM runs at about 0.6x the speed of a tall one).

    A tiny bias makes a normal step win a tie with a rotated one.
    """
    return (calls * 0.2 + multiplies * 5e-5 * (1 + min(0.6, 20 / rows))
            + (0.001 if rotated else 0))


cdef inline double _own_step_cost(double calls, double multiplies, double vector,
                                  double copied, int lanes, bint front_rotated,
                                  bint rotated) noexcept nogil:
    """Estimated microseconds of one step of the own kernel, in units of the BLAS of the
    same type (see _step_cost).

    It runs about twice as fast as BLAS (in float32, twice as fast as in float64, where
    the BLAS estimate stays that of float64: sgemm's lead over dgemm varies), less so
    when the dimension along its vectors is
    short: a tile has up to three vectors of `lanes`, so a dimension that does not fill
    its last vector wastes lanes, and with one vector the additions wait on each other
    (measured in float64, 8 rows run at about 0.7x, 16 at 0.9x). In float32 a rotated
    front step (its 8x8 transposes write half cache lines) measured about 0.6x. `copied`
    elements of the input are copied first (see matkron_kron_step_copies), counted at
    0.5 ns per 8 bytes (which, with the rest of this model, picked the fastest plan for
    most of the multi suite's shapes).
    """
    cdef double short = min(1.0, lanes / vector)
    cdef double used = 1
    if vector < 3 * lanes:
        used = vector / (ceil(vector / lanes) * lanes)
    return (calls * 0.02
            + multiplies * 2.5e-5 * 8 / lanes * (1 + 0.4 * short * short) / used
            * (1.6 if front_rotated and lanes == 16 else 1)
            + copied * (5e-4 if lanes == 8 else 2.5e-4) + (0.001 if rotated else 0))


cdef double _search(const Factor* factors, int k, const int* order, int nsteps,
                    Py_ssize_t m, bint start_c_kind, bint x_padded, int out_kinds,
                    bint out_padded, double copy_penalty, int own, Search* best,
                    bint* end_c_kind, bint* end_direct) noexcept nogil:
    """Cheapest variants for a fixed order, from a start kind to an allowed end kind.

    Costs are estimated microseconds (see _step_cost). `out_kinds` is a bit set of end
    kinds written in place: 1 for F, 2 for C. An end in another kind costs `copy_penalty`
    (the result goes through the workspace). A padded x (F kind with a right-hand-side
    stride above its length) cannot be rotated at step 0, a padded out is written only by
    a normal step. Returns the cost (or -1 if none).
    """
    cdef Search states[2][MAX_STATES]
    cdef int counts[2]
    cdef Py_ssize_t dims[MAX_MODES]
    cdef int ids[MAX_MODES]
    cdef int kind_perm[MAX_MODES]
    cdef int cur = 0, nxt, t, s, f, nc, jj, u, v, nmodes = k + 1, variant, w
    cdef double calls, cost, best_cost = -1, size, rows, vector, copied, step, own_step
    cdef bint merged, is_f, is_c, direct
    cdef Search cand
    for u in range(k):
        dims[u] = factors[u].q
    dims[k] = m
    _kind_perm(k, start_c_kind, states[0][0].perm)
    states[0][0].cost = 0
    counts[0] = 1
    for t in range(nsteps):
        f = order[t]
        nxt = 1 - cur
        counts[nxt] = 0
        size = 1
        for u in range(nmodes):
            size *= <double>dims[u]
        for s in range(counts[cur]):
            nc = _compact(states[cur][s].perm, nmodes, dims, f, ids)
            jj = 0
            while ids[jj] != f:
                jj += 1
            for variant in range(3):
                if variant != NORMAL and nc < 2:
                    continue
                if t < _forced_steps and _forced_variant[t] >= 0 and variant != _forced_variant[t]:
                    continue
                if variant == ROTATE_FRONT and (jj != 0 or (t == 0 and x_padded)):
                    continue
                if variant == ROTATE_BACK and jj != nc - 1:
                    continue
                if variant == NORMAL:
                    # One GEMM per index of the modes after the factor (after the merged
                    # columns for j = 0: all of them, but for a padded x's rhs mode),
                    # with the modes before it as rows.
                    calls = 1
                    merged = jj == 0
                    for u in range(jj + 1, nc):
                        if merged and not (t == 0 and x_padded and ids[u] == k):
                            continue
                        merged = False
                        calls *= <double>dims[ids[u]]
                    rows = factors[f].p if jj == 0 else 1
                    for u in range(jj):
                        rows *= <double>dims[ids[u]]
                    cand.perm = states[cur][s].perm
                else:
                    calls = 1
                    rows = (size / factors[f].q if variant == ROTATE_FRONT
                            else <double>factors[f].p)
                    _move(states[cur][s].perm, nmodes, f, variant == ROTATE_BACK, cand.perm)
                cand.variant = states[cur][s].variant
                cand.variant[t] = variant
                cand.own = states[cur][s].own
                step = _step_cost(calls, size * factors[f].p, rows, variant != NORMAL)
                cand.own[t] = False
                if own and _own_step(&factors[f]):
                    # The own kernel's vectors run along p when the factor's mode is at
                    # the front, else along the modes before it (read at that stride).
                    copied = 0
                    if (variant == NORMAL and jj == 0) or variant == ROTATE_FRONT:
                        vector = factors[f].p
                    else:
                        vector = size / factors[f].q if variant == ROTATE_BACK else rows
                        if matkron_kron_step_copies(factors[f].p, <Py_ssize_t>vector):
                            copied = size
                    own_step = _own_step_cost(calls, size * factors[f].p, vector, copied,
                                              own, variant == ROTATE_FRONT,
                                              variant != NORMAL)
                    if own_step < step:
                        step = own_step
                        cand.own[t] = True
                cand.cost = states[cur][s].cost + step
                # Keep the cheaper of two candidates with one layout.
                for w in range(counts[nxt]):
                    for u in range(nmodes):
                        if states[nxt][w].perm[u] != cand.perm[u]:
                            break
                    else:
                        if cand.cost < states[nxt][w].cost:
                            states[nxt][w] = cand
                        break
                else:
                    if counts[nxt] < MAX_STATES:
                        states[nxt][counts[nxt]] = cand
                        counts[nxt] += 1
        dims[f] = factors[f].p
        cur = nxt
    for s in range(counts[cur]):
        _kind_perm(k, False, kind_perm)
        is_f = _same_layout(states[cur][s].perm, kind_perm, nmodes, dims)
        _kind_perm(k, True, kind_perm)
        is_c = _same_layout(states[cur][s].perm, kind_perm, nmodes, dims)
        if not (is_f or is_c):
            continue
        direct = (is_f and out_kinds & 1) or (is_c and out_kinds & 2)
        if direct and out_padded and nsteps > 0:
            # A padded out is written only by a normal GEMM whose rows stay contiguous:
            # the last factor's mode before the right-hand-side mode.
            if states[cur][s].variant[nsteps - 1] != NORMAL:
                direct = False
            for u in range(nmodes):
                if states[cur][s].perm[u] == k:
                    direct = False
                if states[cur][s].perm[u] == order[nsteps - 1]:
                    break
        cost = states[cur][s].cost + (0 if direct else copy_penalty)
        if best_cost < 0 or cost < best_cost:
            best_cost = cost
            best[0] = states[cur][s]
            end_direct[0] = direct
            # Prefer the end kind that `out` takes in place.
            end_c_kind[0] = is_c and not (is_f and (not direct or out_kinds & 1))
    return best_cost


cdef enum:
    # Layout flags of the operands, as the planner sees them.
    X_F = 1              # x is read in place in F kind
    X_C = 2              # x is read in place in C kind
    X_PADDED = 4         # ... with a right-hand-side stride above its length
    OUT_F = 8            # out is written in place in F kind
    OUT_C = 16           # out is written in place in C kind
    OUT_PADDED = 32      # ... with a right-hand-side stride above its length
    OUT_NEW = 64         # out is allocated after planning, in the kind the plan picks


cdef int _layout_flags(const Operand* x, const Operand* out, Py_ssize_t itemsize) noexcept nogil:
    """The planner's view of x and out (NULL: to be allocated) as X_* and OUT_* flags."""
    cdef Py_ssize_t m = x.m
    cdef int flags = 0
    if (x.s0 == itemsize and x.s1 >= x.n * itemsize and x.s1 % itemsize == 0
            and x.s1 // itemsize <= BLAS_INT_MAX):
        flags |= X_F | (X_PADDED if m > 1 and x.s1 != x.n * itemsize else 0)
    elif m > 1 and x.s1 == itemsize and x.s0 == m * itemsize:
        flags |= X_C
    if out == NULL:
        return flags | OUT_NEW | OUT_F | OUT_C
    if (out.s0 == itemsize and out.s1 >= out.n * itemsize and out.s1 % itemsize == 0
            and out.s1 // itemsize <= BLAS_INT_MAX):
        flags |= OUT_F | (OUT_PADDED if m > 1 and out.s1 != out.n * itemsize else 0)
    if (m == 1 and flags & OUT_F) or (out.s1 == itemsize and out.s0 == m * itemsize):
        flags |= OUT_C
    return flags


cdef inline bint _own_step(const Factor* f) noexcept nogil:
    """Whether a real step with factor f may run the own kernel: its packed factor stays
    in L2, where the kernel reads it once per eight columns of the tensor."""
    return (_own_kernel and f.data != NULL and f.p > 0 and f.q > 0
            and (f.p + 15) // 16 * 16 * f.q <= OWN_KERNEL_MAX_PACK)


cdef double _memory_bound_steps(const Factor* factors, int k) noexcept nogil:
    """Passes over memory a product spares by running in cache, in units of one pass over
    x: each step's time beyond its arithmetic (about 2 ns an element to stream the tensor
    in and out, 0.02 ns a multiplication, as measured for 16^4 and 64^3), relative to x's
    size."""
    cdef double size = 1, spared = 0
    cdef int order[MAX_FACTORS]
    cdef int t, nsteps = _flop_order(factors, k, order, False)
    cdef const Factor* f
    for t in range(nsteps):
        f = &factors[order[t]]
        if f.q > 0:
            spared += size * max(0.0, 1 - 0.01 * f.p)
            size *= <double>f.p / f.q
    return spared


cdef void _make_plan(const Factor* factors, int k, const Operand* x, const Operand* out,
                     int flags, Py_ssize_t itemsize, int own, Plan* plan) noexcept nogil:
    """Plan one product for operands with the given layout flags (see _plan)."""
    global _forced_steps
    cdef Py_ssize_t m = x.m, size, largest
    cdef int resident, i, attempt, nsteps, forced
    cdef int order[MAX_FACTORS]
    cdef int out_kinds = (1 if flags & OUT_F else 0) | (2 if flags & OUT_C else 0)
    cdef bint x_f = (flags & X_F) != 0, x_c = (flags & X_C) != 0
    cdef bint x_padded = (flags & X_PADDED) != 0, out_padded = (flags & OUT_PADDED) != 0
    cdef bint start_c, end_c, end_direct, direct
    cdef double cost, copy_penalty, copy_in
    cdef Search found
    cdef Operand x_col, out_col
    cdef bint copy_x = not (flags & X_F)
    if (m > 1 and flags & OUT_F and x.n * itemsize >= BY_COLUMN_MIN_BYTES
            and (not copy_x or (x.n * m * itemsize >= BY_COLUMN_COPY_MIN_BYTES
                                and _memory_bound_steps(factors, k) > 1))):
        # With out Fortran-ordered, every right-hand side is a vector of its own: one
        # column's tensors stay in cache through all the steps, where those of all
        # columns would stream from memory at every step. Another x is first copied into
        # Fortran order (a pass over memory), which pays for itself when all of x is
        # larger than the caches and the steps spared were bound by memory.
        x_col = x[0]
        x_col.m = 1
        x_col.s0 = itemsize
        x_col.s1 = x.n * itemsize
        if out != NULL:
            out_col = out[0]
            out_col.m = 1
            out_col.s1 = out.n * itemsize
        _make_plan(factors, k, &x_col, NULL if out == NULL else &out_col,
                   _layout_flags(&x_col, NULL if out == NULL else &out_col, itemsize),
                   itemsize, own, plan)
        if plan.x_direct and plan.out_direct:
            plan.by_column = True
            plan.out_c_kind = False
            if copy_x:
                # Whole cache lines for the copy, then the column plan's workspace.
                plan.column_copy = (x.n * m * itemsize + 63) // 64 * 64
                plan.need += plan.column_copy
            return
    # A strided copy of x or of the result costs about 2 ns an element (microseconds, as
    # the step costs of _search).
    copy_in = 0.2 + 0.002 * <double>x.n * m
    copy_penalty = 0.2 + 0.002 * <double>(x.n if out == NULL else out.n) * m
    plan.cost = -1
    plan.by_column = False
    plan.column_copy = 0
    for attempt in range(4):
        nsteps = _flop_order(factors, k, order, attempt & 1)
        start_c = (attempt & 2) != 0
        if (attempt & 1 and nsteps < 2) or (start_c and m == 1):
            continue
        # x is read in place in its own kind, or copied into the other one (which can pay
        # for itself when it lets every GEMM have many rows).
        direct = (x_f and not start_c) or (x_c and start_c)
        cost = _search(factors, k, order, nsteps, m, start_c, x_padded and direct,
                       out_kinds, out_padded, copy_penalty, own, &found, &end_c,
                       &end_direct)
        if cost >= 0 and not direct:
            cost += copy_in
        if cost >= 0 and (plan.cost < 0 or cost < plan.cost):
            plan.cost = cost
            plan.nsteps = nsteps
            for i in range(nsteps):
                plan.order[i] = order[i]
                plan.variant[i] = found.variant[i]
                plan.own[i] = found.own[i]
            plan.x_direct = direct
            plan.x_c_kind = start_c
            plan.out_c_kind = end_c
            plan.out_direct = end_direct
    if plan.cost < 0 and _forced_steps > 0:
        # No plan has the forced variants: plan freely.
        forced = _forced_steps
        _forced_steps = 0
        _make_plan(factors, k, x, out, flags, itemsize, own, plan)
        _forced_steps = forced
        return
    if plan.nsteps == 0:
        plan.out_direct = True

    # Every tensor of the sequence x, T1, ..., out that is not x or out itself lives in one
    # of two workspace buffers, taken in turn.
    size = x.n * m
    largest = 0 if plan.x_direct else size
    resident = 0 if plan.x_direct else 1
    for i in range(plan.nsteps):
        size = size // factors[plan.order[i]].q * factors[plan.order[i]].p
        if i < plan.nsteps - 1 or not plan.out_direct:
            largest = _max(largest, size)
            resident += 1
    if plan.nsteps == 0:
        largest = resident = 0
    plan.largest = largest
    plan.need = (resident if resident < 2 else 2) * largest * itemsize
    plan.pack = 0
    size = x.n * m
    for i in range(plan.nsteps):
        if plan.own[i]:
            # Room for a block of rows of X only where the step can copy one.
            plan.pack = _max(plan.pack, matkron_kron_pack_size(
                factors[plan.order[i]].p, factors[plan.order[i]].q, size))
        size = size // factors[plan.order[i]].q * factors[plan.order[i]].p
    if plan.pack:
        plan.need = 2 * largest * itemsize + plan.pack * itemsize


cdef enum:
    PLAN_CACHE_SLOTS = 64
    PLAN_KEY_LEN = 3 * MAX_FACTORS + 5


cdef struct CachedPlan:
    Py_ssize_t key[PLAN_KEY_LEN]
    int key_len
    Plan plan

# Plans of recent products, so a repeated product skips the search. Read and written only
# with the GIL held.
cdef CachedPlan _plan_cache[PLAN_CACHE_SLOTS]


cdef void _plan(const Factor* factors, int k, const Operand* x, const Operand* out,
                int type_num, Plan* plan) noexcept:
    """Plan one product, from the cache when the same shapes and layouts were seen.

    `out` NULL means the caller allocates out in plan.out_c_kind. Call with the GIL held.
    """
    cdef Py_ssize_t key[PLAN_KEY_LEN]
    cdef Py_ssize_t n_out = x.n if out == NULL else out.n
    cdef Py_ssize_t itemsize = (4 if type_num == cnp.NPY_FLOAT32 else
                                16 if type_num == cnp.NPY_COMPLEX128 else 8)
    # The own kernel's lanes per vector for this type (0: the type has no own kernel).
    cdef int own = (0 if not _own_kernel else 8 if type_num == cnp.NPY_FLOAT64
                    else 16 if type_num == cnp.NPY_FLOAT32 else 0)
    cdef int flags = _layout_flags(x, out, itemsize), i, n = 0, slot
    cdef size_t digest = 2166136261, prime = 16777619      # FNV-1a, wrapping in size_t
    cdef CachedPlan* entry
    key[0] = k
    key[1] = 2 * type_num + (own != 0)
    key[2] = x.m
    key[3] = flags
    key[4] = n_out
    n = 5
    for i in range(k):
        key[n] = factors[i].p
        key[n + 1] = factors[i].q
        key[n + 2] = factors[i].data == NULL
        n += 3
    for i in range(n):
        digest = (digest ^ <size_t>key[i]) * prime
    slot = <int>(digest % PLAN_CACHE_SLOTS)
    entry = &_plan_cache[slot]
    if entry.key_len == n and memcmp(entry.key, key, n * sizeof(Py_ssize_t)) == 0:
        plan[0] = entry.plan
        return
    _make_plan(factors, k, x, out, flags, itemsize, own, plan)
    memcpy(entry.key, key, n * sizeof(Py_ssize_t))
    entry.key_len = n
    entry.plan = plan[0]


# -- execution -----------------------------------------------------------------------------

cdef void _scale_copy(const char* src, Py_ssize_t ss0, Py_ssize_t ss1,
                      char* dst, Py_ssize_t ds0, Py_ssize_t ds1,
                      Py_ssize_t n0, Py_ssize_t n1, blas_t alpha,
                      bint accumulate) noexcept nogil:
    """dst[i, j] = alpha * src[i, j] (+ dst[i, j] when accumulating); byte strides.

    Rows go in blocks of 64, so that when the two arrays run in different orders the one
    read (or written) across rows still moves whole cache lines.
    """
    cdef Py_ssize_t i0, end, i, j
    cdef const char* s
    cdef char* d
    for i0 in range(0, n0, 64):
        end = n0 if n0 - i0 < 64 else i0 + 64
        for j in range(n1):
            s = src + j * ss1
            d = dst + j * ds1
            if accumulate:
                for i in range(i0, end):
                    (<blas_t*>(d + i * ds0))[0] += alpha * (<const blas_t*>(s + i * ss0))[0]
            elif alpha == 1:
                for i in range(i0, end):
                    (<blas_t*>(d + i * ds0))[0] = (<const blas_t*>(s + i * ss0))[0]
            else:
                for i in range(i0, end):
                    (<blas_t*>(d + i * ds0))[0] = alpha * (<const blas_t*>(s + i * ss0))[0]


cdef inline void _own_pack(Py_ssize_t p, Py_ssize_t q, const blas_t* f, Py_ssize_t f_si,
                           Py_ssize_t f_sk, blas_t* pack) noexcept nogil:
    """Pack F for the own kernel (real types; the planner plans no other)."""
    if blas_t is double:
        matkron_kron_pack_f64(p, q, f, f_si, f_sk, pack)
    elif blas_t is float:
        matkron_kron_pack_f32(p, q, f, f_si, f_sk, pack)


cdef inline bint _own_step_run(Py_ssize_t p, Py_ssize_t q, Py_ssize_t n, blas_t alpha,
                               const blas_t* x, Py_ssize_t x_sk, Py_ssize_t x_sr,
                               blas_t beta, blas_t* y, Py_ssize_t y_si, Py_ssize_t y_sr,
                               void* pack, Py_ssize_t pack_size) noexcept nogil:
    """Run a step on the own kernel when `pack` holds its factor; whether it ran."""
    if pack == NULL:
        return False
    if blas_t is double:
        return matkron_kron_step_f64(p, q, n, alpha, x, x_sk, x_sr, beta, y, y_si, y_sr,
                                     <double*>pack, pack_size) == 0
    elif blas_t is float:
        return matkron_kron_step_f32(p, q, n, alpha, x, x_sk, x_sr, beta, y, y_si, y_sr,
                                     <float*>pack, pack_size) == 0
    else:
        return False


cdef bint _apply_normal(const Factor* f, const blas_t* x, const Py_ssize_t* xstr,
                        blas_t* y, const Py_ssize_t* ystr, const Py_ssize_t* dims,
                        int nmodes, int j, blas_t alpha, blas_t beta,
                        void* pack, Py_ssize_t pack_size, Watch* watch) noexcept nogil:
    """Y = alpha X ×_j F + beta Y, the mode staying in place; modes 0..j-1 contiguous from
    unit stride in both tensors.

    `dims` are the input dimensions (dims[j] = q; the output has p there). Strides are in
    elements. The modes after the GEMM's own are walked by index arithmetic. A real step
    with `pack` (holding F packed, in pack_size elements) runs the own kernel instead of
    BLAS. Returns whether `watch` stopped it.
    """
    cdef blas_int p = <blas_int>f.p, q = <blas_int>f.q
    cdef char flipped = c'T' if f.trans == c'N' else c'N'
    cdef Py_ssize_t L = 1, cols = 1, n_outer = 1, r, rem, c, off_x, off_y, ldx, ldy
    cdef int u, first_outer
    if j == 0:
        # Merge the following modes into GEMM columns while both tensors stay contiguous.
        first_outer = 1
        if nmodes > 1:
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
        # A single column has no column stride: BLAS still wants ld >= rows.
        ldx = xstr[j] if q > 1 else L
        ldy = ystr[j] if p > 1 else L
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
        # Y(p, cols) = F @ X(q, cols) for j = 0, Y(L, p) = X(L, q) @ F.T after.
        if j == 0 and _own_step_run(p, q, cols, alpha, x + off_x, 1, ldx, beta, y + off_y,
                                    1, ldy, pack, pack_size):
            if watch_tick(watch, <double>p * q * cols + CALL_WORK):
                return True
            continue
        if j > 0 and _own_step_run(p, q, L, alpha, x + off_x, ldx, 1, beta, y + off_y, ldy,
                                   1, pack, pack_size):
            if watch_tick(watch, <double>p * q * L + CALL_WORK):
                return True
            continue
        if j == 0:
            if gemm_watched(watch, f.trans, c'N', p, <blas_int>cols, q, alpha,
                            <blas_t*>f.data, f.ld, x + off_x, <blas_int>_max(ldx, 1), beta,
                            y + off_y, <blas_int>_max(ldy, 1)):
                return True
        else:
            if gemm_watched(watch, c'N', flipped, <blas_int>L, p, q, alpha, x + off_x,
                            <blas_int>_max(ldx, 1), <blas_t*>f.data, f.ld, beta, y + off_y,
                            <blas_int>_max(ldy, 1)):
                return True
    return False


cdef void _strides(const int* layout, const int* perm, int nmodes, const Py_ssize_t* dims,
                   int rhs, Py_ssize_t rhs_stride, Py_ssize_t* strides) noexcept nogil:
    """Strides, by position in `perm`, of a tensor stored contiguously in the mode order
    `layout` (which agrees with `perm` on the modes of dimension above 1); a positive
    `rhs_stride` overrides the stride of the right-hand-side mode."""
    cdef Py_ssize_t by_id[MAX_MODES]
    cdef Py_ssize_t s = 1
    cdef int u
    for u in range(nmodes):
        by_id[layout[u]] = s
        s *= dims[layout[u]]
    if rhs_stride > 0:
        by_id[rhs] = rhs_stride
    for u in range(nmodes):
        strides[u] = by_id[perm[u]]


cdef void _execute(const Factor* factors, int k, const Plan* plan, const Operand* x,
                   const Operand* out, char* ws, blas_t alpha, bint accumulate,
                   Watch* watch) noexcept nogil:
    """out = alpha kron(factors) @ x (+ out when accumulating), as planned.

    `ws` holds plan.need bytes. Sizes are non-zero. When `watch` stops, `out` is left
    incomplete (the caller raises).
    """
    cdef Py_ssize_t itemsize = sizeof(blas_t), m = x.m, rest
    cdef Py_ssize_t dims[MAX_MODES]
    cdef Py_ssize_t xstr[MAX_MODES]
    cdef Py_ssize_t ystr[MAX_MODES]
    cdef Py_ssize_t cdims[MAX_MODES]
    cdef Py_ssize_t cxs[MAX_MODES]
    cdef Py_ssize_t cys[MAX_MODES]
    cdef int perm[MAX_MODES]
    cdef int yperm[MAX_MODES]
    cdef int out_perm[MAX_MODES]
    cdef int nmodes = k + 1, t, f, u, w, nc, jj = 0
    cdef char variant, flipped
    cdef bint last
    cdef const blas_t* src = <const blas_t*>x.data
    cdef blas_t* dst = NULL
    cdef blas_t* spare = <blas_t*>ws
    cdef blas_t* other = <blas_t*>ws + plan.largest
    cdef blas_t* swap
    cdef blas_t one = 1, zero = 0, beta, alpha_step
    cdef const Factor* fac
    cdef void* pack = NULL
    cdef bint done
    cdef Plan column_plan
    cdef Operand x_col, out_col
    cdef Py_ssize_t column

    if plan.by_column:
        column_plan = plan[0]
        column_plan.by_column = False
        column_plan.column_copy = 0
        x_col = x[0]
        out_col = out[0]
        x_col.m = out_col.m = 1
        if plan.column_copy:
            # x in Fortran order at the head of the workspace.
            _scale_copy(x.data, x.s0, x.s1, ws, itemsize, x.n * itemsize, x.n, m, one, False)
            x_col.s0 = itemsize
            x_col.s1 = x.n * itemsize
        for column in range(m):
            x_col.data = (ws if plan.column_copy else x.data) + column * x_col.s1
            out_col.data = out.data + column * out.s1
            _execute(factors, k, &column_plan, &x_col, &out_col, ws + plan.column_copy,
                     alpha, accumulate, watch)
            if watch.stopped:
                return
        return
    if plan.nsteps == 0:
        _scale_copy(x.data, x.s0, x.s1, out.data, out.s0, out.s1, x.n, m, alpha, accumulate)
        return
    for u in range(k):
        dims[u] = factors[u].q
    dims[k] = m
    _kind_perm(k, plan.x_c_kind, perm)
    if plan.x_direct:
        _strides(perm, perm, nmodes, dims, k,
                 0 if plan.x_c_kind or m == 1 else x.s1 // itemsize, xstr)
    else:
        if plan.x_c_kind:
            _scale_copy(x.data, x.s0, x.s1, <char*>spare, m * itemsize, itemsize, x.n, m,
                        one, False)
        else:
            _scale_copy(x.data, x.s0, x.s1, <char*>spare, itemsize, x.n * itemsize, x.n, m,
                        one, False)
        _strides(perm, perm, nmodes, dims, k, 0, xstr)
        src = spare
        spare = other
        other = <blas_t*>ws

    for t in range(plan.nsteps):
        f = plan.order[t]
        fac = &factors[f]
        variant = plan.variant[t]
        last = t == plan.nsteps - 1
        if variant == NORMAL:
            memcpy(yperm, perm, nmodes * sizeof(int))
        else:
            _move(perm, nmodes, f, variant == ROTATE_BACK, yperm)
        dims[f] = fac.p
        if last and plan.out_direct:
            dst = <blas_t*>out.data
            _kind_perm(k, plan.out_c_kind, out_perm)
            _strides(out_perm, yperm, nmodes, dims, k,
                     0 if plan.out_c_kind or m == 1 else out.s1 // itemsize, ystr)
        else:
            dst = spare
            swap = spare
            spare = other
            other = swap
            _strides(yperm, yperm, nmodes, dims, k, 0, ystr)
        dims[f] = fac.q
        # Only the last GEMM scales, and accumulates into out.
        alpha_step = alpha if last else one
        beta = one if last and accumulate and plan.out_direct else zero

        # Drop modes of dimension 1: they do not affect the layout.
        nc = 0
        for u in range(nmodes):
            if dims[perm[u]] > 1 or perm[u] == f:
                cdims[nc] = dims[perm[u]]
                cxs[nc] = xstr[u]
                for w in range(nmodes):
                    if yperm[w] == perm[u]:
                        cys[nc] = ystr[w]
                        break
                if perm[u] == f:
                    jj = nc
                nc += 1
        pack = NULL
        if plan.own[t]:
            pack = ws + 2 * plan.largest * itemsize
            if fac.trans == c'N':
                _own_pack(fac.p, fac.q, <blas_t*>fac.data, 1, fac.ld, <blas_t*>pack)
            else:
                _own_pack(fac.p, fac.q, <blas_t*>fac.data, fac.ld, 1, <blas_t*>pack)
        if variant == NORMAL:
            if _apply_normal(fac, src, cxs, dst, cys, cdims, nc, jj, alpha_step, beta, pack,
                             plan.pack, watch):
                return
        else:
            rest = 1
            for u in range(nc):
                if u != jj:
                    rest *= cdims[u]
            flipped = c'T' if fac.trans == c'N' else c'N'
            # The products below, by the own kernel where planned.
            if variant == ROTATE_FRONT:
                done = _own_step_run(fac.p, fac.q, rest, alpha_step, src, 1, _max(cxs[1], 1),
                                     beta, dst, rest, 1, pack, plan.pack)
            else:
                done = _own_step_run(fac.p, fac.q, rest, alpha_step, src,
                                     _max(cxs[nc - 1], 1), 1, beta, dst, 1, _max(fac.p, 1),
                                     pack, plan.pack)
            if done:
                done = watch_tick(watch, <double>fac.p * fac.q * rest + CALL_WORK)
            elif variant == ROTATE_FRONT:
                # Y(rest, p) = X(q, rest).T @ F.T
                done = gemm_watched(watch, c'T', flipped, <blas_int>rest, <blas_int>fac.p,
                                    <blas_int>fac.q, alpha_step, src,
                                    <blas_int>_max(cxs[1], 1), <blas_t*>fac.data, fac.ld,
                                    beta, dst, <blas_int>rest)
            else:
                # Y(p, rest) = F @ X(rest, q).T
                done = gemm_watched(watch, fac.trans, c'T', <blas_int>fac.p,
                                    <blas_int>rest, <blas_int>fac.q, alpha_step,
                                    <blas_t*>fac.data, fac.ld, src,
                                    <blas_int>_max(cxs[nc - 1], 1), beta, dst,
                                    <blas_int>_max(fac.p, 1))
            if done:
                return
        dims[f] = fac.p
        memcpy(perm, yperm, nmodes * sizeof(int))
        memcpy(xstr, ystr, nmodes * sizeof(Py_ssize_t))
        src = dst

    if not plan.out_direct:
        if plan.out_c_kind:
            _scale_copy(<char*>dst, m * itemsize, itemsize, out.data, out.s0, out.s1, out.n,
                        m, one, accumulate)
        else:
            _scale_copy(<char*>dst, itemsize, out.n * itemsize, out.data, out.s0, out.s1,
                        out.n, m, one, accumulate)


cdef void _execute_any(int type_num, const Factor* factors, int k, const Plan* plan,
                       const Operand* x, const Operand* out, char* ws, double complex alpha,
                       bint accumulate, Watch* watch) noexcept nogil:
    """_execute for the dtype `type_num` (alpha's imaginary part is dropped for reals)."""
    if type_num == cnp.NPY_FLOAT32:
        _execute[float](factors, k, plan, x, out, ws, <float>alpha.real, accumulate, watch)
    elif type_num == cnp.NPY_FLOAT64:
        _execute[double](factors, k, plan, x, out, ws, alpha.real, accumulate, watch)
    elif type_num == cnp.NPY_COMPLEX64:
        _execute[complex64_t](factors, k, plan, x, out, ws, <complex64_t>alpha, accumulate,
                              watch)
    else:
        _execute[complex128_t](factors, k, plan, x, out, ws, alpha, accumulate, watch)


# -- entry points --------------------------------------------------------------------------

cdef class _Terms:
    """C descriptions of the factors of one or more Kronecker products (heap storage)."""
    cdef Factor* factors
    cdef int* k
    cdef double complex* alpha
    cdef Plan* plans
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
        if (self.factors == NULL or self.k == NULL or self.alpha == NULL
                or self.plans == NULL):
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

    cdef Py_ssize_t plan(self, const Operand* x, const Operand* out, int type_num) noexcept:
        """Plan every term; return the workspace bytes the largest one needs."""
        cdef int t, fi = 0
        cdef Py_ssize_t need = 0
        for t in range(self.n_terms):
            _plan(self.factors + fi, self.k[t], x, out, type_num, &self.plans[t])
            if self.plans[t].largest > BLAS_INT_MAX:
                return -1
            need = _max(need, self.plans[t].need)
            fi += self.k[t]
        return need

    cdef void run(self, int type_num, const Operand* x, const Operand* out, char* ws,
                  bint accumulate, Watch* watch) noexcept nogil:
        """out (+)= Σ_t alpha_t kron(term t) @ x, accumulating after the first term, until
        `watch` stops."""
        cdef int t, fi = 0
        for t in range(self.n_terms):
            _execute_any(type_num, self.factors + fi, self.k[t], &self.plans[t], x, out, ws,
                         self.alpha[t], accumulate or t > 0, watch)
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
    cdef cnp.ndarray heap_ws
    cdef Watch watch
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
    need = c_terms.plan(&xo, &oo, type_num)
    if need < 0:
        raise ValueError("an intermediate tensor of the product has more elements than the "
                         "BLAS integer type can index")
    if need > STACK_WORKSPACE_BYTES:
        heap_ws = <cnp.ndarray>_workspace(need)
        ws = cnp.PyArray_BYTES(heap_ws)
    watch_start(&watch, _main_thread)
    with nogil:
        c_terms.run(type_num, &xo, &oo, ws, accumulate, &watch)
    if watch.stopped:
        raise_pending()
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
    _plan(factors, k, &xo, NULL, cnp.PyArray_TYPE(x), &plan)
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


# The validating implementation of kron_matvec, for the calls _matvec_fast declines; set by
# matkron._kron when it is imported.
_checked_kron_matvec = None


def kron_matvec(factors, x, *, out=None):
    """(F1 ⊗ … ⊗ Fk) x; the public matkron.kron_matvec, documented in matkron/_kron.py.

    Canonical operands run here without any Python-level step; the rest go to the
    validating implementation.
    """
    result = _matvec_fast(factors, x, False, out)
    if result is None:
        return _checked_kron_matvec(factors, x, out=out)
    return result


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
    cdef Py_ssize_t n_in = 1, n_out = 1, itemsize
    cdef int k, i, type_num, ndim
    cdef char* ws = stack_ws
    cdef Operand xo, oo
    cdef Plan plan
    cdef cnp.ndarray xa, result, heap_ws
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
        _plan(factors, k, &xo, &oo, type_num, &plan)
    else:
        _plan(factors, k, &xo, NULL, type_num, &plan)
    if plan.largest > BLAS_INT_MAX:
        return None
    if out is None:
        shape[0] = n_out
        shape[1] = xo.m
        result = cnp.PyArray_EMPTY(ndim, shape, type_num, ndim == 2 and not plan.out_c_kind)
        _load_operand(result, &oo)
    if plan.need > STACK_WORKSPACE_BYTES:
        heap_ws = <cnp.ndarray>_workspace(plan.need)
        ws = cnp.PyArray_BYTES(heap_ws)
    watch_start(&watch, _main_thread)
    with nogil:
        _execute_any(type_num, factors, k, &plan, &xo, &oo, ws, 1, False, &watch)
    if watch.stopped:
        raise_pending()
    return result


# The kernel's limit on the factors of one Kronecker product, for the Python layer.
MAX_KRON_FACTORS = MAX_FACTORS


def _set_planner(variants=None, own_kernel=None):
    """Constrain the planner, for tests and measurements (not thread-safe; not public).

    `variants` is a sequence of "normal", "rotate-front", "rotate-back" or None (any), one
    per step, or None for no constraint; products no plan with those variants can compute
    are planned freely. `own_kernel` False makes real steps call BLAS, True restores
    the own kernel where the CPU has it (plans are cached apart for the two). Returns
    whether the own kernel is in use. Cached plans are dropped when `variants` changes.
    """
    global _forced_steps, _own_kernel
    names = {"normal": NORMAL, "rotate-front": ROTATE_FRONT, "rotate-back": ROTATE_BACK,
             None: -1}
    cdef int i
    if variants is None:
        changed = _forced_steps > 0
        _forced_steps = 0
    else:
        changed = True
        if len(variants) > MAX_FACTORS:
            raise ValueError(f"_set_planner: at most {MAX_FACTORS} steps")
        for i, v in enumerate(variants):
            _forced_variant[i] = names[v]
        _forced_steps = len(variants)
    if own_kernel is not None:
        _own_kernel = bool(own_kernel) and matkron_kron_step_available() != 0
    if changed:
        for i in range(PLAN_CACHE_SLOTS):
            _plan_cache[i].key_len = 0
    return bool(_own_kernel)
