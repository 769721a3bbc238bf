"""What a benchmark suite is: its run configuration, and the outcome it hands back.

A suite is a module of this package exporting ``SUITE``, a :class:`Suite`; the command line
(:mod:`matkron._bench.cli`) names it in its registry, runs it, and prints, saves and plots
its :class:`Outcome` the same way for every suite.

A suite's parts, shared by every suite:

- columns: a list of :class:`Column`; a ratio of two time columns declares them with
  ``ratio_of``;
- cells: each method a callable without arguments (``functools.partial``, a closure),
  checked against an independent result, then timed by :func:`~.timing.measure`
  (interleaved medians) or :func:`~.timing.measure_slow` (calls that may take seconds);
- rows: :func:`~.rows.new_row` and :func:`~.rows.add_ratios`;
- targets: :func:`~.rows.check` over the rows, printed only with ``--check``;
- threads: pinned by the command line (:func:`~.pinning.pinned`); a suite with peers that
  run thread pools of their own sets ``Suite(one_cpu=True)``;
- a ``--quick`` sweep (``config.quick``) under a minute, and a test that runs the suite and
  the command line at tiny sizes (``tests/test_bench_*.py``).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Check", "Column", "Config", "Outcome", "PlotSpec", "Suite"]


@dataclass(frozen=True)
class Config:
    """How a suite is asked to run.

    Attributes
    ----------
    quick : bool
        Run a shorter sweep.
    repeat : int
        Timed samples per measurement, of which the median is reported.
    min_time : float
        The shortest sample in seconds (the number of calls per sample is calibrated).
    mem_cap : int
        The largest dense matrix, in bytes, that a naive baseline may build.
    """

    quick: bool
    repeat: int
    min_time: float
    mem_cap: int


@dataclass(frozen=True)
class Column:
    """One column of the results: a row key, its table header and how to format it.

    Attributes
    ----------
    key : str
        The row key, also the CSV header.
    header : str
        The table header.
    kind : {"int", "text", "time", "ratio", "bytes"}
        How values print: integers, text, seconds, dimensionless ratios or byte counts.
    ratio_of : tuple of (str, str), optional
        For a ratio of two time columns: their keys, numerator first;
        :func:`~.rows.add_ratios` fills it in. Empty for any other column (a ratio the
        suite computes itself, such as a rate).
    """

    key: str
    header: str
    kind: str
    ratio_of: tuple = ()


@dataclass(frozen=True)
class Check:
    """A performance target and whether the run met it.

    Attributes
    ----------
    passed : bool or None
        Whether every measured case met the target; None when it could not be measured
        (a feature this matkron lacks: printed "n/a").
    target : str
        The target, in words.
    detail : str
        The deciding numbers (the worst case, the cases that missed, what was not run).
    """

    passed: bool
    target: str
    detail: str


@dataclass(frozen=True)
class PlotSpec:
    """A plot of times: one panel per value of `panel`, one line per series.

    Attributes
    ----------
    x : str
        The row key on the (logarithmic) x axis.
    panel : str
        The row key whose values each get a panel, in order of appearance.
    series : tuple of str
        The keys of the time columns drawn, labelled with their table headers.
    title : str
        The figure title.
    dashed : tuple of str, optional
        The series drawn as dashed lines, such as a floor.
    """

    x: str
    panel: str
    series: tuple
    title: str
    dashed: tuple = ()


@dataclass
class Outcome:
    """What a suite run hands back to the command line.

    Attributes
    ----------
    columns : list of Column
        The columns of the table and the CSV, in order.
    rows : list of dict
        One dict per case, keyed by column key (None where not measured); a row may carry
        further keys, such as a plot's panel label.
    notes : list of str
        Lines printed under the table: legend, skipped cases.
    checks : list of Check
        The targets, printed as PASS/MISS at the end.
    plot : PlotSpec or None
        What to plot, if anything.
    """

    columns: list
    rows: list
    notes: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    plot: PlotSpec | None = None


@dataclass(frozen=True)
class Suite:
    """A benchmark suite.

    Attributes
    ----------
    name : str
        The name on the command line (``python -m matkron bench NAME``).
    summary : str
        One line for ``--help``.
    plan : callable
        ``plan(config) -> list of str``: what a run with `config` measures, printed first.
    run : callable
        ``run(config) -> Outcome``: runs the suite, showing progress on stderr.
    one_cpu : bool, optional
        Pin the process to one CPU while the suite runs with one BLAS thread (see
        :func:`~.pinning.pinned`), for peers whose own thread pools threadpoolctl does not
        limit (XLA's).
    """

    name: str
    summary: str
    plan: Callable
    run: Callable
    one_cpu: bool = False
