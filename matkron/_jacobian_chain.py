"""Products of Jacobians in the cheapest mode: jacobian_chain, JacobianChainOperator and
JacobianChainPlan."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

from ._linop import ProductOperator
from ._validation import (
    as_array,
    as_list,
    check_blas_dims,
    check_choice,
    check_length,
    check_nonempty,
    check_number,
    check_rows,
    count,
    result_dtype,
    shape_error,
)

__all__ = ["JacobianChainOperator", "JacobianChainPlan", "jacobian_chain"]

MODES = ("auto", "forward", "reverse")

# Plans of JacobianChainPlan.__repr__ print the bracketing up to this many Jacobians.
_REPR_MAX_K = 16

# The kinds of leaves of a chain: a dense array (its own dense form), a SciPy sparse array
# or matrix (dense form by toarray, products in O(nnz)), a LinearOperator (matrix-free).
_ARRAY, _SPARSE, _OPERATOR = "array", "sparse", "operator"


# ---------------------------------------------------------------------------------------
# Validation


def _cost_value(value, name):
    """A cost hint as a non-negative finite Python int or float, or TypeError/ValueError
    naming `name`."""
    check_number(value, name, real=True, finite=True, nonnegative=True)
    if isinstance(value, (numbers.Integral, np.integer)):
        return operator.index(value)
    value = float(value)
    return int(value) if value.is_integer() else value


def _has_adjoint(op):
    """Whether the LinearOperator `op` can apply its adjoint (rmatvec/rmatmat).

    SciPy's base class raises NotImplementedError unless a subclass defines ``_adjoint``,
    ``_rmatvec`` or ``_rmatmat``; an operator made by ``LinearOperator(shape, matvec)``
    without ``rmatvec`` or ``rmatmat`` (SciPy's ``_CustomLinearOperator``) raises too.
    """
    cls = type(op)
    if (cls._adjoint is LinearOperator._adjoint and cls._rmatvec is LinearOperator._rmatvec
            and cls._rmatmat is LinearOperator._rmatmat):
        return False
    custom = ("_CustomLinearOperator__rmatvec_impl", "_CustomLinearOperator__rmatmat_impl")
    if all(hasattr(op, a) for a in custom):
        return any(getattr(op, a) is not None for a in custom)
    return True


def _check_op(op, i):
    """(kind, op as kept, shape, dtype) of ops[i], or TypeError/ValueError naming it."""
    name = f"ops[{i}]"
    if isinstance(op, LinearOperator):
        kind, shape = _OPERATOR, tuple(op.shape)
        dtype = np.dtype(np.float64) if op.dtype is None else np.dtype(op.dtype)
    elif scipy.sparse.issparse(op):
        kind, shape, dtype = _SPARSE, tuple(op.shape), op.dtype
    else:
        op = as_array(op, name)
        kind, shape, dtype = _ARRAY, op.shape, op.dtype
    if len(shape) != 2:
        raise shape_error(name, shape, "a 2-D Jacobian (rows, columns): a LinearOperator, "
                          "an array or a SciPy sparse array")
    if dtype.kind not in "biufc":
        raise TypeError(f"{name} has dtype {dtype}; expected a numeric Jacobian")
    check_blas_dims(shape, name)  # before any block of it is cast or formed
    return kind, op, shape, dtype


def _default_costs(kind, op, shape, i):
    """(matvec cost, rmatvec cost) of ops[i] without a hint (see jacobian_chain)."""
    rows, cols = shape
    if kind == _ARRAY:
        return rows * cols, rows * cols
    if kind == _SPARSE:
        return op.nnz, op.nnz
    c = getattr(op, "matvec_cost", None)
    c = rows * cols if c is None else _cost_value(c, f"ops[{i}].matvec_cost")
    r = getattr(op, "rmatvec_cost", None)
    r = c if r is None else _cost_value(r, f"ops[{i}].rmatvec_cost")
    return c, r


def _hinted_costs(hint, default, i):
    """(matvec cost, rmatvec cost) of ops[i] from costs[i]: None, a number or a pair."""
    name = f"costs[{i}]"
    if hint is None:
        return default
    if isinstance(hint, (tuple, list)):
        if len(hint) != 2:
            raise ValueError(
                f"{name} must be a number or a pair (matvec cost, rmatvec cost); got a "
                f"sequence of length {len(hint)}"
            )
        c = _cost_value(hint[0], f"{name}[0]")
        r = math.inf if hint[1] is None else _cost_value(hint[1], f"{name}[1]")
        return c, r
    c = _cost_value(hint, name)
    return c, c


def _check_chain(ops, costs):
    """The validated chain: kinds, ops, dims n_0 … n_k, matvec and rmatvec costs, dtype."""
    ops = as_list(ops, "ops", "Jacobians (LinearOperators or arrays), ops[0] applied first")
    check_nonempty(ops, "ops", "Jacobian")
    checked = [_check_op(op, i) for i, op in enumerate(ops)]
    dims = [checked[0][2][1]]
    for i, (_, _, shape, _) in enumerate(checked):
        if shape[1] != dims[-1]:
            prev = checked[i - 1][2]
            raise shape_error(
                f"ops[{i}]", shape, f"({shape[0]}, {dims[-1]}) or any (rows, {dims[-1]}): its "
                f"columns must match the rows of ops[{i - 1}] of shape {prev}, the Jacobian "
                "applied before it"
            )
        dims.append(shape[0])
    k = len(ops)
    if costs is None:
        costs = [None] * k
    else:
        costs = as_list(costs, "costs", f"{k} hints (None, a number or a pair)", stacked=1)
    check_length(costs, "costs", k, "one per Jacobian in ops")
    kinds, kept, c, r = [], [], [], []
    for i, ((kind, op, shape, _), hint) in enumerate(zip(checked, costs)):
        matvec, rmatvec = _hinted_costs(hint, _default_costs(kind, op, shape, i), i)
        if kind == _OPERATOR and not _has_adjoint(op):
            rmatvec = math.inf
        kinds.append(kind)
        kept.append(op)
        c.append(matvec)
        r.append(rmatvec)
    dtype = result_dtype(*(dt for _, _, _, dt in checked))
    return kinds, kept, tuple(dims), c, r, dtype


# ---------------------------------------------------------------------------------------
# The dynamic program


def _times(count, cost):
    """count × cost, 0 when count is 0 (also for an unavailable mode, cost inf)."""
    return 0 if count == 0 else count * cost


def _optimal_steps(n, c, r, given):
    """The cheapest way to form the dense product of the chain of L leaves.

    Leaf t maps n[t] to n[t + 1], applies to a vector at cost c[t] (matvec) and r[t]
    (rmatvec), and is its own dense matrix when given[t]. Returns the steps in execution
    order (see _cost_of); among options of equal cost an adjoint step is taken first, then
    a tangent step, then the product of two dense blocks with the smallest split.
    """
    L = len(c)
    best = [[0] * L for _ in range(L)]
    how = [[None] * L for _ in range(L)]
    for i in range(L):
        if given[i]:
            best[i][i], how[i][i] = 0, ("given",)
        else:
            options = [(_times(n[i + 1], r[i]), ("adjoint",)),
                       (_times(n[i], c[i]), ("tangent",))]
            best[i][i], how[i][i] = min(options, key=lambda o: o[0])
    for length in range(2, L + 1):
        for i in range(L - length + 1):
            j = i + length - 1
            options = [(best[i + 1][j] + _times(n[j + 1], r[i]), ("adjoint",)),
                       (best[i][j - 1] + _times(n[i], c[j]), ("tangent",))]
            nij = n[i] * n[j + 1]
            options += [(best[i][s] + best[s + 1][j] + nij * n[s + 1], ("gemm", s))
                        for s in range(i, j)]
            best[i][j], how[i][j] = min(options, key=lambda o: o[0])
    steps = []
    stack = [(0, L - 1)]
    while stack:
        i, j = stack.pop()
        kind = how[i][j]
        if kind[0] == "gemm":
            s = kind[1]
            steps.append(("gemm", i, j, s))
            stack.append((i, s))
            stack.append((s + 1, j))
        else:
            steps.append((kind[0], i, j, None))
            if i < j:
                stack.append((i + 1, j) if kind[0] == "adjoint" else (i, j - 1))
    steps.reverse()
    return steps


def _forward_steps(L, given):
    """Tangent mode: the first leaf (or the first Jacobian applied to an identity), then
    every later one applied to the block."""
    return [("given" if given[0] else "tangent", 0, 0, None)] + [
        ("tangent", 0, j, None) for j in range(1, L)
    ]


def _reverse_steps(L, given):
    """Adjoint mode: the last leaf (or an identity times the last Jacobian), then every
    earlier one applied to the block of rows."""
    return [("given" if given[L - 1] else "adjoint", L - 1, L - 1, None)] + [
        ("adjoint", i, L - 1, None) for i in range(L - 2, -1, -1)
    ]


def _cost_of(steps, n, c, r):
    """The cost of `steps`: vectors per leaf in tangent and adjoint mode, and the
    multiply-adds of products of two dense blocks.

    Steps: ("given", t, t) the leaf's own dense form, free; ("tangent", i, j) the block
    P_ij = J_j P_{i,j-1} (J_i times an identity when i = j): n_i vectors through J_j;
    ("adjoint", i, j) P_ij = P_{i+1,j} J_i (an identity times J_i when i = j): n_{j+1}
    vectors through J_iᴴ; ("gemm", i, j, s) P_ij = P_{s+1,j} P_{i,s}:
    n_{j+1} n_{s+1} n_i multiply-adds.
    """
    tangent = [0] * len(c)
    adjoint = [0] * len(c)
    gemm = 0
    for kind, i, j, s in steps:
        if kind == "tangent":
            tangent[j] += n[i]
        elif kind == "adjoint":
            adjoint[i] += n[j + 1]
        elif kind == "gemm":
            gemm += n[j + 1] * n[s + 1] * n[i]
    total = gemm + sum(_times(a, ct) + _times(b, rt)
                       for a, ct, b, rt in zip(tangent, c, adjoint, r))
    return tangent, adjoint, gemm, total


# ---------------------------------------------------------------------------------------
# The plan


def _fresh(block, leaves):
    """`block`, or a copy of it when it is one of the caller's arrays: an operator may
    write its input."""
    return block.copy() if any(block is leaf for leaf in leaves) else block


class JacobianChainPlan:
    """How a :class:`JacobianChainOperator` forms its product: the bracketing, the mode of
    every step and the costs.

    Made by :func:`jacobian_chain` (the :attr:`JacobianChainOperator.plan` of
    ``todense()``) and :meth:`JacobianChainOperator.product_plan` (the plan of ``J @ X``).
    All costs count multiply-adds: one matvec of ``ops[t]`` costs its cost hint (see
    :func:`jacobian_chain`, Notes), a product of dense p×q and q×r blocks p q r.

    ``str(plan)`` is the bracketing in the written order J_{k-1} ⋯ J_0: a parenthesized
    group is a dense block; a Jacobian's name next to a group is that Jacobian applied to
    it, in tangent mode (``matmat``) when it stands on the left and in adjoint mode
    (``rmatmat``) on the right; ``I`` is an identity seed, ``X`` the operand of a product.
    An array (or a block) next to a group is a matrix product.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.sparse.linalg import aslinearoperator
    >>> import matkron
    >>> ops = [aslinearoperator(np.ones((30, 40))), aslinearoperator(np.ones((1, 30)))]
    >>> plan = matkron.jacobian_chain(ops).plan
    >>> print(plan)
    (I J1) J0
    >>> plan.mode, plan.cost, plan.forward_cost, plan.reverse_cost
    ('reverse', 1230, 49200, 1230)
    >>> plan.applications  # (tangent, adjoint) vectors per Jacobian
    ((0, 1), (0, 1))
    """

    __slots__ = ("_adjoint", "_c", "_columns", "_cost", "_dims", "_forward", "_gemm",
                 "_k", "_r", "_reverse", "_steps", "_tangent")

    def __init__(self, dims, c, r, given, steps, columns=None):
        # dims, c, r and given are of the leaves: with `columns`, leaf 0 is the operand X
        # (n0 × columns) and leaf t + 1 is ops[t].
        L = len(c)
        self._dims = tuple(dims)
        self._c, self._r = tuple(c), tuple(r)
        self._columns = columns
        self._k = L - (columns is not None)
        self._steps = tuple(steps)
        tangent, adjoint, gemm, cost = _cost_of(steps, dims, c, r)
        if columns is not None:
            # Products with X, the dense leaf 0 (only ever on the right of a block).
            gemm += _times(adjoint[0], r[0])
        self._tangent, self._adjoint, self._gemm, self._cost = tangent, adjoint, gemm, cost
        self._forward = _cost_of(_forward_steps(L, given), dims, c, r)[3]
        self._reverse = _cost_of(_reverse_steps(L, given), dims, c, r)[3]

    @property
    def k(self) -> int:
        """The number of Jacobians.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.jacobian_chain([np.ones((3, 2)), np.ones((4, 3))]).plan.k
        2
        """
        return self._k

    @property
    def dims(self) -> tuple:
        """The sizes n_0, …, n_k: ``ops[t]`` maps n_t to n_{t+1} (shape (n_{t+1}, n_t)).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.jacobian_chain([np.ones((3, 2)), np.ones((4, 3))]).plan.dims
        (2, 3, 4)
        """
        return self._dims[1:] if self._columns is not None else self._dims

    @property
    def columns(self) -> int | None:
        """The columns of X for the plan of ``J @ X`` (1 for a vector); None for the plan of
        ``todense()``.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> J = matkron.jacobian_chain([np.ones((3, 2)), np.ones((4, 3))])
        >>> J.plan.columns is None, J.product_plan(5).columns
        (True, 5)
        """
        return self._columns

    @property
    def cost(self) -> int | float:
        """The multiply-adds of the plan: the optimum over all bracketings and modes of the
        cost model (exact when the cost hints are integers).

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.jacobian_chain([np.ones((3, 2)), np.ones((4, 3))]).plan.cost  # 4·3·2
        24
        """
        return self._cost

    @property
    def forward_cost(self) -> int | float:
        """The cost of forward (tangent) mode, right to left: every Jacobian applied in turn
        to the n_0 columns of an identity (to X for ``J @ X``); the first one's own matrix
        is used when it is an array.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import aslinearoperator
        >>> import matkron
        >>> ops = [aslinearoperator(np.ones((30, 40))), aslinearoperator(np.ones((1, 30)))]
        >>> matkron.jacobian_chain(ops).plan.forward_cost  # 40 (30·40 + 1·30)
        49200
        """
        return self._forward

    @property
    def reverse_cost(self) -> int | float:
        """The cost of reverse (adjoint) mode, left to right: every Jacobian's adjoint
        applied in turn to the n_k rows of an identity (the last one's own matrix when it is
        an array), for ``J @ X`` then times X. ``math.inf`` if a Jacobian has no adjoint.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import aslinearoperator
        >>> import matkron
        >>> ops = [aslinearoperator(np.ones((30, 40))), aslinearoperator(np.ones((1, 30)))]
        >>> matkron.jacobian_chain(ops).plan.reverse_cost  # 1 (30·40 + 1·30)
        1230
        """
        return self._reverse

    @property
    def gemm_cost(self) -> int:
        """The multiply-adds of the plan's products of two dense blocks (products with an
        array applied as a Jacobian are counted in :attr:`applications` instead); for
        ``J @ X`` this includes the products with X.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import aslinearoperator
        >>> import matkron
        >>> ops = [aslinearoperator(np.ones((3, 2))), aslinearoperator(np.ones((3, 3)))]
        >>> J = matkron.jacobian_chain(ops)
        >>> J.plan.gemm_cost, J.product_plan(1).gemm_cost
        (0, 0)
        """
        return self._gemm

    @property
    def applications(self) -> tuple:
        """Per Jacobian, the number of vectors it is applied to in tangent mode (columns
        through ``matmat``) and in adjoint mode (through ``rmatmat``), as pairs.

        The plan's cost is Σ_t (tangent_t · matvec cost_t + adjoint_t · rmatvec cost_t)
        + :attr:`gemm_cost`.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import aslinearoperator
        >>> import matkron
        >>> ops = [aslinearoperator(np.ones((3, 2))), aslinearoperator(np.ones((3, 3)))]
        >>> matkron.jacobian_chain(ops).plan.applications  # J1 (J0 I): 2 columns each
        ((2, 0), (2, 0))
        """
        skip = self._columns is not None
        return tuple(zip(self._tangent[skip:], self._adjoint[skip:]))

    @property
    def mode(self) -> str:
        """``"reverse"`` when every block the plan computes ends with the last Jacobian
        (blocks of n_k rows: the left-to-right bracketing, seeded by the last Jacobian),
        ``"forward"`` when every one starts with the first (blocks of n_0 columns, or of the
        columns of X: right to left), ``"mixed"`` otherwise. Arrays used as they are do not
        count as computed; a plan that is both (one Jacobian) reports ``"reverse"``.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.jacobian_chain([np.ones((3, 2)), np.ones((4, 3))]).plan.mode
        'reverse'
        >>> ops = [np.ones((3, 2)), np.ones((4, 3)), np.ones((5, 4))]
        >>> matkron.jacobian_chain(ops, mode="forward").plan.mode
        'forward'
        >>> ops = [np.ones((9, 8)), np.ones((1, 9)), np.ones((9, 1)), np.ones((8, 9))]
        >>> print(matkron.jacobian_chain(ops).plan)
        (J3 J2) (J1 J0)
        >>> matkron.jacobian_chain(ops).plan.mode
        'mixed'
        """
        last = len(self._c) - 1
        computed = [(i, j) for kind, i, j, _ in self._steps if kind != "given"]
        if all(j == last for _, j in computed):
            return "reverse"
        if all(i == 0 for i, _ in computed):
            return "forward"
        return "mixed"

    def _name(self, t):
        if self._columns is None:
            return f"J{t}"
        return "X" if t == 0 else f"J{t - 1}"

    def __str__(self) -> str:
        text = {}
        for kind, i, j, s in self._steps:
            if kind == "given":
                text[i, j] = (self._name(i), False)
                continue
            if kind == "tangent":
                parts = (self._name(j), "I" if i == j else _group(text.pop((i, j - 1))))
            elif kind == "adjoint":
                parts = ("I" if i == j else _group(text.pop((i + 1, j))), self._name(i))
            else:
                parts = (_group(text.pop((s + 1, j))), _group(text.pop((i, s))))
            text[i, j] = (" ".join(parts), True)
        return text.popitem()[1][0]

    def __repr__(self):
        what = "" if self._columns is None else f" for X of {self._columns} columns"
        bracketing = f" {self}" if self._k <= _REPR_MAX_K else f" k={self._k}"
        return (f"<JacobianChainPlan{what}{bracketing}: {self.mode} mode, cost={self._cost}"
                f" (forward {self._forward}, reverse {self._reverse})>")

    def _execute(self, leaves, kinds, dtype):
        """The dense product of the leaves (arrays, sparse arrays, LinearOperators) by the
        plan's steps, in `dtype`; never one of the leaves itself."""
        n = self._dims
        blocks = {}
        for kind, i, j, s in self._steps:
            if kind == "given":
                leaf = leaves[i]
                block = leaf.toarray() if kinds[i] == _SPARSE else leaf
            elif kind == "tangent":
                rhs = np.eye(n[i], dtype=dtype) if i == j else blocks.pop((i, j - 1))
                block = _apply(leaves[j], kinds[j], _fresh(rhs, leaves))
            elif kind == "adjoint":
                lhs = np.eye(n[j + 1], dtype=dtype) if i == j else blocks.pop((i + 1, j))
                block = _apply_adjoint(leaves[i], kinds[i], _fresh(lhs, leaves))
            else:
                block = blocks.pop((s + 1, j)) @ blocks.pop((i, s))
            blocks[i, j] = np.asarray(block).astype(dtype, copy=False)
        result = blocks.popitem()[1]
        if any(result is leaf for leaf in leaves):
            result = result.copy()
        return result


