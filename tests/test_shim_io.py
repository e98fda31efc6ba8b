"""Host file I/O: the restricted unpickler, .npz checkpoints, atomic writes, locks and checksums,
against the hostile files and killed writers an audit threw at them."""

import contextlib
import hashlib
import io
import os
import pathlib
import pickle
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from xpml.backend.io import (
    DEFAULT_MAX_BYTES,
    CorruptFileError,
    atomic_write,
    load_npz,
    load_restricted_pickle,
    npz_members,
    read_checksums,
    record_checksums,
    save_npz_atomic,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_plain_data_pickle_round_trips(tmp_path):
    obj = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2], b"name": "x"}
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    got = load_restricted_pickle(path, encoding="bytes")
    np.testing.assert_array_equal(got[b"data"], obj[b"data"])
    assert got[b"labels"] == [1, 2]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_code_in_a_pickle_is_refused(tmp_path):
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({"x": _Evil()}, protocol=2))
    with pytest.raises(CorruptFileError, match="not admitted"):
        load_restricted_pickle(path)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj"
    path.write_bytes(pickle.dumps(np.array([1, "a"], dtype=object), protocol=2))
    with pytest.raises(CorruptFileError, match=str(path.name)):
        load_restricted_pickle(path)


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "data_batch_1"
    raw = pickle.dumps({"data": np.zeros((10, 10), np.uint8)}, protocol=2)
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="data_batch_1.*corrupt or truncated"):
        load_restricted_pickle(path)


def test_npz_atomic_round_trip_and_no_temp_left(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, {"W": np.ones((2, 2), np.float32), "lr": 0.5})
    got = load_npz(path)
    np.testing.assert_array_equal(got["W"], np.ones((2, 2), np.float32))
    assert float(got["lr"]) == 0.5
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, {"W": np.zeros(3)})

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash mid-write"):
        save_npz_atomic(path, {"W": np.ones(3), "bad": Boom()})
    np.testing.assert_array_equal(load_npz(path)["W"], np.zeros(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_corrupt_npz(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, {"W": np.ones(100)})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="ckpt.npz"):
        load_npz(path)


def test_pickled_objects_in_npz_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CorruptFileError):
        load_npz(path)


# ---- hostile data pickles: nothing is called with the file's arguments, nothing big is allocated --

def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _int(n: int) -> bytes:
    return pickle.BININT + n.to_bytes(4, "little", signed=True)


def test_the_bare_ndarray_constructor_is_refused(tmp_path):
    # numpy.ndarray((10**9,)) would be a gigabyte of uninitialised memory from a few bytes of file.
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.PROTO + b"\x02" + _global("numpy", "ndarray") + _int(10**9) + pickle.TUPLE1
                     + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
    with pytest.raises(CorruptFileError, match="data_batch_1.*calling numpy.ndarray is not admitted"):
        load_restricted_pickle(path)


def test_reconstruct_of_a_declared_huge_shape_is_refused(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.PROTO + b"\x02" + _global("numpy.core.multiarray", "_reconstruct")
                     + _global("numpy", "ndarray") + _int(10**9) + pickle.TUPLE1 + pickle.SHORT_BINBYTES + b"\x01b"
                     + pickle.TUPLE3 + pickle.REDUCE + pickle.STOP)
    with pytest.raises(CorruptFileError, match="not how numpy writes an array"):
        load_restricted_pickle(path)


def _array_pickle(shape, data: bytes, *, dtype_code=b"u1", dtype_state=None) -> bytes:
    """numpy's protocol-2 pickle of an array, with the shape, dtype and data bytes given (which may lie)."""
    state = dtype_state or (pickle.BININT1 + b"\x03" + pickle.SHORT_BINUNICODE + b"\x01|" + pickle.NONE * 3
                            + _int(-1) + _int(-1) + pickle.BININT1 + b"\x00")
    shape_ops = b"".join(_int(n) for n in shape)
    return (pickle.PROTO + b"\x02" + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + pickle.BININT1 + b"\x00" + pickle.TUPLE1 + pickle.SHORT_BINBYTES + b"\x01b" + pickle.TUPLE3
            + pickle.REDUCE
            + pickle.MARK + pickle.BININT1 + b"\x01" + pickle.MARK + shape_ops + pickle.TUPLE
            + _global("numpy", "dtype") + pickle.SHORT_BINBYTES + bytes([len(dtype_code)]) + dtype_code
            + pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE3 + pickle.REDUCE
            + pickle.MARK + state + pickle.TUPLE + pickle.BUILD
            + pickle.NEWFALSE + pickle.BINBYTES + len(data).to_bytes(4, "little") + data + pickle.TUPLE
            + pickle.BUILD + pickle.STOP)


