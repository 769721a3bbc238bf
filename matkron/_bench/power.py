"""The power suite: the Jacobian of A ↦ Aⁿ applied to vec(E), by method, against baselines.

Every cell (m, n) times, on the same float64 operands and interleaved:

- ``J.matvec(x)`` for ``J = matkron.power_jacobian(A, n, method=...)`` with each method:
  "naive" (the sum of Kronecker products with stored powers, while the powers fit under the
  memory cap), "horner", "binary", "dense" (m <= 32) and "auto";
- the explicit Kronecker-sum matrix Σₖ (A^{n-1-k})ᵀ ⊗ A^k built with ``np.kron`` (m <= 32,
  its build timed once per cell) and applied by ``D @ x``;
- JAX, when installed: ``jax.jvp`` of ``jnp.linalg.matrix_power``, jit-compiled, on (A, E).

A second panel takes a Hermitian (symmetric) A and times "binary", "eig", "dense" and "auto".
A is random with spectral radius 1 (so no power overflows), E random.
"""

import functools
import operator
import os
import time

import numpy as np

import matkron

from .pinning import XLA_FLAGS
from .report import Progress, format_bytes
from .rows import add_ratios, check, new_row
from .suite import Column, Outcome, PlotSpec, Suite
from .timing import measure

__all__ = ["SUITE", "explicit_matrix", "matrices"]

ORDERS = (4, 32, 256)
# Powers by config.quick (with JAX, each n of a general A is one more compilation).
POWERS = {False: (2, 3, 8, 32, 128, 1024), True: (2, 32, 1024)}
# With --quick, "naive" and "horner" (n products of m×m matrices, 2 n m³ flops) run while
# their flops stay under this, and the explicit matrix while its n Kronecker products of
# m² × m² entries (n m⁴) do (a second at about 10⁸): the full run times them all.
QUICK_MAX_FLOPS = 2e9
QUICK_MAX_EXPLICIT = 4e7
GENERAL_METHODS = ("naive", "horner", "binary", "dense", "auto")
HERMITIAN_METHODS = ("binary", "eig", "dense", "auto")
# The explicit Kronecker-sum matrix and matkron's "dense" method are built for m up to this.
DENSE_MAX_M = 32

COLUMNS = [
    Column("A", "A", "text"),
    Column("m", "m", "int"),
    Column("n", "n", "int"),
    *(Column(f"{name}_s", name, "time") for name in ("naive", "horner", "binary", "eig",
                                                     "dense", "auto")),
    Column("auto_method", "auto ->", "text"),
    Column("explicit_build_s", "D build", "time"),
    Column("explicit_matvec_s", "D @ x", "time"),
    Column("jax_s", "JAX jvp", "time"),
    Column("dgemm_s", "1 dgemm", "time"),
    Column("xla_dot_s", "1 XLA dot", "time"),
    Column("auto/best", "auto/best", "ratio"),
    Column("horner/binary", "hor/bin", "ratio", ("horner_s", "binary_s")),
    Column("binary/eig", "bin/eig", "ratio", ("binary_s", "eig_s")),
    Column("jax/auto", "JAX/auto", "ratio", ("jax_s", "auto_s")),
    Column("explicit/auto", "D/auto", "ratio", ("explicit_matvec_s", "auto_s")),
]

LEGEND = [
    "legend       naive … auto: J.matvec(vec(E)) for J = matkron.power_jacobian(A, n, "
    "method=...)",
    "             auto ->: the method 'auto' chose; D build / D @ x: the explicit "
    "Kronecker-sum matrix by np.kron, and its product with vec(E)",
    "             JAX jvp: jax.jit(lambda A, E: jax.jvp(lambda A: "
    "jnp.linalg.matrix_power(A, n), (A,), (E,))[1])",
    "             1 dgemm / 1 XLA dot: one m×m product A @ E by scipy.linalg.blas.dgemm "
    "(the BLAS of matkron's kernels) into a preallocated array, and by jax.jit(jnp.matmul)",
    "             auto/best: auto over the fastest method; hor/bin, bin/eig, JAX/auto, "
    "D/auto: speed-ups (> 1: the second is faster)",
]


def matrices(m, hermitian, seed=0):
    """A (spectral radius 1, symmetric when `hermitian`) and E, float64 m×m."""
    rng = np.random.default_rng(seed + m)
    A = rng.standard_normal((m, m))
    if hermitian:
        A = (A + A.T) / 2
    A /= np.abs(np.linalg.eigvals(A)).max()
    E = rng.standard_normal((m, m))
    return A, E


