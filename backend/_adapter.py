"""The adapter contract: everything that differs between backends, behind one class per backend.

Each backend xpml runs on (NumPy, CuPy, array-api-strict, PyTorch, JAX) has one subclass of
:class:`Adapter` in its own module (``numpy_backend.py``, ``cupy_backend.py``, ``strict_backend.py``,
``torch_backend.py``, ``jax_backend.py``), registered by name in the one table of
:mod:`backend._registry`. The rest of xpml asks the adapter, never the backend's name: code outside
the adapters never tests a backend's name. A new backend is one new adapter module and one
:func:`backend.register_backend` call (tests/_readonly.py registers a test-only backend that way).

The base class gives the portable behaviour (the array API alone, host memory, eager execution);
an adapter overrides only where its library differs.

Hooks for native kernels
------------------------
An adapter may offer a library's own kernel where the portable form is slow. Each hook is an
attribute that is None (no native kernel: callers use the portable code) or a callable with the
contract stated here, which the tests check against the portable one:

``native_conv2d() -> NativeConv2d or None``
    The backend's own convolution and max-pooling kernels (PyTorch's ``conv2d`` and its two
    gradients, JAX's ``lax.conv_general_dilated`` and ``reduce_window``), or None (the default:
    NumPy, array-api-strict, CuPy for now), where :mod:`nets.conv_layers` uses its portable path.
    Every kernel takes and returns arrays of its own namespace, NCHW inputs and OIHW filters,
    square stride, padding and dilation as Python ints, and never checks its arguments (the layers
    have): ``conv_forward(x, w, b, stride, pad, dilation) -> out``,
    ``conv_backward(dout, x, w, stride, pad, dilation) -> (dx, dw, db)``,
    ``pool_forward(x, pool_height, pool_width, stride) -> (out, aux)``,
    ``pool_backward(dout, x, aux, pool_height, pool_width, stride) -> dx``. Each is tested equal to
    the portable path to float rounding (tests/test_conv_layers.py).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import array_api_compat

__all__ = ["Adapter", "BackendStatus", "NativeConv2d", "BackendUnavailableError", "cpu_count", "cpu_name"]


from .errors import BackendUnavailableError  # defined with xpml's other errors; re-exported here


@dataclass(frozen=True)
class BackendStatus:
    """Whether one backend can be used here; ``reason`` says why not when it cannot.

    ``note`` says what a usable backend lacks (PyTorch without a CUDA device, JAX without 64-bit
    types).

    Examples
    --------
    >>> from xpml import backend
    >>> status = backend.list_backends()[0]
    >>> status.name, status.usable
    ('numpy', True)
    >>> print(status)
    numpy: usable (devices: cpu)
    """

    name: str
    usable: bool
    reason: str = ""
    devices: tuple = ()
    note: str = ""

    def __str__(self) -> str:
        if self.usable:
            devs = ", ".join(str(d) for d in self.devices)
            return f"{self.name}: usable (devices: {devs})" + (f"; {self.note}" if self.note else "")
        return f"{self.name}: not usable: {self.reason}"


# The import function is looked up at call time so tests can simulate a missing or broken package.
def _import(name: str):
    return importlib.import_module(name)


def cpu_name() -> str:
    """The CPU's model name, for results tables."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"


def cpu_count() -> int:
    """The CPU cores this process may use and that are not already busy, at least 1.

    The cores of the process's affinity mask (a container's or ``taskset``'s limit), less the
    load average of the last minute: on a machine other programs keep busy, one thread per core
    would only make every program wait for the others (oversubscription).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0])
    except (AttributeError, OSError):
        busy = 0
    return max(1, min(cores, cores - busy + 1))


def kernel_fails(xp, device) -> str:
    """Why a tiny elementwise kernel and reduction fail on ``device``, or "" when they work."""
    try:
        x = xp.arange(8, dtype=xp.float32, device=device)
        total = float(xp.sum(x * 2.0))
    except Exception as exc:
        return f"a test kernel failed: {exc}"
    return "" if total == 56.0 else f"a test reduction gave {total}, not 56"


class NativeConv2d(NamedTuple):
    """A backend's convolution and max-pooling kernels (see the module docstring for signatures)."""

    name: str
    conv_forward: Callable
    conv_backward: Callable
    pool_forward: Callable
    pool_backward: Callable



