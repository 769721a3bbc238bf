"""Every way the kernel applies a factor, against the np.kron chain.

The planner picks one variant per step ("normal", "rotate-front", "rotate-back"); a test
hook constrains it, so each variant sequence a product admits is run, for float32 and
float64 both by matkron's own step kernel (where the CPU runs one: the registry's first
available row for the dtype, forced, so that it runs every step it admits) and by BLAS.
Shapes are chosen around the own kernels' tile edges: AVX-512's (8 and 24 along its
vectors, 8 along its broadcasts; runs of 64 columns, copies of 256 rows at strides that
alias in L1) and AVX2's (4 and 8 lanes; tiles of 1 to 3 vectors by 4 broadcasts, so
factors of 1 to 7 vectors and of p = 4k + 1, 2, 3 rows; edges of 12 and 24 rows; runs of
16 to 96 columns, copies of 192 rows).
"""

import itertools

import numpy as np
import pytest

import matkron
from matkron import _kron_cy

from .conftest import (
    assert_allclose_bound,
    assert_product,
    columns,
    kron_dense,
    kron_einsum,
    make_factors,
    operand_shape,
    random_array,
    rows,
)

VARIANTS = ("normal", "rotate-front", "rotate-back")
# Whether this CPU runs the own kernel at all (restored after each test).
OWN = _kron_cy._set_planner(None, own_kernel=True)
KERNELS = ("own", "blas") if OWN else ("blas",)
# The dtypes the own kernel serves.
REAL = (np.dtype("float32"), np.dtype("float64"))
# The row the planner takes for each dtype it has one for here (the first available one
# that is not a reference row, as matkron_step_kernel_for).
OWN_ROWS = {}
for _row in _kron_cy.kernel_registry():
    if _row["available"] and not _row["reference"]:
        OWN_ROWS.setdefault(np.dtype(_row["dtype"]), _row["name"])


def use_kernel(kernel, dtype):
    """Every step on BLAS ("blas"), or ("own") the dtype's own row at every step it admits
    (the free planner where the dtype has none)."""
    own = OWN_ROWS.get(np.dtype(dtype), True) if kernel == "own" else False
    _kron_cy._set_planner(None, own_kernel=own)


@pytest.fixture(autouse=True)
def free_planner():
    yield
    _kron_cy._set_planner(None, own_kernel=True)


def assert_matches_einsum(y, factors, x, dtype, reference):
    """assert_product for products too large for a dense oracle: the reference and the
    error bound (|F1| ⊗ … ⊗ |Fk|) |x| both by einsum over the factors."""
    bound = kron_einsum([np.abs(f) for f in factors], np.abs(x)).real
    assert y.dtype == np.dtype(dtype) and y.shape == reference.shape
    assert_allclose_bound(y, reference, bound, dtype)


def plans_of(factors, x):
    """Each distinct plan the planner makes under every variant constraint, and its product."""
    seen = {}
    for variants in itertools.product(VARIANTS, repeat=len(factors)):
        _kron_cy._set_planner(variants)
        plan = _kron_cy.kron_plan(tuple(factors), x)
        if plan not in seen:
            seen[plan] = matkron.kron_matvec(factors, x)
    _kron_cy._set_planner(None)
    return seen


# Factor shapes around the tile edges: p of 1, 5, 8, 9, 17, 24, 25 rows. Square factors
# tie in the flop order, which lets the planner apply them front to back or back to front
# and so admits the rotated variants at every step.
SPECS = (
    [(9, 5), (5, 9)],
    [(24, 7), (1, 6)],
    [(17, 3), (8, 8), (5, 2)],
    [(2, 3), (24, 24), (3, 2)],
    [(9, 9), (17, 17), (8, 8)],
    [(25, 25), (3, 3), (16, 16)],
    [(5, 5), (24, 24), (1, 1)],
)


