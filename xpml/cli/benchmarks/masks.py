"""The cost of drawing dropout masks, before and after the generator moved onto the device.

``before`` is how masks were drawn until the counter-based generator: PCG64 on the host in
float64, compared with ``p``, cast to the dtype and copied to the backend. ``after`` is
``backend.Generator.dropout_mask``, Threefry-2x32 on the backend's device, already scaled by the
inverse keep probability (``before`` is not: it does less). Both give masks of the same shape and
dtype; the figure is the time per training iteration (one ``batch x hidden`` mask), the best of
the repeats, timed interleaved, with the device synchronised. Masks drawn for several iterations
at once (``iters_per_draw``, the old training loop drew up to 64 MiB at once) amortise per-call
costs.

``xpml bench --only masks`` runs it on ``--backends`` (and ``--gpu-backends`` on a GPU).
"""

from __future__ import annotations

import time

import numpy as np

from ... import backend
from .common import Bench, Place, _finite, fmt_s

__all__ = ["dropout_mask_cost", "run"]

KEEP = (0.5, 0.75, 0.8, 0.9, 0.25)  # keep probabilities
ITERS_PER_DRAW = (1, 20)


def _before(host: np.random.Generator, bk: backend.Backend, shape, p: float, dt):
    """The host-drawn masks the generator used to make (PCG64, float64, cast, copied once)."""
    draws = (host.random(size=shape) < p).astype(np.float64)
    return bk.asarray(draws.astype(np.float32 if dt == bk.xp.float32 else np.float64), dtype=dt)


def _best_s(draws, iterations: int, repeats: int, clock) -> list[float]:
    """The best time of each draw in seconds per iteration, timed interleaved: a load that comes
    and goes on a shared machine then weighs on every draw alike."""
    for _ in range(3):  # warm-up: allocations, and JAX's compilations (eager ops compile per shape)
        for draw in draws:
            backend.synchronize(draw())
    best = [float("inf")] * len(draws)
    for _ in range(repeats):
        for i, draw in enumerate(draws):
            t0 = clock()
            backend.synchronize(draw())
            best[i] = min(best[i], clock() - t0)
    return [b / iterations for b in best]


def dropout_mask_cost(bk, /, *, batch: int = 200, hidden: int = 500, p: float = 0.5, iters_per_draw: int = 1,
                      repeats: int = 5, dtype: str = "float32", clock=time.perf_counter) -> dict:
    """Seconds per iteration to draw a ``batch x hidden`` keep-mask with probability ``p``.

    Returns
    -------
    dict
        ``backend``, ``device``, ``p``, ``iters_per_draw``, ``before_s``, ``after_s`` and
        ``ratio`` (after / before: at most 1 means the cost did not rise).
    """
    bk = backend.as_backend(bk)
    dt = backend.float_dtype(bk.xp, bk.device, dtype)
    shape = (iters_per_draw, batch, hidden)
    host = np.random.Generator(np.random.PCG64(0))
    rng = backend.Generator(0, xp=bk)
    draws = [lambda: _before(host, bk, shape, p, dt), lambda: rng.dropout_mask(shape, keep=p, dtype=dt)]
    before, after = _best_s(draws, iters_per_draw, repeats, clock)
    return {"backend": bk.label, "device": bk.device_name, "p": p, "iters_per_draw": iters_per_draw,
            "before_s": before, "after_s": after, "ratio": after / before}


def run(bench: Bench, place: Place) -> None:
    """The ``masks`` section: every keep probability and draw size on every backend of ``place``."""
    batch, hidden = (200, 500) if not bench.quick else (50, 64)
    keep, per_draw = (KEEP, ITERS_PER_DRAW) if not bench.quick else (KEEP[:1], ITERS_PER_DRAW[:1])
    bench.say(f"\n### Dropout masks on the {place.title}: {batch} x {hidden} per iteration, host-drawn (before) "
              "against the device generator (after), best of the repeats")
    bench.header()
    for bk in place.backends:
        for p in keep:
            for iters in per_draw:
                r = dropout_mask_cost(bk, batch=batch, hidden=hidden, p=p, iters_per_draw=iters,
                                      repeats=max(bench.repeats, 3), clock=bench.clock)
                name = f"xpml dropout_mask ({bk.label}) p={p:g}, {iters} it/draw"
                bench.row(name, f"{fmt_s(r['after_s'])}/it", f"before {fmt_s(r['before_s'])}/it",
                          f"after/before {r['ratio']:.2f}x")
                bench.records.append(_finite({"section": "masks", "case": f"p={p:g}, {iters} it/draw", "tool": name,
                                              "status": "ok", "unit": "it", "batch": batch, "hidden": hidden, **r,
                                              "env": bench.env()}))
