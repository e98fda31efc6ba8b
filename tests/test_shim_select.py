"""Backend selection, listing, and the errors for unusable backends (simulated)."""

import sys
import types

import numpy as np
import pytest

from xpml import backend
from xpml.backend import _adapter, _select, cupy_backend


def test_list_backends_covers_every_name():
    statuses = backend.list_backends()
    assert [s.name for s in statuses] == list(backend.BACKEND_NAMES)
    by_name = {s.name: s for s in statuses}
    assert by_name["numpy"].usable
    for s in statuses:
        assert s.usable or s.reason, f"{s.name} is unusable without a reason"
        assert str(s).startswith(s.name)


@pytest.mark.parametrize("name", ["numpy", "NumPy", "array-api-strict", "array_api_strict:device1"])
def test_get_backend_by_name(name):
    bk = backend.get_backend(name)
    assert bk.name in backend.BACKEND_NAMES
    x = bk.xp.zeros(2, device=bk.device)
    assert backend.get_device(x) == bk.device


def test_environment_variable_selects(monkeypatch):
    monkeypatch.setenv("XPML_BACKEND", "array_api_strict:device2")
    bk = backend.get_backend()
    assert bk.name == "array_api_strict" and bk.label == "array_api_strict:device2"


def test_unknown_backend_lists_choices():
    choices = "numpy, cupy, array_api_strict, torch, jax, auto"
    with pytest.raises(ValueError, match=f"unknown backend 'tensorflow'.*{choices}"):
        backend.get_backend("tensorflow")


def test_unknown_device_is_an_error():
    with pytest.raises(backend.BackendUnavailableError, match="no device 'gpu7'"):
        backend.get_backend("array_api_strict:gpu7")


def _fake_import(missing=(), modules=None):
    real = _adapter._import

    def fake(name):
        if name in missing:
            raise ImportError(f"No module named '{name}'")
        if modules and name in modules:
            return modules[name]
        return real(name)

    return fake


def _fake_cupy(device_count=1, kernel_error=None, count_error=None):
    def get_count():
        if count_error:
            raise count_error
        return device_count

    class Device:
        def __init__(self, i=0):
            self.id = i

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def arange(*a, **k):
        raise kernel_error

    runtime = types.SimpleNamespace(getDeviceCount=get_count)
    cuda = types.SimpleNamespace(runtime=runtime, Device=Device)
    return types.SimpleNamespace(cuda=cuda, arange=arange, float32="float32")


def test_cupy_not_installed(monkeypatch):
    monkeypatch.setattr(_adapter, "_import", _fake_import(missing={"cupy"}))
    status = {s.name: s for s in backend.list_backends()}["cupy"]
    assert not status.usable and status.reason.startswith("not installed")
    with pytest.raises(backend.BackendUnavailableError, match="'cupy' is not usable: not installed"):
        backend.get_backend("cupy")
    # auto never fails: it falls back to numpy, and says so through its name.
    assert backend.get_backend("auto").name == "numpy"


def test_cupy_without_device(monkeypatch):
    fake = _fake_cupy(device_count=0)
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    with pytest.raises(backend.BackendUnavailableError, match="no CUDA device"):
        backend.get_backend("cupy")


