"""Classifiers of CS231n assignment 1, written once on the backend shim (NumPy, CuPy, array-api-strict)."""

from .attribute import AttributeClassifier, attribute_accuracy
from .cross_validation import cross_validate, fold_slices, knn_cross_validate
from .data_utils import append_bias, get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch, make_spiral, mean_image
from .gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error
from .k_nearest_neighbor import KNearestNeighbor
from .linear_classifier import LinearClassifier, LinearSVM, Softmax
from .linear_svm import svm_loss_naive, svm_loss_vectorized
from .softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = [
    "AttributeClassifier",
    "KNearestNeighbor",
    "LinearClassifier",
    "LinearSVM",
    "Softmax",
    "append_bias",
    "attribute_accuracy",
    "cross_validate",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "fold_slices",
    "get_CIFAR10_data",
    "grad_check_sparse",
    "knn_cross_validate",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "make_spiral",
    "mean_image",
    "rel_error",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "svm_loss_naive",
    "svm_loss_vectorized",
]
