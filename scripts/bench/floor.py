"""The floor: the float32 matrix-product rate this machine reaches, on the workloads' shapes.

The *floor* of a workload is the FLOPs of its matrix products divided by the best rate measured
here, so every figure says how close to the hardware it runs. NumPy's BLAS and PyTorch's are both
measured (on the GPU: CuPy's and PyTorch's CUDA products, after a synchronisation).
"""

from __future__ import annotations

import time

import numpy as np

from .common import Bench, Place, _sync, fmt_s, optional

__all__ = ["knn_flops", "net_flops", "run"]


def net_flops(B: int, dims: list[int]) -> int:
    """FLOPs of the matrix products of one training step of an affine stack ``dims`` (D, H..., C).

    Forward ``a W`` per layer, backward ``a^T d`` per layer and ``d W^T`` for every layer but
    the first (the data needs no gradient): 2 B m n each.
    """
    fwd = sum(2 * B * m * n for m, n in zip(dims[:-1], dims[1:], strict=True))
    back_dx = sum(2 * B * m * n for m, n in zip(dims[1:-1], dims[2:], strict=True))
    return 2 * fwd + back_dx


def knn_flops(num_queries: int, num_train: int, dim: int) -> int:
    """FLOPs of the query-by-training products of L2 kNN (the norms are O(N D), negligible)."""
    return 2 * num_queries * num_train * dim


def _contenders(place: Place, A: np.ndarray, B: np.ndarray):
    torch = optional("torch")
    if not place.gpu:
        yield "numpy", lambda: A @ B
        if not isinstance(torch, Exception):
            At, Bt = torch.from_numpy(A), torch.from_numpy(B)
            yield "torch", lambda: At @ Bt
        return
    for bk in place.backends:
        Ag, Bg = bk.asarray(A), bk.asarray(B)
        yield bk.label, lambda Ag=Ag, Bg=Bg: Ag @ Bg
    if not isinstance(torch, Exception) and torch.cuda.is_available():
        At, Bt = torch.from_numpy(A).cuda(), torch.from_numpy(B).cuda()
        yield "torch (cuda)", lambda: At @ Bt


def run(bench: Bench, place: Place) -> float:
    """Measure the float32 GEMM rates; return the best (GFLOP/s), the rate every floor divides by."""
    D = 3072 if not bench.quick else 256
    rng = np.random.default_rng(1)
    big = (1024, D, 16384) if not bench.quick else (256, D, 1024)
    shapes = {
        "large (kNN block)": big,
        "net forward X W1": (200, D, 100),
        "net backward X^T dH": (D, 200, 100),
    }
    bench.say(f"\n### The floor on the {place.title}: float32 matrix products, best of several")
    bench.header()
    best = 0.0
    for label, (m, k, n) in shapes.items():
        A = rng.standard_normal((m, k), dtype=np.float32)
        B = rng.standard_normal((k, n), dtype=np.float32)
        flops = 2 * m * k * n
        reps = max(3, min(200, int(2e10 // flops)))
        for lib, f in _contenders(place, A, B):
            _sync(f())
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                _sync(f())
                ts.append(time.perf_counter() - t0)
            rate = flops / min(ts) / 1e9
            if label.startswith("large"):
                best = max(best, rate)
            name = f"{lib} sgemm {m}x{k}x{n}"
            bench.row(name, fmt_s(min(ts)), "", f"{rate:.0f} GFLOP/s", label)
            bench.records.append({"section": "floor", "case": label, "tool": name, "library": lib, "status": "ok",
                                  "best_s": min(ts), "gflops": rate, "shape": [m, k, n], "env": bench.env()})
    bench.say(f"best float32 matrix-product rate on the {place.title} (large GEMM): {best:.0f} GFLOP/s")
    return best or None
