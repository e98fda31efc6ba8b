"""Functional state (rule 3): updates return new arrays; the owner of a state (the Solver) may
update it in place as a fast path, which gives the same numbers as the functional path, bit for bit."""

import numpy as np
import pytest

from xpml import backend, nets
from xpml.backend import _arith
from xpml.classifiers import LinearSVM, Softmax
from xpml.nets import optim, rules

from ._readonly import READONLY_BACKEND, readonly_arrays


def test_the_readonly_backend_refuses_writes(monkeypatch):
    with readonly_arrays(monkeypatch):
        xp = READONLY_BACKEND.xp
        a = xp.zeros((3,), dtype=xp.float32, device="cpu")
        for update in (lambda: a.__iadd__(1), lambda: (a + 1).__imul__(2), lambda: xp.sum(a).__iadd__(1),
                       lambda: backend.Generator(0, xp=READONLY_BACKEND).normal((2,)).__isub__(1)):
            with pytest.raises(ValueError, match="read-only"):
                update()
        assert not _arith.writeable(a @ xp.ones((3, 2), device="cpu"))


def test_an_in_place_update_rule_is_caught_there(monkeypatch):
    # What the update rules used to do: change w in place and return it.
    def in_place_sgd(w, dw, config=None):
        config = config or {}
        w -= config.get("learning_rate", 1e-2) * dw
        return w, config

    rng = np.random.default_rng(0)
    host = {"X_train": rng.standard_normal((20, 4)), "y_train": rng.integers(0, 3, 20)}
    with readonly_arrays(monkeypatch):
        data = {k: READONLY_BACKEND.asarray(v) for k, v in host.items()}
        model = nets.FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0, xp=READONLY_BACKEND)
        with pytest.raises(ValueError, match="read-only"):
            nets.Solver(model, data, update_rule=in_place_sgd, verbose=False, batch_size=5).train()
        nets.Solver(model, data, update_rule="sgd", verbose=False, batch_size=5, num_epochs=1).train()


@pytest.mark.readonly_backend
@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam"])
def test_rules_leave_their_inputs_alone_and_store_new_state(bk, name):
    rng = np.random.default_rng(1)
    w, dw = bk.asarray(rng.standard_normal((3, 2))), bk.asarray(rng.standard_normal((3, 2)))
    state = bk.asarray(rng.random((3, 2)))  # positive: caches of squared gradients
    before = [backend.to_numpy(a).copy() for a in (w, dw, state)]
    key = {"sgd_momentum": "velocity", "nesterov_momentum": "velocity", "adagrad": "cache", "rmsprop": "cache",
           "adam": "m"}.get(name)
    config = {"learning_rate": 0.1, **({key: state} if key else {})}
    next_w, returned = getattr(optim, name)(w, dw, config=config)  # config by keyword, as the notebooks do
    assert returned is config and next_w is not w
    for a, b in zip(before, (w, dw, state), strict=True):
        np.testing.assert_array_equal(backend.to_numpy(b), a)
    if key:
        assert config[key] is not state and config[key].shape == (3, 2)


@pytest.mark.readonly_backend
@pytest.mark.parametrize("name", list(rules.RULES))
def test_in_place_and_functional_updates_agree_bitwise(bk, name):
    # Every rule with every transform: the in-place update (the Solver's, on writeable arrays)
    # writes into the parameters and state it was given; the functional one changes nothing it was
    # given. Same operations in the same order: the very same numbers.
    rng = np.random.default_rng(4)
    host_params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    host_grads = [{k: rng.standard_normal(v.shape) for k, v in host_params.items()} for _ in range(3)]
    opt = rules.chain(rules.l2(0.1), rules.l1(0.01), rules.max_norm(1.0), rules.averaging(0.9),
                      rules.get_rule(name))

    def run(in_place):
        params = {k: bk.asarray(v, dtype=bk.xp.float32) for k, v in host_params.items()}
        state = opt.init(params)
        for step, grads in enumerate(host_grads):
            grads = {k: bk.asarray(v, dtype=bk.xp.float32) for k, v in grads.items()}
            before = [backend.to_numpy(a).copy() for a in (*params.values(), *grads.values())]
            new, state = opt.update(grads, state, params, 0.1 / (1 + step), in_place=in_place)
            if in_place:
                assert all((new[k] is w) == _arith.writeable(w) for k, w in params.items())
            else:
                after = [backend.to_numpy(a) for a in (*params.values(), *grads.values())]
                for a, b in zip(before, after, strict=True):
                    np.testing.assert_array_equal(b, a)  # nothing it was given changed
            params = new
        return {k: backend.to_numpy(v).copy() for k, v in params.items()} | \
            {f"slot/{k}/{i}": backend.to_numpy(v).copy()
             for k, s in state["slots"].items() for i, v in enumerate(s)} | \
            {f"average/{k}": backend.to_numpy(v).copy() for k, v in opt.averaged(state).items()}

    functional, in_place = run(False), run(True)
    assert functional.keys() == in_place.keys()
    for k in functional:
        np.testing.assert_array_equal(in_place[k], functional[k], err_msg=k)
    assert opt.state_size == rules.state_size(name) + 1  # the average is one more array per parameter


