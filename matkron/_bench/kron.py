"""The kron suite: y = (A ⊗ B) x for square n-by-n factors, side by side with its baselines.

Every cell (n, layout of x) times, on the same operands and interleaved:

- ``kron_matvec([A, B], x)`` and ``K @ x`` for ``K = matkron.kron(A, B)``;
- the NumPy vec trick, (A ⊗ B) vec(C) = vec(B C Aᵀ), written as the fastest NumPy
  expression found for the layout of x (:data:`VEC_TRICK`), and the same expression
  wrapped in a :class:`scipy.sparse.linalg.LinearOperator`;
- the naive ``np.kron(A, B) @ x`` with the dense matrix built beforehand (its build is
  timed once per n), while the dense matrix fits under the memory cap;
- the GEMM floor: the two GEMMs of the method alone, ``np.matmul`` into preallocated
  buffers, with the method's shapes and flop count.
"""

import functools
import operator

import numpy as np
from scipy.sparse.linalg import LinearOperator

import matkron
from matkron import _workspace_cy

from . import features
from .machine import percent_of_peak, plan_flops
from .report import Progress, format_bytes
from .rows import add_ratios, check, new_row
from .suite import Column, Outcome, PlotSpec, Suite
from .timing import measure, traced_peak

__all__ = ["SUITE", "Case", "dense_bytes", "factors", "operand", "vec_trick"]

# Compute-bound cells (issue 9): n >= COMPUTE_BOUND_N, whose kron_matvec should reach
# PEAK_TARGET_PCT % of the measured single-core FMA peak.
COMPUTE_BOUND_N = 128
PEAK_TARGET_PCT = 80.0

SIZES = (4, 8, 16, 32, 64, 128, 256, 512)
QUICK_SIZES = (4, 8, 16, 32, 64, 128, 256)
# x is a vector (m = 1), or an (n², RHS) array in C or Fortran order.
LAYOUTS = ("1-D", "C", "F")
RHS = 16
LAYOUT_NAMES = {"1-D": "m = 1", "C": f"m = {RHS}, C-ordered x", "F": f"m = {RHS}, F-ordered x"}

# The NumPy vec trick for each layout of x, as timed (and as the LinearOperator wraps it).
#   1-D: x = vec(C) with C = x.reshape(n, n, order="F"); y = vec(B C Aᵀ).
#   C:   x.reshape(n, n, m)[b, a, r] = C_r[a, b]; B @ it is n batched GEMMs giving
#        (B C_r)[c, b] at [b, c, r]; A @ that as (n, n·m) is one GEMM giving
#        (B C_r Aᵀ)[c, d] at [d, c, r], the C-ordered (n², m) result.
#   F:   x as (n, n·m) is [C_1 … C_m]; B @ it is one GEMM; A @ (B C_r)ᵀ is m batched
#        GEMMs giving (B C_r Aᵀ)ᵀ at [r, d, c], whose memory is the F-ordered result.
VEC_TRICK = {
    "1-D": "(B @ x.reshape(n, n, order='F') @ A.T).ravel(order='F')",
    "C": "(A @ (B @ x.reshape(n, n, m)).reshape(n, n * m)).reshape(n * n, m)",
    "F": (
        "(A @ (B @ x.reshape(n, n * m, order='F')).reshape(n, n, m, order='F')"
        ".transpose(2, 1, 0)).reshape(m, n * n).T"
    ),
}


def vec_trick(A, B, m, layout):
    """The NumPy vec trick of `layout` for factors A, B and m columns, as a function of x.

    The function computes the expression :data:`VEC_TRICK` shows for the layout.

    Examples
    --------
    >>> A, B = factors(3)
    >>> x = np.arange(9.0)
    >>> bool(np.allclose(vec_trick(A, B, 1, "1-D")(x), np.kron(A, B) @ x))
    True
    """
    n = A.shape[0]
    if layout == "1-D":
        return lambda x: (B @ x.reshape(n, n, order="F") @ A.T).ravel(order="F")
    if layout == "C":
        return lambda x: (A @ (B @ x.reshape(n, n, m)).reshape(n, n * m)).reshape(n * n, m)
    return lambda x: (
        (A @ (B @ x.reshape(n, n * m, order="F")).reshape(n, n, m, order="F")
         .transpose(2, 1, 0)).reshape(m, n * n).T
    )


