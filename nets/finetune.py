"""Transfer learning: start from a trained net, give it a new head, train the rest frozen or slowly.

The notes' recipe (the ConvNet chapter's last section): take a net trained on one task, replace its
last layer (the classifier, the *head*) by a fresh one for the new classes, and train on the new data
with the earlier layers frozen (:func:`nets.rules.freeze`) or with a smaller learning rate
(:func:`nets.rules.scale_learning_rate`)::

    base, _ = nets.load_model("cifar5.npz", xp=xp)
    net = nets.replace_head(base, 5, seed=0)
    Solver(net, data, transforms=[rules.freeze(nets.finetune.body_names(net))]).train()

A net's head is its last ``W{i}`` / ``b{i}`` pair. :func:`replace_head` works on any model that
:func:`nets.save_model` can save (it rebuilds the net from its checkpoint description with the new
number of classes), and so on every backend.
"""

from __future__ import annotations

import re

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ._model import as_int
from .init import INIT_SCHEMES, init_weights

__all__ = ["body_names", "head_names", "load_pretrained", "replace_head"]

_LAYER = re.compile(r"^W(\d+)$")
_CLASS_KEYS = ("num_classes", "output_size")


def head_names(params, /) -> tuple[str, str]:
    """``(W, b)``: the names of the last affine layer's parameters (the largest i with ``W{i}`` and ``b{i}``)."""
    layers = [int(m.group(1)) for m in map(_LAYER.match, params) if m and f"b{m.group(1)}" in params]
    if not layers:
        raise InputError("the model has no layers named W1/b1, W2/b2, ...: its head (last W/b pair) cannot be "
                         f"found; its parameters are: {', '.join(params) or 'none'}")
    i = max(layers)
    return f"W{i}", f"b{i}"


def body_names(model, /) -> list[str]:
    """Every parameter name of ``model`` but its head's: what fine-tuning freezes."""
    head = head_names(model.params)
    return [k for k in model.params if k not in head]


def replace_head(model, num_classes: int, /, *, seed=None, init: str | None = None):
    """A copy of ``model`` whose last layer is fresh and has ``num_classes`` outputs.

    Parameters
    ----------
    model
        A net :func:`nets.save_model` can save (:class:`nets.FullyConnectedNet`,
        :class:`nets.TwoLayerNet`, ...), on any backend.
    num_classes : int
        C of the new head.
    seed : int or None, keyword-only
        Seeds the new head's weights and the new net's generator.
    init : {"std", "xavier", "he"} or None, keyword-only
        The head's initialization (None: the net's own scheme, else ``"std"``), with the net's
        ``weight_scale``.

    Returns
    -------
    model
        A new net of the same class on the same backend: copies of every other array (the
        original is not changed by training the copy) and running statistics; the head drawn
        anew, its bias zero.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import nets
    >>> net = nets.FullyConnectedNet([8], input_dim=4, num_classes=3, seed=0)
    >>> new = nets.replace_head(net, 5, seed=1)
    >>> new.params["W2"].shape, bool(np.array_equal(new.params["W1"], net.params["W1"]))
    ((8, 5), True)
    """
    C = as_int(num_classes, name="num_classes")
    cls = type(model)
    if not all(hasattr(cls, m) for m in ("_checkpoint_config", "_checkpoint_shapes", "_from_checkpoint")):
        raise InputTypeError(f"replace_head needs a net that nets.save_model can save; {cls.__name__} cannot be "
                        "rebuilt with another number of classes")
    W, b = head_names(model.params)
    config = dict(model._checkpoint_config())
    # The course names the class count num_classes (FullyConnectedNet) or output_size (TwoLayerNet).
    key = next((k for k in _CLASS_KEYS if k in config), None)
    if key is None:
        raise InputTypeError(f"{cls.__name__} does not describe its number of classes "
                             f"({' or '.join(_CLASS_KEYS)}); its head cannot be replaced")
    config[key] = C
    if seed is not None:
        config["seed"] = int(seed)
    scheme = init if init is not None else config.get("init", "std")
    if scheme not in INIT_SCHEMES:
        raise InputError(f"unknown init {scheme!r}; choose one of: {', '.join(INIT_SCHEMES)}")
    shapes = cls._checkpoint_shapes(config)
    xp = model.backend.xp
    arrays = {}
    for k, v in model.params.items():
        want = shapes.get(f"param/{k}")
        if k in (W, b):
            continue
        if want is None or tuple(want) != tuple(v.shape):
            raise InputError(f"the layers of {cls.__name__} do not fit a head of {C} classes: parameter {k!r} has "
                             f"shape {tuple(v.shape)}, the new net wants {want}")
        arrays[f"param/{k}"] = xp.asarray(v, copy=True)
    state = model._checkpoint_state() if hasattr(model, "_checkpoint_state") else {}
    for k, v in state.items():
        arrays[f"state/{k}"] = xp.asarray(v, copy=True)
    dtype = model.params[W].dtype
    rng = backend.Generator(seed, xp=model.backend)
    arrays[f"param/{W}"] = init_weights(rng, tuple(shapes[f"param/{W}"]), scheme=scheme,
                                        std=config.get("weight_scale", config.get("std", 1e-2)), dtype=dtype)
    arrays[f"param/{b}"] = xp.zeros(tuple(shapes[f"param/{b}"]), dtype=dtype, device=model.backend.device)
    return cls._from_checkpoint(config, arrays, xp=xp, device=model.backend.device)


def load_pretrained(path, /, *, num_classes=None, input_dim=None, new_head: bool = False, seed=None, init=None,
                    xp=None, device=None, dtype=None):
    """Load a checkpoint to fine-tune: its head replaced when ``num_classes`` differs from the
    checkpoint's (or when ``new_head``).

    Parameters
    ----------
    path : str or path-like
        A file of :func:`nets.save_model`.
    num_classes : int or None, keyword-only
        The classes of the new task (None: the checkpoint's).
    input_dim : int or None, keyword-only
        D of the new data, checked against the checkpoint's first layer (a clear error when the
        checkpoint's layers do not fit the data).
    new_head : bool; seed; init, keyword-only
        Replace the head even when the classes agree; see :func:`replace_head`.
    xp, device, dtype : keyword-only
        As :func:`nets.load_model`.

    Returns
    -------
    model

    Examples
    --------
    >>> from xpml import nets
    >>> nets.save_model("net.npz", nets.FullyConnectedNet([8], input_dim=4, num_classes=3, seed=0))
    >>> net = nets.load_pretrained("net.npz", num_classes=5, input_dim=4, seed=1)
    >>> type(net).__name__, net.params["W2"].shape
    ('FullyConnectedNet', (8, 5))
    >>> nets.load_pretrained("net.npz", input_dim=7)
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: net.npz: the checkpoint's first layer takes 4 inputs but the data has 7 features ...
    """
    from .checkpoint import load_model

    model, _ = load_model(path, xp=xp, device=device, dtype=dtype)
    if input_dim is not None:
        first = next((model.params[k] for k in ("W1",) if k in model.params), None)
        D = as_int(input_dim, name="input_dim")
        if first is not None and first.shape[0] != D:
            raise InputError(f"{path}: the checkpoint's first layer takes {first.shape[0]} inputs but the data has "
                             f"{D} features per example; fine-tune it on data of the kind it was trained on")
    C = model.num_classes if num_classes is None else as_int(num_classes, name="num_classes")
    if new_head or C != model.num_classes:
        model = replace_head(model, C, seed=seed, init=init)
    return model
