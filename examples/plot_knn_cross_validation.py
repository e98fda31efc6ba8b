"""
k-nearest neighbours: choosing k by cross-validation
=====================================================

The notes choose kNN's ``k`` by 5-fold cross-validation: split the training set into five folds,
predict each fold from the other four, and plot the accuracy of every fold for every ``k``, with
the mean and standard deviation. :func:`xpml.classifiers.knn_cross_validate` finds each fold's
neighbours once, for the largest ``k``, and votes among the first ``k`` of them for every other
``k``: the same predictions as ``KNearestNeighbor.predict(X_val, k)``, at the cost of one search.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from xpml.classifiers import KNearestNeighbor, knn_cross_validate

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32) / 16.0
# The digits come ordered by collection, not by class; shuffle once so every fold sees all writers.
order = np.random.default_rng(0).permutation(len(y))
X, y = X[order], y[order]
X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]

k_choices = [1, 3, 5, 8, 10, 12, 15, 20, 50, 100]
accuracies = knn_cross_validate(X_train, y_train, k_choices=k_choices, num_folds=5)

# %%
# Every fold's accuracy as a point, the mean and standard deviation as a line with error bars,
# as in the notes' figure.

fig, ax = plt.subplots(figsize=(6, 4))
for k in k_choices:
    ax.scatter([k] * len(accuracies[k]), accuracies[k], color="tab:blue", s=12)
means = np.array([np.mean(accuracies[k]) for k in k_choices])
stds = np.array([np.std(accuracies[k]) for k in k_choices])
ax.errorbar(k_choices, means, yerr=stds, color="tab:orange")
ax.set(xscale="log", xlabel="k", ylabel="cross-validation accuracy", title="Cross-validation on k")
fig.tight_layout()

# %%
# The best k, trained on the whole training set and measured once on the test set:

best_k = k_choices[int(np.argmax(means))]
knn = KNearestNeighbor().train(X_train, y_train)
test_accuracy = float(np.mean(knn.predict(X_test, k=best_k) == y_test))
print(f"best k = {best_k}: test accuracy {test_accuracy:.3f}")
