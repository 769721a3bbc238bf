"""Kronecker factors of every kind and what each kind allows.

A factor is a dense array, :func:`matkron.identity`, :func:`matkron.diagonal`, a
``scipy.sparse`` matrix or array, or a ``scipy.sparse.linalg.LinearOperator``. Each is held
by one of the classes below, which know the factor's shape, the dtype it promotes with,
how it acts along its mode of a tensor, and the structure identities its kind has (solve,
determinant, trace, norms, singular values). Dense and identity factors run in the
compiled Kronecker kernel; the others have kernels of their own (sparse: a compiled
CSR kernel; diagonal: a scaling; operator: its ``matmat`` on the tensor's unfolding).

Tensors here are Fortran-ordered buffers X[L, q, R]: the L indices of the factors after
this one (faster in vec), the factor's mode, then the R indices of the factors before it
and of the right-hand sides.
"""

import math
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from numpy.typing import ArrayLike, DTypeLike
from scipy.sparse.linalg import LinearOperator

from . import _workspace
from ._sparse_cy import sparse_mode_apply
from ._typing import Array, Scalar
from ._validation import (
    as_array,
    as_scalar,
    blas_dtype,
    blas_readable,
    check_blas_dims,
    check_conformable,
    check_dtype,
    check_ndim,
    check_rows,
    count,
    is_hermitian,
    needs_structure,
    not_finite,
    result_dtype,
)

__all__ = ["DiagonalFactor", "IdentityFactor", "ScaledIdentity", "diagonal", "identity"]

# -- the public factor objects ----------------------------------------------------------


class IdentityFactor:
    """The n-by-n identity as a Kronecker factor: applied without a GEMM, no dtype.

    Create it with :func:`matkron.identity`.
    """

    __slots__ = ("n",)
    ndim = 2

    def __init__(self, n: int) -> None:
        self.n = n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    @property
    def T(self) -> "IdentityFactor":
        return self

    def conj(self) -> "IdentityFactor":
        return self

    def toarray(self, dtype: DTypeLike = np.float64) -> Array:
        """The dense identity matrix of the given dtype."""
        return np.eye(self.n, dtype=dtype)

    # NumPy scalars defer to __rmul__ with their dtype kept (not as a Python number).
    __array_ufunc__ = None

    def __mul__(self, c: Scalar) -> "ScaledIdentity":
        """c I as an operator term (``K + c * matkron.identity(N)``)."""
        return ScaledIdentity(self.n, 1).__mul__(c)

    __rmul__ = __mul__

    def __truediv__(self, c: Scalar) -> "ScaledIdentity":
        return ScaledIdentity(self.n, 1).__truediv__(c)

    def __neg__(self) -> "ScaledIdentity":
        return ScaledIdentity(self.n, -1)

    def __add__(self, other: Any) -> Any:
        return ScaledIdentity(self.n, 1).__add__(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return ScaledIdentity(self.n, 1).__sub__(other)

    def __rsub__(self, other: Any) -> Any:
        return ScaledIdentity(self.n, 1).__rsub__(other)

    def __matmul__(self, x: ArrayLike) -> Array:
        """I x: a copy of x in the dtype matkron computes in."""
        return ScaledIdentity(self.n, 1).__matmul__(x)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityFactor) and other.n == self.n

    def __hash__(self) -> int:
        return hash((IdentityFactor, self.n))

    def __repr__(self) -> str:
        return f"identity({self.n})"


class ScaledIdentity:
    """c I_n, a term of sums of Kronecker operators (``K + c * matkron.identity(n)``).

    Attributes
    ----------
    n : int
        The order.
    c : scalar
        The scale.
    """

    __slots__ = ("c", "n")
    __array_ufunc__ = None

    def __init__(self, n: int, c: Scalar) -> None:
        self.n = n
        self.c = c

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def __mul__(self, c: Scalar) -> "ScaledIdentity":
        c = as_scalar(c)
        return NotImplemented if c is None else ScaledIdentity(self.n, self.c * c)

    __rmul__ = __mul__

    def __truediv__(self, c: Scalar) -> "ScaledIdentity":
        c = as_scalar(c)
        return NotImplemented if c is None else ScaledIdentity(self.n, self.c / c)

    def __neg__(self) -> "ScaledIdentity":
        return ScaledIdentity(self.n, -self.c)

    def toarray(self, dtype: DTypeLike = None) -> Array:
        """The dense matrix c I (of the dtype of c unless given)."""
        return self.c * np.eye(self.n, dtype=dtype) if dtype is not None else np.diag(
            np.full(self.n, self.c))

    def _scale_of(self, other):
        """c for other = c I of this order; ValueError for an identity of another order;
        None for anything else (the operator's own arithmetic then applies)."""
        if not isinstance(other, (IdentityFactor, ScaledIdentity)):
            return None
        check_conformable("add", (self.n, self.n), (other.n, other.n))
        return other.c if isinstance(other, ScaledIdentity) else 1

    def __add__(self, other: Any) -> Any:
        c = self._scale_of(other)
        return NotImplemented if c is None else ScaledIdentity(self.n, self.c + c)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        c = self._scale_of(other)
        return NotImplemented if c is None else ScaledIdentity(self.n, self.c - c)

    def __rsub__(self, other: Any) -> Any:
        c = self._scale_of(other)
        return NotImplemented if c is None else ScaledIdentity(self.n, c - self.c)

    def __matmul__(self, x: ArrayLike) -> Array:
        """c x, in the dtype matkron computes in (for an operator x: c x, as an operator)."""
        if isinstance(x, LinearOperator):
            check_conformable("multiply", (self.n, self.n), x.shape)
            return x if self.c == 1 else self.c * x
        x = as_array(x, "x")
        check_rows(x, self.n, "x", f"the order of the identity, {self.n}")
        return np.multiply(self.c, x, dtype=result_dtype(x.dtype, self.c))

    def __repr__(self) -> str:
        return f"{self.c!r} * identity({self.n})"


