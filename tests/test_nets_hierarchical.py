"""The hierarchical softmax from features: the dense loss's values and gradients, numerical
gradients in float64 on every backend, and the work it does (no (N, C) array)."""

import tracemalloc

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.classifiers import eval_numerical_gradient_array, rel_error
from xpml.nets.losses import (
    ClassTree,
    hierarchical_softmax_loss,
    hierarchical_softmax_loss_from_features,
    softmax_loss,
)

from .test_nets_losses import TREE, _tree_log_probs

NAMES = ("X", "W_groups", "b_groups", "W_classes", "b_classes")


def _problem(N=9, D=3, seed=0, labels=None):
    rs = np.random.default_rng(seed)
    G, C = TREE.num_groups, TREE.num_classes
    arrays = (rs.standard_normal((N, D)), rs.standard_normal((D, G)), rs.standard_normal(G),
              rs.standard_normal((D, C)), rs.standard_normal(C))
    y = rs.integers(0, C, N) if labels is None else np.asarray(labels)
    return arrays, y


def _dense_scores(X, Wg, bg, Wc, bc):
    return np.concatenate([X @ Wg + bg, X @ Wc + bc], axis=1)


@pytest.mark.parametrize("labels", [None, [0, 3, 4, 7, 7, 0, 4, 3, 0]], ids=["all-groups", "groups-without-examples"])
def test_the_same_loss_and_gradients_as_the_dense_scores(bk, labels):
    host, yh = _problem(labels=labels)
    args = [bk.asarray(a, dtype=bk.xp.float64) for a in host]
    y = bk.asarray(yh)
    loss, grads = hierarchical_softmax_loss_from_features(*args, y, TREE)
    assert_placement(loss, backend=bk, dtype=bk.xp.float64, shape=())
    for g, a in zip(grads, host, strict=True):
        assert_placement(g, backend=bk, dtype=bk.xp.float64, shape=a.shape)
    # The flat softmax on the tree's log-probabilities (the oracle) gives the same loss.
    x = _dense_scores(*host)
    logp = _tree_log_probs(x)
    np.testing.assert_allclose(backend.to_numpy(loss), -logp[np.arange(len(yh)), yh].mean(), rtol=1e-12)
    flat, _ = softmax_loss(logp, yh)
    np.testing.assert_allclose(backend.to_numpy(loss), flat, rtol=1e-12)
    for i in range(0, len(yh), 4):  # example by example: each log-probability, not only their mean
        one, _ = hierarchical_softmax_loss_from_features(args[0][i:i + 1, :], *args[1:], y[i:i + 1], TREE)
        np.testing.assert_allclose(backend.to_numpy(one), -logp[i, yh[i]], rtol=1e-12)
    # The gradients: the dense loss's dx through the linear layer by the chain rule.
    _, dx = hierarchical_softmax_loss(x, yh, TREE)
    G = TREE.num_groups
    X, Wg, _, Wc, _ = host
    expected = (dx[:, :G] @ Wg.T + dx[:, G:] @ Wc.T, X.T @ dx[:, :G], dx[:, :G].sum(0), X.T @ dx[:, G:],
                dx[:, G:].sum(0))
    for name, g, e in zip(NAMES, grads, expected, strict=True):
        np.testing.assert_allclose(backend.to_numpy(g), e, rtol=1e-12, atol=1e-15, err_msg=name)
    if labels is not None:  # group 2 (class 2) has no example: its column gets no gradient
        assert not backend.to_numpy(grads[3])[:, 2].any() and backend.to_numpy(grads[4])[2] == 0.0


def test_numerical_gradients_in_float64(bk):
    host, yh = _problem(N=5, seed=1)
    args = [bk.asarray(a, dtype=bk.xp.float64) for a in host]
    y = bk.asarray(yh)
    _, grads = hierarchical_softmax_loss_from_features(*args, y, TREE)
    one = bk.asarray(1.0, dtype=bk.xp.float64)
    for k, name in enumerate(NAMES):
        def f(v, k=k):
            return hierarchical_softmax_loss_from_features(*args[:k], v, *args[k + 1:], y, TREE)[0]
        num = eval_numerical_gradient_array(f, args[k], one)
        assert rel_error(grads[k], num) < 1e-6, name


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_work_is_of_order_sqrt_classes_per_example():
    # 900 classes in 30 groups of 30, few features: the dense scores (N, C) would be larger than
    # everything the loss from features needs (N (G + S) D, the weights and their gradients).
    N, D, G, S = 256, 2, 30, 30
    C = G * S
    tree = ClassTree([list(range(g * S, (g + 1) * S)) for g in range(G)])
    rs = np.random.default_rng(0)
    arrays = (rs.standard_normal((N, D)), rs.standard_normal((D, G)), rs.standard_normal(G),
              rs.standard_normal((D, C)), rs.standard_normal(C))
    y = rs.integers(0, C, N)
    hierarchical_softmax_loss_from_features(*arrays, y, tree)  # tables built outside the count
    dense = N * C * 8
    budget = 3 * 8 * (N * (G + S) * D + C * D)  # float64, a few arrays of each size
    assert budget < dense
    peak = _peak_bytes(lambda: hierarchical_softmax_loss_from_features(*arrays, y, tree))
    assert peak < budget, (peak, budget)
    # The count sees the dense path's (N, C) arrays: the test would catch them.
    x = _dense_scores(*arrays)
    assert _peak_bytes(lambda: hierarchical_softmax_loss(x, y, tree)) > dense


def test_shapes_that_do_not_fit_the_tree_are_refused(bk):
    host, yh = _problem()
    args = [bk.asarray(a, dtype=bk.xp.float64) for a in host]
    y = bk.asarray(yh)
    with pytest.raises(ValueError, match=r"W_classes must have shape \(3, 8\)"):
        hierarchical_softmax_loss_from_features(*args[:3], args[3][:, :5], args[4], y, TREE)
    with pytest.raises(ValueError, match=r"y must have shape \(9,\)"):
        hierarchical_softmax_loss_from_features(*args, y[:4], TREE)
