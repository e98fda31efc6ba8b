"""The CIFAR-10 download, offline, against a file server on loopback started by each test.

Cases: a good archive, a corrupted one, an interrupted transfer, a missing file, an archive without
the expected files, a re-run, and ``train.py --download`` end to end. After every failure nothing
in the data directory loads as a dataset.
"""

import hashlib
import json

import pytest

from xpml.cli import _download, train
from xpml.cli import download as download_cifar10

from ._scripts_support import assert_one_line_error, assert_png, cifar_archive, file_server


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    body = cifar_archive(tmp_path_factory.mktemp("archive"))
    return body, hashlib.md5(body).hexdigest()


def _fetch(tmp_path, url, md5, *extra):
    return download_cifar10.main(["--data-dir", str(tmp_path / "cache"), "--url", url, "--md5", md5, "--quiet",
                                  "--timeout", "10", *extra])


def _assert_nothing_loads(tmp_path, capsys):
    cache = tmp_path / "cache"
    leftovers = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert leftovers == [], f"left behind: {leftovers}"
    rc = train.main(["knn", "--dataset", "cifar10", "--data-dir", str(cache), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "CIFAR-10 not found")


def test_good_archive(tmp_path, archive, capsys):
    body, md5 = archive
    with file_server({"/cifar.tar.gz": (body, None)}) as (url, hits):
        assert _fetch(tmp_path, f"{url}/cifar.tar.gz", md5) == 0
        assert _fetch(tmp_path, f"{url}/cifar.tar.gz", md5) == 0  # already there: not fetched again
        assert hits == ["/cifar.tar.gz"]
    out = capsys.readouterr().out.strip()
    root = tmp_path / "cache" / "cifar-10-batches-py"
    assert out.splitlines() == [str(root), str(root)]
    assert download_cifar10.main(["--data-dir", str(root), "--url", "http://127.0.0.1:9/never", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(root)  # given the dataset directory itself: nothing to do
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["cifar-10-batches-py"]  # no temp files
    assert sorted(p.name for p in root.iterdir()) == sorted(_download.CIFAR10_FILES)
    from xpml.classifiers.data_utils import load_CIFAR10

    Xtr, ytr, Xte, yte = load_CIFAR10(root)
    assert Xtr.shape == (60, 32, 32, 3) and Xte.shape == (20, 32, 32, 3)


def test_force_replaces_the_dataset(tmp_path, archive):
    body, md5 = archive
    with file_server({"/c.tar.gz": (body, None)}) as (url, hits):
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5) == 0
        marker = tmp_path / "cache" / "cifar-10-batches-py" / "stale"
        marker.write_text("x")
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5, "--force") == 0
        assert len(hits) == 2
    assert not marker.exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["cifar-10-batches-py"]


def test_corrupted_archive(tmp_path, archive, capsys):
    body, md5 = archive
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0xFF
    with file_server({"/c.tar.gz": (bytes(bad), None)}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", md5)
    assert_one_line_error(rc, capsys.readouterr().err, "checksum mismatch", md5)
    _assert_nothing_loads(tmp_path, capsys)


def test_interrupted_transfer(tmp_path, archive, capsys):
    body, md5 = archive
    with file_server({"/c.tar.gz": (body, len(body) // 3)}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", md5)
    assert_one_line_error(rc, capsys.readouterr().err, "interrupted")
    _assert_nothing_loads(tmp_path, capsys)


def test_stalled_transfer_times_out(tmp_path, archive, capsys):
    body, md5 = archive
    with file_server({"/c.tar.gz": (body, len(body) // 2, 3.0)}) as (url, _):
        rc = download_cifar10.main(["--data-dir", str(tmp_path / "cache"), "--url", f"{url}/c.tar.gz", "--md5", md5,
                                    "--quiet", "--timeout", "0.5"])
    assert_one_line_error(rc, capsys.readouterr().err, "interrupted", "timed out")
    _assert_nothing_loads(tmp_path, capsys)


def test_not_found_on_the_server(tmp_path, archive, capsys):
    with file_server({}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/missing.tar.gz", archive[1])
    assert_one_line_error(rc, capsys.readouterr().err, "HTTP 404")
    _assert_nothing_loads(tmp_path, capsys)


def test_archive_without_the_expected_files(tmp_path, capsys):
    body = cifar_archive(tmp_path, drop="data_batch_4")
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", hashlib.md5(body).hexdigest())
    assert_one_line_error(rc, capsys.readouterr().err, "lacks cifar-10-batches-py/data_batch_4")
    _assert_nothing_loads(tmp_path, capsys)


def test_not_an_archive(tmp_path, capsys):
    body = b"<html>a login page, not a tarball</html>"
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", hashlib.md5(body).hexdigest())
    assert_one_line_error(rc, capsys.readouterr().err, "could not be unpacked")
    _assert_nothing_loads(tmp_path, capsys)


def test_leftovers_of_a_killed_run_are_cleared(tmp_path, archive):
    body, md5 = archive
    cache = tmp_path / "cache"
    (cache / ".xpml-download-abc").mkdir(parents=True)
    (cache / ".xpml-download-abc" / "cifar-10-batches-py").mkdir()
    (cache / ".xpml-download-1.tar.gz.part").write_bytes(body[:100])
    assert _download.find_cifar10(cache) is None  # a half-done run never looks complete
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5) == 0
    assert sorted(p.name for p in cache.iterdir()) == ["cifar-10-batches-py"]


def test_train_download_then_train(tmp_path, archive, capsys):
    body, md5 = archive
    out = tmp_path / "run"
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        rc = train.main(["--download", "--data-dir", str(tmp_path / "cache"), "--url", f"{url}/c.tar.gz",
                         "--md5", md5, "--num-train", "40", "--num-val", "10", "--num-test", "10", "--num-iters",
                         "20", "--hidden-size", "9", "--k", "3", "--quiet", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["name"] == "cifar10" and results["dataset"]["features"] == 3072
    assert set(results["models"]) == {"knn", "svm", "softmax", "twolayer", "fc"}
    assert_png(out / "svm_templates.png")  # ten 32x32 colour templates
    assert_png(out / "twolayer_filters.png")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XPML_DATA_DIR", str(tmp_path / "d"))
    assert _download.default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("XPML_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if _download.sys.platform not in ("win32", "darwin"):
        assert _download.default_data_dir() == tmp_path / "xdg" / "xpml"
