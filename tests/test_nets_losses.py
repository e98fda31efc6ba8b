"""The losses of nets.losses: gradient checks in float64 on every backend, naive oracles, the tree
against the flat softmax, and a clear error for each bad input."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers import (
    LinearSVM,
    eval_numerical_gradient_array,
    rel_error,
    svm_loss_naive,
    svm_loss_vectorized,
)
from xpml.nets import layers
from xpml.nets.losses import ClassTree, attribute_loss, hierarchical_softmax_loss, l2_penalty, softmax_loss, svm_loss


def _scores(bk, N=6, C=5, seed=0):
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((N, C))
    y = rs.integers(0, C, N)
    return x, y, bk.asarray(x, dtype=bk.xp.float64), bk.asarray(y)


def _host(v):
    return np.asarray(v) if isinstance(v, (float, np.ndarray, np.generic)) else backend.to_numpy(v)


def _near(actual, desired, *, rtol, atol=0.0):
    """Values of a device array against a host reference (placement is asserted separately)."""
    np.testing.assert_allclose(_host(actual), _host(desired), rtol=rtol, atol=atol)


def _check_gradient(bk, fn, x_host, *args, **kwargs):
    """The analytic dx of ``fn(x, *args)`` against central differences, in float64."""
    x = bk.asarray(x_host, dtype=bk.xp.float64)
    loss, dx = fn(x, *args, **kwargs)
    assert_placement(loss, backend=bk, dtype=bk.xp.float64, shape=())
    assert_placement(dx, backend=bk, dtype=bk.xp.float64, shape=tuple(x.shape))
    num = eval_numerical_gradient_array(lambda v: fn(v, *args, **kwargs)[0], x, bk.asarray(1.0, dtype=bk.xp.float64))
    assert rel_error(dx, num) < 1e-6  # central differences: a wrong gradient is off by 1e-2 or more
    return loss, dx


def test_the_course_names_still_live_in_layers():
    assert layers.svm_loss is svm_loss and layers.softmax_loss is softmax_loss


@pytest.mark.parametrize("squared", [False, True])
def test_svm_gradients(bk, squared):
    x, _, _, y = _scores(bk)
    _check_gradient(bk, svm_loss, x, y, squared=squared)


def test_squared_hinge_by_its_formula(bk):
    x, yh, xd, y = _scores(bk, seed=3)
    margins = np.maximum(0, x - x[np.arange(len(yh)), yh][:, None] + 1)
    margins[np.arange(len(yh)), yh] = 0
    loss, _ = svm_loss(xd, y, squared=True)
    _near(loss, np.sum(margins**2) / len(yh), rtol=1e-12)


@pytest.mark.parametrize("reg", [0.0, 0.2])
def test_squared_hinge_naive_and_vectorized_agree(bk, reg):
    gen = backend.Generator(2, xp=bk)
    W, X, y = gen.normal((5, 4), dtype="float64"), gen.normal((7, 5), dtype="float64"), gen.integers(0, 4, (7,))
    loss_n, dW_n = svm_loss_naive(W, X, y, reg, squared=True)
    loss_v, dW_v = svm_loss_vectorized(W, X, y, reg, squared=True)
    assert_placement(dW_v, like=W)
    assert_close(loss_v, loss_n, rtol=1e-12)
    assert_close(dW_v, dW_n, rtol=1e-12, atol=1e-12)
    assert abs(float(loss_v) - float(svm_loss_vectorized(W, X, y, reg)[0])) > 1e-3  # not the plain hinge


def test_the_linear_svm_trains_on_the_squared_hinge(bk):
    gen = backend.Generator(0, xp=bk)
    X = gen.normal((60, 4), dtype="float64")
    y = gen.integers(0, 3, (60,))
    hinge, squared = LinearSVM(), LinearSVM(loss="squared_hinge")
    hinge.train(X, y, num_iters=3, batch_size=20)
    squared.train(X, y, num_iters=3, batch_size=20)
    W = hinge.W
    assert_close(squared.loss(X, y, 0.1)[0], svm_loss_vectorized(W * 0 + squared.W, X, y, 0.1, squared=True)[0],
                 rtol=1e-12)
    with pytest.raises(ValueError, match="squared_hinge"):
        LinearSVM(loss="l2")


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_softmax_gradients_with_labels_and_soft_targets(bk, temperature):
    x, _, _, y = _scores(bk)
    _check_gradient(bk, softmax_loss, x, y, temperature=temperature)
    soft = np.random.default_rng(1).random(x.shape)
    soft = bk.asarray(soft / soft.sum(axis=1, keepdims=True), dtype=bk.xp.float64)
    _check_gradient(bk, softmax_loss, x, soft, temperature=temperature)


def test_one_hot_soft_targets_are_the_labels(bk):
    x, yh, xd, y = _scores(bk, seed=4)
    onehot = bk.asarray(np.eye(x.shape[1])[yh], dtype=bk.xp.float64)
    for t in (1.0, 2.5):
        hard, dhard = softmax_loss(xd, y, temperature=t)
        soft, dsoft = softmax_loss(xd, onehot, temperature=t)
        assert_close(soft, hard, rtol=1e-12)
        assert_close(dsoft, dhard, rtol=1e-12, atol=1e-15)
    # The temperature divides the scores: the loss at T of x is the plain loss of x / T.
    assert_close(softmax_loss(xd, y, temperature=2.5)[0], softmax_loss(xd * (1 / 2.5), y)[0], rtol=1e-12)


def test_soft_targets_and_temperature_refuse_bad_values(bk):
    _, _, x, y = _scores(bk, N=2, C=3)
    for bad in ([[0.5, 0.6, -0.1], [0.2, 0.3, 0.5]], [[0.5, 0.2, 0.2], [0.2, 0.3, 0.5]]):
        with pytest.raises(ValueError, match="probability rows"):
            softmax_loss(x, bk.asarray(np.array(bad), dtype=bk.xp.float64))
    with pytest.raises(ValueError, match="shape of the scores"):
        softmax_loss(x, bk.asarray(np.full((2, 4), 0.25), dtype=bk.xp.float64))
    for t in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="temperature must be a positive"):
            softmax_loss(x, y, temperature=t)


def _attributes(bk, N=5, C=4, seed=0):
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((N, C)) * 2
    a = np.where(rs.random((N, C)) < 0.5, -1, 1)
    return x, a


def test_attribute_loss_by_the_notes_formula_and_its_gradient(bk):
    x, a = _attributes(bk)
    loss, _ = _check_gradient(bk, attribute_loss, x, bk.asarray(a))
    naive = sum(max(0.0, 1 - a[i, j] * x[i, j]) for i in range(x.shape[0]) for j in range(x.shape[1])) / x.shape[0]
    _near(loss, naive, rtol=1e-12)


def test_attributes_must_be_plus_or_minus_one(bk):
    x, a = _attributes(bk)
    a[0, 0] = 0
    with pytest.raises(ValueError, match=r"\+1 .* or -1"):
        attribute_loss(bk.asarray(x, dtype=bk.xp.float64), bk.asarray(a))
    with pytest.raises(ValueError, match="same shape"):
        attribute_loss(bk.asarray(x, dtype=bk.xp.float64), bk.asarray(a[:, :2]))


TREE = ClassTree([[3, 0], [5, 1, 6], [2], [4, 7]])


def _tree_scores(N=7, seed=0):
    rs = np.random.default_rng(seed)
    return rs.standard_normal((N, TREE.num_groups + TREE.num_classes)), rs.integers(0, TREE.num_classes, N)


def _tree_log_probs(x):
    """log P(c) by the definition, one class at a time (the oracle)."""
    G = TREE.num_groups
    out = np.empty((x.shape[0], TREE.num_classes))
    lpg = x[:, :G] - np.log(np.exp(x[:, :G]).sum(axis=1, keepdims=True))
    for g, members in enumerate(TREE.groups):
        s = x[:, [G + c for c in members]]
        lp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        for k, c in enumerate(members):
            out[:, c] = lpg[:, g] + lp[:, k]
    return out


def test_the_tree_is_the_flat_softmax_of_its_probabilities(bk):
    x, yh = _tree_scores()
    xd, y = bk.asarray(x, dtype=bk.xp.float64), bk.asarray(yh)
    logp = _tree_log_probs(x)
    loss, _ = hierarchical_softmax_loss(xd, y, TREE)
    flat, _ = softmax_loss(bk.asarray(logp, dtype=bk.xp.float64), y)
    assert_placement(loss, backend=bk, dtype=bk.xp.float64, shape=())
    assert_close(loss, flat, rtol=1e-12)
    _near(loss, -logp[np.arange(len(yh)), yh].mean(), rtol=1e-12)
    got = TREE.log_probabilities(xd)
    assert_placement(got, backend=bk, dtype=bk.xp.float64, shape=logp.shape)
    _near(got, logp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(backend.to_numpy(got)).sum(axis=1), 1.0, rtol=1e-12)


def test_hierarchical_softmax_gradient(bk):
    x, yh = _tree_scores(seed=1)
    _check_gradient(bk, hierarchical_softmax_loss, x, bk.asarray(yh), TREE)


def test_a_class_tree_holds_each_class_once():
    assert TREE.num_classes == 8 and TREE.num_groups == 4 and TREE.width == 3 and TREE.group_of[6] == 1
    for bad, words in (([[0, 1], [1, 2]], "repeated \\[1\\]"), ([[0, 2]], "missing \\[1\\]"),
                       ([[0], []], "empty"), ([[0, 1], [5]], "out of range \\[5\\]")):
        with pytest.raises(ValueError, match=words):
            ClassTree(bad)
    with pytest.raises(TypeError):
        ClassTree([[0, 1.5]])
    with pytest.raises(ValueError, match="shape \\(N, G \\+ C\\)"):
        hierarchical_softmax_loss(np.zeros((2, 8)), np.zeros(2, dtype=np.int64), TREE)


def test_l2_penalty(bk):
    W = bk.asarray(np.arange(6.0).reshape(2, 3), dtype=bk.xp.float64)
    loss, dW = l2_penalty(W, 0.5)
    assert_placement(dW, like=W)
    _near(loss, 0.5 * 55.0, rtol=1e-15)
    _near(dW, np.arange(6.0).reshape(2, 3), rtol=1e-15)
