"""The run folder and its pictures: results JSON, curves, weights as images, decision regions.

A run folder holds ``results.json`` (hyperparameters, accuracies, times, curves), one PNG per
picture and one checkpoint per trained model. It defaults to a new ``runs/<timestamp>-<what>``
(``runs/`` is git-ignored). Matplotlib draws off-screen (Agg): no display is needed; without
matplotlib (a bare install) the run draws nothing and says so once.

A run claims its folder before writing anything (:func:`claim_run_dir`): it holds a lock on it
while it runs (a second run into the same folder is refused), and an ``INCOMPLETE`` marker says,
until ``results.json`` is written, that the files there are not (yet) described by one. An
earlier run's ``results.json`` is removed before any new file is written, so a run killed halfway
never leaves old results beside new weights. Every file is written atomically
(:func:`xpml.backend.io.atomic_write`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backend.io import atomic_write, temp_token
from ._locks import LockedError, LockRefused, clean_stale_temp_files, file_lock

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after choosing the off-screen backend)
    import matplotlib.ticker
except ImportError:  # a bare install: the plot_* functions draw nothing (see _drawing)
    matplotlib = plt = None

__all__ = [
    "INCOMPLETE",
    "RESULTS",
    "RunFolder",
    "claim_run_dir",
    "diverged_at",
    "divergence_note",
    "divergence_record",
    "first_non_finite",
    "format_table",
    "headline",
    "jsonable",
    "print_json",
    "Run",
    "start",
    "plot_curves",
    "plot_decision_regions",
    "plot_image",
    "plot_image_grid",
    "plot_search",
    "with_note_column",
    "write_json",
]

RESULTS = "results.json"
INCOMPLETE = "INCOMPLETE"
MANIFEST = ".xpml-manifest.json"
_LOCK = ".xpml-run.lock"
_RESERVED = (RESULTS, INCOMPLETE, MANIFEST, _LOCK)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MAX_MANIFEST = 64 << 20


# ---- the run folder: claimed atomically, locked while in use, marked until complete --------------

def _read_manifest(path: Path) -> dict | None:
    """The folder's manifest, or None when there is none; a clear error when it is not xpml's."""
    from ._cli import UsageError

    name = path / MANIFEST
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        if name.is_symlink():
            raise UsageError(f"--out {path}: {MANIFEST} is a symbolic link; xpml does not follow links: "
                             "choose a new or empty folder") from None
        raise
    try:
        with os.fdopen(fd, "rb") as f:
            raw = f.read(_MAX_MANIFEST + 1)
        manifest = json.loads(raw) if len(raw) <= _MAX_MANIFEST else None
    except (OSError, ValueError):
        manifest = None
    if (not isinstance(manifest, dict) or manifest.get("xpml_run") != 1
            or not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("done"), dict)
            or not isinstance(manifest.get("temp_tokens"), list)):
        raise UsageError(f"--out {path}: {MANIFEST} is not a manifest xpml wrote (unreadable or changed), so "
                         "xpml cannot tell its files from yours: choose a new or empty folder")
    return manifest


def _sha256_nofollow(path: Path) -> str | None:
    """SHA-256 of the plain file ``path`` (never through a link), or None when it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _plain_name(name) -> bool:
    return (isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..")
            and name not in _RESERVED)


