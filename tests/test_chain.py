"""chain_order, ChainPlan and multi_dot against independent oracles.

Oracles: brute force over all parenthesizations (k <= 9), a textbook exact DP in Python
integers written here, numpy's private ``_multi_dot_matrix_chain_order``, direct sums for the
left-to-right and right-to-left costs, and ``numpy.linalg.multi_dot`` for products.
"""

import functools
import re
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.linalg._linalg import _multi_dot_matrix_chain_order

import matkron
from matkron import _chain, _chain_cy

from .conftest import LAYOUTS, OUT_LAYOUTS, layout_view, random_array, with_layout

# ---------------------------------------------------------------------------------------
# Oracles


def tree_cost(tree, dims):
    """The number of scalar multiplications of a parenthesization, by recursion."""

    def walk(t):
        if isinstance(t, int):
            return dims[t], dims[t + 1], 0
        (p, q, a), (q2, r, b) = walk(t[0]), walk(t[1])
        assert q == q2
        return p, r, a + b + p * q * r

    return walk(tree)[2]


def tree_leaves(tree):
    if isinstance(tree, int):
        return [tree]
    assert isinstance(tree, tuple) and len(tree) == 2
    return tree_leaves(tree[0]) + tree_leaves(tree[1])


def all_trees(i, j):
    """Every full parenthesization of M_i ... M_j (Catalan(j - i) of them)."""
    if i == j:
        return [i]
    return [(a, b) for s in range(i, j) for a in all_trees(i, s) for b in all_trees(s + 1, j)]


all_trees = functools.cache(all_trees)


def brute_force(dims):
    """Minimum cost over all parenthesizations, and the optimal trees."""
    k = len(dims) - 1
    costs = [(tree_cost(t, dims), t) for t in all_trees(0, k - 1)]
    best = min(c for c, _ in costs)
    return best, [t for c, t in costs if c == best]


def smallest_split_tree(dims):
    """The optimal tree that takes the smallest optimal split at every node.

    Interval optima come from brute force over all parenthesizations of the interval.
    """
    best = functools.cache(lambda i, j: min(tree_cost(t, dims) for t in all_trees(i, j)))

    def build(i, j):
        if i == j:
            return i
        for s in range(i, j):
            if best(i, s) + best(s + 1, j) + dims[i] * dims[s + 1] * dims[j + 1] == best(i, j):
                return (build(i, s), build(s + 1, j))
        raise AssertionError("no optimal split")

    return build(0, len(dims) - 2)


def reference_cost(dims):
    """The textbook O(k³) DP in exact Python integers (Cormen, section 15.2)."""
    k = len(dims) - 1
    m = [[0] * k for _ in range(k)]
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            m[i][j] = min(
                m[i][s] + m[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                for s in range(i, j)
            )
    return m[0][k - 1]


def numpy_order_cost(dims):
    """The cost of the order numpy.linalg.multi_dot chooses (via its private DP)."""
    k = len(dims) - 1
    fakes = [np.broadcast_to(np.empty(()), (dims[i], dims[i + 1])) for i in range(k)]
    s = _multi_dot_matrix_chain_order(fakes)

    def build(i, j):
        return i if i == j else (build(i, int(s[i, j])), build(int(s[i, j]) + 1, j))

    return tree_cost(build(0, k - 1), dims)


def render(tree):
    if isinstance(tree, int):
        return f"M{tree}"
    return f"({render(tree[0])} {render(tree[1])})"


def left_deep(k):
    t = 0
    for i in range(1, k):
        t = (t, i)
    return t


def right_deep(k):
    t = k - 1
    for i in range(k - 2, -1, -1):
        t = (i, t)
    return t


def random_dims(rng, k, kind):
    if kind == "small":      # many ties
        return rng.integers(1, 4, k + 1).tolist()
    if kind in ("ones", "zeros"):
        special, share, low = (1, 0.5, 2) if kind == "ones" else (0, 0.2, 1)
        values = rng.integers(low, 9, k + 1)
        return [special if u < share else int(v) for u, v in zip(rng.random(k + 1), values)]
    return rng.integers(1, 100, k + 1).tolist()


def check_plan(plan, dims):
    """Everything about a plan that an oracle fixes, given its cost is optimal."""
    k = len(dims) - 1
    assert plan.dims == tuple(dims)
    assert plan.k == k
    assert type(plan.cost) is int
    assert tree_leaves(plan.tree) == list(range(k))
    assert tree_cost(plan.tree, dims) == plan.cost
    assert str(plan) == render(plan.tree)
    assert plan.left_to_right_cost == tree_cost(left_deep(k), dims)
    assert plan.right_to_left_cost == tree_cost(right_deep(k), dims)
    assert type(plan.left_to_right_cost) is int and type(plan.right_to_left_cost) is int


# ---------------------------------------------------------------------------------------
# chain_order


@pytest.mark.parametrize("k", range(1, 10))
@pytest.mark.parametrize("kind", ["small", "ones", "zeros", "wide"])
def test_cost_is_brute_force_minimum(k, kind, rng):
    for _ in range(25 if k <= 7 else 8):
        dims = random_dims(rng, k, kind)
        plan = matkron.chain_order(dims)
        best, optimal = brute_force(dims)
        assert plan.cost == best
        assert plan.tree in optimal
        # Ties: the smallest optimal split at every node, whatever the cost type.
        assert plan.tree == smallest_split_tree(dims)
        check_plan(plan, dims)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=2, max_size=8))
