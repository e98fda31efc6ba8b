"""Reproduce the two-layer net results on CIFAR-10 (RESULTS.md).

Experiments:

- ``spiral``: the notes' spiral data set, linear softmax against the net (no data needed).
- ``course``: the assignment's first run (hidden 50, 1000 iterations, batch 200, learning rate
  1e-4, decay 0.95, reg 0.25, SGD) on the course's split; prints the validation accuracy
  (the course reports about 0.28-0.29).
- ``diagnose``: the notes' sanity checks (initial loss, overfitting 20 examples, the
  update-to-weight ratios) with the tuned configuration.
- ``search``: a short random search (the library's :func:`nets.random_search`) over learning
  rate, reg, hidden size, update rule, preprocessing and dropout on fewer iterations, printing one
  line per trial (pick the long runs from it).
- ``checkpoint``: load the tuned run's checkpoint on NumPy and on ``--backend`` and compare
  their test predictions.
- ``tuned``: the long run(s) picked from the search; prints validation and test accuracy, saves
  the loss/accuracy curves and the first-layer weights as images and a checkpoint.

Usage::

    python scripts/reproduce_twolayer.py --data-dir /tmp/cifar10 course
    python scripts/reproduce_twolayer.py --data-dir /tmp/cifar10 search --trials 12 --iters 1500
    python scripts/reproduce_twolayer.py --data-dir /tmp/cifar10 tuned --out docs

The data directory is the ``cifar-10-batches-py`` folder of the original download (or its
parent); ``xpml download --data-dir DIR`` fetches it. This script is an edge of the program: it
may use NumPy and matplotlib directly.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import _reproduce
import numpy as np
from _reproduce import accuracy

from xpml import backend, nets
from xpml.classifiers.data_utils import get_CIFAR10_data
from xpml.cli import _cli

COURSE = dict(hidden_size=50, num_iters=1000, batch_size=200, learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25)

# The tuned configuration, picked from `search` (see RESULTS.md for the trials behind it).
TUNED = dict(hidden_size=500, init="he", preprocess="standardize", num_iters=8000, batch_size=200,
             update_rule="adam", learning_rate=5e-4, learning_rate_decay=0.92, reg=1e-3, dropout=0.3)


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def load(args, bk, *, num_test: int):
    """The course's split of CIFAR-10 from ``--data-dir``, raw pixels (nets.preprocessing follows)."""
    if args.data_dir is None:
        raise _cli.UsageError(f"{args.experiment} needs CIFAR-10: pass --data-dir DIR (fetch it with "
                              f"`{_reproduce.FETCH_CIFAR10} DIR`)")
    return get_CIFAR10_data(args.data_dir, num_test=num_test, num_dev=0, subtract_mean=False, bias_trick=False,
                            dtype="float32", xp=bk)


def preprocess(data: dict, kind: str):
    """Fit the preprocessing on the training split and apply it to every split; return (data, fitted)."""
    if kind == "mean":
        pre = nets.MeanSubtraction()
    elif kind == "standardize":
        pre = nets.Standardization()
    elif kind.startswith("pca"):  # "pca-whiten:K" or "pca:K"
        name, _, k = kind.partition(":")
        pre = nets.PCA(n_components=int(k) if k else None, whiten=name == "pca-whiten", eps=1e-2 * 255)
    else:
        raise ValueError(f"unknown preprocessing {kind!r}")
    out = dict(data)
    out["X_train"] = pre.fit_transform(data["X_train"])
    for split in ("val", "test"):
        out[f"X_{split}"] = pre.transform(data[f"X_{split}"])
    return out, pre


def fitted_state(pre) -> dict:
    """The fitted arrays of a preprocessing object, to save with the model."""
    names = ("mean_", "scale_", "components_", "explained_variance_")
    return {n: getattr(pre, n) for n in names if getattr(pre, n, None) is not None}


