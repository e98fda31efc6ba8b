"""The softmax (cross-entropy) loss of CS231n, naive and vectorized, numerically stable."""

from __future__ import annotations

from ..backend._arith import iadd
from ..nets.losses import l2_penalty, softmax_loss
from ._checks import check_loss_inputs
from ._naive_loss import naive_loss

__all__ = ["softmax_loss_naive", "softmax_loss_vectorized"]


def softmax_loss_naive(W, X, y, reg, /):
    """Softmax loss and gradient with explicit loops over examples and classes.

    For teaching and as a test oracle: it loops in Python and reads the labels back to the host
    once. Use :func:`softmax_loss_vectorized` to train.

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

    Returns
    -------
    loss : 0-d array on W's device
    dW : array (D, C)

    Notes
    -----
    See :func:`softmax_loss_vectorized` for the formula.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.softmax import softmax_loss_naive
    >>> X, y = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([0, 2])
    >>> loss, dW = softmax_loss_naive(np.zeros((2, 3)), X, y, 0.0)
    >>> round(float(loss), 4), round(float(np.log(3)), 4)  # zero weights: uniform over 3 classes
    (1.0986, 1.0986)
    """
    return naive_loss(W, X, y, reg, _softmax_example)


def _softmax_example(xp, scores, label):
    """Cross-entropy of one example and its gradient with respect to the scores, class by class."""
    # Shifting by the max leaves the softmax unchanged and keeps exp() from overflowing.
    scores = scores - xp.max(scores)
    log_norm = xp.log(xp.sum(xp.exp(scores)))
    dscores = []
    for j in range(scores.shape[0]):
        prob = xp.exp(scores[j] - log_norm)
        dscores.append(prob - 1.0 if j == label else prob)
    return log_norm - scores[label], dscores


def softmax_loss_vectorized(W, X, y, reg, /):
    """Softmax loss and gradient, without loops, numerically stable.

    Parameters and returns as :func:`softmax_loss_naive`.

    Notes
    -----
    With scores ``s = X W`` (N, C) and ``p_ij = exp(s_ij) / sum_k exp(s_ik)``,

    ``L = -(1/N) sum_i log p_{i,y_i} + reg * sum(W * W)``, ``dW = X^T (P - Y) / N + 2 reg W``

    where Y is the one-hot matrix of the labels. The log-probabilities are computed as
    ``s_ij - m_i - log sum_k exp(s_ik - m_i)`` with ``m_i = max_k s_ik``, which cannot overflow
    and never takes the log of 0. The penalty convention (``reg * sum(W * W)``, gradient
    ``2 reg W``) is the current course's.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized
    >>> rng = np.random.default_rng(0)
    >>> W, X, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), np.array([0, 1, 2, 1, 0])
    >>> loss, dW = softmax_loss_vectorized(W, X, y, 0.1)
    >>> loss_naive, dW_naive = softmax_loss_naive(W, X, y, 0.1)
    >>> bool(np.isclose(loss, loss_naive)), bool(np.allclose(dW, dW_naive)), dW.shape
    (True, True, (4, 3))
    """
    xp, device = check_loss_inputs(W, X, y, reg)
    return _softmax_loss(xp, device, W, X, y, float(reg))


def _softmax_loss(xp, device, W, X, y, reg: float):
    """:func:`softmax_loss_vectorized` without the input checks, for training loops (namespace and device
    known): the scores ``X W``, the loss layer on them, and the L2 penalty."""
    scores = X @ W
    loss, dscores = softmax_loss(scores, y, xp=xp, device=device)
    dW = X.T @ dscores
    if not reg:  # the training loop's data term: its L2 is the Solver's transform
        return loss, dW
    penalty, dW_reg = l2_penalty(W, reg, xp=xp)
    return loss + penalty, iadd(dW, dW_reg)
