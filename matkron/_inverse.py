"""The inverse of an operator that solves directly, as an operator of its own."""

from typing import Any

from ._linop import ProductOperator
from ._validation import check_rows

__all__ = ["InverseOperator"]


class InverseOperator(ProductOperator):
    """op⁻¹ for an operator with a direct ``solve``: its products are solves, its
    ``solve`` is a product with op, and its adjoint is the inverse of op's adjoint.

    A :class:`~matkron._linop.ProductOperator`, so Dask operands stay lazy (column blocks
    of solves) and the operator pickles with op.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> from matkron._inverse import InverseOperator
    >>> S = matkron.sylvester(np.array([[2.0, 1.0], [0.0, 3.0]]), np.eye(1))
    >>> Sinv = InverseOperator(S)
    >>> bool(np.allclose(S @ (Sinv @ np.ones(2)), 1.0))
    True
    """

    _transient = {"_adjoint_op": type(None)}

    def __init__(self, op: Any) -> None:
        self.op = op
        self._adjoint_op = None
        self._set_shape(op.dtype, (op.shape[1], op.shape[0]))
        self.args = (op,)

    def _product(self, x):
        # Rows first: op.solve also takes a two-factor Kronecker sum's matrix form.
        check_rows(x, self.shape[1], "x", f"the number of columns of the {self.shape[0]}x"
                   f"{self.shape[1]} inverse")
        return self.op.solve(x)

    def _adjoint(self):
        if self._adjoint_op is None:
            self._adjoint_op = InverseOperator(self.op.H)
            self._adjoint_op._adjoint_op = self
        return self._adjoint_op

    def solve(self, b: Any) -> Any:
        """op @ b: the solution of op⁻¹ x = b."""
        return self.op @ b

    def __repr__(self) -> str:
        return f"<{self.shape[0]}x{self.shape[1]} inverse of {self.op!r}>"
