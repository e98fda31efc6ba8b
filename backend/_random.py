"""A seeded random generator whose draws are identical on every backend.

Rule 4 of the design: the same seed gives the same weights and the same minibatches on NumPy,
CuPy and array-api-strict, so a CPU run and a GPU run can be compared number for number. The
draws are made on the host with NumPy's PCG64 (in float64, then cast) and moved to the target
device once per call. Callers that draw in a loop draw in blocks (one call for many minibatches)
so the transfer is not paid every iteration.
"""

from __future__ import annotations

import numpy as np

from ._dtypes import float_dtype, index_dtype
from ._select import as_backend

__all__ = ["Generator"]


class Generator:
    """Seeded draws placed on one backend and device.

    Parameters
    ----------
    seed : int or None
        The seed; None draws fresh entropy (not reproducible).
    xp : namespace, Backend, str or None, keyword-only
        Where draws are placed: a namespace (with ``device``), a :class:`Backend`, or a backend
        name. None means NumPy on the CPU.
    device : keyword-only
        The device, with a namespace for ``xp``.

    Notes
    -----
    Floating draws are made in float64 on the host and cast to the requested dtype there, so the
    float32 values are bit-identical across backends, not merely close.
    """

    def __init__(self, seed: int | None = None, /, *, xp=None, device=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        bk = as_backend(xp, device=device)
        xp, device = bk.xp, bk.device
        self.seed = seed
        self.xp = xp
        self.device = device
        self._host = np.random.Generator(np.random.PCG64(seed))

    def _put(self, host, dtype):
        return self.xp.asarray(host, dtype=dtype, device=self.device)

    def _float(self, host, dtype):
        dt = float_dtype(self.xp, self.device, dtype)
        host_dtype = np.float32 if dt == self.xp.float32 else np.float64
        return self._put(host.astype(host_dtype, copy=False), dt)

    def normal(self, shape, /, *, loc: float = 0.0, scale: float = 1.0, dtype=None):
        """Draws from N(loc, scale**2) of the given shape; float32 unless ``dtype`` says otherwise."""
        return self._float(self._host.normal(loc, scale, size=shape), dtype)

    def uniform(self, shape, /, *, low: float = 0.0, high: float = 1.0, dtype=None):
        """Draws from U[low, high)."""
        return self._float(self._host.uniform(low, high, size=shape), dtype)

    def integers(self, low: int, high: int | None = None, /, shape=()):
        """Integers in [low, high) (or [0, low) with one bound), of the index dtype."""
        host = self._host.integers(low, high, size=shape, dtype=np.int64)
        return self._put(host, index_dtype(self.xp, self.device))

    def choice(self, n: int, /, size, *, replace: bool = True):
        """Indices into range(n): ``size`` of them, with or without replacement."""
        if n <= 0:
            raise ValueError(f"cannot choose from an empty range (n={n})")
        if not replace and np.prod(size) > n:
            raise ValueError(f"cannot draw {size} indices without replacement from {n}")
        host = self._host.choice(n, size=size, replace=replace).astype(np.int64, copy=False)
        return self._put(host, index_dtype(self.xp, self.device))

    def permutation(self, n: int, /):
        """A random permutation of range(n)."""
        return self._put(self._host.permutation(n).astype(np.int64), index_dtype(self.xp, self.device))

    def bernoulli(self, shape, /, *, p: float, dtype=None):
        """A 0/1 mask, 1 with probability ``p`` (for dropout), as floats of ``dtype``."""
        return self._float((self._host.random(size=shape) < p).astype(np.float64), dtype)

    def spawn(self) -> Generator:
        """An independent child generator on the same backend (deterministic given the seed)."""
        child_seed = int(self._host.integers(0, 2**63 - 1))
        return Generator(child_seed, xp=self.xp, device=self.device)

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed}, xp={self.xp.__name__}, device={self.device!r})"
