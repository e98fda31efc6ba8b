"""What the nets share: checks at every entry point, chunked prediction, hyperparameters as Python numbers.

:class:`Net` is the base of :class:`nets.TwoLayerNet` and :class:`nets.FullyConnectedNet`. Every
public method that takes data checks it here before any arithmetic: the arrays live on the net's
backend, have the right shape and a floating dtype, hold no NaN or inf, and labels are integers in
[0, C) with one per row. The checks read one or two numbers back from the device, so they run at
entry points only; the training loop (:class:`nets.Solver`) checks its data once and then calls
the unchecked kernels.
"""

from __future__ import annotations

import math

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_data, check_labels, check_positive
from ._state import VersionedState

__all__ = ["MAX_PARAMETERS", "Net", "as_float", "as_int", "dtype_name"]

# Nets above this many parameters (8 GiB of float32) are refused before anything is allocated; a
# typo such as --hidden-size 10000000 gets an error instead of an out-of-memory crash.
MAX_PARAMETERS = 2**31
# Bytes of temporaries one scoring chunk may use; keeps predict() on 50,000 x 3072 inputs bounded.
_SCORE_BUDGET = 64 * 2**20


def as_int(value, /, *, name: str) -> int:
    """A positive integer hyperparameter as a Python int (NumPy integers accepted).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.model import as_int
    >>> as_int(np.int64(3), name="batch_size")
    3
    >>> as_int(0, name="batch_size")
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: batch_size must be > 0, got 0
    """
    return int(check_positive(value, name=name, integer=True))


def as_float(value, /, *, name: str, allow_zero: bool = False) -> float:
    """A positive (or non-negative) hyperparameter as a Python float, so it never changes an array's dtype.

    Examples
    --------
    >>> from xpml.nets.model import as_float
    >>> as_float(2, name="learning_rate"), as_float(0, name="reg", allow_zero=True)
    (2.0, 0.0)
    >>> as_float(-1, name="learning_rate")
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: learning_rate must be > 0, got -1
    """
    return float(check_positive(value, name=name, allow_zero=allow_zero))


def dtype_name(dtype, /):
    """``"float32"`` / ``"float64"`` for a name, a NumPy type or dtype (``np.float64``), or None (float32).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.model import dtype_name
    >>> dtype_name(np.float64), dtype_name(np.dtype("float32")), dtype_name("float64"), dtype_name(None)
    ('float64', 'float32', 'float64', None)
    """
    if dtype is None or isinstance(dtype, str):
        return dtype
    name = getattr(dtype, "__name__", None) or str(dtype)
    name = name.rsplit(".", 1)[-1]
    return name if name in ("float32", "float64") else dtype


def check_size(shapes, /) -> None:
    """Refuse a set of parameter shapes with more than :data:`MAX_PARAMETERS` values in all.

    Examples
    --------
    >>> from xpml.nets.model import check_size
    >>> check_size([(3072, 100), (100, 10)])
    >>> check_size([(2**16, 2**16)])
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: the net would have 4,294,967,296 parameters, more than the 2,147,483,648 ...
    """
    total = sum(math.prod(s) for s in shapes)
    if total > MAX_PARAMETERS:
        raise InputError(f"the net would have {total:,} parameters, more than the {MAX_PARAMETERS:,} allowed; "
                         "choose smaller layers")


class Net(VersionedState):
    """Entry-point checks and chunked prediction for a net with ``params``, ``backend``, ``input_dim``
    and ``num_classes``, whose subclass provides ``_scores(X)`` (unchecked) and ``_widths()``."""

    backend: backend.Backend
    params: dict

    @property
    def dtype_name(self) -> str:
        """``"float32"`` or ``"float64"``: the dtype of the parameters."""
        return "float64" if self.dtype == self.backend.xp.float64 else "float32"

    # ---- input checks -------------------------------------------------------------------------

    def _own(self, X, name: str):
        """``X`` in the parameters' dtype, after checking where it lives, its shape and its dtype."""
        backend.check_on_backend(X, self.backend, name=name, owner="this net", target="net.backend")
        xp = self.backend.xp
        if X.ndim < 2 or math.prod(X.shape[1:]) != self.input_dim:
            raise InputError(f"{name} must have shape (N, {self.input_dim}) (or (N, d1, ..., dk) with "
                             f"d1 * ... * dk = {self.input_dim}), got {tuple(X.shape)}")
        if not xp.isdtype(X.dtype, "real floating"):
            raise InputTypeError(f"{name} must have a real floating dtype (float32 or float64), got {X.dtype}; "
                            f"convert it first, e.g. xp.astype({name}, xp.float32)")
        # The net computes in its parameters' dtype; a float64 input to a float32 net would silently
        # upcast every product, so it is cast once here instead.
        dt = self.params["W1"].dtype
        return X if X.dtype == dt else xp.astype(X, dt)

    def _check_X(self, X, name: str = "X"):
        """:meth:`_own`, then no NaN or inf and at least one row."""
        X = self._own(X, name)
        check_data(X, name=name, ndim=X.ndim)
        return X

    def _check_y(self, y, n: int, name: str = "y"):
        """Labels on the net's backend, integers in [0, C), one per row of the data."""
        backend.check_on_backend(y, self.backend, name=name, owner="this net", target="net.backend")
        if y.ndim != 1 or y.shape[0] != n:
            raise InputError(f"{name} must have shape ({n},), one label per row of the data; got {tuple(y.shape)}")
        check_labels(y, name=name, n=n, num_classes=self.num_classes)
        return y

    def _check_labelled(self, X, y, names=("X", "y")):
        X = self._check_X(X, names[0])
        return X, self._check_y(y, X.shape[0], names[1])

    def validate(self, X, y, /, *, names=("X", "y")) -> None:
        """Raise a clear error unless ``(X, y)`` is data this net takes (:class:`nets.model.Model`)."""
        self._check_labelled(X, y, tuple(names))

    # ---- prediction -----------------------------------------------------------------------------

    def _row_chunks(self, n: int):
        # Per row a chunk holds the activations of the widest layer and the scores, plus a copy of each.
        per_row = 2 * (max(self._widths()) + self.num_classes) * (8 if self.dtype_name == "float64" else 4)
        rows = max(1, _SCORE_BUDGET // per_row)
        for start in range(0, n, rows):
            yield slice(start, min(start + rows, n))

    def _chunked(self, X, fn):
        xp = self.backend.xp
        out = [fn(X[rows, ...]) for rows in self._row_chunks(X.shape[0])]
        return out[0] if len(out) == 1 else xp.concat(out, axis=0)

    def predict_proba(self, X, /):
        """Class probabilities (N, C), the softmax of the scores, computed in memory-bounded chunks."""
        X = self._check_X(X)
        xp = self.backend.xp

        def probs(rows):
            s = self._scores(rows)
            e = xp.exp(s - xp.max(s, axis=1, keepdims=True))
            return e / xp.sum(e, axis=1, keepdims=True)

        return self._chunked(X, probs)

    def predict(self, X, /):
        """Predicted labels (N,) of the index dtype: the argmax of the scores, in bounded chunks."""
        return self._predict(self._check_X(X))

    def _predict(self, X):
        xp = self.backend.xp
        return self._chunked(X, lambda rows: xp.argmax(self._scores(rows), axis=1))
