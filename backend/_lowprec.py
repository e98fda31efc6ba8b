"""Matrix products in a low-precision format with float32 accumulation, where a backend has one.

Some hardware multiplies bfloat16 matrices several times faster than float32 ones: CPUs with
AMX or AVX-512-BF16 through PyTorch's oneDNN kernels, NVIDIA tensor cores. The array API has no
way to ask for such a product with a float32 result (a bfloat16 product rounds its result to
bfloat16, which loses most of it), so each backend's adapter offers its native call
(``Adapter.low_precision_candidate``) behind one small interface the math can use without
importing the backend: :class:`LowPrecisionProduct`.

A candidate is used only after it has been measured on the machine it runs on (once per process
and device, :func:`_self_check`): its error from the exact product of the rounded inputs must
stay within a quarter of the bound kNN's exactness proof assumes (float32 accumulation of exact
products of inputs rounded to nearest), or its error from the exact product of the inputs within
a quarter of the float32 product's bound. Hardware whose kernel does otherwise (truncated inputs,
a bfloat16 result or accumulator) gets no low-precision product: the float32 one is used.
``precision="auto"`` further uses it only where it was measured faster than the float32 product.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from typing import Any

import array_api_compat

from . import _registry
from ._kernels import sum_of_squares
from .errors import InputError

__all__ = ["PRODUCT_PRECISIONS", "LowPrecisionProduct", "exact_matmul", "low_precision_product"]

PRODUCT_PRECISIONS = ("auto", "exact", "bfloat16")
# name, unit roundoff, smallest normal, accumulation unit roundoff, default (set by measurement)
BFLOAT16 = ("bfloat16", 2.0**-8, 2.0**-126, 2.0**-24, False)
# The measured error must stay within bound / _MARGIN, and the product be this much faster for "auto".
_MARGIN = 4.0
_MIN_SPEEDUP = 1.2


@dataclass(frozen=True)
class LowPrecisionProduct:
    """A float32 matrix product whose inputs are rounded to a narrower format.

    Attributes
    ----------
    name : str
        The input format, e.g. ``"bfloat16"``.
    unit_roundoff : float
        Of the input format (2**-8 for bfloat16): an input ``v`` is used as ``round(v)`` with
        ``|v - round(v)| <= unit_roundoff * |v|`` for normal values, rounded to nearest even.
    smallest_normal : float
        Inputs below this in magnitude may be flushed to zero by the hardware.
    accumulation_unit_roundoff : float
        Of the accumulator (2**-24, float32). Products of two inputs are exact in it.
    default : bool
        Whether ``precision="auto"`` uses it: only where it was measured to be faster.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> xp, device = backend.namespace_and_device(np.zeros(1))
    >>> backend.low_precision_product(xp, device) is None  # NumPy has no faster low-precision product
    True
    """

    name: str
    unit_roundoff: float
    smallest_normal: float
    accumulation_unit_roundoff: float
    default: bool
    _matmul: Any = field(repr=False, compare=False)
    _low_dtype: Any = field(repr=False, compare=False)
    _source: tuple = field(default=(), repr=False, compare=False)  # (namespace, device) it was found for

    def __reduce__(self):
        # The kernel is a closure over this process's library: a copy (a pickled kNN model) looks the
        # product up again where it is unpickled, self-check included, and has none where there is none.
        return _find_again, (self.name, *self._source)

    def round(self, x, /):
        """``x`` (float32) rounded to the input format, returned as float32: what the product sees."""
        xp = array_api_compat.array_namespace(x)
        return xp.astype(xp.astype(x, self._low_dtype), x.dtype)

    def rounding_error_squares(self, V, /):
        """``sum_j (V[..., j] - round(V[..., j]))**2`` over the last axis of float32 ``V``.

        Each difference is exact (a value and its rounding are within a factor of two of each
        other), so the result errs as :func:`sum_of_squares` says. The difference is taken in
        place on the rounded temporary where the namespace allows: one (.., D) array, not two.
        """
        e = self.round(V)
        if array_api_compat.is_writeable_array(e):
            e -= V  # the sign does not matter to the squares
        else:
            e = e - V
        return sum_of_squares(e)

    def matmul(self, a, b, /, *, out=None):
        """``a @ b`` for float32 ``a`` (n, D) and ``b`` (D, m): inputs rounded to the format,
        float32 accumulation, a float32 result. ``out``: as for :func:`exact_matmul`."""
        return self._matmul(a, b, _reusable(a, b, out))


def _reusable(a, b, out):
    """``out`` if the product ``a @ b`` can be written into it (same shape, dtype and device, a
    namespace whose matmul takes ``out=``, a writeable array), else None."""
    if out is None or tuple(out.shape) != (a.shape[0], b.shape[1]) or out.dtype != a.dtype:
        return None
    xp = array_api_compat.array_namespace(a, b, out)
    adapter = _registry.adapter_of_namespace(xp)
    if adapter is None or not adapter.matmul_out or not array_api_compat.is_writeable_array(out):
        return None
    return out if array_api_compat.device(out) == array_api_compat.device(a) else None


def exact_matmul(a, b, /, *, out=None):
    """``a @ b`` with the dtype's own arithmetic, whatever reduced-precision mode the library is in.

    ``torch.set_float32_matmul_precision("medium")`` makes PyTorch's float32 products use
    bfloat16 on the CPU and TF32 on CUDA; JAX uses TF32 on some GPUs by default. An error bound
    that assumes float32 rounding would be wrong there, so this product asks for IEEE precision.
    (CuPy's ``CUPY_TF32=1``, read when CuPy is imported, cannot be undone per call; do not set it.)

    ``out``: an array the caller no longer needs (the previous block's product, say). Where the
    namespace writes results into an existing array (NumPy, CuPy, PyTorch) and ``out`` has the
    result's shape, dtype and device, the product is written there and ``out`` returned: no
    fresh memory per block, whose pages cost the operating system about as much to hand out as a
    few elementwise passes. Elsewhere a new array is returned. Always use the returned array.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.exact_matmul(np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]]))
    array([[11.]])
    """
    xp = array_api_compat.array_namespace(a, b)
    return _registry.adapter_of_namespace(xp).exact_matmul(xp, a, b, _reusable(a, b, out))


def _self_check(product, xp, device, /) -> bool:
    """Whether ``product`` obeys, on this machine, the error model kNN's exactness proof relies on.

    A (64, D) by (D, 256) product of seeded data (D = 512: large enough for the fast kernels),
    positive so that a biased rounding (truncated inputs) adds up instead of cancelling, with
    entries spread over several binades, is compared with two references computed in float64
    from the same float32 inputs: the exact product of the inputs rounded to the format (what
    the proof assumes) and the exact product of the inputs themselves (a plain float32 product,
    more accurate than assumed, which some kernels pick for some sizes). Every entry must be
    within ``1 / _MARGIN`` of its bound from one of them:

    - rounded inputs: ``gamma_(2D)(u_acc) |round(x)| |round(t)| + 2 D smallest_normal``;
    - plain product: ``gamma_D(2**-24) |x| |t|``.

    A product that raises (an unsupported call on this build or device), returns another dtype
    or shape, or misses both bounds anywhere is refused.
    """
    import numpy as np

    from ._transfer import to_numpy

    n, dim, m = 64, 512, 256
    rng = np.random.default_rng(20240607)
    host_a = (rng.random((n, dim)) * np.exp2(rng.integers(-3, 4, (n, dim)))).astype(np.float32)
    host_b = (rng.random((dim, m)) * np.exp2(rng.integers(-3, 4, (dim, m)))).astype(np.float32)
    try:
        a = xp.asarray(host_a, device=device)
        b = xp.asarray(host_b, device=device)
        got = product.matmul(a, b)
        if got.dtype != xp.float32 or tuple(got.shape) != (n, m):
            return False
        got = to_numpy(got).astype(np.float64)
        ra = to_numpy(product.round(a)).astype(np.float64)
        rb = to_numpy(product.round(b)).astype(np.float64)
    except Exception:  # an unsupported call on this build or device means: not available
        return False
    return bool(_within_model(product, got, ra, rb, host_a.astype(np.float64), host_b.astype(np.float64)))


def _within_model(product, got, ra, rb, a, b):
    """Whether each entry of ``got`` meets the rounded-input bound or the plain float32 bound
    (float64 host arrays; see :func:`_self_check`)."""
    import math

    import numpy as np

    dim = a.shape[1]

    def gamma(k, u):
        return k * u / (1 - k * u)

    norms_a, norms_b = np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=0)
    rounded_bound = (gamma(2 * dim, product.accumulation_unit_roundoff) * np.outer(norms_a, norms_b)
                     + 2 * dim * product.smallest_normal)
    plain_bound = gamma(dim, 2.0**-24) * np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=0))
    rounded_ok = np.abs(got - ra @ rb) <= rounded_bound / _MARGIN
    plain_ok = np.abs(got - a @ b) <= plain_bound / _MARGIN
    return math.isfinite(float(np.sum(got))) and bool(np.all(rounded_ok | plain_ok))


def _faster(product, xp, device, /) -> bool:
    """Whether ``product`` beats the float32 product by ``_MIN_SPEEDUP`` on a kNN-sized block here
    (best of three each, after a warm-up)."""
    from ._sync import synchronize

    a = xp.ones((512, 1024), dtype=xp.float32, device=device)
    b = xp.ones((1024, 2048), dtype=xp.float32, device=device)

    def best(matmul):
        out = None
        times = []
        for _ in range(4):
            start = time.perf_counter()
            out = matmul(a, b, out=out)
            synchronize(out)
            times.append(time.perf_counter() - start)
        return min(times[1:])

    try:
        return best(exact_matmul) * 1.0 >= _MIN_SPEEDUP * best(product.matmul)
    except Exception:
        return False


@functools.cache
def _checked(xp, device):
    """The product of this namespace and device if it passes the self-check (once per process),
    with ``default`` saying whether it was measured faster than the float32 product."""
    adapter = _registry.adapter_of_namespace(xp)
    product = None if adapter is None else adapter.low_precision_candidate(xp, device)
    if product is None or not _self_check(product, xp, device):
        return None
    return replace(product, default=_faster(product, xp, device))


def _find_again(name: str, namespace: str, device) -> LowPrecisionProduct | None:
    """The product ``name`` of ``array_api_compat.<namespace>`` on ``device`` in this process, or None."""
    product = _checked(_registry.adapter(namespace).namespace(), device)
    return product if product is not None and product.name == name else None


def low_precision_product(xp, device, /, precision: str = "auto") -> LowPrecisionProduct | None:
    """The low-precision product to use for ``precision`` on ``device`` of ``xp``, or None.

    ``"exact"``: None (use the working dtype's own product). ``"auto"``: the backend's product
    where it passed its self-check here and was measured faster than the float32 product, else
    None. ``"bfloat16"``: the product that passed its self-check, or a ValueError saying why there
    is none here.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> xp, device = backend.namespace_and_device(np.zeros(1))
    >>> print(backend.low_precision_product(xp, device))
    None
    """
    if precision not in PRODUCT_PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(map(repr, PRODUCT_PRECISIONS))}, got {precision!r}")
    if precision == "exact":
        return None
    product = _checked(xp, device)
    if precision == "auto":
        return product if product is not None and product.default else None
    if product is None:
        raise InputError(
            f"precision={precision!r}: no bfloat16 product with float32 accumulation on {xp.__name__} "
            f"device {device!r} (offered with torch on a CPU with AMX or AVX-512-BF16, or a CUDA GPU "
            "from Ampere on, where its self-check finds inputs rounded to nearest and float32 "
            "accumulation); use precision='auto' or 'exact'"
        )
    return product
