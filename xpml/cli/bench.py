#!/usr/bin/env python
"""xpml's benchmark suite: xpml and the libraries a user would pick instead, side by side.

Usage (the benchmark command; run it on an otherwise idle machine)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE xpml bench
    xpml bench --only knn,net --repeats 5 --no-record
    xpml bench --quick --no-record          # small shapes: a smoke test, not a figure

Sections (``--only``, comma-separated):

- ``floor``: the measured float32 matrix-product rate of this machine (NumPy's BLAS and torch's,
  on the workloads' shapes). The *floor* of a workload is the FLOPs of its matrix products divided
  by the best rate measured, so every figure says how close to the hardware it runs.
- ``knn``: ``KNearestNeighbor.predict`` (50,000 train x 2,000 queries, k = 10, float32) against
  faiss-cpu ``IndexFlatL2`` + the same vote and scikit-learn ``KNeighborsClassifier(brute)``;
  on a CUDA machine also xpml on CuPy and ``torch.cdist`` + ``topk`` at full CIFAR-10 scale.
  Peak memory is the resident-set high-water mark above the level before the call
  (``/proc/self/clear_refs``), which sees BLAS buffers that tracemalloc misses.
- ``net``: ``TwoLayerNet.train`` (hidden 100, batch 200) against the identical loop in PyTorch
  (same initial weights, same minibatch indices, float32, the same per-epoch evaluation).
- ``linear``: ``LinearSVM`` / ``Softmax`` training against the same loop in PyTorch.
- ``shim``: xpml's NumPy backend against the same math written directly in NumPy.

Every section runs the tools interleaved (A B C, C B A, ...) after a warm-up; each row gives the
median and best time, and each ratio is the median of the per-round ratios, which is robust to
a load that drifts during the run. Threads: every library uses all cores (the machine's count).

Data: CIFAR-10 from ``--data``, ``$XPML_CIFAR10``, ``../shared/data/`` (the original
``cifar-10-batches-py`` layout, or the JPEG archive ``cifar10-jpeg.npz`` decoded in memory) or
``/tmp/cifar10``; otherwise random data of the same shapes, and the output says so.

Unless ``--no-record`` is given, the figures are appended to ``RESULTS.md`` under
``## Performance (issue 6)`` with the date, the machine, the command and the load average.

About OPENBLAS_CORETYPE: this machine's environment forces the Haswell kernel because old
OpenBLAS builds misdetect the CPU. Unset it in the benchmark command only (as above) so NumPy's
current OpenBLAS picks its own kernel. faiss-cpu bundles OpenBLAS 0.3.15, which then falls back
to a generic (SSE) kernel; so that faiss is measured at its best, its library is loaded with
``--faiss-coretype`` (default SkylakeX, the fastest kernel it has for this CPU, checked against
an exact reference before timing). Every kernel in use is printed.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import os
import pathlib
import platform
import shlex
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

import numpy as np  # noqa: E402  (loaded before faiss on purpose: see load_faiss)

from .. import backend  # noqa: E402

SECTIONS = ("floor", "knn", "net", "linear", "shim")
# Wall-clock time by default; --clock cpu (process CPU time of all threads) compares code paths
# while other jobs load the machine, and is never the recorded figure of a target.
CLOCK = time.perf_counter
THREADS = [os.cpu_count() or 1]
MiB = 2**20

# ---------------------------------------------------------------------------------------------
# Output


class Report:
    """Collects the rows printed during a run so they can be appended to RESULTS.md."""

    def __init__(self):
        self.lines: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def row(self, section: str, tool: str, value: str, ratio: str = "", note: str = "") -> None:
        self.say(f"| {section:<8} | {tool:<34} | {value:>22} | {ratio:<34} | {note} |")

    def header(self) -> None:
        self.say(f"| {'section':<8} | {'tool':<34} | {'time (median / best)':>22} | {'ratio':<34} | note |")
        self.say(f"|{'-' * 10}|{'-' * 36}|{'-' * 24}|{'-' * 36}|------|")


def fmt_s(t: float) -> str:
    if t >= 1.0:
        return f"{t:.3f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3f} ms"
    return f"{t * 1e6:.1f} us"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_model() -> str:
    return backend.get_backend("numpy").device_name


def cupy_missing(rep: Report, what: str) -> bool:
    """Whether CuPy is unusable here; if so, say that ``what`` is skipped and why."""
    status = {s.name: s for s in backend.list_backends()}["cupy"]
    if not status.usable:
        rep.say(f"{what} on a CUDA GPU: SKIPPED (cupy: {status.reason})")
    return not status.usable


# ---------------------------------------------------------------------------------------------
# Timing


def _sync_all(out=None) -> None:
    backend.synchronize(out)
    backend.synchronize(None)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class Tool:
    """A contender: ``prepare()`` (untimed) returns the callable that is timed."""

    def __init__(self, name, prepare, *, repeats=None, warmup=1):
        self.name, self.prepare, self.repeats, self.warmup = name, prepare, repeats, warmup
        self.times: list[float] = []
        self.peak_mib: float | None = None
        self.out = None


def _rss_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def run_tools(tools: list[Tool], repeats: int, *, memory: bool = False) -> None:
    """Warm each tool up, then time them interleaved, reversing the order every round."""
    for t in tools:
        for _ in range(t.warmup):
            fn = t.prepare()
            t.out = fn()
            _sync_all(t.out)
    rounds = max([repeats] + [t.repeats or 0 for t in tools])
    for r in range(rounds):
        order = tools if r % 2 == 0 else tools[::-1]
        for t in order:
            if len(t.times) >= (t.repeats or repeats):
                continue
            fn = t.prepare()
            gc.collect()
            measure_mem = memory and _rss_reset()
            before = _status_kib("VmRSS") if measure_mem else 0
            _sync_all()
            t0 = CLOCK()
            out = fn()
            _sync_all(out)
            t.times.append(CLOCK() - t0)
            if measure_mem:
                peak = (_status_kib("VmHWM") - before) / 1024
                t.peak_mib = peak if t.peak_mib is None else max(t.peak_mib, peak)
            t.out = out
            del out


def paired_ratio(a: Tool, b: Tool) -> float:
    """Median over rounds of a's time / b's time (rounds where both ran)."""
    n = min(len(a.times), len(b.times))
    return statistics.median(x / y for x, y in zip(a.times[:n], b.times[:n], strict=True))


def timing(t: Tool, per: int = 1) -> str:
    return f"{fmt_s(statistics.median(t.times) / per)} / {fmt_s(min(t.times) / per)}"


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x (target <= {target:.2f}x: {'met' if ratio <= target else 'MISSED'})"


# ---------------------------------------------------------------------------------------------
# Peers


def load_faiss(coretype: str):
    """Import faiss with its bundled OpenBLAS on ``coretype`` ("auto": OpenBLAS's own detection).

    OpenBLAS reads OPENBLAS_CORETYPE when it is loaded; NumPy's copy is already loaded, so setting
    it here affects faiss's copy only.
    """
    saved = os.environ.get("OPENBLAS_CORETYPE")
    if coretype != "auto":
        os.environ["OPENBLAS_CORETYPE"] = coretype
    try:
        import faiss
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_CORETYPE", None)
        else:
            os.environ["OPENBLAS_CORETYPE"] = saved
    faiss.omp_set_num_threads(THREADS[0])
    return faiss


def optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        return exc


def blas_kernels() -> list[str]:
    tpc = optional("threadpoolctl")
    if isinstance(tpc, Exception):
        return [f"threadpoolctl not installed ({tpc}); BLAS kernels unknown"]
    out = []
    for info in tpc.threadpool_info():
        if info.get("user_api") != "blas":
            continue
        lib = pathlib.Path(info["filepath"]).name
        owner = next((p for p in pathlib.Path(info["filepath"]).parts if p.endswith(".libs")), "?")
        out.append(f"{owner.removesuffix('.libs')}: {info.get('internal_api')} {info.get('version')} "
                   f"kernel {info.get('architecture', '?')}, {info.get('num_threads')} threads ({lib})")
    torch = sys.modules.get("torch")
    if torch is not None:
        blas = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
        out.append(f"torch {torch.__version__}: {blas}, CPU capability "
                   f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")
    return out


# ---------------------------------------------------------------------------------------------
# Data


def _load_batches(folder: pathlib.Path):
    from ..backend.io import load_restricted_pickle

    def one(name):
        d = load_restricted_pickle(folder / name)
        return np.asarray(d["data"], dtype=np.uint8), np.asarray(d["labels"], dtype=np.int64)

    parts = [one(f"data_batch_{i}") for i in range(1, 6)]
    Xte, yte = one("test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), Xte, yte


def _decode_npz(path: pathlib.Path):
    """The JPEG archive in ../shared/data, decoded and ordered exactly as its make_cifar10.py does."""
    spec = importlib.util.spec_from_file_location("_make_cifar10", path.parent / "make_cifar10.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    npz = np.load(path)
    pixels = mod.decode(npz)
    labels, split = npz["labels"].astype(np.int64), npz["split"]
    rng = np.random.RandomState(0)
    train = np.flatnonzero(split == 0)
    train = train[rng.permutation(len(train))]
    test = np.flatnonzero(split == 1)
    test = test[rng.permutation(len(test))]
    return pixels[train], labels[train], pixels[test], labels[test]


def find_cifar(explicit: str | None):
    """(X_train, y_train, X_test, y_test) as uint8 / int64 host arrays and a description, or None."""
    candidates = [explicit, os.environ.get("XPML_CIFAR10"), str(ROOT.parent / "shared" / "data"), "/tmp/cifar10"]
    candidates = [pathlib.Path(c) for c in candidates if c]
    # The original layout loads in a second; decoding the JPEG archive takes a minute on 2 cores.
    for p in candidates:
        for folder in (p, p / "cifar-10-batches-py"):
            if (folder / "data_batch_1").is_file() and (folder / "test_batch").is_file():
                return _load_batches(folder), f"CIFAR-10 (original layout) from {folder}"
    for p in candidates:
        if (p / "cifar10-jpeg.npz").is_file() and (p / "make_cifar10.py").is_file():
            try:
                return _decode_npz(p / "cifar10-jpeg.npz"), f"CIFAR-10 decoded from {p / 'cifar10-jpeg.npz'}"
            except ImportError as exc:  # pillow missing
                print(f"note: cannot decode {p / 'cifar10-jpeg.npz'} ({exc})")
    return None


class Data:
    """Float32, mean-subtracted data for the workloads, on the host."""

    def __init__(self, args):
        found = None if args.quick else find_cifar(args.data)
        if found is None:
            D = 3072 if not args.quick else 256
            n_train, n_test = (50000, 10000) if not args.quick else (2000, 400)
            rng = np.random.default_rng(0)
            Xtr = rng.integers(0, 256, (n_train, D), dtype=np.uint8)
            ytr = rng.integers(0, 10, n_train)
            Xte = rng.integers(0, 256, (n_test, D), dtype=np.uint8)
            yte = rng.integers(0, 10, n_test)
            why = ("--quick" if args.quick
                   else "no CIFAR-10 found in --data, $XPML_CIFAR10, ../shared/data or /tmp/cifar10")
            self.source = f"RANDOM data of CIFAR-10's shapes, not CIFAR-10 ({why}): accuracies are meaningless"
            self.real = False
        else:
            (Xtr, ytr, Xte, yte), self.source = found
            self.real = True
        Xtr = Xtr.astype(np.float32)
        Xte = Xte.astype(np.float32)
        n_val = 1000 if not args.quick else 100
        self.X_all, self.y_all = Xtr, ytr  # kNN: the whole training set
        self.X_test, self.y_test = Xte, yte
        mean = Xtr[:-n_val].mean(axis=0)
        # The course's split: the last 1,000 training images are the validation set.
        self.X_train = Xtr[:-n_val] - mean
        self.y_train = ytr[:-n_val]
        self.X_val = Xtr[-n_val:] - mean
        self.y_val = ytr[-n_val:]
        self.X_test_c = Xte[:1000] - mean
        self.y_test_c = yte[:1000]


# ---------------------------------------------------------------------------------------------
# The floor


def gemm_rates(rep: Report, args, data: Data) -> float:
    """Measure float32 GEMM rates; return the best (GFLOP/s), the machine's rate for the floors."""
    D = data.X_train.shape[1]
    rng = np.random.default_rng(1)
    big = (1024, D, 16384) if not args.quick else (256, D, 1024)
    shapes = {
        "large (kNN chunk)": big,
        "net forward X W1": (200, D, 100),
        "net backward X^T dH": (D, 200, 100),
    }
    torch = optional("torch")
    best = 0.0
    for label, (m, k, n) in shapes.items():
        A = rng.standard_normal((m, k), dtype=np.float32)
        B = rng.standard_normal((k, n), dtype=np.float32)
        flops = 2 * m * k * n
        reps = max(3, min(200, int(2e10 // flops)))
        contenders = [("numpy", lambda A=A, B=B: A @ B)]
        if not isinstance(torch, Exception):
            At, Bt = torch.from_numpy(A), torch.from_numpy(B)
            contenders.append(("torch", lambda At=At, Bt=Bt: At @ Bt))
        for lib, f in contenders:
            f()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            rate = flops / min(ts) / 1e9
            if label.startswith("large"):
                best = max(best, rate)
            rep.row("floor", f"{lib} sgemm {m}x{k}x{n}", fmt_s(min(ts)), f"{rate:.0f} GFLOP/s", label)
    rep.say(f"machine float32 matrix-product rate (best large GEMM): {best:.0f} GFLOP/s")
    return best


def net_flops(B, D, H, C):
    # forward X W1, h W2; backward h^T ds, ds W2^T, X^T dh
    return 2 * B * D * H + 2 * B * H * C + 2 * B * H * C + 2 * B * C * H + 2 * B * D * H


# ---------------------------------------------------------------------------------------------
# kNN


def knn_vote(labels_of_neighbours: np.ndarray, num_classes: int) -> np.ndarray:
    """Majority vote with ties to the smaller label, as xpml's (and the course's) kNN does."""
    counts = np.zeros((labels_of_neighbours.shape[0], num_classes), dtype=np.int64)
    rows = np.repeat(np.arange(labels_of_neighbours.shape[0]), labels_of_neighbours.shape[1])
    np.add.at(counts, (rows, labels_of_neighbours.ravel()), 1)
    return np.argmax(counts, axis=1)


def bench_knn(rep: Report, args, data: Data, rate: float | None):
    classifiers = optional("xpml.classifiers")
    Knn = getattr(classifiers, "KNearestNeighbor", None) if not isinstance(classifiers, Exception) else None
    Xtr, ytr = data.X_all, data.y_all
    Q = 2000 if not args.quick else 100
    k = 10
    Xq = data.X_test[:Q]
    M, D = Xtr.shape
    C = int(ytr.max()) + 1
    rep.say(f"\n### kNN predict: {M} train x {Q} queries, D = {D}, k = {k}, float32")
    flops = 2 * Q * M * D
    tools = []
    if Knn is None:
        rep.say("xpml kNN: SKIPPED (classifiers.KNearestNeighbor is not there yet)")
    else:
        budget = args.knn_budget * MiB
        knn = Knn(memory_budget=budget)
        knn.train(Xtr, ytr)
        tools.append(Tool("xpml (numpy)", lambda: lambda: knn.predict(Xq, k=k)))
    faiss = None if _faiss_missing() else load_faiss(args.faiss_coretype)
    if faiss is None:
        rep.say("faiss-cpu: SKIPPED (not installed: pip install -e '.[bench]')")
    else:
        index = faiss.IndexFlatL2(D)
        index.add(Xtr)
        # Check faiss's BLAS kernel computes the right neighbours before timing it.
        _, I = index.search(Xq[:20], k)
        exact = (Xtr.astype(np.float64) ** 2).sum(1)[None] - 2 * Xq[:20].astype(np.float64) @ Xtr.T.astype(np.float64)
        ref = np.sort(np.argsort(exact, axis=1, kind="stable")[:, :k], axis=1)
        agree = float((np.sort(I, axis=1) == ref).mean())
        rep.say(f"faiss neighbour check on 20 queries against float64: {agree:.3f} of neighbours agree")
        tools.append(Tool("faiss-cpu IndexFlatL2 + vote",
                          lambda: lambda: knn_vote(ytr[index.search(Xq, k)[1]], C)))
    sk = optional("sklearn.neighbors")
    if isinstance(sk, Exception):
        rep.say("scikit-learn: SKIPPED (not installed)")
    else:
        clf = sk.KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(Xtr, ytr)
        slow = not args.quick
        tools.append(Tool("scikit-learn brute", lambda: lambda: clf.predict(Xq),
                          repeats=min(args.repeats, 2) if slow else None, warmup=0 if slow else 1))
    if not tools:
        return
    # The floor measured beside the contenders: the same products alone, in the training-row
    # blocks that ran fastest here (all queries against 6,250 rows at a time), results discarded.
    step = 6250 if not args.quick else 500

    def products():
        for s in range(0, M, step):
            Xq @ Xtr[s:s + step].T

    tools.append(Tool("matrix products alone (floor)", lambda: products))
    run_tools(tools, args.repeats, memory=True)
    by = {t.name: t for t in tools}
    gemm = tools.pop()
    floor = min(gemm.times)
    rep.say(f"kNN floor, measured: the {flops / 1e9:.0f} GFLOP of products alone take {timing(gemm)} "
            f"({flops / floor / 1e9:.0f} GFLOP/s)" + (f"; at the best rate measured above, {rate:.0f} GFLOP/s, "
                                                        f"{fmt_s(flops / (rate * 1e9))}" if rate else ""))
    rep.header()
    for t in tools:
        ratio = ""
        if t.name.startswith("xpml") and "faiss-cpu IndexFlatL2 + vote" in by:
            ratio = "vs faiss " + verdict(paired_ratio(t, by["faiss-cpu IndexFlatL2 + vote"]), 0.9)
        elif not t.name.startswith("xpml") and "xpml (numpy)" in by:
            ratio = f"xpml / this = {paired_ratio(by['xpml (numpy)'], t):.2f}x"
        note = f"peak +{t.peak_mib:.0f} MiB RSS" if t.peak_mib is not None else ""
        if floor:
            note += f"; {floor / min(t.times):.0%} of floor"
        rep.row("knn", t.name, timing(t), ratio, note)
    if "xpml (numpy)" in by:
        rep.say(f"xpml kNN memory budget {args.knn_budget} MiB; peak RSS above the start of the call "
                f"{by['xpml (numpy)'].peak_mib:.0f} MiB")
        pred = backend.to_numpy(by["xpml (numpy)"].out)
        for t in tools:
            if not t.name.startswith("xpml"):
                rep.say(f"labels: xpml agrees with {t.name} on {float((pred == np.asarray(t.out)).mean()):.4f} "
                        "(ties between equally distant neighbours may differ)")
        if data.real:
            rep.say(f"xpml kNN accuracy on these {Q} test images: {float((pred == data.y_test[:Q]).mean()):.4f}")


def bench_knn_gpu(rep: Report, args, data: Data):
    status = {s.name: s for s in backend.list_backends()}["cupy"]
    torch = optional("torch")
    torch_cuda = not isinstance(torch, Exception) and torch.cuda.is_available()
    classifiers = optional("xpml.classifiers")
    Knn = getattr(classifiers, "KNearestNeighbor", None) if not isinstance(classifiers, Exception) else None
    if not status.usable and not torch_cuda:
        rep.say(f"kNN on a CUDA GPU: SKIPPED (cupy: {status.reason}; torch: no CUDA device)")
        return
    Q = data.X_test.shape[0] if not args.quick else 100
    Xtr, ytr, Xq = data.X_all, data.y_all, data.X_test[:Q]
    k, C = 10, int(ytr.max()) + 1
    rep.say(f"\n### kNN predict on the GPU: {Xtr.shape[0]} train x {Q} queries (full CIFAR-10 scale), k = {k}")
    tools = []
    if status.usable and Knn is not None:
        bk = backend.get_backend("cupy")
        Xg, yg, Qg = bk.asarray(Xtr), bk.asarray(ytr), bk.asarray(Xq)
        knn = Knn(memory_budget=args.knn_budget * MiB)
        knn.train(Xg, yg)
        tools.append(Tool("xpml (cupy)", lambda: lambda: knn.predict(Qg, k=k)))
    else:
        rep.say(f"xpml on cupy: SKIPPED ({status.reason or 'KNearestNeighbor missing'})")
    if torch_cuda:
        dev = torch.device("cuda")
        Xt, yt, Qt = torch.from_numpy(Xtr).to(dev), torch.from_numpy(ytr).to(dev), torch.from_numpy(Xq).to(dev)

        def torch_knn():
            out = []
            for s in range(0, Q, 2000):
                d = torch.cdist(Qt[s:s + 2000], Xt)
                idx = torch.topk(d, k, dim=1, largest=False).indices
                votes = torch.nn.functional.one_hot(yt[idx], C).sum(1)
                out.append(torch.argmax(votes, dim=1))
            return torch.cat(out)

        tools.append(Tool("torch.cdist + topk (cuda)", lambda: torch_knn))
    else:
        rep.say("torch on CUDA: SKIPPED (no CUDA device for torch)")
    pool = None
    if status.usable:
        import cupy

        # The pool keeps what it reserved; after freeing its idle blocks, growth above the data's
        # own arrays is the high-water mark of prediction's temporaries.
        pool = cupy.get_default_memory_pool()
        pool.free_all_blocks()
        base = pool.total_bytes()
    if torch_cuda:
        torch.cuda.reset_peak_memory_stats()
        torch_base = torch.cuda.memory_allocated()
    run_tools(tools, args.repeats)
    rep.header()
    by = {t.name: t for t in tools}
    for t in tools:
        ratio = ""
        if t.name == "xpml (cupy)" and "torch.cdist + topk (cuda)" in by:
            ratio = "vs torch " + verdict(paired_ratio(t, by["torch.cdist + topk (cuda)"]), 1.0)
        note = ""
        if t.name == "xpml (cupy)":
            note = (f"peak temporaries {(pool.total_bytes() - base) / MiB:.0f} MiB "
                    f"(budget {args.knn_budget} MiB)")
        elif torch_cuda:
            note = f"peak temporaries {(torch.cuda.max_memory_allocated() - torch_base) / MiB:.0f} MiB"
        rep.row("knn-gpu", t.name, timing(t), ratio, note)


# ---------------------------------------------------------------------------------------------
# Two-layer net


def torch_twolayer(torch, X, y, Xv, yv, params, idx_blocks, *, lr, decay, reg, num_iters, batch, device):
    """The TwoLayerNet.train loop in PyTorch with autograd, as a user would write it."""
    W1, b1, W2, b2 = (torch.tensor(params[k], device=device, requires_grad=True) for k in ("W1", "b1", "W2", "b2"))
    N = X.shape[0]
    per_epoch = max(N // batch, 1)
    losses, val_acc = [], []
    for it in range(num_iters):
        idx = idx_blocks[it]
        Xb, yb = X[idx], y[idx]
        s = torch.relu(Xb @ W1 + b1) @ W2 + b2
        loss = torch.nn.functional.cross_entropy(s, yb) + reg * ((W1 * W1).sum() + (W2 * W2).sum())
        loss.backward()
        with torch.no_grad():
            for p in (W1, b1, W2, b2):
                p -= lr * p.grad
                p.grad = None
        losses.append(loss.detach())
        if (it + 1) % per_epoch == 0:
            with torch.no_grad():
                # The same per-epoch work as xpml: accuracy on the batch and on the validation set.
                (torch.argmax(torch.relu(Xb @ W1 + b1) @ W2 + b2, 1) == yb).float().mean()
                val_acc.append((torch.argmax(torch.relu(Xv @ W1 + b1) @ W2 + b2, 1) == yv).float().mean())
            lr *= decay
    return torch.stack(losses).cpu().numpy(), (W1, b1, W2, b2)


def bench_net(rep: Report, args, data: Data, rate: float | None, bk_name: str = "numpy"):
    nets = optional("xpml.nets")
    Net = getattr(nets, "TwoLayerNet", None) if not isinstance(nets, Exception) else None
    torch = optional("torch")
    gpu = bk_name == "cupy"
    H, B, C = (100, 200, 10) if not args.quick else (32, 50, 10)
    iters = args.net_iters if not args.quick else 20
    X, y, Xv, yv = data.X_train, data.y_train, data.X_val, data.y_val
    N, D = X.shape
    hp = dict(lr=1e-3, decay=0.95, reg=0.25)
    where = "GPU" if gpu else "CPU"
    rep.say(f"\n### Two-layer net on the {where}: N = {N}, D = {D}, H = {H}, batch {B}, {iters} iterations, "
            f"lr {hp['lr']}, decay {hp['decay']}, reg {hp['reg']}, float32")
    if gpu and cupy_missing(rep, "net"):
        return
    if Net is None:
        rep.say("xpml TwoLayerNet: SKIPPED (nets.TwoLayerNet is not there yet)")
        return
    bk = backend.get_backend(bk_name)
    Xb, yb, Xvb, yvb = bk.asarray(X), bk.asarray(y), bk.asarray(Xv), bk.asarray(yv)
    tools = []
    results = {}

    def xpml_prepare():
        net = Net(D, H, C, std=1e-4, seed=0, xp=bk)

        def run():
            hist = net.train(Xb, yb, Xvb, yvb, learning_rate=hp["lr"], learning_rate_decay=hp["decay"],
                             reg=hp["reg"], num_iters=iters, batch_size=B)
            results["xpml"] = (net, hist)
            return net.params["W1"]

        return run

    tools.append(Tool(f"xpml ({bk_name})", xpml_prepare))
    # The torch loop starts from the same weights and draws the same minibatches: a twin net with
    # the same seed hands over its initial parameters and then its generator's index blocks
    # (TwoLayerNet draws 1000 iterations of indices per call, after the weights).
    twin = Net(D, H, C, std=1e-4, seed=0, xp=backend.get_backend("numpy"))
    params = {k: backend.to_numpy(v) for k, v in twin.params.items()}
    blocks = [backend.to_numpy(twin._rng.choice(N, (min(1000, iters - s), B))) for s in range(0, iters, 1000)]
    idx_all = np.concatenate(blocks)
    torch_dev = None
    if isinstance(torch, Exception):
        rep.say(f"PyTorch: SKIPPED (not installed: {torch})")
    elif gpu and not torch.cuda.is_available():
        rep.say("PyTorch on CUDA: SKIPPED (torch has no CUDA device)")
    else:
        torch_dev = torch.device("cuda" if gpu else "cpu")
        Xt, yt = torch.from_numpy(X).to(torch_dev), torch.from_numpy(y).to(torch_dev)
        Xvt, yvt = torch.from_numpy(Xv).to(torch_dev), torch.from_numpy(yv).to(torch_dev)
        idx_t = torch.from_numpy(idx_all).to(torch_dev)

        def torch_prepare():
            def run():
                results["torch"] = torch_twolayer(torch, Xt, yt, Xvt, yvt, params, idx_t, lr=hp["lr"],
                                                  decay=hp["decay"], reg=hp["reg"], num_iters=iters, batch=B,
                                                  device=torch_dev)
                return None

            return run

        tools.append(Tool(f"PyTorch ({torch_dev.type}, autograd)", torch_prepare))
    run_tools(tools, args.repeats)
    rep.header()
    xt = tools[0]
    floor = net_flops(B, D, H, C) / (rate * 1e9) if rate and not gpu else None
    note = f"{floor / (min(xt.times) / iters):.0%} of floor" if floor else ""
    if len(tools) > 1:
        target = 1.0 if gpu else 0.8
        rep.row("net", xt.name, timing(xt, iters) + "/it", "vs torch " + verdict(paired_ratio(xt, tools[1]), target),
                note)
        rep.row("net", tools[1].name, timing(tools[1], iters) + "/it", "",
                f"{floor / (min(tools[1].times) / iters):.0%} of floor" if floor else "")
    else:
        rep.row("net", xt.name, timing(xt, iters) + "/it", "", note)
    if floor:
        rep.say(f"net floor: {net_flops(B, D, H, C) / 1e6:.0f} MFLOP per iteration / {rate:.0f} GFLOP/s = "
                f"{fmt_s(floor)} per iteration")
    net, hist = results["xpml"]
    Xtest = bk.asarray(data.X_test_c)
    acc = float(backend.to_numpy(net.predict(Xtest) == bk.asarray(data.y_test_c)).mean())
    val = hist["val_acc_history"][-1] if hist["val_acc_history"] else float("nan")
    line = f"accuracy after {iters} iterations: xpml val {val:.4f}, test {acc:.4f}"
    if "torch" in results:
        tl, (W1, b1, W2, b2) = results["torch"]
        with torch.no_grad():
            Xtt = torch.from_numpy(data.X_test_c).to(torch_dev)
            pred = torch.argmax(torch.relu(Xtt @ W1 + b1) @ W2 + b2, 1).cpu().numpy()
            vpred = torch.argmax(torch.relu(Xvt @ W1 + b1) @ W2 + b2, 1).cpu().numpy()
        line += f"; PyTorch val {float((vpred == yv).mean()):.4f}, test {float((pred == data.y_test_c).mean()):.4f}"
        xl = np.asarray(hist["loss_history"])
        n = min(10, len(xl))
        line += f"; first {n} losses differ by at most {float(np.max(np.abs(xl[:n] - tl[:n]))):.2e} (same run)"
    rep.say(line)


# ---------------------------------------------------------------------------------------------
# Linear classifiers


def torch_linear(torch, kind, X, y, W0, idx, *, lr, reg, device):
    W = torch.tensor(W0, device=device, requires_grad=True)
    losses = []
    for it in range(idx.shape[0]):
        Xb, yb = X[idx[it]], y[idx[it]]
        s = Xb @ W
        if kind == "svm":
            correct = s.gather(1, yb[:, None])
            margins = torch.clamp(s - correct + 1.0, min=0.0)
            # The j = y_i terms are exactly 1 each: subtract them rather than mask.
            data_loss = (margins.sum() - Xb.shape[0]) / Xb.shape[0]
        else:
            data_loss = torch.nn.functional.cross_entropy(s, yb)
        loss = data_loss + reg * (W * W).sum()
        loss.backward()
        with torch.no_grad():
            W -= lr * W.grad
            W.grad = None
        losses.append(loss.detach())
    return torch.stack(losses).cpu().numpy(), W.detach()


def bench_linear(rep: Report, args, data: Data, rate: float | None, bk_name: str = "numpy"):
    classifiers = optional("xpml.classifiers")
    torch = optional("torch")
    gpu = bk_name == "cupy"
    iters = args.linear_iters if not args.quick else 20
    B = 200 if not args.quick else 50
    lr, reg = 1e-7, 2.5e4
    ones = np.ones((data.X_train.shape[0], 1), np.float32)
    X = np.hstack([data.X_train, ones])  # the bias trick
    Xte = np.hstack([data.X_test_c, np.ones((data.X_test_c.shape[0], 1), np.float32)])
    y = data.y_train
    N, D = X.shape
    C = 10
    where = "GPU" if gpu else "CPU"
    rep.say(f"\n### Linear classifiers on the {where}: N = {N}, D = {D} (bias column), batch {B}, {iters} iterations, "
            f"lr {lr}, reg {reg}, float32")
    if gpu and cupy_missing(rep, "linear classifiers"):
        return
    bk = backend.get_backend(bk_name)
    Xb, yb = bk.asarray(X), bk.asarray(y)
    rep.header()
    for kind, cls_name in (("svm", "LinearSVM"), ("softmax", "Softmax")):
        Cls = getattr(classifiers, cls_name, None) if not isinstance(classifiers, Exception) else None
        if Cls is None:
            rep.say(f"xpml {cls_name}: SKIPPED (classifiers.{cls_name} is not there yet)")
            continue
        results = {}

        def xpml_prepare(Cls=Cls, kind=kind, results=results):
            clf = Cls(seed=0)

            def run():
                results["xpml"] = (clf, clf.train(Xb, yb, learning_rate=lr, reg=reg, num_iters=iters, batch_size=B))
                return clf.W

            return run

        tools = [Tool(f"xpml {cls_name} ({bk_name})", xpml_prepare)]
        # Same initial W and minibatches: LinearClassifier draws W = 0.001 * randn(D, C), then one
        # block of indices for up to 2**20 // batch_size iterations.
        g = backend.Generator(0)
        W0 = backend.to_numpy(0.001 * g.normal((D, C), dtype="float32"))
        idx = backend.to_numpy(g.choice(N, (iters, B), replace=True))
        if isinstance(torch, Exception) or (gpu and not torch.cuda.is_available()):
            rep.say("PyTorch: SKIPPED (" + ("not installed" if isinstance(torch, Exception) else "no CUDA") + ")")
        else:
            dev = torch.device("cuda" if gpu else "cpu")
            Xt, yt, idxt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev), torch.from_numpy(idx).to(dev)

            def torch_prepare(kind=kind, Xt=Xt, yt=yt, idxt=idxt, dev=dev, results=results, W0=W0):
                def run():
                    results["torch"] = torch_linear(torch, kind, Xt, yt, W0, idxt, lr=lr, reg=reg, device=dev)

                return run

            tools.append(Tool(f"PyTorch {kind} ({dev.type}, autograd)", torch_prepare))
        run_tools(tools, args.repeats)
        floor = 2 * (2 * B * D * C) / (rate * 1e9) if rate and not gpu else None
        x = tools[0]
        note = f"{floor / (min(x.times) / iters):.0%} of floor" if floor else ""
        ratio = "vs torch " + verdict(paired_ratio(x, tools[1]), 1.0) if len(tools) > 1 else ""
        rep.row(kind, x.name, timing(x, iters) + "/it", ratio, note)
        if len(tools) > 1:
            rep.row(kind, tools[1].name, timing(tools[1], iters) + "/it", "",
                    f"{floor / (min(tools[1].times) / iters):.0%} of floor" if floor else "")
        clf, hist = results["xpml"]
        acc = float(backend.to_numpy(clf.predict(bk.asarray(Xte)) == bk.asarray(data.y_test_c)).mean())
        line = f"{kind}: xpml test accuracy {acc:.4f}"
        if "torch" in results:
            tl, W = results["torch"]
            tacc = float((np.argmax(Xte @ W.cpu().numpy(), 1) == data.y_test_c).mean())
            n = min(10, len(hist))
            diff = float(np.max(np.abs(np.asarray(hist[:n]) - tl[:n]) / np.abs(tl[:n])))
            line += f", PyTorch {tacc:.4f}; first {n} losses differ by at most {diff:.1e} relative (same run)"
        rep.say(line)


# ---------------------------------------------------------------------------------------------
# The shim's cost


def bench_shim(rep: Report, args, data: Data):
    """xpml's NumPy path against the same arithmetic written directly in NumPy."""
    from . import _bench_direct as direct

    rep.say("\n### The shim's cost: xpml on NumPy vs the same code on the plain numpy module (target <= 1.03x)")
    rep.say("('raw numpy': xpml's code with its namespace lookups returning numpy itself, i.e. without the shim;")
    rep.say(" 'course-style NumPy': the same formulas as a NumPy user writes them, for information)")
    rep.header()
    cases = direct.cases(data, quick=args.quick)
    if not cases:
        rep.say("shim: SKIPPED (none of the xpml functions it compares is there yet)")
    for name, xpml_fn, raw_fn, numpy_fn, per in cases:
        tools = [Tool(f"xpml {name}", lambda f=xpml_fn: f), Tool(f"raw numpy {name}", lambda f=raw_fn: f),
                 Tool(f"course-style NumPy {name}", lambda f=numpy_fn: f)]
        run_tools(tools, max(args.repeats, 5))
        rep.row("shim", tools[0].name, timing(tools[0], per), verdict(paired_ratio(tools[0], tools[1]), 1.03),
                f"{paired_ratio(tools[0], tools[2]):.2f}x course-style NumPy")
        rep.row("shim", tools[1].name, timing(tools[1], per), "", "")
        rep.row("shim", tools[2].name, timing(tools[2], per), "", "")


# ---------------------------------------------------------------------------------------------
# Recording


def record(path: pathlib.Path, rep: Report, command: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    heading = "## Performance (issue 6)"
    block = ["", f"### Benchmark run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Command: `{command}`", "", "```"] + rep.lines + ["```", ""]
    if heading not in text:
        text = text.rstrip("\n") + f"\n\n{heading}\n"
    path.write_text(text.rstrip("\n") + "\n" + "\n".join(block), encoding="utf-8")
    print(f"\nappended to {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    p.add_argument("--quick", action="store_true", help="tiny random shapes: a smoke run, not a figure")
    p.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    p.add_argument("--results", default=str(ROOT / "RESULTS.md"))
    p.add_argument("--repeats", type=int, default=3, help="timed runs per tool, after one warm-up")
    p.add_argument("--data", default=None, help="a folder with cifar-10-batches-py or cifar10-jpeg.npz")
    p.add_argument("--faiss-coretype", default="SkylakeX",
                   help="OpenBLAS kernel for faiss's bundled OpenBLAS ('auto': its own detection)")
    p.add_argument("--knn-budget", type=int, default=256, help="xpml kNN memory_budget in MiB")
    p.add_argument("--net-iters", type=int, default=1000)
    p.add_argument("--linear-iters", type=int, default=1500)
    p.add_argument("--gpu", choices=("auto", "no", "only"), default="auto",
                   help="auto: also run the CUDA parts when a CUDA device is usable; only: just those")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every library (default: all cores); 1 compares code paths on a loaded machine")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall-clock time (the figures) or process CPU time (for comparing code on a loaded machine)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(SECTIONS))
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {SECTIONS}")

    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    threads = THREADS[0] = args.threads or os.cpu_count() or 1
    tpc = optional("threadpoolctl")
    if args.threads and not isinstance(tpc, Exception):
        tpc.threadpool_limits(threads)
    rep = Report()
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v not in os.environ]
    if unset:  # how the command was run matters: it decides NumPy's BLAS kernel
        command = "env " + " ".join(f"-u {v}" for v in unset) + " " + command
    env_note = ", ".join(f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ)
    torch = optional("torch")
    if not isinstance(torch, Exception):
        torch.set_num_threads(threads)
    if "knn" in only and not _faiss_missing():
        load_faiss(args.faiss_coretype)  # before anything else can import it with another kernel
    rep.say(f"xpml benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC")
    rep.say(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
            f"load average at start {load_average()}")
    rep.say(f"threads per library: {threads}; clock: {args.clock}"
            + ("" if args.clock == "wall" else " (CPU time: for comparing code paths, not a target figure)"))
    rep.say(f"python {platform.python_version()}, numpy {np.__version__}"
            + ("" if isinstance(torch, Exception) else f", torch {torch.__version__}")
            + (f", faiss {sys.modules['faiss'].__version__}" if sys.modules.get("faiss") else ""))
    rep.say("OPENBLAS env: " + (env_note or "unset (each OpenBLAS picks its own kernel)")
            + f"; faiss OpenBLAS kernel requested: {args.faiss_coretype}")
    for line in blas_kernels():
        rep.say("BLAS: " + line)
    data = Data(args)
    rep.say(f"data: {data.source}")

    cpu, gpu = args.gpu != "only", args.gpu != "no"
    wants_rate = cpu and ("floor" in only or "knn" in only or "net" in only or "linear" in only)
    rate = gemm_rates(rep, args, data) if wants_rate else None
    if "knn" in only:
        if cpu:
            bench_knn(rep, args, data, rate)
        if gpu:
            bench_knn_gpu(rep, args, data)
    if "net" in only:
        if cpu:
            bench_net(rep, args, data, rate)
        if gpu:
            bench_net(rep, args, data, None, "cupy")
    if "linear" in only:
        if cpu:
            bench_linear(rep, args, data, rate)
        if gpu:
            bench_linear(rep, args, data, None, "cupy")
    if "shim" in only and cpu:
        bench_shim(rep, args, data)
    rep.say(f"\nload average at end {load_average()}")
    if not args.no_record:
        record(pathlib.Path(args.results), rep, command)
    return 0


def _faiss_missing() -> bool:
    try:
        return importlib.util.find_spec("faiss") is None
    except ImportError:
        return True


if __name__ == "__main__":
    sys.exit(main())
