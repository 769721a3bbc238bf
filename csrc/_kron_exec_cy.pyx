# The executor of the Kronecker kernel: runs a Plan (_kron_plan_cy) on described operands
# (_kron_cy), step by step, by BLAS GEMMs through strides or by the registered kernel the
# plan names for a step, with the intermediate tensors in the caller's workspace. It
# decides nothing about the plan: every choice of order, variant and kernel is the plan's.
#
# matkron's own threads (matkron/_threads_cy.pxd): a product of enough flops runs on
# t = threads_for(flops, num_threads()) threads of matkron's pool (exec_threads); t = 1
# runs the serial code below unchanged. With t > 1 each step is forked and joined in turn
# (steps stay in order). A step is n_outer independent products (one GEMM each, or the
# own kernel on a range of columns), split into about TASKS_PER_THREAD * t tasks, so that
# a thread preempted on a busy core holds up little:
#
#   - n_outer large enough: ranges of the outer indices (the outer-index loop of
#     _apply_normal; for a 2-D x in Fortran order the columns are among them);
#   - otherwise each product along a free (non-contracted) dimension of its GEMM: the
#     larger of M and N, or, for an own step, the kernel's columns (`n`: the GEMM's
#     columns for a normal front step and a rotated back step, its rows for a normal step
#     on a later mode and a rotated front step, the `rest` dimension of rotated steps).
#     A sub-block is a plain single-threaded GEMM at pointer offsets, and the contracted
#     dimension is never split, so each output element is summed in the same order by
#     the same code as far as the BLAS itself does not change its kernel with the block
#     size (OpenBLAS does: small-matrix and GEMV paths for thin blocks);
#   - a by-column plan splits its column loop (each thread runs whole columns in a
#     workspace of its own) when there are at least two columns per thread, and its
#     steps otherwise.
#
# Each thread has its own pack for own steps (plan.pack elements, packed on its first
# chunk of the step; thread 0's is the serial one), after the plan's workspace: see
# exec_workspace. Only thread 0 (the caller) ticks the Watch; a stop ends the other
# threads' remaining chunks. Every product holds the BLAS serial guard while it runs, so
# SciPy's BLAS never starts its own threads on matkron's account; only products too
# small for any BLAS to thread skip it (MIN_SPLIT_FLOPS).

from libc.string cimport memcpy

cimport numpy as cnp

from _blas cimport blas_t, blas_type_num, complex64_t, complex128_t, max_size as _max
from _blas_int cimport blas_int
from _interrupt cimport (CALL_WORK, Watch, flag_get, flag_set, gemm_watched, watch_tick,
                        watch_worker)
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
from matkron._threads_cy cimport (
    blas_serial_enter,
    blas_serial_leave,
    num_threads,
    pool_run,
    threads_for,
)

cnp.import_array()

cdef enum:
    MAX_EXEC_THREADS = 64  # threads one product uses at most (per-thread flags on the stack)
    TASKS_PER_THREAD = 4   # tasks per thread of a split step: a late thread holds up little
    SPLIT_ALIGN = 8        # a split free dimension is cut at multiples of this (when longer)
    ALIGN_BYTES = 64       # per-thread packs and workspaces start at multiples of this
    COPY_ROWS = 64         # _scale_copy's block of rows

# A product below this many flops stays on one thread without asking the policy (no
# calibration, no pool): a split cannot win there (the pool's hand-off takes microseconds).
# It also runs without the BLAS serial guard (about 50 ns, a twentieth of a 4x4 ⊗ 4x4
# matvec): none of its GEMMs reaches the size from which a BLAS starts threads (OpenBLAS:
# M N K > 262144; MKL and BLIS: larger), so SciPy's BLAS pool is never woken by it.
cdef double MIN_SPLIT_FLOPS = 1e5

# Test hook (force_threads): > 0 runs every product on this many threads, however small.
cdef int _forced_threads = 0


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


cdef struct CopyJob:
    int type_num
    const char* src
    Py_ssize_t ss0, ss1
    char* dst
    Py_ssize_t ds0, ds1, n0, n1, rows_per_task
    double complex alpha
    bint accumulate


