"""The same math as xpml's losses and training loops, directly in NumPy, for bench.py's shim section.

Two references, on the same float32 data, initial weights and minibatch indices:

- :func:`raw_numpy`: xpml's own code with the shim taken out: the namespace lookups return the
  plain ``numpy`` module instead of array-api-compat's wrapper namespace, so exactly the same
  operations run without the shim. xpml's time over this is the shim's cost (target <= 1.03x).
- The course-style twins below (fancy indexing for the correct-class scores, in-place updates):
  what a NumPy user would write for the formulas in xpml's docstrings. For information.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib

import numpy as np

from .. import backend


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


@contextlib.contextmanager
def raw_numpy(*nets):
    """Within the block, xpml's namespace lookups (and the given nets' backends) give plain numpy."""
    saved = backend.get_namespace, backend.namespace_and_device, backend.check_on_backend
    saved_nets = [n.backend for n in nets]
    backend.get_namespace = lambda *arrays: np
    backend.namespace_and_device = lambda *arrays: (np, "cpu")
    # Plain numpy has no backend to check against; the check runs once per train() call.
    backend.check_on_backend = lambda *args, **kwargs: None
    for n in nets:
        n.backend = dataclasses.replace(n.backend, xp=np)
    try:
        yield
    finally:
        backend.get_namespace, backend.namespace_and_device, backend.check_on_backend = saved
        for n, b in zip(nets, saved_nets, strict=True):
            n.backend = b


def _get(module, name):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def cases(data, *, quick: bool):
    """(name, xpml, xpml without the shim, course-style NumPy, steps per timing) for each comparison.

    The kernels are the unchecked losses the training loops call (the public loss functions also
    validate their inputs, which a direct NumPy version does not); the loops are the public
    ``train`` methods at the suite's iteration counts, so their one-off input checks count.
    """
    out = []
    B, H, C = (200, 100, 10) if not quick else (50, 32, 10)
    calls = 300 if not quick else 10
    lin_iters, net_iters = (1500, 1000) if not quick else (20, 20)
    X = np.hstack([data.X_train, np.ones((data.X_train.shape[0], 1), np.float32)])
    y = data.y_train
    N, D = X.shape
    g = backend.Generator(0)
    W0 = backend.to_numpy(0.001 * g.normal((D, C), dtype="float32"))
    idx = backend.to_numpy(g.choice(N, (lin_iters, B), replace=True))
    Xb, yb = X[idx[0]], y[idx[0]]
    lr, reg = 1e-7, 2.5e4

    for mod, fname, twin, cls_name in (("xpml.classifiers.linear_svm", "_svm_loss", svm_loss, "LinearSVM"),
                                       ("xpml.classifiers.softmax", "_softmax_loss", softmax_loss, "Softmax")):
        f = _get(mod, fname)
        if f is not None:
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

            out.append((f"{cls_name} loss kernel (batch {B})", run_x, run_r, run_n, calls))
        Cls = _get("xpml.classifiers", cls_name)
        if Cls is not None:
            def run_cx(Cls=Cls):
                Cls(seed=0).train(X, y, learning_rate=lr, reg=reg, num_iters=lin_iters, batch_size=B)

            def run_cr(Cls=Cls):
                with raw_numpy():
                    Cls(seed=0).train(X, y, learning_rate=lr, reg=reg, num_iters=lin_iters, batch_size=B)

            def run_cn(twin=twin):
                linear_train(twin, X, y, W0, idx, lr, reg)

            out.append((f"{cls_name}.train, per iteration", run_cx, run_cr, run_cn, lin_iters))

    Net = _get("xpml.nets", "TwoLayerNet")
    if Net is not None:
        Xn, yn, Xv, yv = data.X_train, data.y_train, data.X_val, data.y_val
        Dn = Xn.shape[1]
        twin = Net(Dn, H, C, std=1e-4, seed=0)
        params = {k: backend.to_numpy(v) for k, v in twin.params.items()}
        nidx = np.concatenate([backend.to_numpy(twin._rng.choice(Xn.shape[0], (min(1000, net_iters - s), B)))
                               for s in range(0, net_iters, 1000)])
        net = Net(Dn, H, C, std=1e-4, seed=0)
        Xnb, ynb = Xn[nidx[0]], yn[nidx[0]]

        def run_lx():
            for _ in range(calls):
                net._loss_and_grads(Xnb, ynb, 0.25)

        def run_lr():
            with raw_numpy(net):
                for _ in range(calls):
                    net._loss_and_grads(Xnb, ynb, 0.25)

        def run_ln():
            for _ in range(calls):
                net_loss(params, Xnb, ynb, 0.25)

        out.append((f"TwoLayerNet loss+grads (batch {B})", run_lx, run_lr, run_ln, calls))

        def run_tx():
            Net(Dn, H, C, std=1e-4, seed=0).train(Xn, yn, Xv, yv, learning_rate=1e-3, learning_rate_decay=0.95,
                                                  reg=0.25, num_iters=net_iters, batch_size=B)

        def run_tr():
            raw = Net(Dn, H, C, std=1e-4, seed=0)
            with raw_numpy(raw):
                raw.train(Xn, yn, Xv, yv, learning_rate=1e-3, learning_rate_decay=0.95, reg=0.25,
                          num_iters=net_iters, batch_size=B)

        def run_tn():
            net_train(params, Xn, yn, Xv, yv, nidx, 1e-3, 0.95, 0.25)

        out.append(("TwoLayerNet.train, per iteration", run_tx, run_tr, run_tn, net_iters))
    return out
