"""Checkpoints: a trained :class:`nets.TwoLayerNet` saved to and loaded from ``.npz``.

A checkpoint holds the parameters, the constructor's hyperparameters, any training
hyperparameters, histories and extra arrays (such as fitted preprocessing) the caller passes, and a
format version, all as plain host arrays:
it does not record where the net lived, so a net saved from a GPU loads on a CPU and the other way
round. Files are written atomically and read with ``allow_pickle=False``
(:mod:`backend.io`), so a crash mid-write leaves the previous file intact and loading never runs
code.
"""

from __future__ import annotations

from .. import backend
from ..backend.io import CorruptFileError, load_npz, save_npz_atomic
from .two_layer_net import TwoLayerNet

__all__ = ["FORMAT_VERSION", "load_model", "save_model"]

FORMAT_VERSION = 1
_PARAMS = ("W1", "b1", "W2", "b2")
_NUMBER_TYPES = (bool, int, float)


def save_model(path, net: TwoLayerNet, /, *, hyperparams: dict | None = None, history: dict | None = None,
               arrays: dict | None = None) -> None:
    """Save ``net`` to ``path`` (``.npz``), with optional training ``hyperparams``, ``history`` and ``arrays``.

    Parameters
    ----------
    path : str or path-like
        Destination; replaced atomically.
    net : TwoLayerNet
        On any backend; its parameters are copied to the host.
    hyperparams : dict, keyword-only
        Names to numbers or strings (learning rate, reg, update rule, ...).
    history : dict, keyword-only
        Names to lists of numbers, e.g. what :meth:`TwoLayerNet.train` returns; nested dicts
        (``update_ratio_history``) are flattened to ``name/key``.
    arrays : dict, keyword-only
        Names to arrays of any backend that the model needs besides its parameters, e.g. the
        fitted preprocessing (``{"mean": pre.mean_, "scale": pre.scale_}``).
    """
    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"save_model saves a TwoLayerNet, got {type(net).__name__}")
    out = {"format_version": FORMAT_VERSION}
    for k in _PARAMS:
        out[f"param/{k}"] = backend.to_numpy(net.params[k])
    out |= {
        "net/input_size": net.input_size, "net/hidden_size": net.hidden_size, "net/output_size": net.output_size,
        "net/std": net.std, "net/init": net.init, "net/dtype": net.dtype_name, "net/dropout": net.dropout,
        "net/seed": -1 if net.seed is None else net.seed,
    }
    for name, value in (hyperparams or {}).items():
        if not isinstance(value, (*_NUMBER_TYPES, str)) and value is not None:
            raise TypeError(f"hyperparameter {name!r} must be a number or a string, got {type(value).__name__}")
        out[f"hyper/{name}"] = "None" if value is None else value
    for name, values in (history or {}).items():
        items = values.items() if isinstance(values, dict) else [(None, values)]
        for sub, vals in items:
            key = f"history/{name}" if sub is None else f"history/{name}/{sub}"
            out[key] = backend.to_numpy(vals) if not isinstance(vals, list) else vals
    for name, value in (arrays or {}).items():
        out[f"array/{name}"] = backend.to_numpy(value)
    save_npz_atomic(path, out)


def load_model(path, /, *, xp=None, device=None, dtype=None):
    """Load a checkpoint written by :func:`save_model` onto any backend.

    Parameters
    ----------
    path : str or path-like
    xp, device : keyword-only
        Where the net is placed (None: NumPy on the CPU), whatever backend saved it.
    dtype : keyword-only
        Override the saved dtype (e.g. float32 on a device without float64).

    Returns
    -------
    net : TwoLayerNet
    info : dict
        ``hyperparams`` (dict of Python numbers / strings), ``history`` (dict of float lists,
        nested dicts restored) and ``arrays`` (the extra arrays, placed with the net).

    Raises
    ------
    CorruptFileError
        The file is not a checkpoint of a known version, or is truncated or corrupt.
    """
    data = load_npz(path)
    version = int(data["format_version"]) if "format_version" in data else None
    if version != FORMAT_VERSION:
        raise CorruptFileError(f"{path}: not an xpml checkpoint of format {FORMAT_VERSION} (found {version!r})")
    try:
        seed = int(data["net/seed"])
        net = TwoLayerNet(
            int(data["net/input_size"]), int(data["net/hidden_size"]), int(data["net/output_size"]),
            float(data["net/std"]), init=str(data["net/init"]), dropout=float(data["net/dropout"]),
            dtype=str(data["net/dtype"]) if dtype is None else dtype, seed=None if seed < 0 else seed,
            xp=xp, device=device,
        )
        params = {k: data[f"param/{k}"] for k in _PARAMS}
    except KeyError as exc:
        raise CorruptFileError(f"{path}: checkpoint lacks {exc}") from exc
    for k, host in params.items():
        expected = tuple(net.params[k].shape)
        if tuple(host.shape) != expected:
            raise CorruptFileError(f"{path}: {k} has shape {tuple(host.shape)}, expected {expected}")
        net.params[k] = net.backend.asarray(host, dtype=net.dtype)
    hyper, history, extra = {}, {}, {}
    for key, value in data.items():
        kind, _, name = key.partition("/")
        if kind == "array":
            extra[name] = net.backend.asarray(value)
        elif kind == "hyper":
            v = value.item()
            hyper[name] = None if v == "None" else v
        elif kind == "history":
            top, _, sub = name.partition("/")
            vals = [float(x) for x in value.tolist()]
            if sub:
                history.setdefault(top, {})[sub] = vals
            else:
                history[top] = vals
    return net, {"hyperparams": hyper, "history": history, "arrays": extra}
