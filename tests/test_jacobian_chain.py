"""jacobian_chain, JacobianChainOperator and JacobianChainPlan against independent oracles.

Oracles: ``numpy.linalg.multi_dot`` of the dense Jacobians (products, adjoints), a brute
force over every bracketing and every mode of every Jacobian written here from the cost
model of the Notes (k <= 6), hand-written sums for forward and reverse mode, and operators
that count the vectors they are applied to (the executed plan against the reported one).
"""

import itertools
import math
import pickle
import threading

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import matkron

from .conftest import DTYPES, LAYOUTS, frechet_dense, random_array, rtol, with_layout

# ---------------------------------------------------------------------------------------
# Helpers and oracles


class CountingOperator(LinearOperator):
    """A dense matrix as a LinearOperator that counts the vectors it is applied to.

    ``tangent`` counts columns through matvec/matmat, ``adjoint`` through
    rmatvec/rmatmat; ``M`` is the matrix (the oracle's dense form).
    """

    def __init__(self, M, matvec_cost=None, rmatvec_cost=None):
        self.M = M
        self.tangent = 0
        self.adjoint = 0
        if matvec_cost is not None:
            self.matvec_cost = matvec_cost
        if rmatvec_cost is not None:
            self.rmatvec_cost = rmatvec_cost
        super().__init__(M.dtype, M.shape)

    def _matvec(self, x):
        self.tangent += 1
        return self.M @ x.reshape(-1)

    def _matmat(self, X):
        self.tangent += X.shape[1]
        return self.M @ X

    def _rmatvec(self, x):
        self.adjoint += 1
        return self.M.conj().T @ x.reshape(-1)

    def _rmatmat(self, X):
        self.adjoint += X.shape[1]
        return self.M.conj().T @ X


def dense(op):
    """The dense matrix of a Jacobian, without matkron."""
    if isinstance(op, CountingOperator):
        return op.M
    if scipy.sparse.issparse(op):
        return op.toarray()
    if isinstance(op, LinearOperator):
        return op.matmat(np.eye(op.shape[1], dtype=op.dtype))
    return np.asarray(op)


def oracle(ops):
    """J_{k-1} ⋯ J_0 by numpy."""
    mats = [dense(op) for op in reversed(ops)]
    return mats[0].copy() if len(mats) == 1 else np.linalg.multi_dot(mats)


def brute_force(n, c, r, given):
    """The least cost over every bracketing and every role of every leaf, by enumeration.

    Leaf t (n[t] → n[t+1], matvec cost c[t], rmatvec cost r[t]) is "given" (an array, its
    own dense matrix, free), "free" (applied matrix-free to the dense block next to it:
    n_i c_t from the left, n_{j+1} r_t from the right), or, if not given, formed densely
    as J I (n[t] c[t]) or I J (n[t+1] r[t]). Two dense blocks multiply at p q r; two free
    leaves cannot meet, and the result must be dense.
    """
    L = len(c)

    def trees(i, j):
        if i == j:
            yield i
            return
        for s in range(i, j):
            for right in trees(i, s):
                for left in trees(s + 1, j):
                    yield (left, right)  # left: the later Jacobians, written first

    def span(tree):
        if isinstance(tree, int):
            return tree, tree
        return span(tree[1])[0], span(tree[0])[1]

    def cost(tree, roles):
        """(dense?, cost) of a subtree."""
        if isinstance(tree, int):
            role = roles[tree]
            if role == "given":
                return True, 0
            if role == "free":
                return False, 0
            if role == "JI":
                return True, 0 if n[tree] == 0 else n[tree] * c[tree]
            return True, 0 if n[tree + 1] == 0 else n[tree + 1] * r[tree]
        left, right = tree
        i, j = span(tree)
        (ld, lc), (rd, rc) = cost(left, roles), cost(right, roles)
        if not ld and not rd:
            return True, math.inf
        if not ld:  # J_j applied to the block of columns on its right
            return True, rc + (0 if n[i] == 0 else n[i] * c[j])
        if not rd:  # the block of rows on its left times J_i
            return True, lc + (0 if n[j + 1] == 0 else n[j + 1] * r[i])
        s = span(right)[1]
        return True, lc + rc + n[j + 1] * n[s + 1] * n[i]

    options = [("given", "free") if g else ("free", "JI", "IJ") for g in given]
    best = math.inf
    for tree in trees(0, L - 1):
        for roles in itertools.product(*options):
            is_dense, value = cost(tree, roles)
            if is_dense:
                best = min(best, value)
    return best


