"""xpml's exception classes: one hierarchy, each also the built-in a handler expects; messages in plain words."""

import numpy as np
import pytest

import xpml
from xpml import backend
from xpml.backend import errors, validation


def test_the_hierarchy_keeps_the_builtin_handlers_working():
    assert issubclass(errors.InputError, ValueError) and issubclass(errors.InputError, errors.XpmlError)
    assert issubclass(errors.InputTypeError, TypeError) and issubclass(errors.InputTypeError, errors.XpmlError)
    assert issubclass(backend.BackendMismatchError, errors.InputError)
    assert issubclass(backend.BackendUnavailableError, errors.XpmlError)
    assert issubclass(backend.BackendUnavailableError, RuntimeError)
    # The package re-exports them, the same classes.
    for name in ("XpmlError", "InputError", "InputTypeError", "BackendMismatchError", "BackendUnavailableError"):
        assert getattr(xpml, name) is getattr(errors, name)
    with pytest.raises(AttributeError):
        xpml.NoSuchError  # noqa: B018


@pytest.mark.parametrize("bad, cls", [
    (np.zeros((2, 3), dtype=np.int64), errors.InputTypeError),
    (np.zeros((2,), dtype=np.float32), errors.InputError),
    (np.array([[np.nan]], dtype=np.float32), errors.InputError),
])
def test_validation_raises_xpmls_classes(bad, cls):
    with pytest.raises(cls):
        validation.check_data(bad)


def test_an_unknown_backend_is_an_input_error():
    with pytest.raises(errors.InputError, match="unknown backend 'tpu'"):
        backend.get_backend("tpu")


def test_a_nan_query_is_not_said_to_be_about_training():
    from xpml.classifiers import KNearestNeighbor

    knn = KNearestNeighbor().train(np.zeros((3, 2), dtype=np.float32), np.array([0, 1, 1]))
    with pytest.raises(errors.InputError, match="NaN") as info:
        knn.predict(np.array([[np.nan, 0.0]], dtype=np.float32))
    assert "training" not in str(info.value)


def test_random_flip_speaks_of_flipping_not_of_units():
    from xpml.nets.augment import RandomFlip

    with pytest.raises(ValueError, match="probability of flipping an image") as info:
        RandomFlip((4, 4, 1), p=2)
    assert "unit" not in str(info.value)
