"""KronOperator: a Kronecker product as a SciPy LinearOperator."""

import math
import threading

import numpy as np
import scipy.linalg

from ._kron import (
    IdentityFactor,
    _apply_order,
    _factor_names,
    as_factors,
    check_operand,
    describe,
    factor_dtype,
    kernel_factors,
    product,
)
from ._kron_cy import kron_matvec_fast, kron_plan
from ._linop import ProductOperator
from ._validation import as_array, check_finite, operand, own_dtypes, result_dtype

__all__ = ["KronOperator", "kron"]

# SciPy's bundled OpenBLAS (0.3.30) can corrupt memory when getrf/getrs run in several
# threads at once; the LAPACK calls of solve() take turns (products need no lock).
_LAPACK_LOCK = threading.Lock()


def kron(*factors):
    """The lazy Kronecker product F1 ⊗ F2 ⊗ … ⊗ Fk as a :class:`KronOperator`.

    Parameters
    ----------
    *factors : array_like
        k >= 1 two-dimensional factors, or :func:`matkron.identity` factors.

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
    """The Kronecker product F1 ⊗ … ⊗ Fk, applied through its factors.

    Create it with :func:`matkron.kron`. It is a :class:`scipy.sparse.linalg.LinearOperator`
    and works as the operator of SciPy's iterative solvers and eigensolvers. Structure
    identities (inverse, solve, determinant, trace, norm) are computed on the factors.

    Parameters
    ----------
    factors : sequence of array_like
        The factors, each 2-D or an identity factor. Arrays are kept without a copy when
        they already have the operator's dtype (do not modify them afterwards).

    Attributes
    ----------
    factors : tuple
        The factors, as arrays of the operator's dtype or identity factors.
    apply_order : tuple of int
        The order in which the non-identity factors are applied by matvec.

    Notes
    -----
    Products run in the compiled kernel of :func:`matkron.kron_matvec` (GIL released,
    per-thread workspace), so one operator may be used from several threads at once.
    The result dtype of a product is ``np.result_type`` of the operator and the operand.

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
    """

    def __init__(self, factors):
        factors = as_factors(factors)
        dtype = factor_dtype(factors)
        # Products promote with the factors' own dtypes, as kron_matvec does (an int8
        # operator times float32 is float32), though the operator computes in `dtype`.
        self._factor_dtypes = own_dtypes(factors)
        self.factors = tuple(
            f if isinstance(f, IdentityFactor) else f.astype(dtype, copy=False)
            for f in factors
        )
        self._shapes = [f.shape for f in self.factors]
        self._identities = frozenset(
            i for i, f in enumerate(self.factors) if isinstance(f, IdentityFactor)
        )
        self._kernel_factors = {dtype: kernel_factors(self.factors, dtype)}
        self._adjoint_op = None
        self._lu = None
        shape = (
            math.prod(p for p, _ in self._shapes),
            math.prod(q for _, q in self._shapes),
        )
        super().__init__(dtype, shape)

    @property
    def apply_order(self):
        """The order in which matvec applies the non-identity factors to a vector."""
        if 0 in self.shape:
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
            mats = self._kernel_factors[dtype] = kernel_factors(self.factors, dtype)
        return mats

    def _product(self, x):
        """self @ x for an ndarray x of 1 or 2 dimensions, checked here."""
        if x.dtype == self.dtype:
            result = kron_matvec_fast(self._mats(self.dtype), x, True)
            if result is not None:
                return result
            dtype = self.dtype
        else:
            dtype = result_dtype(*self._factor_dtypes, x.dtype)
        if x.ndim not in (1, 2) or x.shape[0] != self.shape[1]:
            check_operand(x, self._shapes)
        return product(self._mats(dtype), operand(x, dtype), self.shape[0])

    def _adjoint(self):
        if self._adjoint_op is None:
            adj = KronOperator([f.conj().T for f in self.factors])
            adj._factor_dtypes = self._factor_dtypes
            adj._adjoint_op = self
            self._adjoint_op = adj
        return self._adjoint_op

    def _transpose(self):
        transposed = KronOperator([f.T for f in self.factors])
        transposed._factor_dtypes = self._factor_dtypes
        return transposed

    # -- structure ----------------------------------------------------------------------

    def todense(self):
        """The dense matrix, equal to the ``np.kron`` chain of the factors (small sizes only).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.kron(np.eye(2), np.ones((1, 2))).todense()
        array([[1., 1., 0., 0.],
               [0., 0., 1., 1.]])
        """
        result = np.ones((1, 1), dtype=self.dtype)
        for f in self.factors:
            dense = f.toarray(self.dtype) if isinstance(f, IdentityFactor) else f
            result = np.kron(result, dense)
        return result

    def _require_square(self, what):
        for i, (p, q) in enumerate(self._shapes):
            if p != q:
                raise ValueError(
                    f"{what} needs square factors; factor {i} of {describe(self._shapes)} "
                    f"has shape {(p, q)}"
                )

    def _factor_name(self, i):
        """How the user named factor i: ``factor 1 (B in kron(A, B))``."""
        name = _factor_names(len(self._shapes))[i]
        return f"factor {i} ({name} in {describe(self._shapes)})"

    def _check_finite(self, what):
        """ValueError naming the first factor with NaN or inf (SciPy's check_finite)."""
        for i, f in enumerate(self.factors):
            if not isinstance(f, IdentityFactor):
                check_finite(f, self._factor_name(i), what)

    def _has_nonfinite(self):
        return any(
            not isinstance(f, IdentityFactor) and not np.isfinite(f).all()
            for f in self.factors
        )

    def inv(self):
        """The inverse, as the KronOperator of the factor inverses.

        Raises
        ------
        ValueError
            If a factor is not square, or contains NaN or inf (as ``scipy.linalg.inv``;
            ``numpy.linalg.inv`` would return NaN).
        numpy.linalg.LinAlgError
            If a factor is singular.

        Notes
        -----
        An operator with a zero dimension (a 0×0 factor) is the 0×0 matrix, its own
        inverse: its other factors are then neither checked nor inverted, and come back as
        identities of their order.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> K = matkron.kron(np.diag([2.0, 4.0]), np.diag([1.0, 5.0]))
        >>> np.diag(K.inv().todense())
        array([0.5 , 0.1 , 0.25, 0.05])
        """
        self._require_square("inv")
        if self.shape[0] == 0:
            # The 0x0 matrix is its own inverse; the other factors may well be singular.
            return KronOperator(
                [f if isinstance(f, IdentityFactor) or f.shape[0] == 0
                 else np.eye(f.shape[0], dtype=self.dtype) for f in self.factors]
            )
        self._check_finite("inv")
        inverses = []
        for i, f in enumerate(self.factors):
            if isinstance(f, IdentityFactor):
                inverses.append(f)
                continue
            try:
                inverses.append(np.linalg.inv(f))
            except np.linalg.LinAlgError:
                raise np.linalg.LinAlgError(f"{self._factor_name(i)} is singular") from None
        return KronOperator(inverses)

    def _factorizations(self):
        if self._lu is None:
            self._check_finite("solve")
            lus = []
            for i, f in enumerate(self.factors):
                if isinstance(f, IdentityFactor) or f.shape[0] == 0:
                    lus.append(None)
                    continue
                getrf, = scipy.linalg.get_lapack_funcs(("getrf",), (f,))
                with _LAPACK_LOCK:
                    lu, piv, info = getrf(f)
                if info > 0:
                    raise np.linalg.LinAlgError(f"{self._factor_name(i)} is singular")
                lus.append((lu, piv))
            self._lu = lus
        return self._lu

    def solve(self, b):
        """Solve (F1 ⊗ … ⊗ Fk) x = b by solves with the factors.

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
        numpy.linalg.LinAlgError
            If a factor is singular.

        Notes
        -----
        An operator with a zero dimension is the 0×0 matrix: the solution is empty, of the
        shape of `b`, as ``numpy.linalg.solve`` gives, whatever the other factors hold.

        Each factor is LU-factorized once (cached on the operator) and applied along its
        mode of b reshaped as a tensor: O(N Σ n_i) work after the factorizations. The
        LAPACK calls of concurrent solves run one at a time (SciPy's OpenBLAS is not safe
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
        lus = self._factorizations()
        m = 1 if b.ndim == 1 else b.shape[1]
        dims = [q for _, q in reversed(self._shapes)]
        x = np.array(b, dtype=dtype, order="F").reshape((*dims, m), order="F")
        k = len(self.factors)
        for i, lu in enumerate(lus):
            if lu is None:
                continue
            axis = k - 1 - i
            moved = np.moveaxis(x, axis, 0)
            mat = moved.reshape(dims[axis], -1)
            lu_factor = lu[0].astype(dtype, copy=False)
            getrs, = scipy.linalg.get_lapack_funcs(("getrs",), (lu_factor, mat))
            with _LAPACK_LOCK:
                solved, _ = getrs(lu_factor, lu[1], mat)
            x = np.moveaxis(solved.reshape(moved.shape), 0, axis)
        return x.reshape(b.shape, order="F")

    def slogdet(self):
        """Sign and log of the absolute determinant, from the factors.

        det(F1 ⊗ … ⊗ Fk) = Π det(Fi)^(N / n_i) for square factors of orders n_i, N = Π n_i.

        Returns
        -------
        sign : float or complex
            +1, -1 (or a complex unit for complex operators), or 0 when singular; nan
            when a factor contains NaN or inf.
        logabsdet : float
            log |det|, -inf when singular, nan when a factor contains NaN or inf.

        Notes
        -----
        As ``numpy.linalg.slogdet``, an operator of order 0 (a 0×0 factor) has sign 1 and
        logabsdet 0: the determinant of the 0×0 matrix is 1, whatever the other factors
        hold. The identity above does not hold for factors with NaN or inf (their
        Kronecker product has NaN entries inf·0), so they give nan, as numpy's
        determinant of a matrix with NaN entries does (without its RuntimeWarning).

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
        if self._has_nonfinite():
            return self.dtype.type(np.nan), np.nan
        for f in self.factors:
            if isinstance(f, IdentityFactor) or f.shape[0] == 0:
                continue
            s, la = np.linalg.slogdet(f)
            power = n_total // f.shape[0]
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
        """The trace, Π trace(Fi), for square factors.

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
        result = np.ones((), dtype=self.dtype)[()]
        for f in self.factors:
            result = result * (f.n if isinstance(f, IdentityFactor) else np.trace(f))
        return result

    def norm(self):
        """The Frobenius norm, Π ‖Fi‖_F.

        0 for an operator with a zero dimension. NaN entries propagate as in
        ``numpy.linalg.norm``; with inf entries the product of the norms may be inf where
        the dense matrix (whose entries inf·0 are NaN) would give nan.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> float(matkron.kron(np.eye(2), np.full((2, 2), 0.5)).norm())
        1.4142135623730951
        """
        result = 1.0
        if 0 in self.shape:
            return np.float64(0.0)
        for f in self.factors:
            result *= math.sqrt(f.n) if isinstance(f, IdentityFactor) else np.linalg.norm(f)
        return result

    # -- arithmetic: sums and scalar multiples are sums of Kronecker products ------------

    def __add__(self, other):
        from ._sum import combine

        result = combine(self, other, 1)
        return super().__add__(other) if result is None else result

    def __sub__(self, other):
        from ._sum import combine

        result = combine(self, other, -1)
        return super().__sub__(other) if result is None else result

    def __neg__(self):
        from ._sum import scale

        return scale(self, -1)

    def __mul__(self, other):
        from ._sum import _is_scalar, scale

        return scale(self, other) if _is_scalar(other) else super().__mul__(other)

    def __rmul__(self, other):
        from ._sum import _is_scalar, scale

        return scale(self, other) if _is_scalar(other) else super().__rmul__(other)

    def __repr__(self):
        shapes = ", ".join(f"{p}x{q}" for p, q in self._shapes)
        return (
            f"<{self.shape[0]}x{self.shape[1]} KronOperator of ({shapes}) "
            f"with dtype={self.dtype}>"
        )
