"""Checkpoints: any xpml model saved to and loaded from ``.npz``.

A checkpoint holds the model's class name, its constructor's hyperparameters (``config/``), its
parameters (``param/``) and other state such as batch-norm running statistics (``state/``), plus
whatever training hyperparameters, histories and extra arrays (fitted preprocessing) the caller
passes, and a format version, all as plain host arrays. It does not record where the model lived,
so a model saved from a GPU loads on a CPU and the other way round. Files are written atomically
and read with ``allow_pickle=False`` (:mod:`backend.io`), so a crash mid-write leaves the previous
file intact and loading never runs code.

Loading checks before it builds anything: the declared sizes must be within limits and every
array must have exactly the shape the declared hyperparameters imply, so a small hostile file
cannot make xpml allocate a huge net. The model is then built from the file's arrays, with no
random initialization.

A model class takes part by registering itself (:func:`register_model`) and providing
``_checkpoint_config()``, ``_checkpoint_state()``, ``_checkpoint_shapes(config)`` and
``_from_checkpoint(config, arrays, xp=, device=, dtype=)``. Each model registers in its own module
with the decorator; this module imports no model (the nets register when :mod:`xpml.nets` is
imported, the linear classifiers when :mod:`xpml.classifiers` is).
"""

from __future__ import annotations

import math
import os

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.io import CorruptFileError, load_npz, npz_members, save_npz_atomic

__all__ = ["FORMAT_VERSION", "CheckpointVersionError", "load_model", "register_model", "save_model"]

FORMAT_VERSION = 2
_NUMBER_TYPES = (bool, int, float)
# Declared lists (hidden layer sizes) longer than this are refused before they are looked at.
_MAX_LIST = 1024
# The most bytes a checkpoint's arrays may unpack to, unless the file itself is bigger: a file
# stored without compression, as save_model writes it, always loads (its arrays are no bigger
# than the file); one compressed elsewhere may inflate up to this, or to what load_model is told.
_MAX_INFLATED_BYTES = 256 * 2**20
_NO_LIMIT = 2**62
_MODELS: dict[str, type] = {}


class CheckpointVersionError(InputError):
    """The checkpoint was written by a newer xpml, in a format this one cannot read.

    Examples
    --------
    >>> from xpml.nets.checkpoint import CheckpointVersionError
    >>> issubclass(CheckpointVersionError, ValueError)
    True
    """


def register_model(cls, /):
    """Make instances of ``cls`` savable and loadable (used as a class decorator); returns ``cls``.

    Examples
    --------
    >>> from xpml.nets.checkpoint import register_model
    >>> class Plain:
    ...     pass
    >>> register_model(Plain)
    Traceback (most recent call last):
    ...
    TypeError: Plain lacks _checkpoint_config() and cannot be checkpointed
    """
    for method in ("_checkpoint_config", "_checkpoint_state", "_checkpoint_shapes", "_from_checkpoint"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"{cls.__name__} lacks {method}() and cannot be checkpointed")
    _MODELS[cls.__name__] = cls
    return cls


def check_savable(model, /) -> None:
    """Raise TypeError unless ``model`` is of a registered class."""
    name = type(model).__name__
    if _MODELS.get(name) is not type(model):
        raise InputTypeError(f"cannot checkpoint a {name}: save_model saves {', '.join(sorted(_MODELS))}")


def _encode(value):
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, _NUMBER_TYPES) for v in value):
            raise InputTypeError(f"a checkpoint stores lists of numbers only, got {value!r}")
        return list(value)
    if not isinstance(value, (*_NUMBER_TYPES, str)):
        raise InputTypeError(f"a checkpoint stores numbers, strings and lists of numbers, got {type(value).__name__}")
    return value


def _decode(host):
    if host.ndim == 0:
        value = host.item()
        return None if value == "None" else value
    if host.ndim == 1 and host.shape[0] <= _MAX_LIST:
        return host.tolist()
    raise InputError(f"a configuration value has shape {tuple(host.shape)}")


