"""The two-layer net of CS231n assignment 1 and the training machinery of the course notes."""

from . import diagnostics, init, optim, regularization, schedules
from .optim import get_update_rule
from .schedules import ExponentialDecay, InverseTimeDecay, StepDecay, get_schedule
from .two_layer_net import TwoLayerNet

__all__ = [
    "ExponentialDecay",
    "InverseTimeDecay",
    "StepDecay",
    "TwoLayerNet",
    "diagnostics",
    "get_schedule",
    "get_update_rule",
    "init",
    "optim",
    "regularization",
    "schedules",
]
