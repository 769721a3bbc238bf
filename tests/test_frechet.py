"""matkron.frechet, FrechetOperator and cond against independent oracles: the upper-right
block of f([[A, E], [0, A]]) by SciPy, central and complex-step differences, SciPy's
expm_frechet and expm_cond, the dense Kronecker form built column by column from the
block oracle, and the norms of that dense matrix."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.linalg

import matkron

from .conftest import frechet_dense

FLOAT_DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))
# Relative error allowed, keyed by the dtype of the computation, for well-conditioned A.
RTOL = {np.dtype("float32"): 2e-4, np.dtype("complex64"): 2e-4,
        np.dtype("float64"): 1e-10, np.dtype("complex128"): 1e-10}

SCIPY_F = {
    "expm": scipy.linalg.expm,
    "logm": scipy.linalg.logm,
    "sqrtm": scipy.linalg.sqrtm,
    "inv": scipy.linalg.inv,
}


def scipy_f(name, p=None):
    if name == "power":
        return lambda M: scipy.linalg.fractional_matrix_power(M, p)
    return SCIPY_F[name]


def block_oracle(name, A, E, p=None):
    """The upper-right block of f([[A, E], [0, A]]), in complex128 (Higham 2008, (3.16))."""
    m = A.shape[0]
    A = np.asarray(A, dtype=np.complex128)
    M = np.block([[A, np.asarray(E, dtype=np.complex128)], [np.zeros_like(A), A]])
    return scipy_f(name, p)(M)[:m, m:]


def rel_err(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def well_conditioned(m, seed, kind="general", dtype=np.float64):
    """A with eigenvalues near 3 (away from the negative axis and from 0), ‖A‖ moderate."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, m)) / np.sqrt(max(m, 1)) + 3 * np.eye(m)
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal((m, m)) / np.sqrt(max(m, 1))
    if kind == "hermitian":
        A = (A + A.conj().T) / 2
    return A.astype(dtype)


CASES = [("expm", None), ("logm", None), ("sqrtm", None), ("inv", None), ("power", 3),
         ("power", -2), ("power", 0.5), ("power", 2.7), ("power", -0.3)]


