"""kNN figures: end to end against faiss and scikit-learn, on Dask against one process, and the
cluster model. Meant to be folded into ``xpml bench``; until then, run it on an idle machine:

    env -u OPENBLAS_CORETYPE python scripts/bench_knn.py e2e            # train + predict vs faiss, sklearn
    env -u OPENBLAS_CORETYPE python scripts/bench_knn.py dask           # 50,000 x 10,000, 2 local workers
    env -u OPENBLAS_CORETYPE python scripts/bench_knn.py overlap        # selection beside the next product?
    python scripts/bench_knn.py model --rate-tflops 300                 # 1,000,000 x 3,072 on 8 GPUs
    python scripts/bench_knn.py e2e --quick                             # a smoke run, not a figure

``e2e`` times what a user times: ``KNearestNeighbor().train(X, y)`` plus ``predict(q, k=10)``
(50,000 CIFAR-10 training rows, 2,000 queries, float32 pixels, k = 10) on NumPy and on torch
(``precision="exact"`` and the bfloat16 candidates of ``"auto"``), faiss-cpu ``IndexFlatL2``
``add`` plus ``search`` plus the same vote, and scikit-learn ``fit`` plus ``predict`` (brute);
all on ``--threads`` threads, interleaved, best and median of ``--repeats``; ratios are medians of
the per-round ratios to faiss. It also prints each xpml row's exact re-rank count (candidates per
query) and checks that every xpml variant returns the same labels.
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
from xpml.cli.bench import blas_kernels, cpu_model, find_cifar, knn_vote, load_average, load_faiss


def _data(args):
    found = None if args.quick else find_cifar(args.data)
    if found is None:
        rng = np.random.default_rng(0)
        n, d = (2000, 256) if args.quick else (50000, 3072)
        Xtr, ytr = rng.integers(0, 256, (n, d)).astype(np.float32), rng.integers(0, 10, n)
        Xte = rng.integers(0, 256, (max(args.queries, 10000 if not args.quick else 400), d)).astype(np.float32)
        return Xtr, ytr, Xte, "RANDOM pixels of CIFAR-10's shapes (not CIFAR-10)"
    (Xtr, ytr, Xte, _), source = found
    return Xtr.astype(np.float32), ytr, Xte.astype(np.float32), source


def _header(args, source):
    print(f"# {' '.join(sys.argv)}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, {cpu_model()}, {args.threads} threads, load {load_average()}")
    print(f"# data: {source}")
    for line in blas_kernels():
        print(f"# BLAS: {line}")


def _limit_threads(n):
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def _rounds(tools, repeats):
    """Run every tool ``repeats`` times, interleaved, order reversed every other round."""
    times = {name: [] for name in tools}
    out = {}
    for name, fn in tools.items():  # warm-up
        out[name] = fn()
    for r in range(repeats):
        for name in (list(tools) if r % 2 == 0 else list(tools)[::-1]):
            start = time.perf_counter()
            out[name] = tools[name]()
            times[name].append(time.perf_counter() - start)
    return times, out


def e2e(args):
    Xtr, ytr, Xte, source = _data(args)
    Xq = Xte[: args.queries]
    k = 10
    _limit_threads(args.threads)
    _header(args, source)
    print(f"kNN end to end: {Xtr.shape[0]} train x {Xq.shape[0]} queries, D = {Xtr.shape[1]}, k = {k}, float32")
    tools, models = {}, {}

    def xpml_tool(name, bk, precision):
        X, y, Q = bk.asarray(Xtr), bk.asarray(ytr), bk.asarray(Xq)

        def run():
            knn = KNearestNeighbor(precision=precision).train(X, y)
            pred = knn.predict(Q, k)
            models[name] = knn
            return backend.to_numpy(pred)
        tools[name] = run

    xpml_tool("xpml numpy", backend.get_backend("numpy"), "exact")
    try:
        import torch  # noqa: F401

        import xpml.backend as xb

        tbk = xb.get_backend("torch") if "torch" in xb.BACKEND_NAMES else _TorchCPU()
        xpml_tool("xpml torch exact", tbk, "exact")
        xpml_tool("xpml torch auto", tbk, "auto")
    except ImportError:
        print("torch: SKIPPED (not installed)")
    faiss = load_faiss(args.faiss_coretype)
    faiss.omp_set_num_threads(args.threads)
    C = int(ytr.max()) + 1

    def faiss_run():
        index = faiss.IndexFlatL2(Xtr.shape[1])
        index.add(Xtr)
        return knn_vote(ytr[index.search(Xq, k)[1]], C)

    tools["faiss IndexFlatL2"] = faiss_run
    if not args.no_sklearn:
        from sklearn.neighbors import KNeighborsClassifier

        tools["scikit-learn brute"] = lambda: KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(
            Xtr, ytr).predict(Xq)
    times, out = _rounds(tools, args.repeats)
    ref = times["faiss IndexFlatL2"]
    print(f"{'tool':24s} {'best':>9s} {'median':>9s} {'/ faiss':>8s}  notes")
    for name, ts in times.items():
        ratio = statistics.median(a / b for a, b in zip(ts, ref, strict=True))
        note = ""
        if name in models:
            s = models[name].last_search_
            note = (f"predict {s.seconds:.3f} s, products {s.product}, {s.candidates_per_query:.2f} exact "
                    f"re-ranks per query (k = {k})")
        print(f"{name:24s} {min(ts):9.3f} {statistics.median(ts):9.3f} {ratio:8.2f}  {note}")
    labels = [out[n] for n in models]
    print("xpml variants give the same labels:", all((a == labels[0]).all() for a in labels))
    for name in tools:
        if name not in models:
            print(f"labels: xpml agrees with {name} on {float((out[name] == labels[0]).mean()):.4f} of queries")
    # Candidate counts of the bfloat16 path on data it does not hold exactly (mean-subtracted).
    if "xpml torch auto" in models and models["xpml torch auto"]._ts.precision_used == "bfloat16":
        import torch

        mean = Xtr.mean(axis=0)
        knn = KNearestNeighbor(precision="bfloat16").train(torch.from_numpy(Xtr - mean), torch.from_numpy(ytr))
        knn.predict(torch.from_numpy(Xq - mean), k)
        s = knn.last_search_
        print(f"bfloat16 on mean-subtracted pixels: {s.candidates_per_query:.2f} exact re-ranks per query, "
              f"predict {s.seconds:.3f} s")


class _TorchCPU:
    """torch on the CPU where the shim does not name torch yet."""

    def asarray(self, a):
        import torch

        return torch.from_numpy(np.ascontiguousarray(a))


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

    import array_api_extra as xpx

    Xtr, _, Xte, source = _data(args)
    _limit_threads(args.threads)
    _header(args, source)
    scaled, sq = -2 * Xte[: args.queries], np.einsum("ij,ij->i", Xtr, Xtr)
    blocks = [slice(s, s + 8454) for s in range(0, Xtr.shape[0], 8454)]

    def select(key, b):  # what the search does with a key block: add, threshold, take candidates
        key += sq[b]
        kth = xpx.partition(key[:, :2048], 9, axis=1)[:, 9:10]
        return np.nonzero((key <= kth).ravel())[0].size

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

    times, _ = _rounds({"sequential": sequential, "overlapped": overlapped}, args.repeats)
    ratio = statistics.median(a / b for a, b in zip(times["overlapped"], times["sequential"], strict=True))
    print(f"block loop, {scaled.shape[0]} queries x {Xtr.shape[0]} rows: sequential best "
          f"{min(times['sequential']):.3f} s, overlapped best {min(times['overlapped']):.3f} s, "
          f"overlapped / sequential {ratio:.3f} (median of rounds)")


def model(args):
    """Time and memory of 1,000,000 x 3,072 float32 training rows over 8 GPU workers."""
    M, D, W, k, q = 1_000_000, 3072, 8, 10, args.block
    shard = M // W
    print(f"Model: {M:,} x {D:,} training rows (float32, {M * D * 4 / 2**30:.1f} GiB) on {W} GPU workers, "
          f"shards of {shard:,} rows ({shard * D * 4 / 2**30:.2f} GiB each; the bfloat16 product rounds on the "
          "fly, so no second copy).")
    flops = 2 * q * shard * D
    t_shard = flops / (args.rate_tflops * 1e12)
    bytes_in = q * D * 4
    bytes_out = q * k * (4 + 8)
    t_net = (W * bytes_in + W * bytes_out) / (args.net_gbps * 1e9 / 8)
    key_mem = q * args.cols * 17
    print(f"Per query block of {q:,} rows: {bytes_in / 2**20:.1f} MiB of queries to each worker, "
          f"{bytes_out / 2**10:.0f} KiB of (value, index) back from each: {W * (bytes_in + bytes_out) / 2**20:.1f} MiB "
          f"through the driver's link, {t_net * 1e3:.1f} ms at {args.net_gbps:g} Gbit/s.")
    print(f"Each worker: {flops / 1e12:.2f} TFLOP per block, {t_shard * 1e3:.1f} ms at the measured per-shard rate "
          f"of {args.rate_tflops:g} TFLOP/s; key blocks of {q:,} x {args.cols:,} entries need {key_mem / 2**30:.2f} "
          f"GiB beside the shard. Re-ranking about 1.3 k pairs per query reads {q * 13 * D * 4 / 2**20:.0f} MiB.")
    total = max(t_shard, t_net)
    print(f"Expected: {total * 1e3:.1f} ms per block of {q:,} queries when the transfer overlaps the next "
          f"block's products ({t_shard + t_net:.3f} s if not); {10_000 / q * total:.2f} s for 10,000 queries.")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("figure", choices=["e2e", "dask", "overlap", "model"])
    p.add_argument("--data", help="CIFAR-10 folder (cifar-10-batches-py layout)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--dask-queries", type=int, default=10000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--faiss-coretype", default="SkylakeX")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--quick", action="store_true", help="small random data: a smoke run, not a figure")
    p.add_argument("--rate-tflops", type=float, default=100.0, help="model: measured per-shard product rate")
    p.add_argument("--net-gbps", type=float, default=100.0, help="model: the driver's network link")
    p.add_argument("--block", type=int, default=2048, help="model: queries per block")
    p.add_argument("--cols", type=int, default=65536, help="model: training columns per key block")
    args = p.parse_args(argv)
    if args.quick:
        args.queries, args.dask_queries, args.repeats = min(args.queries, 200), min(args.dask_queries, 400), 1
    {"e2e": e2e, "dask": dask, "overlap": overlap, "model": model}[args.figure](args)


if __name__ == "__main__":
    main()
