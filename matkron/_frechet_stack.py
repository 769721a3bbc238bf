"""The layout of a stack of directions inside the Fréchet derivatives.

k matrices E₁, …, E_k of order m are held as one C-ordered array S of shape (m, k, m) with
S[i, j, l] = E_j[i, l]. Then both one-sided products with a matrix P that depends on A
alone are single GEMMs over the whole stack, without copies: ``P @ S.reshape(m, k m)`` is
[P E₁, …, P E_k] and ``S.reshape(k m, m) @ P`` is every E_j P, row by row.
"""

import numpy as np

__all__ = ["from_stack", "from_vec", "left", "right", "to_stack", "to_vec"]


def left(P, S):
    """[P E_j]_j for the stack S (one GEMM)."""
    m, k, n = S.shape
    return (P @ S.reshape(m, k * n)).reshape(P.shape[0], k, n)


def right(S, P):
    """[E_j P]_j for the stack S (one GEMM)."""
    m, k, n = S.shape
    return (np.ascontiguousarray(S).reshape(m * k, n) @ P).reshape(m, k, P.shape[1])


def from_stack(E, dtype):
    """The (k, m, m) array E in the internal layout, a new array of `dtype`."""
    return np.ascontiguousarray(np.asarray(E, dtype=dtype).transpose(1, 0, 2))


def to_stack(S):
    """The internal layout back to (k, m, m)."""
    return S.transpose(1, 0, 2)


def from_vec(x, m, dtype):
    """Columns vec(E_j) of x (m², k), column-major vec, in the internal layout."""
    k = x.shape[1]
    return np.ascontiguousarray(
        np.asarray(x, dtype=dtype).reshape(m, m, k, order="F").transpose(0, 2, 1))


def to_vec(S):
    """The internal layout as the columns vec(E_j), an (m², k) Fortran-ordered array."""
    m, k, n = S.shape
    return np.asfortranarray(S.transpose(0, 2, 1)).reshape(m * n, k, order="F")
