"""The spectral suite: direct solves, log-determinants and functions through the factors.

Three parts, one table, every cell on float64 operands:

- Gaussian process: ``S = matkron.kron(K1, …, Kd) + s2 * matkron.identity(N)`` with RBF
  kernel matrices Kᵢ (n×n, length scale 0.2 on [0, 1]) and s2 = 0.1; built, solved for one
  y and its log-determinant taken, from scratch in every call. Against a dense Cholesky of
  the same matrix (``scipy.linalg.cho_factor``, ``cho_solve`` and the log of its diagonal;
  the dense matrix built beforehand, untimed) where it has at most :data:`DENSE_MAX_N`
  rows, and against linear_operator's ``KroneckerProductAddedDiagLinearOperator``
  (``solve`` and ``logdet``, torch float64, one thread) when it is installed;
- Sylvester and Lyapunov: ``matkron.solve_sylvester(a, b, q)`` and
  ``matkron.solve_continuous_lyapunov(a, q)`` against SciPy's functions of the same names,
  on real general and symmetric matrices; and a second right-hand side on an operator that
  has solved one (``matkron.sylvester(A, B).solve``), against SciPy's function again;
- exp(t (A ⊕ B)) b: ``matkron.kronsum(A, …).expm_multiply(b, t)`` from a new operator in
  every call, against ``scipy.sparse.linalg.expm_multiply`` on the CSR matrix of
  ``scipy.sparse.kronsum``, for t = 10⁻³ and for 10 times in [0, 10⁻³]: the heat
  equation on the unit square or cube, A = -T / h² with T the tridiagonal [-1, 2, -1] and
  h = 1 / (n + 1) (so ‖t (A ⊕ …)‖₁ ≈ 4 d t / h², about 130 at 128² and 100 at 64³).

Before timing, every result is checked: the solves by their relative residual through a
product with the operator, the log-determinants and exponentials against the baseline's.
"""

import functools
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

import matkron

from .report import Progress, format_time, format_value
from .suite import Check, Column, Outcome, PlotSpec, Suite
from .timing import measure_slow

__all__ = ["SUITE", "expm_case", "gp_case", "sylvester_case"]

# Gaussian-process grids (factors d, points per factor n) by config.quick.
GP = {
    False: ((2, 64), (2, 128), (3, 64), (3, 128)),
    True: ((2, 64), (3, 32)),
}
GP_NOISE = 0.1
GP_LENGTH = 0.2
DENSE_MAX_N = 4096
# Sylvester and Lyapunov orders by config.quick.
SYLVESTER = {False: (100, 500, 1000), True: (100, 300)}
# exp(t (A ⊕ …)) b: (factors d, n) by config.quick; the times of the 10-point cells.
EXPM = {False: ((2, 128), (3, 64)), True: ((2, 64), (3, 24))}
EXPM_T = 1e-3
EXPM_TIMES = np.linspace(0.0, EXPM_T, 10)

SLOW_CALL_S = 0.2
SLOW_BUDGET_S = {False: 30.0, True: 1.0}

# Targets: baseline time / matkron time at least these (the first Sylvester/Lyapunov solve:
# at most the baseline's time, a ratio of at least 1).
GP_PEER_TARGET = 5.0
GP_DENSE_TARGET = 100.0
FIRST_SOLVE_TARGET = 1.0
SECOND_SOLVE_TARGET = 5.0
EXPM_TARGET = 10.0
EXPM_MANY_TARGET = 20.0
RESIDUAL_TARGET = 1e-10

COLUMNS = [
    Column("problem", "problem", "text"),
    Column("n", "n", "int"),
    Column("unknowns", "unknowns", "int"),
    Column("matkron_s", "matkron", "time"),
    Column("second_s", "2nd rhs", "time"),
    Column("baseline_s", "baseline", "time"),
    Column("baseline/matkron", "base/mk", "ratio"),
    Column("baseline/second", "base/2nd", "ratio"),
    Column("peer_s", "lin_op", "time"),
    Column("peer/matkron", "lin_op/mk", "ratio"),
    Column("error", "error", "text"),
]

