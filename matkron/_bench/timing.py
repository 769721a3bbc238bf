"""Timing and memory primitives: auto-calibrated loops, interleaved medians, traced peaks."""

import gc
import itertools
import statistics
import time
import timeit
import tracemalloc

__all__ = ["calibrate", "measure", "measure_slow", "traced_peak"]


def calibrate(timer, min_time):
    """The number of calls for one sample of `timer` to last at least `min_time` seconds.

    Parameters
    ----------
    timer : timeit.Timer
        The statement to time.
    min_time : float
        The shortest sample, in seconds.

    Returns
    -------
    int
        The first of 1, 2, 5, 10, 20, 50, ... calls whose loop lasts `min_time` or more
        (as :meth:`timeit.Timer.autorange`, with a chosen duration). The loops run here
        also serve as the warm-up.

    Examples
    --------
    >>> import timeit
    >>> calibrate(timeit.Timer("sum(range(10))"), 1e-4) >= 1
    True
    """
    for exponent in itertools.count():
        for mantissa in (1, 2, 5):
            number = mantissa * 10**exponent
            if timer.timeit(number) >= min_time:
                return number


# Calls shorter than this get an untimed warm-up call before each sample (see measure).
WARM_UP_BELOW_S = 0.05

# Untimed calls of each statement before its samples, so that matkron's measuring planner
# has settled the plans of its products (it times one candidate per call, at most 13 calls
# per product) and the samples see the steady state; the calls stop early when they take
# longer than SETTLE_BUDGET_S together. The first calls' cost is reported apart (the
# planning columns of the kron suite).
SETTLE_CALLS = 16
SETTLE_BUDGET_S = 3.0


def measure(statements, namespace, repeat, min_time):
    """Median time per call of each statement, the statements interleaved.

    Parameters
    ----------
    statements : dict of str to str or callable
        The code to time by name: a :mod:`timeit` statement evaluated in `namespace`, or a
        callable without arguments.
    namespace : dict or None
        The globals of the statements.
    repeat : int
        The number of samples per statement.
    min_time : float
        The shortest sample in seconds; each sample times a loop of as many calls as
        :func:`calibrate` finds.

    Returns
    -------
    dict of str to float
        The median over the samples of the time per call, in seconds, by name.

    Notes
    -----
    Each statement first runs :data:`SETTLE_CALLS` untimed calls (within
    :data:`SETTLE_BUDGET_S`), so matkron's measuring planner has chosen its plans. Each
    round takes one sample of every statement, starting one statement later than the
    round before, so slow drifts of the machine (frequency, other load) hit all statements
    alike. One untimed call precedes each sample (of calls under
    :data:`WARM_UP_BELOW_S`), so a sample sees the caches and the allocator as the
    statement itself leaves them (a call that allocates its result otherwise pays for the
    pages the statement before it returned to the system). Times
    are taken with :func:`time.perf_counter`; garbage collection is off during a sample,
    as in :mod:`timeit`.

    Examples
    --------
    >>> times = measure({"sum": "sum(v)", "max": "max(v)"}, {"v": list(range(100))}, 3, 1e-4)
    >>> sorted(times)
    ['max', 'sum']
    """
    timers = {name: timeit.Timer(stmt, globals=namespace) for name, stmt in statements.items()}
    for timer in timers.values():
        _settle(timer)
    numbers = {name: calibrate(timer, min_time) for name, timer in timers.items()}
    samples = {name: [] for name in timers}
    names = list(timers)
    for round_ in range(repeat):
        start = round_ % len(names)
        for name in names[start:] + names[:start]:
            if not samples[name] or samples[name][-1] < WARM_UP_BELOW_S:
                timers[name].timeit(1)
            elapsed = timers[name].timeit(numbers[name])
            samples[name].append(elapsed / numbers[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def _settle(timer):
    """Run SETTLE_CALLS untimed calls of `timer`'s statement, or fewer when they take longer
    than SETTLE_BUDGET_S."""
    spent = 0.0
    for _ in range(SETTLE_CALLS):
        spent += timer.timeit(1)
        if spent > SETTLE_BUDGET_S:
            return


def _call(func):
    """The seconds of one call of `func`, and its result."""
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def measure_slow(funcs, repeat, min_time, slow_call, budget):
    """Median times of calls that may take seconds, and the first call's results.

    Parameters
    ----------
    funcs : dict of str to callable
        The calls to time by name, without arguments.
    repeat : int
        The most samples per call.
    min_time : float
        The shortest sample of :func:`measure`, when every call is short.
    slow_call : float
        A first call longer than this (in seconds) makes every call timed by single
        calls, interleaved, the first one included, as many rounds as fit `budget`
        seconds (at least the first, at most `repeat`).
    budget : float
        The seconds the rounds after the first may take.

    Returns
    -------
    times : dict of str to float
        The median seconds per call, by name.
    samples : int
        The number of samples of each median.
    results : dict
        What each call returned on its first call, by name.

    Examples
    --------
    >>> times, samples, results = measure_slow({"sum": lambda: sum(range(10))}, 3, 1e-4,
    ...                                        0.2, 1.0)
    >>> samples, results
    (3, {'sum': 45})
    """
    first = {name: _call(func) for name, func in funcs.items()}
    results = {name: result for name, (_, result) in first.items()}
    if max(seconds for seconds, _ in first.values()) < slow_call:
        return measure(funcs, None, repeat, min_time), repeat, results
    samples = {name: [seconds] for name, (seconds, _) in first.items()}
    round_time = sum(seconds for seconds, _ in first.values())
    deadline = time.perf_counter() + budget
    while (len(samples[next(iter(samples))]) < repeat
           and time.perf_counter() + round_time < deadline):
        for name, func in funcs.items():
            samples[name].append(_call(func)[0])
    count = len(samples[next(iter(samples))])
    return {name: statistics.median(s) for name, s in samples.items()}, count, results


def traced_peak(func):
    """Call `func` and return the peak of the memory it allocated, and its result.

    Parameters
    ----------
    func : callable
        Called once without arguments.

    Returns
    -------
    peak : int
        The highest number of bytes traced by :mod:`tracemalloc` during the call, above
        the traced memory at its start: every NumPy array allocated in the call counts,
        freed or not, including the result.
    result : object
        What `func` returned.

    Examples
    --------
    >>> import numpy as np
    >>> peak, a = traced_peak(lambda: np.zeros(1000))
    >>> peak >= a.nbytes
    True
    """
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = func()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - start, result
