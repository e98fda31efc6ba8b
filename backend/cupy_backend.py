"""The CuPy backend: NVIDIA GPUs through CUDA."""

from __future__ import annotations

import sys

from . import _adapter
from ._adapter import Adapter, BackendStatus, BackendUnavailableError

__all__ = ["CupyAdapter"]


def _driver_present() -> bool:
    """Whether the NVIDIA driver's library (libcuda) is installed on this machine."""
    import ctypes.util

    return ctypes.util.find_library("cuda") is not None


class CupyAdapter(Adapter):
    """CuPy through array-api-compat, on CUDA devices."""

    name = "cupy"
    install = "{xpml[cuda12]} or {xpml[cuda13]}"
    matmul_out = True

    def probe(self) -> BackendStatus:
        try:
            cupy = _adapter._import("cupy")
            _adapter._import("array_api_compat.cupy")
        except ImportError as exc:
            return self.not_installed(exc)
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

    def resolve_device(self, xp, device, status):
        if device is None:
            return xp.__array_namespace_info__().default_device()
        if isinstance(device, str):
            if not device.isdigit():
                raise BackendUnavailableError(
                    f"cupy has no device {device!r}; use a device number: cupy:0, cupy:1, ...")
            device = int(device)
        if isinstance(device, int):
            if not 0 <= device < len(status.devices):
                raise BackendUnavailableError(
                    f"cupy has {len(status.devices)} CUDA device(s); there is no device {device}"
                )
            return _adapter._import("cupy").cuda.Device(device)
        return device

    def device_id(self, xp, device) -> str | None:
        return str(device.id)

    def device_name(self, device) -> str:
        props = _adapter._import("cupy").cuda.runtime.getDeviceProperties(device.id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def on_cpu(self, device) -> bool:
        return False

    def to_numpy(self, x):
        return x.get()

    def synchronize(self, device) -> None:
        device.synchronize()

    def synchronize_array(self, x) -> None:
        x.device.synchronize()

    def synchronize_all(self) -> None:
        cupy = sys.modules.get("cupy")
        if cupy is None:
            return
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:
            # CuPy imported (by a probe, say) on a machine with no usable GPU: no work can be queued.
            count = 0
        for i in range(count):
            cupy.cuda.Device(i).synchronize()

    def memory(self, device) -> int | None:
        return int(_adapter._import("cupy").cuda.Device(device.id).mem_info[1])
