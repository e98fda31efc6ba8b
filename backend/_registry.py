"""The one table of backends: name -> adapter (:class:`backend._adapter.Adapter`).

Adding a backend is writing its adapter module and adding it here (or, from outside the package,
calling :func:`register_backend`, as tests/_readonly.py does for its test-only backend). Nothing
else in xpml names a backend.
"""

from __future__ import annotations

from ._adapter import Adapter
from .cupy_backend import CupyAdapter
from .errors import InputTypeError
from .jax_backend import JaxAdapter
from .numpy_backend import NumpyAdapter
from .strict_backend import StrictAdapter
from .torch_backend import TorchAdapter

__all__ = ["ADAPTERS", "PROBES", "adapter", "adapter_of_array", "adapter_of_namespace", "register_backend"]

# Ordered: the order of `xpml backends` and of the namespace lookups below.
ADAPTERS: dict[str, Adapter] = {}
# name -> the probe get_backend and list_backends call (the adapter's, unless a test replaces it).
PROBES: dict = {}
# Backends list_backends() reports (registered with listed=True).
LISTED: list[str] = []
_BY_NAMESPACE: dict[int, Adapter] = {}


def register_backend(adapter: Adapter, /, *, listed: bool = True) -> Adapter:
    """Make ``adapter`` a backend: :func:`backend.get_backend` accepts its name from now on.

    ``listed=False`` keeps it out of :func:`backend.list_backends` (a test-only backend).
    Registering a name again replaces the adapter.

    Examples
    --------
    >>> from xpml import backend
    >>> adapter = backend.get_backend("numpy").adapter
    >>> backend.register_backend(adapter).name  # registering a name again replaces its adapter
    'numpy'
    >>> backend.get_backend("numpy").adapter is adapter
    True
    """
    if not isinstance(adapter, Adapter) or not adapter.name or ":" in adapter.name:
        raise InputTypeError("register_backend needs an Adapter instance whose name is a non-empty word without ':'")
    ADAPTERS[adapter.name] = adapter
    PROBES[adapter.name] = adapter.probe
    if listed and adapter.name not in LISTED:
        LISTED.append(adapter.name)
    _BY_NAMESPACE.clear()
    return adapter


def adapter(name: str, /) -> Adapter:
    """The adapter registered as ``name`` (KeyError when there is none)."""
    return ADAPTERS[name]


def adapter_of_namespace(xp, /) -> Adapter | None:
    """The adapter of a namespace module (the first registered that claims it), or None."""
    found = _BY_NAMESPACE.get(id(xp))
    if found is None:
        for candidate in ADAPTERS.values():
            if candidate.owns_namespace(xp):
                found = _BY_NAMESPACE[id(xp)] = candidate
                candidate.first_use()  # arrays made outside xpml reach it: set the backend up
                break
    return found


def adapter_of_array(x, /) -> Adapter | None:
    """The adapter of an array's namespace, or None."""
    import array_api_compat

    try:
        return adapter_of_namespace(array_api_compat.array_namespace(x))
    except TypeError:
        return None


for _adapter in (NumpyAdapter(), CupyAdapter(), StrictAdapter(), TorchAdapter(), JaxAdapter()):
    register_backend(_adapter)
del _adapter