def random_chain(rng, dims, kinds, dtype=np.float64, hints=False):
    """ops for sizes `dims` with kinds "array", "sparse", "operator" (counting) and, with
    `hints`, random costs for the operators; also the per-op (matvec, rmatvec) costs."""
    ops, costs, c, r = [], [], [], []
    for t, kind in enumerate(kinds):
        shape = (dims[t + 1], dims[t])
        M = random_array(rng, shape, dtype)
        if kind == "array":
            ops.append(M)
            costs.append(None)
            c.append(shape[0] * shape[1])
            r.append(shape[0] * shape[1])
        elif kind == "sparse":
            S = scipy.sparse.random_array(shape, density=0.3, rng=rng, format="csr",
                                          dtype=dtype)
            ops.append(S)
            costs.append(None)
            c.append(S.nnz)
            r.append(S.nnz)
        else:
            ops.append(CountingOperator(M))
            if hints:
                cost = (int(rng.integers(1, 3 * shape[0] * shape[1] + 2)),
                        int(rng.integers(1, 3 * shape[0] * shape[1] + 2)))
            else:
                cost = (shape[0] * shape[1],) * 2
            costs.append(cost if hints else None)
            c.append(cost[0])
            r.append(cost[1])
    return ops, costs, c, r


def forward_formula(n, c, given):
    return (0 if given[0] else n[0] * c[0]) + n[0] * sum(c[1:])


def reverse_formula(n, r, given):
    return (0 if given[-1] else n[-1] * r[-1]) + n[-1] * sum(r[:-1])


def counts(ops):
    return tuple((op.tangent, op.adjoint) if isinstance(op, CountingOperator) else None
                 for op in ops)


def reset(ops):
    for op in ops:
        if isinstance(op, CountingOperator):
            op.tangent = op.adjoint = 0


def check_counts(ops, plan, c, r):
    """The operators saw what the plan reports, and the plan's cost adds up."""
    for got, reported in zip(counts(ops), plan.applications):
        if got is not None:
            assert got == reported
    total = sum(a * ct + b * rt for (a, b), ct, rt in zip(plan.applications, c, r)
                if a * ct + b * rt)
    assert plan.cost == total + plan.gemm_cost


KINDS = ("array", "sparse", "operator")


# ---------------------------------------------------------------------------------------
# The plan against brute force and the formulas


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_plan_is_optimal_against_brute_force(k):
    rng = np.random.default_rng(100 + k)
    trials = {1: 12, 2: 12, 3: 12, 4: 10, 5: 6, 6: 2}[k]
    for _ in range(trials):
        dims = rng.integers(1, 9, size=k + 1).tolist()
        kinds = rng.choice(KINDS, size=k, p=[0.35, 0.15, 0.5]).tolist()
        ops, costs, c, r = random_chain(rng, dims, kinds, hints=bool(rng.integers(2)))
        given = [kind != "operator" for kind in kinds]
        J = matkron.jacobian_chain(ops, costs=costs)
        plan = J.plan
        assert plan.dims == tuple(dims) and plan.k == k
        assert plan.cost == brute_force(dims, c, r, given)
        assert plan.forward_cost == forward_formula(dims, c, given)
        assert plan.reverse_cost == reverse_formula(dims, r, given)
        assert plan.cost <= min(plan.forward_cost, plan.reverse_cost)
        reset(ops)
        np.testing.assert_allclose(J.todense(), oracle(ops), rtol=1e-12, atol=1e-12)
        check_counts(ops, plan, c, r)
        if k <= 5:  # J @ X: X is one more leaf
            m = int(rng.integers(1, 7))
            X = rng.standard_normal((dims[0], m))
            pplan = J.product_plan(m)
            ext = [m] + dims
            xc = [dims[0] * m] + c
            assert pplan.columns == m
            assert pplan.cost == brute_force(ext, xc, [dims[0] * m] + r, [True] + given)
            assert pplan.forward_cost == m * sum(c)
            assert pplan.reverse_cost == reverse_formula(dims, r, given) + dims[-1] * dims[0] * m
            reset(ops)
            np.testing.assert_allclose(J @ X, oracle(ops) @ X, rtol=1e-12, atol=1e-12)
            check_counts(ops, pplan, c, r)


