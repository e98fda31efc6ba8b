"""How many CPU threads xpml's backends use: one setting for every pool.

A CPU run uses several thread pools at once: the BLAS's (OpenBLAS, MKL: limited through
threadpoolctl, with the OpenMP runtime's), PyTorch's own intra- and inter-op pools, XLA's.
:func:`cpu_threads` limits all of them, each through its adapter (``Adapter.set_threads``). Left
to themselves each pool starts one thread per core, and on a machine other programs keep busy
that oversubscription makes everything wait (a PyTorch run went from 12 s to 228 s on a busy
2-core machine); the default here is the cores this process may use less those already busy.

XLA reads its thread setting once, when JAX starts its backends (the first JAX array or device
query, which ``backend.get_backend("jax")`` makes): limit the threads before choosing a JAX
backend, or set ``XLA_FLAGS`` yourself, for it to take effect there.
"""

from __future__ import annotations

import contextlib
import operator

from . import _registry
from ._adapter import cpu_count
from .errors import InputError

__all__ = ["cpu_threads", "default_cpu_threads"]


def default_cpu_threads() -> int:
    """The threads a CPU run uses when not told: the cores in this process's affinity mask less
    the busy ones (the load average), at least 1.

    Examples
    --------
    >>> from xpml import backend
    >>> backend.default_cpu_threads() >= 1
    True
    """
    return cpu_count()


@contextlib.contextmanager
def cpu_threads(n: int | None = None, /):
    """Within the block, every CPU thread pool of every backend uses at most ``n`` threads.

    Parameters
    ----------
    n : int or None
        Threads, at least 1; None: :func:`default_cpu_threads`.

    Yields
    ------
    int
        The number of threads in force.

    Notes
    -----
    The BLAS and OpenMP pools are limited through threadpoolctl (when installed), PyTorch's with
    ``torch.set_num_threads`` (its inter-op pool only before its first parallel work), XLA's with
    ``XLA_FLAGS`` before JAX starts (after that, not at all: see the module's docstring). The
    settings that can be undone are put back after the block.

    Examples
    --------
    >>> from xpml import backend
    >>> with backend.cpu_threads(1) as n:
    ...     print(n)
    1
    """
    n = default_cpu_threads() if n is None else operator.index(n)
    if n < 1:
        raise InputError(f"the number of CPU threads must be at least 1, got {n}")
    restore = []
    with contextlib.ExitStack() as stack:
        for adapter in _registry.ADAPTERS.values():
            previous = adapter.set_threads(n)
            if previous is not None:
                restore.append((adapter, previous))
                stack.callback(adapter.set_threads, previous)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=n))
        yield n
