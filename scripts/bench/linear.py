"""The linear classifiers as users train them: ``LinearSVM().train`` and ``Softmax().train``.

Each is timed whole and per iteration against the same SGD loop in PyTorch with autograd and
the same loop written out by hand in PyTorch (scores, loss gradient and update as tensor
operations), interleaved in the same rounds. All start from the same weights and draw the same
minibatches (``LinearClassifier`` documents its draws: ``0.001 * randn(D, C)`` then the indices,
from one generator seeded with ``seed``), so their first losses agree to rounding.

Adding a contender: a factory in :data:`TOOLS`; xpml's backends come from ``--backends``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xpml import backend

from .common import Bench, Place, Tool, host, paired_ratio, torch_or_unavailable

__all__ = ["TOOLS", "run"]

TARGET = 1.0  # the linear models no slower than the fastest PyTorch loop
KINDS = (("svm", "LinearSVM"), ("softmax", "Softmax"))


@dataclasses.dataclass
class LinearCase:
    kind: str  # "svm" or "softmax"
    cls_name: str
    X: np.ndarray  # with the bias column
    y: np.ndarray
    W0: np.ndarray
    idx: np.ndarray
    iters: int
    batch: int
    lr: float = 1e-7
    reg: float = 2.5e4


def xpml_linear(bench: Bench, place: Place, case: LinearCase) -> list[Tool]:
    from xpml import classifiers

    Cls = getattr(classifiers, case.cls_name)
    tools = []
    for bk in place.backends:
        X, y = bk.asarray(case.X), bk.asarray(case.y)

        def prepare(X=X, y=y):
            clf = Cls(seed=0)

            def run():
                return clf, clf.train(X, y, learning_rate=case.lr, reg=case.reg, num_iters=case.iters,
                                      batch_size=case.batch)

            return run

        tools.append(Tool(f"xpml {case.cls_name}.train ({bk.label})", prepare, backend=bk.label, per=case.iters,
                          unit="it"))
    return tools


def _data_loss_autograd(torch, kind, s, yb):
    if kind == "svm":
        correct = s.gather(1, yb[:, None])
        margins = torch.clamp(s - correct + 1.0, min=0.0)
        # The j = y_i terms are exactly 1 each: subtract them rather than mask.
        return (margins.sum() - s.shape[0]) / s.shape[0]
    return torch.nn.functional.cross_entropy(s, yb)


def torch_linear_autograd(torch, case: LinearCase, X, y, idx, device):
    W = torch.tensor(case.W0, device=device, requires_grad=True)
    losses = []
    for it in range(case.iters):
        Xb, yb = X[idx[it]], y[idx[it]]
        loss = _data_loss_autograd(torch, case.kind, Xb @ W, yb) + case.reg * (W * W).sum()
        loss.backward()
        with torch.no_grad():
            W -= case.lr * W.grad
            W.grad = None
        losses.append(loss.detach())
    return torch.stack(losses), W.detach()


def torch_linear_manual(torch, case: LinearCase, X, y, idx, device):
    W = torch.tensor(case.W0, device=device)
    B = case.batch
    rows = torch.arange(B, device=device)
    losses = []
    for it in range(case.iters):
        Xb, yb = X[idx[it]], y[idx[it]]
        s = Xb @ W
        if case.kind == "svm":
            margins = (s - s[rows, yb][:, None] + 1.0).clamp_(min=0.0)
            margins[rows, yb] = 0.0
            data_loss = margins.sum() / B
            ds = (margins > 0).to(s.dtype)
            ds[rows, yb] = -ds.sum(1)
        else:
            logp = torch.log_softmax(s, dim=1)
            data_loss = -logp[rows, yb].mean()
            ds = logp.exp_()
            ds[rows, yb] -= 1.0
        ds /= B
        losses.append(data_loss + case.reg * (W * W).sum())
        W = torch.addmm(W, Xb.T, ds, beta=1 - 2 * case.lr * case.reg, alpha=-case.lr)
    return torch.stack(losses), W


def torch_linear(bench: Bench, place: Place, case: LinearCase) -> list[Tool]:
    torch = torch_or_unavailable(place.torch_device)
    dev = torch.device(place.torch_device)
    X, y, idx = (torch.from_numpy(a).to(dev) for a in (case.X, case.y, case.idx))
    tools = []
    for name, loop in (("autograd", torch_linear_autograd), ("hand-written (no autograd)", torch_linear_manual)):
        tools.append(Tool(f"PyTorch {case.kind}, {name} ({dev.type})",
                          lambda loop=loop: lambda: loop(torch, case, X, y, idx, dev), library="torch",
                          per=case.iters, unit="it"))
    return tools


# The contenders, in the order they are shown: (name for a skip line, factory).
TOOLS = [("xpml", xpml_linear), ("PyTorch", torch_linear)]


def run(bench: Bench, place: Place) -> None:
    d = bench.data
    iters = bench.args.linear_iters if not bench.quick else 20
    B = 200 if not bench.quick else 50
    X = np.hstack([d.X_train, np.ones((d.X_train.shape[0], 1), np.float32)])  # the bias trick
    Xte = np.hstack([d.X_test_c, np.ones((d.X_test_c.shape[0], 1), np.float32)])
    N, D = X.shape
    C = int(d.y_all.max()) + 1
    # LinearClassifier draws W = 0.001 * randn(D, C), then the indices of the first 2**20 // batch
    # iterations in one block: the same draws for every contender.
    g = backend.Generator(0)
    W0 = host(0.001 * g.normal((D, C), dtype="float32"))
    idx = host(g.choice(N, (iters, B), replace=True))
    bench.say(f"\n### Linear classifiers on the {place.title}: train(), N = {N}, D = {D} (bias column), batch {B}, "
              f"{iters} iterations, lr 1e-07, reg 25000.0, float32")
    for kind, cls_name in KINDS:
        case = LinearCase(kind, cls_name, X, d.y_train, W0, idx, iters, B)
        done = bench.compete(kind, kind, TOOLS, place, case)
        if not done:
            continue
        rate = bench.rate if not place.gpu else None
        floor_s = 2 * (2 * B * D * C) / (rate * 1e9) if rate else None
        peers = [t for t in done if t.library == "torch"]
        fastest = min(peers, key=lambda p: p.median()) if peers else None
        bench.header()
        for t in done:
            ratios = {f"vs {p.name}": paired_ratio(t, p) for p in peers} if t.library == "xpml" else {}
            target = (f"vs {fastest.name}", TARGET) if t.library == "xpml" and fastest else None
            bench.report(kind, kind, t, ratios=ratios, target=target, floor_s=floor_s,
                         extra={"iterations": iters, "batch": B, "whole_median_s": float(np.median(t.times))})
        ref = None
        for t in done:
            if t.library == "xpml":
                clf, hist = t.out
                pred, losses = host(clf.predict(backend.backend_of(clf.W).asarray(Xte))), np.asarray(hist)
            else:
                tl, W = t.out
                losses, pred = host(tl), np.argmax(Xte @ host(W), axis=1)
            acc = float((pred == d.y_test_c).mean())
            text = f"{t.name}: test accuracy {acc:.4f}"
            values = {"tool": t.name, "test_acc": acc}
            if ref is None:
                ref = losses
            else:
                n = min(10, len(ref), len(losses))
                diff = float(np.max(np.abs(ref[:n] - losses[:n]) / np.abs(ref[:n])))
                text += f"; its first {n} losses differ from the first row's by at most {diff:.1e} relative"
                values["first_loss_max_rel_diff"] = diff
            bench.note(kind, kind, text, **values)
