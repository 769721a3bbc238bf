"""matkron: Kronecker-structured linear algebra with a compiled BLAS core.

The central identity, with vec the column-stacking map (Fortran order):

    (A ⊗ B) vec(C) = vec(B C Aᵀ)

so a product with a Kronecker product costs GEMMs on its factors and never forms it.
"""


def _use_installed_package():
    """In a source checkout, put the installed (compiled) matkron in this module's place.

    From the repository root, ``python -m matkron`` and ``import matkron`` find the source
    folder first, which has no compiled kernels. Then the installed package is loaded as
    ``sys.modules["matkron"]``, which the import system hands to the importer; the imports
    below then resolve inside it, through its ``__path__``. Without an installed package,
    say how to install it.
    """
    import importlib.machinery
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec(__name__ + "._kron_cy") is not None:
        return  # installed, or an editable install whose finder knows the build folder
    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.dirname(here)
    elsewhere = [p for p in sys.path if os.path.abspath(p or os.curdir) != checkout]
    spec = importlib.machinery.PathFinder.find_spec(__name__, elsewhere)
    if spec is None or os.path.dirname(os.path.abspath(spec.origin)) == here:
        raise ImportError(
            f"matkron is being imported from its source folder {here}, which has no "
            "compiled kernels; install it first with `pip install .`"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)


_use_installed_package()

from ._chain import ChainPlan, chain_order, multi_dot
from ._factors import DiagonalFactor, IdentityFactor, diagonal
from ._frechet import FrechetOperator, cond, frechet
from ._inv_quad_logdet import inv_quad_logdet
from ._jacobian_chain import JacobianChainOperator, JacobianChainPlan, jacobian_chain
from ._kron import identity, kron_order, unvec, vec
from ._operators import (
    EigenOperator,
    KronOperator,
    KronSumOperator,
    SumOfKronOperator,
    kron,
    kron_matvec,
    kronsum,
    lyapunov,
    solve_continuous_lyapunov,
    solve_sylvester,
    sum_of_kron,
    sylvester,
)
from ._planner import (
    export_wisdom,
    forget_wisdom,
    get_planner,
    import_wisdom,
    planner,
    set_planner,
)
from ._power import PowerJacobian, frechet_power, polynomial_jacobian, power_jacobian
from ._threads import blas_info, get_num_threads, set_num_threads, threads
from ._version import __version__ as __version__

__all__ = [
    "ChainPlan",
    "DiagonalFactor",
    "EigenOperator",
    "FrechetOperator",
    "IdentityFactor",
    "JacobianChainOperator",
    "JacobianChainPlan",
    "KronOperator",
    "KronSumOperator",
    "PowerJacobian",
    "SumOfKronOperator",
    "blas_info",
    "chain_order",
    "cond",
    "diagonal",
    "export_wisdom",
    "forget_wisdom",
    "frechet",
    "frechet_power",
    "get_num_threads",
    "get_planner",
    "identity",
    "import_wisdom",
    "inv_quad_logdet",
    "jacobian_chain",
    "kron",
    "kron_matvec",
    "kron_order",
    "kronsum",
    "lyapunov",
    "multi_dot",
    "planner",
    "polynomial_jacobian",
    "power_jacobian",
    "set_num_threads",
    "set_planner",
    "solve_continuous_lyapunov",
    "solve_sylvester",
    "sum_of_kron",
    "sylvester",
    "threads",
    "unvec",
    "vec",
]
