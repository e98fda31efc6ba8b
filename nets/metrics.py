"""Classification accuracy, computed on the device: the one accuracy function of the library."""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError

__all__ = ["accuracy"]


def accuracy(y_pred, y, /, *, dtype=None):
    """Fraction of predictions equal to the labels, as a 0-d array on their device.

    Parameters
    ----------
    y_pred, y : arrays (N,) of integer labels
        Predicted and true labels, of one namespace and device.
    dtype : keyword-only
        The dtype of the result; default float64 where the device has it, else float32.

    Returns
    -------
    0-d array
        ``mean(y_pred == y)``. It stays on the device: read it with ``float(acc)`` or, for many
        values at once, ``backend.to_numpy(xp.stack(values))``.

    Notes
    -----
    The hits are counted (an exact integer) and divided by N once: one correctly rounded division,
    so every backend gives the same bits (a floating ``mean`` rounds its partial sums in an order
    that differs between backends).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import nets
    >>> acc = nets.accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
    >>> float(acc)
    0.75
    """
    xp, device = backend.namespace_and_device(y_pred, y)
    if y.ndim != 1 or tuple(y_pred.shape) != tuple(y.shape):
        raise InputError(f"y_pred and y must be 1-d and of one length, got shapes {tuple(y_pred.shape)} "
                         f"and {tuple(y.shape)}")
    if y.shape[0] == 0:
        raise InputError("accuracy of no predictions is undefined: y is empty")
    if dtype is None:
        floats = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
        dtype = floats.get("float64", floats["float32"])
    return xp.astype(xp.count_nonzero(y_pred == y), dtype) / y.shape[0]
