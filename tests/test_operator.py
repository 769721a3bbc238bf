"""matkron.kron / KronOperator against dense numpy linear algebra on the np.kron matrix."""

import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import matkron

from .conftest import (
    DTYPES,
    assert_allclose_bound,
    assert_product,
    columns,
    kron_abs_dense,
    kron_dense,
    make_factors,
    operand_shape,
    random_array,
    rows,
    rtol,
    to_dense,
    well_conditioned_factors,
    with_layout,
)

PRODUCT_SPECS = [
    [(3, 5)],
    [(1, 1)],
    [(2, 3), (5, 4)],
    [(3, 2), (1, 4), (2, 2)],
    [("I", 3), (2, 4)],
    [(4, 2), ("I", 2)],
    [(2, 3), (3, 2), (2, 2), (1, 3)],
    [(0, 3), (2, 2)],
    [(3, 0), (2, 2)],
]
SQUARE_SPECS = [
    [(4, 4)],
    [(1, 1), (3, 3)],
    [(3, 3), (2, 2)],
    [(2, 2), (3, 3), (2, 2)],
    [("I", 2), (3, 3)],
    [(3, 3), ("I", 2)],
    [(2, 2), ("I", 3), (2, 2)],
    [(2, 2), (2, 2), (2, 2), (2, 2)],
]


def _ids(spec):
    return "x".join(f"I{s[1]}" if s[0] == "I" else f"{s[0]}x{s[1]}" for s in spec)


def adjoint_dense(factors):
    return kron_dense(factors).conj().T


