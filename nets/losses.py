"""Losses on class scores: the course's SVM and softmax, and the other losses of the notes.

- :func:`svm_loss`: the multiclass hinge (Weston-Watkins), or its square (the L2-SVM).
- :func:`softmax_loss`: cross-entropy on integer labels or on soft targets (probability rows),
  with a temperature (distillation).
- :func:`attribute_loss`: attribute classification, one binary hinge per attribute (y of +1/-1).
- :func:`hierarchical_softmax_loss` over a :class:`ClassTree`: a softmax over groups of classes,
  then over the classes of the label's group.
- :func:`hierarchical_softmax_loss_from_features`: the same loss from features and weights, at
  O(sqrt(C)) work per example (:mod:`nets.hierarchical`).
- :func:`l2_penalty`: the L2 penalty on a weight matrix, with its gradient.

Each returns ``(loss, grad)``: the loss averaged over the N examples as a 0-d array on the scores'
device, and its gradient with respect to the scores. The namespace and device come from the
arrays; a training loop that knows them already passes ``xp=`` (and ``device=``) to skip the
look-up. Labels must lie in [0, C): the models check them once at their entry points, the loss
does not read values back from the device. Soft targets and attributes are checked here (one
value read back) unless ``check=False`` says the caller has done it.
"""

from __future__ import annotations

import math

from .. import backend
from ..backend._arith import iadd, imul, isub, itruediv
from ..backend.errors import InputError, InputTypeError

__all__ = [
    "ClassTree",
    "DistillationTargets",
    "attribute_loss",
    "classification_loss",
    "distillation_loss",
    "hierarchical_softmax_loss",
    "hierarchical_softmax_loss_from_features",
    "l2_penalty",
    "softmax_loss",
    "svm_loss",
]

# Soft-target rows must sum to one within this (relative to float32's resolution, with room for
# targets that were themselves computed in float32: a softmax of C classes sums to 1 +- C ulp).
_ROW_SUM_TOLERANCE = 1e-4


def _one_hot_labels(xp, device, x, y):
    """The labels as one-hot rows (N, C) in x's dtype."""
    if x.ndim != 2:
        raise InputError(f"x must hold class scores of shape (N, C), got {tuple(x.shape)}")
    if tuple(y.shape) != (x.shape[0],):
        raise InputError(f"y must have shape ({x.shape[0]},), one label per row of x; got {tuple(y.shape)}")
    # A comparison, not xpx.one_hot: its checks cost more than the comparison at a minibatch's size.
    classes = xp.arange(x.shape[1], dtype=y.dtype, device=device)
    return xp.astype(xp.reshape(y, (-1, 1)) == classes, x.dtype)


def _namespace(xp, device, *arrays):
    if xp is None:
        return backend.namespace_and_device(*arrays)
    return xp, (backend.get_device(arrays[0]) if device is None else device)


def svm_loss(x, y, /, *, squared: bool = False, xp=None, device=None):
    """Multiclass SVM (hinge) loss on class scores, averaged over the minibatch.

    Parameters
    ----------
    x : array (N, C)
        Scores; ``x[i, j]`` is the score of class j for example i.
    y : array (N,) of int
        Labels in [0, C).
    squared : bool, keyword-only
        Square each hinge (the L2-SVM of the notes), which penalizes violated margins
        quadratically.
    xp, device : keyword-only
        The namespace and device of ``x`` and ``y``, when the caller knows them (None: looked up).

    Returns
    -------
    loss : 0-d array on x's device
    dx : array (N, C), the gradient of the loss with respect to x

    Notes
    -----
    With margins ``m_ij = max(0, x_ij - x_{i,y_i} + 1)`` for ``j != y_i`` (0 for ``j = y_i``):
    ``L = (1/N) sum_ij m_ij`` and ``dx_ij = a_ij / N`` with ``a_ij = 1[m_ij > 0]``; squared,
    ``L = (1/N) sum_ij m_ij**2`` and ``dx_ij = 2 m_ij / N``. In both,
    ``dx_{i,y_i} = -sum_{j != y_i} dx_ij``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import svm_loss
    >>> x = np.array([[2.0, 1.0, 0.5], [0.0, 1.5, 1.0]])
    >>> loss, dx = svm_loss(x, np.array([0, 2]))
    >>> float(loss)
    0.75
    >>> dx
    array([[ 0. ,  0. ,  0. ],
           [ 0. ,  0.5, -0.5]])
    >>> float(svm_loss(x, np.array([0, 2]), squared=True)[0])
    1.125
    """
    xp, device = _namespace(xp, device, x, y)
    onehot = _one_hot_labels(xp, device, x, y)
    N = x.shape[0]
    correct = xp.sum(x * onehot, axis=1, keepdims=True)
    # (1 - onehot) removes the j = y_i term, which would otherwise add the margin 1 per example.
    margins = imul(xp.maximum(iadd(x - correct, 1.0), 0.0), 1.0 - onehot)
    if squared:
        flat = xp.reshape(margins, (-1,))
        loss = (flat @ flat) / N
        slope = imul(margins, 2.0)
    else:
        loss = xp.sum(margins) / N
        slope = xp.astype(margins > 0, x.dtype)
    dx = isub(slope, imul(onehot, xp.sum(slope, axis=1, keepdims=True)))
    return loss, imul(dx, 1.0 / N)