def _group(item):
    text, composite = item
    return f"({text})" if composite else text


def _apply(leaf, kind, block):
    """leaf @ block: J times a dense block of columns (tangent mode)."""
    if kind == _OPERATOR:
        return leaf.matmat(block)
    return leaf @ block


def _apply_adjoint(leaf, kind, block):
    """block @ leaf: a dense block of rows times J (adjoint mode, through rmatmat)."""
    if kind == _OPERATOR:
        return _h(np.asarray(leaf.rmatmat(_h(block))))
    if kind == _SPARSE:
        return (leaf.T @ block.T).T
    return block @ leaf


def _h(a):
    return a.conj().T if a.dtype.kind == "c" else a.T


def _adjoint_leaf(leaf, kind):
    if kind == _OPERATOR:
        return leaf.H
    return leaf.conj().T if leaf.dtype.kind == "c" else leaf.T


# ---------------------------------------------------------------------------------------
# The operator


class JacobianChainOperator(ProductOperator):
    """The product J = J_{k-1} ⋯ J_0 of a chain of Jacobians, as a LinearOperator.

    Create it with :func:`jacobian_chain`. ``todense()`` (or ``toarray()``) accumulates the
    full Jacobian and ``J @ X`` applies it, each by the cheapest plan of
    :func:`jacobian_chain`'s cost model (:attr:`plan`, :meth:`product_plan`); ``J.H`` is
    the chain of the adjoints in reverse order, with the tangent and adjoint costs
    swapped.

    Attributes
    ----------
    ops : tuple
        The Jacobians, ``ops[0]`` applied first (arrays as NumPy or SciPy sparse arrays,
        never copied: do not modify them afterwards).
    dims : tuple of int
        n_0, …, n_k: ``ops[t]`` has shape (n_{t+1}, n_t).
    costs : tuple of (cost, cost)
        The (matvec, rmatvec) cost of each Jacobian in use; ``math.inf`` for an adjoint
        the operator does not have.
    mode : str
        "auto", "forward" or "reverse": how plans are chosen.
    plan : JacobianChainPlan
        The plan of ``todense()``.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A, B = np.arange(6.0).reshape(3, 2), np.ones((1, 3))
    >>> J = matkron.jacobian_chain([A, B])
    >>> J.shape, J.todense()
    ((1, 2), array([[6., 9.]]))
    >>> J @ np.array([1.0, -1.0])
    array([-3.])
    >>> J.H @ np.array([1.0])
    array([6., 9.])
    """

    _transient = {"_plans": dict}

    def __init__(
        self,
        ops: Sequence,
        costs: Sequence | None = None,
        mode: Literal["auto", "forward", "reverse"] = "auto",
    ) -> None:
        check_choice(mode, "mode", MODES)
        kinds, kept, dims, c, r, dtype = _check_chain(ops, costs)
        if mode == "reverse" and math.inf in r:
            t = r.index(math.inf)
            raise ValueError(
                f"mode='reverse' needs the adjoint of every Jacobian; ops[{t}] has no "
                "rmatvec (or its costs entry says so)"
            )
        self._setup(kinds, kept, dims, c, r, dtype, mode)

    def _setup(self, kinds, ops, dims, c, r, dtype, mode):
        self._kinds = tuple(kinds)
        self.ops = tuple(ops)
        self.dims = tuple(dims)
        self.costs = tuple(zip(c, r))
        self.mode = mode
        self._plans = {}
        self._adjoint_op = None
        super().__init__(dtype, (dims[-1], dims[0]))
        self.args = self.ops
        self.plan = self._make_plan(None)

    def _make_plan(self, columns):
        c = [mv for mv, _ in self.costs]
        r = [rmv for _, rmv in self.costs]
        given = [kind != _OPERATOR for kind in self._kinds]
        n = list(self.dims)
        if columns is not None:
            # X is a dense leaf before ops[0]: n_0 × columns.
            size = n[0] * columns
            n, c, r, given = [columns] + n, [size] + c, [size] + r, [True] + given
        L = len(c)
        if self.mode == "forward":
            steps = _forward_steps(L, given)
        elif self.mode == "reverse":
            steps = _reverse_steps(L, given)
        else:
            steps = _optimal_steps(n, c, r, given)
        return JacobianChainPlan(n, c, r, given, steps, columns)

    def product_plan(self, columns: int = 1) -> JacobianChainPlan:
        """The plan of ``J @ X`` for X with `columns` columns (1: a vector).

        Parameters
        ----------
        columns : int, optional
            The number of columns of X.

        Returns
        -------
        JacobianChainPlan
            With X as the dense block that the chain is applied to; cached per `columns`.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import aslinearoperator
        >>> import matkron
        >>> ops = [aslinearoperator(np.ones((30, 40))), aslinearoperator(np.ones((1, 30)))]
        >>> J = matkron.jacobian_chain(ops)
        >>> print(J.product_plan(1))
        J1 (J0 X)
        >>> print(J.product_plan(100))
        ((I J1) J0) X
        """
        columns = count(columns, "columns")
        plan = self._plans.get(columns)
        if plan is None:
            plan = self._plans[columns] = self._make_plan(columns)
        return plan

    def _zero_size(self):
        return 0 in self.dims

    def todense(self) -> np.ndarray:
        """The full Jacobian J_{k-1} ⋯ J_0 as a dense (n_k, n_0) array, by :attr:`plan`.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.jacobian_chain([np.eye(2), 2 * np.ones((1, 2))]).todense()
        array([[2., 2.]])
        """
        if self._zero_size():
            return np.zeros(self.shape, dtype=self.dtype)
        return self.plan._execute(self.ops, self._kinds, self.dtype)

    def toarray(self) -> np.ndarray:
        """The same as :meth:`todense`.

        Examples
        --------
        >>> import numpy as np
        >>> import matkron
        >>> matkron.jacobian_chain([np.eye(2)]).toarray()
        array([[1., 0.],
               [0., 1.]])
        """
        return self.todense()

    def _product(self, x):
        check_rows(x, self.shape[1], "x",
                   f"the {self.shape[1]} columns of the chain (the input size of ops[0])")
        dtype = result_dtype(self.dtype, x.dtype)
        X = x.reshape(-1, 1) if x.ndim == 1 else x
        if self._zero_size() or X.shape[1] == 0:
            return np.zeros((self.shape[0],) + x.shape[1:], dtype=dtype)
        plan = self.product_plan(X.shape[1])
        y = plan._execute((X,) + self.ops, (_ARRAY,) + self._kinds, dtype)
        return y.reshape(-1) if x.ndim == 1 else y

    def _adjoint(self):
        if self._adjoint_op is None:
            op = object.__new__(JacobianChainOperator)
            op._setup(
                self._kinds[::-1],
                [_adjoint_leaf(leaf, kind) for leaf, kind in zip(self.ops[::-1],
                                                                  self._kinds[::-1])],
                self.dims[::-1],
                [r for _, r in self.costs[::-1]],
                [c for c, _ in self.costs[::-1]],
                self.dtype,
                {"auto": "auto", "forward": "reverse", "reverse": "forward"}[self.mode],
            )
            op._adjoint_op = self
            self._adjoint_op = op
        return self._adjoint_op

    def __repr__(self):
        return (f"<{self.shape[0]}x{self.shape[1]} JacobianChainOperator of "
                f"{len(self.ops)} Jacobians, {self.plan.mode} mode, dtype={self.dtype}>")


