"""Regularization of the course notes: L2, L1, elastic net, max-norm and inverted dropout.

The penalties return the loss term and its gradient together (both on the weights' device); the
max-norm constraint is a projection applied after each update, returning new weights; dropout
masks can be drawn in advance for many iterations (:func:`dropout_masks`; the layer itself is
:func:`nets.layers.dropout_forward`).
"""

from __future__ import annotations

from .. import backend
from ..backend._arith import iadd
from .losses import l2_penalty

__all__ = ["dropout_masks", "elastic_net_penalty", "l1_penalty", "l2_penalty", "max_norm"]


def l1_penalty(W, /, reg: float):
    """L1 penalty ``reg * sum(|W|)`` and its (sub)gradient ``reg * sign(W)`` (0 at 0)."""
    xp = backend.get_namespace(W)
    reg = float(reg)
    return reg * xp.sum(xp.abs(W)), reg * xp.sign(W)


def elastic_net_penalty(W, /, *, l1: float, l2: float):
    """Elastic net: ``l1 * sum(|W|) + l2 * sum(W**2)`` and its gradient."""
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
    """
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"dropout (the probability of dropping a unit) must be in [0, 1), got {drop!r}")
    keep = 1.0 - drop
    return rng.dropout_mask(shape, keep=keep, dtype=dtype)