LEGEND = [
    "problems     GP d×n: K1 ⊗ … ⊗ Kd + 0.1 I, RBF kernel factors n×n: solve one y and",
    "               log-determinant, from a new operator each call",
    "             sylvester/lyapunov general|symmetric: solve_sylvester(a, b, q) and",
    "               solve_continuous_lyapunov(a, q), n×n real matrices",
    "             expm 1 t / 10 t: exp(t (A ⊕ …)) b, d factors A = -T/h² n×n (the heat",
    "               equation), t = 1e-3 or 10 times in [0, 1e-3], from a new operator each call",
    "matkron      matkron's call; 2nd rhs: a second right-hand side on the operator that",
    "               solved the first (matkron.sylvester(A, B).solve, lyapunov(A).solve)",
    "baseline     GP: dense Cholesky (cho_factor + cho_solve + log-det; the dense matrix",
    "               built beforehand, untimed), only up to "
    f"{DENSE_MAX_N} unknowns; sylvester/lyapunov:",
    "               scipy.linalg's function; expm: scipy.sparse.linalg.expm_multiply on the",
    "               CSR scipy.sparse.kronsum",
    "lin_op       linear_operator's KroneckerProductAddedDiagLinearOperator solve + logdet",
    "               (torch float64, one thread), when installed",
    "ratios       the baseline's (or lin_op's) time / matkron's: above 1, matkron is faster",
    "error        GP and solves: backward error ‖M x - b‖₁ / (‖M‖₁ ‖x‖₁), by a product with",
    "               the operator (and |Δ log det| / |log det| against the baseline); expm:",
    "               relative difference to SciPy's result",
]


def _rbf(n):
    x = np.linspace(0.0, 1.0, n)
    return np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * GP_LENGTH**2))


def _relative_residual(op, x, b):
    """The backward error ‖op x - b‖₁ / (‖op‖₁ ‖x‖₁), ‖op‖₁ by ``onenormest``."""
    r = op @ x - b
    return float(np.abs(r).sum() / (scipy.sparse.linalg.onenormest(op) * np.abs(x).sum()))


def gp_case(d, n):
    """The calls of a GP cell: (statements, check) with statements by name.

    Examples
    --------
    >>> statements, check = gp_case(2, 4)
    >>> sorted(statements)[:2]
    ['baseline', 'matkron']
    >>> bool(check() <= 1e-10)
    True
    """
    factors = [_rbf(n) for _ in range(d)]
    N = n**d
    y = np.random.default_rng([d, n]).standard_normal(N)

    def mk():
        S = matkron.kron(*factors) + GP_NOISE * matkron.identity(N)
        return S.solve(y), S.slogdet()[1]

    statements = {"matkron": mk}
    if N <= DENSE_MAX_N:
        M = functools.reduce(np.kron, factors) + GP_NOISE * np.eye(N)

        def dense():
            c = scipy.linalg.cho_factor(M, lower=True, check_finite=False)
            return scipy.linalg.cho_solve(c, y, check_finite=False), 2 * np.log(
                np.diag(c[0])).sum()

        statements["baseline"] = dense
    peer = _linear_operator_gp(factors, y)
    if peer is not None:
        statements["peer"] = peer

    def check():
        S = matkron.kron(*factors) + GP_NOISE * matkron.identity(N)
        x, logdet = mk()
        residual = _relative_residual(S, x, y)
        errors = [residual]
        for name in ("baseline", "peer"):
            if name in statements:
                _, other = statements[name]()
                errors.append(abs(other - logdet) / abs(logdet))
        if not max(errors) <= RESIDUAL_TARGET:
            raise RuntimeError(f"GP {d}×{n}: residual {residual:.2g}, log-det errors "
                               f"{errors[1:]} above {RESIDUAL_TARGET:g}")
        return residual

    return statements, check


def _linear_operator_gp(factors, y):
    """linear_operator's solve + logdet of ⊗ Kᵢ + s2 I, or None if not installed."""
    try:
        with warnings.catch_warnings():  # the peer's own deprecations, not ours to show
            warnings.simplefilter("ignore", DeprecationWarning)
            import torch
            from linear_operator.operators import (
                ConstantDiagLinearOperator,
                DenseLinearOperator,
                KroneckerProductLinearOperator,
            )
    except ImportError:
        return None
    torch.set_num_threads(1)
    tensors = [torch.from_numpy(f) for f in factors]
    rhs = torch.from_numpy(y)[:, None]
    N = y.size

    def peer():
        op = KroneckerProductLinearOperator(*[DenseLinearOperator(t) for t in tensors])
        op = op + ConstantDiagLinearOperator(
            torch.tensor([GP_NOISE], dtype=torch.float64), diag_shape=N)
        return op.solve(rhs)[:, 0].numpy(), float(op.logdet())

    return peer


