"""The shared input checks give errors that say what was wrong."""

import math

import pytest

from xpml.backend.validation import check_data, check_labels, check_positive, check_same_length


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
