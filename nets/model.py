"""The model contract: what :class:`nets.Solver` may call, with the parameters passed explicitly.

Every model of xpml (the linear classifiers, :class:`nets.TwoLayerNet`,
:class:`nets.FullyConnectedNet`, and the nets to come) implements :class:`Model`. The course's
face, ``model.params`` and ``model.loss(X, y=None)``, is built on it once by :class:`CourseFace`.
A model written for the course, with only ``params`` and ``loss``, trains on the Solver through
:class:`CourseModel`, the one adapter.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .. import backend
from ..backend.errors import InputTypeError
from ..backend.validation import check_data, check_labels
from ._model import as_float, as_int, check_size, dtype_name
from ._state import ModelVersionError, VersionedState

__all__ = ["CourseFace", "CourseModel", "Model", "ModelVersionError", "VersionedState", "as_float", "as_int",
           "check_size", "dtype_name"]


@runtime_checkable
class Model(Protocol):
    """A classifier the Solver can train: pure functions of explicit parameters and state.

    Attributes
    ----------
    params : dict
        Name -> array: the model's live parameters. The Solver updates them (in place where the
        namespace allows writes, else by storing new arrays back into the dict).
    state : dict
        Name -> array: what the model carries besides its parameters and changes in training
        (batch-norm running statistics); ``{}`` for most models. The Solver threads it through
        :meth:`loss_and_grads` and stores the result back here.
    num_classes : int
        C, the number of classes (labels are integers in [0, C)).
    backend : backend.Backend
        Where the parameters live; the data must live there too.
    rng : backend.Generator or None
        The model's generator; the Solver draws minibatches and dropout masks from it unless
        given a seed or a generator of its own.

    Methods
    -------
    init_state() -> dict
        A fresh ``state`` (zeros of the running statistics).
    loss_and_grads(params, X, y, /, *, state, rng=None, training=True) -> (loss, grads, state)
        The loss on ``(X, y)`` with the given parameters (0-d array, on the device), its gradients
        (a dict with the keys and shapes of ``params``; *new* arrays the caller may overwrite)
        and the new state. ``training`` selects training behaviour (dropout, batch statistics);
        ``rng`` draws the dropout masks (None: the model's own fixed masks, as the course's
        gradient checks need). Must not change ``params``, ``state`` or the model, and must not
        read values back to the host, so that it traces into a compiled step (JAX).
        Regularization that belongs to the model's definition (FullyConnectedNet's ``reg``) is
        part of the loss; the Solver's transforms (:mod:`nets.rules`) add theirs.
    scores(params, X, /, *, state) -> array (N, C)
        Class scores in test mode.
    validate(X, y, /, *, names=("X", "y")) -> None
        Raise a clear error for data the model cannot take (wrong shape, dtype or backend, NaN,
        labels out of range), naming the arguments by ``names``. The Solver calls it once per data
        set; it may read values back, the other methods may not.

    Examples
    --------
    A new model needs these few members; :class:`CourseFace` then gives it the course's
    ``loss(X, y=None)`` and ``predict``::

        class Linear(CourseFace):
            def __init__(self, D, C, *, xp=None, seed=0):
                self.backend = backend.as_backend(xp)
                self.rng = backend.Generator(seed, xp=self.backend)
                self.params = {"W": 0.01 * self.rng.normal((D, C))}
                self.state, self.num_classes = {}, C

            def init_state(self):
                return {}

            def scores(self, params, X, /, *, state):
                return X @ params["W"]

            def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True):
                loss, dscores = softmax_loss(self.scores(params, X, state=state), y)
                return loss, {"W": X.T @ dscores}, state

            def validate(self, X, y, /, *, names=("X", "y")):
                check_data(X, name=names[0])
                check_labels(y, name=names[1], n=X.shape[0], num_classes=self.num_classes)

        Solver(Linear(D, C), data, update_rule="adam").train()
    """

    params: dict
    state: dict
    num_classes: int
    backend: Any
    rng: Any

    def init_state(self) -> dict: ...

    def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True): ...

    def scores(self, params, X, /, *, state): ...

    def validate(self, X, y, /, *, names=("X", "y")) -> None: ...


class CourseFace:
    """The course's face of a :class:`Model`: ``loss(X, y=None)`` on the live ``params`` and ``state``.

    Without labels, the scores (test mode); with them, ``(loss, grads)`` in training mode, with the
    model's own dropout masks, storing the new state (running statistics) back, as the course's
    models do.

    Examples
    --------
    :class:`nets.FullyConnectedNet` takes its ``loss`` from here:

    >>> import numpy as np
    >>> from xpml.nets import FullyConnectedNet
    >>> from xpml.nets.model import CourseFace
    >>> net = FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0)
    >>> isinstance(net, CourseFace)
    True
    >>> X = np.zeros((5, 3), dtype=np.float32)
    >>> net.loss(X).shape
    (5, 2)
    >>> loss, grads = net.loss(X, np.array([0, 1, 0, 1, 1]))
    >>> round(float(loss), 4)
    0.6931
    """

    def loss(self, X, y=None):
        if y is None:
            return self.scores(self.params, X, state=self.state)
        loss, grads, self.state = self.loss_and_grads(self.params, X, y, state=self.state, rng=None, training=True)
        return loss, grads


class CourseModel:
    """A model written for the course (``params`` and ``loss(X, y=None)`` only), as a :class:`Model`.

    The Solver wraps such a model in this adapter, explicitly: ``loss_and_grads`` and ``scores``
    call ``model.loss`` after putting the given parameters into ``model.params`` (the course's
    models read their parameters from there; for the live parameters that is a no-op). It keeps
    no state, is never compiled, and reads ``num_classes`` from the model when it has one.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.model import CourseModel, Model
    >>> class Course:
    ...     def __init__(self):
    ...         self.params, self.num_classes = {"W": np.zeros((3, 2))}, 2
    ...     def loss(self, X, y=None):
    ...         scores = X @ self.params["W"]
    ...         return scores if y is None else (0.0, {"W": np.zeros_like(self.params["W"])})
    >>> model = CourseModel(Course())
    >>> isinstance(model, Model), model.num_classes
    (True, 2)

    Other parameters are scored, and the live ones put back:

    >>> model.scores({"W": np.ones((3, 2))}, np.ones((1, 3)), state={})
    array([[3., 3.]])
    >>> float(model.params["W"].sum())
    0.0
    >>> CourseModel(object())
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputTypeError: model must have a params dict and a loss(X, y=None) method; got object
    """

    def __init__(self, model):
        if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
            raise InputTypeError(
                f"model must have a params dict and a loss(X, y=None) method; got {type(model).__name__}"
            )
        self.model = model
        self.params = model.params
        self.state = {}
        self.num_classes = getattr(model, "num_classes", None)
        arrays = list(model.params.values())
        self.backend = backend.backend_of(arrays[0]) if arrays else None
        self.rng = None

    def init_state(self) -> dict:
        return {}

    def validate(self, X, y, /, *, names=("X", "y")) -> None:
        backend.namespace_and_device(X, y, *self.params.values())
        check_data(X, name=names[0], ndim=max(X.ndim, 2))
        check_labels(y, name=names[1], n=X.shape[0], num_classes=self.num_classes)

    def _use(self, params) -> dict:
        """Put ``params`` into the course model's dict; return what they replaced."""
        live, replaced = self.model.params, {}
        for k, v in params.items():
            if live.get(k) is not v:
                replaced[k] = live.get(k)
                live[k] = v
        return replaced

    def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True):
        self._use(params)
        loss, grads = self.model.loss(X, y)
        return loss, dict(grads), state

    def scores(self, params, X, /, *, state):
        # Averaged or best parameters are scored, then the live ones go back.
        replaced = self._use(params)
        try:
            return self.model.loss(X)
        finally:
            self.model.params.update(replaced)
