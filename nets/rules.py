"""Update rules and the transforms that chain with them, in optax's shape.

A rule is a pair of functions over dicts of parameters (name -> array)::

    state = rule.init(params)
    params, state = rule.update(grads, state, params, lr)

``init`` makes the rule's state (its per-parameter arrays, zeros on each parameter's device, and
a step count); ``update`` returns the new parameters and state. The learning rate is an argument
of ``update``, not a hyperparameter of the rule, so a schedule changes it without touching the
state (and, in a compiled step, without recompiling).

Transforms add what the course notes add to a rule: :func:`l2` (the course's ``reg * sum(W**2)``,
as weight decay), :func:`l1`, :func:`max_norm` (a projection after the update) and
:func:`averaging` (an exponential moving average of the parameters, kept in the state).
:func:`chain` composes them with one rule, like ``optax.chain``::

    opt = chain(l2(5e-6), max_norm(3.0), get_rule("sgd"))
    state = opt.init(params)
    loss = loss + opt.penalty(params)          # the regularization terms of the loss
    params, state = opt.update(grads, state, params, lr)

Functional and in-place, bit for bit
------------------------------------
``update(..., in_place=False)`` (the default) writes into nothing it was given. With
``in_place=True`` the caller declares that it holds the only references to ``params``, ``state``
and ``grads`` (:class:`nets.Solver` does); the update then writes into those arrays where the
namespace allows it (NumPy, CuPy, PyTorch) and returns them, so a step of SGD with L2 is the three
passes ``g *= lr; w *= 1 - 2 lr reg; w -= g`` with no temporary. Both paths run the same sequence
of elementwise operations, so they give the same numbers bit for bit; arrays that cannot be
written (JAX, read-only NumPy) take the functional path whatever the caller asked.

The rule table
--------------
:data:`RULES` maps each rule's name to its class; every class states ``state_size``, the arrays
it keeps per parameter (momentum 1, Adam 2), which the command line's memory estimate reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

from .. import backend
from ..backend._arith import iadd, imul, itruediv, writeable
from ..backend.errors import InputError, InputTypeError

__all__ = [
    "ALIASES",
    "RULES",
    "Adagrad",
    "Adam",
    "Chain",
    "CourseRule",
    "Momentum",
    "Nesterov",
    "RMSprop",
    "Rule",
    "SGD",
    "Transform",
    "averaging",
    "chain",
    "check_learning_rate",
    "freeze",
    "get_rule",
    "is_weight",
    "l1",
    "l2",
    "max_norm",
    "scale_learning_rate",
    "state_size",
]


# ---- owned arithmetic -----------------------------------------------------------------------------
# ``own`` says the caller may overwrite ``a`` (an array it holds the only reference to). The
# result is the same either way: ``a op= b`` and ``a op b`` round alike on every namespace.

def _mul(a, b, own: bool):
    if own and writeable(a):
        a *= b
        return a
    return a * b


def _add(a, b, own: bool):
    if own and writeable(a):
        a += b
        return a
    return a + b


def _sub(a, b, own: bool):
    if own and writeable(a):
        a -= b
        return a
    return a - b


def is_weight(name: str, array, /) -> bool:
    """Whether a parameter is a weight that L2, L1 and max-norm act on.

    The course names weights ``W``, ``W1``, ``W2``, ...; biases and normalization parameters
    (``b1``, ``gamma1``, ``beta1``) are not regularized.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import is_weight
    >>> is_weight("W1", np.zeros((2, 2))), is_weight("b1", np.zeros(2)), is_weight("gamma1", np.zeros((2, 2)))
    (True, False, False)
    """
    return name.startswith("W") and array.ndim >= 2


def check_learning_rate(lr, /, *, what: str = "the learning rate"):
    """``lr`` as a Python float, refusing a negative, infinite or NaN value (a traced 0-d array passes).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import check_learning_rate
    >>> check_learning_rate(1e-3), check_learning_rate(np.float32(0.5))
    (0.001, 0.5)
    >>> check_learning_rate(-0.1)
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: the learning rate must be a finite number >= 0, got -0.1: a negative rate ...
    """
    if hasattr(lr, "shape") and not isinstance(lr, (int, float)):
        try:
            lr_value = float(lr)
        except Exception:  # a traced value inside a compiled step: checked before tracing
            return lr
    else:
        lr_value = lr
    if isinstance(lr_value, bool) or not isinstance(lr_value, (int, float)):
        raise InputTypeError(f"{what} must be a number, got {lr!r}")
    lr_value = float(lr_value)
    if not math.isfinite(lr_value) or lr_value < 0:
        raise InputError(f"{what} must be a finite number >= 0, got {lr!r}: a negative rate climbs the loss; "
                         "check the schedule or optim_config['learning_rate']")
    return lr_value


def _unit(value, name: str, *, low_open=False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (0.0 < v < 1.0 if low_open else 0.0 <= v < 1.0):
        raise InputError(f"{name} must be in {'(0' if low_open else '[0'}, 1), got {value!r}")
    return v


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not v > 0 or not math.isfinite(v):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return v


# ---- rules -----------------------------------------------------------------------------------------

class Rule:
    """An update rule: per-parameter state and one step.

    Subclasses set ``state_size`` (arrays kept per parameter), ``default_learning_rate`` (the
    course's default for the rule) and implement :meth:`step` for one parameter array.

    Examples
    --------
    >>> from xpml.nets.rules import Adam, Rule, SGD
    >>> issubclass(Adam, Rule), Adam.state_size, Adam.default_learning_rate, SGD.default_learning_rate
    (True, 2, 0.001, 0.01)
    >>> Adam(beta1=0.5)
    Adam(beta1=0.5, beta2=0.999, epsilon=1e-08)
    """

    name: str = "rule"
    state_size: int = 0
    default_learning_rate: float = 1e-2

    def slots(self, w) -> tuple:
        """The initial per-parameter state of ``w``: ``state_size`` zero arrays on its device."""
        xp, device = backend.namespace_and_device(w)
        return tuple(xp.zeros(w.shape, dtype=w.dtype, device=device) for _ in range(self.state_size))

    def step(self, w, g, slots: tuple, *, lr, count, decay: float, own: bool):
        """One update of ``w`` with gradient ``g``: ``(next_w, next_slots)``.

        ``count`` is the 1-based step number; ``decay`` a weight decay folded into the gradient
        (``g + decay * w``, the gradient of L2); ``own`` whether ``w``, ``g`` and ``slots`` may be
        overwritten.
        """
        raise NotImplementedError

    def init(self, params: Mapping, /) -> dict:
        return chain(self).init(params)

    def update(self, grads: Mapping, state: dict, params: Mapping, lr, /, *, in_place: bool = False):
        return chain(self).update(grads, state, params, lr, in_place=in_place)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({hyper})"


def _decayed(g, w, decay, own):
    return _add(g, w * decay, own) if decay else g


class SGD(Rule):
    """Vanilla SGD: ``w <- w - lr * dw``. With L2 (``decay``) the step is fused:
    ``w <- w * (1 - lr * decay) - lr * dw``, three passes with no temporary.

    Examples
    --------
    Two steps at learning rate 0.1 with the same gradient; each moves ``w`` by ``-0.1 * dw``.

    >>> import numpy as np
    >>> from xpml.nets.rules import SGD
    >>> rule = SGD()
    >>> params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, -1.0])}
    >>> state = rule.init(params)
    >>> for _ in range(2):
    ...     params, state = rule.update(grads, state, params, 0.1)
    >>> params["w"].round(4)
    array([ 0.9, -1.8])
    >>> state["count"], len(state["slots"]["w"]), rule.state_size
    (2, 0, 0)
    """

    name, state_size = "sgd", 0

    def step(self, w, g, slots, *, lr, count, decay, own):
        g = _mul(g, lr, own)
        if decay:
            w = _mul(w, 1.0 - lr * decay, own)
        return _sub(w, g, own), ()


class Momentum(Rule):
    """SGD with momentum: ``v <- mu v - lr dw``; ``w <- w + v``.

    Examples
    --------
    Two steps at learning rate 0.1 with the same gradient; the second goes further (0.095 against 0.05).

    >>> import numpy as np
    >>> from xpml.nets.rules import Momentum
    >>> rule = Momentum(0.9)
    >>> params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, -1.0])}
    >>> state = rule.init(params)
    >>> for _ in range(2):
    ...     params, state = rule.update(grads, state, params, 0.1)
    >>> params["w"].round(4)
    array([ 0.855, -1.71 ])
    >>> state["count"], len(state["slots"]["w"]), rule.state_size
    (2, 1, 1)
    """

    name, state_size = "momentum", 1

    def __init__(self, momentum: float = 0.9):
        self.momentum = _unit(momentum, "momentum")

    def step(self, w, g, slots, *, lr, count, decay, own):
        g = _decayed(g, w, decay, own)
        (v,) = slots
        v = _sub(_mul(v, self.momentum, own), _mul(g, lr, own), own)
        return _add(w, v, own), (v,)


class Nesterov(Rule):
    """Nesterov momentum in the notes' form: ``v' = mu v - lr dw``; ``w <- w - mu v + (1 + mu) v'``,
    computed as ``w + mu^2 v - (1 + mu) lr dw`` before the velocity moves on.

    Examples
    --------
    Two steps at learning rate 0.1 with the same gradient.

    >>> import numpy as np
    >>> from xpml.nets.rules import Nesterov
    >>> rule = Nesterov(0.9)
    >>> params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, -1.0])}
    >>> state = rule.init(params)
    >>> for _ in range(2):
    ...     params, state = rule.update(grads, state, params, 0.1)
    >>> params["w"].round(4)
    array([ 0.7695, -1.539 ])
    >>> state["count"], len(state["slots"]["w"]), rule.state_size
    (2, 1, 1)
    """

    name, state_size = "nesterov", 1

    def __init__(self, momentum: float = 0.9):
        self.momentum = _unit(momentum, "momentum")

    def step(self, w, g, slots, *, lr, count, decay, own):
        mu = self.momentum
        g = _decayed(g, w, decay, own)
        (v,) = slots
        w = _add(w, iadd(g * (-(1.0 + mu) * lr), v * (mu * mu)), own)
        v = _sub(_mul(v, mu, own), _mul(g, lr, own), own)
        return w, (v,)


class Adagrad(Rule):
    """Adagrad: ``cache <- cache + dw^2``; ``w <- w - lr dw / (sqrt(cache) + eps)``.

    Examples
    --------
    Two steps at learning rate 0.1 with the same gradient; the first step is ``lr * sign(dw)``,
    the second ``lr / sqrt(2)``.

    >>> import numpy as np
    >>> from xpml.nets.rules import Adagrad
    >>> rule = Adagrad()
    >>> params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, -1.0])}
    >>> state = rule.init(params)
    >>> for _ in range(2):
    ...     params, state = rule.update(grads, state, params, 0.1)
    >>> params["w"].round(4)
    array([ 0.8293, -1.8293])
    >>> state["count"], len(state["slots"]["w"]), rule.state_size
    (2, 1, 1)
    """

    name, state_size = "adagrad", 1

    def __init__(self, epsilon: float = 1e-8):
        self.epsilon = _positive(epsilon, "epsilon")

    def step(self, w, g, slots, *, lr, count, decay, own):
        g = _decayed(g, w, decay, own)
        (cache,) = slots
        cache = _add(cache, g * g, own)
        step = itruediv(_mul(g, lr, own), iadd(cache**0.5, self.epsilon))
        return _sub(w, step, own), (cache,)


class RMSprop(Rule):
    """RMSprop: ``cache <- cache + (1 - rho)(dw^2 - cache)``; ``w <- w - lr dw / (sqrt(cache) + eps)``.

    Examples
    --------
    Two steps at learning rate 0.1 with the same gradient.

    >>> import numpy as np
    >>> from xpml.nets.rules import RMSprop
    >>> rule = RMSprop(decay_rate=0.9)
    >>> params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, -1.0])}
    >>> state = rule.init(params)
    >>> for _ in range(2):
    ...     params, state = rule.update(grads, state, params, 0.1)
    >>> params["w"].round(4)
    array([ 0.4544, -1.4544])
    >>> state["count"], len(state["slots"]["w"]), rule.state_size
    (2, 1, 1)
    """

    name, state_size = "rmsprop", 1

    def __init__(self, decay_rate: float = 0.99, epsilon: float = 1e-8):
        self.decay_rate = _unit(decay_rate, "decay_rate")
        self.epsilon = _positive(epsilon, "epsilon")

    def step(self, w, g, slots, *, lr, count, decay, own):
        g = _decayed(g, w, decay, own)
        (cache,) = slots
        cache = _add(cache, imul(g * g - cache, 1.0 - self.decay_rate), own)
        step = itruediv(_mul(g, lr, own), iadd(cache**0.5, self.epsilon))
        return _sub(w, step, own), (cache,)


class Adam(Rule):
    """Adam with bias correction.

    Notes
    -----
    ``m <- m + (1 - b1)(dw - m)``; ``v <- v + (1 - b2)(dw^2 - v)``;
    ``w <- w - lr m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``, computed without ``m_hat`` or ``v_hat`` arrays as
    ``(lr sqrt(1 - b2^t) / (1 - b1^t)) m / (sqrt(v) + eps sqrt(1 - b2^t))``.

    Examples
    --------
    Two steps at learning rate 0.1 with the same gradient; with bias correction each step is
    ``lr * sign(dw)`` for a constant gradient.

    >>> import numpy as np
    >>> from xpml.nets.rules import Adam
    >>> rule = Adam()
    >>> params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, -1.0])}
    >>> state = rule.init(params)
    >>> for _ in range(2):
    ...     params, state = rule.update(grads, state, params, 0.1)
    >>> params["w"].round(4)
    array([ 0.8, -1.8])
    >>> state["count"], len(state["slots"]["w"]), rule.state_size
    (2, 2, 2)
    """

    name, state_size, default_learning_rate = "adam", 2, 1e-3

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        self.beta1 = _unit(beta1, "beta1")
        self.beta2 = _unit(beta2, "beta2")
        self.epsilon = _positive(epsilon, "epsilon")

    def step(self, w, g, slots, *, lr, count, decay, own):
        b1, b2 = self.beta1, self.beta2
        g = _decayed(g, w, decay, own)
        m, v = slots
        m = _add(m, imul(g - m, 1.0 - b1), own)
        v = _add(v, imul(g * g - v, 1.0 - b2), own)
        if isinstance(count, int):
            root, correction1 = math.sqrt(1.0 - b2**count), 1.0 - b1**count
        else:
            # A traced count (compiled step): the corrections in w's dtype, as -expm1(t log b), which
            # keeps its digits where 1 - b**t would cancel.
            xp = backend.get_namespace(count)
            t = xp.astype(count, w.dtype)
            root, correction1 = (-xp.expm1(t * math.log(b2))) ** 0.5, -xp.expm1(t * math.log(b1))
        step = itruediv(m * (lr * root / correction1), iadd(v**0.5, self.epsilon * root))
        return _sub(w, step, own), (m, v)


class CourseRule(Rule):
    """A rule written as the course writes them, ``rule(w, dw, config) -> (next_w, config)``.

    The per-parameter ``config`` dicts (hyperparameters and whatever state the rule keeps) are the
    state; each step passes the current learning rate in ``config["learning_rate"]``. Such a rule
    is never compiled and its ``state_size`` is unknown (None).

    Examples
    --------
    The course's momentum with its velocity kept in ``config``:

    >>> import numpy as np
    >>> from xpml.nets.rules import CourseRule
    >>> def sgd_momentum(w, dw, config):
    ...     config.setdefault("velocity", np.zeros_like(w))
    ...     config["velocity"] = 0.5 * config["velocity"] - config["learning_rate"] * dw
    ...     return w + config["velocity"], config
    >>> rule = CourseRule(sgd_momentum)
    >>> rule.name, rule.state_size
    ('sgd_momentum', None)
    >>> params, state = rule.update({"w": np.array([1.0, -1.0])}, rule.init({"w": np.ones(2)}), {"w": np.ones(2)}, 0.1)
    >>> params["w"], state["slots"]["w"][0]["velocity"]
    (array([0.9, 1.1]), array([-0.1,  0.1]))
    """

    name, state_size = "custom", None

    def __init__(self, fn: Callable, config: Mapping | None = None):
        if not callable(fn):
            raise InputTypeError(f"a course rule must be callable, rule(w, dw, config) -> (next_w, config); got {fn!r}")
        self.fn, self.config = fn, dict(config or {})
        self.name = getattr(fn, "__name__", "custom")

    def slots(self, w) -> tuple:
        return (dict(self.config),)

    def step(self, w, g, slots, *, lr, count, decay, own):
        config = dict(slots[0])
        config["learning_rate"] = lr
        next_w, config = self.fn(w, _decayed(g, w, decay, own), config)
        return next_w, (config,)


# ---- transforms ------------------------------------------------------------------------------------

class Transform:
    """Something that chains with a rule: a loss term and its gradient, a projection, an average.

    Hooks (each optional): ``penalty(w)`` adds to the loss; ``decay`` (a float) is a weight decay the
    rule folds into its step (L2); ``grad(g, w, own)`` changes the gradient before the rule;
    ``project(w, own)`` changes the parameter after it. All act on weights only (:func:`is_weight`).
    :func:`averaging` keeps its own state instead.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import Transform, l1, l2
    >>> isinstance(l2(1e-3), Transform), l1(0.1)
    (True, l1(0.1))
    >>> Transform().penalty(np.ones(2)) is None, Transform.decay
    (True, 0.0)
    """

    decay = 0.0

    def check(self, params: Mapping, /) -> None:
        """Raise a clear error when the transform does not fit ``params`` (called by ``init``)."""

    def lr_factor(self, name: str, /) -> float:
        """The factor of the learning rate of parameter ``name`` (0: the parameter is frozen)."""
        return 1.0

    def penalty(self, w):
        return None

    def grad(self, g, w, own):
        return g

    def project(self, w, own):
        return w


class _L2(Transform):
    def __init__(self, reg):
        self.reg = _nonnegative(reg, "reg")
        self.decay = 2.0 * self.reg

    def penalty(self, w):
        # A dot product of the flattened weights: no temporary for W * W.
        flat = backend.get_namespace(w).reshape(w, (-1,))
        return self.reg * (flat @ flat)

    def __repr__(self):
        return f"l2({self.reg!r})"


class _L1(Transform):
    def __init__(self, reg):
        self.reg = _nonnegative(reg, "l1")

    def penalty(self, w):
        xp = backend.get_namespace(w)
        return self.reg * xp.sum(xp.abs(w))

    def grad(self, g, w, own):
        return _add(g, backend.get_namespace(w).sign(w) * self.reg, own)

    def __repr__(self):
        return f"l1({self.reg!r})"


class _MaxNorm(Transform):
    def __init__(self, c):
        self.c = _positive(c, "max_norm")

    def project(self, w, own):
        if w.ndim != 2:
            return w
        xp = backend.get_namespace(w)
        norms = xp.sqrt(xp.sum(w * w, axis=0))
        # Columns under the bound get factor 1 exactly; the floor keeps a zero column from dividing by 0.
        return _mul(w, xp.minimum(self.c / xp.maximum(norms, 1e-30), 1.0), own)

    def __repr__(self):
        return f"max_norm({self.c!r})"


class _Averaging(Transform):
    def __init__(self, decay):
        self.rate_decay = _unit(decay, "averaging decay", low_open=True)

    def rate(self, count, like):
        """``1 - min(decay, t / (9 + t))`` at the 1-based step ``t`` (in ``like``'s dtype when ``t`` is
        an array): the first steps do not drag the initial weights along."""
        if isinstance(count, int):
            return 1.0 - min(self.rate_decay, count / (9.0 + count))
        xp = backend.get_namespace(count)
        t = xp.astype(count, like.dtype)
        return 1.0 - xp.minimum(t / (9.0 + t), self.rate_decay)

    def __repr__(self):
        return f"averaging({self.rate_decay!r})"


class _LearningRateFactors(Transform):
    """Per-parameter learning-rate factors by name or name prefix; factor 0 freezes."""

    def __init__(self, factors: Mapping, what: str):
        if not isinstance(factors, Mapping) or not factors:
            raise InputTypeError(f"{what} takes a non-empty dict {{name_or_prefix: factor}}, got {factors!r}")
        self.factors, self.what = {}, what
        for key, factor in factors.items():
            if not isinstance(key, str) or not key:
                raise InputTypeError(f"{what}: parameter names must be non-empty strings, got {key!r}")
            self.factors[key] = _nonnegative(factor, f"the learning-rate factor of {key!r}")

    def _key(self, name: str):
        # The exact name, else the longest prefix: {"W": 0.1, "W3": 1.0} slows every weight but W3.
        if name in self.factors:
            return name
        keys = [k for k in self.factors if name.startswith(k)]
        return max(keys, key=len) if keys else None

    def check(self, params: Mapping, /) -> None:
        unknown = [k for k in self.factors if not any(n == k or n.startswith(k) for n in params)]
        if unknown:
            raise InputError(f"{self.what}: the model has no parameter named {unknown[0]!r} (nor one starting with "
                             f"it); its parameters are: {', '.join(params)}")

    def lr_factor(self, name: str, /) -> float:
        key = self._key(name)
        return 1.0 if key is None else self.factors[key]

    def __repr__(self):
        return f"scale_learning_rate({self.factors!r})"


class _Freeze(_LearningRateFactors):
    def __init__(self, names):
        if isinstance(names, str):
            names = [n for n in names.split(",") if n]
        names = list(names)
        if not names:
            raise InputError("freeze() needs at least one parameter name, e.g. freeze(['W1', 'b1'])")
        super().__init__(dict.fromkeys(names, 0.0), "freeze")

    def __repr__(self):
        return f"freeze({list(self.factors)!r})"


def _nonnegative(value, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (v >= 0) or not math.isfinite(v):
        raise InputError(f"{name} must be a number >= 0, got {value!r}")
    return v


def l2(reg: float, /) -> Transform:
    """L2 regularization, the course's ``reg * sum(W**2)`` over the weights; gradient ``2 reg W``,
    folded into the rule's step as weight decay.

    Examples
    --------
    The penalty counts the weights only (``W``, not ``b``); one SGD step shrinks them by
    ``1 - 2 lr reg`` before the gradient step:

    >>> import numpy as np
    >>> from xpml.nets.rules import chain, get_rule, l2
    >>> opt = chain(l2(0.5), get_rule("sgd"))
    >>> params = {"W": np.array([[1.0, -2.0], [2.0, 0.0]]), "b": np.array([1.0, 1.0])}
    >>> float(opt.penalty(params))
    4.5
    >>> grads = {"W": np.zeros((2, 2)), "b": np.ones(2)}
    >>> new, state = opt.update(grads, opt.init(params), params, 0.1)
    >>> new["W"], new["b"]
    (array([[ 0.9, -1.8],
           [ 1.8,  0. ]]), array([0.9, 0.9]))
    """
    return _L2(reg)


def l1(reg: float, /) -> Transform:
    """L1 regularization ``reg * sum|W|`` over the weights; (sub)gradient ``reg * sign(W)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import chain, get_rule, l1
    >>> opt = chain(l1(0.1), get_rule("sgd"))
    >>> params = {"W": np.array([[1.0, -2.0], [2.0, 0.0]])}
    >>> round(float(opt.penalty(params)), 4)
    0.5
    >>> new, _ = opt.update({"W": np.zeros((2, 2))}, opt.init(params), params, 1.0)
    >>> new["W"]
    array([[ 0.9, -1.9],
           [ 1.9,  0. ]])
    """
    return _L1(reg)


def max_norm(c: float, /) -> Transform:
    """After every update, clip each column of each 2-D weight (a unit's incoming weights) to
    Euclidean norm ``c``: ``w_j <- w_j * min(1, c / ||w_j||)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import chain, get_rule, max_norm
    >>> opt = chain(max_norm(1.0), get_rule("sgd"))
    >>> params = {"W": np.array([[1.0, -2.0], [2.0, 0.0]])}
    >>> new, _ = opt.update({"W": np.zeros((2, 2))}, opt.init(params), params, 0.1)
    >>> new["W"].round(4)
    array([[ 0.4472, -1.    ],
           [ 0.8944,  0.    ]])
    >>> np.linalg.norm(new["W"], axis=0)
    array([1., 1.])
    """
    return _MaxNorm(c)


def averaging(decay: float, /) -> Transform:
    """An exponential moving average of every parameter, kept in the state (:meth:`Chain.averaged`).

    At step t the average moves by ``1 - min(decay, t / (9 + t))`` towards the new parameters.

    Examples
    --------
    At step 1 the average moves 0.9 of the way (``1 - 1/10``) towards the new parameters:

    >>> import numpy as np
    >>> from xpml.nets.rules import averaging, chain, get_rule
    >>> opt = chain(averaging(0.99), get_rule("sgd"))
    >>> opt, opt.state_size
    (chain(averaging(0.99), SGD()), 1)
    >>> params = {"b": np.array([1.0, 1.0])}
    >>> new, state = opt.update({"b": np.array([1.0, -1.0])}, opt.init(params), params, 0.1)
    >>> new["b"], opt.averaged(state)["b"]
    (array([0.9, 1.1]), array([0.91, 1.09]))
    """
    return _Averaging(decay)


def freeze(names, /) -> Transform:
    """Freeze parameters: their updates are skipped, so their arrays stay unchanged bit for bit.

    ``names`` is a list of parameter names or prefixes (``["W1", "b1"]``; ``"W1,b1"`` also works);
    a name the model does not have is an error naming the ones it has (raised by ``init``). The
    rule's state of a frozen parameter is not advanced either. Their gradients are still
    computed (the layers below need the backward pass through them).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import SGD, chain, freeze
    >>> opt = chain(freeze(["W1"]), SGD())
    >>> params = {"W1": np.ones(2), "W2": np.ones(2)}
    >>> state = opt.init(params)
    >>> grads = {"W1": np.ones(2), "W2": np.ones(2)}
    >>> params, state = opt.update(grads, state, params, 0.5)
    >>> params["W1"], params["W2"]
    (array([1., 1.]), array([0.5, 0.5]))
    >>> chain(freeze(["W3"]), SGD()).init(params)
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: freeze: the model has no parameter named 'W3' (nor one starting with it); ...
    """
    return _Freeze(names)


def scale_learning_rate(factors: Mapping, /) -> Transform:
    """Per-parameter learning rates: ``{name_or_prefix: factor}`` multiplies the rate of the matching
    parameters (the exact name, else the longest matching prefix), e.g. ``{"W1": 0.1, "b1": 0.1}``
    to fine-tune the first layer ten times more slowly. Factor 0 freezes (as :func:`freeze`).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import SGD, chain, scale_learning_rate
    >>> opt = chain(scale_learning_rate({"W1": 0.1}), SGD())
    >>> params = {"W1": np.ones(2), "W2": np.ones(2)}
    >>> params, _ = opt.update({"W1": np.ones(2), "W2": np.ones(2)}, opt.init(params), params, 1.0)
    >>> params["W1"], params["W2"]
    (array([0.9, 0.9]), array([0., 0.]))
    """
    return _LearningRateFactors(factors, "scale_learning_rate")


# ---- the chain ---------------------------------------------------------------------------------------

class Chain:
    """Transforms and one rule, applied as one update (see :func:`chain`).

    State: ``{"count": steps taken, "slots": {name: tuple of arrays}, "average": {name: array}}``
    (``average`` only with :func:`averaging`); a dict of arrays and a count, so it can be passed
    through a compiled function.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import Chain, Momentum, l2
    >>> opt = Chain(l2(1e-3), Momentum(0.9))
    >>> opt, opt.state_size
    (chain(l2(0.001), Momentum(momentum=0.9)), 1)
    >>> state = opt.init({"W": np.ones((2, 3))})
    >>> state["count"], [v.shape for v in state["slots"]["W"]]
    (0, [(2, 3)])
    >>> Chain(l2(1e-3))
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputTypeError: chain(*transforms, rule): the last argument must be an update rule, e.g. ...
    """

    def __init__(self, *parts):
        if not parts or not isinstance(parts[-1], Rule):
            raise InputTypeError(
                "chain(*transforms, rule): the last argument must be an update rule, e.g. get_rule('sgd')"
            )
        *transforms, self.rule = parts
        for t in transforms:
            if not isinstance(t, Transform):
                raise InputTypeError(
                    f"chain() takes transforms (l2, l1, max_norm, averaging) before the rule, got {t!r}"
                )
        self.transforms = tuple(transforms)
        self._average = next((t for t in transforms if isinstance(t, _Averaging)), None)
        self._decay = sum(t.decay for t in transforms)

    @property
    def state_size(self):
        """Arrays kept per parameter (None for a course rule, whose state is unknown)."""
        size = self.rule.state_size
        return None if size is None else size + (self._average is not None)

    def init(self, params: Mapping, /) -> dict:
        for t in self.transforms:
            t.check(params)
        state = {"count": 0, "slots": {k: self.rule.slots(w) for k, w in params.items()}}
        if self._average is not None:
            state["average"] = {k: backend.get_namespace(w).asarray(w, copy=True) for k, w in params.items()}
        return state

    def penalty(self, params: Mapping, /):
        """The transforms' terms of the loss (a 0-d array), or None when there are none."""
        total = None
        for t in self.transforms:
            for k, w in params.items():
                if is_weight(k, w):
                    p = t.penalty(w)
                    if p is not None:
                        total = p if total is None else total + p
        return total

    def averaged(self, state: dict, /):
        """The averaged parameters (with :func:`averaging`), else None."""
        return state.get("average")

    def update(self, grads: Mapping, state: dict, params: Mapping, lr, /, *, in_place: bool = False):
        """``(params, state)`` after one step; see the module's notes on ``in_place``.

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.nets.rules import chain, get_rule
        >>> opt = chain(get_rule("momentum", momentum=0.5))
        >>> params = {"w": np.array([1.0, -1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     params, state = opt.update({"w": np.array([1.0, 1.0])}, state, params, 0.1)
        >>> params["w"], state["count"]
        (array([ 0.75, -1.25]), 2)
        """
        count = state["count"] + 1
        new_params, slots = {}, {}
        for k, w in params.items():
            weight = is_weight(k, w)
            g = grads[k]
            if tuple(g.shape) != tuple(w.shape):
                raise InputError(f"the gradient of {k!r} has shape {tuple(g.shape)} but the parameter has "
                                 f"{tuple(w.shape)}")
            factor = 1.0
            for t in self.transforms:
                factor *= t.lr_factor(k)
            if factor == 0.0:  # frozen: the array and its slots are kept as they are, bit for bit
                new_params[k], slots[k] = w, state["slots"][k]
                continue
            step_lr = lr if factor == 1.0 else lr * factor
            if weight:
                for t in self.transforms:
                    g = t.grad(g, w, in_place)
            w, slots[k] = self.rule.step(w, g, state["slots"][k], lr=step_lr, count=count,
                                         decay=self._decay if weight else 0.0, own=in_place)
            if weight:
                for t in self.transforms:
                    w = t.project(w, in_place)
            new_params[k] = w
        new_state = {"count": count, "slots": slots}
        if self._average is not None:
            new_state["average"] = {k: _add(a, imul(new_params[k] - a, self._average.rate(count, a)), in_place)
                                    for k, a in state["average"].items()}
        return new_params, new_state

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, (*self.transforms, self.rule)))})"


