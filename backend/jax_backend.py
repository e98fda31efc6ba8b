"""The JAX backend: its CPU and GPU devices, compiled with ``jax.jit``.

Compiled programs are kept across runs in JAX's persistent compilation cache, in xpml's per-user
cache folder (``platformdirs.user_cache_dir("xpml")/jax``), set up the first time xpml uses JAX:
a command's first kNN ``predict`` then loads its kernels instead of compiling them again. A cache
folder the user chose (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left as it is;
``XPML_JAX_CACHE=0`` turns xpml's off.
"""

from __future__ import annotations

import functools
import os
import sys

from . import _adapter
from ._adapter import Adapter, BackendStatus, BackendUnavailableError, NativeConv2d, cpu_name, kernel_fails
from .errors import InputError

__all__ = ["JaxAdapter", "X64_HINT", "compilation_cache_dir"]

X64_HINT = ("enable 64-bit types with jax.config.update('jax_enable_x64', True) (or JAX_ENABLE_X64=1) "
            "before any JAX array is created")
CACHE_ENV = "XPML_JAX_CACHE"


def _x64() -> bool:
    return bool(_adapter._import("jax").config.jax_enable_x64)


def compilation_cache_dir():
    """The folder xpml gives JAX's persistent compilation cache: ``<user cache>/xpml/jax``, or None
    when ``XPML_JAX_CACHE=0`` or platformdirs is missing."""
    if os.environ.get(CACHE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import platformdirs
    except ImportError:
        return None
    return os.path.join(platformdirs.user_cache_dir("xpml"), "jax")


_CACHE_SET_UP = False


def _set_up_cache(jax) -> None:
    """Point JAX's persistent compilation cache at xpml's folder, once, unless the user chose one."""
    global _CACHE_SET_UP
    if _CACHE_SET_UP:
        return
    _CACHE_SET_UP = True
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return  # the user's own setting wins
    folder = compilation_cache_dir()
    if folder is None:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # an unwritable cache folder costs compile time, never a run
    jax.config.update("jax_compilation_cache_dir", folder)
    # xpml's kernels compile in well under JAX's default threshold of one second each, and a
    # command compiles dozens of them: cache them all (each entry is a few tens of KiB).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@functools.cache
def _native_conv2d() -> NativeConv2d:
    import jax
    import jax.numpy as jnp
    from jax import lax

    def conv(x, w, stride, pad, dilation):
        # HIGHEST: full float32 products on GPUs too (the default may use TF32 there).
        return lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                        rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                        precision=lax.Precision.HIGHEST)

    @functools.partial(jax.jit, static_argnums=(3, 4, 5))
    def conv_forward(x, w, b, stride, pad, dilation):
        return conv(x, w, stride, pad, dilation) + b[None, :, None, None]

    @functools.partial(jax.jit, static_argnums=(3, 4, 5))
    def conv_backward(dout, x, w, stride, pad, dilation):
        _, vjp = jax.vjp(lambda x, w: conv(x, w, stride, pad, dilation), x, w)
        dx, dw = vjp(dout)
        return dx, dw, jnp.sum(dout, axis=(0, 2, 3))

    def pool(x, ph, pw, stride):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, ph, pw),
                                 (1, 1, stride, stride), "VALID")

    @functools.partial(jax.jit, static_argnums=(1, 2, 3))
    def pool_forward(x, ph, pw, stride):
        return pool(x, ph, pw, stride), None

    @functools.partial(jax.jit, static_argnums=(3, 4, 5))
    def pool_backward(dout, x, aux, ph, pw, stride):
        _, vjp = jax.vjp(lambda x: pool(x, ph, pw, stride), x)
        return vjp(dout)[0]

    return NativeConv2d("jax", conv_forward, conv_backward, pool_forward, pool_backward)



