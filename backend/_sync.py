"""Waiting for an asynchronous device, for honest timing."""

from __future__ import annotations

import array_api_compat

from ._select import Backend

__all__ = ["synchronize"]


def synchronize(obj=None, /) -> None:
    """Block until all work queued on the device of ``obj`` (an array or a :class:`Backend`) is done.

    On CPU backends, which compute eagerly, this returns at once. With None, every CUDA device is
    synchronised if CuPy has been imported (nothing happens where it sees no device). Use it before
    reading a clock, never inside a training loop.
    """
    if isinstance(obj, Backend):
        if obj.name == "cupy":
            obj.device.synchronize()
        return
    if obj is None:
        import sys

        cupy = sys.modules.get("cupy")
        if cupy is None:
            return
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:
            # CuPy imported (by a probe, say) on a machine with no usable GPU: no work can be queued.
            return
        for i in range(count):
            cupy.cuda.Device(i).synchronize()
        return
    if array_api_compat.is_cupy_array(obj):
        obj.device.synchronize()
