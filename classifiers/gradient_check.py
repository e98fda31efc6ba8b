"""Numerical gradients and relative errors: the oracle every analytic gradient is checked against.

These functions check, they do not train, so they loop over coordinates in Python and read each
value back to the host. They follow CS231n's ``gradient_check.py``: ``x`` is perturbed *in place*
(and restored) so that ``f`` may ignore its argument and read a model's parameters, the course's
idiom ``f = lambda _: net.loss(X, y)[0]``.

Arrays that cannot be written (JAX's, or a read-only NumPy array) are perturbed in a copy that
is passed to ``f`` instead, so there ``f`` must compute from its argument; if every perturbation
leaves ``f`` unchanged, a warning says that this is the likely cause. :func:`param_loss` builds
such an ``f`` for a model's parameter, and works on every backend:
``eval_numerical_gradient(param_loss(net, "W1", X, y), net.params["W1"])``.
"""

from __future__ import annotations

import itertools
import math
import warnings

import array_api_compat
import array_api_extra as xpx

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_positive

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "param_loss",
    "rel_error",
]


def _coords(shape):
    """Every index tuple of an array of ``shape``, in C order."""
    return itertools.product(*(range(n) for n in shape))


def _check_point(xp, x, h):
    if not xp.isdtype(x.dtype, "real floating"):
        raise InputTypeError(f"x must have a real floating dtype to be perturbed, got {x.dtype}")
    check_positive(h, name="h")


def _at_shifted(f, x, idx, old, step):
    if not array_api_compat.is_writeable_array(x):
        return f(xpx.at(x)[idx].set(old + step))
    # Python floats are exact for float32 and float64 values, so writing ``old`` back restores x
    # bit for bit even if f raises.
    x[idx] = old + step
    try:
        return f(x)
    finally:
        x[idx] = old


def _centred(f, x, idx, h, read):
    """``(read(f(x + h e_idx)), read(f(x - h e_idx)))``; ``read`` takes the value before x moves again."""
    old = float(x[idx])
    return read(_at_shifted(f, x, idx, old, h)), read(_at_shifted(f, x, idx, old, -h))


def eval_numerical_gradient(f, x, /, *, h: float = 1e-5, verbose: bool = False):
    """Centred-difference gradient of a scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : callable
        Maps the array ``x`` to a scalar (a Python number or a 0-d array).
    x : array of any shape
        The point; perturbed in place one coordinate at a time and restored afterwards.
    h : float, keyword-only
        The step.
    verbose : bool, keyword-only
        Print each coordinate and its gradient, as the course's version does (its default is True;
        course code that passes ``verbose=False`` runs unchanged).

    Returns
    -------
    grad : array, same shape, dtype, namespace and device as ``x``

    Notes
    -----
    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)``, whose error is O(h^2). Use float64: in
    float32 the rounding of ``f`` (about 1e-7 relative) divided by ``2 h`` swamps the result.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers import eval_numerical_gradient
    >>> x = np.array([1.0, -2.0, 3.0])
    >>> eval_numerical_gradient(lambda v: float(np.sum(v ** 2)), x).round(6).tolist()  # 2 x
    [2.0, -4.0, 6.0]
    """
    xp, device = backend.namespace_and_device(x)
    _check_point(xp, x, h)
    grads = []
    for idx in _coords(x.shape):
        fxph, fxmh = _centred(f, x, idx, h, float)
        grads.append((fxph - fxmh) / (2 * h))
        if verbose:
            print(idx, grads[-1])
    _warn_if_unmoved(x, grads)
    return xp.reshape(xp.asarray(grads, dtype=x.dtype, device=device), x.shape)


def _warn_if_unmoved(x, differences) -> None:
    if differences and not array_api_compat.is_writeable_array(x) and not any(differences):
        warnings.warn(
            "every perturbation of x left f unchanged. x cannot be written (a JAX or read-only array), "
            "so it is perturbed in a copy passed to f: f must compute from its argument, not from "
            "the array it closes over (the course idiom lambda _: net.loss(X, y)[0] cannot see it; "
            "param_loss(net, name, X, y) is an f that does)",
            RuntimeWarning, stacklevel=3,
        )


def param_loss(model, name: str, /, *args, **kwargs):
    """``f(w)``: the loss of ``model`` with its parameter ``name`` replaced by ``w``.

    The course checks a model's gradients with ``f = lambda _: model.loss(X, y)[0]``, which reads
    the parameter that :func:`eval_numerical_gradient` perturbs in place. Where arrays cannot be
    written (JAX), the perturbation happens in a copy passed to ``f``; this ``f`` puts that copy
    into ``model.params`` for the call, so it gives the same numbers on every backend.

    Parameters
    ----------
    model
        An object with a ``params`` dict and ``loss(...)`` returning ``(loss, grads)``.
    name : str
        A key of ``model.params``.
    *args, **kwargs
        Passed to ``model.loss`` (``X, y``, and e.g. ``reg=0.05``).

    Returns
    -------
    callable
        ``f(w)`` -> the loss (0-d array); ``model.params[name]`` is put back after each call.

    Examples
    --------
    >>> from xpml import nets
    >>> from xpml.classifiers import eval_numerical_gradient, make_spiral, rel_error
    >>> from xpml.classifiers.gradient_check import param_loss
    >>> X, y = make_spiral(5, 3, dtype="float64")
    >>> net = nets.TwoLayerNet(2, 4, 3, init="he", dtype="float64", seed=0)
    >>> _, grads = net.loss(X, y, reg=0.1)
    >>> numeric = eval_numerical_gradient(param_loss(net, "W1", X, y, reg=0.1), net.params["W1"])
    >>> rel_error(numeric, grads["W1"]) < 1e-6
    True
    """
    params = getattr(model, "params", None)
    if not isinstance(params, dict) or name not in params:
        known = ", ".join(map(repr, params)) if isinstance(params, dict) else "none: model has no params dict"
        raise KeyError(f"{name!r} is not a parameter of the model; its parameters: {known}")

    def f(w):
        saved = params[name]
        params[name] = w
        try:
            return model.loss(*args, **kwargs)[0]
        finally:
            params[name] = saved

    return f