def sylvester_case(kind, structure, n):
    """The calls of a Sylvester or Lyapunov cell: (statements, check).

    Examples
    --------
    >>> statements, check = sylvester_case("lyapunov", "symmetric", 5)
    >>> sorted(statements)
    ['baseline', 'matkron', 'second']
    >>> bool(check() <= 1e-10)
    True
    """
    rng = np.random.default_rng([n, kind == "lyapunov", structure == "symmetric"])

    def matrix():
        a = rng.standard_normal((n, n)) / np.sqrt(n)
        return a + a.T if structure == "symmetric" else a

    A, B = matrix(), matrix() + 0.5 * np.eye(n)
    Q, Q2 = matrix(), matrix()
    if kind == "sylvester":
        statements = {
            "matkron": functools.partial(matkron.solve_sylvester, A, B, Q),
            "baseline": functools.partial(scipy.linalg.solve_sylvester, A, B, Q),
        }
        op = matkron.sylvester(A, B)
    else:
        statements = {
            "matkron": functools.partial(matkron.solve_continuous_lyapunov, A, Q),
            "baseline": functools.partial(scipy.linalg.solve_continuous_lyapunov, A, Q),
        }
        op = matkron.lyapunov(A)
    op.solve(matkron.vec(Q))  # the decompositions, once
    statements["second"] = functools.partial(op.solve, matkron.vec(Q2))

    def check():
        X = statements["matkron"]()
        worst = _relative_residual(op, matkron.vec(X), matkron.vec(Q))
        worst = max(worst, _relative_residual(op, statements["second"](), matkron.vec(Q2)))
        if not worst <= RESIDUAL_TARGET:
            raise RuntimeError(f"{kind} {structure} n={n}: residual {worst:.2g} above "
                               f"{RESIDUAL_TARGET:g}")
        return worst

    return statements, check


def expm_case(d, n, times):
    """The calls of an exp(t (A ⊕ …)) b cell: (statements, check).

    Examples
    --------
    >>> statements, check = expm_case(2, 6, EXPM_T)
    >>> sorted(statements)
    ['baseline', 'matkron']
    >>> bool(check() <= 1e-10)
    True
    """
    T = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n), format="csr")
    T = T * (n + 1) ** 2
    A = -T.toarray()
    C = -T
    for _ in range(d - 1):
        C = scipy.sparse.kronsum(C, -T, format="csr")
    b = np.random.default_rng([d, n]).standard_normal(n**d)
    if np.ndim(times) == 0:
        baseline = functools.partial(scipy.sparse.linalg.expm_multiply, float(times) * C, b)
    else:
        baseline = functools.partial(scipy.sparse.linalg.expm_multiply, C, b,
                                     start=times[0], stop=times[-1], num=len(times),
                                     endpoint=True)
    statements = {
        "matkron": lambda: matkron.kronsum(*[A] * d).expm_multiply(b, times),
        "baseline": baseline,
    }

    def check():
        got, expected = statements["matkron"](), statements["baseline"]()
        error = float(np.abs(got - expected).max() / np.abs(expected).max())
        if not error <= 1e-8:
            raise RuntimeError(f"expm d={d} n={n}: relative difference {error:.2g} to SciPy")
        return error

    return statements, check


def _row(problem, n, unknowns, statements, check, config):
    error = check()
    times, _, _ = measure_slow(statements, config.repeat, config.min_time, SLOW_CALL_S,
                               SLOW_BUDGET_S[config.quick])
    row = {column.key: None for column in COLUMNS}
    row.update(problem=problem, n=n, unknowns=unknowns, error=f"{error:.1e}",
               panel=problem.split("×")[0].strip() if problem.startswith("GP") else problem,
               matkron_s=times["matkron"],
               second_s=times.get("second"), baseline_s=times.get("baseline"),
               peer_s=times.get("peer"))
    for key, num, den in (("baseline/matkron", "baseline_s", "matkron_s"),
                          ("baseline/second", "baseline_s", "second_s"),
                          ("peer/matkron", "peer_s", "matkron_s")):
        if row[num] is not None and row[den] is not None:
            row[key] = row[num] / row[den]
    return row


def _cell(row):
    return f"{row['problem']} n={row['n']}"


def _check(rows, key, target, bound):
    measured = [row for row in rows if row[key] is not None]
    misses = [row for row in measured if not row[key] >= bound]
    if not measured:
        return Check(False, target, "not measured")
    worst = min(measured, key=lambda row: row[key])
    detail = f"worst {format_value(worst[key], 'ratio')} at {_cell(worst)}"
    if misses:
        detail += "; missed at " + ", ".join(
            f"{_cell(row)} ({format_value(row[key], 'ratio')})" for row in misses)
    return Check(not misses, target, detail)


