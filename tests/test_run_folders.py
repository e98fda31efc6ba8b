"""Run folders are claimed atomically: a new one per run, or an empty one, or a replaced one on request;
locked while in use and marked INCOMPLETE until results.json is written, so runs never mix."""

import contextlib
import json
import os
import pathlib
import stat
import subprocess
import sys

import numpy as np
import pytest

from xpml.backend.io import load_npz
from xpml.cli import _models, _runs, train
from xpml.cli._locks import file_lock

from ._scripts_support import ROOT, TINY, assert_one_line_error, assert_png

SVM = [*TINY, "svm", "--num-iters", "5", "--quiet"]


def _train(capsys, out, *args):
    rc = train.main([*SVM, "--out", str(out), *args])
    return rc, capsys.readouterr().err


def _names(path) -> list[str]:
    return sorted(p.name for p in pathlib.Path(path).iterdir())


def test_a_finished_run_leaves_results_and_no_marker_or_lock(tmp_path, capsys):
    out = tmp_path / "r"
    assert _train(capsys, out)[0] == 0
    assert _names(out) == [".xpml-manifest.json", "results.json", "svm.npz", "svm_curves.png", "svm_templates.png"]


def test_every_file_of_a_run_follows_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert _train(capsys, tmp_path / "r")[0] == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "r").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert_png(tmp_path / "r" / "svm_curves.png")


def test_the_folder_is_locked_and_marked_while_the_run_writes(tmp_path, capsys, monkeypatch):
    out, seen = tmp_path / "r", []
    real_save = _models.save

    def save(fit, data, bk, run_dir, **kw):
        seen.append(_names(run_dir))
        # A second run into the same folder, while this one is at work, is refused.
        rc = train.main([*SVM, "--out", str(run_dir), "--overwrite"])
        seen.append((rc, capsys.readouterr().err))
        return real_save(fit, data, bk, run_dir, **kw)

    monkeypatch.setattr(_models, "save", save)
    assert _train(capsys, out)[0] == 0
    assert seen[0] == [".xpml-manifest.json", ".xpml-run.lock", "INCOMPLETE"]
    assert_one_line_error(*seen[1], "is in use by another run", f"pid {os.getpid()}")
    assert "INCOMPLETE" not in _names(out) and ".xpml-run.lock" not in _names(out)


def test_a_folder_locked_by_another_process_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    with file_lock(out / ".xpml-run.lock", note="another run"):
        rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, f"--out {out} is in use by another run (pid {os.getpid()}: another run)")
    assert _names(out) == []


def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "r"
    assert train.main([*TINY, "svm", "softmax", "--num-iters", "5", "--quiet", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, "holds a finished run", "--overwrite", "only the files xpml wrote")
    rc, err = _train(capsys, out, "--resume")
    assert_one_line_error(rc, err, "--resume continues only an interrupted run")
    assert _train(capsys, out, "--overwrite", "--learning-rate", "0.05")[0] == 0
    # The replaced run's files went (softmax's), the new run's are there, and a file of yours stays.
    assert _names(out) == [".xpml-manifest.json", "notes.txt", "results.json", "svm.npz", "svm_curves.png",
                           "svm_templates.png"]
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["svm"]
    assert float(load_npz(out / "svm.npz")["hyper/learning_rate"]) == 0.05


def test_a_folder_with_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, "is not empty and holds no run xpml recorded (thesis.tex)")
    assert "--overwrite" not in err  # it would not replace a folder xpml never wrote: no such advice
    assert _train(capsys, tmp_path / "empty")[0] == 0  # a new folder, or an empty one, is fine


def test_a_failed_run_leaves_no_folder_it_made_and_nothing_in_one_it_was_given(tmp_path, capsys):
    # k=500 is more than the training examples: refused after the folder was claimed and the data read.
    rc = train.main([*TINY, "knn", "--k", "500", "--quiet", "--out", str(tmp_path / "new")])
    assert_one_line_error(rc, capsys.readouterr().err, "k=500")
    assert not (tmp_path / "new").exists()
    (tmp_path / "given").mkdir()
    rc = train.main([*TINY, "knn", "--k", "500", "--quiet", "--out", str(tmp_path / "given")])
    assert rc == 2 and _names(tmp_path / "given") == []


