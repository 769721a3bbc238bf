"""Features of matkron that benchmarks measure once they exist, detected with hasattr.

matkron's own threads (``matkron.threads(n)``, ``set_num_threads``, ``get_num_threads``)
and the measuring planner (``matkron.set_planner("estimate" | "measure")`` with wisdom,
as FFTW's) are measured where this matkron has them; elsewhere the cells hold
:data:`~.report.NA`. The names are written here once.
"""

import contextlib
import statistics
import time

import matkron

from .report import NA

__all__ = [
    "PLANNER_MODES",
    "first_calls",
    "has_planner",
    "has_threads",
    "matkron_threads",
    "median_of_calls",
    "num_threads",
    "settled_result",
]

# matkron's own threads: a context manager, a setter and a getter.
THREADS, SET_THREADS, GET_THREADS = "threads", "set_num_threads", "get_num_threads"
# The measuring planner: the mode setter and getter, wisdom export and forgetting.
SET_PLANNER, GET_PLANNER = "set_planner", "get_planner"
EXPORT_WISDOM, FORGET_WISDOM = "export_wisdom", "forget_wisdom"
PLANNER_MODES = ("estimate", "measure")
# The most calls made waiting for a plan to be measured.
MAX_PLANNING_CALLS = 20
# The calls within which the measuring planner keeps a key's measured plan.
MEASURED_WITHIN = 13


def has_threads():
    """Whether matkron runs threads of its own (``matkron.threads(n)``)."""
    return hasattr(matkron, THREADS)


def has_planner():
    """Whether matkron has the measuring planner (``matkron.set_planner(mode)``)."""
    return hasattr(matkron, SET_PLANNER)


def num_threads():
    """matkron's own thread count (``matkron.get_num_threads()``), or NA."""
    get = getattr(matkron, GET_THREADS, None)
    return NA if get is None else get()


def matkron_threads(n):
    """The context ``matkron.threads(n)``; a null context where matkron has no threads.

    Without own threads matkron runs on the calling thread, so n = 1 is what it does;
    callers report other n as NA (see :func:`has_threads`).
    """
    context = getattr(matkron, THREADS, None)
    return contextlib.nullcontext() if context is None else context(n)


def _call(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


@contextlib.contextmanager
def _planner(mode):
    """Run the block with the planner in `mode`, its plans forgotten; restore it after."""
    get = getattr(matkron, GET_PLANNER, None)
    previous = get() if get is not None else PLANNER_MODES[0]
    getattr(matkron, SET_PLANNER)(mode)
    forget = getattr(matkron, FORGET_WISDOM, None)
    if forget is not None:
        forget()
    try:
        yield
    finally:
        getattr(matkron, SET_PLANNER)(previous)


def first_calls(func, steady):
    """The planner's cost on a key it has not seen, in each mode.

    Parameters
    ----------
    func : callable
        One call of the product, on operands whose plan key has not been planned (or
        whose plans ``matkron.forget_wisdom()`` forgets).
    steady : callable
        ``steady(func) -> float``: the steady-state median seconds of `func`.

    Returns
    -------
    dict
        For each mode of :data:`PLANNER_MODES`, ``"first+ MODE"``: the first call's time
        minus the steady-state median; ``"calls"``: in "measure" mode, the calls made
        until ``matkron.export_wisdom()`` changed (the plan was measured and kept), None
        if it did not within :data:`MAX_PLANNING_CALLS`. All NA without the planner.
    """
    keys = [f"first+ {mode}" for mode in PLANNER_MODES] + ["calls"]
    if not has_planner():
        return dict.fromkeys(keys, NA)
    export = getattr(matkron, EXPORT_WISDOM, None)
    found = {"calls": NA if export is None else None}
    for mode in reversed(PLANNER_MODES):  # "measure" first, on a key not yet seen
        with _planner(mode):
            before = None if export is None else export()
            first = _call(func)
            if mode == "measure" and export is not None:
                calls = 1
                while export() == before and calls < MAX_PLANNING_CALLS:
                    func()
                    calls += 1
                found["calls"] = calls if export() != before else None
            found[f"first+ {mode}"] = first - steady(func)
    return found


def settled_result(func):
    """`func`'s result once the planner has measured its key (it keeps the measured plan
    after at most 13 calls, README "Planning"): the 14th call runs that plan, in the
    memory order a new result keeps while the plan stays cached.

    Examples
    --------
    >>> import numpy as np
    >>> y = settled_result(lambda: matkron.kron_matvec([np.eye(2), np.eye(3)], np.ones((6, 2))))
    >>> y.shape
    (6, 2)
    """
    result = func()
    for _ in range(MEASURED_WITHIN if has_planner() else 0):
        result = func()
    return result


def median_of_calls(func, count=5):
    """The median of `count` single calls of `func`: a steady state for :func:`first_calls`."""
    return statistics.median(_call(func) for _ in range(count))
