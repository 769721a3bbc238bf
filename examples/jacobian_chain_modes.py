"""Derivatives of matrix functions, and forward vs reverse accumulation of a Jacobian chain.

Part 1, derivatives of the matrix power and of a matrix polynomial. matkron gives the
Fréchet derivative d(Aⁿ)[E] = Σₖ Aᵏ E A^{n-1-k} (``frechet_power``) and the Jacobian as a
LinearOperator on vec(E) (``power_jacobian``, ``polynomial_jacobian``). They are checked
against central finite differences (accurate to about h²) and the complex step
Im f(A + ihE)/h (no cancellation, so accurate to rounding). The operator's adjoint gives
reverse mode: the gradient of the scalar φ(A) = ½‖Aⁿ‖²_F is Jᵀ vec(Aⁿ), one product, where
forward mode needs one product per entry of A.

Part 2, a chain of Jacobians of mixed shapes. For f = f_k ∘ … ∘ f_1 the Jacobian is the
product J_k ⋯ J_1 of the layers' Jacobians. Multiplying it from the right (J_k (⋯ (J_2 J_1)))
is forward mode, from the left ((J_k J_{k-1}) ⋯) J_1 reverse mode (backpropagation); which
is cheaper depends on the widths, and for some chains neither is best.
``matkron.chain_order`` finds the cheapest bracketing, with the exact costs of all three;
here with M0 = J_k, …, M(k-1) = J_1 (the order in which they are written). The layers are
f_i(x) = tanh(W_i x) with J_i = diag(1 − tanh²(W_i x)) W_i, and the product is checked
against finite differences of f.

Part 3, the same Jacobians from matrix-free factors. ``matkron.jacobian_chain`` takes each
J_i as W_i (an array) followed by diag(s_i) as a LinearOperator that is only applied
(with its cost per vector as a hint), and plans over tangent steps (an operator applied to
the columns of a block), adjoint steps (to its rows) and products of blocks; the plan is
compared with pure forward and reverse mode, and the result with part 2's.

Run ``python examples/jacobian_chain_modes.py``; ``main(m=..., n=..., scale=...)`` takes the
matrix order, the power and a factor on the layer widths.
"""

import functools
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

import matkron

# Layer widths, input first, of three chains.
CHAINS = {
    "wide input, scalar output": (3000, 1000, 400, 1),
    "scalar input, wide output": (1, 400, 1000, 3000),
    "bottlenecks": (600, 40, 700, 30, 500),
}

# A matrix function X ↦ f(X).
Function = Callable[[np.ndarray], np.ndarray]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / ‖b‖."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def complex_step(f: Function, A: np.ndarray, E: np.ndarray, h: float = 1e-30) -> np.ndarray:
    """Im f(A + ihE)/h: the derivative of a real-analytic f in direction E, to rounding."""
    return f(A + 1j * h * E).imag / h


def central_difference(f: Function, A: np.ndarray, E: np.ndarray, h: float) -> np.ndarray:
    """(f(A + hE) − f(A − hE)) / 2h: the derivative up to O(h²) and rounding."""
    return (f(A + h * E) - f(A - h * E)) / (2 * h)


