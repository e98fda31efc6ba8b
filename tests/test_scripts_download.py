"""The CIFAR-10 download, offline, against a file server on loopback started by each test.

Cases: a good archive, a corrupted one, an interrupted transfer, a missing file, an archive without
the expected files, an archive with links, a re-run, two downloads at once, a flipped byte after
the download, and ``train.py --download`` end to end. After every failure nothing in the data
directory loads as a dataset.
"""

import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import pytest

from xpml.cli import _download, train
from xpml.cli import download as download_cifar10

from ._scripts_support import ROOT, assert_one_line_error, assert_png, cifar_archive, file_server


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
    assert not cache.exists(), f"left behind: the cache folder the download made, holding {leftovers}"
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
    assert sorted(p.name for p in root.iterdir()) == sorted([*_download.CIFAR10_FILES, "SHA256SUMS"])
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
    import platformdirs

    assert _download.default_data_dir() == platformdirs.user_cache_path("xpml", appauthor=False)


# ---- two downloads at once, links in archives, the data filter, checksums -------------------------

class _GatedHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``body``; the first response stops halfway until ``go`` is set, which happens when a
    second request comes in or when the test sees the second download waiting for the first."""

    body: bytes = b""
    streaming: threading.Event  # set when the first response is halfway
    go: threading.Event
    count: list

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.count.append(self.path)
        first = len(self.count) == 1
        if not first:
            self.go.set()
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        half = len(self.body) // 2
        self.wfile.write(self.body[:half])
        self.wfile.flush()
        if first:
            self.streaming.set()
            self.go.wait(120)
        self.wfile.write(self.body[half:])

    def log_message(self, *args):
        pass


def test_two_downloads_into_one_folder_both_succeed(tmp_path, archive):
    body, md5 = archive
    handler = type("H", (_GatedHandler,), {"body": body, "streaming": threading.Event(), "go": threading.Event(),
                                           "count": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/c.tar.gz"
    cache = tmp_path / "cache"
    argv = ["-m", "xpml", "download", "--data-dir", str(cache), "--url", url, "--md5", md5, "--timeout", "120"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        first = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=ROOT, env=env)
        # The first one is streaming, halfway, when the second starts.
        assert handler.streaming.wait(120), f"the first download never started: {first.communicate()}"
        second = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=ROOT, env=env)
        # The second either waits for the first (and says so), or asks the server (and releases it).
        err_lines = []

        def watch():
            for line in second.stderr:
                err_lines.append(line)
                if "waiting for another download" in line:
                    handler.go.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        out2 = second.stdout.read()  # stderr is the watcher's
        second.wait(timeout=180)
        watcher.join(timeout=10)
        second.stdout.close()
        second.stderr.close()
        out1, err1 = first.communicate(timeout=180)
    finally:
        handler.go.set()
        server.shutdown()
        server.server_close()
    root = cache / "cifar-10-batches-py"
    assert first.returncode == 0, err1
    assert second.returncode == 0, "".join(err_lines)
    assert out1.strip() == out2.strip() == str(root)
    assert any("waiting for another download" in line for line in err_lines)
    assert handler.count == ["/c.tar.gz"]  # the second found the dataset and fetched nothing
    assert _names(cache) == ["cifar-10-batches-py"]


def _names(path):
    return sorted(p.name for p in path.iterdir())


def _archive_with(tmp_path, extra) -> bytes:
    """The tiny CIFAR archive with ``extra(tar)`` adding members to it."""
    body = cifar_archive(tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as src, tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        extra(tar)
    return buf.getvalue()


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(("member", "kind"), [
    (_link("cifar-10-batches-py/readme.html", "/etc/passwd"), "link"),
    (_link("cifar-10-batches-py/extra", "data_batch_1"), "link"),  # inside the tree: passes the data filter
    (_link("cifar-10-batches-py/hard", "cifar-10-batches-py/data_batch_1", tarfile.LNKTYPE), "link"),
    (_link("cifar-10-batches-py/fifo", "", tarfile.FIFOTYPE), "special file"),
])
def test_links_in_the_archive_are_refused(tmp_path, capsys, member, kind):
    body = _archive_with(tmp_path, lambda tar: tar.addfile(member))
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", hashlib.md5(body).hexdigest())
    assert_one_line_error(rc, capsys.readouterr().err, f"the archive holds a {kind} ({member.name}", "refused")
    _assert_nothing_loads(tmp_path, capsys)


def test_without_the_data_filter_nothing_is_unpacked(tmp_path, archive, capsys, monkeypatch):
    body, md5 = archive
    monkeypatch.delattr(_download.tarfile, "data_filter")  # Python < 3.11.4
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", md5)
    assert_one_line_error(rc, capsys.readouterr().err, "needs Python >= 3.11.4")
    _assert_nothing_loads(tmp_path, capsys)


def test_python_requirement_covers_the_data_filter():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11.4"' in text


def test_a_flipped_byte_in_a_downloaded_batch_is_an_error_naming_it(tmp_path, archive, capsys):
    body, md5 = archive
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5) == 0
    capsys.readouterr()
    root = tmp_path / "cache" / "cifar-10-batches-py"
    assert (root / "SHA256SUMS").read_text().count("\n") == len(_download.CIFAR10_FILES)
    batch = root / "data_batch_2"
    raw = bytearray(batch.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one pixel: the pickle still parses, the checksum does not match
    batch.write_bytes(bytes(raw))
    rc = train.main(["knn", "--dataset", "cifar10", "--data-dir", str(tmp_path / "cache"), "--num-train", "20",
                     "--num-val", "5", "--num-test", "5", "--quiet", "--out", str(tmp_path / "r")])
    assert_one_line_error(rc, capsys.readouterr().err, "data_batch_2: SHA-256", "download it again")
    from xpml.backend.io import CorruptFileError
    from xpml.classifiers import load_CIFAR_batch

    with pytest.raises(CorruptFileError, match="data_batch_2"):
        load_CIFAR_batch(batch)
    load_CIFAR_batch(root / "data_batch_1")  # the others still load


def test_download_verifies_a_dataset_already_there(tmp_path, archive, capsys):
    body, md5 = archive
    with file_server({"/c.tar.gz": (body, None)}) as (url, hits):
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5) == 0
        batch = tmp_path / "cache" / "cifar-10-batches-py" / "data_batch_3"
        batch.write_bytes(batch.read_bytes()[:-100])  # truncated: not "already present"
        capsys.readouterr()
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", md5)
        assert_one_line_error(rc, capsys.readouterr().err, "data_batch_3", "truncated or changed",
                              f"xpml download --data-dir {tmp_path / 'cache'} --force")
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5, "--force") == 0
        assert hits == ["/c.tar.gz", "/c.tar.gz"]
    assert _download.checksum_problems(tmp_path / "cache" / "cifar-10-batches-py") == []


def test_a_missing_checksum_file_is_an_error_saying_how_to_rebuild_it(tmp_path, archive, capsys):
    body, md5 = archive
    cache = tmp_path / "cache"
    train_args = ["knn", "--dataset", "cifar10", "--data-dir", str(cache), "--num-train", "20", "--num-val", "5",
                  "--num-test", "5", "--quiet"]
    with file_server({"/c.tar.gz": (body, None)}) as (url, _):
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5) == 0
        (cache / "cifar-10-batches-py" / "SHA256SUMS").unlink()  # no longer turns the checks off
        capsys.readouterr()
        rc = train.main([*train_args, "--out", str(tmp_path / "r1")])
        assert_one_line_error(rc, capsys.readouterr().err, "has no SHA256SUMS",
                              f"xpml download --data-dir {cache} --force")
        rc = _fetch(tmp_path, f"{url}/c.tar.gz", md5)
        assert_one_line_error(rc, capsys.readouterr().err, "SHA256SUMS is missing", "--force")
        assert _fetch(tmp_path, f"{url}/c.tar.gz", md5, "--force") == 0
    assert train.main([*train_args, "--out", str(tmp_path / "r2")]) == 0


def test_a_download_into_a_new_folder_that_fails_removes_the_folders_it_made(tmp_path, capsys):
    with file_server({}) as (url, _):
        rc = download_cifar10.main(["--data-dir", str(tmp_path / "a" / "b"), "--url", f"{url}/missing", "--quiet",
                                    "--timeout", "10"])
    assert rc == 2 and not (tmp_path / "a").exists()


def test_a_download_lock_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".xpml-download.lock").symlink_to(victim)
    rc = download_cifar10.main(["--data-dir", str(cache), "--url", "http://127.0.0.1:9/never", "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, ".xpml-download.lock is a symbolic link")
    assert victim.read_text() == "precious"