@pytest.mark.parametrize("kind", ["general", "hermitian"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("name,p", CASES)
def test_against_block_oracle(name, p, dtype, kind):
    for m in (1, 5, 12):
        A = well_conditioned(m, seed=m, kind=kind, dtype=dtype)
        E = np.random.default_rng(m + 1).standard_normal((m, m))
        got = matkron.frechet(name, A, E, p=p)
        want = block_oracle(name, A, E, p)
        assert got.shape == (m, m)
        assert rel_err(got, want) <= RTOL[np.dtype(dtype)], (m, matkron.frechet(
            name, A, p=p).method)
        if np.dtype(dtype).kind == "f":
            assert got.dtype == np.float64  # f(A) is real


@pytest.mark.parametrize("name,p", CASES)
def test_block_method_is_the_reference(name, p):
    A = well_conditioned(4, seed=3)
    E = np.random.default_rng(4).standard_normal((4, 4))
    got = matkron.frechet(name, A, E, p=p, method="block")
    assert matkron.frechet(name, A, p=p, method="block").method == "block"
    assert rel_err(got, block_oracle(name, A, E, p)) <= 1e-12
    # A real A off the branch cut: real, as every other method gives it.
    assert got.dtype == matkron.frechet(name, A, E, p=p).dtype == np.float64


def test_expm_against_scipy_expm_frechet_all_degrees():
    rng = np.random.default_rng(5)
    # ‖A‖₁ across the degree thresholds 3, 5, 7, 9 and 13 with and without scaling.
    for scale in (1e-3, 0.05, 0.3, 1.0, 2.0, 10.0, 300.0):
        A = rng.standard_normal((9, 9))
        A *= scale / np.linalg.norm(A, 1)
        E = rng.standard_normal((9, 9))
        want = scipy.linalg.expm_frechet(A, E, compute_expm=False)
        # frechet() with a direction runs the compiled kernel; the operator runs the
        # stacked NumPy evaluation of the same algorithm.
        assert rel_err(matkron.frechet("expm", A, E), want) <= 1e-13
        L = matkron.frechet("expm", A)
        assert rel_err(L.apply(E), want) <= 1e-13
        assert rel_err(L.apply(np.stack([E, 2 * E]))[1], 2 * want) <= 1e-13
        assert rel_err(matkron.frechet("expm", A, np.stack([E, 2 * E]))[1], 2 * want) <= 1e-13
        assert rel_err(L.value(), scipy.linalg.expm(A)) <= 1e-13
        # float32 in float32, by both
        A32, E32 = A.astype(np.float32), E.astype(np.float32)
        for got in (matkron.frechet("expm", A32, E32), L.apply(E32),
                    matkron.frechet("expm", A32).apply(E32)):
            assert rel_err(got, want) <= 2e-4


def test_central_and_complex_step_differences():
    A = well_conditioned(6, seed=9)
    E = np.random.default_rng(10).standard_normal((6, 6))
    h = 1e-5
    for name in ("expm", "logm", "sqrtm", "inv"):
        f = SCIPY_F[name]
        central = (f(A + h * E) - f(A - h * E)) / (2 * h)
        assert rel_err(matkron.frechet(name, A, E), central) <= 1e-8
    # Complex step: f real on real matrices, so Im f(A + i h E)/h = L(A, E) + O(h²).
    h = 1e-20
    for name in ("expm", "inv"):
        step = SCIPY_F[name](A + 1j * h * E).imag / h
        assert rel_err(matkron.frechet(name, A, E), step) <= 1e-12


@pytest.mark.parametrize("name,p", CASES)
def test_dense_kronecker_form_and_adjoint(name, p):
    m = 4
    A = well_conditioned(m, seed=11, dtype=np.complex128)
    L = matkron.frechet(name, A, p=p)
    # The oracle's Kronecker form, column j = vec of the block oracle at E = unvec(e_j).
    K = kronecker_oracle(name, A, p)
    assert rel_err(L.todense(), K) <= 1e-10
    assert rel_err(L.H.todense(), K.conj().T) <= 1e-10
    rng = np.random.default_rng(12)
    x = rng.standard_normal(m * m) + 1j * rng.standard_normal(m * m)
    y = rng.standard_normal(m * m) + 1j * rng.standard_normal(m * m)
    lhs, rhs = np.vdot(y, L @ x), np.vdot(L.H @ y, x)
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs) * 10
    assert rel_err(L.rmatvec(y), K.conj().T @ y) <= 1e-10


def test_stack_against_loop_and_matmat():
    A = well_conditioned(7, seed=13)
    Es = np.random.default_rng(14).standard_normal((5, 7, 7))
    for name, p in CASES:
        L = matkron.frechet(name, A, p=p)
        stacked = matkron.frechet(name, A, Es, p=p)
        assert stacked.shape == (5, 7, 7)
        looped = np.array([matkron.frechet(name, A, E, p=p) for E in Es])
        np.testing.assert_allclose(stacked, looped, rtol=1e-13, atol=1e-13 * np.abs(
            looped).max())
        X = np.stack([E.ravel(order="F") for E in Es], axis=1)
        np.testing.assert_allclose(L @ X, np.stack([y.ravel(order="F") for y in looped], 1),
                                   rtol=1e-13, atol=1e-13 * np.abs(looped).max())


def test_real_A_complex_direction():
    A = well_conditioned(5, seed=15)
    rng = np.random.default_rng(16)
    E = rng.standard_normal((5, 5)) + 1j * rng.standard_normal((5, 5))
    for name in ("expm", "sqrtm", "logm"):
        got = matkron.frechet(name, A, E)
        assert got.dtype == np.complex128
        assert rel_err(got, block_oracle(name, A, E)) <= 1e-10


def test_negative_eigenvalue_gives_complex_result():
    A = np.diag([-2.0, 3.0, 5.0]) + np.triu(np.ones((3, 3)), 1)
    E = np.random.default_rng(17).standard_normal((3, 3))
    for name in ("sqrtm", "logm"):
        L = matkron.frechet(name, A)
        assert L.dtype == np.complex128
        assert rel_err(L.apply(E), block_oracle(name, A, E)) <= 1e-10


def kronecker_oracle(name, A, p=None):
    """The m²×m² matrix of L_f(A, ·) on vec(E), column by column from the block oracle."""
    return frechet_dense(scipy_f(name, p), np.asarray(A, dtype=np.complex128))


ON_THE_CUT = {
    # A negative eigenvalue: f(A) is complex for a real A, and f(z̄) != conj f(z) there.
    "real": np.array([[-2.0, 1.0, 0.3], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0]]),
    "real symmetric": np.array([[-1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 4.0]]),
    "complex": np.array([[-2.0, 1.0 + 1j, 0.3], [0.0, 3.0, 1.0], [0.5j, 0.0, 5.0]]),
}


