"""Training: histories, per-epoch decay and schedules, determinism across backends, the options."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets import StepDecay, TwoLayerNet

# The training and update-rule tests run on arrays that refuse writes too (tests/_readonly.py).
pytestmark = pytest.mark.readonly_backend

N, D, H, C = 40, 6, 8, 3


def _data(bk):
    rng = backend.Generator(7, xp=bk)
    X = rng.normal((N, D))
    y = rng.integers(0, C, (N,))
    return X, y, X[:10, :], y[:10]


OPTIONS = [
    {},
    {"update_rule": "adam", "dropout": 0.3, "l1": 1e-3, "max_norm": 1.0},
    {"update_rule": "nesterov", "optim_config": {"momentum": 0.8}, "schedule": StepDecay(0.05, step_size=2)},
]


@pytest.mark.parametrize("options", OPTIONS, ids=["sgd", "adam-dropout-l1-maxnorm", "nesterov-step"])
def test_same_seed_same_history_on_every_backend(bk, options):
    kw = dict(learning_rate=0.05, reg=1e-3, num_iters=25, batch_size=8, **options)
    ref_net = TwoLayerNet(D, H, C, 0.1, seed=3)
    ref = ref_net.train(*_data(backend.get_backend("numpy")), **kw)
    net = TwoLayerNet(D, H, C, 0.1, seed=3, xp=bk)
    hist = net.train(*_data(bk), **kw)
    for key in ("loss_history", "train_acc_history", "val_acc_history"):
        np.testing.assert_allclose(hist[key], ref[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for k in net.params:
        assert_placement(net.params[k], backend=bk, dtype=bk.xp.float32)
        np.testing.assert_allclose(backend.to_numpy(net.params[k]), ref_net.params[k], rtol=1e-4, atol=1e-6)


def test_history_shapes_and_the_per_epoch_decay():
    X, y, Xv, yv = _data(backend.get_backend("numpy"))
    net = TwoLayerNet(D, H, C, 0.1)
    hist = net.train(X, y, Xv, yv, learning_rate=0.1, learning_rate_decay=0.5, num_iters=22, batch_size=8,
                     record_update_ratios=True)
    # 40 // 8 = 5 iterations per epoch: 4 complete epochs in 22 iterations.
    assert len(hist["loss_history"]) == 22
    assert len(hist["train_acc_history"]) == len(hist["val_acc_history"]) == 4
    assert hist["learning_rate_history"] == [0.1, 0.05, 0.025, 0.0125]
    assert all(isinstance(v, float) for v in hist["loss_history"] + hist["val_acc_history"])
    assert len(hist["update_ratio_history"]["W1"]) == 4
    assert all(r > 0 for r in hist["update_ratio_history"]["W2"])


def test_schedule_replaces_the_decay():
    X, y, _, _ = _data(backend.get_backend("numpy"))
    hist = TwoLayerNet(D, H, C).train(X, y, num_iters=10, batch_size=None, schedule=StepDecay(1.0, step_size=4))
    assert hist["learning_rate_history"] == [1.0] * 4 + [0.5] * 4 + [0.25] * 2
    assert hist["val_acc_history"] == []


def test_callback_gets_device_losses(bk):
    X, y, _, _ = _data(bk)
    seen = []
    net = TwoLayerNet(D, H, C, xp=bk)
    net.train(X, y, num_iters=3, batch_size=8, callback=lambda it, loss: seen.append((it, loss)))
    assert [it for it, _ in seen] == [0, 1, 2]
    for _, loss in seen:
        assert_placement(loss, backend=bk, shape=(), dtype=bk.xp.float32)


def test_dropout_is_training_only():
    X, y, _, _ = _data(backend.get_backend("numpy"))
    net = TwoLayerNet(D, H, C, 0.1, dropout=0.5)
    np.testing.assert_array_equal(net.predict_proba(X), net.predict_proba(X))
    a = TwoLayerNet(D, H, C, 0.1, seed=1).train(X, y, num_iters=5, batch_size=8, dropout=0.5)
    b = TwoLayerNet(D, H, C, 0.1, seed=1).train(X, y, num_iters=5, batch_size=8)
    assert a["loss_history"] != b["loss_history"]


def test_max_norm_holds_after_training():
    X, y, _, _ = _data(backend.get_backend("numpy"))
    net = TwoLayerNet(D, H, C, 1.0)
    net.train(X, y, learning_rate=0.5, num_iters=5, batch_size=8, max_norm=0.5)
    for k in ("W1", "W2"):
        assert np.linalg.norm(net.params[k], axis=0).max() <= 0.5 * (1 + 1e-5)


def test_bad_training_arguments():
    X, y, Xv, yv = _data(backend.get_backend("numpy"))
    net = TwoLayerNet(D, H, C)
    with pytest.raises(ValueError, match="both X_val and y_val"):
        net.train(X, y, Xv)
    with pytest.raises(ValueError, match="unknown update rule"):
        net.train(X, y, update_rule="adamax")
    with pytest.raises(ValueError, match="learning_rate"):
        net.train(X, y, learning_rate=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        net.train(np.full((N, D), np.nan, np.float32), y)


def test_verbose_prints_once_per_epoch(capsys):
    X, y, Xv, yv = _data(backend.get_backend("numpy"))
    TwoLayerNet(D, H, C).train(X, y, Xv, yv, num_iters=10, batch_size=8, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1 (iteration 5 / 10): loss ") and "val acc" in lines[0]
