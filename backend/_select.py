"""Choosing a backend by name, and telling which backends are usable and why.

A backend is a namespace plus a device. Names are ``numpy``, ``cupy``, ``array_api_strict`` and
``auto`` (CuPy when a CUDA device really works, else NumPy), optionally followed by ``:DEVICE``
(``cupy:1``, ``array_api_strict:device1``). With no name, the environment variable
``XPML_BACKEND`` decides, and ``auto`` when it is unset.

"Usable" means the package imports, sees at least one device and runs a tiny kernel and a
reduction correctly there. Asking for a backend that is not usable raises
:class:`BackendUnavailableError` saying which of those steps failed; xpml never runs on NumPy in
its place.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendStatus",
    "as_backend",
    "BackendUnavailableError",
    "backend_of",
    "check_on_backend",
    "get_backend",
    "list_backends",
]

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict")
ENV_VAR = "XPML_BACKEND"


class BackendUnavailableError(RuntimeError):
    """The backend asked for is not installed, has no device, or fails to run a kernel."""


@dataclass(frozen=True)
class BackendStatus:
    """Whether one backend can be used here; ``reason`` says why not when it cannot."""

    name: str
    usable: bool
    reason: str = ""
    devices: tuple = ()

    def __str__(self) -> str:
        if self.usable:
            devs = ", ".join(str(d) for d in self.devices)
            return f"{self.name}: usable (devices: {devs})"
        return f"{self.name}: not usable: {self.reason}"


@dataclass(frozen=True)
class Backend:
    """A namespace and a device: where arrays are created and computed.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
    xp : module
        The array-api-compat namespace (``array_api_compat.numpy``, ``array_api_compat.cupy``, or
        ``array_api_strict``).
    device : object
        The device arrays are created on; every creation passes it explicitly.
    """

    name: str
    xp: Any = field(repr=False)
    device: Any

    @property
    def label(self) -> str:
        """Short readable id: ``numpy``, ``cupy:0``, ``array_api_strict:device1``."""
        default = self.xp.__array_namespace_info__().default_device()
        if self.name == "numpy" or (self.name == "array_api_strict" and self.device == default):
            return self.name
        return f"{self.name}:{_device_id(self)}"

    @property
    def device_name(self) -> str:
        """Human-readable name of the device, for results tables."""
        if self.name == "cupy":
            cupy = importlib.import_module("cupy")
            props = cupy.cuda.runtime.getDeviceProperties(self.device.id)
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        if self.name == "numpy":
            return _cpu_name()
        return str(self.device)

    def asarray(self, obj, /, *, dtype=None, copy=None):
        """Put ``obj`` (a host array, a list, or an array of this backend) on this backend."""
        return self.xp.asarray(obj, dtype=dtype, device=self.device, copy=copy)

    def __str__(self) -> str:
        return self.label


def _device_id(bk: Backend) -> str:
    if bk.name == "cupy":
        return str(bk.device.id)
    if bk.name == "array_api_strict":
        return str(bk.device).split("'")[1] if "'" in str(bk.device) else str(bk.device)
    return str(bk.device)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"


# The import function is looked up at call time so tests can simulate a missing package.
def _import(name: str):
    return importlib.import_module(name)


def _driver_present() -> bool:
    """Whether the NVIDIA driver's library (libcuda) is installed on this machine."""
    import ctypes.util

    return ctypes.util.find_library("cuda") is not None


def _probe_numpy() -> BackendStatus:
    xp = _import("array_api_compat.numpy")
    return BackendStatus("numpy", True, devices=tuple(xp.__array_namespace_info__().devices()))


def _probe_array_api_strict() -> BackendStatus:
    try:
        xp = _import("array_api_strict")
    except ImportError as exc:
        return BackendStatus(
            "array_api_strict", False,
            f"not installed ({exc}); install it with: pip install 'xpml[test]'",
        )
    return BackendStatus("array_api_strict", True, devices=tuple(xp.__array_namespace_info__().devices()))


def _probe_cupy() -> BackendStatus:
    try:
        cupy = _import("cupy")
        _import("array_api_compat.cupy")
    except ImportError as exc:
        return BackendStatus(
            "cupy", False,
            f"not installed ({exc}); install it with: pip install 'xpml[cuda12]' or 'xpml[cuda13]'",
        )
    except Exception as exc:  # a CuPy build against a missing CUDA library fails here
        return BackendStatus("cupy", False, f"CUDA present but broken: import failed: {exc}")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        # Without an NVIDIA driver the runtime reports an "insufficient driver"; that is a machine
        # without a GPU, not a broken set-up. A driver that is present and fails is broken.
        if "NoDevice" in str(exc) or not _driver_present():
            return BackendStatus("cupy", False, f"no CUDA device: {exc}")
        return BackendStatus("cupy", False, f"CUDA present but broken: the driver failed: {exc}")
    if count < 1:
        return BackendStatus("cupy", False, "no CUDA device: the driver reports 0 devices")
    try:
        # An elementwise kernel and a reduction exercise the compiler and the driver, which is
        # where broken CUDA set-ups fail; a device count alone does not.
        with cupy.cuda.Device(0):
            x = cupy.arange(8, dtype=cupy.float32)
            total = float((x * 2.0).sum())
        if total != 56.0:
            return BackendStatus("cupy", False, f"CUDA present but broken: a test reduction gave {total}, not 56")
    except Exception as exc:
        return BackendStatus("cupy", False, f"CUDA present but broken: a test kernel failed: {exc}")
    return BackendStatus("cupy", True, devices=tuple(cupy.cuda.Device(i) for i in range(count)))


