"""scripts/search.py end to end on tiny data, and its sampling rules."""

import json

import pytest

from xpml.cli import _runs, search

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


def test_top_larger_than_the_trials_is_clamped(tmp_path, capsys):
    # The default --top 3 with --trials 2: the fine stage spans both, and says so.
    _, stdout, r = _search(tmp_path, capsys, "softmax", "--trials", "2", "--fine-trials", "1", "--num-iters", "20")
    assert [t["stage"] for t in r["trials"]].count("fine") == 1
    note = "top 3 is more than the 2 coarse trials: the fine stage spans all 2"
    assert note in r["warnings"] and f"note: {note}" in stdout


def test_results_are_written_as_trials_finish(tmp_path, capsys, monkeypatch):
    written = []
    real = _runs.write_json

    def spy(path, obj):
        written.append((obj["complete"], len(obj["trials"]), obj["best"] is not None))
        real(path, obj)

    monkeypatch.setattr(_runs, "write_json", spy)
    _search(tmp_path, capsys, "softmax", "--trials", "3", "--fine-trials", "2", "--num-iters", "20")
    assert written == [(False, 1, False), (False, 2, False), (False, 3, False), (False, 4, False), (False, 5, False),
                       (True, 5, True)]


# NumPy warns of the overflow in the trials that diverge; the search records them instead.
quiet_divergence = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                              "ignore:invalid value encountered:RuntimeWarning")


@quiet_divergence
def test_diverged_trials_are_kept_and_ranked_last(tmp_path, capsys):
    # Learning rates up to 1e30: most coarse trials diverge; the search records them and goes on.
    out, stdout, r = _search(tmp_path, capsys, "softmax", "--lr-range", "0.1", "1e30", "--trials", "6",
                             "--fine-trials", "2", "--num-iters", "20")
    assert r["complete"] and len(r["trials"]) == 8
    diverged = [t for t in r["trials"] if t["diverged"]]
    assert 0 < len(diverged) < 6
    assert all(t["final_loss"] is None and isinstance(t["diverged_at"], int) for t in diverged)
    assert r["trials"][-len(diverged):] == diverged  # ranked last
    assert not any(t["diverged"] for t in r["trials"] if t["stage"] == "fine")
    assert r["best"]["trial"] == r["trials"][0]["trial"] and r["best"]["final_loss"] is not None
    assert "NaN" not in (out / "results.json").read_text()
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    assert header.endswith("diverged")
    assert sum(1 for line in lines if line.rstrip().endswith(f"at {diverged[0]['diverged_at']}")) >= 1


@quiet_divergence
def test_every_trial_diverged(tmp_path, capsys):
    out, stdout, r = _search(tmp_path, capsys, "softmax", "--lr-range", "1e25", "1e30", "--trials", "2",
                             "--num-iters", "20")
    assert r["complete"] and r["best"] is None and "fine" not in r["ranges"]
    assert all(t["diverged"] for t in r["trials"])
    assert "note: every trial diverged, so no model is kept: search lower learning rates (--lr-range)" in stdout
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["results.json", "search_softmax.png"]


def test_the_fully_connected_net_is_searched(tmp_path, capsys):
    rc = search.main([*TINY, "fc", "--trials", "2", "--fine-trials", "1", "--top", "1", "--num-iters", "30",
                      "--hidden-dims", "16", "--out", str(tmp_path / "s"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "best: hidden=16" in out and "val acc" in out
    assert (tmp_path / "s" / "best_fc.npz").is_file()


def test_an_interrupted_search_stays_incomplete_and_resume_trains_only_the_missing_trials(tmp_path, capsys,
                                                                                         monkeypatch):
    out = tmp_path / "search"
    args = [*TINY, "softmax", "--trials", "4", "--fine-trials", "0", "--num-iters", "20", "--quiet", "--out", str(out)]
    real, calls = search.run_trial, []

    def interrupted(*a, **k):
        calls.append(a[3]["learning_rate"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(search, "run_trial", interrupted)
    assert search.main(args) != 0
    capsys.readouterr()
    # results.json was rewritten after each finished trial; the marker stays: the search did not end.
    assert (out / "INCOMPLETE").exists() and not json.loads((out / "results.json").read_text())["complete"]
    assert search.main(args) == 2 and "interrupted run" in capsys.readouterr().err
    assert search.main([*args, "--resume"]) == 0
    # Resumed: the interrupted third trial and the fourth; the two finished ones are not trained again
    # (unless one is the best, trained once more at the end for its checkpoint).
    resumed = calls[3:]
    assert resumed[0] == calls[2] and resumed[1] not in calls[:3], calls
    assert len(resumed) == 2 or (len(resumed) == 3 and resumed[2] in calls[:2]), calls
    r = json.loads((out / "results.json").read_text())
    assert r["complete"] and len(r["trials"]) == 4 and not (out / "INCOMPLETE").exists()
