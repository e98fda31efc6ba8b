"""kNN in depth: the questions behind the kNN search's design, each a section run on request.

    python scripts/bench/run.py --only knn-precision --backends numpy,torch:cpu   # exact vs bfloat16
    python scripts/bench/run.py --only knn-dask --workers 2                       # 2 local workers
    python scripts/bench/run.py --only knn-overlap                                # selection beside the product?
    python scripts/bench/run.py --only knn-model --rate-tflops 300                # 1,000,000 x 3,072 on 8 GPUs

- ``knn-precision``: ``KNearestNeighbor().train(X, y)`` plus ``predict(q, k=10)`` with
  ``precision="exact"`` on every ``--backends`` entry, and with ``"auto"`` where the backend has a
  bfloat16 product (torch): times, the exact re-ranks per query each needs, whether the labels agree,
  and the re-ranks of the bfloat16 path on mean-subtracted data (which it does not hold exactly).
- ``knn-dask``: ``kneighbors`` on ``--workers`` local Dask worker processes (one thread each)
  against one process: the first call (shards sent), the second, the bytes moved per query block,
  and the per-shard rate to pass to ``knn-model``.
- ``knn-overlap``: the search's block loop, sequential against computing the next block's product
  in a second thread while this block's candidates are selected.
- ``knn-model``: time and memory of 1,000,000 x 3,072 float32 training rows over 8 GPU workers,
  from a per-shard product rate (``--rate-tflops``) and the driver's link (``--net-gbps``).

These were ``scripts/bench_knn.py``; they now share the benchmark's data, clock, threads, interleaved
rounds and records (``results.json`` / ``results.md`` in the run folder).
"""

from __future__ import annotations

import numpy as np

from xpml import backend

from .common import Bench, Place, Tool, paired_ratio

__all__ = ["run_dask", "run_model", "run_overlap", "run_precision"]

K = 10
_DEFAULT_RATE_TFLOPS = 100.0  # the model's rate when none was measured


def _queries(bench: Bench, n: int) -> np.ndarray:
    return bench.data.X_test[: min(n if not bench.quick else 200, bench.data.X_test.shape[0])]


def run_precision(bench: Bench, place: Place) -> None:
    from xpml.classifiers import KNearestNeighbor

    Xtr, ytr, Xq = bench.data.X_all, bench.data.y_all, _queries(bench, bench.args.knn_queries)
    bench.say(f"\n### kNN, exact against bfloat16 candidates, on the {place.title}: {Xtr.shape[0]} train x "
              f"{Xq.shape[0]} queries, D = {Xtr.shape[1]}, k = {K}, float32")
    models, tools = {}, []
    for bk in place.backends:
        X, y, Q = bk.asarray(Xtr), bk.asarray(ytr), bk.asarray(Xq)
        precisions = ("exact", "auto") if bk.name == "torch" else ("exact",)
        for precision in precisions:
            name = f"xpml train + predict, precision={precision!r} ({bk.label})"

            def prepare(X=X, y=y, Q=Q, precision=precision, name=name):
                knn = KNearestNeighbor(precision=precision)
                models[name] = knn
                return [("train", lambda: knn.train(X, y)), ("query", lambda: backend.to_numpy(knn.predict(Q, K)))]

            tools.append(Tool(name, prepare, backend=bk.label))
    done = bench.time("knn-precision", "classify", tools)
    if not done:
        return
    ref = done[0]
    bench.header()
    for t in done:
        s = models[t.name].last_search_
        t.note = f"products {s.product}, {s.candidates_per_query:.2f} exact re-ranks per query"
        bench.report("knn-precision", "classify", t, ratios={f"vs {ref.name}": paired_ratio(t, ref)},
                     extra={"product": s.product, "candidates_per_query": s.candidates_per_query})
    same = all((t.out == ref.out).all() for t in done)
    bench.note("knn-precision", "classify", f"every variant gives the same labels: {same}", same_labels=same)
    auto = next((t for t in done if "'auto'" in t.name), None)
    if auto is not None and models[auto.name].last_search_.product == "bfloat16":
        tbk = backend.get_backend(auto.backend)
        mean = Xtr.mean(axis=0)
        knn = KNearestNeighbor(precision="bfloat16").train(tbk.asarray(Xtr - mean), tbk.asarray(ytr))
        knn.predict(tbk.asarray(Xq - mean), K)
        s = knn.last_search_
        bench.note("knn-precision", "mean-subtracted", f"bfloat16 on mean-subtracted pixels: "
                   f"{s.candidates_per_query:.2f} exact re-ranks per query, predict {s.seconds:.3f} s (wall)",
                   candidates_per_query=s.candidates_per_query, predict_s=s.seconds)


