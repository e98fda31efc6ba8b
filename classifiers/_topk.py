"""The k smallest entries of each row of a wide matrix, ordered by (value, column): kNN's selection.

Two paths give the same answer:

- :func:`smallest_k_portable` partitions the *indices* (``argpartition``): simple, but it writes
  an index array of the key's shape (8 bytes per distance, twice the float32 distances) and then
  reads the key again to detect ties.
- :func:`smallest_k` partitions the *values* only, to find each row's k-th smallest value, and
  picks the columns at or below it with one comparison and one ``nonzero``. It writes 4 + 1 bytes
  per distance instead of 8 + 1, does not gather through a per-row index array, and so lets a
  memory budget hold twice the queries per chunk, which also makes the chunk's matrix product
  more efficient. Rows where more than k entries tie at the k-th value (rare with real data) are
  re-selected with a stable sort, so ties still go to the smaller column.

``KNearestNeighbor`` uses :func:`smallest_k` for L1 blocks and ``predict_labels``; the tests check
both paths agree on every backend, ties included.
"""

from __future__ import annotations

import operator

import array_api_extra as xpx

from .. import backend

__all__ = ["BYTES_PER_ENTRY", "chunks", "smallest_k", "smallest_k_portable"]

# Bytes of temporaries per entry of the key matrix that smallest_k makes beyond the key itself:
# the partitioned copy of the values (float64 at most) and the boolean mask.
BYTES_PER_ENTRY = {4: 4 + 1, 8: 8 + 1}


def chunks(n: int, size: int):
    """Slices of at most ``size`` covering range(n), as equal as possible: a small last chunk would
    run its matrix product at a fraction of the rate of the others."""
    n, size = operator.index(n), operator.index(size)  # Python ints: slices meet arrays of any namespace
    count = -(-n // size)
    return [slice(i * n // count, (i + 1) * n // count) for i in range(count)]


def smallest_k(xp, key, k: int, /):
    """Column indices (q, k) of the k smallest entries of each row of ``key`` (q, M).

    Ordered by value, then by column: among equal values the smaller column comes first.
    """
    q, m = key.shape
    if k >= m:
        return _as_index(xp, xp.argsort(key, axis=1, stable=True))
    kth = backend.kth_smallest(key, k)[:, None]
    mask = key <= kth
    # nonzero of the flattened mask: a 2-d nonzero, which also builds the row indices, is about
    # ten times slower in NumPy.
    flat = xp.nonzero(xp.reshape(mask, (-1,)))[0]
    # Every row has at least k entries <= its k-th smallest value, so exactly q * k hits means no
    # row has a tie at the k-th value, and the row-major order gives each row's k columns in
    # ascending order.
    offsets = xp.reshape(xp.arange(q, dtype=flat.dtype, device=backend.get_device(key)) * m, (q, 1))
    if flat.shape[0] == q * k:
        part = xp.reshape(flat, (q, k)) - offsets
    else:
        crowded = xp.count_nonzero(mask, axis=1) > k
        flat = xp.nonzero(xp.reshape(xp.logical_and(mask, ~crowded[:, None]), (-1,)))[0]
        part = xp.zeros((q, k), dtype=flat.dtype, device=backend.get_device(key))
        kept = xp.take(offsets, xp.nonzero(~crowded)[0], axis=0)
        part = xpx.at(part)[~crowded].set(xp.reshape(flat, (-1, k)) - kept)
        tied_rows = xp.nonzero(crowded)[0]
        fixed = xp.argsort(xp.take(key, tied_rows, axis=0), axis=1, stable=True)[:, :k]
        part = xpx.at(part)[crowded].set(xp.astype(fixed, part.dtype))
    del mask
    order = xp.argsort(xp.take_along_axis(key, part, axis=1), axis=1, stable=True)
    return _as_index(xp, xp.take_along_axis(part, order, axis=1))


def smallest_k_portable(xp, key, k: int, /):
    """The same as :func:`smallest_k` through ``argpartition`` of the indices (the reference path).

    ``argpartition`` keeps an arbitrary subset of entries tied at the k-th value; rows where more
    than k entries are <= the k-th value are re-selected with a stable sort.
    """
    if k >= key.shape[1]:
        return _as_index(xp, xp.argsort(key, axis=1, stable=True))
    part = _as_index(xp, xpx.argpartition(key, k - 1, axis=1, xp=xp)[:, :k])
    kth = xp.max(xp.take_along_axis(key, part, axis=1), axis=1, keepdims=True)
    crowded = xp.count_nonzero(key <= kth, axis=1) > k
    tied_rows = xp.nonzero(crowded)[0]
    if tied_rows.shape[0]:
        fixed = xp.argsort(xp.take(key, tied_rows, axis=0), axis=1, stable=True)[:, :k]
        part = xpx.at(part)[crowded].set(xp.astype(fixed, part.dtype))
    # Order the k: by index first, then a stable sort by value keeps index order among equal values.
    part = xp.sort(part, axis=1)
    order = xp.argsort(xp.take_along_axis(key, part, axis=1), axis=1, stable=True)
    return _as_index(xp, xp.take_along_axis(part, order, axis=1))


def _as_index(xp, idx):
    """``idx`` in the namespace's index dtype: the library's argsort, nonzero and argpartition
    need not agree (JAX's argpartition returns int32 where argsort returns int64)."""
    return xp.astype(idx, backend.index_dtype(xp, backend.get_device(idx)), copy=False)
