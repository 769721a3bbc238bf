import numpy as np

def sparse_mode_apply(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    p: int,
    q: int,
    x: np.ndarray,
    out: np.ndarray,
    L: int,
    R: int,
    transpose: bool = ...,
    conjugate: bool = ...,
    alpha: complex = ...,
    accumulate: bool = ...,
) -> np.ndarray: ...

def kronsum_apply(
    indptrs: tuple[np.ndarray, ...],
    indices: tuple[np.ndarray, ...],
    datas: tuple[np.ndarray, ...],
    dims: tuple[int, ...],
    x: np.ndarray,
    out: np.ndarray,
    R: int,
    alpha: complex = ...,
    accumulate: bool = ...,
) -> np.ndarray: ...
