"""The Kronecker operators and the arithmetic between them.

- :class:`KronOperator`, c (F1 ⊗ … ⊗ Fk), from :func:`kron`;
- :class:`SumOfKronOperator`, Σ cᵢ (Aᵢ ⊗ Bᵢ), from :func:`sum_of_kron` or sums of the others;
- :class:`KronSumOperator`, A1 ⊕ A2 ⊕ …, from :func:`kronsum`, :func:`sylvester` and
  :func:`lyapunov`.

All are SciPy LinearOperators. They live in one module, as SciPy's composite operators do
in ``scipy/sparse/linalg/_interface.py``, so that the arithmetic that turns one kind into
another needs no import cycle.
"""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias, overload

import numpy as np
import scipy.linalg
import scipy.sparse
from numpy.typing import ArrayLike, DTypeLike, NDArray
from scipy.sparse.linalg import LinearOperator

from . import _dask
from ._factors import (
    DiagonalFactor,
    Identity,
    IdentityFactor,
    KronProduct,
    ScaledIdentity,
    Sparse,
    as_factor,
    diagonal_slogdet,
    hermitian_eigh,
    once_per_distinct,
    require_finite,
    require_structure,
    same_factor,
)
from ._inverse import InverseOperator
from ._kron import (
    _apply_order,
    _checked_kron_matvec,
    _factor_names,
    apply,
    as_factors,
    check_operand,
    describe,
    identity,
    kernel_factors,
    product,
    result_shape,
)
from ._kron_cy import kron_matvec_fast, kron_plan
from ._kronsum_solve import (
    quasi_triangular_sylvester,
    triangular_kronsum_solve,
    triangular_sylvester_solve,
)
from ._linop import ProductOperator
from ._pencil import Pencil, factor_pencil
from ._sparse_cy import kronsum_apply
from ._structured import structured_product
from ._typing import Array, FactorLike, Scalar
from ._validation import (
    as_array,
    as_list,
    as_scalar,
    check_choice,
    check_conformable,
    check_length,
    check_ndim,
    check_nonempty,
    check_number,
    check_rows,
    check_square,
    is_dask_array,
    is_integer,
    needs_hermitian,
    needs_square,
    needs_structure,
    not_finite,
    operand,
    result_dtype,
    sequence_error,
    shape_error,
)

__all__ = [
    "EigenOperator",
    "KronOperator",
    "KronSumOperator",
    "SumOfKronOperator",
    "kron",
    "kronsum",
    "lyapunov",
    "solve_continuous_lyapunov",
    "solve_sylvester",
    "sum_of_kron",
    "sylvester",
]

_NORMS = (None, "fro", "nuc", 1, 2, np.inf)
# Kronecker sums of these factor kinds run in one pass of the fused sparse kernel.
_FUSED_KINDS = ("sparse", "diagonal", "identity")
# ... when A1 (the fastest mode) has at least this order: the kernel walks columns of that
# length, and shorter ones cost more per column than the term-by-term products (measured:
# n1 = 4 at 0.8-1.0x of them, n1 = 8 at 1.2x, n1 = 16 at 1.5x).
_FUSED_MIN_ORDER = 8


def kron(*factors: FactorLike) -> "KronOperator":
    """The lazy Kronecker product F1 ⊗ F2 ⊗ … ⊗ Fk as a :class:`KronOperator`.

    Parameters
    ----------
    *factors : array_like, sparse matrix, LinearOperator or factor
        k >= 1 factors: two-dimensional array_likes, :func:`matkron.identity`,
        :func:`matkron.diagonal`, ``scipy.sparse`` matrices or arrays of any format (kept
        sparse), ``scipy.sparse.linalg.LinearOperator`` objects (applied through their
        ``matmat``), or KronOperators (flattened into their factors).

    Returns
    -------
    KronOperator
        An operator of shape (p_1 ⋯ p_k, q_1 ⋯ q_k); nothing is formed.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[2.0, 0.0], [1.0, 3.0]])
    >>> K = matkron.kron(A, np.eye(3))
    >>> K.shape
    (6, 6)
    >>> bool(np.isclose(K.det(), np.linalg.det(K.todense())))
    True
    """
    return KronOperator(factors)


def kron_matvec(
    factors: Sequence[FactorLike], x: ArrayLike, *, out: NDArray[Any] | None = None
) -> NDArray[Any]:
    # The compiled fast path first (canonical NumPy operands, no Python-level step: it
    # returns None, having done nothing, for anything else); a Dask x gives a lazy product
    # (matkron._dask); anything else the checked path (_kron), which validates and converts.
    result = _matvec_fast(factors, x, False, out)
    if result is not None:
        return result
    if is_dask_array(x):
        if out is not None:
            raise TypeError(
                "out must be None when x is a Dask array (the result is a lazy Dask "
                f"array); got {type(out).__name__}")
        return _dask.product(KronOperator(factors), x)
    return _checked_kron_matvec(factors, x, out=out)


kron_matvec.__doc__ = _checked_kron_matvec.__doc__
_matvec_fast = kron_matvec_fast


def _modes_product(op, block, t, modes, with_coeff):
    """Term `t` of op (a KronOperator, or a sum of Kronecker products) applied along the
    axes `modes` of the tensor `block`, whole in it, and the term's coefficient if
    `with_coeff`: a pencil task of matkron._dask."""
    coeff, factors = (op.coeff, op._kron_factors) if isinstance(op, KronOperator) else (
        op._terms[t])
    inner = [f if i in modes else Identity(IdentityFactor(block.shape[i]))
             for i, f in enumerate(factors)]
    K = KronOperator.__new__(KronOperator)
    K._init(inner, coeff if with_coeff else 1, op._factor_dtypes)
    shape = tuple(f.shape[0] for f in inner)
    return K._product(block.reshape(-1)).reshape(shape)


# What sums with a Kronecker operator into a SumOfKronOperator.
_KronTerm: TypeAlias = "KronOperator | SumOfKronOperator | IdentityFactor | ScaledIdentity"


class _SumsOfKron:
    """Sums and differences of Kronecker operators (and identities) as
    SumOfKronOperators; anything else goes to SciPy's generic sums."""

    @overload
    def __add__(self, other: _KronTerm) -> "SumOfKronOperator": ...
    @overload
    def __add__(self, other: LinearOperator) -> LinearOperator: ...

    def __add__(self, other: Any) -> Any:
        result = combine(self, other, 1)
        return super().__add__(other) if result is None else result

    def __radd__(self, other: _KronTerm) -> "SumOfKronOperator":
        result = combine(other, self, 1)
        return NotImplemented if result is None else result

    @overload
    def __sub__(self, other: _KronTerm) -> "SumOfKronOperator": ...
    @overload
    def __sub__(self, other: LinearOperator) -> LinearOperator: ...

    def __sub__(self, other: Any) -> Any:
        result = combine(self, other, -1)
        return super().__sub__(other) if result is None else result

    def __rsub__(self, other: _KronTerm) -> "SumOfKronOperator":
        result = combine(other, self, -1)
        return NotImplemented if result is None else result


