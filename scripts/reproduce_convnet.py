"""Reproduce the convolutional net result on CIFAR-10: a ConvNet of the notes' pattern, its test accuracy
and its first-layer filters.

A :class:`nets.ConvNet` written in the notes' VGG notation (``ARCH`` below; override keys with
``--set``), with batch normalization, trained by the Solver with Adam, an exponentially decaying
learning rate, on-device flips and shifts of the minibatches and a running average (EMA) of the
parameters, on the course's split (49,000 training, 1,000 validation images), then measured on all
10,000 test images. Prints one JSON line per epoch (to follow a long run: ``tail -f``) and a final
line with the validation and test accuracy, the time and the machine; keeps a checkpoint per epoch
in ``--runs``; draws the first layer's filters into ``--out``/convnet_filters.png.

Usage::

    python scripts/reproduce_convnet.py --data-dir /tmp/cifar10 --backend torch:cpu
    python scripts/reproduce_convnet.py --data-dir /tmp/cifar10 --backend torch:cpu \\
        --set num_epochs=2 "architecture=\\"CONV3-16 BN POOL2 FC-10\\""

The images are standardized per channel with the training statistics (so a flipped or shifted
image stays meaningful) and given to the net as (N, C, H, W). This script is an edge of the
program: it may use NumPy and matplotlib directly.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import _reproduce
import numpy as np
from _reproduce import accuracy
from reproduce_fc import _override

from xpml import backend, nets
from xpml.classifiers.data_utils import get_CIFAR10_data
from xpml.cli import _cli

# Chosen by measured time per iteration on a shared 2-core CPU: the smallest VGG-style net of the
# notes' pattern that the course's experience says reaches 0.80 with augmentation in ~15 epochs.
ARCH = dict(architecture="CONV3-32 BN CONV3-32 BN POOL2 CONV3-64 BN CONV3-64 BN POOL2 "
                         "CONV3-128 BN CONV3-128 BN POOL2 FC-10",
            init="he", reg=5e-4, update_rule="adam", learning_rate=2e-3, decay_k=0.2, batch_size=128,
            num_epochs=15, shift=4, flip=True, ema_decay=0.999, num_train=49000, num_val=1000,
            num_test=10000, seed=0)


def load(args, bk, *, num_train: int = 49000, num_val: int = 1000, num_test: int = 10000):
    """The course's split as (N, 3, 32, 32) float32 arrays on ``bk``, standardized per channel."""
    data = get_CIFAR10_data(args.data_dir, num_training=num_train, num_validation=num_val, num_test=num_test, num_dev=0,
                            subtract_mean=False, bias_trick=False, dtype="float32")
    # Rows come in (height, width, channel) order; a ConvNet takes (N, C, H, W).
    images = {s: np.ascontiguousarray(data[f"X_{s}"].reshape(-1, 32, 32, 3).transpose(0, 3, 1, 2))
              for s in ("train", "val", "test")}
    mean = images["train"].mean(axis=(0, 2, 3), keepdims=True)
    std = images["train"].std(axis=(0, 2, 3), keepdims=True)
    out = {}
    for s, X in images.items():
        out[f"X_{s}"] = bk.asarray(((X - mean) / std).astype("float32"))
        out[f"y_{s}"] = bk.asarray(data[f"y_{s}"])
    return out, {"mean": mean.reshape(3), "std": std.reshape(3)}


