"""The Solver: the course's contract and histories, one host read per epoch, the same run on every
backend, and every feature (schedules, early stopping, L1, max-norm, running average, callbacks,
checkpoints and their ensemble, augmentation, divergence), with clear errors for bad data."""

import math

import numpy as np
import pytest

from xpml import backend, nets
from xpml.backend.testing import assert_placement
from xpml.nets import Ensemble, FullyConnectedNet, Solver, StepDecay, TwoLayerNet, rules

# The training tests run on arrays that refuse writes too (tests/_readonly.py).
pytestmark = pytest.mark.readonly_backend

N, D, C = 60, 8, 3


def _data(bk, n=N, seed=0, val=20):
    """Three separable clusters in D dimensions, on ``bk``."""
    rng = np.random.default_rng(seed)
    centres = 5 * rng.standard_normal((C, D))
    y = rng.integers(0, C, n + val)
    X = centres[y] + rng.standard_normal((n + val, D))
    put = lambda a, dt=None: bk.asarray(a, dtype=dt)  # noqa: E731
    return {"X_train": put(X[:n], bk.xp.float32), "y_train": put(y[:n]),
            "X_val": put(X[n:], bk.xp.float32), "y_val": put(y[n:])}


def _net(bk, **kw):
    kw = {"input_dim": D, "num_classes": C, "seed": 0, "xp": bk, "weight_scale": 0.1, **kw}
    return FullyConnectedNet(kw.pop("hidden_dims", [16, 16]), **kw)


def _quiet(**kw):
    return {"verbose": False, "batch_size": 10, "num_epochs": 3, **kw}


def test_course_contract_and_histories(bk):
    data = _data(bk)
    model = _net(bk)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.1}, **_quiet())
    solver.train()
    per_epoch = N // 10
    assert len(solver.loss_history) == 3 * per_epoch and solver.epoch == 3
    # The course checks after the first iteration and at every epoch's end.
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert all(isinstance(v, float) for v in solver.loss_history + solver.val_acc_history)
    assert solver.best_val_acc == max(solver.val_acc_history) > 0.8
    for k, v in model.params.items():  # the best parameters are put back
        np.testing.assert_array_equal(backend.to_numpy(v), backend.to_numpy(solver.best_params[k]))
        assert_placement(v, backend=bk, dtype=bk.xp.float32)
    assert solver.diverged_at is None and not solver.stopped_early
    acc = solver.check_accuracy(data["X_val"], data["y_val"])
    assert isinstance(acc, float) and acc == solver.best_val_acc


def test_the_best_model_comes_back_with_its_running_statistics():
    # A weak signal, so the best validation accuracy comes before the end (epoch 4 of 6 here), and
    # the batch-norm statistics move on after it.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, D)).astype(np.float32), rng.integers(0, C, 300)
    X[:, 0] += y
    data = {"X_train": X[:200], "y_train": y[:200], "X_val": X[200:], "y_val": y[200:]}
    model = _net(backend.get_backend("numpy"), normalization="batchnorm")
    solver = Solver(model, data, optim_config={"learning_rate": 0.05}, batch_size=20, num_epochs=6, verbose=False)
    solver.train()
    assert solver.val_acc_history.index(solver.best_val_acc) < len(solver.val_acc_history) - 1
    # The restored model scores exactly what it scored when it was the best.
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


