"""Nets as users train them: ``train()`` with its usual per-epoch validation, per iteration.

Two cases, each against PyTorch in two forms, interleaved in the same rounds:

- ``net``: ``TwoLayerNet(D, 100, 10).train(X, y, X_val, y_val, ...)`` (batch 200, SGD with a
  per-epoch decay; at the end of each epoch the accuracy of the last minibatch and of the
  validation set) against the same loop in PyTorch with autograd, and the same loop written out
  by hand in PyTorch (forward, backward and update as tensor operations, no autograd): the
  fastest PyTorch loop there is for this net. Same initial weights and, where xpml's documented
  draw order is reproduced, the same minibatches (the first losses then agree to rounding).
- ``fc``: ``FullyConnectedNet([100, 100], normalization="batchnorm")`` trained by
  ``Solver(update_rule="adam")`` (the course's Solver: accuracy on 1,000 training rows and on the
  validation set at the first iteration, at every epoch's end and at the last, keeping the best
  parameters) against a PyTorch ``nn.Sequential`` of the same shape (Linear, BatchNorm1d, ReLU)
  with autograd and ``torch.optim.Adam``, and the same loop hand-written in PyTorch. Without
  ``FullyConnectedNet`` and ``Solver`` in ``xpml.nets`` the xpml row says "not available".

Times are whole ``train()`` calls (including the per-epoch validation) and per iteration; the
floor is the FLOPs of one step's matrix products at the best measured GEMM rate.

Adding a contender (xpml on another backend: ``--backends``; a dropout case once masks are drawn
on the device): add a factory to :data:`TWOLAYER` / :data:`FC`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xpml import backend

from .common import Bench, Place, Tool, Unavailable, host, optional, paired_ratio, torch_or_unavailable
from .floor import net_flops

__all__ = ["FC", "TWOLAYER", "run_fc", "run_twolayer"]

TARGET_VS_FASTEST_TORCH = 0.8  # the two-layer loop at most 0.8x the fastest PyTorch loop (CPU)
TARGET_FC_VS_TORCH = 1.0  # FullyConnectedNet at most 1.0x PyTorch nn.Sequential + Adam
TARGET_GPU = 1.0


@dataclasses.dataclass
class NetCase:
    """A training workload on host float32 arrays, with the hyperparameters every contender uses."""

    X: np.ndarray
    y: np.ndarray
    Xv: np.ndarray
    yv: np.ndarray
    dims: list[int]  # D, hidden..., C
    batch: int
    iters: int
    lr: float
    decay: float
    reg: float
    params: dict  # initial parameters (host arrays), shared by every contender
    idx: np.ndarray  # (iters, batch) minibatch indices of the PyTorch loops
    check_idx: np.ndarray | None = None  # (checks, 1000) training rows of the Solver's accuracy checks
    init_std: float = 1e-4
    same_draws: bool = False

    @property
    def per_epoch(self) -> int:
        return max(self.X.shape[0] // self.batch, 1)

    def to(self, torch, device):
        """The data and indices as tensors on ``device``, placed once, before any timing."""
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        out = {"X": t(self.X), "y": t(self.y), "Xv": t(self.Xv), "yv": t(self.yv), "idx": t(self.idx)}
        if self.check_idx is not None:
            out["check_idx"] = t(self.check_idx)
        return out


def _floats(values) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=np.float64)


# ---- the two-layer net ---------------------------------------------------------------------------


def twolayer_case(bench: Bench, *, hidden: int | None = None, batch: int | None = None,
                  iters: int | None = None) -> NetCase:
    """The two-layer workload; the initial weights come from ``TwoLayerNet(seed=0).params``.

    ``TwoLayerNet`` documents its draws: the weights, then the minibatch indices in blocks of up
    to 1000 iterations, all from one generator seeded with ``seed``. Where drawing the weights
    from ``backend.Generator(seed)`` reproduces ``params``, the PyTorch loops continue that
    stream for their minibatches (the same minibatches as xpml's); otherwise they draw their own.
    """
    from xpml.nets import TwoLayerNet, init

    d = bench.data
    H, B = (100, 200) if not bench.quick else (32, 50)
    H, B = hidden or H, batch or B
    iters = iters or (bench.args.net_iters if not bench.quick else 40)  # quick: just past one epoch
    N, D = d.X_train.shape
    C = int(d.y_all.max()) + 1
    std = 1e-4
    params = {k: host(v) for k, v in TwoLayerNet(D, H, C, std=std, seed=0).params.items()}
    g = backend.Generator(0)
    W1 = host(init.init_weights(g, (D, H), scheme="std", std=std))
    W2 = host(init.init_weights(g, (H, C), scheme="std", std=std))
    same = np.array_equal(W1, params["W1"]) and np.array_equal(W2, params["W2"])
    if same:
        idx = np.concatenate([host(g.choice(N, (min(1000, iters - s), B))) for s in range(0, iters, 1000)])
    else:
        idx = host(backend.Generator(1).choice(N, (iters, B)))
    return NetCase(d.X_train, d.y_train, d.X_val, d.y_val, [D, H, C], B, iters, lr=1e-3, decay=0.95, reg=0.25,
                   params=params, idx=idx, init_std=std, same_draws=same)


def xpml_twolayer(bench: Bench, place: Place, case: NetCase) -> list[Tool]:
    from xpml.nets import TwoLayerNet

    D, H, C = case.dims
    tools = []
    for bk in place.backends:
        X, y, Xv, yv = (bk.asarray(a) for a in (case.X, case.y, case.Xv, case.yv))

        def prepare(bk=bk, X=X, y=y, Xv=Xv, yv=yv):
            net = TwoLayerNet(D, H, C, std=case.init_std, seed=0, xp=bk)

            def run():
                hist = net.train(X, y, Xv, yv, learning_rate=case.lr, learning_rate_decay=case.decay, reg=case.reg,
                                 num_iters=case.iters, batch_size=case.batch)
                return net, hist

            return run

        tools.append(Tool(f"xpml TwoLayerNet.train ({bk.label})", prepare, backend=bk.label, per=case.iters,
                          unit="it"))
    return tools


def torch_twolayer_autograd(torch, T, params, case: NetCase, device):
    """The TwoLayerNet.train loop in PyTorch with autograd, as a PyTorch user writes it."""
    W1, b1, W2, b2 = (torch.tensor(params[k], device=device, requires_grad=True) for k in ("W1", "b1", "W2", "b2"))
    X, y, Xv, yv, idx = T["X"], T["y"], T["Xv"], T["yv"], T["idx"]
    lr, losses, val_acc = case.lr, [], []
    for it in range(case.iters):
        rows = idx[it]
        Xb, yb = X[rows], y[rows]
        s = torch.relu(Xb @ W1 + b1) @ W2 + b2
        loss = torch.nn.functional.cross_entropy(s, yb) + case.reg * ((W1 * W1).sum() + (W2 * W2).sum())
        loss.backward()
        with torch.no_grad():
            for p in (W1, b1, W2, b2):
                p -= lr * p.grad
                p.grad = None
        losses.append(loss.detach())
        if (it + 1) % case.per_epoch == 0:
            with torch.no_grad():
                # The same per-epoch work as xpml: accuracy on the batch and on the validation set.
                (torch.argmax(torch.relu(Xb @ W1 + b1) @ W2 + b2, 1) == yb).float().mean()
                val_acc.append((torch.argmax(torch.relu(Xv @ W1 + b1) @ W2 + b2, 1) == yv).float().mean())
            lr *= case.decay
    P = {"W1": W1.detach(), "b1": b1.detach(), "W2": W2.detach(), "b2": b2.detach()}
    return torch.stack(losses), lambda A: torch.argmax(_twolayer_scores(torch, P, A), 1), _last(val_acc)


def torch_twolayer_manual(torch, T, params, case: NetCase, device):
    """The same loop written out in PyTorch: forward, backward and SGD as tensor operations."""
    P = {k: torch.tensor(v, device=device) for k, v in params.items()}
    W1, b1, W2, b2 = P["W1"], P["b1"], P["W2"], P["b2"]
    X, y, Xv, yv, idx = T["X"], T["y"], T["Xv"], T["yv"], T["idx"]
    B = case.batch
    rows_b = torch.arange(B, device=device)
    lr, losses, val_acc = case.lr, [], []
    for it in range(case.iters):
        rows = idx[it]
        Xb, yb = X[rows], y[rows]
        h = torch.addmm(b1, Xb, W1).clamp_(min=0)
        logp = torch.log_softmax(torch.addmm(b2, h, W2), dim=1)
        loss = -logp[rows_b, yb].mean() + case.reg * ((W1 * W1).sum() + (W2 * W2).sum())
        ds = logp.exp_()
        ds[rows_b, yb] -= 1.0
        ds /= B
        dW2 = torch.addmm(W2, h.T, ds, beta=2 * case.reg)
        db2 = ds.sum(0)
        dh = (ds @ W2.T).mul_(h > 0)
        dW1 = torch.addmm(W1, Xb.T, dh, beta=2 * case.reg)
        db1 = dh.sum(0)
        for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
            p.add_(g, alpha=-lr)
        losses.append(loss)
        if (it + 1) % case.per_epoch == 0:
            (torch.argmax(torch.addmm(b2, torch.addmm(b1, Xb, W1).clamp_(min=0), W2), 1) == yb).float().mean()
            val_acc.append((torch.argmax(torch.addmm(b2, torch.addmm(b1, Xv, W1).clamp_(min=0), W2), 1) == yv)
                           .float().mean())
            lr *= case.decay
    return torch.stack(losses), lambda A: torch.argmax(_twolayer_scores(torch, P, A), 1), _last(val_acc)


def _last(values) -> float:
    return float(values[-1]) if values else float("nan")


def torch_tools(place: Place, case: NetCase, loops: list[tuple[str, object]]) -> list[Tool]:
    torch = torch_or_unavailable(place.torch_device)
    device = torch.device(place.torch_device)
    T = case.to(torch, device)
    tools = []
    for name, loop in loops:
        def prepare(loop=loop):
            return lambda: loop(torch, T, case.params, case, device)

        tools.append(Tool(f"{name} ({device.type})", prepare, library="torch", per=case.iters, unit="it"))
    return tools


def torch_twolayer(bench: Bench, place: Place, case: NetCase) -> list[Tool]:
    return torch_tools(place, case, [("PyTorch, autograd", torch_twolayer_autograd),
                                      ("PyTorch, hand-written (no autograd)", torch_twolayer_manual)])


def _twolayer_scores(torch, P, X):
    with torch.no_grad():
        return torch.relu(X @ P["W1"] + P["b1"]) @ P["W2"] + P["b2"]


# ---- the fully connected net with batch normalization --------------------------------------------


def fc_api():
    """``(FullyConnectedNet, Solver)`` from xpml.nets, or :class:`Unavailable` saying what is missing."""
    nets = optional("xpml.nets")
    if isinstance(nets, Exception):
        raise Unavailable(f"xpml.nets cannot be imported ({nets})")
    missing = [n for n in ("FullyConnectedNet", "Solver") if not hasattr(nets, n)]
    if missing:
        raise Unavailable(f"not available: xpml.nets has no {' or '.join(missing)} yet")
    return nets.FullyConnectedNet, nets.Solver


FC_HIDDEN = (100, 100)
FC_WEIGHT_SCALE = 2e-2
FC_TRAIN_SAMPLES = 1000  # the Solver's num_train_samples: training rows scored at each check
BN_EPS, BN_MOMENTUM = 1e-5, 0.9  # the course's batchnorm defaults (PyTorch's momentum is 1 - this)
ADAM = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}  # the course's and torch.optim.Adam's defaults


def fc_case(bench: Bench) -> NetCase:
    """The FC workload. The initial parameters are the xpml model's own (``params`` of a
    ``FullyConnectedNet`` with the same seed) where it exists, else drawn the same way."""
    d = bench.data
    hidden = list(FC_HIDDEN) if not bench.quick else [32, 32]
    B = 200 if not bench.quick else 50
    N, D = d.X_train.shape
    C = int(d.y_all.max()) + 1
    dims = [D, *hidden, C]
    epochs = bench.args.fc_epochs if not bench.quick else 1
    per_epoch = max(N // B, 1)
    iters = epochs * per_epoch
    reg = 1e-2
    try:
        Net, _ = fc_api()
        model = Net(hidden, input_dim=D, num_classes=C, normalization="batchnorm", reg=reg,
                    weight_scale=FC_WEIGHT_SCALE, dtype="float32", seed=0)
        params = {k: host(v) for k, v in model.params.items()}
    except Unavailable:
        g = backend.Generator(0)
        params = {}
        for i, (m, n) in enumerate(zip(dims[:-1], dims[1:], strict=True), start=1):
            params[f"W{i}"] = host(g.normal((m, n), scale=FC_WEIGHT_SCALE))
            params[f"b{i}"] = np.zeros(n, np.float32)
            if i < len(dims) - 1:
                params[f"gamma{i}"] = np.ones(n, np.float32)
                params[f"beta{i}"] = np.zeros(n, np.float32)
    g = backend.Generator(1)
    idx = host(g.choice(N, (iters, B)))
    checks = len(_check_points(iters, per_epoch))
    check_idx = host(g.choice(N, (checks, min(FC_TRAIN_SAMPLES, N))))
    return NetCase(d.X_train, d.y_train, d.X_val, d.y_val, dims, B, iters, lr=1e-3, decay=0.95, reg=reg,
                   params=params, idx=idx, check_idx=check_idx)


def _check_points(iters: int, per_epoch: int) -> list[int]:
    """Iterations after which the course's Solver checks accuracy: the first, every epoch's end, the last."""
    return [t for t in range(iters) if t == 0 or t == iters - 1 or (t + 1) % per_epoch == 0]


def xpml_fc(bench: Bench, place: Place, case: NetCase) -> list[Tool]:
    Net, Solver = fc_api()
    D, *hidden, C = case.dims
    tools = []
    for bk in place.backends:
        data = {k: bk.asarray(a) for k, a in
                (("X_train", case.X), ("y_train", case.y), ("X_val", case.Xv), ("y_val", case.yv))}

        def prepare(bk=bk, data=data):
            model = Net(hidden, input_dim=D, num_classes=C, normalization="batchnorm", reg=case.reg,
                        weight_scale=FC_WEIGHT_SCALE, dtype="float32", seed=0, xp=bk)
            solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": case.lr},
                            lr_decay=case.decay, batch_size=case.batch, num_epochs=case.iters // case.per_epoch,
                            num_train_samples=FC_TRAIN_SAMPLES, num_val_samples=None, print_every=case.iters + 1,
                            verbose=False)

            def run():
                solver.train()
                return model, solver

            return run

        tools.append(Tool(f"xpml FullyConnectedNet + Solver ({bk.label})", prepare, backend=bk.label,
                          per=case.iters, unit="it"))
    return tools


def _solver_checks(torch, T, evaluate, snapshot, best) -> None:
    """The course Solver's accuracy check: 1,000 training rows and the validation set, in test mode;
    ``snapshot()`` (a copy of the parameters) is kept when the validation accuracy improves."""
    with torch.no_grad():
        rows = T["check_idx"][best["checks"]]
        best["checks"] += 1
        (evaluate(T["X"][rows]) == T["y"][rows]).float().mean()
        val = (evaluate(T["Xv"]) == T["yv"]).float().mean()
    # The Solver compares each validation accuracy with the best so far on the host: one read per check.
    val = float(val)
    if val > best["val"]:
        best["val"] = val
        best["params"] = snapshot()


def torch_fc_autograd(torch, T, params, case: NetCase, device):
    """``nn.Sequential`` (Linear, BatchNorm1d, ReLU) x 2 + Linear, ``torch.optim.Adam``, autograd."""
    nn = torch.nn
    D, *hidden, C = case.dims
    layers, linears, norms = [], [], []
    for m, n in zip([D, *hidden[:-1]], hidden, strict=True):
        linears.append(nn.Linear(m, n))
        norms.append(nn.BatchNorm1d(n, eps=BN_EPS, momentum=1 - BN_MOMENTUM))
        layers += [linears[-1], norms[-1], nn.ReLU()]
    linears.append(nn.Linear(hidden[-1], C))
    layers.append(linears[-1])
    model = nn.Sequential(*layers).to(device)
    with torch.no_grad():
        for i, lin in enumerate(linears, start=1):
            lin.weight.copy_(torch.from_numpy(params[f"W{i}"].T.copy()))
            lin.bias.copy_(torch.from_numpy(params[f"b{i}"]))
        for i, bn in enumerate(norms, start=1):
            bn.weight.copy_(torch.from_numpy(params[f"gamma{i}"]))
            bn.bias.copy_(torch.from_numpy(params[f"beta{i}"]))
    opt = torch.optim.Adam(model.parameters(), lr=case.lr, betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["epsilon"])
    X, y, idx = T["X"], T["y"], T["idx"]
    checks = set(_check_points(case.iters, case.per_epoch))
    best = {"val": -1.0, "params": None, "checks": 0}

    def evaluate(A):
        model.eval()
        out = torch.argmax(model(A), 1)
        model.train()
        return out

    losses = []
    for t in range(case.iters):
        rows = idx[t]
        scores = model(X[rows])
        loss = torch.nn.functional.cross_entropy(scores, y[rows])
        loss = loss + 0.5 * case.reg * sum((lin.weight * lin.weight).sum() for lin in linears)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        if (t + 1) % case.per_epoch == 0:
            for group in opt.param_groups:
                group["lr"] *= case.decay
        if t in checks:
            _solver_checks(torch, T, evaluate, lambda: {k: v.clone() for k, v in model.state_dict().items()}, best)
    model.load_state_dict(best["params"])
    return torch.stack(losses), evaluate, best["val"]


def torch_fc_manual(torch, T, params, case: NetCase, device):
    """The same net and Solver loop written out in PyTorch: batchnorm's backward and Adam by hand."""
    P = {k: torch.tensor(v, device=device) for k, v in params.items()}
    L = len(case.dims) - 1
    running = {i: [torch.zeros(case.dims[i], device=device), torch.ones(case.dims[i], device=device)]
               for i in range(1, L)}
    m = {k: torch.zeros_like(v) for k, v in P.items()}
    v2 = {k: torch.zeros_like(v) for k, v in P.items()}
    X, y, idx = T["X"], T["y"], T["idx"]
    B = case.batch
    rows_b = torch.arange(B, device=device)
    checks = set(_check_points(case.iters, case.per_epoch))
    best = {"val": -1.0, "params": None, "checks": 0}
    lr, b1, b2, eps = case.lr, ADAM["beta1"], ADAM["beta2"], ADAM["epsilon"]

    def evaluate(A):
        for i in range(1, L):
            z = torch.addmm(P[f"b{i}"], A, P[f"W{i}"])
            mean, var = running[i]
            A = ((z - mean) * torch.rsqrt(var + BN_EPS) * P[f"gamma{i}"] + P[f"beta{i}"]).clamp_(min=0)
        return torch.argmax(torch.addmm(P[f"b{L}"], A, P[f"W{L}"]), 1)

    def snapshot():
        return {k: v.clone() for k, v in P.items()}, {i: [r.clone() for r in rs] for i, rs in running.items()}

    losses = []
    for t in range(case.iters):
        rows = idx[t]
        a, yb = X[rows], y[rows]
        caches = []
        for i in range(1, L):
            z = torch.addmm(P[f"b{i}"], a, P[f"W{i}"])
            mean, var = z.mean(0), z.var(0, unbiased=False)
            inv = torch.rsqrt(var + BN_EPS)
            xhat = (z - mean) * inv
            out = (xhat * P[f"gamma{i}"] + P[f"beta{i}"]).clamp_(min=0)
            running[i][0].mul_(BN_MOMENTUM).add_(mean, alpha=1 - BN_MOMENTUM)
            running[i][1].mul_(BN_MOMENTUM).add_(var, alpha=1 - BN_MOMENTUM)
            caches.append((a, xhat, inv, out))
            a = out
        logp = torch.log_softmax(torch.addmm(P[f"b{L}"], a, P[f"W{L}"]), dim=1)
        loss = -logp[rows_b, yb].mean() + 0.5 * case.reg * sum((P[f"W{i}"] ** 2).sum() for i in range(1, L + 1))
        d = logp.exp_()
        d[rows_b, yb] -= 1.0
        d /= B
        grads = {f"W{L}": torch.addmm(P[f"W{L}"], a.T, d, beta=case.reg), f"b{L}": d.sum(0)}
        da = d @ P[f"W{L}"].T
        for i in range(L - 1, 0, -1):
            a_in, xhat, inv, out = caches[i - 1]
            dout = da.mul_(out > 0)
            grads[f"gamma{i}"] = (dout * xhat).sum(0)
            grads[f"beta{i}"] = dout.sum(0)
            dx = dout * P[f"gamma{i}"]
            dz = (inv / B) * (B * dx - dx.sum(0) - xhat * (dx * xhat).sum(0))
            grads[f"W{i}"] = torch.addmm(P[f"W{i}"], a_in.T, dz, beta=case.reg)
            grads[f"b{i}"] = dz.sum(0)
            if i > 1:
                da = dz @ P[f"W{i}"].T
        step = t + 1
        c1, c2 = 1 - b1**step, 1 - b2**step
        for k, g in grads.items():
            m[k].mul_(b1).add_(g, alpha=1 - b1)
            v2[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            P[k].addcdiv_(m[k], (v2[k] / c2).sqrt_().add_(eps), value=-lr / c1)
        losses.append(loss)
        if (t + 1) % case.per_epoch == 0:
            lr *= case.decay
        if t in checks:
            _solver_checks(torch, T, evaluate, snapshot, best)
    kept, kept_running = best["params"]
    P.update(kept)
    running.update(kept_running)
    return torch.stack(losses), evaluate, best["val"]


def torch_fc(bench: Bench, place: Place, case: NetCase) -> list[Tool]:
    return torch_tools(place, case, [("PyTorch nn.Sequential + Adam, autograd", torch_fc_autograd),
                                      ("PyTorch, hand-written (no autograd)", torch_fc_manual)])


# The contenders of each case, in the order they are shown: (name for a skip line, factory).
TWOLAYER = [("xpml TwoLayerNet", xpml_twolayer), ("PyTorch", torch_twolayer)]
FC = [("xpml FullyConnectedNet + Solver", xpml_fc), ("PyTorch", torch_fc)]


# ---- running and reporting -----------------------------------------------------------------------


def _report(bench: Bench, section: str, place: Place, case: NetCase, done: list[Tool], target: float,
            target_peer) -> None:
    """Rows with ratios of each xpml tool to each PyTorch loop; the target against ``target_peer``
    (a function choosing the peer among the PyTorch tools)."""
    flops = net_flops(case.batch, case.dims)
    floor_s = flops / (bench.rate * 1e9) if bench.rate and not place.gpu else None
    peers = [t for t in done if t.library == "torch"]
    goal = target_peer(peers) if peers else None
    bench.header()
    for t in done:
        ratios, tgt = {}, None
        if t.library == "xpml":
            for p in peers:
                ratios[f"vs {p.name}"] = paired_ratio(t, p)
            if goal is not None:
                tgt = (f"vs {goal.name}", target)
        bench.report(section, section, t, ratios=ratios, target=tgt, floor_s=floor_s,
                     extra={"iterations": case.iters, "batch": case.batch, "dims": case.dims,
                            "whole_median_s": float(np.median(t.times)), "whole_best_s": min(t.times)})
    if floor_s:
        bench.note(section, section, f"{section} floor: {flops / 1e6:.0f} MFLOP of matrix products per iteration / "
                   f"{bench.rate:.0f} GFLOP/s = {floor_s * 1e6:.1f} us per iteration (the per-epoch validation "
                   "is not in it)", flops=flops, floor_s=floor_s)


def _outcomes(bench: Bench, section: str, case: NetCase, done: list[Tool], xpml_outcome) -> None:
    """What each contender learned: validation and test accuracy, and its losses against xpml's.

    ``xpml_outcome(out)`` turns an xpml tool's result into ``(losses, validation accuracy,
    labels of the test images)``; the PyTorch loops return ``(losses, evaluate, validation accuracy)``.
    """
    torch = optional("torch")
    d = bench.data
    ref = None
    for t in done:
        if t.library == "xpml":
            losses, val, pred = xpml_outcome(t.out)
            ref = losses if ref is None else ref
        else:
            tl, evaluate, val = t.out
            losses, pred = host(tl), host(evaluate(torch.from_numpy(d.X_test_c).to(tl.device)))
        test = float((np.asarray(pred) == d.y_test_c).mean())
        text = f"{t.name}: val {val:.4f}, test {test:.4f} (1,000 images) after {case.iters} iterations"
        values = {"tool": t.name, "val_acc": val, "test_acc": test, "final_loss": float(np.mean(losses[-10:]))}
        if ref is not None and t.library != "xpml" and case.same_draws:
            n = min(10, len(ref), len(losses))
            diff = float(np.max(np.abs(ref[:n] - losses[:n]))) if n else float("nan")
            text += f"; its first {n} losses differ from xpml's by at most {diff:.2e}"
            # Rounding only, where the draws match; more means xpml's draw order has changed.
            same = diff <= 1e-4 * max(1.0, float(np.max(np.abs(ref[:n]))))
            text += (" (same weights and minibatches)" if same else
                     " (NOT the same minibatches: xpml no longer draws them in the documented order)")
            values["first_loss_max_diff"] = diff
        else:
            text += f"; mean of its last 10 losses {values['final_loss']:.4f}"
        bench.note(section, section, text, **values)
    if not case.same_draws and len(done) > 1:
        bench.note(section, section, "the PyTorch loops start from xpml's weights but draw their own minibatches: "
                   "compare accuracies and final losses, not the losses step by step")


def _fastest(peers: list[Tool]) -> Tool:
    return min(peers, key=lambda p: p.median())


def _autograd(peers: list[Tool]) -> Tool:
    return next((p for p in peers if "autograd" in p.name), peers[0])


def _run(bench: Bench, place: Place, section: str, case: NetCase, title: str, factories, target: float,
         target_peer, xpml_outcome) -> None:
    bench.say(f"\n### {title}")
    done = bench.compete(section, section, factories, place, case)
    if done:
        _report(bench, section, place, case, done, TARGET_GPU if place.gpu else target, target_peer)
        _outcomes(bench, section, case, done, xpml_outcome)


def run_twolayer(bench: Bench, place: Place) -> None:
    case = twolayer_case(bench)
    N, (D, H, _) = case.X.shape[0], case.dims

    def outcome(out):
        net, hist = out
        val = hist["val_acc_history"][-1] if hist["val_acc_history"] else float("nan")
        return np.asarray(hist["loss_history"]), val, host(net.predict(net.backend.asarray(bench.data.X_test_c)))

    _run(bench, place, "net", case,
         f"Two-layer net on the {place.title}: train() with per-epoch validation; N = {N}, D = {D}, H = {H}, batch "
         f"{case.batch}, {case.iters} iterations, lr {case.lr}, decay {case.decay}, reg {case.reg}, float32",
         TWOLAYER, TARGET_VS_FASTEST_TORCH, _fastest, outcome)


def run_fc(bench: Bench, place: Place) -> None:
    case = fc_case(bench)
    N, D, hidden = case.X.shape[0], case.dims[0], case.dims[1:-1]

    def outcome(out):
        model, solver = out
        bk = backend.backend_of(model.params["W1"])
        scores = host(model.loss(bk.asarray(bench.data.X_test_c)))
        return _floats(solver.loss_history), float(solver.best_val_acc), np.argmax(scores, axis=1)

    _run(bench, place, "fc", case,
         f"FullyConnectedNet {list(hidden)} + batchnorm + Adam on the {place.title}: Solver.train() with its "
         f"per-epoch checks; N = {N}, D = {D}, batch {case.batch}, {case.iters // case.per_epoch} epochs "
         f"({case.iters} iterations), lr {case.lr}, lr_decay {case.decay}, reg {case.reg}, float32",
         FC, TARGET_FC_VS_TORCH, _autograd, outcome)
