"""Fine-tuning: a new head for a trained net, layers frozen bit for bit or trained more slowly,
from a checkpoint, on every backend, with clear errors for names and layers that do not fit."""

import numpy as np
import pytest

from xpml import backend, nets
from xpml.backend.testing import assert_placement
from xpml.nets import FullyConnectedNet, Solver, TwoLayerNet, rules

pytestmark = pytest.mark.readonly_backend

N, D = 60, 8


def _data(bk, C, seed=0):
    rng = np.random.default_rng(seed)
    centres = 4 * rng.standard_normal((C, D))
    y = rng.integers(0, C, N)
    X = centres[y] + rng.standard_normal((N, D))
    return {"X_train": bk.asarray(X, dtype=bk.xp.float32), "y_train": bk.asarray(y)}


def _net(bk, C=3, **kw):
    return FullyConnectedNet(kw.pop("hidden_dims", [10, 7]), input_dim=D, num_classes=C, seed=0, xp=bk,
                             weight_scale=0.1, **kw)


def _host(params):
    return {k: backend.to_numpy(v).copy() for k, v in params.items()}


def test_replace_head_keeps_the_body_and_draws_a_new_head(bk):
    base = _net(bk)
    new = nets.replace_head(base, 5, seed=1)
    assert type(new) is FullyConnectedNet and new.num_classes == 5 and new is not base
    assert list(new.params) == list(base.params)
    for k in ("W1", "b1", "W2", "b2"):
        assert_placement(new.params[k], backend=bk, dtype=bk.xp.float32, shape=tuple(base.params[k].shape))
        np.testing.assert_array_equal(backend.to_numpy(new.params[k]), backend.to_numpy(base.params[k]))
    assert_placement(new.params["W3"], backend=bk, dtype=bk.xp.float32, shape=(7, 5))
    assert_placement(new.params["b3"], backend=bk, dtype=bk.xp.float32, shape=(5,))
    assert not np.any(backend.to_numpy(new.params["b3"]))
    # The head is drawn from the seed, the same on every backend.
    again = nets.replace_head(base, 5, seed=1)
    np.testing.assert_array_equal(backend.to_numpy(again.params["W3"]), backend.to_numpy(new.params["W3"]))
    assert new.scores(new.params, _data(bk, 3)["X_train"], state=new.state).shape == (N, 5)


def test_training_the_new_net_leaves_the_original_alone():
    base = _net(None)
    before = _host(base.params)
    new = nets.replace_head(base, 4, seed=0)
    Solver(new, _data(backend.as_backend(None), 4), verbose=False, num_epochs=1, batch_size=20,
           optim_config={"learning_rate": 0.1}).train()
    for k, v in before.items():
        np.testing.assert_array_equal(backend.to_numpy(base.params[k]), v)
    assert not np.array_equal(backend.to_numpy(new.params["W1"]), before["W1"])


def test_replace_head_works_on_a_two_layer_net_and_keeps_batchnorm_statistics():
    two = TwoLayerNet(D, 6, 3, seed=0)
    new = nets.replace_head(two, 2, seed=0)
    assert new.params["W2"].shape == (6, 2) and new.params["W1"] is not two.params["W1"]
    bn = _net(None, normalization="batchnorm")
    Solver(bn, _data(backend.as_backend(None), 3), verbose=False, num_epochs=1, batch_size=20).train()
    new = nets.replace_head(bn, 4, seed=0)
    for k, v in bn.state.items():
        np.testing.assert_array_equal(new.state[k], v)


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_frozen_layers_stay_bit_for_bit(bk, rule):
    net = nets.replace_head(_net(bk), 4, seed=0)
    before = _host(net.params)
    frozen = nets.finetune.body_names(net)
    assert frozen == ["W1", "b1", "W2", "b2"]
    solver = Solver(net, _data(bk, 4), update_rule=rule, optim_config={"learning_rate": 0.05}, verbose=False,
                    num_epochs=2, batch_size=20, transforms=[rules.l2(1e-3), rules.freeze(frozen)])
    solver.train()
    for k in frozen:
        assert_placement(net.params[k], backend=bk, dtype=bk.xp.float32)
        np.testing.assert_array_equal(backend.to_numpy(net.params[k]), before[k])
    assert not np.array_equal(backend.to_numpy(net.params["W3"]), before["W3"])
    assert solver.loss_history[-1] < solver.loss_history[0]


