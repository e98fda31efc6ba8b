"""kNN on a local Dask cluster (two worker processes on 127.0.0.1): the same neighbours, distances
and labels as in process on adversarial data, shards placed once and released, clear errors."""

import sys
import threading

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_equal
from xpml.classifiers import KNearestNeighbor

from .test_knn_exact import exact_values

distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'xpml[dask]'")

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning"),
              pytest.mark.xdist_group("dask")]  # one cluster at a time (tests/conftest.py)


def _local_cluster(n_workers):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address="127.0.0.1:0", worker_dashboard_address=None)


@pytest.fixture(scope="module")
def client(dask_cluster):
    with distributed.Client(dask_cluster, set_as_default=False) as c:
        yield c


def _adversarial(seed=0, M=101, N=33, D=6):
    """Duplicated rows across the shard boundary (row 50), exact ties, near ties, a large offset."""
    rng = np.random.default_rng(seed)
    Xtr = rng.integers(0, 3, (M, D)).astype(np.float32)
    Xtr[M // 2 : M // 2 + 20] = Xtr[M // 2 - 20 : M // 2]  # the same rows on both sides of the cut
    Xtr[5] = Xtr[70] + np.float32(2.0**-20)  # near ties with a row of the other shard
    Xte = rng.integers(0, 3, (N, D)).astype(np.float32)
    Xte[:3] = Xtr[[10, 45, 70]]  # queries that are training rows, duplicated across shards
    return Xtr, rng.integers(0, 4, M), Xte


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["small", "large-norms"])
def test_cluster_search_equals_in_process(client, metric, offset):
    Xtr, ytr, Xte = _adversarial()
    Xtr, Xte = Xtr + np.float32(offset), Xte + np.float32(offset)
    knn = KNearestNeighbor(metric, memory_budget=4000).train(Xtr, ytr)
    for k in (1, 7, 51, 60, 101):  # 51 and more: larger than one shard
        want_d, want_i = knn.kneighbors(Xte, k)
        got_d, got_i = knn.kneighbors(Xte, k, client=client)
        assert_equal(got_i, want_i, err_msg=f"k={k}")
        assert_equal(got_d, want_d, err_msg=f"k={k}")
        assert knn.last_search_.shards == 2
        assert_equal(knn.predict(Xte, k, client=client), knn.predict(Xte, k), err_msg=f"k={k}")
    # The in-process result itself is the stable sort of the exact values (tests/test_knn_exact.py).
    np.testing.assert_array_equal(want_i, np.argsort(exact_values(Xte, Xtr, metric), axis=1, kind="stable"))


@pytest.mark.parametrize("name", ["array_api_strict:device1", "torch:cpu", "jax:cpu"])
def test_the_model_backend_runs_on_the_workers(client, name):
    # The workers rebuild the backend from its name (JAX there without 64-bit types: float32 data
    # and int32 indices, which the driver returns in its own index dtype).
    try:
        bk = backend.get_backend(name)
    except backend.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    Xtr, ytr, Xte = _adversarial(seed=3)
    knn = KNearestNeighbor(memory_budget=4000).train(bk.asarray(Xtr), bk.asarray(ytr))
    d, i = knn.kneighbors(bk.asarray(Xte), 9, client=client)
    want_d, want_i = knn.kneighbors(bk.asarray(Xte), 9)
    assert_equal(i, want_i)
    assert_equal(d, want_d)
    assert_equal(knn.predict(bk.asarray(Xte), 9, client=client), knn.predict(bk.asarray(Xte), 9))


async def _loop_turn():
    pass


def test_shards_are_sent_once_and_released_on_retrain(client):
    Xtr, ytr, Xte = _adversarial()
    knn = KNearestNeighbor().train(Xtr, ytr)
    knn.kneighbors(Xte, 3, client=client)
    shards = knn._shards
    keys = [f.key for f in shards.futures]
    placed = client.who_has(shards.futures)  # one shard on each worker
    assert sorted(w for ws in placed.values() for w in ws) == sorted(shards.workers)
    knn.predict(Xte, 3, client=client)
    knn.kneighbors(Xte[:5], 2, client=client)
    assert knn._shards is shards and [f.key for f in shards.futures] == keys
    assert all(client.refcount[key] == 1 for key in keys)
    knn.train(Xtr[::-1], ytr)  # retraining releases them: the workers may drop the data
    client.sync(_loop_turn)  # releases are posted to the client's event loop; let it run them
    assert knn._shards is None and all(client.refcount.get(key, 0) == 0 for key in keys)
    knn.kneighbors(Xte, 3, client=client)
    assert not set(f.key for f in knn._shards.futures) & set(keys)


def _break_backend(name):
    from xpml.backend import _adapter

    real = _adapter._import

    def fake(module):
        if module.split(".")[0] == name:
            raise ImportError(f"No module named {name!r}")
        return real(module)

    _adapter._real_import, _adapter._import = real, fake