def chain(*parts) -> Chain:
    """Compose transforms with a rule: ``chain(l2(1e-4), max_norm(3.0), get_rule("sgd"))``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.rules import chain, get_rule, l2, max_norm
    >>> opt = chain(l2(1e-4), max_norm(3.0), get_rule("adam"))
    >>> opt, opt.state_size
    (chain(l2(0.0001), max_norm(3.0), Adam(beta1=0.9, beta2=0.999, epsilon=1e-08)), 2)
    >>> params = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    >>> new, state = opt.update({"W": np.ones((2, 2)), "b": np.ones(2)}, opt.init(params), params, 1e-3)
    >>> state["count"], new["b"]
    (1, array([-0.001, -0.001]))
    """
    return Chain(*parts)


# ---- the rule table ------------------------------------------------------------------------------------

RULES: Mapping[str, type[Rule]] = MappingProxyType({
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
})
# The course's names for two of them.
ALIASES: Mapping[str, str] = MappingProxyType({"sgd_momentum": "momentum", "nesterov_momentum": "nesterov"})


def _rule_class(name: str) -> type[Rule]:
    if not isinstance(name, str):
        raise InputTypeError(f"an update rule is named by a string, got {type(name).__name__}")
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in RULES:
        raise InputError(f"unknown update rule {name!r}; choose one of: {', '.join(RULES)} (or "
                         f"{', '.join(ALIASES)}), or pass a callable rule(w, dw, config) -> (next_w, config)")
    return RULES[key]