def test_cost_hypothesis(dims):
    plan = matkron.chain_order(dims)
    assert plan.cost == brute_force(dims)[0]
    check_plan(plan, dims)


def test_examples_known():
    plan = matkron.chain_order([10, 100, 5, 50])
    assert (plan.cost, plan.tree, str(plan)) == (7500, ((0, 1), 2), "((M0 M1) M2)")
    assert (plan.left_to_right_cost, plan.right_to_left_cost) == (7500, 75000)
    one = matkron.chain_order([4, 7])
    assert (one.cost, one.tree, str(one), one.k) == (0, 0, "M0", 1)
    assert (one.left_to_right_cost, one.right_to_left_cost) == (0, 0)
    # CLRS figure 15.5
    clrs = matkron.chain_order([30, 35, 15, 5, 10, 20, 25])
    assert clrs.cost == 15125
    assert str(clrs) == "((M0 (M1 M2)) ((M3 M4) M5))"


@pytest.mark.parametrize("k", [12, 30, 60])
def test_never_worse_than_numpy(k, rng):
    for _ in range(3):
        dims = rng.integers(1, 1000, k + 1).tolist()
        plan = matkron.chain_order(dims)
        numpy_cost = numpy_order_cost(dims)
        assert plan.cost <= numpy_cost
        assert plan.cost == numpy_cost == reference_cost(dims)  # both are optimal
        check_plan(plan, dims)


def test_inputs_accepted():
    for dims in ([3, 4, 5], (3, 4, 5), np.array([3, 4, 5]), np.array([3, 4, 5], np.uint8),
                 [np.int64(3), np.int16(4), 5], range(3, 6)):
        plan = matkron.chain_order(dims)
        assert plan.dims == (3, 4, 5) and plan.cost == 60
        assert all(type(d) is int for d in plan.dims)


def test_huge_dimensions_exact(rng):
    # 50 matrices with dimensions near 1e9: costs near 2**95.
    dims = [10**9 + int(v) for v in rng.integers(-1000, 1000, 51)]
    plan = matkron.chain_order(dims)
    assert plan.cost == reference_cost(dims)
    assert plan.cost > 2**90
    check_plan(plan, dims)
    # Near 2**63 - 1: costs of about 2**190, compared with brute force.
    top = 2**63 - 1
    for k in range(1, 7):
        dims = [top - int(v) for v in rng.integers(0, 3, k + 1)]
        plan = matkron.chain_order(dims)
        assert plan.cost == brute_force(dims)[0]
        check_plan(plan, dims)
    assert matkron.chain_order([top] * 4).cost == 2 * top**3


@pytest.mark.parametrize("scale", [1, 2**10, 2**20, 2**30, 2**40, 2**50, 2**60])
def test_exact_in_every_cost_type(scale, rng):
    # Scaling every dimension by c scales every cost by c**3, so the optimal tree, ties
    # included, must not change while the DP moves from doubles to 64-, 128-bit and Python
    # integers.
    for k in (2, 5, 9):
        small = rng.integers(1, 7, k + 1).tolist()
        dims = [d * scale for d in small]
        dims[0] += 1  # a cost that is odd in the low bits
        plan = matkron.chain_order(dims)
        best, optimal = brute_force(dims)
        assert plan.cost == best
        assert plan.tree in optimal
        assert plan.tree == smallest_split_tree(dims)
        check_plan(plan, dims)
    dims = [scale * int(d) + int(e)
            for d, e in zip(rng.integers(1, 7, 41), rng.integers(0, 9, 41))]
    assert matkron.chain_order(dims).cost == reference_cost(dims)


def test_bound_edges():
    # Around the switch from doubles (2**53) and from 64 bits: (k - 1) max(d)**3.
    for d in (208064, 208065, 2**21, 2642245, 2642246, 2**22):
        for k in (2, 3, 4):
            dims = [d, d - 1, d, 1, d][: k + 1]
            plan = matkron.chain_order(dims)
            assert plan.cost == brute_force(dims)[0]
            check_plan(plan, dims)


def test_python_fallback_matches_brute_force(rng):
    # The exact-integer DP used without a compiler 128-bit type (and beyond 2**128).
    for k in range(1, 8):
        for _ in range(5):
            dims = random_dims(rng, k, "small")
            cost, steps = _chain._dp_python(tuple(dims))
            plan = matkron.ChainPlan(tuple(dims), cost, steps, "dp")
            assert cost == brute_force(dims)[0]
            assert plan.tree == smallest_split_tree(dims)


