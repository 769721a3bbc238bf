"""Matrix chains: the optimal parenthesization (chain_order, ChainPlan) and multi_dot."""

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _chain_cy
from ._hu_shing import hu_shing
from ._validation import (
    _BLAS_DTYPES,
    as_list,
    blas_readable,
    check_blas_size,
    check_choice,
    check_length,
    check_ndim,
    check_nonempty,
    check_out,
    count,
    shape_error,
)
from ._workspace import workspace

__all__ = ["ChainPlan", "chain_order", "multi_dot"]

# The largest dimension chain_order accepts.
DIM_MAX = 2**63 - 1

# Upper limits (exclusive) of the cost types of the compiled DP: every value it computes is
# at most (k - 1) max(d)³, and the narrowest type that holds that bound is used.
_TIERS = ((2**53, 0), (2**64, 1), (2**128, 2), (2**256, 3))

_METHODS = ("dp", "hu-shing")

# multi_dot plans longer chains with Hu–Shing: the DP's k × k table grows large (8 MB at
# k = 1000) and its time cubic.
MULTI_DOT_DP_MAX_K = 1000


def _check_dims(dims):
    """`dims` as a tuple of Python ints, or a TypeError (not an integer) or ValueError
    (negative, too large, too few) naming the first bad entry."""
    if isinstance(dims, np.ndarray):
        check_ndim(dims, "dims", 1)
        dims = dims.tolist()
    else:
        dims = as_list(dims, "dims", "integers")
    # TypeError for a non-integer, ValueError for a negative or too large one, as everywhere.
    checked = tuple(count(d, f"dims[{i}]", maximum=DIM_MAX) for i, d in enumerate(dims))
    check_nonempty(checked, "dims", "entries, d_0 ... d_k for k >= 1 matrices", minimum=2)
    return checked


def _dp_python(dims):
    """The DP with exact Python integers: the same costs, splits and step order as the
    compiled one. Used only for costs of 64 bits or more where the compiler has no 128-bit
    integer type."""
    k = len(dims) - 1
    m = [[0] * k for _ in range(k)]
    for j in range(1, k):
        for i in range(j - 1, -1, -1):
            dij = dims[i] * dims[j + 1]
            m[i][j] = min(m[i][s] + m[s + 1][j] + dij * dims[s + 1] for s in range(i, j))
    steps = []
    stack = [(0, k - 1)]
    while stack:
        i, j = stack.pop()
        if i == j:
            continue
        dij = dims[i] * dims[j + 1]
        s = next(
            s for s in range(i, j) if m[i][s] + m[s + 1][j] + dij * dims[s + 1] == m[i][j]
        )
        steps.append((i, s, j))
        stack.append((i, s))
        stack.append((s + 1, j))
    steps.reverse()
    return m[0][k - 1], np.array(steps, dtype=np.intp).reshape(k - 1, 3)


def _dp(dims):
    """Optimal cost and post-order steps, in the narrowest exact cost type."""
    k = len(dims) - 1
    bound = (k - 1) * max(dims) ** 3
    for limit, tier in _TIERS:
        if bound < limit and (tier < 2 or _chain_cy.HAVE_INT128):
            return _chain_cy.dp_plan(dims, tier)
    return _dp_python(dims)


