"""What every benchmark section shares: the run, the contenders and their timing, the machine, the data.

A section builds :class:`Tool` objects (one per contender: xpml on a backend, faiss, PyTorch, ...),
times them with :meth:`Bench.run_tools` (warm-up, then interleaved rounds, each phase closed by a
device synchronisation), and reports them with :meth:`Bench.report`, which prints a table row
and keeps a JSON record per contender. Every record carries the machine: the CPU model, the BLAS
library and kernel each library runs on, the thread counts and the load average at that moment.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import importlib
import math
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from xpml import backend
from xpml.backend.io import atomic_write
from xpml.cli import _runs
from xpml.cli._download import default_data_dir, find_cifar10

__all__ = [
    "MiB",
    "Bench",
    "Data",
    "Place",
    "Tool",
    "Unavailable",
    "blas_info",
    "fmt_s",
    "host",
    "load_average",
    "optional",
    "paired_ratio",
]

MiB = 2**20
# The notes printed under a table go with the case; a wide tool name must not break the layout.
_TOOL_WIDTH = 44


# ---- optional libraries ---------------------------------------------------------------------------


def optional(name: str):
    """The module ``name``, or the ImportError that says why it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        return exc


class Unavailable(Exception):
    """A contender that cannot run here (a library missing, an API not there yet): one line says why."""


def torch_or_unavailable(device: str = "cpu"):
    """PyTorch, on ``device`` ("cpu" or "cuda"); :class:`Unavailable` with the reason otherwise."""
    torch = optional("torch")
    if isinstance(torch, Exception):
        raise Unavailable(f"PyTorch is not installed ({torch}): pip install -e '.[bench]'")
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("torch has no CUDA device here")
    return torch


def host(a) -> np.ndarray:
    """``a`` (an array of any backend, a PyTorch tensor, a list) as a NumPy array on the host."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a PyTorch tensor, on any device
        return a.detach().cpu().numpy()
    return np.asarray(backend.to_numpy(a))


# ---- where a section runs -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Place:
    """The CPU or the GPU half of a run: xpml's backends there and the device of the PyTorch peers."""

    name: str  # "cpu" or "gpu"
    backends: tuple  # backend.Backend objects xpml runs on here
    torch_device: str  # "cpu" or "cuda"

    @property
    def gpu(self) -> bool:
        return self.name == "gpu"

    @property
    def title(self) -> str:
        return "GPU" if self.gpu else "CPU"


# ---- the machine ---------------------------------------------------------------------------------


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str:
    return backend.get_backend("numpy").device_name


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _owner(filepath: str) -> str:
    """The Python distribution a shared library came with (``numpy.libs/...`` -> numpy)."""
    parts = pathlib.Path(filepath).parts
    for p in parts:
        if p.endswith(".libs"):
            return p.removesuffix(".libs")
    if "site-packages" in parts:
        i = parts.index("site-packages")
        if i + 1 < len(parts):
            return parts[i + 1]
    return pathlib.Path(filepath).name


def blas_info() -> list[dict]:
    """The BLAS (and OpenMP) libraries loaded now: library, kernel, version and threads of each."""
    out = []
    tpc = optional("threadpoolctl")
    if isinstance(tpc, Exception):
        out.append({"library": "?", "note": f"threadpoolctl not installed ({tpc}); BLAS kernels unknown"})
    else:
        for info in tpc.threadpool_info():
            out.append({"library": _owner(info["filepath"]), "api": info.get("user_api"),
                        "implementation": info.get("internal_api"), "version": info.get("version"),
                        "kernel": info.get("architecture"), "threads": info.get("num_threads"),
                        "file": pathlib.Path(info["filepath"]).name})
    torch = sys.modules.get("torch")
    if torch is not None:
        out.append({"library": "torch", "api": "blas",
                    "implementation": "mkl" if torch.backends.mkl.is_available() else "its own BLAS",
                    "version": torch.__version__, "kernel": torch.backends.cpu.get_cpu_capability(),
                    "threads": torch.get_num_threads()})
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        out.append({"library": "faiss", "api": "openmp", "implementation": "openmp",
                    "version": faiss.__version__, "threads": faiss.omp_get_max_threads()})
    return out


