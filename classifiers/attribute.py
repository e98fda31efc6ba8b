"""Attribute classification (the notes' multi-label case): a linear classifier of C binary attributes.

Each example has a vector of attributes ``y_i`` in {-1, +1}^C (not one class among C), and each
attribute gets its own binary hinge: :func:`nets.losses.attribute_loss`. :class:`AttributeClassifier`
is a linear model with the course's face (a ``params`` dict and ``loss(X, y=None)``), so the
:class:`nets.Solver` trains it; :func:`attribute_accuracy` scores its predictions attribute by attribute.
"""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_data
from ..nets.init import init_weights
from ..nets.losses import attribute_loss, l2_penalty
from ..nets.model import as_float, as_int, check_size, dtype_name

__all__ = ["AttributeClassifier", "attribute_accuracy"]

_BAD_ATTRIBUTES = ("attributes must be +1 (has the attribute) or -1 (has not); {name} holds other values "
                   "(0/1 labels become +1/-1 as 2 * y - 1)")


def _check_attributes(xp, y, /, *, name: str, shape) -> None:
    """Shape and values of an attribute matrix: one value read back from the device."""
    if tuple(y.shape) != tuple(shape):
        raise InputError(f"{name} must hold one row of attributes per example, shape {tuple(shape)}; "
                         f"got {tuple(y.shape)}")
    if xp.isdtype(y.dtype, "bool"):
        raise InputTypeError(f"{name} is boolean; attributes are +1/-1 numbers (use 2 * y - 1 on 0/1 values)")
    if bool(xp.any((y != 1) & (y != -1))):
        raise InputError(_BAD_ATTRIBUTES.format(name=name))


def attribute_accuracy(y_pred, y_true, /):
    """The fraction of examples whose attribute is predicted right, for each attribute.

    Parameters
    ----------
    y_pred, y_true : arrays (N, C) of +1/-1
        Predicted and true attributes, of one namespace and device.

    Returns
    -------
    array (C,) of floats on their device
        ``mean over i of (y_pred[i, j] == y_true[i, j])`` for each attribute j.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers import attribute_accuracy
    >>> attribute_accuracy(np.array([[1, -1], [1, 1]]), np.array([[1, 1], [-1, 1]])).tolist()
    [0.5, 0.5]
    """
    xp, device = backend.namespace_and_device(y_pred, y_true)
    if y_true.ndim != 2 or y_true.shape[0] == 0:
        raise InputError(f"y_true must hold attributes of shape (N, C) with N >= 1, got {tuple(y_true.shape)}")
    _check_attributes(xp, y_pred, name="y_pred", shape=y_true.shape)
    _check_attributes(xp, y_true, name="y_true", shape=y_true.shape)
    floats = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    dtype = floats.get("float64", floats["float32"])
    # Counted hits over N: one division, the same bits on every backend (as nets.accuracy).
    return xp.astype(xp.sum(xp.astype(y_pred == y_true, xp.int64), axis=0), dtype) / y_true.shape[0]