class KronOperator(_SumsOfKron, ProductOperator):
    """The Kronecker product c · (F1 ⊗ … ⊗ Fk), applied through its factors.

    Create it with :func:`matkron.kron`. It is a :class:`scipy.sparse.linalg.LinearOperator`
    and works as the operator of SciPy's iterative solvers and eigensolvers. Structure
    identities (inverse, solve, determinant, trace, norms, singular values) are computed
    on the factors, and arithmetic keeps the structure: ``c * K``, ``K / c``, ``-K``,
    ``K ** p``, ``K1 @ K2`` for conforming factors, ``.T``, ``.H`` and ``.conj()`` are
    KronOperators; ``K1 + K2`` is a :class:`matkron.SumOfKronOperator`.

    Parameters
    ----------
    factors : sequence
        The factors (see :func:`matkron.kron` for the kinds). Arrays are kept without a
        copy (do not modify them afterwards).
    coeff : scalar, optional
        The scalar c (1 by default; a number, not a bool), carried exactly by the
        arithmetic.

    Attributes
    ----------
    factors : tuple
        The factors as given (arrays as ``np.asarray`` of what was given).
    coeff : scalar
        The scalar c.
    apply_order : tuple of int
        The order in which the non-identity factors are applied by matvec.

    Notes
    -----
    Products with dense and identity factors run in the compiled kernel of
    :func:`matkron.kron_matvec` (GIL released, per-thread workspace), so one operator may
    be used from several threads at once. Sparse factors are applied by a compiled CSR
    kernel along their mode, diagonal factors as a scaling, LinearOperator factors through
    their ``matmat`` on the tensor's unfolding (a view of the tensor when the factor's
    mode is first or there is one right-hand side, else a copy into scratch memory).
    The result dtype of a product is ``np.result_type`` of the factors, c and the operand.

    The structure methods work for dense, identity, diagonal and sparse factors; a sparse
    factor is LU-factorized by ``scipy.sparse.linalg.splu`` for solves and determinants,
    and made dense for singular values (2-norm, nuclear norm, ``cond``, ``rank``). They
    raise TypeError for a LinearOperator factor, whose structure matkron cannot see
    (``scipy.sparse.linalg.aslinearoperator(A)`` is read as the matrix A it wraps).

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> from scipy.sparse.linalg import cg
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> K = matkron.kron(A, A)
    >>> b = np.ones(4)
    >>> x, info = cg(K, b, rtol=1e-12)
    >>> bool(np.allclose(K @ x, b)), info
    (True, 0)
    >>> bool(np.allclose((2 * K).solve(b), K.solve(b) / 2))
    True
    """

    _transient = {"_kernel_factors": dict, "_structured_plans": dict,
                  "_adjoint_op": type(None)}

    def __init__(self, factors: Sequence[FactorLike], coeff: Scalar = 1) -> None:
        factors, inner = as_factors(factors)
        coeff = check_number(coeff, "coeff") * inner
        self._init(factors, coeff)

    def _init(self, factors, coeff, promote=None):
        """Set up from Factor objects (also for operators derived from this one, which
        promote as it does: `promote`)."""
        self._kron_factors = tuple(factors)
        if promote is None:
            # Products promote with the factors' own dtypes and c as given (Python numbers
            # weak), as kron_matvec does: an int8 operator times float32 is float32.
            promote = tuple(f.dtype for f in factors if f.dtype is not None) + (coeff,)
        self._factor_dtypes = promote
        dtype = result_dtype(*promote)
        self.coeff = coeff
        self.factors = tuple(f.given for f in factors)
        self._shapes = [f.shape for f in factors]
        self._names = [f"factor {i} ({name} in {describe(self._shapes)})"
                       for i, name in enumerate(_factor_names(len(self._shapes)))]
        self._identities = frozenset(
            i for i, f in enumerate(factors) if isinstance(f, Identity)
        )
        self._in_kernel = all(f.in_kernel for f in factors)
        self._kernel_factors = {}
        self._structured_plans = {}
        if self._in_kernel:
            self._kernel_factors[dtype] = kernel_factors(factors, dtype)
        self._adjoint_op = None
        shape = (
            math.prod(p for p, _ in self._shapes),
            math.prod(q for _, q in self._shapes),
        )
        super().__init__(dtype, shape)
        self.args = tuple(self.factors)

    def _derived(self, factors, coeff, promote=()):
        """A KronOperator of the given Factor objects that promotes as this one (and with
        what `promote` adds)."""
        op = KronOperator.__new__(KronOperator)
        op._init(factors, coeff, self._factor_dtypes + tuple(promote))
        return op

    @property
    def apply_order(self) -> tuple[int, ...]:
        """The order in which matvec applies the non-identity factors to a vector."""
        if 0 in self.shape or not self._in_kernel:
            return _apply_order(self._shapes, self._identities)
        # The planner reads only the shape and strides of its operand: a 1-element
        # buffer viewed as a contiguous vector stands in for one.
        probe = np.lib.stride_tricks.as_strided(
            np.empty(1, dtype=self.dtype), (self.shape[1],), (self.dtype.itemsize,)
        )
        return kron_plan(self._mats(self.dtype), probe)[0]

    # -- products -----------------------------------------------------------------------

    def _mats(self, dtype):
        mats = self._kernel_factors.get(dtype)
        if mats is None:
            mats = self._kernel_factors[dtype] = kernel_factors(self._kron_factors, dtype)
        return mats

    def _product(self, x):
        """self @ x for an ndarray x of 1 or 2 dimensions, checked here."""
        plain = self._in_kernel and self.coeff == 1
        if x.dtype == self.dtype:
            if plain:
                result = kron_matvec_fast(self._mats(self.dtype), x, True)
                if result is not None:
                    return result
            dtype = self.dtype
        else:
            dtype = result_dtype(*self._factor_dtypes, x.dtype)
        if x.ndim not in (1, 2) or x.shape[0] != self.shape[1]:
            check_operand(x, self._shapes)
        x = operand(x, dtype)
        if plain:
            return product(self._mats(dtype), x, self.shape[0])
        shape = result_shape(self.shape[0], x)
        if self._in_kernel:
            out = np.empty(shape, dtype=dtype)
            return apply(((self.coeff, self._mats(dtype)),), x, out)
        out = np.empty(shape, dtype=dtype, order="F")
        return structured_product(self._kron_factors, x, dtype, out, alpha=self.coeff,
                                  plans=self._structured_plans)

    _modes_product = _modes_product

    def _adjoint(self):
        if self._adjoint_op is None:
            adj = self._derived([f.adjoint() for f in self._kron_factors],
                                self.coeff.conjugate())
            adj._adjoint_op = self
            self._adjoint_op = adj
        return self._adjoint_op

    def _transpose(self):
        return self._derived([f.transpose() for f in self._kron_factors], self.coeff)

    def conj(self) -> "KronOperator":
        """The entrywise complex conjugate, c̄ (F̄1 ⊗ … ⊗ F̄k).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.array([[1j]]), np.eye(1)).conj().todense()
        array([[0.-1.j]])
        """
        return self._derived([f.conj() for f in self._kron_factors],
                             self.coeff.conjugate())

    # -- structure ----------------------------------------------------------------------

    def todense(self) -> Array:
        """The dense matrix, equal to c times the ``np.kron`` chain of the factors (small
        sizes only).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.eye(2), np.ones((1, 2))).todense()
        array([[1., 1., 0., 0.],
               [0., 0., 1., 1.]])
        """
        result = np.full((1, 1), self.coeff, dtype=self.dtype)
        for f in self._kron_factors:
            result = np.kron(result, f.dense(self.dtype))
        return result

    def toarray(self) -> Array:
        """The dense matrix (an alias of :meth:`todense`).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.eye(1), [[2.0]]).toarray()
        array([[2.]])
        """
        return self.todense()

    def _require_square(self, what):
        for (p, q), name in zip(self._shapes, self._names):
            if p != q:
                raise needs_square(what, name, (p, q))

    def _require(self, what, finite=False):
        """Check the factors for `what`: square, of a kind with structure, finite."""
        self._require_square(what)
        require_structure(self._kron_factors, self._names, what)
        if finite:
            require_finite(self._kron_factors, self._names, what)

    def _has_nonfinite(self):
        return not all(f.is_finite() for f in self._kron_factors) or not np.isfinite(
            self.coeff)

    def _singular(self, i):
        return np.linalg.LinAlgError(f"{self._names[i]} is singular")

    def inv(self) -> "KronOperator":
        """The inverse, as the KronOperator (1/c) (F1⁻¹ ⊗ … ⊗ Fk⁻¹).

        Raises
        ------
        ValueError
            If a factor is not square, or contains NaN or inf (as ``scipy.linalg.inv``;
            ``numpy.linalg.inv`` would return NaN).
        TypeError
            If a factor is a LinearOperator.
        numpy.linalg.LinAlgError
            If a factor or c is singular (zero).

        Notes
        -----
        Dense factors are inverted (``numpy.linalg.inv``), diagonal ones entrywise; a
        sparse factor's inverse is a LinearOperator applying its ``splu`` factorization.
        An operator with a zero dimension (a 0×0 factor) is the 0×0 matrix, its own
        inverse: its other factors are then neither checked nor inverted, and come back as
        identities of their order.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron(np.diag([2.0, 4.0]), np.diag([1.0, 5.0]))
        >>> K.inv() @ np.ones(4)
        array([0.5 , 0.1 , 0.25, 0.05])
        """
        self._require_square("inv")
        if self.shape[0] == 0:
            return self._derived(
                [f if f.shape[0] == 0 else Identity(IdentityFactor(f.shape[0]))
                 for f in self._kron_factors], 1)
        self._require("inv", finite=True)
        if self.coeff == 0:
            raise np.linalg.LinAlgError("the operator is zero (its coefficient c is 0)")
        inverses = []
        for i, f in enumerate(self._kron_factors):
            try:
                inverses.append(f.inverse())
            except np.linalg.LinAlgError:
                raise self._singular(i) from None
        return self._derived(inverses, 1 / self.coeff)

    def solve(self, b: ArrayLike) -> Array:
        """Solve c (F1 ⊗ … ⊗ Fk) x = b by solves with the factors.

        Parameters
        ----------
        b : array_like
            1-D of length N, or 2-D of shape (N, m) with one right-hand side per column.

        Returns
        -------
        ndarray
            x, of the shape of `b`.

        Raises
        ------
        ValueError
            If a factor is not square, `b` does not match, or a factor contains NaN or
            inf (as SciPy's ``check_finite``; checked before any factorization).
        TypeError
            If a factor is a LinearOperator.
        numpy.linalg.LinAlgError
            If a factor is singular, or c is 0.

        Notes
        -----
        An operator with a zero dimension is the 0×0 matrix: the solution is empty, of the
        shape of `b`, as ``numpy.linalg.solve`` gives, whatever the other factors hold.

        Each factor is factorized once (cached on it: LU for dense factors, ``splu`` for
        sparse ones; diagonal factors divide) and applied along its mode of b reshaped as a
        tensor: O(N Σ n_i) work after the factorizations for dense factors. The LAPACK
        calls of concurrent solves run one at a time (SciPy's OpenBLAS is not safe
        otherwise).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron([[2.0, 1.0], [0.0, 1.0]], [[3.0]])
        >>> K.solve([3.0, 6.0])
        array([-0.5,  2. ])
        """
        self._require_square("solve")
        b = as_array(b, "b")
        check_operand(b, self._shapes, name="b", columns=False)
        dtype = result_dtype(*self._factor_dtypes, b.dtype)
        if self.shape[0] == 0:
            return np.empty(b.shape, dtype=dtype)
        self._require("solve", finite=True)
        if self.coeff == 0:
            raise np.linalg.LinAlgError("the operator is zero (its coefficient c is 0)")
        solvers = []
        for i, f in enumerate(self._kron_factors):
            try:
                solvers.append(f.solver(dtype))
            except np.linalg.LinAlgError:
                raise self._singular(i) from None
        m = 1 if b.ndim == 1 else b.shape[1]
        dims = [q for _, q in self._shapes]
        x = np.array(b, dtype=dtype, order="F").reshape(-1, order="F")
        for i, solve in enumerate(solvers):
            if isinstance(self._kron_factors[i], Identity):
                continue
            L = math.prod(dims[i + 1:])
            R = math.prod(dims[:i]) * m
            x = np.asfortranarray(solve(x.reshape((L, dims[i], R), order="F")))
            x = x.reshape(-1, order="F")
        x = x.reshape(b.shape, order="F")
        if self.coeff != 1:
            x = x / self.coeff
        return x.astype(dtype, copy=False)

    def slogdet(self) -> tuple[Any, float]:
        """Sign and log of the absolute determinant, from the factors.

        det(c F1 ⊗ … ⊗ Fk) = c^N Π det(Fi)^(N / n_i) for square factors of orders n_i,
        N = Π n_i.

        Returns
        -------
        sign : float or complex
            +1, -1 (or a complex unit for complex operators), or 0 when singular; nan
            when a factor contains NaN or inf.
        logabsdet : float
            log|det|, -inf when singular, nan when a factor contains NaN or inf.

        Raises
        ------
        ValueError
            If a factor is not square.
        TypeError
            If a factor is a LinearOperator.

        Notes
        -----
        As ``numpy.linalg.slogdet``, an operator of order 0 (a 0×0 factor) has sign 1 and
        logabsdet 0: the determinant of the 0×0 matrix is 1, whatever the other factors
        hold. The identity above does not hold for factors with NaN or inf (their
        Kronecker product has NaN entries inf·0), so they give nan, as numpy's
        determinant of a matrix with NaN entries does (without its RuntimeWarning).
        A sparse factor's determinant comes from its ``splu`` factorization.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> sign, logdet = matkron.kron(np.diag([1.0, -2.0]), np.eye(3)).slogdet()
        >>> float(sign), round(float(np.exp(logdet)), 12)
        (-1.0, 8.0)
        """
        self._require_square("slogdet")
        n_total = self.shape[0]
        sign = np.ones((), dtype=self.dtype)[()]
        logabs = 0.0
        if n_total == 0:
            return sign, logabs
        require_structure(self._kron_factors, self._names, "slogdet")
        if self._has_nonfinite():
            return self.dtype.type(np.nan), np.nan
        parts = [(f.slogdet(), n_total // f.shape[0]) for f in self._kron_factors
                 if not isinstance(f, Identity)]
        parts.append((np.linalg.slogdet(np.full((1, 1), self.coeff, dtype=self.dtype)),
                      n_total))
        for (s, la), power in parts:
            if s == 0:
                return self.dtype.type(0), -np.inf
            logabs += power * float(la)
            if np.iscomplexobj(s):
                # s = exp(i·θ) raised to the integer power through the angle (to about
                # power·eps radians).
                theta = (power * np.angle(s)) % (2 * np.pi)
                sign = sign * self.dtype.type(np.exp(1j * theta))
            elif s < 0 and power % 2:
                sign = -sign
        return sign, logabs

    def det(self) -> Any:
        """The determinant, computed from the factors (see :meth:`slogdet`).

        1 for an operator of order 0 (the determinant of the 0×0 matrix), nan when a
        factor contains NaN or inf, as ``numpy.linalg.det`` gives on the dense matrix.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> round(float(matkron.kron(np.diag([2.0, 3.0]), np.diag([1.0, 5.0])).det()), 9)
        900.0
        """
        sign, logabs = self.slogdet()
        return sign * np.exp(logabs) if logabs != -np.inf else sign

    def trace(self) -> Any:
        """The trace, c Π trace(Fi), for square factors.

        0 for an operator of order 0. NaN entries propagate as in ``numpy.trace``; with inf
        entries the product of the traces may be inf where the dense matrix (whose entries
        inf·0 are NaN) would give nan.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> float(matkron.kron(np.diag([1.0, 2.0]), np.eye(3)).trace())
        9.0
        """
        self._require_square("trace")
        if self.shape[0] == 0:
            return np.zeros((), dtype=self.dtype)[()]
        require_structure(self._kron_factors, self._names, "trace")
        result = np.full((), self.coeff, dtype=self.dtype)[()]
        for f in self._kron_factors:
            result = result * f.trace()
        return self.dtype.type(result)

    def svdvals(self) -> Array:
        """The singular values, descending: every product of one singular value per
        factor, times abs(c) (N = min(rows, columns) of them, zeros where the factors have
        fewer).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.diag([3.0, 1.0]), np.diag([2.0, 1.0])).svdvals()
        array([6., 3., 2., 1.])
        """
        require_structure(self._kron_factors, self._names, "svdvals")
        values = np.full(1, abs(self.coeff), dtype=np.float64)
        for f in self._kron_factors:
            values = np.multiply.outer(values, f.svdvals()).ravel()
        n = min(self.shape)
        values = np.sort(values)[::-1][:n]
        real = np.finfo(self.dtype).dtype if self.dtype.kind in "fc" else np.float64
        return np.concatenate([values, np.zeros(n - values.size)]).astype(real, copy=False)

    def norm(self, ord: float | Literal["fro", "nuc"] | None = None) -> float:
        """The matrix norm, abs(c) Π ‖Fi‖ (exact: each of these norms is multiplicative
        over Kronecker products).

        Parameters
        ----------
        ord : {None, "fro", "nuc", 1, 2, inf}, optional
            As for ``numpy.linalg.norm`` of the dense matrix: Frobenius (default),
            nuclear, largest column sum, largest singular value, largest row sum.

        Raises
        ------
        ValueError
            For another `ord`.
        TypeError
            If a factor is a LinearOperator.

        Notes
        -----
        0 for an operator with a zero dimension. NaN entries propagate as in
        ``numpy.linalg.norm``; with inf entries the product of the norms may be inf where
        the dense matrix (whose entries inf·0 are NaN) would give nan. The 2-norm and the
        nuclear norm take the singular values of dense and sparse factors (a sparse one
        made dense).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron(np.eye(2), np.full((2, 2), 0.5))
        >>> float(K.norm())
        1.4142135623730951
        >>> float(K.norm(2)), float(K.norm(1))
        (1.0, 1.0)
        """
        check_choice(ord, "ord", _NORMS)
        if 0 in self.shape:
            return np.float64(0.0)
        require_structure(self._kron_factors, self._names, "norm")
        result = float(abs(self.coeff))
        for f in self._kron_factors:
            result *= float(f.norm(ord))
        return np.float64(result)

    def cond(self, ord: float | Literal["fro", "nuc"] | None = None) -> float:
        """The condition number, as ``numpy.linalg.cond`` of the dense matrix.

        Parameters
        ----------
        ord : {None, 2, "fro", "nuc", 1, inf}, optional
            None and 2: the ratio of the largest and smallest singular values (any shape;
            inf when rank deficient); the others ‖K‖ ‖K⁻¹‖ in that norm (square factors).

        Returns
        -------
        float
            Π cond(Fi) (exact for each of these norms).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> float(matkron.kron(np.diag([1.0, 4.0]), np.diag([2.0, 1.0])).cond())
        8.0
        """
        if 0 in self.shape:
            raise np.linalg.LinAlgError("cond is not defined for an empty operator")
        if ord is None or (ord == 2 and type(ord) is not bool):
            s = self.svdvals()
            return np.float64(s[0] / s[-1]) if s[-1] > 0 else np.float64(np.inf)
        check_choice(ord, "ord", _NORMS)
        self._require("cond")
        if self.coeff == 0:
            return np.float64(np.inf)
        return np.float64(math.prod(f.cond(ord) for f in self._kron_factors))

    def diagonal(self) -> Array:
        """The main diagonal (min(rows, columns) entries), from the factors' entries.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.diag([1.0, 2.0]), [[1.0, 5.0], [6.0, 3.0]]).diagonal()
        array([1., 3., 2., 6.])
        """
        require_structure(self._kron_factors, self._names, "diagonal")
        n = min(self.shape)
        idx = np.arange(n)
        rows = np.unravel_index(idx, [p for p, _ in self._shapes]) if n else None
        cols = np.unravel_index(idx, [q for _, q in self._shapes]) if n else None
        result = np.full(n, self.coeff, dtype=self.dtype)
        for j, f in enumerate(self._kron_factors):
            if n:
                result *= f.diagonal_entries(rows[j], cols[j])
        return result

    def rank(self) -> int:
        """The rank, Π rank(Fi) (0 when c is 0); dense and sparse factors by their
        singular values, as ``numpy.linalg.matrix_rank``.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.ones((2, 2)), np.eye(3)).rank()
        3
        """
        require_structure(self._kron_factors, self._names, "rank")
        if self.coeff == 0 or 0 in self.shape:
            return 0
        return math.prod(f.rank() for f in self._kron_factors)

    # -- spectral methods (Hermitian factors) ---------------------------------------------

    def _check_hermitian(self, what):
        """ValueError (TypeError for an opaque factor) unless every factor and c allow
        `what` (square, structured, finite, Hermitian; c real)."""
        self._require(what, finite=True)
        if np.iscomplexobj(self.coeff) and self.coeff.imag != 0:
            raise ValueError(f"{what} needs a real coefficient; c = {self.coeff!r}")
        for f, name in zip(self._kron_factors, self._names):
            if not f.is_hermitian():
                raise needs_hermitian(what, name)

    def _hermitian_factors(self, what):
        """The factors' eigendecompositions [(w, V)], after :meth:`_check_hermitian`."""
        self._check_hermitian(what)
        return once_per_distinct(self._kron_factors, lambda f: f.eigh())

    def eigh(self) -> tuple[Array, "KronOperator"]:
        """The eigendecomposition K = V diag(w) Vᴴ from the factors' (Hermitian factors).

        Returns
        -------
        w : ndarray
            The N eigenvalues, c times the Kronecker product of the factor eigenvalue
            vectors (the order of ``np.kron(w1, w2, …)``, not sorted), float64 (float32
            for single-precision operators).
        V : KronOperator
            The unitary operator of the factor eigenvectors.

        Raises
        ------
        ValueError
            If a factor is not square, not Hermitian (to 16 ulps of its largest entry) or
            not finite, or c is not real.
        TypeError
            If a factor is a LinearOperator.

        Notes
        -----
        One ``scipy.linalg.eigh`` per dense factor (a sparse factor is made dense: O(n³)
        once); diagonal and identity factors need none.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron(np.array([[2.0, 1.0], [1.0, 2.0]]), np.diag([1.0, 3.0]))
        >>> w, V = K.eigh()
        >>> w
        array([1., 3., 3., 9.])
        >>> bool(np.allclose(V.todense() @ np.diag(w) @ V.todense().T, K.todense()))
        True
        """
        return self._eigh("eigh")

    def _eigh(self, what):
        pairs = self._hermitian_factors(what)
        w = np.full(1, self.coeff.real if np.iscomplexobj(self.coeff) else self.coeff,
                    dtype=np.finfo(self.dtype).dtype)
        for lam, _ in pairs:
            w = np.multiply.outer(w, lam).ravel()
        return w, KronOperator([v for _, v in pairs])

    def cholesky(self) -> "KronOperator":
        """The lower-triangular KronOperator L = √c (L1 ⊗ … ⊗ Lk) with L Lᴴ = K, from the
        factors' Cholesky factors (Hermitian positive definite factors, c > 0).

        Raises
        ------
        numpy.linalg.LinAlgError
            If a Hermitian factor is not positive definite (named), or c is not positive.
        ValueError, TypeError
            As for :meth:`eigh` (a factor that is not Hermitian, square or finite, or c
            not real: ValueError; an opaque factor: TypeError).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron(np.array([[4.0, 2.0], [2.0, 3.0]]), np.diag([1.0, 9.0]))
        >>> L = K.cholesky()
        >>> bool(np.allclose(L.todense() @ L.todense().T, K.todense()))
        True
        >>> bool(np.allclose(np.triu(L.todense(), 1), 0))
        True
        """
        self._check_hermitian("cholesky")
        c = self.coeff.real if np.iscomplexobj(self.coeff) else self.coeff
        if not c > 0:
            raise np.linalg.LinAlgError(f"cholesky needs c > 0; c = {self.coeff!r}")
        factors = []
        for f, name in zip(self._kron_factors, self._names):
            try:
                factors.append(f.cholesky())
            except np.linalg.LinAlgError:
                raise np.linalg.LinAlgError(f"{name} is not positive definite") from None
        return self._derived(factors, math.sqrt(c))

    def power(self, p: float) -> "KronOperator":
        """K^p for a real p: the KronOperator c^p (F1^p ⊗ … ⊗ Fk^p).

        An integer p works for any square factors (:meth:`__pow__`); another real p needs
        Hermitian positive semidefinite factors and c >= 0 (each factor's power through
        its eigendecomposition; the principal power).

        Raises
        ------
        ValueError
            For a non-integer p with a factor that is not Hermitian positive semidefinite
            (named), or c < 0.
        numpy.linalg.LinAlgError
            For p < 0 when a factor (named) or c is singular.
        TypeError
            If p is not a real number (a bool is not).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron(np.diag([4.0, 9.0]), np.array([[2.0, 1.0], [1.0, 2.0]]))
        >>> R = K.power(0.5)
        >>> bool(np.allclose(R.todense() @ R.todense(), K.todense()))
        True
        """
        return self._power(p, "power")

    def _power(self, p, what):
        if is_integer(p) or float(check_number(p, "p", real=True)).is_integer():
            return self ** int(p)
        self._hermitian_factors(what)
        c = self.coeff.real if np.iscomplexobj(self.coeff) else self.coeff
        if c < 0:
            raise ValueError(f"a non-integer power needs c >= 0; c = {self.coeff!r}")
        if c == 0 and p < 0:
            raise np.linalg.LinAlgError(
                f"a negative power needs a nonsingular operator; c = {self.coeff!r}")
        factors = []
        for f, name in zip(self._kron_factors, self._names):
            try:
                factors.append(f.fractional_power(float(p)))
            except np.linalg.LinAlgError as exc:  # before ValueError, its base class
                raise np.linalg.LinAlgError(f"{name} {exc}") from None
            except ValueError as exc:
                raise ValueError(
                    f"a non-integer power needs positive semidefinite factors; {name} {exc}"
                ) from None
        return self._derived(factors, c ** float(p))

    def sqrtm(self) -> "KronOperator":
        """The principal square root, :meth:`power` (0.5): Hermitian positive
        semidefinite factors.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.diag([4.0, 9.0]), np.eye(1)).sqrtm().todense()
        array([[2., 0.],
               [0., 3.]])
        """
        return self._power(0.5, "sqrtm")

    def funm(self, f: Callable[[Array], ArrayLike]) -> "EigenOperator":
        """f(K) = V diag(f(w)) Vᴴ for Hermitian factors, from :meth:`eigh`.

        Parameters
        ----------
        f : callable
            Vectorized: applied once to the 1-D array of the N eigenvalues.

        Returns
        -------
        EigenOperator
            The LinearOperator x ↦ V (f(w) ∘ (Vᴴ x)): two Kronecker products and a scaling
            per product. A function of a Kronecker product has no Kronecker structure in
            general, so the eigenvalue grid (N values) is stored.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.linalg
        >>> import matkron
        >>> A = np.array([[1.0, 0.5], [0.5, 2.0]])
        >>> E = matkron.kron(A, A).funm(np.exp)
        >>> bool(np.allclose(E.todense(), scipy.linalg.expm(np.kron(A, A))))
        True
        """
        w, V = self._eigh("funm")
        return EigenOperator(V, f(w))

    # -- arithmetic -----------------------------------------------------------------------

    def __mul__(self, other: Scalar) -> "KronOperator":
        c = as_scalar(other)
        if c is not None:
            return self._derived(self._kron_factors, self.coeff * c, (c,))
        return super().__mul__(other)

    def __rmul__(self, other: Scalar) -> "KronOperator":
        c = as_scalar(other)
        if c is not None:
            return self._derived(self._kron_factors, c * self.coeff, (c,))
        return super().__rmul__(other)

    def __truediv__(self, other: Scalar) -> "KronOperator":
        c = as_scalar(other)
        if c is not None:
            return self._derived(self._kron_factors, self.coeff / c, (c,))
        return NotImplemented

    def __neg__(self) -> "KronOperator":
        return self._derived(self._kron_factors, -self.coeff)

    def __pow__(self, p: int) -> "KronOperator":
        """K ** p for an integer p: (c^p) (F1^p ⊗ … ⊗ Fk^p); negative p through the factor
        inverses, p = 0 the identity."""
        if not is_integer(p):
            return NotImplemented
        p = int(p)
        self._require_square("K ** p")
        if p < 0:
            return self.inv() ** (-p)
        return self._derived([f.power(p) for f in self._kron_factors], self.coeff**p)

    @overload
    def __matmul__(self, other: Array) -> Array: ...
    @overload
    def __matmul__(self, other: LinearOperator) -> LinearOperator: ...

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, KronOperator) and self._conforms(other):
            factors = [f.matmul(g) for f, g in zip(self._kron_factors, other._kron_factors)]
            return self._derived(factors, self.coeff * other.coeff, other._factor_dtypes)
        return super().__matmul__(other)

    def dot(self, x: Any) -> Any:
        if isinstance(x, KronOperator) and self._conforms(x):
            return self.__matmul__(x)
        return super().dot(x)

    def _conforms(self, other):
        return len(self._shapes) == len(other._shapes) and all(
            q == p for (_, q), (p, _) in zip(self._shapes, other._shapes)
        )

    def __repr__(self) -> str:
        shapes = ", ".join(f"{p}x{q}" for p, q in self._shapes)
        kinds = {f.kind for f in self._kron_factors} - {"dense", "identity"}
        extra = f", {'/'.join(sorted(kinds))} factors" if kinds else ""
        coeff = "" if self.coeff == 1 else f"{self.coeff!r} * "
        return (
            f"<{self.shape[0]}x{self.shape[1]} KronOperator {coeff}({shapes}){extra} "
            f"with dtype={self.dtype}>"
        )


