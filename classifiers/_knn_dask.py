"""Exact kNN on a Dask cluster: training shards held by the workers, neighbours merged exactly.

The training set is cut into one contiguous shard per worker. Each shard is sent once, prepared
on its worker (moved to the model's backend there, norms and bounds computed: what ``train``
does in process) and kept there, referenced by a future the model holds, until the model is
retrained or deleted. Per block of queries, every worker returns its shard's k nearest as
(ranking value, global index) pairs, host arrays of (q, k); the driver merges them by (value,
index). The ranking value of a pair is computed from the pair alone in a fixed order (see
``_knn_search``), so the merge gives the same neighbours, distances and labels as the
single-process search, ties included.

Dask is an optional dependency (``pip install 'xpml[dask]'``); it is imported on first use.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from dataclasses import dataclass, field
from typing import Any

from .. import backend
from ..backend.errors import InputError, InputTypeError
from . import _knn_search
from ._topk import chunks

__all__ = ["kneighbors"]

_INSTALL = "pip install 'xpml[dask]'"


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"client= needs Dask's distributed scheduler, which is not installed ({exc}); install it with: "
            f"{_INSTALL}"
        ) from exc
    return distributed


def worker_backend_name(X, /) -> str:
    """The backend name a worker rebuilds for data like ``X``: the model's backend and device
    kind, without a device number, so that each worker uses its own default device (its own GPU
    under dask-cuda, where every worker sees one device)."""
    return re.sub(r":\d+$", "", backend.backend_of(X).label)


# -- what runs on the workers ------------------------------------------------------------------


@dataclass
class _Shard:
    """A prepared training shard on a worker: rows ``start .. start + M_s`` of the training set."""

    ts: Any
    start: int
    memory_budget: int


def _worker_status(name: str) -> str:
    """Empty when this worker can use backend ``name``, else why not."""
    try:
        backend.get_backend(name)
    except Exception as exc:  # a missing package, no device, a broken install: all reported
        return f"{type(exc).__name__}: {exc}"
    return ""


def _load_shard(X_host, start: int, name: str, metric: str, precision: str, memory_budget: int,
                scale_exp: int = 0) -> _Shard:
    # Always a fresh array: what Dask deserialises can sit at any byte offset of a network frame,
    # and NumPy takes rows of a misaligned float32 array one element at a time (the exact re-rank's
    # gathers then cost 20-40 times as much as the products).
    X = backend.get_backend(name).asarray(X_host, copy=True)
    # The whole training set's scale (tiny data), so that every shard's values compare.
    ts = _knn_search.build(X, metric=metric, precision=precision, memory_budget=memory_budget, scale_exp=scale_exp)
    return _Shard(ts, start, memory_budget)


def _search_shard(shard: _Shard, Q_host, k: int):
    """This shard's k nearest of each query: (values, global indices) as host arrays, and pairs."""
    xp = backend.get_namespace(shard.ts.X)
    Q = xp.asarray(Q_host, device=backend.get_device(shard.ts.X), copy=True)  # aligned, as the shard
    values, idx, pairs = _knn_search.search(shard.ts, Q, min(k, shard.ts.X.shape[0]),
                                            memory_budget=shard.memory_budget)
    # Widened on the host before the offset: a JAX worker without 64-bit types returns int32.
    return backend.to_numpy(values), backend.to_numpy(idx).astype("int64") + shard.start, pairs


# -- the driver ----------------------------------------------------------------------------------


@dataclass
class Shards:
    """Futures of the prepared shards, one per worker, and the client that placed them."""

    client: Any
    address: str | None  # set when the model connected by address: then it owns the client
    workers: tuple
    futures: list = field(repr=False)
    _closer: Any = field(default=None, repr=False)

    def __post_init__(self):
        if self.address is not None:  # a client the model opened is closed with its shards
            self._closer = weakref.finalize(self, self.client.close)

    def release(self):
        for f in self.futures:
            f.release()
        self.futures = []
        if self._closer is not None:
            self._closer()

    def usable_with(self, client, address) -> bool:
        if (address is not None and address != self.address) or (address is None and client is not self.client):
            return False
        try:
            alive = set(self.client.scheduler_info()["workers"])
        except Exception:  # a client that lost its scheduler: place the shards anew
            return False
        return self.client.status == "running" and set(self.workers) <= alive


def _connect(distributed, address: str):
    import dask

    timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        return distributed.Client(address, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"cannot reach the Dask scheduler at {address!r} within {timeout} ({exc}); check the address and "
            "that the scheduler is running (the timeout is Dask's distributed.comm.timeouts.connect)"
        ) from exc


