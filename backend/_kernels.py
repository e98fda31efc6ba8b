"""Reductions the kNN search runs over every training row, and the square root of the distances
it reports, each with one contract and the backend's own kernel behind it where the portable
form is slow or inexact there.

The array API has what these compute (``vecdot``, ``partition`` through array-api-extra), but
not at the same speed everywhere: array-api-compat's ``vecdot`` for PyTorch is a batched matrix
product of (1, D) by (D, 1) matrices, about eight times slower than ``torch.linalg.vector_norm``
on the CPU; array-api-extra's ``partition`` for PyTorch builds the whole partitioned copy
(``kthvalue``, a scatter and a gather) when only the k-th value is needed, about twenty times the
cost of ``torch.topk``. Each function here states what it returns, and the tests check every
backend against that statement.
"""

from __future__ import annotations

import array_api_compat

from . import _registry
from .errors import InputError

__all__ = ["flushes_subnormals", "holds_flushed_subnormals", "kth_smallest", "sqrt", "sum_of_squares"]


def sum_of_squares(V, /):
    """``sum_j V[..., j]**2`` over the last axis, in V's floating dtype.

    The order of the sum is the backend's, and the result may be the square of a computed norm
    (one square root and one squaring more). Either way, for D terms, unit roundoff ``u`` and
    smallest normal ``tiny``, it errs from the exact value ``s`` by at most
    ``gamma_(D+3) s + D tiny`` (``gamma_n = n u / (1 - n u)``): D products and D - 1 additions
    in any order give ``gamma_D``, the square root and the squaring three roundings more, tiny
    squares lost to underflow ``D tiny``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.sum_of_squares(np.array([[3.0, 4.0], [1.0, 2.0]]))
    array([25.,  5.])
    """
    xp = array_api_compat.array_namespace(V)
    return _registry.adapter_of_namespace(xp).sum_of_squares(xp, V)


def kth_smallest(x, k: int, /):
    """The k-th smallest value (``k`` from 1) along the last axis of ``x``, which holds no NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.kth_smallest(np.array([[3.0, 1.0, 2.0], [0.5, 9.0, 4.0]]), 2)
    array([2., 4.])
    """
    xp = array_api_compat.array_namespace(x)
    if not 1 <= k <= x.shape[-1]:
        raise InputError(f"k={k} is outside 1..{x.shape[-1]}, the length of the last axis")
    return _registry.adapter_of_namespace(xp).kth_smallest(xp, x, k)


def sqrt(x, /):
    """The square root of ``x`` (float32 or float64), as NumPy computes it: correctly rounded.

    PyTorch's vectorised square root on the CPU errs by one unit in the last place for about
    0.7% of float32 and float64 inputs. For float32 tensors the root is taken in float64 and
    rounded to float32, which is the correctly rounded root: a float32 root lies at least 2**-51
    (relative) from a rounding boundary of float32, farther than the float64 root's error. Float64
    tensors keep PyTorch's own root (within one unit in the last place). Other backends' roots
    are correctly rounded as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.sqrt(np.array([4.0, 2.0], dtype=np.float32))
    array([2.       , 1.4142135], dtype=float32)
    """
    xp = array_api_compat.array_namespace(x)
    return _registry.adapter_of_namespace(xp).sqrt(xp, x)


def flushes_subnormals(x, /) -> bool:
    """Whether arithmetic in ``x``'s dtype on ``x``'s device flushes subnormal values to zero.

    JAX on the CPU does (XLA sets the processor's flush-to-zero and denormals-are-zero modes);
    NumPy, array-api-strict and PyTorch on the CPU keep them (unless ``torch.set_flush_denormal``).
    Measured on the device (a product whose exact result is subnormal, elementwise and through a
    matrix product), not assumed.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.flushes_subnormals(np.zeros(2))  # NumPy keeps subnormal numbers
    False
    """
    xp, device = array_api_compat.array_namespace(x), array_api_compat.device(x)
    return _registry.adapter_of_namespace(xp).flushes_subnormals(xp, device, x.dtype)


def holds_flushed_subnormals(x, /) -> bool:
    """Whether ``x`` holds subnormal values that its device's arithmetic reads as zero.

    False where the device keeps subnormals (:func:`flushes_subnormals`). Where it flushes them,
    its own comparisons see them as zero too, so the stored values are looked at on the host
    (a device that flushes is a CPU here: the copy is free or cheap).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.holds_flushed_subnormals(np.array([1e-310, 1.0]))  # NumPy does not flush them
    False
    """
    if not flushes_subnormals(x):
        return False
    from ._transfer import to_numpy

    host = to_numpy(x)
    tiny = float(array_api_compat.array_namespace(x).finfo(x.dtype).smallest_normal)
    magnitude = abs(host)
    return bool(((magnitude < tiny) & (magnitude > 0)).any())
