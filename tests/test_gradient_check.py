"""The numerical-gradient oracle: exact on known functions, on every backend, and x restored."""

import math

import array_api_compat
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_equal, assert_placement
from xpml.classifiers import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error


def _x(bk, dtype="float64"):
    return bk.asarray([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]], dtype=getattr(bk.xp, dtype))


def test_gradient_of_a_cubic(bk):
    xp = bk.xp
    x = _x(bk)
    before = xp.asarray(x, copy=True)
    grad = eval_numerical_gradient(lambda v: xp.sum(v ** 3 + 2 * v), x)
    assert_close(grad, 3 * x ** 2 + 2, rtol=1e-8)
    assert_equal(x, before)


def test_verbose_prints_each_coordinate(capsys):
    x = backend.get_backend("numpy").asarray([1.0, 2.0])
    eval_numerical_gradient(lambda v: (v * v).sum(), x, verbose=True)
    assert capsys.readouterr().out.splitlines()[0].startswith("(0,) 2.0")


def test_course_idiom_f_ignores_its_argument(bk):
    # f reads the parameter it closes over; the in-place perturbation of x is what it sees.
    xp = bk.xp
    W = _x(bk)
    if not array_api_compat.is_writeable_array(W):
        pytest.skip(f"{bk.label} arrays cannot be written: f must compute from its argument there")
    grad = eval_numerical_gradient(lambda _: xp.sum(W * W), W)
    assert_close(grad, 2 * W, rtol=1e-8)


def test_an_array_that_cannot_be_written_is_perturbed_in_a_copy():
    import numpy as np

    x = np.array([[0.5, -1.25], [2.0, 1.5]])
    x.flags.writeable = False
    grad = eval_numerical_gradient(lambda v: (v**3).sum(), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    errs = grad_check_sparse(lambda v: np.sin(v).sum(), x, np.cos(x), num_checks=4)
    assert max(errs) < 1e-8
    # The course idiom cannot see a perturbation made in a copy: the all-zero result is flagged.
    with pytest.warns(RuntimeWarning, match="f must compute from its argument"):
        eval_numerical_gradient(lambda _: (x * x).sum(), x)


def test_gradient_in_float32_keeps_dtype_and_device(bk):
    x = _x(bk, "float32")
    grad = eval_numerical_gradient(lambda v: bk.xp.sum(v * v), x, h=1e-2)
    assert_placement(grad, like=x)
    assert_close(grad, 2 * x, rtol=1e-3, atol=1e-3)


def test_array_gradient_matches_the_chain_rule(bk):
    xp = bk.xp
    x = _x(bk)
    df = bk.asarray([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]], dtype=xp.float64)
    grad = eval_numerical_gradient_array(lambda v: xp.tanh(v), x, df)
    assert_close(grad, df * (1 - xp.tanh(x) ** 2), rtol=1e-8)


def test_sparse_check_passes_a_right_gradient_and_flags_a_wrong_one(bk):
    xp = bk.xp
    x = _x(bk)
    f = lambda v: xp.sum(xp.sin(v))  # noqa: E731
    good = grad_check_sparse(f, x, xp.cos(x), num_checks=6)
    assert len(good) == 6 and max(good) < 1e-8
    bad = grad_check_sparse(f, x, 2 * xp.cos(x), num_checks=6)
    assert min(bad) > 0.3


def test_sparse_check_draws_the_same_coordinates_everywhere(bk):
    xp = bk.xp
    x = _x(bk)
    # An analytic gradient that is wrong by a coordinate-dependent amount: the errors identify the coordinates.
    wrong = xp.reshape(xp.arange(6, dtype=xp.float64, device=bk.device), (2, 3)) + 1.0
    errs = grad_check_sparse(lambda v: xp.sum(v), x, wrong, num_checks=5, seed=3)
    ref_x = backend.get_backend("numpy").asarray(backend.to_numpy(x))
    ref_w = backend.get_backend("numpy").asarray(backend.to_numpy(wrong))
    ref = grad_check_sparse(lambda v: v.sum(), ref_x, ref_w, num_checks=5, seed=3)
    assert errs == pytest.approx(ref, rel=1e-9)


def test_rel_error(bk):
    x = _x(bk)
    assert rel_error(x, x) == 0.0
    assert rel_error(x, 2 * x) == pytest.approx(1 / 3)
    assert isinstance(rel_error(x, x), float)
    assert rel_error(1.0, 1.0 + 1e-9) == pytest.approx(5e-10)
    assert math.isclose(rel_error(0.0, 0.0), 0.0)


def test_rel_error_refuses_two_backends():
    strict = backend.get_backend("array_api_strict", device="device1")
    with pytest.raises(backend.BackendMismatchError):
        rel_error(_x(strict), backend.get_backend("numpy").asarray([1.0]))


def test_shape_and_dtype_errors():
    nb = backend.get_backend("numpy")
    x = nb.asarray([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        grad_check_sparse(lambda v: v.sum(), x, nb.asarray([1.0]))
    with pytest.raises(TypeError, match="floating"):
        eval_numerical_gradient(lambda v: v.sum(), nb.asarray([1, 2]))
