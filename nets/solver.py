"""The Solver of CS231n assignment 2: the one training loop, for every model of xpml.

A model is anything with a ``params`` dict and a ``loss(X, y=None)`` method that returns scores
without labels and ``(loss, grads)`` with them (the course's contract). :class:`FullyConnectedNet`,
:class:`TwoLayerNet` and, through their ``train`` methods, the linear classifiers all train here,
and so does a model written for the course.

The loop keeps the device busy and the host out of it:

- minibatch indices are drawn for up to 1000 iterations at a time, on the model's device, from a
  :class:`backend.Generator` (the same seed gives the same run on every backend);
- losses stay 0-d device arrays; once per epoch they are read back together with that epoch's
  accuracies in a single transfer, and that read is also where a non-finite loss is noticed
  (``diverged_at``), so a run that diverges stops at the end of the epoch;
- the update rules are functional (:mod:`nets.optim`): parameters and optimizer state are new
  arrays stored back, which is also what makes the loop right on arrays that cannot be written;
- on JAX, each step is one compiled function (``compile=True``, :mod:`nets._compile`).

Models of this library expose a private ``_solver_loss(X, y, rng)``: the same loss without the
per-call input checks (the Solver checks its data once, up front) and with dropout masks drawn
from the Solver's generator. Other models are called through ``loss``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from .. import backend
from ..backend._arith import iadd, imul
from ..backend.validation import check_data, check_labels, check_same_length
from ._compile import compiled_step
from ._model import as_float, as_int
from .diagnostics import update_to_weight_ratio
from .metrics import accuracy
from .optim import get_update_rule
from .regularization import l1_penalty, max_norm

__all__ = ["Solver"]

# Iterations whose minibatch indices are drawn in one call (one host-to-device transfer at most),
# and the most indices one such block may hold (8 MiB of int64).
_INDEX_BLOCK = 1000
_INDEX_BUDGET = 2**20
TRAIN_ACCURACY = ("sample", "batch", None)


def _is_weight(name: str, w) -> bool:
    # The course names weight matrices W, W1, W2, ...; biases and normalization parameters are not
    # weights for L1, max-norm and the update ratios.
    return name.startswith("W") and w.ndim == 2


class Solver:
    """Train a classification model by minibatch gradient descent, as the course's ``Solver``.

    Parameters
    ----------
    model
        An object with ``params`` (name -> array) and ``loss(X, y=None)``.
    data : dict
        ``X_train`` (N, ...), ``y_train`` (N,) and, optionally (both or neither), ``X_val``,
        ``y_val``; arrays on the model's backend.
    update_rule : str or callable, keyword-only
        A rule of :mod:`nets.optim` by name (``"sgd"``, ``"sgd_momentum"``, ``"nesterov"``,
        ``"adagrad"``, ``"rmsprop"``, ``"adam"``) or ``rule(w, dw, config) -> (next_w, config)``.
    optim_config : dict, keyword-only
        Hyperparameters of the rule (``learning_rate``, ``momentum``, ...), copied for each
        parameter.
    lr_decay : float, keyword-only
        Factor applied to the learning rate after each epoch.
    batch_size : int or None, keyword-only
        Examples per minibatch, drawn with replacement as in the course; None trains on all of
        ``X_train`` at every step (one epoch per step).
    num_epochs : int, keyword-only
        Epochs to train; an epoch is ``max(N // batch_size, 1)`` iterations.
    num_train_samples, num_val_samples : int or None, keyword-only
        Examples drawn (with replacement) for the per-epoch accuracies; None uses all of them.
    checkpoint_name : str, keyword-only
        When given, the model is saved after every accuracy check to
        ``{checkpoint_name}_epoch_{epoch}.npz`` (:func:`nets.save_model`; see
        :meth:`nets.Ensemble.from_checkpoints` to average the last ones).
    print_every : int, keyword-only
        With ``verbose``, print the loss every this many iterations (each print reads it back).
    verbose : bool, keyword-only
        Print progress as the course does.
    num_iters : int, keyword-only
        Train for this many iterations instead of ``num_epochs`` epochs.
    schedule : callable, keyword-only
        ``schedule(epoch) -> learning rate`` (see :mod:`nets.schedules`), called with the number
        of completed epochs; replaces ``lr_decay``.
    patience : int, keyword-only
        Early stopping: stop when the validation accuracy has not improved for this many checks.
    l1 : float, keyword-only
        Adds ``l1 * sum|W|`` over the weight matrices (parameters named ``W...``) to the loss.
    max_norm : float, keyword-only
        After every update, clip each column of each weight matrix to this Euclidean norm.
    ema_decay : float, keyword-only
        Keep an exponential running average of the parameters (``ema_params``) and evaluate,
        keep as best and restore that average instead of the raw parameters. The effective decay
        at step t is ``min(ema_decay, (1 + t) / (10 + t))``, so the first steps do not drag the
        initial weights along.
    augment : callable, keyword-only
        ``augment(X_batch, rng) -> X_batch`` applied to every training minibatch on the device
        (see :mod:`nets.augment`).
    callback : callable, keyword-only
        ``callback(it, loss)`` after every update, with the loss as a 0-d device array (reading it
        is the callback's choice and cost); the model's ``params`` hold the updated values.
    epoch_callback : callable, keyword-only
        ``epoch_callback(solver)`` after every accuracy check, with the histories read back.
    seed : int, keyword-only
        Seeds the minibatch draws; default the model's own generator (``model.rng``) when it has
        one, else fresh entropy.
    rng : backend.Generator, keyword-only
        The generator itself (overrides ``seed``).
    restore_best : bool, keyword-only
        At the end, put the parameters with the best validation accuracy back into the model (the
        course's behaviour), with the batch-norm running statistics of that moment; False keeps the
        last ones.
    check_ends : bool, keyword-only
        Also check the accuracies after the first and the last iteration, as the course does.
    train_accuracy : {"sample", "batch", None}, keyword-only
        Training accuracy per check on ``num_train_samples`` training examples (the course's
        Solver), on the last minibatch (assignment 1's loops), or not at all.
    record_update_ratios : bool, keyword-only
        Record ``||update|| / ||W||`` of every weight matrix at the last step of each epoch.
    compile : bool, keyword-only
        On JAX, run each training step after the first (forward, the model's analytic backward,
        L1, the update of every parameter, max-norm) as one ``jax.jit``-compiled function
        (:mod:`nets._compile`); the default. It is compiled once per shape: the learning rate
        and the optimizer's step count are inputs, so schedules do not recompile. The numbers
        are the eager step's to rounding (XLA may fuse and reorder operations). False runs every
        step eagerly. Without effect on other backends, and for models and rules that cannot be
        traced, which run eagerly: models without a ``_solver_loss`` (a model written for the
        course), custom update rules, and the steps that record update ratios.

    Attributes
    ----------
    loss_history : list of float
        The loss of every iteration (read back once per check).
    train_acc_history, val_acc_history : list of float
        The accuracies at every check.
    best_val_acc : float; best_params : dict
        The best validation accuracy and the parameters that reached it.
    epoch : int
        Completed epochs.
    learning_rate_history : list of float
        The learning rate used in each epoch.
    update_ratio_history : dict
        Weight name -> ratios, with ``record_update_ratios``.
    diverged_at : int or None
        The first iteration whose loss was not finite; training stopped at the check after it.
    stopped_early : bool
        Whether ``patience`` or a divergence ended training before its last iteration.
    checkpoints : list of str
        The checkpoint files written, oldest first.
    """

    def __init__(self, model, data, *, update_rule="sgd", optim_config=None, lr_decay=1.0, batch_size=100,
                 num_epochs=10, num_train_samples=1000, num_val_samples=None, checkpoint_name=None, print_every=10,
                 verbose=True, num_iters=None, schedule=None, patience=None, l1=0.0, max_norm=None, ema_decay=None,
                 augment=None, callback=None, epoch_callback=None, seed=None, rng=None, restore_best=True,
                 check_ends=True, train_accuracy="sample", record_update_ratios=False, compile=True):
        if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
            raise TypeError(f"model must have a params dict and a loss(X, y=None) method; got {type(model).__name__}")
        self.model = model
        self._set_data(data)
        self.update_rule = get_update_rule(update_rule)
        if optim_config is not None and not isinstance(optim_config, Mapping):
            raise TypeError(f"optim_config must be a dict, got {type(optim_config).__name__}")
        self.optim_config = {k: _python_number(v) for k, v in (optim_config or {}).items()}
        self.lr_decay = as_float(lr_decay, name="lr_decay")
        self.batch_size = None if batch_size is None else as_int(batch_size, name="batch_size")
        self.num_epochs = as_int(num_epochs, name="num_epochs")
        self.num_iters = None if num_iters is None else as_int(num_iters, name="num_iters")
        self.num_train_samples = None if num_train_samples is None else as_int(num_train_samples,
                                                                                name="num_train_samples")
        self.num_val_samples = None if num_val_samples is None else as_int(num_val_samples, name="num_val_samples")
        self.print_every = as_int(print_every, name="print_every")
        self.verbose = bool(verbose)
        self.checkpoint_name = None if checkpoint_name is None else os.fspath(checkpoint_name)
        if self.checkpoint_name is not None:
            from .checkpoint import check_savable

            check_savable(model)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable, schedule(epoch) -> learning rate; got {schedule!r}")
        self.schedule = schedule
        self.patience = None if patience is None else as_int(patience, name="patience")
        if self.patience is not None and self.X_val is None:
            raise ValueError("patience (early stopping) watches the validation accuracy: give data['X_val'] and "
                             "data['y_val']")
        self.l1 = as_float(l1, name="l1", allow_zero=True)
        self.max_norm = None if max_norm is None else as_float(max_norm, name="max_norm")
        self.ema_decay = None if ema_decay is None else as_float(ema_decay, name="ema_decay")
        if self.ema_decay is not None and self.ema_decay >= 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay!r}")
        for name, fn in (("augment", augment), ("callback", callback), ("epoch_callback", epoch_callback)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {fn!r}")
        self.augment, self.callback, self.epoch_callback = augment, callback, epoch_callback
        if train_accuracy not in TRAIN_ACCURACY:
            raise ValueError(f"train_accuracy must be 'sample', 'batch' or None, got {train_accuracy!r}")
        self.train_accuracy = train_accuracy
        self.restore_best, self.check_ends = bool(restore_best), bool(check_ends)
        self.record_update_ratios = bool(record_update_ratios)
        if rng is None:
            bk = getattr(model, "backend", None) or backend.backend_of(self.X_train)
            model_rng = getattr(model, "rng", None) or getattr(model, "_rng", None)
            rng = backend.Generator(seed, xp=bk) if seed is not None or model_rng is None else model_rng
        elif not isinstance(rng, backend.Generator):
            raise TypeError(f"rng must be a backend.Generator, got {type(rng).__name__}")
        self.rng = rng
        solver_loss = getattr(model, "_solver_loss", None)
        if solver_loss is not None:
            self._train_loss = lambda X, y: solver_loss(X, y, self.rng)
            self._score = lambda X: solver_loss(X, None, None)
        else:
            self._train_loss, self._score = model.loss, model.loss
        self._compiled = compiled_step(self, enabled=bool(compile))
        self._reset()

    # ---- data ---------------------------------------------------------------------------------

    def _set_data(self, data) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict with X_train, y_train (and X_val, y_val), got {type(data).__name__}")
        missing = [k for k in ("X_train", "y_train") if k not in data]
        if missing:
            raise ValueError(f"data lacks {', '.join(missing)}; the Solver needs X_train and y_train, and X_val "
                             "with y_val for validation")
        if ("X_val" in data) != ("y_val" in data):
            raise ValueError("data must hold both X_val and y_val, or neither")
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data.get("X_val"), data.get("y_val")
        model = self.model
        pairs = [("train", self.X_train, self.y_train)]
        if self.X_val is not None:
            pairs.append(("val", self.X_val, self.y_val))
        model_bk = getattr(model, "backend", None)
        for split, X, y in pairs:
            for name, a in ((f"data['X_{split}']", X), (f"data['y_{split}']", y)):
                if model_bk is not None:
                    backend.check_on_backend(a, model_bk, name=name, owner="the model", target="model.backend")
            if model_bk is None:
                backend.namespace_and_device(X, y, *model.params.values())
            check_same_length((f"data['X_{split}']", X), (f"data['y_{split}']", y))
            self._validate(X, y, split)
        self._xp, self._device = backend.namespace_and_device(self.X_train)
        floats = [p for p in model.params.values() if self._xp.isdtype(p.dtype, "real floating")]
        self._dtype = floats[0].dtype if floats else None

    def _validate(self, X, y, split: str) -> None:
        names = (f"data['X_{split}']", f"data['y_{split}']")
        check = getattr(self.model, "_check_labelled", None)
        if check is not None:
            check(X, y, names)
            return
        check_data(X, name=names[0], ndim=max(X.ndim, 2))
        check_labels(y, name=names[1], n=X.shape[0], num_classes=getattr(self.model, "num_classes", None))

    def _as_model_dtype(self, X):
        return X if self._dtype is None or X.dtype == self._dtype else self._xp.astype(X, self._dtype)

    # ---- state --------------------------------------------------------------------------------

    def _reset(self) -> None:
        """Set up the book-keeping: histories, one optimizer config per parameter (as the course)."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self._best_state = None
        self.loss_history, self.train_acc_history, self.val_acc_history = [], [], []
        self.learning_rate_history = []
        self.update_ratio_history = {}
        self.diverged_at = None
        self.stopped_early = False
        self.checkpoints = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}
        self.ema_params = dict(self.model.params) if self.ema_decay is not None else None
        self._since_best = 0

    def _set_learning_rate(self, lr: float) -> None:
        for config in self.optim_configs.values():
            config["learning_rate"] = lr

    def _learning_rate(self):
        rates = [c.get("learning_rate") for c in self.optim_configs.values()]
        return rates[0] if rates else None

    # ---- one step -----------------------------------------------------------------------------

    def _step(self, X_batch, y_batch, it: int, *, record_ratio: bool):
        params = self.model.params
        # The compiled step starts from the configs the first eager step filled in (defaults and
        # state arrays); steps that record update ratios run eagerly, once per epoch.
        if self._compiled is not None and it > 0 and not record_ratio:
            loss = self._compiled(X_batch, y_batch)
            before = None
        else:
            loss, grads = self._train_loss(X_batch, y_batch)
            before = {k: self._xp.asarray(w, copy=True) for k, w in params.items() if _is_weight(k, w)} \
                if record_ratio else None
            loss = self._update(params, loss, grads, self.optim_configs)
        if self.ema_params is not None:
            rate = 1.0 - min(self.ema_decay, (1.0 + it) / (10.0 + it))
            for k, w in params.items():
                self.ema_params[k] = iadd(imul(w - self.ema_params[k], rate), self.ema_params[k])
        ratios = {k: update_to_weight_ratio(before[k], params[k]) for k in before} if record_ratio else {}
        return loss, ratios

    def _update(self, params: dict, loss, grads: dict, configs: dict):
        """The update of one step (eager, or traced by :mod:`nets._compile`): L1 into the loss and
        gradients, the rule for every parameter, max-norm. ``params`` and ``configs`` receive the
        new arrays; returns the loss."""
        if self.l1:
            for k, w in params.items():
                if _is_weight(k, w):
                    penalty, dw = l1_penalty(w, self.l1)
                    loss = loss + penalty
                    grads[k] = grads[k] + dw
        for k, w in list(params.items()):
            next_w, configs[k] = self.update_rule(w, grads[k], configs[k])
            if self.max_norm is not None and _is_weight(k, next_w):
                next_w = max_norm(next_w, self.max_norm)
            params[k] = next_w
        return loss

    # ---- accuracy -----------------------------------------------------------------------------

    def _evaluated_params(self):
        return self.ema_params if self.ema_params is not None else self.model.params

    def _device_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Accuracy of the model (its running average with ``ema_decay``) on ``(X, y)``, a 0-d device array."""
        xp = self._xp
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            idx = self.rng.choice(N, (num_samples,))
            X, y = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
        X = self._as_model_dtype(X)
        live = None
        if self.ema_params is not None:
            live = dict(self.model.params)
            self.model.params.update(self.ema_params)
        try:
            predict = getattr(self.model, "_predict", None)
            if predict is not None:
                y_pred = predict(X)
            else:
                chunks = [xp.argmax(self._score(X[i:i + batch_size, ...]), axis=1)
                          for i in range(0, X.shape[0], batch_size)]
                y_pred = chunks[0] if len(chunks) == 1 else xp.concat(chunks)
        finally:
            if live is not None:
                self.model.params.update(live)
        return accuracy(y_pred, y)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100) -> float:
        """Accuracy of the model on ``(X, y)`` as a Python float, as the course's ``check_accuracy``.

        ``num_samples`` examples are drawn (with replacement) when given and fewer than N;
        ``batch_size`` rows are scored at a time for models without their own chunking.
        """
        backend.namespace_and_device(X, y, self.X_train)
        check_same_length(("X", X), ("y", y))
        self._validate(X, y, "check")
        if num_samples is not None:
            num_samples = as_int(num_samples, name="num_samples")
        return float(backend.to_numpy(self._device_accuracy(X, y, num_samples, as_int(batch_size, name="batch_size"))))

    # ---- training -----------------------------------------------------------------------------

    def train(self) -> None:
        """Run the optimization; the histories and best parameters are left in the attributes."""
        xp = self._xp
        X_all, y_all = self.X_train, self.y_train
        N = X_all.shape[0]
        full_batch = self.batch_size is None
        B = N if full_batch else self.batch_size
        per_epoch = 1 if full_batch else max(N // B, 1)
        total = self.num_iters if self.num_iters is not None else self.num_epochs * per_epoch
        self.num_iterations = total
        if self.schedule is not None:
            self._set_learning_rate(_python_number(self.schedule(self.epoch)))
        block_iters = max(1, min(_INDEX_BLOCK, _INDEX_BUDGET // B))
        pending, first_pending, ratios = [], 0, {}
        block = None
        stop = False
        for t in range(total):
            j = t % block_iters
            if full_batch:
                X_batch, y_batch = X_all, y_all
            else:
                if j == 0:
                    block = self.rng.choice(N, (min(block_iters, total - t), B))
                idx = block[j, :]
                X_batch, y_batch = xp.take(X_all, idx, axis=0), xp.take(y_all, idx, axis=0)
            X_batch = self._as_model_dtype(X_batch)
            if self.augment is not None:
                X_batch = self.augment(X_batch, self.rng)
            epoch_end = (t + 1) % per_epoch == 0
            loss, step_ratios = self._step(X_batch, y_batch, t, record_ratio=self.record_update_ratios and epoch_end)
            ratios.update(step_ratios)
            pending.append(loss)
            if self.callback is not None:
                self.callback(t, loss)
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {total}) loss: {float(backend.to_numpy(loss)):f}")
            if epoch_end:
                self.epoch += 1
                self.learning_rate_history.append(self._learning_rate())
                if self.schedule is not None:
                    self._set_learning_rate(_python_number(self.schedule(self.epoch)))
                elif self.lr_decay != 1.0:
                    for config in self.optim_configs.values():
                        config["learning_rate"] = config.get("learning_rate", 1e-2) * self.lr_decay
            if epoch_end or (self.check_ends and t in (0, total - 1)):
                stop = self._check(pending, first_pending, X_batch, y_batch, ratios, last=t == total - 1)
                pending, first_pending, ratios = [], t + 1, {}
                if stop:
                    break
        if pending:  # losses after the last check (check_ends=False and a partial last epoch)
            self._read(pending, first_pending, [])
        if self.restore_best and self.best_params:
            self.model.params.update(self.best_params)
            if self._best_state:
                self.model._restore_state(self._best_state)

    def _read(self, losses, first: int, extra: list) -> list:
        """Read ``losses`` and ``extra`` (0-d device arrays) back in one transfer; record the losses
        and the first non-finite one. Returns the host values of ``extra``."""
        xp = self._xp
        values = losses + extra
        if not values:
            return []
        values = [v if hasattr(v, "dtype") and hasattr(v, "shape") else xp.asarray(v, device=self._device)
                  for v in values]
        # One dtype for the stack: float64 when any value has it (the accuracies, where the device can).
        dt = next((v.dtype for v in values if v.dtype == xp.float64), values[0].dtype)
        host = backend.to_numpy(xp.stack([xp.astype(xp.reshape(v, ()), dt) for v in values])).tolist()
        host_losses = host[: len(losses)]
        self.loss_history.extend(host_losses)
        if self.diverged_at is None:
            bad = next((i for i, v in enumerate(host_losses) if not math.isfinite(v)), None)
            if bad is not None:
                self.diverged_at = first + bad
        return host[len(losses):]

    def _check(self, losses, first: int, X_batch, y_batch, ratios: dict, *, last: bool) -> bool:
        """The per-epoch check: accuracies, the one host read, divergence, best model, checkpoint,
        early stopping. Returns whether to stop."""
        extra, names = [], []
        if self.train_accuracy == "sample":
            extra.append(self._device_accuracy(self.X_train, self.y_train, self.num_train_samples))
            names.append("train")
        elif self.train_accuracy == "batch":
            extra.append(self._device_accuracy(X_batch, y_batch))
            names.append("train")
        if self.X_val is not None:
            extra.append(self._device_accuracy(self.X_val, self.y_val, self.num_val_samples))
            names.append("val")
        ratio_keys = list(ratios)
        extra += [ratios[k] for k in ratio_keys]
        host = dict(zip(names + [f"ratio/{k}" for k in ratio_keys], self._read(losses, first, extra), strict=True))
        if "train" in host:
            self.train_acc_history.append(host["train"])
        for k in ratio_keys:
            self.update_ratio_history.setdefault(k, []).append(host[f"ratio/{k}"])
        if self.diverged_at is not None:
            self.stopped_early = not last
            if self.verbose:
                print(f"(Iteration {self.diverged_at + 1}) the loss is not finite: training diverged, stopping "
                      "(try a smaller learning rate)")
            return True
        if "val" in host:
            val_acc = host["val"]
            self.val_acc_history.append(val_acc)
            if val_acc > self.best_val_acc:
                self.best_val_acc = val_acc
                self.best_params = {k: self._xp.asarray(v, copy=True) for k, v in self._evaluated_params().items()}
                # The running statistics that scored it too (batch norm): they are new arrays at
                # every step, so keeping the references keeps their values.
                state = getattr(self.model, "_checkpoint_state", None)
                self._best_state = state() if state is not None else None
                self._since_best = 0
            else:
                self._since_best += 1
        if self.checkpoint_name is not None:
            self._save_checkpoint()
        if self.verbose and ("train" in host or "val" in host):
            parts = ([f"train acc: {host['train']:f}"] if "train" in host else []) + \
                ([f"val_acc: {host['val']:f}"] if "val" in host else [])
            print(f"(Epoch {self.epoch} / {self._total_epochs()}) {'; '.join(parts)}")
        if self.epoch_callback is not None:
            self.epoch_callback(self)
        if self.patience is not None and self._since_best >= self.patience and not last:
            self.stopped_early = True
            if self.verbose:
                print(f"(Epoch {self.epoch}) no better validation accuracy in {self.patience} checks: stopping early "
                      f"(best {self.best_val_acc:f})")
            return True
        return False

    def _total_epochs(self):
        if self.num_iters is None:
            return self.num_epochs
        N = self.X_train.shape[0]
        per_epoch = 1 if self.batch_size is None else max(N // self.batch_size, 1)
        return self.num_iters // per_epoch

    def _save_checkpoint(self) -> None:
        from .checkpoint import save_model

        path = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"
        live = None
        if self.ema_params is not None:
            live = dict(self.model.params)
            self.model.params.update(self.ema_params)
        try:
            save_model(path, self.model, hyperparams={
                "update_rule": getattr(self.update_rule, "__name__", "custom"), "lr_decay": self.lr_decay,
                "batch_size": self.batch_size, "epoch": self.epoch, "num_train_samples": self.num_train_samples,
                "num_val_samples": self.num_val_samples, "learning_rate": _python_number(self._learning_rate())},
                history={"loss_history": self.loss_history, "train_acc_history": self.train_acc_history,
                         "val_acc_history": self.val_acc_history})
        finally:
            if live is not None:
                self.model.params.update(live)
        self.checkpoints.append(path)


def _python_number(value):
    """NumPy (or other) scalars as Python numbers, so hyperparameters never change an array's dtype."""
    if isinstance(value, (bool, int, float)) or value is None or hasattr(value, "shape") and value.shape != ():
        return value
    if hasattr(value, "__index__"):
        return int(value)
    if hasattr(value, "__float__"):
        return float(value)
    return value
