"""The optimization chapter of the notes: the loss landscape of a linear classifier and three ways down it.

- :func:`loss_along_line`: ``L(W + a W1)`` for many ``a`` (the notes' one-dimensional slices).
- :func:`loss_over_plane`: ``L(W + a W1 + b W2)`` over a grid (the bowl-shaped pictures).
- :func:`random_search`: try random weights, keep the best (strategy 1).
- :func:`random_local_search`: step to a random neighbour when it lowers the loss (strategy 2).
- :func:`follow_gradient`: gradient descent on the analytic gradient (strategy 3).
- :func:`step_size_table`: the loss after one gradient step, for each of several step sizes.

The classifier is the course's ``scores = X W`` with W (D, C), and the loss the multiclass SVM
(``"svm"``) or softmax (``"softmax"``) data loss plus ``reg * sum(W**2)``. Every point of a line
or plane is evaluated in one batched pass on the device (scores ``X W + a X W1 + b X W2`` for all
points at once, in chunks that fit a memory budget), not in a Python loop per point; nothing is
read back to the host. The searches draw their weights with a :class:`backend.Generator`, so a
seed gives the same run on every backend.
"""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError
from .losses import l2_penalty, softmax_loss, svm_loss

__all__ = ["LOSSES", "follow_gradient", "loss_along_line", "loss_over_plane", "random_local_search",
           "random_search", "step_size_table"]

LOSSES = ("svm", "softmax")
# Bytes of (points, N, C) scores evaluated at once; larger grids are done in chunks of points.
MEMORY_BUDGET = 64 * 2**20


def _check(X, y, W, loss: str):
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    xp, device = backend.namespace_and_device(X, y, W)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0] or tuple(y.shape) != (X.shape[0],):
        raise InputError(f"need X (N, D), y (N,) and W (D, C); got X {tuple(X.shape)}, y {tuple(y.shape)}, "
                         f"W {tuple(W.shape)}")
    return xp, device


def _data_losses(xp, device, S, y, loss: str):
    """The data loss of each stack of scores ``S`` (P, N, C) with labels y (N,): an array (P,)."""
    N, C = S.shape[1], S.shape[2]
    onehot = xp.astype(xp.reshape(y, (-1, 1)) == xp.arange(C, dtype=y.dtype, device=device), S.dtype)
    correct = xp.sum(S * onehot, axis=2, keepdims=True)
    if loss == "svm":
        margins = xp.maximum(S - correct + 1.0, 0.0) * (1.0 - onehot)
        return xp.sum(xp.sum(margins, axis=2), axis=1) / N
    m = xp.max(S, axis=2, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(S - m), axis=2, keepdims=True)) + m
    return xp.sum(xp.reshape(lse - correct, (S.shape[0], N)), axis=1) / N


def _coefficients(xp, device, values, dtype, name: str):
    if hasattr(values, "shape") and not isinstance(values, (list, tuple)):
        a = xp.astype(values, dtype) if backend.get_namespace(values) is xp else None
        if a is None:
            raise InputError(f"{name} must live with W (or be a list of numbers)")
    else:
        a = xp.asarray([float(v) for v in values], dtype=dtype, device=device)
    if a.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {tuple(a.shape)}")
    return a


