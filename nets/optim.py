"""The course's update rules, ``rule(w, dw, config=None) -> (next_w, config)``, over :mod:`nets.rules`.

``config`` (by position or keyword, as the notebooks call them) holds the hyperparameters
(``learning_rate``, ``momentum``, ...) and the rule's state (``velocity``, ``cache``, ``m``,
``v``, the step count ``t``); the first call fills in the defaults and creates the state on
``w``'s device. Each function is one step of the matching :class:`nets.rules.Rule`, taken on
the functional path: ``next_w`` and the new state are new arrays stored in ``config`` (the same
dict is returned), and neither ``w``, ``dw`` nor any array in ``config`` is changed, so these
give the same numbers on arrays that cannot be written (JAX). Training loops use
:mod:`nets.rules` directly (:class:`nets.Solver` updates in place where it may).

Hyperparameters are read as Python numbers: a NumPy float64 learning rate does not turn float32
weights into float64.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from types import MappingProxyType

from ..backend.errors import InputError, InputTypeError
from . import rules

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

# The state each rule keeps in config, in the order of its slots.
_SLOTS = {"sgd": (), "momentum": ("velocity",), "nesterov": ("velocity",), "adagrad": ("cache",),
          "rmsprop": ("cache",), "adam": ("m", "v")}
_DEFAULTS = {"sgd": {}, "momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9}, "adagrad": {"epsilon": 1e-8},
             "rmsprop": {"decay_rate": 0.99, "epsilon": 1e-8},
             "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0}}


def _number(config: dict, key: str):
    value = config[key]
    if isinstance(value, bool):
        raise InputTypeError(f"config[{key!r}] must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputTypeError(f"config[{key!r}] must be a number, got {value!r}") from None


def _course_step(name: str, w, dw, config):
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise InputTypeError(f"config must be a dict of hyperparameters and state, got {type(config).__name__}")
    cls = rules.RULES[name]
    config.setdefault("learning_rate", cls.default_learning_rate)
    for key, value in _DEFAULTS[name].items():
        config.setdefault(key, value)
    if tuple(dw.shape) != tuple(w.shape):
        raise InputError(f"dw has shape {tuple(dw.shape)} but w has {tuple(w.shape)}")
    rule = cls(**{k: _number(config, k) for k in _DEFAULTS[name] if k != "t"})
    fresh = rule.slots(w)
    slots = []
    for key, zero in zip(_SLOTS[name], fresh, strict=True):
        state = config.get(key)
        if state is not None and tuple(state.shape) != tuple(w.shape):
            raise InputError(f"config[{key!r}] has shape {tuple(state.shape)} but the parameter has {tuple(w.shape)}")
        slots.append(zero if state is None else state)
    t = config.get("t", 0)
    count = (int(t) if isinstance(t, numbers.Integral) else t) + 1
    lr = rules.check_learning_rate(_number(config, "learning_rate"), what="config['learning_rate']")
    next_w, slots = rule.step(w, dw, tuple(slots), lr=lr, count=count, decay=0.0, own=False)
    config.update(zip(_SLOTS[name], slots, strict=True))
    if "t" in _DEFAULTS[name]:
        config["t"] = count
    return next_w, config


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w <- w - lr * dw``.

    config: ``learning_rate`` (default 1e-2).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import optim
    >>> w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> w, config = optim.sgd(w, dw, {"learning_rate": 0.1})
    >>> w.round(4)
    array([ 0.95, -2.05])
    >>> sorted(config)
    ['learning_rate']
    """
    return _course_step("sgd", w, dw, config)


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v <- mu v - lr dw``; ``w <- w + v``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import optim
    >>> w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> w, config = optim.sgd_momentum(w, dw, {"learning_rate": 0.1})
    >>> w.round(4)
    array([ 0.95, -2.05])
    >>> sorted(config)
    ['learning_rate', 'momentum', 'velocity']
    """
    return _course_step("momentum", w, dw, config)


def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum in the notes' form (:class:`nets.rules.Nesterov`).

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import optim
    >>> w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> w, config = optim.nesterov_momentum(w, dw, {"learning_rate": 0.1})
    >>> w.round(4)
    array([ 0.905, -2.095])
    >>> sorted(config)
    ['learning_rate', 'momentum', 'velocity']
    """
    return _course_step("nesterov", w, dw, config)


def adagrad(w, dw, config=None):
    """Adagrad: ``cache <- cache + dw^2``; ``w <- w - lr dw / (sqrt(cache) + eps)``.

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-8); state ``cache``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import optim
    >>> w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> w, config = optim.adagrad(w, dw, {"learning_rate": 0.1})
    >>> w.round(4)
    array([ 0.9, -2.1])
    >>> sorted(config)
    ['cache', 'epsilon', 'learning_rate']
    """
    return _course_step("adagrad", w, dw, config)


def rmsprop(w, dw, config=None):
    """RMSprop: a leaky average of squared gradients scales the steps.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8); state ``cache``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import optim
    >>> w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> w, config = optim.rmsprop(w, dw, {"learning_rate": 0.1})  # the first step divides by sqrt(0.01 dw**2)
    >>> w.round(4)
    array([ 0., -3.])
    >>> sorted(config)
    ['cache', 'decay_rate', 'epsilon', 'learning_rate']
    """
    return _course_step("rmsprop", w, dw, config)


def adam(w, dw, config=None):
    """Adam with bias correction (:class:`nets.rules.Adam`).

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8);
    state ``m``, ``v`` and the step count ``t`` (a Python int).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import optim
    >>> w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> w, config = optim.adam(w, dw, {"learning_rate": 0.1})  # the first step is lr * sign(dw)
    >>> w.round(4)
    array([ 0.9, -2.1])
    >>> sorted(config)
    ['beta1', 'beta2', 'epsilon', 'learning_rate', 'm', 't', 'v']
    """
    return _course_step("adam", w, dw, config)


_COURSE = {"sgd": sgd, "momentum": sgd_momentum, "nesterov": nesterov_momentum, "adagrad": adagrad,
           "rmsprop": rmsprop, "adam": adam}
# Read-only: every name of the rule table (and its aliases) to the course's function.
UPDATE_RULES: Mapping[str, Callable] = MappingProxyType(
    {**_COURSE, **{alias: _COURSE[name] for alias, name in rules.ALIASES.items()}})


def get_update_rule(rule, /) -> Callable:
    """The course function of the rule called ``rule`` (a key of :data:`UPDATE_RULES`), or ``rule`` itself
    if callable.

    Examples
    --------
    >>> from xpml.nets import optim
    >>> optim.get_update_rule("adam") is optim.adam
    True
    >>> optim.get_update_rule("momentum").__name__
    'sgd_momentum'
    """
    if callable(rule):
        return rule
    if not isinstance(rule, str):
        raise InputTypeError(f"update_rule must be a name or a callable, got {type(rule).__name__}")
    try:
        return UPDATE_RULES[rule.lower()]
    except KeyError:
        raise InputError(
            f"unknown update rule {rule!r}; choose one of: {', '.join(sorted(UPDATE_RULES))}, or pass a callable "
            "rule(w, dw, config) -> (next_w, config)"
        ) from None
