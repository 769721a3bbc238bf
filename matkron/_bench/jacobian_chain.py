"""Jacobian chains: ``jacobian_chain(ops).todense()`` by its optimal plan against forward-only
and reverse-only accumulation.

A part of the calculus suite (``python -m matkron bench calculus``), runnable on its own:
``python -m matkron._bench.jacobian_chain [--quick]`` (BLAS pinned to one thread).

Each case is a chain of float64 Jacobians with mixed shapes: dense layers (arrays), and
operator Jacobians applied matrix-free with their cost hints: an elementwise map
(:class:`DiagonalJacobian`, n multiply-adds per vector) and a Kronecker product
``matkron.kron(A, B)`` (the Jacobian of X ↦ B X Aᵀ, pq(p + q) per vector). The three
accumulations (``mode="auto"``, ``"forward"``, ``"reverse"``) are checked against
``numpy.linalg.multi_dot`` of the dense Jacobians, then timed interleaved.
"""

import argparse

import numpy as np
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import matkron

from .report import format_table, format_value
from .suite import Check, Column
from .timing import measure

__all__ = ["CASES", "COLUMNS", "DiagonalJacobian", "chain", "check", "format_rows", "notes",
           "run"]

MODES = ("auto", "forward", "reverse")

# Cases by quick: (name, description, the chain's recipe). A recipe is a list of
# ("dense", rows, cols) (an array), ("linop", rows, cols) (the same behind
# aslinearoperator, at rows·cols per vector), ("diag", n) or ("kron", p, q) (an operator of
# order p q), in the order the functions are applied.
CASES = {
    False: (
        ("mlp, 8 outputs", [("dense", 512, 1024), ("diag", 512), ("dense", 512, 512),
                            ("diag", 512), ("dense", 8, 512)]),
        ("16 inputs, kron layer", [("dense", 1024, 16), ("kron", 32, 32), ("diag", 1024),
                                   ("dense", 2048, 1024)]),
        ("bottleneck 32", [("dense", 32, 2048), ("linop", 1024, 32), ("kron", 32, 32),
                           ("linop", 32, 1024), ("dense", 2048, 32)]),
        ("mixed, kron middle", [("dense", 256, 512), ("diag", 256), ("dense", 1024, 256),
                                ("kron", 32, 32), ("dense", 64, 1024), ("diag", 64),
                                ("dense", 512, 64)]),
    ),
    True: (
        ("mlp, 4 outputs", [("dense", 128, 256), ("diag", 128), ("dense", 128, 128),
                            ("diag", 128), ("dense", 4, 128)]),
        ("8 inputs, kron layer", [("dense", 256, 8), ("kron", 16, 16), ("diag", 256),
                                  ("dense", 512, 256)]),
        ("bottleneck 16", [("dense", 16, 512), ("linop", 256, 16), ("kron", 16, 16),
                           ("linop", 16, 256), ("dense", 512, 16)]),
    ),
}

COLUMNS = [
    Column("case", "case", "text"),
    Column("shape", "J shape", "text"),
    Column("k", "k", "int"),
    Column("mode", "plan", "text"),
    Column("cost_auto", "opt Mmadd", "text"),
    Column("cost_forward", "fwd Mmadd", "text"),
    Column("cost_reverse", "rev Mmadd", "text"),
    Column("auto_s", "optimal", "time"),
    Column("forward_s", "forward", "time"),
    Column("reverse_s", "reverse", "time"),
    Column("forward/auto", "fwd/opt", "ratio"),
    Column("reverse/auto", "rev/opt", "ratio"),
]

LEGEND = [
    "legend       optimal, forward, reverse: matkron.jacobian_chain(ops, mode=...).todense()",
    "               with mode 'auto' (the dynamic program's plan), 'forward' (every Jacobian",
    "               applied to the n_0 columns of an identity, right to left) and 'reverse'",
    "               (the adjoints applied to the n_k rows, left to right); one BLAS thread",
    "             dense: an array (a layer); linop: the same behind aslinearoperator; diag: an",
    "               elementwise map, a LinearOperator of n multiply-adds per vector;",
    "               kron p×q: matkron.kron(A, B), A p×p and B q×q, pq(p + q) per vector",
    "             plan: the mode of the optimal plan; … Mmadd: the cost model's millions of",
    "               multiply-adds; fwd/opt, rev/opt: forward and reverse time over the optimal",
    "               plan's (> 1: the plan is faster); a forced mode whose plan is the optimal",
    "               one is not timed again (its ratio is 1)",
]

# The optimal plan is expected no slower than this multiple of the faster of forward and
# reverse mode (timing noise on a loaded machine).
TARGET = 1.1


class DiagonalJacobian(LinearOperator):
    """The Jacobian diag(d) of an elementwise map, applied matrix-free.

    Parameters
    ----------
    d : ndarray
        The derivative of the map at each entry.

    Attributes
    ----------
    matvec_cost : int
        n multiply-adds per vector, read by :func:`matkron.jacobian_chain`.

    Examples
    --------
    >>> import numpy as np
    >>> D = DiagonalJacobian(np.array([1.0, 2.0]))
    >>> D @ np.ones((2, 2))
    array([[1., 1.],
           [2., 2.]])
    >>> D.matvec_cost
    2
    """

    def __init__(self, d):
        self.d = d
        self.matvec_cost = d.size
        super().__init__(d.dtype, (d.size, d.size))
        self.args = (d,)  # SciPy's contract: the arguments that define it

    def _matvec(self, x):
        return self.d * x.reshape(-1)

    def _matmat(self, X):
        return self.d[:, None] * X

    def _adjoint(self):
        return DiagonalJacobian(self.d.conj())


