"""One module per backend: what differs between backends is in its adapter, registered in one
table; a backend added from outside the package (the tests' read-only NumPy) works as the others."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from xpml import backend
from xpml.backend import _adapter, _registry
from xpml.backend.numpy_backend import NumpyAdapter

from ._readonly import READONLY_BACKEND, ReadOnlyNumpyAdapter

ROOT = pathlib.Path(__file__).resolve().parent.parent
_ADAPTER_FILES = {"numpy_backend.py", "cupy_backend.py", "strict_backend.py", "torch_backend.py", "jax_backend.py"}
# A test on a backend's name, or a namespace check standing in for one.
_NAMES = "(numpy|cupy|torch|jax|array_api_strict)"
_BRANCH = re.compile(
    rf"""(\.name|\bname|\bbase)\s*(==|!=|\bin\b|\bnot in\b)\s*[\(\[{{]?\s*["']{_NAMES}["']"""
    rf"""|["']{_NAMES}["']\s*(==|\bin\b)"""
    rf"""|is_{_NAMES}_(namespace|array)\(""")


def _branches(folder, skip=()):
    found = []
    for path in sorted((ROOT / folder).glob("*.py")):
        if path.name in _ADAPTER_FILES or path.name in skip:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _BRANCH.search(line.split("#")[0]):
                found.append(f"{folder}/{path.name}:{n}: {line.strip()}")
    return found


def test_no_backend_name_branches_outside_the_adapters():
    for folder in ("backend", "classifiers", "nets", "xpml", "xpml/cli"):
        assert _branches(folder) == []


def test_every_builtin_backend_has_one_adapter_in_the_table():
    assert list(backend.BACKEND_NAMES) == ["numpy", "cupy", "array_api_strict", "torch", "jax"]
    usable = {status.name for status in backend.list_backends() if status.usable}
    for name in backend.BACKEND_NAMES:
        adapter = _registry.adapter(name)
        assert isinstance(adapter, backend.Adapter) and adapter.name == name
        # the native-kernel hook: PyTorch's and JAX's convolutions, the portable code elsewhere
        if name not in ("torch", "jax"):
            assert adapter.native_conv2d() is None
        elif name in usable:
            assert adapter.native_conv2d().name == name
        assert type(adapter).__module__ == f"xpml.backend.{'strict' if name == 'array_api_strict' else name}_backend"


def test_the_readonly_backend_is_registered_from_the_tests():
    assert isinstance(_registry.adapter("numpy_readonly"), ReadOnlyNumpyAdapter)
    assert READONLY_BACKEND.name == "numpy_readonly" and READONLY_BACKEND.label == "numpy_readonly"
    assert backend.get_backend("numpy_readonly") == READONLY_BACKEND
    assert "numpy_readonly" not in [s.name for s in backend.list_backends()]  # test-only: not listed
    x = READONLY_BACKEND.asarray(np.ones(2, np.float32))
    assert backend.backend_of(x).name == "numpy"  # its arrays are NumPy's


def test_register_backend_adds_a_backend_by_name(monkeypatch):
    class Loud(NumpyAdapter):
        name = "numpy_loud"

        def owns_namespace(self, xp):
            return False

    monkeypatch.setattr(_registry, "ADAPTERS", dict(_registry.ADAPTERS))
    monkeypatch.setattr(_registry, "LISTED", list(_registry.LISTED))
    monkeypatch.setitem(_registry.PROBES, "numpy_loud", None)
    backend.register_backend(Loud())
    bk = backend.get_backend("numpy_loud")
    assert bk.adapter.name == "numpy_loud" and bk.label == "numpy_loud" and bk.on_cpu
    assert "numpy_loud" in [s.name for s in backend.list_backends()]
    with pytest.raises(TypeError, match="Adapter instance"):
        backend.register_backend(object())
    with pytest.raises(TypeError, match="without ':'"):
        backend.register_backend(type("Bad", (NumpyAdapter,), {"name": "a:b"})())


def test_a_torch_cpu_index_other_than_0_is_refused():
    pytest.importorskip("torch", reason="torch is not installed")
    assert backend.get_backend("torch:cpu:0").label == "torch:cpu"
    with pytest.raises(backend.BackendUnavailableError, match="no device 'cpu:7'.*one device for all cores"):
        backend.get_backend("torch:cpu:7")
    with pytest.raises(backend.BackendUnavailableError, match="no device 'x'"):
        backend.get_backend("torch:x")


# -- threads ----------------------------------------------------------------------------------------


def test_the_default_thread_count_leaves_busy_cores_alone(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert backend.default_cpu_threads() == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 0.0, 0.0))
    assert backend.default_cpu_threads() == 3  # two cores busy: the third one is shared
    monkeypatch.setattr(os, "getloadavg", lambda: (14.0, 0.0, 0.0))
    assert backend.default_cpu_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})  # taskset / a container's limit
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert backend.default_cpu_threads() == 1


def test_cpu_threads_reaches_blas_and_torch_and_is_put_back():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with backend.cpu_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least 1"):
        with backend.cpu_threads(0):
            pass


def test_the_command_line_flag_goes_through_every_backend(monkeypatch):
    torch = pytest.importorskip("torch")
    from xpml.cli import _cli

    with _cli.cpu_threads(1):
        assert torch.get_num_threads() == 1
    seen = []
    monkeypatch.setattr(_registry.adapter("jax"), "set_threads", lambda n: seen.append(n), raising=False)
    with _cli.cpu_threads(2):
        pass
    assert seen == [2]


def test_xla_threads_are_set_before_jax_starts():
    pytest.importorskip("jax", reason="jax is not installed")
    code = ("import os, sys; from xpml import backend\n"
            "with backend.cpu_threads(1):\n    print(os.environ.get('XLA_FLAGS', ''))\n"
            "import jax; jax.devices()\n"
            "with backend.cpu_threads(1):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "--xla_cpu_multi_thread_eigen=false" in out.stdout


def test_the_adapters_share_one_import_hook():
    # Tests simulate a missing or broken package by replacing _adapter._import: every adapter uses it.
    for name in ("cupy_backend", "torch_backend", "jax_backend", "strict_backend", "numpy_backend"):
        source = (ROOT / "backend" / f"{name}.py").read_text(encoding="utf-8")
        assert "importlib" not in source, name
    assert callable(_adapter._import)


# -- JAX's compilation cache ------------------------------------------------------------------------


class _FakeConfig:
    def __init__(self, **values):
        self.values = {"jax_compilation_cache_dir": None, "jax_persistent_cache_min_compile_time_secs": 1.0,
                       **values}

    def __getattr__(self, name):
        return self.values[name]

    def update(self, name, value):
        self.values[name] = value


def _set_up(monkeypatch, config):
    from xpml.backend import jax_backend

    monkeypatch.setattr(jax_backend, "_CACHE_SET_UP", False)
    jax_backend._set_up_cache(type("FakeJax", (), {"config": config})())
    return config.values


def test_jax_compiles_once_into_the_user_cache_folder(monkeypatch, tmp_path):
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("XPML_JAX_CACHE", raising=False)
    values = _set_up(monkeypatch, _FakeConfig())
    want = pathlib.Path(platformdirs.user_cache_dir("xpml")) / "jax"
    assert pathlib.Path(values["jax_compilation_cache_dir"]) == want and want.is_dir()
    assert values["jax_persistent_cache_min_compile_time_secs"] == 0.0  # xpml's kernels compile fast


def test_a_users_own_jax_cache_setting_wins_and_it_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("XPML_JAX_CACHE", raising=False)
    assert _set_up(monkeypatch, _FakeConfig(jax_compilation_cache_dir="/mine"))["jax_compilation_cache_dir"] == "/mine"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/theirs")
    assert _set_up(monkeypatch, _FakeConfig())["jax_compilation_cache_dir"] is None  # JAX reads the variable itself
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("XPML_JAX_CACHE", "0")
    assert _set_up(monkeypatch, _FakeConfig())["jax_compilation_cache_dir"] is None
    assert not (tmp_path / "xpml").exists()
