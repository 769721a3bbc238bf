"""Gaussian-process regression on a 2-D grid with a product kernel, through matkron.

On a full grid x1 × x2 (n1 · n2 = N points), the product kernel
k((a1, a2), (b1, b2)) = σf² k1(a1, b1) k2(a2, b2) has the covariance matrix
σf² (K1 ⊗ K2), with the grid values in C order (the value at (x1[i], x2[j]) at index
i·n2 + j, as ``np.kron`` orders rows). With noise variance σn² the regression needs

    α = (σf² K1 ⊗ K2 + σn² I)⁻¹ y    and    log det(σf² K1 ⊗ K2 + σn² I),

which ``matkron.kron(K1, K2)`` scaled and plus ``σn² * matkron.identity(N)`` computes from
one eigendecomposition per factor: O(n1³ + n2³ + N (n1 + n2)) instead of O(N³). The log
marginal likelihood

    log p(y) = -½ yᵀα - ½ log det(K + σn² I) - (N/2) log 2π

is then cheap enough to scan a length scale on a grid of 30 000 points. Data are drawn from
the GP itself, the dense NumPy computation checks every quantity on a small grid, and the
posterior mean is evaluated on a finer grid through the rectangular cross-covariance
factors.

Run ``python examples/gaussian_process_grid.py``; ``main(n=...)`` takes the grid size.
"""

import os
import tempfile
import time
from typing import Any

import numpy as np

import matkron

# The hyperparameters the data are drawn with.
LENGTH_SCALES = (0.1, 0.25)
SIGNAL_VARIANCE = 1.0
NOISE_VARIANCE = 0.01


def rbf(a: np.ndarray, b: np.ndarray, length_scale: float) -> np.ndarray:
    """The squared-exponential kernel matrix exp(-(a_i - b_j)² / (2 ℓ²))."""
    K: np.ndarray = np.exp(-0.5 * ((a[:, np.newaxis] - b[np.newaxis, :]) / length_scale) ** 2)
    return K


def covariance(x1: np.ndarray, x2: np.ndarray, length_scales: tuple[float, float],
               noise: float) -> Any:
    """σf² K1 ⊗ K2 + σn² I as a matkron operator."""
    K1 = rbf(x1, x1, length_scales[0])
    K2 = rbf(x2, x2, length_scales[1])
    return SIGNAL_VARIANCE * matkron.kron(K1, K2) + noise * matkron.identity(x1.size * x2.size)