def describe_blas(entry: dict) -> str:
    if "note" in entry:
        return entry["note"]
    kernel = f" kernel {entry['kernel']}" if entry.get("kernel") else ""
    return (f"{entry['library']}: {entry.get('api')} {entry.get('implementation')} {entry.get('version')}{kernel}, "
            f"{entry.get('threads')} threads")


# ---- formatting and statistics -------------------------------------------------------------------


def fmt_s(t: float | None) -> str:
    if t is None or not math.isfinite(t):
        return "-"
    if t >= 1.0:
        return f"{t:.3f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3f} ms"
    return f"{t * 1e6:.1f} us"


def _finite(v):
    """``v`` for JSON: non-finite floats become None (the file stays standard JSON)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, np.generic):
        return _finite(v.item())
    return v


# ---- contenders and their timing -----------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Tool:
    """A contender. ``prepare()`` (untimed) returns what is timed: a callable, or a list of
    ``(phase, callable)`` run in order, each phase timed on its own (``[("train", ...),
    ("predict", ...)]``); the whole is their sum. The last phase's result is kept in ``out``.

    ``per`` is the units of work in one run (iterations, calls) for per-unit figures; ``probe``
    a memory probe (:class:`RssProbe`, ...) read around each timed run.
    """

    name: str
    prepare: Callable
    library: str = "xpml"
    backend: str = ""
    repeats: int | None = None
    warmup: int = 1
    per: int = 1
    unit: str = ""
    probe: object = None
    times: list = dataclasses.field(default_factory=list)
    splits: dict = dataclasses.field(default_factory=dict)
    peak_mib: float | None = None
    out: object = None
    error: str | None = None
    note: str = ""

    def phases(self):
        fn = self.prepare()
        return fn if isinstance(fn, list) else [("whole", fn)]

    def median(self, phase: str | None = None) -> float:
        ts = self.times if phase is None else self.splits[phase]
        return statistics.median(ts) / self.per

    def best(self, phase: str | None = None) -> float:
        ts = self.times if phase is None else self.splits[phase]
        return min(ts) / self.per


_SAME = object()


def paired_ratio(a: Tool, b: Tool, phase: str | None = None, phase_b=_SAME) -> float:
    """Median over rounds of a's time / b's time (per unit of work), over the rounds both ran.

    ``phase`` (of a) and ``phase_b`` (of b, default the same) choose a split; None the whole.
    The contenders run interleaved, so a load that drifts during the run touches both sides of
    each round alike; the median of the per-round ratios is robust to it.
    """
    phase_b = phase if phase_b is _SAME else phase_b
    ta = a.times if phase is None else a.splits[phase]
    tb = b.times if phase_b is None else b.splits[phase_b]
    n = min(len(ta), len(tb))
    return statistics.median((x / a.per) / (y / b.per) for x, y in zip(ta[:n], tb[:n], strict=True))


def _sync(out=None) -> None:
    """Wait for every device that may hold queued work, and for ``out`` (arrays, tuples of them)."""
    items = out if isinstance(out, (tuple, list)) else [out]
    for item in items:
        if item is not None and not isinstance(item, (int, float, str, dict)):
            try:
                backend.synchronize(item)
            except (TypeError, ValueError):
                pass  # not an array the shim knows (a fitted model, a history): nothing queued on it
        ready = getattr(item, "block_until_ready", None)  # JAX arrays are computed asynchronously
        if callable(ready):
            ready()
    backend.synchronize(None)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class RssProbe:
    """Resident-set high-water mark above the level at the start (``/proc/self/clear_refs``).

    It sees BLAS buffers and other native allocations that tracemalloc misses. Linux only; where
    it is unavailable the tool reports no memory figure.
    """

    def start(self) -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current resident set
        except OSError:
            return False
        self.before = _status_kib("VmRSS")
        return True

    def stop(self) -> float:
        return (_status_kib("VmHWM") - self.before) / 1024


class CupyPoolProbe:
    """Growth of CuPy's memory pool above what it held at the start (idle blocks freed first)."""

    def start(self) -> bool:
        import cupy

        self.pool = cupy.get_default_memory_pool()
        self.pool.free_all_blocks()
        self.before = self.pool.total_bytes()
        return True

    def stop(self) -> float:
        return (self.pool.total_bytes() - self.before) / MiB


