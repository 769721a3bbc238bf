"""The structured suite: Kronecker operators with sparse, diagonal and LinearOperator factors.

Three parts, one table, every cell on float64 operands:

- Poisson matvec: the d-D Poisson matrix on an N^d grid, ``L = matkron.kronsum(T, …, T)``
  (d = 2, 3) with the sparse tridiagonal ``T = diags([-1, 2, -1])`` (N×N, CSR), applied as
  ``L @ x`` and timed, interleaved, against the CSR matrix of ``scipy.sparse.kronsum``
  (``C @ x``; its build is timed on its own) and against matkron with the dense factors
  ``T.toarray()`` (while their GEMMs stay under :data:`DENSE_MAX_FLOPS`);
- Poisson CG: ``scipy.sparse.linalg.cg(op, b, rtol=1e-8)`` end to end, the same b and
  x0=None, on ``L`` and on ``C``: time and iteration count (counted by a callback);
- factors: ``kron(diagonal(d), B) @ x`` against ``kron(np.diag(d), B) @ x``, and
  ``kron(aslinearoperator(A), B) @ x`` against ``kron(A, B) @ x``, x a vector or 16 columns.

Before timing, every result is checked: the Poisson products against ``C @ x``, the CG
solutions by their residual ``‖b - C x‖ / ‖b‖`` computed with the CSR matrix, the factor
products against an einsum over the dense factors (which shares no code with matkron).
"""

import functools
import operator

import numpy as np
import scipy.sparse
from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg

import matkron

from .report import Progress, format_time, format_value
from .suite import Check, Column, Outcome, PlotSpec, Suite
from .timing import measure, measure_slow

__all__ = ["SUITE", "FactorCase", "PoissonCase", "factor_operands", "poisson_factor"]

# Poisson grids (dimension, N) by config.quick.
POISSON = {
    False: ((2, 256), (2, 1024), (2, 2048), (3, 64), (3, 128)),
    True: ((2, 256), (2, 512), (3, 32), (3, 64)),
}
# Factor cells: (kind, n); x a vector (m = 1) or an (n², RHS) array.
FACTORS = (("diagonal", 64), ("diagonal", 256), ("operator", 64), ("opaque", 64))
RHS = 16
PROBLEM = {"diagonal": "diag(d)⊗B", "operator": "LinOp(A)⊗B", "opaque": "Opaque(A)⊗B"}

# matkron with the dense factors T.toarray() runs while its GEMMs take at most this many
# flops per product (2-D N = 2048 takes 2 GEMMs of 2048³, 3.4e10 flops, about 1 s).
DENSE_MAX_FLOPS = {False: 5e10, True: 2e9}
# CG stops at this relative residual; it may take at most CG_MAXITER_PER_N * N iterations
# (CG on the Poisson matrix needs a number of iterations proportional to N).
CG_RTOL = 1e-8
CG_MAXITER_PER_N = 20
# A call longer than this (a CG solve, a CSR build) is timed by single calls, the first
# one included, as many as fit SLOW_BUDGET_S per cell (at least one, at most `repeat`).
SLOW_CALL_S = 0.2
SLOW_BUDGET_S = {False: 20.0, True: 0.0}

# Targets: CSR time / matkron time at least these.
MATVEC_TARGET = 1.5
CG_TARGET = 1.3
# The LinearOperator factor's time at most this multiple of the dense factor's.
OPERATOR_TARGET = 1.3

COLUMNS = [
    Column("problem", "problem", "text"),
    Column("size", "N|n", "int"),
    Column("unknowns", "unknowns", "int"),
    Column("m", "m", "int"),
    Column("matkron_s", "matkron", "time"),
    Column("dense_factors_s", "dense fac.", "time"),
    Column("dense/matkron", "dense/mk", "ratio"),
    Column("csr_build_s", "CSR build", "time"),
    Column("csr_s", "CSR @ x", "time"),
    Column("csr/matkron", "CSR/mk", "ratio"),
    Column("cg_matkron_s", "CG matkron", "time"),
    Column("cg_matkron_iters", "its", "int"),
    Column("cg_csr_s", "CG CSR", "time"),
    Column("cg_csr_iters", "its", "int"),
    Column("cg_csr/matkron", "CG CSR/mk", "ratio"),
    Column("cg_samples", "CG n", "int"),
]

# Ratio column: (numerator time column, denominator time column).
RATIOS = {
    "dense/matkron": ("dense_factors_s", "matkron_s"),
    "csr/matkron": ("csr_s", "matkron_s"),
    "cg_csr/matkron": ("cg_csr_s", "cg_matkron_s"),
}

