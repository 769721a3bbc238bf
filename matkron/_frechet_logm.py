"""The Fréchet derivative of the principal matrix logarithm by inverse scaling and squaring
in the Schur basis (Al-Mohy, Higham and Relton 2013)."""

import numpy as np

from ._frechet_sqrtm import schur_form, sqrtm_quasi_triangular
from ._frechet_stack import left, lu_factor, lu_solve, right
from ._kronsum_solve import quasi_triangular_sylvester_solve

__all__ = ["LogmFrechet"]

# θ_m of Al-Mohy and Higham (2012), Table 2.1: the largest ‖X‖₁ for which the degree-m
# Padé approximant r_m(X) of log(I + X) has relative backward error at most 2⁻⁵³; Al-Mohy,
# Higham and Relton (2013) show that the same bound holds for its Fréchet derivative.
_THETA = (None, 1.59e-5, 2.31e-3, 1.94e-2, 6.21e-2, 1.28e-1, 2.06e-1, 2.88e-1)
_MAX_DEGREE = 7
# More square roots than this means A is far from the identity in a way no number of
# roots fixes (an eigenvalue on or near the negative real axis): the loop stops.
_MAX_ROOTS = 60


class LogmFrechet:
    """L_log(A, ·) for a fixed A, by inverse scaling and squaring on the Schur form.

    With A = Z T Zᴴ (real quasi-triangular T for a real A with no eigenvalue on the closed
    negative real axis) and the square roots T_i = T_{i-1}^{1/2}, T_0 = T, taken until
    ‖T_s − I‖₁ <= θ₇, log A = 2ˢ Z r_m(T_s − I) Zᴴ with r_m the degree-m Padé approximant
    of log(1 + x), m the least degree with ‖T_s − I‖₁ <= θ_m. By the chain rule,
    L_log(A, E) = 2ˢ Z L_{r_m}(T_s − I, F_s) Zᴴ with F_0 = Zᴴ E Z and T_i F_i + F_i T_i =
    F_{i-1} (the derivative of the square root), and, from the partial fractions
    r_m(X) = Σ_j α_j X (I + β_j X)⁻¹ (Gauss–Legendre nodes β_j and weights α_j on [0, 1]),
    L_{r_m}(X, F) = Σ_j α_j (I + β_j X)⁻¹ F (I + β_j X)⁻¹ (Al-Mohy, Higham and Relton 2013,
    Algorithm 5.1, with the simpler choice of s and m above: one degree bound, no
    estimates of ‖X^k‖^{1/k}). The Schur form, the roots T_i and the LU factors of
    I + β_j X are computed once; a stack of directions costs s quasi-triangular Sylvester
    solves and 2m triangular solves, each over the whole stack, and four GEMMs per
    direction.
    """

    method = "schur"

    def __init__(self, A):
        T, self.Z = schur_form(A, "logm")
        self._ZH = self.Z.conj().T
        self.dtype = T.dtype
        n = T.shape[0]
        ident = np.eye(n, dtype=T.dtype)
        roots = []
        X = T - ident
        while np.linalg.norm(X, 1) > _THETA[_MAX_DEGREE] and len(roots) < _MAX_ROOTS:
            T = sqrtm_quasi_triangular(T)
            roots.append(T)
            X = T - ident
        norm = np.linalg.norm(X, 1) if n else 0.0
        degree = next((d for d in range(1, _MAX_DEGREE + 1) if norm <= _THETA[d]),
                      _MAX_DEGREE)
        nodes, weights = np.polynomial.legendre.leggauss(degree)
        self.beta = (nodes + 1) / 2
        self.alpha = weights / 2
        self.roots, self.s, self.degree = roots, len(roots), degree
        self.X = X
        self.lus = [lu_factor(ident + b * X, overwrite=True)
                    for b in self.beta]

    def value(self):
        """log A = 2ˢ Z r_m(X) Zᴴ."""
        n = self.X.shape[0]
        U = np.zeros((n, n), dtype=self.dtype)
        for a, lu in zip(self.alpha, self.lus):
            U += a * lu_solve(lu, self.X)
        return (2.0**self.s) * (self.Z @ U @ self._ZH)

    def apply(self, S):
        if S.size == 0:
            return np.zeros(S.shape, dtype=np.result_type(S.dtype, self.dtype))
        n, k, _ = S.shape
        F = left(self._ZH, right(S, self.Z))
        for R in self.roots:
            F = quasi_triangular_sylvester_solve(R, R, F)
        wide = F.reshape(n, k * n)
        total = np.zeros(F.shape, dtype=F.dtype)
        for a, lu in zip(self.alpha, self.lus):
            # (I + βX)⁻¹ F (I + βX)⁻¹: a left solve over the stack, then a right solve
            # as a transposed left solve of the rows (m k × m) of the stack.
            G = lu_solve(lu, wide).reshape(n, k, n)
            G = lu_solve(lu, G.reshape(n * k, n).T, trans=1).T.reshape(n, k, n)
            total += a * G
        return left(self.Z, right(total, self._ZH)) * (2.0**self.s)
