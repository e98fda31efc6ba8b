"""Reproduce the optimization chapter of the CS231n notes on CIFAR-10: three strategies and the landscape.

Raw pixels (0..255) with the bias trick, the multiclass SVM loss, as in the notes: random search
over W (1000 tries of N(0, 1e-4**2) weights; the notes report about 15.5 % test accuracy), random
local search (1000 steps of size 1e-4 from N(0, 1e-3**2) weights; about 21.4 %), the loss of the
local search's result along a random line and over a random plane, and the step-size table (the
loss after one gradient step of each size). Everything runs through :mod:`xpml.nets.landscape`.

usage: python scripts/reproduce_optimization.py --data-dir /tmp/cifar10 [--train 50000] [--tries 1000]
"""

from __future__ import annotations

import sys
import time

import _reproduce

from xpml import backend, nets
from xpml.classifiers import load_CIFAR10
from xpml.classifiers.data_utils import append_bias
from xpml.cli import _cli
from xpml.nets import landscape


def _main(argv) -> None:
    p = _reproduce.parser(__doc__, prog="reproduce_optimization.py")
    p.add_argument("--train", type=_cli.count, default=50000, metavar="N", help="training examples the loss uses")
    p.add_argument("--tries", type=_cli.count, default=1000, metavar="N", help="random-search tries")
    p.add_argument("--steps", type=_cli.count, default=1000, metavar="N", help="local-search steps")
    p.add_argument("--seed", type=_cli.natural, default=0)
    args = _reproduce.parse(p, argv)
    bk = _cli.choose_backend(args.backend)
    Xtr, ytr, Xte, yte = load_CIFAR10(args.data_dir, dtype="float32")
    Xtr, Xte = append_bias(Xtr.reshape(len(Xtr), -1)[: args.train]), append_bias(Xte.reshape(len(Xte), -1))
    X, y = bk.asarray(Xtr), bk.asarray(ytr[: args.train])
    Xt, yt = bk.asarray(Xte), bk.asarray(yte)
    rng = backend.Generator(args.seed, xp=bk)

    def test_accuracy(W):
        return float(backend.to_numpy(nets.accuracy(bk.xp.argmax(Xt @ W, axis=1), yt)))

    t0 = time.perf_counter()
    W_rs, losses = landscape.random_search(X, y, num_classes=10, tries=args.tries, scale=1e-4, rng=rng)
    print(f"random search: {args.tries} tries, best loss {float(backend.to_numpy(losses).min()):.3f}, "
          f"test accuracy {test_accuracy(W_rs):.1%} ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    W0 = rng.normal((X.shape[1], 10), scale=1e-3)
    W_ls, hist = landscape.random_local_search(X, y, W0, steps=args.steps, step_size=1e-4, rng=rng)
    print(f"random local search: {args.steps} steps, loss {float(backend.to_numpy(hist)[-1]):.3f}, "
          f"test accuracy {test_accuracy(W_ls):.1%} ({time.perf_counter() - t0:.0f} s)")
    W1, W2 = rng.normal(tuple(W_ls.shape), scale=1e-4), rng.normal(tuple(W_ls.shape), scale=1e-4)
    alphas = [a / 10 for a in range(-20, 21, 4)]
    line = backend.to_numpy(landscape.loss_along_line(X, y, W_ls, W1, alphas))
    print("loss along a random line:", " ".join(f"{a:+.1f}:{v:.2f}" for a, v in zip(alphas, line, strict=True)))
    plane = backend.to_numpy(landscape.loss_over_plane(X, y, W_ls, W1, W2, alphas, alphas))
    print(f"loss over a random plane {plane.shape}: from {plane.min():.3f} to {plane.max():.3f}")
    steps = [10.0**k for k in range(-10, -3)]
    loss0, table = landscape.step_size_table(X, y, W_ls, steps)
    print(f"step-size table (loss {float(loss0):.3f} before the step):")
    for s, v in zip(steps, backend.to_numpy(table), strict=True):
        print(f"  step {s:.0e}: loss {v:.3f}")


def main(argv=None) -> int:
    return _reproduce.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
