"""Host-side file I/O: the edge where data enters and leaves xpml.

Two kinds of file cross this edge:

- Python-2-era pickles, as in CIFAR-10's original download. They are read with a restricted
  unpickler that admits only what those files contain (dicts, lists, strings, bytes, ints and
  NumPy array reconstruction of non-object dtypes), so a malicious file cannot run code.
- ``.npz`` archives for checkpoints, written atomically (temporary file, fsync, rename) so a crash
  mid-write never leaves a file that loads wrong, and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile

import numpy as np

__all__ = ["CorruptFileError", "load_restricted_pickle", "load_npz", "save_npz_atomic"]


class CorruptFileError(ValueError):
    """A data file is truncated, corrupt, or holds something it should not."""


def _reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"only numpy.ndarray may be reconstructed, not {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, _safe_dtype(dtype_code))


def _safe_dtype(obj, *args):
    if isinstance(obj, bytes):
        obj = obj.decode("latin1")
    dt = np.dtype(obj) if not args else np.dtype(obj, *args)
    if dt.hasobject:
        raise pickle.UnpicklingError("object arrays are not admitted in data files")
    return dt


def _latin1_bytes(text, encoding):
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1"); only that
    # codec is admitted.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not admitted")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("_codecs", "encode"): _latin1_bytes,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not admitted: this file is not a plain data pickle"
            ) from None


def load_restricted_pickle(path, /, *, encoding: str = "latin1"):
    """Load a data pickle (dicts, lists, str/bytes, ints, numeric arrays) without running code.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    CorruptFileError
        The file is truncated or corrupt, or references anything beyond plain data; the message
        names the file.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return _RestrictedUnpickler(io.BytesIO(raw), encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError, MemoryError) as exc:
        raise CorruptFileError(
            f"{path}: not a valid data pickle ({type(exc).__name__}: {exc}); the file is corrupt or "
            "truncated: delete it and download or write it again"
        ) from exc


def save_npz_atomic(path, arrays: dict, /) -> None:
    """Write ``arrays`` (name -> host array or scalar) to ``path`` as ``.npz``, atomically.

    The data goes to a temporary file in the same directory, is flushed to disk, and is then
    renamed over ``path``: readers see either the old file or the complete new one.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path, /) -> dict:
    """Read an ``.npz`` written by :func:`save_npz_atomic` into a dict of host arrays.

    Pickled objects are refused (``allow_pickle=False``). A truncated or corrupt file raises
    :class:`CorruptFileError` naming it.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CorruptFileError(f"{path}: not a valid .npz file ({exc}); it is corrupt or truncated") from exc
