"""Pinning a benchmark run: its thread pools to a count of threads, and the process to a CPU."""

import contextlib
import os

from threadpoolctl import threadpool_limits

__all__ = ["XLA_FLAGS", "pinned"]

# Single-threaded XLA on CPU (JAX's, and pykronecker's through it): set in the environment
# before JAX is first imported, ``os.environ.setdefault("XLA_FLAGS", XLA_FLAGS)``.
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@contextlib.contextmanager
def pinned(threads, one_cpu=False):
    """Run the block with the thread pools limited, and the process on one CPU if asked.

    Parameters
    ----------
    threads : int
        The thread count of every pool loaded at entry, BLAS and OpenMP alike, set with
        :func:`threadpoolctl.threadpool_limits` (NumPy and SciPy each ship their own
        OpenBLAS; both are limited). Load a suite's modules and peers before entering.
    one_cpu : bool, optional
        With one thread, also pin the process to the lowest CPU it may use
        (:func:`os.sched_setaffinity`, where the platform has it); threads started in the
        block, such as XLA's, inherit it. For suites whose peers run thread pools that
        threadpoolctl does not reach.

    Yields
    ------
    int or None
        The CPU the process is pinned to, or None when it is not pinned.

    Examples
    --------
    >>> with pinned(1) as cpu:
    ...     print(cpu)
    None
    """
    pin = one_cpu and threads == 1 and hasattr(os, "sched_getaffinity")
    with threadpool_limits(limits=threads):
        previous = os.sched_getaffinity(0) if pin else None
        if previous is not None:
            os.sched_setaffinity(0, {min(previous)})
        try:
            yield None if previous is None else min(previous)
        finally:
            if previous is not None:
                os.sched_setaffinity(0, previous)
