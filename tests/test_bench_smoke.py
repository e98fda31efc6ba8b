"""The benchmark (``python scripts/bench/run.py``, run from a checkout) runs end to end on tiny
shapes, writes its records, and refuses bad flags with one line.

No timing is asserted: speed is measured by the benchmark itself, never by the test suite. One
run hides the benchmark-only peers (faiss, torch), as on a machine without the ``bench`` extra,
and always runs; the other runs them and is skipped, with the reason, where they are missing.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEERS = ("faiss", "torch")
XPML_ROWS = ("machine:", "data: RANDOM data", "| xpml train + predict (numpy)", "| xpml train + kneighbors (numpy)",
             "kNN floor, measured", "| scikit-learn brute fit + predict", "| xpml TwoLayerNet.train (numpy)",
             "| xpml FullyConnectedNet + Solver (numpy)", "| xpml LinearSVM.train (numpy)",
             "| xpml Softmax.train (numpy)", "| xpml svm_loss_vectorized", "| raw numpy TwoLayerNet.train",
             "| course-style NumPy TwoLayerNet.train", "load average at end")
PEER_ROWS = ("BLAS: numpy", "| faiss-cpu IndexFlatL2 add + search + vote", "| faiss-cpu IndexFlatL2 add + search ",
             "| scikit-learn brute fit + kneighbors", "| PyTorch, autograd (cpu)",
             "| PyTorch, hand-written (no autograd) (cpu)", "| PyTorch nn.Sequential + Adam, autograd (cpu)",
             "| PyTorch svm, autograd (cpu)", "| PyTorch softmax, hand-written (no autograd) (cpu)")


def _run_bench(tmp_path, *, hide_peers: bool, extra=()):
    out = tmp_path / "run"
    args = ["--quick", "--repeats", "1", "--gpu", "no", "--out", str(out), *extra]
    # Hiding a package: a finder ahead of the others that refuses it, as if it were not installed.
    hide = (f"PEERS = {PEERS!r}\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in PEERS:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r} (hidden by the test)')\n"
            "sys.meta_path.insert(0, Hide())\n") if hide_peers else ""
    code = (f"import runpy, sys\n{hide}sys.argv = ['run.py'] + {args!r}\n"
            f"runpy.run_path({str(ROOT / 'scripts' / 'bench' / 'run.py')!r}, run_name='__main__')\n")
    results_md = (ROOT / "RESULTS.md").read_bytes()
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr
    # Nothing is recorded outside the run folder: the repository's RESULTS.md is never written.
    assert (ROOT / "RESULTS.md").read_bytes() == results_md
    assert not (tmp_path / "RESULTS.md").exists()
    table = (out / "results.md").read_text(encoding="utf-8")
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"),
                     parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["complete"] is True and "--quick" in doc["command"] and "| xpml" in table
    return done.stdout, doc["records"]


def _ok(records, section, tool_prefix):
    found = [r for r in records
             if r["section"] == section and r["status"] == "ok" and r["tool"].startswith(tool_prefix)]
    assert found, f"no record of {tool_prefix!r} in {section}: {[r.get('tool') for r in records]}"
    return found[0]


def _check_records(records):
    for r in records:
        if r["status"] in ("ok", "skipped", "failed"):
            env = r["env"]
            # Every record says where it ran: CPU, BLAS kernels and threads per library, the load.
            assert env["cpu"] and env["threads"] >= 1 and "load_average" in env
            assert any(b["library"] == "numpy" and b.get("kernel") for b in env["blas"]), env["blas"]
    knn = _ok(records, "knn", "xpml train + predict")
    assert set(knn["splits"]) == {"train", "query"}
    assert knn["times_s"][0] == pytest.approx(sum(s["times_s"][0] for s in knn["splits"].values()))
    assert knn["peak_mib"] is not None and knn["floor_s"] > 0
    net = _ok(records, "net", "xpml TwoLayerNet.train")
    assert net["unit"] == "it" and net["per"] == net["iterations"]
    assert net["median_s"] == pytest.approx(net["whole_median_s"] / net["per"])
    return knn, net


@pytest.mark.slow
def test_bench_quick_without_the_peers_reports_xpml_and_says_what_it_skipped(tmp_path):
    text, records = _run_bench(tmp_path, hide_peers=True)
    for expected in XPML_ROWS:
        assert expected in text, f"missing {expected!r} in the benchmark output:\n{text[-4000:]}"
    assert "faiss-cpu: SKIPPED (faiss-cpu is not installed" in text
    assert "PyTorch: SKIPPED (PyTorch is not installed" in text
    assert "FAILED" not in text
    knn, net = _check_records(records)
    assert set(knn["ratios"]) == {"vs scikit-learn", "query vs scikit-learn"} and knn["target"] is None
    assert net["ratios"] == {}
    skipped = {r["tool"] for r in records if r["status"] == "skipped"}
    assert {"faiss-cpu", "PyTorch"} <= skipped


@pytest.mark.slow
def test_bench_quick_prints_every_section_and_draws_the_scaling_plots(tmp_path):
    missing = [m for m in (*PEERS, "sklearn") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"benchmark peers not installed ({', '.join(missing)}): pip install -e '.[bench]'")
    plots = tmp_path / "plots"
    text, records = _run_bench(tmp_path, hide_peers=False, extra=("--plots", str(plots)))
    for expected in XPML_ROWS + PEER_ROWS:
        assert expected in text, f"missing {expected!r} in the benchmark output:\n{text[-4000:]}"
    assert "SKIPPED" not in text and "FAILED" not in text, text
    knn, net = _check_records(records)
    assert {"vs faiss", "query vs faiss", "vs scikit-learn"} <= set(knn["ratios"])
    assert knn["target"]["ratio"] == "vs faiss" and knn["target"]["at_most"] == 0.9
    # The two-layer loop is held to the fastest PyTorch loop, and compared with both.
    assert len(net["ratios"]) == 2 and net["target"]["at_most"] == 0.8
    fc = _ok(records, "fc", "xpml FullyConnectedNet + Solver")
    assert fc["target"]["ratio"] == "vs PyTorch nn.Sequential + Adam, autograd (cpu)"
    grids = {r["grid"] for r in records if r["section"] == "scaling" and r["status"] == "ok"}
    assert grids == {"knn_train_rows", "knn_queries", "net_batch", "net_width"}
    assert all(r["floor_s"] > 0 for r in records if r["section"] == "scaling" and r["status"] == "ok")
    for name in ("knn_scaling.png", "net_scaling.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_runs_the_knn_in_depth_sections_when_asked(tmp_path):
    text, records = _run_bench(tmp_path, hide_peers=True,
                               extra=("--only", "knn-precision,knn-overlap,knn-model", "--rate-tflops", "50"))
    assert "FAILED" not in text
    # Asked for, they run; the other sections do not.
    assert {r["section"] for r in records if r["status"] in ("ok", "note")} == {
        "knn-precision", "knn-overlap", "knn-model"}
    exact = _ok(records, "knn-precision", "xpml train + predict, precision='exact' (numpy)")
    assert set(exact["splits"]) == {"train", "query"} and exact["candidates_per_query"] >= 0
    same = [r for r in records if r["section"] == "knn-precision" and r["status"] == "note"]
    assert same and same[0]["same_labels"] is True
    overlapped = _ok(records, "knn-overlap", "block loop, next product overlapped")
    assert set(overlapped["ratios"]) == {"vs sequential"}
    model = next(r for r in records if r["section"] == "knn-model")
    # Arithmetic only: 2 q (M / W) D FLOP per block at the given rate, against the link's time.
    flops = 2 * 2048 * (1_000_000 // 8) * 3072
    link = 8 * (2048 * 3072 * 4 + 2048 * 10 * 12) / (100e9 / 8)
    assert model["block_s"] == pytest.approx(max(flops / 50e12, link)) and model["rate_assumed"] is False


@pytest.mark.parametrize("argv, message", [
    (["--repeats", "-1"], "--repeats: must be an integer >= 1, got -1"),
    (["--repeats", "0"], "--repeats: must be an integer >= 1"),
    (["--repeats", "two"], "--repeats: an integer is needed"),
    (["--only", "nope"], "unknown section 'nope'"),
    (["--only", ","], "unknown section"),
    (["--threads", "0"], "--threads: must be an integer >= 1"),
    (["--knn-budget", "-5"], "--knn-budget: must be an integer >= 1"),
    (["--net-iters", "0"], "--net-iters"),
    (["--clock", "sundial"], "--clock: invalid choice"),
    (["--backends", "nope"], "unknown backend 'nope'"),
    (["--only", "masks"], "unknown section 'masks'"),  # it measured xpml against its own old draws: gone
    (["--rate-tflops", "0"], "--rate-tflops: must be > 0"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bench_refuses_bad_flags_with_one_line(argv, message, tmp_path, capsys):
    from scripts.bench import run as bench

    assert bench.main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # refused before any work, no run folder left behind


def test_bench_out_that_is_a_file_is_one_line(tmp_path, capsys):
    from scripts.bench import run as bench

    (tmp_path / "f").write_text("x")
    assert bench.main(["--quick", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a directory" in err and err.count("\n") == 1, err


def test_bench_data_dir_without_cifar10_is_one_line_before_any_work(tmp_path, capsys):
    from scripts.bench import run as bench

    assert bench.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --data-dir {tmp_path} holds no CIFAR-10") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("how", [["scripts/bench/run.py"], ["-m", "scripts.bench"]])
def test_the_benchmark_runs_from_the_checkout_with_one_line_errors(how):
    done = subprocess.run([sys.executable, *how, "--repeats", "-1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: argument --repeats") and done.stderr.count("\n") == 1, done.stderr


def test_the_benchmark_is_not_part_of_the_command():
    from xpml.cli import COMMANDS

    assert "bench" not in COMMANDS
    assert importlib.util.find_spec("xpml.cli.bench") is None
    assert importlib.util.find_spec("xpml.cli.benchmarks") is None
