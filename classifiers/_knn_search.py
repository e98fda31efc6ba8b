"""Exact k-nearest-neighbour search: fast candidate products, an error bound, an exact re-rank.

What "exact" means here
-----------------------
The distance between a query ``x`` and a training row ``t`` (both of dtype ``dt``, float32 or
float64) is computed per pair, from the pair alone, as

    L2:  sqrt(S),  S = sum_j fl(x_j - t_j)**2       L1:  S = sum_j |fl(x_j - t_j)|

in ``dt``, with the sum taken in one fixed order that depends only on D (:func:`fixed_order_sum`:
an eight-way tree of elementwise additions). Every step is an elementwise IEEE subtraction,
multiplication or addition, so ``S`` is the same on every backend and device, whatever the batch
it is computed in; it is within about ``(3 + 7 * ceil(log8 D))`` units in the last place of the
true value. The k nearest are the k smallest ``S``, ties going to the smaller training index.
This ranking cannot depend on how the training set is split into blocks or shards, which is what
lets the Dask path (``_knn_dask``) and the low-precision products give the same neighbours,
distances and labels as the single-process float32 search, bit for bit.

How it is found (L2)
--------------------
Computing S for every pair costs a pass over (N, M, D). Instead, per block of training rows,

1. a matrix product gives the key ``k_t = ||t||^2 - 2 x.t`` (the squared distance less
   ``||x||^2``) in the working dtype, or from inputs rounded to bfloat16 where the backend has a
   faster product of that kind (``backend.low_precision_product``);
2. each key comes with a rigorous bound ``B_t`` on its error (see :func:`_bound_without_key`), so
   ``[d2 - B, d2 + B]`` (``d2 = k_t + ||x||^2``) holds the true squared distance;
3. a row is dropped once k other rows are certainly nearer: its lower bound, shrunk by the
   relative margin the exact value's own rounding needs, exceeds the k-th smallest upper bound.
   On the large (block, queries) key matrix this is one comparison with a per-query threshold;
   the few survivors are checked with their own bounds;
4. the survivors of all blocks (about k per query, more where the bound is loose) are re-ranked
   with the exact distance above, and the k smallest by (distance, index) returned.

L1 has no product form; its blocks compute the exact distances directly.

Where the time goes
-------------------
The products are the work; everything else is kept to a few passes over memory. The key
block is written over the previous one where the namespace can (``backend.exact_matmul``'s
``out``), and read once more in place (the norms added) and once by groups of rows whose masks
stay in the cache. Row-wise passes (norms, exact distances) run by blocks of about a megabyte,
so their temporaries stay in the cache too and nothing large is allocated: fresh memory costs
the operating system about as much as the arithmetic on it. Reductions whose portable form is
slow on some backend (``vecdot`` and ``partition`` on PyTorch) go through ``backend``'s kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import backend
from ..backend.errors import InputError
from ..backend.validation import check_data
from ._topk import chunks, smallest_k

__all__ = ["TrainingSet", "build", "fixed_order_sum", "merge_smallest", "search"]

_WAY = 8  # additions per level of the fixed-order sum
_PAIR_BYTES = 96  # device bytes held per candidate pair (indices, keys, bounds, their temporaries)
# Bytes per entry of a (training rows, queries) key block: the key, the previous block's (alive
# until the product returns where it cannot be written over) and the mask (at most; it is taken by
# groups of rows). Key blocks get three quarters of the budget, candidate pairs a quarter.
_BLOCK_BYTES_PER_ENTRY = {4: 4 + 4 + 1, 8: 8 + 8 + 1}
_MAX_QUERY_ROWS = 2048  # the product runs fastest with many query rows (see _topk)
_MIN_TRAIN_COLS = 4096
_CACHE_BYTES = 2**20  # one block of a row-wise pass: its temporaries stay in a core's cache


# -- the exact distance -------------------------------------------------------------------------


def fixed_order_sum(xp, a, /):
    """Sum over the last axis of ``a`` in an order fixed by its length alone.

    Level by level, the axis is cut into ``_WAY`` consecutive slices (the last may be shorter)
    that are added elementwise from left to right, until one element is left. Elementwise
    additions are correctly rounded on every backend, so the result does not depend on the
    backend, the device or the other axes, unlike ``xp.sum``, whose order is the library's.
    """
    n = a.shape[-1]
    while n > 1:
        step = -(-n // min(_WAY, n))
        acc = a[..., :step]
        for lo in range(step, n, step):
            hi = min(n, lo + step)
            if hi - lo == step:
                acc = acc + a[..., lo:hi]
            else:
                acc = xp.concat([acc[..., : hi - lo] + a[..., lo:hi], acc[..., hi - lo :]], axis=-1)
        a, n = acc, step
    return a[..., 0]


def _sum_depth(n: int) -> int:
    """The most additions any term goes through in :func:`fixed_order_sum` of length ``n``."""
    depth = 0
    while n > 1:
        step = -(-n // min(_WAY, n))
        depth += -(-n // step) - 1
        n = step
    return depth


def _exact_pairs(xp, Xq, X, rows, cols, metric, budget):
    """Exact ranking values (P,) (:func:`pair_key`) of query rows ``rows`` and training rows ``cols``."""
    dim = X.shape[1]
    step = _cache_rows(dim, _itemsize(xp, X.dtype), budget * 3 // 4)  # two gathers, the difference, its square
    out = []
    for piece in chunks(rows.shape[0], step):
        diff = xp.take(Xq, rows[piece], axis=0) - xp.take(X, cols[piece], axis=0)
        out.append(pair_key(xp, diff, metric))
    if not out:
        return xp.zeros((0,), dtype=X.dtype, device=backend.get_device(X))
    return xp.concat(out, axis=0)


def pair_key(xp, diff, metric):
    """The exact ranking value along the last axis of ``diff = fl(x - t)``: the squared L2
    distance ``S`` or the L1 distance.

    Only subtraction, multiplication and addition, which IEEE arithmetic rounds correctly on
    every backend; a square root need not be (PyTorch's ``sqrt`` on the CPU is off by one unit in
    the last place for about 0.7% of inputs), so L2 is ranked by ``S`` and the square root taken
    only for display (``backend.sqrt``).
    """
    if metric == "l2":
        return fixed_order_sum(xp, diff * diff)
    return fixed_order_sum(xp, xp.abs(diff))


# -- merging --------------------------------------------------------------------------------------


def merge_smallest(xp, dists, idx, k: int, /):
    """The k smallest of each row of ``dists`` (q, n) by (distance, index ``idx``), nearest first.

    The indices in a row are distinct; the result is ``(distances (q, k'), indices (q, k'))`` with
    ``k' = min(k, n)``.
    """
    by_index = xp.argsort(idx, axis=1)
    idx, dists = xp.take_along_axis(idx, by_index, axis=1), xp.take_along_axis(dists, by_index, axis=1)
    by_value = xp.argsort(dists, axis=1, stable=True)[:, :k]
    return xp.take_along_axis(dists, by_value, axis=1), xp.take_along_axis(idx, by_value, axis=1)


def _by_row_then(xp, rows, *keys):
    """The permutation that orders flat pairs by (row, keys[0], keys[1], ...)."""
    perm = None
    for key in reversed((rows,) + keys):
        key = key if perm is None else xp.take(key, perm)
        order = xp.argsort(key, stable=True)
        perm = order if perm is None else xp.take(perm, order)
    return perm


def _row_starts(xp, sorted_rows, q: int):
    return xp.searchsorted(sorted_rows, xp.arange(q, dtype=sorted_rows.dtype, device=backend.get_device(sorted_rows)))


# -- the prepared training set ---------------------------------------------------------------------


@dataclass
class Norms:
    """Per-row quantities of a matrix V (n, D) that the error bounds need, all (n,) or 0-d.

    ``sq``: the computed squared norms; ``ub >= ||v||``; ``sq_err >= |sq - ||v||^2|``;
    ``round_ub >= ||v - round(v)||`` for a low-precision product (None for the working dtype's).
    """

    sq: Any
    ub: Any
    sq_err: Any
    round_ub: Any = None

    def map(self, f):
        return Norms(*(None if a is None else f(a) for a in (self.sq, self.ub, self.sq_err, self.round_ub)))


@dataclass
class TrainingSet:
    """A training matrix with what the search needs of it, computed once by :func:`build`:
    for L2, the rows' :class:`Norms` and their maxima, and the low-precision product or None."""

    X: Any
    metric: str
    product: Any = None
    norms: Norms | None = None
    worst: Norms | None = None
    scale_exp: int = 0  # X holds the data times 2**scale_exp (see _scale_exponent)

    @property
    def precision_used(self) -> str:
        """The product's input format: ``"bfloat16"``, or the working dtype's name for an exact one."""
        if self.metric == "l1":
            return "direct"
        if self.product is not None:
            return self.product.name
        return "float64" if backend.get_namespace(self.X).finfo(self.X.dtype).bits == 64 else "float32"


def _itemsize(xp, dtype) -> int:
    return xp.finfo(dtype).bits // 8


def _constants(xp, dtype):
    """Unit roundoff, smallest normal and largest finite value of ``dtype``."""
    info = xp.finfo(dtype)
    return float(info.eps) / 2, float(info.smallest_normal), float(info.max)


def _gamma(n: float, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error of n rounded operations."""
    if n * u >= 0.5:
        return math.inf
    return n * u / (1 - n * u)


def row_norms(xp, V, product, budget: int, name: str) -> Norms:
    """:class:`Norms` of the rows of ``V`` by blocks within ``budget``: O(n D), no (n, D) temporary.

    A computed squared norm ``s`` (``backend.sum_of_squares``) errs by at most
    ``gamma_(D+3) s + D tiny``, so ``||v|| <= sqrt(s + D tiny)(1 + gamma_(D+3) + 4u)``. Values
    the product's hardware may flush to zero add ``sqrt(D) * smallest_normal`` to ``round_ub``.
    Raises ValueError where an L2 distance could overflow the dtype.
    """
    num, dim = V.shape
    u, tiny, big = _constants(xp, V.dtype)
    sq, err = [], []
    for block in chunks(num, _cache_rows(dim, _itemsize(xp, V.dtype), budget)):
        Vb = V[block, :]
        sq.append(backend.sum_of_squares(Vb))
        if product is not None:
            err.append(product.rounding_error_squares(Vb))
    sq = xp.concat(sq)
    _check_magnitude(V, sq, big, name)
    g = _gamma(dim + 3, u)

    def upper(s):
        return xp.sqrt(s + dim * tiny) * (1 + g + 4 * u)

    round_ub = None if product is None else upper(xp.concat(err)) + math.sqrt(dim) * product.smallest_normal
    return Norms(sq, upper(sq), (sq + dim * tiny) * (2 * g + 4 * u) + dim * tiny, round_ub)


def _cache_rows(dim: int, itemsize: int, budget: int) -> int:
    """Rows of D values per block of a row-wise pass (norms, exact distances) whose temporaries
    should stay in a core's cache: several elementwise passes over a small block cost one pass
    over main memory, and nothing large is allocated (fresh pages cost as much as the work)."""
    return max(1, min(budget // (3 * dim * itemsize), _CACHE_BYTES // (dim * itemsize)))


def build(X, /, *, metric: str, precision: str, memory_budget: int, scale_exp: int | None = None) -> TrainingSet:
    """Prepare ``X`` (M, D) for :func:`search`: O(M D) time, temporaries within the budget.

    ``scale_exp``: the power of two the data are scaled by (:func:`_scale_exponent` of ``X`` when
    None); the shards of one training set share the whole set's, so their values compare.

    Raises ValueError where an L2 distance could overflow the dtype, or for a precision this
    backend or dtype does not have.
    """
    xp = backend.get_namespace(X)
    product = backend.low_precision_product(xp, backend.get_device(X), precision) if X.dtype == xp.float32 else None
    if precision not in ("auto", "exact") and X.dtype != xp.float32:
        raise InputError(f"precision={precision!r} needs float32 data; this training set is {X.dtype}")
    refuse_flushed(xp, X, "X")
    scale_exp = _scale_exponent(xp, X) if scale_exp is None else scale_exp
    X = times_pow2(xp, X, scale_exp)
    if metric != "l2":
        return TrainingSet(X, metric, scale_exp=scale_exp)
    norms = row_norms(xp, X, product, memory_budget, "X")
    return TrainingSet(X, metric, product, norms, norms.map(xp.max), scale_exp)


# -- tiny data ----------------------------------------------------------------------------------------
#
# Squared differences of data below about 2**-40 (float32) are subnormal or underflow to zero:
# every distance would be 0 (or flushed to 0 by hardware that does not keep subnormals, such as
# JAX on the CPU), and the neighbours would be the first rows, not the nearest. Such data are
# scaled up by a power of two first, which is exact (no rounding, subnormal inputs included), so
# the ranking is that of the data with an unbounded exponent range; the values returned are
# scaled back. Subnormal inputs on a device that flushes them are refused: they would be read as
# zeros before any scaling could keep them.


def _scale_exponent(xp, X) -> int:
    """``e`` such that ``X * 2**e`` has its largest magnitude in [1, 2), when the data are so small
    that their squared differences would be subnormal; 0 otherwise (and for all-zero data)."""
    if math.prod(X.shape) == 0:
        return 0
    info = xp.finfo(X.dtype)
    biggest = max(float(xp.max(X)), -float(xp.min(X)))  # no |X| temporary of the training set's size
    if not 0.0 < biggest < math.sqrt(float(info.smallest_normal)) / float(info.eps):
        return 0
    return -math.floor(math.log2(biggest))


def times_pow2(xp, a, e: int):
    """``a * 2**e``, exact while the results are normal, in steps whose factors the dtype holds."""
    while e:
        step = max(-100, min(100, e))
        a = a * (2.0**step)
        e -= step
    return a


def distances(xp, values, scale_exp: int, metric: str, /, *, squared: bool = False):
    """The distances of the data from ranking values of the data times ``2**scale_exp``: the L2
    root (``backend.sqrt``) taken before scaling back, so that a distance whose square is
    subnormal (or flushed) is still returned; with ``squared``, the squared L2 distances."""
    if metric == "l2" and not squared:
        return times_pow2(xp, backend.sqrt(values), -scale_exp)
    return times_pow2(xp, values, -(2 if metric == "l2" else 1) * scale_exp)


def refuse_flushed(xp, V, name: str) -> None:
    """A ValueError where ``V`` holds subnormal values and its device flushes them to zero."""
    if backend.holds_flushed_subnormals(V):
        tiny = float(xp.finfo(V.dtype).smallest_normal)
        raise InputError(
            f"there are subnormal values in {name} (nonzero, below {tiny:.3g} in magnitude), which this device "
            f"({backend.backend_of(V).label}) flushes to zero, so their distances would be wrong; scale "
            "the data up first (multiply training data and queries by the same power of two, e.g. 2.0**64, "
            "on a backend that keeps subnormals, such as NumPy) or use float64"
        )


def _check_magnitude(V, sq, big: float, name: str):
    # Keys, products and squared distances stay below big / 2 when every squared norm is below big / 8.
    # A non-finite norm is a NaN or infinite value (check_data says so) or finite values too large.
    if not bool(backend.get_namespace(sq).max(sq) <= big / 8):
        check_data(V, name=name)
        raise InputError(
            f"{name} has rows whose squared norm exceeds {big / 8:.3g}: their L2 distances could overflow "
            f"{sq.dtype}; scale the data down (distances scale with it) or use float64"
        )


# -- the bound --------------------------------------------------------------------------------------


def _product_error(ts, dim, u, tiny, xn: Norms, tn: Norms):
    """Upper bound on ``|x.t - fl(x.t)|`` for the product ``ts`` uses (arrays broadcast), from the
    queries' and the training rows' :class:`Norms`. See ``KNearestNeighbor``'s notes for the
    derivation.
    """
    p = ts.product
    if p is None:  # the working dtype's product: round to nearest, unit roundoff u
        return _gamma(dim, u) * xn.ub * tn.ub + 2 * dim * tiny
    g = _gamma(2 * dim, p.accumulation_unit_roundoff)
    rx = xn.ub + xn.round_ub
    return xn.round_ub * tn.ub + rx * tn.round_ub + g * rx * (tn.ub + tn.round_ub) + 2 * dim * p.smallest_normal


def _margin(dim: int, u: float) -> float:
    """Relative margin m: rho_s (1 + m) < rho_t (1 - m) makes the exact value of s strictly smaller."""
    return 2 * _gamma(3 + _sum_depth(dim), u) + 8 * u


# -- the search -------------------------------------------------------------------------------------


def block_shape(n: int, num_train: int, dim: int, itemsize: int, budget: int) -> tuple[int, int]:
    """(query rows, training columns) of one L2 key block whose temporaries fit ``budget`` bytes."""
    per_entry = _BLOCK_BYTES_PER_ENTRY[itemsize]
    per_row = 2 * dim * itemsize
    min_cols = min(num_train, _MIN_TRAIN_COLS)
    budget = budget * 3 // 4
    rows = max(1, min(n, _MAX_QUERY_ROWS, budget // (min_cols * per_entry + per_row)))
    cols = max(1, min(num_train, (budget - rows * per_row) // (rows * per_entry)))
    return rows, cols


def l1_rows(num_train: int, dim: int, itemsize: int, budget: int) -> int:
    # Half the budget for the (q, M) distances and selection, half for the |x - t| blocks.
    by_key = (budget // 2) // (num_train * (2 * itemsize + 8 + 1))
    by_block = (budget // 2) // (2 * dim * itemsize)
    return max(1, min(by_key, by_block))


def search(ts: TrainingSet, Xq, k: int, /, *, memory_budget: int, progress=None, ordered: bool = True):
    """The k nearest training rows of each query ``Xq`` (N, D): ``(values, indices, pairs)``.

    Ranking values (N, k) (:func:`pair_key`: squared distances for L2) in the data dtype,
    indices (N, k) in the index dtype, nearest first, ties to the smaller index; ``pairs`` is
    the number of (query, row) pairs re-ranked exactly, a host int (N k at least for L2; 0 for L1,
    whose blocks are exact). With ``ordered=False`` the rows of the result are the right sets of
    k neighbours, not in order, and some values are -1 (L2: see :func:`_certain_first`).

    The values are those of the data times ``2**ts.scale_exp`` (tiny data are scaled up: see
    :func:`_scale_exponent`); :func:`distances` turns them into the data's distances.
    """
    xp = backend.get_namespace(ts.X)
    num, dim = ts.X.shape
    k = min(k, num)
    itemsize = _itemsize(xp, ts.X.dtype)
    if ts.metric == "l2":
        rows, cols = block_shape(Xq.shape[0], num, dim, itemsize, memory_budget)
    else:
        rows = l1_rows(num, dim, itemsize, memory_budget)
    refuse_flushed(xp, Xq, "the queries")
    Xq = times_pow2(xp, Xq, ts.scale_exp)
    query_chunks = chunks(Xq.shape[0], rows)
    dists, idx, pairs = [], [], []
    for chunk in query_chunks if progress is None else progress(query_chunks):
        if ts.metric == "l2":
            d, i, p = _l2_chunk(xp, ts, Xq[chunk, :], k, cols, memory_budget, ordered)
        else:
            d, i, p = _l1_chunk(xp, ts, Xq[chunk, :], k, memory_budget)
        dists.append(d)
        idx.append(i)
        pairs.append(p)
    return xp.concat(dists, axis=0), xp.concat(idx, axis=0), sum(pairs)


def _l1_chunk(xp, ts, Xq, k, budget):
    num, dim = ts.X.shape
    step = max(1, budget // (3 * Xq.shape[0] * dim * _itemsize(xp, Xq.dtype)))
    dists, idx = [], []
    for block in chunks(num, step):
        key = pair_key(xp, Xq[:, None, :] - ts.X[None, block, :], "l1")
        part = smallest_k(xp, key, min(k, key.shape[1]))
        dists.append(xp.take_along_axis(key, part, axis=1))
        idx.append(part + block.start)
        if sum(i.shape[1] for i in idx) > 4 * k:  # keep the running candidates small
            d, i = merge_smallest(xp, xp.concat(dists, axis=1), xp.concat(idx, axis=1), k)
            dists, idx = [d], [i]
    d, i = merge_smallest(xp, xp.concat(dists, axis=1), xp.concat(idx, axis=1), k)
    return d, i, 0


@dataclass
class _Candidates:
    """Flat (query row, training column) pairs still in the running, with their bounds."""

    rows: Any
    cols: Any
    lower: Any
    upper: Any

    def extend(self, xp, other):
        if self.rows is None:
            return other
        return _Candidates(*(xp.concat([a, b]) for a, b in zip(
            (self.rows, self.cols, self.lower, self.upper), (other.rows, other.cols, other.lower, other.upper),
            strict=True)))

    def take(self, xp, keep):
        return _Candidates(*(xp.take(a, keep) for a in (self.rows, self.cols, self.lower, self.upper)))

    @property
    def size(self) -> int:
        return 0 if self.rows is None else int(self.rows.shape[0])


def _certain_first(xp, kept, q, k):
    """Mark (lower = -1) the pairs certainly among their query's k nearest: upper bound below the
    (k + 1)-th smallest lower bound, so at most k - 1 other rows can be nearer. They need no
    exact distance when only the set of the k nearest matters."""
    perm = _by_row_then(xp, kept.rows, kept.lower)
    starts = _row_starts(xp, xp.take(kept.rows, perm), q)
    ends = xp.concat([starts[1:], xp.asarray([kept.size], dtype=starts.dtype, device=backend.get_device(starts))])
    at_k1 = xp.take(xp.take(kept.lower, perm), xp.clip(starts + k, max=kept.size - 1))
    bar = xp.where(ends - starts > k, at_k1, xp.full_like(at_k1, math.inf))
    certain = kept.upper < xp.take(bar, kept.rows)
    lower = xp.where(certain, xp.full_like(kept.lower, -1.0), kept.lower)
    return _Candidates(kept.rows, kept.cols, lower, kept.upper)


def _l2_chunk(xp, ts, Xq, k, cols, budget, ordered=True):
    """Exact L2 neighbours of one query block: candidates by blocks of keys, then the re-rank.

    With ``ordered=False`` only the set of the k nearest is exact (for a vote): pairs certainly in
    it are not re-ranked, and their values are returned as -1."""
    num, dim = ts.X.shape
    q = Xq.shape[0]
    device = backend.get_device(Xq)
    u, tiny, _ = _constants(xp, Xq.dtype)
    m = _margin(dim, u)
    xn = row_norms(xp, Xq, ts.product, budget, "X")
    nx = xn.sq
    # The bound's parts that do not depend on the key, at their worst over the training set.
    b0_max = _bound_without_key(ts, dim, u, tiny, xn, ts.worst)
    scaled = -2.0 * Xq  # exact; the factor goes on the small query block
    cap = max(8 * q * k, budget // (4 * _PAIR_BYTES))  # candidate pairs held before an exact compaction
    kept = _Candidates(None, None, None, None)
    upper_k = xp.full((q,), math.inf, dtype=Xq.dtype, device=device)
    pairs = pruned = seen = 0
    key = None
    for block in chunks(num, cols):
        width = block.stop - block.start
        # Keys of this block's training rows (rows) against the queries (columns): the product
        # in this orientation runs faster with oneDNN, and the same elsewhere. The previous
        # block's keys are dead by now: written over where the namespace allows.
        key = _product(xp, ts, ts.X[block, :], scaled, out=key)
        key += xp.reshape(ts.norms.sq[block], (width, 1))  # in place where the namespace allows
        if seen == 0 and width >= k:
            # Any k rows bound the k-th nearest from above: the first block's rows, cut into k
            # groups, give k rows, each group's nearest, with one pass of minima (no copy, no
            # selection, which on some backends is a sort). Later blocks use the candidates' bounds.
            size = width // k
            kth = xp.max(xp.min(xp.reshape(key[: k * size, :], (k, size, q)), axis=1), axis=0)
            slack = 4 * u * (xp.abs(kth) + nx + b0_max)
            threshold = (kth + nx + b0_max + slack) * (1 + m) * (1 + 4 * u)
        elif seen < k:
            threshold = xp.full((q,), math.inf, dtype=Xq.dtype, device=device)
        else:
            threshold = upper_k
        limit = xp.reshape(_key_limit(xp, threshold, nx, b0_max, m, u), (1, q))
        seen += width
        # Candidates are taken by groups of training rows whose pairs fit the candidates' share
        # of the budget even where the bound prunes nothing; a group's mask, a small slice of the
        # key block, stays in the cache and is read once.
        found, held = [], kept.size
        for group in chunks(width, max(1, min(width, cap // q))):
            rows = key[group, :]
            flat = xp.nonzero(xp.reshape(rows <= limit, (-1,)))[0]
            if flat.shape[0] == 0:
                continue
            found.append((flat + group.start * q, xp.take(xp.reshape(rows, (-1,)), flat)))
            held += flat.shape[0]
            if held > cap:  # a bound too loose to prune (huge offsets): keep the memory bounded
                kept = kept.extend(xp, _collect(xp, ts, found, q, block.start, xn, u, tiny, m))
                found = []
                kept, upper_k = _prune(xp, kept, q, k)
                pruned = kept.size
                if kept.size > cap:
                    kept, upper_k, done = _compact(xp, ts, Xq, kept, q, k, m, u, budget)
                    pairs, pruned = pairs + done, kept.size
                held = kept.size
        if found:
            kept = kept.extend(xp, _collect(xp, ts, found, q, block.start, xn, u, tiny, m))
        # Pruning sorts the pairs held: do it when they have doubled since the last time (the
        # threshold only tightens then, and stays valid in between).
        if kept.size > 2 * pruned:
            kept, upper_k = _prune(xp, kept, q, k)
            pruned = kept.size
    del key
    if kept.size > pruned:
        kept, _ = _prune(xp, kept, q, k)
    if not ordered:
        kept = _certain_first(xp, kept, q, k)
    exact = kept if ordered else kept.take(xp, xp.nonzero(kept.lower >= 0)[0])
    dists = _exact_pairs(xp, Xq, ts.X, exact.rows, exact.cols, "l2", budget)
    pairs = pairs + exact.size
    if not ordered:  # certain members keep their value -1, below every distance
        certain = kept.take(xp, xp.nonzero(kept.lower < 0)[0])
        dists = xp.concat([certain.lower, dists])
        kept = certain.extend(xp, exact)
    perm = _by_row_then(xp, kept.rows, dists, kept.cols)
    rows_s = xp.take(kept.rows, perm)
    take = xp.reshape(_row_starts(xp, rows_s, q), (q, 1)) + xp.reshape(
        xp.arange(k, dtype=rows_s.dtype, device=device), (1, k))
    take = xp.reshape(take, (-1,))
    out_d = xp.reshape(xp.take(xp.take(dists, perm), take), (q, k))
    out_i = xp.reshape(xp.take(xp.take(kept.cols, perm), take), (q, k))
    return out_d, out_i, pairs


def _product(xp, ts, Xb, scaled, out=None):
    """``Xb @ scaled.T``: (training rows, queries), with the product the bound assumes."""
    if ts.product is not None:
        return ts.product.matmul(Xb, scaled.T, out=out)
    return backend.exact_matmul(Xb, scaled.T, out=out)  # the dtype's own rounding


def _bound_without_key(ts, dim, u, tiny, xn: Norms, tn: Norms):
    """``B0``: the bound on ``|d2 - rho|`` less its ``4 u |key|`` part (arrays broadcast).

    The key's error (the norm's, twice the product's), the query norm's, the roundings of the
    key and of ``d2`` (``4 u``), tiny squares lost to underflow, and a last factor for the
    roundings of this sum of positive terms."""
    total = tn.sq_err + 2 * _product_error(ts, dim, u, tiny, xn, tn) + xn.sq_err
    return (total + 4 * u * (xn.sq + total) + 4 * dim * tiny) * (1 + 16 * u)


def _key_limit(xp, threshold, nx, b0_max, m, u):
    """A per-query key value above which no row can have ``lower <= threshold``."""
    w = threshold / (1 - m) + b0_max - nx
    return w + 8 * u * (xp.abs(w) + 2 * nx + 2 * b0_max)


def _bounded(xp, ts, u, tiny, m, r, c, key, xn: Norms):
    """Candidates (query r, training row c) with lower and upper bounds on rho, widened by ``m``."""
    xr = xn.map(lambda a: xp.take(a, r))
    b = _bound_without_key(ts, ts.X.shape[1], u, tiny, xr, ts.norms.map(lambda a: xp.take(a, c)))
    b = b + 4 * u * xp.abs(key)
    d2 = key + xr.sq
    lower = xp.clip(d2 - b, min=0.0) * (1 - m)
    upper = (d2 + b) * (1 + m)
    return _Candidates(r, c, lower, upper)


def _collect(xp, ts, found, q, start, xn: Norms, u, tiny, m):
    """Candidates from ``found``: (flat index into a key block of ``q`` query columns whose first
    row is training row ``start``, key value) pairs of arrays, with their bounds."""
    flat = xp.concat([f for f, _ in found])
    values = xp.concat([v for _, v in found])
    return _bounded(xp, ts, u, tiny, m, flat % q, flat // q + start, values, xn)


def _prune(xp, kept, q, k):
    """Drop the pairs whose lower bound exceeds their query's k-th smallest upper bound (a query
    with fewer than k pairs held keeps them all)."""
    perm = _by_row_then(xp, kept.rows, kept.upper)
    rows_s = xp.take(kept.rows, perm)
    starts = _row_starts(xp, rows_s, q)
    ends = xp.concat([starts[1:], xp.asarray([kept.size], dtype=starts.dtype, device=backend.get_device(starts))])
    at = xp.clip(starts + (k - 1), max=kept.size - 1)
    at_k = xp.take(xp.take(kept.upper, perm), at)
    upper_k = xp.where(ends - starts >= k, at_k, xp.full_like(at_k, math.inf))
    keep = xp.nonzero(kept.lower <= xp.take(upper_k, kept.rows))[0]
    return kept.take(xp, keep), upper_k


def _compact(xp, ts, Xq, kept, q, k, m, u, budget):
    """Re-rank the held pairs exactly and keep each query's k nearest, with bounds from their
    exact distances: bounded memory when the key bound is too loose to prune (huge offsets)."""
    dists = _exact_pairs(xp, Xq, ts.X, kept.rows, kept.cols, "l2", budget)
    done = kept.size
    perm = _by_row_then(xp, kept.rows, dists, kept.cols)
    rows_s = xp.take(kept.rows, perm)
    rank = xp.arange(done, dtype=rows_s.dtype, device=backend.get_device(rows_s)) - xp.take(
        _row_starts(xp, rows_s, q), rows_s)
    sel = xp.take(perm, xp.nonzero(rank < k)[0])
    d = xp.take(dists, sel)
    # rho >= S / (1 + tau) and rho <= S / (1 - tau) for the exact value S, tau its relative error
    # (see _margin): m covers it, a second factor the roundings here.
    lower = d * ((1 - m) ** 2)
    upper = d * ((1 + m) ** 2) + 4 * ts.X.shape[1] * _constants(xp, d.dtype)[1]
    kept, upper_k = _prune(xp, _Candidates(xp.take(kept.rows, sel), xp.take(kept.cols, sel), lower, upper), q, k)
    return kept, upper_k, done