class DiagonalFactor:
    """diag(d) as a Kronecker factor, applied as a scaling along its mode (no GEMM).

    Create it with :func:`matkron.diagonal`.

    Attributes
    ----------
    d : ndarray
        The diagonal (1-D).
    """

    __slots__ = ("d",)
    ndim = 2

    def __init__(self, d: Array) -> None:
        self.d = d

    @property
    def shape(self) -> tuple[int, int]:
        return (self.d.size, self.d.size)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.d.dtype

    @property
    def T(self) -> "DiagonalFactor":
        return self

    def conj(self) -> "DiagonalFactor":
        return DiagonalFactor(self.d.conj())

    def toarray(self, dtype: DTypeLike = None) -> Array:
        """The dense matrix diag(d), of `dtype` (that of `d` by default)."""
        return np.diag(self.d.astype(dtype or self.d.dtype, copy=False))

    def __repr__(self) -> str:
        return f"diagonal({self.d!r})"


def identity(n: int) -> IdentityFactor:
    """The n-by-n identity as a Kronecker factor.

    Parameters
    ----------
    n : int
        The order of the identity, n >= 0.

    Returns
    -------
    IdentityFactor
        A factor with ``shape == (n, n)`` and no dtype: it takes no part in dtype
        promotion, and applying it costs no GEMM (``kron(identity(n), B)`` costs one).

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> B = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> matkron.kron_matvec([matkron.identity(2), B], np.arange(4.0))
    array([ 2.,  4.,  8., 18.])
    """
    return IdentityFactor(count(n, "n"))


def diagonal(d: ArrayLike) -> "DiagonalFactor":
    """diag(d) as a Kronecker factor, applied as a scaling along its mode.

    Parameters
    ----------
    d : array_like
        The diagonal, 1-D, of a numeric dtype (it takes part in dtype promotion).

    Returns
    -------
    DiagonalFactor
        A factor of shape (n, n), n = len(d); a product scales the tensor along its mode
        (n multiplications per entry fewer than a dense factor's GEMM), and solves,
        determinants and norms are those of the diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> D = matkron.diagonal([1.0, 2.0])
    >>> matkron.kron_matvec([D, np.eye(2)], np.ones(4))
    array([1., 1., 2., 2.])
    >>> round(float(matkron.kron(D, D).det()), 9)
    16.0
    """
    d = as_array(d, "d")
    check_ndim(d, "d", 1)
    return DiagonalFactor(d)


# -- what matkron holds for each factor ---------------------------------------------------


def _cast(a, dtype):
    return a.astype(dtype, copy=False)


def _unfold(x, L, n, R):
    """The (L, n, R) Fortran-ordered view of the buffer x."""
    return x.reshape((L, n, R), order="F")


def _write(out, y, alpha, accumulate):
    """out (+)= alpha y, element by element (views of one shape)."""
    if accumulate:
        if alpha == 1:
            out += y
        else:
            out += alpha * y
    elif alpha == 1:
        out[...] = y
    else:
        np.multiply(y, alpha, out=out, casting="unsafe")


