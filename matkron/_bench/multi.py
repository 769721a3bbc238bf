"""The multi suite: y = (F1 ⊗ … ⊗ Fk) x for k factors, side by side with baselines and peers.

Every cell (factor shapes, layout of x) times, on the same float64 operands and interleaved:

- ``kron_matvec(factors, x)``, the same with a preallocated ``out=`` (also with every step
  on dgemm, the own step kernel switched off), and ``K @ x`` for
  ``K = matkron.kron(*factors)``;
- the GEMM floor: one ``np.matmul`` per factor, in the flop-optimal order of
  :func:`matkron.kron_order`, of the factor with a preallocated buffer into another, with
  the method's shapes and flop count (the values are not the product: the floor leaves out
  everything but the GEMMs);
- the NumPy shuffle algorithm, the fastest of three NumPy forms (:data:`SHUFFLES`);
- each peer that is installed, called through its public Python API: pyfastkron (FastKron's
  CPU backend), pykronecker and pylops. Peers are optional: a missing one is skipped with a
  note, and none is a dependency of matkron.

Before timing, every result is checked against an einsum over the factors, which shares no
code with the methods. A peer call slower than :data:`SLOW_CALL_S` is timed by single calls
outside the interleaved loop, as many as fit a time budget per cell.
"""

import contextlib
import functools
import io
import math
import operator
import os
import statistics
import string
import time
from importlib import metadata

import numpy as np
from scipy.linalg.blas import dgemm

import matkron
from matkron import _kron_cy

from . import features
from .machine import percent_of_peak, plan_flops
from .pinning import XLA_FLAGS
from .report import Progress, format_time
from .rows import add_ratios, check, new_row
from .suite import Column, Outcome, PlotSpec, Suite
from .timing import measure

__all__ = ["CASES", "SUITE", "Case", "factors", "load_peers", "operand", "reference"]

# Factor shapes by case, in the order of the table and of the plot's x axis: n, the
# geometric-mean factor order (Π p_i q_i)^(1/2k). The rectangular case, whose factors have
# p ≠ q so that the application order changes the flops, has n = 48; the example
# (16×64, 64×16, 32×32) has n = 32 and would share its place on the plot with 32^3.
CASES = {
    "8^5": ((8, 8),) * 5,
    "16^4": ((16, 16),) * 4,
    "32^3": ((32, 32),) * 3,
    "24x96,96x24,48x48": ((24, 96), (96, 24), (48, 48)),
    "64^3": ((64, 64),) * 3,
    "128^2": ((128, 128),) * 2,
}
# The cases of a --quick run: one of each kind (many small factors, a few medium ones,
# rectangular ones, two large ones), under a minute on a loaded machine.
QUICK_CASES = ("8^5", "32^3", "24x96,96x24,48x48", "128^2")
# x is a vector (m = 1), or an (N, RHS) array in C or Fortran order.
LAYOUTS = ("1-D", "C", "F")
RHS = 16
LAYOUT_NAMES = {"1-D": "m = 1", "C": f"m = {RHS}, C-ordered x", "F": f"m = {RHS}, F-ordered x"}

# Targets of the issue: kron_matvec / GEMM floor at most these, at every shape.
FLOOR_BOUND = {"1-D": 1.5, "C": 1.25, "F": 1.25}
# Issue 9: compute-bound cells reach this percentage of the single-core FMA peak.
PEAK_TARGET_PCT = 80.0


def compute_bound(row):
    """Whether a row is a compute-bound cell of issue 9: n >= 128, or k >= 3 with m > 1."""
    return row["n"] >= 128 or (row["k"] >= 3 and row["m"] > 1)

# A peer call slower than this is timed by single calls, outside the interleaved loop, up
# to a budget of seconds per method and cell (at least one call, at most `repeat`). A peer's
# first call (which checks its result) may compile or tune for the shapes (pykronecker's JAX,
# pyfastkron): it is not a sample unless it alone takes the budget.
SLOW_CALL_S = 0.1
SLOW_BUDGET_S = {True: 0.5, False: 3.0}  # by config.quick
# A peer whose call at m = 16 would take longer than this, by its time at m = 1 of the same
# factors times 16, is not run at that cell (by config.quick).
PEER_CAP_S = {True: 0.25, False: 30.0}

# Why pykronecker is left out of the rectangular case.
SQUARE_ONLY = "square factors only (KroneckerProduct asserts them)"


# -- peers -----------------------------------------------------------------------------------


def _pyfastkron():
    from pyfastkron import fastkronnumpy

    return fastkronnumpy, metadata.version("pyfastkron")


