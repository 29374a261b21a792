"""``stake_manipulation``: stake that comes and goes within minutes, again and again, to look
staked at the moment positions are read (a flash stake across the hour boundary, or one chunk of
tokens passed round several accounts).

Honest model: a staker stakes and holds for days; tops a position up; moves stake between devices
(an unstake here, a stake there: no round trip on one position); and now and then undoes a mistake
within minutes (the wrong device, the wrong amount): one round trip. Four networks written by
others had no honest device with more than one round trip of under 30 minutes in 48 hours; their
flash stakers and stake recyclers made 12 to 45 each on a position. Here a stake earns only for the hours it was
held through (``pipelines.staking``), so such a round trip earns nothing; repeated, it is an
attempt to game a reading of positions at a moment, and the account's devices are held while it
goes on.

Rule: a *round trip* is a stake (or delegation) followed on the same (device, wallet) position by
its unstake (or undelegation) within ``short_minutes``. An account whose own wallet (its payout
wallet, ``accounts``) made at least ``min_round_trips`` of them on one position in the last
``window_hours`` has every device of its in probation (suspicion, never proof or a slash: nothing
was earned). Counted per position, not per account: an operator of 80 cards who undoes a mistake
on a few of them is no flash staker (a randomized honest network held 56 datacenter cards while
round trips were counted per account). Round
trips by a wallet that is no account's are not pinned on the device they target: a stranger can
delegate to anyone's card and take it back.
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence

ROUND_TRIPS_SQL = """
WITH acc AS (  -- each account's payout wallet as of the epoch
    SELECT account_id, arg_max(wallet, _hour) AS wallet FROM accounts WHERE _hour <= $epoch GROUP BY account_id
),
ev AS (  -- events near and in the window, each with the next event of its position
    SELECT device_id, wallet, ts, kind,
           lead(kind) OVER w AS next_kind, lead(ts) OVER w AS next_ts
    FROM stake_events
    WHERE device_id IS NOT NULL AND ts < epoch_start($epoch) + INTERVAL 1 HOUR
      AND ts >= epoch_start($epoch) + INTERVAL 1 HOUR - to_hours($window) - to_minutes($short)
    WINDOW w AS (PARTITION BY device_id, wallet ORDER BY ts, event_id)
),
trips AS (
    SELECT wallet, device_id, ts, date_diff('second', ts, next_ts) AS held_s,
           date_trunc('hour', ts) <> date_trunc('hour', next_ts) AS straddles
    FROM ev
    WHERE kind IN ('stake', 'delegate') AND next_kind IN ('unstake', 'undelegate')
      AND next_ts < ts + to_minutes($short)
      AND next_ts >= epoch_start($epoch) + INTERVAL 1 HOUR - to_hours($window)
),
repeated AS (  -- positions taken out again and again (an operator of many cards undoes a mistake on one now and then)
    SELECT wallet, device_id FROM trips GROUP BY wallet, device_id HAVING count(*) >= $min_trips
),
actors AS (
    SELECT a.account_id, t.wallet, count(*) AS trips, count(*) FILTER (t.straddles) AS straddling,
           count(DISTINCT t.device_id) AS positions, median(t.held_s) AS median_held_s,
           arg_min(t.device_id, t.ts) AS first_device, min(t.ts) AS first_at
    FROM trips t JOIN repeated USING (wallet, device_id) JOIN acc a ON a.wallet = t.wallet
    GROUP BY a.account_id, t.wallet
)
SELECT f.device_id, f.account_id, a.wallet, a.trips, a.straddling, a.positions, a.median_held_s,
       a.first_device, strftime(a.first_at, '%Y-%m-%d %H:%M:%S') AS first_at
FROM device_features f JOIN actors a USING (account_id)
WHERE f.epoch = $epoch
ORDER BY f.device_id, a.wallet
"""


class StakeManipulation(Detector):
    name = "stake_manipulation"
    fraud_type = "stake_manipulation"

    def __init__(self, threshold: float = 0.5, window_hours: int = 24, short_minutes: int = 30, min_round_trips: int = 3):
        super().__init__(threshold)
        if window_hours < 1 or short_minutes < 1 or min_round_trips < 2:
            raise ValueError(
                f"{self.name}: window_hours {window_hours} (>= 1), short_minutes {short_minutes} (>= 1) and "
                f"min_round_trips {min_round_trips} (>= 2: one undone mistake is honest) out of range"
            )
        self.window_hours = window_hours
        self.short_minutes = short_minutes
        self.min_round_trips = min_round_trips

    def score(self, evidence: Evidence) -> pl.DataFrame:
        found = evidence.sql(ROUND_TRIPS_SQL, window=self.window_hours, short=self.short_minutes, min_trips=self.min_round_trips)
        minutes = (pl.col("median_held_s") / 60).round(1)
        return found.select(
            "device_id",
            "account_id",
            pl.lit(0.8).alias("score"),
            pl.lit("probation").alias("action"),
            pl.format(
                "its account's wallet {} staked and withdrew again within {} minutes {} times in the last {} hours "
                "on positions it takes out again and again ({} across an hour boundary, median {} minutes held, "
                "on {} position(s); first on {} at {}): "
                "a stake earns only for hours it is held through, so round trips only game a reading of positions "
                "at a moment (suspicion, not proof)",
                "wallet",
                pl.lit(self.short_minutes),
                "trips",
                pl.lit(self.window_hours),
                "straddling",
                minutes,
                "positions",
                "first_device",
                "first_at",
            ).alias("reason"),
            pl.struct(
                pl.lit("suspicion").alias("proof"),
                pl.col("wallet"),
                pl.col("trips").alias("round_trips"),
                pl.col("straddling").alias("across_hour_boundary"),
                pl.col("positions"),
                minutes.alias("median_minutes_held"),
                pl.col("first_device"),
                pl.col("first_at"),
            )
            .struct.json_encode()
            .alias("details"),
        )