def _check_temperature(temperature) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InputTypeError(f"temperature must be a positive number, got {temperature!r}") from None
    if not (t > 0.0 and math.isfinite(t)):
        raise InputError(f"temperature must be a positive, finite number (1 is the plain softmax), got {temperature!r}")
    return t


def _check_soft_targets(xp, x, y) -> None:
    if tuple(y.shape) != tuple(x.shape):
        raise InputError(f"soft targets y must have the shape of the scores {tuple(x.shape)} (one probability row "
                         f"per example), got {tuple(y.shape)}")
    if not xp.isdtype(y.dtype, "real floating"):
        raise InputTypeError(f"soft targets y must be floating-point probabilities, got dtype {y.dtype}; "
                        "integer labels are given as a vector (N,)")
    # One value read back for both checks.
    rows = xp.sum(y, axis=1)
    bad = xp.any(y < 0) | xp.any(xp.abs(rows - 1.0) > _ROW_SUM_TOLERANCE) | xp.any(xp.isnan(y))
    if bool(bad):
        raise InputError("soft targets y must be probability rows: non-negative and summing to 1 (within "
                         f"{_ROW_SUM_TOLERANCE:g}); normalize them, e.g. y / y.sum(axis=1, keepdims=True)")


def softmax_loss(x, y, /, *, temperature: float = 1.0, check: bool = True, xp=None, device=None):
    """Softmax (cross-entropy) loss on class scores, averaged over the minibatch, numerically stable.

    Parameters
    ----------
    x : array (N, C)
        Scores.
    y : array (N,) of int, or array (N, C) of floats
        Labels in [0, C), or soft targets: one probability row per example (non-negative, each
        row summing to 1), such as a teacher's softened probabilities in distillation.
    temperature : float > 0, keyword-only
        T: the probabilities are ``softmax(x / T)``; T > 1 softens them.
    check : bool, keyword-only
        Check soft targets (one value read back from the device); False when the caller has.
    xp, device : keyword-only
        As :func:`svm_loss`.

    Returns
    -------
    loss : 0-d array on x's device
    dx : array (N, C)

    Notes
    -----
    With ``p_ij = exp(x_ij / T) / sum_k exp(x_ik / T)`` and targets ``t`` (one-hot labels or the
    soft rows): ``L = -(1/N) sum_ij t_ij log p_ij`` and ``dx = (P s - t) / (N T)``, where
    ``s_i = sum_j t_ij`` is 1 for labels (and for valid soft rows, up to rounding). The scores are
    shifted by their row maximum first, which changes neither but keeps ``exp`` from overflowing.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import softmax_loss
    >>> x = np.array([[2.0, 1.0, 0.5], [0.0, 1.5, 1.0]])
    >>> loss, dx = softmax_loss(x, np.array([0, 2]))
    >>> round(float(loss), 4), dx.shape
    (0.7842, (2, 3))
    >>> dx.round(3)
    array([[-0.186,  0.116,  0.07 ],
           [ 0.061,  0.273, -0.334]])

    Soft targets (one probability row per example) and a temperature:

    >>> round(float(softmax_loss(x, np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))[0]), 4)
    1.0342
    >>> round(float(softmax_loss(x, np.array([0, 2]), temperature=2.0)[0]), 4)
    0.8966
    """
    xp, device = _namespace(xp, device, x, y)
    t = 1.0 if temperature == 1.0 else _check_temperature(temperature)
    if x.ndim != 2:
        raise InputError(f"x must hold class scores of shape (N, C), got {tuple(x.shape)}")
    N = x.shape[0]
    if t != 1.0:
        x = x * (1.0 / t)
    shifted = x - xp.max(x, axis=1, keepdims=True)
    probs = xp.exp(shifted)
    sum_exp = xp.sum(probs, axis=1, keepdims=True)
    probs = itruediv(probs, sum_exp)
    if y.ndim == 1:
        onehot = _one_hot_labels(xp, device, x, y)
        # sum_i shifted_{i, y_i} as one dot product of the flattened arrays: no N x C product.
        correct = xp.reshape(shifted, (-1,)) @ xp.reshape(onehot, (-1,))
        loss = (xp.sum(xp.log(sum_exp)) - correct) / N
        dx = isub(probs, onehot)
    else:
        if check:
            _check_soft_targets(xp, x, y)
        targets = xp.astype(y, x.dtype)
        mass = xp.sum(targets, axis=1, keepdims=True)
        loss = (xp.reshape(xp.log(sum_exp), (-1,)) @ xp.reshape(mass, (-1,))
                - xp.reshape(shifted, (-1,)) @ xp.reshape(targets, (-1,))) / N
        dx = isub(imul(probs, mass), targets)
    return loss, imul(dx, 1.0 / (N * t))


