"""Host-side file I/O: the edge where data enters and leaves xpml.

What crosses this edge, and what is guaranteed about it:

- **Data pickles**, as in CIFAR-10's original download, are read with a restricted unpickler that
  admits only plain data: dicts, lists, tuples, strings, bytes, numbers and arrays of plain
  numeric dtypes (bool, integers, floats). No global is ever called with arguments from the file:
  an array is built by xpml from the bytes the file holds, after checking that its declared shape
  and dtype match their length, so no code runs, no object array appears and no allocation is
  bigger than the file; the arrays built (and the strings encoded) are counted each time, also
  when many share one memoized buffer, and their total is no bigger than the file either.
- **``.npz`` archives** (checkpoints) are read with ``allow_pickle=False`` after every member's
  declared size and ``.npy`` header (shape, dtype) has been checked against the data it holds and
  against a byte limit, before any array is allocated: a zip bomb is refused without inflating it.
- **Every file written** goes through :func:`atomic_write`: a temporary file in the same
  directory, flushed to disk, given the permissions the umask asks for (0644 under umask 022),
  then renamed over the target. Readers see the old file or the complete new one, never half a
  file. A temporary file's name carries this process's id and :func:`temp_token`, so that whoever
  recorded the token can tell a killed writer's leftovers from a file of the user's.
- **Checksums**: :func:`record_checksums` writes a ``SHA256SUMS`` file beside data files, and
  :func:`load_restricted_pickle` verifies a file against the digest it is given before parsing it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
import pickle
import re
import secrets
import tempfile
import zipfile

import numpy as np

from .errors import InputError

__all__ = [
    "CHECKSUMS_NAME",
    "DEFAULT_MAX_BYTES",
    "TEMP_PREFIX",
    "CorruptFileError",
    "atomic_write",
    "load_npz",
    "load_restricted_pickle",
    "npz_members",
    "read_checksums",
    "record_checksums",
    "save_npz_atomic",
    "sha256_file",
    "temp_token",
]

# The most bytes a loader allocates for one file unless told otherwise (an .npz stored without
# compression may be as big as the file itself: see load_npz).
DEFAULT_MAX_BYTES = 2**30
CHECKSUMS_NAME = "SHA256SUMS"
TEMP_PREFIX = ".tmp-"
_MAX_NPZ_MEMBERS = 10_000
_MAX_NDIM = 32


class CorruptFileError(InputError):
    """A data file is truncated, corrupt, too big, or holds something it should not.

    Examples
    --------
    >>> from xpml.backend import io
    >>> with open("bad.npz", "wb") as f:
    ...     _ = f.write(b"not a zip")
    >>> io.load_npz("bad.npz")
    Traceback (most recent call last):
    ...
    xpml.backend.io.CorruptFileError: bad.npz: not a valid .npz file (File is not a zip file);
    it is corrupt or truncated
    """


# ---- writing: atomic, following the umask, cleaning up after killed writers ----------------------

def _umask() -> int:
    # /proc tells the umask without changing it; os.umask can only read it by setting it, which
    # another thread could observe for a moment.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# A token of this process, in the name of every temporary file it writes: the command line records
# it in the run folders it writes, and removes a killed writer's leftovers only when they carry a
# token it recorded there (never a file of the user's that merely looks like one).
_TEMP_TOKEN = secrets.token_hex(8)


def temp_token() -> str:
    """The token (16 hex digits) this process puts in its temporary files' names (see :func:`atomic_write`).

    Examples
    --------
    >>> import re
    >>> from xpml.backend import io
    >>> bool(re.fullmatch("[0-9a-f]{16}", io.temp_token())), io.temp_token() == io.temp_token()
    (True, True)
    """
    return _TEMP_TOKEN


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not possible (or needed) everywhere.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path, /, *, text: bool = False):
    """Write ``path`` atomically: yields a file object; on normal exit its contents replace ``path``.

    The data goes to ``.tmp-<pid>-<token>-<random><suffix>`` in the same directory (``token``:
    :func:`temp_token`), is flushed to disk, given the permissions the umask asks for
    (``0666 & ~umask``: 0644 under umask 022, as ``open`` would give), and renamed over ``path``
    (a link at ``path`` is replaced, never followed). If the block raises, ``path`` is untouched and
    the temporary file is removed at once. If the process is killed, the temporary file stays: the
    library never removes a file it cannot prove it wrote (the command line clears those of its
    own run folders, see ``xpml.cli._locks``).

    Parameters
    ----------
    path : str or path-like
        The file to write; its directory is created if needed.
    text : bool, keyword-only
        Yield a UTF-8 text file instead of a binary one.

    Examples
    --------
    >>> from xpml.backend import io
    >>> with io.atomic_write("note.txt", text=True) as f:
    ...     _ = f.write("hello")
    >>> open("note.txt").read()
    'hello'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{_TEMP_TOKEN}-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "w" if text else "wb", encoding="utf-8" if text else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            # mkstemp creates the file 0600; give it what open() would have given.
            mode = 0o666 & ~_umask()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:
                os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def save_npz_atomic(path, arrays: dict, /) -> None:
    """Write ``arrays`` (name -> host array or scalar) to ``path`` as ``.npz``, atomically.

    See :func:`atomic_write`: readers see either the old file or the complete new one.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend import io
    >>> io.save_npz_atomic("arrays.npz", {"w": np.arange(6.0).reshape(2, 3), "n": 3})
    >>> io.load_npz("arrays.npz")["w"]
    array([[0., 1., 2.],
           [3., 4., 5.]])
    """
    with atomic_write(path) as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


