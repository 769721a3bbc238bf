"""The planner's mode and its wisdom: plans measured on this machine, saved and loaded.

As FFTW's planner (``FFTW_ESTIMATE`` / ``FFTW_MEASURE``, wisdom export and import), after
which it is modelled. The plans and the measurements live in C (matkron._kron_plan_cy);
this module chooses the mode, and writes and reads wisdom as JSON with a header that
names the machine and the BLAS the plans were measured on.
"""

import contextlib
import functools
import json
import os
import platform
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import threadpoolctl

from . import _kron_plan_cy, _threads_cy
from ._validation import check_choice
from ._version import __version__

__all__ = [
    "export_wisdom",
    "forget_wisdom",
    "get_planner",
    "import_wisdom",
    "planner",
    "set_planner",
]

PlannerMode = Literal["estimate", "measure"]
_MODES = ("estimate", "measure")
_FORMAT = "matkron-wisdom"
_FORMAT_VERSION = 1


def _checked_mode(mode: object) -> bool:
    return check_choice(mode, "mode", _MODES) == "measure"


def set_planner(mode: PlannerMode) -> None:
    """Choose how matkron plans the Kronecker products it runs, for the whole process.

    Parameters
    ----------
    mode : {"measure", "estimate"}
        ``"measure"`` (the default): a product's plan is first estimated by a cost model;
        when the same product (same factor shapes, layouts of ``x`` and ``out``, number of
        columns and dtype) repeats, the next calls each run one of a few admissible plans
        and time it, and the fastest is kept. ``"estimate"``: the cost model's plan is
        kept; nothing is timed.

    Raises
    ------
    ValueError
        If `mode` is neither.

    See Also
    --------
    get_planner, planner, export_wisdom

    Notes
    -----
    Every call computes the full product, whichever plan it runs, so results are equal
    to rounding during a measurement and after it. The candidates are the estimated
    plan, for a new 2-D result the best plan writing it in the other memory order, and
    alternatives up to six in all, by estimated cost: the other variant of a step
    (the factor's mode kept in place or moved to the front or back), another order of
    factors with equal flops, reading ``x`` as it is or copying it into the other order
    first, the columns one at a time or all at once, and, where a registered own step
    kernel runs here, BLAS or that kernel at a step. Each candidate is timed twice (the
    minimum counts), one candidate per call, so a product is measured after at most 13
    calls. Products estimated at less than about 20 microseconds are not measured (timing
    noise would dominate); they keep the estimate, as in ``"estimate"`` mode.

    Plans already measured (or loaded with `import_wisdom`) are used in both modes, as
    FFTW uses its wisdom; `forget_wisdom` drops them.

    Examples
    --------
    >>> import matkron
    >>> matkron.set_planner("estimate")
    >>> matkron.get_planner()
    'estimate'
    >>> matkron.set_planner("measure")
    """
    _kron_plan_cy.set_measuring(_checked_mode(mode))


def get_planner() -> PlannerMode:
    """Return the planner's mode, ``"measure"`` or ``"estimate"`` (see `set_planner`).

    Returns
    -------
    str
        The mode set by `set_planner` or `planner`; ``"measure"`` by default.

    See Also
    --------
    set_planner, planner

    Examples
    --------
    >>> import matkron
    >>> matkron.get_planner()
    'measure'
    """
    return "measure" if _kron_plan_cy.get_measuring() else "estimate"


@contextlib.contextmanager
def planner(mode: PlannerMode) -> Iterator[None]:
    """Run a block with the planner in `mode`, restoring the previous mode after it.

    Parameters
    ----------
    mode : {"measure", "estimate"}
        See `set_planner`.

    Raises
    ------
    ValueError
        If `mode` is neither (before the block runs).

    See Also
    --------
    set_planner, get_planner

    Notes
    -----
    The mode is process-wide: other threads see it while the block runs.

    Examples
    --------
    >>> import matkron
    >>> with matkron.planner("estimate"):
    ...     matkron.get_planner()
    'estimate'
    >>> matkron.get_planner()
    'measure'
    """
    measure = _checked_mode(mode)
    previous = _kron_plan_cy.get_measuring()
    _kron_plan_cy.set_measuring(measure)
    try:
        yield
    finally:
        _kron_plan_cy.set_measuring(previous)


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what :mod:`platform` reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def _machine() -> dict[str, str]:
    """What measured plans depend on: the CPU, the BLAS matkron calls (SciPy's) and the
    kernel it runs (OpenBLAS's architecture, as threadpoolctl reports it), matkron."""
    library = _threads_cy.blas_info()["library"]
    blas = {"version": "", "architecture": ""}
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") == "blas" and (
            info.get("filepath") == library or (not library and "scipy" in info["filepath"])
        ):
            blas = info
            library = library or info["filepath"]
            break
    return {
        "cpu": _cpu_model(),
        "blas": os.path.basename(library) if library else "unknown BLAS",
        "blas_version": str(blas.get("version") or ""),
        "blas_kernel": str(blas.get("architecture") or ""),
        "matkron": __version__,
    }


