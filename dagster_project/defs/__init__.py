"""Dagster wiring over ``pipelines.runner``: no SQL, no transactions, no polling here."""
