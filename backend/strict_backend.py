"""The array-api-strict backend: the standard's reference namespace, which refuses anything beyond it.

Its second device (``array_api_strict:device1``) behaves as a GPU would for placement: an array
created without ``device=`` lands on the default device, and mixing the two raises.
"""

from __future__ import annotations

from ._adapter import Adapter, BackendStatus

__all__ = ["StrictAdapter"]


class StrictAdapter(Adapter):
    """array-api-strict on its devices (all in host memory)."""

    name = "array_api_strict"
    install = "pip install array-api-strict"

    def namespace(self):
        from . import _adapter

        return _adapter._import("array_api_strict")

    def probe(self) -> BackendStatus:
        try:
            xp = self.namespace()
        except ImportError as exc:
            return self.not_installed(exc)
        return BackendStatus(self.name, True, devices=tuple(xp.__array_namespace_info__().devices()))

    def resolve_device(self, xp, device, status):
        if isinstance(device, str) and device:
            for d in xp.__array_namespace_info__().devices():
                if f"'{device}'" in str(d):
                    return d
        return super().resolve_device(xp, device, status)

    def device_id(self, xp, device) -> str | None:
        if device == xp.__array_namespace_info__().default_device():
            return None
        return str(device).split("'")[1] if "'" in str(device) else str(device)

    def device_name(self, device) -> str:
        return str(device)

    def to_numpy(self, x):
        import numpy as np

        xp = x.__array_namespace__()
        return np.asarray(x.to_device(xp.__array_namespace_info__().default_device()))
