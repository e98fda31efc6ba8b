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
    """Base of every exception xpml raises on purpose; its message says what to do.

    Examples
    --------
    >>> from xpml.backend import errors
    >>> [issubclass(cls, errors.XpmlError) for cls in (errors.InputError, errors.InputTypeError,
    ...                                                  errors.BackendUnavailableError)]
    [True, True, True]
    """


class InputError(XpmlError, ValueError):
    """A bad value given to xpml: a wrong shape, a value out of range, NaN, an unknown name.

    Examples
    --------
    >>> from xpml.backend import errors, validation
    >>> try:
    ...     validation.check_positive(-1, name="k")
    ... except ValueError as exc:  # an InputError is also a ValueError
    ...     print(type(exc).__name__)
    InputError
    """


class InputTypeError(XpmlError, TypeError):
    """A value of the wrong type given to xpml: an integer array where floats are needed, a list.

    Examples
    --------
    >>> from xpml.backend import errors
    >>> issubclass(errors.InputTypeError, TypeError)
    True
    """


class BackendMismatchError(InputError):
    """Arrays from two namespaces, or from two devices, were passed to one call.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xs
    >>> from xpml import backend
    >>> try:
    ...     backend.namespace_and_device(np.zeros(2), xs.zeros(2))
    ... except backend.BackendMismatchError as exc:
    ...     isinstance(exc, ValueError)
    True
    """


class BackendUnavailableError(XpmlError, RuntimeError):
    """The backend asked for is not installed, has no device, or fails to run a kernel.

    Examples
    --------
    >>> from xpml.backend import errors
    >>> issubclass(errors.BackendUnavailableError, RuntimeError)
    True
    """