def test_dp_cost_types_agree(rng):
    # Every cost type of the compiled DP (double, uint64, 128- and 256-bit where the
    # compiler has them) on the same small inputs: the same optimum and the same splits.
    tiers = (0, 1, 2, 3) if _chain_cy.HAVE_INT128 else (0, 1)
    for k in (1, 2, 3, 5, 9, 20, 41):
        for kind in ("small", "zeros", "wide"):
            dims = random_dims(rng, k, kind)
            results = [_chain_cy.dp_plan(dims, tier) for tier in tiers]
            assert all(cost == reference_cost(dims) for cost, _ in results)
            assert all(np.array_equal(steps, results[0][1]) for _, steps in results)


def _inner_loops():
    """The inner loops of the compiled DP in doubles that this CPU has (1 scalar,
    2 SSE2/NEON, 3 AVX2; the last is missing on some CPUs and compilers)."""
    available = []
    for kernel in (1, 2, 3):
        try:
            _chain_cy.dp_plan([1, 1], 0, kernel)
            available.append(kernel)
        except ValueError:
            assert kernel == 3
    return available


@pytest.mark.parametrize("kernel", _inner_loops())
def test_dp_inner_loops(kernel, rng):
    # Each inner loop must give the exact optimum, across the lengths where they switch
    # from vector to scalar code.
    for k in (2, 3, 8, 9, 10, 16, 17, 18, 25, 33, 47):
        for kind in ("small", "wide"):
            dims = random_dims(rng, k, kind)
            cost, steps = _chain_cy.dp_plan(dims, 0, kernel)
            plan = matkron.ChainPlan(tuple(dims), cost, steps, "dp")
            assert cost == reference_cost(dims)
            check_plan(plan, dims)
            if k <= 9:
                assert plan.tree == smallest_split_tree(dims)
            expected = matkron.chain_order(dims)
            assert plan.tree == expected.tree


# ---------------------------------------------------------------------------------------
# method="hu-shing"


def mountain(k, rng):
    """Dimensions rising to a peak and falling again: deeply nested potential h-arcs."""
    top = int(rng.integers(0, k + 1))
    return [int(1 + min(i, 2 * top - i) * rng.integers(1, 3)) if i <= 2 * top else i + 1
            for i in range(k + 1)]


@pytest.mark.parametrize("k", range(1, 10))
@pytest.mark.parametrize("kind", ["small", "ones", "zeros", "wide"])
def test_hu_shing_is_brute_force_minimum(k, kind, rng):
    for _ in range(25 if k <= 7 else 8):
        dims = random_dims(rng, k, kind)
        plan = matkron.chain_order(dims, method="hu-shing")
        best, optimal = brute_force(dims)
        assert plan.cost == best
        assert plan.tree in optimal
        assert plan.method == "hu-shing"
        check_plan(plan, dims)


def test_hu_shing_matches_the_dp_on_many_instances(rng):
    # Against the textbook DP of this file: ties (tiny ranges), zeros, nested arcs
    # (mountains), monotone runs, wide ranges.
    for trial in range(2400):
        k = int(rng.integers(2, 30))
        kind = trial % 6
        if kind == 0:
            dims = rng.integers(1, 4, k + 1).tolist()
        elif kind == 1:
            dims = rng.integers(0, 3, k + 1).tolist()
        elif kind == 2:
            dims = mountain(k, rng)
        elif kind == 3:
            dims = sorted(rng.integers(1, 30, k + 1).tolist(), reverse=bool(trial % 2))
        elif kind == 4:
            dims = rng.integers(1, 1000, k + 1).tolist()
        else:
            dims = [int(v) for v in rng.choice([1, 2, 5, 2**20], k + 1)]
        plan = matkron.chain_order(dims, method="hu-shing")
        assert plan.cost == reference_cost(dims), dims
        check_plan(plan, dims)


def test_hu_shing_huge_dimensions(rng):
    dims = [10**9 + int(v) for v in rng.integers(-1000, 1000, 51)]
    plan = matkron.chain_order(dims, method="hu-shing")
    assert plan.cost == reference_cost(dims)
    check_plan(plan, dims)
    top = 2**63 - 1
    for k in range(1, 8):
        dims = [top - int(v) for v in rng.integers(0, 3, k + 1)]
        assert matkron.chain_order(dims, method="hu-shing").cost == brute_force(dims)[0]


def test_hu_shing_long_chains(rng):
    for dims in (rng.integers(1, 1000, 151).tolist(), mountain(150, rng)):
        assert matkron.chain_order(dims, method="hu-shing").cost == reference_cost(dims)
    for dims in (rng.integers(1, 1000, 20001).tolist(), mountain(20000, rng)):
        plan = matkron.chain_order(dims, method="hu-shing")
        assert plan.cost <= min(plan.left_to_right_cost, plan.right_to_left_cost)
        steps = plan._steps
        assert steps.shape == (20000 - 1, 3)
        d = np.array(dims, dtype=object)
        assert plan.cost == int(np.sum(d[steps[:, 0]] * d[steps[:, 1] + 1] * d[steps[:, 2] + 1]))
    assert str(matkron.chain_order(dims, method="hu-shing")) == str(plan)   # deterministic


