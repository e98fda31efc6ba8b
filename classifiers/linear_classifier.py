"""Linear classifiers trained by minibatch SGD: the course's ``LinearClassifier``, ``LinearSVM`` and ``Softmax``.

The scores are ``X @ W`` and the losses are :func:`nets.layers.svm_loss` and
:func:`nets.layers.softmax_loss` on them; training runs on :class:`nets.Solver`, the one training
loop of xpml, so every update rule of :mod:`nets.optim` applies, a non-finite loss stops training
at the end of its epoch (``diverged_at``), and a trained classifier saves and loads with
:func:`nets.save_model` / :func:`nets.load_model`.
"""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError
from ..backend.validation import check_labels, check_positive
from ..nets import Solver, checkpoint, rules
from ..nets.model import VersionedState, as_float, as_int, check_size, dtype_name
from ._checks import check_features, check_loss_inputs, check_train_set
from .linear_svm import _svm_loss
from .softmax import _softmax_loss

__all__ = ["LinearClassifier", "LinearSVM", "Softmax"]


class LinearClassifier(VersionedState):
    """A linear score function ``s = X W`` trained with minibatch SGD on a loss of ``(W, X, y, reg)``.

    Subclasses choose the loss (:class:`LinearSVM`, :class:`Softmax`). ``W`` (D, C) is created at
    the first :meth:`train` on the data's backend, device and dtype.

    Parameters
    ----------
    seed : int, keyword-only
        Seeds the weight initialisation ``0.001 * randn(D, C)`` and the minibatch draws; the same
        seed gives the same run on every backend.
    dtype : keyword-only
        float32 or float64 for W and the computation; None follows the training data's dtype.
        Data of another dtype is cast once at the start of :meth:`train`.

    Attributes
    ----------
    W : array (D, C) or None
        The weights (``params["W"]``), None before the first :meth:`train`.
    params : dict
        ``{"W": W}`` once trained: the parameters as :class:`nets.Solver` and the checkpoints see them.
    state : dict
        Empty (:class:`nets.model.Model`: a linear model keeps no running statistics).
    rng : backend.Generator or None
        Seeded with ``seed`` at the first :meth:`train`; draws the initial weights and minibatches.
    diverged_at : int or None
        After :meth:`train`: the first iteration whose loss was not finite, else None.

    Examples
    --------
    >>> from xpml.classifiers.data_utils import make_spiral
    >>> from xpml.classifiers.linear_classifier import LinearSVM
    >>> X, y = make_spiral(20, 3, seed=0)
    >>> svm = LinearSVM(seed=0)  # a LinearClassifier with the SVM loss
    >>> history = svm.train(X, y, learning_rate=0.1, reg=1e-3, num_iters=50, batch_size=30)
    >>> len(history), history[-1] < history[0]
    (50, True)
    >>> svm.W.shape, svm.predict(X).shape
    ((2, 3), (60,))
    """

    def __init__(self, *, seed: int = 0, dtype=None):
        self.seed = seed
        self.dtype = dtype
        self.params = {}
        self.state = {}
        self.rng = None
        self.diverged_at = None

    @property
    def W(self):
        return self.params.get("W")

    @W.setter
    def W(self, value):
        if value is None:
            self.params.pop("W", None)
        else:
            self.params["W"] = value

    def _loss(self, xp, device, W, X, y, reg):
        raise NotImplementedError("LinearClassifier is abstract: use LinearSVM or Softmax")

    # ---- the model contract (nets.model.Model) ---------------------------------------------------

    @property
    def num_classes(self) -> int:
        """C, the columns of ``W`` (after training)."""
        if self.W is None:
            raise RuntimeError("the classifier is not trained yet: it has no classes until train(X, y)")
        return int(self.W.shape[1])

    def init_state(self) -> dict:
        return {}

    def validate(self, X, y, /, *, names=("X", "y")) -> None:
        """Raise a clear error unless ``(X, y)`` fits the weights (:class:`nets.model.Model`)."""
        backend.namespace_and_device(self.W, X, y)
        check_features(X, dim=self.W.shape[0], name=names[0])
        check_labels(y, name=names[1], n=X.shape[0], num_classes=self.W.shape[1])

    def scores(self, params, X, /, *, state):
        """``X @ W`` (N, C), unchecked."""
        return X @ params["W"]

    def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True):
        """``(loss, {"W": dW}, state)`` of the data term, unchecked; :meth:`train` gives ``reg`` to the
        Solver as an L2 transform."""
        xp, device = backend.namespace_and_device(X)
        loss, dW = self._loss(xp, device, params["W"], X, y, 0.0)
        return loss, {"W": dW}, state

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False, *,
              update_rule=None, optim_config=None, callback=None) -> list[float]:
        """Train by minibatch stochastic gradient descent (on :class:`nets.Solver`).

        Parameters
        ----------
        X : array (N, D)
            Training data.
        y : array (N,)
            Integer labels in [0, C); C is ``max(y) + 1`` at the first call.
        learning_rate, reg : float
            Step size and L2 regularization strength.
        num_iters, batch_size : int
            Steps to take and examples per minibatch (drawn with replacement, as the course does).
        verbose : bool
            Print the loss every 100 iterations (a read-back from the device each time).
        update_rule : str, Rule or callable, keyword-only
            A rule of :data:`nets.rules.RULES` by name, a :class:`nets.rules.Rule`, or
            ``rule(w, dw, config) -> (next_w, config)`` as in the course's ``optim.py``; None is plain
            SGD, ``W - learning_rate * dW``.
        optim_config : dict, keyword-only
            The rule's starting config; ``learning_rate`` is added when absent.
        callback : callable, keyword-only
            ``callback(it, loss)`` after every step, with the loss as a 0-d device array; the caller
            decides whether to read it back. ``self.W`` holds the weights after that step, so the
            callback may evaluate the model (:meth:`predict`), e.g. once per epoch.

        Returns
        -------
        list of float
            The loss at every iteration, read back from the device once per epoch. A non-finite
            loss stops training at the end of its epoch; :attr:`diverged_at` says where.
        """
        xp, device, num_classes = check_train_set(X, y)
        learning_rate = as_float(learning_rate, name="learning_rate", allow_zero=True)
        reg = as_float(reg, name="reg", allow_zero=True)
        num_iters = int(check_positive(num_iters, name="num_iters", allow_zero=True, integer=True))
        batch_size = as_int(batch_size, name="batch_size")
        dt = backend.float_dtype(xp, device, dtype_name(X.dtype if self.dtype is None else self.dtype))
        X = xp.astype(X, dt, copy=False)
        num_train, dim = X.shape
        if self.W is None:
            self.rng = backend.Generator(self.seed, xp=xp, device=device)
            self.W = 0.001 * self.rng.normal((dim, num_classes), dtype=dt)
        else:
            # A second call continues training: the data must fit the weights it continues from.
            backend.namespace_and_device(self.W, X)
            check_features(X, dim=self.W.shape[0])
            check_labels(y, n=num_train, num_classes=self.W.shape[1])
            X = xp.astype(X, self.W.dtype, copy=False)
        self.diverged_at = None
        if num_iters == 0:
            return []

        def on_step(it, loss):
            if callback is not None:
                callback(it, loss)
            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {float(backend.to_numpy(loss)):f}")

        # train() checked the data at its entry: the Solver need not read it again.
        solver = Solver(self, {"X_train": X, "y_train": y}, update_rule="sgd" if update_rule is None else update_rule,
                        optim_config={"learning_rate": learning_rate, **(optim_config or {})}, batch_size=batch_size,
                        num_iters=num_iters, transforms=[rules.l2(reg)] if reg else [],
                        callback=on_step if callback is not None or verbose else None, rng=self.rng,
                        restore_best=False, check_ends=False, train_accuracy=None, verbose=False, check_data=False)
        solver.train()
        self.diverged_at = solver.diverged_at
        return solver.loss_history

    def predict(self, X, /):
        """Predicted labels ``argmax_j (X W)_j``: an integer array (N,) on X's device.

        Examples
        --------
        >>> from xpml.classifiers.data_utils import make_spiral
        >>> from xpml.classifiers.linear_classifier import Softmax
        >>> X, y = make_spiral(20, 3, seed=0)
        >>> model = Softmax(seed=0)
        >>> history = model.train(X, y, num_iters=5)
        >>> model.predict(X[:4])
        array([0, 2, 2, 2])
        """
        if self.W is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        xp, _ = backend.namespace_and_device(self.W, X)
        check_features(X, dim=self.W.shape[0])
        return xp.argmax(xp.astype(X, self.W.dtype, copy=False) @ self.W, axis=1)

    def loss(self, X_batch, y_batch, reg):
        """Loss and gradient ``(loss, dW)`` of the current ``W`` on a minibatch (see the subclass's loss).

        Examples
        --------
        >>> from xpml.classifiers.data_utils import make_spiral
        >>> from xpml.classifiers.linear_classifier import Softmax
        >>> X, y = make_spiral(20, 3, seed=0)
        >>> model = Softmax(seed=0)
        >>> history = model.train(X, y, num_iters=5)
        >>> loss, dW = model.loss(X, y, 0.0)
        >>> round(float(loss), 3), dW.shape
        (1.098, (2, 3))
        """
        if self.W is None:
            raise RuntimeError("the classifier has no weights yet: call train(X, y) first")
        xp, device = check_loss_inputs(self.W, X_batch, y_batch, reg)
        return self._loss(xp, device, self.W, X_batch, y_batch, as_float(reg, name="reg", allow_zero=True))

    # ---- checkpoints (nets.save_model / nets.load_model) ------------------------------------------

    def _checkpoint_config(self) -> dict:
        if self.W is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) before saving it")
        return {"seed": self.seed, "dtype": "float64" if self.W.dtype == backend.get_namespace(self.W).float64
                else "float32", "num_features": int(self.W.shape[0]), "num_classes": int(self.W.shape[1])}

    def _checkpoint_state(self) -> dict:
        return {}

    @classmethod
    def _checkpoint_shapes(cls, config: dict) -> dict:
        shape = (as_int(config["num_features"], name="num_features"), as_int(config["num_classes"], name="num_classes"))
        check_size([shape])
        return {"param/W": shape}

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, *, xp=None, device=None, dtype=None):
        bk = backend.as_backend(xp, device=device)
        dt = backend.float_dtype(bk.xp, bk.device, dtype_name(dtype if dtype is not None else config["dtype"]))
        clf = cls(seed=config["seed"], dtype=None if dtype is None else dt)
        clf.rng = backend.Generator(clf.seed, xp=bk)
        clf.W = bk.asarray(arrays["param/W"], dtype=dt)
        return clf

    @property
    def backend(self) -> backend.Backend:
        """Where the weights live (after training)."""
        if self.W is None:
            raise RuntimeError("the classifier is not trained yet: it lives nowhere until train(X, y)")
        return backend.backend_of(self.W)