COLUMNS = [
    Column("n", "n", "int"),
    Column("m", "m", "int"),
    Column("x", "x", "text"),
    Column("kron_matvec_s", "kron_matvec", "time"),
    Column("kron_matvec_out_s", "kv out=", "time"),
    Column("kron_operator_s", "K @ x", "time"),
    Column("vec_trick_s", "vec trick", "time"),
    Column("linear_operator_s", "LinOp @ x", "time"),
    Column("naive_build_s", "np.kron", "time"),
    Column("naive_matvec_s", "dense @ x", "time"),
    Column("gemm_floor_s", "GEMM floor", "time"),
    Column("kron_matvec/floor", "kv/floor", "ratio", ("kron_matvec_s", "gemm_floor_s")),
    Column("kron_matvec_out/floor", "out/floor", "ratio", ("kron_matvec_out_s", "gemm_floor_s")),
    Column("kron_operator/floor", "K/floor", "ratio", ("kron_operator_s", "gemm_floor_s")),
    Column("vec_trick/kron_matvec", "vec/kv", "ratio", ("vec_trick_s", "kron_matvec_s")),
    Column("linear_operator/kron_operator", "LinOp/K", "ratio",
           ("linear_operator_s", "kron_operator_s")),
    Column("naive_matvec/kron_matvec", "dense/kv", "ratio", ("naive_matvec_s", "kron_matvec_s")),
    Column("kron_matvec_gflops", "kv GF/s", "ratio"),
    Column("kron_matvec_peak_pct", "kv %peak", "ratio"),
    Column("gemm_floor_peak_pct", "floor %peak", "ratio"),
    Column("naive_peak_bytes", "mem dense", "bytes"),
    Column("kron_matvec_peak_bytes", "mem kv", "bytes"),
    Column("first_estimate_s", "1st+ est", "time"),
    Column("first_measure_s", "1st+ meas", "time"),
    Column("planning_calls", "calls->meas", "int"),
]

LEGEND = [
    "kron_matvec  matkron.kron_matvec([A, B], x)",
    "kv out=      matkron.kron_matvec([A, B], x, out=out), out preallocated in the memory order",
    "               of kron_matvec's new result once its plan is measured",
    "K @ x        K = matkron.kron(A, B), a KronOperator made once per n",
    "vec trick    NumPy, the fastest expression found for the layout of x:",
    *(f"               {layout:3}  {expr}" for layout, expr in VEC_TRICK.items()),
    "LinOp @ x    scipy.sparse.linalg.LinearOperator(matvec=, matmat=) wrapping the vec trick",
    "np.kron      building the dense np.kron(A, B), timed once per n (not in dense @ x)",
    "dense @ x    np.kron(A, B) @ x with the dense matrix built beforehand, timed after",
    "               the other methods (not interleaved with them)",
    "GEMM floor   the two GEMMs alone into preallocated buffers, with the method's shapes:",
    "               np.matmul(B, X, out=T); np.matmul(T2, A.T, out=Y), X = x as (n, n*m),",
    "               T2 = T as (n*m, n); NumPy's OpenBLAS (matkron calls SciPy's)",
    "ratios       kv/floor = kron_matvec / GEMM floor, out/floor = kv out= / GEMM floor,",
    "             K/floor = K @ x / GEMM floor,",
    "             vec/kv = vec trick / kron_matvec, LinOp/K = LinOp @ x / K @ x,",
    "             dense/kv = dense @ x / kron_matvec (above 1: the second is faster)",
    "kv GF/s      flops of matkron's plan / kron_matvec time, flops = 2 × the multiply-adds",
    "               of its GEMMs = 2 × 2 n³ m for two n×n factors (machine.plan_flops)",
    "%peak        GF/s as a percentage of the measured single-core FMA peak (header):",
    "               kv %peak for kron_matvec, floor %peak for the GEMM floor",
    "1st+ est     the first call's extra cost on a new key, first call - steady median, with",
    "1st+ meas      matkron.set_planner('estimate') and ('measure'); calls->meas: calls until",
    "               matkron.export_wisdom() holds the measured plan (n/a: no measuring planner)",
    "mem dense    tracemalloc peak of the naive route: building np.kron(A, B), then the product",
    "mem kv       tracemalloc peak of a kron_matvec call plus the kernels' scratch buffer it",
    "               allocated (C memory, released before the call, so it counts); both mem",
    "               columns include the result",
]


