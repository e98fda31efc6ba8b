"""xpml: the CS231n classifiers and their training machinery, written once for every array backend.

- :mod:`xpml.backend`: the array-namespace shim (namespace and device of inputs, backends by name,
  seeded draws identical on every backend, safe file I/O); its :mod:`~xpml.backend.errors` holds
  the exceptions xpml raises on purpose, also importable from here (:class:`XpmlError`,
  :class:`InputError`, :class:`InputTypeError`).
- :mod:`xpml.classifiers`: k-nearest neighbours, the linear SVM and softmax of assignment 1.
- :mod:`xpml.nets`: the nets and the training machinery of the course notes.
- :mod:`xpml.cli`: the ``xpml`` command (``train``, ``search``, ``download``, ``backends``).

The repository keeps ``backend/``, ``classifiers/`` and ``nets/`` at its top level; the install
(a wheel, or ``pip install -e .`` from a checkout) maps them into this package through
setuptools' ``package-dir``, so ``import xpml.backend`` works the same both ways.
"""

from __future__ import annotations

__version__ = "0.2.0"

_ERRORS = ("XpmlError", "InputError", "InputTypeError", "BackendMismatchError", "BackendUnavailableError")

__all__ = ["__version__", *_ERRORS]


def __getattr__(name: str):
    # The error classes on demand: `import xpml` alone stays light (no NumPy, no backend probe).
    if name in _ERRORS:
        from .backend import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'xpml' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_ERRORS])
