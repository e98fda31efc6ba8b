"""What the ``reproduce_*.py`` scripts share: their common flags and checks, and xpml's command-line
error handling (a mistake is one line ``error: ...`` and exit status 2, never a traceback)."""

from __future__ import annotations

import argparse
import os

from xpml import backend, nets
from xpml.cli import _cli

FETCH_CIFAR10 = "xpml download --data-dir"


def accuracy(model, X, y, **predict_kwargs) -> float:
    """``model``'s accuracy on ``(X, y)`` (the library's :func:`nets.accuracy` of
    ``model.predict(X, **predict_kwargs)``), read back as a Python float."""
    return float(backend.to_numpy(nets.accuracy(model.predict(X, **predict_kwargs), y)))


def parser(doc: str, *, prog: str, data_required: bool = True) -> _cli.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with ``--data-dir`` and ``--backend``."""
    p = _cli.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    p.add_argument("--data-dir", required=data_required, default=None,
                   help=f"the cifar-10-batches-py directory or its parent (fetch it with `{FETCH_CIFAR10} DIR`)")
    p.add_argument("--backend", default="numpy", help="numpy, cupy, array_api_strict or auto (default numpy)")
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse ``argv``; a ``--data-dir`` that is not a directory ends with one line saying how to fetch it."""
    args = p.parse_args(argv)
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise _cli.UsageError(f"--data-dir {args.data_dir!r} is not a directory; fetch CIFAR-10 there first with "
                              f"`{FETCH_CIFAR10} {args.data_dir}`")
    return args


def writable_file(path: str, *, flag: str) -> str:
    """``path``, checked before the long run that ends by writing it: its folder is made now, and must
    be writable; ``path`` itself must not be a directory."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise _cli.UsageError(f"{flag} {path} is a directory; name the file to write, e.g. {flag} {path}/plot.png")
    os.makedirs(folder, exist_ok=True)  # an OSError here is one line too
    if not os.access(folder, os.W_OK):
        raise _cli.UsageError(f"{flag} {path}: the folder {folder} is not writable; choose another")
    return path


def at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def kind(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"an integer is needed, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value
    return kind


def run(main, argv=None) -> int:
    """``main(argv)`` through xpml's one-line error handling; returns the exit status."""
    return _cli.run(main, argv)
