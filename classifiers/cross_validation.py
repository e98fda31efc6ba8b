"""n-fold cross-validation over candidate hyperparameters, with a fast path for k in kNN.

Folds are contiguous, as in the course (``np.array_split`` of the training set in its given
order): fold i holds rows ``[start_i, stop_i)``, the first ``N % num_folds`` folds one row longer.
Shuffle the data first if its order is not random.
"""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_positive
from ._checks import check_train_set
from .k_nearest_neighbor import KNearestNeighbor, _labels_of, _vote

__all__ = ["cross_validate", "fold_slices", "knn_cross_validate"]


def fold_slices(n: int, num_folds: int, /) -> list[slice]:
    """The ``num_folds`` contiguous slices that split ``range(n)`` like ``np.array_split``.

    Examples
    --------
    >>> from xpml.classifiers import fold_slices
    >>> fold_slices(10, 3)
    [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
    """
    num_folds = check_positive(num_folds, name="num_folds", integer=True)
    if num_folds < 2 or num_folds > n:
        raise InputError(f"num_folds must be between 2 and the number of examples ({n}), got {num_folds}")
    base, extra = divmod(n, num_folds)
    bounds = [0]
    for i in range(num_folds):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _nonempty_list(values, name: str) -> list:
    values = list(values)
    if not values:
        raise InputError(f"{name} is empty: give at least one hyperparameter value")
    return values


def _splits(xp, X, y, num_folds):
    """Yield ``(X_train, y_train, X_val, y_val)`` for each fold."""
    folds = fold_slices(X.shape[0], num_folds)
    for i, val in enumerate(folds):
        rest = [s for j, s in enumerate(folds) if j != i]
        yield (xp.concat([X[s, ...] for s in rest], axis=0), xp.concat([y[s] for s in rest], axis=0),
               X[val, ...], y[val])


def cross_validate(X, y, /, *, candidates, fit_and_score, num_folds: int = 5) -> dict:
    """Score every candidate on every fold.

    Parameters
    ----------
    X : array (N, D)
        Training data (the validation folds are cut from it).
    y : array (N,)
        Integer labels.
    candidates : iterable
        Hyperparameter values (hashable), e.g. k for kNN or ``(learning_rate, reg)`` pairs.
    fit_and_score : callable, keyword-only
        ``fit_and_score(candidate, X_train, y_train, X_val, y_val) -> accuracy``: trains a fresh
        model with the candidate and returns its validation accuracy (a number or a 0-d array).
    num_folds : int, keyword-only
        Number of contiguous folds (see the module notes).

    Returns
    -------
    dict
        ``{candidate: [accuracy on fold 0, ..., fold num_folds - 1]}`` as Python floats, in the
        order of ``candidates``; plot the mean and standard deviation per candidate.

    Examples
    --------
    Five-fold cross-validation of kNN's k, written with the general function:

    >>> from xpml.classifiers import KNearestNeighbor, cross_validate, make_spiral
    >>> from xpml.nets import accuracy
    >>> X, y = make_spiral(50, 3)
    >>> def fit_and_score(k, X_train, y_train, X_val, y_val):
    ...     return accuracy(KNearestNeighbor().train(X_train, y_train).predict(X_val, k=k), y_val)
    >>> scores = cross_validate(X, y, candidates=[1, 5], fit_and_score=fit_and_score)
    >>> sorted(scores), len(scores[1])
    ([1, 5], 5)
    """
    xp, _, _ = check_train_set(X, y)
    candidates = _nonempty_list(candidates, "candidates")
    if not callable(fit_and_score):
        raise InputTypeError(f"fit_and_score must be callable, got {fit_and_score!r}")
    results = {c: [] for c in candidates}
    for X_tr, y_tr, X_val, y_val in _splits(xp, X, y, num_folds):
        for c in candidates:
            results[c].append(float(fit_and_score(c, X_tr, y_tr, X_val, y_val)))
    return results


def knn_cross_validate(X, y, /, *, k_choices, num_folds: int = 5, metric: str = "l2",
                       memory_budget: int = 256 * 2**20, progress=None) -> dict:
    """Cross-validate k for :class:`KNearestNeighbor`, finding each fold's neighbours only once.

    Per fold, the ``max(k_choices)`` nearest training rows of every validation row are found once
    (ordered by distance, then index); the prediction for each k is the vote among the first k of
    them, which is exactly what ``predict(X_val, k)`` returns. ``progress`` is passed to
    :meth:`KNearestNeighbor.kneighbors`.

    Returns
    -------
    dict
        ``{k: [accuracy per fold]}`` as Python floats, in the order of ``k_choices``.

    Examples
    --------
    The same accuracies as :func:`cross_validate` with ``KNearestNeighbor.predict``, from one search
    per fold:

    >>> from xpml.classifiers import knn_cross_validate, make_spiral
    >>> X, y = make_spiral(50, 3)
    >>> scores = knn_cross_validate(X, y, k_choices=[1, 3, 5], num_folds=5)
    >>> {k: len(folds) for k, folds in scores.items()}
    {1: 5, 3: 5, 5: 5}
    """
    xp, _, num_classes = check_train_set(X, y)
    k_choices = _nonempty_list(k_choices, "k_choices")
    ks = [check_positive(k, name="k", integer=True) for k in k_choices]  # Python ints
    results = {k: [] for k in k_choices}
    for X_tr, y_tr, X_val, y_val in _splits(xp, X, y, num_folds):
        knn = KNearestNeighbor(metric, memory_budget=memory_budget).train(X_tr, y_tr)
        idx = knn.kneighbors(X_val, max(ks), return_distance=False, progress=progress)
        labels = _labels_of(xp, y_tr, idx)
        accs = [xp.mean(xp.astype(_vote(xp, labels[:, :k], num_classes) == y_val, X.dtype)) for k in ks]
        # One read-back per fold for all k.
        for k, acc in zip(k_choices, backend.to_numpy(xp.stack(accs)).tolist(), strict=True):
            results[k].append(acc)
    return results
