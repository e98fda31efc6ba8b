"""A seeded random generator whose draws are identical on every backend and made on its device.

Rule 5 of the design: the same seed gives the same weights, minibatches and dropout masks on
NumPy, CuPy, array-api-strict, PyTorch and JAX, so a CPU run and a GPU run can be compared number
for number. The draws come from a counter-based generator, Threefry-2x32 with 20 rounds (Salmon,
Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the generator of
``jax.random``). It is written once, below, in array-API integer arithmetic, so the uniform, integer,
permutation and Bernoulli draws that a training loop makes run on the generator's device from a
key and a counter: no random values cross from the host. Normal draws, used once per model for the
initial weights, are made on the host from the same stream and moved once.
"""

from __future__ import annotations

import functools
import math
import operator
import secrets

import numpy as np

from ._arith import iadd, iand, imul, writeable
from ._dtypes import float_dtype, index_dtype
from ._select import Backend, as_backend, get_backend
from .errors import InputError, InputTypeError

__all__ = ["Generator", "threefry2x32"]

_MASK32 = 0xFFFFFFFF
# Threefry-2x32's rotation constants, its key-schedule parity and its 5 groups of 4 rounds.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_GROUPS = 5


def key_schedule(k0: int, k1: int, /) -> list[tuple[int, int]]:
    """The six key injections of Threefry-2x32-20 for the key ``(k0, k1)``, as pairs of ints."""
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    return [(ks[s % 3], (ks[(s + 1) % 3] + s) & _MASK32) for s in range(_GROUPS + 1)]


def threefry2x32(x0, x1, keys, /, *, wide: bool = False):
    """Threefry-2x32-20 of the counter words ``(x0, x1)`` (arrays of one shape) under ``keys``.

    ``keys`` is :func:`key_schedule`'s list of pairs, as ints or 0-d arrays of the words' dtype.
    The words are uint32, or int64 holding values below 2**32 with ``wide=True``, where a mask
    after each addition and left shift keeps them there. ``x0`` and ``x1`` must be fresh
    temporaries: they are updated in place where both allow writes (:func:`backend._arith.writeable`),
    and replaced by new arrays where not (JAX, read-only arrays), with the same result.

    Notes
    -----
    A round is ``x0 <- x0 + x1``, ``x1 <- rotl(x1, r) ^ x0`` (mod 2**32) with ``r`` from two
    alternating sets of four rotations; every four rounds the key schedule
    ``ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)`` is injected: ``x0 += ks[s % 3]``,
    ``x1 += ks[(s + 1) % 3] + s``. It is the reference algorithm of Random123 and of JAX, checked
    against their known-answer vectors.
    """
    # Decided once, not per operation as backend._arith does: the guard costs ~5% of 112 small ops.
    if writeable(x0) and writeable(x1):
        add, shl, bor, xor, band = operator.iadd, operator.ilshift, operator.ior, operator.ixor, operator.iand
    else:
        add, shl, bor, xor, band = operator.add, operator.lshift, operator.or_, operator.xor, operator.and_
    x0 = add(x0, keys[0][0])
    x1 = add(x1, keys[0][1])
    if wide:
        x0 = band(x0, _MASK32)
        x1 = band(x1, _MASK32)
    for g in range(_GROUPS):
        for r in _ROTATIONS[g % 2]:
            x0 = add(x0, x1)
            spill = x1 >> (32 - r)
            x1 = shl(x1, r)
            if wide:
                x0 = band(x0, _MASK32)
                x1 = band(x1, _MASK32)
            x1 = bor(x1, spill)
            x1 = xor(x1, x0)
        x0 = add(x0, keys[g + 1][0])
        x1 = add(x1, keys[g + 1][1])
        if wide:
            x0 = band(x0, _MASK32)
            x1 = band(x1, _MASK32)
    return x0, x1


@functools.cache
def _jax_cipher():
    """:func:`threefry2x32` compiled by ``jax.jit``: one fused kernel instead of ~120 dispatches."""
    import jax

    def cipher(keys, x0, x1):
        return threefry2x32(x0, x1, [(keys[s, 0], keys[s, 1]) for s in range(_GROUPS + 1)])

    return jax.jit(cipher)


