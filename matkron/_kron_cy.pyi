# The entry points of the Kronecker kernel (csrc/_kron_cy.pyx). The planner
# (_kron_plan_cy) and the executor (_kron_exec_cy) have no Python-level API.
from typing import TypedDict

import numpy as np

MAX_KRON_FACTORS: int

class KernelRow(TypedDict):
    name: str
    isa: str
    dtype: str
    available: bool
    reference: bool
    lanes: int
    pack_round: int
    max_pack: int

def kron_apply(
    terms: tuple[tuple[complex, tuple[np.ndarray | int, ...]], ...],
    x: np.ndarray,
    out: np.ndarray,
    accumulate: bool = ...,
) -> np.ndarray: ...
def kron_plan(
    mats: tuple[np.ndarray | int, ...], x: np.ndarray
) -> tuple[tuple[int, ...], tuple[str, ...], bool, bool]: ...
def kron_matvec_fast(
    mats: object,
    x: object,
    ints_are_identities: bool = ...,
    out: object = ...,
) -> np.ndarray | None: ...
def is_blas_matrix(a: np.ndarray) -> bool: ...
def kernel_registry() -> list[KernelRow]: ...
def _plan_kernels(mats: tuple[np.ndarray | int, ...], x: np.ndarray) -> tuple[str, ...]: ...
def _run_step_kernel(
    name: str,
    f: np.ndarray,
    x: np.ndarray,
    n: int,
    x_sk: int,
    x_sr: int,
    y: np.ndarray,
    y_si: int,
    y_sr: int,
    alpha: complex,
    beta: complex,
    pack_size: int = ...,
) -> int: ...
def _set_planner(
    variants: tuple[str | None, ...] | list[str | None] | None = ...,
    own_kernel: bool | str | None = ...,
) -> bool: ...
def _force_threads(n: int) -> None: ...