LEGEND = [
    "problems     d-D Poisson: L = matkron.kronsum(T, …, T), d factors (I⊗T + T⊗I in 2-D, as",
    "               scipy.sparse.kronsum), T = scipy.sparse.diags([-1, 2, -1], [-1, 0, 1],",
    "               shape=(N, N), format='csr'); N^d unknowns, x a random vector",
    "             diag(d)⊗B: matkron.kron(matkron.diagonal(d), B), d in [1, 2], B dense n×n",
    "             LinOp(A)⊗B: matkron.kron(scipy.sparse.linalg.aslinearoperator(A), B), A and",
    "               B dense n×n (matkron reads aslinearoperator(A) as A);",
    "             Opaque(A)⊗B: the same with LinearOperator((n, n), matmat=A.dot), applied",
    "               only through its matmat; for all three, x a vector (m = 1) or an",
    "               (n², 16) C-ordered array",
    "matkron      L @ x with the sparse factors T; K @ x with the diagonal / LinOp factor",
    "dense fac.   the same with dense factors: matkron.kronsum(T.toarray(), …) @ x;",
    "               kron(np.diag(d), B) @ x; kron(A, B) @ x",
    "CSR build    C = scipy.sparse.kronsum(T, T, format='csr') (3-D: kronsum(kronsum(T, T),",
    "               T)), timed on its own, not in CSR @ x",
    "CSR @ x      C @ x, scipy's CSR matvec",
    f"CG …         scipy.sparse.linalg.cg(op, b, rtol={CG_RTOL:g}, maxiter="
    f"{CG_MAXITER_PER_N}·N) on L and on C, the",
    "               same random b, x0=None, end to end; its: iterations (by a callback);",
    "               CG n: the samples of the CG median (a solve over "
    f"{format_time(SLOW_CALL_S)} is timed by single",
    "               solves within a budget, often just one)",
    "ratios       dense/mk, CSR/mk, CG CSR/mk: the other's time / matkron's (above 1: matkron",
    "               is faster); for the factors, dense/mk is the speed-up of the structured",
    "               factor over the same factor dense",
]


def poisson_factor(N):
    """The N×N tridiagonal [-1, 2, -1] as a float64 CSR matrix.

    Examples
    --------
    >>> poisson_factor(3).toarray()
    array([[ 2., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  2.]])
    """
    return scipy.sparse.diags(
        [-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N), format="csr", dtype=np.float64
    )


def csr_poisson(T, dim):
    """The CSR Poisson matrix of ``scipy.sparse.kronsum`` for `dim` factors T (2 or 3)."""
    if dim == 2:
        return scipy.sparse.kronsum(T, T, format="csr")
    return scipy.sparse.kronsum(scipy.sparse.kronsum(T, T, format="csr"), T, format="csr")


def factor_operands(kind, n, m):
    """The structured factor, its dense form, B and x of a factor cell, the same in every run.

    Returns ``(structured, dense, B, x)``: ``matkron.diagonal(d)`` and ``np.diag(d)`` for
    `kind` "diagonal", ``aslinearoperator(A)`` and ``A`` for "operator", a LinearOperator
    applying A through its ``matmat`` and ``A`` for "opaque".

    Examples
    --------
    >>> S, D, B, x = factor_operands("diagonal", 4, 1)
    >>> D.shape, B.shape, x.shape
    ((4, 4), (4, 4), (16,))
    """
    rng = np.random.default_rng([n, m, list(PROBLEM).index(kind)])
    B = rng.standard_normal((n, n))
    x = rng.standard_normal(n * n if m == 1 else (n * n, m))
    if kind == "diagonal":
        d = rng.uniform(1.0, 2.0, n)
        return matkron.diagonal(d), np.diag(d), B, x
    A = rng.standard_normal((n, n))
    if kind == "opaque":  # applied only through its matmat, a Python call per product
        return LinearOperator((n, n), matvec=A.dot, matmat=A.dot, dtype=A.dtype), A, B, x
    return aslinearoperator(A), A, B, x


def _close(y, reference, rtol=1e-12):
    scale = np.abs(reference).max(initial=0.0)
    return y.shape == reference.shape and np.allclose(y, reference, rtol, rtol * scale)


