"""The shim's cost: xpml's NumPy path against the same code on the plain ``numpy`` module.

Three contenders per case, on the same float32 data, initial weights and minibatch indices:

- xpml as users call it (the public losses and ``train`` methods);
- the same calls inside :func:`raw_numpy`, where xpml's namespace lookups return the plain
  ``numpy`` module instead of array-api-compat's wrapper namespace, so exactly the same
  operations run without the shim. xpml's time over this is the shim's cost (target <= 1.03x);
- course-style NumPy: the formulas as a NumPy user writes them (fancy indexing for the
  correct-class scores, in-place updates), for information.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from xpml import backend

from .common import Bench, Place, Tool, host, paired_ratio

__all__ = ["raw_numpy", "run"]

TARGET = 1.03


# ---- course-style NumPy --------------------------------------------------------------------------


def svm_loss(W, X, y, reg):
    N = X.shape[0]
    rows = np.arange(N)
    scores = X @ W
    margins = scores - scores[rows, y][:, None] + 1.0
    np.maximum(margins, 0.0, out=margins)
    margins[rows, y] = 0.0
    loss = margins.sum() / N + reg * np.sum(W * W)
    active = (margins > 0).astype(W.dtype)
    active[rows, y] = -active.sum(axis=1)
    dW = X.T @ active / N + 2 * reg * W
    return loss, dW


def softmax_loss(W, X, y, reg):
    N = X.shape[0]
    rows = np.arange(N)
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.log(probs[rows, y]).sum() / N + reg * np.sum(W * W)
    probs[rows, y] -= 1.0
    dW = X.T @ probs / N + 2 * reg * W
    return loss, dW


def net_loss(p, X, y, reg):
    N = X.shape[0]
    rows = np.arange(N)
    h = X @ p["W1"]
    h += p["b1"]
    np.maximum(h, 0.0, out=h)
    s = h @ p["W2"]
    s += p["b2"]
    s -= s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    loss = -np.log(s[rows, y]).sum() / N + reg * (np.sum(p["W1"] * p["W1"]) + np.sum(p["W2"] * p["W2"]))
    s[rows, y] -= 1.0
    s /= N
    dW2 = h.T @ s + 2 * reg * p["W2"]
    db2 = s.sum(axis=0)
    dh = s @ p["W2"].T
    dh *= h > 0
    dW1 = X.T @ dh + 2 * reg * p["W1"]
    db1 = dh.sum(axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def linear_train(loss_fn, X, y, W0, idx, lr, reg):
    W = W0.copy()
    losses = []
    for it in range(idx.shape[0]):
        rows = idx[it]
        loss, dW = loss_fn(W, X[rows], y[rows], reg)
        W -= lr * dW
        losses.append(loss)
    return np.array(losses).tolist(), W


def net_train(params, X, y, Xv, yv, idx, lr, decay, reg):
    p = {k: v.copy() for k, v in params.items()}
    per_epoch = max(X.shape[0] // idx.shape[1], 1)
    losses, val_acc = [], []
    for it in range(idx.shape[0]):
        rows = idx[it]
        Xb, yb = X[rows], y[rows]
        loss, grads = net_loss(p, Xb, yb, reg)
        for k in p:
            p[k] -= lr * grads[k]
        losses.append(loss)
        if (it + 1) % per_epoch == 0:
            for A, b in ((Xb, yb), (Xv, yv)):
                h = np.maximum(A @ p["W1"] + p["b1"], 0.0)
                val_acc.append(np.mean(np.argmax(h @ p["W2"] + p["b2"], axis=1) == b))
            lr *= decay
    return np.array(losses).tolist(), p


# ---- xpml without the shim -----------------------------------------------------------------------


@contextlib.contextmanager
def raw_numpy(*models):
    """Within the block, xpml's namespace lookups (and the given models' backends) give plain numpy."""
    saved = backend.get_namespace, backend.namespace_and_device, backend.check_on_backend
    saved_models = [m.backend for m in models]
    backend.get_namespace = lambda *arrays: np
    backend.namespace_and_device = lambda *arrays: (np, "cpu")
    # Plain numpy has no backend to check against; the check runs once per call.
    backend.check_on_backend = lambda *args, **kwargs: None
    for m in models:
        m.backend = dataclasses.replace(m.backend, xp=np)
    try:
        yield
    finally:
        backend.get_namespace, backend.namespace_and_device, backend.check_on_backend = saved
        for m, b in zip(models, saved_models, strict=True):
            m.backend = b


def cases(bench: Bench):
    """(name, xpml, xpml without the shim, course-style NumPy, calls per timing) for each comparison.

    The kernels are the public losses (``svm_loss_vectorized``, ``TwoLayerNet.loss``), with their
    input checks; the loops are the public ``train`` methods at the suite's iteration counts.
    """
    from xpml.classifiers import LinearSVM, Softmax, softmax_loss_vectorized, svm_loss_vectorized
    from xpml.nets import TwoLayerNet

    from .nets import twolayer_case

    d = bench.data
    quick = bench.quick
    B, H, C = (200, 100, 10) if not quick else (50, 32, 10)
    calls = 300 if not quick else 10
    lin_iters = bench.args.linear_iters if not quick else 20
    X = np.hstack([d.X_train, np.ones((d.X_train.shape[0], 1), np.float32)])
    y = d.y_train
    N, D = X.shape
    g = backend.Generator(0)
    W0 = host(0.001 * g.normal((D, C), dtype="float32"))
    idx = host(g.choice(N, (lin_iters, B), replace=True))
    Xb, yb = X[idx[0]], y[idx[0]]
    lr, reg = 1e-7, 2.5e4
    out = []

    for f, twin, Cls in ((svm_loss_vectorized, svm_loss, LinearSVM), (softmax_loss_vectorized, softmax_loss, Softmax)):
        def run_x(f=f):
            for _ in range(calls):
                f(W0, Xb, yb, reg)

        def run_r(f=f):
            with raw_numpy():
                for _ in range(calls):
                    f(W0, Xb, yb, reg)

        def run_n(twin=twin):
            for _ in range(calls):
                twin(W0, Xb, yb, reg)

        out.append((f"{f.__name__} (batch {B})", run_x, run_r, run_n, calls))

        def run_cx(Cls=Cls):
            Cls(seed=0).train(X, y, learning_rate=lr, reg=reg, num_iters=lin_iters, batch_size=B)

        def run_cr(Cls=Cls):
            with raw_numpy():
                Cls(seed=0).train(X, y, learning_rate=lr, reg=reg, num_iters=lin_iters, batch_size=B)

        def run_cn(twin=twin):
            linear_train(twin, X, y, W0, idx, lr, reg)

        out.append((f"{Cls.__name__}.train, per iteration", run_cx, run_cr, run_cn, lin_iters))

    case = twolayer_case(bench)
    Xn, yn, Xv, yv = case.X, case.y, case.Xv, case.yv
    Dn, H, C = case.dims
    net = TwoLayerNet(Dn, H, C, std=case.init_std, seed=0)
    Xnb, ynb = Xn[case.idx[0]], yn[case.idx[0]]

    def run_lx():
        for _ in range(calls):
            net.loss(Xnb, ynb, reg=case.reg)

    def run_lr():
        with raw_numpy(net):
            for _ in range(calls):
                net.loss(Xnb, ynb, reg=case.reg)

    def run_ln():
        for _ in range(calls):
            net_loss(case.params, Xnb, ynb, case.reg)

    out.append((f"TwoLayerNet.loss (batch {case.batch})", run_lx, run_lr, run_ln, calls))

    def train_kwargs():
        return dict(learning_rate=case.lr, learning_rate_decay=case.decay, reg=case.reg, num_iters=case.iters,
                    batch_size=case.batch)

    def run_tx():
        TwoLayerNet(Dn, H, C, std=case.init_std, seed=0).train(Xn, yn, Xv, yv, **train_kwargs())

    def run_tr():
        raw = TwoLayerNet(Dn, H, C, std=case.init_std, seed=0)
        with raw_numpy(raw):
            raw.train(Xn, yn, Xv, yv, **train_kwargs())

    def run_tn():
        net_train(case.params, Xn, yn, Xv, yv, case.idx, case.lr, case.decay, case.reg)

    out.append(("TwoLayerNet.train, per iteration", run_tx, run_tr, run_tn, case.iters))
    return out


def run(bench: Bench, place: Place) -> None:
    if place.gpu:
        return
    bench.say("\n### The shim's cost: xpml on NumPy vs the same code on the plain numpy module (target <= 1.03x)")
    bench.say("('raw numpy': xpml's code with its namespace lookups returning numpy itself, i.e. without the shim;")
    bench.say(" 'course-style NumPy': the same formulas as a NumPy user writes them, for information)")
    for name, xpml_fn, raw_fn, numpy_fn, per in cases(bench):
        tools = [Tool(f"xpml {name}", lambda f=xpml_fn: f, per=per),
                 Tool(f"raw numpy {name}", lambda f=raw_fn: f, library="raw numpy", per=per),
                 Tool(f"course-style NumPy {name}", lambda f=numpy_fn: f, library="numpy", per=per)]
        done = bench.time("shim", name, tools, max(bench.repeats, 5))
        bench.header()
        by = {t.library: t for t in done}
        for t in done:
            ratios, target = {}, None
            if t.library == "xpml":
                if "raw numpy" in by:
                    ratios["vs raw numpy"] = paired_ratio(t, by["raw numpy"])
                    target = ("vs raw numpy", TARGET)
                if "numpy" in by:
                    ratios["vs course-style NumPy"] = paired_ratio(t, by["numpy"])
            bench.report("shim", name, t, ratios=ratios, target=target)
