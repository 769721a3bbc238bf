"""Accuracy of the Jacobian of the matrix power for large n and extreme eigenvalues.

Oracles: the divided differences Γ = (aⁿ − bⁿ)/(a − b) (n a^{n-1} when a = b) of the exact
binary fractions of two floats, in integer arithmetic via fractions.Fraction and rounded
once by float(); the same for a diagonal A, where d(Aⁿ)[E]ᵢⱼ = Γ(λᵢ, λⱼ) Eᵢⱼ exactly; and
Σ_{k<n} A^k E A^{n-1-k} as the upper-right block of [[A, E], [0, A]]ⁿ by binary powering in
np.longdouble (11 more bits than float64 on x86-64) for general Hermitian A. Never matkron.
"""

import itertools
from fractions import Fraction

import numpy as np
import pytest

import matkron
from matkron._power import _power_divided_differences

EPS = np.finfo(np.float64).eps  # 2⁻⁵²
SUBNORMAL = np.finfo(np.float64).smallest_subnormal  # 2⁻¹⁰⁷⁴
# The divided differences are within GAMMA_ULPS * EPS of the exact value relative to it,
# plus one subnormal spacing for results in the subnormal range.
GAMMA_ULPS = 4


# -- the exact reference ------------------------------------------------------------------


def _rounded(N, E):
    """N 2^E (N, E integers) correctly rounded to a float: ±inf beyond the float range, 0
    below half the smallest subnormal."""
    if N == 0:
        return 0.0
    sign = -1 if N < 0 else 1
    N = abs(N)
    # Keep 64 leading bits and a sticky bit: rounding to 53 bits (or fewer, subnormal) is
    # decided by them exactly as by all the bits.
    extra = N.bit_length() - 64
    if extra > 0:
        sticky = (N & ((1 << extra) - 1)) != 0
        N = (N >> extra) | int(sticky)
        E += extra
    try:
        value = float(Fraction(N) * Fraction(2) ** E)
    except OverflowError:
        value = np.inf
    return sign * value


def exact_gammas(lam, n):
    """The matrix of (aⁿ − bⁿ)/(a − b) (n a^{n−1} for a = b) over pairs of the floats in
    `lam`, each exact value correctly rounded.

    With every λ = p/d over the common power-of-two denominator d of their exact fractions,
    Γ = ((pⁿ − qⁿ)/(p − q)) / d^{n−1}, an exact integer division; the powers pⁿ are
    computed once per value.
    """
    fracs = [Fraction(float(v)) for v in lam]
    d = max(f.denominator for f in fracs)
    nums = [f.numerator * (d // f.denominator) for f in fracs]
    below = {p: p ** (n - 1) for p in set(nums)}
    powers = {p: below[p] * p for p in below}
    shift = -(d.bit_length() - 1) * (n - 1)
    size = len(lam)
    G = np.empty((size, size))
    for i in range(size):
        for j in range(i, size):
            p, q = nums[i], nums[j]
            if p == q:
                N = n * below[p]
            else:
                N, rem = divmod(powers[p] - powers[q], p - q)
                assert rem == 0
            G[i, j] = G[j, i] = _rounded(N, shift)
    return G


def exact_gamma(a, b, n):
    return exact_gammas([a, b], n)[0, 1]


def assert_gamma(lam, n, G):
    """G (the matrix of divided differences of lam) against exact_gammas, pair by pair."""
    assert not np.isnan(G).any(), n
    expected = exact_gammas(lam, n)
    for i, j in itertools.product(range(len(lam)), repeat=2):
        want, got = expected[i, j], G[i, j]
        if np.isinf(want):
            assert got == want, (n, lam[i], lam[j], got, want)
        else:
            tol = GAMMA_ULPS * EPS * abs(want) + SUBNORMAL
            assert abs(got - want) <= tol, (n, lam[i], lam[j], got, want,
                                            abs(got - want) / (EPS * abs(want)))


def test_exact_reference():
    # The reference itself, on cases worked by hand.
    assert exact_gamma(0.5, 0.25, 3) == 0.25 + 0.125 + 0.0625
    assert exact_gamma(3.0, 3.0, 4) == 4 * 27
    assert exact_gamma(-2.0, 2.0, 4) == 0.0
    assert exact_gamma(-2.0, 2.0, 5) == 16.0
    assert exact_gamma(2.0**600, 2.0**600, 3) == np.inf
    assert exact_gamma(-(2.0**600), -(2.0**600), 4) == -np.inf
    assert exact_gamma(2.0**-600, 0.0, 3) == 0.0
    assert exact_gamma(2.0**-537, 0.0, 3) == SUBNORMAL
    assert exact_gamma(0.1, 0.1, 2) == 0.2
    # (1 + 2⁻⁵²)² − 1 = 2⁻⁵¹ + 2⁻¹⁰⁴ over 2⁻⁵²: 2 + 2⁻⁵², which rounds to 2 (a tie to even).
    assert exact_gamma(1 + EPS, 1.0, 2) == 2.0


# -- the divided differences --------------------------------------------------------------

# Close, equal, of opposite sign, near ±1, zero, tiny (subnormal too) and large.
EXTREME_VALUES = np.array([
    0.5, 0.74, 0.9, 0.9 + 1e-9, 0.3, 0.7, -0.3, -0.70000001, -0.9, 0.0, 1.0, -1.0,
    1 - EPS / 2, 1 + EPS, -1 + EPS / 2, 1.5, -1.5, 2.0, -2.0, 1e-300, -1e-300, 5e-324,
    1e300, -1e300, 1e155, 3.0, -3.0 + 1e-15,
])
# The same kinds for n in the thousands, with tiny and large values of moderate exponent
# (the exact powers of 1e300 or 2⁻¹⁰⁷⁴ would take seconds there).
MODERATE_VALUES = np.array([
    0.5, 0.74, 0.9, 0.9 + 1e-9, 0.3, -0.3, -0.70000001, -0.9, 0.0, 1.0, -1.0, 1 - EPS / 2,
    1 + EPS, -1 + EPS / 2, 1.5, -1.5, 1e-5, -1e-5, 1e3, 1.001, -0.999,
])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 64, 101])
def test_divided_differences_against_fractions(n):
    assert_gamma(EXTREME_VALUES, n, _power_divided_differences(EXTREME_VALUES, n))