def chain_order(
    dims: Sequence[int], *, method: Literal["dp", "hu-shing"] = "dp"
) -> "ChainPlan":
    """The cheapest parenthesization of the matrix chain M0 M1 … M(k-1).

    Parameters
    ----------
    dims : sequence of int
        The dimensions d_0, …, d_k: matrix Mi has shape (d_i, d_{i+1}). At least two
        entries (k >= 1 matrices), each an integer in [0, 2**63 - 1]; a zero dimension
        makes every product through it free.
    method : {"dp", "hu-shing"}, optional
        The algorithm: "dp" is the classic O(k³) dynamic program, in compiled code;
        "hu-shing" is the near-linear algorithm of Hu and Shing (see Notes), for long
        chains. Both find the optimal cost; among orders of equal cost they may choose
        different ones.

    Returns
    -------
    ChainPlan
        The optimal order, its exact cost, and the costs of the plain left-to-right
        (reverse mode) and right-to-left (forward mode) orders.

    Raises
    ------
    ValueError
        If `dims` has fewer than two entries, or an entry is negative or exceeds
        2**63 - 1 (the message names its 0-based position), or `method` is unknown.
    TypeError
        If `dims` is not a sequence, or an entry is not an integer (a bool is not).

    See Also
    --------
    multi_dot : multiply a chain of arrays in its optimal order.

    Notes
    -----
    Multiplying a p × q by a q × r matrix costs p q r scalar multiplications. With
    m[i][j] the least cost of M_i … M_j, the dynamic program computes

        m[i][j] = min over i <= s < j of  m[i][s] + m[s+1][j] + d_i d_{s+1} d_{j+1}

    in O(k³) time and O(k²) memory (a k × k table: 8 MB at k = 1000), without the GIL;
    for chains longer than a few thousand matrices use ``method="hu-shing"``. The table is
    stored both row- and column-wise so that the inner loop reads contiguous memory. Among
    splits of equal cost the smallest s is taken at every node, so the plan is
    deterministic. Costs are exact
    integers: the DP runs in doubles while every value is below 2**53, then in 64-, 128-
    and 256-bit unsigned integers (enough for any dimension below 2**63).

    ``method="hu-shing"`` views the chain as a convex polygon with vertex weights d_0 … d_k,
    whose triangulations are the parenthesizations, and uses the structure theorem of
    Hu & Shing (SIAM J. Comput. 1982 and 1984; the gap in their proof closed by Schwartz &
    Weiss, SIAM J. Comput. 2019): some optimal triangulation uses only "potential h-arcs"
    (arcs whose vertices on one side all exceed both ends), each face fanned out from its
    smallest vertex. Which arcs to keep is decided bottom-up with piecewise-linear cost
    functions of the enclosing face's smallest weight, merged as heaps of breakpoints:
    O(k log² k) time and O(k) memory, in exact Python integers (about 1 s for
    k = 100 000). (The Knuth–Yao restriction of the DP's splits does not apply to this
    problem.)

    For a chain of Jacobians f' = a' b' c' of f = a ∘ b ∘ c, multiplying left to right is
    reverse mode (backpropagation) and right to left is forward mode; the optimal order is
    never costlier than either.

    Examples
    --------
    >>> import matkron
    >>> plan = matkron.chain_order([10, 100, 5, 50])
    >>> plan.cost
    7500
    >>> plan.tree
    ((0, 1), 2)
    >>> print(plan)
    ((M0 M1) M2)
    >>> plan.left_to_right_cost, plan.right_to_left_cost
    (7500, 75000)
    >>> matkron.chain_order([10, 100, 5, 50], method="hu-shing").cost
    7500
    """
    dims = _check_dims(dims)
    check_choice(method, "method", _METHODS)
    cost, steps = _dp(dims) if method == "dp" else hu_shing(dims)
    return ChainPlan(dims, cost, steps, method)


