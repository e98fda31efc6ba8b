"""Cross-validation: contiguous folds as in the course; the kNN fast path equals predict per k."""

import numpy as np
import pytest

from xpml import backend
from xpml.classifiers import KNearestNeighbor, Softmax, cross_validate, fold_slices, knn_cross_validate


def test_folds_are_array_split():
    for n, k in [(10, 5), (11, 3), (7, 7)]:
        got = [list(range(n))[s] for s in fold_slices(n, k)]
        assert got == [a.tolist() for a in np.array_split(np.arange(n), k)]
    with pytest.raises(ValueError, match="num_folds"):
        fold_slices(4, 5)
    with pytest.raises(ValueError, match="num_folds"):
        fold_slices(4, 1)


def _data(bk, n=25, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = y[:, None] * 1.5 + rng.integers(0, 3, (n, 2))  # integer-valued: distance ties are real
    return bk.asarray(X, dtype=bk.xp.float32), bk.asarray(y)


def _fit_knn(k, X_tr, y_tr, X_val, y_val):
    xp = backend.get_namespace(X_tr)
    pred = KNearestNeighbor().train(X_tr, y_tr).predict(X_val, k=k)
    return xp.mean(xp.astype(pred == y_val, xp.float32))


def test_knn_fast_path_equals_generic_cross_validation(bk):
    X, y = _data(bk)
    ks = [1, 3, 5, 8, 20]
    generic = cross_validate(X, y, candidates=ks, fit_and_score=_fit_knn, num_folds=5)
    fast = knn_cross_validate(X, y, k_choices=ks, num_folds=5, memory_budget=1)
    assert list(fast) == ks and all(len(v) == 5 for v in fast.values())
    assert all(isinstance(a, float) for v in fast.values() for a in v)
    for k in ks:
        np.testing.assert_allclose(fast[k], generic[k], rtol=1e-6)


def test_cross_validate_any_hyperparameter(bk):
    X, y = _data(bk, n=30)
    seen = []

    def fit(reg, X_tr, y_tr, X_val, y_val):
        seen.append((reg, X_tr.shape[0], X_val.shape[0]))
        model = Softmax(seed=0)
        model.train(X_tr, y_tr, learning_rate=1e-2, reg=reg, num_iters=5, batch_size=8)
        xp = backend.get_namespace(X_val)
        return float(xp.mean(xp.astype(model.predict(X_val) == y_val, xp.float32)))

    res = cross_validate(X, y, candidates=[0.0, 1.0], fit_and_score=fit, num_folds=3)
    assert list(res) == [0.0, 1.0] and all(len(v) == 3 for v in res.values())
    assert seen[:2] == [(0.0, 20, 10), (1.0, 20, 10)]


def test_bad_arguments():
    nb = backend.get_backend("numpy")
    X, y = _data(nb)
    with pytest.raises(ValueError, match="empty"):
        cross_validate(X, y, candidates=[], fit_and_score=_fit_knn)
    with pytest.raises(TypeError, match="callable"):
        cross_validate(X, y, candidates=[1], fit_and_score=None)
    with pytest.raises(ValueError, match="larger than the training set"):
        knn_cross_validate(X, y, k_choices=[1, 21])
    with pytest.raises(ValueError, match="rows"):
        knn_cross_validate(X, y[:3], k_choices=[1])
