"""Pinning a benchmark run: its thread pools to a count of threads, and the process to a CPU."""

import contextlib
import os

from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

import matkron

__all__ = ["XLA_FLAGS", "defaults", "pinned", "unpinned"]

# Single-threaded XLA on CPU (JAX's, and pykronecker's through it): set in the environment
# before JAX is first imported, ``os.environ.setdefault("XLA_FLAGS", XLA_FLAGS)``.
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

# The thread count of every pool (by library file) as the innermost pinned() found it, the
# CPUs the process could use then, and matkron's own thread count: what unpinned() restores.
_DEFAULTS = []


@contextlib.contextmanager
def pinned(threads, one_cpu=False):
    """Run the block with the thread pools limited, and the process on one CPU if asked.

    Parameters
    ----------
    threads : int
        The thread count of every pool loaded at entry, BLAS and OpenMP alike, set with
        :func:`threadpoolctl.threadpool_limits` (NumPy and SciPy each ship their own
        OpenBLAS; both are limited), and of matkron's own (:func:`matkron.threads`). Load
        a suite's modules and peers before entering.
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
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    _DEFAULTS.append(({info["filepath"]: info["num_threads"] for info in threadpool_info()},
                      cpus, matkron.get_num_threads()))
    with contextlib.ExitStack() as stack:
        stack.callback(_DEFAULTS.pop)
        stack.enter_context(threadpool_limits(limits=threads))
        stack.enter_context(matkron.threads(threads))
        previous = os.sched_getaffinity(0) if pin else None
        if previous is not None:
            os.sched_setaffinity(0, {min(previous)})
        try:
            yield None if previous is None else min(previous)
        finally:
            if previous is not None:
                os.sched_setaffinity(0, previous)


def defaults():
    """The thread count of each pool, by library file, before :func:`pinned` limited it.

    Empty outside :func:`pinned`. These are the counts a user's process gets (from the
    CPU count, or OPENBLAS_NUM_THREADS and its kin set before the libraries loaded).
    """
    return dict(_DEFAULTS[-1][0]) if _DEFAULTS else {}


@contextlib.contextmanager
def unpinned():
    """Switch :func:`pinned` off for the block: the pools and CPUs as the process had them.

    Inside :func:`pinned`, every pool (matkron's own included) gets back the thread count
    it had before (see :func:`defaults`) and the process every CPU it could use; all are
    pinned again after the block. Outside :func:`pinned`, nothing changes.

    Examples
    --------
    >>> with pinned(1), unpinned():
    ...     pass
    """
    if not _DEFAULTS:
        yield
        return
    counts, cpus, own = _DEFAULTS[-1]
    controller = ThreadpoolController()
    with contextlib.ExitStack() as stack:
        stack.enter_context(matkron.threads(own))
        for filepath, count in counts.items():
            selected = controller.select(filepath=filepath)
            if selected.lib_controllers:
                stack.enter_context(selected.limit(limits=count))
        if cpus is not None:
            previous = os.sched_getaffinity(0)
            os.sched_setaffinity(0, cpus)
            stack.callback(os.sched_setaffinity, 0, previous)
        yield
