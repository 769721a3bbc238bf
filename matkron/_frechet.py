"""Fréchet derivatives of matrix functions as operators on vec(E), and condition numbers."""

from collections.abc import Callable

import numpy as np
import scipy.sparse.linalg
from numpy.typing import ArrayLike

from ._expm_cy import expm_frechet as expm_frechet_kernel
from ._frechet_eig import (
    BlockFrechet,
    EigFrechet,
    FractionalPowerFrechet,
    InvFrechet,
    PowerFrechet,
)
from ._frechet_expm import ExpmFrechet
from ._frechet_logm import LogmFrechet
from ._frechet_sqrtm import SqrtmFrechet
from ._frechet_stack import from_stack, from_vec, to_stack, to_vec
from ._linop import ProductOperator
from ._typing import Array
from ._validation import (
    as_array,
    check_blas_size,
    check_bool,
    check_choice,
    check_finite,
    check_number,
    check_rows,
    check_stack,
    is_hermitian,
    needs_hermitian,
    result_dtype,
    square_matrix,
)

__all__ = ["FrechetOperator", "cond", "frechet"]

FUNCTIONS = ("expm", "logm", "sqrtm", "inv", "power")
# A named function or a vectorized callable (on the eigenvalues of a Hermitian A).
Function = str | Callable[[np.ndarray], np.ndarray]
METHODS = ("auto", "eig", "block")
NORMS = ("fro", 1)


def _check_function(f, p, fprime, method):
    """(name or None, callable or None, p) after checking the combination."""
    check_choice(method, "method", METHODS)
    if callable(f):
        if not callable(fprime):
            raise TypeError(
                "fprime must be the derivative of f (a vectorized callable) when f is a "
                f"callable; got {fprime!r}")
        if p is not None:
            raise ValueError(f"p applies to f='power' only; got p={p!r} with a callable f")
        if method == "block":
            raise ValueError("method='block' needs a named f (one of "
                             f"{FUNCTIONS}); got a callable")
        return None, f, None
    check_choice(f, "f", FUNCTIONS, alternative="a callable")
    if fprime is not None:
        raise ValueError(f"fprime applies to a callable f only; got it with f={f!r}")
    if f == "power":
        if p is None:
            raise TypeError("f='power' needs p, a finite real exponent; got p=None")
        check_number(p, "p", real=True, finite=True)
        p = int(p) if float(p).is_integer() else float(p)
    elif p is not None:
        raise ValueError(f"p applies to f='power' only; got p={p!r} with f={f!r}")
    return f, None, p


class _Empty:
    """The derivative at a 0×0 A: every stack of directions is empty."""

    def __init__(self, dtype):
        self.dtype = dtype

    def value(self):
        return np.zeros((0, 0), dtype=self.dtype)

    def apply(self, S):
        return np.zeros(S.shape, dtype=np.result_type(S.dtype, self.dtype))

    apply_adjoint = apply


