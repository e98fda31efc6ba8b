"""Rule 1 of the design: the math goes through the shim, never numpy or cupy directly.

Also: importing the packages imports nothing beyond the runtime dependencies (CuPy only when
asked for or probed).
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MATH_PACKAGES = ["classifiers", "nets"]
FORBIDDEN = {"numpy", "cupy", "cupyx"}


def _modules():
    for pkg in MATH_PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def _imported_roots(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                yield node.args[0].value.split(".")[0], node.lineno


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_math_modules_do_not_import_numpy_or_cupy(path):
    bad = [(mod, line) for mod, line in _imported_roots(path) if mod in FORBIDDEN]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: use the backend shim instead"


def test_the_checker_catches_a_direct_import(tmp_path):
    fake = tmp_path / "m.py"
    fake.write_text("import numpy as np\nfrom cupy import ones\n")
    assert {m for m, _ in _imported_roots(fake)} == {"numpy", "cupy"}


def test_import_pulls_in_only_runtime_dependencies():
    code = (
        "import sys, xpml.backend, xpml.classifiers, xpml.nets\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'cupy', 'torch', 'array_api_strict', 'matplotlib', 'sklearn', 'tqdm', 'scipy'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout.strip()}"
