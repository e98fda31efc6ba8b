"""xpml.sklearn.ConvNetClassifier: scikit-learn's estimator checks, images or flattened rows, the final
FC layer, pickling, and clear errors."""

import importlib
import importlib.util
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is an optional extra: pip install 'xpml[sklearn]'")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from xpml import backend  # noqa: E402
from xpml.nets import ConvNet  # noqa: E402
from xpml.sklearn import ConvNetClassifier  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny problems: BLAS or torch threads only wait on each other on a busy machine.
    from threadpoolctl import threadpool_limits

    torch = importlib.import_module("torch") if importlib.util.find_spec("torch") else None
    before = torch.get_num_threads() if torch else None
    with threadpool_limits(1):
        if torch:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)


# 300 steps (not the default 1000) still pass every check, in well under half the time.
@parametrize_with_checks([ConvNetClassifier(num_iters=300)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _digits(n=300):
    digits = load_digits()
    X = (digits.images[:n] / 16.0 - 0.3).astype(np.float32)  # (n, 8, 8)
    return X[:, None, :, :], digits.target[:n]


def _quick(**kw):
    return ConvNetClassifier("CONV3-4 POOL2", num_iters=60, batch_size=50, learning_rate=1e-2, random_state=0, **kw)


def test_images_and_flattened_rows_with_input_dim_are_the_same_fit():
    X, y = _digits()
    a = _quick().fit(X, y)
    b = _quick(input_dim=(1, 8, 8)).fit(X.reshape(len(X), -1), y)
    assert type(a.model_) is ConvNet and a.model_.image_shape == b.model_.image_shape == (1, 8, 8)
    assert a.model_.architecture == "CONV3-4 POOL2 FC-10"  # one score per class added
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X.reshape(len(X), -1)))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X.reshape(len(X), -1)), rtol=1e-6)
    assert a.n_features_in_ == 1 and b.n_features_in_ == 64


def test_learns_the_digits_and_works_in_cross_validation():
    X, y = _digits()
    est = ConvNetClassifier("CONV3-8 BN POOL2", num_iters=150, batch_size=50, learning_rate=1e-2, random_state=0)
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.mean() > 0.8, scores


def test_a_final_fc_must_give_one_score_per_class():
    X, y = _digits(60)
    ok = _quick().set_params(architecture="CONV3-4 POOL2 FC-10").fit(X, y)
    assert ok.model_.architecture == "CONV3-4 POOL2 FC-10"
    with pytest.raises(ValueError, match=r"ends with FC-5, 5 class scores, but y holds 10 classes: end it with FC-10"):
        _quick().set_params(architecture="CONV3-4 POOL2 FC-5").fit(X, y)
    with pytest.raises(ValueError, match="'POLL2' does not parse"):
        _quick().set_params(architecture="CONV3-4 POLL2").fit(X, y)


@pytest.mark.parametrize("input_dim,flat,message", [
    ((1, 4, 4), False, r"input_dim=\(1, 4, 4\) but X holds images of shape \(1, 8, 8\)"),
    ((2, 8, 8), True, r"input_dim=\(2, 8, 8\) \(C, H, W\) must hold the 64 features"),
])
def test_an_input_dim_that_does_not_fit_the_data_is_an_error(input_dim, flat, message):
    X, y = _digits(60)
    with pytest.raises(ValueError, match=message):
        _quick(input_dim=input_dim).fit(X.reshape(len(X), -1) if flat else X, y)


def test_pickles_and_clones():
    X, y = _digits(100)
    est = _quick().fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    fresh = clone(est)
    assert not hasattr(fresh, "model_") and fresh.get_params() == est.get_params()


def test_predictions_are_of_the_model_and_its_labels():
    X, y = _digits(100)
    labels = np.array(list("abcdefghij"))[y]
    est = _quick().fit(X, labels)
    idx = backend.to_numpy(est.model_.predict(X))
    np.testing.assert_array_equal(est.predict(X), est.classes_[idx])
