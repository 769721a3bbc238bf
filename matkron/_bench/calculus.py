"""The calculus suite: Fréchet derivatives of matrix functions and condition numbers.

Sections, one table, float64 operands, one thread (the run is pinned to one CPU):

- cond: ``matkron.cond("expm", A)`` (Lanczos on the Fréchet operator, rtol 1e-3) against
  ``scipy.linalg.expm_cond`` (which forms the m²×m² Kronecker matrix), m in
  :data:`COND_ORDERS`; SciPy is skipped where its time, extrapolated as m⁵ from the
  previous order, would exceed :data:`SCIPY_COND_BUDGET_S`; the two must agree to 1e-3.
- expm: ``matkron.frechet("expm", A, E)`` for one direction and for a stack of 16,
  against as many ``scipy.linalg.expm_frechet(A, E, compute_expm=False)`` calls and
  against ``jax.jvp`` of ``jax.scipy.linalg.expm`` (jit, x64; ``jax.vmap`` over the 16
  tangents), when JAX is installed.
- sqrtm: ``matkron.frechet("sqrtm", A, E)`` for 16 directions against 16
  ``scipy.linalg.solve_sylvester(X, X, E)`` calls with X = sqrtm(A) precomputed.
- power: ``matkron.frechet_power(A, E, n)`` one shot, and ``power_jacobian(A, n) @ vec(E)``
  (build plus one product), against ``jax.jvp`` of ``jnp.linalg.matrix_power``.
- jacobian_chain: not yet in this suite (see the marked place in :func:`run`).

Every result is checked against its baseline before timing.
"""

import operator
import os
import time

import numpy as np
import scipy.linalg

import matkron

from . import jacobian_chain as chain_section
from .power import _jax
from .report import Progress, format_table
from .suite import Check, Column, Outcome, PlotSpec, Suite
from .timing import measure_slow

__all__ = ["SUITE", "operands"]

COND_ORDERS = {False: (16, 32, 48, 64), True: (8, 16)}
EXPM_ORDERS = {False: (32, 128, 512), True: (16, 32)}
DIRECTIONS = {False: 16, True: 4}
SQRTM_ORDER = {False: 256, True: 32}
POWER_ORDERS = {False: (4, 32, 256), True: (4, 32)}
POWER_EXPONENTS = {False: (2, 3, 8, 32, 128, 1024), True: (2, 8, 128)}
# SciPy's expm_cond is skipped where its extrapolated time exceeds this (seconds).
SCIPY_COND_BUDGET_S = {False: 30.0, True: 2.0}
# Cells with a call longer than this are timed by single calls, interleaved (at most
# `repeat` rounds, the rounds after the first within the budget).
SLOW_CALL_S = 0.2
SLOW_BUDGET_S = {False: 60.0, True: 2.0}
COND_RTOL = 1e-3

COLUMNS = [
    Column("section", "section", "text"),
    Column("m", "m", "int"),
    Column("k", "k|n", "int"),
    Column("matkron_s", "matkron", "time"),
    Column("matkron_alt_s", "mk alt", "time"),
    Column("scipy_s", "SciPy", "time"),
    Column("jax_s", "JAX", "time"),
    Column("scipy/matkron", "SciPy/mk", "ratio"),
    Column("jax/matkron", "JAX/mk", "ratio"),
    Column("jax/alt", "JAX/alt", "ratio"),
    Column("rel_diff", "rel diff", "ratio"),
]

LEGEND = [
    "legend       cond: matkron = matkron.cond('expm', A), SciPy = scipy.linalg.expm_cond(A); "
    "rel diff = |mk - SciPy| / SciPy",
    "             expm: matkron = matkron.frechet('expm', A, E) with E of shape (m, m) "
    "(k = 1) or (k, m, m); SciPy = k calls of scipy.linalg.expm_frechet(A, E_j, "
    "compute_expm=False); JAX = jit(jvp(jax.scipy.linalg.expm)), vmapped over the k "
    "tangents",
    "             sqrtm: matkron = matkron.frechet('sqrtm', A, E) (k, m, m), Schur form "
    "included; SciPy = k calls of scipy.linalg.solve_sylvester(X, X, E_j), X = sqrtm(A) "
    "precomputed",
    "             power (k|n = n): matkron = matkron.frechet_power(A, E, n); mk alt = "
    "matkron.power_jacobian(A, n) @ vec(E), build included; JAX = "
    "jit(jvp(jnp.linalg.matrix_power(·, n)))",
    "             ratios > 1: matkron is faster",
]


