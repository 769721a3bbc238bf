"""Fréchet derivatives through an eigendecomposition (Daleckii–Krein), and the reference
methods: the block-triangular matrix, the inverse through its LU factors, integer and
real powers."""

import numbers
import warnings

import numpy as np
import scipy.linalg

from ._frechet_expm import ExpmFrechet
from ._frechet_logm import LogmFrechet
from ._frechet_stack import from_vec, left, lu_factor, lu_solve, right, to_vec
from ._power import PowerJacobian, _power_divided_differences

__all__ = ["BlockFrechet", "EigFrechet", "FractionalPowerFrechet", "InvFrechet",
           "PowerFrechet", "divided_differences"]


def _close_formula(a, b, d, far, close, tol=0.5):
    """`close` where |d| < tol |b| (and b ≠ 0), else `far`."""
    with np.errstate(all="ignore"):
        near = (np.abs(d) < tol * np.abs(b)) & (b != 0)
        return np.where(near, close, far)


def divided_differences(name, lam, p=None, f=None, fprime=None):
    """(f(λ), Γ) with Γᵢⱼ = (f(λᵢ) − f(λⱼ)) / (λᵢ − λⱼ), f'(λᵢ) where λᵢ = λⱼ.

    The named functions avoid cancellation for close λ: exp as e^{λⱼ} expm1(d)/d, log as
    log1p(d/λⱼ)/d, the power as λⱼ^{p−1} expm1(p log1p(z))/z with z = d/λⱼ (|z| < 1/2),
    sqrt as 1/(√λᵢ + √λⱼ), the inverse as −1/(λᵢλⱼ), an integer power of real λ as in
    :func:`matkron.power_jacobian`. A callable f uses the quotient where
    |λᵢ − λⱼ| > ε^{1/3} max(|λᵢ|, |λⱼ|, 1) and f' at the midpoint otherwise, which balances
    the rounding of the quotient against the truncation of the midpoint rule (both about
    ε^{2/3} relative).
    """
    a = lam[:, None]
    b = lam[None, :]
    d = a - b
    same = d == 0
    safe = np.where(same, 1, d)
    with np.errstate(all="ignore"):
        if f is not None:
            fv = np.asarray(f(lam))
            fa, fb = fv[:, None], fv[None, :]
            scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
            close = np.abs(d) <= np.finfo(np.float64).eps ** (1 / 3) * scale
            mid = np.asarray(fprime((a + b) / 2))
            gamma = np.where(close, mid, (fa - fb) / np.where(close, 1, d))
            return fv, gamma
        if name == "expm":
            fv = np.exp(lam)
            gamma = np.where(same, np.exp(b), np.exp(b) * np.expm1(d) / safe)
        elif name == "logm":
            fv = np.log(lam)
            zb = np.where(b == 0, 1, b)
            far = (np.log(a) - np.log(b)) / safe
            close = np.log1p(d / zb) / safe
            gamma = np.where(same, 1 / a, _close_formula(a, b, d, far, close))
        elif name == "sqrtm":
            fv = np.sqrt(lam)
            gamma = 1 / (fv[:, None] + fv[None, :])
        elif name == "inv":
            fv = 1 / lam
            gamma = -1 / (a * b)
        elif name == "power":
            if lam.dtype.kind == "f" and float(p).is_integer() and p >= 1:
                return lam**p, _power_divided_differences(lam, int(p))
            fv = lam**p
            zb = np.where(b == 0, 1, b)
            z = d / zb
            far = (a**p - b**p) / safe
            close = b ** (p - 1) * np.expm1(p * np.log1p(z)) / np.where(z == 0, 1, z)
            gamma = np.where(same, p * a ** (p - 1), _close_formula(a, b, d, far, close))
        else:  # pragma: no cover - the dispatcher checks names
            raise ValueError(name)
    return fv, gamma


def needs_complex(name, lam, p):
    """Whether f(λ) leaves the reals for real eigenvalues λ (a real λ <= 0 for log, sqrt
    and non-integer powers)."""
    if name in ("logm", "sqrtm") or (name == "power" and not float(p).is_integer()):
        return bool(np.any(lam <= 0))
    return False


