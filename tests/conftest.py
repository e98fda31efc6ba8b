"""The backend matrix: every test that takes ``bk`` (or ``xp``) runs on every usable backend.

Cases, with their pytest ids:

- ``numpy``: NumPy on the CPU.
- ``array_api_strict``: the strict reference namespace on its default device.
- ``array_api_strict:device1``: the same on a non-default device. An array created without
  ``device=`` lands on the default device and mixing it in raises, which is exactly how code
  breaks on a GPU; this case makes the CPU suite fail where CuPy would.
- ``cupy``: CuPy on CUDA device 0, when a usable CUDA device exists.
- ``numpy:readonly``: NumPy whose arrays refuse writes (tests/_readonly.py), for the training
  tests, which opt in with ``@pytest.mark.readonly_backend``; elsewhere it is skipped.

Unusable backends are skipped with the reason ``backend.list_backends()`` gives, shown in the
summary by ``-rs``. With ``XPML_REQUIRE_CUPY=1`` (the ``tox -e cuda`` environments) an unusable
CuPy is an error instead, so a GPU run cannot pass by quietly testing the CPU only.
"""

from __future__ import annotations

import os

import pytest

from xpml import backend


def _backend_cases():
    statuses = {s.name: s for s in backend.list_backends()}
    cases = [("numpy", None), ("array_api_strict", None), ("array_api_strict", "device1"), ("cupy", None)]
    for name, device in cases:
        label = name if device is None else f"{name}:{device}"
        status = statuses[name]
        if status.usable:
            yield pytest.param(backend.get_backend(name, device=device), id=label)
        elif name == "cupy" and os.environ.get("XPML_REQUIRE_CUPY") == "1":
            raise RuntimeError(f"XPML_REQUIRE_CUPY=1 but cupy is not usable: {status.reason}")
        else:
            yield pytest.param(None, id=label, marks=pytest.mark.skip(reason=f"{label}: {status.reason}"))


BACKEND_CASES = list(_backend_cases())

# ---- numpy:readonly: arrays that refuse writes, for the tests of functional state -----------------
from ._readonly import READONLY_BACKEND, readonly_arrays  # noqa: E402

BACKEND_CASES.append(pytest.param(READONLY_BACKEND, id="numpy:readonly"))


def pytest_configure(config):
    config.addinivalue_line("markers", "readonly_backend: also run on the numpy:readonly backend case")


@pytest.fixture(autouse=True)
def _readonly_case(request, monkeypatch):
    """On the numpy:readonly case, make arrays read-only, or skip tests that did not opt in."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("bk") is not READONLY_BACKEND:
        yield
        return
    if request.node.get_closest_marker("readonly_backend") is None:
        pytest.skip("numpy:readonly runs the tests marked readonly_backend (training and state updates)")
    with readonly_arrays(monkeypatch):
        yield
# ---------------------------------------------------------------------------------------------------

FLOAT_DTYPES = ["float32", "float64"]


@pytest.fixture(params=BACKEND_CASES)
def bk(request) -> backend.Backend:
    """The backend under test: namespace ``bk.xp`` and device ``bk.device``."""
    return request.param


@pytest.fixture
def xp(bk):
    """The namespace of the backend under test."""
    return bk.xp


@pytest.fixture
def device(bk):
    """The device of the backend under test."""
    return bk.device


@pytest.fixture(params=FLOAT_DTYPES)
def dtype_name(request) -> str:
    """float32 and float64, by name."""
    return request.param