class FrechetOperator(ProductOperator):
    """The Fréchet derivative E ↦ L_f(A, E) of a primary matrix function at A, acting on
    vec(E) (column-major, as everywhere in matkron).

    Create it with :func:`frechet` without a direction. A
    :class:`scipy.sparse.linalg.LinearOperator` of shape (m², m²); ``rmatvec`` and :attr:`H`
    apply the adjoint, which is L_f(Aᴴ, ·) for the named functions (their power series
    have real coefficients). What depends on A alone (Schur form and square roots, Padé
    and squaring data, eigendecomposition, LU factors) is computed once per dtype and
    cached; it is left out when the operator is pickled or copied and rebuilt on use.

    Parameters
    ----------
    f : {"expm", "logm", "sqrtm", "inv", "power"} or callable
        The function; a callable is applied elementwise to the eigenvalues of a Hermitian A.
    A : array_like
        The m×m matrix (copied).
    p : float, optional
        The exponent of ``f="power"``.
    fprime : callable, optional
        The derivative of a callable `f`.
    method : {"auto", "eig", "block"}, optional
        See :func:`frechet`.

    Attributes
    ----------
    f : str or callable
    A : ndarray
        The matrix, in the dtype it was given (ints as float64).
    p : int, float or None
    method : str
        The method in use: "pade" (expm), "schur" (sqrtm, logm, real powers), "lu" (inv),
        "power" (integer powers), "eig" or "block".

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> L = matkron.frechet("inv", A)
    >>> L.shape, L.method
    ((4, 4), 'lu')
    >>> Ainv = np.linalg.inv(A)
    >>> bool(np.allclose(L.todense(), -np.kron(Ainv.T, Ainv)))
    True
    """

    _transient = {"_impls": dict, "_adjoint_op": type(None)}

    def __init__(self, f: Function, A: ArrayLike, *, p: float | None = None,
                 fprime: Callable[[np.ndarray], np.ndarray] | None = None,
                 method: str = "auto", _adjoint: bool = False) -> None:
        name, func, p = _check_function(f, p, fprime, method)
        A = square_matrix(A, "A")
        dtype = result_dtype(A.dtype)
        # Before the copy: vec(E) has m² entries.
        check_blas_size(A.shape[0] ** 2, f"the number of entries of A (of order {A.shape[0]})")
        A = np.array(A, dtype=dtype)
        check_finite(A, "A", "the Fréchet derivative", of="A and E")
        hermitian = is_hermitian(A)
        self._requested = method
        if func is not None and not hermitian:
            raise needs_hermitian("a callable f", "A", "a Hermitian (real symmetric) A")
        if method == "auto":
            if func is not None or (hermitian and name != "inv"):
                method = "eig"
            else:
                method = {"expm": "pade", "sqrtm": "schur", "logm": "schur", "inv": "lu"}.get(
                    name) or ("power" if isinstance(p, int) else "schur")
        self.f, self.A, self.p, self.fprime, self.method = f, A, p, fprime, method
        self._name, self._func, self._hermitian = name, func, hermitian
        self._is_adjoint = _adjoint
        self._conjugated = False  # E -> conj(L(conj E)): the adjoint of _adjoint
        self._impls = {}
        self._adjoint_op = None
        m = A.shape[0]
        self._m = m
        impl = self._impl(dtype)
        super().__init__(np.dtype(impl.dtype), (m * m, m * m))
        self.args = (self.f, self.A)  # the function and the point

    # -- the A-only data, per compute dtype ------------------------------------------------

    def _impl(self, dtype):
        impl = self._impls.get(dtype)
        if impl is None:
            A = self.A.astype(dtype, copy=False)
            name, p, method = self._name, self.p, self.method
            if self._m == 0:
                impl = _Empty(dtype)
            elif method == "eig":
                impl = EigFrechet(A, name, p, self._func, self.fprime, self._hermitian)
            elif method == "block":
                impl = BlockFrechet(A, name, p)
            elif method == "pade":
                impl = ExpmFrechet(A)
            elif method == "lu":
                impl = InvFrechet(A)
            elif method == "power":
                impl = PowerFrechet(A, p)
            elif name == "sqrtm":
                impl = SqrtmFrechet(A)
            elif name == "logm":
                impl = LogmFrechet(A)
            else:
                impl = FractionalPowerFrechet(A, p)
            self._impls[dtype] = impl
        return impl

    def _compute(self, S, dtype):
        """The derivative (or its adjoint) of the stack S computed in `dtype`."""
        impl = self._impl(dtype)
        if self._is_adjoint:
            return impl.apply_adjoint(S)
        if self._conjugated:
            return np.conj(impl.apply(np.conj(S)))
        return impl.apply(S)

    def _run(self, S_of, x_dtype):
        """Apply to directions given by S_of(dtype) -> stack; a complex x with a real A is
        split into its real and imaginary parts, one real stack of twice the width."""
        if self.A.dtype.kind == "f" and x_dtype.kind == "c":
            dtype = result_dtype(self.A.dtype, np.finfo(x_dtype).dtype)
            S = S_of(np.dtype(x_dtype))
            k = S.shape[1]
            both = np.concatenate([S.real, S.imag], axis=1).astype(dtype, copy=False)
            Y = self._compute(np.ascontiguousarray(both), dtype)
            return Y[:, :k] + 1j * Y[:, k:]
        dtype = result_dtype(self.A.dtype, x_dtype)
        return self._compute(S_of(dtype), dtype)

    # -- products ------------------------------------------------------------------------

    def _product(self, x):
        m = self._m
        check_rows(x, self.shape[1], "x", f"vec(E) for E of shape ({m}, {m}) like A")
        X = x[:, np.newaxis] if x.ndim == 1 else x
        Y = to_vec(self._run(lambda dt: from_vec(X, m, dt), x.dtype))
        return Y[:, 0] if x.ndim == 1 else Y

    def apply(self, E: ArrayLike) -> Array:
        """L_f(A, E) for an m×m direction E, or for each of a stack of shape (k, m, m).

        Parameters
        ----------
        E : array_like
            (m, m) or (k, m, m).

        Returns
        -------
        ndarray
            Of the shape of `E`.

        Raises
        ------
        ValueError
            If `E` does not match A.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> L = matkron.frechet("expm", np.zeros((2, 2)))
        >>> L.apply(np.eye(2))  # exp'(0) is the identity map
        array([[1., 0.],
               [0., 1.]])
        """
        E = as_array(E, "E")
        m = self._m
        check_stack(E, m, "E", f"to match A of shape {self.A.shape}")
        check_finite(E, "E", "the Fréchet derivative", of="A and E")
        stack = E[np.newaxis] if E.ndim == 2 else E
        out = to_stack(self._run(lambda dt: from_stack(stack, dt), result_dtype(E.dtype)))
        return out[0] if E.ndim == 2 else np.ascontiguousarray(out)

    def value(self) -> Array:
        """f(A), from the data the operator holds (computed in the operator's dtype).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.frechet("sqrtm", np.array([[4.0, 0.0], [0.0, 9.0]])).value()
        array([[2., 0.],
               [0., 3.]])
        """
        return self._impl(result_dtype(self.A.dtype)).value()

    # GEMM-equivalents of m³ multiply-adds per direction, by method (approximate: Padé
    # counts degree 13 and a few squarings; the block method f on a 2m×2m matrix).
    _COST_M3 = {"eig": 4, "lu": 2, "pade": 14, "schur": 8, "block": 200}

    @property
    def matvec_cost(self) -> int:
        """Multiply-adds of one product, about c m³ for the method (4 for "eig", 2 for
        the LU of "inv", 14 for expm's Padé, 8 for the Schur methods): the hint
        :func:`matkron.jacobian_chain` reads to price this Jacobian (dense: m⁴)."""
        m = self._m
        impl = self._impls.get(result_dtype(self.A.dtype))
        if isinstance(impl, PowerFrechet):
            return impl.J.matvec_cost + (2 * m**3 if impl.inv is not None else 0)
        return self._COST_M3.get(self.method, 8) * m**3

    @property
    def rmatvec_cost(self) -> int:
        """As :attr:`matvec_cost`, for the adjoint."""
        return self.matvec_cost

    def _adjoint(self):
        if self._adjoint_op is None:
            if self.method == "eig":
                op = FrechetOperator(self.f, self.A, p=self.p, fprime=self.fprime,
                                     method="eig", _adjoint=not self._is_adjoint)
            else:
                # L*(G) = conj(L_f(Aᵀ, conj G)) for every primary function (f taken at the
                # eigenvalues of Aᵀ, which are A's). L_f(Aᴴ, G) equals it only where
                # f(z̄) = conj f(z) on the spectrum: not at an eigenvalue on a branch cut
                # (a negative one for logm, sqrtm and real powers), even for a real A.
                # The adjoint of that adjoint (conj∘L_f(B, ·)∘conj at B = Aᵀ) is L_f(Bᵀ, ·),
                # unconjugated: the adjoint of a conjugated operator is not conjugated.
                op = FrechetOperator(self.f, self.A.T, p=self.p, method=self._requested)
                op._conjugated = not self._conjugated and op.dtype.kind == "c"
            op._adjoint_op = self
            self._adjoint_op = op
        return self._adjoint_op

    def todense(self) -> Array:
        """The m²×m² matrix K with vec(L_f(A, E)) = K vec(E) (small m only).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.frechet("expm", np.array([[1.0]])).todense()
        array([[2.71828183]])
        """
        n = self.shape[0]
        return np.asfortranarray(self._product(np.eye(n, dtype=self.dtype)))

    def toarray(self) -> Array:
        """Alias of :meth:`todense`."""
        return self.todense()

    def __repr__(self):
        what = self.f if isinstance(self.f, str) else getattr(self.f, "__name__", "f")
        if self.p is not None:
            what += f", p={self.p}"
        return (f"<{self.shape[0]}x{self.shape[1]} FrechetOperator of {what} at a "
                f"{self._m}x{self._m} A, method={self.method!r}, dtype={self.dtype}>")


