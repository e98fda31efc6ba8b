"""Train kNN, a linear SVM, softmax and a two-layer net, on the CPU or a CUDA GPU, from one command.

A checkout's wrapper over ``xpml train`` (:mod:`xpml.cli.train`): the same flags, the same code.
"""

import sys

from xpml.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
