"""float32 by default, float64 on request, and only what the device supports."""

import pytest

from xpml import backend


def test_float32_by_default(bk):
    assert backend.float_dtype(bk.xp, bk.device) == bk.xp.float32


@pytest.mark.parametrize("spec", ["float64", "float32"])
def test_by_name_and_by_dtype(bk, spec):
    dt = backend.float_dtype(bk.xp, bk.device, spec)
    assert dt == getattr(bk.xp, spec)
    assert backend.float_dtype(bk.xp, bk.device, dt) == dt


def test_non_float_refused(bk):
    with pytest.raises(ValueError, match="float32 or float64"):
        backend.float_dtype(bk.xp, bk.device, bk.xp.int32)
    with pytest.raises(ValueError, match="float32' or 'float64"):
        backend.float_dtype(bk.xp, bk.device, "float16")


def test_float64_on_a_device_without_it_is_a_clear_error():
    import array_api_strict

    dev = array_api_strict.Device("no_float64")
    assert backend.float_dtype(array_api_strict, dev) == array_api_strict.float32
    with pytest.raises(ValueError, match="does not support float64.*Use dtype='float32'"):
        backend.float_dtype(array_api_strict, dev, "float64")


def test_index_dtype(bk):
    assert backend.index_dtype(bk.xp, bk.device) == bk.xp.int64
