"""The threads suite: matkron on two threads, and matkron inside a solver beside a busy core.

Two sections, one table:

- scaling: y = (F1 ⊗ … ⊗ Fk) x with m = 16 C-ordered columns at 512², 64³ and 16⁴
  (:data:`SCALING_CASES`): ``kron_matvec`` with matkron's own threads at 1 and at 2
  (``matkron.threads(n)``, BLAS pinned to 1: matkron runs its own threads), against the
  same GEMMs by NumPy's BLAS on 1 and on 2 threads into preallocated buffers (the floors).
  Without ``matkron.threads`` the 2-thread cells are n/a.
- busy core: ``K @ b`` for ``K = matkron.kronsum(T, T)`` (T the n×n 1-D Laplacian
  tridiag(-1, 2, -1), b of length n²) and a fixed number of ``scipy.sparse.linalg.cg``
  iterations on it, (a) on an idle machine with everything on one thread, then with a
  child process spinning on a core (started and stopped here, :func:`busy_core`): (b) with
  matkron's default threads and both OpenBLAS pools at their defaults, as a user gets
  them (the harness's pinning switched off, :func:`~.pinning.unpinned`), and (c) the same
  with NumPy's pool pinned to 1 by the user, which separates matkron's part from the
  threaded dot products of NumPy inside cg; (d) as (b) with K replaced by a diagonal of
  its eigenvalues, whose product costs nothing: cg's own work beside the busy core; (e) as
  (d) with a product that busy-waits (a)'s K @ b time on the calling thread: cg beside the
  busy core for a product as fast as on an idle core that runs no threads, the least (b)
  can give.
"""

import contextlib
import functools
import operator
import subprocess
import sys
import time

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.sparse.linalg import cg
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

import matkron

from . import features, pinning
from .environment import _blas_owner
from .machine import plan_flops
from .report import NA, Progress, format_time
from .rows import add_ratios, check, new_row
from .suite import Column, Outcome, Suite
from .timing import measure, measure_slow

__all__ = ["SUITE", "busy_core", "cg_iterations", "laplacian", "scaling_case"]

# Scaling: factor shapes by case, all with RHS C-ordered columns.
SCALING_CASES = {
    "512^2": ((512, 512),) * 2,
    "64^3": ((64, 64),) * 3,
    "16^4": ((16, 16),) * 4,
}
QUICK_SCALING_CASES = ("64^3", "16^4")  # 512^2 m = 16 is 8.6 GFLOP a call
RHS = 16
THREADS = 2

# Busy core: T is BUSY_N × BUSY_N, cg runs CG_ITERATIONS iterations (by config.quick).
BUSY_N = {False: 256, True: 128}
CG_ITERATIONS = {False: 200, True: 50}
# A relative tolerance cg does not reach within the iterations: every iteration runs.
CG_RTOL = 1e-14
# cg calls over this many seconds are timed by single calls, within the budget per row.
SLOW_CALL_S = 0.1
SLOW_BUDGET_S = {False: 20.0, True: 2.0}
# What the busy child runs: it says so once it runs, then spins until stopped.
SPIN = "import sys\nsys.stdout.write('spinning\\n')\nsys.stdout.flush()\nwhile True:\n    pass"

# Targets of issue 9.
SPEEDUP_TARGET = 1.75
FLOOR_TARGET = 1.15
BUSY_TARGET = 1.5

COLUMNS = [
    Column("section", "section", "text"),
    Column("case", "case", "text"),
    Column("mk1_s", "mk 1 thr", "time"),
    Column("mk2_s", "mk 2 thr", "time"),
    Column("floor1_s", "floor 1 thr", "time"),
    Column("floor2_s", "floor 2 thr", "time"),
    Column("speedup", "mk 1/2", "ratio", ("mk1_s", "mk2_s")),
    Column("mk2/floor2", "mk2/floor2", "ratio", ("mk2_s", "floor2_s")),
    Column("floor_speedup", "floor 1/2", "ratio", ("floor1_s", "floor2_s")),
    Column("mk2_gflops", "mk2 GF/s", "ratio"),
    Column("matvec_s", "K @ b", "time"),
    Column("cg_s", "cg", "time"),
    Column("cg_iterations", "cg its", "int"),
    Column("matvec/idle", "K@b/(a)", "ratio"),
    Column("cg/idle", "cg/(a)", "ratio"),
]

