"""KronOperator as the operator of SciPy's iterative solvers and eigensolvers.

Each solution is checked against dense numpy/scipy linear algebra on the np.kron matrix.
"""

import numpy as np
import pytest
import scipy.linalg
from scipy.sparse.linalg import bicgstab, cg, eigsh, gmres, lsmr, lsqr, minres, svds

import matkron

from .conftest import kron_dense, random_array


def spd(rng, n, dtype=np.float64, low=1.0, high=4.0):
    """A symmetric (Hermitian) positive definite matrix with eigenvalues in [low, high]."""
    q, _ = np.linalg.qr(random_array(rng, (n, n), dtype))
    eig = rng.uniform(low, high, n)
    return ((q * eig) @ q.conj().T).astype(dtype)


def nonsymmetric(rng, n, dtype=np.float64):
    """A well-conditioned nonsymmetric matrix: n*I plus noise."""
    return (2 * n * np.eye(n) + random_array(rng, (n, n), dtype)).astype(dtype)


def symmetric(rng, n, dtype=np.float64):
    a = random_array(rng, (n, n), dtype)
    return ((a + a.conj().T) / 2).astype(dtype)


def relerr(x, ref):
    return np.linalg.norm(x - ref) / np.linalg.norm(ref)


SPD_CASES = {
    "2 factors": lambda rng, dt: [spd(rng, 6, dt), spd(rng, 7, dt)],
    "3 factors": lambda rng, dt: [spd(rng, 3, dt), spd(rng, 5, dt), spd(rng, 4, dt)],
    "identity": lambda rng, dt: [matkron.identity(3), spd(rng, 8, dt)],
}


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("case", list(SPD_CASES))
def test_cg(case, dtype, rng):
    factors = SPD_CASES[case](rng, dtype)
    K = matkron.kron(*factors)
    b = random_array(rng, K.shape[0], dtype)
    x, info = cg(K, b, rtol=1e-12, atol=0.0, maxiter=2000)
    assert info == 0
    assert x.shape == b.shape
    assert relerr(x, np.linalg.solve(kron_dense(factors), b)) < 1e-9


# SciPy's minres is for real symmetric operators (its inner products do not conjugate).
@pytest.mark.parametrize("dtype", [np.float64], ids=str)
@pytest.mark.parametrize("case", list(SPD_CASES))
def test_minres(case, dtype, rng):
    factors = SPD_CASES[case](rng, dtype)
    K = matkron.kron(*factors)
    b = random_array(rng, K.shape[0], dtype)
    x, info = minres(K, b, rtol=1e-12, maxiter=2000)
    assert info == 0
    assert relerr(x, np.linalg.solve(kron_dense(factors), b)) < 1e-8


def test_minres_symmetric_indefinite(rng):
    A = spd(rng, 5)
    B = np.diag([2.0, -1.5, 3.0, -2.5])
    K = matkron.kron(A, B)
    b = random_array(rng, 20, np.float64)
    x, info = minres(K, b, rtol=1e-12, maxiter=2000)
    assert info == 0
    assert relerr(x, np.linalg.solve(np.kron(A, B), b)) < 1e-8


GENERAL_CASES = {
    "2 factors": lambda rng, dt: [nonsymmetric(rng, 5, dt), nonsymmetric(rng, 6, dt)],
    "3 factors": lambda rng, dt: [
        nonsymmetric(rng, 3, dt),
        nonsymmetric(rng, 4, dt),
        nonsymmetric(rng, 5, dt),
    ],
    "identity": lambda rng, dt: [nonsymmetric(rng, 7, dt), matkron.identity(4)],
}


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("case", list(GENERAL_CASES))
def test_gmres(case, dtype, rng):
    factors = GENERAL_CASES[case](rng, dtype)
    K = matkron.kron(*factors)
    b = random_array(rng, K.shape[0], dtype)
    x, info = gmres(K, b, rtol=1e-12, atol=0.0, restart=K.shape[0], maxiter=20)
    assert info == 0
    assert relerr(x, np.linalg.solve(kron_dense(factors), b)) < 1e-9


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("case", list(GENERAL_CASES))
def test_bicgstab(case, dtype, rng):
    factors = GENERAL_CASES[case](rng, dtype)
    K = matkron.kron(*factors)
    b = random_array(rng, K.shape[0], dtype)
    x, info = bicgstab(K, b, rtol=1e-12, atol=0.0, maxiter=2000)
    assert info == 0
    assert relerr(x, np.linalg.solve(kron_dense(factors), b)) < 1e-9


