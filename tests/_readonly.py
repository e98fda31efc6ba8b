"""A NumPy backend whose arrays refuse writes: the test backend of functional state (rule 3).

Inside :func:`readonly_arrays`, every array that array-api-compat's NumPy namespace returns (the
creation functions, so also every draw of ``backend.Generator`` and every array a test puts on
``bk``, and every other function: ``xp.sum``, ``xp.maximum``, ``xp.take``, ...) is read-only, and
so is the result of every arithmetic operator on such an array (``a + b``, ``a @ b``, ``-a``, ...).
Code that updates a parameter, optimizer state or running statistic in place, or writes into a
temporary without asking whether it may (``nets._arith``), raises "output array is read-only"
here, as a JAX array would refuse the write; code that computes new arrays and stores them back
runs exactly as on NumPy. The same test passing here and on ``numpy`` shows that the guarded
in-place fast paths and the functional paths give the same numbers.

NumPy's own functions still write into their own temporaries (``np.mean`` divides its sum in
place, ``np.isclose`` combines its masks in place), and what a test reads back through
``backend.to_numpy`` is a plain writeable copy.

The backend itself is registered here, from outside the package, the way any new backend is: an
adapter (:class:`ReadOnlyNumpyAdapter`, NumPy's with its own name) and one
``backend.register_backend`` call. ``backend.get_backend("numpy_readonly")`` then returns it;
it is left out of ``backend.list_backends()``, being for tests only.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import types

import array_api_compat.numpy as compat_numpy
import numpy as np

from xpml import backend
from xpml.backend.numpy_backend import NumpyAdapter

__all__ = ["READONLY_BACKEND", "ReadOnlyArray", "ReadOnlyNumpyAdapter", "readonly_arrays"]


class ReadOnlyNumpyAdapter(NumpyAdapter):
    """NumPy under another name: its arrays are NumPy arrays (their namespace stays NumPy's, so
    ``backend.backend_of`` names them ``numpy``); :func:`readonly_arrays` makes them refuse writes."""

    name = "numpy_readonly"

    def owns_namespace(self, xp) -> bool:
        return False  # array_api_compat.numpy belongs to the numpy backend


backend.register_backend(ReadOnlyNumpyAdapter(), listed=False)
READONLY_BACKEND = backend.get_backend("numpy_readonly")


def _freeze(out):
    if isinstance(out, np.ndarray):
        out = out.view(ReadOnlyArray)
        out.flags.writeable = False
    elif isinstance(out, tuple) and any(isinstance(o, np.ndarray) for o in out):
        out = type(out)(*map(_freeze, out)) if hasattr(out, "_fields") else tuple(map(_freeze, out))
    return out


def _frozen(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return _freeze(fn(*args, **kwargs))

    return wrapper


_OPERATORS = ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "floordiv", "rfloordiv", "pow",
              "rpow", "matmul", "rmatmul", "mod", "rmod", "neg", "pos", "abs", "invert", "lt", "le", "gt", "ge",
              "eq", "ne", "and", "rand", "or", "ror", "xor", "rxor", "getitem")


class ReadOnlyArray(np.ndarray):
    """An ndarray whose operators return read-only arrays (in-place operators are NumPy's: they raise)."""


def _frozen_operator(op):
    @functools.wraps(op)
    def wrapper(*args):
        out = op(*args)
        # NumPy's own Python code (np.isclose, np.testing) writes into the results of its operators.
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return out if caller.split(".")[0] == "numpy" else _freeze(out)

    return wrapper


for _op in _OPERATORS:
    setattr(ReadOnlyArray, f"__{_op}__", _frozen_operator(getattr(np.ndarray, f"__{_op}__")))


def _plain_copy(to_numpy):
    @functools.wraps(to_numpy)
    def wrapper(x, /):
        return np.array(to_numpy(x))

    return wrapper


@contextlib.contextmanager
def readonly_arrays(monkeypatch):
    """Within the block, the arrays array-api-compat's NumPy namespace returns are read-only."""
    from xpml.backend import _transfer, testing

    for name in dir(compat_numpy):
        fn = getattr(compat_numpy, name)
        if name.startswith("_") or isinstance(fn, (type, types.ModuleType)) or not callable(fn):
            continue
        monkeypatch.setattr(compat_numpy, name, _frozen(fn))
    host = _plain_copy(_transfer.to_numpy)
    for module in (backend, _transfer, testing):
        monkeypatch.setattr(module, "to_numpy", host)
    yield
