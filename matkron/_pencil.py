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

import numpy as np
import scipy.linalg

from ._factors import DiagonalFactor

__all__ = ["factor_pencil"]


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
        lam, u = scipy.linalg.eigh(scaled, check_finite=False)
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