def test_hu_shing_execute(rng):
    dims = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    arrays = chain_arrays(rng, dims, "float64")
    assert_matches_numpy(matkron.chain_order(dims, method="hu-shing").execute(arrays), arrays)


def test_multi_dot_past_the_dp_limit(rng):
    # More than 1000 arrays: planned by Hu–Shing. Every row of every matrix holds one 1, so
    # each product does too and the results are exact in any order.
    k = 1200
    dims = rng.integers(1, 4, k + 1).tolist()
    arrays = []
    for i in range(k):
        m = np.zeros((dims[i], dims[i + 1]))
        m[np.arange(dims[i]), rng.integers(0, dims[i + 1], dims[i])] = 1.0
        arrays.append(m)
    expected = functools.reduce(np.dot, arrays)
    np.testing.assert_array_equal(matkron.multi_dot(arrays), expected)
    ints = [a.astype(np.int64) for a in arrays]
    np.testing.assert_array_equal(matkron.multi_dot(ints), expected.astype(np.int64))


def test_deterministic():
    dims = [2] * 12 + [1] * 5 + [2] * 8
    plans = [matkron.chain_order(dims) for _ in range(3)]
    assert len({p.tree for p in plans}) == 1
    assert len({str(p) for p in plans}) == 1


def test_long_chain_against_reference(rng):
    dims = rng.integers(1, 50, 151).tolist()
    plan = matkron.chain_order(dims)
    assert plan.cost == reference_cost(dims)
    check_plan(plan, dims)


@pytest.mark.parametrize(
    "dims, error, message",
    [
        ([], ValueError, "dims must hold at least two entries"),
        ([5], ValueError, "dims must hold at least two entries"),
        ([3, 4, 5, -2], ValueError, "dims[3] must be non-negative; got -2"),
        ([3, 2.5], TypeError, "dims[1] must be an integer; got 2.5 of type float"),
        ([3, 4.0], TypeError, "dims[1] must be an integer; got 4.0 of type float"),
        ([3, "4"], TypeError, "dims[1] must be an integer; got '4' of type str"),
        ([True, 3], TypeError, "dims[0] must be an integer; got the bool True"),
        ([3, None], TypeError, "dims[1] must be an integer; got None of type NoneType"),
        ([np.int64(-1), 3], ValueError, "dims[0] must be non-negative; got -1"),
        (np.array([3.0, 4.0]), TypeError, "dims[0] must be an integer; got 3.0"),
        ([1, 2**63], ValueError, f"dims[1] must be at most {2**63 - 1}; got {2**63}"),
        (np.ones((2, 2), int), ValueError, "dims must be 1-D"),
    ],
)
def test_dims_errors(dims, error, message):
    # The same mistakes raise the same errors as kron_order's shapes (types TypeError,
    # values ValueError).
    with pytest.raises(error, match=re.escape(message)):
        matkron.chain_order(dims)


def test_argument_errors():
    with pytest.raises(TypeError, match="dims must be a sequence"):
        matkron.chain_order(5)
    with pytest.raises(ValueError, match="method must be one of 'dp', 'hu-shing'; got 'greedy'"):
        matkron.chain_order([2, 3, 4], method="greedy")
    for method in ("dp", "hu-shing"):
        with pytest.raises(ValueError, match=re.escape("dims[3] must be non-negative; got -2")):
            matkron.chain_order([3, 4, 5, -2], method=method)


def test_threads_share_nothing(rng):
    cases = [rng.integers(1, 500, k + 1).tolist() for k in (40, 80, 120, 60)]
    costs = [reference_cost(dims) for dims in cases]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def work(t):
        barrier.wait()
        results[t] = [(p.cost, p.tree) for p in map(matkron.chain_order, cases)]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for result in results:
        assert result == results[0]     # deterministic in every thread
        for dims, cost, (plan_cost, tree) in zip(cases, costs, result):
            assert plan_cost == cost and tree_cost(tree, dims) == cost


# ---------------------------------------------------------------------------------------
# multi_dot and ChainPlan.execute against numpy.linalg.multi_dot

BLAS_DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))
OTHER_DTYPES = tuple(np.dtype(t) for t in ("int64", "int32", "int8", "uint8", "bool",
                                            "float16", "longdouble", "object"))
RTOL = {"e": 1e-2, "f": 1e-4, "F": 1e-4, "d": 1e-12, "D": 1e-12, "g": 1e-12}


def chain_arrays(rng, dims, dtype, vec_first=False, vec_last=False):
    arrs = []
    for i in range(len(dims) - 1):
        shape = (dims[i], dims[i + 1])
        if i == 0 and vec_first:
            shape = (dims[1],)
        elif i == len(dims) - 2 and vec_last:
            shape = (dims[-2],)
        if np.dtype(dtype) == object:
            a = random_array(rng, shape, "int64").astype(object)
        else:
            a = random_array(rng, shape, dtype)
        arrs.append(a)
    return arrs