def factors(n):
    """Random float64 factors A and B of order `n`, the same in every run.

    Examples
    --------
    >>> A, B = factors(4)
    >>> A.shape, B.shape, A.dtype
    ((4, 4), (4, 4), dtype('float64'))
    """
    rng = np.random.default_rng(n)
    return rng.standard_normal((n, n)), rng.standard_normal((n, n))


def operand(n, layout):
    """The random x of a cell, the same in every run: a vector, or (n², 16) in C or F order.

    Examples
    --------
    >>> x = operand(4, "F")
    >>> x.shape, x.flags.f_contiguous
    ((16, 16), True)
    """
    m = 1 if layout == "1-D" else RHS
    rng = np.random.default_rng([n, LAYOUTS.index(layout)])
    x = rng.standard_normal(n * n if m == 1 else (n * n, m))
    return np.asarray(x, order="C" if layout == "C" else "F")


def dense_bytes(n):
    """The size in bytes of the dense float64 ``np.kron(A, B)`` for factors of order `n`."""
    return np.dtype(np.float64).itemsize * n**4


class Case:
    """The operands of one cell, with every method ready to run.

    Parameters
    ----------
    A, B : ndarray
        Square float64 factors of order n.
    layout : {"1-D", "C", "F"}
        x is a random vector of length n² (m = 1) or a random (n², 16) array in C or
        Fortran order.
    dense : ndarray, optional
        ``np.kron(A, B)``, for the naive route; without it that route is left out.

    Attributes
    ----------
    n, m : int
        The factor order and the number of right-hand sides.
    x : ndarray
        The operand.
    K : KronOperator
        ``matkron.kron(A, B)``.
    out : ndarray
        The preallocated result of "kron_matvec_out", in the memory order of
        kron_matvec's new result once its plan is measured.
    flops : int
        The flops of matkron's plan (:func:`~.machine.plan_flops`), the floor's too.
    op : scipy.sparse.linalg.LinearOperator
        The vec trick wrapped as an operator: matvec for vectors, matmat for x.
    vec_trick : callable
        ``vec_trick(x)``: the NumPy vec trick expression of `layout` (:func:`vec_trick`).
    statements : dict of str to callable
        Each method as a call without arguments returning its result, by name (the
        floor's result is its output buffer Y).
    A, B, dense, layout
        As given.

    Examples
    --------
    >>> case = Case(*factors(4), "C")
    >>> case.x.shape, sorted(case.statements)[:3]
    ((16, 16), ['gemm_floor', 'kron_matvec', 'kron_matvec_out'])
    >>> case.check()
    """

    def __init__(self, A, B, layout, dense=None):
        n = A.shape[0]
        m = 1 if layout == "1-D" else RHS
        x = operand(n, layout)
        self.n, self.m, self.layout = n, m, layout
        self.A, self.B, self.x, self.dense = A, B, x, dense
        self.K = matkron.kron(A, B)
        self.vec_trick = vec_trick(A, B, m, layout)
        self.op = LinearOperator(
            (n * n, n * n),
            matvec=vec_trick(A, B, 1, "1-D"),
            matmat=self.vec_trick if m > 1 else None,
            dtype=np.float64,
        )
        # out= in the memory order of kron_matvec's new result for this x, once measured.
        self.out = out = np.empty_like(
            features.settled_result(functools.partial(matkron.kron_matvec, [A, B], x)))
        self.flops = plan_flops([A, B], x)
        self.statements = {
            "kron_matvec": functools.partial(matkron.kron_matvec, [A, B], x),
            "kron_matvec_out": functools.partial(matkron.kron_matvec, [A, B], x, out=out),
            "kron_operator": functools.partial(operator.matmul, self.K, x),
            "vec_trick": functools.partial(self.vec_trick, x),
            "linear_operator": functools.partial(operator.matmul, self.op, x),
            "gemm_floor": self._floor(),
        }
        if dense is not None:
            self.statements["naive_matvec"] = functools.partial(np.matmul, dense, x)

    def _floor(self):
        """The GEMM floor: ``np.matmul(B, X, out=T); np.matmul(T2, A.T, out=Y)``, returning Y.

        X is x as (n, n·m) and T2 is T as (n·m, n), both views in the memory order of x,
        so the two GEMMs have the method's shapes; for m = 1 they compute vec(B C Aᵀ) in Y.
        """
        n, m, A, B = self.n, self.m, self.A, self.B
        order = "C" if self.layout == "C" else "F"
        X = self.x.reshape(n, n * m, order=order)
        T = np.empty((n, n * m), order=order)
        T2 = T.reshape(n * m, n, order=order)
        Y = np.empty((n * m, n), order=order)
        At, matmul = A.T, np.matmul

        def floor():
            matmul(B, X, out=T)
            matmul(T2, At, out=Y)
            return Y

        return floor

    def check(self):
        """Check that every method computes (A ⊗ B) x, the floor too when m = 1.

        The reference is the dense product when `dense` was given, else the vec trick.

        Raises
        ------
        RuntimeError
            Naming the method and the cell, if a result differs beyond rounding.
        """
        results = {
            name: call() for name, call in self.statements.items() if name != "gemm_floor"
        }
        if self.m == 1:
            results["gemm_floor"] = self.statements["gemm_floor"]().ravel(order="F")
        reference = results.get("naive_matvec", results["vec_trick"])
        atol = 1e-10 * np.abs(reference).max()
        for name, y in results.items():
            if y.shape != reference.shape or not np.allclose(y, reference, 1e-10, atol):
                raise RuntimeError(
                    f"{name} does not compute (A ⊗ B) x for n={self.n}, x {self.layout}"
                )


