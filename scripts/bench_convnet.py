"""Time and memory of one training iteration of a small ConvNet: xpml against PyTorch's own net and the GEMM floor.

The net is ``ARCH`` (``--arch``) on CIFAR-sized images, batch ``--batch``, Adam. Each candidate runs in a
fresh interpreter, one after the other in the same run, so that its peak memory is its own:

- ``xpml-torch``: :class:`xpml.nets.ConvNet` on torch:cpu (torch's native convolution and its backward),
  trained by :class:`xpml.nets.Solver`;
- ``torch-nn``: the same layers as ``torch.nn`` modules (``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Linear``),
  autograd and ``torch.optim.Adam``;
- ``xpml-numpy``: the ConvNet on NumPy (im2col and column products);
- ``gemm-floor``: the float32 NumPy matrix products the NumPy path cannot avoid, timed alone: per CONV
  layer ``W (F, C*FH*FW) @ cols``, ``dout @ cols.T`` and (not for the first layer) ``W.T @ dout``; per
  FC layer ``x @ W``, ``x.T @ dout`` and ``dout @ W.T``.

Reported per candidate: the median milliseconds per iteration over ``--iters`` iterations (after
``--warmup``), the growth of the process's peak resident memory (``ru_maxrss``) over the timed
iterations' start, and for NumPy the ``tracemalloc`` peak of one iteration; then the ratios of this
run. Usage::

    python scripts/bench_convnet.py                       # all four, JSON lines, then the ratios
    python scripts/bench_convnet.py --threads 1 --iters 5

Standalone: it needs torch and xpml, nothing of the benchmark suite. An edge of the program: it
uses NumPy and torch directly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ARCH = "CONV3-32 CONV3-32 POOL2 CONV3-64 CONV3-64 POOL2 FC-256 FC-10"
CANDIDATES = ("xpml-torch", "torch-nn", "xpml-numpy", "gemm-floor")


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def _data(args, n):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, n)


def _xpml(args, backend_name: str) -> dict:
    from xpml import backend, nets

    bk = backend.get_backend(backend_name)
    steps = args.warmup + args.iters
    X, y = _data(args, args.batch * steps)
    data = {"X_train": bk.asarray(X), "y_train": bk.asarray(y), "X_val": bk.asarray(X[:2]), "y_val": bk.asarray(y[:2])}
    model = nets.ConvNet(args.arch, (3, 32, 32), dtype="float32", seed=0, init="he", xp=bk)
    stamps = []
    # An epoch is `steps` iterations, so the one accuracy check falls after the last stamp.
    solver = nets.Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                         batch_size=args.batch, num_iters=steps, train_accuracy=None, check_ends=False,
                         verbose=False, seed=0, callback=lambda it, loss: stamps.append(time.perf_counter()))
    rss0 = _maxrss_bytes()
    start = time.perf_counter()
    solver.train()
    times = [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)][args.warmup:]
    out = {"ms_per_iter": 1e3 * statistics.median(times), "ms_min": 1e3 * min(times),
           "maxrss_growth_MB": (_maxrss_bytes() - rss0) / 2**20, "maxrss_MB": _maxrss_bytes() / 2**20}
    if backend_name == "numpy":
        import tracemalloc

        Xb, yb = data["X_train"][: args.batch], data["y_train"][: args.batch]
        tracemalloc.start()
        model.loss(Xb, yb)
        out["tracemalloc_peak_MB"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return out


def _torch_layers(arch: str):
    """``torch.nn`` modules for an architecture of CONV<F>-<K>, POOL<F> and FC-<N> tokens."""
    import torch.nn as nn

    layers, channels, size, flat = [], 3, 32, None
    tokens = arch.split()
    for i, tok in enumerate(tokens):
        if tok.startswith("CONV"):
            f, k = (int(v) for v in tok[4:].split("-"))
            layers += [nn.Conv2d(channels, k, f, padding=(f - 1) // 2), nn.ReLU()]
            channels = k
        elif tok.startswith("POOL"):
            f = int(tok[4:])
            layers.append(nn.MaxPool2d(f))
            size //= f
        elif tok.startswith("FC-"):
            n = int(tok[3:])
            if flat is None:
                layers.append(nn.Flatten())
                flat = channels * size * size
            layers.append(nn.Linear(flat, n))
            if i < len(tokens) - 1:
                layers.append(nn.ReLU())
            flat = n
        else:
            raise SystemExit(f"error: bench_convnet understands CONV<F>-<K>, POOL<F> and FC-<N>, not {tok!r}")
    return nn.Sequential(*layers)


def _torch_nn(args) -> dict:
    import torch

    torch.manual_seed(0)
    net = _torch_layers(args.arch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = _data(args, args.batch * 4)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    times = []
    rss0 = _maxrss_bytes()
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        idx = torch.randint(0, X.shape[0], (args.batch,), generator=g)  # minibatch drawn as the Solver does
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(X[idx]), y[idx])
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return {"ms_per_iter": 1e3 * statistics.median(times), "ms_min": 1e3 * min(times),
            "maxrss_growth_MB": (_maxrss_bytes() - rss0) / 2**20, "maxrss_MB": _maxrss_bytes() / 2**20}


def _gemm_shapes(arch: str, batch: int) -> list:
    """(M, K, N) of every matrix product a training step of ``arch`` needs in the im2col form."""
    shapes, channels, size, flat = [], 3, 32, None
    first = True
    for tok in arch.split():
        if tok.startswith("CONV"):
            f, k = (int(v) for v in tok[4:].split("-"))
            ck, cols = channels * f * f, batch * size * size
            shapes += [(k, ck, cols), (k, cols, ck)]  # forward W @ cols; dW = dout @ cols.T
            if not first:
                shapes.append((ck, k, cols))  # dcols = W.T @ dout
            channels, first = k, False
        elif tok.startswith("POOL"):
            size //= int(tok[4:])
        else:
            n = int(tok[3:])
            d = channels * size * size if flat is None else flat
            shapes += [(batch, d, n), (d, batch, n), (batch, n, d)]  # x @ W; x.T @ dout; dout @ W.T
            flat = n
    return shapes


def _gemm_floor(args) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    shapes = _gemm_shapes(args.arch, args.batch)
    mats = [(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32))
            for m, k, n in shapes]
    times = []
    rss0 = _maxrss_bytes()
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        for a, b in mats:
            a @ b
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    flops = sum(2 * m * k * n for m, k, n in shapes)
    ms = 1e3 * statistics.median(times)
    return {"ms_per_iter": ms, "ms_min": 1e3 * min(times), "gflop_per_iter": flops / 1e9,
            "gflops": flops / 1e6 / ms, "maxrss_growth_MB": (_maxrss_bytes() - rss0) / 2**20,
            "maxrss_MB": _maxrss_bytes() / 2**20}


def run_one(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    fn = {"xpml-torch": lambda: _xpml(args, "torch:cpu"), "torch-nn": lambda: _torch_nn(args),
          "xpml-numpy": lambda: _xpml(args, "numpy"), "gemm-floor": lambda: _gemm_floor(args)}[args.one]
    return {"candidate": args.one, **{k: round(v, 2) if isinstance(v, float) else v for k, v in fn().items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_convnet.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default=ARCH, help=f"CONV<F>-<K>, POOL<F> and FC-<N> tokens (default {ARCH!r})")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=5, help="timed iterations (default 5)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS and torch threads (default all)")
    p.add_argument("--only", nargs="*", choices=CANDIDATES, help="candidates to run (default all)")
    p.add_argument("--one", choices=CANDIDATES, help=argparse.SUPPRESS)  # the child's candidate
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)), flush=True)
        return 0
    env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                           "MKL_NUM_THREADS")}}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {args.arch}, batch {args.batch}, Adam; {args.threads} threads on {platform.processor() or 'cpu'} "
          f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); {when}", flush=True)
    results = {}
    for name in args.only or CANDIDATES:
        cmd = [sys.executable, __file__, "--one", name, "--arch", args.arch, "--batch", str(args.batch),
               "--iters", str(args.iters), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"error: {name} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(results[name]), flush=True)
    ms = {k: v["ms_per_iter"] for k, v in results.items()}
    ratios = {}
    if "xpml-torch" in ms and "torch-nn" in ms:
        ratios["xpml-torch / torch-nn"] = round(ms["xpml-torch"] / ms["torch-nn"], 2)
    if "xpml-numpy" in ms and "torch-nn" in ms:
        ratios["xpml-numpy / torch-nn"] = round(ms["xpml-numpy"] / ms["torch-nn"], 2)
    if "xpml-numpy" in ms and "gemm-floor" in ms:
        ratios["xpml-numpy / gemm-floor"] = round(ms["xpml-numpy"] / ms["gemm-floor"], 2)
    print(json.dumps({"ratios (same run, median ms per iteration)": ratios}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
