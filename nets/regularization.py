"""Regularization of the course notes: L2, L1, elastic net, max-norm and inverted dropout.

The penalties return the loss term and its gradient together (both on the weights' device); the
max-norm constraint is a projection applied after each update, returning new weights; dropout
masks can be drawn in advance for many iterations (:func:`dropout_masks`; the layer itself is
:func:`nets.layers.dropout_forward`).
"""

from __future__ import annotations

from .. import backend
from ..backend._arith import iadd
from ..backend.errors import InputError
from .losses import l2_penalty

__all__ = ["dropout_masks", "elastic_net_penalty", "l1_penalty", "l2_penalty", "max_norm"]


def l1_penalty(W, /, reg: float):
    """L1 penalty ``reg * sum(|W|)`` and its (sub)gradient ``reg * sign(W)`` (0 at 0).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, -2.0], [0.0, 3.0]])
    >>> from xpml.nets.regularization import l1_penalty
    >>> penalty, dW = l1_penalty(W, 0.1)
    >>> round(float(penalty), 6), dW
    (0.6, array([[ 0.1, -0.1],
           [ 0. ,  0.1]]))
    """
    xp = backend.get_namespace(W)
    reg = float(reg)
    return reg * xp.sum(xp.abs(W)), reg * xp.sign(W)


def elastic_net_penalty(W, /, *, l1: float, l2: float):
    """Elastic net: ``l1 * sum(|W|) + l2 * sum(W**2)`` and its gradient.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, -2.0], [0.0, 3.0]])
    >>> from xpml.nets.regularization import elastic_net_penalty
    >>> penalty, dW = elastic_net_penalty(W, l1=0.1, l2=0.01)
    >>> round(float(penalty), 6), dW
    (0.74, array([[ 0.12, -0.14],
           [ 0.  ,  0.16]]))
    """
    loss1, grad1 = l1_penalty(W, l1)
    loss2, grad2 = l2_penalty(W, l2)
    return loss1 + loss2, iadd(grad1, grad2)


def max_norm(W, /, max_norm: float):
    """``W`` (D, H) with each column clipped to Euclidean norm at most ``max_norm``, as a new array.

    A column holds the incoming weights of one unit, the vector the notes' max-norm constraint
    bounds. ``W`` itself is left as it was.

    Notes
    -----
    ``w_j <- w_j * min(1, c / ||w_j||_2)``: a projection onto the ball, applied after the update.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.regularization import max_norm
    >>> max_norm(np.array([[3.0, 0.0], [4.0, 1.0]]), 1.0)  # column norms 5 and 1
    array([[0.6, 0. ],
           [0.8, 1. ]])
    """
    xp = backend.get_namespace(W)
    norms = xp.sqrt(xp.sum(W * W, axis=0))
    # Columns under the bound get factor 1 exactly; the floor keeps a zero column from dividing by 0.
    return W * xp.minimum(float(max_norm) / xp.maximum(norms, 1e-30), 1.0)


def dropout_masks(rng: backend.Generator, shape, /, *, drop: float, dtype=None):
    """Inverted-dropout masks: 0 with probability ``drop``, else ``1 / (1 - drop)``.

    Units are kept with probability ``1 - drop`` (to 32 bits, :meth:`backend.Generator.dropout_mask`)
    and the kept ones are scaled by exactly ``1 / (1 - drop)``: the expectation is exact.

    ``shape`` is usually ``(iterations, N, H)``: one call draws the masks of many iterations.
    Multiplying activations by a mask at training time keeps their expectation, so nothing
    changes at test time.

    Examples
    --------
    >>> from xpml import backend
    >>> from xpml.nets.regularization import dropout_masks
    >>> mask = dropout_masks(backend.Generator(0), (2, 4), drop=0.5)
    >>> mask, mask.dtype
    (array([[0., 2., 2., 0.],
           [0., 2., 0., 2.]], dtype=float32), dtype('float32'))
    """
    if not 0.0 <= drop < 1.0:
        raise InputError(f"dropout (the probability of dropping a unit) must be in [0, 1), got {drop!r}")
    keep = 1.0 - drop
    return rng.dropout_mask(shape, keep=keep, dtype=dtype)