_PROBES = {
    "numpy": _probe_numpy,
    "cupy": _probe_cupy,
    "array_api_strict": _probe_array_api_strict,
}


def list_backends() -> list[BackendStatus]:
    """Every backend xpml knows, with whether it is usable here and, if not, why."""
    return [_PROBES[name]() for name in BACKEND_NAMES]


def _namespace_module(name: str):
    return _import("array_api_strict" if name == "array_api_strict" else f"array_api_compat.{name}")


def _resolve_device(name: str, xp, device, status: BackendStatus):
    if device is None:
        return xp.__array_namespace_info__().default_device()
    if name == "cupy":
        cupy = _import("cupy")
        if isinstance(device, str):
            device = int(device) if device.isdigit() else device
        if isinstance(device, int):
            if not 0 <= device < len(status.devices):
                raise BackendUnavailableError(
                    f"cupy has {len(status.devices)} CUDA device(s); there is no device {device}"
                )
            return cupy.cuda.Device(device)
        return device
    devices = xp.__array_namespace_info__().devices()
    for d in devices:
        if d == device or str(d) == str(device) or (isinstance(device, str) and f"'{device}'" in str(d)):
            return d
    raise BackendUnavailableError(
        f"{name} has no device {device!r}; its devices are: {', '.join(str(d) for d in devices)}"
    )


def get_backend(name: str | Backend | None = None, /, *, device=None) -> Backend:
    """Return the :class:`Backend` called ``name``.

    Parameters
    ----------
    name : str, Backend or None
        ``"numpy"``, ``"cupy"``, ``"array_api_strict"`` or ``"auto"``, optionally with
        ``":DEVICE"``. None reads ``$XPML_BACKEND`` and falls back to ``"auto"``. A
        :class:`Backend` is returned as it is.
    device : optional
        The device, when not given in ``name``; default the namespace's default device.

    Raises
    ------
    ValueError
        For a name xpml does not know.
    BackendUnavailableError
        For a backend that is not usable here; the message says why (not installed, no CUDA
        device, or CUDA present but broken). There is no fallback to another backend.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip() or "auto"
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a string, got {type(name).__name__}")
    base, _, dev = name.strip().partition(":")
    base = base.lower().replace("-", "_")
    if dev:
        if device is not None:
            raise ValueError(f"device given twice: in the name {name!r} and as device={device!r}")
        device = dev
    if base == "auto":
        cupy_status = _probe_cupy()
        base = "cupy" if cupy_status.usable else "numpy"
    if base not in _PROBES:
        raise ValueError(
            f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES + ('auto',))}"
        )
    status = _PROBES[base]()
    if not status.usable:
        raise BackendUnavailableError(f"backend {base!r} is not usable: {status.reason}")
    xp = _namespace_module(base)
    return Backend(base, xp, _resolve_device(base, xp, device, status))


def as_backend(xp=None, /, *, device=None) -> Backend:
    """The :class:`Backend` for a creation function's ``xp=None, device=None`` keywords.

    ``xp`` may be None (NumPy on the CPU), a backend name, a :class:`Backend`, or a namespace
    module (``array_api_compat.numpy``, ``array_api_strict``, a CuPy namespace). ``device``
    overrides the backend's default device.
    """
    if xp is None:
        return get_backend("numpy", device=device)
    if isinstance(xp, str):
        return get_backend(xp, device=device)
    if isinstance(xp, Backend):
        return xp if device is None or device == xp.device else get_backend(xp.name, device=device)
    import types

    import array_api_compat

    if isinstance(xp, types.ModuleType):
        for name in BACKEND_NAMES:
            if getattr(array_api_compat, f"is_{name}_namespace")(xp):
                return get_backend(name, device=device)
    raise TypeError(f"not a namespace, backend or backend name: {xp!r}")


def backend_of(x, /) -> Backend:
    """The :class:`Backend` an array lives on."""
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    for name in BACKEND_NAMES:
        checker = getattr(array_api_compat, f"is_{name}_namespace")
        if checker(xp):
            return Backend(name, xp, array_api_compat.device(x))
    raise TypeError(f"arrays of namespace {xp.__name__} are not supported by xpml")


def check_on_backend(x, bk: Backend, /, *, name: str = "x", owner: str = "the model", target: str = "") -> None:
    """Raise :class:`BackendMismatchError` unless ``x`` lives in ``bk``'s namespace and on its device.

    For objects whose state lives on one backend (a fitted net, a fitted preprocessor): the message
    names both places and the ``backend.to_backend(name, target)`` call that moves ``x``, where
    ``target`` is how the caller reaches ``bk`` (default: its label).
    """
    from ._namespace import BackendMismatchError, namespace_and_device

    xp, device = namespace_and_device(x)
    if xp is bk.xp and device == bk.device:
        return
    target = target or repr(bk.label)
    raise BackendMismatchError(
        f"{name} lives on {backend_of(x).label!r} but {owner} lives on {bk.label!r}; "
        f"move it first with backend.to_backend({name}, {target})"
    )