def frechet(f: Function, A: ArrayLike, E: ArrayLike | None = None, *,
            p: float | None = None, fprime: Callable[[np.ndarray], np.ndarray] | None = None,
            method: str = "auto") -> "Array | FrechetOperator":
    """The Fréchet derivative L_f(A, E) of a primary matrix function f at A.

    L_f(A, E) is the linear term of f(A + E) − f(A). With a direction `E` the derivative
    itself; without, the operator E ↦ L_f(A, E) on vec(E).

    Parameters
    ----------
    f : {"expm", "logm", "sqrtm", "inv", "power"} or callable
        The function: the exponential, the principal logarithm and square root, the
        inverse, or the power A^p for a real `p` (principal branch). A vectorized callable
        is applied to the eigenvalues of a Hermitian A and needs its derivative `fprime`.
    A : array_like
        The m×m matrix.
    E : array_like, optional
        A direction of shape (m, m), or a stack of them of shape (k, m, m); the work that
        depends on A alone is shared by all.
    p : float, optional
        The exponent of ``f="power"`` (required there, refused elsewhere).
    fprime : callable, optional
        f' for a callable `f`, used on equal and nearly equal eigenvalues.
    method : {"auto", "eig", "block"}, optional
        "auto" (see Notes); "eig": through an eigendecomposition (Daleckii–Krein),
        accurate only when A is Hermitian or its eigenvectors are well conditioned; "block":
        the reference, f of the block matrix [[A, E], [0, A]] by SciPy.

    Returns
    -------
    ndarray or FrechetOperator
        L_f(A, E), shaped like `E` (complex when f(A) is, e.g. the logarithm of a real A
        with a negative eigenvalue); without `E` the :class:`FrechetOperator`.

    Raises
    ------
    ValueError
        If `f`, `p`, `fprime` or `method` do not fit together, `p` is not finite, `A` is
        not square or not finite, a callable `f` comes with a non-Hermitian `A`, or `E`
        does not match `A`.
    TypeError
        If ``f="power"`` comes without a real `p`, a callable `f` without `fprime`, or an
        array is not numeric.
    numpy.linalg.LinAlgError
        If A is singular for "inv", "logm", "sqrtm" or a negative or non-integer power.

    Notes
    -----
    "auto" takes the eigendecomposition (one ``eigh``, four GEMMs per direction, divided
    differences evaluated without cancellation) for a Hermitian A and every f but "inv",
    and otherwise:

    - "expm": scaling and squaring with the Fréchet recurrence of Al-Mohy and Higham
      (2009), the algorithm of ``scipy.linalg.expm_frechet``; the degree, scaling, powers,
      the LU of the Padé denominator and the squares are computed once for all
      directions. With `E` given, one compiled call does all of it (no NumPy call per
      product); the operator keeps that data and applies it to a stack of directions with
      one GEMM per product over the whole stack.
    - "sqrtm": X L + L X = E with X = A^{1/2} = Z R Zᴴ (Higham 2008, §6.1), R from the
      recursive blocked Schur method (Deadman, Higham and Ralha 2013) on the real Schur
      form of a real A (complex Schur otherwise, or with an eigenvalue on the negative
      real axis), and R Y + Y R = Zᴴ E Z solved for all directions at once by a recursive
      blocked quasi-triangular Sylvester solver (trsyl on blocks of order <= 32, GEMMs
      between them).
    - "logm": inverse scaling and squaring on the Schur form, differentiated (Al-Mohy,
      Higham and Relton 2013): the square roots' derivatives by the Sylvester solver
      above, the Padé approximant's from its partial fractions; exact up to rounding,
      with the degree bounds θ_m of Al-Mohy and Higham (2012).
    - "inv": −A⁻¹ E A⁻¹ through the LU factors.
    - "power": integer p through :func:`matkron.power_jacobian` (A⁻¹ for p < 0); other
      real p as exp(p log A): L = L_exp(p log A, p L_log(A, E)).

    A real A computes in its own dtype (float32 in float32); a complex E with a real A is
    split into real and imaginary parts, differentiated together as one real stack.

    References
    ----------
    A. H. Al-Mohy and N. J. Higham, Computing the Fréchet derivative of the matrix
    exponential, with an application to condition number estimation, SIAM J. Matrix Anal.
    Appl. 30 (2009) 1639–1657. A. H. Al-Mohy, N. J. Higham and S. D. Relton, Computing
    the Fréchet derivative of the matrix logarithm and estimating the condition number,
    SIAM J. Sci. Comput. 35 (2013) C394–C410. E. Deadman, N. J. Higham and R. Ralha,
    Blocked Schur algorithms for computing the matrix square root, PARA 2012, LNCS 7782
    (2013) 171–182. N. J. Higham, Functions of Matrices: Theory and Computation, SIAM 2008.
    I. Jonsson and B. Kågström, Recursive blocked algorithms for solving triangular
    systems, ACM TOMS 28 (2002) 392–415.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.linalg
    >>> import matkron
    >>> A = np.array([[1.0, 2.0], [-1.0, 3.0]])
    >>> E = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> L = matkron.frechet("expm", A, E)
    >>> bool(np.allclose(L, scipy.linalg.expm_frechet(A, E, compute_expm=False)))
    True
    >>> M = np.block([[A, E], [np.zeros((2, 2)), A]])  # the block reference
    >>> bool(np.allclose(matkron.frechet("logm", A, E), scipy.linalg.logm(M)[:2, 2:]))
    True
    >>> S = np.diag([1.0, 4.0])
    >>> matkron.frechet(np.sqrt, S, np.ones((2, 2)), fprime=lambda x: 0.5 / np.sqrt(x))
    array([[0.5       , 0.33333333],
           [0.33333333, 0.25      ]])
    """
    if E is not None and isinstance(f, str) and f == "expm" and method == "auto":
        out = _expm_frechet_oneshot(A, E)
        if out is not None:
            return out
    op = FrechetOperator(f, A, p=p, fprime=fprime, method=method)
    return op if E is None else op.apply(E)


