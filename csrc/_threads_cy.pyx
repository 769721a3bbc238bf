"""matkron's own threads: the process-wide count, the pool and the BLAS thread count.

The machinery is C (thread_pool.c, thread_policy.c, blas_threads.c), compiled into this
module only, so the process has one pool and one BLAS guard. Kernels in other modules reach
it through the cdef functions declared in matkron/_threads_cy.pxd (Cython imports them
from this module at run time); Python reaches it through matkron._threads.
"""
from libc.stdlib cimport free, malloc
from libc.time cimport time_t
from scipy.linalg cimport cython_blas

from _blas_int cimport blas_int

cdef extern from "thread_pool.h" nogil:
    int MATKRON_POOL_MAX_THREADS
    int matkron_pool_run(int n_tasks, task_fn task, void* ctx, int max_threads)
    int matkron_pool_in_task()
    int matkron_pool_workers()
    int matkron_pool_contended()
    void matkron_pool_reset_contention()

cdef extern from "thread_policy.h" nogil:
    ctypedef void (*matkron_probe_fn)(void* ctx) noexcept nogil
    int matkron_get_num_threads()
    void matkron_set_num_threads(int n)
    void matkron_policy_set_probe(matkron_probe_fn probe, void* ctx, double flops)
    int matkron_policy_calibrate()
    double matkron_policy_handoff()
    double matkron_policy_rate()
    int matkron_policy_threads_for(double flops, int max_threads)
    int matkron_policy_usable_threads(int requested)

cdef extern from "blas_threads.h" nogil:
    int matkron_blas_init(const void* blas_function)
    const char* matkron_blas_library()
    const char* matkron_blas_setter()
    const char* matkron_blas_getter()
    int matkron_blas_get_num_threads()
    int matkron_blas_set_num_threads(int n)
    int matkron_blas_serial_enter()
    void matkron_blas_serial_leave()

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()

cdef extern from *:
    """
    static void matkron_increment(int *p) { __atomic_fetch_add(p, 1, __ATOMIC_RELAXED); }
    """
    void matkron_increment(int* p) nogil

cdef extern from "<time.h>" nogil:
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int nanosleep(const timespec* req, timespec* rem)


# --- the interface of kernels in other modules (declared in _threads_cy.pxd) ----------

cdef int pool_run(int n_tasks, task_fn task, void* ctx, int max_threads) noexcept nogil:
    return matkron_pool_run(n_tasks, task, ctx, max_threads)


cdef int num_threads() noexcept nogil:
    return matkron_get_num_threads()


cdef int usable_threads(int requested) noexcept nogil:
    return matkron_policy_usable_threads(requested)


cdef int threads_for(double flops, int max_threads) noexcept nogil:
    return matkron_policy_threads_for(flops, max_threads)


cdef int blas_serial_enter() noexcept nogil:
    return matkron_blas_serial_enter()


cdef void blas_serial_leave() noexcept nogil:
    matkron_blas_serial_leave()


# --- the probe of the single-thread GEMM rate ------------------------------------------

cdef enum:
    PROBE_N = 96

cdef double* probe_buffers = NULL


cdef void gemm_probe(void* ctx) noexcept nogil:
    cdef double* a = <double*>ctx
    cdef double* b = a + PROBE_N * PROBE_N
    cdef double* c = b + PROBE_N * PROBE_N
    cdef blas_int n = PROBE_N
    cdef double one = 1.0, zero = 0.0
    cdef char trans = b'N'
    cython_blas.dgemm(&trans, &trans, &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n)


def _init():
    global probe_buffers
    cdef Py_ssize_t i
    matkron_blas_init(<const void*>cython_blas.dgemm)
    if probe_buffers == NULL:
        probe_buffers = <double*>malloc(3 * PROBE_N * PROBE_N * sizeof(double))
        if probe_buffers == NULL:
            raise MemoryError("no room for the GEMM probe's buffers")
        for i in range(3 * PROBE_N * PROBE_N):
            probe_buffers[i] = 1.0 / (1 + i % 7)
        matkron_policy_set_probe(gemm_probe, probe_buffers, 2.0 * PROBE_N * PROBE_N * PROBE_N)


_init()

MAX_THREADS = MATKRON_POOL_MAX_THREADS


# --- Python access (validation is matkron._threads's) ----------------------------------

def set_num_threads(int n):
    matkron_set_num_threads(n)


def get_num_threads():
    return matkron_get_num_threads()


def pool_workers():
    """Workers the pool has created so far."""
    return matkron_pool_workers()


