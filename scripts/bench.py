"""xpml's benchmark suite: xpml and the libraries a user would pick instead, side by side.

A checkout's wrapper over ``xpml bench`` (:mod:`xpml.cli.bench`, its sections in
:mod:`xpml.cli.benchmarks`): the same flags, the same code, the same one-line errors.
"""

import sys

from xpml.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