class Factor:
    """A Kronecker factor of any kind (see the module docstring).

    Attributes
    ----------
    given : object
        The factor as the user gave it (``KronOperator.factors`` returns it).
    shape : tuple of int
        (p, q).
    dtype : numpy.dtype or None
        The dtype it takes part in promotion with (None for the identity).
    kind : str
        "dense", "identity", "diagonal", "sparse" or "operator".
    """

    kind = ""
    # Caches (dicts) left out when pickled or copied: rebuilt on use (from arrays pickle
    # may return unaligned; factorizations do not pickle).
    _caches = ()
    # Runs in the compiled Kronecker kernel (dense and identity factors).
    in_kernel = False
    # Has its structure (solve, determinant, ...) on the factor itself.
    structured = True

    def __init__(self, given, shape, dtype):
        self.given = given
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in self._caches:
            state[name] = {}
        return state

    # products ------------------------------------------------------------------------

    def multiplies(self):
        """Multiplications per entry of the input along the mode (for planning)."""
        return self.shape[0]

    def apply(self, x, L, R, dtype, out, alpha=1, accumulate=False):
        """out (+)= alpha F ×_mode x for buffers x (L·q·R) and out (L·p·R) of `dtype`."""
        raise NotImplementedError

    # derived factors -------------------------------------------------------------------

    def conj(self):
        raise NotImplementedError

    def transpose(self):
        raise NotImplementedError

    def adjoint(self):
        return self.transpose().conj()

    def dense(self, dtype):
        """The dense matrix, of `dtype`."""
        raise NotImplementedError

    # structure -------------------------------------------------------------------------

    def solver(self, dtype):
        """A callable that overwrites nothing and returns F⁻¹ applied along the mode of an
        (L, n, R) array (a factorization computed once and cached)."""
        raise NotImplementedError

    def inverse(self):
        raise NotImplementedError

    def slogdet(self):
        """(sign, log|det|) of the square factor."""
        return np.linalg.slogdet(self.dense(self._compute_dtype()))

    def trace(self):
        return np.trace(self.dense(self._compute_dtype()))

    def svdvals(self):
        """The singular values, descending."""
        return scipy.linalg.svdvals(self.dense(self._compute_dtype()))

    def norm(self, ord):
        """The matrix norm of the factor for ord None/"fro", 1, inf, 2, "nuc"."""
        return np.linalg.norm(self.dense(self._compute_dtype()), ord)

    def cond(self, ord):
        """‖F‖ ‖F⁻¹‖ in the norm `ord` (square F; inf when singular)."""
        with np.errstate(all="ignore"):
            return float(np.linalg.cond(self.dense(self._compute_dtype()), ord))

    def diagonal_entries(self, rows, cols):
        """F[rows, cols] for index arrays of equal length."""
        return self.dense(self._compute_dtype())[rows, cols]

    def rank(self):
        return int(np.linalg.matrix_rank(self.dense(self._compute_dtype())))

    def power(self, p):
        """F^p for an integer p (square factors; negative p through the inverse)."""
        raise NotImplementedError

    def matmul(self, other):
        """The factor F G for a conforming factor G."""
        raise NotImplementedError

    def scaled(self, c, divide=False, dtype=None):
        """The factor c F, or F / c when `divide` (a Kronecker sum's factors scaled:
        c (A ⊕ B) = cA ⊕ cB); `dtype` is the operator's, for factors that have none."""
        return Operator((1 / c if divide else c) * self.linear_operator())

    def shifted(self, s, dtype=None):
        """The factor F + s I of a square F, or None when its kind cannot hold the shift
        (a Kronecker sum takes it on another factor: (A + sI) ⊕ B = A ⊕ B + s I);
        `dtype` as for :meth:`scaled`."""
        return None

    def is_finite(self):
        return True

    def is_hermitian(self):
        return is_hermitian(self.dense(self._compute_dtype()))

    def eigh(self):
        """(eigenvalues, eigenvectors) of the Hermitian factor: the eigenvectors as a
        factor matkron takes (an array, or an identity)."""
        return hermitian_eigh(self.dense(self._compute_dtype()))

    def fractional_power(self, p):
        """F^p for a real p of the Hermitian positive semidefinite factor, through its
        eigendecomposition (ValueError, saying which eigenvalue, when it is not)."""
        lam, v = self.eigh()
        lam_p = _semidefinite_power(lam, p)
        return Dense((v * lam_p) @ v.conj().T)

    def cholesky(self):
        """The lower-triangular Cholesky factor of the Hermitian positive definite
        factor (LinAlgError otherwise)."""
        return Dense(scipy.linalg.cholesky(self.dense(self._compute_dtype()), lower=True))

    def _compute_dtype(self):
        return blas_dtype(self.dtype) if self.dtype is not None else np.dtype(np.float64)


class Dense(Factor):
    kind = "dense"
    in_kernel = True
    _caches = ("_solvers", "_kernel")

    def __init__(self, a, given=None, name="a factor"):
        super().__init__(a if given is None else given, a.shape, a.dtype)
        self.a = a
        self.name = name  # for the error of a factor beyond the BLAS range
        self._solvers = {}
        self._kernel = {}

    def kernel(self, dtype):
        mat = self._kernel.get(dtype)
        if mat is None:
            # Before a cast or copy that a huge zero-strided view would make enormous.
            check_blas_dims(self.shape, self.name)
            mat = self._kernel[dtype] = blas_readable(self.a, dtype)
        return mat

    def conj(self):
        return Dense(self.a.conj(), name=self.name) if self.a.dtype.kind == "c" else self

    def transpose(self):
        return Dense(self.a.T, name=self.name)

    def dense(self, dtype):
        check_blas_dims(self.shape, self.name)
        return _cast(self.a, dtype)

    def solver(self, dtype):
        solve = self._solvers.get(dtype)
        if solve is None:
            a = np.asfortranarray(self.a, dtype=dtype)
            getrf, getrs = scipy.linalg.get_lapack_funcs(("getrf", "getrs"), (a,))
            lu, piv, info = getrf(a)
            if info > 0:
                raise np.linalg.LinAlgError("singular")

            def solve(b3):
                n = b3.shape[1]
                mat = np.moveaxis(b3, 1, 0).reshape(n, -1)
                # SciPy's getrs wrapper makes piv 1-based in place during the call: a
                # copy per call keeps threads sharing this solver apart.
                solved, _ = getrs(lu, piv.copy(), mat)
                return np.moveaxis(solved.reshape((n, b3.shape[0], b3.shape[2])), 0, 1)

            self._solvers[dtype] = solve
        return solve

    def inverse(self):
        return Dense(np.linalg.inv(self.a))

    def scaled(self, c, divide=False, dtype=None):
        return Dense(self.a / c if divide else c * self.a, name=self.name)

    def shifted(self, s, dtype=None):
        a = self.a + s * np.eye(self.shape[0], dtype=self.a.dtype)
        return Dense(a, name=self.name)

    def power(self, p):
        if p < 0:
            return Dense(np.linalg.matrix_power(np.linalg.inv(self.a), -p))
        return Dense(np.linalg.matrix_power(self.a, p))

    def matmul(self, other):
        if isinstance(other, Dense):
            return Dense(self.a @ other.a)
        if isinstance(other, (Identity,)):
            return self
        if isinstance(other, Diagonal):
            return Dense(self.a * other.d[None, :])
        if isinstance(other, Sparse):
            return Dense(np.asarray((other.csr.T @ self.a.T).T))
        return Operator(self.linear_operator() @ other.linear_operator())

    def is_finite(self):
        return self.a.dtype.kind not in "fc" or bool(np.isfinite(self.a).all())

    def linear_operator(self):
        return scipy.sparse.linalg.aslinearoperator(self.a)

    def slogdet(self):
        return np.linalg.slogdet(self.a)

    def trace(self):
        return np.trace(self.a)

    def norm(self, ord):
        return np.linalg.norm(self.a, ord)

    def diagonal_entries(self, rows, cols):
        return self.a[rows, cols]

    def rank(self):
        return int(np.linalg.matrix_rank(self.a)) if self.a.size else 0

    def svdvals(self):
        if self.a.size == 0:
            return np.zeros(0)
        return scipy.linalg.svdvals(self.a, check_finite=False)