class RunFolder:
    """A run folder this process has claimed: locked, marked ``INCOMPLETE`` until :meth:`finish`.

    Its manifest (``.xpml-manifest.json``, written by xpml alone) records the run's fingerprint
    (command and configuration), the SHA-256 of every file the run wrote, the records of the
    models it completed, and the token in its temporary files' names.
    """

    def __init__(self, path: Path, created: bool, lock: contextlib.ExitStack, manifest: dict):
        self.path, self.created, self._lock, self.manifest = path, created, lock, manifest

    def _save_manifest(self) -> None:
        with atomic_write(self.path / MANIFEST, text=True) as f:
            json.dump(jsonable(self.manifest), f, indent=1, allow_nan=False)
            f.write("\n")

    def _record(self, names) -> None:
        for name in names:
            if _plain_name(name) or name == RESULTS:
                digest = _sha256_nofollow(self.path / name)
                if digest is not None:
                    self.manifest["files"][name] = digest

    def completed(self, key: str):
        """What :meth:`complete` kept for ``key`` in the run this one resumes, if its files are intact."""
        entry = self.manifest["done"].get(key)
        if not isinstance(entry, dict):
            return None
        files = entry.get("files", [])
        if any(self.manifest["files"].get(n) is None or _sha256_nofollow(self.path / n) != self.manifest["files"][n]
               for n in files):
            return None  # changed or gone since: trained again
        return entry.get("record")

    def complete(self, key: str, record, files) -> None:
        """Record that ``key`` (a model) is done, with what the run reports about it and its files."""
        files = [n for n in files if _plain_name(n)]
        self._record(files)
        self.manifest["done"][key] = {"record": record, "files": files}
        self._save_manifest()

    def end(self, files=()) -> None:
        """End a run that wrote its own results: record ``files`` (names in the folder) and
        ``results.json``, remove the marker, give the folder up."""
        self._record([*files, RESULTS])
        self._save_manifest()
        # Only here, at the true end of the run, does the marker go.
        (self.path / INCOMPLETE).unlink(missing_ok=True)
        self.release()

    def finish(self, report: dict) -> None:
        """Write ``results.json``, record the run's files, remove the marker, then give the folder up."""
        write_json(self.path / RESULTS, report)
        names = []

        def walk(o):  # the report built by this run, in memory: the files it wrote
            if isinstance(o, dict):
                for k, v in o.items():
                    if k == "files" and isinstance(v, dict):
                        names.extend(v.values())
                    else:
                        walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)

        walk(report)
        self.end(names)

    def abort(self) -> None:
        """Give the folder up after a failure: the marker stays, unless nothing was written and no model
        completed (then the marker and manifest go, and the folder too if this run created it)."""
        with contextlib.suppress(OSError):
            if _contents(self.path) == [INCOMPLETE] and not self.manifest["files"] and not self.manifest["done"]:
                (self.path / INCOMPLETE).unlink()
                (self.path / MANIFEST).unlink(missing_ok=True)
                if self.created:
                    self.release()
                    _remove_created(self.path)
        self.release()

    def release(self) -> None:
        _CLAIMED.pop(os.path.abspath(self.path), None)
        self._lock.close()


# The run folders this process holds, by absolute path: a file written into one is recorded in its
# manifest as soon as it is in place (note_written), so that a run killed at any point leaves no
# file of its own unrecorded (and --overwrite can remove it).
_CLAIMED: dict[str, RunFolder] = {}


def note_written(path) -> None:
    """Record ``path``, a file this process has just written, in the manifest of the run folder it is in."""
    path = Path(path)
    folder = _CLAIMED.get(os.path.abspath(path.parent))
    if folder is not None:
        folder._record([path.name])
        folder._save_manifest()


def _contents(path: Path) -> list[str]:
    """What a run folder holds, apart from its lock (ours, held) and its manifest."""
    return sorted(n for n in os.listdir(path) if n not in (_LOCK, MANIFEST))


def _remove_created(path: Path) -> None:
    """Remove ``path`` (a folder this run made) if it is empty; never anything in it."""
    with contextlib.suppress(OSError):
        path.rmdir()


def _refuse_link(path: Path, what: str) -> None:
    from ._cli import UsageError

    if path.is_symlink():
        raise UsageError(f"{what} {path} is a symbolic link (to {os.readlink(path)}); xpml does not write through "
                         "links: give the folder itself")


def _new_run_dir(what: str) -> Path:
    """A new ``runs/<YYYYmmdd-HHMMSS>-<what>`` (with a suffix if that exists), made atomically."""
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{what}"
    _refuse_link(base.parent, "the run folder's parent")
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()  # atomic: of two runs started in the same second, each gets its own
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"too many run folders named {base}-N; choose one with --out")


def fingerprint_difference(recorded: dict, wanted: dict) -> str | None:
    """``"key: recorded -> wanted, ..."`` for the keys where two fingerprints differ, or None."""
    keys = sorted(set(recorded) | set(wanted))
    diffs = [f"{k} {recorded.get(k)!r} -> {wanted.get(k)!r}" for k in keys if recorded.get(k) != wanted.get(k)]
    return "; ".join(diffs) if diffs else None


