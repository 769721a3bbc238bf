"""Sphinx configuration of matkron's documentation (numpydoc, as SciPy's reference).

Build from the repository root, with matkron installed (the docs import it):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Two listings are written at build time, so nothing in them is kept by hand:

- ``reference/_api.rst``: an autosummary table of every name in ``matkron.__all__``,
  grouped by the module that defines it (``SECTIONS``); autosummary then writes one page
  per name into ``reference/generated/``.
- ``examples/generated/``: one page per ``examples/*.py`` (its module docstring, then the
  script) and the list that ``examples/index.rst`` includes.
"""

import ast
import inspect
from pathlib import Path

import matkron

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "matkron"
copyright = "the matkron developers"
release = matkron.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax copied into _static, so that the pages show their math offline too
    "sphinx-mathjax-offline",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**/_*.rst"]
default_role = "autolink"  # `name` links a documented object, as in SciPy's docs

# numpydoc renders the docstrings; the class template lists methods and properties itself,
# so numpydoc adds no member tables of its own (they would list SciPy's LinearOperator API).
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

autosummary_generate = ["reference/_api.rst"]
autosummary_generate_overwrite = True
autodoc_typehints = "none"  # the signatures' types are in the Parameters sections

html_theme = "pydata_sphinx_theme"
html_title = f"matkron {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_sidebars = {"index": []}
html_static_path = []
html_show_sourcelink = False


# --- the API reference, from matkron.__all__ -----------------------------------------

# The module that defines a name chooses its section; a module not listed here (one added
# later) goes to "Other functions and classes", so every public name is documented.
SECTIONS = {
    "matkron._kron": "Vectorization and Kronecker products",
    "matkron._kron_cy": "Vectorization and Kronecker products",
    "matkron._factors": "Structured factors",
    "matkron._operators": "Kronecker operators, sums of Kronecker products, Kronecker sums",
    "matkron._inv_quad_logdet": "Kronecker operators, sums of Kronecker products, Kronecker sums",
    "matkron._power": "Derivatives of matrix powers and polynomials",
    "matkron._frechet": "Fréchet derivatives of matrix functions",
    "matkron._chain": "Matrix chains",
    "matkron._jacobian_chain": "Jacobian chains",
    "matkron._threads": "Threads",
    "matkron._planner": "Planning (measured plans and wisdom)",
}
OTHER = "Other functions and classes"

# Members inherited from these classes are SciPy's LinearOperator interface (matvec,
# matmat, adjoint, ...; ProductOperator only speeds them up): a class page names them in
# one line instead of documenting each.
LINEAR_OPERATOR_BASES = ("ProductOperator", "LinearOperator", "object")


def _section(obj):
    return SECTIONS.get(getattr(obj, "__module__", None), OTHER)


def api_listing():
    """reST of the reference: one autosummary table per section, functions before classes."""
    sections = {title: [] for title in dict.fromkeys([*SECTIONS.values(), OTHER])}
    for name in matkron.__all__:
        sections[_section(getattr(matkron, name))].append(name)
    lines = [".. currentmodule:: matkron", ""]
    for title, names in sections.items():
        if not names:
            continue
        names.sort(key=lambda n: (inspect.isclass(getattr(matkron, n)), n.lower()))
        lines += [title, "-" * len(title), "", ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {name}" for name in names]
        lines.append("")
    return "\n".join(lines)


def class_members(cls):
    """The public members a class page documents: those its matkron classes define.

    Returns {"methods": [...], "properties": [...], "attributes": [...]}, each sorted.
    """
    owners = []
    for base in cls.__mro__:
        if base.__name__ in LINEAR_OPERATOR_BASES:
            break
        owners.append(base)
    kinds = {"methods": set(), "properties": set(), "attributes": set()}
    for base in owners:
        for name, value in vars(base).items():
            if name.startswith("_"):
                continue
            if isinstance(value, property):
                kinds["properties"].add(name)
            elif callable(value) or isinstance(value, (staticmethod, classmethod)):
                kinds["methods"].add(name)
            else:
                kinds["attributes"].add(name)
    return {kind: sorted(names) for kind, names in kinds.items()}


def _linear_operator(cls):
    return any(base.__name__ == "LinearOperator" for base in cls.__mro__)


def init_signature(cls):
    """The constructor's signature without annotations and private parameters.

    Given explicitly for LinearOperator subclasses, which autodoc would show as
    ``(*args, **kwargs)``, the signature of ``LinearOperator.__new__``.
    """
    sig = inspect.signature(cls.__init__)
    params = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in list(sig.parameters.values())[1:]
        if not p.name.startswith("_")
    ]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


