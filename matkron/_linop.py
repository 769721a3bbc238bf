"""The LinearOperator base of matkron's operators: products straight to the kernels."""

import functools
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from . import _dask
from ._validation import (
    as_scalar,
    check_conformable,
    check_ndim,
    is_dask_array,
    shape_error,
)

__all__ = ["ProductOperator"]


class ProductOperator(LinearOperator):
    """A LinearOperator whose products with NumPy arrays go straight to ``_product``.

    SciPy's ``matvec``, ``matmat``, ``dot`` and ``@`` check and reshape in Python on every
    call; for a 1-D or 2-D ndarray these call the subclass's ``_product(x)``, which checks
    `x` itself, and leave everything else (matrices, other operators, scalars) to SciPy.
    Subclasses define ``_product`` and ``_adjoint``.

    A Dask array operand (``matvec``, ``matmat``, ``dot``, ``@``, ``rmatvec``, ``rmatmat``,
    and ``solve`` of the subclasses that define one) gives a lazy Dask array, built by
    :mod:`matkron._dask`: recognized by the module of its type after the ndarray check,
    so NumPy operands pay nothing and Dask is never imported for them. A subclass's
    ``solve`` is wrapped for this when the class is made (:meth:`__init_subclass__`).

    Pickling and copying leave out the caches named in ``_transient`` (name → a callable
    making the empty value): they are rebuilt on use, from arrays that pickle may return
    unaligned, and some (factorizations) do not pickle.
    """

    _transient = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> "ProductOperator":
        # LinearOperator.__new__ checks that the class defines _matvec or _matmat (this
        # one does both) on every construction.
        return object.__new__(cls)

    def _set_shape(self, dtype, shape):
        """What ``LinearOperator.__init__`` sets, for a `shape` of two Python ints the
        subclass has already checked (SciPy's generic shape validation costs more than
        building a small operator)."""
        self.dtype = np.dtype(dtype)
        self.shape = shape

    def __getstate__(self):
        state = self.__dict__.copy()
        for name, empty in self._transient.items():
            if name in state:
                state[name] = empty()
        return state

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "solve" in cls.__dict__:
            cls.solve = _dask_aware_solve(cls.__dict__["solve"])

    def _matvec(self, x):
        return self._product(np.asarray(x).reshape(-1))

    def _matmat(self, X):
        return self._product(np.asarray(X))

    def _rmatvec(self, x):
        return self._adjoint()._matvec(x)

    def _rmatmat(self, X):
        return self._adjoint()._matmat(X)

    def matvec(self, x: Any) -> Any:
        if type(x) is np.ndarray and x.ndim == 1:
            return self._product(x)
        if is_dask_array(x):
            return self._dask_product(x, "matvec")
        return super().matvec(x)

    def matmat(self, X: Any) -> Any:
        if type(X) is np.ndarray and X.ndim == 2:
            return self._product(X)
        if is_dask_array(X):
            return self._dask_product(X, "matmat")
        return super().matmat(X)

    def dot(self, x: Any) -> Any:
        if type(x) is np.ndarray and x.ndim in (1, 2):
            return self._product(x)
        if is_dask_array(x):
            return self._dask_product(x, "dot")
        if as_scalar(x) is not None:
            return self * x  # the subclass's scaling, which keeps its structure
        if isinstance(x, ProductOperator):
            check_conformable("multiply", self.shape, x.shape)
            return ComposedOperator(self, x)
        return super().dot(x)

    def __matmul__(self, other: Any) -> Any:
        if type(other) is np.ndarray and other.ndim in (1, 2):
            return self._product(other)
        if is_dask_array(other):
            return self._dask_product(other, "@")
        return super().__matmul__(other)

    def rmatvec(self, x: Any) -> Any:
        if is_dask_array(x):
            return self._adjoint()._dask_product(x, "rmatvec")
        return super().rmatvec(x)

    def rmatmat(self, X: Any) -> Any:
        if is_dask_array(X):
            return self._adjoint()._dask_product(X, "rmatmat")
        return super().rmatmat(X)

    def todense(self) -> Any:
        """The dense matrix (small sizes only), from products with the identity's columns;
        subclasses with structure build it from that."""
        return np.asarray(self._product(np.eye(self.shape[1], dtype=self.dtype)))

    def toarray(self) -> Any:
        """Alias of :meth:`todense`."""
        return self.todense()

    # -- generic algebra: what no subclass refines stays a ProductOperator -----------------
    #
    # SciPy's composites (_ScaledLinearOperator, _SumLinearOperator, ...) compute a Dask
    # operand on the client and have no _product; these keep matkron's products, so a
    # scaled, summed or transposed operator takes Dask arrays as its parts do.

    def __mul__(self, x: Any) -> Any:
        c = as_scalar(x)
        if c is not None:
            return ScaledOperator(self, c)
        return super().__mul__(x)

    def __rmul__(self, x: Any) -> Any:
        c = as_scalar(x)
        if c is not None:
            return ScaledOperator(self, c)
        return super().__rmul__(x)

    def __truediv__(self, x: Any) -> Any:
        c = as_scalar(x)
        if c is not None:
            return ScaledOperator(self, 1 / c)
        return super().__truediv__(x)

    def __neg__(self) -> Any:
        return ScaledOperator(self, -1)

    def __add__(self, x: Any) -> Any:
        if isinstance(x, ProductOperator):
            check_conformable("add", self.shape, x.shape)
            return SumOperator(self, x)
        return super().__add__(x)

    def _transpose(self):
        return TransposedOperator(self)

    def _dask_product(self, x, how):
        """self @ x for a Dask array x, as a lazy Dask array (see :mod:`matkron._dask`);
        `how` is the method called, whose shape rules apply."""
        if how in ("matvec", "rmatvec") and x.ndim == 2 and x.shape[1] == 1:
            return _dask.columns(self, x, label=how)  # SciPy's (N, 1) vector
        n = self.shape[1] if how == "matvec" else self.shape[0]
        if how in ("matvec", "rmatvec") and x.ndim != 1:
            raise shape_error("x", x.shape, f"({n},) or ({n}, 1)", f"for {how}")
        if how in ("matmat", "rmatmat"):
            check_ndim(x, "X", 2)
        return _dask.product(self, x, "X" if how in ("matmat", "rmatmat") else "x")


