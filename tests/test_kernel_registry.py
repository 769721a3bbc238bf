"""The registry of matkron's own step kernels, and the one stride rule.

Every row the registry holds is checked for availability against the CPU's own report
(/proc/cpuinfo), and every row available here computes, with the planner forced to use it
and forbidden to, the products of its dtype in every variant the planner admits, against
np.kron (small) or einsum over the factors (too large for a dense oracle). The reference
rows (plain C, every dtype) run everywhere, so the registry's dispatch is exercised on CPUs
without a vector kernel too.
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
            # The planner uses the row only when allowed, and then (forced) at every step
            # within its pack limit.
            assert kernel == (row["name"] if own and admitted(row, *f.shape) else "blas")
        y = matkron.kron_matvec(factors, x)
        if small:
            assert_product(y, factors, x, dtype)
        else:
            bound = kron_einsum([np.abs(f) for f in factors], np.abs(x)).real
            assert_allclose_bound(y, kron_einsum(factors, x), bound, dtype)


# -- the step contract (csrc/kernels/kernels.h), on each row's own entry points -----------
#
# Y = alpha F X + beta Y through strides, with X and Y inside NaN-filled buffers (a read or
# a write outside them shows), against the product in complex128.

# Factor rows around every kernel's tiles: 1 to 8 vectors of 4 or 8 lanes (AVX2) and of 8
# or 16 (AVX-512), full and one row over, and p = 4k + 1, 2, 3 (AVX2's last broadcasts).
STEP_P = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 23, 24, 25, 28, 29, 31, 32, 33,
          40, 41, 47, 48, 49, 56, 57, 64, 65)
# Columns around tile and block edges: 4 and 8 broadcasts, runs of 16 to 96 (AVX2) and of
# 64 (AVX-512) columns; tiles of 12 and 24 rows (AVX2), 24 and 48 (AVX-512); blocks of 192
# (AVX2) and 256 (AVX-512) rows.
STEP_N = (1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 17, 23, 24, 25, 47, 48, 49, 65, 95, 97, 191, 192,
          193, 257, 300)
# Where X and Y run along their unit strides: X along k ("FX", x_sk = 1) or r ("XF"), Y
# along i or r.
STEP_LAYOUTS = (("FX", "i"), ("FX", "r"), ("XF", "r"), ("XF", "i"))


def step_operands(rng, dtype, p, q, n, layout, x_stride=None, pad=(1, 2)):
    """F (p x q) and X, Y0 (q x n, p x n) in NaN-filled buffers: x, y and the strides of the
    step. The stride along X's or Y's other index is the unit one's extent plus a pad (or
    x_stride for an XF x_sk)."""
    (x_unit, y_unit), (x_pad, y_pad) = layout, pad
    f = random_array(rng, (p, q), dtype)
    X = random_array(rng, (q, n), dtype)
    Y0 = random_array(rng, (p, n), dtype)
    if x_unit == "FX":
        x_sk, x_sr = 1, q + x_pad
    else:
        x_sk, x_sr = (n + x_pad if x_stride is None else x_stride), 1
    y_si, y_sr = (1, p + y_pad) if y_unit == "i" else (n + y_pad, 1)
    k, r = np.indices((q, n))
    # As large as the tensor the strides describe (the kernels size their packs by it).
    x = np.full(max(1, q * x_sk, n * x_sr) + x_pad, np.nan, dtype)
    x[k * x_sk + r * x_sr] = X
    i, r = np.indices((p, n))
    y = np.full(max(1, (p - 1) * y_si + (n - 1) * y_sr + 1 + y_pad), np.nan, dtype)
    at = i * y_si + r * y_sr
    return f, X, Y0, x, (x_sk, x_sr), y, (y_si, y_sr), at


def run_step(row, rng, p, q, n, layout, alpha, beta, x_stride=None):
    """One step of `row` on fresh operands, checked against the product and the buffers."""
    dtype = np.dtype(row["dtype"])
    f, X, Y0, x, (x_sk, x_sr), y, (y_si, y_sr), at = step_operands(
        rng, dtype, p, q, n, layout, x_stride)
    if beta:
        y[at] = Y0
    if rng.random() < 0.5:
        f = np.asfortranarray(f)
    status = _kron_cy._run_step_kernel(row["name"], f, x, n, x_sk, x_sr, y, y_si, y_sr,
                                       alpha, beta)
    assert status == 0, (p, q, n, layout)
    F, X, Y0 = (a.astype(np.complex128) for a in (f, X, Y0))
    expected = alpha * (F @ X) + beta * Y0
    bound = abs(alpha) * (np.abs(F) @ np.abs(X)) + abs(beta) * np.abs(Y0)
    assert_allclose_bound(y[at], expected, bound, dtype)
    written = np.zeros(y.size, bool)
    written[at] = True
    assert np.isnan(y[~written]).all(), (p, q, n, layout)


AVAILABLE = [row for row in ROWS if row["available"]]


@pytest.mark.parametrize("layout", STEP_LAYOUTS, ids="/".join)
@pytest.mark.parametrize("row", AVAILABLE, ids=lambda row: row["name"])
def test_step_contract_at_tile_edges(row, layout, rng):
    for p in STEP_P:
        for n in rng.choice(STEP_N, 3, replace=False):
            q = int(rng.choice([1, 2, 3, 5, 8, 13]))
            alpha = float(rng.choice([1.0, -0.75]))
            run_step(row, rng, p, q, int(n), layout, alpha, float(rng.choice([0.0, 1.0])))
    # Long factor rows: AVX2's XF path takes 128 of the q columns at a time.
    for q in (127, 128, 129, 300):
        p, n = int(rng.choice([3, 9, 17])), int(rng.choice([13, 200]))
        run_step(row, rng, p, q, n, layout, float(rng.choice([1.0, -0.75])),
                 float(rng.choice([0.0, 1.0])))


@pytest.mark.parametrize("y_unit", ["r", "i"])
@pytest.mark.parametrize("row", AVAILABLE, ids=lambda row: row["name"])
def test_step_contract_at_copied_strides(row, y_unit, rng):
    # XF at strides of multiples of 32 and 64 elements, which alias in L1 (the AVX kernels
    # copy blocks of X's rows first), with rows that end inside a vector and a block.
    for x_stride in (64, 128, 320, 512):
        for p in (9, 12, 17, 33):
            for n in (5, 61, 64, 100, 193, 250, 300):
                if n <= x_stride:
                    run_step(row, rng, p, int(rng.choice([3, 10])), n, ("XF", y_unit),
                             float(rng.choice([1.0, 2.5])), float(rng.choice([0.0, 1.0])),
                             x_stride)


@pytest.mark.parametrize("row", AVAILABLE, ids=lambda row: row["name"])
def test_step_contract_alpha_zero_and_declines(row, rng):
    dtype = np.dtype(row["dtype"])
    for layout in STEP_LAYOUTS:
        f, X, Y0, x, xs, y, ys, at = step_operands(rng, dtype, 9, 5, 13, layout)
        # alpha 0: X is not read (here all NaN), as in BLAS.
        x[:] = np.nan
        y[at] = Y0
        assert _kron_cy._run_step_kernel(row["name"], f, x, 13, *xs, y, *ys, 0.0, 1.0) == 0
        assert np.array_equal(y[at], Y0)
        assert _kron_cy._run_step_kernel(row["name"], f, x, 13, *xs, y, *ys, 0.0, 0.0) == 0
        assert (y[at] == 0).all()
        # A beta other than 0 or 1, or a pack without room: declined, Y not written.
        y[at] = Y0
        assert _kron_cy._run_step_kernel(row["name"], f, x, 13, *xs, y, *ys, 1.0, 0.5) == -1
        assert _kron_cy._run_step_kernel(row["name"], f, x, 13, *xs, y, *ys, 1.0, 0.0,
                                         pack_size=9 * 5 - 1) == -1
        assert np.array_equal(y[at], Y0)
    if not row["reference"]:
        # The vector kernels need a unit stride in X and in Y (the reference row any).
        f, X, Y0, x, xs, y, ys, at = step_operands(rng, dtype, 9, 5, 13, ("FX", "i"))
        x2 = np.repeat(x, 2)
        assert _kron_cy._run_step_kernel(row["name"], f, x2, 13, 2, 2 * xs[1], y, *ys,
                                         1.0, 0.0) == -1
        y2 = np.full(2 * y.size, np.nan, dtype)
        assert _kron_cy._run_step_kernel(row["name"], f, x, 13, *xs, y2, 2, 2 * ys[1],
                                         1.0, 0.0) == -1
        assert np.isnan(y2).all()


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
