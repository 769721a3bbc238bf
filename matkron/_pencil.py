"""Generalized Hermitian eigendecompositions of factor pairs, the pencils (A, C).

For Hermitian A and Hermitian positive definite C, A V = C V diag(λ) with Vᴴ C V = I
(``scipy.linalg.eigh(a, b)``). Done factor by factor, it diagonalizes a sum of two
Kronecker products: with V = ⊗ Vᵢ,

    Vᴴ (c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ) V = c₁ ⊗ Λᵢ + c₂ I.

C = I is the plain eigendecomposition (K + s I); a positive diagonal C = D is done exactly
by the scaling D^{-1/2} A D^{-1/2}, with no Cholesky factorization. A negative definite C
is the pencil (A, −C) with Vᴴ C V = −I: its sign moves into c₂ (an even number of negative
definite factors leaves ⊗ Cᵢ positive definite).
"""

import functools
import warnings

import numpy as np
import scipy.linalg

from ._factors import DiagonalFactor, hermitian_eigh

__all__ = ["Pencil", "factor_pencil"]


def factor_pencil(a, c, dtype):
    """(λ, V, log |det C|, σ) of the pencil (A, σ C) of two square factors of one order.

    σ is 1 for a Hermitian positive definite C and −1 for a negative definite one, so that
    A V = σ C V diag(λ), Vᴴ A V = diag(λ) and Vᴴ C V = σ I. λ is real, of the real dtype
    of `dtype`; V is a factor matkron takes (an array, a :class:`DiagonalFactor` or an
    identity). ValueError when A is not Hermitian; numpy.linalg.LinAlgError when C is not
    Hermitian definite.
    """
    if not a.is_hermitian():
        raise ValueError("is not Hermitian")
    real = np.finfo(dtype).dtype
    if c.kind == "identity":
        lam, v = a.eigh()
        return np.asarray(lam, dtype=real), v, 0.0, 1
    if c.kind == "diagonal":
        d = np.asarray(c.d)
        if d.dtype.kind == "c" and (d.imag != 0).any():
            raise np.linalg.LinAlgError("is not positive or negative definite")
        d = d.real.astype(real)
        sign = 1 if (d > 0).all() else -1 if (d < 0).all() else 0
        if not sign:
            raise np.linalg.LinAlgError("is not positive or negative definite")
        d = sign * d
        scale = 1 / np.sqrt(d)
        if a.kind in ("identity", "diagonal"):
            entries = np.ones(d.size, real) if a.kind == "identity" else a.d.real
            return (entries / d).astype(real), DiagonalFactor(scale.astype(dtype)), float(
                np.log(d).sum()), sign
        scaled = scale[:, None] * a.dense(dtype) * scale[None, :]
        lam, u = hermitian_eigh(scaled)
        return lam.astype(real), scale[:, None] * u, float(np.log(d).sum()), sign
    if not c.is_hermitian():
        raise np.linalg.LinAlgError("is not Hermitian")
    cd = c.dense(dtype)
    ad = a.dense(dtype)
    for sign in (1, -1):
        try:
            lam, v = scipy.linalg.eigh(ad, sign * cd, check_finite=False)
        except np.linalg.LinAlgError:
            continue
        _, logdet = np.linalg.slogdet(cd)
        return lam.astype(real), v, float(logdet), sign
    raise np.linalg.LinAlgError("is not positive or negative definite")


