"""Learning-rate schedules of the course notes: step, exponential and 1/t decay.

A schedule is a callable ``schedule(t) -> learning_rate`` of a Python number ``t``;
:meth:`nets.TwoLayerNet.train` calls it once per epoch with the number of completed epochs (0
before the first), so the rate never has to be read from a device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from ..backend.validation import check_positive

__all__ = ["ExponentialDecay", "InverseTimeDecay", "StepDecay", "get_schedule"]


@dataclass(frozen=True)
class StepDecay:
    """Multiply the rate by ``gamma`` every ``step_size`` units of ``t``.

    Notes
    -----
    ``lr(t) = lr0 * gamma ** floor(t / step_size)``.
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
    """

    k: float = 0.1

    def __call__(self, t, /) -> float:
        return self.learning_rate / (1.0 + self.k * t)


_SCHEDULES = MappingProxyType({"step": StepDecay, "exponential": ExponentialDecay, "exp": ExponentialDecay,
                               "inverse_time": InverseTimeDecay, "1/t": InverseTimeDecay})


def get_schedule(name: str, /, learning_rate: float, **options):
    """Build a schedule by name (``"step"``, ``"exponential"``, ``"inverse_time"`` or ``"1/t"``)."""
    try:
        cls = _SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(_SCHEDULES)}") from None
    return cls(learning_rate, **options)
