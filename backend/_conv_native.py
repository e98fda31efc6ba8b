"""The backends' own convolution and max-pooling kernels, behind one contract.

:mod:`nets.conv_layers` computes convolutions and max pooling with array-API operations only
(strided slices stacked into columns, one matrix product). Where a namespace ships a tuned kernel
for the same arithmetic (PyTorch's ``conv2d`` and its two gradients, JAX's
``lax.conv_general_dilated`` and ``reduce_window``), :func:`native_conv2d` returns it here, so
what differs between backends stays in the backend package. Each kernel is tested equal to the
portable path to float rounding.

Every function takes and returns arrays of its own namespace, NCHW inputs and OIHW filters,
square stride, padding and dilation given as Python ints, and never checks its arguments: the
layers have done that.

- ``conv_forward(x, w, b, stride, pad, dilation) -> out``
- ``conv_backward(dout, x, w, stride, pad, dilation) -> (dx, dw, db)``
- ``pool_forward(x, pool_height, pool_width, stride) -> (out, aux)``
- ``pool_backward(dout, x, aux, pool_height, pool_width, stride) -> dx``

CuPy has none here yet: its portable path runs on cuBLAS through the matrix product.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["NativeConv2d", "native_conv2d"]


class NativeConv2d(NamedTuple):
    """A backend's convolution and max-pooling kernels (see the module docstring for signatures)."""

    name: str
    conv_forward: Callable
    conv_backward: Callable
    pool_forward: Callable
    pool_backward: Callable


def _torch() -> NativeConv2d:
    import torch
    import torch.nn.functional as F

    def conv_forward(x, w, b, stride, pad, dilation):
        return F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dilation)

    def conv_backward(dout, x, w, stride, pad, dilation):
        # The layers accept only sizes where (H + 2P - F) is a multiple of S, so the input size
        # is determined by the output size and conv2d_input needs no output padding.
        dx = torch.nn.grad.conv2d_input(tuple(x.shape), w, dout, stride=stride, padding=pad, dilation=dilation)
        dw = torch.nn.grad.conv2d_weight(x, tuple(w.shape), dout, stride=stride, padding=pad, dilation=dilation)
        return dx, dw, torch.sum(dout, dim=(0, 2, 3))

    def pool_forward(x, ph, pw, stride):
        return F.max_pool2d(x, (ph, pw), stride=stride, return_indices=True)

    def pool_backward(dout, x, indices, ph, pw, stride):
        return torch.ops.aten.max_pool2d_with_indices_backward(
            dout, x, [ph, pw], [stride, stride], [0, 0], [1, 1], False, indices)

    return NativeConv2d("torch", conv_forward, conv_backward, pool_forward, pool_backward)


def _jax() -> NativeConv2d:
    import jax
    import jax.numpy as jnp
    from jax import lax

    def conv(x, w, stride, pad, dilation):
        # HIGHEST: full float32 products on GPUs too (the default may use TF32 there).
        return lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                        rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                        precision=lax.Precision.HIGHEST)

    @functools.partial(jax.jit, static_argnums=(3, 4, 5))
    def conv_forward(x, w, b, stride, pad, dilation):
        return conv(x, w, stride, pad, dilation) + b[None, :, None, None]

    @functools.partial(jax.jit, static_argnums=(3, 4, 5))
    def conv_backward(dout, x, w, stride, pad, dilation):
        _, vjp = jax.vjp(lambda x, w: conv(x, w, stride, pad, dilation), x, w)
        dx, dw = vjp(dout)
        return dx, dw, jnp.sum(dout, axis=(0, 2, 3))

    def pool(x, ph, pw, stride):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, ph, pw),
                                 (1, 1, stride, stride), "VALID")

    @functools.partial(jax.jit, static_argnums=(1, 2, 3))
    def pool_forward(x, ph, pw, stride):
        return pool(x, ph, pw, stride), None

    @functools.partial(jax.jit, static_argnums=(3, 4, 5))
    def pool_backward(dout, x, aux, ph, pw, stride):
        _, vjp = jax.vjp(lambda x: pool(x, ph, pw, stride), x)
        return vjp(dout)[0]

    return NativeConv2d("jax", conv_forward, conv_backward, pool_forward, pool_backward)


_FACTORIES = {"torch": _torch, "jax": _jax}


@functools.cache
def native_conv2d(backend_name: str, /) -> NativeConv2d | None:
    """The native convolution and pooling kernels of a backend (``"torch"``, ``"jax"``, ...), or
    None where it has none (NumPy, array-api-strict, CuPy): the layers then use their portable path."""
    factory = _FACTORIES.get(backend_name)
    return None if factory is None else factory()
