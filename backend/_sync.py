"""Waiting for an asynchronous device, for honest timing."""

from __future__ import annotations

from . import _registry
from ._select import Backend

__all__ = ["synchronize"]


def synchronize(obj=None, /) -> None:
    """Block until all work queued on the device of ``obj`` (an array or a :class:`Backend`) is done.

    On NumPy and array-api-strict, which compute eagerly, this returns at once. CuPy and torch
    wait for their CUDA device; a JAX array waits for itself (``block_until_ready``) and a JAX
    backend for a computation queued after all earlier ones on its device. With None, every CUDA
    device of CuPy and torch and every JAX device is waited for, for the packages already imported
    (nothing happens where they see no device). Use it before reading a clock, never inside a
    training loop. Each backend's way of waiting is its adapter's (``synchronize``,
    ``synchronize_array``, ``synchronize_all``).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> x = np.ones(3) * 2
    >>> backend.synchronize(x)  # NumPy computes eagerly: nothing to wait for
    >>> float(x.sum())
    6.0
    """
    if isinstance(obj, Backend):
        obj.adapter.synchronize(obj.device)
        return
    if obj is None:
        for adapter in _registry.ADAPTERS.values():
            adapter.synchronize_all()
        return
    adapter = _registry.adapter_of_array(obj)
    if adapter is not None:
        adapter.synchronize_array(obj)
