"""Layers as forward/backward pairs, with the names and calling conventions of CS231n's ``layers.py``.

Every ``*_forward`` takes arrays (and a parameter dict where the course has one) and returns
``(out, cache)``; the matching ``*_backward`` takes the upstream gradient ``dout`` and that
``cache`` and returns the gradients of the inputs. The losses on class scores return
``(loss, dx)``. The namespace and device come from the arrays of each call (NumPy, CuPy,
array-api-strict, ...), so the course's notebooks run unchanged on NumPy arrays and the same code
runs on a GPU.

No function changes the arrays it is given. The two parameter dicts the course threads through
its layers are updated the course's way, by storing *new* arrays in them: ``bn_param`` gets the
new running mean and variance, and nothing else is mutated. Arithmetic happens in place only on
temporaries a function has just created, and only where the namespace allows writes
(:mod:`nets._arith`).

These are the kernels of the training loops: they check shapes (Python integers) but never read
values back from the device. Each finds the namespace (and, where it makes arrays, the device) of
its arrays, unless the caller passes them: the nets look them up once per minibatch and pass
``xp=`` (and ``device=``) to every layer, which saves the look-up's cost per call. The losses on
class scores live in :mod:`nets.losses`; :func:`svm_loss` and :func:`softmax_loss` are here too
under the course's names.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import array_api_extra as xpx

from .. import backend
from ..backend._arith import iadd, imul, isub
from ..backend.errors import InputError, InputTypeError
from .losses import softmax_loss, svm_loss

__all__ = [
    "ACTIVATIONS",
    "NORMALIZATIONS",
    "affine_backward",
    "affine_forward",
    "affine_norm_act_dropout_backward",
    "affine_norm_act_dropout_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "check_activation",
    "check_normalization",
    "dropout_backward",
    "dropout_forward",
    "keep_probability",
    "layernorm_backward",
    "layernorm_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "maxout_backward",
    "maxout_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "svm_loss",
    "tanh_backward",
    "tanh_forward",
]

MODES = ("train", "test")


# ---- affine --------------------------------------------------------------------------------------

def affine_forward(x, w, b, /, *, xp=None):
    """Fully connected layer: ``out = x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : array (N, d_1, ..., d_k)
        A minibatch of N examples; each is flattened to D = d_1 * ... * d_k values.
    w : array (D, M)
        Weights.
    b : array (M,)
        Biases.
    xp : namespace, keyword-only
        The arrays' namespace, when the caller knows it (None: looked up).

    Returns
    -------
    out : array (N, M)
    cache : ``(x, w, b)``

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> w, b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    >>> out, cache = layers.affine_forward(x, w, b)
    >>> out
    array([[4. , 2. ],
           [1. , 3.5]])
    """
    if xp is None:
        xp = backend.get_namespace(x, w, b)
    x2 = _rows(xp, x)
    if w.ndim != 2 or w.shape[0] != x2.shape[1]:
        raise InputError(f"w must have shape ({x2.shape[1]}, M) for x of shape {tuple(x.shape)}, got {tuple(w.shape)}")
    if tuple(b.shape) != (w.shape[1],):
        raise InputError(f"b must have shape ({w.shape[1]},) to match w {tuple(w.shape)}, got {tuple(b.shape)}")
    return iadd(x2 @ w, b), (x, w, b)


def affine_backward(dout, cache, /, *, need_dx: bool = True, xp=None):
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : array (N, M)
        Upstream gradient.
    cache : ``(x, w, b)`` from the forward pass.
    need_dx : bool, keyword-only
        False skips dx (returned as None): the first layer of a net needs none, and skipping it
        saves a third of the layer's arithmetic.
    xp : keyword-only
        As :func:`affine_forward`.

    Returns
    -------
    dx : array shaped like x (or None); dw : array (D, M); db : array (M,)

    Notes
    -----
    ``dx = dout w^T`` (reshaped to x's shape), ``dw = x^T dout``, ``db = sum_i dout_i``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> w, b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    >>> out, cache = layers.affine_forward(x, w, b)
    >>> dx, dw, db = layers.affine_backward(np.ones_like(out), cache)
    >>> dx.shape, dw.shape, db
    ((2, 3), (3, 2), array([2., 2.]))
    """
    x, w, _ = cache
    if xp is None:
        xp = backend.get_namespace(dout, w)
    dx = xp.reshape(dout @ w.T, x.shape) if need_dx else None
    return dx, _rows(xp, x).T @ dout, xp.sum(dout, axis=0)