def save_model(path, model, /, *, hyperparams: dict | None = None, history: dict | None = None,
               arrays: dict | None = None, params: dict | None = None, state: dict | None = None) -> None:
    """Save ``model`` to ``path`` (``.npz``), with optional training ``hyperparams``, ``history`` and ``arrays``.

    Parameters
    ----------
    path : str or path-like
        Destination; replaced atomically.
    model
        A :class:`nets.TwoLayerNet`, :class:`nets.FullyConnectedNet`, ``LinearSVM`` or
        ``Softmax`` (trained), on any backend; its arrays are copied to the host.
    hyperparams : dict, keyword-only
        Names to numbers or strings (learning rate, reg, update rule, ...).
    history : dict, keyword-only
        Names to lists of numbers, e.g. what :meth:`TwoLayerNet.train` returns; nested dicts
        (``update_ratio_history``) are flattened to ``name/key``; None values are skipped.
    arrays : dict, keyword-only
        Names to arrays of any backend that the model needs besides its parameters, e.g. the
        fitted preprocessing (``{"mean": pre.mean_, "scale": pre.scale_}``).
    params, state : dict, keyword-only
        Parameters and state to save instead of the model's own (averaged or best parameters).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import TwoLayerNet
    >>> from xpml.nets.checkpoint import load_model, save_model
    >>> net = TwoLayerNet(2, 10, 3, std=0.1, seed=0)
    >>> save_model("net.npz", net, hyperparams={"learning_rate": 0.1})
    >>> model, info = load_model("net.npz")
    >>> type(model).__name__, info["hyperparams"]
    ('TwoLayerNet', {'learning_rate': 0.1})
    """
    check_savable(model)
    out = {"format_version": FORMAT_VERSION, "model": type(model).__name__}
    for name, value in model._checkpoint_config().items():
        out[f"config/{name}"] = _encode(value)
    for name, value in (model.params if params is None else params).items():
        out[f"param/{name}"] = backend.to_numpy(value)
    for name, value in (model._checkpoint_state() if state is None else state).items():
        out[f"state/{name}"] = backend.to_numpy(value)
    for name, value in (hyperparams or {}).items():
        if not isinstance(value, (*_NUMBER_TYPES, str)) and value is not None:
            raise InputTypeError(f"hyperparameter {name!r} must be a number or a string, got {type(value).__name__}")
        out[f"hyper/{name}"] = "None" if value is None else value
    for name, values in (history or {}).items():
        if values is None:
            continue
        items = values.items() if isinstance(values, dict) else [(None, values)]
        for sub, vals in items:
            key = f"history/{name}" if sub is None else f"history/{name}/{sub}"
            out[key] = backend.to_numpy(vals) if not isinstance(vals, (list, int, float)) else vals
    for name, value in (arrays or {}).items():
        out[f"array/{name}"] = backend.to_numpy(value)
    save_npz_atomic(path, out)


def _legacy_two_layer(data: dict) -> tuple[str, dict]:
    """Format 1 held a TwoLayerNet under ``net/`` keys."""
    config = {k: _decode(data[f"net/{k}"]) for k in ("input_size", "hidden_size", "output_size", "std", "init",
                                                    "dtype", "dropout", "seed")}
    config["seed"] = None if config["seed"] is not None and config["seed"] < 0 else config["seed"]
    return "TwoLayerNet", config


def load_model(path, /, *, xp=None, device=None, dtype=None, max_bytes: int | None = None):
    """Load a checkpoint written by :func:`save_model` onto any backend.

    Parameters
    ----------
    path : str or path-like
    xp, device : keyword-only
        Where the model is placed (None: NumPy on the CPU), whatever backend saved it.
    dtype : keyword-only
        Override the saved dtype (e.g. float32 on a device without float64).
    max_bytes : int, keyword-only
        The most bytes a compressed file's arrays may unpack to (default 256 MiB); a file stored
        without compression, as :func:`save_model` writes it, loads whatever its size.

    Returns
    -------
    model
        Of the class that was saved.
    info : dict
        ``hyperparams`` (dict of Python numbers / strings), ``history`` (dict of 1-D host arrays,
        nested dicts restored) and ``arrays`` (the extra arrays, placed with the model).

    Raises
    ------
    CorruptFileError
        The file is not an xpml checkpoint, is truncated or corrupt, declares sizes beyond the
        limits (before anything is unpacked), declares an invalid model, or holds arrays whose
        shapes do not match what it declares, or model arrays that are not finite (or a negative
        running variance); the message names the file and the array.
    CheckpointVersionError
        The file was written by a newer xpml.
    MemoryError
        The model does not fit in memory; the message names the file.

    Notes
    -----
    What loading allocates is bounded before anything is unpacked, from the members' headers: no
    more than the file's size or ``max_bytes``, whichever is larger, so a small compressed file
    cannot make xpml allocate gigabytes. Histories stay arrays (as lists of Python floats they
    would take four times the memory).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import TwoLayerNet
    >>> from xpml.nets.checkpoint import load_model, save_model
    >>> net = TwoLayerNet(2, 10, 3, std=0.1, seed=0)
    >>> save_model("net.npz", net)
    >>> model, info = load_model("net.npz", xp="array_api_strict")  # saved from NumPy, loaded elsewhere
    >>> sorted(model.params), model.params["W1"].shape
    (['W1', 'W2', 'b1', 'b2'], (2, 10))
    >>> from xpml import backend
    >>> X = np.array([[0.5, -1.0]])
    >>> scores = model.loss(backend.to_backend(X, "array_api_strict"))
    >>> bool(np.array_equal(backend.to_numpy(scores), net.loss(X)))  # the same net, bit for bit
    True
    """
    path = os.fspath(path)
    # The caller's own mistakes (a wrong dtype or device) are reported as theirs, before the file is read.
    bk = backend.as_backend(xp, device=device)
    if dtype is not None:
        backend.float_dtype(bk.xp, bk.device, dtype)
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
        raise InputError(f"max_bytes must be a number of bytes >= 0, got {max_bytes!r}")
    try:
        return _load(path, bk, dtype, _MAX_INFLATED_BYTES if max_bytes is None else max_bytes)
    except MemoryError as exc:
        raise MemoryError(f"{path}: not enough memory to load this checkpoint ({exc or 'no detail given'}); "
                          "free memory or load it on a device with more") from exc


