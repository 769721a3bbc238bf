"""Argument checks through the public API: one phrasing and one exception type per mistake
(matkron._validation), and SciPy's ``args`` on every LinearOperator matkron defines.

Each message names the argument, what it must be, and what was given: "{name} must be …;
got …" or "{name} has shape …; expected …". A wrong type is a TypeError, a wrong value or
shape a ValueError, wherever the mistake is made.
"""

import ast
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
from scipy.sparse.linalg import LinearOperator

import matkron
from matkron._bench.jacobian_chain import DiagonalJacobian

ROOT = Path(__file__).resolve().parent.parent

A = np.diag([2.0, 3.0])
NOT_HERMITIAN = np.array([[1.0, 2.0], [0.0, 1.0]])
NAN = np.array([[np.nan, 0.0], [0.0, 1.0]])
OPAQUE = scipy.sparse.linalg.LinearOperator((2, 2), matvec=lambda v: v, dtype=float)

# (call, exception, the whole message): each names the argument, the expected and the given.
CASES = {
    # check_choice
    "norm ord": (lambda: matkron.kron(A).norm("max"), ValueError,
                 "ord must be one of None, 'fro', 'nuc', 1, 2, inf; got 'max'"),
    "cond ord": (lambda: matkron.kron(A).cond(3), ValueError,
                 "ord must be one of None, 'fro', 'nuc', 1, 2, inf; got 3"),
    "ord bool": (lambda: matkron.kron(A).norm(True), ValueError,
                 "ord must be one of None, 'fro', 'nuc', 1, 2, inf; got True"),
    "chain method": (lambda: matkron.chain_order([2, 3], method="greedy"), ValueError,
                     "method must be one of 'dp', 'hu-shing'; got 'greedy'"),
    "jacobian mode": (lambda: matkron.jacobian_chain([A], mode=None), ValueError,
                      "mode must be one of 'auto', 'forward', 'reverse'; got None"),
    "planner mode": (lambda: matkron.set_planner("patient"), ValueError,
                     "mode must be one of 'estimate', 'measure'; got 'patient'"),
    "power method": (lambda: matkron.power_jacobian(A, 2, method=1), ValueError,
                     "method must be one of 'auto', 'naive', 'horner', 'binary', 'eig', "
                     "'dense'; got 1"),
    "frechet f": (lambda: matkron.frechet("cosm", A), ValueError,
                  "f must be one of 'expm', 'logm', 'sqrtm', 'inv', 'power' or a callable; "
                  "got 'cosm'"),
    "cond norm": (lambda: matkron.cond("expm", A, norm=2), ValueError,
                  "norm must be one of 'fro', 1; got 2"),
    # check_number and check_bool
    "coeff": (lambda: matkron.KronOperator([A], coeff="2"), TypeError,
              "coeff must be a number; got '2' of type str"),
    "coeffs[i]": (lambda: matkron.sum_of_kron([(A, A)], coeffs=[None]), TypeError,
                  "coeffs[0] must be a number; got None of type NoneType"),
    "power p": (lambda: matkron.kron(A).power("2"), TypeError,
                "p must be a real number; got '2' of type str"),
    "power p complex": (lambda: matkron.kron(A).power(0.5j), TypeError,
                        "p must be a real number; got 0.5j of type complex"),
    "power p bool": (lambda: matkron.kron(A).power(True), TypeError,
                     "p must be a real number; got the bool True"),
    "frechet p": (lambda: matkron.frechet("power", A, p=[2]), TypeError,
                  "p must be a real number; got [2] of type list"),
    "frechet p nan": (lambda: matkron.frechet("power", A, p=np.nan), ValueError,
                      "p must be finite; got nan"),
    "rtol type": (lambda: matkron.cond("expm", A, rtol="small"), TypeError,
                  "rtol must be a real number; got 'small' of type str"),
    "cost": (lambda: matkron.jacobian_chain([A], costs=[-2.5]), ValueError,
             "costs[0] must be non-negative; got -2.5"),
    "relative": (lambda: matkron.cond("expm", A, relative=1), TypeError,
                 "relative must be True or False; got 1 of type int"),
    # count
    "threads type": (lambda: matkron.set_num_threads(2.0), TypeError,
                     "n must be an integer; got 2.0 of type float"),
    "threads range": (lambda: matkron.set_num_threads(0), ValueError,
                      "n must be from 1 to 2147483647; got 0"),
    "dims too large": (lambda: matkron.chain_order([2, 2**63]), ValueError,
                       f"dims[1] must be at most {2**63 - 1}; got {2**63}"),
    "power n": (lambda: matkron.power_jacobian(A, -1), ValueError,
                "n must be non-negative; got -1"),
    # as_list, check_nonempty, check_length
    "one array": (lambda: matkron.KronOperator(A), TypeError,
                  "factors must be a sequence of 2-D arrays (a single factor in a list); got "
                  "an array of shape (2, 2)"),
    "not a sequence": (lambda: matkron.jacobian_chain(matkron.kron(A)), TypeError,
                       "ops must be a sequence of Jacobians (LinearOperators or arrays), "
                       "ops[0] applied first; got a KronOperator of shape (2, 2)"),
    "string": (lambda: matkron.chain_order("234"), TypeError,
               "dims must be a sequence of integers; got '234' of type str"),
    "kronsum factors": (lambda: matkron.KronSumOperator(5), TypeError,
                        "factors must be a sequence of square matrices; got 5 of type int"),
    "no factors": (lambda: matkron.KronOperator([]), ValueError,
                   "factors must hold at least one factor; got 0"),
    "no matrices": (lambda: matkron.kronsum(), ValueError,
                    "mats must hold at least one matrix; got 0"),
    "no terms": (lambda: matkron.sum_of_kron([]), ValueError,
                 "terms must hold at least one (A, B) pair; got 0"),
    "one array for multi_dot": (lambda: matkron.multi_dot([A]), ValueError,
                                "arrays must hold at least two arrays; got 1"),
    "coeffs length": (lambda: matkron.sum_of_kron([(A, A)], coeffs=[1, 2]), ValueError,
                      "coeffs has 2 entries; expected 1, one per term"),
    # check_ndim, check_square
    "diagonal": (lambda: matkron.diagonal(A), ValueError, "d must be 1-D; got shape (2, 2)"),
    "unvec": (lambda: matkron.unvec(A, 4), ValueError, "x must be 1-D; got shape (2, 2)"),
    "factor": (lambda: matkron.kron(np.ones(3)), ValueError,
               "factors[0] must be 2-D; got shape (3,)"),
    "kron_matvec x": (lambda: matkron.kron_matvec([A], np.ones((2, 1, 1))), ValueError,
                      "x must be 1-D or 2-D; got shape (2, 1, 1)"),
    "times": (lambda: matkron.kronsum(A, A).expm_multiply(np.ones(4), [[1.0]]), ValueError,
              "t must be 0-D or 1-D; got shape (1, 1)"),
    "square A": (lambda: matkron.frechet("expm", np.ones((2, 3))), ValueError,
                 "A must be a square matrix; got shape (2, 3)"),
    "square mats": (lambda: matkron.kronsum(A, np.ones((2, 3))), ValueError,
                    "mats[1] must be a square matrix; got shape (2, 3)"),
    "square K": (lambda: matkron.inv_quad_logdet(matkron.kron(np.ones((2, 3))), np.ones(2)),
                 ValueError, "K must be a square operator; got shape (2, 3)"),
    # shape_error, check_stack, check_rows, check_conformable
    "E": (lambda: matkron.frechet("expm", A, np.ones((3, 3))), ValueError,
          "E has shape (3, 3); expected (2, 2) or (k, 2, 2), to match A of shape (2, 2)"),
    "E of a power": (lambda: matkron.frechet_power(A, np.ones((2, 3)), 2), ValueError,
                     "E has shape (2, 3); expected (2, 2) or (k, 2, 2), to match A of shape "
                     "(2, 2)"),
    "y": (lambda: matkron.inv_quad_logdet(matkron.kron(A, A), np.ones(3)), ValueError,
          "y has shape (3,); expected (4,) or (4, k), the order of the 4x4 operator K"),
    "matrix form": (lambda: matkron.solve_sylvester(A, A, np.ones((2, 3))), ValueError,
                    "q has shape (2, 3); expected (2, 2)"),
    "add": (lambda: matkron.identity(4) + matkron.identity(5), ValueError,
            "cannot add operators of shapes (4, 4) and (5, 5)"),
    "multiply": (lambda: matkron.identity(2) @ matkron.kron(np.eye(3)), ValueError,
                 "cannot multiply operators of shapes (2, 2) and (3, 3)"),
    # not_finite, needs_square, needs_hermitian, needs_structure
    "finite A": (lambda: matkron.frechet("expm", NAN), ValueError,
                 "A contains NaN or inf; the Fréchet derivative needs finite A and E"),
    "finite factor": (lambda: matkron.kron(NAN).inv(), ValueError,
                      "factor 0 (A in kron(A)) contains NaN or inf; inv needs finite factors"),
    "square factors": (lambda: matkron.kron(A, np.ones((2, 3))).eigh(), ValueError,
                       "eigh needs square factors; factor 1 (B in kron(A, B)) has shape (2, 3)"),
    "Hermitian factors": (lambda: matkron.kron(NOT_HERMITIAN).cholesky(), ValueError,
                          "cholesky needs Hermitian factors; factor 0 (A in kron(A)) is not "
                          "Hermitian"),
    "Hermitian sum": (lambda: matkron.kronsum(NOT_HERMITIAN, A).eigh(), ValueError,
                      "eigh needs Hermitian factors; mats[0] is not Hermitian"),
    "Hermitian A": (lambda: matkron.power_jacobian(NOT_HERMITIAN, 2, method="eig"), ValueError,
                    "method='eig' needs a Hermitian (real symmetric) A; A is not Hermitian"),
    "structure": (lambda: matkron.kron(OPAQUE, A).solve(np.ones(4)), TypeError,
                  "solve needs the structure of every factor; factor 0 (A in kron(A, B)) is a "
                  "LinearOperator, which matkron can only apply"),
}


