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
import array_api_extra as xpx

__all__ = ["kth_smallest", "sqrt", "sum_of_squares"]


def sum_of_squares(V, /):
    """``sum_j V[..., j]**2`` over the last axis, in V's floating dtype.

    The order of the sum is the backend's, and the result may be the square of a computed norm
    (one square root and one squaring more). Either way, for D terms, unit roundoff ``u`` and
    smallest normal ``tiny``, it errs from the exact value ``s`` by at most
    ``gamma_(D+3) s + D tiny`` (``gamma_n = n u / (1 - n u)``): D products and D - 1 additions
    in any order give ``gamma_D``, the square root and the squaring three roundings more, tiny
    squares lost to underflow ``D tiny``.
    """
    xp = array_api_compat.array_namespace(V)
    if array_api_compat.is_torch_namespace(xp):
        norm = xp.linalg.vector_norm(V, axis=-1)  # one fused pass, no (.., D) temporary
        return norm * norm
    return xp.vecdot(V, V)


def kth_smallest(x, k: int, /):
    """The k-th smallest value (``k`` from 1) along the last axis of ``x``, which holds no NaN."""
    xp = array_api_compat.array_namespace(x)
    if not 1 <= k <= x.shape[-1]:
        raise ValueError(f"k={k} is outside 1..{x.shape[-1]}, the length of the last axis")
    if array_api_compat.is_torch_namespace(xp):  # the k smallest, unordered: no sort, no copy of x
        return x.topk(k, dim=-1, largest=False, sorted=False).values.amax(dim=-1)
    return xpx.partition(x, k - 1, axis=-1, xp=xp)[..., k - 1]


def sqrt(x, /):
    """The square root of ``x`` (float32 or float64), as NumPy computes it: correctly rounded.

    PyTorch's vectorised square root on the CPU errs by one unit in the last place for about
    0.7% of float32 and float64 inputs. For float32 tensors the root is taken in float64 and
    rounded to float32, which is the correctly rounded root: a float32 root lies at least 2**-51
    (relative) from a rounding boundary of float32, farther than the float64 root's error. Float64
    tensors keep PyTorch's own root (within one unit in the last place). Other backends' roots
    are correctly rounded as they are.
    """
    xp = array_api_compat.array_namespace(x)
    if array_api_compat.is_torch_namespace(xp) and x.dtype == xp.float32:
        return xp.astype(xp.sqrt(xp.astype(x, xp.float64)), xp.float32)
    return xp.sqrt(x)
