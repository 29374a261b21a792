"""Compiled PoW kernel: numpy's SeedSequence -> PCG64 -> ``integers(-8, 9)`` stream, re-implemented
bit for bit in numba and fused with the dot product.

numpy's pieces, in order (numpy/random/bit_generator.pyx, _pcg64, distributions.c):

- SeedSequence: the entropy ``[seed, side, index]`` becomes little-endian 32-bit words (0 is one
  word), is hashed into a pool of 4 words (``_seed_stream``), and ``generate_state(4, uint64)``
  draws 8 words from the pool.
- PCG64 (XSL-RR 128/64): 128-bit LCG seeded with ``state=(w0, w1)``, ``inc=(w2, w3)``; each
  64-bit output is split into two 32-bit draws, low half first.
- ``integers(-8, 9)``: Lemire's bounded draw on 32 bits with range 17: ``m = u32 * 17``, value
  ``(m >> 32) - 8``, redrawn while the low 32 bits of ``m`` are below ``(2**32 - 17) % 17 = 1``.

numpy does not promise ``Generator`` streams across its versions (the contract pins today's);
``tests/test_pow_kernel.py`` checks this copy against the installed numpy. Imported on demand
(``pipelines.pow_math.sample_entries``): numba's import and loading the cached compiled kernel
take one to two seconds, which only PoW work should pay.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

U32 = np.uint64(0xFFFFFFFF)
INIT_A, MULT_A = np.uint64(0x43B0D7E5), np.uint64(0x931E8875)
INIT_B, MULT_B = np.uint64(0x8B51F9DD), np.uint64(0x58F38DED)
MIX_MULT_L, MIX_MULT_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
PCG_MULT_HI, PCG_MULT_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)
SH16, SH32, SH58, SH63, ONE, ZERO = (np.uint64(v) for v in (16, 32, 58, 63, 1, 0))
RANGE = np.uint64(17)
"""integers(-8, 9) draws from 17 values."""
REJECT_BELOW = np.uint64((2**32 - 17) % 17)
OFFSET = -8


@intrinsic
def _mulhi(typingctx, a, b):
    """High 64 bits of the 128-bit product of two uint64 (one machine multiply)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


@njit(inline="always", cache=True)
def _hash(value, const, mult):
    """One step of SeedSequence's hash: returns (hashed value, next hash constant)."""
    value = (value ^ const) & U32
    const = (const * mult) & U32
    value = (value * const) & U32
    return value ^ (value >> SH16), const


@njit(inline="always", cache=True)
def _mix(x, y):
    r = ((MIX_MULT_L * x) - (MIX_MULT_R * y)) & U32
    return r ^ (r >> SH16)


@njit(inline="always", cache=True)
def _step(hi, lo, inc_hi, inc_lo):
    """state = state * PCG_MULT + inc (mod 2**128), as (hi, lo)."""
    new_lo = lo * PCG_MULT_LO
    new_hi = _mulhi(lo, PCG_MULT_LO) + lo * PCG_MULT_HI + hi * PCG_MULT_LO
    out_lo = new_lo + inc_lo
    carry = ONE if out_lo < new_lo else ZERO
    return new_hi + inc_hi + carry, out_lo


@njit(inline="always", cache=True)
def _output(hi, lo):
    """PCG's XSL-RR output of a 128-bit state."""
    x = hi ^ lo
    rot = hi >> SH58
    return (x >> rot) | (x << ((ZERO - rot) & SH63))