RECT_CASES = {
    "tall": [(5, 3), (4, 2)],
    "tall 3 factors": [(3, 2), (4, 3), (2, 2)],
    "tall with identity": [(6, 4), ("I", 3)],
    "wide": [(3, 5), (2, 4)],
}


def _rect_factors(rng, spec, dtype):
    factors = []
    for s in spec:
        if s[0] == "I":
            factors.append(matkron.identity(s[1]))
        else:
            p, q = s
            f = random_array(rng, (p, q), dtype)
            f[: min(p, q), : min(p, q)] += 3 * np.eye(min(p, q), dtype=dtype)
            factors.append(f)
    return factors


@pytest.mark.parametrize("solver", [lsqr, lsmr], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("case", list(RECT_CASES))
def test_least_squares(case, dtype, solver, rng):
    factors = _rect_factors(rng, RECT_CASES[case], dtype)
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    b = random_array(rng, K.shape[0], dtype)
    kw = {"iter_lim": 5000} if solver is lsqr else {"maxiter": 5000}
    result = solver(K, b, atol=1e-14, btol=1e-14, **kw)
    x = result[0]
    # Minimum-norm least-squares solution (unique for the tall, full-column-rank cases).
    ref = np.linalg.pinv(dense) @ b
    assert x.shape == (K.shape[1],)
    assert relerr(x, ref) < 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("which", ["LA", "SA"])
def test_eigsh(which, dtype, rng):
    A, B, C = symmetric(rng, 4, dtype), symmetric(rng, 5, dtype), symmetric(rng, 3, dtype)
    K = matkron.kron(A, B, C)
    dense = kron_dense([A, B, C])
    v0 = np.ones(K.shape[0], dtype=dtype)
    vals, vecs = eigsh(K, k=4, which=which, v0=v0, tol=1e-12)
    ref = np.linalg.eigvalsh(dense)
    ref = ref[-4:] if which == "LA" else ref[:4]
    np.testing.assert_allclose(np.sort(vals), np.sort(ref), rtol=1e-9, atol=1e-9)
    # Eigenpairs: K v = λ v, checked on the dense matrix.
    np.testing.assert_allclose(dense @ vecs, vecs * vals, atol=1e-8)


def test_eigsh_with_identity_factor(rng):
    # Every eigenvalue of A ⊗ I2 ⊗ B is double, and a Krylov method need not find both
    # copies: check the eigenpairs on the dense matrix and the largest eigenvalue.
    A, B = spd(rng, 6), spd(rng, 4)
    K = matkron.kron(A, matkron.identity(2), B)
    dense = np.kron(np.kron(A, np.eye(2)), B)
    vals, vecs = eigsh(K, k=3, which="LA", v0=random_array(rng, K.shape[0], np.float64))
    np.testing.assert_allclose(dense @ vecs, vecs * vals, atol=1e-8)
    np.testing.assert_allclose(vals.max(), np.linalg.eigvalsh(dense)[-1], rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("spec", [[(5, 3), (4, 6)], [(2, 3), (3, 2), (4, 2)], [(3, 7), (2, 2)]])
def test_svds(spec, dtype, rng):
    factors = [random_array(rng, s, dtype) for s in spec]
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    v0 = np.ones(min(K.shape), dtype=dtype)
    u, s, vh = svds(K, k=3, v0=v0, tol=1e-12)
    ref = np.linalg.svd(dense, compute_uv=False)[:3]
    np.testing.assert_allclose(np.sort(s)[::-1], ref, rtol=1e-9)
    np.testing.assert_allclose(dense @ vh.conj().T, u * s, atol=1e-8 * ref[0])
    s_only = svds(K, k=2, v0=v0, return_singular_vectors=False, tol=1e-12)
    np.testing.assert_allclose(np.sort(s_only)[::-1], ref[:2], rtol=1e-9)


def test_cg_with_inverse_as_preconditioner(rng):
    # K.inv() is itself a LinearOperator; as the exact preconditioner cg converges at once.
    A, B = spd(rng, 5), spd(rng, 6)
    K = matkron.kron(A, B)
    b = random_array(rng, 30, np.float64)
    x, info = cg(K, b, rtol=1e-12, atol=0.0, M=K.inv(), maxiter=3)
    assert info == 0
    ref = scipy.linalg.solve(np.kron(A, B), b, assume_a="pos")
    assert relerr(x, ref) < 1e-10
