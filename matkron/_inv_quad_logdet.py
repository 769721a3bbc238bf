"""The inverse quadratic form and log-determinant together, as Gaussian likelihoods use
them."""

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._operators import KronOperator, KronSumOperator, SumOfKronOperator
from ._validation import as_array, check_rows, check_square

__all__ = ["inv_quad_logdet"]


def inv_quad_logdet(
    K: KronOperator | SumOfKronOperator, y: ArrayLike
) -> tuple[Any, float]:
    """(yᴴ K⁻¹ y, log|det K|) from one set of factor decompositions.

    The two terms of a Gaussian log-likelihood, -½ (yᴴ K⁻¹ y + log det K + N log 2π),
    as ``linear_operator.inv_quad_logdet`` gives them.

    Parameters
    ----------
    K : KronOperator or SumOfKronOperator
        A square operator with a direct ``solve`` and ``slogdet``: a Kronecker product,
        ``c K + s I``, ``c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ`` with definite Cᵢ, or a Kronecker
        sum (plus s I); see :meth:`SumOfKronOperator.solve`.
    y : array_like
        1-D of length N, or 2-D (N, m) with one vector per column.

    Returns
    -------
    inv_quad : scalar or ndarray
        yᴴ K⁻¹ y: a scalar for 1-D `y`, else one value per column (shape (m,)); real
        when K is Hermitian (its structure says so), as linear_operator gives it.
    logdet : float
        log|det K|.

    Raises
    ------
    TypeError
        If `K` is not one of these operators.
    ValueError
        If `K` is not square or `y` does not match it.
    NotImplementedError, numpy.linalg.LinAlgError
        As ``K.solve``.

    Notes
    -----
    The decompositions are cached on `K`: calling this again with another `y` (or
    ``K.solve``) decomposes nothing.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> K = matkron.kron(A, A) + 0.1 * matkron.identity(4)
    >>> y = np.arange(4.0)
    >>> quad, logdet = matkron.inv_quad_logdet(K, y)
    >>> M = np.kron(A, A) + 0.1 * np.eye(4)
    >>> bool(np.isclose(quad, y @ np.linalg.solve(M, y)))
    True
    >>> bool(np.isclose(logdet, np.linalg.slogdet(M)[1]))
    True
    """
    if not isinstance(K, (KronOperator, SumOfKronOperator)):
        raise TypeError(
            "K must be a matkron KronOperator or SumOfKronOperator (a Kronecker product, "
            f"a sum the factors diagonalize, or a Kronecker sum); got {type(K).__name__}"
        )
    check_square(K.shape, "K", "operator")
    y = as_array(y, "y")
    n = K.shape[0]
    check_rows(y, n, "y", f"the order of the {n}x{n} operator K")
    x = K.solve(y)
    inv_quad = np.einsum("i...,i...->...", y.conj(), x)
    if np.iscomplexobj(inv_quad) and _hermitian(K):
        inv_quad = inv_quad.real  # real for a Hermitian K; its rounding's imaginary part
    _, logdet = K.slogdet()
    return inv_quad, logdet


def _hermitian(K):
    """Whether K is Hermitian by its structure (after K.solve, which decomposed it)."""
    if isinstance(K, KronSumOperator):
        return bool(K._hermitian)
    if isinstance(K, KronOperator):
        return np.imag(K.coeff) == 0 and all(f.is_hermitian() for f in K._kron_factors)
    pencil, factorwise = K._pencil_form("solve")
    if factorwise is not None:
        return _hermitian(factorwise)
    return pencil.w.dtype.kind != "c"  # c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ with real c₁, c₂