def _repair_backend():
    from xpml.backend import _adapter

    _adapter._import = getattr(_adapter, "_real_import", _adapter._import)


def test_workers_without_the_backend_are_named(client):
    bk = backend.get_backend("array_api_strict")
    Xtr, ytr, Xte = _adversarial()
    knn = KNearestNeighbor().train(bk.asarray(Xtr), bk.asarray(ytr))
    worker = sorted(client.scheduler_info()["workers"])[1]
    client.run(_break_backend, "array_api_strict", workers=[worker])
    try:
        lacks = f"worker {worker} cannot run backend 'array_api_strict'.*not installed"
        with pytest.raises(backend.BackendUnavailableError, match=lacks):
            knn.kneighbors(bk.asarray(Xte), 3, client=client)
    finally:
        client.run(_repair_backend, workers=[worker])
    assert knn._shards is None
    knn.kneighbors(bk.asarray(Xte), 3, client=client)  # repaired: it works


def test_bad_client_input(client, monkeypatch):
    import dask

    Xtr, ytr, Xte = _adversarial()
    knn = KNearestNeighbor().train(Xtr, ytr)
    with pytest.raises(ValueError, match="larger than the training set"):
        knn.kneighbors(Xte, 102, client=client)
    with pytest.raises(TypeError, match="client must be"):
        knn.kneighbors(Xte, 3, client=42)
    with pytest.raises(ValueError, match="num_loops=0"):
        knn.predict(Xte, 3, num_loops=1, client=client)
    # An address where no scheduler listens: a clear error within the connect timeout.
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(
            ConnectionError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'"):
        knn.kneighbors(Xte, 3, client="tcp://127.0.0.1:1")
    # Without Dask installed, client= says how to install it.
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'xpml\[dask\]'"):
        knn.kneighbors(Xte, 3, client=client)


def test_a_scheduler_address_is_accepted_and_its_client_owned(client):
    Xtr, ytr, Xte = _adversarial()
    knn = KNearestNeighbor().train(Xtr, ytr)
    address = client.scheduler.address
    got = knn.kneighbors(Xte, 4, client=address, return_distance=False)
    assert_equal(got, knn.kneighbors(Xte, 4, return_distance=False))
    owned = knn._shards.client
    assert owned is not client and owned.status == "running"
    knn.train(Xtr, ytr)
    assert owned.status in ("closing", "closed")


def _stall_searches():
    """On a worker: make the next shard search announce itself, then wait for ever."""
    from xpml.classifiers import _knn_dask

    def stalled(*args, **kwargs):
        distributed.Event("xpml-search-started").set()
        distributed.Event("xpml-never").wait()

    _knn_dask._search_shard = stalled


def test_a_cluster_closed_mid_call_gives_an_error_not_a_result():
    import dask

    Xtr, ytr, Xte = _adversarial()
    knn = KNearestNeighbor().train(Xtr, ytr)
    outcome = {}
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        cluster = _local_cluster(1)
        c = distributed.Client(cluster, set_as_default=False)
        try:
            knn.kneighbors(Xte, 3, client=c)  # shards in place
            c.run(_stall_searches)

            def call():
                try:
                    outcome["result"] = knn.kneighbors(Xte, 3, client=c)
                except Exception as exc:  # what the caller sees
                    outcome["error"] = exc

            caller = threading.Thread(target=call)
            caller.start()
            assert distributed.Event("xpml-search-started", client=c).wait(timeout=60)
            cluster.close()
            caller.join(timeout=120)
            assert not caller.is_alive(), "the call hung after the cluster closed"
        finally:
            c.close()
            cluster.close()
    assert "result" not in outcome
    assert isinstance(outcome["error"], RuntimeError)
    assert "no result was returned" in str(outcome["error"])
    assert knn._shards is None


def test_a_shard_from_a_misaligned_buffer_is_searched_from_an_aligned_copy():
    # Dask hands a worker arrays at any byte offset of a network frame; NumPy gathers rows of a
    # misaligned array one element at a time, which made the re-rank 20-40 times slower there.
    from xpml.classifiers import _knn_dask

    X, _, Q = _adversarial(seed=3)
    raw = bytearray(X.nbytes + 1)
    misaligned = np.frombuffer(raw, dtype=np.float32, count=X.size, offset=1).reshape(X.shape)
    misaligned[...] = X
    assert not misaligned.flags.aligned
    shard = _knn_dask._load_shard(misaligned, 0, "numpy", "l2", "exact", 2**20)
    assert shard.ts.X.flags.aligned and shard.ts.X.flags.c_contiguous
    reference = _knn_dask._load_shard(X, 0, "numpy", "l2", "exact", 2**20)
    got, want = _knn_dask._search_shard(shard, Q, 3), _knn_dask._search_shard(reference, Q, 3)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