def run(data: dict, cfg: dict, *, seed: int = 0, verbose: bool = False):
    cfg = dict(cfg)
    hidden = cfg.pop("hidden_size")
    init = cfg.pop("init", "std")
    std = cfg.pop("std", 1e-4)
    cfg.pop("preprocess", None)
    D = data["X_train"].shape[1]
    net = nets.TwoLayerNet(D, hidden, 10, std, init=init, seed=seed, xp=backend.backend_of(data["X_train"]))
    t0 = time.perf_counter()
    hist = net.train(data["X_train"], data["y_train"], data["X_val"], data["y_val"], verbose=verbose, **cfg)
    backend.synchronize(net.params["W1"])
    return net, hist, time.perf_counter() - t0


def cmd_course(args, bk):
    data, _ = preprocess(load(args, bk, num_test=1000), "mean")
    net, hist, secs = run(data, COURSE, verbose=args.verbose)
    val = accuracy(net, data["X_val"], data["y_val"])
    print(json.dumps({"experiment": "course", **COURSE, "val_acc": round(val, 4),
                      "final_loss": round(hist["loss_history"][-1], 4), "seconds": round(secs, 1)}))


def cmd_spiral(args, bk):
    """The notes' spiral: linear softmax vs the net (hidden 100), full batch, step 1.0.

    The notes' penalty is 0.5 * reg * |W|^2 with reg = 1e-3; xpml's is reg * |W|^2, so reg = 5e-4.
    """
    from xpml.classifiers import Softmax
    from xpml.classifiers.data_utils import append_bias, make_spiral

    X, y = make_spiral(100, 3, xp=bk)
    Xb = append_bias(X)
    clf = Softmax(seed=0)
    losses = clf.train(Xb, y, learning_rate=1.0, reg=5e-4, num_iters=200, batch_size=300)
    lin = accuracy(clf, Xb, y)
    print(json.dumps({"experiment": "spiral-linear", "train_acc": round(lin, 4), "final_loss": round(losses[-1], 4)}))
    net = nets.TwoLayerNet(2, 100, 3, std=0.01, seed=0, xp=bk)
    hist = net.train(X, y, learning_rate=1.0, learning_rate_decay=1.0, reg=5e-4, num_iters=10000, batch_size=None)
    loss = hist["loss_history"]
    print(json.dumps({"experiment": "spiral-net", "hidden_size": 100, "train_acc": round(accuracy(net, X, y), 4),
                      "first_loss": round(loss[0], 4), "final_loss": round(loss[-1], 4)}))


