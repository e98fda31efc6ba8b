"""``python -m scripts.bench`` (from the checkout's root): the same as ``python scripts/bench/run.py``."""

import sys

from scripts.bench.run import main

if __name__ == "__main__":
    sys.exit(main())
