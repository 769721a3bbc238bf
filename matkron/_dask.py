"""matkron's operators on Dask arrays: many right-hand sides, and vectors past one machine.

Nothing here imports Dask at module level: :mod:`matkron._linop` and the public
:func:`matkron.kron_matvec` recognize a Dask array by the module of its type
(``matkron._validation.is_dask_array``) and only then call in, so ``import matkron`` never
loads Dask.

Two layouts:

- **Columns** (a 2-D X of shape (N, m), and every operator): X is rechunked to whole
  columns (its rows in one chunk) and each column block goes through the NumPy path of
  the operator, in one task per block. The operator is one key of the graph (a
  ``dask.delayed`` of it) that every task references: it is serialized once, and on a
  ``distributed`` cluster a worker receives it once and keeps it for all its tasks.
- **Pencils** (a 1-D x of length Π qᵢ, for :class:`~matkron.KronOperator`,
  :class:`~matkron.SumOfKronOperator` and :class:`~matkron.KronSumOperator`, and
  :func:`matkron.kron_matvec`): x is viewed as the C-ordered tensor of shape (q₁, …, q_k)
  (``np.kron(A, B) @ x`` applies A along the first axis, B along the second), the
  factors whose modes lie whole inside a block are applied blockwise, the tensor is
  rechunked all-to-all so that the remaining modes are whole, and those are applied; the
  pattern of the pencil decomposition of distributed FFTs. No task holds more than about
  one chunk of x (or one mode, if a single mode is longer than a chunk).
"""

import math
import uuid

import numpy as np

from ._factors import Identity
from ._validation import check_rows

__all__ = ["columns", "product", "solve"]


# -- BLAS threads ---------------------------------------------------------------------------
#
# BLAS threads cannot be pinned from inside a task: OpenBLAS (0.3.30, pthreads, as
# measured) ignores openblas_set_num_threads called from a thread other than the main
# one, and Dask runs tasks on pool threads. They are pinned where the processes start
# instead: ``distributed``'s nanny starts each worker with OPENBLAS_NUM_THREADS =
# OMP_NUM_THREADS = MKL_NUM_THREADS = 1 (its ``distributed.nanny.pre-spawn-environ``
# setting), so n_workers × threads_per_worker
# ≤ cores keeps BLAS within the cores; with the threaded scheduler in one process, compute
# under ``threadpoolctl.threadpool_limits(1, user_api="blas")`` (set on the main thread, it
# holds for the pool threads). See the README, "Beyond one machine".


# -- tasks (module-level functions: they pickle by name) ----------------------------------


def _columns_task(op, method, block):
    """``op.<method>(block)`` for one block of whole columns."""
    if method == "_product":
        return op._product(np.asarray(block))
    return getattr(op, method)(np.asarray(block))


def _modes_task(op, block, t, modes, with_coeff):
    """Apply the factors of term `t` along the axes `modes` (whole in `block`) of a tensor
    block, and the term's coefficient if `with_coeff` (op's ``_modes_product``)."""
    return op._modes_product(np.asarray(block), t, modes, with_coeff)


# -- graph construction ---------------------------------------------------------------------


def _embed(op):
    """The operator as one key of a graph: a ``dask.delayed`` that every task references.

    The key is new for each call (a UUID), so the operator is never hashed (tokenizing
    would pickle all of it) and two operators never share a key.
    """
    import dask

    return dask.delayed(op, name=f"matkron-operator-{uuid.uuid4().hex}", pure=True)


def _probe_dtype(op, method, rows, dtype):
    """The result dtype and row count of ``op.<method>`` on an operand of `dtype`, from a
    product with zero columns: the NumPy path decides (and raises its errors now, not at
    compute time); no data is read."""
    fn = op._product if method == "_product" else getattr(op, method)
    out = fn(np.zeros((rows, 0), dtype=dtype))
    return out.dtype, out.shape[0]


