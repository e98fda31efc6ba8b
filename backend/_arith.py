"""Guarded in-place arithmetic on temporaries: the fast path of rule 3, in one place.

Each helper updates ``a`` in place where the namespace allows writes (NumPy, CuPy, PyTorch,
array-api-strict) and returns a new array where it does not (JAX; NumPy arrays marked read-only).
Either way the caller uses the *returned* array, so both paths give the same numbers and nothing
relies on an in-place change being seen elsewhere.

Only pass an ``a`` the caller has just computed (the result of a product, a sum, ...): never an
input, a parameter, a view of either, or optimizer state shared with someone else.
"""

from __future__ import annotations

import array_api_compat

__all__ = ["iadd", "iand", "imul", "ior", "ipow", "ishl", "isub", "itruediv", "ixor", "writeable"]


def writeable(a, /) -> bool:
    """Whether ``a`` may be updated in place (``array_api_compat.is_writeable_array``)."""
    # NumPy arrays (and NumPy scalars) say so in their flags: read them directly, a hundred times
    # cheaper than the general check, which these helpers would otherwise pay dozens of times a step.
    flag = getattr(getattr(a, "flags", None), "writeable", None)
    return flag if flag is not None else array_api_compat.is_writeable_array(a)


def iadd(a, b, /):
    """``a + b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a += b
        return a
    return a + b


def isub(a, b, /):
    """``a - b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a -= b
        return a
    return a - b


def imul(a, b, /):
    """``a * b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a *= b
        return a
    return a * b


def itruediv(a, b, /):
    """``a / b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a /= b
        return a
    return a / b


def ipow(a, b, /):
    """``a ** b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a **= b
        return a
    return a**b


def iand(a, b, /):
    """``a & b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a &= b
        return a
    return a & b


def ior(a, b, /):
    """``a | b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a |= b
        return a
    return a | b


def ixor(a, b, /):
    """``a ^ b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a ^= b
        return a
    return a ^ b


def ishl(a, b, /):
    """``a << b``, in ``a``'s memory when ``a`` is writeable."""
    if writeable(a):
        a <<= b
        return a
    return a << b