@pytest.mark.parametrize("case", CASES)
def test_message(case):
    call, error, message = CASES[case]
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()


def test_a_mistake_raises_the_same_exception_everywhere():
    # A bool where a count is expected is a type mistake for every count; a negative count
    # a value mistake.
    for call in (lambda v: matkron.set_num_threads(v), lambda v: matkron.unvec(np.ones(1), v),
                 lambda v: matkron.chain_order([2, v]), lambda v: matkron.power_jacobian(A, v),
                 lambda v: matkron.kron_order([(2, 2)], m=v)):
        with pytest.raises(TypeError, match="must be an integer; got the bool True$"):
            call(True)
        with pytest.raises(ValueError, match="must be (non-negative|from 1 to .*); got -1$"):
            call(-1)
    # A value outside the allowed set: ValueError for every choice, numbers included.
    for call in (lambda v: matkron.kron(A).norm(v), lambda v: matkron.cond("expm", A, norm=v),
                 lambda v: matkron.chain_order([2, 3], method=v),
                 lambda v: matkron.frechet("expm", A, method=v)):
        with pytest.raises(ValueError, match=r"must be one of .*; got 'x'$"):
            call("x")
    # A non-number where a real number is expected: TypeError; one that is not finite:
    # ValueError.
    for name, call in (("p", lambda v: matkron.kron(A).power(v)),
                       ("p", lambda v: matkron.frechet("power", A, p=v)),
                       ("rtol", lambda v: matkron.cond("expm", A, rtol=v)),
                       ("costs[0]", lambda v: matkron.jacobian_chain([A], costs=[v]))):
        with pytest.raises(TypeError, match=rf"^{re.escape(name)} must be a real number"):
            call("1")
    for call in (lambda v: matkron.frechet("power", A, p=v),
                 lambda v: matkron.jacobian_chain([A], costs=[v])):
        with pytest.raises(ValueError, match="must be finite; got inf$"):
            call(np.inf)
    # A factor that is not Hermitian is a ValueError for every method that needs Hermitian
    # factors, cholesky included (LinAlgError is for a Hermitian factor that is not
    # positive definite).
    K = matkron.kron(NOT_HERMITIAN, A)
    for call in (K.eigh, K.cholesky, K.sqrtm, lambda: K.power(0.5), lambda: K.funm(np.exp)):
        with pytest.raises(ValueError, match="needs Hermitian factors; factor 0 "):
            call()
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        matkron.kron(-A).cholesky()


