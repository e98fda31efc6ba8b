"""On-device minibatch augmentation: flips and shifts against a host reference, on every backend."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets.augment import Compose, RandomFlip, RandomShift

pytestmark = pytest.mark.readonly_backend

B, H, W, C = 5, 4, 6, 3


def _images(bk, channels_last=True):
    host = np.arange(B * H * W * C, dtype=np.float32).reshape(B, H, W, C)
    if not channels_last:
        host = host.transpose(0, 3, 1, 2).copy()
    return host, bk.asarray(host.reshape(B, -1))


@pytest.mark.parametrize("channels_last", [True, False])
def test_flip_with_p_one_mirrors_every_image(bk, channels_last):
    host, X = _images(bk, channels_last)
    out = RandomFlip((H, W, C), channels_last=channels_last, p=1.0)(X, backend.Generator(0, xp=bk))
    assert_placement(out, like=X)
    want = host[:, :, ::-1, :] if channels_last else host[:, :, :, ::-1]
    np.testing.assert_array_equal(backend.to_numpy(out), want.reshape(B, -1))
    np.testing.assert_array_equal(backend.to_numpy(X), host.reshape(B, -1))  # the batch is left alone


def test_flip_picks_images_with_the_generator(bk):
    host, X = _images(bk)
    out = backend.to_numpy(RandomFlip((H, W, C))(X, backend.Generator(3, xp=bk))).reshape(B, H, W, C)
    chosen = backend.to_numpy(backend.Generator(3).bernoulli((B,), p=0.5)) > 0.5
    for b in range(B):
        np.testing.assert_array_equal(out[b], host[b, :, ::-1] if chosen[b] else host[b])
    # Images given as (N, H, W, C) arrays work too and keep their shape.
    four_d = bk.asarray(host)
    assert RandomFlip((H, W, C))(four_d, backend.Generator(0, xp=bk)).shape == (B, H, W, C)


def test_shift_moves_each_image_and_fills_with_zeros(bk):
    host, X = _images(bk)
    s = 2
    out = backend.to_numpy(RandomShift((H, W, C), max_shift=s)(X, backend.Generator(5, xp=bk))).reshape(B, H, W, C)
    shifts = backend.to_numpy(backend.Generator(5).integers(0, 2 * s + 1, (2, B)))
    padded = np.pad(host, [(0, 0), (s, s), (s, s), (0, 0)])
    for b in range(B):
        dy, dx = shifts[:, b]
        np.testing.assert_array_equal(out[b], padded[b, dy:dy + H, dx:dx + W])


def test_compose_and_bad_arguments(bk):
    _, X = _images(bk)
    both = Compose([RandomShift((H, W, C), max_shift=1), RandomFlip((H, W, C))])
    out = both(X, backend.Generator(0, xp=bk))
    assert_placement(out, like=X)
    with pytest.raises(ValueError, match="does not hold images"):
        RandomFlip((H, W, 4))(X, backend.Generator(0, xp=bk))
    with pytest.raises(ValueError, match="height, width, channels"):
        RandomFlip((H, W))
    with pytest.raises(ValueError, match="max_shift must be > 0"):
        RandomShift((H, W, C), max_shift=0)
    with pytest.raises(TypeError, match="callable"):
        Compose([3])