@pytest.mark.parametrize("dtype", REAL, ids=str)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("m", [None, 1, 3, 16], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_every_variant_real(spec, m, order, kernel, dtype, rng):
    use_kernel(kernel, dtype)
    factors = make_factors(rng, spec, dtype)
    x = np.asarray(random_array(rng, operand_shape(columns(spec), m), dtype), order=order)
    dense = kron_dense(factors)
    plans = plans_of(factors, x)
    assert plans
    for y in plans.values():
        assert_product(y, factors, x, dtype, dense=dense)


@pytest.mark.parametrize("dtype", [np.dtype("complex64"), np.dtype("complex128")], ids=str)
def test_every_variant_complex(dtype, rng):
    spec = [(9, 4), (3, 17), (8, 5)]
    factors = make_factors(rng, spec, dtype)
    dense = kron_dense(factors)
    for m, order in [(None, "C"), (3, "C"), (3, "F")]:
        x = np.asarray(random_array(rng, operand_shape(columns(spec), m), dtype), order=order)
        for y in plans_of(factors, x).values():
            assert_product(y, factors, x, dtype, dense=dense)


@pytest.mark.parametrize("dtype", REAL, ids=str)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(
    "spec",
    [
        # Runs of 64 columns and 256-row blocks with remainders; strides of 32, 64 and 320
        # elements (copied first) and 33 (read in place).
        [(40, 9), (12, 32), (11, 10)],
        [(17, 33), (24, 64)],
        [(12, 12), (32, 32), (10, 10)],
        [(20, 20), (33, 33), (9, 9)],
        # 41 and 56 rows: AVX2's 6 and 7 vectors of floats, 11 and 14 of doubles.
        [(41, 41), (3, 3), (56, 56)],
    ],
    ids=str,
)
def test_blocks_and_copied_strides(spec, kernel, dtype, rng):
    use_kernel(kernel, dtype)
    factors = make_factors(rng, spec, dtype)
    for m, order in [(None, "C"), (2, "C"), (2, "F")]:
        x = np.asarray(random_array(rng, operand_shape(columns(spec), m), dtype), order=order)
        reference = kron_einsum(factors, x)
        for y in plans_of(factors, x).values():
            assert_matches_einsum(y, factors, x, dtype, reference)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sums_accumulate_in_every_variant(kernel, rng):
    # Sums scale the last step of each term and accumulate into one output.
    use_kernel(kernel, np.float64)
    spec = [(9, 6), (17, 5)]
    a, b = make_factors(rng, spec, np.float64), make_factors(rng, spec, np.float64)
    dense = 2.5 * kron_dense(a) - 0.5 * kron_dense(b)
    S = matkron.sum_of_kron([a, b], coeffs=[2.5, -0.5])
    for m, order in [(None, "C"), (4, "C"), (4, "F")]:
        x = np.asarray(random_array(rng, operand_shape(columns(spec), m), np.float64), order=order)
        for variants in itertools.product(VARIANTS, repeat=2):
            _kron_cy._set_planner(variants)
            y = S @ x
            np.testing.assert_allclose(y, dense.real @ x, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not OWN, reason="this CPU runs no own step kernel")
@pytest.mark.parametrize("dtype", REAL, ids=str)
def test_own_kernel_matches_blas(dtype, rng):
    spec = [(33, 31), (7, 40), (24, 9)]
    factors = make_factors(rng, spec, dtype)
    x = random_array(rng, (columns(spec), 5), dtype)
    _kron_cy._set_planner(None, own_kernel=False)
    by_blas = matkron.kron_matvec(factors, x)
    _kron_cy._set_planner(None, own_kernel=True)
    by_own = matkron.kron_matvec(factors, x)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(by_own, by_blas, rtol=tol, atol=tol * np.abs(by_blas).max())


@pytest.mark.parametrize("kernel", KERNELS)
def test_infinities_propagate_as_in_the_dense_product(kernel, rng):
    # One infinite entry of x makes each output entry ±inf (the factors have no zeros):
    # the padded lanes of the own kernel's tiles (0 * inf = nan) never reach the result.
    use_kernel(kernel, np.float64)
    spec = [(9, 3), (5, 7), (10, 2)]
    factors = [np.abs(f) + 0.5 for f in make_factors(rng, spec, np.float64)]
    x = random_array(rng, (columns(spec), 3), np.float64)
    x[17, 1] = np.inf
    expected = np.abs(kron_dense(factors).real) @ np.abs(x)
    for y in plans_of(factors, x).values():
        assert np.array_equal(np.isposinf(y[:, 1]), np.ones(rows(spec), bool))
        assert np.isfinite(y[:, [0, 2]]).all()
        assert (np.abs(y[:, [0, 2]]) <= expected[:, [0, 2]] * (1 + 1e-12)).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_zero_coefficient_does_not_read_x(kernel, rng):
    # As BLAS with alpha = 0: a term with coefficient 0 adds nothing, even where x holds
    # an infinity (0 * inf would be nan).
    use_kernel(kernel, np.float64)
    a, b = [np.abs(f) + 0.5 for f in make_factors(rng, [(9, 5), (6, 7)], np.float64)]
    x = random_array(rng, (35, 3), np.float64)
    x[4, 1] = np.inf
    S = matkron.sum_of_kron([(a, b), (a, b)], coeffs=[0.0, 1.0])
    y = S @ x
    assert np.isposinf(y[:, 1]).all()
    np.testing.assert_allclose(y[:, [0, 2]], (np.kron(a, b) @ x)[:, [0, 2]], rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.dtype("float64"), np.dtype("complex64")], ids=str)
