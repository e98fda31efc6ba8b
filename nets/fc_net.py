"""Fully connected nets of any depth, as in CS231n assignment 2's ``fc_net.py``, on every backend.

``{affine - [batch/layer norm] - activation - [dropout]} x (L - 1) - affine - softmax``, built
from the layers of :mod:`nets.layers`. The forward and backward passes are functions of the
parameters (:func:`network_loss`), shared with :class:`nets.TwoLayerNet`: one copy of the math.
"""

from __future__ import annotations

import functools

from .. import backend
from ..backend._arith import iadd
from ..backend.errors import InputError, InputTypeError
from ._model import Net, as_float, as_int, check_size, dtype_name
from .checkpoint import register_model
from .init import INIT_SCHEMES, init_weights
from .layers import (
    affine_backward,
    affine_forward,
    affine_norm_act_dropout_backward,
    affine_norm_act_dropout_forward,
    check_activation,
    check_normalization,
    keep_probability,
)
from .losses import DistillationTargets, classification_loss, l2_penalty
from .model import CourseFace

__all__ = ["MAXOUT_PIECES", "FullyConnectedNet", "network_loss", "network_scores"]

# Linear pieces per maxout unit (the notes' maxout has two): a maxout layer of H units has 2H
# affine outputs.
MAXOUT_PIECES = 2


@functools.cache
def _names(num_layers: int) -> tuple:
    """``(W, b, gamma, beta)`` names of affine layers 1..L: built once, not per minibatch."""
    return tuple((f"W{i}", f"b{i}", f"gamma{i}", f"beta{i}") for i in range(1, num_layers + 1))


def _forward(xp, device, params, X, *, num_layers: int, normalization, activation: str, norm_params,
             dropout_param):
    """Scores (N, C) and the caches of every layer."""
    h, caches = X, []
    names = _names(num_layers)
    for i in range(num_layers - 1):
        W, b, gamma, beta = names[i]
        if normalization:
            h, cache = affine_norm_act_dropout_forward(h, params[W], params[b], params[gamma], params[beta],
                                                       norm_params[i], dropout_param, normalization=normalization,
                                                       activation=activation, xp=xp, device=device)
        else:
            h, cache = affine_norm_act_dropout_forward(h, params[W], params[b], None, None, None, dropout_param,
                                                       normalization=None, activation=activation, xp=xp,
                                                       device=device)
        caches.append(cache)
    W, b, _, _ = names[-1]
    scores, cache = affine_forward(h, params[W], params[b], xp=xp)
    caches.append(cache)
    return scores, caches


def _check_network(num_layers, normalization, activation) -> None:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise InputError(f"num_layers must be a positive integer, got {num_layers!r}")
    check_normalization(normalization)
    check_activation(activation)


def network_scores(params, X, /, *, num_layers: int, normalization=None, activation: str = "relu",
                   norm_params=None):
    """Class scores (N, C) of a fully connected net in test mode (no dropout, running statistics).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import FullyConnectedNet
    >>> from xpml.nets.fc_net import network_scores
    >>> net = FullyConnectedNet([5, 4], input_dim=3, num_classes=2, seed=0)
    >>> network_scores(net.params, np.ones((6, 3), dtype=np.float32), num_layers=3).shape
    (6, 2)
    """
    _check_network(num_layers, normalization, activation)
    xp, device = backend.namespace_and_device(X, params["W1"])
    return _network_scores(xp, device, params, X, num_layers=num_layers, normalization=normalization,
                           activation=activation, norm_params=norm_params)


def _network_scores(xp, device, params, X, *, num_layers, normalization, activation, norm_params):
    return _forward(xp, device, params, X, num_layers=num_layers, normalization=normalization, activation=activation,
                    norm_params=norm_params, dropout_param=None)[0]