def _expm_frechet_oneshot(A, E):
    """frechet("expm", A, E) in one compiled call (matkron._expm_cy: the A-only data, then
    each direction, with no NumPy call in between), or None where the operator's path
    applies instead: a Hermitian A (Daleckii–Krein), a complex E with a real A, an empty
    or NaN-holding A (its checks and messages)."""
    A = square_matrix(A, "A")
    E = as_array(E, "E")
    m = A.shape[0]
    check_stack(E, m, "E", f"to match A of shape {A.shape}")
    # As for A (and as SciPy's check_finite): its derivative would be NaN throughout.
    check_finite(E, "E", "the Fréchet derivative", of="A and E")
    dtype = result_dtype(A.dtype, E.dtype)
    if (m == 0 or (A.dtype.kind != "c" and dtype.kind == "c") or is_hermitian(A)
            or not np.isfinite(A).all()):
        return None
    stack = E[np.newaxis] if E.ndim == 2 else E
    if stack.shape[0] == 0:
        return None
    # L_exp(A, E)ᵀ = L_exp(Aᵀ, Eᵀ): the C-ordered (k, m, m) stack is, transposed, the
    # Fortran-ordered (m, m, k) one the kernel takes, without copies.
    a = np.require(A.T, dtype, ["F", "A"])
    e = np.require(stack.transpose(2, 1, 0), dtype, ["F", "A"])
    out = np.empty(e.shape, dtype=dtype, order="F")
    expm_frechet_kernel(a, e, out)
    out = out.transpose(2, 1, 0)
    return out[0] if E.ndim == 2 else out


