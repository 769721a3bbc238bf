"""The chain suite: matrix-chain planning and multi_dot, side by side with their baselines.

Two parts, one table:

- plan: ``matkron.chain_order(dims)`` (the DP, and ``method="hu-shing"``, which alone runs
  for k beyond :data:`DP_MAX_K`) for k random dimensions in [1, 1000] against numpy's
  pure-Python DP (``numpy.linalg._linalg._multi_dot_matrix_chain_order``, private, the one
  ``numpy.linalg.multi_dot`` runs) and, when installed, ``opt_einsum.contract_path(...,
  optimize="dp")``; both baselines are skipped above a k where they take minutes
  (:data:`NUMPY_DP_MAX_K`, :data:`OPT_EINSUM_MAX_K`, raised through the environment);
- multi_dot: ``matkron.multi_dot`` against ``numpy.linalg.multi_dot``, the left-to-right
  product ``A @ B @ …`` and the GEMM floor: NumPy's GEMMs alone, in the planned order, into
  preallocated buffers.
"""

import functools
import operator
import os

import numpy as np
from numpy.linalg._linalg import _multi_dot_matrix_chain_order

import matkron

from .rows import add_ratios, check, new_row
from .suite import Column, Outcome, PlotSpec, Suite
from .timing import measure, measure_slow

__all__ = ["SUITE", "chain_dims", "multi_dot_case", "numpy_dp", "opt_einsum_call"]

# Plan rows by config.quick: numpy's DP takes seconds at k = 500, Hu–Shing at k = 100 000.
PLAN_KS = {False: (10, 100, 500, 1000, 10_000, 100_000), True: (10, 100, 1000, 10_000)}
# Beyond this k only Hu–Shing is timed: the DP's table would take 800 MB at k = 10 000.
DP_MAX_K = 1000
MAX_DIM = 1000

# Above these k the baselines take minutes per call; set the environment variables to a
# larger k to run them anyway (numpy's DP takes about 2 minutes at k = 1000).
NUMPY_DP_MAX_K = int(os.environ.get("MATKRON_BENCH_NUMPY_DP_MAX_K", "500"))
OPT_EINSUM_MAX_K = int(os.environ.get("MATKRON_BENCH_OPT_EINSUM_MAX_K", "100"))
# A call longer than this is timed by single calls, not calibrated loops, the first one
# included, as many as fit SLOW_BUDGET_S beyond the first (by config.quick).
SLOW_CALL_S = 1.0
SLOW_BUDGET_S = {False: 30.0, True: 0.0}

# multi_dot cases: name -> shapes of the chain.
MULTI_DOT_CASES = {
    "4x(8x8)": [(8, 8)] * 4,
    "16x(4x4)": [(4, 4)] * 16,
    "8x(64x64)": [(64, 64)] * 8,
    "8x(64x64)+vec": [(64, 64)] * 8 + [(64,)],
}

COLUMNS = [
    Column("case", "case", "text"),
    Column("k", "k", "int"),
    Column("matkron_s", "matkron", "time"),
    Column("hu_shing_s", "hu-shing", "time"),
    Column("numpy_s", "numpy", "time"),
    Column("opt_einsum_s", "opt_einsum", "time"),
    Column("left_to_right_s", "A@B@…", "time"),
    Column("floor_s", "GEMM floor", "time"),
    Column("numpy/matkron", "np/mk", "ratio", ("numpy_s", "matkron_s")),
    Column("numpy/hu_shing", "np/hs", "ratio", ("numpy_s", "hu_shing_s")),
    Column("opt_einsum/matkron", "oe/mk", "ratio", ("opt_einsum_s", "matkron_s")),
    Column("left_to_right/matkron", "ltr/mk", "ratio", ("left_to_right_s", "matkron_s")),
    Column("matkron/floor", "mk/floor", "ratio", ("matkron_s", "floor_s")),
    Column("reverse/optimal", "rev cost", "ratio"),
    Column("forward/optimal", "fwd cost", "ratio"),
]

