"""Fetching CIFAR-10's official python archive into a cache directory, all or nothing.

The steps, each of which can fail without leaving anything that later loads as a dataset:

1. stream the archive into a hidden temporary file in the cache directory, hashing it as it comes
   and counting bytes against the announced length (a connection closed early is an error, not a
   short file);
2. check the MD5 published on the dataset page;
3. unpack into a hidden temporary directory (tar's ``data`` filter: no absolute paths, links out
   of the tree or device files) and check that every expected file is there;
4. rename the unpacked ``cifar-10-batches-py`` into place: the last step, atomic on one file
   system. Until it happens, the dataset directory does not exist.

Temporary files are removed on any error, and leftovers of a killed run are cleared by the next.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "CIFAR10_DIRNAME",
    "CIFAR10_FILES",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "DownloadError",
    "default_data_dir",
    "fetch_cifar10",
    "find_cifar10",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_FILES = ("batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
_TMP_PREFIX = ".xpml-download-"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """The archive could not be fetched, was incomplete, or failed its checksum."""


def default_data_dir() -> Path:
    """Where datasets are cached: ``$XPML_DATA_DIR``, else the user's cache directory + ``/xpml``."""
    if os.environ.get("XPML_DATA_DIR"):
        return Path(os.environ["XPML_DATA_DIR"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "xpml"


def find_cifar10(data_dir) -> Path | None:
    """The complete CIFAR-10 directory in ``data_dir`` (which may be that directory itself), or None."""
    data_dir = Path(data_dir).expanduser()
    for candidate in (data_dir / CIFAR10_DIRNAME, data_dir):
        if all((candidate / name).is_file() for name in CIFAR10_FILES):
            return candidate
    return None


def _clear_leftovers(data_dir: Path) -> None:
    for path in data_dir.glob(f"{_TMP_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _stream(url: str, dest, *, timeout: float, progress) -> str:
    """Write the body of ``url`` to the open file ``dest``; return its MD5 (hex)."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            with progress(total=expected, desc="CIFAR-10", unit="B", unit_scale=True, unit_divisor=1024) as bar:
                while chunk := response.read(_CHUNK):
                    dest.write(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"could not download {url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:  # connection reset, timeout, http.client.IncompleteRead
        raise DownloadError(f"the transfer of {url} was interrupted ({type(exc).__name__}: {exc})") from exc
    # http.client returns a short body without complaint when the server closes early, so count.
    if expected is not None and received != expected:
        raise DownloadError(
            f"the transfer of {url} was interrupted: got {received} of {expected} bytes; nothing was kept, try again"
        )
    return md5.hexdigest()


def _unpack(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadError(f"the archive could not be unpacked ({type(exc).__name__}: {exc})") from exc
    unpacked = into / CIFAR10_DIRNAME
    missing = [name for name in CIFAR10_FILES if not (unpacked / name).is_file()]
    if missing:
        raise DownloadError(f"the archive lacks {CIFAR10_DIRNAME}/{', '.join(missing)}; "
                            "it is not CIFAR-10's python archive")
    return unpacked


def fetch_cifar10(data_dir=None, *, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5, force: bool = False,
                  timeout: float = 60.0, progress=None) -> Path:
    """Download, check and unpack CIFAR-10 into ``data_dir``; return the dataset directory.

    Parameters
    ----------
    data_dir : path or None
        The cache directory (default :func:`default_data_dir`); the dataset lands in
        ``data_dir/cifar-10-batches-py``.
    url, md5 : keyword-only
        Where the archive is and its expected MD5 (hex). ``md5=None`` skips the check (only for
        archives of your own).
    force : keyword-only
        Download again even when a complete dataset is already there.
    timeout : keyword-only
        Seconds without data before the transfer is abandoned.
    progress : keyword-only
        A tqdm-like factory ``progress(total=..., desc=..., unit=..., ...)`` used as a context
        manager with ``update(n)``; None shows nothing.

    Raises
    ------
    DownloadError
        Network failure, interrupted transfer, checksum mismatch, or an archive without the
        expected files. Nothing is left in ``data_dir`` that looks like a dataset.
    """
    data_dir = Path(data_dir if data_dir is not None else default_data_dir()).expanduser()
    final = data_dir / CIFAR10_DIRNAME
    existing = find_cifar10(data_dir)  # data_dir may be the dataset directory itself
    if existing is not None and not force:
        return existing
    if progress is None:
        from tqdm.auto import tqdm

        def progress(**kwargs):
            return tqdm(disable=True, **kwargs)

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data directory {data_dir}: {exc.strerror or exc}") from exc
    _clear_leftovers(data_dir)
    fd, archive = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tar.gz.part", dir=data_dir)
    archive = Path(archive)
    workdir = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=data_dir))
    try:
        with os.fdopen(fd, "wb") as f:
            digest = _stream(url, f, timeout=timeout, progress=progress)
        if md5 is not None and digest != md5.lower():
            raise DownloadError(
                f"checksum mismatch for {url}: MD5 {digest}, expected {md5}; the download is corrupt and was deleted"
            )
        unpacked = _unpack(archive, workdir)
        if final.exists():  # --force over an old (or incomplete, hand-made) directory
            stale = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=data_dir))
            final.rename(stale / "old")
        unpacked.rename(final)  # the last step: until now there was no dataset directory
    finally:
        archive.unlink(missing_ok=True)
        _clear_leftovers(data_dir)
    return final
