"""matkron's own threads: how many it uses, and the BLAS it keeps single-threaded.

Large products split their work across a persistent pool of matkron's own threads
(csrc/thread_pool.c); small products stay on one thread, by a rule measured once on the
machine that runs it (csrc/thread_policy.c); while matkron's threads run, the BLAS that
SciPy calls is held at one thread (csrc/blas_threads.c), so the two never compete for
cores. The count lives in C (matkron._threads_cy), where kernels read it without the GIL.
"""

import contextlib
import os
import warnings
from collections.abc import Iterator

from . import _threads_cy
from ._validation import count

__all__ = ["blas_info", "get_num_threads", "set_num_threads", "threads"]

_ENVIRONMENT_VARIABLE = "MATKRON_NUM_THREADS"
# The largest count accepted (a C int); a product uses at most 64 threads however many are
# allowed, and never more than the cores available.
_MAX_COUNT = 2**31 - 1


def _available_cores():
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _checked_count(n, name="n"):
    """`n` as an int from 1 to _MAX_COUNT, or TypeError / ValueError naming `name`."""
    return count(n, name, minimum=1, maximum=_MAX_COUNT)


def _default_count():
    """MATKRON_NUM_THREADS when set, else OMP_NUM_THREADS when set (a warning, and the next
    choice, for a value that is not a count >= 1), else the cores available to the process.

    OMP_NUM_THREADS is honoured as numexpr honours it: it is how job schedulers and Dask's
    nanny (which starts workers with OMP_NUM_THREADS=1) keep a process's thread pools within
    the cores it was given.
    """
    for variable in (_ENVIRONMENT_VARIABLE, "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        try:
            return _checked_count(int(value), variable)
        except (TypeError, ValueError):
            warnings.warn(
                f"{variable} must be an integer number of threads >= 1; got {value!r}, so "
                "matkron ignores it",
                RuntimeWarning,
                stacklevel=3,
            )
    return _available_cores()


def set_num_threads(n: int) -> None:
    """Set the number of threads matkron's own products may use, for the whole process.

    Parameters
    ----------
    n : int
        The number of threads, at least 1. 1 runs everything on the calling thread.

    Raises
    ------
    TypeError
        If `n` is not an integer (``bool`` is not accepted).
    ValueError
        If `n` is less than 1.

    See Also
    --------
    get_num_threads, threads

    Notes
    -----
    The default is the value of the environment variable ``MATKRON_NUM_THREADS`` when it
    is set at import, else that of ``OMP_NUM_THREADS`` (as numexpr reads it; Dask's
    workers start with it at 1), else the number of cores available to the process
    (``os.sched_getaffinity``, else ``os.cpu_count()``).

    The setting is process-wide, as threadpoolctl's limits are. It is an upper bound:
    products too small to gain from more threads run on one (the threshold is measured on
    the running machine, once, on first need). A product called from several Python
    threads at once, or from inside another matkron product's thread, runs on its
    calling thread alone, so matkron never runs more than `n` threads of its own.
    While matkron's threads run, the BLAS SciPy calls is held at one thread (see
    `blas_info`).

    Examples
    --------
    >>> import matkron
    >>> previous = matkron.get_num_threads()
    >>> matkron.set_num_threads(1)
    >>> matkron.get_num_threads()
    1
    >>> matkron.set_num_threads(previous)
    """
    _threads_cy.set_num_threads(_checked_count(n))


def get_num_threads() -> int:
    """Return the number of threads matkron's own products may use.

    Returns
    -------
    int
        The process-wide count set by `set_num_threads` or `threads`, at least 1.

    See Also
    --------
    set_num_threads, threads

    Examples
    --------
    >>> import matkron
    >>> matkron.get_num_threads() >= 1
    True
    >>> with matkron.threads(2):
    ...     matkron.get_num_threads()
    2
    """
    return int(_threads_cy.get_num_threads())


@contextlib.contextmanager
def _count_block(n: int) -> Iterator[None]:
    previous = _threads_cy.get_num_threads()
    _threads_cy.set_num_threads(n)
    try:
        yield
    finally:
        _threads_cy.set_num_threads(previous)


def threads(n: int) -> contextlib.AbstractContextManager[None]:
    """Use `n` threads inside a ``with`` block, and restore the previous count after it.

    Parameters
    ----------
    n : int
        The number of threads inside the block, at least 1.

    Returns
    -------
    context manager
        Sets the count on entry and restores the count it found on exit, also when the
        block raises.

    Raises
    ------
    TypeError
        If `n` is not an integer (``bool`` is not accepted); raised by the call, before
        the block.
    ValueError
        If `n` is less than 1.

    See Also
    --------
    set_num_threads, get_num_threads

    Notes
    -----
    The count is process-wide (as with `set_num_threads` and threadpoolctl's
    ``threadpool_limits``): blocks entered by several Python threads at once restore in
    the order they exit.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A, B = np.eye(2), np.arange(9.0).reshape(3, 3)
    >>> with matkron.threads(1):
    ...     y = matkron.kron(A, B) @ np.ones(6)
    >>> y
    array([ 3., 12., 21.,  3., 12., 21.])
    """
    return _count_block(_checked_count(n))


def blas_info() -> dict[str, str | int]:
    """Report the BLAS whose thread count matkron controls.

    matkron's kernels call the BLAS that SciPy uses (``scipy.linalg.cython_blas``). While
    matkron's own threads run, that BLAS is held at one thread, so that the two never
    compete for cores; this reports which library and which setter matkron found.

    Returns
    -------
    dict
        ``"library"``: the path of the library that exports the setter ("" if none was
        found; then matkron leaves the BLAS's threads alone); ``"setter"`` and
        ``"getter"``: the names of the functions used (such as
        ``scipy_openblas_set_num_threads``); ``"num_threads"``: the BLAS's thread count
        now (-1 if unknown).

    See Also
    --------
    set_num_threads

    Notes
    -----
    Supported: OpenBLAS as SciPy bundles it (``scipy_openblas_*``) or as a system library
    (``openblas_*``), MKL (``MKL_Set_Num_Threads``) and BLIS (``bli_thread_*``). The
    setting is process-wide, so BLAS calls from other Python threads also run on one thread
    while a matkron product runs its threads. The count found when the first of several
    overlapping products started is restored when the last one ends, unless it was changed
    meanwhile.

    Examples
    --------
    >>> import matkron
    >>> sorted(matkron.blas_info())
    ['getter', 'library', 'num_threads', 'setter']
    """
    info = _threads_cy.blas_info()
    return {key: info[key] for key in ("library", "setter", "getter", "num_threads")}


_threads_cy.set_num_threads(_default_count())