def network_loss(params, X, y, /, *, num_layers: int, normalization=None, activation: str = "relu",
                 norm_params=None, dropout_param=None, l2: float = 0.0):
    """Softmax loss and gradients of a fully connected net on one minibatch.

    Parameters
    ----------
    params : dict
        ``W1..WL``, ``b1..bL`` and, with a normalization, ``gamma1..``, ``beta1..`` (L - 1 each).
    X : array (N, D) or (N, d1, ..., dk); y : array (N,), array (N, C) or DistillationTargets
        Inputs and labels in [0, C) (not checked here), soft targets, or labels with a teacher's
        probabilities (:func:`nets.losses.classification_loss` picks the loss).
    num_layers : int, keyword-only
        L, the number of affine layers.
    normalization, activation, norm_params, dropout_param : keyword-only
        As :func:`nets.layers.affine_norm_act_dropout_forward`; ``norm_params`` holds one
        ``bn_param`` / ``ln_param`` per hidden layer, and the batch-norm running statistics are
        stored back into them.
    l2 : float, keyword-only
        The penalty ``l2 * sum(W**2)`` over every weight matrix (biases and normalization
        parameters are not penalized).

    Returns
    -------
    loss : 0-d array
    grads : dict with the keys and shapes of ``params``

    Examples
    --------
    Small initial weights score both classes alike: a loss of about log 2.

    >>> import numpy as np
    >>> from xpml.nets import FullyConnectedNet
    >>> from xpml.nets.fc_net import network_loss
    >>> net = FullyConnectedNet([5, 4], input_dim=3, num_classes=2, seed=0, dtype="float64")
    >>> X, y = np.random.default_rng(0).standard_normal((6, 3)), np.array([0, 1, 0, 1, 1, 0])
    >>> loss, grads = network_loss(net.params, X, y, num_layers=3)
    >>> round(float(loss), 4), round(float(np.log(2)), 4)
    (0.6931, 0.6931)
    >>> grads["W2"].shape
    (5, 4)
    """
    _check_network(num_layers, normalization, activation)
    xp, device = backend.namespace_and_device(X, y.labels if isinstance(y, DistillationTargets) else y, params["W1"])
    return _network_loss(xp, device, params, X, y, num_layers=num_layers, normalization=normalization,
                         activation=activation, norm_params=norm_params, dropout_param=dropout_param, l2=float(l2))


def _network_loss(xp, device, params, X, y, *, num_layers, normalization, activation, norm_params, dropout_param, l2):
    """:func:`network_loss` on a known namespace and device: the kernel the nets train with."""
    scores, caches = _forward(xp, device, params, X, num_layers=num_layers, normalization=normalization,
                              activation=activation, norm_params=norm_params, dropout_param=dropout_param)
    loss, dout = classification_loss(scores, y, xp=xp, device=device)
    names = _names(num_layers)
    grads = {}
    W, b, _, _ = names[-1]
    dout, grads[W], grads[b] = affine_backward(dout, caches[-1], need_dx=num_layers > 1, xp=xp)
    for i in range(num_layers - 2, -1, -1):
        W, b, gamma, beta = names[i]
        dout, grads[W], grads[b], dgamma, dbeta = affine_norm_act_dropout_backward(dout, caches[i], need_dx=i > 0,
                                                                                   xp=xp)
        if normalization:
            grads[gamma], grads[beta] = dgamma, dbeta
    if l2:
        for W, _, _, _ in names:
            penalty, dW = l2_penalty(params[W], l2, xp=xp)
            loss = loss + penalty
            grads[W] = iadd(grads[W], dW)
    return loss, grads


def _dims(hidden_dims) -> tuple[int, ...]:
    if isinstance(hidden_dims, (str, bytes)) or not hasattr(hidden_dims, "__iter__"):
        raise InputTypeError(f"hidden_dims must be a list of layer sizes (e.g. [100, 100]), got {hidden_dims!r}")
    dims = tuple(hidden_dims)
    for i, h in enumerate(dims):
        if isinstance(h, bool):
            raise InputTypeError(f"hidden_dims[{i}] must be a positive integer, got {h!r}")
        try:
            as_int(h, name=f"hidden_dims[{i}]")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc}; hidden_dims lists the width of each hidden layer, e.g. [100, 100]") from None
    return tuple(int(h) for h in dims)