@pytest.mark.parametrize("kind", list(ON_THE_CUT))
@pytest.mark.parametrize("name,p", [("logm", None), ("sqrtm", None), ("power", 0.5),
                                    ("power", 1.7), ("power", -0.3)])
def test_spectrum_on_the_branch_cut(name, p, kind):
    # The derivative, its adjoint and both condition numbers where an eigenvalue lies on
    # the branch cut: a real symmetric A takes the eigendecomposition with real
    # eigenvectors and complex divided differences; the adjoint is not L_f(Aᴴ, ·) there.
    A = ON_THE_CUT[kind]
    K = kronecker_oracle(name, A, p)
    L = matkron.frechet(name, A, p=p)
    assert rel_err(L.todense(), K) <= 1e-10
    assert rel_err(L.H.todense(), K.conj().T) <= 1e-10
    E = np.random.default_rng(23).standard_normal((3, 3))
    assert rel_err(matkron.frechet(name, A, E, p=p), block_oracle(name, A, E, p)) <= 1e-10
    two = matkron.cond(name, A, p=p, relative=False, rtol=1e-10)
    assert abs(two - np.linalg.norm(K, 2)) <= 1e-8 * np.linalg.norm(K, 2)
    one = matkron.cond(name, A, p=p, relative=False, norm=1)
    assert one <= np.abs(K).sum(axis=0).max() * (1 + 1e-12)
    assert one >= 0.3 * np.abs(K).sum(axis=0).max()


def test_eig_method_warns_for_ill_conditioned_eigenvectors():
    # Nearly defective: the eigendecomposition's answer is far off, and it says so.
    A = np.array([[2.0, 1.0], [0.0, 2.0 + 1e-13]], dtype=complex)
    E = np.ones((2, 2))
    with pytest.warns(scipy.linalg.LinAlgWarning, match="eigenvectors are ill-conditioned"):
        matkron.frechet("expm", A, E, method="eig")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = matkron.frechet("expm", A, E)  # "auto": Padé, no warning, and right
    assert rel_err(got, block_oracle("expm", A, E)) <= 1e-10


@pytest.mark.parametrize("kind", ["real", "complex"])
@pytest.mark.parametrize("name", ["expm", "logm", "sqrtm", "inv"])
def test_adjoint_of_the_adjoint_after_pickle_and_copy(name, kind):
    # The adjoint's own adjoint is rebuilt when pickle or copy dropped the cached link:
    # it must be L again, also where the adjoint conjugates (a complex A, the branch cut).
    import copy
    import pickle

    A = ON_THE_CUT[kind]
    L = matkron.frechet(name, A)
    K = kronecker_oracle(name, A)
    for back in (pickle.loads(pickle.dumps(L.H)), copy.deepcopy(L.H)):
        assert rel_err(back.todense(), K.conj().T) <= 1e-10
        assert rel_err(back.H.todense(), K) <= 1e-10
    assert rel_err(pickle.loads(pickle.dumps(L.T)).H.todense(), K.conj()) <= 1e-10


