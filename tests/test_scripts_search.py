"""scripts/search.py end to end on tiny data, and its sampling rules."""

import json
import math

import numpy as np
import pytest

from xpml.cli import search

from ._scripts_support import TINY, assert_png


def _search(tmp_path, capsys, *args):
    out = tmp_path / "search"
    rc = search.main([*TINY, "--quiet", "--out", str(out), *args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return out, captured.out, json.loads((out / "results.json").read_text())


def test_twolayer_coarse_then_fine(tmp_path, capsys):
    out, stdout, r = _search(tmp_path, capsys, "twolayer", "--trials", "4", "--fine-trials", "2", "--top", "2",
                             "--num-iters", "40", "--hidden-range", "8", "32")
    trials = r["trials"]
    assert [t["stage"] for t in trials].count("coarse") == 4 and [t["stage"] for t in trials].count("fine") == 2
    assert [t["val_acc"] for t in trials] == sorted((t["val_acc"] for t in trials), reverse=True)  # ranked
    coarse = [t for t in trials if t["stage"] == "coarse"]
    assert all(t["hyperparameters"]["num_iters"] == 10 for t in coarse)  # a quarter of the iterations
    assert all(t["hyperparameters"]["num_iters"] == 40 for t in trials if t["stage"] == "fine")
    assert all(8 <= t["params"]["hidden_size"] <= 32 for t in coarse)
    fine_lo, fine_hi = r["ranges"]["fine"]["learning_rate"]
    best_coarse = sorted(coarse, key=lambda t: -t["val_acc"])[:2]
    assert all(fine_lo < t["params"]["learning_rate"] < fine_hi for t in best_coarse)

    best = r["best"]
    assert best["val_acc"] == trials[0]["val_acc"] and best["test_acc"] is not None
    assert set(best["files"]) == {"curves", "checkpoint", "weights", "search"}
    for f in best["files"].values():
        if f.endswith(".png"):
            assert_png(out / f)
    assert (out / best["files"]["checkpoint"]).is_file()

    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert "lr" in lines[header] and "hidden" in lines[header] and "val acc" in lines[header]
    assert len([line for line in lines[header + 2:] if line.strip()[:1].isdigit()]) == 6
    assert any(line.startswith("best: ") and "test acc" in line for line in lines)


def test_knn_searches_k_without_repeats(tmp_path, capsys):
    out, _, r = _search(tmp_path, capsys, "knn", "--trials", "4", "--fine-trials", "3", "--k-range", "1", "4")
    ks = {(t["stage"], t["params"]["k"]) for t in r["trials"]}
    assert len(ks) == len(r["trials"])  # no setting is tried twice within a stage
    assert all(1 <= k <= 4 for stage, k in ks if stage == "coarse")  # the fine span may reach past it
    assert_png(out / "search_knn.png")
    assert "checkpoint" not in r["best"]["files"]  # kNN keeps its training set, not weights


def test_same_seed_same_search(tmp_path, capsys):
    args = ["softmax", "--trials", "3", "--fine-trials", "0", "--num-iters", "20", "--seed", "5"]
    _, _, a = _search(tmp_path / "a", capsys, *args)
    _, _, b = _search(tmp_path / "b", capsys, *args)
    assert [t["params"] for t in a["trials"]] == [t["params"] for t in b["trials"]]
    assert [t["val_acc"] for t in a["trials"]] == [t["val_acc"] for t in b["trials"]]
    assert "fine" not in a["ranges"]


def test_samples_are_log_uniform():
    rng = np.random.default_rng(0)
    draws = [search.sample(rng, {"learning_rate": (1e-4, 1.0)}, set())["learning_rate"] for _ in range(4000)]
    decades = np.histogram(np.log10(draws), bins=4, range=(-4, 0))[0]
    assert decades.min() > 850  # each decade gets about a quarter
    ints = [search.sample(rng, {"k": (1, 50)}, {"k"})["k"] for _ in range(200)]
    assert all(isinstance(k, int) and 1 <= k <= 50 for k in ints)


def test_narrowing_and_edge_warning():
    best = [{"params": {"reg": 1e-4}}, {"params": {"reg": 1e-3}}]
    (lo, hi), = search.narrow({"reg": (1e-6, 1.0)}, best, set()).values()
    assert lo == pytest.approx(1e-4 / 10**0.25) and hi == pytest.approx(1e-3 * 10**0.25)
    assert search.at_edge(0.9, 1e-3, 1.0) and not search.at_edge(math.sqrt(1e-3), 1e-3, 1.0)
    assert not search.at_edge(1, 1, 50, integer=True)  # k cannot go below 1


def test_the_fully_connected_net_is_searched(tmp_path, capsys):
    rc = search.main([*TINY, "fc", "--trials", "2", "--fine-trials", "1", "--top", "1", "--num-iters", "30",
                      "--hidden-dims", "16", "--out", str(tmp_path / "s"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "best: hidden=16" in out and "val acc" in out
    assert (tmp_path / "s" / "best_fc.npz").is_file()