def _pykronecker():
    # pykronecker prints its backend on import; JAX computes float64 operands in float32
    # unless 64-bit floats are enabled.
    os.environ.setdefault("XLA_FLAGS", XLA_FLAGS)
    with contextlib.redirect_stdout(io.StringIO()):
        import pykronecker
        from pykronecker import fast_math
    backend = "NumPy"
    if fast_math.use_jax:
        import jax

        jax.config.update("jax_enable_x64", True)
        backend = f"JAX {jax.__version__}"
    return pykronecker, f"{metadata.version('pykronecker')} ({backend})"


def _pylops():
    import pylops

    return pylops, pylops.__version__


@functools.cache
def load_peers():
    """The peers, imported on the first call: their modules and versions, or why not.

    Returns
    -------
    found : dict of str to (module, str) or None
        By peer name: the module called and its version, or None.
    errors : dict of str to str
        By peer name: why it is None (not installed, or failed to import).

    Notes
    -----
    Peers load only when a run or a benchmark needs them: pyfastkron imports torch,
    pykronecker JAX, and they set process-wide state (XLA_FLAGS, JAX's 64-bit floats).
    ``python -m matkron bench`` calls the plan, which loads them, before it limits the
    thread pools (:func:`~.pinning.pinned`): their OpenMP pools get the BLAS thread count.
    """
    peers, errors = {}, {}
    for name, load in (
        ("pyfastkron", _pyfastkron),
        ("pykronecker", _pykronecker),
        ("pylops", _pylops),
    ):
        try:
            peers[name] = load()
        except ImportError:
            peers[name] = None
            errors[name] = f"not installed (pip install {name})"
        except Exception as error:  # noqa: BLE001 (a broken optional peer must not stop the run)
            peers[name] = None
            errors[name] = f"failed to import: {type(error).__name__}: {error}"
    return peers, errors


def _ready(y):
    """Wait for a JAX result (pykronecker returns jax.Array); any other array as is."""
    block = getattr(y, "block_until_ready", None)
    return y if block is None else block()


def _kron_matvec_dgemm(factors, x, out):
    """kron_matvec(factors, x, out=out) with every float64 step on dgemm (the own step
    kernel, AVX-512 or AVX2, switched off for the call; plans are cached apart for the
    two)."""
    _kron_cy._set_planner(own_kernel=False)
    try:
        return matkron.kron_matvec(factors, x, out=out)
    finally:
        _kron_cy._set_planner(own_kernel=True)


def _pylops_operator(pylops, mats):
    """F1 ⊗ … ⊗ Fk as pylops operators: Kronecker is binary, so nested from the left."""
    op = pylops.MatrixMult(mats[0])
    for f in mats[1:]:
        op = pylops.Kronecker(op, pylops.MatrixMult(f))
    return op


# -- operands and the reference ----------------------------------------------------------


def factors(name):
    """Random float64 factors of case `name`, the same in every run.

    Examples
    --------
    >>> [f.shape for f in factors("24x96,96x24,48x48")]
    [(24, 96), (96, 24), (48, 48)]
    """
    rng = np.random.default_rng([list(CASES).index(name), 1])
    return [rng.standard_normal(shape) for shape in CASES[name]]


def operand(name, layout):
    """The random x of a cell: a vector, or (N, RHS) in C or Fortran order.

    The C- and Fortran-ordered operands of a case hold the same values.

    Examples
    --------
    >>> x = operand("8^5", "F")
    >>> x.shape, x.flags.f_contiguous, bool((x == operand("8^5", "C")).all())
    ((32768, 16), True, True)
    """
    columns = math.prod(q for _, q in CASES[name])
    rng = np.random.default_rng([list(CASES).index(name), 2, int(layout == "1-D")])
    if layout == "1-D":
        return rng.standard_normal(columns)
    return np.asarray(rng.standard_normal((columns, RHS)), order=layout)


