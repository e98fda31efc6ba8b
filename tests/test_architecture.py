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


# ---- layering: no circles, the checkpoint registry imports no model, classifiers use public names ----

LAYERED = ["backend", "nets", "classifiers"]
_PRIVATE_ALLOWED: set = set()


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path):
    """``(module, names)`` of the imports run when ``path`` is imported (not those inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module.removeprefix("xpml.")
            yield target, [a.name for a in node.names]


def _graph():
    modules = {_module_name(p): p for pkg in LAYERED for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target, names in _top_level_imports(path):
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            if subs:
                edges.update(subs)
            elif target in modules:
                edges.add(target)
        graph[name] = edges - {name}
    return graph


def _cycle(graph):
    """A circle of imports in ``graph`` (a list of modules, the first repeated at the end), or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_through_a_circle():
    # A package's __init__ gathers its modules' names: it is where imports end, not a step of a circle.
    packages = {m for m in _graph() if (ROOT / m.replace(".", "/") / "__init__.py").exists()}
    graph = {m: set() if m in packages else edges for m, edges in _graph().items()}
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the checker sees one


def test_the_checkpoint_registry_and_the_models_do_not_import_each_other_in_a_circle():
    graph = _graph()
    assert not [m for m in graph["nets.checkpoint"] if m.startswith("nets.") or m.startswith("classifiers")]
    assert "nets.solver" not in graph["nets.two_layer_net"]  # train() imports it when it runs


def test_classifiers_use_only_public_names_of_nets():
    bad = []
    for path in sorted((ROOT / "classifiers").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for target, names in _top_level_imports(path):
            if not target.startswith("nets"):
                continue
            private_module = any(part.startswith("_") for part in target.split("."))
            for n in names:
                if (private_module or n.startswith("_")) and (rel, target, n) not in _PRIVATE_ALLOWED:
                    bad.append(f"{rel}: from {target} import {n}")
    assert not bad, "classifiers import private names of nets:\n" + "\n".join(bad)
