"""matkron: Kronecker-structured linear algebra with a compiled BLAS core.

The central identity, with vec the column-stacking map (Fortran order):

    (A ⊗ B) vec(C) = vec(B C Aᵀ)

so a product with a Kronecker product costs GEMMs on its factors and never forms it.
"""

from ._chain import ChainPlan, chain_order, multi_dot
from ._kron import identity, kron_matvec, kron_order, unvec, vec
from ._operator import KronOperator, kron
from ._power import PowerJacobian, frechet_power, polynomial_jacobian, power_jacobian
from ._sum import (
    KronSumOperator,
    SumOfKronOperator,
    kronsum,
    lyapunov,
    sum_of_kron,
    sylvester,
)

__version__ = "0.1.0"

__all__ = [
    "ChainPlan",
    "KronOperator",
    "KronSumOperator",
    "PowerJacobian",
    "SumOfKronOperator",
    "chain_order",
    "frechet_power",
    "identity",
    "kron",
    "kron_matvec",
    "kron_order",
    "kronsum",
    "lyapunov",
    "multi_dot",
    "polynomial_jacobian",
    "power_jacobian",
    "sum_of_kron",
    "sylvester",
    "unvec",
    "vec",
]
