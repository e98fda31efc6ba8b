"""Prototype: one two-layer training step, eager against compiled (``jax.jit``, ``torch.compile``).

The step (forward, softmax loss, backward, SGD update) is written once against the array API,
functionally (new arrays, no in-place updates), so a compiler can trace it. For each backend the
eager step and, where the backend has a compiler, the compiled step run from the same weights on
the same minibatches; the result is the time per step (best of ``repeats``, device synchronised),
the first call's time (the compilation), and the largest relative difference between the
weights the two reach. Not part of the library: it measures whether adopting a compiler behind
the shim would pay off.

Run ``python -m xpml.cli._bench_compile --help``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .. import backend

__all__ = ["compiled_step_cost", "limit_cpu_threads", "main", "solver_compile_cost", "train_step"]


def train_step(xp, device, params, X, y, lr: float, reg: float):
    """One SGD step of the two-layer net on ``(X, y)``; returns ``(new params, loss)``.

    ``params`` is ``(W1 (D, H), b1 (H,), W2 (H, C), b2 (C,))``; ``y`` holds int labels.
    """
    W1, b1, W2, b2 = params
    N, C = X.shape[0], W2.shape[1]
    h = xp.maximum(X @ W1 + b1, 0.0)
    s = h @ W2 + b2
    s = s - xp.max(s, axis=1, keepdims=True)
    e = xp.exp(s)
    z = xp.sum(e, axis=1, keepdims=True)
    onehot = xp.astype(xp.reshape(y, (N, 1)) == xp.reshape(xp.arange(C, device=device), (1, C)), X.dtype)
    loss = xp.sum(xp.log(z)) / N - xp.sum(s * onehot) / N + reg * (xp.sum(W1 * W1) + xp.sum(W2 * W2))
    ds = (e / z - onehot) / N
    dW2 = h.T @ ds + (2 * reg) * W2
    dh = xp.where(h > 0.0, ds @ W2.T, 0.0)
    dW1 = X.T @ dh + (2 * reg) * W1
    grads = (dW1, xp.sum(dh, axis=0), dW2, xp.sum(ds, axis=0))
    return tuple(p - lr * g for p, g in zip(params, grads, strict=True)), loss


def limit_cpu_threads(n: int | None) -> None:
    """Limit torch's and the BLAS's CPU threads to ``n`` (None: leave them): on a busy machine
    their spinning OpenMP threads make timings meaningless."""
    if not n:
        return
    import threadpoolctl

    threadpoolctl.threadpool_limits(n)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


def _compiler(bk):
    """The backend's compiler of a function of arrays, or None."""
    if bk.name == "jax":
        import jax

        return jax.jit
    if bk.name == "torch":
        import torch

        return torch.compile
    return None


def _run(step, params, batches, repeats: int):
    first = time.perf_counter()
    params, loss = step(params, *batches[0])
    backend.synchronize(loss)
    first = time.perf_counter() - first
    best = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        params, loss = step(params, *batches[1 + i % (len(batches) - 1)])
        backend.synchronize(loss)
        best = min(best, time.perf_counter() - t0)
    return params, first, best


def compiled_step_cost(bk, /, *, batch: int = 200, dim: int = 3072, hidden: int = 100, classes: int = 10,
                       repeats: int = 20, dtype: str = "float32") -> dict:
    """Time one training step eager and compiled on ``bk``; check both reach the same weights.

    Returns
    -------
    dict
        ``backend``, ``eager_ms``, ``compiled_ms`` and ``compile_s`` (None without a compiler),
        and ``max_rel_diff`` between the weights after the same ``repeats + 1`` steps.
    """
    bk = backend.as_backend(bk)
    xp = bk.xp
    dt = backend.float_dtype(xp, bk.device, dtype)
    rng = backend.Generator(0, xp=bk)
    params = (rng.normal((dim, hidden), scale=1e-2, dtype=dt), xp.zeros(hidden, dtype=dt, device=bk.device),
              rng.normal((hidden, classes), scale=1e-2, dtype=dt), xp.zeros(classes, dtype=dt, device=bk.device))
    batches = [(rng.normal((batch, dim), dtype=dt), rng.integers(0, classes, (batch,))) for _ in range(4)]

    def eager(p, X, y):
        return train_step(xp, bk.device, p, X, y, 1e-3, 1e-4)

    eager_params, _, eager_s = _run(eager, params, batches, repeats)
    out = {"backend": bk.label, "eager_ms": 1e3 * eager_s, "compiled_ms": None, "compile_s": None,
           "max_rel_diff": None}
    compiler = _compiler(bk)
    if compiler is not None:
        compiled_params, first, compiled_s = _run(compiler(eager), params, batches, repeats)
        diffs = [np.max(np.abs(backend.to_numpy(a) - backend.to_numpy(b))) / np.max(np.abs(backend.to_numpy(a)))
                 for a, b in zip(eager_params, compiled_params, strict=True)]
        out.update(compiled_ms=1e3 * compiled_s, compile_s=first, max_rel_diff=float(max(diffs)))
    return out