class TorchCudaProbe:
    """Peak CUDA memory PyTorch allocated above what it held at the start."""

    def start(self) -> bool:
        import torch

        torch.cuda.reset_peak_memory_stats()
        self.before = torch.cuda.memory_allocated()
        return True

    def stop(self) -> float:
        import torch

        return (torch.cuda.max_memory_allocated() - self.before) / MiB


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


# ---- the data ------------------------------------------------------------------------------------


def cifar10_root(data_dir, *, quick: bool):
    """The CIFAR-10 folder the benchmark reads: in ``data_dir`` (an error if it has none), else in
    the data cache; None for random data (``quick``, or no CIFAR-10 in the cache)."""
    if quick:
        return None
    root = find_cifar10(data_dir if data_dir is not None else default_data_dir())
    if data_dir is not None and root is None:
        raise FileNotFoundError(f"--data-dir {data_dir} holds no CIFAR-10 (cifar-10-batches-py with "
                                "data_batch_1..5, test_batch and batches.meta): fetch it there with "
                                f"`xpml download --data-dir {data_dir}`, or leave --data-dir out to run on random data")
    return root


class Data:
    """Float32, mean-subtracted host arrays of CIFAR-10's shapes for every workload.

    CIFAR-10 comes from ``--data-dir`` (or the data cache, ``$XPML_DATA_DIR``, where ``xpml download``
    puts it), in its original layout, read by the library's loader; without it, random data of the
    same shapes, and :attr:`source` says so. ``--quick`` always uses small random data.
    """

    def __init__(self, *, quick: bool, data_dir=None):
        root = cifar10_root(data_dir, quick=quick)
        if root is None:
            D = 3072 if not quick else 256
            n_train, n_test = (50000, 10000) if not quick else (2000, 400)
            rng = np.random.default_rng(0)
            Xtr = rng.integers(0, 256, (n_train, D), dtype=np.uint8).astype(np.float32)
            ytr = rng.integers(0, 10, n_train)
            Xte = rng.integers(0, 256, (n_test, D), dtype=np.uint8).astype(np.float32)
            yte = rng.integers(0, 10, n_test)
            why = "--quick" if quick else (f"no CIFAR-10 in {default_data_dir()} and no --data-dir; "
                                           "`xpml download` fetches it there")
            self.source = f"RANDOM data of CIFAR-10's shapes, not CIFAR-10 ({why}): accuracies are meaningless"
            self.real = False
        else:
            from xpml.classifiers.data_utils import load_CIFAR10

            Xtr, ytr, Xte, yte = (backend.to_numpy(a) for a in load_CIFAR10(root, dtype="float32"))
            Xtr, Xte = Xtr.reshape(Xtr.shape[0], -1), Xte.reshape(Xte.shape[0], -1)
            self.source = f"CIFAR-10 from {root}"
            self.real = True
        n_val = 1000 if not quick else 100
        self.X_all, self.y_all = Xtr, np.asarray(ytr, dtype=np.int64)  # kNN: the whole training set
        self.X_test, self.y_test = Xte, np.asarray(yte, dtype=np.int64)
        mean = Xtr[:-n_val].mean(axis=0)
        # The course's split: the last 1,000 training images are the validation set.
        self.X_train = Xtr[:-n_val] - mean
        self.y_train = self.y_all[:-n_val]
        self.X_val = Xtr[-n_val:] - mean
        self.y_val = self.y_all[-n_val:]
        self.X_test_c = Xte[:1000] - mean
        self.y_test_c = self.y_test[:1000]


# ---- the run -------------------------------------------------------------------------------------


