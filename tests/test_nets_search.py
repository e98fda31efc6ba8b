"""The random search of xpml.nets.search in this process: sampling, narrowing, ranking, divergence.

The same search on a Dask cluster is tested in test_search_dask.py.
"""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets import SearchResult, diverged_at, random_search
from xpml.nets import search as rs


def bowl(setting):
    """A score with its peak at learning_rate 1e-2 and hidden_size 64 (on a log scale)."""
    lr, h = setting["learning_rate"], setting.get("hidden_size", 64)
    return {"val_acc": 1 - (math.log10(lr) + 2) ** 2 / 10 - (math.log2(h) - 6) ** 2 / 100,
            "num_iters": setting.get("num_iters")}


RANGES = {"learning_rate": (1e-5, 1.0), "hidden_size": (8, 512)}


# ---- sampling -------------------------------------------------------------------------------------

def test_samples_are_log_uniform():
    gen = backend.Generator(0)
    draws = [rs.sample(gen, {"learning_rate": (1e-4, 1.0)})["learning_rate"] for _ in range(4000)]
    decades = np.histogram(np.log10(draws), bins=4, range=(-4, 0))[0]
    assert decades.min() > 850  # each decade gets about a quarter
    ints = [rs.sample(gen, {"k": (1, 50)}, {"k"})["k"] for _ in range(200)]
    assert all(isinstance(k, int) and 1 <= k <= 50 for k in ints)
    assert len(set(ints)) > 20


def test_sampling_is_one_log_uniform_draw_per_key_in_order():
    # One uniform of the seed's stream per key, in the order of the ranges, mapped to log space.
    ref = backend.Generator(7)
    u_lr, u_k = (float(ref.uniform((), low=lo, high=hi, dtype="float64"))
                 for lo, hi in ((-4.0, 0.0), (0.0, math.log10(50))))
    setting = rs.sample(backend.Generator(7), {"lr": (1e-4, 1.0), "k": (1, 50)}, {"k"})
    assert setting == {"lr": float(f"{10**u_lr:.3g}"), "k": int(round(10**u_k))}
    full = rs.sample(backend.Generator(7), {"lr": (1e-4, 1.0)}, digits=None)["lr"]
    assert full == pytest.approx(10**u_lr, rel=1e-15) and full != setting["lr"]


def test_settings_are_distinct_and_stop_when_a_range_runs_out():
    settings = rs.sample_settings(backend.Generator(0), {"k": (1, 3)}, 10, {"k"})
    assert sorted(s["k"] for s in settings) == [1, 2, 3]
    again = rs.sample_settings(backend.Generator(0), {"k": (1, 3)}, 10, {"k"})
    assert again == settings


def test_narrowing_and_edges():
    (lo, hi), = rs.narrow({"reg": (1e-6, 1.0)}, [{"reg": 1e-4}, {"reg": 1e-3}]).values()
    assert lo == pytest.approx(1e-4 / 10**0.25) and hi == pytest.approx(1e-3 * 10**0.25)
    (lo, hi), = rs.narrow({"k": (1, 50)}, [{"k": 1}, {"k": 2}], {"k"}).values()
    assert (lo, hi) == (1, 4) and isinstance(lo, int)  # whole numbers, never below 1
    assert rs.at_edge(0.9, 1e-3, 1.0) and rs.at_edge(1.1e-3, 1e-3, 1.0)
    assert not rs.at_edge(math.sqrt(1e-3), 1e-3, 1.0)
    assert not rs.at_edge(1, 1, 50, integer=True)  # k cannot go below 1
    assert not rs.at_edge(5, 5, 5)


