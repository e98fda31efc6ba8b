"""Explicit moves between backends and devices, for the edges of a program.

Loading data, saving, and printing metrics are the only places data crosses between the host and
a device; these two functions are how it crosses. The math never calls them.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from . import _registry
from ._select import Backend, as_backend, get_backend

__all__ = ["to_backend", "to_numpy"]


def to_numpy(x, /) -> np.ndarray:
    """Copy ``x`` to the host as a NumPy array (a NumPy array is returned as it is).

    Accepts arrays of any supported backend, NumPy scalars, lists and Python numbers. Arrays that
    already live in host memory (a NumPy array, a torch tensor on the CPU, a JAX array on the CPU)
    may come back sharing that memory, possibly read-only: copy the result (``numpy.array(...)``)
    before writing into it.

    Raises
    ------
    TypeError
        For a torch tensor with ``requires_grad=True``: detach it first (``x.detach()``).

    Examples
    --------
    >>> from xpml import backend
    >>> x = backend.get_backend("array_api_strict").asarray([1.0, 2.0])
    >>> backend.to_numpy(x)
    array([1., 2.])
    """
    if isinstance(x, np.ndarray):
        return x
    # Lists and Python numbers have no namespace; only ask the namespace of arrays.
    if array_api_compat.is_array_api_obj(x):
        adapter = _registry.adapter_of_array(x)
        if adapter is not None:
            return adapter.to_numpy(x)
        if hasattr(x, "__dlpack__"):
            return np.from_dlpack(x)
    return np.asarray(x)


def to_backend(x, backend: Backend | str | None = None, /, *, device=None):
    """Move ``x`` to ``backend`` (a :class:`Backend`, a name such as ``"cupy"`` or
    ``"torch:cuda:0"``, or a namespace; None reads ``$XPML_BACKEND`` and falls back to ``auto``).

    Returns ``x`` itself when it already lives there. Data goes through the host, so this is for
    the edges of a program, never inside a loop. The dtype is kept: float64 data for JAX without
    64-bit types is an error saying how to enable them, never a silent rounding to float32.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> x = backend.to_backend(np.arange(3.0), "array_api_strict")
    >>> backend.backend_of(x).name, x.dtype
    ('array_api_strict', array_api_strict.float64)
    """
    if backend is None:
        backend = get_backend(None, device=device)  # $XPML_BACKEND, else auto
    else:
        backend = as_backend(backend, device=device)
    if array_api_compat.is_array_api_obj(x):
        xp = array_api_compat.array_namespace(x)
        if xp is backend.xp and array_api_compat.device(x) == backend.device:
            return x
    return backend.asarray(to_numpy(x))
