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
