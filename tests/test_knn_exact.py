"""Exact kNN: every search path equals the stable sort of the exact per-pair values, on adversarial
data (ties, duplicated rows, near ties, large norms, tiny values), for every block size, with the
working dtype's product and with a bfloat16 one; the error bound the candidates rely on holds."""

import tracemalloc

import array_api_compat.numpy as hxp
import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_equal, assert_placement
from xpml.classifiers import KNearestNeighbor, _knn_search
from xpml.classifiers._knn_search import fixed_order_sum


def tiny_exponent(Xtr):
    """The power of two that brings training data whose squared differences would underflow
    (largest magnitude below sqrt(smallest normal) / eps) to a largest magnitude in [1, 2)."""
    info = np.finfo(Xtr.dtype)
    biggest = float(np.abs(Xtr).max())
    return -int(np.floor(np.log2(biggest))) if 0 < biggest < np.sqrt(info.smallest_normal) / info.eps else 0


def exact_values(Xte, Xtr, metric):
    """The exact ranking values (N, M) on the host: squared L2 or L1 in the data's dtype, summed
    in the fixed order (see classifiers._knn_search), in an unbounded exponent range: tiny data
    scaled up by ``2**tiny_exponent(Xtr)`` (exactly, through float64), as the search ranks them."""
    e = tiny_exponent(Xtr)
    diff = ((Xte[:, None, :] - Xtr[None, :, :]).astype(np.float64) * 2.0**e).astype(Xtr.dtype)
    return fixed_order_sum(hxp, diff * diff if metric == "l2" else np.abs(diff))


def distances_of(values, Xtr, metric):
    """The distances the search reports for ranking values: NumPy's root, then scaled back."""
    d = np.sqrt(values) if metric == "l2" else values
    return (d.astype(np.float64) * 2.0 ** -tiny_exponent(Xtr)).astype(d.dtype)