class Identity(Factor):
    kind = "identity"
    in_kernel = True

    def __init__(self, given):
        super().__init__(given, given.shape, None)
        self.n = given.n

    def kernel(self, dtype):
        return self.n

    def multiplies(self):
        return 0

    def apply(self, x, L, R, dtype, out, alpha=1, accumulate=False):
        _write(out, x, alpha, accumulate)

    def conj(self):
        return self

    def transpose(self):
        return self

    def dense(self, dtype):
        return np.eye(self.n, dtype=dtype)

    def solver(self, dtype):
        return lambda b3: b3

    def inverse(self):
        return self

    def slogdet(self):
        return 1.0, 0.0

    def trace(self):
        return self.n

    def svdvals(self):
        return np.ones(self.n)

    def norm(self, ord):
        if ord in (None, "fro"):
            return math.sqrt(self.n)
        if ord == "nuc":
            return float(self.n)
        return 1.0 if self.n else 0.0

    def eigh(self):
        return np.ones(self.n), self.given

    def fractional_power(self, p):
        return self

    def cholesky(self):
        return self

    def is_hermitian(self):
        return True

    def cond(self, ord):
        if ord in (None, "fro"):
            return float(self.n)
        return float(self.n) ** 2 if ord == "nuc" else 1.0

    def diagonal_entries(self, rows, cols):
        return (rows == cols).astype(np.float64)

    def rank(self):
        return self.n

    def scaled(self, c, divide=False, dtype=None):
        one = np.ones(self.shape[0], dtype=dtype)
        return Diagonal(DiagonalFactor(one / c if divide else c * one))

    def shifted(self, s, dtype=None):
        return Diagonal(DiagonalFactor(np.ones(self.shape[0], dtype=dtype) + s))

    def power(self, p):
        return self

    def matmul(self, other):
        return other


class Diagonal(Factor):
    kind = "diagonal"
    _caches = ("_cache",)

    def __init__(self, given):
        super().__init__(given, given.shape, given.d.dtype)
        self.d = given.d
        self._cache = {}

    def multiplies(self):
        return 1

    def apply(self, x, L, R, dtype, out, alpha=1, accumulate=False):
        n = self.shape[0]
        d = self._scaled(dtype, alpha)[None, :, None]
        if accumulate:
            _unfold(out, L, n, R)[...] += _unfold(x, L, n, R) * d
        else:
            np.multiply(_unfold(x, L, n, R), d, out=_unfold(out, L, n, R))

    def _scaled(self, dtype, alpha):
        """alpha d in `dtype` (cached for alpha = 1)."""
        if alpha != 1:
            return (alpha * self.d).astype(dtype, copy=False)
        d = self._cache.get(dtype)
        if d is None:
            d = self._cache[dtype] = _cast(self.d, dtype)
        return d

    def conj(self):
        return Diagonal(self.given.conj()) if self.d.dtype.kind == "c" else self

    def transpose(self):
        return self

    def dense(self, dtype):
        return np.diag(_cast(self.d, dtype))

    def solver(self, dtype):
        if not np.all(self.d):
            raise np.linalg.LinAlgError("singular")
        d = _cast(self.d, dtype)
        return lambda b3: b3 / d[None, :, None]

    def inverse(self):
        if not np.all(self.d):
            raise np.linalg.LinAlgError("singular")
        return Diagonal(DiagonalFactor(1 / self.d))

    def slogdet(self):
        return diagonal_slogdet(self.d)

    def trace(self):
        return self.d.sum()

    def svdvals(self):
        return np.sort(np.abs(self.d))[::-1]

    def norm(self, ord):
        a = np.abs(self.d)
        if ord in (None, "fro"):
            return float(np.linalg.norm(self.d))
        if ord == "nuc":
            return float(a.sum())
        if ord in (1, 2, np.inf):
            return float(a.max(initial=0))
        return np.linalg.norm(self.dense(self._compute_dtype()), ord)

    def eigh(self):
        return self.d.real.astype(np.finfo(self._compute_dtype()).dtype), IdentityFactor(
            self.shape[0])

    def fractional_power(self, p):
        real = np.finfo(self._compute_dtype()).dtype
        return Diagonal(DiagonalFactor(_semidefinite_power(self.d.real.astype(real), p)))

    def cholesky(self):
        if not (self.d.real > 0).all():
            raise np.linalg.LinAlgError("not positive definite")
        return Diagonal(DiagonalFactor(np.sqrt(self.d.real)))

    def is_hermitian(self):
        return self.d.dtype.kind != "c" or bool((self.d.imag == 0).all())

    def cond(self, ord):
        a = np.abs(self.d)
        if not a.all():
            return np.inf
        inv = 1 / a
        if ord in (None, "fro"):
            return float(np.linalg.norm(a) * np.linalg.norm(inv))
        if ord == "nuc":
            return float(a.sum() * inv.sum())
        return float(a.max() * inv.max())

    def diagonal_entries(self, rows, cols):
        return np.where(rows == cols, self.d[np.minimum(rows, self.d.size - 1)], 0)

    def rank(self):
        return int(np.count_nonzero(self.d))

    def scaled(self, c, divide=False, dtype=None):
        return Diagonal(DiagonalFactor(self.d / c if divide else c * self.d))

    def shifted(self, s, dtype=None):
        return Diagonal(DiagonalFactor(self.d + s))

    def power(self, p):
        if p < 0:
            return self.inverse().power(-p)
        return Diagonal(DiagonalFactor(self.d**p))

    def matmul(self, other):
        if isinstance(other, Diagonal):
            return Diagonal(DiagonalFactor(self.d * other.d))
        if isinstance(other, Identity):
            return self
        if isinstance(other, Dense):
            return Dense(self.d[:, None] * other.a)
        if isinstance(other, Sparse):
            return Sparse.of(scipy.sparse.diags_array(self.d) @ other.csr)
        return Operator(self.linear_operator() @ other.linear_operator())

    def is_finite(self):
        return self.d.dtype.kind not in "fc" or bool(np.isfinite(self.d).all())

    def linear_operator(self):
        return scipy.sparse.linalg.aslinearoperator(scipy.sparse.diags_array(self.d))