def _grid_losses(xp, device, X, y, W, directions, coeffs, *, loss, reg, budget):
    """Losses at ``W + sum_k coeffs[:, k] * directions[k]`` for each row of coeffs (P, K)."""
    S0 = X @ W
    Sd = [X @ d for d in directions]
    P, (N, C) = coeffs.shape[0], S0.shape
    # Three (chunk, N, C) temporaries of at most 8 bytes an entry live at once.
    chunk = max(1, min(P, budget // (3 * N * C * 8)))
    out = []
    for start in range(0, P, chunk):
        c = coeffs[start:start + chunk, :]
        S = xp.expand_dims(S0, axis=0)
        for k, Sk in enumerate(Sd):
            S = S + xp.reshape(c[:, k], (-1, 1, 1)) * xp.expand_dims(Sk, axis=0)
        out.append(_data_losses(xp, device, S, y, loss))
    losses = xp.concat(out) if len(out) > 1 else out[0]
    if reg:
        # ||W + sum_k c_k D_k||^2 expanded: Gram matrix of (W, D_1, ..., D_K), no (P, D, C) array.
        vecs = [xp.reshape(v, (-1,)) for v in (W, *directions)]
        gram = [[u @ v for v in vecs] for u in vecs]
        K = len(directions)
        sq = gram[0][0]
        for k in range(K):
            sq = sq + 2.0 * coeffs[:, k] * gram[0][k + 1]
            for j in range(K):
                sq = sq + coeffs[:, k] * coeffs[:, j] * gram[k + 1][j + 1]
        losses = losses + float(reg) * sq
    return losses


def loss_along_line(X, y, W, W1, alphas, /, *, loss: str = "svm", reg: float = 0.0,
                    memory_budget: int = MEMORY_BUDGET):
    """``L(W + a W1)`` for each ``a`` of ``alphas``, all in one batched pass on W's device.

    Parameters
    ----------
    X : array (N, D); y : array (N,) of int in [0, C)
        The data (with the bias trick, a column of ones in X, as in the notes).
    W, W1 : arrays (D, C)
        The point and the direction.
    alphas : array (A,) on W's device, or a sequence of numbers
    loss : {"svm", "softmax"}, keyword-only
    reg : float, keyword-only
        Adds ``reg * sum((W + a W1)**2)``.
    memory_budget : int, keyword-only
        Bytes of scores evaluated at once (chunks of points beyond it).

    Returns
    -------
    array (A,) of W's dtype on W's device

    Notes
    -----
    The scores are linear in ``a``: ``X (W + a W1) = X W + a X W1``, so two products serve
    every point, and the penalty is ``|W|^2 + 2 a <W, W1> + a^2 |W1|^2``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import landscape
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)  # with the bias column
    >>> y = rng.integers(0, 3, 20)
    >>> W = rng.normal(scale=0.01, size=(3, 3))
    >>> W1 = rng.normal(size=(3, 3))
    >>> landscape.loss_along_line(X, y, W, W1, [-1.0, 0.0, 1.0]).round(3)
    array([2.63 , 1.988, 2.296])
    """
    xp, device = _check(X, y, W, loss)
    a = _coefficients(xp, device, alphas, W.dtype, "alphas")
    return _grid_losses(xp, device, X, y, W, [W1], xp.reshape(a, (-1, 1)), loss=loss, reg=reg, budget=memory_budget)


def loss_over_plane(X, y, W, W1, W2, alphas, betas, /, *, loss: str = "svm", reg: float = 0.0,
                    memory_budget: int = MEMORY_BUDGET):
    """``L(W + a W1 + b W2)`` over the grid ``alphas x betas``, batched on W's device.

    Parameters as :func:`loss_along_line`, with a second direction ``W2`` and ``betas`` (B,).

    Returns
    -------
    array (A, B): entry ``[i, j]`` is the loss at ``a = alphas[i]``, ``b = betas[j]``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import landscape
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)  # with the bias column
    >>> y = rng.integers(0, 3, 20)
    >>> W = rng.normal(scale=0.01, size=(3, 3))
    >>> W1, W2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    >>> grid = landscape.loss_over_plane(X, y, W, W1, W2, [-1.0, 0.0, 1.0], [0.0, 1.0])
    >>> grid.shape, round(float(grid[1, 0]), 3)  # at alpha = beta = 0: the loss at W
    ((3, 2), 1.988)
    """
    xp, device = _check(X, y, W, loss)
    a = _coefficients(xp, device, alphas, W.dtype, "alphas")
    b = _coefficients(xp, device, betas, W.dtype, "betas")
    A, B = a.shape[0], b.shape[0]
    grid = xp.stack([xp.reshape(xp.broadcast_to(xp.reshape(a, (-1, 1)), (A, B)), (-1,)),
                     xp.reshape(xp.broadcast_to(xp.reshape(b, (1, -1)), (A, B)), (-1,))], axis=1)
    losses = _grid_losses(xp, device, X, y, W, [W1, W2], grid, loss=loss, reg=reg, budget=memory_budget)
    return xp.reshape(losses, (A, B))


def _loss_and_grad(X, y, W, *, loss: str, reg: float, xp, device):
    scores = X @ W
    fn = svm_loss if loss == "svm" else softmax_loss
    data, dscores = fn(scores, y, xp=xp, device=device)
    penalty, dW = l2_penalty(W, reg, xp=xp)
    return data + penalty, X.T @ dscores + dW


def random_search(X, y, /, *, num_classes: int, tries: int = 1000, scale: float = 1e-4, loss: str = "svm",
                  reg: float = 0.0, rng: backend.Generator, chunk: int = 100):
    """Strategy 1 of the notes: draw ``tries`` random W (D, C) and keep the one with the lowest loss.

    Parameters
    ----------
    X, y
        As :func:`loss_along_line`.
    num_classes : int, keyword-only
        C.
    tries : int, keyword-only
    scale : float, keyword-only
        The standard deviation of each weight (the notes use 1e-4 on raw CIFAR-10 pixels).
    loss, reg : keyword-only
        As :func:`loss_along_line`.
    rng : backend.Generator, keyword-only
        Draws the weights (the same seed gives the same W on every backend).
    chunk : int, keyword-only
        Weights evaluated per batched pass.

    Returns
    -------
    W : array (D, C), the best weights found
    losses : array (tries,), the loss of each try, in order

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import landscape
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)  # with the bias column
    >>> y = rng.integers(0, 3, 20)
    >>> W = rng.normal(scale=0.01, size=(3, 3))
    >>> from xpml import backend
    >>> W_best, losses = landscape.random_search(X, y, num_classes=3, tries=20, scale=1.0,
    ...                                          rng=backend.Generator(0))
    >>> W_best.shape, losses.shape
    ((3, 3), (20,))
    """
    xp, device = backend.namespace_and_device(X, y)
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    if X.ndim != 2 or tuple(y.shape) != (X.shape[0],):
        raise InputError(f"need X (N, D) and y (N,); got X {tuple(X.shape)}, y {tuple(y.shape)}")
    D, dt = X.shape[1], X.dtype
    # A chunk's scores (and the loss's temporaries over them) stay within the memory budget.
    chunk = max(1, min(int(chunk), MEMORY_BUDGET // (3 * X.shape[0] * num_classes * 8)))
    best_W, best, all_losses = None, None, []
    for start in range(0, tries, chunk):
        n = min(chunk, tries - start)
        Ws = rng.normal((n, D, num_classes), scale=scale, dtype=_dtype_name(xp, dt))
        # Every try at once as one product X (D, n C): one large matrix product, not n small ones.
        S = X @ xp.reshape(xp.permute_dims(Ws, (1, 0, 2)), (D, n * num_classes))
        S = xp.permute_dims(xp.reshape(S, (X.shape[0], n, num_classes)), (1, 0, 2))
        losses = _data_losses(xp, device, S, y, loss)
        if reg:
            flat = xp.reshape(Ws, (n, -1))
            losses = losses + float(reg) * xp.sum(flat * flat, axis=1)
        i = xp.reshape(xp.argmin(losses), (1,))
        cand, cand_W = xp.take(losses, i, axis=0)[0], xp.take(Ws, i, axis=0)[0, ...]
        if best is None:
            best, best_W = cand, cand_W
        else:
            # Decided on the device: no read back per chunk.
            better = cand < best
            best_W = xp.where(better, cand_W, best_W)
            best = xp.where(better, cand, best)
        all_losses.append(losses)
    return best_W, xp.concat(all_losses)


def _dtype_name(xp, dt) -> str:
    return "float64" if dt == xp.float64 else "float32"


def random_local_search(X, y, W, /, *, steps: int = 1000, step_size: float = 1e-4, loss: str = "svm",
                        reg: float = 0.0, rng: backend.Generator, chunk: int = 100):
    """Strategy 2 of the notes: try ``W + step_size * N(0, 1)`` and move there when the loss drops.

    Parameters
    ----------
    X, y, loss, reg
        As :func:`loss_along_line`.
    W : array (D, C)
        The start (left unchanged).
    steps : int, keyword-only
    step_size : float, keyword-only
    rng : backend.Generator, keyword-only
    chunk : int, keyword-only
        Perturbations drawn per call of the generator.

    Returns
    -------
    W : array (D, C), the final weights
    losses : array (steps,), the best loss after each step (non-increasing)

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import landscape
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)  # with the bias column
    >>> y = rng.integers(0, 3, 20)
    >>> W = rng.normal(scale=0.01, size=(3, 3))
    >>> from xpml import backend
    >>> W_end, losses = landscape.random_local_search(X, y, W, steps=50, step_size=0.1, rng=backend.Generator(0))
    >>> losses.shape, bool((np.diff(losses) <= 0).all())  # the best loss never rises
    ((50,), True)
    """
    xp, device = _check(X, y, W, loss)
    dt = _dtype_name(xp, W.dtype)
    best = _grid_losses(xp, device, X, y, W, [], xp.zeros((1, 0), dtype=W.dtype, device=device), loss=loss,
                        reg=reg, budget=MEMORY_BUDGET)[0]
    history = []
    for start in range(0, steps, chunk):
        n = min(chunk, steps - start)
        noise = rng.normal((n, *W.shape), scale=step_size, dtype=dt)
        for k in range(n):
            W_try = W + noise[k, ...]
            S = xp.expand_dims(X @ W_try, axis=0)
            cand = _data_losses(xp, device, S, y, loss)[0]
            if reg:
                flat = xp.reshape(W_try, (-1,))
                cand = cand + float(reg) * (flat @ flat)
            # Accepted on the device (a select), not by reading the loss back each step.
            better = cand < best
            W = xp.where(better, W_try, W)
            best = xp.where(better, cand, best)
            history.append(best)
    return W, xp.stack(history)


def follow_gradient(X, y, W, /, *, steps: int = 100, step_size: float = 1e-3, loss: str = "svm", reg: float = 0.0,
                    batch_size: int | None = None, rng: backend.Generator | None = None):
    """Strategy 3 of the notes: ``W <- W - step_size * dL/dW`` with the analytic gradient.

    Parameters
    ----------
    X, y, W, loss, reg
        As :func:`random_local_search`.
    steps : int, keyword-only
    step_size : float, keyword-only
    batch_size : int or None, keyword-only
        Minibatch gradient descent on ``batch_size`` examples drawn by ``rng`` per step; None uses
        all of X (full-batch).
    rng : backend.Generator, keyword-only
        Needed with ``batch_size``.

    Returns
    -------
    W : array (D, C)
    losses : array (steps,), the (minibatch) loss before each step

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import landscape
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)  # with the bias column
    >>> y = rng.integers(0, 3, 20)
    >>> W = rng.normal(scale=0.01, size=(3, 3))
    >>> W_end, losses = landscape.follow_gradient(X, y, W, steps=50, step_size=0.1)
    >>> W_end.shape, bool(losses[-1] < losses[0])
    ((3, 3), True)
    """
    xp, device = _check(X, y, W, loss)
    if batch_size is not None and rng is None:
        raise InputError("minibatch gradient descent needs rng= to draw the minibatches")
    N = X.shape[0]
    history = []
    batches = None if batch_size is None else rng.integers(0, N, (steps, int(batch_size)))
    for t in range(steps):
        if batches is None:
            Xb, yb = X, y
        else:
            idx = batches[t, :]
            Xb, yb = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
        value, dW = _loss_and_grad(Xb, yb, W, loss=loss, reg=reg, xp=xp, device=device)
        history.append(value)
        W = W - step_size * dW
    return W, xp.stack(history)


def step_size_table(X, y, W, step_sizes, /, *, loss: str = "svm", reg: float = 0.0):
    """The loss after one gradient step of each size: ``L(W - s dL/dW)`` for each ``s``, batched.

    Returns
    -------
    loss0 : 0-d array, ``L(W)``
    losses : array (S,), the loss after a step of each size (the notes' table of loss against
        step size: too small barely moves, too large overshoots)

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import landscape
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(20, 2)), np.ones((20, 1))], axis=1)  # with the bias column
    >>> y = rng.integers(0, 3, 20)
    >>> W = rng.normal(scale=0.01, size=(3, 3))
    >>> loss0, losses = landscape.step_size_table(X, y, W, [1e-3, 1e-1, 10.0])
    >>> round(float(loss0), 3), losses.round(3)  # too small barely moves, too large overshoots
    (1.988, array([1.987, 1.939, 4.131]))
    """
    xp, device = _check(X, y, W, loss)
    value, dW = _loss_and_grad(X, y, W, loss=loss, reg=reg, xp=xp, device=device)
    return value, loss_along_line(X, y, W, -dW, step_sizes, loss=loss, reg=reg)