def operands(m, k=None, seed=0, shift=0.0):
    """A (m×m, ‖A‖₂ about 1 plus `shift` on the diagonal) and E (m×m, or k×m×m)."""
    rng = np.random.default_rng(seed + m)
    A = rng.standard_normal((m, m)) / np.sqrt(m) + shift * np.eye(m)
    E = rng.standard_normal((m, m) if k is None else (k, m, m))
    return A, E


def _close(got, want, rtol=1e-8, what=""):
    got, want = np.asarray(got), np.asarray(want)
    if not np.abs(got - want).max() <= rtol * np.abs(want).max():
        raise RuntimeError(f"matkron does not compute {what}: relative difference "
                           f"{np.abs(got - want).max() / np.abs(want).max():.3g}")


def _time(statements, config):
    """Median times of the statements, interleaved (:func:`~.timing.measure_slow`: calls
    over SLOW_CALL_S by single calls within the budget)."""
    times, _, _ = measure_slow(statements, config.repeat, config.min_time, SLOW_CALL_S,
                               SLOW_BUDGET_S[config.quick])
    return times


def _row(section, m, k, **values):
    row = {column.key: None for column in COLUMNS}
    row.update(section=section, m=m, k=k, case=section, **values)
    for num, den, key in (("scipy_s", "matkron_s", "scipy/matkron"),
                          ("jax_s", "matkron_s", "jax/matkron"),
                          ("jax_s", "matkron_alt_s", "jax/alt")):
        if row[num] is not None and row[den] is not None:
            row[key] = row[num] / row[den]
    return row


def _cond_rows(config, progress):
    rows, notes = [], []
    previous = None  # (m, SciPy time)
    for m in COND_ORDERS[config.quick]:
        progress.step(f"cond expm m={m}")
        A, _ = operands(m)
        ours = matkron.cond("expm", A, rtol=COND_RTOL)
        statements = {"matkron": lambda: matkron.cond("expm", A, rtol=COND_RTOL)}
        times = _time(statements, config)
        scipy_s = diff = None
        predicted = None if previous is None else previous[1] * (m / previous[0]) ** 5
        if predicted is None or predicted <= SCIPY_COND_BUDGET_S[config.quick]:
            start = time.perf_counter()
            want = scipy.linalg.expm_cond(A)
            scipy_s = time.perf_counter() - start
            previous = (m, scipy_s)
            diff = abs(ours - want) / want
        else:
            notes.append(f"skipped      scipy.linalg.expm_cond at m={m}: about "
                         f"{predicted:.0f} s extrapolated (m⁵) from m={previous[0]}, over "
                         f"the {SCIPY_COND_BUDGET_S[config.quick]:g} s budget")
        rows.append(_row("cond expm", m, None, matkron_s=times["matkron"], scipy_s=scipy_s,
                         rel_diff=diff))
    return rows, notes


def _jax_expm(jax_mods):
    jax, jnp = jax_mods
    expm = jax.scipy.linalg.expm
    one = jax.jit(lambda A, E: jax.jvp(expm, (A,), (E,))[1])
    many = jax.jit(lambda A, Es: jax.vmap(lambda E: jax.jvp(expm, (A,), (E,))[1])(Es))
    return jnp, one, many


def _expm_rows(config, progress, jax_mods):
    rows = []
    k_many = DIRECTIONS[config.quick]
    for m in EXPM_ORDERS[config.quick]:
        A, Es = operands(m, k_many, seed=1)
        for k in (1, k_many):
            progress.step(f"frechet expm m={m} k={k}")
            E = Es[0] if k == 1 else Es
            want = np.array([scipy.linalg.expm_frechet(A, e, compute_expm=False)
                             for e in Es[:k]])
            got = matkron.frechet("expm", A, E)
            _close(got.reshape(want.shape), want, what=f"L_exp at m={m}, k={k}")

            def ours(E=E):
                return matkron.frechet("expm", A, E)

            def scipy_calls(k=k):
                for e in Es[:k]:
                    scipy.linalg.expm_frechet(A, e, compute_expm=False)

            statements = {"matkron": ours, "scipy": scipy_calls}
            if jax_mods is not None:
                jnp, one, many = _jax_expm(jax_mods)
                Aj, Ej = jnp.asarray(A), jnp.asarray(E)
                f = one if k == 1 else many
                _close(np.asarray(f(Aj, Ej)).reshape(want.shape), want,
                       what=f"(JAX) L_exp at m={m}, k={k}")
                statements["jax"] = lambda f=f, Aj=Aj, Ej=Ej: f(Aj, Ej).block_until_ready()
            times = _time(statements, config)
            rows.append(_row("frechet expm", m, k, matkron_s=times["matkron"],
                             scipy_s=times["scipy"], jax_s=times.get("jax")))
    return rows