@functools.cache
def _jax_mask():
    """:func:`_mask_of_words` of fresh words, compiled by ``jax.jit``: a whole Bernoulli draw is one
    dispatch (eagerly, the ~10 operations around the cipher would cost more than the cipher)."""
    import jax
    import jax.numpy as jnp

    def mask(keys, low, *, high, shape, bits, t, dtype, scale):
        n = math.prod(shape)
        count = -(-n // (32 // bits))
        blocks = -(-count // 2)
        x0 = jnp.arange(blocks, dtype=jnp.uint32) + low  # blocks low + i, all below 2**32
        x1 = jnp.full((blocks,), high, dtype=jnp.uint32)
        x0, x1 = threefry2x32(x0, x1, [(keys[s, 0], keys[s, 1]) for s in range(_GROUPS + 1)])
        mask = _mask_of_words(jnp, jnp.concat([x0, x1])[:count], n, bits, t, dtype=dtype, scale=scale, fused=True)
        # The next draw's low counter word, made here: no 0-d array is filled for it eagerly.
        return jnp.reshape(mask, shape), low + jnp.uint32(blocks)

    return jax.jit(mask, static_argnames=("high", "shape", "bits", "t", "dtype", "scale"))


class _Stream:
    """The cipher's output words for one namespace and device, from a key and a block counter."""

    def __init__(self, bk: Backend, key: tuple[int, int]):
        self.xp, self.device = bk.xp, bk.device
        # Where uint32 lacks the cipher's arithmetic, words live in int64 masked to 32 bits.
        self.wide = bk.adapter.wide_words
        self.dtype = self.xp.int64 if self.wide else self.xp.uint32
        # Filled on the device word by word: not even the key is copied from the host.
        pairs = [(self.full(a), self.full(b)) for a, b in key_schedule(*key)]
        self.jit = bk.adapter.compiled_draws
        self.keys = self.xp.stack([self.xp.stack(pair) for pair in pairs]) if self.jit else pairs
        # On a CPU, chunks whose temporaries stay in cache are fastest; a GPU wants few launches.
        self.chunk = 2**16 if bk.on_cpu else 2**24
        self.next_low = (None, None)

    def low_word(self, counter: int):
        """The low word of ``counter`` as a 0-d word array: the one a compiled draw returned for it, if any."""
        at, low = self.next_low
        return low if at == counter else self.full(counter & _MASK32)

    def full(self, value: int):
        """A 0-d word array (filled on the device: no host-to-device copy)."""
        return self.xp.full((), value, dtype=self.dtype, device=self.device)

    def words(self, start: int, n: int):
        """Words ``[x0 of blocks start..start+m-1, then x1 of the same blocks][:n]``, m = ceil(n/2).

        Block ``c`` is the cipher of the counter ``(c mod 2**32, c // 2**32)``. Chunks never cross
        a multiple of 2**32, so the high counter word is constant within each.
        """
        xp, blocks = self.xp, -(-n // 2)
        lows, highs = [], []
        c = start
        while c < start + blocks:
            m = min(start + blocks - c, self.chunk, 2**32 - (c & _MASK32))
            # A compiled cipher is specialised to its shape: powers of two bound the compilations.
            size = max(256, 1 << (m - 1).bit_length()) if self.jit else m
            x0 = xp.arange(c & _MASK32, (c & _MASK32) + size, dtype=self.dtype, device=self.device)
            x1 = xp.full((size,), c >> 32, dtype=self.dtype, device=self.device)
            if self.jit:
                x0, x1 = _jax_cipher()(self.keys, x0, x1)
            else:
                x0, x1 = threefry2x32(x0, x1, self.keys, wide=self.wide)
            lows.append(x0[:m])
            highs.append(x1[:m])
            c += m
        if not lows:
            return xp.zeros((0,), dtype=self.dtype, device=self.device)
        return xp.concat(lows + highs)[:n]


def _mask_of_words(xp, words, n: int, bits: int, t: int, *, dtype, scale, device=None, wide=False, fused=False):
    """``scale`` (or 1) where each of the first ``n`` ``bits``-bit fields of ``words`` is below ``t``, else 0.

    Field s of word i (bits s*b .. s*b + b - 1) is draw s * W + i of W words. Shifted to the top of
    its word it is below t * 2**(32 - b) exactly when the field is below t, whatever the bits under
    it: one shift and one compare per draw, no mask. Eagerly, one broadcast shift makes the fewest
    calls; a compiler (``fused``) fuses one shift and compare per field far better. Both are exact.
    """
    per_word = 32 // bits
    threshold = xp.full((), t << (32 - bits), dtype=words.dtype, device=device)
    if fused:
        kept = xp.concat([(words << s) < threshold for s in range(32 - bits, -1, -bits)])[:n]
    else:
        if per_word > 1:
            shifts = xp.arange(32 - bits, -1, -bits, dtype=words.dtype, device=device)
            words = xp.reshape(xp.reshape(words, (1, -1)) << xp.reshape(shifts, (per_word, 1)), (-1,))
            if wide:
                words = iand(words, _MASK32)
        kept = words[:n] < threshold
    mask = xp.astype(kept, dtype)
    # (xp.where with 0-d branches would be one pass, but is 20 times slower on NumPy)
    return mask if scale is None else imul(mask, scale)


def _mulhilo(a, n: int):
    """High and low 32-bit words of ``a * n`` for words ``a`` and an int ``n <= 2**32``.

    Computed in 16-bit limbs so that no intermediate exceeds 32 bits: no 64-bit type is needed.
    """
    n_hi, n_lo = n >> 16, n & 0xFFFF
    a_hi, a_lo = a >> 16, a & 0xFFFF
    p_ll, p_lh, p_hl, p_hh = a_lo * n_lo, a_lo * n_hi, a_hi * n_lo, a_hi * n_hi
    mid = (p_ll >> 16) + (p_lh & 0xFFFF) + (p_hl & 0xFFFF)
    hi = p_hh + (p_lh >> 16) + (p_hl >> 16) + (mid >> 16)
    lo = ((mid & 0xFFFF) << 16) | (p_ll & 0xFFFF)
    return hi, lo


def _shape(shape) -> tuple[int, ...]:
    return (operator.index(shape),) if not isinstance(shape, tuple | list) else tuple(map(operator.index, shape))


def _bits_per_draw(m: int) -> int:
    """The fewest bits, a power of two, that hold the threshold ``m / 2**32`` exactly."""
    if m in (0, 2**32):
        return 1
    need = 32 - ((m & -m).bit_length() - 1)
    return 1 << (need - 1).bit_length()


def _bernoulli_field(p: float, /) -> tuple[int, int]:
    """``(bits, t)``: a draw is 1 when a ``bits``-bit field of a word is below ``t``: probability ``t / 2**bits``.

    ``t / 2**bits`` is ``p`` rounded to a multiple of ``2**-32`` (within ``2**-33`` of it), with
    ``bits`` the fewest (a power of two) that hold it exactly: 32 for 0.8, 1 for 0.5.
    """
    m = round(p * 2**32)
    bits = _bits_per_draw(m)
    return bits, m >> (32 - bits)


def _probability(p, name: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{name} is a probability in [0, 1], got {p!r}")
    return p


class Generator:
    """Seeded draws made on one backend and device, identical on every backend.

    Parameters
    ----------
    seed : int or None
        The seed, ``0 <= seed < 2**64``; None draws fresh entropy (not reproducible).
    xp : namespace, Backend, str or None, keyword-only
        Where draws are placed: a namespace (with ``device``), a :class:`Backend`, or a backend
        name. None means NumPy on the CPU.
    device : keyword-only
        The device, with a namespace for ``xp``.

    Attributes
    ----------
    seed, xp, device, backend
        As given (``backend`` is the resolved :class:`Backend`).
    key : tuple of two ints
        The cipher key, ``(seed // 2**32, seed % 2**32)`` as in ``jax.random.key(seed)``.
    counter : int
        Blocks of 64 bits used so far; with the key it is the whole state.

    Notes
    -----
    **Stream.** Block ``c`` of the stream is Threefry-2x32-20 (:func:`threefry2x32`) of the
    counter ``(c mod 2**32, c // 2**32)`` under the key. A call that needs ``n`` 32-bit words
    takes the next ``m = ceil(n / 2)`` blocks and uses their first words, then their second
    words, and advances the counter by ``m``, so a draw depends only on the seed and the draws
    before it, never on the backend, the device or how the work is chunked. The words are uint32
    (int64 masked to 32 bits on torch), so the arithmetic needs no 64-bit type and runs on JAX
    without ``jax_enable_x64``.

    **Uniform floats.** float32: ``(w >> 8) * 2**-24``; float64: ``((w0 >> 5) * 2**26 + (w1 >> 6))
    * 2**-53`` from the two words of one block. Both are exact, then ``low + (high - low) * u`` is
    rounded in the target dtype (which can round up to ``high``).

    **Bounded integers** in ``[low, high)``, ``n = high - low <= 2**32``: Lemire's
    multiply-and-shift on 64 random bits, ``floor((w0 * 2**32 + w1) * n / 2**64)``, with the products
    formed in 16-bit limbs. There is no rejection loop, so a value's probability differs from
    ``1 / n`` by less than ``2**-64`` (a relative bias below ``n * 2**-64``, under 3e-15 for a
    million rows): the modulo bias of a single 32-bit word is avoided.

    **Permutations** sort the 64-bit keys ``(w0, w1)`` of each index (two stable argsorts);
    equal keys, which occur with probability below ``n**2 * 2**-65``, keep index order.

    **Bernoulli(p)** rounds ``p`` to ``m / 2**32`` and compares ``b``-bit fields of the words with
    ``m / 2**(32 - b)``, where ``b`` is the fewest bits (a power of two) that hold that threshold
    exactly: one bit for ``p = 0.5``, two for 0.25 or 0.75, 32 for 0.2. A word thus serves
    ``32 / b`` draws with no loss of exactness (draw ``s * W + i`` of ``W`` words reads bits
    ``s*b .. s*b + b - 1`` of word ``i``), which makes dropout masks for the usual ``p`` cheap.

    **Dropout masks** (:meth:`dropout_mask`) are Bernoulli draws of the keep probability ``p`` as
    above (the keep rate is within ``2**-33`` of ``p``: every decision reads all 32 bits of a word
    unless ``p`` is a multiple of ``2**-16`` or coarser, when fewer bits are already exact), with
    the kept units scaled by exactly ``1 / p``, the course's inverted dropout.

    **Normal** draws (initial weights) are made on the host from the same stream, by Box-Muller
    in float64 on 53-bit uniforms (``sqrt(-2 log(1 - u1)) * (cos 2 pi u2, sin 2 pi u2)``), cast
    to the dtype there and moved once: identical on every backend of one machine.

    **Speed.** On JAX the cipher is compiled once per chunk size (a power of two), and a whole
    Bernoulli or dropout draw once per shape and ``p``; elsewhere the cipher runs as ~110
    elementwise operations on chunks of 2**16 blocks, sized for the CPU's cache, at about 14 ns a
    block in NumPy. A call thus costs about 150 operations (kernel launches on a GPU) whatever its
    size: draw for many iterations at once where the training loop allows. A dropout mask costs
    about ``14 / (64 / b)`` ns a unit for the cipher plus ~0.4 ns to compare: 7 ns for a
    ``p`` that needs all 32 bits, 0.2 ns for ``p = 0.5``. Drawing the masks of several iterations
    in one call (a leading axis) spreads the per-call cost. On torch's CPU, whose eager operations
    cost ~10 us each and lack uint32, NumPy computes Bernoulli and dropout masks in the tensor's
    (host) memory, handed over without a copy; on a torch GPU they run in int64 holding 32-bit words.

    Examples
    --------
    >>> from xpml import backend
    >>> g = backend.Generator(0)
    >>> g
    Generator(seed=0, backend='numpy', counter=0)
    >>> g.normal((2, 3)).round(3)
    array([[-0.186, -0.402, -0.519],
           [-1.024, -0.771,  0.854]], dtype=float32)
    >>> g.integers(0, 10, shape=(5,))
    array([6, 1, 1, 1, 2])
    >>> a = backend.Generator(7).uniform((4,))
    >>> b = backend.Generator(7, xp="array_api_strict").uniform((4,))
    >>> bool((a == backend.to_numpy(b)).all())  # same seed, same draws on every backend
    True
    """

    def __init__(self, seed: int | None = None, /, *, xp=None, device=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise InputTypeError(f"seed must be an int or None, got {type(seed).__name__}")
        if seed is not None and not 0 <= seed < 2**64:
            raise InputError(f"seed must be non-negative and below 2**64, got {seed}")
        bits = secrets.randbits(64) if seed is None else int(seed)
        self._setup(as_backend(xp, device=device), None if seed is None else int(seed),
                    (bits >> 32, bits & _MASK32), 0)

    def _setup(self, bk: Backend, seed, key, counter) -> None:
        self.backend, self.xp, self.device = bk, bk.xp, bk.device
        self.seed, self.key, self.counter = seed, key, counter
        # Made at the first draw that needs them: a generator that only draws initial weights
        # (host normals) never puts its key schedule on the device.
        self._device = self._host = None
        self._float_dtypes = {}

    @classmethod
    def _restore(cls, bk, seed, key, counter) -> Generator:
        rng = cls.__new__(cls)
        rng._setup(get_backend(bk), seed, tuple(key), counter)
        return rng

    def __reduce__(self):
        return Generator._restore, (self.backend, self.seed, self.key, self.counter)

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed}, backend={self.backend.label!r}, counter={self.counter})"

    # ---- the stream -------------------------------------------------------------------------

    def _stream_for(self, host: bool) -> _Stream:
        if host:
            if self._host is None:
                self._host = _Stream(get_backend("numpy"), self.key)
            return self._host
        if self._device is None:
            self._device = _Stream(self.backend, self.key)
        return self._device

    def _words(self, n: int, *, host: bool = False):
        """The next ``n`` words, on the device (or, computed with NumPy, on the host)."""
        stream = self._stream_for(host)
        start = self.counter
        self.counter += -(-n // 2)
        return stream.words(start, n)

    def _unit(self, n: int, dt, *, host: bool = False):
        """``n`` uniforms on [0, 1) in ``dt`` (a float dtype of the stream's namespace)."""
        xp = self._stream_for(host).xp
        if dt == xp.float32:
            return imul(xp.astype(self._words(n, host=host) >> 8, dt), 2.0**-24)
        w = self._words(2 * n, host=host)
        u = imul(xp.astype(w[:n] >> 5, dt), 2.0**26)
        u = iadd(u, xp.astype(w[n:] >> 6, dt))
        return imul(u, 2.0**-53)

    # ---- draws ----------------------------------------------------------------------------------

    def normal(self, shape, /, *, loc: float = 0.0, scale: float = 1.0, dtype=None):
        """Draws from N(loc, scale**2) of the given shape; float32 unless ``dtype`` says otherwise.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> g.normal((3,), loc=1.0, scale=0.1).round(3)
        array([0.918, 0.984, 1.065], dtype=float32)
        """
        shape = _shape(shape)
        dt = float_dtype(self.xp, self.device, dtype)
        n = math.prod(shape)
        pairs = -(-n // 2)
        u = self._unit(2 * pairs, np.float64, host=True)
        radius = np.sqrt(-2.0 * np.log(1.0 - u[:pairs]))
        angle = 2.0 * np.pi * u[pairs:]
        z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]
        host = (float(loc) + float(scale) * z).astype(np.float32 if dt == self.xp.float32 else np.float64)
        return self.backend.asarray(host.reshape(shape), dtype=dt)

    def uniform(self, shape, /, *, low: float = 0.0, high: float = 1.0, dtype=None):
        """Draws from U[low, high), made on the device; float32 unless ``dtype`` says otherwise.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> g.uniform((3,), low=-1.0, high=1.0).round(3)
        array([-0.163, -0.371,  0.201], dtype=float32)
        """
        shape = _shape(shape)
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise InputError(f"uniform needs finite low < high, got low={low!r}, high={high!r}")
        dt = float_dtype(self.xp, self.device, dtype)
        u = self._unit(math.prod(shape), dt)
        u = imul(u, self.xp.full((), high - low, dtype=dt, device=self.device))
        u = iadd(u, self.xp.full((), low, dtype=dt, device=self.device))
        return self.xp.reshape(u, shape)

    def integers(self, low: int, high: int | None = None, /, shape=()):
        """Integers in [low, high) (or [0, low) with one bound), of the index dtype, made on the device.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> g.integers(0, 10, shape=(4,))
        array([4, 3, 3, 7])
        """
        if high is None:
            low, high = 0, low
        low, high = operator.index(low), operator.index(high)
        if high - low < 1 or high - low > 2**32:
            raise InputError(f"integers needs low < high with high - low <= 2**32, got low={low}, high={high}")
        idt = index_dtype(self.xp, self.device)
        info = self.xp.iinfo(idt)
        if low < info.min or high - 1 > info.max:
            raise InputError(f"integers in [{low}, {high}) do not fit the index dtype {idt} of this backend")
        shape = _shape(shape)
        count = math.prod(shape)
        w = self._words(2 * count)
        a, b = w[:count], w[count:]
        hi_a, lo_a = _mulhilo(a, high - low)
        hi_b, _ = _mulhilo(b, high - low)
        total = lo_a + hi_b
        stream = self._stream_for(host=False)
        if stream.wide:
            total = iand(total, _MASK32)
        # The carry of lo(a * n) + hi(b * n) completes floor((a * 2**32 + b) * n / 2**64).
        hi_a = iadd(hi_a, self.xp.astype(total < lo_a, stream.dtype))
        out = self.xp.astype(hi_a, idt)
        if low:
            out = iadd(out, low)
        return self.xp.reshape(out, shape)

    def choice(self, n: int, /, size, *, replace: bool = True):
        """Indices into range(n): ``size`` of them, with or without replacement.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> g.choice(10, 3, replace=False)
        array([7, 8, 9])
        """
        n = operator.index(n)
        if n <= 0:
            raise InputError(f"cannot choose from an empty range (n={n})")
        shape = _shape(size)
        if replace:
            return self.integers(0, n, shape)
        if math.prod(shape) > n:
            raise InputError(f"cannot draw {size} indices without replacement from {n}")
        return self.xp.reshape(self.permutation(n)[: math.prod(shape)], shape)

    def permutation(self, n: int, /):
        """A random permutation of range(n), of the index dtype, made on the device.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> g.permutation(5)
        array([1, 2, 0, 4, 3])
        """
        n = operator.index(n)
        if n < 0:
            raise InputError(f"permutation needs n >= 0, got {n}")
        xp = self.xp
        w = self._words(2 * n)
        # Sort by the 64-bit key (w[:n], w[n:]): stably by its low word, then by its high word.
        by_low = xp.argsort(w[n:], stable=True)
        order = xp.argsort(xp.take(w[:n], by_low, axis=0), stable=True)
        return xp.astype(xp.take(by_low, order, axis=0), index_dtype(xp, self.device))

    def bernoulli(self, shape, /, *, p: float, dtype=None):
        """A 0/1 mask, 1 with probability ``p``, as floats of ``dtype``, made on the device.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> mask = g.bernoulli((10000,), p=0.25)
        >>> mask.dtype, round(float(mask.mean()), 3)
        (dtype('float32'), 0.245)
        """
        return self._mask(shape, *_bernoulli_field(_probability(p, "p")), dtype=dtype, scale=None)

    def dropout_mask(self, shape, /, *, keep: float, dtype=None):
        """An inverted-dropout mask: ``1 / keep`` with probability ``keep``, else 0, made on the device.

        The keep decisions are :meth:`bernoulli`'s (the same fields of the same words, so the keep
        rate is within ``2**-33`` of ``keep``) and the kept units carry exactly ``1 / keep`` (rounded
        once to ``dtype``), as the course defines inverted dropout.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> g.dropout_mask((2, 4), keep=0.5)  # kept units scaled by 1 / keep
        array([[0., 2., 2., 0.],
               [0., 2., 0., 2.]], dtype=float32)
        """
        keep = _probability(keep, "keep")
        bits, t = _bernoulli_field(keep)
        return self._mask(shape, bits, t, dtype=dtype, scale=1.0 / keep if 0 < t < 2**bits else None)

    @staticmethod
    def dropout_keep_probability(keep: float, /) -> float:
        """The exact probability with which :meth:`dropout_mask` keeps a unit: ``keep`` to 32 bits, ``t / 2**bits``.

        Examples
        --------
        >>> from xpml import backend
        >>> backend.Generator.dropout_keep_probability(0.5), round(backend.Generator.dropout_keep_probability(0.2), 9)
        (0.5, 0.2)
        """
        bits, t = _bernoulli_field(_probability(keep, "keep"))
        return t / 2**bits

    def _mask(self, shape, bits: int, t: int, *, dtype, scale):
        """``scale`` (or 1) where a fresh ``bits``-bit field is below ``t``, else 0, in ``dtype``."""
        shape = _shape(shape)
        dt = self._float_dtypes.get(dtype)
        if dt is None:  # resolving a dtype costs more than a draw on JAX: once per generator
            dt = self._float_dtypes[dtype] = float_dtype(self.xp, self.device, dtype)
        n = math.prod(shape)
        count = -(-n // (32 // bits))
        blocks = -(-count // 2)
        if t in (0, 2**bits):  # certain: nothing to draw, but the stream advances as for any p
            self.counter += blocks
            return self.xp.full(shape, float(t > 0), dtype=dt, device=self.device)
        stream = self._stream_for(host=False)
        # A stream of another kind (a compiled training step's, whose counter is traced) draws by
        # the portable path below, which the step's own compilation fuses.
        adapter = self.backend.adapter
        if adapter.compiled_draws and type(stream) is _Stream and (self.counter & _MASK32) + blocks <= 2**32:
            start = self.counter
            low = stream.low_word(start)
            self.counter += blocks
            mask, low = _jax_mask()(stream.keys, low, high=start >> 32, shape=shape, bits=bits, t=t, dtype=dt,
                                    scale=scale)
            stream.next_low = (self.counter, low)
            return mask
        # torch's CPU kernels lack uint32 and cost ~10 us per eager operation, ~150 of them here:
        # NumPy computes the same mask in host memory, the tensor's own, which torch then takes
        # over without a copy (from_numpy shares it).
        shared = adapter.draws_on_host(self.device)
        stream = self._stream_for(host=shared)
        host_dt = (np.float32 if dt == self.xp.float32 else np.float64) if shared else dt
        mask = _mask_of_words(stream.xp, self._words(count, host=shared), n, bits, t, dtype=host_dt, scale=scale,
                              device=stream.device, wide=stream.wide)
        if shared:
            mask = adapter.wrap_host(mask)
        return self.xp.reshape(mask, shape)

    def spawn(self) -> Generator:
        """An independent child generator on the same backend, keyed by this one's next block.

        Examples
        --------
        >>> from xpml import backend
        >>> g = backend.Generator(0)
        >>> child = g.spawn()
        >>> g  # the parent moved past the block that keyed the child
        Generator(seed=0, backend='numpy', counter=1)
        >>> child.uniform((2,)).round(3)
        array([0.97 , 0.187], dtype=float32)
        """
        words = self._words(2, host=True)
        child = Generator.__new__(Generator)
        child._setup(self.backend, None, (int(words[0]), int(words[1])), 0)
        return child