class PoissonCase:
    """The operators of one Poisson cell, with the matvec and CG methods ready to run.

    Parameters
    ----------
    dim : {2, 3}
        The grid dimension.
    N : int
        The points per side: N^dim unknowns.
    dense : bool
        Whether to build matkron's operator with the dense factors ``T.toarray()``.

    Attributes
    ----------
    L : KronSumOperator
        ``matkron.kronsum(T, …, T)`` with `dim` sparse factors T.
    C : scipy.sparse.csr_array or csr_matrix
        The CSR matrix of ``scipy.sparse.kronsum``.
    Ld : KronSumOperator or None
        ``matkron.kronsum`` of the dense factors, when `dense`.
    x, b : ndarray
        The random operand of the matvec and right-hand side of CG.
    statements : dict of str to callable
        The matvecs: "matkron", "csr" and "dense_factors" (when `dense`).

    Examples
    --------
    >>> case = PoissonCase(2, 8, dense=True)
    >>> case.L.shape, sorted(case.statements)
    ((64, 64), ['csr', 'dense_factors', 'matkron'])
    >>> case.check()
    >>> solves = case.solves()
    >>> x, iterations = solves["cg_matkron"]()
    >>> bool(iterations == solves["cg_csr"]()[1] and case.residual(x) <= 1e-7)
    True
    """

    def __init__(self, dim, N, dense):
        self.dim, self.N = dim, N
        self.T = T = poisson_factor(N)
        self.L = matkron.kronsum(*[T] * dim)
        self.C = csr_poisson(T, dim)
        self.Ld = matkron.kronsum(*[T.toarray()] * dim) if dense else None
        rng = np.random.default_rng([dim, N])
        self.x = rng.standard_normal(N**dim)
        self.b = rng.standard_normal(N**dim)
        self.statements = {
            "matkron": functools.partial(operator.matmul, self.L, self.x),
            "csr": functools.partial(operator.matmul, self.C, self.x),
        }
        if dense:
            self.statements["dense_factors"] = functools.partial(
                operator.matmul, self.Ld, self.x)

    def build_csr(self):
        """Build the CSR matrix again (the timed build)."""
        return csr_poisson(self.T, self.dim)

    def check(self):
        """Check that every matvec computes C x (the CSR matrix as the reference).

        Raises
        ------
        RuntimeError
            Naming the method and the cell, if a result differs beyond rounding.
        """
        results = {name: func() for name, func in self.statements.items()}
        for name, y in results.items():
            if not _close(y, results["csr"]):
                raise RuntimeError(
                    f"{name} does not compute the Poisson matvec for {self.dim}-D N={self.N}: "
                    f"max error {np.abs(y - results['csr']).max():.3g}"
                )

    def _cg(self, op):
        iterations = 0

        def count(xk):
            nonlocal iterations
            iterations += 1

        x, info = cg(op, self.b, rtol=CG_RTOL, maxiter=CG_MAXITER_PER_N * self.N,
                     callback=count)
        if info != 0:
            raise RuntimeError(
                f"CG on {type(op).__name__} did not converge to {CG_RTOL:g} in "
                f"{iterations} iterations for {self.dim}-D N={self.N} (info={info})"
            )
        return x, iterations

    def solves(self):
        """The CG solves by name ("cg_matkron", "cg_csr"): callables returning (x, iterations)."""
        return {
            "cg_matkron": functools.partial(self._cg, self.L),
            "cg_csr": functools.partial(self._cg, self.C),
        }

    def residual(self, x):
        """‖b - C x‖ / ‖b‖, by the CSR matrix."""
        return float(np.linalg.norm(self.b - self.C @ x) / np.linalg.norm(self.b))


class FactorCase:
    """One factor cell: the structured factor and the same factor dense, each ⊗ B.

    Parameters
    ----------
    kind : {"diagonal", "operator", "opaque"}
        ``matkron.diagonal(d)`` against ``np.diag(d)``, ``aslinearoperator(A)`` against
        ``A``, or A behind a LinearOperator's ``matmat`` against ``A``.
    n : int
        The order of the factors.
    m : int
        The columns of x (1: a vector).

    Examples
    --------
    >>> case = FactorCase("operator", 4, 16)
    >>> case.x.shape, sorted(case.statements)
    ((16, 16), ['dense_factors', 'matkron'])
    >>> case.check()
    """

    def __init__(self, kind, n, m):
        self.kind, self.n, self.m = kind, n, m
        structured, self.dense, self.B, self.x = factor_operands(kind, n, m)
        self.K = matkron.kron(structured, self.B)
        self.Kd = matkron.kron(self.dense, self.B)
        self.statements = {
            "matkron": functools.partial(operator.matmul, self.K, self.x),
            "dense_factors": functools.partial(operator.matmul, self.Kd, self.x),
        }

    def check(self):
        """Check both products against an einsum over the dense factors.

        Raises
        ------
        RuntimeError
            Naming the method and the cell, if a result differs beyond rounding.
        """
        n, m = self.n, self.m
        X = self.x.reshape(n, n, m)
        reference = np.einsum("ac,bd,cdr->abr", self.dense, self.B, X, optimize=True)
        reference = reference.reshape(self.x.shape)
        for name, func in self.statements.items():
            y = func()
            if not _close(y, reference, 1e-10):
                raise RuntimeError(
                    f"{name} does not compute ({PROBLEM[self.kind]}) x for n={n}, m={m}"
                )