class EigenOperator(ProductOperator):
    """V diag(values) Vᴴ for a unitary KronOperator V: a function of a Hermitian
    Kronecker operator through its eigenvalue grid (see :meth:`KronOperator.funm`).

    Attributes
    ----------
    V : KronOperator
        The eigenvectors.
    values : ndarray
        The N values on the eigenvalue grid.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> S = matkron.kron(np.diag([1.0, 4.0]), np.eye(2)).funm(np.sqrt)
    >>> S @ np.ones(4)
    array([1., 1., 2., 2.])
    """

    def __init__(self, V: "KronOperator", values: ArrayLike) -> None:
        values = np.asarray(values)
        if values.shape != (V.shape[1],):
            raise ValueError(
                f"f returned shape {values.shape}; expected ({V.shape[1]},), one value per "
                "eigenvalue"
            )
        dtype = result_dtype(V.dtype, values.dtype)
        self.V = V
        self.values = values
        self._adjoint_op = None
        super().__init__(dtype, (V.shape[0], V.shape[0]))
        self.args = (V, values)

    def _product(self, x):
        check_rows(x, self.shape[1], "x", f"the number of columns of the {self.shape[0]}x"
                   f"{self.shape[1]} operator")
        y = self.V.H @ x
        y = y * (self.values if y.ndim == 1 else self.values[:, np.newaxis])
        return self.V @ y

    def _adjoint(self):
        if self._adjoint_op is None:
            self._adjoint_op = EigenOperator(self.V, self.values.conj())
        return self._adjoint_op

    def _transpose(self):
        return EigenOperator(self.V.conj(), self.values)

    def todense(self) -> Array:
        """The dense matrix (small sizes only)."""
        Vd = self.V.todense()
        return (Vd * self.values) @ Vd.conj().T


