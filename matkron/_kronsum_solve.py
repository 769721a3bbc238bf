"""Back substitution for Kronecker sums of upper-triangular matrices (the Schur-form
solves of :meth:`matkron.KronSumOperator.solve`)."""

import numpy as np
import scipy.linalg

__all__ = [
    "quasi_triangular_sylvester_solve",
    "split_point",
    "triangular_kronsum_solve",
    "triangular_sylvester_solve",
]


def triangular_sylvester_solve(t1, t2, c):
    """Solve (T1 ⊕ T2) y = c for upper-triangular T1, T2 and one right-hand side (N, 1).

    That is T1 Y + Y T2ᵀ = C for Y = unvec(y), which LAPACK's trsyl (the back substitution
    of Bartels–Stewart) solves in one call: T2ᵀ = conj(T2)ᴴ, and trsyl's complex form takes
    conjugate transposes.
    """
    m, n = t1.shape[0], t2.shape[0]
    rhs = c.reshape(m, n, order="F")
    trsyl = scipy.linalg.get_lapack_funcs("trsyl", (t1, t2, rhs))
    y, scale, info = trsyl(t1, t2.conj(), rhs, trana="N", tranb="C")
    if info < 0:
        raise ValueError(f"trsyl: illegal value in argument {-info}")
    return (y / scale).reshape(m * n, 1, order="F")


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


# Blocks of at most this order are solved by one call of LAPACK's trsyl per direction;
# larger ones are split (trsyl is unblocked: its cost is the order times the block's area,
# so splitting moves the work into GEMMs).
_TRSYL_BLOCK = 32


def split_point(t):
    """Where to split the upper quasi-triangular t in two: near the middle, never inside a
    2×2 diagonal block (a nonzero subdiagonal entry)."""
    p = t.shape[0] // 2
    if p > 0 and t[p, p - 1] != 0:
        p += 1
    return p


def quasi_triangular_sylvester_solve(r, s, c):
    """Solve R Y + Y S = C for upper (quasi-)triangular R (m×m) and S (n×n), for a stack of
    right-hand sides at once.

    `c` has the layout of :mod:`matkron._frechet_stack`, shape (m, k, n) with c[:, j, :]
    the j-th right-hand side; the result has the same layout. The recursive blocked method
    of Jonsson and Kågström (2002): the larger of R and S is split at a point that keeps
    2×2 blocks whole, the trailing (or leading) half solved first and the coupling term
    subtracted by one GEMM over the whole stack; blocks of order <= 32 go to LAPACK's
    trsyl (which takes quasi-triangular factors), one call per right-hand side.
    Raises LinAlgError when R and −S have a common eigenvalue (trsyl's info = 1).
    """
    m, k, n = c.shape
    y = np.empty(c.shape, dtype=np.result_type(r.dtype, s.dtype, c.dtype))
    _solve_block(r, s, np.array(c, dtype=y.dtype), y)
    return y


def _solve_block(r, s, c, y):
    """y = the solution for the block; c may be overwritten."""
    m, k, n = c.shape
    if m == 0 or n == 0 or k == 0:
        return
    if m <= _TRSYL_BLOCK and n <= _TRSYL_BLOCK:
        trsyl = scipy.linalg.get_lapack_funcs("trsyl", (r, s, c))
        for j in range(k):
            x, scale, info = trsyl(r, s, c[:, j, :])
            if info < 0:
                raise ValueError(f"trsyl: illegal value in argument {-info}")
            if info == 1:
                raise np.linalg.LinAlgError(
                    "the Sylvester equation is singular: R and -S have common or close "
                    "eigenvalues")
            y[:, j, :] = x / scale if scale != 1 else x
        return
    if m >= n:
        p = split_point(r)
        _solve_block(r[p:, p:], s, c[p:], y[p:])
        c1 = c[:p]
        c1 -= (r[:p, p:] @ y[p:].reshape(m - p, k * n)).reshape(p, k, n)
        _solve_block(r[:p, :p], s, c1, y[:p])
    else:
        q = split_point(s)
        _solve_block(r, s[:q, :q], c[:, :, :q], y[:, :, :q])
        y1 = np.ascontiguousarray(y[:, :, :q]).reshape(m * k, q)
        c2 = c[:, :, q:]
        c2 -= (y1 @ s[:q, q:]).reshape(m, k, n - q)
        _solve_block(r, s[q:, q:], c2, y[:, :, q:])