def _lanczos_norm(L, rtol, seed=0):
    """‖L‖₂ by Golub–Kahan–Lanczos bidiagonalization with full reorthogonalization: the
    largest singular value of the bidiagonal matrix, grown one step at a time until it
    changes by less than rtol/4 relative (it increases monotonically to ‖L‖₂)."""
    n = L.shape[1]
    dtype = np.result_type(L.dtype, np.float64)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(n).astype(dtype)
    v /= np.linalg.norm(v)
    Vs, Us, alphas, betas = [v], [], [], []
    u = L.matvec(v)
    est = 0.0
    for j in range(n):
        alpha = np.linalg.norm(u)
        if alpha == 0:
            break
        u = u / alpha
        Us.append(u)
        alphas.append(alpha)
        B = np.diag(alphas) + np.diag(betas, 1)[: len(alphas), : len(alphas)]
        new = np.linalg.norm(B, 2)
        if j > 0 and new - est <= rtol / 4 * new:
            est = new
            break
        est = new
        w = L.rmatvec(u) - alpha * Vs[-1]
        Vm = np.array(Vs)
        w -= Vm.T @ (Vm.conj() @ w)
        beta = np.linalg.norm(w)
        if beta <= np.finfo(np.float64).eps * est:
            break
        v = w / beta
        Vs.append(v)
        betas.append(beta)
        u = L.matvec(v) - beta * u
        Um = np.array(Us)
        u -= Um.T @ (Um.conj() @ u)
    return float(est)


