"""Matrix products in a low-precision format with float32 accumulation, where a backend has one.

Some hardware multiplies bfloat16 matrices several times faster than float32 ones: CPUs with
AMX or AVX-512-BF16 through PyTorch's oneDNN kernels, NVIDIA tensor cores. The array API has no
way to ask for such a product with a float32 result (a bfloat16 product rounds its result to
bfloat16, which loses most of it), so each backend's native call lives here, behind one small
interface the math can use without importing the backend: :class:`LowPrecisionProduct`.

A product is only offered where it is known to round its inputs to nearest in the format and to
accumulate in float32, which is what an error bound built on it assumes (see
:class:`LowPrecisionProduct`); a one-off self-check on a tiny product confirms both on first use.
"""

from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

import array_api_compat

from ._kernels import sum_of_squares

__all__ = ["PRODUCT_PRECISIONS", "LowPrecisionProduct", "exact_matmul", "low_precision_product"]

PRODUCT_PRECISIONS = ("auto", "exact", "bfloat16")
_LOCK = threading.Lock()  # the oneDNN precision switch is process-wide: one product at a time


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


def _with_torch_precision(torch, precision, product):
    """Run ``product()`` with PyTorch's float32 matmul precision set to ``precision`` on the CPU
    (oneDNN) and on CUDA, and put the settings back: PyTorch has no per-call form of them."""
    switches = [(torch.backends.mkldnn.matmul, precision)]
    cuda = getattr(torch.backends.cuda, "matmul", None)
    if cuda is not None and hasattr(cuda, "fp32_precision"):
        switches.append((cuda, "ieee"))  # no float32 product on CUDA goes through here reduced
    with _LOCK:
        before = [switch.fp32_precision for switch, _ in switches]
        try:
            for switch, value in switches:
                switch.fp32_precision = value
            return product()
        finally:
            for (switch, _), value in zip(switches, before, strict=True):
                switch.fp32_precision = value


def _reusable(a, b, out):
    """``out`` if the product ``a @ b`` can be written into it (same shape, dtype and device, a
    namespace whose matmul takes ``out=``, a writeable array), else None."""
    if out is None or tuple(out.shape) != (a.shape[0], b.shape[1]) or out.dtype != a.dtype:
        return None
    xp = array_api_compat.array_namespace(a, b, out)
    native = (array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp)
              or array_api_compat.is_torch_namespace(xp))
    if not native or not array_api_compat.is_writeable_array(out):
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
    """
    xp = array_api_compat.array_namespace(a, b)
    out = _reusable(a, b, out)
    if array_api_compat.is_torch_namespace(xp):
        torch = importlib.import_module("torch")
        return _with_torch_precision(torch, "ieee", lambda: torch.matmul(a, b, out=out))
    if array_api_compat.is_jax_namespace(xp):
        return xp.matmul(a, b, precision="highest")
    if out is not None:  # NumPy or CuPy
        return importlib.import_module(xp.__name__.split(".")[-1]).matmul(a, b, out=out)
    return a @ b


def _torch_cpu_matmul(torch):
    def matmul(a, b, out):
        # oneDNN computes a float32 product from bfloat16-rounded inputs when this switch is on.
        return _with_torch_precision(torch, "bf16", lambda: torch.matmul(a, b, out=out))

    return matmul


def _torch_cuda_matmul(torch):
    def matmul(a, b, out):  # out unused: the GPU's allocator reuses memory by itself
        return torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16), out_dtype=torch.float32)

    return matmul


def _probe(xp, device):
    """The bfloat16 product of this namespace and device, or None."""
    if not array_api_compat.is_torch_namespace(xp):
        return None
    torch = importlib.import_module("torch")
    kind = getattr(device, "type", str(device))
    if kind == "cpu":
        cpu = torch.cpu
        fast = (getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
        if not (torch.backends.mkldnn.is_available() and fast):
            return None
        # Measured on a 2-core Xeon with AMX: 2,000 x 3,072 @ 3,072 x 10,000 runs about 3x faster.
        return LowPrecisionProduct("bfloat16", 2.0**-8, 2.0**-126, 2.0**-24, True,
                                   _torch_cpu_matmul(torch), torch.bfloat16, ("torch", device))
    if kind == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        if major < 8:  # bfloat16 tensor cores from Ampere on
            return None
        # Not measured here yet: offered on request (precision="bfloat16"), not by "auto".
        return LowPrecisionProduct("bfloat16", 2.0**-8, 2.0**-126, 2.0**-24, False,
                                   _torch_cuda_matmul(torch), torch.bfloat16, ("torch", device))
    return None


def _self_check(product, xp, device) -> bool:
    """Whether a product large enough for the fast kernel rounds its inputs to nearest and keeps a
    float32 result (the two things an error bound built on it assumes).

    Every input is ``c = 1 + 2**-8 + 2**-12``, which rounds to ``1 + 2**-7`` in bfloat16 (to
    nearest) but to 1 when truncated. Each entry of the (64, 64) result is 256 rounded inputs:
    258 if rounded to nearest, 257.0625 if the kernel skipped rounding (a plain float32 product,
    more accurate than assumed, which some sizes get); 256 means truncation and 260 or 256 a
    result rounded to bfloat16.
    """
    c = 1.0 + 2.0**-8 + 2.0**-12
    a = xp.full((64, 256), c, dtype=xp.float32, device=device)
    b = xp.ones((256, 64), dtype=xp.float32, device=device)
    try:
        got = product.matmul(a, b)
        return got.dtype == xp.float32 and float(xp.min(got)) == float(xp.max(got)) and float(got[0, 0]) in (
            258.0, 256.0 * c)
    except Exception:  # an unsupported call on this build or device means: not available
        return False


@functools.cache
def _checked(xp, device):
    """The product of this namespace and device if it passes the self-check (once per process)."""
    product = _probe(xp, device)
    return product if product is not None and _self_check(product, xp, device) else None


def _find_again(name: str, namespace: str, device) -> LowPrecisionProduct | None:
    """The product ``name`` of ``array_api_compat.<namespace>`` on ``device`` in this process, or None."""
    product = _checked(importlib.import_module(f"array_api_compat.{namespace}"), device)
    return product if product is not None and product.name == name else None


def low_precision_product(xp, device, /, precision: str = "auto") -> LowPrecisionProduct | None:
    """The low-precision product to use for ``precision`` on ``device`` of ``xp``, or None.

    ``"exact"``: None (use the working dtype's own product). ``"auto"``: the backend's product
    where it was measured to be faster (torch on a CPU with AMX or AVX-512-BF16), else None.
    ``"bfloat16"``: that product, or a ValueError saying why there is none here.
    """
    if precision not in PRODUCT_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRODUCT_PRECISIONS))}, got {precision!r}")
    if precision == "exact":
        return None
    product = _checked(xp, device)
    if precision == "auto":
        return product if product is not None and product.default else None
    if product is None:
        raise ValueError(
            f"precision={precision!r}: no bfloat16 product with float32 accumulation on {xp.__name__} "
            f"device {device!r} (available with torch on a CPU with AMX or AVX-512-BF16, or a CUDA GPU "
            "from Ampere on); use precision='auto' or 'exact'"
        )
    return product