LEGEND = [
    "plan rows (k matrices, dims random in [1, 1000], the same in every run):",
    "  matkron     matkron.chain_order(dims): validation, the compiled DP, the plan",
    "  hu-shing    matkron.chain_order(dims, method='hu-shing'), O(k log² k), pure Python",
    "  numpy       numpy's DP alone, numpy.linalg._linalg._multi_dot_matrix_chain_order",
    "  opt_einsum  opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize='dp')",
    "  rev cost    cost of the left-to-right order (reverse mode) / the optimal cost",
    "  fwd cost    cost of the right-to-left order (forward mode) / the optimal cost",
    "multi_dot rows (random float64 matrices; '+vec' ends with a 1-D vector):",
    "  matkron     matkron.multi_dot(arrays)",
    "  numpy       numpy.linalg.multi_dot(arrays)",
    "  A@B@…       functools.reduce(np.matmul, arrays), left to right",
    "  GEMM floor  np.matmul only, in the planned order, into preallocated buffers",
    "ratios        np/mk = numpy / matkron, np/hs = numpy / hu-shing,",
    "              oe/mk = opt_einsum / matkron,",
    "              ltr/mk = A@B@… / matkron (above 1: matkron is faster),",
    "              mk/floor = matkron / GEMM floor",
]


def chain_dims(k):
    """The dimensions of the plan row with k matrices: k + 1 ints in [1, 1000].

    Examples
    --------
    >>> len(chain_dims(10)), min(chain_dims(10)) >= 1
    (11, True)
    """
    return np.random.default_rng(k).integers(1, MAX_DIM + 1, k + 1).tolist()


def numpy_dp(dims):
    """numpy's chain DP on `dims` (shape-only operands), returning its split table."""
    k = len(dims) - 1
    fakes = [np.broadcast_to(np.empty(()), (dims[i], dims[i + 1])) for i in range(k)]
    return _multi_dot_matrix_chain_order(fakes)


def opt_einsum_call(dims):
    """A call of opt_einsum's DP path finder on the chain, or None if not installed."""
    try:
        import opt_einsum
    except ImportError:
        return None
    k = len(dims) - 1
    sym = [opt_einsum.get_symbol(i) for i in range(k + 1)]
    subscripts = ",".join(sym[i] + sym[i + 1] for i in range(k)) + "->" + sym[0] + sym[k]
    shapes = [(dims[i], dims[i + 1]) for i in range(k)]
    return functools.partial(
        opt_einsum.contract_path, subscripts, *shapes, shapes=True, optimize="dp"
    )


def _time_slow(func, config):
    """The median time per call of `func`, which may take seconds, and its first result."""
    times, _, results = measure_slow({"f": func}, config.repeat, config.min_time,
                                     SLOW_CALL_S, SLOW_BUDGET_S[config.quick])
    return times["f"], results["f"]


def _plan_row(k, config):
    dims = chain_dims(k)
    hu_shing_s, plan = _time_slow(
        functools.partial(matkron.chain_order, dims, method="hu-shing"), config)
    row = new_row(
        COLUMNS,
        case=f"plan k={k}",
        panel="chain_order: plan time",
        k=k,
        hu_shing_s=hu_shing_s,
        **{"reverse/optimal": plan.left_to_right_cost / plan.cost,
           "forward/optimal": plan.right_to_left_cost / plan.cost},
    )
    if k <= DP_MAX_K:
        row["matkron_s"], dp = _time_slow(functools.partial(matkron.chain_order, dims), config)
        if dp.cost != plan.cost:
            raise RuntimeError(f"the DP and Hu–Shing disagree on the cost at k={k}")
    if k <= NUMPY_DP_MAX_K:
        row["numpy_s"], s = _time_slow(functools.partial(numpy_dp, dims), config)
        # numpy's chosen order must cost what ours does (both are optimal).
        if _order_cost(s, dims, 0, k - 1) != plan.cost:
            raise RuntimeError(f"chain_order and numpy's DP disagree on the cost at k={k}")
    oe_call = opt_einsum_call(dims) if k <= OPT_EINSUM_MAX_K else None
    if oe_call is not None:
        row["opt_einsum_s"], _ = _time_slow(oe_call, config)
    return row


