"""The restricted unpickler against pickles that amplify (one buffer shared by many arrays, one
string encoded many times) or smuggle its placeholders out (recursive tuples, arrays as keys)."""

import pickle
import struct
import tracemalloc

import numpy as np
import pytest

from xpml.backend.io import CorruptFileError, load_restricted_pickle


class _SharedBuffer:
    """Pickles as numpy writes an array, but with a bytes object that several arrays share: the
    pickler memoizes it, so the file holds it once however many arrays use it."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (len(self.raw),), np.dtype("u1"), False, self.raw))


def _peak_while(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_shared_buffer_counts_each_time_it_is_used(tmp_path):
    raw = bytes(2**16)
    path = tmp_path / "shared"
    path.write_bytes(pickle.dumps({"data": [_SharedBuffer(raw) for _ in range(64)]}, protocol=4))
    assert path.stat().st_size < 2 * len(raw)  # 64 arrays of 64 KiB in a file of 64 KiB

    def load():
        with pytest.raises(CorruptFileError, match=r"shared: .*arrays of \d+ bytes .*more than the file"):
            load_restricted_pickle(path)

    assert _peak_while(load) < 8 * len(raw)  # not the 4 MiB the arrays would take


def test_arrays_that_each_hold_their_own_bytes_load(tmp_path):
    # The same arrays written the ordinary way: each has its bytes in the file, and loads.
    arrays = [np.full(2**12, i, np.uint8) for i in range(16)]
    path = tmp_path / "own"
    path.write_bytes(pickle.dumps({"data": arrays}, protocol=2))
    got = load_restricted_pickle(path)
    for a, b in zip(got["data"], arrays, strict=True):
        np.testing.assert_array_equal(a, b)


def _encode_many(text: str, times: int) -> bytes:
    """A protocol-2 pickle calling ``_codecs.encode(text, "latin1")`` ``times`` times with memoized arguments."""
    def unicode(s):
        b = s.encode("utf-8")
        return b"X" + struct.pack("<I", len(b)) + b

    return (b"\x80\x02" + b"c_codecs\nencode\nq\x00" + unicode(text) + unicode("latin1") + b"\x86q\x01"
            + b"(" + b"h\x00h\x01R" * times + b"l.")


def test_a_string_encoded_many_times_counts_each_time(tmp_path):
    path = tmp_path / "encoded"
    path.write_bytes(_encode_many("a" * 2**16, 64))
    assert path.stat().st_size < 2**17

    def load():
        with pytest.raises(CorruptFileError, match=r"encoded: .*more than the file"):
            load_restricted_pickle(path)

    assert _peak_while(load) < 2**19
    path.write_bytes(_encode_many("a" * 2**10, 1))
    assert load_restricted_pickle(path) == [b"a" * 2**10]


def test_a_recursive_tuple_holding_an_array_is_refused(tmp_path):
    inner = []
    outer = (_SharedBuffer(bytes(4)), inner)
    inner.append(outer)
    path = tmp_path / "recursive"
    path.write_bytes(pickle.dumps(outer, protocol=2))
    with pytest.raises(CorruptFileError, match="recursive: .*tuple that contains itself"):
        load_restricted_pickle(path)


def test_a_recursive_list_of_plain_data_still_loads(tmp_path):
    loop = [1, "a"]
    loop.append(loop)
    path = tmp_path / "loop"
    path.write_bytes(pickle.dumps(loop, protocol=2))
    got = load_restricted_pickle(path)
    assert got[:2] == [1, "a"] and got[2] is got


@pytest.mark.parametrize("make", [
    lambda a: {(a,): 1},
    lambda a: {frozenset({(a, 1)}): 1},
    lambda a: [frozenset({(a, 2)})],
    lambda a: [{(1, (a,))}],
], ids=["dict-key", "frozenset-key", "frozenset", "set"])
def test_an_array_inside_a_key_or_set_is_refused(tmp_path, make):
    path = tmp_path / "keyed"
    path.write_bytes(pickle.dumps(make(_SharedBuffer(bytes(4))), protocol=4))  # 4: set opcodes
    with pytest.raises(CorruptFileError, match="keyed: .*an array .*key or a set"):
        load_restricted_pickle(path)
