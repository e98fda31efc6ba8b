"""Schedules, initialization scales and the regularizers."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient, rel_error
from xpml.nets import ExponentialDecay, InverseTimeDecay, StepDecay, TwoLayerNet, get_schedule
from xpml.nets.init import init_weights
from xpml.nets.regularization import dropout_masks, elastic_net_penalty, l1_penalty, l2_penalty, max_norm


def test_schedules():
    step = StepDecay(0.1, step_size=2, gamma=0.5)
    assert [step(t) for t in range(5)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    exp = ExponentialDecay(0.1, k=0.5)
    assert exp(0) == 0.1 and math.isclose(exp(2), 0.1 * math.exp(-1.0))
    inv = InverseTimeDecay(0.1, k=1.0)
    assert inv(0) == 0.1 and math.isclose(inv(3), 0.025)
    assert get_schedule("1/t", 0.1, k=1.0) == inv
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("cosine", 0.1)
    with pytest.raises(ValueError):
        StepDecay(0.1, step_size=0)


@pytest.mark.parametrize("scheme,expected", [("std", 0.01), ("xavier", 1 / 20), ("he", math.sqrt(2 / 400))])
def test_init_scales(scheme, expected):
    W = init_weights(backend.Generator(0), (400, 300), scheme=scheme, std=0.01)
    assert W.dtype == np.float32
    assert abs(float(np.std(W)) / expected - 1) < 0.02
    net = TwoLayerNet(400, 300, 10, 0.01, init=scheme)
    assert abs(float(np.std(net.params["W1"])) / expected - 1) < 0.02
    assert not np.any(net.params["b1"]) and not np.any(net.params["b2"])


def test_penalties_and_their_gradients(bk):
    W = backend.Generator(0, xp=bk).normal((3, 4), dtype="float64")
    Wh = backend.to_numpy(W)
    for fn, expected in ((lambda W: l2_penalty(W, 0.3), 0.3 * np.sum(Wh**2)),
                         (lambda W: l1_penalty(W, 0.2), 0.2 * np.sum(np.abs(Wh))),
                         (lambda W: elastic_net_penalty(W, l1=0.2, l2=0.3),
                          0.2 * np.sum(np.abs(Wh)) + 0.3 * np.sum(Wh**2))):
        loss, grad = fn(W)
        assert_placement(grad, like=W)
        assert abs(float(loss) - expected) < 1e-12
        assert rel_error(eval_numerical_gradient(lambda w, fn=fn: fn(w)[0], W), grad) < 1e-7


def test_max_norm_clips_only_long_columns(bk):
    host = np.array([[3.0, 0.1, 0.0], [4.0, 0.1, 0.0]])
    W = bk.asarray(host, dtype=bk.xp.float32)
    out = max_norm(W, 1.0)
    assert_placement(out, backend=bk, shape=(2, 3), dtype=bk.xp.float32)
    np.testing.assert_allclose(backend.to_numpy(out), [[0.6, 0.1, 0.0], [0.8, 0.1, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(backend.to_numpy(W), host.astype(np.float32))  # the input is left alone


def test_dropout_masks(bk):
    masks = dropout_masks(backend.Generator(0, xp=bk), (10, 50, 40), drop=0.25)
    assert_placement(masks, backend=bk, shape=(10, 50, 40), dtype=bk.xp.float32)
    host = backend.to_numpy(masks)
    assert set(np.unique(host).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs(host.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    with pytest.raises(ValueError, match="probability of dropping"):
        dropout_masks(backend.Generator(0), (2, 2), drop=1.0)
