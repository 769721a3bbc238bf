"""Kronecker products with factors of every kind.

(F1 ⊗ … ⊗ Fk) x for factors that are dense, identities, diagonals, sparse or linear
operators: the dense factors (with identities for the others) are applied in one call of
the compiled Kronecker kernel, and each other factor along its mode by its own kernel
(see :mod:`matkron._factors`). The factors act on separate modes, so they commute: the
ones that shrink the tensor run first, then the dense ones (which read x in any layout),
then the rest.

Diagonal factors with dense ones and identities take a shorter way: x is scaled by every
diagonal at once (one broadcast multiply into a workspace), and the kernel applies the
dense factors from there, writing `out` itself; a small product pays one kernel call and
one pass over x, not a step per factor.

The tensors between steps live in two per-thread workspaces, reused across calls (fresh
memory costs a page fault per 4 KiB on first touch). A LinearOperator factor's ``matmat``
may itself run a matkron product in the same thread; the workspaces are then busy (see
:func:`matkron._workspace.workspace`), and that product gets memory of its own.
"""

import math

import numpy as np

from . import _workspace
from ._factors import _write
from ._kron_cy import kron_apply

__all__ = ["structured_product"]

# Workspace slots of the intermediate tensors (slot 0 is the compiled kernels', 3 the
# unfolding of a LinearOperator factor's input).
_SLOTS = (1, 2)


def _steps(factors):
    """The order of steps: factor indices, and the tuple of dense indices for the kernel
    call (absent when no factor is dense)."""
    dense = tuple(i for i, f in enumerate(factors) if f.kind == "dense")
    others = [i for i, f in enumerate(factors) if not f.in_kernel]
    # Shrinking factors first (smallest p/q), growing ones last.
    others.sort(key=lambda i: factors[i].shape[0] / max(factors[i].shape[1], 1))
    shrinking = [i for i in others if factors[i].shape[0] < factors[i].shape[1]]
    rest = [i for i in others if factors[i].shape[0] >= factors[i].shape[1]]
    return shrinking + ([dense] if dense else []) + rest


def _buffer(size, dtype, step):
    """A 1-D array of `size` elements for the tensor after `step`."""
    buf = _workspace.workspace(size * dtype.itemsize, _SLOTS[step % 2])
    return buf[: size * dtype.itemsize].view(dtype)


def _diagonal_weights(factors, dtype, ndim):
    """The diagonals as one array that broadcasts against x's rows viewed as the
    C-ordered tensor (q_1, …, q_k) (plus a trailing axis of columns when `ndim` is 2)."""
    k = len(factors)
    weights = None
    for j, f in enumerate(factors):
        if f.kind == "diagonal":
            shape = [1] * (k + ndim - 1)
            shape[j] = f.shape[0]
            d = f._scaled(dtype, 1).reshape(shape)
            weights = d if weights is None else weights * d
    return weights


def _diagonal_plan(factors, dtype, ndim):
    """What :func:`_diagonal_product` needs besides x: the modes, the diagonals as one
    array that broadcasts against x (:func:`_diagonal_weights`), and the kernel's factors
    (a diagonal's place holding its order; None when no factor is dense)."""
    mats = None
    if any(f.kind == "dense" for f in factors):
        mats = tuple(f.shape[0] if f.kind == "diagonal" else f.kernel(dtype)
                     for f in factors)
    return tuple(f.shape[1] for f in factors), _diagonal_weights(factors, dtype, ndim), mats


