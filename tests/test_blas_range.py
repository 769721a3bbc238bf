"""Factors beyond the BLAS integer range are refused before anything is copied.

A zero-strided view can describe a factor of 2**31 columns in a few bytes; BLAS cannot
read its strides, so accepting it would mean a copy of 16 GiB (float64). Every entry point
must raise ValueError, naming the factor and the limit, without allocating: the cases run
in one subprocess whose address space is capped at 2 GiB above what it already uses, where
such a copy fails with MemoryError instead (and the next case starts again from the same
memory, the failed allocation having left nothing behind).
"""

import json
import re
import subprocess
import sys
import textwrap

import pytest

LIMIT = 2**31 - 1

SCRIPT = textwrap.dedent(
    """
    import json
    import resource
    import sys

    import numpy as np
    import scipy.sparse

    import matkron

    def used():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    cap = used() + 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    def cases(dtype):
        wide = np.broadcast_to(np.ones((1, 1), dtype), (1, 2**31))   # 1 x 2**31
        tall = np.broadcast_to(np.ones((1, 1), dtype), (2**31, 1))   # 2**31 x 1
        square = np.broadcast_to(np.ones((1, 1), np.int8), (2**31, 2**31))
        empty = np.ones((2, 0))
        x = np.ones(0)
        return {
            "kron_matvec": lambda: matkron.kron_matvec([wide, empty], x),
            "kron_matvec_tall": lambda: matkron.kron_matvec([np.ones((0, 2)), tall],
                                                            np.ones(2)),
            "kron": lambda: matkron.kron(wide, empty) @ x,
            "sum_of_kron": lambda: matkron.sum_of_kron([(wide, empty)]) @ x,
            "kronsum": lambda: matkron.kronsum(square, np.ones((0, 0))) @ x,
            "sparse": lambda: matkron.kron_matvec(
                [scipy.sparse.coo_array((2**31, 2**31), dtype=dtype), empty], x),
            "sparse_kronsum": lambda: matkron.kronsum(
                scipy.sparse.coo_array((2**31, 2**31), dtype=dtype), np.ones((0, 0))) @ x,
            "jacobian_chain": lambda: matkron.jacobian_chain([wide]),
            "power_jacobian": lambda: matkron.power_jacobian(square, 2),
            "frechet": lambda: matkron.frechet("expm", square),
        }

    results = {}
    for dtype in sys.argv[1:]:
        for case, run in cases(np.dtype(dtype)).items():
            try:
                run()
            except ValueError as exc:
                message = f"ValueError: {exc}"
            except MemoryError as exc:
                message = f"MemoryError: {exc}"
            else:
                message = "no error"
            results[f"{case} {dtype}"] = message
    print(json.dumps(results))
    """
)

DTYPES = ["float64", "int8"]


@pytest.fixture(scope="module")
def messages():
    """What each case raised, from one capped subprocess."""
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, *DTYPES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case, name",
    [
        ("kron_matvec", r"factors\[0\]"),
        ("kron_matvec_tall", r"factors\[1\]"),
        ("kron", r"factors\[0\]"),
        ("sum_of_kron", r"terms\[0\]\[0\]"),
        ("kronsum", r"mats\[0\]"),
        ("sparse", r"factors\[0\]"),
        ("sparse_kronsum", r"mats\[0\]"),
        ("jacobian_chain", r"ops\[0\]"),
        ("power_jacobian", "A"),
        ("frechet", "A"),
    ],
)
def test_factor_beyond_blas_range_is_refused_without_allocating(case, name, dtype, messages):
    message = messages[f"{case} {dtype}"]
    assert message.startswith("ValueError:"), message
    assert re.search(name + r" has shape \((1, 2147483648|2147483648, 1|2147483648, "
                     r"2147483648)\)", message), message
    assert str(LIMIT) in message, message
