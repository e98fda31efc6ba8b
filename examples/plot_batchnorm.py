"""
Batch normalization: training a deeper net
==========================================

A net of six layers initialized with small weights barely trains: the activations shrink layer
after layer and the gradients with them. Batch normalization after each hidden affine layer
rescales the activations to zero mean and unit variance, and the same net trains quickly, as in
assignment 2's comparison.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from xpml import nets

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32) / 16.0
order = np.random.default_rng(0).permutation(len(y))
X, y = X[order], y[order]
X = X - X[:1500].mean(axis=0)
data = {"X_train": X[:1500], "y_train": y[:1500], "X_val": X[1500:], "y_val": y[1500:]}

solvers = {}
for normalization in (None, "batchnorm"):
    model = nets.FullyConnectedNet([100] * 5, input_dim=64, num_classes=10, normalization=normalization,
                                   weight_scale=2e-2, seed=0)
    solver = nets.Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                         num_epochs=8, batch_size=50, verbose=False, seed=0)
    solver.train()
    solvers[normalization or "none"] = solver
    print(f"normalization {normalization}: best validation accuracy {solver.best_val_acc:.3f}")

# %%
# Loss, training accuracy and validation accuracy, with and without batch normalization.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for name, solver in solvers.items():
    axes[0].plot(solver.loss_history, lw=0.6, label=name)
    axes[1].plot(solver.train_acc_history, "-o", ms=3, label=name)
    axes[2].plot(solver.val_acc_history, "-o", ms=3, label=name)
for ax, title in zip(axes, ("training loss", "training accuracy", "validation accuracy"), strict=True):
    ax.set(title=title, xlabel="epoch" if ax is not axes[0] else "iteration")
    ax.legend(title="normalization")
fig.tight_layout()
