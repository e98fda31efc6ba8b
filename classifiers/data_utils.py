"""Data for the classifiers: CIFAR-10 in its original download layout, the course's split and
preprocessing (mean image, bias trick), and the spiral toy set of the course notes.

CIFAR-10's ``cifar-10-batches-py`` files are Python-2-era pickles. They are read with
``backend.io.load_restricted_pickle``, which admits only plain data (no code can run), and every
structural problem is reported with the name of the file. What a batch may make xpml allocate
is bounded by the file's size (the unpickler counts every array it builds, also from a buffer
that the file holds once), and a batch with keys other than CIFAR-10's is refused. When the directory holds a
``SHA256SUMS`` file (written when ``xpml download`` unpacked the archive), every batch is checked
against it before it is parsed: a changed or corrupted file is an error naming it. The loaded arrays are host (NumPy)
arrays, reshaped through the array-api-compat namespace the shim gives for them; they move to the
chosen backend once, in :func:`get_CIFAR10_data`.
"""

from __future__ import annotations

import os

from .. import backend
from ..backend.errors import InputError
from ..backend.io import CHECKSUMS_NAME, CorruptFileError, load_restricted_pickle, read_checksums
from ..backend.validation import check_data, check_positive

__all__ = ["append_bias", "get_CIFAR10_data", "load_CIFAR10", "load_CIFAR_batch", "make_spiral", "mean_image"]

_SIDE, _CHANNELS, _NUM_CLASSES = 32, 3, 10
_PIXELS = _SIDE * _SIDE * _CHANNELS
_TRAIN_FILES = [f"data_batch_{b}" for b in range(1, 6)]
_TEST_FILE = "test_batch"
_BATCH_KEYS = ("batch_label", "data", "filenames", "labels")
_LAYOUT_HELP = (
    "expected CIFAR-10's python layout: a cifar-10-batches-py directory with data_batch_1..5, "
    "test_batch and batches.meta (xpml download fetches it)"
)


def _batch_dir(root) -> str:
    """``root`` itself, or its ``cifar-10-batches-py`` subdirectory when given the parent."""
    root = os.fspath(root)
    nested = os.path.join(root, "cifar-10-batches-py")
    if not os.path.exists(os.path.join(root, _TEST_FILE)) and os.path.isdir(nested):
        return nested
    return root


def _recorded_digest(path):
    """The SHA-256 recorded for ``path`` in its directory's SHA256SUMS, or None without that file."""
    directory, name = os.path.split(os.path.abspath(path))
    sums = read_checksums(directory)
    if sums is None:
        return None
    if name not in sums:
        raise CorruptFileError(f"{path}: not listed in {os.path.join(directory, CHECKSUMS_NAME)}; "
                               "the dataset directory was changed: download it again")
    return sums[name]


