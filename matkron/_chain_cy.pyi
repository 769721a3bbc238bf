from collections.abc import Sequence
from typing import Any

import numpy as np

HAVE_INT128: bool

def dp_plan(
    dims: Sequence[int], tier: int, kernel: int = ...
) -> tuple[int, np.ndarray]: ...
def execute(
    mats: tuple[np.ndarray, ...],
    steps: np.ndarray,
    out: np.ndarray,
    workspace: np.ndarray,
) -> int: ...
def multi_dot_fast(arrays: Any) -> Any: ...
