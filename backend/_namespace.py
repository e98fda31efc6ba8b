"""Namespace and device of a function's inputs.

Every public xpml function finds the array namespace (NumPy, CuPy, array-api-strict, ...) and
the device from the arrays it is given, so outputs land where the inputs live. Inputs from two
namespaces or two devices are refused: moving data is the caller's decision, made explicitly with
:func:`backend.to_backend`, never a silent copy.
"""

from __future__ import annotations

import array_api_compat

from .errors import BackendMismatchError, InputTypeError

__all__ = [
    "BackendMismatchError",
    "get_namespace",
    "get_device",
    "namespace_and_device",
]




def _arrays(arrays):
    # None and Python scalars carry no namespace; they combine with any array.
    return [a for a in arrays if a is not None and not isinstance(a, (bool, int, float, complex))]


def _namespace_name(xp) -> str:
    """The backend name of a namespace: ``numpy``, ``cupy``, ``array_api_strict``, ``torch``, ``jax``."""
    return xp.__name__.removeprefix("array_api_compat.").removesuffix(".numpy")


def namespace_and_device(*arrays):
    """Return ``(xp, device)`` shared by all ``arrays``.

    ``xp`` is the array namespace of the inputs (``array_api_compat.numpy`` for NumPy arrays,
    ``array_api_compat.cupy`` for CuPy, ``array_api_compat.torch`` for PyTorch, ``jax.numpy`` for
    JAX, the module itself for array-api-strict) and ``device`` the device they live on. None and
    Python scalars are ignored.

    Raises
    ------
    BackendMismatchError
        If two inputs come from different namespaces or devices. The message names both and says
        how to move data.
    TypeError
        If no array is given, an input is not an array of any supported namespace, or it is a
        torch tensor that requires grad.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xs
    >>> from xpml import backend
    >>> xp, device = backend.namespace_and_device(np.zeros(2), np.ones(3))
    >>> xp.__name__, device
    ('array_api_compat.numpy', 'cpu')
    >>> backend.namespace_and_device(np.zeros(2), xs.zeros(2))
    Traceback (most recent call last):
    ...
    xpml.backend.errors.BackendMismatchError: arrays from two namespaces: 'numpy' and 'array_api_strict'. ...
    """
    arrays = _arrays(arrays)
    if not arrays:
        raise InputTypeError("namespace_and_device() needs at least one array argument")
    xp = device = None
    for i, a in enumerate(arrays):
        try:
            a_xp = array_api_compat.array_namespace(a)
        except TypeError as exc:
            raise InputTypeError(
                f"argument {i} has type {type(a).__name__}, which is not an array of a supported "
                "namespace (numpy, cupy, array_api_strict, torch, jax)"
            ) from exc
        if getattr(a, "requires_grad", False) is True:
            raise InputTypeError(
                f"argument {i} is a torch tensor with requires_grad=True; xpml computes its gradients "
                "itself and never detaches a tensor behind your back: pass x.detach() (or build the "
                "data under torch.no_grad())"
            )
        a_dev = array_api_compat.device(a)
        if xp is None:
            xp, device = a_xp, a_dev
            continue
        if a_xp is not xp:
            raise BackendMismatchError(
                f"arrays from two namespaces: {_namespace_name(xp)!r} and "
                f"{_namespace_name(a_xp)!r}. xpml never converts silently; move one of them "
                "first, for example with backend.to_backend(x, 'numpy') or "
                "backend.to_backend(x, backend.backend_of(other))."
            )
        if a_dev != device:
            raise BackendMismatchError(
                f"arrays on two devices of {_namespace_name(xp)!r}: {device!r} and {a_dev!r}. "
                "Move one of them first, for example with backend.to_backend(x, "
                "backend.backend_of(other))."
            )
    return xp, device


def get_namespace(*arrays):
    """Return the array-api-compat namespace shared by ``arrays`` (see :func:`namespace_and_device`).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.get_namespace(np.zeros(2)).__name__
    'array_api_compat.numpy'
    """
    return namespace_and_device(*arrays)[0]


def get_device(*arrays):
    """Return the device shared by ``arrays`` (see :func:`namespace_and_device`).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.get_device(np.zeros(2))
    'cpu'
    """
    return namespace_and_device(*arrays)[1]