def eval_numerical_gradient_array(f, x, df, /, *, h: float = 1e-5):
    """Centred-difference gradient of ``sum(f(x) * df)`` for an array-valued ``f``.

    This is the backward pass of a layer ``out = f(x)`` given the upstream gradient ``df`` (same
    shape as ``out``), computed numerically.

    Returns
    -------
    grad : array, same shape, dtype, namespace and device as ``x``

    Notes
    -----
    ``grad[i] = sum((f(x + h e_i) - f(x - h e_i)) * df) / (2 h)``. The outputs are copied before
    ``x`` moves again, since ``f`` may return a view of its input or of a buffer it reuses.

    Examples
    --------
    The backward pass of ReLU, checked numerically:

    >>> import numpy as np
    >>> from xpml.classifiers import eval_numerical_gradient_array, rel_error
    >>> from xpml.nets import layers
    >>> x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    >>> dout = np.array([[1.0, 1.0], [1.0, 1.0]])
    >>> numeric = eval_numerical_gradient_array(lambda v: layers.relu_forward(v)[0], x, dout)
    >>> _, cache = layers.relu_forward(x)
    >>> rel_error(numeric, layers.relu_backward(dout, cache)) < 1e-9
    True
    """
    xp, device = backend.namespace_and_device(x, df)
    _check_point(xp, x, h)
    grads = []
    for idx in _coords(x.shape):
        pos, neg = _centred(f, x, idx, h, lambda v: xp.asarray(v, copy=True))
        grads.append(xp.sum((pos - neg) * df) / (2 * h))
    if not grads:
        return xp.zeros(x.shape, dtype=x.dtype, device=device)
    return xp.reshape(xp.astype(xp.stack(grads), x.dtype), x.shape)


def _relative(a: float, b: float) -> float:
    denom = abs(a) + abs(b)
    return 0.0 if denom == 0 else abs(a - b) / denom


def grad_check_sparse(f, x, analytic_grad, /, *, num_checks: int = 10, h: float = 1e-5, seed: int = 0,
                      verbose: bool = False) -> list[float]:
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random coordinates.

    Parameters
    ----------
    f : callable
        Maps the array ``x`` to a scalar.
    x : array
        The point (perturbed in place and restored).
    analytic_grad : array, same shape as ``x``
        The gradient to check.
    num_checks, h, seed : keyword-only
        How many coordinates (drawn with replacement), the step, and the seed of the draw. The
        coordinates come from a host generator, so they are the same on every backend.
    verbose : keyword-only
        Print each comparison as the course does.

    Returns
    -------
    list of float
        The relative error ``|n - a| / (|n| + |a|)`` at each checked coordinate (0 where both are 0).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers import grad_check_sparse
    >>> x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    >>> errors = grad_check_sparse(lambda v: float(np.sum(v ** 3)), x, 3 * x ** 2, num_checks=5)
    >>> len(errors), max(errors) < 1e-8
    (5, True)
    """
    xp, _ = backend.namespace_and_device(x, analytic_grad)
    _check_point(xp, x, h)
    if tuple(analytic_grad.shape) != tuple(x.shape):
        raise InputError(f"analytic_grad has shape {tuple(analytic_grad.shape)}, x has {tuple(x.shape)}")
    check_positive(num_checks, name="num_checks", integer=True)
    if math.prod(x.shape) == 0:
        raise InputError("x is empty: there is no coordinate to check")
    draws = backend.to_numpy(backend.Generator(seed).integers(0, math.prod(x.shape), (num_checks,)))
    errors, numerics = [], []
    for flat in draws.tolist():
        idx = tuple(_unravel(flat, x.shape))
        fxph, fxmh = _centred(f, x, idx, h, float)
        numeric = (fxph - fxmh) / (2 * h)
        analytic = float(analytic_grad[idx])
        numerics.append(numeric)
        errors.append(_relative(numeric, analytic))
        if verbose:
            print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {errors[-1]:e}")
    _warn_if_unmoved(x, numerics)
    return errors


def _unravel(flat: int, shape):
    idx = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        idx.append(i)
    return reversed(idx)


def rel_error(x, y, /) -> float:
    """The course's relative error: ``max(|x - y| / max(1e-8, |x| + |y|))``, as a Python float.

    ``x`` and ``y`` are arrays of one backend (of broadcastable shapes) or Python numbers. Below
    about 1e-7 in float64 a gradient is right; above 1e-2 it is almost surely wrong.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers import rel_error
    >>> round(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.000002])), 9)
    5e-07
    """
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return abs(x - y) / max(1e-8, abs(x) + abs(y))
    xp, device = backend.namespace_and_device(x, y)
    x = xp.asarray(x, device=device)
    y = xp.asarray(y, device=device)
    err = xp.abs(x - y) / xp.clip(xp.abs(x) + xp.abs(y), min=1e-8)
    # math.prod(err.shape), not err.size: a torch tensor's size is a method, always truthy.
    return float(xp.max(err)) if math.prod(err.shape) else 0.0