def solver_compile_cost(bk, /, *, model: str = "fc", n: int = 1000, dim: int = 3072, classes: int = 10,
                        batch: int = 200, epochs: int = 2, repeats: int = 4) -> dict:
    """Time ``Solver.train()`` with ``compile=True`` and ``compile=False`` on ``bk``.

    ``model`` is ``"fc"`` (FullyConnectedNet [100, 100], batch norm, dropout 0.9, Adam) or
    ``"two_layer"`` (TwoLayerNet with 100 hidden units, SGD with momentum). Each solver trains
    ``1 + repeats`` times on the same data; the first ``train()`` includes the compilations
    (JAX compiles even each eager operation at its first use, so the eager solver runs first
    and warms those for both), the others run on compiled code (the same shapes). Returns milliseconds per step
    of the first and of the best later ``train()``, for both settings, and the largest
    difference between the weights the two settings reach.
    """
    from ..nets import FullyConnectedNet, Solver, TwoLayerNet

    bk = backend.as_backend(bk)
    rng = backend.Generator(0, xp=bk)
    data = {"X_train": rng.normal((n, dim), dtype="float32"), "y_train": rng.integers(0, classes, (n,))}
    out = {"backend": bk.label, "model": model}
    weights = {}
    for compile in (False, True):
        if model == "fc":
            net = FullyConnectedNet([100, 100], input_dim=dim, num_classes=classes, normalization="batchnorm",
                                    dropout_keep_ratio=0.9, weight_scale=1e-2, seed=0, xp=bk)
            kw = {"update_rule": "adam", "optim_config": {"learning_rate": 1e-3}}
        else:
            net = TwoLayerNet(dim, 100, classes, std=1e-2, seed=0, xp=bk)
            kw = {"update_rule": "sgd_momentum", "optim_config": {"learning_rate": 1e-3}}
        solver = Solver(net, data, batch_size=batch, num_epochs=epochs, verbose=False, check_ends=False,
                        num_train_samples=batch, restore_best=False, compile=compile, **kw)
        times = []
        for _ in range(1 + repeats):
            t0 = time.perf_counter()
            solver.train()
            backend.synchronize(bk)
            times.append(1e3 * (time.perf_counter() - t0) / solver.num_iterations)
        label = "compiled" if compile else "eager"
        out[f"{label}_first_ms"], out[f"{label}_ms"] = times[0], min(times[1:])
        weights[label] = backend.to_numpy(net.params["W1"])
    out["max_abs_diff"] = float(np.max(np.abs(weights["compiled"] - weights["eager"])))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xpml.cli._bench_compile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="numpy,torch:cpu,jax:cpu")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--dim", type=int, default=3072)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, help="CPU threads of torch and of NumPy's BLAS (default: theirs)")
    parser.add_argument("--solver", action="store_true",
                        help="time Solver.train() with compile on and off instead (fc and two_layer models)")
    parser.add_argument("--n", type=int, default=1000, help="training examples, with --solver")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per train(), with --solver")
    parser.add_argument("--train-repeats", type=int, default=4, help="timed train() calls after the first")
    args = parser.parse_args(argv)
    limit_cpu_threads(args.threads)
    if args.solver:
        print(f"{'backend':<10} {'model':<10} {'eager ms':>9} {'compiled ms':>12} {'ratio':>6} "
              f"{'1st eager':>10} {'1st compiled':>13} {'max abs diff':>13}")
        for name in args.backends.split(","):
            for model in ("fc", "two_layer"):
                r = solver_compile_cost(name, model=model, n=args.n, dim=args.dim, batch=args.batch,
                                        epochs=args.epochs, repeats=args.train_repeats)
                print(f"{r['backend']:<10} {model:<10} {r['eager_ms']:>9.2f} {r['compiled_ms']:>12.2f} "
                      f"{r['eager_ms'] / r['compiled_ms']:>6.2f} {r['eager_first_ms']:>10.2f} "
                      f"{r['compiled_first_ms']:>13.2f} {r['max_abs_diff']:>13.1e}", flush=True)
        return 0
    print(f"{'backend':<12} {'eager ms':>9} {'compiled ms':>12} {'compile s':>10} {'max rel diff':>13}")
    for name in args.backends.split(","):
        r = compiled_step_cost(name, batch=args.batch, dim=args.dim, hidden=args.hidden, repeats=args.repeats)

        def fmt(v, spec):
            return "-" if v is None else format(v, spec)

        print(f"{r['backend']:<12} {r['eager_ms']:>9.2f} {fmt(r['compiled_ms'], '>12.2f')} "
              f"{fmt(r['compile_s'], '>10.1f')} {fmt(r['max_rel_diff'], '>13.1e')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