class Adapter:
    """What one backend does its own way. Subclasses set :attr:`name` and override what differs.

    Attributes
    ----------
    name : str
        The backend's name in :func:`backend.get_backend` (``"torch"``).
    install : str
        How to install the package, for the "not installed" reasons.
    wide_words : bool
        Whether :class:`backend.Generator` holds its 32-bit words in int64 (masked to 32 bits)
        because the namespace's uint32 lacks the arithmetic the cipher needs.
    compiled_draws : bool
        Whether the generator compiles its cipher (:meth:`compiler`) rather than dispatching
        its ~120 operations one by one.
    matmul_out : bool
        Whether the library's own ``matmul`` writes into an ``out=`` array (:meth:`exact_matmul`).

    Examples
    --------
    >>> from xpml import backend
    >>> adapter = backend.get_backend("numpy").adapter
    >>> isinstance(adapter, backend.Adapter), adapter.name
    (True, 'numpy')
    """

    name: str = ""
    install: str = ""
    wide_words: bool = False
    compiled_draws: bool = False
    matmul_out: bool = False

    def native_conv2d(self):
        """The backend's own convolution and pooling kernels (:class:`NativeConv2d`), or None: the
        portable code (see the module's docstring)."""
        return None

    # -- the namespace and its arrays ------------------------------------------------------------
    def first_use(self) -> None:
        """Set-up the first time xpml uses this backend in a process (JAX: its compilation cache).
        Called by :meth:`namespace` and when arrays of this backend first reach xpml."""

    def namespace(self):
        """The array namespace module of this backend (importing it)."""
        return _import(f"array_api_compat.{self.name}")

    def owns_namespace(self, xp) -> bool:
        """Whether ``xp`` (a namespace module) is this backend's."""
        return getattr(array_api_compat, f"is_{self.name}_namespace")(xp)

    def owns_array(self, x) -> bool:
        """Whether ``x`` is an array of this backend."""
        return getattr(array_api_compat, f"is_{self.name}_array")(x)

    # -- usability and devices ------------------------------------------------------------------
    def probe(self) -> BackendStatus:
        """Whether the package imports, sees a device and runs a tiny kernel there; which devices."""
        try:
            xp = self.namespace()
        except ImportError as exc:
            return self.not_installed(exc)
        return BackendStatus(self.name, True, devices=tuple(xp.__array_namespace_info__().devices()))

    def not_installed(self, exc: Exception) -> BackendStatus:
        # ``{xpml[extra]}`` in ``install`` becomes the command that fits how xpml was installed
        # (an editable checkout or a wheel).
        import re

        from .._install import install_hint

        how = re.sub(r"\{xpml\[(\w+)\]\}", lambda m: install_hint(m.group(1)), self.install)
        return BackendStatus(self.name, False, f"not installed ({exc}); install it with: {how}")

    def resolve_device(self, xp, device, status: BackendStatus):
        """The device object for ``device`` (None: the default; a string as after the colon in a
        backend name; or the library's own device object). Raises BackendUnavailableError."""
        if device is None:
            return xp.__array_namespace_info__().default_device()
        devices = xp.__array_namespace_info__().devices()
        for d in devices:
            if d == device or str(d) == str(device):
                return d
        raise BackendUnavailableError(
            f"{self.name} has no device {device!r}; its devices are: {', '.join(str(d) for d in devices)}"
        )

    def device_from_array(self, device):
        """The device a :class:`Backend` holds for the device object an array reports."""
        return device

    def device_id(self, xp, device) -> str | None:
        """What follows the colon in the backend's label, or None where the name alone says it."""
        return str(device)

    def device_name(self, device) -> str:
        """Human-readable name of the device, for results tables."""
        return cpu_name() if self.on_cpu(device) else str(device)

    def on_cpu(self, device) -> bool:
        """Whether arrays on ``device`` live in host memory."""
        return True

    # -- data in and out ------------------------------------------------------------------------
    def admissible(self, obj, dtype):
        """``obj`` (a host array, list, ...) ready for ``xp.asarray``; refuses what would be narrowed."""
        return obj

    def to_numpy(self, x):
        """``x``, an array of this backend, as a NumPy array in host memory."""
        import numpy as np

        return np.asarray(x)

    def draws_on_host(self, device) -> bool:
        """Whether the generator should compute its words with NumPy in host memory and hand them
        over with :meth:`wrap_host` (where the device is the host and its own integer kernels are
        slow): the same words either way."""
        return False

    def wrap_host(self, a):
        """A NumPy array ``a`` as an array of this backend sharing its memory (no copy); only
        called where :meth:`draws_on_host` is true."""
        raise NotImplementedError(f"{self.name} does not share host memory with NumPy")

    # -- execution ------------------------------------------------------------------------------
    def synchronize(self, device) -> None:
        """Block until all work queued on ``device`` is done (eager backends: at once)."""

    def synchronize_array(self, x) -> None:
        """Block until ``x`` is computed."""

    def synchronize_all(self) -> None:
        """Wait for every device of this backend's package, if it is already imported."""

    def compiler(self):
        """The compiler of pure functions of arrays (``jax.jit``), or None: run eagerly."""
        return None

    def set_threads(self, n: int):
        """Limit the package's own CPU thread pools to ``n`` threads (the BLAS and OpenMP pools are
        limited by :func:`backend.cpu_threads` through threadpoolctl). Returns the setting to pass
        back to undo it, or None where there is nothing to undo."""
        return None

    # -- dtype rules ----------------------------------------------------------------------------
    def float64_hint(self) -> str:
        """How to get float64 where the device lacks it."""
        return "Use dtype='float32' or another device."

    # -- kernels --------------------------------------------------------------------------------
    def exact_matmul(self, xp, a, b, out):
        """``a @ b`` in the dtype's own arithmetic; ``out`` (already checked reusable) or None."""
        if out is not None:
            return _import(xp.__name__.split(".")[-1]).matmul(a, b, out=out)
        return a @ b

    def low_precision_candidate(self, xp, device):
        """The low-precision product this backend offers on ``device`` before any self-check, or None.

        A :class:`backend._lowprec.LowPrecisionProduct`; :func:`backend.low_precision_product`
        measures its error model and speed on this machine before using it."""
        return None

    def sum_of_squares(self, xp, V):
        """``sum_j V[..., j]**2`` (contract: :func:`backend.sum_of_squares`)."""
        return xp.vecdot(V, V)

    def kth_smallest(self, xp, x, k: int):
        """The k-th smallest along the last axis (contract: :func:`backend.kth_smallest`)."""
        import array_api_extra as xpx

        return xpx.partition(x, k - 1, axis=-1, xp=xp)[..., k - 1]

    def sqrt(self, xp, x):
        """The correctly rounded square root (contract: :func:`backend.sqrt`)."""
        return xp.sqrt(x)

    def flushes_subnormals(self, xp, device, dtype) -> bool:
        """Whether products and sums in ``dtype`` on ``device`` flush subnormal results to zero.

        Measured each time (a switch such as ``torch.set_flush_denormal`` can change it): a
        product whose exact value is subnormal, elementwise and through a matrix product (BLAS
        may run in another mode than elementwise kernels)."""
        tiny = float(xp.finfo(dtype).smallest_normal)
        a = xp.full((2, 4), tiny, dtype=dtype, device=device)
        b = xp.full((4, 2), 0.25, dtype=dtype, device=device)
        return float(xp.min(a * 0.25)) == 0.0 or float(xp.min(a @ b)) == 0.0

    # -- memory ---------------------------------------------------------------------------------
    def memory(self, device) -> int | None:
        """Bytes of memory ``device`` has, or None: the host's (the caller finds that)."""
        return None
