"""matkron.vec / unvec / identity, and the vec identities behind the Kronecker product."""

import numpy as np
import pytest

import matkron

from .conftest import DTYPES, LAYOUTS, assert_allclose_bound, random_array, with_layout

MATRIX_SHAPES = [(3, 4), (4, 3), (1, 5), (5, 1), (1, 1), (0, 3), (3, 0), (0, 0)]


def vec_loops(X):
    """Column stacking by explicit loops: entry (i, j) goes to position i + j * rows."""
    r, c = X.shape
    out = np.empty(r * c, dtype=X.dtype)
    for j in range(c):
        for i in range(r):
            out[i + j * r] = X[i, j]
    return out


def unvec_loops(x, shape):
    r, c = shape
    X = np.empty(shape, dtype=x.dtype)
    for j in range(c):
        for i in range(r):
            X[i, j] = x[i + j * r]
    return X


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", MATRIX_SHAPES, ids=str)
def test_vec(shape, layout, rng):
    X_dense = random_array(rng, shape, np.float64)
    X = with_layout(X_dense, layout)
    v = matkron.vec(X)
    assert v.shape == (X.size,)
    assert v.dtype == X.dtype
    np.testing.assert_array_equal(v, vec_loops(X_dense))
    np.testing.assert_array_equal(v, X_dense.ravel(order="F"))


@pytest.mark.parametrize("dtype", DTYPES + (np.dtype("int64"), np.dtype("bool")), ids=str)
def test_vec_keeps_dtype_and_accepts_lists(dtype, rng):
    X = random_array(rng, (3, 2), dtype)
    v = matkron.vec(X)
    assert v.dtype == dtype
    np.testing.assert_array_equal(v, vec_loops(X))
    np.testing.assert_array_equal(matkron.vec([[1, 2], [3, 4]]), [1, 3, 2, 4])


def test_vec_of_other_ranks():
    # vec is ravel(order="F") for any number of dimensions.
    T = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(matkron.vec(T), T.ravel(order="F"))
    np.testing.assert_array_equal(matkron.vec(np.arange(5)), np.arange(5))


@pytest.mark.parametrize("layout", ["C", "strided", "negative", "readonly", "unaligned"])
@pytest.mark.parametrize("shape", MATRIX_SHAPES, ids=str)
def test_unvec(shape, layout, rng):
    x_dense = random_array(rng, int(np.prod(shape)), np.complex128)
    x = with_layout(x_dense, layout)
    X = matkron.unvec(x, shape)
    assert X.shape == shape
    assert X.dtype == x.dtype
    np.testing.assert_array_equal(X, unvec_loops(x_dense, shape))
    np.testing.assert_array_equal(matkron.vec(X), x_dense)
    np.testing.assert_array_equal(matkron.unvec(matkron.vec(X), shape), X)


def test_unvec_other_shapes():
    x = np.arange(24)
    np.testing.assert_array_equal(matkron.unvec(x, (2, 3, 4)), x.reshape((2, 3, 4), order="F"))
    np.testing.assert_array_equal(matkron.unvec(x, [4, 6]), x.reshape((4, 6), order="F"))
    np.testing.assert_array_equal(matkron.unvec(list(range(6)), (2, 3)), [[0, 2, 4], [1, 3, 5]])


def test_unvec_errors():
    with pytest.raises(ValueError):
        matkron.unvec(np.arange(10), (3, 4))
    with pytest.raises(ValueError):
        matkron.unvec(np.arange(12), (5, 3))
    with pytest.raises(ValueError):
        matkron.unvec(np.arange(12).reshape(3, 4), (3, 4))


def test_identity_factor():
    for n in (0, 1, 4):
        I_n = matkron.identity(n)
        assert I_n.shape == (n, n)
    assert matkron.identity(np.int64(3)).shape == (3, 3)
    with pytest.raises(ValueError):
        matkron.identity(-1)
    with pytest.raises(TypeError):
        matkron.identity(2.5)


# -- vec identities ------------------------------------------------------------------------

