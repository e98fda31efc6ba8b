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

import os
from dataclasses import dataclass, field
from typing import Any

from . import _registry
from ._adapter import BackendStatus, BackendUnavailableError
from ._registry import PROBES as _PROBES
from .errors import InputError, InputTypeError

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
    "register_backend",
]

BACKEND_NAMES = tuple(_registry.LISTED)  # the built-in backends, in the order `xpml backends` lists them
ENV_VAR = "XPML_BACKEND"
# What "auto" picks: the first of these whose probe says usable.
_AUTO = ("cupy", "numpy")
register_backend = _registry.register_backend


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

    Examples
    --------
    >>> from xpml import backend
    >>> bk = backend.get_backend("numpy")
    >>> bk
    Backend(name='numpy', device='cpu')
    >>> bk.label, bk.on_cpu
    ('numpy', True)
    >>> x = bk.asarray([1.0, 2.0])
    >>> x.dtype, backend.backend_of(x) == bk
    (dtype('float64'), True)
    """

    name: str
    xp: Any = field(repr=False)
    device: Any

    @property
    def adapter(self):
        """The :class:`backend._adapter.Adapter` of this backend: what it does its own way."""
        return _registry.ADAPTERS[self.name]

    @property
    def label(self) -> str:
        """Short readable id that :func:`get_backend` turns back into this backend: ``numpy``,
        ``cupy:0``, ``array_api_strict:device1``, ``torch:cpu``, ``torch:cuda:0``, ``jax:cpu``,
        ``jax:gpu:0``."""
        dev = self.adapter.device_id(self.xp, self.device)
        return self.name if dev is None else f"{self.name}:{dev}"

    @property
    def device_name(self) -> str:
        """Human-readable name of the device, for results tables."""
        return self.adapter.device_name(self.device)

    @property
    def on_cpu(self) -> bool:
        """Whether arrays of this backend live in host memory (NumPy, array-api-strict, a CPU device)."""
        return self.adapter.on_cpu(self.device)

    def asarray(self, obj, /, *, dtype=None, copy=None):
        """Put ``obj`` (a host array, a list, or an array of this backend) on this backend.

        Nothing is narrowed silently: float64 data for JAX without 64-bit types is an error that
        says how to enable them (or to convert the data to float32 first). Integer data there
        becomes int32, JAX's index dtype, when its values fit.

        Examples
        --------
        >>> from xpml import backend
        >>> bk = backend.get_backend("array_api_strict")
        >>> bk.asarray([1, 2]).dtype, bk.asarray([1.0], dtype=bk.xp.float32).dtype
        (array_api_strict.int64, array_api_strict.float32)
        """
        obj = self.adapter.admissible(obj, dtype)
        return self.xp.asarray(obj, dtype=dtype, device=self.device, copy=copy)

    def __str__(self) -> str:
        return self.label

    def __reduce__(self):
        return get_backend, (self.label,)


def list_backends() -> list[BackendStatus]:
    """Every backend xpml knows, with whether it is usable here and, if not, why.

    Examples
    --------
    >>> from xpml import backend
    >>> [status.name for status in backend.list_backends()][:3]
    ['numpy', 'cupy', 'array_api_strict']
    >>> backend.list_backends()[0].usable
    True
    """
    return [_PROBES[name]() for name in _registry.LISTED]


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

    Examples
    --------
    >>> from xpml import backend
    >>> backend.get_backend("numpy")
    Backend(name='numpy', device='cpu')
    >>> backend.get_backend("array_api_strict").name
    'array_api_strict'
    >>> try:
    ...     backend.get_backend("tensorflow")
    ... except ValueError as exc:
    ...     print(exc)
    unknown backend 'tensorflow'; choose one of: numpy, cupy, array_api_strict, torch, jax, auto
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip() or "auto"
    if not isinstance(name, str):
        raise InputTypeError(f"backend name must be a string, got {type(name).__name__}")
    base, _, dev = name.strip().partition(":")
    base = base.lower().replace("-", "_")
    if dev:
        if device is not None:
            raise InputError(f"device given twice: in the name {name!r} and as device={device!r}")
        device = dev
    if base == "auto":
        base = next(b for b in _AUTO if b == _AUTO[-1] or _PROBES[b]().usable)
    if base not in _PROBES:
        raise InputError(
            f"unknown backend {name!r}; choose one of: {', '.join((*_registry.LISTED, 'auto'))}"
        )
    status = _PROBES[base]()
    if not status.usable:
        raise BackendUnavailableError(f"backend {base!r} is not usable: {status.reason}")
    adapter = _registry.ADAPTERS[base]
    xp = adapter.namespace()
    return Backend(base, xp, adapter.resolve_device(xp, device, status))


def as_backend(xp=None, /, *, device=None) -> Backend:
    """The :class:`Backend` for a creation function's ``xp=None, device=None`` keywords.

    ``xp`` may be None (NumPy on the CPU), a backend name, a :class:`Backend`, or a namespace
    module (``array_api_compat.numpy``, ``array_api_strict``, a CuPy namespace, ``torch`` or
    ``array_api_compat.torch``, ``jax.numpy``). ``device`` overrides the backend's default device.
    A namespace with a device object, as arrays report theirs (``backend.namespace_and_device``),
    is taken as it is: the usability probe that names go through (a test kernel on the device)
    is skipped, so code that builds a backend from its inputs' namespace pays nothing for it.

    Examples
    --------
    >>> import array_api_strict
    >>> from xpml import backend
    >>> backend.as_backend()
    Backend(name='numpy', device='cpu')
    >>> backend.as_backend(array_api_strict).name
    'array_api_strict'
    """
    if xp is None:
        return get_backend("numpy", device=device)
    if isinstance(xp, str):
        return get_backend(xp, device=device)
    if isinstance(xp, Backend):
        return xp if device is None or device == xp.device else get_backend(xp.name, device=device)
    import types

    adapter = _registry.adapter_of_namespace(xp) if isinstance(xp, types.ModuleType) else None
    if adapter is not None:
        if device is None or isinstance(device, (str, int)):
            return get_backend(adapter.name, device=device)
        return Backend(adapter.name, adapter.namespace(), adapter.device_from_array(device))
    raise InputTypeError(
        f"not a namespace, backend or backend name: {xp!r}; give one of {', '.join(BACKEND_NAMES)} "
        "(a name such as 'torch:cuda:0', a Backend, or the namespace module)"
    )


def backend_of(x, /) -> Backend:
    """The :class:`Backend` an array lives on.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> backend.backend_of(np.zeros(3))
    Backend(name='numpy', device='cpu')
    """
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    adapter = _registry.adapter_of_namespace(xp)
    if adapter is not None:
        return Backend(adapter.name, xp, array_api_compat.device(x))
    raise InputTypeError(f"arrays of namespace {xp.__name__} are not supported by xpml")


def check_on_backend(x, bk: Backend, /, *, name: str = "x", owner: str = "the model", target: str = "") -> None:
    """Raise :class:`BackendMismatchError` unless ``x`` lives in ``bk``'s namespace and on its device.

    For objects whose state lives on one backend (a fitted net, a fitted preprocessor): the message
    names both places and the ``backend.to_backend(name, target)`` call that moves ``x``, where
    ``target`` is how the caller reaches ``bk`` (default: its label).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend
    >>> bk = backend.get_backend("array_api_strict")
    >>> backend.check_on_backend(np.zeros(2), bk, name="X")
    Traceback (most recent call last):
    ...
    xpml.backend.errors.BackendMismatchError: X lives on 'numpy' but the model lives on 'array_api_strict';
    move it first with backend.to_backend(X, 'array_api_strict')
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