def _adjoint_array(a):
    if isinstance(a, IdentityFactor):
        return a
    return a.T.conj() if a.dtype.kind == "c" else a.T


def _factor_eigh(f, dtype):
    """(eigenvalues, eigenvectors) of a Hermitian Factor: for a diagonal (an idle position
    of a Kronecker sum among them) its entries and the identity, without an O(n³)
    eigendecomposition of the dense matrix."""
    if f.kind == "diagonal":
        return f.d.real.astype(np.finfo(dtype).dtype), identity(f.shape[0])
    return hermitian_eigh(f.dense(dtype))


def _new_result(x, rows, dtype):
    """A result array for operand x: 1-D, or 2-D in the memory order of x (its size
    checked against the BLAS integer range first)."""
    order = "F" if x.ndim == 2 and x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    return np.empty(result_shape(rows, x), dtype=dtype, order=order)


def _product_shape(factors):
    return (
        math.prod(f.shape[0] for f in factors),
        math.prod(f.shape[1] for f in factors),
    )


def sum_of_kron(
    terms: Sequence[Sequence[FactorLike]], coeffs: Sequence[Scalar] | None = None
) -> "SumOfKronOperator":
    """The sum of Kronecker products Σᵢ cᵢ (Aᵢ ⊗ Bᵢ) as a :class:`SumOfKronOperator`.

    Parameters
    ----------
    terms : sequence of (factor, factor)
        The pairs (Aᵢ, Bᵢ), each factor of any kind :func:`kron` takes (array_likes,
        :func:`matkron.identity`, :func:`matkron.diagonal`, ``scipy.sparse`` matrices,
        LinearOperators, KronOperators). The products Aᵢ ⊗ Bᵢ must all have the same
        shape; the factors' own shapes may differ from term to term.
        (Longer tuples (Aᵢ, Bᵢ, Cᵢ, …) are accepted too and mean Aᵢ ⊗ Bᵢ ⊗ Cᵢ ⊗ ….)
    coeffs : sequence of scalars, optional
        The coefficients cᵢ; all ones by default.

    Returns
    -------
    SumOfKronOperator
        The lazy operator; nothing is formed.

    Raises
    ------
    ValueError
        If `terms` is empty, a factor is not 2-D, the products differ in shape, or `coeffs`
        has the wrong length.
    TypeError
        If a term is not a sequence of matrices or a coefficient is not a number.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> B = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> S = matkron.sum_of_kron([(A, B), (B, matkron.identity(2))], coeffs=[2.0, -1.0])
    >>> x = np.arange(4.0)
    >>> S @ x
    array([12.,  5., 30., 15.])
    >>> (2 * np.kron(A, B) - np.kron(B, np.eye(2))) @ x
    array([12.,  5., 30., 15.])
    """
    return SumOfKronOperator(terms, coeffs)