def cond(f: Function, A: ArrayLike, *, p: float | None = None,
         fprime: Callable[[np.ndarray], np.ndarray] | None = None, norm: str | int = "fro",
         relative: bool = True, rtol: float = 1e-3) -> float:
    """The condition number of the matrix function f at A, without forming the m²×m²
    Kronecker matrix of its Fréchet derivative.

    Parameters
    ----------
    f, A, p, fprime
        As for :func:`frechet`.
    norm : {"fro", 1}, optional
        "fro": ‖L‖₂, the operator norm of L_f(A, ·) in the Frobenius norm (the 2-norm of
        its Kronecker matrix), with ‖A‖_F and ‖f(A)‖_F, as ``scipy.linalg.expm_cond``;
        1: the 1-norm of the Kronecker matrix, with ‖A‖₁ and ‖f(A)‖₁ (Higham 2008, §3.4).
    relative : bool, optional
        ‖L‖ ‖A‖ / ‖f(A)‖ (default) or the absolute ‖L‖.
    rtol : float, optional
        For "fro": Lanczos stops when its estimate changes by less than rtol/4 relative.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If `norm` is not one of "fro", 1 or `rtol` not in (0, 1), or as :func:`frechet`.
    TypeError
        If `rtol` is not a real number or `relative` not a bool, or as :func:`frechet`.

    Notes
    -----
    "fro": Golub–Kahan–Lanczos bidiagonalization on L (products with L and its adjoint,
    each sharing the A-only data of :class:`FrechetOperator`), from a fixed random start,
    with full reorthogonalization; its estimate is a lower bound that increases to ‖L‖₂.
    1: the block 1-norm estimator of Higham and Tisseur (2000) through
    ``scipy.sparse.linalg.onenormest`` on L and its adjoint (a lower bound, almost always
    within a factor 3 and usually exact; its starting block is random, so two calls may
    differ).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.linalg
    >>> import matkron
    >>> A = np.array([[-0.3, 0.2, 0.6], [0.6, 0.3, -0.1], [-0.7, 1.2, 0.9]])
    >>> k = matkron.cond("expm", A, rtol=1e-8)
    >>> bool(np.isclose(k, scipy.linalg.expm_cond(A), rtol=1e-6))
    True
    """
    check_choice(norm, "norm", NORMS)
    if not 0 < check_number(rtol, "rtol", real=True) < 1:
        raise ValueError(f"rtol must be a number in (0, 1); got {rtol!r}")
    check_bool(relative, "relative")
    L = FrechetOperator(f, A, p=p, fprime=fprime)
    if L.shape[0] == 0:
        return 0.0
    if norm == "fro":
        normL = _lanczos_norm(L, rtol)
        ord_ = "fro"
    else:
        normL = float(scipy.sparse.linalg.onenormest(L))
        ord_ = 1
    if not relative:
        return normL
    return normL * float(np.linalg.norm(L.A, ord_)) / float(np.linalg.norm(L.value(), ord_))
