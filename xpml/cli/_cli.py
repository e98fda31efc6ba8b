"""Command-line plumbing shared by the subcommands: one-line errors, checked numbers, backend choice.

Every subcommand's ``main(argv)`` goes through :func:`run`, which sorts what escapes into two kinds:

- a mistake in the command or its inputs, or a failure of the machine: what the library raises on
  purpose (:class:`xpml.backend.errors.XpmlError`), a corrupt or unreachable file, any other
  ``OSError`` (a full disk, a read-only file system, a folder where a file should be), running out
  of memory. Each is one line ``error: ...`` on stderr, exit status 2, never a traceback.
- anything else is a bug in xpml: one line saying so and how to report it, then the traceback,
  exit status 1.

Set ``XPML_TRACEBACK=1`` to see the traceback of a mistake too, when debugging. Importing this
module never exits: optional packages are looked up when a command needs them
(:func:`optional`), and a missing one is named once with the install command that fits how xpml
was installed (:func:`install_hint`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import math
import os
import sys
import traceback

from .. import backend
from .._install import install_hint
from ..backend.errors import XpmlError
from ..backend.io import CorruptFileError
from ._download import DownloadError
from ._locks import LockedError

__all__ = [
    "ArgumentParser",
    "USER_ERRORS",
    "UsageError",
    "add_common_arguments",
    "choose_backend",
    "count",
    "cpu_threads",
    "fraction",
    "install_hint",
    "natural",
    "non_negative",
    "note_missing",
    "note_once",
    "optional",
    "positive",
    "run",
]


_noted: set[str] = set()


def note_once(text: str) -> None:
    """Print ``note: text`` on stderr, once per process whatever the number of calls."""
    if text not in _noted:
        _noted.add(text)
        print(f"note: {text}", file=sys.stderr)


def optional(module: str, *, package: str, skipped: str, extra: str = "scripts"):
    """``module`` imported, or None when it is not installed (saying once what is skipped without it).

    ``package`` is its name for pip, ``skipped`` what the run does without it ("no pictures").
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        note_missing(package, skipped=skipped, extra=extra)
        return None


def note_missing(package: str, *, skipped: str, extra: str = "scripts") -> None:
    """Say once that ``package`` is not installed, what is ``skipped`` without it, and how to add it."""
    note_once(f"{package} is not installed, so {skipped}; {install_hint(extra)} adds it")


class UsageError(Exception):
    """A mistake on the command line or in its inputs; reported as one line, exit status 2."""


# What the commands report as one line: what the library raises on purpose, the command line's own
# refusals, files that are not what they should be, and the machine's failures. Everything else
# escaping a command is a bug in xpml (see run).
USER_ERRORS = (
    UsageError,
    XpmlError,
    DownloadError,
    CorruptFileError,
    LockedError,  # another xpml process holds the run folder or the data cache
    OSError,  # FileNotFoundError, IsADirectoryError, a full disk, a read-only file system, ...
    MemoryError,
)

BUG_REPORT = ("this is a bug in xpml, not a mistake in your command: please report it to the xpml maintainers "
              "(an issue on the project's repository) with the command you ran and the traceback below")

# What to do about the OSErrors a run meets most, by errno.
_OS_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere (--out, --data-dir)",
    errno.EROFS: "the file system is read-only: write elsewhere (--out, --data-dir)",
    errno.EACCES: "check its permissions, or use another folder (--out, --data-dir)",
    errno.EDQUOT: "your disk quota is exceeded: free some space or write elsewhere",
    errno.EISDIR: "a directory is where a file should be: name a file, or remove the directory",
    errno.EEXIST: "choose another name",
}


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        what = f" ({text})" if str(exc) else ""
        text = f"out of memory{what}: use smaller sizes (fewer examples, a smaller model or --batch-size)"
    elif isinstance(exc, OSError) and exc.strerror and (exc.filename or exc.errno in _OS_HINTS):
        text = exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename}"
        if exc.filename2 is not None:
            text += f" -> {exc.filename2}"
        hint = _OS_HINTS.get(exc.errno)
        if hint and not isinstance(exc, FileNotFoundError):
            text += f"; {hint}"
    return " ".join(text.split())


