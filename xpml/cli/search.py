"""Random hyperparameter search as the notes teach it: log-uniform ranges, coarse then fine.

    xpml search                      # the two-layer net on the digits
    xpml search softmax --trials 30 --fine-trials 10
    xpml search twolayer --lr-range 1e-2 1 --hidden-range 32 256 --backend cupy
    xpml search knn                  # k, on a log scale

The coarse stage samples ``--trials`` settings from wide ranges and trains each for a fraction of
the iterations; the fine stage samples ``--fine-trials`` settings from the span of the best
``--top`` coarse ones and trains them fully. Prints all trials ranked by validation accuracy,
plots validation accuracy over the searched ranges, and keeps the best model (checkpoint,
pictures, test accuracy) in the run folder.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from . import _cli, _datasets, _models, _runs

# What is searched per model: key -> (flag, integer?). All on a log scale, as the notes advise for
# scale parameters (learning rate, regularization) and sizes.
SEARCHED = {
    "knn": {"k": ("--k-range", True)},
    "svm": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
    "softmax": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
    "twolayer": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False),
                 "hidden_size": ("--hidden-range", True)},
    "fc": {"learning_rate": ("--lr-range", False), "reg": ("--reg-range", False)},
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


def sample(rng, ranges: dict, integers: set) -> dict:
    """One setting: each value log-uniform in its range (rounded for integers)."""
    out = {}
    for key, (lo, hi) in ranges.items():
        value = float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))
        out[key] = int(round(value)) if key in integers else float(f"{value:.3g}")
    return out


def fresh_sample(rng, ranges: dict, integers: set, seen: set, *, tries: int = 50) -> dict | None:
    """A setting not tried yet in this stage, or None when ``tries`` draws found none."""
    for _ in range(tries):
        setting = sample(rng, ranges, integers)
        key = tuple(sorted(setting.items()))
        if key not in seen:
            seen.add(key)
            return setting
    return None


def narrow(ranges: dict, best: list[dict], integers: set) -> dict:
    """The fine stage's ranges: the span of the best coarse settings, a quarter decade wider each way."""
    out = {}
    for key in ranges:
        values = [t["params"][key] for t in best]
        lo, hi = min(values) / 10**0.25, max(values) * 10**0.25
        if key in integers:
            lo, hi = max(1, math.floor(lo)), max(1, math.ceil(hi))
        out[key] = (lo, hi)
    return out


