"""The Solver of CS231n assignment 2: the one training loop, for every model of xpml.

The model is a :class:`nets.model.Model` (every model of xpml is one; a model written for the
course, with only ``params`` and ``loss``, is wrapped in :class:`nets.model.CourseModel`). The
update is a :class:`nets.rules.Chain`: the rule named by ``update_rule`` after the
``transforms`` (L2, L1, max-norm, averaging). The loop keeps the device busy and the host out:

- minibatch indices are drawn for up to 1000 iterations at a time, on the device, from a
  :class:`backend.Generator` (the same seed gives the same run on every backend);
- losses stay 0-d device arrays, read back once per check together with the accuracies; that
  read is where a non-finite loss is noticed (``diverged_at``);
- the Solver holds the only reference to the optimizer state and to the gradients, so the update
  writes in place where the namespace allows it (one fused pass per rule); on JAX each step is
  one compiled function (:mod:`nets._compile`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_same_length
from ._compile import compiled_step
from ._model import as_float, as_int
from .diagnostics import update_to_weight_ratio
from .metrics import accuracy
from .model import CourseModel, Model
from .rules import CourseRule, Rule, chain, check_learning_rate, get_rule, is_weight

__all__ = ["Checkpoints", "Solver"]

# Iterations whose minibatch indices are drawn in one call, and the most indices one block may hold.
_INDEX_BLOCK = 1000
_INDEX_BUDGET = 2**20
# Rows scored at once by the accuracy checks of training.
_SCORE_ROWS = 1024
TRAIN_ACCURACY = ("sample", "batch", None)


@dataclass(frozen=True)
class Checkpoints:
    """Where and when the Solver saves the model: ``{prefix}_epoch_{epoch}.npz`` every ``every``
    epochs (:func:`nets.save_model`; the averaged parameters where the transforms average).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import Checkpoints, FullyConnectedNet, Solver
    >>> Checkpoints("run", every=2)
    Checkpoints(prefix='run', every=2)
    >>> X = np.random.default_rng(0).standard_normal((40, 2))
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> net = FullyConnectedNet([4], input_dim=2, num_classes=2, seed=0)
    >>> solver = Solver(net, {"X_train": X, "y_train": y}, num_epochs=2, batch_size=20, verbose=False,
    ...                 checkpoint=Checkpoints("run"))
    >>> solver.train()
    >>> solver.checkpoints
    ['run_epoch_0.npz', 'run_epoch_1.npz', 'run_epoch_2.npz']
    """

    prefix: str
    every: int = 1

    def __post_init__(self):
        object.__setattr__(self, "prefix", os.fspath(self.prefix))
        as_int(self.every, name="every")


class Solver:
    """Train a classification model by minibatch gradient descent, as the course's ``Solver``.

    Parameters
    ----------
    model
        A :class:`nets.model.Model`, or a course-style object with ``params`` and ``loss(X, y=None)``.
    data : dict
        ``X_train`` (N, ...), ``y_train`` (N,) and, optionally (both or neither), ``X_val``, ``y_val``.
    update_rule : str, Rule or callable, keyword-only
        A name of :data:`nets.rules.RULES` (or the course's ``sgd_momentum``, ``nesterov_momentum``),
        a :class:`nets.rules.Rule`, or a course rule ``rule(w, dw, config) -> (next_w, config)``.
    optim_config : dict, keyword-only
        ``learning_rate`` (default the rule's) and the rule's hyperparameters (``momentum``, ...).
    lr_decay : float, keyword-only
        Factor applied to the learning rate after each epoch.
    batch_size : int or None; num_epochs : int; num_iters : int, keyword-only
        Examples per minibatch (drawn with replacement; None: the whole set); epochs to train, of
        ``max(N // batch_size, 1)`` iterations; or a number of iterations instead.
    num_train_samples, num_val_samples : int or None, keyword-only
        Examples drawn for the per-epoch accuracies; None uses all of them.
    checkpoint_name : str; checkpoint : Checkpoints, keyword-only
        Save the model after every check (the course's ``checkpoint_name``), or as the policy says.
    print_every : int; verbose : bool, keyword-only
        Print progress as the course does (each printed loss is a read-back).
    schedule : callable, keyword-only
        ``schedule(epoch) -> learning rate`` (:mod:`nets.schedules`); replaces ``lr_decay``.
    patience : int, keyword-only
        Stop when the validation accuracy has not improved for this many checks.
    transforms : sequence, keyword-only
        :func:`nets.rules.l2`, :func:`~nets.rules.l1`, :func:`~nets.rules.max_norm`,
        :func:`~nets.rules.averaging`, chained before the rule. With averaging, the average is
        what is evaluated, kept as best, restored and saved.
    augment : callable; callback : callable; epoch_callback : callable, keyword-only
        ``augment(X_batch, rng) -> X_batch`` on every minibatch; ``callback(it, loss)`` after
        every update (the loss a 0-d device array); ``epoch_callback(solver)`` after every check.
    seed : int; rng : backend.Generator, keyword-only
        The generator of minibatches and dropout masks; default the model's own ``rng``.
    restore_best, check_ends : bool, keyword-only
        Put the best parameters back at the end; also check after the first and last iteration.
    train_accuracy : {"sample", "batch", None}, keyword-only
        Training accuracy on ``num_train_samples`` examples, on the last minibatch, or none.
    record_update_ratios : bool, keyword-only
        Record ``||update|| / ||W||`` of every weight at the last step of each epoch.
    compile : bool, keyword-only
        On JAX, run each step (loss, gradients, update) as one compiled function; the learning
        rate and step count are inputs, so schedules do not recompile.
    check_data : bool, keyword-only
        Check the data's values (finite, labels in range) once; False when the caller did.
    distill : nets.distill.Distillation, keyword-only
        Train the model as a student of a teacher: on every minibatch (after augmentation) the
        teacher's softened probabilities are computed on the device and the model's loss becomes
        :func:`nets.losses.distillation_loss` (labels and teacher, weighted by ``alpha``).

    Notes
    -----
    On NumPy, CuPy and PyTorch the update writes into the arrays of ``model.params`` (as the
    course's rules did): a reference taken before training sees the new values; copy it to keep
    the old ones. ``best_params`` and the averaged parameters are copies.

    Attributes
    ----------
    loss_history, train_acc_history, val_acc_history, learning_rate_history : list of float
    best_val_acc : float; best_params : dict; epoch : int
    optimizer : nets.rules.Chain; optimizer_state : dict
    averaged_params : dict or None
    update_ratio_history : dict; diverged_at : int or None; stopped_early : bool
    checkpoints : list of str

    Examples
    --------
    A small net learns which side of a line 40 points lie on, checked on 10 held-out points:

    >>> import numpy as np
    >>> from xpml.nets import FullyConnectedNet, Solver
    >>> X = np.random.default_rng(0).standard_normal((50, 2))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    >>> net = FullyConnectedNet([8], input_dim=2, num_classes=2, weight_scale=0.5, seed=0)
    >>> solver = Solver(net, {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]},
    ...                 update_rule="adam", optim_config={"learning_rate": 0.05}, num_epochs=10,
    ...                 batch_size=20, verbose=False)
    >>> solver.train()
    >>> len(solver.loss_history), solver.epoch
    (20, 10)
    >>> solver.loss_history[-1] < solver.loss_history[0]
    True
    >>> solver.best_val_acc, solver.check_accuracy(X, y)
    (1.0, 0.94)
    """

    def __init__(self, model, data, *, update_rule="sgd", optim_config=None, lr_decay=1.0, batch_size=100,
                 num_epochs=10, num_train_samples=1000, num_val_samples=None, checkpoint_name=None, print_every=10,
                 verbose=True, num_iters=None, schedule=None, patience=None, transforms=(), checkpoint=None,
                 augment=None, callback=None, epoch_callback=None, seed=None, rng=None, restore_best=True,
                 check_ends=True, train_accuracy="sample", record_update_ratios=False, compile=True,
                 check_data=True, distill=None):
        self.model = model
        self._impl = model if isinstance(model, Model) else CourseModel(model)
        self._set_data(data, check=bool(check_data))
        self.optimizer, self.learning_rate = _optimizer(update_rule, optim_config, transforms)
        self.lr_decay = as_float(lr_decay, name="lr_decay")
        self.batch_size = None if batch_size is None else as_int(batch_size, name="batch_size")
        self.num_epochs = as_int(num_epochs, name="num_epochs")
        self.num_iters = None if num_iters is None else as_int(num_iters, name="num_iters")
        self.num_train_samples = None if num_train_samples is None else as_int(num_train_samples,
                                                                                name="num_train_samples")
        self.num_val_samples = None if num_val_samples is None else as_int(num_val_samples, name="num_val_samples")
        self.print_every, self.verbose = as_int(print_every, name="print_every"), bool(verbose)
        if checkpoint_name is not None and checkpoint is None:
            checkpoint = Checkpoints(checkpoint_name)
        if checkpoint is not None:
            from .checkpoint import check_savable

            check_savable(model)
        self.checkpoint = checkpoint
        self.patience = None if patience is None else as_int(patience, name="patience")
        if self.patience is not None and self.X_val is None:
            raise InputError("patience (early stopping) watches the validation accuracy: give data['X_val'] and "
                             "data['y_val']")
        for name, fn in (("schedule", schedule), ("augment", augment), ("callback", callback),
                         ("epoch_callback", epoch_callback)):
            if fn is not None and not callable(fn):
                raise InputTypeError(f"{name} must be callable, got {fn!r}")
        self.schedule, self.augment, self.callback, self.epoch_callback = schedule, augment, callback, epoch_callback
        if train_accuracy not in TRAIN_ACCURACY:
            raise InputError(f"train_accuracy must be 'sample', 'batch' or None, got {train_accuracy!r}")
        self.train_accuracy = train_accuracy
        self.restore_best, self.check_ends = bool(restore_best), bool(check_ends)
        self.record_update_ratios = bool(record_update_ratios)
        if rng is None:
            rng = self._impl.rng if seed is None and self._impl.rng is not None else backend.Generator(
                seed, xp=self._impl.backend or backend.backend_of(self.X_train))
        elif not isinstance(rng, backend.Generator):
            raise InputTypeError(f"rng must be a backend.Generator, got {type(rng).__name__}")
        self.rng = rng
        if distill is not None:
            from .distill import Distillation

            if not isinstance(distill, Distillation):
                raise InputTypeError(f"distill must be a nets.distill.Distillation(teacher, temperature=, alpha=), got "
                                f"{type(distill).__name__}")
            if isinstance(self._impl, CourseModel):
                raise InputTypeError("distillation needs a nets.Model (its loss_and_grads takes DistillationTargets); "
                                f"{type(model).__name__} only has the course's loss(X, y)")
            distill.check(self._impl, self.X_train)
        self.distill = distill
        self._compiled = compiled_step(self, enabled=bool(compile))
        self._reset()

    # ---- data ---------------------------------------------------------------------------------

    def _set_data(self, data, *, check: bool) -> None:
        if not isinstance(data, Mapping):
            raise InputTypeError(
                f"data must be a dict with X_train, y_train (and X_val, y_val), got {type(data).__name__}"
            )
        missing = [k for k in ("X_train", "y_train") if k not in data]
        if missing:
            raise InputError(f"data lacks {', '.join(missing)}; the Solver needs X_train and y_train, and X_val "
                             "with y_val for validation")
        if ("X_val" in data) != ("y_val" in data):
            raise InputError("data must hold both X_val and y_val, or neither")
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data.get("X_val"), data.get("y_val")
        splits = [("train", self.X_train, self.y_train)] + ([("val", self.X_val, self.y_val)] if
                                                            self.X_val is not None else [])
        for split, X, y in splits:
            self._validate(X, y, (f"data['X_{split}']", f"data['y_{split}']"), check=check)
        self._xp, self._device = backend.namespace_and_device(self.X_train)
        floats = [p for p in self._impl.params.values() if self._xp.isdtype(p.dtype, "real floating")]
        self._dtype = floats[0].dtype if floats else None

    def _validate(self, X, y, names, *, check: bool = True) -> None:
        bk = self._impl.backend
        for name, a in zip(names, (X, y), strict=True):
            if bk is not None:
                backend.check_on_backend(a, bk, name=name, owner="the model", target="model.backend")
        if bk is None:
            backend.namespace_and_device(X, y, *self._impl.params.values())
        check_same_length((names[0], X), (names[1], y))
        if check:
            self._impl.validate(X, y, names=names)

    def _as_model_dtype(self, X):
        return X if self._dtype is None or X.dtype == self._dtype else self._xp.astype(X, self._dtype)

    # ---- state --------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.epoch = 0
        self.best_val_acc, self.best_params, self._best_state = 0.0, {}, None
        self.loss_history, self.train_acc_history, self.val_acc_history = [], [], []
        self.learning_rate_history, self.update_ratio_history = [], {}
        self.diverged_at, self.stopped_early, self.checkpoints = None, False, []
        self.optimizer_state = self.optimizer.init(self._impl.params)
        self._since_best = 0

    @property
    def averaged_params(self):
        """The running average of the parameters (with :func:`nets.rules.averaging`), else None.

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.nets import FullyConnectedNet, Solver
        >>> from xpml.nets.rules import averaging
        >>> X = np.random.default_rng(0).standard_normal((40, 2))
        >>> y = (X[:, 0] > 0).astype(np.int64)
        >>> net = FullyConnectedNet([4], input_dim=2, num_classes=2, seed=0)
        >>> data = {"X_train": X, "y_train": y}
        >>> Solver(net, data, verbose=False).averaged_params is None
        True
        >>> solver = Solver(net, data, num_epochs=2, batch_size=20, verbose=False, transforms=[averaging(0.9)])
        >>> solver.train()
        >>> {name: p.shape for name, p in solver.averaged_params.items()}
        {'W1': (2, 4), 'b1': (4,), 'W2': (4, 2), 'b2': (2,)}
        """
        return self.optimizer.averaged(self.optimizer_state)

    def _evaluated_params(self) -> dict:
        return self.averaged_params or self._impl.params

    # ---- one step -----------------------------------------------------------------------------

    def _step(self, X, y, *, record_ratio: bool):
        impl, params = self._impl, self._impl.params
        if self._compiled is not None and not record_ratio:
            return self._compiled(X, y, self.learning_rate), {}
        before = {k: self._xp.asarray(w, copy=True) for k, w in params.items() if is_weight(k, w)} \
            if record_ratio else None
        loss, grads, state = impl.loss_and_grads(params, X, y, state=impl.state, rng=self.rng, training=True)
        penalty = self.optimizer.penalty(params)
        if penalty is not None:
            loss = loss + penalty
        # The Solver holds the only references to the gradients and the optimizer state, and
        # writes the model's parameters, so the update may work in place.
        new, self.optimizer_state = self.optimizer.update(grads, self.optimizer_state, params,
                                                          self.learning_rate, in_place=True)
        params.update(new)
        impl.state = state
        ratios = {k: update_to_weight_ratio(before[k], params[k]) for k in before} if record_ratio else {}
        return loss, ratios

    # ---- accuracy -----------------------------------------------------------------------------

    def _device_accuracy(self, X, y, num_samples=None, batch_size=_SCORE_ROWS):
        """Accuracy on ``(X, y)`` of the evaluated parameters, a 0-d device array."""
        xp = self._xp
        if num_samples is not None and X.shape[0] > num_samples:
            idx = self.rng.choice(X.shape[0], (num_samples,))
            X, y = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
        X = self._as_model_dtype(X)
        params, state = self._evaluated_params(), self._impl.state
        n = X.shape[0]
        chunks = [xp.argmax(self._impl.scores(params, X[i:min(i + batch_size, n), ...], state=state), axis=1)
                  for i in range(0, n, batch_size)]
        return accuracy(chunks[0] if len(chunks) == 1 else xp.concat(chunks), y)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100) -> float:
        """Accuracy on ``(X, y)`` as a Python float, as the course's ``check_accuracy``."""
        backend.namespace_and_device(X, y, self.X_train)
        self._validate(X, y, ("X", "y"))
        num_samples = None if num_samples is None else as_int(num_samples, name="num_samples")
        acc = self._device_accuracy(X, y, num_samples, as_int(batch_size, name="batch_size"))
        return float(backend.to_numpy(acc))

    # ---- training -----------------------------------------------------------------------------

    def train(self) -> None:
        """Run the optimization; the histories and best parameters are left in the attributes."""
        xp, X_all, y_all = self._xp, self.X_train, self.y_train
        N = X_all.shape[0]
        B = N if self.batch_size is None else self.batch_size
        per_epoch = 1 if self.batch_size is None else max(N // B, 1)
        total = self.num_iters if self.num_iters is not None else self.num_epochs * per_epoch
        self.num_iterations = total
        if self.schedule is not None:
            self._set_learning_rate(self.schedule(self.epoch))
        block_iters = max(1, min(_INDEX_BLOCK, _INDEX_BUDGET // B))
        pending, first_pending, ratios, block = [], 0, {}, None
        for t in range(total):
            if self.batch_size is None:
                X_batch, y_batch = X_all, y_all
            else:
                if t % block_iters == 0:
                    block = self.rng.choice(N, (min(block_iters, total - t), B))
                idx = block[t % block_iters, :]
                X_batch, y_batch = xp.take(X_all, idx, axis=0), xp.take(y_all, idx, axis=0)
            X_batch = self._as_model_dtype(X_batch)
            if self.augment is not None:
                X_batch = self.augment(X_batch, self.rng)
            epoch_end = (t + 1) % per_epoch == 0
            # The teacher sees the very (augmented) minibatch the student sees.
            targets = y_batch if self.distill is None else self.distill.targets(X_batch, y_batch)
            loss, step_ratios = self._step(X_batch, targets, record_ratio=self.record_update_ratios and epoch_end)
            ratios.update(step_ratios)
            pending.append(loss)
            if self.callback is not None:
                self.callback(t, loss)
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {total}) loss: {float(backend.to_numpy(loss)):f}")
            if epoch_end:
                self.epoch += 1
                self.learning_rate_history.append(self.learning_rate)
                if self.schedule is not None:
                    self._set_learning_rate(self.schedule(self.epoch))
                else:
                    self.learning_rate *= self.lr_decay
            if epoch_end or (self.check_ends and t in (0, total - 1)):
                stop = self._check(pending, first_pending, X_batch, y_batch, ratios, last=t == total - 1)
                pending, first_pending, ratios = [], t + 1, {}
                if stop:
                    break
        if pending:  # losses after the last check (check_ends=False and a partial last epoch)
            self._read(pending, first_pending, [])
        if self.restore_best and self.best_params:
            self._impl.params.update({k: xp.asarray(v, copy=True) for k, v in self.best_params.items()})
            if self._best_state is not None:
                self._impl.state = self._best_state

    def _set_learning_rate(self, value) -> None:
        self.learning_rate = check_learning_rate(_python_number(value), what="the schedule's learning rate")

    def _read(self, losses, first: int, extra: list) -> list:
        """Read ``losses`` and ``extra`` (0-d device arrays) back in one transfer; record the losses
        and the first non-finite one. Returns the host values of ``extra``."""
        xp = self._xp
        values = [v if hasattr(v, "dtype") else xp.asarray(v, device=self._device) for v in losses + extra]
        if not values:
            return []
        dt = next((v.dtype for v in values if v.dtype == xp.float64), values[0].dtype)
        host = backend.to_numpy(xp.stack([xp.astype(xp.reshape(v, ()), dt) for v in values])).tolist()
        self.loss_history.extend(host[: len(losses)])
        if self.diverged_at is None:
            bad = next((i for i, v in enumerate(host[: len(losses)]) if not math.isfinite(v)), None)
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
        keys = list(ratios)
        host = dict(zip(names + [f"ratio/{k}" for k in keys], self._read(losses, first, extra + [ratios[k] for k in
                                                                                             keys]), strict=True))
        if "train" in host:
            self.train_acc_history.append(host["train"])
        for k in keys:
            self.update_ratio_history.setdefault(k, []).append(host[f"ratio/{k}"])
        if self.diverged_at is not None:
            self.stopped_early = not last
            if self.verbose:
                print(f"(Iteration {self.diverged_at + 1}) the loss is not finite: training diverged, stopping "
                      "(try a smaller learning rate)")
            return True
        if "val" in host:
            self.val_acc_history.append(host["val"])
            if host["val"] > self.best_val_acc:
                self.best_val_acc = host["val"]
                # Copies: the update writes the live parameters in place.
                self.best_params = {k: self._xp.asarray(v, copy=True) for k, v in self._evaluated_params().items()}
                self._best_state = dict(self._impl.state)
                self._since_best = 0
            else:
                self._since_best += 1
        if self.checkpoint is not None and self.epoch % self.checkpoint.every == 0:
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
        per_epoch = 1 if self.batch_size is None else max(self.X_train.shape[0] // self.batch_size, 1)
        return self.num_iters // per_epoch

    def _save_checkpoint(self) -> None:
        from .checkpoint import save_model

        path = f"{self.checkpoint.prefix}_epoch_{self.epoch}.npz"
        save_model(path, self.model, params=self._evaluated_params(), state=self._impl.state, hyperparams={
            "update_rule": self.optimizer.rule.name, "lr_decay": self.lr_decay, "batch_size": self.batch_size,
            "epoch": self.epoch, "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples, "learning_rate": self.learning_rate},
            history={"loss_history": self.loss_history, "train_acc_history": self.train_acc_history,
                     "val_acc_history": self.val_acc_history})
        self.checkpoints.append(path)


def _optimizer(update_rule, optim_config, transforms):
    """``(chain, learning rate)`` from the course's ``update_rule`` and ``optim_config`` and the transforms."""
    if optim_config is not None and not isinstance(optim_config, Mapping):
        raise InputTypeError(f"optim_config must be a dict, got {type(optim_config).__name__}")
    hyper = {k: _python_number(v) for k, v in (optim_config or {}).items()}
    lr = hyper.pop("learning_rate", None)
    if isinstance(update_rule, Rule):
        if hyper:
            raise InputError(f"optim_config sets {sorted(hyper)}, but the rule {update_rule!r} is built already: "
                             "give only learning_rate")
        rule = update_rule
    elif callable(update_rule):
        rule = CourseRule(update_rule, hyper)
    else:
        rule = get_rule(update_rule, **hyper)
    lr = rule.default_learning_rate if lr is None else check_learning_rate(lr, what="optim_config['learning_rate']")
    if isinstance(transforms, (str, bytes)) or not hasattr(transforms, "__iter__"):
        raise InputTypeError(f"transforms must be a sequence such as [rules.l2(1e-4)], got {transforms!r}")
    return chain(*transforms, rule), lr


def _python_number(value):
    """NumPy (or other) scalars as Python numbers, so hyperparameters never change an array's dtype."""
    if isinstance(value, (bool, int, float)) or value is None or hasattr(value, "shape") and value.shape != ():
        return value
    if hasattr(value, "__index__"):
        return int(value)
    if hasattr(value, "__float__"):
        return float(value)
    return value