class ChainPlan:
    """An order in which to multiply a matrix chain, with its cost.

    Create it with :func:`matkron.chain_order`.

    Attributes
    ----------
    dims : tuple of int
        The chain dimensions d_0, …, d_k.
    k : int
        The number of matrices.
    cost : int
        The number of scalar multiplications of the planned order (exact).
    method : str
        The algorithm that made the plan.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> plan = matkron.chain_order([2, 3, 4, 1])
    >>> print(plan)
    (M0 (M1 M2))
    >>> plan.cost, plan.left_to_right_cost, plan.right_to_left_cost
    (18, 32, 18)
    >>> arrays = [np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 1))]
    >>> plan.execute(arrays)
    array([[12.],
           [12.]])
    """

    __slots__ = ("_cost", "_dims", "_method", "_steps")

    def __init__(self, dims, cost, steps, method):
        self._dims = dims
        self._cost = cost
        self._steps = steps
        self._method = method

    @property
    def dims(self) -> tuple[int, ...]:
        """The chain dimensions d_0, …, d_k as a tuple of Python ints: matrix Mi is
        d_i × d_{i+1}.

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([10, 100, 5, 50]).dims
        (10, 100, 5, 50)
        """
        return self._dims

    @property
    def k(self) -> int:
        """The number of matrices in the chain, ``len(dims) - 1``.

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([10, 100, 5, 50]).k
        3
        """
        return len(self._dims) - 1

    @property
    def cost(self) -> int:
        """The number of scalar multiplications of the planned order: the optimum, as an
        exact Python int (a p × q times q × r product costs p q r).

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([10, 100, 5, 50]).cost  # (M0 M1) M2: 5000 + 2500
        7500
        """
        return self._cost

    @property
    def method(self) -> str:
        """The algorithm that made the plan: ``"dp"`` or ``"hu-shing"``.

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([10, 100, 5, 50], method="hu-shing").method
        'hu-shing'
        """
        return self._method

    @property
    def tree(self) -> Any:
        """The parenthesization as nested 2-tuples of matrix indices; ``0`` when k = 1.

        For example ``((0, 1), 2)`` is (M0 M1) M2. The nesting is as deep as the tree
        (up to k - 1), too deep for Python's recursive ``repr`` and ``==`` on very long
        chains; ``str(plan)`` is built without recursion.

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([2, 3, 4, 1]).tree
        (0, (1, 2))
        >>> matkron.chain_order([2, 3]).tree
        0
        """
        built = list(range(self.k))
        for i, s, _ in self._steps.tolist():
            built[i] = (built[i], built[s + 1])
        return built[0]

    @property
    def left_to_right_cost(self) -> int:
        """The cost of ((M0 M1) M2) …: reverse mode for a chain of Jacobians (exact).

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([2, 3, 4, 1]).left_to_right_cost  # 2*3*4 + 2*4*1
        32
        """
        d = self._dims
        return d[0] * sum(d[t] * d[t + 1] for t in range(1, len(d) - 1))

    @property
    def right_to_left_cost(self) -> int:
        """The cost of … (M(k-3) (M(k-2) M(k-1))): forward mode for Jacobians (exact).

        Examples
        --------
        >>> import matkron
        >>> matkron.chain_order([2, 3, 4, 1]).right_to_left_cost  # 3*4*1 + 2*3*1
        18
        """
        d = self._dims
        return d[-1] * sum(d[t] * d[t + 1] for t in range(len(d) - 2))

    def __str__(self) -> str:
        k = self.k
        opens = [0] * k
        closes = [0] * k
        for i, _, j in self._steps.tolist():
            opens[i] += 1
            closes[j] += 1
        return " ".join(
            "(" * o + f"M{t}" + ")" * c for t, (o, c) in enumerate(zip(opens, closes))
        )

    def __repr__(self) -> str:
        if self.k <= 16:
            return f"<ChainPlan {self} cost={self._cost}>"
        return f"<ChainPlan k={self.k} cost={self._cost}>"

    def execute(
        self, arrays: Sequence[ArrayLike], *, out: NDArray[Any] | None = None
    ) -> NDArray[Any]:
        """Multiply the chain in the planned order.

        Parameters
        ----------
        arrays : sequence of array_like
            k arrays matching :attr:`dims`: array i of shape (d_i, d_{i+1}); the first may
            be 1-D of length d_1 when d_0 = 1 (a row vector) and the last 1-D of length
            d_{k-1} when d_k = 1 (a column vector), as in :func:`multi_dot`.
        out : ndarray, optional
            Where to write the result: its exact shape and dtype, writeable, any memory
            layout, not overlapping an input.

        Returns
        -------
        ndarray or scalar
            The product, as :func:`multi_dot` returns it; `out` when given.

        Raises
        ------
        ValueError
            If the number of arrays or an array's shape does not match :attr:`dims` (the
            message names its 0-based position), or `out` is unsuitable.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> plan = matkron.chain_order([1, 3, 3, 1])
        >>> plan.execute([np.ones(3), np.eye(3), np.arange(3.0)])
        np.float64(3.0)
        """
        arrays = _as_list(arrays)
        check_length(arrays, "arrays", self.k, f"one per matrix of the plan (dims {self._dims})")
        arrs = [np.asarray(a) for a in arrays]
        mats = _as_matrices(arrs)
        d = self._dims
        for i, m in enumerate(mats):
            if m.shape != (d[i], d[i + 1]):
                raise shape_error(f"arrays[{i}]", arrs[i].shape,
                                  f"({d[i]}, {d[i + 1]}) = (dims[{i}], dims[{i + 1}])")
        return _product(self._steps, arrs, mats, out)


def _as_list(arrays):
    return as_list(arrays, "arrays", "arrays", stacked=3)


def _as_matrices(arrs):
    """2-D views of the chain: a 1-D first array as a row, a 1-D last one as a column."""
    k = len(arrs)
    mats = []
    for i, a in enumerate(arrs):
        if a.ndim == 1 and i == 0:
            a = a[np.newaxis, :]
        elif a.ndim == 1 and i == k - 1:
            a = a[:, np.newaxis]
        elif a.ndim != 2:
            ends = "; only the first and the last may be 1-D" if a.ndim == 1 else ""
            # LinAlgError is a ValueError, and what numpy.linalg.multi_dot raises here.
            raise np.linalg.LinAlgError(
                f"arrays[{i}] is {a.ndim}-dimensional (shape {a.shape}); the arrays must "
                f"be two-dimensional{ends}"
            )
        mats.append(a)
    return mats


