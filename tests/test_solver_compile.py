"""The compiled training step (``Solver(compile=True)`` on JAX) against the eager one.

Same seed, same minibatches, same dropout masks: the parameters, running statistics, generator
and losses after several iterations must agree. In float32 they agree to a few units of float32
rounding, not bit for bit: XLA fuses and reorders the arithmetic of the step (sums, products by
the learning rate, Adam's bias corrections computed in the parameters' dtype instead of in Python
floats). In float64 the same differences are ~1e-15, so the tolerance there is tight. The test of
the pure step itself runs on NumPy, with no compiler, where the numbers must be identical.
"""

import numpy as np
import pytest

from xpml import backend, nets
from xpml.classifiers import LinearSVM, Softmax
from xpml.nets import FullyConnectedNet, Solver, TwoLayerNet, rules
from xpml.nets._compile import CompiledStep

N, D, C = 60, 8, 3
# A few float32 roundings of a step, over a few dozen steps; and the float64 equivalent.
TOL = {"float32": 2e-6, "float64": 1e-12}


@pytest.fixture
def jax_cpu():
    statuses = {s.name: s for s in backend.list_backends()}
    if not statuses["jax"].usable:
        pytest.skip(f"jax: {statuses['jax'].reason}")
    return backend.get_backend("jax", device="cpu")


def _data(bk, dtype):
    rng = np.random.default_rng(0)
    centres = 3 * rng.standard_normal((C, D))
    y = rng.integers(0, C, N)
    X = centres[y] + rng.standard_normal((N, D))
    return {"X_train": bk.asarray(X, dtype=getattr(bk.xp, dtype)), "y_train": bk.asarray(y)}


def _assert_same(a: dict, b: dict, dtype, skip=()):
    assert a.keys() == b.keys()
    for k in a:
        if k in skip:
            continue
        x, y = backend.to_numpy(a[k]), backend.to_numpy(b[k])
        assert x.dtype == y.dtype == np.dtype(dtype), k
        # Relative to the array's largest value, or to 1 for arrays of small values (those
        # biases), the scale of the data and of the scores.
        scale = max(float(np.max(np.abs(y))), 1.0)
        assert float(np.max(np.abs(x - y))) <= TOL[dtype] * scale, k


def _fc(bk, dtype):
    return FullyConnectedNet([16, 16], input_dim=D, num_classes=C, seed=0, xp=bk, weight_scale=0.1, dtype=dtype,
                             normalization="batchnorm", dropout_keep_ratio=0.7)