# ---- reading data pickles ------------------------------------------------------------------------

class _NdarrayToken:
    """What the global ``numpy.ndarray`` stands for in a data pickle: an argument, never a constructor."""

    __slots__ = ()

    def __repr__(self):
        return "numpy.ndarray"

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("calling numpy.ndarray is not admitted: it would allocate whatever size the "
                                     "file declares; numpy writes arrays with _reconstruct and their data")


_NDARRAY = _NdarrayToken()
_PLAIN_DTYPE = re.compile(r"[biuf][1248]")


class _Budget:
    """Bytes one kind of object built from a data pickle (arrays, encoded strings) may take in all.

    Each object is counted every time it is built, also when its source is a memoized buffer that
    the file holds once: plain data has every array's bytes in the file, so the total of each kind
    cannot exceed the file's size; a pickle that shares one buffer among many arrays (or encodes
    one string over and over) would otherwise allocate many times its size.
    """

    __slots__ = ("left", "limit", "what")

    def __init__(self, limit: int, what: str):
        self.limit, self.left, self.what = limit, limit, what

    def spend(self, nbytes: int) -> None:
        if nbytes > self.left:
            raise pickle.UnpicklingError(
                f"its {self.what} of {self.limit - self.left + nbytes} bytes in all (at least) would be more than "
                f"the file's {self.limit} bytes: plain data holds their bytes in the file, once each")
        self.left -= nbytes


class _DtypeSpec:
    """``numpy.dtype(code, align, copy)`` from a pickle, with its state; only plain numeric dtypes."""

    def __init__(self, code, align=False, copy=False):
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not isinstance(code, str) or not _PLAIN_DTYPE.fullmatch(code) or align:
            raise pickle.UnpicklingError(
                f"dtype {code!r} is not admitted: data files may hold bool, integer and float arrays only"
            )
        self.code, self.order = code, "|"

    def __setstate__(self, state):
        # numpy writes (3, byte order, None, None, None, -1, -1, 0) for a plain numeric dtype;
        # anything else (fields, sub-arrays, flags) is not plain data.
        if (not isinstance(state, tuple) or len(state) != 8 or state[0] not in (3, 4)
                or state[1] not in ("<", ">", "|", "=") or state[2:] != (None, None, None, -1, -1, 0)):
            raise pickle.UnpicklingError(f"dtype state {state!r} is not that of a plain numeric dtype")
        self.order = state[1]

    def resolve(self) -> np.dtype:
        dt = np.dtype(self.code)
        return dt.newbyteorder(self.order) if self.order in "<>" else dt


