"""The command line: ``python -m matkron bench [SUITE] [options]``.

A suite is a module of this package exporting ``SUITE`` (a :class:`~.suite.Suite`); add it
to :data:`SUITES` to make it available here.
"""

import argparse
import importlib
import time
from pathlib import Path

from .._version import __version__
from .suite import Config

__all__ = ["SUITES", "main"]

# Suite name -> the module that exports it as SUITE; imported only when run.
SUITES = {
    "kron": "matkron._bench.kron",
    "chain": "matkron._bench.chain",
    "power": "matkron._bench.power",
    "multi": "matkron._bench.multi",
    "structured": "matkron._bench.structured",
    "calculus": "matkron._bench.calculus",
    "spectral": "matkron._bench.spectral",
    "dask": "matkron._bench.cluster",
    "threads": "matkron._bench.threads",
}
DEFAULT_SUITE = "kron"

# Sampling defaults: (repeat, shortest sample in s, memory cap of naive routes in GiB).
QUICK_DEFAULTS = (5, 0.003, 0.25)
FULL_DEFAULTS = (9, 0.005, 2.0)


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive; got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m matkron",
        description="matkron command line.",
    )
    parser.add_argument("--version", action="version", version=f"matkron {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser(
        "bench",
        help="run a benchmark suite",
        description="Run a benchmark suite: print the machine, a table of median times and "
        "ratios and a summary of the ratios; save a CSV file and a PNG plot. With --check, "
        "also the project's performance targets.",
        epilog="suites: " + ", ".join(SUITES),
    )
    bench.add_argument(
        "suite", nargs="?", default=DEFAULT_SUITE, choices=sorted(SUITES),
        help=f"the suite to run (default: {DEFAULT_SUITE})",
    )
    bench.add_argument(
        "--check", action="store_true",
        help="also print the project's performance targets, each PASS or MISS",
    )
    bench.add_argument(
        "--quick", action="store_true",
        help="a shorter sweep with fewer, shorter samples (under a minute)",
    )
    bench.add_argument(
        "--threads", type=_positive(int), default=1, metavar="N",
        help="threads, pinned with threadpoolctl for NumPy's and SciPy's BLAS and with "
        "matkron.threads for matkron's own (default: 1)",
    )
    bench.add_argument(
        "--repeat", type=_positive(int), metavar="N",
        help=f"samples per measurement, the median is reported "
        f"(default: {FULL_DEFAULTS[0]}, {QUICK_DEFAULTS[0]} with --quick)",
    )
    bench.add_argument(
        "--mem-cap-gb", type=_positive(float), metavar="GIB",
        help="largest dense matrix the naive baseline may build, in GiB "
        f"(default: {FULL_DEFAULTS[2]:g}, {QUICK_DEFAULTS[2]:g} with --quick)",
    )
    bench.add_argument(
        "--csv", type=Path, metavar="PATH",
        help="where to write the results (default: bench-results/SUITE.csv)",
    )
    bench.add_argument(
        "--plot", type=Path, metavar="PATH",
        help="where to write the PNG plot, if matplotlib is installed "
        "(default: bench-results/SUITE.png)",
    )
    return parser


def _bench(args):
    """Run the suite named by `args`; the exit status."""
    # Import first, so that the pinning below sees every BLAS that the suite loads.
    suite = importlib.import_module(SUITES[args.suite]).SUITE
    from . import environment, pinning, report

    repeat, min_time, mem_cap_gb = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    config = Config(
        quick=args.quick,
        repeat=args.repeat or repeat,
        min_time=min_time,
        mem_cap=int((args.mem_cap_gb or mem_cap_gb) * 2**30),
    )
    csv_path = args.csv or Path("bench-results") / f"{suite.name}.csv"
    plot_path = args.plot or Path("bench-results") / f"{suite.name}.png"

    start = time.perf_counter()
    plan = suite.plan(config)  # loads the suite's peers, and their thread pools
    with pinning.pinned(args.threads, one_cpu=suite.one_cpu) as cpu:
        print("\n".join(environment.describe(args.threads)))
        if cpu is not None:
            print(f"pinning    the process to CPU {cpu} (os.sched_setaffinity), for the "
                  f"thread pools of the {suite.name} suite's peers")
        print()
        print("\n".join(plan), flush=True)
        outcome = suite.run(config)
    elapsed = time.perf_counter() - start

    print()
    print(report.format_table(outcome.columns, outcome.rows))
    print()
    print("\n".join(outcome.notes))
    print()
    report.write_csv(csv_path, outcome.columns, outcome.rows)
    print(f"results: {csv_path}")
    if outcome.plot is not None:
        if report.plot(plot_path, outcome.plot, outcome.columns, outcome.rows):
            print(f"plot:    {plot_path}")
        else:
            print("plot:    not written, matplotlib is not installed "
                  "(pip install matplotlib, or matkron[bench])")
    print(f"time:    {elapsed:.1f} s for the {suite.name} suite")
    summary = report.summarize(outcome.columns, outcome.rows)
    if summary:
        print()
        print("\n".join(summary))
    if outcome.checks and args.check:
        print()
        print("targets (the project's goals for this suite; a MISS is not an error):")
        for check in outcome.checks:
            status = {True: "PASS", False: "MISS", None: "n/a "}[check.passed]
            print(f"  {status}  {check.target}: {check.detail}")
    return 0


def main(argv=None):
    """Run the matkron command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``python -m matkron``; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        The exit status: 0 after a run (performance targets missed or not); argument
        errors exit with status 2 through :mod:`argparse`.

    Examples
    --------
    Run the quick kron suite with two BLAS threads::

        main(["bench", "kron", "--quick", "--threads", "2"])
    """
    args = _parser().parse_args(argv)
    return _bench(args)
