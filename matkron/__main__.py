"""Command line: ``python -m matkron bench [kron] [--quick] ...``."""

import sys

from ._bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
