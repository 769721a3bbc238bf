"""Lyapunov and Sylvester equations from control: Gramians, Hankel singular values and the
H2 distance between two systems, through matkron.

The system is a chain of p unit masses joined by springs and dampers (fixed at both ends),
pushed at the first mass and observed at the position of the last one:

    ẋ = A x + B u,   y = C x,   x = (positions, velocities), n = 2p states.

Its controllability and observability Gramians solve the continuous Lyapunov equations

    A Wc + Wc Aᵀ + B Bᵀ = 0,    Aᵀ Wo + Wo A + Cᵀ C = 0,

the Hankel singular values are √eig(Wc Wo), and the H2 norm is ‖G‖² = tr(C Wc Cᵀ) =
tr(Bᵀ Wo B). Balanced truncation keeps the r states of largest Hankel singular value; the
H2 error of that reduced model G2 = (A2, B2, C2) comes from the inner product
⟨G, G2⟩ = tr(C X C2ᵀ), where X (n × r) solves the Sylvester equation
A X + X A2ᵀ + B B2ᵀ = 0: ‖G − G2‖² = ‖G‖² + ‖G2‖² − 2⟨G, G2⟩, without assembling the
error system.

matkron solves these on the Kronecker-sum operators ``lyapunov(A)`` (X ↦ A X + X Aᴴ) and
``sylvester(A, B)`` (X ↦ A X + X B), or through the drop-ins ``solve_continuous_lyapunov``
and ``solve_sylvester``; every result is compared with ``scipy.linalg``. An operator keeps
its Schur forms, so many right-hand sides cost one factorization.

Run ``python examples/control_sylvester_lyapunov.py``; ``main(p=...)`` takes the number of
masses.
"""

import time
from typing import Any

import numpy as np
import scipy.linalg

import matkron


def mass_spring_chain(p: int, stiffness: float = 1.0, damping: float = 0.2,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, B, C) of p unit masses in a damped spring chain: force on mass 0, position of
    mass p-1 observed. The damping is proportional to the stiffness plus a little on every
    mass (Rayleigh damping), so every mode decays: A is stable."""
    K = stiffness * (2 * np.eye(p) - np.eye(p, k=1) - np.eye(p, k=-1))
    D = damping * (np.eye(p) + K)
    A = np.block([[np.zeros((p, p)), np.eye(p)], [-K, -D]])
    B = np.zeros((2 * p, 1))
    B[p, 0] = 1.0  # the force accelerates mass 0
    C = np.zeros((1, 2 * p))
    C[0, p - 1] = 1.0  # the position of the last mass
    return A, B, C


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / ‖b‖ in the Frobenius norm."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def psd_root(W: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = W for a symmetric positive semidefinite W (Gramians are often
    numerically singular, where a Cholesky factorization fails)."""
    w, V = np.linalg.eigh((W + W.T) / 2)
    L: np.ndarray = V * np.sqrt(np.maximum(w, 0))
    return L


