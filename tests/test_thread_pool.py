"""matkron's own threads: the pool, the BLAS guard, the split rule and the public count.

The pool is driven through a test hook of matkron._threads_cy that runs recording tasks
without the GIL: each task counts its runs and notes the `thread` index and OS thread it
ran on, optionally sleeps (so that calls overlap) and optionally calls the pool again from
inside the task. The BLAS thread count is read back through threadpoolctl, independently
of matkron's own getter.
"""

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import matkron
from matkron import _threads_cy
from matkron._threads import _available_cores

TIMEOUT = 60  # seconds; a deadlock fails the test instead of hanging the suite


@pytest.fixture(autouse=True)
def _restore_count():
    previous = matkron.get_num_threads()
    yield
    matkron.set_num_threads(previous)


def _check_record(record, n_tasks, max_threads):
    used, counts, threads, _, _ = record
    assert counts == [1] * n_tasks
    if n_tasks == 0:
        assert used == 0
        return
    assert 1 <= used <= min(max_threads, n_tasks)
    assert all(0 <= t < used for t in threads), threads


def _run_threads(target, n):
    workers = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(TIMEOUT)
    assert not any(w.is_alive() for w in workers), "pool calls did not finish (deadlock?)"


# --- the pool ---------------------------------------------------------------------------

@pytest.mark.parametrize("max_threads", [1, 2, 4])
@pytest.mark.parametrize("n_tasks", [0, 1, 2, 7, 1000])
def test_every_task_runs_once(n_tasks, max_threads):
    for _ in range(3):
        record = _threads_cy._pool_record(n_tasks, max_threads)
        _check_record(record, n_tasks, max_threads)
        # Nobody else holds the pool here, so it offers the tasks to as many threads as
        # asked for (or as there are tasks).
        assert record[0] == min(n_tasks, max_threads)


def test_invalid_arguments_run_nothing():
    assert _threads_cy._pool_record(-1, 2)[0] == -1
    used, counts, threads, _, _ = _threads_cy._pool_record(3, 0)
    assert (used, counts, threads) == (-1, [0, 0, 0], [-1, -1, -1])


def test_workers_share_the_tasks():
    # Tasks that sleep leave the caller's core free: a worker, woken at the start of the
    # call, claims some of them (it has 60 ms to wake up; several attempts allowed).
    for _ in range(5):
        record = _threads_cy._pool_record(4, 2, sleep=0.02)
        _check_record(record, 4, 2)
        if record[3] == 2 and set(record[2]) == {0, 1}:
            break
    else:
        pytest.fail("no pool worker ran a task in five calls")
    # Workers are created once and reused.
    workers = _threads_cy.pool_workers()
    for _ in range(20):
        _threads_cy._pool_record(10, 2)
    assert _threads_cy.pool_workers() == workers >= 1


def test_call_from_inside_a_task_runs_inline():
    # Each task calls the pool again (3 tasks, up to 4 threads): that call returns 1 and
    # runs all its tasks with thread 0 on the task's own OS thread.
    for max_threads in (2, 4):
        record = _threads_cy._pool_record(8, max_threads, nested=True, sleep=0.001)
        _check_record(record, 8, max_threads)
        assert record[4], "a nested pool call did not run inline"


def test_concurrent_callers():
    # Six Python threads call the pool at once, repeatedly; one holds it at a time and the
    # others run inline. Every call must run each of its tasks exactly once.
    errors = []

    def caller(i):
        try:
            for r in range(15):
                n_tasks = 1 + (37 * i + r) % 60
                record = _threads_cy._pool_record(n_tasks, 1 + (i + r) % 4, sleep=2e-5)
                _check_record(record, n_tasks, 1 + (i + r) % 4)
        except AssertionError as exc:
            errors.append(exc)

    _run_threads(caller, 6)
    assert not errors, errors[0]


