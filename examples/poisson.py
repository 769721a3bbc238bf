"""The 2-D and 3-D Poisson equation on a grid: a direct solve and CG on matkron's Kronecker sum.

-Δu = f on the unit square (cube) with u = 0 on the boundary, discretized by central
differences. With T_h the tridiagonal matrix tridiag(-1, 2, -1)/h² of one axis, the grid
Laplacian is the Kronecker sum

    L = kronsum(Tx, Ty) = I ⊗ Tx + Ty ⊗ I        (2-D)
    L = kronsum(Tx, Ty, Tz)                        (3-D)

in the convention of ``scipy.sparse.kronsum``: the first factor acts along the fastest index
of vec, so the grid value U[i, j] at (x_i, y_j) sits at vec(U)[i + nx*j] (Fortran order).
Products keep the factors sparse (O(N) per product); ``L.solve`` diagonalizes each factor
once, as a dense matrix (O(n³) for an axis of n points: the fast diagonalization method);
and ``L`` is a LinearOperator for ``scipy.sparse.linalg.cg``.

The exact solution is u* = x(1-x) · y²(1-y) (· z(1-z) in 3-D), with f = -Δu*. Central
differences are exact for polynomials of degree three, so the discrete solution equals u* at
the grid points up to rounding: an independent check of the whole solve, and of the axis
order (u* differs along x and y).

Run ``python examples/poisson.py``; ``main(n=..., n3=...)`` takes the grid sizes.
"""

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

import matkron


def second_difference(n: int, h: float) -> scipy.sparse.csr_array:
    """tridiag(-1, 2, -1)/h², the 1-D -d²/dx² with zero boundary values, as a sparse array."""
    T: scipy.sparse.csr_array = scipy.sparse.diags_array(
        [-1.0 / h**2, 2.0 / h**2, -1.0 / h**2], offsets=[-1, 0, 1], shape=(n, n), format="csr"
    )
    return T


# One polynomial per axis, zero at 0 and 1, and its second derivative.
# Per axis: g and g″, vectorized (the exact solution is the product of the g).
AXIS_SOLUTIONS: tuple[tuple[Callable[[np.ndarray], np.ndarray],
                           Callable[[np.ndarray], np.ndarray]], ...] = (
    (lambda t: t * (1 - t), lambda t: -2 * np.ones_like(t)),
    (lambda t: t**2 * (1 - t), lambda t: 2 - 6 * t),
    (lambda t: t * (1 - t), lambda t: -2 * np.ones_like(t)),
)


def outer(vectors: list[np.ndarray]) -> np.ndarray:
    """vec of the grid function v0(x) v1(y) …: the first axis fastest, as kronsum orders it."""
    grid = np.ones(())
    for v in vectors:
        grid = np.multiply.outer(grid, v)
    return grid.ravel(order="F")


def grid_problem(sizes: tuple[int, ...]) -> tuple[list[scipy.sparse.csr_array], np.ndarray,
                                                  np.ndarray]:
    """The 1-D factors, and f = -Δu* and u* in vec order, for a grid of `sizes` interior
    points per axis (spacing 1/(n + 1) on an axis of n points)."""
    points = [np.arange(1, n + 1) / (n + 1) for n in sizes]
    factors = [second_difference(n, 1.0 / (n + 1)) for n in sizes]
    values = [g(t) for (g, _), t in zip(AXIS_SOLUTIONS, points)]
    u_exact = outer(values)
    # -Δ(g0 g1 …) = -Σ_d g_d'' Π_{e≠d} g_e
    f = np.zeros_like(u_exact)
    for d, ((_, g2), t) in enumerate(zip(AXIS_SOLUTIONS, points)):
        f -= outer(values[:d] + [g2(t)] + values[d + 1:])
    return factors, f, u_exact


def scipy_laplacian(factors: list[scipy.sparse.csr_array]) -> scipy.sparse.csr_array:
    """The same Laplacian assembled by ``scipy.sparse.kronsum``, left to right."""
    L = factors[0]
    for T in factors[1:]:
        L = scipy.sparse.kronsum(L, T, format="csr")
    return L


