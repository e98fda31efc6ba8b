"""LinearSVM and Softmax: SGD as the course does it, the same run on every backend, device discipline."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers import (
    LinearClassifier,
    LinearSVM,
    Softmax,
    make_spiral,
    softmax_loss_vectorized,
    svm_loss_vectorized,
)

# The training and update-rule tests run on arrays that refuse writes too (tests/_readonly.py).
pytestmark = pytest.mark.readonly_backend

MODELS = {"svm": (LinearSVM, svm_loss_vectorized), "softmax": (Softmax, softmax_loss_vectorized)}


def _blobs(bk, dtype="float32", n=30, seed=0):
    # Three well separated clusters plus a bias column: a linear model must fit them.
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = rng.integers(0, 3, n)
    X = centres[y] + rng.normal(size=(n, 2))
    X = np.hstack([X, np.ones((n, 1))])
    return bk.asarray(X, dtype=getattr(bk.xp, dtype)), bk.asarray(y)


@pytest.mark.parametrize("name", MODELS)
def test_training_lowers_the_loss_and_fits(bk, name):
    cls, _ = MODELS[name]
    X, y = _blobs(bk)
    model = cls(seed=1)
    history = model.train(X, y, learning_rate=1e-2, reg=1e-3, num_iters=60, batch_size=16)
    assert isinstance(history, list) and len(history) == 60 and all(isinstance(v, float) for v in history)
    assert np.mean(history[-10:]) < 0.5 * np.mean(history[:5])
    assert_placement(model.W, backend=bk, dtype=X.dtype, shape=(3, 3))
    pred = model.predict(X)
    assert_placement(pred, backend=bk, shape=(30,))
    assert float(bk.xp.mean(bk.xp.astype(pred == y, X.dtype))) > 0.9


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_history_on_every_backend(bk, name, dtype_name):
    cls, _ = MODELS[name]
    X, y = _blobs(bk, dtype_name)
    ref_bk = backend.get_backend("numpy")
    Xr, yr = _blobs(ref_bk, dtype_name)
    run = cls(seed=7).train(X, y, learning_rate=1e-2, num_iters=15, batch_size=8)
    ref = cls(seed=7).train(Xr, yr, learning_rate=1e-2, num_iters=15, batch_size=8)
    np.testing.assert_allclose(run, ref, rtol=1e-5 if dtype_name == "float32" else 1e-12)
    assert cls(seed=8).train(Xr, yr, learning_rate=1e-2, num_iters=15, batch_size=8) != ref


@pytest.mark.parametrize("name", MODELS)
def test_loss_method_is_the_loss_function_at_W(bk, name):
    cls, fn = MODELS[name]
    X, y = _blobs(bk, "float64")
    model = cls()
    model.train(X, y, num_iters=2, batch_size=4)
    loss, grad = model.loss(X, y, 0.1)
    want_loss, want_grad = fn(model.W, X, y, 0.1)
    assert_close(loss, want_loss)
    assert_close(grad, want_grad)


def test_first_iteration_is_the_course_initialisation():
    # W0 = 0.001 randn: the first softmax loss on the spiral is log(3) to three decimals.
    X, y = make_spiral(20, 3, dtype="float64")
    history = Softmax().train(X, y, learning_rate=1e-3, reg=0.0, num_iters=1, batch_size=60)
    assert history[0] == pytest.approx(np.log(3), abs=1e-3)


def test_update_rule_callback_and_verbose(bk, capsys):
    X, y = _blobs(bk)
    calls = []

    def rule(w, dw, config):
        config["steps"] = config.get("steps", 0) + 1
        return w - config["learning_rate"] * dw, config

    seen = []
    model = Softmax()
    hist = model.train(X, y, learning_rate=1e-2, num_iters=101, batch_size=8, verbose=True,
                       update_rule=lambda w, dw, c: calls.append(1) or rule(w, dw, c),
                       callback=lambda it, loss: seen.append((it, loss)))
    assert len(calls) == 101 and [it for it, _ in seen] == list(range(101))
    assert_placement(seen[0][1], backend=bk, dtype=X.dtype, shape=())
    assert hist[0] == pytest.approx(float(seen[0][1]))
    out = capsys.readouterr().out
    assert "iteration 0 / 101: loss" in out and "iteration 100 / 101" in out
    # The default rule is plain SGD: the same seed with an explicit SGD rule gives the same run.
    plain = Softmax().train(X, y, learning_rate=1e-2, num_iters=5, batch_size=8)
    explicit = Softmax().train(X, y, learning_rate=1e-2, num_iters=5, batch_size=8, update_rule=rule)
    np.testing.assert_allclose(plain, explicit, rtol=1e-6)


def test_second_train_continues_and_dtype_option(bk):
    X, y = _blobs(bk, "float64")
    model = LinearSVM(dtype="float32")
    model.train(X, y, num_iters=3, batch_size=4)
    assert model.W.dtype == bk.xp.float32
    W1 = backend.to_numpy(model.W).copy()
    model.train(X, y, num_iters=3, batch_size=4)
    assert not np.array_equal(backend.to_numpy(model.W), W1)
    assert model.train(X, y, num_iters=0) == []


def test_bad_input_is_refused():
    nb = backend.get_backend("numpy")
    X, y = _blobs(nb)
    with pytest.raises(NotImplementedError):
        LinearClassifier().train(X, y, num_iters=1)
    with pytest.raises(RuntimeError, match="train"):
        LinearSVM().predict(X)
    model = LinearSVM()
    strict = backend.get_backend("array_api_strict")
    with pytest.raises(backend.BackendMismatchError):
        model.train(X, strict.asarray(backend.to_numpy(y)))
    for kwargs, err in [(dict(learning_rate=-1.0), ValueError), (dict(num_iters=1.5), TypeError),
                        (dict(batch_size=0), ValueError), (dict(update_rule=3), TypeError)]:
        with pytest.raises(err):
            model.train(X, y, **kwargs)
    model.train(X, y, num_iters=1)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="out of range"):
        model.train(X, y + 3, num_iters=1)
    with pytest.raises(backend.BackendMismatchError):
        model.predict(strict.asarray(backend.to_numpy(X)))


def test_callback_sees_the_weights_of_each_step(bk):
    # A callback may evaluate the model mid-run: W after step i is what step i produced, and the
    # run is the same as one without a callback (the scripts' accuracy curves rely on both).
    X, y = _blobs(bk, "float64")
    steps = []
    model = LinearSVM(seed=3)
    model.train(X, y, learning_rate=1e-2, num_iters=4, batch_size=8,
                callback=lambda it, loss: steps.append(backend.to_numpy(model.W).copy()))
    for i in range(1, 4):
        assert not np.array_equal(steps[i], steps[i - 1]), f"W did not change at step {i}"
    np.testing.assert_array_equal(steps[-1], backend.to_numpy(model.W))
    quiet = LinearSVM(seed=3)
    quiet.train(X, y, learning_rate=1e-2, num_iters=4, batch_size=8)
    np.testing.assert_array_equal(backend.to_numpy(quiet.W), steps[-1])