def log_marginal_likelihood(C: Any, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """log p(y), α = C⁻¹ y and log det C for the covariance operator C."""
    alpha = C.solve(y)
    sign, logdet = C.slogdet()
    assert sign > 0, "a covariance is positive definite"
    lml = -0.5 * y @ alpha - 0.5 * logdet - 0.5 * y.size * np.log(2 * np.pi)
    return float(lml), alpha, float(logdet)


def dense_log_marginal_likelihood(x1: np.ndarray, x2: np.ndarray,
                                  length_scales: tuple[float, float], noise: float,
                                  y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """The same with the dense N×N matrix and NumPy: the oracle for small grids."""
    C = SIGNAL_VARIANCE * np.kron(rbf(x1, x1, length_scales[0]), rbf(x2, x2, length_scales[1]))
    C += noise * np.eye(y.size)
    alpha = np.linalg.solve(C, y)
    sign, logdet = np.linalg.slogdet(C)
    assert sign > 0
    lml = -0.5 * y @ alpha - 0.5 * logdet - 0.5 * y.size * np.log(2 * np.pi)
    return float(lml), alpha, float(logdet)


def draw(x1: np.ndarray, x2: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """A function f drawn from the GP on the grid, and noisy observations y of it."""
    jitter = 1e-8  # the squared-exponential kernel matrices are numerically singular
    L = matkron.kron(
        rbf(x1, x1, LENGTH_SCALES[0]) + jitter * np.eye(x1.size),
        rbf(x2, x2, LENGTH_SCALES[1]) + jitter * np.eye(x2.size),
    ).cholesky()
    f = np.sqrt(SIGNAL_VARIANCE) * (L @ rng.standard_normal(x1.size * x2.size))
    y = f + np.sqrt(NOISE_VARIANCE) * rng.standard_normal(f.size)
    return f, y


def check_against_dense(n1: int, n2: int, rng: np.random.Generator) -> dict[str, float]:
    """α, log det and log p(y) from matkron and from dense NumPy on an n1 × n2 grid."""
    x1, x2 = np.linspace(0, 1, n1), np.linspace(0, 1, n2)
    _, y = draw(x1, x2, rng)
    start = time.perf_counter()
    lml, alpha, logdet = log_marginal_likelihood(
        covariance(x1, x2, LENGTH_SCALES, NOISE_VARIANCE), y)
    t_matkron = time.perf_counter() - start
    start = time.perf_counter()
    lml_d, alpha_d, logdet_d = dense_log_marginal_likelihood(
        x1, x2, LENGTH_SCALES, NOISE_VARIANCE, y)
    t_dense = time.perf_counter() - start
    alpha_error = np.abs(alpha - alpha_d).max() / np.abs(alpha_d).max()
    print(f"check on a {n1}x{n2} grid (N = {n1 * n2}) against dense NumPy:")
    print(f"  log det   matkron {logdet:.10f}   numpy {logdet_d:.10f}")
    print(f"  log p(y)  matkron {lml:.10f}   numpy {lml_d:.10f}")
    print(f"  α relative difference {alpha_error:.1e}; time matkron {t_matkron * 1e3:.2f} ms, "
          f"numpy {t_dense * 1e3:.2f} ms")
    assert np.isclose(logdet, logdet_d, rtol=1e-9, atol=1e-8 * y.size)
    assert np.isclose(lml, lml_d, rtol=1e-9, atol=1e-8 * y.size)
    assert alpha_error < 1e-8
    return {"logdet": logdet, "logdet_dense": logdet_d, "lml": lml, "lml_dense": lml_d,
            "alpha_error": alpha_error}


def plot_file(name: str, plot_dir: str | None) -> str:
    """Where to save a plot: `plot_dir`, else $MATKRON_EXAMPLES_PLOTS, else a temp folder."""
    folder = plot_dir or os.environ.get("MATKRON_EXAMPLES_PLOTS") or os.path.join(
        tempfile.gettempdir(), "matkron-examples")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def plot_regression(f: np.ndarray, y: np.ndarray, mean_fine: np.ndarray,
                    scales: np.ndarray, lmls: np.ndarray, path: str) -> list[str]:
    """Save the truth, the data, the posterior mean and the length-scale scan to `path`;
    return the legend's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9.0, 7.5), dpi=100, layout="constrained")
    limits = {"vmin": f.min(), "vmax": f.max(), "origin": "lower", "extent": (0, 1, 0, 1),
              "cmap": "viridis"}
    # Rows of the grid arrays run along x1; imshow draws x1 up and x2 across.
    for ax, image, title in zip(axes.flat, (f, y, mean_fine),
                                ("f drawn from the GP", "data y = f + noise",
                                 "posterior mean (finer grid)")):
        shown = ax.imshow(image, **limits)
        ax.set_title(title)
        ax.set_xlabel("x2")
        ax.set_ylabel("x1")
    fig.colorbar(shown, ax=axes[0, :], shrink=0.8)
    ax = axes[1, 1]
    # Relative to the best, on a symmetric log scale: the likelihood falls by 10⁵ here.
    ax.plot(scales, lmls - lmls.max(), "o-", label="log p(y) − max (matkron)")
    ax.axvline(LENGTH_SCALES[0], color="k", linestyle="--", label="true ℓ1")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(top=5)
    ax.set_xticks(scales[::2], [f"{s:.3g}" for s in scales[::2]])
    ax.minorticks_off()
    ax.set_xlabel("length scale ℓ1")
    ax.set_ylabel("log marginal likelihood − max")
    ax.set_title("length-scale scan")
    ax.grid(True, alpha=0.4)
    legend = ax.legend()
    fig.savefig(path)
    plt.close(fig)
    return [text.get_text() for text in legend.get_texts()]


def main(n: int = 200, *, n_check: int = 24, n_scan: int = 9, plot: bool = True,
         plot_dir: str | None = None, seed: int = 0) -> dict[str, Any]:
    """GP regression on an n × (3n/4) grid; the dense check on an n_check × (n_check - 5)
    grid; `n_scan` length scales in the likelihood scan. With `plot` (and matplotlib
    installed) the fields and the scan are saved to gaussian_process_grid.png in
    `plot_dir`."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if plot:
            print("matplotlib is not installed: no plot")
        plot = False
    rng = np.random.default_rng(seed)
    results: dict[str, Any] = {"check": check_against_dense(n_check, n_check - 5, rng)}

    n1, n2 = n, max(2, 3 * n // 4)
    x1, x2 = np.linspace(0, 1, n1), np.linspace(0, 1, n2)
    f, y = draw(x1, x2, rng)
    print(f"\nregression on a {n1}x{n2} grid (N = {n1 * n2}), "
          f"true ℓ = {LENGTH_SCALES}, σf² = {SIGNAL_VARIANCE}, σn² = {NOISE_VARIANCE}:")

    # Scan ℓ1 with the other hyperparameters at their true values: one solve and one
    # log-determinant per point, each from the factors' eigendecompositions.
    scales = LENGTH_SCALES[0] * np.geomspace(0.25, 4, n_scan)
    lmls = np.empty(n_scan)
    start = time.perf_counter()
    for i, scale in enumerate(scales):
        C = covariance(x1, x2, (scale, LENGTH_SCALES[1]), NOISE_VARIANCE)
        lmls[i] = log_marginal_likelihood(C, y)[0]
    t_scan = time.perf_counter() - start
    best = scales[np.argmax(lmls)]
    for scale, lml in zip(scales, lmls):
        print(f"  ℓ1 = {scale:.4f}   log p(y) = {lml:14.2f}" + ("   <- best" if scale == best
                                                               else ""))
    print(f"  {n_scan} evaluations of log p(y) in {t_scan:.2f} s "
          f"({t_scan / n_scan * 1e3:.1f} ms each; a dense Cholesky of N = {n1 * n2} "
          f"would need {(n1 * n2) ** 2 * 8 / 2**30:.1f} GiB)")
    # The data were drawn with the true ℓ1: the likelihood should peak within one step of
    # the scan from it, even on grids of a few hundred points.
    assert abs(np.log(best / LENGTH_SCALES[0])) <= np.log(scales[1] / scales[0]) + 1e-9

    # The posterior mean at the data and on a twice finer grid: σf² K(x*, x) α with the
    # cross-covariance K1(x1*, x1) ⊗ K2(x2*, x2), rectangular factors.
    C = covariance(x1, x2, LENGTH_SCALES, NOISE_VARIANCE)
    _, alpha, _ = log_marginal_likelihood(C, y)
    # The solve checked by a product with the operator (its terms, no eigendecomposition).
    residual = np.linalg.norm(C @ alpha - y) / np.linalg.norm(y)
    mean = y - NOISE_VARIANCE * alpha  # σf² K α = (C - σn² I) α
    fine1, fine2 = np.linspace(0, 1, 2 * n1), np.linspace(0, 1, 2 * n2)
    cross = SIGNAL_VARIANCE * matkron.kron(rbf(fine1, x1, LENGTH_SCALES[0]),
                                           rbf(fine2, x2, LENGTH_SCALES[1]))
    mean_fine = cross @ alpha
    rmse_data = np.sqrt(np.mean((y - f) ** 2))
    rmse_mean = np.sqrt(np.mean((mean - f) ** 2))
    print(f"  ‖C α − y‖/‖y‖ = {residual:.1e}; RMS error vs f: data {rmse_data:.4f}, "
          f"posterior mean {rmse_mean:.4f}")
    assert residual < 1e-10
    # The fine grid shares its corners with the data grid: the two means agree there.
    corners = [0, -1]
    assert np.allclose(mean_fine.reshape(2 * n1, 2 * n2)[np.ix_(corners, corners)],
                       mean.reshape(n1, n2)[np.ix_(corners, corners)], rtol=1e-8, atol=1e-8)
    assert rmse_mean < rmse_data  # the posterior mean denoises
    results.update({"N": n1 * n2, "scales": scales, "lmls": lmls, "best_scale": best,
                    "residual": residual, "rmse_data": rmse_data, "rmse_mean": rmse_mean,
                    "time_scan": t_scan})
    if plot:
        path = plot_file("gaussian_process_grid.png", plot_dir)
        legend = plot_regression(f.reshape(n1, n2), y.reshape(n1, n2),
                                 mean_fine.reshape(2 * n1, 2 * n2), scales, lmls, path)
        results["plot"] = {"path": path, "legend": legend}
        print(f"\nplot: {path}")
    return results


if __name__ == "__main__":
    main()
