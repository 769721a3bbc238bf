"""The Fréchet derivative of the principal matrix square root: X L + L X = E with
X = A^{1/2}, solved in the Schur basis of A."""

import numpy as np
import scipy.linalg

from ._frechet_stack import left, right
from ._kronsum_solve import quasi_triangular_sylvester_solve, split_point

__all__ = ["SqrtmFrechet", "schur_form", "sqrtm_quasi_triangular"]


def schur_form(A, what):
    """(T, Z) with A = Z T Zᴴ: the real Schur form of a real A with no eigenvalue on the
    closed negative real axis (the principal square root and logarithm are then real and
    quasi-triangular too), else the complex Schur form.

    Raises LinAlgError naming `what` when A has a zero eigenvalue (up to rounding), where
    the principal square root and logarithm are not differentiable."""
    if A.dtype.kind == "f":
        T, Z = scipy.linalg.schur(A, output="real", check_finite=False)
        if _closed_negative_axis(T):
            T, Z = scipy.linalg.rsf2csf(T, Z, check_finite=False)
    else:
        T, Z = scipy.linalg.schur(A, output="complex", check_finite=False)
    diag = np.abs(np.diagonal(T))
    if diag.size and not diag.min() > diag.max() * np.finfo(T.dtype).eps * T.shape[0]:
        raise np.linalg.LinAlgError(
            f"A is singular (an eigenvalue is zero to working precision): {what} has no "
            "Fréchet derivative there")
    return T, Z


def _closed_negative_axis(T):
    """Whether the real quasi-triangular T has a real eigenvalue <= 0 (a 1×1 block)."""
    n = T.shape[0]
    sub = np.zeros(n, dtype=bool)
    if n > 1:
        nz = np.diagonal(T, -1) != 0
        sub[1:] |= nz
        sub[:-1] |= nz
    return bool(np.any((np.diagonal(T) <= 0) & ~sub))


def sqrtm_quasi_triangular(T):
    """The principal square root of an upper (quasi-)triangular T, itself upper
    (quasi-)triangular with the same 2×2 blocks.

    The recursive blocked Schur method (Deadman, Higham and Ralha 2013): the diagonal
    blocks' roots R₁₁, R₂₂, then R₁₂ from R₁₁ R₁₂ + R₁₂ R₂₂ = T₁₂. A real 2×2 block with
    eigenvalues θ ± iμ has the real root α I + (B − θ I)/(2α), α = Re √(θ + iμ) (Higham
    1987). T must have no eigenvalue on the closed negative real axis if it is real.
    """
    n = T.shape[0]
    if n == 0:
        return T.copy()
    if n == 1:
        return np.sqrt(T)
    if n == 2 and T[1, 0] != 0:
        theta = (T[0, 0] + T[1, 1]) / 2
        mu2 = -((T[0, 0] - T[1, 1]) / 2) ** 2 - T[0, 1] * T[1, 0]
        alpha = np.sqrt(complex(theta, np.sqrt(max(mu2, 0.0)))).real
        R = (T - theta * np.eye(2, dtype=T.dtype)) / (2 * alpha)
        R[np.diag_indices(2)] += alpha
        return R
    p = split_point(T) if n > 2 else 1
    R = np.zeros_like(T)
    R[:p, :p] = sqrtm_quasi_triangular(T[:p, :p])
    R[p:, p:] = sqrtm_quasi_triangular(T[p:, p:])
    R[:p, p:] = quasi_triangular_sylvester_solve(
        R[:p, :p], R[p:, p:], T[:p, np.newaxis, p:])[:, 0, :]
    return R


class SqrtmFrechet:
    """L_sqrt(A, ·) for a fixed A: the Schur form A = Z T Zᴴ and R = T^{1/2} (real and
    quasi-triangular for a real A with no eigenvalue on the closed negative real axis)
    computed once; a stack of directions E then costs, per direction, four GEMMs for
    Zᴴ E Z and Z Y Zᴴ and one quasi-triangular Sylvester solve R Y + Y R = Zᴴ E Z.

    The Fréchet derivative L of X = A^{1/2} solves X L + L X = E (differentiate X X = A;
    Higham 2008, Functions of Matrices, Section 6.1).
    """

    method = "schur"

    def __init__(self, A):
        self.T, self.Z = schur_form(A, "sqrtm")
        self.R = sqrtm_quasi_triangular(self.T)
        self.dtype = self.R.dtype
        self._ZH = self.Z.conj().T

    def value(self):
        """A^{1/2} = Z R Zᴴ."""
        return self.Z @ self.R @ self._ZH

    def apply(self, S):
        if S.size == 0:
            return np.zeros(S.shape, dtype=np.result_type(S.dtype, self.dtype))
        C = left(self._ZH, right(S, self.Z))
        Y = quasi_triangular_sylvester_solve(self.R, self.R, C)
        return left(self.Z, right(Y, self._ZH))