def test_an_honest_hand_written_array_pickle_loads(tmp_path):
    path = tmp_path / "ok"
    path.write_bytes(_array_pickle((2, 3), bytes(range(6))))
    got = load_restricted_pickle(path)
    np.testing.assert_array_equal(got, np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert got.flags.writeable and got.flags.owndata


def test_a_declared_shape_larger_than_the_data_is_refused(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(_array_pickle((10**6, 3072), bytes(30)))
    with pytest.raises(CorruptFileError, match=r"declares shape \(1000000, 3072\).*but holds 30 bytes"):
        load_restricted_pickle(path)


@pytest.mark.parametrize("code", [b"O", b"V8", b"U4", b"M8"])
def test_dtypes_beyond_plain_numbers_are_refused(tmp_path, code):
    path = tmp_path / "batch"
    path.write_bytes(_array_pickle((1,), bytes(8), dtype_code=code))
    with pytest.raises(CorruptFileError, match="is not admitted"):
        load_restricted_pickle(path)


def test_a_dtype_state_with_fields_or_flags_is_refused(tmp_path):
    # A plain dtype made structured (or flagged as holding objects) by the state BUILD applies to it.
    fields = (pickle.BININT1 + b"\x03" + pickle.SHORT_BINUNICODE + b"\x01|" + pickle.NONE
              + pickle.SHORT_BINUNICODE + b"\x01a" + pickle.TUPLE1 + pickle.EMPTY_DICT + _int(8) + _int(1)
              + pickle.BININT1 + b"\x3f")
    path = tmp_path / "batch"
    path.write_bytes(_array_pickle((1,), bytes(1), dtype_state=fields))
    with pytest.raises(CorruptFileError, match="not that of a plain numeric dtype"):
        load_restricted_pickle(path)


def test_big_endian_and_fortran_arrays_round_trip(tmp_path):
    for a in (np.arange(12, dtype=">f8").reshape(3, 4), np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4))):
        path = tmp_path / "a"
        path.write_bytes(pickle.dumps({"a": a, "t": (a, 1)}, protocol=2))
        got = load_restricted_pickle(path)
        np.testing.assert_array_equal(got["a"], a)
        assert got["a"].dtype == a.dtype and got["t"][0] is got["a"]


def test_a_checksum_mismatch_names_the_file(tmp_path):
    path = tmp_path / "data_batch_2"
    path.write_bytes(pickle.dumps({"x": 1}, protocol=2))
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_restricted_pickle(path, sha256=good) == {"x": 1}
    with pytest.raises(CorruptFileError, match="data_batch_2: SHA-256 .* differs from"):
        load_restricted_pickle(path, sha256="0" * 64)


def test_checksums_are_recorded_and_read(tmp_path):
    (tmp_path / "a").write_bytes(b"one")
    (tmp_path / "b").write_bytes(b"two")
    record_checksums(tmp_path, ["a", "b"])
    digests = {"a": hashlib.sha256(b"one").hexdigest(), "b": hashlib.sha256(b"two").hexdigest()}
    assert read_checksums(tmp_path) == digests
    assert (tmp_path / "SHA256SUMS").read_text().splitlines()[0] == f"{hashlib.sha256(b'one').hexdigest()}  a"
    assert read_checksums(tmp_path / "a-missing-dir") is None
    (tmp_path / "SHA256SUMS").write_text("not a checksum line\n")
    with pytest.raises(CorruptFileError, match="SHA256SUMS: line 1"):
        read_checksums(tmp_path)


# ---- hostile .npz files: sizes and headers checked before anything is allocated ----------------

def _deflated_zeros_zip(path, name: str, header: bytes, zeros: int) -> None:
    """A zip of one deflated member, ``header`` then ``zeros`` zero bytes, written without ever holding
    them: deflate blocks ended by a full flush are independent, so one block of 16 MiB repeats."""
    chunk = 1 << 24
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    body = head + block * (zeros // chunk) + c.compress(bytes(zeros % chunk)) + c.flush()
    size = len(header) + zeros
    crc = 0  # not checked before the sizes are; the old loader inflated it all to find it wrong
    raw = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(body), size, len(raw), 0) + raw
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(body), size, len(raw),
                          0, 0, 0, 0, 0, 0) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(body), 0)
    with open(path, "wb") as f:
        f.write(local + body + central + end)


