"""xpml: the CS231n classifiers and their training machinery, written once for every array backend.

- :mod:`xpml.backend`: the array-namespace shim (namespace and device of inputs, backends by name,
  seeded draws identical on every backend, safe file I/O).
- :mod:`xpml.classifiers`: k-nearest neighbours, the linear SVM and softmax of assignment 1.
- :mod:`xpml.nets`: the nets and the training machinery of the course notes.
- :mod:`xpml.cli`: the ``xpml`` command (``train``, ``search``, ``download``, ``bench``, ``backends``).
"""

from __future__ import annotations

import pathlib

__version__ = "0.2.0"

# The repository keeps backend/, classifiers/ and nets/ at its top level, and the wheel maps them
# into this package (setuptools' package-dir). Run from a checkout, the package finds them there.
_checkout = pathlib.Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "backend" / "__init__.py").is_file():
    __path__.append(str(_checkout))
del _checkout
