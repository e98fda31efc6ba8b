"""First-order update rules of the course notes, with the CS231n signature.

Every rule is ``rule(w, dw, config=None) -> (next_w, config)``; ``config`` may be given by
position or by keyword (``sgd_momentum(w, dw, config=config)``, as the course's notebooks call
them). ``w`` is a parameter array, ``dw`` its gradient (same shape, namespace and device), and
``config`` a dict of hyperparameters and of the rule's state (velocity, caches, moments, step
count). The first call fills in the defaults and creates the state on ``w``'s device.

The rules are functional: ``next_w`` is a new array and the new state is stored in ``config``
(the same dict is returned). Neither ``w`` nor ``dw`` is changed, nor any state array a caller
put into ``config``, so a caller may keep references to old parameters (the Solver's best
parameters, a running average) without copying them, and the rules give the same numbers on
arrays that cannot be written to (JAX). The fast path, where the namespace allows writes: the
temporaries of a step, and the state arrays a rule created itself in earlier steps of the same
``config``, are updated in place, so a step costs what the course's in-place rules cost.

Hyperparameters are read as Python numbers at every step: a NumPy float64 learning rate does not
turn float32 weights into float64.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from types import MappingProxyType

from .. import backend
from ..backend._arith import iadd, imul, itruediv, writeable

__all__ = [
    "UPDATE_RULES",
    "adagrad",
    "adam",
    "get_update_rule",
    "nesterov_momentum",
    "rmsprop",
    "sgd",
    "sgd_momentum",
]


def _config(config, defaults: dict) -> dict:
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict of hyperparameters and state, got {type(config).__name__}")
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def _number(config: dict, key: str) -> float:
    value = config[key]
    if isinstance(value, bool):
        raise TypeError(f"config[{key!r}] must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        # A traced 0-d array (the learning rate inside a compiled training step) has no value yet.
        if getattr(value, "shape", None) == () and hasattr(value, "dtype"):
            return value
        raise TypeError(f"config[{key!r}] must be a number, got {value!r}") from None


# Where a rule notes the state arrays it created itself, with the config they belong to: only
# those may be updated in place, never an array a caller put into config (or a copied config).
_OWNED = "_owned_state"


def _state(config: dict, key: str, w):
    """``(state, in_place)``: the state array ``config[key]`` (zeros shaped like ``w`` on its device the
    first time) and whether this rule may update it in place."""
    state = config.get(key)
    if state is None:
        xp, device = backend.namespace_and_device(w)
        return xp.zeros(w.shape, dtype=w.dtype, device=device), False
    if tuple(state.shape) != tuple(w.shape):
        raise ValueError(f"config[{key!r}] has shape {tuple(state.shape)} but the parameter has {tuple(w.shape)}")
    owner, owned = config.get(_OWNED, (None, {}))
    return state, owner == id(config) and owned.get(key) is state and writeable(state)


def _store(config: dict, key: str, state):
    """Store new ``state`` under ``key``, noting that this rule made it."""
    config[key] = state
    owner, owned = config.get(_OWNED, (None, {}))
    if owner != id(config):
        owned = {}
        config[_OWNED] = (id(config), owned)
    owned[key] = state
    return state


def _check(w, dw):
    if tuple(dw.shape) != tuple(w.shape):
        raise ValueError(f"dw has shape {tuple(dw.shape)} but w has {tuple(w.shape)}")


def _leaky(config: dict, key: str, w, new, rate: float):
    """``old + rate * (new - old)``, the leaky average of ``config[key]``, stored back."""
    old, in_place = _state(config, key, w)
    step = imul(new - old, rate)
    if in_place:
        old += step
        return _store(config, key, old)
    return _store(config, key, iadd(step, old))


def _accumulate(config: dict, key: str, w, scale: float, add):
    """``scale * config[key] + add`` (``add`` a fresh temporary), stored back."""
    old, in_place = _state(config, key, w)
    if in_place:
        if scale != 1.0:
            old *= scale
        old += add
        return _store(config, key, old)
    return _store(config, key, iadd(add, old * scale) if scale != 1.0 else iadd(add, old))


def _scaled(step, cache, eps: float):
    """``step / (sqrt(cache) + eps)``, dividing the fresh ``step`` in place where allowed."""
    return itruediv(step, iadd(cache**0.5, eps))


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent.

    config: ``learning_rate`` (default 1e-2).

    Notes
    -----
    ``w <- w - lr * dw``.
    """
    config = _config(config, {"learning_rate": 1e-2})
    _check(w, dw)
    return iadd(dw * -_number(config, "learning_rate"), w), config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.

    Notes
    -----
    ``v <- mu * v - lr * dw``, then ``w <- w + v``.
    """
    config = _config(config, {"learning_rate": 1e-2, "momentum": 0.9})
    _check(w, dw)
    v = _accumulate(config, "velocity", w, _number(config, "momentum"), dw * -_number(config, "learning_rate"))
    return w + v, config


def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum, in the form of the course notes (the gradient is taken at ``w``).

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.

    Notes
    -----
    ``v_prev = v``; ``v <- mu * v - lr * dw``; ``w <- w - mu * v_prev + (1 + mu) * v``: the
    look-ahead step rewritten in terms of the parameters actually stored.
    """
    config = _config(config, {"learning_rate": 1e-2, "momentum": 0.9})
    _check(w, dw)
    mu, lr = _number(config, "momentum"), _number(config, "learning_rate")
    v_prev, _ = _state(config, "velocity", w)
    # w - mu*v_prev + (1+mu)*v = w + mu*mu*v_prev - (1+mu)*lr*dw: the step is taken before the
    # velocity moves on, so v_prev need not be copied.
    next_w = iadd(iadd(dw * (-(1.0 + mu) * lr), v_prev * (mu * mu)), w)
    _accumulate(config, "velocity", w, mu, dw * -lr)
    return next_w, config


