"""The scripts in examples/ run, at short sizes, and their checks hold.

Each example asserts its results against an independent computation (dense NumPy/SciPy,
finite differences, exact solutions) as it runs; these tests run ``main`` with small sizes
and check what it returns and prints. The plots are built headless (Agg) into a temporary
folder and checked for size and legend entries.
"""

import functools
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@functools.cache
def load(name):
    """The example module examples/<name>.py, imported by path."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"matkron_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path):
    """(width, height) in pixels, from the PNG header."""
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts == {"poisson", "gaussian_process_grid", "control_sylvester_lyapunov",
                       "newton_matrix_roots", "jacobian_chain_modes"}


def test_poisson(capsys):
    results = load("poisson").main(n=24, n3=10, n_check=8, plot=False)
    two, three = results["2-D"], results["3-D"]
    assert two["N"] == 24 * 18 and three["N"] == 10**3
    for res in (two, three):
        assert res["residual"] < 1e-10 and res["error"] < 1e-9
        assert res["cg_residual"] < 1e-7 and res["cg_iterations"] > 1
        assert res["spsolve_difference"] < 1e-10
    out = capsys.readouterr().out
    assert "L = kronsum(Tx, Ty)" in out and "L = kronsum(Tx, Ty, Tz)" in out
    assert "spsolve" in out and "scipy cg on L" in out
    assert "plot" not in results


def test_gaussian_process_grid(capsys):
    module = load("gaussian_process_grid")
    results = module.main(n=24, n_check=10, n_scan=5, plot=False)
    check = results["check"]
    assert np.isclose(check["lml"], check["lml_dense"], rtol=1e-9)
    assert np.isclose(check["logdet"], check["logdet_dense"], rtol=1e-9)
    assert check["alpha_error"] < 1e-8
    assert results["N"] == 24 * 18 and len(results["lmls"]) == 5
    assert np.isclose(results["best_scale"], module.LENGTH_SCALES[0])
    assert results["residual"] < 1e-10 and results["rmse_mean"] < results["rmse_data"]
    out = capsys.readouterr().out
    assert "against dense NumPy" in out and "<- best" in out


def test_control_sylvester_lyapunov(capsys):
    results = load("control_sylvester_lyapunov").main(p=20, count=3)
    n = 40
    assert results["Wc"].shape == results["Wo"].shape == (n, n)
    assert results["residual"] < 1e-10
    assert np.allclose(results["Wc"], results["Wc"].T, atol=1e-12 * np.abs(results["Wc"]).max())
    assert 0 < results["order"] < n
    assert np.all(np.diff(results["hankel"]) <= 0)
    assert abs(results["distance"] ** 2 - results["distance_scipy"] ** 2) < 1e-10 * results[
        "h2"] ** 2
    assert results["many"]["error"] < 1e-8
    out = capsys.readouterr().out
    assert "Hankel singular values" in out and "3 Sylvester solves" in out


def test_newton_matrix_roots(capsys):
    results = load("newton_matrix_roots").main(m=12, powers=(2, 3), plot=False)
    for p in (2, 3):
        res = results[p]
        assert res["residuals"][-1] < 1e-14 and res["error"] < 1e-12
        assert len(res["residuals"]) <= 10  # quadratic convergence: a handful of steps
        X = res["X"]
        assert np.allclose(np.linalg.matrix_power(X, p), load(
            "newton_matrix_roots").nonsymmetric_matrix(12, np.random.default_rng(0)))
    assert results[2]["direct_difference"] < 1e-9
    out = capsys.readouterr().out
    assert "square root of a 12x12 matrix" in out and "log r_k / log r_k-1" in out


def test_jacobian_chain_modes(capsys):
    results = load("jacobian_chain_modes").main(m=8, n=5, scale=0.05)
    derivatives = results["derivatives"]
    assert derivatives["cs_error"] < 1e-12 and derivatives["poly_error"] < 1e-12
    assert derivatives["fd_error"] < 1e-6 and derivatives["grad_error"] < 1e-12
    wide_in = results["wide input, scalar output"]
    assert wide_in["cost"] == wide_in["reverse_cost"] < wide_in["forward_cost"]
    wide_out = results["scalar input, wide output"]
    assert wide_out["cost"] == wide_out["forward_cost"] < wide_out["reverse_cost"]
    bottlenecks = results["bottlenecks"]
    assert bottlenecks["cost"] < min(bottlenecks["forward_cost"], bottlenecks["reverse_cost"])
    for name, mode in (("wide input, scalar output", "reverse"),
                       ("scalar input, wide output", "forward"), ("bottlenecks", "mixed")):
        matrix_free = results[name]["matrix_free"]
        assert matrix_free["plan_mode"] == mode
        assert all(matrix_free[m]["error"] < 1e-12 for m in ("forward", "reverse", "auto"))
        assert matrix_free["auto"]["cost"] <= min(matrix_free["forward"]["cost"],
                                                  matrix_free["reverse"]["cost"])
    out = capsys.readouterr().out
    assert "chain_order's plan" in out and "reverse (left to right)" in out
    assert "jacobian_chain mode='auto'" in out


# The examples that save a plot, short sizes, and the legend each should show.
PLOTS = {
    "poisson": ({"n": 16, "n3": 8, "n_check": 8},
                ["2-D 16x12, N = 192", "3-D 8x8x8, N = 512"]),
    "gaussian_process_grid": ({"n": 16, "n_check": 8, "n_scan": 5},
                              ["log p(y) − max (matkron)", "true ℓ1"]),
    "newton_matrix_roots": ({"m": 8, "powers": (2, 5)},
                            ["square root (Xᵖ = A, p = 2)", "5th root (Xᵖ = A, p = 5)"]),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plot(name, tmp_path, monkeypatch, capsys):
    import matplotlib

    sizes, legend = PLOTS[name]
    monkeypatch.setenv("MATKRON_EXAMPLES_PLOTS", str(tmp_path))
    results = load(name).main(**sizes)  # plots by default, into $MATKRON_EXAMPLES_PLOTS
    assert matplotlib.get_backend().lower() == "agg"
    path = Path(results["plot"]["path"])
    assert path.parent == tmp_path and path.name == f"{name}.png"
    assert str(path) in capsys.readouterr().out
    width, height = png_size(path)
    assert 400 <= width <= 1600 and 300 <= height <= 1200
    assert results["plot"]["legend"] == legend


def test_no_plot_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises
    results = load("newton_matrix_roots").main(m=6, powers=(2,), plot_dir=str(tmp_path))
    assert "plot" not in results and not any(tmp_path.iterdir())
    assert "matplotlib is not installed: no plot" in capsys.readouterr().out
