"""The types of matkron's public signatures."""

from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import LinearOperator

if TYPE_CHECKING:
    from ._factors import DiagonalFactor, IdentityFactor

__all__ = ["Array", "FactorLike", "Scalar"]

#: An ndarray of any dtype (matkron's results are float32/64 or complex64/128).
Array: TypeAlias = NDArray[Any]

#: A number: a coefficient, a shift, a scale.
Scalar: TypeAlias = "complex | np.number[Any]"

#: What a Kronecker factor may be.
FactorLike: TypeAlias = (
    "ArrayLike | IdentityFactor | DiagonalFactor | scipy.sparse.sparray | "
    "scipy.sparse.spmatrix | LinearOperator"
)