LEGEND = [
    "scaling      y = (F1 ⊗ … ⊗ Fk) x, x (N, 16) C-ordered, a new result each call",
    "mk 1 thr     matkron.kron_matvec in `with matkron.threads(1)`, BLAS pinned to 1",
    "mk 2 thr     the same in `with matkron.threads(2)` (n/a: this matkron has no own threads)",
    "floor 1 thr  the method's GEMMs alone, np.matmul into preallocated buffers in the order of",
    "               matkron.kron_order, NumPy's BLAS on 1 thread (as the multi suite's floor)",
    "floor 2 thr  the same with NumPy's BLAS on 2 threads, timed after the other three",
    "ratios       mk 1/2 = mk 1 thr / mk 2 thr (the speed-up), mk2/floor2 = mk 2 thr / floor",
    "               2 thr, floor 1/2 = floor 1 thr / floor 2 thr (what BLAS gains)",
    "mk2 GF/s     flops of matkron's plan (2 × the multiply-adds of its GEMMs) / mk 2 thr",
    "busy core    K = matkron.kronsum(T, T) (= I⊗T + T⊗I, as scipy.sparse.kronsum), T the",
    "               n×n 1-D Laplacian tridiag(-1, 2, -1), b random of length n²",
    "K @ b        one product; cg: scipy.sparse.linalg.cg(K, b, rtol=1e-14, maxiter=its),",
    "               every iteration run (cg its counts them with a callback)",
    "(a)          no other load; matkron.threads(1) and both BLAS pinned to 1: the reference",
    "(b)          a child process spinning on a core (`while True: pass`); matkron's default",
    "               threads, NumPy's and SciPy's OpenBLAS at their defaults (not pinned)",
    "(c)          as (b), with NumPy's OpenBLAS pinned to 1 by the user (threadpoolctl,",
    "               selected by its file): matkron's part without NumPy's threaded vdot in cg",
    "(d)          as (b), cg on diag(w), w the eigenvalues of K: cg's own vector work (the same",
    "               per iteration; the product is one elementwise multiply), not checked",
    "(e)          as (d), each product first busy-waiting (a)'s K @ b time on the calling",
    "               thread: a product at idle speed using no threads, not checked",
    "K@b/(a)      K @ b / its time in (a); cg/(a) likewise",
]


# -- scaling -----------------------------------------------------------------------------


def scaling_case(name):
    """Random float64 factors of `name` (:data:`SCALING_CASES`) and x (N, RHS) C-ordered."""
    rng = np.random.default_rng([list(SCALING_CASES).index(name), 9])
    mats = [rng.standard_normal(shape) for shape in SCALING_CASES[name]]
    x = rng.standard_normal((int(np.prod([q for _, q in SCALING_CASES[name]])), RHS))
    return mats, x