cdef void _copy_task(void* ctx, int task, int thread) noexcept nogil:
    cdef CopyJob* job = <CopyJob*>ctx
    cdef Py_ssize_t lo = task * job.rows_per_task
    cdef Py_ssize_t rows = job.n0 - lo if job.n0 - lo < job.rows_per_task else job.rows_per_task
    cdef const char* src = job.src + lo * job.ss0
    cdef char* dst = job.dst + lo * job.ds0
    if job.type_num == cnp.NPY_FLOAT32:
        _scale_copy[float](src, job.ss0, job.ss1, dst, job.ds0, job.ds1, rows, job.n1,
                           <float>job.alpha.real, job.accumulate)
    elif job.type_num == cnp.NPY_FLOAT64:
        _scale_copy[double](src, job.ss0, job.ss1, dst, job.ds0, job.ds1, rows, job.n1,
                            job.alpha.real, job.accumulate)
    elif job.type_num == cnp.NPY_COMPLEX64:
        _scale_copy[complex64_t](src, job.ss0, job.ss1, dst, job.ds0, job.ds1, rows, job.n1,
                                 <complex64_t>job.alpha, job.accumulate)
    else:
        _scale_copy[complex128_t](src, job.ss0, job.ss1, dst, job.ds0, job.ds1, rows,
                                  job.n1, job.alpha, job.accumulate)


