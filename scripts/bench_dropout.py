"""Dropout's cost per training iteration: xpml's device masks against torch.nn.functional.dropout.

Run it with the interpreter of the checkout to measure (its ``xpml`` is the one imported), e.g.
``python scripts/bench_dropout.py`` here and ``/path/to/old/.venv/bin/python scripts/bench_dropout.py``
for an older checkout, on the same machine, one after the other or interleaved. Each row is the
best of the repeats, in microseconds per iteration (one ``batch x hidden`` mask, or the layer's
forward pass: mask and product), with the device synchronised; ``it/draw`` > 1 draws the masks
of that many iterations in one call (a leading axis).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xpml import backend
from xpml.nets.layers import dropout_forward


def _best_us(fn, iterations: int, repeats: int) -> float:
    for _ in range(3):
        backend.synchronize(fn())
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.synchronize(fn())
        best = min(best, time.perf_counter() - t0)
    return best / iterations * 1e6


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,torch:cpu,jax:cpu")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--keep", default="0.5,0.8")
    parser.add_argument("--iters-per-draw", default="1,20")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    keeps = [float(k) for k in args.keep.split(",")]
    per_draw = [int(i) for i in args.iters_per_draw.split(",")]
    shape = (args.batch, args.hidden)
    print(f"dropout, {args.batch} x {args.hidden} float32, best of {args.repeats}, us per iteration")
    for name in args.backends.split(","):
        bk = backend.as_backend(name)
        x = bk.asarray(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
        for p in keeps:
            for iters in per_draw:
                rng = backend.Generator(0, xp=bk)
                draw = lambda rng=rng, n=iters, p=p: rng.dropout_mask((n, *shape), keep=p, dtype="float32")  # noqa: E731
                us = _best_us(draw, iters, args.repeats)
                print(f"{bk.label:>12} p={p:<4} mask {iters:>3} it/draw {us:9.1f}")
            rng = backend.Generator(0, xp=bk)
            param = {"mode": "train", "p": p, "generator": rng}
            us = _best_us(lambda x=x, param=param: dropout_forward(x, param)[0], 1, args.repeats)
            print(f"{bk.label:>12} p={p:<4} dropout_forward (mask and product) {us:9.1f}")
            if bk.name == "torch":
                import torch
                torch.manual_seed(0)
                us = _best_us(lambda x=x, p=p: torch.nn.functional.dropout(x, p=1 - p, training=True), 1, args.repeats)
                print(f"{bk.label:>12} p={p:<4} torch.nn.functional.dropout {us:9.1f}")


if __name__ == "__main__":
    main()