@njit(inline="always", cache=True)
def _seed_stream(seed, side, index):
    """PCG64 state (hi, lo) and increment (hi, lo) of ``default_rng([seed, side, index])``."""
    words = np.zeros(4, dtype=np.uint64)
    count = 0
    if seed == ZERO:
        count = 1
    else:
        s = seed
        while s != ZERO:
            words[count] = s & U32
            s = s >> SH32
            count += 1
    words[count] = side
    count += 1
    words[count] = index  # < 2**18: one word, 0 included
    count += 1
    pool = np.zeros(4, dtype=np.uint64)
    const = INIT_A
    for k in range(4):
        pool[k], const = _hash(words[k] if k < count else ZERO, const, MULT_A)
    for src in range(4):
        for dst in range(4):
            if src != dst:
                h, const = _hash(pool[src], const, MULT_A)
                pool[dst] = _mix(pool[dst], h)
    const = INIT_B
    state = np.zeros(8, dtype=np.uint64)
    for k in range(8):
        state[k], const = _hash(pool[k % 4], const, MULT_B)
    init_hi, init_lo = state[0] | (state[1] << SH32), state[2] | (state[3] << SH32)
    seq_hi, seq_lo = state[4] | (state[5] << SH32), state[6] | (state[7] << SH32)
    inc_hi = (seq_hi << ONE) | (seq_lo >> SH63)
    inc_lo = (seq_lo << ONE) | ONE
    hi, lo = _step(ZERO, ZERO, inc_hi, inc_lo)
    lo2 = lo + init_lo
    hi = hi + init_hi + (ONE if lo2 < lo else ZERO)
    hi, lo = _step(hi, lo2, inc_hi, inc_lo)
    return hi, lo, inc_hi, inc_lo


@njit(inline="always", cache=True)
def _next(hi, lo, inc_hi, inc_lo, half, has):
    """The stream's next value in [-8, 8] and the advanced stream (state, buffered half word).

    Each 64-bit output gives two 32-bit words, low half first; a word whose Lemire product
    falls below the threshold is skipped, as numpy does."""
    while True:
        if has:
            w = half
            has = False
        else:
            hi, lo = _step(hi, lo, inc_hi, inc_lo)
            word = _output(hi, lo)
            w = word & U32
            half = word >> SH32
            has = True
        m = w * RANGE
        if (m & U32) >= REJECT_BELOW:
            return np.int64(m >> SH32) + OFFSET, hi, lo, half, has


@njit(cache=True)
def _stream(seed, side, index, n, out):
    """``default_rng([seed, side, index]).integers(-8, 9, size=n)`` into ``out[:n]`` (int8)."""
    hi, lo, ih, il = _seed_stream(seed, side, index)
    half, has = ZERO, False
    for k in range(n):
        out[k], hi, lo, half, has = _next(hi, lo, ih, il, half, has)


@njit(cache=True)
def _row_dot_one(seed, i, j, n):
    """Row i and column j generated in lockstep: their dot product, nothing stored."""
    ah, al, aih, ail = _seed_stream(seed, ZERO, i)
    bh, bl, bih, bil = _seed_stream(seed, ONE, j)
    af = bf = ZERO
    ahas = bhas = False
    acc = 0
    for _ in range(n):
        a, ah, al, af, ahas = _next(ah, al, aih, ail, af, ahas)
        b, bh, bl, bf, bhas = _next(bh, bl, bih, bil, bf, bhas)
        acc += a * b
    return acc


@njit(cache=True)
def _row_dot_two(seed, i, j0, j1, n, row, store):
    """Row i and columns j0, j1 in lockstep (three independent streams keep the core busy);
    the row is kept in ``row`` when ``store``."""
    ah, al, aih, ail = _seed_stream(seed, ZERO, i)
    bh, bl, bih, bil = _seed_stream(seed, ONE, j0)
    ch, cl, cih, cil = _seed_stream(seed, ONE, j1)
    af = bf = cf = ZERO
    ahas = bhas = chas = False
    acc0 = 0
    acc1 = 0
    for k in range(n):
        a, ah, al, af, ahas = _next(ah, al, aih, ail, af, ahas)
        b, bh, bl, bf, bhas = _next(bh, bl, bih, bil, bf, bhas)
        c, ch, cl, cf, chas = _next(ch, cl, cih, cil, cf, chas)
        acc0 += a * b
        acc1 += a * c
        if store:
            row[k] = a
    return acc0, acc1