@pytest.mark.parametrize(("ranges", "integers", "message"), [
    ([("lr", (0.1, 1))], (), "ranges must map"),
    ({"lr": (1.0, 0.1)}, (), "low end is above the high end"),
    ({"lr": (0.0, 1.0)}, (), "low end must be > 0"),
    ({"lr": (1e-3, math.inf)}, (), "two finite numbers"),
    ({"lr": (1e-3, "1")}, (), "two finite numbers"),
    ({"lr": 0.1}, (), "must be (lo, hi)"),
    ({"lr": (0.1, 1.0)}, ("k",), "integers names 'k'"),
])
def test_bad_ranges(ranges, integers, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rs.check_ranges(ranges, integers)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        random_search(bowl, ranges, integers=integers)


@pytest.mark.parametrize(("choices", "message"), [
    ({"rule": "adam"}, "the choices of 'rule' must be a non-empty list"),
    ({"rule": []}, "the choices of 'rule' must be a non-empty list"),
    ({"rule": {"adam", "sgd"}}, "the choices of 'rule' must be a non-empty list"),  # a set has no order
    ({"lr": [0.1, 1.0]}, "'lr' is both in ranges and in choices"),
    (["rule"], "choices must map"),
])
def test_bad_choices(choices, message):
    with pytest.raises(ValueError, match=message):
        random_search(bowl, {"lr": (1e-3, 1.0)}, choices=choices)


def test_nothing_to_search():
    with pytest.raises(ValueError, match="nothing to search"):
        random_search(bowl, {})


def test_integer_ranges_widen_to_whole_numbers():
    ranges, integers = rs.check_ranges({"h": (7.5, 30.2), "lr": (0.1, 1)}, ["h"])
    assert ranges == {"h": (7, 31), "lr": (0.1, 1)} and integers == {"h"}


# ---- the search -----------------------------------------------------------------------------------

def test_coarse_then_fine():
    seen = []
    result = random_search(bowl, RANGES, integers={"hidden_size"}, trials=8, fine_trials=4, top=3,
                           coarse={"num_iters": 10}, seed=1, on_trial=lambda r, t: seen.append(t["trial"]))
    assert isinstance(result, SearchResult) and result.complete and result.notes == []
    assert [t["trial"] for t in result.trials] == list(range(12)) == seen
    coarse = [t for t in result.trials if t["stage"] == "coarse"]
    fine = [t for t in result.trials if t["stage"] == "fine"]
    assert len(coarse) == 8 and len(fine) == 4
    assert all(t["num_iters"] == 10 for t in coarse) and all(t["num_iters"] is None for t in fine)
    assert all(set(t["params"]) == set(RANGES) for t in result.trials)  # the coarse extras are not searched
    assert all(isinstance(t["params"]["hidden_size"], int) for t in result.trials)
    top3 = sorted(coarse, key=lambda t: -t["val_acc"])[:3]
    for key, (lo, hi) in result.ranges["fine"].items():
        values = [t["params"][key] for t in top3]
        assert lo < min(values) and max(values) < hi
    scores = [t["val_acc"] for t in result.ranked]
    assert scores == sorted(scores, reverse=True) and result.best is result.ranked[0]
    assert result.best["val_acc"] == max(t["val_acc"] for t in result.trials)
    assert not any(t["diverged"] for t in result.trials)


def test_choices_are_uniform_and_narrowed_to_what_won():
    gen = backend.Generator(0)
    rules = [rs.sample(gen, {}, choices={"rule": ["sgd", "momentum", "adam"]})["rule"] for _ in range(3000)]
    assert min(rules.count(r) for r in ("sgd", "momentum", "adam")) > 900

    def likes_adam(setting):
        return {"val_acc": {"adam": 0.9, "momentum": 0.6, "sgd": 0.3}[setting["rule"]] - setting["lr"] / 100}

    result = random_search(likes_adam, {"lr": (1e-3, 1.0)}, choices={"rule": ["sgd", "momentum", "adam"], "p": [0.0]},
                           trials=12, fine_trials=4, top=2, seed=0)
    assert result.choices["coarse"] == {"rule": ["sgd", "momentum", "adam"], "p": [0.0]}
    assert result.choices["fine"] == {"rule": ["adam"], "p": [0.0]}  # the two best coarse trials chose adam
    assert all(t["params"]["rule"] == "adam" for t in result.trials if t["stage"] == "fine")
    assert {t["params"]["rule"] for t in result.trials if t["stage"] == "coarse"} == {"sgd", "momentum", "adam"}
    only_choices = random_search(likes_adam, {}, choices={"rule": ["sgd", "adam"], "lr": [0.5]}, trials=5)
    assert sorted(t["params"]["rule"] for t in only_choices.trials) == ["adam", "sgd"]  # no repeats


def test_same_seed_same_search():
    a = random_search(bowl, RANGES, integers={"hidden_size"}, trials=5, fine_trials=3, seed=4)
    b = random_search(bowl, RANGES, integers={"hidden_size"}, trials=5, fine_trials=3, seed=4)
    c = random_search(bowl, RANGES, integers={"hidden_size"}, trials=5, fine_trials=3, seed=5)
    assert a.trials == b.trials and a.ranges == b.ranges
    assert [t["params"] for t in a.trials] != [t["params"] for t in c.trials]


def test_ties_go_to_the_fine_stage_then_to_the_first_drawn():
    result = random_search(lambda s: 0.5, {"lr": (1e-3, 1.0)}, trials=3, fine_trials=2, seed=0)
    assert [(t["stage"], t["trial"]) for t in result.ranked] == [
        ("fine", 3), ("fine", 4), ("coarse", 0), ("coarse", 1), ("coarse", 2)]


def explode_above_one(setting):
    """Diverges (a NaN loss from iteration 3 on) for learning rates above 1."""
    lr = setting["learning_rate"]
    losses = [2.0, 1.5, 1.2] + ([math.nan] * 3 if lr > 1 else [1.0, 0.9, 0.8])
    return {"val_acc": 0.1 if lr > 1 else 0.5 + 0.1 * math.log10(lr) / 5, "final_loss": losses[-1],
            "curve": losses, "diverged_at": diverged_at(losses)}


def test_diverged_trials_are_recorded_ranked_last_and_the_search_goes_on():
    result = random_search(explode_above_one, {"learning_rate": (1e-3, 1e3)}, trials=8, fine_trials=4, top=2, seed=0)
    diverged = [t for t in result.trials if t["diverged"]]
    assert 0 < len(diverged) < 8 and result.complete and len(result.trials) == 12
    for t in diverged:
        assert t["params"]["learning_rate"] > 1 and t["diverged_at"] == 3
        assert t["final_loss"] is None and t["curve"] == [2.0, 1.5, 1.2, None, None, None]  # JSON-ready
    ranked = result.ranked
    assert [t["diverged"] for t in ranked] == sorted(t["diverged"] for t in ranked)  # diverged ones last
    assert not result.best["diverged"]
    # The fine stage spans the best coarse trials that did not diverge, with the quarter decade margin.
    assert result.ranges["fine"]["learning_rate"][1] < 10**0.25 + 1e-9


def test_a_non_finite_score_is_a_diverged_trial():
    result = random_search(lambda s: math.nan if s["lr"] > 0.1 else s["lr"], {"lr": (1e-3, 1.0)}, trials=6, seed=2)
    bad = [t for t in result.trials if t["params"]["lr"] > 0.1]
    assert bad and all(t["diverged"] and t["val_acc"] is None and t["diverged_at"] is None for t in bad)
    assert result.ranked[-len(bad):] == sorted(bad, key=lambda t: t["trial"])


def test_every_trial_diverged():
    result = random_search(lambda s: {"val_acc": 0.1, "diverged_at": 0}, {"lr": (1.0, 10.0)}, trials=3,
                           fine_trials=2, seed=0)
    assert result.complete and len(result.trials) == 3 and "fine" not in result.ranges
    assert result.best is None and result.at_edges() == []
    assert result.notes == ["no fine stage: all 3 coarse trials diverged"]


def test_top_larger_than_the_coarse_trials_is_clamped():
    result = random_search(bowl, RANGES, integers={"hidden_size"}, trials=2, fine_trials=2, top=3, seed=0)
    assert len(result.trials) == 4
    assert result.notes == ["top 3 is more than the 2 coarse trials: the fine stage spans all 2"]
    assert result.ranges["fine"] == rs.narrow(RANGES, [t["params"] for t in result.trials[:2]], {"hidden_size"})


def test_a_small_integer_range_ends_its_stage_early():
    result = random_search(lambda s: s["k"], {"k": (1, 3)}, integers={"k"}, trials=5, fine_trials=0, seed=0)
    assert sorted(t["params"]["k"] for t in result.trials) == [1, 2, 3]
    assert result.notes == ["the coarse stage tried 3 settings, not 5: its ranges and choices hold no other values"]


def test_an_objective_error_stops_the_search_and_keeps_what_finished():
    seen = []

    def fails_third(setting):
        if len(seen) == 2:
            raise ValueError("k=7 is more than the 5 training examples")
        return 0.5

    with pytest.raises(ValueError, match="k=7"):
        random_search(fails_third, {"lr": (1e-3, 1.0)}, trials=5, on_trial=lambda r, t: seen.append(r))
    assert len(seen) == 2 and not seen[-1].complete and len(seen[-1].trials) == 2


@pytest.mark.parametrize(("objective", "error", "message"), [
    (lambda s: {"loss": 1.0}, ValueError, "has no 'val_acc'"),
    (lambda s: {"val_acc": 0.5, "stage": "x"}, ValueError, "may not use the keys"),
    (lambda s: "good", TypeError, "must return a number or a dict"),
    (lambda s: {"val_acc": "0.5"}, TypeError, "must be a number"),
    (lambda s: {"val_acc": 0.5, "diverged_at": 2.5}, TypeError, "diverged_at must be an iteration"),
])
def test_bad_objective_results(objective, error, message):
    with pytest.raises(error, match=message):
        random_search(objective, {"lr": (1e-3, 1.0)}, trials=2)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"trials": 0}, ValueError, "trials must be an integer >= 1"),
    ({"trials": 2.0}, ValueError, "trials must be an integer >= 1"),
    ({"fine_trials": -1}, ValueError, "fine_trials must be an integer >= 0"),
    ({"top": 0}, ValueError, "top must be an integer >= 1"),
    ({"resources": {"GPU": 1}}, ValueError, "need a client"),
    ({"coarse": 10}, TypeError, "coarse must be a mapping"),
    ({"client": object()}, TypeError, "client must be a dask.distributed.Client"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        random_search(bowl, RANGES, **kwargs)
    with pytest.raises(TypeError, match="objective must be callable"):
        random_search("bowl", RANGES)


def test_numpy_scores_are_numbers():
    result = random_search(lambda s: np.float32(s["lr"]), {"lr": (1e-3, 1.0)}, trials=3)
    assert all(not t["diverged"] for t in result.trials)


def test_diverged_at_and_finite_or_none():
    assert diverged_at([1.0, 0.5]) is None and diverged_at([]) is None
    assert diverged_at([1.0, math.inf, math.nan]) == 1 and diverged_at([math.nan]) == 0
    assert rs.finite_or_none({"a": [1.0, math.nan, (math.inf, 2)], "b": -math.inf, "c": 3, "d": True, "e": "x",
                              "f": np.float64(np.nan)}) == {
        "a": [1.0, None, [None, 2]], "b": None, "c": 3, "d": True, "e": "x", "f": None}


# ---- top-k ensembles --------------------------------------------------------------------------------

def _ensemble_problem(bk):
    from xpml.nets import TwoLayerNet, accuracy

    rng = backend.Generator(7, xp=bk)
    X_val, y_val = rng.normal((40, 5)), rng.integers(0, 3, (40,))
    made = {}

    def objective(setting):
        # Untrained nets of different seeds: distinct models and scores, at no training cost.
        seed = setting["seed"]
        net = TwoLayerNet(5, 6, 3, 1.0, seed=seed, xp=bk)
        made[seed] = net
        return {"val_acc": float(accuracy(net.predict(X_val), y_val)), "model": net}

    return objective, (X_val, y_val), made


def test_the_top_k_models_of_a_search_form_an_ensemble(bk):
    from xpml.nets import Ensemble

    objective, (X_val, y_val), made = _ensemble_problem(bk)
    result = random_search(objective, {"seed": (1, 1000)}, integers={"seed"}, trials=8, ensemble=3,
                           validation=(X_val, y_val), seed=2)
    top = [t for t in result.ranked if not t["diverged"]][:3]
    assert isinstance(result.ensemble, Ensemble)
    assert result.ensemble_trials == [t["trial"] for t in top]
    assert [id(m) for m in result.ensemble.models] == [id(made[t["params"]["seed"]]) for t in top]
    assert all("model" not in t for t in result.trials)  # the records stay JSON-able
    probs = result.ensemble.predict_proba(X_val)
    assert_placement(probs, backend=bk, shape=(40, 3))
    members = [backend.to_numpy(made[t["params"]["seed"]].predict_proba(X_val)) for t in top]
    np.testing.assert_allclose(backend.to_numpy(probs), np.mean(members, axis=0), rtol=1e-6)
    want = np.mean(np.mean(members, axis=0).argmax(1) == backend.to_numpy(y_val))
    assert result.ensemble_val_acc == pytest.approx(want)
    assert result.best["val_acc"] == top[0]["val_acc"]


def test_an_ensemble_skips_diverged_trials_and_says_when_it_has_fewer_members():
    objective, validation, made = _ensemble_problem(backend.get_backend("numpy"))

    def some_diverge(setting):
        out = objective(setting)
        return {**out, "diverged_at": 3} if setting["seed"] % 2 else out

    result = random_search(some_diverge, {"seed": (1, 1000)}, integers={"seed"}, trials=6, ensemble=5,
                           validation=validation, seed=2)
    ok = [t for t in result.ranked if not t["diverged"]]
    assert 0 < len(ok) < 5 and result.ensemble_trials == [t["trial"] for t in ok]
    assert any(f"ensemble of {len(ok)}" in n for n in result.notes)


@pytest.mark.parametrize("kwargs, objective, error, message", [
    ({"ensemble": 2}, None, ValueError, "validation"),
    ({"ensemble": -1, "validation": None}, None, ValueError, "ensemble must be an integer >= 0"),
    ({"ensemble": 2, "validation": "v"}, lambda s: {"val_acc": 0.5}, TypeError, r"\(X_val, y_val\)"),
    ({"ensemble": 2, "validation": (1, 2)}, lambda s: {"val_acc": 0.5}, ValueError, "'model'"),
    ({"ensemble": 2, "validation": (1, 2)}, lambda s: {"val_acc": 0.5, "model": object()}, TypeError,
     "predict_proba"),
])
def test_bad_ensemble_arguments(kwargs, objective, error, message):
    with pytest.raises(error, match=message):
        random_search(objective or bowl, {"learning_rate": (1e-3, 1.0)}, trials=2, **kwargs)
