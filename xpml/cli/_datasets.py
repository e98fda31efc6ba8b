"""The datasets the scripts train on, split and preprocessed the same way, placed on a backend.

- ``digits`` (the default): scikit-learn's handwritten digits, 1,797 8x8 grey images of 0-9.
  They ship inside scikit-learn, so the default run needs no download.
- ``cifar10``: CIFAR-10 from a directory in its original layout (``cifar-10-batches-py``).
- ``spiral``: the course notes' three-armed spiral in the plane (not linearly separable).

Every dataset is split with a fixed seed (0), independent of ``--seed``, so runs with different
seeds are compared on the same split. Pixels are scaled to [0, 1] and the training mean is
subtracted (the notes' mean image), so one set of hyperparameter ranges suits every dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..backend.io import CHECKSUMS_NAME
from . import _cli
from ._cli import UsageError
from ._download import CIFAR10_DIRNAME, default_data_dir, find_cifar10, rebuild_hint

__all__ = ["DATASETS", "Dataset", "load_dataset"]

DATASETS = ("digits", "cifar10", "spiral")
SPLIT_SEED = 0
# (train, val, test) when not given on the command line; None: all that is left.
DEFAULT_SIZES = {
    "digits": (None, 300, 300),
    "cifar10": (49000, 1000, 1000),
    "spiral": (None, 120, 120),
}
# BLAS threads by default: the digits' and the spiral's matrix products are too small to gain
# from threads, and on a busy machine waiting threads make them many times slower.
DEFAULT_CPU_THREADS = {"digits": 1, "spiral": 1, "cifar10": None}
# (features per row, classes) of each dataset, known before it is loaded (for memory estimates).
FEATURES_AND_CLASSES = {"digits": (64, 10), "cifar10": (3072, 10), "spiral": (2, 3)}
# Examples in each dataset (CIFAR-10: its training pool and test batch) and the layout of a row
# as an image, where it is one (for the first-layer pictures' memory).
DATASET_ROWS = {"digits": 1797, "cifar10": 60000, "spiral": 600}
IMAGE_SHAPES = {"digits": (8, 8, 1), "cifar10": (32, 32, 3)}
CIFAR10_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPIRAL_POINTS_PER_CLASS, SPIRAL_CLASSES = 200, 3


@dataclass
class Dataset:
    """Train/validation/test arrays on one backend, with what is needed to draw them."""

    name: str
    X_train: object
    y_train: object
    X_val: object
    y_val: object
    X_test: object
    y_test: object
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int] | None = None  # (H, W, channels) of a row, when rows are images
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_features(self) -> int:
        return int(self.X_train.shape[1])

    def sizes(self) -> dict:
        return {"train": int(self.X_train.shape[0]), "val": int(self.X_val.shape[0]),
                "test": int(self.X_test.shape[0])}

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, **self.sizes(), "features": self.num_features,
                "classes": self.num_classes}


def split_sizes(name, num_train, num_val, num_test):
    """(train, val, test) sizes: those given, else the dataset's defaults (train None: all that is left)."""
    d_train, d_val, d_test = DEFAULT_SIZES[name]
    return (num_train if num_train is not None else d_train, num_val if num_val is not None else d_val,
            num_test if num_test is not None else d_test)


