"""kNN end to end, as a user times it: ``train`` + ``predict`` (and ``train`` + ``kneighbors``).

Two cases, each its own interleaved round of contenders:

- ``classify``: ``KNearestNeighbor().train(X, y)`` + ``predict(q, k)`` against faiss-cpu
  ``IndexFlatL2`` ``add`` + ``search`` + the same majority vote, and scikit-learn
  ``KNeighborsClassifier(algorithm="brute")`` ``fit`` + ``predict``; beside them the floor
  measured in the same rounds (the query-by-training products alone).
- ``neighbours``: ``train`` + ``kneighbors(q, k)`` against ``add`` + ``search`` and ``fit`` +
  ``kneighbors``.

Each contender is timed whole and split into its two phases (``train``: train / add / fit;
``query``: predict / kneighbors / search and vote). On the GPU, xpml on each GPU backend runs
against ``torch.cdist`` + ``topk`` (+ vote) at full CIFAR-10 scale (10,000 queries).

Adding a contender (a low-precision xpml kNN, xpml on another backend): add a factory to
:data:`CLASSIFY` / :data:`NEIGHBOURS` (``factory(bench, place, case) -> list[Tool]``, raising
:class:`~.common.Unavailable` with the reason where it cannot run); xpml's backends come from
``--backends`` / ``--gpu-backends``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import numpy as np

from .common import (
    Bench,
    CupyPoolProbe,
    MiB,
    Place,
    RssProbe,
    Tool,
    TorchCudaProbe,
    Unavailable,
    fmt_s,
    host,
    optional,
    paired_ratio,
    torch_or_unavailable,
)
from .floor import knn_flops

__all__ = ["CLASSIFY", "NEIGHBOURS", "KnnCase", "load_faiss", "run"]

K = 10
TARGET_VS_FAISS = 0.9  # kNN end to end at most 0.9x faiss on the same machine and thread count
TARGET_VS_TORCH_GPU = 1.0


@dataclasses.dataclass
class KnnCase:
    """The workload: training rows and labels, queries (host float32 arrays), k, budget."""

    X: np.ndarray
    y: np.ndarray
    Q: np.ndarray
    k: int
    budget: int
    num_classes: int

    @property
    def title(self) -> str:
        return f"{self.X.shape[0]} train x {self.Q.shape[0]} queries, D = {self.X.shape[1]}, k = {self.k}"


def knn_vote(labels_of_neighbours: np.ndarray, num_classes: int) -> np.ndarray:
    """Majority vote with ties to the smaller label, as xpml's (and the course's) kNN does."""
    counts = np.zeros((labels_of_neighbours.shape[0], num_classes), dtype=np.int64)
    rows = np.repeat(np.arange(labels_of_neighbours.shape[0]), labels_of_neighbours.shape[1])
    np.add.at(counts, (rows, labels_of_neighbours.ravel()), 1)
    return np.argmax(counts, axis=1)


def indices_of(out):
    """The neighbour indices of a ``kneighbors``/``search`` result: ``(distances, indices)`` or indices."""
    return out[1] if isinstance(out, tuple) else out


# ---- faiss ---------------------------------------------------------------------------------------


def faiss_installed() -> bool:
    try:
        return importlib.util.find_spec("faiss") is not None
    except ImportError:
        return False


def best_coretype() -> str:
    """The fastest OpenBLAS kernel faiss's bundled (older) OpenBLAS has for this CPU."""
    from .common import cpu_flags

    flags = cpu_flags()
    if "avx512f" in flags:
        return "SkylakeX"
    if "avx2" in flags:
        return "Haswell"
    return "auto"


def load_faiss(coretype: str, threads: int):
    """Import faiss with its bundled OpenBLAS on ``coretype`` ("auto": OpenBLAS's own detection).

    OpenBLAS reads OPENBLAS_CORETYPE when it is loaded; NumPy's copy is loaded already, so setting
    it here affects faiss's copy only. Call it before anything else imports faiss.
    """
    if coretype == "best":
        coretype = best_coretype()
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
    faiss.omp_set_num_threads(threads)
    return faiss