@pytest.mark.parametrize("n", [1000, 1001, 2000, 2001, 3000])
def test_divided_differences_thousands(n):
    assert_gamma(MODERATE_VALUES, n, _power_divided_differences(MODERATE_VALUES, n))


# Values of a few binary digits near ±1, so that the exact powers stay cheap at n = 10⁵:
# n log(λ) of order one is where neither a power nor its difference is negligible.
LARGE_N_VALUES = np.array([
    1.0, 1 - 2.0**-17, 1 - 3 * 2.0**-20, 1 - 2.0**-20, 1 + 2.0**-17, -1.0, -(1 - 2.0**-18),
    -(1 - 2.0**-20), 0.5, 0.0,
])


@pytest.mark.parametrize("n", [10_001, 100_000])
def test_divided_differences_large_n(n):
    assert_gamma(LARGE_N_VALUES, n, _power_divided_differences(LARGE_N_VALUES, n))


def test_divided_differences_one_ulp_from_one_large_n():
    lam = np.array([1.0, 1 - EPS / 2, -(1 - EPS / 2)])
    for n in (10_000, 10_001):
        assert_gamma(lam, n, _power_divided_differences(lam, n))


@pytest.mark.parametrize(
    "n", [2**64, 2**64 + 1, 10**30, 10**30 + 1, 2**1100, 2**1100 + 1],
    ids=["2**64", "2**64+1", "10**30", "10**30+1", "2**1100", "2**1100+1"],
)
def test_divided_differences_huge_n(n):
    # For n >= 2⁶⁴, λⁿ rounds to 0 for |λ| <= 1 − 2⁻⁵³ (at most e^{−2048}) and overflows
    # for |λ| >= 1 + 2⁻⁵², so the exact values round to: Γ(a, b) = 0 for |a|, |b| < 1;
    # aⁿ/(a − b) for a = ±1, |b| < 1; n (±1)^{n−1} for a = b = ±1; (1 − (−1)ⁿ)/2 for
    # (1, −1); ±inf, or 0 for b = −a and even n, when max(|a|, |b|) > 1.
    big = 1 + EPS
    lam = np.array([1.0, -1.0, 0.5, -0.5, 1 - EPS / 2, 0.0, big, -big])
    odd = n % 2
    G = _power_divided_differences(lam, n)
    assert not np.isnan(G).any()
    for i, j in itertools.product(range(len(lam)), repeat=2):
        a, b = lam[i], lam[j]
        if abs(b) > abs(a):
            a, b = b, a
        if abs(a) < 1:
            expected = 0.0
        elif abs(a) == 1 and abs(b) < 1:
            expected = float(Fraction(int(a) ** (2 - odd)) / (Fraction(a) - Fraction(b)))
        elif a == b and abs(a) == 1:
            expected = (a ** (1 - odd)) * (float(n) if n < 2**1024 else np.inf)
        elif a == -b and abs(a) == 1:
            expected = float(odd) * a ** (1 - odd)
        elif a == -b and not odd:
            expected = 0.0
        else:
            expected = np.inf if (a > 0 or odd) else -np.inf
        assert G[i, j] == expected, (n, lam[i], lam[j], G[i, j], expected)


# -- end to end: the repros of issue 15 ----------------------------------------------------