def run_dask(bench: Bench, place: Place) -> None:
    if place.gpu:
        return  # the workers are CPU processes; one GPU worker per device is dask-cuda's job
    try:
        import distributed
    except ImportError:
        bench.skip("knn-dask", "kneighbors", "Dask", "dask[distributed] is not installed: pip install -e '.[dask]'")
        return
    from xpml.classifiers import KNearestNeighbor

    Xtr, ytr = bench.data.X_all, bench.data.y_all
    Q = _queries(bench, bench.args.dask_queries)
    workers = bench.args.workers
    bench.say(f"\n### kNN on Dask: {Xtr.shape[0]} train x {Q.shape[0]} queries, k = {K}, {workers} local worker "
              f"processes (1 thread each) against one process ({bench.threads} threads)")
    knn = KNearestNeighbor().train(Xtr, ytr)
    start = bench.clock()
    d0, i0 = knn.kneighbors(Q, K)
    one = bench.clock() - start
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        runs = []
        for _ in range(2):  # the first call also sends the shards
            start = bench.clock()
            d, i = knn.kneighbors(Q, K, client=client)
            runs.append(bench.clock() - start)
        same = bool((backend.to_numpy(i) == backend.to_numpy(i0)).all()
                    and (backend.to_numpy(d) == backend.to_numpy(d0)).all())
    block = max(1, knn.memory_budget // (4 * Q.shape[1] * 4))
    rows = min(block, Q.shape[0])
    per_block = workers * (rows * Q.shape[1] * 4 + rows * K * 12)
    bench.note("knn-dask", "kneighbors", f"one process: {one:.3f} s; Dask first call (shards sent) {runs[0]:.3f} s, "
               f"second {runs[1]:.3f} s (overhead {runs[1] / one - 1:+.1%}); identical indices and distances: {same}",
               one_process_s=one, dask_first_s=runs[0], dask_second_s=runs[1], identical=same, workers=workers)
    bench.note("knn-dask", "traffic", f"bytes moved per query block of {rows} rows: {per_block / 2**20:.1f} MiB "
               "(queries to each worker, (value, index) of k per query back)", bytes_per_block=per_block)
    rate = 2 * Q.shape[0] * Xtr.shape[0] * Xtr.shape[1] / workers / runs[1] / 1e12
    bench.note("knn-dask", "rate", f"measured per-shard rate: {rate:.3f} TFLOP/s (2 N M D / workers / time): pass it "
               "to --rate-tflops of knn-model for a CPU cluster, or measure it on one GPU worker", tflops=rate)


def run_overlap(bench: Bench, place: Place) -> None:
    """Whether running the next block's product in a second thread while this block's candidates
    are selected pays off here: the search's block loop, sequential against overlapped."""
    if place.gpu:
        return
    from concurrent.futures import ThreadPoolExecutor

    Xtr = bench.data.X_all
    scaled = -2 * _queries(bench, bench.args.knn_queries)
    sq = np.einsum("ij,ij->i", Xtr, Xtr)
    step = 8454 if not bench.quick else 500
    blocks = [slice(s, s + step) for s in range(0, Xtr.shape[0], step)]

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

    bench.say(f"\n### kNN block loop, {scaled.shape[0]} queries x {Xtr.shape[0]} rows in blocks of {step}: "
              "sequential against the next product overlapped")
    tools = [Tool("block loop, sequential", lambda: sequential, library="numpy"),
             Tool("block loop, next product overlapped", lambda: overlapped, library="numpy")]
    done = bench.time("knn-overlap", "block loop", tools)
    if len(done) == 2:
        bench.header()
        bench.report("knn-overlap", "block loop", done[0])
        bench.report("knn-overlap", "block loop", done[1], ratios={"vs sequential": paired_ratio(done[1], done[0])})


def run_model(bench: Bench, place: Place) -> None:
    """Time and memory of 1,000,000 x 3,072 float32 training rows over 8 GPU workers (arithmetic only)."""
    if place.gpu:
        return
    args = bench.args
    M, D, W, q = 1_000_000, 3072, 8, args.block
    rate_tflops = args.rate_tflops or _DEFAULT_RATE_TFLOPS
    shard = M // W
    say = bench.say
    say(f"\n### kNN cluster model: {M:,} x {D:,} training rows (float32, {M * D * 4 / 2**30:.1f} GiB) on {W} GPU "
        f"workers, shards of {shard:,} rows ({shard * D * 4 / 2**30:.2f} GiB each; the bfloat16 product rounds on "
        "the fly, so no second copy).")
    flops = 2 * q * shard * D
    t_shard = flops / (rate_tflops * 1e12)
    rate_source = ("given" if args.rate_tflops else
                   "assumed: a GPU's bfloat16 tensor-core rate; measure one worker and pass --rate-tflops")
    bytes_in = q * D * 4
    bytes_out = q * K * (4 + 8)
    t_net = (W * bytes_in + W * bytes_out) / (args.net_gbps * 1e9 / 8)
    key_mem = q * args.cols * 17
    say(f"Per query block of {q:,} rows: {bytes_in / 2**20:.1f} MiB of queries to each worker, "
        f"{bytes_out / 2**10:.0f} KiB of (value, index) back from each: {W * (bytes_in + bytes_out) / 2**20:.1f} MiB "
        f"through the driver's link, {t_net * 1e3:.1f} ms at {args.net_gbps:g} Gbit/s.")
    say(f"Each worker: {flops / 1e12:.2f} TFLOP per block, {t_shard * 1e3:.1f} ms at a per-shard rate "
        f"of {rate_tflops:g} TFLOP/s ({rate_source}); key blocks of {q:,} x {args.cols:,} entries "
        f"need {key_mem / 2**30:.2f} GiB beside the shard. Re-ranking about 1.3 k pairs per query reads "
        f"{q * 13 * D * 4 / 2**20:.0f} MiB.")
    total = max(t_shard, t_net)
    bench.note("knn-model", "8 GPUs", f"Expected: {total * 1e3:.1f} ms per block of {q:,} queries when the transfer "
               f"overlaps the next block's products ({t_shard + t_net:.3f} s if not); {10_000 / q * total:.2f} s for "
               "10,000 queries.", block_s=total, block_s_serial=t_shard + t_net, rate_tflops=rate_tflops,
               rate_assumed=not args.rate_tflops, net_gbps=args.net_gbps)
