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


# ---- histories, budgets and invalid state ----------------------------------------------------------

def _rewrite(src, dst, compressed=False, **changes):
    with np.load(src) as f:
        data = {k: f[k] for k in f.files}
    data.update(changes)
    (np.savez_compressed if compressed else np.savez)(dst, **data)
    return dst


def test_histories_come_back_as_arrays(tmp_path):
    net, hist, _ = _trained(backend.get_backend("numpy"))
    save_model(tmp_path / "h.npz", net, history=hist)
    _, info = load_model(tmp_path / "h.npz")
    losses = info["history"]["loss_history"]
    assert isinstance(losses, np.ndarray) and losses.dtype == np.float64 and losses.ndim == 1
    np.testing.assert_array_equal(losses, np.asarray(hist["loss_history"], dtype=np.float64))
    ratios = info["history"]["update_ratio_history"]
    assert set(ratios) == set(hist["update_ratio_history"])
    assert all(isinstance(v, np.ndarray) for v in ratios.values())


@pytest.mark.parametrize("key, value", [("history/loss_history", np.zeros(2**20)),
                                        ("param/W1", np.zeros((2**17, 8)))])
def test_a_deflated_checkpoint_cannot_inflate_past_the_budget(tmp_path, monkeypatch, key, value):
    import tracemalloc

    from xpml.nets import checkpoint

    net, _, _ = _trained(backend.get_backend("numpy"))
    save_model(tmp_path / "ok.npz", net)
    monkeypatch.setattr(checkpoint, "_MAX_INFLATED_BYTES", 2**20)
    # 8 MiB of zeros deflate to a few KiB: the declared size is what counts, before inflating.
    bomb = _rewrite(tmp_path / "ok.npz", tmp_path / "bomb.npz", compressed=True, **{key: value})
    assert bomb.stat().st_size < 2**16
    tracemalloc.start()
    with pytest.raises(CorruptFileError, match=rf"bomb\.npz.*the largest, {key}, 8388608 bytes.*max_bytes="):
        load_model(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes allocated"
    if key.startswith("history"):
        # Told to trust it, or stored without compression (the arrays no bigger than the file), it loads.
        assert load_model(bomb, max_bytes=2**24)[1]["history"]["loss_history"].shape == (2**20,)
        _rewrite(tmp_path / "ok.npz", tmp_path / "big.npz", **{key: value})
        assert load_model(tmp_path / "big.npz")[1]["history"]["loss_history"].shape == (2**20,)


def test_a_memory_error_says_what_ran_out(tmp_path, monkeypatch):
    net, _, _ = _trained(backend.get_backend("numpy"))
    save_model(tmp_path / "m.npz", net)

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(TwoLayerNet, "_from_checkpoint", classmethod(out_of_memory))
    with pytest.raises(MemoryError, match=r"m\.npz.*memory"):
        load_model(tmp_path / "m.npz")


@pytest.mark.parametrize("key, value, match", [
    ("param/W1", np.nan, r"param/W1 holds NaN or infinite values"),
    ("param/b2", np.inf, r"param/b2 holds NaN or infinite values"),
    ("state/bn1/running_mean", -np.inf, r"state/bn1/running_mean holds NaN or infinite values"),
    ("state/bn2/running_var", -1.0, r"state/bn2/running_var holds negative values"),
])
def test_invalid_model_state_is_refused_naming_the_file_and_array(tmp_path, key, value, match):
    net, _ = _fc(backend.get_backend("numpy"))
    save_model(tmp_path / "fc.npz", net)
    with np.load(tmp_path / "fc.npz") as f:
        bad = f[key].copy()
    bad.reshape(-1)[0] = value
    path = _rewrite(tmp_path / "fc.npz", tmp_path / "bad.npz", **{key: bad})
    with pytest.raises(CorruptFileError, match=r"bad\.npz.*" + match):
        load_model(path)


@pytest.mark.parametrize("changes", [
    {"config/dropout_keep_ratio": 5.0},
    {"config/reg": -1.0},
    {"config/dtype": "float16"},
    {"hyper/learning_rate": np.ones(3)},
])
def test_an_invalid_configuration_is_an_error_naming_the_file(tmp_path, changes):
    net, _ = _fc(backend.get_backend("numpy"))
    save_model(tmp_path / "fc.npz", net, hyperparams={"learning_rate": 1e-3})
    path = _rewrite(tmp_path / "fc.npz", tmp_path / "cfg.npz", **changes)
    with pytest.raises(CorruptFileError, match=r"cfg\.npz"):
        load_model(path)


def test_a_wrong_dtype_asked_for_is_the_callers_error(tmp_path):
    net, _ = _fc(backend.get_backend("numpy"))
    save_model(tmp_path / "fc.npz", net)
    with pytest.raises(ValueError, match="float16") as err:
        load_model(tmp_path / "fc.npz", dtype="float16")
    assert not isinstance(err.value, CorruptFileError)
