"""power_jacobian, PowerJacobian, frechet_power and polynomial_jacobian.

Oracles: np.kron of explicit powers (the worked examples), central differences and complex
steps of A ↦ Aⁿ computed with np.linalg.matrix_power, the n-th power of the block-triangular
matrix [[A, E], [0, A]] (np.linalg.matrix_power), and scipy.linalg.fractional_matrix_power
for Newton's method; never matkron itself.
"""

import threading

import numpy as np
import pytest
import scipy.linalg
from scipy.sparse.linalg import gmres

import matkron

from .conftest import DTYPES, random_array, rtol

METHODS = ("naive", "horner", "binary", "dense", "auto")
POWERS = (0, 1, 2, 3, 7, 64, 1000)
# Looser tolerances, keyed by dtype: a derivative of Aⁿ sums n terms.
LOOSE = {np.dtype("float32"): 2e-3, np.dtype("complex64"): 2e-3,
         np.dtype("float64"): 1e-9, np.dtype("complex128"): 1e-9}


def unit_spectrum(rng, m, dtype, hermitian=False):
    """A random m×m matrix of `dtype` with spectral radius 0.95 (powers stay bounded)."""
    A = random_array(rng, (m, m), np.complex128 if np.dtype(dtype).kind == "c" else np.float64)
    if hermitian:
        A = (A + A.conj().T) / 2
    radius = np.abs(np.linalg.eigvals(A)).max()
    return (0.95 * A / radius).astype(dtype)


def block_oracle(A, E, n):
    """d(Aⁿ)[E], the upper-right block of [[A, E], [0, A]]ⁿ, in complex128."""
    m = A.shape[0]
    if n == 0:
        return np.zeros((m, m), dtype=np.complex128)
    M = np.zeros((2 * m, 2 * m), dtype=np.complex128)
    M[:m, :m] = A
    M[m:, m:] = A
    M[:m, m:] = E
    return np.linalg.matrix_power(M, n)[:m, m:]


def fd_oracle(A, E, n):
    """d(Aⁿ)[E] by a complex step (real A, E) or central differences, in complex128."""
    A = A.astype(np.complex128)
    E = E.astype(np.complex128)
    if n == 0:
        return np.zeros_like(A)
    if not A.imag.any() and not E.imag.any():
        h = 1e-30
        return np.linalg.matrix_power(A.real + 1j * h * E.real, n).imag / h + 0j
    h = 1e-5 / n
    return (np.linalg.matrix_power(A + h * E, n)
            - np.linalg.matrix_power(A - h * E, n)) / (2 * h)


def scale_of(A, E, n):
    """A bound on the size of d(Aⁿ)[E]: n ‖E‖ max_{k<n} ‖A^k‖², Frobenius norms."""
    A = np.asarray(A, dtype=np.complex128)
    power, largest = np.eye(A.shape[0]), 1.0
    for _ in range(max(n - 1, 0)):
        power = power @ A
        largest = max(largest, np.linalg.norm(power))
    return max(1, n) * np.linalg.norm(E) * largest**2


def vec(E):
    return E.ravel(order="F")


def unvec(x, m):
    return x.reshape(m, m, order="F")


# -- the worked examples ----------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_worked_examples(method):
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    I2 = np.eye(2)
    J2 = matkron.power_jacobian(X, 2, method=method)
    expected2 = np.kron(I2, X) + np.kron(X.T, I2)
    np.testing.assert_allclose(J2.todense(), expected2, rtol=1e-14)
    np.testing.assert_allclose(J2.kron_terms().todense(), expected2, rtol=1e-14)
    J3 = matkron.power_jacobian(X, 3, method=method)
    expected3 = np.kron(I2, X @ X) + np.kron(X.T, X) + np.kron((X @ X).T, I2)
    np.testing.assert_allclose(J3.todense(), expected3, rtol=1e-14)
    np.testing.assert_allclose(J3.kron_terms().todense(), expected3, rtol=1e-14)