def assert_matches_numpy(result, arrays):
    """result == numpy.linalg.multi_dot(arrays): kind, shape, dtype, and value."""
    expected = np.linalg.multi_dot(arrays)
    assert type(result) is type(expected)
    assert np.shape(result) == np.shape(expected)
    assert np.asarray(result).dtype == np.asarray(expected).dtype
    dtype = np.asarray(expected).dtype
    if dtype.char not in RTOL:          # integers, bool, object: exact
        np.testing.assert_array_equal(result, expected)
        return
    # Forward error bound of a chain product: rtol * |A0| |A1| ... |Ak-1|.
    bound = functools.reduce(np.dot, [np.abs(np.asarray(a, dtype=np.complex128)) for a in arrays])
    err = np.abs(np.asarray(result, dtype=np.complex128) - np.asarray(expected, np.complex128))
    assert np.all(err <= RTOL[dtype.char] * bound + 1e-30), (result, expected)


CHAINS = [
    [4, 1, 3],
    [2, 3, 4],
    [5, 1, 4, 2],
    [1, 6, 2, 7, 3],
    [4, 3, 5, 2, 6, 1],
    [2, 9, 1, 8, 3, 7, 2],
    [6, 5, 4, 3, 2, 1, 2, 3],
    [1, 1, 1, 1],
    [40, 35, 30, 45],          # intermediates larger than the on-stack workspace
]


@pytest.mark.parametrize("dtype", BLAS_DTYPES + OTHER_DTYPES, ids=str)
@pytest.mark.parametrize("dims", CHAINS, ids=str)
@pytest.mark.parametrize("ends", ["mm", "vm", "mv", "vv"])
def test_multi_dot_matches_numpy(dims, dtype, ends, rng):
    vf, vl = ends[0] == "v", ends[1] == "v"
    if (vf and dims[0] != 1) or (vl and dims[-1] != 1):
        dims = [1 if (i == 0 and vf) or (i == len(dims) - 1 and vl) else d
                for i, d in enumerate(dims)]
    arrays = chain_arrays(rng, dims, dtype, vf, vl)
    assert_matches_numpy(matkron.multi_dot(arrays), arrays)
    assert_matches_numpy(matkron.multi_dot(tuple(arrays)), arrays)
    plan = matkron.chain_order(dims)
    assert_matches_numpy(plan.execute(arrays), arrays)


