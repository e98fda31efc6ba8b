"""The two-layer fully connected ReLU network of CS231n assignment 1, on every backend.

``input - fully connected - ReLU - (dropout) - fully connected - softmax``, trained by minibatch
SGD (or any rule of :mod:`nets.optim`) on softmax cross-entropy with L2 (and optionally L1)
weight decay. The training loop keeps everything on the device: minibatch indices and dropout
masks are drawn in blocks, the per-iteration losses stay 0-d device arrays, and they, with the
per-epoch accuracies, come back to the host in one transfer at the end.
"""

from __future__ import annotations

import math

import array_api_extra as xpx

from .. import backend
from ..backend.validation import check_data, check_labels, check_positive
from .diagnostics import update_to_weight_ratio
from .init import INIT_SCHEMES, init_weights
from .optim import get_update_rule
from .regularization import dropout_masks, l1_penalty, l2_penalty, max_norm_

__all__ = ["TwoLayerNet"]

# Bytes of temporaries one scoring chunk may use; keeps predict() on 50,000 x 3072 inputs bounded.
_SCORE_BUDGET = 64 * 2**20
# Upper bound on the bytes of one block of pre-drawn dropout masks.
_MASK_BUDGET = 64 * 2**20
# Iterations whose minibatch indices are drawn in one host-to-device transfer.
_INDEX_BLOCK = 1000


