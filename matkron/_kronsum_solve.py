"""Back substitution for Kronecker sums of upper-triangular matrices (the Schur-form
solves of :meth:`matkron.KronSumOperator.solve`)."""

import numpy as np
import scipy.linalg

from ._sylvester_cy import triangular_sylvester

__all__ = [
    "quasi_triangular_sylvester",
    "quasi_triangular_sylvester_solve",
    "split_point",
    "triangular_kronsum_solve",
    "triangular_sylvester_solve",
]


# Blocks of at most this order are solved whole by the compiled back substitution (its
# axpys run from cache there); larger ones are split, with level-3 updates in between.
# Measured on one AVX2 core (n = 100, 200, 500): 64 to 192 within 10 % of each other,
# 32 and 256 slower; trsyl leaves were best at 48.
LEAF = 128

# The error of a leaf whose pivot trsyl (or the compiled leaf, with trsyl's threshold)
# takes as zero.
_SINGULAR = "the Sylvester equation is singular: R and -S have common or close eigenvalues"


def triangular_sylvester_solve(t1, t2, c):
    """Solve (T1 ⊕ T2) y = c for upper-triangular T1, T2 and one right-hand side (N, 1).

    That is T1 Y + Y T2ᵀ = C for Y = unvec(y) (:func:`quasi_triangular_sylvester`).
    """
    m, n = t1.shape[0], t2.shape[0]
    y = quasi_triangular_sylvester(t1, t2, c.reshape(m, n, order="F"))
    return y.reshape(m * n, 1, order="F")


def quasi_triangular_sylvester(t1, t2, c):
    """Solve T1 Y + Y T2ᵀ = C for upper (quasi-)triangular T1 (m×m) and T2 (n×n): the
    Kronecker sum (T1 ⊕ T2) vec(Y) = vec(C) (:func:`quasi_triangular_sylvester_solve`
    with S = T2 transposed). `c` is (m, n), or the stack (m, k, n)."""
    stack = c if c.ndim == 3 else c[:, np.newaxis, :]
    y = quasi_triangular_sylvester_solve(t1, t2, stack, s_transposed=True)
    return y if c.ndim == 3 else y[:, 0, :]


def _split(t, start, n):
    """A split offset near n/2 of the diagonal block t[start:start+n] that does not cut
    one of its 2×2 blocks (a nonzero subdiagonal entry)."""
    p = n // 2
    if t[start + p, start + p - 1] != 0:
        p += 1
    return p


def triangular_kronsum_solve(ts, c, shift):
    """Solve (T1 ⊕ … ⊕ Tk + shift I) y = c for upper-triangular Tᵢ; c is (N, r).

    Along the last (slowest) factor Tk the system is block upper triangular: block j is
    (T1 ⊕ … ⊕ T(k-1) + (shift + Tk[j, j]) I) y_j = c_j − Σ_{l>j} Tk[j, l] y_l, solved from the
    last block up, recursively; one factor is a triangular solve.
    """
    if len(ts) == 1:
        t = ts[0]
        if shift:
            t = t + shift * np.eye(t.shape[0], dtype=t.dtype)
        return scipy.linalg.solve_triangular(t, c)
    tk = ts[-1]
    nk = tk.shape[0]
    r = c.shape[1]
    blocks = c.reshape(nk, -1, r)
    y = np.empty(blocks.shape, dtype=np.result_type(c.dtype, tk.dtype))
    for j in range(nk - 1, -1, -1):
        rhs = blocks[j]
        if j + 1 < nk:
            rhs = rhs - np.tensordot(tk[j, j + 1:], y[j + 1:], axes=1)
        y[j] = triangular_kronsum_solve(ts[:-1], rhs, shift + tk[j, j])
    return y.reshape(c.shape)


def split_point(t):
    """Where to split the upper quasi-triangular t in two (see :func:`_split`)."""
    return _split(t, 0, t.shape[0])


def quasi_triangular_sylvester_solve(r, s, c, *, s_transposed=False):
    """Solve R Y + Y op(S) = C for upper (quasi-)triangular R (m×m) and S (n×n), op(S) = S
    (or Sᵀ with `s_transposed`), for a stack of right-hand sides at once.

    `c` has the layout of :mod:`matkron._frechet_stack`, shape (m, k, n) with c[:, j, :]
    the j-th right-hand side; the result has the same layout. Real Schur forms have 2×2
    diagonal blocks; complex ones are triangular. Recursive blocking (Jonsson and
    Kågström, "Recursive blocked algorithms for solving triangular systems", ACM TOMS 28,
    2002): the larger of R and S is split at a point that keeps 2×2 blocks whole, one half
    solved first and its coupling subtracted by one GEMM over the whole stack, then the
    other half; blocks of order at most :data:`LEAF` are solved by a compiled
    Bartels–Stewart back substitution (level 2, as LAPACK's trsyl, but with vectorized
    axpys where trsyl takes a dot product per entry), all right-hand sides in one call.
    Most flops of a large solve are then GEMMs, where trsyl alone on the whole is level 2.

    Raises
    ------
    numpy.linalg.LinAlgError
        When R and −op(S) have common or close eigenvalues (trsyl's info = 1).

    Examples
    --------
    >>> import numpy as np
    >>> R = np.triu(np.arange(1.0, 10.0).reshape(3, 3))
    >>> S = np.triu(np.ones((2, 2))) + np.eye(2)
    >>> C = np.ones((3, 1, 2))
    >>> Y = quasi_triangular_sylvester_solve(R, S, C)[:, 0, :]
    >>> bool(np.allclose(R @ Y + Y @ S, 1.0))
    True
    """
    y = np.empty(c.shape, dtype=np.result_type(r.dtype, s.dtype, c.dtype))
    _solve_block(r, s, np.array(c, dtype=y.dtype), y, s_transposed)
    return y


