"""Each update rule against a hand-computed reference, several steps, on every backend."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets import optim, rules

# The training and update-rule tests run on arrays that refuse writes too (tests/_readonly.py).
pytestmark = pytest.mark.readonly_backend

STEPS = 4


def _reference(name, w, grads, cfg):
    """The rules written out on Python floats, one coordinate at a time (the course's formulas)."""
    out = []
    for i in range(len(w)):
        x, v, cache, m, s = w[i], 0.0, 0.0, 0.0, 0.0
        lr = cfg["learning_rate"]
        for t, g in enumerate((gr[i] for gr in grads), start=1):
            if name == "sgd":
                x = x - lr * g
            elif name == "sgd_momentum":
                v = cfg["momentum"] * v - lr * g
                x = x + v
            elif name == "nesterov_momentum":
                v_prev = v
                v = cfg["momentum"] * v - lr * g
                x = x - cfg["momentum"] * v_prev + (1 + cfg["momentum"]) * v
            elif name == "adagrad":
                cache += g * g
                x = x - lr * g / (math.sqrt(cache) + cfg["epsilon"])
            elif name == "rmsprop":
                cache = cfg["decay_rate"] * cache + (1 - cfg["decay_rate"]) * g * g
                x = x - lr * g / (math.sqrt(cache) + cfg["epsilon"])
            elif name == "adam":
                m = cfg["beta1"] * m + (1 - cfg["beta1"]) * g
                s = cfg["beta2"] * s + (1 - cfg["beta2"]) * g * g
                mt = m / (1 - cfg["beta1"] ** t)
                vt = s / (1 - cfg["beta2"] ** t)
                x = x - lr * mt / (math.sqrt(vt) + cfg["epsilon"])
        out.append(x)
    return np.array(out)


CONFIGS = {
    "sgd": {"learning_rate": 0.1},
    "sgd_momentum": {"learning_rate": 0.1, "momentum": 0.9},
    "nesterov_momentum": {"learning_rate": 0.1, "momentum": 0.8},
    "adagrad": {"learning_rate": 0.1, "epsilon": 1e-8},
    "rmsprop": {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-8},
    "adam": {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-8},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rule_matches_hand_computed_reference(bk, dtype_name, name):
    host = np.random.default_rng(0)
    w0 = host.standard_normal(6)
    grads = [host.standard_normal(6) for _ in range(STEPS)]
    rule = optim.get_update_rule(name)
    w = bk.asarray(w0, dtype=getattr(bk.xp, dtype_name), copy=True)  # the rules update w in place
    config = dict(CONFIGS[name])
    for g in grads:
        w, config = rule(w, bk.asarray(g, dtype=w.dtype), config)
        assert_placement(w, backend=bk, shape=(6,), dtype=getattr(bk.xp, dtype_name))
    rtol = 1e-12 if dtype_name == "float64" else 2e-5
    np.testing.assert_allclose(backend.to_numpy(w), _reference(name, w0, grads, CONFIGS[name]), rtol=rtol, atol=rtol)
    for key in ("velocity", "cache", "m", "v"):
        if key in config:
            assert_placement(config[key], like=w)
    if name == "adam":
        assert config["t"] == STEPS


def test_defaults_are_the_course_defaults():
    w = np.zeros(2)
    assert optim.sgd(w, w)[1] == {"learning_rate": 1e-2}
    cfg = optim.adam(np.zeros(2), np.zeros(2))[1]
    assert (cfg["learning_rate"], cfg["beta1"], cfg["beta2"], cfg["epsilon"], cfg["t"]) == (1e-3, 0.9, 0.999, 1e-8, 1)
    assert optim.rmsprop(np.zeros(2), np.zeros(2))[1]["decay_rate"] == 0.99
    assert optim.sgd_momentum(np.zeros(2), np.zeros(2))[1]["momentum"] == 0.9


def test_lookup_by_name():
    assert optim.get_update_rule("adam") is optim.adam
    assert optim.get_update_rule("Momentum") is optim.sgd_momentum
    assert optim.get_update_rule("nesterov") is optim.nesterov_momentum
    assert optim.get_update_rule(optim.sgd) is optim.sgd
    with pytest.raises(ValueError, match="unknown update rule 'adamw'"):
        optim.get_update_rule("adamw")
    with pytest.raises(TypeError):
        optim.get_update_rule(3)
    with pytest.raises(TypeError):
        optim.UPDATE_RULES["mine"] = optim.sgd  # the shared table is read-only


@pytest.mark.parametrize("name", ["sgd_momentum", "nesterov", "rmsprop", "adam"])
def test_linear_classifiers_train_with_the_rules(bk, name):
    # The rules update W in place; on every backend the classifier must keep training through them.
    from xpml.classifiers import Softmax
    from xpml.classifiers.data_utils import append_bias, make_spiral

    X, y = make_spiral(50, 3, xp=bk)
    clf = Softmax(seed=0)
    losses = clf.train(append_bias(X), y, reg=1e-3, num_iters=60, batch_size=50,
                       update_rule=optim.get_update_rule(name), optim_config={"learning_rate": 0.05})
    assert losses[-1] < 0.9 * losses[0]


# ---- nets.rules: the rule table and the transforms -----------------------------------------------


def test_the_rule_table_states_each_rules_state_size():
    assert dict((k, rules.state_size(k)) for k in rules.RULES) == {
        "sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}
    assert rules.state_size("sgd_momentum") == 1 and rules.state_size("Nesterov_Momentum") == 1
    params = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    for name in rules.RULES:
        state = rules.get_rule(name).init(params)
        assert all(len(s) == rules.state_size(name) for s in state["slots"].values())
    with pytest.raises(ValueError, match="unknown update rule 'adamw'; choose one of: sgd, momentum"):
        rules.state_size("adamw")
    with pytest.raises(TypeError, match="adam takes the hyperparameters"):
        rules.get_rule("adam", momentum=0.9)
    with pytest.raises(ValueError, match="beta1 must be in"):
        rules.get_rule("adam", beta1=1.0)
    with pytest.raises(TypeError):
        rules.RULES["mine"] = rules.SGD  # the shared table is read-only


def test_the_command_line_speaks_the_librarys_vocabulary():
    from xpml.cli import _memory, _models

    assert _models.UPDATE_RULES == tuple(rules.RULES)
    sgd, adam = (_memory.net_bytes((10, 5, 2), batch_size=4, eval_rows=4, itemsize=4, update_rule=r)
                 for r in ("sgd", "adam"))
    assert adam - sgd == 4 * 2 * (10 * 5 + 5 + 5 * 2 + 2)  # two arrays per parameter
    with pytest.raises(ValueError, match="unknown update rule"):
        _memory.net_bytes((10, 5, 2), batch_size=4, eval_rows=4, itemsize=4, update_rule="adamw")


def test_sgd_with_l2_l1_and_max_norm_matches_the_course_formulas(bk):
    host = np.random.default_rng(5)
    W0, b0 = host.standard_normal((4, 3)), host.standard_normal(3)
    grads = [{"W": host.standard_normal((4, 3)), "b": host.standard_normal(3)} for _ in range(3)]
    reg, l1, c, lr = 0.1, 0.05, 1.5, 0.2
    opt = rules.chain(rules.l2(reg), rules.l1(l1), rules.max_norm(c), rules.get_rule("sgd"))
    params = {"W": bk.asarray(W0), "b": bk.asarray(b0)}
    state = opt.init(params)
    W, b = W0, b0
    for g in grads:
        penalty = opt.penalty(params)
        np.testing.assert_allclose(float(penalty), reg * (W * W).sum() + l1 * np.abs(W).sum(), rtol=1e-12)
        params, state = opt.update({k: bk.asarray(v) for k, v in g.items()}, state, params, lr)
        W = W - lr * (g["W"] + 2 * reg * W + l1 * np.sign(W))
        W = W * np.minimum(1.0, c / np.linalg.norm(W, axis=0))
        b = b - lr * g["b"]  # biases are not regularized
    np.testing.assert_allclose(backend.to_numpy(params["W"]), W, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(params["b"]), b, rtol=1e-12)
    assert state["count"] == 3
    assert_placement(params["W"], backend=bk, shape=(4, 3), dtype=bk.xp.float64)


def test_averaging_and_a_negative_learning_rate():
    params = {"W": np.ones((2, 2))}
    opt = rules.chain(rules.averaging(0.5), rules.get_rule("sgd"))
    state = opt.init(params)
    new, state = opt.update({"W": np.ones((2, 2))}, state, params, 1.0)
    # Step 1 moves the average by 1 - min(0.5, 1/10) = 0.9 towards the new parameters (0).
    np.testing.assert_allclose(opt.averaged(state)["W"], 0.1)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        optim.sgd(np.zeros(2), np.zeros(2), {"learning_rate": -0.1})
    with pytest.raises(TypeError, match="the last argument must be an update rule"):
        rules.chain(rules.get_rule("sgd"), rules.l2(0.1))
    with pytest.raises(ValueError, match="reg must be a number >= 0"):
        rules.l2(-1.0)
