"""Refusing up front a model that cannot fit in memory, with the number of bytes it would need.

A hidden layer of ten million units is accepted by every check of its value (a positive integer)
and then fails minutes later, or takes the machine down with it. Before any data is read, the
scripts estimate what every model of the run needs (parameters, gradients, optimizer state, the
minibatch drawn and its activations, the largest evaluation split, the picture of a net's
first-layer weights, the data itself) and compare it with the memory of the device it
will run on: the host's RAM (or the container's limit) for CPU backends, the GPU's memory for
CUDA ones. The estimate is a lower bound of the real use, so what it refuses could not have run.
"""

from __future__ import annotations

import contextlib
import math
import os

from ..nets.rules import state_size
from ._cli import UsageError

__all__ = ["batch_bytes", "check_fits", "data_bytes", "device_memory", "format_bytes", "linear_bytes", "net_bytes",
           "picture_bytes", "training_check"]

# Copies of the parameters alive during a step: the parameters, their gradients, the gradient of
# the regularization and the update's temporary; plus the rule's state (nets.rules.state_size).
_STEP_COPIES = 4


def net_bytes(layer_sizes, *, batch_size: int, eval_rows: int, itemsize: int, update_rule: str = "sgd") -> int:
    """Bytes a fully connected net with ``layer_sizes`` (D, H1, ..., C) needs at least to train and evaluate.

    Notes
    -----
    With P parameters (weights and biases), a minibatch of B rows and R rows evaluated at once:
    ``itemsize * ((4 + s) * P + 4 * B * W + 2 * R * W)`` where ``s`` is the update rule's state per
    parameter (Adam keeps 2) and W the sum of the hidden widths (pre-activation, activation, mask
    and gradient per minibatch row; pre-activation and activation per evaluated row).
    """
    sizes = [int(n) for n in layer_sizes]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    hidden = sum(sizes[1:-1]) + sizes[-1]
    copies = _STEP_COPIES + state_size(update_rule)
    return itemsize * (copies * params + 4 * batch_size * hidden + 2 * eval_rows * hidden)


def _host_memory() -> int | None:
    total = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    # A container's memory limit (cgroup v2, then v1) is what the process can really have.
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            with open(limit_file, encoding="ascii") as f:
                limit = int(f.read().strip())
            if limit > 0 and (total is None or limit < total):
                total = limit
    return total


def device_memory(bk) -> tuple[int | None, str]:
    """``(bytes, description)`` of the memory ``bk``'s device has; bytes is None when unknown."""
    with contextlib.suppress(Exception):  # a probe must never be what fails a run
        total = bk.adapter.memory(bk.device)  # None: the device uses the host's memory
        if total is not None:
            return int(total), f"{bk.device_name}'s memory"
    return _host_memory(), "this machine's memory"


