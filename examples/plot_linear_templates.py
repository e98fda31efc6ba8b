"""
Linear classifiers: the learned templates
=========================================

A linear classifier scores class ``c`` as ``x @ W[:, c]``: each column of ``W`` is a template
matched against the image. Trained on the digits, the templates of the multiclass SVM and of the
softmax classifier look like blurred digits, as the CIFAR-10 templates in the notes look like
blurred cars and horses.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from xpml.classifiers import LinearSVM, Softmax

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32) / 16.0
order = np.random.default_rng(0).permutation(len(y))
X, y = X[order], y[order]
X_train, y_train, X_val, y_val = X[:1500], y[:1500], X[1500:], y[1500:]
mean = X_train.mean(axis=0)  # subtract the training mean, as the notes do
X_train, X_val = X_train - mean, X_val - mean

models = {"SVM": LinearSVM(seed=0), "softmax": Softmax(seed=0)}
settings = {"SVM": dict(learning_rate=0.1, reg=1e-3), "softmax": dict(learning_rate=1.0, reg=1e-4)}
for name, model in models.items():
    model.train(X_train, y_train, num_iters=1500, batch_size=200, **settings[name])
    print(f"{name}: validation accuracy {np.mean(model.predict(X_val) == y_val):.3f}")

# %%
# Each column of ``W`` as an 8x8 picture, scaled to its own range.

fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
for row, (name, model) in zip(axes, models.items(), strict=True):
    W = np.asarray(model.W)  # (64, 10)
    for c, ax in enumerate(row):
        template = W[:, c].reshape(8, 8)
        ax.imshow(template, cmap="gray", vmin=template.min(), vmax=template.max())
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(c), fontsize=9)
    row[0].set_ylabel(name)
fig.tight_layout()
