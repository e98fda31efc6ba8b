"""Distillation: train a student on a teacher's softened probabilities as well as the labels.

The notes' ensembles section: "distill a good ensemble back to a single model by incorporating the
ensemble log likelihoods into a modified objective". :class:`Distillation` names the teacher (any
model with ``scores``, or an :class:`nets.Ensemble` of such models) and the objective's temperature
and weight; :class:`nets.Solver` (``distill=``) computes the teacher's probabilities on every
minibatch, after augmentation, on the device, and the student's loss becomes
:func:`nets.losses.distillation_loss`::

    teacher = nets.Ensemble.from_checkpoints("runs/fc", last=3, xp=xp)
    Solver(student, data, distill=Distillation(teacher, temperature=4.0, alpha=0.9)).train()
"""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError, InputTypeError
from .ensemble import Ensemble
from .losses import DistillationTargets, _check_alpha, _check_temperature
from .model import Model

__all__ = ["Distillation", "softmax"]


def softmax(scores, /, *, temperature: float = 1.0):
    """``softmax(scores / T)`` over the rows of ``scores`` (N, C), on their device, numerically stable."""
    t = _check_temperature(temperature)
    xp = backend.get_namespace(scores)
    s = scores if t == 1.0 else scores * (1.0 / t)
    e = xp.exp(s - xp.max(s, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _scoring_model(m, what: str):
    # The model contract says what a teacher has (params, state, num_classes, scores).
    if not isinstance(m, Model):
        raise InputTypeError(f"{what} must be a model with params and scores(params, X, state=) (a nets.Model) or an "
                        f"Ensemble of such models; got {type(m).__name__}")
    return m


class Distillation:
    """A teacher and the distillation objective's settings, for :class:`nets.Solver` (``distill=``).

    Parameters
    ----------
    teacher
        A trained :class:`nets.Model` (scored in test mode with its own parameters) or an
        :class:`nets.Ensemble` of them (its members' softened probabilities averaged with the
        ensemble's weights).
    temperature : float > 0, keyword-only
        T of the softened probabilities ``softmax(scores / T)``.
    alpha : float in [0, 1], keyword-only
        The weight of the teacher's term (see :func:`nets.losses.distillation_loss`).

    Notes
    -----
    The student minimises ``(1 - alpha) CE(y, softmax(s)) + alpha T^2 CE(q, softmax(s / T))`` where,
    for an ensemble of M members with weights w_m and scores t_m, ``q = sum_m w_m softmax(t_m / T)``.

    Examples
    --------
    >>> from xpml import nets
    >>> teacher = nets.FullyConnectedNet([8], input_dim=4, num_classes=3, seed=0)
    >>> d = nets.Distillation(teacher, temperature=2.0, alpha=0.5)
    >>> d.temperature, d.alpha
    (2.0, 0.5)
    >>> nets.Distillation(teacher, temperature=0)
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: temperature must be a positive, finite number (1 is the plain softmax), got 0
    """

    def __init__(self, teacher, /, *, temperature: float = 4.0, alpha: float = 0.9):
        if isinstance(teacher, Ensemble):
            self.members = [_scoring_model(m, "every member of the teacher ensemble") for m in teacher.models]
            self.weights = list(teacher.weights)
        else:
            self.members, self.weights = [_scoring_model(teacher, "the teacher")], [1.0]
        self.teacher = teacher
        self.temperature, self.alpha = _check_temperature(temperature), _check_alpha(alpha)
        classes = {m.num_classes for m in self.members} - {None}
        if len(classes) > 1:
            raise InputError(f"the teacher's models disagree on the number of classes: {sorted(classes)}")
        self.num_classes = classes.pop() if classes else None

    def check(self, student, X, /) -> None:
        """Raise a clear error when the teacher cannot teach ``student`` on data like ``X``."""
        for m in self.members:
            backend.namespace_and_device(X, *m.params.values())
        C = getattr(student, "num_classes", None)
        if self.num_classes is not None and C is not None and C != self.num_classes:
            raise InputError(f"the teacher has {self.num_classes} classes but the student {C}: distillation needs "
                             "the same classes")

    def teacher_probs(self, X, /):
        """The teacher's softened probabilities (N, C) on ``X``, in X's dtype, on its device."""
        xp = backend.get_namespace(X)
        probs = None
        for w, m in zip(self.weights, self.members, strict=True):
            dtype = next(iter(m.params.values())).dtype
            s = m.scores(m.params, X if X.dtype == dtype else xp.astype(X, dtype), state=m.state)
            p = softmax(s, temperature=self.temperature)
            p = p if p.dtype == X.dtype else xp.astype(p, X.dtype)
            p = p if w == 1.0 else p * w
            probs = p if probs is None else probs + p
        return probs

    def targets(self, X, y, /) -> DistillationTargets:
        """The targets of one minibatch: the labels ``y`` and the teacher's probabilities on ``X``."""
        return DistillationTargets(y, self.teacher_probs(X), temperature=self.temperature, alpha=self.alpha,
                                   check=False)

    def __repr__(self) -> str:
        return (f"Distillation({type(self.teacher).__name__}, temperature={self.temperature!r}, "
                f"alpha={self.alpha!r})")