def diagonal_oracle(lam, E, n):
    """d(Aⁿ)[E] for A = diag(lam): Γ(λᵢ, λⱼ) Eᵢⱼ, rounded once from the exact Γ."""
    G = exact_gammas(lam, n)
    return G * E, G


def test_frechet_power_repro_small_eigenvalues_large_n():
    # Issue 15: all NaN from method="eig" (λ^{n-1} underflowed, expm1(n log1p(r)) overflowed).
    A = np.diag([0.5, 0.74])
    E = np.array([[0.0, 1.0], [1.0, 0.0]])
    expected, _ = diagonal_oracle([0.5, 0.74], E, 2000)
    assert expected[0, 1] == pytest.approx(1.2112344658425e-261, rel=1e-12)
    # eigh of a diagonal A gives V = I up to order and signs, so "eig" is as accurate as
    # Γ; binary powering rounds in each of its 2 log₂ n steps.
    for method, rtol in (("eig", 8 * EPS), ("auto", 8 * EPS), ("binary", 2000 * EPS),
                         ("dense", 2000 * EPS)):
        got = matkron.frechet_power(A, E, 2000, method=method)
        assert not np.isnan(got).any(), method
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=0, err_msg=method)


@pytest.mark.parametrize("n", [1000, 1700, 2000, 2001, 3000])
@pytest.mark.parametrize("sign", [1, -1])
def test_power_jacobian_repro_diagonal(n, sign):
    # Issue 15: NaN at n = 1700, 2000, 3000 and a relative error of 2e-3 at n = 1000 from
    # "auto" (which is "eig" for this A); close negative eigenvalues gave NaN at n = 2001.
    lam = sign * np.linspace(0.3, 0.9, 40)
    A = np.diag(lam)
    x = np.random.default_rng(n).standard_normal(40 * 40)
    E = x.reshape(40, 40, order="F")
    expected, _ = diagonal_oracle(lam, E, n)
    J = matkron.power_jacobian(A, n)
    assert J.method == "eig"
    y = (J @ x).reshape(40, 40, order="F")
    assert not np.isnan(y).any()
    # eigh of a diagonal matrix gives V = I up to order and signs, so the GEMMs are exact:
    # the error is Γ's and that of one product with Eᵢⱼ.
    tol = 8 * EPS * np.abs(expected) + SUBNORMAL
    assert np.all(np.abs(y - expected) <= tol), np.max(np.abs(y - expected) / tol)


def longdouble_block_oracle(A, E, n):
    """d(Aⁿ)[E], the upper-right block of [[A, E], [0, A]]ⁿ, by binary powering in
    np.longdouble (complex A and E as their 2×2 real blocks)."""
    A = np.asarray(A, dtype=np.complex128)
    E = np.asarray(E, dtype=np.complex128)
    m = A.shape[0]

    def real_block(Z):
        return np.block([[Z.real, -Z.imag], [Z.imag, Z.real]]).astype(np.longdouble)

    k = 2 * m
    M = np.zeros((2 * k, 2 * k), dtype=np.longdouble)
    M[:k, :k] = M[k:, k:] = real_block(A)
    M[:k, k:] = real_block(E)
    result = np.eye(2 * k, dtype=np.longdouble)
    power = M
    while n:
        if n & 1:
            result = result @ power
        n >>= 1
        if n:
            power = power @ power
    D = result[:k, k:]
    return (D[:m, :m] + 1j * D[m:, :m].astype(np.float64)).astype(np.complex128)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("n", [1000, 2000, 2001, 5000])
def test_eig_and_auto_on_hermitian_matrices_large_n(n, dtype):
    # A general Hermitian A with close eigenvalues of both signs, one zero, spectral radius
    # 0.9: the operator's norm is max |Γ| = n 0.9^{n−1}. Every method must be accurate
    # relative to it up to the condition of the problem in A, which is n: the rounding of
    # the eigenvalues (eps ‖A‖) moves Γ by n eps relative, and binary powering doubles the
    # relative error of a power at each squaring. Measured: eig up to 1.3 n eps, binary up
    # to 0.05 n eps; before the fix, NaN from n = 1700 on.
    rng = np.random.default_rng(n)
    m = 6
    lam = np.array([0.9, 0.9 - 1e-9, 0.74, 0.0, -0.5, -0.9])
    Z = rng.standard_normal((m, m))
    if np.dtype(dtype).kind == "c":
        Z = Z + 1j * rng.standard_normal((m, m))
    Q, _ = np.linalg.qr(Z)
    A = (Q * lam) @ Q.conj().T
    A = (A + A.conj().T) / 2
    E = rng.standard_normal((m, m)).astype(dtype)
    expected = longdouble_block_oracle(A, E, n)
    scale = n * 0.9 ** (n - 1) * np.linalg.norm(E)
    assert matkron.power_jacobian(A, n).method == "eig"
    for method in ("eig", "auto", "binary"):
        got = matkron.frechet_power(A, E, n, method=method)
        assert not np.isnan(got).any(), method
        err = np.abs(got - expected).max()
        assert err <= 8 * n * EPS * scale, (method, err / (n * EPS * scale))