def chain(recipe, seed=0):
    """The ops of a case and their dense matrices (the oracle's), from its recipe.

    Examples
    --------
    >>> ops, mats = chain([("dense", 4, 2), ("diag", 4), ("kron", 2, 2), ("linop", 1, 4)])
    >>> [m.shape for m in mats]
    [(4, 2), (4, 4), (4, 4), (1, 4)]
    """
    rng = np.random.default_rng(seed)
    ops, mats = [], []
    for item in recipe:
        if item[0] in ("dense", "linop"):
            M = rng.standard_normal(item[1:]) / np.sqrt(item[2])
            ops.append(M if item[0] == "dense" else aslinearoperator(M))
            mats.append(M)
        elif item[0] == "diag":
            d = rng.uniform(0.5, 1.5, item[1])
            ops.append(DiagonalJacobian(d))
            mats.append(np.diag(d))
        else:
            p, q = item[1:]
            A = rng.standard_normal((p, p)) / np.sqrt(p)
            B = rng.standard_normal((q, q)) / np.sqrt(q)
            K = matkron.kron(A, B)
            K.matvec_cost = p * q * (p + q)
            ops.append(K)
            mats.append(np.kron(A, B))
    matkron.jacobian_chain(ops)  # the shape checks, with their messages
    return ops, mats


def _cell(name, recipe, repeat, min_time):
    ops, mats = chain(recipe)
    reference = mats[0] if len(mats) == 1 else np.linalg.multi_dot(mats[::-1])
    chains = {mode: matkron.jacobian_chain(ops, mode=mode) for mode in MODES}
    scale = np.abs(reference).max()
    for mode, J in chains.items():
        got = J.todense()
        if got.shape != reference.shape or not np.allclose(got, reference, 1e-10,
                                                           1e-10 * scale):
            raise RuntimeError(f"jacobian_chain(mode={mode!r}).todense() is wrong for {name}")
    # A forced mode whose plan is the optimal one is the same computation: timed once.
    same = {mode: "auto" if chains[mode].plan._steps == chains["auto"].plan._steps else mode
            for mode in MODES}
    statements = {mode: chains[mode].todense for mode in MODES if same[mode] == mode}
    measured = measure(statements, None, repeat, min_time)
    times = {mode: measured[same[mode]] for mode in MODES}
    plan = chains["auto"].plan
    row = {
        "case": name,
        "shape": f"{reference.shape[0]}×{reference.shape[1]}",
        "k": len(ops),
        "mode": plan.mode,
        "same_as": [mode for mode in MODES[1:] if same[mode] == "auto"],
        "plan": str(plan),
        "dims": plan.dims,
    }
    for mode in MODES:
        row[f"cost_{mode}"] = f"{chains[mode].plan.cost / 1e6:.3g}"
        row[f"{mode}_s"] = times[mode]
    row["forward/auto"] = times["forward"] / times["auto"]
    row["reverse/auto"] = times["reverse"] / times["auto"]
    return row


def run(quick, repeat=None, min_time=None):
    """Check and time every case; the rows of the table.

    Parameters
    ----------
    quick : bool
        The smaller cases, fewer and shorter samples.
    repeat : int, optional
        Samples per timing (median reported); 7 quick, 9 otherwise.
    min_time : float, optional
        The shortest sample in seconds; 3 ms quick, 5 ms otherwise.

    Returns
    -------
    list of dict
        One row per case, keyed by the :data:`COLUMNS` keys, plus "plan" (the optimal
        bracketing) and "dims".

    Examples
    --------
    >>> rows = run(quick=True, repeat=1, min_time=1e-4)
    >>> [row["case"] for row in rows]
    ['mlp, 4 outputs', '8 inputs, kron layer', 'bottleneck 16']
    >>> rows[0]["mode"]
    'reverse'
    """
    repeat = repeat or (7 if quick else 9)
    min_time = min_time or (0.003 if quick else 0.005)
    return [_cell(name, recipe, repeat, min_time) for name, recipe in CASES[quick]]


def notes(rows):
    """The legend and each case's sizes and optimal bracketing, as lines."""
    lines = list(LEGEND)
    for row in rows:
        lines.append(f"{row['case']}: n = {' → '.join(map(str, row['dims']))}; plan "
                     f"{row['plan']}")
    return lines


def check(rows):
    """The target: the optimal plan no slower than the better of forward and reverse mode
    (within :data:`TARGET`), in every case.

    Examples
    --------
    >>> check([{"case": "c", "forward/auto": 2.0, "reverse/auto": 1.0}]).passed
    True
    """
    worst = max(rows, key=lambda row: 1 / min(row["forward/auto"], row["reverse/auto"]))
    misses = [row for row in rows if min(row["forward/auto"], row["reverse/auto"]) < 1 / TARGET]
    detail = (f"worst {format_value(min(worst['forward/auto'], worst['reverse/auto']), 'ratio')}"
              f" (best mode / optimal) at {worst['case']}")
    if misses:
        detail += "; missed at " + ", ".join(row["case"] for row in misses)
    return Check(not misses, f"jacobian_chain todense: the optimal plan within {TARGET:g}x of "
                 "the faster of forward and reverse mode, every case", detail)


def format_rows(rows):
    """The table, the notes and the target line as text."""
    result = check(rows)
    status = "PASS" if result.passed else "MISS"
    target = f"  {status}  {result.target}: {result.detail}"
    return "\n".join([format_table(COLUMNS, rows), "", *notes(rows), "", target])


def main(argv=None):
    """Run the cases with BLAS on one thread and print the table."""
    parser = argparse.ArgumentParser(prog="python -m matkron._bench.jacobian_chain")
    parser.add_argument("--quick", action="store_true", help="the smaller cases")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        print(format_rows(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