class Sparse(Factor):
    kind = "sparse"
    _caches = ("_kernel", "_lu")

    def __init__(self, given, csr=None):
        if csr is None:
            csr = scipy.sparse.csr_array(given)  # may share the arrays of a CSR input
            if not csr.has_canonical_format:
                # Sorted indices, no duplicates: on a copy, never on the user's arrays.
                csr = csr.copy()
                csr.sum_duplicates()
        super().__init__(given, csr.shape, csr.dtype)
        self.csr = csr
        self._kernel = {}
        self._lu = {}

    @classmethod
    def of(cls, matrix):
        """The factor of a sparse matrix matkron computed (a product, a transpose, ...),
        which it also reports as given."""
        csr = scipy.sparse.csr_array(matrix)
        csr.sum_duplicates()
        return cls(csr, csr)

    def multiplies(self):
        q = self.shape[1]
        return self.csr.nnz / q if q else 0

    def arrays(self, dtype):
        arrays = self._kernel.get(dtype)
        if arrays is None:
            csr = self.csr
            index = np.int32 if max(csr.nnz, *csr.shape) < 2**31 - 1 else np.int64
            # Contiguous and aligned (a misaligned buffer is copied once, here).
            arrays = self._kernel[dtype] = tuple(
                np.require(a, dtype=t, requirements=["C", "A"])
                for a, t in ((csr.indptr, index), (csr.indices, index), (csr.data, dtype))
            )
        return arrays

    def apply(self, x, L, R, dtype, out, alpha=1, accumulate=False):
        indptr, indices, data = self.arrays(dtype)
        p, q = self.shape
        sparse_mode_apply(indptr, indices, data, p, q, x, out, L, R, alpha=alpha,
                          accumulate=accumulate)

    def conj(self):
        return Sparse.of(self.csr.conj()) if self.dtype.kind == "c" else self

    def transpose(self):
        return Sparse.of(self.csr.T)

    def dense(self, dtype):
        return self.csr.toarray().astype(dtype, copy=False)

    def _splu(self, dtype):
        lu = self._lu.get(dtype)
        if lu is None:
            csc = scipy.sparse.csc_array(self.csr, dtype=dtype)
            try:
                lu = self._lu[dtype] = scipy.sparse.linalg.splu(csc)
            except RuntimeError as exc:  # "Factor is exactly singular"
                raise np.linalg.LinAlgError("singular") from exc
        return lu

    def solver(self, dtype):
        lu = self._splu(dtype)

        def solve(b3):
            n = b3.shape[1]
            mat = np.moveaxis(b3, 1, 0).reshape(n, -1)
            solved = lu.solve(np.asfortranarray(mat))
            return np.moveaxis(solved.reshape((n, b3.shape[0], b3.shape[2])), 0, 1)

        return solve

    def inverse(self):
        self._splu(self._compute_dtype())  # singular: LinAlgError now, not on use
        return SparseInverse(self)

    def slogdet(self):
        n = self.shape[0]
        if n == 0:
            return 1.0, 0.0
        try:
            lu = self._splu(self._compute_dtype())
        except np.linalg.LinAlgError:
            return self._compute_dtype().type(0), -np.inf
        sign, logabs = diagonal_slogdet(lu.U.diagonal())
        if _parity(lu.perm_r) ^ _parity(lu.perm_c):
            sign = -sign
        return sign, logabs

    def trace(self):
        return self.csr.trace()

    def norm(self, ord):
        if ord in (None, "fro"):
            return float(np.sqrt(np.sum(np.abs(self.csr.data) ** 2)))
        if ord == 1:
            return float(abs(self.csr).sum(axis=0).max(initial=0))
        if ord == np.inf:
            return float(abs(self.csr).sum(axis=1).max(initial=0))
        return super().norm(ord)

    def diagonal_entries(self, rows, cols):
        return np.asarray(self.csr[rows, cols]).ravel()

    def scaled(self, c, divide=False, dtype=None):
        return Sparse.of(self.csr / c if divide else c * self.csr)

    def shifted(self, s, dtype=None):
        n = self.shape[0]
        return Sparse.of(self.csr + s * scipy.sparse.eye_array(n, dtype=self.csr.dtype))

    def power(self, p):
        if p < 0:
            return self.inverse().power(-p)
        result = scipy.sparse.eye_array(self.shape[0], dtype=self.dtype, format="csr")
        base = self.csr
        while p:
            if p & 1:
                result = result @ base
            base = base @ base
            p >>= 1
        return Sparse.of(result)

    def matmul(self, other):
        if isinstance(other, Identity):
            return self
        if isinstance(other, Sparse):
            return Sparse.of(self.csr @ other.csr)
        if isinstance(other, Diagonal):
            return Sparse.of(self.csr @ scipy.sparse.diags_array(other.d))
        if isinstance(other, Dense):
            return Dense(np.asarray(self.csr @ other.a))
        return Operator(self.linear_operator() @ other.linear_operator())

    def is_finite(self):
        return self.dtype.kind not in "fc" or bool(np.isfinite(self.csr.data).all())

    def linear_operator(self):
        return scipy.sparse.linalg.aslinearoperator(self.csr)