class Bench:
    """One benchmark run: its settings, its output folder, what it printed and its records."""

    def __init__(self, args, out_dir: pathlib.Path, command: str):
        self.args = args
        self.quick = args.quick
        self.repeats = args.repeats
        self.out_dir = out_dir
        self.command = command
        self.clock = time.perf_counter if args.clock == "wall" else time.process_time
        self.threads = args.threads or os.cpu_count() or 1
        self.rate: float | None = None  # the best measured float32 GEMM rate (GFLOP/s) on the CPU
        self.lines: list[str] = []
        self.records: list[dict] = []
        self.failures: list[str] = []
        self.checked: set[str] = set()  # one-off checks already made in this run (a peer's kernel)
        self.started = datetime.datetime.now(datetime.UTC)
        self._data = None

    # -- output --

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def header(self) -> None:
        self.say(f"| {'tool':<{_TOOL_WIDTH}} | {'time (median / best)':>26} | {'split (medians)':<36} "
                 f"| {'ratio (median of rounds)':<40} | note |")
        self.say(f"|{'-' * (_TOOL_WIDTH + 2)}|{'-' * 28}|{'-' * 38}|{'-' * 42}|------|")

    def row(self, tool: str, value: str, split: str = "", ratio: str = "", note: str = "") -> None:
        self.say(f"| {tool:<{_TOOL_WIDTH}} | {value:>26} | {split:<36} | {ratio:<40} | {note} |")

    def skip(self, section: str, case: str, name: str, reason: str) -> None:
        """One line for a contender that cannot run here, and a record saying so."""
        self.say(f"{name}: SKIPPED ({reason})")
        self.records.append(_finite({"section": section, "case": case, "tool": name, "status": "skipped",
                                     "reason": reason, "env": self.env()}))

    def env(self) -> dict:
        """The machine as it is now: CPU, BLAS kernels and threads per library, load average."""
        return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": self.threads, "blas": blas_info(),
                "load_average": load_average(), "clock": self.args.clock}

    @property
    def data(self) -> Data:
        if self._data is None:
            self._data = Data(quick=self.quick, data_dir=self.args.data_dir)
            self.say(f"data: {self._data.source}")
        return self._data

    # -- timing --

    def compete(self, section: str, case_name: str, factories, place: Place, case) -> list[Tool]:
        """Build the contenders of ``factories`` (``(name, factory)``; a factory returns Tools or
        raises :class:`Unavailable`), time them together, and return those that ran."""
        tools = []
        for name, factory in factories:
            try:
                tools += factory(self, place, case)
            except Unavailable as exc:
                self.skip(section, case_name, name, str(exc))
        return self.time(section, case_name, tools)

    def time(self, section: str, case_name: str, tools: list[Tool], repeats: int | None = None) -> list[Tool]:
        """:meth:`run_tools`, with a record for each contender that failed."""
        done = self.run_tools(tools, repeats)
        for t in tools:
            if t.error is not None:
                self.records.append(_finite({"section": section, "case": case_name, "tool": t.name,
                                             "status": "failed", "error": t.error, "env": self.env()}))
        return done

    def run_tools(self, tools: list[Tool], repeats: int | None = None) -> list[Tool]:
        """Warm each tool up, then time them interleaved (A B C, C B A, ...); return those that ran.

        A tool that raises is reported as FAILED with its error (the run goes on and exits non-zero
        at the end); ``XPML_TRACEBACK=1`` shows the traceback instead.
        """
        repeats = repeats or self.repeats
        live = []
        for t in tools:
            try:
                for _ in range(t.warmup):
                    out = None
                    for _, fn in t.phases():
                        out = fn()
                    _sync(out)
                    t.out = out
                live.append(t)
            except Exception as exc:  # noqa: BLE001  (a contender's failure must not end the run)
                self._failed(t, exc)
        rounds = max([repeats] + [t.repeats or 0 for t in live])
        for r in range(rounds):
            for t in (live if r % 2 == 0 else live[::-1]):
                if t.error is not None or len(t.times) >= (t.repeats or repeats):
                    continue
                try:
                    self._time_once(t)
                except Exception as exc:  # noqa: BLE001
                    self._failed(t, exc)
        return [t for t in live if t.error is None and t.times]

    def _time_once(self, t: Tool) -> None:
        phases = t.phases()
        gc.collect()
        probing = t.probe is not None and t.probe.start()
        _sync()
        total, out = 0.0, None
        for name, fn in phases:
            t0 = self.clock()
            out = fn()
            _sync(out)
            dt = self.clock() - t0
            total += dt
            if len(phases) > 1:
                t.splits.setdefault(name, []).append(dt)
        t.times.append(total)
        if probing:
            peak = t.probe.stop()
            t.peak_mib = peak if t.peak_mib is None else max(t.peak_mib, peak)
        t.out = out

    def _failed(self, t: Tool, exc: Exception) -> None:
        if os.environ.get("XPML_TRACEBACK") == "1":
            raise exc
        t.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        self.failures.append(f"{t.name}: {t.error}")
        self.say(f"{t.name}: FAILED ({t.error})")

    # -- reporting --

    def report(self, section: str, case: str, t: Tool, *, ratios: dict | None = None, target=None,
               floor_s: float | None = None, extra: dict | None = None, label: str | None = None) -> dict:
        """Print ``t``'s row and keep its record.

        ``ratios`` maps a label (``"vs faiss"``) to a ratio (this / that, median of rounds);
        ``target`` is ``(label, limit)``: the ratio under that label must be at most ``limit``.
        ``floor_s`` is the time the work's FLOPs take at the best measured GEMM rate; ``label``
        the row's text, when it should say more than the tool's name.
        """
        ratios = dict(ratios or {})
        unit = f"/{t.unit}" if t.unit else ""
        value = f"{fmt_s(t.median())} / {fmt_s(t.best())}{unit}"
        split = " + ".join(f"{k} {fmt_s(t.median(k))}" for k in t.splits)
        if not split and t.per > 1:  # per-unit rows also show the whole call
            split = f"whole {fmt_s(statistics.median(t.times))} / {fmt_s(min(t.times))}"
        shown = []
        verdict = None
        for name, r in ratios.items():
            if not math.isfinite(r):
                shown.append(f"{name} -")
                continue
            text = f"{name} {r:.2f}x"
            if target is not None and name == target[0]:
                verdict = r <= target[1]
                text += f" (target <= {target[1]:.2f}x: {'met' if verdict else 'MISSED'})"
            shown.append(text)
        notes = [t.note] if t.note else []
        if t.peak_mib is not None:
            notes.append(f"peak +{t.peak_mib:.0f} MiB")
        if floor_s:
            notes.append(f"{floor_s / t.best():.0%} of floor")
        self.row(label or t.name, value, split, "; ".join(shown), "; ".join(notes))
        rec = {
            "section": section, "case": case, "tool": t.name, "library": t.library, "backend": t.backend,
            "status": "ok", "unit": t.unit or "run", "per": t.per,
            "times_s": t.times, "median_s": t.median(), "best_s": t.best(),
            "splits": {k: {"times_s": v, "median_s": t.median(k), "best_s": t.best(k)} for k, v in t.splits.items()},
            "ratios": ratios, "target": None if target is None else
            {"ratio": target[0], "at_most": target[1], "met": verdict},
            "floor_s": floor_s, "fraction_of_floor": floor_s / t.best() if floor_s else None,
            "peak_mib": t.peak_mib, "rounds": len(t.times), **(extra or {}), "env": self.env(),
        }
        rec = _finite(rec)
        self.records.append(rec)
        return rec

    def note(self, section: str, case: str, text: str, **values) -> None:
        """A line under a table (a check, an accuracy) and its values in the records."""
        self.say(text)
        self.records.append(_finite({"section": section, "case": case, "status": "note", "text": text, **values}))

    # -- files --

    def save(self, *, final: bool = False) -> None:
        """Write ``results.json`` and ``results.md`` into the run folder, atomically.

        Called after every section, so a run stopped part-way keeps what it measured.
        """
        doc = {"command": self.command, "created": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "complete": final, "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                                              "system": f"{platform.system()} {platform.release()}",
                                              "python": platform.python_version(), "numpy": np.__version__},
               "records": self.records}
        _runs.write_json(self.out_dir / "results.json", doc)
        write_text(self.out_dir / "results.md", "\n".join(
            [f"Command: `{self.command}`", "", "```", *self.lines, "```", ""]))


def write_text(path: pathlib.Path, text: str) -> None:
    """Write ``text`` atomically (a reader never sees half a file), with the umask's permissions."""
    with atomic_write(path, text=True) as f:
        f.write(text)
