"""xpml's array-namespace shim: one code path for NumPy on the CPU and CuPy on CUDA GPUs.

The math in ``classifiers`` and ``nets`` never imports numpy or cupy. It asks this package for
the namespace and device of its inputs (:func:`namespace_and_device`), creates every array on
that device, and draws random numbers from a :class:`Generator` that gives the same values on
every backend. Host transfers (:func:`to_numpy`, :func:`to_backend`) and host file I/O
(:mod:`backend.io`) happen only at the edges of a program.
"""

from ._dtypes import float_dtype, index_dtype, is_floating
from ._kernels import kth_smallest, sqrt, sum_of_squares
from ._lowprec import PRODUCT_PRECISIONS, LowPrecisionProduct, exact_matmul, low_precision_product
from ._namespace import BackendMismatchError, get_device, get_namespace, namespace_and_device
from ._random import Generator
from ._select import (
    BACKEND_NAMES,
    Backend,
    BackendStatus,
    BackendUnavailableError,
    as_backend,
    backend_of,
    check_on_backend,
    get_backend,
    list_backends,
)
from ._sync import synchronize
from ._transfer import to_backend, to_numpy

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendMismatchError",
    "BackendStatus",
    "BackendUnavailableError",
    "Generator",
    "LowPrecisionProduct",
    "PRODUCT_PRECISIONS",
    "as_backend",
    "backend_of",
    "check_on_backend",
    "exact_matmul",
    "float_dtype",
    "get_backend",
    "get_device",
    "get_namespace",
    "index_dtype",
    "is_floating",
    "kth_smallest",
    "list_backends",
    "low_precision_product",
    "namespace_and_device",
    "sqrt",
    "sum_of_squares",
    "synchronize",
    "to_backend",
    "to_numpy",
]