def _order_cost(s, dims, i, j):
    """The cost of numpy's split table `s` on M_i … M_j (an explicit stack, no recursion)."""
    total = 0
    stack = [(i, j)]
    while stack:
        i, j = stack.pop()
        if i < j:
            split = int(s[i, j])
            total += dims[i] * dims[split + 1] * dims[j + 1]
            stack += [(i, split), (split + 1, j)]
    return total


def multi_dot_case(name):
    """The arrays of a multi_dot case, and the statements that time it.

    Returns
    -------
    arrays : list of ndarray
        Random float64 operands, the same in every run.
    statements : dict of str to callable
        matkron, numpy, left_to_right and floor, each computing the product.

    Examples
    --------
    >>> arrays, statements = multi_dot_case("4x(8x8)")
    >>> len(arrays), sorted(statements)
    (4, ['floor', 'left_to_right', 'matkron', 'numpy'])
    """
    rng = np.random.default_rng(list(MULTI_DOT_CASES).index(name))
    arrays = [rng.standard_normal(shape) for shape in MULTI_DOT_CASES[name]]
    mats = [a if a.ndim == 2 else a[:, np.newaxis] for a in arrays]
    dims = [m.shape[0] for m in mats] + [mats[-1].shape[1]]
    tree = matkron.chain_order(dims).tree
    # The floor: the planned products as np.matmul calls into preallocated buffers.
    calls = []

    def schedule(t):
        if isinstance(t, int):
            return mats[t]
        a, b = schedule(t[0]), schedule(t[1])
        out = np.empty((a.shape[0], b.shape[1]))
        calls.append((a, b, out))
        return out

    schedule(tree)
    matmul = np.matmul

    def floor():
        for a, b, out in calls:
            matmul(a, b, out=out)
        return out

    statements = {
        "matkron": functools.partial(matkron.multi_dot, arrays),
        "numpy": functools.partial(np.linalg.multi_dot, arrays),
        "left_to_right": functools.partial(functools.reduce, matmul, arrays),
        "floor": floor,
    }
    return arrays, statements


def _multi_dot_row(name, config):
    arrays, statements = multi_dot_case(name)
    expected = np.linalg.multi_dot(arrays)
    scale = functools.reduce(np.matmul, [np.abs(a) for a in arrays])
    for key, func in statements.items():
        result = func()
        if key == "floor":
            result = result.reshape(expected.shape)
        if not np.all(np.abs(result - expected) <= 1e-12 * scale):
            raise RuntimeError(f"{key} does not compute the chain product of {name}")
    times = measure(statements, None, config.repeat, config.min_time)
    return new_row(
        COLUMNS,
        case=f"multi_dot {name}",
        panel="multi_dot (x: number of arrays)",
        k=len(arrays),
        **{f"{key}_s": times[key] for key in statements},
    )


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    try:
        import opt_einsum  # noqa: F401

        oe = f"opt_einsum dp for k <= {OPT_EINSUM_MAX_K}"
    except ImportError:
        oe = "opt_einsum not installed (pip install opt_einsum to compare)"
    return [
        "chain suite: matrix-chain plans (chain_order) and products (multi_dot)",
        (
            f"  plan: k in {', '.join(map(str, PLAN_KS[config.quick]))}, dims random in "
            f"[1, {MAX_DIM}]; "
            f"the DP for k <= {DP_MAX_K}, Hu–Shing for all; "
            f"numpy's DP for k <= {NUMPY_DP_MAX_K} (MATKRON_BENCH_NUMPY_DP_MAX_K), {oe} "
            "(MATKRON_BENCH_OPT_EINSUM_MAX_K)"
        ),
        f"  multi_dot: {', '.join(MULTI_DOT_CASES)} (float64)",
        (
            f"  median of {config.repeat} samples per method, each a loop of calls lasting "
            f">= {config.min_time * 1e3:g} ms, methods interleaved; calls over "
            f"{SLOW_CALL_S:g} s are timed "
            + (f"by single calls within {SLOW_BUDGET_S[config.quick]:g} s beyond the first"
               if SLOW_BUDGET_S[config.quick] else "by their first call alone")
        ),
    ]