def test_cupy_driver_error_is_no_device(monkeypatch):
    fake = _fake_cupy(count_error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    with pytest.raises(backend.BackendUnavailableError, match="no CUDA device: cudaErrorNoDevice"):
        backend.get_backend("cupy")


def test_cupy_broken_kernel(monkeypatch):
    fake = _fake_cupy(kernel_error=RuntimeError("nvrtc: compilation failed"))
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    with pytest.raises(backend.BackendUnavailableError, match="CUDA present but broken: a test kernel failed"):
        backend.get_backend("cupy")
    assert backend.get_backend("auto").name == "numpy"


def test_strict_not_installed(monkeypatch):
    monkeypatch.setattr(_adapter, "_import", _fake_import(missing={"array_api_strict"}))
    with pytest.raises(backend.BackendUnavailableError, match="not installed"):
        backend.get_backend("array_api_strict")


def test_device_given_twice():
    with pytest.raises(ValueError, match="device given twice"):
        backend.get_backend("array_api_strict:device1", device="device2")


def test_as_backend_accepts_every_spelling(bk):
    assert backend.as_backend(bk) is bk
    assert backend.as_backend(bk.xp, device=bk.device) == bk
    assert backend.as_backend(bk.label) == bk
    assert backend.as_backend(None).name == "numpy"
    with pytest.raises(TypeError, match="not a namespace"):
        backend.as_backend(42)


@pytest.mark.parametrize("driver, expected", [(False, "no CUDA device: cudaErrorInsufficientDriver"),
                                              (True, "CUDA present but broken: the driver failed")])
def test_cupy_driver_missing_or_broken(monkeypatch, driver, expected):
    # What CuPy's runtime says on a machine with no NVIDIA driver, and on one with a driver too old
    # for the runtime: the first has no GPU, the second a broken CUDA set-up.
    fake = _fake_cupy(count_error=RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient"))
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    monkeypatch.setattr(cupy_backend, "_driver_present", lambda: driver)
    with pytest.raises(backend.BackendUnavailableError, match=expected):
        backend.get_backend("cupy")


def test_synchronize_without_argument_where_cupy_sees_no_device(monkeypatch):
    # CuPy installed on a machine without a GPU: a probe imports it, and a bare synchronize()
    # must not then fail on the driver.
    fake = _fake_cupy(count_error=RuntimeError("cudaErrorInsufficientDriver"))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    backend.synchronize()


# ---- torch and jax ------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling, label", [
    ("torch", "torch:cpu"), ("torch:cpu", "torch:cpu"), ("Torch:CPU", "torch:cpu"),
    ("jax", None), ("jax:cpu", "jax:cpu"), ("jax:cpu:0", "jax:cpu"),
])
def test_torch_and_jax_spellings(spelling, label):
    name = spelling.split(":")[0].lower()
    pytest.importorskip(name, reason=f"{name} is not installed")
    bk = backend.get_backend(spelling)
    assert bk.name == name
    if label is not None:
        assert bk.label == label
    assert backend.get_backend(bk.label) == bk
    x = bk.xp.zeros(2, device=bk.device)
    assert backend.backend_of(x) == bk


def test_namespace_modules_select_torch_and_jax():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    import array_api_compat.torch as torch_xp

    assert backend.as_backend(torch).name == backend.as_backend(torch_xp).name == "torch"
    jnp = pytest.importorskip("jax.numpy", reason="jax is not installed")
    assert backend.as_backend(jnp).name == "jax"


def _fake_torch(cuda_version=None, count=0, cpu_error=None, cuda_error=None):
    class Device:
        def __init__(self, kind, index=None):
            if ":" in kind:
                kind, index = kind.split(":")[0], int(kind.split(":")[1])
            if kind not in ("cpu", "cuda", "meta"):
                raise RuntimeError(f"Expected one of cpu, cuda, meta device type: {kind}")
            self.type, self.index = kind, index

        def __eq__(self, other):
            return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

        def __hash__(self):
            return hash((self.type, self.index))

        def __str__(self):
            return self.type if self.index is None else f"{self.type}:{self.index}"

    def arange(n, dtype=None, device=None):
        error = cpu_error if device.type == "cpu" else cuda_error
        if error:
            raise error
        return np.arange(n, dtype=np.float32)

    torch = types.SimpleNamespace(
        device=Device, __version__="9.9.9+fake", version=types.SimpleNamespace(cuda=cuda_version),
        cuda=types.SimpleNamespace(is_available=lambda: count > 0, device_count=lambda: count),
    )
    xp = types.SimpleNamespace(arange=arange, sum=np.sum, float32="float32")
    return {"torch": torch, "array_api_compat.torch": xp}


def test_torch_cpu_build_has_no_cuda_device(monkeypatch):
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules=_fake_torch()))
    status = {s.name: s for s in backend.list_backends()}["torch"]
    assert status.usable and "no CUDA device: this torch (9.9.9+fake) is a CPU-only build" in str(status)
    assert backend.get_backend("torch").label == "torch:cpu"
    with pytest.raises(backend.BackendUnavailableError, match="torch:cuda:0 is not usable: no CUDA device"):
        backend.get_backend("torch:cuda:0")


