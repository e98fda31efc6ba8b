"""The two-layer fully connected ReLU network of CS231n assignment 1, on every backend.

``input - fully connected - ReLU - (dropout) - fully connected - softmax``, with assignment 1's
API (``loss(X, y, reg)``, ``train(...)`` returning the histories, ``predict``) and its L2
convention ``reg * sum(W**2)``. The arithmetic is :func:`nets.fc_net.network_loss`, the same
layers as :class:`nets.FullyConnectedNet`, and :meth:`TwoLayerNet.train` runs on
:class:`nets.Solver`, the one training loop.
"""

from __future__ import annotations

import math

from .. import backend
from ..backend._arith import iadd
from ..backend.errors import InputError
from ..backend.validation import check_same_length
from . import rules
from ._model import Net, as_float, as_int, check_size, dtype_name
from .checkpoint import register_model
from .fc_net import _network_loss, _network_scores
from .init import INIT_SCHEMES, init_weights
from .model import CourseFace
from .regularization import l1_penalty

__all__ = ["TwoLayerNet"]

_NETWORK = dict(num_layers=2, normalization=None, activation="relu", norm_params=None)


@register_model
class TwoLayerNet(Net, CourseFace):
    """A two-layer fully connected net with a ReLU hidden layer and a softmax output.

    Parameters
    ----------
    input_size : int
        D, the dimension of the inputs.
    hidden_size : int
        H, the number of hidden units.
    output_size : int
        C, the number of classes.
    std : float
        Scale of the initial weights for ``init="std"`` (the assignment's ``std * randn``).
    init : {"std", "xavier", "he"}, keyword-only
        Initialization scheme of the weights (see :mod:`nets.init`); biases start at zero.
    dtype : keyword-only
        float32 (default) or float64 (for gradient checks).
    seed : int, keyword-only
        Seeds the initial weights and, continuing the same stream, the minibatches and dropout
        masks of :meth:`train`; the same seed gives the same run on every backend.
    xp, device : keyword-only
        Where the parameters live (None: NumPy on the CPU). Inputs must live there too.
    dropout : float, keyword-only
        The default probability of *dropping* a hidden unit during training (inverted dropout);
        0 turns dropout off. Prediction never drops.

    Attributes
    ----------
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), on the net's backend.
    state : dict
        Empty: the net keeps no running statistics (:class:`nets.model.Model`).
    rng : backend.Generator
        Seeded with ``seed``; draws the minibatches and dropout masks of :meth:`train`.
    backend : backend.Backend
        Where the parameters live.

    Examples
    --------
    >>> from xpml.classifiers.data_utils import make_spiral
    >>> from xpml.nets import TwoLayerNet
    >>> X, y = make_spiral(20, 3, seed=0)
    >>> net = TwoLayerNet(2, 10, 3, std=0.1, seed=0)
    >>> net.loss(X).shape  # without labels: the class scores
    (60, 3)
    >>> loss, grads = net.loss(X, y)
    >>> round(float(loss), 2), sorted(grads)  # small weights: about log(3) = 1.10
    (1.1, ['W1', 'W2', 'b1', 'b2'])
    >>> history = net.train(X, y, X, y, learning_rate=1.0, num_iters=100, batch_size=30, reg=1e-3)
    >>> history["loss_history"][-1] < history["loss_history"][0], net.predict(X).shape
    (True, (60,))
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4, *,
                 init: str = "std", dtype=None, seed: int | None = 0, xp=None, device=None,
                 dropout: float = 0.0):
        input_size = as_int(input_size, name="input_size")
        hidden_size = as_int(hidden_size, name="hidden_size")
        output_size = as_int(output_size, name="output_size")
        std = as_float(std, name="std")
        if init not in INIT_SCHEMES:
            raise InputError(f"unknown init {init!r}; choose one of: {', '.join(INIT_SCHEMES)}")
        dropout = _check_dropout(dropout)
        check_size([(input_size, hidden_size), (hidden_size, output_size)])
        self.backend = backend.as_backend(xp, device=device)
        xp, device = self.backend.xp, self.backend.device
        self.dtype = backend.float_dtype(xp, device, dtype_name(dtype))
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.std, self.init, self.seed, self.dropout = std, init, seed, dropout
        self.rng = backend.Generator(seed, xp=self.backend)
        self.state = {}
        self.params = {
            "W1": init_weights(self.rng, (input_size, hidden_size), scheme=init, std=std, dtype=self.dtype),
            "b1": xp.zeros((hidden_size,), dtype=self.dtype, device=device),
            "W2": init_weights(self.rng, (hidden_size, output_size), scheme=init, std=std, dtype=self.dtype),
            "b2": xp.zeros((output_size,), dtype=self.dtype, device=device),
        }

    @property
    def input_dim(self) -> int:
        """D (the base class's name for ``input_size``)."""
        return self.input_size

    @property
    def num_classes(self) -> int:
        """C (the base class's name for ``output_size``)."""
        return self.output_size

    def _widths(self):
        return [self.hidden_size, self.output_size]

    def __repr__(self) -> str:
        return (f"TwoLayerNet({self.input_size}, {self.hidden_size}, {self.output_size}, init={self.init!r}, "
                f"dtype={self.dtype_name!r}, backend={self.backend.label!r})")

    # ---- forward and backward -----------------------------------------------------------------

    def init_state(self) -> dict:
        return {}

    def scores(self, params, X, /, *, state):
        """Class scores (N, C), unchecked (:class:`nets.model.Model`)."""
        return _network_scores(self.backend.xp, self.backend.device, params, X, **_NETWORK)

    def _scores(self, X):
        return self.scores(self.params, X, state=self.state)

    def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True):
        """``(loss, grads, state)`` of the data term (no regularization: :meth:`train` gives L2 and
        L1 to the Solver as transforms), with the net's ``dropout`` drawn from ``rng`` in training."""
        dropout_param = None
        if training and self.dropout and rng is not None:
            dropout_param = {"mode": "train", "p": 1.0 - self.dropout, "generator": rng}
        loss, grads = _network_loss(self.backend.xp, self.backend.device, params, X, y,
                                    dropout_param=dropout_param, l2=0.0, **_NETWORK)
        return loss, grads, state

    def loss(self, X, y=None, reg: float = 0.0, *, l1: float = 0.0, dropout_mask=None):
        """Scores, or the loss and its gradients.

        Parameters
        ----------
        X : array (N, D)
            Inputs, on the net's backend.
        y : array (N,) of int, optional
            Labels in [0, C). Without them the scores are returned.
        reg : float
            L2 strength: the loss adds ``reg * (sum(W1**2) + sum(W2**2))``; biases are not
            regularized.
        l1 : float, keyword-only
            L1 strength (``l1 * (sum|W1| + sum|W2|)``); with ``reg`` this is the elastic net.
        dropout_mask : array (N, H), keyword-only
            An inverted-dropout mask (see :func:`nets.regularization.dropout_masks`) multiplied
            into the hidden layer; None (default) applies no dropout.

        Returns
        -------
        scores : array (N, C)
            When ``y`` is None.
        (loss, grads) : (0-d array, dict)
            Otherwise: the loss stays on the device (read it with ``float(loss)``) and ``grads``
            has the keys and shapes of :attr:`params`.

        Notes
        -----
        ``h = max(0, X W1 + b1) * mask``, ``s = h W2 + b2``,
        ``L = 1/N sum_i (log sum_j exp s_ij - s_iy_i) + reg (|W1|^2 + |W2|^2) + l1 (|W1|_1 + |W2|_1)``.
        With ``P = softmax(s)`` and ``Y`` the one-hot labels: ``dL/ds = (P - Y) / N``,
        ``dW2 = h^T ds + 2 reg W2``, ``dh = ds W2^T * mask * [h > 0]``, ``dW1 = X^T dh + 2 reg W1``,
        ``db = column sums``.

        Examples
        --------
        >>> from xpml.classifiers.data_utils import make_spiral
        >>> from xpml.nets import TwoLayerNet
        >>> X, y = make_spiral(20, 3, seed=0)
        >>> net = TwoLayerNet(2, 10, 3, std=0.1, seed=0)
        >>> loss, grads = net.loss(X, y, reg=0.1)
        >>> {name: grad.shape for name, grad in sorted(grads.items())}
        {'W1': (2, 10), 'W2': (10, 3), 'b1': (10,), 'b2': (3,)}
        """
        if y is None:
            return self._scores(self._check_X(X))
        X, y = self._check_labelled(X, y)
        reg = as_float(reg, name="reg", allow_zero=True)
        l1 = as_float(l1, name="l1", allow_zero=True)
        dropout_param = None
        if dropout_mask is not None:
            dropout_param = {"mode": "train", "mask": self._own_mask(dropout_mask, X.shape[0])}
        loss, grads = _network_loss(self.backend.xp, self.backend.device, self.params, X, y,
                                    dropout_param=dropout_param, l2=reg, **_NETWORK)
        if l1:
            for k in ("W1", "W2"):
                penalty, dW = l1_penalty(self.params[k], l1)
                loss = loss + penalty
                grads[k] = iadd(grads[k], dW)
        return loss, grads

    def _own_mask(self, mask, n: int):
        xp, device = backend.namespace_and_device(mask)
        if xp is not self.backend.xp or device != self.backend.device or tuple(mask.shape) != (n, self.hidden_size):
            raise InputError(f"dropout_mask must have shape ({n}, {self.hidden_size}) and live on the net's backend")
        return mask

    # ---- training ---------------------------------------------------------------------------------

    def train(self, X, y, X_val=None, y_val=None, learning_rate: float = 1e-3, learning_rate_decay: float = 0.95,
              reg: float = 5e-6, num_iters: int = 100, batch_size: int | None = 200, verbose: bool = False, *,
              update_rule="sgd", optim_config: dict | None = None, schedule=None, dropout: float | None = None,
              l1: float = 0.0, max_norm: float | None = None, record_update_ratios: bool = False,
              callback=None) -> dict:
        """Train by minibatch gradient descent (on :class:`nets.Solver`); return the histories.

        Parameters
        ----------
        X : array (N, D); y : array (N,) of int
            Training data and labels, on the net's backend.
        X_val : array (N_val, D); y_val : array (N_val,), optional
            Validation data; without it ``val_acc_history`` stays empty.
        learning_rate : float
            The initial learning rate.
        learning_rate_decay : float
            Factor applied to the learning rate once per epoch (ignored with ``schedule``).
        reg : float
            L2 strength (see :meth:`loss`).
        num_iters : int
            Number of parameter updates.
        batch_size : int or None
            Minibatch size; examples are drawn with replacement, as in the course. None trains on
            all of ``X`` at every step (full batch, one epoch per step).
        verbose : bool
            Print the loss and accuracies once per epoch (the values of the per-epoch read).
        update_rule : str, Rule or callable, keyword-only
            A rule of :data:`nets.rules.RULES` by name (``"sgd"``, ``"momentum"``, ``"nesterov"``,
            ``"adagrad"``, ``"rmsprop"``, ``"adam"``), a :class:`nets.rules.Rule`, or a course rule
            ``rule(w, dw, config) -> (next_w, config)``.
        optim_config : dict, keyword-only
            Hyperparameters of the rule (``momentum``, ``beta1``, ...), copied for each parameter.
            Its ``learning_rate`` is overridden by ``learning_rate`` / ``schedule``.
        schedule : callable, keyword-only
            ``schedule(epoch) -> learning rate`` (see :mod:`nets.schedules`), called with the
            number of completed epochs; replaces ``learning_rate`` and ``learning_rate_decay``.
        dropout : float, keyword-only
            Probability of dropping a hidden unit (inverted dropout); when given, it becomes the
            net's ``dropout``.
        l1 : float, keyword-only
            L1 strength; with ``reg`` this is the elastic net.
        max_norm : float, keyword-only
            After each update, clip each column of ``W1`` and ``W2`` (a unit's incoming weights)
            to this Euclidean norm.
        record_update_ratios : bool, keyword-only
            Record, at the last step of each epoch, ``||update|| / ||W||`` of ``W1`` and ``W2``
            (the notes' health check: around 1e-3).
        callback : callable, keyword-only
            ``callback(it, loss)`` after every update, with the loss as a 0-d device array; reading
            it back (``float(loss)``) is the callback's choice and cost.

        Returns
        -------
        dict
            ``loss_history`` (one float per iteration), ``train_acc_history`` (accuracy on the
            last minibatch of each epoch, as in the course), ``val_acc_history`` (per epoch),
            ``learning_rate_history`` (the rate used in each epoch), ``diverged_at`` (the first
            iteration with a non-finite loss, else None; training stops at the end of that epoch)
            and, when asked, ``update_ratio_history`` (``{"W1": [...], "W2": [...]}``, per epoch).

        Notes
        -----
        An epoch is ``max(N // batch_size, 1)`` iterations. At the end of each one the accuracies
        are computed and read back with the epoch's losses in one transfer, and the learning rate
        is multiplied by ``learning_rate_decay``. Minibatch indices are drawn for up to 1000
        iterations in one call, from the net's generator, so runs with the same seed match across
        backends.

        Examples
        --------
        >>> from xpml.classifiers.data_utils import make_spiral
        >>> from xpml.nets import TwoLayerNet
        >>> X, y = make_spiral(20, 3, seed=0)
        >>> net = TwoLayerNet(2, 10, 3, std=0.1, seed=0)
        >>> history = net.train(X, y, X, y, num_iters=60, batch_size=30, update_rule="adam",
        ...                     optim_config={"learning_rate": 1e-2})
        >>> sorted(history)
        ['diverged_at', 'learning_rate_history', 'loss_history', 'train_acc_history', 'val_acc_history']
        >>> len(history["loss_history"]), len(history["val_acc_history"])  # one per iteration, one per epoch
        (60, 30)
        """
        # The data is checked here, under train()'s argument names; the Solver need not check it again.
        self._own(X, "X")
        backend.check_on_backend(y, self.backend, name="y", owner="this net", target="net.backend")
        check_same_length(("X", X), ("y", y))
        X, y = self._check_labelled(X, y)
        if (X_val is None) != (y_val is None):
            raise InputError("give both X_val and y_val, or neither")
        data = {"X_train": X, "y_train": y}
        if X_val is not None:
            self._own(X_val, "X_val")
            backend.check_on_backend(y_val, self.backend, name="y_val", owner="this net", target="net.backend")
            check_same_length(("X_val", X_val), ("y_val", y_val))
            X_val, y_val = self._check_labelled(X_val, y_val, ("X_val", "y_val"))
            data |= {"X_val": X_val, "y_val": y_val}
        learning_rate = as_float(learning_rate, name="learning_rate")
        if dropout is not None:
            self.dropout = _check_dropout(dropout)
        reg = as_float(reg, name="reg", allow_zero=True)
        l1 = as_float(l1, name="l1", allow_zero=True)
        transforms = ([rules.l2(reg)] if reg else []) + ([rules.l1(l1)] if l1 else []) + \
            ([rules.max_norm(max_norm)] if max_norm is not None else [])

        def report(solver):
            val = f", val acc {solver.val_acc_history[-1]:.4f}" if solver.val_acc_history else ""
            print(f"epoch {solver.epoch} (iteration {len(solver.loss_history)} / {num_iters}): loss "
                  f"{solver.loss_history[-1]:.6f}, train acc {solver.train_acc_history[-1]:.4f}{val}, "
                  f"learning rate {solver.learning_rate_history[-1]:.3g}")

        from .solver import Solver  # the Solver trains models; models do not need it to exist

        solver = Solver(self, data, update_rule=update_rule,
                        optim_config={**(optim_config or {}), "learning_rate": learning_rate},
                        lr_decay=learning_rate_decay, batch_size=batch_size, num_iters=num_iters, schedule=schedule,
                        transforms=transforms, record_update_ratios=record_update_ratios, callback=callback,
                        epoch_callback=report if verbose else None, rng=self.rng, restore_best=False,
                        check_ends=False, train_accuracy="batch", verbose=False, check_data=False)
        solver.train()
        history = {
            "loss_history": solver.loss_history,
            "train_acc_history": solver.train_acc_history,
            "val_acc_history": solver.val_acc_history,
            "learning_rate_history": solver.learning_rate_history,
            "diverged_at": solver.diverged_at,
        }
        if record_update_ratios:
            history["update_ratio_history"] = {k: solver.update_ratio_history.get(k, []) for k in ("W1", "W2")}
        return history

    # ---- checkpoints --------------------------------------------------------------------------

    def _checkpoint_config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "output_size": self.output_size,
                "std": self.std, "init": self.init, "dtype": self.dtype_name, "dropout": self.dropout,
                "seed": self.seed}

    def _checkpoint_state(self) -> dict:
        return self.state

    @classmethod
    def _checkpoint_shapes(cls, config: dict) -> dict:
        D = as_int(config["input_size"], name="input_size")
        H = as_int(config["hidden_size"], name="hidden_size")
        C = as_int(config["output_size"], name="output_size")
        shapes = {"param/W1": (D, H), "param/b1": (H,), "param/W2": (H, C), "param/b2": (C,)}
        check_size(shapes.values())
        return shapes

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, *, xp=None, device=None, dtype=None):
        net = cls.__new__(cls)
        bk = backend.as_backend(xp, device=device)
        net.backend = bk
        net.dtype = backend.float_dtype(bk.xp, bk.device, dtype_name(dtype if dtype is not None else config["dtype"]))
        net.input_size = as_int(config["input_size"], name="input_size")
        net.hidden_size = as_int(config["hidden_size"], name="hidden_size")
        net.output_size = as_int(config["output_size"], name="output_size")
        net.std = as_float(config["std"], name="std")
        if config["init"] not in INIT_SCHEMES:
            raise InputError(f"unknown init {config['init']!r}; choose one of: {', '.join(INIT_SCHEMES)}")
        net.init = config["init"]
        net.dropout = _check_dropout(config["dropout"])
        net.seed = config["seed"]
        net.rng = backend.Generator(net.seed, xp=bk)
        net.state = {}
        net.params = {k: bk.asarray(arrays[f"param/{k}"], dtype=net.dtype) for k in ("W1", "b1", "W2", "b2")}
        return net


def _check_dropout(p) -> float:
    try:
        value = float(p)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(p, (bool, str, bytes)) or not 0.0 <= value < 1.0:  # NaN fails the comparison too
        raise InputError(f"dropout is the probability of dropping a hidden unit, in [0, 1); got {p!r}")
    return value
