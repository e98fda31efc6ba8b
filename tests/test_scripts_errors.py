"""The mistakes people make on the command line end with one line ``error: ...`` and status 2."""

import errno
import os
import subprocess
import sys

import pytest

import xpml
from xpml import backend
from xpml.backend import _select
from xpml.cli import COMMANDS, _cli, _datasets, _download, _memory, _models, search, train
from xpml.cli import download as download_cifar10
from xpml.cli import main as xpml_main

from ._scripts_support import TINY, assert_one_line_error, run_script

TRAIN_MISTAKES = [
    (["--backend", "tpu"], "unknown backend 'tpu'"),
    (["--backend", ""], "--backend needs a name"),
    (["--learning-rate", "-0.1"], "--learning-rate: must be > 0, got -0.1"),
    (["--learning-rate", "nan"], "--learning-rate: a finite number is needed"),
    (["--batch-size", "0"], "--batch-size: must be an integer >= 1, got 0"),
    (["--batch-size", "1.5"], "--batch-size: an integer is needed"),
    (["--num-iters", "-3"], "--num-iters: must be an integer >= 1"),
    (["--k", "0"], "--k: must be an integer >= 1"),
    (["--reg", "-1"], "--reg: must be >= 0"),
    (["--hidden-size", "many"], "--hidden-size: an integer is needed"),
    (["--learning-rate-decay", "1.5"], "--learning-rate-decay: must be in (0, 1]"),
    (["--dropout", "1"], "--dropout: must be in [0, 1)"),
    (["--seed", "-1"], "--seed: must be an integer >= 0"),
    (["--update-rule", "lbfgs"], "--update-rule: invalid choice"),
    (["--dataset", "mnist"], "--dataset: invalid choice"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["svm", "--k", "3"], "--k applies to knn, which this run does not train"),
    (["perceptron"], "unknown model 'perceptron'"),
    (["knn", "--num-train", "5000"], "the dataset has 1797"),
    (["knn", "--k", "500"], "k=500"),
    (["--download", "--dataset", "spiral"], "--download fetches CIFAR-10"),
]


@pytest.mark.parametrize(("argv", "message"), TRAIN_MISTAKES, ids=[" ".join(a) or "empty" for a, _ in TRAIN_MISTAKES])
def test_train_mistakes(argv, message, tmp_path, capsys):
    rc = train.main([*TINY, "--quiet", "--out", str(tmp_path / "r"), *argv])
    assert_one_line_error(rc, capsys.readouterr().err, message)


def test_missing_cifar_directory(tmp_path, capsys):
    rc = train.main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "CIFAR-10 not found in", "--download")