def test_torch_cuda_build_on_a_machine_without_gpu(monkeypatch):
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules=_fake_torch(cuda_version="12.8", count=0)))
    with pytest.raises(backend.BackendUnavailableError, match="no CUDA device: torch.cuda.is_available\\(\\) is False"):
        backend.get_backend("torch", device="cuda")


def test_torch_cuda_present_but_broken(monkeypatch):
    fake = _fake_torch(cuda_version="12.8", count=1, cuda_error=RuntimeError("CUDA error: no kernel image"))
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules=fake))
    assert backend.get_backend("torch:cpu").name == "torch"  # the CPU still works
    broken = "CUDA present but broken: on cuda:0, a test kernel failed"
    with pytest.raises(backend.BackendUnavailableError, match=broken):
        backend.get_backend("torch:cuda:0")


def test_torch_broken_or_missing(monkeypatch):
    fake = _fake_torch(cpu_error=RuntimeError("illegal instruction"))
    monkeypatch.setattr(_adapter, "_import", _fake_import(modules=fake))
    with pytest.raises(backend.BackendUnavailableError, match="'torch' is not usable: broken on the CPU"):
        backend.get_backend("torch")
    monkeypatch.setattr(_adapter, "_import", _fake_import(missing={"torch", "jax"}))
    for name in ("torch", "jax"):  # the hint of a wheel (xpml[torch]) or of a checkout (.[torch])
        with pytest.raises(backend.BackendUnavailableError, match=f"not installed.*(xpml|\\.)\\[{name}\\]"):
            backend.get_backend(name)


def test_unknown_torch_device():
    pytest.importorskip("torch", reason="torch is not installed")
    with pytest.raises(backend.BackendUnavailableError, match="torch has no device 'meta'"):
        backend.get_backend("torch:meta")


def test_unknown_jax_device():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    count = len(jax.devices("cpu"))
    missing = f"jax has {count} cpu device\\(s\\); there is no cpu:{count}"
    with pytest.raises(backend.BackendUnavailableError, match=missing):
        backend.get_backend(f"jax:cpu:{count}")
    with pytest.raises(backend.BackendUnavailableError, match="jax has no device 'tpu'"):
        backend.get_backend("jax:tpu")


def test_jax_gpu_missing_names_the_cuda_build():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    try:
        jax.devices("gpu")
        pytest.skip("this jax has a GPU")
    except RuntimeError:
        pass
    with pytest.raises(backend.BackendUnavailableError, match="jax:gpu:0 is not usable: no CUDA device"):
        backend.get_backend("jax:gpu:0")


def test_jax_status_says_when_float64_is_off():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    with jax.enable_x64(False):
        status = {s.name: s for s in backend.list_backends()}["jax"]
    assert status.usable and "float32 only" in status.note and "jax_enable_x64" in status.note
    with jax.enable_x64(True):
        assert "float32 only" not in {s.name: s for s in backend.list_backends()}["jax"].note


@pytest.mark.parametrize("name", ["torch:cpu", "jax:cpu"])
def test_environment_variable_selects_torch_and_jax(monkeypatch, name):
    pytest.importorskip(name.split(":")[0], reason=f"{name.split(':')[0]} is not installed")
    monkeypatch.setenv("XPML_BACKEND", name)
    assert backend.get_backend().label == name
    assert backend.backend_of(backend.to_backend(np.ones(2, np.float32))).label == name


def test_a_namespace_with_a_device_object_is_not_probed_again(bk, monkeypatch):
    # Code that builds a backend from its inputs (xp, device) must not pay a test kernel per call.
    if not isinstance(bk.device, str):  # NumPy's device is the string "cpu": a name, probed (cheaply)
        def probe():
            raise AssertionError("probed again")

        monkeypatch.setitem(_select._PROBES, bk.name, probe)
    assert backend.as_backend(bk.xp, device=bk.device) == bk