def _rows(xp, x):
    """``x`` as a matrix (N, D): itself when already 2-d, else a reshaped view."""
    if x.ndim == 2:
        return x
    if x.ndim < 1:
        raise InputError(f"x must have a leading batch axis, got shape {tuple(x.shape)}")
    return xp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


# ---- activations ---------------------------------------------------------------------------------

def relu_forward(x, /, *, xp=None):
    """Rectified linear unit, ``max(0, x)``; the cache is ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> out, cache = layers.relu_forward(x)
    >>> out
    array([[1. , 0. , 3. ],
           [0. , 0.5, 2. ]])
    """
    if xp is None:
        xp = backend.get_namespace(x)
    return xp.maximum(x, 0.0), x


def relu_backward(dout, cache, /, *, xp=None):
    """``dout`` where the input was positive, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> out, cache = layers.relu_forward(x)
    >>> layers.relu_backward(np.ones_like(x), cache)
    array([[1., 0., 1.],
           [0., 1., 1.]])
    """
    if xp is None:
        xp = backend.get_namespace(dout, cache)
    # A product with the 0/1 mask, not xp.where: on the CPU a select on a random mask costs ten
    # times as much (NumPy: 90 us against 9 us for 200 x 100). Same values (0 * a finite dout is 0).
    return dout * xp.astype(cache > 0, dout.dtype)


def leaky_relu_forward(x, /, alpha: float = 0.01, *, xp=None):
    """Leaky ReLU, ``x`` for positive inputs and ``alpha * x`` otherwise; the cache is ``(x, alpha)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> out, cache = layers.leaky_relu_forward(x, 0.1)
    >>> out
    array([[ 1. , -0.2,  3. ],
           [-0.1,  0.5,  2. ]])
    """
    if xp is None:
        xp = backend.get_namespace(x)
    alpha = float(alpha)
    return xp.where(x > 0, x, alpha * x), (x, alpha)


def leaky_relu_backward(dout, cache, /, *, xp=None):
    """``dout`` where the input was positive, ``alpha * dout`` elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> out, cache = layers.leaky_relu_forward(x, 0.1)
    >>> layers.leaky_relu_backward(np.ones_like(x), cache)
    array([[1. , 0.1, 1. ],
           [0.1, 1. , 1. ]])
    """
    x, alpha = cache
    if xp is None:
        xp = backend.get_namespace(dout, x)
    return xp.where(x > 0, dout, alpha * dout)