def _time_slow(funcs, config):
    """:func:`~.timing.measure_slow` with this suite's thresholds."""
    return measure_slow(funcs, config.repeat, config.min_time, SLOW_CALL_S,
                        SLOW_BUDGET_S[config.quick])


def _dense_flops(dim, N):
    """The GEMM flops of matkron.kronsum of `dim` dense N×N factors applied to a vector."""
    return dim * 2 * N ** (dim + 1)


def _ratios(row):
    for key, (num, den) in RATIOS.items():
        row[key] = None if row.get(num) is None or row.get(den) is None else row[num] / row[den]
    return row


def _empty_row(**values):
    row = {column.key: None for column in COLUMNS}
    row.update(values)
    return row


def _poisson_row(dim, N, config):
    dense = _dense_flops(dim, N) <= DENSE_MAX_FLOPS[config.quick]
    case = PoissonCase(dim, N, dense)
    case.check()
    times = measure(case.statements, None, config.repeat, config.min_time)
    build, _, _ = _time_slow({"build": case.build_csr}, config)
    cg_times, samples, solutions = _time_slow(case.solves(), config)
    for name, (x, _) in solutions.items():
        residual = case.residual(x)
        if not residual <= 10 * CG_RTOL:
            raise RuntimeError(
                f"{name} returned a solution of relative residual {residual:.3g} "
                f"(> {10 * CG_RTOL:g}) for {dim}-D N={N}"
            )
    row = _empty_row(
        problem=f"{dim}-D Poisson", size=N, unknowns=N**dim, m=1, panel=f"{dim}-D Poisson",
        matkron_s=times["matkron"], csr_s=times["csr"],
        dense_factors_s=times.get("dense_factors"), csr_build_s=build["build"],
        cg_matkron_s=cg_times["cg_matkron"], cg_csr_s=cg_times["cg_csr"],
        cg_matkron_iters=solutions["cg_matkron"][1], cg_csr_iters=solutions["cg_csr"][1],
        cg_samples=samples,
    )
    return _ratios(row), dense


def _factor_row(kind, n, m, config):
    case = FactorCase(kind, n, m)
    case.check()
    times = measure(case.statements, None, config.repeat, config.min_time)
    row = _empty_row(
        problem=PROBLEM[kind], size=n, unknowns=n * n, m=m,
        panel=f"{PROBLEM[kind]}, m = {m}",
        matkron_s=times["matkron"], dense_factors_s=times["dense_factors"],
    )
    return _ratios(row)


def _cell(row):
    return f"{row['problem']} {'N' if 'Poisson' in row['problem'] else 'n'}={row['size']}" + (
        "" if row["m"] == 1 else f" m={row['m']}")


def _check(rows, value, target, bound, higher=True):
    """Check ``value(row) >= bound`` (``<=`` when not `higher`) over the rows measured."""
    measured = [row for row in rows if value(row) is not None]
    passes = (lambda v: v >= bound) if higher else (lambda v: v <= bound)
    misses = [row for row in measured if not passes(value(row))]
    parts = []
    if measured:
        worst = (min if higher else max)(measured, key=value)
        parts.append(f"worst {format_value(value(worst), 'ratio')} at {_cell(worst)}")
        if misses:
            parts.append("missed at " + ", ".join(
                f"{_cell(row)} ({format_value(value(row), 'ratio')})" for row in misses))
    else:
        parts.append("not measured")
    return Check(bool(measured) and not misses, target, "; ".join(parts))


