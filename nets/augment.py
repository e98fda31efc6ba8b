"""Minibatch data augmentation on the device, for :class:`nets.Solver`'s ``augment``.

An augmentation is a callable ``augment(X_batch, rng) -> X_batch`` that returns a new minibatch
(the training data is never changed) in the batch's namespace, device and dtype, drawing its
randomness from the Solver's :class:`backend.Generator`, so the same seed gives the same run on
every backend.

The images of a minibatch may come as rows (N, H*W*C) or as (N, H, W, C) / (N, C, H, W) arrays;
``image_shape`` and ``channels_last`` say which, as for :func:`nets.diagnostics.first_layer_images`.
Preprocessing that is the same at every pixel position (per-channel statistics, or a mean image
of a data set whose mirror images are as likely) keeps a flipped or shifted image meaningful.
"""

from __future__ import annotations

import math

import array_api_extra as xpx

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ._model import as_int
from .layers import keep_probability

__all__ = ["Compose", "RandomFlip", "RandomShift"]


class _ImageAugment:
    def __init__(self, image_shape, channels_last: bool):
        image_shape = tuple(as_int(s, name="image_shape") for s in image_shape)
        if len(image_shape) != 3:
            raise InputError(f"image_shape must be (height, width, channels), got {image_shape}")
        self.image_shape, self.channels_last = image_shape, bool(channels_last)

    def _images(self, X):
        """``X`` as (B, H, W, C) or (B, C, H, W), and the axes of height and width."""
        xp = backend.get_namespace(X)
        h, w, c = self.image_shape
        if math.prod(X.shape[1:]) != h * w * c:
            raise InputError(f"a minibatch of shape {tuple(X.shape)} does not hold images of shape {self.image_shape}")
        shape = (X.shape[0], h, w, c) if self.channels_last else (X.shape[0], c, h, w)
        return xp.reshape(X, shape), (1, 2) if self.channels_last else (2, 3)


class RandomFlip(_ImageAugment):
    """Mirror each image left-right with probability ``p`` (the notes' cheapest augmentation).

    Parameters
    ----------
    image_shape : (H, W, C)
        The shape of one image.
    channels_last : bool, keyword-only
        Whether an image is stored (H, W, C) (default, as rows of CIFAR-10 loaded by xpml) or
        (C, H, W) (the course's assignment-2 layout).
    p : float, keyword-only
        Probability of flipping an image.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend, nets
    >>> X = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 6)  # two 2x3 grey images, one per row
    >>> flip = nets.augment.RandomFlip((2, 3, 1), p=1.0)          # p=1: flip every image
    >>> flip(X, backend.Generator(0))[0].tolist()
    [2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
    """

    def __init__(self, image_shape=(32, 32, 3), /, *, channels_last: bool = True, p: float = 0.5):
        super().__init__(image_shape, channels_last)
        try:
            self.p = keep_probability(p, name="p")
        except ValueError:  # its own words are about dropout's units
            raise InputError(f"p is the probability of flipping an image and must be in (0, 1], got {p!r}") from None

    def __call__(self, X, rng, /):
        xp = backend.get_namespace(X)
        images, (_, w_axis) = self._images(X)
        flip = rng.bernoulli((X.shape[0],), p=self.p, dtype=X.dtype)
        flip = xp.reshape(flip, (X.shape[0], 1, 1, 1))
        return xp.reshape(xp.where(flip > 0.5, xp.flip(images, axis=w_axis), images), X.shape)


class RandomShift(_ImageAugment):
    """Translate each image by up to ``max_shift`` pixels in each direction, filling with zeros.

    The random crops of the course notes (pad by ``max_shift`` and cut a window of the original
    size at a random place), with one draw per image.

    Parameters
    ----------
    image_shape : (H, W, C)
    max_shift : int, keyword-only
        The largest shift, in pixels, along each axis.
    channels_last : bool, keyword-only
        As :class:`RandomFlip`.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend, nets
    >>> X = np.ones((4, 8 * 8), dtype=np.float32)                # four 8x8 grey images
    >>> shifted = nets.augment.RandomShift((8, 8, 1), max_shift=2)(X, backend.Generator(0))
    >>> shifted.shape, bool(((shifted == 0) | (shifted == 1)).all())  # moved, zeros shifted in
    ((4, 64), True)
    """

    def __init__(self, image_shape=(32, 32, 3), /, *, max_shift: int = 4, channels_last: bool = True):
        super().__init__(image_shape, channels_last)
        self.max_shift = as_int(max_shift, name="max_shift")

    def __call__(self, X, rng, /):
        xp, device = backend.namespace_and_device(X)
        images, axes = self._images(X)
        s, B = self.max_shift, X.shape[0]
        pad = [(0, 0)] * 4
        for axis in axes:
            pad[axis] = (s, s)
        out = xpx.pad(images, pad, xp=xp)
        shifts = rng.integers(0, 2 * s + 1, (2, B))
        for k, axis in enumerate(axes):
            n = images.shape[axis]
            # Row (or column) i of image b comes from padded position i + shift_b.
            idx = xp.arange(n, dtype=shifts.dtype, device=device)
            idx = xp.reshape(idx, (1, n)) + xp.reshape(shifts[k, :], (B, 1))
            shape = [B, 1, 1, 1]
            shape[axis] = n
            full = list(out.shape)
            full[axis] = n
            out = xp.take_along_axis(out, xp.broadcast_to(xp.reshape(idx, tuple(shape)), tuple(full)), axis=axis)
        return xp.reshape(out, X.shape)


class Compose:
    """Apply several augmentations in order: ``Compose([RandomShift(), RandomFlip()])``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml import backend, nets
    >>> augment = nets.augment.Compose([nets.augment.RandomShift((8, 8, 1), max_shift=1),
    ...                                 nets.augment.RandomFlip((8, 8, 1))])
    >>> augment(np.zeros((5, 64), dtype=np.float32), backend.Generator(0)).shape
    (5, 64)
    """

    def __init__(self, augmentations, /):
        self.augmentations = list(augmentations)
        for a in self.augmentations:
            if not callable(a):
                raise InputTypeError(f"an augmentation must be callable, got {a!r}")

    def __call__(self, X, rng, /):
        for a in self.augmentations:
            X = a(X, rng)
        return X
