from collections.abc import Callable

import numpy as np

MAX_KRON_FACTORS: int
# Set by matkron._kron: the Python path for operands the compiled entry point does not take.
_checked_kron_matvec: Callable[..., np.ndarray]

def kron_apply(
    terms: tuple[tuple[complex, tuple[np.ndarray | int, ...]], ...],
    x: np.ndarray,
    out: np.ndarray,
    accumulate: bool = ...,
) -> np.ndarray: ...
def kron_plan(
    mats: tuple[np.ndarray | int, ...], x: np.ndarray
) -> tuple[tuple[int, ...], tuple[str, ...], bool, bool]: ...
def kron_matvec(
    factors: object, x: object, *, out: np.ndarray | None = ...
) -> np.ndarray: ...
def kron_matvec_fast(
    mats: list[np.ndarray] | tuple[np.ndarray | int, ...],
    x: np.ndarray,
    ints_are_identities: bool = ...,
    out: np.ndarray | None = ...,
) -> np.ndarray | None: ...
def _set_planner(
    variants: tuple[str | None, ...] | list[str | None] | None = ...,
    own_kernel: bool | None = ...,
) -> bool: ...
