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
# Where a measuring planner goes: plan_product (at the end) is the one entry. It computes
# the key (_plan_key) and consults the cache; a measuring mode would, on a repeated key,
# enumerate the admissible candidates (_make_plan with the attempt/variant/own choices
# pinned, as _forced_variant pins variants), time each through _kron_exec_cy.execute, and
# store the fastest in the cache entry (CachedPlan), from which wisdom is saved and loaded.
# The cost model (_step_cost, _own_step_cost with the registry row's parameters) is what
# the estimate mode uses and what a calibration would refit.

cimport numpy as cnp
from libc.math cimport ceil
from libc.string cimport memcmp, memcpy

from _blas cimport blas_matrix, max_size as _max
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
# A registry row forced for its dtype (a reference row, say), or NULL.
cdef const matkron_step_kernel* _forced_row = NULL
cdef int _forced_variant[MAX_FACTORS]
cdef int _forced_steps = 0


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
    (the result goes through the workspace). A padded x (F kind with a right-hand-side
    stride above its length) cannot be rotated at step 0, a padded out is written only by
    a normal step. Returns the cost (or -1 if none).
    """
    cdef Search states[2][MAX_STATES]
    cdef int counts[2]
    cdef Py_ssize_t dims[MAX_MODES]
    cdef int ids[MAX_MODES]
    cdef int end_perm[MAX_MODES]
    cdef int cur = 0, nxt, t, s, f, nc, jj, u, v, nmodes = k + 1, variant, w
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
                if kernel != NULL and matkron_step_kernel_admits(kernel, factors[f].p,
                                                                 factors[f].q):
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
        kind_perm(k, False, end_perm)
        is_f = _same_layout(states[cur][s].perm, end_perm, nmodes, dims)
        kind_perm(k, True, end_perm)
        is_c = _same_layout(states[cur][s].perm, end_perm, nmodes, dims)
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
                   itemsize, kernel, plan)
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


cdef enum:
    PLAN_CACHE_SLOTS = 64
    PLAN_KEY_LEN = 3 * MAX_FACTORS + 6


cdef struct CachedPlan:
    Py_ssize_t key[PLAN_KEY_LEN]
    int key_len
    Plan plan

# Plans of recent products, so a repeated product skips the search. Read and written only
# with the GIL held.
cdef CachedPlan _plan_cache[PLAN_CACHE_SLOTS]


cdef int _plan_key(const Factor* factors, int k, Py_ssize_t m, Py_ssize_t n_out, int flags,
                   int type_num, const matkron_step_kernel* kernel,
                   Py_ssize_t* key) noexcept nogil:
    """The cache key of a product (everything a plan depends on); returns its length."""
    cdef int i, n = 6
    key[0] = k
    key[1] = type_num
    key[2] = m
    key[3] = flags
    key[4] = n_out
    key[5] = <Py_ssize_t>kernel     # the registry row (or NULL: BLAS only)
    for i in range(k):
        key[n] = factors[i].p
        key[n + 1] = factors[i].q
        key[n + 2] = factors[i].data == NULL
        n += 3
    return n


cdef void plan_product(const Factor* factors, int k, const Operand* x, const Operand* out,
                       int type_num, Plan* plan) noexcept:
    """Plan one product, from the cache when the same shapes and layouts were seen.

    `out` NULL means the caller allocates out in plan.out_c_kind. Call with the GIL held.

    The planner's one entry (the entry points and kron_plan all come here): a measuring
    mode hooks in at the cache miss/hit below. On a miss it stores the estimate
    (_make_plan); on a later hit of the same key it would time the admissible candidates
    and overwrite entry.plan with the fastest, keeping a flag in CachedPlan that the key
    was measured. Wisdom is the list of (key, plan) entries, with plan.kernel saved as
    its registry row's name.
    """
    cdef Py_ssize_t key[PLAN_KEY_LEN]
    cdef Py_ssize_t itemsize = (4 if type_num == cnp.NPY_FLOAT32 else
                                16 if type_num == cnp.NPY_COMPLEX128 else 8)
    cdef int dtype = _registry_dtype(type_num)
    cdef const matkron_step_kernel* kernel = NULL
    cdef int flags = _layout_flags(x, out, itemsize), i, n, slot
    cdef size_t digest = 2166136261, prime = 16777619      # FNV-1a, wrapping in size_t
    cdef CachedPlan* entry
    # The registered kernel the planner may use for this type (NULL: BLAS only).
    if _forced_row != NULL and _forced_row.dtype == dtype:
        kernel = _forced_row
    elif _own_kernel:
        kernel = matkron_step_kernel_for(dtype)
    n = _plan_key(factors, k, x.m, x.n if out == NULL else out.n, flags, type_num, kernel,
                  key)
    for i in range(n):
        digest = (digest ^ <size_t>key[i]) * prime
    slot = <int>(digest % PLAN_CACHE_SLOTS)
    entry = &_plan_cache[slot]
    if entry.key_len == n and memcmp(entry.key, key, n * sizeof(Py_ssize_t)) == 0:
        plan[0] = entry.plan
        return
    _make_plan(factors, k, x, out, flags, itemsize, kernel, plan)
    memcpy(entry.key, key, n * sizeof(Py_ssize_t))
    entry.key_len = n
    entry.plan = plan[0]


cdef bint constrain(const int* variants, int nsteps, int own_kernel, int row) noexcept:
    """Pin the variants of the first `nsteps` steps (-1: any; nsteps 0: none); with
    `own_kernel` 0 or 1 forbid or allow the registered kernels (-1: unchanged); with `row`
    >= 0 force that registry row for its dtype (-1: force none, -2: unchanged). Drops the
    cached plans; returns whether a registered kernel other than a reference one is in
    use. Call with the GIL held."""
    global _forced_steps, _own_kernel, _forced_row
    cdef int i
    cdef const matkron_step_kernel* r
    for i in range(nsteps):
        _forced_variant[i] = variants[i]
    _forced_steps = nsteps
    if own_kernel >= 0:
        _own_kernel = own_kernel != 0
    if row >= 0:
        _forced_row = matkron_step_kernel_row(row)
    elif row == -1:
        _forced_row = NULL
    for i in range(PLAN_CACHE_SLOTS):
        _plan_cache[i].key_len = 0
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