_KILLED_RERUN = """
import sys
from xpml.cli import _models, train

real_save = _models.save

def save(*a, **k):
    files = real_save(*a, **k)
    print("saved", flush=True)
    sys.stdin.read()  # wait here until killed
    return files

_models.save = save
train.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_killed_rerun_never_leaves_old_results_beside_new_weights(tmp_path, capsys):
    out = tmp_path / "r"
    assert _train(capsys, out, "--learning-rate", "0.1")[0] == 0
    old_W = load_npz(out / "svm.npz")["param/W"]
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RERUN, *SVM, "--out", str(out), "--overwrite",
                             "--learning-rate", "0.02"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "saved"
    proc.kill()
    proc.wait()
    names = _names(out)
    assert "results.json" not in names and "INCOMPLETE" in names, names
    assert not np.array_equal(load_npz(out / "svm.npz")["param/W"], old_W)  # the new weights, without old results
    rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, "holds an interrupted run (INCOMPLETE)", "--resume")
    assert _train(capsys, out, "--resume", "--learning-rate", "0.02")[0] == 0
    assert "INCOMPLETE" not in _names(out)
    assert json.loads((out / "results.json").read_text())["models"]["svm"]["hyperparameters"]["learning_rate"] == 0.02


@pytest.mark.slow
def test_two_runs_into_one_folder_at_once_never_mix(tmp_path):
    out = tmp_path / "r"
    procs = [subprocess.Popen([sys.executable, "-m", "xpml", "train", *SVM, "--out", str(out), "--learning-rate", lr],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for lr in ("0.1", "0.02")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert any(rc == 0 for rc, _ in results), results
    for rc, err in results:
        if rc != 0:  # refused while the other ran, or after it finished
            assert_one_line_error(rc, err, f"--out {out}")
    recorded = json.loads((out / "results.json").read_text())["models"]["svm"]["hyperparameters"]["learning_rate"]
    assert float(load_npz(out / "svm.npz")["hyper/learning_rate"]) == recorded
    assert "INCOMPLETE" not in _names(out)


def test_default_folders_of_runs_started_in_the_same_second_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_runs.time, "strftime", lambda fmt, *a: "20240101-000000")
    first = _runs.claim_run_dir(None, "digits-svm")
    # Another run made the next name between our look and our mkdir: mkdir is the claim.
    (tmp_path / "runs" / "20240101-000000-digits-svm-2").mkdir()
    second = _runs.claim_run_dir(None, "digits-svm")
    assert first.path.name == "20240101-000000-digits-svm" and second.path.name == "20240101-000000-digits-svm-3"
    for folder in (first, second):
        folder.finish({"ok": True})
        assert _names(folder.path) == [".xpml-manifest.json", "results.json"]


def test_writing_results_never_removes_the_marker_only_the_end_of_the_run_does(tmp_path):
    folder = _runs.claim_run_dir(tmp_path / "r", "x")
    _runs.write_json(folder.path / "results.json", {"trials": 1})  # a search's rewrite after a trial
    assert "INCOMPLETE" in _names(folder.path)
    folder.finish({"trials": 2})
    assert "INCOMPLETE" not in _names(folder.path)


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_run_folder_flags_are_in_the_help(flag, capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert flag in capsys.readouterr().out


def test_a_picture_interrupted_mid_write_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    _runs.plot_curves(path, "svm", [3.0, 2.0, 1.0])
    before = path.read_bytes()
    real = _runs.plt.Figure.savefig

    def killed(fig, fname, *a, **k):  # half a picture, then the process dies
        real(fig, fname, *a, **k)
        if hasattr(fname, "truncate"):
            fname.truncate(100)
        else:
            os.truncate(fname, 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(_runs.plt.Figure, "savefig", killed)
    with pytest.raises(KeyboardInterrupt):
        _runs.plot_curves(path, "svm", [1.0, 1.0, 1.0])
    assert path.read_bytes() == before and _names(tmp_path) == ["curves.png"]
    assert_png(path)


# ---- links, foreign files and what xpml may remove ------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_lock_planted_as_a_link_is_refused_and_its_target_never_written(tmp_path, capsys, kind):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "d"
    out.mkdir()
    (os.symlink if kind == "symlink" else os.link)(victim, out / ".xpml-run.lock")
    rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, f"--out {out}", "symbolic link" if kind == "symlink" else "2 hard links")
    assert victim.read_text() == "precious"
    assert _names(out) == [".xpml-run.lock"]  # left as it was, not removed either


def test_a_folder_holding_only_a_lock_file_xpml_did_not_write_is_not_empty(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / ".xpml-run.lock").write_text("my notes, not a lock\n")
    rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, "is not an xpml lock")
    assert (out / ".xpml-run.lock").read_text() == "my notes, not a lock\n"


def test_the_lock_a_killed_run_left_is_taken(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / ".xpml-run.lock").write_text(f"pid {_dead_pid()}: xpml run digits-svm\n")
    assert _train(capsys, out)[0] == 0
    assert ".xpml-run.lock" not in _names(out)


def test_out_given_as_a_link_to_a_folder_is_refused(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    rc, err = _train(capsys, tmp_path / "link")
    assert_one_line_error(rc, err, f"--out {tmp_path / 'link'} is a symbolic link", "does not write through links")
    assert _names(real) == []


def test_a_runs_folder_that_is_a_link_is_refused(tmp_path, capsys, monkeypatch):
    real = tmp_path / "elsewhere"
    real.mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").symlink_to(real)
    rc = train.main(SVM)
    assert_one_line_error(rc, capsys.readouterr().err, "runs is a symbolic link")
    assert _names(real) == []


def test_a_full_disk_leaves_no_empty_out_folder(tmp_path, capsys, monkeypatch):
    import errno

    real = _runs.atomic_write

    @contextlib.contextmanager
    def full(path, **kw):
        with real(path, **kw) as f:
            yield f
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_runs, "atomic_write", full)
    out = tmp_path / "new" / "r"
    rc, err = _train(capsys, out)
    assert_one_line_error(rc, err, "No space left on device")
    assert not (tmp_path / "new").exists()


def _interrupt_after(monkeypatch, models_done: int):
    """Make the run stop (as ^C would) while saving the model after ``models_done`` complete ones; return
    the models trained."""
    real_save, trained = _models.save, []

    def save(fit, *a, **k):
        trained.append(fit.model)
        files = real_save(fit, *a, **k)
        if len(trained) > models_done:
            raise KeyboardInterrupt
        return files

    monkeypatch.setattr(_models, "save", save)
    return trained


def test_resume_finishes_only_the_models_that_are_missing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    args = [*TINY, "svm", "softmax", "--num-iters", "5", "--quiet", "--out", str(out)]
    trained = _interrupt_after(monkeypatch, 1)
    assert train.main(args) != 0  # interrupted
    assert trained == ["svm", "softmax"] and "INCOMPLETE" in _names(out)
    svm_before = (out / "svm.npz").read_bytes()
    monkeypatch.undo()
    trained = _interrupt_after(monkeypatch, 10)
    assert train.main([*args, "--resume"]) == 0
    assert trained == ["softmax"]  # svm was complete: kept, not trained again
    assert (out / "svm.npz").read_bytes() == svm_before
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["svm", "softmax"] and "INCOMPLETE" not in _names(out)


@pytest.mark.parametrize(("change", "differs"), [
    (["softmax", "--num-iters", "5"], "what 'digits-svm' -> 'digits-softmax'"),
    (["svm", "--num-iters", "6"], "num_iters 5 -> 6"),
    (["svm", "--num-iters", "5", "--seed", "1"], "seed 0 -> 1"),
])
def test_resume_refuses_another_command_or_configuration(tmp_path, capsys, monkeypatch, change, differs):
    out = tmp_path / "r"
    _interrupt_after(monkeypatch, 0)
    assert train.main([*TINY, "svm", "--num-iters", "5", "--quiet", "--out", str(out)]) != 0  # interrupted
    capsys.readouterr()
    monkeypatch.undo()
    rc = train.main([*TINY, *change, "--quiet", "--out", str(out), "--resume"])
    assert_one_line_error(rc, capsys.readouterr().err, "--resume", "another command or configuration", differs)
    assert "INCOMPLETE" in _names(out)


def test_overwrite_removes_only_the_files_xpml_wrote_and_recorded(tmp_path, capsys):
    out = tmp_path / "r"
    assert train.main([*TINY, "svm", "softmax", "--num-iters", "5", "--quiet", "--out", str(out)]) == 0
    # A hand-edited results.json listing a file of yours, and an xpml picture you changed since.
    (out / "thesis.tex").write_text("mine")
    results = json.loads((out / "results.json").read_text())
    results["models"]["softmax"]["files"]["extra"] = "thesis.tex"
    (out / "results.json").write_text(json.dumps(results))
    (out / "softmax_curves.png").write_bytes(b"my own picture now")
    assert _train(capsys, out, "--overwrite")[0] == 0
    names = _names(out)
    assert "thesis.tex" in names and (out / "softmax_curves.png").read_bytes() == b"my own picture now"
    assert "softmax.npz" not in names and "softmax_templates.png" not in names  # xpml's, unchanged: removed


def test_temporary_files_are_removed_only_when_xpml_recorded_their_token(tmp_path, capsys):
    from xpml.backend.io import temp_token

    out = tmp_path / "r"
    assert _train(capsys, out)[0] == 0
    dead = _dead_pid()
    mine = out / f".tmp-{dead}-notes.txt"  # a file of yours that looks like a killed writer's
    mine.write_text("mine")
    ours = out / f".tmp-{dead}-{temp_token()}-abc123.png"  # a killed xpml writer's, token recorded
    ours.write_bytes(b"half a picture")
    forged = out / f".tmp-{dead}-{'0' * 16}-abc123.png"  # xpml's pattern, a token xpml never recorded
    forged.write_bytes(b"x")
    assert _train(capsys, out, "--overwrite")[0] == 0
    assert mine.exists() and forged.exists() and not ours.exists()


def test_a_run_stopped_after_a_model_without_files_keeps_its_folder_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    args = [*TINY, "knn", "svm", "--num-iters", "5", "--quiet", "--out", str(out)]
    real_fit, fitted = _models.fit, []

    def fit(model, *a, **k):
        fitted.append(model)
        if model == "svm" and len(fitted) == 2:
            raise KeyboardInterrupt
        return real_fit(model, *a, **k)

    monkeypatch.setattr(_models, "fit", fit)
    assert train.main(args) != 0
    assert "INCOMPLETE" in _names(out)  # kNN (no files of its own) was trained: the folder stays
    assert train.main([*args, "--resume"]) == 0
    assert fitted == ["knn", "svm", "svm"]
    assert list(json.loads((out / "results.json").read_text())["models"]) == ["knn", "svm"]


def test_overwrite_never_replaces_files_in_a_folder_xpml_never_wrote(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "svm.npz").write_bytes(b"my own checkpoint")
    (out / "results.json").write_text('{"files": {"x": "svm.npz"}}')  # looks like a run, written by hand
    rc, err = _train(capsys, out, "--overwrite")
    assert_one_line_error(rc, err, "holds no run xpml recorded", "choose another folder")
    assert "--overwrite" not in err.split("choose")[1]
    assert (out / "svm.npz").read_bytes() == b"my own checkpoint" and _names(out) == ["results.json", "svm.npz"]


def test_overwrite_removes_the_files_of_an_interrupted_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    _interrupt_after(monkeypatch, 0)  # svm's files are written, then the run stops before it completes
    assert train.main([*TINY, "svm", "softmax", "--num-iters", "5", "--quiet", "--out", str(out)]) != 0
    assert "svm.npz" in _names(out)
    monkeypatch.undo()
    assert train.main([*TINY, "softmax", "--num-iters", "5", "--quiet", "--out", str(out), "--overwrite"]) == 0
    assert not any(n.startswith("svm") for n in _names(out)), _names(out)