@settings(max_examples=80, deadline=None)
@given(
    dims=st.lists(st.integers(0, 4), min_size=3, max_size=8),
    ends=st.sampled_from(["mm", "vm", "mv", "vv"]),
    dtype=st.sampled_from(["float64", "complex64", "int32"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_multi_dot_hypothesis(dims, ends, dtype, seed):
    vf, vl = ends[0] == "v", ends[1] == "v"
    dims[0] = 1 if vf else dims[0]
    dims[-1] = 1 if vl else dims[-1]
    arrays = chain_arrays(np.random.default_rng(seed), dims, dtype, vf, vl)
    assert_matches_numpy(matkron.multi_dot(arrays), arrays)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", BLAS_DTYPES + (np.dtype("int64"),), ids=str)
def test_multi_dot_layouts(layout, dtype, rng):
    for dims, vf, vl in (([3, 5, 2, 4], False, False), ([1, 5, 2, 4, 1], True, True),
                         ([1, 4, 3], True, False), ([6, 4, 1], False, True)):
        arrays = [with_layout(a, layout) for a in chain_arrays(rng, dims, dtype, vf, vl)]
        copies = [a.copy() for a in arrays]
        assert_matches_numpy(matkron.multi_dot(arrays), copies)
        for a, c in zip(arrays, copies):
            np.testing.assert_array_equal(a, c)  # inputs untouched


def test_multi_dot_mixed_dtypes(rng):
    for dts in (("float32", "float64", "float32"), ("int64", "float32", "float32"),
                ("float32", "complex64", "float32"), ("int8", "bool", "int8"),
                ("int64", "float64", "complex128"), ("object", "int64", "int64"),
                ("float16", "float32", "float16"), ("int32", "float16", "float16")):
        dims = [3, 4, 2, 5]
        arrays = [random_array(rng, (dims[i], dims[i + 1]), "int64" if d == "object" else d)
                  for i, d in enumerate(dts)]
        arrays = [a.astype(object) if d == "object" else a for a, d in zip(arrays, dts)]
        assert_matches_numpy(matkron.multi_dot(arrays), arrays)


@pytest.mark.parametrize("dtype", ["float64", "complex64", "int64", "object"])
def test_multi_dot_zero_size(dtype, rng):
    for dims, vf, vl in (([0, 3, 4], False, False), ([3, 0, 4], False, False),
                         ([3, 4, 0], False, False), ([2, 3, 0, 4, 2], False, False),
                         ([1, 0, 3], True, False), ([3, 0, 1], False, True),
                         ([1, 0, 1], True, True), ([1, 0, 4, 1], True, True),
                         ([1, 0, 2, 0, 1], True, True), ([0, 0, 0], False, False)):
        arrays = chain_arrays(rng, dims, dtype, vf, vl)
        assert_matches_numpy(matkron.multi_dot(arrays), arrays)
        assert_matches_numpy(matkron.chain_order(dims).execute(arrays), arrays)


def test_multi_dot_long_and_large(rng):
    # Past the compiled fast path: more than 32 matrices, and a cost bound beyond doubles.
    dims = rng.integers(1, 6, 41).tolist()
    arrays = chain_arrays(rng, dims, "float64")
    assert_matches_numpy(matkron.multi_dot(arrays), arrays)
    n = 2**18
    arrays = [rng.standard_normal(n), rng.standard_normal((n, 2)), rng.standard_normal(2)]
    assert_matches_numpy(matkron.multi_dot(arrays), arrays)


def test_multi_dot_fixed_values():
    A = np.arange(6.0).reshape(2, 3)
    B = np.arange(12.0).reshape(3, 4)
    C = np.arange(8.0).reshape(4, 2)
    assert np.array_equal(matkron.multi_dot([A, B, C]), A @ B @ C)
    x = np.array([1.0, 2.0])
    assert matkron.multi_dot([x, A, B, C, x]) == x @ A @ B @ C @ x


def test_multi_dot_two_nd_arrays_as_numpy(rng):
    # numpy.linalg.multi_dot passes two arrays to numpy.dot, whatever their dimensions.
    for a, b in ((rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))),
                 (np.float64(2.0), rng.standard_normal((3, 2)))):
        np.testing.assert_allclose(matkron.multi_dot([a, b]), np.linalg.multi_dot([a, b]))


@pytest.mark.parametrize("layout", OUT_LAYOUTS)
@pytest.mark.parametrize("dtype", ["float64", "complex64", "int64"])
def test_multi_dot_out(layout, dtype, rng):
    for dims, vf, vl in (([3, 5, 2, 4], False, False), ([1, 5, 2, 4], True, False),
                         ([3, 5, 2, 1], False, True), ([2, 3, 1], False, False)):
        arrays = chain_arrays(rng, dims, dtype, vf, vl)
        expected = np.linalg.multi_dot(arrays)
        out, _ = layout_view(expected.shape, dtype, layout)
        assert matkron.multi_dot(arrays, out=out) is out
        assert_matches_numpy(out, arrays)
        out2, _ = layout_view(expected.shape, dtype, layout)
        assert matkron.chain_order(dims).execute(arrays, out=out2) is out2
        assert_matches_numpy(out2, arrays)


def test_multi_dot_out_numpy_forms(rng):
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    v, w = rng.standard_normal(4), rng.standard_normal(2)
    # The 2-D shapes numpy.linalg.multi_dot requires when an end is 1-D.
    for arrays, shape in (([v, A, B], (1, 2)), ([A, B, w], (4, 1)), ([v, A, B, w], (1, 1))):
        out_np, out_mk = np.empty(shape), np.empty(shape)
        expected = np.linalg.multi_dot(arrays, out=out_np)
        result = matkron.multi_dot(arrays, out=out_mk)
        assert type(result) is type(expected) and np.shape(result) == np.shape(expected)
        np.testing.assert_allclose(out_mk, out_np, rtol=1e-12)
    out = np.empty(())
    assert matkron.multi_dot([v, A, B, w], out=out) is out
    np.testing.assert_allclose(out, v @ A @ B @ w, rtol=1e-12)


def test_multi_dot_out_errors(rng):
    A, B, C = (rng.standard_normal(s) for s in ((2, 3), (3, 4), (4, 5)))
    with pytest.raises(ValueError, match=r"out has shape \(5, 2\); expected \(2, 5\)"):
        matkron.multi_dot([A, B, C], out=np.empty((5, 2)))
    with pytest.raises(ValueError, match="out has dtype float32; expected float64"):
        matkron.multi_dot([A, B, C], out=np.empty((2, 5), np.float32))
    ro = np.empty((2, 5))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        matkron.multi_dot([A, B, C], out=ro)
    buf = np.zeros((4, 5))
    with pytest.raises(ValueError, match=re.escape("out overlaps arrays[2]")):
        matkron.multi_dot([A, B, buf], out=buf[:2])
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        matkron.multi_dot([A, B, C], out=[[0.0] * 5] * 2)


def test_multi_dot_shape_errors(rng):
    A, B = rng.standard_normal((2, 3)), rng.standard_normal((4, 5))
    C = rng.standard_normal((5, 6))
    cases = [
        ([A, B, C], ValueError,
         "arrays[0] of shape (2, 3) and arrays[1] of shape (4, 5) are not aligned"),
        ([C.T, C, A], ValueError,
         "arrays[1] of shape (5, 6) and arrays[2] of shape (2, 3) are not aligned"),
        ([A, np.ones(3), C], np.linalg.LinAlgError, "arrays[1] is 1-dimensional"),
        ([A, np.ones((3, 4, 5)), C], np.linalg.LinAlgError, "arrays[1] is 3-dimensional"),
        ([np.ones(3), A.T, np.ones(3)], ValueError,
         "arrays[1] of shape (3, 2) and arrays[2] of shape (3,) are not aligned: 2 (dim 1)"),
        ([A], ValueError, "at least two arrays"),
        ([], ValueError, "at least two arrays"),
    ]
    for arrays, exc, message in cases:
        with pytest.raises(exc, match=re.escape(message)):
            matkron.multi_dot(arrays)
        with pytest.raises(ValueError):     # numpy raises the same kind of error
            np.linalg.multi_dot(arrays)


def test_execute_errors(rng):
    plan = matkron.chain_order([2, 3, 4, 5])
    A, B, C = (rng.standard_normal(s) for s in ((2, 3), (3, 4), (4, 5)))
    message = "arrays has 2 entries; expected 3, one per matrix of the plan (dims (2, 3, 4, 5))"
    with pytest.raises(ValueError, match=re.escape(message)):
        plan.execute([A, B])
    with pytest.raises(ValueError, match=re.escape("arrays[2] has shape (4, 6); expected "
                                                   "(4, 5) = (dims[2], dims[3])")):
        plan.execute([A, B, rng.standard_normal((4, 6))])
    with pytest.raises(ValueError, match=re.escape("arrays[0] has shape (3,); expected (2, 3)")):
        plan.execute([np.ones(3), B, C])
    with pytest.raises(ValueError, match=re.escape("arrays[1] is 1-dimensional")):
        plan.execute([A, np.ones(3), C])
    with pytest.raises(TypeError, match="sequence of arrays"):
        plan.execute(A)


def test_execute_single_matrix(rng):
    A = rng.standard_normal((3, 4))
    plan = matkron.chain_order([3, 4])
    result = plan.execute([A])
    np.testing.assert_array_equal(result, A)
    assert not np.shares_memory(result, A)
    v = rng.standard_normal(4)
    np.testing.assert_array_equal(matkron.chain_order([1, 4]).execute([v]), v)
    ints = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(plan.execute([ints]), ints)


def test_multi_dot_threads(rng):
    chains = [chain_arrays(rng, d, "float64") for d in ([8, 8, 8, 8, 8], [30, 2, 40, 3, 50],
                                                         [64, 64, 64, 64, 64, 1])]
    expected = [np.linalg.multi_dot(c) for c in chains]
    barrier = threading.Barrier(6)
    failures = []

    def work():
        barrier.wait()
        for _ in range(30):
            for c, e in zip(chains, expected):
                if not np.allclose(matkron.multi_dot(c), e, rtol=1e-12, atol=1e-12):
                    failures.append(1)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures


def test_multi_dot_holds_its_arrays_while_the_gil_is_released(rng):
    # Another thread empties the caller's list (dropping the last references to the arrays)
    # as soon as multi_dot first releases the GIL, and refills the freed memory with NaN;
    # the product must still be that of the original arrays.
    n = 300
    for _ in range(3):
        arrays = [rng.standard_normal((n, n)) for _ in range(3)]
        copies = [a.copy() for a in arrays]
        go = threading.Event()
        junk = []

        def clear(go=go, arrays=arrays, junk=junk):
            go.wait()
            arrays.clear()
            junk.extend(np.full((n, n), np.nan) for _ in range(6))

        thread = threading.Thread(target=clear)
        thread.start()
        go.set()
        result = matkron.multi_dot(arrays)
        thread.join()
        assert not arrays
        np.testing.assert_allclose(result, np.linalg.multi_dot(copies), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">c8", ">c16"])