@pytest.mark.parametrize("name,p", CASES)
def test_eig_method_for_a_real_spectrum_of_a_real_general_A(name, p):
    # scipy.linalg.eig gives real eigenvectors and complex eigenvalues here.
    A = np.array([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0], [0.0, 0.0, 2.0]])
    E = np.random.default_rng(24).standard_normal((3, 3))
    got = matkron.frechet(name, A, E, p=p, method="eig")
    assert got.dtype == np.float64
    assert rel_err(got, block_oracle(name, A, E, p)) <= 1e-10


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["expm", "logm", "sqrtm", "inv"])
def test_dtypes(name, dtype):
    A = well_conditioned(6, seed=18, dtype=dtype)
    E = np.random.default_rng(19).standard_normal((6, 6)).astype(dtype)
    got = matkron.frechet(name, A, E)
    assert got.dtype == dtype
    assert rel_err(got, block_oracle(name, A, E)) <= RTOL[np.dtype(dtype)]
    # A float32 operator applied to float64 directions computes in float64.
    if dtype == np.float32:
        wide = matkron.frechet(name, A, E.astype(np.float64))
        assert wide.dtype == np.float64
        assert rel_err(wide, block_oracle(name, A, E)) <= 1e-10


def test_sqrtm_and_logm_larger_real_schur_with_blocks():
    # Order 80 exercises the recursive split of the Sylvester solver (blocks of 32) and
    # the 2×2 blocks of complex conjugate eigenvalues.
    rng = np.random.default_rng(20)
    A = rng.standard_normal((80, 80)) / 9 + 2 * np.eye(80)
    E = rng.standard_normal((2, 80, 80))
    for name in ("sqrtm", "logm"):
        got = matkron.frechet(name, A, E)
        assert got.dtype == np.float64
        for j in range(2):
            assert rel_err(got[j], block_oracle(name, A, E[j])) <= 1e-10


def test_hermitian_callable_against_block():
    H = well_conditioned(6, seed=21, kind="hermitian")
    E = np.random.default_rng(22).standard_normal((6, 6))
    got = matkron.frechet(np.exp, H, E, fprime=np.exp)
    assert rel_err(got, block_oracle("expm", H, E)) <= 1e-10
    got = matkron.frechet(np.log, H, E, fprime=lambda x: 1 / x)
    assert rel_err(got, block_oracle("logm", H, E)) <= 1e-10
    # Repeated eigenvalues: f' on the confluent ones.
    D = np.diag([1.0, 1.0, 2.0, 2.0 + 1e-9])
    got = matkron.frechet(np.sqrt, D, np.ones((4, 4)), fprime=lambda x: 0.5 / np.sqrt(x))
    assert rel_err(got, block_oracle("sqrtm", D, np.ones((4, 4)))) <= 1e-10


def test_cond_fro_against_expm_cond_and_dense():
    for m, seed in ((3, 23), (6, 24), (10, 25)):
        A = np.random.default_rng(seed).standard_normal((m, m))
        want = scipy.linalg.expm_cond(A)
        assert abs(matkron.cond("expm", A, rtol=1e-8) - want) <= 1e-6 * want
        assert abs(matkron.cond("expm", A) - want) <= 1e-3 * want
    A = well_conditioned(5, seed=26)
    for name, p in CASES:
        K = matkron.frechet(name, A, p=p, method="block").todense()
        fA = scipy_f(name, p)(A)
        absolute = np.linalg.norm(K, 2)
        got = matkron.cond(name, A, p=p, relative=False, rtol=1e-9)
        assert abs(got - absolute) <= 1e-7 * absolute
        rel = absolute * np.linalg.norm(A, "fro") / np.linalg.norm(fA, "fro")
        assert abs(matkron.cond(name, A, p=p, rtol=1e-9) - rel) <= 1e-7 * rel


