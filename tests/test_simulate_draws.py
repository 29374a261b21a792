"""The simulator's fast draws are numpy's draws: same values, same stream afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.simulate.draws import Draws


@pytest.mark.parametrize("seed", [0, 1, 2**63 + 12345, 987654321987654321])
def test_draws_give_numpys_values_and_leave_the_stream_where_numpy_would(seed: int) -> None:
    """Random ranges (single values, powers of two, ranges that reject often, the full 32 bits,
    negative lows), sizes 1 to 70, interleaved with numpy's own draws on both generators, and
    an odd number of 32-bit words before a 64-bit draw (PCG64 keeps the other half)."""
    ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
    draws = Draws(ours)
    plan = np.random.default_rng([seed % 2**32, 1])
    spans = [1, 2, 3, 7, 17, 58, 256, 1000, 2**31 + 1, 3 * 2**30, 2**32 - 1, 2**32]
    for _ in range(3000):
        span = int(spans[plan.integers(len(spans))]) if plan.random() < 0.5 else int(plan.integers(1, 2**32 + 1))
        low = int(plan.integers(-(2**40), 2**40))
        size = int(plan.integers(1, 71))
        kind = int(plan.integers(4))
        if kind == 0:
            assert draws.integer(low, low + span) == int(theirs.integers(low, low + span))
        elif kind == 1:
            assert draws.integers(low, low + span, size) == theirs.integers(low, low + span, size=size).tolist()
        elif kind == 2:
            assert draws.bytes(size) == theirs.bytes(size)
        else:
            assert ours.random() == theirs.random()
            assert ours.integers(0, 2**40) == theirs.integers(0, 2**40)
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_draws_refuse_what_numpy_draws_another_way() -> None:
    draws = Draws(np.random.default_rng(3))
    with pytest.raises(ValueError, match="range"):
        draws.integer(0, 2**32 + 1)
    with pytest.raises(ValueError, match="range"):
        draws.integers(5, 5, 3)
    with pytest.raises(TypeError, match="PCG64"):
        Draws(np.random.Generator(np.random.MT19937(1)))