def _sqrtm_rows(config, progress):
    m, k = SQRTM_ORDER[config.quick], DIRECTIONS[config.quick]
    progress.step(f"frechet sqrtm m={m} k={k}")
    A, Es = operands(m, k, seed=2, shift=2.0)
    X = scipy.linalg.sqrtm(A)
    got = matkron.frechet("sqrtm", A, Es)
    want = np.array([scipy.linalg.solve_sylvester(X, X, e) for e in Es])
    _close(got, want, what=f"L_sqrt at m={m}")

    def scipy_calls():
        for e in Es:
            scipy.linalg.solve_sylvester(X, X, e)

    statements = {"matkron": lambda: matkron.frechet("sqrtm", A, Es), "scipy": scipy_calls}
    times = _time(statements, config)
    return [_row("frechet sqrtm", m, k, matkron_s=times["matkron"], scipy_s=times["scipy"])]


def _power_rows(config, progress, jax_mods):
    rows = []
    for m in POWER_ORDERS[config.quick]:
        rng = np.random.default_rng(m)
        A = rng.standard_normal((m, m))
        A /= np.abs(np.linalg.eigvals(A)).max()  # spectral radius 1: no overflow
        E = rng.standard_normal((m, m))
        x = E.ravel(order="F").copy()
        for n in POWER_EXPONENTS[config.quick]:
            progress.step(f"frechet_power m={m} n={n}")
            M = np.block([[A, E], [np.zeros((m, m)), A]])
            want = np.linalg.matrix_power(M, n)[:m, m:]
            _close(matkron.frechet_power(A, E, n), want, what=f"d(A^{n}) at m={m}")
            _close((matkron.power_jacobian(A, n) @ x).reshape(m, m, order="F"), want,
                   what=f"power_jacobian at m={m}, n={n}")
            statements = {
                "matkron": lambda n=n: matkron.frechet_power(A, E, n),
                "alt": lambda n=n: matkron.power_jacobian(A, n) @ x,
            }
            if jax_mods is not None:
                jax, jnp = jax_mods
                f = jax.jit(lambda A, E, n=n: jax.jvp(
                    lambda A: jnp.linalg.matrix_power(A, n), (A,), (E,))[1])
                Aj, Ej = jnp.asarray(A), jnp.asarray(E)
                _close(np.asarray(f(Aj, Ej)), want, what=f"(JAX) d(A^{n}) at m={m}")
                statements["jax"] = lambda f=f, Aj=Aj, Ej=Ej: f(Aj, Ej).block_until_ready()
            times = _time(statements, config)
            rows.append(_row("frechet_power", m, n, matkron_s=times["matkron"],
                             matkron_alt_s=times["alt"], jax_s=times.get("jax")))
    return rows


def _cell(row):
    return f"{row['section']} m={row['m']}" + ("" if row["k"] is None else f" k|n={row['k']}")


def _check(rows, key, target, bound, compare=operator.ge):
    measured = [row for row in rows if row.get(key) is not None]
    misses = [row for row in measured if not compare(row[key], bound)]
    if not measured:
        return Check(False, target, "not measured")
    worst = (min if compare in (operator.ge, operator.gt) else max)(measured,
                                                                    key=lambda r: r[key])
    detail = f"worst {worst[key]:.3g} at {_cell(worst)}"
    if misses:
        detail += "; missed at " + ", ".join(f"{_cell(r)} ({r[key]:.3g})" for r in misses)
    return Check(not misses, target, detail)


