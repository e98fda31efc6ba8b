"""First-order update rules of the course notes, with the CS231n signature.

Every rule is ``rule(w, dw, config=None) -> (next_w, config)``: ``w`` is a parameter array, ``dw``
its gradient (same shape, namespace and device), and ``config`` a dict of hyperparameters and of
the rule's state (velocity, caches, moments, step count). The first call fills in the defaults
and creates the state on ``w``'s device; pass the returned ``config`` back on the next call. The
linear classifiers and :class:`nets.TwoLayerNet` call the rules this way, one config per
parameter, and look them up by name with :func:`get_update_rule`.

The rules update ``w`` and their state arrays in place and return ``w`` itself (as the course's
``sgd`` does): a step then allocates one to four temporaries the size of ``w`` instead of a new
``w`` and new state each time, which matters when the step is a noticeable part of an iteration.
Pass a copy if the old value is still needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from .. import backend

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


def _state(config: dict, key: str, w):
    # State is created once, on the parameter's device; later steps reuse it without looking up
    # the namespace (a per-step lookup would cost a few microseconds per parameter).
    state = config.get(key)
    if state is None:
        xp, device = backend.namespace_and_device(w)
        state = config[key] = xp.zeros(w.shape, dtype=w.dtype, device=device)
    return state


def _scaled_step(dw, cache, lr: float, eps: float):
    """``lr * dw / (sqrt(cache) + eps)`` in two temporaries (the step of Adagrad and RMSprop)."""
    # ``** 0.5`` rather than xp.sqrt: an operator needs no namespace lookup in the hot loop.
    denom = cache**0.5
    denom += eps
    step = dw * lr
    step /= denom
    return step


def sgd(w, dw, config=None, /):
    """Vanilla stochastic gradient descent.

    config: ``learning_rate`` (default 1e-2).

    Notes
    -----
    ``w <- w - lr * dw``.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config


def sgd_momentum(w, dw, config=None, /):
    """SGD with momentum.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.

    Notes
    -----
    ``v <- mu * v - lr * dw``, then ``w <- w + v``.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = _state(config, "velocity", w)
    v *= config["momentum"]
    v -= config["learning_rate"] * dw
    w += v
    return w, config


def nesterov_momentum(w, dw, config=None, /):
    """Nesterov momentum, in the form of the course notes (the gradient is taken at ``w``).

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.

    Notes
    -----
    ``v_prev = v``; ``v <- mu * v - lr * dw``; ``w <- w - mu * v_prev + (1 + mu) * v``, which
    equals ``w + mu * (v - v_prev) + v``: the look-ahead step rewritten in terms of the
    parameters actually stored.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    mu = config["momentum"]
    v = _state(config, "velocity", w)
    # w - mu*v_prev + (1+mu)*v_new with v_new = mu*v_prev - lr*dw expands to
    # w + mu*mu*v_prev - (1+mu)*lr*dw, so v_prev need not be copied.
    w += (mu * mu) * v
    step = ((1.0 + mu) * config["learning_rate"]) * dw
    w -= step
    v *= mu
    v -= config["learning_rate"] * dw
    return w, config


def adagrad(w, dw, config=None, /):
    """Adagrad: per-parameter steps scaled by the accumulated squared gradients.

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-8); state ``cache``.

    Notes
    -----
    ``cache <- cache + dw**2``; ``w <- w - lr * dw / (sqrt(cache) + eps)``.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("epsilon", 1e-8)
    cache = _state(config, "cache", w)
    cache += dw * dw
    w -= _scaled_step(dw, cache, config["learning_rate"], config["epsilon"])
    return w, config


def rmsprop(w, dw, config=None, /):
    """RMSprop: a leaky average of squared gradients scales the steps.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8); state ``cache``.

    Notes
    -----
    ``cache <- rho * cache + (1 - rho) * dw**2``; ``w <- w - lr * dw / (sqrt(cache) + eps)``.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    rho = config["decay_rate"]
    cache = _state(config, "cache", w)
    cache *= rho
    sq = dw * dw
    sq *= 1.0 - rho
    cache += sq
    w -= _scaled_step(dw, cache, config["learning_rate"], config["epsilon"])
    return w, config


def adam(w, dw, config=None, /):
    """Adam with bias correction.

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8);
    state ``m``, ``v`` and the step count ``t`` (a Python int, so the bias correction needs no
    device read).

    Notes
    -----
    ``t <- t + 1``; ``m <- b1 m + (1 - b1) dw``; ``v <- b2 v + (1 - b2) dw**2``;
    ``m_hat = m / (1 - b1**t)``; ``v_hat = v / (1 - b2**t)``;
    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps)``.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    b1, b2 = config["beta1"], config["beta2"]
    m = _state(config, "m", w)
    v = _state(config, "v", w)
    config["t"] = t = config["t"] + 1
    m *= b1
    m += (1.0 - b1) * dw
    v *= b2
    sq = dw * dw
    sq *= 1.0 - b2
    v += sq
    # The bias corrections are Python scalars folded into the step, so no m_hat/v_hat arrays.
    denom = v * (1.0 / (1.0 - b2**t))
    denom **= 0.5
    denom += config["epsilon"]
    step = m * (config["learning_rate"] / (1.0 - b1**t))
    step /= denom
    w -= step
    return w, config


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
