"""The course notes' sanity checks and training diagnostics, as functions.

- :func:`initial_loss_check`: with small weights and no regularization the softmax loss starts
  near ``log(C)``.
- :func:`overfit_tiny_subset`: a correct net drives the loss on a few examples towards zero.
- :func:`update_to_weight_ratio`: ``||update|| / ||W||`` per layer; around 1e-3 is healthy, much
  lower means the learning rate is too small, much higher too large.
- :func:`first_layer_images`: the first-layer weights arranged as a grid of images, returned as
  an array (plotting belongs to the scripts).

These run outside training loops and may read single numbers back to the host.
"""

from __future__ import annotations

import math

import array_api_extra as xpx

from .. import backend
from ..backend.errors import InputError

__all__ = ["first_layer_images", "initial_loss_check", "overfit_tiny_subset", "update_to_weight_ratio"]


def update_to_weight_ratio(before, after, /):
    """``||after - before|| / ||before||`` (Frobenius norms) as a 0-d array on their device.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.diagnostics import update_to_weight_ratio
    >>> W = np.ones((10, 10))
    >>> round(float(update_to_weight_ratio(W, W - 1e-3 * W)), 6)  # the notes aim for about 1e-3
    0.001
    """
    xp = backend.get_namespace(before, after)
    diff = after - before
    return xp.sqrt(xp.sum(diff * diff) / xp.sum(before * before))


def initial_loss_check(net, X, y, /, *, rtol: float = 0.05) -> dict:
    """Compare the untrained net's loss on ``(X, y)`` (no regularization) with ``log(C)``.

    With weights small enough that all scores are about equal, every class gets probability
    about ``1/C`` and the cross-entropy is ``-log(1/C) = log(C)``.

    Returns
    -------
    dict
        ``loss`` (float), ``expected`` (``log(C)``) and ``ok`` (within ``rtol`` relatively).

    Examples
    --------
    >>> from xpml import nets
    >>> from xpml.classifiers import make_spiral
    >>> X, y = make_spiral(20, 3)
    >>> check = nets.diagnostics.initial_loss_check(nets.TwoLayerNet(2, 10, 3, seed=0), X, y)
    >>> check["ok"], round(check["expected"], 4)  # log(3)
    (True, 1.0986)
    """
    loss, _ = net.loss(X, y, reg=0.0)
    loss = float(loss)
    expected = math.log(net.output_size)
    return {"loss": loss, "expected": expected, "ok": abs(loss - expected) <= rtol * expected}


def overfit_tiny_subset(net, X, y, /, *, n: int = 20, num_iters: int = 200, learning_rate: float = 1e-3,
                        update_rule="adam", optim_config: dict | None = None) -> dict:
    """Train ``net`` full batch on the first ``n`` examples without regularization.

    A net that is wired right fits a handful of examples perfectly; if the loss does not fall
    towards zero, the gradients or the learning rate are wrong. ``net`` is trained in place.

    Returns
    -------
    dict
        ``loss_history`` (floats), ``final_loss`` and ``train_accuracy`` on the subset.

    Examples
    --------
    Twenty random points with random labels, learnt by heart:

    >>> from xpml import backend, nets
    >>> rng = backend.Generator(0)
    >>> X, y = rng.normal((20, 5)), rng.integers(0, 3, (20,))
    >>> net = nets.TwoLayerNet(5, 50, 3, init="he", seed=0)
    >>> result = nets.diagnostics.overfit_tiny_subset(net, X, y, n=20, num_iters=200, learning_rate=0.01)
    >>> result["train_accuracy"], result["final_loss"] < 0.05
    (1.0, True)
    """
    Xs, ys = X[:n, :], y[:n]
    history = net.train(Xs, ys, learning_rate=learning_rate, learning_rate_decay=1.0, reg=0.0,
                        num_iters=num_iters, batch_size=None, update_rule=update_rule,
                        optim_config=optim_config, dropout=0.0)
    xp = backend.get_namespace(Xs)
    accuracy = float(xp.mean(xp.astype(net.predict(Xs) == ys, Xs.dtype)))
    return {"loss_history": history["loss_history"], "final_loss": history["loss_history"][-1],
            "train_accuracy": accuracy}


def first_layer_images(W1, /, *, image_shape=(32, 32, 3), padding: int = 1):
    """First-layer weights as a grid of images, each scaled to [0, 255], for display.

    Parameters
    ----------
    W1 : array (D, H)
        First-layer weights; column ``j`` holds unit ``j``'s weights, laid out as an image of
        ``image_shape`` (height, width, channels) in row-major order, D = the product of it.
    image_shape : tuple, keyword-only
        The layout of the input rows (32, 32, 3 for CIFAR-10 loaded as in the course).
    padding : int, keyword-only
        Pixels of zeros between images.

    Returns
    -------
    array (G*(h+p) - p, G*(w+p) - p, c)
        G = ceil(sqrt(H)) images per side, on ``W1``'s device, of ``W1``'s dtype.

    Notes
    -----
    Each image is mapped by ``255 * (w - min w) / (max w - min w)``, as the course's
    ``visualize_grid`` does, so each shows its own contrast.

    Examples
    --------
    Ten units of a net on 8x8 grey images tile a 4x4 grid of 8x8 images, one pixel apart:

    >>> from xpml import backend
    >>> from xpml.nets.diagnostics import first_layer_images
    >>> W1 = backend.Generator(0).normal((64, 10))
    >>> grid = first_layer_images(W1, image_shape=(8, 8, 1))
    >>> grid.shape, round(float(grid.min()), 3), round(float(grid.max()), 3)
    ((35, 35, 1), 0.0, 255.0)
    """
    xp = backend.get_namespace(W1)
    D, H = W1.shape
    h, w, c = image_shape
    if h * w * c != D:
        raise InputError(f"image_shape {tuple(image_shape)} holds {h * w * c} values but W1 has D={D} rows")
    imgs = xp.reshape(W1.T, (H, h * w * c))
    lo = xp.min(imgs, axis=1, keepdims=True)
    hi = xp.max(imgs, axis=1, keepdims=True)
    imgs = 255.0 * (imgs - lo) / xp.maximum(hi - lo, 1e-12)
    G = math.ceil(math.sqrt(H))
    imgs = xp.reshape(imgs, (H, h, w, c))
    # Pad the image list to G*G tiles and each tile on its bottom/right, then tile by reshaping.
    imgs = xpx.pad(imgs, [(0, G * G - H), (0, padding), (0, padding), (0, 0)], xp=xp)
    grid = xp.reshape(imgs, (G, G, h + padding, w + padding, c))
    grid = xp.permute_dims(grid, (0, 2, 1, 3, 4))
    grid = xp.reshape(grid, (G * (h + padding), G * (w + padding), c))
    return grid[: G * (h + padding) - padding, : G * (w + padding) - padding, :]
