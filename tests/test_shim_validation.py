"""The shared input checks give errors that say what was wrong."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.validation import (
    MAX_INFERRED_CLASSES,
    check_data,
    check_features,
    check_labels,
    check_positive,
    check_same_length,
    check_split,
)


def test_good_data_passes(bk):
    check_data(bk.xp.ones((3, 2), device=bk.device))
    assert check_labels(bk.asarray([0, 2, 1]), n=3) == 3
    assert check_labels(bk.asarray([0, 1]), num_classes=5) == 5


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_data(bk, bad):
    X = bk.asarray([[1.0, bad], [0.0, 0.0]])
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        check_data(X, name="X_train")


def test_shape_dtype_empty(bk):
    with pytest.raises(ValueError, match="must have 2 dimensions, got shape \\(3,\\)"):
        check_data(bk.asarray([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="real floating dtype"):
        check_data(bk.asarray([[1, 2]]))
    with pytest.raises(ValueError, match="empty"):
        check_data(bk.xp.zeros((0, 4), device=bk.device))


def test_labels(bk):
    with pytest.raises(ValueError, match="label 3, out of range for 3 classes"):
        check_labels(bk.asarray([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="negative label"):
        check_labels(bk.asarray([0, -1]))
    with pytest.raises(TypeError, match="integer class labels"):
        check_labels(bk.asarray([0.0, 1.0]))
    with pytest.raises(ValueError, match="2 labels but the data has 3 rows"):
        check_labels(bk.asarray([0, 1]), n=3)
    with pytest.raises(ValueError, match="1-dimensional"):
        check_labels(bk.asarray([[0, 1]]))


def test_same_length_and_positive(bk):
    with pytest.raises(ValueError, match="X has 2, y has 3"):
        check_same_length(("X", bk.xp.ones((2, 1), device=bk.device)), ("y", bk.asarray([0, 0, 0])))
    assert check_positive(0.1, name="lr") == 0.1
    with pytest.raises(ValueError, match="learning_rate must be > 0, got -0.1"):
        check_positive(-0.1, name="learning_rate")
    with pytest.raises(ValueError, match="batch_size must be > 0, got 0"):
        check_positive(0, name="batch_size", integer=True)
    with pytest.raises(TypeError, match="must be an integer"):
        check_positive(2.5, name="batch_size", integer=True)
    assert check_positive(0.0, name="reg", allow_zero=True) == 0.0
    with pytest.raises(ValueError):
        check_positive(math.nan, name="reg", allow_zero=True)


def test_finite_data_whose_sum_overflows_passes(bk):
    # The fast path sums X; a sum that overflows to inf must not be mistaken for an inf in X.
    X = bk.xp.full((4, 2), 3e38, dtype=bk.xp.float32, device=bk.device)
    check_data(X)
    X = bk.asarray([[3e38, 3e38], [math.nan, 0.0]], dtype=bk.xp.float32)
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        check_data(X)


@pytest.mark.parametrize(("value", "integer", "want"), [
    (np.int64(3), True, 3), (np.int32(3), True, 3), (np.uint8(3), True, 3), (3, True, 3),
    (np.float64(0.5), False, 0.5), (np.float32(0.5), False, 0.5), (np.int64(2), False, 2), (0.5, False, 0.5),
])
def test_positive_accepts_numpy_scalars_and_returns_python_numbers(value, integer, want):
    got = check_positive(value, name="k", integer=integer)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("value", [True, np.bool_(True), "3", None, [3], np.array([3])])
def test_positive_refuses_what_is_not_a_number(value):
    with pytest.raises(TypeError, match="k must be a number"):
        check_positive(value, name="k")


def test_positive_refuses_numpy_floats_for_integers_and_bad_numpy_values():
    with pytest.raises(TypeError, match="must be an integer"):
        check_positive(np.float64(3.0), name="k", integer=True)
    with pytest.raises(ValueError, match="must be > 0"):
        check_positive(np.int64(0), name="k", integer=True)
    with pytest.raises(ValueError, match=">= 0"):
        check_positive(np.float32("nan"), name="reg", allow_zero=True)
    assert check_positive(10**400, name="n", integer=True) == 10**400  # no float conversion of big ints


def test_inferred_class_count_is_bounded_by_the_labels_present(bk):
    # One stray label must not ask a model for a billion classes.
    y = bk.asarray([0, 1, 2, 10**9])
    with pytest.raises(ValueError, match=r"label 1000000000, so it would have 1000000001 classes, but only 4 "
                                         r"distinct labels occur.*Relabel them 0\.\.3.*num_classes"):
        check_labels(y)
    assert check_labels(y, num_classes=10**9 + 1) == 10**9 + 1  # given explicitly: the caller means it
    assert check_labels(bk.asarray([0, 999])) == MAX_INFERRED_CLASSES  # small counts are inferred as before
    dense = np.arange(3000)
    dense[::3] = 2999  # 2,001 distinct labels of 3,000 classes: more than half occur
    assert check_labels(bk.asarray(dense)) == 3000
    with pytest.raises(ValueError, match="would have 2998 classes, but only 1000 distinct"):
        check_labels(bk.asarray(np.arange(0, 3000, 3)))  # 0, 3, ..., 2997
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        check_labels(bk.asarray([0, 1]), num_classes=2.0)


def test_split_checks_placement_data_features_and_labels(bk):
    X, y = bk.xp.ones((3, 2), device=bk.device), bk.asarray([0, 1, 1])
    assert check_split(X, y) == 2
    assert check_split(X, y, dim=2, num_classes=4) == 4
    assert check_split(X) is None
    with pytest.raises(ValueError, match="X_val has 2 features per row but the model was trained on 5"):
        check_split(X, y, dim=5, names=("X_val", "y_val"))
    with pytest.raises(ValueError, match="y_val has label 1, out of range for 1 classes"):
        check_split(X, y, num_classes=1, names=("X_val", "y_val"))
    with pytest.raises(ValueError, match="X_val contains 6 NaN"):
        check_split(bk.xp.full((3, 2), math.nan, device=bk.device), y, names=("X_val", "y_val"))
    other = backend.get_backend("numpy") if bk.name != "numpy" else backend.get_backend("array_api_strict")
    with pytest.raises(backend.BackendMismatchError):
        check_split(X, other.asarray([0, 1, 1]))
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        check_features(bk.asarray([1.0, 2.0]), dim=2)
