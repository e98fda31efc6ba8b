"""scripts/bench.py runs end to end on tiny shapes and prints every section's rows.

No timing is asserted: speed is measured by the benchmark itself, never by the test suite. One
test hides the peers (faiss, scikit-learn, torch), as on a machine without the ``bench`` extra,
and always runs; the other runs them and is skipped, with the reason, where they are missing.
"""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEERS = ("faiss", "sklearn", "torch")
XPML_ROWS = ("machine:", "data: RANDOM data", "| knn      | xpml (numpy)", "kNN floor, measured",
             "| net      | xpml (numpy)", "| svm      | xpml LinearSVM (numpy)", "| softmax  | xpml Softmax (numpy)",
             "| shim     | xpml", "| shim     | raw numpy", "| shim     | course-style NumPy", "load average at end")
PEER_ROWS = ("BLAS:", "| knn      | faiss-cpu IndexFlatL2 + vote", "| knn      | scikit-learn brute",
             "| net      | PyTorch (cpu, autograd)", "| svm      | PyTorch svm", "| softmax  | PyTorch softmax")


def _run_bench(tmp_path, *, hide_peers: bool):
    results = tmp_path / "RESULTS.md"
    args = ["--quick", "--repeats", "1", "--gpu", "no", "--results", str(results)]
    # Hiding a package: a finder ahead of the others that refuses it, as if it were not installed.
    hide = (f"PEERS = {PEERS!r}\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in PEERS:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r} (hidden by the test)')\n"
            "sys.meta_path.insert(0, Hide())\n") if hide_peers else ""
    code = (f"import runpy, sys\n{hide}sys.argv = ['bench.py'] + {args!r}\n"
            f"runpy.run_path({str(ROOT / 'scripts' / 'bench.py')!r}, run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    recorded = results.read_text(encoding="utf-8")
    assert "## Performance (issue 6)" in recorded and "Command: `" in recorded and "--quick" in recorded
    return out.stdout


@pytest.mark.slow
def test_bench_quick_without_the_peers_reports_xpml_and_says_what_it_skipped(tmp_path):
    text = _run_bench(tmp_path, hide_peers=True)
    for expected in XPML_ROWS:
        assert expected in text, f"missing {expected!r} in the benchmark output:\n{text[-4000:]}"
    assert "faiss-cpu: SKIPPED (not installed" in text and "scikit-learn: SKIPPED" in text
    assert "PyTorch: SKIPPED" in text


@pytest.mark.slow
def test_bench_quick_prints_every_section(tmp_path):
    missing = [m for m in PEERS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"benchmark peers not installed ({', '.join(missing)}): pip install -e '.[bench]'")
    text = _run_bench(tmp_path, hide_peers=False)
    for expected in XPML_ROWS + PEER_ROWS:
        assert expected in text, f"missing {expected!r} in the benchmark output:\n{text[-4000:]}"
    assert "SKIPPED" not in text.replace("on a CUDA GPU: SKIPPED", ""), text


def test_bench_rejects_an_unknown_section():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--only", "nope", "--no-record"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown section" in out.stderr