def _checks(rows, quick):
    def section(name, **where):
        return [r for r in rows if r["section"] == name
                and all(r[key] == value for key, value in where.items())]

    cond_m = 48 if not quick else COND_ORDERS[True][-1]
    k_many = DIRECTIONS[quick]
    return [
        _check(section("cond expm", m=cond_m), "scipy/matkron",
               f"cond('expm') >= 50x faster than scipy.linalg.expm_cond at m = {cond_m}", 50),
        _check(section("cond expm"), "rel_diff",
               f"cond('expm') agrees with expm_cond to {COND_RTOL:g}", COND_RTOL, operator.le),
        _check(section("frechet expm", k=1), "scipy/matkron",
               "frechet('expm') one direction at most SciPy's time", 1.0),
        _check(section("frechet expm", k=k_many), "scipy/matkron",
               f"frechet('expm') {k_many} directions >= 3x faster than SciPy", 3.0),
        _check(section("frechet expm"), "jax/matkron",
               "frechet('expm') ahead of JAX's jvp, every cell", 1.0, operator.gt),
        _check(section("frechet sqrtm"), "scipy/matkron",
               f"frechet('sqrtm') {k_many} directions >= 5x faster than solve_sylvester", 5.0),
        _check(section("frechet_power"), "jax/matkron",
               "frechet_power ahead of JAX's jvp, every cell", 1.0, operator.gt),
        _check(section("frechet_power"), "jax/alt",
               "power_jacobian build + one product ahead of JAX's jvp, every cell", 1.0,
               operator.gt),
    ]


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    q = config.quick
    return [
        "calculus suite: Fréchet derivatives and condition numbers, float64, one thread",
        f"  cond('expm') vs scipy.linalg.expm_cond: m in {COND_ORDERS[q]}",
        f"  frechet('expm') vs expm_frechet and JAX: m in {EXPM_ORDERS[q]}, 1 and "
        f"{DIRECTIONS[q]} directions",
        f"  frechet('sqrtm') vs solve_sylvester: m = {SQRTM_ORDER[q]}, {DIRECTIONS[q]} "
        "directions",
        f"  frechet_power and power_jacobian vs JAX: m in {POWER_ORDERS[q]}, n in "
        f"{POWER_EXPONENTS[q]}",
        f"  median of {config.repeat} samples (calls over {SLOW_CALL_S:g} s: single calls "
        f"interleaved, within {SLOW_BUDGET_S[q]:g} s per cell); the run is pinned to one CPU",
    ]


def run(config):
    """Run the calculus suite with `config`; its outcome."""
    jax_mods = _jax()
    q = config.quick
    steps = (len(COND_ORDERS[q]) + 2 * len(EXPM_ORDERS[q]) + 1
             + len(POWER_ORDERS[q]) * len(POWER_EXPONENTS[q]))
    rows, notes = [], list(LEGEND)
    with Progress(steps + 1) as progress:
        cond_rows, cond_notes = _cond_rows(config, progress)
        rows += cond_rows
        notes += cond_notes
        rows += _expm_rows(config, progress, jax_mods)
        rows += _sqrtm_rows(config, progress)
        rows += _power_rows(config, progress, jax_mods)
        progress.step("jacobian_chain: optimal, forward and reverse accumulation")
        chain_rows = chain_section.run(q, config.repeat, config.min_time)
    # The Jacobian chains have columns of their own: their table goes under the notes.
    notes += ["", "jacobian_chain(ops).todense(): the optimal plan against forward-only and "
              "reverse-only accumulation", "",
              *format_table(chain_section.COLUMNS, chain_rows).splitlines(), "",
              *chain_section.notes(chain_rows)]
    if jax_mods is None:
        notes.append("skipped      JAX: not installed (pip install jax); the JAX targets "
                     "are not measured")
    else:
        notes.append(f"JAX          {jax_mods[0].__version__}, "
                     f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")
    checks = _checks(rows, q) + [chain_section.check(chain_rows)]
    return Outcome(COLUMNS, rows, notes, checks, PLOT)


PLOT = PlotSpec(
    x="m",
    panel="section",
    series=("matkron_s", "matkron_alt_s", "scipy_s", "jax_s"),
    title="Fréchet derivatives and condition numbers (float64): median time per call",
)

SUITE = Suite(
    name="calculus",
    summary="frechet, cond and frechet_power against SciPy and JAX; jacobian_chain's plans",
    plan=plan,
    run=run,
    one_cpu=True,
)