def test_corrupt_cifar_file(tmp_path, capsys):
    from xpml.backend.io import record_checksums

    from ._cifar_files import write_cifar

    write_cifar(str(tmp_path))
    record_checksums(tmp_path / "cifar-10-batches-py", _download.CIFAR10_FILES)  # as a download records them
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02}q\x00(X")  # truncated pickle
    rc = train.main(["knn", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--num-train", "10",
                     "--num-val", "5", "--num-test", "5", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "data_batch_3", "corrupt")


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc = train.main([*TINY, "knn", "--quiet", "--out", str(tmp_path / "f")])
    assert_one_line_error(rc, capsys.readouterr().err, "is not a directory")


def test_cupy_not_installed_or_no_gpu(tmp_path, capsys, monkeypatch):
    # Whatever this machine has, simulate the two ways CuPy is unusable.
    monkeypatch.setitem(_select._PROBES, "cupy", lambda: backend.BackendStatus(
        "cupy", False, "not installed (No module named 'cupy'); install it with: pip install 'xpml[cuda12]'"))
    rc = train.main([*TINY, "--backend", "cupy", "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "backend 'cupy' is not usable: not installed", "pip install")
    monkeypatch.setitem(_select._PROBES, "cupy", lambda: backend.BackendStatus(
        "cupy", False, "no CUDA device: the driver reports 0 devices"))
    rc = train.main([*TINY, "--backend", "cupy", "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "no CUDA device")


def test_backend_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XPML_BACKEND", "no-such-backend")
    rc = train.main([*TINY, "knn", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "unknown backend 'no-such-backend'")
    monkeypatch.setenv("XPML_BACKEND", "array_api_strict")
    rc = train.main([*TINY, "knn", "--quiet", "--out", str(tmp_path / "r")])
    assert rc == 0 and "array_api_strict" in capsys.readouterr().out


SEARCH_MISTAKES = [
    (["--lr-range", "1", "0.1"], "low end is above the high end"),
    (["--lr-range", "0", "1"], "--lr-range: must be > 0"),
    (["knn", "--lr-range", "0.1", "1"], "--lr-range does not apply to knn"),
    (["--learning-rate", "0.1"], "--learning-rate is searched; give its range instead"),
    (["--trials", "0"], "--trials: must be an integer >= 1"),
    (["--fine-trials", "-1"], "--fine-trials must be >= 0"),
    (["svm", "--hidden-size", "10"], "--hidden-size applies to twolayer"),
    (["--coarse-fraction", "0"], "--coarse-fraction: must be in (0, 1]"),
]


@pytest.mark.parametrize(("argv", "message"), SEARCH_MISTAKES, ids=[" ".join(a) for a, _ in SEARCH_MISTAKES])
def test_search_mistakes(argv, message, capsys):
    rc = search.main([*TINY, "--quiet", *argv])
    assert_one_line_error(rc, capsys.readouterr().err, message)


def test_download_unreachable(tmp_path, capsys):
    # A port nothing listens on: refused at once, no network needed.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = download_cifar10.main(["--data-dir", str(tmp_path), "--url", f"http://127.0.0.1:{port}/x.tar.gz",
                                "--timeout", "5", "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "could not download")
    assert list(tmp_path.iterdir()) == []


def test_a_fresh_interpreter_prints_no_traceback():
    proc = run_script("train.py", "--backend", "no-such-backend")
    assert_one_line_error(proc.returncode, proc.stderr, "unknown backend")
    assert proc.stdout == ""


# A bare install: the wheel without extras. Hiding a package is a finder ahead of the others that refuses it.
_BARE = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('tqdm', 'sklearn', 'matplotlib', 'PIL'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_importing_the_command_never_exits_even_without_the_extras():
    code = _BARE + ("import xpml.cli, xpml.cli._cli, xpml.cli.train, xpml.cli.search, xpml.cli.download, "
                    "xpml.cli.backends, xpml.cli._runs, xpml.cli._progress\nprint('imported')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "imported\n" and proc.stderr == "", proc.stderr


def test_a_bare_install_trains_on_the_digits_and_says_once_what_it_skipped(tmp_path):
    out = tmp_path / "r"
    code = _BARE + ("from xpml.cli import main\n"
                    f"sys.exit(main(['train', 'svm', 'softmax', '--num-iters', '20', '--out', {str(out)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "digits: 1197 train / 300 val / 300 test" in proc.stdout and "softmax" in proc.stdout
    notes = [line for line in proc.stderr.splitlines() if line.strip()]
    # Two models, each with pictures to draw: said once, with the command that installs what is missing.
    assert len(notes) == 1 and notes[0].startswith("note: matplotlib is not installed, so no pictures are drawn"), notes
    assert "[scripts]" in notes[0] and "pip install" in notes[0]
    assert (out / "results.json").is_file() and (out / "svm.npz").is_file()
    assert not list(out.glob("*.png"))


def test_no_progress_bars_without_tqdm_is_said_once_where_bars_would_show(monkeypatch, capsys):
    from xpml.cli import _progress

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    monkeypatch.setattr(_cli, "_noted", set())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for _ in range(2):
        progress = _progress.Progress(quiet=False)
        with progress.training(10, desc="svm") as bar:
            for it in range(10):
                bar(it, 1.0)
        assert list(progress(range(3))) == [0, 1, 2]
    err = capsys.readouterr().err
    assert err.count("note: tqdm is not installed, so no progress bars are shown") == 1, err
    monkeypatch.setattr(_cli, "_noted", set())
    _progress.Progress(quiet=True)  # asked for no bars: nothing to say
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("editable, cwd_is_checkout, expected", [
    (True, True, "pip install -e '.[scripts]'"),
    (True, False, "pip install -e '{root}[scripts]'"),
    (False, False, "pip install 'xpml[scripts]'"),
])
def test_install_hints_fit_how_xpml_was_installed(editable, cwd_is_checkout, expected, tmp_path, monkeypatch):
    from xpml import _install

    root = tmp_path / "checkout"
    root.mkdir()
    monkeypatch.setattr(_install, "checkout", lambda: str(root) if editable else None)
    monkeypatch.chdir(root if cwd_is_checkout else tmp_path)
    assert _install.install_hint("scripts") == expected.format(root=root)
    assert _cli.install_hint("scripts") == expected.format(root=root)


def test_this_checkout_is_recognised_as_an_editable_install(monkeypatch):
    from xpml import _install

    _install.checkout.cache_clear()
    root = _install.checkout()
    if root is None:
        pytest.skip("xpml is not installed from this checkout in editable mode (pip install -e .)")
    assert os.path.samefile(root, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_library_input_error_is_one_line(tmp_path, capsys, monkeypatch):
    def fit(*a, **k):
        raise xpml.InputError("X has 3 features per row but the model was trained on 4")

    monkeypatch.setattr(_models, "fit", fit)
    rc = train.main([*TINY, "svm", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "X has 3 features per row")


@pytest.mark.parametrize("exc", [ValueError("operands could not be broadcast"), KeyError("W3"),
                                 TypeError("unsupported operand"), AttributeError("no attribute 'T'")])
def test_a_bug_prints_its_traceback_under_one_line_saying_so(exc, tmp_path, capsys, monkeypatch):
    def fit(*a, **k):
        raise exc

    monkeypatch.setattr(_models, "fit", fit)
    monkeypatch.delenv("XPML_TRACEBACK", raising=False)
    rc = train.main([*TINY, "svm", "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 1, err
    first, *rest = err.splitlines()
    assert first.startswith("error: this is a bug in xpml") and "report it" in first, first
    assert rest[0] == "Traceback (most recent call last):" and rest[-1].startswith(type(exc).__name__), err
    assert "in fit" in err  # the frame that raised


def test_an_empty_memory_error_still_says_out_of_memory(tmp_path, capsys, monkeypatch):
    def fit(*a, **k):
        raise MemoryError

    monkeypatch.setattr(_models, "fit", fit)
    rc = train.main([*TINY, "svm", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "error: out of memory: use smaller sizes")


def test_xpml_traceback_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("XPML_TRACEBACK", "1")
    with pytest.raises(ValueError, match="unknown backend"):
        train.main(["--backend", "no-such-backend"])


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--learning-rate" in out and "default hyperparameters on the digits" in out


@pytest.mark.parametrize(("kind", "text", "ok"), [
    (_cli.positive, "1e-3", 1e-3), (_cli.non_negative, "0", 0.0), (_cli.fraction, "1", 1.0), (_cli.count, "7", 7),
    (_cli.natural, "0", 0),
])
def test_number_types_accept_good_values(kind, text, ok):
    assert kind(text) == ok


# ---- failures of the machine: one line each, whatever OSError it is --------------------------------

@pytest.mark.parametrize(("code", "needle"), [
    (errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system"),
    (errno.EISDIR, "Is a directory"), (errno.EEXIST, "File exists"), (errno.EIO, "Input/output error"),
    (errno.EDQUOT, "quota"),
])
def test_os_errors_while_writing_are_one_line(tmp_path, capsys, monkeypatch, code, needle):
    def fail(src, dst, *a, **k):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(os, "replace", fail)  # every atomic write ends with os.replace
    rc = train.main([*TINY, "svm", "--num-iters", "5", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, needle, str(tmp_path / "r"))


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    def fit(*a, **k):
        raise MemoryError("cannot allocate")

    monkeypatch.setattr(_models, "fit", fit)
    rc = train.main([*TINY, "svm", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "out of memory", "smaller")


def test_a_directory_where_results_json_should_be_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert train.main([*TINY, "knn", "--quiet", "--out", str(out)]) == 0  # a run xpml wrote, then
    (out / "results.json").unlink()
    (out / "results.json").mkdir()  # a directory in its place
    rc = train.main([*TINY, "knn", "--quiet", "--out", str(out), "--overwrite"])
    assert_one_line_error(rc, capsys.readouterr().err, "Is a directory", "results.json")


def test_a_hidden_size_that_cannot_fit_is_refused_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_memory, "_host_memory", lambda: 16 * 2**30)
    loaded = []
    monkeypatch.setattr(_datasets, "load_dataset", lambda *a, **k: loaded.append(a))
    rc = train.main(["twolayer", "--hidden-size", "10000000", "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert_one_line_error(rc, err, "--hidden-size 10000000", "needs at least", "bytes", "16.0 GiB")
    needed = int(err.split("(")[1].split(" bytes")[0].replace(",", ""))
    want = _memory.net_bytes((64, 10**7, 10), batch_size=100, eval_rows=300, itemsize=4)
    assert needed >= want > 16 * 2**30  # the net, and its minibatch, picture and data besides
    assert loaded == [] and not (tmp_path / "r").exists()  # refused before reading data or making the folder


def test_net_bytes_counts_parameters_state_and_activations():
    # D=2, H=3, C=4: 2*3+3 + 3*4+4 = 25 parameters; sgd keeps 4 copies, adam 6.
    assert _memory.net_bytes((2, 3, 4), batch_size=5, eval_rows=7, itemsize=8) == 8 * (4 * 25 + 4 * 5 * 7 + 2 * 7 * 7)
    assert _memory.net_bytes((2, 3, 4), batch_size=5, eval_rows=7, itemsize=8, update_rule="adam") \
        - _memory.net_bytes((2, 3, 4), batch_size=5, eval_rows=7, itemsize=8) == 8 * 2 * 25


# ---- the reproduce scripts go through the same error handling ----------------------------------------

REPRODUCE_MISTAKES = [
    ("reproduce_knn.py", ["--backend", "tpu"], "unknown backend 'tpu'"),
    ("reproduce_knn.py", ["--folds", "0"], "--folds: must be an integer >= 2, got 0"),
    ("reproduce_knn.py", ["--folds", "1"], "--folds: must be an integer >= 2"),
    ("reproduce_knn.py", ["--num-train", "-5"], "--num-train: must be an integer >= 1"),
    ("reproduce_knn.py", ["--num-train", "110"], "too few for 5-fold cross-validation"),
    ("reproduce_knn.py", ["--plot", "{tmp}"], "is a directory; name the file"),
    ("reproduce_knn.py", ["--plot", "{tmp}/a-file/knn.png"], "a-file"),
    ("reproduce_linear.py", ["--trials", "0"], "--trials: must be an integer >= 1, got 0"),
    ("reproduce_linear.py", ["--backend", "nope"], "unknown backend 'nope'"),
    ("reproduce_linear.py", ["--lr", "1", "0.1"], "the low end is above the high end"),
    ("reproduce_linear.py", ["--decay", "0"], "--decay: must be in (0, 1]"),
    ("reproduce_linear.py", ["--num-iters", "x"], "--num-iters: an integer is needed"),
    ("reproduce_linear.py", ["--no-such-flag"], "unrecognized arguments"),
    ("reproduce_twolayer.py", ["search", "--trials", "0"], "--trials: must be an integer >= 1, got 0"),
    ("reproduce_twolayer.py", ["--backend", "tpu", "course"], "unknown backend 'tpu'"),
    ("reproduce_twolayer.py", ["--no-such-flag", "spiral"], "unrecognized arguments"),
    ("reproduce_fc.py", ["best", "--set", "nope=1"], "unknown key 'nope'"),
    ("reproduce_fc.py", ["best", "--set", "num_epochs=many"], "the value must be JSON"),
    ("reproduce_fc.py", ["dance"], "invalid choice: 'dance'"),
]


@pytest.mark.parametrize(("script", "argv", "message"), REPRODUCE_MISTAKES,
                         ids=[f"{s} {' '.join(a)}" for s, a, _ in REPRODUCE_MISTAKES])
def test_reproduce_script_mistakes(tmp_path, script, argv, message):
    (tmp_path / "a-file").write_text("x")
    # The data directory exists but holds no CIFAR-10: every mistake must be caught before reading it.
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = run_script(script, "--data-dir", tmp_path, *argv)
    assert_one_line_error(proc.returncode, proc.stderr, message)


def test_reproduce_script_without_data_is_one_line(tmp_path):
    proc = run_script("reproduce_linear.py", "--data-dir", tmp_path / "nowhere")
    assert_one_line_error(proc.returncode, proc.stderr, "is not a directory", "xpml download --data-dir")
    proc = run_script("reproduce_knn.py", "--data-dir", tmp_path, "--plot", tmp_path / "k.png")
    assert_one_line_error(proc.returncode, proc.stderr, "data_batch_1: no such file")
    proc = run_script("reproduce_twolayer.py", "course")  # spiral needs no data, course does
    assert_one_line_error(proc.returncode, proc.stderr, "course needs CIFAR-10", "xpml download --data-dir DIR")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_refuses_an_unknown_flag_in_one_line(command, capsys):
    rc = xpml_main([command, "--no-such-flag"])
    assert_one_line_error(rc, capsys.readouterr().err, "unrecognized arguments: --no-such-flag",
                          f"(see xpml {command} --help)")


def test_an_unreadable_batch_is_one_line_that_does_not_say_write_elsewhere(tmp_path, capsys, monkeypatch):
    from ._cifar_files import write_cifar

    write_cifar(str(tmp_path), checksums=True)
    real_open = open

    def refuse(path, *args, **kwargs):  # as if data_batch_2 were chmod 000 (root may read anything)
        if str(path).endswith("data_batch_2"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    rc = train.main(["knn", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--num-train", "10",
                     "--num-val", "5", "--num-test", "5", "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert_one_line_error(rc, err, "Permission denied", "data_batch_2", "check its permissions")
    assert "write" not in err
