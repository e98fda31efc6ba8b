"""Reproduce the linear SVM and softmax figures of CS231n assignment 1 on CIFAR-10 (RESULTS.md).

The course split (49,000 train / 1,000 val / 1,000 test), mean-image subtraction and the bias
trick; a seeded log-uniform random search over learning rate and regularization strength, each
candidate trained with minibatch SGD and scored on the validation set; the best one's test
accuracy. The step size decays by ``--decay`` every ``--decay-every`` iterations (the course's
learning-rate decay, passed as an ``update_rule``): with a constant step the last iterate of SGD
on raw pixels jitters by several points of validation accuracy.

usage: python scripts/reproduce_linear.py --data-dir /tmp/cifar10 [--model svm softmax] [--trials 20]

The defaults are the fine search recorded in RESULTS.md (about 7 minutes on 2 cores).
"""

from __future__ import annotations

import datetime
import os
import sys
import time

# One BLAS thread unless told otherwise: SGD's (200 x 3073) x (3073 x 10) products are too small
# to split, and on a shared 2-core machine OpenBLAS threads waiting on each other made every step
# about 15x slower. Set before numpy is imported, as OpenBLAS reads it once.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import _reproduce  # noqa: E402
from _reproduce import accuracy  # noqa: E402

from xpml import nets  # noqa: E402
from xpml.classifiers import LinearSVM, Softmax, get_CIFAR10_data  # noqa: E402
from xpml.cli import _cli  # noqa: E402

MODELS = {"svm": LinearSVM, "softmax": Softmax}


def parse_args(argv=None):
    p = _reproduce.parser(__doc__, prog="reproduce_linear.py")
    p.add_argument("--model", nargs="+", default=["svm", "softmax"], choices=list(MODELS))
    p.add_argument("--trials", type=_cli.count, default=20, metavar="N", help="random-search candidates per model")
    p.add_argument("--lr", type=_cli.positive, nargs=2, default=[1e-6, 1e-5], metavar=("LOW", "HIGH"),
                   help="learning-rate range, sampled log-uniformly")
    p.add_argument("--reg", type=_cli.positive, nargs=2, default=[2e2, 5e3], metavar=("LOW", "HIGH"),
                   help="regularization range (reg * sum(W*W)), sampled log-uniformly")
    p.add_argument("--num-iters", type=_cli.count, default=6000, metavar="N")
    p.add_argument("--decay", type=_cli.fraction, default=0.8, help="learning-rate factor in (0, 1] (1: constant SGD)")
    p.add_argument("--decay-every", type=_cli.count, default=400, metavar="N", help="iterations between decays")
    p.add_argument("--batch-size", type=_cli.count, default=200, metavar="N")
    p.add_argument("--seed", type=_cli.natural, default=0, help="seeds the search, the weights and the minibatches")
    args = _reproduce.parse(p, argv)
    for flag, (low, high) in (("--lr", args.lr), ("--reg", args.reg)):
        if low > high:
            raise _cli.UsageError(f"{flag} {low:g} {high:g}: the low end is above the high end")
    return args


def sgd_step_decay(every: int, factor: float):
    """Plain SGD whose step is ``learning_rate * factor ** (t // every)`` at iteration t (optim.py signature)."""

    def rule(w, dw, config):
        t = config.get("t", 0)
        config["t"] = t + 1
        return w - config["learning_rate"] * factor ** (t // every) * dw, config

    return rule


def search(cls, data, args):
    """The best of ``args.trials`` log-uniform (lr, reg) candidates by validation accuracy (the
    library's :func:`nets.random_search`); returns ``(best trial, its model)``."""
    models = {}

    def objective(setting):
        model = cls(seed=args.seed)
        history = model.train(data["X_train"], data["y_train"], learning_rate=setting["lr"], reg=setting["reg"],
                              num_iters=args.num_iters, batch_size=args.batch_size,
                              update_rule=sgd_step_decay(args.decay_every, args.decay))
        models[setting["lr"], setting["reg"]] = model
        return {"val": accuracy(model, data["X_val"], data["y_val"]),
                "train": accuracy(model, data["X_train"], data["y_train"]),
                "loss": history[-1], "diverged_at": nets.diverged_at(history)}

    def show(result, t):
        loss = "diverged" if t["diverged"] else f"final loss {t['loss']:.3f}"
        print(f"  lr {t['params']['lr']:.3e} reg {t['params']['reg']:.3e}: {loss} "
              f"train {t['train']:.3f} val {t['val']:.3f}", flush=True)

    result = nets.random_search(objective, {"lr": tuple(args.lr), "reg": tuple(args.reg)}, trials=args.trials,
                                seed=args.seed, score="val", on_trial=show)
    best = result.best
    if best is None:
        raise _cli.UsageError(f"all {len(result.trials)} candidates diverged: lower the --lr range")
    return best, models[best["params"]["lr"], best["params"]["reg"]]


def _main(argv):
    args = parse_args(argv)
    bk = _cli.choose_backend(args.backend)
    data = get_CIFAR10_data(args.data_dir, xp=bk)
    print(f"# {' '.join(['python'] + sys.argv)}")
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {bk.label} on {bk.device_name}, "
          f"{os.cpu_count()} CPUs")
    for name in args.model:
        start = time.perf_counter()
        print(f"{name}: {args.trials} candidates, lr in {args.lr}, reg in {args.reg}, "
              f"{args.num_iters} iterations of batch {args.batch_size}, step x{args.decay} every {args.decay_every}")
        best, model = search(MODELS[name], data, args)
        test = accuracy(model, data["X_test"], data["y_test"])
        lr, reg = best["params"]["lr"], best["params"]["reg"]
        print(f"{name} best: lr {lr:.3e} reg {reg:.3e}: train {best['train']:.3f} "
              f"val {best['val']:.3f} test {test:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


def main(argv=None) -> int:
    return _reproduce.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
