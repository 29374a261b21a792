"""Hourly schedule: run the hour that just ended, a quarter past (the sensor usually runs it first;
a second run of the same hour is harmless, every stage replaces its own rows)."""

from __future__ import annotations

from dagster import build_schedule_from_partitioned_job

from dagster_project.jobs import hourly_pipeline

hourly_schedule = build_schedule_from_partitioned_job(
    hourly_pipeline, name="hourly_schedule", minute_of_hour=15
)
