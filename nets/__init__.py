"""The two-layer net of CS231n assignment 1 and the training machinery of the course notes."""

from . import checkpoint, diagnostics, init, optim, preprocessing, regularization, schedules
from .checkpoint import load_model, save_model
from .ensemble import Ensemble
from .optim import get_update_rule
from .preprocessing import PCA, MeanSubtraction, Standardization
from .schedules import ExponentialDecay, InverseTimeDecay, StepDecay, get_schedule
from .search import SearchIncomplete, SearchResult, diverged_at, random_search
from .two_layer_net import TwoLayerNet

__all__ = [
    "PCA",
    "Ensemble",
    "ExponentialDecay",
    "InverseTimeDecay",
    "MeanSubtraction",
    "SearchIncomplete",
    "SearchResult",
    "Standardization",
    "StepDecay",
    "TwoLayerNet",
    "checkpoint",
    "diagnostics",
    "diverged_at",
    "get_schedule",
    "get_update_rule",
    "init",
    "load_model",
    "optim",
    "preprocessing",
    "random_search",
    "regularization",
    "save_model",
    "schedules",
]
