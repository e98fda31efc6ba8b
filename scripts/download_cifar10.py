"""Download CIFAR-10's python archive, check its MD5 and unpack it into the data cache.

A checkout's wrapper over ``xpml download`` (:mod:`xpml.cli.download`): the same flags, the same code.
"""

import sys

from xpml.cli.download import main

if __name__ == "__main__":
    sys.exit(main())
