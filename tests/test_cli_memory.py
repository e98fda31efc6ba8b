"""The up-front memory check covers every model, every batch size and the pictures: a run that
cannot fit is refused with one line before any data is read or any folder made."""

import pytest

from xpml.cli import _datasets, _memory, train

from ._scripts_support import assert_one_line_error

GiB = 2**30


@pytest.fixture
def refused_early(monkeypatch):
    """A machine of 16 GiB; records any attempt to load data."""
    monkeypatch.setattr(_memory, "_host_memory", lambda: 16 * GiB)
    loaded = []
    monkeypatch.setattr(_datasets, "load_dataset", lambda *a, **k: loaded.append(a))
    return loaded


@pytest.mark.parametrize(("argv", "needles"), [
    (["fc", "--hidden-dims", "30000,30000"], ["--hidden-dims 30000,30000", "training"]),
    (["svm", "--batch-size", "1000000000"], ["--batch-size 1000000000", "smaller --batch-size"]),
    (["softmax", "--batch-size", "1000000000"], ["--batch-size 1000000000"]),
    (["twolayer", "--batch-size", "1000000000"], ["--batch-size 1000000000"]),
    (["fc", "--batch-size", "1000000000"], ["--batch-size 1000000000"]),
    (["convnet", "--batch-size", "1000000000"], ["--batch-size 1000000000", "smaller --architecture"]),
    (["knn", "svm", "--batch-size", "1000000000"], ["svm"]),
])
def test_every_model_and_batch_size_is_checked_up_front(tmp_path, capsys, refused_early, argv, needles):
    rc = train.main([*argv, "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "needs at least", "16.0 GiB", *needles)
    assert refused_early == [] and not (tmp_path / "r").exists()


def test_the_first_layer_picture_is_counted(tmp_path, capsys, monkeypatch, refused_early):
    # A two-layer net of 10^6 hidden units on the digits: its filter picture took 2.4 GiB (a lower bound here).
    picture = _memory.picture_bytes(10**6, (8, 8, 1), itemsize=4)
    assert 2 * GiB < picture < 2.4 * GiB
    net = _memory.net_bytes((64, 10**6, 10), batch_size=100, eval_rows=300, itemsize=4)
    between = net + _memory.batch_bytes(64, batch_size=100, itemsize=4) \
        + _memory.data_bytes(1797, 64, itemsize=4) + picture // 2
    monkeypatch.setattr(_memory, "_host_memory", lambda: between)  # the net fits, net and picture do not
    rc = train.main(["twolayer", "--hidden-size", "1000000", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "--hidden-size 1000000", "first-layer picture")
    assert refused_early == []


def test_what_fits_is_not_refused(tmp_path, capsys, monkeypatch):
    from ._scripts_support import TINY

    monkeypatch.setattr(_memory, "_host_memory", lambda: 16 * GiB)
    assert train.main([*TINY, "svm", "--num-iters", "3", "--quiet", "--out", str(tmp_path / "r")]) == 0


def test_linear_and_picture_estimates_count_what_they_say():
    # D=2 (3 with the bias), C=4, B=5, R=7, float64, sgd: 4 copies of 12 parameters.
    assert _memory.linear_bytes(2, 4, batch_size=5, eval_rows=7, itemsize=8) == \
        8 * (4 * 12 + 5 * 3 + 3 * 5 * 4 + 7 * 4) + 8 * 5
    # 5 images of 2x3x1 tile a 3x3 grid of 3x4 padded tiles: 108 values.
    assert _memory.picture_bytes(5, (2, 3, 1), itemsize=4) == 108 * (3 * 4 + 16)