# (p, q) of A and (r, s) of B in A ⊗ B, all dimensions different where possible.
IDENTITY_SHAPES = [((2, 3), (4, 5)), ((5, 4), (3, 2)), ((1, 3), (2, 1)), ((3, 3), (1, 1))]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shapes", IDENTITY_SHAPES, ids=str)
def test_vec_BC_is_I_kron_B(shapes, dtype, rng):
    # vec(B C) = (I ⊗ B) vec(C), for C of shape (s, n)
    _, (r, s) = shapes
    n = 3
    B = random_array(rng, (r, s), dtype)
    C = random_array(rng, (s, n), dtype)
    expected = vec_loops(B.astype(complex) @ C.astype(complex))
    bound = vec_loops(np.abs(B) @ np.abs(C))
    got = matkron.kron_matvec([matkron.identity(n), B], matkron.vec(C))
    assert got.dtype == dtype
    assert_allclose_bound(got, expected, bound, dtype)
    got = matkron.kron(matkron.identity(n), B) @ matkron.vec(C)
    assert_allclose_bound(got, expected, bound, dtype)
    # Several right-hand sides: the columns are vec(C_j).
    Cs = [random_array(rng, (s, n), dtype) for _ in range(3)]
    X = np.stack([matkron.vec(Cj) for Cj in Cs], axis=1)
    Y = matkron.kron_matvec([matkron.identity(n), B], X)
    for j, Cj in enumerate(Cs):
        assert_allclose_bound(
            Y[:, j], vec_loops(B.astype(complex) @ Cj), vec_loops(np.abs(B) @ np.abs(Cj)), dtype
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shapes", IDENTITY_SHAPES, ids=str)
def test_vec_CAT_is_A_kron_I(shapes, dtype, rng):
    # vec(C Aᵀ) = (A ⊗ I) vec(C), for C of shape (n, q)
    (p, q), _ = shapes
    n = 4
    A = random_array(rng, (p, q), dtype)
    C = random_array(rng, (n, q), dtype)
    expected = vec_loops(C.astype(complex) @ A.T.astype(complex))
    bound = vec_loops(np.abs(C) @ np.abs(A).T)
    got = matkron.kron_matvec([A, matkron.identity(n)], matkron.vec(C))
    assert got.dtype == dtype
    assert_allclose_bound(got, expected, bound, dtype)
    got = matkron.kron(A, matkron.identity(n)).matvec(matkron.vec(C))
    assert_allclose_bound(got, expected, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shapes", IDENTITY_SHAPES, ids=str)
def test_vec_BCAT_is_A_kron_B(shapes, dtype, rng):
    # vec(B C Aᵀ) = (A ⊗ B) vec(C), for C of shape (s, q)
    (p, q), (r, s) = shapes
    A = random_array(rng, (p, q), dtype)
    B = random_array(rng, (r, s), dtype)
    C = random_array(rng, (s, q), dtype)
    expected = vec_loops(B.astype(complex) @ C @ A.T)
    bound = vec_loops(np.abs(B) @ np.abs(C) @ np.abs(A).T)
    got = matkron.kron_matvec([A, B], matkron.vec(C))
    assert_allclose_bound(got, expected, bound, dtype)
    assert_allclose_bound(
        matkron.unvec(got, (r, p)),
        unvec_loops(expected, (r, p)),
        unvec_loops(bound, (r, p)),
        dtype,
    )
    # The adjoint: vec(Bᴴ D conj(A)) = (A ⊗ B)ᴴ vec(D)
    D = random_array(rng, (r, p), dtype)
    expected = vec_loops(B.conj().T.astype(complex) @ D @ A.conj())
    bound = vec_loops(np.abs(B).T @ np.abs(D) @ np.abs(A))
    assert_allclose_bound(matkron.kron(A, B).H @ matkron.vec(D), expected, bound, dtype)


# -- vec/unvec validate like the rest of matkron, and convert nothing (issue 15, item 9) -----

NOT_NUMERIC = [
    pytest.param(None, id="None"),
    pytest.param("abc", id="str"),
    pytest.param([["a", "b"]], id="list-of-str"),
    pytest.param(np.array([[1, None]], dtype=object), id="object"),
    pytest.param(np.array([1.0, 2.0], dtype=object), id="object-of-floats"),
    pytest.param(np.array(["2024-01-01"], dtype="datetime64[D]"), id="datetime64"),
]
# Numeric, but of dtypes that every other matkron function rejects.
REJECTED_DTYPES = [np.longdouble, np.clongdouble]


@pytest.mark.parametrize("value", NOT_NUMERIC)
def test_vec_rejects_non_numeric_input(value):
    with pytest.raises(TypeError, match=r"^X has dtype \S+; expected a numeric array"):
        matkron.vec(value)


@pytest.mark.parametrize("value", NOT_NUMERIC)
def test_unvec_rejects_non_numeric_input(value):
    with pytest.raises(TypeError, match=r"^x has dtype \S+; expected a numeric array"):
        matkron.unvec(value, (1,))


@pytest.mark.parametrize("dtype", REJECTED_DTYPES, ids=lambda d: np.dtype(d).name)
def test_vec_and_unvec_reject_what_matkron_rejects(dtype):
    X = np.ones((2, 2), dtype=dtype)
    # The oracle: kron_matvec rejects the same dtype.
    with pytest.raises(TypeError):
        matkron.kron_matvec([np.eye(2)], np.ones(2, dtype=dtype))
    with pytest.raises(TypeError, match=rf"^X has unsupported dtype {np.dtype(dtype)}; "):
        matkron.vec(X)
    with pytest.raises(TypeError, match=rf"^x has unsupported dtype {np.dtype(dtype)}; "):
        matkron.unvec(np.ones(4, dtype=dtype), (2, 2))


KEPT_DTYPES = ["f2", "f4", "f8", "c8", "c16", "i1", "u2", "i8", "?", ">f8", ">c16", ">f4", ">i4"]


@pytest.mark.parametrize("dtype", KEPT_DTYPES)
def test_vec_and_unvec_keep_the_dtype_and_view(dtype, rng):
    X = np.asfortranarray(random_array(rng, (3, 4), np.dtype(dtype).newbyteorder("=")))
    X = X.astype(dtype, order="F")
    v = matkron.vec(X)
    assert v.dtype == np.dtype(dtype)  # no conversion, not even of the byte order
    np.testing.assert_array_equal(v, vec_loops(X))
    assert np.shares_memory(v, X)  # Fortran order: a view
    Y = matkron.unvec(v, (3, 4))
    assert Y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(Y, unvec_loops(vec_loops(X), (3, 4)))
    assert np.shares_memory(Y, X)
    strided = np.asarray(v)[::2]  # one stride: still a view
    assert np.shares_memory(matkron.unvec(strided, (2, 3)), v)
    # A C-ordered matrix cannot be column-stacked in place: a copy, of the same dtype.
    C = np.ascontiguousarray(X)
    vc = matkron.vec(C)
    assert vc.dtype == np.dtype(dtype) and not np.shares_memory(vc, C)
    np.testing.assert_array_equal(vc, vec_loops(X))


@pytest.mark.parametrize(
    "shape, error, message",
    [
        ((-2, -2), ValueError, r"^shape\[0\] must be non-negative; got -2"),
        ((2, -2), ValueError, r"^shape\[1\] must be non-negative; got -2"),
        ((2.0, 2), TypeError, r"^shape\[0\] must be an integer; got 2.0"),
        ((2, np.float64(2)), TypeError, r"^shape\[1\] must be an integer"),
        ((True, 4), TypeError, r"^shape\[0\] must be an integer; got the bool True"),
        ([[2, 2]], TypeError, r"^shape\[0\] must be an integer"),
        (np.array([[2, 2]]), TypeError, r"^shape must be an integer or a sequence"),
        ("ab", TypeError, r"^shape must be an integer or a sequence of integers; got 'ab'"),
        (None, TypeError, r"^shape must be an integer or a sequence of integers; got None"),
        (2.5, TypeError, r"^shape must be an integer or a sequence"),
        (-4, ValueError, r"^shape must be non-negative; got -4"),
        ((3, 2), ValueError, r"^x has length 4; expected 6 = 3\*2, the product of shape"),
        ((5,), ValueError, r"^x has length 4; expected 5, the product of shape \(5,\)"),
        ((), ValueError, r"^x has length 4; expected 1, the product of shape \(\)"),
    ],
    ids=str,
)
def test_unvec_shape_errors_name_shape(shape, error, message):
    with pytest.raises(error, match=message):
        matkron.unvec(np.arange(4.0), shape)


def test_unvec_accepts_integer_shapes():
    x = np.arange(6.0)
    for shape in (6, np.int64(6), np.array(6), (np.int32(2), 3), np.array([2, 3]), [2, 3]):
        expected = x.reshape(np.asarray(shape).tolist(), order="F")
        got = matkron.unvec(x, shape)
        np.testing.assert_array_equal(got, expected)
        assert got.shape == expected.shape
