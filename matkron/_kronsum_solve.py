"""Back substitution for Kronecker sums of upper-triangular matrices (the Schur-form
solves of :meth:`matkron.KronSumOperator.solve`)."""

import numpy as np
import scipy.linalg

__all__ = ["triangular_kronsum_solve", "triangular_sylvester_solve"]


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
