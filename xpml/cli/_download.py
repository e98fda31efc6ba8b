"""Fetching CIFAR-10's official python archive into a cache directory, all or nothing.

The steps, each of which can fail without leaving anything that later loads as a dataset:

0. take a lock on the cache directory (``.xpml-download.lock``): a second download into the same
   directory waits for the first, then finds the dataset there and does nothing;
1. stream the archive into a hidden temporary file in the cache directory, hashing it as it comes
   and counting bytes against the announced length (a connection closed early is an error, not a
   short file);
2. check the MD5 published on the dataset page;
3. unpack into a hidden temporary directory: regular files and directories only (a link of any
   kind is refused), through tar's ``data`` filter (no absolute paths, nothing outside the tree,
   no device files); check that every expected file is there, and record the SHA-256 of each in
   ``SHA256SUMS``, against which every later load checks the files;
4. rename the unpacked ``cifar-10-batches-py`` into place: the last step, atomic on one file
   system. Until it happens, the dataset directory does not exist.

A download removes only the files it created, on success and on any error. Leftovers of a killed
download are cleared by the next one, under the lock, so never while another download runs.
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

from ..backend.io import CHECKSUMS_NAME, CorruptFileError, read_checksums, record_checksums, sha256_file
from ._locks import file_lock

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
_LOCK_NAME = ".xpml-download.lock"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """The archive could not be fetched, was incomplete, or failed its checksum."""


def default_data_dir() -> Path:
    """Where datasets are cached: ``$XPML_DATA_DIR``, else the user's cache folder for xpml
    (``platformdirs.user_cache_path("xpml")``: ``$XDG_CACHE_HOME/xpml`` or ``~/.cache/xpml`` on
    Linux, ``~/Library/Caches/xpml`` on macOS, ``%LOCALAPPDATA%\\xpml\\Cache`` on Windows)."""
    if os.environ.get("XPML_DATA_DIR"):
        return Path(os.environ["XPML_DATA_DIR"]).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("xpml", appauthor=False)


def find_cifar10(data_dir) -> Path | None:
    """The complete CIFAR-10 directory in ``data_dir`` (which may be that directory itself), or None."""
    data_dir = Path(data_dir).expanduser()
    for candidate in (data_dir / CIFAR10_DIRNAME, data_dir):
        if all((candidate / name).is_file() for name in CIFAR10_FILES):
            return candidate
    return None


def rebuild_hint(data_dir) -> str:
    """The command that fetches CIFAR-10 into ``data_dir`` again and records its checksums."""
    return f"xpml download --data-dir {data_dir} --force"


def checksum_problems(root) -> list[str]:
    """What is wrong with the CIFAR-10 files in ``root`` against its ``SHA256SUMS`` (empty: all is well).

    A missing ``SHA256SUMS`` is a problem: without it nothing can be checked.
    """
    root = Path(root)
    try:
        sums = read_checksums(root)
    except CorruptFileError as exc:
        return [str(exc)]
    if sums is None:
        return [f"{root / CHECKSUMS_NAME} is missing, so its files cannot be checked"]
    problems = []
    for name in CIFAR10_FILES:
        if name not in sums:
            problems.append(f"{name} is not listed in {CHECKSUMS_NAME}")
        elif not (root / name).is_file() or (root / name).is_symlink():
            problems.append(f"{name} is not a plain file")
        elif sha256_file(root / name) != sums[name]:
            problems.append(f"{name} differs from its SHA-256 in {CHECKSUMS_NAME} (truncated or changed)")
    return problems


def verify_cifar10(root, data_dir) -> Path:
    """``root`` after checking every file against ``SHA256SUMS``; a :class:`DownloadError` saying
    what is wrong and how to fetch it again otherwise."""
    problems = checksum_problems(root)
    if problems:
        raise DownloadError(f"CIFAR-10 in {root} fails its checks ({'; '.join(problems[:3])}"
                            f"{'; ...' if len(problems) > 3 else ''}): fetch it again with {rebuild_hint(data_dir)}")
    return Path(root)


def _clear_leftovers(data_dir: Path) -> None:
    """Remove what killed downloads left. Only ever called under the directory's lock: no download
    that is still running can own these files."""
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


def _check_safe_unpacking() -> None:
    # tar's data filter came with Python 3.11.4 (and security releases of older lines); without it
    # an archive could write outside the directory, so nothing is unpacked.
    if not hasattr(tarfile, "data_filter"):
        raise DownloadError(
            f"unpacking archives safely needs Python >= 3.11.4 (tarfile's data filter); this is Python "
            f"{sys.version.split()[0]}: upgrade Python"
        )


def _unpack(archive: Path, into: Path) -> Path:
    _check_safe_unpacking()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            links = [m for m in members if not (m.isfile() or m.isdir())]
            if links:
                m = links[0]
                kind = "link" if (m.issym() or m.islnk()) else "special file"
                target = f" -> {m.linkname}" if m.linkname else ""
                raise DownloadError(f"the archive holds a {kind} ({m.name}{target}); CIFAR-10's archive holds only "
                                    "files and directories, so it was refused and nothing was unpacked")
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadError(f"the archive could not be unpacked ({type(exc).__name__}: {exc})") from exc
    unpacked = into / CIFAR10_DIRNAME
    missing = [name for name in CIFAR10_FILES if not (unpacked / name).is_file()]
    if missing:
        raise DownloadError(f"the archive lacks {CIFAR10_DIRNAME}/{', '.join(missing)}; "
                            "it is not CIFAR-10's python archive")
    record_checksums(unpacked, CIFAR10_FILES)
    return unpacked


def fetch_cifar10(data_dir=None, *, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5, force: bool = False,
                  timeout: float = 60.0, progress=None, on_wait=None) -> Path:
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
    on_wait : keyword-only
        Called once, with a sentence saying so, if another download into ``data_dir`` is under way
        and this one waits for it (it then returns the dataset that one unpacked).

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
        return verify_cifar10(existing, data_dir)  # a truncated batch is not "already there"
    if progress is None:
        from tqdm.auto import tqdm

        def progress(**kwargs):
            return tqdm(disable=True, **kwargs)

    created = [p for p in (data_dir, *data_dir.parents) if not p.exists()]  # removed again on failure
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        raise DownloadError(f"cannot create the data directory {data_dir}: {exc.strerror or exc}") from exc

    def waiting(holder):
        if on_wait is not None:
            on_wait(f"waiting for another download into {data_dir} to finish ({holder or 'unknown process'})")

    try:
        with file_lock(data_dir / _LOCK_NAME, on_wait=waiting, note=f"download of {url}"):
            existing = find_cifar10(data_dir)  # the download we waited for may have brought it
            if existing is not None and not force:
                return verify_cifar10(existing, data_dir)
            _clear_leftovers(data_dir)
            return _download_locked(data_dir, final, url=url, md5=md5, timeout=timeout, progress=progress)
    except BaseException:
        _remove_empty(created)  # a failed download leaves no empty cache folder behind
        raise


def _remove_empty(folders) -> None:
    """Remove each of ``folders`` (innermost first) that is empty; never anything in them."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            return


def _download_locked(data_dir: Path, final: Path, *, url, md5, timeout, progress) -> Path:
    """Download, check, unpack and rename into place; removes exactly the files it created."""
    created = []
    try:
        fd, archive = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tar.gz.part", dir=data_dir)
        created.append(Path(archive))
        with os.fdopen(fd, "wb") as f:
            digest = _stream(url, f, timeout=timeout, progress=progress)
        if md5 is not None and digest != md5.lower():
            raise DownloadError(
                f"checksum mismatch for {url}: MD5 {digest}, expected {md5}; the download is corrupt and was deleted"
            )
        workdir = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=data_dir))
        created.append(workdir)
        unpacked = _unpack(Path(archive), workdir)
        if final.exists():  # --force over an old (or incomplete, hand-made) directory
            stale = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=data_dir))
            created.append(stale)
            final.rename(stale / "old")
        unpacked.rename(final)  # the last step: until now there was no dataset directory
    finally:
        for path in created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return final
