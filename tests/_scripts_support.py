"""Shared by the script tests: importing the scripts, tiny runs, checking pictures, a loopback file server."""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import pathlib
import subprocess
import sys
import tarfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"  # on sys.path through pytest's `pythonpath` (pyproject.toml)

# Small enough that a run of all four models takes about a second. A flag no model of a run takes
# is an error, so the training flags are added only where the models take them.
TINY = ["--num-train", "150", "--num-val", "60", "--num-test", "60"]
SHORT = ["--num-iters", "40"]
SMALL_NET = ["--hidden-size", "16"]


def run_script(name: str, *args, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python scripts/<name> args...`` in a fresh interpreter, output captured (so not a TTY)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("XPML_TRACEBACK", None)
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_png(path) -> tuple[int, int]:
    """``path`` is a PNG that opens as a non-empty image; returns its size."""
    from PIL import Image

    path = pathlib.Path(path)
    assert path.is_file(), f"{path.name} was not written"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] > 10 and im.size[1] > 10
        return im.size


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    """The run failed with status 2 and exactly one line ``error: ...`` containing every needle."""
    assert rc == 2, f"exit status {rc}, stderr: {err!r}"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def cifar_archive(tmp_path, *, n_per_batch: int = 12, n_test: int = 20, drop: str | None = None) -> bytes:
    """A tar.gz laid out like CIFAR-10's python archive, with tiny batches (``drop`` leaves a file out)."""
    from ._cifar_files import write_cifar

    src = tmp_path / "archive-src"
    write_cifar(str(src), n_per_batch=n_per_batch, n_test=n_test)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted((src / "cifar-10-batches-py").iterdir()):
            if path.name != drop:
                tar.add(path, arcname=f"cifar-10-batches-py/{path.name}")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, cut, stall = (*route, 0.0)[:3]
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # An interrupted transfer: announce the whole body, send part of it, (stall,) close.
        self.wfile.write(body[:cut] if cut is not None else body)
        self.wfile.flush()
        if stall:
            time.sleep(stall)
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args):  # keep test output clean
        pass


@contextlib.contextmanager
def file_server(routes: dict):
    """A loopback HTTP server serving ``routes`` (path -> (body, cut_at or None[, stall seconds]));
    stopped on exit.

    Yields ``(base_url, hits)`` where ``hits`` lists the paths requested.
    """
    handler = type("Handler", (_Handler,), {"routes": dict(routes), "hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