_FORK_SCRIPT = r"""
import os, threading, time
from matkron import _threads_cy

def check(n):
    used, counts, threads, _, _ = _threads_cy._pool_record(n, 2, sleep=0.005)
    assert counts == [1] * n and all(0 <= t < used for t in threads), (used, counts, threads)
    return set(threads)

check(8)  # the parent's workers exist
# Another thread holds the pool while the main thread forks.
holder = threading.Thread(target=check, args=(40,))
holder.start()
time.sleep(0.05)
pid = os.fork()
if pid == 0:
    ok = _threads_cy.pool_workers() == 0  # a fresh pool, not yet started
    seen = set()
    for _ in range(5):
        seen |= check(8)
    ok = ok and seen == {0, 1} and _threads_cy.pool_workers() == 1
    os._exit(0 if ok else 3)
holder.join()
deadline = time.monotonic() + 60
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        raise SystemExit("the child hung")
    time.sleep(0.01)
assert os.waitstatus_to_exitcode(status) == 0, status
check(8)
print("ok")
"""


def _run_script(script, env=None):
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", script],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip(), proc.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_child_gets_a_fresh_pool():
    assert _run_script(_FORK_SCRIPT)[0] == "ok"


def test_cdef_interface_for_kernels():
    # Kernels in other modules cimport these from matkron/_threads_cy.pxd.
    assert {"pool_run", "num_threads", "threads_for", "blas_serial_enter",
            "blas_serial_leave"} <= set(_threads_cy.__pyx_capi__)


# --- the BLAS guard ---------------------------------------------------------------------

def _blas_threads():
    """The thread count threadpoolctl reads from the library matkron controls."""
    library = matkron.blas_info()["library"]
    counts = [info["num_threads"] for info in threadpool_info()
              if os.path.realpath(info["filepath"]) == library]
    assert len(counts) == 1, (library, threadpool_info())
    return counts[0]


needs_blas_setter = pytest.mark.skipif(
    not matkron.blas_info()["setter"], reason="no thread setter found in SciPy's BLAS"
)


def test_blas_info():
    info = matkron.blas_info()
    assert set(info) == {"library", "setter", "getter", "num_threads"}
    if info["setter"]:
        assert info["setter"] in {
            "scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads", "MKL_Set_Num_Threads", "bli_thread_set_num_threads",
        }
        assert os.path.isabs(info["library"])
        assert info["num_threads"] == _blas_threads() >= 1


@needs_blas_setter
def test_blas_guard_restores_the_count():
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == 2
        assert _threads_cy._blas_serial_enter() == 1
        assert _blas_threads() == 1
        assert _threads_cy._blas_serial_enter() == 2
        _threads_cy._blas_serial_leave()
        assert _blas_threads() == 1
        _threads_cy._blas_serial_leave()
        assert _blas_threads() == 2


@needs_blas_setter
def test_blas_guard_leaves_a_count_changed_meanwhile():
    with threadpool_limits(2, user_api="blas"):
        _threads_cy._blas_serial_enter()
        with threadpool_limits(3, user_api="blas"):
            _threads_cy._blas_serial_leave()
            assert _blas_threads() == 3  # not overwritten by the guard's saved 2
    assert _blas_threads() == _threads_cy._blas_get_num_threads()


_FORK_IN_GUARD = """
import os, sys
from threadpoolctl import threadpool_limits
import matkron
from matkron import _threads_cy
with threadpool_limits(2, user_api="blas"):
    _threads_cy._blas_serial_enter()          # a region in progress in the parent
    pid = os.fork()
    if pid == 0:
        ok = _threads_cy._blas_get_num_threads() == 1   # what the fork left
        _threads_cy._blas_serial_enter()      # the child's first region pays the count back
        ok = ok and _threads_cy._blas_get_num_threads() == 1
        _threads_cy._blas_serial_leave()
        ok = ok and _threads_cy._blas_get_num_threads() == 2
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    _threads_cy._blas_serial_leave()
    assert _threads_cy._blas_get_num_threads() == 2
print(os.waitstatus_to_exitcode(status))
"""