def _diagonal_product(factors, x, dtype, out, alpha, accumulate, plans):
    """out (+)= alpha (F1 ⊗ … ⊗ Fk) x for dense, identity and diagonal factors: x scaled by
    the diagonals, then one kernel call (or none, when no factor is dense). `plans` (a
    dict, or None) keeps :func:`_diagonal_plan` per dtype and dimension of x."""
    key = (dtype, x.ndim)
    plan = None if plans is None else plans.get(key)
    if plan is None:
        plan = _diagonal_plan(factors, dtype, x.ndim)
        if plans is not None:
            plans[key] = plan
    dims, weights, mats = plan
    m = () if x.ndim == 1 else (x.shape[1],)
    # Splitting the row axis into the modes is a view whatever x's strides.
    xt = x.reshape(dims + m)
    if mats is None:
        target = out.reshape(dims + m)
        if accumulate:
            target += xt * (weights * alpha if alpha != 1 else weights)
        else:
            np.multiply(xt, weights * alpha if alpha != 1 else weights, out=target,
                        casting="unsafe")
        return out
    # The scaled copy keeps x's order, which the kernel reads best.
    order = "F" if x.ndim == 2 and x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    scaled = _buffer(x.size, dtype, 0).reshape(x.shape, order=order)
    np.multiply(xt, weights, out=scaled.reshape(dims + m))
    src = scaled if scaled.ndim == 2 else scaled[:, np.newaxis]
    target = out if out.ndim == 2 else out[:, np.newaxis]
    kron_apply(((alpha, mats),), src, target, accumulate)
    return out


def structured_product(factors, x, dtype, out, alpha=1, accumulate=False, plans=None):
    """out (+)= alpha (F1 ⊗ … ⊗ Fk) x for Factor objects of any kind.

    `x` is a checked, aligned 1-D or 2-D array of `dtype` matching the factors' columns
    (any strides), `out` a writeable array of the result's shape and dtype (any layout),
    not overlapping `x`. `plans`, a dict kept by the caller for these factors (or None),
    caches what products of dense, identity and diagonal factors derive from the factors
    alone. Returns `out`.
    """
    k = len(factors)
    m = 1 if x.ndim == 1 else x.shape[1]
    if out.size == 0:
        return out
    if x.shape[0] == 0 or m == 0:
        if not accumulate:
            out.fill(0)
        return out
    if all(f.kind in ("dense", "identity", "diagonal") for f in factors):
        return _diagonal_product(factors, x, dtype, out, alpha, accumulate, plans)
    dims = [f.shape[1] for f in factors]
    steps = _steps(factors)
    # The last step writes into out when out is one Fortran-ordered buffer.
    flat_out = out.reshape(-1, order="F") if out.flags.f_contiguous else None
    cur = None  # the current tensor as a Fortran-ordered buffer; None while it is x
    for t, step in enumerate(steps):
        last = t == len(steps) - 1
        if isinstance(step, tuple):
            mats = tuple(factors[i].kernel(dtype) if i in step else dims[i]
                         for i in range(k))
            n_in = math.prod(dims)
            for i in step:
                dims[i] = factors[i].shape[0]
            if cur is None:
                src = x if x.ndim == 2 else x[:, np.newaxis]
            else:
                src = cur.reshape((n_in, m), order="F")
            if last:
                # The kernel writes any layout and scales and accumulates itself.
                target = out if out.ndim == 2 else out[:, np.newaxis]
                kron_apply(((alpha, mats),), src, target, accumulate)
                return out
            cur = _buffer(math.prod(dims) * m, dtype, t)
            kron_apply(((1, mats),), src, cur.reshape((-1, m), order="F"), False)
            src = None  # no longer holds the other slot
            continue
        if cur is None:
            cur = np.asfortranarray(x).reshape(-1, order="F")
        f = factors[step]
        L = math.prod(dims[step + 1:])
        R = math.prod(dims[:step]) * m
        dims[step] = f.shape[0]
        if last and flat_out is not None:
            f.apply(cur, L, R, dtype, flat_out, alpha, accumulate)
            return out
        nxt = _buffer(math.prod(dims) * m, dtype, t)
        f.apply(cur, L, R, dtype, nxt)
        cur, nxt = nxt, None
    if cur is None:  # identities only
        cur = np.asfortranarray(x).reshape(-1, order="F")
    _write(out, cur.reshape(out.shape, order="F"), alpha, accumulate)
    return out
