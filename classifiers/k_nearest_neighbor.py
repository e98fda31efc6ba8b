"""k-nearest-neighbour classification with L2 or L1 distance, memory-bounded and deterministic at ties."""

from __future__ import annotations

import array_api_extra as xpx

from .. import backend
from ..backend.validation import check_data, check_positive
from ._checks import check_features, check_train_set
from ._topk import chunks as _chunks
from ._topk import l2_block_shape, l2_smallest_k
from ._topk import smallest_k as _smallest_k

__all__ = ["KNearestNeighbor"]

_METRICS = ("l2", "l1")
_INDEX_BYTES = 8  # argpartition returns int64 indices, one per distance


class KNearestNeighbor:
    """A kNN classifier with L2 (Euclidean) or L1 (Manhattan) distance.

    Parameters
    ----------
    metric : {"l2", "l1"}
        The distance.
    memory_budget : int, keyword-only
        Bytes allowed for the chunk of the (num_test, num_train) distance matrix and the
        temporaries made with it in :meth:`predict` (``num_loops=0``), :meth:`kneighbors` and
        :meth:`compute_distances_no_loops`. The full matrix returned by the ``compute_distances_*``
        methods is, of course, the caller's.

    Notes
    -----
    Nearness is ordered by distance, then by training index: among equal distances the earlier
    training example is nearer, as a stable sort would order them. The vote among the k nearest is
    a majority; a tie goes to the smaller label. Every path (loops, no loops, chunked or not) gives
    the same neighbours and labels.
    """

    def __init__(self, metric: str = "l2", *, memory_budget: int = 256 * 2**20):
        metric = metric.lower() if isinstance(metric, str) else metric
        if metric not in _METRICS:
            raise ValueError(f"metric must be 'l2' or 'l1', got {metric!r}")
        check_positive(memory_budget, name="memory_budget", integer=True)
        self.metric = metric
        self.memory_budget = memory_budget
        self.X_train = self.y_train = None
        self.num_classes = None
        self._train_sq = None

    def train(self, X, y, /):
        """Memorise the training data ``X`` (M, D) and labels ``y`` (M,); kNN has nothing to fit.

        For L2 the squared norms of the training rows are computed here, once, on the device.
        """
        xp, _, num_classes = check_train_set(X, y)
        self.X_train, self.y_train, self.num_classes = X, y, num_classes
        self._train_sq = xp.sum(X * X, axis=1) if self.metric == "l2" else None
        return self

    # -- distances ---------------------------------------------------------------------------

    def _queries(self, X):
        """Check queries ``X`` (N, D) against the training set; return ``(xp, X in the train dtype)``."""
        if self.X_train is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        xp, _ = backend.namespace_and_device(self.X_train, X)
        check_features(X, dim=self.X_train.shape[1])
        return xp, xp.astype(X, self.X_train.dtype, copy=False)

    def _pair(self, xp, diff, axis):
        if self.metric == "l2":
            return xp.sqrt(xp.sum(diff * diff, axis=axis))
        return xp.sum(xp.abs(diff), axis=axis)

    def compute_distances_two_loops(self, X, /):
        """Distances (N, M) from each query row to each training row, one pair at a time.

        For teaching and as a test oracle: N * M Python iterations.
        """
        xp, X = self._queries(X)
        rows = []
        for i in range(X.shape[0]):
            row = [self._pair(xp, X[i, :] - self.X_train[j, :], 0) for j in range(self.X_train.shape[0])]
            rows.append(xp.stack(row))
        return xp.stack(rows)

    def compute_distances_one_loop(self, X, /):
        """Distances (N, M), one query row at a time against all training rows (broadcasting)."""
        xp, X = self._queries(X)
        return xp.stack([self._pair(xp, self.X_train - X[i, :], 1) for i in range(X.shape[0])])

    def compute_distances_no_loops(self, X, /):
        """Distances (N, M) without Python loops over examples, in query chunks within the budget.

        Notes
        -----
        L2 uses ``||x - t||^2 = ||x||^2 + ||t||^2 - 2 x.t``: one matrix product per chunk. Rounding
        can make the sum slightly negative for near-identical rows, so it is clamped at 0 before
        the square root. L1 has no such identity and is computed from ``|x - t|`` blocks.
        """
        xp, X = self._queries(X)
        itemsize = _itemsize(xp, X.dtype)
        num_train, dim = self.X_train.shape
        if self.metric == "l2":
            rows = self._rows_per_chunk(num_train * 3 * itemsize + dim * itemsize)
        else:
            rows = self._l1_rows_per_chunk(itemsize)
        out = []
        for chunk in _chunks(X.shape[0], rows):
            Xq = X[chunk, :]
            if self.metric == "l2":
                sq = xp.sum(Xq * Xq, axis=1, keepdims=True) + self._l2_key(xp, Xq)
                out.append(xp.sqrt(xp.clip(sq, min=0.0)))
            else:
                out.append(self._l1_block(xp, Xq))
        return xp.concat(out, axis=0)

    def _l2_key(self, xp, Xq):
        """``||t||^2 - 2 x.t`` (q, M): the squared L2 distance less ``||x||^2``, which does not
        change the ranking of training rows for one query."""
        key = (-2.0 * Xq) @ self.X_train.T
        key += self._train_sq  # in place: this matrix is the largest temporary of prediction
        return key

    def _l1_block(self, xp, Xq):
        """L1 distances (q, M), over training blocks sized so two (q, t, D) temporaries fit the budget."""
        num_train, dim = self.X_train.shape
        itemsize = _itemsize(xp, Xq.dtype)
        step = max(1, self.memory_budget // (2 * Xq.shape[0] * dim * itemsize))
        blocks = []
        for chunk in _chunks(num_train, step):
            diff = Xq[:, None, :] - self.X_train[None, chunk, :]
            blocks.append(xp.sum(xp.abs(diff), axis=2))
        return xp.concat(blocks, axis=1)

    def _rows_per_chunk(self, bytes_per_row: int) -> int:
        return max(1, self.memory_budget // bytes_per_row)

    def _l1_rows_per_chunk(self, itemsize: int) -> int:
        num_train, dim = self.X_train.shape
        # Half the budget for the (q, M) distances and selection, half for the |x - t| blocks,
        # which need at least one training row per block.
        by_key = (self.memory_budget // 2) // (num_train * (2 * itemsize + _INDEX_BYTES + 1))
        by_block = (self.memory_budget // 2) // (2 * dim * itemsize)
        return max(1, min(by_key, by_block))

    # -- neighbours and votes ----------------------------------------------------------------

    def _check_k(self, k):
        check_positive(k, name="k", integer=True)
        if k > self.X_train.shape[0]:
            raise ValueError(f"k={k} is larger than the training set ({self.X_train.shape[0]} examples)")

    def kneighbors(self, X, /, k: int = 1, *, progress=None):
        """Indices (N, k) of the k nearest training rows of each query, nearest first.

        Queries are processed in chunks within ``memory_budget``; ``progress``, if given, wraps the
        list of chunks (``for chunk in progress(chunks)``), e.g. ``tqdm.tqdm``.

        Notes
        -----
        Per chunk: one matrix product gives ``||t||^2 - 2 x.t`` (L2; the query's own norm does not
        change its ranking) or the L1 distances; ``argpartition`` selects the k smallest in O(M)
        per query, and only those k are sorted. Ties are resolved by training index (see the class
        notes), so the result does not depend on the chunk size.
        """
        xp, X = self._queries(X)
        self._check_k(k)
        itemsize = _itemsize(xp, X.dtype)
        num_train, dim = self.X_train.shape
        if self.metric == "l2":
            # Blocks of (query rows, training rows) within the budget; see classifiers._topk.
            rows, cols = l2_block_shape(X.shape[0], num_train, dim, itemsize, self.memory_budget)
        else:
            rows = self._l1_rows_per_chunk(itemsize)
        chunks = list(_chunks(X.shape[0], rows))
        out = []
        for chunk in (chunks if progress is None else progress(chunks)):
            Xq = X[chunk, :]
            if self.metric == "l2":
                out.append(l2_smallest_k(xp, Xq, self.X_train, self._train_sq, k, cols))
            else:
                out.append(_smallest_k(xp, self._l1_block(xp, Xq), k))
        return xp.concat(out, axis=0)

    def predict_labels(self, dists, /, k: int = 1):
        """Labels (N,) by majority vote of the k nearest, given distances ``dists`` (N, M).

        Ties in distance go to the earlier training row; ties in the vote to the smaller label.
        """
        if self.X_train is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        xp, _ = backend.namespace_and_device(self.X_train, dists)
        if dists.ndim != 2 or dists.shape[1] != self.X_train.shape[0]:
            raise ValueError(
                f"dists must be (num_test, {self.X_train.shape[0]}), one column per training example; "
                f"got shape {tuple(dists.shape)}"
            )
        check_data(dists, name="dists")
        self._check_k(k)
        return _vote(xp, _labels_of(xp, self.y_train, _smallest_k(xp, dists, k)), self.num_classes)

    def predict(self, X, /, k: int = 1, num_loops: int = 0, *, progress=None):
        """Predicted labels (N,) of queries ``X`` (N, D), on X's device, of the training labels' dtype.

        ``num_loops`` chooses the distance computation: 0 the chunked, memory-bounded path
        (:meth:`kneighbors`), 1 or 2 the teaching versions, which build the full distance matrix.
        All three give the same labels. ``progress`` applies to ``num_loops=0``.
        """
        if isinstance(num_loops, bool) or num_loops not in (0, 1, 2):
            raise ValueError(f"num_loops must be 0, 1 or 2, got {num_loops!r}")
        if self.X_train is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        self._check_k(k)
        if num_loops == 0:
            xp = backend.get_namespace(self.X_train)
            idx = self.kneighbors(X, k, progress=progress)
            return _vote(xp, _labels_of(xp, self.y_train, idx), self.num_classes)
        dists = self.compute_distances_one_loop(X) if num_loops == 1 else self.compute_distances_two_loops(X)
        return self.predict_labels(dists, k=k)


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
