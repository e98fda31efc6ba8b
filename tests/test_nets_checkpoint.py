"""Checkpoints: save on one backend, load on another, identical predictions; atomic, pickle-free."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.io import CorruptFileError
from xpml.nets import TwoLayerNet, load_model, save_model


def _trained(bk):
    rng = backend.Generator(0, xp=bk)
    X, y = rng.normal((30, 6)), rng.integers(0, 3, (30,))
    net = TwoLayerNet(6, 7, 3, 0.1, init="he", seed=5, xp=bk, dropout=0.2)
    hist = net.train(X, y, X, y, num_iters=20, batch_size=10, record_update_ratios=True, update_rule="adam")
    return net, hist, X


@pytest.mark.parametrize("direction", ["save-here-load-numpy", "save-numpy-load-here"])
def test_save_on_one_backend_load_on_another(bk, tmp_path, direction):
    numpy_bk = backend.get_backend("numpy")
    src, dst = (bk, numpy_bk) if direction == "save-here-load-numpy" else (numpy_bk, bk)
    net, hist, X = _trained(src)
    path = tmp_path / "net.npz"
    save_model(path, net, hyperparams={"learning_rate": 1e-3, "update_rule": "adam", "schedule": None},
               history=hist, arrays={"mean": X[0, :]})
    loaded, info = load_model(path, xp=dst)
    assert loaded.backend == dst and repr(loaded).startswith("TwoLayerNet(6, 7, 3, init='he'")
    assert loaded.dropout == 0.2 and loaded.seed == 5
    for k in net.params:
        np.testing.assert_array_equal(backend.to_numpy(loaded.params[k]), backend.to_numpy(net.params[k]))
    X_dst = backend.to_backend(X, dst)
    np.testing.assert_array_equal(backend.to_numpy(loaded.predict(X_dst)), backend.to_numpy(net.predict(X)))
    assert backend.backend_of(info["arrays"]["mean"]) == dst
    np.testing.assert_array_equal(backend.to_numpy(info["arrays"]["mean"]), backend.to_numpy(X[0, :]))
    assert info["hyperparams"] == {"learning_rate": 1e-3, "update_rule": "adam", "schedule": None}
    assert info["history"]["loss_history"] == pytest.approx(hist["loss_history"])
    assert info["history"]["update_ratio_history"]["W1"] == pytest.approx(hist["update_ratio_history"]["W1"])


def test_a_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    net, _, X = _trained(backend.get_backend("numpy"))
    path = tmp_path / "net.npz"
    save_model(path, net)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, TwoLayerNet(6, 7, 3, seed=99))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left behind
    np.testing.assert_array_equal(load_model(path)[0].predict(X), net.predict(X))


def test_bad_files(tmp_path):
    truncated = tmp_path / "t.npz"
    net, _, _ = _trained(backend.get_backend("numpy"))
    save_model(truncated, net)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CorruptFileError):
        load_model(truncated)
    other = tmp_path / "o.npz"
    np.savez(other, a=np.zeros(2))
    with pytest.raises(CorruptFileError, match="not an xpml checkpoint"):
        load_model(other)
    pickled = tmp_path / "p.npz"
    np.savez(pickled, format_version=1, obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CorruptFileError):
        load_model(pickled)
    with pytest.raises(TypeError, match="number or a string"):
        save_model(tmp_path / "h.npz", net, hyperparams={"layers": [1, 2]})


# ---- any model; formats; hostile files ------------------------------------------------------------

def _fc(bk):
    from xpml.nets import FullyConnectedNet, Solver

    rng = np.random.default_rng(0)
    X, y = bk.asarray(rng.standard_normal((40, 6)), dtype=bk.xp.float32), bk.asarray(rng.integers(0, 3, 40))
    net = FullyConnectedNet([7, 5], input_dim=6, num_classes=3, normalization="batchnorm", dropout_keep_ratio=0.8,
                            activation="tanh", init="he", seed=2, xp=bk)
    Solver(net, {"X_train": X, "y_train": y}, batch_size=8, num_epochs=2, verbose=False).train()
    return net, X


@pytest.mark.parametrize("direction", ["save-here-load-numpy", "save-numpy-load-here"])
def test_fully_connected_net_round_trip(bk, tmp_path, direction):
    numpy_bk = backend.get_backend("numpy")
    src, dst = (bk, numpy_bk) if direction == "save-here-load-numpy" else (numpy_bk, bk)
    net, X = _fc(src)
    save_model(tmp_path / "fc.npz", net)
    loaded, _ = load_model(tmp_path / "fc.npz", xp=dst)
    assert repr(loaded) == repr(net).replace(f"'{src.label}'", f"'{dst.label}'")
    assert loaded.backend == dst and loaded.seed == 2 and loaded.init == "he"
    for k in net.params:
        np.testing.assert_array_equal(backend.to_numpy(loaded.params[k]), backend.to_numpy(net.params[k]))
    # The running statistics travel with the parameters: test-mode predictions are identical.
    np.testing.assert_array_equal(backend.to_numpy(loaded.bn_params[1]["running_var"]),
                                  backend.to_numpy(net.bn_params[1]["running_var"]))
    # Loaded where it was saved, the net computes exactly what it computed before; on another
    # backend the same arithmetic in float32 may round differently (another BLAS), by an ulp or so.
    same, _ = load_model(tmp_path / "fc.npz", xp=src)
    np.testing.assert_array_equal(backend.to_numpy(same.predict_proba(X)), backend.to_numpy(net.predict_proba(X)))
    X_dst = backend.to_backend(X, dst)
    np.testing.assert_allclose(backend.to_numpy(loaded.predict_proba(X_dst)), backend.to_numpy(net.predict_proba(X)),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(backend.to_numpy(loaded.predict(X_dst)), backend.to_numpy(net.predict(X)))


@pytest.mark.parametrize("name", ["LinearSVM", "Softmax"])
def test_linear_models_round_trip(bk, tmp_path, name):
    import xpml.classifiers as classifiers

    rng = np.random.default_rng(0)
    X, y = bk.asarray(rng.standard_normal((30, 4))), bk.asarray(rng.integers(0, 3, 30))
    clf = getattr(classifiers, name)(seed=4)
    with pytest.raises(RuntimeError, match="not trained"):
        save_model(tmp_path / "c.npz", clf)
    clf.train(X, y, num_iters=5, batch_size=10)
    save_model(tmp_path / "c.npz", clf, arrays={"mean": X[0, :]})
    loaded, info = load_model(tmp_path / "c.npz", xp=bk)
    assert type(loaded) is type(clf) and loaded.seed == 4
    np.testing.assert_array_equal(backend.to_numpy(loaded.W), backend.to_numpy(clf.W))
    np.testing.assert_array_equal(backend.to_numpy(loaded.predict(X)), backend.to_numpy(clf.predict(X)))
    assert backend.backend_of(info["arrays"]["mean"]) == bk


def test_format_1_checkpoints_still_load(tmp_path):
    net, _, X = _trained(backend.get_backend("numpy"))
    old = {"format_version": 1, **{f"param/{k}": v for k, v in net.params.items()},
           "net/input_size": 6, "net/hidden_size": 7, "net/output_size": 3, "net/std": 0.1, "net/init": "he",
           "net/dtype": "float32", "net/dropout": 0.2, "net/seed": 5, "hyper/learning_rate": 1e-3}
    np.savez(tmp_path / "v1.npz", **old)
    loaded, info = load_model(tmp_path / "v1.npz")
    assert isinstance(loaded, TwoLayerNet) and loaded.dropout == 0.2 and info["hyperparams"] == {"learning_rate": 1e-3}
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_a_newer_format_is_refused_clearly(tmp_path):
    from xpml.nets.checkpoint import CheckpointVersionError

    net, _, _ = _trained(backend.get_backend("numpy"))
    save_model(tmp_path / "n.npz", net)
    data = dict(np.load(tmp_path / "n.npz"))
    data["format_version"] = np.asarray(99)
    np.savez(tmp_path / "n.npz", **data)
    with pytest.raises(CheckpointVersionError, match="newer xpml .*format 99.* upgrade xpml"):
        load_model(tmp_path / "n.npz")


def test_hostile_declared_sizes_are_refused_before_allocating(tmp_path):
    import tracemalloc

    small = {f"param/{k}": np.zeros(s, np.float32) for k, s in (("W1", (2, 2)), ("b1", (2,)), ("W2", (2, 2)),
                                                                   ("b2", (2,)))}
    base = {"format_version": 2, "model": "TwoLayerNet", "config/std": 0.1, "config/init": "std",
            "config/dtype": "float32", "config/dropout": 0.0, "config/seed": 0, **small}
    cases = {
        "huge": ({"config/input_size": 10**9, "config/hidden_size": 10**4, "config/output_size": 10},
                 "parameters, more than"),
        "mismatch": ({"config/input_size": 3000, "config/hidden_size": 2, "config/output_size": 2},
                     r"param/W1 has shape \(2, 2\), expected \(3000, 2\)"),
        "negative": ({"config/input_size": -2, "config/hidden_size": 2, "config/output_size": 2}, "input_size"),
        "missing": ({"config/input_size": 2, "config/hidden_size": 2}, "output_size"),
    }
    for name, (config, match) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **base, **config)
        assert path.stat().st_size < 8192
        tracemalloc.start()
        with pytest.raises(CorruptFileError, match=match):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**22, f"{name}: {peak} bytes allocated"
    np.savez(tmp_path / "long.npz", format_version=2, model="FullyConnectedNet",
             **{"config/hidden_dims": np.ones(5000, np.int64)})
    with pytest.raises(CorruptFileError, match="malformed"):
        load_model(tmp_path / "long.npz")
    np.savez(tmp_path / "who.npz", format_version=2, model="Transformer")
    with pytest.raises(CorruptFileError, match="'Transformer', which this xpml cannot load"):
        load_model(tmp_path / "who.npz")
    ints = base | cases["mismatch"][0] | {"config/input_size": 2, "param/W1": np.zeros((2, 2), np.int64)}
    np.savez(tmp_path / "ints.npz", **ints)
    with pytest.raises(CorruptFileError, match="expected floating point"):
        load_model(tmp_path / "ints.npz")


def test_only_registered_models_are_saved(tmp_path):
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        save_model(tmp_path / "x.npz", object())