@njit(cache=True)
def _buffered_dot_two(seed, row, j0, j1, n):
    """Columns j0 and j1 in lockstep against a stored row."""
    bh, bl, bih, bil = _seed_stream(seed, ONE, j0)
    ch, cl, cih, cil = _seed_stream(seed, ONE, j1)
    bf = cf = ZERO
    bhas = chas = False
    acc0 = 0
    acc1 = 0
    for k in range(n):
        b, bh, bl, bf, bhas = _next(bh, bl, bih, bil, bf, bhas)
        c, ch, cl, cf, chas = _next(ch, cl, cih, cil, cf, chas)
        acc0 += row[k] * b
        acc1 += row[k] * c
    return acc0, acc1


@njit(cache=True)
def _buffered_dot_one(seed, row, j, n):
    bh, bl, bih, bil = _seed_stream(seed, ONE, j)
    bf = ZERO
    bhas = False
    acc = 0
    for k in range(n):
        b, bh, bl, bf, bhas = _next(bh, bl, bih, bil, bf, bhas)
        acc += row[k] * b
    return acc


@njit(inline="always", cache=True)
def _run_end(keys, u, q):
    """End of the run of equal ``keys`` starting at ``u`` (before ``q``)."""
    v = u + 1
    while v < q and keys[v] == keys[u]:
        v += 1
    return v


@njit(cache=True)
def _challenge(a, b, seed, n, i, j, out):
    """Entries of samples a..b-1 (one (seed, n), sorted by i then j). Each distinct row is
    generated once together with its first two distinct columns; further columns of that row
    stream against the stored row, two at a time. Duplicated samples get the same entry."""
    p = a
    while p < b:
        q = _run_end(i, p, b)
        row_index = np.uint64(i[p])
        u0 = p
        u1 = _run_end(j, u0, q)
        if u1 == q:
            out[u0:u1] = _row_dot_one(seed, row_index, np.uint64(j[u0]), n)
            p = q
            continue
        u2 = _run_end(j, u1, q)
        store = u2 < q
        row = np.empty(n if store else 0, dtype=np.int8)
        v0, v1 = _row_dot_two(seed, row_index, np.uint64(j[u0]), np.uint64(j[u1]), n, row, store)
        out[u0:u1] = v0
        out[u1:u2] = v1
        u = u2
        while u < q:
            w1 = _run_end(j, u, q)
            if w1 < q:
                w2 = _run_end(j, w1, q)
                v0, v1 = _buffered_dot_two(seed, row, np.uint64(j[u]), np.uint64(j[w1]), n)
                out[u:w1] = v0
                out[w1:w2] = v1
                u = w2
            else:
                out[u:w1] = _buffered_dot_one(seed, row, np.uint64(j[u]), n)
                u = w1
        p = q


@njit(parallel=True, cache=True)
def _entries(starts, seed, n, i, j, out):
    for g in prange(starts.size - 1):
        a = starts[g]
        _challenge(a, starts[g + 1], seed[a], n[a], i, j, out)


@njit(cache=True)
def _entries_serial(starts, seed, n, i, j, out):
    """``_entries`` without the thread pool: safe inside a host's own worker threads (Dask)."""
    for g in range(starts.size - 1):
        a = starts[g]
        _challenge(a, starts[g + 1], seed[a], n[a], i, j, out)


def run(starts, seed, n, i, j, out, threads: int | None = None) -> None:
    """Fill ``out`` for samples sorted by (seed, n, i, j); ``starts`` bounds each (seed, n) group.
    ``threads=1`` runs in the calling thread only."""
    if threads == 1:
        _entries_serial(starts, seed, n, i, j, out)
        return
    before = numba.get_num_threads()
    if threads:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        _entries(starts, seed, n, i, j, out)
    finally:
        numba.set_num_threads(before)


def vector(seed: int, side: int, index: int, n: int) -> np.ndarray:
    """One generated vector (side 0: a row of A, 1: a column of B), for tests and tools."""
    out = np.empty(n, dtype=np.int8)
    _stream(np.uint64(seed), np.uint64(side), np.uint64(index), np.int64(n), out)
    return out.astype(np.int64)
