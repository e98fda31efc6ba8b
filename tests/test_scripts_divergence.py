"""A diverged run records its divergence instead of dying: standard JSON with null for NaN, a
``diverged`` flag and the iteration, the table marking the model, and every other result kept."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from xpml.cli import _runs, train

from ._scripts_support import SMALL_NET, TINY


def _strict_json(text: str):
    """Parse JSON as the standard defines it: NaN and Infinity are not numbers there."""
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_diverged_run_is_recorded_not_lost(tmp_path, capsys):
    out = tmp_path / "run"
    rc = train.main([*TINY, "--num-iters", "30", *SMALL_NET, "--learning-rate", "1e30", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""  # no overflow warnings: the table says it instead
    results = _strict_json((out / "results.json").read_text())
    models = results["models"]
    assert list(models) == ["knn", "svm", "softmax", "twolayer", "fc"]
    assert models["knn"]["diverged"] is False and models["knn"]["diverged_at"] is None
    for name in ("svm", "softmax", "twolayer", "fc"):
        record = models[name]
        assert record["diverged"] is True and isinstance(record["diverged_at"], int), name
        losses = record["history"]["loss_history"]
        assert losses[record["diverged_at"]] is None and record["final_loss"] is None
        assert all(isinstance(v, float) for v in losses[: record["diverged_at"]])  # finite before it
        assert 0 <= record["val_acc"] <= 1
        for f in record["files"].values():
            assert (out / f).is_file()
    rows = {line.split()[0]: line for line in captured.out.splitlines() if line.split()[:1] in
            (["knn"], ["svm"], ["softmax"], ["twolayer"], ["fc"])}
    for name in ("svm", "softmax", "twolayer", "fc"):
        assert rows[name].rstrip().endswith(f"diverged at it {models[name]['diverged_at']}"), rows[name]
    assert "diverged" not in rows["knn"]
    assert "note" in captured.out.splitlines()[1]


def test_json_output_of_a_diverged_run_is_standard(tmp_path, capsys):
    rc = train.main([*TINY, "svm", "--num-iters", "10", "--learning-rate", "1e30", "--quiet", "--json",
                     "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0
    svm = _strict_json(out)["models"]["svm"]
    assert svm["diverged"] is True and svm["final_loss"] is None


def test_a_finite_run_says_it_did_not_diverge(tmp_path, capsys):
    out = tmp_path / "r"
    assert train.main([*TINY, "softmax", "--num-iters", "10", "--quiet", "--out", str(out)]) == 0
    record = _strict_json((out / "results.json").read_text())["models"]["softmax"]
    assert record["diverged"] is False and record["diverged_at"] is None
    assert "note" not in capsys.readouterr().out


def test_write_json_turns_any_non_finite_number_into_null(tmp_path):
    path = tmp_path / "r.json"
    _runs.write_json(path, {"a": math.nan, "b": [np.float32("inf"), 1.5], "c": np.array([1.0, -np.inf]),
                            "d": (np.int64(3), np.float64("nan")), "e": {"f": -math.inf}, "p": tmp_path,
                            "k": {np.int64(5): 0.5}})
    assert _strict_json(path.read_text()) == {"a": None, "b": [None, 1.5], "c": [1.0, None], "d": [3, None],
                                              "e": {"f": None}, "p": str(tmp_path), "k": {"5": 0.5}}


@pytest.mark.parametrize(("history", "estimator", "loss", "want"), [
    ({}, None, [1.0, 2.0, 3.0], None),
    ({}, None, [1.0, math.inf, math.nan], 1),
    ({}, None, [], None),
    ({"diverged_at": 4}, None, [1.0, math.nan], 4),  # the trainer's own record comes first
    ({}, SimpleNamespace(diverged_at=2), [1.0, 1.0, math.nan], 2),
    ({}, SimpleNamespace(diverged_at=None), [1.0, math.nan], 1),
])
def test_divergence_is_read_from_the_trainer_or_the_loss_curve(history, estimator, loss, want):
    fit = SimpleNamespace(history=history, estimator=estimator, loss=loss)
    assert _runs.diverged_at(fit) == want
    assert _runs.divergence_record(fit) == {"diverged": want is not None, "diverged_at": want}


def test_a_linear_model_diverging_before_its_first_evaluation_is_reported_and_the_run_kept(tmp_path, capsys):
    # With the default 1500 iterations the linear models evaluate every ~38; at this rate they stop
    # at a non-finite loss within the first few, before any evaluation.
    out = tmp_path / "run"
    rc = train.main([*TINY, "knn", "svm", "softmax", "--learning-rate", "1e5", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    models = _strict_json((out / "results.json").read_text())["models"]
    assert models["knn"]["diverged"] is False and 0 <= models["knn"]["val_acc"] <= 1
    for name in ("svm", "softmax"):
        record = models[name]
        assert record["diverged"] is True and 0 <= record["diverged_at"] < 38, record["diverged_at"]
        assert 0 <= record["val_acc"] <= 1 and 0 <= record["test_acc"] <= 1
        assert all((out / f).is_file() for f in record["files"].values())
        assert f"diverged at it {record['diverged_at']}" in captured.out
    assert not (out / "INCOMPLETE").exists()
