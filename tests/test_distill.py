"""Distillation: the notes' modified objective (gradient-checked in float64 on every backend, against
its formula), the teacher's softened probabilities per minibatch, alpha=0 as ordinary training bit
for bit, and a student that learns a teacher's labels."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers import eval_numerical_gradient_array, rel_error
from xpml.nets import Distillation, Ensemble, FullyConnectedNet, Solver, TwoLayerNet
from xpml.nets.losses import DistillationTargets, classification_loss, distillation_loss, softmax_loss

N, D, C = 60, 8, 3


def _host_softmax(s, T=1.0):
    e = np.exp(s / T - (s / T).max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _case(bk, seed=0, n=6, c=5):
    rs = np.random.default_rng(seed)
    x, y = rs.standard_normal((n, c)), rs.integers(0, c, n)
    q = _host_softmax(rs.standard_normal((n, c)), 2.0)
    put = lambda a: bk.asarray(a, dtype=bk.xp.float64)  # noqa: E731
    return x, y, q, put(x), bk.asarray(y), put(q)


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_distillation_loss_by_its_formula_and_gradient(bk, alpha):
    x, y, q, xd, yd, qd = _case(bk)
    T = 3.0
    loss, dx = distillation_loss(xd, yd, qd, temperature=T, alpha=alpha)
    assert_placement(loss, backend=bk, dtype=bk.xp.float64, shape=())
    assert_placement(dx, backend=bk, dtype=bk.xp.float64, shape=x.shape)
    hard = -np.mean(np.log(_host_softmax(x))[np.arange(len(y)), y])
    soft = -np.mean(np.sum(q * np.log(_host_softmax(x, T)), axis=1))
    np.testing.assert_allclose(backend.to_numpy(loss), (1 - alpha) * hard + alpha * T * T * soft, rtol=1e-12)
    num = eval_numerical_gradient_array(
        lambda v: distillation_loss(v, yd, qd, temperature=T, alpha=alpha)[0], xd,
        bk.asarray(1.0, dtype=bk.xp.float64))
    assert rel_error(dx, num) < 1e-6


def test_alpha_zero_is_the_softmax_loss_bit_for_bit(bk):
    _, _, _, xd, yd, qd = _case(bk)
    got = distillation_loss(xd, yd, qd, temperature=4.0, alpha=0.0)
    want = softmax_loss(xd, yd)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(g), backend.to_numpy(w))
    targets = DistillationTargets(yd, qd, temperature=2.0, alpha=0.5)
    assert_close(classification_loss(xd, targets)[1],
                 distillation_loss(xd, yd, qd, temperature=2.0, alpha=0.5)[1], rtol=0)


def test_bad_teachers_temperatures_and_alphas_are_clear_errors():
    bk = backend.as_backend(None)
    _, _, q, xd, yd, _ = _case(bk)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        distillation_loss(xd, yd, q, temperature=0.0, alpha=0.5)
    for a in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"alpha .* must be in \[0, 1\]"):
            distillation_loss(xd, yd, q, temperature=2.0, alpha=a)
    for bad in (q * 2, q - q.max()):
        with pytest.raises(ValueError, match="probability rows"):
            distillation_loss(xd, yd, bad, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match=r"shape \(N, C\) with N = 6"):
        DistillationTargets(yd, q[:3], temperature=2.0, alpha=0.5)
    with pytest.raises(TypeError, match="must be a model with params and scores"):
        Distillation(object())
    with pytest.raises(TypeError, match="distill must be a nets.distill.Distillation"):
        Solver(_net(bk), _data(bk), distill="teacher")
    with pytest.raises(ValueError, match="the teacher has 3 classes but the student 4"):
        Solver(_net(bk, num_classes=4), _data(bk), distill=Distillation(_net(bk)), verbose=False)


def _data(bk, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    centres = 4 * rng.standard_normal((C, D))
    y = rng.integers(0, C, N + 30)
    X = centres[y] + rng.standard_normal((N + 30, D))
    y = y if labels is None else labels(rng, y)
    put = lambda a, dt=None: bk.asarray(a, dtype=dt)  # noqa: E731
    return {"X_train": put(X[:N], bk.xp.float32), "y_train": put(y[:N]), "X_val": put(X[N:], bk.xp.float32),
            "y_val": put(y[N:])}


def _net(bk, seed=0, **kw):
    return FullyConnectedNet(kw.pop("hidden_dims", [12]), input_dim=D, num_classes=kw.pop("num_classes", C),
                             seed=seed, xp=bk, weight_scale=0.1, **kw)


def _train(model, data, **kw):
    kw = {"verbose": False, "num_epochs": 3, "batch_size": 10, "optim_config": {"learning_rate": 0.1}, **kw}
    solver = Solver(model, data, **kw)
    solver.train()
    return solver


@pytest.mark.readonly_backend
def test_the_teacher_probabilities_of_an_ensemble(bk):
    data = _data(bk)
    members = [_net(bk, seed=s) for s in (1, 2)]
    teacher = Distillation(Ensemble(members, weights=[3, 1]), temperature=2.0, alpha=0.5)
    X = data["X_val"]
    probs = teacher.teacher_probs(X)
    assert_placement(probs, backend=bk, dtype=bk.xp.float32, shape=(30, C))
    host = [_host_softmax(backend.to_numpy(m.scores(m.params, X, state={})).astype(np.float64), 2.0) for m in members]
    np.testing.assert_allclose(backend.to_numpy(probs), 0.75 * host[0] + 0.25 * host[1], rtol=1e-5)


@pytest.mark.readonly_backend
def test_distilling_with_alpha_zero_is_ordinary_training_bit_for_bit(bk):
    data = _data(bk)
    teacher = _net(bk, seed=5)
    plain, student = _net(bk), _net(bk)
    a = _train(plain, data)
    b = _train(student, data, distill=Distillation(teacher, temperature=4.0, alpha=0.0))
    assert a.loss_history == b.loss_history
    if b._compiled is not None:  # JAX: the distillation targets do not make every step a new trace
        assert b._compiled.traces == 1
    for k in plain.params:
        assert_placement(student.params[k], backend=bk, dtype=bk.xp.float32)
        np.testing.assert_array_equal(backend.to_numpy(student.params[k]), backend.to_numpy(plain.params[k]))


@pytest.mark.readonly_backend
def test_a_student_learns_the_teachers_soft_labels(bk):
    # The teacher knows the clusters; the student's own labels say nothing (all 0), so whatever it
    # learns of the clusters comes from the teacher's probabilities.
    data = _data(bk)
    teacher = _net(bk, seed=1)
    _train(teacher, data)
    noisy = _data(bk, labels=lambda rng, y: np.zeros_like(y))
    X_val, y_val = data["X_val"], backend.to_numpy(data["y_val"])
    assert np.mean(backend.to_numpy(teacher.predict(X_val)) == y_val) > 0.9
    student = TwoLayerNet(D, 10, C, std=0.1, seed=3, xp=bk)
    _train(student, noisy, distill=Distillation(Ensemble([teacher]), temperature=2.0, alpha=1.0), num_epochs=6,
           restore_best=False)
    alone = TwoLayerNet(D, 10, C, std=0.1, seed=3, xp=bk)
    _train(alone, noisy, num_epochs=6, restore_best=False)
    agree = np.mean(backend.to_numpy(student.predict(X_val)) == y_val)
    assert agree > 0.9 and np.mean(backend.to_numpy(alone.predict(X_val)) == y_val) < 0.5