@checkpoint.register_model
class LinearSVM(LinearClassifier):
    """A linear classifier trained on the multiclass SVM loss (:func:`svm_loss_vectorized`).

    ``loss="squared_hinge"`` (keyword-only) trains on the squared hinge (the L2-SVM) instead of
    the hinge (``"hinge"``, the default).

    Examples
    --------
    >>> from xpml.classifiers.data_utils import make_spiral
    >>> from xpml.classifiers.linear_classifier import LinearSVM
    >>> X, y = make_spiral(20, 3, seed=0)
    >>> svm = LinearSVM(seed=0)
    >>> history = svm.train(X, y, learning_rate=0.1, reg=1e-3, num_iters=50, batch_size=30)
    >>> round(history[0], 2), round(history[-1], 2)
    (2.0, 1.18)
    """

    LOSSES = ("hinge", "squared_hinge")

    def __init__(self, *, loss: str = "hinge", seed: int = 0, dtype=None):
        if loss not in self.LOSSES:
            raise InputError(f"loss must be one of {', '.join(map(repr, self.LOSSES))}, got {loss!r}")
        super().__init__(seed=seed, dtype=dtype)
        self.squared = loss == "squared_hinge"

    def _loss(self, xp, device, W, X, y, reg):
        return _svm_loss(xp, device, W, X, y, reg, squared=self.squared)


@checkpoint.register_model
class Softmax(LinearClassifier):
    """A linear classifier trained on the softmax loss (:func:`softmax_loss_vectorized`).

    Examples
    --------
    >>> from xpml.classifiers.data_utils import make_spiral
    >>> from xpml.classifiers.linear_classifier import Softmax
    >>> X, y = make_spiral(20, 3, seed=0)
    >>> softmax = Softmax(seed=0)
    >>> history = softmax.train(X, y, learning_rate=1.0, reg=1e-3, num_iters=50, batch_size=30)
    >>> round(history[0], 2), round(history[-1], 2)  # starts near log(3) = 1.10
    (1.1, 0.79)
    """

    def _loss(self, xp, device, W, X, y, reg):
        return _softmax_loss(xp, device, W, X, y, reg)