def run(main, argv=None) -> int:
    """Call ``main(argv)`` and return its exit status.

    A user error (:data:`USER_ERRORS`) is one line on stderr, status 2; an interruption, status
    130; any other exception is a bug: one line saying so, its traceback, status 1.
    """
    try:
        return main(argv) or 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("XPML_TRACEBACK") == "1":
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("XPML_TRACEBACK") == "1":
            raise
        print(f"error: {BUG_REPORT}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        return 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``error: ... (see --help)``) raised as UsageError."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")

    def exit(self, status=0, message=None):
        # --help and --version print and exit 0; keep that, but never exit non-zero from here.
        if status:
            raise UsageError(message.strip() if message else "invalid arguments")
        if message:
            print(message, file=sys.stderr, end="")
        raise SystemExit(0)


# ---- argparse types for hyperparameters: a bad value is refused before any work starts ----------

def _number(text: str, *, kind=float) -> float:
    try:
        value = kind(text)
    except ValueError:
        kind_name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{kind_name} is needed, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number is needed, got {text!r}")
    return value


def positive(text: str) -> float:
    """A number > 0 (learning rate, standard deviation, ...)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative(text: str) -> float:
    """A number >= 0 (regularization strength, ...)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1] (learning-rate decay per epoch)."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def count(text: str) -> int:
    """An integer >= 1 (iterations, batch size, k, hidden units, trials, ...)."""
    value = _number(text, kind=int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def natural(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, kind=int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every training script takes: backend, seed, output and chattiness."""
    g = parser.add_argument_group("run")
    g.add_argument(
        "--backend", metavar="NAME",
        help="numpy, cupy (or cupy:N for device N), torch (torch:cpu, torch:cuda:N), jax (jax:cpu, jax:gpu:N), "
             "array_api_strict or auto (CuPy when a CUDA GPU works, else NumPy); default: $XPML_BACKEND, else auto",
    )
    g.add_argument("--seed", type=natural, default=0, metavar="N",
                   help="seed of initialisation and minibatches (default: 0); "
                        "the same seed on the same backend gives the same results")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating dtype of data and parameters (default: float32)")
    g.add_argument("--out", metavar="DIR",
                   help="run folder: a new or empty one (default: a new runs/<timestamp>-<what>)")
    g.add_argument("--resume", action="store_true",
                   help="run again in --out although it holds an interrupted run (one marked INCOMPLETE)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out: its results.json and the files it lists are removed first")
    g.add_argument("--json", action="store_true", help="print the results as JSON on stdout instead of a table")
    g.add_argument("--cpu-threads", type=count, metavar="N",
                   help="CPU threads of every backend's pools: BLAS, OpenMP, PyTorch's, XLA's (default: 1 for "
                        "digits and spiral, whose small matrix products only lose from threads; for CIFAR-10 the "
                        "cores this process may use less those already busy)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (they are also off when stderr is not a terminal)")


def cpu_threads(n: int | None):
    """A context limiting every backend's CPU thread pools (BLAS, OpenMP, PyTorch's, XLA's before JAX
    starts) to ``n`` threads; None: the cores this process may use less those already busy."""
    return backend.cpu_threads(n)


def choose_backend(name: str | None) -> backend.Backend:
    """The backend asked for on the command line (None: ``$XPML_BACKEND``, else auto).

    Unknown names raise :class:`~xpml.backend.errors.InputError` and unusable backends
    BackendUnavailableError, both with a message that says why; :func:`run` prints it as one line.
    """
    if name is not None and not name.strip():
        raise UsageError("--backend needs a name: numpy, cupy, array_api_strict or auto")
    return backend.get_backend(name)
