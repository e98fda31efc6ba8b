"""Small CIFAR-10 batch files in the exact original layout, for loader tests (no real data needed).

The original files are Python 2 pickles: str keys and the array buffer written as Python 2 ``str``
(SHORT_BINSTRING/BINSTRING opcodes), with ``numpy.core.multiarray._reconstruct`` as the global.
They are laid out as the files ``xpml download`` unpacks (``cifar-10-batches-py``).
"""

import os
import pickle

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct


class Py2Str(bytes):
    """Bytes that pickle as a Python 2 ``str``."""


class Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + bytes(obj))
        self.memoize(obj)

    dispatch[Py2Str] = save_py2str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch[type(_reconstruct)] = save_global

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            a = np.ascontiguousarray(obj)
            return _reconstruct, (np.ndarray, (0,), Py2Str(b"b")), (1, a.shape, a.dtype, False, Py2Str(a.tobytes()))
        return NotImplemented


def s(text):
    return Py2Str(text.encode("latin1"))


def dump(obj, path):
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def batch(data, labels):
    return {s("batch_label"): s("a batch"), s("labels"): [int(v) for v in labels], s("data"): data,
            s("filenames"): [s(f"img_{i}.png") for i in range(len(labels))]}


def write_cifar(root, n_per_batch=4, n_test=6, seed=0, *, checksums=False):
    """Write a tiny cifar-10-batches-py under ``root``; return (train pixels, train labels, test ...) as
    the raw (n, 3072) uint8 rows and int labels. ``checksums`` also records their SHA256SUMS, as
    ``xpml download`` does (the command line refuses a dataset without them)."""
    rng = np.random.default_rng(seed)
    out = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(out, exist_ok=True)
    train_x, train_y = [], []
    for b in range(1, 6):
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch)
        dump(batch(data, labels), os.path.join(out, f"data_batch_{b}"))
        train_x.append(data)
        train_y.append(labels)
    test_x = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_y = rng.integers(0, 10, n_test)
    dump(batch(test_x, test_y), os.path.join(out, "test_batch"))
    dump({s("num_cases_per_batch"): n_per_batch, s("label_names"): [s(f"c{i}") for i in range(10)],
          s("num_vis"): 3072}, os.path.join(out, "batches.meta"))
    if checksums:
        from xpml.backend.io import record_checksums

        record_checksums(out, [*(f"data_batch_{b}" for b in range(1, 6)), "test_batch", "batches.meta"])
    return np.concatenate(train_x), np.concatenate(train_y), test_x, test_y