def claim_run_dir(out, what: str, *, resume: bool = False, overwrite: bool = False,
                  command: str = "xpml run", fingerprint: dict | None = None) -> RunFolder:
    """Claim the folder a run writes into; return it locked and marked ``INCOMPLETE``.

    Without ``out``, a new ``runs/<timestamp>-<what>`` folder. With ``out``, that folder if it is
    new or empty; one holding an interrupted xpml run (``INCOMPLETE``) only with ``resume`` (for
    the same ``fingerprint``: command and configuration) or ``overwrite``; one holding a finished
    xpml run only with ``overwrite``. A folder holding anything xpml did not record in its
    manifest is refused, and so is one another run is writing into, and a link. On a claim the
    earlier ``results.json`` is removed (after the marker is written); with ``overwrite``, so are
    the files the manifest records whose contents are still what xpml wrote. Nothing else is
    removed, apart from the temporary files of killed writers whose names carry a token the
    manifest records.
    """
    from ._cli import UsageError

    fingerprint = jsonable(fingerprint or {"what": what})
    if out is None:
        path = _new_run_dir(what)
        created = [path]
    else:
        path = Path(out).expanduser()
        _refuse_link(path, "--out")
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"--out {path} exists and is not a directory")
        created = [p for p in (path, *path.parents) if not p.exists()]
        path.mkdir(parents=True, exist_ok=True)
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(file_lock(path / _LOCK, blocking=False, note=command))
    except LockedError as exc:
        _remove_all(created)
        raise UsageError(f"--out {path} is in use by another run ({exc.holder or 'unknown'}): "
                         "wait for it to finish, or choose another folder") from None
    except LockRefused as exc:
        raise UsageError(f"--out {path}: {exc}") from None
    try:
        manifest = _read_manifest(path)
        if manifest is not None:
            clean_stale_temp_files(path, [t for t in manifest["temp_tokens"] if isinstance(t, str)])
        left = _contents(path)
        if manifest is None and left:
            raise UsageError(f"--out {path} is not empty and holds no run xpml recorded ({', '.join(left[:3])}"
                             f"{', ...' if len(left) > 3 else ''}): xpml writes only into a new or empty folder, or "
                             "one it wrote itself: choose another folder")
        manifest = manifest or {"xpml_run": 1, "fingerprint": fingerprint, "files": {}, "done": {},
                                "temp_tokens": []}
        interrupted = INCOMPLETE in left
        finished = bool(left) and not interrupted
        if interrupted and not (resume or overwrite):
            raise UsageError(f"--out {path} holds an interrupted run ({INCOMPLETE}): pass --resume to finish it, "
                             "--overwrite to replace it, or choose another folder")
        if finished and not overwrite:
            hint = "--resume continues only an interrupted run; " if resume else ""
            raise UsageError(f"--out {path} holds a finished run: {hint}pass --overwrite to replace it (only the "
                             "files xpml wrote there go), or choose another folder")
        if interrupted and resume and not overwrite:
            diff = fingerprint_difference(manifest.get("fingerprint") or {}, fingerprint)
            if diff is not None:
                raise UsageError(f"--resume: --out {path} holds an interrupted run of another command or "
                                 f"configuration ({diff}): run it as it was, or pass --overwrite to replace it")
        stale = []
        if overwrite:
            stale = [n for n, digest in manifest["files"].items()
                     if _plain_name(n) and _sha256_nofollow(path / n) == digest]
            manifest = {"xpml_run": 1, "fingerprint": fingerprint, "files": {}, "done": {},
                        "temp_tokens": manifest["temp_tokens"]}
        manifest["temp_tokens"] = [*manifest["temp_tokens"][-50:], temp_token()]
        manifest["fingerprint"] = fingerprint
        folder = RunFolder(path, bool(created), lock, manifest)
        with atomic_write(path / INCOMPLETE, text=True) as f:
            f.write(f"An xpml run is writing into this folder, or was interrupted: until results.json is written,\n"
                    f"its files are not described by one. Started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}, "
                    f"pid {os.getpid()}: {command}\n")
        folder._save_manifest()
        # The marker is down: only now may the old results go, and with --overwrite what xpml wrote.
        manifest["files"].pop(RESULTS, None)
        (path / RESULTS).unlink(missing_ok=True)
        for name in stale:
            (path / name).unlink(missing_ok=True)
        folder._save_manifest()
        _CLAIMED[os.path.abspath(path)] = folder
    except BaseException:
        lock.close()
        if created:
            with contextlib.suppress(OSError):
                if _contents(path) in ([], [INCOMPLETE]):
                    (path / INCOMPLETE).unlink(missing_ok=True)
                    (path / MANIFEST).unlink(missing_ok=True)
            _remove_all(created)
        raise
    return folder


