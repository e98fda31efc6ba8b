"""Assertions for tests on every backend: placement first, then values.

A result in the wrong namespace, on the wrong device, in the wrong dtype or shape is the commonest
way array code breaks on a GPU, so these helpers check those before comparing any number.
Tolerances scale with the dtype's machine epsilon unless given.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from ._select import Backend
from ._transfer import to_numpy

__all__ = ["assert_close", "assert_equal", "assert_placement", "default_rtol"]


def default_rtol(dtype) -> float:
    """A relative tolerance of 64 machine epsilons of ``dtype`` (about 8e-6 for float32, 1e-14 for float64).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend.testing import default_rtol
    >>> f"{default_rtol(np.float32):.2e}", default_rtol(np.int64)
    ('7.63e-06', 0.0)
    """
    name = str(dtype).split(".")[-1].rstrip("'>")
    if "float32" in name:
        return 64 * float(np.finfo(np.float32).eps)
    if "float64" in name:
        return 64 * float(np.finfo(np.float64).eps)
    return 0.0


def assert_placement(x, /, *, like=None, backend: Backend | None = None, dtype=None, shape=None) -> None:
    """Assert ``x`` lives in the namespace and on the device of ``like`` (or ``backend``),
    with ``dtype`` (default ``like``'s) and ``shape`` (default ``like``'s) when given.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend.testing import assert_placement
    >>> x = np.zeros((2, 3), dtype=np.float32)
    >>> assert_placement(x + 1, like=x)  # same namespace, device, dtype and shape: passes
    >>> assert_placement(x.astype(np.float64), like=x)
    Traceback (most recent call last):
    ...
    AssertionError: dtype: expected float32, got float64
    """
    if like is not None:
        xp = array_api_compat.array_namespace(like)
        device = array_api_compat.device(like)
        dtype = like.dtype if dtype is None else dtype
        shape = tuple(like.shape) if shape is None else shape
    elif backend is not None:
        xp, device = backend.xp, backend.device
    else:
        raise TypeError("give like= or backend=")
    assert array_api_compat.is_array_api_obj(x), f"expected an array, got {type(x).__name__}"
    x_xp = array_api_compat.array_namespace(x)
    assert x_xp is xp, f"namespace: expected {xp.__name__}, got {x_xp.__name__}"
    x_dev = array_api_compat.device(x)
    assert x_dev == device, f"device: expected {device!r}, got {x_dev!r}"
    if dtype is not None:
        assert x.dtype == dtype, f"dtype: expected {dtype}, got {x.dtype}"
    if shape is not None:
        assert tuple(x.shape) == tuple(shape), f"shape: expected {tuple(shape)}, got {tuple(x.shape)}"


def assert_close(actual, desired, /, *, rtol: float | None = None, atol: float = 0.0, err_msg: str = "") -> None:
    """Assert placement, dtype and shape of ``actual`` equal ``desired``'s, then values within tolerance.

    ``rtol`` defaults to :func:`default_rtol` of the dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend.testing import assert_close
    >>> assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-15]))  # within 64 eps: passes
    >>> assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.1]))
    Traceback (most recent call last):
    ...
    AssertionError:
    Not equal to tolerance rtol=1.42109e-14, atol=0
    ...
    """
    assert_placement(actual, like=desired)
    if rtol is None:
        rtol = default_rtol(desired.dtype)
    np.testing.assert_allclose(to_numpy(actual), to_numpy(desired), rtol=rtol, atol=atol, err_msg=err_msg)


def assert_equal(actual, desired, /, *, err_msg: str = "") -> None:
    """Assert placement, dtype and shape, then exact equality.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend.testing import assert_equal
    >>> assert_equal(np.arange(3), np.arange(3))
    >>> assert_equal(np.arange(3), np.arange(3.0))
    Traceback (most recent call last):
    ...
    AssertionError: dtype: expected float64, got int64
    """
    assert_placement(actual, like=desired)
    np.testing.assert_array_equal(to_numpy(actual), to_numpy(desired), err_msg=err_msg)