def timed(fn: Any, *args: Any, repeat: int = 1, **kwargs: Any) -> tuple[Any, float]:
    """fn(*args, **kwargs) and its best wall time in seconds over `repeat` calls."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def solve_grid(sizes: tuple[int, ...], *, n_check: int, cg_rtol: float = 1e-8,
               history: bool = False) -> dict[str, Any]:
    """Solve one grid problem directly and by CG, check both, and compare with SciPy."""
    factors, f, u_exact = grid_problem(sizes)
    L = matkron.kronsum(*factors)
    N = L.shape[0]
    dims = "x".join(map(str, sizes))
    print(f"\n{len(sizes)}-D grid {dims}: N = {N} unknowns, L = kronsum(" +
          ", ".join(f"T{'xyz'[d]}" for d in range(len(sizes))) + ")")

    u, t_direct = timed(L.solve, f)
    residual = np.linalg.norm(L @ u - f) / np.linalg.norm(f)
    error = np.abs(u - u_exact).max() / np.abs(u_exact).max()
    print(f"  direct  L.solve:  {t_direct * 1e3:8.2f} ms   relative residual {residual:.1e}, "
          f"relative error vs u* {error:.1e}")
    assert residual < 1e-10 and error < 1e-9

    iterations = 0

    def count(_xk: np.ndarray) -> None:
        nonlocal iterations
        iterations += 1

    (u_cg, info), t_cg = timed(scipy.sparse.linalg.cg, L, f, rtol=cg_rtol, callback=count)
    cg_residual = np.linalg.norm(L @ u_cg - f) / np.linalg.norm(f)
    print(f"  scipy cg on L:    {t_cg * 1e3:8.2f} ms   relative residual {cg_residual:.1e} "
          f"after {iterations} iterations")
    assert info == 0 and cg_residual < 10 * cg_rtol
    assert np.abs(u_cg - u).max() < 1e-4 * np.abs(u).max()

    # SciPy's assembled matrix: the same operator (products at full size) ...
    A, t_assemble = timed(scipy_laplacian, factors)
    _, t_mk_apply = timed(L.matvec, u, repeat=5)
    _, t_sp_apply = timed(A.dot, u, repeat=5)
    assert np.allclose(A @ u, L @ u, rtol=1e-12, atol=1e-12 * np.abs(f).max())
    print(f"  one product L @ u: matkron {t_mk_apply * 1e3:.2f} ms, scipy.sparse CSR "
          f"{t_sp_apply * 1e3:.2f} ms (assembled in {t_assemble * 1e3:.1f} ms)")

    # ... and spsolve, on a grid small enough for its fill-in (severe in 3-D).
    small = tuple(min(n, n_check) for n in sizes)
    small_factors, small_f, _ = grid_problem(small)
    u_sp, t_sp = timed(scipy.sparse.linalg.spsolve,
                       scipy_laplacian(small_factors).tocsc(), small_f)
    u_mk, t_mk = timed(matkron.kronsum(*small_factors).solve, small_f)
    difference = np.abs(u_mk - u_sp).max() / np.abs(u_sp).max()
    print(f"  on a {'x'.join(map(str, small))} grid: spsolve {t_sp * 1e3:.2f} ms, "
          f"matkron {t_mk * 1e3:.2f} ms, relative difference {difference:.1e}")
    assert difference < 1e-10

    result = {"grid": dims, "N": N, "residual": residual, "error": error,
              "cg_iterations": iterations, "cg_residual": cg_residual,
              "spsolve_difference": difference, "time_direct": t_direct, "time_cg": t_cg}
    if history:
        # A second CG run that records the residual at every step, for the plot.
        norms = [1.0]
        scipy.sparse.linalg.cg(L, f, rtol=cg_rtol, callback=lambda xk: norms.append(
            float(np.linalg.norm(L @ xk - f) / np.linalg.norm(f))))
        result["cg_history"] = norms
    return result


def plot_convergence(results: dict[str, dict[str, Any]], path: str) -> list[str]:
    """Save the CG residual histories to `path` (PNG); return the legend's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    for name, res in results.items():
        ax.semilogy(res["cg_history"], label=f"{name} {res['grid']}, N = {res['N']}")
    ax.set_xlabel("CG iteration")
    ax.set_ylabel("relative residual ‖f − L u‖ / ‖f‖")
    ax.set_title("CG on matkron.kronsum Poisson operators")
    ax.grid(True, which="major", alpha=0.4)
    legend = ax.legend()
    fig.savefig(path)
    plt.close(fig)
    return [text.get_text() for text in legend.get_texts()]


def plot_file(name: str, plot_dir: str | None) -> str:
    """Where to save a plot: `plot_dir`, else $MATKRON_EXAMPLES_PLOTS, else a temp folder."""
    folder = plot_dir or os.environ.get("MATKRON_EXAMPLES_PLOTS") or os.path.join(
        tempfile.gettempdir(), "matkron-examples")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def main(n: int = 256, n3: int = 48, *, n_check: int = 16, plot: bool = True,
         plot_dir: str | None = None) -> dict[str, Any]:
    """Solve 2-D Poisson on an n × (3n/4) grid and 3-D Poisson on an n3³ grid.

    spsolve is compared on the 2-D grid and on a 3-D grid of at most `n_check` points per
    axis (its fill-in grows fast in 3-D). With `plot` (and
    matplotlib installed) the CG convergence is saved to poisson.png in `plot_dir`.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if plot:
            print("matplotlib is not installed: no plot")
        plot = False
    results = {
        "2-D": solve_grid((n, max(1, 3 * n // 4)), n_check=max(n, n_check), history=plot),
        "3-D": solve_grid((n3, n3, n3), n_check=n_check, history=plot),
    }
    if plot:
        path = plot_file("poisson.png", plot_dir)
        results["plot"] = {"path": path, "legend": plot_convergence(results, path)}
        print(f"\nCG convergence plot: {path}")
    return results


if __name__ == "__main__":
    main()
