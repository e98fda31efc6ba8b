"""Train kNN, a linear SVM, softmax, a two-layer and a fully connected net, on the CPU or a CUDA GPU, from one command.

    xpml train                          # all five on the digits, in well under a minute
    xpml train svm softmax --seed 3     # some of them
    xpml train twolayer --hidden-size 200 --learning-rate 0.2 --backend cupy
    xpml train fc --hidden-dims 100,100 --normalization batchnorm --dropout-keep 0.8
    xpml train convnet --architecture "CONV3-32 BN CONV3-32 BN POOL2 FC-10"   # not part of all: slower
    xpml train --dataset cifar10 --download      # fetch CIFAR-10 once, then train
    xpml train --dataset spiral                  # the notes' toy spiral
    xpml train fc --init-from fc.npz --freeze W1,b1   # fine-tune a checkpoint (new head if the classes differ)

Prints a table (model, backend, device, validation and test accuracy, time) and writes a run
folder: results.json, loss and accuracy curves, the learned weights as images and a checkpoint
per model. A model whose loss stops being finite is marked "diverged at it N" in the table and
recorded with ``"diverged": true`` and ``"diverged_at": N`` (its NaN values as null): the run
goes on and nothing is lost. Hyperparameters not given take per-model defaults for the dataset (``--help`` lists
them). The same seed on the same backend gives the same results.
"""

from __future__ import annotations

import argparse
import sys

from . import _cli, _datasets, _memory, _models, _runs


def build_parser() -> argparse.ArgumentParser:
    parser = _cli.ArgumentParser(
        prog="xpml train", description=__doc__.split("\n\n")[0], epilog=_models.defaults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"any of {', '.join(_models.CHOICES)}, or all (default: all: {', '.join(_models.MODELS)})")
    _datasets.add_data_arguments(parser)
    _models.add_hyperparameter_arguments(parser)
    _models.add_finetune_arguments(parser)
    _cli.add_common_arguments(parser)
    return parser


def parse_models(names: list[str]) -> list[str]:
    if not names or "all" in names:
        return list(_models.MODELS)
    unknown = [n for n in names if n not in _models.CHOICES]
    if unknown:
        raise _cli.UsageError(f"unknown model {unknown[0]!r}; choose from: {', '.join(_models.CHOICES)} or all")
    return list(dict.fromkeys(names))


COLUMNS = [("model", "model"), ("backend", "backend"), ("device", "device"), ("val_acc", "val acc", ".3f"),
           ("test_acc", "test acc", ".3f"), ("train_s", "train s", ".2f"), ("predict_s", "predict s", ".2f"),
           ("settings", "settings")]


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    models = parse_models(args.models)
    dataset = _datasets.choose_dataset(args)
    params = _models.hyperparameters(args, models, dataset)
    _models.finetune_settings(args, models, params)
    check = _memory.training_check(models, params, dataset, args)
    with _runs.start(args, dataset, f"{dataset}-{'+'.join(models)}", check=check) as run:
        results, rows = {}, []
        for model in run.progress(models, desc="models", unit="model") if len(models) > 1 else models:
            kept = run.folder.completed(model)  # trained by the interrupted run this one resumes
            if kept is not None:
                results[model], row = kept["result"], kept["row"]
                rows.append(row)
                continue
            fit = _models.fit(model, run.data, run.bk, params[model], seed=args.seed, dtype=args.dtype,
                              progress=run.progress)
            files = _models.save(fit, run.data, run.bk, run.run_dir)
            diverged = _runs.divergence_record(fit)
            results[model] = {**fit.summary(), **diverged, "files": files, "history": fit.history}
            rows.append({**fit.summary(), "backend": run.bk.label, "device": run.bk.device_name,
                         "settings": _models.settings(fit.params),
                         "note": _runs.divergence_note(diverged)})
            run.folder.complete(model, {"result": results[model], "row": rows[-1]}, files.values())
    report = run.report("train.py", argv)
    report["models"] = results
    run.finish(report)
    if args.json:
        _runs.print_json(report, drop=("history",))
    else:
        print(_runs.headline(run.data, args))
        print(_runs.format_table(rows, _runs.with_note_column(COLUMNS, rows)))
        print(f"total {report['total_s']:.1f} s; run folder: {run.run_dir}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
