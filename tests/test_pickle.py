"""Every fitted model pickles, deep-copies and round-trips through joblib, on every backend, to a copy
that predicts the same and lives where the original lives; a pickle from a newer xpml is refused."""

import copy
import pickle

import numpy as np
import pytest

from xpml import backend, nets
from xpml.backend.testing import assert_equal, assert_placement
from xpml.classifiers import KNearestNeighbor, LinearSVM, Softmax
from xpml.nets import _state

N, D, C = 40, 6, 3


def _data(bk):
    rng = backend.Generator(3, xp=bk)
    X = rng.normal((N, D))
    y = rng.integers(0, C, (N,))
    return X, y


def _knn(X, y):
    return KNearestNeighbor().train(X, y), lambda m: m.predict(X, k=3)


def _linear(cls):
    def fit(X, y):
        model = cls(seed=1)
        model.train(X, y, learning_rate=0.1, num_iters=5, batch_size=10)
        return model, lambda m: m.predict(X)
    return fit


def _two_layer(X, y):
    net = nets.TwoLayerNet(D, 5, C, init="he", seed=2, dropout=0.2, xp=backend.backend_of(X))
    net.train(X, y, X, y, num_iters=6, batch_size=10)
    return net, lambda m: m.predict_proba(X)


def _solver_fc(X, y):
    # A net trained by the Solver: batch-norm running statistics, dropout, its generator advanced.
    net = nets.FullyConnectedNet([5, 4], input_dim=D, num_classes=C, dropout_keep_ratio=0.8,
                                 normalization="batchnorm", seed=4, xp=backend.backend_of(X))
    nets.Solver(net, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, update_rule="adam",
                batch_size=10, num_epochs=2, verbose=False).train()
    return net, lambda m: m.predict_proba(X)


def _ensemble(X, y):
    members = [_two_layer(X, y)[0], _solver_fc(X, y)[0]]
    return nets.Ensemble(members, weights=[1.0, 2.0]), lambda m: m.predict_proba(X)


def _preprocessing(cls, **kwargs):
    def fit(X, y):
        return cls(**kwargs).fit(X), lambda m: m.transform(X)
    return fit


MODELS = {
    "knn": _knn,
    "svm": _linear(LinearSVM),
    "softmax": _linear(Softmax),
    "two-layer": _two_layer,
    "fc-by-solver": _solver_fc,
    "ensemble": _ensemble,
    "mean-subtraction": _preprocessing(nets.MeanSubtraction),
    "standardization": _preprocessing(nets.Standardization),
    "pca-whiten": _preprocessing(nets.PCA, n_components=4, whiten=True),
}


def _round_trip(obj, how, tmp_path):
    if how == "pickle":
        return pickle.loads(pickle.dumps(obj))
    if how == "deepcopy":
        return copy.deepcopy(obj)
    joblib = pytest.importorskip("joblib", reason="joblib is not installed")
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path)
    return joblib.load(path)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib"])
@pytest.mark.parametrize("name", list(MODELS))
def test_fitted_models_round_trip_to_identical_predictions(bk, name, how, tmp_path):
    X, y = _data(bk)
    model, apply = MODELS[name](X, y)
    want = apply(model)
    again = _round_trip(model, how, tmp_path)
    assert type(again) is type(model) and again is not model
    got = apply(again)
    assert_placement(got, backend=bk)
    assert_equal(got, want)


@pytest.mark.parametrize("name", ["svm", "two-layer"])
def test_a_copy_continues_training_exactly_as_the_original(bk, name):
    # The generator travels by key and counter: the copy draws the same minibatches and masks next.
    X, y = _data(bk)
    model, _ = MODELS[name](X, y)
    again = pickle.loads(pickle.dumps(model))
    for m in (model, again):
        if name == "svm":
            m.train(X, y, learning_rate=0.1, num_iters=4, batch_size=10)
        else:
            m.train(X, y, num_iters=4, batch_size=10)
    for key, value in model.params.items():
        assert_equal(again.params[key], value)


def test_a_copy_is_independent_of_the_original(bk):
    X, y = _data(bk)
    net, apply = _two_layer(X, y)
    twin = copy.deepcopy(net)
    before = backend.to_numpy(apply(twin)).copy()
    net.train(X, y, num_iters=5, batch_size=10, learning_rate=0.5)
    np.testing.assert_array_equal(backend.to_numpy(apply(twin)), before)


class _Futures:
    """Stands in for training shards held on a Dask cluster: bound to this process, not picklable."""

    def __reduce__(self):
        raise TypeError("futures of a Dask cluster cannot be pickled")

    def release(self):
        pass


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_knn_leaves_its_cluster_shards_behind(how, tmp_path):
    X, y = _data(backend.get_backend("numpy"))
    knn, apply = _knn(X, y)
    shards = knn._shards = _Futures()
    again = _round_trip(knn, how, tmp_path)
    assert again._shards is None and knn._shards is shards  # the original keeps its shards
    assert_equal(apply(again), apply(knn))