def test_cond_one_norm_against_dense():
    for m, seed in ((3, 27), (8, 28), (10, 29)):
        A = well_conditioned(m, seed)
        for name in ("expm", "logm", "sqrtm", "inv"):
            K = matkron.frechet(name, A, method="block").todense()
            exact = np.abs(K).sum(axis=0).max()
            est = matkron.cond(name, A, norm=1, relative=False)
            assert exact / 3 <= est <= exact * (1 + 1e-10)
            # onenormest draws random starting columns: each call is checked on its own.
            rel = matkron.cond(name, A, norm=1)
            scale = np.linalg.norm(A, 1) / np.linalg.norm(scipy_f(name)(A), 1)
            assert exact * scale / 3 <= rel <= exact * scale * (1 + 1e-10)


def test_cond_empty_and_complex():
    assert matkron.cond("expm", np.zeros((0, 0))) == 0.0
    A = well_conditioned(4, seed=30, dtype=np.complex128)
    K = matkron.frechet("logm", A, method="block").todense()
    assert np.isclose(matkron.cond("logm", A, relative=False, rtol=1e-10),
                      np.linalg.norm(K, 2), rtol=1e-7)


def test_inputs_not_modified_and_empty():
    A = well_conditioned(4, seed=31)
    E = np.random.default_rng(32).standard_normal((3, 4, 4))
    A0, E0 = A.copy(), E.copy()
    for name, p in CASES:
        matkron.frechet(name, A, E, p=p)
        matkron.frechet(name, A, p=p) @ E[0].ravel()
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(E, E0)
    for name, p in CASES:
        empty = np.zeros((0, 0))
        assert matkron.frechet(name, empty, empty, p=p).shape == (0, 0)
        assert matkron.frechet(name, empty, p=p).todense().shape == (0, 0)
        assert matkron.cond(name, empty, p=p) == 0.0
    assert matkron.frechet("expm", A, np.zeros((0, 4, 4))).shape == (0, 4, 4)