def _check_alpha(alpha) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InputTypeError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
    if isinstance(alpha, bool) or not 0.0 <= a <= 1.0:
        raise InputError(f"alpha (the weight of the teacher's soft targets) must be in [0, 1], got {alpha!r}: "
                         "0 trains on the labels only, 1 on the teacher only")
    return a


def distillation_loss(x, y, teacher_probs, /, *, temperature: float, alpha: float, check: bool = True, xp=None,
                      device=None):
    """The notes' distillation objective: the labels' cross-entropy and the teacher's softened one, weighted.

    Parameters
    ----------
    x : array (N, C)
        The student's scores.
    y : array (N,) of int
        Hard labels in [0, C).
    teacher_probs : array (N, C)
        The teacher's probabilities at the same temperature, ``softmax(t / T)`` (rows
        non-negative, summing to 1).
    temperature : float > 0, keyword-only
        T, applied to the student's scores in the soft term.
    alpha : float in [0, 1], keyword-only
        The weight of the soft term; 0 is the plain softmax loss (bit for bit), 1 the teacher alone.
    check : bool, keyword-only
        Check the teacher's rows (one value read back); False when they are known to be a softmax.
    xp, device : keyword-only
        As :func:`svm_loss`.

    Returns
    -------
    loss : 0-d array on x's device
    dx : array (N, C)

    Notes
    -----
    ``L = (1 - alpha) CE(y, softmax(x)) + alpha T^2 CE(q, softmax(x / T))`` with ``q`` the teacher's
    probabilities, so ``dx = (1 - alpha)(softmax(x) - onehot(y)) / N + alpha T (softmax(x / T) - q) / N``.
    The ``T^2`` keeps the soft term's gradient on the scale of the hard one's as T changes
    (Hinton et al., "Distilling the knowledge in a neural network").

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import distillation_loss, softmax_loss
    >>> x = np.array([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
    >>> y = np.array([0, 1])
    >>> teacher = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]])
    >>> loss, dx = distillation_loss(x, y, teacher, temperature=2.0, alpha=0.5)
    >>> round(float(loss), 4), dx.shape
    (2.0212, (2, 3))
    >>> float(distillation_loss(x, y, teacher, temperature=2.0, alpha=0.0)[0]) == float(softmax_loss(x, y)[0])
    True
    """
    t = _check_temperature(temperature)
    a = _check_alpha(alpha)
    xp, device = _namespace(xp, device, x, y)
    if a == 0.0:
        return softmax_loss(x, y, xp=xp, device=device)
    if teacher_probs.ndim != 2:
        raise InputError(f"teacher_probs must be probability rows of shape (N, C), got {tuple(teacher_probs.shape)}")
    soft, dsoft = softmax_loss(x, teacher_probs, temperature=t, check=check, xp=xp, device=device)
    weight = a * t * t
    soft, dsoft = soft * weight, imul(dsoft, weight)
    if a == 1.0:
        return soft, dsoft
    hard, dhard = softmax_loss(x, y, xp=xp, device=device)
    return hard * (1.0 - a) + soft, iadd(imul(dhard, 1.0 - a), dsoft)