def _check_sparse_indices(value, name):
    """ValueError when a sparse matrix's index arrays point outside it: scipy.sparse does
    not check them by default, and converting such a matrix (to CSR) or applying it reads
    out of bounds."""
    n_rows, n_cols = value.shape
    fmt = value.format
    if fmt in ("csr", "csc", "bsr"):
        block = value.blocksize if fmt == "bsr" else (1, 1)
        major, minor = ((n_rows // block[0], n_cols // block[1]) if fmt != "csc"
                        else (n_cols, n_rows))
        indptr, indices = np.asarray(value.indptr), np.asarray(value.indices)
        bad = (indptr.size != major + 1 or (indptr.size and indptr[0] != 0)
               or bool(np.any(np.diff(indptr) < 0))
               or (indptr.size and indptr[-1] > indices.size)
               or (indices.size and (indices.min() < 0 or indices.max() >= minor)))
    elif fmt == "coo":
        row, col = (np.asarray(a) for a in value.coords)
        bad = row.size and (row.min() < 0 or row.max() >= n_rows or col.min() < 0
                            or col.max() >= n_cols)
    else:  # dia, lil, dok: built through checked methods
        bad = False
    if bad:
        raise ValueError(
            f"{name} has an index out of range for its shape {value.shape} (or an invalid "
            "index pointer)"
        )


def hermitian_eigh(a):
    """(w, V) of the Hermitian matrix a (its lower triangle) by LAPACK's divide and
    conquer (syevd/heevd), on SciPy's BLAS, whose threads matkron governs."""
    return scipy.linalg.eigh(a, driver="evd")


def _check_semidefinite(lam):
    """ValueError unless the eigenvalues are >= 0 up to rounding (16 n ulps of the
    largest)."""
    scale = max(float(np.abs(lam).max(initial=0.0)), np.finfo(lam.dtype).tiny)
    if lam.size and lam.min() < -16 * np.finfo(lam.dtype).eps * lam.size * scale:
        raise ValueError(f"has the eigenvalue {lam.min():.3g}")


def _semidefinite_power(lam, p):
    """lam**p for eigenvalues lam >= 0 up to rounding (the negative ones of rounding
    taken as 0); LinAlgError for p < 0 when an eigenvalue is 0, whose power is infinite."""
    _check_semidefinite(lam)
    lam = np.maximum(lam, 0)
    if p < 0:
        # Eigenvalues within rounding of 0 (16 n ulps of the largest) count as 0: their
        # negative power would be noise amplified, not a result.
        tol = 16 * lam.size * np.finfo(lam.dtype).eps * float(lam.max(initial=0.0))
        if lam.size and not lam.min() > tol:
            raise np.linalg.LinAlgError(
                f"is singular (an eigenvalue is {lam.min():.3g}, 0 within rounding); a "
                "negative power needs a nonsingular factor")
    return lam**p


def diagonal_slogdet(u):
    """(sign, log|det|) of diag(u) in O(n), as numpy.linalg.slogdet gives it."""
    u = np.asarray(u)
    if u.dtype.kind not in "fc":
        u = u.astype(np.float64)
    if u.dtype.kind == "f" and u.size and u.min() > 0:
        return u.dtype.type(1), _sum_log(u)  # positive definite: the common case
    a = np.abs(u)
    if not a.all():
        return u.dtype.type(0), -np.inf
    if u.dtype.kind == "f":
        sign = u.dtype.type(-1 if np.count_nonzero(u < 0) % 2 else 1)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            sign = np.prod(u / a) if u.size else u.dtype.type(1)
    return sign, _sum_log(a)


def _sum_log(a):
    """Σ log aᵢ for positive a. In float64 with every entry within 2^±120, the log of one
    product of 8 entries each (products that cannot overflow or underflow): 8 times fewer
    logarithms, for an added error of 7 roundings per 8 entries, below that of the
    eigenvalues such sums are taken of."""
    if a.dtype != np.float64 or a.size < 64:
        return float(np.sum(np.log(a)))
    if not (a.min() >= 2.0**-120 and a.max() <= 2.0**120):
        return float(np.sum(np.log(a)))
    k = a.size // 8 * 8
    blocks = a[:k].reshape(8, -1)
    product = blocks[0] * blocks[1]
    for block in blocks[2:]:
        product *= block
    return float(np.sum(np.log(product)) + np.sum(np.log(a[k:])))


def _parity(perm):
    """Whether the permutation (an index array) is odd."""
    perm = np.asarray(perm)
    seen = np.zeros(perm.size, dtype=bool)
    odd = False
    for start in range(perm.size):
        if seen[start]:
            continue
        length = 0
        j = start
        while not seen[j]:
            seen[j] = True
            j = perm[j]
            length += 1
        odd ^= (length % 2 == 0)
    return odd


class Operator(Factor):
    kind = "operator"
    structured = False

    def __init__(self, op, given=None):
        super().__init__(op if given is None else given, op.shape, np.dtype(op.dtype))
        self.op = op

    def apply(self, x, L, R, dtype, out, alpha=1, accumulate=False):
        p, q = self.shape
        x3 = _unfold(x, L, q, R)
        # The mode's unfolding (q, L·R): a view when the mode is first or R is 1 (the
        # transpose of the (L, q) matrix), else a copy.
        if L == 1:
            unfolded = x3.reshape(q, R, order="F")
        elif R == 1:
            unfolded = x3[:, :, 0].T
        else:
            # Into reused scratch memory (slot 3: the product's tensors hold 1 and 2).
            size = q * L * R * dtype.itemsize
            buf = _workspace.workspace(size, 3)[:size]
            unfolded = buf.view(dtype).reshape((q, L * R), order="F")
            np.copyto(unfolded.reshape((q, L, R), order="F"), np.moveaxis(x3, 1, 0))
        y = np.asarray(self.op.matmat(unfolded))
        if y.shape != (p, L * R):
            raise ValueError(
                f"a LinearOperator factor of shape {self.shape} returned shape {y.shape} "
                f"from matmat of shape {unfolded.shape}"
            )
        # Column l + L r of the unfolding is (l, r) in every case above; viewed as
        # (L, p, R) without a copy in either memory order of y.
        if y.flags.c_contiguous:
            y3 = y.reshape((p, R, L)).transpose(2, 0, 1)
        else:
            y3 = np.moveaxis(y.reshape((p, L, R), order="F"), 0, 1)
        _write(_unfold(out, L, p, R), y3, alpha, accumulate)

    def conj(self):
        return Operator(_Conjugate(self.op)) if self.dtype.kind == "c" else self

    def transpose(self):
        return Operator(self.op.T)

    def power(self, p):
        if p == 0:
            return Identity(IdentityFactor(self.shape[0]))
        return Operator(self.op**p)

    def adjoint(self):
        return Operator(self.op.H)

    def dense(self, dtype):
        return np.asarray(self.op.matmat(np.eye(self.shape[1], dtype=dtype))).astype(
            dtype, copy=False)

    def matmul(self, other):
        if isinstance(other, Identity):
            return self
        return Operator(self.op @ other.linear_operator())

    def linear_operator(self):
        return self.op


class KronProduct(Operator):
    """A KronOperator as one factor (of a Kronecker sum, where it cannot be flattened):
    applied by its own products, with the structure its methods give (solve, determinant,
    inverse, powers) and its dense matrix for the rest (eigendecompositions, Schur forms:
    of the cost of the dense factor of that order)."""

    kind = "kron"
    structured = True

    def conj(self):
        return KronProduct(self.op.conj()) if self.dtype.kind == "c" else self

    def transpose(self):
        return KronProduct(self.op.T)

    def adjoint(self):
        return KronProduct(self.op.H)

    def dense(self, dtype):
        return np.asarray(self.op.todense()).astype(dtype, copy=False)

    def solver(self, dtype):
        op = self.op

        def solve(b3):
            L, n, R = b3.shape
            mat = np.moveaxis(b3, 1, 0).reshape(n, -1)
            solved = np.asarray(op.solve(mat)).astype(dtype, copy=False)
            return np.moveaxis(solved.reshape((n, L, R)), 0, 1)

        return solve

    def inverse(self):
        return KronProduct(self.op.inv())

    def slogdet(self):
        return self.op.slogdet()

    def trace(self):
        return self.op.trace()

    def power(self, p):
        if p == 0:
            return Identity(IdentityFactor(self.shape[0]))
        return KronProduct(self.op**p)

    def is_finite(self):
        return not self.op._has_nonfinite()

    def scaled(self, c, divide=False, dtype=None):
        return KronProduct(self.op / c if divide else c * self.op)


class SparseInverse(Factor):
    """F⁻¹ for a sparse factor F, kept as F: applied by F's cached splu factorization,
    solved by a product with F, its determinant F's inverted, its inverse F itself. What
    has no sparse form (norms, singular values, eigendecompositions) takes the dense
    inverse, of the cost of inverting the dense F."""

    kind = "sparse inverse"

    def __init__(self, sparse):
        # Reported as given: the LinearOperator of F⁻¹ (what a user would have passed).
        super().__init__(_SparseInverse(sparse), sparse.shape, sparse.dtype)
        self.sparse = sparse

    def multiplies(self):
        # A triangular solve per factor of the LU: about the fill's entries per column.
        return 2 * self.sparse.multiplies() + 2

    def apply(self, x, L, R, dtype, out, alpha=1, accumulate=False):
        n = self.shape[0]
        solved = self.sparse.solver(dtype)(_unfold(x, L, n, R))
        _write(_unfold(out, L, n, R), solved, alpha, accumulate)

    def conj(self):
        return self.sparse.conj().inverse() if self.dtype.kind == "c" else self

    def transpose(self):
        return self.sparse.transpose().inverse()

    def dense(self, dtype):
        n = self.shape[0]
        eye = np.eye(n, dtype=dtype).reshape(1, n, n)
        return np.ascontiguousarray(self.sparse.solver(dtype)(eye)[0])

    def solver(self, dtype):
        sparse = self.sparse

        def solve(b3):
            # F along the mode, by the sparse kernel (which reads Fortran-ordered tensors).
            L, n, R = b3.shape
            x = np.asfortranarray(b3, dtype=dtype).reshape(-1, order="F")
            out = np.empty(x.size, dtype=dtype)
            sparse.apply(x, L, R, dtype, out)
            return out.reshape((L, n, R), order="F")

        return solve

    def inverse(self):
        return self.sparse

    def slogdet(self):
        sign, logabs = self.sparse.slogdet()
        if logabs == -np.inf:
            raise np.linalg.LinAlgError("singular")  # (never: made from an splu)
        return np.conj(sign), -logabs

    def cond(self, ord):
        return self.sparse.cond(ord)

    def power(self, p):
        if p == 0:
            return Identity(IdentityFactor(self.shape[0]))
        return self.sparse.power(-p) if p < 0 else self.sparse.power(p).inverse()

    def matmul(self, other):
        if isinstance(other, Identity):
            return self
        if other is self.sparse:
            return Identity(IdentityFactor(self.shape[0]))
        return Operator(self.linear_operator() @ other.linear_operator())

    def is_finite(self):
        return self.sparse.is_finite()

    def is_hermitian(self):
        return self.sparse.is_hermitian()

    def linear_operator(self):
        return self.given


class _SparseInverse(LinearOperator):
    """F⁻¹ for a sparse factor F, applied by its (cached) splu factorization."""

    def __init__(self, factor):
        dtype = factor._compute_dtype()
        super().__init__(dtype, factor.shape)
        self.factor = factor
        self.args = (factor.given,)

    def _solve(self, x, trans):
        x = np.asarray(x)
        dtype = blas_dtype(np.result_type(x.dtype, self.dtype))
        return self.factor._splu(dtype).solve(x.astype(dtype, copy=False), trans=trans)

    def _matvec(self, x):
        return self._solve(x, "N")

    def _matmat(self, x):
        return self._solve(x, "N")

    def _rmatvec(self, x):
        return self._solve(x, "H")

    def _rmatmat(self, x):
        return self._solve(x, "H")


class _Conjugate(LinearOperator):
    """The entrywise conjugate of a LinearOperator, conj(A) x = conj(A conj(x))
    (a class, not closures, so that it pickles)."""

    def __init__(self, op):
        super().__init__(op.dtype, op.shape)
        self.op = op
        self.args = (op,)

    def _matvec(self, x):
        return np.conj(self.op.matvec(np.conj(x)))

    def _matmat(self, x):
        return np.conj(self.op.matmat(np.conj(x)))

    def _rmatvec(self, x):
        return np.conj(self.op.rmatvec(np.conj(x)))

    def _rmatmat(self, x):
        return np.conj(self.op.rmatmat(np.conj(x)))


# The class of scipy.sparse.linalg.aslinearoperator(array) (private to SciPy: should it
# move, such operators are applied as opaque operators, which is slower but correct).
_MATRIX_OPERATOR = getattr(getattr(scipy.sparse.linalg, "_interface", None),
                           "MatrixLinearOperator", ())


def same_factor(f, g):
    """Whether factors f and g are equal: the same object given, identities of one order,
    or dense factors of one dtype with equal entries (an O(n²) comparison, against the
    O(n³) decomposition that equal factors share)."""
    if f is g:
        return True
    if f.kind != g.kind or f.shape != g.shape:
        return False
    if f.kind == "identity" or (f.given is g.given and f.given is not None):
        return True
    if f.kind == "dense" and f.a.dtype == g.a.dtype:
        return bool(np.array_equal(f.a, g.a))
    return False


def once_per_distinct(items, compute, same=same_factor):
    """[compute(item) for item in items], computed once for items equal by `same` (a grid
    of one kernel in every dimension decomposes one factor)."""
    results = []
    for i, item in enumerate(items):
        j = next((j for j in range(i) if same(items[j], item)), i)
        results.append(results[j] if j < i else compute(item))
    return results


def as_factor(value, name):
    """The Factor for one factor as given, or a TypeError/ValueError naming `name`.

    A KronOperator is not handled here (see :func:`as_factors`).
    """
    if isinstance(value, IdentityFactor):
        return Identity(value)
    if isinstance(value, DiagonalFactor):
        return Diagonal(value)
    if isinstance(value, Factor):
        return value
    if scipy.sparse.issparse(value):
        check_ndim(value, name, 2)
        check_blas_dims(value.shape, name)  # before CSR conversion (indptr of rows + 1)
        _check_sparse_indices(value, name)
        check_dtype(value.dtype, name)
        return Sparse(value)
    if type(value) is _MATRIX_OPERATOR:  # not subclasses, which may apply A otherwise
        # aslinearoperator(A) is A: read as that matrix (dense or sparse), with its
        # structure, its kernel and no Python call per product; still given as wrapped.
        inner = as_factor(value.A, name)
        inner.given = value
        return inner
    if isinstance(value, LinearOperator):
        check_dtype(np.dtype(value.dtype), name)
        return Operator(value)
    a = as_array(value, name)
    check_ndim(a, name, 2)
    return Dense(a, name=name)


def factors_dtype(factors):
    """The kernel dtype of the factors' own dtypes (float64 when none has one)."""
    dtypes = [f.dtype for f in factors if f.dtype is not None]
    return result_dtype(*dtypes) if dtypes else np.dtype(np.float64)


def require_structure(factors, names, what):
    """TypeError naming the first factor whose kind has no `what` (an opaque operator)."""
    for f, name in zip(factors, names):
        if not f.structured:
            raise needs_structure(what, name)


def require_finite(factors, names, what):
    for f, name in zip(factors, names):
        if not f.is_finite():
            raise not_finite(name, what)
