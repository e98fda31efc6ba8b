"""k-nearest-neighbour classification with L2 or L1 distance: exact, memory-bounded, deterministic at ties."""

from __future__ import annotations

import time
from dataclasses import dataclass

import array_api_extra as xpx

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_data, check_labels, check_positive
from ..nets.model import VersionedState
from . import _knn_search
from ._checks import check_features
from ._topk import chunks as _chunks
from ._topk import smallest_k as _smallest_k

__all__ = ["KNearestNeighbor", "SearchStats"]

_METRICS = ("l2", "l1")


@dataclass(frozen=True)
class SearchStats:
    """What the last :meth:`KNearestNeighbor.kneighbors` (or ``predict``) call did.

    ``product`` is the format of the candidate products (``"bfloat16"``, ``"float32"``,
    ``"float64"``; ``"direct"`` for L1), ``candidates`` the number of (query, training row) pairs
    whose distance was computed exactly (at least ``queries * k``), ``shards`` the number of Dask
    workers searched (0 in process) and ``seconds`` the wall time of the call.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers import KNearestNeighbor
    >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
    >>> _ = knn.kneighbors(np.array([[0.2, 0.1]]), k=2)
    >>> stats = knn.last_search_
    >>> stats.queries, stats.k
    (1, 2)
    """

    product: str
    queries: int
    k: int
    candidates: int
    shards: int
    seconds: float

    @property
    def candidates_per_query(self) -> float:
        return self.candidates / self.queries


