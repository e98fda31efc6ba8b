"""The multiclass SVM (Weston-Watkins hinge) loss of CS231n, naive and vectorized."""

from __future__ import annotations

from ..backend._arith import iadd
from ..nets.losses import l2_penalty, svm_loss
from ._checks import check_loss_inputs
from ._naive_loss import naive_loss, squared_hinge_example

__all__ = ["svm_loss_naive", "svm_loss_vectorized"]

# The margin delta. With an L2 penalty on W only the ratio delta / ||W|| matters, so the course
# fixes it at 1 and lets reg trade margin for weight size.
_DELTA = 1.0


def svm_loss_naive(W, X, y, reg, /, *, squared: bool = False):
    """Multiclass SVM loss and gradient with explicit loops over examples and classes.

    For teaching and as a test oracle: it loops in Python, so it is slow, and it reads the labels
    back to the host once. Use :func:`svm_loss_vectorized` to train.

    Parameters
    ----------
    W : array (D, C)
        Weights.
    X : array (N, D)
        A minibatch of examples, W's dtype.
    y : array (N,)
        Integer labels in [0, C).
    reg : float
        L2 regularization strength.
    squared : bool, keyword-only
        Square each hinge (the L2-SVM).

    Returns
    -------
    loss : 0-d array on W's device
    dW : array (D, C), the gradient of the loss with respect to W

    Notes
    -----
    See :func:`svm_loss_vectorized` for the formula.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.linear_svm import svm_loss_naive
    >>> X, y = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([0, 2])
    >>> loss, dW = svm_loss_naive(np.zeros((2, 3)), X, y, 0.0)
    >>> float(loss), dW.shape  # zero weights: every wrong class violates the margin by 1
    (2.0, (2, 3))
    """
    return naive_loss(W, X, y, reg, squared_hinge_example if squared else _svm_example)


def _svm_example(xp, scores, label):
    """Hinge loss of one example and its gradient with respect to the scores, class by class."""
    loss, dscores = 0.0, [0.0] * scores.shape[0]
    for j in range(scores.shape[0]):
        if j == label:
            continue
        margin = scores[j] - scores[label] + _DELTA
        # 1 where the hinge is active; multiplying by it instead of branching on `margin > 0`
        # avoids reading every margin back from the device.
        active = xp.astype(margin > 0, scores.dtype)
        loss = loss + active * margin
        dscores[j] = active
        dscores[label] = dscores[label] - active
    return loss, dscores


def svm_loss_vectorized(W, X, y, reg, /, *, squared: bool = False):
    """Multiclass SVM loss and gradient, without loops.

    Parameters and returns as :func:`svm_loss_naive`.

    Notes
    -----
    With scores ``s = X W`` (N, C) and margin delta 1,

    ``L = (1/N) sum_i sum_{j != y_i} max(0, s_ij - s_{i,y_i} + 1) + reg * sum(W * W)``.

    Let ``a_ij = 1[s_ij - s_{i,y_i} + 1 > 0]`` for ``j != y_i``. Then
    ``dL/ds_ij = a_ij / N`` for ``j != y_i``, ``dL/ds_{i,y_i} = -(sum_j a_ij) / N``, and
    ``dW = X^T (dL/ds) + 2 reg W``. The penalty ``reg * sum(W * W)`` with gradient ``2 reg W`` is
    the current course's convention (older versions used ``0.5 * reg``). With ``squared=True`` each
    hinge is squared (:func:`nets.losses.svm_loss`).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
    >>> rng = np.random.default_rng(0)
    >>> W, X, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), np.array([0, 1, 2, 1, 0])
    >>> loss, dW = svm_loss_vectorized(W, X, y, 0.1)
    >>> loss_naive, dW_naive = svm_loss_naive(W, X, y, 0.1)
    >>> bool(np.isclose(loss, loss_naive)), bool(np.allclose(dW, dW_naive))
    (True, True)
    """
    xp, device = check_loss_inputs(W, X, y, reg)
    return _svm_loss(xp, device, W, X, y, float(reg), squared=bool(squared))


def _svm_loss(xp, device, W, X, y, reg: float, *, squared: bool = False):
    """:func:`svm_loss_vectorized` without the input checks, for training loops (namespace and device
    known): the scores ``X W``, the loss layer on them, and the L2 penalty."""
    scores = X @ W
    loss, dscores = svm_loss(scores, y, squared=squared, xp=xp, device=device)
    dW = X.T @ dscores
    if not reg:  # the training loop's data term: its L2 is the Solver's transform
        return loss, dW
    penalty, dW_reg = l2_penalty(W, reg, xp=xp)
    return loss + penalty, iadd(dW, dW_reg)