def test_dense_chains_agree_with_chain_order():
    # For arrays alone the model is the matrix chain's: chain_order (a compiled DP over the
    # chain in written order, n_k … n_0) gives the same optimum and the same two modes.
    rng = np.random.default_rng(16)
    for _ in range(40):
        k = int(rng.integers(1, 9))
        dims = rng.integers(1, 40, size=k + 1).tolist()
        ops = [np.ones((dims[t + 1], dims[t])) for t in range(k)]
        plan = matkron.jacobian_chain(ops).plan
        reference = matkron.chain_order(dims[::-1])
        assert plan.cost == reference.cost
        assert plan.forward_cost == reference.right_to_left_cost
        assert plan.reverse_cost == reference.left_to_right_cost


def test_brute_force_reference():
    # The oracle itself on cases worked out by hand.
    # Three dense arrays 10×100, 100×5, 5×50 (written order): chain_order's example.
    n = [50, 5, 100, 10]
    assert brute_force(n, [250, 500, 1000], [250, 500, 1000], [True] * 3) == 7500
    # One operator 1×40 of cost 40 with 40 columns: min(40·40 tangent, 1·40 adjoint).
    assert brute_force([40, 1], [40], [40], [False]) == 40
    # Two operators: I J1 then times J0 (reverse): 1·c1 + 1·c0.
    assert brute_force([40, 30, 1], [1200, 30], [1200, 30], [False, False]) == 1230


def test_forward_and_reverse_modes_forced():
    rng = np.random.default_rng(3)
    dims = [7, 4, 6, 3, 5]
    ops, _, c, r = random_chain(rng, dims, ["operator", "array", "operator", "operator"])
    given = [False, True, False, False]
    for mode, formula, side in (("forward", forward_formula(dims, c, given), 0),
                                ("reverse", reverse_formula(dims, r, given), 1)):
        J = matkron.jacobian_chain(ops, mode=mode)
        assert J.plan.mode == mode and J.plan.cost == formula
        reset(ops)
        np.testing.assert_allclose(J.todense(), oracle(ops), rtol=1e-12)
        for op, got in zip(ops, counts(ops)):
            if got is not None:
                assert got[1 - side] == 0 and got[side] > 0
        check_counts(ops, J.plan, c, r)
        X = rng.standard_normal((7, 2))
        reset(ops)
        np.testing.assert_allclose(J @ X, oracle(ops) @ X, rtol=1e-12)
        check_counts(ops, J.product_plan(2), c, r)
    assert str(matkron.jacobian_chain(ops, mode="forward").plan) == "J3 (J2 (J1 (J0 I)))"
    assert str(matkron.jacobian_chain(ops, mode="reverse").plan) == "(((I J3) J2) J1) J0"


def test_plan_strings():
    ops = [aslinearoperator(np.ones((30, 40))), aslinearoperator(np.ones((1, 30)))]
    assert str(matkron.jacobian_chain(ops, mode="forward").plan) == "J1 (J0 I)"
    assert str(matkron.jacobian_chain(ops, mode="reverse").plan) == "(I J1) J0"
    three = ops + [aslinearoperator(np.ones((2, 1)))]
    assert str(matkron.jacobian_chain(three, mode="forward").plan) == "J2 (J1 (J0 I))"
    assert str(matkron.jacobian_chain(three, mode="reverse").plan) == "((I J2) J1) J0"
    # A bottleneck of 1 in the middle: form the two halves, then one outer product.
    A, B = np.ones((1, 40)), np.ones((40, 1))
    plan = matkron.jacobian_chain([A, B]).plan
    assert str(plan) == "J1 J0" and plan.cost == 1600
    J = matkron.jacobian_chain(three)
    assert str(J.plan) == "J2 ((I J1) J0)" and J.plan.mode == "mixed"
    assert repr(J.plan) == ("<JacobianChainPlan J2 ((I J1) J0): mixed mode, cost=1310 "
                            "(forward 49280, reverse 2464)>")
    assert "JacobianChainOperator of 3 Jacobians" in repr(J)
    assert repr(J.product_plan(4)).startswith("<JacobianChainPlan for X of 4 columns")


