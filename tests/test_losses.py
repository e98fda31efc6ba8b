"""SVM and softmax losses: naive = vectorized, analytic = numerical gradients, the course's sanity numbers."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers import (
    eval_numerical_gradient,
    grad_check_sparse,
    rel_error,
    softmax_loss_naive,
    softmax_loss_vectorized,
    svm_loss_naive,
    svm_loss_vectorized,
)

LOSSES = {
    "svm": (svm_loss_naive, svm_loss_vectorized),
    "softmax": (softmax_loss_naive, softmax_loss_vectorized),
}


def _problem(bk, dtype_name="float64", N=8, D=5, C=4, scale=1.0, seed=0):
    gen = backend.Generator(seed, xp=bk)
    W = scale * gen.normal((D, C), dtype=dtype_name)
    X = gen.normal((N, D), dtype=dtype_name)
    y = gen.integers(0, C, (N,))
    return W, X, y


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_naive_and_vectorized_agree(bk, dtype_name, name, reg):
    naive, vectorized = LOSSES[name]
    W, X, y = _problem(bk, dtype_name)
    loss_n, grad_n = naive(W, X, y, reg)
    loss_v, grad_v = vectorized(W, X, y, reg)
    assert_placement(loss_v, backend=bk, dtype=W.dtype, shape=())
    assert_placement(grad_v, like=W)
    rtol = 1e-5 if dtype_name == "float32" else 1e-12
    assert_close(loss_v, loss_n, rtol=rtol)
    assert_close(grad_v, grad_n, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reg", [0.0, 0.5])
def test_analytic_gradient_matches_numerical(bk, name, reg):
    _, vectorized = LOSSES[name]
    W, X, y = _problem(bk, "float64", N=6, D=4, C=3, seed=1)
    _, grad = vectorized(W, X, y, reg)
    numeric = eval_numerical_gradient(lambda w: vectorized(w, X, y, reg)[0], W)
    assert rel_error(grad, numeric) < 1e-7
    errs = grad_check_sparse(lambda w: vectorized(w, X, y, reg)[0], W, grad, num_checks=5)
    assert max(errs) < 1e-7


@pytest.mark.parametrize("name", LOSSES)
def test_naive_gradients_match_numerical(bk, name):
    naive, _ = LOSSES[name]
    W, X, y = _problem(bk, "float64", N=4, D=3, C=3, seed=2)
    _, grad = naive(W, X, y, 0.1)
    numeric = eval_numerical_gradient(lambda w: naive(w, X, y, 0.1)[0], W)
    assert rel_error(grad, numeric) < 1e-7


def test_course_sanity_numbers(bk):
    # With W ~ 0.0001 randn all scores are ~0: softmax gives p = 1/C, SVM margins are all ~delta.
    C = 10
    W, X, y = _problem(bk, "float32", N=50, D=20, C=C, scale=1e-4)
    assert float(softmax_loss_vectorized(W, X, y, 0.0)[0]) == pytest.approx(math.log(C), rel=1e-2)
    assert float(svm_loss_vectorized(W, X, y, 0.0)[0]) == pytest.approx(C - 1, rel=1e-2)


def test_regularization_convention():
    # reg * sum(W * W) with gradient 2 reg W: with X = 0 only the penalty remains (plus constants).
    nb = backend.get_backend("numpy")
    W = nb.asarray([[1.0, -2.0], [0.5, 3.0]])
    X = nb.asarray(np.zeros((3, 2)))
    y = nb.asarray([0, 1, 1])
    for fn in (f for pair in LOSSES.values() for f in pair):
        base, _ = fn(W * 0, X, y, 0.0)
        loss, grad = fn(W, X, y, 0.7)
        assert float(loss - base) == pytest.approx(0.7 * 14.25)
        np.testing.assert_allclose(backend.to_numpy(grad), 2 * 0.7 * backend.to_numpy(W))


def test_softmax_is_stable_for_huge_scores(bk):
    W, X, y = _problem(bk, "float32", scale=1e4)
    loss, grad = softmax_loss_vectorized(W, X, y, 0.0)
    assert math.isfinite(float(loss))
    assert bool(bk.xp.all(bk.xp.isfinite(grad)))
    loss_n, _ = softmax_loss_naive(W, X, y, 0.0)
    assert float(loss) == pytest.approx(float(loss_n), rel=1e-4)


@pytest.mark.parametrize("name", LOSSES)
def test_bad_inputs(name):
    naive, vectorized = LOSSES[name]
    nb = backend.get_backend("numpy")
    W, X, y = _problem(nb)
    strict = backend.get_backend("array_api_strict")
    cases = [
        ((W, strict.asarray(backend.to_numpy(X)), y, 0.1), backend.BackendMismatchError, "namespaces"),
        ((W, X[:, :3], y, 0.1), ValueError, "features"),
        ((W, X, y[:5], 0.1), ValueError, "labels"),
        ((W, X, y + 4, 0.1), ValueError, "out of range"),
        ((W, X, nb.xp.astype(y, nb.xp.float64), 0.1), TypeError, "integer"),
        ((W, X * np.nan, y, 0.1), ValueError, "NaN"),
        ((W, X[:0, :], y[:0], 0.1), ValueError, "empty"),
        ((W, X, y, -1.0), ValueError, "reg"),
        ((W, nb.xp.astype(X, nb.xp.float32), y, 0.1), TypeError, "dtype"),
        ((W[:, 0], X, y, 0.1), ValueError, "dimensions"),
    ]
    for fn in (naive, vectorized):
        for args, err, match in cases:
            with pytest.raises(err, match=match):
                fn(*args)
