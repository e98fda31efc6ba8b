"""Linear classifiers trained by minibatch SGD: the course's ``LinearClassifier``, ``LinearSVM`` and ``Softmax``."""

from __future__ import annotations

from .. import backend
from ..backend.validation import check_labels, check_positive
from ._checks import check_features, check_loss_inputs, check_train_set
from .linear_svm import _svm_loss
from .softmax import _softmax_loss

__all__ = ["LinearClassifier", "LinearSVM", "Softmax"]

# Minibatch indices are drawn for many iterations at once (one host-to-device transfer per block);
# a block holds at most this many indices (8 MiB of int64) so a long run does not draw them all.
_MAX_INDICES_PER_BLOCK = 2**20


class LinearClassifier:
    """A linear score function ``s = X W`` trained with minibatch SGD on a loss of ``(W, X, y, reg)``.

    Subclasses choose the loss (:class:`LinearSVM`, :class:`Softmax`). ``W`` (D, C) is created at
    the first :meth:`train` on the data's backend, device and dtype.

    Parameters
    ----------
    seed : int, keyword-only
        Seeds the weight initialisation ``0.001 * randn(D, C)`` and the minibatch draws; the same
        seed gives the same run on every backend.
    dtype : keyword-only
        float32 or float64 for W and the computation; None follows the training data's dtype.
        Data of another dtype is cast once at the start of :meth:`train`.
    """

    def __init__(self, *, seed: int = 0, dtype=None):
        self.seed = seed
        self.dtype = dtype
        self.W = None
        self._rng = None

    def _loss(self, W, X, y, reg):
        raise NotImplementedError("LinearClassifier is abstract: use LinearSVM or Softmax")

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False, *,
              update_rule=None, optim_config=None, callback=None) -> list[float]:
        """Train by minibatch stochastic gradient descent.

        Parameters
        ----------
        X : array (N, D)
            Training data.
        y : array (N,)
            Integer labels in [0, C); C is ``max(y) + 1`` at the first call.
        learning_rate, reg : float
            Step size and L2 regularization strength.
        num_iters, batch_size : int
            Steps to take and examples per minibatch (drawn with replacement, as the course does).
        verbose : bool
            Print the loss every 100 iterations (a read-back from the device each time).
        update_rule : callable, keyword-only
            ``rule(w, dw, config) -> (next_w, config)`` as in the course's ``optim.py``; None is plain
            SGD, ``W - learning_rate * dW``.
        optim_config : dict, keyword-only
            The rule's starting config; ``learning_rate`` is added when absent.
        callback : callable, keyword-only
            ``callback(it, loss)`` after every step, with the loss as a 0-d device array; the caller
            decides whether to read it back. ``self.W`` holds the weights after that step, so the
            callback may evaluate the model (:meth:`predict`), e.g. once per epoch.

        Returns
        -------
        list of float
            The loss at every iteration, read back from the device once at the end.
        """
        xp, device, num_classes = check_train_set(X, y)
        check_positive(learning_rate, name="learning_rate", allow_zero=True)
        check_positive(reg, name="reg", allow_zero=True)
        check_positive(num_iters, name="num_iters", allow_zero=True, integer=True)
        check_positive(batch_size, name="batch_size", integer=True)
        if update_rule is not None and not callable(update_rule):
            raise TypeError(f"update_rule must be callable, got {update_rule!r}")
        dt = backend.float_dtype(xp, device, X.dtype if self.dtype is None else self.dtype)
        X = xp.astype(X, dt, copy=False)
        num_train, dim = X.shape
        if self.W is None:
            self._rng = backend.Generator(self.seed, xp=xp, device=device)
            self.W = 0.001 * self._rng.normal((dim, num_classes), dtype=dt)
        else:
            # A second call continues training: the data must fit the weights it continues from.
            backend.namespace_and_device(self.W, X)
            check_features(X, dim=self.W.shape[0])
            check_labels(y, n=num_train, num_classes=self.W.shape[1])
            X = xp.astype(X, self.W.dtype, copy=False)

        config = dict(optim_config or {})
        config.setdefault("learning_rate", learning_rate)
        W = self.W
        history = []
        per_block = max(1, _MAX_INDICES_PER_BLOCK // batch_size)
        for start in range(0, num_iters, per_block):
            steps = min(per_block, num_iters - start)
            block = self._rng.choice(num_train, (steps, batch_size), replace=True)
            for step in range(steps):
                it = start + step
                idx = block[step, :]
                loss, dW = self._loss(W, xp.take(X, idx, axis=0), xp.take(y, idx), reg)
                if update_rule is None:
                    W = W - learning_rate * dW
                else:
                    W, config = update_rule(W, dW, config)
                history.append(loss)
                if callback is not None:
                    # Kept current so a callback can evaluate the model mid-run (once per epoch,
                    # say) without ending the call, which would reset an update rule's state.
                    self.W = W
                    callback(it, loss)
                if verbose and it % 100 == 0:
                    print(f"iteration {it} / {num_iters}: loss {float(loss):f}")
        self.W = W
        if not history:
            return []
        return backend.to_numpy(xp.stack(history)).tolist()

    def predict(self, X, /):
        """Predicted labels ``argmax_j (X W)_j``: an integer array (N,) on X's device."""
        if self.W is None:
            raise RuntimeError("the classifier is not trained yet: call train(X, y) first")
        xp, _ = backend.namespace_and_device(self.W, X)
        check_features(X, dim=self.W.shape[0])
        return xp.argmax(xp.astype(X, self.W.dtype, copy=False) @ self.W, axis=1)

    def loss(self, X_batch, y_batch, reg):
        """Loss and gradient ``(loss, dW)`` of the current ``W`` on a minibatch (see the subclass's loss)."""
        if self.W is None:
            raise RuntimeError("the classifier has no weights yet: call train(X, y) first")
        check_loss_inputs(self.W, X_batch, y_batch, reg)
        return self._loss(self.W, X_batch, y_batch, reg)


class LinearSVM(LinearClassifier):
    """A linear classifier trained on the multiclass SVM loss (:func:`svm_loss_vectorized`)."""

    def _loss(self, W, X, y, reg):
        return _svm_loss(W, X, y, reg)


class Softmax(LinearClassifier):
    """A linear classifier trained on the softmax loss (:func:`softmax_loss_vectorized`)."""

    def _loss(self, W, X, y, reg):
        return _softmax_loss(W, X, y, reg)