def test_scalar_output_is_reverse_mode():
    rng = np.random.default_rng(11)
    for _ in range(20):
        k = int(rng.integers(1, 7))
        dims = rng.integers(1, 30, size=k).tolist() + [1]
        ops, _, c, _ = random_chain(rng, dims, ["operator"] * k)
        J = matkron.jacobian_chain(ops)
        assert J.plan.mode == "reverse" and J.plan.cost == J.plan.reverse_cost == sum(c)
        reset(ops)
        np.testing.assert_allclose(J.todense(), oracle(ops), rtol=1e-12)
        assert counts(ops) == ((0, 1),) * k
    # With dense layers too, when the input is the largest size: left to right, the last
    # operator applied to the 50 columns of the array J2 applied before it (50 matvecs,
    # 4000) rather than formed (one rmatvec, 80) and multiplied (4000).
    dims = [200, 50, 50, 80, 1]
    ops = random_chain(rng, dims, ["array", "operator", "array", "operator"])[0]
    J = matkron.jacobian_chain(ops)
    assert J.plan.mode == "reverse" and str(J.plan) == "((J3 J2) J1) J0"
    assert J.plan.cost == 50 * 80 + 50 * 50 + 50 * 200 < J.plan.reverse_cost
    for _ in range(30):
        k = int(rng.integers(2, 7))
        dims = [60] + rng.integers(1, 30, size=k - 1).tolist() + [1]
        kinds = rng.choice(KINDS, size=k).tolist()
        ops = random_chain(rng, dims, kinds)[0]
        J = matkron.jacobian_chain(ops)
        assert J.plan.mode == "reverse", (dims, kinds, str(J.plan))


def test_mixed_plan_beats_both_modes():
    # Wide, narrow, wide: tangent through the first half, adjoint through the second,
    # and one product of the two dense halves.
    rng = np.random.default_rng(5)
    dims = [60, 2, 60, 2, 60]
    ops, _, c, r = random_chain(rng, dims, ["operator"] * 4)
    J = matkron.jacobian_chain(ops)
    assert J.plan.mode == "mixed"
    assert J.plan.cost < min(J.plan.forward_cost, J.plan.reverse_cost)
    reset(ops)
    np.testing.assert_allclose(J.todense(), oracle(ops), rtol=1e-12, atol=1e-12)
    check_counts(ops, J.plan, c, r)


def test_matvec_cost_attributes():
    rng = np.random.default_rng(8)
    M = rng.standard_normal((20, 20))
    cheap = CountingOperator(M, matvec_cost=20, rmatvec_cost=4000)
    J = matkron.jacobian_chain([cheap, np.ones((1, 20))])
    assert J.costs[0] == (20, 4000)
    assert J.plan.mode == "forward" and J.plan.cost == 20 * 20 + 20 * 20
    # A hint overrides the attributes.
    J = matkron.jacobian_chain([cheap, np.ones((1, 20))], costs=[(4000, 20), None])
    assert J.costs == ((4000, 20), (20, 20)) and J.plan.mode == "reverse"


def test_operator_without_adjoint():
    rng = np.random.default_rng(9)
    M = rng.standard_normal((5, 6))
    calls = []

    def matvec(x):
        calls.append(1)
        return M @ x.reshape(-1)

    op = LinearOperator((5, 6), matvec=matvec, dtype=np.float64)
    J = matkron.jacobian_chain([op, np.ones((1, 5))])
    assert J.costs[0] == (30, math.inf) and J.plan.reverse_cost == math.inf
    assert J.plan.mode == "forward"
    np.testing.assert_allclose(J.todense(), np.ones((1, 5)) @ M, rtol=1e-12)
    with pytest.raises(ValueError, match=r"mode='reverse' needs the adjoint.*ops\[0\]"):
        matkron.jacobian_chain([op, np.ones((1, 5))], mode="reverse")
    # The pair hint with None says the same.
    B = CountingOperator(rng.standard_normal((5, 6)))
    J = matkron.jacobian_chain([B, np.ones((1, 5))], costs=[(30, None), None])
    J.todense()
    assert B.adjoint == 0 and B.tangent == 6


