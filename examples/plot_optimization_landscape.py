"""
Optimization: the loss landscape and three strategies
=====================================================

The optimization chapter of the notes looks at the multiclass SVM loss of a linear classifier as
a function of its weights ``W``. Along a random line, ``L(W + a W1)`` is piecewise linear and
convex; over a random plane, ``L(W + a W1 + b W2)`` is a bowl. The chapter then compares three
ways down the bowl: random search (draw many ``W``, keep the best), random local search (try a
random step, keep it if the loss drops) and following the gradient, and shows how the step size
decides how far one gradient step gets. Here on the digits (64 pixels and a bias, 10 classes);
the same functions, in :mod:`xpml.nets.landscape`, reproduce the CIFAR-10 figures with
``scripts/reproduce_optimization.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from xpml import backend, nets
from xpml.classifiers import append_bias
from xpml.nets import landscape

X, y = load_digits(return_X_y=True)
X = append_bias(X.astype(np.float32) / 16.0)  # pixels in [0, 1], then the bias trick: (N, 65)
order = np.random.default_rng(0).permutation(len(y))
X, y = X[order], y[order]
X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]
D, C = X.shape[1], 10
rng = backend.Generator(0)


def test_accuracy(W):
    return float(nets.accuracy(np.argmax(X_test @ W, axis=1), y_test))


# %%
# The landscape
# -------------
# A random W and two random directions; the loss of every point of the line and of a 41 x 41
# grid of the plane is computed in batched passes (no Python loop per point).

W = rng.normal((D, C), scale=0.01)
W1, W2 = rng.normal((D, C), scale=0.1), rng.normal((D, C), scale=0.1)
alphas = np.linspace(-4, 4, 81)
line = landscape.loss_along_line(X_train, y_train, W, W1, alphas)
grid = np.linspace(-4, 4, 41)
plane = landscape.loss_over_plane(X_train, y_train, W, W1, W2, grid, grid)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
ax0.plot(alphas, line)
ax0.set_xlabel("a")
ax0.set_ylabel("loss")
ax0.set_title("L(W + a W1): along a line")
im = ax1.imshow(plane, origin="lower", extent=(grid[0], grid[-1], grid[0], grid[-1]), cmap="jet")
ax1.contour(grid, grid, plane, levels=12, colors="k", linewidths=0.5)
ax1.set_xlabel("b")
ax1.set_ylabel("a")
ax1.set_title("L(W + a W1 + b W2): over a plane")
fig.colorbar(im, ax=ax1)
fig.tight_layout()

# %%
# Three strategies
# ----------------
# Random search draws 1000 weight matrices; random local search takes 1000 random steps from a
# random start and keeps those that lower the loss; gradient descent takes 1000 steps down the
# analytic gradient. The curves: the best loss so far of random search, the loss of the other two
# after (local search) or before (gradient) each step.

tries = 1000
W_rs, rs_losses = landscape.random_search(X_train, y_train, num_classes=C, tries=tries, scale=0.01, rng=rng)
W0 = rng.normal((D, C), scale=0.01)
W_ls, ls_losses = landscape.random_local_search(X_train, y_train, W0, steps=tries, step_size=0.01, rng=rng)
W_gd, gd_losses = landscape.follow_gradient(X_train, y_train, W0, steps=tries, step_size=0.05)
curves = {
    "random search": np.minimum.accumulate(rs_losses),
    "random local search": ls_losses,
    "following the gradient": gd_losses,
}
finals = {"random search": W_rs, "random local search": W_ls, "following the gradient": W_gd}

fig, ax0 = plt.subplots(figsize=(6, 4))
for name, losses in curves.items():
    ax0.plot(np.arange(1, tries + 1), losses, label=f"{name} ({test_accuracy(finals[name]):.0%} test)")
    print(f"{name}: loss {losses[-1]:.3f}, test accuracy {test_accuracy(finals[name]):.1%}")
ax0.set_xscale("log")
ax0.set_xlabel("try / step")
ax0.set_ylabel("training loss")
ax0.set_title("Three strategies")
ax0.legend()
fig.tight_layout()

# %%
# The step size
# -------------
# From the random start, the loss after one gradient step of each size: too small a step barely
# moves, too large a step overshoots the bottom of the bowl and the loss grows again.

step_sizes = [10.0**k for k in range(-4, 3)]
loss0, after = landscape.step_size_table(X_train, y_train, W0, step_sizes)
print(f"loss before the step: {float(loss0):.3f}")
for s, v in zip(step_sizes, after, strict=True):
    print(f"  step size {s:.0e}: loss {v:.3f}")
fig, ax1 = plt.subplots(figsize=(6, 4))
ax1.semilogx(step_sizes, after, "o-", label="after one step")
ax1.axhline(float(loss0), color="gray", linestyle="--", label="before")
ax1.set_xlabel("step size")
ax1.set_ylabel("loss")
ax1.set_title("One gradient step")
ax1.legend()
fig.tight_layout()
