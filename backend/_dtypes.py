"""The dtype policy: float32 unless asked otherwise, and only what the device supports.

Data and parameters default to float32, which every GPU runs at full speed; float64 is for
gradient checks and must be asked for. A device without float64 (some GPUs, array-api-strict's
``no_float64`` device) gets a clear error rather than a silent downcast.
"""

from __future__ import annotations

__all__ = ["float_dtype", "index_dtype", "is_floating"]


def float_dtype(xp, device=None, dtype=None, /):
    """Resolve ``dtype`` (None, ``"float32"``, ``"float64"`` or a dtype of ``xp``) on ``device``.

    None means float32. Raises ValueError for a non-floating dtype and for one the device lacks.
    """
    if dtype is None:
        dtype = "float32"
    if not isinstance(dtype, str):
        for name in ("float32", "float64"):
            if dtype == getattr(xp, name):
                dtype = name
                break
        else:
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    supported = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    if dtype not in supported:
        raise ValueError(
            f"device {device!r} of {xp.__name__} does not support {dtype}; it supports "
            f"{', '.join(supported)}. Use dtype='float32' or another device."
        )
    return supported[dtype]


def index_dtype(xp, device=None, /):
    """The integer dtype the namespace uses for indices on ``device`` (int64 on every backend here)."""
    return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]


def is_floating(xp, x, /) -> bool:
    """Whether ``x`` has a real floating dtype."""
    return xp.isdtype(x.dtype, "real floating")
