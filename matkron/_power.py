"""The Jacobian of the matrix power, d(Aⁿ)[E] = Σₖ A^k E A^{n-1-k}, and of matrix polynomials."""

import functools
import sys
from typing import Any, Literal, TypeAlias

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from ._kron import identity
from ._linop import ProductOperator
from ._operators import SumOfKronOperator
from ._power_cy import PowerPlan
from ._typing import Array
from ._validation import (
    BLAS_INT_MAX,
    as_array,
    check_choice,
    check_ndim,
    check_rows,
    check_stack,
    count,
    is_hermitian,
    is_scalar,
    needs_hermitian,
    operand,
    result_dtype,
    sequence_error,
    square_matrix,
)

__all__ = ["PowerJacobian", "frechet_power", "polynomial_jacobian", "power_jacobian"]

METHODS = ("auto", "naive", "horner", "binary", "eig", "dense")
PowerMethod: TypeAlias = Literal["auto", "naive", "horner", "binary", "eig", "dense"]

# The most memory, in bytes, that an operator may use for the m²×m² matrix of
# method="dense" (m⁴ entries) and for the powers of A that method="naive" and kron_terms()
# store ((n − 1) m² entries, twice that for a polynomial): 1 GiB. Past it these raise
# ValueError instead of exhausting memory, and "auto" does not pick them.
MAX_STORED_BYTES = 2**30
# The largest n of method="horner", whose plan counts its steps in a C Py_ssize_t
# (2**63 - 1 on 64-bit platforms); binary powering counts bits and "eig" takes any n.
HORNER_MAX_N = sys.maxsize
# The identity is applied to the plan this many entries of columns at a time when the
# dense matrix is built (2 MiB of float64).
_BLOCK_ENTRIES = 2**18

# The cost model of method="auto", in multiply-adds of a GEMM (about 0.045 ns each with
# one BLAS thread on x86-64), calibrated for m = 4 … 32 and n = 2 … 1024 with
# `python -m matkron bench power` and a sweep of m with BLAS pinned to one thread.
#
# The cost of one BLAS call beyond its m³ multiply-adds: call overhead and the low
# efficiency of tiny GEMMs.
_CALL_COST = 2000
# A product with the dense m²×m² matrix per element, in those units: the matrix is streamed
# from memory once per product with no reuse (memory-bound, 0.26-0.30 ns per element for
# m = 8 … 32), about six times a multiply-add inside a GEMM.
_DENSE_COST = 6
# The dense matrix is considered for m up to this order (8 MiB in float64).
_DENSE_MAX_M = 32
# Multiply-add equivalents of one Hermitian eigendecomposition, in units of m³.
_EIGH_COST = 12
# One-off costs (building the dense matrix, the eigendecomposition) are spread over the
# number of products when it is known (frechet_power), else over this many: a short Krylov
# solve. The dense matrix costs m² products of the method that builds it.
_ASSUMED_APPLICATIONS = 100


def _check_coeffs(coeffs):
    """The coefficients as a 1-D array, and what they add to dtype promotion.

    An array's dtype takes part in promotion; Python numbers in a list are weak scalars
    (as in NumPy), so float coefficients keep a float32 A in float32.
    """
    if is_scalar(coeffs):
        raise sequence_error(coeffs, "coeffs", "numbers c_0, c_1, …")
    c = as_array(coeffs, "coeffs")
    check_ndim(c, "coeffs", 1)
    if isinstance(coeffs, np.ndarray):
        return c, [c.dtype]
    return c, list(coeffs)


def _fortran(a, dtype):
    """`a` as an aligned Fortran-contiguous array of `dtype`, `a` itself when it is one (as
    ``np.require(a, dtype, ["F", "A"])``, without its cost on small operands)."""
    flags = a.flags
    if a.dtype == dtype and flags.f_contiguous and flags.aligned:
        return a
    return np.array(a, dtype=dtype, order="F")


def _contiguous(a, dtype):
    """`a` itself when it is an aligned C- or Fortran-contiguous array of `dtype`, else
    :func:`_fortran` of it."""
    flags = a.flags
    if a.dtype == dtype and flags.aligned and (flags.c_contiguous or flags.f_contiguous):
        return a
    return _fortran(a, dtype)


# An empty array of each kernel dtype: what PowerPlan reads the dtype of its plan from.
_DTYPE_ARRAYS = {}


def _dtype_array(dtype):
    """An empty array of `dtype` (one per dtype, shared: nothing is ever written to it)."""
    arr = _DTYPE_ARRAYS.get(dtype)
    if arr is None:
        arr = _DTYPE_ARRAYS[dtype] = np.empty(0, dtype=dtype)
    return arr


@functools.lru_cache(maxsize=256)
def _binary_codes(n):
    """The steps of left-to-right binary powering for n >= 2: one byte per step after the
    leading bit, 0 for a squaring and 1 for a multiplication by A."""
    codes = []
    for bit in bin(n)[3:]:
        codes.append(0)
        if bit == "1":
            codes.append(1)
    return bytes(codes)


def _binary_gemms(n):
    """GEMMs per application of binary powering: 2 per squaring and per multiplication."""
    return 2 * (n.bit_length() - 1 + n.bit_count() - 1)


def _choose(m, n, hermitian, polynomial, applications=None, itemsize=16):
    """The method of least estimated cost per product for an m×m A and degree n >= 2,
    one-off costs spread over `applications` products (see _ASSUMED_APPLICATIONS); "dense"
    only within MAX_STORED_BYTES for entries of `itemsize` bytes (memoized: operators are
    made often, with few distinct arguments)."""
    return _choices(m, n, polynomial, applications, itemsize)[bool(hermitian)]


