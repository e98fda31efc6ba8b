"""make_spiral: the course notes' spiral, same points on every backend."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.classifiers import make_spiral


def test_shapes_labels_placement(bk, dtype_name):
    X, y = make_spiral(7, 3, xp=bk, dtype=dtype_name)
    assert_placement(X, backend=bk, dtype=getattr(bk.xp, dtype_name), shape=(21, 2))
    assert_placement(y, backend=bk, dtype=backend.index_dtype(bk.xp, bk.device), shape=(21,))
    np.testing.assert_array_equal(backend.to_numpy(y), np.repeat(np.arange(3), 7))


def test_matches_the_course_formula_without_noise():
    N, K = 5, 3
    X, y = make_spiral(N, K, noise=0.0, dtype="float64")
    ref = np.zeros((N * K, 2))
    for j in range(K):
        r = np.linspace(0.0, 1, N)
        t = np.linspace(j * 4, (j + 1) * 4, N)
        ref[N * j:N * (j + 1)] = np.c_[r * np.sin(t), r * np.cos(t)]
    np.testing.assert_allclose(backend.to_numpy(X), ref, rtol=1e-12, atol=1e-15)


def test_radius_is_linspace_and_noise_moves_only_the_angle():
    X, _ = make_spiral(11, 2, noise=0.5, dtype="float64")
    radius = np.hypot(*backend.to_numpy(X).T)
    np.testing.assert_allclose(radius, np.tile(np.linspace(0, 1, 11), 2), atol=1e-12)


def test_same_seed_same_points_everywhere(bk):
    X, _ = make_spiral(6, 2, seed=4, xp=bk)
    ref, _ = make_spiral(6, 2, seed=4)
    np.testing.assert_allclose(backend.to_numpy(X), backend.to_numpy(ref), rtol=1e-6, atol=1e-6)
    other, _ = make_spiral(6, 2, seed=5)
    assert not np.allclose(backend.to_numpy(other), backend.to_numpy(ref))


@pytest.mark.parametrize("kwargs, err", [
    (dict(N=0, K=2), ValueError), (dict(N=3, K=2.0), TypeError), (dict(N=3, K=2, D=3), ValueError),
    (dict(N=3, K=2, noise=-1.0), ValueError), (dict(N=3, K=2, noise=math.nan), ValueError),
])
def test_bad_arguments(kwargs, err):
    N, K = kwargs.pop("N"), kwargs.pop("K")
    with pytest.raises(err):
        make_spiral(N, K, **kwargs)
