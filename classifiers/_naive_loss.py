"""The loop skeleton shared by the naive losses: one example at a time, gradient column by column."""

from __future__ import annotations

from .. import backend
from ._checks import check_loss_inputs

__all__ = ["naive_loss", "squared_hinge_example"]


def naive_loss(W, X, y, reg, example_terms, /):
    """Average a per-example loss over the rows of ``X`` and add the L2 penalty.

    ``example_terms(xp, scores, label) -> (loss_i, dscores)`` gives example i's loss (0-d) and
    ``dL_i/ds_j`` for each class j (a list of C scalars or 0-d arrays), from its scores (C,) and
    its label (a Python int). The labels are read back to the host once, since the loops index
    by them, as the course's code does.

    Returns ``(loss, dW)`` with ``loss = mean_i loss_i + reg * sum(W * W)`` and
    ``dW = (1/N) sum_i x_i^T dscores_i + 2 reg W``.
    """
    xp, device = check_loss_inputs(W, X, y, reg)
    num_train, num_classes = X.shape[0], W.shape[1]
    labels = backend.to_numpy(y).tolist()
    loss = xp.zeros((), dtype=W.dtype, device=device)
    # dW is built column by column and stacked at the end: no element assignment on the device.
    columns = [xp.zeros(W.shape[0], dtype=W.dtype, device=device) for _ in range(num_classes)]
    for i in range(num_train):
        loss_i, dscores = example_terms(xp, X[i, :] @ W, labels[i])
        loss = loss + loss_i
        for j in range(num_classes):
            columns[j] = columns[j] + dscores[j] * X[i, :]
    loss = loss / num_train + reg * xp.sum(W * W)
    dW = xp.stack(columns, axis=1) / num_train + 2 * reg * W
    return loss, dW


def squared_hinge_example(xp, scores, label):
    """Squared hinge (L2-SVM) loss of one example and its gradient with respect to the scores, class by class.

    ``L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1)**2``; ``dL_i/ds_j = 2 max(0, ...)`` for
    ``j != y_i`` and minus their sum for ``y_i``.
    """
    loss, dscores = 0.0, [0.0] * scores.shape[0]
    for j in range(scores.shape[0]):
        if j == label:
            continue
        # max(0, margin) by the namespace, not a branch on its value: no read back from the device.
        margin = xp.maximum(scores[j] - scores[label] + 1.0, 0.0)
        loss = loss + margin * margin
        dscores[j] = 2.0 * margin
        dscores[label] = dscores[label] - 2.0 * margin
    return loss, dscores
