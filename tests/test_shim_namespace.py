"""Namespace and device resolution, and the mixing errors."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement


def test_namespace_and_device_of_one_backend(bk):
    a = bk.asarray([1.0, 2.0])
    b = bk.asarray([[3.0]])
    xp, device = backend.namespace_and_device(a, None, 2.0, b)
    assert xp is bk.xp
    assert device == bk.device
    assert backend.get_namespace(a) is bk.xp
    assert backend.get_device(b) == bk.device


def test_mixing_namespaces_names_both():
    import array_api_strict

    a = np.ones(3)
    b = array_api_strict.ones(3)
    with pytest.raises(backend.BackendMismatchError) as info:
        backend.namespace_and_device(a, b)
    msg = str(info.value)
    assert "'numpy'" in msg and "'array_api_strict'" in msg
    assert "to_backend" in msg


def test_mixing_devices_names_both():
    import array_api_strict

    a = array_api_strict.ones(3)
    b = array_api_strict.ones(3, device=array_api_strict.Device("device1"))
    with pytest.raises(backend.BackendMismatchError) as info:
        backend.get_namespace(a, b)
    assert "CPU_DEVICE" in str(info.value) and "device1" in str(info.value)


def test_no_array_or_foreign_object():
    with pytest.raises(TypeError, match="at least one array"):
        backend.namespace_and_device(None, 1.0)
    with pytest.raises(TypeError, match="not an array"):
        backend.namespace_and_device([1.0, 2.0])


def test_backend_of_round_trips(bk):
    x = bk.asarray([1.0])
    again = backend.backend_of(x)
    assert again.name == bk.name and again.device == bk.device and again.label == bk.label


def test_transfers_are_explicit_and_exact(bk):
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = backend.to_backend(host, bk)
    assert_placement(x, backend=bk, dtype=bk.xp.float32, shape=(3, 4))
    assert backend.to_backend(x, bk) is x  # already there: no copy
    back = backend.to_numpy(x)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    # Moving to another backend by name goes through the host and lands on that backend's device.
    y = backend.to_backend(x, "numpy")
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, host)


def test_to_numpy_accepts_lists_and_python_numbers():
    np.testing.assert_array_equal(backend.to_numpy([1.0, 2.0]), np.array([1.0, 2.0]))
    assert backend.to_numpy(2.5) == np.float64(2.5)
    assert backend.to_numpy(np.float32(1.5)).dtype == np.float32


def test_to_backend_by_namespace_and_device():
    import array_api_strict

    x = np.ones(2)
    y = backend.to_backend(x, array_api_strict, device=array_api_strict.Device("device1"))
    assert backend.get_device(y) == array_api_strict.Device("device1")


def test_synchronize_accepts_arrays_and_backends(bk):
    x = bk.xp.ones(3, device=bk.device)
    backend.synchronize(x)
    backend.synchronize(bk)
    backend.synchronize()


def test_check_on_backend_names_both_places_and_the_move(bk):
    x = bk.asarray([1.0])
    backend.check_on_backend(x, bk, name="X")  # where it belongs: no error
    other = backend.get_backend("array_api_strict:device2")
    with pytest.raises(backend.BackendMismatchError) as info:
        backend.check_on_backend(x, other, name="X_val", owner="this net", target="net.backend")
    msg = str(info.value)
    assert f"X_val lives on {bk.label!r} but this net lives on 'array_api_strict:device2'" in msg
    assert "backend.to_backend(X_val, net.backend)" in msg
