"""Packaging: one version, exposed where users look for it; the license ships."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import matkron

ROOT = Path(__file__).resolve().parent.parent


def test_version_in_one_place():
    # `python -m matkron --version` and matkron.__version__ give the version meson.build
    # declares (the one place it is written), which the installed metadata carries too.
    declared = re.search(
        r"version: '([^']+)'",
        (ROOT / "meson.build").read_text(),
    ).group(1)
    assert matkron.__version__ == declared
    assert importlib.metadata.version("matkron") == declared
    proc = subprocess.run([sys.executable, "-m", "matkron", "--version"], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parent)
    assert proc.stdout.strip() == f"matkron {declared}"


def test_license_file_is_installed():
    files = importlib.metadata.files("matkron")
    assert any(f.name == "LICENSE" for f in files)
    assert importlib.metadata.metadata("matkron")["License-Expression"] == "BSD-3-Clause"


def _relative_imports(path):
    """(module-level, inside-function) sibling modules that matkron/<path> imports; imports
    under ``if TYPE_CHECKING:`` are for annotations only and do not count."""
    import ast

    tree = ast.parse(path.read_text())
    siblings = {p.stem for p in path.parent.glob("*.py")}
    top, nested = set(), set()

    def names(node):
        if node.module:  # from ._x import ...
            return {node.module.split(".")[0]}
        return {a.name for a in node.names if a.name in siblings}  # from . import _x

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.level == 1:
                (nested if in_function else top).update(names(child))
            visit(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, nested


def test_python_modules_import_without_cycles_or_function_level_imports():
    # One direction of dependency: no module imports a sibling inside a function (a
    # hidden cycle), and the module-level imports form no cycle.
    package = ROOT / "matkron"
    graph = {}
    for path in sorted(package.glob("*.py")):
        top, nested = _relative_imports(path)
        assert not nested, f"{path.name} imports {sorted(nested)} inside a function"
        graph[path.stem] = top - {path.stem}

    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(trail)
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            visit(dep, trail + [dep])
        state[module] = "done"

    for module in graph:
        visit(module, [module])


def test_compiled_modules_never_import_the_python_layer():
    # One direction of dependency: the Python layer calls the kernels, never the reverse.
    # A compiled module may cimport another compiled module's C interface (a .pxd) and
    # import the standard library or NumPy, but no Python module of matkron.
    python_modules = {p.stem for p in (ROOT / "matkron").glob("*.py")}
    for source in sorted((ROOT / "csrc").glob("*.pyx")):
        for number, line in enumerate(source.read_text().splitlines(), 1):
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and "cimport" not in words:
                module = words[1]
                top, _, rest = module.partition(".")
                assert not (top == "matkron" and rest.split(".")[0] in python_modules), (
                    f"{source.name}:{number} imports the Python module {module}")