def _check_workers(client, workers, name):
    try:
        statuses = client.run(_worker_status, name, workers=list(workers))
    except Exception as exc:
        raise RuntimeError(
            f"could not ask the Dask workers whether they can run backend {name!r} ({type(exc).__name__}: {exc}); "
            "every worker needs xpml installed, with the backend's packages"
        ) from exc
    bad = {w: why for w, why in statuses.items() if why}
    if bad:
        lines = "; ".join(f"worker {w} cannot run backend {name!r}: {why}" for w, why in sorted(bad.items()))
        raise backend.BackendUnavailableError(
            f"{lines}. Install the backend on every worker, or train the model on a backend the workers have"
        )


def _place(model, client, address) -> Shards:
    workers = tuple(sorted(client.scheduler_info()["workers"]))
    if not workers:
        raise RuntimeError("the Dask cluster has no workers; start some, or wait for them, and call again")
    name = worker_backend_name(model.X_train)
    _check_workers(client, workers, name)
    num = model.X_train.shape[0]
    slices = chunks(num, -(-num // len(workers)))
    futures = []
    for worker, rows in zip(workers, slices, strict=False):
        [data] = client.scatter([backend.to_numpy(model.X_train[rows, :])], workers=[worker], hash=False)
        futures.append(client.submit(_load_shard, data, rows.start, name, model.metric, model.precision,
                                     model.memory_budget, model._ts.scale_exp, workers=[worker],
                                     allow_other_workers=False, pure=False))
    for f in futures:  # wait without fetching the shards; raise a worker's error (data too large, say)
        error = f.exception()
        if error is not None:
            raise error
    return Shards(client, address, workers[: len(futures)], futures)


def shards_for(model, client) -> Shards:
    """The model's shards on ``client``, placed now if they are not there (or not all alive)."""
    distributed = _distributed()
    address = client if isinstance(client, str) else None
    if address is None and not isinstance(client, distributed.Client):
        raise InputTypeError(
            f"client must be a dask.distributed.Client or a scheduler address like 'tcp://host:8786', got {client!r}"
        )
    shards = model._shards
    if shards is not None and shards.usable_with(client, address):
        return shards
    if shards is not None:
        shards.release()
        model._shards = None
    if address is not None:
        client = _connect(distributed, address)
    elif client.status != "running":
        raise InputError(f"the Dask client is {client.status}; connect a new one (distributed.Client(address))")
    model._shards = _place(model, client, address)
    return model._shards


def kneighbors(model, X, k: int, client, /, *, progress=None):
    """``(values, indices, pairs, shards)`` of the k nearest on the cluster (see ``KNearestNeighbor``)."""
    shards = shards_for(model, client)
    xp, device = backend.namespace_and_device(X)
    dim = X.shape[1]
    # Query blocks travel to every worker: a quarter of the budget each keeps the driver's and
    # the workers' copies of a block small beside the search's own temporaries.
    rows = max(1, model.memory_budget // (4 * dim * (8 if X.dtype == xp.float64 else 4)))
    blocks = chunks(X.shape[0], rows)
    client = shards.client
    pending = []
    try:
        for block in blocks:
            [queries] = client.scatter([backend.to_numpy(X[block, :])], workers=list(shards.workers),
                                       broadcast=True, hash=False)
            pending.append([client.submit(_search_shard, shard, queries, k, workers=[w], allow_other_workers=False,
                                          pure=False) for shard, w in zip(shards.futures, shards.workers, strict=True)])
        values, idx, pairs = [], [], 0
        index_dtype = backend.index_dtype(xp, device)
        for futures in pending if progress is None else progress(pending):
            parts = client.gather(futures)
            v, i = _knn_search.merge_smallest(
                xp, xp.concat([backend.to_backend(p[0], xp, device=device) for p in parts], axis=1),
                xp.concat([xp.astype(backend.to_backend(p[1], xp, device=device), index_dtype) for p in parts],
                          axis=1), k)
            values.append(v)
            idx.append(i)
            pairs += sum(int(p[2]) for p in parts)
    except (ValueError, TypeError, backend.BackendUnavailableError):
        raise
    except (Exception, asyncio.CancelledError) as exc:
        for futures in pending:
            client.cancel(futures)
        model._shards = None
        shards.release()
        raise RuntimeError(
            f"the Dask cluster failed during the search ({type(exc).__name__}: {exc}); no result was returned. "
            "Check the cluster and call again: the training shards will be sent again"
        ) from exc
    return xp.concat(values, axis=0), xp.concat(idx, axis=0), pairs, len(shards.workers)