def _check_chain(arrs, mats):
    for i in range(len(mats) - 1):
        cols, rows = mats[i].shape[1], mats[i + 1].shape[0]
        if cols != rows:
            raise ValueError(
                f"arrays[{i}] of shape {arrs[i].shape} and arrays[{i + 1}] of shape "
                f"{arrs[i + 1].shape} are not aligned: {cols} (dim {arrs[i].ndim - 1}) != "
                f"{rows} (dim 0)"
            )


def _result_shape(arrs, rows, cols):
    first, last = arrs[0].ndim == 1, arrs[-1].ndim == 1 and len(arrs) > 1
    return tuple(n for n, vec in ((rows, first), (cols, last)) if not vec)


def _blas_writable(a):
    """Whether BLAS can write the 2-D array `a` in place: writeable, with the strides that
    :func:`blas_readable` keeps (one unit, the other a multiple of the itemsize, at least
    the other dimension and within the BLAS integer)."""
    return a.flags.writeable and blas_readable(a, a.dtype) is a


def _multiply_blas(steps, mats, dtype, out2d):
    """out2d = M0 … M(k-1) in the compiled kernel (k >= 2)."""
    dims = [m.shape[0] for m in mats] + [mats[-1].shape[1]]
    if out2d.size == 0:
        return
    if 0 in dims:
        out2d.fill(0)
        return
    for i, d in enumerate(dims):
        check_blas_size(d, f"dims[{i}]")
    mats = tuple(blas_readable(m, dtype) for m in mats)
    target = out2d if _blas_writable(out2d) else np.empty(out2d.shape, dtype=dtype)
    need = _chain_cy.execute(mats, steps, target, workspace())
    if need:
        _chain_cy.execute(mats, steps, target, workspace(need))
    if target is not out2d:
        out2d[...] = target


def _multiply_numpy(steps, mats):
    """M0 … M(k-1) by numpy.dot in the planned order, for dtypes BLAS does not serve.

    Each product promotes its own two operands, as in numpy.linalg.multi_dot (whose order
    the plan shares, ties included): bool times bool is bool, int8 times int8 wraps around
    in int8, float16 rounds to float16, whatever the later factors.
    """
    vals = list(mats)
    for i, s, _ in steps.tolist():
        vals[i] = np.dot(vals[i], vals[s + 1])
    return vals[0]


def _reduce_exact(steps, mats):
    """Multiply out, with numpy.dot in the planned order, every sub-chain whose arrays all
    have dtypes BLAS does not serve (bool, integers, float16), so that it promotes, wraps
    and rounds as numpy's does; the rest of the chain goes to BLAS.

    Returns the remaining chain (one array per sub-chain left) and its steps, the planned
    tree with those subtrees as leaves.
    """
    k = len(mats)
    vals = list(mats)
    # exact[i]: the subtree whose value is in vals[i] has no array of a BLAS dtype.
    exact = [m.dtype.newbyteorder("=") not in _BLAS_DTYPES for m in mats]
    if sum(exact) < 2:
        return vals, steps
    alive = [True] * k
    kept = []
    for i, s, j in steps.tolist():
        if exact[i] and exact[s + 1]:
            vals[i] = np.dot(vals[i], vals[s + 1])
            alive[s + 1] = False
        else:
            exact[i] = False
            kept.append((i, s, j))
    group = np.cumsum(alive) - 1  # the remaining leaf that holds original index t
    remaining = [v for v, a in zip(vals, alive) if a]
    new_steps = np.array([(group[i], group[s], group[j]) for i, s, j in kept], dtype=np.intp)
    return remaining, new_steps.reshape(len(kept), 3)