def _faiss(bench: Bench, case: KnnCase):
    if not faiss_installed():
        raise Unavailable("faiss-cpu is not installed: pip install -e '.[bench]'")
    faiss = load_faiss(bench.args.faiss_coretype, bench.threads)
    if "faiss" not in bench.checked:
        # Check faiss's BLAS kernel computes the right neighbours before timing it.
        index = faiss.IndexFlatL2(case.X.shape[1])
        index.add(case.X)
        q = case.Q[:20]
        _, found = index.search(q, case.k)
        exact = (case.X.astype(np.float64) ** 2).sum(1)[None] - 2 * q.astype(np.float64) @ case.X.T.astype(np.float64)
        ref = np.sort(np.argsort(exact, axis=1, kind="stable")[:, :case.k], axis=1)
        agree = float((np.sort(found, axis=1) == ref).mean())
        bench.note("knn", "check", f"faiss neighbour check on 20 queries against float64: {agree:.3f} of "
                   "neighbours agree", agreement=agree)
        bench.checked.add("faiss")
    return faiss


# ---- contenders: classify --------------------------------------------------------------------------


def _probe(bk=None):
    """The memory probe for xpml on ``bk`` (None: the CPU's resident set)."""
    if bk is None:
        return RssProbe()
    return {"cupy": CupyPoolProbe, "torch": TorchCudaProbe}.get(bk.name, lambda: None)()


def _xpml(place: Place, case: KnnCase, what: str, query, *, options: dict | None = None,
          backends=None) -> list[Tool]:
    """``train`` + ``what`` on each of xpml's backends here (or ``backends``); ``query(knn, Q)`` is
    the second phase. ``options`` go to ``KNearestNeighbor`` beside the memory budget: a factory
    for an option of the classifier (a low-precision candidate search, say) is
    ``_xpml(place, case, "predict (option)", query, options={...}, backends=[those it runs on])``.
    """
    from xpml.classifiers import KNearestNeighbor

    tools = []
    for bk in place.backends if backends is None else backends:
        Xg, yg, Qg = bk.asarray(case.X), bk.asarray(case.y), bk.asarray(case.Q)

        def prepare(Xg=Xg, yg=yg, Qg=Qg):
            knn = KNearestNeighbor(memory_budget=case.budget, **(options or {}))
            return [("train", lambda: knn.train(Xg, yg)), ("query", lambda: query(knn, Qg))]

        tools.append(Tool(f"xpml train + {what} ({bk.label})", prepare, backend=bk.label,
                          probe=_probe(bk if place.gpu else None)))
    return tools


def _faiss_tool(bench: Bench, place: Place, case: KnnCase, what: str, query) -> Tool:
    """faiss-cpu ``IndexFlatL2`` built (``add``) then queried by ``query(index)``."""
    if place.gpu:
        raise Unavailable("faiss-cpu has no GPU index; PyTorch is the GPU peer")
    faiss = _faiss(bench, case)

    def prepare():
        state = {}

        def add():
            state["index"] = faiss.IndexFlatL2(case.X.shape[1])
            state["index"].add(case.X)

        return [("train", add), ("query", lambda: query(state["index"]))]

    return Tool(f"faiss-cpu IndexFlatL2 add + {what}", prepare, library="faiss", probe=RssProbe())


