import numpy as np

def kron_apply(
    mats: tuple[np.ndarray | int, ...],
    order: tuple[int, ...],
    x: np.ndarray,
    out: np.ndarray,
    workspace: np.ndarray,
    accumulate: bool = ...,
) -> int: ...
