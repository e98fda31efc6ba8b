"""The attribute classifier: its loss against a naive loop, its gradients in float64, the Solver
training it on a separable problem, per-attribute accuracy, and clear errors for bad attributes."""

import numpy as np
import pytest

from xpml import backend, nets
from xpml.backend.testing import assert_placement
from xpml.classifiers import AttributeClassifier, attribute_accuracy, eval_numerical_gradient_array, rel_error
from xpml.nets import Solver


def _problem(N=8, D=4, C=3, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((N, D))
    Y = np.where(rs.random((N, C)) < 0.5, -1, 1)
    return X, Y


def _naive_loss(W, b, X, Y, reg):
    loss = 0.0
    for i in range(X.shape[0]):
        for j in range(W.shape[1]):
            f = sum(X[i, d] * W[d, j] for d in range(X.shape[1])) + b[j]
            loss += max(0.0, 1.0 - Y[i, j] * f)
    return loss / X.shape[0] + reg * sum(w * w for w in W.ravel())


def _model(bk, D=4, C=3, reg=0.1):
    model = AttributeClassifier(D, C, std=1.0, reg=reg, dtype="float64", seed=1, xp=bk)
    return model


def test_loss_against_a_naive_loop_and_numerical_gradients(bk):
    X, Y = _problem()
    model = _model(bk)
    Xd, Yd = bk.asarray(X, dtype=bk.xp.float64), bk.asarray(Y)
    loss, grads = model.loss(Xd, Yd)
    assert_placement(loss, backend=bk, dtype=bk.xp.float64, shape=())
    W, b = (backend.to_numpy(model.params[k]) for k in ("W", "b"))
    np.testing.assert_allclose(backend.to_numpy(loss), _naive_loss(W, b, X, Y, 0.1), rtol=1e-12)
    one = bk.asarray(1.0, dtype=bk.xp.float64)
    for name in ("W", "b"):
        assert_placement(grads[name], like=model.params[name])
        live = model.params[name]

        def f(v, name=name):
            model.params[name] = v
            return model.loss(Xd, Yd)[0]
        num = eval_numerical_gradient_array(f, live, one)
        model.params[name] = live
        assert rel_error(grads[name], num) < 1e-6, name
    scores = model.loss(Xd)
    assert_placement(scores, backend=bk, dtype=bk.xp.float64, shape=(8, 3))


def test_the_solver_learns_separable_attributes(bk):
    rs = np.random.default_rng(2)
    N, D, C = 200, 5, 4
    X = rs.standard_normal((N, D))
    Y = np.where(X @ rs.standard_normal((D, C)) > 0, 1, -1)
    model = AttributeClassifier(D, C, dtype="float64", xp=bk)
    Xd, Yd = bk.asarray(X, dtype=bk.xp.float64), bk.asarray(Y)
    before = backend.to_numpy(attribute_accuracy(model.predict(Xd), Yd))
    assert isinstance(model, nets.Model)  # trained through the contract, not the course-model adapter
    solver = Solver(model, {"X_train": Xd, "y_train": Yd}, optim_config={"learning_rate": 0.5},
                    batch_size=None, num_epochs=100, train_accuracy=None, verbose=False)
    solver.train()
    pred = model.predict(Xd)
    assert_placement(pred, backend=bk, shape=(N, C))
    assert set(np.unique(backend.to_numpy(pred))) <= {-1, 1}
    acc = attribute_accuracy(pred, Yd)
    assert_placement(acc, backend=bk, shape=(C,))
    acc = backend.to_numpy(acc)
    np.testing.assert_allclose(acc, (backend.to_numpy(pred) == Y).mean(axis=0), rtol=0)
    assert acc.min() >= 0.95 and acc.mean() > before.mean() + 0.2, (before, acc)
    assert solver.loss_history[-1] < 0.5 * solver.loss_history[0]


def test_attributes_outside_plus_or_minus_one_are_refused(bk):
    X, Y = _problem()
    model = _model(bk)
    Xd = bk.asarray(X, dtype=bk.xp.float64)
    bad = Y.copy()
    bad[1, 2] = 0
    with pytest.raises(ValueError, match=r"\+1 .* or -1"):
        model.loss(Xd, bk.asarray(bad))
    with pytest.raises(ValueError, match=r"\+1 .* or -1"):
        Solver(model, {"X_train": Xd, "y_train": bk.asarray(bad)}, train_accuracy=None)
    with pytest.raises(ValueError, match=r"\+1 .* or -1"):
        attribute_accuracy(bk.asarray(Y), bk.asarray(bad))
    with pytest.raises(ValueError, match=r"shape \(8, 3\)"):
        model.loss(Xd, bk.asarray(Y[:, :2]))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        model.predict(bk.asarray(X[:, :2], dtype=bk.xp.float64))
