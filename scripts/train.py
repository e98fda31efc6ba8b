"""Train kNN, a linear SVM, softmax and a two-layer net, on the CPU or a CUDA GPU, from one command.

    python scripts/train.py                          # all four on the digits, in well under a minute
    python scripts/train.py svm softmax --seed 3     # some of them
    python scripts/train.py twolayer --hidden-size 200 --learning-rate 0.2 --backend cupy
    python scripts/train.py --dataset cifar10 --download      # fetch CIFAR-10 once, then train
    python scripts/train.py --dataset spiral                  # the notes' toy spiral

Prints a table (model, backend, device, validation and test accuracy, time) and writes a run
folder: results.json, loss and accuracy curves, the learned weights as images and a checkpoint
per model. Hyperparameters not given take per-model defaults for the dataset (``--help`` lists
them). The same seed on the same backend gives the same results.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import _cli
import _datasets
import _models
import _runs
import download_cifar10
from _progress import Progress

# Hyperparameter flags: (flag, key, argparse type, help). Each applies to the models that take `key`.
HYPER_FLAGS = [
    ("--k", "k", _cli.count, "neighbours that vote (knn)"),
    ("--metric", "metric", None, "distance: l2 or l1 (knn)"),
    ("--learning-rate", "learning_rate", _cli.positive, "step size (svm, softmax, twolayer)"),
    ("--reg", "reg", _cli.non_negative, "L2 regularization strength (svm, softmax, twolayer)"),
    ("--num-iters", "num_iters", _cli.count, "training iterations (svm, softmax, twolayer)"),
    ("--batch-size", "batch_size", _cli.count, "examples per minibatch (svm, softmax, twolayer)"),
    ("--update-rule", "update_rule", None, f"{', '.join(_models.UPDATE_RULES)} (svm, softmax, twolayer)"),
    ("--hidden-size", "hidden_size", _cli.count, "hidden units (twolayer)"),
    ("--learning-rate-decay", "learning_rate_decay", _cli.fraction,
     "learning rate factor per epoch, in (0, 1] (twolayer)"),
    ("--init", "init", None, "weight initialisation: std, xavier or he (twolayer)"),
    ("--dropout", "dropout", None, "probability of dropping a hidden unit, in [0, 1) (twolayer)"),
]
CHOICES = {"metric": ("l2", "l1"), "update_rule": _models.UPDATE_RULES, "init": ("std", "xavier", "he")}


def _dropout(text: str) -> float:
    value = _cli.non_negative(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _defaults_help() -> str:
    lines = ["defaults on the digits:"]
    for model in _models.MODELS:
        params = _models.defaults("digits", model)
        lines.append(f"  {model:9s} " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _cli.ArgumentParser(
        prog="train.py", description=__doc__.split("\n\n")[0], epilog=_defaults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"any of {', '.join(_models.MODELS)}, or all (default: all)")
    d = parser.add_argument_group("data")
    d.add_argument("--dataset", choices=_datasets.DATASETS, help="digits (default; ships with scikit-learn), "
                   "cifar10 (from --data-dir, or --download it) or spiral")
    d.add_argument("--num-train", type=_cli.count, help="training examples (default: all that are left)")
    d.add_argument("--num-val", type=_cli.count, help="validation examples")
    d.add_argument("--num-test", type=_cli.count, help="test examples")
    d.add_argument("--download", action="store_true",
                   help="fetch CIFAR-10 into --data-dir first if it is not there (implies --dataset cifar10)")
    download_cifar10.add_download_arguments(parser)
    h = parser.add_argument_group("hyperparameters (default: per model and dataset, listed below)")
    for flag, key, kind, text in HYPER_FLAGS:
        kind = _dropout if key == "dropout" else kind
        h.add_argument(flag, dest=key, type=kind, choices=CHOICES.get(key), help=text)
    _cli.add_common_arguments(parser)
    return parser


def parse_models(names: list[str]) -> list[str]:
    if not names or "all" in names:
        return list(_models.MODELS)
    unknown = [n for n in names if n not in _models.MODELS]
    if unknown:
        raise _cli.UsageError(f"unknown model {unknown[0]!r}; choose from: {', '.join(_models.MODELS)} or all")
    return list(dict.fromkeys(names))


def hyperparameters(args, models: list[str], dataset: str) -> dict:
    """Per model: its defaults on ``dataset`` overridden by the flags given."""
    given = {key: getattr(args, key) for _, key, _, _ in HYPER_FLAGS if getattr(args, key) is not None}
    out = {m: _models.defaults(dataset, m) for m in models}
    for key, value in given.items():
        takers = [m for m in models if key in out[m]]
        if not takers:
            flag = "--" + key.replace("_", "-")
            owners = [m for m in _models.MODELS if key in _models.DEFAULTS[m]]
            raise _cli.UsageError(f"{flag} applies to {' and '.join(owners)}, which this run does not train")
        for m in takers:
            out[m][key] = value
    return out


def choose_dataset(args) -> str:
    if args.download:
        if args.dataset not in (None, "cifar10"):
            raise _cli.UsageError(f"--download fetches CIFAR-10, but --dataset is {args.dataset}")
        return "cifar10"
    return args.dataset or "digits"


COLUMNS = [("model", "model"), ("backend", "backend"), ("device", "device"), ("val_acc", "val acc", ".3f"),
           ("test_acc", "test acc", ".3f"), ("train_s", "train s", ".2f"), ("predict_s", "predict s", ".2f"),
           ("settings", "settings")]
SHORT = {"learning_rate": "lr", "learning_rate_decay": "decay", "num_iters": "iters", "batch_size": "batch",
         "hidden_size": "hidden", "update_rule": "rule"}


def settings(params: dict) -> str:
    return " ".join(f"{SHORT.get(k, k)}={v}" for k, v in params.items()
                    if not (k == "dropout" and v == 0) and not (k == "update_rule" and v == "sgd"))


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    models = parse_models(args.models)
    dataset = choose_dataset(args)
    params = hyperparameters(args, models, dataset)
    bk = _cli.choose_backend(args.backend)
    progress = Progress(quiet=args.quiet)
    if args.download:
        download_cifar10.download(args)
    started = time.perf_counter()
    data = _datasets.load_dataset(dataset, bk, dtype=args.dtype, data_dir=args.data_dir, num_train=args.num_train,
                                  num_val=args.num_val, num_test=args.num_test)
    run_dir = _runs.make_run_dir(args.out, f"{dataset}-{'+'.join(models)}")
    device = bk.device_name
    results, rows = {}, []
    for model in progress(models, desc="models", unit="model", leave=False) if len(models) > 1 else models:
        fit = _models.fit(model, data, bk, params[model], seed=args.seed, dtype=args.dtype, progress=progress)
        files = _models.save(fit, data, bk, run_dir)
        results[model] = {**fit.summary(), "files": files, "history": fit.history}
        rows.append({**fit.summary(), "backend": bk.label, "device": device, "settings": settings(fit.params)})
    report = {
        "command": " ".join(["train.py", *(argv if argv is not None else sys.argv[1:])]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": data.describe(),
        "backend": bk.label,
        "device": device,
        "seed": args.seed,
        "dtype": args.dtype,
        "total_s": round(time.perf_counter() - started, 3),
        "python": platform.python_version(),
        "run_dir": str(run_dir),
        "models": results,
    }
    _runs.write_json(run_dir / "results.json", report)
    if args.json:
        import json

        print(json.dumps({k: v for k, v in report.items()}, indent=2))
    else:
        sizes = data.sizes()
        print(f"{dataset}: {sizes['train']} train / {sizes['val']} val / {sizes['test']} test, "
              f"{data.num_features} features, {data.num_classes} classes; seed {args.seed}, {args.dtype}")
        print(_runs.format_table(rows, COLUMNS))
        print(f"total {report['total_s']:.1f} s; run folder: {run_dir}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