class SumOfKronOperator(_SumsOfKron, ProductOperator):
    """A sum of Kronecker products Σᵢ cᵢ (Aᵢ ⊗ Bᵢ), applied term by term in one kernel call.

    Create it with :func:`sum_of_kron`, or by adding, subtracting and scaling
    :class:`matkron.KronOperator` objects. It is a :class:`scipy.sparse.linalg.LinearOperator`.

    Parameters
    ----------
    terms : sequence of sequences of array_like
        One sequence of Kronecker factors per term; usually pairs (Aᵢ, Bᵢ). Arrays are kept
        without a copy when they already have the operator's dtype (do not modify them).
    coeffs : sequence of scalars, optional
        The coefficients cᵢ; all ones by default.
    shape : tuple of int, optional
        The operator shape; required only for an empty sum (the zero operator).
    dtype : dtype, optional
        A dtype the operator's dtype must include (used for an empty sum).
    _promote : tuple, optional
        Private: what products promote with, when the factors given are the cast arrays
        of other operators (their own record of the original dtypes).

    Attributes
    ----------
    terms : tuple
        One tuple (cᵢ, Aᵢ, Bᵢ) per term (cᵢ followed by all of the term's factors), the
        factors as arrays of the operator's dtype or identity factors.

    Notes
    -----
    With vec the column-stacking map, (A ⊗ B) vec(C) = vec(B C Aᵀ). A product runs in the
    compiled kernel of :func:`matkron.kron_matvec` in one call for all terms: each term's
    last GEMM is scaled by cᵢ and accumulates into the result through GEMM's beta = 1, the
    intermediates of every term share one per-thread workspace, and identity factors cost
    no GEMM. The GIL is released; one operator may be used from several threads at once.

    The operator computes in the kernel dtype of its factors and coefficients (int8
    factors in float64), but a product promotes, as :func:`matkron.kron_matvec` does, with
    the factors' own dtypes, the coefficients as given (Python numbers are weak) and the
    operand: int8 factors times a float32 vector give float32. Sums and multiples of
    operators keep what their operands promote with.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> S = matkron.kron(A, np.eye(2)) + 2 * matkron.kron(np.eye(2), A)
    >>> type(S).__name__, len(S.terms)
    ('SumOfKronOperator', 2)
    >>> np.allclose(S.todense(), np.kron(A, np.eye(2)) + 2 * np.kron(np.eye(2), A))
    True
    """

    _transient = {"_kernel": dict, "_adjoint_op": type(None), "_eigen": dict}

    def __init__(
        self,
        terms: Sequence[Sequence[FactorLike]],
        coeffs: Sequence[Scalar] | None = None,
        *,
        shape: tuple[int, int] | None = None,
        dtype: DTypeLike = None,
        _promote: Any = None,
    ) -> None:
        terms = as_list(terms, "terms", "(A, B) pairs")
        if coeffs is None:
            coeffs = [1.0] * len(terms)
        else:
            if isinstance(coeffs, np.ndarray) and coeffs.ndim != 1:
                raise sequence_error(coeffs, "coeffs", "numbers, one per term")
            coeffs = as_list(coeffs, "coeffs", "numbers, one per term", stacked=1)
            check_length(coeffs, "coeffs", len(terms), "one per term")
        for i, c in enumerate(coeffs):
            check_number(c, f"coeffs[{i}]")
        if shape is None:
            check_nonempty(terms, "terms", "(A, B) pair")
        parsed = []
        for i, term in enumerate(terms):
            if isinstance(term, (np.ndarray, str, bytes)) or not isinstance(
                term, (tuple, list)
            ):
                raise TypeError(
                    f"terms[{i}] must be an (A, B) pair of matrices; got "
                    f"{type(term).__name__}"
                )
            factors, inner = as_factors(term, f"terms[{i}]")
            parsed.append(factors)
            if inner != 1:
                coeffs[i] = coeffs[i] * inner
        shapes = [_product_shape(factors) for factors in parsed]
        expected = tuple(shape) if shape is not None else shapes[0]
        for i, s in enumerate(shapes):
            if s != expected:
                inner = ", ".join(str(f.shape) for f in parsed[i])
                first = "the given shape" if shape is not None else "terms[0]"
                raise ValueError(
                    f"terms[{i}] is {describe([f.shape for f in parsed[i]])} of shape {s} "
                    f"(factors {inner}); expected {expected} like {first}"
                )
        if _promote is None:
            # The factors' own dtypes and the coefficients as given (Python numbers weak):
            # an int8 operator times float32 is float32, as kron_matvec gives.
            _promote = tuple(f.dtype for factors in parsed for f in factors
                             if f.dtype is not None)
            _promote += tuple(coeffs)
        if dtype is not None:
            _promote += (np.dtype(dtype),)
        self._factor_dtypes = _promote
        dtype = result_dtype(*_promote) if _promote else np.dtype("f8")
        self._terms = tuple(
            # Coefficients as given (exact), cast per product dtype in the products.
            (c, tuple(factors)) for c, factors in zip(coeffs, parsed)
        )
        self._kernel = {}
        self._adjoint_op = None
        self._eigen = {}  # the direct form (see _direct), computed once for every solve
        super().__init__(dtype, expected)
        self.args = self.terms

    @property
    def terms(self) -> tuple[tuple[Any, ...], ...]:
        """One tuple (cᵢ, Aᵢ, Bᵢ) per term: the coefficient and the factors.

        The coefficient is a NumPy scalar, dense factors arrays of the operator's dtype and
        the others (identity, diagonal, sparse, operator factors) as given; for a term of
        more factors, (cᵢ, Aᵢ, Bᵢ, Cᵢ, …).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> A = np.array([[1, 2], [3, 4]])
        >>> S = matkron.sum_of_kron([(A, matkron.identity(3))], coeffs=[2])
        >>> c, left, right = S.terms[0]
        >>> c, right
        (np.float64(2.0), identity(3))
        >>> left
        array([[1., 2.],
               [3., 4.]])
        """
        return tuple(
            (self.dtype.type(c),
             *(f.dense(self.dtype) if f.kind == "dense" else f.given for f in factors))
            for c, factors in self._terms
        )

    # -- products -----------------------------------------------------------------------

    def _kernel_terms(self, dtype):
        """The terms whose factors all run in the compiled kernel, as it takes them."""
        terms = self._kernel.get(dtype)
        if terms is None:
            real = dtype.kind != "c"
            terms = self._kernel[dtype] = tuple(
                (float(c.real) if real else complex(c), kernel_factors(factors, dtype))
                for c, factors in self._terms
                if all(f.in_kernel for f in factors)
            )
        return terms

    def _product_dtype(self, x):
        if x.dtype == self.dtype:
            return self.dtype
        return result_dtype(*self._factor_dtypes, x.dtype)

    _modes_product = _modes_product

    def _product(self, x):
        """self @ x for an ndarray x of 1 or 2 dimensions."""
        dtype = self._product_dtype(x)
        n = self.shape[1]
        check_rows(x, n, "x", f"the number of columns of the {self.shape[0]}x{n} sum of "
                   "Kronecker products")
        x = operand(x, dtype)
        out = _new_result(x, self.shape[0], dtype)
        kernel_terms = self._kernel_terms(dtype)
        if kernel_terms:
            apply(kernel_terms, x, out)
        elif len(self._terms) == 0 or x.shape[0] == 0:
            out.fill(0)
            return out
        accumulate = bool(kernel_terms)
        for c, factors in self._terms:
            if not all(f.in_kernel for f in factors):
                structured_product(factors, x, dtype, out, alpha=c, accumulate=accumulate)
                accumulate = True
        return out

    def _with_terms(self, terms, shape):
        """A SumOfKronOperator of (c, factors) pairs, of the given shape, that promotes as
        this one."""
        return SumOfKronOperator(
            [factors for _, factors in terms],
            [c for c, _ in terms],
            shape=shape,
            _promote=self._factor_dtypes,
        )

    def _adjoint(self):
        if self._adjoint_op is None:
            adj = self._with_terms(
                [(c.conjugate(), tuple(f.adjoint() for f in factors))
                 for c, factors in self._terms],
                self.shape[::-1],
            )
            adj._adjoint_op = self
            self._adjoint_op = adj
        return self._adjoint_op

    def _transpose(self):
        return self._with_terms(
            [(c, tuple(f.transpose() for f in factors)) for c, factors in self._terms],
            self.shape[::-1],
        )

    def todense(self) -> Array:
        """The dense matrix Σ cᵢ kron(Aᵢ, Bᵢ) (small sizes only).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.sum_of_kron([(np.eye(1), np.ones((1, 2)))], [3]).todense()
        array([[3., 3.]])
        """
        result = np.zeros(self.shape, dtype=self.dtype)
        for c, factors in self._terms:
            dense = functools.reduce(np.kron, [f.dense(self.dtype) for f in factors])
            result += c * dense
        return result

    # -- direct methods for the sums factor eigendecompositions diagonalize ---------------

    def _direct(self, what):
        """How this sum is solved directly (computed once, cached): a KronSumOperator or
        KronOperator equal to it, or a :class:`~matkron._pencil.Pencil` (see :meth:`solve`)."""
        form = self._eigen.get("form")
        if form is None:
            form = self._eigen["form"] = self._find_direct_form(what)
        return form

    def _find_direct_form(self, what):
        shift = 0
        products = []
        for c, factors in self._terms:
            if all(f.kind == "identity" for f in factors):
                shift = shift + c
            else:
                products.append((c, factors))
        for c, factors in products:
            for f in factors:
                if f.kind == "operator":
                    raise needs_structure(what, "a factor of this sum")
                if f.shape[0] != f.shape[1]:
                    raise needs_square(what, "a factor of this sum", f.shape)
                if not f.is_finite():
                    raise not_finite("a factor of this sum", what)
        n = self.shape[0]
        if not products:  # s I alone
            return Pencil(np.full(n, shift, dtype=self.dtype), KronOperator([identity(n)]),
                          0.0, True, [], [], 0, shift)
        factorwise = self._as_kronsum(products, shift)
        if factorwise is not None:
            return factorwise
        if len(products) == 1:
            c, factors = products[0]
            unit = [Identity(IdentityFactor(f.shape[0])) for f in factors]
            return self._pencil(what, (c, factors), (shift, unit), "a factor",
                                "the Kronecker product's factor")
        if len(products) == 2 and shift == 0 and _conforming(products):
            # c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ: the product of structured (identity, diagonal) factors
            # is the likelier positive definite one, so it is tried first as C.
            names = ("the first product's factor", "the second product's factor")
            order = sorted((0, 1), key=lambda j: not all(
                f.kind in ("identity", "diagonal") for f in products[j][1]))
            first, second = order
            try:
                return self._pencil(what, products[second], products[first], names[first],
                                    names[second])
            except np.linalg.LinAlgError as exc:
                try:
                    return self._pencil(what, products[first], products[second],
                                        names[second], names[first])
                except np.linalg.LinAlgError as exc2:
                    raise np.linalg.LinAlgError(f"{exc}; and {exc2}") from None
        raise NotImplementedError(
            f"{what} is direct for c K + s I with K a Kronecker product of Hermitian "
            "factors, for c₁ (A1 ⊗ … ⊗ Ak) + c₂ (C1 ⊗ … ⊗ Ck) with Hermitian Aᵢ and "
            "Hermitian definite Cᵢ (e.g. matkron.diagonal with positive entries), "
            "and for Kronecker sums plus s I; this sum has "
            f"{len(products)} Kronecker products besides identities: use an iterative "
            "solver of scipy.sparse.linalg (cg, minres, gmres) with this operator"
        )

    def _as_kronsum(self, products, shift):
        """The operator equal to Σ c F + s I when every product has one non-identity
        factor and all products are of one shape: a KronSumOperator when two positions
        or more are busy (idle ones get a zero diagonal), else the KronOperator of
        identities and the one busy factor; None otherwise. The shift goes to the first
        busy position, and a position's factor keeps its kind when it has one term."""
        if not _conforming(products):
            return None
        positions = {}
        for c, factors in products:
            busy = [p for p, f in enumerate(factors) if f.kind != "identity"]
            if len(busy) != 1:
                return None
            positions.setdefault(busy[0], []).append((c, factors[busy[0]]))
        dims = [f.shape[0] for f in products[0][1]]
        dtype = self.dtype
        first_busy = min(positions)
        mats = []
        for p, n in enumerate(dims):
            terms = positions.get(p, ())
            s = dtype.type(shift) if p == first_busy else dtype.type(0)
            if not terms:
                mats.append(DiagonalFactor(np.zeros(n, dtype)))
            elif len(terms) == 1 and terms[0][1].kind == "sparse":
                c, f = terms[0]
                mats.append((dtype.type(c) * f.csr + s * scipy.sparse.eye_array(n)).tocsr())
            elif len(terms) == 1 and terms[0][1].kind == "diagonal":
                c, f = terms[0]
                mats.append(DiagonalFactor(dtype.type(c) * f.d.astype(dtype) + s))
            else:
                mat = s * np.eye(n, dtype=dtype)
                for c, f in terms:
                    mat += dtype.type(c) * f.dense(dtype)
                mats.append(mat)
        names = [f"the factor at Kronecker position {p} of this sum"
                 for p in range(len(dims))]
        if len(positions) == 1:
            # I ⊗ … ⊗ (Σ c F + s I) ⊗ … ⊗ I: a Kronecker product, solved along one mode.
            mats = [identity(n) if p != first_busy else mat
                    for p, (n, mat) in enumerate(zip(dims, mats))]
            K = KronOperator(mats)
            K._names = tuple(names)
            return K
        # kronsum(A1, …, Ak) puts A1 at the last Kronecker position.
        return KronSumOperator(mats[::-1], _names=names[::-1])

    def _pencil(self, what, kron_term, c_term, c_name, a_name):
        """The Pencil of c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ, naming the factor that fails its condition
        (`a_name`, `c_name`: how to call the factors of each product)."""
        (c1, a_factors), (c2, c_factors) = kron_term, c_term
        dtype = self.dtype
        lams, vs, logdet_c, exact = [np.ones(1, np.finfo(dtype).dtype)], [], 0.0, [True]
        n_total = self.shape[0]

        def pencil(i):
            try:
                return factor_pencil(a_factors[i], c_factors[i], dtype)
            except np.linalg.LinAlgError as exc:
                raise np.linalg.LinAlgError(f"{what}: {c_name} {i} {exc}") from None
            except ValueError:  # factor_pencil's only one: A is not Hermitian
                raise needs_hermitian(what, f"{a_name} {i}") from None

        pencils = once_per_distinct(
            range(len(a_factors)), pencil,
            lambda i, j: same_factor(a_factors[i], a_factors[j])
            and same_factor(c_factors[i], c_factors[j]))
        for a, c, (lam, v, logdet, sign) in zip(a_factors, c_factors, pencils):
            lams.append(lam)
            # Eigenvalues of identities and diagonals are exact to a rounding of their own
            # (relative); an eigendecomposition's are accurate relative to the largest.
            exact.append(a.kind in ("identity", "diagonal")
                         and c.kind in ("identity", "diagonal"))
            vs.append(v)
            # Vᵢᴴ Cᵢ Vᵢ = σᵢ I: a negative definite Cᵢ turns the sign of c₂.
            c2 = -c2 if sign < 0 else c2
            if a.shape[0]:
                logdet_c += n_total // a.shape[0] * logdet
        grid = functools.reduce(lambda u, lam: np.multiply.outer(u, lam).ravel(), lams)
        # Vᴴ (c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ) V = c₁ Λ + c₂ I for any c₁, c₂: complex ones give a
        # complex w (solve, inv, slogdet; no eigh).
        c1 = c1.real if np.iscomplexobj(c1) and c1.imag == 0 else c1
        c2 = c2.real if np.iscomplexobj(c2) and c2.imag == 0 else c2
        unitary = all(f.kind == "identity" for f in c_factors)
        w = grid.astype(np.result_type(grid, c1, c2), copy=False)
        w *= c1
        w += c2
        return Pencil(w, KronOperator(vs), logdet_c, unitary, lams, exact, c1, c2)

    def _pencil_form(self, what):
        """(pencil, None), or (None, op) for a sum equal to a Kronecker sum or product op
        with direct methods of its own."""
        form = self._direct(what)
        if isinstance(form, Pencil):
            return form, None
        return None, form

    def solve(self, b: ArrayLike) -> Array:
        """Solve this sum times x = b directly, for the sums factor eigendecompositions
        diagonalize.

        - c K + s I (the Gaussian-process form K + σ² I), K = ⊗ Aᵢ with Hermitian
          Aᵢ = Vᵢ Λᵢ Vᵢᴴ: x = V ((c w + s)⁻¹ ∘ Vᴴ b) with V = ⊗ Vᵢ and w the Kronecker
          product of the Λᵢ;
        - c₁ (A1 ⊗ … ⊗ Ak) + c₂ (C1 ⊗ … ⊗ Ck) with Hermitian Aᵢ and Hermitian positive
          definite Cᵢ (e.g. ``matkron.diagonal`` with positive entries, exactly, through
          Dᵢ^{-1/2} Aᵢ Dᵢ^{-1/2}): the pencils Aᵢ Vᵢ = Cᵢ Vᵢ Λᵢ with Vᵢᴴ Cᵢ Vᵢ = I, as
          ``scipy.linalg.eigh(a, b)``, give the same formula (a negative definite Cᵢ is
          the pencil of −Cᵢ, its sign moved into c₂);
        - a Kronecker sum plus s I, or any sum of Kronecker products of one non-identity
          factor each (A ⊗ I + I ⊗ B + s I): :meth:`KronSumOperator.solve`.

        The factor decompositions are computed once, on the first call of any direct
        method, and reused by every later one.

        Parameters
        ----------
        b : array_like
            1-D of length N, or 2-D (N, m).

        Returns
        -------
        ndarray
            x, of the shape of `b`.

        Raises
        ------
        NotImplementedError
            For another sum (use ``scipy.sparse.linalg`` solvers on the operator).
        ValueError
            If a factor is not Hermitian (named), or `b` does not match.
        numpy.linalg.LinAlgError
            If the sum is singular, or neither product's factors are all definite
            (positive or negative).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> A = np.array([[2.0, 1.0], [1.0, 2.0]])
        >>> S = matkron.kron(A, A) + 0.5 * matkron.identity(4)
        >>> x = S.solve(np.ones(4))
        >>> bool(np.allclose((np.kron(A, A) + 0.5 * np.eye(4)) @ x, 1.0))
        True
        >>> D = matkron.diagonal([1.0, 2.0])
        >>> T = matkron.kron(A, A) + 3 * matkron.kron(D, D)
        >>> y = T.solve(np.ones(4))
        >>> M = np.kron(A, A) + 3 * np.kron(np.diag([1.0, 2.0]), np.diag([1.0, 2.0]))
        >>> bool(np.allclose(M @ y, 1.0))
        True
        """
        b = as_array(b, "b")
        n = self.shape[0]
        check_rows(b, n, "b", f"the number of rows of the {n}x{n} operator")
        pencil, factorwise = self._pencil_form("solve")
        dtype = result_dtype(*self._factor_dtypes, b.dtype)
        if factorwise is not None:
            return factorwise.solve(b).astype(dtype, copy=False)
        w, V = pencil.w, pencil.V
        pencil.check_nonsingular()
        dtype = result_dtype(dtype, w.dtype)
        b = b.astype(dtype, copy=False)
        y = V.H @ b
        scale = w if y.ndim == 1 else w[:, np.newaxis]
        if y.dtype == np.result_type(y, w) and not np.may_share_memory(y, b):
            y /= scale  # the product's own result: divided in place
        else:
            y = y / scale
        return (V @ y).astype(dtype, copy=False)

    def inv(self) -> LinearOperator:
        """The inverse as an operator (see :meth:`solve` for the forms and errors): an
        :class:`EigenOperator` V diag(1/w) Vᴴ, or a Kronecker sum's inverse.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> S = matkron.kron(np.diag([1.0, 3.0])) + matkron.identity(2)
        >>> S.inv() @ np.ones(2)
        array([0.5 , 0.25])
        """
        pencil, factorwise = self._pencil_form("inv")
        if factorwise is not None:
            return factorwise.inv()
        pencil.check_nonsingular()
        return EigenOperator(pencil.V, 1 / pencil.w)

    def eigh(self) -> tuple[Array, "KronOperator"]:
        """(w, V) with this sum = V diag(w) Vᴴ, V unitary, for c K + s I with s real and
        Kronecker sums of Hermitian factors plus s I (see :meth:`solve`; w in the order
        of :meth:`KronOperator.eigh`, not sorted). The two-product form
        c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ has a generalized eigendecomposition only (ValueError).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> w, V = (matkron.kron(np.diag([1.0, 3.0])) + 2 * matkron.identity(2)).eigh()
        >>> w
        array([3., 5.])
        """
        pencil, factorwise = self._pencil_form("eigh")
        if factorwise is not None:
            return factorwise.eigh()
        if not pencil.unitary:
            raise ValueError(
                "eigh needs the form c K + s I: c₁ ⊗ Aᵢ + c₂ ⊗ Cᵢ has the generalized "
                "eigendecomposition Vᴴ (·) V = diag(w) with Vᴴ (⊗ Cᵢ) V = I only"
            )
        if np.iscomplexobj(pencil.w):
            raise ValueError("eigh needs real coefficients: with complex ones the sum is "
                             "not Hermitian")
        return pencil.w.copy(), pencil.V  # the cached grid stays the operator's

    def slogdet(self) -> tuple[Any, float]:
        """Sign and log|det| from the eigenvalue grid: Σ log|w| (+ log det ⊗ Cᵢ for the
        two-product form; see :meth:`solve`).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> S = matkron.kron(np.diag([1.0, 3.0]), np.eye(2)) + matkron.identity(4)
        >>> sign, logdet = S.slogdet()
        >>> float(sign), round(float(np.exp(logdet)), 9)
        (1.0, 64.0)
        """
        pencil, factorwise = self._pencil_form("slogdet")
        if factorwise is not None:
            sign, logdet = factorwise.slogdet()
            return self.dtype.type(sign), logdet
        sign, logabs = diagonal_slogdet(pencil.w)
        if logabs == -np.inf:
            return self.dtype.type(0), -np.inf
        return self.dtype.type(sign), logabs + pencil.logdet_c

    def det(self) -> Any:
        """The determinant, from :meth:`slogdet`.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> round(float((matkron.kron(np.diag([1.0, 3.0])) + matkron.identity(2)).det()), 9)
        8.0
        """
        sign, logabs = self.slogdet()
        return sign * np.exp(logabs) if logabs != -np.inf else sign

    # -- arithmetic ---------------------------------------------------------------------

    def __neg__(self) -> "SumOfKronOperator":
        return self._scaled(-1)

    def __mul__(self, other: Scalar) -> "SumOfKronOperator":
        c = as_scalar(other)
        if c is not None:
            return self._scaled(c)
        return super().__mul__(other)

    def __rmul__(self, other: Scalar) -> "SumOfKronOperator":
        c = as_scalar(other)
        if c is not None:
            return self._scaled(c)
        return super().__rmul__(other)

    def __truediv__(self, other: Scalar) -> "SumOfKronOperator":
        c = as_scalar(other)
        if c is not None:
            return self._scaled(c, divide=True)
        return super().__truediv__(other)

    def _scaled(self, c, divide=False):
        return scale(self, 1 / c if divide else c)

    def conj(self) -> "SumOfKronOperator":
        """The entrywise complex conjugate: every coefficient and factor conjugated.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> S = matkron.kron(np.array([[1j]])) + matkron.identity(1)
        >>> S.conj().todense()
        array([[1.-1.j]])
        """
        return SumOfKronOperator(
            [[f.conj() for f in factors] for _, factors in self._terms],
            [np.conj(c) for c, _ in self._terms], shape=self.shape,
            _promote=self._factor_dtypes)

    def __repr__(self) -> str:
        return (
            f"<{self.shape[0]}x{self.shape[1]} {type(self).__name__} of {len(self._terms)} "
            f"terms with dtype={self.dtype}>"
        )