class JaxAdapter(Adapter):
    """JAX's own array-API namespace (``jax.numpy``), on its CPU and GPU devices."""

    def native_conv2d(self):
        return _native_conv2d()


    name = "jax"
    install = "{xpml[jax]} (with CUDA: pip install 'jax[cuda12]')"
    compiled_draws = True

    def namespace(self):
        jnp = _adapter._import("jax.numpy")
        self.first_use()
        return jnp

    def first_use(self) -> None:
        _set_up_cache(_adapter._import("jax"))

    def probe(self) -> BackendStatus:
        try:
            jax, xp = _adapter._import("jax"), _adapter._import("jax.numpy")
        except ImportError as exc:
            return self.not_installed(exc)
        except Exception as exc:
            return BackendStatus(self.name, False, f"broken: import failed: {exc}")
        _set_up_cache(jax)
        try:
            cpus = list(jax.devices("cpu"))
        except Exception as exc:
            return BackendStatus(self.name, False, f"broken: it sees no CPU device: {exc}")
        failure = kernel_fails(xp, cpus[0])
        if failure:
            return BackendStatus(self.name, False, f"broken on the CPU: {failure}")
        devices, notes = cpus, []
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            notes.append("no CUDA device: this jax has no CUDA support (pip install 'jax[cuda12]')")
            gpus = []
        for d in gpus:
            failure = kernel_fails(xp, d)
            if failure:
                notes.append(f"CUDA present but broken: on {d}, {failure}")
                break
            devices.append(d)
        if not _x64():
            notes.append(f"float32 only: for float64, {X64_HINT}")
        return BackendStatus(self.name, True, devices=tuple(devices), note="; ".join(notes))

    def resolve_device(self, xp, device, status):
        jax = _adapter._import("jax")
        listing = ", ".join(str(d) for d in status.devices)
        if device is None:
            return jax.devices()[0]
        if not isinstance(device, (str, int)):
            if device in status.devices:
                return device
            raise BackendUnavailableError(f"jax has no usable device {device!r}; its devices are: {listing}")
        platform, _, index = str(device).lower().partition(":")
        if platform.isdigit():
            platform, index = "", platform
        platform = "gpu" if platform == "cuda" else platform
        devices = [d for d in status.devices if not platform or d.platform == platform]
        if not devices:
            cuda = [part for part in status.note.split("; ") if "CUDA" in part]
            if platform == "gpu" and cuda:
                raise BackendUnavailableError(f"jax:{device} is not usable: {cuda[0]}")
            raise BackendUnavailableError(f"jax has no device {device!r}; its devices are: {listing}")
        if index and not index.isdigit():
            raise BackendUnavailableError(f"jax has no device {device!r}; its devices are: {listing}")
        i = int(index or 0)
        if i >= len(devices):
            raise BackendUnavailableError(f"jax has {len(devices)} {platform} device(s); there is no {platform}:{i}")
        return devices[i]

    def device_id(self, xp, device) -> str | None:
        platform = device.platform
        index = _adapter._import("jax").devices(platform).index(device)
        return platform if platform == "cpu" and index == 0 else f"{platform}:{index}"

    def device_name(self, device) -> str:
        return cpu_name() if device.platform == "cpu" else str(device.device_kind)

    def on_cpu(self, device) -> bool:
        return device.platform == "cpu"

    def admissible(self, obj, dtype):
        import numpy as np

        if not isinstance(obj, (np.ndarray, np.generic)) or dtype is not None or _x64():
            return obj
        if obj.dtype == np.float64:
            raise InputError(
                "float64 data cannot go to jax: JAX runs without 64-bit types here and would round it "
                f"to float32. Either {X64_HINT}, or convert the data yourself first "
                "(x.astype(numpy.float32))."
            )
        if obj.dtype.kind in "iu" and obj.dtype.itemsize == 8:
            info = np.iinfo(np.int32)
            if obj.size and (int(obj.min()) < info.min or int(obj.max()) > info.max):
                raise InputError(
                    f"{obj.dtype} data with values outside int32 cannot go to jax without 64-bit types; {X64_HINT}"
                )
            return obj.astype(np.int32)
        return obj

    def synchronize(self, device) -> None:
        # JAX has no device-wide barrier; work on one device runs in order, so waiting for a tiny
        # computation queued now waits for everything queued before it.
        (sys.modules["jax.numpy"].zeros((), device=device) + 1).block_until_ready()

    def synchronize_array(self, x) -> None:
        x.block_until_ready()

    def synchronize_all(self) -> None:
        jax = sys.modules.get("jax")
        if jax is not None:
            for device in jax.devices():
                self.synchronize(device)

    def compiler(self):
        return _adapter._import("jax").jit

    def set_threads(self, n: int):
        # XLA reads its flags once, when JAX starts its backends: after that nothing changes its
        # thread pool. Before, one thread turns off Eigen's pool; XLA has no flag for N > 1 threads.
        if n != 1:
            return None
        if "jax" in sys.modules:
            from jax._src import xla_bridge

            if xla_bridge.backends_are_initialized():
                return None
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (
                f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip())
        return None

    def float64_hint(self) -> str:
        return ("JAX runs without 64-bit types: enable them with jax.config.update('jax_enable_x64', True) "
                "(or JAX_ENABLE_X64=1) before any JAX array is created, or use dtype='float32'.")

    def exact_matmul(self, xp, a, b, out):
        # JAX uses TF32 on some GPUs by default: ask for the dtype's own precision.
        return xp.matmul(a, b, precision="highest")

    def memory(self, device) -> int | None:
        if device.platform == "cpu":
            return None
        stats = device.memory_stats() or {}
        limit = stats.get("bytes_limit")
        return int(limit) if limit else None