class TwoLayerNet:
    """A two-layer fully connected net with a ReLU hidden layer and a softmax output.

    Parameters
    ----------
    input_size : int
        D, the dimension of the inputs.
    hidden_size : int
        H, the number of hidden units.
    output_size : int
        C, the number of classes.
    std : float
        Scale of the initial weights for ``init="std"`` (the assignment's ``std * randn``).
    init : {"std", "xavier", "he"}, keyword-only
        Initialization scheme of the weights (see :mod:`nets.init`); biases start at zero.
    dtype : keyword-only
        float32 (default) or float64 (for gradient checks).
    seed : int, keyword-only
        Seeds the initial weights and, continuing the same stream, the minibatches and dropout
        masks of :meth:`train`; the same seed gives the same run on every backend.
    xp, device : keyword-only
        Where the parameters live (None: NumPy on the CPU). Inputs must live there too.
    dropout : float, keyword-only
        The default probability of *dropping* a hidden unit during training (inverted dropout);
        0 turns dropout off. Prediction never drops.

    Attributes
    ----------
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), on the net's backend.
    backend : backend.Backend
        Where the parameters live.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4, *,
                 init: str = "std", dtype=None, seed: int | None = 0, xp=None, device=None,
                 dropout: float = 0.0):
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)):
            check_positive(v, name=name, integer=True)
        check_positive(std, name="std")
        if init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INIT_SCHEMES)}")
        _check_dropout(dropout)
        self.backend = backend.as_backend(xp, device=device)
        xp, device = self.backend.xp, self.backend.device
        self.dtype = backend.float_dtype(xp, device, dtype)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.std, self.init, self.seed, self.dropout = std, init, seed, dropout
        self._rng = backend.Generator(seed, xp=xp, device=device)
        self.params = {
            "W1": init_weights(self._rng, (input_size, hidden_size), scheme=init, std=std, dtype=self.dtype),
            "b1": xp.zeros((hidden_size,), dtype=self.dtype, device=device),
            "W2": init_weights(self._rng, (hidden_size, output_size), scheme=init, std=std, dtype=self.dtype),
            "b2": xp.zeros((output_size,), dtype=self.dtype, device=device),
        }

    @property
    def dtype_name(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return "float64" if self.dtype == self.backend.xp.float64 else "float32"

    def __repr__(self) -> str:
        return (f"TwoLayerNet({self.input_size}, {self.hidden_size}, {self.output_size}, init={self.init!r}, "
                f"dtype={self.dtype_name!r}, backend={self.backend.label!r})")

    # ---- input checks -------------------------------------------------------------------------

    def _own(self, X, name: str):
        """``X`` as this net's dtype, after checking it lives on the net's backend and has D columns."""
        backend.check_on_backend(X, self.backend, name=name, owner="this net", target="net.backend")
        xp = self.backend.xp
        if X.ndim != 2 or X.shape[1] != self.input_size:
            raise ValueError(f"{name} must have shape (N, {self.input_size}), got {tuple(X.shape)}")
        if not xp.isdtype(X.dtype, "real floating"):
            raise TypeError(f"{name} must have a real floating dtype, got {X.dtype}")
        # A float64 input to a float32 net would silently upcast every product; cast once instead.
        return X if X.dtype == self.dtype else xp.astype(X, self.dtype)

    def _own_labels(self, y, n: int, name: str):
        backend.check_on_backend(y, self.backend, name=name, owner="this net", target="net.backend")
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n},), one label per row of the data; got {tuple(y.shape)}")
        return y

    # ---- forward and backward -----------------------------------------------------------------

    def _hidden(self, X, mask=None):
        xp = self.backend.xp
        h = X @ self.params["W1"]
        h += self.params["b1"]
        h = xp.maximum(h, 0.0)
        if mask is not None:
            h *= mask
        return h

    def _scores(self, X):
        s = self._hidden(X) @ self.params["W2"]
        s += self.params["b2"]
        return s

    def _loss_and_grads(self, X, y, reg: float, *, l1: float = 0.0, mask=None):
        """Loss (0-d) and gradients for checked inputs; the body of :meth:`loss` and of training."""
        xp = self.backend.xp
        p = self.params
        N = X.shape[0]
        h = self._hidden(X, mask)
        s = h @ p["W2"]
        s += p["b2"]
        # Softmax cross-entropy from shifted scores: the shift cancels and keeps exp() in range.
        s -= xp.max(s, axis=1, keepdims=True)
        probs = xp.exp(s)
        sum_exp = xp.sum(probs, axis=1, keepdims=True)
        onehot = xpx.one_hot(y, self.output_size, dtype=self.dtype, xp=xp)
        loss = (xp.sum(xp.log(sum_exp)) - xp.vecdot(xp.reshape(s, (-1,)), xp.reshape(onehot, (-1,)))) / N
        # dL/ds = (softmax - onehot) / N, formed in place in the probabilities.
        probs /= sum_exp
        probs -= onehot
        probs *= 1.0 / N
        ds = probs

        dW2 = h.T @ ds
        db2 = xp.sum(ds, axis=0)
        dh = ds @ p["W2"].T
        if mask is not None:
            dh *= mask
        # ReLU (and dropout) backward: the gradient passes where the unit was active and kept.
        dh = xp.where(h > 0.0, dh, 0.0)
        dW1 = X.T @ dh
        db1 = xp.sum(dh, axis=0)

        if reg:
            for W, dW in ((p["W1"], dW1), (p["W2"], dW2)):
                pen, grad = l2_penalty(W, reg)
                loss = loss + pen
                dW += grad
        if l1:
            for W, dW in ((p["W1"], dW1), (p["W2"], dW2)):
                pen, grad = l1_penalty(W, l1)
                loss = loss + pen
                dW += grad
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    def loss(self, X, y=None, reg: float = 0.0, *, l1: float = 0.0, dropout_mask=None):
        """Scores, or the loss and its gradients.

        Parameters
        ----------
        X : array (N, D)
            Inputs, on the net's backend.
        y : array (N,) of int, optional
            Labels in [0, C). Without them the scores are returned.
        reg : float
            L2 strength: the loss adds ``reg * (sum(W1**2) + sum(W2**2))``; biases are not
            regularized.
        l1 : float, keyword-only
            L1 strength (``l1 * (sum|W1| + sum|W2|)``); with ``reg`` this is the elastic net.
        dropout_mask : array (N, H), keyword-only
            An inverted-dropout mask (see :func:`nets.regularization.dropout_masks`) multiplied
            into the hidden layer; None (default) applies no dropout.

        Returns
        -------
        scores : array (N, C)
            When ``y`` is None.
        (loss, grads) : (0-d array, dict)
            Otherwise: the loss stays on the device (read it with ``float(loss)``) and ``grads``
            has the keys and shapes of :attr:`params`.

        Notes
        -----
        ``h = max(0, X W1 + b1) * mask``, ``s = h W2 + b2``,
        ``L = 1/N sum_i (log sum_j exp s_ij - s_iy_i) + reg (|W1|^2 + |W2|^2) + l1 (|W1|_1 + |W2|_1)``.
        With ``P = softmax(s)`` and ``Y`` the one-hot labels: ``dL/ds = (P - Y) / N``,
        ``dW2 = h^T ds + 2 reg W2``, ``dh = ds W2^T * mask * [h > 0]``, ``dW1 = X^T dh + 2 reg W1``,
        ``db = column sums``.
        """
        X = self._own(X, "X")
        if y is None:
            return self._scores(X)
        y = self._own_labels(y, X.shape[0], "y")
        check_positive(reg, name="reg", allow_zero=True)
        check_positive(l1, name="l1", allow_zero=True)
        if dropout_mask is not None:
            dropout_mask = self._own_mask(dropout_mask, X.shape[0])
        return self._loss_and_grads(X, y, reg, l1=l1, mask=dropout_mask)

    def _own_mask(self, mask, n: int):
        xp, device = backend.namespace_and_device(mask)
        if xp is not self.backend.xp or device != self.backend.device or tuple(mask.shape) != (n, self.hidden_size):
            raise ValueError(f"dropout_mask must have shape ({n}, {self.hidden_size}) and live on the net's backend")
        return mask

    # ---- prediction -----------------------------------------------------------------------------

    def _row_chunks(self, n: int):
        # Per row a chunk holds the hidden activations and the scores, plus a copy of each.
        per_row = 2 * (self.hidden_size + self.output_size) * (8 if self.dtype_name == "float64" else 4)
        rows = max(1, _SCORE_BUDGET // per_row)
        for start in range(0, n, rows):
            yield slice(start, min(start + rows, n))

    def predict_proba(self, X, /):
        """Class probabilities (N, C), the softmax of the scores, computed in memory-bounded chunks."""
        X = self._own(X, "X")
        xp = self.backend.xp
        out = []
        for rows in self._row_chunks(X.shape[0]):
            s = self._scores(X[rows, :])
            s -= xp.max(s, axis=1, keepdims=True)
            e = xp.exp(s)
            e /= xp.sum(e, axis=1, keepdims=True)
            out.append(e)
        return out[0] if len(out) == 1 else xp.concat(out, axis=0)

    def predict(self, X, /):
        """Predicted labels (N,) of the index dtype: the argmax of the scores, in bounded chunks."""
        X = self._own(X, "X")
        return self._predict(X)

    def _predict(self, X):
        xp = self.backend.xp
        out = [xp.argmax(self._scores(X[rows, :]), axis=1) for rows in self._row_chunks(X.shape[0])]
        return out[0] if len(out) == 1 else xp.concat(out, axis=0)

    def _accuracy(self, X, y):
        xp = self.backend.xp
        return xp.mean(xp.astype(self._predict(X) == y, self.dtype))

    # ---- training ---------------------------------------------------------------------------------

    def train(self, X, y, X_val=None, y_val=None, learning_rate: float = 1e-3, learning_rate_decay: float = 0.95,
              reg: float = 5e-6, num_iters: int = 100, batch_size: int | None = 200, verbose: bool = False, *,
              update_rule="sgd", optim_config: dict | None = None, schedule=None, dropout: float | None = None,
              l1: float = 0.0, max_norm: float | None = None, record_update_ratios: bool = False,
              callback=None) -> dict:
        """Train by minibatch gradient descent; return the loss and accuracy histories.

        Parameters
        ----------
        X : array (N, D); y : array (N,) of int
            Training data and labels, on the net's backend.
        X_val : array (N_val, D); y_val : array (N_val,), optional
            Validation data; without it ``val_acc_history`` stays empty.
        learning_rate : float
            The initial learning rate.
        learning_rate_decay : float
            Factor applied to the learning rate once per epoch (ignored with ``schedule``).
        reg : float
            L2 strength (see :meth:`loss`).
        num_iters : int
            Number of parameter updates.
        batch_size : int or None
            Minibatch size; examples are drawn with replacement, as in the course. None trains on
            all of ``X`` at every step (full batch, one epoch per step).
        verbose : bool
            Print the loss and accuracies once per epoch (one device read per epoch).
        update_rule : str or callable, keyword-only
            A rule of :mod:`nets.optim` by name (``"sgd"``, ``"momentum"``, ``"nesterov"``,
            ``"adagrad"``, ``"rmsprop"``, ``"adam"``) or a callable with the same signature.
        optim_config : dict, keyword-only
            Hyperparameters of the rule (``momentum``, ``beta1``, ...), copied for each parameter.
            Its ``learning_rate`` is overridden by ``learning_rate`` / ``schedule``.
        schedule : callable, keyword-only
            ``schedule(epoch) -> learning rate`` (see :mod:`nets.schedules`), called with the
            number of completed epochs; replaces ``learning_rate`` and ``learning_rate_decay``.
        dropout : float, keyword-only
            Probability of dropping a hidden unit (inverted dropout); default the net's
            ``dropout``.
        l1 : float, keyword-only
            L1 strength; with ``reg`` this is the elastic net.
        max_norm : float, keyword-only
            After each update, clip each column of ``W1`` and ``W2`` (a unit's incoming weights)
            to this Euclidean norm.
        record_update_ratios : bool, keyword-only
            Record, at the last step of each epoch, ``||update|| / ||W||`` of ``W1`` and ``W2``
            (the notes' health check: around 1e-3).
        callback : callable, keyword-only
            ``callback(it, loss)`` after every update, with the loss as a 0-d device array; reading
            it back (``float(loss)``) is the callback's choice and cost.

        Returns
        -------
        dict
            ``loss_history`` (one float per iteration), ``train_acc_history`` (accuracy on the
            last minibatch of each epoch, as in the course), ``val_acc_history`` (per epoch),
            ``learning_rate_history`` (the rate used in each epoch) and, when asked,
            ``update_ratio_history`` (``{"W1": [...], "W2": [...]}``, per epoch).

        Notes
        -----
        An epoch is ``max(N // batch_size, 1)`` iterations. At the end of each one the accuracies
        are computed and the learning rate is multiplied by ``learning_rate_decay`` (the course
        checks at iteration 0 too; here only completed epochs count). Minibatch indices are drawn
        for up to 1000 iterations in one call, dropout masks for as many iterations as fit in 64
        MiB, from the net's generator, so runs with the same seed match across backends.
        """
        xp = self.backend.xp
        X = self._own(X, "X")
        check_data(X, name="X")
        y = self._own_labels(y, X.shape[0], "y")
        check_labels(y, name="y", num_classes=self.output_size)
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val = self._own(X_val, "X_val")
            y_val = self._own_labels(y_val, X_val.shape[0], "y_val")
            check_labels(y_val, name="y_val", num_classes=self.output_size)
        check_positive(learning_rate, name="learning_rate")
        check_positive(learning_rate_decay, name="learning_rate_decay")
        check_positive(reg, name="reg", allow_zero=True)
        check_positive(l1, name="l1", allow_zero=True)
        check_positive(num_iters, name="num_iters", integer=True)
        if batch_size is not None:
            check_positive(batch_size, name="batch_size", integer=True)
        if max_norm is not None:
            check_positive(max_norm, name="max_norm")
        drop = self.dropout if dropout is None else dropout
        _check_dropout(drop)
        rule = get_update_rule(update_rule)

        N = X.shape[0]
        full_batch = batch_size is None
        B = N if full_batch else batch_size
        iters_per_epoch = 1 if full_batch else max(N // B, 1)
        lr = schedule(0) if schedule is not None else learning_rate
        configs = {k: {**(optim_config or {}), "learning_rate": lr} for k in self.params}
        # Draw as many iterations' masks as fit the budget, never more than the index block.
        mask_iters = max(1, _MASK_BUDGET // (B * self.hidden_size * (8 if self.dtype_name == "float64" else 4)))
        block = min(_INDEX_BLOCK, mask_iters) if drop else _INDEX_BLOCK

        losses, train_acc, val_acc, lr_history = [], [], [], []
        ratios = {"W1": [], "W2": []}
        idx_block = mask_block = None
        for it in range(num_iters):
            j = it % block
            if j == 0:
                n_draw = min(block, num_iters - it)
                if not full_batch:
                    idx_block = self._rng.choice(N, (n_draw, B))
                if drop:
                    mask_block = dropout_masks(self._rng, (n_draw, B, self.hidden_size), drop=drop, dtype=self.dtype)
            if full_batch:
                X_batch, y_batch = X, y
            else:
                idx = idx_block[j, :]
                X_batch, y_batch = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
            mask = mask_block[j, ...] if drop else None

            loss, grads = self._loss_and_grads(X_batch, y_batch, reg, l1=l1, mask=mask)
            end_of_epoch = (it + 1) % iters_per_epoch == 0
            if record_update_ratios and end_of_epoch:
                before = {k: xp.asarray(self.params[k], copy=True) for k in ("W1", "W2")}
            for k, config in configs.items():
                self.params[k], configs[k] = rule(self.params[k], grads[k], config)
            if max_norm is not None:
                max_norm_(self.params["W1"], max_norm)
                max_norm_(self.params["W2"], max_norm)
            losses.append(loss)
            if callback is not None:
                callback(it, loss)

            if end_of_epoch:
                epoch = (it + 1) // iters_per_epoch
                train_acc.append(self._accuracy(X_batch, y_batch))
                if X_val is not None:
                    val_acc.append(self._accuracy(X_val, y_val))
                if record_update_ratios:
                    for k in ratios:
                        ratios[k].append(update_to_weight_ratio(before[k], self.params[k]))
                if verbose:
                    val = f", val acc {float(val_acc[-1]):.4f}" if val_acc else ""
                    print(f"epoch {epoch} (iteration {it + 1} / {num_iters}): loss {float(loss):.6f}, "
                          f"train acc {float(train_acc[-1]):.4f}{val}, learning rate {lr:.3g}")
                lr_history.append(lr)
                lr = schedule(epoch) if schedule is not None else lr * learning_rate_decay
                for config in configs.values():
                    config["learning_rate"] = lr

        history = {
            "loss_history": _to_floats(xp, losses),
            "train_acc_history": _to_floats(xp, train_acc),
            "val_acc_history": _to_floats(xp, val_acc),
            "learning_rate_history": lr_history,
        }
        if record_update_ratios:
            history["update_ratio_history"] = {k: _to_floats(xp, v) for k, v in ratios.items()}
        return history


def _check_dropout(p) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0.0 <= p < 1.0) or math.isnan(p):
        raise ValueError(f"dropout is the probability of dropping a hidden unit, in [0, 1); got {p!r}")


def _to_floats(xp, values) -> list[float]:
    """0-d device arrays to Python floats with one stack and one transfer."""
    if not values:
        return []
    return [float(v) for v in backend.to_numpy(xp.stack(values)).tolist()]
