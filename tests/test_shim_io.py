"""Host file I/O: the restricted unpickler and atomic .npz checkpoints."""

import os
import pickle

import numpy as np
import pytest

from xpml.backend.io import CorruptFileError, load_npz, load_restricted_pickle, save_npz_atomic


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
