# The C interface of matkron's threads for kernels in other compiled modules:
#
#     from matkron._threads_cy cimport task_fn, pool_run, num_threads, threads_for, ...
#
# (Cython imports these functions from matkron._threads_cy at run time, so the process has
# one pool and one BLAS guard.) All may be called without the GIL; see csrc/thread_pool.h,
# csrc/thread_policy.h and csrc/blas_threads.h for what they do.

ctypedef void (*task_fn)(void* ctx, int task, int thread) noexcept nogil

# Run task(ctx, i, thread) for i < n_tasks on up to max_threads threads (thread < max_threads).
cdef int pool_run(int n_tasks, task_fn task, void* ctx, int max_threads) noexcept nogil
# The process-wide count (matkron.set_num_threads).
cdef int num_threads() noexcept nogil
# `requested` threads capped at the cores this process may run on (at least 1).
cdef int usable_threads(int requested) noexcept nogil
# The threads worth using for a product of `flops` (1: stay on one thread).
cdef int threads_for(double flops, int max_threads) noexcept nogil
# Keep SciPy's BLAS single-threaded from enter to leave (reference-counted).
cdef int blas_serial_enter() noexcept nogil
cdef void blas_serial_leave() noexcept nogil
