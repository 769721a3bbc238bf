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