class DistillationTargets:
    """What a model's loss is asked to fit in distillation: labels and a teacher's probabilities.

    A model's ``loss_and_grads(params, X, y, ...)`` takes ``y`` as labels (N,), soft targets
    (N, C) or one of these; :func:`classification_loss` picks the loss. :class:`nets.Solver` builds
    them per minibatch from a :class:`nets.distill.Distillation`.

    Parameters
    ----------
    labels : array (N,) of int
    teacher_probs : array (N, C)
        ``softmax(t / T)`` of the teacher's scores t.
    temperature, alpha : float, keyword-only
        As :func:`distillation_loss`.
    check : bool, keyword-only
        Whether the loss checks the teacher's rows (one value read back).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import DistillationTargets, classification_loss
    >>> x = np.array([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
    >>> targets = DistillationTargets(np.array([0, 1]), np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]]),
    ...                               temperature=2.0, alpha=0.5)
    >>> round(float(classification_loss(x, targets)[0]), 4)
    2.0212
    """

    __slots__ = ("alpha", "check", "labels", "teacher_probs", "temperature")

    def __init__(self, labels, teacher_probs, /, *, temperature: float, alpha: float, check: bool = True):
        self.labels, self.teacher_probs = labels, teacher_probs
        self.temperature, self.alpha = _check_temperature(temperature), _check_alpha(alpha)
        self.check = bool(check)
        if teacher_probs.ndim != 2 or teacher_probs.shape[0] != labels.shape[0]:
            raise InputError(f"teacher_probs must have shape (N, C) with N = {labels.shape[0]} labels, got "
                             f"{tuple(teacher_probs.shape)}")

    @property
    def shape(self):
        """The labels' shape (N,), so that code sizing a batch by ``y.shape`` still works."""
        return self.labels.shape


def classification_loss(x, y, /, *, xp=None, device=None):
    """The loss a classifier's head computes on scores ``x`` (N, C) for the targets ``y``.

    ``y`` is labels (N,) or soft targets (N, C) (:func:`softmax_loss`), or
    :class:`DistillationTargets` (:func:`distillation_loss`). Returns ``(loss, dx)``. This is the
    one place a model's loss looks at what kind of targets it was given.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import classification_loss
    >>> x = np.array([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
    >>> round(float(classification_loss(x, np.array([0, 1]))[0]), 4)
    0.4251
    """
    if isinstance(y, DistillationTargets):
        return distillation_loss(x, y.labels, y.teacher_probs, temperature=y.temperature, alpha=y.alpha,
                                 check=y.check, xp=xp, device=device)
    return softmax_loss(x, y, xp=xp, device=device)


