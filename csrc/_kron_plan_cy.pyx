# The planner of the Kronecker kernel: for one product (factor shapes, layouts of x and
# out, dtype), the order of the factors, the variant of every step, which steps run a
# registered own kernel instead of BLAS, and the workspace the executor needs.
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
# For the order of fewest flops, the planner picks the variants with the lowest estimated
# time (a cost model: BLAS calls, flops at a rate that depends on the GEMM's rows, and the
# registered kernel's own cost parameters) that leave the result in the layout of `out`
# (or in a layout numpy can hold, when the kernel allocates `out`). Plans are cached by
# their key (shapes, layouts, dtype, kernel).
#
# plan_product (in "the measuring planner" below) is the one entry: it computes the key
# (_plan_key), consults the cache, and on a repeated key hands out, one call at a time,
# the admissible candidates (_make_plan with choices pinned by _pins and
# _forced_variant), which the entry points time around _kron_exec_cy.execute and report
# to plan_timed; the fastest is kept in the cache entry (CachedPlan), from which wisdom
# is saved and into which it is loaded (load_wisdom_entry).
# The cost model (_step_cost, _own_step_cost with the registry row's parameters) is what
# the estimate mode uses and what a calibration would refit.

cimport numpy as cnp
from libc.math cimport ceil
from libc.string cimport memcmp, memcpy

from _blas cimport BLAS_INT_MAX, blas_matrix, max_size as _max
from _blas_int cimport blas_int
from matkron._threads_cy cimport num_threads, usable_threads
from _kron_types cimport (
    MATKRON_C64,
    MATKRON_C128,
    MATKRON_F32,
    MATKRON_F64,
    MAX_FACTORS,
    MAX_MODES,
    NORMAL,
    ROTATE_BACK,
    ROTATE_FRONT,
    Factor,
    Operand,
    Plan,
    kind_perm,
    matkron_step_kernel,
    matkron_step_kernel_admits,
    matkron_step_kernel_available,
    matkron_step_kernel_count,
    matkron_step_kernel_for,
    matkron_step_kernel_row,
    move_mode,
)

cnp.import_array()

cdef extern from *:
    # Exact comparisons of flop keys: products of three dimensions below 2**31.
    ctypedef long long int128_t "__int128"


cdef enum:
    MAX_STATES = 64              # layouts the planner tracks per step
    BY_COLUMN_MIN_BYTES = 262144 # one column's tensor from which columns run one at a time
    BY_COLUMN_COPY_MIN_BYTES = 6291456  # ... and all of x, when x must be copied for it


# Whether real steps may run a registered own kernel (where one is available), and the
# variants the planner must use at each step (-1: any). For tests and measurements; set
# with the GIL held (see constrain).
cdef bint _own_kernel = True
# A registry row forced for its dtype (a reference row, say), or NULL: the planner runs it
# at every step it admits.
cdef const matkron_step_kernel* _forced_row = NULL
cdef int _forced_variant[MAX_FACTORS]
cdef int _forced_steps = 0


cdef struct Pins:
    # Choices the measuring planner pins to enumerate candidates and to rebuild a saved
    # plan (with the variants pinned in _forced_variant). Set with the GIL held.
    bint strict                  # no fallback to free planning: a plan has cost -1
    bint order_set               # pin the order of the steps and the kind step 0 reads
    int nsteps
    int order[MAX_FACTORS]
    bint start_c
    int by_column                # -1: the estimate's rule; 0 or 1: pinned
    int own_steps                # own[t] for t < own_steps: -1 any, 0 BLAS, 1 own kernel
    char own[MAX_FACTORS]

cdef Pins _pins
_pins.by_column = -1


cdef struct Search:
    # One candidate layout sequence of the planner.
    int perm[MAX_MODES]          # mode ids in memory order, fastest first (rhs id = k)
    char variant[MAX_FACTORS]
    char own[MAX_FACTORS]
    double cost


cdef inline int _registry_dtype(int type_num) noexcept nogil:
    return (MATKRON_F32 if type_num == cnp.NPY_FLOAT32 else
            MATKRON_F64 if type_num == cnp.NPY_FLOAT64 else
            MATKRON_C64 if type_num == cnp.NPY_COMPLEX64 else MATKRON_C128)


# -- order -------------------------------------------------------------------------------

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


cdef inline double _step_cost(double calls, double multiplies, double rows,
                              bint rotated) noexcept nogil:
    """Estimated microseconds of one BLAS step: call overhead plus its flops, at a rate
    that is lower when the GEMM has few rows (measured with SciPy's OpenBLAS, a 64-row
    GEMM runs at about 0.6x the speed of a tall one).

    A tiny bias makes a normal step win a tie with a rotated one.
    """
    return (calls * 0.2 + multiplies * 5e-5 * (1 + min(0.6, 20 / rows))
            + (0.001 if rotated else 0))


cdef inline double _own_step_cost(const matkron_step_kernel* kernel, double calls,
                                  double multiplies, double vector, double copied,
                                  bint front_rotated, bint rotated) noexcept nogil:
    """Estimated microseconds of one step of a registered kernel, in units of the BLAS of
    the same type (see _step_cost), from the row's cost parameters (registry.h).

    A tile has up to tile_vectors vectors of `lanes`, so a vector dimension that does not
    fill its last vector wastes lanes, and with one vector the additions wait on each
    other. `copied` elements of the input are copied first (see the row's `copies`).
    """
    cdef double lanes = kernel.lanes
    cdef double short = min(1.0, lanes / vector)
    cdef double used = 1
    if vector < kernel.tile_vectors * lanes:
        used = vector / (ceil(vector / lanes) * lanes)
    return (calls * kernel.cost.per_call
            + multiplies * kernel.cost.per_multiply
            * (1 + kernel.cost.short_vector * short * short) / used
            * (kernel.cost.rotated_front if front_rotated else 1)
            + copied * kernel.cost.per_copied + (0.001 if rotated else 0))


