# The executor of the Kronecker kernel: runs a Plan (_kron_plan_cy) on described operands
# (_kron_cy), step by step, by BLAS GEMMs through strides or by the registered kernel the
# plan names for a step, with the intermediate tensors in the caller's workspace. It
# decides nothing: every choice is the plan's.
#
# Where matkron's own threads go: a step is a loop of independent products, over the
# `n_outer` outer indices of _apply_normal (one GEMM each), the `rest` dimension of a
# rotated step, the columns of a by-column plan (the loop in _execute), or the m columns
# of any GEMM. A pool would split those ranges inside _execute / _apply_normal, each
# worker calling BLAS single-threaded and the own kernel on its share (the kernels take
# any sub-range of columns: `n` and the output/input offsets), with one pack per worker
# (plan.pack elements each, after the buffers) and one Watch tick per share.

from libc.string cimport memcpy

cimport numpy as cnp

from _blas cimport blas_t, complex64_t, complex128_t, max_size as _max
from _blas_int cimport blas_int
from _interrupt cimport CALL_WORK, Watch, gemm_watched, watch_tick
from _kron_types cimport (
    MAX_MODES,
    NORMAL,
    ROTATE_BACK,
    ROTATE_FRONT,
    Factor,
    Operand,
    Plan,
    kind_perm,
    matkron_step_kernel,
    move_mode,
)

cnp.import_array()


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


cdef inline bint _own_step_run(const matkron_step_kernel* kernel, Py_ssize_t p,
                               Py_ssize_t q, Py_ssize_t n, blas_t alpha, const blas_t* x,
                               Py_ssize_t x_sk, Py_ssize_t x_sr, blas_t beta, blas_t* y,
                               Py_ssize_t y_si, Py_ssize_t y_sr, void* pack,
                               Py_ssize_t pack_size) noexcept nogil:
    """Run a step on the registered kernel when `pack` holds its factor (the plan chose
    the kernel for this step); whether it ran (a kernel may decline a layout)."""
    if pack == NULL:
        return False
    return kernel.step(p, q, n, &alpha, x, x_sk, x_sr, &beta, y, y_si, y_sr, pack,
                       pack_size) == 0


cdef bint _apply_normal(const Factor* f, const blas_t* x, const Py_ssize_t* xstr,
                        blas_t* y, const Py_ssize_t* ystr, const Py_ssize_t* dims,
                        int nmodes, int j, blas_t alpha, blas_t beta,
                        const matkron_step_kernel* kernel, void* pack, Py_ssize_t pack_size,
                        Watch* watch) noexcept nogil:
    """Y = alpha X ×_j F + beta Y, the mode staying in place; modes 0..j-1 contiguous from
    unit stride in both tensors.

    `dims` are the input dimensions (dims[j] = q; the output has p there). Strides are in
    elements. The modes after the GEMM's own are walked by index arithmetic. A real step
    with `pack` (holding F packed, in pack_size elements) runs `kernel` instead of BLAS. Returns whether `watch` stopped it.
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
        if j == 0 and _own_step_run(kernel, p, q, cols, alpha, x + off_x, 1, ldx, beta, y + off_y,
                                    1, ldy, pack, pack_size):
            if watch_tick(watch, <double>p * q * cols + CALL_WORK):
                return True
            continue
        if j > 0 and _own_step_run(kernel, p, q, L, alpha, x + off_x, ldx, 1, beta, y + off_y, ldy,
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
    kind_perm(k, plan.x_c_kind, perm)
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
            move_mode(perm, nmodes, f, variant == ROTATE_BACK, yperm)
        dims[f] = fac.p
        if last and plan.out_direct:
            dst = <blas_t*>out.data
            kind_perm(k, plan.out_c_kind, out_perm)
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
                plan.kernel.pack(fac.p, fac.q, fac.data, 1, fac.ld, pack)
            else:
                plan.kernel.pack(fac.p, fac.q, fac.data, fac.ld, 1, pack)
        if variant == NORMAL:
            if _apply_normal(fac, src, cxs, dst, cys, cdims, nc, jj, alpha_step, beta,
                             plan.kernel, pack, plan.pack, watch):
                return
        else:
            rest = 1
            for u in range(nc):
                if u != jj:
                    rest *= cdims[u]
            flipped = c'T' if fac.trans == c'N' else c'N'
            # The products below, by the own kernel where planned.
            if variant == ROTATE_FRONT:
                done = _own_step_run(plan.kernel, fac.p, fac.q, rest, alpha_step, src, 1,
                                     _max(cxs[1], 1), beta, dst, rest, 1, pack, plan.pack)
            else:
                done = _own_step_run(plan.kernel, fac.p, fac.q, rest, alpha_step, src,
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


cdef void execute(int type_num, const Factor* factors, int k, const Plan* plan,
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
