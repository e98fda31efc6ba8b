"""Every public entry point of the models refuses bad input with a clear error, on every backend.

The matrix: NaN and infinities in the data (at the entry point and in the data a fitted model is
applied to), labels that are negative, out of range, fractional or of the wrong length, a stray
label that would ask for a billion classes, arrays of two namespaces or devices, and NumPy scalars
as hyperparameters (accepted). The two-layer net and the linear classifiers have their own tests
where their training engine lives.
"""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.validation import MAX_INFERRED_CLASSES, check_labels
from xpml.classifiers import (
    KNearestNeighbor,
    append_bias,
    cross_validate,
    fold_slices,
    knn_cross_validate,
    mean_image,
    softmax_loss_naive,
    softmax_loss_vectorized,
    svm_loss_naive,
    svm_loss_vectorized,
)
from xpml.nets import PCA, MeanSubtraction, Standardization

N, D, C = 12, 3, 3


def _good(bk):
    rng = np.random.default_rng(0)
    X = bk.asarray(rng.normal(size=(N, D)))
    y = bk.asarray(np.arange(N) % C)
    W = bk.asarray(rng.normal(size=(D, C)) * 0.01)
    return X, y, W


def _with(bk, X, value, row=1, col=2):
    host = backend.to_numpy(X).copy()
    host[row, col] = value
    return bk.asarray(host)


def _knn(bk, X, y):
    return KNearestNeighbor("l2").train(X, y)


# (name, call(bk, X, y, W)): each takes data X (N, D) and labels y (N,) in the slots being tested.
DATA_ENTRY_POINTS = {
    "knn.train": lambda bk, X, y, W: KNearestNeighbor().train(X, y),
    "knn.predict": lambda bk, X, y, W: _knn(bk, *_good(bk)[:2]).predict(X, k=1),
    "knn.predict(num_loops=1)": lambda bk, X, y, W: _knn(bk, *_good(bk)[:2]).predict(X, k=1, num_loops=1),
    "knn.predict(num_loops=2)": lambda bk, X, y, W: _knn(bk, *_good(bk)[:2]).predict(X, k=1, num_loops=2),
    "knn.kneighbors": lambda bk, X, y, W: _knn(bk, *_good(bk)[:2]).kneighbors(X, 2),
    "knn.compute_distances_no_loops": lambda bk, X, y, W: _knn(bk, *_good(bk)[:2]).compute_distances_no_loops(X),
    "knn_cross_validate": lambda bk, X, y, W: knn_cross_validate(X, y, k_choices=[1, 2], num_folds=3),
    "cross_validate": lambda bk, X, y, W: cross_validate(X, y, candidates=[1], num_folds=3,
                                                         fit_and_score=lambda *a: 0.5),
    "svm_loss_naive": lambda bk, X, y, W: svm_loss_naive(W, X, y, 0.1),
    "svm_loss_vectorized": lambda bk, X, y, W: svm_loss_vectorized(W, X, y, 0.1),
    "softmax_loss_naive": lambda bk, X, y, W: softmax_loss_naive(W, X, y, 0.1),
    "softmax_loss_vectorized": lambda bk, X, y, W: softmax_loss_vectorized(W, X, y, 0.1),
    "mean_image": lambda bk, X, y, W: mean_image(X),
    "append_bias": lambda bk, X, y, W: append_bias(X),
    "MeanSubtraction.fit": lambda bk, X, y, W: MeanSubtraction().fit(X),
    "MeanSubtraction.transform": lambda bk, X, y, W: MeanSubtraction().fit(_good(bk)[0]).transform(X),
    "Standardization.fit": lambda bk, X, y, W: Standardization().fit(X),
    "Standardization.transform": lambda bk, X, y, W: Standardization().fit(_good(bk)[0]).transform(X),
    "PCA.fit": lambda bk, X, y, W: PCA().fit(X),
    "PCA.transform": lambda bk, X, y, W: PCA().fit(_good(bk)[0]).transform(X),
}
_DATA_CASES = list(DATA_ENTRY_POINTS)
LABELLED = ["knn.train", "knn_cross_validate", "cross_validate", "svm_loss_naive", "svm_loss_vectorized",
            "softmax_loss_naive", "softmax_loss_vectorized"]
WITH_CLASS_COUNT = ["svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive", "softmax_loss_vectorized"]


