"""Detector evidence -> ``device_tiers``, with hysteresis.

Per device and epoch, from the evidence and the device's last state:
- any ``reject`` evidence (exact or overwhelming proof), or an earlier rejection: ``rejected``
  (final until a person reviews);
- any ``probation`` evidence now, or in the last ``release_probation_after_clean_hours`` epochs:
  ``probation`` with a stated expiry (the epoch it ends unless new evidence comes). Expiry runs
  on the clock, not on epochs the device was seen, so a device switched off for a day does not
  stay suspected for ever; the carried row names the evidence it still rests on. A detector's
  ``clear`` (exact evidence refuting its own suspicion) ends what it held before at once: the
  device's row then carries the refutation as its reasons;
- otherwise ``standard``, becoming ``verified`` after ``verify_after_clean_hours`` clean epochs.
``review`` evidence (leads for a person) never changes a tier. New devices start at ``standard``.
"""

from __future__ import annotations

import duckdb

from pipelines.policy import Tiering

TIERS_SQL = """
WITH seen AS (SELECT device_id, account_id FROM device_features WHERE epoch = $epoch),
judged AS (SELECT * FROM evidence WHERE action IN ('probation', 'reject')),
ev AS (
    SELECT device_id, max(score) AS score, bool_or(action = 'reject') AS reject,
           list(DISTINCT fraud_type ORDER BY fraud_type) AS types,
           to_json(list(json_object('detector', detector, 'fraud_type', fraud_type, 'score', round(score, 4),
                                     'action', action, 'reason', reason, 'details', details)
                        ORDER BY score DESC, detector)) AS reasons
    FROM judged WHERE epoch = $epoch GROUP BY device_id
),
cleared AS (  -- a detector's refutation of its own suspicion of a device (``clear``): what came before it ends
    SELECT device_id, fraud_type, max(epoch) AS at FROM evidence
    WHERE action = 'clear' AND epoch <= $epoch AND epoch > hours_back($epoch, $release) GROUP BY ALL
),
held AS (  -- probation evidence of the last hours that has not expired, nor been refuted since
    SELECT j.device_id, max(j.epoch) AS last_epoch, max(j.score) AS score,
           list(DISTINCT j.fraud_type ORDER BY j.fraud_type) AS types,
           arg_max(j.reason, j.epoch || j.detector) AS last_reason
    FROM judged j LEFT JOIN cleared c USING (device_id, fraud_type)
    WHERE j.epoch < $epoch AND j.epoch > hours_back($epoch, $release) AND (c.at IS NULL OR j.epoch > c.at)
    GROUP BY j.device_id
),
refuted AS (  -- this epoch's refutations, as the reasons of a device they leave unsuspected
    SELECT device_id, to_json(list(json_object('detector', detector, 'fraud_type', fraud_type, 'score', round(score, 4),
                                               'action', action, 'reason', reason, 'details', details)
                                   ORDER BY detector)) AS reasons
    FROM evidence WHERE epoch = $epoch AND action = 'clear' GROUP BY device_id
),
last AS (
    SELECT device_id, arg_max(tier, epoch) AS tier, arg_max(clean_streak, epoch) AS clean_streak,
           arg_max(rejected_types, epoch) AS rejected_types, arg_max(rejected_since, epoch) AS rejected_since,
           arg_max(rejected_score, epoch) AS rejected_score
    FROM device_state WHERE epoch < $epoch GROUP BY device_id
),
decided AS (
    SELECT s.device_id, s.account_id, ev.score, ev.types, ev.reasons, held.types AS held_types,
           held.score AS held_score, held.last_epoch, held.last_reason, refuted.reasons AS refuted_reasons,
           last.tier AS last_tier, last.rejected_types, last.rejected_since, last.rejected_score,
           CASE WHEN ev.reject OR last.tier = 'rejected' THEN 'rejected'
                WHEN ev.device_id IS NOT NULL OR held.device_id IS NOT NULL THEN 'probation'
                WHEN last.tier = 'verified' THEN 'verified'
                WHEN coalesce(last.clean_streak, 0) + 1 >= $verify THEN 'verified'
                ELSE 'standard' END AS tier,
           CASE WHEN ev.device_id IS NOT NULL OR last.tier = 'rejected' THEN 0
                ELSE coalesce(last.clean_streak, 0) + 1 END AS clean_streak,
           epoch_shift(CASE WHEN ev.device_id IS NOT NULL THEN $epoch ELSE held.last_epoch END, $release) AS expires
    FROM seen s LEFT JOIN ev USING (device_id) LEFT JOIN held USING (device_id) LEFT JOIN last USING (device_id)
    LEFT JOIN refuted USING (device_id)
)
SELECT device_id, account_id, tier, clean_streak,
       CASE WHEN tier = 'rejected' THEN list_sort(list_distinct(list_concat(coalesce(rejected_types, []), coalesce(types, []))))
            WHEN tier = 'probation' THEN coalesce(types, held_types)
            ELSE [] END AS fraud_types,
       CASE WHEN tier = 'rejected' THEN coalesce(rejected_since, $epoch) END AS rejected_since,
       CASE WHEN tier = 'rejected' THEN greatest(coalesce(rejected_score, 0), coalesce(score, 0))
            WHEN tier = 'probation' THEN coalesce(score, held_score)
            ELSE 0 END AS score,
       CASE WHEN reasons IS NOT NULL AND tier = 'probation' THEN to_json(list_concat(
                CAST(reasons AS JSON[]),
                [json_object('detector', 'tiering', 'action', 'probation', 'expires', expires,
                             'reason', format('probation until {} unless new evidence comes', expires))]))
            WHEN reasons IS NOT NULL THEN reasons
            WHEN tier = 'rejected' THEN to_json([json_object(
                'detector', 'tiering', 'action', 'reject', 'score', rejected_score,
                'reason', format('rejected since {} for {}; final until reviewed', rejected_since, array_to_string(rejected_types, ', ')))])
            WHEN tier = 'probation' THEN to_json([json_object(
                'detector', 'tiering', 'action', 'probation', 'score', held_score, 'expires', expires,
                'reason', format('probation until {} for {} seen at {} ({}); no new evidence since',
                                 expires, array_to_string(held_types, ', '), last_epoch, last_reason))])
            WHEN refuted_reasons IS NOT NULL THEN refuted_reasons
            ELSE '[]'::JSON END AS reasons
FROM decided ORDER BY device_id
"""


