"""The Dask side of ``xpml search --scheduler``: the cluster, and the data on its workers.

Imported only when ``--scheduler`` is given: Dask is an optional extra (``pip install
'xpml[dask]'``), and :func:`require_dask` says so in one line when it is missing.

- ``local`` starts a cluster on this machine, on 127.0.0.1 only: one worker per GPU
  (``dask_cuda.LocalCUDACluster``, each worker offering the resource ``GPU=1``) when dask-cuda is
  installed and sees a GPU, else one single-threaded worker process per CPU core
  (``LocalCluster``); ``local:N`` starts N workers. It has no dashboard and is closed at the end.
- ``tcp://HOST:PORT`` connects to a running scheduler (``dask scheduler``, with workers from
  ``dask worker`` or ``dask cuda worker ... --resources GPU=1``) within Dask's connect timeout
  (``distributed.comm.timeouts.connect``, 30 s unless configured); the cluster is left running.

Data on the workers: each worker loads the dataset itself, once, from the description the driver
used (name, split sizes, dtype, backend name and the resolved CIFAR-10 folder), through a worker
plugin that keeps it for the search and drops it at the end. The driver's arrays are not
scattered: a worker builds its arrays on its own backend and device (CuPy on its own GPU), nothing
large crosses the network, and a worker that Dask restarts after a crash loads its copy again by
itself. The price: CIFAR-10 must be readable at the same path on every worker machine (a shared
folder); the digits and the spiral need nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
import warnings

from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from . import _cli, _datasets

__all__ = ["WorkerData", "connect", "local_cluster", "share_data", "worker_data"]


def local_gpus() -> tuple[int, str]:
    """GPUs dask-cuda sees here, and why none when it is 0."""
    try:
        from dask_cuda.utils import get_n_gpus
    except ImportError:
        return 0, "dask-cuda is not installed"
    try:
        n = int(get_n_gpus())
    except Exception as exc:  # no driver, no NVML: no GPU, for this purpose
        return 0, f"dask-cuda finds no GPU ({' '.join(str(exc).split())})"
    return n, "" if n else "dask-cuda finds no GPU"


def local_cluster(n_workers: int | None, gpus_per_trial: float) -> tuple[type, dict]:
    """The class and keyword arguments of the ``local[:N]`` cluster (see the module's text)."""
    common = {"n_workers": n_workers, "threads_per_worker": 1, "host": "127.0.0.1", "dashboard_address": None,
              "silence_logs": logging.ERROR}
    gpus, why_not = local_gpus()
    if gpus:
        from dask_cuda import LocalCUDACluster

        return LocalCUDACluster, {**common, "resources": {"GPU": 1}}
    if gpus_per_trial:
        raise _cli.UsageError(f"--gpus-per-trial {gpus_per_trial:g}: the local cluster has no GPU workers "
                              f"({why_not}); drop --gpus-per-trial, or install dask-cuda on a machine with a GPU")
    return LocalCluster, {**common, "n_workers": n_workers or os.cpu_count() or 1, "processes": True}


@contextlib.contextmanager
def connect(target: tuple, *, gpus_per_trial: float = 0):
    """A client of the cluster ``target`` names (``("local", N or None)`` or ``("address", URL)``),
    closed on exit (with the cluster, when it was started here); yields ``(client, description)``."""
    kind, where = target
    cluster = None
    if kind == "local":
        factory, kwargs = local_cluster(where, gpus_per_trial)
        with warnings.catch_warnings():
            # The scheduler's small HTTP server (no dashboard here) takes another port when 8787 is taken.
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            cluster = factory(**kwargs)
        label, where = factory.__name__, cluster.scheduler_address
    else:
        label = "remote"
    try:
        client = Client(cluster if cluster is not None else where, set_as_default=False)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise _cli.UsageError(f"--scheduler {where}: no Dask scheduler answered ({' '.join(str(exc).split())}); "
                              "start one with `dask scheduler`, or use --scheduler local") from None
    try:
        yield client, {"cluster": label, "address": where,
                       "workers": len(client.scheduler_info(n_workers=-1)["workers"])}
    except BaseException:
        # The error says what went wrong in one line; a client that lost its scheduler would add
        # the traceback of its cancelled reconnection as it closes.
        with _quiet("distributed"):
            _close(client, cluster)
        raise
    _close(client, cluster)


def _close(client, cluster) -> None:
    client.close()
    if cluster is not None:
        cluster.close()


@contextlib.contextmanager
def _quiet(package: str):
    """Silence the loggers of ``package`` (Dask's configuration sets some of its children's levels)."""
    names = [package, *(n for n in logging.root.manager.loggerDict if n.startswith(package + "."))]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class WorkerData(WorkerPlugin):
    """The dataset of a search, loaded on a worker the first time a trial there asks for it.

    ``spec`` holds :func:`_datasets.load_dataset`'s arguments plus ``backend`` (a backend name,
    chosen on the worker: ``auto`` is CuPy where the worker sees a GPU) and ``threads`` (BLAS
    threads of a trial).
    """

    def __init__(self, spec: dict):
        self.spec = dict(spec)
        self._loaded = None
        self._lock = None  # made on the worker: a lock does not pickle

    def setup(self, worker) -> None:
        self._lock = threading.Lock()

    def teardown(self, worker) -> None:
        self._loaded = None

    def load(self) -> tuple:
        """``(data, backend, threads)``, loading the data on the first call."""
        with self._lock:  # two trials on a worker with two threads load once
            if self._loaded is None:
                spec = dict(self.spec)
                threads = spec.pop("threads")
                with _cli.cpu_threads(threads):  # before the backend: JAX reads its thread flags as it starts
                    bk = _cli.choose_backend(spec.pop("backend"))
                    data = _datasets.load_dataset(spec.pop("dataset"), bk, **spec)
                self._loaded = (data, bk, threads)
            return self._loaded


@contextlib.contextmanager
def share_data(client: Client, spec: dict):
    """Register a :class:`WorkerData` of ``spec`` on every worker, present and future, for the time of
    the ``with`` block; yields the name a trial finds it by (:func:`worker_data`)."""
    name = f"xpml-search-data-{uuid.uuid4().hex[:8]}"
    client.register_plugin(WorkerData(spec), name=name)
    try:
        yield name
    finally:
        if client.status == "running":
            with contextlib.suppress(OSError):  # the cluster may have gone away meanwhile
                client.unregister_worker_plugin(name)


def worker_data(name: str) -> tuple:
    """In a trial on a worker: ``(data, backend, threads)`` of the search's :class:`WorkerData` ``name``."""
    return get_worker().plugins[name].load()