def _conforming(products):
    """Whether the products have the same number of factors, square and of equal orders
    position by position."""
    shapes = {tuple(f.shape for f in factors) for _, factors in products}
    return len(shapes) == 1 and all(m == n for m, n in next(iter(shapes)))


def _as_terms(op):
    """The (c, factors) pairs of a KronOperator, SumOfKronOperator, identity factor or
    multiple of one, else None."""
    if isinstance(op, SumOfKronOperator):
        return list(op._terms)
    if isinstance(op, KronOperator):
        return [(op.coeff, op._kron_factors)]
    if isinstance(op, IdentityFactor):
        return [(1, (Identity(op),))]
    if isinstance(op, ScaledIdentity):
        return [(op.c, (Identity(IdentityFactor(op.n)),))]
    return None


def _promotes_with(op):
    """What an operand of the arithmetic adds to dtype promotion."""
    if isinstance(op, ScaledIdentity):
        return (op.c,)
    return getattr(op, "_factor_dtypes", ())


def combine(left, right, sign):
    """left + sign * right as a SumOfKronOperator, or None when that does not apply.

    The result promotes with what both operands promote with (their factors' own dtypes,
    not the dtypes they compute in).
    """
    a, b = _as_terms(left), _as_terms(right)
    if a is None or b is None:
        return None
    check_conformable("add", left.shape, right.shape)
    terms = a + [(sign * c, factors) for c, factors in b]
    return SumOfKronOperator(
        [factors for _, factors in terms],
        [c for c, _ in terms],
        shape=left.shape,
        _promote=_promotes_with(left) + _promotes_with(right),
    )


def scale(op, c):
    """c * op as a SumOfKronOperator for a KronOperator or SumOfKronOperator op."""
    terms = _as_terms(op)
    return SumOfKronOperator(
        [factors for _, factors in terms],
        [c * t for t, _ in terms],
        shape=op.shape,
        _promote=op._factor_dtypes + (c,),
    )


# -- Kronecker sums ---------------------------------------------------------------------


def _square_factor(f, name):
    """The Factor of a square factor of any kind (a KronOperator as one factor, with its
    structure), or ValueError naming `name`."""
    if isinstance(f, KronOperator):
        factor = KronProduct(f)
    elif isinstance(f, LinearOperator) or scipy.sparse.issparse(f):
        factor = as_factor(f, name)
    else:
        factor = None
    if factor is None:
        if not hasattr(f, "shape") or len(f.shape) != 2:
            f = as_array(f, name)
            check_square(f.shape, name)
        factor = as_factor(f, name)
    check_square(factor.shape, name)
    return factor


def kronsum(*mats: FactorLike) -> "KronSumOperator":
    """The Kronecker sum A ⊕ B = kron(I_n, A) + kron(B, I_m) as a :class:`KronSumOperator`.

    Parameters
    ----------
    *mats : array_like, sparse matrix, LinearOperator or factor
        Square matrices A1 (m×m), A2 (n×n), … of any kind :func:`kron` takes; a sparse
        factor stays sparse (one fused pass applies sparse, diagonal and identity factors),
        a KronOperator is one factor with its structure, and an opaque LinearOperator can
        only be applied (``solve``, ``det`` raise TypeError naming it). Two matrices A, B
        give the operator
        vec(X) ↦ vec(A X + X Bᵀ) for X m×n, as ``scipy.sparse.kronsum(A, B)``; three or more
        are taken left to right, ``kronsum(kronsum(A1, A2), A3)``, which is the Laplacian-like
        operator Σᵢ I ⊗ … ⊗ Aᵢ ⊗ … ⊗ I of a grid with A1 along the fastest axis.

    Returns
    -------
    KronSumOperator
        The lazy operator, with :meth:`KronSumOperator.solve`.

    Raises
    ------
    ValueError
        If no matrix is given or one is not square.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse
    >>> import matkron
    >>> A = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> B = np.array([[1.0]])
    >>> K = matkron.kronsum(A, B)
    >>> np.allclose(K.todense(), scipy.sparse.kronsum(A, B).toarray())
    True
    """
    check_nonempty(mats, "mats", "matrix")
    names = [f"mats[{i}]" for i in range(len(mats))]
    return KronSumOperator(
        [_square_factor(a, name) for a, name in zip(mats, names)], _names=names
    )


def sylvester(A: FactorLike, B: FactorLike) -> "KronSumOperator":
    """The Sylvester operator X ↦ A X + X B on vec(X), as a :class:`KronSumOperator`.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or factor
        m×m, of any kind :func:`kronsum` takes.
    B : array_like, sparse matrix, LinearOperator or factor
        n×n; X is m×n.

    Returns
    -------
    KronSumOperator
        kronsum(A, Bᵀ) = I ⊗ A + Bᵀ ⊗ I; its :meth:`~KronSumOperator.solve` solves the
        Sylvester equation A X + X B = C for b = vec(C).

    Raises
    ------
    ValueError
        If A or B is not square.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.linalg
    >>> import matkron
    >>> A = np.array([[4.0, 1.0], [0.0, 3.0]])
    >>> B = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 5.0]])
    >>> C = np.arange(6.0).reshape(2, 3)
    >>> X = matkron.unvec(matkron.sylvester(A, B).solve(matkron.vec(C)), (2, 3))
    >>> np.allclose(X, scipy.linalg.solve_sylvester(A, B, C))
    True
    """
    A = _square_factor(A, "A")
    B = _square_factor(B, "B")
    return KronSumOperator([A, B.transpose()], _names=("A", "B"))


def lyapunov(A: FactorLike) -> "KronSumOperator":
    """The Lyapunov operator X ↦ A X + X Aᴴ on vec(X), as a :class:`KronSumOperator`.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or factor
        m×m, of any kind :func:`kronsum` takes.

    Returns
    -------
    KronSumOperator
        kronsum(A, conj(A)) = I ⊗ A + conj(A) ⊗ I; its :meth:`~KronSumOperator.solve`
        solves the continuous Lyapunov equation A X + X Aᴴ = C for b = vec(C).

    Raises
    ------
    ValueError
        If A is not square.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.linalg
    >>> import matkron
    >>> A = np.array([[-2.0, 1.0], [0.0, -3.0]])
    >>> Q = np.eye(2)
    >>> X = matkron.unvec(matkron.lyapunov(A).solve(matkron.vec(Q)), (2, 2))
    >>> np.allclose(X, scipy.linalg.solve_continuous_lyapunov(A, Q))
    True
    """
    A = _square_factor(A, "A")
    return KronSumOperator([A, A.conj()], _names=("A", "A"))