class Pencil:
    """A sum diagonalized by factor pencils: Vᴴ (sum) V = diag(w), Vᴴ (⊗ Cᵢ) V = I, with
    w = c₁ (λ₁ ⊗ … ⊗ λ_k) + c₂ from the factors' pencil eigenvalues `lams` (the first
    entry of `lams` may be a placeholder of ones).

    `exact[j]` says whether lams[j] is exact to a relative rounding (identities and
    diagonals) rather than to the absolute accuracy of an eigendecomposition, ε max |λ|
    (the approximate bound of the LAPACK Users' Guide, § 4.7.1): see
    :meth:`check_nonsingular`.
    """

    __slots__ = ("V", "c1", "c2", "exact", "lams", "logdet_c", "nearest", "unitary", "w")

    def __init__(self, w, V, logdet_c, unitary, lams, exact, c1, c2):
        self.w, self.V, self.logdet_c, self.unitary = w, V, logdet_c, unitary
        self.lams, self.exact, self.c1, self.c2 = lams, exact, c1, c2
        self.nearest = None  # ("ok" | "singular" | "ill", |w|, its bound), once

    def rounding_bounds(self, growth):
        """A bound on the error of each entry of w from the rounding of the factor
        eigenvalues it multiplies and of the products and sum: with e_j = g ε max |λ_j|
        for an eigendecomposition of order n_j (ε |λ_j| when exact), g = growth(n_j), and
        k factors,

            ε (k + 1) (|c₁ Π λ| + |c₂|)  +  |c₁| Σ_j e_j Π_{l≠j} |λ_l|.
        """
        eps = np.finfo(self.w.dtype).eps
        absl = [np.abs(lam) for lam in self.lams]
        if not absl:
            return np.full(self.w.shape, eps * abs(self.c2))
        total = functools.reduce(lambda u, a: np.multiply.outer(u, a).ravel(), absl)
        bound = total * ((len(absl) + 1) * eps * abs(self.c1))
        bound += (len(absl) + 1) * eps * abs(self.c2)
        for j, a in enumerate(absl):
            if self.exact[j] or not a.size:
                continue
            err = np.full(a.size, growth(a.size) * eps * a.max())
            parts = absl[:j] + [err] + absl[j + 1:]
            bound += abs(self.c1) * functools.reduce(
                lambda u, b: np.multiply.outer(u, b).ravel(), parts)
        return bound

    def _largest_bound(self, growth):
        """The largest of rounding_bounds(growth), in O(k)."""
        eps = np.finfo(self.w.dtype).eps
        tops = [float(np.abs(lam).max(initial=0.0)) for lam in self.lams]
        top = float(np.prod(tops)) if tops else 0.0
        grown = sum(growth(lam.size) for j, lam in enumerate(self.lams)
                    if not self.exact[j] and lam.size)
        return eps * (((len(tops) + 1) + grown) * abs(self.c1) * top
                      + (len(tops) + 1) * abs(self.c2))

    def check_nonsingular(self):
        """LinAlgError when an eigenvalue is 0 within its own rounding error, and
        scipy.linalg.LinAlgWarning when it is within what that error may grow to.

        An eigendecomposition's eigenvalues are accurate to about ε max |λ| (the LAPACK
        Users' Guide's bound, § 4.7.1), at worst to n ε max |λ|: an eigenvalue of the sum
        within twice the first bound of 0 is 0 to working precision (an exactly singular
        sum computes to eigenvalues of that size, of either sign); one within the second
        is ill-conditioned, solved with a warning, as scipy.linalg.solve warns. A bound
        per eigenvalue, not one scaled to the largest: a small shift of a wide spectrum
        (Gaussian processes in float32) is far from singular in this sense."""
        if not self.w.size:
            return
        if self.nearest is None:
            size = np.abs(self.w)
            smallest = float(size.min())
            if smallest > self._largest_bound(_WORST):  # every |w| clears every bound
                self.nearest = ("ok", smallest, 0.0)
            else:
                self.nearest = ("ok", smallest, 0.0)
                for verdict, growth in (("singular", _TYPICAL), ("ill", _WORST)):
                    bound = self.rounding_bounds(growth)
                    i = int(np.argmin(size - bound))
                    if not size[i] > bound[i]:
                        self.nearest = (verdict, float(size[i]), float(bound[i]))
                        break
        verdict, size, bound = self.nearest
        if verdict == "singular":
            raise np.linalg.LinAlgError(
                f"the operator is singular: an eigenvalue is {size:.3g}, 0 within its "
                f"rounding error {bound:.3g}")
        if verdict == "ill":
            warnings.warn(
                f"ill-conditioned: an eigenvalue is {size:.3g}, within the rounding error "
                f"{bound:.3g} the factors' eigendecompositions may have: the result may "
                "not be accurate", scipy.linalg.LinAlgWarning, stacklevel=4)  # solve's caller


def _TYPICAL(n):
    """The growth of an eigendecomposition's error taken as typical: twice ε max |λ|."""
    return 2.0


def _WORST(n):
    """... and at worst: n ε max |λ| for an order-n matrix."""
    return float(n)