# ---------------------------------------------------------------------------------------
# Values: dtypes, kinds, adjoints, shapes


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes_and_adjoints(dtype):
    rng = np.random.default_rng(21)
    dims = [6, 3, 7, 2, 5]
    ops, _, _, _ = random_chain(rng, dims, ["operator", "sparse", "array", "operator"],
                                dtype=dtype)
    J = matkron.jacobian_chain(ops)
    assert J.dtype == dtype and J.shape == (5, 6)
    ref = oracle([op if not isinstance(op, CountingOperator) else op.M for op in ops])
    ref = np.asarray(ref, dtype=np.complex128)
    tol = {"rtol": rtol(dtype), "atol": rtol(dtype) * np.abs(ref).max()}
    D = J.todense()
    assert D.dtype == dtype
    np.testing.assert_allclose(D, ref, **tol)
    x = random_array(rng, (6, 3), dtype)
    y = random_array(rng, (5,), dtype)
    Y = J @ x
    assert Y.dtype == dtype
    np.testing.assert_allclose(Y, ref @ x, **tol)
    np.testing.assert_allclose(J.matvec(x[:, 0]), ref @ x[:, 0], **tol)
    # Complex adjoints conjugate.
    np.testing.assert_allclose(J.H @ y, ref.conj().T @ y, **tol)
    np.testing.assert_allclose(J.rmatvec(y), ref.conj().T @ y, **tol)
    np.testing.assert_allclose(J.H.todense(), ref.conj().T, **tol)
    assert J.H.H is J
    # <J x, y> = <x, Jᴴ y>
    lhs = np.vdot(y, J @ x[:, 0])
    rhs = np.vdot(J.H @ y, x[:, 0])
    assert abs(lhs - rhs) <= rtol(dtype) * (np.abs(y) @ np.abs(ref) @ np.abs(x[:, 0]))


def test_adjoint_plan_swaps_the_modes():
    rng = np.random.default_rng(4)
    ops, _, _, _ = random_chain(rng, [40, 30, 1], ["operator", "operator"])
    J = matkron.jacobian_chain(ops)
    assert J.plan.mode == "reverse" and J.H.plan.mode == "forward"
    assert J.H.plan.cost == J.plan.cost
    reset(ops)
    J.H.todense()
    assert counts(ops) == ((0, 1), (0, 1))  # the adjoint's tangent is the op's adjoint
    assert matkron.jacobian_chain(ops, mode="forward").H.mode == "reverse"


def test_mixed_kinds_and_promotion():
    rng = np.random.default_rng(12)
    A = rng.integers(-3, 4, size=(4, 3))  # integers compute in float64
    S = scipy.sparse.csr_matrix(rng.standard_normal((5, 4)))  # sparse matrix, not array
    L = aslinearoperator(rng.standard_normal((2, 5)).astype(np.float32))
    lst = [[1.0, 2.0]]  # a nested list is an array
    ops = [A, S, L, lst]
    J = matkron.jacobian_chain(ops)
    assert J.dtype == np.float64 and J.shape == (1, 3)
    ref = np.asarray(lst) @ L.matmat(np.eye(5, dtype=np.float32)) @ S.toarray() @ A
    np.testing.assert_allclose(J.todense(), ref, rtol=1e-6)
    np.testing.assert_allclose(J @ np.ones(3), ref @ np.ones(3), rtol=1e-6)
    # A float32 operand of a float64 chain gives float64; an int operand too.
    assert (J @ np.ones(3, dtype=np.float32)).dtype == np.float64
    assert (J @ np.ones(3, dtype=np.int64)).dtype == np.float64


def test_single_jacobian():
    A = np.arange(6.0).reshape(2, 3)
    J = matkron.jacobian_chain([A])
    D = J.todense()
    np.testing.assert_array_equal(D, A)
    assert D is not A and not np.shares_memory(D, A)
    assert J.plan.cost == 0 and str(J.plan) == "J0"
    op = CountingOperator(A)
    J = matkron.jacobian_chain([op])
    np.testing.assert_array_equal(J.todense(), A)
    assert (op.tangent, op.adjoint) == (0, 2)  # min(3 columns, 2 rows)
    assert str(J.plan) == "I J0"


