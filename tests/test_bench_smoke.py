"""scripts/bench.py runs end to end on tiny shapes and prints every section's rows.

No timing is asserted: speed is measured by the benchmark itself, never by the test suite.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEERS = ("faiss", "sklearn", "torch")


@pytest.mark.slow
def test_bench_quick_prints_every_section(tmp_path):
    missing = [m for m in PEERS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"benchmark peers not installed ({', '.join(missing)}): pip install -e '.[bench]'")
    results = tmp_path / "RESULTS.md"
    # The smoke run keeps the environment as it is (OPENBLAS_* included): it checks the suite runs,
    # not how fast.
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--repeats", "1", "--gpu", "no",
         "--results", str(results)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for expected in ("machine:", "BLAS:", "data: RANDOM data", "machine float32 matrix-product rate",
                     "| knn      | xpml (numpy)", "| knn      | faiss-cpu IndexFlatL2 + vote",
                     "| knn      | scikit-learn brute",
                     "kNN floor, measured", "| net      | xpml (numpy)", "| net      | PyTorch (cpu, autograd)",
                     "| svm      | xpml LinearSVM (numpy)", "| softmax  | xpml Softmax (numpy)",
                     "| shim     | xpml", "| shim     | raw numpy", "| shim     | course-style NumPy",
                     "load average at end"):
        assert expected in text, f"missing {expected!r} in the benchmark output:\n{text[-4000:]}"
    assert "SKIPPED" not in text.replace("on a CUDA GPU: SKIPPED", ""), text
    recorded = results.read_text(encoding="utf-8")
    assert "## Performance (issue 6)" in recorded and "Command: `" in recorded and "--quick" in recorded


def test_bench_rejects_an_unknown_section():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--only", "nope", "--no-record"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown section" in out.stderr
