"""kNN figures: end to end against faiss and scikit-learn, on Dask against one process, and the
cluster model. ``xpml bench --only knn --backends numpy,torch`` records the end-to-end figures;
this script prints the same comparison with torch's exact and bfloat16 candidates side by side,
and the Dask and cluster figures. Run it on an idle machine:

    python scripts/bench_knn.py e2e --data DIR           # train + predict vs faiss, sklearn (CIFAR-10)
    python scripts/bench_knn.py e2e --clock cpu          # process CPU time: for a machine others share
    python scripts/bench_knn.py dask                     # 50,000 x 10,000, 2 local workers
    python scripts/bench_knn.py overlap                  # selection beside the next product?
    python scripts/bench_knn.py model --rate-tflops 300  # 1,000,000 x 3,072 on 8 GPUs
    python scripts/bench_knn.py e2e --quick              # a smoke run, not a figure

``e2e`` times what a user times: ``KNearestNeighbor().train(X, y)`` plus ``predict(q, k=10)``
(50,000 CIFAR-10 training rows, 2,000 queries, float32 pixels, k = 10) on NumPy and on torch
(``precision="exact"`` and the bfloat16 candidates of ``"auto"``), faiss-cpu ``IndexFlatL2``
``add`` plus ``search`` plus the same vote, and scikit-learn ``fit`` plus ``predict`` (brute);
all on ``--threads`` threads, interleaved, best and median of ``--repeats``, each split into its
two phases (train / add / fit, then the query); ratios are medians of the per-round ratios to
faiss. It also prints each xpml row's exact re-rank count (candidates per query) and checks that
every xpml variant returns the same labels. ``--clock cpu`` times the process's CPU time (all its
threads) instead of the wall clock: on a machine shared with other work the wall clock measures
the others too; CPU time does not, but it also counts threads spinning while they wait, so use it
with ``--threads 1`` for ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from xpml import backend
from xpml.classifiers import KNearestNeighbor
from xpml.classifiers.data_utils import load_CIFAR10
from xpml.cli.benchmarks.common import blas_info, cifar10_root, cpu_model, describe_blas, load_average
from xpml.cli.benchmarks.knn import knn_vote, load_faiss

_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_DEFAULT_RATE_TFLOPS = 100.0  # the model's rate when none was measured


def _data(args):
    root = cifar10_root(args.data, quick=args.quick)
    if root is None:
        rng = np.random.default_rng(0)
        n, d = (2000, 256) if args.quick else (50000, 3072)
        Xtr, ytr = rng.integers(0, 256, (n, d)).astype(np.float32), rng.integers(0, 10, n)
        Xte = rng.integers(0, 256, (max(args.queries, 10000 if not args.quick else 400), d)).astype(np.float32)
        return Xtr, ytr, Xte, "RANDOM pixels of CIFAR-10's shapes (not CIFAR-10)"
    Xtr, ytr, Xte, _ = (backend.to_numpy(a) for a in load_CIFAR10(root, dtype="float32"))
    flat = (np.ascontiguousarray(a.reshape(a.shape[0], -1)) for a in (Xtr, Xte))
    Xtr, Xte = flat
    return Xtr, np.asarray(ytr, dtype=np.int64), Xte, f"CIFAR-10 from {root}"


def _header(args, source):
    print(f"# {' '.join(sys.argv)}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, {cpu_model()}, {args.threads} threads, load {load_average()}, "
          f"clock: {args.clock}")
    print(f"# data: {source}")
    for entry in blas_info():
        print(f"# BLAS: {describe_blas(entry)}")


def _limit_threads(n):
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def _rounds(tools, repeats, clock):
    """Run every tool ``repeats`` times, interleaved, order reversed every other round.

    A tool is a function returning its phases, ``[(name, callable), ...]``, run in order (the
    first phase builds what the next uses). Returns ``{tool: {phase: [seconds per round]}}``
    (phase ``"whole"`` is their sum) and each tool's last output.
    """
    times = {name: {} for name in tools}
    out = {}

    def run(name):
        result = None
        whole = 0.0
        for phase, fn in tools[name]():
            start = clock()
            result = fn()
            took = clock() - start
            whole += took
            times[name].setdefault(phase, []).append(took)
        times[name].setdefault("whole", []).append(whole)
        return result

    for name in tools:  # warm-up
        out[name] = run(name)
    for name in tools:
        times[name] = {}
    for r in range(repeats):
        for name in (list(tools) if r % 2 == 0 else list(tools)[::-1]):
            out[name] = run(name)
    return times, out


def e2e(args):
    Xtr, ytr, Xte, source = _data(args)
    Xq = Xte[: args.queries]
    k = 10
    faiss = None if args.no_faiss else load_faiss(args.faiss_coretype, args.threads)  # before anything else
    _limit_threads(args.threads)
    _header(args, source)
    print(f"kNN end to end: {Xtr.shape[0]} train x {Xq.shape[0]} queries, D = {Xtr.shape[1]}, k = {k}, float32")
    tools, models = {}, {}

    def xpml_tool(name, bk, precision):
        X, y, Q = bk.asarray(Xtr), bk.asarray(ytr), bk.asarray(Xq)

        def phases():
            knn = KNearestNeighbor(precision=precision)
            models[name] = knn
            return [("train", lambda: knn.train(X, y)), ("predict", lambda: backend.to_numpy(knn.predict(Q, k)))]
        tools[name] = phases

    xpml_tool("xpml numpy", backend.get_backend("numpy"), "exact")
    try:
        tbk = backend.get_backend("torch")
    except backend.BackendUnavailableError as exc:
        print(f"torch: SKIPPED ({exc})")
    else:
        xpml_tool("xpml torch exact", tbk, "exact")
        xpml_tool("xpml torch auto", tbk, "auto")
    C = int(ytr.max()) + 1
    if faiss is not None:
        def faiss_phases():
            index = faiss.IndexFlatL2(Xtr.shape[1])
            return [("train", lambda: index.add(Xtr)),
                    ("predict", lambda: knn_vote(ytr[index.search(Xq, k)[1]], C))]

        tools["faiss IndexFlatL2"] = faiss_phases
    if not args.no_sklearn:
        from sklearn.neighbors import KNeighborsClassifier

        def sklearn_phases():
            clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute")
            return [("train", lambda: clf.fit(Xtr, ytr)), ("predict", lambda: clf.predict(Xq))]

        tools["scikit-learn brute"] = sklearn_phases
    times, out = _rounds(tools, args.repeats, _CLOCKS[args.clock])
    ref = times.get("faiss IndexFlatL2")
    print(f"{'tool':20s} {'best':>8s} {'median':>8s} {'/ faiss':>8s} {'train':>8s} {'predict':>8s}  notes (medians)")
    for name, ts in times.items():
        ratio = float("nan")
        if ref:
            ratio = statistics.median(a / b for a, b in zip(ts["whole"], ref["whole"], strict=True))
        note = ""
        if name in models:
            s = models[name].last_search_
            note = f"products {s.product}, {s.candidates_per_query:.2f} exact re-ranks per query (k = {k})"
        print(f"{name:20s} {min(ts['whole']):8.3f} {statistics.median(ts['whole']):8.3f} {ratio:8.2f} "
              f"{statistics.median(ts['train']):8.3f} {statistics.median(ts['predict']):8.3f}  {note}")
    labels = [out[n] for n in models]
    print("xpml variants give the same labels:", all((a == labels[0]).all() for a in labels))
    for name in tools:
        if name not in models:
            print(f"labels: xpml agrees with {name} on {float((out[name] == labels[0]).mean()):.4f} of queries")
    # Candidate counts of the bfloat16 path on data it does not hold exactly (mean-subtracted).
    if "xpml torch auto" in models and models["xpml torch auto"]._ts.precision_used == "bfloat16":
        mean = Xtr.mean(axis=0)
        knn = KNearestNeighbor(precision="bfloat16").train(tbk.asarray(Xtr - mean), tbk.asarray(ytr))
        knn.predict(tbk.asarray(Xq - mean), k)
        s = knn.last_search_
        print(f"bfloat16 on mean-subtracted pixels: {s.candidates_per_query:.2f} exact re-ranks per query, "
              f"predict {s.seconds:.3f} s (wall)")


def dask(args):
    import distributed

    Xtr, ytr, Xte, source = _data(args)
    Q = Xte[: args.dask_queries]
    _header(args, source)
    print(f"kNN on Dask: {Xtr.shape[0]} train x {Q.shape[0]} queries, k = 10, {args.workers} local worker "
          f"processes (1 thread each) against one process ({args.threads} threads)")
    _limit_threads(args.threads)
    knn = KNearestNeighbor().train(Xtr, ytr)
    start = time.perf_counter()
    d0, i0 = knn.kneighbors(Q, 10)
    one = time.perf_counter() - start
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        runs = []
        for _ in range(2):  # the first call also sends the shards
            start = time.perf_counter()
            d, i = knn.kneighbors(Q, 10, client=client)
            runs.append(time.perf_counter() - start)
        same = bool((backend.to_numpy(i) == backend.to_numpy(i0)).all() and (
            backend.to_numpy(d) == backend.to_numpy(d0)).all())
    block = max(1, knn.memory_budget // (4 * Q.shape[1] * 4))
    per_block = args.workers * (min(block, Q.shape[0]) * Q.shape[1] * 4 + min(block, Q.shape[0]) * 10 * 12)
    print(f"one process: {one:.3f} s; Dask first call (shards sent) {runs[0]:.3f} s, second {runs[1]:.3f} s "
          f"(overhead {runs[1] / one - 1:+.1%}); identical indices and distances: {same}")
    print(f"bytes moved per query block of {min(block, Q.shape[0])} rows: {per_block / 2**20:.1f} MiB "
          f"(queries to each worker, (value, index) of k per query back)")
    rate = 2 * Q.shape[0] * Xtr.shape[0] * Xtr.shape[1] / args.workers / runs[1] / 1e12
    print(f"measured per-shard rate: {rate:.3f} TFLOP/s (2 N M D / workers / time): pass it to "
          f"`model --rate-tflops` for a CPU cluster, or measure it on one GPU worker")


def overlap(args):
    """Whether running the next block's product in a second thread while this block's candidates
    are selected pays off here: the search's block loop, sequential against overlapped."""
    from concurrent.futures import ThreadPoolExecutor

    Xtr, _, Xte, source = _data(args)
    _limit_threads(args.threads)
    _header(args, source)
    scaled, sq = -2 * Xte[: args.queries], np.einsum("ij,ij->i", Xtr, Xtr)
    blocks = [slice(s, s + 8454) for s in range(0, Xtr.shape[0], 8454)]

    def select(key, b):  # what the search does with a key block: add, threshold, take candidates
        key += sq[b]
        size = key.shape[1] // 10  # the first block's threshold: the largest of 10 group minima
        limit = key[:, : 10 * size].reshape(key.shape[0], 10, size).min(axis=2).max(axis=1)[:, None]
        return sum(np.nonzero((key[g] <= limit[g]).ravel())[0].size for g in np.array_split(np.arange(
            key.shape[0]), max(1, key.shape[0] // 83)))

    def sequential():
        return sum(select(scaled @ Xtr[b].T, b) for b in blocks)

    def overlapped():
        with ThreadPoolExecutor(1) as pool:
            nxt, total = pool.submit(lambda b: scaled @ Xtr[b].T, blocks[0]), 0
            for i, b in enumerate(blocks):
                key = nxt.result()
                if i + 1 < len(blocks):
                    nxt = pool.submit(lambda b: scaled @ Xtr[b].T, blocks[i + 1])
                total += select(key, b)
            return total

    times, _ = _rounds({"sequential": lambda: [("run", sequential)], "overlapped": lambda: [("run", overlapped)]},
                       args.repeats, _CLOCKS[args.clock])
    seq, ovl = times["sequential"]["whole"], times["overlapped"]["whole"]
    ratio = statistics.median(a / b for a, b in zip(ovl, seq, strict=True))
    print(f"block loop, {scaled.shape[0]} queries x {Xtr.shape[0]} rows: sequential best {min(seq):.3f} s, "
          f"overlapped best {min(ovl):.3f} s, overlapped / sequential {ratio:.3f} (median of rounds)")


def model(args):
    """Time and memory of 1,000,000 x 3,072 float32 training rows over 8 GPU workers."""
    M, D, W, k, q = 1_000_000, 3072, 8, 10, args.block
    shard = M // W
    print(f"Model: {M:,} x {D:,} training rows (float32, {M * D * 4 / 2**30:.1f} GiB) on {W} GPU workers, "
          f"shards of {shard:,} rows ({shard * D * 4 / 2**30:.2f} GiB each; the bfloat16 product rounds on the "
          "fly, so no second copy).")
    flops = 2 * q * shard * D
    t_shard = flops / (args.rate_tflops * 1e12)
    rate_source = ("given" if args.rate_tflops != _DEFAULT_RATE_TFLOPS else
                   "assumed: a GPU's bfloat16 tensor-core rate; measure one worker and pass --rate-tflops")
    bytes_in = q * D * 4
    bytes_out = q * k * (4 + 8)
    t_net = (W * bytes_in + W * bytes_out) / (args.net_gbps * 1e9 / 8)
    key_mem = q * args.cols * 17
    print(f"Per query block of {q:,} rows: {bytes_in / 2**20:.1f} MiB of queries to each worker, "
          f"{bytes_out / 2**10:.0f} KiB of (value, index) back from each: {W * (bytes_in + bytes_out) / 2**20:.1f} MiB "
          f"through the driver's link, {t_net * 1e3:.1f} ms at {args.net_gbps:g} Gbit/s.")
    print(f"Each worker: {flops / 1e12:.2f} TFLOP per block, {t_shard * 1e3:.1f} ms at a per-shard rate "
          f"of {args.rate_tflops:g} TFLOP/s ({rate_source}); key blocks of {q:,} x {args.cols:,} entries "
          f"need {key_mem / 2**30:.2f} "
          f"GiB beside the shard. Re-ranking about 1.3 k pairs per query reads {q * 13 * D * 4 / 2**20:.0f} MiB.")
    total = max(t_shard, t_net)
    print(f"Expected: {total * 1e3:.1f} ms per block of {q:,} queries when the transfer overlaps the next "
          f"block's products ({t_shard + t_net:.3f} s if not); {10_000 / q * total:.2f} s for 10,000 queries.")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("figure", choices=["e2e", "dask", "overlap", "model"])
    p.add_argument("--data", help="CIFAR-10 folder (cifar-10-batches-py layout); default: the data cache")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--dask-queries", type=int, default=10000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--faiss-coretype", default="best", help="faiss's OpenBLAS kernel ('best': for this CPU)")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--no-faiss", action="store_true")
    p.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                   help="wall: elapsed time; cpu: this process's CPU time (a shared machine; see above)")
    p.add_argument("--quick", action="store_true", help="small random data: a smoke run, not a figure")
    p.add_argument("--rate-tflops", type=float, default=_DEFAULT_RATE_TFLOPS,
                   help="model: the per-shard product rate, measured on one worker (default: assumed)")
    p.add_argument("--net-gbps", type=float, default=100.0, help="model: the driver's network link")
    p.add_argument("--block", type=int, default=2048, help="model: queries per block")
    p.add_argument("--cols", type=int, default=65536, help="model: training columns per key block")
    args = p.parse_args(argv)
    if args.quick:
        args.queries, args.dask_queries, args.repeats = min(args.queries, 200), min(args.dask_queries, 400), 1
    {"e2e": e2e, "dask": dask, "overlap": overlap, "model": model}[args.figure](args)


if __name__ == "__main__":
    main()
