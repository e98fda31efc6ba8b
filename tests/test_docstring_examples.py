"""The ``Examples`` sections of the docstrings run as doctests, and the modules listed here have one everywhere.

Every module of the installed package is searched (``xpml.backend``, ``xpml.classifiers``,
``xpml.nets``, ``xpml.sklearn``, ``xpml.cli``), so an example added anywhere runs here without
registering it. ``python -m pytest tests/test_docstring_examples.py`` runs them all.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil

import pytest

import xpml

PACKAGES = ("xpml.backend", "xpml.classifiers", "xpml.nets", "xpml.sklearn", "xpml.cli")
# Modules whose every public function and class (its __all__) carries an Examples section. Add a
# module here once its examples are written, so that a new public name without one is noticed.
COMPLETE = (
    "xpml.backend",
    "xpml.backend.errors",
    "xpml.backend.io",
    "xpml.backend.testing",
    "xpml.backend.validation",
    "xpml.classifiers",
    "xpml.classifiers.attribute",
    "xpml.classifiers.cross_validation",
    "xpml.classifiers.data_utils",
    "xpml.classifiers.gradient_check",
    "xpml.classifiers.k_nearest_neighbor",
    "xpml.classifiers.linear_classifier",
    "xpml.classifiers.linear_svm",
    "xpml.classifiers.softmax",
    "xpml.nets",
    "xpml.nets.augment",
    "xpml.nets.checkpoint",
    "xpml.nets.conv_layers",
    "xpml.nets.convnet",
    "xpml.nets.diagnostics",
    "xpml.nets.ensemble",
    "xpml.nets.fc_net",
    "xpml.nets.hierarchical",
    "xpml.nets.init",
    "xpml.nets.landscape",
    "xpml.nets.layers",
    "xpml.nets.losses",
    "xpml.nets.metrics",
    "xpml.nets.model",
    "xpml.nets.optim",
    "xpml.nets.preprocessing",
    "xpml.nets.regularization",
    "xpml.nets.rules",
    "xpml.nets.schedules",
    "xpml.nets.search",
    "xpml.nets.solver",
    "xpml.nets.two_layer_net",
    "xpml.sklearn",
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        mod = importlib.import_module(package)
        names.append(package)
        if hasattr(mod, "__path__"):
            names += [info.name for info in pkgutil.walk_packages(mod.__path__, package + ".")]
    return sorted(set(names))


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in _module_names():
        module = importlib.import_module(name)
        # Only what the module defines: a name it imports is tested where it is defined.
        tests += [t for t in finder.find(module, name)
                  if t.examples and getattr(inspect.getmodule(_owner(module, t.name)), "__name__", name) == name]
    return sorted(tests, key=lambda t: t.name)


def _owner(module, dotted: str):
    obj = module
    for part in dotted.split(".")[1 + module.__name__.count("."):]:
        obj = getattr(obj, part, obj)
    return obj


DOCTESTS = _doctests()


@pytest.mark.slow  # every example of the package, some of them training: CI runs them
@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_example_runs(test, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=out.write)
    assert result.failed == 0, out.getvalue()


@pytest.mark.parametrize("name", COMPLETE)
def test_public_names_have_examples(name):
    module = importlib.import_module(name)
    missing = [public for public in module.__all__
               if callable(getattr(module, public)) and "Examples\n" not in (getattr(module, public).__doc__ or "")]
    assert not missing, f"{name}: public names without an Examples section in their docstring: {missing}"


def test_examples_are_found():
    # The examples written so far: a finder that sees none is broken.
    names = {t.name for t in DOCTESTS}
    assert "xpml.nets.metrics.accuracy" in names
    assert "xpml.classifiers.gradient_check.rel_error" in names
    assert xpml.__name__ == "xpml"
