"""xpml search --ensemble K: the top K models of the search, averaged, reported beside the best."""

import json

import pytest

from xpml.cli import search
from xpml.nets import Ensemble, load_model

from ._scripts_support import TINY


def test_the_top_models_of_a_search_are_kept_as_an_ensemble(tmp_path, capsys):
    out = tmp_path / "s"
    rc = search.main([*TINY, "twolayer", "--trials", "4", "--fine-trials", "0", "--num-iters", "20",
                      "--hidden-range", "8", "16", "--ensemble", "3", "--quiet", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0
    r = json.loads((out / "results.json").read_text())
    top = [t["trial"] for t in r["trials"] if not t["diverged"]][:3]
    ens = r["ensemble"]
    assert ens["trials"] == top and len(ens["files"]) == 3
    assert 0 <= ens["val_acc"] <= 1 and 0 <= ens["test_acc"] <= 1
    members = [load_model(out / f)[0] for f in ens["files"]]
    assert len(Ensemble(members).models) == 3
    line = next(line for line in stdout.splitlines() if line.startswith("ensemble"))
    assert f"val acc {ens['val_acc']:.3f}" in line and f"best alone {r['best']['val_acc']:.3f}" in line


@pytest.mark.parametrize("model", ["svm", "knn"])
def test_an_ensemble_of_models_without_probabilities_is_a_usage_error(tmp_path, capsys, model):
    rc = search.main([*TINY, model, "--trials", "2", "--ensemble", "2", "--quiet", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "--ensemble" in err and len(err.strip().splitlines()) == 1