@needs_blas_setter
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_inside_a_guarded_region_gets_its_count_back():
    out, _ = _run_script(_FORK_IN_GUARD, dict(os.environ))
    assert out.strip() == "0"


@needs_blas_setter
def test_blas_guard_concurrent_entrants():
    # Eight threads enter and leave in every interleaving their scheduling produces; inside,
    # the count is 1 whatever the others do; after the last leaver, it is back to 2.
    errors = []
    barrier = threading.Barrier(8)

    def entrant(i):
        barrier.wait()
        for r in range(300):
            _threads_cy._blas_serial_enter()
            if _threads_cy._blas_get_num_threads() != 1:
                errors.append((i, r))
            _threads_cy._blas_serial_leave()

    with threadpool_limits(2, user_api="blas"):
        _run_threads(entrant, 8)
        assert not errors, errors[:5]
        assert _blas_threads() == 2


# --- the split rule -----------------------------------------------------------------

def test_split_rule_from_calibration():
    _threads_cy._pool_reset_contention()  # no back-off left by earlier tests' pool calls
    cal = _threads_cy.calibration()
    assert cal is not None
    handoff, rate = cal["handoff_seconds"], cal["flop_rate"]
    assert 0 < handoff < 1 and rate > 1e6
    assert _threads_cy.calibration() == cal  # measured once
    # A product that takes one hand-off on one thread stays there; a huge one is split.
    assert _threads_cy.split_threads(handoff * rate, 8) == 1
    assert _threads_cy.split_threads(0.0, 8) == 1
    assert _threads_cy.split_threads(1e15, 1) == 1
    assert _threads_cy.split_threads(1e15, 2) == 2
    # Splitting starts where the two-thread estimate saves a second hand-off.
    t1 = 4.2 * handoff
    assert _threads_cy.split_threads(t1 * rate, 2) == 2
    assert _threads_cy.split_threads(0.9 * 4 * handoff * rate, 2) == 1
    flops = np.geomspace(1e3, 1e13, 40)
    counts = [_threads_cy.split_threads(f, 8) for f in flops]
    # Never more threads than the cores the process may run on.
    assert counts == sorted(counts) and counts[-1] == min(8, _available_cores())


def test_splits_back_off_while_a_worker_is_late():
    # A worker that holds a task while the caller waits most of the call (a worker
    # preempted on a busy core) makes the next 4 splits run on one thread; a probe that
    # does not pay either doubles that, one that pays ends it. Only calls of at least two
    # tasks per thread lasting 0.2 ms or more are judged.
    if _available_cores() < 2:
        pytest.skip("one core: products are never split")
    _threads_cy._pool_reset_contention()
    huge = 1e15
    assert _threads_cy.split_threads(huge, 2) == 2
    _threads_cy._pool_record(2, 2, worker_sleep=0.05)  # too few tasks to judge
    assert _threads_cy.split_threads(huge, 2) == 2
    _threads_cy._pool_record(8, 2)  # too short to judge (the worker may not have woken)
    assert _threads_cy.split_threads(huge, 2) == 2

    def late_worker():
        # Every task takes 0.5 ms, and 0.2 s more on the worker: the caller runs the
        # others and waits for the worker's one (or runs all 8 when the worker never wakes
        # in time, which does not pay either).
        used, counts, _, _, _ = _threads_cy._pool_record(8, 2, sleep=0.0005, worker_sleep=0.2)
        assert used == 2 and counts == [1] * 8

    def back_off(length):
        assert [_threads_cy.split_threads(huge, 2) for _ in range(length)] == [1] * length
        assert _threads_cy.split_threads(huge, 2) == 2  # the probe

    late_worker()
    back_off(4)
    late_worker()
    back_off(8)
    # Small products never count down the back-off.
    late_worker()
    assert _threads_cy.split_threads(0.0, 2) == 1
    back_off(16)
    # A split that pays (every task 20 ms: the worker runs some, the wait is one task).
    _, _, threads, _, _ = _threads_cy._pool_record(8, 2, sleep=0.02)
    assert threads.count(1) >= 1
    assert [_threads_cy.split_threads(huge, 2) for _ in range(3)] == [2] * 3
    late_worker()
    back_off(4)  # from the start again
    _threads_cy._pool_reset_contention()


