"""Run the asv-style benchmarks of this folder without asv.

    python benchmarks/run.py [-k TEXT] [--repeat N]

For each benchmark class and each combination of its ``params``: ``setup``, then the
``time_*`` methods timed interleaved as ``python -m matkron bench`` times its methods (median
of samples of auto-calibrated call loops), the ``track_*`` values, then ``teardown``. A
``setup`` raising NotImplementedError skips that combination, as in asv.
"""

import argparse
import functools
import importlib
import inspect
import itertools
import sys
from pathlib import Path

from matkron._bench.report import format_time, format_value
from matkron._bench.timing import measure


def benchmark_classes(module):
    """The classes of `module` with time_* or track_* methods, and those methods' names."""
    for name, cls in inspect.getmembers(module, inspect.isclass):
        methods = [m for m in dir(cls) if m.startswith(("time_", "track_"))]
        if cls.__module__ == module.__name__ and methods:
            yield cls, methods


def run_class(cls, methods, repeat, min_time):
    """Run `methods` of benchmark class `cls` over its parameter grid, printing one line each."""
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]  # asv: a flat list is the values of a single parameter
    names = getattr(cls, "param_names", [f"p{i}" for i in range(len(params))])
    for values in itertools.product(*params):
        where = ", ".join(f"{name}={value!r}" for name, value in zip(names, values))
        bench = cls()
        try:
            if hasattr(bench, "setup"):
                bench.setup(*values)
        except NotImplementedError as skip:
            print(f"{cls.__name__}({where})  skipped: {skip}")
            continue
        try:
            timed = {m: functools.partial(getattr(bench, m), *values)
                     for m in methods if m.startswith("time_")}
            results = {m: format_time(t)
                       for m, t in measure(timed, None, repeat, min_time).items()}
            for m in methods:
                if m.startswith("track_"):
                    method = getattr(bench, m)
                    unit = getattr(method, "unit", "")
                    kind = "bytes" if unit == "bytes" else "text"
                    results[m] = format_value(method(*values), kind)
            for m in methods:
                print(f"{cls.__name__}.{m}({where})  {results[m]}")
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*values)
        sys.stdout.flush()


def main(argv=None):
    """Run the benchmarks whose ``Class.method`` contains the -k text; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", metavar="TEXT",
                        help="run only the benchmarks whose Class.method contains TEXT")
    parser.add_argument("--repeat", type=int, default=5, metavar="N",
                        help="samples per timing, the median is printed (default: 5)")
    parser.add_argument("--min-time", type=float, default=0.002, metavar="SECONDS",
                        help="shortest sample (default: 0.002)")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    for path in sorted(here.glob("bench_*.py")):
        module = importlib.import_module(path.stem)
        for cls, methods in benchmark_classes(module):
            selected = [m for m in methods if args.k in f"{cls.__name__}.{m}"]
            if selected:
                run_class(cls, selected, args.repeat, args.min_time)
    return 0


if __name__ == "__main__":
    sys.exit(main())