def _train(model, data, compile, **kw):
    kw = {"update_rule": "adam", "optim_config": {"learning_rate": 1e-2}, "batch_size": 10, "num_epochs": 4,
          "verbose": False, "lr_decay": 0.9, **kw}
    solver = Solver(model, data, compile=compile, **kw)
    solver.train()
    return solver


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fc_net_with_batchnorm_dropout_and_adam(jax_cpu, dtype):
    data = _data(jax_cpu, dtype)
    compiled, eager = _fc(jax_cpu, dtype), _fc(jax_cpu, dtype)
    # The biases before a batch norm have a zero gradient in exact arithmetic (the norm removes
    # the mean). With Adam's default epsilon (1e-8) the rounding noise there (~1e-9) becomes
    # steps of the learning rate, different noise in each run; epsilon 1e-3 keeps them tiny.
    adam = {"learning_rate": 1e-2, "epsilon": 1e-3}
    # The steps that record update ratios run eagerly, from the state the compiled steps left.
    kw = {"optim_config": adam, "record_update_ratios": True}
    s1, s2 = _train(compiled, data, True, **kw), _train(eager, data, False, **kw)
    assert s1._compiled is not None and s1._compiled.traces == 1 and s2._compiled is None
    assert s1.rng.counter == s2.rng.counter  # the same minibatches and dropout masks were drawn
    _assert_same(compiled.params, eager.params, dtype)
    _assert_same(compiled.state, eager.state, dtype)
    np.testing.assert_allclose(s1.loss_history, s2.loss_history, rtol=20 * TOL[dtype])
    np.testing.assert_allclose(s1.update_ratio_history["W1"], s2.update_ratio_history["W1"], rtol=1e3 * TOL[dtype])
    X = data["X_train"]
    _assert_same({"scores": compiled.loss(X)}, {"scores": eager.loss(X)}, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_layer_net_with_momentum_l1_and_max_norm(jax_cpu, dtype):
    data = _data(jax_cpu, dtype)

    def run(compile):
        net = TwoLayerNet(D, 12, C, std=0.1, seed=0, xp=jax_cpu, dtype=dtype, dropout=0.3)
        solver = _train(net, data, compile, update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                        transforms=[rules.l1(1e-3), rules.max_norm(3.0), rules.averaging(0.9)])
        return net, solver

    (compiled, s1), (eager, s2) = run(True), run(False)
    assert s1._compiled.traces == 1
    _assert_same(compiled.params, eager.params, dtype)
    _assert_same(s1.averaged_params, s2.averaged_params, dtype)
    np.testing.assert_allclose(s1.loss_history, s2.loss_history, rtol=20 * TOL[dtype])


@pytest.mark.parametrize("model", [LinearSVM, Softmax])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_models_through_their_train(jax_cpu, dtype, model, monkeypatch):
    data = _data(jax_cpu, dtype)
    steps = []

    def run():
        clf = model(seed=0)
        losses = clf.train(data["X_train"], data["y_train"], learning_rate=1e-2, num_iters=30, batch_size=10,
                           update_rule="rmsprop")
        return clf, losses

    real = nets.solver.compiled_step

    def spy(solver, *, enabled=True):
        steps.append(real(solver, enabled=enabled))
        return steps[-1]

    monkeypatch.setattr(nets.solver, "compiled_step", spy)
    compiled, l1 = run()
    assert steps[-1] is not None and steps[-1].traces == 1
    monkeypatch.setattr(nets.solver, "compiled_step", lambda solver, *, enabled=True: real(solver, enabled=False))
    eager, l2 = run()
    _assert_same(compiled.params, eager.params, dtype)
    np.testing.assert_allclose(l1, l2, rtol=20 * TOL[dtype])


def test_a_schedule_does_not_recompile(jax_cpu):
    data = _data(jax_cpu, "float32")
    net = _fc(jax_cpu, "float32")
    solver = _train(net, data, True, schedule=lambda epoch: 1e-2 / (1 + epoch), num_epochs=5)
    assert len(set(solver.learning_rate_history)) == 5
    assert solver._compiled.traces == 1
    # A second train() continues from the same configs and shapes: no new trace either.
    solver.train()
    assert solver._compiled.traces == 1


def test_compile_has_no_effect_elsewhere_and_for_custom_rules(jax_cpu):
    data = _data(jax_cpu, "float32")
    on_numpy = Solver(_fc("numpy", "float32"), _data(backend.get_backend("numpy"), "float32"), verbose=False)
    assert on_numpy._compiled is None

    def rule(w, dw, config=None):
        return w - 1e-3 * dw, config

    assert Solver(_fc(jax_cpu, "float32"), data, update_rule=rule, verbose=False)._compiled is None
    assert Solver(_fc(jax_cpu, "float32"), data, verbose=False, compile=False)._compiled is None


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_the_pure_step_is_the_eager_step(rule):
    """Without a compiler (identity), the pure step must give the eager step's numbers exactly:
    every piece of state it threads through (parameters, running statistics, optimizer arrays and
    step counts, the generator's counter) is the one the eager step mutates."""
    bk = backend.get_backend("numpy")
    data = _data(bk, "float64")

    def run(pure):
        net = _fc(bk, "float64")
        solver = Solver(net, data, update_rule=rule, optim_config={"learning_rate": 1e-2}, batch_size=10,
                        num_epochs=2, verbose=False, lr_decay=0.5)
        if pure:
            solver._compiled = CompiledStep(solver, lambda f: f)
        solver.train()
        return net, solver

    (a, s1), (b, s2) = run(True), run(False)
    assert s1._compiled.traces == len(s1.loss_history)  # every step, untraced
    assert s1.rng.counter == s2.rng.counter
    # Adam's bias corrections from a step count held in an array are computed as
    # -expm1(t log b) in the array's namespace, from a Python int as 1 - b**t: equal to ~1e-16,
    # and the biases before the batch norms (zero gradient, Adam steps on rounding noise) ~1e-11.
    same = np.testing.assert_array_equal if rule != "adam" else \
        lambda x, y, err_msg: np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9, err_msg=err_msg)
    for k in a.params:
        same(a.params[k], b.params[k], err_msg=k)
    for k, v in a.state.items():
        same(v, b.state[k], err_msg=k)
    same(s1.loss_history, s2.loss_history, err_msg="loss")
