"""CIFAR-10 loading from the original layout (tiny files written here), the course split, preprocessing."""

import os
import pickle

import numpy as np
import pytest

from xpml import backend
from xpml.backend.io import CorruptFileError
from xpml.backend.testing import assert_placement
from xpml.classifiers import append_bias, get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch, mean_image

from ._cifar_files import _reconstruct, batch, dump, s, write_cifar


def _hwc(rows):
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


@pytest.fixture
def cifar(tmp_path):
    return tmp_path, write_cifar(tmp_path)


def test_load_matches_the_course_loader(cifar):
    root, (trx, try_, tex, tey) = cifar
    for where in (root, root / "cifar-10-batches-py"):
        Xtr, ytr, Xte, yte = load_CIFAR10(where)
        assert Xtr.shape == (20, 32, 32, 3) and Xtr.dtype == np.float64
        np.testing.assert_array_equal(Xtr, _hwc(trx).astype(float))
        np.testing.assert_array_equal(ytr, try_)
        np.testing.assert_array_equal(Xte, _hwc(tex).astype(float))
        np.testing.assert_array_equal(yte, tey)
    X, y = load_CIFAR_batch(root / "cifar-10-batches-py" / "test_batch", dtype="float32")
    assert X.dtype == np.float32 and y.tolist() == tey.tolist()


def test_pixel_layout_is_hwc(cifar):
    root, (trx, *_) = cifar
    Xtr, *_ = load_CIFAR10(root)
    # Row layout: R plane, G plane, B plane, each 32 x 32 row-major.
    assert Xtr[0, 1, 2, 0] == trx[0, 0 * 1024 + 1 * 32 + 2]
    assert Xtr[0, 1, 2, 2] == trx[0, 2 * 1024 + 1 * 32 + 2]


def test_missing_truncated_and_malicious_files_are_named(cifar):
    root, _ = cifar
    d = root / "cifar-10-batches-py"
    raw = (d / "data_batch_3").read_bytes()
    (d / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="data_batch_3"):
        load_CIFAR10(root)
    os.remove(d / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3.*cifar-10-batches-py"):
        load_CIFAR10(root)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (d / "data_batch_3").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(CorruptFileError, match="data_batch_3.*not admitted"):
        load_CIFAR10(root)


@pytest.mark.parametrize("bad, match", [
    (lambda: batch(np.zeros((2, 3072), np.float32), [0, 1]), "uint8"),
    (lambda: batch(np.zeros((2, 100), np.uint8), [0, 1]), "shape"),
    (lambda: batch(np.zeros((2, 3072), np.uint8), [0]), "2 images but 1 labels"),
    (lambda: batch(np.zeros((2, 3072), np.uint8), [0, 10]), "labels must be 0..9"),
    (lambda: [1, 2, 3], "dict"),
    (lambda: {"labels": [0]}, "missing"),
])
def test_bad_structure_is_named(cifar, bad, match):
    root, _ = cifar
    dump(bad(), root / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(CorruptFileError, match=f"test_batch.*{match}"):
        load_CIFAR10(root)


def test_python3_pickles_with_bytes_keys_also_load(cifar):
    root, _ = cifar
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=4))
    X, y = load_CIFAR_batch(path)
    assert X.shape == (2, 32, 32, 3) and y.tolist() == [3, 4]


def test_course_split_and_preprocessing(bk, cifar):
    root, (trx, try_, tex, tey) = cifar
    data = get_CIFAR10_data(root, num_training=15, num_validation=3, num_test=4, num_dev=5, xp=bk)
    shapes = {k: tuple(v.shape) for k, v in data.items()}
    assert shapes == {"X_train": (15, 3073), "y_train": (15,), "X_val": (3, 3073), "y_val": (3,),
                      "X_test": (4, 3073), "y_test": (4,), "X_dev": (5, 3073), "y_dev": (5,),
                      "mean_image": (3072,)}
    for v in data.values():
        assert_placement(v, backend=bk)
    assert data["X_train"].dtype == bk.xp.float32
    rows = _hwc(trx).reshape(20, -1).astype(np.float64)
    mean = rows[:15].mean(0)
    np.testing.assert_allclose(backend.to_numpy(data["mean_image"]), mean, rtol=1e-5)
    np.testing.assert_allclose(backend.to_numpy(data["X_val"])[:, :-1], rows[15:18] - mean, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(backend.to_numpy(data["X_train"])[:, -1], 1.0)
    np.testing.assert_array_equal(backend.to_numpy(data["y_test"]), tey[:4])
    # dev rows are distinct training rows with their labels
    Xtr_h, Xdev_h = backend.to_numpy(data["X_train"]), backend.to_numpy(data["X_dev"])
    hits = [int(np.flatnonzero((Xtr_h == r).all(1))[0]) for r in Xdev_h]
    assert len(set(hits)) == 5
    np.testing.assert_array_equal(backend.to_numpy(data["y_dev"]), try_[hits])


def test_split_without_preprocessing_and_bad_sizes(cifar):
    root, (trx, *_) = cifar
    data = get_CIFAR10_data(root, 10, 2, 2, 0, subtract_mean=False, bias_trick=False, dtype="float64")
    assert "mean_image" not in data and data["X_dev"].shape == (0, 3072)
    np.testing.assert_array_equal(data["X_train"], _hwc(trx[:10]).reshape(10, -1))
    with pytest.raises(ValueError, match="the files hold 20"):
        get_CIFAR10_data(root, 19, 2)
    with pytest.raises(ValueError, match="num_dev"):
        get_CIFAR10_data(root, 3, 1, 1, 4)


def test_mean_image_and_bias_trick(bk):
    X = bk.asarray([[1.0, 2.0], [3.0, 6.0]])
    assert backend.to_numpy(mean_image(X)).tolist() == [2.0, 4.0]
    Xb = append_bias(X)
    assert_placement(Xb, backend=bk, dtype=X.dtype, shape=(2, 3))
    assert backend.to_numpy(Xb)[:, 2].tolist() == [1.0, 1.0]


def test_unknown_keys_are_refused(cifar):
    root, _ = cifar
    path = root / "cifar-10-batches-py" / "test_batch"
    extra = batch(np.zeros((2, 3072), np.uint8), [0, 1]) | {s("fine_labels"): [0, 1]}
    dump(extra, path)
    with pytest.raises(CorruptFileError, match=r"test_batch: unexpected key 'fine_labels'.*batch_label, data"):
        load_CIFAR_batch(path)


def test_a_batch_sharing_one_buffer_among_many_arrays_is_refused_before_it_allocates(cifar):
    import tracemalloc

    root, _ = cifar
    path = root / "cifar-10-batches-py" / "test_batch"
    rows = s("\0" * 3072 * 8)  # one buffer, memoized: the file holds it once
    data = (_reconstruct, (np.ndarray, (0,), s("b")), (1, (8, 3072), np.dtype("u1"), False, rows))
    hostile = batch(np.zeros((8, 3072), np.uint8), [0] * 8) | {s("data"): _Reduced(*data),
                                                               s("copies"): [_Reduced(*data) for _ in range(200)]}
    dump(hostile, path)
    assert path.stat().st_size < 2 * 3072 * 8 + 8192
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match=r"test_batch: .*arrays of \d+ bytes .*more than the file"):
            load_CIFAR_batch(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * path.stat().st_size  # the 200 copies would take 4.9 MB


class _Reduced:
    def __init__(self, *reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced
