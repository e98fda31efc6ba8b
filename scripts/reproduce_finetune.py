"""Fine-tuning on CIFAR-10: a net trained on classes 0-4, fine-tuned on classes 5-9 from a few labelled images.

A FullyConnectedNet is trained on the images of classes 0-4. Its head is then replaced
(:func:`nets.replace_head`) for classes 5-9 and trained on a small labelled subset of them
(``--subset`` images), three ways: hidden layers frozen (:func:`nets.rules.freeze`), hidden
layers at a tenth of the learning rate (:func:`nets.rules.scale_learning_rate`), and everything at
the full rate; against the same net trained from scratch on that subset. Prints one JSON line per
run (test accuracy on every test image of classes 5-9, training seconds).

Usage::

    python scripts/reproduce_finetune.py --data-dir /tmp/cifar10
    python scripts/reproduce_finetune.py --data-dir /tmp/cifar10 --subset 500 --pretrain 15000

This script is an edge of the program: it may use NumPy directly.
"""

from __future__ import annotations

import json
import sys
import time

import _reproduce
import numpy as np
from _reproduce import accuracy

from xpml import backend, nets
from xpml.classifiers.data_utils import get_CIFAR10_data
from xpml.nets import rules

NET = dict(hidden_dims=[256, 256], input_dim=3072, num_classes=5, init="he", reg=1e-3)
SOLVER = dict(update_rule="adam", batch_size=100, verbose=False, num_train_samples=1000)


def _classes(bk, X, y, classes, limit=None):
    """The rows of ``classes``, their labels renumbered 0..len(classes)-1 (host-side selection)."""
    y_host = backend.to_numpy(y)
    rows = np.flatnonzero(np.isin(y_host, classes))[:limit]
    return bk.asarray(backend.to_numpy(X)[rows]), bk.asarray(np.searchsorted(classes, y_host[rows]))


def _fit(net, data, *, epochs, lr, transforms=()):
    t0 = time.perf_counter()
    nets.Solver(net, data, num_epochs=epochs, optim_config={"learning_rate": lr}, transforms=list(transforms),
                **SOLVER).train()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = _reproduce.parser(__doc__, prog="reproduce_finetune.py")
    p.add_argument("--subset", type=_reproduce.at_least(5), default=500, help="labelled images of classes 5-9")
    p.add_argument("--pretrain", type=_reproduce.at_least(100), default=15000, help="images of classes 0-4")
    p.add_argument("--epochs", type=_reproduce.at_least(1), default=10, help="epochs of the pretraining")
    p.add_argument("--tune-epochs", type=_reproduce.at_least(1), default=40, help="epochs on the subset")
    args = _reproduce.parse(p, argv)
    bk = backend.as_backend(args.backend)
    d = get_CIFAR10_data(args.data_dir, num_training=49000, num_validation=1000, num_test=10000, num_dev=0,
                         bias_trick=False, xp=bk)
    old, new = np.arange(5), np.arange(5, 10)
    X_a, y_a = _classes(bk, d["X_train"], d["y_train"], old, args.pretrain)
    Xv_a, yv_a = _classes(bk, d["X_val"], d["y_val"], old)
    X_b, y_b = _classes(bk, d["X_train"][-20000:], d["y_train"][-20000:], new, args.subset)
    Xv_b, yv_b = _classes(bk, d["X_val"], d["y_val"], new)
    Xt_b, yt_b = _classes(bk, d["X_test"], d["y_test"], new)
    base = nets.FullyConnectedNet(**NET, seed=0, xp=bk)
    seconds = _fit(base, {"X_train": X_a, "y_train": y_a, "X_val": Xv_a, "y_val": yv_a}, epochs=args.epochs, lr=1e-3)
    print(json.dumps({"run": "pretrain classes 0-4", "images": int(X_a.shape[0]),
                      "val_acc": accuracy(base, Xv_a, yv_a), "train_s": round(seconds, 1)}), flush=True)
    subset = {"X_train": X_b, "y_train": y_b, "X_val": Xv_b, "y_val": yv_b}
    body = nets.finetune.body_names(base)
    runs = {"scratch": (nets.FullyConnectedNet(**NET, seed=1, xp=bk), ()),
            "frozen hidden layers": (nets.replace_head(base, 5, seed=1), (rules.freeze(body),)),
            "hidden layers at lr x 0.1": (nets.replace_head(base, 5, seed=1),
                                          (rules.scale_learning_rate(dict.fromkeys(body, 0.1)),)),
            "all layers at full lr": (nets.replace_head(base, 5, seed=1), ())}
    for name, (net, transforms) in runs.items():
        seconds = _fit(net, subset, epochs=args.tune_epochs, lr=1e-3, transforms=transforms)
        print(json.dumps({"run": name, "subset": int(X_b.shape[0]), "test_acc": round(accuracy(net, Xt_b, yt_b), 4),
                          "test_images": int(Xt_b.shape[0]), "train_s": round(seconds, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_reproduce.run(main))
