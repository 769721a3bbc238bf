"""Sums of Kronecker products Σ cᵢ (Aᵢ ⊗ Bᵢ), and Kronecker sums A ⊕ B, as LinearOperators."""

import functools
import math
import numbers

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

from ._factors import as_factor, require_finite, require_structure
from ._kron import (
    apply,
    as_factors,
    describe,
    identity,
    kernel_factors,
    kron_matvec,
    result_shape,
)
from ._linop import ProductOperator
from ._structured import structured_product
from ._validation import as_array, check_rows, operand, result_dtype

__all__ = [
    "KronSumOperator",
    "SumOfKronOperator",
    "kronsum",
    "lyapunov",
    "sum_of_kron",
    "sylvester",
]


def _is_scalar(value):
    """Whether `value` is a single number (Python or NumPy scalar, not an array)."""
    if isinstance(value, np.generic):
        return value.dtype.kind in "biufc"
    return isinstance(value, numbers.Number)


def _adjoint_array(a):
    return a.T.conj() if a.dtype.kind == "c" else a.T


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


def sum_of_kron(terms, coeffs=None):
    """The sum of Kronecker products Σᵢ cᵢ (Aᵢ ⊗ Bᵢ) as a :class:`SumOfKronOperator`.

    Parameters
    ----------
    terms : sequence of (array_like, array_like)
        The pairs (Aᵢ, Bᵢ). The products Aᵢ ⊗ Bᵢ must all have the same shape; the factors'
        own shapes may differ from term to term. A factor may be :func:`matkron.identity`.
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


class SumOfKronOperator(ProductOperator):
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

    def __init__(self, terms, coeffs=None, *, shape=None, dtype=None, _promote=None):
        if isinstance(terms, np.ndarray):
            raise TypeError(
                f"terms must be a sequence of (A, B) pairs; got one array of shape "
                f"{terms.shape}"
            )
        try:
            terms = list(terms)
        except TypeError:
            raise TypeError(
                f"terms must be a sequence of (A, B) pairs; got {type(terms).__name__}"
            ) from None
        if coeffs is None:
            coeffs = [1.0] * len(terms)
        else:
            if isinstance(coeffs, np.ndarray):
                coeffs = list(coeffs.reshape(-1)) if coeffs.ndim <= 1 else None
            if coeffs is None or _is_scalar(coeffs):
                raise TypeError("coeffs must be a sequence of numbers, one per term")
            coeffs = list(coeffs)
            if len(coeffs) != len(terms):
                raise ValueError(
                    f"coeffs has {len(coeffs)} entries; expected {len(terms)}, one per term"
                )
        for i, c in enumerate(coeffs):
            if not _is_scalar(c):
                raise TypeError(f"coeffs[{i}] must be a number; got {type(c).__name__}")
        if not terms and shape is None:
            raise ValueError("terms must contain at least one (A, B) pair")
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
            (dtype.type(c), tuple(factors)) for c, factors in zip(coeffs, parsed)
        )
        self._kernel = {}
        self._adjoint_op = None
        super().__init__(dtype, expected)
        self.args = self.terms

    @property
    def terms(self):
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
            (c, *(f.dense(self.dtype) if f.kind == "dense" else f.given for f in factors))
            for c, factors in self._terms
        )

    # -- products -----------------------------------------------------------------------

    def _kron_terms(self):
        """The (c, factors) pairs of the sum (for the arithmetic between operators)."""
        return self._terms

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
                [(np.conj(c), tuple(f.adjoint() for f in factors))
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

    def todense(self):
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

    # -- arithmetic ---------------------------------------------------------------------

    def __add__(self, other):
        result = combine(self, other, 1)
        return super().__add__(other) if result is None else result

    def __radd__(self, other):
        result = combine(other, self, 1)
        return NotImplemented if result is None else result

    def __sub__(self, other):
        result = combine(self, other, -1)
        return super().__sub__(other) if result is None else result

    def __rsub__(self, other):
        result = combine(other, self, -1)
        return NotImplemented if result is None else result

    def __neg__(self):
        return scale(self, -1)

    def __mul__(self, other):
        if _is_scalar(other):
            return scale(self, other)
        return super().__mul__(other)

    def __rmul__(self, other):
        if _is_scalar(other):
            return scale(self, other)
        return super().__rmul__(other)

    def __truediv__(self, other):
        if _is_scalar(other):
            return scale(self, 1 / other)
        return super().__truediv__(other)

    def __repr__(self):
        return (
            f"<{self.shape[0]}x{self.shape[1]} {type(self).__name__} of {len(self._terms)} "
            f"terms with dtype={self.dtype}>"
        )


def _as_terms(op):
    """The (c, factors) pairs of an operator that is a sum of Kronecker products (a
    KronOperator or SumOfKronOperator: those with ``_kron_terms``), else None."""
    terms = getattr(op, "_kron_terms", None)
    return None if terms is None else list(terms())


def combine(left, right, sign):
    """left + sign * right as a SumOfKronOperator, or None when that does not apply.

    The result promotes with what both operands promote with (their factors' own dtypes,
    not the dtypes they compute in).
    """
    a, b = _as_terms(left), _as_terms(right)
    if a is None or b is None or left.shape != right.shape:
        return None
    terms = a + [(sign * c, factors) for c, factors in b]
    return SumOfKronOperator(
        [factors for _, factors in terms],
        [c for c, _ in terms],
        shape=left.shape,
        _promote=left._factor_dtypes + right._factor_dtypes,
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
    """The Factor of a square factor of any kind (a KronOperator as one operator), or
    ValueError naming `name`."""
    factor = as_factor(f, name) if isinstance(f, LinearOperator) or scipy.sparse.issparse(
        f) else None
    if factor is None:
        if not hasattr(f, "shape") or len(f.shape) != 2:
            f = as_array(f, name)
            if f.ndim != 2:
                raise ValueError(f"{name} must be a square matrix; got shape {f.shape}")
        factor = as_factor(f, name)
    f = factor
    if f.shape[0] != f.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {f.shape}")
    return f


def kronsum(*mats):
    """The Kronecker sum A ⊕ B = kron(I_n, A) + kron(B, I_m) as a :class:`KronSumOperator`.

    Parameters
    ----------
    *mats : array_like
        Square matrices A1 (m×m), A2 (n×n), …. Two matrices A, B give the operator
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
    if not mats:
        raise ValueError("kronsum needs at least one matrix")
    names = [f"mats[{i}]" for i in range(len(mats))]
    return KronSumOperator(
        [_square_factor(a, name) for a, name in zip(mats, names)], _names=names
    )