def test_kron_terms_are_the_sum_of_kronecker_products(rng):
    A = random_array(rng, (3, 3), np.float64)
    S = matkron.power_jacobian(A, 4).kron_terms()
    assert isinstance(S, matkron.SumOfKronOperator)
    powers = [np.linalg.matrix_power(A, k) for k in range(4)]
    assert len(S.terms) == 4
    for k, (c, left, right) in enumerate(S.terms):
        assert c == 1
        dense_left = np.eye(3) if k == 3 else np.asarray(left)
        dense_right = np.eye(3) if k == 0 else np.asarray(right)
        np.testing.assert_allclose(dense_left, powers[3 - k].T, rtol=1e-13)
        np.testing.assert_allclose(dense_right, powers[k], rtol=1e-13)
    assert matkron.power_jacobian(A, 0).kron_terms().terms == ()


# -- every method against independent oracles ------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", POWERS)
@pytest.mark.parametrize("m", [1, 3, 6])
def test_methods_against_finite_differences(rng, dtype, n, m):
    A = unit_spectrum(rng, m, dtype)
    E = random_array(rng, (m, m), dtype)
    fd = fd_oracle(A, E, n)
    exact = block_oracle(A, E, n)
    scale = scale_of(A.astype(np.complex128), E, n)
    # The oracles agree with each other first.
    assert np.abs(fd - exact).max() <= 1e-7 * scale
    for method in METHODS:
        J = matkron.power_jacobian(A, n, method=method)
        assert J.shape == (m * m, m * m) and J.dtype == dtype
        y = J @ vec(E)
        assert y.dtype == dtype, method
        err = np.abs(unvec(y, m) - exact).max()
        assert err <= LOOSE[np.dtype(dtype)] * scale, (method, err, scale)
        assert np.abs(unvec(y, m) - fd).max() <= (LOOSE[np.dtype(dtype)] + 1e-7) * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", POWERS)
