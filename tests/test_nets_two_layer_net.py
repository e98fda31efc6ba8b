"""The two-layer net: shapes and placement, loss against a naive reference, gradients against
numerical ones, prediction, and clear errors for inputs on another backend."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient, param_loss, rel_error
from xpml.nets import TwoLayerNet
from xpml.nets.regularization import dropout_masks

N, D, H, C = 5, 4, 6, 3


def _toy(bk, dtype="float64", **kw):
    net = TwoLayerNet(D, H, C, std=1e-1, dtype=dtype, seed=0, xp=bk, **kw)
    rng = backend.Generator(1, xp=bk)
    X = rng.normal((N, D), scale=10.0, dtype=dtype)
    y = bk.asarray(np.array([0, 1, 2, 2, 1]))
    return net, X, y


def _naive_loss(params, X, y, reg, l1=0.0, mask=None):
    """Per-example loops on the host: the definition, written the slow way."""
    W1, b1, W2, b2 = (backend.to_numpy(params[k]).astype(np.float64) for k in ("W1", "b1", "W2", "b2"))
    X = backend.to_numpy(X).astype(np.float64)
    y = backend.to_numpy(y)
    total = 0.0
    for i in range(X.shape[0]):
        h = np.maximum(0.0, X[i] @ W1 + b1)
        if mask is not None:
            h = h * backend.to_numpy(mask)[i]
        s = h @ W2 + b2
        total += math.log(sum(math.exp(v - s.max()) for v in s)) - (s[y[i]] - s.max())
    loss = total / X.shape[0] + reg * (np.sum(W1**2) + np.sum(W2**2))
    return loss + l1 * (np.sum(np.abs(W1)) + np.sum(np.abs(W2)))


def test_params_live_on_the_backend(bk, dtype_name):
    net = TwoLayerNet(D, H, C, dtype=dtype_name, xp=bk)
    shapes = {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}
    for k, shape in shapes.items():
        assert_placement(net.params[k], backend=bk, shape=shape, dtype=getattr(bk.xp, dtype_name))


def test_same_seed_same_weights_on_every_backend(bk):
    ref = TwoLayerNet(D, H, C, seed=3)
    net = TwoLayerNet(D, H, C, seed=3, xp=bk)
    for k in ref.params:
        np.testing.assert_array_equal(backend.to_numpy(net.params[k]), ref.params[k])


def test_scores_and_loss_match_the_naive_reference(bk):
    net, X, y = _toy(bk)
    scores = net.loss(X)
    assert_placement(scores, backend=bk, shape=(N, C), dtype=bk.xp.float64)
    W1, b1, W2, b2 = (backend.to_numpy(net.params[k]) for k in ("W1", "b1", "W2", "b2"))
    Xh = backend.to_numpy(X)
    np.testing.assert_allclose(backend.to_numpy(scores), np.maximum(0, Xh @ W1 + b1) @ W2 + b2, rtol=1e-12)
    for reg in (0.0, 0.05):
        loss, grads = net.loss(X, y, reg=reg)
        assert_placement(loss, backend=bk, shape=(), dtype=bk.xp.float64)
        assert abs(float(loss) - _naive_loss(net.params, X, y, reg)) < 1e-12
        for k in net.params:
            assert_placement(grads[k], like=net.params[k])


@pytest.mark.parametrize("reg,l1", [(0.0, 0.0), (0.05, 0.0), (0.05, 0.01)])
def test_analytic_gradients_match_numerical(bk, reg, l1):
    net, X, y = _toy(bk)
    loss, grads = net.loss(X, y, reg=reg, l1=l1)
    for k in net.params:
        num = eval_numerical_gradient(param_loss(net, k, X, y, reg=reg, l1=l1), net.params[k])
        assert rel_error(num, grads[k]) < 1e-7, (k, rel_error(num, grads[k]))


def test_gradients_with_a_fixed_dropout_mask(bk):
    net, X, y = _toy(bk)
    mask = dropout_masks(backend.Generator(2, xp=bk), (N, H), drop=0.3, dtype="float64")
    loss, grads = net.loss(X, y, reg=0.05, dropout_mask=mask)
    assert abs(float(loss) - _naive_loss(net.params, X, y, 0.05, mask=mask)) < 1e-12
    for k in net.params:
        num = eval_numerical_gradient(param_loss(net, k, X, y, reg=0.05, dropout_mask=mask), net.params[k])
        assert rel_error(num, grads[k]) < 1e-7, k


def test_float32_stays_float32(bk):
    net, X, y = _toy(bk, dtype="float32")
    loss, grads = net.loss(X, y, reg=0.1)
    assert loss.dtype == bk.xp.float32
    assert all(g.dtype == bk.xp.float32 for g in grads.values())
    # A float64 input is cast to the net's dtype, not allowed to upcast the math.
    assert net.loss(bk.xp.astype(X, bk.xp.float64)).dtype == bk.xp.float32


def test_predict_and_predict_proba(bk):
    net, X, y = _toy(bk)
    pred = net.predict(X)
    assert_placement(pred, backend=bk, shape=(N,))
    np.testing.assert_array_equal(backend.to_numpy(pred), np.argmax(backend.to_numpy(net.loss(X)), axis=1))
    probs = net.predict_proba(X)
    assert_placement(probs, backend=bk, shape=(N, C), dtype=bk.xp.float64)
    np.testing.assert_allclose(backend.to_numpy(probs).sum(axis=1), 1.0, rtol=1e-12)


def test_predict_in_chunks_matches_one_shot(monkeypatch):
    import xpml.nets._model as tln

    net, X, _ = _toy(backend.get_backend("numpy"))
    whole = net.predict_proba(X)
    monkeypatch.setattr(tln, "_SCORE_BUDGET", 1)  # one row per chunk
    assert_close(net.predict_proba(X), whole)
    np.testing.assert_array_equal(net.predict(X), np.argmax(whole, axis=1))


def test_inputs_on_another_backend_are_a_clear_error():
    strict = backend.get_backend("array_api_strict", device="device1")
    net = TwoLayerNet(D, H, C, xp=strict)
    X = np.zeros((N, D), dtype=np.float32)
    y = np.zeros(N, dtype=np.int64)
    for call in (lambda: net.predict(X), lambda: net.loss(X), lambda: net.train(X, y)):
        with pytest.raises(backend.BackendMismatchError, match=r"backend\.to_backend\(X, net\.backend\)"):
            call()
    Xs, ys = backend.to_backend(X, net.backend), backend.to_backend(y, net.backend)
    assert net.predict(Xs).shape == (N,)
    assert net.train(Xs, ys, num_iters=1, batch_size=2)["loss_history"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown init"):
        TwoLayerNet(D, H, C, init="glorot")
    with pytest.raises(ValueError, match="probability of dropping"):
        TwoLayerNet(D, H, C, dropout=1.0)
    net = TwoLayerNet(D, H, C)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        net.predict(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="one label per row"):
        net.loss(np.zeros((2, 4), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="out of range"):
        net.train(np.zeros((2, 4), np.float32), np.array([0, 3]))


def test_every_entry_point_checks_its_data():
    net = TwoLayerNet(D, H, C, seed=0)
    X = np.zeros((N, D), np.float32)
    y = np.array([0, 1, 2, 2, 1])
    nan = X.copy()
    nan[1, 2] = np.nan
    for call, err, match in [
        (lambda: net.loss(X, np.array([0, 1, 2, 3, 1])), ValueError, "label 3, out of range for 3 classes"),
        (lambda: net.loss(X, np.array([0, -1, 2, 2, 1])), ValueError, "negative label"),
        (lambda: net.loss(X, y.astype(np.float32)), TypeError, "integer class labels"),
        (lambda: net.loss(nan, y), ValueError, "1 NaN or infinite"),
        (lambda: net.loss(nan), ValueError, "NaN"),
        (lambda: net.predict(nan), ValueError, "NaN"),
        (lambda: net.predict_proba(nan), ValueError, "NaN"),
        (lambda: net.train(X, y, nan, y), ValueError, "X_val contains 1 NaN"),
        (lambda: net.train(X, y, X, np.array([0, 1, 2, 9, 1])), ValueError, "y_val has label 9"),
        (lambda: net.train(X, y, X[:3], y), ValueError, "X_val has 3, y_val has 5"),
        (lambda: net.train(X, y, learning_rate=float("nan")), ValueError, "learning_rate"),
    ]:
        with pytest.raises(err, match=match):
            call()


def test_numpy_scalar_hyperparameters_keep_the_dtype():
    net = TwoLayerNet(D, H, C, np.float64(0.1), seed=0)
    X = np.random.default_rng(0).standard_normal((20, D)).astype(np.float32)
    y = np.arange(20) % C
    hist = net.train(X, y, X, y, learning_rate=np.float64(1e-2), learning_rate_decay=np.float64(0.9),
                     reg=np.float64(1e-3), num_iters=10, batch_size=5, update_rule="adam",
                     optim_config={"beta1": np.float64(0.8)})
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert all(isinstance(v, float) for v in hist["learning_rate_history"])