def xpml_classify(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    return _xpml(place, case, "predict", lambda knn, Q: knn.predict(Q, k=case.k))


def faiss_classify(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    return [_faiss_tool(bench, place, case, "search + vote",
                        lambda index: knn_vote(case.y[index.search(case.Q, case.k)[1]], case.num_classes))]


def _sklearn_tool(bench: Bench, place: Place, case: KnnCase, name: str, query) -> Tool:
    if place.gpu:
        raise Unavailable("scikit-learn runs on the CPU only")
    sk = optional("sklearn.neighbors")
    if isinstance(sk, Exception):
        raise Unavailable(f"scikit-learn is not installed ({sk})")

    def prepare():
        clf = sk.KNeighborsClassifier(n_neighbors=case.k, algorithm="brute")
        return [("train", lambda: clf.fit(case.X, case.y)), ("query", lambda: query(clf))]

    slow = not bench.quick  # about 2.5x xpml's time: two rounds say enough
    return Tool(name, prepare, library="scikit-learn", probe=RssProbe(),
                repeats=min(bench.repeats, 2) if slow else None, warmup=0 if slow else 1)


def sklearn_classify(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    return [_sklearn_tool(bench, place, case, "scikit-learn brute fit + predict", lambda clf: clf.predict(case.Q))]


def floor_products(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    """The products alone, in training-row blocks of about 6,000, results discarded: the floor
    measured in the same rounds as the contenders."""
    if place.gpu:
        return []
    M = case.X.shape[0]
    step = 6250 if M >= 6250 else max(1, M // 4)

    def products():
        for s in range(0, M, step):
            case.Q @ case.X[s:s + step].T

    return [Tool("matrix products alone (the floor)", lambda: products, library="numpy")]


def torch_gpu_classify(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    if not place.gpu:
        return []
    torch = torch_or_unavailable("cuda")
    dev = torch.device("cuda")
    Xt, yt, Qt = (torch.from_numpy(a).to(dev) for a in (case.X, case.y, case.Q))

    def query():
        out = []
        for s in range(0, Qt.shape[0], 2000):
            d = torch.cdist(Qt[s:s + 2000], Xt)
            idx = torch.topk(d, case.k, dim=1, largest=False).indices
            votes = torch.nn.functional.one_hot(yt[idx], case.num_classes).sum(1)
            out.append(torch.argmax(votes, dim=1))
        return torch.cat(out)

    return [Tool("torch.cdist + topk + vote (cuda)", lambda: query, library="torch", probe=TorchCudaProbe())]


# ---- contenders: neighbours ----------------------------------------------------------------------


def xpml_neighbours(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    return _xpml(place, case, "kneighbors", lambda knn, Q: knn.kneighbors(Q, case.k))


def faiss_neighbours(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    return [_faiss_tool(bench, place, case, "search", lambda index: index.search(case.Q, case.k))]


def sklearn_neighbours(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    return [_sklearn_tool(bench, place, case, "scikit-learn brute fit + kneighbors",
                          lambda clf: clf.kneighbors(case.Q, case.k))]


def torch_gpu_neighbours(bench: Bench, place: Place, case: KnnCase) -> list[Tool]:
    if not place.gpu:
        return []
    torch = torch_or_unavailable("cuda")
    dev = torch.device("cuda")
    Xt, Qt = torch.from_numpy(case.X).to(dev), torch.from_numpy(case.Q).to(dev)

    def query():
        parts = [torch.topk(torch.cdist(Qt[s:s + 2000], Xt), case.k, dim=1, largest=False)
                 for s in range(0, Qt.shape[0], 2000)]
        return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])

    return [Tool("torch.cdist + topk (cuda)", lambda: query, library="torch", probe=TorchCudaProbe())]


# The contenders of each case, in the order they are shown: (name for a skip line, factory).
CLASSIFY = [("xpml", xpml_classify), ("faiss-cpu", faiss_classify), ("scikit-learn", sklearn_classify),
            ("PyTorch (cuda)", torch_gpu_classify), ("the floor", floor_products)]
NEIGHBOURS = [("xpml", xpml_neighbours), ("faiss-cpu", faiss_neighbours), ("scikit-learn", sklearn_neighbours),
              ("PyTorch (cuda)", torch_gpu_neighbours)]


# ---- running and reporting -----------------------------------------------------------------------


def _query_phase(t: Tool):
    return "query" if "query" in t.splits else None


def compare(bench: Bench, case_name: str, tools: list[Tool], *, flops: int, target: tuple, floor_s=None) -> None:
    """Report each tool; xpml rows carry their ratios to every peer, whole and query alone, and the
    verdict against ``target``: ``(peer library, limit)``."""
    peers = [t for t in tools if t.library not in ("xpml", "numpy")]
    goal = next((p for p in peers if p.library == target[0]), None)
    bench.header()
    for t in tools:
        ratios = {}
        if t.library == "xpml":
            for p in peers:
                ratios[f"vs {p.library}"] = paired_ratio(t, p)
                if _query_phase(t) or _query_phase(p):
                    ratios[f"query vs {p.library}"] = paired_ratio(t, p, _query_phase(t), _query_phase(p))
        tgt = (f"vs {goal.library}", target[1]) if t.library == "xpml" and goal else None
        bench.report("knn", case_name, t, ratios=ratios, target=tgt, floor_s=floor_s,
                     extra={"flops": flops, "gflops_best": flops / t.best() / 1e9,
                            "memory_budget_mib": bench.args.knn_budget if t.library == "xpml" else None})


def _agreement(bench: Bench, case_name: str, tools: list[Tool], y_true, *, labels: bool) -> None:
    """How often xpml's labels (or neighbour indices) equal each peer's; xpml's accuracy on real data."""
    what = "labels" if labels else "neighbour indices"
    for m in (t for t in tools if t.library == "xpml"):
        a = host(m.out if labels else indices_of(m.out))
        for t in tools:
            if t is m or t.library == "numpy":
                continue
            agree = float((a == host(t.out if labels else indices_of(t.out))).mean())
            bench.note("knn", case_name, f"{what}: {m.name} agrees with {t.name} on {agree:.4f} (ties between "
                       "equally distant neighbours may differ)", agreement=agree, tool=m.name, peer=t.name)
        if y_true is not None:
            acc = float((a == y_true).mean())
            bench.note("knn", case_name, f"{m.name}: accuracy on these {len(y_true)} test images {acc:.4f}",
                       accuracy=acc, tool=m.name)


def run(bench: Bench, place: Place) -> None:
    data = bench.data
    if place.gpu:
        Q = data.X_test.shape[0] if not bench.quick else 100
    else:
        Q = bench.args.knn_queries if not bench.quick else 100
    Q = min(Q, data.X_test.shape[0])
    case = KnnCase(data.X_all, data.y_all, data.X_test[:Q], K, bench.args.knn_budget * MiB,
                   int(data.y_all.max()) + 1)
    flops = knn_flops(Q, case.X.shape[0], case.X.shape[1])
    target = ("torch", TARGET_VS_TORCH_GPU) if place.gpu else ("faiss", TARGET_VS_FAISS)

    bench.say(f"\n### kNN train + predict on the {place.title}: {case.title}, float32, budget "
              f"{bench.args.knn_budget} MiB")
    done = bench.compete("knn", "classify", CLASSIFY, place, case)
    floor_tool = next((t for t in done if t.library == "numpy"), None)
    floor_s = floor_tool.best() if floor_tool else None
    if floor_tool:
        line = (f"kNN floor, measured: the {flops / 1e9:.3g} GFLOP of products alone take {fmt_s(floor_s)} "
                f"({flops / floor_s / 1e9:.0f} GFLOP/s)")
        if bench.rate:
            line += (f"; at the best rate of the floor section, {bench.rate:.0f} GFLOP/s: "
                     f"{fmt_s(flops / bench.rate / 1e9)}")
        bench.note("knn", "classify", line, floor_s=floor_s, flops=flops)
    elif bench.rate and not place.gpu:
        floor_s = flops / bench.rate / 1e9
    if done:
        compare(bench, "classify", done, flops=flops, target=target, floor_s=floor_s)
        _agreement(bench, "classify", done, data.y_test[:Q] if data.real else None, labels=True)

    bench.say(f"\n### kNN train + kneighbors on the {place.title}: {case.title}, float32")
    done = bench.compete("knn", "neighbours", NEIGHBOURS, place, case)
    if done:
        compare(bench, "neighbours", done, flops=flops, target=target, floor_s=floor_s)
        _agreement(bench, "neighbours", done, None, labels=False)
