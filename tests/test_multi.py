"""Products of k >= 3 Kronecker factors against independent oracles.

kron_matvec and KronOperator with 3 to 6 rectangular factors against the np.kron chain
(every dtype, every layout of x, factors and out, identity factors, zero sizes, m = 1..4);
the application order against brute force over all orders; the adjoint identity; cg on a
three-factor SPD operator; the structure methods for k = 3..5; workspace reuse.
"""

import itertools
import math
import threading

import numpy as np
import pytest
from scipy.sparse.linalg import cg

import matkron
from matkron import _workspace_cy

from .conftest import (
    DTYPES,
    LAYOUTS,
    OUT_LAYOUTS,
    assert_product,
    columns,
    flops_of,
    kron_abs_dense,
    kron_dense,
    layout_view,
    make_factors,
    operand_shape,
    random_array,
    rows,
    rtol,
    spec_shapes,
    well_conditioned_factors,
    with_layout,
)

KS = (3, 4, 5, 6)
MS = (None, 1, 2, 3, 4)


def _ids(spec):
    return "x".join(f"I{s[1]}" if s[0] == "I" else f"{s[0]}x{s[1]}" for s in spec)


def rectangular_spec(rng, k):
    """k factor shapes (p, q) with p != q, all 2k dimensions different up to k = 4.

    From k = 5 on, 2k different dimensions would make the dense oracle too large (the
    np.kron matrix has the product of all 2k dimensions as entries), so the dimensions
    are drawn from 1..4 with p != q in every factor.
    """
    if k <= 4:
        dims = [int(d) for d in rng.permutation(np.arange(1, 2 * k + 1))]
        return [(dims[2 * i], dims[2 * i + 1]) for i in range(k)]
    spec = []
    for _ in range(k):
        p, q = (int(d) for d in rng.choice(np.arange(1, 5), 2, replace=False))
        spec.append((p, q))
    # Keep the dense oracle small: at most 2**18 entries.
    while math.prod(p * q for p, q in spec) > 2**18:
        i = int(np.argmax([p * q for p, q in spec]))
        p, q = spec[i]
        spec[i] = (max(p // 2, 1), max(q // 2, 1)) if p // 2 != q // 2 else (1, 2)
    return spec


def cheapest(shapes, indices, m):
    """The least flops over every order of the factors `indices`, by brute force."""
    return min(flops_of(shapes, perm, m) for perm in itertools.permutations(indices))


# -- products against the np.kron chain ----------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", MS, ids=lambda m: f"m={m}")
@pytest.mark.parametrize("k", KS)
def test_matches_kron_chain(k, m, dtype, rng):
    for _ in range(3):
        spec = rectangular_spec(rng, k)
        factors = make_factors(rng, spec, dtype)
        x = random_array(rng, operand_shape(columns(spec), m), dtype)
        dense = kron_dense(factors)
        assert_product(matkron.kron_matvec(factors, x), factors, x, dtype, dense=dense)
        K = matkron.kron(*factors)
        assert K.shape == dense.shape
        assert_product(K @ x, factors, x, dtype, dense=dense)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k", KS)
def test_layouts(k, layout, dtype, rng):
    # x in `layout`; the factors each in another layout; out= in a writable one.
    spec = rectangular_spec(rng, k)
    dense_factors = make_factors(rng, spec, dtype)
    shift = LAYOUTS.index(layout)
    factors = [
        with_layout(f, LAYOUTS[(shift + 1 + i) % len(LAYOUTS)])
        for i, f in enumerate(dense_factors)
    ]
    dense = kron_dense(dense_factors)
    for m in (None, 1, 3):
        x_dense = random_array(rng, operand_shape(columns(spec), m), dtype)
        x = with_layout(x_dense, layout)
        assert_product(matkron.kron_matvec(factors, x), dense_factors, x_dense, dtype, dense=dense)
        assert_product(matkron.kron(*factors) @ x, dense_factors, x_dense, dtype, dense=dense)
        out_layout = OUT_LAYOUTS[(shift + (m or 0)) % len(OUT_LAYOUTS)]
        out, _ = layout_view(operand_shape(rows(spec), m), dtype, out_layout)
        assert matkron.kron_matvec(factors, x, out=out) is out
        assert_product(out, dense_factors, x_dense, dtype, dense=dense)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", KS)
def test_identity_factors_mixed_in(k, dtype, rng):
    for _ in range(3):
        spec = rectangular_spec(rng, k - 1)
        # One or two identities at random places (one of them first or last).
        spec.insert(int(rng.integers(0, k)), ("I", int(rng.integers(1, 4))))
        if rng.random() < 0.5:
            spec.insert(int(rng.choice([0, len(spec)])), ("I", 2))
        factors = make_factors(rng, spec, dtype)
        dense = kron_dense(factors)
        for m in (None, 2):
            x = random_array(rng, operand_shape(columns(spec), m), dtype)
            assert_product(matkron.kron_matvec(factors, x), factors, x, dtype, dense=dense)
            assert_product(matkron.kron(*factors) @ x, factors, x, dtype, dense=dense)


ZERO_SPECS = [
    [(2, 3), (0, 4), (3, 2)],
    [(2, 3), (3, 4), (5, 0)],
    [(0, 0), (2, 3), (3, 2), (1, 2)],
    [(2, 1), (1, 3), ("I", 0), (3, 2), (2, 2)],
    [(1, 2), (2, 1), (3, 2), (2, 3), (1, 2), (0, 2)],
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", [None, 0, 1, 3], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("spec", ZERO_SPECS, ids=_ids)
def test_zero_size(spec, m, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    x = random_array(rng, operand_shape(columns(spec), m), dtype)
    y = matkron.kron_matvec(factors, x)
    assert y.shape == operand_shape(rows(spec), m)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.zeros(y.shape, dtype))
    K = matkron.kron(*factors)
    np.testing.assert_array_equal(K @ x, np.zeros(y.shape, dtype))
    out = np.full(y.shape, np.nan, dtype=dtype)
    assert matkron.kron_matvec(factors, x, out=out) is out
    np.testing.assert_array_equal(out, np.zeros(y.shape, dtype))
    # The adjoint of an empty operator maps to zeros too.
    b = random_array(rng, operand_shape(rows(spec), m), dtype)
    np.testing.assert_array_equal(K.H @ b, np.zeros(operand_shape(columns(spec), m), dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_zero_right_hand_sides(dtype, rng):
    spec = [(2, 3), (4, 1), (3, 5)]
    factors = make_factors(rng, spec, dtype)
    y = matkron.kron_matvec(factors, np.zeros((columns(spec), 0), dtype))
    assert y.shape == (rows(spec), 0)
    assert y.dtype == dtype


# -- the order of application --------------------------------------------------------------


def _check_orders(spec):
    shapes = spec_shapes(spec)
    arrays = [i for i, s in enumerate(spec) if s[0] != "I"]
    K = matkron.kron(*make_factors(np.random.default_rng(0), spec, np.float64))
    # matvec: the factors (p, q) of K.
    order = K.apply_order
    assert sorted(order) == arrays
    assert flops_of(shapes, order, 1) == cheapest(shapes, arrays, 1), (shapes, order)
    # rmatvec: the conjugate-transposed factors (q, p), in the adjoint's own order.
    adjoint_shapes = [(q, p) for p, q in shapes]
    adjoint_order = K.H.apply_order
    assert sorted(adjoint_order) == arrays
    assert flops_of(adjoint_shapes, adjoint_order, 1) == cheapest(adjoint_shapes, arrays, 1), (
        adjoint_shapes,
        adjoint_order,
    )
    # kron_order, for several right-hand sides.
    if not any(s[0] == "I" for s in spec):
        for m in (1, 2, 3, 4):
            order, flops = matkron.kron_order(shapes, m)
            assert sorted(order) == arrays
            assert flops == flops_of(shapes, order, m) == cheapest(shapes, arrays, m)


@pytest.mark.parametrize("k", [1, 2, *KS])
def test_apply_order_is_cheapest(k, rng):
    for _ in range(20 if k < 6 else 8):
        spec = [tuple(int(d) for d in rng.integers(1, 13, 2)) for _ in range(k)]
        _check_orders(spec)


@pytest.mark.parametrize("k", KS)
def test_apply_order_all_dimensions_different(k, rng):
    for _ in range(5):
        dims = rng.choice(np.arange(1, 60), 2 * k, replace=False)
        _check_orders([(int(dims[2 * i]), int(dims[2 * i + 1])) for i in range(k)])


def test_apply_order_with_identities(rng):
    for _ in range(10):
        spec = [tuple(int(d) for d in rng.integers(1, 9, 2)) for _ in range(4)]
        spec.insert(int(rng.integers(0, 5)), ("I", int(rng.integers(1, 5))))
        _check_orders(spec)


def test_orders_of_matvec_and_adjoint_differ():
    # A wide factor first, a tall one next: matvec applies the wide one first (it shrinks
    # the tensor), the adjoint the other one (its conjugate transpose is the wide one).
    spec = [(2, 50), (50, 2), (3, 3)]
    K = matkron.kron(*make_factors(np.random.default_rng(1), spec, np.float64))
    assert K.apply_order[0] == 0
    assert K.H.apply_order[0] == 1
    # Applying the factors in the opposite orders would cost many times more.
    shapes = spec_shapes(spec)
    assert flops_of(shapes, K.H.apply_order, 1) > 10 * flops_of(shapes, K.apply_order, 1)


# -- adjoint, solvers, structure -----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", KS)
def test_adjoint_identity(k, dtype, rng):
    # <K X, Y> == <X, K^H Y> for vectors and for 3 columns, and both equal the dense value.
    spec = rectangular_spec(rng, k)
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    Kabs = kron_abs_dense(factors)
    dense = kron_dense(factors)
    for m in (None, 3):
        x = random_array(rng, operand_shape(K.shape[1], m), dtype)
        y = random_array(rng, operand_shape(K.shape[0], m), dtype)
        lhs = np.vdot(K @ x, y)
        rhs = np.vdot(x, K.H @ y)
        bound = np.sum(np.abs(y) * (Kabs @ np.abs(x)))
        tol = 4 * rtol(dtype) * bound + np.finfo(dtype).tiny
        assert abs(lhs - rhs) <= tol, (lhs, rhs)
        ref = np.vdot(dense @ x.astype(complex), y.astype(complex))
        assert abs(lhs - ref) <= tol, (lhs, ref)
        if m is None:
            assert abs(np.vdot(x, K.rmatvec(y)) - ref) <= tol
        else:
            assert abs(np.vdot(x, K.rmatmat(y)) - ref) <= tol


def spd(rng, n, dtype):
    """A Hermitian positive definite matrix with eigenvalues in [1, 4]."""
    q, _ = np.linalg.qr(random_array(rng, (n, n), dtype))
    return ((q * rng.uniform(1.0, 4.0, n)) @ q.conj().T).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
def test_cg_three_factor_spd(dtype, rng):
    factors = [spd(rng, 4, dtype), spd(rng, 2, dtype), spd(rng, 6, dtype)]
    K = matkron.kron(*factors)
    b = random_array(rng, K.shape[0], dtype)
    x, info = cg(K, b, rtol=1e-12, atol=0.0, maxiter=1000)
    assert info == 0
    expected = np.linalg.solve(kron_dense(factors), b)
    assert np.linalg.norm(x - expected) <= 1e-9 * np.linalg.norm(expected)


STRUCTURE_SPECS = [
    [(3, 3), (2, 2), (4, 4)],
    [(2, 2), ("I", 3), (1, 1), (3, 3)],
    [(2, 2), (3, 3), (2, 2), (1, 1), (3, 3)],
    [(3, 3), (2, 2), ("I", 2), (2, 2), (2, 2)],
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", STRUCTURE_SPECS, ids=_ids)
def test_structure_methods(spec, dtype, rng):
    factors = well_conditioned_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    n = dense.shape[0]
    cond = np.linalg.cond(dense)
    tol = 10 * rtol(dtype) * cond
    # inv
    expected = np.linalg.inv(dense)
    assert np.linalg.norm(K.inv().todense() - expected) <= tol * np.linalg.norm(expected)
    # solve, for a vector and for 2 columns
    for m in (None, 2):
        b = random_array(rng, operand_shape(n, m), dtype)
        x = K.solve(b)
        assert x.shape == b.shape and x.dtype == dtype
        expected = np.linalg.solve(dense, b.astype(complex))
        assert np.linalg.norm(x - expected) <= tol * np.linalg.norm(expected)
    # det and slogdet
    det_ref = np.linalg.det(dense)
    sign_ref, logdet_ref = np.linalg.slogdet(dense)
    assert abs(K.det() - det_ref) <= n * tol * abs(det_ref)
    sign, logdet = K.slogdet()
    assert abs(sign - sign_ref) <= n * tol
    assert abs(logdet - logdet_ref) <= n * tol
    # trace and Frobenius norm
    bound = np.trace(kron_abs_dense(factors))
    assert abs(K.trace() - np.trace(dense)) <= 10 * rtol(dtype) * bound
    norm = np.linalg.norm(dense)
    assert abs(K.norm() - norm) <= 10 * rtol(dtype) * norm


def test_structure_methods_refuse_rectangular_factors(rng):
    spec = [(2, 2), (3, 4), (4, 3)]
    K = matkron.kron(*make_factors(rng, spec, np.float64))
    assert K.shape == (24, 24)
    for name in ("inv", "det", "slogdet", "trace"):
        with pytest.raises(ValueError, match="square"):
            getattr(K, name)()
    with pytest.raises(ValueError, match="square"):
        K.solve(np.ones(24))
    assert np.isclose(K.norm(), np.linalg.norm(kron_dense(K.factors)), rtol=1e-12)


# -- workspace reuse -----------------------------------------------------------------------

# Intermediates of tens of kilobytes: beyond the kernel's stack scratch, in the workspace.
REUSE_SPEC = [(12, 10), (9, 11), (10, 13)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", [None, 4], ids=lambda m: f"m={m}")
def test_out_is_reused(m, dtype, rng):
    factors = make_factors(rng, REUSE_SPEC, dtype)
    dense = kron_dense(factors)
    out = np.empty(operand_shape(rows(REUSE_SPEC), m), dtype=dtype)
    for _ in range(4):
        x = random_array(rng, operand_shape(columns(REUSE_SPEC), m), dtype)
        assert matkron.kron_matvec(factors, x, out=out) is out
        assert_product(out, factors, x, dtype, dense=dense)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_workspace_shared_by_matvec_and_rmatvec(dtype, rng):
    # After one product each way, further products (and kron_matvec with out=) allocate no
    # new workspace: the thread's buffer stays the same object.
    factors = make_factors(rng, REUSE_SPEC, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    adjoint = [f.conj().T for f in factors]
    X = random_array(rng, (K.shape[1], 4), dtype)
    Y = random_array(rng, (K.shape[0], 4), dtype)
    K @ X, K.H @ Y
    buffer = _workspace_cy.workspace_buffer()
    assert buffer[1] > 0  # REUSE_SPEC's products need more than the stack workspace
    out = np.empty((K.shape[0], 4), dtype=dtype)
    for _ in range(3):
        assert_product(K @ X, factors, X, dtype, dense=dense)
        assert_product(K.H @ Y, adjoint, Y, dtype, dense=dense.conj().T)
        assert_product(K.matvec(X[:, 0]), factors, X[:, 0], dtype, dense=dense)
        assert_product(K.rmatvec(Y[:, 1]), adjoint, Y[:, 1], dtype, dense=dense.conj().T)
        assert matkron.kron_matvec(factors, X, out=out) is out
        assert _workspace_cy.workspace_buffer() == buffer


def test_workspace_one_buffer_per_thread(rng):
    # Threads never share the kernels' scratch memory: each thread that runs a product
    # gets its own buffer, and releasing it makes the next product allocate anew.
    factors = make_factors(rng, REUSE_SPEC, np.float64)
    dense = kron_dense(factors)
    X = random_array(rng, (dense.shape[1], 4), np.float64)
    seen = {}
    barrier = threading.Barrier(2)

    def run(name):
        assert_product(matkron.kron_matvec(factors, X), factors, X, np.float64, dense=dense)
        seen[name] = _workspace_cy.workspace_buffer()
        barrier.wait()  # both threads alive: no buffer freed and reused yet

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen[0][1] > 0 and seen[1][1] > 0 and seen[0][0] != seen[1][0]
    _workspace_cy.release_workspace()
    assert _workspace_cy.workspace_buffer() == (0, 0)
    assert_product(matkron.kron_matvec(factors, X), factors, X, np.float64, dense=dense)
    assert _workspace_cy.workspace_buffer()[1] > 0