@pytest.mark.parametrize("entry", _DATA_CASES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_data_is_refused(bk, entry, bad):
    X, y, W = _good(bk)
    with pytest.raises(ValueError, match="NaN or infinite"):
        DATA_ENTRY_POINTS[entry](bk, _with(bk, X, bad), y, W)


@pytest.mark.parametrize("entry", _DATA_CASES)
def test_all_nan_data_is_refused(bk, entry):
    X, y, W = _good(bk)
    with pytest.raises(ValueError, match=f"{N * D} NaN or infinite"):
        DATA_ENTRY_POINTS[entry](bk, bk.asarray(np.full((N, D), np.nan)), y, W)


@pytest.mark.parametrize("entry", LABELLED)
@pytest.mark.parametrize(("labels", "error", "message"), [
    (lambda y: np.where(np.arange(N) == 4, -1, y), ValueError, "negative label"),
    (lambda y: y.astype(np.float64), TypeError, "integer class labels"),
    (lambda y: y[:-1], ValueError, "labels but the data has"),
    (lambda y: y.reshape(-1, 1), ValueError, "1-dimensional"),
], ids=["negative", "float", "short", "2d"])
def test_bad_labels_are_refused(bk, entry, labels, error, message):
    X, y, W = _good(bk)
    with pytest.raises(error, match=message):
        DATA_ENTRY_POINTS[entry](bk, X, bk.asarray(labels(backend.to_numpy(y))), W)


@pytest.mark.parametrize("entry", WITH_CLASS_COUNT)
def test_labels_beyond_the_weights_classes_are_refused(bk, entry):
    X, y, W = _good(bk)
    y_bad = bk.asarray(np.where(np.arange(N) == 2, C, backend.to_numpy(y)))
    with pytest.raises(ValueError, match=f"label {C}, out of range for {C} classes"):
        DATA_ENTRY_POINTS[entry](bk, X, y_bad, W)


@pytest.mark.parametrize("entry", ["knn.train", "knn_cross_validate", "cross_validate"])
def test_one_stray_label_does_not_ask_for_a_billion_classes(bk, entry):
    # Inferring max(y) + 1 classes would make kNN's vote or a linear model's W a billion columns wide.
    X, y, W = _good(bk)
    y_bad = bk.asarray(np.where(np.arange(N) == 3, 10**9, backend.to_numpy(y)))
    with pytest.raises(ValueError, match="would have 1000000001 classes, but only 4 distinct labels occur"):
        DATA_ENTRY_POINTS[entry](bk, X, y_bad, W)


@pytest.mark.parametrize("entry", ["knn.train", "knn_cross_validate", "svm_loss_vectorized"])
def test_arrays_of_two_namespaces_or_devices_are_refused(bk, entry):
    X, y, W = _good(bk)
    other = backend.get_backend("array_api_strict", device="device1") if bk.name == "numpy" \
        else backend.get_backend("numpy")
    with pytest.raises(backend.BackendMismatchError):
        DATA_ENTRY_POINTS[entry](bk, X, other.asarray(backend.to_numpy(y)), W)


def test_predict_refuses_a_wrong_feature_count(bk):
    knn = _knn(bk, *_good(bk)[:2])
    with pytest.raises(ValueError, match="2 features per row but the model was trained on 3"):
        knn.predict(bk.asarray(np.zeros((2, 2))), k=1)


def test_numpy_scalars_are_accepted_as_hyperparameters(bk):
    X, y, _ = _good(bk)
    knn = KNearestNeighbor("l2", memory_budget=np.int64(2**20)).train(X, y)
    want = backend.to_numpy(knn.predict(X, k=3))
    np.testing.assert_array_equal(backend.to_numpy(knn.predict(X, k=np.int64(3))), want)
    np.testing.assert_array_equal(backend.to_numpy(knn.predict(X, k=np.int32(3), num_loops=1)), want)
    assert list(knn_cross_validate(X, y, k_choices=[np.int64(1)], num_folds=np.int64(3))) == [1]
    assert len(fold_slices(N, np.int64(3))) == 3
    for transform in (Standardization(eps=np.float32(1e-8)), PCA(n_components=np.int64(2), eps=np.float64(1e-5))):
        transform.fit(X)


def test_numpy_scalars_are_accepted_by_the_losses(bk):
    X, y, W = _good(bk)
    want, _ = svm_loss_vectorized(W, X, y, 0.25)
    for reg in (np.float64(0.25), np.float32(0.25)):
        got, _ = svm_loss_vectorized(W, X, y, reg)
        assert float(backend.to_numpy(got)) == pytest.approx(float(backend.to_numpy(want)))


def test_sparse_large_labels_with_an_explicit_class_count_pass(bk):
    y = bk.asarray([0, 5000, 2])
    assert check_labels(y, num_classes=5001) == 5001
    assert check_labels(bk.asarray(np.arange(MAX_INFERRED_CLASSES))) == MAX_INFERRED_CLASSES
