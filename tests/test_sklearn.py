"""xpml.sklearn: scikit-learn's estimator checks pass, the estimators work in Pipeline, GridSearchCV and
cross_val_score, keep array-API inputs on their device, take any labels, and refuse bad input clearly."""

import copy
import importlib
import importlib.util
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is an optional extra: pip install 'xpml[sklearn]'")

from sklearn.base import clone  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from xpml import backend  # noqa: E402
from xpml.backend.testing import assert_placement  # noqa: E402
from xpml.classifiers import KNearestNeighbor, LinearSVM, Softmax  # noqa: E402
from xpml.nets import FullyConnectedNet, _state  # noqa: E402
from xpml.sklearn import (  # noqa: E402
    ConvNetClassifier,
    FullyConnectedClassifier,
    KNNClassifier,
    LinearSVMClassifier,
    SoftmaxClassifier,
)

ESTIMATORS = [KNNClassifier(), LinearSVMClassifier(), SoftmaxClassifier(), FullyConnectedClassifier()]
MODELS = {KNNClassifier: KNearestNeighbor, LinearSVMClassifier: LinearSVM, SoftmaxClassifier: Softmax,
          FullyConnectedClassifier: FullyConnectedNet}


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


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(n=120, centers=3, seed=0):
    X, y = make_blobs(n_samples=n, centers=centers, n_features=4, random_state=seed, cluster_std=1.5)
    return StandardScaler().fit_transform(X), y


def _fast(est):
    """The estimator with a short training (the tests check behaviour, not accuracy)."""
    return est.set_params(num_iters=200) if "num_iters" in est.get_params() else est


@pytest.fixture(params=ESTIMATORS, ids=lambda e: type(e).__name__)
def estimator(request):
    params = {"random_state": 0} if "random_state" in request.param.get_params() else {}
    return _fast(clone(request.param).set_params(**params))


# ---- labels ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [("cat", "dog", "emu"), (-7, 3, 1000), (0.0, 2.0, 7.0), ("b", "a", "c")],
                         ids=["strings", "non-contiguous-ints", "floats", "unsorted-strings"])
