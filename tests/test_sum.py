"""sum_of_kron, SumOfKronOperator arithmetic, kronsum, sylvester and lyapunov.

Oracles: dense matrices built with np.kron in complex128, scipy.sparse.kronsum,
scipy.linalg.solve_sylvester / solve_continuous_lyapunov and np.linalg.solve on the dense
matrix; never matkron itself.
"""

import threading

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, gmres

import matkron

from .conftest import DTYPES, random_array, rtol, with_layout

LAYOUTS_1D = ("C", "strided", "negative", "readonly", "unaligned")
LAYOUTS_2D = ("C", "F", "strided", "mixed", "readonly")


def dense_of(terms, coeffs):
    """Σ c kron(A, B) in complex128; identity factors as np.eye."""
    total = 0
    for c, factors in zip(coeffs, terms):
        mats = [np.eye(f.shape[0]) if isinstance(f, type(matkron.identity(1)))
                else np.asarray(f, dtype=np.complex128) for f in factors]
        prod = mats[0]
        for f in mats[1:]:
            prod = np.kron(prod, f)
        total = total + c * prod
    return total


def dense_abs(terms, coeffs):
    return dense_of([[np.abs(np.asarray(f)) if not isinstance(f, type(matkron.identity(1)))
                      else f for f in t] for t in terms], np.abs(coeffs))


def assert_matches(y, dense, absdense, x, dtype):
    """y == dense @ x up to rtol(dtype) times the forward-error bound |dense| |x|."""
    assert y.dtype == dtype, (y.dtype, dtype)
    ref = dense @ np.asarray(x, dtype=np.complex128)
    bound = absdense @ np.abs(np.asarray(x, dtype=np.complex128))
    assert y.shape == ref.shape
    assert np.all(np.abs(y - ref) <= rtol(dtype) * (bound + 1)), np.abs(y - ref).max()


def mixed_terms(rng, dtype):
    """Three terms whose factor shapes differ but whose products are all 6×12."""
    terms = [
        (random_array(rng, (2, 3), dtype), random_array(rng, (3, 4), dtype)),
        (random_array(rng, (6, 12), dtype), random_array(rng, (1, 1), dtype)),
        (matkron.identity(3), random_array(rng, (2, 4), dtype)),
    ]
    return terms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS_1D)
def test_sum_of_kron_matvec_matches_dense(rng, dtype, layout):
    terms = mixed_terms(rng, dtype)
    coeffs = [2.0, -0.5, 1.5]
    S = matkron.sum_of_kron(terms, coeffs)
    assert S.shape == (6, 12) and S.dtype == dtype
    x = with_layout(random_array(rng, 12, dtype), layout)
    y = S @ x
    assert_matches(y, dense_of(terms, coeffs), dense_abs(terms, coeffs), x, dtype)
    assert_matches(S.matvec(x), dense_of(terms, coeffs), dense_abs(terms, coeffs), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS_2D)