def assign_tiers(con: duckdb.DuckDBPyConnection, epoch: str, policy: Tiering) -> dict[str, int]:
    """Write ``device_state`` and ``device_tiers`` for the epoch; returns devices per tier."""
    con.execute("DELETE FROM device_state WHERE epoch = ?", [epoch])
    con.execute("DELETE FROM device_tiers WHERE epoch = ?", [epoch])
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE tiers_now AS {TIERS_SQL}",
        {"epoch": epoch, "release": policy.release_probation_after_clean_hours, "verify": policy.verify_after_clean_hours},
    )
    # a person's review wins: the latest override covering the epoch sets the tier
    con.execute(
        """
        UPDATE tiers_now t SET tier = o.tier,
            fraud_types = CASE WHEN o.tier IN ('standard', 'verified') THEN [] ELSE t.fraud_types END,
            score = CASE WHEN o.tier IN ('standard', 'verified') THEN 0 ELSE t.score END,
            rejected_since = CASE WHEN o.tier = 'rejected' THEN coalesce(t.rejected_since, ?) END,
            reasons = to_json([json_object('detector', 'review', 'reason', 'verdict set by review: ' || o.reason,
                                           'tier', o.tier, 'previous', t.tier, 'previous_reasons', t.reasons)])
        FROM (SELECT device_id, arg_max(tier, created_at) AS tier, arg_max(reason, created_at) AS reason
              FROM verdict_overrides WHERE ? BETWEEN epoch_from AND epoch_to GROUP BY device_id) o
        WHERE o.device_id = t.device_id
        """,
        [epoch, epoch],
    )
    con.execute(
        "INSERT INTO device_state SELECT ?, device_id, tier, clean_streak, "
        "CASE WHEN tier = 'rejected' THEN fraud_types END, rejected_since, "
        "CASE WHEN tier = 'rejected' THEN score END FROM tiers_now",
        [epoch],
    )
    con.execute(
        "INSERT INTO device_tiers SELECT ?, device_id, account_id, tier, fraud_types, score, reasons FROM tiers_now",
        [epoch],
    )
    counts = dict(con.execute("SELECT tier, count(*) FROM tiers_now GROUP BY tier").fetchall())
    con.execute("DROP TABLE tiers_now")
    return counts