def _load_raw_batch(path):
    """One batch file as host arrays: pixels (n, 32, 32, 3) uint8 in HWC order and labels (n,) int64."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; {_LAYOUT_HELP}")
    raw = load_restricted_pickle(path, encoding="latin1", sha256=_recorded_digest(path))
    if not isinstance(raw, dict):
        raise CorruptFileError(f"{path}: expected a dict of 'data' and 'labels', got {type(raw).__name__}")
    # Python 2 wrote str keys (str under latin1); a file rewritten by Python 3 may have bytes keys.
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    if "data" not in entries or "labels" not in entries:
        raise CorruptFileError(f"{path}: missing 'data' or 'labels' (keys: {sorted(map(str, entries))})")
    # Anything else is another file (CIFAR-100's batches have 'fine_labels'), refused rather than
    # ignored; what it held was allocated within the unpickler's budget (no more than the file).
    unknown = sorted(map(repr, set(entries) - set(_BATCH_KEYS)))
    if unknown:
        raise CorruptFileError(f"{path}: unexpected key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; a "
                               f"CIFAR-10 batch holds {', '.join(_BATCH_KEYS)} only")
    data, labels = entries["data"], entries["labels"]
    try:
        hxp = backend.get_namespace(data)
    except TypeError:
        raise CorruptFileError(f"{path}: 'data' is a {type(data).__name__}, not an array") from None
    if data.dtype != hxp.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise CorruptFileError(
            f"{path}: 'data' must be uint8 of shape (n, {_PIXELS}), got {data.dtype} {tuple(data.shape)}"
        )
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise CorruptFileError(f"{path}: 'labels' must be a list of ints")
    if len(labels) != data.shape[0]:
        raise CorruptFileError(f"{path}: {data.shape[0]} images but {len(labels)} labels")
    if labels and not 0 <= min(labels) <= max(labels) < _NUM_CLASSES:
        raise CorruptFileError(f"{path}: labels must be 0..{_NUM_CLASSES - 1}, got {min(labels)}..{max(labels)}")
    # Rows hold the R, G and B planes of 32 x 32 each; the course works in (height, width, channel).
    images = hxp.permute_dims(hxp.reshape(data, (data.shape[0], _CHANNELS, _SIDE, _SIDE)), (0, 2, 3, 1))
    return images, hxp.asarray(labels, dtype=hxp.int64)


def _load_raw(root):
    root = _batch_dir(root)
    parts = [_load_raw_batch(os.path.join(root, name)) for name in _TRAIN_FILES]
    hxp = backend.get_namespace(parts[0][0])
    Xtr = hxp.concat([p[0] for p in parts], axis=0)
    ytr = hxp.concat([p[1] for p in parts], axis=0)
    Xte, yte = _load_raw_batch(os.path.join(root, _TEST_FILE))
    return Xtr, ytr, Xte, yte


def load_CIFAR_batch(path, /, *, dtype="float64"):
    """One CIFAR-10 batch file: images (n, 32, 32, 3) of ``dtype`` (HWC order) and labels (n,), on the host.

    Examples
    --------
    >>> import os, pickle
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> os.makedirs("cifar-10-batches-py", exist_ok=True)  # a made-up CIFAR-10 of 4 images a batch
    >>> for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
    ...     batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    ...     with open(os.path.join("cifar-10-batches-py", name), "wb") as f:
    ...         pickle.dump(batch, f)
    >>> from xpml.classifiers.data_utils import load_CIFAR_batch
    >>> images, labels = load_CIFAR_batch("cifar-10-batches-py/test_batch", dtype="float32")
    >>> images.shape, images.dtype, labels
    ((4, 32, 32, 3), dtype('float32'), array([0, 1, 2, 3]))
    """
    images, labels = _load_raw_batch(os.fspath(path))
    hxp = backend.get_namespace(images)
    return hxp.astype(images, getattr(hxp, dtype)), labels


def load_CIFAR10(root, /, *, dtype="float64"):
    """All of CIFAR-10 from its original layout, as the course's ``load_CIFAR10`` returns it.

    Parameters
    ----------
    root : path
        The ``cifar-10-batches-py`` directory (or its parent).
    dtype : {"float64", "float32"}, keyword-only
        Pixel dtype; the course's is float64 (1.2 GB for the training images), float32 halves it.

    Returns
    -------
    Xtr : host array (50000, 32, 32, 3)
    ytr : host array (50000,) int64
    Xte : host array (10000, 32, 32, 3)
    yte : host array (10000,) int64

    Raises
    ------
    FileNotFoundError
        A batch file is missing (the message names it and the layout expected).
    backend.io.CorruptFileError
        A file is truncated, corrupt, holds code, or has the wrong structure (named in the message).

    Examples
    --------
    >>> import os, pickle
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> os.makedirs("cifar-10-batches-py", exist_ok=True)  # a made-up CIFAR-10 of 4 images a batch
    >>> for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
    ...     batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    ...     with open(os.path.join("cifar-10-batches-py", name), "wb") as f:
    ...         pickle.dump(batch, f)
    >>> from xpml.classifiers.data_utils import load_CIFAR10
    >>> Xtr, ytr, Xte, yte = load_CIFAR10("cifar-10-batches-py")
    >>> Xtr.shape, Xtr.dtype, ytr.shape, Xte.shape, yte.shape
    ((20, 32, 32, 3), dtype('float64'), (20,), (4, 32, 32, 3), (4,))
    """
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    Xtr, ytr, Xte, yte = _load_raw(root)
    hxp = backend.get_namespace(Xtr)
    return hxp.astype(Xtr, getattr(hxp, dtype)), ytr, hxp.astype(Xte, getattr(hxp, dtype)), yte


def mean_image(X, /):
    """The mean row of ``X`` (N, D): shape (D,), on X's device; subtract it from every split.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.data_utils import mean_image
    >>> mean_image(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([2., 3.])
    """
    check_data(X, name="X", ndim=(2, 4))
    return backend.get_namespace(X).mean(X, axis=0)


def append_bias(X, /):
    """The bias trick: ``X`` (N, D) with a column of ones appended, (N, D + 1), so that ``X W``
    includes a bias in the last row of W.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.data_utils import append_bias
    >>> append_bias(np.array([[2.0, 3.0], [4.0, 5.0]]))
    array([[2., 3., 1.],
           [4., 5., 1.]])
    """
    check_data(X, name="X")
    return _with_ones(X)


def _with_ones(X):
    xp, device = backend.namespace_and_device(X)
    return xp.concat([X, xp.ones((X.shape[0], 1), dtype=X.dtype, device=device)], axis=1)


def get_CIFAR10_data(root, /, num_training=49000, num_validation=1000, num_test=1000, num_dev=500, *,
                     subtract_mean=True, bias_trick=True, dtype=None, seed=0, xp=None, device=None) -> dict:
    """The course's CIFAR-10 split and preprocessing, on the chosen backend.

    Parameters
    ----------
    root : path
        The ``cifar-10-batches-py`` directory (or its parent).
    num_training, num_validation, num_test, num_dev : int
        The training set is the first ``num_training`` training images, validation the next
        ``num_validation``, test the first ``num_test`` test images, and dev a random subset of
        ``num_dev`` training images (without replacement, drawn with ``seed``) for quick checks.
    subtract_mean : bool, keyword-only
        Subtract the mean training image from every split.
    bias_trick : bool, keyword-only
        Append a column of ones (:func:`append_bias`).
    dtype, xp, device : keyword-only
        float32 (default) or float64, and where the arrays go (None: NumPy on the CPU).

    Returns
    -------
    dict
        ``X_train`` (num_training, D), ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test``,
        ``X_dev``, ``y_dev``, with D = 3072 (+1 with the bias trick), rows flattened in (height,
        width, channel) order; and ``mean_image`` (3072,) when ``subtract_mean``.

    Examples
    --------
    >>> import os, pickle
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> os.makedirs("cifar-10-batches-py", exist_ok=True)  # a made-up CIFAR-10 of 4 images a batch
    >>> for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
    ...     batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    ...     with open(os.path.join("cifar-10-batches-py", name), "wb") as f:
    ...         pickle.dump(batch, f)
    >>> from xpml.classifiers.data_utils import get_CIFAR10_data
    >>> data = get_CIFAR10_data("cifar-10-batches-py", num_training=16, num_validation=4, num_test=4, num_dev=2)
    >>> {name: tuple(a.shape) for name, a in sorted(data.items())}  # rows carry the bias column
    {'X_dev': (2, 3073), 'X_test': (4, 3073), 'X_train': (16, 3073), 'X_val': (4, 3073),
     'mean_image': (3072,), 'y_dev': (2,), 'y_test': (4,), 'y_train': (16,), 'y_val': (4,)}
    >>> data["X_train"].dtype
    dtype('float32')
    """
    num_training, num_validation, num_test, num_dev = (
        check_positive(value, name=name, integer=True, allow_zero=name != "num_training")
        for name, value in (("num_training", num_training), ("num_validation", num_validation),
                            ("num_test", num_test), ("num_dev", num_dev)))
    bk = backend.as_backend(xp, device=device)
    xp, device = bk.xp, bk.device
    dt = backend.float_dtype(xp, device, dtype)
    Xtr, ytr, Xte, yte = _load_raw(root)
    if num_training + num_validation > Xtr.shape[0] or num_test > Xte.shape[0]:
        raise InputError(
            f"asked for {num_training} + {num_validation} training/validation and {num_test} test images; "
            f"the files hold {Xtr.shape[0]} and {Xte.shape[0]}"
        )
    if num_dev > num_training:
        raise InputError(f"num_dev ({num_dev}) cannot exceed num_training ({num_training})")
    hxp = backend.get_namespace(Xtr)
    host_dt = hxp.float32 if dt == xp.float32 else hxp.float64

    def put(images, labels):
        rows = hxp.reshape(hxp.astype(images, host_dt), (images.shape[0], _PIXELS))
        return bk.asarray(rows, dtype=dt), bk.asarray(labels)

    data = {}
    data["X_train"], data["y_train"] = put(Xtr[:num_training], ytr[:num_training])
    data["X_val"], data["y_val"] = put(Xtr[num_training:num_training + num_validation],
                                       ytr[num_training:num_training + num_validation])
    data["X_test"], data["y_test"] = put(Xte[:num_test], yte[:num_test])
    dev = backend.Generator(seed, xp=xp, device=device).choice(num_training, num_dev, replace=False)
    data["X_dev"] = xp.take(data["X_train"], dev, axis=0)
    data["y_dev"] = xp.take(data["y_train"], dev, axis=0)
    splits = ("train", "val", "test", "dev")
    if subtract_mean:
        data["mean_image"] = mean_image(data["X_train"])
        for s in splits:
            data[f"X_{s}"] = data[f"X_{s}"] - data["mean_image"]
    if bias_trick:
        for s in splits:
            data[f"X_{s}"] = _with_ones(data[f"X_{s}"])
    return data


def make_spiral(N: int, K: int, /, *, D: int = 2, noise: float = 0.2, seed: int = 0, dtype=None,
                xp=None, device=None):
    """The spiral data set of the course notes: ``K`` arms of ``N`` points each, not linearly separable.

    Parameters
    ----------
    N : int
        Points per class.
    K : int
        Classes (arms).
    D : int, keyword-only
        Dimensionality; the spiral is planar, so only 2 is accepted (it is a parameter because the
        course's code names it).
    noise : float, keyword-only
        Standard deviation of the angular jitter (0.2 in the notes).
    seed : int, keyword-only
        Seed of the jitter; the same seed gives the same points on every backend.
    dtype : keyword-only
        float32 (default) or float64.
    xp, device : keyword-only
        Where the arrays are created (None: NumPy on the CPU).

    Returns
    -------
    X : array (N*K, D)
        Points, class ``j`` in rows ``j*N .. (j+1)*N - 1``.
    y : array (N*K,)
        Labels 0..K-1, of the index dtype.

    Notes
    -----
    For class ``j`` and ``i = 0..N-1``: ``r_i = i / (N - 1)``, ``t_i = 4 j + 4 i / (N - 1) + noise * z_i``
    with ``z_i ~ N(0, 1)``, and the point is ``r_i * (sin t_i, cos t_i)``, as in
    ``r = np.linspace(0, 1, N); t = np.linspace(j*4, (j+1)*4, N) + np.random.randn(N)*0.2``.

    Examples
    --------
    >>> from xpml.classifiers.data_utils import make_spiral
    >>> X, y = make_spiral(5, 3, seed=0)
    >>> X.shape, X.dtype, y
    ((15, 2), dtype('float32'), array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]))
    """
    N = check_positive(N, name="N", integer=True)
    K = check_positive(K, name="K", integer=True)
    noise = check_positive(noise, name="noise", allow_zero=True)
    if D != 2:
        raise InputError(f"the spiral is planar: D must be 2, got {D!r}")
    bk = backend.as_backend(xp, device=device)
    xp, device = bk.xp, bk.device
    dt = backend.float_dtype(xp, device, dtype)
    r = xp.linspace(0.0, 1.0, N, dtype=dt, device=device)
    arm = xp.reshape(xp.arange(K, dtype=dt, device=device) * 4.0, (K, 1))
    jitter = backend.Generator(seed, xp=xp, device=device).normal((K, N), scale=noise, dtype=dt)
    t = arm + 4.0 * r + jitter  # (K, N): linspace(4j, 4j + 4, N) is 4j + 4 r
    X = xp.stack([r * xp.sin(t), r * xp.cos(t)], axis=-1)  # (K, N, 2)
    y = xp.arange(N * K, dtype=backend.index_dtype(xp, device), device=device) // N
    return xp.reshape(X, (N * K, D)), y
