import numpy as np

class PowerPlan:
    method: str
    m: int
    def __init__(
        self,
        method: str,
        m: int,
        dtype_array: np.ndarray,
        a: np.ndarray | None = ...,
        mats: np.ndarray | None = ...,
        gamma: np.ndarray | None = ...,
        codes: bytes = ...,
        count: int = ...,
        alpha: complex = ...,
    ) -> None: ...
    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray: ...
    def matvec_fast(self, x: object) -> np.ndarray | None: ...
