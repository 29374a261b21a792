"""A challenge's pace: its speed against what the same product size gets from the same model.

Honest model: the throughput a worker reports grows with the product's size. A small product
cannot fill a large card (kernel launch, tiles, the fixed cost of the call), so the same honest
card measures a fraction of its speed on it: two networks written by others asked products of
n = 256 to 2048 at random, and their honest cards ran at 2, 10, 38 and 55 TFLOPS (an RTX card)
or 2, 17, 108 and 366 TFLOPS (an H100) by size alone. Comparing two answers of one card of
different sizes reads that curve as contention or as a card sharing its time. A challenge's
*pace* divides its speed by the window's median speed of the same claimed model (a model the
catalogue does not list: the device's own) and size, whatever the kind (a VRAM challenge is a
matmul of its own size), so that answers of any size compare: an honest card keeps about the
same pace at every size, a card shared by k devices drops to about 1/k of it. Where every
product has one size, the pace is the speed over a constant, and every ratio of two speeds is
the ratio of their paces.

A pace says how a card compares with its claimed model's fleet, so it is no yardstick for a
card of another model: on small products every card looks alike (``spoofed_model`` compares a
card with itself, or with its peers at a size that fills a card).
"""

from __future__ import annotations

PACED_CTE = """
    paced_window AS NOT MATERIALIZED (
        SELECT * FROM challenge_context WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch
    ),
    size_curve AS MATERIALIZED (  -- the window's median speed per claimed model and product size (of either kind: a VRAM
        -- challenge is a matmul of its own size)
        SELECT coalesce(catalogue_model, 'device ' || device_id) AS speed_class, n, median(tflops) AS tflops
        FROM paced_window WHERE status = 'ok' AND tflops > 0 GROUP BY ALL
    ),
    paced AS (  -- the window's challenges, with the challenge's pace at its size
        SELECT w.*, w.tflops / k.tflops AS pace
        FROM paced_window w
        LEFT JOIN size_curve k ON k.speed_class = coalesce(w.catalogue_model, 'device ' || w.device_id)
                              AND k.n IS NOT DISTINCT FROM w.n
    )"""
"""CTEs: ``paced``, the ``challenge_context`` rows of the window (``$epoch``, ``$window`` hours)
and each one's ``pace`` (1.0: the median answer of its model at its size)."""