class EigFrechet:
    """L_f(A, E) = V (Γ ∘ (W E V)) W with A = V Λ W, W = V⁻¹ (Vᴴ for a Hermitian A, from
    eigh), Γ the divided differences of f on the eigenvalues (Daleckii and Krein 1965;
    Higham 2008, Functions of Matrices, Theorem 3.11): four GEMMs and a scaling per
    direction. Accurate to about κ(V) ε: exact to rounding for Hermitian A, and only for
    well-conditioned eigenvectors otherwise."""

    method = "eig"

    def __init__(self, A, name=None, p=None, f=None, fprime=None, hermitian=True):
        real_in = A.dtype.kind == "f"
        if hermitian:
            lam, V = scipy.linalg.eigh(A, check_finite=False)
            W = V.conj().T
            if name is not None and needs_complex(name, lam, p):
                lam = lam.astype(np.result_type(lam.dtype, np.complex64))
        else:
            lam, V = scipy.linalg.eig(A, check_finite=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                W = scipy.linalg.solve(V, np.eye(A.shape[0], dtype=V.dtype),
                                       check_finite=False)
            # The result is accurate to about κ(V) ε: say so where that is poor (a nearly
            # defective A), as SciPy's solve warns of an ill-conditioned matrix.
            kappa = np.linalg.norm(V, 1) * np.linalg.norm(W, 1)
            if not kappa * np.finfo(A.dtype).eps <= np.sqrt(np.finfo(A.dtype).eps):
                warnings.warn(
                    f"A's eigenvectors are ill-conditioned (condition number {kappa:.2g}): "
                    "method='eig' is accurate to about that times the machine epsilon; "
                    "method='auto' does not depend on them",
                    scipy.linalg.LinAlgWarning, stacklevel=5)
        if name in ("logm", "sqrtm", "inv") or (name == "power" and (
                p < 0 or not float(p).is_integer())):
            size = np.abs(lam)
            if size.size and not size.min() > size.max() * np.finfo(A.dtype).eps * size.size:
                raise np.linalg.LinAlgError(
                    f"A is singular (an eigenvalue is zero to working precision): {name} "
                    "has no Fréchet derivative there")
        fv, gamma = divided_differences(name, lam, p, f, fprime)
        dtype = V.dtype if gamma.dtype.kind != "c" else np.result_type(V.dtype, np.complex64)
        # A real A whose f(A) is real: the complex parts of a non-Hermitian
        # eigendecomposition cancel, and are dropped.
        self._real = real_in and not hermitian and not (
            name is not None and needs_complex(name, lam.real[lam.imag == 0], p))
        self.dtype = A.dtype if self._real else dtype
        # V and W in the dtype of Γ: real eigenvectors (eigh of a real symmetric A, or eig
        # of a real A with a real spectrum) meet complex divided differences where f(A)
        # leaves the reals or eig returned its eigenvalues complex.
        self.V, self.W, self.fv = V.astype(dtype, copy=False), W.astype(dtype, copy=False), fv
        self.gamma = gamma.astype(dtype, copy=False)

    def _sandwich(self, S, V, W, gamma):
        G = left(W, right(S, V))
        G *= gamma[:, None, :]
        out = left(V, right(G, W))
        return out.real.astype(self.dtype, copy=False) if self._real else out

    def value(self):
        out = (self.V * self.fv) @ self.W
        return out.real.astype(self.dtype, copy=False) if self._real else out

    def apply(self, S):
        return self._sandwich(S, self.V, self.W, self.gamma)

    def apply_adjoint(self, S):
        """L* (G) = Wᴴ (Γ̄ ∘ (Vᴴ G Wᴴ)) Vᴴ."""
        return self._sandwich(S, self.W.conj().T, self.V.conj().T, self.gamma.conj())


class InvFrechet:
    """L_inv(A, E) = −A⁻¹ E A⁻¹ through the LU factors of A, computed once: a left solve
    over the whole stack and a transposed solve of its rows."""

    method = "lu"

    def __init__(self, A):
        self.lu = lu_factor(A)
        info = self.lu[2]
        if info > 0:
            raise np.linalg.LinAlgError("A is singular: inv has no Fréchet derivative there")
        self.dtype = A.dtype

    def value(self):
        n = self.lu[0].shape[0]
        return lu_solve(self.lu, np.eye(n, dtype=self.dtype))

    def apply(self, S):
        n, k, _ = S.shape
        if S.size == 0:
            return np.zeros(S.shape, dtype=self.dtype)
        X = lu_solve(self.lu, S.reshape(n, k * n))
        Y = lu_solve(self.lu, X.reshape(n, k, n).reshape(n * k, n).T, trans=1)
        return -np.ascontiguousarray(Y.T).reshape(n, k, n)


class PowerFrechet:
    """Integer powers: p >= 0 through :class:`matkron.PowerJacobian` (binary powering on
    (power, derivative) pairs); p < 0 as the power −p of A⁻¹ composed with the derivative
    of the inverse, L = L_{pow}(A⁻¹, −A⁻¹ E A⁻¹)."""

    method = "power"

    def __init__(self, A, p):
        self.p = int(p)
        self.m = A.shape[0]
        self.dtype = A.dtype
        self.inv = InvFrechet(A) if self.p < 0 else None
        base = self.inv.value() if self.inv is not None else A
        self.J = PowerJacobian(base, abs(self.p), _applications=1)
        self._base = base

    def value(self):
        return np.linalg.matrix_power(self._base, abs(self.p))

    def apply(self, S):
        if self.inv is not None:
            S = self.inv.apply(S)
        y = self.J.matmat(to_vec(S))
        return from_vec(y, self.m, y.dtype)


class FractionalPowerFrechet:
    """A real power p through A^p = exp(p log A): L = L_exp(p log A, p L_log(A, E)), with
    the logarithm's inverse scaling and squaring data and the exponential's Padé data both
    computed once."""

    method = "schur"

    def __init__(self, A, p):
        self.log = LogmFrechet(A)
        self.p = p
        self.exp = ExpmFrechet(p * self.log.value())
        self.dtype = self.log.dtype

    def value(self):
        return self.exp.value()

    def apply(self, S):
        return self.exp.apply(self.p * self.log.apply(S))


def _block_function(name, p):
    if name == "power":
        if isinstance(p, numbers.Integral) or float(p).is_integer():
            return lambda M: np.linalg.matrix_power(M, int(p)) if p >= 0 else \
                np.linalg.matrix_power(scipy.linalg.inv(M), -int(p))
        return lambda M: scipy.linalg.fractional_matrix_power(M, p)
    return {"expm": scipy.linalg.expm, "logm": scipy.linalg.logm,
            "sqrtm": scipy.linalg.sqrtm, "inv": scipy.linalg.inv}[name]


class BlockFrechet:
    """The reference: L_f(A, E) is the upper-right block of f([[A, E], [0, A]]) (Higham
    2008, Functions of Matrices, (3.16)), by SciPy's f on the 2m×2m matrix, one direction
    at a time: about 8 times the work of f(A) per direction."""

    method = "block"

    def __init__(self, A, name, p):
        self.A, self.f = A, _block_function(name, p)
        fA = self.f(A)
        # f(A) of a real A is real unless a real eigenvalue is on the branch cut; SciPy's
        # fractional_matrix_power returns a complex array either way.
        real = A.dtype.kind == "f"
        if real and np.iscomplexobj(fA):
            lam = scipy.linalg.eigvals(A, check_finite=False)
            real = not needs_complex(name, lam.real[lam.imag == 0], p)
        self.dtype = A.dtype if real else np.result_type(A.dtype, np.complex64)
        self._fA = fA.real.astype(A.dtype) if real and np.iscomplexobj(fA) else fA

    def value(self):
        return self._fA

    def apply(self, S):
        n, k, _ = S.shape
        out = np.empty(S.shape, dtype=self.dtype)
        M = np.zeros((2 * n, 2 * n), dtype=np.result_type(self.A.dtype, S.dtype))
        M[:n, :n] = self.A
        M[n:, n:] = self.A
        for j in range(k):
            M[:n, n:] = S[:, j, :]
            block = self.f(M)[:n, n:]
            out[:, j, :] = block.real if self.dtype.kind == "f" else block
        return out