def gemm_floor(mats, x):
    """The GEMMs of (F1 ⊗ … ⊗ Fk) x alone, as the multi suite's floor: a call returning the
    last buffer. Step t applies factor i = order[t] to a tensor of S entries as
    ``np.matmul(F, X, out=Y)`` with X (q, S/q) and Y (p, S/q) views of two buffers."""
    shapes = [f.shape for f in mats]
    order, _ = matkron.kron_order(shapes, x.shape[1])
    sizes = [x.size]
    for i in order:
        p, q = shapes[i]
        sizes.append(sizes[-1] // q * p)
    source = np.ravel(x, order="K").copy()
    buffers = [np.empty(max(sizes[1:])), np.empty(max(sizes[1:]))]
    steps = []
    for t, i in enumerate(order):
        p, q = shapes[i]
        src = source if t == 0 else buffers[(t - 1) % 2]
        steps.append((mats[i], src[: sizes[t]].reshape(q, -1),
                      buffers[t % 2][: sizes[t + 1]].reshape(p, -1)))

    def floor():
        for F, X, Y in steps:
            np.matmul(F, X, out=Y)
        return Y

    return floor


def _on_threads(n, func):
    """`func` run in ``matkron.threads(n)``."""
    def call():
        with features.matkron_threads(n):
            return func()
    return call


def _measure_scaling(name, config):
    mats, x = scaling_case(name)
    product = functools.partial(matkron.kron_matvec, mats, x)
    statements = {"mk1": _on_threads(1, product), "floor1": gemm_floor(mats, x)}
    if features.has_threads():
        statements["mk2"] = _on_threads(THREADS, product)
        expected = statements["mk1"]()
        if not np.allclose(statements["mk2"](), expected, rtol=1e-12, atol=1e-12):
            raise RuntimeError(f"kron_matvec on {THREADS} threads differs at {name}")
    with threadpool_limits(limits=1):
        times = measure(statements, None, config.repeat, config.min_time)
    with threadpool_limits(limits=THREADS, user_api="blas"):
        floor = statements["floor1"]
        times["floor2"] = measure({"floor2": floor}, None, config.repeat, config.min_time)[
            "floor2"]
    mk2 = times.get("mk2", NA)
    row = new_row(
        COLUMNS, section="scaling", case=f"{name}, m = {RHS}",
        mk1_s=times["mk1"], mk2_s=mk2, floor1_s=times["floor1"], floor2_s=times["floor2"],
        mk2_gflops=NA if mk2 is NA else plan_flops(mats, x) / mk2 / 1e9,
    )
    return add_ratios(row, COLUMNS)


# -- busy core ---------------------------------------------------------------------------


def laplacian(n):
    """The dense n×n 1-D Laplacian tridiag(-1, 2, -1): SPD, condition number ~ 0.4 n²."""
    return 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


@contextlib.contextmanager
def busy_core():
    """Run the block with a child process spinning on a core; stop it however the block ends.

    Yields
    ------
    subprocess.Popen
        The child, running (it has said so) until the block ends; then terminated (killed
        if it does not stop within 5 s) and waited for, on KeyboardInterrupt too.

    Examples
    --------
    >>> with busy_core() as child:
    ...     running = child.poll() is None
    >>> running, child.poll() is not None
    (True, True)
    """
    child = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()  # it spins from here on
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


def cg_iterations(K, b, iterations):
    """A call running ``cg(K, b)`` for `iterations` iterations; it returns the count run."""
    def solve():
        count = 0

        def callback(xk):
            nonlocal count
            count += 1

        cg(K, b, rtol=CG_RTOL, maxiter=iterations, callback=callback)
        return count
    return solve


def _numpy_pool_pinned():
    """NumPy's BLAS pools limited to 1 thread, as a user would (selected by file)."""
    controller = ThreadpoolController()
    files = [info.filepath for info in controller.lib_controllers
             if info.user_api == "blas" and _blas_owner(info.filepath) == "numpy"]
    return controller.select(filepath=files).limit(limits=1)


def _measure_busy(label, K, b, config, context):
    iterations = CG_ITERATIONS[config.quick]
    with context():
        matvec = measure({"matvec": functools.partial(operator.matmul, K, b)}, None,
                         config.repeat, config.min_time)["matvec"]
        times, _, results = measure_slow({"cg": cg_iterations(K, b, iterations)},
                                         config.repeat, config.min_time, SLOW_CALL_S,
                                         SLOW_BUDGET_S[config.quick])
    return new_row(COLUMNS, section="busy core", case=label, matvec_s=matvec,
                   cg_s=times["cg"], cg_iterations=results["cg"])


@contextlib.contextmanager
def _pinned_to_one():
    with threadpool_limits(limits=1), features.matkron_threads(1):
        yield


@contextlib.contextmanager
def _user_numpy_pinned():
    with pinning.unpinned(), _numpy_pool_pinned():
        yield


def _spectrum_operator(T, wait=0.0):
    """diag(w) for the eigenvalues w of kronsum(T, T), as a LinearOperator: cg on it runs
    the same vector work per iteration as on K (and, with K's spectrum, every iteration),
    while its product is one elementwise multiply, after busy-waiting `wait` seconds on
    the calling thread when given (a product of that time that runs no threads)."""
    lam = np.linalg.eigvalsh(T)
    w = np.add.outer(lam, lam).ravel()

    def matvec(x):
        if wait > 0:
            until = time.perf_counter() + wait
            while time.perf_counter() < until:
                pass
        return w * x.ravel()

    return scipy.sparse.linalg.LinearOperator((w.size, w.size), matvec=matvec,
                                              rmatvec=matvec, dtype=w.dtype)


def cg_bound(rows):
    """cg/(a) per iteration in (e): what cg beside the busy core costs with a product at
    idle speed that runs no threads, the least any product gives in (b)."""
    idle, waiting = rows[0], rows[4]
    return ((waiting["cg_s"] / waiting["cg_iterations"])
            / (idle["cg_s"] / idle["cg_iterations"]))


def _busy_rows(config):
    """Rows (a) to (e); the spinning child's pid is kept in each busy row."""
    n = BUSY_N[config.quick]
    T = laplacian(n)
    K = matkron.kronsum(T, T)
    b = np.random.default_rng(n).standard_normal(n * n)
    if not np.allclose(K @ b, scipy.sparse.kronsum(T, T, format="csr") @ b):
        raise RuntimeError("matkron.kronsum(T, T) @ b differs from scipy.sparse.kronsum's")
    rows = [_measure_busy("(a) idle, all on 1 thread", K, b, config, _pinned_to_one)]
    free = _spectrum_operator(T)
    with busy_core() as child:
        rows.append(_measure_busy("(b) busy core, defaults", K, b, config, pinning.unpinned))
        rows.append(_measure_busy("(c) busy core, NumPy's BLAS on 1", K, b, config,
                                  _user_numpy_pinned))
        rows.append(_measure_busy("(d) as (b), cg's own work", free, b, config,
                                  pinning.unpinned))
        rows.append(_measure_busy("(e) as (d), an idle-speed product",
                                  _spectrum_operator(T, wait=rows[0]["matvec_s"]), b, config,
                                  pinning.unpinned))
    for row in rows[1:]:
        row["spinner_pid"] = child.pid
    idle = rows[0]
    for row in rows:
        row["matvec/idle"] = row["matvec_s"] / idle["matvec_s"]
        row["cg/idle"] = row["cg_s"] / idle["cg_s"]
    return rows, n


# -- the suite ---------------------------------------------------------------------------


def _scaling_names(config):
    return QUICK_SCALING_CASES if config.quick else tuple(SCALING_CASES)


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    n = BUSY_N[config.quick]
    # The plan runs before the command line pins the pools: these are their defaults.
    defaults = ", ".join(f"{_blas_owner(info['filepath'])} {info['num_threads']}"
                         for info in threadpool_info() if info["user_api"] == "blas")
    return [
        "threads suite: matkron's own threads, and matkron in cg beside a busy core",
        f"  scaling: {', '.join(_scaling_names(config))} with m = {RHS}; matkron.threads: "
        f"{'yes' if features.has_threads() else 'n/a (not in this matkron)'}; "
        f"matkron's default threads: {features.num_threads()}",
        f"  busy core: T {n}×{n}, b of length {n * n}, {CG_ITERATIONS[config.quick]} cg "
        f"iterations; BLAS threads in (b): {defaults}",
        f"  median of {config.repeat} samples, each >= {config.min_time * 1e3:g} ms; cg calls "
        f"over {format_time(SLOW_CALL_S)} timed singly within {SLOW_BUDGET_S[config.quick]:g} "
        "s per row",
    ]


def _cell(row):
    return row["case"]


def _checks(rows):
    scaling = [row for row in rows if row["section"] == "scaling"]
    busy = [row for row in rows if row["section"] == "busy core"]
    checks = [
        check(scaling, "speedup", f"{THREADS} threads >= {SPEEDUP_TARGET:g}x faster than 1",
              operator.ge, SPEEDUP_TARGET, _cell),
        check(scaling, "mk2/floor2", f"{THREADS} threads <= {FLOOR_TARGET:g}x the "
              f"{THREADS}-thread GEMM floor", operator.le, FLOOR_TARGET, _cell),
    ]
    for label, selected in (("(b) defaults", busy[1:2]), ("(c) NumPy's BLAS on 1", busy[2:3])):
        for key, what in (("matvec/idle", "K @ b"), ("cg/idle", "cg")):
            checks.append(check(selected, key, f"busy core, {label}: {what} <= "
                                f"{BUSY_TARGET:g}x idle on 1 thread", operator.le,
                                BUSY_TARGET, _cell))
    return checks


def run(config):
    """Run the threads suite with `config` (see :class:`~.suite.Config`); its outcome."""
    names = _scaling_names(config)
    rows = []
    with Progress(len(names) + 1) as progress:
        for name in names:
            progress.step(f"scaling {name}")
            rows.append(_measure_scaling(name, config))
        progress.step("busy core: (a) idle, (b) to (e) beside a spinning child")
        busy, n = _busy_rows(config)
        rows.extend(busy)
    notes = list(LEGEND)
    short = [row for row in busy if row["cg_iterations"] != CG_ITERATIONS[config.quick]]
    if short:
        notes.append("cg stopped early at " + ", ".join(
            f"{row['case']} ({row['cg_iterations']} its)" for row in short))
    notes.append(f"busy child   pid {busy[1]['spinner_pid']}, stopped after rows (b) to (e)")
    notes.append(f"cg bound     per iteration, cg (e) / cg (a) = {cg_bound(busy):.2f}: cg/(a) "
                 "in (b) for a product as fast as on an idle core that runs no threads")
    return Outcome(COLUMNS, rows, notes, _checks(rows))


SUITE = Suite(
    name="threads",
    summary="matkron on 1 and 2 threads against the 2-thread floor; K @ b and cg beside a "
    "busy core",
    plan=plan,
    run=run,
)