def test_sum_of_kron_matmat_and_adjoint(rng, dtype, layout):
    terms = mixed_terms(rng, dtype)
    coeffs = [1.0, 2.0, -1.0]
    S = matkron.sum_of_kron(terms, coeffs)
    D, Dabs = dense_of(terms, coeffs), dense_abs(terms, coeffs)
    X = with_layout(random_array(rng, (12, 5), dtype), layout)
    assert_matches(S.matmat(X), D, Dabs, X, dtype)
    Y = with_layout(random_array(rng, (6, 3), dtype), layout)
    assert_matches(S.rmatmat(Y), D.conj().T, Dabs.T, Y, dtype)
    assert_matches(S.H @ Y, D.conj().T, Dabs.T, Y, dtype)
    assert_matches(S.T @ Y, D.T, Dabs.T, Y, dtype)
    y = random_array(rng, 6, dtype)
    assert_matches(S.rmatvec(y), D.conj().T, Dabs.T, y, dtype)
    # <S x, y> = <x, Sᴴ y>
    x = random_array(rng, 12, dtype)
    lhs = np.vdot(y, S @ x)
    rhs = np.vdot(S.rmatvec(y), x)
    assert abs(lhs - rhs) <= 100 * rtol(dtype) * (1 + abs(lhs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_todense_and_terms(rng, dtype):
    terms = mixed_terms(rng, dtype)
    S = matkron.sum_of_kron(terms)
    np.testing.assert_allclose(S.todense(), dense_of(terms, [1, 1, 1]),
                               rtol=rtol(dtype), atol=rtol(dtype))
    assert len(S.terms) == 3
    for (c, A, B), (A0, B0) in zip(S.terms, terms):
        assert c == 1
        assert A.shape == A0.shape and B.shape == B0.shape


@settings(max_examples=40, deadline=None)
@given(
    dims=st.lists(st.integers(0, 4), min_size=4, max_size=4),
    coeffs=st.lists(st.floats(-3, 3, allow_nan=False), min_size=3, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    columns=st.sampled_from([None, 1, 3]),
)
def test_sum_of_kron_hypothesis(dims, coeffs, seed, columns):
    """Random shapes, including empty ones: three terms with one product shape."""
    rng = np.random.default_rng(seed)
    p1, q1, p2, q2 = dims
    terms = [
        (rng.standard_normal((p1, q1)), rng.standard_normal((p2, q2))),
        (rng.standard_normal((p1 * p2, q1 * q2)), rng.standard_normal((1, 1))),
        (rng.standard_normal((1, 1)), rng.standard_normal((p1 * p2, q1 * q2))),
    ]
    S = matkron.sum_of_kron(terms, coeffs)
    assert S.shape == (p1 * p2, q1 * q2)
    shape = (q1 * q2,) if columns is None else (q1 * q2, columns)
    x = rng.standard_normal(shape)
    dense = dense_of(terms, coeffs).real
    bound = dense_abs(terms, coeffs).real @ np.abs(x)
    y = S @ x
    assert y.shape == (p1 * p2,) + shape[1:]
    assert np.all(np.abs(y - dense @ x) <= 1e-12 * (bound + 1))


def test_coefficient_dtype_policy(rng):
    A = random_array(rng, (2, 2), np.float32)
    B = random_array(rng, (3, 3), np.float32)
    assert matkron.sum_of_kron([(A, B)], [2.0]).dtype == np.float32
    S = matkron.sum_of_kron([(A, B)], [1j])
    assert S.dtype == np.complex64
    x = random_array(rng, 6, np.float32)
    np.testing.assert_allclose(S @ x, 1j * (np.kron(A, B) @ x), rtol=1e-5, atol=1e-5)
    # ints are computed in float64; a complex operand promotes the result
    Si = matkron.sum_of_kron([(np.eye(2, dtype=int), np.ones((3, 3), dtype=int))])
    assert Si.dtype == np.float64
    z = random_array(rng, 6, np.complex128)
    np.testing.assert_allclose(Si @ z, np.kron(np.eye(2), np.ones((3, 3))) @ z, rtol=1e-13)


def test_zero_size_and_empty_rhs(rng):
    S = matkron.sum_of_kron([(np.zeros((0, 2)), np.ones((3, 3)))])
    assert S.shape == (0, 6)
    assert (S @ np.ones(6)).shape == (0,)
    assert (S.rmatvec(np.ones(0)) == 0).all() and S.rmatvec(np.ones(0)).shape == (6,)
    T = matkron.sum_of_kron([(np.ones((2, 2)), np.ones((2, 2)))])
    assert T.matmat(np.ones((4, 0))).shape == (4, 0)


def test_inputs_not_modified(rng):
    A, B = random_array(rng, (3, 3), np.float64), random_array(rng, (2, 2), np.float64)
    x = random_array(rng, 6, np.float64)
    copies = [a.copy() for a in (A, B, x)]
    S = matkron.sum_of_kron([(A, B), (matkron.identity(3), B)], [1.0, 3.0])
    S @ x
    S.rmatvec(x)
    for a, c in zip((A, B, x), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kron_operator_arithmetic(rng, dtype):
    A, B, C, D = (random_array(rng, s, dtype) for s in ((2, 3), (4, 2), (2, 3), (4, 2)))
    K1, K2 = matkron.kron(A, B), matkron.kron(C, D)
    d1, d2 = np.kron(A, B).astype(np.complex128), np.kron(C, D).astype(np.complex128)
    x = random_array(rng, 6, dtype)
    cases = {
        "K1 + K2": (K1 + K2, d1 + d2),
        "K1 - K2": (K1 - K2, d1 - d2),
        "-K1": (-K1, -d1),
        "2 * K1": (2 * K1, 2 * d1),
        "K1 * 3": (K1 * 3, 3 * d1),
        "(K1 + K2) - K2 * 0.5": ((K1 + K2) - K2 * 0.5, d1 + 0.5 * d2),
        "-(K1 + K2) / 2": (-(K1 + K2) / 2, -(d1 + d2) / 2),
        "K1 + (2 * K2)": (K1 + (2 * K2), d1 + 2 * d2),
    }
    bound = (np.abs(np.kron(A, B)) + np.abs(np.kron(C, D))) @ np.abs(x) * 3 + 1
    for name, (op, dense) in cases.items():
        # Scalar multiples of one product stay Kronecker products (the scalar carried).
        kind = matkron.SumOfKronOperator if "K2" in name else matkron.KronOperator
        assert isinstance(op, kind), name
        y = op @ x
        assert y.dtype == dtype, name
        assert np.all(np.abs(y - dense @ x) <= rtol(dtype) * bound), name


def test_kron_operator_arithmetic_falls_back(rng):
    A, B = random_array(rng, (2, 2), np.float64), random_array(rng, (3, 3), np.float64)
    K = matkron.kron(A, B)
    M = random_array(rng, (6, 6), np.float64)
    L = LinearOperator((6, 6), matvec=lambda v: M @ v, dtype=np.float64)
    S = K + L
    assert not isinstance(S, matkron.SumOfKronOperator)
    x = random_array(rng, 6, np.float64)
    np.testing.assert_allclose(S @ x, (np.kron(A, B) + M) @ x, rtol=1e-12)
    np.testing.assert_allclose(K @ np.eye(6), np.kron(A, B), rtol=1e-12)
    with pytest.raises(ValueError):
        K + matkron.kron(A, A)


def test_sum_of_kron_errors(rng):
    A = np.ones((2, 2))
    with pytest.raises(ValueError, match="at least one"):
        matkron.sum_of_kron([])
    with pytest.raises(ValueError, match=r"terms\[1\]"):
        matkron.sum_of_kron([(A, A), (A, np.ones((3, 3)))])
    with pytest.raises(ValueError, match="coeffs has 1 entries"):
        matkron.sum_of_kron([(A, A), (A, A)], [1.0])
    with pytest.raises(TypeError, match=r"coeffs\[0\]"):
        matkron.sum_of_kron([(A, A)], ["a"])
    with pytest.raises(TypeError, match=r"terms\[0\]"):
        matkron.sum_of_kron([A])
    with pytest.raises(TypeError, match="terms"):
        matkron.sum_of_kron(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"terms\[0\]"):
        matkron.sum_of_kron([(np.ones(3), A)])
    with pytest.raises(TypeError):
        matkron.sum_of_kron([(np.array(["a"]).reshape(1, 1), A)])
    S = matkron.sum_of_kron([(A, A)])
    with pytest.raises(ValueError, match="x has shape"):
        S @ np.ones(3)


def test_threads_share_one_operator(rng):
    terms = [(random_array(rng, (8, 8), np.float64), random_array(rng, (9, 9), np.float64)),
             (matkron.identity(8), random_array(rng, (9, 9), np.float64))]
    S = matkron.sum_of_kron(terms, [1.0, -2.0])
    dense = dense_of(terms, [1.0, -2.0]).real
    xs = [random_array(rng, (72, 3), np.float64) for _ in range(8)]
    results = [None] * len(xs)

    def work(i):
        for _ in range(20):
            results[i] = S @ xs[i]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, y in zip(xs, results):
        np.testing.assert_allclose(y, dense @ x, rtol=1e-12, atol=1e-12)


# -- Kronecker sums ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_kronsum_matches_scipy(rng, dtype):
    A, B, C = (random_array(rng, (k, k), dtype) for k in (3, 4, 2))
    K = matkron.kronsum(A, B)
    ref = scipy.sparse.kronsum(A.astype(np.complex128), B.astype(np.complex128)).toarray()
    np.testing.assert_allclose(K.todense(), ref, rtol=rtol(dtype), atol=rtol(dtype))
    x = random_array(rng, 12, dtype)
    X = x.reshape(3, 4, order="F").astype(np.complex128)
    vec_ref = (A @ X + X @ B.T).ravel(order="F")
    np.testing.assert_allclose(K @ x, vec_ref, rtol=10 * rtol(dtype), atol=10 * rtol(dtype))
    K3 = matkron.kronsum(A, B, C)
    ref3 = scipy.sparse.kronsum(scipy.sparse.kronsum(A, B), C).toarray()
    np.testing.assert_allclose(K3.todense(), ref3, rtol=rtol(dtype), atol=rtol(dtype))
    y = random_array(rng, 24, dtype)
    np.testing.assert_allclose(K3 @ y, ref3.astype(np.complex128) @ y,
                               rtol=10 * rtol(dtype), atol=10 * rtol(dtype))
    np.testing.assert_allclose(K3.rmatvec(y), ref3.conj().T.astype(np.complex128) @ y,
                               rtol=10 * rtol(dtype), atol=10 * rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sylvester_and_lyapunov_operators(rng, dtype):
    A, B = random_array(rng, (3, 3), dtype), random_array(rng, (5, 5), dtype)
    X = random_array(rng, (3, 5), dtype)
    S = matkron.sylvester(A, B)
    ref = (A.astype(complex) @ X + X @ B.astype(complex)).ravel(order="F")
    np.testing.assert_allclose(S @ X.ravel(order="F"), ref, rtol=10 * rtol(dtype),
                               atol=10 * rtol(dtype))
    L = matkron.lyapunov(A)
    Y = random_array(rng, (3, 3), dtype)
    Ac = A.astype(complex)
    ref = (Ac @ Y + Y @ Ac.conj().T).ravel(order="F")
    np.testing.assert_allclose(L @ Y.ravel(order="F"), ref, rtol=10 * rtol(dtype),
                               atol=10 * rtol(dtype))
    dense = np.kron(np.eye(3), Ac) + np.kron(Ac.conj(), np.eye(3))    # A ⊕ conj(A)
    np.testing.assert_allclose(L.todense(), dense, rtol=rtol(dtype), atol=rtol(dtype))
    np.testing.assert_allclose(L.H.todense(), dense.conj().T, rtol=rtol(dtype),
                               atol=rtol(dtype))


def solve_tol(dtype):
    """Tolerance of a solve of a well-conditioned system in `dtype`."""
    return 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9


def well_conditioned(rng, k, dtype):
    """A random k×k matrix with eigenvalues' real parts in [2, 4]."""
    return (random_array(rng, (k, k), dtype) * 0.3 / np.sqrt(k)
            + 3 * np.eye(k, dtype=dtype)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sylvester_solve_matches_scipy(rng, dtype):
    A, B = well_conditioned(rng, 4, dtype), well_conditioned(rng, 3, dtype)
    C = random_array(rng, (4, 3), dtype)
    S = matkron.sylvester(A, B)
    x = S.solve(C.ravel(order="F"))
    assert x.dtype == dtype and x.shape == (12,)
    ref = scipy.linalg.solve_sylvester(A.astype(np.complex128), B.astype(np.complex128),
                                       C.astype(np.complex128))
    np.testing.assert_allclose(x.reshape(4, 3, order="F"), ref, rtol=solve_tol(dtype),
                               atol=solve_tol(dtype))
    # several right-hand sides as columns
    Bs = random_array(rng, (12, 3), dtype)
    Xs = S.solve(Bs)
    assert Xs.shape == (12, 3)
    for j in range(3):
        r = scipy.linalg.solve_sylvester(A.astype(complex), B.astype(complex),
                                         Bs[:, j].reshape(4, 3, order="F").astype(complex))
        np.testing.assert_allclose(Xs[:, j], r.ravel(order="F"), rtol=solve_tol(dtype),
                                   atol=solve_tol(dtype))


def test_gmres_on_sylvester_reaches_the_same_solution(rng):
    A, B = well_conditioned(rng, 6, np.float64), well_conditioned(rng, 5, np.float64)
    C = random_array(rng, (6, 5), np.float64)
    S = matkron.sylvester(A, B)
    b = C.ravel(order="F")
    x, info = gmres(S, b, rtol=1e-12, atol=0, restart=30, maxiter=200)
    assert info == 0
    ref = scipy.linalg.solve_sylvester(A, B, C).ravel(order="F")
    np.testing.assert_allclose(x, ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(S.solve(b), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lyapunov_solve_matches_scipy(rng, dtype):
    A = -well_conditioned(rng, 4, dtype)
    Q = random_array(rng, (4, 4), dtype)
    X = matkron.lyapunov(A).solve(Q.ravel(order="F")).reshape(4, 4, order="F")
    ref = scipy.linalg.solve_continuous_lyapunov(A.astype(complex), Q.astype(complex))
    np.testing.assert_allclose(X, ref, rtol=solve_tol(dtype), atol=solve_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hermitian", [True, False])
def test_kronsum_solve_three_factors(rng, dtype, hermitian):
    mats = []
    for k in (3, 2, 4):
        M = well_conditioned(rng, k, dtype)
        if hermitian:
            M = ((M + M.conj().T) / 2).astype(dtype)
        mats.append(M)
    K = matkron.kronsum(*mats)
    dense = scipy.sparse.kronsum(scipy.sparse.kronsum(mats[0], mats[1]), mats[2]).toarray()
    b = random_array(rng, (24, 2), dtype)
    x = K.solve(b)
    assert x.dtype == dtype and x.shape == (24, 2)
    ref = np.linalg.solve(dense.astype(np.complex128), b.astype(np.complex128))
    np.testing.assert_allclose(x, ref, rtol=solve_tol(dtype), atol=solve_tol(dtype))
    x1 = K.solve(b[:, 0])
    np.testing.assert_allclose(x1, ref[:, 0], rtol=solve_tol(dtype), atol=solve_tol(dtype))


def test_kronsum_solve_one_factor_and_adjoint(rng):
    A = well_conditioned(rng, 5, np.float64)
    b = random_array(rng, 5, np.float64)
    np.testing.assert_allclose(matkron.kronsum(A).solve(b), np.linalg.solve(A, b), rtol=1e-12)
    B = well_conditioned(rng, 3, np.float64)
    K = matkron.kronsum(A, B, A)
    # kronsum(kronsum(A, B), A) = I ⊗ I ⊗ A + I ⊗ B ⊗ I + A ⊗ I ⊗ I
    dense = (np.kron(np.eye(15), A) + np.kron(np.kron(np.eye(5), B), np.eye(5))
             + np.kron(A, np.eye(15)))
    c = random_array(rng, 75, np.float64)
    np.testing.assert_allclose(K.H.solve(c), np.linalg.solve(dense.T, c), rtol=1e-9)


def test_singular_kronsum_raises():
    A = np.diag([1.0, 2.0])
    B = np.diag([-1.0, 3.0])  # λ(A) + λ(B) = 0
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.kronsum(A, B).solve(np.ones(4))           # Hermitian factors
    N = np.array([[1.0, 5.0], [0.0, 2.0]])
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.sylvester(N, np.array([[-2.0, 0.0], [1.0, 4.0]])).solve(np.ones(4))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.kronsum(N, np.array([[-1.0, 1.0], [0.0, 7.0]]), np.zeros((2, 2))).solve(
            np.ones(8))


def test_kronsum_errors():
    with pytest.raises(ValueError, match="at least one"):
        matkron.kronsum()
    with pytest.raises(ValueError, match=r"mats\[1\] must be a square matrix"):
        matkron.kronsum(np.eye(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match="B must be a square matrix"):
        matkron.sylvester(np.eye(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match="A must be a square matrix"):
        matkron.lyapunov(np.ones(3))
    with pytest.raises(ValueError, match="b has shape"):
        matkron.kronsum(np.eye(2), np.eye(2)).solve(np.ones(3))


@pytest.mark.parametrize("dtype", [">f8", ">c16"])
def test_byte_swapped_operands(rng, dtype):
    # Non-native byte order is converted, never handed to BLAS as if it were native.
    native = np.dtype(dtype).newbyteorder("=")
    terms = mixed_terms(rng, native)
    coeffs = [2.0, -1.0, 0.5]
    swapped = [tuple(f if isinstance(f, type(matkron.identity(1))) else f.astype(dtype)
                     for f in t) for t in terms]
    dense, absdense = dense_of(terms, coeffs), dense_abs(terms, coeffs)
    x = random_array(rng, (12, 2), native)
    for S in (matkron.sum_of_kron(swapped, coeffs), matkron.sum_of_kron(terms, coeffs)):
        assert S.dtype == native
        for operand in (x.astype(dtype), np.asfortranarray(x).astype(dtype),
                        x[:, 0].astype(dtype)):
            assert_matches(S @ operand, dense, absdense, operand, native)
        y = random_array(rng, 6, native).astype(dtype)
        assert_matches(S.rmatvec(y), dense.conj().T, absdense.T, y, native)
    mats = [well_conditioned(rng, k, native) for k in (3, 2, 4)]
    sym = [((M + M.conj().T) / 2).astype(native) for M in mats]
    for factors in (mats[:2], mats, sym):
        K = matkron.kronsum(*(M.astype(dtype) for M in factors))
        assert K.dtype == native
        dense = np.zeros((1, 1))
        for M in factors:   # kronsum(A, B) = kron(I, A) + kron(B, I)
            dense = (np.kron(np.eye(M.shape[0]), dense)
                     + np.kron(M.astype(np.complex128), np.eye(dense.shape[0])))
        n = dense.shape[0]
        b = random_array(rng, (n, 2), native)
        for operand in (b.astype(dtype), b[:, 0].astype(dtype)):
            np.testing.assert_allclose(K @ operand, dense @ operand.astype(np.complex128),
                                       rtol=1e-12, atol=1e-12)
            x = K.solve(operand)
            assert x.dtype == native
            np.testing.assert_allclose(x, np.linalg.solve(dense, operand.astype(np.complex128)),
                                       rtol=1e-9, atol=1e-10)



def test_adjoint_is_built_once(rng):
    # rmatvec goes through the adjoint operator, which is built once and cached both ways.
    A, C = (random_array(rng, (2, 3), np.complex128) for _ in range(2))
    B, D = (random_array(rng, (4, 2), np.complex128) for _ in range(2))
    M, N = well_conditioned(rng, 3, np.complex128), well_conditioned(rng, 2, np.complex128)
    cases = [
        (matkron.sum_of_kron([(A, B), (C, D)], [1.0, 2j]),
         np.kron(A, B) + 2j * np.kron(C, D)),
        (matkron.kronsum(M, N), np.kron(np.eye(2), M) + np.kron(N, np.eye(3))),
    ]
    for op, dense in cases:
        adj = op.H
        assert adj is op.H and adj.H is op
        y = random_array(rng, op.shape[0], np.complex128)
        for _ in range(2):
            np.testing.assert_allclose(op.rmatvec(y), dense.conj().T @ y, rtol=1e-12)
            np.testing.assert_allclose(op.rmatmat(y[:, None])[:, 0], dense.conj().T @ y,
                                       rtol=1e-12)
        assert op.H is adj


def test_products_promote_with_the_factors_own_dtypes(rng):
    # As kron_matvec: int8 factors times float32 x is float32 (np.result_type), although
    # the operator computes in float64; sums, multiples and adjoints keep that.
    A = rng.integers(-5, 5, (3, 3)).astype(np.int8)
    B = rng.integers(-5, 5, (2, 2)).astype(np.int8)
    x = random_array(rng, 6, np.float32)
    K = matkron.kron(A, B)
    dense = np.kron(A, B).astype(np.float64)
    ops = {
        "sum_of_kron": (matkron.sum_of_kron([(A, B)]), dense),
        "K + K": (K + K, 2 * dense),
        "K - 3 K": (K - 3 * K, -2 * dense),
        "2 * K": (2 * K, 2 * dense),
        "K / 2": (matkron.sum_of_kron([(A, B)]) / 2, dense / 2),
        "-S": (-matkron.sum_of_kron([(A, B)]), -dense),
        "S + K": (matkron.sum_of_kron([(A, B)], [0.5]) + K, 1.5 * dense),
        "(K + K) + K": ((K + K) + K, 3 * dense),
    }
    expected = np.result_type(A, B, x)
    assert expected == np.float32
    for name, (op, D) in ops.items():
        for y, ref in ((op @ x, D @ x), (op.H @ x, D.T @ x), (op.T @ x, D.T @ x),
                       (op @ np.stack([x, x], 1), D @ np.stack([x, x], 1))):
            assert y.dtype == expected, name
            np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
        assert (op @ x.astype(np.float64)).dtype == np.float64
    # Coefficients: Python numbers are weak, NumPy scalars and arrays are not.
    assert (matkron.sum_of_kron([(A, B)], [2.5]) @ x).dtype == np.float32
    assert (matkron.sum_of_kron([(A, B)], [1j]) @ x).dtype == np.complex64
    assert (matkron.sum_of_kron([(A, B)], [np.float64(2.5)]) @ x).dtype == np.float64
    assert (matkron.sum_of_kron([(A, B)], np.array([2.5])) @ x).dtype == np.float64
    assert (1j * K @ x).dtype == np.complex64
    # Kronecker sums, their adjoint and solve.
    M = (np.diag([4, 5, 6]) + np.triu(np.ones((3, 3)), 1)).astype(np.int8)
    N = np.array([[3, 1], [0, 2]], np.int8)
    L = matkron.kronsum(M, N)
    LD = (np.kron(np.eye(2), M) + np.kron(N, np.eye(3))).astype(np.float64)
    for y, ref in ((L @ x, LD @ x), (L.H @ x, LD.T @ x)):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    sol = L.solve(x)
    assert sol.dtype == np.float32
    np.testing.assert_allclose(sol, np.linalg.solve(LD, x.astype(np.float64)), rtol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_factor_solve_caches_its_schur_forms(rng, dtype, monkeypatch):
    # Non-Hermitian A ⊕ B: the Schur forms are computed once, on the first solve, and every
    # solve (1-D b, several columns, the adjoint's) matches np.linalg.solve on the dense sum.
    A, B = well_conditioned(rng, 4, dtype), well_conditioned(rng, 3, dtype)
    K = matkron.kronsum(A, B)
    dense = (np.kron(np.eye(3), A.astype(np.complex128))
             + np.kron(B.astype(np.complex128), np.eye(4)))
    calls = []
    schur = scipy.linalg.schur
    monkeypatch.setattr(scipy.linalg, "schur", lambda *a, **k: calls.append(1) or schur(*a, **k))
    monkeypatch.setattr(scipy.linalg, "solve_sylvester", None)
    tol = solve_tol(dtype)
    for _ in range(2):
        for b in (random_array(rng, 12, dtype), random_array(rng, (12, 5), dtype)):
            x = K.solve(b)
            assert x.dtype == dtype and x.shape == b.shape
            np.testing.assert_allclose(x, np.linalg.solve(dense, b), rtol=tol, atol=tol)
            np.testing.assert_allclose(K.H.solve(b), np.linalg.solve(dense.conj().T, b),
                                       rtol=tol, atol=tol)
    assert len(calls) == 4  # two factors, for K and for K.H, once each


# -- Kronecker sums of order 0 (issue 15, item 8) ------------------------------------------


def _kronsum_dense(mats):
    """kronsum(A1, A2, …) = Σ I ⊗ … ⊗ Ai ⊗ … ⊗ I with A1 fastest, by np.kron."""
    dense = np.zeros((1, 1))
    for M in mats:  # kronsum(A, B) = kron(I_n, A) + kron(B, I_m)
        dense = np.kron(np.eye(M.shape[0]), dense) + np.kron(M, np.eye(dense.shape[0]))
    return dense


EMPTY = np.zeros((0, 0))
SINGULAR = np.ones((2, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "make, mats",
    [
        (lambda A, B: matkron.sylvester(A, B), [EMPTY, SINGULAR]),
        (lambda A, B: matkron.sylvester(A, B), [SINGULAR, EMPTY]),
        (lambda A: matkron.lyapunov(A), [EMPTY]),
        (lambda *m: matkron.kronsum(*m), [EMPTY, SINGULAR]),
        (lambda *m: matkron.kronsum(*m), [SINGULAR, EMPTY, np.eye(3)]),
        (lambda *m: matkron.kronsum(*m), [np.full((2, 2), np.nan), EMPTY]),
    ],
    ids=["sylvester(0x0, B)", "sylvester(A, 0x0)", "lyapunov(0x0)", "kronsum(0x0, B)",
         "kronsum(A, 0x0, C)", "kronsum(nan, 0x0)"],
)
def test_solve_of_order_zero(make, mats, dtype):
    mats = [M.astype(dtype) for M in mats]
    K = make(*mats)
    dense = _kronsum_dense(mats if len(mats) > 1 or K.factors[0].shape != (0, 0)
                           else mats * 2).astype(dtype)
    assert K.shape == dense.shape == (0, 0)
    np.testing.assert_array_equal(K.todense(), dense)
    for b in (np.ones(0, dtype), np.ones((0, 2), dtype)):
        x = K.solve(b)
        expected = np.linalg.solve(dense, b)
        assert x.shape == expected.shape == b.shape
        assert x.dtype == expected.dtype == dtype
        assert (K @ b).shape == b.shape


# -- Kronecker sums with NaN or inf factors (issue 15, item 7d) ----------------------------


def _nonfinite(value, n, hermitian):
    M = np.diag(np.arange(1.0, n + 1)) + 0.1
    if hermitian:
        M[0, 0] = value  # a symmetric matrix: the eigh path
    else:
        M[n - 1, 0] = value
    return M


@pytest.mark.parametrize("hermitian", [True, False], ids=["eigh", "schur"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=str)
def test_solve_names_a_nonfinite_factor(value, hermitian):
    bad = _nonfinite(value, 3, hermitian)
    good = np.diag([1.0, 2.0, 3.0, 4.0])
    cases = [
        (matkron.sylvester(bad, good), "A"),
        (matkron.sylvester(good, bad), "B"),
        (matkron.lyapunov(bad), "A"),
        (matkron.kronsum(good, np.eye(2), bad), r"mats\[2\]"),
        (matkron.kronsum(bad, matkron.identity(2)), r"mats\[0\]"),
        (matkron.KronSumOperator([good, bad]), r"factors\[1\]"),
    ]
    for K, name in cases:
        n = K.shape[0]
        message = rf"^{name} contains NaN or inf; solve needs finite factors$"
        # Before any decomposition (no SciPy "array must not contain infs or NaNs", no
        # RuntimeWarning from the Hermitian test), for every right-hand side and the adjoint.
        for b in (np.ones(n), np.ones((n, 3)), np.ones((n, 0))):
            with pytest.raises(ValueError, match=message):
                K.solve(b)
        with pytest.raises(ValueError, match=message):
            K.H.solve(np.ones(n))
        with pytest.raises(ValueError, match=message):
            K.T.solve(np.ones(n))


def test_result_beyond_blas_range_raises_before_allocating():
    # The (2**32,) result (32 GiB) is refused before it is allocated.
    tall = np.ones((2**16, 1))
    S = matkron.sum_of_kron([(tall, tall), (tall, tall)])
    with pytest.raises(ValueError, match=r"the result would have shape \(4294967296,\)"):
        S @ np.ones(1)


@pytest.mark.parametrize("kind", ["real", "symmetric", "complex"])
@pytest.mark.parametrize("shape", [(5, 5), (4, 7), (130, 61), (61, 130)])
def test_solve_sylvester_and_lyapunov_drop_ins(kind, shape, rng):
    # Against SciPy's functions, matrix in and matrix out, with the same meaning.
    m, n = shape
    dtype = np.complex128 if kind == "complex" else np.float64
    a = random_array(rng, (m, m), dtype) + m * np.eye(m)
    b = random_array(rng, (n, n), dtype) + n * np.eye(n)
    if kind == "symmetric":
        a, b = a + a.T, b + b.T
    q = random_array(rng, (m, n), dtype)
    x = matkron.solve_sylvester(a, b, q)
    expected = scipy.linalg.solve_sylvester(a, b, q)
    np.testing.assert_allclose(x, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a @ x + x @ b, q, rtol=1e-10, atol=1e-12)
    qs = random_array(rng, (m, m), dtype)
    y = matkron.solve_continuous_lyapunov(a, qs)
    np.testing.assert_allclose(y, scipy.linalg.solve_continuous_lyapunov(a, qs),
                               rtol=1e-10, atol=1e-12)
    # A second right-hand side on one operator reuses its decompositions; several at once.
    op = matkron.sylvester(a, b)
    qq = random_array(rng, (m * n, 3), dtype)
    got = op.solve(qq)
    for j in range(3):
        col = scipy.linalg.solve_sylvester(a, b, qq[:, j].reshape(m, n, order="F"))
        np.testing.assert_allclose(got[:, j], col.ravel(order="F"), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"q has shape \(2, 2\); expected"):
        matkron.solve_sylvester(a, b, np.ones((2, 2)))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
@pytest.mark.parametrize("leaf", [2, 5, 128])
def test_recursive_quasi_triangular_sylvester(dtype, leaf, rng, monkeypatch):
    # Small leaves split the Schur forms everywhere, across their 2×2 blocks too (128:
    # one leaf): the blocked solve must equal SciPy's whole-matrix one.
    from matkron import _kronsum_solve

    monkeypatch.setattr(_kronsum_solve, "LEAF", leaf)
    a = random_array(rng, (23, 23), dtype)
    b = random_array(rng, (17, 17), dtype)
    q = random_array(rng, (23, 17), dtype)
    x = matkron.solve_sylvester(a, b, q)
    expected = scipy.linalg.solve_sylvester(a.astype(np.complex128 if dtype == np.complex128
                                                     else np.float64), b, q)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(x, expected, rtol=tol, atol=tol * np.abs(expected).max())
    if dtype == np.float64:
        t, _ = scipy.linalg.schur(a, output="real")
        assert np.count_nonzero(np.diag(t, -1)), "no 2×2 block to split around"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("s_transposed", [False, True])
@pytest.mark.parametrize("m, n", [(1, 1), (2, 2), (9, 6), (5, 12)])
def test_quasi_triangular_leaf_against_the_kronecker_system(dtype, s_transposed, m, n, rng):
    # One leaf of the compiled back substitution: real Schur forms with 2×2 blocks in both
    # R and S (1×1, 2×2 and 4×4 block systems), complex triangular ones, three right-hand
    # sides; the oracle solves (I ⊗ R + op(S)ᵀ ⊗ I) vec(Y) = vec(C) densely.
    from matkron._kronsum_solve import quasi_triangular_sylvester_solve

    real = np.dtype(dtype).kind == "f"
    wide = np.complex128 if not real else np.float64
    r = scipy.linalg.schur(random_array(rng, (m, m), wide), output="real" if real
                           else "complex")[0]
    s = scipy.linalg.schur(random_array(rng, (n, n), wide) + 3 * np.eye(n),
                           output="real" if real else "complex")[0]
    if real and m >= 9 and n >= 6:
        assert np.count_nonzero(np.diag(r, -1)) and np.count_nonzero(np.diag(s, -1))
    c = random_array(rng, (m, 3, n), wide)
    y = quasi_triangular_sylvester_solve(r.astype(dtype), s.astype(dtype), c.astype(dtype),
                                         s_transposed=s_transposed)
    assert y.dtype == dtype and y.shape == (m, 3, n)
    op_s = s.T if s_transposed else s
    system = np.kron(np.eye(n), r) + np.kron(op_s.T, np.eye(m))
    tol = 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10
    for j in range(3):
        expected = np.linalg.solve(system, c[:, j, :].ravel(order="F")).reshape(
            m, n, order="F")
        np.testing.assert_allclose(y[:, j, :], expected, rtol=tol,
                                   atol=tol * np.abs(expected).max())


def test_quasi_triangular_leaf_overflow_goes_to_trsyl():
    # A solution beyond the float64 range: the unscaled back substitution overflows and
    # the leaf is solved again by trsyl, whose scaled solution overflows in the unscaling
    # (numpy's overflow warning, as before the compiled leaf): inf, and no error.
    from matkron._kronsum_solve import quasi_triangular_sylvester_solve

    with pytest.warns(RuntimeWarning, match="overflow"):
        y = quasi_triangular_sylvester_solve(np.array([[1e-10]]), np.array([[1e-10]]),
                                             np.full((1, 1, 1), 1e300))
    assert np.isinf(y).all()


@pytest.mark.parametrize("m", [1, 2])
def test_quasi_triangular_leaf_intermediate_overflow_goes_to_trsyl(m):
    # A finite solution whose unscaled back substitution overflows on the way: the leaf
    # is redone by trsyl from the untouched right-hand side (one row of C included,
    # whose transposed copy is contiguous already). Oracle: LAPACK's trsyl on the whole.
    from matkron._kronsum_solve import quasi_triangular_sylvester_solve

    s = np.array([[1e300, 1e308, -1e308], [0.0, 1e300, 0.0], [0.0, 0.0, 1e300]])
    r = np.zeros((m, m))
    c = np.tile([1.5e308, 1e300, 1e300], (m, 1))
    y = quasi_triangular_sylvester_solve(r, s, c[:, np.newaxis, :], s_transposed=True)
    x, scale, info = scipy.linalg.lapack.dtrsyl(r, s, c, trana="N", tranb="T")
    assert info == 0 and np.isfinite(y).all()
    np.testing.assert_allclose(y[:, 0, :], x / scale, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_sylvester_and_lyapunov_solve_the_matrix_form(dtype, rng):
    # C given as the matrix of the equation gives X as a matrix; SciPy is the oracle.
    A = random_array(rng, (5, 5), dtype) + 3 * np.eye(5)
    B = random_array(rng, (3, 3), dtype) + 3 * np.eye(3)
    C = random_array(rng, (5, 3), dtype)
    X = matkron.sylvester(A, B).solve(C)
    assert X.shape == (5, 3)
    np.testing.assert_allclose(X, scipy.linalg.solve_sylvester(A, B, C), rtol=1e-10,
                               atol=1e-12)
    Q = random_array(rng, (5, 5), dtype)
    np.testing.assert_allclose(matkron.lyapunov(A).solve(Q),
                               scipy.linalg.solve_continuous_lyapunov(A, Q), rtol=1e-10,
                               atol=1e-12)
    # One column: the matrix form and a single right-hand side of shape (N, 1) agree.
    c = random_array(rng, (5, 1), dtype)
    np.testing.assert_allclose(matkron.sylvester(A, B[:1, :1]).solve(c),
                               scipy.linalg.solve_sylvester(A, B[:1, :1], c), rtol=1e-10)
    with pytest.raises(ValueError, match=r"\(5, 3\) for the unknown in matrix form"):
        matkron.sylvester(A, B).solve(C.T)


def test_real_sylvester_singular_raises():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.solve_sylvester(a, -np.array([[2.0, 1.0], [0.0, 3.0]]), np.ones((2, 2)))


# -- arithmetic of identities and Kronecker sums ----------------------------------------------


def test_identity_terms_are_operators_of_their_own(rng):
    I = matkron.identity(4)
    x = random_array(rng, (4, 2), np.float64)
    np.testing.assert_array_equal(I @ x, x)
    np.testing.assert_array_equal((0.5 * I) @ x[:, 0], 0.5 * x[:, 0])
    assert (I @ np.arange(4)).dtype == np.float64  # computed as matkron computes
    for term, c in ((-I, -1), (I / 4, 0.25), (I + I, 2), (I - 0.5 * I, 0.5),
                    (2 * I - I, 1), (np.array(3.0) * I, 3), (I * np.float32(2), 2)):
        np.testing.assert_array_equal(term.toarray(np.float64), c * np.eye(4))
    H = np.array([[2.0, 1.0], [1.0, 3.0]])
    K = matkron.kron(H, H)
    dense = np.kron(H, H)
    for S, M in ((-I + K, dense - np.eye(4)), (I - K, np.eye(4) - dense),
                 (K - I / 2, dense - 0.5 * np.eye(4))):
        np.testing.assert_allclose(S.todense(), M, rtol=1e-14)
        np.testing.assert_allclose(S.solve(np.ones(4)), np.linalg.solve(M, np.ones(4)),
                                   rtol=1e-12)
    with pytest.raises(ValueError, match=r"cannot add operators of shapes \(4, 4\) and "
                                         r"\(5, 5\)"):
        K + matkron.identity(5)
    with pytest.raises(ValueError, match=r"cannot add operators of shapes \(4, 4\) and "
                                         r"\(5, 5\)"):
        I + matkron.identity(5)
    with pytest.raises(ValueError, match=r"x has shape \(5,\)"):
        I @ np.ones(5)


def _kronsum_matrix(A, B):
    """kronsum(A, B) = I ⊗ A + B ⊗ I (scipy.sparse.kronsum's convention), dense."""
    return np.kron(np.eye(len(B)), A) + np.kron(B, np.eye(len(A)))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_scaled_and_shifted_kronecker_sums_stay_kronecker_sums(dtype, rng):
    # c (A ⊕ B) = cA ⊕ cB and A ⊕ B + s I = (A + s I) ⊕ B: the results keep solve, expm
    # and expm_multiply; the oracle is the dense matrix.
    A = random_array(rng, (3, 3), dtype) + 3 * np.eye(3)
    B = random_array(rng, (2, 2), dtype) + 3 * np.eye(2)
    for factors, M in (((A, B), _kronsum_matrix(A, B)),
                       ((scipy.sparse.csr_array(A), matkron.diagonal(np.diag(B))),
                        _kronsum_matrix(A, np.diag(np.diag(B)))),
                       ((A, matkron.identity(2)), _kronsum_matrix(A, np.eye(2)))):
        K = matkron.kronsum(*factors)
        I = matkron.identity(6)
        cases = {"2 K": (2 * K, 2 * M), "K * c": (K * (1 - 2j if dtype == np.complex128
                                                         else 3.0),
                                               M * (1 - 2j if dtype == np.complex128 else 3.0)),
                 "K / 4": (K / 4, M / 4), "-K": (-K, -M), "K + 2I": (K + 2 * I, M + 2 * np.eye(6)),
                 "I + K": (I + K, M + np.eye(6)), "K - I": (K - I, M - np.eye(6)),
                 "I/2 - K": (I / 2 - K, 0.5 * np.eye(6) - M), "conj": (K.conj(), M.conj()),
                 "dot": (K.dot(2), 2 * M)}
        b = random_array(rng, 6, dtype)
        for name, (S, D) in cases.items():
            assert isinstance(S, matkron.KronSumOperator), name
            np.testing.assert_allclose(S.todense(), D, rtol=1e-13, atol=1e-13, err_msg=name)
            np.testing.assert_allclose(S.solve(b), np.linalg.solve(D, b), rtol=1e-10,
                                       err_msg=name)
            np.testing.assert_allclose(S.expm_multiply(b, 0.1),
                                       scipy.linalg.expm(0.1 * D) @ b, rtol=1e-10,
                                       err_msg=name)


def test_sum_of_kron_conj(rng):
    A = random_array(rng, (2, 2), np.complex128)
    B = random_array(rng, (3, 3), np.complex128)
    S = matkron.sum_of_kron([(A, B), (B.T[:2, :2], matkron.identity(3))], [2 - 1j, 0.5j])
    M = (2 - 1j) * np.kron(A, B) + 0.5j * np.kron(B.T[:2, :2], np.eye(3))
    np.testing.assert_allclose(S.conj().todense(), M.conj(), rtol=1e-14)
    np.testing.assert_allclose((np.array(2.0) * S).todense(), 2 * M, rtol=1e-14)


@pytest.mark.parametrize("hermitian", [False, True])
def test_expm_multiply_keeps_single_precision(hermitian, rng):
    A = random_array(rng, (3, 3), np.float32)
    B = random_array(rng, (2, 2), np.float32)
    if hermitian:
        A, B = A + A.T, B + B.T
    K = matkron.kronsum(A, B)
    b = random_array(rng, 6, np.float32)
    M = _kronsum_matrix(A.astype(np.float64), B.astype(np.float64))
    got = K.expm_multiply(b, [0.1, 0.2])
    assert got.dtype == np.float32
    for row, t in zip(got, (0.1, 0.2)):
        want = scipy.linalg.expm(t * M) @ b
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_kronecker_sum_arithmetic_keeps_the_dtype_and_shapes(rng):
    # An identity factor has no dtype of its own: scaled and shifted, it takes the
    # operator's, as dense and diagonal factors keep theirs.
    K = matkron.kronsum(matkron.identity(3), np.eye(2, dtype=np.float32))
    for S in (2 * K, -K, K / 2, K + matkron.identity(6), matkron.identity(6) - K):
        assert S.dtype == np.float32
    assert (K * 1j).dtype == np.complex64
    with pytest.raises(ZeroDivisionError):
        K / 0
    # The identity times an operator is that operator (scaled).
    A = random_array(rng, (3, 3), np.float64) + 3 * np.eye(3)
    B = random_array(rng, (2, 2), np.float64) + 3 * np.eye(2)
    L = matkron.kronsum(A, B)
    assert matkron.identity(6) @ L is L
    np.testing.assert_allclose(((0.5 * matkron.identity(6)) @ L).todense(),
                               0.5 * _kronsum_matrix(A, B))
    # The inverse of a Sylvester operator takes vectors of its order only (its solve also
    # takes the matrix form, its products do not).
    Si = matkron.sylvester(A, B).inv()
    with pytest.raises(ValueError, match=r"x has shape \(3, 2\)"):
        Si @ np.ones((3, 2))