def columns(op, X, method="_product", label="matmat"):
    """``op.<method>`` of a 2-D Dask array, column block by column block.

    Rows are rechunked into one chunk; if they were split, the column chunks are resized
    so that a block holds about as many entries as the largest block of `X` did. Returns a
    lazy Dask array chunked as the rechunked `X` along the columns, with the result's rows
    in one chunk.
    """
    import dask.array as da
    from dask.base import tokenize

    dtype, rows = _probe_dtype(op, method, X.shape[0], X.dtype)
    if X.numblocks[0] > 1:
        largest = max(X.chunks[0]) * max(X.chunks[1], default=1)
        width = max(1, largest // max(X.shape[0], 1))
        X = X.rechunk({0: -1, 1: min(width, max(X.shape[1], 1))},
                      block_size_limit=largest * X.dtype.itemsize)
    opd = _embed(op)
    name = f"matkron-{label}-{tokenize(opd.key, method, X.name)}"
    return da.map_blocks(
        _columns_task, opd, method, X, chunks=((rows,), X.chunks[1]),
        meta=np.empty((0, 0), dtype=dtype), name=name,
    )


def _split(n, size):
    """Chunks of at most `size` covering `n` entries."""
    if n == 0:
        return (0,)
    full, rest = divmod(n, size)
    return (size,) * full + ((rest,) if rest else ())


def _block_sizes(dims, whole, target):
    """Block sizes per axis: the axes in `whole` whole, the others filled from the last
    axis so that a block has about `target` entries (at least one index per axis)."""
    budget = max(1, target // math.prod(dims[i] for i in whole))
    sizes = [0] * len(dims)
    for a in reversed(range(len(dims))):
        if a in whole:
            sizes[a] = dims[a]
        elif dims[a] <= budget:
            sizes[a] = dims[a]
            budget //= max(dims[a], 1)
        else:
            sizes[a] = budget
            budget = 1
    return sizes


def _fitting(dims, pending, target):
    """The pending axes to make whole next: smallest first while a block stays within
    `target` entries (always at least one)."""
    chosen, size = [], 1
    for a in sorted(pending, key=lambda a: dims[a]):
        if chosen and size * dims[a] > target:
            break
        chosen.append(a)
        size *= dims[a]
    return set(chosen)


def _contiguous_sizes(dims, target):
    """Block sizes whose blocks are contiguous ranges of the C-ordered tensor: the trailing
    axes that fit in `target` entries whole (at least the last), the axis before them split
    into pieces, the leading axes one index at a time."""
    trailing, size = set(), 1
    for a in reversed(range(len(dims))):
        if trailing and size * dims[a] > target:
            break
        trailing.add(a)
        size *= dims[a]
    return _block_sizes(dims, trailing, target)


def pencil_plan(shapes, identities, target):
    """The passes of a pencil product, without building a graph.

    Parameters
    ----------
    shapes : list of (int, int)
        The factor shapes (p_i, q_i); x is the C-ordered tensor of shape (q_1, …, q_k).
    identities : collection of int
        Factors that are identities (never applied, so never made whole).
    target : int
        The entries of a block (a chunk of x).

    Returns
    -------
    list of (tuple of int, tuple of int)
        One (block sizes, modes applied) pair per blockwise pass. The first pass reads x
        in contiguous blocks (the reshape moves no data); each later pass follows an
        all-to-all rechunk; after the last, one more rechunk back to contiguous blocks
        (``final``, the second value) unless the blocks already are.
    tuple of int
        The contiguous block sizes of the result.
    """
    k = len(shapes)
    dims = [q for _, q in shapes]
    pending = set(range(k)) - set(identities)
    sizes = tuple(_contiguous_sizes(dims, target))
    passes = []
    while True:
        modes = tuple(sorted(a for a in pending if sizes[a] == dims[a]))
        if modes or not pending:
            passes.append((sizes, modes))
            for a in modes:
                dims[a] = shapes[a][0]
            sizes = tuple(dims[a] if a in modes else sizes[a] for a in range(k))
            pending -= set(modes)
        if not pending:
            break
        sizes = tuple(_block_sizes(dims, _fitting(dims, pending, target), target))
    return passes, tuple(_contiguous_sizes(dims, target))


def _pencil_term(opd, x, t, shapes, identities, target, dtype):
    """Term `t` (factor `shapes`, `identities` skipped) applied to the 1-D Dask x."""
    import dask.array as da
    from dask.base import tokenize

    k = len(shapes)
    passes, final = pencil_plan(shapes, identities, target)
    dims = [q for _, q in shapes]
    # Dask plans a rechunk through intermediate blocks of up to its array.chunk-size
    # (128 MiB by default): more than a small worker holds beside its input. Bound them
    # by the blocks themselves.
    limit = target * max(x.dtype.itemsize, np.dtype(dtype).itemsize)
    # Phase one reads x as it lies in contiguous blocks, so the reshape moves no data:
    # the leading axes one index at a time, one axis cut into pieces, the rest whole.
    sizes = passes[0][0]
    split = max(next(a for a in range(k + 1)
                     if all(sizes[b] == dims[b] for b in range(a, k))) - 1, 0)
    flat = _split(dims[split], sizes[split]) * math.prod(dims[:split])
    stride = math.prod(dims[split + 1:])
    T = x.rechunk((tuple(p * stride for p in flat),), block_size_limit=limit)
    T = T.reshape(tuple(dims))
    for i, (sizes, modes) in enumerate(passes):
        # A no-op for the first pass.
        T = T.rechunk(_chunks(dims, sizes), block_size_limit=limit)
        chunks = tuple((shapes[a][0],) if a in modes else T.chunks[a] for a in range(k))
        name = f"matkron-modes-{tokenize(opd.key, t, modes, i, T.name)}"
        # The coefficient (and the cast to the result dtype) in the first pass.
        T = da.map_blocks(_modes_task, opd, T, t, modes, i == 0, chunks=chunks,
                          meta=np.empty((0,) * k, dtype=dtype), name=name)
        for a in modes:
            dims[a] = shapes[a][0]
    # Back to contiguous ranges of the vector (a no-op when the blocks already are).
    return T.rechunk(_chunks(dims, final), block_size_limit=limit).reshape(-1)


def _chunks(dims, sizes):
    return tuple(_split(n, s) for n, s in zip(dims, sizes))


def _pencils(op, x):
    """op @ x for a 1-D Dask x and a KronOperator or a sum of Kronecker products."""
    import dask.array as da

    dtype, rows = _probe_dtype(op, "_product", x.shape[0], x.dtype)
    if hasattr(op, "_kron_factors"):
        terms = [(op.coeff, op._kron_factors)]
    else:
        terms = list(op._terms)
    if not terms or rows == 0 or x.shape[0] == 0:
        return da.zeros((rows,), dtype=dtype, chunks=max(x.chunks[0], default=rows) or 1)
    target = max(max(x.chunks[0]), 1)
    opd = _embed(op)
    total = None
    for t, (_, factors) in enumerate(terms):
        shapes = [f.shape for f in factors]
        identities = [i for i, f in enumerate(factors) if isinstance(f, Identity)]
        y = _pencil_term(opd, x, t, shapes, identities, target, dtype)
        total = y if total is None else total + y
    return total


def product(op, x, name="x"):
    """op @ x for a 1-D or 2-D Dask array x (a lazy Dask array)."""
    check_rows(x, op.shape[1], name, f"the number of columns of the {op.shape[0]}x"
               f"{op.shape[1]} operator")
    if x.ndim == 2:
        return columns(op, x)
    if hasattr(op, "_kron_factors") or hasattr(op, "_terms"):
        return _pencils(op, x)
    return columns(op, x[:, None], label="matvec")[:, 0]


def solve(op, b):
    """op.solve(b) for a 1-D or 2-D Dask array b, column block by column block (a 1-D b is
    one block: it must fit one worker)."""
    check_rows(b, op.shape[0], "b", f"the number of rows of the {op.shape[0]}x"
               f"{op.shape[1]} operator")
    if b.ndim == 2:
        return columns(op, b, "solve", "solve")
    return columns(op, b[:, None], "solve", "solve")[:, 0]