def reference(mats, x, absolute=False):
    """(F1 ⊗ … ⊗ Fk) x by one einsum over the factors (|F1| ⊗ … ⊗ |Fk| |x| if `absolute`).

    x (1-D or 2-D) is read as the row-major q1 × … × qk tensor (times m columns), the index
    convention of ``np.kron``; no code is shared with the methods timed.

    Examples
    --------
    >>> A, B = np.arange(6.0).reshape(2, 3), np.eye(2)
    >>> bool(np.allclose(reference([A, B], np.ones(6)), np.kron(A, B) @ np.ones(6)))
    True
    """
    if absolute:
        mats, x = [np.abs(f) for f in mats], np.abs(x)
    k = len(mats)
    ins, outs = string.ascii_lowercase[:k], string.ascii_lowercase[k : 2 * k]
    tail = "z" if x.ndim == 2 else ""
    tensor = x.reshape(tuple(f.shape[1] for f in mats) + x.shape[1:])
    subscripts = ",".join(o + i for o, i in zip(outs, ins)) + f",{ins}{tail}->{outs}{tail}"
    y = np.einsum(subscripts, *mats, tensor, optimize="greedy")
    return y.reshape((-1,) + x.shape[1:])


def _flops(shapes, order, m):
    """Multiplications of applying the factors in `order` to m columns (see kron_order)."""
    size = m * math.prod(q for _, q in shapes)
    total = 0
    for i in order:
        p, q = shapes[i]
        total += size * p
        size = size // q * p
    return total


# -- the NumPy shuffle algorithm -------------------------------------------------------------


def shuffle_cyclic(mats, x, forward):
    """The shuffle algorithm in its cycle: each factor one GEMM, no transposing copy.

    x as the row-major tensor (q1, …, qk, m) is, for the leading mode, the matrix
    X(q1, rest); ``X.T @ F1.T`` is (rest, p1), the row-major tensor (q2, …, qk, m, p1)
    whose leading mode is the next factor's. After k steps the tensor is (m, p1, …, pk),
    whose transpose is the result. This forward cycle needs a C-ordered x; the backward
    cycle, ``F @ X(rest, q).T`` on the trailing mode from Fk to F1, reads a Fortran-ordered
    x as the row-major (m, q1, …, qk) and ends C-ordered. A vector takes either.
    """
    if forward:
        t = x
        for f in mats:
            t = t.reshape(f.shape[1], -1).T @ f.T
        rows = t.size // (x.shape[1] if x.ndim == 2 else 1)
        return t.reshape(-1, rows).T if x.ndim == 2 else t.reshape(rows)
    t = x.T if x.ndim == 2 else x
    for f in reversed(mats):
        t = f @ t.reshape(-1, f.shape[1]).T
    return t.reshape((-1,) + x.shape[1:])


def shuffle_modes(mats, order, x):
    """Each factor along its mode, in `order`, the other modes staying in place.

    The tensor is the row-major (q1, …, qk, m) for a C-ordered x, (m, q1, …, qk) for a
    Fortran-ordered one; with L and R the sizes before and after the factor's mode, a
    factor is one GEMM F @ X(q, R) when L = 1, X(L, q) @ F.T when R = 1, else L batched
    GEMMs ``np.matmul(F, X(L, q, R))``.
    """
    transposed = x.ndim == 2 and not x.flags.c_contiguous and x.flags.f_contiguous
    dims = [f.shape[1] for f in mats]
    if transposed:
        t, dims, shift = x.T, [x.shape[1], *dims], 1
    else:
        t, dims, shift = x, dims + list(x.shape[1:]), 0
    for i in order:
        f = mats[i]
        p, q = f.shape
        j = i + shift
        before, after = math.prod(dims[:j]), math.prod(dims[j + 1 :])
        if before == 1:
            t = f @ t.reshape(q, after)
        elif after == 1:
            t = t.reshape(before, q) @ f.T
        else:
            t = np.matmul(f, t.reshape(before, q, after))
        dims[j] = p
    if transposed:
        return t.reshape(x.shape[1], -1).T
    return t.reshape((-1,) + x.shape[1:])


def shuffle_tensordot(mats, order, x):
    """The textbook form: ``np.tensordot`` along each mode in `order`, ``np.moveaxis`` back.

    tensordot copies the operand whenever the contracted mode is not leading; the last
    reshape copies the moved axes into a contiguous result.
    """
    transposed = x.ndim == 2 and not x.flags.c_contiguous and x.flags.f_contiguous
    dims = tuple(f.shape[1] for f in mats)
    t = x.T.reshape((x.shape[1], *dims)) if transposed else x.reshape(dims + x.shape[1:])
    shift = 1 if transposed else 0
    for i in order:
        t = np.moveaxis(np.tensordot(mats[i], t, axes=(1, i + shift)), 0, i + shift)
    if transposed:
        return t.reshape(x.shape[1], -1).T
    return t.reshape((-1,) + x.shape[1:])


# The floors: checked for their flops and finite values only (their values are not the
# product).
FLOORS = ("gemm_floor", "dgemm_floor")

