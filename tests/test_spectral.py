"""Spectral methods of KronOperator (eigh, cholesky, power, sqrtm, funm) against dense
numpy/scipy on the np.kron matrix."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

import matkron

from .conftest import random_array


def _hpd(rng, n, dtype, cond=100.0):
    """A Hermitian positive definite matrix with eigenvalues in [1, cond]."""
    q, _ = np.linalg.qr(random_array(rng, (n, n), np.complex128 if np.dtype(dtype).kind ==
                                     "c" else np.float64))
    lam = np.geomspace(1.0, cond, n)
    return ((q * lam) @ q.conj().T).astype(dtype)


def _factors(rng, dtype, cond=100.0):
    """Hermitian positive definite factors of every kind, and their dense matrices."""
    A = _hpd(rng, 3, dtype, cond)
    B = _hpd(rng, 4, dtype, cond)
    d = np.linspace(0.5, 2.0, 2).astype(dtype)
    S = scipy.sparse.csr_array(_hpd(rng, 2, dtype, cond))
    given = [A, matkron.diagonal(d), S, B, matkron.identity(2)]
    dense = [A, np.diag(d), S.toarray(), B, np.eye(2)]
    return given, dense


def _kron(mats):
    out = np.ones((1, 1))
    for m in mats:
        out = np.kron(out, m)
    return out


TOL = {np.float32: 2e-4, np.float64: 1e-10, np.complex64: 2e-4, np.complex128: 1e-10}
DTYPES = list(TOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1.0, 2.5])
def test_eigh(dtype, c, rng):
    given, dense = _factors(rng, dtype)
    K = c * matkron.kron(*given)
    M = c * _kron(dense)
    w, V = K.eigh()
    assert isinstance(V, matkron.KronOperator)
    expected = np.linalg.eigvalsh(M)
    # The oracle's own error is about eps times the largest eigenvalue.
    np.testing.assert_allclose(np.sort(w), expected, rtol=TOL[dtype],
                               atol=TOL[dtype] * expected[-1])
    Vd = V.todense()
    scale = np.abs(M).max()
    np.testing.assert_allclose((Vd * w) @ Vd.conj().T, M, atol=TOL[dtype] * scale)
    np.testing.assert_allclose(Vd.conj().T @ Vd, np.eye(len(w)), atol=TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cholesky(dtype, rng):
    given, dense = _factors(rng, dtype)
    K = 3.0 * matkron.kron(*given)
    M = 3.0 * _kron(dense)
    L = K.cholesky()
    Ld = L.todense()
    np.testing.assert_allclose(np.triu(Ld, 1), 0, atol=0)
    np.testing.assert_allclose(Ld @ Ld.conj().T, M, atol=TOL[dtype] * np.abs(M).max())
    np.testing.assert_allclose(Ld, np.linalg.cholesky(M), atol=TOL[dtype] * 10 *
                               np.abs(Ld).max())


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("p", [0.5, -1.5, 2.25, 3, -2])
def test_power_and_sqrtm(dtype, p, rng):
    given, dense = _factors(rng, dtype)
    K = 2.0 * matkron.kron(*given)
    M = 2.0 * _kron(dense)
    expected = scipy.linalg.fractional_matrix_power(M, p)
    got = K.power(p).todense()
    np.testing.assert_allclose(got, expected, atol=1e-9 * np.abs(expected).max())
    if p == 0.5:
        np.testing.assert_allclose(K.sqrtm().todense(), scipy.linalg.sqrtm(M),
                                   atol=1e-9 * np.abs(M).max())


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_funm(dtype, rng):
    given, dense = _factors(rng, dtype, cond=4.0)
    K = 0.5 * matkron.kron(*given)
    M = 0.5 * _kron(dense)
    E = K.funm(np.exp)
    assert isinstance(E, matkron.EigenOperator)
    expected = scipy.linalg.expm(M)
    x = random_array(rng, (M.shape[0], 3), dtype)
    np.testing.assert_allclose(E @ x, expected @ x, atol=1e-10 * np.abs(expected @ x).max())
    np.testing.assert_allclose(E.H @ x[:, 0], expected.conj().T @ x[:, 0],
                               atol=1e-10 * np.abs(expected).max() * np.abs(x).max() * 10)
    np.testing.assert_allclose(E.todense(), expected, atol=1e-10 * np.abs(expected).max())


def test_errors(rng):
    A = random_array(rng, (3, 3), np.float64)  # not symmetric
    H = _hpd(rng, 3, np.float64)
    with pytest.raises(ValueError, match=r"factor 0 \(A in kron\(A, B\)\) is not Hermitian"):
        matkron.kron(A, H).eigh()
    with pytest.raises(np.linalg.LinAlgError, match=r"factor 1 .* not positive definite"):
        matkron.kron(H, -H).cholesky()
    with pytest.raises(np.linalg.LinAlgError, match="c > 0"):
        (-matkron.kron(H, H)).cholesky()
    # A factor that is not Hermitian, or a complex c, is the same mistake for cholesky as for
    # eigh (a ValueError); only a Hermitian factor or c that is not positive definite is a
    # LinAlgError.
    with pytest.raises(ValueError, match=r"^cholesky needs Hermitian factors; factor 0 "
                                         r"\(A in kron\(A, B\)\) is not Hermitian"):
        matkron.kron(A, H).cholesky()
    # Each method names itself and the factor.
    for what, call in (("funm", lambda K: K.funm(np.exp)), ("sqrtm", lambda K: K.sqrtm()),
                       ("power", lambda K: K.power(0.5)), ("eigh", lambda K: K.eigh())):
        with pytest.raises(ValueError, match=rf"^{what} needs Hermitian factors; factor 0 "
                                             r"\(A in kron\(A, B\)\) is not Hermitian"):
            call(matkron.kron(A, H))
    with pytest.raises(ValueError, match=r"^funm needs Hermitian factors; mats\[0\] is not "
                                         "Hermitian"):
        matkron.kronsum(A, H).funm(np.exp)
    # A sum of two products: the product whose factor is not Hermitian is named.
    with pytest.raises(ValueError, match="solve needs Hermitian factors; the second "
                                         "product's factor 0 is not Hermitian"):
        (matkron.kron(H, H) + matkron.kron(A, H)).solve(np.ones(9))
    with pytest.raises(ValueError, match="cholesky needs a real coefficient"):
        (1j * matkron.kron(H, H)).cholesky()
    # Singular values in the operator's real dtype, as eigh's eigenvalues.
    for dt, real in ((np.float32, np.float32), (np.complex64, np.float32),
                     (np.float64, np.float64), (np.int8, np.float64)):
        s = matkron.kron(np.eye(2, dtype=dt), np.diag([3, 1]).astype(dt)).svdvals()
        assert s.dtype == real
        np.testing.assert_array_equal(s, [3, 3, 1, 1])
    with pytest.raises(ValueError, match="positive semidefinite factors; factor 1"):
        matkron.kron(H, -H).power(0.5)
    with pytest.raises(ValueError, match="real coefficient"):
        (1j * matkron.kron(H)).eigh()
    opaque = scipy.sparse.linalg.LinearOperator(H.shape, matvec=lambda v: H @ v,
                                                dtype=H.dtype)
    with pytest.raises(TypeError, match="LinearOperator"):
        matkron.kron(opaque, H).eigh()
    with pytest.raises(ValueError, match="square factors"):
        matkron.kron(np.ones((2, 3))).eigh()
    with pytest.raises(ValueError, match=r"f returned shape \(2,\)"):
        matkron.kron(H).funm(lambda w: w[:2])
    # An integer power works for any square factors, as K ** p.
    np.testing.assert_allclose(matkron.kron(A).power(2.0).todense(), A @ A, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("cond", [10.0, 1e8])
def test_kron_plus_shifted_identity(dtype, cond, rng):
    # The Gaussian-process form c K + s I: solve, inv, slogdet, eigh on the factors.
    # Three factors of condition cond^(1/3): the dense oracle's own accuracy (LU, eigvalsh)
    # degrades with the condition of the whole matrix.
    given, dense = _factors(rng, dtype, cond ** (1 / 3))
    N = int(np.prod([d.shape[0] for d in dense]))
    sigma2 = 0.3
    S = 2.0 * matkron.kron(*given) + sigma2 * matkron.identity(N)
    assert isinstance(S, matkron.SumOfKronOperator)
    M = 2.0 * _kron(dense) + sigma2 * np.eye(N)
    b = random_array(rng, (N, 3), dtype)
    x = S.solve(b)
    # Relative residual of the direct solve.
    assert np.linalg.norm(M @ x - b) <= 1e-10 * np.linalg.norm(M) * np.linalg.norm(x)
    np.testing.assert_allclose(S.solve(b[:, 0]), x[:, 0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(S.inv() @ b, x, rtol=1e-10, atol=1e-12 * np.abs(x).max())
    sign, logdet = S.slogdet()
    esign, elogdet = np.linalg.slogdet(M)
    assert np.isclose(sign, esign) and np.isclose(logdet, elogdet, rtol=1e-10)
    w, V = S.eigh()
    np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(M), rtol=1e-9,
                               atol=1e-10 * np.abs(M).max())
    # Subtracting and adding identities on either side give the same form.
    T = sigma2 * matkron.identity(N) + 2.0 * matkron.kron(*given) - 0.1 * matkron.identity(N)
    np.testing.assert_allclose(T.solve(b), np.linalg.solve(M - 0.1 * np.eye(N), b),
                               rtol=1e-8, atol=1e-10)


def rel_err(got, want):
    return np.linalg.norm(got - want) / np.linalg.norm(want)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.float64, np.complex128])
def test_ill_conditioned_sums_are_solved_not_refused(dtype, rng):
    # Far from singular in the rounding of each eigenvalue, though the spectrum is wide:
    # a small shift of two factors of condition 1e8 (float64) and of RBF factors on a grid
    # (float32, as Gaussian processes use them) solve to the accuracy of their condition.
    single = np.dtype(dtype) in (np.float32, np.complex64)
    if single:
        t = np.linspace(0.0, 1.0, 32)
        R = np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / 0.2**2)
        A = B = R
        shifts, D = (0.1, 0.01), np.linspace(1.0, 2.0, 32)
    else:
        A, B = _hpd(rng, 12, np.float64, 1e8), _hpd(rng, 10, np.float64, 1e8)
        shifts, D = (1.0, 1e-3), np.linspace(1.0, 2.0, 10)
    eps = np.finfo(dtype).eps
    b = random_array(rng, A.shape[0] * B.shape[0], dtype)
    forms = [(c, matkron.kron(A.astype(dtype), B.astype(dtype)) + c * matkron.identity(
        b.size), np.kron(A, B) + c * np.eye(b.size)) for c in shifts]
    forms.append((shifts[0], matkron.kron(A.astype(dtype), B.astype(dtype)) + shifts[0]
                  * matkron.kron(matkron.identity(A.shape[0]), matkron.diagonal(D)),
                  np.kron(A, B) + shifts[0] * np.kron(np.eye(A.shape[0]), np.diag(D))))
    for c, S, M in forms:
        want = np.linalg.solve(M, b.astype(np.complex128))
        bound = 20 * np.linalg.cond(M) * eps
        assert rel_err(S.solve(b), want) <= bound, c
        assert rel_err(S.inv() @ b, want) <= bound, c
        quad, logdet = matkron.inv_quad_logdet(S, b)
        assert abs(quad - np.vdot(b, want)) <= bound * abs(np.vdot(b, want))
        if single:
            # numpy's LU determinant is accurate at this condition; at 1e16 it is not.
            want_logdet = np.linalg.slogdet(M)[1]
        elif S is forms[-1][1]:
            continue
        else:
            # The spectra _hpd gave the factors, to their rounding.
            want_logdet = np.log(np.add.outer(np.multiply.outer(
                np.geomspace(1.0, 1e8, 12), np.geomspace(1.0, 1e8, 10)), c)).sum()
        assert abs(logdet - want_logdet) <= 1e3 * eps * abs(want_logdet) + 1e-4


def test_exactly_singular_sums_never_solve_silently():
    # K - 7 I with 7 an eigenvalue of K's first factor (times 1 of the second): exactly
    # singular. Rounding puts that eigenvalue of the sum anywhere within eigh's error:
    # the solve raises LinAlgError, or, in the band where it may not be 0, warns.
    import warnings

    for seed in range(10):
        rng = np.random.default_rng(seed)
        Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
        lam = np.linspace(1.0, 100.0, 30)
        lam[3] = 7.0
        A = (Q * lam) @ Q.T
        K = matkron.kron((A + A.T) / 2, np.diag([1.0, 2.0, 3.0])) - 7.0 * matkron.identity(90)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                K.solve(np.ones(90))
            except np.linalg.LinAlgError as exc:
                assert "singular" in str(exc)
            else:
                assert any(issubclass(w.category, scipy.linalg.LinAlgWarning)
                           for w in caught), seed


def test_an_ill_conditioned_single_precision_sum_warns():
    # RBF factors in float32 with a small shift: the smallest eigenvalues of the sum are
    # within the worst rounding of the factors' eigendecompositions, not the typical one.
    t = np.linspace(0.0, 1.0, 32)
    R = np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / 0.2**2)
    S = matkron.kron(R.astype(np.float32), R.astype(np.float32)) + 1e-4 * matkron.identity(
        1024)
    b = np.random.default_rng(5).standard_normal(1024).astype(np.float32)
    with pytest.warns(scipy.linalg.LinAlgWarning, match="ill-conditioned"):
        x = S.solve(b)
    want = np.linalg.solve(np.kron(R, R) + 1e-4 * np.eye(1024), b.astype(np.float64))
    assert rel_err(x, want) <= 0.05


def test_shifted_sum_errors(rng):
    H = _hpd(rng, 3, np.float64)
    A = random_array(rng, (3, 3), np.float64)
    with pytest.raises(ValueError, match="the Kronecker product's factor 1 is not Hermitian"):
        (matkron.kron(H, A) + matkron.identity(9)).solve(np.ones(9))
    two = matkron.kron(H, H) + matkron.kron(H, np.eye(3)) + matkron.identity(9)
    with pytest.raises(NotImplementedError, match="scipy.sparse.linalg"):
        two.solve(np.ones(9))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        (matkron.kron(np.eye(2)) - matkron.identity(2)).solve(np.ones(2))
    with pytest.raises(ValueError, match="b has shape"):
        (matkron.kron(H) + matkron.identity(3)).solve(np.ones(4))


def _kronsum_dense(mats):
    """Σ_t I ⊗ … ⊗ A_t ⊗ … ⊗ I with A_1 along the fastest index (scipy.sparse.kronsum)."""
    out = mats[0]
    for a in mats[1:]:
        out = np.kron(np.eye(len(a)), out) + np.kron(a, np.eye(len(out)))
    return out


@pytest.mark.parametrize("hermitian", [True, False])
@pytest.mark.parametrize("k", [2, 3])
def test_kronsum_spectral_methods(hermitian, k, rng):
    mats = [_hpd(rng, n, np.float64, 10.0) if hermitian
            else random_array(rng, (n, n), np.float64) + n * np.eye(n) for n in (3, 4, 2)[:k]]
    given = [mats[0], scipy.sparse.csr_array(mats[1])] + mats[2:]
    L = matkron.kronsum(*given)
    M = _kronsum_dense(mats)
    b = random_array(rng, (M.shape[0], 2), np.float64)
    E = scipy.linalg.expm(M)
    np.testing.assert_allclose(L.expm().todense(), E, rtol=1e-10, atol=1e-12 * np.abs(E).max())
    ts = np.array([0.0, 0.3, 1.0])
    got = L.expm_multiply(b, ts)
    assert got.shape == (3,) + b.shape
    for t, g in zip(ts, got):
        expected = scipy.linalg.expm(t * M) @ b
        np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-11 * np.abs(expected).max())
    np.testing.assert_allclose(L.expm_multiply(b[:, 0], 0.3), scipy.linalg.expm(0.3 * M) @
                               b[:, 0], rtol=1e-9)
    sign, logdet = L.slogdet()
    esign, elogdet = np.linalg.slogdet(M)
    assert sign == esign and np.isclose(logdet, elogdet, rtol=1e-10)
    np.testing.assert_allclose(L.inv() @ b, np.linalg.solve(M, b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(L.diagonal(), np.diag(M), rtol=1e-14)
    if hermitian:
        w, V = L.eigh()
        np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(M), rtol=1e-10)
        Vd = V.todense()
        np.testing.assert_allclose((Vd * w) @ Vd.T, M, atol=1e-10 * np.abs(M).max())
        S = L.funm(np.sqrt)
        np.testing.assert_allclose(S.todense(), scipy.linalg.sqrtm(M), atol=1e-9)
    else:
        with pytest.raises(ValueError, match="Hermitian factors"):
            L.eigh()


def test_negative_power_of_a_singular_factor_raises(rng):
    # A PSD factor with eigenvalue 0 has no negative power: raise rather than return inf.
    H = _hpd(rng, 3, np.float64)
    P = np.diag([2.0, 0.0])
    for singular in (P, matkron.diagonal([2.0, 0.0]), scipy.sparse.csr_array(P)):
        K = matkron.kron(H, singular)
        with pytest.raises(np.linalg.LinAlgError, match=r"factor 1 .* singular"):
            K.power(-0.5)
        # A positive power of the same factors is fine, and matches the dense one.
        np.testing.assert_allclose(K.power(0.5).todense(),
                                   np.kron(scipy.linalg.sqrtm(H), np.sqrt(P)), atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError, match="c = 0"):
        (0 * matkron.kron(H)).power(-1.5)


def _count_eigh(monkeypatch):
    """A list that gets one entry per Hermitian eigendecomposition (NumPy's or SciPy's,
    standard or generalized) made from now on."""
    calls = []
    for module in (np.linalg, scipy.linalg):
        real = module.eigh
        monkeypatch.setattr(module, "eigh",
                            lambda *a, real=real, **k: calls.append(1) or real(*a, **k))
    return calls


def test_shifted_sum_factors_decomposed_once(rng, monkeypatch):
    # Repeated solves of K + s I reuse the factor eigendecompositions (the GP loop).
    H, G = _hpd(rng, 3, np.float64), _hpd(rng, 4, np.float64)
    S = matkron.kron(H, G) + 0.5 * matkron.identity(12)
    M = np.kron(H, G) + 0.5 * np.eye(12)
    calls = _count_eigh(monkeypatch)
    for _ in range(3):
        b = random_array(rng, 12, np.float64)
        np.testing.assert_allclose(S.solve(b), np.linalg.solve(M, b), rtol=1e-10)
    S.slogdet()
    w, _ = S.eigh()
    w[:] = 0  # the caller's copy: the operator keeps its own
    np.testing.assert_allclose(S.solve(b), np.linalg.solve(M, b), rtol=1e-10)
    assert len(calls) == 2


def test_equal_factors_decomposed_once(rng, monkeypatch):
    # A grid of one kernel in every dimension: one eigendecomposition per distinct factor
    # (the same array twice, an equal copy), while an equal-shaped different factor, or
    # a pencil pair that differs in C only, gets its own. Checked against the dense matrix.
    H, G = _hpd(rng, 3, np.float64), _hpd(rng, 3, np.float64)
    calls = _count_eigh(monkeypatch)
    S = matkron.kron(H, H.copy(), G, H) + 0.5 * matkron.identity(81)
    M = _kron([H, H, G, H]) + 0.5 * np.eye(81)
    b = random_array(rng, (81, 2), np.float64)
    _check_pencil_solve(S, M, b)
    assert len(calls) == 2
    calls.clear()
    d = np.array([1.0, 2.0, 0.5])
    T = matkron.kron(H, H) + 0.3 * matkron.kron(matkron.diagonal(d), np.diag(d))
    _check_pencil_solve(T, np.kron(H, H) + 0.3 * np.kron(np.diag(d), np.diag(d)), b[:9])
    assert len(calls) == 2
    calls.clear()
    L = matkron.kronsum(H, G, H)
    ts = np.array([0.0, 0.2, 1.0])
    got = L.expm_multiply(b[:27], ts)
    for t, g in zip(ts, got):
        expected = scipy.linalg.expm(t * _kronsum_dense([H, G, H])) @ b[:27]
        np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-11 * np.abs(expected).max())
    assert len(calls) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_kronsum_spectral_methods_stay_single(dtype, rng):
    A, B = _hpd(rng, 3, dtype, 10.0), _hpd(rng, 4, dtype, 10.0)
    L = matkron.kronsum(A, B)
    M = _kronsum_dense([A.astype(np.complex128), B.astype(np.complex128)])
    real = np.finfo(dtype).dtype
    w, V = L.eigh()
    assert w.dtype == real
    np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(M), rtol=1e-5)
    b = random_array(rng, 12, dtype)
    for op, dense in ((L.funm(np.exp), scipy.linalg.expm(M)), (L.inv(), np.linalg.inv(M))):
        y = op @ b
        assert y.dtype == dtype
        np.testing.assert_allclose(y, dense @ b, rtol=1e-4, atol=1e-5 * np.abs(dense @ b).max())
    y = L.expm_multiply(b, 0.5)
    assert y.dtype == dtype
    expected = scipy.linalg.expm(0.5 * M) @ b
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_kronsum_expm_multiply_layout_and_empty_factor(rng):
    # Several times on a vector: C-ordered (T, N), whatever the plan's result order; an
    # empty factor anywhere gives an empty result of the right shape.
    H = _hpd(rng, 60, np.float64)
    b = random_array(rng, 3600, np.float64)
    ts = np.linspace(0.0, 1e-3, 5)
    got = matkron.kronsum(H, H).expm_multiply(b, ts)
    assert got.shape == (5, 3600) and got.flags.c_contiguous
    M = _kronsum_dense([H, H])
    np.testing.assert_allclose(got[-1], scipy.linalg.expm(1e-3 * M) @ b, rtol=1e-9)
    for mats in ((np.eye(3), np.zeros((0, 0))), (np.zeros((0, 0)), np.eye(3))):
        assert matkron.kronsum(*mats).expm_multiply(np.zeros(0), [0.0, 1.0]).shape == (2, 0)


@pytest.mark.parametrize("ts", [[0.0], [0.3, 0.0, 1.0], [0.0, 0.0, 0.5], [0.5, 1.0, 0.0], 0.0])
@pytest.mark.parametrize("b_dtype", [np.float64, np.complex128, np.float32])
@pytest.mark.parametrize("b_cols", [None, 2])
@pytest.mark.parametrize("factor_dtype", [np.float32, np.float64])
def test_kronsum_expm_multiply_time_zero(ts, b_dtype, b_cols, factor_dtype, rng):
    # exp(0 L) b = b exactly, wherever 0 sits among the times; the other times against
    # scipy.linalg.expm of the dense Kronecker sum; the result dtype is the product's.
    H, G = (a / np.linalg.norm(a, 2) for a in (_hpd(rng, 3, factor_dtype),
                                                _hpd(rng, 4, factor_dtype)))
    L = matkron.kronsum(H, G)
    M = _kronsum_dense([H.astype(np.float64), G.astype(np.float64)])
    b = random_array(rng, (12,) if b_cols is None else (12, b_cols), b_dtype)
    b_before = b.copy()
    got = L.expm_multiply(b, ts)
    dtype = np.result_type(factor_dtype, b_dtype)
    assert got.dtype == dtype and got.shape == np.shape(ts) + b.shape
    np.testing.assert_array_equal(b, b_before)
    for t, g in zip(np.atleast_1d(ts), np.reshape(got, (-1,) + b.shape)):
        if t == 0:
            np.testing.assert_array_equal(g, b.astype(dtype))
        else:
            expected = scipy.linalg.expm(t * M) @ b
            rtol = 1e-4 if factor_dtype == np.float32 else 1e-9
            np.testing.assert_allclose(g, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("d_dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("b_dtype", [np.int64, np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("b_cols", [None, 3])
def test_kronsum_expm_multiply_diagonal_factors(d_dtype, b_dtype, b_cols):
    # Diagonal factors have identity eigenvectors: the result still has the product's
    # dtype and precision, against the exponentials of the dense diagonal.
    d1 = np.array([0.1, -0.2], d_dtype)
    d2 = np.array([0.3, 0.05, -0.4], d_dtype)
    L = matkron.kronsum(matkron.diagonal(d1), matkron.diagonal(d2))
    b = (np.arange(1, 7) if b_cols is None else np.arange(1, 19).reshape(6, 3)).astype(b_dtype)
    dtype = np.result_type(d_dtype, b_dtype)  # int64 with float32: float64, as NumPy
    got = L.expm_multiply(b, [0.0, 0.5])
    assert got.dtype == dtype
    w = np.add.outer(d2.astype(np.complex128), d1.astype(np.complex128)).ravel()
    rtol = 1e-6 if np.finfo(dtype).bits <= 32 or np.finfo(d_dtype).bits <= 32 else 1e-14
    for t, g in zip((0.0, 0.5), got):
        scale = np.exp(t * w)
        expected = scale * b if b.ndim == 1 else scale[:, None] * b
        np.testing.assert_allclose(g, expected, rtol=rtol, atol=0)


def test_kronsum_expm_multiply_no_times(rng):
    L = matkron.kronsum(np.diag([1.0, 2.0]), np.diag([3.0, 4.0]))
    for b in (np.ones(4), np.ones((4, 3), np.float32)):
        got = L.expm_multiply(b, [])
        assert got.shape == (0,) + b.shape and got.dtype == np.result_type(L.dtype, b.dtype)


def _diagonal_kind(rng, n, dtype):
    d = rng.uniform(0.5, 2.0, n).astype(dtype)
    return matkron.diagonal(d), np.diag(d)


def _check_pencil_solve(S, M, b):
    """S.solve, S.inv and S.slogdet against the dense matrix M; returns S.solve(b)."""
    x = S.solve(b)
    assert np.linalg.norm(M @ x - b) <= 1e-10 * np.linalg.norm(M) * np.linalg.norm(x)
    np.testing.assert_allclose(S.inv() @ b, x, rtol=1e-9, atol=1e-12 * np.abs(x).max())
    sign, logdet = S.slogdet()
    esign, elogdet = np.linalg.slogdet(M)
    assert np.isclose(sign, esign) and np.isclose(logdet, elogdet, rtol=1e-10)
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("c_kind", ["diagonal", "dense", "mixed"])
@pytest.mark.parametrize("k", [2, 3])
def test_two_products_by_factor_pencils(dtype, c_kind, k, rng):
    # c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ, Aᵢ Hermitian (indefinite), Cᵢ Hermitian positive definite.
    dims = (3, 4, 2)[:k]
    A = [_hpd(rng, n, dtype, 10.0) - 2.0 * np.eye(n, dtype=dtype) for n in dims]
    C_given, C_dense = [], []
    for i, n in enumerate(dims):
        if c_kind == "diagonal" or (c_kind == "mixed" and i == 0):
            g, d = _diagonal_kind(rng, n, dtype)
        elif c_kind == "mixed" and i == 1:
            g, d = matkron.identity(n), np.eye(n)
        else:
            d = _hpd(rng, n, dtype, 1e3)
            g = d
        C_given.append(g)
        C_dense.append(d)
    c1, c2 = 1.5, 0.7
    S = c1 * matkron.kron(*A) + c2 * matkron.kron(*C_given)
    M = c1 * _kron(A) + c2 * _kron(C_dense)
    N = M.shape[0]
    b = random_array(rng, (N, 2), dtype)
    x = _check_pencil_solve(S, M, b)
    # The structured product written first works as well: either order is found.
    T = c2 * matkron.kron(*C_given) + c1 * matkron.kron(*A)
    np.testing.assert_allclose(T.solve(b), x, rtol=1e-9, atol=1e-12 * np.abs(x).max())
    with pytest.raises(ValueError, match="generalized"):
        S.eigh()


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("negated", [(0,), (1,), (0, 1), (0, 1, 2)], ids=str)
def test_two_products_with_negative_definite_factors(dtype, negated, rng):
    # Negative definite Cᵢ (dense, diagonal, an odd or even number of them): the pencil of
    # −Cᵢ with the sign in c₂; against the dense matrix.
    dims = (3, 4, 2)
    A = [_hpd(rng, n, dtype, 10.0) - 2.0 * np.eye(n, dtype=dtype) for n in dims]
    C_given, C_dense = [], []
    for i, n in enumerate(dims):
        sign = -1 if i in negated else 1
        if i == 1:
            g, d = _diagonal_kind(rng, n, dtype)
            g = matkron.diagonal(sign * g.d)
        else:
            d = _hpd(rng, n, dtype, 1e3)
            g = sign * d
        C_given.append(g)
        C_dense.append(sign * d)
    c1, c2 = 1.5, 0.7
    S = c1 * matkron.kron(*A) + c2 * matkron.kron(*C_given)
    M = c1 * _kron(A) + c2 * _kron(C_dense)
    b = random_array(rng, (M.shape[0], 2), dtype)
    _check_pencil_solve(S, M, b)


def test_two_products_errors(rng):
    H = _hpd(rng, 3, np.float64)
    A = random_array(rng, (3, 3), np.float64)
    indefinite = H - 50 * np.eye(3)
    # Neither product definite (an indefinite factor in each).
    with pytest.raises(np.linalg.LinAlgError, match="not positive or negative definite"):
        (matkron.kron(H, indefinite) + matkron.kron(indefinite, H)).solve(np.ones(9))
    with pytest.raises(np.linalg.LinAlgError, match="not positive or negative definite"):
        (matkron.kron(H, indefinite) + matkron.kron(matkron.diagonal([1.0, -1.0, 1.0]),
                                                    H)).solve(np.ones(9))
    with pytest.raises(ValueError, match="the first product's factor 1 is not Hermitian"):
        (matkron.kron(H, A) + matkron.kron(np.eye(3), H)).solve(np.ones(9))
    with pytest.raises(NotImplementedError, match="scipy.sparse.linalg"):
        (matkron.kron(H, H) + matkron.kron(H, H) + matkron.identity(9)).solve(np.ones(9))
    with pytest.raises(NotImplementedError, match="scipy.sparse.linalg"):
        (matkron.kron(H, H) + matkron.kron(A, H) + matkron.kron(H, A)).solve(np.ones(9))


@pytest.mark.parametrize("hermitian", [True, False])
def test_kronsum_plus_shift(hermitian, rng):
    # A ⊕ B + s I, however it is written, is a Kronecker sum solved on its factors.
    if hermitian:
        A, B = _hpd(rng, 3, np.float64), _hpd(rng, 4, np.float64)
    else:
        A = random_array(rng, (3, 3), np.float64) + 3 * np.eye(3)
        B = random_array(rng, (4, 4), np.float64) + 4 * np.eye(4)
    s = 0.75
    M = _kronsum_dense([A, B]) + s * np.eye(12)
    b = random_array(rng, (12, 2), np.float64)
    forms = [
        matkron.kronsum(A, scipy.sparse.csr_array(B)) + s * matkron.identity(12),
        matkron.kron(matkron.identity(4), A) + matkron.kron(B, matkron.identity(3))
        + s * matkron.identity(12),
        s * matkron.identity(12) + 0.5 * matkron.kron(matkron.identity(4), A)
        + matkron.kron(B, matkron.identity(3)) + 0.5 * matkron.kron(matkron.identity(4), A),
    ]
    esign, elogdet = np.linalg.slogdet(M)
    for S in forms:
        np.testing.assert_allclose(S.solve(b), np.linalg.solve(M, b), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(S.inv() @ b, np.linalg.solve(M, b), rtol=1e-9, atol=1e-12)
        sign, logdet = S.slogdet()
        assert sign == esign and np.isclose(logdet, elogdet, rtol=1e-10)
        if hermitian:
            w, V = S.eigh()
            np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(M), rtol=1e-10)
    # One factor: c A + s I for a non-Hermitian A too.
    S = 2 * matkron.kron(A) + s * matkron.identity(3)
    np.testing.assert_allclose(S.solve(b[:3]), np.linalg.solve(2 * A + s * np.eye(3), b[:3]),
                               rtol=1e-10)


@pytest.mark.parametrize("hermitian", [True, False])
def test_kronsum_with_diagonal_and_idle_positions(hermitian, rng):
    # A diagonal factor and an idle position (no term: a zero diagonal) take their
    # entries and the identity as eigenpairs, and exp(t d) as exponential: the dense oracle.
    A = _hpd(rng, 3, np.float64) if hermitian else random_array(rng, (3, 3), np.float64)
    d = np.array([0.5, 2.0, -1.0, 3.0])
    s = 4.5
    I2, I3, I4 = (matkron.identity(n) for n in (2, 3, 4))
    # Positions (slowest first): diag(d) (4), idle (2), A (3).
    S = (matkron.kron(I4, I2, A) + matkron.kron(matkron.diagonal(d), I2, I3)
         + s * matkron.identity(24))
    L = matkron.kronsum(A, np.zeros((2, 2)), matkron.diagonal(d))
    M = _kronsum_dense([A, np.zeros((2, 2)), np.diag(d)])
    b = random_array(rng, (24, 2), np.float64)
    np.testing.assert_allclose(S.solve(b), np.linalg.solve(M + s * np.eye(24), b),
                               rtol=1e-9, atol=1e-12)
    sign, logdet = S.slogdet()
    esign, elogdet = np.linalg.slogdet(M + s * np.eye(24))
    assert sign == esign and np.isclose(logdet, elogdet, rtol=1e-10)
    E = scipy.linalg.expm(0.3 * M)
    np.testing.assert_allclose(L.expm_multiply(b, 0.3), E @ b, rtol=1e-9,
                               atol=1e-12 * np.abs(E @ b).max())
    np.testing.assert_allclose(L.expm().todense(), scipy.linalg.expm(M), rtol=1e-10)
    if hermitian:
        w, V = L.eigh()
        Vd = V.todense()
        np.testing.assert_allclose((Vd * w) @ Vd.T, M, atol=1e-10 * np.abs(M).max())
        np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(M), rtol=1e-10, atol=1e-12)
        shifted = L + s * matkron.identity(24)
        np.testing.assert_allclose(shifted.inv() @ b, np.linalg.solve(M + s * np.eye(24), b),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(L.funm(np.exp).todense(), scipy.linalg.expm(M),
                                   rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_inv_quad_logdet(dtype, rng):
    given, dense = _factors(rng, dtype)
    N = int(np.prod([d.shape[0] for d in dense]))
    forms = [
        (matkron.kron(*given) + 0.3 * matkron.identity(N), _kron(dense) + 0.3 * np.eye(N)),
        (matkron.kron(*given), _kron(dense)),
        (matkron.kronsum(dense[0], dense[3]), _kronsum_dense([dense[0], dense[3]])),
    ]
    for K, M in forms:
        y = random_array(rng, (M.shape[0], 3), dtype)
        quad, logdet = matkron.inv_quad_logdet(K, y)
        expected = np.einsum("ij,ij->j", y.conj(), np.linalg.solve(M, y))
        np.testing.assert_allclose(quad, expected, rtol=1e-9)
        assert np.isclose(logdet, np.linalg.slogdet(M)[1], rtol=1e-10)
        q1, _ = matkron.inv_quad_logdet(K, y[:, 1])
        assert np.ndim(q1) == 0 and np.isclose(q1, expected[1], rtol=1e-9)
        # These K are Hermitian: the quadratic form is real, in every dtype.
        assert not np.iscomplexobj(quad) and not np.iscomplexobj(q1)
    # A complex coefficient makes K non-Hermitian: the form stays complex.
    quad, _ = matkron.inv_quad_logdet(1j * matkron.kron(*given), np.ones(N, dtype))
    assert np.iscomplexobj(quad)
    with pytest.raises(TypeError, match="K must be a matkron"):
        matkron.inv_quad_logdet(dense[0], np.ones(3))
    with pytest.raises(ValueError, match=r"y has shape \(5,\)"):
        matkron.inv_quad_logdet(forms[0][0], np.ones(5))
    with pytest.raises(ValueError, match=r"K must be a square operator; got shape \(2, 3\)"):
        matkron.inv_quad_logdet(matkron.kron(np.ones((2, 3))), np.ones(2))


def test_kronsum_expm_multiply_factor_exponentials_out_of_range():
    # exp(710) overflows and exp(-710) is subnormal, but the sums are small: the grid of
    # factor exponentials falls back to the exponentials of the sums.
    A1, A2 = np.diag([710.0, 705.0]), np.diag([-710.0, -705.0])
    L = matkron.kronsum(A1, A2)
    M = _kronsum_dense([A1, A2])
    b = np.arange(1.0, 5.0)
    got = L.expm_multiply(b, [0.5, 1.0])
    for t, g in zip([0.5, 1.0], got):
        np.testing.assert_allclose(g, np.exp(t * np.diag(M)) * b, rtol=1e-12)


def test_direct_forms_with_complex_coefficients(rng):
    # Vᴴ (c₁ K + c₂ I) V = c₁ Λ + c₂ for complex c₁, c₂ too: solve, inv, slogdet.
    A, B = _hpd(rng, 3, np.float64), _hpd(rng, 2, np.float64)
    M0 = np.kron(A, B)
    b = random_array(rng, 6, np.complex128)
    for S, M in ((matkron.kron(A, B) + (0.5 + 1j) * matkron.identity(6),
                  M0 + (0.5 + 1j) * np.eye(6)),
                 ((1 + 1j) * matkron.kron(A, B) + matkron.identity(6),
                  (1 + 1j) * M0 + np.eye(6))):
        np.testing.assert_allclose(S.solve(b), np.linalg.solve(M, b), rtol=1e-10)
        np.testing.assert_allclose(S.inv() @ b, np.linalg.solve(M, b), rtol=1e-10)
        sign, logdet = S.slogdet()
        esign, elogdet = np.linalg.slogdet(M)
        assert np.isclose(sign, esign) and np.isclose(logdet, elogdet, rtol=1e-12)
        with pytest.raises(ValueError, match="real coefficients"):
            S.eigh()


def test_singular_within_rounding_raises(rng):
    # An eigenvalue that is 0 up to rounding, whichever its sign, is singular.
    X = rng.standard_normal((4, 2))
    P = X @ X.T  # rank 2
    for seed in range(6):
        Q = np.random.default_rng(seed).standard_normal((4, 2))
        with pytest.raises(np.linalg.LinAlgError, match="singular"):
            matkron.kron(Q @ Q.T).power(-0.5)
    A, B = _hpd(rng, 3, np.float64), _hpd(rng, 2, np.float64)
    w = np.linalg.eigvalsh(np.kron(A, B))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        (matkron.kron(A, B) - w[2] * matkron.identity(6)).solve(np.ones(6))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.kron(P).power(-1.5)


def test_direct_form_edge_cases(rng):
    # Integer diagonal factors; 0×0 factors; s I alone; rectangular factors; operators.
    np.testing.assert_allclose(matkron.kron(matkron.diagonal([1, 4])).power(0.5).todense(),
                               np.diag([1.0, 2.0]))
    empty = matkron.kron(np.zeros((0, 0)), np.eye(2)) + matkron.identity(0)
    assert empty.solve(np.zeros(0)).shape == (0,)
    assert empty.slogdet() == (1.0, 0.0)
    shift = matkron.kron(matkron.identity(2), matkron.identity(3)) + 0.5 * matkron.identity(6)
    np.testing.assert_allclose(shift.solve(np.ones(6)), np.full(6, 2 / 3))
    assert np.isclose(shift.slogdet()[1], 6 * np.log(1.5))
    with pytest.raises(ValueError, match="square factors"):
        (matkron.kron(np.ones((2, 3)), np.ones((3, 2))) + matkron.identity(6)).solve(np.ones(6))
    H = _hpd(rng, 3, np.float64)
    op = scipy.sparse.linalg.LinearOperator((3, 3), matvec=lambda v: H @ v, dtype=H.dtype)
    with pytest.raises(TypeError, match="LinearOperator"):
        (matkron.kron(op, matkron.identity(3)) + matkron.kron(matkron.identity(3), H)
         + matkron.identity(9)).solve(np.ones(9))


def test_one_busy_position_and_a_shift_is_not_densified(rng):
    # kron(A, I_n) + s I is a Kronecker product plus a shift (the pencil form), not a
    # Kronecker sum with an n×n zero factor.
    A = _hpd(rng, 3, np.float64)
    S = matkron.kron(A, matkron.identity(500)) + 0.1 * matkron.identity(1500)
    b = np.ones(1500)
    x = S.solve(b)
    np.testing.assert_allclose(x, np.repeat(np.linalg.solve(A + 0.1 * np.eye(3), np.ones(3)),
                                            500), rtol=1e-12)
    assert not isinstance(S._direct("solve"), matkron.KronSumOperator)
