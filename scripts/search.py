"""Random hyperparameter search as the notes teach it: log-uniform ranges, coarse then fine.

A checkout's wrapper over ``xpml search`` (:mod:`xpml.cli.search`): the same flags, the same code.
"""

import sys

from xpml.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
