"""numpy ``Generator`` draws bit for bit, without numpy's cost per call.

The simulator draws a network one device at a time (a UUID, a wallet, an address each), so a
million-device network makes millions of small draws. numpy spends about 5 us setting up each
``integers(lo, hi, size=k)`` or ``bytes(n)`` call, ten times the draw itself. ``Draws`` makes the
same draws through the bit generator's public ctypes interface (``PCG64.ctypes``, the way numpy's
documentation pairs it with numba) in a small compiled loop: the same 32-bit words, consumed in
the same order, so every simulated network stays byte-identical (``tests/test_simulate_draws.py``
checks this against numpy, interleaved with numpy's own draws).

numpy's pieces (numpy/random/src/distributions/distributions.c, ``random_bounded_uint64_fill``):
``integers(lo, hi)`` with ``0 < hi - lo - 1 < 2**32 - 1`` is Lemire's bounded draw on 32-bit
words (``buffered_bounded_lemire_uint32``), redrawn while the low half of the product is below
``(2**32 - range) % range``; at ``hi - lo == 2**32`` numpy takes the words as they come, which is
what that draw gives for the full range; ``hi - lo == 1`` draws nothing; ``bytes(n)`` is
``(n - 1) // 4 + 1`` full 32-bit words, little-endian.

The loop is compiled once per process (about half a second): it calls numpy's own
``next_uint32``, whose address is fixed only within a process, so numba cannot cache it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

MAX_SPAN = 2**32
"""The widest ``hi - lo`` this copy draws (numpy's 32-bit path); wider ranges are refused."""


@cache
def _kernels() -> tuple[Any, Any]:
    """The compiled loops: ``fill`` (a sized draw; ``span == 0``: full 32-bit words) and ``one``
    (a scalar draw), both Lemire's bounded draw as numpy makes it."""
    from numba import njit

    next_uint32 = np.random.PCG64().ctypes.next_uint32  # one C function for every PCG64

    @njit
    def one(state, span, low):  # pragma: no cover - compiled
        mask, s = np.uint64(0xFFFFFFFF), np.uint64(span)
        m = np.uint64(next_uint32(state)) * s
        if (m & mask) < s:
            threshold = (mask - (s - np.uint64(1))) % s
            while (m & mask) < threshold:
                m = np.uint64(next_uint32(state)) * s
        return np.int64(m >> np.uint64(32)) + low

    @njit
    def fill(state, span, low, out):  # pragma: no cover - compiled
        if span == 0:
            for i in range(out.size):
                out[i] = next_uint32(state)
        else:
            for i in range(out.size):
                out[i] = one(state, span, low)

    return fill, one


def _one_value(low: int, high: int) -> int:
    """A range of one value (numpy draws nothing for it); any other is out of this copy's reach."""
    if high - low == 1:
        return low
    raise ValueError(f"integers({low}, {high}): the range must hold 1 to 2**32 values")


class Draws:
    """``integers`` and ``bytes`` of one ``numpy.random.Generator`` (PCG64), as numpy draws them,
    for the small draws a simulator makes one device at a time. Interleaves freely with the
    generator's own methods: both advance the same state."""

    def __init__(self, rng: np.random.Generator):
        if not isinstance(rng.bit_generator, np.random.PCG64):
            raise TypeError(f"Draws copies PCG64 streams, not {type(rng.bit_generator).__name__}")
        self._rng = rng  # keeps the state the address below points into alive
        self._state = rng.bit_generator.ctypes.state_address
        self._fill, self._one = _kernels()

    def integer(self, low: int, high: int) -> int:
        """``int(rng.integers(low, high))``."""
        span = high - low
        if 1 < span <= MAX_SPAN:
            return int(self._one(self._state, span, low))
        return _one_value(low, high)

    def integers(self, low: int, high: int, size: int) -> list[int]:
        """``rng.integers(low, high, size=size).tolist()``."""
        span = high - low
        if not 1 < span <= MAX_SPAN:
            return [_one_value(low, high)] * size
        out = np.empty(size, dtype=np.int64)
        self._fill(self._state, span, low, out)
        return out.tolist()

    def bytes(self, length: int) -> bytes:
        """``rng.bytes(length)``."""
        out = np.empty((length - 1) // 4 + 1, dtype=np.int64)
        self._fill(self._state, 0, 0, out)
        return out.astype("<u4").tobytes()[:length]
