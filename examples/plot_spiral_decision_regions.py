"""
The spiral: a linear classifier and a two-layer net
====================================================

The notes' toy problem: three arms of a spiral, which no linear classifier separates. A softmax
classifier draws three straight wedges; a two-layer net with 100 ReLU units bends its decision
boundaries around the arms.
"""

import matplotlib.pyplot as plt
import numpy as np

from xpml import nets
from xpml.classifiers import Softmax, make_spiral

X, y = make_spiral(100, 3, seed=0)  # 300 points in the plane, float32
X, y = np.asarray(X), np.asarray(y)

linear = Softmax(seed=0)
linear.train(X, y, learning_rate=1.0, reg=1e-3, num_iters=200, batch_size=300)
net = nets.TwoLayerNet(2, 100, 3, init="he", seed=0)
net.train(X, y, learning_rate=1.0, learning_rate_decay=1.0, reg=1e-3, num_iters=2000, batch_size=None)

for name, model in (("softmax", linear), ("two-layer net", net)):
    print(f"{name}: training accuracy {np.mean(np.asarray(model.predict(X)) == y):.2f}")

# %%
# Each model's prediction on a grid over the plane, with the points on top.

xx, yy = np.meshgrid(np.linspace(-1.1, 1.1, 200), np.linspace(-1.1, 1.1, 200))
grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (name, model) in zip(axes, (("softmax", linear), ("two-layer net", net)), strict=True):
    regions = np.asarray(model.predict(grid)).reshape(xx.shape)
    ax.contourf(xx, yy, regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap="Spectral", alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="Spectral", edgecolors="k", linewidths=0.3)
    ax.set(title=name, xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal")
fig.tight_layout()