def filter_picture(model, path: str, title: str) -> None:
    """The first CONV layer's filters (F, C, HH, WW) as a grid of little color images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xp = model.backend.xp
    W1 = model.params["W1"]
    F, C, HH, WW = W1.shape
    # first_layer_images takes one column per unit laid out (height, width, channel).
    cols = xp.reshape(xp.permute_dims(W1, (0, 2, 3, 1)), (F, HH * WW * C)).T
    grid = backend.to_numpy(nets.diagnostics.first_layer_images(cols, image_shape=(HH, WW, C)))
    fig, ax = plt.subplots(figsize=(5, 5.4))
    ax.imshow(grid.astype("uint8") if C == 3 else grid[..., 0], cmap=None if C == 3 else "gray",
              interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine(bk) -> str:
    return f"{bk.label} on {bk.device_name}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _main(argv):
    p = _reproduce.parser(__doc__, prog="reproduce_convnet.py")
    p.add_argument("--out", default="docs", help="where the filter picture goes (default docs)")
    p.add_argument("--runs", default="runs", help="where checkpoints go (default runs, not committed)")
    p.add_argument("--set", nargs="*", metavar="KEY=JSON", help="override a key of ARCH, e.g. num_epochs=5")
    args = _reproduce.parse(p, argv)
    cfg = _override(ARCH, args.set)
    bk = _cli.choose_backend(args.backend)
    model = nets.ConvNet(cfg["architecture"], (3, 32, 32), reg=cfg["reg"], init=cfg["init"], dtype="float32",
                         seed=cfg["seed"], xp=bk)
    summary = model.summary()
    print(f"# convnet on {machine(bk)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"{cfg['architecture']} ({summary.total_params:,} parameters, "
          f"{summary.total_mult_adds:,} multiply-adds per image)", flush=True)
    data, fitted = load(args, bk, num_train=cfg["num_train"], num_val=cfg["num_val"],
                        num_test=cfg["num_test"])
    augment = []
    if cfg["shift"]:
        augment.append(nets.augment.RandomShift((32, 32, 3), max_shift=cfg["shift"], channels_last=False))
    if cfg["flip"]:
        augment.append(nets.augment.RandomFlip((32, 32, 3), channels_last=False))
    os.makedirs(args.runs, exist_ok=True)
    ckpt = os.path.join(args.runs, "convnet")
    t0 = time.perf_counter()

    def report(solver):
        print(json.dumps({"epoch": solver.epoch, "loss": round(float(np.mean(solver.loss_history[-50:])), 4),
                          "train_acc": solver.train_acc_history[-1], "val_acc": solver.val_acc_history[-1],
                          "lr": solver.learning_rate_history[-1] if solver.learning_rate_history else None,
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)

    def progress(it, loss):
        if (it + 1) % 50 == 0:  # a long epoch shows signs of life; reading the loss every 50 steps is cheap
            print(json.dumps({"iteration": it + 1, "loss": round(float(backend.to_numpy(loss)), 4),
                              "seconds": round(time.perf_counter() - t0, 1)}), flush=True)

    solver = nets.Solver(model, {k: data[k] for k in ("X_train", "y_train", "X_val", "y_val")},
                         update_rule=cfg["update_rule"], optim_config={"learning_rate": cfg["learning_rate"]},
                         schedule=nets.schedules.ExponentialDecay(cfg["learning_rate"], cfg["decay_k"]),
                         batch_size=cfg["batch_size"], num_epochs=cfg["num_epochs"],
                         augment=nets.augment.Compose(augment) if augment else None,
                         transforms=[nets.rules.averaging(cfg["ema_decay"])] if cfg["ema_decay"] else [],
                         checkpoint_name=ckpt, epoch_callback=report,
                         callback=progress, check_ends=False, verbose=False, seed=cfg["seed"])
    solver.train()
    secs = time.perf_counter() - t0
    val, test = accuracy(model, data["X_val"], data["y_val"]), accuracy(model, data["X_test"], data["y_test"])
    result = {"experiment": "convnet", **cfg, "parameters": summary.total_params,
              "best_epoch_val_acc": solver.best_val_acc, "val_acc": round(val, 4), "test_acc": round(test, 4),
              "diverged_at": solver.diverged_at, "seconds": round(secs, 1),
              "ms_per_iter": round(1e3 * secs / max(len(solver.loss_history), 1), 1), "machine": machine(bk)}
    print(json.dumps(result), flush=True)
    nets.save_model(os.path.join(args.runs, "convnet.npz"), model, hyperparams=cfg,
                    history={"loss_history": solver.loss_history, "train_acc_history": solver.train_acc_history,
                             "val_acc_history": solver.val_acc_history}, arrays=fitted)
    os.makedirs(args.out, exist_ok=True)
    filter_picture(model, os.path.join(args.out, "convnet_filters.png"),
                   f"first-layer filters of {cfg['architecture'].split()[0]}: test accuracy {test:.3f}")
    return 0


def main(argv=None) -> int:
    return _reproduce.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