class AttributeClassifier:
    """A linear classifier of C binary attributes, trained with the attribute hinge loss.

    Parameters
    ----------
    input_dim : int
        D, the number of features.
    num_attributes : int
        C, the number of attributes.
    std : float, keyword-only
        Standard deviation of the initial weights.
    reg : float, keyword-only
        L2 regularization strength on the weights.
    dtype : "float32" or "float64", keyword-only
    seed : int, keyword-only
        Seed of the initial weights (the same weights on every backend).
    xp, device : keyword-only
        The backend of the parameters (default NumPy on the CPU).

    Attributes
    ----------
    params : dict
        ``W`` (D, C) and ``b`` (C,).

    Notes
    -----
    Scores ``f = X W + b``; loss ``(1/N) sum_ij max(0, 1 - y_ij f_ij) + reg * sum(W**2)``; the
    prediction of attribute j is +1 where ``f_ij > 0``, else -1. Train it with the Solver as any
    course model; the Solver's accuracies assume one class per example, so pass
    ``train_accuracy=None`` and no validation split, and score with :func:`attribute_accuracy`::

        model = AttributeClassifier(D, C)
        Solver(model, {"X_train": X, "y_train": Y}, train_accuracy=None).train()
        attribute_accuracy(model.predict(X_test), Y_test)

    Examples
    --------
    Two attributes, "feature 0 is positive" and "feature 1 is positive", learnt from 40 examples:

    >>> import numpy as np
    >>> from xpml.classifiers import AttributeClassifier, attribute_accuracy
    >>> from xpml.nets import Solver
    >>> X = np.random.default_rng(0).standard_normal((40, 3))
    >>> Y = np.where(X[:, :2] > 0, 1, -1)
    >>> model = AttributeClassifier(3, 2, seed=0)
    >>> model
    AttributeClassifier(3, 2, reg=0.0, backend='numpy')
    >>> model.params["W"].shape, model.params["W"].dtype
    ((3, 2), dtype('float32'))
    >>> loss, grads = model.loss(X, Y)
    >>> sorted(grads)
    ['W', 'b']
    >>> solver = Solver(model, {"X_train": X, "y_train": Y}, optim_config={"learning_rate": 0.5},
    ...                 train_accuracy=None, num_epochs=20, batch_size=40, verbose=False)
    >>> solver.train()
    >>> attribute_accuracy(model.predict(X), Y).tolist()
    [1.0, 0.975]
    """

    def __init__(self, input_dim: int, num_attributes: int, /, *, std: float = 1e-3, reg: float = 0.0,
                 dtype=None, seed: int | None = 0, xp=None, device=None):
        self.input_dim = as_int(input_dim, name="input_dim")
        self.num_attributes = as_int(num_attributes, name="num_attributes")
        self.std = as_float(std, name="std")
        self.reg = as_float(reg, name="reg", allow_zero=True)
        check_size([(self.input_dim, self.num_attributes)])
        self.backend = backend.as_backend(xp, device=device)
        xp, device = self.backend.xp, self.backend.device
        self.dtype = backend.float_dtype(xp, device, dtype_name(dtype))
        # One generator: the initial weights, then the Solver's minibatches (nets.Model's ``rng``).
        self.rng = backend.Generator(seed, xp=self.backend)
        self.params = {
            "W": init_weights(self.rng, (self.input_dim, self.num_attributes),
                              std=self.std, dtype=self.dtype),
            "b": xp.zeros((self.num_attributes,), dtype=self.dtype, device=device),
        }
        # What nets.Model declares: no running state; the Solver draws minibatches from this generator.
        self.state: dict = {}
        self.num_classes = self.num_attributes

    def __repr__(self) -> str:
        return (f"AttributeClassifier({self.input_dim}, {self.num_attributes}, reg={self.reg}, "
                f"backend={self.backend.label!r})")

    # ---- checks at the entry points ------------------------------------------------------------

    def _own(self, X, name: str = "X"):
        backend.check_on_backend(X, self.backend, name=name, owner="this model", target="model.backend")
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise InputError(f"{name} must have shape (N, {self.input_dim}), got {tuple(X.shape)}")
        check_data(X, name=name)
        return X if X.dtype == self.dtype else self.backend.xp.astype(X, self.dtype)

    # ---- the model contract (nets.Model): pure functions of explicit parameters -------------------

    def init_state(self) -> dict:
        return {}

    def validate(self, X, y, /, *, names=("X", "y")) -> None:
        """The Solver's one check of a labelled split: features and +1/-1 attributes."""
        self._own(X, names[0])
        backend.check_on_backend(y, self.backend, name=names[1], owner="this model", target="model.backend")
        _check_attributes(self.backend.xp, y, name=names[1], shape=(X.shape[0], self.num_attributes))

    def scores(self, params, X, /, *, state=None):
        """The attribute scores ``X W + b`` (N, C) with the given parameters."""
        return X @ params["W"] + params["b"]

    def loss_and_grads(self, params, X, y, /, *, state=None, rng=None, training=True):
        """The attribute hinge loss with the L2 term, its gradients and the (empty) state; no checks
        and no reads back to the host (the Solver has checked its data once)."""
        xp = self.backend.xp
        data_loss, dscores = attribute_loss(self.scores(params, X), y, check=False, xp=xp)
        reg_loss, dW_reg = l2_penalty(params["W"], self.reg, xp=xp)
        grads = {"W": xp.matrix_transpose(X) @ dscores + dW_reg, "b": xp.sum(dscores, axis=0)}
        return data_loss + reg_loss, grads, {} if state is None else state

    def loss(self, X, y=None):
        """Scores (N, C) without attributes; ``(loss, grads)`` with them (the course's contract).

        Parameters
        ----------
        X : array (N, D)
        y : array (N, C) of +1/-1, optional

        Returns
        -------
        scores : array (N, C), when y is None
        loss, grads : 0-d array and dict of arrays shaped like ``params``, otherwise
        """
        X = self._own(X)
        if y is None:
            return self.scores(self.params, X)
        self.validate(X, y)
        loss, grads, _ = self.loss_and_grads(self.params, X, y)
        return loss, grads

    def predict(self, X):
        """The predicted attributes (N, C): +1 where the score is positive, else -1 (int8)."""
        xp = self.backend.xp
        one = xp.asarray(1, dtype=xp.int8, device=self.backend.device)
        return xp.where(self.scores(self.params, self._own(X)) > 0, one, -one)
