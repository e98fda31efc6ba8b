"""Sphinx configuration of xpml's documentation.

Built offline, warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is generated from the packages' ``__all__`` at every build (into ``docs/api/``,
not kept in git), so a name added to or removed from a package shows up without editing a page
here. The gallery runs the scripts of ``examples/`` (sphinx-gallery) on small data that ships.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pathlib
import sys

import xpml

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))  # _readme.py, the README section helper

# Pictures in the gallery are drawn off screen, and no example may reach the network.
os.environ.setdefault("MPLBACKEND", "agg")

project = "xpml"
author = "xpml contributors"
copyright = "the xpml contributors"  # noqa: A001 (Sphinx's name)
release = xpml.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.py", "auto_examples/*.ipynb",
                    "auto_examples/*.md5", "auto_examples/*.zip", "auto_examples/*.json"]
templates_path = ["_templates"]
root_doc = "index"
default_role = "literal"  # `x` in a docstring reads as code, as in the README
nitpicky = False
suppress_warnings = ["config.cache"]  # sphinx-gallery's conf values hold functions

# ---- the API reference --------------------------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the numpydoc Parameters sections say it, in the course's words
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # autodoc documents the members of a class on its page
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

# One page per package (and per public module of xpml.nets); each lists the names of its __all__.
# A name re-exported by a package is documented there once (xpml.nets.Solver, not
# xpml.nets.solver.Solver), and its module's page links to it.
API_PAGES = [
    ("xpml.backend", "The array-namespace shim"),
    ("xpml.classifiers", "Assignment 1: kNN and the linear classifiers"),
    ("xpml.nets", "Nets and the training machinery"),
    ("xpml.nets.layers", "Layers: the course's forward/backward pairs"),
    ("xpml.nets.optim", "Update rules"),
    ("xpml.nets.schedules", "Learning-rate schedules"),
    ("xpml.nets.augment", "Augmentation on the device"),
    ("xpml.nets.preprocessing", "Preprocessing"),
    ("xpml.nets.init", "Weight initialization"),
    ("xpml.nets.regularization", "Regularization"),
    ("xpml.nets.diagnostics", "Diagnostics from the notes"),
    ("xpml.nets.metrics", "Metrics"),
    ("xpml.nets.checkpoint", "Checkpoints"),
    ("xpml.sklearn", "scikit-learn estimators"),
]


def _public_names(modname: str) -> tuple[list[str], list[str]]:
    """(documented objects, other constants) of a module's ``__all__``, submodules left out."""
    mod = importlib.import_module(modname)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == modname]
    objects, constants = [], []
    for name in names:
        value = getattr(mod, name)
        if inspect.ismodule(value):
            continue
        (objects if inspect.isclass(value) or callable(value) else constants).append(name)
    return objects, constants


def _write_if_changed(path: pathlib.Path, text: str) -> None:
    # Rewriting an unchanged page would make Sphinx rebuild it (and everything that links to it).
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_api_pages() -> None:
    api = DOCS / "api"
    parents: dict[str, set[str]] = {}
    for modname, _ in API_PAGES:
        objects, _c = _public_names(modname)
        parents[modname] = set(objects)
    toc = []
    for modname, title in API_PAGES:
        objects, constants = _public_names(modname)
        parent = modname.rsplit(".", 1)[0]
        elsewhere = sorted(n for n in objects if parent in parents and n in parents[parent])
        here = [n for n in objects if n not in elsewhere]
        heading = f"``{modname}``: {title}"
        lines = [heading, "=" * len(heading), "", f".. automodule:: {modname}", "   :no-members:", ""]
        if here:
            lines += [".. currentmodule:: " + modname, "", ".. autosummary::", "   :toctree: generated/",
                      "   :nosignatures:", ""]
            lines += [f"   {n}" for n in here] + [""]
        if elsewhere:
            lines += ["Also here, documented with the package: "
                      + ", ".join(f":obj:`~{parent}.{n}`" for n in elsewhere) + ".", ""]
        if constants:
            lines += ["Constants: " + ", ".join(f"``{n}``" for n in constants) + ".", ""]
        _write_if_changed(api / f"{modname}.rst", "\n".join(lines))
        toc.append(f"   {modname}")
    index = ["API reference", "=============", "",
             "Every public name of xpml, generated from the docstrings. The course's names "
             "(``Solver``, ``FullyConnectedNet``, ``affine_forward``, ...) keep the course's "
             "calling conventions.", "", ".. toctree::", "   :maxdepth: 1", "", *toc, ""]
    _write_if_changed(api / "index.rst", "\n".join(index))


write_api_pages()

# ---- "What xpml guarantees", kept in one place: the README's section ------------------------------

from _readme import write_guarantees_page  # noqa: E402

write_guarantees_page(ROOT / "README.md", DOCS / "guarantees.rst")

# ---- the gallery ----------------------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": [str(DOCS / "auto_examples")],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "line_numbers": False,
    "reference_url": {"xpml": None},  # links the examples' calls to the API pages
    "doc_module": ("xpml",),
    "backreferences_dir": str(DOCS / "gen_modules" / "backreferences"),
    "capture_repr": ("_repr_html_", "__repr__"),
    "abort_on_example_error": True,
    "plot_gallery": "True",
}

# ---- HTML --------------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"xpml {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "navbar_align": "left",  # five section links and the search box fit on one line
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "icon_links": [],
    # Everything the page needs ships with the site: no fonts or scripts from the network.
    "use_edit_page_button": False,
}
html_sidebars = {"index": []}
# A fresh browser has no stored light/dark choice; without a default the theme logs a console error.
html_context = {"default_mode": "auto"}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

# No intersphinx: the build runs offline, and every link stays inside the site.


def _skip_foreign_members(app, what, name, obj, skip, options):
    # scikit-learn adds set_fit_request & co. to every estimator class; their docstrings link to
    # scikit-learn's own glossary, which this site does not have. They are scikit-learn's API.
    if what == "class" and name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
