"""Choosing a backend by name, and telling which backends are usable and why.

A backend is a namespace plus a device. Names are ``numpy``, ``cupy``, ``array_api_strict``,
``torch``, ``jax`` and ``auto`` (CuPy when a CUDA device really works, else NumPy), optionally
followed by ``:DEVICE``: ``cupy:1``, ``array_api_strict:device1``, ``torch:cpu``, ``torch:cuda:0``,
``jax:cpu``, ``jax:gpu:0``. With no name, the environment variable ``XPML_BACKEND`` decides, and
``auto`` when it is unset.

"Usable" means the package imports, sees at least one device and runs a tiny kernel and a
reduction correctly there. Asking for a backend that is not usable raises
:class:`BackendUnavailableError` saying which of those steps failed; xpml never runs on NumPy in
its place. PyTorch and JAX are usable on the CPU without a GPU; their CUDA devices are checked
the same way, and :class:`BackendStatus` says why a package has none.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import BackendUnavailableError  # defined with xpml's other errors; re-exported here

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

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict", "torch", "jax")
ENV_VAR = "XPML_BACKEND"

# How to install each optional backend, for the "not installed" reasons.
# ``{xpml[extra]}`` becomes the command that fits how xpml was installed (a checkout or a wheel).
_INSTALL = {
    "array_api_strict": "pip install array-api-strict",
    "cupy": "{xpml[cuda12]} or {xpml[cuda13]}",
    "torch": "{xpml[torch]} (the CPU build: pip install torch --index-url "
             "https://download.pytorch.org/whl/cpu)",
    "jax": "{xpml[jax]} (with CUDA: pip install 'jax[cuda12]')",
}
_X64_HINT = ("enable 64-bit types with jax.config.update('jax_enable_x64', True) (or JAX_ENABLE_X64=1) "
             "before any JAX array is created")




@dataclass(frozen=True)
class BackendStatus:
    """Whether one backend can be used here; ``reason`` says why not when it cannot.

    ``note`` says what a usable backend lacks (PyTorch without a CUDA device, JAX without 64-bit
    types).
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


@dataclass(frozen=True)
class Backend:
    """A namespace and a device: where arrays are created and computed.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"cupy"``, ``"array_api_strict"``, ``"torch"`` or ``"jax"``.
    xp : module
        The array namespace (``array_api_compat.numpy``, ``array_api_compat.cupy``,
        ``array_api_strict``, ``array_api_compat.torch`` or ``jax.numpy``).
    device : object
        The device arrays are created on; every creation passes it explicitly.

    Notes
    -----
    A backend pickles (and deep-copies) as its :attr:`label`, so an object holding one can be
    saved and loaded, or sent to another process, where that backend is usable too.
    """

    name: str
    xp: Any = field(repr=False)
    device: Any

    @property
    def label(self) -> str:
        """Short readable id that :func:`get_backend` turns back into this backend: ``numpy``,
        ``cupy:0``, ``array_api_strict:device1``, ``torch:cpu``, ``torch:cuda:0``, ``jax:cpu``,
        ``jax:gpu:0``."""
        if self.name == "numpy":
            return self.name
        if self.name == "array_api_strict" and self.device == self.xp.__array_namespace_info__().default_device():
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
        if self.name == "torch" and self.device.type == "cuda":
            return importlib.import_module("torch").cuda.get_device_name(self.device)
        if self.name == "jax" and self.device.platform != "cpu":
            return str(self.device.device_kind)
        if self.name in ("numpy", "torch", "jax"):
            return _cpu_name()
        return str(self.device)

    @property
    def on_cpu(self) -> bool:
        """Whether arrays of this backend live in host memory (NumPy, array-api-strict, a CPU device)."""
        if self.name == "torch":
            return self.device.type == "cpu"
        if self.name == "jax":
            return self.device.platform == "cpu"
        return self.name != "cupy"

    def asarray(self, obj, /, *, dtype=None, copy=None):
        """Put ``obj`` (a host array, a list, or an array of this backend) on this backend.

        Nothing is narrowed silently: float64 data for JAX without 64-bit types is an error that
        says how to enable them (or to convert the data to float32 first). Integer data there
        becomes int32, JAX's index dtype, when its values fit.
        """
        obj = _admissible(self, obj, dtype)
        return self.xp.asarray(obj, dtype=dtype, device=self.device, copy=copy)

    def __str__(self) -> str:
        return self.label

    def __reduce__(self):
        return get_backend, (self.label,)