def get_rule(name: str, /, **hyperparameters) -> Rule:
    """The rule called ``name`` (a key of :data:`RULES` or :data:`ALIASES`) with ``hyperparameters``.

    Examples
    --------
    >>> from xpml.nets.rules import get_rule
    >>> get_rule("adam", beta1=0.5), get_rule("sgd_momentum")
    (Adam(beta1=0.5, beta2=0.999, epsilon=1e-08), Momentum(momentum=0.9))
    >>> get_rule("sgd", momentum=0.9)
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputTypeError: sgd takes the hyperparameters none (and learning_rate), got ['momentum']
    >>> get_rule("adamw")
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: unknown update rule 'adamw'; choose one of: sgd, momentum, nesterov, adagrad, ...
    """
    cls = _rule_class(name)
    try:
        return cls(**hyperparameters)
    except TypeError:
        import inspect

        known = [p for p in inspect.signature(cls).parameters]
        raise InputTypeError(f"{cls.name} takes the hyperparameters {known or 'none'} (and learning_rate), got "
                        f"{sorted(hyperparameters)}") from None


def state_size(name: str, /) -> int:
    """Arrays the rule called ``name`` keeps per parameter (0 for SGD, 2 for Adam).

    Examples
    --------
    >>> from xpml.nets.rules import state_size
    >>> state_size("sgd"), state_size("nesterov_momentum"), state_size("adam")
    (0, 1, 2)
    """
    return _rule_class(name).state_size
