"""What the ``reproduce_*.py`` scripts share: the data directory and backend flags and their checks."""

from __future__ import annotations

import argparse
import os

MAKE_CIFAR10 = "python ../shared/data/make_cifar10.py"


def parser(doc: str, *, data_required: bool = True) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with ``--data-dir`` and ``--backend``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--data-dir", required=data_required, default=None,
                   help="the cifar-10-batches-py directory or its parent "
                        f"(write it with `{MAKE_CIFAR10} /tmp/cifar10`)")
    p.add_argument("--backend", default="numpy", help="numpy, cupy, array_api_strict or auto (default numpy)")
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse ``argv``; a ``--data-dir`` that is not a directory ends with one line saying how to write it."""
    args = p.parse_args(argv)
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir!r} is not a directory; write CIFAR-10 there first with "
                f"`{MAKE_CIFAR10} {args.data_dir}`")
    return args