class _ArraySpec:
    """An array announced by ``_reconstruct`` and built from its state: shape, dtype and raw bytes."""

    def __init__(self, budget: _Budget):
        self.array, self.budget = None, budget

    def __setstate__(self, state):
        if self.array is not None:
            raise pickle.UnpicklingError("an array is built twice")
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("an array's state must be (version, shape, dtype, fortran, data)")
        version, shape, dtype, fortran, raw = state
        if (version != 1 or not isinstance(shape, tuple) or len(shape) > _MAX_NDIM
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"an array declares an invalid shape {shape!r}")
        if not isinstance(dtype, _DtypeSpec):
            raise pickle.UnpicklingError("an array's dtype must be a plain numeric numpy.dtype")
        if not isinstance(raw, (bytes, bytearray, str)):  # str: a Python 2 str read with encoding="latin1"
            raise pickle.UnpicklingError(f"an array's data must be bytes, not {type(raw).__name__}")
        dt = dtype.resolve()
        need = math.prod(shape) * dt.itemsize
        if len(raw) != need:  # a latin1 str has one character per byte
            raise pickle.UnpicklingError(
                f"an array declares shape {shape} of {dt} ({need} bytes) but holds {len(raw)} bytes"
            )
        self.budget.spend(need)  # before the str is encoded, which allocates too
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        flat = np.frombuffer(raw, dtype=dt)
        self.array = np.array(flat.reshape(shape, order="F" if fortran else "C"), order="K", copy=True)


def _reconstruct(budget, cls, shape, typecode):
    # numpy pickles an array as _reconstruct(ndarray, (0,), b'b') followed by its state: an empty
    # placeholder, filled by __setstate__. Nothing else is admitted, so the file cannot allocate.
    if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError(f"_reconstruct{(cls, shape, typecode)!r} is not how numpy writes an array")
    return _ArraySpec(budget)


def _latin1_bytes(budget, text, encoding):
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1"); only that
    # codec is admitted.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not admitted")
    budget.spend(len(text))
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Plain data only, and no more bytes of arrays (or of encoded strings) than ``size``."""

    def __init__(self, file, *, encoding: str, size: int):
        super().__init__(file, encoding=encoding)
        arrays, encoded = _Budget(size, "arrays"), _Budget(size, "encoded strings")
        self._allowed = {
            ("_codecs", "encode"): functools.partial(_latin1_bytes, encoded),
            ("numpy.core.multiarray", "_reconstruct"): functools.partial(_reconstruct, arrays),
            ("numpy._core.multiarray", "_reconstruct"): functools.partial(_reconstruct, arrays),
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): _DtypeSpec,
        }

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not admitted: this file is not a plain data pickle"
            ) from None


_PLACEHOLDERS = (_ArraySpec, _DtypeSpec, _NdarrayToken)
_IN_PROGRESS = object()


def _refuse_placeholders(key) -> None:
    """Refuse a dict key or set member that holds an array placeholder (it could not be replaced)."""
    if isinstance(key, _PLACEHOLDERS):
        raise pickle.UnpicklingError("an array inside a dict key or a set is not plain data")
    if type(key) in (tuple, frozenset):
        for v in key:
            _refuse_placeholders(v)


def _resolve(obj, memo: dict):
    """``obj`` with every array and dtype placeholder replaced by the real thing (containers in place)."""
    key = id(obj)
    if key in memo:
        if memo[key] is _IN_PROGRESS:
            # Reached again through a list or dict inside it: the outer reference would keep the
            # tuple of placeholders, since a tuple cannot be changed in place.
            raise pickle.UnpicklingError("a tuple that contains itself (through a list or a dict) is not plain data")
        return memo[key]
    if isinstance(obj, _ArraySpec):
        if obj.array is None:
            raise pickle.UnpicklingError("an array has no data")
        memo[key] = obj.array
    elif isinstance(obj, _DtypeSpec):
        memo[key] = obj.resolve()
    elif isinstance(obj, _NdarrayToken):
        raise pickle.UnpicklingError("numpy.ndarray appears outside an array")
    elif type(obj) is list:
        memo[key] = obj
        for i, v in enumerate(obj):
            obj[i] = _resolve(v, memo)
    elif type(obj) is dict:
        memo[key] = obj
        for k, v in obj.items():
            _refuse_placeholders(k)
            obj[k] = _resolve(v, memo)
    elif type(obj) is tuple:
        memo[key] = _IN_PROGRESS
        memo[key] = tuple(_resolve(v, memo) for v in obj)
    elif isinstance(obj, (set, frozenset)):
        memo[key] = obj
        for v in obj:
            _refuse_placeholders(v)
    else:
        memo[key] = obj
    return memo[key]


def load_restricted_pickle(path, /, *, encoding: str = "latin1", sha256: str | None = None,
                           max_bytes: int = DEFAULT_MAX_BYTES):
    """Load a data pickle (dicts, lists, str/bytes, numbers, numeric arrays) without running code.

    Parameters
    ----------
    path : str or path-like
    encoding : str, keyword-only
        How Python 2 ``str`` objects are decoded (``"latin1"``, or ``"bytes"`` to keep bytes).
    sha256 : str, keyword-only
        The file's expected SHA-256 (hex): checked before anything is parsed.
    max_bytes : int, keyword-only
        Larger files are refused before they are read.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    CorruptFileError
        The file is too big, truncated or corrupt, does not match ``sha256``, or references
        anything beyond plain data; the message names the file.

    Examples
    --------
    >>> import os, pickle
    >>> from xpml.backend import io
    >>> with open("data.pkl", "wb") as f:
    ...     pickle.dump({"labels": [1, 2]}, f)
    >>> io.load_restricted_pickle("data.pkl")
    {'labels': [1, 2]}
    >>> class Payload:  # a pickle that would run a command when loaded
    ...     def __reduce__(self):
    ...         return (os.system, ("echo owned",))
    >>> with open("evil.pkl", "wb") as f:
    ...     pickle.dump(Payload(), f)
    >>> io.load_restricted_pickle("evil.pkl")
    Traceback (most recent call last):
    ...
    xpml.backend.io.CorruptFileError: evil.pkl: not a valid data pickle (UnpicklingError: global ...system
    is not admitted: ...
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise CorruptFileError(f"{path}: {size} bytes, more than the {max_bytes} a data pickle may have")
        # Read what fstat found (one byte more shows a file still growing), not max_bytes: read(n)
        # allocates n bytes up front, a GiB for a file of a few KiB.
        raw = f.read(size + 1)
        if len(raw) > max_bytes:
            raise CorruptFileError(f"{path}: more than the {max_bytes} bytes a data pickle may have")
    if sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256.lower():
            raise CorruptFileError(
                f"{path}: SHA-256 {digest} differs from the {sha256} recorded in {CHECKSUMS_NAME} when the data "
                "was unpacked; the file was changed or corrupted: delete the dataset and download it again"
            )
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding=encoding, size=len(raw)).load()
        return _resolve(obj, {})
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError, MemoryError, RecursionError) as exc:
        raise CorruptFileError(
            f"{path}: not a valid data pickle ({type(exc).__name__}: {exc}); the file is corrupt or "
            "truncated: delete it and download or write it again"
        ) from exc


