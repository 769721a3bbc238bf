"""Factors beyond the BLAS integer range are refused before anything is copied.

A zero-strided view can describe a factor of 2**31 columns in a few bytes; BLAS cannot
read its strides, so accepting it would mean a copy of 16 GiB (float64). Every entry point
must raise ValueError, naming the factor and the limit, without allocating: each case runs
in a subprocess whose address space is capped at 2 GiB above what it already uses, where
such a copy fails with MemoryError instead.
"""

import re
import subprocess
import sys
import textwrap

import pytest

LIMIT = 2**31 - 1

SCRIPT = textwrap.dedent(
    """
    import resource
    import sys

    import numpy as np

    import matkron

    def used():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    cap = used() + 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    dtype = np.dtype(sys.argv[2])
    wide = np.broadcast_to(np.ones((1, 1), dtype), (1, 2**31))   # 1 x 2**31
    tall = np.broadcast_to(np.ones((1, 1), dtype), (2**31, 1))   # 2**31 x 1
    square = np.broadcast_to(np.ones((1, 1), np.int8), (2**31, 2**31))
    empty = np.ones((2, 0))
    x = np.ones(0)
    cases = {
        "kron_matvec": lambda: matkron.kron_matvec([wide, empty], x),
        "kron_matvec_tall": lambda: matkron.kron_matvec([np.ones((0, 2)), tall], np.ones(2)),
        "kron": lambda: matkron.kron(wide, empty) @ x,
        "sum_of_kron": lambda: matkron.sum_of_kron([(wide, empty)]) @ x,
        "kronsum": lambda: matkron.kronsum(square, np.ones((0, 0))) @ x,
    }
    try:
        cases[sys.argv[1]]()
    except ValueError as exc:
        print("ValueError:", exc)
    except MemoryError as exc:
        print("MemoryError:", exc)
    else:
        print("no error")
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@pytest.mark.parametrize("dtype", ["float64", "int8"])
@pytest.mark.parametrize(
    "case, name",
    [
        ("kron_matvec", r"factors\[0\]"),
        ("kron_matvec_tall", r"factors\[1\]"),
        ("kron", r"factors\[0\]"),
        ("sum_of_kron", r"terms\[0\]\[0\]"),
        ("kronsum", r"mats\[0\]"),
    ],
)
def test_factor_beyond_blas_range_is_refused_without_allocating(case, name, dtype):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, case, dtype],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    message = run.stdout.strip()
    assert message.startswith("ValueError:"), message
    assert re.search(name + r" has shape \((1, 2147483648|2147483648, 1|2147483648, "
                     r"2147483648)\)", message), message
    assert str(LIMIT) in message, message
