"""scripts/train.py end to end on tiny data: the table, the run folder, its pictures and checkpoints."""

import json

import numpy as np
import pytest

from xpml import backend
from xpml.cli import _progress, train

from ._scripts_support import SHORT, SMALL_NET, TINY, assert_png, run_script


def _run(tmp_path, capsys, *args):
    out = tmp_path / "run"
    rc = train.main([*TINY, "--out", str(out), "--quiet", *args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return out, captured.out, json.loads((out / "results.json").read_text())


def test_all_four_models_on_every_backend(bk, tmp_path, capsys):
    out, stdout, results = _run(tmp_path, capsys, *SHORT, *SMALL_NET, "--backend", bk.label)
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    for col in ("backend", "device", "val acc", "test acc", "train s"):
        assert col in lines[header]
    rows = lines[header + 2: header + 7]
    assert [r.split()[0] for r in rows] == ["knn", "svm", "softmax", "twolayer", "fc"]
    assert all(bk.label in r and bk.device_name.split()[0] in r for r in rows)
    assert "run folder" in lines[-1]

    assert results["backend"] == bk.label and results["device"] == bk.device_name
    assert results["dataset"] | {"source": None} == {"name": "digits", "source": None, "train": 150, "val": 60,
                                                     "test": 60, "features": 64, "classes": 10}
    models = results["models"]
    assert list(models) == ["knn", "svm", "softmax", "twolayer", "fc"]
    for name, r in models.items():
        assert 0.5 < r["val_acc"] <= 1 and 0.5 < r["test_acc"] <= 1, (name, r)
        assert r["train_s"] >= 0 and r["hyperparameters"]
        for f in r["files"].values():
            assert (out / f).is_file()
            if f.endswith(".png"):
                assert_png(out / f)
    assert models["svm"]["hyperparameters"]["num_iters"] == 40
    assert set(models["svm"]["files"]) == {"curves", "checkpoint", "weights"}
    assert set(models["twolayer"]["files"]) == set(models["fc"]["files"]) == {"curves", "checkpoint", "weights"}
    assert len(models["softmax"]["history"]["loss_history"]) == 40

    from xpml.nets import load_model

    svm, info = load_model(out / "svm.npz")  # every model's checkpoint is the library's
    assert svm.W.shape == (65, 10)  # 8x8 pixels plus the bias row, one column per class
    assert info["arrays"]["mean"].shape == (64,) and info["hyperparams"]["num_iters"] == 40

    net, info = load_model(out / "twolayer.npz")
    assert info["hyperparams"]["hidden_size"] == 16
    assert net.params["W1"].shape == (64, 16)
    pred = backend.to_numpy(net.predict(backend.get_backend("numpy").asarray(np.zeros((2, 64), np.float32))))
    assert pred.shape == (2,)
    fc, info = load_model(out / "fc.npz")
    assert info["hyperparams"]["hidden_dims"] == "100,100" and fc.hidden_dims == (100, 100)


def test_same_seed_same_results_other_seed_other_run(tmp_path, capsys):
    args = ["svm", "twolayer", "--seed", "3", *SHORT, *SMALL_NET]
    _, _, a = _run(tmp_path / "a", capsys, *args)
    _, _, b = _run(tmp_path / "b", capsys, *args)
    _, _, c = _run(tmp_path / "c", capsys, *args[:2], "--seed", "4", *SHORT, *SMALL_NET)
    for model in ("svm", "twolayer"):
        for key in ("val_acc", "test_acc", "history"):
            assert a["models"][model][key] == b["models"][model][key], (model, key)
        assert a["models"][model]["history"]["loss_history"] != c["models"][model]["history"]["loss_history"]


def test_flags_reach_the_models_they_apply_to(tmp_path, capsys):
    _, stdout, r = _run(tmp_path, capsys, "knn", "twolayer", "--k", "3", "--metric", "l1", "--learning-rate", "0.2",
                        "--update-rule", "adam", "--init", "xavier", *SHORT, *SMALL_NET)
    assert r["models"]["knn"]["hyperparameters"] == {"k": 3, "metric": "l1"}
    hp = r["models"]["twolayer"]["hyperparameters"]
    assert (hp["learning_rate"], hp["update_rule"], hp["init"], hp["hidden_size"]) == (0.2, "adam", "xavier", 16)
    assert "k=3 metric=l1" in stdout and "rule=adam" in stdout


def test_fully_connected_net_flags(tmp_path, capsys):
    out, stdout, r = _run(tmp_path, capsys, "fc", "--hidden-dims", "32,16", "--normalization", "layernorm",
                          "--activation", "tanh", "--dropout-keep", "0.8", "--update-rule", "sgd",
                          "--learning-rate", "0.1", *SHORT)
    hp = r["models"]["fc"]["hyperparameters"]
    assert (hp["hidden_dims"], hp["normalization"], hp["activation"], hp["dropout_keep"]) == ("32,16", "layernorm",
                                                                                             "tanh", 0.8)
    assert "hidden=32,16 norm=layernorm act=tanh keep=0.8" in stdout
    history = r["models"]["fc"]["history"]
    assert len(history["loss_history"]) == 40 and history["diverged_at"] is None
    from xpml.nets import load_model

    net, _ = load_model(out / "fc.npz")
    assert (net.hidden_dims, net.normalization, net.activation, net.dropout_keep_ratio) == ((32, 16), "layernorm",
                                                                                           "tanh", 0.8)
    _, _, linear = _run(tmp_path / "lin", capsys, "fc", "--hidden-dims", "", "--num-iters", "20")
    assert "weights" not in linear["models"]["fc"]["files"]  # no hidden layer: no first-layer filters


@pytest.mark.parametrize("args,message", [
    (["fc", "--hidden-dims", "10,0"], "--hidden-dims: must be widths >= 1"),
    (["fc", "--hidden-dims", "a"], "--hidden-dims: must be widths"),
    (["fc", "--normalization", "groupnorm"], "--normalization: invalid choice"),
    (["fc", "--dropout-keep", "0"], "--dropout-keep: must be in (0, 1]"),
    (["svm", "--hidden-dims", "10"], "--hidden-dims applies to fc"),
])
def test_bad_fully_connected_flags_are_one_line(tmp_path, capsys, args, message):
    assert train.main([*TINY, *args, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_spiral_draws_decision_regions(tmp_path, capsys):
    out, _, r = _run(tmp_path, capsys, "--dataset", "spiral", "softmax", "twolayer", "--num-iters", "200")
    for model in ("softmax", "twolayer"):
        assert "weights" not in r["models"][model]["files"]  # 2-d points are not images
        assert_png(out / r["models"][model]["files"]["regions"])
    assert r["dataset"]["features"] == 2 and r["dataset"]["classes"] == 3


def test_json_output_is_machine_readable(tmp_path, capsys):
    rc = train.main([*TINY, *SHORT, "knn", "softmax", "--out", str(tmp_path / "j"), "--json", "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(report["models"]) == {"knn", "softmax"}
    assert "history" not in report["models"]["softmax"]  # long curves stay in results.json


def test_default_run_folder_is_under_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = train.main([*TINY, "knn", "--quiet"])
    assert rc == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.endswith("-digits-knn")
    assert (folder / "results.json").is_file()
    assert str(folder.relative_to(tmp_path)) in capsys.readouterr().out


def test_from_the_command_line_without_a_terminal(tmp_path):
    # A fresh interpreter, output to pipes: the table on stdout, no progress-bar noise on stderr.
    proc = run_script("train.py", *TINY, *SHORT, "knn", "softmax", "--out", tmp_path / "cli")
    assert proc.returncode == 0, proc.stderr
    assert "softmax" in proc.stdout and "\r" not in proc.stderr and "it/s" not in proc.stderr
    assert (tmp_path / "cli" / "softmax_templates.png").is_file()


class _Loss:
    """A stand-in for a 0-d device array that counts how often it is read back."""

    reads = 0

    def __float__(self):
        type(self).reads += 1
        return 1.5


def test_training_bar_reads_the_loss_only_every_25_iterations():
    import io

    from tqdm import tqdm

    sink = io.StringIO()
    bar = _progress.TrainingBar(tqdm(total=100, file=sink, disable=False), every=25)
    _Loss.reads = 0
    for it in range(100):
        bar(it, _Loss())
    bar.close()
    assert _Loss.reads == 4
    assert "loss 1.5" in sink.getvalue() and "100/100" in sink.getvalue()


def test_quiet_and_non_terminal_bars_read_nothing():
    _Loss.reads = 0
    for quiet in (True, False):  # under pytest stderr is not a terminal: off either way
        with _progress.Progress(quiet=quiet).training(50, desc="x") as bar:
            for it in range(50):
                bar(it, _Loss())
    assert _Loss.reads == 0


@pytest.mark.parametrize("models", [["all"], ["svm", "svm"]])
def test_model_selection(models):
    everything = ["knn", "svm", "softmax", "twolayer", "fc"]
    assert train.parse_models(models) == (everything if models == ["all"] else ["svm"])


def test_every_long_loop_shows_progress_on_a_terminal(tmp_path, capsys, monkeypatch):
    # Pretend stderr is a terminal: the bars must then show kNN's query chunks, the training
    # iterations with the loss, the models and the search trials.
    from xpml.cli import search

    monkeypatch.setattr(_progress.Progress, "__init__", lambda self, *, quiet=False: setattr(self, "disable", quiet))
    assert train.main([*TINY, *SHORT, *SMALL_NET, "--out", str(tmp_path / "t")]) == 0
    err = capsys.readouterr().err
    for text in ("knn k=1: val", "knn k=1: test", "svm:", "softmax:", "twolayer:", "loss ", "models:", "chunk"):
        assert text in err, text
    assert search.main([*TINY, "softmax", "--trials", "2", "--fine-trials", "1", "--top", "1", "--num-iters", "20",
                        "--out", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err
    assert "search coarse" in err and "search fine" in err and "best val acc" in err
    assert train.main([*TINY, "knn", "--quiet", "--out", str(tmp_path / "q")]) == 0
    assert capsys.readouterr().err == ""  # --quiet: nothing
