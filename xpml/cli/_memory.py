"""Refusing up front a model that cannot fit in memory, with the number of bytes it would need.

A hidden layer of ten million units is accepted by every check of its value (a positive integer)
and then fails minutes later, or takes the machine down with it. Before any data is read, the
scripts estimate what a model needs (parameters, gradients, optimizer state, the activations of a
minibatch and of the largest evaluation split) and compare it with the memory of the device it
will run on: the host's RAM (or the container's limit) for CPU backends, the GPU's memory for
CUDA ones. The estimate is a lower bound of the real use, so what it refuses could not have run.
"""

from __future__ import annotations

import contextlib
import os

from ..nets.rules import state_size
from ._cli import UsageError

__all__ = ["check_fits", "device_memory", "format_bytes", "net_bytes"]

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
        if bk.name == "cupy":
            import cupy

            return int(cupy.cuda.Device(bk.device.id).mem_info[1]), f"{bk.device_name}'s memory"
        if bk.name == "torch" and getattr(bk.device, "type", None) == "cuda":
            import torch

            return int(torch.cuda.get_device_properties(bk.device).total_memory), f"{bk.device_name}'s memory"
    return _host_memory(), "this machine's memory"


def format_bytes(n: int) -> str:
    """``n`` bytes in a readable unit (powers of 1024)."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_fits(needed: int, bk, *, what: str, fix: str) -> None:
    """Raise :class:`UsageError` when ``needed`` bytes exceed the memory of ``bk``'s device.

    ``what`` says what needs it (``"--hidden-size 10000000"``), ``fix`` how to ask for less.
    """
    total, where = device_memory(bk)
    if total is not None and needed > total:
        raise UsageError(f"{what} needs at least {format_bytes(needed)} ({needed:,} bytes) to train, more than "
                         f"{where} ({format_bytes(total)}); {fix}")


def training_check(models, params: dict, dataset: str, args):
    """A ``check(bk)`` for :func:`_runs.start`: refuses the nets of this run that cannot fit on ``bk``."""
    from . import _datasets

    def check(bk):
        features, classes = _datasets.FEATURES_AND_CLASSES[dataset]
        _, num_val, num_test = _datasets.split_sizes(dataset, args.num_train, args.num_val, args.num_test)
        itemsize = 4 if args.dtype == "float32" else 8
        if "twolayer" in models:
            p = params["twolayer"]
            needed = net_bytes((features, p["hidden_size"], classes), batch_size=p["batch_size"],
                               eval_rows=max(num_val, num_test), itemsize=itemsize, update_rule=p["update_rule"])
            check_fits(needed, bk, what=f"the two-layer net with --hidden-size {p['hidden_size']} on {dataset}",
                       fix="choose a smaller --hidden-size")

    return check