class KNearestNeighbor(VersionedState):
    """A kNN classifier with L2 (Euclidean) or L1 (Manhattan) distance.

    Parameters
    ----------
    metric : {"l2", "l1"}
        The distance.
    memory_budget : int, keyword-only
        Bytes allowed for the temporaries of :meth:`train`, :meth:`predict` (``num_loops=0``),
        :meth:`kneighbors` and :meth:`compute_distances_no_loops` (per Dask worker with
        ``client=``). The full matrix returned by the ``compute_distances_*`` methods is, of
        course, the caller's.
    precision : {"auto", "exact", "bfloat16"}, keyword-only
        The format of the matrix products that find the L2 candidates. It never changes the
        result, only the speed: candidates are re-ranked exactly (see Notes). ``"exact"`` uses
        the data's dtype; ``"bfloat16"`` a product of bfloat16-rounded inputs with float32
        accumulation (torch on a CPU with AMX or AVX-512-BF16, or on a CUDA GPU from Ampere on);
        ``"auto"`` (default) the bfloat16 product where it was measured faster (torch on such a
        CPU), else ``"exact"``.

    Attributes
    ----------
    last_search_ : SearchStats or None
        Candidate count, product format and time of the last search.

    Notes
    -----
    **Distances.** The distance of a query ``x`` to a training row ``t`` is ``sqrt(S)`` (L2) or
    ``S`` (L1), ``S`` the sum over features of ``fl(x_j - t_j)**2`` (``|fl(x_j - t_j)|``) in the
    data's dtype, in one fixed order that depends only on D. ``S`` is within a few units in the
    last place of the true value, and the same on every backend, device, block and Dask shard
    (wherever subtraction, multiplication and addition are IEEE, subnormals kept: JAX on the CPU
    flushes subnormal values to zero by design, so there inputs and differences below the
    dtype's smallest normal, 1.2e-38 for float32, count as zero). Nearness is
    ordered by ``S``, then by training index: among equal distances the earlier training example
    is nearer, as a stable sort would order them. The reported ``sqrt(S)`` is correctly rounded,
    as NumPy's (``backend.sqrt``; float64 on PyTorch keeps its own, within one unit in the last
    place). The vote among the k nearest is a majority; a tie goes to the smaller label. Every
    path (loops, no loops, chunked or not, in process or on Dask, any ``precision``) gives the
    same neighbours and labels; the no-loops distance matrix is the course's fast formula and may
    differ in the last digits.

    **Candidates (L2).** A matrix product gives ``key_t = ||t||^2 - 2 x.t`` for blocks of
    training rows; ``d2 = key_t + ||x||^2`` approximates the squared distance ``rho``, with
    ``|d2 - rho| <= B_t``:

    - inputs: a low-precision product uses ``x^ = round(x)``, ``t^ = round(t)``, and
      ``x.t - x^.t^ = e_x.t + x^.e_t`` exactly (``e = v - round(v)``, measured per row), so by
      Cauchy-Schwarz ``|x.t - x^.t^| <= ||e_x|| ||t|| + ||x^|| ||e_t||``; values below the
      format's smallest normal may be flushed to zero, which adds ``sqrt(D) * 2**-126`` to each
      ``||e||``. For the working dtype's own product ``e = 0``.
    - accumulation: a product of two bfloat16 inputs is exact in a float32 accumulator (8 + 8
      significant bits of 24); any order of D additions errs by at most
      ``gamma_D sum_j |x^_j t^_j| <= gamma_D ||x^|| ||t^||``, ``gamma_n = n u / (1 - n u)``,
      ``u = 2**-24`` for float32. Hardware accumulators that truncate (some tensor cores) are
      covered by using ``gamma_2D``; flushed tiny products add ``2 D * 2**-126``. For the
      working dtype's own product (BLAS, round to nearest) the bound is ``gamma_D``.
    - norms: a computed squared norm ``s`` (any order of the sum, possibly the square of a
      computed norm) errs by at most ``gamma_(D+3) s + D tiny``, and
      ``||v|| <= sqrt(s + D tiny)(1 + gamma_(D+3) + 4u)``.
    - the key's and ``d2``'s own roundings add ``4u (|key| + ||x||^2 + ...)``.

    So for bfloat16 (``u_b = 2**-8``) the product's error is at most about
    ``||e_x|| ||t|| + ||x|| ||e_t|| + gamma_2D ||x|| ||t||`` with ``||e|| <= u_b ||v||``: in the
    worst case ``(2 u_b + u_b**2 + 2 D u) ||x|| ||t||``, and exactly ``gamma_2D ||x|| ||t||`` for
    data that bfloat16 holds exactly (8-bit pixels).
    A row ``t`` is dropped once ``(d2_t - B_t)(1 - m) > (d2_s + B_s)(1 + m)`` for k rows ``s``:
    the margin ``m = 2 gamma_(3 + depth) + 8u`` covers the exact distance's own error (``depth``
    additions per term in the fixed-order sum), so the k rows are certainly and strictly nearer
    after the exact computation too. The survivors are re-ranked exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers import KNearestNeighbor
    >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
    >>> X = np.array([[0.2, 0.1], [4.0, 4.0]])
    >>> knn.predict(X, k=1)
    array([0, 1])
    >>> dists, idx = knn.kneighbors(X[:1], k=2)
    >>> dists.round(3), idx
    (array([[0.224, 1.204]]), array([[0, 1]]))
    >>> knn.compute_distances_no_loops(X[:1]).round(3)
    array([[0.224, 1.204, 6.859]])
    """

    def __init__(self, metric: str = "l2", *, memory_budget: int = 256 * 2**20, precision: str = "auto"):
        metric = metric.lower() if isinstance(metric, str) else metric
        if metric not in _METRICS:
            raise InputError(f"metric must be 'l2' or 'l1', got {metric!r}")
        memory_budget = check_positive(memory_budget, name="memory_budget", integer=True)  # a Python int
        if precision not in backend.PRODUCT_PRECISIONS:
            raise InputError(f"precision must be one of {backend.PRODUCT_PRECISIONS}, got {precision!r}")
        self.metric = metric
        self.memory_budget = memory_budget
        self.precision = precision
        self.X_train = self.y_train = None
        self.num_classes = None
        self.last_search_ = None
        self._ts = None
        self._shards = None  # training shards held by Dask workers, see _knn_dask

    _transient = ("_shards",)  # futures belong to one client; a copy sends its own shards

    def train(self, X, y, /):
        """Memorise the training data ``X`` (M, D) and labels ``y`` (M,); kNN has nothing to fit.

        For L2 the squared norms of the training rows (and, for a low-precision product, the
        norms of their rounding errors) are computed here, once, on the device, by blocks within
        the memory budget: O(M D) time, no (M, D) temporary. Shards held by Dask workers for an
        earlier training set are released.
        """
        # For L2 the rows' squared norms (computed by build) prove every value finite, a NaN or an
        # infinity making its row's norm non-finite: the separate pass that checks it is skipped.
        backend.namespace_and_device(X, y)
        check_data(X, name="X", finite=self.metric != "l2")
        num_classes = check_labels(y, name="y", n=X.shape[0])
        ts = _knn_search.build(X, metric=self.metric, precision=self.precision, memory_budget=self.memory_budget)
        self.X_train, self.y_train, self.num_classes, self._ts = X, y, num_classes, ts
        if self._shards is not None:
            self._shards.release()
            self._shards = None
        return self

    # -- distances ---------------------------------------------------------------------------

    def _queries(self, X):
        """Check queries ``X`` (N, D) against the training set; return ``(xp, X in the train dtype)``."""
        if self.X_train is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        xp, _ = backend.namespace_and_device(self.X_train, X)
        check_features(X, dim=self.X_train.shape[1])
        X = xp.astype(X, self.X_train.dtype, copy=False)
        _knn_search.refuse_flushed(xp, X, "the queries")
        return xp, X

    def _pair(self, xp, diff, *, squared=False, ranking=False):
        # The exact distance of the class notes: the same value every path computes. Ranking is by
        # the squared L2 distance, whose value every backend computes alike (see _knn_search).
        # Tiny data are ranked as the search ranks them: scaled up by its power of two (exact), so
        # their squares do not underflow (``ranking``: that value, for the vote), then scaled back.
        e = self._ts.scale_exp
        key = _knn_search.pair_key(xp, _knn_search.times_pow2(xp, diff, e), self.metric)
        return key if ranking else _knn_search.distances(xp, key, e, self.metric, squared=squared)

    def compute_distances_two_loops(self, X, /, *, squared: bool = False):
        """Distances (N, M) from each query row to each training row, one pair at a time.

        For teaching and as a test oracle: N * M Python iterations. ``squared`` returns squared
        L2 distances (what the neighbours are ranked by).

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.classifiers import KNearestNeighbor
        >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
        >>> X = np.array([[0.2, 0.1], [4.0, 4.0]])
        >>> knn.compute_distances_two_loops(X).round(3)
        array([[0.224, 1.204, 6.859],
               [5.657, 4.243, 1.414]])
        >>> knn.compute_distances_two_loops(X, squared=True).round(3)
        array([[ 0.05,  1.45, 47.05],
               [32.  , 18.  ,  2.  ]])
        """
        return self._two_loops(X, squared=squared)

    def _two_loops(self, X, **how):
        xp, X = self._queries(X)
        rows = []
        for i in range(X.shape[0]):
            row = [self._pair(xp, X[i, :] - self.X_train[j, :], **how) for j in range(self.X_train.shape[0])]
            rows.append(xp.stack(row))
        return xp.stack(rows)

    def compute_distances_one_loop(self, X, /, *, squared: bool = False):
        """Distances (N, M), one query row at a time against all training rows (broadcasting).

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.classifiers import KNearestNeighbor
        >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
        >>> X = np.array([[0.2, 0.1], [4.0, 4.0]])
        >>> bool(np.allclose(knn.compute_distances_one_loop(X), knn.compute_distances_two_loops(X)))
        True
        """
        return self._one_loop(X, squared=squared)

    def _one_loop(self, X, **how):
        xp, X = self._queries(X)
        return xp.stack([self._pair(xp, X[i, :] - self.X_train, **how) for i in range(X.shape[0])])

    def compute_distances_no_loops(self, X, /):
        """Distances (N, M) without Python loops over examples, in query chunks within the budget.

        Notes
        -----
        L2 uses ``||x - t||^2 = ||x||^2 + ||t||^2 - 2 x.t``: one matrix product per chunk. That
        is the course's fast formula, not the exact distance of the class notes: rounding can
        make the sum slightly negative for near-identical rows (it is clamped at 0 before the
        square root), and near ties may rank differently. L1 has no such identity and is
        computed exactly from ``|x - t|`` blocks.

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.classifiers import KNearestNeighbor
        >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
        >>> X = np.array([[0.2, 0.1], [4.0, 4.0]])
        >>> bool(np.allclose(knn.compute_distances_no_loops(X), knn.compute_distances_two_loops(X)))
        True
        """
        xp, X = self._queries(X)
        itemsize = _itemsize(xp, X.dtype)
        num_train, dim = self.X_train.shape
        if self.metric == "l2":
            rows = max(1, self.memory_budget // (num_train * 3 * itemsize + dim * itemsize))
        else:
            rows = _knn_search.l1_rows(num_train, dim, itemsize, self.memory_budget)
        out = []
        for chunk in _chunks(X.shape[0], rows):
            Xq = X[chunk, :]
            if self.metric == "l2":
                key = (-2.0 * Xq) @ self.X_train.T
                # In place: this matrix is the largest temporary. (The search's norms are of its
                # scaled copy where the data are tiny.)
                key += self._ts.norms.sq if not self._ts.scale_exp else backend.sum_of_squares(self.X_train)
                out.append(xp.sqrt(xp.clip(backend.sum_of_squares(Xq)[:, None] + key, min=0.0)))
            else:
                step = max(1, self.memory_budget // (3 * Xq.shape[0] * dim * itemsize))
                out.append(xp.concat([self._pair(xp, Xq[:, None, :] - self.X_train[None, b, :])
                                      for b in _chunks(num_train, step)], axis=1))
        return xp.concat(out, axis=0)

    # -- neighbours and votes ----------------------------------------------------------------

    def _check_k(self, k) -> int:
        """``k`` as a Python int (a NumPy scalar never meets the arrays), checked against the training set."""
        k = check_positive(k, name="k", integer=True)
        if k > self.X_train.shape[0]:
            raise InputError(f"k={k} is larger than the training set ({self.X_train.shape[0]} examples)")
        return k

    def kneighbors(self, X, /, k: int = 1, *, return_distance: bool = True, client=None, progress=None):
        """The k nearest training rows of each query ``X`` (N, D), nearest first.

        Returns ``(distances, indices)``, both (N, k): the exact L2 or L1 distances (see the class
        notes) in X_train's dtype and the training indices in the index dtype, ordered by
        (distance, index), as scikit-learn's ``kneighbors`` returns them. With
        ``return_distance=False``, the indices alone.

        Queries are processed in chunks within ``memory_budget``; ``progress``, if given, wraps the
        list of chunks (``for chunk in progress(chunks)``), e.g. ``tqdm.tqdm``.

        ``client`` (a ``dask.distributed.Client``, or a scheduler address such as
        ``"tcp://host:8786"``) searches on a Dask cluster: the training set is cut into one shard
        per worker, sent once and kept there until the model is retrained or deleted; each worker
        finds its shard's k nearest per block of queries with the model's backend (its own GPU
        for CuPy or torch on CUDA) and only distances and indices travel back. The result is the
        same as in process, ties included. ``progress`` then wraps the query blocks.
        """
        if not isinstance(return_distance, bool):
            raise InputTypeError(f"return_distance must be True or False, got {return_distance!r}")
        xp, dists, idx = self._search(X, k, client=client, progress=progress, ordered=True)
        dists = _knn_search.distances(xp, dists, self._ts.scale_exp, self.metric)
        return (dists, idx) if return_distance else idx

    def _search(self, X, k, *, client, progress, ordered):
        """``(xp, values, indices)`` of the k nearest; with ``ordered=False`` (in process) the
        right set of k per query, in no order, for a vote."""
        xp, X = self._queries(X)
        k = self._check_k(k)
        start = time.perf_counter()
        if client is not None:
            from . import _knn_dask

            values, idx, pairs, shards = _knn_dask.kneighbors(self, X, k, client, progress=progress)
        else:
            values, idx, pairs = _knn_search.search(self._ts, X, k, memory_budget=self.memory_budget,
                                                    progress=progress, ordered=ordered)
            shards = 0
        backend.synchronize(idx)
        self.last_search_ = SearchStats(self._ts.precision_used, X.shape[0], k, pairs, shards,
                                        time.perf_counter() - start)
        return xp, values, idx

    def predict_labels(self, dists, /, k: int = 1):
        """Labels (N,) by majority vote of the k nearest, given distances ``dists`` (N, M).

        Ties in distance go to the earlier training row; ties in the vote to the smaller label.

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.classifiers import KNearestNeighbor
        >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
        >>> X = np.array([[0.2, 0.1], [4.0, 4.0]])
        >>> dists = knn.compute_distances_no_loops(X)
        >>> knn.predict_labels(dists, k=1), knn.predict_labels(dists, k=3)  # with k=3 class 0 wins 2 votes to 1
        (array([0, 1]), array([0, 0]))
        """
        if self.X_train is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        xp, _ = backend.namespace_and_device(self.X_train, dists)
        if dists.ndim != 2 or dists.shape[1] != self.X_train.shape[0]:
            raise InputError(
                f"dists must be (num_test, {self.X_train.shape[0]}), one column per training example; "
                f"got shape {tuple(dists.shape)}"
            )
        check_data(dists, name="dists")
        k = self._check_k(k)
        return _vote(xp, _labels_of(xp, self.y_train, _smallest_k(xp, dists, k)), self.num_classes)

    def predict(self, X, /, k: int = 1, num_loops: int = 0, *, client=None, progress=None):
        """Predicted labels (N,) of queries ``X`` (N, D), on X's device, of the training labels' dtype.

        ``num_loops`` chooses the distance computation: 0 the chunked, memory-bounded path
        (:meth:`kneighbors`, in process or on the Dask ``client``), 1 or 2 the teaching
        versions, which build the full distance matrix. All give the same labels. ``progress``
        and ``client`` apply to ``num_loops=0``.

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.classifiers import KNearestNeighbor
        >>> knn = KNearestNeighbor().train(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 1]))
        >>> X = np.array([[0.2, 0.1], [4.0, 4.0]])
        >>> knn.predict(X, k=1), knn.predict(X, k=1, num_loops=2)
        (array([0, 1]), array([0, 1]))
        """
        if isinstance(num_loops, bool) or num_loops not in (0, 1, 2):
            raise InputError(f"num_loops must be 0, 1 or 2, got {num_loops!r}")
        if self.X_train is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        k = self._check_k(k)
        if num_loops == 0:
            xp, _, idx = self._search(X, k, client=client, progress=progress, ordered=False)
            return _vote(xp, _labels_of(xp, self.y_train, idx), self.num_classes)
        if client is not None:
            raise InputError("client= needs num_loops=0: the teaching loops run in process")
        loops = self._one_loop if num_loops == 1 else self._two_loops
        return self.predict_labels(loops(X, ranking=True), k=k)


def _itemsize(xp, dtype) -> int:
    return 8 if dtype == xp.float64 else 4


def _labels_of(xp, y, idx):
    """The labels ``y[idx]`` for a 2-d index array (``take`` gathers along 1-d indices only)."""
    return xp.reshape(xp.take(y, xp.reshape(idx, (-1,)), axis=0), idx.shape)


def _vote(xp, neighbour_labels, num_classes: int):
    """Majority label (q,) of each row of ``neighbour_labels`` (q, k); ties go to the smaller label.

    Counting by one-hot sums and taking ``argmax`` gives the smaller label on ties, since argmax
    returns the first maximum.
    """
    index_dtype = backend.index_dtype(xp, backend.get_device(neighbour_labels))
    counts = xp.sum(xpx.one_hot(neighbour_labels, num_classes, dtype=index_dtype, xp=xp), axis=1)
    return xp.astype(xp.argmax(counts, axis=1), neighbour_labels.dtype)