def test_fortran_columns_one_at_a_time(dtype, kernel, rng):
    # Fortran-ordered x and out with large columns run as one product per column; padded
    # operands, out=, and sums (accumulating per column) included.
    use_kernel(kernel, dtype)
    spec = [(31, 33), (35, 34), (20, 35)]
    factors = make_factors(rng, spec, dtype)
    x_dense = random_array(rng, (columns(spec), 3), dtype)
    reference = kron_einsum(factors, x_dense)
    x = np.asfortranarray(x_dense)
    assert _kron_cy.kron_plan(tuple(factors), x)[3]
    y = matkron.kron_matvec(factors, x)
    assert y.flags.f_contiguous
    assert_matches_einsum(y, factors, x_dense, dtype, reference)
    padded = np.full((columns(spec) + 5, 3), np.nan, dtype=dtype, order="F")[:-5]
    padded[...] = x_dense
    out = np.full((rows(spec) + 3, 3), np.nan, dtype=dtype, order="F")
    assert matkron.kron_matvec(factors, padded, out=out[:-3]) is not None
    assert_matches_einsum(out[:-3], factors, x_dense, dtype, reference)
    assert np.isnan(out[-3:]).all()
    S = matkron.sum_of_kron([factors, factors], coeffs=[2.0, -0.5])
    tol = 1e-4 if dtype == np.complex64 else 1e-11
    np.testing.assert_allclose(
        S @ x, 1.5 * reference, rtol=tol, atol=tol * np.abs(reference).max()
    )
    # A C-ordered x takes the whole-tensor plan.
    assert not _kron_cy.kron_plan(tuple(factors), np.ascontiguousarray(x_dense))[3]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("layout", ["C", "strided"])
def test_large_x_copied_to_fortran_order_for_columns(layout, kernel, rng):
    # An x of over 6 MiB in another layout is copied into Fortran order, then its columns
    # run one at a time into a new (Fortran-ordered) or a Fortran-ordered out, when the
    # steps are bound by memory.
    use_kernel(kernel, np.float64)
    spec = [(17, 33), (18, 34), (16, 35)]  # small p: steps bound by memory
    factors = make_factors(rng, spec, np.float64)
    x_dense = random_array(rng, (columns(spec), 21), np.float64)
    reference = kron_einsum(factors, x_dense)
    if layout == "C":
        x = np.ascontiguousarray(x_dense)
    else:
        x = np.full((2 * columns(spec), 42), np.nan)[::2, ::2]
        x[...] = x_dense
    x_before = x.copy()
    assert _kron_cy.kron_plan(tuple(factors), x)[3]
    y = matkron.kron_matvec(factors, x)
    assert y.flags.f_contiguous
    assert_matches_einsum(y, factors, x_dense, np.float64, reference)
    out = np.empty((rows(spec), 21), order="F")
    assert matkron.kron_matvec(factors, x, out=out) is out
    assert_matches_einsum(out, factors, x_dense, np.float64, reference)
    assert np.array_equal(x, x_before)
    # A C-ordered out keeps the whole-tensor plan, as do steps bound by arithmetic.
    out_c = np.empty((rows(spec), 21))
    matkron.kron_matvec(factors, x, out=out_c)
    assert_matches_einsum(out_c, factors, x_dense, np.float64, reference)
    big_p = make_factors(rng, [(100, 33), (101, 34), (102, 35)], np.float64)
    assert not _kron_cy.kron_plan(tuple(big_p), x)[3]