autosummary_context = {
    "matkron_members": {
        f"matkron.{name}": class_members(obj)
        for name in matkron.__all__
        if inspect.isclass(obj := getattr(matkron, name))
    },
    "matkron_linear_operators": {
        f"matkron.{name}": init_signature(obj)
        for name in matkron.__all__
        if inspect.isclass(obj := getattr(matkron, name)) and _linear_operator(obj)
    },
}


# --- the examples gallery, from examples/*.py ----------------------------------------


def _docstring_as_rest(doc):
    """A module docstring as reST: each indented block after a paragraph becomes a literal
    block, so the equations keep the layout they have in the script (a paragraph ending
    in ':' shows one colon, any other paragraph nothing more)."""
    lines = doc.splitlines()
    for i, line in enumerate(lines[:-2]):
        text = line.rstrip()
        if (text and not line.startswith(" ") and not text.endswith("::")
                and not lines[i + 1].strip() and lines[i + 2].startswith(" ")):
            lines[i] = text + (":" if text.endswith(":") else " ::")
    return "\n".join(lines)


def _title(lead):
    """The page title and the rest of the lead paragraph: split at its first colon, else
    the whole paragraph is the title."""
    title, _, rest = lead.partition(": ")
    return title.rstrip("."), rest[:1].upper() + rest[1:]


def _example_scripts():
    """examples/*.py in the order examples/README.md links them, then any others."""
    scripts = sorted((ROOT / "examples").glob("*.py"))
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    linked = {s: readme.find(f"]({s.name})") for s in scripts}
    return sorted(scripts, key=lambda s: (linked[s] < 0, linked[s], s.name))


def example_pages():
    """{relative path: reST} for each example's page and for the gallery's list."""
    pages = {}
    items = []
    for script in _example_scripts():
        source = script.read_text(encoding="utf-8")
        tree = ast.parse(source)
        doc = ast.get_docstring(tree)
        if not doc:
            raise ValueError(f"{script} has no module docstring to describe it")
        lead, _, body = doc.partition("\n\n")
        title, rest = _title(" ".join(lead.split()))
        # The script from its first non-blank line after the docstring.
        lines = source.splitlines()
        first = tree.body[0].end_lineno
        while first < len(lines) and not lines[first].strip():
            first += 1
        name = script.stem
        pages[f"examples/generated/{name}.rst"] = "\n".join([
            f".. _example-{name}:",
            "",
            title,
            "=" * len(title),
            "",
            rest,
            "",
            _docstring_as_rest(body),
            "",
            f"The script, ``examples/{script.name}``:",
            "",
            f".. literalinclude:: ../../../examples/{script.name}",
            "   :language: python",
            f"   :lines: {first + 1}-",
            "",
        ])
        items.append(f"- :doc:`generated/{name}`" + (f": {rest}" if rest else ""))
    pages["examples/_list.rst"] = "\n".join(
        [*items, "", ".. toctree::", "   :hidden:", "", *(
            f"   generated/{Path(p).stem}" for p in pages
        ), ""]
    )
    return pages


def _write(relpath, text):
    """Write a generated file, only when its content changed (Sphinx rebuilds by mtime)."""
    path = DOCS / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _generate():
    _write("reference/_api.rst", api_listing())
    for stale in (DOCS / "reference" / "generated").glob("matkron.*.rst"):
        if stale.stem.removeprefix("matkron.") not in matkron.__all__:
            stale.unlink()
    wanted = example_pages()
    for relpath, text in wanted.items():
        _write(relpath, text)
    for stale in (DOCS / "examples" / "generated").glob("*.rst"):
        if str(stale.relative_to(DOCS)) not in wanted:
            stale.unlink()


_generate()
