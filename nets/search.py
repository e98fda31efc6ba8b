"""Random hyperparameter search as the course notes teach it: log-uniform ranges, coarse then fine.

A *range* maps each searched hyperparameter to ``(lo, hi)``; a *setting* maps it to one value.
Values are drawn log-uniformly (the notes' advice for scale parameters such as the learning rate
and the regularization strength, and for sizes), from a :class:`backend.Generator`, so a seed
gives the same settings on every machine; *choices* (an update rule, a preprocessing) are drawn
uniformly from a list. The *coarse* stage tries settings from the wide ranges,
usually with a shorter training; the *fine* stage samples from the span of the best ``top`` coarse
trials, a quarter decade wider each way, and trains fully.

    from xpml.nets import TwoLayerNet, random_search, diverged_at

    def objective(setting):
        net = TwoLayerNet(D, setting["hidden_size"], C, seed=0)
        stats = net.train(X, y, X_val, y_val, learning_rate=setting["learning_rate"], reg=1e-4,
                          num_iters=setting.get("num_iters", 1000))
        return {"val_acc": stats["val_acc_history"][-1], "diverged_at": diverged_at(stats["loss_history"])}

    result = random_search(objective, {"learning_rate": (1e-3, 1.0), "hidden_size": (32, 512)},
                           integers={"hidden_size"}, trials=20, fine_trials=10, coarse={"num_iters": 250})
    result.best["params"], result.best["val_acc"]

With ``client=`` (a ``dask.distributed.Client``) the trials of a stage run as Dask tasks and are
gathered as they finish; the same seed gives the same trials and the same results either way.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass, field

from .. import backend
from ..backend.errors import InputError, InputTypeError

__all__ = [
    "SearchIncomplete",
    "SearchResult",
    "at_edge",
    "check_choices",
    "check_ranges",
    "diverged_at",
    "finite_or_none",
    "narrow",
    "narrow_choices",
    "random_search",
    "rank",
    "rank_key",
    "sample",
    "sample_settings",
]

STAGES = ("coarse", "fine")
# Keys of a trial record that the search itself fills in; an objective's result may not use them
# (except "diverged_at", which it may give when it knows better than the loss history).
_RESERVED = ("trial", "stage", "params", "diverged")


# ---- sampling ------------------------------------------------------------------------------------

def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_ranges(ranges: Mapping, integers=(), /) -> tuple[dict, frozenset]:
    """Validated ranges: ``{key: (lo, hi)}`` with ``0 < lo <= hi`` finite, integer ones widened to
    whole numbers >= 1; returns ``(ranges, integers)``.

    Raises ValueError naming the key for a reversed, non-positive or non-finite range, and for an
    integer key that is not searched.

    Examples
    --------
    >>> from xpml.nets.search import check_ranges
    >>> check_ranges({"lr": (1e-3, 1e-1), "hidden": (10.5, 100)}, ["hidden"])
    ({'lr': (0.001, 0.1), 'hidden': (10, 100)}, frozenset({'hidden'}))
    >>> check_ranges({"lr": (1e-1, 1e-3)})
    Traceback (most recent call last):
    ...
    xpml.backend.errors.InputError: the range of 'lr' is (0.1, 0.001): the low end is above the high end
    """
    if not isinstance(ranges, Mapping):
        raise InputError(f"ranges must map each searched hyperparameter to (lo, hi), got {ranges!r}")
    integers = frozenset(integers)
    unknown = sorted(integers - set(ranges))
    if unknown:
        raise InputError(f"integers names {', '.join(map(repr, unknown))}, which ranges does not search")
    out = {}
    for key, bounds in ranges.items():
        try:
            lo, hi = bounds
        except (TypeError, ValueError):
            raise InputError(f"the range of {key!r} must be (lo, hi), got {bounds!r}") from None
        if not (_is_number(lo) and _is_number(hi) and math.isfinite(lo) and math.isfinite(hi)):
            raise InputError(f"the range of {key!r} must be two finite numbers, got {bounds!r}")
        if lo <= 0:
            raise InputError(f"the range of {key!r} is sampled on a log scale: its low end must be > 0, got {lo!r}")
        if lo > hi:
            raise InputError(f"the range of {key!r} is ({lo!r}, {hi!r}): the low end is above the high end")
        if key in integers:
            lo, hi = max(1, math.floor(lo)), max(1, math.ceil(hi))
        out[key] = (lo, hi)
    return out, integers


def check_choices(choices: Mapping | None, ranges: Mapping | None = None, /) -> dict:
    """Validated choices: ``{key: [value, ...]}``, each a non-empty list (or tuple: the order is part
    of the draw), no key also in ``ranges``.

    Examples
    --------
    >>> from xpml.nets.search import check_choices
    >>> check_choices({"activation": ["relu", "tanh"]})
    {'activation': ['relu', 'tanh']}
    >>> check_choices({"lr": [0.1]}, {"lr": (1e-3, 1e-1)})
    Traceback (most recent call last):
    ...
    xpml.backend.errors.InputError: 'lr' is both in ranges and in choices: give it in one of them
    """
    if choices is None:
        return {}
    if not isinstance(choices, Mapping):
        raise InputError(f"choices must map each chosen hyperparameter to a list of values, got {choices!r}")
    out = {}
    for key, values in choices.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InputError(f"the choices of {key!r} must be a non-empty list of values, got {values!r}")
        if key in (ranges or {}):
            raise InputError(f"{key!r} is both in ranges and in choices: give it in one of them")
        out[key] = list(values)
    return out


def _round(value: float, digits: int | None) -> float:
    # A short value reads well in a table and reproduces the trial exactly when typed back in.
    return float(f"{value:.{digits}g}") if digits is not None else value


def sample(gen: backend.Generator, ranges: Mapping, /, integers=(), *, choices: Mapping | None = None,
           digits: int | None = 3) -> dict:
    """One setting: each value log-uniform in its range, each choice uniform among its values.

    Parameters
    ----------
    gen : backend.Generator
        The seeded generator to draw from (one draw per key, in the order of ``ranges``).
    ranges : mapping
        ``{key: (lo, hi)}`` with ``0 < lo <= hi`` (see :func:`check_ranges`).
    integers : collection of keys
        Keys whose values are rounded to the nearest integer.
    choices : mapping or None, keyword-only
        ``{key: [value, ...]}``: one of the values, each as likely (drawn after the ranges).
    digits : int or None, keyword-only
        Significant digits kept of the other values; None keeps every digit.

    Notes
    -----
    ``value = 10 ** u`` with ``u ~ U[log10 lo, log10 hi)``: every decade of the range gets the
    same share of the draws.

    Examples
    --------
    >>> from xpml import backend
    >>> from xpml.nets.search import sample
    >>> sample(backend.Generator(0), {"lr": (1e-4, 1e-1), "hidden": (10, 100)}, ["hidden"],
    ...        choices={"act": ["relu", "tanh"]})
    {'lr': 0.0018, 'hidden': 21, 'act': 'relu'}
    """
    out = {}
    for key, (lo, hi) in ranges.items():
        u = float(gen.uniform((), low=math.log10(lo), high=math.log10(hi), dtype="float64"))
        value = 10.0**u
        out[key] = int(round(value)) if key in integers else _round(value, digits)
    for key, values in (choices or {}).items():
        out[key] = values[int(gen.integers(0, len(values)))]
    return out


def sample_settings(gen: backend.Generator, ranges: Mapping, count: int, /, integers=(), *,
                    choices: Mapping | None = None, digits: int | None = 3, tries: int = 50) -> list[dict]:
    """``count`` distinct settings (see :func:`sample`), fewer when ``tries`` draws in a row find no
    new one (a small integer range such as k in 1..4 runs out).

    Examples
    --------
    >>> from xpml import backend
    >>> from xpml.nets.search import sample_settings
    >>> sample_settings(backend.Generator(0), {"k": (1, 4)}, 10, ["k"])  # only four distinct ones exist
    [{'k': 2}, {'k': 3}, {'k': 1}, {'k': 4}]
    """
    seen, out = set(), []
    for _ in range(count):
        for _ in range(tries):
            setting = sample(gen, ranges, integers, choices=choices, digits=digits)
            key = tuple(sorted((k, repr(v)) for k, v in setting.items()))
            if key not in seen:
                seen.add(key)
                out.append(setting)
                break
        else:
            break
    return out


def narrow(ranges: Mapping, settings: list[Mapping], /, integers=()) -> dict:
    """The fine stage's ranges: the span of ``settings`` (the best coarse ones), a quarter decade
    wider each way (integer ranges stay whole numbers >= 1).

    Examples
    --------
    >>> from xpml.nets.search import narrow
    >>> lo, hi = narrow({"lr": (1e-4, 1e-1)}, [{"lr": 1e-3}, {"lr": 4e-3}])["lr"]
    >>> round(lo, 6), round(hi, 5)  # the span of the best, a quarter decade wider each way
    (0.000562, 0.00711)
    """
    if not settings:
        raise InputError("narrow needs at least one setting to span")
    out = {}
    for key in ranges:
        values = [s[key] for s in settings]
        lo, hi = min(values) / 10**0.25, max(values) * 10**0.25
        if key in integers:
            lo, hi = max(1, math.floor(lo)), max(1, math.ceil(hi))
        out[key] = (lo, hi)
    return out


def narrow_choices(choices: Mapping, settings: list[Mapping], /) -> dict:
    """The fine stage's choices: the values ``settings`` (the best coarse ones) took, in the given order.

    Examples
    --------
    >>> from xpml.nets.search import narrow_choices
    >>> narrow_choices({"act": ["relu", "tanh", "sigmoid"]}, [{"act": "tanh"}, {"act": "relu"}])
    {'act': ['relu', 'tanh']}
    """
    return {key: [v for v in values if any(s[key] == v for s in settings)] for key, values in choices.items()}


def at_edge(value: float, lo: float, hi: float, *, integer: bool = False) -> bool:
    """Whether ``value`` lies in the outer tenth (in log scale) of [lo, hi], at an end that could move
    (an integer range cannot go below 1): the best value there says the range should be wider.

    Examples
    --------
    >>> from xpml.nets.search import at_edge
    >>> at_edge(0.1, 1e-4, 0.1), at_edge(0.003, 1e-4, 0.1)
    (True, False)
    >>> at_edge(1, 1, 10, integer=True)  # an integer range cannot go below 1
    False
    """
    if hi <= lo:
        return False
    pos = (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return (pos < 0.1 and not (integer and lo <= 1)) or pos > 0.9


# ---- results ---------------------------------------------------------------------------------------

def diverged_at(losses, /) -> int | None:
    """The iteration (index into ``losses``, a sequence of host numbers) of the first non-finite
    loss, or None when every loss is finite.

    Examples
    --------
    >>> from xpml.nets.search import diverged_at
    >>> diverged_at([2.3, 1.9, float("nan"), float("inf")]), diverged_at([1.0, 0.5])
    (2, None)
    """
    for i, value in enumerate(losses):
        if value is None or not math.isfinite(value):
            return i
    return None


def finite_or_none(obj, /):
    """``obj`` with every non-finite float (NaN, inf), at any depth of dicts, lists and tuples,
    replaced by None: JSON has no NaN, and a diverged trial must still be written.

    Examples
    --------
    >>> from xpml.nets.search import finite_or_none
    >>> finite_or_none({"loss": [1.0, float("nan")], "best": (float("inf"), 2)})
    {'loss': [1.0, None], 'best': [None, 2]}
    """
    if isinstance(obj, Mapping):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if _is_number(obj) and not isinstance(obj, numbers.Integral) and not math.isfinite(obj):
        return None
    return obj


def rank_key(trial: Mapping, /, score: str = "val_acc") -> tuple:
    """Sort key of a trial record, larger is better: trials that did not diverge first, then by
    ``score``, then fine before coarse (a fine trial is fully trained, a coarse one is not).

    Examples
    --------
    >>> from xpml.nets.search import rank_key
    >>> trials = [{"trial": 0, "stage": "coarse", "val_acc": 0.5, "diverged": False},
    ...           {"trial": 1, "stage": "coarse", "val_acc": None, "diverged": True},
    ...           {"trial": 2, "stage": "coarse", "val_acc": 0.7, "diverged": False}]
    >>> rank_key(trials[0])
    (True, 0.5, False)
    """
    value = trial.get(score)
    return (not trial.get("diverged", False), value if value is not None else -math.inf, trial["stage"] == "fine")


def rank(trials: list[Mapping], /, score: str = "val_acc") -> list:
    """``trials`` best first (:func:`rank_key`); among equals, the one drawn first comes first.

    Examples
    --------
    >>> from xpml.nets.search import rank
    >>> trials = [{"trial": 0, "stage": "coarse", "val_acc": 0.5, "diverged": False},
    ...           {"trial": 1, "stage": "coarse", "val_acc": None, "diverged": True},
    ...           {"trial": 2, "stage": "coarse", "val_acc": 0.7, "diverged": False}]
    >>> [trial["trial"] for trial in rank(trials)]
    [2, 0, 1]
    """
    in_order = sorted(trials, key=lambda t: t.get("trial", 0))
    return sorted(in_order, key=lambda t: rank_key(t, score), reverse=True)  # a stable sort


@dataclass
class SearchResult:
    """What a search found.

    Attributes
    ----------
    trials : list of dict
        The finished trials in the order they were drawn. Each is ``{"trial": i, "stage":
        "coarse" or "fine", "params": setting, **objective's result, "diverged": bool,
        "diverged_at": iteration or None}``, with non-finite numbers as None.
    ranges : dict
        ``{stage: {key: (lo, hi)}}``: the ranges each stage sampled from.
    choices : dict
        ``{stage: {key: [value, ...]}}``: the choices each stage drew from (empty without choices).
    integers : frozenset
        The integer-valued keys.
    score : str
        The result key the trials are ranked by (larger is better).
    notes : list of str
        What the search changed or skipped, and why (a clamped ``top``, a stage cut short).
    complete : bool
        True once every stage has finished.
    planned : int
        Trials drawn so far (finished or not).
    ensemble : nets.Ensemble or None
        With ``random_search(..., ensemble=K)``: the models of the best K trials that did not
        diverge, best first, their probabilities averaged with equal weights; None otherwise (or
        when every trial diverged).
    ensemble_trials : list of int
        The trials (``"trial"`` numbers) whose models form :attr:`ensemble`, best first.
    ensemble_val_acc : float or None
        The ensemble's accuracy on the validation data, to read beside ``best["val_acc"]``.

    Examples
    --------
    >>> import math
    >>> from xpml.nets.search import random_search
    >>> def objective(setting):  # a made-up validation score, best at lr = 0.01
    ...     return 1 - abs(math.log10(setting["lr"]) + 2)
    >>> result = random_search(objective, {"lr": (1e-4, 1.0)}, trials=6, fine_trials=3, top=2, seed=0)
    >>> len(result.trials), result.planned, result.score
    (9, 9, 'val_acc')
    >>> round(result.best["val_acc"], 3), result.at_edges()
    (0.711, [])
    """

    trials: list = field(default_factory=list)
    ranges: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    integers: frozenset = frozenset()
    score: str = "val_acc"
    notes: list = field(default_factory=list)
    complete: bool = False
    planned: int = 0
    ensemble: object = field(default=None, repr=False)
    ensemble_trials: list = field(default_factory=list)
    ensemble_val_acc: float | None = None

    @property
    def ranked(self) -> list:
        """The trials, best first (diverged ones last)."""
        return rank(self.trials, self.score)

    @property
    def best(self) -> dict | None:
        """The best trial that did not diverge; None when every trial diverged."""
        ranked = self.ranked
        return ranked[0] if ranked and not ranked[0]["diverged"] else None

    def at_edges(self) -> list[str]:
        """Keys whose best value lies at an edge of its coarse range (:func:`at_edge`)."""
        best = self.best
        if best is None or "coarse" not in self.ranges:
            return []
        return [k for k, (lo, hi) in self.ranges["coarse"].items()
                if at_edge(best["params"][k], lo, hi, integer=k in self.integers)]


class SearchIncomplete(RuntimeError):
    """The search stopped before every trial finished (the Dask cluster went away, a worker kept
    dying). ``result`` holds the trials that did finish, with ``complete`` False.

    Examples
    --------
    >>> from xpml.nets.search import SearchIncomplete, SearchResult
    >>> error = SearchIncomplete("the cluster went away", SearchResult(planned=4))
    >>> isinstance(error, RuntimeError), error.result.complete
    (True, False)
    """

    def __init__(self, message: str, result: SearchResult):
        super().__init__(message)
        self.result = result


# ---- the search ----------------------------------------------------------------------------------

def _count(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def random_search(objective: Callable, ranges: Mapping, /, *, trials: int = 12, fine_trials: int = 0,
                  top: int = 3, integers=(), choices: Mapping | None = None, coarse: Mapping | None = None,
                  seed: int = 0, score: str = "val_acc",
                  digits: int | None = 3, client=None, resources: Mapping | None = None,
                  on_trial: Callable | None = None, progress: Callable | None = None, ensemble: int = 0,
                  validation: tuple | None = None) -> SearchResult:
    """Random search, coarse then fine, in this process or on a Dask cluster.

    Parameters
    ----------
    objective : callable
        ``objective(setting) -> result``: trains with the hyperparameters of ``setting`` (a dict)
        and returns the validation score (a number) or a dict of JSON-able results holding it under
        ``score``. A result may give ``"diverged_at"`` (the iteration whose loss was not finite,
        see :func:`diverged_at`); a trial whose score is not finite has diverged too. With a
        client it is pickled and run on the workers.
    ranges : mapping
        ``{key: (lo, hi)}``, sampled log-uniformly (:func:`check_ranges`, :func:`sample`).
    trials, fine_trials : int, keyword-only
        Settings tried in the coarse stage (>= 1) and in the fine stage (0 skips it).
    top : int, keyword-only
        The fine stage spans the best ``top`` coarse trials that did not diverge (all of them, with
        a note, when fewer finished).
    integers : collection of keys, keyword-only
        Keys with integer values (a hidden size, k).
    choices : mapping or None, keyword-only
        ``{key: [value, ...]}``: hyperparameters drawn uniformly from a list (an update rule); the
        fine stage draws from the values the best coarse trials took.
    coarse : mapping or None, keyword-only
        Values added to every coarse setting, a shorter training say (``{"num_iters": 300}``).
    seed : int, keyword-only
        Seeds the draws (:class:`backend.Generator`): a seed gives the same settings everywhere.
    score : str, keyword-only
        The result key to maximise.
    digits : int or None, keyword-only
        Significant digits kept of sampled floats (:func:`sample`).
    client : dask.distributed.Client or None, keyword-only
        Run each stage's trials as Dask tasks, gathered as they finish. A trial whose worker dies
        is run again on another worker by Dask; what already finished is kept.
    resources : mapping or None, keyword-only
        Dask worker resources each trial needs, ``{"GPU": 1}`` say (with ``client`` only). A
        cluster where no worker offers them is an error, not a wait.
    on_trial : callable or None, keyword-only
        ``on_trial(result, trial)``, called in this process after each trial finishes, with the
        :class:`SearchResult` so far (to save it as the search goes, say).
    progress : callable or None, keyword-only
        tqdm-like, ``progress(iterable, desc=...) -> iterable``: a bar over each stage's trials as
        they finish (``tqdm.tqdm`` itself, say); one with ``set_postfix_str`` shows the best score.
    ensemble : int, keyword-only
        K > 0 keeps the models of the best K trials (the notes' ensemble of a search's top models):
        the objective's result must then hold the trained model under ``"model"`` (one with
        ``predict_proba``; it is not kept in the trial's record), only K models are held at any
        time, and the result's :attr:`SearchResult.ensemble` averages them. 0 (default) keeps none.
    validation : (X_val, y_val), keyword-only
        With ``ensemble``: the validation data (N, D) and labels (N,) the ensemble's accuracy is
        measured on (:attr:`SearchResult.ensemble_val_acc`), on the models' backend.

    Returns
    -------
    SearchResult
        Every trial in the order drawn; ``ranked`` and ``best`` give the winners.

    Raises
    ------
    SearchIncomplete
        The cluster went away or killed a trial's workers too often; ``.result`` keeps the
        finished trials. An exception raised by ``objective`` is raised as it is, after the
        trials still running are cancelled.

    Notes
    -----
    Each stage's settings are drawn before its trials run, so the draws, and therefore the trials,
    do not depend on where or in which order the trials run. Trials are ranked by
    :func:`rank_key`: diverged ones last, then by ``score``, ties to the fine stage, then to the
    trial drawn first.

    Examples
    --------
    >>> import math
    >>> from xpml.nets.search import random_search
    >>> def objective(setting):  # a made-up validation score, best at lr = 0.01
    ...     return 1 - abs(math.log10(setting["lr"]) + 2)
    >>> result = random_search(objective, {"lr": (1e-4, 1.0)}, trials=6, fine_trials=3, top=2, seed=0)
    >>> [trial["stage"] for trial in result.trials].count("fine"), result.complete
    (3, True)
    >>> result.best["params"], result.best["stage"]
    ({'lr': 0.00514}, 'fine')
    >>> result.ranges["fine"]["lr"][0] > 1e-3  # the fine stage narrowed the range around the best
    True
    """
    if not callable(objective):
        raise InputTypeError(f"objective must be callable, got {type(objective).__name__}")
    ranges, integers = check_ranges(ranges, integers)
    choices = check_choices(choices, ranges)
    if not ranges and not choices:
        raise InputError("nothing to search: give ranges, {key: (lo, hi)}, or choices, {key: [value, ...]}")
    trials, fine_trials, top = _count("trials", trials, 1), _count("fine_trials", fine_trials, 0), _count("top", top, 1)
    if not isinstance(score, str):
        raise InputTypeError(f"score must be the name of a result key, got {score!r}")
    if coarse is not None and not isinstance(coarse, Mapping):
        raise InputTypeError(f"coarse must be a mapping of values added to coarse settings, got {coarse!r}")
    if resources and client is None:
        raise InputError("resources are Dask worker resources: they need a client")
    ensemble = _count("ensemble", ensemble, 0)
    if ensemble:
        _check_validation(validation)
    if client is not None:
        _check_client(client, resources)
    gen = backend.Generator(seed)
    result = SearchResult(integers=integers, score=score)
    kept = {}  # trial number -> (record, model): the best `ensemble` trials so far, no more
    for stage, count in (("coarse", trials), ("fine", fine_trials)):
        if count == 0:
            continue
        span = (ranges, choices) if stage == "coarse" else _fine_span(result, ranges, choices, top)
        if span is None:
            break
        stage_ranges, stage_choices = span
        result.ranges[stage] = stage_ranges
        if stage_choices:
            result.choices[stage] = stage_choices
        settings = sample_settings(gen, stage_ranges, count, integers, choices=stage_choices, digits=digits)
        if len(settings) < count:
            result.notes.append(f"the {stage} stage tried {len(settings)} settings, not {count}: "
                                "its ranges and choices hold no other values")
        first = result.planned
        result.planned += len(settings)
        extra = dict(coarse or {}) if stage == "coarse" else {}
        jobs = [(first + i, stage, s, {**s, **extra}) for i, s in enumerate(settings)]
        outcomes = _run_here(objective, jobs) if client is None else _run_on(client, objective, jobs, result, resources)
        with contextlib.closing(outcomes):  # on an error, the trials still running are cancelled at once
            bar = progress(_Sized(outcomes, len(jobs)), desc=f"search {stage}") if progress is not None else outcomes
            for job, out in bar:
                model, out = _take_model(out) if ensemble else (None, out)
                trial = _record(job, out, score)
                result.trials.append(trial)
                if model is not None and not trial["diverged"]:
                    kept[trial["trial"]] = (trial, model)
                    best = rank([record for record, _ in kept.values()], score)[:ensemble]
                    kept = {t["trial"]: kept[t["trial"]] for t in best}
                result.trials.sort(key=lambda t: t["trial"])
                if hasattr(bar, "set_postfix_str") and result.best is not None:
                    bar.set_postfix_str(f"best {score.replace('_', ' ')} {result.best[score]:.3f}")
                if on_trial is not None:
                    on_trial(result, trial)
    if ensemble:
        _form_ensemble(result, kept, ensemble, validation)
    result.complete = True
    return result


def _check_validation(validation) -> None:
    if validation is None:
        raise InputError("an ensemble's accuracy is measured on validation data: pass validation=(X_val, y_val)")
    if not isinstance(validation, tuple) or len(validation) != 2:
        raise InputTypeError(f"validation must be (X_val, y_val), got {type(validation).__name__}")


def _take_model(out) -> tuple:
    """``(model, the rest of out)``: the trained model an objective returned under ``"model"``."""
    if not isinstance(out, Mapping) or "model" not in out:
        raise InputError("with ensemble=K the objective's result must hold the trained model under 'model', "
                         "e.g. {'val_acc': acc, 'model': net}")
    out = dict(out)
    model = out.pop("model")
    if not callable(getattr(model, "predict_proba", None)):
        raise InputTypeError(f"an ensemble averages probabilities: the objective's 'model' ({type(model).__name__}) "
                        "has no predict_proba(X)")
    return model, out


def _form_ensemble(result: SearchResult, kept: dict, k: int, validation) -> None:
    from .ensemble import Ensemble
    from .metrics import accuracy

    ranked = rank([record for record, _ in kept.values()], result.score)
    if len(ranked) < k:
        result.notes.append(f"an ensemble of {len(ranked)}, not {k}: only {len(ranked)} trials did not diverge"
                            if ranked else "no ensemble: every trial diverged")
    if not ranked:
        return
    result.ensemble_trials = [t["trial"] for t in ranked]
    result.ensemble = Ensemble([kept[t][1] for t in result.ensemble_trials])
    X_val, y_val = validation
    result.ensemble_val_acc = float(accuracy(result.ensemble.predict(X_val), y_val))


def _fine_span(result: SearchResult, ranges: dict, choices: dict, top: int) -> tuple | None:
    coarse = [t for t in result.ranked if t["stage"] == "coarse"]
    fine_ok = [t for t in coarse if not t["diverged"]]
    if not fine_ok:
        result.notes.append(f"no fine stage: all {len(coarse)} coarse trials diverged")
        return None
    if top > len(fine_ok):
        n = len(fine_ok)
        which = ("coarse trials" if n > 1 else "coarse trial") + ("" if n == len(coarse) else " that did not diverge")
        result.notes.append(f"top {top} is more than the {n} {which}: the fine stage spans "
                            + (f"all {n}" if n > 1 else "that one"))
    best = [t["params"] for t in fine_ok[:top]]
    return narrow(ranges, best, result.integers), narrow_choices(choices, best)


def _record(job, out, score: str) -> dict:
    index, stage, setting, _ = job
    if isinstance(out, Mapping):
        clash = [k for k in _RESERVED if k in out]
        if clash:
            raise InputError(f"the objective's result may not use the keys {clash}: the search fills them in")
        if score not in out:
            raise InputError(f"the objective's result has no {score!r} (the score to rank by); it has {sorted(out)}")
        out = dict(out)
    elif _is_number(out):
        out = {score: out}
    else:
        raise InputTypeError(f"the objective must return a number or a dict of results, got {type(out).__name__}")
    at = out.pop("diverged_at", None)
    value = out[score]
    if not _is_number(value):
        raise InputTypeError(f"the score {score!r} must be a number, got {value!r}")
    if at is not None and (not isinstance(at, numbers.Integral) or isinstance(at, bool) or at < 0):
        raise InputTypeError(f"diverged_at must be an iteration (an integer >= 0) or None, got {at!r}")
    diverged = at is not None or not math.isfinite(value)
    trial = {"trial": index, "stage": stage, "params": dict(setting), **out,
             "diverged": diverged, "diverged_at": None if at is None else int(at)}
    return finite_or_none(trial)


def _run_here(objective, jobs):
    """``(job, result)`` of each trial, run here in the order drawn."""
    for job in jobs:
        yield job, objective(job[3])


class _Sized:
    """An iterable with a length, so that a progress bar knows its total."""

    def __init__(self, iterable, n: int):
        self.iterable, self.n = iterable, n

    def __iter__(self):
        return iter(self.iterable)

    def __len__(self) -> int:
        return self.n


def _check_client(client, resources) -> None:
    if not all(hasattr(client, name) for name in ("submit", "scheduler_info", "cancel")):
        raise InputTypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if client.status != "running":
        raise InputError(f"the Dask client is {client.status}, not running: connect it before the search")
    if not resources:
        return
    if not isinstance(resources, Mapping):
        raise InputTypeError(f"resources must map resource names to amounts, like {{'GPU': 1}}; got {resources!r}")
    workers = client.scheduler_info(n_workers=-1)["workers"]
    # No worker yet (an adaptive cluster still scaling up): the trials wait for one, as Dask does.
    if workers and not any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
                           for w in workers.values()):
        offered = sorted({f"{k}={v}" for w in workers.values() for k, v in w.get("resources", {}).items()})
        raise InputError(f"no worker of the cluster offers the resources a trial needs "
                         f"({', '.join(f'{k}={v}' for k, v in resources.items())}); the {len(workers)} workers offer "
                         f"{', '.join(offered) or 'none'}: start them with --resources, e.g. --resources GPU=1")


def _run_on(client, objective, jobs, result, resources):
    """``(job, result)`` of each trial, run as Dask tasks, as they finish; closing it cancels the rest."""
    from distributed import KilledWorker, as_completed

    tag = uuid.uuid4().hex[:8]
    futures = {client.submit(objective, job[3], key=f"xpml-trial-{job[0]}-{tag}", pure=False,
                             resources=dict(resources) if resources else None): job for job in jobs}
    pending = set(futures)
    try:
        for future in as_completed(futures, loop=client.loop):
            job = futures[future]
            try:
                out = future.result()  # the trial's own exception, if it raised one
            except (CancelledError, KilledWorker) as exc:
                why = (f"the workers running it kept dying ({' '.join(str(exc).split())})"
                       if isinstance(exc, KilledWorker) else
                       "the Dask cluster went away (the connection to its scheduler was lost)")
                raise SearchIncomplete(f"trial {job[0]} did not finish: {why}; {len(result.trials)} of the "
                                       f"{result.planned} trials drawn had finished", result) from exc
            pending.discard(future)
            future.release()
            yield job, out
    finally:
        if pending and client.status == "running":
            client.cancel(list(pending))
