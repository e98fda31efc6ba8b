"""Entry-point checks shared by the classifiers, built on ``backend.validation``.

They read a few values back from the device (finiteness, label range), so they run once per
public call and never inside a training loop; the loops call the unchecked kernels.
"""

from __future__ import annotations

from .. import backend
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_data, check_labels, check_positive

__all__ = ["check_features", "check_loss_inputs", "check_train_set"]


def check_train_set(X, y, /):
    """Check a training set ``X`` (N, D), ``y`` (N,) of one backend; return ``(xp, device, num_classes)``."""
    xp, device = backend.namespace_and_device(X, y)
    check_data(X, name="X")
    num_classes = check_labels(y, name="y", n=X.shape[0])
    return xp, device, num_classes


def check_features(X, /, *, dim: int, name: str = "X"):
    """Check a query matrix ``X`` (N, dim): floating, finite, non-empty, ``dim`` columns."""
    check_data(X, name=name)
    if X.shape[1] != dim:
        raise InputError(f"{name} has {X.shape[1]} features per row but the model was trained on {dim}")


def check_loss_inputs(W, X, y, reg, /):
    """Check the arguments of a loss ``(W, X, y, reg)``; return ``(xp, device)``.

    W is (D, C), X (N, D) of W's dtype, y (N,) integer labels in [0, C), reg a number >= 0.
    """
    xp, device = backend.namespace_and_device(W, X, y)
    check_data(W, name="W")
    check_data(X, name="X")
    if X.shape[1] != W.shape[0]:
        raise InputError(f"X has {X.shape[1]} features per row but W has {W.shape[0]} rows; W must be (D, C)")
    if X.dtype != W.dtype:
        raise InputTypeError(f"X is {X.dtype} but W is {W.dtype}; cast one of them so both have the same dtype")
    check_labels(y, name="y", n=X.shape[0], num_classes=W.shape[1])
    check_positive(reg, name="reg", allow_zero=True)
    return xp, device
