"""The PyTorch backend: its CPU and CUDA devices."""

from __future__ import annotations

import functools
import sys
import threading

from . import _adapter
from ._adapter import Adapter, BackendStatus, BackendUnavailableError, NativeConv2d, cpu_name, kernel_fails
from .errors import InputTypeError

__all__ = ["TorchAdapter"]

_LOCK = threading.Lock()  # the oneDNN precision switch is process-wide: one product at a time


def _with_precision(torch, precision, product):
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


@functools.cache
def _native_conv2d() -> NativeConv2d:
    import torch
    import torch.nn.functional as F

    def conv_forward(x, w, b, stride, pad, dilation):
        return F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dilation)

    def conv_backward(dout, x, w, stride, pad, dilation):
        # The layers accept only sizes where (H + 2P - F) is a multiple of S, so the input size
        # is determined by the output size and conv2d_input needs no output padding.
        dx = torch.nn.grad.conv2d_input(tuple(x.shape), w, dout, stride=stride, padding=pad, dilation=dilation)
        dw = torch.nn.grad.conv2d_weight(x, tuple(w.shape), dout, stride=stride, padding=pad, dilation=dilation)
        return dx, dw, torch.sum(dout, dim=(0, 2, 3))

    def pool_forward(x, ph, pw, stride):
        return F.max_pool2d(x, (ph, pw), stride=stride, return_indices=True)

    def pool_backward(dout, x, indices, ph, pw, stride):
        return torch.ops.aten.max_pool2d_with_indices_backward(
            dout, x, [ph, pw], [stride, stride], [0, 0], [1, 1], False, indices)

    return NativeConv2d("torch", conv_forward, conv_backward, pool_forward, pool_backward)