def _remove_all(created: list[Path]) -> None:
    """Remove the folders a claim made (innermost first), each only if it is empty."""
    for p in created:
        _remove_created(p)


# ---- results JSON: standard JSON, diverged values as null beside a flag -------------------------

def jsonable(obj):
    """``obj`` as plain JSON values: NumPy scalars and arrays as numbers and lists, paths as strings,
    and NaN and infinities as None (JSON has no such numbers; a record says why, e.g. ``diverged``)."""
    if isinstance(obj, dict):
        return {k.item() if isinstance(k, np.generic) else k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, obj) -> None:
    """Write ``obj`` as indented standard JSON, atomically (a reader never sees half a file).

    Non-finite numbers become null (:func:`jsonable`): a diverged run is recorded, never lost.
    Writing ``results.json`` (a search rewrites it after every trial) leaves the folder's
    ``INCOMPLETE`` marker alone: only :meth:`RunFolder.finish`, at the end of the run, removes it.
    """
    path = Path(path)
    with atomic_write(path, text=True) as f:
        json.dump(jsonable(obj), f, indent=2, allow_nan=False)
        f.write("\n")


def first_non_finite(values) -> int | None:
    """Index of the first NaN or infinite value in ``values``, or None."""
    bad = ~np.isfinite(np.asarray(values, dtype=np.float64))
    return int(np.argmax(bad)) if bad.any() else None


def diverged_at(fit) -> int | None:
    """The iteration (0-based) at which ``fit``'s training diverged, or None.

    The model's own record (``diverged_at`` in its training history or on the estimator, set when
    training stops at a non-finite loss) comes first; else the first non-finite loss in the curve.
    """
    history = fit.history if isinstance(fit.history, dict) else {}
    at = history.get("diverged_at")
    if at is None:
        at = getattr(fit.estimator, "diverged_at", None)
    if at is None and fit.loss:
        at = first_non_finite(fit.loss)
    return None if at is None else int(at)


def divergence_record(fit) -> dict:
    """``{"diverged": bool, "diverged_at": iteration or None}``: what a model's record says about it."""
    at = diverged_at(fit)
    return {"diverged": at is not None, "diverged_at": at}


def divergence_note(record: dict) -> str | None:
    """``"diverged at it N"`` for a record holding :func:`divergence_record`'s keys, else None."""
    return f"diverged at it {record['diverged_at']}" if record.get("diverged") else None


def with_note_column(columns: list, rows: list[dict]) -> list:
    """``columns`` and, when a row has a ``note`` (such as :func:`divergence_note`), a last column for it."""
    return columns + [("note", "note")] if any(row.get("note") for row in rows) else columns


@dataclass
class Run:
    """What a script's run works with: backend, bars, BLAS threads, data and run folder."""

    args: object
    bk: object
    progress: object
    threads: int | None
    data: object = None
    run_dir: Path | None = None
    folder: RunFolder | None = None
    started: float = field(default_factory=time.perf_counter)

    def finish(self, report: dict) -> None:
        """Write the run's ``results.json`` and give its folder up (see :class:`RunFolder`)."""
        self.folder.finish(report)

    def report(self, prog: str, argv) -> dict:
        """What every run records about itself: command, data, backend, device, seed, threads, time."""
        import platform
        import sys

        return {
            "command": " ".join([prog, *(argv if argv is not None else sys.argv[1:])]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dataset": self.data.describe(),
            "backend": self.bk.label,
            "device": self.bk.device_name,
            "seed": self.args.seed,
            "dtype": self.args.dtype,
            "cpu_threads": self.threads,  # BLAS threads; None: the BLAS default
            "total_s": round(time.perf_counter() - self.started, 3),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "run_dir": str(self.run_dir),
        }


# Flags that say where a run writes, shows or fetches, or where its work runs, not what it computes:
# a resumed run may change them.
_NOT_CONFIGURATION = ("out", "resume", "overwrite", "json", "quiet", "cpu_threads", "download", "data_dir", "url",
                      "md5", "timeout", "scheduler", "gpus_per_trial", "backend")


def fingerprint(args, dataset: str, what: str, bk) -> dict:
    """What a run computes: the command and models (``what``), the dataset, the backend it runs on,
    xpml's version and every flag given that changes results; ``--resume`` needs the same."""
    from .. import __version__

    given = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_CONFIGURATION and v is not None}
    return jsonable({"what": what, "dataset": dataset, "backend": bk.label, "xpml": __version__, **given})


