"""The Fréchet derivative of the matrix exponential by scaling and squaring (Al-Mohy and
Higham 2009), with the data that depends on A alone computed once for every direction."""

import numpy as np

from ._frechet_stack import left, left_acc, lu_factor, lu_solve, right_acc

__all__ = ["ExpmFrechet"]

# ℓ_m of Al-Mohy and Higham (2009), Table 6.1: the largest ‖2⁻ˢA‖₁ for which the backward
# error of the degree-m Padé approximant and of its Fréchet derivative is below 2⁻⁵³
# (as in scipy.linalg.expm_frechet). float32 uses the same table: more accuracy than it
# needs, never less.
_ELL = {3: 1.08e-2, 5: 2.00e-1, 7: 7.83e-1, 9: 1.78e0, 13: 4.74e0}

_B = {
    3: (120.0, 60.0, 12.0, 1.0),
    5: (30240.0, 15120.0, 3360.0, 420.0, 30.0, 1.0),
    7: (17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0),
    9: (17643225600.0, 8821612800.0, 2075673600.0, 302702400.0, 30270240.0, 2162160.0,
        110880.0, 3960.0, 90.0, 1.0),
    13: (64764752532480000.0, 32382376266240000.0, 7771770303897600.0,
         1187353796428800.0, 129060195264000.0, 10559470521600.0, 670442572800.0,
         33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0),
}


def _combine(coeffs, mats):
    """[Σ_j coeffs[i, j] mats[j]]_i, each result C-contiguous: for large matrices one
    (memory-bound) GEMM of the coefficients with the stacked matrices, which reads each
    once; for small ones, scaled sums (NumPy's per-call cost dominates there)."""
    first = mats[0]
    if first.size < 4096:
        out = []
        for row in coeffs.tolist():  # Python floats: weak, float32 stays float32
            acc = first * row[0]
            for c, mat in zip(row[1:], mats[1:]):
                if c:
                    acc += c * mat
            out.append(acc)
        return out
    if isinstance(mats, np.ndarray):  # already stacked
        stacked = mats.reshape(len(mats), -1)
    else:
        stacked = np.stack(mats).reshape(len(mats), -1)
    out = coeffs.astype(first.dtype, copy=False) @ stacked
    return [row.reshape(first.shape) for row in out]


def _coefficients(degree):
    """The coefficient rows of _combine for `degree`: for 13, [W1, W2, Z1, Z2] over
    [A⁶, A⁴, A², I] and [Lw1, Lw2, Lz1, Lz2] over [M6, M4, M2]; else [W, V] over the even
    powers."""
    b = _B[degree]
    if degree == 13:
        return (np.array([[b[13], b[11], b[9], 0.0], [b[7], b[5], b[3], b[1]],
                          [b[12], b[10], b[8], 0.0], [b[6], b[4], b[2], b[0]]]),
                np.array([[b[13], b[11], b[9]], [b[7], b[5], b[3]], [b[12], b[10], b[8]],
                          [b[6], b[4], b[2]]]))
    half = degree // 2
    return (np.array([[b[2 * j + 1] for j in range(half + 1)],
                      [b[2 * j] for j in range(half + 1)]]), None)


_COEFFICIENTS = {d: _coefficients(d) for d in _B}


