"""
Loss curves and accuracies while training
=========================================

The notes read training from two pictures: the loss per iteration (too high a learning rate
plateaus or explodes, too low decays slowly) and the training and validation accuracies per
epoch (a gap between them is overfitting). :class:`xpml.nets.Solver` records both.
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

histories = {}
for lr in (1e-4, 1e-3, 1e-2):
    model = nets.FullyConnectedNet([100, 100], input_dim=64, num_classes=10, init="he", reg=1e-4, seed=0)
    solver = nets.Solver(model, data, update_rule="adam", optim_config={"learning_rate": lr},
                         num_epochs=6, batch_size=100, verbose=False, seed=0)
    solver.train()
    histories[lr] = solver
    print(f"learning rate {lr:g}: best validation accuracy {solver.best_val_acc:.3f}")

# %%
# The loss of every minibatch, and the accuracies at the end of every epoch.

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
for lr, solver in histories.items():
    ax_loss.plot(solver.loss_history, lw=0.8, label=f"lr {lr:g}")
    (line,) = ax_acc.plot(solver.val_acc_history, label=f"val, lr {lr:g}")
    ax_acc.plot(solver.train_acc_history, ls="--", color=line.get_color(), label=f"train, lr {lr:g}")
ax_loss.set(xlabel="iteration", ylabel="loss", yscale="log", title="Training loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
ax_loss.legend()
ax_acc.legend(fontsize=8)
fig.tight_layout()
