import numpy as np

def kron_apply(
    terms: tuple[tuple[complex, tuple[np.ndarray | int, ...], tuple[int, ...]], ...],
    x: np.ndarray,
    out: np.ndarray,
    workspace: np.ndarray,
    accumulate: bool = ...,
) -> int: ...
def kron_matvec_fast(
    mats: list[np.ndarray] | tuple[np.ndarray | int, ...],
    x: np.ndarray,
    ints_are_identities: bool = ...,
) -> np.ndarray | None: ...
