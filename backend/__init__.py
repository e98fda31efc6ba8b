"""xpml's array-namespace shim: one code path for NumPy, CuPy, array-api-strict, PyTorch and JAX.

The math in ``classifiers`` and ``nets`` never imports numpy or cupy. It asks this package for
the namespace and device of its inputs (:func:`namespace_and_device`), creates every array on
that device, and draws random numbers from a :class:`Generator` that gives the same values on
every backend. Host transfers (:func:`to_numpy`, :func:`to_backend`) and host file I/O
(:mod:`backend.io`) happen only at the edges of a program.

What differs between backends lives in one adapter class per backend (``numpy_backend.py``,
``cupy_backend.py``, ``strict_backend.py``, ``torch_backend.py``, ``jax_backend.py``; the contract
is :class:`Adapter`), registered in one table (``_registry.py``, :func:`register_backend`).
"""

from ._adapter import Adapter
from ._dtypes import float_dtype, index_dtype, is_floating
from ._kernels import flushes_subnormals, holds_flushed_subnormals, kth_smallest, sqrt, sum_of_squares
from ._lowprec import PRODUCT_PRECISIONS, LowPrecisionProduct, exact_matmul, low_precision_product
from ._namespace import BackendMismatchError, get_device, get_namespace, namespace_and_device
from ._random import Generator
from ._registry import register_backend
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
from ._threads import cpu_threads, default_cpu_threads
from ._transfer import to_backend, to_numpy

__all__ = [
    "Adapter",
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
    "cpu_threads",
    "default_cpu_threads",
    "exact_matmul",
    "float_dtype",
    "flushes_subnormals",
    "get_backend",
    "get_device",
    "get_namespace",
    "holds_flushed_subnormals",
    "index_dtype",
    "is_floating",
    "kth_smallest",
    "list_backends",
    "low_precision_product",
    "namespace_and_device",
    "register_backend",
    "sqrt",
    "sum_of_squares",
    "synchronize",
    "to_backend",
    "to_numpy",
]
