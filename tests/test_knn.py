"""kNN: the three distance paths agree with a direct formula; every prediction path gives the same
labels as a stable-sort oracle, ties included; bad input is refused clearly."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_equal, assert_placement
from xpml.classifiers import KNearestNeighbor

METRICS = ["l2", "l1"]


def _direct(Xte, Xtr, metric):
    diff = Xte[:, None, :].astype(np.float64) - Xtr[None, :, :]
    return np.sqrt((diff**2).sum(-1)) if metric == "l2" else np.abs(diff).sum(-1)


def _oracle(Xte, Xtr, ytr, k, metric, num_classes):
    """Stable full sort (earlier index nearer at equal distance), vote with ties to the smaller label."""
    idx = np.argsort(_direct(Xte, Xtr, metric), axis=1, kind="stable")[:, :k]
    return np.array([np.bincount(ytr[row], minlength=num_classes).argmax() for row in idx])


def _data(seed=0, M=24, N=7, D=3, C=4, integer=True):
    rng = np.random.default_rng(seed)
    if integer:  # few distinct values: many equal distances, so ties are real
        Xtr, Xte = rng.integers(0, 3, (M, D)), rng.integers(0, 3, (N, D))
    else:
        Xtr, Xte = rng.normal(size=(M, D)), rng.normal(size=(N, D))
    return Xtr.astype(np.float64), rng.integers(0, C, M), Xte.astype(np.float64)


@pytest.mark.parametrize("metric", METRICS)
def test_three_distance_paths_agree_with_the_formula(bk, dtype_name, metric):
    Xtr, ytr, Xte = _data(integer=False, M=9, N=5)
    dt = getattr(bk.xp, dtype_name)
    knn = KNearestNeighbor(metric, memory_budget=200).train(bk.asarray(Xtr, dtype=dt), bk.asarray(ytr))
    Q = bk.asarray(Xte, dtype=dt)
    want = bk.asarray(_direct(Xte.astype(dtype_name), Xtr.astype(dtype_name), metric), dtype=dt)
    rtol = 1e-4 if dtype_name == "float32" else 1e-10
    for d in (knn.compute_distances_two_loops(Q), knn.compute_distances_one_loop(Q),
              knn.compute_distances_no_loops(Q)):
        assert_placement(d, backend=bk, dtype=dt, shape=(5, 9))
        assert_close(d, want, rtol=rtol, atol=rtol)


def test_no_loops_l2_is_never_nan_for_identical_rows(bk):
    X = bk.asarray(np.full((3, 4), 1e3, dtype=np.float32) + np.arange(3, dtype=np.float32)[:, None] * 1e-3)
    knn = KNearestNeighbor().train(X, bk.asarray([0, 1, 2]))
    d = backend.to_numpy(knn.compute_distances_no_loops(X))
    assert np.isfinite(d).all() and (d >= 0).all()


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("integer", [True, False], ids=["ties", "no-ties"])
def test_every_prediction_path_matches_the_oracle(bk, metric, integer):
    Xtr, ytr, Xte = _data(seed=1, integer=integer)
    dt = bk.xp.float32
    Xtr_d, ytr_d, Xte_d = bk.asarray(Xtr, dtype=dt), bk.asarray(ytr), bk.asarray(Xte, dtype=dt)
    tiny = KNearestNeighbor(metric, memory_budget=1).train(Xtr_d, ytr_d)  # one query, one train row per block
    whole = KNearestNeighbor(metric).train(Xtr_d, ytr_d)
    for k in (1, 2, 3, 5, 24):
        want = bk.asarray(_oracle(Xte, Xtr, ytr, k, metric, 4), dtype=ytr_d.dtype)
        chunked = tiny.predict(Xte_d, k=k)
        assert_placement(chunked, backend=bk, dtype=ytr_d.dtype, shape=(7,))
        assert_equal(chunked, want, err_msg=f"k={k} chunked")
        assert_equal(whole.predict(Xte_d, k=k), want, err_msg=f"k={k} unchunked")
        assert_equal(whole.predict(Xte_d, k=k, num_loops=1), want, err_msg=f"k={k} one loop")
        if k in (1, 5):
            assert_equal(whole.predict(Xte_d, k=k, num_loops=2), want, err_msg=f"k={k} two loops")


def test_kneighbors_orders_by_distance_then_index(bk):
    # Training rows 0, 2 and 3 are equally near the query; 1 is nearest.
    Xtr = bk.asarray([[1.0, 0.0], [0.0, 0.5], [0.0, 1.0], [-1.0, 0.0], [5.0, 5.0]])
    knn = KNearestNeighbor(memory_budget=1).train(Xtr, bk.asarray([0, 1, 2, 3, 4]))
    dist, idx = knn.kneighbors(bk.asarray([[0.0, 0.0]]), k=4)
    assert_placement(idx, backend=bk, dtype=backend.index_dtype(bk.xp, bk.device), shape=(1, 4))
    assert_placement(dist, backend=bk, dtype=Xtr.dtype, shape=(1, 4))
    assert backend.to_numpy(idx).tolist() == [[1, 0, 2, 3]]
    assert backend.to_numpy(dist).tolist() == [[0.5, 1.0, 1.0, 1.0]]
    # k = 2 cuts through the tie: the earliest tied row wins.
    only = knn.kneighbors(bk.asarray([[0.0, 0.0]]), k=2, return_distance=False)
    assert backend.to_numpy(only).tolist() == [[1, 0]]


def test_vote_tie_goes_to_the_smaller_label(bk):
    Xtr = bk.asarray([[1.0], [2.0], [3.0], [4.0]])
    knn = KNearestNeighbor().train(Xtr, bk.asarray([3, 1, 1, 3]))
    # k=4 around 2.5: two votes each for 1 and 3.
    assert backend.to_numpy(knn.predict(bk.asarray([[2.5], [0.0]]), k=4)).tolist() == [1, 1]


def test_predict_labels_from_given_distances(bk):
    knn = KNearestNeighbor().train(bk.asarray([[0.0], [1.0], [2.0]]), bk.asarray([2, 0, 1]))
    dists = bk.asarray([[0.3, 0.2, 0.1], [0.1, 0.5, 0.1]])
    assert backend.to_numpy(knn.predict_labels(dists, k=1)).tolist() == [1, 2]


def test_progress_wraps_the_chunks(bk):
    Xtr, ytr, Xte = _data()
    knn = KNearestNeighbor(memory_budget=1).train(bk.asarray(Xtr), bk.asarray(ytr))
    seen = []

    def progress(chunks):
        seen.append(len(chunks))
        return chunks

    knn.predict(bk.asarray(Xte), k=3, progress=progress)
    assert seen == [7]


def test_bad_input_is_refused():
    nb = backend.get_backend("numpy")
    strict = backend.get_backend("array_api_strict", device="device1")
    Xtr, ytr, Xte = _data()
    knn = KNearestNeighbor().train(nb.asarray(Xtr), nb.asarray(ytr))
    Q = nb.asarray(Xte)
    with pytest.raises(backend.BackendMismatchError):
        knn.predict(strict.asarray(Xte))
    with pytest.raises(ValueError, match="features"):
        knn.predict(Q[:, :2])
    with pytest.raises(ValueError, match="larger than the training set"):
        knn.predict(Q, k=25)
    for bad in (3, -1, True, "0"):
        with pytest.raises(ValueError, match="num_loops"):
            knn.predict(Q, num_loops=bad)
    with pytest.raises(ValueError, match="k must be"):
        knn.predict(Q, k=0)
    with pytest.raises(TypeError, match="k must be"):
        knn.predict(Q, k=2.0)
    with pytest.raises(ValueError, match="NaN"):
        knn.predict(Q * np.nan)
    with pytest.raises(ValueError, match="empty"):
        knn.predict(Q[:0, :])
    with pytest.raises(ValueError, match="dists must be"):
        knn.predict_labels(nb.asarray(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="metric"):
        KNearestNeighbor("cosine")
    with pytest.raises(RuntimeError, match="train"):
        KNearestNeighbor().predict(Q)
    fresh = KNearestNeighbor()
    with pytest.raises(ValueError, match="labels"):
        fresh.train(nb.asarray(Xtr), nb.asarray(ytr[:5]))
    with pytest.raises(ValueError, match="negative"):
        fresh.train(nb.asarray(Xtr), nb.asarray(ytr - 1))
    with pytest.raises(TypeError, match="integer"):
        fresh.train(nb.asarray(Xtr), nb.asarray(ytr.astype(float)))
    with pytest.raises(ValueError, match="infinite"):
        fresh.train(nb.asarray(Xtr + np.inf), nb.asarray(ytr))
    with pytest.raises(backend.BackendMismatchError):
        fresh.train(nb.asarray(Xtr), strict.asarray(ytr))


@pytest.mark.parametrize("metric", METRICS)
def test_chunks_of_the_distance_matrix_fit_the_budget(metric):
    nb = backend.get_backend("numpy")
    Xtr, ytr, Xte = _data(M=40, N=30, D=8)
    budget = 4096
    knn = KNearestNeighbor(metric, memory_budget=budget).train(nb.asarray(Xtr, dtype=np.float32), nb.asarray(ytr))
    sizes = []

    def progress(chunks):
        sizes.extend(s.stop - s.start for s in chunks)
        return chunks

    knn.predict(nb.asarray(Xte, dtype=np.float32), k=3, progress=progress)
    assert sum(sizes) == 30 and len(sizes) > 1
    assert max(sizes) * 40 * 4 <= budget  # the (chunk, num_train) float32 block


def test_selection_is_stable_where_argpartition_alone_is_not(bk):
    import array_api_extra as xpx

    from xpml.classifiers.k_nearest_neighbor import _smallest_k

    rng = np.random.default_rng(0)
    key_h = rng.integers(0, 4, (60, 30)).astype(np.float32)  # many ties at the k-th value
    key = bk.asarray(key_h)
    arbitrary = 0
    for k in (1, 3, 7, 30):
        want = np.argsort(key_h, axis=1, kind="stable")[:, :k]
        assert backend.to_numpy(_smallest_k(bk.xp, key, k)).tolist() == want.tolist()
        part = np.sort(backend.to_numpy(xpx.argpartition(key, k - 1, axis=1))[:, :k], axis=1)
        arbitrary += int((part != np.sort(want, axis=1)).any(axis=1).sum())
    if bk.name == "numpy":  # the fallback is needed, not decorative
        assert arbitrary > 0


def test_the_knn_benchmark_script_runs_and_its_variants_agree(tmp_path):
    # A smoke run of the benchmark's kNN precision section (scripts/bench/) on small random data: it
    # imports what the benchmark helpers export today and checks that every xpml variant gives the same labels.
    from ._scripts_support import run_script

    done = run_script("bench/run.py", "--only", "knn-precision", "--quick", "--threads", "1", "--clock", "cpu",
                      "--gpu", "no", "--repeats", "1", "--out", tmp_path / "run", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "every variant gives the same labels: True" in done.stdout
    assert "precision='exact' (numpy)" in done.stdout