def test_learning_rate_factors_scale_the_step(bk):
    net = _net(bk)
    params = net.params
    loss, grads, _ = net.loss_and_grads(params, *_data(bk, 3).values(), state=net.state)
    scaled = rules.chain(rules.scale_learning_rate({"W": 0.5, "W2": 0.25, "b1": 0.0}), rules.get_rule("sgd"))
    got, _ = scaled.update(grads, scaled.init(params), params, 0.1)
    plain = rules.chain(rules.get_rule("sgd"))
    for k in params:
        # The exact name wins over the prefix "W"; the longest prefix over shorter ones.
        factor = {"W1": 0.5, "W2": 0.25, "W3": 0.5, "b1": 0.0}.get(k, 1.0)
        want, _ = plain.update({k: grads[k]}, plain.init({k: params[k]}), {k: params[k]}, 0.1 * factor)
        assert_placement(got[k], backend=bk, dtype=bk.xp.float32)
        np.testing.assert_array_equal(backend.to_numpy(got[k]), backend.to_numpy(want[k]))


def test_frozen_in_place_and_functional_updates_agree():
    net = _net(None)
    X, y = _data(backend.as_backend(None), 3).values()
    opt = rules.chain(rules.freeze("W1,b1"), rules.scale_learning_rate({"W2": 0.1}), rules.get_rule("momentum"))
    p1 = {k: v.copy() for k, v in net.params.items()}
    p2 = {k: v.copy() for k, v in net.params.items()}
    s1, s2 = opt.init(p1), opt.init(p2)
    for _ in range(3):
        g1 = net.loss_and_grads(p1, X, y, state={})[1]
        g2 = net.loss_and_grads(p2, X, y, state={})[1]
        p1, s1 = opt.update(g1, s1, p1, 0.1)
        p2, s2 = opt.update(g2, s2, p2, 0.1, in_place=True)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    np.testing.assert_array_equal(p1["W1"], net.params["W1"])


def test_bad_names_and_factors_are_clear_errors():
    net = _net(None)
    with pytest.raises(ValueError, match=r"no parameter named 'W9'.*W1, b1, W2, b2, W3, b3"):
        Solver(net, _data(backend.as_backend(None), 3), transforms=[rules.freeze(["W9"])], verbose=False)
    with pytest.raises(ValueError, match="scale_learning_rate: the model has no parameter named 'gamma'"):
        rules.chain(rules.scale_learning_rate({"gamma": 0.1}), rules.get_rule("sgd")).init(net.params)
    with pytest.raises(ValueError, match="learning-rate factor of 'W1'"):
        rules.scale_learning_rate({"W1": -1})
    with pytest.raises(ValueError, match="at least one parameter name"):
        rules.freeze([])
    with pytest.raises(ValueError, match="no layers named W1/b1"):
        nets.finetune.head_names({"gamma1": net.params["b1"]})


def test_load_pretrained_replaces_the_head_when_the_classes_differ(tmp_path, bk):
    base = _net(None)
    Solver(base, _data(backend.as_backend(None), 3), verbose=False, num_epochs=1, batch_size=20).train()
    path = tmp_path / "base.npz"
    nets.save_model(path, base)
    same = nets.load_pretrained(path, xp=bk)
    assert same.num_classes == 3
    np.testing.assert_array_equal(backend.to_numpy(same.params["W3"]), base.params["W3"])
    new = nets.load_pretrained(path, num_classes=5, input_dim=D, seed=0, xp=bk)
    assert_placement(new.params["W3"], backend=bk, dtype=bk.xp.float32, shape=(7, 5))
    np.testing.assert_array_equal(backend.to_numpy(new.params["W1"]), base.params["W1"])
    fresh = nets.load_pretrained(path, new_head=True, seed=3, xp=bk)
    assert not np.array_equal(backend.to_numpy(fresh.params["W3"]), base.params["W3"])
    with pytest.raises(ValueError, match="first layer takes 8 inputs but the data has 3072"):
        nets.load_pretrained(path, input_dim=3072)


def test_the_command_line_fine_tunes_a_checkpoint_with_frozen_layers(tmp_path, capsys):
    from xpml.cli import train

    from ._scripts_support import SHORT, TINY

    assert train.main([*TINY, *SHORT, "--hidden-dims", "16", "fc", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    base, _ = nets.load_model(tmp_path / "a" / "fc.npz")
    assert train.main([*TINY, *SHORT, "fc", "--init-from", str(tmp_path / "a" / "fc.npz"), "--freeze", "W1,b1",
                       "--out", str(tmp_path / "b"), "--quiet"]) == 0
    tuned, _ = nets.load_model(tmp_path / "b" / "fc.npz")
    assert tuned.hidden_dims == base.hidden_dims  # the checkpoint decides the net
    for k in ("W1", "b1"):
        np.testing.assert_array_equal(tuned.params[k], base.params[k])
    assert not np.array_equal(tuned.params["W2"], base.params["W2"])
    capsys.readouterr()
    ckpt = str(tmp_path / "a" / "fc.npz")
    for args, message in ((["fc", "--init-from", ckpt, "--freeze", "W9"], "no parameter named 'W9'"),
                          (["fc", "--freeze", "W1"], "--freeze needs --init-from"),
                          (["svm", "--init-from", ckpt], "--init-from applies to fc")):
        assert train.main([*TINY, *SHORT, *args, "--out", str(tmp_path / "c"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and message in err
