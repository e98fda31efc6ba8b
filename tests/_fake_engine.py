"""A stand-in for ``xpml.nets.FullyConnectedNet`` and ``Solver`` (the course's API), used by the
benchmark's smoke test only while the real ones are not in ``xpml.nets``.

It checks that the benchmark calls that API as the course documents it (constructor keywords,
``Solver(model, data, **kwargs).train()``, ``loss_history``, ``best_val_acc``, ``model.loss(X)``
for scores), not any maths: it trains the last layer only, without batch normalization.
"""

import numpy as np

from xpml import backend


class FullyConnectedNet:
    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout_keep_ratio=1,
                 normalization=None, reg=0.0, weight_scale=1e-2, dtype=None, seed=None, xp=None):
        bk = backend.as_backend(xp)
        g = backend.Generator(seed, xp=bk)
        dims = [input_dim, *hidden_dims, num_classes]
        self.xp, self.reg, self.num_layers = bk.xp, reg, len(dims) - 1
        self.params = {}
        for i, (m, n) in enumerate(zip(dims[:-1], dims[1:], strict=True), start=1):
            self.params[f"W{i}"] = g.normal((m, n), scale=weight_scale, dtype=dtype)
            self.params[f"b{i}"] = bk.xp.zeros((n,), dtype=self.params[f"W{i}"].dtype, device=bk.device)
            if normalization == "batchnorm" and i < self.num_layers:
                self.params[f"gamma{i}"] = bk.xp.ones((n,), dtype=self.params[f"W{i}"].dtype, device=bk.device)
                self.params[f"beta{i}"] = bk.xp.zeros((n,), dtype=self.params[f"W{i}"].dtype, device=bk.device)

    def loss(self, X, y=None):
        xp, L = self.xp, self.num_layers
        a = X
        for i in range(1, L):
            a = xp.maximum(a @ self.params[f"W{i}"] + self.params[f"b{i}"], 0.0)
        scores = a @ self.params[f"W{L}"] + self.params[f"b{L}"]
        if y is None:
            return scores
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(X.shape[0])
        loss = -np.log(p[rows, y]).mean()
        p[rows, y] -= 1.0
        grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        grads[f"W{L}"] = a.T @ p / X.shape[0]
        grads[f"b{L}"] = p.sum(axis=0) / X.shape[0]
        return loss, grads


class Solver:
    def __init__(self, model, data, **kwargs):
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule = kwargs.pop("update_rule", "sgd")
        self.optim_config = kwargs.pop("optim_config", {})
        self.lr_decay = kwargs.pop("lr_decay", 1.0)
        self.batch_size = kwargs.pop("batch_size", 100)
        self.num_epochs = kwargs.pop("num_epochs", 10)
        self.num_train_samples = kwargs.pop("num_train_samples", 1000)
        self.num_val_samples = kwargs.pop("num_val_samples", None)
        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = kwargs.pop("print_every", 10)
        self.verbose = kwargs.pop("verbose", True)
        if kwargs:
            raise ValueError(f"Unrecognized arguments {', '.join(kwargs)}")
        self.loss_history, self.train_acc_history, self.val_acc_history = [], [], []
        self.best_val_acc, self.best_params = 0.0, {}

    def check_accuracy(self, X, y):
        return float((np.argmax(self.model.loss(X), axis=1) == y).mean())

    def train(self):
        N = self.X_train.shape[0]
        per_epoch = max(N // self.batch_size, 1)
        lr = self.optim_config.get("learning_rate", 1e-2)
        rng = np.random.default_rng(0)
        for t in range(self.num_epochs * per_epoch):
            idx = rng.choice(N, self.batch_size)
            loss, grads = self.model.loss(self.X_train[idx], self.y_train[idx])
            for k, g in grads.items():
                self.model.params[k] = self.model.params[k] - lr * g
            self.loss_history.append(float(loss))
            if (t + 1) % per_epoch == 0:
                lr *= self.lr_decay
                self.val_acc_history.append(self.check_accuracy(self.X_val, self.y_val))
                if self.val_acc_history[-1] > self.best_val_acc:
                    self.best_val_acc = self.val_acc_history[-1]
                    self.best_params = dict(self.model.params)
        self.model.params = self.best_params or self.model.params