# --- the public count -------------------------------------------------------------------

def test_set_and_get():
    for n in (1, 3, np.int64(2)):
        matkron.set_num_threads(n)
        assert matkron.get_num_threads() == n
        assert type(matkron.get_num_threads()) is int


@pytest.mark.parametrize("bad", [2.0, "2", None, True, np.True_, [2]])
def test_non_integers_rejected(bad):
    for call in (matkron.set_num_threads, matkron.threads):
        with pytest.raises(TypeError, match=r"^n must be an integer; got "):
            call(bad)


@pytest.mark.parametrize("bad", [0, -1, np.int32(-4), 2**31, 10**30])
def test_counts_out_of_range_rejected(bad):
    matkron.set_num_threads(2)
    for call in (matkron.set_num_threads, matkron.threads):
        with pytest.raises(ValueError,
                           match=rf"^n must be from 1 to 2147483647; got {int(bad)}$"):
            call(bad)
    assert matkron.get_num_threads() == 2


def test_threads_block_restores():
    matkron.set_num_threads(3)
    with matkron.threads(1):
        assert matkron.get_num_threads() == 1
        with matkron.threads(2):
            assert matkron.get_num_threads() == 2
        assert matkron.get_num_threads() == 1
    assert matkron.get_num_threads() == 3
    with pytest.raises(ZeroDivisionError):
        with matkron.threads(5):
            assert matkron.get_num_threads() == 5
            1 / 0
    assert matkron.get_num_threads() == 3


_COUNT_SCRIPT = "import matkron; print(matkron.get_num_threads())"


def _count_in_subprocess(value):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MATKRON_NUM_THREADS", "OMP_NUM_THREADS")}
    if value is not None:
        env["MATKRON_NUM_THREADS"] = value
    return int(_run_script(_COUNT_SCRIPT, env)[0])


def test_import_reads_the_environment():
    # The count a new process starts with; the rules themselves are checked in-process
    # below, on the function the import calls.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _count_in_subprocess(None) == cores
    assert _count_in_subprocess("3") == 3


def _default_count(monkeypatch, value, omp=None):
    """_default_count() under MATKRON_NUM_THREADS=value and OMP_NUM_THREADS=omp (None:
    unset), with the warnings it gives."""
    for name, setting in (("MATKRON_NUM_THREADS", value), ("OMP_NUM_THREADS", omp)):
        if setting is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, setting)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        count = matkron._threads._default_count()
    return count, [str(w.message) for w in record if w.category is RuntimeWarning]


def test_environment_variable(monkeypatch):
    cores = _available_cores()
    assert _default_count(monkeypatch, None) == (cores, [])
    assert _default_count(monkeypatch, "3") == (3, [])
    assert _default_count(monkeypatch, " 1 ") == (1, [])
    for bad in ("0", "two", "1.5", "3000000000"):
        count, messages = _default_count(monkeypatch, bad)
        assert count == cores
        assert len(messages) == 1
        assert messages[0].startswith("MATKRON_NUM_THREADS must be an integer number of threads")
        assert repr(bad) in messages[0]


def test_omp_num_threads_is_the_fallback(monkeypatch):
    # As numexpr: MATKRON_NUM_THREADS first, then OMP_NUM_THREADS (Dask's nanny starts
    # workers with OMP_NUM_THREADS=1), then the cores.
    assert _default_count(monkeypatch, None, omp="1") == (1, [])
    assert _default_count(monkeypatch, "3", omp="1") == (3, [])
    count, messages = _default_count(monkeypatch, None, omp="lots")
    assert count == _available_cores()
    assert len(messages) == 1
    assert messages[0].startswith("OMP_NUM_THREADS must be an integer number of threads")
