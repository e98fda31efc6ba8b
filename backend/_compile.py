"""Compiling a pure function of arrays where the backend has a compiler, and the generator it draws from.

JAX compiles a function of arrays with ``jax.jit``: the whole training step becomes one XLA
program instead of a few hundred dispatched operations. The other backends run eagerly here:
``torch.compile`` was measured on the CPU and did not pay for its compilation time (tens of
seconds for a gain of about a millisecond a step), NumPy and array-api-strict have no compiler,
and CuPy's kernels are already fused where it matters.

Inside a compiled function Python values are frozen into the trace, so a generator's counter
(a Python int) cannot advance there. :func:`traced_generator` gives the function a generator whose
stream starts at a counter passed in as an array: its draws are those the real generator would
make from that counter, bit for bit, and how far it advanced is known when the trace is made.
"""

from __future__ import annotations

from ._random import _MASK32, Generator, threefry2x32
from ._select import Backend
from .errors import InputError

__all__ = ["advance_counter", "compiler", "counter_words", "traced_generator"]


def compiler(bk: Backend, /):
    """The compiler of pure functions of arrays on ``bk`` (its adapter's: ``jax.jit`` on JAX), or None."""
    return bk.adapter.compiler()


def counter_words(rng: Generator, /, counter: int | None = None):
    """The counter of ``rng`` (or ``counter``) as a (2,) array of words, low then high, on its device."""
    stream = rng._stream_for(host=False)
    value = rng.counter if counter is None else counter
    return stream.xp.asarray([value & _MASK32, value >> 32], dtype=stream.dtype, device=stream.device)


def advance_counter(rng: Generator, words, blocks: int, /):
    """:func:`counter_words` of ``rng`` moved on by ``blocks`` (< 2**32), computed where ``words`` live."""
    if not blocks:
        return words
    stream = rng._stream_for(host=False)
    lo = words[0] + blocks
    if stream.wide:
        lo = lo & _MASK32
    return stream.xp.stack([lo, words[1] + stream.xp.astype(lo < words[0], stream.dtype)])


class _OffsetStream:
    """The device stream of a generator, shifted by a counter held in an array (traceable)."""

    def __init__(self, stream, base):
        self.stream, self.base = stream, base
        self.xp, self.device, self.wide, self.dtype = stream.xp, stream.device, stream.wide, stream.dtype
        self.full = stream.full

    def words(self, start: int, n: int):
        """As the real stream's ``words(base + start, n)``: block ``c`` is the cipher of
        ``(c mod 2**32, c // 2**32)``, first words of all blocks, then second words, cut to ``n``."""
        xp, blocks = self.xp, -(-n // 2)
        if start + blocks >= 2**32:
            raise InputError("a compiled step cannot draw 2**32 blocks")
        lo, hi = self.base[0], self.base[1]
        x0 = xp.arange(start, start + blocks, dtype=self.dtype, device=self.device) + lo
        if self.wide:
            x0 = x0 & _MASK32
        # The low word wrapped past 2**32 exactly where it is now below the base's low word.
        x1 = xp.astype(x0 < lo, self.dtype) + hi
        keys = self.stream.keys
        pairs = [(keys[s, 0], keys[s, 1]) for s in range(keys.shape[0])] if hasattr(keys, "shape") else keys
        x0, x1 = threefry2x32(x0, x1, pairs, wide=self.wide)
        return xp.concat([x0, x1])[:n]


class _NoHostDraws:
    def __getattr__(self, name):
        raise RuntimeError("a compiled step cannot make host draws (normal): draw initial weights outside it")


def traced_generator(rng: Generator, base, /) -> Generator:
    """A generator that draws, on ``rng``'s device, what ``rng`` would draw from counter ``base``.

    ``base`` is :func:`counter_words` of a counter, possibly a traced array. The returned
    generator's ``counter`` starts at 0 and counts the blocks drawn from ``base`` on: add it to
    ``rng.counter`` after the step to keep the real generator where the step left it.
    """
    out = Generator.__new__(Generator)
    out._setup(rng.backend, rng.seed, rng.key, 0)
    out._device = _OffsetStream(rng._stream_for(host=False), base)
    out._host = _NoHostDraws()
    return out
