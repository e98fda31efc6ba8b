"""Distillation on CIFAR-10: an ensemble of fully connected nets distilled into one net of its size and a smaller one.

Teachers: ``--seeds`` FullyConnectedNets (the same configuration, different seeds), averaged as an
:class:`nets.Ensemble`. Students: a net of the same size and a smaller one, each trained twice
on the same images for the same epochs, alone and with ``distill=nets.Distillation(teacher,
temperature, alpha)`` (the notes' modified objective). Prints one JSON line per model (test
accuracy on ``--num-test`` test images, training seconds).

Usage::

    python scripts/reproduce_distill.py --data-dir /tmp/cifar10
    python scripts/reproduce_distill.py --data-dir /tmp/cifar10 --train 8000 --epochs 5 --seeds 3

This script is an edge of the program.
"""

from __future__ import annotations

import json
import sys
import time

import _reproduce
from _reproduce import accuracy

from xpml import backend, nets
from xpml.classifiers.data_utils import get_CIFAR10_data

BIG, SMALL = [200, 200], [50]
NET = dict(input_dim=3072, num_classes=10, init="he", reg=1e-3)
SOLVER = dict(update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=100, verbose=False,
              num_train_samples=1000)


def _fit(net, data, epochs, **kw):
    t0 = time.perf_counter()
    nets.Solver(net, data, num_epochs=epochs, **SOLVER, **kw).train()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = _reproduce.parser(__doc__, prog="reproduce_distill.py")
    p.add_argument("--train", type=_reproduce.at_least(100), default=8000, help="training images")
    p.add_argument("--num-test", type=_reproduce.at_least(100), default=10000, help="test images")
    p.add_argument("--epochs", type=_reproduce.at_least(1), default=5)
    p.add_argument("--seeds", type=_reproduce.at_least(1), default=3, help="teacher nets in the ensemble")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.9)
    args = _reproduce.parse(p, argv)
    bk = backend.as_backend(args.backend)
    d = get_CIFAR10_data(args.data_dir, num_training=args.train, num_validation=1000, num_test=args.num_test,
                         num_dev=0, bias_trick=False, xp=bk)
    data = {k: d[k] for k in ("X_train", "y_train", "X_val", "y_val")}
    X_test, y_test = d["X_test"], d["y_test"]
    teachers = []
    for seed in range(args.seeds):
        net = nets.FullyConnectedNet(BIG, **NET, seed=seed, xp=bk)
        seconds = _fit(net, data, args.epochs)
        teachers.append(net)
        print(json.dumps({"model": f"teacher seed {seed} {BIG}", "test_acc": round(accuracy(net, X_test, y_test), 4),
                          "train_s": round(seconds, 1)}), flush=True)
    ensemble = nets.Ensemble(teachers)
    print(json.dumps({"model": f"ensemble of {args.seeds}", "test_acc": round(accuracy(ensemble, X_test, y_test), 4)}),
          flush=True)
    distill = nets.Distillation(ensemble, temperature=args.temperature, alpha=args.alpha)
    for dims in (BIG, SMALL):
        for how, kw in (("alone", {}), (f"distilled T={args.temperature} alpha={args.alpha}", {"distill": distill})):
            net = nets.FullyConnectedNet(dims, **NET, seed=100, xp=bk)
            seconds = _fit(net, data, args.epochs, **kw)
            print(json.dumps({"model": f"student {dims} {how}", "test_acc": round(accuracy(net, X_test, y_test), 4),
                              "train_s": round(seconds, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_reproduce.run(main))