def sigmoid_forward(x, /, *, xp=None):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow; the cache is the output.

    Notes
    -----
    With ``e = exp(-|x|)`` (at most 1): ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.sigmoid_forward(np.array([0.0, 2.0, -1000.0]))  # no overflow warning
    >>> out.round(4)
    array([0.5   , 0.8808, 0.    ])
    """
    if xp is None:
        xp = backend.get_namespace(x)
    e = xp.exp(-xp.abs(x))
    denom = e + 1.0
    out = xp.where(x >= 0, 1.0 / denom, e / denom)
    return out, out


def sigmoid_backward(dout, cache, /, *, xp=None):
    """``dout * s * (1 - s)`` with ``s`` the forward output (operators only: no namespace needed).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.sigmoid_forward(np.array([0.0, 2.0]))
    >>> layers.sigmoid_backward(np.ones(2), cache).round(4)
    array([0.25 , 0.105])
    """
    s = cache
    return dout * imul(1.0 - s, s)


def tanh_forward(x, /, *, xp=None):
    """Hyperbolic tangent; the cache is the output.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.tanh_forward(np.array([0.0, 1.0]))
    >>> out.round(4)
    array([0.    , 0.7616])
    """
    if xp is None:
        xp = backend.get_namespace(x)
    out = xp.tanh(x)
    return out, out


def tanh_backward(dout, cache, /, *, xp=None):
    """``dout * (1 - tanh(x)**2)`` (operators only: no namespace needed).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.tanh_forward(np.array([0.0, 1.0]))
    >>> layers.tanh_backward(np.ones(2), cache).round(4)
    array([1.  , 0.42])
    """
    t = cache
    return dout * (1.0 - t * t)


def maxout_forward(x, /, pieces: int = 2, *, xp=None):
    """Maxout: the maximum over consecutive groups of ``pieces`` inputs.

    Parameters
    ----------
    x : array (N, H * pieces)
        Pre-activations; unit ``j`` takes the maximum of ``x[:, j*pieces:(j+1)*pieces]``.
    pieces : int
        k, the number of linear pieces per unit (the notes' maxout has 2).
    xp : keyword-only
        As :func:`affine_forward`.

    Returns
    -------
    out : array (N, H)
    cache : the winning piece of each unit and the input shape

    Notes
    -----
    ``out_j = max(x_{j k}, ..., x_{j k + k - 1})``; the gradient flows to the winning piece only
    (the first one on ties).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.maxout_forward(np.array([[1.0, 3.0, -1.0, -2.0]]), 2)
    >>> out
    array([[ 3., -1.]])
    """
    if xp is None:
        xp = backend.get_namespace(x)
    pieces = int(pieces)
    if pieces < 1 or x.ndim != 2 or x.shape[1] % pieces:
        raise InputError(f"maxout needs x of shape (N, H * pieces) with pieces >= 1; got x {tuple(x.shape)}, "
                         f"pieces={pieces}")
    z = xp.reshape(x, (x.shape[0], x.shape[1] // pieces, pieces))
    return xp.max(z, axis=2), (xp.argmax(z, axis=2), pieces, tuple(x.shape))


def maxout_backward(dout, cache, /, *, xp=None):
    """Route ``dout`` to the winning piece of each unit.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.maxout_forward(np.array([[1.0, 3.0, -1.0, -2.0]]), 2)
    >>> layers.maxout_backward(np.array([[10.0, 20.0]]), cache)
    array([[ 0., 10., 20.,  0.]])
    """
    winner, pieces, shape = cache
    if xp is None:
        xp = backend.get_namespace(dout, winner)
    onehot = xpx.one_hot(winner, pieces, dtype=dout.dtype, xp=xp)
    return xp.reshape(imul(onehot, xp.expand_dims(dout, axis=2)), shape)


# Name -> (forward, backward) of the activations: the one vocabulary of the nets, the command line
# and xpml.sklearn. Maxout changes the width (a layer of H units has H * pieces affine outputs).
ACTIVATIONS = MappingProxyType({
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "maxout": (maxout_forward, maxout_backward),
})


def check_activation(name, /) -> str:
    """``name`` if it is a key of :data:`ACTIVATIONS`, else a ValueError listing them.

    Examples
    --------
    >>> from xpml.nets import layers
    >>> layers.check_activation("relu")
    'relu'
    >>> layers.check_activation("gelu")
    Traceback (most recent call last):
    ...
    xpml.backend.errors.InputError: unknown activation 'gelu'; choose one of: relu, leaky_relu, sigmoid, tanh, maxout
    """
    if name not in ACTIVATIONS:
        raise InputError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return name


# ---- normalization -------------------------------------------------------------------------------

def _param_number(params: dict, key: str, default: float, *, name: str, low: float, high: float | None) -> float:
    value = params.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}[{key!r}] must be a number, got {value!r}") from None
    if not (value >= low and (high is None or value <= high)) or math.isinf(value):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"{name}[{key!r}] must be {bound}, got {value!r}")
    return value


def _mode(params, name: str) -> str:
    if not isinstance(params, dict):
        raise InputTypeError(f"{name} must be a dict, got {type(params).__name__}")
    mode = params.get("mode")
    if mode not in MODES:
        raise InputError(f"{name}['mode'] must be 'train' or 'test', got {mode!r}")
    return mode


def _check_affine_params(x, gamma, beta, name: str):
    D = x.shape[1] if x.ndim == 2 else None
    if D is None or tuple(gamma.shape) != (D,) or tuple(beta.shape) != (D,):
        raise InputError(f"{name} needs x (N, D) with gamma and beta of shape (D,); got x {tuple(x.shape)}, "
                         f"gamma {tuple(gamma.shape)}, beta {tuple(beta.shape)}")


def _normalize(xp, x, axis: int, eps: float):
    """``(x - mean) / sqrt(var + eps)`` along ``axis``; returns ``(xhat, var, inv_std, mean)`` (stats keep dims)."""
    mu = xp.mean(x, axis=axis, keepdims=True)
    xc = x - mu
    var = xp.mean(xc * xc, axis=axis, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + eps)
    return imul(xc, inv_std), var, inv_std, mu


def _scale_shift(xhat, gamma, beta):
    return iadd(xhat * gamma, beta)


def batchnorm_forward(x, gamma, beta, bn_param, /, *, xp=None, device=None):
    """Batch normalization of each feature over the minibatch, with running statistics for test time.

    Parameters
    ----------
    x : array (N, D)
    gamma, beta : arrays (D,)
        Scale and shift.
    bn_param : dict
        ``mode``: ``"train"`` or ``"test"`` (required); ``eps`` (default 1e-5); ``momentum``
        (default 0.9); ``running_mean``, ``running_var`` (arrays (D,), zeros when absent). In
        training mode the new running statistics are stored back into this dict (new arrays; the
        old ones are left as they were).
    xp, device : keyword-only
        The arrays' namespace and device, when the caller knows them (None: looked up).

    Returns
    -------
    out : array (N, D)
    cache : for :func:`batchnorm_backward`

    Notes
    -----
    Train: ``mu = mean_i x_i``, ``var = mean_i (x_i - mu)**2`` (biased),
    ``xhat = (x - mu) / sqrt(var + eps)``, ``out = gamma * xhat + beta``, and
    ``running = momentum * running + (1 - momentum) * batch statistic``. Test: the same with the
    running statistics in place of the batch's.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 3))
    >>> bn_param = {"mode": "train"}
    >>> out, cache = layers.batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    >>> out.mean(axis=0).round(6) + 0.0, out.std(axis=0).round(4)
    (array([0., 0., 0.]), array([1., 1., 1.]))
    >>> sorted(bn_param)  # the running statistics for test time
    ['mode', 'running_mean', 'running_var']
    """
    if xp is None:
        xp, device = backend.namespace_and_device(x, gamma, beta)
    mode = _mode(bn_param, "bn_param")
    _check_affine_params(x, gamma, beta, "batchnorm_forward")
    eps = _param_number(bn_param, "eps", 1e-5, name="bn_param", low=0.0, high=None)
    momentum = _param_number(bn_param, "momentum", 0.9, name="bn_param", low=0.0, high=1.0)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean")
    running_var = bn_param.get("running_var")
    if running_mean is None or running_var is None:
        device = backend.get_device(x) if device is None else device
        zeros = xp.zeros((D,), dtype=x.dtype, device=device)
        running_mean = zeros if running_mean is None else running_mean
        running_var = zeros if running_var is None else running_var
    if mode == "train":
        xhat, var, inv_std, mu = _normalize(xp, x, 0, eps)
        bn_param["running_mean"] = iadd(running_mean * momentum, xp.reshape(mu, (D,)) * (1.0 - momentum))
        bn_param["running_var"] = iadd(running_var * momentum, xp.reshape(var, (D,)) * (1.0 - momentum))
    else:
        inv_std = 1.0 / xp.sqrt(running_var + eps)
        xhat = imul(x - running_mean, inv_std)
    return _scale_shift(xhat, gamma, beta), (xhat, gamma, inv_std, 0, mode == "train")


def batchnorm_backward(dout, cache, /, *, xp=None):
    """Backward pass of :func:`batchnorm_forward`: ``(dx, dgamma, dbeta)``.

    Notes
    -----
    With ``g = dout * gamma`` and N rows: ``dbeta = sum_i dout_i``, ``dgamma = sum_i dout_i * xhat_i``,
    ``dx = (N g - sum_i g_i - xhat * sum_i g_i xhat_i) / (N sqrt(var + eps))`` in training mode
    (the batch statistics depend on x), ``dx = g / sqrt(running_var + eps)`` in test mode.
    :func:`layernorm_backward` is the same formula with rows and features exchanged (the cache
    says along which axis).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 3))
    >>> out, cache = layers.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    >>> dx, dgamma, dbeta = layers.batchnorm_backward(np.ones_like(out), cache)
    >>> dx.shape, dbeta
    ((8, 3), array([8., 8., 8.]))
    """
    xhat, gamma, inv_std, axis, batch_stats = cache
    if xp is None:
        xp = backend.get_namespace(dout, xhat)
    dbeta = xp.sum(dout, axis=0)
    dgamma = xp.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    if not batch_stats:  # test-mode batchnorm: fixed statistics, an affine map of x
        return imul(dxhat, inv_std), dgamma, dbeta
    n = xhat.shape[axis]
    s1 = xp.sum(dxhat, axis=axis, keepdims=True)
    s2 = xp.sum(dxhat * xhat, axis=axis, keepdims=True)
    dx = imul(dxhat, float(n))
    dx = isub(isub(dx, s1), xhat * s2)
    return imul(dx, inv_std * (1.0 / n)), dgamma, dbeta


# The course asks for a second, simplified derivation; here both names are that one formula.
batchnorm_backward_alt = batchnorm_backward


def layernorm_forward(x, gamma, beta, ln_param, /, *, xp=None, device=None):
    """Layer normalization: each example normalized over its features, the same in training and test.

    Parameters
    ----------
    x : array (N, D)
    gamma, beta : arrays (D,)
    ln_param : dict
        ``eps`` (default 1e-5); other keys (such as ``mode``) are ignored.
    xp, device : keyword-only
        As :func:`batchnorm_forward` (``device`` is accepted for the same signature, unused).

    Returns
    -------
    out : array (N, D)
    cache : for :func:`layernorm_backward`

    Notes
    -----
    ``xhat_i = (x_i - mean(x_i)) / sqrt(var(x_i) + eps)`` over the D features of row i,
    ``out = gamma * xhat + beta``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 3))
    >>> out, cache = layers.layernorm_forward(x, np.ones(3), np.zeros(3), {})
    >>> out.shape, bool(np.allclose(out.mean(axis=1), 0.0))
    ((8, 3), True)
    """
    if xp is None:
        xp = backend.get_namespace(x, gamma, beta)
    if not isinstance(ln_param, dict):
        raise InputTypeError(f"ln_param must be a dict, got {type(ln_param).__name__}")
    _check_affine_params(x, gamma, beta, "layernorm_forward")
    eps = _param_number(ln_param, "eps", 1e-5, name="ln_param", low=0.0, high=None)
    xhat, _, inv_std, _ = _normalize(xp, x, 1, eps)
    return _scale_shift(xhat, gamma, beta), (xhat, gamma, inv_std, 1, True)


# One formula: the cache says along which axis the statistics were taken.
layernorm_backward = batchnorm_backward

# Name -> (forward, backward) of the normalizations (None, no normalization, is also accepted by
# the nets): the one vocabulary of the nets, the command line and xpml.sklearn.
NORMALIZATIONS = MappingProxyType({
    "batchnorm": (batchnorm_forward, batchnorm_backward),
    "layernorm": (layernorm_forward, layernorm_backward),
})


def check_normalization(name, /):
    """``name`` if it is None or a key of :data:`NORMALIZATIONS`, else a ValueError listing them.

    Examples
    --------
    >>> from xpml.nets import layers
    >>> print(layers.check_normalization(None))
    None
    >>> layers.check_normalization("group")
    Traceback (most recent call last):
    ...
    xpml.backend.errors.InputError: unknown normalization 'group'; choose one of: None, 'batchnorm', 'layernorm'
    """
    if name is not None and name not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {name!r}; choose one of: None, "
                         f"{', '.join(repr(n) for n in NORMALIZATIONS)}")
    return name


# ---- dropout -------------------------------------------------------------------------------------

def keep_probability(p, /, *, name: str = "dropout_param['p']") -> float:
    """``p`` as a Python float in (0, 1], the probability of *keeping* a unit; a clear error otherwise.

    Examples
    --------
    >>> from xpml.nets import layers
    >>> layers.keep_probability(0.5)
    0.5
    >>> layers.keep_probability(0)
    Traceback (most recent call last):
    ...
    xpml.backend.errors.InputError: dropout_param['p'] is the probability of keeping a unit and must be in (0, 1], got 0
    """
    if isinstance(p, (bool, str, bytes)):
        raise InputTypeError(f"{name} must be a number in (0, 1], got {p!r}")
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a number in (0, 1], got {p!r}") from None
    if not 0.0 < value <= 1.0:
        raise InputError(f"{name} is the probability of keeping a unit and must be in (0, 1], got {p!r}")
    return value


def dropout_forward(x, dropout_param, /, *, xp=None, device=None):
    """Inverted dropout: keep each unit with probability ``p`` and scale the kept ones by ``1 / p``.

    Parameters
    ----------
    x : array of any shape
    dropout_param : dict
        ``p``: the probability of keeping a unit, in (0, 1] (required); ``mode``: ``"train"`` or
        ``"test"`` (required; test mode returns ``x``). Where the mask comes from, first match:
        ``mask`` (an array shaped like x, already scaled by ``1 / p``); ``generator`` (a
        :class:`backend.Generator`, which advances: a fresh mask each call); ``seed`` (the same
        mask at every call with that seed, as in the course, for gradient checks); else a fresh,
        unseeded draw.
    xp, device : keyword-only
        x's namespace and device, when the caller knows them (None: looked up).

    Returns
    -------
    out : array shaped like x
    cache : ``(dropout_param, mask)``

    Notes
    -----
    ``out = x * m / p`` with ``m_i ~ Bernoulli(p)``: the expectation of ``out`` is ``x``, so test
    time needs no rescaling. Each keep decision compares a 32-bit random word with ``p * 2**32``
    (:meth:`backend.Generator.dropout_mask`): the keep rate is within ``2**-33`` of ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.dropout_forward(np.ones((2, 4)), {"mode": "train", "p": 0.5, "seed": 0})
    >>> out  # kept units scaled by 1 / p
    array([[0., 2., 2., 0.],
           [0., 2., 0., 2.]])
    >>> layers.dropout_forward(np.ones((1, 4)), {"mode": "test", "p": 0.5})[0]
    array([[1., 1., 1., 1.]])
    """
    mode = _mode(dropout_param, "dropout_param")
    mask = dropout_param.get("mask")
    p = keep_probability(dropout_param.get("p")) if mask is None or "p" in dropout_param else None
    if mode == "test" or (mask is None and p == 1.0):
        return x, (dropout_param, None)
    if mask is None:
        rng = dropout_param.get("generator")
        if rng is None:
            if xp is None:
                xp, device = backend.namespace_and_device(x)
            elif device is None:
                device = backend.get_device(x)
            rng = backend.Generator(dropout_param.get("seed"), xp=xp, device=device)
        mask = rng.dropout_mask(tuple(x.shape), keep=p, dtype=x.dtype)
    elif tuple(mask.shape) != tuple(x.shape):
        raise InputError(f"dropout_param['mask'] has shape {tuple(mask.shape)}, x has {tuple(x.shape)}")
    return x * mask, (dropout_param, mask)


def dropout_backward(dout, cache, /, *, xp=None):
    """Backward pass of :func:`dropout_forward`: ``dout * mask`` in training, ``dout`` in test mode.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> out, cache = layers.dropout_forward(np.ones((2, 4)), {"mode": "train", "p": 0.5, "seed": 0})
    >>> layers.dropout_backward(np.ones((2, 4)), cache)
    array([[0., 2., 2., 0.],
           [0., 2., 0., 2.]])
    """
    _, mask = cache
    return dout if mask is None else dout * mask


# ---- composite layers ----------------------------------------------------------------------------

def affine_relu_forward(x, w, b, /, *, xp=None):
    """An affine layer followed by a ReLU (the course's ``layer_utils`` sandwich).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> w, b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    >>> out, cache = layers.affine_relu_forward(x, -w, b)
    >>> out
    array([[0., 0.],
           [0., 0.]])
    """
    if xp is None:
        xp = backend.get_namespace(x, w, b)
    a, fc_cache = affine_forward(x, w, b, xp=xp)
    out, relu_cache = relu_forward(a, xp=xp)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache, /, *, xp=None):
    """Backward pass of :func:`affine_relu_forward`: ``(dx, dw, db)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    >>> w, b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    >>> out, cache = layers.affine_relu_forward(x, w, b)
    >>> [g.shape for g in layers.affine_relu_backward(np.ones_like(out), cache)]
    [(2, 3), (3, 2), (2,)]
    """
    fc_cache, relu_cache = cache
    if xp is None:
        xp = backend.get_namespace(dout, fc_cache[1])
    return affine_backward(relu_backward(dout, relu_cache, xp=xp), fc_cache, xp=xp)


def affine_norm_act_dropout_forward(x, w, b, gamma=None, beta=None, norm_param=None, dropout_param=None, /, *,
                                    normalization=None, activation: str = "relu", xp=None, device=None):
    """One hidden layer of a fully connected net: affine, normalization, activation, dropout.

    Parameters
    ----------
    x, w, b
        As :func:`affine_forward`.
    gamma, beta, norm_param
        Of the normalization (``bn_param`` or ``ln_param``); ignored without one.
    dropout_param : dict or None
        As :func:`dropout_forward`; None applies no dropout.
    normalization : None or a key of :data:`NORMALIZATIONS`, keyword-only
    activation : str, keyword-only
        A key of :data:`ACTIVATIONS`.
    xp, device : keyword-only
        The arrays' namespace and device, when the caller knows them (None: looked up).

    Returns
    -------
    out : array (N, H)
    cache : for :func:`affine_norm_act_dropout_backward`

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> rng = np.random.default_rng(0)
    >>> x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), np.zeros(5)
    >>> out, cache = layers.affine_norm_act_dropout_forward(
    ...     x, w, b, np.ones(5), np.zeros(5), {"mode": "train"}, {"mode": "train", "p": 0.5, "seed": 0},
    ...     normalization="batchnorm", activation="relu")
    >>> out.shape, bool((out >= 0).all())
    ((4, 5), True)
    """
    if xp is None:
        xp, device = backend.namespace_and_device(x, w, b)
    try:
        act_forward = ACTIVATIONS[activation][0]
        norm_forward = None if normalization is None else NORMALIZATIONS[normalization][0]
    except (KeyError, TypeError):
        check_activation(activation)
        check_normalization(normalization)
        raise
    a, fc_cache = affine_forward(x, w, b, xp=xp)
    norm_cache = None
    if norm_forward is not None:
        a, norm_cache = norm_forward(a, gamma, beta, norm_param, xp=xp, device=device)
    a, act_cache = act_forward(a, xp=xp)
    drop_cache = None
    if dropout_param is not None:
        a, drop_cache = dropout_forward(a, dropout_param, xp=xp, device=device)
    return a, (fc_cache, norm_cache, act_cache, drop_cache, normalization, activation)


def affine_norm_act_dropout_backward(dout, cache, /, *, need_dx: bool = True, xp=None):
    """Backward pass of :func:`affine_norm_act_dropout_forward`: ``(dx, dw, db, dgamma, dbeta)``
    (``dgamma`` and ``dbeta`` are None without normalization; ``dx`` is None with ``need_dx=False``).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import layers
    >>> rng = np.random.default_rng(0)
    >>> x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), np.zeros(5)
    >>> out, cache = layers.affine_norm_act_dropout_forward(
    ...     x, w, b, np.ones(5), np.zeros(5), {"mode": "train"}, {"mode": "train", "p": 0.5, "seed": 0},
    ...     normalization="batchnorm", activation="relu")
    >>> dx, dw, db, dgamma, dbeta = layers.affine_norm_act_dropout_backward(np.ones_like(out), cache)
    >>> dx.shape, dw.shape, dgamma.shape
    ((4, 3), (3, 5), (5,))
    """
    fc_cache, norm_cache, act_cache, drop_cache, normalization, activation = cache
    if xp is None:
        xp = backend.get_namespace(dout, fc_cache[1])
    if drop_cache is not None:
        dout = dropout_backward(dout, drop_cache)
    dout = ACTIVATIONS[activation][1](dout, act_cache, xp=xp)
    dgamma = dbeta = None
    if normalization is not None:
        dout, dgamma, dbeta = NORMALIZATIONS[normalization][1](dout, norm_cache, xp=xp)
    dx, dw, db = affine_backward(dout, fc_cache, need_dx=need_dx, xp=xp)
    return dx, dw, db, dgamma, dbeta
