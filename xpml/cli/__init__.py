"""The ``xpml`` command: one entry point with a subcommand per job.

    xpml train      train models and report their accuracy
    xpml search     random hyperparameter search, coarse then fine
    xpml download   fetch CIFAR-10 into the data cache
    xpml backends   the array backends, and why each unusable one is unusable

Each subcommand lives in its own module (``xpml.cli.train``, ...) with a ``main(argv) -> int``;
the files under ``scripts/`` of a checkout are thin wrappers over the same functions. The
benchmarks are not part of the command (nor of the wheel): ``python scripts/bench/run.py`` runs
them from a checkout.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "main"]

# name -> (module, one-line summary); modules are imported only when their command runs, so
# ``xpml backends`` needs none of the scripts' extras.
COMMANDS = {
    "train": ("train", "train models and report their accuracy"),
    "search": ("search", "random hyperparameter search, coarse then fine"),
    "download": ("download", "fetch CIFAR-10 into the data cache"),
    "backends": ("backends", "the array backends, and why each unusable one is unusable"),
}


def _usage() -> str:
    from .. import __version__

    lines = [f"usage: xpml COMMAND [ARGS ...]   (xpml {__version__})", "", "commands:"]
    lines += [f"  {name:10s} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "xpml COMMAND --help describes each one."]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run ``xpml`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        print("error: choose a command", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help"):
        print(_usage())
        return 0
    if command == "--version":
        from .. import __version__

        print(f"xpml {__version__}")
        return 0
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)} (see xpml --help)",
              file=sys.stderr)
        return 2
    module = importlib.import_module(f".{COMMANDS[command][0]}", __name__)
    return module.main(rest)
