"""Weight initialization schemes of the course notes.

- ``"std"``: small random numbers, ``std * N(0, 1)`` (the assignment's default, std=1e-4).
- ``"xavier"``: calibrated variance, ``N(0, 1) / sqrt(fan_in)``, so each unit's output variance
  matches its input's.
- ``"he"``: ``N(0, 1) * sqrt(2 / fan_in)``, the calibration for ReLU units (He et al., 2015),
  which halve the variance.
"""

from __future__ import annotations

import math

from .. import backend
from ..backend.errors import InputError

__all__ = ["INIT_SCHEMES", "init_weights"]

INIT_SCHEMES = ("std", "xavier", "he")


def init_weights(rng: backend.Generator, shape: tuple[int, int], /, *, scheme: str = "std", std: float = 1e-4,
                 dtype=None):
    """Draw a weight matrix of ``shape`` (fan_in, fan_out) with ``rng`` by ``scheme``.

    The draws come from ``rng`` (host-side, identical on every backend) on its device.

    Notes
    -----
    ``scale = std`` (std), ``1 / sqrt(fan_in)`` (xavier) or ``sqrt(2 / fan_in)`` (he);
    ``W = scale * N(0, 1)``.

    Examples
    --------
    >>> from xpml import backend
    >>> from xpml.nets.init import init_weights
    >>> W = init_weights(backend.Generator(0), (512, 100), scheme="he")
    >>> W.shape
    (512, 100)
    >>> round(float(W.std()), 2)  # sqrt(2 / 512) = 0.0625
    0.06
    """
    fan_in = shape[0]
    if scheme == "std":
        scale = std
    elif scheme == "xavier":
        scale = 1.0 / math.sqrt(fan_in)
    elif scheme == "he":
        scale = math.sqrt(2.0 / fan_in)
    else:
        raise InputError(f"unknown init scheme {scheme!r}; choose one of: {', '.join(INIT_SCHEMES)}")
    return rng.normal(shape, scale=scale, dtype=dtype)