@pytest.mark.parametrize("n", [10**30, 10**30 + 1], ids=["10**30", "10**30+1"])
def test_huge_power_binary_and_eig_agree(n):
    # d(Aⁿ)[E] for A = diag(1, −1, 1/2): Γ(1, 1) = n, Γ(−1, −1) = n (−1)^{n−1},
    # Γ(1, −1) = (1 − (−1)ⁿ)/2, Γ(1, 1/2) = 2, Γ(−1, 1/2) = (−1)ⁿ/(−3/2), Γ(1/2, 1/2) = 0
    # (to far below rounding).
    lam = [1.0, -1.0, 0.5]
    odd = n % 2
    sgn = -1.0 if odd else 1.0
    G = np.array([[float(n), float(odd), 2.0],
                  [float(odd), -sgn * float(n), -sgn / 1.5],
                  [2.0, -sgn / 1.5, 0.0]])
    E = np.arange(1.0, 10.0).reshape(3, 3)
    for method in ("binary", "eig", "auto"):
        got = matkron.frechet_power(np.diag(lam), E, n, method=method)
        np.testing.assert_allclose(got, G * E, rtol=1e-12, atol=0, err_msg=method)


# -- products wider than the operator's dtype ---------------------------------------------


def longdouble_frechet(A, E, coeffs):
    """Σ_j c_j Σ_{k<j} A^k E A^{j-1-k} in np.clongdouble from the exact values of A, E and
    the coefficients (float32 and float64 values are exact in long double)."""
    A = np.asarray(A).astype(np.clongdouble)
    E = np.asarray(E).astype(np.clongdouble)
    P = [np.eye(A.shape[0], dtype=np.clongdouble)]
    for _ in range(len(coeffs)):
        P.append(P[-1] @ A)
    total = np.zeros_like(E)
    for j, c in enumerate(coeffs):
        for k in range(j):
            total = total + np.clongdouble(c) * (P[k] @ E @ P[j - 1 - k])
    return total.astype(np.complex128)


@pytest.mark.parametrize("x_dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("a_dtype", [np.float32, np.complex64])
def test_wider_operand_gets_the_accuracy_of_its_dtype(a_dtype, x_dtype):
    # Issue 15 (4): method="naive" with a float32 A and a float64 x returned float64 with
    # float32 accuracy (4.8e-8 relative; the other methods 2e-16): kron_terms() held the
    # powers rounded to float32. Likewise the polynomial coefficients (Python floats with a
    # float32 A) were kept rounded to float32 for every product.
    rng = np.random.default_rng(11)
    m, n = 4, 7
    Z = rng.standard_normal((m, m))
    if np.dtype(a_dtype).kind == "c":
        Z = Z + 1j * rng.standard_normal((m, m))
    A = (Z / np.abs(np.linalg.eigvals(Z)).max()).astype(a_dtype)
    H = ((A + A.conj().T) / 2).astype(a_dtype)
    x = rng.standard_normal(m * m).astype(x_dtype)
    X = rng.standard_normal((m * m, 2)).astype(x_dtype)
    E = x.reshape(m, m, order="F")
    coeffs = [0.1, 0.3, -0.7, 1 / 3, 0.0, 0.2]  # Python floats: the operator stays 32-bit
    power = [0.0] * n + [1.0]
    out_dtype = np.result_type(a_dtype, x_dtype)

    def assert_close(got, expected):
        assert got.dtype == out_dtype
        assert np.abs(got - expected).max() <= 64 * EPS * np.abs(expected).max()

    for mat, methods in ((A, ("naive", "horner", "binary", "dense", "auto")),
                         (H, ("eig", "naive", "auto"))):
        for c, method in itertools.product((power, coeffs), methods):
            if c is power:
                J = matkron.power_jacobian(mat, n, method=method)
            elif method == "binary":
                continue
            else:
                J = matkron.polynomial_jacobian(mat, coeffs, method=method)
            assert J.dtype == np.dtype(a_dtype)
            assert_close(J @ x, longdouble_frechet(mat, E, c).ravel(order="F"))
            X0 = X[:, 0].reshape(m, m, order="F")
            assert_close(J.matmat(X)[:, 0], longdouble_frechet(mat, X0, c).ravel(order="F"))
            conj_c = [np.conj(v) for v in c]
            assert_close(J.H @ x, longdouble_frechet(mat.conj().T, E, conj_c).ravel("F"))
            assert_close(J.T @ x, longdouble_frechet(mat.T, E, c).ravel(order="F"))