# -- construction --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS, ids=_ids)
def test_construction(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    assert isinstance(K, matkron.KronOperator)
    assert isinstance(K, LinearOperator)
    assert K.shape == (rows(spec), columns(spec))
    assert K.dtype == dtype
    assert len(K.factors) == len(factors)
    for got, given_ in zip(K.factors, factors):
        assert got.shape == given_.shape
        if isinstance(given_, np.ndarray):
            np.testing.assert_array_equal(np.asarray(got), given_)
        else:
            np.testing.assert_array_equal(to_dense(got), np.eye(given_.shape[0]))


@pytest.mark.parametrize(
    "dtypes, expected",
    [
        (["float32", "float32"], "float32"),
        (["float32", "float64"], "float64"),
        (["float32", "complex64"], "complex64"),
        (["float64", "complex64"], "complex128"),
        (["int8", "float32"], "float32"),
        (["int64", "float32"], "float64"),
        (["int32", "int64"], "float64"),
        (["bool"], "float64"),
        (["float16"], "float32"),
        (["I", "float32"], "float32"),
        (["I", "complex64"], "complex64"),
    ],
)
def test_operator_dtype(dtypes, expected, rng):
    shapes = [(2, 3), (3, 2)]
    factors = [
        matkron.identity(2) if d == "I" else random_array(rng, shapes[i], d)
        for i, d in enumerate(dtypes)
    ]
    K = matkron.kron(*factors)
    assert K.dtype == np.dtype(expected)
    x = random_array(rng, K.shape[1], expected)
    assert_product(K @ x, factors, x, expected)


@pytest.mark.parametrize("x_dtype", ["float32", "complex64", "float64", "complex128", "int8"])
@pytest.mark.parametrize("m", [None, 2, 0], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("n", [3, 0])
@pytest.mark.parametrize("kind", ["identities", "float32", "complex64"])
def test_product_dtype_does_not_depend_on_size(kind, n, m, x_dtype):
    # A product's dtype is np.result_type of the array factors and the operand, as for
    # kron_matvec (identity factors take no part), for empty and non-empty operands alike.
    factors = [matkron.identity(n)]
    if kind != "identities":
        factors.append(np.array([[2.0]], dtype=kind))
    K = matkron.kron(*factors)
    if kind != "identities":
        assert np.dtype(K.dtype) == np.dtype(kind)
    expected = np.result_type(*(f.dtype for f in factors[1:]), x_dtype)
    if expected.kind in "biu":
        expected = np.dtype(np.float64)
    assert matkron.kron_matvec(factors, np.zeros(K.shape[1], x_dtype)).dtype == expected
    scale = 1 if kind == "identities" else 2
    x = np.arange(np.prod(operand_shape(n, m))).reshape(operand_shape(n, m)).astype(x_dtype)
    for y in (K @ x, K.dot(x), K.H @ x, K.T @ x, K.adjoint().dot(x)):
        assert y.dtype == expected
        assert y.shape == x.shape
        np.testing.assert_array_equal(y, scale * x)
    if m is None:
        for y in (K.matvec(x), K.rmatvec(x)):
            assert y.dtype == expected
            np.testing.assert_array_equal(y, scale * x)
    else:
        for y in (K.matmat(x), K.rmatmat(x)):
            assert y.dtype == expected
            np.testing.assert_array_equal(y, scale * x)


@pytest.mark.parametrize("bad", ["longdouble", "object", "str", "datetime64[D]"])
def test_operator_unsupported_dtypes(bad):
    with pytest.raises(TypeError):
        matkron.kron(np.eye(2), np.ones((2, 2), dtype=bad))


def test_kron_errors():
    with pytest.raises(ValueError):
        matkron.kron()
    with pytest.raises(ValueError, match="2-D"):
        matkron.kron(np.eye(2), np.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        matkron.kron(np.ones((2, 2, 2)))
    K = matkron.kron(np.ones((2, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError):
        K @ np.ones(10)
    with pytest.raises(ValueError):
        K.matvec(np.ones(10))
    with pytest.raises(ValueError):
        K.matmat(np.ones((10, 2)))
    with pytest.raises(ValueError):
        K.rmatvec(np.ones(12))
    with pytest.raises(ValueError):
        K.rmatmat(np.ones((12, 2)))


def test_todense_with_identity(rng):
    B = random_array(rng, (2, 3), np.float32)
    K = matkron.kron(matkron.identity(2), B, matkron.identity(1))
    dense = K.todense()
    assert dense.dtype == np.float32
    np.testing.assert_array_equal(dense, np.kron(np.kron(np.eye(2), B), np.eye(1)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS, ids=_ids)
def test_todense_is_kron_chain(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    dense = matkron.kron(*factors).todense()
    expected = factors[0] if isinstance(factors[0], np.ndarray) else np.eye(factors[0].shape[0])
    for f in factors[1:]:
        expected = np.kron(expected, f if isinstance(f, np.ndarray) else np.eye(f.shape[0]))
    assert isinstance(dense, np.ndarray)
    assert dense.shape == expected.shape
    assert dense.dtype == dtype
    np.testing.assert_allclose(dense, expected, rtol=rtol(dtype), atol=0)


# -- products ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS, ids=_ids)
def test_products(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    M, N = K.shape
    dense = kron_dense(factors)
    adense = dense.conj().T
    x = random_array(rng, N, dtype)
    X = random_array(rng, (N, 3), dtype)
    y = random_array(rng, M, dtype)
    Y = random_array(rng, (M, 2), dtype)

    assert_product(K @ x, factors, x, dtype, dense=dense)
    assert_product(K @ X, factors, X, dtype, dense=dense)
    assert_product(K.matvec(x), factors, x, dtype, dense=dense)
    assert_product(K.dot(x), factors, x, dtype, dense=dense)
    assert_product(K.matmat(X), factors, X, dtype, dense=dense)
    assert_product(K.dot(X), factors, X, dtype, dense=dense)

    adj = [f.conj().T if isinstance(f, np.ndarray) else f for f in factors]
    assert_product(K.rmatvec(y), adj, y, dtype, dense=adense)
    assert_product(K.rmatmat(Y), adj, Y, dtype, dense=adense)
    assert_product(K.H @ y, adj, y, dtype, dense=adense)
    assert_product(K.H @ Y, adj, Y, dtype, dense=adense)
    assert_product(K.adjoint() @ y, adj, y, dtype, dense=adense)
    assert_product(K.adjoint().matmat(Y), adj, Y, dtype, dense=adense)

    tr = [f.T if isinstance(f, np.ndarray) else f for f in factors]
    assert_product(K.T @ y, tr, y, dtype, dense=dense.T)
    assert_product(K.T @ Y, tr, Y, dtype, dense=dense.T)
    assert_product(K.transpose().matvec(y), tr, y, dtype, dense=dense.T)

    # Double adjoint / transpose get back to K.
    assert_product(K.H.H @ x, factors, x, dtype, dense=dense)
    assert_product(K.T.T @ X, factors, X, dtype, dense=dense)
    assert_product(K.H.rmatvec(x), factors, x, dtype, dense=dense)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS, ids=_ids)
def test_adjoint_and_transpose_are_kron_operators(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    for op, expected in ((K.H, dense.conj().T), (K.adjoint(), dense.conj().T), (K.T, dense.T)):
        assert op.shape == expected.shape
        assert op.dtype == dtype
        if isinstance(op, matkron.KronOperator):
            np.testing.assert_allclose(op.todense(), expected, rtol=rtol(dtype), atol=0)
        # Whatever its type, the operator applies the dense adjoint / transpose.
        np.testing.assert_allclose(
            op @ np.eye(op.shape[1], dtype=dtype), expected, rtol=rtol(dtype), atol=0
        )


def test_complex_adjoint_conjugates(rng):
    A = np.array([[1j, 2.0], [0.0, 3.0 - 1j]])
    B = np.array([[2.0 + 1j]])
    K = matkron.kron(A, B)
    x = np.array([1.0, 1j])
    expected = np.kron(A, B).conj().T @ x
    np.testing.assert_allclose(K.H @ x, expected, rtol=1e-14)
    np.testing.assert_allclose(K.rmatvec(x), expected, rtol=1e-14)
    np.testing.assert_allclose(K.T @ x, np.kron(A, B).T @ x, rtol=1e-14)


@pytest.mark.parametrize("matvec_shape", ["(N,)", "(N,1)"])
def test_matvec_shape_contract(matvec_shape, rng):
    # LinearOperator contract: matvec of (N,) gives (M,), of (N, 1) gives (M, 1).
    factors = make_factors(rng, [(2, 3), (4, 2)], np.float64)
    K = matkron.kron(*factors)
    x = random_array(rng, 6, np.float64)
    if matvec_shape == "(N,1)":
        y = K.matvec(x.reshape(6, 1))
        assert y.shape == (8, 1)
        assert_product(y, factors, x.reshape(6, 1), np.float64)
        y = K.rmatvec(np.ones((8, 1)))
        assert y.shape == (6, 1)
    else:
        y = K.matvec(x)
        assert y.shape == (8,)
        assert_product(y, factors, x, np.float64)


@pytest.mark.parametrize("layout", ["F", "strided", "negative", "readonly", "mixed", "unaligned"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_products_operand_layouts(layout, dtype, rng):
    spec = [(3, 2), (2, 4), (2, 3)]
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*[with_layout(f, layout) for f in factors])
    for m in (None, 3):
        x = random_array(rng, operand_shape(columns(spec), m), dtype)
        assert_product(K @ with_layout(x, layout), factors, x, dtype)
        y = random_array(rng, operand_shape(rows(spec), m), dtype)
        adj = [f.conj().T for f in factors]
        assert_product(K.H @ with_layout(y, layout), adj, y, dtype)


@pytest.mark.parametrize(
    "op_dtype, x_dtype, expected",
    [
        ("float32", "float32", "float32"),
        ("float32", "float64", "float64"),
        ("float64", "float32", "float64"),
        ("float32", "complex64", "complex64"),
        ("float64", "complex64", "complex128"),
        ("complex64", "float64", "complex128"),
        ("float32", "int8", "float32"),
        ("float32", "int64", "float64"),
        ("float64", "int32", "float64"),
        ("float32", "float16", "float32"),
        ("complex64", "bool", "complex64"),
    ],
)
def test_product_dtype_promotion(op_dtype, x_dtype, expected, rng):
    factors = make_factors(rng, [(3, 2), (2, 4)], op_dtype)
    K = matkron.kron(*factors)
    for _ in range(2):  # repeated calls with different operand dtypes
        for m in (None, 2):
            x = random_array(rng, operand_shape(8, m), x_dtype)
            y = K @ x
            assert y.dtype == np.dtype(expected)
            assert_product(y, factors, x, expected)
            z = random_array(rng, operand_shape(8, m), op_dtype)
            assert_product(K @ z, factors, z, op_dtype)
            w = random_array(rng, operand_shape(6, m), x_dtype)
            adj = [f.conj().T for f in factors]
            assert_product(K.H @ w, adj, w, expected)


def test_array_like_operands(rng):
    factors = make_factors(rng, [(3, 2), (2, 4)], np.float64)
    K = matkron.kron(*factors)
    x = list(range(8))
    assert_product(K @ np.asarray(x, dtype=float), factors, np.arange(8.0), np.float64)
    assert_product(K.matvec(x), factors, np.arange(8.0), np.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS, ids=_ids)
def test_adjoint_identity(spec, dtype, rng):
    # <K x, y> == <x, K^H y> with np.vdot.
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    Kabs = kron_abs_dense(factors)
    for _ in range(3):
        x = random_array(rng, K.shape[1], dtype)
        y = random_array(rng, K.shape[0], dtype)
        lhs = np.vdot(K @ x, y)
        rhs = np.vdot(x, K.H @ y)
        bound = np.abs(y) @ Kabs @ np.abs(x)
        assert abs(lhs - rhs) <= 4 * rtol(dtype) * bound + np.finfo(dtype).tiny, (lhs, rhs)
        # and both equal the dense value
        ref = np.vdot(kron_dense(factors) @ x.astype(complex), y.astype(complex))
        assert abs(lhs - ref) <= 2 * rtol(dtype) * bound + np.finfo(dtype).tiny


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 4), st.integers(0, 4)),
            st.tuples(st.just("I"), st.integers(0, 3)),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(DTYPES),
    st.integers(0, 2**32 - 1),
)
def test_property_operator(spec, dtype, seed):
    # An operator of identity factors only has a dtype of its own (an array-free operator
    # has nothing to promote); test_product_dtype_does_not_depend_on_size covers it.
    assume(any(s[0] != "I" for s in spec))
    rng = np.random.default_rng(seed)
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    assert K.shape == dense.shape
    x = random_array(rng, (K.shape[1], 2), dtype)
    y = random_array(rng, K.shape[0], dtype)
    assert_product(K @ x, factors, x, dtype, dense=dense)
    adj = [f.conj().T if isinstance(f, np.ndarray) else f for f in factors]
    assert_product(K.H @ y, adj, y, dtype, dense=dense.conj().T)
    assert_product(K.rmatvec(y), adj, y, dtype, dense=dense.conj().T)
    np.testing.assert_allclose(
        K.norm(), np.linalg.norm(dense), rtol=10 * rtol(dtype), atol=np.finfo(dtype).tiny
    )


# -- structure -----------------------------------------------------------------------------


def _cond(dense):
    return np.linalg.cond(dense) if dense.size else 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SQUARE_SPECS, ids=_ids)
def test_inv(spec, dtype, rng):
    factors = well_conditioned_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    Kinv = K.inv()
    assert isinstance(Kinv, matkron.KronOperator)
    assert Kinv.shape == K.shape
    assert Kinv.dtype == dtype
    dense = kron_dense(factors)
    expected = np.linalg.inv(dense)
    got = Kinv.todense()
    tol = 10 * rtol(dtype) * _cond(dense) * np.linalg.norm(expected)
    assert np.linalg.norm(got - expected) <= tol
    # Its factors are the factor inverses.
    for f, fi in zip(factors, Kinv.factors):
        fd = to_dense(f)
        np.testing.assert_allclose(
            to_dense(fi) @ fd, np.eye(fd.shape[0]), atol=10 * rtol(dtype) * _cond(fd)
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SQUARE_SPECS, ids=_ids)
@pytest.mark.parametrize("m", [None, 1, 3], ids=lambda m: f"m={m}")
def test_solve(spec, m, dtype, rng):
    factors = well_conditioned_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    b = random_array(rng, operand_shape(K.shape[0], m), dtype)
    x = K.solve(b)
    assert x.shape == b.shape
    assert x.dtype == dtype
    expected = np.linalg.solve(dense, b.astype(complex))
    tol = 10 * rtol(dtype) * _cond(dense) * np.linalg.norm(expected)
    assert np.linalg.norm(x - expected) <= tol
    # Solving again (cached factorizations) gives the same answer.
    np.testing.assert_array_equal(K.solve(b), x)


@pytest.mark.parametrize("layout", ["F", "strided", "negative", "readonly", "mixed", "unaligned"])
def test_solve_operand_layouts(layout, rng):
    factors = well_conditioned_factors(rng, [(3, 3), (2, 2), (4, 4)], np.complex128)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    for m in (None, 2):
        b = random_array(rng, operand_shape(24, m), np.complex128)
        x = K.solve(with_layout(b, layout))
        np.testing.assert_allclose(x, np.linalg.solve(dense, b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "op_dtype, b_dtype, expected",
    [
        ("float64", "int64", "float64"),
        ("float64", "complex128", "complex128"),
        ("float32", "complex64", "complex64"),
        ("float64", "float32", "float64"),
        ("float32", "int8", "float32"),
        ("complex64", "float32", "complex64"),
    ],
)
def test_solve_dtype(op_dtype, b_dtype, expected, rng):
    factors = well_conditioned_factors(rng, [(3, 3), (2, 2)], op_dtype)
    K = matkron.kron(*factors)
    b = random_array(rng, 6, b_dtype)
    x = K.solve(b)
    assert x.dtype == np.dtype(expected)
    dense = kron_dense(factors)
    expected_x = np.linalg.solve(dense, b.astype(complex))
    tol = 10 * max(rtol(op_dtype), rtol(expected)) * _cond(dense) * np.linalg.norm(expected_x)
    assert np.linalg.norm(x - expected_x) <= tol


def test_solve_list_and_errors(rng):
    factors = well_conditioned_factors(rng, [(3, 3), (2, 2)], np.float64)
    K = matkron.kron(*factors)
    b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    np.testing.assert_allclose(K.solve(b), np.linalg.solve(kron_dense(factors), b), rtol=1e-12)
    with pytest.raises(ValueError, match="b"):
        K.solve(np.ones(5))
    with pytest.raises(ValueError, match="b"):
        K.solve(np.ones((7, 2)))
    with pytest.raises(ValueError):
        K.solve(np.ones((6, 1, 1)))


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("position", [0, 1])
def test_singular(position, dtype, rng):
    other = well_conditioned_factors(rng, [(3, 3)], dtype)[0]
    factors = [other]
    factors.insert(position, SINGULAR.astype(dtype))
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    assert np.linalg.matrix_rank(dense) < dense.shape[0]  # the oracle agrees it is singular
    with pytest.raises(np.linalg.LinAlgError):
        K.inv()
    with pytest.raises(np.linalg.LinAlgError):
        K.solve(np.ones(6, dtype))
    assert K.det() == 0
    sign, logdet = K.slogdet()
    assert sign == 0
    assert logdet == -np.inf
    zero_row = other.copy()
    zero_row[1] = 0
    K = matkron.kron(zero_row, matkron.identity(2))
    assert K.det() == 0
    with pytest.raises(np.linalg.LinAlgError):
        K.inv()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SQUARE_SPECS + [[(0, 0), (2, 2)]], ids=_ids)
def test_det_slogdet(spec, dtype, rng):
    factors = well_conditioned_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    n = dense.shape[0]
    det_ref = np.linalg.det(dense)
    sign_ref, logdet_ref = np.linalg.slogdet(dense)
    tol = 10 * rtol(dtype) * max(n, 1) * _cond(dense)
    det = K.det()
    assert abs(det - det_ref) <= tol * abs(det_ref), (det, det_ref)
    sign, logdet = K.slogdet()
    assert abs(sign - sign_ref) <= tol, (sign, sign_ref)
    assert abs(logdet - logdet_ref) <= tol, (logdet, logdet_ref)
    if np.dtype(dtype).kind == "f":
        assert np.isreal(sign) and np.isreal(det)


def test_det_sign_of_odd_powers():
    # det(A ⊗ B) = det(A)^q det(B)^p for A p×p, B q×q.
    A = np.diag([1.0, -2.0])  # det -2
    B = np.diag([3.0, 1.0, 1.0])  # det 3, order 3: det = (-2)^3 3^2 = -72
    K = matkron.kron(A, B)
    assert np.isclose(K.det(), np.linalg.det(np.kron(A, B)), rtol=1e-12)
    assert np.isclose(K.det(), -72.0, rtol=1e-12)
    sign, logdet = K.slogdet()
    assert sign == -1
    assert np.isclose(logdet, np.log(72.0), rtol=1e-12)
    K = matkron.kron(A, np.diag([2.0, 1.0]))  # (-2)^2 2^2 = 16
    assert np.isclose(K.det(), 16.0, rtol=1e-12)
    C = np.diag([1j, 1.0])  # det i
    K = matkron.kron(C, np.eye(3))  # i^3 = -i
    assert np.isclose(K.det(), -1j, rtol=1e-12)
    assert np.isclose(K.slogdet()[0], -1j, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SQUARE_SPECS + [[(0, 0), (2, 2)]], ids=_ids)
def test_trace(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    tr = K.trace()
    ref = np.trace(dense)
    bound = np.trace(kron_abs_dense(factors))
    assert abs(tr - ref) <= 10 * rtol(dtype) * bound + np.finfo(dtype).tiny, (tr, ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS + SQUARE_SPECS, ids=_ids)
def test_norm(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    ref = np.linalg.norm(kron_dense(factors), "fro")
    got = K.norm()
    assert np.isreal(got)
    assert abs(got - ref) <= 10 * rtol(dtype) * ref + np.finfo(dtype).tiny, (got, ref)


@pytest.mark.parametrize("spec", [[(2, 3), (3, 2)], [(2, 3)], [(3, 3), (2, 4)]], ids=_ids)
def test_structure_of_rectangular_factors(spec, rng):
    # With rectangular factors the square-only identities are unavailable. A method either
    # refuses (ValueError, or LinAlgError for a singular square product) or is right.
    factors = make_factors(rng, spec, np.float64)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    square = dense.shape[0] == dense.shape[1]
    for name in ("inv", "det", "slogdet", "trace"):
        try:
            result = getattr(K, name)()
        except (ValueError, np.linalg.LinAlgError):
            continue
        assert square, f"{name} of a {dense.shape} operator returned {result!r}"
        if name == "trace":
            assert np.isclose(result, np.trace(dense), rtol=1e-12)
        elif name == "det":
            assert abs(result) <= 1e-8 * np.linalg.norm(dense) ** dense.shape[0]
        elif name == "slogdet":
            assert result[0] == 0 or result[1] < np.log(1e-8)
        else:
            pytest.fail("inv of a singular operator returned")
    try:
        K.solve(np.ones(dense.shape[0]))
    except (ValueError, np.linalg.LinAlgError):
        pass
    else:
        pytest.fail("solve with rectangular factors returned")


def test_structure_with_identities():
    A = np.array([[2.0, 1.0], [0.5, 3.0]])
    K = matkron.kron(matkron.identity(3), A, matkron.identity(2))
    dense = np.kron(np.kron(np.eye(3), A), np.eye(2))
    assert np.isclose(K.trace(), np.trace(dense), rtol=1e-14)
    assert np.isclose(K.det(), np.linalg.det(dense), rtol=1e-12)
    assert np.isclose(K.norm(), np.linalg.norm(dense), rtol=1e-14)
    np.testing.assert_allclose(K.inv().todense(), np.linalg.inv(dense), rtol=1e-12, atol=1e-15)
    b = np.arange(12.0)
    np.testing.assert_allclose(K.solve(b), np.linalg.solve(dense, b), rtol=1e-12)
    K = matkron.kron(matkron.identity(4))
    assert K.det() == 1
    assert K.trace() == 4
    assert np.isclose(K.norm(), 2.0, rtol=1e-15)
    np.testing.assert_array_equal(K.solve(np.arange(4.0)), np.arange(4.0))


def test_linear_operator_algebra(rng):
    # KronOperator composes with other LinearOperators as SciPy's contract promises.
    factors = make_factors(rng, [(3, 2), (2, 4)], np.float64)
    K = matkron.kron(*factors)
    dense = kron_dense(factors).real
    x = random_array(rng, 8, np.float64)
    np.testing.assert_allclose((2 * K) @ x, 2 * dense @ x, rtol=1e-12)
    np.testing.assert_allclose((K + K) @ x, 2 * dense @ x, rtol=1e-12)
    np.testing.assert_allclose((K.H @ K) @ x, dense.T @ dense @ x, rtol=1e-12)
    np.testing.assert_allclose(aslinearoperator(K).matvec(x), dense @ x, rtol=1e-12)
    assert_allclose_bound(K @ x, dense @ x, np.abs(dense) @ np.abs(x), np.float64)


@st.composite
def _square_problems(draw):
    spec = draw(
        st.lists(
            st.one_of(
                st.integers(1, 3).map(lambda n: (n, n)),
                st.integers(0, 3).map(lambda n: ("I", n)),
            ),
            min_size=1,
            max_size=3,
        )
    )
    return spec, draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(_square_problems())
def test_property_structure(problem):
    spec, dtype, seed = problem
    rng = np.random.default_rng(seed)
    factors = well_conditioned_factors(rng, spec, dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    n = dense.shape[0]
    cond = _cond(dense)
    tol = 10 * rtol(dtype) * max(n, 1) * cond
    det_ref = np.linalg.det(dense)
    assert abs(K.det() - det_ref) <= tol * abs(det_ref)
    sign, logdet = K.slogdet()
    sign_ref, logdet_ref = np.linalg.slogdet(dense)
    assert abs(sign - sign_ref) <= tol
    assert abs(logdet - logdet_ref) <= tol
    tr_bound = np.trace(kron_abs_dense(factors))
    assert abs(K.trace() - np.trace(dense)) <= 10 * rtol(dtype) * tr_bound + 1e-300
    assert abs(K.norm() - np.linalg.norm(dense)) <= 10 * rtol(dtype) * np.linalg.norm(dense)
    if n:
        b = random_array(rng, (n, 2), dtype)
        x_ref = np.linalg.solve(dense, b.astype(complex))
        assert np.linalg.norm(K.solve(b) - x_ref) <= tol * np.linalg.norm(x_ref)
        inv_ref = np.linalg.inv(dense)
        assert np.linalg.norm(K.inv().todense() - inv_ref) <= tol * np.linalg.norm(inv_ref)


@pytest.mark.parametrize("x_dtype", ["float32", "int16", "complex64"])
def test_integer_operator_promotes_like_kron_matvec(x_dtype):
    # An int8 operator computes in float64 but promotes as int8: int8 with float32 is float32.
    A = np.array([[1, 2], [3, 4]], dtype=np.int8)
    K = matkron.kron(A, matkron.identity(2))
    x = np.arange(4).astype(x_dtype)
    expected = matkron.kron_matvec([A, matkron.identity(2)], x).dtype
    assert np.dtype(K.dtype) == np.float64
    dense = np.kron(A, np.eye(2))
    for y, M in ((K @ x, dense), (K.matvec(x), dense), (K.H @ x, dense.T), (K.T @ x, dense.T)):
        assert y.dtype == expected
        np.testing.assert_array_equal(y, M @ x.astype(np.complex128))


# -- operators with a zero dimension (issue 15, item 8) ----------------------------------------

# Square factors whose Kronecker product is 0x0; the other factors are singular, or hold NaN,
# which must not matter: the dense matrix is the empty matrix.
EMPTY_SPECS = {
    "0x0,ones": lambda dtype: [np.zeros((0, 0), dtype), np.ones((2, 2), dtype)],
    "ones,0x0": lambda dtype: [np.ones((3, 3), dtype), np.zeros((0, 0), dtype)],
    "I2,0x0,zeros": lambda dtype: [
        matkron.identity(2), np.zeros((0, 0), dtype), np.zeros((2, 2), dtype)],
    "0x0,nan": lambda dtype: [np.zeros((0, 0), dtype), np.full((2, 2), np.nan, dtype)],
    "I0,eye": lambda dtype: [matkron.identity(0), np.eye(3, dtype=dtype)],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", list(EMPTY_SPECS), ids=str)
def test_structure_of_empty_operators(spec, dtype):
    factors = EMPTY_SPECS[spec](dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors, dtype)
    assert K.shape == dense.shape == (0, 0)
    # numpy's answers on the dense (empty) matrix are the oracle.
    assert K.det() == np.linalg.det(dense) == 1
    sign, logdet = K.slogdet()
    sign_ref, logdet_ref = np.linalg.slogdet(dense)
    assert (sign, logdet) == (sign_ref, logdet_ref) == (1, 0)
    for b in (np.ones(0, dtype), np.ones((0, 3), dtype)):
        x = K.solve(b)
        expected = np.linalg.solve(dense, b)
        assert x.shape == expected.shape == b.shape
        assert x.dtype == expected.dtype == dtype
    inverse = K.inv()
    assert isinstance(inverse, matkron.KronOperator)
    expected = np.linalg.inv(dense)
    got = inverse.todense()
    assert got.shape == expected.shape and got.dtype == expected.dtype == dtype
    assert K.trace() == np.trace(dense) == 0
    assert K.norm() == np.linalg.norm(dense) == 0


@pytest.mark.parametrize("spec", [[(0, 3), (2, 2)], [(2, 2), (3, 0)]], ids=_ids)
def test_norm_of_rectangular_empty_operators_ignores_nan(spec):
    factors = [np.full(s, np.nan) if 0 not in s else np.zeros(s) for s in spec]
    K = matkron.kron(*factors)
    assert K.norm() == np.linalg.norm(kron_dense(factors)) == 0


# -- factors with NaN or inf (issue 15, item 7d) -----------------------------------------------


def _with_nonfinite(rng, dtype, value, n=3):
    f = well_conditioned_factors(rng, [(n, n)], dtype)[0]
    f[1, 0] = value
    return f


NONFINITE = [np.nan, np.inf, -np.inf, complex(np.nan, 0), complex(0, np.inf)]


@pytest.mark.parametrize("value", NONFINITE, ids=str)
@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_solve_and_inv_name_a_nonfinite_factor(dtype, position, value, rng):
    if np.iscomplexobj(value) and np.dtype(dtype).kind != "c":
        value = value.real if np.isnan(value.real) else np.inf
    factors = well_conditioned_factors(rng, [(2, 2), ("I", 2), (3, 3)], dtype)
    if position == 1:
        factors.insert(0, _with_nonfinite(rng, dtype, value))
        name = r"factor 0 \(A in kron\(A, B, C, D\)\)"
    else:
        # A singular factor before it: the check comes before any factorization.
        factors[0] = np.zeros((2, 2), dtype)
        factors.insert(position + 1, _with_nonfinite(rng, dtype, value))
        i = position + 1
        name = rf"factor {i} \({'ABCD'[i]} in kron\(A, B, C, D\)\)"
    K = matkron.kron(*factors)
    # scipy.linalg's convention for solvers (check_finite): a ValueError.
    with np.errstate(invalid="ignore"):  # inf * 0 in np.kron
        dense = kron_dense(factors)
    with pytest.raises(ValueError, match=r"array must not contain infs or NaNs"):
        scipy.linalg.solve(dense, np.ones(K.shape[0]))
    message = rf"^{name} contains NaN or inf; solve needs finite factors$"
    with pytest.raises(ValueError, match=message):
        K.solve(np.ones(K.shape[0], dtype))
    with pytest.raises(ValueError, match=message):
        K.solve(np.ones((K.shape[0], 0), dtype))
    with pytest.raises(ValueError, match=message.replace("solve", "inv")):
        K.inv()
    # The adjoint checks its own factors (the same ones, transposed).
    with pytest.raises(ValueError, match="contains NaN or inf"):
        K.H.solve(np.ones(K.shape[0], dtype))


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_det_of_a_nonfinite_factor_is_nan(dtype, value, rng):
    B = well_conditioned_factors(rng, [(3, 3)], dtype)[0]
    B[0, 1] = 0
    factors = [_with_nonfinite(rng, dtype, value, 2), B]
    K = matkron.kron(*factors)
    with np.errstate(invalid="ignore"):
        dense = kron_dense(factors)
    assert np.isnan(dense).any()  # inf * 0 entries: the factor identity does not hold
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        det_ref = np.linalg.det(dense)
        _, logdet_ref = np.linalg.slogdet(dense)
    assert np.isnan(det_ref) and np.isnan(logdet_ref)  # numpy's convention: nan, no error
    assert np.isnan(K.det())
    sign, logdet = K.slogdet()
    assert np.isnan(sign) and np.isnan(logdet)


def test_trace_and_norm_propagate_nan(rng):
    A = _with_nonfinite(rng, np.float64, np.nan)  # off the diagonal
    B = well_conditioned_factors(rng, [(2, 2)], np.float64)[0]
    K = matkron.kron(A, B)
    dense = kron_dense([A, B]).real
    assert np.isclose(K.trace(), np.trace(dense), rtol=1e-12)
    assert np.isnan(K.norm()) and np.isnan(np.linalg.norm(dense))
    A[0, 0] = np.nan
    assert np.isnan(matkron.kron(A, B).trace()) and np.isnan(np.trace(kron_dense([A, B])))