def _check_declared_sizes(path: str, max_bytes: int) -> None:
    """Refuse, from the members' headers alone, a file whose arrays would unpack beyond the budget."""
    size = os.path.getsize(path)
    budget = max(max_bytes, size)
    # Headers only, nothing inflated; the budget is checked here, where the message can name the
    # largest member and this function's max_bytes.
    members = npz_members(path, max_bytes=_NO_LIMIT)
    sizes = {name: math.prod(shape) * dtype.itemsize for name, (shape, dtype) in members.items()}
    total = sum(sizes.values())
    if total > budget:
        largest = max(sizes, key=sizes.get)
        raise CorruptFileError(
            f"{path}: its arrays would unpack to {total} bytes (the largest, {largest}, {sizes[largest]} bytes) "
            f"from a file of {size} bytes, more than the {budget} allowed; refused before unpacking (pass "
            "max_bytes=... to load_model if you trust the file)")


def _check_model_array(path: str, key: str, host, shape) -> None:
    if tuple(host.shape) != tuple(shape):
        raise CorruptFileError(f"{path}: {key} has shape {tuple(host.shape)}, expected {tuple(shape)}")
    if host.dtype.kind != "f":
        raise CorruptFileError(f"{path}: {key} has dtype {host.dtype}, expected floating point")
    hxp = backend.get_namespace(host)
    if not bool(hxp.all(hxp.isfinite(host))):
        raise CorruptFileError(f"{path}: {key} holds NaN or infinite values; the model saved had diverged or "
                               "the file was changed: load an earlier checkpoint")
    if key.endswith("running_var") and bool(hxp.any(host < 0)):
        raise CorruptFileError(f"{path}: {key} holds negative values, which a variance cannot have; the file was "
                               "changed or corrupted")


def _load(path: str, bk, dtype, max_bytes: int):
    _check_declared_sizes(path, max_bytes)
    data = load_npz(path, max_bytes=max_bytes)
    try:
        version = int(data["format_version"]) if "format_version" in data else None
    except (TypeError, ValueError):
        version = None
    if version is None or version < 1:
        raise CorruptFileError(f"{path}: not an xpml checkpoint (no format version)")
    if version > FORMAT_VERSION:
        raise CheckpointVersionError(
            f"{path} was written by a newer xpml (checkpoint format {version}; this xpml reads formats up to "
            f"{FORMAT_VERSION}): upgrade xpml to load it")
    try:
        if version == 1:
            name, config = _legacy_two_layer(data)
        else:
            name = str(data["model"].item())
            config = {k.partition("/")[2]: _decode(v) for k, v in data.items() if k.startswith("config/")}
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"{path}: the checkpoint's model description is missing or malformed ({exc})") from exc
    cls = _MODELS.get(name)
    if cls is None:
        hint = " (import xpml.classifiers first: it registers the linear models)" if name in ("LinearSVM",
                                                                                             "Softmax") else ""
        raise CorruptFileError(f"{path}: holds a {name!r}, which this xpml cannot load{hint}")
    try:
        # Sizes and shapes first, from the declared configuration alone: nothing is allocated yet.
        expected = cls._checkpoint_shapes(config)
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"{path}: the checkpoint declares an invalid {name} ({exc})") from exc
    for key, shape in expected.items():
        if key not in data:
            raise CorruptFileError(f"{path}: checkpoint lacks {key}")
        _check_model_array(path, key, data[key], shape)
    try:
        # The placement was checked above: what fails here is the file's configuration.
        model = cls._from_checkpoint(config, {k: data[k] for k in expected}, xp=bk, dtype=dtype)
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"{path}: the checkpoint declares an invalid {name} ({exc})") from exc
    hyper, history, extra = {}, {}, {}
    for key, value in data.items():
        kind, _, field = key.partition("/")
        if kind == "array":
            extra[field] = model.backend.asarray(value)
        elif kind == "hyper":
            if value.ndim != 0:
                raise CorruptFileError(f"{path}: hyperparameter {key} has shape {tuple(value.shape)}; a "
                                       "hyperparameter is one number or string")
            v = value.item()
            hyper[field] = None if v == "None" else v
        elif kind == "history":
            if value.ndim > 1:
                raise CorruptFileError(f"{path}: {key} has shape {tuple(value.shape)}; a history is 1-D")
            # An array as stored: a list of Python floats would take four times its memory.
            vals = value if value.ndim else value.item()
            top, _, sub = field.partition("/")
            if sub:
                history.setdefault(top, {})[sub] = vals
            else:
                history[top] = vals
    return model, {"hyperparams": hyper, "history": history, "arrays": extra}