def format_bytes(n: int) -> str:
    """``n`` bytes in a readable unit (powers of 1024)."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_fits(needed: int, bk, *, what: str, fix: str, parts: dict | None = None) -> None:
    """Raise :class:`UsageError` when ``needed`` bytes exceed the memory of ``bk``'s device.

    ``what`` says what needs it (``"--hidden-size 10000000"``), ``fix`` how to ask for less,
    ``parts`` (name -> bytes) where the bytes go.
    """
    total, where = device_memory(bk)
    if total is not None and needed > total:
        detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in sorted((parts or {}).items(), key=lambda kv: -kv[1]))
        detail = f": {detail}" if detail else ""
        raise UsageError(f"{what} needs at least {format_bytes(needed)} ({needed:,} bytes{detail}) to train, more "
                         f"than {where} ({format_bytes(total)}); {fix}")


def linear_bytes(num_features: int, num_classes: int, *, batch_size: int, eval_rows: int, itemsize: int,
                 update_rule: str = "sgd") -> int:
    """Bytes a linear SVM or softmax on ``num_features`` (D) features needs at least to train and evaluate.

    Notes
    -----
    The bias trick makes W (D + 1, C): ``itemsize * ((4 + s) * (D + 1) * C + B * (D + 1) + 3 * B * C
    + R * C) + 8 * B``: the parameter copies of a step (as :func:`net_bytes`), the minibatch drawn
    (B rows and their int64 indices), its scores, margins and their gradient, and the scores of R
    evaluated rows.
    """
    params = (int(num_features) + 1) * int(num_classes)
    copies = _STEP_COPIES + state_size(update_rule)
    b, c = int(batch_size), int(num_classes)
    return itemsize * (copies * params + b * (int(num_features) + 1) + 3 * b * c + int(eval_rows) * c) + 8 * b


def batch_bytes(num_features: int, *, batch_size: int, itemsize: int) -> int:
    """Bytes of one minibatch drawn for a net: ``B`` rows of ``D`` features and their int64 indices."""
    return int(batch_size) * (int(num_features) * itemsize + 8)


def picture_bytes(hidden: int, image_shape, *, itemsize: int) -> int:
    """Bytes the picture of a net's first-layer weights needs at least: ``hidden`` images of ``image_shape``.

    Notes
    -----
    :func:`xpml.nets.diagnostics.first_layer_images` tiles G x G images (G = ceil(sqrt(H))), each
    padded by a pixel, into P = G^2 (h + 1)(w + 1) c values: scaled, padded and tiled on the device
    (three arrays of P), then copied to the host and divided into float64 for drawing (two more of
    8 bytes each): ``P * (3 * itemsize + 16)``.
    """
    h, w, c = image_shape
    g = math.ceil(math.sqrt(int(hidden)))
    return g * g * (h + 1) * (w + 1) * c * (3 * itemsize + 16)


def convnet_bytes(architecture: str, image_shape, *, batch_size: int, itemsize: int, update_rule: str = "sgd") -> int:
    """Bytes a ConvNet's training step holds: its parameters with their gradients, the update's
    copies and the rule's state, every layer's activations for the minibatch kept for the backward
    pass and their gradients (twice the forward pass, the notes' rule), and the im2col columns,
    which the layers chunk to their own budget."""
    from ..nets.conv_layers import COLUMN_BUDGET
    from ..nets.convnet import summarize

    h, w, c = image_shape
    summary = summarize(architecture, (c, h, w))
    params = summary.total_params * (_STEP_COPIES + state_size(update_rule))
    return itemsize * (params + 2 * summary.total_activations * int(batch_size)) + COLUMN_BUDGET


def data_bytes(rows: int, num_features: int, *, itemsize: int) -> int:
    """Bytes of the dataset, ``rows`` of ``num_features``, on the host and on the device (a copy each)."""
    return 2 * int(rows) * int(num_features) * itemsize


def training_check(models, params: dict, dataset: str, args):
    """A ``check(bk)`` for :func:`_runs.start`: refuses, before any data is read, a run whose models
    cannot fit on ``bk``: every model's parameters, update state, minibatch and evaluation, the
    first-layer picture of the nets, and the data, for every batch size."""
    from . import _datasets
    from ._models import hidden_dims

    def check(bk):
        features, classes = _datasets.FEATURES_AND_CLASSES[dataset]
        image_shape = _datasets.IMAGE_SHAPES.get(dataset)
        num_train, num_val, num_test = _datasets.split_sizes(dataset, args.num_train, args.num_val, args.num_test)
        rows = _datasets.DATASET_ROWS[dataset] if num_train is None else num_train + num_val + num_test
        eval_rows = max(num_val, num_test)
        itemsize = 4 if args.dtype == "float32" else 8
        data = data_bytes(rows, features, itemsize=itemsize)
        for model in models:
            p = params[model]
            parts = {}
            if model == "knn":
                from ..classifiers import KNearestNeighbor

                what, fix = "kNN", "use fewer examples (--num-train)"
                parts["distances"] = KNearestNeighbor().memory_budget
            elif model in ("svm", "softmax"):
                what = f"the {model} with --batch-size {p['batch_size']} on {dataset}"
                fix = "choose a smaller --batch-size"
                parts["training"] = linear_bytes(features, classes, batch_size=p["batch_size"], eval_rows=eval_rows,
                                                 itemsize=itemsize, update_rule=p["update_rule"])
                parts["data with a bias column"] = data // 2
            elif model == "convnet":
                if image_shape is None:
                    continue  # not images: the run refuses it with its own error
                what = f"the convnet {p['architecture']!r} with --batch-size {p['batch_size']} on {dataset}"
                fix = "choose a smaller --batch-size or a smaller --architecture"
                parts["training"] = convnet_bytes(p["architecture"], image_shape, batch_size=p["batch_size"],
                                                  itemsize=itemsize, update_rule=p["update_rule"])
                parts["minibatch"] = batch_bytes(features, batch_size=p["batch_size"], itemsize=itemsize)
            else:
                widths = [p["hidden_size"]] if model == "twolayer" else hidden_dims(p["hidden_dims"])
                flag = (f"--hidden-size {p['hidden_size']}" if model == "twolayer"
                        else f"--hidden-dims {p['hidden_dims']}")
                title = "two-layer net" if model == "twolayer" else "fully connected net"
                what = f"the {title} with {flag} and --batch-size {p['batch_size']} on {dataset}"
                fix = f"choose a smaller {flag.split()[0]} or --batch-size"
                parts["training"] = (net_bytes((features, *widths, classes), batch_size=p["batch_size"],
                                               eval_rows=eval_rows, itemsize=itemsize, update_rule=p["update_rule"])
                                     + batch_bytes(features, batch_size=p["batch_size"], itemsize=itemsize))
                if image_shape is not None and widths:
                    parts["first-layer picture"] = picture_bytes(widths[0], image_shape, itemsize=itemsize)
            parts["data"] = data
            check_fits(sum(parts.values()), bk, what=what, fix=fix, parts=parts)

    return check