def sylvester(A, B):
    """The Sylvester operator X ↦ A X + X B on vec(X), as a :class:`KronSumOperator`.

    Parameters
    ----------
    A : array_like
        m×m.
    B : array_like
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


def lyapunov(A):
    """The Lyapunov operator X ↦ A X + X Aᴴ on vec(X), as a :class:`KronSumOperator`.

    Parameters
    ----------
    A : array_like
        m×m.

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

    def __init__(self, factors, *, _names=None):
        if isinstance(factors, np.ndarray) or not isinstance(factors, (list, tuple)):
            raise TypeError(
                f"factors must be a sequence of square matrices; got {type(factors).__name__}"
            )
        if not factors:
            raise ValueError("factors must contain at least one matrix")
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

    def solve(self, b):
        """Solve (A1 ⊕ A2 ⊕ …) x = b on the factors, never on the dense matrix.

        Parameters
        ----------
        b : array_like
            1-D of length N (a vec, like a matvec input), or 2-D of shape (N, r) with one
            right-hand side per column.

        Returns
        -------
        ndarray
            x, of the shape of `b`, in the dtype of the product ``self @ b``.

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
        """
        b = as_array(b, "b")
        n = self.shape[0]
        check_rows(b, n, "b", f"the number of rows of the {n}x{n} Kronecker sum")
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
        else:
            x = self._solve_schur(rhs)
        if dtype.kind != "c":
            x = x.real
        return np.asarray(x, dtype=dtype).reshape(b.shape)

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
        if "eigh" not in self._cache:
            pairs = [scipy.linalg.eigh(f.dense(self.dtype)) for f in self._ks_factors]
            lams = [lam.astype(np.float64) for lam, _ in pairs]
            grid = functools.reduce(np.add.outer, lams[::-1]).ravel()
            self._singular_check(grid, [np.abs(lam).max() for lam in lams])
            self._cache["eigh"] = (grid, [v for _, v in pairs][::-1])
        grid, vs = self._cache["eigh"]
        y = kron_matvec([_adjoint_array(v) for v in vs], rhs)
        y /= grid[:, None]
        return kron_matvec(vs, y)

    def _solve_schur(self, rhs):
        if "schur" not in self._cache:
            ctype = np.result_type(self.dtype, np.complex64)
            forms = [scipy.linalg.schur(f.dense(ctype), output="complex")
                     for f in self._ks_factors]
            diags = [np.diag(t) for t, _ in forms]
            grid = functools.reduce(np.add.outer, diags[::-1]).ravel()
            self._singular_check(grid, [np.abs(d).max() for d in diags])
            self._cache["schur"] = ([t for t, _ in forms], [z for _, z in forms][::-1])
        ts, zs = self._cache["schur"]
        c = kron_matvec([_adjoint_array(z) for z in zs], rhs)
        if len(ts) == 2 and c.shape[1] == 1:
            y = _triangular_sylvester_solve(ts[0], ts[1], c)
        else:
            y = _triangular_kronsum_solve(ts, c, 0)
        return kron_matvec(zs, y)


def _triangular_sylvester_solve(t1, t2, c):
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


def _triangular_kronsum_solve(ts, c, shift):
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
        y[j] = _triangular_kronsum_solve(ts[:-1], rhs, shift + tk[j, j])
    return y.reshape(c.shape)
