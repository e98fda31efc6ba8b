"""Learning-rate schedules of the course notes: step, exponential and 1/t decay.

A schedule is a callable ``schedule(t) -> learning_rate`` of a Python number ``t``;
:meth:`nets.TwoLayerNet.train` calls it once per epoch with the number of completed epochs (0
before the first), so the rate never has to be read from a device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from ..backend.errors import InputError
from ..backend.validation import check_positive

__all__ = ["ExponentialDecay", "InverseTimeDecay", "StepDecay", "get_schedule"]


@dataclass(frozen=True)
class StepDecay:
    """Multiply the rate by ``gamma`` every ``step_size`` units of ``t``.

    Notes
    -----
    ``lr(t) = lr0 * gamma ** floor(t / step_size)``.

    Examples
    --------
    >>> from xpml.nets.schedules import StepDecay
    >>> schedule = StepDecay(0.1, step_size=2, gamma=0.5)
    >>> [schedule(t) for t in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    learning_rate: float
    step_size: int = 1
    gamma: float = 0.5

    def __post_init__(self):
        check_positive(self.learning_rate, name="learning_rate")
        check_positive(self.step_size, name="step_size", integer=True)
        check_positive(self.gamma, name="gamma")

    def __call__(self, t, /) -> float:
        return self.learning_rate * self.gamma ** (t // self.step_size)


@dataclass(frozen=True)
class _RateDecay:
    """A decay of ``learning_rate`` at rate ``k`` (shared validation of the two below)."""

    learning_rate: float
    k: float

    def __post_init__(self):
        check_positive(self.learning_rate, name="learning_rate")
        check_positive(self.k, name="k", allow_zero=True)


@dataclass(frozen=True)
class ExponentialDecay(_RateDecay):
    """Exponential decay.

    Notes
    -----
    ``lr(t) = lr0 * exp(-k t)``.

    Examples
    --------
    >>> from xpml.nets.schedules import ExponentialDecay
    >>> schedule = ExponentialDecay(0.1, k=0.05)
    >>> [round(schedule(t), 5) for t in range(3)]
    [0.1, 0.09512, 0.09048]
    """

    k: float = 0.05

    def __call__(self, t, /) -> float:
        return self.learning_rate * math.exp(-self.k * t)


@dataclass(frozen=True)
class InverseTimeDecay(_RateDecay):
    """1/t decay.

    Notes
    -----
    ``lr(t) = lr0 / (1 + k t)``.

    Examples
    --------
    >>> from xpml.nets.schedules import InverseTimeDecay
    >>> schedule = InverseTimeDecay(0.1, k=0.1)
    >>> [round(schedule(t), 5) for t in range(3)]
    [0.1, 0.09091, 0.08333]
    """

    k: float = 0.1

    def __call__(self, t, /) -> float:
        return self.learning_rate / (1.0 + self.k * t)


_SCHEDULES = MappingProxyType({"step": StepDecay, "exponential": ExponentialDecay, "exp": ExponentialDecay,
                               "inverse_time": InverseTimeDecay, "1/t": InverseTimeDecay})


def get_schedule(name: str, /, learning_rate: float, **options):
    """Build a schedule by name (``"step"``, ``"exponential"``, ``"inverse_time"`` or ``"1/t"``).

    Examples
    --------
    >>> from xpml.nets.schedules import get_schedule
    >>> get_schedule("step", 0.1, step_size=2)
    StepDecay(learning_rate=0.1, step_size=2, gamma=0.5)
    >>> get_schedule("1/t", 0.1)
    InverseTimeDecay(learning_rate=0.1, k=0.1)
    """
    try:
        cls = _SCHEDULES[name]
    except KeyError:
        raise InputError(f"unknown schedule {name!r}; choose one of: {', '.join(_SCHEDULES)}") from None
    return cls(learning_rate, **options)