# The NumPy forms of the shuffle algorithm; a cell reports the fastest.
SHUFFLES = {
    "cyclic": lambda case: shuffle_cyclic(case.factors, case.x, case.forward),
    "modes": lambda case: shuffle_modes(case.factors, case.order, case.x),
    "tensordot": lambda case: shuffle_tensordot(case.factors, case.order, case.x),
}


# -- one cell --------------------------------------------------------------------------------


class Case:
    """The operands of one cell, with every method ready to run.

    Parameters
    ----------
    name : str
        A key of :data:`CASES`.
    layout : {"1-D", "C", "F"}
        x is a vector (m = 1), or an (N, 16) array in C or Fortran order.
    peers : bool, optional
        Add the installed peers' statements (importing them, see :func:`load_peers`).

    Attributes
    ----------
    shapes : tuple of (int, int)
        The factor shapes.
    m : int
        The number of right-hand sides.
    factors : list of ndarray
        The float64 factors (:func:`factors`).
    x : ndarray
        The operand (:func:`operand`).
    K : KronOperator
        ``matkron.kron(*factors)``.
    order, flops : tuple of int, int
        ``matkron.kron_order(shapes, m)``: the flop-optimal order and its multiplications.
    forward : bool
        The direction of the cyclic shuffle: forward for C-ordered x, backward for
        Fortran-ordered x, the one of fewer flops for a vector.
    statements : dict of str to callable
        Each method as a call without arguments returning its result, by name; a peer's
        when `peers` is true, it is installed and takes the case (pykronecker: square
        factors only).
    out : ndarray
        The preallocated result of "kron_matvec_out" and "kron_matvec_dgemm".
    skipped : dict of str to str
        Peers left out of this cell, with the reason.

    Examples
    --------
    >>> case = Case("8^5", "C", peers=False)
    >>> case.m, case.order, sorted(case.statements)[:3]
    (16, (0, 1, 2, 3, 4), ['dgemm_floor', 'gemm_floor', 'kron_matvec'])
    >>> seconds = case.check()
    >>> sorted(seconds) == sorted(case.statements)
    True
    """

    def __init__(self, name, layout, peers=True):
        self.name, self.layout = name, layout
        self.shapes = CASES[name]
        self.m = 1 if layout == "1-D" else RHS
        self.factors = fs = factors(name)
        self.x = x = operand(name, layout)
        self.K = matkron.kron(*fs)
        self.order, self.flops = matkron.kron_order(self.shapes, self.m)
        if layout == "1-D":
            k = len(fs)
            self.forward = _flops(self.shapes, range(k), 1) <= _flops(
                self.shapes, range(k - 1, -1, -1), 1
            )
        else:
            self.forward = layout == "C"
        # out= in the memory order of kron_matvec's new result for this x, once measured.
        self.out = out = np.empty_like(
            features.settled_result(functools.partial(matkron.kron_matvec, fs, x)))
        self.statements = {
            "kron_matvec": functools.partial(matkron.kron_matvec, fs, x),
            "kron_matvec_out": functools.partial(matkron.kron_matvec, fs, x, out=out),
            "kron_matvec_dgemm": functools.partial(_kron_matvec_dgemm, fs, x, out),
            "kron_operator": functools.partial(operator.matmul, self.K, x),
        }
        self.statements.update(self._floors())
        self.statements.update(
            {f"shuffle_{form}": functools.partial(call, self) for form, call in SHUFFLES.items()}
        )
        self.skipped = {}
        if peers:
            self._add_peers()

    def _floors(self):
        """Build the GEMM floors' buffers; their calls.

        Step t applies factor i = order[t] to a tensor of S entries as one
        ``np.matmul(F, X, out=Y)`` with X a (q, S/q) and Y a (p, S/q) C-ordered view: in
        BLAS (column-major) terms Yᵀ = Xᵀ Fᵀ, with S/q rows. Step 0 reads x's values, and
        the steps then alternate between two buffers; the values are not the product.
        The dgemm floor makes the same calls through ``scipy.linalg.blas.dgemm`` on the
        transposed (Fortran-ordered) views, writing into Yᵀ in place: SciPy's BLAS, the one
        matkron's kernels call, where the GEMM floor runs NumPy's. Each floor returns its
        last output buffer.
        """
        size = self.m * math.prod(q for _, q in self.shapes)
        sizes = [size]
        for i in self.order:
            p, q = self.shapes[i]
            sizes.append(sizes[-1] // q * p)
        source = np.ravel(self.x, order="K").copy()
        buffers = [np.empty(max(sizes[1:])), np.empty(max(sizes[1:]))]
        steps = []
        flops = 0
        for t, i in enumerate(self.order):
            p, q = self.shapes[i]
            src = source if t == 0 else buffers[(t - 1) % 2]
            X = src[: sizes[t]].reshape(q, sizes[t] // q)
            Y = buffers[t % 2][: sizes[t + 1]].reshape(p, sizes[t] // q)
            steps.append((self.factors[i], X, Y))
            flops += p * q * (sizes[t] // q)
        if flops != self.flops:
            raise RuntimeError(
                f"the GEMM floor of {self.name} does {flops} multiplications; "
                f"kron_order says {self.flops}"
            )
        self.dgemm_steps = [(X.T, F.T, Y.T) for F, X, Y in steps]
        matmul, dgemm_steps = np.matmul, self.dgemm_steps

        def gemm_floor():
            for F, X, Y in steps:
                matmul(F, X, out=Y)
            return Y

        def dgemm_floor():
            for XT, FT, YT in dgemm_steps:
                Z = dgemm(1.0, XT, FT, c=YT, overwrite_c=1)
            return Z

        return {"gemm_floor": gemm_floor, "dgemm_floor": dgemm_floor}

    def _add_peers(self):
        found = load_peers()[0]
        fastkron = found["pyfastkron"]
        if fastkron is not None:
            # gekmm takes x as (N, m); pyfastkron 1.1.0 rejects a 1-D x, so a vector goes
            # in as an (N, 1) view.
            self.statements["pyfastkron"] = functools.partial(
                fastkron[0].gekmm, self.factors, self.x.reshape(self.x.shape[0], -1))
        pykronecker = found["pykronecker"]
        if pykronecker is not None:
            if all(p == q for p, q in self.shapes):
                PK = pykronecker[0].KroneckerProduct(self.factors)
                self.statements["pykronecker"] = lambda: _ready(PK @ self.x)
            else:
                self.skipped["pykronecker"] = SQUARE_ONLY
        pylops = found["pylops"]
        if pylops is not None:
            self.statements["pylops"] = functools.partial(
                operator.matmul, _pylops_operator(pylops[0], self.factors), self.x)

    def run(self, method):
        """Run `method` once; its result as an ndarray (the floor's: its last buffer).

        Examples
        --------
        >>> Case("128^2", "1-D", peers=False).run("kron_matvec").shape
        (16384,)
        """
        return np.asarray(self.statements[method]())

    def drop(self, method, reason):
        """Leave `method` (a peer) out of this cell, noting why in :attr:`skipped`."""
        del self.statements[method]
        self.skipped[method] = reason

    def check(self):
        """Check that every method computes (F1 ⊗ … ⊗ Fk) x; the time of each call.

        The reference is :func:`reference`; a result passes when every entry is within
        1e-11 · (|F1| ⊗ … ⊗ |Fk|) |x| of it. The GEMM floor is checked for its flop count
        (when built) and for finite values only.

        Returns
        -------
        dict of str to float
            The seconds each method's checked call took (its first call).

        Raises
        ------
        RuntimeError
            Naming the method and the cell, if a result is wrong.
        """
        expected = reference(self.factors, self.x)
        tolerance = 1e-11 * reference(self.factors, self.x, absolute=True) + 1e-300
        seconds = {}
        for method in self.statements:
            start = time.perf_counter()
            y = self.run(method)
            seconds[method] = time.perf_counter() - start
            if method in FLOORS:
                ok = bool(np.isfinite(y).all())
                if method == "dgemm_floor":  # dgemm writes into its c, without a copy
                    ok = ok and all(
                        dgemm(1.0, XT, FT, c=YT, overwrite_c=1) is YT
                        for XT, FT, YT in self.dgemm_steps
                    )
            else:
                ok = y.size == expected.size and bool(
                    (np.abs(y.reshape(expected.shape) - expected) <= tolerance).all()
                )
                ok = ok and (y.shape == expected.shape or method == "pyfastkron")
                ok = ok and (
                    method not in ("kron_matvec_out", "kron_matvec_dgemm")
                    or y is self.out
                )
            if not ok:
                raise RuntimeError(
                    f"{method} does not compute (F1 ⊗ … ⊗ Fk) x for {self.name}, "
                    f"{LAYOUT_NAMES[self.layout]}"
                )
        return seconds


# -- running the suite -----------------------------------------------------------------------

PEER_NAMES = ("pyfastkron", "pykronecker", "pylops")

COLUMNS = [
    Column("case", "factors", "text"),
    Column("m", "m", "int"),
    Column("x", "x", "text"),
    Column("kron_matvec_s", "kron_matvec", "time"),
    Column("kron_matvec_out_s", "kv out=", "time"),
    Column("kron_matvec_dgemm_s", "kv dgemm", "time"),
    Column("kron_operator_s", "K @ x", "time"),
    Column("gemm_floor_s", "GEMM floor", "time"),
    Column("dgemm_floor_s", "dgemm floor", "time"),
    Column("shuffle_s", "numpy", "time"),
    Column("shuffle_form", "np form", "text"),
    Column("pyfastkron_s", "pyfastkron", "time"),
    Column("pykronecker_s", "pykronecker", "time"),
    Column("pylops_s", "pylops", "time"),
    Column("kron_matvec/floor", "kv/floor", "ratio", ("kron_matvec_s", "gemm_floor_s")),
    Column("kron_matvec_out/floor", "out/floor", "ratio", ("kron_matvec_out_s", "gemm_floor_s")),
    Column("kron_matvec_out/dgemm_floor", "out/dgemm", "ratio",
           ("kron_matvec_out_s", "dgemm_floor_s")),
    Column("kron_matvec_out/kron_matvec_dgemm", "own/dgemm", "ratio",
           ("kron_matvec_out_s", "kron_matvec_dgemm_s")),
    Column("shuffle/kron_matvec", "np/kv", "ratio", ("shuffle_s", "kron_matvec_s")),
    Column("pyfastkron/kron_matvec", "fk/kv", "ratio", ("pyfastkron_s", "kron_matvec_s")),
    Column("pykronecker/kron_matvec", "pyk/kv", "ratio", ("pykronecker_s", "kron_matvec_s")),
    Column("pylops/kron_matvec", "pylops/kv", "ratio", ("pylops_s", "kron_matvec_s")),
    Column("kron_matvec_gflops", "kv GF/s", "ratio"),
    Column("kron_matvec_peak_pct", "kv %peak", "ratio"),
    Column("gemm_floor_peak_pct", "floor %peak", "ratio"),
]

LEGEND = [
    "factors      the factor shapes: n^k is k random n×n factors; a×b,… rectangular ones",
    "kron_matvec  matkron.kron_matvec(factors, x): a new result (Fortran-ordered for some",
    "               C-ordered x: its GEMMs write their output transposed)",
    "kv out=      matkron.kron_matvec(factors, x, out=out), out preallocated in the memory",
    "               order of kron_matvec's new result once its plan is measured",
    "kv dgemm     kv out= with the own float64 step kernel switched off: every step on",
    "               SciPy's dgemm (the same as kv out= on CPUs without AVX-512 or AVX2)",
    "K @ x        K = matkron.kron(*factors), a KronOperator made once per case",
    "GEMM floor   the method's k GEMMs alone: for each factor F (p×q) in the order of",
    "               matkron.kron_order(shapes, m), np.matmul(F, X, out=Y) with preallocated",
    "               C-ordered X (q × S/q) and Y (p × S/q), S the current tensor size: the",
    "               method's flop count; NumPy's OpenBLAS (matkron calls SciPy's)",
    "dgemm floor  the same GEMMs by scipy.linalg.blas.dgemm on the transposed views, in",
    "               place: SciPy's OpenBLAS, the one matkron's kernels call",
    "numpy        the NumPy shuffle algorithm, the fastest of three forms (np form):",
    "               cyclic     X(q1, rest).T @ F1.T cycles the modes, one GEMM per factor and",
    "                          no copy, factors in index order (forward for C-ordered x,",
    "                          backward for Fortran-ordered x, either for a vector)",
    "               modes      each factor along its mode in the flop-optimal order: one",
    "                          np.matmul, batched over the leading modes for middle modes",
    "               tensordot  np.tensordot along each mode, np.moveaxis back (copies)",
    "pyfastkron   pyfastkron.fastkronnumpy.gekmm(factors, x) (FastKron's x86 backend); a",
    "               vector goes in as an (N, 1) view (1.1.0 rejects 1-D x)",
    "pykronecker  pykronecker.KroneckerProduct(factors) @ x, waited for with",
    "               block_until_ready (JAX backend, jax_enable_x64; square factors only;",
    "               it applies m > 1 columns one at a time)",
    "pylops       K @ x, K = pylops.Kronecker(pylops.Kronecker(MatrixMult(F1), MatrixMult(F2)),",
    "               …) nested from the left (Kronecker takes two operators)",
    "ratios       kv/floor = kron_matvec / GEMM floor, out/floor = kv out= / GEMM floor,",
    "             out/dgemm = kv out= / dgemm floor (the targets use the GEMM floor),",
    "             own/dgemm = kv out= / kv dgemm;",
    "             np/kv, fk/kv, pyk/kv, pylops/kv = baseline / kron_matvec (above 1:",
    "             kron_matvec is faster)",
    "kv GF/s      flops of matkron's plan / kron_matvec time: flops = 2 × the multiply-adds",
    "               of its GEMMs, 2 Σ_t S_t p_t (S_t the tensor size before step t, p_t the",
    "               rows of its factor; machine.plan_flops)",
    "%peak        GF/s as a percentage of the measured single-core FMA peak (header):",
    "               kv %peak for kron_matvec, floor %peak for the GEMM floor (same flops)",
]


def _call(func):
    """The seconds of one call of `func`."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _time_apart(func, first, budget, repeat):
    """Median of single calls of a slow method: `first`, then as many as fit `budget`."""
    times = [first]
    deadline = time.perf_counter() + budget
    while len(times) < repeat and time.perf_counter() + first < deadline:
        times.append(_call(func))
    return statistics.median(times), len(times)


def _measure_case(case, config, per_column):
    """Check and time one cell; its row and the methods timed apart (name, samples).

    `per_column` holds each peer's time at m = 1 for these factors, if measured: a peer
    estimated to take over PEER_CAP_S per call at this cell is left out.
    """
    cap = PEER_CAP_S[config.quick]
    for peer, seconds in per_column.items():
        if peer in case.statements and seconds is not None and seconds * case.m > cap:
            case.drop(
                peer,
                f"estimated {format_time(seconds * case.m)} per call (m × its "
                f"m = 1 time), over the cap of {cap:g} s",
            )
    first = case.check()
    apart = {}
    fast = dict(case.statements)
    for peer in PEER_NAMES:
        if peer not in fast:
            continue
        func = case.statements[peer]
        seconds = first[peer]
        if seconds < SLOW_BUDGET_S[config.quick]:
            seconds = _call(func)
        if seconds >= SLOW_CALL_S:
            del fast[peer]
            apart[peer] = _time_apart(func, seconds, SLOW_BUDGET_S[config.quick], config.repeat)
    times = measure(fast, None, config.repeat, config.min_time)
    times.update({peer: t for peer, (t, _) in apart.items()})
    form = min(SHUFFLES, key=lambda f: times[f"shuffle_{f}"])
    flops = plan_flops(case.factors, case.x)
    row = new_row(
        COLUMNS,
        case=case.name,
        n=round(math.prod(p * q for p, q in case.shapes) ** (1 / (2 * len(case.shapes)))),
        k=len(case.shapes),
        m=case.m,
        x=case.layout,
        panel=LAYOUT_NAMES[case.layout],
        **{f"{name}_s": seconds for name, seconds in times.items()},
        shuffle_s=times[f"shuffle_{form}"],
        shuffle_form=form,
        kron_matvec_gflops=flops / times["kron_matvec"] / 1e9,
        kron_matvec_peak_pct=percent_of_peak(flops / times["kron_matvec"] / 1e9),
        gemm_floor_peak_pct=percent_of_peak(flops / times["gemm_floor"] / 1e9),
    )
    return add_ratios(row, COLUMNS), {peer: samples for peer, (_, samples) in apart.items()}


def _cell(row):
    return f"{row['case']}" + ("" if row["m"] == 1 else f" (x {row['x']})")


def _checks(rows):
    """The issue's targets for the multi suite."""
    checks = []
    for layout in ("C", "F", "1-D"):
        bound = FLOOR_BOUND[layout]
        checks.append(
            check(
                [row for row in rows if row["x"] == layout],
                "kron_matvec/floor",
                f"every shape, {LAYOUT_NAMES[layout]}: kron_matvec / GEMM floor <= {bound:g}",
                operator.le,
                bound,
                _cell,
            )
        )
    # Issue 9: every cell, a new result and out=, within 1.10 of the floor and not slower
    # than the NumPy shuffle; compute-bound cells at PEAK_TARGET_PCT % of the FMA peak.
    for key, method in (("kron_matvec/floor", "kron_matvec"),
                        ("kron_matvec_out/floor", "kron_matvec out=")):
        checks.append(check(rows, key, f"every cell: {method} / GEMM floor <= 1.10",
                            operator.le, 1.10, _cell))
    checks.append(check(rows, "shuffle/kron_matvec",
                        "every cell: kron_matvec not slower than the NumPy shuffle",
                        operator.ge, 1.0, _cell))
    checks.append(check(
        [row for row in rows if compute_bound(row)], "kron_matvec_peak_pct",
        f"compute-bound cells (n >= 128, or k >= 3 factors with m = {RHS}): kron_matvec "
        f">= {PEAK_TARGET_PCT:g} % of the single-core FMA peak", operator.ge, PEAK_TARGET_PCT,
        _cell,
    ))
    for peer in PEER_NAMES:
        if load_peers()[0][peer] is None:
            continue
        checks.append(
            check(
                rows,
                f"{peer}/kron_matvec",
                f"every shape and x: kron_matvec faster than {peer}",
                operator.gt,
                1.0,
                _cell,
            )
        )
    return checks


def _cases(config):
    names = QUICK_CASES if config.quick else CASES
    return [(name, layout) for name in names for layout in LAYOUTS]


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    found, errors = load_peers()
    peers = [
        f"{peer} {found[peer][1]}" if found[peer] else f"{peer} {errors[peer]}"
        for peer in PEER_NAMES
    ]
    return [
        "multi suite: y = (F1 ⊗ … ⊗ Fk) x for random float64 factors",
        (
            f"  factors: {'; '.join(QUICK_CASES if config.quick else CASES)}; x a vector "
            f"(m = 1) or an (N, {RHS}) array in C or Fortran order"
        ),
        (
            f"  median of {config.repeat} samples per method, each a loop of calls lasting "
            f">= {config.min_time * 1e3:g} ms; methods interleaved within each cell"
        ),
        (
            f"  peers: {', '.join(peers)}; a peer call over {format_time(SLOW_CALL_S)} is "
            f"timed by single calls, within {SLOW_BUDGET_S[config.quick]:g} s per cell; "
            f"over an estimated {PEER_CAP_S[config.quick]:g} s per call it is not run"
        ),
        (
            "  with BLAS on one thread the run is pinned to one CPU (os.sched_setaffinity); "
            f"XLA_FLAGS={os.environ.get('XLA_FLAGS', XLA_FLAGS)!r}"
        ),
    ]


def run(config):
    """Run the multi suite with `config` (see :class:`~.suite.Config`); its outcome."""
    found, errors = load_peers()
    cells = _cases(config)
    rows, apart, skipped = [], [], {}
    per_column = {}
    with Progress(len(cells)) as progress:
        for name, layout in cells:
            progress.step(f"{name}: {LAYOUT_NAMES[layout]}")
            case = Case(name, layout)
            row, samples = _measure_case(case, config, per_column.get(name, {}))
            if layout == "1-D":
                per_column[name] = {peer: row[f"{peer}_s"] for peer in PEER_NAMES}
            rows.append(row)
            for peer, reason in case.skipped.items():
                where = name if reason == SQUARE_ONLY else _cell(row)
                skipped.setdefault((peer, reason), []).append(where)
            apart.extend(f"{peer} at {_cell(row)} ({count})" for peer, count in samples.items())
            del case
    notes = list(LEGEND)
    for peer in PEER_NAMES:
        if found[peer] is None:
            notes.append(f"skipped      {peer}: {errors[peer]}")
        else:
            notes.append(f"peer         {peer} {found[peer][1]}")
    for (peer, reason), names in skipped.items():
        notes.append(f"skipped      {peer} at {', '.join(dict.fromkeys(names))}: {reason}")
    if apart:
        notes.append(
            f"timed apart  calls over {format_time(SLOW_CALL_S)}, median of single "
            "calls (count): " + ", ".join(apart)
        )
    return Outcome(COLUMNS, rows, notes, _checks(rows), PLOT)


PLOT = PlotSpec(
    x="n",
    panel="panel",
    series=(
        "kron_matvec_s",
        "kron_operator_s",
        "shuffle_s",
        "pyfastkron_s",
        "pykronecker_s",
        "pylops_s",
        "gemm_floor_s",
    ),
    title="(F1 ⊗ … ⊗ Fk) x, float64 (x axis: n, the geometric-mean factor order): "
    "median time per call",
    dashed=("gemm_floor_s",),
)

SUITE = Suite(
    name="multi",
    summary="(F1 ⊗ … ⊗ Fk) x against the GEMM floor, the NumPy shuffle and peers "
    "(pyfastkron, pykronecker, pylops)",
    plan=plan,
    run=run,
    one_cpu=True,
)