def _split_pool(X, y, num_train, num_val, num_test):
    """Shuffle one pool with the fixed split seed, then cut test, validation and train from it."""
    n = X.shape[0]
    wanted = num_val + num_test + (num_train or 1)
    if wanted > n:
        raise UsageError(f"asked for {num_train or 'at least 1'} train + {num_val} val + {num_test} test "
                         f"examples but the dataset has {n}")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    test, val = order[:num_test], order[num_test:num_test + num_val]
    train = order[num_test + num_val:]
    if num_train is not None:
        train = train[:num_train]
    return X[train], y[train], X[val], y[val], X[test], y[test]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits of ``sklearn.datasets.load_digits``, shipped with xpml (``xpml/data/digits.npz``).

    Returns ``images``, uint8 (1797, 8, 8), pixel counts 0..16, and ``labels``, uint8 (1797,).
    """
    from importlib import resources

    with resources.files("xpml").joinpath("data", "digits.npz").open("rb") as f, np.load(f) as npz:
        return npz["images"], npz["labels"]


def _digits(num_train, num_val, num_test):
    images, labels = load_digits()
    X = images.reshape(images.shape[0], -1).astype(np.float64) / 16.0  # pixel values are 0..16
    parts = _split_pool(X, labels.astype(np.int64), num_train, num_val, num_test)
    names = tuple(str(c) for c in range(10))
    return parts, names, (8, 8, 1), "the digits of sklearn.datasets.load_digits (shipped with xpml)"


def _spiral(num_train, num_val, num_test):
    from ..classifiers.data_utils import make_spiral

    X, y = make_spiral(SPIRAL_POINTS_PER_CLASS, SPIRAL_CLASSES, seed=SPLIT_SEED, dtype="float64")
    parts = _split_pool(backend.to_numpy(X), backend.to_numpy(y), num_train, num_val, num_test)
    names = tuple(f"arm {c}" for c in range(SPIRAL_CLASSES))
    return parts, names, None, f"make_spiral({SPIRAL_POINTS_PER_CLASS}, {SPIRAL_CLASSES})"


def cifar10_root(data_dir) -> str:
    """The CIFAR-10 directory under ``data_dir`` (or ``data_dir`` itself); a clear error if absent."""
    data_dir = data_dir if data_dir is not None else default_data_dir()
    root = find_cifar10(data_dir)
    if root is None:
        raise UsageError(
            f"CIFAR-10 not found in {data_dir} (looked for {CIFAR10_DIRNAME}/ with data_batch_1..5, test_batch, "
            "batches.meta): pass --data-dir DIR, or add --download to fetch it"
        )
    # Every batch is checked against SHA256SUMS as it is loaded; without that file nothing would be.
    if not os.path.isfile(os.path.join(root, CHECKSUMS_NAME)):
        raise UsageError(f"CIFAR-10 in {root} has no {CHECKSUMS_NAME}, so its files cannot be checked: fetch it "
                         f"again with {rebuild_hint(data_dir)}")
    return str(root)


def _cifar10(data_dir, num_train, num_val, num_test):
    root = cifar10_root(data_dir)  # a clear error before anything is read
    from ..classifiers.data_utils import load_CIFAR10

    X_pool, y_pool, X_test, y_test = (backend.to_numpy(a) for a in load_CIFAR10(root, dtype="float32"))
    n = X_pool.shape[0]
    num_train = n - num_val if num_train is None else num_train
    if num_train + num_val > n or num_test > X_test.shape[0]:
        raise UsageError(f"asked for {num_train} train + {num_val} val + {num_test} test images but {root} has "
                         f"{n} training and {X_test.shape[0]} test images")
    # The course's split: the first images train, the next ones validate, test_batch tests.
    train, val = slice(0, num_train), slice(num_train, num_train + num_val)
    flat = [np.reshape(a, (a.shape[0], -1)) for a in (X_pool[train], X_pool[val], X_test[:num_test])]
    for a in flat:
        a *= 1.0 / 255.0  # in place: 50,000 images are 600 MB in float32, no copy to spare
    parts = (flat[0], y_pool[train], flat[1], y_pool[val], flat[2], y_test[:num_test])
    return parts, CIFAR10_CLASSES, (32, 32, 3), root


def load_dataset(name: str, bk: backend.Backend, *, dtype="float32", data_dir=None, num_train=None,
                 num_val=None, num_test=None) -> Dataset:
    """Load, split, scale to [0, 1], subtract the training mean, and place on ``bk``."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    sizes = split_sizes(name, num_train, num_val, num_test)
    if name == "digits":
        parts, names, shape, source = _digits(*sizes)
    elif name == "spiral":
        parts, names, shape, source = _spiral(*sizes)
    else:
        parts, names, shape, source = _cifar10(data_dir, *sizes)
    host = np.float32 if dtype == "float32" else np.float64
    dt = backend.float_dtype(bk.xp, bk.device, dtype)
    idx = backend.index_dtype(bk.xp, bk.device)
    X_train, y_train, X_val, y_val, X_test, y_test = parts
    X_train, X_val, X_test = (np.asarray(X, dtype=host) for X in (X_train, X_val, X_test))
    mean = X_train.mean(axis=0, dtype=np.float64).astype(host)
    arrays = []
    for X, y in ((X_train, y_train), (X_val, y_val), (X_test, y_test)):
        X -= mean  # in place: the loaders hand over arrays of their own
        arrays += [bk.asarray(X, dtype=dt), bk.asarray(np.asarray(y, dtype=np.int64), dtype=idx)]
    return Dataset(name, *arrays, class_names=names, image_shape=shape, source=source, extra={"mean": mean})


def add_data_arguments(parser) -> None:
    """``--dataset``, split sizes and the CIFAR-10 download flags."""
    from . import download as download_cifar10

    g = parser.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, help="digits (default; ships with scikit-learn), "
                   "cifar10 (from --data-dir, or --download it) or spiral")
    g.add_argument("--num-train", type=_cli.count, metavar="N", help="training examples (default: all that are left)")
    g.add_argument("--num-val", type=_cli.count, metavar="N", help="validation examples")
    g.add_argument("--num-test", type=_cli.count, metavar="N", help="test examples")
    g.add_argument("--download", action="store_true",
                   help="fetch CIFAR-10 into --data-dir first if it is not there (implies --dataset cifar10)")
    download_cifar10.add_download_arguments(parser)


def choose_dataset(args) -> str:
    """The dataset the flags name; ``--download`` means CIFAR-10."""
    if args.download:
        if args.dataset not in (None, "cifar10"):
            raise UsageError(f"--download fetches CIFAR-10, but --dataset is {args.dataset}")
        return "cifar10"
    return args.dataset or "digits"


def load_from_args(args, bk, dataset: str) -> Dataset:
    """Download first when asked, then :func:`load_dataset` with the flags' sizes."""
    if args.download:
        from . import download as download_cifar10

        download_cifar10.download(args)
    return load_dataset(dataset, bk, dtype=args.dtype, data_dir=args.data_dir, num_train=args.num_train,
                        num_val=args.num_val, num_test=args.num_test)


def cpu_threads(args, dataset: str) -> int | None:
    """BLAS threads for this run: ``--cpu-threads``, else the dataset's default."""
    return args.cpu_threads if args.cpu_threads is not None else DEFAULT_CPU_THREADS[dataset]
