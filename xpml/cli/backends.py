"""``xpml backends``: every array backend xpml knows, and why each unusable one is unusable."""

from __future__ import annotations

import argparse
import sys

from .. import backend


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="xpml backends", description=__doc__.split(":", 1)[1].strip())
    parser.parse_args(argv)
    for status in backend.list_backends():
        print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
