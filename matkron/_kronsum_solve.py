"""Back substitution for Kronecker sums of upper-triangular matrices (the Schur-form
solves of :meth:`matkron.KronSumOperator.solve`)."""

import numpy as np
import scipy.linalg

__all__ = [
    "quasi_triangular_sylvester",
    "quasi_triangular_sylvester_solve",
    "split_point",
    "triangular_kronsum_solve",
    "triangular_sylvester_solve",
]


# Blocks of at most this order go to LAPACK's trsyl whole: its unblocked back
# substitution runs from cache there; larger ones are split (level-3 updates in between).
LEAF = 48


def triangular_sylvester_solve(t1, t2, c):
    """Solve (T1 ⊕ T2) y = c for upper-triangular T1, T2 and one right-hand side (N, 1).

    That is T1 Y + Y T2ᵀ = C for Y = unvec(y) (:func:`quasi_triangular_sylvester`).
    """
    m, n = t1.shape[0], t2.shape[0]
    y = quasi_triangular_sylvester(t1, t2, c.reshape(m, n, order="F"))
    return y.reshape(m * n, 1, order="F")


def quasi_triangular_sylvester(t1, t2, c):
    """Solve T1 Y + Y T2ᵀ = C for upper (quasi-)triangular T1 (m×m) and T2 (n×n).

    Real Schur forms have 2×2 diagonal blocks; complex ones are triangular. Recursive
    blocking (Jonsson and Kågström, "Recursive blocked algorithms for solving triangular
    systems", ACM TOMS 28, 2002): the larger side is split where no 2×2 block is cut, one
    half solved, its coupling subtracted by one GEMM, the other half solved; blocks of
    order at most :data:`LEAF` go to LAPACK's trsyl (Bartels–Stewart back substitution,
    level 2). Most flops are then GEMMs, where trsyl alone on the whole is level 2.

    Raises
    ------
    numpy.linalg.LinAlgError
        If trsyl perturbs a diagonal block: T1 and -T2 have common or close eigenvalues.
    """
    dtype = np.result_type(t1, t2, c)
    trsyl = scipy.linalg.get_lapack_funcs("trsyl", (t1, t2, c))
    complex_ = dtype.kind == "c"
    y = np.empty(c.shape, dtype=dtype, order="F")

    def solve(r0, r1, c0, c1, rhs):
        # Y[r0:r1, c0:c1] from T1[r0:r1, r0:r1] Y + Y T2[c0:c1, c0:c1]ᵀ = rhs.
        m, n = r1 - r0, c1 - c0
        if m <= LEAF and n <= LEAF:
            a, b = t1[r0:r1, r0:r1], t2[c0:c1, c0:c1]
            if complex_:  # trsyl's complex form takes op(B) = Bᴴ: conj(T2)ᴴ = T2ᵀ
                out, scale, info = trsyl(a, b.conj(), rhs, trana="N", tranb="C")
            else:
                out, scale, info = trsyl(a, b, rhs, trana="N", tranb="T")
            if info < 0:
                raise ValueError(f"trsyl: illegal value in argument {-info}")
            if info == 1:
                raise np.linalg.LinAlgError(
                    "the Kronecker sum is singular: A1 and -A2 have common or close "
                    "eigenvalues")
            y[r0:r1, c0:c1] = out / scale
        elif m >= n:
            p = r0 + _split(t1, r0, m)
            solve(p, r1, c0, c1, rhs[p - r0:])
            solve(r0, p, c0, c1, rhs[:p - r0] - t1[r0:p, p:r1] @ y[p:r1, c0:c1])
        else:
            q = c0 + _split(t2, c0, n)
            solve(r0, r1, q, c1, rhs[:, q - c0:])
            solve(r0, r1, c0, q, rhs[:, :q - c0] - y[r0:r1, q:c1] @ t2[c0:q, q:c1].T)

    m, n = c.shape
    if m and n:
        solve(0, m, 0, n, c)
    return y


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


def quasi_triangular_sylvester_solve(r, s, c):
    """Solve R Y + Y S = C for upper (quasi-)triangular R (m×m) and S (n×n), for a stack of
    right-hand sides at once.

    `c` has the layout of :mod:`matkron._frechet_stack`, shape (m, k, n) with c[:, j, :]
    the j-th right-hand side; the result has the same layout. The recursive blocked method
    of Jonsson and Kågström (2002), as :func:`quasi_triangular_sylvester` for one
    right-hand side and T2ᵀ: the larger of R and S is split at a point that keeps 2×2
    blocks whole, the trailing (or leading) half solved first and the coupling term
    subtracted by one GEMM over the whole stack; blocks of order <= LEAF go to LAPACK's
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
    if m <= LEAF and n <= LEAF:
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