@contextlib.contextmanager
def start(args, dataset: str, what: str, *, check=None):
    """Choose the backend, run ``check(bk)`` (e.g. a memory estimate), claim the run folder, limit BLAS
    threads and load the data, in that order (a mistake in the flags is reported before any data is
    read); yields a :class:`Run`.

    On an error the folder is given up (:meth:`RunFolder.abort`); on success the caller ends the run
    with :meth:`Run.finish`. NumPy's overflow warnings are silenced while it runs: a model whose loss
    stops being finite is reported as diverged in the table and the results instead.
    """
    from . import _cli, _datasets
    from ._progress import Progress

    threads = _datasets.cpu_threads(args, dataset)
    # The thread limits come first: choosing JAX starts XLA, which reads its thread flags only then.
    with _cli.cpu_threads(threads):
        bk = _cli.choose_backend(args.backend)
        if check is not None:
            check(bk)
        folder = claim_run_dir(args.out, what, resume=getattr(args, "resume", False),
                               overwrite=getattr(args, "overwrite", False), command=f"xpml run {what}",
                               fingerprint=fingerprint(args, dataset, what, bk))
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                run = Run(args, bk, Progress(quiet=args.quiet), threads, run_dir=folder.path, folder=folder)
                run.data = _datasets.load_from_args(args, bk, dataset)
                yield run
        except BaseException:
            folder.abort()
            raise


def headline(data, args) -> str:
    """One line saying what was trained on: sizes, features, classes, seed, dtype."""
    n = data.sizes()
    return (f"{data.name}: {n['train']} train / {n['val']} val / {n['test']} test, {data.num_features} features, "
            f"{data.num_classes} classes; seed {args.seed}, {args.dtype}")


def print_json(obj, *, drop=()) -> None:
    """``obj`` as JSON on stdout, without the (long) keys in ``drop`` at any depth."""
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in drop}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    print(json.dumps(jsonable(strip(obj)), indent=2, allow_nan=False))


def format_table(rows: list[dict], columns: list[tuple]) -> str:
    """Rows as an aligned text table.

    ``columns`` holds ``(key, header)`` or ``(key, header, spec)``: a format spec for numbers
    (``".3f"``); numeric columns are right-aligned, missing values shown as ``-``.
    """
    specs = [c[2] if len(c) > 2 else "" for c in columns]
    cells = [[_cell(row.get(c[0]), spec) for c, spec in zip(columns, specs, strict=True)] for row in rows]
    numeric = [all(_is_number(row.get(c[0])) for row in rows) for c in columns]
    widths = [max([len(c[1])] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values):
        parts = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))
        return "  ".join(parts).rstrip()

    return "\n".join([line([c[1] for c in columns]), "  ".join("-" * w for w in widths), *map(line, cells)])


def _is_number(v) -> bool:
    return v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))


def _cell(v, spec: str = "") -> str:
    if v is None:
        return "-"
    if spec and _is_number(v):
        return format(v, spec)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _drawing(plot):
    """``plot`` when matplotlib is installed; without it, a function that draws nothing and says so once."""
    @functools.wraps(plot)
    def draw(*args, **kwargs):
        if plt is None:
            from ._cli import note_missing

            return note_missing("matplotlib", skipped="no pictures are drawn")
        return plot(*args, **kwargs)
    return draw


def _save(fig, path) -> None:
    """Write ``fig`` to ``path`` atomically (a killed run leaves no truncated picture), then close it."""
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format=Path(path).suffix[1:] or "png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    note_written(path)