def test_same_seed_same_run_on_every_backend(bk):
    kw = dict(update_rule="adam", optim_config={"learning_rate": 5e-3}, lr_decay=0.9, **_quiet(), seed=4)

    def run(b):
        model = _net(b, normalization="batchnorm", dropout_keep_ratio=0.7)
        solver = Solver(model, _data(b), **kw)
        solver.train()
        return solver, model

    ref, ref_model = run(backend.get_backend("numpy"))
    got, model = run(bk)
    np.testing.assert_allclose(got.loss_history, ref.loss_history, rtol=1e-4)
    # Accuracies agree to one example: the losses agree to float32 rounding, and a score that ties
    # within rounding may fall to either class on another backend's kernels.
    for name in ("val_acc_history", "train_acc_history"):
        a, b = np.asarray(getattr(got, name)), np.asarray(getattr(ref, name))
        assert a.shape == b.shape and np.all(np.abs(a - b) <= 0.05 + 1e-9), (name, a, b)
    # The biases of the layers batch norm follows do not change the loss (the normalization takes
    # them out again): their gradients are rounding noise, which Adam scales up to full steps, so
    # they (and the running means, which absorb them) wander differently on each backend while every
    # loss above agrees. They are not compared; the running variances do not see them.
    before_norm = {f"b{i + 1}" for i in range(len(model.bn_params))}
    for k in model.params.keys() - before_norm:
        np.testing.assert_allclose(backend.to_numpy(model.params[k]), backend.to_numpy(ref_model.params[k]),
                                   rtol=1e-4, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(backend.to_numpy(model.bn_params[0]["running_var"]),
                               backend.to_numpy(ref_model.bn_params[0]["running_var"]), rtol=1e-4, atol=1e-6)


def test_one_host_read_per_check(monkeypatch):
    bk = backend.get_backend("numpy")
    reads = []
    real = backend.to_numpy
    monkeypatch.setattr(backend, "to_numpy", lambda x: reads.append(1) or real(x))
    solver = Solver(_net(bk), _data(bk), optim_config={"learning_rate": 0.1}, **_quiet(num_epochs=4))
    solver.train()
    assert len(reads) == len(solver.val_acc_history) == 5  # one read per check, none per iteration


def test_verbose_prints_as_the_course(capsys):
    bk = backend.get_backend("numpy")
    Solver(_net(bk), _data(bk), optim_config={"learning_rate": 0.1}, batch_size=10, num_epochs=2,
           print_every=5).train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("(Iteration 1 / 12) loss: ")
    assert lines[1].startswith("(Epoch 0 / 2) train acc: ") and "; val_acc: " in lines[1]
    assert lines[2].startswith("(Iteration 6 / 12)") and lines[-1].startswith("(Epoch 2 / 2)")


def test_overfits_a_small_set_like_the_course():
    # The notebook's sanity check, with its settings: a three-layer net fits 50 examples within 20
    # epochs. Random images at the scale of mean-subtracted CIFAR-10 pixels stand in for the data.
    rng = np.random.default_rng(0)
    data = {"X_train": 60 * rng.standard_normal((50, 3, 32, 32)), "y_train": rng.integers(0, 10, 50),
            "X_val": 60 * rng.standard_normal((30, 3, 32, 32)), "y_val": rng.integers(0, 10, 30)}
    model = FullyConnectedNet([100, 100], weight_scale=1e-2, dtype=np.float64, seed=0)
    solver = Solver(model, data, print_every=10, num_epochs=20, batch_size=25, update_rule="sgd",
                    optim_config={"learning_rate": 1e-2}, verbose=False)
    solver.train()
    assert solver.train_acc_history[-1] == 1.0 and len(solver.loss_history) == 40


def test_schedule_num_iters_and_full_batch():
    bk = backend.get_backend("numpy")
    solver = Solver(_net(bk), _data(bk), schedule=StepDecay(0.2, step_size=2), **_quiet(batch_size=None,
                                                                                       num_iters=5))
    solver.train()
    assert solver.learning_rate_history == [0.2, 0.2, 0.1, 0.1, 0.05]
    assert len(solver.loss_history) == 5


def test_early_stopping_on_validation_accuracy(capsys):
    bk = backend.get_backend("numpy")
    # A zero learning rate never improves the first validation accuracy.
    solver = Solver(_net(bk), _data(bk), optim_config={"learning_rate": 0.0}, patience=2,
                    **_quiet(num_epochs=10, verbose=True, print_every=1000))
    solver.train()
    assert solver.stopped_early and len(solver.val_acc_history) == 3 and solver.epoch == 2
    assert "stopping early" in capsys.readouterr().out
    with pytest.raises(ValueError, match="patience .* validation"):
        Solver(_net(bk), {k: v for k, v in _data(bk).items() if k.endswith("train")}, patience=1)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_is_recorded_and_stops_training(bk, capsys):
    data = _data(bk)
    solver = Solver(_net(bk, weight_scale=1.0), data, optim_config={"learning_rate": 1e30},
                    **_quiet(num_epochs=5, verbose=True, print_every=1000))
    solver.train()
    assert solver.diverged_at is not None and solver.diverged_at < N // 10
    assert solver.stopped_early and len(solver.loss_history) == N // 10  # stopped at the first epoch's end
    assert not math.isfinite(solver.loss_history[solver.diverged_at])
    assert all(math.isfinite(v) for v in solver.loss_history[: solver.diverged_at])
    assert "diverged" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_two_layer_net_and_linear_models_report_divergence(bk):
    data = _data(bk)
    net = TwoLayerNet(D, 10, C, 1.0, xp=bk)
    hist = net.train(data["X_train"], data["y_train"], learning_rate=1e30, num_iters=30, batch_size=10)
    assert hist["diverged_at"] is not None and len(hist["loss_history"]) < 30
    ok = TwoLayerNet(D, 10, C, xp=bk).train(data["X_train"], data["y_train"], num_iters=6, batch_size=10)
    assert ok["diverged_at"] is None
    from xpml.classifiers import LinearSVM

    svm = LinearSVM()
    losses = svm.train(data["X_train"], data["y_train"], learning_rate=1e30, num_iters=30, batch_size=10)
    assert svm.diverged_at is not None and len(losses) < 30


def test_l1_and_max_norm():
    bk = backend.get_backend("numpy")
    data = _data(bk)
    losses = {}
    for l1 in (0.0, 0.5):
        model = _net(bk, hidden_dims=[16])
        W0 = [backend.to_numpy(model.params[k]).copy() for k in ("W1", "W2")]  # the update writes in place
        solver = Solver(model, data, transforms=[rules.l1(l1)], optim_config={"learning_rate": 0.05},
                        **_quiet(num_iters=1))
        solver.train()
        losses[l1] = solver.loss_history[0]
    assert losses[0.5] == pytest.approx(losses[0.0] + 0.5 * sum(np.abs(w).sum() for w in W0), rel=1e-5)
    model = _net(bk, weight_scale=1.0)
    Solver(model, data, transforms=[rules.max_norm(0.5)], optim_config={"learning_rate": 0.5}, restore_best=False,
           **_quiet()).train()
    for k in ("W1", "W2", "W3"):
        assert np.linalg.norm(backend.to_numpy(model.params[k]), axis=0).max() <= 0.5 * (1 + 1e-5)


def test_running_average_of_the_parameters(bk):
    data = _data(bk)
    model = _net(bk, hidden_dims=[8])
    seen = []
    solver = Solver(model, data, transforms=[rules.averaging(0.9)], optim_config={"learning_rate": 0.1},
                    restore_best=False,
                    callback=lambda it, loss: seen.append({k: backend.to_numpy(v).copy()
                                                           for k, v in model.params.items()}),
                    **_quiet(num_iters=7))
    initial = {k: backend.to_numpy(v).copy() for k, v in model.params.items()}  # updated in place
    solver.train()
    expected = dict(initial)
    for t, params in enumerate(seen):
        rate = 1 - min(0.9, (1 + t) / (10 + t))
        expected = {k: expected[k] + rate * (params[k] - expected[k]) for k in params}
    for k, v in solver.averaged_params.items():
        np.testing.assert_allclose(backend.to_numpy(v), expected[k], rtol=1e-5, atol=1e-7)
        assert_placement(v, like=model.params[k])


def test_callbacks_see_device_losses_and_the_histories(bk):
    data = _data(bk)
    steps, checks = [], []
    solver = Solver(_net(bk), data, callback=lambda it, loss: steps.append((it, loss)),
                    epoch_callback=lambda s: checks.append((s.epoch, len(s.loss_history))), **_quiet(num_epochs=2))
    solver.train()
    assert [it for it, _ in steps] == list(range(12))
    assert_placement(steps[0][1], backend=bk, shape=(), dtype=bk.xp.float32)
    assert checks == [(0, 1), (1, 6), (2, 12)]


def test_augmentation_transforms_every_minibatch(bk):
    data = _data(bk)
    seen = []

    def augment(X, rng):
        seen.append(X.shape)
        return -X

    Solver(_net(bk), data, augment=augment, **_quiet(num_epochs=1)).train()
    assert seen == [(10, D)] * (N // 10)


def test_checkpoints_every_epoch_and_their_ensemble(bk, tmp_path):
    data = _data(bk)
    model = _net(bk, normalization="batchnorm")
    solver = Solver(model, data, checkpoint_name=str(tmp_path / "run"), check_ends=False,
                    optim_config={"learning_rate": 0.05}, **_quiet(num_epochs=3))
    solver.train()
    assert [p.rsplit("/", 1)[-1] for p in solver.checkpoints] == [f"run_epoch_{e}.npz" for e in (1, 2, 3)]
    last, info = nets.load_model(solver.checkpoints[-1], xp=bk)
    assert info["hyperparams"]["epoch"] == 3 and info["history"]["val_acc_history"].tolist() == solver.val_acc_history
    ens = Ensemble.from_checkpoints(tmp_path / "run", last=2, xp=bk)
    assert len(ens.models) == 2
    X = data["X_val"]
    want = (backend.to_numpy(ens.models[0].predict_proba(X)) + backend.to_numpy(last.predict_proba(X))) / 2
    np.testing.assert_allclose(backend.to_numpy(ens.predict_proba(X)), want, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        Ensemble.from_checkpoints(tmp_path / "other")


def test_record_update_ratios():
    bk = backend.get_backend("numpy")
    solver = Solver(_net(bk), _data(bk), record_update_ratios=True, **_quiet())
    solver.train()
    assert set(solver.update_ratio_history) == {"W1", "W2", "W3"}
    assert all(len(v) == 3 and min(v) > 0 for v in solver.update_ratio_history.values())


class _CourseStyleSoftmax:
    """A model written as in the course (NumPy, in-place arithmetic): the Solver trains it too."""

    def __init__(self, dim, classes):
        self.params = {"W": 1e-3 * np.random.default_rng(0).standard_normal((dim, classes)), "b": np.zeros(classes)}

    def loss(self, X, y=None):
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y]).mean()
        p[np.arange(len(y)), y] -= 1
        p /= len(y)
        return loss, {"W": X.T @ p, "b": p.sum(axis=0)}


def test_a_course_style_model():
    data = {k: backend.to_numpy(v).astype(np.float64) if k.startswith("X") else backend.to_numpy(v)
            for k, v in _data(backend.get_backend("numpy")).items()}
    solver = Solver(_CourseStyleSoftmax(D, C), data, optim_config={"learning_rate": 0.5}, **_quiet())
    solver.train()
    assert solver.loss_history[-1] < solver.loss_history[0] and solver.best_val_acc > 0.8


def test_bad_data_and_arguments():
    bk = backend.get_backend("numpy")
    data = _data(bk)
    model = _net(bk)
    X, y = data["X_train"], data["y_train"]
    strict = backend.get_backend("array_api_strict", device="device1")
    for bad, err, match in [
        ({"X_train": X}, ValueError, "data lacks y_train"),
        ({"X_train": X, "y_train": y, "X_val": X}, ValueError, "both X_val and y_val"),
        ({"X_train": X, "y_train": y[:10]}, ValueError, "same number of rows"),
        ({"X_train": X[:, :3], "y_train": y}, ValueError, r"shape \(N, 8\)"),
        ({"X_train": X, "y_train": y + 5}, ValueError, "out of range for 3 classes"),
        ({"X_train": X, "y_train": y, "X_val": X * np.nan, "y_val": y}, ValueError, r"data\['X_val'\] contains"),
        ({"X_train": strict.asarray(backend.to_numpy(X)), "y_train": y}, backend.BackendMismatchError,
         r"backend\.to_backend\(data\['X_train'\], model\.backend\)"),
        ([X, y], TypeError, "data must be a dict"),
    ]:
        with pytest.raises(err, match=match):
            Solver(model, bad)
    for kwargs, err, match in [({"update_rule": "adamw"}, ValueError, "unknown update rule"),
                               ({"batch_size": 0}, ValueError, "batch_size must be > 0"),
                               ({"transforms": "l2"}, TypeError, "transforms must be a sequence"),
                               ({"transforms": [0.1]}, TypeError, "chain"),
                               ({"optim_config": {"learning_rate": -1e-3}}, ValueError, "negative rate"),
                               ({"optim_config": {"learning_rate": 0.1, "momentum": 1.5},
                                 "update_rule": "momentum"}, ValueError, "momentum must be in"),
                               ({"train_accuracy": "all"}, ValueError, "train_accuracy"),
                               ({"lr_decay": -1}, ValueError, "lr_decay"),
                               ({"optim_config": [1]}, TypeError, "optim_config must be a dict"),
                               ({"schedule": 0.1}, TypeError, "schedule must be callable"),
                               ({"learning_rate": 0.1}, TypeError, "unexpected keyword")]:
        with pytest.raises(err, match=match):
            Solver(model, data, **kwargs)
    with pytest.raises(TypeError, match="params dict and a loss"):
        Solver(object(), data)
    with pytest.raises(TypeError, match="cannot checkpoint"):
        Solver(_CourseStyleSoftmax(D, C), {k: backend.to_numpy(v) for k, v in data.items()}, checkpoint_name="x")


def test_numpy_scalar_hyperparameters_keep_float32():
    bk = backend.get_backend("numpy")
    model = _net(bk)
    solver = Solver(model, _data(bk), optim_config={"learning_rate": np.float64(0.1), "momentum": np.float64(0.9)},
                    update_rule="sgd_momentum", lr_decay=np.float64(0.9), **_quiet())
    solver.train()
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert all(v.dtype == np.float32 for (v,) in solver.optimizer_state["slots"].values())


def test_a_schedule_giving_a_negative_learning_rate_is_refused():
    bk = backend.get_backend("numpy")
    solver = Solver(_net(bk), _data(bk), schedule=lambda epoch: 0.1 - 0.1 * epoch, **_quiet())
    with pytest.raises(ValueError, match="schedule's learning rate must be a finite number >= 0"):
        solver.train()
    assert solver.epoch == 2  # epochs 0 and 1 ran at 0.1 and 0.0
