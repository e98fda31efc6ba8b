"""The generator gives identical draws on every backend for the same seed."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement


def _draws(rng):
    return {
        "normal": rng.normal((4, 3), scale=0.01),
        "normal64": rng.normal((5,), dtype="float64"),
        "uniform": rng.uniform((6,), low=-1.0, high=2.0),
        "integers": rng.integers(0, 10, (7,)),
        "choice_rep": rng.choice(10, 8, replace=True),
        "choice_norep": rng.choice(10, 10, replace=False),
        "permutation": rng.permutation(9),
        "bernoulli": rng.bernoulli((3, 3), p=0.5),
    }


def test_same_seed_same_draws_on_every_backend(bk):
    reference = _draws(backend.Generator(1234))  # numpy on the host
    draws = _draws(backend.Generator(1234, xp=bk.xp, device=bk.device))
    for key, ref in reference.items():
        got = draws[key]
        assert_placement(got, backend=bk, shape=ref.shape)
        # Bit-identical, not merely close: a CPU and a GPU run start from the same numbers.
        np.testing.assert_array_equal(backend.to_numpy(got), ref, err_msg=key)


def test_dtypes_and_ranges(bk):
    rng = backend.Generator(0, xp=bk)
    assert rng.normal((3,)).dtype == bk.xp.float32
    assert rng.normal((3,), dtype="float64").dtype == bk.xp.float64
    ints = backend.to_numpy(rng.integers(3, 7, (1000,)))
    assert ints.min() >= 3 and ints.max() <= 6
    perm = backend.to_numpy(rng.permutation(50))
    assert sorted(perm.tolist()) == list(range(50))
    no_rep = backend.to_numpy(rng.choice(20, 20, replace=False))
    assert len(set(no_rep.tolist())) == 20


def test_different_seeds_differ():
    a = backend.to_numpy(backend.Generator(1).normal((10,)))
    b = backend.to_numpy(backend.Generator(2).normal((10,)))
    assert not np.array_equal(a, b)


def test_spawn_is_deterministic():
    a = backend.Generator(5).spawn().normal((4,))
    b = backend.Generator(5).spawn().normal((4,))
    np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(TypeError, match="seed must be an int"):
        backend.Generator(1.5)
    with pytest.raises(ValueError, match="non-negative"):
        backend.Generator(-1)
    rng = backend.Generator(0)
    with pytest.raises(ValueError, match="without replacement"):
        rng.choice(3, 5, replace=False)
    with pytest.raises(ValueError, match="empty range"):
        rng.choice(0, 1)
