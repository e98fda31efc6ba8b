"""Model ensembles: average the class probabilities of several trained models.

The notes' cheap ensembling tricks: a few independently trained (or differently regularized)
models usually beat each of them, because their errors are partly independent; and the
checkpoints of one run's last epochs, averaged, often beat its last one
(:meth:`Ensemble.from_checkpoints`).
"""

from __future__ import annotations

import glob
import math
import numbers
import os
import re

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ._state import VersionedState

__all__ = ["Ensemble"]


def _normalized(weights, n: int) -> list[float]:
    """``weights`` (one finite, non-negative number per model, not all zero) scaled to sum 1."""
    if weights is None:
        return [1.0 / n] * n
    weights = list(weights)
    if len(weights) != n:
        raise InputError(f"weights must give one weight per model: {len(weights)} weights for {n} models")
    if not all(isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights):
        raise InputTypeError(f"weights must be real numbers, got {weights!r}")
    weights = [float(w) for w in weights]
    # A NaN or inf weight makes every averaged probability NaN, and argmax of NaN is class 0.
    bad = [i for i, w in enumerate(weights) if not math.isfinite(w)]
    if bad:
        raise InputError(f"weights must be finite: weight {bad[0]} is {weights[bad[0]]}")
    bad = [i for i, w in enumerate(weights) if w < 0]
    if bad:
        raise InputError(f"weights must not be negative: weight {bad[0]} is {weights[bad[0]]}")
    total = math.fsum(weights)
    if total <= 0:
        raise InputError("weights are all zero: give at least one model a positive weight")
    return [w / total for w in weights]


class Ensemble(VersionedState):
    """The average of the class probabilities of ``models``.

    Parameters
    ----------
    models : sequence
        Trained models with ``predict_proba(X) -> (N, C)``, all over the same C classes and on
        one backend (the one of the inputs).
    weights : sequence of float, keyword-only
        Finite, non-negative weights of the models, one per model and not all zero (normalized
        to sum 1); default equal.

    Notes
    -----
    ``p(c | x) = sum_m w_m p_m(c | x)``, ``predict = argmax_c p(c | x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.classifiers.data_utils import make_spiral
    >>> from xpml.nets import TwoLayerNet
    >>> from xpml.nets.ensemble import Ensemble
    >>> X, y = make_spiral(20, 3, seed=0)
    >>> nets = [TwoLayerNet(2, 10, 3, std=0.1, seed=seed) for seed in (0, 1)]
    >>> for net in nets:
    ...     _ = net.train(X, y, learning_rate=1.0, num_iters=100, batch_size=30)
    >>> ensemble = Ensemble(nets)
    >>> probs = ensemble.predict_proba(X)
    >>> probs.shape, bool(np.allclose(probs.sum(axis=1), 1.0))
    ((60, 3), True)
    >>> ensemble.predict(X).shape
    (60,)
    """

    def __init__(self, models, /, *, weights=None):
        self.models = list(models)
        if not self.models:
            raise InputError("an ensemble needs at least one model")
        for m in self.models:
            if not callable(getattr(m, "predict_proba", None)):
                raise InputTypeError(f"{type(m).__name__} has no predict_proba(X); an ensemble averages probabilities")
        self.weights = _normalized(weights, len(self.models))

    @classmethod
    def from_checkpoints(cls, checkpoint_name, /, *, last: int | None = None, xp=None, device=None, weights=None):
        """The ensemble of the epoch checkpoints a :class:`nets.Solver` wrote with ``checkpoint_name``.

        Parameters
        ----------
        checkpoint_name : str or path-like, or a list of checkpoint paths
            The Solver's ``checkpoint_name`` (files ``{checkpoint_name}_epoch_{epoch}.npz``), or
            explicit paths.
        last : int, keyword-only
            Average only the ``last`` K epochs (default: all found).
        xp, device : keyword-only
            Where the models are loaded (see :func:`nets.load_model`).
        weights : keyword-only
            As for the constructor.
        """
        from .checkpoint import load_model

        if isinstance(checkpoint_name, (list, tuple)):
            paths = [os.fspath(p) for p in checkpoint_name]
        else:
            prefix = os.fspath(checkpoint_name)
            pattern = re.compile(re.escape(os.path.basename(prefix)) + r"_epoch_(\d+)\.npz$")
            found = []
            for path in glob.glob(glob.escape(prefix) + "_epoch_*.npz"):
                match = pattern.search(os.path.basename(path))
                if match:
                    found.append((int(match.group(1)), path))
            paths = [p for _, p in sorted(found)]
            if not paths:
                raise FileNotFoundError(f"no checkpoints {prefix}_epoch_<N>.npz found")
        if last is not None:
            if isinstance(last, bool) or not isinstance(last, int) or last < 1:
                raise InputError(f"last must be a positive integer, got {last!r}")
            paths = paths[-last:]
        return cls([load_model(p, xp=xp, device=device)[0] for p in paths], weights=weights)

    def predict_proba(self, X, /):
        """Weighted mean of the models' probabilities (N, C), on ``X``'s backend."""
        probs = None
        for w, m in zip(self.weights, self.models, strict=True):
            p = m.predict_proba(X)
            if probs is None:
                probs = w * p
            else:
                if p.shape != probs.shape:
                    raise InputError(f"models disagree on the output shape: {tuple(p.shape)} vs {tuple(probs.shape)}")
                probs = probs + w * p
        return probs

    def predict(self, X, /):
        """Labels (N,): the argmax of the averaged probabilities."""
        xp = backend.get_namespace(X)
        return xp.argmax(self.predict_proba(X), axis=1)
