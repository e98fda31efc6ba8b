"""The notes' sanity checks and diagnostics, and ensembles."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets import Ensemble, TwoLayerNet
from xpml.nets.diagnostics import first_layer_images, initial_loss_check, overfit_tiny_subset, update_to_weight_ratio


def _data(bk, n=30, d=12, c=5):
    rng = backend.Generator(4, xp=bk)
    return rng.normal((n, d)), rng.integers(0, c, (n,))


def test_initial_loss_is_log_c(bk):
    X, y = _data(bk)
    check = initial_loss_check(TwoLayerNet(12, 10, 5, xp=bk), X, y)
    assert check["ok"] and check["expected"] == math.log(5)
    assert abs(check["loss"] - math.log(5)) < 1e-3


def test_overfit_tiny_subset(bk):
    X, y = _data(bk)
    result = overfit_tiny_subset(TwoLayerNet(12, 30, 5, init="he", xp=bk), X, y, n=10, num_iters=150,
                                 learning_rate=1e-2)
    assert result["train_accuracy"] == 1.0
    assert result["final_loss"] < 0.05 < result["loss_history"][0]


def test_update_to_weight_ratio(bk):
    W = bk.asarray(np.full((2, 2), 2.0))
    r = update_to_weight_ratio(W, W + 2e-3)
    assert_placement(r, backend=bk, shape=())
    assert abs(float(r) - 1e-3) < 1e-12


def test_first_layer_images(bk):
    W1 = backend.Generator(0, xp=bk).normal((4 * 4 * 3, 5))
    grid = first_layer_images(W1, image_shape=(4, 4, 3), padding=1)
    # 5 units -> a 3 x 3 grid of 4 x 4 tiles with 1 pixel between them.
    assert_placement(grid, backend=bk, shape=(14, 14, 3), dtype=bk.xp.float32)
    g = backend.to_numpy(grid)
    w = backend.to_numpy(W1)[:, 1].reshape(4, 4, 3)
    np.testing.assert_allclose(g[0:4, 5:9], 255 * (w - w.min()) / (w.max() - w.min()), rtol=1e-5, atol=1e-4)
    assert g.min() == 0.0 and abs(g.max() - 255.0) < 1e-3
    assert not g[10:, 5:].any()  # the padding tiles of units 6..9 stay blank
    with pytest.raises(ValueError, match="image_shape"):
        first_layer_images(W1, image_shape=(3, 3, 3))


def test_ensemble_averages_probabilities(bk):
    X, _ = _data(bk)
    nets_ = [TwoLayerNet(12, 10, 5, 0.5, seed=s, xp=bk) for s in range(3)]
    ens = Ensemble(nets_)
    probs = ens.predict_proba(X)
    assert_placement(probs, backend=bk, shape=(30, 5), dtype=bk.xp.float32)
    expected = np.mean([backend.to_numpy(n.predict_proba(X)) for n in nets_], axis=0)
    np.testing.assert_allclose(backend.to_numpy(probs), expected, rtol=1e-5)
    np.testing.assert_array_equal(backend.to_numpy(ens.predict(X)), expected.argmax(1))
    weighted = Ensemble(nets_, weights=[1, 0, 0]).predict_proba(X)
    np.testing.assert_allclose(backend.to_numpy(weighted), backend.to_numpy(nets_[0].predict_proba(X)), rtol=1e-6)


def test_ensemble_errors():
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(TypeError, match="predict_proba"):
        Ensemble([object()])
    with pytest.raises(ValueError, match="weights"):
        Ensemble([TwoLayerNet(2, 2, 2)], weights=[-1])


@pytest.mark.parametrize("weights, match", [
    ([math.nan, 1.0], "finite"),
    ([math.inf, 1.0], "finite"),
    ([-1.0, 2.0], "negative"),
    ([0.0, 0.0], "all zero"),
    ([1.0], "one weight per model"),
    ([1.0, 1.0, 1.0], "one weight per model"),
])
def test_ensemble_refuses_weights_that_are_not_a_distribution(weights, match):
    members = [TwoLayerNet(2, 2, 2, seed=s) for s in range(2)]
    with pytest.raises(ValueError, match=match):
        Ensemble(members, weights=weights)


def test_ensemble_refuses_weights_that_are_not_numbers():
    members = [TwoLayerNet(2, 2, 2, seed=s) for s in range(2)]
    with pytest.raises(TypeError, match="weights"):
        Ensemble(members, weights=["a", 1.0])
    with pytest.raises(TypeError, match="weights"):
        Ensemble(members, weights=[True, 1.0])