def gramians(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> dict[str, Any]:
    """Both Gramians by matkron, checked against SciPy; the Hankel singular values, the
    order of a balanced truncation, the H2 norm."""
    n = A.shape[0]
    start = time.perf_counter()
    Wc = matkron.solve_continuous_lyapunov(A, -B @ B.T)
    t_matkron = time.perf_counter() - start
    start = time.perf_counter()
    Wc_scipy = scipy.linalg.solve_continuous_lyapunov(A, -B @ B.T)
    t_scipy = time.perf_counter() - start
    # The operator form of the same equation: lyapunov(A) applied to vec(X) is
    # vec(A X + X Aᵀ); with Aᵀ in place of A and −Cᵀ C as the right-hand side, its solve
    # is the observability Gramian.
    Wo = matkron.unvec(matkron.lyapunov(A.T).solve(matkron.vec(-C.T @ C)), (n, n))
    Wo_scipy = scipy.linalg.solve_continuous_lyapunov(A.T, -C.T @ C)

    residual = relative(A @ Wc + Wc @ A.T, -B @ B.T)
    print(f"controllability Gramian Wc ({n}x{n}): matkron {t_matkron * 1e3:.1f} ms, "
          f"scipy {t_scipy * 1e3:.1f} ms")
    print(f"  ‖A Wc + Wc Aᵀ + B Bᵀ‖/‖B Bᵀ‖ = {residual:.1e}; "
          f"vs scipy {relative(Wc, Wc_scipy):.1e}; Wo vs scipy {relative(Wo, Wo_scipy):.1e}")
    assert residual < 1e-10
    assert relative(Wc, Wc_scipy) < 1e-8 and relative(Wo, Wo_scipy) < 1e-8

    # √eig(Wc Wo) as the singular values of Loᵀ Lc, for W = L Lᵀ: accurate down to about
    # √eps σ1, where the eigenvalues of the product would lose the small ones.
    hankel = np.linalg.svd(psd_root(Wo).T @ psd_root(Wc), compute_uv=False)
    h2_c = np.sqrt(np.trace(C @ Wc @ C.T))
    h2_o = np.sqrt(np.trace(B.T @ Wo @ B))
    # Balanced truncation to r states errs by at most 2 Σ_{i>r} σ_i in the H∞ norm.
    tails = 2 * np.cumsum(hankel[::-1])[::-1]
    order = int(np.argmax(tails < 1e-4 * hankel[0]))
    print(f"  Hankel singular values: {np.array2string(hankel[:6], precision=3)} ...; "
          f"balanced truncation to {order} of {n} states errs by at most 1e-4 σ1 (H∞)")
    print(f"  H2 norm from Wc {h2_c:.12f}, from Wo {h2_o:.12f}")
    assert np.isclose(h2_c, h2_o, rtol=1e-8)
    return {"Wc": Wc, "Wo": Wo, "hankel": hankel, "h2": h2_c, "order": order,
            "residual": residual}


def balanced_truncation(A: np.ndarray, B: np.ndarray, C: np.ndarray, Wc: np.ndarray,
                        Wo: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
    """The reduced model (T⁻¹ A T, T⁻¹ B, C T) of `order` states, by the square-root method."""
    Lc, Lo = psd_root(Wc), psd_root(Wo)
    U, s, Vt = np.linalg.svd(Lo.T @ Lc)
    scale = 1 / np.sqrt(s[:order])
    T = Lc @ Vt[:order].T * scale
    T_inv = (U[:, :order] * scale).T @ Lo.T
    return T_inv @ A @ T, T_inv @ B, C @ T


def h2_distance(system: tuple[np.ndarray, ...], other: tuple[np.ndarray, ...],
                h2: float) -> dict[str, float]:
    """‖G − G2‖ in H2 from the Sylvester equation A X + X A2ᵀ + B B2ᵀ = 0 (matkron),
    checked against the Lyapunov equation of the assembled error system (SciPy)."""
    A, B, C = system
    A2, B2, C2 = other
    X = matkron.solve_sylvester(A, A2.T, -B @ B2.T)
    X_scipy = scipy.linalg.solve_sylvester(A, A2.T, -B @ B2.T)
    W2 = matkron.solve_continuous_lyapunov(A2, -B2 @ B2.T)
    inner = np.trace(C @ X @ C2.T)
    distance = np.sqrt(h2**2 + np.trace(C2 @ W2 @ C2.T) - 2 * inner)

    # The error system G − G2: block-diagonal A, stacked B, C and −C2 side by side.
    We = scipy.linalg.solve_continuous_lyapunov(
        scipy.linalg.block_diag(A, A2), -np.vstack([B, B2]) @ np.vstack([B, B2]).T)
    Ce = np.hstack([C, -C2])
    distance_scipy = np.sqrt(np.trace(Ce @ We @ Ce.T))
    residual = relative(A @ X + X @ A2.T, -B @ B2.T)
    print(f"\nreduced model G2 of {A2.shape[0]} states; Sylvester equation "
          f"A X + X A2ᵀ + B B2ᵀ = 0, X {X.shape[0]}x{X.shape[1]}:")
    print(f"  relative residual {residual:.1e}, vs scipy {relative(X, X_scipy):.1e}")
    print(f"  ‖G‖ = {h2:.6e}, ⟨G, G2⟩ = {inner:.6e}; H2 error ‖G − G2‖ = {distance:.3e}, "
          f"{distance / h2:.1e} relative (error-system Gramian, scipy: {distance_scipy:.3e})")
    assert residual < 1e-10 and relative(X, X_scipy) < 1e-8
    # The difference of squares cancels to about eps ‖G‖²: compare on that scale.
    assert abs(distance**2 - distance_scipy**2) < 1e-10 * h2**2
    return {"inner": float(inner), "distance": float(distance),
            "distance_scipy": float(distance_scipy)}


def many_right_hand_sides(A: np.ndarray, A2: np.ndarray, count: int,
                          rng: np.random.Generator) -> dict[str, float]:
    """`count` Sylvester equations with one (A, A2): scipy refactorizes per call, the matkron
    operator once."""
    n, n2 = A.shape[0], A2.shape[0]
    Q = rng.standard_normal((count, n, n2))
    start = time.perf_counter()
    X_scipy = [scipy.linalg.solve_sylvester(A, A2.T, q) for q in Q]
    t_scipy = time.perf_counter() - start
    start = time.perf_counter()
    S = matkron.sylvester(A, A2.T)
    columns = S.solve(np.column_stack([matkron.vec(q) for q in Q]))
    t_matkron = time.perf_counter() - start
    X = [matkron.unvec(c, (n, n2)) for c in columns.T]
    error = max(relative(x, xs) for x, xs in zip(X, X_scipy))
    print(f"\n{count} Sylvester solves with the same A, A2: scipy.linalg {t_scipy * 1e3:.1f} ms, "
          f"matkron.sylvester(A, A2ᵀ).solve on {count} columns {t_matkron * 1e3:.1f} ms; "
          f"largest difference {error:.1e}")
    assert error < 1e-8
    return {"error": error, "time_scipy": t_scipy, "time_matkron": t_matkron}


def main(p: int = 100, *, count: int = 20, seed: int = 0) -> dict[str, Any]:
    """A chain of p masses (2p states), its balanced truncation, and `count` Sylvester
    right-hand sides in the last part."""
    system = mass_spring_chain(p)
    abscissa = np.linalg.eigvals(system[0]).real.max()
    print(f"mass-spring chain of {p} masses ({2 * p} states), "
          f"largest real part of an eigenvalue of A {abscissa:.2e}\n")
    assert abscissa < 0  # stable: the Gramians exist
    results = gramians(*system)
    reduced = balanced_truncation(*system, results["Wc"], results["Wo"], results["order"])
    results.update(h2_distance(system, reduced, results["h2"]))
    rng = np.random.default_rng(seed)
    results["many"] = many_right_hand_sides(system[0], reduced[0], count, rng)
    return results


if __name__ == "__main__":
    main()