cdef double _search(const Factor* factors, int k, const int* order, int nsteps,
                    Py_ssize_t m, bint start_c_kind, bint x_padded, int out_kinds,
                    bint out_padded, double copy_penalty,
                    const matkron_step_kernel* kernel, Search* best,
                    bint* end_c_kind, bint* end_direct) noexcept nogil:
    """Cheapest variants for a fixed order, from a start kind to an allowed end kind.

    Costs are estimated microseconds (see _step_cost). `out_kinds` is a bit set of end
    kinds written in place: 1 for F, 2 for C. An end in another kind costs `copy_penalty`
    (the result goes through the workspace), or is not admitted when that is negative. A
    padded x (F kind with a right-hand-side stride above its length) cannot be rotated at
    step 0, a padded out is written only by a normal step. Returns the cost (or -1 if
    none).
    """
    cdef Search states[2][MAX_STATES]
    cdef int counts[2]
    cdef Py_ssize_t dims[MAX_MODES]
    cdef int ids[MAX_MODES]
    cdef int end_perm[MAX_MODES]
    cdef int cur = 0, nxt, t, s, f, nc, jj, u, v, nmodes = k + 1, variant, w, own_pin
    cdef double calls, cost, best_cost = -1, size, rows, vector, copied, step, own_step
    cdef bint merged, is_f, is_c, direct
    cdef Search cand
    for u in range(k):
        dims[u] = factors[u].q
    dims[k] = m
    kind_perm(k, start_c_kind, states[0][0].perm)
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
                    move_mode(states[cur][s].perm, nmodes, f, variant == ROTATE_BACK, cand.perm)
                cand.variant = states[cur][s].variant
                cand.variant[t] = variant
                cand.own = states[cur][s].own
                step = _step_cost(calls, size * factors[f].p, rows, variant != NORMAL)
                cand.own[t] = False
                own_pin = _pins.own[t] if t < _pins.own_steps else -1
                if own_pin != 0 and kernel != NULL and matkron_step_kernel_admits(
                        kernel, factors[f].p, factors[f].q):
                    # The own kernel's vectors run along p when the factor's mode is at
                    # the front, else along the modes before it (read at that stride).
                    copied = 0
                    if (variant == NORMAL and jj == 0) or variant == ROTATE_FRONT:
                        vector = factors[f].p
                    else:
                        vector = size / factors[f].q if variant == ROTATE_BACK else rows
                        if kernel.copies(factors[f].p, <Py_ssize_t>vector):
                            copied = size
                    own_step = _own_step_cost(kernel, calls, size * factors[f].p, vector,
                                              copied, variant == ROTATE_FRONT,
                                              variant != NORMAL)
                    # A row forced by a test runs every step it admits, as a pin would.
                    if own_step < step or own_pin == 1 or kernel == _forced_row:
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
        kind_perm(k, False, end_perm)
        is_f = _same_layout(states[cur][s].perm, end_perm, nmodes, dims)
        kind_perm(k, True, end_perm)
        is_c = _same_layout(states[cur][s].perm, end_perm, nmodes, dims)
        if not (is_f or is_c):
            continue
        direct = (is_f and out_kinds & 1) or (is_c and out_kinds & 2)
        if not direct and copy_penalty < 0:
            continue
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
    cdef Py_ssize_t m = x.m, ld
    cdef char trans
    cdef int flags = 0
    # F kind: the tensor is the column-major n-by-m matrix BLAS reads in place.
    if blas_matrix(x.n, m, x.s0, x.s1, itemsize, &trans, &ld) and trans == c'N':
        flags |= X_F | (X_PADDED if m > 1 and x.s1 != x.n * itemsize else 0)
    elif m > 1 and x.s1 == itemsize and x.s0 == m * itemsize:
        flags |= X_C
    if out == NULL:
        return flags | OUT_NEW | OUT_F | OUT_C
    if blas_matrix(out.n, m, out.s0, out.s1, itemsize, &trans, &ld) and trans == c'N':
        flags |= OUT_F | (OUT_PADDED if m > 1 and out.s1 != out.n * itemsize else 0)
    if (m == 1 and flags & OUT_F) or (out.s1 == itemsize and out.s0 == m * itemsize):
        flags |= OUT_C
    return flags


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
                     int flags, Py_ssize_t itemsize, const matkron_step_kernel* kernel,
                     Plan* plan) noexcept nogil:
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
    cdef bint copy_x = not (flags & X_F), by_column
    plan.ticket = -1
    if _pins.by_column >= 0:
        by_column = _pins.by_column == 1 and m > 1 and flags & OUT_F
    else:
        by_column = (m > 1 and flags & OUT_F and x.n * itemsize >= BY_COLUMN_MIN_BYTES
                     and (not copy_x or (x.n * m * itemsize >= BY_COLUMN_COPY_MIN_BYTES
                                         and _memory_bound_steps(factors, k) > 1)))
    if by_column:
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
                   itemsize, kernel, plan)
        if plan.cost >= 0 and plan.x_direct and plan.out_direct:
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
    if flags & OUT_NEW and out_kinds != 3:
        # A new result in one given order (a measurement's alternatives): written in
        # place, never copied from another order.
        copy_penalty = -1
    plan.cost = -1
    plan.by_column = False
    plan.column_copy = 0
    for attempt in range(4):
        nsteps = _flop_order(factors, k, order, attempt & 1)
        start_c = (attempt & 2) != 0
        if (attempt & 1 and nsteps < 2) or (start_c and m == 1):
            continue
        if _pins.order_set and (start_c != _pins.start_c or nsteps != _pins.nsteps
                                or memcmp(order, _pins.order, nsteps * sizeof(int)) != 0):
            continue
        # x is read in place in its own kind, or copied into the other one (which can pay
        # for itself when it lets every GEMM have many rows).
        direct = (x_f and not start_c) or (x_c and start_c)
        cost = _search(factors, k, order, nsteps, m, start_c, x_padded and direct,
                       out_kinds, out_padded, copy_penalty, kernel, &found, &end_c,
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
    if plan.cost < 0 and _pins.strict:
        return
    if plan.cost < 0 and _forced_steps > 0:
        # No plan has the forced variants: plan freely.
        forced = _forced_steps
        _forced_steps = 0
        _make_plan(factors, k, x, out, flags, itemsize, kernel, plan)
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
    plan.kernel = kernel
    size = x.n * m
    for i in range(plan.nsteps):
        if plan.own[i]:
            # Room for a block of rows of X only where the step can copy one.
            plan.pack = _max(plan.pack, kernel.pack_size(
                factors[plan.order[i]].p, factors[plan.order[i]].q, size))
        size = size // factors[plan.order[i]].q * factors[plan.order[i]].p
    if plan.pack:
        plan.need = 2 * largest * itemsize + plan.pack * itemsize


# -- the measuring planner ----------------------------------------------------------------
#
# A key (_plan_key: factor shapes and identities, the layout flags of x and out, the
# columns, the length of out, the dtype and the registered kernel the planner may use)
# is planned by the cost model when first seen (ENTRY_ESTIMATED). When it repeats in
# "measure" mode, the admissible candidates are enumerated (_candidates: the estimate and
# up to MAX_CANDIDATES - 1 alternatives, by estimated cost) into a measuring session, and
# each following call of the key runs one of them, timed by the caller around the
# executor (timer_start / timer_stop, without the GIL) and recorded with plan_timed. Once
# every candidate has TIMINGS timings, the fastest by its minimum is kept
# (ENTRY_MEASURED): these entries are the wisdom that is exported and imported. Products
# estimated below _measure_threshold microseconds keep the estimate (ENTRY_FINAL), as do
# keys with a single candidate. A new 2-D result is allocated in the memory order of the
# plan that runs: the estimate's on the first call, either while candidates run, the
# measured plan's after (until the key leaves the cache and is planned again).

cdef enum:
    PLAN_CACHE_WAYS = 4
    PLAN_CACHE_SETS = 64
    PLAN_CACHE_SLOTS = PLAN_CACHE_WAYS * PLAN_CACHE_SETS
    PLAN_KEY_LEN = 3 * MAX_FACTORS + 7
    MAX_KEY_THREADS = 64         # a product uses at most 64 threads (the executor's cap)
    MAX_CANDIDATES = 6           # the estimate and the best alternatives by estimate
    TIMINGS = 2                  # timings of each candidate; the minimum counts
    MEASURE_SESSIONS = 16        # keys being measured at once
    STALE_USES = 64              # planner calls after which an unused session is taken over
    # States of a cache entry, by what eviction spares last (see _victim).
    ENTRY_EMPTY = 0
    ENTRY_FINAL = 1              # the estimate, not measured (small, forced or no choice)
    ENTRY_ESTIMATED = 2          # the estimate; measured when the key repeats
    ENTRY_MEASURING = 3          # candidates being timed in a session
    ENTRY_MEASURED = 4           # the fastest candidate (wisdom)


cdef struct CachedPlan:
    Py_ssize_t key[PLAN_KEY_LEN]
    int key_len
    int state
    int session                  # the measuring session (-1: none)
    unsigned int generation      # changes whenever the slot takes another key
    unsigned long long used      # when the key was last planned (least recently used)
    Plan plan


cdef struct Session:
    # The candidates of one key being measured.
    int slot                     # the cache slot (-1: the session is free)
    int ncand
    int handed                   # candidates handed out so far (round robin)
    Plan cand[MAX_CANDIDATES]
    double best[MAX_CANDIDATES]  # the fastest time of each, in seconds
    int timed[MAX_CANDIDATES]

# Plans of recent products, so a repeated product skips the search: a set-associative
# cache (a key hashes to a set of PLAN_CACHE_WAYS slots) that evicts estimates before
# measured plans, so measuring does not thrash. Read and written only with the GIL held.
cdef CachedPlan _plan_cache[PLAN_CACHE_SLOTS]
cdef Session _sessions[MEASURE_SESSIONS]
cdef unsigned int _generation = 0
cdef unsigned long long _uses = 0
# The planner's mode ("measure": True) and the estimated microseconds below which a
# product keeps its estimate (timing noise would dominate).
cdef bint _measuring = True
cdef double _measure_threshold = 20.0

# The last measurement that finished, for tests (_last_measurement).
cdef Session _last_session
_last_session.ncand = 0
cdef int _last_choice = -1

cdef int _s
for _s in range(MEASURE_SESSIONS):
    _sessions[_s].slot = -1
for _s in range(PLAN_CACHE_SLOTS):
    _plan_cache[_s].session = -1


cdef int _plan_key(const Factor* factors, int k, Py_ssize_t m, Py_ssize_t n_out, int flags,
                   int type_num, const matkron_step_kernel* kernel, int threads,
                   Py_ssize_t* key) noexcept nogil:
    """The cache key of a product (everything a plan depends on, including matkron's thread
    count, which changes the measured times); returns its length."""
    cdef int i, n = 7
    key[0] = k
    key[1] = type_num
    key[2] = m
    key[3] = flags
    key[4] = n_out
    key[5] = <Py_ssize_t>kernel     # the registry row (or NULL: BLAS only)
    key[6] = threads
    for i in range(k):
        key[n] = factors[i].p
        key[n + 1] = factors[i].q
        key[n + 2] = factors[i].data == NULL
        n += 3
    return n


cdef inline int _key_threads() noexcept nogil:
    """matkron's thread count as a product can use it, capped at the cores (the key of its
    measured times: asking for 8 threads on 2 cores measures what 2 threads do)."""
    cdef int n = usable_threads(num_threads())
    return n if n < MAX_KEY_THREADS else MAX_KEY_THREADS


cdef inline Py_ssize_t _itemsize(int type_num) noexcept nogil:
    return (4 if type_num == cnp.NPY_FLOAT32 else
            16 if type_num == cnp.NPY_COMPLEX128 else 8)


cdef const matkron_step_kernel* _kernel_for(int type_num) noexcept:
    """The registered kernel the planner may use for this type (NULL: BLAS only)."""
    cdef int dtype = _registry_dtype(type_num)
    if _forced_row != NULL and _forced_row.dtype == dtype:
        return _forced_row
    if _own_kernel:
        return matkron_step_kernel_for(dtype)
    return NULL


cdef int _set_of(const Py_ssize_t* key, int n) noexcept:
    cdef size_t digest = 2166136261, prime = 16777619      # FNV-1a, wrapping in size_t
    cdef int i
    for i in range(n):
        digest = (digest ^ <size_t>key[i]) * prime
    return <int>(digest % PLAN_CACHE_SETS)


cdef int _lookup(const Py_ssize_t* key, int n) noexcept:
    """The slot holding `key`, or -1."""
    cdef int base = _set_of(key, n) * PLAN_CACHE_WAYS, w
    cdef CachedPlan* entry
    for w in range(base, base + PLAN_CACHE_WAYS):
        entry = &_plan_cache[w]
        if (entry.state != ENTRY_EMPTY and entry.key_len == n
                and memcmp(entry.key, key, n * sizeof(Py_ssize_t)) == 0):
            return w
    return -1


cdef void _clear_slot(int slot) noexcept:
    global _generation
    cdef CachedPlan* entry = &_plan_cache[slot]
    if entry.session >= 0:
        _sessions[entry.session].slot = -1
        entry.session = -1
    entry.state = ENTRY_EMPTY
    entry.key_len = 0
    _generation += 1
    entry.generation = _generation


cdef int _victim(const Py_ssize_t* key, int n) noexcept:
    """A slot of key's set for it, emptied: an empty one, else the least recently used of
    the lowest state (estimates go before keys being measured, which go before measured
    plans)."""
    cdef int base = _set_of(key, n) * PLAN_CACHE_WAYS, w, best = base
    for w in range(base, base + PLAN_CACHE_WAYS):
        if (_plan_cache[w].state < _plan_cache[best].state
                or (_plan_cache[w].state == _plan_cache[best].state
                    and _plan_cache[w].used < _plan_cache[best].used)):
            best = w
    _clear_slot(best)
    memcpy(_plan_cache[best].key, key, n * sizeof(Py_ssize_t))
    _plan_cache[best].key_len = n
    return best


cdef inline double _total_cost(const Plan* plan, Py_ssize_t m) noexcept nogil:
    """Estimated microseconds of the whole product (a by-column plan's cost is a column's)."""
    return plan.cost * m if plan.by_column else plan.cost


cdef bint _same_plan(const Plan* a, const Plan* b) noexcept nogil:
    cdef int i
    if (a.nsteps != b.nsteps or a.x_direct != b.x_direct or a.x_c_kind != b.x_c_kind
            or a.out_direct != b.out_direct or a.out_c_kind != b.out_c_kind
            or a.by_column != b.by_column or (a.column_copy != 0) != (b.column_copy != 0)):
        return False
    for i in range(a.nsteps):
        if (a.order[i] != b.order[i] or a.variant[i] != b.variant[i]
                or a.own[i] != b.own[i]):
            return False
    return True


cdef void _clear_pins() noexcept:
    global _forced_steps
    _pins.strict = False
    _pins.order_set = False
    _pins.by_column = -1
    _pins.own_steps = 0
    _forced_steps = 0


cdef void _consider(const Plan* trial, Py_ssize_t m, Plan* cands, int* n) noexcept:
    """Add `trial` to the candidates (cands[0] is the estimate, the others sorted by
    estimated cost) unless it failed, is already there, or is costlier than all of a full
    list."""
    cdef int i, at
    cdef double cost = _total_cost(trial, m)
    if trial.cost < 0:
        return
    # One list holds plans writing one memory order of a new 2-D result (that of cands[0]);
    # _candidates merges the lists of the two orders.
    if m > 1 and trial.out_c_kind != cands[0].out_c_kind:
        return
    for i in range(n[0]):
        if _same_plan(trial, &cands[i]):
            return
    at = n[0]
    while at > 1 and _total_cost(&cands[at - 1], m) > cost:
        at -= 1
    if at >= MAX_CANDIDATES:
        return
    i = n[0] if n[0] < MAX_CANDIDATES else MAX_CANDIDATES - 1
    while i > at:
        cands[i] = cands[i - 1]
        i -= 1
    cands[at] = trial[0]
    if n[0] < MAX_CANDIDATES:
        n[0] += 1


cdef int _alternatives(const Factor* factors, int k, const Operand* x, const Operand* out,
                       int flags, Py_ssize_t itemsize, const matkron_step_kernel* kernel,
                       const Plan* estimate, Plan* cands) noexcept:
    """`estimate`, then the cheapest (by estimate) of the alternatives the search produces
    with one choice pinned and the same memory order of a new result: columns one at a
    time or all at once; each order of equal-flop factors and each kind x is read in
    (copying x into the other kind first); each other variant of each step; and with a
    registered kernel, the estimate with every step on BLAS, BLAS only, or the own kernel
    at a step where it was not chosen. Returns how many (at most MAX_CANDIDATES). Call
    with the GIL held and no variants forced (constrain)."""
    global _forced_steps
    cdef int n = 1, attempt, t, v, i
    cdef Plan trial
    cands[0] = estimate[0]
    _clear_pins()
    _pins.strict = True
    # Columns one at a time or all at once.
    _pins.by_column = 0 if estimate.by_column else 1
    _make_plan(factors, k, x, out, flags, itemsize, kernel, &trial)
    _consider(&trial, x.m, cands, &n)
    _pins.by_column = estimate.by_column
    # Every order of equal-flop factors, from x in either kind.
    for attempt in range(4):
        _pins.nsteps = _flop_order(factors, k, _pins.order, attempt & 1)
        _pins.start_c = (attempt & 2) != 0
        _pins.order_set = True
        _make_plan(factors, k, x, out, flags, itemsize, kernel, &trial)
        _consider(&trial, x.m, cands, &n)
    _pins.order_set = False
    # Each other variant of each step.
    for t in range(estimate.nsteps):
        for i in range(t):
            _forced_variant[i] = -1
        for v in range(3):
            if v == estimate.variant[t]:
                continue
            _forced_variant[t] = v
            _forced_steps = t + 1
            _make_plan(factors, k, x, out, flags, itemsize, kernel, &trial)
            _consider(&trial, x.m, cands, &n)
    _forced_steps = 0
    if kernel != NULL:
        # BLAS at every step: the estimate's plan itself (its order, kinds and variants,
        # so its result's layout, which a new 2-D result must keep), and the cheapest
        # plan; or the own kernel at a step that estimated BLAS faster.
        _pins.own_steps = estimate.nsteps
        for i in range(estimate.nsteps):
            _pins.own[i] = 0
            _forced_variant[i] = estimate.variant[i]
        _pins.nsteps = estimate.nsteps
        memcpy(_pins.order, estimate.order, estimate.nsteps * sizeof(int))
        _pins.start_c = estimate.x_c_kind
        _pins.order_set = True
        _forced_steps = estimate.nsteps
        _make_plan(factors, k, x, out, flags, itemsize, kernel, &trial)
        _consider(&trial, x.m, cands, &n)
        _forced_steps = 0
        _pins.order_set = False
        _make_plan(factors, k, x, out, flags, itemsize, kernel, &trial)
        _consider(&trial, x.m, cands, &n)
        for t in range(estimate.nsteps):
            for i in range(estimate.nsteps):
                _pins.own[i] = -1
            if not estimate.own[t]:
                _pins.own[t] = 1
                _make_plan(factors, k, x, out, flags, itemsize, kernel, &trial)
                _consider(&trial, x.m, cands, &n)
    _clear_pins()
    return n


cdef int _candidates(const Factor* factors, int k, const Operand* x, const Operand* out,
                     int flags, Py_ssize_t itemsize, const matkron_step_kernel* kernel,
                     const Plan* estimate, Plan* cands) noexcept:
    """The plans a measurement times: the estimate and its alternatives (_alternatives);
    for a new 2-D result also the best plan writing it in the other memory order and that
    plan's alternatives, since which order a product writes faster is what the cost model
    knows least (it misjudged it by 4-11 % on shapes of `bench kron` and `bench multi`).
    The estimate comes first, the best plan of the other order second, then the rest by
    estimated cost. Returns how many (at most MAX_CANDIDATES). Call with the GIL held and
    no variants forced (constrain)."""
    cdef Plan other_best
    cdef Plan other[MAX_CANDIDATES]
    cdef Plan same[MAX_CANDIDATES]
    cdef int n_same, n_other = 0, n, i, j
    cdef int other_flags = flags & ~(OUT_C if estimate.out_c_kind else OUT_F)
    cdef Py_ssize_t m = x.m
    n_same = _alternatives(factors, k, x, out, flags, itemsize, kernel, estimate, same)
    if flags & OUT_NEW and m > 1:
        _make_plan(factors, k, x, out, other_flags, itemsize, kernel, &other_best)
        if other_best.cost >= 0 and other_best.out_c_kind != estimate.out_c_kind:
            n_other = _alternatives(factors, k, x, out, other_flags, itemsize, kernel,
                                    &other_best, other)
    cands[0] = same[0]
    n = 1
    if n_other:
        cands[1] = other[0]
        n = 2
    i, j = 1, 1
    while n < MAX_CANDIDATES and (i < n_same or j < n_other):
        if j >= n_other or (i < n_same and _total_cost(&same[i], m)
                            <= _total_cost(&other[j], m)):
            cands[n] = same[i]
            i += 1
        else:
            cands[n] = other[j]
            j += 1
        n += 1
    return n


cdef void _abandon(int slot) noexcept:
    """Put the key being measured in `slot` back to its estimate and free its session; its
    candidates still running are not recorded (a new generation)."""
    global _generation
    cdef CachedPlan* entry = &_plan_cache[slot]
    _sessions[entry.session].slot = -1
    entry.session = -1
    entry.state = ENTRY_ESTIMATED
    _generation += 1
    entry.generation = _generation


cdef void _start_measuring(int slot, const Factor* factors, int k, const Operand* x,
                           const Operand* out, int flags, Py_ssize_t itemsize,
                           const matkron_step_kernel* kernel) noexcept:
    """Open a measuring session for the estimated entry in `slot` (if one is free)."""
    cdef CachedPlan* entry = &_plan_cache[slot]
    cdef Session* session
    cdef int i, s
    for s in range(MEASURE_SESSIONS):
        if _sessions[s].slot < 0:
            break
    else:
        # All sessions busy: take over the one whose key has gone longest unused, if no
        # call has asked for it in STALE_USES planner calls (a key measured in a loop with
        # others keeps its session; one left half measured does not hold it for ever).
        s = -1
        for i in range(MEASURE_SESSIONS):
            if (_uses - _plan_cache[_sessions[i].slot].used > STALE_USES
                    and (s < 0 or _plan_cache[_sessions[i].slot].used
                         < _plan_cache[_sessions[s].slot].used)):
                s = i
        if s < 0:
            return  # the key stays estimated, and is measured later
        _abandon(_sessions[s].slot)
    session = &_sessions[s]
    session.ncand = _candidates(factors, k, x, out, flags, itemsize, kernel, &entry.plan,
                                session.cand)
    if session.ncand < 2:
        entry.state = ENTRY_FINAL
        return
    session.slot = slot
    session.handed = 0
    for i in range(session.ncand):
        session.timed[i] = 0
        session.best[i] = 0
    entry.session = s
    entry.state = ENTRY_MEASURING


cdef void plan_product(const Factor* factors, int k, const Operand* x, const Operand* out,
                       int type_num, Plan* plan) noexcept:
    """Plan one product, from the cache when the same key was seen.

    `out` NULL means the caller allocates out in plan.out_c_kind. Call with the GIL held.
    The planner's one entry for products that run (kron_plan inspects by inspect_plan). A
    miss stores the estimate; while the key is measured, the plan is a candidate with a
    ticket (plan.ticket >= 0), which the caller times (timer_start / timer_stop) and
    reports to plan_timed.
    """
    global _uses
    cdef Py_ssize_t key[PLAN_KEY_LEN]
    cdef Py_ssize_t itemsize = _itemsize(type_num)
    cdef const matkron_step_kernel* kernel = _kernel_for(type_num)
    cdef int flags = _layout_flags(x, out, itemsize), n, slot, c
    cdef CachedPlan* entry
    cdef Session* session
    n = _plan_key(factors, k, x.m, x.n if out == NULL else out.n, flags, type_num, kernel,
                  _key_threads(), key)
    slot = _lookup(key, n)
    _uses += 1
    if slot >= 0:
        entry = &_plan_cache[slot]
        entry.used = _uses
        if _measuring and entry.state == ENTRY_ESTIMATED:
            _start_measuring(slot, factors, k, x, out, flags, itemsize, kernel)
        if _measuring and entry.state == ENTRY_MEASURING:
            session = &_sessions[entry.session]
            c = session.handed % session.ncand
            session.handed += 1
            plan[0] = session.cand[c]
            plan.ticket = slot
            plan.ticket_generation = entry.generation
            plan.ticket_candidate = c
            return
        plan[0] = entry.plan
        return
    _make_plan(factors, k, x, out, flags, itemsize, kernel, plan)
    slot = _victim(key, n)
    entry = &_plan_cache[slot]
    entry.used = _uses
    entry.plan = plan[0]
    entry.state = (ENTRY_ESTIMATED if _forced_steps == 0 and _forced_row == NULL
                   and _total_cost(plan, x.m) >= _measure_threshold else ENTRY_FINAL)


cdef void inspect_plan(const Factor* factors, int k, const Operand* x, const Operand* out,
                       int type_num, Plan* plan) noexcept:
    """The plan plan_product would run for a key without a measurement going on: the
    cached one (the estimate, or the measured plan), or a new estimate, which is not
    cached. Changes nothing. Call with the GIL held."""
    cdef Py_ssize_t key[PLAN_KEY_LEN]
    cdef Py_ssize_t itemsize = _itemsize(type_num)
    cdef const matkron_step_kernel* kernel = _kernel_for(type_num)
    cdef int flags = _layout_flags(x, out, itemsize), n, slot
    n = _plan_key(factors, k, x.m, x.n if out == NULL else out.n, flags, type_num, kernel,
                  _key_threads(), key)
    slot = _lookup(key, n)
    if slot >= 0:
        plan[0] = _plan_cache[slot].plan
    else:
        _make_plan(factors, k, x, out, flags, itemsize, kernel, plan)


cdef void plan_timed(const Plan* plan) noexcept:
    """Record the time of a candidate that ran (plan.seconds, see timer_stop); nothing for
    other plans, or when its key left the cache or finished measuring meanwhile. When every
    candidate has TIMINGS times, keep the fastest. Call with the GIL held."""
    global _last_session, _last_choice
    cdef CachedPlan* entry
    cdef Session* session
    cdef int c, i, best = 0
    if plan.ticket < 0:
        return
    entry = &_plan_cache[plan.ticket]
    if (entry.generation != plan.ticket_generation or entry.state != ENTRY_MEASURING
            or entry.session < 0):
        return
    session = &_sessions[entry.session]
    c = plan.ticket_candidate
    if session.timed[c] == 0 or plan.seconds < session.best[c]:
        session.best[c] = plan.seconds
    session.timed[c] += 1
    for i in range(session.ncand):
        if session.timed[i] < TIMINGS:
            return
        if session.best[i] < session.best[best]:
            best = i
    _last_session = session[0]
    _last_choice = best
    entry.plan = session.cand[best]
    entry.plan.ticket = -1
    entry.state = ENTRY_MEASURED
    session.slot = -1
    entry.session = -1


cdef void _forget() noexcept:
    cdef int i
    for i in range(PLAN_CACHE_SLOTS):
        _clear_slot(i)


cdef bint constrain(const int* variants, int nsteps, int own_kernel, int row) noexcept:
    """Pin the variants of the first `nsteps` steps (-1: any; nsteps 0: none); with
    `own_kernel` 0 or 1 forbid or allow the registered kernels (-1: unchanged); with `row`
    >= 0 force that registry row for its dtype, at every step it admits (-1: force none,
    -2: unchanged). Drops the cached plans (measured ones too) when pinned variants or
    the forced row change, since plans made under them share the keys of free plans;
    allowing or forbidding the kernels keeps them (the kernel is part of the key), so
    that a measurement switching BLAS-only products in between does not restart the
    measuring of the others. Returns whether a registered kernel other than a reference
    one is in use. Products are not measured while variants or a row are forced. Call with
    the GIL held."""
    global _forced_steps, _own_kernel, _forced_row
    cdef int i
    cdef const matkron_step_kernel* r
    cdef const matkron_step_kernel* forced_row = _forced_row
    cdef bint forget = nsteps > 0 or _forced_steps > 0
    for i in range(nsteps):
        _forced_variant[i] = variants[i]
    _forced_steps = nsteps
    if own_kernel >= 0:
        _own_kernel = own_kernel != 0
    if row >= 0:
        forced_row = matkron_step_kernel_row(row)
    elif row == -1:
        forced_row = NULL
    if forced_row != _forced_row:
        _forced_row = forced_row
        forget = True
    if forget:
        _forget()
    if _own_kernel:
        for i in range(matkron_step_kernel_count()):
            r = matkron_step_kernel_row(i)
            if not r.reference and matkron_step_kernel_available(r):
                return True
    return False


cdef const matkron_step_kernel* kernel_row(int i, bint* available) noexcept:
    """Row i of the kernel registry (NULL past the end) and whether it runs here."""
    cdef const matkron_step_kernel* row = matkron_step_kernel_row(i)
    if row != NULL:
        available[0] = matkron_step_kernel_available(row) != 0
    return row



# -- the Python layer's interface (matkron/_planner.py) -----------------------------------

_DTYPES = {cnp.NPY_FLOAT32: "float32", cnp.NPY_FLOAT64: "float64",
           cnp.NPY_COMPLEX64: "complex64", cnp.NPY_COMPLEX128: "complex128"}
_STATES = {ENTRY_FINAL: "final", ENTRY_ESTIMATED: "estimated",
           ENTRY_MEASURING: "measuring", ENTRY_MEASURED: "measured"}


def set_measuring(bint measure):
    """Measure repeated keys (True) or keep the estimates (False)."""
    global _measuring
    _measuring = measure


def get_measuring():
    """Whether the planner measures repeated keys."""
    return bool(_measuring)


def forget():
    """Drop every cached plan, measured or estimated, and every measurement going on."""
    _forget()


def _set_measure_threshold(double microseconds):
    """Measure products estimated at `microseconds` or more (for tests); returns the old
    threshold. Cached plans are dropped."""
    global _measure_threshold
    old = _measure_threshold
    _measure_threshold = microseconds
    _forget()
    return old


def _planner_stats():
    """The number of cached keys in each state: final, estimated, measuring, measured."""
    counts = dict.fromkeys(_STATES.values(), 0)
    for i in range(PLAN_CACHE_SLOTS):
        if _plan_cache[i].state != ENTRY_EMPTY:
            counts[_STATES[_plan_cache[i].state]] += 1
    return counts


cdef dict _describe(const Plan* plan):
    return {"order": [plan.order[t] for t in range(plan.nsteps)],
            "variants": [int(plan.variant[t]) for t in range(plan.nsteps)],
            "own": [bool(plan.own[t]) for t in range(plan.nsteps)],
            "x_c_kind": bool(plan.x_c_kind),
            "by_column": bool(plan.by_column),
            "x_direct": bool(plan.x_direct),
            "out_direct": bool(plan.out_direct),
            "out_c_kind": bool(plan.out_c_kind)}


def _last_measurement():
    """For tests: the candidates of the last measurement that finished (plans as in
    wisdom_entries, with "seconds": the fastest of its timings and "estimate": its
    estimated microseconds, a column's for a by-column plan), and the index of the one kept (-1: none yet)."""
    cands = []
    for i in range(_last_session.ncand):
        d = _describe(&_last_session.cand[i])
        d["seconds"] = _last_session.best[i]
        d["estimate"] = _last_session.cand[i].cost
        cands.append(d)
    return cands, _last_choice


def wisdom_entries():
    """The measured plans: a list of dicts, each a key (dtype, columns, layout flags,
    rows (of out, or of x when the product allocates out), kernel row name or None, factors as [p, q, identity]) and its plan
    (order, variants as 0 normal / 1 rotate-front / 2 rotate-back, own, x_c_kind,
    by_column, x_direct, out_direct, out_c_kind)."""
    cdef CachedPlan* entry
    cdef const matkron_step_kernel* row
    cdef const Plan* plan
    cdef int i, t, k
    entries = []
    for i in range(PLAN_CACHE_SLOTS):
        entry = &_plan_cache[i]
        if entry.state != ENTRY_MEASURED:
            continue
        plan = &entry.plan
        k = <int>entry.key[0]
        row = <const matkron_step_kernel*>entry.key[5]
        entries.append({
            "dtype": _DTYPES[<int>entry.key[1]],
            "columns": entry.key[2],
            "flags": entry.key[3],
            "rows": entry.key[4],
            "threads": entry.key[6],
            "kernel": None if row == NULL else row.name.decode(),
            "factors": [[entry.key[7 + 3 * t], entry.key[8 + 3 * t],
                         bool(entry.key[9 + 3 * t])] for t in range(k)],
            **_describe(plan),
        })
    return entries


cdef void _synthetic_operand(Py_ssize_t n, Py_ssize_t m, bint f_kind, bint c_kind,
                             bint padded, Py_ssize_t itemsize, Operand* op) noexcept:
    """An operand with the given layout (data unused: the planner reads layouts only)."""
    op.data = NULL
    op.n = n
    op.m = m
    if f_kind:
        op.s0 = itemsize
        op.s1 = (n + (1 if padded else 0)) * itemsize
    elif c_kind:
        op.s0 = m * itemsize
        op.s1 = itemsize
    else:
        op.s0 = 2 * itemsize
        op.s1 = 2 * n * itemsize
    if n == 1:
        op.s0 = itemsize
    if m == 1:
        op.s1 = n * itemsize


def _field(dict e, str name, kind):
    """e[name], checked to be of `kind` (int, bool or list); ValueError naming it if not."""
    if name not in e:
        raise ValueError(f"wisdom entry: missing field {name!r}")
    value = e[name]
    if type(value) is not kind:
        raise ValueError(f"wisdom entry: {name!r} must be of type {kind.__name__}; "
                         f"got {value!r}")
    # Checked while a Python int: the C fields it goes into are at most 32 bits.
    if kind is int and not -BLAS_INT_MAX <= value <= BLAS_INT_MAX:
        raise ValueError(f"wisdom entry: {name!r} must be an integer of at most "
                         f"{BLAS_INT_MAX} in magnitude; got {value!r}")
    return value


def load_wisdom_entry(dict e, bint store=True):
    """Validate one entry of wisdom_entries() and store its plan as measured (with `store`
    False, only validate).

    Raises ValueError (naming the field) when a field has the wrong type or range.
    Returns False, storing nothing, when the plan is not one the planner can produce for
    the key (the plan rebuilt with its choices pinned differs), or the key names a kernel
    row this process would not use; True when stored.
    """
    cdef Factor factors[MAX_FACTORS]
    cdef Operand xo, oo
    cdef Plan plan
    cdef Py_ssize_t key[PLAN_KEY_LEN]
    cdef Py_ssize_t n_in = 1, n_out = 1, itemsize, m, key_rows
    cdef int k, t, flags, type_num = -1, n, slot, i, threads
    cdef int saved_variant[MAX_FACTORS]
    cdef int saved_steps
    cdef const matkron_step_kernel* kernel = NULL
    cdef const matkron_step_kernel* row
    cdef bint used_pins_ok
    cdef char dummy = 0
    global _forced_steps
    for num, name in _DTYPES.items():
        if e.get("dtype") == name:
            type_num = num
    if type_num < 0:
        raise ValueError(f"wisdom entry: 'dtype' must be one of {sorted(_DTYPES.values())}; "
                         f"got {e.get('dtype')!r}")
    itemsize = _itemsize(type_num)
    m = _field(e, "columns", int)
    flags = _field(e, "flags", int)
    rows = _field(e, "rows", int)
    threads = _field(e, "threads", int)
    if not 1 <= threads <= MAX_KEY_THREADS:
        raise ValueError(f"wisdom entry: 'threads' must be in 1..{MAX_KEY_THREADS}; "
                         f"got {threads}")
    # Keys count the threads a product can use (_key_threads): a plan saved while asking
    # for more threads than the cores ran on the cores.
    threads = usable_threads(threads)
    fac = _field(e, "factors", list)
    k = len(fac)
    if not 1 <= k <= MAX_FACTORS:
        raise ValueError(f"wisdom entry: 'factors' must hold 1 to {MAX_FACTORS} factors; "
                         f"got {k}")
    for t in range(k):
        f = fac[t]
        if (type(f) is not list or len(f) != 3 or type(f[0]) is not int
                or type(f[1]) is not int or type(f[2]) is not bool
                or not 1 <= f[0] <= BLAS_INT_MAX or not 1 <= f[1] <= BLAS_INT_MAX
                or (f[2] and f[0] != f[1])):
            raise ValueError(f"wisdom entry: factor {t} must be [p, q, identity] with "
                             f"1 <= p, q < 2**31 (p = q for the identity); got {f!r}")
        factors[t].p = f[0]
        factors[t].q = f[1]
        factors[t].data = NULL if f[2] else &dummy
        factors[t].trans = c'N'
        factors[t].ld = <blas_int>f[0]
        n_in *= f[1]
        n_out *= f[0]
        if n_in > BLAS_INT_MAX or n_out > BLAS_INT_MAX:
            raise ValueError("wisdom entry: the factors' shapes exceed the BLAS integer range")
    if not 1 <= m <= BLAS_INT_MAX // _max(n_in, n_out):
        raise ValueError(f"wisdom entry: 'columns' must be in 1..{BLAS_INT_MAX // _max(n_in, n_out)}"
                         f" for these factors; got {m}")
    if not 0 <= flags < 2 * OUT_NEW:
        raise ValueError(f"wisdom entry: 'flags' must be in 0..{2 * OUT_NEW - 1}; got {flags}")
    # The key's rows: those of out, or of x when the product allocates out.
    key_rows = n_in if flags & OUT_NEW else n_out
    if rows != key_rows:
        raise ValueError(f"wisdom entry: 'rows' is {rows}; the factors and flags give "
                         f"{key_rows}")
    name = e.get("kernel")
    if name is not None:
        if type(name) is not str:
            raise ValueError(f"wisdom entry: 'kernel' must be a row name or null; got {name!r}")
        for i in range(matkron_step_kernel_count()):
            row = matkron_step_kernel_row(i)
            if row.name.decode() == name:
                kernel = row
        if kernel == NULL:
            return False            # a row this build does not have
    if kernel != _kernel_for(type_num):
        return False                # never the key of a product here: no use
    order = _field(e, "order", list)
    variants = _field(e, "variants", list)
    own = _field(e, "own", list)
    nsteps = len(order)
    if (len(variants) != nsteps or len(own) != nsteps or nsteps > k
            or any(type(v) is not int or not 0 <= v <= 2 for v in variants)
            or any(type(o) is not bool for o in own)
            or any(type(o) is not int or not 0 <= o < k for o in order)):
        raise ValueError("wisdom entry: 'order', 'variants' (0, 1 or 2) and 'own' (booleans) "
                         "must be lists of one length, at most the number of factors")
    want = {name: _field(e, name, bool) for name in
            ("x_c_kind", "by_column", "x_direct", "out_direct", "out_c_kind")}

    # The operands of the key, and their flags as the planner computes them.
    _synthetic_operand(n_in, m, flags & X_F, flags & X_C, flags & X_PADDED, itemsize, &xo)
    if not flags & OUT_NEW:
        _synthetic_operand(n_out, m, flags & OUT_F, flags & OUT_C and not flags & OUT_F,
                           flags & OUT_PADDED, itemsize, &oo)
    if _layout_flags(&xo, NULL if flags & OUT_NEW else &oo, itemsize) != flags:
        return False

    # Rebuild the plan with every choice pinned: an admissible plan is rebuilt unchanged.
    saved_steps = _forced_steps
    for t in range(MAX_FACTORS):
        saved_variant[t] = _forced_variant[t]
    _clear_pins()
    _pins.strict = True
    _pins.order_set = True
    _pins.nsteps = nsteps
    for t in range(nsteps):
        _pins.order[t] = order[t]
        _forced_variant[t] = variants[t]
        _pins.own[t] = 1 if own[t] else 0
    _forced_steps = nsteps
    _pins.own_steps = nsteps
    _pins.start_c = want["x_c_kind"]
    _pins.by_column = want["by_column"]
    # A new result in the order the entry names (measuring may have chosen either).
    _make_plan(factors, k, &xo, NULL if flags & OUT_NEW else &oo,
               flags & ~(OUT_F if want["out_c_kind"] else OUT_C) if flags & OUT_NEW else flags,
               itemsize, kernel, &plan)
    _clear_pins()
    _forced_steps = saved_steps
    for t in range(MAX_FACTORS):
        _forced_variant[t] = saved_variant[t]
    if plan.cost < 0 or plan.nsteps != nsteps:
        return False
    for t in range(nsteps):
        if (plan.order[t] != order[t] or plan.variant[t] != variants[t]
                or bool(plan.own[t]) != own[t]):
            return False
    if (bool(plan.x_c_kind) != want["x_c_kind"] or bool(plan.by_column) != want["by_column"]
            or bool(plan.x_direct) != want["x_direct"]
            or bool(plan.out_direct) != want["out_direct"]
            or bool(plan.out_c_kind) != want["out_c_kind"]):
        return False
    if not store:
        return True
    n = _plan_key(factors, k, m, key_rows, flags, type_num, kernel, threads, key)
    slot = _lookup(key, n)
    if slot >= 0:
        _clear_slot(slot)
        memcpy(_plan_cache[slot].key, key, n * sizeof(Py_ssize_t))
        _plan_cache[slot].key_len = n
    else:
        slot = _victim(key, n)
    _plan_cache[slot].plan = plan
    _plan_cache[slot].state = ENTRY_MEASURED
    _plan_cache[slot].used = _uses
    return True
