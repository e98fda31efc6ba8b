"""The cost of drawing dropout masks, before and after the generator moved onto the device.

``before`` is how masks were drawn until the counter-based generator: PCG64 on the host in
float64, compared with ``p``, cast to the dtype and copied to the backend. ``after`` is
``backend.Generator.dropout_mask``, Threefry-2x32 on the backend's device, already scaled by the
inverse keep probability (``before`` is not: it does less). Both give masks of the same shape and
dtype; the figure is milliseconds per training iteration (one ``batch x hidden`` mask), the best of
``repeats`` runs, timed interleaved, with the device synchronised. Masks drawn for
several iterations at once (``iters_per_draw``, the old training loop drew up to 64 MiB at once)
amortise per-call costs.

Run ``python -m xpml.cli._bench_masks --help``; the benchmark folds :func:`dropout_mask_cost` in.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .. import backend
from ._bench_compile import limit_cpu_threads

__all__ = ["dropout_mask_cost", "main"]


def _before(host: np.random.Generator, bk: backend.Backend, shape, p: float, dt):
    """The host-drawn masks the generator used to make (PCG64, float64, cast, copied once)."""
    draws = (host.random(size=shape) < p).astype(np.float64)
    return bk.asarray(draws.astype(np.float32 if dt == bk.xp.float32 else np.float64), dtype=dt)


def _best_ms(draws, iterations: int, repeats: int) -> list[float]:
    """The best time of each draw in milliseconds per iteration, timed interleaved: a load that
    comes and goes on a shared machine then weighs on every draw alike."""
    for _ in range(3):  # warm-up: allocations, and JAX's compilations (eager ops compile per shape)
        for draw in draws:
            backend.synchronize(draw())
    best = [float("inf")] * len(draws)
    for _ in range(repeats):
        for i, draw in enumerate(draws):
            t0 = time.perf_counter()
            backend.synchronize(draw())
            best[i] = min(best[i], time.perf_counter() - t0)
    return [1e3 * b / iterations for b in best]


def dropout_mask_cost(bk, /, *, batch: int = 200, hidden: int = 500, p: float = 0.5, iters_per_draw: int = 1,
                      repeats: int = 5, dtype: str = "float32") -> dict:
    """Milliseconds per iteration to draw a ``batch x hidden`` keep-mask with probability ``p``.

    Returns
    -------
    dict
        ``backend``, ``device``, ``p``, ``iters_per_draw``, ``before_ms``, ``after_ms`` and
        ``ratio`` (after / before: at most 1 means the cost did not rise).
    """
    bk = backend.as_backend(bk)
    dt = backend.float_dtype(bk.xp, bk.device, dtype)
    shape = (iters_per_draw, batch, hidden)
    host = np.random.Generator(np.random.PCG64(0))
    rng = backend.Generator(0, xp=bk)
    draws = [lambda: _before(host, bk, shape, p, dt), lambda: rng.dropout_mask(shape, keep=p, dtype=dt)]
    before, after = _best_ms(draws, iters_per_draw, repeats)
    return {"backend": bk.label, "device": bk.device_name, "p": p, "iters_per_draw": iters_per_draw,
            "before_ms": before, "after_ms": after, "ratio": after / before}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xpml.cli._bench_masks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="numpy", help="comma-separated backends (default: numpy)")
    parser.add_argument("--p", default="0.5,0.75,0.8,0.9,0.25",
                        help="comma-separated keep probabilities (default: %(default)s)")
    parser.add_argument("--iters", default="1,20", help="comma-separated iterations per draw (default: 1,20)")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="CPU threads of torch and of NumPy's BLAS (default: theirs)")
    args = parser.parse_args(argv)
    limit_cpu_threads(args.threads)
    print(f"{'backend':<14} {'p':>5} {'iters/draw':>10} {'before ms':>10} {'after ms':>10} {'after/before':>12}")
    for name in args.backends.split(","):
        for p in (float(v) for v in args.p.split(",")):
            for iters in (int(v) for v in args.iters.split(",")):
                r = dropout_mask_cost(name, batch=args.batch, hidden=args.hidden, p=p, iters_per_draw=iters,
                                      repeats=args.repeats)
                print(f"{r['backend']:<14} {p:>5.3g} {iters:>10} {r['before_ms']:>10.3f} {r['after_ms']:>10.3f} "
                      f"{r['ratio']:>12.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