def _cell(row):
    return row["case"]


def _checks(rows):
    """The issue's targets for the chain suite."""

    def at(case):
        return [row for row in rows if row["case"] == case] or [{"case": case}]

    multi_dot = [row for row in rows if row["case"].startswith("multi_dot")]
    return [
        check(at("plan k=100"), "numpy/matkron",
              "plan >= 300x faster than numpy's DP at k = 100", operator.ge, 300, _cell),
        check(at("plan k=500"), "numpy/matkron",
              "plan >= 500x faster than numpy's DP at k = 500", operator.ge, 500, _cell),
        check(at("plan k=1000"), "matkron_s", "plan under 0.15 s at k = 1000",
              operator.lt, 0.15, _cell, kind="time"),
        check(at("multi_dot 16x(4x4)"), "numpy/matkron",
              "multi_dot >= 10x faster than numpy's on 16x(4x4)", operator.ge, 10, _cell),
        check(multi_dot, "numpy/matkron", "multi_dot never slower than numpy's",
              operator.ge, 1, _cell),
    ]


def run(config):
    """Run the chain suite with `config` (see :class:`~.suite.Config`); its outcome."""
    from .report import Progress

    rows = []
    plan_ks = PLAN_KS[config.quick]
    with Progress(len(plan_ks) + len(MULTI_DOT_CASES)) as progress:
        for k in plan_ks:
            progress.step(f"plan k={k}")
            rows.append(_plan_row(k, config))
        for name in sorted(MULTI_DOT_CASES, key=lambda n: len(MULTI_DOT_CASES[n])):
            progress.step(f"multi_dot {name}")
            rows.append(_multi_dot_row(name, config))
    for row in rows:
        add_ratios(row, COLUMNS)
    notes = list(LEGEND)
    skipped = [k for k in plan_ks if k > DP_MAX_K]
    if skipped:
        notes.append(
            f"skipped       matkron's DP for k = {', '.join(map(str, skipped))} (a k x k table; "
            "cubic time)"
        )
    skipped = [k for k in plan_ks if k > NUMPY_DP_MAX_K]
    if skipped:
        notes.append(
            f"skipped       numpy's DP for k = {', '.join(map(str, skipped))} (minutes per "
            "call); set MATKRON_BENCH_NUMPY_DP_MAX_K=1000 to run it"
        )
    if opt_einsum_call([1, 1]) is None:
        notes.append("skipped       opt_einsum: not installed")
    else:
        skipped = [k for k in plan_ks if k > OPT_EINSUM_MAX_K]
        if skipped:
            notes.append(
                f"skipped       opt_einsum for k = {', '.join(map(str, skipped))}; set "
                "MATKRON_BENCH_OPT_EINSUM_MAX_K to run it"
            )
    return Outcome(COLUMNS, rows, notes, _checks(rows), PLOT)


PLOT = PlotSpec(
    x="k",
    panel="panel",
    # The multi_dot panel shows only matkron and numpy; one colour per series, one legend.
    series=("matkron_s", "numpy_s", "hu_shing_s", "opt_einsum_s"),
    title="Matrix chains: median time per call",
)

SUITE = Suite(
    name="chain",
    summary="chain_order (DP, Hu–Shing) against numpy's and opt_einsum's DP; multi_dot "
    "against numpy's",
    plan=plan,
    run=run,
)