def attribute_loss(x, y, /, *, check: bool = True, xp=None):
    """Attribute classification: an independent binary hinge for each of C attributes.

    Parameters
    ----------
    x : array (N, C)
        Scores; ``x[i, j] > 0`` predicts that example i has attribute j.
    y : array (N, C)
        +1 where example i has attribute j, -1 where not (any real or integer dtype).
    check : bool, keyword-only
        Check that y holds only -1 and +1 (one value read back from the device).
    xp : keyword-only
        As :func:`svm_loss`.

    Returns
    -------
    loss : 0-d array on x's device
    dx : array (N, C)

    Notes
    -----
    The notes' ``L_i = sum_j max(0, 1 - y_ij x_ij)``, averaged over the N examples:
    ``dx_ij = -y_ij 1[y_ij x_ij < 1] / N``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import attribute_loss
    >>> x = np.array([[0.5, -2.0], [1.5, 0.2]])
    >>> loss, dx = attribute_loss(x, np.array([[1, -1], [-1, 1]]))
    >>> float(loss)
    1.9
    >>> dx
    array([[-0.5,  0. ],
           [ 0.5, -0.5]])
    >>> attribute_loss(x, np.array([[1, 0], [0, 1]]))
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: attributes y must be +1 (has the attribute) or -1 (has not); found other values ...
    """
    if xp is None:
        xp = backend.get_namespace(x, y)
    if x.ndim != 2 or tuple(y.shape) != tuple(x.shape):
        raise InputError(f"attribute_loss needs scores x (N, C) and attributes y of the same shape; got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    if check and bool(xp.any((y != 1) & (y != -1))):
        raise InputError("attributes y must be +1 (has the attribute) or -1 (has not); found other values "
                         "(0/1 labels become +1/-1 as 2 * y - 1)")
    signs = xp.astype(y, x.dtype)
    margins = xp.maximum(1.0 - signs * x, 0.0)
    N = x.shape[0]
    dx = imul(xp.astype(margins > 0, x.dtype), signs)
    return xp.sum(margins) / N, imul(dx, -1.0 / N)


class ClassTree:
    """A two-level tree of C classes: each class belongs to exactly one of G groups.

    Parameters
    ----------
    groups : sequence of sequences of int
        ``groups[g]`` lists the classes of group g; together they must hold each of 0..C-1
        exactly once. About sqrt(C) groups of about sqrt(C) classes each make a hierarchical
        softmax cost of order sqrt(C) per example.

    Attributes
    ----------
    groups : tuple of tuples of int
    num_groups : int
        G.
    num_classes : int
        C.
    group_of : tuple of int
        The group of each class.
    width : int
        S, the size of the largest group.

    Notes
    -----
    The scores of a hierarchical softmax are G group scores followed by C class scores
    (``x[:, :G]``, ``x[:, G:]``, class c at column ``G + c``):
    ``P(c) = softmax(x[:, :G])_{g(c)} * softmax over the classes of g(c) of their scores``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import ClassTree
    >>> tree = ClassTree([[0, 1], [2, 3]])
    >>> tree
    ClassTree([[0, 1], [2, 3]])
    >>> tree.num_groups, tree.num_classes, tree.group_of, tree.width
    (2, 4, (0, 0, 1, 1), 2)
    >>> np.exp(tree.log_probabilities(np.zeros((1, 6))))
    array([[0.25, 0.25, 0.25, 0.25]])
    >>> ClassTree([[0, 1], [1, 2]])
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: a class tree must hold each class 0..3 exactly once; missing [3], repeated ...
    """

    def __init__(self, groups, /):
        if isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__"):
            raise InputTypeError(f"groups must be a list of lists of class indices, got {groups!r}")
        groups = tuple(tuple(g) for g in groups)
        if not groups or any(not g for g in groups):
            raise InputError("a class tree needs at least one group, and no group may be empty")
        members = [c for g in groups for c in g]
        for c in members:
            if isinstance(c, bool) or not isinstance(c, int):
                raise InputTypeError(f"class indices must be ints, got {c!r}")
        C = len(members)
        seen = set(members)
        if len(seen) != C or seen != set(range(C)):
            missing = sorted(set(range(C)) - seen)
            repeated = sorted({c for c in members if members.count(c) > 1})
            outside = sorted(c for c in seen if not 0 <= c < C)
            raise InputError(f"a class tree must hold each class 0..{C - 1} exactly once; missing {missing}, "
                             f"repeated {repeated}, out of range {outside}")
        self.groups, self.num_groups, self.num_classes = groups, len(groups), C
        group_of = [0] * C
        for g, group in enumerate(groups):
            for c in group:
                group_of[c] = g
        self.group_of = tuple(group_of)
        self.width = max(len(g) for g in groups)
        self._tables = {}

    def __repr__(self) -> str:
        return f"ClassTree({[list(g) for g in self.groups]})"

    def _arrays(self, xp, device, index_dtype):
        """The tree as device arrays (made once per namespace and device): each group's members
        padded to the width with its first member, the padding mask, and the group of each class."""
        key = (xp, str(device), index_dtype)
        tables = self._tables.get(key)
        if tables is None:
            padded = [list(g) + [g[0]] * (self.width - len(g)) for g in self.groups]
            valid = [[1] * len(g) + [0] * (self.width - len(g)) for g in self.groups]
            tables = self._tables[key] = (xp.asarray(padded, dtype=index_dtype, device=device),
                                          xp.asarray(valid, dtype=xp.bool, device=device),
                                          xp.asarray(self.group_of, dtype=index_dtype, device=device))
        return tables

    def log_probabilities(self, x, /):
        """log P(c) of every class (N, C) from hierarchical scores x (N, G + C): for predictions.

        Examples
        --------
        Group 0 twice as likely as group 1 (``log 2`` apart), the classes alike within it:

        >>> import numpy as np
        >>> from xpml.nets.losses import ClassTree
        >>> tree = ClassTree([[0, 1], [2]])
        >>> x = np.array([[np.log(2.0), 0.0, 0.0, 0.0, 0.0]])
        >>> np.exp(tree.log_probabilities(x)).round(4)
        array([[0.3333, 0.3333, 0.3333]])
        """
        xp, device = backend.namespace_and_device(x)
        G = self._check_scores(x)
        members, _, group_of = self._arrays(xp, device, backend.index_dtype(xp, device))
        log_pg = _log_softmax(xp, x[:, :G])
        xc = x[:, G:]
        out = xp.zeros_like(xc)
        # Each class takes its own group's log-sum-exp: one reduction over each group's members.
        for g, group in enumerate(self.groups):
            lse = _log_sum_exp(xp, xp.take(xc, members[g, :len(group)], axis=1))
            in_group = xp.astype(group_of == g, x.dtype)
            out = iadd(out, in_group * (xc - lse + log_pg[:, g:g + 1]))
        return out

    def _check_scores(self, x) -> int:
        G, C = self.num_groups, self.num_classes
        if x.ndim != 2 or x.shape[1] != G + C:
            raise InputError(f"hierarchical scores must have shape (N, G + C) = (N, {G + C}) for {G} groups of "
                             f"{C} classes, got {tuple(x.shape)}")
        return G


def _log_sum_exp(xp, x):
    m = xp.max(x, axis=1, keepdims=True)
    return iadd(xp.log(xp.sum(xp.exp(x - m), axis=1, keepdims=True)), m)


def _log_softmax(xp, x):
    return x - _log_sum_exp(xp, x)


def hierarchical_softmax_loss(x, y, tree: ClassTree, /, *, xp=None, device=None):
    """Softmax loss over a two-level class tree: the label's group, then the label within it.

    Parameters
    ----------
    x : array (N, G + C)
        G group scores, then C class scores (see :class:`ClassTree`).
    y : array (N,) of int
        Labels in [0, C).
    tree : ClassTree
    xp, device : keyword-only
        As :func:`svm_loss`.

    Returns
    -------
    loss : 0-d array on x's device
    dx : array (N, G + C)

    Notes
    -----
    ``-log P(y_i) = -log softmax(x_i[:G])_{g_i} - log softmax(x_i[G + m])_{y_i}`` with ``g_i``
    the group of the label and ``m`` its members. The loss reads the G group scores and the S
    scores of one group per example (S the largest group): of order sqrt(C) with balanced groups.
    The gradient is ``(softmax(x_i[:G]) - e_{g_i}) / N`` on the group scores and
    ``(P(c | g_i) - 1[c = y_i]) / N`` on the classes of ``g_i`` (0 elsewhere), written densely
    into dx like any gradient of dense scores.

    Examples
    --------
    With all scores zero, each of the 4 classes has probability 1/4:

    >>> import numpy as np
    >>> from xpml.nets.losses import ClassTree, hierarchical_softmax_loss
    >>> tree = ClassTree([[0, 1], [2, 3]])
    >>> loss, dx = hierarchical_softmax_loss(np.zeros((1, 6)), np.array([3]), tree)
    >>> round(float(loss), 4), round(float(np.log(4)), 4)
    (1.3863, 1.3863)
    >>> dx
    array([[ 0.5, -0.5,  0. ,  0. ,  0.5, -0.5]])
    """
    xp, device = _namespace(xp, device, x, y)
    G = tree._check_scores(x)
    if tuple(y.shape) != (x.shape[0],):
        raise InputError(f"y must have shape ({x.shape[0]},), one label per row of x; got {tuple(y.shape)}")
    N, C = x.shape[0], tree.num_classes
    members, valid, group_of = tree._arrays(xp, device, y.dtype)
    labels = xp.astype(y, group_of.dtype)
    gy = xp.take(group_of, labels, axis=0)                       # (N,) the label's group
    groups = xp.arange(G, dtype=gy.dtype, device=device)
    onehot_g = xp.astype(xp.reshape(gy, (-1, 1)) == groups, x.dtype)
    # Level one: a softmax over the G groups.
    xg = x[:, :G]
    shifted_g = xg - xp.max(xg, axis=1, keepdims=True)
    pg = xp.exp(shifted_g)
    sum_g = xp.sum(pg, axis=1, keepdims=True)
    pg = itruediv(pg, sum_g)
    loss_g = xp.sum(xp.log(sum_g)) - xp.reshape(shifted_g, (-1,)) @ xp.reshape(onehot_g, (-1,))
    # Level two: the S member scores of each example's group, gathered (padding masked out).
    xc = x[:, G:]
    idx = xp.take(members, gy, axis=0)                           # (N, S)
    live = xp.take(valid, gy, axis=0)
    s = xp.take_along_axis(xc, idx, axis=1)
    s = xp.where(live, s, -math.inf)
    m = xp.max(s, axis=1, keepdims=True)
    lse = iadd(xp.log(xp.sum(xp.exp(s - m), axis=1, keepdims=True)), m)   # (N, 1)
    correct = xp.take_along_axis(xc, xp.reshape(labels, (-1, 1)), axis=1)
    loss = (loss_g + xp.sum(lse - correct)) / N
    # Gradient: P(c | g_i) on the classes of g_i, minus the label's one-hot.
    classes = xp.arange(C, dtype=labels.dtype, device=device)
    in_group = xp.reshape(gy, (-1, 1)) == xp.reshape(group_of, (1, -1))
    pc = xp.where(in_group, xp.exp(xc - lse), 0.0)
    dxc = isub(pc, xp.astype(xp.reshape(labels, (-1, 1)) == classes, x.dtype))
    dx = xp.concat([isub(pg, onehot_g), dxc], axis=1)
    return loss, imul(dx, 1.0 / N)


def l2_penalty(W, /, reg: float, *, xp=None):
    """L2 penalty ``reg * sum(W**2)`` and its gradient ``2 * reg * W``.

    Returns ``(loss, dW)``: a 0-d array and an array shaped like ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.losses import l2_penalty
    >>> loss, dW = l2_penalty(np.array([[1.0, -2.0], [0.5, 0.0]]), 0.1)
    >>> round(float(loss), 4)
    0.525
    >>> dW
    array([[ 0.2, -0.4],
           [ 0.1,  0. ]])
    """
    if xp is None:
        xp = backend.get_namespace(W)
    reg = float(reg)
    # A dot product of the flattened weights: no D x H temporary for W * W (4x faster in NumPy).
    # matmul, not xp.vecdot: array-api-compat's vecdot for torch broadcasts (100x slower there).
    flat = xp.reshape(W, (-1,))
    return reg * (flat @ flat), (2.0 * reg) * W


# At the end: nets.hierarchical needs nothing from this module, and its loss belongs with the others.
from .hierarchical import hierarchical_softmax_loss_from_features  # noqa: E402