@pytest.mark.parametrize("dims", [[0, 3, 2], [3, 0, 2], [3, 2, 0], [0, 0]])
def test_zero_sizes(dims):
    ops = [CountingOperator(np.ones((dims[t + 1], dims[t]))) for t in range(len(dims) - 1)]
    J = matkron.jacobian_chain(ops)
    assert J.plan.cost == 0
    np.testing.assert_array_equal(J.todense(), np.zeros((dims[-1], dims[0])))
    np.testing.assert_array_equal(J @ np.ones(dims[0]), np.zeros(dims[-1]))
    np.testing.assert_array_equal(J @ np.ones((dims[0], 0)), np.zeros((dims[-1], 0)))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts(layout):
    # Arrays in the chain and the operand in every memory layout give the same values.
    rng = np.random.default_rng(15)
    A, B, x = rng.standard_normal((5, 3)), rng.standard_normal((4, 5)), rng.standard_normal((3, 2))
    L = aslinearoperator(rng.standard_normal((5, 5)))
    ref = B @ L.matmat(np.eye(5)) @ A
    J = matkron.jacobian_chain([with_layout(A, layout), L, with_layout(B, layout)])
    np.testing.assert_allclose(J.todense(), ref, rtol=1e-12)
    np.testing.assert_allclose(J @ with_layout(x, layout), ref @ x, rtol=1e-12)
    np.testing.assert_allclose(J @ with_layout(x[:, 0], layout), ref @ x[:, 0], rtol=1e-12)
    np.testing.assert_allclose(J.H.todense(), ref.T, rtol=1e-12)


def test_inputs_not_modified():
    rng = np.random.default_rng(13)
    A = rng.standard_normal((4, 3))
    B = rng.standard_normal((2, 4))
    for a in (A, B):
        a.flags.writeable = False
    x = rng.standard_normal(3)
    x.flags.writeable = False
    before = [A.copy(), B.copy(), x.copy()]
    J = matkron.jacobian_chain([A, aslinearoperator(rng.standard_normal((4, 4))), B])
    J.todense(), J @ x, J.H @ np.ones(2), J.H.todense()
    for a, b in zip((A, B, x), before):
        np.testing.assert_array_equal(a, b)