def jacobian_chain(
    ops: Sequence,
    *,
    costs: Sequence | None = None,
    mode: Literal["auto", "forward", "reverse"] = "auto",
) -> JacobianChainOperator:
    """The Jacobian of a composition, J = J_{k-1} ⋯ J_1 J_0, formed in the cheapest mode.

    Parameters
    ----------
    ops : sequence of LinearOperator, array_like or sparse array
        The Jacobians J_t in the order the functions are applied: ``ops[0]`` first, so
        ``ops[t].shape[1] == ops[t-1].shape[0]``. Each is a
        :class:`scipy.sparse.linalg.LinearOperator` (applied matrix-free through ``matmat``
        and ``rmatmat``), a dense 2-D array, or a SciPy sparse array or matrix.
    costs : sequence, optional
        One hint per Jacobian: None (the default below), the multiply-adds of one matvec
        (the rmatvec taken to cost the same), or a pair (matvec cost, rmatvec cost) whose
        second entry may be None for an operator without an adjoint. Defaults: rows·cols
        for a dense array, ``nnz`` for a sparse one; for a LinearOperator its attributes
        ``matvec_cost`` and ``rmatvec_cost`` when it has them, else rows·cols (the cost of
        the same Jacobian dense: hint matrix-free operators that are cheaper).
    mode : {"auto", "forward", "reverse"}, optional
        "auto" takes the cheapest plan; "forward" and "reverse" force tangent or adjoint
        mode throughout (for comparisons).

    Returns
    -------
    JacobianChainOperator
        The (n_k, n_0) operator; ``.todense()`` accumulates J, ``J @ X`` applies it,
        ``J.H`` is the adjoint; ``.plan`` reports the bracketing and its cost against
        forward and reverse mode.

    Raises
    ------
    TypeError
        If `ops` is not a sequence, a Jacobian or a cost hint is not numeric.
    ValueError
        If `ops` is empty, a Jacobian is not 2-D or its columns do not match the rows of
        the one before it (the message names both positions and shapes), `costs` does not
        have one entry per Jacobian or an entry is negative or not finite, `mode` is
        unknown, or ``mode="reverse"`` with a Jacobian that has no adjoint.

    See Also
    --------
    chain_order : the same question for a chain of dense matrices.

    Notes
    -----
    Write n_0, …, n_k for the sizes (J_t is n_{t+1} × n_t), c_t and r_t for the
    multiply-adds of one matvec and one rmatvec of J_t, and P_ij = J_j ⋯ J_i for a dense
    block of the chain. Every intermediate of a plan is such a block, and a block is made
    in one of four ways (the matrix-free dense Jacobian chain product of U. Naumann,
    *Matrix-Free Jacobian Chaining*, arXiv:2406.11862, 2024, here with arrays that are
    their own dense form and products with them at their hinted cost):

    - given: an array is its own dense block, at no cost (a sparse one by ``toarray``);
    - tangent: P_ij = J_j P_{i,j-1}, J_j applied to the n_i columns of the block, at
      n_i c_j (for i = j, J_i applied to the n_i columns of an identity);
    - adjoint: P_ij = P_{i+1,j} J_i, the adjoint of J_i applied to the n_{j+1} rows of the
      block, at n_{j+1} r_i (for i = j, to the rows of an identity);
    - product: P_ij = P_{s+1,j} P_{i,s}, a GEMM of two dense blocks, at n_{j+1} n_{s+1} n_i.

    The dynamic program takes the cheapest over all of them, for every block::

        m_ii = 0 for an array, else min(n_{i+1} r_i, n_i c_i)
        m_ij = min(m_{i+1,j} + n_{j+1} r_i,  m_{i,j-1} + n_i c_j,
                   min over i <= s < j of m_is + m_{s+1,j} + n_{j+1} n_{s+1} n_i)

    in O(k³) time (exact integers when the hints are integers). A run of tangent or
    adjoint steps is a matrix-free pass through a sub-chain; products join accumulated
    pieces. On ties the adjoint step is preferred, then the tangent step, then the
    smallest split. Forward mode (n_0 Σ_t c_t) and reverse mode (n_k Σ_t r_t), less the
    free first (last) Jacobian when it is an array, are among the plans, so the optimum
    costs no more than either; for all-dense chains the model is that of
    :func:`chain_order`. ``J @ X`` is planned the same way with X (n_0 × m) as a dense
    block before ``ops[0]``: forward mode costs m Σ_t c_t, and reverse mode forms J first.

    A chain of operators with a scalar output (n_k = 1) comes out in reverse mode when
    c_t = r_t: every operator must be applied to at least one vector, at c_t or more, and
    reverse mode pays exactly that (ties go to the adjoint step). With arrays in the chain
    the plan stays left to right (:attr:`JacobianChainPlan.mode` "reverse") but may apply
    the last operator to the columns of the array applied just before it instead of
    forming its row first, when that is cheaper; a product of arrays can be cheaper still
    when the input is small too.

    Blocks are NumPy arrays in the chain's dtype (``np.result_type`` of the Jacobians,
    integers as float64); complex adjoints conjugate. Inputs are never written; an
    operator's ``matmat`` and ``rmatmat`` get fresh arrays (an identity, a block, or the
    conjugate transpose of one for ``rmatmat``).

    Examples
    --------
    A scalar function of an m-vector through a dense layer and a matrix-free
    elementwise map: reverse mode, the gradient by one vector-Jacobian product each.

    >>> import numpy as np
    >>> from scipy.sparse.linalg import LinearOperator
    >>> import matkron
    >>> rng = np.random.default_rng(0)
    >>> W = rng.standard_normal((50, 200))          # x ↦ W x
    >>> d = rng.standard_normal(50)
    >>> f = lambda v: d * v.ravel()                 # y ↦ d ∘ y, matrix-free
    >>> D = LinearOperator((50, 50), matvec=f, rmatvec=f, dtype=float)
    >>> g = np.ones((1, 50))                        # y ↦ sum(y)
    >>> J = matkron.jacobian_chain([W, D, g], costs=[None, 50, None])
    >>> print(J.plan)
    (J2 J1) J0
    >>> J.plan.mode, J.plan.cost, J.plan.forward_cost, J.plan.reverse_cost
    ('reverse', 10050, 20000, 10050)
    >>> np.allclose(J.todense(), g @ np.diag(d) @ W)
    True
    """
    return JacobianChainOperator(ops, costs=costs, mode=mode)