def _checks(rows):
    """The issue's targets for the structured suite."""
    poisson = [row for row in rows if "Poisson" in row["problem"]]
    operators = [row for row in rows if row["problem"] == PROBLEM["operator"]]
    return [
        _check(poisson, lambda row: row["csr/matkron"],
               f"Poisson L @ x, every size: matkron (sparse factors) >= {MATVEC_TARGET:g}x "
               "faster than the CSR matvec (CSR/mk)", MATVEC_TARGET),
        _check(poisson, lambda row: row["cg_csr/matkron"],
               f"Poisson CG to {CG_RTOL:g}, every size: matkron >= {CG_TARGET:g}x faster "
               "than CG on the CSR matrix (CG CSR/mk)", CG_TARGET),
        _check(operators,
               lambda row: row["matkron_s"] / row["dense_factors_s"],
               f"LinOp(A)⊗B @ x within {OPERATOR_TARGET:g}x of kron(A, B) @ x "
               "(LinOp time / dense time = 1 / dense/mk)", OPERATOR_TARGET, higher=False),
    ]


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    grids = POISSON[config.quick]
    return [
        "structured suite: Kronecker operators with sparse, diagonal and LinearOperator "
        "factors (float64)",
        "  Poisson L = matkron.kronsum(T, …, T) on N^d grids, "
        + ", ".join(f"{dim}-D N={N}" for dim, N in grids)
        + ": L @ x against scipy.sparse.kronsum's CSR matrix and against dense factors, and "
        f"CG to {CG_RTOL:g} on both",
        "  factors: "
        + ", ".join(f"{PROBLEM[kind]} n={n}" for kind, n in FACTORS)
        + f", x a vector and (n², {RHS}), against the same factor dense",
        f"  median of {config.repeat} samples per method, each a loop of calls lasting >= "
        f"{config.min_time * 1e3:g} ms; methods interleaved within each cell",
        f"  calls over {format_time(SLOW_CALL_S)} (CG solves, CSR builds) timed by single "
        f"calls within {SLOW_BUDGET_S[config.quick]:g} s per cell beyond the first; dense "
        f"factors while their GEMMs take <= {DENSE_MAX_FLOPS[config.quick]:.2g} flops",
    ]


def run(config):
    """Run the structured suite with `config` (see :class:`~.suite.Config`); its outcome."""
    grids = POISSON[config.quick]
    factor_cells = [(kind, n, m) for kind, n in FACTORS for m in (1, RHS)]
    rows, skipped = [], []
    with Progress(len(grids) + len(factor_cells)) as progress:
        for dim, N in grids:
            progress.step(f"{dim}-D Poisson N={N}: L @ x, CSR, CG")
            row, dense = _poisson_row(dim, N, config)
            rows.append(row)
            if not dense:
                skipped.append(f"{dim}-D N={N} ({_dense_flops(dim, N):.2g} flops)")
        for kind, n, m in factor_cells:
            progress.step(f"{PROBLEM[kind]} n={n}, m={m}")
            rows.append(_factor_row(kind, n, m, config))
    notes = list(LEGEND)
    slow = [row for row in rows if row["cg_samples"] is not None
            and row["cg_samples"] < config.repeat]
    if slow:
        notes.append(
            "CG samples   " + ", ".join(f"{_cell(row)}: {row['cg_samples']}" for row in slow)
            + f" (solves over {format_time(SLOW_CALL_S)}; the first solve counts)"
        )
    if skipped:
        notes.append(f"skipped      dense factors at {', '.join(skipped)}: over "
                     f"{DENSE_MAX_FLOPS[config.quick]:.2g} flops per product")
    diagonal = [row for row in rows if row["problem"] == PROBLEM["diagonal"]]
    notes.append(
        "diagonal     speed-up of diag(d)⊗B over np.diag(d)⊗B: " + ", ".join(
            f"{format_value(row['dense/matkron'], 'ratio')}x at n={row['size']} m={row['m']}"
            for row in diagonal)
    )
    notes.append("checked      every cell against C @ x, the CSR residual, or an einsum, "
                 "before timing")
    return Outcome(COLUMNS, rows, notes, _checks(rows), PLOT)


PLOT = PlotSpec(
    x="size",
    panel="panel",
    series=("matkron_s", "dense_factors_s", "csr_s", "csr_build_s", "cg_matkron_s",
            "cg_csr_s"),
    title="Structured Kronecker factors (float64): median time per call",
)

SUITE = Suite(
    name="structured",
    summary="sparse, diagonal and LinearOperator factors against CSR and dense factors",
    plan=plan,
    run=run,
)
