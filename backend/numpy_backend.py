"""The NumPy backend: host memory, eager, the reference every other backend is tested against."""

from __future__ import annotations

import array_api_compat

from ._adapter import Adapter, BackendStatus, _import

__all__ = ["NumpyAdapter"]


class NumpyAdapter(Adapter):
    """NumPy through array-api-compat, on the CPU."""

    name = "numpy"
    matmul_out = True

    def namespace(self):
        from . import _adapter

        return _adapter._import("array_api_compat.numpy")

    def owns_namespace(self, xp) -> bool:
        return array_api_compat.is_numpy_namespace(xp)

    def owns_array(self, x) -> bool:
        return array_api_compat.is_numpy_array(x)

    def probe(self) -> BackendStatus:
        xp = self.namespace()
        return BackendStatus(self.name, True, devices=tuple(xp.__array_namespace_info__().devices()))

    def device_id(self, xp, device) -> str | None:
        return None

    def to_numpy(self, x):
        return x if type(x).__module__ == "numpy" else _import("numpy").asarray(x)
