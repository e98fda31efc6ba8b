"""
First-layer filters of a two-layer net
======================================

Each hidden unit of a net's first layer has one weight per input pixel: drawn as an image, the
weights show what the unit responds to. Before training they are noise; after training on the
digits they are strokes and blobs, the digits' parts. The notes show the same for CIFAR-10,
where a well-trained net's filters are smooth and a badly trained one's stay noisy.
:func:`xpml.nets.diagnostics.first_layer_images` tiles them into one picture.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from xpml import nets
from xpml.nets.diagnostics import first_layer_images

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32) / 16.0
order = np.random.default_rng(0).permutation(len(y))
X, y = X[order], y[order]
X = X - X[:1500].mean(axis=0)

net = nets.TwoLayerNet(64, 49, 10, init="he", seed=0)
before = first_layer_images(net.params["W1"], image_shape=(8, 8, 1))
history = net.train(X[:1500], y[:1500], X[1500:], y[1500:], learning_rate=0.5, learning_rate_decay=0.99,
                    reg=1e-3, num_iters=1500, batch_size=100)
after = first_layer_images(net.params["W1"], image_shape=(8, 8, 1))
print(f"validation accuracy {history['val_acc_history'][-1]:.3f}")

# %%
# The 49 hidden units' weights, each as an 8x8 image scaled to its own range.

fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
for ax, grid, title in zip(axes, (before, after), ("before training", "after training"), strict=True):
    ax.imshow(np.asarray(grid)[:, :, 0], cmap="gray")
    ax.set(title=title, xticks=[], yticks=[])
fig.tight_layout()
