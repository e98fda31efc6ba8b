"""``xpml backends``: every array backend xpml knows, and why each unusable one is unusable."""

from __future__ import annotations

import argparse
import sys

from .. import backend


class _Mistake(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # Not _cli.ArgumentParser: importing _cli checks for the scripts' extras, which this command
    # does without. A bad flag is one line all the same.
    def error(self, message):
        raise _Mistake(f"{message} (see {self.prog} --help)")


def main(argv=None) -> int:
    parser = _Parser(prog="xpml backends", description=__doc__.split(":", 1)[1].strip())
    try:
        parser.parse_args(argv)
    except _Mistake as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for status in backend.list_backends():
        print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