def _choices(m, n, polynomial, applications=None, itemsize=16):
    """(:func:`_choose` for a general A, for a Hermitian A): whether A is Hermitian needs
    checking only where they differ (one memoized call, as operators are made often)."""
    return _choices_cached(m, n, polynomial, applications, itemsize, MAX_STORED_BYTES)


@functools.lru_cache(maxsize=1024)
def _choices_cached(m, n, polynomial, applications, itemsize, max_stored_bytes):
    return tuple(_choose_cached(m, n, h, polynomial, applications, itemsize,
                                max_stored_bytes) for h in (False, True))


@functools.lru_cache(maxsize=256)
def _choose_cached(m, n, hermitian, polynomial, applications, itemsize, max_stored_bytes):
    gemm = m**3 + _CALL_COST
    uses = applications or _ASSUMED_APPLICATIONS
    apply = {}
    if polynomial:
        apply["horner"] = 2 * (n - 1) * gemm
    else:
        apply["binary"] = _binary_gemms(n) * gemm
    if hermitian:
        apply["eig"] = 4 * gemm + m * m
    costs = dict(apply)
    if hermitian:
        costs["eig"] += _EIGH_COST * m**3 / uses
    if m <= _DENSE_MAX_M and m**4 * itemsize <= max_stored_bytes:
        build = m * m * min(apply.values())  # the cheapest method on the m² unit vectors
        costs["dense"] = _DENSE_COST * m**4 + _CALL_COST + build / uses
    return min(costs, key=costs.get)


def _float_exponent(k):
    """The Python int k >= 0 as float exponents (hi, lo) with k = hi + lo, lo >= 0.

    hi is k rounded down to a float (inf beyond the float range) and lo the exact remainder,
    so |x|^k = |x|^hi |x|^lo is as accurate as one power for k beyond 2⁵³ (where float(k)
    alone would change the exponent by up to k 2⁻⁵³). lo is exact up to k < 2¹⁰⁶; beyond,
    |x|^k is 0, 1 or inf for every float |x| and the split is immaterial.
    """
    if k.bit_length() > 1023:
        return np.inf, 0.0
    hi = float(k)
    if int(hi) > k:
        hi = np.nextafter(hi, 0.0)
    return hi, float(k - int(hi))


def _abs_power(x, k):
    """|x|^k elementwise for float64 x and a Python int k >= 0 (no int64 overflow)."""
    hi, lo = _float_exponent(k)
    ax = np.abs(x)
    if lo == 0:
        return np.power(ax, hi)
    return _times(np.power(ax, hi), np.power(ax, lo))


def _times(x, y):
    """x y for non-negative arrays, 0 where either is 0 (also 0 times inf).

    In the divided differences 0 times inf arises only where the exact product is 0 or far
    below the float range (an exact zero sum times an overflowed power, or an underflowed
    power times a sum that overflowed because n did), so 0 is the correctly rounded result.
    """
    with np.errstate(invalid="ignore"):
        return np.where((x == 0) | (y == 0), 0.0, x * y)


