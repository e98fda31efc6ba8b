"""Classifiers of CS231n assignment 1, written once on the backend shim (NumPy, CuPy, array-api-strict)."""

from .data_utils import make_spiral
from .gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "make_spiral",
    "rel_error",
]
