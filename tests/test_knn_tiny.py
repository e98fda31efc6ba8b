"""kNN on tiny data: squared differences that would be subnormal (or flushed to zero by the
device) never decide the neighbours; subnormal inputs a device would flush are refused, clearly."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers import KNearestNeighbor


def _data(scale, seed=0, M=40, N=6, D=5):
    rng = np.random.default_rng(seed)
    Xtr = (rng.standard_normal((M, D)) * scale).astype(np.float32)
    Xte = (rng.standard_normal((N, D)) * scale).astype(np.float32)
    return Xtr, rng.integers(0, 3, M), Xte


def _float64_oracle(Xte, Xtr, k, metric):
    diff = Xte.astype(np.float64)[:, None, :] - Xtr.astype(np.float64)[None, :, :]
    d = np.sqrt((diff * diff).sum(-1)) if metric == "l2" else np.abs(diff).sum(-1)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, axis=1), idx


def _subnormal(*hosts):
    tiny = np.finfo(np.float32).smallest_normal
    return any(((np.abs(h) < tiny) & (h != 0)).any() for h in hosts)


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("scale", [1e-20, 1e-40], ids=["1e-20", "subnormal"])
def test_tiny_data_give_the_float64_neighbours(bk, metric, scale):
    Xtr, ytr, Xte = _data(scale)
    assert _subnormal(Xtr, Xte) == (scale < 1e-38)
    X, y, Q = bk.asarray(Xtr), bk.asarray(ytr), bk.asarray(Xte)
    if _subnormal(Xtr, Xte) and backend.flushes_subnormals(X):  # JAX on the CPU
        with pytest.raises(ValueError, match="subnormal values in X .* flushes to zero.*scale the data up"):
            KNearestNeighbor(metric).train(X, y)
        return
    knn = KNearestNeighbor(metric).train(X, y)
    want_d, want_i = _float64_oracle(Xte, Xtr, 4, metric)
    d, i = knn.kneighbors(Q, 4)
    assert_placement(d, backend=bk, dtype=Q.dtype, shape=(6, 4))
    np.testing.assert_array_equal(backend.to_numpy(i), want_i)
    # The distances too, not zeros: float32 values within a few units in the last place (subnormal
    # distances keep fewer bits).
    got = backend.to_numpy(d).astype(np.float64)
    assert (got > 0).all()
    np.testing.assert_allclose(got, want_d, rtol=1e-5 if scale > 1e-38 else 1e-3)
    if scale < 1e-38:
        return  # subnormal distances keep too few bits for the teaching loops' ranking by distance
    # The teaching loops rank alike.
    two = knn.compute_distances_two_loops(Q[:2, :])
    assert_close(two, knn.compute_distances_one_loop(Q[:2, :]))
    np.testing.assert_array_equal(np.argsort(backend.to_numpy(two), axis=1, kind="stable")[:, :4], want_i[:2])
    np.testing.assert_array_equal(backend.to_numpy(knn.predict(Q, 3)), backend.to_numpy(knn.predict(Q, 3, num_loops=1)))


def test_subnormal_queries_are_refused_where_the_device_flushes_them(bk):
    Xtr, ytr, _ = _data(1.0)
    knn = KNearestNeighbor().train(bk.asarray(Xtr), bk.asarray(ytr))
    Q = bk.asarray(np.full((2, 5), 1e-40, dtype=np.float32))
    if not backend.flushes_subnormals(Q):
        assert backend.to_numpy(knn.kneighbors(Q, 1, return_distance=False)).shape == (2, 1)
        return
    with pytest.raises(ValueError, match="subnormal values in the queries"):
        knn.kneighbors(Q, 1)


def test_flushes_subnormals_is_measured_on_the_device(bk):
    x = bk.asarray(np.ones(2, dtype=np.float32))
    tiny = bk.xp.asarray(float(np.finfo(np.float32).smallest_normal), dtype=x.dtype, device=bk.device)
    assert backend.flushes_subnormals(x) == (float(tiny * 0.5) == 0.0)
