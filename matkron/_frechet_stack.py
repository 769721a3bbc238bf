"""The layout of a stack of directions inside the Fréchet derivatives.

k matrices E₁, …, E_k of order m are held as one C-ordered array S of shape (m, k, m) with
S[i, j, l] = E_j[i, l]. Then both one-sided products with a matrix P that depends on A
alone are single GEMMs over the whole stack, without copies: ``P @ S.reshape(m, k m)`` is
[P E₁, …, P E_k] and ``S.reshape(k m, m) @ P`` is every E_j P, row by row.
"""

import numpy as np
import scipy.linalg

__all__ = ["from_stack", "from_vec", "left", "left_acc", "lu_factor", "lu_solve", "right",
           "right_acc", "to_stack", "to_vec"]


def left(P, S, out=None):
    """[P E_j]_j for the stack S (one GEMM), into `out` (C-contiguous) if given."""
    m, k, n = S.shape
    if out is not None:
        np.matmul(P, S.reshape(m, k * n), out=out.reshape(P.shape[0], k * n))
        return out
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


_GEMM = {np.dtype(t): scipy.linalg.get_blas_funcs("gemm", dtype=t)
         for t in ("float32", "float64", "complex64", "complex128")}


def _gemm(P, X):
    return _GEMM[np.result_type(P.dtype, X.dtype)]


def left_acc(P, S, out, beta=1.0):
    """out = [P E_j]_j + beta out, in place (out a C-ordered stack like S): one GEMM of
    SciPy's BLAS on the transposed (Fortran-ordered) views, so nothing is copied."""
    assert out.flags.c_contiguous  # updated in place through a view
    m, k, n = S.shape
    X = S.reshape(m, k * n)
    gemm = _gemm(P, X)
    gemm(1.0, X.T, P.T, beta=beta, c=out.reshape(P.shape[0], k * n).T, overwrite_c=True)
    return out


def right_acc(S, P, out, beta=1.0):
    """out = [E_j P]_j + beta out, in place (see :func:`left_acc`)."""
    assert out.flags.c_contiguous
    m, k, n = S.shape
    X = S.reshape(m * k, n)
    gemm = _gemm(P, X)
    gemm(1.0, P.T, X.T, beta=beta, c=out.reshape(m * k, P.shape[1]).T, overwrite_c=True)
    return out


_LAPACK = {np.dtype(t): scipy.linalg.get_lapack_funcs(("getrf", "getrs"), dtype=t)
           for t in ("float32", "float64", "complex64", "complex128")}


def lu_factor(a, overwrite=False):
    """(lu, piv, info, transposed) from LAPACK's getrf, without SciPy's per-call wrappers
    (which cost more than the factorization of a small matrix); info > 0: exactly
    singular. A C-ordered `a` is factored as its Fortran-ordered transpose, without a copy
    (`transposed`), and :func:`lu_solve` flips its transposition to match; `overwrite`
    lets getrf work in `a`'s memory."""
    transposed = a.flags.c_contiguous and not a.flags.f_contiguous
    lu, piv, info = _LAPACK[a.dtype][0](a.T if transposed else a, overwrite_a=overwrite)
    if info < 0:  # pragma: no cover - the arguments are built here
        raise ValueError(f"getrf: illegal value in argument {-info}")
    return lu, piv, info, transposed


def lu_solve(factors, b, trans=0):
    """op(A)⁻¹ b from :func:`lu_factor`'s factors of A (trans 0: A, 1: Aᵀ), by getrs."""
    lu, piv, _, transposed = factors
    # SciPy's getrs wrapper makes piv 1-based in place for the length of the call: each
    # call gets its own copy, so threads sharing the factors never see another's.
    x, info = _LAPACK[lu.dtype][1](lu, piv.copy(), b,
                                   trans=(1 - trans) if transposed else trans)
    if info < 0:  # pragma: no cover
        raise ValueError(f"getrs: illegal value in argument {-info}")
    return x