def test_multi_dot_byte_swapped(dtype, rng):
    # Non-native byte order is converted, never handed to BLAS as if it were native.
    for dims, vf, vl in (([3, 5, 2, 4], False, False), ([1, 5, 2, 4, 1], True, True),
                         ([40, 35, 30, 45], False, False)):
        native = chain_arrays(rng, dims, np.dtype(dtype).newbyteorder("="), vf, vl)
        swapped = [a.astype(dtype) for a in native]
        mixed = [swapped[0]] + native[1:]
        for arrays in (swapped, mixed):
            result = matkron.multi_dot(arrays)
            assert np.asarray(result).dtype.isnative
            assert_matches_numpy(result, native)
            assert_matches_numpy(matkron.chain_order(dims).execute(arrays), native)
        if not (vf or vl):
            out = np.empty((dims[0], dims[-1]), dtype=np.dtype(dtype).newbyteorder("="))
            assert matkron.multi_dot(swapped, out=out) is out
            assert_matches_numpy(out, native)


@pytest.mark.skipif(sys.platform not in ("linux", "darwin") or sys.maxsize < 2**40,
                    reason="needs sparse files and a 64-bit address space")
def test_strides_beyond_the_blas_integer(rng, tmp_path):
    # A column stride of 2**32 + 3 elements, in a sparse memory-mapped file (no disk used):
    # truncated to the 32-bit BLAS integer it would read as 3. Inputs so strided must be
    # copied, and an out= so strided written through a temporary, never with a stray ld.
    stride = 2**32 + 3
    path = tmp_path / "sparse.bin"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=(2 * stride + 64,))
    try:
        view = np.lib.stride_tricks.as_strided(mm, shape=(3, 3), strides=(8, 8 * stride))
        view[...] = rng.standard_normal((3, 3))
        A, B, C = np.array(view), rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
        expected = np.linalg.multi_dot([A, B, C])
        np.testing.assert_allclose(matkron.multi_dot([view, B, C]), expected, rtol=1e-12)
        np.testing.assert_allclose(matkron.chain_order([3, 3, 4, 2]).execute([view, B, C]),
                                   expected, rtol=1e-12)
        view[...] = 0
        expected = np.linalg.multi_dot([A, B, B.T])
        assert matkron.multi_dot([A, B, B.T], out=view) is view
        np.testing.assert_allclose(view, expected, rtol=1e-12)
        np.testing.assert_array_equal(mm[3:64], 0)   # nothing written past column 0
        with pytest.raises(ValueError, match="not BLAS-writable"):
            _chain_cy.execute((A, B, B.T), np.array([[0, 0, 1], [0, 1, 2]], np.intp), view,
                              np.empty(64))
    finally:
        del mm
        path.unlink()


