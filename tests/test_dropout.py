"""Dropout honours the keep probability exactly: decisions from 32 random bits, kept units times 1 / p."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets.layers import dropout_backward, dropout_forward


def test_the_keep_rate_is_p_to_32_bits():
    q = backend.Generator.dropout_keep_probability
    for keep in (1e-7, 1e-3, 0.01, 0.05, 0.2, 0.3, 0.4, 0.6, 0.8, 0.9, 0.95, 0.999, 1 - 1e-6):
        assert abs(q(keep) - keep) <= 2.0**-33, keep
    for exact in (0.5, 0.25, 0.75, 0.375, 1.0, 0.0, 3 / 256, 1 - 7 / 65536):
        assert q(exact) == exact
    # A word per decision unless fewer bits are exact: 640 draws of 0.8 take 320 blocks, of 0.5 ten.
    for keep, blocks in ((0.8, 320), (0.4, 320), (0.5, 10), (0.75, 20), (1 - 7 / 65536, 160)):
        rng = backend.Generator(0)
        rng.dropout_mask((640,), keep=keep)
        assert rng.counter == blocks, keep


@pytest.mark.parametrize("keep", [0.4, 0.8, 0.5, 1e-3, 1.0])
def test_the_mask_is_bernoulli_of_p_scaled_by_one_over_p(bk, keep):
    n = 40_000
    mask = backend.Generator(5, xp=bk).dropout_mask((n,), keep=keep, dtype="float64")
    assert_placement(mask, backend=bk, dtype=bk.xp.float64, shape=(n,))
    values = backend.to_numpy(mask)
    assert set(np.unique(values).tolist()) <= {0.0, 1.0 / keep}
    kept = float(np.mean(values > 0))
    assert abs(kept - keep) <= 5 * math.sqrt(keep * (1 - keep) / n) + 1e-12
    # The same decisions as bernoulli(keep), from the same words.
    np.testing.assert_array_equal(values > 0, backend.Generator(5).bernoulli((n,), p=keep) > 0)


def test_float32_masks_carry_one_over_p_rounded_once(bk):
    mask = backend.to_numpy(backend.Generator(1, xp=bk).dropout_mask((1000,), keep=0.4))
    assert set(np.unique(mask).tolist()) == {0.0, float(np.float32(1 / 0.4))}


def test_the_layer_divides_by_p_itself(bk):
    # The course's definition: out = x * (u < p) / p. With x = 1 the kept outputs are 1 / p
    # exactly, not the inverse of a rounded p (0.4 is not 102/256).
    x = bk.asarray(np.ones((50, 40)), dtype=bk.xp.float64)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.4, "seed": 3})
    assert_placement(out, backend=bk, dtype=bk.xp.float64, shape=(50, 40))
    host = backend.to_numpy(out)
    assert set(np.unique(host).tolist()) == {0.0, 2.5}
    dx = backend.to_numpy(dropout_backward(bk.asarray(np.ones((50, 40)), dtype=bk.xp.float64), cache))
    np.testing.assert_array_equal(dx, host)
    # The same mask on every backend.
    np.testing.assert_array_equal(host, dropout_forward(np.ones((50, 40)), {"mode": "train", "p": 0.4, "seed": 3})[0])
