"""The benchmark's machinery: interleaved rounds, split phases, paired ratios, failures, records.

A fake clock (one tick per reading) stands in for time, so these tests assert what the harness
does with the readings, never how fast anything runs.
"""

import json

import pytest

from scripts.bench import common, floor, nets
from scripts.bench import run as bench_cli
from xpml import backend


def _bench(tmp_path, *argv):
    args = bench_cli.build_parser().parse_args(["--quick", *argv])
    b = common.Bench(args, tmp_path, "python scripts/bench/run.py --quick")
    ticks = iter(range(10**6))
    b.clock = lambda: float(next(ticks))
    return b


def test_rounds_are_interleaved_in_alternating_order_after_a_warm_up(tmp_path, capsys):
    b = _bench(tmp_path)
    calls = []
    tools = [common.Tool(name, lambda name=name: lambda: calls.append(name)) for name in "ABC"]
    done = b.run_tools(tools, repeats=3)
    assert done == tools
    assert calls == list("ABC") + list("ABC") + list("CBA") + list("ABC")
    assert all(len(t.times) == 3 for t in tools)


def test_phases_are_timed_apart_and_sum_to_the_whole(tmp_path):
    b = _bench(tmp_path)
    order = []

    def prepare():
        return [("train", lambda: order.append("train")), ("query", lambda: order.append("query") or "labels")]

    t = common.Tool("two phases", prepare)
    b.run_tools([t], repeats=2)
    assert order == ["train", "query"] * 3
    assert set(t.splits) == {"train", "query"}
    for i, whole in enumerate(t.times):
        assert whole == pytest.approx(t.splits["train"][i] + t.splits["query"][i])
    assert t.out == "labels"


def test_a_tool_limited_to_fewer_repeats_stops_while_the_others_go_on(tmp_path):
    b = _bench(tmp_path)
    slow = common.Tool("slow", lambda: lambda: None, repeats=1, warmup=0)
    fast = common.Tool("fast", lambda: lambda: None)
    b.run_tools([fast, slow], repeats=3)
    assert len(slow.times) == 1 and len(fast.times) == 3


def test_paired_ratio_is_the_median_of_per_round_ratios_per_unit():
    a = common.Tool("a", None, per=2)
    c = common.Tool("c", None)
    a.times, c.times = [2.0, 8.0, 3.0], [1.0, 2.0, 1.0]  # per unit: 1, 4, 1.5 against 1, 2, 1
    assert common.paired_ratio(a, c) == pytest.approx(1.5)
    a.splits, c.splits = {"query": [1.0, 1.0, 1.0]}, {}
    assert common.paired_ratio(a, c, "query", None) == pytest.approx(0.5)


def test_a_failing_tool_is_reported_and_the_others_are_timed(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XPML_TRACEBACK", raising=False)
    b = _bench(tmp_path)

    def broken():
        raise RuntimeError("no such\nthing")

    bad = common.Tool("bad", lambda: broken)
    good = common.Tool("good", lambda: lambda: 1)
    done = b.run_tools([bad, good], repeats=2)
    assert done == [good] and len(good.times) == 2
    assert bad.error == "RuntimeError: no such thing" and b.failures == ["bad: RuntimeError: no such thing"]
    assert "bad: FAILED (RuntimeError: no such thing)" in capsys.readouterr().out
    b.time("knn", "classify", [])  # records are kept for the tools of that call only
    assert b.records == []
    b.time("knn", "classify", [bad])
    assert [(r["tool"], r["status"]) for r in b.records] == [("bad", "failed")]


def test_records_are_standard_json_with_the_machine(tmp_path):
    b = _bench(tmp_path)
    t = common.Tool("t", lambda: lambda: None, per=10, unit="it")
    b.run_tools([t], repeats=2)
    rec = b.report("net", "net", t, ratios={"vs x": float("nan")}, target=("vs x", 0.8), floor_s=0.1)
    assert rec["ratios"] == {"vs x": None}  # non-finite values are stored as null
    assert rec["median_s"] == pytest.approx(t.median()) and rec["per"] == 10
    b.save(final=True)
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"),
                     parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    assert doc["complete"] is True and doc["records"][0]["env"]["cpu"] == common.cpu_model()
    assert "| t " in (tmp_path / "results.md").read_text(encoding="utf-8")


def test_net_flops_count_every_product_of_a_step():
    B, D, H, C = 200, 3072, 100, 10
    # forward X W1, h W2; backward h^T ds, ds W2^T, X^T dh (the data needs no gradient)
    assert floor.net_flops(B, [D, H, C]) == 2 * B * (2 * D * H + 3 * H * C)
    deeper = floor.net_flops(B, [D, H, H, C])
    assert deeper == 2 * B * (2 * D * H + 3 * H * H + 3 * H * C)


def test_the_fc_case_says_not_available_without_the_api(monkeypatch):
    import xpml.nets

    monkeypatch.delattr(xpml.nets, "FullyConnectedNet", raising=False)
    with pytest.raises(common.Unavailable, match="not available: xpml.nets has no FullyConnectedNet"):
        nets.fc_api()


def test_the_two_layer_draws_are_reproduced_from_the_public_generator(tmp_path):
    b = _bench(tmp_path)
    case = nets.twolayer_case(b)
    # TwoLayerNet documents its draws; where they are reproduced the peers see the same minibatches.
    assert case.same_draws
    assert case.idx.shape == (case.iters, case.batch) and case.idx.max() < case.X.shape[0]
    twin = xpml_twolayer_params(case)
    for k, v in twin.items():
        assert (case.params[k] == v).all()


def xpml_twolayer_params(case):
    from xpml.nets import TwoLayerNet

    D, H, C = case.dims
    return {k: backend.to_numpy(v) for k, v in TwoLayerNet(D, H, C, std=case.init_std, seed=0).params.items()}


def test_gpu_only_without_a_gpu_is_one_line(tmp_path, capsys):
    usable = {s.name: s.usable for s in backend.list_backends()}
    if usable.get("cupy"):
        pytest.skip("a GPU backend is usable here: --gpu only would run the benchmark")
    assert bench_cli.main(["--quick", "--gpu", "only", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --gpu only, but no GPU backend is usable here") and err.count("\n") == 1
