"""The registry of matkron's own step kernels, and the one stride rule.

Every row the registry holds is checked for availability against the CPU's own report
(/proc/cpuinfo), and every row available here computes, with the planner forced to use it
and forbidden to, the products of its dtype in every variant the planner admits, against
np.kron (small) or einsum over the factors (too large for a dense oracle). The reference
rows (plain C, every dtype) run everywhere, so the registry's dispatch is exercised on CPUs
without AVX-512 too.
"""

import itertools
import platform

import numpy as np
import pytest

import matkron
from matkron import _kron_cy
from matkron._validation import blas_readable

from .conftest import (
    assert_allclose_bound,
    assert_product,
    columns,
    kron_einsum,
    make_factors,
    random_array,
    with_layout,
)

ROWS = _kron_cy.kernel_registry()
VARIANTS = ("normal", "rotate-front", "rotate-back")


@pytest.fixture(autouse=True)
def free_planner():
    yield
    _kron_cy._set_planner(None, own_kernel=True)


# The flags a row's "isa" may name (as /proc/cpuinfo spells them).
KNOWN_FLAGS = {"avx", "avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq"}


def cpu_flags():
    """The CPU's feature flags as Linux reports them, or None where it does not."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_rows_are_well_formed():
    assert ROWS, "the registry has no rows"
    names = [row["name"] for row in ROWS]
    assert len(set(names)) == len(names)
    suffix = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}
    for row in ROWS:
        assert row["name"].endswith("_" + suffix[row["dtype"]]), row
        assert row["lanes"] > 0 and row["pack_round"] > 0 and row["max_pack"] > 0
        assert isinstance(row["available"], bool)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or cpu_flags() is None,
                    reason="needs an x86-64 Linux CPU report")
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["name"])
def test_availability_matches_the_cpu(row):
    # The registry detects once per process; a kernel needs every CPU flag its "isa" names
    # (comma-separated: "avx512f,avx2,fma", "avx2,fma"), the reference rows nothing.
    needs = set(row["isa"].split(","))
    assert row["reference"] or needs <= KNOWN_FLAGS, row["isa"]
    assert row["available"] == (row["reference"] or needs <= cpu_flags())


def test_set_planner_reports_whether_a_kernel_runs():
    assert _kron_cy._set_planner(None, own_kernel=False) is False
    assert _kron_cy._set_planner(None, own_kernel=True) == any(
        r["available"] and not r["reference"] for r in ROWS)
    assert any(r["reference"] and r["available"] for r in ROWS)
    with pytest.raises(ValueError, match="no registry row 'nonesuch'"):
        _kron_cy._set_planner(None, own_kernel="nonesuch")


def admitted(row, p, q):
    rounded = -(-p // row["pack_round"]) * row["pack_round"]
    return rounded * q <= row["max_pack"]


# Factor shapes around the tiles and the pack limit: (200, 150) exceeds 32768 entries.
SPECS = (
    [(9, 5), (5, 9)],
    [(24, 24), (3, 3), (8, 8)],
    [(17, 3), (8, 8), (5, 2)],
    [(200, 150), (4, 6)],
)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["name"])
@pytest.mark.parametrize("own", [False, True], ids=["blas", "own"])
@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("layout", ["vector", "C", "F"])
def test_every_plan_of_a_row_matches_the_oracle(row, own, spec, layout, rng):
    if not row["available"]:
        pytest.skip(f"{row['name']} does not run on this CPU")
    dtype = np.dtype(row["dtype"])
    # Forced by name: the planner may use the row for every step of its dtype it admits.
    _kron_cy._set_planner(None, own_kernel=row["name"] if own else False)
    factors = make_factors(rng, spec, dtype)
    n = columns(spec)
    x = random_array(rng, (n,) if layout == "vector" else (n, 4), dtype)
    if layout != "vector":
        x = with_layout(x, layout)
    small = np.prod([p * q for p, q in spec]) <= 10**6
    seen = set()
    for variants in itertools.product(VARIANTS, repeat=len(spec)):
        _kron_cy._set_planner(variants)
        plan = _kron_cy.kron_plan(tuple(factors), x)
        kernels = _kron_cy._plan_kernels(tuple(factors), x)
        if (plan, kernels) in seen:
            continue
        seen.add((plan, kernels))
        for f, kernel in zip((factors[i] for i in plan[0]), kernels):
            # The planner uses the row only when allowed, and within its pack limit; a
            # reference row, which costs nothing to the planner, wherever it admits.
            assert kernel in ("blas", row["name"])
            assert kernel == "blas" or (own and admitted(row, *f.shape))
            if own and row["reference"]:
                assert kernel == row["name"]
        y = matkron.kron_matvec(factors, x)
        if small:
            assert_product(y, factors, x, dtype)
        else:
            bound = kron_einsum([np.abs(f) for f in factors], np.abs(x)).real
            assert_allclose_bound(y, kron_einsum(factors, x), bound, dtype)


# -- the one stride rule ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize(
    "layout, readable",
    [("C", True), ("F", True), ("padded_F", True), ("padded_C", True),
     ("strided", False), ("negative", False), ("mixed", False), ("unaligned", False)],
)
def test_stride_rule_is_shared_by_validation_and_kernels(dtype, layout, readable, rng):
    a = with_layout(random_array(rng, (5, 3), dtype), layout)
    assert _kron_cy.is_blas_matrix(a) is readable
    # Validation copies exactly what the kernels cannot read.
    assert (blas_readable(a, a.dtype) is a) is readable
    x = random_array(rng, (6,), dtype)
    assert_product(matkron.kron_matvec([a, np.eye(2, dtype=dtype)], x),
                   [np.array(a), np.eye(2, dtype=dtype)], x, dtype)


def test_stride_rule_ignores_the_stride_of_a_length_one_axis():
    row = np.broadcast_to(np.ones((1, 1)), (1, 5))   # zero column stride: not readable
    assert not _kron_cy.is_blas_matrix(row)
    column = np.ones((7, 5))[:, 2:3]                 # column stride 40 over one column
    assert _kron_cy.is_blas_matrix(column)
    single = np.lib.stride_tricks.as_strided(np.ones(1), (1, 1), (0, 0))
    assert _kron_cy.is_blas_matrix(single)
    assert not _kron_cy.is_blas_matrix(np.ones((3, 3), dtype=np.int64))