def test_long_values_are_shown_short():
    # An array given for a scalar is shown by its shape, never its entries.
    with pytest.raises(TypeError, match=r"^coeff must be a number; got an array of shape "
                                        r"\(1000,\)$"):
        matkron.KronOperator([A], coeff=np.ones(1000))
    with pytest.raises(ValueError) as info:
        matkron.chain_order([2, 3], method="x" * 1000)
    assert len(str(info.value)) < 150


def test_numbers_in_every_form_numpy_accepts():
    # 0-d numeric arrays count as their scalars (as NumPy treats them), and exact
    # rationals as numbers: checked against the dense matrix and the plain-float call.
    dense = np.kron(A, A)
    K = matkron.kron(A, A)
    assert K.norm(np.array(2)) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-14)
    assert K.cond(np.array(2)) == pytest.approx(np.linalg.cond(dense, 2), rel=1e-14)
    np.testing.assert_allclose(matkron.KronOperator([A, A], coeff=np.array(2.0)).todense(),
                               2 * dense, rtol=1e-15)
    ops = [np.ones((3, 2)), np.ones((4, 3))]
    chain = matkron.jacobian_chain(ops, costs=[Fraction(1, 2), None])
    np.testing.assert_allclose(chain.todense(), ops[1] @ ops[0])
    with pytest.raises(TypeError, match=r"^coeff must be a number; got the bool (np\.)?True_?$"):
        matkron.KronOperator([A], coeff=np.array(True))