cdef void _copy(const char* src, Py_ssize_t ss0, Py_ssize_t ss1, char* dst, Py_ssize_t ds0,
                Py_ssize_t ds1, Py_ssize_t n0, Py_ssize_t n1, blas_t alpha, bint accumulate,
                int threads) noexcept nogil:
    """_scale_copy on `threads` threads, in blocks of rows (a copy of x or of the result
    into or out of the workspace is a pass over memory that one core does not saturate;
    left serial it caps the speed-up of a split product)."""
    cdef CopyJob job
    cdef Py_ssize_t want = <Py_ssize_t>threads * TASKS_PER_THREAD
    if threads <= 1 or n0 < 2 * COPY_ROWS:
        _scale_copy(src, ss0, ss1, dst, ds0, ds1, n0, n1, alpha, accumulate)
        return
    job.type_num = blas_type_num(alpha)
    job.src = src
    job.ss0 = ss0
    job.ss1 = ss1
    job.dst = dst
    job.ds0 = ds0
    job.ds1 = ds1
    job.n0 = n0
    job.n1 = n1
    # Whole blocks of COPY_ROWS rows per task (_scale_copy's cache-line blocking).
    job.rows_per_task = _round_up((n0 + want - 1) // want, COPY_ROWS)
    job.alpha = alpha
    job.accumulate = accumulate
    pool_run(<int>((n0 + job.rows_per_task - 1) // job.rows_per_task), _copy_task, &job,
             threads)


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


cdef inline int _normal_geometry(const Py_ssize_t* dims, const Py_ssize_t* xstr,
                                 const Py_ssize_t* ystr, int nmodes, int j, Py_ssize_t p,
                                 Py_ssize_t q, Py_ssize_t* width, Py_ssize_t* ldx,
                                 Py_ssize_t* ldy) noexcept nogil:
    """The GEMMs of a normal step along mode j: `width` (the GEMM's columns for j = 0, its
    rows L for j > 0), the leading dimensions, and the first mode walked by index
    arithmetic (returned), shared by the serial and the split executor."""
    cdef int u, first_outer
    cdef Py_ssize_t cols = 1, L = 1
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
        width[0] = cols
        ldx[0] = xstr[1] if cols > 1 else q
        ldy[0] = ystr[1] if cols > 1 else p
    else:
        for u in range(j):
            L *= dims[u]
        first_outer = j + 1
        width[0] = L
        # A single column has no column stride: BLAS still wants ld >= rows.
        ldx[0] = xstr[j] if q > 1 else L
        ldy[0] = ystr[j] if p > 1 else L
    return first_outer


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
    first_outer = _normal_geometry(dims, xstr, ystr, nmodes, j, p, q,
                                   &cols if j == 0 else &L, &ldx, &ldy)
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


# -- matkron's threads: one step split into tasks ---------------------------------------

cdef inline Py_ssize_t _round_up(Py_ssize_t n, Py_ssize_t to) noexcept nogil:
    return (n + to - 1) // to * to


cdef inline Py_ssize_t _pack_stride(const Plan* plan, Py_ssize_t itemsize) noexcept nogil:
    """Bytes between the packs of consecutive threads."""
    return _round_up(plan.pack * itemsize, ALIGN_BYTES)


cdef struct StepJob:
    # One step as n_outer products at offsets given by the outer modes
    # (first_outer..nmodes-1 of dims, with strides xstr / ystr, in elements) ...
    int type_num
    Py_ssize_t n_outer
    int first_outer
    int nmodes
    Py_ssize_t dims[MAX_MODES]
    Py_ssize_t xstr[MAX_MODES]
    Py_ssize_t ystr[MAX_MODES]
    # ... each the GEMM C(M, N) = alpha op(A) op(B) + beta C, x being A or B, C in y ...
    char ta
    char tb
    blas_int M
    blas_int N
    blas_int K
    const char* a
    blas_int lda
    const char* b
    blas_int ldb
    char* c
    blas_int ldc
    bint x_is_a
    # ... or the own kernel on columns 0..n-1 (n is the GEMM's M or N: own_dim).
    bint own
    const Factor* fac
    const matkron_step_kernel* kernel
    Py_ssize_t x_sk
    Py_ssize_t x_sr
    Py_ssize_t y_si
    Py_ssize_t y_sr
    char* packs              # thread i's pack at packs + i * pack_stride
    Py_ssize_t pack_stride
    Py_ssize_t pack_size     # elements (plan.pack)
    char packed[MAX_EXEC_THREADS]
    # The split: split_dim 1 cuts M, 2 cuts N; outer_per_task > 0 gives each task that
    # many outer indices and whole products, else a task is one chunk of one product.
    int split_dim
    Py_ssize_t outer_per_task
    Py_ssize_t chunk
    Py_ssize_t n_chunks
    double complex alpha
    double complex beta
    Watch* watch
    bint stopped


cdef void _step_chunk(StepJob* job, int task, int thread, blas_t alpha,
                      blas_t beta) noexcept nogil:
    """The products (or the chunk of one product) of task `task`, on thread `thread`."""
    cdef Py_ssize_t r0, r1, r, rem, c, u, lo, hi, off_x, off_y, full
    cdef Py_ssize_t itemsize = sizeof(blas_t)
    cdef Watch idle
    cdef Watch* watch = job.watch
    cdef const blas_t* a
    cdef const blas_t* b
    cdef blas_t* cc
    cdef const blas_t* xp
    cdef blas_t* yp
    cdef blas_int mm, nn
    cdef void* pack = NULL
    if flag_get(&job.stopped):
        return
    if thread != 0:
        # Only the caller looks at signals; a worker follows it (see _interrupt.pxd).
        watch_worker(&idle, &job.stopped if job.watch.main else NULL)
        watch = &idle
    full = job.M if job.split_dim == 1 else job.N
    if job.outer_per_task > 0:
        r0 = task * job.outer_per_task
        r1 = r0 + job.outer_per_task
        if r1 > job.n_outer:
            r1 = job.n_outer
        lo = 0
        hi = full
    else:
        r0 = task // job.n_chunks
        r1 = r0 + 1
        lo = (task % job.n_chunks) * job.chunk
        hi = lo + job.chunk
        if hi > full:
            hi = full
    if job.own:
        pack = job.packs + thread * job.pack_stride
        if not job.packed[thread]:
            if job.fac.trans == c'N':
                job.kernel.pack(job.fac.p, job.fac.q, job.fac.data, 1, job.fac.ld, pack)
            else:
                job.kernel.pack(job.fac.p, job.fac.q, job.fac.data, job.fac.ld, 1, pack)
            job.packed[thread] = 1
    for r in range(r0, r1):
        off_x = 0
        off_y = 0
        rem = r
        for u in range(job.first_outer, job.nmodes):
            c = rem % job.dims[u]
            rem = rem // job.dims[u]
            off_x += c * job.xstr[u]
            off_y += c * job.ystr[u]
        xp = <const blas_t*>(job.a if job.x_is_a else job.b) + off_x
        yp = <blas_t*>job.c + off_y
        if pack != NULL and _own_step_run(job.kernel, job.fac.p, job.fac.q, hi - lo, alpha,
                                          xp + lo * job.x_sr, job.x_sk, job.x_sr, beta,
                                          yp + lo * job.y_sr, job.y_si, job.y_sr, pack,
                                          job.pack_size):
            if watch_tick(watch, <double>job.fac.p * job.fac.q * (hi - lo) + CALL_WORK):
                flag_set(&job.stopped)
                return
            continue
        a = xp if job.x_is_a else <const blas_t*>job.a
        b = <const blas_t*>job.b if job.x_is_a else xp
        cc = yp
        mm = job.M
        nn = job.N
        if job.split_dim == 1:
            a += lo if job.ta == c'N' else lo * job.lda
            cc += lo
            mm = <blas_int>(hi - lo)
        else:
            b += lo * job.ldb if job.tb == c'N' else lo
            cc += lo * job.ldc
            nn = <blas_int>(hi - lo)
        if gemm_watched(watch, job.ta, job.tb, mm, nn, job.K, alpha, a, job.lda, b, job.ldb,
                        beta, cc, job.ldc):
            flag_set(&job.stopped)
            return


cdef void _step_task(void* ctx, int task, int thread) noexcept nogil:
    cdef StepJob* job = <StepJob*>ctx
    if job.type_num == cnp.NPY_FLOAT32:
        _step_chunk[float](job, task, thread, <float>job.alpha.real, <float>job.beta.real)
    elif job.type_num == cnp.NPY_FLOAT64:
        _step_chunk[double](job, task, thread, job.alpha.real, job.beta.real)
    elif job.type_num == cnp.NPY_COMPLEX64:
        _step_chunk[complex64_t](job, task, thread, <complex64_t>job.alpha,
                                 <complex64_t>job.beta)
    else:
        _step_chunk[complex128_t](job, task, thread, job.alpha, job.beta)


cdef bint _run_step(StepJob* job, int threads) noexcept nogil:
    """Split `job` (its products described, split_dim set) into tasks and run them on
    `threads` threads. Whether the watch stopped it."""
    cdef Py_ssize_t want = <Py_ssize_t>threads * TASKS_PER_THREAD, full, per, n_tasks
    full = job.M if job.split_dim == 1 else job.N
    if job.n_outer >= want or full <= 1:
        job.outer_per_task = (job.n_outer + want - 1) // want
        n_tasks = (job.n_outer + job.outer_per_task - 1) // job.outer_per_task
    else:
        job.outer_per_task = 0
        per = (want + job.n_outer - 1) // job.n_outer
        job.chunk = (full + per - 1) // per
        if job.chunk > SPLIT_ALIGN:
            job.chunk = _round_up(job.chunk, SPLIT_ALIGN)
        job.n_chunks = (full + job.chunk - 1) // job.chunk
        n_tasks = job.n_outer * job.n_chunks
    job.stopped = False
    if n_tasks > 2147483647:
        n_tasks = 2147483647  # (never: a product's dimensions fit the BLAS integer)
    pool_run(<int>n_tasks, _step_task, job, threads)
    return job.stopped


cdef bint _split_step(const Factor* fac, char variant, const blas_t* x, const Py_ssize_t* xstr,
                      blas_t* y, const Py_ssize_t* ystr, const Py_ssize_t* dims, int nmodes,
                      int j, blas_t alpha, blas_t beta, const Plan* plan, bint own,
                      char* packs, int threads, Watch* watch) noexcept nogil:
    """One step (as _apply_normal or the rotated products of _execute) on `threads`
    threads; the same products, in the same operand layout, cut into pieces. Whether the
    watch stopped it."""
    cdef StepJob job
    cdef Py_ssize_t L = 1, cols = 1, n_outer = 1, ldx, ldy, rest = 1
    cdef blas_int p = <blas_int>fac.p, q = <blas_int>fac.q
    cdef int u, first_outer = nmodes
    cdef char flipped = c'T' if fac.trans == c'N' else c'N'
    job.type_num = blas_type_num(alpha)
    job.alpha = alpha
    job.beta = beta
    job.watch = watch
    job.fac = fac
    job.kernel = plan.kernel
    job.own = own
    job.packs = packs
    job.pack_stride = _pack_stride(plan, sizeof(blas_t))
    job.pack_size = plan.pack
    for u in range(threads):
        job.packed[u] = 0
    job.K = q
    if variant == NORMAL:
        first_outer = _normal_geometry(dims, xstr, ystr, nmodes, j, p, q,
                                       &cols if j == 0 else &L, &ldx, &ldy)
        if j == 0:
            # Y(p, cols) = F @ X(q, cols); the kernel's columns are the GEMM's.
            job.ta, job.tb, job.M, job.N = fac.trans, c'N', p, <blas_int>cols
            job.a, job.lda = fac.data, fac.ld
            job.b, job.ldb = <const char*>x, <blas_int>_max(ldx, 1)
            job.x_is_a = False
            job.x_sk, job.x_sr, job.y_si, job.y_sr = 1, ldx, 1, ldy
            job.split_dim = 2 if own or cols >= p else 1
        else:
            # Y(L, p) = X(L, q) @ F.T; the kernel's columns are the GEMM's rows.
            job.ta, job.tb, job.M, job.N = c'N', flipped, <blas_int>L, p
            job.a, job.lda = <const char*>x, <blas_int>_max(ldx, 1)
            job.b, job.ldb = fac.data, fac.ld
            job.x_is_a = True
            job.x_sk, job.x_sr, job.y_si, job.y_sr = ldx, 1, ldy, 1
            job.split_dim = 1 if own or L >= p else 2
        job.ldc = <blas_int>_max(ldy, 1)
        for u in range(first_outer, nmodes):
            n_outer *= dims[u]
    else:
        for u in range(nmodes):
            if u != j:
                rest *= dims[u]
        if variant == ROTATE_FRONT:
            # Y(rest, p) = X(q, rest).T @ F.T; the kernel's columns are the GEMM's rows.
            job.ta, job.tb, job.M, job.N = c'T', flipped, <blas_int>rest, p
            job.a, job.lda = <const char*>x, <blas_int>_max(xstr[1], 1)
            job.b, job.ldb = fac.data, fac.ld
            job.ldc = <blas_int>rest
            job.x_is_a = True
            job.x_sk, job.x_sr, job.y_si, job.y_sr = 1, _max(xstr[1], 1), rest, 1
            job.split_dim = 1 if own or rest >= p else 2
        else:
            # Y(p, rest) = F @ X(rest, q).T; the kernel's columns are the GEMM's.
            job.ta, job.tb, job.M, job.N = fac.trans, c'T', p, <blas_int>rest
            job.a, job.lda = fac.data, fac.ld
            job.b, job.ldb = <const char*>x, <blas_int>_max(xstr[nmodes - 1], 1)
            job.ldc = <blas_int>_max(p, 1)
            job.x_is_a = False
            job.x_sk, job.x_sr, job.y_si, job.y_sr = _max(xstr[nmodes - 1], 1), 1, 1, _max(p, 1)
            job.split_dim = 2 if own or rest >= p else 1
    job.c = <char*>y
    job.n_outer = n_outer
    job.first_outer = first_outer
    job.nmodes = nmodes
    for u in range(nmodes):
        job.dims[u] = dims[u]
        job.xstr[u] = xstr[u]
        job.ystr[u] = ystr[u]
    return _run_step(&job, threads)


# -- matkron's threads: the columns of a by-column plan ------------------------------------

cdef struct ColumnJob:
    int type_num
    const Factor* factors
    int k
    Plan plan                # the plan of one column
    Operand x_col            # one column of x (data set per column)
    Operand out_col
    const char* x_data       # column c of x at x_data + c * x_col.s1
    char* ws                 # thread i's workspace at ws + i * ws_stride
    Py_ssize_t ws_stride
    Py_ssize_t m
    Py_ssize_t per_task
    double complex alpha
    bint accumulate
    Watch* watch
    bint stopped


cdef void _column_task(void* ctx, int task, int thread) noexcept nogil:
    cdef ColumnJob* job = <ColumnJob*>ctx
    cdef Operand x_col = job.x_col, out_col = job.out_col
    cdef Watch idle
    cdef Watch* watch = job.watch
    cdef Py_ssize_t column, end = (task + 1) * job.per_task
    if thread != 0:
        # Only the caller looks at signals; a worker follows it (see _interrupt.pxd).
        watch_worker(&idle, &job.stopped if job.watch.main else NULL)
        watch = &idle
    if end > job.m:
        end = job.m
    for column in range(task * job.per_task, end):
        if flag_get(&job.stopped):
            return
        x_col.data = <char*>job.x_data + column * job.x_col.s1
        out_col.data = job.out_col.data + column * job.out_col.s1
        _dispatch(job.type_num, job.factors, job.k, &job.plan, &x_col, &out_col,
                  job.ws + thread * job.ws_stride, job.alpha, job.accumulate, watch, 1)
        if watch.stopped:
            flag_set(&job.stopped)
            return


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
                   Watch* watch, int threads) noexcept nogil:
    """out = alpha kron(factors) @ x (+ out when accumulating), as planned, on `threads`
    threads (1: the serial code, no pool call).

    `ws` holds exec_workspace(plan, threads, itemsize) bytes. Sizes are non-zero. When
    `watch` stops, `out` is left incomplete (the caller raises).
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
    cdef ColumnJob column_job

    if plan.by_column:
        column_plan = plan[0]
        column_plan.by_column = False
        column_plan.column_copy = 0
        x_col = x[0]
        out_col = out[0]
        x_col.m = out_col.m = 1
        if plan.column_copy:
            # x in Fortran order at the head of the workspace.
            _copy(x.data, x.s0, x.s1, ws, itemsize, x.n * itemsize, x.n, m, one, False,
                  threads)
            x_col.s0 = itemsize
            x_col.s1 = x.n * itemsize
        if threads > 1 and m >= 2 * threads:
            # Whole columns per task, each thread in a workspace of its own.
            column_job.type_num = blas_type_num(alpha)
            column_job.factors = factors
            column_job.k = k
            column_job.plan = column_plan
            column_job.x_col = x_col
            column_job.out_col = out_col
            column_job.out_col.data = out.data
            column_job.x_data = ws if plan.column_copy else x.data
            column_job.ws = ws + plan.column_copy
            column_job.ws_stride = _round_up(plan.need - plan.column_copy, ALIGN_BYTES)
            column_job.m = m
            column_job.per_task = (m + threads * TASKS_PER_THREAD - 1) // (
                threads * TASKS_PER_THREAD)
            column_job.alpha = alpha
            column_job.accumulate = accumulate
            column_job.watch = watch
            column_job.stopped = False
            pool_run(<int>((m + column_job.per_task - 1) // column_job.per_task),
                     _column_task, &column_job, threads)
            return
        for column in range(m):
            x_col.data = (ws if plan.column_copy else x.data) + column * x_col.s1
            out_col.data = out.data + column * out.s1
            _execute(factors, k, &column_plan, &x_col, &out_col, ws + plan.column_copy,
                     alpha, accumulate, watch, threads)
            if watch.stopped:
                return
        return
    if plan.nsteps == 0:
        _copy(x.data, x.s0, x.s1, out.data, out.s0, out.s1, x.n, m, alpha, accumulate,
              threads)
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
            _copy(x.data, x.s0, x.s1, <char*>spare, m * itemsize, itemsize, x.n, m, one,
                  False, threads)
        else:
            _copy(x.data, x.s0, x.s1, <char*>spare, itemsize, x.n * itemsize, x.n, m, one,
                  False, threads)
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
        if plan.own[t] and threads == 1:
            pack = ws + 2 * plan.largest * itemsize
            if fac.trans == c'N':
                plan.kernel.pack(fac.p, fac.q, fac.data, 1, fac.ld, pack)
            else:
                plan.kernel.pack(fac.p, fac.q, fac.data, fac.ld, 1, pack)
        if threads > 1:
            # The same products, split; each thread packs the factor into its own pack.
            if _split_step(fac, variant, src, cxs, dst, cys, cdims, nc, jj, alpha_step, beta,
                           plan, plan.own[t], ws + 2 * plan.largest * itemsize, threads,
                           watch):
                return
        elif variant == NORMAL:
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
            _copy(<char*>dst, m * itemsize, itemsize, out.data, out.s0, out.s1, out.n, m,
                  one, accumulate, threads)
        else:
            _copy(<char*>dst, itemsize, out.n * itemsize, out.data, out.s0, out.s1, out.n, m,
                  one, accumulate, threads)


cdef void _dispatch(int type_num, const Factor* factors, int k, const Plan* plan,
                    const Operand* x, const Operand* out, char* ws, double complex alpha,
                    bint accumulate, Watch* watch, int threads) noexcept nogil:
    """_execute for the dtype `type_num` (alpha's imaginary part is dropped for reals)."""
    if type_num == cnp.NPY_FLOAT32:
        _execute[float](factors, k, plan, x, out, ws, <float>alpha.real, accumulate, watch,
                        threads)
    elif type_num == cnp.NPY_FLOAT64:
        _execute[double](factors, k, plan, x, out, ws, alpha.real, accumulate, watch, threads)
    elif type_num == cnp.NPY_COMPLEX64:
        _execute[complex64_t](factors, k, plan, x, out, ws, <complex64_t>alpha, accumulate,
                              watch, threads)
    else:
        _execute[complex128_t](factors, k, plan, x, out, ws, alpha, accumulate, watch,
                               threads)


cdef void execute(int type_num, const Factor* factors, int k, const Plan* plan,
                  const Operand* x, const Operand* out, char* ws, double complex alpha,
                  bint accumulate, Watch* watch) noexcept nogil:
    """execute_threads on one thread (`ws` of plan.need bytes)."""
    execute_threads(type_num, factors, k, plan, x, out, ws, alpha, accumulate, watch, 1)


cdef void execute_threads(int type_num, const Factor* factors, int k, const Plan* plan,
                          const Operand* x, const Operand* out, char* ws,
                          double complex alpha, bint accumulate, Watch* watch,
                          int threads) noexcept nogil:
    """out = alpha kron(factors) @ x (+ out when accumulating) as planned, on `threads`
    threads (exec_threads), with `ws` of exec_workspace(plan, threads, itemsize) bytes;
    SciPy's BLAS held at one thread meanwhile (unless the product is below
    MIN_SPLIT_FLOPS)."""
    if threads == 1 and _plan_flops(factors, k, plan, x.m, type_num) < MIN_SPLIT_FLOPS:
        _dispatch(type_num, factors, k, plan, x, out, ws, alpha, accumulate, watch, 1)
        return
    blas_serial_enter()
    _dispatch(type_num, factors, k, plan, x, out, ws, alpha, accumulate, watch, threads)
    blas_serial_leave()


cdef double _plan_flops(const Factor* factors, int k, const Plan* plan, Py_ssize_t m,
                        int type_num) noexcept nogil:
    """The flops of the plan's GEMMs on m columns (a complex multiply-add is 8)."""
    cdef double size = <double>m, flops = 0
    cdef int t, f
    for f in range(k):
        size *= factors[f].q
    for t in range(plan.nsteps):
        f = plan.order[t]
        size = size / factors[f].q * factors[f].p
        flops += 2.0 * factors[f].q * size
    if type_num == cnp.NPY_COMPLEX64 or type_num == cnp.NPY_COMPLEX128:
        flops *= 4
    return flops


cdef int exec_threads(const Factor* factors, int k, const Plan* plan, Py_ssize_t m,
                      int type_num) noexcept nogil:
    """The threads for running `plan` on m columns: threads_for(its flops, num_threads()),
    at most MAX_EXEC_THREADS; 1 below MIN_SPLIT_FLOPS without asking (or the forced count
    of the test hook)."""
    cdef int n = num_threads(), t
    cdef double flops
    if _forced_threads > 0:
        return _forced_threads
    if n <= 1 or plan.nsteps == 0:
        return 1
    flops = _plan_flops(factors, k, plan, m, type_num)
    if flops < MIN_SPLIT_FLOPS:
        return 1
    t = threads_for(flops, n)
    return t if t < MAX_EXEC_THREADS else MAX_EXEC_THREADS


cdef Py_ssize_t exec_workspace(const Plan* plan, int threads,
                               Py_ssize_t itemsize) noexcept nogil:
    """Workspace bytes for running `plan` on `threads` threads: plan.need, and a pack per
    further thread, or a whole workspace per thread for a by-column plan whose columns
    are split (see _execute)."""
    cdef Py_ssize_t need = plan.need
    if threads <= 1:
        return need
    need += (threads - 1) * _pack_stride(plan, itemsize)
    if plan.by_column:
        need = _max(need, plan.column_copy
                    + threads * _round_up(plan.need - plan.column_copy, ALIGN_BYTES))
    return need


cdef void force_threads(int n) noexcept nogil:
    """Test hook: > 0 runs every product on n threads (at most MAX_EXEC_THREADS),
    however small; 0 restores the policy."""
    global _forced_threads
    _forced_threads = n if n < MAX_EXEC_THREADS else MAX_EXEC_THREADS