def test_any_labels_come_back_as_given(estimator, labels):
    X, y_idx = _blobs()
    y = np.asarray(labels)[y_idx]
    est = estimator.fit(X, y)
    np.testing.assert_array_equal(est.classes_, np.sort(np.asarray(labels)))
    pred = est.predict(X)
    assert pred.dtype == y.dtype and set(pred) <= set(labels)
    assert est.score(X, y) > 0.8
    # The model itself trained on class indices 0..C-1, in the order of classes_.
    idx = backend.to_numpy(est._predict_indices(X))
    np.testing.assert_array_equal(est.classes_[idx], pred)
    if hasattr(est, "predict_proba"):
        proba = est.predict_proba(X)
        assert proba.shape == (X.shape[0], 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(est.classes_[np.argmax(proba, axis=1)], pred)


@pytest.mark.parametrize("cls", [LinearSVMClassifier, SoftmaxClassifier])
def test_two_classes_decision_function_is_one_column(cls):
    X, y = _blobs(centers=2)
    est = _fast(cls(random_state=0)).fit(X, np.where(y == 1, "yes", "no"))
    d = est.decision_function(X)
    assert d.shape == (X.shape[0],)
    np.testing.assert_array_equal(np.where(d > 0, est.classes_[1], est.classes_[0]), est.predict(X))


def test_the_fitted_model_is_the_library_model(estimator):
    X, y = _blobs()
    est = estimator.fit(X, y)
    assert type(est.model_) is MODELS[type(est)]
    assert est.n_features_in_ == 4
    assert not hasattr(estimator, "feature_names_in_")  # only for inputs with column names


def test_linear_coefficients_are_the_weights_and_bias():
    X, y = _blobs()
    est = _fast(SoftmaxClassifier(random_state=0)).fit(X, y)
    W = est.model_.W
    assert est.coef_.shape == (3, 4) and est.intercept_.shape == (3,)
    np.testing.assert_array_equal(est.coef_, W[:4, :].T)
    np.testing.assert_allclose(est.decision_function(X), X @ est.coef_.T + est.intercept_, rtol=1e-12)
    no_bias = _fast(SoftmaxClassifier(random_state=0, fit_intercept=False)).fit(X, y)
    assert no_bias.model_.W.shape == (4, 3)
    np.testing.assert_array_equal(no_bias.intercept_, np.zeros(3))


def test_the_svm_has_no_probabilities_but_calibrates():
    X, y = _blobs()
    svm = _fast(LinearSVMClassifier(random_state=0))
    assert not hasattr(svm, "predict_proba")
    calibrated = CalibratedClassifierCV(svm, cv=3).fit(X, y)
    proba = calibrated.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert calibrated.score(X, y) > 0.8


def test_the_same_seed_gives_the_same_model(estimator):
    X, y = _blobs()
    a, b = clone(estimator).fit(X, y), clone(estimator).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    if hasattr(a, "predict_proba"):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# ---- scikit-learn's tools --------------------------------------------------------------------------


def test_pipeline_grid_search_and_cross_validation():
    X, y = make_blobs(n_samples=150, centers=3, n_features=5, random_state=1, cluster_std=3.0)
    X = X * 100 + 50  # far from standardized: the pipeline's scaler matters
    pipe = make_pipeline(StandardScaler(), SoftmaxClassifier(num_iters=200, random_state=0))
    search = GridSearchCV(pipe, {"softmaxclassifier__reg": [1e-4, 1e1], "softmaxclassifier__learning_rate": [0.1]},
                          cv=3).fit(X, y)
    assert search.best_params_["softmaxclassifier__reg"] == 1e-4  # a strong penalty flattens the scores
    assert search.best_score_ > 0.7
    knn_scores = cross_val_score(make_pipeline(StandardScaler(), KNNClassifier(n_neighbors=3)), X, y, cv=4)
    assert knn_scores.shape == (4,) and knn_scores.mean() > 0.7
    grid = GridSearchCV(KNNClassifier(), {"n_neighbors": [1, 15], "metric": ["l1", "l2"]}, cv=3).fit(X, y)
    assert set(grid.cv_results_["param_metric"]) == {"l1", "l2"}


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib", "clone"])
def test_fitted_estimators_round_trip(estimator, how, tmp_path):
    X, y = _blobs()
    est = estimator.fit(X, np.asarray(["p", "q", "r"])[y])
    if how == "clone":
        again = clone(est).fit(X, np.asarray(["p", "q", "r"])[y])  # unfitted copy, same parameters
    elif how == "pickle":
        again = pickle.loads(pickle.dumps(est))
    elif how == "deepcopy":
        again = copy.deepcopy(est)
    else:
        joblib = pytest.importorskip("joblib")
        joblib.dump(est, tmp_path / "est.joblib")
        again = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("fitted", [True, False])
def test_a_pickled_estimator_from_a_newer_xpml_is_refused(monkeypatch, fitted):
    X, y = _blobs()
    est = KNNClassifier().fit(X, y) if fitted else KNNClassifier()
    with monkeypatch.context() as m:
        m.setattr(_state, "__version__", "99.0.0")
        data = pickle.dumps(est)
    # The first object unpickled says so: the fitted model inside, or the estimator itself.
    name = "KNearestNeighbor" if fitted else "KNNClassifier"
    with pytest.raises(_state.ModelVersionError, match=f"{name} was pickled by xpml 99.0.0, newer than"):
        pickle.loads(data)


# ---- array API dispatch ------------------------------------------------------------------------------


@pytest.fixture
def dispatch():
    pytest.importorskip("scipy", minversion="1.14")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def _torch_cpu():
    try:
        return backend.get_backend("torch", device="cpu")
    except backend.BackendUnavailableError as exc:
        pytest.skip(f"torch:cpu: {exc}")


def test_torch_inputs_stay_torch_tensors_on_their_device(estimator, dispatch):
    torch_bk = _torch_cpu()
    X_np, y_np = _blobs()
    X, y = torch_bk.asarray(X_np.astype(np.float32)), torch_bk.asarray(y_np * 10 + 3)
    est = estimator.fit(X, y)
    assert_placement(est.classes_, backend=torch_bk, shape=(3,))
    assert backend.backend_of(est._predict_indices(X)) == torch_bk
    pred = est.predict(X)
    assert_placement(pred, backend=torch_bk, dtype=y.dtype, shape=(X.shape[0],))
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        if hasattr(est, method):
            out = getattr(est, method)(X)
            assert_placement(out, backend=torch_bk, dtype=X.dtype)
    assert isinstance(est.score(X, y), float) and est.score(X, y) > 0.8
    # The same seed on NumPy gives the same labels (the generator draws alike on every backend).
    with sklearn.config_context(array_api_dispatch=False):
        on_numpy = clone(estimator).fit(X_np.astype(np.float32), y_np * 10 + 3)
        np.testing.assert_array_equal(backend.to_numpy(pred), on_numpy.predict(X_np.astype(np.float32)))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_on_every_backend_outputs_stay_there_and_copies_predict_alike(bk, estimator, dispatch, how):
    X_np, y_np = _blobs()
    X, y = bk.asarray(X_np.astype(np.float32)), bk.asarray(y_np)
    est = estimator.fit(X, y)
    pred = est.predict(X)
    assert_placement(pred, backend=bk, shape=(X.shape[0],))
    again = pickle.loads(pickle.dumps(est)) if how == "pickle" else copy.deepcopy(est)
    got = again.predict(X)
    assert_placement(got, like=pred)
    np.testing.assert_array_equal(backend.to_numpy(got), backend.to_numpy(pred))
    if hasattr(est, "predict_proba"):
        assert_placement(again.predict_proba(X), like=est.predict_proba(X))
        np.testing.assert_array_equal(backend.to_numpy(again.predict_proba(X)), backend.to_numpy(est.predict_proba(X)))


def test_string_labels_with_torch_features(dispatch):
    torch_bk = _torch_cpu()
    X_np, y_np = _blobs()
    X = torch_bk.asarray(X_np)
    est = _fast(SoftmaxClassifier(random_state=0)).fit(X, np.asarray(["x", "y", "z"])[y_np])
    assert isinstance(est.classes_, np.ndarray)  # no device holds strings
    assert set(est.predict(X)) <= {"x", "y", "z"}
    assert_placement(est.predict_proba(X), backend=torch_bk, dtype=X.dtype)


def test_labels_follow_the_features(dispatch):
    torch_bk = _torch_cpu()
    strict = backend.get_backend("array_api_strict", device="device1")
    X_np, y_np = _blobs()
    est = KNNClassifier(n_neighbors=3).fit(torch_bk.asarray(X_np), strict.asarray(y_np))
    assert_placement(est.classes_, backend=torch_bk)
    assert backend.backend_of(est.model_.y_train) == torch_bk


def test_predict_refuses_another_namespace_than_fit(estimator, dispatch):
    torch_bk = _torch_cpu()
    X_np, y_np = _blobs()
    est = estimator.fit(torch_bk.asarray(X_np), torch_bk.asarray(y_np))
    name = type(est).__name__
    with pytest.raises(ValueError, match=rf"{name}\.predict\(\) must use the same namespace .* fit used 'torch:cpu'"):
        est.predict(X_np)
    strict = backend.get_backend("array_api_strict", device="device1")
    with pytest.raises(ValueError, match="got 'array_api_strict:device1'.*to_backend"):
        est.predict(strict.asarray(X_np))


def test_without_dispatch_torch_inputs_become_numpy(estimator):
    torch_bk = _torch_cpu()
    X_np, y_np = _blobs()
    est = estimator.fit(torch_bk.asarray(X_np), torch_bk.asarray(y_np))
    assert isinstance(est.predict(torch_bk.asarray(X_np)), np.ndarray)
    assert backend.backend_of(est._predict_indices(X_np)).name == "numpy"


# ---- bad input -----------------------------------------------------------------------------------------


def test_strings_as_features_say_what_to_do(estimator):
    X = np.array([["red", "1.0"], ["blue", "2.0"], ["red", "0.5"]])
    with pytest.raises(ValueError, match="could not convert string to float.*needs numeric features.*OneHotEncoder"):
        estimator.fit(X, [0, 1, 0])


@pytest.mark.parametrize("where", ["fit", "predict"])
def test_three_dimensional_X_is_refused(estimator, where):
    X, y = _blobs()
    if where == "fit":
        with pytest.raises(ValueError, match="Found array with dim 3"):
            estimator.fit(X.reshape(X.shape[0], 2, 2), y)
    else:
        est = estimator.fit(X, y)
        with pytest.raises(ValueError, match="Found array with dim 3"):
            est.predict(X.reshape(X.shape[0], 2, 2))


def test_a_single_class_is_refused(estimator):
    X, _ = _blobs()
    with pytest.raises(ValueError, match=r"needs samples of at least 2 classes, but y holds only one class \('a'\)"):
        estimator.fit(X, ["a"] * X.shape[0])


@pytest.mark.parametrize("where", ["fit", "predict"])
def test_nan_is_refused(estimator, where):
    X, y = _blobs()
    bad = X.copy()
    bad[3, 1] = np.nan
    if where == "fit":
        with pytest.raises(ValueError, match="Input X contains NaN"):
            estimator.fit(bad, y)
    else:
        with pytest.raises(ValueError, match="Input X contains NaN"):
            estimator.fit(X, y).predict(bad)


def test_wrong_number_of_features_and_unfitted(estimator):
    X, y = _blobs()
    with pytest.raises(NotFittedError):
        clone(estimator).predict(X)
    est = estimator.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4 features"):
        est.predict(X[:, :3])


def test_hyperparameters_are_checked_at_fit_with_their_names():
    X, y = _blobs()
    LinearSVMClassifier(learning_rate=-1.0)  # construction never checks (scikit-learn's contract)
    with pytest.raises(ValueError, match="learning_rate must be >= 0"):
        LinearSVMClassifier(learning_rate=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_neighbors=500 is more than the 120 training examples"):
        KNNClassifier(n_neighbors=500).fit(X, y)
    with pytest.raises(ValueError, match="metric must be 'l2' or 'l1'"):
        KNNClassifier(metric="cosine").fit(X, y)
    with pytest.raises(ValueError, match="dtype must be None .* got 'float16'"):
        SoftmaxClassifier(dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match="unknown update rule 'adagradd'"):
        FullyConnectedClassifier(update_rule="adagradd").fit(X, y)
    with pytest.raises(ValueError, match="random_state must be None, an int or a numpy.random.RandomState"):
        SoftmaxClassifier(random_state="seven").fit(X, y)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_diverged_training_warns_and_says_where():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match="training diverged at iteration"):
        est = LinearSVMClassifier(learning_rate=1e300, num_iters=50, random_state=0).fit(X * 1e300, y)
    assert est.diverged_at_ is not None and est.diverged_at_ < 50


@pytest.mark.parametrize("cls", [FullyConnectedClassifier, ConvNetClassifier, SoftmaxClassifier])
def test_log_probabilities_are_finite_where_probabilities_underflow(bk, cls, dispatch):
    # Scores hundreds apart: the softmax of the losing classes underflows to 0, whose log is -inf;
    # the log-softmax itself is finite and exact.
    X_np, y_np = _blobs()
    X, y = bk.asarray(X_np.astype(np.float32)), bk.asarray(y_np)
    est = _fast(cls(random_state=0)).fit(X, y)
    model = est.model_
    for name in model.params:
        model.params[name] = model.params[name] * 1e3
    scores = backend.to_numpy(est.decision_function(X) if cls is SoftmaxClassifier else model.loss(X))
    scores = scores.astype(np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert (backend.to_numpy(est.predict_proba(X)) == 0).any()  # the probabilities did underflow
    got = est.predict_log_proba(X)
    assert_placement(got, backend=bk, shape=(X.shape[0], 3), dtype=X.dtype)
    got = backend.to_numpy(got)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