def _admissible(bk: Backend, obj, dtype):
    """``obj`` ready for ``bk.xp.asarray``: refuse what would be narrowed, copy what torch cannot share."""
    import numpy as np

    if not isinstance(obj, (np.ndarray, np.generic)):
        return obj
    if bk.name == "jax" and dtype is None and not _jax_x64():
        if obj.dtype == np.float64:
            raise ValueError(
                "float64 data cannot go to jax: JAX runs without 64-bit types here and would round it "
                f"to float32. Either {_X64_HINT}, or convert the data yourself first "
                "(x.astype(numpy.float32))."
            )
        if obj.dtype.kind in "iu" and obj.dtype.itemsize == 8:
            info = np.iinfo(np.int32)
            if obj.size and (int(obj.min()) < info.min or int(obj.max()) > info.max):
                raise ValueError(
                    f"{obj.dtype} data with values outside int32 cannot go to jax without 64-bit types; "
                    f"{_X64_HINT}"
                )
            return obj.astype(np.int32)
    if bk.name == "torch" and isinstance(obj, np.ndarray):
        # torch.asarray shares a NumPy array's memory, which it cannot do for negative strides or
        # a foreign byte order, and should not do for read-only memory it may later write into.
        if (not obj.flags.writeable or any(st < 0 for st in obj.strides)
                or obj.dtype.byteorder not in "=|"):
            obj = np.array(obj, dtype=obj.dtype.newbyteorder("="), order="C")
    return obj


def _jax_x64() -> bool:
    return bool(_import("jax").config.jax_enable_x64)


def _device_id(bk: Backend) -> str:
    if bk.name == "cupy":
        return str(bk.device.id)
    if bk.name == "array_api_strict":
        return str(bk.device).split("'")[1] if "'" in str(bk.device) else str(bk.device)
    if bk.name == "jax":
        platform = bk.device.platform
        index = _import("jax").devices(platform).index(bk.device)
        return platform if platform == "cpu" and index == 0 else f"{platform}:{index}"
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


def _not_installed(name: str, exc: Exception) -> BackendStatus:
    import re

    from .._install import install_hint

    how = re.sub(r"\{xpml\[(\w+)\]\}", lambda m: install_hint(m.group(1)), _INSTALL[name])
    return BackendStatus(name, False, f"not installed ({exc}); install it with: {how}")


def _probe_numpy() -> BackendStatus:
    xp = _import("array_api_compat.numpy")
    return BackendStatus("numpy", True, devices=tuple(xp.__array_namespace_info__().devices()))


def _probe_array_api_strict() -> BackendStatus:
    try:
        xp = _import("array_api_strict")
    except ImportError as exc:
        return _not_installed("array_api_strict", exc)
    return BackendStatus("array_api_strict", True, devices=tuple(xp.__array_namespace_info__().devices()))


def _probe_cupy() -> BackendStatus:
    try:
        cupy = _import("cupy")
        _import("array_api_compat.cupy")
    except ImportError as exc:
        return _not_installed("cupy", exc)
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


def _kernel_fails(xp, device) -> str:
    """Why a tiny elementwise kernel and reduction fail on ``device``, or "" when they work."""
    try:
        x = xp.arange(8, dtype=xp.float32, device=device)
        total = float(xp.sum(x * 2.0))
    except Exception as exc:
        return f"a test kernel failed: {exc}"
    return "" if total == 56.0 else f"a test reduction gave {total}, not 56"


def _import_with_cpu(name: str, package: str, namespace: str, cpu_device):
    """``(package, namespace, cpu)`` once both import and a kernel runs on the CPU device that
    ``cpu_device(package)`` gives, or the :class:`BackendStatus` saying which step failed."""
    try:
        pkg, xp = _import(package), _import(namespace)
    except ImportError as exc:
        return _not_installed(name, exc)
    except Exception as exc:
        return BackendStatus(name, False, f"broken: import failed: {exc}")
    try:
        cpu = cpu_device(pkg)
    except Exception as exc:
        return BackendStatus(name, False, f"broken: it sees no CPU device: {exc}")
    failure = _kernel_fails(xp, cpu)
    if failure:
        return BackendStatus(name, False, f"broken on the CPU: {failure}")
    return pkg, xp, cpu


def _probe_torch() -> BackendStatus:
    found = _import_with_cpu("torch", "torch", "array_api_compat.torch", lambda torch: torch.device("cpu"))
    if isinstance(found, BackendStatus):
        return found
    torch, xp, cpu = found
    devices = [cpu]
    if torch.version.cuda is None:
        note = f"no CUDA device: this torch ({torch.__version__}) is a CPU-only build"
    else:
        try:
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception as exc:
            count, note = 0, f"CUDA present but broken: {exc}"
        else:
            note = "" if count else "no CUDA device: torch.cuda.is_available() is False"
        for i in range(count):
            failure = _kernel_fails(xp, torch.device("cuda", i))
            if failure:
                note = f"CUDA present but broken: on cuda:{i}, {failure}"
                break
            devices.append(torch.device("cuda", i))
    return BackendStatus("torch", True, devices=tuple(devices), note=note)


def _probe_jax() -> BackendStatus:
    found = _import_with_cpu("jax", "jax", "jax.numpy", lambda jax: jax.devices("cpu")[0])
    if isinstance(found, BackendStatus):
        return found
    jax, xp, _ = found
    devices, notes = list(jax.devices("cpu")), []
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        notes.append("no CUDA device: this jax has no CUDA support (pip install 'jax[cuda12]')")
        gpus = []
    for d in gpus:
        failure = _kernel_fails(xp, d)
        if failure:
            notes.append(f"CUDA present but broken: on {d}, {failure}")
            break
        devices.append(d)
    if not _jax_x64():
        notes.append(f"float32 only: for float64, {_X64_HINT}")
    return BackendStatus("jax", True, devices=tuple(devices), note="; ".join(notes))