class ExpmFrechet:
    """L_exp(A, ·) for a fixed A: degree, scaling, the even powers of 2⁻ˢA, the LU of the
    Padé denominator and the s squares of the approximant, all computed at construction.

    ``apply`` takes a stack of directions in the layout of :mod:`matkron._frechet_stack`
    ((m, k, m), C order) and evaluates, for all of them at once, the recurrences (6.11) –
    (6.13) and (3.3) of Al-Mohy and Higham (2009): every product with a matrix that depends
    on A alone is one GEMM over the whole stack, sums are accumulated by the GEMMs (beta =
    1), and the last square exp(A) is not formed unless :meth:`value` asks for it. Per
    direction: 12 GEMMs for the Padé derivative, one for (Lu − Lv) R, one for the solve
    and 2s for the squaring phase.
    """

    method = "pade"

    def __init__(self, A):
        m = A.shape[0]
        self.dtype = A.dtype
        ident = np.eye(m, dtype=A.dtype)
        norm = np.linalg.norm(A, 1) if m else 0.0
        degree = next((d for d in (3, 5, 7, 9) if norm <= _ELL[d]), 13)
        s = 0
        if degree == 13 and norm > _ELL[13]:
            s = max(0, int(np.ceil(np.log2(norm / _ELL[13]))))
        A = A * 2.0**-s if s else A
        b = _B[degree]  # Python floats: weak in promotion, float32 stays float32
        powers = {0: ident, 1: A}
        powers[2] = A @ A
        if degree >= 5:
            powers[4] = powers[2] @ powers[2]
        if degree >= 7:
            powers[6] = powers[2] @ powers[4]
        if degree == 9:
            powers[8] = powers[4] @ powers[4]
        self.degree, self.s, self.A, self.powers, self.b = degree, s, A, powers, b
        if degree == 13:
            A6 = powers[6]
            # W1, W2, Z1, Z2 as one product of the coefficients with [A⁶, A⁴, A², I].
            self.W1, W2, self.Z1, Z2 = _combine(_COEFFICIENTS[13][0],
                                                [A6, powers[4], powers[2], ident])
            self.W = A6 @ self.W1
            self.W += W2
            U = A @ self.W
            V = A6 @ self.Z1
            V += Z2
        else:
            half = degree // 2
            even = [powers[2 * j] for j in range(half + 1)]
            self.W, V = _combine(_COEFFICIENTS[degree][0], even)
            U = A @ self.W
        self.lu = lu = lu_factor(V - U, overwrite=True)
        R = lu_solve(lu, U + V)
        self._qinv = None
        self.squares = [R]  # R_j = r(2⁻ˢA)^(2ʲ); R_s = exp(A) only when asked for
        for _ in range(s - 1):
            self.squares.append(self.squares[-1] @ self.squares[-1])

    def _solve(self, X):
        """q(A)⁻¹ X for the Padé denominator q(A) = V − U over the stack X: for several
        directions through the inverse (one GEMM over the whole stack, the flops of the
        two triangular solves; computed once), for one through the LU factors. The error
        of either is about κ(q(A)) u, which the degree bounds keep small (Higham 2005,
        Table 2.2: κ₁(q₁₃(A)) <= 2.3 within ℓ₁₃)."""
        m, k, n = X.shape
        if k == 1:
            return lu_solve(self.lu, X.reshape(m, n)).reshape(m, 1, n)
        if self._qinv is None:
            self._qinv = lu_solve(self.lu, np.eye(m, dtype=self.dtype))
        return left(self._qinv, X)

    def value(self):
        """exp(A)."""
        R = self.squares[-1]
        return R @ R if self.s else R

    def apply(self, S):
        """L_exp(A, E) for the stack S of directions E (layout (m, k, m))."""
        m, k, _ = S.shape
        if S.size == 0:
            return np.zeros(S.shape, dtype=self.dtype)
        p, b, A = self.powers, self.b, self.A
        E = S * 2.0**-self.s if self.s else S

        def sandwich(X, M, Y, N):
            """X M + N Y over the stack, in one new array."""
            return right_acc(N, Y, left(X, M))

        if self.degree == 13:
            Ms = np.empty((3,) + S.shape, dtype=np.result_type(S.dtype, self.dtype))
            M6, M4, M2 = Ms
            right_acc(E, A, left(A, E, out=M2))
            right_acc(M2, p[2], left(p[2], M2, out=M4))
            right_acc(M4, p[2], left(p[4], M2, out=M6))
            # Lw1, Lw2, Lz1, Lz2 in one product with the stacked [M6, M4, M2].
            Lw1, Lw, Lz1, Lv = _combine(_COEFFICIENTS[13][1], Ms)
            right_acc(M6, self.W1, left_acc(p[6], Lw1, Lw))  # A6 Lw1 + M6 W1 + Lw2
            Lu = right_acc(E, self.W, left(A, Lw))
            right_acc(M6, self.Z1, left_acc(p[6], Lz1, Lv))  # A6 Lz1 + M6 Z1 + Lz2
        else:
            Ms = {2: sandwich(A, E, A, E)}
            M2 = Ms[2]
            if self.degree >= 5:
                Ms[4] = sandwich(p[2], M2, p[2], M2)
            if self.degree >= 7:
                Ms[6] = sandwich(p[4], M2, p[2], Ms[4])
            if self.degree >= 9:
                Ms[8] = sandwich(p[4], Ms[4], p[4], Ms[4])
            half = self.degree // 2
            Lu = sum(b[2 * j + 1] * Ms[2 * j] for j in range(1, half + 1))
            Lu = right_acc(E, self.W, left(A, Lu))
            Lv = sum(b[2 * j] * Ms[2 * j] for j in range(1, half + 1))
        # L = q⁻¹ (Lu + Lv + (Lu − Lv) R_0)
        diff = Lu - Lv
        Lu += Lv
        L = self._solve(right_acc(diff, self.squares[0], Lu))
        for R in self.squares[:self.s]:
            L = sandwich(R, L, R, L)
        return L
