"""The five models behind one interface: default hyperparameters, training, evaluation, artefacts.

:func:`fit` trains one model on a :class:`_datasets.Dataset` and measures it; :func:`save` writes
its checkpoint and pictures into a run folder. ``train.py`` and ``search.py`` both use them, so a
search trial is exactly a training run with other hyperparameters.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import backend
from ..backend.errors import InputError
from ..nets import layers, rules
from . import _cli, _runs

__all__ = ["CHOICES", "MODELS", "Fit", "defaults", "evaluate", "fit", "save"]

MODELS = ("knn", "svm", "softmax", "twolayer", "fc")  # "all": the quick ones
# Models trained when named: the convnet is slow on a CPU, so a plain `xpml train` leaves it out.
CHOICES = (*MODELS, "convnet")
IMAGE_MODELS = ("convnet",)
LINEAR = ("svm", "softmax")
TITLES = {"knn": "k-nearest neighbour", "svm": "linear SVM", "softmax": "softmax", "twolayer": "two-layer net",
          "fc": "fully connected net", "convnet": "convolutional net"}
# The library's vocabularies: the rule table, the normalizations (None spelled "none") and activations.
UPDATE_RULES = tuple(rules.RULES)
NORMALIZATIONS = ("none", *layers.NORMALIZATIONS)
ACTIVATIONS = tuple(layers.ACTIVATIONS)

# Hyperparameters each model takes, with defaults chosen on the digits (pixels scaled to [0, 1],
# mean subtracted); DATASET_DEFAULTS adjusts them where another dataset needs it.
DEFAULTS = {
    "knn": {"k": 1, "metric": "l2"},
    "svm": {"learning_rate": 0.1, "reg": 1e-3, "num_iters": 1500, "batch_size": 200, "update_rule": "sgd"},
    "softmax": {"learning_rate": 1.0, "reg": 1e-4, "num_iters": 1500, "batch_size": 200, "update_rule": "sgd"},
    "twolayer": {"hidden_size": 100, "learning_rate": 0.5, "learning_rate_decay": 0.99, "reg": 1e-4,
                 "num_iters": 1500, "batch_size": 100, "update_rule": "sgd", "init": "he", "dropout": 0.0},
    "fc": {"hidden_dims": "100,100", "normalization": "batchnorm", "activation": "relu", "dropout_keep": 1.0,
           "learning_rate": 1e-2, "learning_rate_decay": 0.95, "reg": 1e-4, "num_iters": 1500, "batch_size": 100,
           "update_rule": "adam", "init": "he"},
    "convnet": {"architecture": "CONV3-8 BN POOL2 CONV3-16 BN POOL2 FC-10", "learning_rate": 1e-2,
                "learning_rate_decay": 0.95, "reg": 1e-4, "num_iters": 200, "batch_size": 100,
                "update_rule": "adam", "init": "he"},
}
# The datasets whose rows are images (flattened in (height, width, channel) order).
IMAGE_DATASETS = ("digits", "cifar10")
DATASET_DEFAULTS = {
    "digits": {},
    "cifar10": {
        "knn": {"k": 10},
        "svm": {"learning_rate": 0.01, "reg": 0.01},
        "softmax": {"learning_rate": 0.03, "reg": 1e-3},
        "twolayer": {"hidden_size": 200, "learning_rate": 0.05, "learning_rate_decay": 0.95, "reg": 1e-3,
                     "num_iters": 3000, "batch_size": 200},
        "fc": {"hidden_dims": "512,512", "learning_rate": 1e-3, "reg": 1e-3, "dropout_keep": 0.8, "num_iters": 4000,
               "batch_size": 200},
        # A small VGG-style net (scripts/reproduce_convnet.py trains a larger one longer).
        "convnet": {"architecture": "CONV3-32 BN CONV3-32 BN POOL2 CONV3-64 BN CONV3-64 BN POOL2 FC-10",
                    "learning_rate": 1e-3, "reg": 5e-4, "num_iters": 2000, "batch_size": 128},
    },
    "spiral": {
        "svm": {"learning_rate": 0.5, "num_iters": 500},
        "softmax": {"learning_rate": 0.5, "num_iters": 500},
        "twolayer": {"learning_rate": 0.5, "learning_rate_decay": 1.0, "reg": 1e-3, "num_iters": 3000},
        "fc": {"learning_rate_decay": 1.0, "num_iters": 3000},
    },
}


def defaults(dataset: str, model: str) -> dict:
    """The hyperparameters ``model`` uses on ``dataset`` unless told otherwise."""
    if model in IMAGE_MODELS and dataset not in IMAGE_DATASETS:
        raise _cli.UsageError(f"{model} trains on images ({', '.join(IMAGE_DATASETS)}); the {dataset} dataset's "
                              "examples are not images: choose --dataset " + " or ".join(IMAGE_DATASETS))
    return {**DEFAULTS[model], **DATASET_DEFAULTS.get(dataset, {}).get(model, {})}


@dataclass
class Fit:
    """A trained model with its hyperparameters, measurements and curves."""

    model: str
    params: dict
    estimator: object = field(repr=False)
    val_acc: float
    test_acc: float | None
    train_s: float
    predict_s: float
    loss: list = field(default_factory=list)
    accuracy: dict = field(default_factory=dict)  # label -> (x, values) or values per epoch
    accuracy_x: str = "epoch"
    history: dict = field(default_factory=dict)  # what the checkpoint keeps of training
    progress: object = field(default=None, repr=False)  # shows kNN's query chunks

    def summary(self) -> dict:
        return {"model": self.model, "hyperparameters": self.params, "val_acc": self.val_acc,
                "test_acc": self.test_acc, "train_s": round(self.train_s, 4), "predict_s": round(self.predict_s, 4),
                "final_loss": self.loss[-1] if self.loss else None}


def accuracy(pred, y) -> float:
    """Fraction of ``pred`` equal to ``y`` (the library's :func:`nets.accuracy`), read back as a Python float."""
    from ..nets import accuracy as device_accuracy

    return float(backend.to_numpy(device_accuracy(pred, y)))


def _with_bias(data, split: str):
    """``X_split`` with a column of ones appended (the bias trick of the linear classifiers), cached."""
    from ..classifiers.data_utils import append_bias

    cache = data.extra.setdefault("with_bias", {})
    if split not in cache:
        cache[split] = append_bias(getattr(data, f"X_{split}"))
    return cache[split]


def _clock(bk) -> float:
    backend.synchronize(bk)
    return time.perf_counter()


def fit(model: str, data, bk, params: dict, *, seed: int = 0, dtype: str = "float32", progress=None,
        test: bool = True) -> Fit:
    """Train ``model`` with ``params`` on ``data`` (on backend ``bk``); measure validation (and test) accuracy.

    ``progress`` is a :class:`_progress.Progress`; None shows nothing. Training time is measured
    from a synchronised device to a synchronised device.
    """
    if progress is None:
        from ._progress import Progress

        progress = Progress(quiet=True)
    if model == "knn":
        return _fit_knn(data, bk, params, progress=progress, test=test)
    if model in LINEAR:
        return _fit_linear(model, data, bk, params, seed=seed, dtype=dtype, progress=progress, test=test)
    if model == "twolayer":
        return _fit_net(data, bk, params, seed=seed, dtype=dtype, progress=progress, test=test)
    if model == "fc":
        return _fit_fc(data, bk, params, seed=seed, dtype=dtype, progress=progress, test=test)
    if model == "convnet":
        return _fit_convnet(data, bk, params, seed=seed, dtype=dtype, progress=progress, test=test)
    raise InputError(f"unknown model {model!r}; choose from: {', '.join(CHOICES)}")


def _fit_knn(data, bk, params, *, progress, test):
    from ..classifiers import KNearestNeighbor

    clf = KNearestNeighbor(params["metric"])
    t0 = _clock(bk)
    clf.train(data.X_train, data.y_train)
    t1 = _clock(bk)
    k = params["k"]
    if k > data.X_train.shape[0]:
        raise InputError(f"k={k} is more than the {data.X_train.shape[0]} training examples")

    fit_ = Fit("knn", dict(params), clf, None, None, t1 - t0, 0.0)
    fit_.progress = progress
    fit_.val_acc = evaluate(fit_, data, "val")
    fit_.test_acc = evaluate(fit_, data, "test") if test else None
    fit_.predict_s = _clock(bk) - t1
    return fit_


def evaluate(fit_: Fit, data, split: str) -> float:
    """Accuracy of the trained model on ``split`` ("val" or "test") of ``data``."""
    y = getattr(data, f"y_{split}")
    if fit_.model == "knn":
        k = fit_.params["k"]
        hook = fit_.progress.wrapper(desc=f"knn k={k}: {split}", unit="chunk") if fit_.progress else None
        return accuracy(fit_.estimator.predict(getattr(data, f"X_{split}"), k=k, progress=hook), y)
    if fit_.model in LINEAR:
        return accuracy(fit_.estimator.predict(_with_bias(data, split)), y)
    if fit_.model in IMAGE_MODELS:
        return accuracy(fit_.estimator.predict(_images(data, split)), y)
    return accuracy(fit_.estimator.predict(getattr(data, f"X_{split}")), y)


def _update_rule(name: str):
    return None if name == "sgd" else name


def _fit_linear(model, data, bk, params, *, seed, dtype, progress, test):
    from ..classifiers import LinearSVM, Softmax

    clf = (LinearSVM if model == "svm" else Softmax)(seed=seed, dtype=dtype)
    X_train, X_val = _with_bias(data, "train"), _with_bias(data, "val")
    n, num_iters, batch = X_train.shape[0], params["num_iters"], params["batch_size"]
    # One train() call, so the minibatches are those of the library's own run and an update rule
    # keeps its state; the callback evaluates about once per epoch (at most ~40 points) from the
    # current weights, reading accuracies back only then.
    every = max(max(n // batch, 1), math.ceil(num_iters / 40))
    points, train_acc, val_acc = [], [], []
    eval_s = 0.0

    def on_step(it, value):
        nonlocal eval_s
        bar(it, value)
        if (it + 1) % every == 0 or it + 1 == num_iters:
            e0 = time.perf_counter()
            points.append(it + 1)
            train_acc.append(accuracy(clf.predict(X_train), data.y_train))
            val_acc.append(accuracy(clf.predict(X_val), data.y_val))
            eval_s += time.perf_counter() - e0

    with progress.training(num_iters, desc=model) as bar:
        t0 = _clock(bk)
        loss = clf.train(X_train, data.y_train, params["learning_rate"], params["reg"], num_iters, batch,
                         update_rule=_update_rule(params["update_rule"]), callback=on_step)
        t1 = _clock(bk)
    fit_ = Fit(model, dict(params), clf, None, None, t1 - t0 - eval_s, eval_s, loss,
               {"train": (points, train_acc), "val": (points, val_acc)}, accuracy_x="iteration",
               history={"loss_history": loss, "eval_iterations": points, "train_acc_history": train_acc,
                        "val_acc_history": val_acc})
    if val_acc and points[-1] == len(loss):
        fit_.val_acc = val_acc[-1]
    else:
        # Training stopped early (a loss that stopped being finite) before or after the last
        # evaluation: measure the weights it stopped with.
        fit_.val_acc = evaluate(fit_, data, "val")
        fit_.predict_s += _clock(bk) - t1
    if test:
        fit_.test_acc = evaluate(fit_, data, "test")
        fit_.predict_s += _clock(bk) - t1
    return fit_


def _fit_net(data, bk, params, *, seed, dtype, progress, test):
    from ..nets import TwoLayerNet

    net = TwoLayerNet(data.num_features, params["hidden_size"], data.num_classes, init=params["init"],
                      dtype=dtype, seed=seed, xp=bk, dropout=params["dropout"])
    with progress.training(params["num_iters"], desc="twolayer") as bar:
        t0 = _clock(bk)
        stats = net.train(data.X_train, data.y_train, data.X_val, data.y_val,
                          learning_rate=params["learning_rate"], learning_rate_decay=params["learning_rate_decay"],
                          reg=params["reg"], num_iters=params["num_iters"], batch_size=params["batch_size"],
                          update_rule=params["update_rule"], callback=bar)
        t1 = _clock(bk)
    curves = {"train (last minibatch)": stats["train_acc_history"], "val": stats["val_acc_history"]}
    fit_ = Fit("twolayer", dict(params), net, None, None, t1 - t0, 0.0, stats["loss_history"],
               {k: v for k, v in curves.items() if v}, history=stats)
    fit_.val_acc = evaluate(fit_, data, "val")
    fit_.test_acc = evaluate(fit_, data, "test") if test else None
    fit_.predict_s = _clock(bk) - t1
    return fit_


def hidden_dims(text: str) -> list[int]:
    """``"100,100"`` as ``[100, 100]``; an empty string is no hidden layer."""
    return [int(h) for h in text.split(",") if h.strip()]


def _fit_fc(data, bk, params, *, seed, dtype, progress, test):
    from ..nets import FullyConnectedNet, Solver

    norm = None if params["normalization"] == "none" else params["normalization"]
    transforms = []
    if params.get("init_from"):
        net, transforms = _pretrained(params, data, bk, seed=seed, dtype=dtype)
    else:
        net = FullyConnectedNet(hidden_dims(params["hidden_dims"]), input_dim=data.num_features,
                                num_classes=data.num_classes, dropout_keep_ratio=params["dropout_keep"],
                                normalization=norm, reg=params["reg"], dtype=dtype, seed=seed,
                                activation=params["activation"], init=params["init"], xp=bk)
    split = {"X_train": data.X_train, "y_train": data.y_train, "X_val": data.X_val, "y_val": data.y_val}
    with progress.training(params["num_iters"], desc="fc") as bar:
        t0 = _clock(bk)
        # The course's Solver, checking accuracy at the end of every epoch and keeping the best
        # parameters on the validation set.
        solver = Solver(net, split, update_rule=params["update_rule"],
                        optim_config={"learning_rate": params["learning_rate"]},
                        lr_decay=params["learning_rate_decay"], batch_size=params["batch_size"],
                        num_iters=params["num_iters"], check_ends=False, callback=bar, verbose=False,
                        transforms=transforms)
        solver.train()
        t1 = _clock(bk)
    history = {"loss_history": solver.loss_history, "train_acc_history": solver.train_acc_history,
               "val_acc_history": solver.val_acc_history, "learning_rate_history": solver.learning_rate_history,
               "diverged_at": solver.diverged_at}
    curves = {"train (1000 examples)": solver.train_acc_history, "val": solver.val_acc_history}
    fit_ = Fit("fc", dict(params), net, None, None, t1 - t0, 0.0, solver.loss_history,
               {k: v for k, v in curves.items() if v}, history=history)
    fit_.val_acc = evaluate(fit_, data, "val")
    fit_.test_acc = evaluate(fit_, data, "test") if test else None
    fit_.predict_s = _clock(bk) - t1
    return fit_


def _images(data, split: str):
    """``X_split`` as (N, C, H, W) images for a ConvNet, cached (rows are (height, width, channel))."""
    if data.image_shape is None:
        raise InputError(f"a convnet trains on images; the {data.name} dataset's rows are not images")
    cache = data.extra.setdefault("images", {})
    if split not in cache:
        X = getattr(data, f"X_{split}")
        xp = backend.get_namespace(X)
        h, w, c = data.image_shape
        X = xp.reshape(X, (X.shape[0], h, w, c))
        # A view, not a copy: the Solver gathers its minibatches from it.
        cache[split] = xp.reshape(X, (X.shape[0], 1, h, w)) if c == 1 else xp.permute_dims(X, (0, 3, 1, 2))
    return cache[split]


def _fit_convnet(data, bk, params, *, seed, dtype, progress, test):
    from ..nets import ConvNet, Solver

    X_train = _images(data, "train")
    net = ConvNet(params["architecture"], tuple(X_train.shape[1:]), reg=params["reg"], init=params["init"],
                  dtype=dtype, seed=seed, xp=bk)
    classes = net.layers[-1].outputs
    if classes != data.num_classes:
        raise _cli.UsageError(f"--architecture ends with {net.layers[-1].token}, {classes} class scores, but the "
                              f"{data.name} dataset has {data.num_classes} classes: end it with FC-{data.num_classes}")
    split = {"X_train": X_train, "y_train": data.y_train, "X_val": _images(data, "val"), "y_val": data.y_val}
    with progress.training(params["num_iters"], desc="convnet") as bar:
        t0 = _clock(bk)
        solver = Solver(net, split, update_rule=params["update_rule"],
                        optim_config={"learning_rate": params["learning_rate"]},
                        lr_decay=params["learning_rate_decay"], batch_size=params["batch_size"],
                        num_iters=params["num_iters"], check_ends=False, callback=bar, verbose=False)
        solver.train()
        t1 = _clock(bk)
    history = {"loss_history": solver.loss_history, "train_acc_history": solver.train_acc_history,
               "val_acc_history": solver.val_acc_history, "learning_rate_history": solver.learning_rate_history,
               "diverged_at": solver.diverged_at}
    curves = {"train (1000 examples)": solver.train_acc_history, "val": solver.val_acc_history}
    fit_ = Fit("convnet", dict(params), net, None, None, t1 - t0, 0.0, solver.loss_history,
               {k: v for k, v in curves.items() if v}, history=history)
    fit_.val_acc = evaluate(fit_, data, "val")
    fit_.test_acc = evaluate(fit_, data, "test") if test else None
    fit_.predict_s = _clock(bk) - t1
    return fit_


def conv_filter_images(W, /):
    """A CONV layer's filters (F, C, HH, WW) as the grid of :func:`nets.diagnostics.first_layer_images`."""
    from ..nets.diagnostics import first_layer_images

    xp = backend.get_namespace(W)
    F, C, HH, WW = W.shape
    cols = xp.reshape(xp.permute_dims(W, (0, 2, 3, 1)), (F, HH * WW * C))
    return first_layer_images(cols.T, image_shape=(HH, WW, C))


def _pretrained(params, data, bk, *, seed, dtype):
    """The net of ``--init-from`` (its head replaced for the dataset's classes) and the transforms of ``--freeze``."""
    from ..nets import FullyConnectedNet, load_pretrained, rules

    path = params["init_from"]
    try:
        net = load_pretrained(path, num_classes=data.num_classes, input_dim=data.num_features, seed=seed, xp=bk,
                              dtype=dtype)
        if not isinstance(net, FullyConnectedNet):
            raise InputError(f"it holds a {type(net).__name__}; fc starts from a FullyConnectedNet checkpoint")
        transforms = [rules.freeze(params["freeze"].split(","))] if params.get("freeze") else []
        for t in transforms:
            t.check(net.params)
    except (ValueError, TypeError) as exc:
        raise _cli.UsageError(f"--init-from {path}: {exc}") from None
    return net, transforms


def add_finetune_arguments(parser) -> None:
    """``--init-from`` and ``--freeze``: fine-tune a fully connected net from a checkpoint."""
    g = parser.add_argument_group("fine-tuning (fc)")
    g.add_argument("--init-from", dest="init_from", metavar="CHECKPOINT",
                   help="start fc from this checkpoint: its architecture decides the net, and its last layer is "
                        "replaced when the dataset has another number of classes")
    g.add_argument("--freeze", dest="freeze", metavar="NAMES",
                   help="parameters of the --init-from net kept fixed in training, e.g. W1,b1,W2,b2")


def finetune_settings(args, models: list[str], params: dict) -> None:
    """Put ``--init-from`` and ``--freeze`` into fc's hyperparameters (a mistake is a UsageError)."""
    init_from, freeze = getattr(args, "init_from", None), getattr(args, "freeze", None)
    if init_from is None and freeze is None:
        return
    if init_from is None:
        raise _cli.UsageError("--freeze needs --init-from CHECKPOINT: a net trained from scratch has nothing to keep")
    if "fc" not in models:
        raise _cli.UsageError("--init-from applies to fc, which this run does not train")
    if freeze is not None and not [n for n in freeze.split(",") if n.strip()]:
        raise _cli.UsageError(f"--freeze must name parameters separated by commas, e.g. W1,b1; got {freeze!r}")
    params["fc"]["init_from"] = init_from
    if freeze is not None:
        params["fc"]["freeze"] = ",".join(n.strip() for n in freeze.split(",") if n.strip())


def _host_predict(fit_: Fit, bk, dtype):
    """``predict`` on host (M, D) arrays: for drawing decision regions."""
    def predict(X_host):
        X = bk.asarray(X_host.astype(dtype))
        if fit_.model in LINEAR:
            from ..classifiers.data_utils import append_bias

            X = append_bias(X)
        return backend.to_numpy(fit_.estimator.predict(X))
    return predict


def save(fit_: Fit, data, bk, run_dir, *, prefix: str | None = None) -> dict:
    """Write ``fit_``'s checkpoint and pictures into ``run_dir``; return ``{what: file name}``."""
    run_dir = Path(run_dir)
    name = prefix or fit_.model
    title = TITLES[fit_.model]
    files = {}
    if fit_.loss:
        files["curves"] = f"{name}_curves.png"
        _runs.plot_curves(run_dir / files["curves"], title, fit_.loss, fit_.accuracy, accuracy_xlabel=fit_.accuracy_x)
    hyper = {k: v for k, v in fit_.params.items()}
    if fit_.model != "knn":  # kNN keeps no weights, only the training set
        from ..nets import save_model

        # The library's checkpoint of any model; the linear models' W includes the bias row (the bias
        # trick) and, like the nets, is applied to data less the training mean saved beside it.
        files["checkpoint"] = f"{name}.npz"
        save_model(run_dir / files["checkpoint"], fit_.estimator, hyperparams=hyper, history=fit_.history,
                   arrays={"mean": data.extra["mean"]})
        _runs.note_written(run_dir / files["checkpoint"])
    if fit_.model in LINEAR and data.image_shape is not None:
        files["weights"] = f"{name}_templates.png"
        _runs.plot_image_grid(run_dir / files["weights"], backend.to_numpy(fit_.estimator.W), data.image_shape,
                              titles=data.class_names, title=f"{title}: one template per class")
    elif fit_.model in ("twolayer", "fc"):
        from ..nets.diagnostics import first_layer_images

        W1 = fit_.estimator.params["W1"]
        if data.image_shape is not None and (fit_.model == "twolayer" or hidden_dims(fit_.params["hidden_dims"])):
            files["weights"] = f"{name}_filters.png"
            grid = backend.to_numpy(first_layer_images(W1, image_shape=data.image_shape))
            _runs.plot_image(run_dir / files["weights"], grid / 255.0,
                             title=f"{title}: first-layer weights of its {W1.shape[1]} units")
    elif fit_.model == "convnet" and fit_.estimator.layers[0].kind == "conv":
        W1 = fit_.estimator.params["W1"]
        files["weights"] = f"{name}_filters.png"
        _runs.plot_image(run_dir / files["weights"], backend.to_numpy(conv_filter_images(W1)) / 255.0,
                         title=f"{title}: the {W1.shape[0]} filters of its first layer, "
                               f"{fit_.estimator.layers[0].token}")
    if data.num_features == 2:
        files["regions"] = f"{name}_regions.png"
        X, y = backend.to_numpy(data.X_train), backend.to_numpy(data.y_train)
        _runs.plot_decision_regions(run_dir / files["regions"], _host_predict(fit_, bk, X.dtype), X, y,
                                    title=f"{title}: decision regions (val acc {fit_.val_acc:.3f})")
    return files


# ---- command-line flags for hyperparameters, shared by train.py and search.py ---------------------

def _dropout(text: str) -> float:
    value = _cli.non_negative(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _hidden_dims(text: str) -> str:
    """``--hidden-dims 100,100``: positive widths, comma separated (empty: no hidden layer)."""
    parts = [p.strip() for p in text.split(",")]
    if parts == [""]:
        return ""
    for p in parts:
        if not p.isdigit() or int(p) < 1:
            raise argparse.ArgumentTypeError(f"must be widths >= 1 separated by commas, e.g. 100,100; got {text!r}")
    return ",".join(str(int(p)) for p in parts)


def _architecture(text: str) -> str:
    """``--architecture 'CONV3-32 POOL2 FC-10'``: a string the ConvNet grammar parses."""
    from ..nets.convnet import parse_architecture

    try:
        parse_architecture(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return " ".join(text.split())


# (flag, key, argparse type, choices, help); a flag applies to every model that takes `key`.
HYPER_FLAGS = [
    ("--k", "k", _cli.count, None, "neighbours that vote (knn)"),
    ("--metric", "metric", None, ("l2", "l1"), "distance (knn)"),
    ("--learning-rate", "learning_rate", _cli.positive, None, "step size (svm, softmax, twolayer, fc, convnet)"),
    ("--reg", "reg", _cli.non_negative, None, "L2 regularization strength (svm, softmax, twolayer, fc, convnet)"),
    ("--num-iters", "num_iters", _cli.count, None, "training iterations (svm, softmax, twolayer, fc, convnet)"),
    ("--batch-size", "batch_size", _cli.count, None, "examples per minibatch (svm, softmax, twolayer, fc, convnet)"),
    ("--update-rule", "update_rule", None, UPDATE_RULES, "(svm, softmax, twolayer, fc, convnet)"),
    ("--hidden-size", "hidden_size", _cli.count, None, "hidden units (twolayer)"),
    ("--learning-rate-decay", "learning_rate_decay", _cli.fraction, None,
     "learning-rate factor per epoch, in (0, 1] (twolayer, fc, convnet)"),
    ("--init", "init", None, ("std", "xavier", "he"), "weight initialisation (twolayer, fc, convnet)"),
    ("--dropout", "dropout", _dropout, None, "probability of dropping a hidden unit, in [0, 1) (twolayer)"),
    ("--hidden-dims", "hidden_dims", _hidden_dims, None, "widths of the hidden layers, e.g. 100,100 (fc)"),
    ("--normalization", "normalization", None, NORMALIZATIONS, "after each hidden affine layer (fc)"),
    ("--activation", "activation", None, ACTIVATIONS, "of the hidden layers (fc)"),
    ("--dropout-keep", "dropout_keep", _cli.fraction, None,
     "probability of keeping a hidden unit, in (0, 1]; 1 is no dropout (fc)"),
    ("--architecture", "architecture", _architecture, None,
     "layers in the notes' VGG notation, e.g. 'CONV3-32 CONV3-32 POOL2 FC-10'; BN, GN<G> and DROP<p> after a "
     "layer add normalization and dropout, /s<S> /p<P> /d<D> stride, pad and dilation (convnet)"),
]
SHORT = {"learning_rate": "lr", "learning_rate_decay": "decay", "num_iters": "iters", "batch_size": "batch",
         "hidden_size": "hidden", "update_rule": "rule", "hidden_dims": "hidden", "normalization": "norm",
         "activation": "act", "dropout_keep": "keep",
         "architecture": "arch"}


def defaults_help(dataset: str = "digits") -> str:
    """The default hyperparameters, one line a model, for ``--help``; then what differs on the other datasets."""
    lines = [f"default hyperparameters on the {dataset}:"]
    lines += [f"  {m:9s} {settings(defaults(dataset, m), terse=False)}" for m in CHOICES]
    for other, changes in DATASET_DEFAULTS.items():
        if other != dataset and changes:
            lines += ["", f"on {other}, these differ:"]
            lines += [f"  {m:9s} {settings(changes[m], terse=False)}" for m in CHOICES if changes.get(m)]
    return "\n".join(lines)


def add_hyperparameter_arguments(parser) -> None:
    g = parser.add_argument_group("hyperparameters (default: per model and dataset, listed below)")
    for flag, key, kind, choices, text in HYPER_FLAGS:
        metavar = None if choices else ("N" if kind is _cli.count else "H1,H2" if kind is _hidden_dims
                                        else "LAYERS" if kind is _architecture else "X")
        g.add_argument(flag, dest=key, type=kind, choices=choices, metavar=metavar, help=text)


def hyperparameters(args, models: list[str], dataset: str) -> dict:
    """Per model: its defaults on ``dataset``, overridden by the flags given.

    A flag that no model of this run takes is a mistake (``train.py svm --k 5``), not ignored.
    """
    out = {m: defaults(dataset, m) for m in models}
    for flag, key, *_ in HYPER_FLAGS:
        value = getattr(args, key, None)
        if value is None:
            continue
        takers = [m for m in models if key in out[m]]
        if not takers:
            owners = [m for m in CHOICES if key in DEFAULTS[m]]
            raise _cli.UsageError(f"{flag} applies to {' and '.join(owners)}, which this run does not train")
        for m in takers:
            out[m][key] = value
    return out


def settings(params: dict, *, terse: bool = True) -> str:
    """Hyperparameters as ``lr=0.1 reg=0.001 ...`` (terse: short names, no values that are the usual)."""
    return " ".join(f"{SHORT.get(k, k) if terse else k}={v}" for k, v in params.items()
                    if not terse or not ((k == "dropout" and v == 0) or (k == "update_rule" and v == "sgd")
                                         or (k == "dropout_keep" and v == 1) or (k == "activation" and v == "relu")))