_PROBES = {
    "numpy": _probe_numpy,
    "cupy": _probe_cupy,
    "array_api_strict": _probe_array_api_strict,
    "torch": _probe_torch,
    "jax": _probe_jax,
}


def list_backends() -> list[BackendStatus]:
    """Every backend xpml knows, with whether it is usable here and, if not, why."""
    return [_PROBES[name]() for name in BACKEND_NAMES]


def _namespace_module(name: str):
    if name == "array_api_strict":
        return _import("array_api_strict")
    if name == "jax":
        return _import("jax.numpy")
    return _import(f"array_api_compat.{name}")


def _resolve_device(name: str, xp, device, status: BackendStatus):
    if name == "torch":
        return _torch_device(device, status)
    if name == "jax":
        return _jax_device(device, status)
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


def _torch_device(device, status: BackendStatus):
    torch = _import("torch")
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str):
        device = device.lower()
    spec = f"cuda:{device}" if isinstance(device, int) or (isinstance(device, str) and device.isdigit()) else device
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is not None and dev.type == "cpu":
        return torch.device("cpu")  # tensors report "cpu" without an index
    if dev is None or dev.type != "cuda":
        raise BackendUnavailableError(f"torch has no device {device!r} for xpml; use cpu or cuda:N")
    index = 0 if dev.index is None else dev.index
    cuda = [d for d in status.devices if d.type == "cuda"]
    if not cuda:
        raise BackendUnavailableError(f"torch:cuda:{index} is not usable: {status.note}")
    if index >= len(cuda):
        raise BackendUnavailableError(f"torch has {len(cuda)} CUDA device(s); there is no cuda:{index}")
    return cuda[index]


def _jax_device(device, status: BackendStatus):
    jax = _import("jax")
    if device is None:
        return jax.devices()[0]
    if not isinstance(device, (str, int)):
        if device in status.devices:
            return device
        raise BackendUnavailableError(f"jax has no usable device {device!r}; its devices are: {_listing(status)}")
    platform, _, index = str(device).lower().partition(":")
    if platform.isdigit():
        platform, index = "", platform
    platform = "gpu" if platform == "cuda" else platform
    devices = [d for d in status.devices if not platform or d.platform == platform]
    if not devices:
        cuda = [part for part in status.note.split("; ") if "CUDA" in part]
        if platform == "gpu" and cuda:
            raise BackendUnavailableError(f"jax:{device} is not usable: {cuda[0]}")
        raise BackendUnavailableError(f"jax has no device {device!r}; its devices are: {_listing(status)}")
    if index and not index.isdigit():
        raise BackendUnavailableError(f"jax has no device {device!r}; its devices are: {_listing(status)}")
    i = int(index or 0)
    if i >= len(devices):
        raise BackendUnavailableError(f"jax has {len(devices)} {platform} device(s); there is no {platform}:{i}")
    return devices[i]


def _listing(status: BackendStatus) -> str:
    return ", ".join(str(d) for d in status.devices)


def get_backend(name: str | Backend | None = None, /, *, device=None) -> Backend:
    """Return the :class:`Backend` called ``name``.

    Parameters
    ----------
    name : str, Backend or None
        ``"numpy"``, ``"cupy"``, ``"array_api_strict"``, ``"torch"``, ``"jax"`` or ``"auto"``,
        optionally with ``":DEVICE"`` (``"torch:cuda:0"``, ``"jax:gpu:0"``, ``"cupy:1"``). None
        reads ``$XPML_BACKEND`` and falls back to ``"auto"``. A :class:`Backend` is returned as it
        is.
    device : optional
        The device, when not given in ``name``: a string as after the colon, or the package's
        own device object. Default: the namespace's default device (the CPU for torch, JAX's
        default device for jax).

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
    module (``array_api_compat.numpy``, ``array_api_strict``, a CuPy namespace, ``torch`` or
    ``array_api_compat.torch``, ``jax.numpy``). ``device`` overrides the backend's default device.
    A namespace with a device object, as arrays report theirs (``backend.namespace_and_device``),
    is taken as it is: the usability probe that names go through (a test kernel on the device)
    is skipped, so code that builds a backend from its inputs' namespace pays nothing for it.
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
                if device is None or isinstance(device, (str, int)):
                    return get_backend(name, device=device)
                if name == "torch" and device.type == "cpu":
                    device = _import("torch").device("cpu")  # tensors report "cpu" without an index
                return Backend(name, _namespace_module(name), device)
    raise TypeError(
        f"not a namespace, backend or backend name: {xp!r}; give one of {', '.join(BACKEND_NAMES)} "
        "(a name such as 'torch:cuda:0', a Backend, or the namespace module)"
    )


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
