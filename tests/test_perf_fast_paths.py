"""Every optimisation agrees with the portable path it replaces, on every backend."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_equal, assert_placement
from xpml.backend.validation import check_data
from xpml.classifiers._topk import smallest_k, smallest_k_portable
from xpml.classifiers.k_nearest_neighbor import _chunks


@pytest.mark.parametrize("levels", [3, 50, 10**6], ids=["many-ties", "some-ties", "few-ties"])
@pytest.mark.parametrize("k", [1, 4, 17, 40])
def test_fast_top_k_matches_the_argpartition_path(bk, levels, k):
    # Integer-valued keys from a small range put many ties at the k-th value; the order of the
    # result is (value, column) on both paths, so ties go to the smaller column.
    rng = np.random.default_rng(levels + k)
    key = bk.asarray(rng.integers(0, levels, (23, 40)).astype(np.float32))
    fast, ref = smallest_k(bk.xp, key, k), smallest_k_portable(bk.xp, key, k)
    assert_placement(fast, like=ref)
    assert_equal(fast, ref)
    host = backend.to_numpy(key)
    expected = np.argsort(host, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(backend.to_numpy(fast), expected)


def test_fast_top_k_with_a_tie_in_only_some_rows(bk):
    key = bk.asarray([[5.0, 1.0, 1.0, 0.0, 7.0], [4.0, 3.0, 2.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    got = backend.to_numpy(smallest_k(bk.xp, key, 2)).tolist()
    assert got == [[3, 1], [4, 3], [0, 1]]


@pytest.mark.parametrize("n,size", [(2000, 596), (10, 3), (7, 7), (5, 100), (1, 1), (0, 4)])
def test_balanced_chunks_cover_the_range(n, size):
    chunks = _chunks(n, size)
    covered = [i for c in chunks for i in range(c.start, c.stop)]
    assert covered == list(range(n))
    lengths = [c.stop - c.start for c in chunks]
    assert all(0 < length <= size for length in lengths)
    assert not lengths or max(lengths) - min(lengths) <= 1
    assert len(chunks) == -(-n // size)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_finiteness_check_fast_path_agrees_with_the_elementwise_check(bk):
    xp = bk.xp
    big = bk.asarray(np.full((4, 3), 3e38, dtype=np.float32))  # finite, but its sum overflows
    check_data(big)
    for bad in (float("nan"), float("inf"), -float("inf")):
        host = np.ones((4, 3), dtype=np.float32)
        host[2, 1] = bad
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            check_data(bk.asarray(host))
    check_data(xp.zeros((2, 2), dtype=xp.float32, device=bk.device))


@pytest.mark.parametrize("budget", [1, 3000, 20000, 2**30], ids=["one-column-blocks", "small", "medium", "one-block"])
def test_blocked_l2_neighbours_match_the_stable_oracle(bk, budget):
    # Small integer pixels make the float32 keys exact and put many ties between training rows
    # (duplicated rows included), so every block split must keep the smaller index on ties.
    from xpml.classifiers import KNearestNeighbor

    rng = np.random.default_rng(budget % 97)
    Xtr = rng.integers(0, 3, (57, 6)).astype(np.float32)
    Xtr[30:40] = Xtr[0:10]
    ytr = rng.integers(0, 4, 57)
    Xte = rng.integers(0, 3, (13, 6)).astype(np.float32)
    d = (Xte[:, None, :].astype(np.float64) - Xtr[None, :, :]) ** 2
    oracle = np.argsort(d.sum(axis=2), axis=1, kind="stable")
    knn = KNearestNeighbor(memory_budget=budget).train(bk.asarray(Xtr), bk.asarray(ytr))
    for k in (1, 5, 12):
        got = knn.kneighbors(bk.asarray(Xte), k, return_distance=False)
        assert_placement(got, backend=bk)
        np.testing.assert_array_equal(backend.to_numpy(got), oracle[:, :k])


def test_block_shape_stays_within_the_budget():
    from xpml.classifiers._knn_search import _BLOCK_BYTES_PER_ENTRY, block_shape

    for n, m, budget in [(2000, 50000, 256 * 2**20), (10000, 50000, 256 * 2**20), (7, 40, 1), (50, 5000, 10**6)]:
        rows, cols = block_shape(n, m, 3072, 4, budget)
        assert 1 <= rows <= n and 1 <= cols <= m
        if rows > 1 or cols > 1:  # a budget below one row and one column still makes progress
            assert rows * cols * _BLOCK_BYTES_PER_ENTRY[4] + rows * 2 * 3072 * 4 <= budget * 3 // 4
    # All 2,000 queries of the benchmark in one block against thousands of training rows.
    rows, cols = block_shape(2000, 50000, 3072, 4, 256 * 2**20)
    assert rows == 2000 and cols > 6000  # 6,250 to 12,500 rows per block ran fastest here