@_drawing
def plot_curves(path, title: str, loss, accuracy: dict | None = None, *, accuracy_xlabel: str = "epoch") -> None:
    """Loss per iteration (raw and smoothed) and, when given, accuracy curves side by side.

    ``accuracy`` maps a label (``"train"``, ``"val"``) to ``(x, values)`` or to values per epoch.
    """
    loss = np.asarray(loss, dtype=np.float64)
    ncols = 2 if accuracy else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.8), squeeze=False)
    ax = axes[0, 0]
    ax.plot(loss, lw=0.6, alpha=0.45, label="minibatch loss")
    if loss.size >= 20:
        w = max(2, loss.size // 25)
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w - 1, loss.size), smooth, lw=1.6, label=f"mean of {w}")
    ax.set(xlabel="iteration", ylabel="loss", title=f"{title}: loss")
    if loss.size and loss.min() > 0 and loss.max() / loss.min() > 20:
        ax.set_yscale("log")  # the first steps would otherwise flatten the rest of the curve
    ax.legend(loc="upper right", fontsize=8)
    if accuracy:
        ax = axes[0, 1]
        for label, series in accuracy.items():
            x, values = series if isinstance(series, tuple) else (np.arange(1, len(series) + 1), series)
            ax.plot(x, values, marker="o", ms=3, label=label)
        ax.set(xlabel=accuracy_xlabel, ylabel="accuracy", title=f"{title}: accuracy", ylim=(0, 1.02))
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _to_image(v: np.ndarray) -> np.ndarray:
    lo, hi = float(v.min()), float(v.max())
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


@_drawing
def plot_image_grid(path, vectors, image_shape, *, titles=None, title: str = "", max_images: int = 100) -> None:
    """Each column of ``vectors`` (D, K) drawn as an ``image_shape`` (H, W, C) image, scaled to its range.

    This is how the notes show linear classifiers' class templates and the first-layer weights of
    a net. Rows beyond H*W*C (a bias row from the bias trick) are dropped.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    h, w, c = image_shape
    k = min(vectors.shape[1], max_images)
    ncols = min(k, 10)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= k:
            continue
        img = _to_image(vectors[: h * w * c, i].reshape(h, w, c))
        ax.imshow(img[..., 0] if c == 1 else img, cmap="gray" if c == 1 else None, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


@_drawing
def plot_image(path, image, *, title: str = "") -> None:
    """One (H, W, C) image with values in [0, 1] (a grid made by the library, for instance)."""
    # Clipped: a float32 grid scaled to [0, 1] can end a rounding error above 1, which imshow warns about.
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / image.shape[1] + 0.4))
    grey = image.shape[-1] == 1
    ax.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


@_drawing
def plot_decision_regions(path, predict, X, y, *, title: str = "", steps: int = 200) -> None:
    """For 2-d data: the predicted class over the plane, with the points on top.

    ``predict`` maps a host (M, 2) float array to host labels.
    """
    X, y = np.asarray(X), np.asarray(y)
    (x0, y0), (x1, y1) = X.min(axis=0) - 0.15, X.max(axis=0) + 0.15
    gx, gy = np.meshgrid(np.linspace(x0, x1, steps), np.linspace(y0, y1, steps))
    zz = np.asarray(predict(np.c_[gx.ravel(), gy.ravel()].astype(X.dtype))).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.contourf(gx, gy, zz, levels=np.arange(zz.max() + 2) - 0.5, cmap="Spectral", alpha=0.7)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="Spectral", edgecolors="k", linewidths=0.3)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=title)
    fig.tight_layout()
    _save(fig, path)


@_drawing
def plot_search(path, trials: list[dict], params: list[str], *, log_params=(), title: str = "") -> None:
    """Validation accuracy over each searched hyperparameter (coarse and fine trials apart), and,
    with two or more, the first two against each other coloured by validation accuracy."""
    panels = len(params) + (1 if len(params) >= 2 else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    acc = np.array([t["val_acc"] for t in trials])
    for ax, p in zip(axes.flat, params, strict=False):
        for stage, marker in (("coarse", "o"), ("fine", "^")):
            pick = [i for i, t in enumerate(trials) if t["stage"] == stage]
            if pick:
                ax.scatter([trials[i]["params"][p] for i in pick], acc[pick], marker=marker, s=22,
                           alpha=0.8, label=stage)
        if p in log_params:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded labels on sizes
        ax.set(xlabel=p, ylabel="validation accuracy")
        ax.legend(fontsize=8)
    if len(params) >= 2:
        ax = axes.flat[len(params)]
        a, b = params[:2]
        sc = ax.scatter([t["params"][a] for t in trials], [t["params"][b] for t in trials], c=acc, cmap="viridis",
                        s=30, edgecolors="k", linewidths=0.3)
        fig.colorbar(sc, ax=ax, label="validation accuracy")
        if a in log_params:
            ax.set_xscale("log")
        if b in log_params:
            ax.set_yscale("log")
        ax.set(xlabel=a, ylabel=b)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
