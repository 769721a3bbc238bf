"""What the machine can do: its measured single-core FMA peak, and flop rates against it.

The peak comes from a probe in C (``csrc/fma_peak.c``, through ``matkron._machine_cy``):
independent chains of float64 fused multiply-adds on the widest vectors the CPU runs
(AVX-512F, else AVX2+FMA, else scalar code), timed here on one CPU, the best of a few
short runs. It is what one core can do at all, the bound that "% of peak" refers to.
"""

import contextlib
import functools
import math
import os
import time
from dataclasses import dataclass

__all__ = ["Peak", "fma_peak", "percent_of_peak", "plan_flops"]

# The probe: RUNS runs of about RUN_S seconds each (about 50 ms in all), the best kept.
RUNS = 8
RUN_S = 0.006
# Rounds of the first (calibrating) run.
CALIBRATION_ROUNDS = 20_000


@dataclass(frozen=True)
class Peak:
    """The measured single-core float64 FMA peak.

    Attributes
    ----------
    gflops : float
        GFLOP/s of the best run, an FMA counted as 2 flops per lane.
    isa : str
        The variant that ran: "AVX-512F (zmm)", "AVX2+FMA (ymm)" or "scalar".
    chains : int
        The independent accumulator chains (vector registers) it keeps busy.
    runs : int
        The runs of which the best is kept.
    run_s : float
        The length of each run in seconds.
    cpu : int or None
        The CPU the probe was pinned to (None where the platform cannot pin).
    """

    gflops: float
    isa: str
    chains: int
    runs: int
    run_s: float
    cpu: int | None

    def describe(self):
        """One line for the report header."""
        where = "one core" if self.cpu is None else f"CPU {self.cpu}"
        return (
            f"FMA peak   {self.gflops:.1f} GFLOP/s float64 on {where}, measured: "
            f"{self.isa}, {self.chains} independent FMA chains, an FMA = 2 flops; best of "
            f"{self.runs} runs of {self.run_s * 1e3:.0f} ms (csrc/fma_peak.c)"
        )


@contextlib.contextmanager
def _on_one_cpu():
    """Run the block on the lowest CPU the process may use; yield it (None: not pinned)."""
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    previous = os.sched_getaffinity(0)
    cpu = min(previous)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, previous)


@functools.cache
def fma_peak():
    """The measured single-core float64 FMA peak, a :class:`Peak`; None without the probe.

    Measured on the first call (about 50 ms, the process pinned to one CPU meanwhile) and
    kept for the process. None when this matkron build has no ``_machine_cy`` module.

    Examples
    --------
    >>> peak = fma_peak()
    >>> peak is None or peak.gflops > 0
    True
    """
    try:
        from matkron import _machine_cy
    except ImportError:
        return None
    isa = _machine_cy.fma_best_isa()
    with _on_one_cpu() as cpu:
        start = time.perf_counter()
        _machine_cy.fma_run(isa, CALIBRATION_ROUNDS)
        seconds = max(time.perf_counter() - start, 1e-7)
        rounds = max(1, math.ceil(CALIBRATION_ROUNDS * RUN_S / seconds))
        best = 0.0
        for _ in range(RUNS):
            start = time.perf_counter()
            flops = _machine_cy.fma_run(isa, rounds)
            best = max(best, flops / (time.perf_counter() - start))
    return Peak(best / 1e9, _machine_cy.ISA_NAMES[isa], _machine_cy.CHAINS, RUNS, RUN_S, cpu)


def percent_of_peak(gflops):
    """`gflops` as a percentage of the single-core peak; None when either is unknown."""
    peak = fma_peak()
    if gflops is None or peak is None:
        return None
    return 100.0 * gflops / peak.gflops


def plan_flops(mats, x):
    """The flops of matkron's plan for (F1 ⊗ … ⊗ Fk) x: 2 × the multiply-adds of its GEMMs.

    The plan applies the factors one at a time in its order (``_kron_cy.kron_plan`` where
    the compiled module exposes it, else :func:`matkron.kron_order`, the same order by
    construction); factor F_i (p_i × q_i) applied to a tensor of S entries is a GEMM of
    p_i × q_i × S/q_i multiply-adds, and the tensor then holds S p_i / q_i entries:

        flops = 2 Σ_t S_t p_{i_t},   S_0 = m Π q_i,   S_{t+1} = S_t p_{i_t} / q_{i_t}

    with m the columns of x. Step variants (orientation, one column at a time) change the
    memory traffic, not this count.

    Examples
    --------
    >>> import numpy as np
    >>> plan_flops([np.ones((4, 4)), np.ones((4, 4))], np.ones(16))  # 2 × 2 × 16 × 4
    256
    """
    import numpy as np

    import matkron

    shapes = [np.shape(f) for f in mats]
    m = 1 if np.ndim(x) == 1 else np.shape(x)[1]
    order = None
    kron_plan = getattr(_kron_cy_module(), "kron_plan", None)
    if kron_plan is not None:
        with contextlib.suppress(Exception):  # its signature may change with the planner
            order = tuple(kron_plan(tuple(mats), x)[0])
    if order is None or sorted(order) != list(range(len(shapes))):
        order = matkron.kron_order(shapes, m)[0]
    size = m * math.prod(q for _, q in shapes)
    multiply_adds = 0
    for i in order:
        p, q = shapes[i]
        multiply_adds += size * p
        size = size // q * p
    return 2 * multiply_adds


def _kron_cy_module():
    """matkron's compiled Kronecker module, or None (it may be split or renamed)."""
    try:
        from matkron import _kron_cy
    except ImportError:
        return None
    return _kron_cy
