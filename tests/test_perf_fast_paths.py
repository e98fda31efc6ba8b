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


# -- the shim's kernels for the kNN search ------------------------------------------------------


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("dim", [1, 7, 3072])
def test_sum_of_squares_is_within_its_stated_bound(bk, dtype_name, dim):
    # The fast kernel (torch: a fused norm, squared) and the portable one (vecdot) both satisfy
    # |s - sum x**2| <= gamma_(D+3) sum x**2 + D tiny, on values spread over 14 orders of magnitude.
    rng = np.random.default_rng(dim)
    host = (rng.normal(size=(9, dim)) * 10.0 ** rng.integers(-7, 7, (9, 1))).astype(dtype_name)
    host[0] = 0.0
    V = bk.asarray(host)
    got = backend.sum_of_squares(V)
    assert_placement(got, backend=bk, dtype=V.dtype, shape=(9,))
    exact = (host.astype(np.longdouble) ** 2).sum(axis=1)
    info = np.finfo(host.dtype)
    u = float(info.eps) / 2
    gamma = (dim + 3) * u / (1 - (dim + 3) * u)
    err = np.abs(backend.to_numpy(got).astype(np.longdouble) - exact)
    assert (err <= gamma * exact + dim * float(info.smallest_normal)).all()
    portable = bk.xp.vecdot(V, V)
    assert (np.abs(backend.to_numpy(portable).astype(np.longdouble) - exact) <= gamma * exact
            + dim * float(info.smallest_normal)).all()


@pytest.mark.parametrize("k", [1, 3, 40])
def test_kth_smallest_matches_a_sort(bk, k):
    rng = np.random.default_rng(k)
    host = rng.integers(0, 5, (6, 2, 40)).astype(np.float32)  # many ties at the k-th value
    x = bk.asarray(host)
    got = backend.kth_smallest(x, k)
    assert_placement(got, backend=bk, dtype=x.dtype, shape=(6, 2))
    np.testing.assert_array_equal(backend.to_numpy(got), np.sort(host, axis=-1)[..., k - 1])
    with pytest.raises(ValueError, match="outside 1..40"):
        backend.kth_smallest(x, 41)


def test_exact_matmul_writes_into_a_dead_array_where_it_can(bk):
    # The product written over a given array (NumPy, CuPy, torch) equals a fresh one; where the
    # namespace cannot write into an array, or the array does not fit, a new one is returned.
    import array_api_compat

    rng = np.random.default_rng(3)
    a, b = (bk.asarray(rng.normal(size=shape).astype(np.float32)) for shape in ((5, 7), (7, 4)))
    want = backend.exact_matmul(a, b)
    old = bk.xp.zeros((5, 4), dtype=bk.xp.float32, device=bk.device)
    got = backend.exact_matmul(a, b, out=old)
    assert_equal(got, want)
    writes = array_api_compat.is_writeable_array(old) and not array_api_compat.is_array_api_strict_namespace(bk.xp)
    assert (got is old) == writes
    for misfit in (bk.xp.zeros((4, 5), dtype=bk.xp.float32, device=bk.device),
                   bk.xp.zeros((5, 4), dtype=bk.xp.float64, device=bk.device)):
        other = backend.exact_matmul(a, b, out=misfit)
        assert other is not misfit
        assert_equal(other, want)


def test_the_bfloat16_rounding_errors_match_the_portable_formula():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as txp

    product = backend.low_precision_product(txp, torch.device("cpu"), "auto")
    if product is None:
        pytest.skip("no bfloat16 product with float32 accumulation on this CPU (needs AMX or AVX-512-BF16)")
    V = torch.randn(300, 97, generator=torch.Generator().manual_seed(0)) * 100
    V[:5] = torch.round(V[:5]).clamp(-256, 256)  # rows bfloat16 holds exactly (8-bit integers): no error
    got = product.rounding_error_squares(V)
    e = V - product.round(V)
    np.testing.assert_array_equal(got.numpy(), backend.sum_of_squares(e).numpy())
    assert (got[:5] == 0).all() and (got[5:] > 0).all()
    assert torch.equal(V, V.clone())  # the input is not written to


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_sqrt_is_numpys_correctly_rounded_root(bk, dtype_name):
    # PyTorch's vectorised root misses by one unit in the last place for about 0.7% of these;
    # backend.sqrt gives NumPy's correctly rounded float32 root on every backend, and float64
    # everywhere but on torch, whose own float64 root is within one unit.
    rng = np.random.default_rng(11)
    host = np.concatenate([rng.random(200_000) * 10.0 ** rng.integers(-30, 30, 200_000),
                           [0.0, 1.0, 2.0, 4.0, 1e-38, 3e38]]).astype(dtype_name)
    if bk.name == "jax" and dtype_name == "float32":
        host[host < np.finfo(np.float32).smallest_normal] = 0  # JAX flushes subnormals to zero
    got = backend.sqrt(bk.asarray(host))
    assert_placement(got, backend=bk, dtype=bk.asarray(host).dtype, shape=host.shape)
    want = np.sqrt(host)
    if bk.name == "torch" and dtype_name == "float64":
        assert (np.abs(backend.to_numpy(got) - want) <= np.spacing(want)).all()
    else:
        np.testing.assert_array_equal(backend.to_numpy(got), want)