def export_wisdom() -> str:
    """Return the plans measured so far, with the machine they were measured on, as JSON.

    Returns
    -------
    str
        A JSON object: ``"format"`` and ``"version"``; ``"machine"``: the CPU model, the
        BLAS library matkron calls, its version and the kernel it runs (OpenBLAS's
        architecture, such as ``"Haswell"`` or ``"SkylakeX"``), and matkron's version;
        ``"plans"``: one entry per measured product (its key: dtype, columns, layout
        flags, factor shapes; and the plan kept).

    See Also
    --------
    import_wisdom, forget_wisdom, set_planner

    Notes
    -----
    Only measured plans are exported (estimates cost nothing to recompute). The plan cache
    holds 256 products in sets of four; measured plans are the last a set evicts.

    Examples
    --------
    >>> import json
    >>> import matkron
    >>> wisdom = json.loads(matkron.export_wisdom())
    >>> sorted(wisdom["machine"])
    ['blas', 'blas_kernel', 'blas_version', 'cpu', 'matkron']
    """
    plans = [json.dumps(entry) for entry in _kron_plan_cy.wisdom_entries()]
    listing = "".join(f"\n  {plan}," for plan in plans).rstrip(",")
    return (
        f'{{"format": "{_FORMAT}", "version": {_FORMAT_VERSION},\n'
        f' "machine": {json.dumps(_machine())},\n'
        f' "plans": [{listing + chr(10) + " " if plans else ""}]}}\n'
    )


def import_wisdom(wisdom: str) -> int:
    """Load plans saved by `export_wisdom`, for products this process will run.

    Parameters
    ----------
    wisdom : str
        The JSON text `export_wisdom` returned (in this process or another).

    Returns
    -------
    int
        The number of plans loaded. 0 when the wisdom was measured on another machine,
        BLAS, BLAS kernel or matkron version (with a ``UserWarning``).

    Raises
    ------
    ValueError
        If `wisdom` is not such JSON: the message names what is wrong. Nothing is loaded
        then.

    See Also
    --------
    export_wisdom, forget_wisdom

    Notes
    -----
    No plan is trusted as written: each is rebuilt by the planner with its choices
    pinned, and loaded only if the planner produces exactly that plan for its product
    (else it is skipped with a ``UserWarning``). Loaded plans count as measured in both
    planner modes, replacing what the cache holds for their products.

    Examples
    --------
    >>> import matkron
    >>> saved = matkron.export_wisdom()
    >>> matkron.import_wisdom(saved) >= 0
    True
    """
    if not isinstance(wisdom, str):
        raise TypeError(f"wisdom must be a str from export_wisdom; got {type(wisdom).__name__}")
    try:
        data = json.loads(wisdom)
    except json.JSONDecodeError as e:
        raise ValueError(f"wisdom is not JSON: {e}") from None
    except RecursionError:
        raise ValueError("wisdom is not matkron wisdom: its JSON nests too deeply") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f'wisdom is not matkron wisdom: no "format": {_FORMAT!r} field')
    if data.get("version") != _FORMAT_VERSION:
        raise ValueError(
            f"wisdom has format version {data.get('version')!r}; this matkron reads "
            f"version {_FORMAT_VERSION}"
        )
    machine, plans = data.get("machine"), data.get("plans")
    if not isinstance(machine, dict):
        raise ValueError('wisdom has no "machine" object')  # noqa: TRY004 (malformed content)
    if not isinstance(plans, list) or not all(isinstance(p, dict) for p in plans):
        raise ValueError('wisdom\'s "plans" must be a list of objects')
    here = _machine()
    differ = [key for key in here if machine.get(key) != here[key]]
    if differ:
        warnings.warn(
            "wisdom ignored: it was measured on another machine or library ("
            + "; ".join(f"{key} {machine.get(key)!r}, here {here[key]!r}" for key in differ)
            + ")",
            UserWarning,
            stacklevel=2,
        )
        return 0
    admissible = []
    for i, entry in enumerate(plans):
        try:
            admissible.append(_kron_plan_cy.load_wisdom_entry(entry, False))
        except ValueError as e:
            raise ValueError(f"wisdom plan {i}: {e}") from None
    loaded = sum(
        _kron_plan_cy.load_wisdom_entry(entry) for entry, ok in zip(plans, admissible) if ok
    )
    if loaded < len(plans):
        warnings.warn(
            f"{len(plans) - loaded} of the {len(plans)} plans of the wisdom were not loaded: "
            "the planner does not make them for their products here",
            UserWarning,
            stacklevel=2,
        )
    return int(loaded)


def forget_wisdom() -> None:
    """Forget every plan: measured, loaded and estimated; measurements going on stop.

    The next call of each product is planned afresh, as the first call of a process.

    See Also
    --------
    export_wisdom, import_wisdom

    Examples
    --------
    >>> import json
    >>> import matkron
    >>> matkron.forget_wisdom()
    >>> json.loads(matkron.export_wisdom())["plans"]
    []
    """
    _kron_plan_cy.forget()


def _planner_state() -> dict[str, Any]:
    """For tests: the mode, and how many cached products are in each state."""
    return {"mode": get_planner(), **_kron_plan_cy._planner_stats()}