def _sizes(config):
    return QUICK_SIZES if config.quick else SIZES


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    sizes = _sizes(config)
    dense_sizes = [n for n in sizes if dense_bytes(n) <= config.mem_cap]
    reach = f"n <= {dense_sizes[-1]}" if dense_sizes else "no n"
    return [
        "kron suite: y = (A ⊗ B) x for random float64 n×n factors A and B",
        (
            f"  n in {', '.join(map(str, sizes))}; x a vector (m = 1) or an (n², {RHS}) array "
            "in C or Fortran order"
        ),
        (
            f"  median of {config.repeat} samples per method, each a loop of calls lasting "
            f">= {config.min_time * 1e3:g} ms; methods interleaved within each cell"
        ),
        (
            "  naive np.kron route while the dense matrix fits in "
            f"{format_bytes(config.mem_cap)} ({reach})"
        ),
    ]


def _measure_case(case, config, build_time, build_peak, planning):
    """Time and trace one cell; its row. `planning`: :func:`~.features.first_calls`."""
    case.check()
    # The dense product streams a matrix of up to 2 GiB through the caches and the TLB:
    # timed apart, so that it does not slow whichever method follows it in a round (3-8 %
    # at n = 128, despite the warm-up call before each sample).
    together = {name: s for name, s in case.statements.items() if name != "naive_matvec"}
    times = measure(together, None, config.repeat, config.min_time)
    if "naive_matvec" in case.statements:
        times |= measure({"naive_matvec": case.statements["naive_matvec"]}, None,
                         config.repeat, config.min_time)
    gflops = {name: case.flops / times[name] / 1e9 for name in ("kron_matvec", "gemm_floor")}
    # The kernels' scratch buffer is C memory, which tracemalloc does not see: released
    # first, its size after the call is what the call allocated.
    _workspace_cy.release_workspace()
    kron_peak, _ = traced_peak(functools.partial(matkron.kron_matvec, [case.A, case.B], case.x))
    kron_peak += _workspace_cy.workspace_buffer()[1]
    naive_peak = None
    if case.dense is not None:
        product_peak, _ = traced_peak(functools.partial(np.matmul, case.dense, case.x))
        naive_peak = max(build_peak, case.dense.nbytes + product_peak)
    row = new_row(
        COLUMNS,
        n=case.n,
        m=case.m,
        x=case.layout,
        case=LAYOUT_NAMES[case.layout],
        **{f"{name}_s": times.get(name) for name in case.statements},
        naive_build_s=build_time,
        naive_peak_bytes=naive_peak,
        kron_matvec_peak_bytes=kron_peak,
        kron_matvec_gflops=gflops["kron_matvec"],
        kron_matvec_peak_pct=percent_of_peak(gflops["kron_matvec"]),
        gemm_floor_peak_pct=percent_of_peak(gflops["gemm_floor"]),
        first_estimate_s=planning.get("first+ estimate"),
        first_measure_s=planning.get("first+ measure"),
        planning_calls=planning.get("calls"),
    )
    return add_ratios(row, COLUMNS)


def _cell(row):
    return f"n={row['n']}" + ("" if row["m"] == 1 else f" (x {row['x']})")