def _npy_header(shape, descr="|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@contextlib.contextmanager
def _allocates_less_than(limit: int):
    """The block's peak of traced allocations (NumPy's array data included) stays below ``limit`` bytes."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"allocated {peak} bytes"


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path):
    path = tmp_path / "bomb.npz"
    n = DEFAULT_MAX_BYTES + (1 << 24)  # a little over the limit, from about a megabyte of file
    _deflated_zeros_zip(path, "W.npy", _npy_header((n,)), n)
    assert path.stat().st_size < 2 * 2**20
    with _allocates_less_than(16 * 2**20):
        with pytest.raises(CorruptFileError, match="bomb.npz: its members declare .* refused without unpacking"):
            load_npz(path)
        with pytest.raises(CorruptFileError, match="refused without unpacking"):
            npz_members(path)


def test_a_trusted_compressed_file_loads_with_a_higher_limit(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, W=np.zeros(2**20, np.uint8))
    with pytest.raises(CorruptFileError, match="limit of 1000000 bytes"):
        load_npz(path, max_bytes=10**6)
    assert load_npz(path, max_bytes=2 * 2**20)["W"].shape == (2**20,)
    assert load_npz(path)["W"].sum() == 0


def test_a_header_declaring_more_than_the_member_holds_is_refused_before_allocating(tmp_path):
    path = tmp_path / "ckpt.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("param/W1.npy", _npy_header((10**6, 10**4), "<f8") + bytes(64))
    with _allocates_less_than(16 * 2**20):
        with pytest.raises(CorruptFileError, match=r"member 'param/W1.npy' declares shape \(1000000, 10000\)"):
            load_npz(path)


def test_members_are_read_from_their_headers_alone(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, {"param/W1": np.zeros((5, 3), np.float32), "net/init": "he", "n": 7})
    members = npz_members(path)
    assert members == {"param/W1": ((5, 3), np.dtype(np.float32)), "net/init": ((), np.dtype("<U2")),
                       "n": ((), np.asarray(7).dtype)}


def test_members_that_are_not_arrays_are_refused(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("W.npy", _npy_header((1,)) + b"\x00")
        zf.writestr("script.py", b"import os")
    with pytest.raises(CorruptFileError, match="'script.py' is not a .npy array"):
        load_npz(path)


# ---- writing: modes follow the umask; a killed writer's temporary file goes at the next save --

@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_npz_atomic(tmp_path / "c.npz", {"W": np.ones(2)})
        with atomic_write(tmp_path / "r.json", text=True) as f:
            f.write("{}")
    finally:
        os.umask(old)
    for name in ("c.npz", "r.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


_BLOCKED_SAVE = """
import sys
import numpy as np
from xpml.backend.io import save_npz_atomic

class Blocks:  # converting it to an array waits until the parent kills this process
    def __array__(self, *a, **k):
        print("writing", flush=True)
        sys.stdin.read()
        return np.zeros(1)

save_npz_atomic(sys.argv[1], {"W": np.full(3, 2.0), "later": Blocks()})
"""


def _run_until(code: str, *args, line: str):
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == line
    return proc


def test_a_killed_save_leaves_the_old_file_and_the_library_never_removes_what_it_cannot_prove_it_wrote(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, {"W": np.zeros(3)})
    proc = _run_until(_BLOCKED_SAVE, path, line="writing")
    proc.kill()
    proc.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and left[0].startswith(".tmp-"), left  # killed mid-write: its temp file stays
    np.testing.assert_array_equal(load_npz(path)["W"], np.zeros(3))  # and the old file is intact
    save_npz_atomic(tmp_path / "other.npz", {"W": np.ones(1)})
    # The temporary file stays: its name carries the writer's pid and token, which the command line
    # records in its run folders to clear its own leftovers there (see tests/test_cli_locks.py).
    assert sorted(p.name for p in tmp_path.iterdir()) == [left[0], "ckpt.npz", "other.npz"]
    assert left[0].startswith(f".tmp-{proc.pid}-")
