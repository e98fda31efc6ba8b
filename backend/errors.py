"""The exceptions xpml raises on purpose, so a caller can tell a mistake in its input from a bug.

Every error xpml raises about what it was given derives from :class:`XpmlError`, and also from
the built-in class that describes it, so handlers written for the built-ins keep working::

    XpmlError                                   anything xpml raises on purpose
    +-- InputError (ValueError)                 a bad value: shape, range, NaN, an unknown name
    |   +-- BackendMismatchError                arrays from two namespaces or devices in one call
    +-- InputTypeError (TypeError)              a value of the wrong type (an int dtype, a list)
    +-- BackendUnavailableError (RuntimeError)  a backend not installed, without a device, broken

Their messages are written for people: what was wrong and how to fix it, on one line. The ``xpml``
command prints them as one ``error:`` line; any other exception escaping the library is a bug in
xpml, and the command shows its traceback.

Examples
--------
>>> import numpy as np
>>> from xpml.backend import errors, validation
>>> try:
...     validation.check_data(np.zeros((2, 3), dtype=np.int64))
... except errors.InputTypeError as exc:
...     isinstance(exc, TypeError)
True
"""

from __future__ import annotations

__all__ = [
    "BackendMismatchError",
    "BackendUnavailableError",
    "InputError",
    "InputTypeError",
    "XpmlError",
]


class XpmlError(Exception):
    """Base of every exception xpml raises on purpose; its message says what to do."""


class InputError(XpmlError, ValueError):
    """A bad value given to xpml: a wrong shape, a value out of range, NaN, an unknown name."""


class InputTypeError(XpmlError, TypeError):
    """A value of the wrong type given to xpml: an integer array where floats are needed, a list."""


class BackendMismatchError(InputError):
    """Arrays from two namespaces, or from two devices, were passed to one call."""


class BackendUnavailableError(XpmlError, RuntimeError):
    """The backend asked for is not installed, has no device, or fails to run a kernel."""