@register_model
class FullyConnectedNet(Net, CourseFace):
    """A fully connected net with any number of hidden layers, a softmax output and L2 regularization.

    Parameters
    ----------
    hidden_dims : list of int
        The width of each hidden layer; empty means no hidden layer (a linear softmax classifier).
    input_dim : int
        D, the size of one input (inputs may come as (N, D) or as (N, d1, ..., dk) images).
    num_classes : int
        C.
    dropout_keep_ratio : float
        Probability of *keeping* a hidden unit during training (inverted dropout); 1 means no
        dropout, as in the course.
    normalization : None, ``"batchnorm"`` or ``"layernorm"``
        Normalization after each hidden affine layer, before the activation.
    reg : float
        L2 strength; the loss adds ``0.5 * reg * sum(W**2)`` over every weight matrix (the course's
        convention for this net; :class:`nets.TwoLayerNet` keeps assignment 1's ``reg * sum(W**2)``).
    weight_scale : float
        Standard deviation of the initial weights for ``init="std"`` (the course's default init).
    dtype
        float32 (default) or float64 (for gradient checks); a name, a NumPy type or a dtype.
    seed : int or None
        Seeds the initial weights and the net's generator :attr:`rng` (which draws dropout masks
        in training). As in the course, it also fixes the dropout mask of direct :meth:`loss` calls
        (the same mask at every call, so gradient checks see one function); :class:`nets.Solver`
        draws a fresh mask per step from the generator instead.
    activation : str, keyword-only
        ``"relu"`` (default), ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"`` or ``"maxout"`` (two
        pieces per unit).
    init : {"std", "xavier", "he"}, keyword-only
        Weight initialization (see :mod:`nets.init`); ``"std"`` uses ``weight_scale``.
    xp, device : keyword-only
        Where the parameters live (None: NumPy on the CPU). Inputs must live there too.

    Attributes
    ----------
    params : dict
        ``W1..WL``, ``b1..bL`` and, with a normalization, ``gamma1..gamma(L-1)``,
        ``beta1..beta(L-1)``, on the net's backend.
    bn_params : list of dict
        One ``bn_param`` (batchnorm: ``mode`` and the running statistics) or ``ln_param`` per
        hidden layer; empty without normalization.
    dropout_param : dict
        ``{"mode", "p"}`` (and ``"seed"`` when given), as in the course.
    num_layers : int
        L = len(hidden_dims) + 1.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import FullyConnectedNet
    >>> net = FullyConnectedNet([5, 4], input_dim=3, num_classes=2, seed=0, dtype="float64")
    >>> net.num_layers, sorted(net.params), net.params["W2"].shape
    (3, ['W1', 'W2', 'W3', 'b1', 'b2', 'b3'], (5, 4))
    >>> X, y = np.random.default_rng(0).standard_normal((6, 3)), np.array([0, 1, 0, 1, 1, 0])
    >>> net.loss(X).shape
    (6, 2)
    >>> loss, grads = net.loss(X, y)
    >>> round(float(loss), 4)
    0.6931
    >>> sorted(FullyConnectedNet([4], input_dim=3, num_classes=2, normalization="batchnorm").params)
    ['W1', 'W2', 'b1', 'b2', 'beta1', 'gamma1']
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout_keep_ratio=1, normalization=None,
                 reg=0.0, weight_scale=1e-2, dtype=None, seed=None, *, activation: str = "relu", init: str = "std",
                 xp=None, device=None):
        self._configure(hidden_dims, input_dim, num_classes, dropout_keep_ratio, normalization, reg, weight_scale,
                        dtype, seed, activation=activation, init=init, xp=xp, device=device)
        xp, device = self.backend.xp, self.backend.device
        self.params = {}
        for name, shape in self._param_shapes().items():
            if name.startswith("W"):
                self.params[name] = init_weights(self.rng, shape, scheme=self.init, std=self.weight_scale,
                                                 dtype=self.dtype)
            elif name.startswith("gamma"):
                self.params[name] = xp.ones(shape, dtype=self.dtype, device=device)
            else:
                self.params[name] = xp.zeros(shape, dtype=self.dtype, device=device)
        self.bn_params = self._fresh_norm_params()

    def _configure(self, hidden_dims, input_dim, num_classes, dropout_keep_ratio, normalization, reg, weight_scale,
                   dtype, seed, *, activation, init, xp, device):
        """Check and store the hyperparameters (everything but the arrays)."""
        self.hidden_dims = _dims(hidden_dims)
        self.input_dim = as_int(input_dim, name="input_dim")
        self.num_classes = as_int(num_classes, name="num_classes")
        self.dropout_keep_ratio = keep_probability(dropout_keep_ratio, name="dropout_keep_ratio")
        self.normalization = check_normalization(normalization)
        self.activation = check_activation(activation)
        self.reg = as_float(reg, name="reg", allow_zero=True)
        self.weight_scale = as_float(weight_scale, name="weight_scale")
        if init not in INIT_SCHEMES:
            raise InputError(f"unknown init {init!r}; choose one of: {', '.join(INIT_SCHEMES)}")
        self.init = init
        self.num_layers = len(self.hidden_dims) + 1
        self.use_dropout = self.dropout_keep_ratio != 1.0
        check_size(self._param_shapes().values())
        self.backend = backend.as_backend(xp, device=device)
        self.dtype = backend.float_dtype(self.backend.xp, self.backend.device, dtype_name(dtype))
        self.rng = backend.Generator(seed, xp=self.backend)
        self.seed = None if seed is None else int(seed)
        self.dropout_param = {"mode": "train", "p": self.dropout_keep_ratio}
        if self.seed is not None:
            self.dropout_param["seed"] = self.seed

    def _fan_out(self, i: int) -> int:
        """Outputs of affine layer i (a maxout layer has two per unit)."""
        if i == self.num_layers:
            return self.num_classes
        return self.hidden_dims[i - 1] * (MAXOUT_PIECES if self.activation == "maxout" else 1)

    def _param_shapes(self) -> dict:
        """Name -> shape of every parameter, from the hyperparameters alone."""
        shapes = {}
        fan_in = self.input_dim
        for i in range(1, self.num_layers + 1):
            fan_out = self._fan_out(i)
            shapes[f"W{i}"], shapes[f"b{i}"] = (fan_in, fan_out), (fan_out,)
            if self.normalization and i < self.num_layers:
                shapes[f"gamma{i}"], shapes[f"beta{i}"] = (fan_out,), (fan_out,)
            fan_in = self.hidden_dims[i - 1] if i < self.num_layers else fan_in
        return shapes

    def _fresh_norm_params(self) -> list:
        xp, device = self.backend.xp, self.backend.device
        if self.normalization == "batchnorm":
            return [{"mode": "train",
                     "running_mean": xp.zeros((self._fan_out(i),), dtype=self.dtype, device=device),
                     "running_var": xp.zeros((self._fan_out(i),), dtype=self.dtype, device=device)}
                    for i in range(1, self.num_layers)]
        if self.normalization == "layernorm":
            return [{} for _ in range(1, self.num_layers)]
        return []

    def _widths(self):
        return [self._fan_out(i) for i in range(1, self.num_layers + 1)]

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("normalization", self.normalization),
                                                    ("activation", self.activation)) if v not in (None, "relu"))
        keep = f", dropout_keep_ratio={self.dropout_keep_ratio}" if self.use_dropout else ""
        return (f"FullyConnectedNet({list(self.hidden_dims)}, input_dim={self.input_dim}, "
                f"num_classes={self.num_classes}{keep}{extra}, dtype={self.dtype_name!r}, "
                f"backend={self.backend.label!r})")

    # ---- forward and backward -----------------------------------------------------------------

    # ---- the model contract (nets.model.Model) -----------------------------------------------

    @property
    def state(self) -> dict:
        """The batch-norm running statistics, ``{"bn1/running_mean": ..., "bn1/running_var": ...}``
        (empty without batch norm); kept in :attr:`bn_params`, as the course keeps them."""
        if self.normalization != "batchnorm":
            return {}
        return {f"bn{i}/{k}": p[k] for i, p in enumerate(self.bn_params, start=1)
                for k in ("running_mean", "running_var")}

    @state.setter
    def state(self, state: dict) -> None:
        for key, value in state.items():
            layer, _, stat = key.partition("/")
            self.bn_params[int(layer.removeprefix("bn")) - 1][stat] = value

    def init_state(self) -> dict:
        """Zero running statistics (empty without batch norm)."""
        xp, device = self.backend.xp, self.backend.device
        if self.normalization != "batchnorm":
            return {}
        return {f"bn{i}/{k}": xp.zeros((self._fan_out(i),), dtype=self.dtype, device=device)
                for i in range(1, self.num_layers) for k in ("running_mean", "running_var")}

    def _norm_params(self, state: dict, mode: str) -> list:
        """One ``bn_param`` / ``ln_param`` per hidden layer for one call: the settings of
        :attr:`bn_params` (eps, momentum) with ``mode`` and the running statistics of ``state``."""
        out = []
        for i, p in enumerate(self.bn_params, start=1):
            param = {k: v for k, v in p.items() if k not in ("running_mean", "running_var")}
            param["mode"] = mode
            if self.normalization == "batchnorm":
                param["running_mean"], param["running_var"] = state[f"bn{i}/running_mean"], state[f"bn{i}/running_var"]
            out.append(param)
        return out

    def _new_state(self, norm_params: list) -> dict:
        if self.normalization != "batchnorm":
            return {}
        return {f"bn{i}/{k}": p[k] for i, p in enumerate(norm_params, start=1) for k in ("running_mean", "running_var")}

    def _network(self, norm_params):
        return dict(num_layers=self.num_layers, normalization=self.normalization, activation=self.activation,
                    norm_params=norm_params)

    def scores(self, params, X, /, *, state):
        """Class scores (N, C) in test mode (no dropout, running statistics), unchecked."""
        return _network_scores(self.backend.xp, self.backend.device, params, X,
                               **self._network(self._norm_params(state, "test")))

    def _scores(self, X):
        return self.scores(self.params, X, state=self.state)

    def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True):
        """``(loss, grads, state)`` for unchecked inputs (see :class:`nets.model.Model`).

        In training mode dropout masks come from ``rng`` (None: the net's fixed-seed mask, as the
        course's gradient checks need) and batch norm uses the batch statistics, returning the
        updated running statistics. The loss includes ``0.5 * reg * sum(W**2)``.
        """
        if training and self.normalization == "batchnorm" and X.shape[0] < 2:
            raise InputError("batch norm in training mode needs at least 2 examples per batch (the variance of one "
                             f"example is 0); got a batch of {X.shape[0]}: use a larger batch_size")
        norm_params = self._norm_params(state, "train" if training else "test")
        dropout_param = None
        if self.use_dropout:
            dropout_param = {**self.dropout_param, "mode": "train" if training else "test"}
            if rng is not None:
                dropout_param["generator"] = rng
        loss, grads = _network_loss(self.backend.xp, self.backend.device, params, X, y, dropout_param=dropout_param,
                                    l2=0.5 * self.reg, **self._network(norm_params))
        return loss, grads, self._new_state(norm_params)

    def loss(self, X, y=None):
        """Scores, or the loss and its gradients, as the course's ``FullyConnectedNet.loss``.

        Parameters
        ----------
        X : array (N, D) or (N, d1, ..., dk)
            Inputs on the net's backend; cast to the net's dtype.
        y : array (N,) of int, optional
            Labels in [0, C). Without them the net runs in test mode and returns the scores.

        Returns
        -------
        scores : array (N, C)
            When ``y`` is None.
        (loss, grads) : (0-d array, dict)
            Otherwise (training mode: dropout and batch statistics, which are stored back into
            :attr:`bn_params`); ``grads`` has the keys and shapes of :attr:`params`. The loss
            stays on the device (``float(loss)`` reads it).

        Notes
        -----
        ``L = -(1/N) sum_i log softmax(s_i)_{y_i} + 0.5 reg sum_l |W_l|^2``; the gradients follow
        from the layers' backward passes in reverse order.
        """
        # The course threads the mode through these dicts; kept for code that reads them.
        mode = "test" if y is None else "train"
        self.dropout_param["mode"] = mode
        for p in self.bn_params:
            p["mode"] = mode
        if y is None:
            return self._scores(self._check_X(X))
        X, y = self._check_labelled(X, y)
        return CourseFace.loss(self, X, y)

    # ---- checkpoints --------------------------------------------------------------------------

    def _checkpoint_config(self) -> dict:
        return {"hidden_dims": list(self.hidden_dims), "input_dim": self.input_dim, "num_classes": self.num_classes,
                "dropout_keep_ratio": self.dropout_keep_ratio, "normalization": self.normalization,
                "reg": self.reg, "weight_scale": self.weight_scale, "dtype": self.dtype_name, "seed": self.seed,
                "activation": self.activation, "init": self.init}

    def _checkpoint_state(self) -> dict:
        return self.state

    @classmethod
    def _checkpoint_shapes(cls, config: dict) -> dict:
        """Name -> shape of every array a checkpoint of this config holds; checks the config first."""
        probe = cls.__new__(cls)
        probe.hidden_dims = _dims(config["hidden_dims"])
        probe.input_dim = as_int(config["input_dim"], name="input_dim")
        probe.num_classes = as_int(config["num_classes"], name="num_classes")
        probe.normalization = check_normalization(config["normalization"])
        probe.activation = check_activation(config["activation"])
        probe.num_layers = len(probe.hidden_dims) + 1
        shapes = {f"param/{k}": v for k, v in probe._param_shapes().items()}
        check_size(shapes.values())
        if probe.normalization == "batchnorm":
            for i in range(1, probe.num_layers):
                for k in ("running_mean", "running_var"):
                    shapes[f"state/bn{i}/{k}"] = (probe._fan_out(i),)
        return shapes

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, *, xp=None, device=None, dtype=None):
        net = cls.__new__(cls)
        config = dict(config)
        if dtype is not None:
            config["dtype"] = dtype
        net._configure(config.pop("hidden_dims"), config.pop("input_dim"), config.pop("num_classes"),
                       config.pop("dropout_keep_ratio"), config.pop("normalization"), config.pop("reg"),
                       config.pop("weight_scale"), config.pop("dtype"), config.pop("seed"), xp=xp, device=device,
                       **config)
        put = net.backend.asarray
        net.params = {k: put(arrays[f"param/{k}"], dtype=net.dtype) for k in net._param_shapes()}
        net.bn_params = net._fresh_norm_params()
        if net.normalization == "batchnorm":
            for i, p in enumerate(net.bn_params, start=1):
                for k in ("running_mean", "running_var"):
                    p[k] = put(arrays[f"state/bn{i}/{k}"], dtype=net.dtype)
        return net