def explicit_matrix(A, n):
    """Σₖ (A^{n-1-k})ᵀ ⊗ A^k by np.kron (the naive baseline; m² × m²)."""
    m = A.shape[0]
    powers = [np.eye(m)]
    for _ in range(n - 1):
        powers.append(powers[-1] @ A)
    D = np.zeros((m * m, m * m))
    for k in range(n):
        D += np.kron(powers[n - 1 - k].T, powers[k])
    return D


def _jax():
    """jax and jax.numpy with float64 enabled, or None when JAX is not installed."""
    os.environ.setdefault("XLA_FLAGS", XLA_FLAGS)
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


def _jax_jvp(jax, jnp, n):
    return jax.jit(
        lambda A, E: jax.jvp(lambda A: jnp.linalg.matrix_power(A, n), (A,), (E,))[1]
    )


def _powers_bytes(m, n):
    return n * m * m * 8


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    return [
        "power suite: J.matvec(vec(E)) for J = power_jacobian(A, n), float64 m×m A "
        "(spectral radius 1) and E",
        f"  m in {', '.join(map(str, ORDERS))}; n in "
        f"{', '.join(map(str, POWERS[config.quick]))}; a general A and a symmetric A",
        f"  median of {config.repeat} samples per method, each a loop of calls lasting >= "
        f"{config.min_time * 1e3:g} ms; methods interleaved within each cell",
        f"  'naive' while its n stored powers fit in {format_bytes(config.mem_cap)}; the "
        f"explicit matrix and 'dense' for m <= {DENSE_MAX_M}"
        + (f"; with --quick 'naive' and 'horner' while 2 n m³ <= {QUICK_MAX_FLOPS:.2g}, the "
           f"explicit matrix while n m⁴ <= {QUICK_MAX_EXPLICIT:.2g}" if config.quick else ""),
        "  with BLAS on one thread the run is pinned to one CPU (os.sched_setaffinity); "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', XLA_FLAGS)!r}",
    ]


def _gemm_times(m, config, jax_mods):
    """One m×m product by the BLAS of the kernels, and by XLA (None without JAX)."""
    import scipy.linalg.blas

    A, E = matrices(m, False)
    A, E = np.asfortranarray(A), np.asfortranarray(E)
    C = np.zeros((m, m), order="F")
    dgemm = scipy.linalg.blas.dgemm
    statements = {"dgemm": functools.partial(dgemm, 1.0, A, E, c=C, overwrite_c=1)}
    if jax_mods is not None:
        jax, jnp = jax_mods
        dot = jax.jit(jnp.matmul)
        Aj, Ej = jnp.asarray(A), jnp.asarray(E)
        dot(Aj, Ej).block_until_ready()
        statements["xla_dot"] = lambda: dot(Aj, Ej).block_until_ready()
    return measure(statements, None, config.repeat, config.min_time)