def oracle(Xte, Xtr, k, metric):
    values = exact_values(Xte, Xtr, metric)
    idx = np.argsort(values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(values, idx, axis=1), idx


def adversarial(case, seed=0, M=60, N=11, D=7):
    rng = np.random.default_rng(seed)
    if case == "ties":  # few distinct values: many equal distances
        Xtr, Xte = rng.integers(0, 3, (M, D)), rng.integers(0, 3, (N, D))
    elif case == "duplicates":  # repeated rows, queries equal to training rows
        Xtr = np.repeat(rng.normal(size=(M // 4, D)), 4, axis=0)[rng.permutation(M)]
        Xte = Xtr[rng.integers(0, M, N)]
    elif case == "near-ties":  # rows one or two units in the last place apart
        base = rng.normal(size=(1, D)).astype(np.float32)
        Xtr = np.repeat(base, M, axis=0)
        sign = rng.integers(-1, 2, (M, D))
        Xtr = np.nextafter(Xtr, np.where(sign > 0, np.inf, np.where(sign < 0, -np.inf, Xtr)).astype(np.float32))
        Xtr[::3] = np.nextafter(Xtr[::3], np.float32(np.inf))
        Xte = np.repeat(base, N, axis=0) + rng.normal(size=(N, D)).astype(np.float32) * np.float32(1e-6)
    elif case == "offset":  # a large common offset: the product's cancellation is huge
        Xtr, Xte = 1e4 + rng.normal(size=(M, D)), 1e4 + rng.normal(size=(N, D))
    elif case == "large-norms":
        Xtr, Xte = 1e17 * rng.normal(size=(M, D)), 1e17 * rng.normal(size=(N, D))
    elif case == "tiny":  # near and below the smallest normal float32
        Xtr, Xte = 1e-39 * rng.integers(0, 4, (M, D)), 1e-39 * rng.integers(0, 4, (N, D))
    else:
        Xtr, Xte = rng.normal(size=(M, D)), rng.normal(size=(N, D))
    return Xtr.astype(np.float32), rng.integers(0, 3, M), Xte.astype(np.float32)


CASES = ["normal", "ties", "duplicates", "near-ties", "offset", "large-norms", "tiny"]


def refused_here(bk, *hosts) -> bool:
    """Whether the search must refuse these data on ``bk``: subnormal values on a device that
    flushes them to zero (JAX on the CPU does, by design)."""
    tiny = np.finfo(hosts[0].dtype).smallest_normal
    subnormal = any(((np.abs(h) < tiny) & (h != 0)).any() for h in hosts)
    return subnormal and backend.flushes_subnormals(bk.asarray(hosts[0]))


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 63, 64, 65, 3072])
def test_fixed_order_sum_does_not_depend_on_the_batch_or_backend(bk, n):
    rng = np.random.default_rng(n)
    host = (rng.normal(size=(6, n)) * 10.0 ** rng.integers(-3, 4, (6, n))).astype(np.float32)
    want = fixed_order_sum(hxp, host)
    a = bk.asarray(host)
    whole = fixed_order_sum(bk.xp, a)
    assert_placement(whole, backend=bk, dtype=a.dtype, shape=(6,))
    np.testing.assert_array_equal(backend.to_numpy(whole), want)
    one_by_one = [backend.to_numpy(fixed_order_sum(bk.xp, a[i : i + 1, :]))[0] for i in range(6)]
    np.testing.assert_array_equal(np.asarray(one_by_one), want)
    stacked = fixed_order_sum(bk.xp, bk.xp.stack([a, bk.xp.flip(a, axis=0)]))  # another leading shape
    np.testing.assert_array_equal(backend.to_numpy(stacked)[1], want[::-1])
    # Accurate: within the depth of the tree of the float64 sum.
    depth = _knn_search._sum_depth(n)
    ref = host.astype(np.float64).sum(axis=1)
    assert (np.abs(want - ref) <= (depth + 1) * 2.0**-24 * np.abs(host).astype(np.float64).sum(axis=1)).all()


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("case", CASES)
def test_every_block_size_gives_the_exact_neighbours(bk, metric, case):
    Xtr, ytr, Xte = adversarial(case)
    Q = bk.asarray(Xte)
    if refused_here(bk, Xtr, Xte):
        with pytest.raises(ValueError, match="subnormal values in X .* flushes to zero.*scale the data up"):
            KNearestNeighbor(metric, precision="exact").train(bk.asarray(Xtr), bk.asarray(ytr))
        return
    for budget in (600, 3000, 2**28):  # one query row and 2 blocks, 5 rows and 4 blocks, one block
        knn = KNearestNeighbor(metric, memory_budget=budget, precision="exact").train(bk.asarray(Xtr), bk.asarray(ytr))
        for k in (1, 5, 60):
            values, idx = oracle(Xte, Xtr, k, metric)
            want = bk.asarray(distances_of(values, Xtr, metric))  # NumPy's distances
            d, i = knn.kneighbors(Q, k)
            assert_placement(d, backend=bk, dtype=Q.dtype, shape=(11, k))
            np.testing.assert_array_equal(backend.to_numpy(i), idx, err_msg=f"budget={budget} k={k}")
            assert_equal(d, want, err_msg=f"budget={budget} k={k}")
            assert knn.last_search_.candidates >= 11 * k if metric == "l2" else True


@pytest.mark.parametrize("case", ["ties", "near-ties", "offset"])
def test_float64_data_is_searched_in_float64(bk, case):
    Xtr, ytr, Xte = adversarial(case)
    Xtr, Xte = Xtr.astype(np.float64), Xte.astype(np.float64)
    if case == "near-ties":  # ties one float64 unit in the last place apart
        Xtr[::2] = np.nextafter(Xtr[::2], np.inf)
    knn = KNearestNeighbor(memory_budget=3000).train(bk.asarray(Xtr), bk.asarray(ytr))
    assert knn._ts.precision_used == "float64"
    for k in (1, 7):
        values, idx = oracle(Xte, Xtr, k, "l2")
        d, i = knn.kneighbors(bk.asarray(Xte), k)
        np.testing.assert_array_equal(backend.to_numpy(i), idx)
        assert_equal(d, backend.sqrt(bk.asarray(values)))  # NumPy's root, but torch's own in float64


@pytest.mark.parametrize("case", CASES)
def test_the_teaching_loops_rank_as_the_search_does(case):
    Xtr, ytr, Xte = adversarial(case, M=20, N=4)
    knn = KNearestNeighbor().train(Xtr, ytr)
    for k in (1, 3, 20):
        want = knn.predict(Xte, k)
        np.testing.assert_array_equal(knn.predict(Xte, k, num_loops=1), want)
        np.testing.assert_array_equal(knn.predict(Xte, k, num_loops=2), want)


def _all_bounds(knn, Xq):
    """Lower and upper bounds (N, M) on the true squared distance, as the search computes them
    (on the data scaled by ``2**ts.scale_exp``; returned scaled back, in float64)."""
    ts = knn._ts
    xp = backend.get_namespace(ts.X)
    Xq = _knn_search.times_pow2(xp, Xq, ts.scale_exp)
    num, dim = ts.X.shape
    u, tiny, _ = _knn_search._constants(xp, Xq.dtype)
    xn = _knn_search.row_norms(xp, Xq, ts.product, 2**28, "X")
    key = xp.permute_dims(_knn_search._product(xp, ts, ts.X, -2.0 * Xq), (1, 0)) + ts.norms.sq
    n = Xq.shape[0]
    r = xp.reshape(xp.broadcast_to(xp.arange(n)[:, None], (n, num)), (-1,))
    c = xp.reshape(xp.broadcast_to(xp.arange(num)[None, :], (n, num)), (-1,))
    cand = _knn_search._bounded(xp, ts, u, tiny, 0.0, r, c, xp.reshape(key, (-1,)), xn)
    back = 2.0 ** (-2 * ts.scale_exp)
    return tuple(backend.to_numpy(a).astype(np.float64).reshape(n, num) * back for a in (cand.lower, cand.upper))


def _true_sq(Xte, Xtr):
    diff = Xte[:, None, :].astype(np.float64) - Xtr[None, :, :].astype(np.float64)
    return (diff * diff).sum(-1)


@pytest.mark.parametrize("case", CASES)
def test_the_error_bound_of_the_working_product_holds(case):
    Xtr, ytr, Xte = adversarial(case, M=200, N=20, D=300)
    knn = KNearestNeighbor(precision="exact").train(Xtr, ytr)
    lower, upper = _all_bounds(knn, Xte)
    rho = _true_sq(Xte, Xtr)
    assert (lower <= rho).all() and (rho <= upper).all()


# -- the bfloat16 product (torch on a CPU with AMX or AVX-512-BF16) --------------------------------


def _torch_bf16():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as txp

    if backend.low_precision_product(txp, torch.device("cpu"), "auto") is None:
        pytest.skip("no bfloat16 product with float32 accumulation on this CPU (needs AMX or AVX-512-BF16)")
    return torch


@pytest.mark.parametrize("case", CASES + ["pixels"])
def test_the_bfloat16_product_gives_the_exact_neighbours(case):
    torch = _torch_bf16()
    if case == "pixels":  # what bfloat16 holds exactly: the bound is the accumulation's alone
        rng = np.random.default_rng(5)
        Xtr, ytr, Xte = (rng.integers(0, 256, (300, 96)).astype(np.float32), rng.integers(0, 3, 300),
                         rng.integers(0, 256, (40, 96)).astype(np.float32))
    else:
        Xtr, ytr, Xte = adversarial(case, M=300, N=40, D=96)
    Q = torch.from_numpy(Xte)
    fast = KNearestNeighbor(precision="bfloat16").train(torch.from_numpy(Xtr), torch.from_numpy(ytr))
    assert fast._ts.precision_used == "bfloat16"
    for budget in (20000, 2**28):
        fast.memory_budget = budget
        for k in (1, 10, 300):
            values, idx = oracle(Xte, Xtr, k, "l2")
            d, i = fast.kneighbors(Q, k)
            np.testing.assert_array_equal(i.numpy(), idx, err_msg=f"budget={budget} k={k}")
            np.testing.assert_array_equal(d.numpy(), np.sqrt(values))
            assert fast.last_search_.product == "bfloat16" and fast.last_search_.candidates >= 40 * k
            np.testing.assert_array_equal(fast.predict(Q, k).numpy(),
                                          KNearestNeighbor(precision="exact").train(
                                              torch.from_numpy(Xtr), torch.from_numpy(ytr)).predict(Q, k).numpy())


@pytest.mark.parametrize("case", CASES)
def test_the_error_bound_of_the_bfloat16_product_holds(case):
    torch = _torch_bf16()
    Xtr, ytr, Xte = adversarial(case, M=200, N=40, D=300)
    knn = KNearestNeighbor(precision="bfloat16").train(torch.from_numpy(Xtr), torch.from_numpy(ytr))
    lower, upper = _all_bounds(knn, torch.from_numpy(Xte))
    rho = _true_sq(Xte, Xtr)
    assert (lower <= rho).all() and (rho <= upper).all()
    # The bound is not vacuous: for data bfloat16 rounds, it is a few units of its roundoff.
    if case == "normal":
        width = (upper - lower) / rho
        assert np.median(width) < 0.1


# -- training, options ---------------------------------------------------------------------------------


def test_train_makes_no_temporary_of_the_training_set_size():
    X = np.random.default_rng(0).normal(size=(20000, 64)).astype(np.float32)  # 5.1 MB
    y = np.zeros(20000, dtype=np.int64)
    knn = KNearestNeighbor(memory_budget=2**20)
    tracemalloc.start()
    try:
        knn.train(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 2, f"train allocated {peak} bytes at its peak for a {X.nbytes}-byte training set"
    np.testing.assert_allclose(knn._ts.norms.sq, (X.astype(np.float64) ** 2).sum(1), rtol=1e-5)


def test_precision_options_are_checked():
    with pytest.raises(ValueError, match="precision must be"):
        KNearestNeighbor(precision="fp8")
    X, y = np.ones((3, 2), dtype=np.float32), np.arange(3)
    with pytest.raises(ValueError, match="no bfloat16 product"):
        KNearestNeighbor(precision="bfloat16").train(X, y)
    with pytest.raises(ValueError, match="needs float32"):
        KNearestNeighbor(precision="bfloat16").train(X.astype(np.float64), y)
    assert KNearestNeighbor().train(X, y)._ts.precision_used == "float32"  # auto on numpy: exact


def test_data_whose_distances_would_overflow_is_refused():
    X, y = np.full((3, 2), 1e19, dtype=np.float32), np.arange(3)
    with pytest.raises(ValueError, match="could overflow"):
        KNearestNeighbor().train(X, y)
    knn = KNearestNeighbor().train(np.ones((3, 2), dtype=np.float32), y)
    with pytest.raises(ValueError, match="X has rows whose squared norm"):
        knn.kneighbors(X, 1)


def test_a_bound_too_loose_to_prune_keeps_the_candidates_within_the_budget(monkeypatch):
    # A large common offset makes the product's error bound cover every row: all pairs are
    # candidates. They are taken a few query rows at a time and compacted (re-ranked exactly,
    # k kept per query) whenever more are held than the budget's share allows.
    held = []
    compact = _knn_search._compact

    def watched(xp, ts, Xq, kept, q, k, m, u, budget):
        held.append(kept.size)
        return compact(xp, ts, Xq, kept, q, k, m, u, budget)

    monkeypatch.setattr(_knn_search, "_compact", watched)
    Xtr, ytr, Xte = adversarial("offset", M=400, N=50)
    knn = KNearestNeighbor(memory_budget=20000).train(Xtr, ytr)
    d, i = knn.kneighbors(Xte, 3)
    np.testing.assert_array_equal(i, oracle(Xte, Xtr, 3, "l2")[1])
    rows, _ = _knn_search.block_shape(50, 400, 7, 4, 20000)
    cap = max(8 * rows * 3, 20000 // (4 * _knn_search._PAIR_BYTES))
    assert held and max(held) <= cap + rows * 400  # at most one group of rows beyond the cap
