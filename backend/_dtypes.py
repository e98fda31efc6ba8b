"""The dtype policy: float32 unless asked otherwise, and only what the device supports.

Data and parameters default to float32, which every GPU runs at full speed; float64 is for
gradient checks and must be asked for. A device without float64 (some GPUs, array-api-strict's
``no_float64`` device, JAX without 64-bit types) gets a clear error rather than a silent downcast.
"""

from __future__ import annotations

from .errors import InputError

__all__ = ["float_dtype", "index_dtype", "is_floating"]

_FLOATS = ("float32", "float64")


def _dtype_name(xp, dtype) -> str | None:
    """``"float32"``/``"float64"`` for a name or a dtype of any library (NumPy's with a torch
    namespace, say), else None."""
    import numpy as np

    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        name = np.dtype(dtype).name
        return name if name in _FLOATS else None
    for name in _FLOATS:
        if dtype == getattr(xp, name):
            return name
    try:
        name = np.dtype(dtype).name  # JAX's scalar types
    except TypeError:
        name = str(dtype).rsplit(".", 1)[-1]  # torch.float32 and the like
    return name if name in _FLOATS else None


def float_dtype(xp, device=None, dtype=None, /):
    """Resolve ``dtype`` (None, ``"float32"``, ``"float64"`` or a float dtype of ``xp`` or NumPy)
    on ``device``.

    None means float32. Raises ValueError for a non-floating dtype and for one the device lacks.

    Examples
    --------
    >>> from xpml import backend
    >>> xp = backend.get_backend("numpy").xp
    >>> backend.float_dtype(xp), backend.float_dtype(xp, "cpu", "float64")
    (dtype('float32'), dtype('float64'))
    >>> backend.float_dtype(xp, "cpu", "int64")
    Traceback (most recent call last):
    ...
    xpml.backend.errors.InputError: ...
    """
    if dtype is None:
        dtype = "float32"
    name = _dtype_name(xp, dtype)
    if name is None:
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    if name not in _FLOATS:
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    supported = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    if name not in supported:
        from . import _registry

        adapter = _registry.adapter_of_namespace(xp)
        hint = adapter.float64_hint() if adapter is not None else "Use dtype='float32' or another device."
        raise InputError(
            f"device {device!r} of {xp.__name__} does not support {name}; it supports "
            f"{', '.join(supported)}. {hint}"
        )
    return supported[name]


def index_dtype(xp, device=None, /):
    """The integer dtype the namespace uses for indices on ``device``: int64, or int32 for JAX
    without 64-bit types.

    Examples
    --------
    >>> from xpml import backend
    >>> backend.index_dtype(backend.get_backend("numpy").xp)
    dtype('int64')
    """
    return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]


def is_floating(xp, x, /) -> bool:
    """Whether ``x`` has a real floating dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> xp = backend.get_namespace(np.zeros(1))
    >>> backend.is_floating(xp, np.zeros(2)), backend.is_floating(xp, np.arange(2))
    (True, False)
    """
    return xp.isdtype(x.dtype, "real floating")
