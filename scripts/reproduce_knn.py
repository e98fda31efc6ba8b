"""Reproduce the kNN figures of CS231n assignment 1 on CIFAR-10 (the RESULTS.md numbers).

The course subset: the first 5,000 training and first 500 test images, flattened, L2 distance.
Reports the test accuracy for k = 1 and k = 5, runs 5-fold cross-validation over k, plots the
mean and spread per k, and reports the test accuracy of the best k trained on all 5,000.

usage: python scripts/reproduce_knn.py --data-dir /tmp/cifar10 [--plot docs/knn_cv.png] [--backend numpy]
"""

from __future__ import annotations

import datetime
import os
import sys
import time

import _reproduce
import numpy as np
from _reproduce import accuracy

from xpml.backend.io import atomic_write
from xpml.classifiers import KNearestNeighbor, knn_cross_validate, load_CIFAR10
from xpml.cli import _cli

K_CHOICES = [1, 3, 5, 8, 10, 12, 15, 20, 50, 100]


def parse_args(argv=None):
    p = _reproduce.parser(__doc__, prog="reproduce_knn.py")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                   help="float64 as the course's notebook (default)")
    p.add_argument("--num-train", type=_cli.count, default=5000, metavar="N")
    p.add_argument("--num-test", type=_cli.count, default=500, metavar="N")
    p.add_argument("--folds", type=_reproduce.at_least(2), default=5, metavar="N",
                   help="cross-validation folds, at least 2 (default 5)")
    p.add_argument("--plot", default="docs/knn_cv.png", help="where to save the cross-validation plot")
    args = _reproduce.parse(p, argv)
    if args.num_train - -(-args.num_train // args.folds) < max(K_CHOICES):  # the training part of the largest fold
        raise _cli.UsageError(f"--num-train {args.num_train} is too few for {args.folds}-fold cross-validation up to "
                              f"k = {max(K_CHOICES)}: each fold must train on at least {max(K_CHOICES)} images")
    _reproduce.writable_file(args.plot, flag="--plot")
    return args


def plot(results, best_k, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(results)
    accs = np.array([results[k] for k in ks])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, row in zip(ks, accs, strict=True):
        ax.scatter([k] * len(row), row, s=12, color="0.6")
    ax.errorbar(ks, accs.mean(1), yerr=accs.std(1), marker="o", capsize=3, label="mean ± std over folds")
    ax.axvline(best_k, color="C3", ls=":", label=f"best k = {best_k}")
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("cross-validation accuracy")
    ax.set_title(f"kNN (L2) on CIFAR-10: {accs.shape[1]}-fold cross-validation on {len(ks)} values of k")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path) as f:  # a killed run leaves no truncated picture
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def _main(argv):
    args = parse_args(argv)
    bk = _cli.choose_backend(args.backend)
    # float32 holds the 0..255 pixels exactly and halves the loader's memory; the subset is cast after.
    Xtr, ytr, Xte, yte = load_CIFAR10(args.data_dir, dtype="float32")
    if args.num_train > Xtr.shape[0] or args.num_test > Xte.shape[0]:
        raise _cli.UsageError(f"asked for {args.num_train} train / {args.num_test} test images but {args.data_dir} has "
                              f"{Xtr.shape[0]} / {Xte.shape[0]}")
    Xtr = bk.asarray(Xtr[: args.num_train].reshape(args.num_train, -1).astype(args.dtype))
    ytr = bk.asarray(ytr[: args.num_train])
    Xte = bk.asarray(Xte[: args.num_test].reshape(args.num_test, -1).astype(args.dtype))
    yte = bk.asarray(yte[: args.num_test])

    start = time.perf_counter()
    knn = KNearestNeighbor("l2").train(Xtr, ytr)
    acc = {k: accuracy(knn, Xte, yte, k=k) for k in (1, 5)}
    results = knn_cross_validate(Xtr, ytr, k_choices=K_CHOICES, num_folds=args.folds)
    means = {k: float(np.mean(v)) for k, v in results.items()}
    best_k = max(K_CHOICES, key=lambda k: (means[k], -k))  # the smaller k on equal means
    best_acc = accuracy(knn, Xte, yte, k=best_k)
    elapsed = time.perf_counter() - start
    plot(results, best_k, args.plot)

    print(f"# {' '.join(['python'] + sys.argv)}")
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {bk.label} on {bk.device_name}, "
          f"{os.cpu_count()} CPUs, {elapsed:.1f} s")
    print(f"subset: {args.num_train} train / {args.num_test} test, L2, {args.dtype}")
    for k, a in acc.items():
        print(f"k = {k}: test accuracy {a:.3f}")
    print(f"{args.folds}-fold cross-validation (mean ± std):")
    for k, v in results.items():
        print(f"  k = {k:3d}: {np.mean(v):.4f} ± {np.std(v):.4f}   folds {', '.join(f'{a:.3f}' for a in v)}")
    print(f"best k = {best_k}: test accuracy {best_acc:.3f}")
    print(f"plot: {args.plot}")
    return 0


def main(argv=None) -> int:
    return _reproduce.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