def test_errors_name_the_argument():
    A = well_conditioned(3, seed=33)
    with pytest.raises(ValueError, match="f must be one of .*got 'cosm'"):
        matkron.frechet("cosm", A)
    with pytest.raises(ValueError, match=r"A must be a square matrix; got shape \(2, 3\)"):
        matkron.frechet("expm", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"E has shape \(2, 2\); expected \(3, 3\)"):
        matkron.frechet("expm", A, np.ones((2, 2)))
    with pytest.raises(TypeError, match="f='power' needs p"):
        matkron.frechet("power", A)
    with pytest.raises(ValueError, match="p applies to f='power' only; got p=2"):
        matkron.frechet("expm", A, p=2)
    with pytest.raises(TypeError, match="fprime must be"):
        matkron.frechet(np.exp, A + A.T)
    with pytest.raises(ValueError, match="Hermitian"):
        matkron.frechet(np.exp, np.triu(A), fprime=np.exp)
    with pytest.raises(ValueError, match="method must be one of .*got 'pade'"):
        matkron.frechet("expm", A, method="pade")
    with pytest.raises(ValueError, match="method='block' needs a named f"):
        matkron.frechet(np.exp, A + A.T, fprime=np.exp, method="block")
    with pytest.raises(ValueError, match="NaN or inf"):
        matkron.frechet("expm", np.full((2, 2), np.nan))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.frechet("logm", np.array([[0.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        matkron.frechet("inv", np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="norm must be one of 'fro', 1; got 2"):
        matkron.cond("expm", A, norm=2)
    with pytest.raises(ValueError, match=r"rtol must be a number in \(0, 1\); got 0"):
        matkron.cond("expm", A, rtol=0)
    with pytest.raises(ValueError, match=r"x has shape \(4,\); expected \(9,\)"):
        matkron.frechet("expm", A) @ np.ones(4)
    with pytest.raises(TypeError, match="relative must be True or False; got 'no'"):
        matkron.cond("expm", A, relative="no")
    for name in ("expm", "sqrtm", "logm"):
        for bad in (np.nan, np.inf):
            E = np.ones((3, 3))
            E[1, 2] = bad
            with pytest.raises(ValueError, match="E contains NaN or inf"):
                matkron.frechet(name, A, E)
            with pytest.raises(ValueError, match="E contains NaN or inf"):
                matkron.frechet(name, A, np.stack([E, E]))


def test_repr_and_methods():
    A = well_conditioned(3, seed=34)
    H = A + A.T
    assert matkron.frechet("expm", A).method == "pade"
    assert matkron.frechet("sqrtm", A).method == "schur"
    assert matkron.frechet("power", A, p=3).method == "power"
    assert matkron.frechet("expm", H).method == "eig"
    assert matkron.frechet("inv", H).method == "lu"
    assert "FrechetOperator of power, p=3" in repr(matkron.frechet("power", A, p=3))


def test_threads_share_one_operator():
    # The A-only data is built lazily per dtype; threads applying one operator at once,
    # in two dtypes, all get the derivative.
    import threading

    A = well_conditioned(6, seed=35)
    rng = np.random.default_rng(36)
    # Even directions are passed in float32 (exactly representable: the products compute
    # in float64).
    Es = rng.standard_normal((8, 6, 6)).astype(np.float32).astype(np.float64)
    for name in ("expm", "sqrtm", "logm"):
        L = matkron.frechet(name, A)
        want = [block_oracle(name, A, E) for E in Es]
        got = [None] * len(Es)

        def work(j, L=L):
            E = Es[j] if j % 2 else Es[j].astype(np.float32)
            got[j] = L.apply(E)

        threads = [threading.Thread(target=work, args=(j,)) for j in range(len(Es))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for j in range(len(Es)):
            assert got[j].dtype == np.float64
            assert rel_err(got[j], want[j]) <= 1e-10


SHARED_LU_SCRIPT = """
import threading, numpy as np, matkron, scipy.linalg
rng = np.random.default_rng(0)
A = rng.standard_normal((6, 6)) / 3
Es = rng.standard_normal((8, 6, 6))
want = [scipy.linalg.expm_frechet(A, E, compute_expm=False) for E in Es]
H = rng.standard_normal((5, 5)) + 5 * np.eye(5)
K = matkron.kron(H, H.T.copy())
bs = rng.standard_normal((8, 25))
solved = [np.linalg.solve(np.kron(H, H.T), b) for b in bs]
worst = 0.0
for _ in range(100):
    L = matkron.frechet("expm", A)
    got = [None] * 8
    def work(j):
        got[j] = (L.apply(Es[j]), K.solve(bs[j]))
    threads = [threading.Thread(target=work, args=(j,)) for j in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    for (g, s), w, x in zip(got, want, solved):
        worst = max(worst, np.abs(g - w).max() / np.abs(w).max(),
                    np.abs(s - x).max() / np.abs(x).max())
print(worst)
"""


def test_threads_share_lu_factors():
    # One direction at a time through a shared operator, and solves with a shared dense
    # factor: threads use one LU at once. (SciPy's getrs wrapper writes its pivot argument
    # during the call; shared pivots corrupted the heap.) In a subprocess, so that a
    # corrupted heap fails this test instead of the run; against expm_frechet and
    # np.linalg.solve of the dense Kronecker product.
    run = subprocess.run([sys.executable, "-c", SHARED_LU_SCRIPT], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout) <= 1e-12


def test_expm_kernel_in_chunks():
    # The compiled kernel takes directions in chunks of 2²⁰ entries (11 of order 300): 13
    # directions run as a chunk of 11 and one of 2.
    rng = np.random.default_rng(37)
    A = rng.standard_normal((300, 300)) / 17
    Es = rng.standard_normal((13, 300, 300))
    got = matkron.frechet("expm", A, Es)
    for j in (0, 10, 11, 12):
        want = scipy.linalg.expm_frechet(A, Es[j], compute_expm=False)
        assert rel_err(got[j], want) <= 1e-12, j
