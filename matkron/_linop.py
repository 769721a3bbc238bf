"""The LinearOperator base of matkron's operators: products straight to the kernels."""

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__ = ["ProductOperator"]


class ProductOperator(LinearOperator):
    """A LinearOperator whose products with NumPy arrays go straight to ``_product``.

    SciPy's ``matvec``, ``matmat``, ``dot`` and ``@`` check and reshape in Python on every
    call; for a 1-D or 2-D ndarray these call the subclass's ``_product(x)``, which checks
    `x` itself, and leave everything else (matrices, other operators, scalars) to SciPy.
    Subclasses define ``_product`` and ``_adjoint``.

    Pickling and copying leave out the caches named in ``_transient`` (name → a callable
    making the empty value): they are rebuilt on use, from arrays that pickle may return
    unaligned, and some (factorizations) do not pickle.
    """

    _transient = {}

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

    def _matvec(self, x):
        return self._product(np.asarray(x).reshape(-1))

    def _matmat(self, X):
        return self._product(np.asarray(X))

    def _rmatvec(self, x):
        return self._adjoint()._matvec(x)

    def _rmatmat(self, X):
        return self._adjoint()._matmat(X)

    def matvec(self, x):
        if type(x) is np.ndarray and x.ndim == 1:
            return self._product(x)
        return super().matvec(x)

    def matmat(self, X):
        if type(X) is np.ndarray and X.ndim == 2:
            return self._product(X)
        return super().matmat(X)

    def dot(self, x):
        if type(x) is np.ndarray and x.ndim in (1, 2):
            return self._product(x)
        return super().dot(x)

    def __matmul__(self, other):
        if type(other) is np.ndarray and other.ndim in (1, 2):
            return self._product(other)
        return super().__matmul__(other)