class TorchAdapter(Adapter):
    """PyTorch through array-api-compat, on the CPU and CUDA devices."""

    def native_conv2d(self):
        return _native_conv2d()


    name = "torch"
    install = ("{xpml[torch]} (the CPU build: pip install torch --index-url "
               "https://download.pytorch.org/whl/cpu)")
    # torch 2.13 has no add, shift or compare kernels for uint32: the generator's words live in int64.
    wide_words = True
    matmul_out = True

    def probe(self) -> BackendStatus:
        try:
            torch, xp = _adapter._import("torch"), _adapter._import("array_api_compat.torch")
        except ImportError as exc:
            return self.not_installed(exc)
        except Exception as exc:
            return BackendStatus(self.name, False, f"broken: import failed: {exc}")
        try:
            cpu = torch.device("cpu")
        except Exception as exc:
            return BackendStatus(self.name, False, f"broken: it sees no CPU device: {exc}")
        failure = kernel_fails(xp, cpu)
        if failure:
            return BackendStatus(self.name, False, f"broken on the CPU: {failure}")
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
                failure = kernel_fails(xp, torch.device("cuda", i))
                if failure:
                    note = f"CUDA present but broken: on cuda:{i}, {failure}"
                    break
                devices.append(torch.device("cuda", i))
        return BackendStatus(self.name, True, devices=tuple(devices), note=note)

    def resolve_device(self, xp, device, status):
        torch = _adapter._import("torch")
        if device is None:
            return torch.device("cpu")
        if not isinstance(device, (str, int)):
            device = str(device)
        if isinstance(device, str):
            device = device.lower()
        spec = f"cuda:{device}" if isinstance(device, int) or device.isdigit() else device
        try:
            dev = torch.device(spec)
        except (RuntimeError, TypeError, ValueError):
            dev = None
        if dev is not None and dev.type == "cpu":
            # PyTorch has one CPU device for all cores: "cpu" and "cpu:0" name it, "cpu:7" nothing.
            if dev.index not in (None, 0):
                raise BackendUnavailableError(
                    f"torch has no device {device!r}: its CPU is one device for all cores (torch:cpu); "
                    "choose the threads with --cpu-threads or torch.set_num_threads"
                )
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

    def device_from_array(self, device):
        return _adapter._import("torch").device("cpu") if device.type == "cpu" else device

    def device_id(self, xp, device) -> str | None:
        return str(device)

    def device_name(self, device) -> str:
        if device.type == "cuda":
            return _adapter._import("torch").cuda.get_device_name(device)
        return cpu_name()

    def on_cpu(self, device) -> bool:
        return device.type == "cpu"

    def admissible(self, obj, dtype):
        import numpy as np

        # torch.asarray shares a NumPy array's memory, which it cannot do for negative strides or
        # a foreign byte order, and should not do for read-only memory it may later write into.
        if isinstance(obj, np.ndarray) and (not obj.flags.writeable or any(st < 0 for st in obj.strides)
                                            or obj.dtype.byteorder not in "=|"):
            obj = np.array(obj, dtype=obj.dtype.newbyteorder("="), order="C")
        return obj

    def to_numpy(self, x):
        if x.requires_grad:
            raise InputTypeError(
                "to_numpy got a torch tensor with requires_grad=True; xpml never detaches behind your "
                "back: pass x.detach()"
            )
        return x.cpu().numpy()

    def draws_on_host(self, device) -> bool:
        # torch's CPU kernels lack uint32 and cost ~10 us per eager operation, ~150 of them per
        # draw: NumPy computes the same words in host memory, which torch takes over without a copy.
        return device.type == "cpu"

    def wrap_host(self, a):
        return _adapter._import("torch").from_numpy(a)

    def synchronize(self, device) -> None:
        if device.type == "cuda":
            sys.modules["torch"].cuda.synchronize(device)

    def synchronize_array(self, x) -> None:
        self.synchronize(x.device)

    def synchronize_all(self) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            for i in range(torch.cuda.device_count()):
                torch.cuda.synchronize(i)

    def set_threads(self, n: int):
        torch = sys.modules.get("torch")
        if torch is None:  # not imported: no torch work in this process to limit
            return None
        previous = torch.get_num_threads()
        torch.set_num_threads(n)
        # The inter-op pool can be sized only before its first parallel work; after that PyTorch
        # refuses (RuntimeError), and the intra-op limit above is what bounds the cores used.
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:
            pass
        return previous

    def exact_matmul(self, xp, a, b, out):
        torch = _adapter._import("torch")
        return _with_precision(torch, "ieee", lambda: torch.matmul(a, b, out=out))

    def low_precision_candidate(self, xp, device):
        from ._lowprec import BFLOAT16, LowPrecisionProduct

        torch = _adapter._import("torch")
        if device.type == "cpu":
            cpu = torch.cpu
            native = (getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                      or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
            if not (torch.backends.mkldnn.is_available() and native):
                return None

            def matmul(a, b, out):
                # oneDNN computes a float32 product from bfloat16-rounded inputs when this switch is on.
                return _with_precision(torch, "bf16", lambda: torch.matmul(a, b, out=out))
        elif device.type == "cuda":
            major, _ = torch.cuda.get_device_capability(device)
            if major < 8:  # bfloat16 tensor cores from Ampere on
                return None

            def matmul(a, b, out):  # out unused: the GPU's allocator reuses memory by itself
                return torch.mm(a.to(torch.bfloat16), b.to(torch.bfloat16), out_dtype=torch.float32)
        else:
            return None
        return LowPrecisionProduct(*BFLOAT16, _matmul=matmul, _low_dtype=torch.bfloat16, _source=(self.name, device))

    def sum_of_squares(self, xp, V):
        norm = xp.linalg.vector_norm(V, axis=-1)  # one fused pass, no (.., D) temporary
        return norm * norm

    def kth_smallest(self, xp, x, k: int):
        # The k smallest, unordered: no sort, no copy of x (array-api-extra's partition builds the
        # whole partitioned copy, about twenty times the cost).
        return x.topk(k, dim=-1, largest=False, sorted=False).values.amax(dim=-1)

    def sqrt(self, xp, x):
        # PyTorch's vectorised float32 root on the CPU errs by one unit in the last place for about
        # 0.7% of inputs; the float64 root rounded to float32 is the correctly rounded one.
        if x.dtype == xp.float32:
            return xp.astype(xp.sqrt(xp.astype(x, xp.float64)), xp.float32)
        return xp.sqrt(x)

    def memory(self, device) -> int | None:
        if device.type == "cuda":
            return int(_adapter._import("torch").cuda.get_device_properties(device).total_memory)
        return None