def matrix_function_derivatives(m: int, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Part 1: d(Aⁿ)[E], the derivative of a polynomial, and a reverse-mode gradient."""
    A = rng.standard_normal((m, m)) / np.sqrt(m)
    E = rng.standard_normal((m, m))

    def power(X: np.ndarray) -> np.ndarray:
        return np.linalg.matrix_power(X, n)

    dA = matkron.frechet_power(A, E, n)
    fd_error = relative(central_difference(power, A, E, h=1e-5), dA)
    cs_error = relative(complex_step(power, A, E), dA)
    print(f"d(Aⁿ)[E], A {m}x{m}, n = {n}: frechet_power vs central differences "
          f"{fd_error:.1e}, vs the complex step {cs_error:.1e}")
    assert fd_error < 1e-6 and cs_error < 1e-12

    coeffs = np.array([1.0, -2.0, 0.5, 0.25, -0.1])  # p(A) = I − 2A + A²/2 + A³/4 − A⁴/10

    def polynomial(X: np.ndarray) -> np.ndarray:
        result = np.zeros_like(X)
        for c in coeffs[::-1]:  # Horner
            result = result @ X + c * np.eye(m)
        return result

    dp = matkron.unvec(matkron.polynomial_jacobian(A, coeffs) @ matkron.vec(E), (m, m))
    poly_error = relative(complex_step(polynomial, A, E), dp)
    print(f"d p(A)[E] of a degree-{coeffs.size - 1} polynomial: polynomial_jacobian vs the "
          f"complex step {poly_error:.1e}")
    assert poly_error < 1e-12

    # φ(A) = ½‖Aⁿ‖²: dφ[E] = ⟨Aⁿ, d(Aⁿ)[E]⟩ = ⟨Jᵀ vec(Aⁿ), vec(E)⟩, so the gradient is one
    # adjoint product (reverse mode); forward mode applies J to all m² unit directions.
    J = matkron.power_jacobian(A, n)
    start = time.perf_counter()
    gradient = matkron.unvec(J.rmatvec(matkron.vec(power(A))), (m, m))
    t_reverse = time.perf_counter() - start
    start = time.perf_counter()
    columns = J.matmat(np.eye(m * m))  # d(Aⁿ)[e_i e_jᵀ], every entry of A in turn
    gradient_forward = matkron.unvec(columns.T @ matkron.vec(power(A)), (m, m))
    t_forward = time.perf_counter() - start

    def phi(X: np.ndarray) -> Any:
        # ½ Σ Y², without conjugation, so that it is analytic for the complex step
        return 0.5 * np.sum(power(X) ** 2)

    directional = complex_step(phi, A, E)
    grad_error = abs(np.sum(gradient * E) - directional) / abs(directional)
    print(f"gradient of φ(A) = ½‖Aⁿ‖²: reverse mode (one J.rmatvec) {t_reverse * 1e3:.2f} ms, "
          f"forward mode ({m * m} products) {t_forward * 1e3:.2f} ms; "
          f"⟨∇φ, E⟩ vs the complex step {grad_error:.1e}")
    assert grad_error < 1e-12 and relative(gradient_forward, gradient) < 1e-12
    return {"fd_error": fd_error, "cs_error": cs_error, "poly_error": poly_error,
            "grad_error": grad_error, "time_reverse": t_reverse, "time_forward": t_forward}


class Layers:
    """f = f_k ∘ … ∘ f_1 with f_i(x) = tanh(W_i x), and its Jacobians at a point x.

    J_i = diag(s_i) W_i with s_i = 1 − tanh²(W_i x_i), x_i the input of layer i.
    """

    def __init__(self, widths: tuple[int, ...], rng: np.random.Generator):
        self.weights = [rng.standard_normal((b, a)) / np.sqrt(a)
                        for a, b in itertools.pairwise(widths)]
        self.x = rng.standard_normal(widths[0])
        self.slopes = []
        h = self.x
        for W in self.weights:
            h = np.tanh(W @ h)
            self.slopes.append(1 - h**2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for W in self.weights:
            x = np.tanh(W @ x)
        return x

    def jacobians(self) -> list[np.ndarray]:
        """[J_1, …, J_k] as dense matrices."""
        return [s[:, np.newaxis] * W for W, s in zip(self.weights, self.slopes)]


def timed_product(multiply: Any, repeat: int = 3) -> tuple[np.ndarray, float]:
    """multiply() and its best time over `repeat` calls."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        product = multiply()
        best = min(best, time.perf_counter() - start)
    return product, best


def dense_chain(name: str, layers: Layers, rng: np.random.Generator) -> dict[str, Any]:
    """Part 2 for one chain: the plan, the costs of the three orders, their times."""
    matrices = layers.jacobians()[::-1]  # M0 = J_k, …, M(k-1) = J_1, as written
    dims = [matrices[0].shape[0]] + [M.shape[1] for M in matrices]
    plan = matkron.chain_order(dims)
    forward, t_forward = timed_product(
        lambda: functools.reduce(lambda right, M: M @ right, matrices[::-1]))
    reverse, t_reverse = timed_product(lambda: functools.reduce(np.matmul, matrices))
    optimal, t_optimal = timed_product(lambda: plan.execute(matrices))
    print(f"\n{name}: widths {' → '.join(map(str, dims[::-1]))}, Jacobian "
          f"{dims[0]}x{dims[-1]}, chain_order's plan {plan}")
    for label, cost, seconds in (("forward (right to left)", plan.right_to_left_cost,
                                  t_forward),
                                 ("reverse (left to right)", plan.left_to_right_cost,
                                  t_reverse),
                                 ("chain_order's plan", plan.cost, t_optimal)):
        print(f"  {label:31s} {cost:>14,d} multiply-adds {seconds * 1e3:9.2f} ms")
    assert plan.cost <= min(plan.left_to_right_cost, plan.right_to_left_cost)
    assert relative(forward, optimal) < 1e-12 and relative(reverse, optimal) < 1e-12

    # The product is the derivative of f: compare with central differences along v.
    v = rng.standard_normal(dims[-1])
    h = 1e-6
    fd = (layers(layers.x + h * v) - layers(layers.x - h * v)) / (2 * h)
    fd_error = relative(optimal @ v, fd)
    print(f"  J v vs central differences of f: {fd_error:.1e}")
    assert fd_error < 1e-6
    return {"jacobian": optimal, "plan": str(plan), "cost": plan.cost,
            "forward_cost": plan.right_to_left_cost, "reverse_cost": plan.left_to_right_cost,
            "time_forward": t_forward, "time_reverse": t_reverse, "time_plan": t_optimal,
            "fd_error": fd_error}


def elementwise(s: np.ndarray) -> LinearOperator:
    """diag(s), the Jacobian of an elementwise map, applied matrix-free."""
    return LinearOperator((s.size, s.size), matvec=lambda v: s * v.ravel(),
                          rmatvec=lambda v: s * v.ravel(),
                          matmat=lambda X: s[:, np.newaxis] * X,
                          rmatmat=lambda X: s[:, np.newaxis] * X, dtype=s.dtype)


def matrix_free_chain(layers: Layers, expected: np.ndarray) -> dict[str, Any]:
    """Part 3 for one chain: the Jacobian from matrix-free factors by jacobian_chain.

    Each J_i enters as two operators, W_i (an array) then diag(s_i) (matrix-free, s_i.size
    multiplies per vector, given as its cost hint), so the plan may apply the elementwise
    factors to blocks rather than form them.
    """
    ops: list[Any] = []
    costs: list[int | None] = []
    for W, s in zip(layers.weights, layers.slopes):
        ops += [W, elementwise(s)]
        costs += [None, s.size]
    results: dict[str, Any] = {}
    for mode in ("forward", "reverse", "auto"):
        J = matkron.jacobian_chain(ops, costs=costs, mode=mode)
        # One call each: a forced mode can cost a thousand times the plan.
        dense, seconds = timed_product(J.todense, repeat=1)
        error = relative(dense, expected)
        label = f"jacobian_chain mode={mode!r}"
        print(f"  {label:31s} {J.plan.cost:>14,d} multiply-adds {seconds * 1e3:9.2f} ms")
        assert error < 1e-12
        results[mode] = {"cost": J.plan.cost, "time": seconds, "error": error}
    print(f"  its plan ({J.plan.mode}): {J.plan}")
    assert J.plan.cost <= min(J.plan.forward_cost, J.plan.reverse_cost)
    results["plan"] = str(J.plan)
    results["plan_mode"] = J.plan.mode
    return results


def main(m: int = 40, n: int = 7, scale: float = 1.0, *, seed: int = 0) -> dict[str, Any]:
    """Part 1 with an m × m matrix and the power n; parts 2 and 3 with the widths of CHAINS
    times `scale` (an input or output of width 1 stays 1)."""
    rng = np.random.default_rng(seed)
    results: dict[str, Any] = {"derivatives": matrix_function_derivatives(m, n, rng)}
    for name, widths in CHAINS.items():
        scaled = tuple(w if w == 1 else max(2, round(w * scale)) for w in widths)
        layers = Layers(scaled, rng)
        results[name] = dense_chain(name, layers, rng)
        results[name]["matrix_free"] = matrix_free_chain(layers, results[name]["jacobian"])
    return results


if __name__ == "__main__":
    main()
