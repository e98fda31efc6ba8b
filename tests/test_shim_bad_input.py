"""Bad input from PyTorch and JAX users: each a clear error naming both sides and the fix."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.validation import check_data


def test_tensor_that_requires_grad_is_refused():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    X = torch.ones((3, 2), dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad=True.*x.detach\\(\\)"):
        backend.namespace_and_device(X)
    with pytest.raises(TypeError, match="requires_grad=True.*x.detach\\(\\)"):
        check_data(X)
    with pytest.raises(TypeError, match="requires_grad=True.*x.detach\\(\\)"):
        backend.to_numpy(X)
    check_data(X.detach())


def test_mixing_torch_and_numpy_names_both():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with pytest.raises(backend.BackendMismatchError, match="'torch' and 'numpy'.*to_backend"):
        backend.namespace_and_device(torch.ones(2), np.ones(2))
    jnp = pytest.importorskip("jax.numpy", reason="jax is not installed")
    with pytest.raises(backend.BackendMismatchError, match="'jax' and 'torch'"):
        backend.namespace_and_device(jnp.ones(2), torch.ones(2))


def test_jax_array_on_another_device_than_the_model():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    if len(jax.devices("cpu")) < 2:
        pytest.skip("one JAX CPU device here (tests/conftest.py asks XLA for two before JAX starts)")
    model = backend.get_backend("jax:cpu")
    X = backend.to_backend(np.ones((2, 3), np.float32), "jax:cpu:1")
    with pytest.raises(backend.BackendMismatchError) as info:
        backend.check_on_backend(X, model, name="X", owner="this net", target="net.backend")
    assert "X lives on 'jax:cpu:1' but this net lives on 'jax:cpu'" in str(info.value)
    assert "backend.to_backend(X, net.backend)" in str(info.value)
    with pytest.raises(backend.BackendMismatchError, match="two devices of 'jax'"):
        backend.namespace_and_device(backend.to_backend(np.ones(3, np.float32), model), X)


def test_int_and_bool_data_are_refused_where_floats_are_expected(bk):
    for values in ([[1, 2], [3, 4]], [[True, False], [False, True]]):
        X = bk.asarray(values)
        with pytest.raises(TypeError, match="X_train must have a real floating dtype.*convert it first"):
            check_data(X, name="X_train")


def test_jax_float64_without_x64_is_an_error_naming_the_switch():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    with jax.enable_x64(False):
        jx = backend.get_backend("jax:cpu")
        with pytest.raises(ValueError, match="float64 data cannot go to jax.*jax_enable_x64.*astype"):
            backend.to_backend(np.ones(3), jx)
        with pytest.raises(ValueError, match="does not support float64.*jax_enable_x64"):
            backend.float_dtype(jx.xp, jx.device, "float64")
        # What is not narrowed goes through: float32 data, and integers that fit int32 (JAX's index dtype).
        assert backend.to_backend(np.ones(3, np.float32), jx).dtype == jx.xp.float32
        assert backend.to_backend(np.arange(3), jx).dtype == jx.xp.int32
        with pytest.raises(ValueError, match="outside int32"):
            backend.to_backend(np.array([2**40]), jx)


def test_host_arrays_torch_cannot_share_are_copied():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    bk = backend.get_backend("torch:cpu")
    flipped = np.arange(6.0)[::-1]
    np.testing.assert_array_equal(backend.to_numpy(backend.to_backend(flipped, bk)), flipped)
    read_only = np.arange(4.0)
    read_only.flags.writeable = False
    t = backend.to_backend(read_only, bk)
    t += 1  # writes into a copy, never into the read-only buffer
    np.testing.assert_array_equal(read_only, np.arange(4.0))
    swapped = np.arange(3.0).astype(">f8")
    assert backend.to_backend(swapped, bk).dtype == torch.float64


def test_numpy_dtypes_are_understood_by_every_backend(bk):
    assert backend.float_dtype(bk.xp, bk.device, np.float32) == bk.xp.float32
    assert backend.float_dtype(bk.xp, bk.device, np.dtype("float64")) == bk.xp.float64
    with pytest.raises(ValueError, match="float32 or float64"):
        backend.float_dtype(bk.xp, bk.device, np.int64)


def test_emptiness_is_read_from_the_shape(bk):
    # A torch tensor's size is a method (always truthy); the checks read the shape.
    with pytest.raises(ValueError, match="empty"):
        check_data(bk.xp.zeros((0, 3), dtype=bk.xp.float32, device=bk.device))
    check_data(bk.xp.zeros((0, 3), dtype=bk.xp.float32, device=bk.device), allow_empty=True)
