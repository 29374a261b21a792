"""One partition per hour that exists in the drops, keyed by the epoch name itself
(``2024-08-14T03``); ``drops_sensor`` adds them as hour folders arrive."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

hours = DynamicPartitionsDefinition(name="hours")