def test_knn_copy_re_shards_on_a_cluster():
    distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'xpml[dask]'")
    X, y = _data(backend.get_backend("numpy"))
    knn, _ = _knn(X, y)
    # Workers in this process (no network): what matters is that the copy holds no futures and sends its own.
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        want = knn.kneighbors(X, 4, client=client)
        again = pickle.loads(pickle.dumps(knn))
        assert again._shards is None
        got = again.kneighbors(X, 4, client=client)
        assert again._shards is not None and again.last_search_.shards == 1
    for g, w in zip(got, want, strict=True):
        assert_equal(g, w)


# ---- the version stamp ----------------------------------------------------------------------------


def _pickled_by(version, monkeypatch, model):
    with monkeypatch.context() as m:
        m.setattr(_state, "__version__", version)
        return pickle.dumps(model)


@pytest.mark.parametrize("name", ["knn", "softmax", "two-layer", "standardization", "ensemble"])
def test_a_pickle_from_a_newer_release_is_refused_with_a_clear_error(name, monkeypatch):
    X, y = _data(backend.get_backend("numpy"))
    model, _ = MODELS[name](X, y)
    major, minor = _state.release(_state.__version__)
    newer = f"{major}.{minor + 1}.0"
    data = _pickled_by(newer, monkeypatch, model)
    cls = "TwoLayerNet" if name == "ensemble" else type(model).__name__  # the first object unpickled says so
    with pytest.raises(_state.ModelVersionError,
                       match=rf"{cls} was pickled by xpml {newer}, newer than this xpml .*upgrade xpml"):
        pickle.loads(data)


@pytest.mark.parametrize("stamp", ["0.0.1", "0.1.9", "same", "patch"])
def test_pickles_of_this_or_an_older_release_load(stamp, monkeypatch):
    major, minor = _state.release(_state.__version__)
    version = {"same": _state.__version__, "patch": f"{major}.{minor}.99"}.get(stamp, stamp)
    X, y = _data(backend.get_backend("numpy"))
    model, apply = _knn(X, y)
    assert_equal(apply(pickle.loads(_pickled_by(version, monkeypatch, model))), apply(model))


def test_a_pickle_without_a_stamp_loads_and_a_garbled_stamp_is_refused():
    X, y = _data(backend.get_backend("numpy"))
    model, apply = _linear(Softmax)(X, y)
    state = model.__getstate__()
    assert state["_xpml_version"] == _state.__version__
    old = object.__new__(Softmax)
    old.__setstate__({k: v for k, v in state.items() if k != "_xpml_version"})
    assert_equal(apply(old), apply(model))
    with pytest.raises(_state.ModelVersionError, match="unreadable version stamp 'banana'"):
        object.__new__(Softmax).__setstate__({**state, "_xpml_version": "banana"})


@pytest.mark.parametrize("text, want", [("0.2.0", (0, 2)), ("1.10.3.dev1", (1, 10)), ("2.0rc1", (2, 0))])
def test_release_reads_major_and_minor(text, want):
    assert _state.release(text) == want


@pytest.mark.parametrize("text", ["", "1", "v1.2", "1.x", None])
def test_release_refuses_what_is_not_a_version(text):
    with pytest.raises(ValueError, match="not an xpml version"):
        _state.release(text)


def test_knn_finds_its_low_precision_product_again_where_it_is_unpickled(monkeypatch):
    # The bfloat16 product is a kernel of this process's torch: a copy looks it up again (after that
    # machine's self-check) and, where there is none, searches with the exact product: same result.
    try:
        torch_bk = backend.get_backend("torch", device="cpu")
    except backend.BackendUnavailableError as exc:
        pytest.skip(f"torch:cpu: {exc}")
    X, y = _data(torch_bk)
    knn = KNearestNeighbor(precision="auto").train(X, y)
    if knn._ts.product is None:
        pytest.skip("no bfloat16 product on this CPU (no AMX or AVX-512-BF16)")
    want = knn.kneighbors(X, 5)
    again = pickle.loads(pickle.dumps(knn))
    assert again._ts.product is knn._ts.product  # this process's one checked product
    from xpml.backend import _lowprec

    data = pickle.dumps(knn)
    monkeypatch.setattr(_lowprec, "_checked", lambda xp, device: None)  # a machine without it
    elsewhere = pickle.loads(data)
    assert elsewhere._ts.product is None
    for copy_ in (again, elsewhere):
        for g, w in zip(copy_.kneighbors(X, 5), want, strict=True):
            assert_equal(g, w)