def _measure_cell(m, n, hermitian, config, jax_mods):
    A, E = matrices(m, hermitian)
    x = matkron.vec(E).copy()
    methods = HERMITIAN_METHODS if hermitian else GENERAL_METHODS
    statements, results, skipped = {}, {}, []
    ops = {}
    for method in methods:
        if method == "dense" and m > DENSE_MAX_M:
            continue
        if method == "naive" and _powers_bytes(m, n) > config.mem_cap:
            skipped.append(f"naive at m={m}, n={n}: its powers take "
                           f"{format_bytes(_powers_bytes(m, n))}, over the memory cap of "
                           f"{format_bytes(config.mem_cap)} (--mem-cap-gb)")
            continue
        if method in ("naive", "horner") and config.quick and 2 * n * m**3 > QUICK_MAX_FLOPS:
            skipped.append(f"{method} at m={m}, n={n}: {2 * n * m**3:.2g} flops, over "
                           f"{QUICK_MAX_FLOPS:.2g} with --quick")
            continue
        J = ops[method] = matkron.power_jacobian(A, n, method=method)
        statements[method] = functools.partial(J.matvec, x)
        results[method] = J.matvec(x)
    D = build = None
    explicit = not hermitian and m <= DENSE_MAX_M
    if explicit and config.quick and n * m**4 > QUICK_MAX_EXPLICIT:
        skipped.append(f"the explicit matrix at m={m}, n={n}: n m⁴ = {n * m**4:.2g}, over "
                       f"{QUICK_MAX_EXPLICIT:.2g} with --quick")
        explicit = False
    if explicit:
        start = time.perf_counter()
        D = explicit_matrix(A, n)
        build = time.perf_counter() - start
        statements["explicit"] = functools.partial(np.matmul, D, x)
        results["explicit"] = D @ x
    if jax_mods is not None and not hermitian:
        jax, jnp = jax_mods
        f = _jax_jvp(jax, jnp, n)
        Aj, Ej = jnp.asarray(A), jnp.asarray(E)
        results["jax"] = matkron.vec(np.asarray(f(Aj, Ej)))
        statements["jax"] = lambda: f(Aj, Ej).block_until_ready()
    reference = results["binary"]
    scale = np.abs(reference).max()
    for name, y in results.items():
        if not np.allclose(y, reference, rtol=1e-8, atol=1e-8 * scale):
            raise RuntimeError(f"{name} does not compute d(A^n)[E] for m={m}, n={n}")
    times = measure(statements, None, config.repeat, config.min_time)
    kind = "Hermitian" if hermitian else "general"
    row = new_row(
        COLUMNS, A=kind, m=m, n=n, auto_method=ops["auto"].method, case=f"{kind} A, m = {m}",
        **{f"{name}_s": times.get(name) for name in methods},
        explicit_build_s=build, explicit_matvec_s=times.get("explicit"),
        jax_s=times.get("jax"),
    )
    best = min(times[name] for name in methods if name != "auto" and name in times)
    row["auto/best"] = times["auto"] / best
    return add_ratios(row, COLUMNS), skipped


def _cell(row):
    return f"{row['A']} m={row['m']} n={row['n']}"


def _check(rows, key, target, compare, bound):
    return check(rows, key, target, compare, bound, _cell)


def _checks(rows):
    general = [row for row in rows if row["A"] == "general"]
    return [
        _check(rows, "auto/best", "auto at most 1.10x the best method, every cell",
               operator.le, 1.10),
        _check([r for r in general if r["n"] == 1024], "horner/binary",
               "n = 1024: binary >= 20x faster than horner", operator.ge, 20.0),
        _check(general, "jax/auto", "matkron (auto) faster than JAX's jvp, every cell",
               operator.gt, 1.0),
        _check([r for r in general if r["m"] == 4], "jax/auto",
               "m = 4: matkron (auto) >= 3x faster than JAX's jvp", operator.ge, 3.0),
        _check([r for r in rows if r["A"] == "Hermitian" and r["n"] == 1024 and r["m"] == 256],
               "binary/eig", "Hermitian A, n = 1024, m = 256: eig >= 4x faster than binary",
               operator.ge, 4.0),
    ]


def run(config):
    """Run the power suite with `config` (see :class:`~.suite.Config`); its outcome."""
    jax_mods = _jax()
    rows, skipped = [], []
    cells = [(m, n, h) for h in (False, True) for m in ORDERS for n in POWERS[config.quick]]
    gemms = {}
    with Progress(len(cells)) as progress:
        for m, n, hermitian in cells:
            progress.step(f"{'Hermitian' if hermitian else 'general'} A, m={m}, n={n}")
            row, skips = _measure_cell(m, n, hermitian, config, jax_mods)
            if not hermitian:
                if m not in gemms:
                    gemms[m] = _gemm_times(m, config, jax_mods)
                row["dgemm_s"] = gemms[m]["dgemm"]
                row["xla_dot_s"] = gemms[m].get("xla_dot")
            rows.append(row)
            skipped.extend(skips)
    notes = list(LEGEND)
    if jax_mods is None:
        notes.append("skipped      JAX: not installed (pip install jax jaxlib); "
                     "the JAX targets are not measured")
    else:
        notes.append(f"JAX          {jax_mods[0].__version__}, "
                     f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")
    if skipped:
        notes.extend(f"skipped      {reason}" for reason in skipped)
    return Outcome(COLUMNS, rows, notes, _checks(rows), PLOT)


PLOT = PlotSpec(
    x="n",
    panel="case",
    series=("naive_s", "horner_s", "binary_s", "eig_s", "dense_s", "auto_s",
            "explicit_matvec_s", "jax_s"),
    title="J.matvec(vec(E)) for the Jacobian of A ↦ Aⁿ (float64): median time per call",
)

SUITE = Suite(
    name="power",
    summary="power_jacobian matvec by method against the explicit matrix and JAX's jvp",
    plan=plan,
    run=run,
    one_cpu=True,
)
