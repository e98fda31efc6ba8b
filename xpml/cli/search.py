"""Random hyperparameter search as the notes teach it: log-uniform ranges, coarse then fine.

    xpml search                      # the two-layer net on the digits
    xpml search softmax --trials 30 --fine-trials 10
    xpml search twolayer --lr-range 1e-2 1 --hidden-range 32 256 --backend cupy
    xpml search knn                  # k, on a log scale
    xpml search convnet --architecture "CONV3-16 POOL2 FC-10"   # learning rate and reg of a ConvNet
    xpml search --trials 16 --scheduler local                          # trials on a Dask cluster here
    xpml search --scheduler tcp://10.0.0.5:8786 --gpus-per-trial 1     # or on a running one, a GPU each

The coarse stage samples ``--trials`` settings from wide ranges and trains each for a fraction of
the iterations; the fine stage samples ``--fine-trials`` settings from the span of the best
``--top`` coarse ones and trains them fully. Prints all trials ranked by validation accuracy
(diverged ones last), plots validation accuracy over the searched ranges, and keeps the best model
(checkpoint, pictures, test accuracy) in the run folder. ``results.json`` is rewritten as each
trial finishes, with ``"complete": false`` until the search is done; the run folder's ``INCOMPLETE``
marker stays until then, and ``--resume`` finishes an interrupted search without training again the
trials it completed (in this process; on a cluster every trial runs again).

With ``--scheduler`` the trials run as Dask tasks (see ``_cluster`` for the cluster and for how the
data reaches the workers) and the best setting is trained once more here for its checkpoint. The
same seed gives the same trials and the same results.json as in process, but for the fields
:func:`comparable` leaves out (times, the command, the run folder, the cluster).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass

from ..nets import search as nets_search
from . import _cli, _datasets, _memory, _models, _runs

# What is searched per model: key -> (flag, integer?). All on a log scale, as the notes advise for
# scale parameters (learning rate, regularization) and sizes.
SEARCHED = {
    "knn": {"k": ("--k-range", True)},
    "svm": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
    "softmax": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
    "twolayer": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False),
                 "hidden_size": ("--hidden-range", True)},
    "fc": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
    "convnet": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
}


RANGE_FLAGS = {"--lr-range": "learning rate", "--reg-range": "regularization strength",
               "--hidden-range": "hidden units", "--k-range": "k of knn"}


def default_range(key: str, default: float) -> tuple[float, float]:
    """A wide coarse range around the model's default on the dataset."""
    if key == "learning_rate":
        return default / 30, default * 30
    if key == "reg":
        return (default / 1e3, default * 1e2) if default > 0 else (1e-6, 1e-1)
    if key == "hidden_size":
        return max(8, default // 4), default * 4
    if key == "k":
        return 1, 50
    raise KeyError(key)


def _range_type(text: str) -> float:
    return _cli.positive(text)


_ADDRESS = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def scheduler_type(text: str) -> tuple:
    """``--scheduler``: ``("local", N or None)`` or ``("address", "tcp://HOST:PORT")``."""
    text = text.strip()
    if text == "local":
        return "local", None
    if text.startswith("local:"):
        return "local", _cli.count(text[len("local:"):])
    match = _ADDRESS.fullmatch(text)
    if match and 0 < int(match[2]) < 65536:
        return "address", text
    raise argparse.ArgumentTypeError(f"must be local, local:N or tcp://HOST:PORT, got {text!r}")


def require_dask() -> None:
    """A clear error, before any work, when Dask is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise _cli.UsageError("--scheduler runs the trials on Dask, which is not installed: "
                              "pip install 'xpml[dask]' (or pip install 'dask[distributed]')") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _cli.ArgumentParser(
        prog="xpml search", description=__doc__.split("\n\n")[0], epilog=_models.defaults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", default="twolayer", choices=_models.CHOICES,
                        help="the model to tune (default: twolayer)")
    s = parser.add_argument_group("search")
    s.add_argument("--trials", type=_cli.count, default=12, metavar="N", help="coarse trials (default: 12)")
    s.add_argument("--fine-trials", type=int, default=8, metavar="N",
                   help="fine trials; 0 skips the fine stage (default: 8)")
    s.add_argument("--top", type=_cli.count, default=3, metavar="N",
                   help="coarse trials whose span the fine stage searches (default: 3; all of them when fewer)")
    s.add_argument("--ensemble", type=_cli.natural, default=0, metavar="K",
                   help="also keep the best K models and report their average (twolayer, fc; default: 0, none)")
    s.add_argument("--coarse-fraction", type=_cli.fraction, default=0.25, metavar="F",
                   help="share of --num-iters a coarse trial trains for (default: 0.25)")
    for flag, text in RANGE_FLAGS.items():
        s.add_argument(flag, nargs=2, type=_range_type, metavar=("LO", "HI"),
                       help=f"coarse range of the {text} (default: around the model's default)")
    c = parser.add_argument_group("cluster (needs Dask: pip install 'xpml[dask]')")
    c.add_argument("--scheduler", type=scheduler_type, metavar="ADDRESS",
                   help="run the trials as Dask tasks: local (a cluster of this machine: one worker per GPU with "
                        "dask-cuda, else per CPU core), local:N (N workers) or tcp://HOST:PORT (a running scheduler); "
                        "default: in this process")
    c.add_argument("--gpus-per-trial", type=_cli.non_negative, default=0, metavar="G",
                   help="the GPU worker resource each trial asks for (with --scheduler; workers offer it with "
                        "--resources GPU=1; local does on a GPU); default: 0")
    _datasets.add_data_arguments(parser)
    _models.add_hyperparameter_arguments(parser)
    _cli.add_common_arguments(parser)
    return parser


def coarse_ranges(args, model: str, base: dict) -> tuple[dict, set]:
    ranges, integers = {}, set()
    for key, (flag, integer) in SEARCHED[model].items():
        given = getattr(args, flag[2:].replace("-", "_"))
        lo, hi = given if given is not None else default_range(key, base[key])
        if lo > hi:
            raise _cli.UsageError(f"{flag} {lo:g} {hi:g}: the low end is above the high end")
        if integer:
            lo, hi = max(1, math.floor(lo)), max(1, math.ceil(hi))
            integers.add(key)
        ranges[key] = (lo, hi)
    searched_flags = {flag for flag, _ in SEARCHED[model].values()}
    for flag in RANGE_FLAGS:
        if getattr(args, flag[2:].replace("-", "_")) is not None and flag not in searched_flags:
            raise _cli.UsageError(f"{flag} does not apply to {model}, which searches {', '.join(SEARCHED[model])}")
    return ranges, integers


# ---- one trial, here or on a Dask worker ------------------------------------------------------------

def run_trial(model: str, data, bk, params: dict, *, seed: int, dtype: str, progress=None):
    """Train ``model`` with ``params``; return the :class:`_models.Fit` and the trial's results for
    :func:`xpml.nets.search.random_search` (a diverged trial is found from its loss history)."""
    fit_ = _models.fit(model, data, bk, params, seed=seed, dtype=dtype, progress=progress, test=False)
    return fit_, {"val_acc": fit_.val_acc, "train_s": round(fit_.train_s, 4),
                  "final_loss": fit_.loss[-1] if fit_.loss else None, "hyperparameters": params,
                  "diverged_at": nets_search.diverged_at(fit_.loss)}


@dataclass(frozen=True)
class ClusterTrial:
    """A trial as a Dask task: the data is the worker's own copy (``_cluster.WorkerData``)."""

    plugin: str  # the name of the search's WorkerData
    model: str
    base: dict
    seed: int
    dtype: str

    def __call__(self, given: dict) -> dict:
        from ._cluster import worker_data

        data, bk, threads = worker_data(self.plugin)
        with _cli.cpu_threads(threads):
            return run_trial(self.model, data, bk, {**self.base, **given}, seed=self.seed, dtype=self.dtype)[1]


def _worker_spec(args, dataset: str, threads, workers: int, local: bool) -> dict:
    if threads is None and local:  # a CIFAR-10 trial per core, not every core per trial
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    return {"dataset": dataset, "backend": args.backend or os.environ.get("XPML_BACKEND"), "dtype": args.dtype,
            "data_dir": _datasets.cifar10_root(args.data_dir) if dataset == "cifar10" else None,
            "num_train": args.num_train, "num_val": args.num_val, "num_test": args.num_test, "threads": threads}


@contextlib.contextmanager
def _trials(args, run, model: str, base: dict, dataset: str, kept: dict):
    """The objective and where it runs: ``(objective, client, resources, scheduler record)``.

    In this process the objective keeps the last trial's model in ``kept["last"]``, so the best one
    need not be trained again; on a cluster the models stay on the workers.
    """
    if args.scheduler is None:
        def objective(given):
            # The same seed draws the same settings: a trial the interrupted run this one resumes
            # finished is taken from its record instead of trained again.
            key = "trial " + json.dumps(_runs.jsonable(given), sort_keys=True)
            done = run.folder.completed(key)
            if done is not None and not args.ensemble:
                # (an ensemble needs the trained nets, so with --ensemble a finished trial trains
                # again: the same seed gives the same net)
                return done
            kept["last"], out = run_trial(model, run.data, run.bk, {**base, **given}, seed=args.seed,
                                          dtype=args.dtype, progress=run.progress)
            run.folder.complete(key, out, ())
            return {**out, "model": kept["last"].estimator} if args.ensemble else out

        yield objective, None, None, None
        return
    from . import _cluster

    t0 = time.perf_counter()
    with _cluster.connect(args.scheduler, gpus_per_trial=args.gpus_per_trial) as (client, record):
        record |= {"gpus_per_trial": args.gpus_per_trial, "start_s": round(time.perf_counter() - t0, 3)}
        spec = _worker_spec(args, dataset, run.threads, record["workers"], args.scheduler[0] == "local")
        with _cluster.share_data(client, spec) as name:
            resources = {"GPU": args.gpus_per_trial} if args.gpus_per_trial else None
            yield ClusterTrial(name, model, base, args.seed, args.dtype), client, resources, record


# ---- results --------------------------------------------------------------------------------------

# What differs between two runs of one search (same flags, same seed), in this process or on a
# cluster: when it ran and for how long, the command, and where it ran and wrote. Every other
# field of results.json is the same, trial for trial (:func:`comparable`).
RUN_SPECIFIC = ("command", "created", "total_s", "search_s", "run_dir", "scheduler")
TIMINGS = ("train_s", "predict_s")


def comparable(report: dict) -> dict:
    """``report`` (results.json) without :data:`RUN_SPECIFIC` and without the :data:`TIMINGS` of its
    trials and best model: what two runs of the same search must agree on."""
    out = {k: v for k, v in report.items() if k not in RUN_SPECIFIC}
    out["trials"] = [{k: v for k, v in t.items() if k not in TIMINGS} for t in report.get("trials", [])]
    if report.get("best"):
        out["best"] = {k: v for k, v in report["best"].items() if k not in TIMINGS}
    return out


def _report(run, argv, model: str, result, **fields) -> dict:
    report = run.report("search.py", argv)
    report |= {"model": model, "complete": result.complete,
               "ranges": {s: {k: list(v) for k, v in r.items()} for s, r in result.ranges.items()},
               "trials": result.ranked, "best": None, "warnings": list(result.notes), **fields}
    return nets_search.finite_or_none(report)


def _best_fit(args, run, model, best: dict, kept: dict, progress):
    """The best trial's model: kept from the run in this process, else trained here once more."""
    if kept.get("trial") == best["trial"]:
        return kept["fit"], None
    fit_ = _models.fit(model, run.data, run.bk, best["hyperparameters"], seed=args.seed, dtype=args.dtype,
                       progress=progress, test=False)
    note = None
    if fit_.val_acc != best["val_acc"]:
        note = (f"the best setting, trained again here on {run.bk.label}, scores val acc {fit_.val_acc:.4g} "
                f"where its trial scored {best['val_acc']:.4g} (another backend or device on the worker)")
    return fit_, note


def _save_ensemble(result, data, run_dir, model: str) -> dict:
    """Save the search's ensemble, one checkpoint per member (``nets.Ensemble.from_checkpoints``
    loads the list back); return its record for results.json."""
    from ..nets import save_model

    records = {t["trial"]: t for t in result.trials}
    files = []
    for rank_, (trial, member) in enumerate(zip(result.ensemble_trials, result.ensemble.models, strict=True), 1):
        files.append(f"ensemble_{model}_{rank_}.npz")
        save_model(run_dir / files[-1], member, hyperparams=records[trial]["hyperparameters"],
                   arrays={"mean": data.extra["mean"]})
    return {"trials": result.ensemble_trials, "val_acc": result.ensemble_val_acc,
            "test_acc": _models.accuracy(result.ensemble.predict(data.X_test), data.y_test), "files": files}


COLUMNS_END = [("val_acc", "val acc", ".3f"), ("train_s", "train s", ".2f")]


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.fine_trials < 0:
        raise _cli.UsageError(f"--fine-trials must be >= 0, got {args.fine_trials}")
    if args.gpus_per_trial and args.scheduler is None:
        raise _cli.UsageError("--gpus-per-trial is what a trial asks of a Dask worker: it needs --scheduler")
    if args.scheduler is not None:
        require_dask()
    model = args.model
    if args.ensemble and model not in ("twolayer", "fc"):
        raise _cli.UsageError(f"--ensemble averages class probabilities of nets: {model} has none to average; "
                              "search twolayer or fc")
    if args.ensemble and args.scheduler is not None:
        raise _cli.UsageError("--ensemble keeps the models in this process: leave out --scheduler")
    dataset = _datasets.choose_dataset(args)
    base = _models.hyperparameters(args, [model], dataset)[model]
    for key in SEARCHED[model]:
        if getattr(args, key, None) is not None:
            flag = next(f for f, k, *_ in _models.HYPER_FLAGS if k == key)
            raise _cli.UsageError(f"{flag} is searched; give its range instead")
    ranges, integers = coarse_ranges(args, model, base)
    iters = base.get("num_iters")
    short = {"num_iters": max(1, round(iters * args.coarse_fraction))} if iters else None
    # The largest net the search may build must fit, before any data is read.
    largest = {**base, **{k: hi for k, (_, hi) in ranges.items() if k in integers}}
    check = _memory.training_check([model], {model: largest}, dataset, args)
    with _runs.start(args, dataset, f"search-{dataset}-{model}", check=check) as run:
        data, bk, run_dir = run.data, run.bk, run.run_dir
        kept, fields = {}, {"scheduler": None, "search_s": None}

        def on_trial(result, trial):
            # Keep the best model seen in this process, and save the search so far as it goes.
            last = kept.pop("last", None)
            if last is not None and not trial["diverged"] and (
                    "fit" not in kept or nets_search.rank_key(trial) > nets_search.rank_key(kept["record"])):
                kept.update(fit=last, trial=trial["trial"], record=trial)
            _runs.write_json(run_dir / "results.json", _report(run, argv, model, result, **fields))

        with _trials(args, run, model, base, dataset, kept) as (objective, client, resources, scheduler):
            fields["scheduler"] = scheduler
            t0 = time.perf_counter()
            try:
                result = nets_search.random_search(
                    objective, ranges, trials=args.trials, fine_trials=args.fine_trials, top=args.top,
                    integers=integers, coarse=short, seed=args.seed, client=client, resources=resources,
                    on_trial=on_trial, progress=functools.partial(run.progress, unit="trial"),
                    ensemble=args.ensemble, validation=(data.X_val, data.y_val) if args.ensemble else None)
            except nets_search.SearchIncomplete as exc:
                fields["search_s"] = round(time.perf_counter() - t0, 3)
                _runs.write_json(run_dir / "results.json", _report(run, argv, model, exc.result, **fields))
                raise _cli.UsageError(f"{exc}, and are kept in {run_dir / 'results.json'}, marked incomplete") from None
            fields["search_s"] = round(time.perf_counter() - t0, 3)
        best, warnings, plots = result.best, [], {"search": f"search_{model}.png"}
        if best is None:
            warnings.append("every trial diverged, so no model is kept: search lower learning rates (--lr-range)")
            summary = None
        else:
            fit_, note = _best_fit(args, run, model, best, kept, run.progress)
            warnings += [note] if note else []
            # The best model's test accuracy is measured once, after the search has chosen it.
            fit_.test_acc = _models.evaluate(fit_, data, "test")
            files = _models.save(fit_, data, bk, run_dir, prefix=f"best_{model}") | plots
            summary = {"trial": best["trial"], **fit_.summary(), "files": files}
        if result.ensemble is not None:
            fields["ensemble"] = _save_ensemble(result, data, run_dir, model)
        plotted = [t for t in result.trials if t["val_acc"] is not None]
        _runs.plot_search(run_dir / plots["search"], plotted, list(SEARCHED[model]), log_params=set(SEARCHED[model]),
                          title=f"{_models.TITLES[model]} on {dataset}: random search")
    warnings += [f"the best {k} ({best['params'][k]:g}) is at the edge of the coarse range {lo:g}..{hi:g}: "
                 f"widen it ({SEARCHED[model][k][0]}) and search again"
                 for k, (lo, hi) in ranges.items() if k in result.at_edges()]
    report = _report(run, argv, model, result, **fields)
    report |= {"best": summary, "warnings": report["warnings"] + warnings}
    if summary is None:
        report["files"] = plots
    report = nets_search.finite_or_none(report)
    run.finish(report)  # results.json complete: the folder's marker and lock go
    if args.json:
        _runs.print_json(report, drop=("history",))
        return 0
    print(_runs.headline(data, args))
    if scheduler:
        print(f"trials on Dask: {scheduler['cluster']} at {scheduler['address']}, {scheduler['workers']} workers")
    for stage, r in result.ranges.items():
        print(f"{stage} ranges: " + ", ".join(f"{k} {lo:.3g}..{hi:.3g}" for k, (lo, hi) in r.items()))
    ranked = report["trials"]
    rows = [{"rank": i + 1, "stage": t["stage"], **t["params"], "val_acc": t["val_acc"], "train_s": t["train_s"],
             "diverged": (f"at {t['diverged_at']}" if t["diverged_at"] is not None else "yes") if t["diverged"] else ""}
            for i, t in enumerate(ranked)]
    columns = [("rank", "rank"), ("stage", "stage")]
    columns += [(k, _models.SHORT.get(k, k), "d" if k in integers else ".3g") for k in SEARCHED[model]]
    columns += COLUMNS_END + ([("diverged", "diverged")] if any(t["diverged"] for t in ranked) else [])
    print(_runs.format_table(rows, columns))
    if summary is not None:
        print(f"best: {_models.settings(summary['hyperparameters'])} on {bk.label} ({bk.device_name}): "
              f"val acc {summary['val_acc']:.3f}, test acc {summary['test_acc']:.3f}")
    if report.get("ensemble"):
        ens = report["ensemble"]
        print(f"ensemble of the top {len(ens['trials'])} (trials {', '.join(map(str, ens['trials']))}): val acc "
              f"{ens['val_acc']:.3f}, test acc {ens['test_acc']:.3f} (best alone {summary['val_acc']:.3f}, "
              f"{summary['test_acc']:.3f}); saved as {', '.join(ens['files'])}")
    for w in report["warnings"]:
        print(f"note: {w}")
    print(f"total {report['total_s']:.1f} s; run folder: {run_dir}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