def adagrad(w, dw, config=None):
    """Adagrad: per-parameter steps scaled by the accumulated squared gradients.

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-8); state ``cache``.

    Notes
    -----
    ``cache <- cache + dw**2``; ``w <- w - lr * dw / (sqrt(cache) + eps)``.
    """
    config = _config(config, {"learning_rate": 1e-2, "epsilon": 1e-8})
    _check(w, dw)
    cache = _accumulate(config, "cache", w, 1.0, dw * dw)
    step = _scaled(dw * -_number(config, "learning_rate"), cache, _number(config, "epsilon"))
    return iadd(step, w), config


def rmsprop(w, dw, config=None):
    """RMSprop: a leaky average of squared gradients scales the steps.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8); state ``cache``.

    Notes
    -----
    ``cache <- rho * cache + (1 - rho) * dw**2``; ``w <- w - lr * dw / (sqrt(cache) + eps)``.
    """
    config = _config(config, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8})
    _check(w, dw)
    cache = _leaky(config, "cache", w, dw * dw, 1.0 - _number(config, "decay_rate"))
    step = _scaled(dw * -_number(config, "learning_rate"), cache, _number(config, "epsilon"))
    return iadd(step, w), config


def adam(w, dw, config=None):
    """Adam with bias correction.

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8);
    state ``m``, ``v`` and the step count ``t`` (a Python int, so the bias correction needs no
    device read; a 0-d integer array inside a compiled step, which keeps it on the device).

    Notes
    -----
    ``t <- t + 1``; ``m <- b1 m + (1 - b1) dw``; ``v <- b2 v + (1 - b2) dw**2``;
    ``m_hat = m / (1 - b1**t)``; ``v_hat = v / (1 - b2**t)``;
    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps)``.
    """
    config = _config(config, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0})
    _check(w, dw)
    b1, b2 = _number(config, "beta1"), _number(config, "beta2")
    t = _count(config["t"]) + 1
    m = _leaky(config, "m", w, dw, 1.0 - b1)
    v = _leaky(config, "v", w, dw * dw, 1.0 - b2)
    config["t"] = t
    # The bias corrections are Python scalars folded into the step, with no m_hat or v_hat arrays:
    # lr m_hat / (sqrt(v_hat) + eps) = (lr sqrt(1 - b2^t) / (1 - b1^t)) m / (sqrt(v) + eps sqrt(1 - b2^t)).
    if isinstance(t, int):
        root, correction1 = math.sqrt(1.0 - b2**t), 1.0 - b1**t
    else:
        # t is a 0-d array (a compiled step traces it): the corrections in w's dtype, as
        # -expm1(t log b), which keeps its digits where 1 - b**t would cancel (small t, float32).
        xp = backend.get_namespace(t)
        tw = xp.astype(t, w.dtype)
        root, correction1 = (-xp.expm1(tw * math.log(b2))) ** 0.5, -xp.expm1(tw * math.log(b1))
    denom = iadd(v**0.5, _number(config, "epsilon") * root)
    step = itruediv(m * (-_number(config, "learning_rate") * root / correction1), denom)
    return iadd(step, w), config


def _count(value):
    """A step count as a Python int, or as it is when it is an array (kept on the device)."""
    return int(value) if isinstance(value, numbers.Integral) or not hasattr(value, "dtype") else value


# Read-only: the lookup table is shared by every caller.
UPDATE_RULES: Mapping[str, Callable] = MappingProxyType({
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "momentum": sgd_momentum,
    "nesterov": nesterov_momentum,
    "nesterov_momentum": nesterov_momentum,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
})


def get_update_rule(rule, /) -> Callable:
    """The update rule called ``rule`` (a key of :data:`UPDATE_RULES`), or ``rule`` itself if callable."""
    if callable(rule):
        return rule
    if not isinstance(rule, str):
        raise TypeError(f"update_rule must be a name or a callable, got {type(rule).__name__}")
    try:
        return UPDATE_RULES[rule.lower()]
    except KeyError:
        raise ValueError(
            f"unknown update rule {rule!r}; choose one of: {', '.join(sorted(UPDATE_RULES))}, or pass a callable "
            "rule(w, dw, config) -> (next_w, config)"
        ) from None