def _matrix_of(apply, N, dtype):
    """The N×N Fortran-ordered matrix of a linear map given by apply(x, out) (out = J x for
    Fortran-ordered x and out of N rows), built a block of columns at a time: each block
    of the identity is mapped straight into its columns of the result, so no N×N identity
    is formed."""
    out = np.empty((N, N), dtype=dtype, order="F")
    width = max(1, min(N, _BLOCK_ENTRIES // max(N, 1)))
    eye = np.zeros((N, width), dtype=dtype, order="F")
    for j in range(0, N, width):
        b = min(width, N - j)
        rows, cols = np.arange(j, j + b), np.arange(b)
        eye[rows, cols] = 1
        apply(eye[:, :b], out[:, j : j + b])
        eye[rows, cols] = 0
    return out


def _power_divided_differences(lam, n):
    """Γᵢⱼ = (λᵢⁿ − λⱼⁿ) / (λᵢ − λⱼ) = Σ_{k<n} λᵢᵏ λⱼ^{n-1-k} for real λ, n >= 1.

    Γ is symmetric. For a pair take a the eigenvalue of larger modulus and b the other
    (Γ = 1 if n = 1 else 0 when both are 0). Then Γ = a^{n-1} S with r = b/a ∈ [−1, 1] and
    S = Σ_{j<n} rʲ = (1 − rⁿ)/(1 − r) >= 0, evaluated without cancellation:

    - r > 1/2: t = (b − a)/a ∈ (−1/2, 0] (b − a exact by Sterbenz's lemma);
      S = expm1(n log1p(t))/t, or n when t = 0;
    - r < −1/2: u = (a + b)/a = 1 − |r| ∈ [0, 1/2) (exact sum), e = expm1(n log1p(−u))
      = |r|ⁿ − 1; S = −e/(2 − u) for even n, (2 + e)/(2 − u) for odd n;
    - otherwise S = (1 − rⁿ)/(1 − r), both factors in [1/2, 3/2].

    The argument of expm1 is <= 0, where its condition number is at most 1, so S is
    accurate to a few ulps. Then |Γ| = (|a|^{k₁} S)|a|^{k₂} with k₁ = ⌊(n−1)/2⌋,
    k₂ = n − 1 − k₁, so that neither a^{n−1} overflowing nor underflowing while Γ is finite
    gives inf or 0 times a finite S, and the sign is sign(a)^{n−1}. Parities are taken from
    the Python int n and magnitudes from float exponents, so any n (10³⁰ too) works; the
    result has no NaN for finite eigenvalues.
    """
    lam = np.asarray(lam, dtype=np.float64)
    li = lam[:, None]
    lj = lam[None, :]
    if n == 1:
        return np.ones((lam.size, lam.size))
    swap = np.abs(lj) > np.abs(li)
    a = np.where(swap, lj, li)
    b = np.where(swap, li, lj)
    both_zero = a == 0
    a = np.where(both_zero, 1.0, a)
    b = np.where(both_zero, 0.0, b)
    nf = np.inf if n.bit_length() > 1023 else float(n)
    even = n % 2 == 0
    with np.errstate(all="ignore"):
        r = b / a
        # r > 1/2: close eigenvalues of one sign.
        t = (b - a) / a
        s_close = np.where(t == 0, nf, np.expm1(nf * np.log1p(t)) / np.where(t == 0, 1.0, t))
        # r < −1/2: close eigenvalues of opposite signs; u = 0 is r = −1 exactly.
        u = (a + b) / a
        e = np.expm1(nf * np.log1p(-u))
        if even:
            s_opposite = np.where(u == 0, 0.0, -e / (2 - u))
        else:
            s_opposite = np.where(u == 0, 1.0, (2 + e) / (2 - u))
        # |r| <= 1/2: rⁿ <= 2⁻ⁿ in modulus.
        rn = _abs_power(r, n)
        rn = np.where(r < 0, -rn, rn) if not even else rn
        s_far = (1 - rn) / (1 - r)
        S = np.where(r > 0.5, s_close, np.where(r < -0.5, s_opposite, s_far))
        k1 = (n - 1) // 2
        k2 = n - 1 - k1
        gamma = _times(_times(_abs_power(a, k1), S), _abs_power(a, k2))
    if (n - 1) % 2:
        gamma = np.where(a < 0, -gamma, gamma)
    return np.where(both_zero, 0.0, gamma)


def _poly_divided_differences(lam, coeffs):
    """Γᵢⱼ = (p(λᵢ) − p(λⱼ)) / (λᵢ − λⱼ) (p'(λ) when equal) by synthetic division.

    With b_d = c_d, b_k = c_k + λⱼ b_{k+1} (Horner at λⱼ), p(x) − p(λⱼ) = (x − λⱼ) q(x),
    q(x) = Σ_{k>=1} b_k x^{k-1}, evaluated by Horner at λᵢ: no division, no cancellation
    beyond that of evaluating p.
    """
    x = lam[:, None]
    y = lam[None, :]
    d = len(coeffs) - 1
    b = np.full((1, 1), coeffs[d], dtype=np.result_type(lam, coeffs))
    q = b
    for k in range(d - 1, 0, -1):
        b = coeffs[k] + y * b
        q = q * x + b
    return np.broadcast_to(q, (lam.size, lam.size))


def power_jacobian(A: ArrayLike, n: int, *, method: PowerMethod = "auto") -> "PowerJacobian":
    """The Jacobian of A ↦ Aⁿ at A, as a :class:`PowerJacobian` acting on vec(E).

    Parameters
    ----------
    A : array_like
        The m×m matrix at which the derivative is taken.
    n : int
        The power, n >= 0.
    method : {"auto", "naive", "horner", "binary", "eig", "dense"}, optional
        How products are computed (see Notes); "auto" picks the cheapest by an operation
        count.

    Returns
    -------
    PowerJacobian
        The (m², m²) operator vec(E) ↦ vec(d(Aⁿ)[E]), d(Aⁿ)[E] = Σ_{k=0}^{n-1} A^k E A^{n-1-k}.

    Raises
    ------
    TypeError
        If `n` is not an integer, or `A` is not numeric.
    ValueError
        If `n` is negative, `A` is not square, `method` is unknown, "eig" is asked for a
        non-Hermitian `A`, "dense" or "naive" would store more than the cap (see
        Notes), or `n` is larger than "horner" can count (``sys.maxsize``, 2⁶³ − 1 on
        64-bit platforms; "binary" and "eig" take any n).

    Notes
    -----
    On vec(E) the operator is the sum of Kronecker products
    Σ_{k=0}^{n-1} (A^{n-1-k})ᵀ ⊗ A^k (:meth:`PowerJacobian.kron_terms`). Methods, with the
    work of one product with an m×m E in GEMMs of m×m matrices:

    - "naive": that sum with the powers precomputed, in one call of the Kronecker kernel:
      2(n − 1) GEMMs, (n − 1) m² stored entries.
    - "horner": L₁ = E, L_{j+1} = A L_j + E A^j, with E A^j carried as a running product:
      2(n − 1) GEMMs, nothing stored.
    - "binary": binary powering of [[A, E], [0, A]], whose n-th power holds d(Aⁿ)[E] in its
      upper-right block, on (power, derivative) pairs: 2 GEMMs per bit of n,
      2(⌊log₂ n⌋ + popcount(n) − 1) in all; the powers of A are computed once, at
      construction.
    - "eig": for Hermitian A = V Λ Vᴴ, d(Aⁿ)[E] = V (Γ ∘ (Vᴴ E V)) Vᴴ with the divided
      differences Γᵢⱼ = (λᵢⁿ − λⱼⁿ)/(λᵢ − λⱼ) (n λᵢ^{n−1} when equal): 4 GEMMs whatever n.
      For a pair with a the eigenvalue of larger modulus and r = b/a ∈ [−1, 1],
      Γ = a^{n−1} Σ_{j<n} rʲ; the sum is (1 − rⁿ)/(1 − r) for abs(r) <= 1/2 and otherwise
      expm1(n log1p(·)) of the exact b/a − 1 or 1 + b/a (no cancellation), and a^{n−1} is
      applied in two halves around it, so Γ is within a few ulps of its exact value (or
      0 or ±inf where that is beyond the float range, never NaN) for any n.
    - "dense": the m²×m² matrix, built once (by one of the above on the m² unit vectors, a
      block of columns at a time) and applied by one GEMM; for small m.

    "dense" (m⁴ entries) and "naive" ((n − 1) m² entries) are bounded by a fixed cap on the
    memory they store, ``matkron._power.MAX_STORED_BYTES`` = 1 GiB: m <= 107 for "dense"
    in float64, 90 in complex128. Past it they raise ValueError, and "auto" never picks
    them.

    "auto" estimates the time of each method per product in GEMM multiply-adds, with a
    fixed cost per BLAS call; a product with the dense matrix, which streams it from memory,
    counts six per element. One-off costs (building the dense matrix, m² products of the
    method that builds it; the eigendecomposition) are spread over 100 products, a short
    Krylov solve, so "dense" wins only for very small m (about m <= 7) or many products.
    Nothing is computed when the operator is made. The first product of "binary" runs
    binary powering with the powers computed as it goes (one GEMM per step more, nothing
    stored; Horner's recurrence where that takes fewer GEMMs, n = 3), and the powers are
    stored from the second product on; "eig" decomposes A on
    its first product; a dense matrix that "auto" chose is built only after the operator
    has made m² products (what building it costs) the same way, so that an operator used
    a few times never pays for it (an explicit method="dense" builds it at once).
    Every method it picks is accurate to about n eps ‖d(Aⁿ)‖ ‖E‖, the condition of the
    problem in A: "eig" through the rounding of the eigenvalues, which moves Γ by n eps
    relative, binary powering through the rounding of the squarings.

    The E-independent data (powers of A, the Kronecker terms, the eigendecomposition, the
    dense matrix) is built in the dtype of each product, once per dtype, from A and the
    coefficients at full precision: a float64 x with a float32 A gets a float64 result of
    float64 accuracy.

    n = 0 gives the zero operator, n = 1 the identity. Products run in compiled loops with
    the GIL released and the workspace reused (per thread). A misaligned or byte-swapped A
    is copied once, at construction, and A is copied to Fortran order for the kernel when
    it is not; an operand is copied when it is misaligned, byte-swapped or (2-D) its
    columns are not contiguous.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> J = matkron.power_jacobian(X, 2)
    >>> np.allclose(J.todense(), np.kron(np.eye(2), X) + np.kron(X.T, np.eye(2)))
    True
    >>> E = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> matkron.unvec(J @ matkron.vec(E), (2, 2))
    array([[3., 5.],
           [0., 3.]])
    >>> X @ E + E @ X
    array([[3., 5.],
           [0., 3.]])
    """
    return PowerJacobian(A, n, method=method)


def polynomial_jacobian(
    A: ArrayLike, coeffs: ArrayLike, *, method: PowerMethod = "auto"
) -> "PowerJacobian":
    """The Jacobian of A ↦ p(A) = Σⱼ coeffs[j] Aʲ at A, as a :class:`PowerJacobian`.

    Parameters
    ----------
    A : array_like
        The m×m matrix at which the derivative is taken.
    coeffs : sequence of scalars
        c₀, c₁, …, c_d (increasing degree).
    method : {"auto", "naive", "horner", "eig", "dense"}, optional
        As for :func:`power_jacobian`; "horner" is the Horner scheme of p on
        (value, derivative) pairs with the E-independent values precomputed (2(d − 1) GEMMs),
        "eig" uses the divided differences of p, and "binary" does not apply.

    Returns
    -------
    PowerJacobian
        vec(E) ↦ vec(Σⱼ cⱼ d(Aʲ)[E]).

    Raises
    ------
    ValueError
        If `A` is not square, `coeffs` is not 1-D, the method does not apply, or "dense" or
        "naive" would store more than the cap (see :func:`power_jacobian`).
    TypeError
        If `coeffs` is a scalar or not numeric.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> E = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> J = matkron.polynomial_jacobian(A, [5.0, 1.0, 2.0])  # p(A) = 5 I + A + 2 A²
    >>> got = matkron.unvec(J @ matkron.vec(E), (2, 2))
    >>> np.allclose(got, E + 2 * (A @ E + E @ A))
    True
    """
    return PowerJacobian(A, coeffs=coeffs, method=method)


def frechet_power(A: ArrayLike, E: ArrayLike, n: int, *, method: PowerMethod = "auto") -> Array:
    """The Fréchet derivative of the matrix power: d(Aⁿ)[E] = Σ_{k=0}^{n-1} A^k E A^{n-1-k}.

    Parameters
    ----------
    A : array_like
        m×m.
    E : array_like
        The direction: m×m, or a stack of shape (k, m, m).
    n : int
        The power, n >= 0.
    method : str, optional
        As for :func:`power_jacobian`.

    Returns
    -------
    ndarray
        The derivative, of the shape of `E`, in ``np.result_type`` of `A` and `E`.

    Raises
    ------
    ValueError
        If `A` is not square or `E` does not match it; as :func:`power_jacobian` otherwise.

    Notes
    -----
    With one direction and method "auto", nothing is built for later products: one
    kernel call runs binary powering on the pairs (Aᵏ, d(Aᵏ)[E]), squaring
    (P, D) ↦ (P², P D + D P) and multiplying (P, D) ↦ (A P, A D + E P), with the power
    computed along the way and skipped after the last step: 3(⌊log₂ n⌋ + popcount(n) − 1)
    − 1 GEMMs (8 for n = 8), or Horner's L_{j+1} = A L_j + E A^j where its 2(n − 1) are
    fewer (n = 3). A Hermitian A takes the
    eigendecomposition instead when that costs fewer multiply-adds (large n). A stack of
    directions shares the powers of A through :class:`PowerJacobian`.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> E = np.eye(2)
    >>> matkron.frechet_power(A, E, 3)  # 3 A² = 0 for this nilpotent A
    array([[0., 0.],
           [0., 0.]])
    >>> matkron.frechet_power(A, E, 2)
    array([[0., 2.],
           [0., 0.]])
    """
    A = square_matrix(A, "A")
    n = count(n, "n")
    E = as_array(E, "E")
    m = A.shape[0]
    check_stack(E, m, "E", f"to match A of shape {A.shape}")
    dtype = result_dtype(A.dtype, E.dtype)
    batch = 1 if E.ndim == 2 else E.shape[0]
    if E.ndim == 2 and method == "auto" and n >= 2 and m > 0:
        return _frechet_power_oneshot(A, E, n, dtype)
    J = PowerJacobian(A.astype(dtype, copy=False), n, method=method, _applications=batch)
    if E.ndim == 2:
        return J.matvec(E.ravel(order="F")).reshape(m, m, order="F")
    x = np.moveaxis(E, 0, -1).reshape(m * m, batch, order="F")
    y = J.matmat(np.asfortranarray(x, dtype=dtype))
    return np.moveaxis(y.reshape(m, m, batch, order="F"), -1, 0)


def _frechet_power_oneshot(A, E, n, dtype):
    """d(Aⁿ)[E] for one direction with the fewest GEMMs: binary powering on (Aᵏ, L_k)
    pairs in one kernel call, the powers computed along the way (3 per step, the last
    power skipped), nothing kept; the eigendecomposition instead for a Hermitian A where
    the cost model of "auto" says it costs less (it is also the more accurate for large
    n)."""
    m = A.shape[0]
    codes = _binary_codes(n)
    gemm = m**3 + _CALL_COST
    # The eigendecomposition where the cost model prefers it, except for a small A and
    # n (m <= 16, n <= 64), where eigh's fixed cost and the Hermitian check outweigh a few
    # tiny GEMMs and binary powering's error (about n eps) is small anyway.
    if (_EIGH_COST * m**3 + 4 * gemm < (3 * len(codes) - 1) * gemm
            and not (m <= 16 and n <= 64) and is_hermitian(A)):
        J = PowerJacobian(A.astype(dtype, copy=False), n, method="eig")
        return J.matvec(E.ravel(order="F")).reshape(m, m, order="F")
    # C-ordered A and E: d(Aⁿ)[E]ᵀ = d((Aᵀ)ⁿ)[Eᵀ] on their Fortran-ordered transposes,
    # without copies.
    flip = (A.dtype == dtype and E.dtype == dtype and A.flags.c_contiguous
            and E.flags.c_contiguous and A.flags.aligned and E.flags.aligned)
    horner = 2 * (n - 1) < 3 * len(codes) - 1  # n = 3: Horner's 4 GEMMs against 5
    if flip:
        a, e = A.T, E.T
    else:
        # The oneshot kernel reads a C-ordered A transposed; Horner's needs it Fortran.
        a = _fortran(A, dtype) if horner else _contiguous(A, dtype)
        e = _fortran(E, dtype)
    if horner:
        plan = PowerPlan("horner", m, a, a=a, count=n)
    else:
        plan = PowerPlan("oneshot", m, a, a=a, codes=codes, count=len(codes))
    out = np.empty((m, m), dtype=dtype, order="F")
    plan.apply(e.reshape(-1, order="F"), out.reshape(-1, order="F"))
    return out.T if flip else out


class PowerJacobian(ProductOperator):
    """The Jacobian of A ↦ Aⁿ (or of a matrix polynomial) at A, acting on vec(E).

    Create it with :func:`power_jacobian` or :func:`polynomial_jacobian`. It is a
    :class:`scipy.sparse.linalg.LinearOperator` of shape (m², m²) that works inside SciPy's
    iterative solvers; ``rmatvec`` applies the adjoint, which is the same Jacobian at Aᴴ
    (with conjugated coefficients).

    Parameters
    ----------
    A : array_like
        The m×m matrix (kept without a copy when it has the operator's dtype and is aligned;
        do not modify it afterwards).
    n : int, optional
        The power; give this or `coeffs`.
    coeffs : sequence of scalars, optional
        The coefficients c₀, …, c_d of a polynomial p(A) = Σⱼ cⱼ Aʲ.
    method : str, optional
        See :func:`power_jacobian`.

    Attributes
    ----------
    A : ndarray
        The matrix, in the operator's dtype.
    n : int or None
        The power (None for a polynomial).
    coeffs : ndarray or None
        The polynomial coefficients (None for a power).
    method : str
        The method in use ("auto" resolved).

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.diag([1.0, 2.0])
    >>> J = matkron.power_jacobian(A, 3)
    >>> J.method in ("binary", "eig", "dense")
    True
    >>> J @ np.array([1.0, 0.0, 0.0, 0.0])  # E = e₁e₁ᵀ: 3 A₁₁² = 3
    array([3., 0., 0., 0.])
    """

    def __init__(
        self,
        A: ArrayLike,
        n: int | None = None,
        *,
        coeffs: ArrayLike | None = None,
        method: PowerMethod = "auto",
        _applications: Any = None,
    ) -> None:
        A = square_matrix(A, "A")
        if (n is None) == (coeffs is None):
            raise TypeError("give exactly one of n and coeffs")
        check_choice(method, "method", METHODS)
        if n is not None:
            n = count(n, "n")
            dtype = result_dtype(A.dtype)
            degree = n
            self._exact_coeffs = None
        else:
            coeffs, promote = _check_coeffs(coeffs)
            dtype = result_dtype(A.dtype, *promote)
            # Kept at full precision for products wider than the operator's dtype (Python
            # floats with a float32 A): the E-independent data is built in the dtype of
            # each product.
            self._exact_coeffs = coeffs.astype(np.result_type(coeffs.dtype, np.float64))
            coeffs = coeffs.astype(dtype)
            nonzero = np.flatnonzero(self._exact_coeffs)
            degree = int(nonzero[-1]) if nonzero.size else 0
            if method == "binary":
                raise ValueError("method='binary' applies to matrix powers only")
        m = A.shape[0]
        # Before A is cast or copied (a zero-strided view would become enormous).
        if m * m > BLAS_INT_MAX or (method == "dense" and m**4 > BLAS_INT_MAX):
            raise ValueError(
                f"A of order {m} is too large for the BLAS integer type (at most "
                f"{BLAS_INT_MAX} elements per matrix)"
            )
        self.A = operand(A, dtype)  # a misaligned A is copied, once
        self.n = n
        self.coeffs = coeffs
        self._degree = degree
        self._m = m
        hermitian = None
        requested = method
        if method == "eig":
            hermitian = is_hermitian(self.A)
            if not hermitian:
                raise needs_hermitian("method='eig'", "A", "a Hermitian (real symmetric) A")
        if method == "auto":
            if degree < 2 or m == 0:
                method = "horner" if coeffs is not None else "binary"
            else:
                choice = _choices(m, degree, coeffs is not None, _applications,
                                  dtype.itemsize)
                # Whether A is Hermitian (an O(m²) check) only where it changes the choice.
                if choice[0] != choice[1]:
                    hermitian = is_hermitian(self.A)
                method = choice[bool(hermitian)]
        if method == "horner" and n is not None and n > HORNER_MAX_N:
            raise ValueError(
                f"n = {n} is too large for method='horner', whose plan counts its steps in "
                f"a C integer: n must be at most {HORNER_MAX_N}; method='binary' (or 'eig' "
                "for a Hermitian A) takes any n"
            )
        if method == "dense" and not (degree == 0 or (n is not None and degree == 1)):
            self._check_dense(dtype)
        elif method == "naive":
            self._check_kron_terms(dtype, "method='naive'")
        # Products served before the plan is built (see _plan): "auto" may pick the dense
        # matrix for the products it expects, built once the operator has made as many
        # products as building it costs (m²); binary powering stores its powers from the
        # second product on (the first runs the one-shot recurrence, which needs none).
        trivial = degree == 0 or (n is not None and degree == 1) or m == 0
        self._defer_until = 0
        if not trivial and requested == "auto" and method == "dense":
            self._defer_until = m * m
        elif not trivial and method == "binary":
            self._defer_until = 1
        self.method = method
        self._hermitian = hermitian
        self._plans = {}
        self._helpers = {}
        self._uses = 0
        self._kron_ops = {}
        self._adjoint_op = None
        self._set_shape(dtype, (m * m, m * m))
        # What defines it, as SciPy's power operator's (A, p).
        self.args = (self.A, self.n if self.coeffs is None else self.coeffs)
        # The plan (powers, eigendecomposition) is built on the first product; the dense
        # matrix of an explicit method="dense" now (whose memory the caller asked for).
        self._fast = None
        if method == "dense" and requested == "dense" and m > 0:
            self._fast = self._plan(dtype)

    # -- construction of the E-independent data ------------------------------------------

    def _check_dense(self, dtype):
        """ValueError unless the dense matrix in `dtype` fits MAX_STORED_BYTES."""
        m = self._m
        need = m**4 * dtype.itemsize
        if need > MAX_STORED_BYTES:
            raise ValueError(
                f"method='dense' needs the {m * m}x{m * m} matrix of A of order m = {m}: "
                f"{need} bytes in {dtype}, more than the cap of {MAX_STORED_BYTES} bytes "
                "(matkron._power.MAX_STORED_BYTES); use another method"
            )

    def _check_kron_terms(self, dtype, what):
        """ValueError unless the powers stored by the Kronecker terms in `dtype` fit
        MAX_STORED_BYTES."""
        m, d = self._m, self._degree
        mats = 0 if d == 0 or m == 0 else (d - 1) * (1 if self.coeffs is None else 2)
        need = mats * m * m * dtype.itemsize
        if need > MAX_STORED_BYTES:
            if self.coeffs is None:
                power, others = f"n = {self.n}", "'binary', 'horner' or 'eig'"
            else:
                power, others = f"degree {d}", "'horner' or 'eig'"
            raise ValueError(
                f"{what} stores {mats} matrices of order m = {m} for {power}: {need} bytes "
                f"in {dtype}, more than the cap of {MAX_STORED_BYTES} bytes "
                f"(matkron._power.MAX_STORED_BYTES); use method={others}"
            )

    def _build_parts(self, dtype, method=None):
        """The kernel method and the arrays of the plan of `method` (by default the
        operator's), computed in `dtype`."""
        method = method or self.method
        A = _fortran(self.A, dtype)  # the kernel reads A with stride m
        m, d = self._m, self._degree
        polynomial = self.coeffs is not None
        if d == 0:
            return "zero", {}
        if not polynomial and d == 1:
            return "copy", {}
        if method == "eig":
            lam, V = scipy.linalg.eigh(A)
            lam = lam.astype(np.float64)
            if polynomial:
                gamma = _poly_divided_differences(lam, self._coeffs(np.complex128))
                if dtype.kind != "c":
                    gamma = gamma.real
            else:
                gamma = _power_divided_differences(lam, d)
            return "eig", {"mats": np.asfortranarray(V),
                           "gamma": np.asfortranarray(gamma, dtype=dtype)}
        if method == "dense":
            self._check_dense(dtype)
            plan = self._helper_plan(dtype)
            return "dense", {"mats": _matrix_of(plan.apply, m * m, dtype)}
        if polynomial:
            # Horner: S_d = c_d I, S_k = A S_{k+1} + c_k I; the steps use S_{d-1}, …, S_1.
            c = self._coeffs(dtype)
            mats = np.empty((m, m, d - 1), dtype=dtype, order="F")
            S = c[d] * np.eye(m, dtype=dtype)
            for s, k in enumerate(range(d - 1, 0, -1)):
                S = A @ S
                S[np.diag_indices(m)] += c[k]
                mats[:, :, s] = S
            return "stored", {"a": A, "mats": mats, "count": d - 1, "alpha": complex(c[d])}
        if method == "horner":
            return "horner", {"a": A, "count": d}
        # binary: left-to-right over the bits of n after the leading one; the power after
        # the last step is not needed.
        codes = _binary_codes(d)
        mats = np.empty((m, m, len(codes)), dtype=dtype, order="F")
        P = A
        for s, code in enumerate(codes):
            mats[:, :, s] = P
            if s + 1 < len(codes):
                P = P @ P if code == 0 else A @ P
        return "binary", {"a": A, "mats": mats, "codes": codes, "count": len(codes)}

    def _coeffs(self, dtype):
        """The polynomial coefficients rounded to `dtype` from full precision."""
        return self._exact_coeffs.astype(dtype)

    def _helper_plan(self, dtype):
        """The plan of the method that builds the dense matrix and serves the products
        before "auto" builds it: binary powering with the powers computed as it goes
        ("oneshot": nothing to build), Horner where its GEMMs are fewer (n = 3) and for a
        polynomial, or "eig" for a Hermitian A where that is cheaper."""
        plan = self._helpers.get(dtype)
        if plan is None:
            m, d = self._m, self._degree
            if self.coeffs is not None:
                kind, parts = self._build_parts(dtype, "horner")
            elif (self.method == "dense" and _choose(m, d, True, False, None) == "eig"
                  and self._is_hermitian(self.A)):
                kind, parts = self._build_parts(dtype, "eig")
            else:
                codes = _binary_codes(d)
                if 2 * (d - 1) < 3 * len(codes) - 1:
                    # Horner's 2(n - 1) GEMMs are fewer (n = 3: 4 against 5).
                    kind, parts = "horner", {"a": _fortran(self.A, dtype), "count": d}
                else:
                    # A as it is when contiguous: the oneshot kernel reads a C-ordered A
                    # transposed, so the first product copies nothing of it.
                    kind, parts = "oneshot", {"a": _contiguous(self.A, dtype),
                                              "codes": codes, "count": len(codes)}
            plan = self._helpers[dtype] = PowerPlan(kind, m, _dtype_array(dtype), **parts)
        return plan

    def _is_hermitian(self, A):
        if self._hermitian is None:
            self._hermitian = is_hermitian(A)
        return self._hermitian

    def _plan(self, dtype, columns=1):
        """The plan for a product of `columns` columns: until the operator has made
        _defer_until products, the helper (see __init__), so that an operator used a few
        times never pays for what only many products repay."""
        plan = self._plans.get(dtype)
        if plan is None:
            if self._uses + columns <= self._defer_until:
                return self._helper_plan(dtype)
            kind, parts = self._build_parts(dtype)
            plan = self._plans[dtype] = PowerPlan(
                kind, self._m, _dtype_array(dtype), **parts
            )
        return plan

    # -- products -----------------------------------------------------------------------

    def _product(self, x):
        """self @ x for an ndarray x of 1 or 2 dimensions."""
        fast = self._fast
        if fast is not None and x.ndim == 1:
            y = fast.matvec_fast(x)
            if y is not None:
                return y
        dtype = self.dtype if x.dtype == self.dtype else result_dtype(self.dtype, x.dtype)
        m = self._m
        if x.ndim not in (1, 2) or x.shape[0] != self.shape[1]:
            check_rows(x, self.shape[1], "x", f"vec(E) for E of shape ({m}, {m}) like A")
        if self.method == "naive":
            return self._kron_terms(dtype)._product(x)
        if x.size == 0:
            return np.zeros(x.shape, dtype=dtype)
        x = _fortran(x, dtype)
        out = np.empty(x.shape, dtype=dtype, order="F")
        columns = 1 if x.ndim == 1 else x.shape[1]
        plan = self._plan(dtype, columns)
        if self._defer_until:
            self._uses += columns
        if fast is None and dtype == self.dtype and self._plans.get(dtype) is plan:
            self._fast = plan  # the final plan in the operator's dtype: later 1-D products
        return plan.apply(x, out)

    def _derived(self, A, coeffs):
        # Coefficients as Python numbers: full precision, and weak in dtype promotion (A
        # already has the operator's dtype).
        coeffs = None if coeffs is None else coeffs.tolist()
        return PowerJacobian(A, self.n, coeffs=coeffs, method=self.method)

    @property
    def matvec_cost(self) -> int:
        """Multiply-adds of one product (GEMMs of m×m matrices, or the dense matrix's
        m⁴): the hint :func:`matkron.jacobian_chain` reads to price this Jacobian."""
        m, d = self._m, self._degree
        if d == 0 or (self.coeffs is None and d == 1) or m == 0:
            return m * m
        gemms = {"binary": _binary_gemms(d) if self.coeffs is None else 0, "eig": 4,
                 "horner": 2 * (d - 1), "naive": 2 * (d - 1)}.get(self.method)
        return m**4 if gemms is None else max(gemms, 1) * m**3

    rmatvec_cost = matvec_cost

    def _adjoint(self):
        if self._adjoint_op is None:
            coeffs = None if self.coeffs is None else self._exact_coeffs.conj()
            A = self.A.conj().T
            if self.method == "eig":
                A = (A + self.A) / 2  # Hermitian up to rounding: use the exact average
            self._adjoint_op = self._derived(A, coeffs)
            self._adjoint_op._adjoint_op = self
        return self._adjoint_op

    def _transpose(self):
        return self._derived(self.A.T, self._exact_coeffs)

    # -- structure ----------------------------------------------------------------------

    def kron_terms(self) -> SumOfKronOperator:
        """The operator as the sum of Kronecker products it is on vec(E).

        For the power, Σ_{k=0}^{n-1} (A^{n-1-k})ᵀ ⊗ A^k, term k being (1, (A^{n-1-k})ᵀ, A^k)
        with A⁰ = :func:`matkron.identity`; for a polynomial of degree d,
        Σ_{a=0}^{d-1} Q_aᵀ ⊗ A^a with Q_a = Σ_b c_{a+b+1} A^b. n = 0 (or d <= 0), or
        m = 0, gives an empty sum.

        Returns
        -------
        SumOfKronOperator
            The sum; it stores the powers of A ((n − 1) m² entries, 2(d − 1) m² for a
            polynomial).

        Raises
        ------
        ValueError
            If those entries take more than ``matkron._power.MAX_STORED_BYTES`` (1 GiB).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> S = matkron.power_jacobian(X, 3).kron_terms()
        >>> len(S.terms)
        3
        >>> dense = (np.kron(np.eye(2), X @ X) + np.kron(X.T, X)
        ...          + np.kron((X @ X).T, np.eye(2)))
        >>> np.allclose(S.todense(), dense)
        True
        """
        return self._kron_terms(self.dtype)

    def _kron_terms(self, dtype):
        """kron_terms() with the powers computed in `dtype` (the dtype of a product)."""
        op = self._kron_ops.get(dtype)
        if op is not None:
            return op
        self._check_kron_terms(dtype, "kron_terms()")
        m, d = self._m, self._degree
        shape = (m * m, m * m)
        if d == 0 or m == 0:
            op = self._kron_ops[dtype] = SumOfKronOperator([], shape=shape, dtype=dtype)
            return op
        A = self.A.astype(dtype, copy=False)
        powers = [identity(m)]
        for _ in range(1, d):
            prev = powers[-1]
            powers.append(A.copy() if len(powers) == 1 else prev @ A)
        if self.coeffs is None:
            terms = [(powers[d - 1 - k].T, powers[k]) for k in range(d)]
            coeffs = [1] * d
        else:
            c = self._coeffs(dtype)
            terms, coeffs = [], []
            # Q_{d-1} = c_d I; Q_a = c_{a+1} I + A Q_{a+1}.
            Q = None
            for a in range(d - 1, -1, -1):
                if Q is None:
                    terms.append((identity(m), powers[a]))
                    coeffs.append(c[d])
                    Q = c[d] * np.eye(m, dtype=dtype)
                else:
                    Q = A @ Q
                    Q[np.diag_indices(m)] += c[a + 1]
                    terms.append((Q.T, powers[a]))
                    coeffs.append(1)
        op = self._kron_ops[dtype] = SumOfKronOperator(terms, coeffs, shape=shape, dtype=dtype)
        return op

    def todense(self) -> Array:
        """The dense m²×m² matrix (small m only).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.power_jacobian(np.array([[2.0]]), 3).todense()
        array([[12.]])
        """

        def apply(x, out):
            out[...] = self._product(x)

        return _matrix_of(apply, self.shape[0], self.dtype)

    def __repr__(self):
        what = f"n={self.n}" if self.coeffs is None else f"degree {self._degree} polynomial"
        return (
            f"<{self.shape[0]}x{self.shape[1]} PowerJacobian of a {self._m}x{self._m} A, "
            f"{what}, method={self.method!r}, dtype={self.dtype}>"
        )