def at_edge(value: float, lo: float, hi: float, *, integer: bool = False) -> bool:
    """Whether ``value`` lies in the outer tenth (in log scale) of [lo, hi], at an end that could move
    (an integer range cannot go below 1)."""
    if hi <= lo:
        return False
    pos = (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return (pos < 0.1 and not (integer and lo <= 1)) or pos > 0.9


def _range_type(text: str) -> float:
    return _cli.positive(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _cli.ArgumentParser(
        prog="xpml search", description=__doc__.split("\n\n")[0], epilog=_models.defaults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", default="twolayer", choices=_models.MODELS,
                        help="the model to tune (default: twolayer)")
    s = parser.add_argument_group("search")
    s.add_argument("--trials", type=_cli.count, default=12, metavar="N", help="coarse trials (default: 12)")
    s.add_argument("--fine-trials", type=int, default=8, metavar="N",
                   help="fine trials; 0 skips the fine stage (default: 8)")
    s.add_argument("--top", type=_cli.count, default=3, metavar="N",
                   help="coarse trials whose span the fine stage searches (default: 3)")
    s.add_argument("--coarse-fraction", type=_cli.fraction, default=0.25, metavar="F",
                   help="share of --num-iters a coarse trial trains for (default: 0.25)")
    for flag, text in RANGE_FLAGS.items():
        s.add_argument(flag, nargs=2, type=_range_type, metavar=("LO", "HI"),
                       help=f"coarse range of the {text} (default: around the model's default)")
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


def _rank_key(trial: dict) -> tuple:
    # Ties go to fine trials: they are fully trained, coarse ones are not.
    return trial["val_acc"], trial["stage"] == "fine"


def run_stages(args, model, base, ranges, integers, data, bk, progress):
    """The coarse stage, then the fine one over the span of the best coarse trials.

    Returns the trials (dicts, in the order run), the best :class:`_models.Fit` (the first of the
    ranking) and the ranges each stage sampled from.
    """
    rng = np.random.default_rng(args.seed)
    trials, best, best_key, stage_ranges = [], None, None, {}
    stages = [("coarse", args.trials)] + ([("fine", args.fine_trials)] if args.fine_trials else [])
    for stage, count in stages:
        if stage == "coarse":
            stage_range, iters = ranges, base.get("num_iters")
            short = {"num_iters": max(1, round(iters * args.coarse_fraction))} if iters else {}
        else:
            stage_range = narrow(ranges, sorted(trials, key=_rank_key, reverse=True)[: args.top], integers)
            short = {}
        stage_ranges[stage] = stage_range
        seen = set()
        bar = progress(range(count), desc=f"search {stage}", unit="trial")
        for _ in bar:
            setting = fresh_sample(rng, stage_range, integers, seen)
            if setting is None:  # a small integer range (k) has no untried value left
                break
            params = {**base, **setting, **short}
            fit = _models.fit(model, data, bk, params, seed=args.seed, dtype=args.dtype, progress=progress, test=False)
            trials.append({"stage": stage, "params": setting, "val_acc": fit.val_acc, "train_s": round(fit.train_s, 4),
                           "final_loss": fit.loss[-1] if fit.loss else None, "hyperparameters": params})
            if best is None or _rank_key(trials[-1]) > best_key:  # only the best model is kept
                best, best_key = fit, _rank_key(trials[-1])
            bar.set_postfix_str(f"best val acc {best.val_acc:.3f}")
    return trials, best, stage_ranges


COLUMNS_END = [("val_acc", "val acc", ".3f"), ("train_s", "train s", ".2f")]


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.fine_trials < 0:
        raise _cli.UsageError(f"--fine-trials must be >= 0, got {args.fine_trials}")
    model = args.model
    dataset = _datasets.choose_dataset(args)
    base = _models.hyperparameters(args, [model], dataset)[model]
    for key in SEARCHED[model]:
        if getattr(args, key, None) is not None:
            flag = next(f for f, k, *_ in _models.HYPER_FLAGS if k == key)
            raise _cli.UsageError(f"{flag} is searched; give its range instead")
    ranges, integers = coarse_ranges(args, model, base)
    if args.top > args.trials:
        raise _cli.UsageError(f"--top {args.top} is more than the {args.trials} coarse trials")
    with _runs.start(args, dataset, f"search-{dataset}-{model}") as run:
        data, bk, run_dir = run.data, run.bk, run.run_dir
        trials, best, stage_ranges = run_stages(args, model, base, ranges, integers, data, bk, run.progress)
        ranked = sorted(trials, key=_rank_key, reverse=True)  # stable: earlier trials first among equals
        # The best model's test accuracy is measured once, after the search has chosen it.
        best.test_acc = _models.evaluate(best, data, "test")
        files = _models.save(best, data, bk, run_dir, prefix=f"best_{model}")
        files["search"] = f"search_{model}.png"
        _runs.plot_search(run_dir / files["search"], trials, list(SEARCHED[model]), log_params=set(SEARCHED[model]),
                          title=f"{_models.TITLES[model]} on {dataset}: random search")
    warnings = [f"the best {k} ({best.params[k]:g}) is at the edge of the coarse range {lo:g}..{hi:g}: "
                f"widen it (--{SEARCHED[model][k][0][2:]}) and search again"
                for k, (lo, hi) in ranges.items() if at_edge(best.params[k], lo, hi, integer=k in integers)]
    report = run.report("search.py", argv)
    report |= {"model": model, "ranges": {s: {k: list(v) for k, v in r.items()} for s, r in stage_ranges.items()},
               "trials": ranked, "best": {**best.summary(), "files": files}, "warnings": warnings}
    _runs.write_json(run_dir / "results.json", report)
    if args.json:
        _runs.print_json(report, drop=("history",))
        return 0
    print(_runs.headline(data, args))
    for stage, r in stage_ranges.items():
        print(f"{stage} ranges: " + ", ".join(f"{k} {lo:.3g}..{hi:.3g}" for k, (lo, hi) in r.items()))
    rows = [{"rank": i + 1, "stage": t["stage"], **t["params"], "val_acc": t["val_acc"], "train_s": t["train_s"]}
            for i, t in enumerate(ranked)]
    columns = [("rank", "rank"), ("stage", "stage")]
    columns += [(k, _models.SHORT.get(k, k), "d" if k in integers else ".3g") for k in SEARCHED[model]]
    print(_runs.format_table(rows, columns + COLUMNS_END))
    print(f"best: {_models.settings(best.params)} on {bk.label} ({bk.device_name}): "
          f"val acc {best.val_acc:.3f}, test acc {best.test_acc:.3f}")
    for w in warnings:
        print(f"note: {w}")
    print(f"total {report['total_s']:.1f} s; run folder: {run_dir}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
