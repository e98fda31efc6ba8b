"""The nets of CS231n (two-layer, fully connected of any depth) and the training machinery of the course.

- :mod:`nets.layers`: forward/backward pairs (affine, activations, batch/layer norm, dropout)
  with the course's names and conventions; :mod:`nets.losses` the losses on class scores;
  :mod:`nets.landscape` the optimization chapter (loss landscapes, three search strategies).
- :class:`FullyConnectedNet`, :class:`TwoLayerNet`: the nets, built from those layers.
- :class:`Model` (:mod:`nets.model`): the contract every model implements, and the course's face
  built on it.
- :class:`Solver`: the one training loop, for every model (the linear classifiers train on it
  too); :mod:`nets.rules` its update rules and transforms (init/update pairs; :mod:`nets.optim`
  the course's ``sgd(w, dw, config)``... over them), :mod:`nets.schedules` its learning-rate
  schedules, :mod:`nets.augment` its on-device minibatch augmentation.
- :func:`save_model` / :func:`load_model` and :class:`Ensemble`: checkpoints of any model and
  averages of several.
"""

from . import (
    augment,
    checkpoint,
    conv_layers,
    convnet,
    diagnostics,
    distill,
    finetune,
    init,
    landscape,
    layers,
    losses,
    metrics,
    model,
    optim,
    preprocessing,
    regularization,
    rules,
    schedules,
)
from .checkpoint import load_model, save_model
from .convnet import ConvNet, ThreeLayerConvNet
from .distill import Distillation
from .ensemble import Ensemble
from .fc_net import FullyConnectedNet
from .finetune import load_pretrained, replace_head
from .metrics import accuracy
from .model import CourseModel, Model
from .optim import get_update_rule
from .preprocessing import PCA, MeanSubtraction, Standardization
from .schedules import ExponentialDecay, InverseTimeDecay, StepDecay, get_schedule
from .search import SearchIncomplete, SearchResult, diverged_at, random_search
from .solver import Checkpoints, Solver
from .two_layer_net import TwoLayerNet

__all__ = [
    "ConvNet",
    "ThreeLayerConvNet",
    "conv_layers",
    "convnet",
    "PCA",
    "Checkpoints",
    "CourseModel",
    "Distillation",
    "Ensemble",
    "ExponentialDecay",
    "FullyConnectedNet",
    "InverseTimeDecay",
    "MeanSubtraction",
    "Model",
    "SearchIncomplete",
    "SearchResult",
    "Solver",
    "Standardization",
    "StepDecay",
    "TwoLayerNet",
    "accuracy",
    "augment",
    "checkpoint",
    "diagnostics",
    "distill",
    "diverged_at",
    "finetune",
    "get_schedule",
    "get_update_rule",
    "init",
    "landscape",
    "layers",
    "load_model",
    "load_pretrained",
    "losses",
    "metrics",
    "model",
    "optim",
    "preprocessing",
    "random_search",
    "regularization",
    "replace_head",
    "rules",
    "save_model",
    "schedules",
]
