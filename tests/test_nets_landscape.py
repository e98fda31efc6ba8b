"""The optimization chapter: batched landscapes equal a loop over points, the three strategies do
what the notes say, seeded runs agree across backends."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.classifiers import softmax_loss_vectorized, svm_loss_vectorized
from xpml.nets import landscape

ORACLE = {"svm": svm_loss_vectorized, "softmax": softmax_loss_vectorized}


def _problem(bk, N=12, D=5, C=3, seed=0):
    gen = backend.Generator(seed, xp=bk)
    return (gen.normal((N, D), dtype="float64"), gen.integers(0, C, (N,)), gen.normal((D, C), dtype="float64"),
            gen.normal((D, C), dtype="float64"), gen.normal((D, C), dtype="float64"))


def _host(v):
    return backend.to_numpy(v)


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_line_and_plane_equal_a_loop_over_points(bk, loss):
    X, y, W, W1, W2 = _problem(bk)
    alphas, betas = [-1.0, -0.25, 0.0, 0.5, 2.0], [-0.5, 0.0, 1.5]
    line = landscape.loss_along_line(X, y, W, W1, alphas, loss=loss, reg=0.1)
    assert_placement(line, backend=bk, dtype=bk.xp.float64, shape=(5,))
    want = [float(ORACLE[loss](W + a * W1, X, y, 0.1)[0]) for a in alphas]
    np.testing.assert_allclose(_host(line), want, rtol=1e-12)
    # A budget of one point per chunk gives the same numbers.
    plane = landscape.loss_over_plane(X, y, W, W1, W2, alphas, betas, loss=loss, reg=0.1, memory_budget=1)
    assert_placement(plane, backend=bk, dtype=bk.xp.float64, shape=(5, 3))
    want = [[float(ORACLE[loss](W + a * W1 + b * W2, X, y, 0.1)[0]) for b in betas] for a in alphas]
    np.testing.assert_allclose(_host(plane), want, rtol=1e-12)


def test_the_three_strategies(bk):
    X, y, W, _, _ = _problem(bk, N=30, seed=1)
    # Random search: the best of the tries, and the same draws on every backend.
    best, losses = landscape.random_search(X, y, num_classes=3, tries=25, scale=0.5, chunk=10,
                                           rng=backend.Generator(7, xp=bk))
    assert_placement(best, backend=bk, dtype=bk.xp.float64, shape=(5, 3))
    assert_placement(losses, backend=bk, dtype=bk.xp.float64, shape=(25,))
    h = _host(losses)
    np.testing.assert_allclose(float(svm_loss_vectorized(best, X, y, 0.0)[0]), h.min(), rtol=1e-12)
    ref_best, ref_losses = landscape.random_search(*map(_host, (X, y)), num_classes=3, tries=25, scale=0.5,
                                                   chunk=10, rng=backend.Generator(7))
    np.testing.assert_allclose(h, ref_losses, rtol=1e-10)
    # Local search: never worse, and it moved.
    W_end, hist = landscape.random_local_search(X, y, W, steps=40, step_size=0.3, chunk=16,
                                                rng=backend.Generator(3, xp=bk))
    hh = _host(hist)
    assert hh.shape == (40,) and np.all(np.diff(hh) <= 0) and hh[-1] < float(svm_loss_vectorized(W, X, y, 0.0)[0])
    np.testing.assert_allclose(float(svm_loss_vectorized(W_end, X, y, 0.0)[0]), hh[-1], rtol=1e-12)
    # Following the gradient: softmax descends steadily with a small step.
    _, g = landscape.follow_gradient(X, y, W, steps=20, step_size=0.05, loss="softmax", reg=0.01)
    gh = _host(g)
    assert gh.shape == (20,) and np.all(np.diff(gh) < 0)
    _, gb = landscape.follow_gradient(X, y, W, steps=5, step_size=0.05, batch_size=8, rng=backend.Generator(0, xp=bk))
    assert_placement(gb, backend=bk, dtype=bk.xp.float64, shape=(5,))


def test_step_size_table(bk):
    X, y, W, _, _ = _problem(bk, seed=2)
    steps = [1e-3, 1e-2, 1e-1, 1.0]
    loss0, table = landscape.step_size_table(X, y, W, steps, loss="softmax", reg=0.1)
    _, dW = softmax_loss_vectorized(W, X, y, 0.1)
    want = [float(softmax_loss_vectorized(W - s * dW, X, y, 0.1)[0]) for s in steps]
    np.testing.assert_allclose(_host(table), want, rtol=1e-12)
    assert _host(table)[0] < float(loss0)  # a small step along the negative gradient descends


def test_bad_input():
    X, y, W = np.zeros((4, 3)), np.zeros(4, dtype=np.int64), np.zeros((3, 2))
    with pytest.raises(ValueError, match="loss must be one of"):
        landscape.loss_along_line(X, y, W, W, [0.0], loss="hinge")
    with pytest.raises(ValueError, match="W \\(D, C\\)"):
        landscape.loss_along_line(X, y, np.zeros((2, 2)), W, [0.0])
    with pytest.raises(ValueError, match="rng="):
        landscape.follow_gradient(X, y, W, batch_size=2)