def blas_info():
    """The BLAS library and setter found, and its thread count (-1: unknown)."""
    return {
        "library": matkron_blas_library().decode(),
        "setter": matkron_blas_setter().decode(),
        "getter": matkron_blas_getter().decode(),
        "num_threads": matkron_blas_get_num_threads(),
    }


def calibration():
    """The split decision's measurements, calibrating first if needed (None: not now)."""
    cdef int status
    with nogil:
        status = matkron_policy_calibrate()
    if status != 0:
        return None
    return {"handoff_seconds": matkron_policy_handoff(), "flop_rate": matkron_policy_rate()}


def split_threads(double flops, int max_threads):
    """The number of threads worth using for a product of `flops` (1..max_threads)."""
    cdef int t
    with nogil:
        t = matkron_policy_threads_for(flops, max_threads)
    return t


# --- test hooks -------------------------------------------------------------------------

def _blas_serial_enter():
    cdef int depth
    with nogil:
        depth = matkron_blas_serial_enter()
    return depth


def _blas_serial_leave():
    with nogil:
        matkron_blas_serial_leave()


def _blas_get_num_threads():
    return matkron_blas_get_num_threads()


cdef struct Record:
    int* count       # runs of each task
    int* thread      # the `thread` argument each task got
    pthread_t* os_thread
    int* nested_ok   # nested call: ran inline (returned 1, thread 0, same OS thread)
    int nested
    long sleep_ns
    long worker_sleep_ns  # added for tasks run by workers


cdef struct NestedRecord:
    pthread_t os_thread
    int ok


cdef void nested_task(void* ctx, int task, int thread) noexcept nogil:
    cdef NestedRecord* r = <NestedRecord*>ctx
    if thread != 0 or pthread_self() != r.os_thread:
        r.ok = 0


cdef void record_task(void* ctx, int task, int thread) noexcept nogil:
    cdef Record* r = <Record*>ctx
    cdef timespec pause
    cdef NestedRecord nested
    cdef long sleep_ns = r.sleep_ns + (r.worker_sleep_ns if thread != 0 else 0)
    matkron_increment(&r.count[task])
    r.thread[task] = thread
    r.os_thread[task] = pthread_self()
    if sleep_ns > 0:
        pause.tv_sec = sleep_ns // 1000000000
        pause.tv_nsec = sleep_ns % 1000000000
        nanosleep(&pause, NULL)
    if r.nested:
        nested.os_thread = pthread_self()
        nested.ok = 1
        if matkron_pool_run(3, nested_task, &nested, 4) != 1:
            nested.ok = 0
        r.nested_ok[task] = nested.ok


def _pool_record(int n_tasks, int max_threads, bint nested=False, double sleep=0.0,
                 double worker_sleep=0.0):
    """Run `n_tasks` recording tasks on the pool without the GIL, each sleeping `sleep`
    seconds, and `worker_sleep` more on a worker.

    Returns (value returned, runs of each task, `thread` of each task, the number of OS
    threads that ran tasks, whether every nested call ran inline).
    """
    cdef Record r
    cdef int k = max(n_tasks, 1)
    cdef int used, i
    r.count = <int*>malloc(k * sizeof(int))
    r.thread = <int*>malloc(k * sizeof(int))
    r.os_thread = <pthread_t*>malloc(k * sizeof(pthread_t))
    r.nested_ok = <int*>malloc(k * sizeof(int))
    try:
        if not (r.count and r.thread and r.os_thread and r.nested_ok):
            raise MemoryError()
        for i in range(k):
            r.count[i] = 0
            r.thread[i] = -1
            r.nested_ok[i] = 1
        r.nested = nested
        r.sleep_ns = <long>(sleep * 1e9)
        r.worker_sleep_ns = <long>(worker_sleep * 1e9)
        with nogil:
            used = matkron_pool_run(n_tasks, record_task, &r, max_threads)
        counts = [r.count[i] for i in range(n_tasks)]
        threads = [r.thread[i] for i in range(n_tasks)]
        os_threads = len({r.os_thread[i] for i in range(n_tasks)})
        nested_ok = all(r.nested_ok[i] for i in range(n_tasks))
        return used, counts, threads, os_threads, nested_ok
    finally:
        free(r.count)
        free(r.thread)
        free(r.os_thread)
        free(r.nested_ok)


def _pool_contended():
    """matkron_pool_contended(): whether the next split runs on one thread (counts it)."""
    return bool(matkron_pool_contended())


def _pool_reset_contention():
    matkron_pool_reset_contention()
