"""Data for the classifiers: the course's spiral toy set (CIFAR-10 loading comes with the linear models)."""

from __future__ import annotations

import backend
from backend.validation import check_positive

__all__ = ["make_spiral"]


def make_spiral(N: int, K: int, /, *, D: int = 2, noise: float = 0.2, seed: int = 0, dtype=None,
                xp=None, device=None):
    """The spiral data set of the course notes: ``K`` arms of ``N`` points each, not linearly separable.

    Parameters
    ----------
    N : int
        Points per class.
    K : int
        Classes (arms).
    D : int, keyword-only
        Dimensionality; the spiral is planar, so only 2 is accepted (it is a parameter because the
        course's code names it).
    noise : float, keyword-only
        Standard deviation of the angular jitter (0.2 in the notes).
    seed : int, keyword-only
        Seed of the jitter; the same seed gives the same points on every backend.
    dtype : keyword-only
        float32 (default) or float64.
    xp, device : keyword-only
        Where the arrays are created (None: NumPy on the CPU).

    Returns
    -------
    X : array (N*K, D)
        Points, class ``j`` in rows ``j*N .. (j+1)*N - 1``.
    y : array (N*K,)
        Labels 0..K-1, of the index dtype.

    Notes
    -----
    For class ``j`` and ``i = 0..N-1``: ``r_i = i / (N - 1)``, ``t_i = 4 j + 4 i / (N - 1) + noise * z_i``
    with ``z_i ~ N(0, 1)``, and the point is ``r_i * (sin t_i, cos t_i)``, as in
    ``r = np.linspace(0, 1, N); t = np.linspace(j*4, (j+1)*4, N) + np.random.randn(N)*0.2``.
    """
    check_positive(N, name="N", integer=True)
    check_positive(K, name="K", integer=True)
    check_positive(noise, name="noise", allow_zero=True)
    if D != 2:
        raise ValueError(f"the spiral is planar: D must be 2, got {D!r}")
    bk = backend.as_backend(xp, device=device)
    xp, device = bk.xp, bk.device
    dt = backend.float_dtype(xp, device, dtype)
    r = xp.linspace(0.0, 1.0, N, dtype=dt, device=device)
    arm = xp.reshape(xp.arange(K, dtype=dt, device=device) * 4.0, (K, 1))
    jitter = backend.Generator(seed, xp=xp, device=device).normal((K, N), scale=noise, dtype=dt)
    t = arm + 4.0 * r + jitter  # (K, N): linspace(4j, 4j + 4, N) is 4j + 4 r
    X = xp.stack([r * xp.sin(t), r * xp.cos(t)], axis=-1)  # (K, N, 2)
    y = xp.arange(N * K, dtype=backend.index_dtype(xp, device), device=device) // N
    return xp.reshape(X, (N * K, D)), y
