# Long compiled loops that stay interruptible: a Watch counts the work done without the
# GIL and, at most every WATCH_SECONDS of wall time, briefly takes the GIL to run the
# signal handlers (Ctrl-C raises KeyboardInterrupt there). A kernel that sees the watch
# stop returns early; its entry point, holding the GIL again, raises the pending exception
# with raise_pending().
#
# Only the main thread runs signal handlers, so only there does the watch look (other
# threads never wait for the GIL on its account). A worker of matkron's pool watches the
# stop flag of the job it runs instead, which the caller sets when it stops, so that the
# whole job unwinds within a block. Long GEMMs are split into blocks of columns so that a
# look comes between blocks.
from _blas cimport blas_t, gemm_scaled
from _blas_int cimport blas_int

cdef extern from "Python.h":
    # Declared without an exception value: the exception a handler raises stays pending
    # for the entry point (Cython would otherwise report it as unraisable here).
    int PyErr_CheckSignals()
    unsigned long PyThread_get_thread_ident()

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int timespec_get(timespec* ts, int base)
    int TIME_UTC


cdef extern from *:
    """
    /* A job's stop flag, set by the thread that stops and read by the others. */
    static inline int matkron_flag_get(const int* flag) {
        return __atomic_load_n(flag, __ATOMIC_RELAXED);
    }
    static inline void matkron_flag_set(int* flag) {
        __atomic_store_n(flag, 1, __ATOMIC_RELAXED);
    }
    /* Work (multiply-adds) between looks at the clock, and one BLAS call's overhead in
       those units. */
    #define MATKRON_WATCH_WORK 16777216.0
    #define MATKRON_CALL_WORK 1000.0
    /* Wall time between signal checks, and a GEMM's work from which it runs in blocks of
       columns (about 20-50 ms each on one core; longer where the 256-column minimum
       exceeds that work, for m·k above 4·10⁶). */
    #define MATKRON_WATCH_SECONDS 0.1
    #define MATKRON_GEMM_BLOCK_WORK 1073741824.0
    #define MATKRON_GEMM_BLOCK_MIN_COLS 256
    """
    double WATCH_WORK "MATKRON_WATCH_WORK"
    double CALL_WORK "MATKRON_CALL_WORK"
    double WATCH_SECONDS "MATKRON_WATCH_SECONDS"
    double GEMM_BLOCK_WORK "MATKRON_GEMM_BLOCK_WORK"
    int GEMM_BLOCK_MIN_COLS "MATKRON_GEMM_BLOCK_MIN_COLS"
    bint flag_get "matkron_flag_get"(const bint* flag) noexcept nogil
    void flag_set "matkron_flag_set"(bint* flag) noexcept nogil


cdef struct Watch:
    bint main            # the calling thread is the one that runs signal handlers
    bint stopped         # stop: a handler raised (the exception pending) on the caller,
                         # or the job's flag was set (a worker); the kernel unwinds
    double work          # work since the last look at the clock
    double next_look     # wall time (s) from which the next look checks signals
    bint* cancel         # a worker's job stop flag (NULL on the calling thread)


cdef inline double _seconds() noexcept nogil:
    cdef timespec ts
    timespec_get(&ts, TIME_UTC)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef inline void watch_start(Watch* w, unsigned long main_thread) noexcept:
    """Arm `w` for a call from the current thread (with the GIL held); `main_thread` is
    the identifier of the interpreter's main thread (threading.main_thread().ident)."""
    w.main = PyThread_get_thread_ident() == main_thread
    w.stopped = False
    w.work = 0
    # The first look, after WATCH_WORK, checks signals: short calls never read the clock.
    w.next_look = 0
    w.cancel = NULL


cdef inline void watch_worker(Watch* w, bint* cancel) noexcept nogil:
    """Arm `w` for a worker thread of a job whose stop flag is `cancel` (NULL when the
    caller is not the main thread: the job cannot be stopped, its GEMMs run whole)."""
    w.main = False
    w.stopped = False
    w.work = 0
    w.next_look = 0
    w.cancel = cancel


cdef inline bint watch_tick(Watch* w, double work) noexcept nogil:
    """Count `work` multiply-adds; run the signal handlers when due. Whether to stop."""
    cdef double now
    if not w.main:
        if not w.stopped and w.cancel != NULL and flag_get(w.cancel):
            w.stopped = True
        return w.stopped
    if w.stopped:
        return True
    w.work += work
    if w.work < WATCH_WORK:
        return False
    w.work = 0
    now = _seconds()
    if now < w.next_look:
        return False
    w.next_look = now + WATCH_SECONDS
    with gil:
        w.stopped = PyErr_CheckSignals() != 0
    return w.stopped


cdef inline int raise_pending() except -1:
    """Propagate the exception a signal handler left pending (see watch_tick)."""
    return -1


cdef inline bint gemm_watched(Watch* w, char transa, char transb, blas_int m, blas_int n,
                              blas_int k, blas_t alpha, const blas_t* a, blas_int lda,
                              const blas_t* b, blas_int ldb, blas_t beta, blas_t* c,
                              blas_int ldc) noexcept nogil:
    """gemm_scaled, counted by `w`; a long one runs in blocks of columns of c with a look
    between blocks. Whether to stop (the product is then incomplete)."""
    cdef double rows_work = <double>m * k
    cdef blas_int cols, j, nb
    if rows_work * n <= GEMM_BLOCK_WORK or (not w.main and w.cancel == NULL):
        gemm_scaled(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return watch_tick(w, rows_work * n + CALL_WORK)
    cols = <blas_int>(GEMM_BLOCK_WORK / rows_work) if rows_work > 0 else n
    if cols < GEMM_BLOCK_MIN_COLS:
        cols = GEMM_BLOCK_MIN_COLS
    j = 0
    while j < n:
        nb = cols if n - j > cols else n - j
        # Columns j.. of op(b) are columns of b for 'N', rows of b otherwise.
        gemm_scaled(transa, transb, m, nb, k, alpha, a, lda,
                    b + (<Py_ssize_t>j * ldb if transb == c'N' else j), ldb, beta,
                    c + <Py_ssize_t>j * ldc, ldc)
        if watch_tick(w, rows_work * nb + CALL_WORK):
            return True
        j += nb
    return False
