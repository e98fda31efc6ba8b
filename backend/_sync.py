"""Waiting for an asynchronous device, for honest timing."""

from __future__ import annotations

import sys

import array_api_compat

from ._select import Backend

__all__ = ["synchronize"]


def synchronize(obj=None, /) -> None:
    """Block until all work queued on the device of ``obj`` (an array or a :class:`Backend`) is done.

    On NumPy and array-api-strict, which compute eagerly, this returns at once. CuPy and torch
    wait for their CUDA device; a JAX array waits for itself (``block_until_ready``) and a JAX
    backend for a computation queued after all earlier ones on its device. With None, every CUDA
    device of CuPy and torch and every JAX device is waited for, for the packages already imported
    (nothing happens where they see no device). Use it before reading a clock, never inside a
    training loop.
    """
    if isinstance(obj, Backend):
        if obj.name == "cupy":
            obj.device.synchronize()
        elif obj.name == "torch" and obj.device.type == "cuda":
            sys.modules["torch"].cuda.synchronize(obj.device)
        elif obj.name == "jax":
            _jax_barrier(obj.xp, obj.device)
        return
    if obj is None:
        _synchronize_all()
        return
    if array_api_compat.is_cupy_array(obj):
        obj.device.synchronize()
    elif array_api_compat.is_torch_array(obj) and obj.device.type == "cuda":
        sys.modules["torch"].cuda.synchronize(obj.device)
    elif array_api_compat.is_jax_array(obj):
        obj.block_until_ready()


def _jax_barrier(jnp, device) -> None:
    # JAX has no device-wide barrier; work on one device runs in order, so waiting for a tiny
    # computation queued now waits for everything queued before it.
    (jnp.zeros((), device=device) + 1).block_until_ready()


def _synchronize_all() -> None:
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:
            # CuPy imported (by a probe, say) on a machine with no usable GPU: no work can be queued.
            count = 0
        for i in range(count):
            cupy.cuda.Device(i).synchronize()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):
            torch.cuda.synchronize(i)
    jax = sys.modules.get("jax")
    if jax is not None:
        for device in jax.devices():
            _jax_barrier(sys.modules["jax.numpy"], device)