def _dask_aware_solve(solve):
    """`solve` with a Dask array b sent to :func:`matkron._dask.solve` (lazy, by column
    blocks); the docstring and module are the method's own (its doctests still run)."""

    @functools.wraps(solve)
    def wrapper(self, b, *args, **kwargs):
        if is_dask_array(b) and not args and not kwargs:
            return _dask.solve(self, b)
        return solve(self, b, *args, **kwargs)

    return wrapper


class ScaledOperator(ProductOperator):
    """c · op, through op's products (see ProductOperator's generic algebra)."""

    def __init__(self, op: ProductOperator, c: Any) -> None:
        self.op, self.c = op, c
        self._set_shape(np.result_type(op.dtype, c), op.shape)
        self.args = (op, c)  # as SciPy's own scaled operator

    def _product(self, x):
        return self.op._product(x) * self.c

    def _adjoint(self):
        return ScaledOperator(self.op.H, np.conj(self.c))

    def _transpose(self):
        return ScaledOperator(self.op.T, self.c)


class SumOperator(ProductOperator):
    """a + b, through their products."""

    def __init__(self, a: ProductOperator, b: ProductOperator) -> None:
        self.a, self.b = a, b
        self._set_shape(np.result_type(a.dtype, b.dtype), a.shape)
        self.args = (a, b)

    def _product(self, x):
        return self.a._product(x) + self.b._product(x)

    def _adjoint(self):
        return SumOperator(self.a.H, self.b.H)

    def _transpose(self):
        return SumOperator(self.a.T, self.b.T)


class ComposedOperator(ProductOperator):
    """a b (b applied first), through their products."""

    def __init__(self, a: ProductOperator, b: ProductOperator) -> None:
        self.a, self.b = a, b
        self._set_shape(np.result_type(a.dtype, b.dtype), (a.shape[0], b.shape[1]))
        self.args = (a, b)

    def _product(self, x):
        return self.a._product(self.b._product(x))

    def _adjoint(self):
        return ComposedOperator(self.b.H, self.a.H)

    def _transpose(self):
        return ComposedOperator(self.b.T, self.a.T)


class TransposedOperator(ProductOperator):
    """opᵀ x = conj(opᴴ conj(x)), through the adjoint's products."""

    def __init__(self, op: ProductOperator) -> None:
        self.op = op
        self._set_shape(op.dtype, (op.shape[1], op.shape[0]))
        self.args = (op,)

    def _product(self, x):
        if self.dtype.kind != "c" and x.dtype.kind != "c":
            return self.op.H._product(x)
        return np.conj(self.op.H._product(np.conj(x)))

    def _adjoint(self):
        return TransposedOperator(self.op.H)

    def _transpose(self):
        return self.op
