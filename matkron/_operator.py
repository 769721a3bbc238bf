"""KronOperator: a Kronecker product as a SciPy LinearOperator."""

import math
import numbers

import numpy as np

from ._factors import Identity, IdentityFactor, require_finite, require_structure
from ._kron import (
    _apply_order,
    _factor_names,
    apply,
    as_factors,
    check_operand,
    describe,
    kernel_factors,
    product,
    result_shape,
)
from ._kron_cy import kron_matvec_fast, kron_plan
from ._linop import ProductOperator
from ._structured import structured_product
from ._sum import combine
from ._validation import as_array, operand, result_dtype

__all__ = ["KronOperator", "kron"]

_NORMS = (None, "fro", "nuc", 1, 2, np.inf)


def kron(*factors):
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


class KronOperator(ProductOperator):
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
        The scalar c (1 by default), carried exactly by the arithmetic.

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
    their ``matmat`` on the tensor's unfolding (a copy of the tensor in and out).
    The result dtype of a product is ``np.result_type`` of the factors, c and the operand.

    The structure methods work for dense, identity, diagonal and sparse factors; a sparse
    factor is LU-factorized by ``scipy.sparse.linalg.splu`` for solves and determinants,
    and made dense for singular values (2-norm, nuclear norm, ``cond``, ``rank``). They
    raise TypeError for a LinearOperator factor, whose structure matkron cannot see.

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

    def __init__(self, factors, coeff=1):
        factors, inner = as_factors(factors)
        if not _is_number(coeff):
            raise TypeError(f"coeff must be a number; got {type(coeff).__name__}")
        coeff = coeff * inner
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
    def apply_order(self):
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
        return structured_product(self._kron_factors, x, dtype, out, alpha=self.coeff)

    def _adjoint(self):
        if self._adjoint_op is None:
            adj = self._derived([f.adjoint() for f in self._kron_factors],
                                np.conj(self.coeff))
            adj._adjoint_op = self
            self._adjoint_op = adj
        return self._adjoint_op

    def _transpose(self):
        return self._derived([f.transpose() for f in self._kron_factors], self.coeff)

    def conj(self):
        """The entrywise complex conjugate, c̄ (F̄1 ⊗ … ⊗ F̄k).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.array([[1j]]), np.eye(1)).conj().todense()
        array([[0.-1.j]])
        """
        return self._derived([f.conj() for f in self._kron_factors], np.conj(self.coeff))

    # -- structure ----------------------------------------------------------------------

    def todense(self):
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

    def toarray(self):
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
        for i, (p, q) in enumerate(self._shapes):
            if p != q:
                raise ValueError(
                    f"{what} needs square factors; factor {i} of {describe(self._shapes)} "
                    f"has shape {(p, q)}"
                )

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

    def inv(self):
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

    def solve(self, b):
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

    def slogdet(self):
        """Sign and log of the absolute determinant, from the factors.

        det(c F1 ⊗ … ⊗ Fk) = c^N Π det(Fi)^(N / n_i) for square factors of orders n_i,
        N = Π n_i.

        Returns
        -------
        sign : float or complex
            +1, -1 (or a complex unit for complex operators), or 0 when singular; nan
            when a factor contains NaN or inf.
        logabsdet : float
            log |det|, -inf when singular, nan when a factor contains NaN or inf.

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
                # s = exp(i·θ); raise to an exact integer power through the angle.
                theta = (power * np.angle(s)) % (2 * np.pi)
                sign = sign * self.dtype.type(np.exp(1j * theta))
            elif s < 0 and power % 2:
                sign = -sign
        return sign, logabs

    def det(self):
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

    def trace(self):
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

    def svdvals(self):
        """The singular values, descending: every product of one singular value per
        factor, times |c| (N = min(rows, columns) of them, zeros where the factors have
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
        return np.concatenate([values, np.zeros(n - values.size)])

    def norm(self, ord=None):
        """The matrix norm, |c| Π ‖Fi‖ (exact: each of these norms is multiplicative
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
        if not any(ord is o or (ord == o and type(ord) is not bool) for o in _NORMS):
            raise ValueError(
                f"ord must be one of None, 'fro', 'nuc', 1, 2, inf; got {ord!r}"
            )
        if 0 in self.shape:
            return np.float64(0.0)
        require_structure(self._kron_factors, self._names, "norm")
        result = float(abs(self.coeff))
        for f in self._kron_factors:
            result *= float(f.norm(ord))
        return np.float64(result)

    def cond(self, ord=None):
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
        if ord is None or (ord == 2 and type(ord) is not bool):
            s = self.svdvals()
            if s.size == 0:
                raise np.linalg.LinAlgError("cond of an empty operator")
            return np.float64(s[0] / s[-1]) if s[-1] > 0 else np.float64(np.inf)
        if not any(ord is o or (ord == o and type(ord) is not bool) for o in _NORMS):
            raise ValueError(
                f"ord must be one of None, 2, 'fro', 'nuc', 1, inf; got {ord!r}"
            )
        self._require("cond")
        if self.coeff == 0:
            return np.float64(np.inf)
        return np.float64(math.prod(f.cond(ord) for f in self._kron_factors))

    def diagonal(self):
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

    def rank(self):
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

    # -- arithmetic -----------------------------------------------------------------------

    def __mul__(self, other):
        if _is_number(other):
            return self._derived(self._kron_factors, self.coeff * other, (other,))
        return super().__mul__(other)

    def __rmul__(self, other):
        if _is_number(other):
            return self._derived(self._kron_factors, other * self.coeff, (other,))
        return super().__rmul__(other)

    def __truediv__(self, other):
        if _is_number(other):
            return self._derived(self._kron_factors, self.coeff / other, (other,))
        return NotImplemented

    def __neg__(self):
        return self._derived(self._kron_factors, -self.coeff)

    def __pow__(self, p):
        """K ** p for an integer p: (c^p) (F1^p ⊗ … ⊗ Fk^p); negative p through the factor
        inverses, p = 0 the identity."""
        if not _is_integer(p):
            return NotImplemented
        p = int(p)
        self._require_square("K ** p")
        if p < 0:
            return self.inv() ** (-p)
        return self._derived([f.power(p) for f in self._kron_factors], self.coeff**p)

    def __matmul__(self, other):
        if isinstance(other, KronOperator) and self._conforms(other):
            factors = [f.matmul(g) for f, g in zip(self._kron_factors, other._kron_factors)]
            return self._derived(factors, self.coeff * other.coeff, other._factor_dtypes)
        return super().__matmul__(other)

    def dot(self, x):
        if isinstance(x, KronOperator) and self._conforms(x):
            return self.__matmul__(x)
        return super().dot(x)

    def _conforms(self, other):
        return len(self._shapes) == len(other._shapes) and all(
            q == p for (_, q), (p, _) in zip(self._shapes, other._shapes)
        )

    def __add__(self, other):
        result = combine(self, other, 1)
        return super().__add__(other) if result is None else result

    def __sub__(self, other):
        result = combine(self, other, -1)
        return super().__sub__(other) if result is None else result

    def _kron_terms(self):
        """The operator as one (c, factors) term (for sums with other operators)."""
        return ((self.coeff, self._kron_factors),)

    def __repr__(self):
        shapes = ", ".join(f"{p}x{q}" for p, q in self._shapes)
        kinds = {f.kind for f in self._kron_factors} - {"dense", "identity"}
        extra = f", {'/'.join(sorted(kinds))} factors" if kinds else ""
        coeff = "" if self.coeff == 1 else f"{self.coeff!r} * "
        return (
            f"<{self.shape[0]}x{self.shape[1]} KronOperator {coeff}({shapes}){extra} "
            f"with dtype={self.dtype}>"
        )


def _is_number(value):
    """Whether `value` is a single number (Python or NumPy scalar, not an array)."""
    if isinstance(value, np.generic):
        return value.dtype.kind in "biufc"
    return isinstance(value, numbers.Number)


def _is_integer(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))
