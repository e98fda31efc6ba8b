"""Prototype: one two-layer training step, eager against compiled (``jax.jit``, ``torch.compile``).

The step (forward, softmax loss, backward, SGD update) is written once against the array API,
functionally (new arrays, no in-place updates), so a compiler can trace it. For each backend the
eager step and, where the backend has a compiler, the compiled step run from the same weights on
the same minibatches; the result is the time per step (best of ``repeats``, device synchronised),
the first call's time (the compilation), and the largest relative difference between the
weights the two reach. It measured whether a compiler behind the shim pays off: ``jax.jit`` did
and the Solver now compiles its step on JAX, so the section also times ``Solver.train()`` with
``compile=True`` (the default) against ``compile=False`` there; ``torch.compile`` did not.

``xpml bench --only compile`` runs it on ``--backends`` (``--backends numpy,torch:cpu,jax:cpu``
for both compilers; ``--gpu-backends`` on a GPU).
"""

from __future__ import annotations

import time

import numpy as np

from ... import backend
from .common import Bench, Place, _finite, fmt_s

__all__ = ["compiled_step_cost", "run", "solver_compile_cost", "train_step"]


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


def _compiler(bk):
    """The backend's compiler of a function of arrays, or None."""
    if bk.name == "jax":
        import jax

        return jax.jit
    if bk.name == "torch":
        import torch

        return torch.compile
    return None


def _run(step, params, batches, repeats: int, clock):
    first = clock()
    params, loss = step(params, *batches[0])
    backend.synchronize(loss)
    first = clock() - first
    best = float("inf")
    for i in range(repeats):
        t0 = clock()
        params, loss = step(params, *batches[1 + i % (len(batches) - 1)])
        backend.synchronize(loss)
        best = min(best, clock() - t0)
    return params, first, best


def compiled_step_cost(bk, /, *, batch: int = 200, dim: int = 3072, hidden: int = 100, classes: int = 10,
                       repeats: int = 20, dtype: str = "float32", clock=time.perf_counter) -> dict:
    """Time one training step eager and compiled on ``bk``; check both reach the same weights.

    Returns
    -------
    dict
        ``backend``, ``eager_s``, ``compiled_s`` and ``compile_s`` (None without a compiler),
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

    eager_params, _, eager_s = _run(eager, params, batches, repeats, clock)
    out = {"backend": bk.label, "eager_s": eager_s, "compiled_s": None, "compile_s": None, "max_rel_diff": None}
    compiler = _compiler(bk)
    if compiler is not None:
        compiled_params, first, compiled_s = _run(compiler(eager), params, batches, repeats, clock)
        diffs = [np.max(np.abs(backend.to_numpy(a) - backend.to_numpy(b))) / np.max(np.abs(backend.to_numpy(a)))
                 for a, b in zip(eager_params, compiled_params, strict=True)]
        out.update(compiled_s=compiled_s, compile_s=first, max_rel_diff=float(max(diffs)))
    return out


def solver_compile_cost(bk, /, *, model: str = "fc", n: int = 1000, dim: int = 3072, classes: int = 10,
                        batch: int = 200, epochs: int = 2, repeats: int = 4, clock=time.perf_counter) -> dict:
    """Time ``Solver.train()`` with ``compile=True`` and ``compile=False`` on ``bk``.

    ``model`` is ``"fc"`` (FullyConnectedNet [100, 100], batch norm, dropout 0.9, Adam) or
    ``"two_layer"`` (TwoLayerNet with 100 hidden units, SGD with momentum). Each solver trains
    ``1 + repeats`` times on the same data; the first ``train()`` includes the compilations
    (JAX compiles even each eager operation at its first use, so the eager solver runs first
    and warms those for both), the others run on compiled code (the same shapes). Returns milliseconds per step
    of the first and of the best later ``train()``, for both settings, and the largest
    difference between the weights the two settings reach.
    """
    from ...nets import FullyConnectedNet, Solver, TwoLayerNet

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
            t0 = clock()
            solver.train()
            backend.synchronize(bk)
            times.append(1e3 * (clock() - t0) / solver.num_iterations)
        label = "compiled" if compile else "eager"
        out[f"{label}_first_ms"], out[f"{label}_ms"] = times[0], min(times[1:])
        weights[label] = backend.to_numpy(net.params["W1"])
    out["max_abs_diff"] = float(np.max(np.abs(weights["compiled"] - weights["eager"])))
    return out


def run(bench: Bench, place: Place) -> None:
    """The ``compile`` section: the step eager and compiled on every backend of ``place``."""
    batch, dim, hidden = (200, 3072, 100) if not bench.quick else (50, 256, 32)
    steps = 20 if not bench.quick else 3
    bench.say(f"\n### A two-layer step on the {place.title}, eager against compiled (jax.jit, torch.compile): "
              f"batch {batch}, D = {dim}, H = {hidden}, best of {steps} steps")
    bench.header()
    for bk in place.backends:
        name = f"train_step ({bk.label})"
        try:
            r = compiled_step_cost(bk, batch=batch, dim=dim, hidden=hidden, repeats=steps, clock=bench.clock)
        except Exception as exc:  # a compiler missing its toolchain: say so, and go on with the others
            bench.skip("compile", name, name, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            continue
        bench.row(f"{name} eager", f"{fmt_s(r['eager_s'])}/step")
        if r["compiled_s"] is not None:
            bench.row(f"{name} compiled", f"{fmt_s(r['compiled_s'])}/step", f"first call {fmt_s(r['compile_s'])}",
                      f"compiled/eager {r['compiled_s'] / r['eager_s']:.2f}x",
                      f"weights differ by {r['max_rel_diff']:.1e} (relative)")
        else:
            bench.say(f"{name}: no compiler for this backend (eager only)")
        bench.records.append(_finite({"section": "compile", "case": name, "tool": name, "status": "ok", "unit": "step",
                                      "batch": batch, "dim": dim, "hidden": hidden, **r, "env": bench.env()}))
        if r["compiled_s"] is not None and bk.name == "jax":
            _solver_rows(bench, bk, quick=bench.quick)


def _solver_rows(bench: Bench, bk, *, quick: bool) -> None:
    """``Solver.train()`` with its compiled step (the library's default on JAX) and without."""
    n, dim, batch, repeats = (1000, 3072, 200, max(bench.repeats, 2)) if not quick else (100, 64, 20, 1)
    for model in ("fc", "two_layer"):
        r = solver_compile_cost(bk, model=model, n=n, dim=dim, batch=batch, epochs=2, repeats=repeats,
                                clock=bench.clock)
        name = f"Solver.train {model} ({bk.label})"
        bench.row(f"{name} compile=True", f"{fmt_s(r['compiled_ms'] / 1e3)}/step",
                  f"compile=False {fmt_s(r['eager_ms'] / 1e3)}/step",
                  f"compiled/eager {r['compiled_ms'] / r['eager_ms']:.2f}x",
                  f"first train() {fmt_s(r['compiled_first_ms'] / 1e3)}/step; "
                  f"weights differ by {r['max_abs_diff']:.1e}")
        bench.records.append(_finite({"section": "compile", "case": name, "tool": name, "status": "ok", "unit": "step",
                                      "n": n, "dim": dim, "batch": batch, **r, "env": bench.env()}))