def test_validation_imports_only_the_compiled_kernel():
    # Validation comes first (validation -> planning -> kernel): _validation.py imports no
    # other matkron Python module.
    tree = ast.parse((ROOT / "matkron" / "_validation.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            imported.add(node.module or "")
            imported.update(a.name for a in node.names if node.module is None)
    assert imported == {"_kron_cy"}


# -- args on every LinearOperator (SciPy's contract) --------------------------------------


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _operators():
    """One operator of each LinearOperator class matkron defines, made through the public
    API, with the arguments that define it."""
    B = np.array([[1.0, 0.5], [0.5, 2.0]])
    S = scipy.sparse.csr_array(A)
    F = matkron.frechet("expm", B)
    K = matkron.kron(A, B)
    terms = [(A, B), (B, A)]
    sum_op = matkron.sum_of_kron(terms, [1.0, 2.0])
    nonhermitian = matkron.kronsum(NOT_HERMITIAN, B)
    complex_opaque = scipy.sparse.linalg.aslinearoperator(np.eye(2) * 1j)
    conj = matkron.kron(scipy.sparse.linalg.LinearOperator(
        (2, 2), matvec=complex_opaque.matvec, dtype=complex)).conj()
    jac = matkron.jacobian_chain([A, B])
    J = matkron.power_jacobian(B, 3)
    P = matkron.polynomial_jacobian(B, [1.0, 2.0])
    d = np.array([1.0, 2.0])
    return [
        (K, (A, B)),
        (sum_op, sum_op.terms),
        (matkron.kronsum(A, B), (A, B)),
        (K.funm(np.exp), None),
        (nonhermitian.inv(), (nonhermitian,)),
        (F, ("expm", F.A)),
        (jac, jac.ops),
        (J, (J.A, 3)),
        (P, (P.A, P.coeffs)),
        (2 * F, (F, 2)),
        (F + F, (F, F)),
        (F @ F, (F, F)),
        (F.T, (F,)),
        (matkron.kron(S).inv().factors[0], (S,)),
        (conj.factors[0], None),
        (DiagonalJacobian(d), (d,)),  # the benchmarks' own
    ]


def test_every_operator_sets_args():
    ops = _operators()
    classes = {c for c in _subclasses(LinearOperator) if c.__module__.startswith("matkron.")
               and c.__name__ != "ProductOperator"}  # the base class, never made itself
    assert {type(op) for op, _ in ops} == classes  # a new class needs a case here
    for op, expected in ops:
        assert isinstance(op.args, tuple) and op.args, type(op)
        if expected is not None:
            assert _same(op.args, expected), (type(op), op.args, expected)


def _same(got, want):
    if isinstance(want, tuple):
        return (isinstance(got, tuple) and len(got) == len(want)
                and all(_same(g, w) for g, w in zip(got, want)))
    return got is want or (isinstance(want, (np.ndarray, np.generic, int, float, str))
                           and np.array_equal(got, want))