def _check(rows, key, target, compare, bound):
    return check(rows, key, target, compare, bound, _cell)


def _checks(rows):
    """The issue's targets for the kron suite."""
    checks = []
    for layout in LAYOUTS:
        selected = [row for row in rows if row["n"] >= 64 and row["x"] == layout]
        checks.append(_check(
            selected, "kron_matvec/floor",
            f"n >= 64, {LAYOUT_NAMES[layout]}: kron_matvec / GEMM floor <= 1.10",
            operator.le, 1.10,
        ))
    small = [row for row in rows if row["n"] <= 16 and row["m"] == 1]
    checks.append(_check(
        small, "vec_trick/kron_matvec",
        "n <= 16, m = 1: kron_matvec >= 3x faster than the NumPy vec trick",
        operator.ge, 3.0,
    ))
    checks.append(_check(
        small, "linear_operator/kron_operator",
        "n <= 16, m = 1: K @ x >= 2x faster than the LinearOperator-wrapped vec trick",
        operator.ge, 2.0,
    ))
    checks.append(_check(
        [row for row in rows if row["n"] >= 8], "naive_matvec/kron_matvec",
        "n >= 8: kron_matvec faster than np.kron(A, B) @ x without its construction",
        operator.gt, 1.0,
    ))
    # Issue 9: every cell, a new result and out=, against the floor of the BLAS's own kernel.
    for key, method in (("kron_matvec/floor", "kron_matvec"), ("kron_matvec_out/floor",
                                                                "kron_matvec out=")):
        checks.append(_check(
            rows, key, f"every cell: {method} / GEMM floor <= 1.10", operator.le, 1.10,
        ))
    checks.append(_check(
        rows, "vec_trick/kron_matvec",
        "every cell: kron_matvec not slower than the NumPy vec trick", operator.ge, 1.0,
    ))
    checks.append(_check(
        [row for row in rows if row["n"] >= COMPUTE_BOUND_N], "kron_matvec_peak_pct",
        f"compute-bound cells (n >= {COMPUTE_BOUND_N}): kron_matvec >= {PEAK_TARGET_PCT:g} % "
        "of the single-core FMA peak", operator.ge, PEAK_TARGET_PCT,
    ))
    return checks


def run(config):
    """Run the kron suite with `config` (see :class:`~.suite.Config`); its outcome."""
    sizes = _sizes(config)
    rows = []
    skipped = []
    with Progress(len(sizes) * (1 + len(LAYOUTS))) as progress:
        for n in sizes:
            A, B = factors(n)
            progress.step(f"n={n}: np.kron(A, B)")
            dense = build_time = build_peak = None
            if dense_bytes(n) <= config.mem_cap:
                build_peak, dense = traced_peak(functools.partial(np.kron, A, B))
                build_time = measure(
                    {"np.kron": functools.partial(np.kron, A, B)}, None,
                    config.repeat, config.min_time,
                )["np.kron"]
            else:
                skipped.append(n)
            for layout in LAYOUTS:
                progress.step(f"n={n}: {LAYOUT_NAMES[layout]}")
                # The planner's first calls, before anything plans this key.
                planning = features.first_calls(
                    functools.partial(matkron.kron_matvec, [A, B], operand(n, layout)),
                    features.median_of_calls,
                )
                case = Case(A, B, layout, dense)
                rows.append(_measure_case(case, config, build_time, build_peak, planning))
            del dense, case
    notes = list(LEGEND)
    if skipped:
        needed = ", ".join(format_bytes(dense_bytes(n)) for n in skipped)
        notes.append(
            f"skipped      np.kron and dense @ x for n = {', '.join(map(str, skipped))}: "
            f"the dense matrix would take {needed}, over the cap of "
            f"{format_bytes(config.mem_cap)} (--mem-cap-gb)"
        )
    return Outcome(COLUMNS, rows, notes, _checks(rows), PLOT)


PLOT = PlotSpec(
    x="n",
    panel="case",
    series=(
        "kron_matvec_s", "kron_operator_s", "vec_trick_s", "linear_operator_s",
        "naive_matvec_s", "naive_build_s", "gemm_floor_s",
    ),
    title="(A ⊗ B) x for n×n float64 factors: median time per call",
    dashed=("gemm_floor_s",),
)

SUITE = Suite(
    name="kron",
    summary="(A ⊗ B) x against the vec trick, LinearOperator, np.kron and the GEMM floor",
    plan=plan,
    run=run,
)