class KronSumOperator(SumOfKronOperator):
    """The Kronecker sum A1 ⊕ A2 ⊕ … = Σᵢ I ⊗ … ⊗ Aᵢ ⊗ … ⊗ I of square matrices.

    Create it with :func:`kronsum`, :func:`sylvester` or :func:`lyapunov`. A
    :class:`SumOfKronOperator` (products run in the compiled kernel, identity factors cost no
    GEMM) with a direct :meth:`solve`.

    Factors may be dense, :func:`matkron.diagonal`, ``scipy.sparse`` (kept sparse for
    products: the grid Laplacian of ``kronsum(T, T)`` with a sparse tridiagonal T costs
    O(nnz) per product) or LinearOperators (products only). :meth:`solve` diagonalizes or
    triangularizes each factor, so it makes sparse and diagonal factors dense: O(n³) per
    factor of order n, once.

    Parameters
    ----------
    factors : sequence of matrices
        The square matrices A1, A2, …; A1 acts along the fastest-varying index of vec.
    _names : sequence of str, optional
        Private: how the caller named the factors, for messages (``"A"``, ``"B"`` for
        :func:`sylvester`); ``factors[i]`` by default.

    Attributes
    ----------
    factors : tuple
        The matrices A1, A2, …: dense ones as arrays of the operator's dtype, the others as
        given.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> T = np.array([[2.0, -1.0], [-1.0, 2.0]])
    >>> L = matkron.kronsum(T, T, T)  # the 3-D grid Laplacian of a 2x2x2 grid
    >>> L.shape
    (8, 8)
    >>> np.allclose(L @ L.solve(np.ones(8)), 1.0)
    True
    """

    _transient = {**SumOfKronOperator._transient, "_csr": type(None)}

    # -- arithmetic that stays a Kronecker sum ----------------------------------------------

    def _scaled(self, c, divide=False):
        # c (A1 ⊕ A2 ⊕ …) = cA1 ⊕ cA2 ⊕ …
        if divide and c == 0:
            raise ZeroDivisionError("division of a Kronecker sum by zero")
        return KronSumOperator([f.scaled(c, divide, self.dtype) for f in self._ks_factors],
                               _names=self._names)

    def conj(self) -> "KronSumOperator":
        """The entrywise complex conjugate, Ā1 ⊕ Ā2 ⊕ ….

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kronsum(np.array([[1j]]), np.array([[2.0]])).conj().todense()
        array([[2.-1.j]])
        """
        return KronSumOperator([f.conj() for f in self._ks_factors], _names=self._names)

    def _shifted(self, s):
        """A1 ⊕ … + s I as a Kronecker sum, the shift on the first factor that holds it,
        or None (every factor an operator)."""
        factors = list(self._ks_factors)
        for i, f in enumerate(factors):
            shifted = f.shifted(s, self.dtype)
            if shifted is not None:
                factors[i] = shifted
                return KronSumOperator(factors, _names=self._names)
        return None

    def _identity_shift(self, other):
        """s for other = s I of this operator's order, else None."""
        if isinstance(other, IdentityFactor) and other.n == self.shape[0]:
            return 1
        if isinstance(other, ScaledIdentity) and other.n == self.shape[0]:
            return other.c
        return None

    def __add__(self, other: Any) -> Any:
        s = self._identity_shift(other)
        result = None if s is None else self._shifted(s)
        return super().__add__(other) if result is None else result

    def __radd__(self, other: Any) -> Any:
        s = self._identity_shift(other)
        result = None if s is None else self._shifted(s)
        return super().__radd__(other) if result is None else result

    def __sub__(self, other: Any) -> Any:
        s = self._identity_shift(other)
        result = None if s is None else self._shifted(-s)
        return super().__sub__(other) if result is None else result

    def __rsub__(self, other: Any) -> Any:
        s = self._identity_shift(other)
        result = None if s is None else self._scaled(-1)._shifted(s)
        return super().__rsub__(other) if result is None else result

    def __init__(self, factors: Sequence[FactorLike], *, _names: Any = None) -> None:
        factors = as_list(factors, "factors", "square matrices", stacked=3)
        check_nonempty(factors, "factors", "matrix")
        if _names is None:
            _names = [f"factors[{i}]" for i in range(len(factors))]
        self._names = tuple(_names)
        factors = [_square_factor(f, name) for f, name in zip(factors, self._names)]
        dims = [f.shape[0] for f in factors]
        k = len(factors)
        terms = []
        for i, f in enumerate(factors):
            # Kronecker position p holds A_{k-p}: A_k is the leftmost factor.
            term = [identity(dims[k - 1 - p]) for p in range(k)]
            term[k - 1 - i] = f
            terms.append(term)
        super().__init__(terms)
        self._ks_factors = tuple(factors)
        self.factors = tuple(
            f.dense(self.dtype) if f.kind == "dense" else f.given for f in factors
        )
        self.args = self.factors
        self._hermitian = None
        self._cache = {}
        self._csr = None  # the factors as CSR for the fused kernel, when all allow it

    def _product(self, x):
        """self @ x: with sparse, diagonal and identity factors only, in one pass of the
        fused Kronecker-sum kernel; otherwise term by term (SumOfKronOperator)."""
        if self._csr is None:
            self._csr = all(f.kind in _FUSED_KINDS for f in self._ks_factors) and [
                f if f.kind == "sparse" else Sparse.of(
                    scipy.sparse.diags_array(f.d) if f.kind == "diagonal"
                    else scipy.sparse.eye_array(f.shape[0]))
                for f in self._ks_factors
            ]
        if not self._csr or self._csr[0].shape[0] < _FUSED_MIN_ORDER:
            return super()._product(x)
        dtype = self._product_dtype(x)
        n = self.shape[1]
        check_rows(x, n, "x", f"the number of columns of the {n}x{n} Kronecker sum")
        x = operand(x, dtype)
        out = np.empty(result_shape(n, x), dtype=dtype, order="F")
        if out.size == 0:
            return out
        arrays = [f.arrays(dtype) for f in self._csr]
        if len({a[0].dtype for a in arrays}) > 1:  # one index type for the kernel
            arrays = [tuple(a.astype(np.int64) for a in f[:2]) + f[2:] for f in arrays]
        kronsum_apply(
            tuple(a[0] for a in arrays), tuple(a[1] for a in arrays),
            tuple(a[2] for a in arrays), tuple(f.shape[0] for f in self._csr),
            np.asfortranarray(x).reshape(-1, order="F"), out.reshape(-1, order="F"),
            1 if x.ndim == 1 else x.shape[1],
        )
        return out

    def _derived(self, factors):
        """A KronSumOperator of the given factors that promotes as this one."""
        op = KronSumOperator(factors, _names=self._names)
        op._factor_dtypes = self._factor_dtypes
        return op

    def _adjoint(self):
        if self._adjoint_op is None:
            adj = self._derived([f.adjoint() for f in self._ks_factors])
            adj._adjoint_op = self
            self._adjoint_op = adj
        return self._adjoint_op

    def _transpose(self):
        return self._derived([f.transpose() for f in self._ks_factors])

    # -- solve ----------------------------------------------------------------------------

    def solve(self, b: ArrayLike) -> Array:
        """Solve (A1 ⊕ A2 ⊕ …) x = b on the factors, never on the dense matrix.

        Parameters
        ----------
        b : array_like
            1-D of length N (a vec, like a matvec input), or 2-D of shape (N, r) with one
            right-hand side per column. For two factors of orders n₁ and n₂ (as
            :func:`sylvester` and :func:`lyapunov` make), also the right-hand side C of
            the matrix equation, of shape (n₁, n₂): A X + X B = C for ``sylvester(A, B)``.

        Returns
        -------
        ndarray
            x, of the shape of `b` (the matrix X for C in matrix form), in the dtype of the
            product ``self @ b``.

        Raises
        ------
        ValueError
            If `b` does not match the operator, or a factor contains NaN or inf (named as
            given: ``A`` or ``B`` of :func:`sylvester`, ``mats[i]`` of :func:`kronsum`);
            checked before any decomposition, as SciPy's ``check_finite``.
        numpy.linalg.LinAlgError
            If the operator is singular: eigenvalues λ of the factors with
            λ(A1) + λ(A2) + … = 0.

        Notes
        -----
        An operator of order 0 (a 0×0 factor) is the 0×0 matrix: the solution is empty, of
        the shape of `b`, as ``numpy.linalg.solve`` gives, whatever the other factors hold.

        When every factor is Hermitian, the eigendecompositions Aᵢ = Vᵢ Λᵢ Vᵢᴴ give
        x = V (Λ⁻¹ ∘ Vᴴ b) with V = ⊗ Vᵢ applied through :func:`matkron.kron_matvec` and Λ
        the grid of eigenvalue sums (the fast diagonalization method; any number of
        factors). Otherwise the complex Schur forms Aᵢ = Zᵢ Tᵢ Zᵢᴴ reduce the system to
        T1 ⊕ T2 ⊕ … with upper-triangular Tᵢ, solved by back substitution along the last
        factor, recursively, for all right-hand sides at once; two factors and a single
        right-hand side (Bartels–Stewart: T1 Y + Y T2ᵀ = C) take one call of LAPACK's
        trsyl. The decompositions are computed on the first solve and cached (the adjoint
        :attr:`H` is cached too, with its own).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kronsum(np.diag([1.0, 2.0]), np.diag([10.0, 20.0]))
        >>> K.solve([11.0, 12.0, 21.0, 22.0])
        array([1., 1., 1., 1.])
        >>> A, B = np.array([[1.0, 2.0], [0.0, 3.0]]), np.array([[4.0]])
        >>> X = matkron.sylvester(A, B).solve(np.array([[7.0], [7.0]]))  # A X + X B = C
        >>> X
        array([[1.],
               [1.]])
        """
        b = as_array(b, "b")
        n = self.shape[0]
        orders = tuple(f.shape[0] for f in self._ks_factors)
        if b.ndim == 2 and b.shape[0] != n and len(orders) == 2 and b.shape == orders:
            # C of the matrix equation: solved as vec(C), returned as the matrix X.
            return self.solve(b.ravel(order="F")).reshape(orders, order="F")
        check_rows(b, n, "b", f"the number of rows of the {n}x{n} Kronecker sum"
                   + (f", or {orders} for the unknown in matrix form" if len(orders) == 2
                      else ""))
        dtype = self._product_dtype(b)
        if n == 0:
            return np.empty(b.shape, dtype=dtype)
        if "finite" not in self._cache:
            require_structure(self._ks_factors, self._names, "solve")
            require_finite(self._ks_factors, self._names, "solve")
            self._cache["finite"] = True
        rhs = b[:, np.newaxis] if b.ndim == 1 else b
        if rhs.size == 0:
            return np.zeros(b.shape, dtype=dtype)
        if self._hermitian is None:
            self._hermitian = all(f.is_hermitian() for f in self._ks_factors)
        if self._hermitian:
            x = self._solve_eigh(rhs)
        elif len(self._ks_factors) == 2 and dtype.kind != "c":
            x = self._solve_real_pair(rhs.astype(dtype, copy=False))
        else:
            x = self._solve_schur(rhs)
        if dtype.kind != "c":
            x = x.real
        return np.asarray(x, dtype=dtype).reshape(b.shape)

    # -- spectral methods ----------------------------------------------------------------

    @property
    def _real_dtype(self):
        return np.finfo(self.dtype).dtype

    def _eig_grid(self, what, hermitian=False):
        """(grid, vs): the eigenvalues of A1 ⊕ A2 ⊕ … (sums over the factor eigenvalues,
        in vec order) and the factor eigenvectors in Kronecker order, for Hermitian
        factors (cached; ValueError naming a factor that is not Hermitian, unless the
        caller has checked: `hermitian`)."""
        if "grid" not in self._cache:
            require_structure(self._ks_factors, self._names, what)
            require_finite(self._ks_factors, self._names, what)
            for f, name in zip(self._ks_factors, self._names):
                if not hermitian and not f.is_hermitian():
                    raise needs_hermitian(what, name)
            pairs = once_per_distinct(self._ks_factors,
                                      lambda f: _factor_eigh(f, self.dtype))
            lams = [lam.astype(np.float64) for lam, _ in pairs]
            grid = functools.reduce(np.add.outer, lams[::-1]).ravel()
            # One update, "grid" last: a thread that sees it sees the others too.
            self._cache.update(scales=[np.abs(lam).max(initial=0.0) for lam in lams],
                               lams=lams)
            self._cache["grid"] = (grid, [v for _, v in pairs][::-1])
        return self._cache["grid"]

    def eigh(self) -> tuple[Array, "KronOperator"]:
        """(w, V) with A1 ⊕ A2 ⊕ … = V diag(w) Vᴴ, from the factors' (Hermitian factors):
        w[i] sums one eigenvalue of each factor (in vec order, not sorted), V is the
        KronOperator of the factor eigenvectors.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> w, V = matkron.kronsum(np.diag([1.0, 2.0]), np.diag([10.0, 20.0])).eigh()
        >>> w
        array([11., 12., 21., 22.])
        """
        grid, vs = self._eig_grid("eigh")
        return grid.astype(self._real_dtype), KronOperator(vs)

    def funm(self, f: Callable[[Array], ArrayLike]) -> "EigenOperator":
        """f(A1 ⊕ A2 ⊕ …) = V diag(f(w)) Vᴴ for Hermitian factors (see :meth:`eigh`), as
        an :class:`EigenOperator`.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> L = matkron.kronsum(np.diag([1.0, 2.0]), np.diag([1.0, 3.0]))
        >>> L.funm(np.sqrt) @ np.ones(4)
        array([1.41421356, 1.73205081, 2.        , 2.23606798])
        """
        grid, vs = self._eig_grid("funm")
        return EigenOperator(KronOperator(vs), f(grid.astype(self._real_dtype)))

    def expm(self) -> KronOperator:
        """exp(A1 ⊕ A2 ⊕ …) = exp(Ak) ⊗ … ⊗ exp(A1), exactly (the terms commute), as a
        KronOperator of the factor exponentials (``scipy.linalg.expm``; any factors).

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.linalg
        >>> import matkron
        >>> A = np.array([[0.0, 1.0], [-1.0, 0.0]])
        >>> E = matkron.kronsum(A, 2 * A).expm()
        >>> bool(np.allclose(E.todense(), scipy.linalg.expm(matkron.kronsum(A, 2 * A).todense())))
        True
        """
        return self._exp_kron(1.0)

    def _exp_kron(self, t):
        require_structure(self._ks_factors, self._names, "expm")
        return KronOperator([
            DiagonalFactor(np.exp(t * f.d.astype(self.dtype))) if f.kind == "diagonal"
            else scipy.linalg.expm(t * f.dense(self.dtype)) for f in self._ks_factors[::-1]])

    def expm_multiply(
        self, b: ArrayLike, t: float | Sequence[float] | NDArray[Any] = 1.0
    ) -> Array:
        """exp(t (A1 ⊕ A2 ⊕ …)) b, for one time t or a 1-D array of times.

        Parameters
        ----------
        b : array_like
            1-D of length N or 2-D (N, m).
        t : float or 1-D array_like
            The time(s).

        Returns
        -------
        ndarray
            Shaped like `b` for a scalar t; (T,) + b.shape for T times.

        Notes
        -----
        Hermitian factors: one eigendecomposition per factor (cached), then per time two
        Kronecker products and a scaling by exp(t w). Other factors: the factor
        exponentials exp(t Aᵢ) per time (``scipy.linalg.expm``, O(Σ nᵢ³)), then one
        Kronecker product.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> L = matkron.kronsum(np.diag([0.0, 1.0]), np.diag([0.0, 2.0]))
        >>> L.expm_multiply(np.ones(4), [0.0, 1.0]).round(4)
        array([[ 1.    ,  1.    ,  1.    ,  1.    ],
               [ 1.    ,  2.7183,  7.3891, 20.0855]])
        """
        b = as_array(b, "b")
        n = self.shape[0]
        check_rows(b, n, "b", f"the number of rows of the {n}x{n} Kronecker sum")
        times = np.asarray(t)
        if times.dtype.kind not in "iuf":
            raise TypeError(f"t must be a real number or a 1-D array of them; got {t!r}")
        check_ndim(times, "t", (0, 1))
        if times.size == 0:
            return np.empty((0,) + b.shape, self._product_dtype(b))
        hermitian = "grid" in self._cache or all(f.is_hermitian() for f in self._ks_factors)
        if not hermitian:
            # Python floats: weak in promotion, so float32 operators stay float32.
            results = [self._exp_kron(ti) @ b for ti in np.atleast_1d(times).tolist()]
            return results[0] if times.ndim == 0 else np.stack(results)
        ts = np.atleast_1d(times).astype(np.float64)
        x = np.empty((ts.size,) + b.shape, self._product_dtype(b))
        # exp(0 (A1 ⊕ …)) = I exactly: a time 0 gives b itself, with no product and no
        # rounding (linspace(0, t, T) starts there).
        still = ts == 0
        x[still] = b
        moving = np.flatnonzero(~still)
        if moving.size:
            lo, hi = moving[0], moving[-1] + 1
            if hi - lo == moving.size:  # no 0 between other times: written in place
                self._expm_multiply_hermitian(b, ts[lo:hi], x[lo:hi])
            else:
                x[moving] = self._expm_multiply_hermitian(
                    b, ts[moving], np.empty((moving.size,) + b.shape, x.dtype))
        return x[0] if times.ndim == 0 else x

    def _expm_multiply_hermitian(self, b, ts, out):
        """exp(t (A1 ⊕ …)) b into out[j] for each time t = ts[j] (Hermitian factors; out
        C-ordered, of shape (T,) + b.shape and the product's dtype)."""
        n = self.shape[0]
        grid, vs = self._eig_grid("expm_multiply", hermitian=True)
        V = KronOperator(vs)
        # In the result's dtype: with identity eigenvector factors (diagonal factors) the
        # product would keep b's.
        y = V.H @ b.astype(out.dtype, copy=False)  # once for all times
        scales = self._exp_grid(ts).astype(np.finfo(y.dtype).dtype, copy=False)  # (T, N)
        # All times in one product, one column per time (and right-hand side): the scaled
        # vectors are the rows of a C-ordered (T, N) array, read as the Fortran-ordered
        # operand (N, T), and the product is written the same way into `out`.
        if y.ndim == 1:
            if scales.dtype == y.dtype:
                scales *= y  # the grid's own array: scaled in place
            else:
                scales = scales * y
            kron_matvec(vs, scales.T, out=out.T)
        else:
            scaled = scales[:, np.newaxis, :] * y.T  # (T, m, N)
            out[...] = (V @ scaled.reshape(-1, n).T).T.reshape(
                ts.size, y.shape[1], n).transpose(0, 2, 1)
        return out

    def _exp_grid(self, ts):
        """exp(t w) for the eigenvalue grid w, one row per time: the Kronecker product of
        the factors' exp(t λᵢ) (Σ nᵢ exponentials, not Π nᵢ), unless one of those
        overflows or underflows where their product need not."""
        grid = self._cache["grid"][0]
        lams = self._cache["lams"][::-1]
        out = np.empty((ts.size, grid.size))
        if not grid.size:
            return out
        with np.errstate(over="ignore", under="ignore"):
            parts = [np.exp(np.multiply.outer(ts, lam)) for lam in lams]  # (T, nᵢ) each
        tiny = np.finfo(np.float64).tiny
        exact = np.logical_and.reduce(
            [(np.isfinite(p) & (p >= tiny)).all(axis=1) for p in parts])
        rows = np.flatnonzero(exact)
        if rows.size:
            # Row by row, the outer products of the rows of the parts: all at once by
            # broadcasting, the last one written in place.
            head = np.ones((rows.size, 1))
            for p in parts[:-1]:
                head = (head[:, :, np.newaxis] * p[rows, np.newaxis, :]).reshape(rows.size, -1)
            target = out if rows.size == ts.size else np.empty((rows.size, grid.size))
            np.multiply(head[:, :, np.newaxis], parts[-1][rows, np.newaxis, :],
                        out=target.reshape(rows.size, head.shape[1], -1))
            if target is not out:
                out[rows] = target
        for j in np.flatnonzero(~exact):
            np.exp(ts[j] * grid, out=out[j])
        return out

    def slogdet(self) -> tuple[Any, float]:
        """Sign and log|det| from the eigenvalues of the Kronecker sum (all sums of one
        eigenvalue per factor: the Hermitian factors' eigh, else the Schur forms').

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> sign, logdet = matkron.kronsum(np.diag([1.0, 2.0]), np.diag([1.0, 3.0])).slogdet()
        >>> float(sign), round(float(np.exp(logdet)), 9)
        (1.0, 120.0)
        """
        require_structure(self._ks_factors, self._names, "slogdet")
        if self.shape[0] == 0:
            return self.dtype.type(1), 0.0
        if all(f.is_hermitian() for f in self._ks_factors):
            grid = self._eig_grid("slogdet")[0]
        else:
            if "eigvals" not in self._cache:
                ctype = np.result_type(self.dtype, np.complex64)
                diags = [scipy.linalg.eigvals(f.dense(ctype)) for f in self._ks_factors]
                self._cache["eigvals"] = functools.reduce(np.add.outer, diags[::-1]).ravel()
            grid = self._cache["eigvals"]
        sign, logabs = diagonal_slogdet(grid)
        if logabs == -np.inf:
            return self.dtype.type(0), -np.inf
        if self.dtype.kind != "c":
            sign = np.real(sign).round()  # eigenvalues in conjugate pairs: ±1
        return self.dtype.type(sign), logabs

    def inv(self) -> LinearOperator:
        """The inverse as an operator whose products are :meth:`solve`.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kronsum(np.diag([1.0, 2.0]), np.diag([1.0, 3.0])).inv() @ np.ones(4)
        array([0.5       , 0.33333333, 0.25      , 0.2       ])
        """
        if all(f.is_hermitian() for f in self._ks_factors):
            grid, vs = self._eig_grid("inv")
            self._singular_check(grid, self._cache["scales"])
            return EigenOperator(KronOperator(vs), (1 / grid).astype(self._real_dtype))
        return InverseOperator(self)

    def diagonal(self) -> Array:
        """The main diagonal, sums of one diagonal entry per factor.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kronsum(np.array([[1.0, 5.0], [5.0, 2.0]]), np.eye(2)).diagonal()
        array([2., 3., 2., 3.])
        """
        n = [f.shape[0] for f in self._ks_factors]
        diags = [f.diagonal_entries(np.arange(k), np.arange(k)).astype(self.dtype)
                 for f, k in zip(self._ks_factors, n)]
        return functools.reduce(np.add.outer, diags[::-1]).ravel()

    def _singular_check(self, grid, scales):
        n = max(f.shape[0] for f in self._ks_factors)
        eps = np.finfo(self.dtype).eps
        tol = 4 * len(self._ks_factors) * n * eps * sum(scales)
        smallest = np.abs(grid).min()
        if not smallest > tol:
            raise np.linalg.LinAlgError(
                "the Kronecker sum is singular: eigenvalues of its factors sum to "
                f"{smallest:.3g} (tolerance {tol:.3g})"
            )

    def _solve_eigh(self, rhs):
        grid, vs = self._eig_grid("solve")
        self._singular_check(grid, self._cache["scales"])
        y = kron_matvec([_adjoint_array(v) for v in vs], rhs)
        y /= grid[:, None]
        return kron_matvec(vs, y)

    def _solve_real_pair(self, rhs):
        """Two real factors, A1 X + X A2ᵀ = C column by column of rhs: the real Schur forms
        A = Z T Zᵀ (one when A2 equals A1, as for a real Lyapunov operator), cached, and
        LAPACK's trsyl on the quasi-triangular T1 Y + Y T2ᵀ = Z1ᵀ C Z2 (Bartels–Stewart in
        real arithmetic)."""
        key = ("real schur", rhs.dtype)  # in the dtype of the solve: float32 stays apart
        if key not in self._cache:
            a1, a2 = (f.dense(rhs.dtype) for f in self._ks_factors)
            t1, z1 = scipy.linalg.schur(a1, output="real")
            t2, z2 = (t1, z1) if np.array_equal(a1, a2) else scipy.linalg.schur(
                a2, output="real")
            self._cache[key] = (t1, z1, t2, z2)
        t1, z1, t2, z2 = self._cache[key]
        n1, n2, m = t1.shape[0], t2.shape[0], rhs.shape[1]
        # vec(Z1ᵀ C Z2) = (Z2ᵀ ⊗ Z1ᵀ) vec(C): the basis changes of all columns in one
        # product each; only the triangular solves go column by column.
        c = kron_matvec([z2.T, z1.T], rhs).reshape((n1, n2, m), order="F")
        y = quasi_triangular_sylvester(t1, t2, c.transpose(0, 2, 1))  # (n1, m, n2)
        return kron_matvec([z2, z1], y.transpose(0, 2, 1).reshape((n1 * n2, m), order="F"))

    def _solve_schur(self, rhs):
        if "schur" not in self._cache:
            ctype = np.result_type(self.dtype, np.complex64)
            forms, seen = [], []
            for f in self._ks_factors:
                a = f.dense(ctype)
                for b, (t, z) in seen:
                    # A factor equal to an earlier one, or its conjugate (lyapunov's
                    # conj(A)): conj(A) = conj(Z) conj(T) conj(Z)ᴴ, no second Schur form.
                    if np.array_equal(a, b):
                        forms.append((t, z))
                        break
                    if np.array_equal(a, b.conj()):
                        forms.append((t.conj(), z.conj()))
                        break
                else:
                    forms.append(scipy.linalg.schur(a, output="complex"))
                    seen.append((a, forms[-1]))
            diags = [np.diag(t) for t, _ in forms]
            grid = functools.reduce(np.add.outer, diags[::-1]).ravel()
            self._singular_check(grid, [np.abs(d).max() for d in diags])
            self._cache["schur"] = ([t for t, _ in forms], [z for _, z in forms][::-1])
        ts, zs = self._cache["schur"]
        c = kron_matvec([_adjoint_array(z) for z in zs], rhs)
        if len(ts) == 2 and c.shape[1] == 1:
            y = triangular_sylvester_solve(ts[0], ts[1], c)
        else:
            y = triangular_kronsum_solve(ts, c, 0)
        return kron_matvec(zs, y)


