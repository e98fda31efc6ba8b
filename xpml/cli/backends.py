"""``xpml backends``: every array backend xpml knows, and why each unusable one is unusable."""

from __future__ import annotations

import sys

from .. import backend
from . import _cli


def _main(argv) -> int:
    parser = _cli.ArgumentParser(prog="xpml backends", description=__doc__.split(":", 1)[1].strip())
    parser.parse_args(argv)
    for status in backend.list_backends():
        print(status)
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