def test_threads_share_one_operator():
    rng = np.random.default_rng(17)
    ops = [rng.standard_normal((6, 5)), aslinearoperator(rng.standard_normal((6, 6))),
           rng.standard_normal((3, 6))]
    ref = oracle(ops)
    J = matkron.jacobian_chain(ops)
    X = [rng.standard_normal((5, m)) for m in range(1, 9)]
    errors = []

    def work(t):
        for _ in range(20):
            for x in X[t::2]:  # plans for new column counts are made concurrently
                if not np.allclose(J @ x, ref @ x, rtol=1e-12):
                    errors.append(("product", x.shape))
            if not np.allclose(J.todense(), ref, rtol=1e-12):
                errors.append("todense")

    threads = [threading.Thread(target=work, args=(t % 2,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_pickle_round_trip():
    rng = np.random.default_rng(14)
    ops = [rng.standard_normal((4, 3)), aslinearoperator(rng.standard_normal((5, 4))),
           scipy.sparse.csr_array(rng.standard_normal((2, 5)))]
    J = matkron.jacobian_chain(ops, costs=[None, (7, 9), None])
    J @ np.ones(3), J.H.todense()
    back = pickle.loads(pickle.dumps(J))
    assert back.costs == J.costs and str(back.plan) == str(J.plan)
    np.testing.assert_allclose(back.todense(), J.todense(), rtol=1e-14)
    np.testing.assert_allclose(back.H @ np.ones(2), J.H @ np.ones(2), rtol=1e-14)


# ---------------------------------------------------------------------------------------
# Errors


def test_shape_mismatch_names_index_and_shapes():
    with pytest.raises(ValueError, match=r"ops\[1\] has shape \(5, 4\); expected \(5, 3\).*"
                                         r"rows of ops\[0\] of shape \(3, 2\)"):
        matkron.jacobian_chain([np.ones((3, 2)), np.ones((5, 4))])
    with pytest.raises(ValueError, match=r"ops\[2\] has shape \(2, 2\); expected \(2, 6\)"):
        matkron.jacobian_chain([np.ones((3, 2)), aslinearoperator(np.ones((6, 3))),
                                scipy.sparse.eye_array(2)])


@pytest.mark.parametrize("ops, error, match", [
    ([], ValueError, "at least one Jacobian"),
    (np.ones((2, 2)), TypeError, "sequence of Jacobians"),
    (5, TypeError, "sequence of Jacobians"),
    ([np.ones((2, 2)), np.ones(2)], ValueError, r"ops\[1\] has shape \(2,\); expected a 2-D"),
    ([np.ones((2, 2, 2))], ValueError, r"ops\[0\] has shape \(2, 2, 2\)"),
    ([np.array([["a"]])], TypeError, r"ops\[0\] has dtype"),
    ([np.ones((1, 1), dtype=object)], TypeError, r"ops\[0\] has dtype object"),
])
def test_bad_ops(ops, error, match):
    with pytest.raises(error, match=match):
        matkron.jacobian_chain(ops)


@pytest.mark.parametrize("costs, error, match", [
    ([1], ValueError, r"costs has 1 entries; expected 2"),
    ("ab", TypeError, "costs must be a sequence"),
    ([None, -1], ValueError, r"costs\[1\] must be non-negative; got -1"),
    ([True, None], TypeError, r"costs\[0\] must be a real number; got the bool True"),
    ([None, "3"], TypeError, r"costs\[1\] must be a real number; got '3'"),
    ([math.nan, None], ValueError, r"costs\[0\] must be finite"),
    ([(1, 2, 3), None], ValueError, r"costs\[0\] must be a number or a pair"),
    ([(None, 2), None], TypeError, r"costs\[0\]\[0\] must be a real number; got None"),
])
def test_bad_costs(costs, error, match):
    with pytest.raises(error, match=match):
        matkron.jacobian_chain([np.ones((3, 2)), np.ones((1, 3))], costs=costs)


def test_bad_mode_and_operand():
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'forward', 'reverse'"):
        matkron.jacobian_chain([np.ones((3, 2))], mode="tangent")
    J = matkron.jacobian_chain([np.ones((3, 2)), np.ones((1, 3))])
    with pytest.raises(ValueError, match=r"x has shape \(3,\); expected \(2,\) or \(2, k\)"):
        J @ np.ones(3)
    with pytest.raises(ValueError, match="columns must be non-negative"):
        J.product_plan(-1)


def test_operators_writing_their_input_leave_the_callers_arrays(rng):
    # An operator may overwrite the block it is given: the caller's arrays are never
    # handed to it (the docstring's promise of fresh arrays).
    A = rng.standard_normal((4, 3))
    X = rng.standard_normal((3, 2))
    M = rng.standard_normal((5, 4))

    def scribble(V):
        out = M @ V
        V[...] = np.nan
        return out

    op = LinearOperator((5, 4), matvec=scribble, matmat=scribble,
                        rmatvec=lambda v: M.T @ v, rmatmat=lambda V: M.T @ V, dtype=M.dtype)
    A0, X0 = A.copy(), X.copy()
    J = matkron.jacobian_chain([A, op], costs=[None, (1, 10**6)])  # the tangent step
    np.testing.assert_allclose(J.todense(), M @ A0, rtol=1e-12)
    np.testing.assert_allclose(J @ X, M @ A0 @ X0, rtol=1e-12)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(X, X0)


def test_matkron_operators_carry_their_cost_hints():
    # PowerJacobian and FrechetOperator cost about c m³ per product, not the m⁴ of their
    # dense matrix, and jacobian_chain prices them so: the same plan as with those costs
    # given explicitly; a counted product agrees with the power's GEMMs.
    m = 16
    rng = np.random.default_rng(3)
    A = rng.standard_normal((m, m)) / m + np.eye(m)
    Ainv = np.linalg.inv(A)
    dense = [
        # d(A⁵) = Σₖ (A^{4-k})ᵀ ⊗ A^k; L_exp by its block formula; L_inv = -(A⁻ᵀ ⊗ A⁻¹).
        sum(np.kron(np.linalg.matrix_power(A, 4 - k).T, np.linalg.matrix_power(A, k))
            for k in range(5)),
        frechet_dense(scipy.linalg.expm, A),
        -np.kron(Ainv.T, Ainv),
    ]
    for J, D in zip((matkron.power_jacobian(A, 5, method="binary"),
                     matkron.frechet("expm", A), matkron.frechet("inv", A)), dense):
        assert 0 < J.matvec_cost < m**4 and 0 < J.rmatvec_cost < m**4
        B = rng.standard_normal((m * m, 3))
        C = rng.standard_normal((2, m * m))
        hinted = matkron.jacobian_chain([B, J, C])
        explicit = matkron.jacobian_chain([B, J, C],
                                          costs=[None, (J.matvec_cost, J.rmatvec_cost), None])
        assert str(hinted.plan) == str(explicit.plan)
        assert hinted.plan.cost == explicit.plan.cost
        np.testing.assert_allclose(hinted.todense(), C @ D @ B, rtol=1e-10)
    # binary powering of n = 5: 2 (⌊log₂ 5⌋ + popcount(5) − 1) = 6 GEMMs per product
    assert matkron.power_jacobian(A, 5, method="binary").matvec_cost == 6 * m**3