# ---- reading .npz archives -----------------------------------------------------------------------

def _npy_header(f, name: str):
    """``(shape, fortran_order, dtype)`` from the .npy header at the start of the open member ``f``."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(f)
    else:
        raise ValueError(f"{name}: .npy format version {version} is not supported")
    if dtype.hasobject:
        raise ValueError(f"{name} is an object array; data files hold plain arrays only")
    if len(shape) > _MAX_NDIM:
        raise ValueError(f"{name} declares {len(shape)} dimensions")
    return shape, fortran, dtype


def _checked_members(zf: zipfile.ZipFile, path: str, size_on_disk: int, max_bytes: int | None) -> list:
    """Every member as ``(info, shape, fortran, dtype)``, checked without reading any array data."""
    infos = zf.infolist()
    if len(infos) > _MAX_NPZ_MEMBERS:
        raise CorruptFileError(f"{path}: {len(infos)} members, more than the {_MAX_NPZ_MEMBERS} allowed")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise CorruptFileError(f"{path}: a member name appears twice")
    # A member stored without compression cannot hold more than the file; compressed ones may
    # inflate, which is what a zip bomb does: their declared sizes are checked before inflating.
    limit = max(DEFAULT_MAX_BYTES if max_bytes is None else max_bytes, size_on_disk)
    declared = sum(i.file_size for i in infos)
    if declared > limit:
        raise CorruptFileError(
            f"{path}: its members declare {declared} bytes once unpacked, from {size_on_disk} on disk, more than "
            f"the limit of {limit} bytes; refused without unpacking (pass max_bytes=... to load_npz if you trust it)"
        )
    members = []
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise CorruptFileError(f"{path}: member {info.filename!r} is not a .npy array")
        with zf.open(info) as f:
            shape, fortran, dtype = _npy_header(f, info.filename)
            header = f.tell()
        need = math.prod(shape) * dtype.itemsize
        if header + need != info.file_size:
            raise CorruptFileError(
                f"{path}: member {info.filename!r} declares shape {shape} of {dtype} ({need} bytes) but holds "
                f"{info.file_size - header} bytes of data"
            )
        members.append((info, shape, fortran, dtype))
    return members


def _open_npz(path: str, max_bytes: int | None, read):
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as zf:
            return read(zf, _checked_members(zf, path, size, max_bytes))
    except (FileNotFoundError, IsADirectoryError, PermissionError, CorruptFileError):
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError,
            MemoryError) as exc:
        raise CorruptFileError(f"{path}: not a valid .npz file ({exc}); it is corrupt or truncated") from exc


def npz_members(path, /, *, max_bytes: int | None = None) -> dict:
    """The arrays in an ``.npz`` file, ``name -> (shape, dtype)``, from their headers alone.

    Nothing is unpacked and no array is allocated: use it to check a file's shapes before building
    what will hold them. The checks of :func:`load_npz` apply (member sizes, headers, the limit).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend import io
    >>> io.save_npz_atomic("arrays.npz", {"w": np.arange(6.0).reshape(2, 3), "n": 3})
    >>> io.npz_members("arrays.npz")
    {'w': ((2, 3), dtype('float64')), 'n': ((), dtype('int64'))}
    """
    def read(zf, members):
        return {info.filename[:-4]: (tuple(shape), dtype) for info, shape, _, dtype in members}

    return _open_npz(os.fspath(path), max_bytes, read)


def load_npz(path, /, *, max_bytes: int | None = None) -> dict:
    """Read an ``.npz`` written by :func:`save_npz_atomic` into a dict of host arrays.

    Every member's declared size and ``.npy`` header is checked before any array is allocated:
    object arrays (pickles) are refused, a header whose shape does not match the bytes stored is
    refused, and so is a file whose members would unpack to more than ``max_bytes`` (default
    :data:`DEFAULT_MAX_BYTES`, 1 GiB, or the file's own size if larger: a file stored without
    compression, as :func:`save_npz_atomic` writes it, always loads). A truncated or corrupt file
    raises :class:`CorruptFileError` naming it.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.backend import io
    >>> io.save_npz_atomic("arrays.npz", {"w": np.arange(6.0).reshape(2, 3), "n": 3})
    >>> arrays = io.load_npz("arrays.npz")
    >>> sorted(arrays), arrays["n"]
    (['n', 'w'], array(3))
    """
    def read(zf, members):
        out = {}
        for info, _, _, _ in members:
            with zf.open(info) as f:
                out[info.filename[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
        return out

    return _open_npz(os.fspath(path), max_bytes, read)


# ---- checksums -----------------------------------------------------------------------------------

_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64}) [ *]([^/\\\x00]+)")


def sha256_file(path, /) -> str:
    """The SHA-256 (hex) of a file's contents.

    Examples
    --------
    >>> from xpml.backend import io
    >>> with open("note.txt", "w") as f:
    ...     _ = f.write("hello")
    >>> io.sha256_file("note.txt")
    '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def record_checksums(directory, names, /) -> None:
    """Write ``directory/SHA256SUMS`` with the SHA-256 of each file in ``names`` (``sha256sum`` format).

    Examples
    --------
    >>> from xpml.backend import io
    >>> with open("note.txt", "w") as f:
    ...     _ = f.write("hello")
    >>> io.record_checksums(".", ["note.txt"])
    >>> print(open("SHA256SUMS").read(), end="")
    2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  note.txt
    """
    directory = os.fspath(directory)
    lines = [f"{sha256_file(os.path.join(directory, name))}  {name}\n" for name in names]
    with atomic_write(os.path.join(directory, CHECKSUMS_NAME), text=True) as f:
        f.writelines(lines)


def read_checksums(directory, /) -> dict | None:
    """``{file name: SHA-256}`` from ``directory/SHA256SUMS``, or None when there is no such file.

    Examples
    --------
    >>> from xpml.backend import io
    >>> with open("note.txt", "w") as f:
    ...     _ = f.write("hello")
    >>> print(io.read_checksums("."))  # no SHA256SUMS here yet
    None
    >>> io.record_checksums(".", ["note.txt"])
    >>> io.read_checksums(".")
    {'note.txt': '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'}
    """
    path = os.path.join(os.fspath(directory), CHECKSUMS_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 20)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: cannot be read ({exc})") from exc
    sums = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _CHECKSUM_LINE.fullmatch(line.rstrip("\r"))
        if m is None or m.group(2) in (".", ".."):
            raise CorruptFileError(f"{path}: line {n} is not '<sha256>  <file name>'")
        sums[m.group(2)] = m.group(1)
    return sums
