"""Backend selection, listing, and the errors for unusable backends (simulated)."""

import sys
import types

import pytest

from xpml import backend
from xpml.backend import _select


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
    with pytest.raises(ValueError, match="unknown backend 'torch'.*numpy, cupy, array_api_strict, auto"):
        backend.get_backend("torch")


def test_unknown_device_is_an_error():
    with pytest.raises(backend.BackendUnavailableError, match="no device 'gpu7'"):
        backend.get_backend("array_api_strict:gpu7")


def _fake_import(missing=(), modules=None):
    real = _select._import

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
    monkeypatch.setattr(_select, "_import", _fake_import(missing={"cupy"}))
    status = {s.name: s for s in backend.list_backends()}["cupy"]
    assert not status.usable and status.reason.startswith("not installed")
    with pytest.raises(backend.BackendUnavailableError, match="'cupy' is not usable: not installed"):
        backend.get_backend("cupy")
    # auto never fails: it falls back to numpy, and says so through its name.
    assert backend.get_backend("auto").name == "numpy"


def test_cupy_without_device(monkeypatch):
    fake = _fake_cupy(device_count=0)
    monkeypatch.setattr(_select, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    with pytest.raises(backend.BackendUnavailableError, match="no CUDA device"):
        backend.get_backend("cupy")


def test_cupy_driver_error_is_no_device(monkeypatch):
    fake = _fake_cupy(count_error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    monkeypatch.setattr(_select, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    with pytest.raises(backend.BackendUnavailableError, match="no CUDA device: cudaErrorNoDevice"):
        backend.get_backend("cupy")


def test_cupy_broken_kernel(monkeypatch):
    fake = _fake_cupy(kernel_error=RuntimeError("nvrtc: compilation failed"))
    monkeypatch.setattr(_select, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    with pytest.raises(backend.BackendUnavailableError, match="CUDA present but broken: a test kernel failed"):
        backend.get_backend("cupy")
    assert backend.get_backend("auto").name == "numpy"


def test_strict_not_installed(monkeypatch):
    monkeypatch.setattr(_select, "_import", _fake_import(missing={"array_api_strict"}))
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
    monkeypatch.setattr(_select, "_import", _fake_import(modules={"cupy": fake, "array_api_compat.cupy": fake}))
    monkeypatch.setattr(_select, "_driver_present", lambda: driver)
    with pytest.raises(backend.BackendUnavailableError, match=expected):
        backend.get_backend("cupy")


def test_synchronize_without_argument_where_cupy_sees_no_device(monkeypatch):
    # CuPy installed on a machine without a GPU: a probe imports it, and a bare synchronize()
    # must not then fail on the driver.
    fake = _fake_cupy(count_error=RuntimeError("cudaErrorInsufficientDriver"))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    backend.synchronize()