def solve_sylvester(a: ArrayLike, b: ArrayLike, q: ArrayLike) -> Array:
    """Solve the Sylvester equation AX + XB = Q, as ``scipy.linalg.solve_sylvester``.

    Parameters
    ----------
    a : array_like
        m×m.
    b : array_like
        n×n.
    q : array_like
        m×n.

    Returns
    -------
    ndarray
        X, m×n.

    Notes
    -----
    Through :func:`sylvester` (``sylvester(a, b).solve``): for Hermitian A and B the
    eigendecompositions, for real A and B the real Schur forms and LAPACK's trsyl, else
    the complex Schur forms. To solve for several Q with the same A and B, keep the
    operator: its decompositions are cached.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.linalg
    >>> import matkron
    >>> a = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> b = np.array([[4.0, 0.0], [1.0, 5.0]])
    >>> q = np.array([[1.0, 0.0], [2.0, 1.0]])
    >>> x = matkron.solve_sylvester(a, b, q)
    >>> bool(np.allclose(a @ x + x @ b, q))
    True
    """
    op = sylvester(a, b)
    return _solve_matrix(op, q, "q")


def solve_continuous_lyapunov(a: ArrayLike, q: ArrayLike) -> Array:
    """Solve the continuous Lyapunov equation AX + XAᴴ = Q, as
    ``scipy.linalg.solve_continuous_lyapunov``.

    Parameters
    ----------
    a, q : array_like
        n×n.

    Returns
    -------
    ndarray
        X, n×n.

    Notes
    -----
    Through :func:`lyapunov`: one real Schur form of a real A (A and its conjugate share
    it), or the eigendecomposition of a Hermitian A.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> a = np.array([[-2.0, 1.0], [0.0, -3.0]])
    >>> q = -np.eye(2)
    >>> x = matkron.solve_continuous_lyapunov(a, q)
    >>> bool(np.allclose(a @ x + x @ a.T, q))
    True
    """
    return _solve_matrix(lyapunov(a), q, "q")


def _solve_matrix(op, q, name):
    """X from the matrix right-hand side of a two-factor Kronecker sum, X ↦ A1 X + X A2ᵀ."""
    q = as_array(q, name)
    m, n = (f.shape[0] for f in op._ks_factors)
    if q.shape != (m, n):
        raise shape_error(name, q.shape, (m, n))
    return op.solve(q.reshape(-1, order="F")).reshape((m, n), order="F")