def cmd_diagnose(args, bk):
    """The notes' sanity checks on CIFAR-10 with the tuned configuration."""
    cfg = dict(TUNED)
    data, _ = preprocess(load(args, bk, num_test=1000), cfg["preprocess"])
    D = data["X_train"].shape[1]

    def fresh():
        return nets.TwoLayerNet(D, cfg["hidden_size"], 10, init=cfg["init"], seed=0, xp=bk)

    small = nets.TwoLayerNet(D, cfg["hidden_size"], 10, 1e-4, seed=0, xp=bk)
    check = nets.diagnostics.initial_loss_check(small, data["X_train"][:500, :], data["y_train"][:500])
    print(json.dumps({"check": "initial loss, std=1e-4, no reg", **check}))
    over = nets.diagnostics.overfit_tiny_subset(fresh(), data["X_train"], data["y_train"], n=20, num_iters=100)
    print(json.dumps({"check": "overfit 20 examples, adam 1e-3, 100 steps",
                      "first_loss": round(over["loss_history"][0], 4), "final_loss": round(over["final_loss"], 6),
                      "train_accuracy": over["train_accuracy"]}))
    train_cfg = {k: v for k, v in cfg.items() if k not in ("hidden_size", "init", "preprocess")}
    train_cfg["num_iters"] = 3 * (data["X_train"].shape[0] // cfg["batch_size"])
    hist = fresh().train(data["X_train"], data["y_train"], data["X_val"], data["y_val"], record_update_ratios=True,
                         **train_cfg)
    print(json.dumps({"check": "update/weight ratio at the end of epochs 1-3 (tuned config)",
                      **{k: [float(f"{r:.3g}") for r in v] for k, v in hist["update_ratio_history"].items()}}))


def cmd_checkpoint(args, bk):
    """Load the tuned run's checkpoint on NumPy and on ``--backend``; compare their test predictions."""
    path = os.path.join(args.runs, "twolayer_tuned.npz")
    raw = load(args, backend.get_backend("numpy"), num_test=10000)
    preds, accs = {}, {}
    for target in ("numpy", bk.label):
        tb = backend.get_backend(target)
        net, info = nets.load_model(path, xp=tb)
        pre = nets.Standardization()
        pre.mean_, pre.scale_ = info["arrays"]["mean_"], info["arrays"]["scale_"]
        X, y = pre.transform(backend.to_backend(raw["X_test"], tb)), backend.to_backend(raw["y_test"], tb)
        preds[target] = backend.to_numpy(net.predict(X))
        accs[f"test_acc_{target}"] = round(accuracy(net, X, y), 4)
    same = all(np.array_equal(p, preds["numpy"]) for p in preds.values())
    print(json.dumps({"experiment": "checkpoint", "path": path, "identical_predictions": same, **accs}))


def cmd_search(args, bk):
    """A random search by :func:`nets.random_search`: log-uniform learning rate and reg, the rest chosen."""
    cache = {}

    def objective(setting):
        pre = setting["preprocess"]
        if pre not in cache:
            cache.clear()  # one preprocessed copy of the data at a time
            cache[pre], _ = preprocess(load(args, bk, num_test=1000), pre)
        data = cache[pre]
        cfg = dict(setting, init="he", num_iters=args.iters, batch_size=200, learning_rate_decay=0.9)
        net, hist, secs = run(data, cfg)
        val = hist["val_acc_history"][-1] if hist["val_acc_history"] else accuracy(net, data["X_val"], data["y_val"])
        return {"val_acc": val, "train_acc": hist["train_acc_history"][-1:], "final_loss": hist["loss_history"][-1],
                "seconds": round(secs, 1), "diverged_at": nets.diverged_at(hist["loss_history"])}

    def show(result, t):
        loss = t["final_loss"]
        print(json.dumps({"trial": t["trial"], **t["params"], "init": "he", "num_iters": args.iters,
                          "val_acc": round(t["val_acc"], 4), "train_acc": t["train_acc"],
                          "final_loss": None if loss is None else round(loss, 4), "seconds": t["seconds"],
                          "diverged_at": t["diverged_at"]}), flush=True)

    result = nets.random_search(
        objective, {"learning_rate": (10 ** args.log_lr[0], 10 ** args.log_lr[1]),
                    "reg": (10 ** args.log_reg[0], 10 ** args.log_reg[1])},
        choices={"preprocess": args.preprocess, "hidden_size": args.hidden, "update_rule": args.rules,
                 "dropout": args.dropout},
        trials=args.trials, seed=args.seed, on_trial=show)
    best = result.best
    print(json.dumps({"best": None if best is None else {**best["params"], "val_acc": round(best["val_acc"], 4)}}))


def plot_curves(hist: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 8))
    loss = np.asarray(hist["loss_history"])
    ax1.plot(loss, lw=0.5, alpha=0.5, label="minibatch loss")
    k = 100
    if loss.size > k:
        ax1.plot(np.arange(k - 1, loss.size), np.convolve(loss, np.ones(k) / k, mode="valid"), label=f"mean of {k}")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("loss")
    ax1.set_title(title)
    ax1.legend()
    epochs = np.arange(1, len(hist["val_acc_history"]) + 1)
    ax2.plot(epochs, hist["train_acc_history"], "o-", label="train (last minibatch)")
    ax2.plot(epochs, hist["val_acc_history"], "o-", label="validation")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("classification accuracy")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_weights(net, path: str, *, units: int = 100) -> None:
    """The first ``units`` hidden units' weights as images (all 500 make a 1 MB file of noise-like tiles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W1 = net.params["W1"][:, :units]
    grid = backend.to_numpy(nets.diagnostics.first_layer_images(W1, image_shape=(32, 32, 3)))
    fig = plt.figure(figsize=(5, 5))
    plt.imshow(grid.astype("uint8"))
    plt.axis("off")
    plt.title(f"first-layer weights (first {W1.shape[1]} of {net.hidden_size} units)")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def cmd_tuned(args, bk):
    cfg = dict(TUNED)
    for override in args.set or []:
        key, _, value = override.partition("=")
        cfg[key] = type(TUNED.get(key, ""))(value) if key in TUNED else json.loads(value)
    raw = load(args, bk, num_test=10000)
    data, pre = preprocess(raw, cfg["preprocess"])
    del raw
    models = []
    for seed in range(args.ensemble):
        net, hist, secs = run(data, cfg, seed=seed, verbose=args.verbose)
        val = accuracy(net, data["X_val"], data["y_val"])
        test = accuracy(net, data["X_test"], data["y_test"])
        print(json.dumps({"experiment": "tuned", "seed": seed, **cfg, "val_acc": round(val, 4),
                          "test_acc": round(test, 4), "best_epoch_val": round(max(hist["val_acc_history"]), 4),
                          "final_loss": round(hist["loss_history"][-1], 4), "seconds": round(secs, 1),
                          "ms_per_iter": round(1e3 * secs / cfg["num_iters"], 2)}), flush=True)
        models.append(net)
        if seed == 0:
            os.makedirs(args.out, exist_ok=True)
            plot_curves(hist, os.path.join(args.out, "twolayer_curves.png"),
                        f"two-layer net, hidden {cfg['hidden_size']}, {cfg['update_rule']}, dropout {cfg['dropout']}: "
                        f"val {val:.3f}, test {test:.3f}")
            plot_weights(net, os.path.join(args.out, "twolayer_weights.png"))
            nets.save_model(os.path.join(args.runs, "twolayer_tuned.npz"), net,
                            hyperparams=dict(cfg), history=hist, arrays=fitted_state(pre))
    if len(models) > 1:
        ens = nets.Ensemble(models)
        acc, vacc = accuracy(ens, data["X_test"], data["y_test"]), accuracy(ens, data["X_val"], data["y_val"])
        print(json.dumps({"experiment": "ensemble", "models": len(models), "val_acc": round(vacc, 4),
                          "test_acc": round(acc, 4)}))


def _main(argv):
    p = _reproduce.parser(__doc__, prog="reproduce_twolayer.py", data_required=False)
    p.add_argument("--verbose", action="store_true")
    sub = p.add_subparsers(dest="experiment", required=True)
    sub.add_parser("course", help="the assignment's first run")
    sub.add_parser("spiral", help="the notes' spiral (no data needed)")
    sub.add_parser("diagnose", help="the notes' sanity checks on CIFAR-10 with the tuned configuration")
    c = sub.add_parser("checkpoint", help="load the tuned checkpoint on numpy and on --backend, compare predictions")
    c.add_argument("--runs", default="runs", help="where tuned saved its checkpoint (default runs)")
    s = sub.add_parser("search", help="a short random search")
    s.add_argument("--trials", type=_cli.count, default=12)
    s.add_argument("--iters", type=_cli.count, default=1500)
    s.add_argument("--seed", type=_cli.natural, default=0)
    s.add_argument("--hidden", type=_cli.count, nargs="+", default=[200, 500])
    s.add_argument("--rules", nargs="+", default=["adam", "sgd_momentum"])
    s.add_argument("--preprocess", nargs="+", default=["standardize"])
    s.add_argument("--dropout", type=_cli.non_negative, nargs="+", default=[0.0, 0.3])
    s.add_argument("--log-lr", type=float, nargs=2, default=[-4.0, -2.5])
    s.add_argument("--log-reg", type=float, nargs=2, default=[-4.0, -1.5])
    t = sub.add_parser("tuned", help="the long run with the picked configuration")
    t.add_argument("--out", default="docs", help="where the figures go (default docs)")
    t.add_argument("--runs", default="runs", help="where the checkpoint goes (default runs, not committed)")
    t.add_argument("--ensemble", type=_cli.count, default=1,
                   help="train this many seeds and also report their ensemble")
    t.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override a key of the tuned configuration")
    args = _reproduce.parse(p, argv)
    bk = _cli.choose_backend(args.backend)
    print(f"# {args.experiment} on {bk.label} ({bk.device_name}; lscpu: {_cpu()}, {os.cpu_count()} cores), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    {"course": cmd_course, "spiral": cmd_spiral, "diagnose": cmd_diagnose, "checkpoint": cmd_checkpoint,
     "search": cmd_search, "tuned": cmd_tuned}[args.experiment](args, bk)
    return 0


def main(argv=None) -> int:
    return _reproduce.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
