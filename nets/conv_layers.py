"""Convolution, max pooling and spatial normalization, with the names and conventions of CS231n's
assignment 2 (``layers.py``, ``fast_layers.py``, ``layer_utils.py``).

Images are ``x`` of shape (N, C, H, W), filters ``w`` of shape (F, C, HH, WW); data are positional,
every ``*_forward`` returns ``(out, cache)`` and the matching ``*_backward`` takes ``(dout, cache)``.

- ``conv_forward_naive`` / ``conv_backward_naive``: one loop over the output positions, the
  course's reference.
- ``conv_forward_fast`` / ``conv_backward_fast``: the namespace's own convolution where it has one
  (PyTorch, JAX: :meth:`backend.Adapter.native_conv2d`), else a portable path: the input
  windows gathered by HH x WW strided slices into a column matrix (im2col) and one matrix
  product, in chunks of the batch so the column matrix never exceeds a memory budget.
- ``max_pool_forward_*`` / ``max_pool_backward_*``: the same two kinds for max pooling.
- ``spatial_batchnorm_*``: batch normalization of each channel over (N, H, W), the layer of
  :func:`nets.layers.batchnorm_forward` on the (N*H*W, C) view; ``spatial_groupnorm_*``: layer
  normalization of each group of C/G channels of each example, :func:`nets.layers.layernorm_forward`
  on the (N*G, C/G*H*W) view.
- ``conv_relu_*`` and ``conv_relu_pool_*``: the course's sandwich layers.

Sizes are checked, never floored: an output size ``(H - F + 2P) / S + 1`` that is not an
integer, a window larger than the padded input, a zero stride, a dilation below 1 are each a
``ValueError`` that gives the sizes (:func:`conv_output_size`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import array_api_extra as xpx

from .. import backend
from ..backend._arith import writeable
from ..backend.errors import InputError, InputTypeError
from .layers import (
    batchnorm_backward,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
)

__all__ = [
    "COLUMN_BUDGET",
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
    "conv_output_size",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
]

# Bytes the portable convolution's column matrix may take at once; larger batches run in chunks.
COLUMN_BUDGET = 128 * 2**20


# ---- sizes -----------------------------------------------------------------------------------------

def _int_param(params, key: str, default, *, name: str, low: int) -> int:
    if not isinstance(params, dict):
        raise InputTypeError(f"{name} must be a dict, got {type(params).__name__}")
    value = params.get(key, default)
    if value is None:
        raise InputError(f"{name}[{key!r}] is required")
    if isinstance(value, bool) or not isinstance(value, int) and not (hasattr(value, "__index__")):
        raise InputTypeError(f"{name}[{key!r}] must be an integer, got {value!r}")
    value = int(value)
    if value < low:
        what = {0: "non-negative", 1: "at least 1"}[low]
        raise InputError(f"{name}[{key!r}] must be {what}, got {value}")
    return value


def conv_output_size(size: int, field: int, /, *, stride: int = 1, pad: int = 0, dilation: int = 1,
                     name: str = "layer", axis: str = "width") -> int:
    """``(size - F + 2P) / S + 1``, the output size of a convolution or pooling window along one axis.

    ``F = dilation * (field - 1) + 1`` is the extent of a (dilated) window of ``field`` taps.

    Raises
    ------
    ValueError
        If the window is larger than the padded input, or the windows do not tile it (the
        division leaves a remainder): the message names ``name`` and gives every size.

    Examples
    --------
    >>> from xpml.nets.conv_layers import conv_output_size
    >>> conv_output_size(32, 3, pad=1), conv_output_size(32, 2, stride=2), conv_output_size(7, 3, dilation=2)
    (32, 16, 3)
    >>> conv_output_size(6, 3, stride=2)
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: layer: (W - F + 2P) / S + 1 = (6 - 3 + 2 * 0) / 2 + 1 = 2.5 is not an integer ...
    """
    extent = dilation * (field - 1) + 1
    padded = size + 2 * pad
    if stride < 1:
        raise InputError(f"{name}: stride must be at least 1, got {stride}")
    if dilation < 1:
        raise InputError(f"{name}: dilation must be at least 1, got {dilation}")
    if extent > padded:
        raise InputError(f"{name}: a window of {extent} (field {field}, dilation {dilation}) is larger than the "
                         f"padded input {axis} {padded} ({size} + 2 * pad {pad})")
    if (padded - extent) % stride:
        raise InputError(f"{name}: (W - F + 2P) / S + 1 = ({size} - {extent} + 2 * {pad}) / {stride} + 1 = "
                         f"{(padded - extent) / stride + 1:g} is not an integer along the {axis}; change the "
                         "padding, the stride or the input size")
    return (padded - extent) // stride + 1


class _ConvGeometry(NamedTuple):
    stride: int
    pad: int
    dilation: int
    out_h: int
    out_w: int


def _conv_geometry(x, w, b, conv_param, name: str) -> _ConvGeometry:
    if x.ndim != 4:
        raise InputError(f"{name}: x must have shape (N, C, H, W), got {tuple(x.shape)}")
    if w.ndim != 4:
        raise InputError(f"{name}: w must have shape (F, C, HH, WW), got {tuple(w.shape)}")
    if w.shape[1] != x.shape[1]:
        raise InputError(f"{name}: w has {w.shape[1]} input channels, x has {x.shape[1]} "
                         f"(x {tuple(x.shape)}, w {tuple(w.shape)})")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise InputError(f"{name}: b must have shape ({w.shape[0]},), one bias per filter; got {tuple(b.shape)}")
    stride = _int_param(conv_param, "stride", 1, name="conv_param", low=1)
    pad = _int_param(conv_param, "pad", 0, name="conv_param", low=0)
    dilation = _int_param(conv_param, "dilation", 1, name="conv_param", low=1)
    geo = dict(stride=stride, pad=pad, dilation=dilation, name=name)
    out_h = conv_output_size(x.shape[2], w.shape[2], axis="height", **geo)
    out_w = conv_output_size(x.shape[3], w.shape[3], axis="width", **geo)
    return _ConvGeometry(stride, pad, dilation, out_h, out_w)


class _PoolGeometry(NamedTuple):
    pool_height: int
    pool_width: int
    stride: int
    out_h: int
    out_w: int


def _pool_geometry(x, pool_param, name: str) -> _PoolGeometry:
    if x.ndim != 4:
        raise InputError(f"{name}: x must have shape (N, C, H, W), got {tuple(x.shape)}")
    ph = _int_param(pool_param, "pool_height", None, name="pool_param", low=1)
    pw = _int_param(pool_param, "pool_width", None, name="pool_param", low=1)
    stride = _int_param(pool_param, "stride", None, name="pool_param", low=1)
    out_h = conv_output_size(x.shape[2], ph, stride=stride, name=name, axis="height")
    out_w = conv_output_size(x.shape[3], pw, stride=stride, name=name, axis="width")
    return _PoolGeometry(ph, pw, stride, out_h, out_w)


def _window(start: int, count: int, stride: int) -> slice:
    """Rows ``start, start + stride, ..., start + (count - 1) * stride``."""
    return slice(start, start + stride * (count - 1) + 1, stride)


def _spread(xp, device, v, axis: int, window: slice, length: int):
    """``v`` (size n along ``axis``) placed at rows ``window`` of a zero array of ``length`` rows there."""
    n, step = v.shape[axis], window.step or 1
    if step > 1:
        # Each row followed by step - 1 zero rows, then the trailing zeros cut: rows start + i step.
        zeros = xp.zeros(v.shape, dtype=v.dtype, device=device)
        shape = list(v.shape)
        shape[axis] = n * step
        v = xp.reshape(xp.stack([v] + [zeros] * (step - 1), axis=axis + 1), tuple(shape))
        keep = [slice(None)] * v.ndim
        keep[axis] = slice(0, (n - 1) * step + 1)
        v = v[tuple(keep)]
    before, after = window.start, length - window.start - v.shape[axis]
    pads = [(0, 0)] * v.ndim
    pads[axis] = (before, after)
    return xpx.pad(v, tuple(pads), xp=xp) if before or after else v


def _add_at(xp, device, a, rows: slice, cols: slice, value):
    """``a[:, :, rows, cols] += value``: in place where ``a`` is writeable, else as a new array
    (JAX, read-only NumPy), adding the same numbers in the same order."""
    if writeable(a):
        return xpx.at(a)[:, :, rows, cols].add(value)
    return a + _spread(xp, device, _spread(xp, device, value, 2, rows, a.shape[2]), 3, cols, a.shape[3])


def _pad(xp, x, pad: int):
    return x if pad == 0 else xpx.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), xp=xp)


def _native(x):
    return backend.backend_of(x).adapter.native_conv2d()


# ---- convolution: naive ----------------------------------------------------------------------------

def conv_forward_naive(x, w, b, conv_param, /):
    """Convolutional layer, one output position at a time (the course's reference implementation).

    Parameters
    ----------
    x : array (N, C, H, W)
        Input images.
    w : array (F, C, HH, WW)
        Filters.
    b : array (F,)
        Biases.
    conv_param : dict
        ``stride`` (default 1), ``pad`` (zero padding on each side, default 0), ``dilation`` (gap
        between filter taps, default 1: a plain convolution).

    Returns
    -------
    out : array (N, F, H', W')
        ``H' = (H + 2 pad - (dilation (HH - 1) + 1)) / stride + 1``, and likewise W'.
    cache : for :func:`conv_backward_naive`

    Notes
    -----
    ``out[n, f, i, j] = b[f] + sum_{c, k, l} w[f, c, k, l] xpad[n, c, i S + k d, j S + l d]``
    with ``xpad`` the zero-padded input (a cross-correlation, as in every deep learning library).

    Examples
    --------
    A 2x2 filter of ones with stride 2 sums each 2x2 block (plus the bias 0.5):

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, cache = conv_layers.conv_forward_naive(x, np.ones((1, 1, 2, 2)), np.array([0.5]), {"stride": 2})
    >>> out
    array([[[[10.5, 18.5],
             [42.5, 50.5]]]])
    """
    xp, _ = backend.namespace_and_device(x, w, b)
    g = _conv_geometry(x, w, b, conv_param, "conv_forward_naive")
    HH, WW = w.shape[2], w.shape[3]
    xpad = _pad(xp, x, g.pad)
    rows = []
    for i in range(g.out_h):
        cols = []
        for j in range(g.out_w):
            win = xpad[:, :, _window(i * g.stride, HH, g.dilation), _window(j * g.stride, WW, g.dilation)]
            cols.append(xp.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3])) + b)
        rows.append(xp.stack(cols, axis=-1))
    return xp.stack(rows, axis=-2), (x, w, b, conv_param)


def conv_backward_naive(dout, cache, /):
    """Backward pass of :func:`conv_forward_naive`: ``(dx, dw, db)`` shaped like x, w, b.

    Notes
    -----
    Each output position sends ``dout[n, f, i, j] w[f]`` back to the window of x it read, and
    ``dout[n, f, i, j]`` times that window to ``dw[f]``; ``db[f] = sum_{n, i, j} dout[n, f, i, j]``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, cache = conv_layers.conv_forward_naive(x, np.ones((1, 1, 2, 2)), np.array([0.5]), {"stride": 2})
    >>> dx, dw, db = conv_layers.conv_backward_naive(np.ones_like(out), cache)
    >>> dx.shape, dw, db
    ((1, 1, 4, 4), array([[[[20., 24.],
             [36., 40.]]]]), array([4.]))
    """
    x, w, b, conv_param = cache
    xp, device = backend.namespace_and_device(dout, x, w)
    g = _conv_geometry(x, w, b, conv_param, "conv_backward_naive")
    _check_dout(dout, (x.shape[0], w.shape[0], g.out_h, g.out_w), "conv_backward_naive")
    HH, WW = w.shape[2], w.shape[3]
    xpad = _pad(xp, x, g.pad)
    dxpad = xp.zeros(xpad.shape, dtype=x.dtype, device=device)
    dw = xp.zeros(w.shape, dtype=w.dtype, device=device)
    for i in range(g.out_h):
        for j in range(g.out_w):
            rows, cols = _window(i * g.stride, HH, g.dilation), _window(j * g.stride, WW, g.dilation)
            d = dout[:, :, i, j]
            dw = dw + xp.tensordot(d, xpad[:, :, rows, cols], axes=([0], [0]))
            dxpad = _add_at(xp, device, dxpad, rows, cols, xp.tensordot(d, w, axes=([1], [0])))
    H, W = x.shape[2], x.shape[3]
    dx = dxpad[:, :, g.pad:g.pad + H, g.pad:g.pad + W]
    return dx, dw, xp.sum(dout, axis=(0, 2, 3))


def _check_dout(dout, shape, name: str) -> None:
    if tuple(dout.shape) != tuple(shape):
        raise InputError(f"{name}: dout must have the shape of the forward output {tuple(shape)}, "
                         f"got {tuple(dout.shape)}")


# ---- convolution: fast -----------------------------------------------------------------------------

class _ConvCache(NamedTuple):
    """What :func:`conv_backward_fast` needs; ``chunks`` is how many batch chunks the portable path
    used (0 on a native kernel)."""

    x: object
    w: object
    b: object
    conv_param: dict
    geometry: _ConvGeometry
    native: object
    rows_per_chunk: int
    chunks: int


def _im2col(xp, x, HH: int, WW: int, g: _ConvGeometry):
    """Columns (n, C*HH*WW, H'*W') of the input windows, one strided slice per filter tap."""
    n, C = x.shape[0], x.shape[1]
    xpad = _pad(xp, x, g.pad)
    taps = [xpad[:, :, _window(k * g.dilation, g.out_h, g.stride), _window(m * g.dilation, g.out_w, g.stride)]
            for k in range(HH) for m in range(WW)]
    # (n, C, HH*WW, H', W'): the channel-major order of w.reshape(F, C*HH*WW).
    return xp.reshape(xp.stack(taps, axis=2), (n, C * HH * WW, g.out_h * g.out_w))


def _col2im(xp, device, dcols, x_shape, HH: int, WW: int, g: _ConvGeometry):
    """The adjoint of :func:`_im2col`: every column entry added back to the input pixel it came from."""
    n, C, H, W = x_shape
    dcols = xp.reshape(dcols, (n, C, HH, WW, g.out_h, g.out_w))
    dxpad = xp.zeros((n, C, H + 2 * g.pad, W + 2 * g.pad), dtype=dcols.dtype, device=device)
    for k in range(HH):
        for m in range(WW):
            rows, cols = _window(k * g.dilation, g.out_h, g.stride), _window(m * g.dilation, g.out_w, g.stride)
            dxpad = _add_at(xp, device, dxpad, rows, cols, dcols[:, :, k, m, :, :])
    return dxpad[:, :, g.pad:g.pad + H, g.pad:g.pad + W]


def _rows_per_chunk(x, w, g: _ConvGeometry, budget: int) -> int:
    # Per example: the stacked taps and their reshaped copy (where reshape copies).
    per_example = 2 * math.prod(w.shape[1:]) * g.out_h * g.out_w * _itemsize(x)
    return max(1, min(x.shape[0], budget // max(per_example, 1)))


def _chunks(n: int, rows: int):
    # Stops within bounds: the array API leaves slices past the end unspecified.
    return [slice(start, min(start + rows, n)) for start in range(0, n, rows)]


def _itemsize(x) -> int:
    return 8 if "64" in str(x.dtype) else 4


def _budget(memory_budget) -> int:
    if memory_budget is None:
        return COLUMN_BUDGET
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise InputError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
    return memory_budget


def conv_forward_fast(x, w, b, conv_param, /, *, native: bool = True, memory_budget: int | None = None):
    """Convolutional layer: :func:`conv_forward_naive`'s contract, computed fast.

    Parameters
    ----------
    x, w, b, conv_param
        As :func:`conv_forward_naive`.
    native : bool, keyword-only
        Use the namespace's own convolution where it has one (PyTorch, JAX); False forces the
        portable path (to compare the two).
    memory_budget : int, keyword-only
        Bytes the portable path's column matrix may take at once (default :data:`COLUMN_BUDGET`);
        the batch is processed in as many chunks as that needs.

    Returns
    -------
    out : array (N, F, H', W')
    cache : for :func:`conv_backward_fast` (its ``chunks`` field says how many batch chunks ran)

    Notes
    -----
    The portable path writes the windows as columns, ``cols`` (C HH WW, H' W') per example, and
    computes ``out = w.reshape(F, C HH WW) @ cols + b``: HH WW strided slices and one matrix
    product per chunk instead of H' W' small products.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w, b = np.ones((1, 1, 2, 2)), np.array([0.5])
    >>> out, _ = conv_layers.conv_forward_fast(x, w, b, {"stride": 2})
    >>> out
    array([[[[10.5, 18.5],
             [42.5, 50.5]]]])
    >>> bool(np.array_equal(out, conv_layers.conv_forward_naive(x, w, b, {"stride": 2})[0]))
    True
    """
    xp, device = backend.namespace_and_device(x, w, b)
    g = _conv_geometry(x, w, b, conv_param, "conv_forward_fast")
    budget = _budget(memory_budget)
    kernels = _native(x) if native else None
    if kernels is not None:
        out = kernels.conv_forward(x, w, b, g.stride, g.pad, g.dilation)
        return out, _ConvCache(x, w, b, conv_param, g, kernels, x.shape[0], 0)
    F, HH, WW = w.shape[0], w.shape[2], w.shape[3]
    w2 = xp.reshape(w, (F, math.prod(w.shape[1:])))
    rows = _rows_per_chunk(x, w, g, budget)
    outs = [w2 @ _im2col(xp, x[chunk, ...], HH, WW, g) for chunk in _chunks(x.shape[0], rows)]
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    out = xp.reshape(out, (x.shape[0], F, g.out_h, g.out_w)) + xp.reshape(b, (1, F, 1, 1))
    return out, _ConvCache(x, w, b, conv_param, g, None, rows, len(outs))


def conv_backward_fast(dout, cache, /):
    """Backward pass of :func:`conv_forward_fast`: ``(dx, dw, db)``, by the same kernel as the forward pass.

    Notes
    -----
    Portable path, per chunk: ``dw += sum_n dout_n cols_n^T``, ``dcols_n = w^T dout_n`` and
    ``dx = col2im(dcols)``, which adds each column entry back to the pixel it was read from. The
    columns are rebuilt from x rather than kept from the forward pass, so the memory stays bounded.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, cache = conv_layers.conv_forward_fast(x, np.ones((1, 1, 2, 2)), np.array([0.5]), {"stride": 2})
    >>> dx, dw, db = conv_layers.conv_backward_fast(np.ones_like(out), cache)
    >>> dw, db
    (array([[[[20., 24.],
             [36., 40.]]]]), array([4.]))
    """
    x, w, b, _, g, kernels, rows, _ = cache
    xp, device = backend.namespace_and_device(dout, x, w)
    N, F, HH, WW = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    _check_dout(dout, (N, F, g.out_h, g.out_w), "conv_backward_fast")
    if kernels is not None:
        return kernels.conv_backward(dout, x, w, g.stride, g.pad, g.dilation)
    K = math.prod(w.shape[1:])
    w2 = xp.reshape(w, (F, K))
    dw = None
    dxs = []
    for chunk in _chunks(N, rows):
        xc = x[chunk, ...]
        dc = xp.reshape(dout[chunk, ...], (xc.shape[0], F, g.out_h * g.out_w))
        cols = _im2col(xp, xc, HH, WW, g)
        part = xp.sum(dc @ xp.matrix_transpose(cols), axis=0)
        dw = part if dw is None else dw + part
        dxs.append(_col2im(xp, device, w2.T @ dc, tuple(xc.shape), HH, WW, g))
    dx = dxs[0] if len(dxs) == 1 else xp.concat(dxs, axis=0)
    return dx, xp.reshape(dw, w.shape), xp.sum(dout, axis=(0, 2, 3))


# ---- max pooling -----------------------------------------------------------------------------------

def max_pool_forward_naive(x, pool_param, /):
    """Max pooling, one output position at a time (the course's reference implementation).

    Parameters
    ----------
    x : array (N, C, H, W)
    pool_param : dict
        ``pool_height``, ``pool_width``, ``stride`` (all required, as in the course).

    Returns
    -------
    out : array (N, C, H', W')
        ``H' = (H - pool_height) / stride + 1``, and likewise W'.
    cache : for :func:`max_pool_backward_naive`

    Notes
    -----
    ``out[n, c, i, j] = max_{k, l} x[n, c, i S + k, j S + l]``; the gradient goes to the first
    maximum of each window.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    >>> out, cache = conv_layers.max_pool_forward_naive(x, pool)
    >>> out
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    xp = backend.get_namespace(x)
    g = _pool_geometry(x, pool_param, "max_pool_forward_naive")
    N, C = x.shape[0], x.shape[1]
    rows = []
    for i in range(g.out_h):
        cols = []
        for j in range(g.out_w):
            win = x[:, :, i * g.stride:i * g.stride + g.pool_height, j * g.stride:j * g.stride + g.pool_width]
            cols.append(xp.max(xp.reshape(win, (N, C, g.pool_height * g.pool_width)), axis=2))
        rows.append(xp.stack(cols, axis=-1))
    return xp.stack(rows, axis=-2), (x, pool_param)


def max_pool_backward_naive(dout, cache, /):
    """Backward pass of :func:`max_pool_forward_naive`: ``dx`` shaped like x.

    Examples
    --------
    Each window's gradient goes to its maximum, the bottom-right entry here:

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    >>> out, cache = conv_layers.max_pool_forward_naive(x, pool)
    >>> conv_layers.max_pool_backward_naive(np.ones_like(out), cache)
    array([[[[0., 0., 0., 0.],
             [0., 1., 0., 1.],
             [0., 0., 0., 0.],
             [0., 1., 0., 1.]]]])
    """
    x, pool_param = cache
    xp, device = backend.namespace_and_device(dout, x)
    g = _pool_geometry(x, pool_param, "max_pool_backward_naive")
    N, C = x.shape[0], x.shape[1]
    _check_dout(dout, (N, C, g.out_h, g.out_w), "max_pool_backward_naive")
    K = g.pool_height * g.pool_width
    taps = xp.arange(K, device=device)
    dx = xp.zeros(x.shape, dtype=dout.dtype, device=device)
    for i in range(g.out_h):
        for j in range(g.out_w):
            rows = slice(i * g.stride, i * g.stride + g.pool_height)
            cols = slice(j * g.stride, j * g.stride + g.pool_width)
            first = xp.argmax(xp.reshape(x[:, :, rows, cols], (N, C, K)), axis=2)
            mask = xp.astype(xp.expand_dims(first, axis=2) == taps, dout.dtype)
            grad = mask * xp.expand_dims(dout[:, :, i, j], axis=2)
            dx = _add_at(xp, device, dx, rows, cols, xp.reshape(grad, (N, C, g.pool_height, g.pool_width)))
    return dx


def _pool_taps(xp, x, g: _PoolGeometry):
    """(N, C, ph*pw, H', W'): tap (k, l) of every window, one strided slice per tap."""
    return xp.stack([x[:, :, _window(k, g.out_h, g.stride), _window(m, g.out_w, g.stride)]
                     for k in range(g.pool_height) for m in range(g.pool_width)], axis=2)


def max_pool_forward_fast(x, pool_param, /, *, native: bool = True):
    """Max pooling: :func:`max_pool_forward_naive`'s contract, computed fast.

    The namespace's own pooling where it has one (``native=False`` forces the portable path); the
    portable path takes the maximum over the pool_height x pool_width strided slices of x at once.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    >>> out, _ = conv_layers.max_pool_forward_fast(x, pool)
    >>> out
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    xp = backend.get_namespace(x)
    g = _pool_geometry(x, pool_param, "max_pool_forward_fast")
    kernels = _native(x) if native else None
    if kernels is not None:
        out, aux = kernels.pool_forward(x, g.pool_height, g.pool_width, g.stride)
        return out, (x, g, kernels, aux)
    taps = _pool_taps(xp, x, g)
    return xp.max(taps, axis=2), (x, g, None, xp.argmax(taps, axis=2))


def max_pool_backward_fast(dout, cache, /):
    """Backward pass of :func:`max_pool_forward_fast`: ``dx``, the gradient sent to the (first)
    maximum of each window.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    >>> out, cache = conv_layers.max_pool_forward_fast(x, pool)
    >>> conv_layers.max_pool_backward_fast(np.ones_like(out), cache)[0, 0, :2]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """
    x, g, kernels, aux = cache
    xp, device = backend.namespace_and_device(dout, x)
    N, C, H, W = x.shape
    _check_dout(dout, (N, C, g.out_h, g.out_w), "max_pool_backward_fast")
    if kernels is not None:
        return kernels.pool_backward(dout, x, aux, g.pool_height, g.pool_width, g.stride)
    K = g.pool_height * g.pool_width
    taps = xp.reshape(xp.arange(K, device=device), (1, 1, K, 1, 1))
    grad = xp.astype(xp.expand_dims(aux, axis=2) == taps, dout.dtype) * xp.expand_dims(dout, axis=2)
    dx = xp.zeros(x.shape, dtype=dout.dtype, device=device)
    for k in range(g.pool_height):
        for m in range(g.pool_width):
            dx = _add_at(xp, device, dx, _window(k, g.out_h, g.stride), _window(m, g.out_w, g.stride),
                         grad[:, :, k * g.pool_width + m, :, :])
    return dx


# ---- spatial normalization -------------------------------------------------------------------------

def _check_images(x, name: str) -> None:
    if x.ndim != 4:
        raise InputError(f"{name}: x must have shape (N, C, H, W), got {tuple(x.shape)}")


def _channels_last(xp, a):
    N, C, H, W = a.shape
    return xp.reshape(xp.permute_dims(a, (0, 2, 3, 1)), (N * H * W, C))


def _channels_first(xp, a2, shape):
    N, C, H, W = shape
    return xp.permute_dims(xp.reshape(a2, (N, H, W, C)), (0, 3, 1, 2))


def spatial_batchnorm_forward(x, gamma, beta, bn_param, /):
    """Spatial batch normalization: each channel normalized over the minibatch and every position.

    Parameters
    ----------
    x : array (N, C, H, W)
    gamma, beta : arrays (C,)
        Scale and shift of each channel.
    bn_param : dict
        As :func:`nets.layers.batchnorm_forward` (``mode``, ``eps``, ``momentum``, running
        statistics of shape (C,), stored back in training mode).

    Returns
    -------
    out : array (N, C, H, W)
    cache : for :func:`spatial_batchnorm_backward`

    Notes
    -----
    :func:`nets.layers.batchnorm_forward` on the (N H W, C) view of x: the statistics of channel
    c are taken over its N H W values.

    Examples
    --------
    In training mode each channel comes out with mean 0 and standard deviation 1:

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)) * 5 + 2
    >>> out, cache = conv_layers.spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    >>> bool(np.abs(out.mean(axis=(0, 2, 3))).max() < 1e-12), out.std(axis=(0, 2, 3)).round(4)
    (True, array([1., 1., 1.]))
    """
    xp = backend.get_namespace(x, gamma, beta)
    _check_images(x, "spatial_batchnorm_forward")
    out2, cache = batchnorm_forward(_channels_last(xp, x), gamma, beta, bn_param)
    return _channels_first(xp, out2, tuple(x.shape)), (cache, tuple(x.shape))


def spatial_batchnorm_backward(dout, cache, /):
    """Backward pass of :func:`spatial_batchnorm_forward`: ``(dx, dgamma, dbeta)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)) * 5 + 2
    >>> out, cache = conv_layers.spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    >>> dx, dgamma, dbeta = conv_layers.spatial_batchnorm_backward(np.ones_like(out), cache)
    >>> dx.shape, dgamma.shape, dbeta
    ((4, 3, 2, 2), (3,), array([16., 16., 16.]))
    """
    bn_cache, shape = cache
    xp = backend.get_namespace(dout)
    _check_dout(dout, shape, "spatial_batchnorm_backward")
    dx2, dgamma, dbeta = batchnorm_backward(_channels_last(xp, dout), bn_cache)
    return _channels_first(xp, dx2, shape), dgamma, dbeta


def _check_groups(x, gamma, beta, G, name: str) -> int:
    _check_images(x, name)
    C = x.shape[1]
    if isinstance(G, bool) or not isinstance(G, int) or G < 1 or C % G:
        raise InputError(f"{name}: G must be a positive integer that divides the {C} channels, got {G!r}")
    for label, a in (("gamma", gamma), ("beta", beta)):
        if tuple(a.shape) != (1, C, 1, 1):
            raise InputError(f"{name}: {label} must have shape (1, {C}, 1, 1), got {tuple(a.shape)}")
    return G


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param, /):
    """Spatial group normalization: each example's channels split into G groups, each normalized.

    Parameters
    ----------
    x : array (N, C, H, W)
    gamma, beta : arrays (1, C, 1, 1)
        Scale and shift of each channel.
    G : int
        Number of groups; divides C.
    gn_param : dict
        ``eps`` (default 1e-5).

    Returns
    -------
    out : array (N, C, H, W)
    cache : for :func:`spatial_groupnorm_backward`

    Notes
    -----
    :func:`nets.layers.layernorm_forward` (unit scale, no shift) on the (N G, C/G H W) view of x,
    then ``out = gamma * xhat + beta`` per channel. G = 1 is layer normalization over (C, H, W),
    G = C instance normalization.

    Examples
    --------
    With G = C = 3 (instance normalization) each example's channel has standard deviation 1:

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)) * 5 + 2
    >>> gamma, beta = np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))
    >>> out, cache = conv_layers.spatial_groupnorm_forward(x, gamma, beta, 3, {})
    >>> out.std(axis=(2, 3)).round(3)[0]
    array([1., 1., 1.])
    >>> conv_layers.spatial_groupnorm_forward(x, gamma, beta, 2, {})
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: spatial_groupnorm_forward: G must be a positive integer that divides the 3 ...
    """
    xp, device = backend.namespace_and_device(x, gamma, beta)
    G = _check_groups(x, gamma, beta, G, "spatial_groupnorm_forward")
    N = x.shape[0]
    D = math.prod(x.shape[1:]) // G
    ones = xp.ones((D,), dtype=x.dtype, device=device)
    zeros = xp.zeros((D,), dtype=x.dtype, device=device)
    xhat2, ln_cache = layernorm_forward(xp.reshape(x, (N * G, D)), ones, zeros, gn_param)
    xhat = xp.reshape(xhat2, x.shape)
    return xhat * gamma + beta, (xhat, gamma, ln_cache)


def spatial_groupnorm_backward(dout, cache, /):
    """Backward pass of :func:`spatial_groupnorm_forward`: ``(dx, dgamma, dbeta)``, the last two (1, C, 1, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)) * 5 + 2
    >>> gamma, beta = np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))
    >>> out, cache = conv_layers.spatial_groupnorm_forward(x, gamma, beta, 3, {})
    >>> dx, dgamma, dbeta = conv_layers.spatial_groupnorm_backward(np.ones_like(out), cache)
    >>> dx.shape, dgamma.shape, dbeta.ravel()
    ((4, 3, 2, 2), (1, 3, 1, 1), array([16., 16., 16.]))
    """
    xhat, gamma, ln_cache = cache
    xp = backend.get_namespace(dout, xhat)
    _check_dout(dout, tuple(xhat.shape), "spatial_groupnorm_backward")
    dbeta = xp.sum(dout, axis=(0, 2, 3), keepdims=True)
    dgamma = xp.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)
    dxhat = dout * gamma
    dx2, _, _ = layernorm_backward(xp.reshape(dxhat, ln_cache[0].shape), ln_cache)
    return xp.reshape(dx2, xhat.shape), dgamma, dbeta


# ---- composite layers ------------------------------------------------------------------------------

def conv_relu_forward(x, w, b, conv_param, /):
    """A convolution (:func:`conv_forward_fast`) followed by a ReLU.

    Examples
    --------
    Two 1x1 filters, +1 and -1: the ReLU keeps the positive pixels, then the negated negative ones.

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]])
    >>> w, b = np.array([1.0, -1.0]).reshape(2, 1, 1, 1), np.zeros(2)
    >>> out, cache = conv_layers.conv_relu_forward(x, w, b, {})
    >>> out
    array([[[[1., 0.],
             [3., 0.]],
    <BLANKLINE>
            [[0., 2.],
             [0., 4.]]]])
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache, /):
    """Backward pass of :func:`conv_relu_forward`: ``(dx, dw, db)``.

    Examples
    --------
    Two 1x1 filters, +1 and -1: the ReLU keeps the positive pixels, then the negated negative ones.

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]])
    >>> w, b = np.array([1.0, -1.0]).reshape(2, 1, 1, 1), np.zeros(2)
    >>> out, cache = conv_layers.conv_relu_forward(x, w, b, {})
    >>> dx, dw, db = conv_layers.conv_relu_backward(np.ones_like(out), cache)
    >>> dx, dw.ravel(), db
    (array([[[[ 1., -1.],
             [ 1., -1.]]]]), array([ 4., -6.]), array([2., 2.]))
    """
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param, /):
    """A convolution, a ReLU and a max pool (the fast kernels).

    Examples
    --------
    Two 1x1 filters, +1 and -1: the ReLU keeps the positive pixels, then the negated negative ones.

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]])
    >>> w, b = np.array([1.0, -1.0]).reshape(2, 1, 1, 1), np.zeros(2)
    >>> pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    >>> out, cache = conv_layers.conv_relu_pool_forward(x, w, b, {}, pool)
    >>> out.ravel(), out.shape
    (array([3., 4.]), (1, 2, 1, 1))
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache, /):
    """Backward pass of :func:`conv_relu_pool_forward`: ``(dx, dw, db)``.

    Examples
    --------
    Two 1x1 filters, +1 and -1: the ReLU keeps the positive pixels, then the negated negative ones.

    >>> import numpy as np
    >>> from xpml.nets import conv_layers
    >>> x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]])
    >>> w, b = np.array([1.0, -1.0]).reshape(2, 1, 1, 1), np.zeros(2)
    >>> pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    >>> out, cache = conv_layers.conv_relu_pool_forward(x, w, b, {}, pool)
    >>> dx, dw, db = conv_layers.conv_relu_pool_backward(np.ones_like(out), cache)
    >>> dx, dw.ravel(), db
    (array([[[[ 0.,  0.],
             [ 1., -1.]]]]), array([ 3., -4.]), array([1., 1.]))
    """
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)