def _train_everything(bk):
    """Several models trained a few steps on ``bk``; their parameters and state, on the host."""
    rng = np.random.default_rng(2)
    X, y = bk.asarray(rng.standard_normal((40, 6)), dtype=bk.xp.float32), bk.asarray(rng.integers(0, 3, 40))
    out = {}
    fc = nets.FullyConnectedNet([8, 8], input_dim=6, num_classes=3, normalization="batchnorm",
                                dropout_keep_ratio=0.7, seed=0, xp=bk)
    solver = nets.Solver(fc, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, update_rule="adam",
                         transforms=[rules.averaging(0.9), rules.l1(1e-3), rules.max_norm(2.0)], batch_size=8,
                         num_epochs=2, verbose=False)
    solver.train()
    out |= {f"fc/{k}": v for k, v in fc.params.items()} | {f"ema/{k}": v for k, v in solver.averaged_params.items()}
    out["fc/running_var"] = fc.bn_params[1]["running_var"]
    net = nets.TwoLayerNet(6, 7, 3, 0.1, seed=0, xp=bk, dropout=0.3)
    net.train(X, y, num_iters=10, batch_size=8, update_rule="rmsprop", reg=1e-2, l1=1e-3)
    out |= {f"two/{k}": v for k, v in net.params.items()}
    clf = Softmax(seed=0)
    clf.train(X, y, num_iters=10, batch_size=8, update_rule=optim.nesterov_momentum)
    out["softmax/W"] = clf.W
    svm = LinearSVM(seed=0)
    svm.train(X, y, num_iters=10, batch_size=8, reg=1e-2)  # SGD with L2: the fused update
    out["svm/W"] = svm.W
    return {k: backend.to_numpy(v).copy() for k, v in out.items()}


def test_fast_path_and_functional_path_agree_bitwise(monkeypatch):
    # On NumPy the guarded fast paths write into fresh temporaries; on read-only arrays every
    # step takes the functional path. Same seed, same operations: the very same numbers.
    fast = _train_everything(backend.get_backend("numpy"))
    with readonly_arrays(monkeypatch):
        functional = _train_everything(READONLY_BACKEND)
    assert fast.keys() == functional.keys()
    for k in fast:
        np.testing.assert_array_equal(functional[k], fast[k], err_msg=k)


def test_arith_helpers_write_only_where_allowed(bk):
    a = bk.xp.ones((2,), dtype=bk.xp.float32, device=bk.device)
    out = _arith.iadd(a, 1.0)
    assert (out is a) == _arith.writeable(a)
    np.testing.assert_array_equal(backend.to_numpy(out), [2.0, 2.0])
    frozen = np.ones(2, np.float32)
    frozen.flags.writeable = False
    for fn, want in ((_arith.iadd, 3.0), (_arith.isub, -1.0), (_arith.imul, 2.0), (_arith.itruediv, 0.5),
                     (_arith.ipow, 1.0)):
        res = fn(frozen, 2.0)
        assert res is not frozen and float(res[0]) == want
    np.testing.assert_array_equal(frozen, [1.0, 1.0])
