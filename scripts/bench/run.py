"""Time xpml beside the libraries a user would pick instead, side by side, in the same run.

Run from a checkout (the benchmarks are not installed with xpml), with the ``bench`` extra:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/bench/run.py --data-dir DIR   # the recorded run
    python scripts/bench/run.py --only knn,net --repeats 5     # some sections
    python scripts/bench/run.py --only scaling --plots docs    # the scaling plots, written into docs/
    python scripts/bench/run.py --only knn-dask,knn-model      # kNN in depth
    python scripts/bench/run.py --quick                        # tiny random shapes: a smoke run, not a figure
    python -m scripts.bench ...                                # the same, from the checkout's root

Sections (``--only``, comma-separated; default all but ``scaling`` and the ``knn-*`` ones):

- ``floor``: the float32 matrix-product rate of this machine (NumPy's BLAS and PyTorch's). The
  floor of a workload is the FLOPs of its products at that rate.
- ``knn``: ``train`` + ``predict`` and ``train`` + ``kneighbors`` (50,000 x 2,000, k = 10) against
  faiss-cpu ``add`` + ``search`` (+ the same vote) and scikit-learn ``fit`` + ``predict`` /
  ``kneighbors``, whole and split; peak memory of each.
- ``net``: ``TwoLayerNet.train`` with its per-epoch validation against the same loop in PyTorch
  with autograd and hand-written in PyTorch, whole and per iteration.
- ``fc``: ``FullyConnectedNet([100, 100], normalization="batchnorm")`` + ``Solver`` (Adam) against
  a PyTorch ``nn.Sequential`` + ``torch.optim.Adam`` (autograd) and the same loop hand-written.
- ``linear``: ``LinearSVM`` / ``Softmax`` training against PyTorch (autograd and hand-written).
- ``shim``: xpml's NumPy backend against the same code on the plain numpy module.
- ``scaling``: kNN against training rows and queries, a net step against batch and width.
- ``knn-precision``: kNN on NumPy and torch with ``precision="exact"`` against torch's bfloat16
  candidates (``"auto"``), with the exact re-ranks per query each needs.
- ``knn-dask``: ``kneighbors`` on ``--workers`` local Dask workers against one process.
- ``knn-overlap``: whether the search's block loop gains from computing the next product while
  this block's candidates are selected.
- ``knn-model``: time and memory of 1,000,000 x 3,072 training rows over 8 GPU workers, from a
  per-shard rate (``--rate-tflops``, measured on one worker) and the network (``--net-gbps``).

The contenders of a section run interleaved (A B C, C B A, ...) after a warm-up, each phase
closed by a device synchronisation; rows give the median and best time, and each ratio is the
median of the per-round ratios, robust to a load that drifts during the run. On a CUDA machine
(``--gpu auto``, the default) the sections also run xpml on ``--gpu-backends`` against PyTorch on
the same GPU.

Output: the table on stdout, and ``results.json`` (one record per contender: times, splits,
ratios, and the machine: CPU, BLAS kernel and threads per library, load average) with
``results.md`` (the table) in the run folder (``--out DIR``, default ``runs/<time>-bench``).
Nothing else is written; RESULTS.md is curated by hand from these files.

Data: CIFAR-10 from ``--data-dir`` or the data cache (``xpml download``); without it, random data
of the same shapes, and the output says so.

About OPENBLAS_CORETYPE: an environment may force an OpenBLAS kernel (say Haswell, because an
old OpenBLAS misdetects the CPU). Unset it for the recorded run (as above) so NumPy's OpenBLAS
picks its own kernel. faiss-cpu bundles an older OpenBLAS that may fall back to a generic kernel
on a newer CPU; so that faiss is measured at its best, its copy is loaded on ``--faiss-coretype``
(default ``best``: SkylakeX with AVX-512, Haswell with AVX2), checked against an exact float64
reference before timing. Every kernel in use is printed and recorded.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shlex
import sys

if __package__ in (None, ""):  # run as a file (python scripts/bench/run.py): import it as scripts.bench
    _root = str(pathlib.Path(__file__).resolve().parents[2])
    sys.path[:] = [_root, *(p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).parent)]

import numpy as np  # noqa: E402

from scripts.bench import DEFAULT_SECTIONS, ON_REQUEST, SECTIONS  # noqa: E402
from scripts.bench.common import Bench, Place, cifar10_root, describe_blas, load_average, optional  # noqa: E402
from xpml import backend  # noqa: E402
from xpml.cli import _cli, _runs  # noqa: E402

__all__ = ["build_parser", "main"]

# The sections that divide by the machine's GEMM rate: the floor is measured first for them.
_NEED_RATE = {"floor", "knn", "net", "fc", "linear", "scaling"}


def _sections(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if "all" in names:
        return list(SECTIONS)
    bad = [n for n in names if n not in SECTIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown section {bad[0] if bad else text!r}; choose from: "
                                         f"{', '.join(SECTIONS)} or all")
    return names


def _names(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("needs at least one backend name")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = _cli.ArgumentParser(prog="scripts/bench/run.py", description=__doc__.split("\n\n")[0],
                            epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", type=_sections, metavar="SECTIONS",
                   help=f"comma-separated sections of: {', '.join(SECTIONS)} "
                        f"(default: all but {', '.join(ON_REQUEST)})")
    p.add_argument("--quick", action="store_true", help="tiny random shapes: a smoke run, not a figure")
    p.add_argument("--repeats", type=_cli.count, default=3, metavar="N", help="timed runs per contender, after a "
                   "warm-up (default: 3)")
    p.add_argument("--out", metavar="DIR", help="run folder for results.json and results.md "
                   "(default: runs/<time>-bench)")
    p.add_argument("--overwrite", action="store_true",
                   help="reuse an --out folder that holds an earlier run (its results are replaced)")
    p.add_argument("--plots", nargs="?", const="", metavar="DIR",
                   help="run the scaling section and draw its plots into DIR (default: the run folder)")
    p.add_argument("--data-dir", "--data", dest="data_dir", metavar="DIR",
                   help="a folder holding cifar-10-batches-py (default: the data cache; random data if absent)")
    p.add_argument("--backends", type=_names, default=["numpy"], metavar="NAMES",
                   help="xpml's backends on the CPU, comma-separated (default: numpy)")
    p.add_argument("--gpu", choices=("auto", "no", "only"), default="auto",
                   help="auto: also run the GPU part when a GPU backend is usable; only: just that part")
    p.add_argument("--gpu-backends", type=_names, metavar="NAMES",
                   help="xpml's backends on the GPU, comma-separated (default: cupy)")
    p.add_argument("--faiss-coretype", default="best", metavar="KERNEL",
                   help="OpenBLAS kernel of faiss's bundled OpenBLAS: best (default: the fastest this CPU "
                        "runs), auto (its own detection) or a name such as SkylakeX or Haswell")
    p.add_argument("--knn-budget", type=_cli.count, default=256, metavar="MIB", help="xpml kNN memory_budget in MiB")
    p.add_argument("--knn-queries", type=_cli.count, default=2000, metavar="N",
                   help="kNN queries on the CPU (default: 2000; the GPU uses all 10,000 test images)")
    p.add_argument("--net-iters", type=_cli.count, default=1000, metavar="N", help="two-layer net iterations")
    p.add_argument("--fc-epochs", type=_cli.count, default=4, metavar="N",
                   help="FullyConnectedNet epochs (245 iterations each at batch 200)")
    p.add_argument("--linear-iters", type=_cli.count, default=1500, metavar="N", help="linear classifier iterations")
    g = p.add_argument_group("kNN in depth (the knn-* sections)")
    g.add_argument("--workers", type=_cli.count, default=2, metavar="N", help="knn-dask: local worker processes")
    g.add_argument("--dask-queries", type=_cli.count, default=10000, metavar="N", help="knn-dask: queries")
    g.add_argument("--rate-tflops", type=_cli.positive, metavar="X",
                   help="knn-model: the per-shard product rate, measured on one worker (default: 100, assumed)")
    g.add_argument("--net-gbps", type=_cli.positive, default=100.0, metavar="X", help="knn-model: the driver's link")
    g.add_argument("--block", type=_cli.count, default=2048, metavar="N", help="knn-model: queries per block")
    g.add_argument("--cols", type=_cli.count, default=65536, metavar="N",
                   help="knn-model: training columns per key block")
    p.add_argument("--threads", type=_cli.count, metavar="N",
                   help="threads for every library (default: all cores); 1 compares code paths on a loaded machine")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall-clock time (the figures) or process CPU time (to compare code on a loaded machine)")
    # Older commands still pass it; nothing is recorded outside the run folder any more.
    p.add_argument("--no-record", action="store_true", help=argparse.SUPPRESS)
    return p


def _gpu_place(args) -> tuple[Place | None, str]:
    """The GPU half (None where no GPU backend is usable) and why not."""
    names = args.gpu_backends or ["cupy"]
    usable, reasons = [], []
    for name in names:
        try:
            usable.append(backend.get_backend(name))
        except backend.BackendUnavailableError as exc:
            if args.gpu_backends:  # asked for by name: say so and stop
                raise
            reasons.append(str(exc))
    if not usable:
        return None, "; ".join(reasons)
    return Place("gpu", tuple(usable), "cuda"), ""


def _limit_threads(threads: int, sections: list[str], faiss_coretype: str):
    """Load the peers first (faiss on its kernel), then give every library ``threads`` threads."""
    torch = optional("torch")
    if not isinstance(torch, Exception):
        torch.set_num_threads(threads)
    if {"knn", "scaling"} & set(sections):
        from scripts.bench.knn import faiss_installed, load_faiss

        if faiss_installed():
            load_faiss(faiss_coretype, threads)
    tpc = optional("threadpoolctl")
    if not isinstance(tpc, Exception):
        tpc.threadpool_limits(threads)
    return torch


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    sections = list(args.only or DEFAULT_SECTIONS)
    if args.plots is not None and "scaling" not in sections:
        sections.append("scaling")
    sections = [s for s in SECTIONS if s in sections]  # in their order
    cpu_backends = tuple(backend.get_backend(name) for name in args.backends)  # a bad name is one error line
    gpu, why_no_gpu = (None, "--gpu no") if args.gpu == "no" else _gpu_place(args)
    if args.gpu == "only" and gpu is None:
        raise _cli.UsageError(f"--gpu only, but no GPU backend is usable here ({why_no_gpu})")
    places = ([] if args.gpu == "only" else [Place("cpu", cpu_backends, "cpu")]) + ([gpu] if gpu else [])
    cifar10_root(args.data_dir, quick=args.quick)  # a --data-dir without CIFAR-10 fails at once
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(shlex.quote(a) for a in ["python", "scripts/bench/run.py", *argv])
    # Claimed before any work, so a bad or busy --out fails at once; released whatever happens.
    folder = _runs.claim_run_dir(args.out, "bench", overwrite=args.overwrite, command=command)
    try:
        rc = _measure(args, sections, places, gpu, why_no_gpu, folder.path, command)
        folder.end(["results.md"])  # the run is complete: its marker goes
        return rc
    finally:
        folder.release()


def _measure(args, sections, places, gpu, why_no_gpu, out_dir, command) -> int:

    bench = Bench(args, out_dir, command)
    torch = _limit_threads(bench.threads, sections, args.faiss_coretype)
    faiss = sys.modules.get("faiss")
    bench.say(f"xpml benchmark, {bench.started:%Y-%m-%d %H:%M:%S} UTC: {', '.join(sections)}")
    bench.say(f"machine: {bench.env()['cpu']}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
              f"load average at start {load_average()}")
    bench.say(f"threads per library: {bench.threads}; clock: {args.clock}"
              + ("" if args.clock == "wall" else " (CPU time: for comparing code paths, not a target figure)"))
    bench.say(f"python {platform.python_version()}, numpy {np.__version__}"
              + ("" if isinstance(torch, Exception) else f", torch {torch.__version__}")
              + (f", faiss {faiss.__version__}" if faiss else ""))
    env_note = ", ".join(f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ)
    bench.say("OPENBLAS environment: " + (env_note or "unset (each OpenBLAS picks its own kernel)")
              + f"; faiss kernel asked for: {args.faiss_coretype}")
    for entry in bench.env()["blas"]:
        bench.say("BLAS: " + describe_blas(entry))
    if args.gpu != "no" and gpu is None:
        bench.say(f"GPU part: SKIPPED ({why_no_gpu})")
    bench.say(f"run folder: {out_dir}")

    points = []
    for place in places:
        if not place.gpu and _NEED_RATE & set(sections):
            bench.rate = SECTIONS["floor"](bench, place)
            bench.save()
        for name in sections:
            if name == "floor":
                if place.gpu:
                    SECTIONS["floor"](bench, place)
                continue
            result = SECTIONS[name](bench, place)
            if name == "scaling" and result:
                points += result
            bench.save()
    if args.plots is not None and points:
        from scripts.bench.scaling import plot

        folder = out_dir if args.plots == "" else pathlib.Path(args.plots).expanduser()
        subtitle = (f"{bench.env()['cpu']}, {bench.threads} threads, {bench.started:%Y-%m-%d}; "
                    + ("CIFAR-10" if bench.data.real else "random data of CIFAR-10's shapes"))
        for path in plot(points, folder, subtitle):
            bench.say(f"plot: {path}")
    bench.say(f"\nload average at end {load_average()}")
    bench.save(final=True)
    print(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    if bench.failures:
        print(f"error: {len(bench.failures)} contender(s) failed: {'; '.join(bench.failures)}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
