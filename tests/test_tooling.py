"""What the checkout says about itself holds: packaging, tox, install hints, help texts, shipped data."""

import configparser
import pathlib
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest

import xpml
from xpml.cli import _datasets, search, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_package_does_not_reach_into_the_checkout():
    # The install (editable or wheel) maps backend/, classifiers/ and nets/ into xpml; nothing appends
    # the checkout's root to xpml.__path__, so xpml.tests or xpml.scripts do not exist.
    assert [pathlib.Path(p).resolve() for p in xpml.__path__] == [pathlib.Path(xpml.__file__).resolve().parent]
    code = ("import importlib.util as u, xpml.backend, xpml.classifiers, xpml.nets\n"
            "print(u.find_spec('xpml.tests'), u.find_spec('xpml.scripts'), xpml.backend.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "xpml.backend"], out.stdout


def test_the_wheel_holds_the_library_and_the_command_not_the_tooling():
    setuptools = PYPROJECT["tool"]["setuptools"]
    packages = setuptools["packages"]
    assert sorted(packages) == ["xpml", "xpml.backend", "xpml.classifiers", "xpml.cli", "xpml.nets"]
    for name, folder in setuptools["package-dir"].items():
        assert (ROOT / folder / "__init__.py").is_file() and name in packages
    assert setuptools["package-data"]["xpml"] == ["data/digits.npz", "data/README.md"]
    assert all((ROOT / "xpml" / f).is_file() for f in setuptools["package-data"]["xpml"])
    assert not (ROOT / "xpml" / "cli" / "benchmarks").exists() and (ROOT / "scripts" / "bench" / "run.py").is_file()


def test_the_shipped_digits_are_scikit_learns():
    datasets = pytest.importorskip("sklearn.datasets")
    images, labels = _datasets.load_digits()
    digits = datasets.load_digits()
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8) and labels.shape == (1797,)
    np.testing.assert_array_equal(images.reshape(1797, 64), digits.data)
    np.testing.assert_array_equal(labels, digits.target)


def test_tox_sets_the_variables_the_suite_reads_and_describes_what_it_installs():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    for env in ("testenv:cuda", "testenv:cuda13"):
        name, _, value = tox[env]["setenv"].strip().partition("=")
        assert name.strip() == "XPML_REQUIRE" and value.strip() == "cupy"
        assert f'os.environ.get("{name.strip()}"' in conftest and f"`{name.strip()}=" in README
    # tox -e cpu installs the test extra: its description names every backend that extra brings.
    description = tox["testenv:cpu"]["description"]
    extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"])
    for package, case in (("array-api-strict", "array_api_strict"), ("torch", "torch:cpu"), ("jax", "jax:cpu")):
        assert package in extra and case in description, description


def test_the_readme_and_xpml_backends_give_the_same_install_hints(monkeypatch):
    from xpml import _install
    from xpml.backend import _registry

    monkeypatch.setattr(_install, "checkout", lambda: None)  # the README writes them as for a wheel
    table = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)`", README, flags=re.M))
    assert set(table) == {"cupy", "torch", "jax", "array_api_strict"}
    for name, command in table.items():
        reason = _registry.adapter(name).not_installed(ImportError("hidden")).reason
        assert f"install it with: {command}" in reason, (name, reason)


@pytest.mark.parametrize("command", [train, search])
def test_help_texts_name_only_files_that_exist(command, capsys):
    with pytest.raises(SystemExit):
        command.main(["--help"])
    text = capsys.readouterr().out
    paths = re.findall(r"[\w./-]+/[\w.-]+\.py\b", text)
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing
    assert "on cifar10, these differ" in text  # the other datasets' defaults, not a pointer to a file


def test_readme_says_pickles_run_code_and_points_to_save_model():
    match = re.search(r"unpickling runs.{0,200}save_model", README.replace("\n", " "))
    assert match, "the README must warn that unpickling runs code and point to save_model/load_model"


def test_pictures_are_clipped_so_matplotlib_does_not_warn(tmp_path, caplog):
    pytest.importorskip("matplotlib")
    from xpml.cli import _runs

    grid = np.full((4, 4, 3), 0.5, dtype=np.float32)
    grid[0, 0, 0] = np.nextafter(np.float32(1), np.float32(2))  # a rounding error above 1, as a float32 grid has
    with caplog.at_level("WARNING"):
        _runs.plot_image(tmp_path / "g.png", grid)
    assert (tmp_path / "g.png").is_file()
    assert not [r for r in caplog.records if "Clipping" in r.getMessage()], caplog.text
