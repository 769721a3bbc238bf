"""Kronecker products with factors of every kind.

(F1 ⊗ … ⊗ Fk) x for factors that are dense, identities, diagonals, sparse or linear
operators: the dense factors (with identities for the others) are applied in one call of
the compiled Kronecker kernel, and each other factor along its mode by its own kernel
(see :mod:`matkron._factors`). The factors act on separate modes, so they commute: the
ones that shrink the tensor run first and the ones that grow it last.
"""

import math

import numpy as np

from ._factors import _write
from ._kron_cy import kron_apply

__all__ = ["structured_product"]


def _steps(factors):
    """The order of steps: factor indices, and the tuple of dense indices for the kernel
    call (None when every factor is structured or an identity)."""
    dense = tuple(i for i, f in enumerate(factors) if f.kind == "dense")
    others = [i for i, f in enumerate(factors) if not f.in_kernel]
    # Shrinking factors first (smallest p/q), growing ones last.
    others.sort(key=lambda i: factors[i].shape[0] / max(factors[i].shape[1], 1))
    shrinking = [i for i in others if factors[i].shape[0] <= factors[i].shape[1]]
    growing = [i for i in others if factors[i].shape[0] > factors[i].shape[1]]
    return shrinking + ([dense] if dense else []) + growing


def structured_product(factors, x, dtype, out, alpha=1, accumulate=False):
    """out (+)= alpha (F1 ⊗ … ⊗ Fk) x for Factor objects of any kind.

    `x` is a checked 1-D or 2-D array of `dtype` matching the factors' columns, `out` a
    writeable array of the result's shape and dtype (any layout), not overlapping `x`.
    Returns `out`.
    """
    k = len(factors)
    m = 1 if x.ndim == 1 else x.shape[1]
    if out.size == 0:
        return out
    if x.shape[0] == 0 or m == 0:
        if not accumulate:
            out.fill(0)
        return out
    dims = [f.shape[1] for f in factors]
    steps = _steps(factors)
    cur = np.asfortranarray(x, dtype=dtype).reshape(-1, order="F")
    # The last step writes into out when out is one Fortran-ordered buffer.
    flat_out = out.reshape(-1, order="F") if out.flags.f_contiguous else None
    for t, step in enumerate(steps):
        last = t == len(steps) - 1
        if isinstance(step, tuple):
            mats = tuple(factors[i].kernel(dtype) if i in step else dims[i] for i in range(k))
            n_in = math.prod(dims)
            for i in step:
                dims[i] = factors[i].shape[0]
            src = cur.reshape((n_in, m), order="F")
            if last:
                # The kernel writes any layout and scales and accumulates itself.
                target = out if out.ndim == 2 else out[:, np.newaxis]
                kron_apply(((alpha, mats),), src, target, accumulate)
                return out
            dst = np.empty((math.prod(dims), m), dtype=dtype, order="F")
            kron_apply(((1, mats),), src, dst, False)
            cur = dst.reshape(-1, order="F")
            continue
        f = factors[step]
        L = math.prod(dims[step + 1:])
        R = math.prod(dims[:step]) * m
        dims[step] = f.shape[0]
        if last and flat_out is not None:
            f.apply(cur, L, R, dtype, flat_out, alpha, accumulate)
            return out
        nxt = np.empty(math.prod(dims) * m, dtype=dtype)
        f.apply(cur, L, R, dtype, nxt)
        cur = nxt
    _write(out, cur.reshape(out.shape, order="F"), alpha, accumulate)
    return out