def _checks(rows):
    gp = [row for row in rows if row["problem"].startswith("GP")]
    solves = [row for row in rows if row["problem"].startswith(("sylvester", "lyapunov"))]
    one = [row for row in rows if row["problem"] == "expm 1 t"]
    many = [row for row in rows if row["problem"] == "expm 10 t"]
    return [
        _check(gp, "peer/matkron", f"GP solve + log-det >= {GP_PEER_TARGET:g}x faster than "
               "linear_operator (lin_op/mk)", GP_PEER_TARGET),
        _check(gp, "baseline/matkron", f"GP solve + log-det >= {GP_DENSE_TARGET:g}x faster "
               f"than a dense Cholesky, N <= {DENSE_MAX_N} (base/mk)", GP_DENSE_TARGET),
        _check(solves, "baseline/matkron", "first Sylvester/Lyapunov solve at most SciPy's "
               "time (base/mk >= 1)", FIRST_SOLVE_TARGET),
        _check(solves, "baseline/second", f"second right-hand side >= "
               f"{SECOND_SOLVE_TARGET:g}x faster than SciPy's function (base/2nd)",
               SECOND_SOLVE_TARGET),
        _check(one, "baseline/matkron", f"exp(A ⊕ …) b >= {EXPM_TARGET:g}x faster than "
               "expm_multiply on the CSR kronsum", EXPM_TARGET),
        _check(many, "baseline/matkron", f"10 times >= {EXPM_MANY_TARGET:g}x faster than "
               "expm_multiply on the CSR kronsum", EXPM_MANY_TARGET),
    ]


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    return [
        "spectral suite: direct solves, log-determinants and exponentials through the "
        "factors (float64)",
        "  GP K1 ⊗ … ⊗ Kd + 0.1 I: " + ", ".join(f"{d}×{n}" for d, n in GP[config.quick]),
        "  Sylvester and Lyapunov, general and symmetric: n = "
        + ", ".join(map(str, SYLVESTER[config.quick])),
        "  exp(t (A ⊕ …)) b: " + ", ".join(f"{d}×{n}" for d, n in EXPM[config.quick])
        + f", t = {EXPM_T:g} and 10 times in [0, {EXPM_T:g}]",
        f"  median of up to {config.repeat} samples; calls over {format_time(SLOW_CALL_S)} "
        f"timed singly within {SLOW_BUDGET_S[config.quick]:g} s per cell",
    ]


def run(config):
    """Run the spectral suite with `config` (see :class:`~.suite.Config`); its outcome."""
    cells = [("GP", d, n) for d, n in GP[config.quick]]
    cells += [(kind, structure, n) for kind in ("sylvester", "lyapunov")
              for structure in ("general", "symmetric") for n in SYLVESTER[config.quick]]
    cells += [("expm", d, n, t) for d, n in EXPM[config.quick] for t in ("1", "10")]
    rows = []
    with Progress(len(cells)) as progress:
        for cell in cells:
            if cell[0] == "GP":
                _, d, n = cell
                progress.step(f"GP {d}×{n}")
                statements, check = gp_case(d, n)
                rows.append(_row(f"GP {d}×{n}", n, n**d, statements, check, config))
            elif cell[0] == "expm":
                _, d, n, t = cell
                progress.step(f"expm {d}×{n}, {t} t")
                statements, check = expm_case(d, n, EXPM_T if t == "1" else EXPM_TIMES)
                rows.append(_row(f"expm {t} t", n, n**d, statements, check, config))
            else:
                kind, structure, n = cell
                progress.step(f"{kind} {structure} n={n}")
                statements, check = sylvester_case(kind, structure, n)
                rows.append(_row(f"{kind} {structure}", n, n * n, statements, check,
                                 config))
    notes = list(LEGEND)
    if not any(row["peer_s"] is not None for row in rows):
        notes.append("lin_op       not installed: pip install torch==2.13.0 linear_operator")
    return Outcome(COLUMNS, rows, notes, _checks(rows), PLOT)


PLOT = PlotSpec(
    x="unknowns",
    panel="panel",
    series=("matkron_s", "second_s", "baseline_s", "peer_s"),
    title="Spectral methods (float64): median time per call",
)

SUITE = Suite(
    name="spectral",
    summary="K + σ²I solves, Sylvester/Lyapunov and exp(t(A⊕B))b against SciPy, dense "
    "Cholesky and linear_operator",
    plan=plan,
    run=run,
)