def _solve_leaf(r, s, c, y, s_transposed):
    """y = the solution for a block of order at most LEAF, by the compiled back
    substitution (:func:`matkron._sylvester_cy.triangular_sylvester`), or by LAPACK's
    trsyl, which scales against overflow, when its result is not finite."""
    # Solved transposed, op(S)ᵀ Yᵀ + Yᵀ Rᵀ = Cᵀ, so that each right-hand side is a
    # column-major n×m matrix (its columns the rows of C, contiguous), with both
    # triangular matrices upper: a lower one (Sᵀ, and always Rᵀ) is reversed, P L P with
    # P the reversal, and so are the matching indices of Y.
    rev_n = slice(None) if s_transposed else slice(None, None, -1)
    a = np.asfortranarray(s if s_transposed else s.T[::-1, ::-1], dtype=y.dtype)
    b = np.asfortranarray(r.T[::-1, ::-1], dtype=y.dtype)
    # A copy even where the view is contiguous already (one row): c stays the input of
    # the trsyl fallback.
    d = np.array(c.transpose(1, 0, 2)[:, ::-1, rev_n], dtype=y.dtype, order="C")
    # trsyl's threshold for a pivot taken as zero (its info = 1).
    finfo = np.finfo(y.dtype)
    smin = max(finfo.eps * max(np.abs(a).max(), np.abs(b).max()),
               finfo.tiny * a.shape[0] * b.shape[0] / finfo.eps)
    info = triangular_sylvester(a, b, d, smin)
    if info == 1:
        raise np.linalg.LinAlgError(_SINGULAR)
    result = d[:, ::-1, rev_n].transpose(1, 0, 2)
    if np.isfinite(result).all() or not np.isfinite(c).all():
        y[...] = result
    else:
        _solve_leaf_trsyl(r, s, c, y, s_transposed)


def _solve_leaf_trsyl(r, s, c, y, s_transposed):
    """The leaf by LAPACK's trsyl, one call per right-hand side."""
    trsyl = scipy.linalg.get_lapack_funcs("trsyl", (r, s, c))
    if not s_transposed:
        b, tranb = s, "N"
    elif y.dtype.kind == "c":  # trsyl's complex form takes op(B) = Bᴴ: conj(S)ᴴ = Sᵀ
        b, tranb = s.conj(), "C"
    else:
        b, tranb = s, "T"
    for j in range(c.shape[1]):
        x, scale, info = trsyl(r, b, c[:, j, :], tranb=tranb)
        if info < 0:
            raise ValueError(f"trsyl: illegal value in argument {-info}")
        if info == 1:
            raise np.linalg.LinAlgError(_SINGULAR)
        y[:, j, :] = x / scale if scale != 1 else x


def _solve_block(r, s, c, y, s_transposed):
    """y = the solution for the block; c may be overwritten."""
    m, k, n = c.shape
    if m == 0 or n == 0 or k == 0:
        return
    if m <= LEAF and n <= LEAF:
        _solve_leaf(r, s, c, y, s_transposed)
        return
    if m >= n:
        p = split_point(r)
        _solve_block(r[p:, p:], s, c[p:], y[p:], s_transposed)
        c1 = c[:p]
        c1 -= (r[:p, p:] @ y[p:].reshape(m - p, k * n)).reshape(p, k, n)
        _solve_block(r[:p, :p], s, c1, y[:p], s_transposed)
    elif not s_transposed:
        # Y S, S upper: the leading columns do not depend on the trailing ones.
        q = split_point(s)
        _solve_block(r, s[:q, :q], c[:, :, :q], y[:, :, :q], s_transposed)
        y1 = np.ascontiguousarray(y[:, :, :q]).reshape(m * k, q)
        c2 = c[:, :, q:]
        c2 -= (y1 @ s[:q, q:]).reshape(m, k, n - q)
        _solve_block(r, s[q:, q:], c2, y[:, :, q:], s_transposed)
    else:
        # Y Sᵀ, Sᵀ lower: the trailing columns do not depend on the leading ones.
        q = split_point(s)
        _solve_block(r, s[q:, q:], c[:, :, q:], y[:, :, q:], s_transposed)
        y2 = np.ascontiguousarray(y[:, :, q:]).reshape(m * k, n - q)
        c1 = c[:, :, :q]
        c1 -= (y2 @ s[:q, q:].T).reshape(m, k, q)
        _solve_block(r, s[:q, :q], c1, y[:, :, :q], s_transposed)
