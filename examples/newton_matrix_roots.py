"""Newton's method for the matrix square root and p-th roots, with matkron's power Jacobian
and GMRES.

To solve Xᵖ = A, Newton's method linearizes F(X) = Xᵖ − A at the iterate X:

    F(X + E) ≈ F(X) + d(Xᵖ)[E],    d(Xᵖ)[E] = Σ_{k<p} Xᵏ E X^{p-1-k},

and takes the step E that solves d(Xᵖ)[E] = −F(X). ``matkron.power_jacobian(X, p)`` is that
derivative as a LinearOperator on vec(E) (m² × m², never formed), so each step is a GMRES
solve (``scipy.sparse.linalg.gmres``) with products that cost a few m × m GEMMs. For p = 2
the Jacobian is the Sylvester operator E ↦ X E + E X, which ``matkron.sylvester(X, X)``
also solves directly: the second step (the first from an X other than I) is checked that
way.

Near the root the residual squares from one step to the next (quadratic convergence): the
printed digits double. The roots are compared with ``scipy.linalg.sqrtm`` and
``scipy.linalg.fractional_matrix_power``.

Run ``python examples/newton_matrix_roots.py``; ``main(m=...)`` takes the matrix order.
"""

import itertools
import os
import tempfile
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

import matkron


def nonsymmetric_matrix(m: int, rng: np.random.Generator) -> np.ndarray:
    """A nonsymmetric m × m matrix with its eigenvalues in a disc of radius about 1
    around 3, away from the negative real axis: it has a principal p-th root."""
    A: np.ndarray = 3 * np.eye(m) + rng.standard_normal((m, m)) / m**0.5
    return A


def newton_root(A: np.ndarray, p: int, *, tol: float = 1e-14, max_steps: int = 30,
                gmres_rtol: float = 1e-12) -> dict[str, Any]:
    """The principal p-th root of A by Newton's method from X = I, each step solved by
    GMRES on the power Jacobian; the residual ‖Xᵖ − A‖/‖A‖ before each step."""
    m = A.shape[0]
    X = np.eye(m)
    norm_A = np.linalg.norm(A)
    residuals, krylov, method = [], [], None
    direct_difference = None
    for k in range(max_steps):
        F = np.linalg.matrix_power(X, p) - A
        residuals.append(np.linalg.norm(F) / norm_A)
        if residuals[-1] < tol:
            break
        J = matkron.power_jacobian(X, p)
        method = J.method  # how "auto" applies it, by an operation count
        iterations = 0

        def count(_residual: float) -> None:
            nonlocal iterations
            iterations += 1

        step, info = scipy.sparse.linalg.gmres(
            J, -matkron.vec(F), rtol=gmres_rtol, restart=60, maxiter=20,
            callback=count, callback_type="pr_norm")
        assert info == 0, f"GMRES did not converge (info = {info})"
        krylov.append(iterations)
        if p == 2 and k == 1:
            # The Jacobian of X² is the Sylvester operator E ↦ X E + E X: solve it directly.
            direct = matkron.sylvester(X, X).solve(-matkron.vec(F))
            direct_difference = np.linalg.norm(step - direct) / np.linalg.norm(direct)
        X = X + matkron.unvec(step, (m, m))
    return {"X": X, "residuals": residuals, "gmres_iterations": krylov, "method": method,
            "direct_difference": direct_difference}


def reference_root(A: np.ndarray, p: int) -> np.ndarray:
    """SciPy's principal p-th root (real when A is real with no eigenvalue on the
    negative real axis)."""
    root = scipy.linalg.sqrtm(A) if p == 2 else scipy.linalg.fractional_matrix_power(A, 1 / p)
    return np.real_if_close(root, tol=1e6)


def root_name(p: int) -> str:
    return {2: "square root", 3: "cube root"}.get(p, f"{p}th root")


def plot_file(name: str, plot_dir: str | None) -> str:
    """Where to save a plot: `plot_dir`, else $MATKRON_EXAMPLES_PLOTS, else a temp folder."""
    folder = plot_dir or os.environ.get("MATKRON_EXAMPLES_PLOTS") or os.path.join(
        tempfile.gettempdir(), "matkron-examples")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def plot_convergence(results: dict[int, dict[str, Any]], m: int, path: str) -> list[str]:
    """Save the residual of every Newton step to `path` (PNG); return the legend's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    for p, res in results.items():
        ax.semilogy(res["residuals"], "o-", label=f"{root_name(p)} (Xᵖ = A, p = {p})")
    ax.set_xlabel("Newton step")
    ax.set_ylabel("‖Xᵖ − A‖ / ‖A‖")
    ax.set_title(f"Newton with matkron.power_jacobian and GMRES, m = {m}")
    ax.grid(True, alpha=0.4)
    legend = ax.legend()
    fig.savefig(path)
    plt.close(fig)
    return [text.get_text() for text in legend.get_texts()]


def main(m: int = 60, powers: tuple[int, ...] = (2, 3, 5), *, plot: bool = True,
         plot_dir: str | None = None, seed: int = 0) -> dict[Any, Any]:
    """Newton for the p-th roots of an m × m matrix, p in `powers`. With `plot` (and
    matplotlib installed) the convergence is saved to newton_matrix_roots.png in
    `plot_dir`."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if plot:
            print("matplotlib is not installed: no plot")
        plot = False
    A = nonsymmetric_matrix(m, np.random.default_rng(seed))
    results: dict[Any, Any] = {}
    for p in powers:
        res = newton_root(A, p)
        X, r = res["X"], res["residuals"]
        error = np.linalg.norm(X - reference_root(A, p)) / np.linalg.norm(X)
        print(f"{root_name(p)} of a {m}x{m} matrix (Jacobian {m * m}x{m * m}, "
              f"applied by method {res['method']!r}):")
        for k, residual in enumerate(r):
            # The order estimate log r_k / log r_{k-1} tends to 2 for quadratic convergence.
            order = (f"   log r_k / log r_k-1 = {np.log(residual) / np.log(r[k - 1]):.2f}"
                     if 0 < k and r[k - 1] < 0.1 else "")
            krylov = (f"   GMRES {res['gmres_iterations'][k]:3d} iterations"
                      if k < len(res["gmres_iterations"]) else "")
            print(f"  step {k:2d}   ‖Xᵖ − A‖/‖A‖ = {residual:.2e}{krylov}{order}")
        print(f"  relative difference from scipy.linalg: {error:.1e}")
        if res["direct_difference"] is not None:
            print(f"  step 1 by GMRES and by matkron.sylvester(X, X).solve differ by "
                  f"{res['direct_difference']:.1e}")
            assert res["direct_difference"] < 1e-9
        assert r[-1] < 1e-14 and error < 1e-12
        # Quadratic convergence: once the residual is small, the next is about its square.
        assert any(r1 <= 10 * r0**2 for r0, r1 in itertools.pairwise(r) if 1e-8 < r0 < 1e-2)
        res["error"] = error
        results[p] = res
    if plot:
        path = plot_file("newton_matrix_roots.png", plot_dir)
        results["plot"] = {"path": path, "legend": plot_convergence(
            {p: results[p] for p in powers}, m, path)}
        print(f"\nplot: {path}")
    return results


if __name__ == "__main__":
    main()
