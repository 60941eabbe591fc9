"""Entry point for ``python -m sessionlint``."""

import sys

from sessionlint.cli import main

if __name__ == "__main__":
    sys.exit(main())
