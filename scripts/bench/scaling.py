"""Scaling: kNN time against training rows and queries, a net iteration against batch and width.

Each point times xpml beside its peer (faiss-cpu ``add`` + ``search`` + vote for kNN; the
hand-written PyTorch loop for the net), interleaved, and the floor of that point: its FLOPs at
the best measured GEMM rate. :func:`plot` draws them (log-log) as ``knn_scaling.png`` and
``net_scaling.png``; ``scripts/bench/run.py --plots DIR`` runs this section and writes the figures into
DIR (default: the run folder).
"""

from __future__ import annotations

import pathlib

from .common import Bench, MiB, Place, Tool, Unavailable, paired_ratio
from .floor import knn_flops, net_flops
from .knn import K, KnnCase, faiss_classify, faiss_installed, xpml_classify
from .nets import torch_tools, torch_twolayer_manual, twolayer_case, xpml_twolayer

__all__ = ["plot", "run"]

GRIDS = {
    "knn_train_rows": (5000, 10000, 20000, 30000, 40000, 50000),
    "knn_queries": (250, 500, 1000, 2000, 4000, 8000),
    "net_batch": (50, 100, 200, 400, 800),
    "net_width": (50, 100, 200, 400, 800),
}
QUICK_GRIDS = {"knn_train_rows": (500, 1000, 2000), "knn_queries": (25, 50, 100), "net_batch": (25, 50),
               "net_width": (16, 32)}
# Fewer than an epoch (49,000 rows / 800 = 61 iterations) at every batch size of the grid: the
# figure is a bare training step, with no per-epoch validation in it.
NET_ITERS = 60


def _points(bench: Bench, grid: str, tools_at, x_label: str, floor_at):
    """Time the tools at every x of ``grid``; one record per tool and point."""
    points = []
    bench.header()
    for x in (GRIDS if not bench.quick else QUICK_GRIDS)[grid]:
        tools = tools_at(x)
        if tools is None:
            break
        done = bench.time("scaling", grid, tools)
        floor_s = floor_at(x)
        peers = [t for t in done if t.library != "xpml"]
        for t in done:
            ratios = {f"vs {p.library}": paired_ratio(t, p) for p in peers} if t.library == "xpml" else {}
            bench.report("scaling", grid, t, ratios=ratios, floor_s=floor_s, extra={x_label: x, "grid": grid},
                         label=f"{t.name}, {x_label} {x}")
            points.append({"grid": grid, "x": x, "tool": t.name, "median_s": t.median(), "best_s": t.best(),
                           "floor_s": floor_s})
    return points


def _knn_tools(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    tools = xpml_classify(bench, place, case)[:1]
    if faiss_installed():
        tools += faiss_classify(bench, place, case)
    return tools


def run(bench: Bench, place: Place) -> list[dict]:
    if place.gpu:
        return []
    d = bench.data
    rate = bench.rate
    budget = bench.args.knn_budget * MiB
    C = int(d.y_all.max()) + 1
    grids = GRIDS if not bench.quick else QUICK_GRIDS
    Q0 = min(2000 if not bench.quick else 100, d.X_test.shape[0])
    M0 = d.X_all.shape[0]
    D = d.X_all.shape[1]
    bench.say(f"\n### Scaling on the CPU: kNN (k = {K}) against training rows (queries {Q0}) and against queries "
              f"(training rows {M0}); a two-layer net step ({NET_ITERS} iterations per timing, no validation) "
              "against batch size and width; floor = FLOPs / the best measured GEMM rate")
    knn_place = Place("cpu", place.backends[:1], "cpu")
    points = []
    if not faiss_installed():
        bench.skip("scaling", "knn", "faiss-cpu", "faiss-cpu is not installed: pip install -e '.[bench]'")

    def floor(flops):
        return flops / (rate * 1e9) if rate else None

    def knn_at_rows(M):
        if M > M0:
            return None
        return _knn_tools(bench, knn_place, KnnCase(d.X_all[:M], d.y_all[:M], d.X_test[:Q0], K, budget, C))

    def knn_at_queries(Q):
        if Q > d.X_test.shape[0]:
            return None
        return _knn_tools(bench, knn_place, KnnCase(d.X_all, d.y_all, d.X_test[:Q], K, budget, C))

    bench.say(f"kNN against training rows: {grids['knn_train_rows']}")
    points += _points(bench, "knn_train_rows", knn_at_rows, "train_rows", lambda M: floor(knn_flops(Q0, M, D)))
    bench.say(f"kNN against queries: {grids['knn_queries']}")
    points += _points(bench, "knn_queries", knn_at_queries, "queries", lambda Q: floor(knn_flops(Q, M0, D)))

    base = twolayer_case(bench)
    H0, B0 = base.dims[1], base.batch

    said = []

    def net_tools(case):
        tools = xpml_twolayer(bench, knn_place, case)[:1]
        try:
            tools += torch_tools(knn_place, case, [("PyTorch, hand-written (no autograd)", torch_twolayer_manual)])
        except Unavailable as exc:
            if not said:
                bench.skip("scaling", "net", "PyTorch", str(exc))
                said.append(True)
        return tools

    iters = NET_ITERS if not bench.quick else 10
    bench.say(f"net step against batch size (H = {H0}): {grids['net_batch']}")
    points += _points(bench, "net_batch", lambda B: net_tools(twolayer_case(bench, hidden=H0, batch=B, iters=iters)),
                      "batch", lambda B: floor(net_flops(B, [D, H0, C])))
    bench.say(f"net step against width (batch {B0}): {grids['net_width']}")
    points += _points(bench, "net_width", lambda H: net_tools(twolayer_case(bench, hidden=H, batch=B0, iters=iters)),
                      "hidden", lambda H: floor(net_flops(B0, [D, H, C])))
    return points


TITLES = {
    "knn_train_rows": ("kNN train + predict against training rows", "training rows N", "seconds"),
    "knn_queries": ("kNN train + predict against queries", "queries", "seconds"),
    "net_batch": ("two-layer net step against batch size", "batch size", "seconds per iteration"),
    "net_width": ("two-layer net step against width", "hidden units H", "seconds per iteration"),
}


def plot(points: list[dict], folder: pathlib.Path, subtitle: str) -> list[pathlib.Path]:
    """Draw the scaling points (log-log, one line per tool, the floor dashed) into ``folder``."""
    from xpml.cli import _runs  # matplotlib, off-screen

    plt, matplotlib = _runs.plt, _runs.matplotlib
    written = []
    for name, grids in (("knn_scaling.png", ("knn_train_rows", "knn_queries")),
                        ("net_scaling.png", ("net_batch", "net_width"))):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, grid in zip(axes, grids, strict=True):
            here = [p for p in points if p["grid"] == grid]
            title, xlabel, ylabel = TITLES[grid]
            for tool in dict.fromkeys(p["tool"] for p in here):
                xs = [p["x"] for p in here if p["tool"] == tool]
                ax.plot(xs, [p["median_s"] for p in here if p["tool"] == tool], "o-", label=tool)
            floors = sorted({(p["x"], p["floor_s"]) for p in here if p["floor_s"]})
            if floors:
                ax.plot([x for x, _ in floors], [f for _, f in floors], "k--", lw=1, label="GEMM floor")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(sorted({p["x"] for p in here}))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(subtitle, fontsize=9)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        _runs._save(fig, path)
        written.append(path)
    return written