def test_eig_method_on_hermitian_matrices(rng, dtype, n):
    m = 5
    # Repeated and nearly equal eigenvalues, a zero one and both signs.
    lam = np.array([0.9, 0.9, 0.9 + 1e-9, -0.9, 0.0])
    Q, _ = np.linalg.qr(random_array(rng, (m, m), np.complex128 if np.dtype(dtype).kind == "c"
                                     else np.float64))
    A = (Q * lam) @ Q.conj().T
    A = ((A + A.conj().T) / 2).astype(dtype)
    E = random_array(rng, (m, m), dtype)
    exact = block_oracle(A, E, n)
    scale = scale_of(A.astype(np.complex128), E, n)
    for method in ("eig", "auto", "binary"):
        y = matkron.power_jacobian(A, n, method=method) @ vec(E)
        assert y.dtype == dtype
        err = np.abs(unvec(y, m) - exact).max()
        assert err <= LOOSE[np.dtype(dtype)] * scale, (method, err, scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_matmat_rmatvec_and_adjoint_identity(rng, dtype, method):
    m, n = 4, 5
    A = unit_spectrum(rng, m, dtype)
    J = matkron.power_jacobian(A, n, method=method)
    X = random_array(rng, (m * m, 3), dtype)
    for layout in (X, np.asfortranarray(X), X[::-1], np.ascontiguousarray(X).T.T[:, ::2]):
        Y = J.matmat(layout)
        for j in range(layout.shape[1]):
            exact = block_oracle(A, unvec(layout[:, j], m), n)
            assert np.abs(unvec(Y[:, j], m) - exact).max() <= 10 * rtol(dtype) * scale_of(
                A, unvec(layout[:, j], m), n)
    # The adjoint is the Jacobian at Aᴴ: <J x, y> = <x, Jᴴ y>.
    x, y = random_array(rng, m * m, dtype), random_array(rng, m * m, dtype)
    lhs = np.vdot(y, J @ x)
    rhs = np.vdot(J.rmatvec(y), x)
    assert abs(lhs - rhs) <= 100 * rtol(dtype) * (abs(lhs) + np.linalg.norm(x) * np.linalg.norm(y))
    exact_adj = block_oracle(A.conj().T, unvec(y, m), n)
    assert np.abs(unvec(J.H @ y, m) - exact_adj).max() <= 10 * rtol(dtype) * scale_of(
        A, unvec(y, m), n)
    exact_t = block_oracle(A.T, unvec(y, m), n)
    assert np.abs(unvec(J.T @ y, m) - exact_t).max() <= 10 * rtol(dtype) * scale_of(
        A, unvec(y, m), n)
    Z = J.rmatmat(np.stack([y, x], axis=1))
    assert np.allclose(Z[:, 0], J.rmatvec(y), rtol=10 * rtol(dtype), atol=10 * rtol(dtype))


def test_zero_and_identity_powers(rng):
    A = random_array(rng, (3, 3), np.float64)
    x = random_array(rng, 9, np.float64)
    for method in METHODS:
        J0 = matkron.power_jacobian(A, 0, method=method)
        np.testing.assert_array_equal(J0 @ x, np.zeros(9))
        J1 = matkron.power_jacobian(A, 1, method=method)
        np.testing.assert_array_equal(J1 @ x, x)
    assert matkron.power_jacobian(np.zeros((0, 0)), 3).shape == (0, 0)
    assert (matkron.power_jacobian(np.zeros((0, 0)), 3) @ np.zeros(0)).shape == (0,)


def test_mixed_dtype_operand_promotes(rng):
    A = unit_spectrum(rng, 3, np.float32)
    E = random_array(rng, (3, 3), np.complex128)
    J = matkron.power_jacobian(A, 4)
    y = J @ vec(E)
    assert y.dtype == np.complex128
    exact = block_oracle(A, E, 4)
    assert np.abs(unvec(y, 3) - exact).max() <= 1e-12 * scale_of(A, E, 4)
    assert matkron.power_jacobian(np.eye(2, dtype=int), 3).dtype == np.float64


@pytest.mark.parametrize("dtype", [">f8", ">c16"])
def test_byte_swapped_operands(rng, dtype):
    # Non-native byte order is converted, never handed to BLAS as if it were native.
    native = np.dtype(dtype).newbyteorder("=")
    m, n = 4, 6
    A = unit_spectrum(rng, m, native)
    H = unit_spectrum(rng, m, native, hermitian=True)
    E = random_array(rng, (m, m), native)
    X = random_array(rng, (m * m, 2), native)
    for mat in (A, H):
        for method in ("auto",) + METHODS[:-1] + (("eig",) if mat is H else ()):
            for J in (matkron.power_jacobian(mat.astype(dtype), n, method=method),
                      matkron.power_jacobian(mat, n, method=method)):
                assert J.dtype == native
                for x in (vec(E).astype(dtype), np.asfortranarray(X).astype(dtype)):
                    y = J @ x
                    assert y.dtype == native, method
                    for j in range(y.shape[1] if y.ndim == 2 else 1):
                        col = y[:, j] if y.ndim == 2 else y
                        En = unvec(x[:, j] if x.ndim == 2 else x, m).astype(native)
                        exact = block_oracle(mat, En, n)
                        assert np.abs(unvec(col, m) - exact).max() <= (
                            LOOSE[native] * scale_of(mat, En, n)), method
    D = matkron.frechet_power(A.astype(dtype), E.astype(dtype), n)
    assert D.dtype == native
    assert np.abs(D - block_oracle(A, E, n)).max() <= LOOSE[native] * scale_of(A, E, n)
    P = matkron.polynomial_jacobian(A.astype(dtype), np.array([1.0, 2.0, -1.0], ">f8"))
    exact = 2 * block_oracle(A, E, 1) - block_oracle(A, E, 2)
    got = unvec(P @ vec(E).astype(dtype), m)
    assert np.abs(got - exact).max() <= LOOSE[native] * scale_of(A, E, 2)
    # The kernel itself refuses byte-swapped arrays rather than misreading them.
    from matkron._power_cy import PowerPlan

    with pytest.raises(TypeError, match="native byte order"):
        PowerPlan("copy", m, np.empty(0, dtype=dtype))
    plan = PowerPlan("copy", m, np.empty(0, dtype=native))
    with pytest.raises(ValueError, match="PowerPlan.apply"):
        plan.apply(vec(E).astype(dtype), np.empty(m * m, dtype=native))
    with pytest.raises(ValueError, match="native-byte-order"):
        PowerPlan("horner", m, np.empty(0, dtype=native), a=np.asfortranarray(A).astype(dtype),
                  count=2)


def test_inputs_not_modified(rng):
    A = unit_spectrum(rng, 4, np.float64)
    x = random_array(rng, 16, np.float64)
    A0, x0 = A.copy(), x.copy()
    for method in METHODS:
        J = matkron.power_jacobian(A, 9, method=method)
        J @ x
        J.rmatvec(x)
        J.matmat(np.stack([x, x], axis=1))
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(x, x0)


def test_threads_share_one_operator(rng):
    A = unit_spectrum(rng, 20, np.float64)
    xs = [random_array(rng, 400, np.float64) for _ in range(8)]
    for method in ("binary", "horner"):
        J = matkron.power_jacobian(A, 37, method=method)
        results = [None] * len(xs)

        def work(i, J=J, results=results):
            for _ in range(10):
                results[i] = J @ xs[i]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for x, y in zip(xs, results):
            exact = block_oracle(A, unvec(x, 20), 37)
            assert np.abs(unvec(y, 20) - exact).max() <= 1e-10 * scale_of(A, unvec(x, 20), 37)


def test_power_jacobian_errors():
    A = np.eye(3)
    with pytest.raises(TypeError, match="n must be an integer"):
        matkron.power_jacobian(A, 2.0)
    with pytest.raises(TypeError, match="n must be an integer"):
        matkron.power_jacobian(A, True)
    with pytest.raises(TypeError, match="n must be an integer"):
        matkron.power_jacobian(A, "3")
    with pytest.raises(ValueError, match="n must be non-negative"):
        matkron.power_jacobian(A, -1)
    with pytest.raises(ValueError, match="A must be a square matrix"):
        matkron.power_jacobian(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="A must be a square matrix"):
        matkron.power_jacobian(np.ones(3), 2)
    with pytest.raises(ValueError, match="Hermitian"):
        matkron.power_jacobian(np.array([[1.0, 2.0], [0.0, 1.0]]), 3, method="eig")
    with pytest.raises(ValueError, match="method must be one of"):
        matkron.power_jacobian(A, 3, method="fast")
    with pytest.raises(TypeError, match="A has dtype"):
        matkron.power_jacobian(np.array([["a"]]), 2)
    with pytest.raises(ValueError, match="x has shape"):
        matkron.power_jacobian(A, 3) @ np.ones(4)
    assert isinstance(matkron.power_jacobian(A, np.int64(3)), matkron.PowerJacobian)


def test_integer_arguments_are_checked_alike():
    # Every count (power, order, shape, number of right-hand sides) is validated by one
    # rule: Python or NumPy integers, never bool (True is not n = 1), never negative.
    A = np.eye(2)
    counts = {
        "power_jacobian n": lambda v: matkron.power_jacobian(A, v),
        "frechet_power n": lambda v: matkron.frechet_power(A, A, v),
        "identity n": matkron.identity,
        "kron_order shape": lambda v: matkron.kron_order([(v, 2)]),
        "kron_order m": lambda v: matkron.kron_order([(2, 2)], m=v),
        "unvec shape": lambda v: matkron.unvec(np.zeros(1), (v,)),
        "chain_order dims": lambda v: matkron.chain_order([v, 1]),
    }
    for call in counts.values():
        for bad in (True, np.True_, 2.0, "2"):
            with pytest.raises(TypeError, match="must be an integer"):
                call(bad)
        with pytest.raises(ValueError, match="must be non-negative; got -1"):
            call(-1)
        call(np.int64(1))
        call(1)


# -- frechet_power and polynomial_jacobian -----------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_frechet_power(rng, dtype):
    A = unit_spectrum(rng, 4, dtype)
    E = random_array(rng, (4, 4), dtype)
    D = matkron.frechet_power(A, E, 6)
    assert D.shape == (4, 4) and D.dtype == dtype
    assert np.abs(D - block_oracle(A, E, 6)).max() <= LOOSE[np.dtype(dtype)] * scale_of(A, E, 6)
    stack = random_array(rng, (3, 4, 4), dtype)
    Ds = matkron.frechet_power(A, stack, 6)
    assert Ds.shape == (3, 4, 4)
    for b in range(3):
        assert np.abs(Ds[b] - block_oracle(A, stack[b], 6)).max() <= (
            LOOSE[np.dtype(dtype)] * scale_of(A, stack[b], 6))
    with pytest.raises(ValueError, match="E has shape"):
        matkron.frechet_power(A, np.ones((3, 3)), 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_frechet_power_one_shot_every_step_pattern(rng, dtype):
    # The one-shot kernel (powers computed along the way, the last one skipped) for every
    # pattern of squarings and multiplications up to n = 17 and for large n, with
    # non-contiguous operands of mixed memory order.
    for m in (1, 2, 5, 9):
        big = random_array(rng, (2 * m, 2 * m), dtype)
        A = unit_spectrum(rng, m, dtype)
        E = big[::2, ::2]
        for n in list(range(2, 18)) + [255, 256, 1000]:
            got = matkron.frechet_power(np.asfortranarray(A), E, n)
            assert got.shape == (m, m) and got.dtype == dtype
            assert np.abs(got - block_oracle(A, E, n)).max() <= (
                LOOSE[np.dtype(dtype)] * scale_of(A, E, n)), (m, n)
    # A Hermitian A with a large n goes through the eigendecomposition, as accurately.
    H = unit_spectrum(rng, 6, dtype, hermitian=True)
    E = random_array(rng, (6, 6), dtype)
    got = matkron.frechet_power(H, E, 1000)
    assert np.abs(got - block_oracle(H, E, 1000)).max() <= (
        LOOSE[np.dtype(dtype)] * scale_of(H, E, 1000))


def test_auto_dense_is_built_after_as_many_products_as_it_costs(rng):
    # "auto" picks the dense matrix at m = 4 for the products it expects; the first m² = 16
    # products go through binary powering (nothing built at construction), the later ones
    # through the dense matrix, with the same results.
    A = unit_spectrum(rng, 4, np.float64)
    J = matkron.power_jacobian(A, 8)
    assert J.method == "dense" and J._plans == {}
    X = random_array(rng, (16, 20), np.float64)
    expected = np.stack([vec(block_oracle(A, unvec(x, 4), 8)) for x in X.T], axis=1)
    for j in range(20):
        got = J @ X[:, j]
        assert np.abs(got - expected[:, j]).max() <= 1e-12 * np.abs(expected).max()
        built = np.dtype(np.float64) in J._plans
        assert built == (j >= 16), j
    assert J._plans[np.dtype(np.float64)].method == "dense"
    J2 = matkron.power_jacobian(A, 8)
    np.testing.assert_allclose(J2 @ X, expected, rtol=1e-12, atol=1e-12)  # 20 at once
    # "binary": the first product needs no stored powers, the second stores them.
    Jb = matkron.power_jacobian(A, 8, method="binary")
    for j in range(3):
        got = Jb @ X[:, j]
        assert np.abs(got - expected[:, j]).max() <= 1e-12 * np.abs(expected).max()
        assert (np.dtype(np.float64) in Jb._plans) == (j >= 1), j
    assert J2 @ X[:, 0] is not None and J2._plans[np.dtype(np.float64)].method == "dense"


def poly_value(A, coeffs):
    return sum(c * np.linalg.matrix_power(A, j) for j, c in enumerate(coeffs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_polynomial_jacobian_against_finite_differences(rng, dtype):
    m = 4
    A = unit_spectrum(rng, m, dtype)
    E = random_array(rng, (m, m), dtype)
    coeffs = [0.5, -1.0, 2.0, 0.0, 0.25, -0.75]
    Ac, Ec = A.astype(np.complex128), E.astype(np.complex128)
    h = 1e-6
    fd = (poly_value(Ac + h * Ec, coeffs) - poly_value(Ac - h * Ec, coeffs)) / (2 * h)
    exact = sum(c * block_oracle(A, E, j) for j, c in enumerate(coeffs))
    assert np.abs(fd - exact).max() <= 1e-7 * np.abs(exact).max()
    scale = 10 * np.abs(exact).max() + 1
    for method in ("naive", "horner", "dense", "auto"):
        J = matkron.polynomial_jacobian(A, coeffs, method=method)
        y = unvec(J @ vec(E), m)
        assert y.dtype == dtype
        assert np.abs(y - fd).max() <= (LOOSE[np.dtype(dtype)] + 1e-6) * scale, method
    # d(Σ c_j A^j) = Σ_j c_j Σ_{k<j} (A^{j-1-k})ᵀ ⊗ A^k on vec(E), from np.kron.
    powers = [np.linalg.matrix_power(Ac, j) for j in range(len(coeffs))]
    dense = sum(c * np.kron(powers[j - 1 - k].T, powers[k])
                for j, c in enumerate(coeffs) for k in range(j))
    for got in (J.kron_terms().todense(), J.todense()):
        np.testing.assert_allclose(got, dense, rtol=LOOSE[np.dtype(dtype)],
                                   atol=LOOSE[np.dtype(dtype)] * np.abs(dense).max())
    H = unit_spectrum(rng, m, dtype, hermitian=True)
    exact_h = sum(c * block_oracle(H, E, j) for j, c in enumerate(coeffs))
    yh = unvec(matkron.polynomial_jacobian(H, coeffs, method="eig") @ vec(E), m)
    assert np.abs(yh - exact_h).max() <= LOOSE[np.dtype(dtype)] * scale


def test_polynomial_jacobian_special_cases(rng):
    A = random_array(rng, (3, 3), np.float64)
    x = random_array(rng, 9, np.float64)
    np.testing.assert_array_equal(matkron.polynomial_jacobian(A, [4.0]) @ x, np.zeros(9))
    np.testing.assert_allclose(matkron.polynomial_jacobian(A, [1.0, 3.0]) @ x, 3 * x)
    Jc = matkron.polynomial_jacobian(A, [0, 1j, 0, 2])
    assert Jc.dtype == np.complex128
    E = unvec(x, 3)
    exact = 1j * E + 2 * block_oracle(A, E, 3)
    np.testing.assert_allclose(unvec(Jc @ x, 3), exact, rtol=1e-12, atol=1e-12)
    y = random_array(rng, 9, np.complex128)
    assert abs(np.vdot(y, Jc @ x) - np.vdot(Jc.rmatvec(y), x)) <= 1e-10 * np.abs(y).sum()
    with pytest.raises(ValueError, match="binary"):
        matkron.polynomial_jacobian(A, [1, 2, 3], method="binary")
    with pytest.raises(TypeError, match="coeffs"):
        matkron.polynomial_jacobian(A, 3.0)
    with pytest.raises(ValueError, match="coeffs must be 1-D"):
        matkron.polynomial_jacobian(A, [[1.0, 2.0]])


# -- a real use: Newton's method for the matrix n-th root ---------------------------------


@pytest.mark.parametrize("n", [3, 5])
def test_newton_matrix_root_with_gmres(rng, n):
    m = 6
    M = 2.0 * np.eye(m) + 0.3 * random_array(rng, (m, m), np.float64) / np.sqrt(m)
    X = np.eye(m)
    for _ in range(30):
        residual = np.linalg.matrix_power(X, n) - M
        if np.linalg.norm(residual) <= 1e-13 * np.linalg.norm(M):
            break
        J = matkron.power_jacobian(X, n)
        step, info = gmres(J, -vec(residual), rtol=1e-13, atol=0, restart=m * m,
                           maxiter=10)
        assert info == 0
        X = X + unvec(step, m)
    expected = np.real_if_close(scipy.linalg.fractional_matrix_power(M, 1.0 / n))
    np.testing.assert_allclose(X, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.matrix_power(X, n), M, rtol=1e-11, atol=1e-12)


def test_auto_method_choices():
    # The cost model of method="auto" (calibrated with one BLAS thread): the dense m²×m²
    # product is memory-bound, and building it costs m² products of another method, so it
    # is chosen only for very small m; GEMM methods beyond.
    rng = np.random.default_rng(3)

    def method(m, n, hermitian=False, **kwargs):
        A = unit_spectrum(rng, m, np.float64, hermitian=hermitian)
        return matkron.PowerJacobian(A, n, **kwargs).method

    for n in (3, 8, 32, 128, 1024):
        assert method(4, n) == "dense"
        assert method(4, n, hermitian=True) == "dense"
    for m in (8, 10, 12, 16, 20, 32):
        for n in (8, 128, 1024):
            assert method(m, n) == "binary", (m, n)
            assert method(m, n, hermitian=True) == "eig", (m, n)
    for m in (6, 8, 10, 12):
        assert method(m, 3) == "binary"
    # One product (frechet_power of one E) never pays for the dense matrix; a great many do.
    assert method(4, 1024, _applications=1) == "binary"
    assert method(8, 1024, _applications=10**6) == "dense"


# -- bounded memory -----------------------------------------------------------------------


def dense_jacobian(A, n):
    """Σ_{k<n} (A^{n-1-k})ᵀ ⊗ A^k by np.kron, in complex128."""
    P = [np.linalg.matrix_power(A.astype(np.complex128), k) for k in range(n)]
    return sum(np.kron(P[n - 1 - k].T, P[k]) for k in range(n))


def test_dense_method_is_capped():
    # Issue 15 (6): method="dense" accepted m up to 215 and built the m²×m² matrix and an
    # m²×m² identity (26 GB at m = 200): the process was killed. Now the dense matrix is
    # capped at MAX_STORED_BYTES = 1 GiB (m <= 107 in float64, 90 in complex128), checked
    # before anything is allocated.
    from matkron._power import MAX_STORED_BYTES

    assert MAX_STORED_BYTES == 2**30
    for m, dtype in ((200, np.float64), (108, np.float64), (91, np.complex128),
                     (129, np.float32)):
        need = m**4 * np.dtype(dtype).itemsize
        assert need > MAX_STORED_BYTES
        A = np.eye(m, dtype=dtype)
        for make in (lambda: matkron.power_jacobian(A, 3, method="dense"),
                     lambda: matkron.polynomial_jacobian(A, [1, 2, 3], method="dense"),
                     lambda: matkron.frechet_power(A, A, 3, method="dense")):
            with pytest.raises(ValueError, match=f"m = {m}: {need} bytes in {np.dtype(dtype)}, "
                               f"more than the cap of {MAX_STORED_BYTES} bytes"):
                make()
        # Where no dense matrix is needed (n <= 1), none is built.
        assert matkron.power_jacobian(A, 1, method="dense").shape == (m * m, m * m)
    assert (90**4 * 16 <= MAX_STORED_BYTES) and (107**4 * 8 <= MAX_STORED_BYTES)


def test_cap_bounds_auto_and_wider_products(monkeypatch):
    # With the cap lowered below the dense matrix of m = 4, "auto" no longer picks "dense"
    # (it does under the default cap: test_auto_method_choices), asking for it raises, and
    # so does a product wider than the operator's dtype whose dense matrix would not fit.
    import matkron._power as power

    rng = np.random.default_rng(5)
    A = unit_spectrum(rng, 4, np.float32)
    x = random_array(rng, 16, np.float64)
    monkeypatch.setattr(power, "MAX_STORED_BYTES", 4**4 * 4)
    J = matkron.power_jacobian(A, 8, method="dense")  # float32: fits exactly
    assert J.method == "dense"
    with pytest.raises(ValueError, match="m = 4: 2048 bytes in float64, more than the cap "
                       "of 1024 bytes"):
        J @ x
    monkeypatch.setattr(power, "MAX_STORED_BYTES", 4**4 * 4 - 1)
    for hermitian in (False, True):
        A = unit_spectrum(rng, 4, np.float32, hermitian=hermitian)
        assert matkron.power_jacobian(A, 8).method != "dense"
        assert matkron.PowerJacobian(A, 8, _applications=10**9).method != "dense"
        assert matkron.polynomial_jacobian(A, [1.0, 2.0, 3.0]).method != "dense"
        with pytest.raises(ValueError, match="method='dense' needs the 16x16 matrix"):
            matkron.power_jacobian(A, 8, method="dense")


def test_dense_matrix_built_by_column_blocks(monkeypatch):
    # The dense matrix is built a block of columns at a time, with no m²×m² identity.
    import tracemalloc

    import matkron._power as power

    rng = np.random.default_rng(6)
    for entries in (5, 20):  # blocks of one column, and of two with a last one of one
        monkeypatch.setattr(power, "_BLOCK_ENTRIES", entries)
        for dtype in DTYPES:
            A = unit_spectrum(rng, 3, dtype)
            for J in (matkron.power_jacobian(A, 5, method="dense"),
                      matkron.polynomial_jacobian(A, [1.0, -2.0, 0.5, 3.0], method="dense")):
                expected = (dense_jacobian(A, 5) if J.n else
                            -2 * dense_jacobian(A, 1) + 0.5 * dense_jacobian(A, 2)
                            + 3 * dense_jacobian(A, 3))
                for got in (J.todense(), J @ np.eye(9, dtype=dtype)):
                    assert np.abs(got - expected).max() <= 10 * rtol(dtype) * np.abs(
                        expected).max()
    monkeypatch.undo()
    m = 24
    A = unit_spectrum(rng, m, np.float64)
    dense_bytes = m**4 * 8
    tracemalloc.start()
    try:
        J = matkron.power_jacobian(A, 50, method="dense")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        D = J.todense()
        _, peak_todense = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The matrix itself, a block of the identity (2 MiB) and small change; an m²×m²
    # identity (2.6 MiB here) would not fit. todense() holds the operator's matrix, its
    # copy, a block of the identity and its image.
    assert peak <= dense_bytes + 2 * 2**20 + 2**19, peak
    assert peak_todense <= 2 * dense_bytes + 4 * 2**20 + 2**19, peak_todense
    x = random_array(rng, m * m, np.float64)
    E = unvec(x, m)
    assert np.abs(unvec(D @ x, m) - block_oracle(A, E, 50)).max() <= 1e-10 * scale_of(A, E, 50)


def test_naive_method_and_kron_terms_are_capped(monkeypatch):
    # Issue 15 (6): method="naive" stores (n − 1) m² entries (kron_terms), so
    # power_jacobian(A, 10**8, method="naive") would exhaust memory.
    A = np.eye(3)
    with pytest.raises(ValueError, match=r"method='naive' stores 99999999 matrices of order "
                       r"m = 3 for n = 100000000: 7199999928 bytes in float64, more than the "
                       r"cap of 1073741824 bytes"):
        matkron.power_jacobian(A, 10**8, method="naive")
    J = matkron.power_jacobian(A, 10**8)  # binary: two matrices per bit
    np.testing.assert_allclose(J @ np.eye(3).ravel(), 1e8 * np.eye(3).ravel(), rtol=1e-13)
    with pytest.raises(ValueError, match=r"kron_terms\(\) stores 99999999 matrices"):
        J.kron_terms()
    with pytest.raises(ValueError, match="degree 3000"):
        matkron.polynomial_jacobian(np.eye(300), np.ones(3001), method="naive")
    import matkron._power as power

    # The bound is exact: (n − 1) m² entries, twice that for a polynomial.
    monkeypatch.setattr(power, "MAX_STORED_BYTES", 6 * 9 * 8)
    assert matkron.power_jacobian(A, 7, method="naive").kron_terms().shape == (9, 9)
    assert matkron.polynomial_jacobian(A, [0, 1, 2, 3], method="naive").shape == (9, 9)
    with pytest.raises(ValueError, match="stores 7 matrices"):
        matkron.power_jacobian(A, 8, method="naive")
    assert matkron.polynomial_jacobian(A, [0, 1, 2, 3, 4], method="naive").shape == (9, 9)
    with pytest.raises(ValueError, match="stores 8 matrices"):
        matkron.polynomial_jacobian(A, [0, 1, 2, 3, 4, 5], method="naive")


def test_horner_rejects_n_beyond_its_count():
    # Issue 15 (7a): power_jacobian(A, 10**30, method="horner") raised "OverflowError:
    # Python int too large to convert to C ssize_t", naming nothing. The plan counts its
    # steps in a C Py_ssize_t: n <= 2**63 - 1 (sys.maxsize on 64-bit platforms).
    import sys

    A = np.diag([1.0, 0.5])
    limit = sys.maxsize
    assert limit == 2**63 - 1
    for n in (10**30, limit + 1):
        with pytest.raises(ValueError, match=f"n = {n} is too large for method='horner'.*"
                           f"n must be at most {limit}"):
            matkron.power_jacobian(A, n, method="horner")
        with pytest.raises(ValueError, match=f"n = {n} is too large"):
            matkron.frechet_power(A, np.eye(2), n, method="horner")
    # At the limit the plan is built (it would take 2(n − 1) GEMMs to apply).
    assert matkron.power_jacobian(A, limit, method="horner").n == limit
    # Binary powering and "eig" take any n: d(Aⁿ)[E] = diag(n, n 2^{1-n}) E for diagonal E.
    E = np.diag([1.0, 1.0])
    for method in ("binary", "eig", "auto"):
        for n in (10**30, 2**200 + 1):
            got = matkron.frechet_power(A, E, n, method=method)
            np.testing.assert_allclose(got, np.diag([float(n), 0.0]), rtol=1e-12, atol=0)