def _product(steps, arrs, mats, out):
    """The chain product with numpy.linalg.multi_dot's result conventions."""
    k = len(mats)
    dtype = np.result_type(*arrs)
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")  # as numpy.dot; BLAS reads native order only
    rows, cols = mats[0].shape[0], mats[-1].shape[1]
    shape = _result_shape(arrs, rows, cols)
    compat = False
    if out is not None:
        # numpy.linalg.multi_dot takes the 2-D result of a chain with a 1-D end as `out`.
        compat = (
            isinstance(out, np.ndarray) and len(shape) < 2 and k >= 3
            and out.shape == (rows, cols)
        )
        named = [(f"arrays[{i}]", a) for i, a in enumerate(arrs)]
        check_out(out, (rows, cols) if compat else shape, dtype, named)
        out2d = out if compat else out.reshape(rows, cols)
    if dtype in _BLAS_DTYPES:
        if out is None:
            out2d = np.empty((rows, cols), dtype=dtype)
        mats, steps = _reduce_exact(steps, mats)
        if len(mats) == 1:
            out2d[...] = mats[0]
        else:
            _multiply_blas(steps, mats, dtype, out2d)
        result = out2d
    else:
        result = _multiply_numpy(steps, mats) if k > 1 else np.array(mats[0], dtype)
        if out is not None:
            out2d[...] = result
            result = out2d
    if out is not None and not compat:
        return out
    if not shape:
        return result[0, 0]
    return result.reshape(shape)


def multi_dot(
    arrays: Sequence[ArrayLike], *, out: NDArray[Any] | None = None
) -> NDArray[Any]:
    """Multiply two or more arrays in the cheapest order: a drop-in for numpy's multi_dot.

    Parameters
    ----------
    arrays : sequence of array_like
        Two or more arrays. If the first is 1-D it is treated as a row vector, if the last
        is 1-D as a column vector; the others must be 2-D.
    out : ndarray, optional
        Where to write the result: its exact shape and the result dtype, writeable, any
        memory layout, not overlapping an input. (The 2-D shape that
        ``numpy.linalg.multi_dot`` requires when an end is 1-D is accepted too.)

    Returns
    -------
    ndarray or scalar
        The product, as ``numpy.linalg.multi_dot`` returns it: 2-D, 1-D when one end is
        1-D, a scalar when both are; `out` when given.

    Raises
    ------
    ValueError
        If fewer than two arrays are given, or adjacent shapes do not match (naming both
        positions and shapes), or `out` is unsuitable.
    numpy.linalg.LinAlgError
        (a ValueError) if an array other than the first or the last is not 2-D.

    See Also
    --------
    chain_order : the optimal order and its cost, without multiplying.
    numpy.linalg.multi_dot

    Notes
    -----
    The order is the one of :func:`chain_order` (by its DP, or by Hu–Shing for chains of
    more than 1000 arrays); up to 1000 arrays it is also the order of
    ``numpy.linalg.multi_dot``, ties included. The result dtype is ``np.result_type`` of
    the arrays, in native byte order (byte-swapped operands are converted). Float32,
    float64, complex64 and complex128 chains run in compiled code: one GEMM per product
    without the GIL, intermediates in a per-thread workspace reused across calls, the
    result written directly. Operands are read through their strides and copied only when
    BLAS cannot read them (neither stride unit, or negative) or when they have another
    dtype than the result. Products of arrays of other dtypes (integers, bool, float16,
    longdouble, object) are computed with ``numpy.dot`` in the planned order, each
    promoting its own two operands as numpy does, so that bool, integer and float16
    sub-chains wrap and round exactly as in numpy (and a chain of such arrays alone has
    the dtype numpy gives it). Two arrays of which one has neither one
    nor two dimensions are passed to ``numpy.dot``, as numpy does. Array subclasses (such
    as ``numpy.matrix``) are multiplied as plain arrays.

    Short chains of small matrices, the common case, skip all Python-level validation:
    the whole call (checks, plan, GEMMs) runs in one compiled function.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.arange(6.0).reshape(2, 3)
    >>> B = np.ones((3, 4))
    >>> x = np.arange(4.0)
    >>> matkron.multi_dot([A, B, x])
    array([18., 72.])
    >>> np.linalg.multi_dot([A, B, x])
    array([18., 72.])
    """
    if out is None:
        result = _chain_cy.multi_dot_fast(arrays)
        if result is not None:
            return result
    arrays = _as_list(arrays)
    check_nonempty(arrays, "arrays", "arrays", minimum=2)
    arrs = [np.asarray(a) for a in arrays]
    if len(arrs) == 2 and (arrs[0].ndim not in (1, 2) or arrs[1].ndim not in (1, 2)):
        return np.dot(arrs[0], arrs[1], out=out)
    mats = _as_matrices(arrs)
    _check_chain(arrs, mats)
    dims = tuple(m.shape[0] for m in mats) + (mats[-1].shape[1],)
    _, steps = _dp(dims) if len(mats) <= MULTI_DOT_DP_MAX_K else hu_shing(dims)
    return _product(steps, arrs, mats, out)