@pytest.mark.parametrize("dtype, strides", [("complex128", (16, 40)), ("complex128", (40, 16)),
                                            ("complex64", (8, 20)), ("complex64", (20, 8))])
def test_multi_dot_out_strides_not_a_multiple_of_the_itemsize(dtype, strides, rng):
    # Aligned for the dtype, but a stride BLAS cannot express: written through a temporary.
    arrays = chain_arrays(rng, [2, 3, 4, 2], dtype)
    for run in (lambda o: matkron.multi_dot(arrays, out=o),
                lambda o: matkron.chain_order([2, 3, 4, 2]).execute(arrays, out=o)):
        buffer = np.zeros(200)
        out = np.ndarray((2, 2), dtype, buffer=buffer, strides=strides)
        assert out.flags.aligned
        assert run(out) is out
        assert_matches_numpy(out, arrays)


def test_multi_dot_promotes_step_by_step_as_numpy(rng):
    # numpy.linalg.multi_dot promotes product by product: bool @ bool is bool (logical),
    # int8 @ int8 wraps around, float16 @ float16 rounds to float16, whatever comes later.
    ones = np.ones
    cases = [
        [ones((1, 2), bool), ones((2, 1), bool), ones((1, 1), np.int8)],
        [ones((1, 2), bool), ones((2, 1), bool), ones((1, 1), np.float32)],
        [ones((1, 2), bool), ones((2, 1), bool), ones((1, 3), np.float64), ones((3, 2))],
        [np.full((2, 3), 100, np.int8), np.full((3, 1), 3, np.int8), ones((1, 4))],
        [np.full((2, 3), 100, np.int8), np.full((3, 1), 3, np.int8), ones((1, 4), np.int64)],
        [ones((3, 4), np.float16) / 3, ones((4, 1), np.float16) / 7, ones((1, 5), np.float32)],
        [ones((2, 3), np.uint8), ones((3, 1), np.int8), ones((1, 2), np.float16)],
        [ones((4, 1)), ones((1, 3), bool), ones((3, 2), bool), ones((2, 2), np.int8)],
        [ones(3), ones((3, 2), bool), ones((2, 2), bool), ones(2, np.float32)],
    ]
    for arrays in cases:
        last = arrays[-1] if arrays[-1].ndim == 2 else arrays[-1][:, None]
        mats = [np.atleast_2d(arrays[0])] + arrays[1:-1] + [last]
        dims = [mats[0].shape[0]] + [m.shape[1] for m in mats]
        expected = np.linalg.multi_dot(arrays)
        for result in (matkron.multi_dot(arrays), matkron.chain_order(dims).execute(arrays)):
            assert np.asarray(result).dtype == np.asarray(expected).dtype
            np.testing.assert_array_equal(result, expected)
    mixed = [random_array(rng, s, d) for s, d in (((3, 4), "int8"), ((4, 2), "bool"),
                                                 ((2, 5), "int8"), ((5, 2), "float64"))]
    assert_matches_numpy(matkron.multi_dot(mixed), mixed)


def test_hu_shing_time_stated_consistently():
    # Heaps merged smaller into larger: O(k log² k), as implemented, wherever it is stated.
    from matkron import _hu_shing

    for doc in (_hu_shing.__doc__, matkron.chain_order.__doc__):
        assert "O(k log² k)" in doc
        assert "O(k log k)" not in doc
